/*
 * watch - inotify on the folders of watched plugin files (a file's own
 * watch would follow the old inode after a rename), debounced per file.
 */

#include "watch.h"
#include "log.h"
#include "util.h"

#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>

/* A context whose plugin file is watched. */
typedef struct {
    int wd;                       /* inotify watch on the file's directory, or -1 */
    char *file;                   /* the file's name in that directory */
    double due;                   /* when to reload (debounced), or 0 */
} s_file_t;

struct bctx_watch {
    bctx_registry_t *registry;    /* the config and contexts (borrowed) */
    bctx_reload_t *reload;        /* where reloads start (borrowed) */
    bctx_loop_t *loop;            /* where the descriptor is read (borrowed), or NULL */
    int inotify;                  /* inotify descriptor, or -1 */
    int reader;                   /* its reader in loop, or -1 */
    s_file_t *files;              /* one per context */
    size_t n_files;               /* how many */
};

/* Drops every watch and closes the descriptor. */
static void
s_close (bctx_watch_t *self)
{
    for (size_t i = 0; i < self->n_files; i++)
        free (self->files[i].file);
    free (self->files);
    self->files = NULL;
    self->n_files = 0;
    bctx_loop_reader_close (self->loop, &self->reader, &self->inotify);
}

/* Reads inotify events: a change to a watched file (re)arms its debounce. */
static int
s_read (void *arg)
{
    bctx_watch_t *self = arg;
    char buf[8192] __attribute__ ((aligned (__alignof__ (struct inotify_event))));
    ssize_t n;
    while ((n = read (self->inotify, buf, sizeof buf)) > 0) {
        for (char *p = buf; p < buf + n;) {
            struct inotify_event *ev = (struct inotify_event *) p;
            for (size_t i = 0; i < self->n_files; i++) {
                s_file_t *w = &self->files[i];
                if (w->wd == ev->wd && ev->len && strcmp (ev->name, w->file) == 0)
                    w->due = bctx_now () + 0.3;   /* quiet for 300 ms: whole */
            }
            p += sizeof *ev + ev->len;
        }
    }
    return BCTX_LOOP_GO_ON;
}

/* Watches context i's plugin file.  Return 0, or -1 with the reason. */
static int
s_watch (bctx_watch_t *self, size_t i, char *err, size_t errlen)
{
    const bctx_context_config_t *cc = &self->registry->config->contexts[i];
    s_file_t *w = &self->files[i];
    if (self->inotify < 0) {
        self->inotify = inotify_init1 (IN_NONBLOCK | IN_CLOEXEC);
        if (self->inotify < 0) {
            snprintf (err, errlen, "contexts[%zu].watch: inotify: %s", i, strerror (errno));
            return -1;
        }
        if (self->loop)
            self->reader = bctx_loop_reader (self->loop, NULL, self->inotify, s_read, self);
    }
    char *a = strdup (cc->plugin);
    char *b = strdup (cc->plugin);
    w->file = strdup (basename (b));
    w->wd = inotify_add_watch (self->inotify, dirname (a),
                               IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE);
    free (a);
    free (b);
    if (w->wd < 0) {
        snprintf (err, errlen, "contexts[%zu].watch: cannot watch %s: %s", i,
                  cc->plugin, strerror (errno));
        return -1;
    }
    bctx_log (BCTX_LOG_INFO, "context %s: watching %s", cc->name, cc->plugin);
    return 0;
}

int
bctx_watch_renew (bctx_watch_t *self, char *err, size_t errlen)
{
    s_close (self);
    size_t n = self->registry->config->n_contexts;
    self->files = calloc (n ? n : 1, sizeof *self->files);
    self->n_files = n;
    for (size_t i = 0; i < n; i++) {
        self->files[i].wd = -1;
        if (self->registry->config->contexts[i].watch && s_watch (self, i, err, errlen) < 0)
            return -1;
    }
    return 0;
}


bctx_watch_t *
bctx_watch_new (bctx_registry_t *registry, bctx_reload_t *reload, char *err, size_t errlen)
{
    bctx_watch_t *self = calloc (1, sizeof *self);
    self->registry = registry;
    self->reload = reload;
    self->inotify = -1;
    self->reader = -1;
    if (bctx_watch_renew (self, err, errlen) < 0) {
        bctx_watch_destroy (&self);
        return NULL;
    }
    return self;
}

void
bctx_watch_attach (bctx_watch_t *self, bctx_loop_t *loop)
{
    self->loop = loop;
    if (self->inotify >= 0)
        self->reader = bctx_loop_reader (loop, NULL, self->inotify, s_read, self);
    bctx_loop_timer (loop, bctx_watch_tick, self);
}

double
bctx_watch_tick (void *self_)
{
    bctx_watch_t *self = self_;
    const bctx_config_t *config = self->registry->config;
    double now = bctx_now (), next = -1;
    for (size_t i = 0; i < self->n_files; i++) {
        s_file_t *w = &self->files[i];
        if (!w->due)
            continue;
        if (now >= w->due) {
            w->due = 0;
            bctx_log (BCTX_LOG_INFO, "context %s: %s changed", config->contexts[i].name,
                      config->contexts[i].plugin);
            char *reply = bctx_reload_start (self->reload, i, config->contexts[i].plugin,
                                             NULL, 0, 0, NULL);
            free (reply);       /* already logged */
        } else if (next < 0 || w->due - now < next) {
            next = w->due - now;
        }
    }
    return next;
}

void
bctx_watch_destroy (bctx_watch_t **self_p)
{
    BCTX_SELF_OR_RETURN (bctx_watch_t, self_p);
    s_close (self);
    free (self);
    *self_p = NULL;
}
