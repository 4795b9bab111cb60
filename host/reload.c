/*
 * reload - hot swap.  A reload is in one of three places: waiting (no job:
 * the previous version still drains), with its preparer thread (job set,
 * preparing), or at the worker (job set).  Every step's outcome travels
 * in the job: the preparer's plugin or load_failure, the worker's ok.
 */

#include "reload.h"
#include "commands.h"
#include "log.h"
#include "util.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#define S_NO_REPLY "{\"ok\":false,\"error\":{\"code\":\"internal\",\"message\":\"no reply\"}}"

/* A reload on its way: waiting for the old version to drain (job NULL),
 * or sent to the preparer or the worker and not back yet. */
typedef struct {
    bctx_job_t *job;              /* at the preparer or the worker, or NULL while waiting */
    size_t ctx;                   /* index of the context */
    char *path;                   /* the plugin file to load */
    double deadline;              /* monotonic seconds: then "unavailable" */
    unsigned char identity[BCTX_API_ENVELOPE_MAX]; /* the client's envelope, if any */
    size_t identity_len;          /* 0: a reload from the file watch or SIGHUP */
    int delimiter;                /* the client sent an empty frame first */
    int preparing;                /* job is with the preparer thread */
} s_reload_t;

struct bctx_reload {
    bctx_registry_t *registry;    /* the contexts and runners (borrowed) */
    bctx_api_t *api;              /* to answer clients (borrowed) */
    s_reload_t *reloads;          /* reloads in progress */
    size_t n_reloads;             /* how many */
    _Atomic int preparers;        /* preparer threads still running */
    int rollbacks;                /* rollback jobs at workers */
    int stopping;                 /* draining: no reload goes further */
    bctx_busy_t busy;             /* a preparer loading a version (its init, its
                                     warm-up), for the watchdog */
};

static char *s_op_reload (void *arg, bctx_request_t *req);

bctx_reload_t *
bctx_reload_new (bctx_registry_t *registry, bctx_api_t *api)
{
    bctx_reload_t *self = calloc (1, sizeof *self);
    self->registry = registry;
    self->api = api;
    bctx_api_handle (api, BCTX_OP_RELOAD, s_op_reload, self);
    return self;
}

/* Answers the client of a reload, if any. */
static void
s_answer (bctx_reload_t *self, s_reload_t *r, const char *reply)
{
    if (r->identity_len)
        bctx_api_send (self->api, r->identity, r->identity_len, r->delimiter, reply);
}

bctx_plugin_bounds_t
bctx_reload_bounds (const bctx_config_t *config, double deadline)
{
    return (bctx_plugin_bounds_t) {
        .dirs = config->plugin_dirs, .n_dirs = config->n_plugin_dirs,
        .dirs_given = config->plugin_dirs_given, .max_bytes = config->max_plugin_bytes,
        .deadline = deadline,
    };
}

/* What a preparer thread needs; it owns this and frees it. */
typedef struct {
    void *zctx;                   /* to hand the job back */
    _Atomic int *running;         /* the module's count of preparers */
    bctx_job_t *job;              /* the reload job it fills */
    char *name;                   /* the context */
    char *path;                   /* the plugin file */
    json_t *settings;             /* the context's settings (a reference) */
    char *store_path;             /* the context's log */
    bctx_plugin_bounds_t bounds;  /* the load's bounds, with the reload's deadline */
    char **dirs;                  /* bounds.dirs, copied: a SIGHUP may free the config's */
    bctx_busy_t *busy;            /* the module's mark of a preparer at work */
} s_preparer_t;

/* Frees what a preparer owns, and itself. */
static void
s_preparer_free (s_preparer_t *p)
{
    free (p->name);
    free (p->path);
    json_decref (p->settings);
    free (p->store_path);
    for (size_t i = 0; p->dirs && i < p->bounds.n_dirs; i++)
        free (p->dirs[i]);
    free (p->dirs);
    free (p);
}

/* Loads, checks and warms the new version off the API thread, then hands
 * the job back to the API thread through the replies socket. */
static void *
s_prepare (void *arg)
{
    s_preparer_t *p = arg;
    bctx_job_t *job = p->job;
    char err[1024];
    bctx_busy_begin (p->busy);
    job->plugin = bctx_worker_prepare (job, p->name, p->path, p->settings, &p->bounds,
                                       p->store_path, err, sizeof err);
    bctx_busy_end (p->busy);
    if (!job->plugin)
        job->reply = strdup (err);
    job->prepared = 1;
    void *push = zmq_socket (p->zctx, ZMQ_PUSH);
    int linger = 0;
    if (push)
        zmq_setsockopt (push, ZMQ_LINGER, &linger, sizeof linger);
    if (!push || zmq_connect (push, BCTX_COMMANDS_REPLIES) != 0
        || zmq_send (push, &job, sizeof job, 0) < 0)
        bctx_job_destroy (&job);   /* the host is stopping */
    if (push)
        zmq_close (push);
    _Atomic int *running = p->running;
    s_preparer_free (p);
    atomic_fetch_sub (running, 1);
    return NULL;
}

/* What reload r's preparer needs, copied.  Return: new. */
static s_preparer_t *
s_preparer_new (bctx_reload_t *self, s_reload_t *r)
{
    const bctx_config_t *config = self->registry->config;
    bctx_worker_t *w = self->registry->contexts[r->ctx].worker;
    const bctx_context_config_t *cc = &config->contexts[r->ctx];
    s_preparer_t *p = calloc (1, sizeof *p);
    p->zctx = self->registry->zctx;
    p->busy = &self->busy;
    p->running = &self->preparers;
    p->job = calloc (1, sizeof *p->job);
    p->job->kind = BCTX_JOB_RELOAD;
    p->name = strdup (cc->name);
    p->path = strdup (r->path);
    p->settings = json_incref (cc->settings);
    p->store_path = strdup (bctx_worker_store_path (w));
    /* The copy of the file and its checks stop at the reload's deadline. */
    p->bounds = bctx_reload_bounds (config, r->deadline);
    p->dirs = calloc (p->bounds.n_dirs ? p->bounds.n_dirs : 1, sizeof *p->dirs);
    for (size_t i = 0; i < p->bounds.n_dirs; i++)
        p->dirs[i] = strdup (config->plugin_dirs[i]);
    p->bounds.dirs = p->dirs;
    return p;
}

/* Starts preparing the new version on its own thread.  Return NULL when
 * started (or when it must wait for the old version to drain), or an error
 * reply (new). */
static char *
s_load (bctx_reload_t *self, s_reload_t *r)
{
    bctx_worker_t *w = self->registry->contexts[r->ctx].worker;
    if (atomic_load (bctx_worker_loaded (w)) >= 2)
        return NULL;               /* at most two versions: wait */
    s_preparer_t *p = s_preparer_new (self, r);
    atomic_fetch_add (&self->preparers, 1);
    r->job = p->job;
    r->preparing = 1;
    pthread_t thread;
    pthread_attr_t attr;
    pthread_attr_init (&attr);
    pthread_attr_setdetachstate (&attr, PTHREAD_CREATE_DETACHED);
    int rc = pthread_create (&thread, &attr, s_prepare, p);
    pthread_attr_destroy (&attr);
    if (rc != 0) {
        atomic_fetch_sub (&self->preparers, 1);
        r->job = NULL;
        r->preparing = 0;
        bctx_job_destroy (&p->job);
        s_preparer_free (p);
        return bctx_reply_error (BCTX_E_INTERNAL, "cannot start a thread to load the plugin");
    }
    return NULL;
}

/* A prepared reload that cannot go to the worker: logs why, frees the
 * job.  err: why (borrowed).  Return the error reply (new). */
static char *
s_refuse (bctx_reload_t *self, s_reload_t *r, char *err, size_t errlen)
{
    bctx_job_t *job = r->job;
    const char *name = self->registry->config->contexts[r->ctx].name;
    /* The wire code follows why: a timeout is "unavailable" like the
     * tick's, a refused file by its reason, anything else the request's. */
    const char *code = BCTX_E_BAD_REQUEST;
    if (job->plugin || job->load_failure == BCTX_ELOADTIMEDOUT) {
        char why[1024];
        snprintf (why, sizeof why, "%.1000s", job->plugin ? "" : err);
        snprintf (err, errlen, "reload of context %s timed out after %zu ms while "
                  "loading the plugin%s%s", name, self->registry->config->reload_timeout_ms,
                  *why ? ": " : "", why);
        code = BCTX_E_UNAVAILABLE;
    } else if (job->load_failure == BCTX_ELOADFORBIDDEN) {
        code = BCTX_E_FORBIDDEN;
    } else if (job->load_failure == BCTX_ELOADTOOBIG) {
        code = BCTX_E_TOO_LARGE;
    }
    bctx_plugin_unref (&job->plugin);
    bctx_worker_reload_failed (self->registry->contexts[r->ctx].worker, err);
    bctx_log (BCTX_LOG_ERROR, "context %s: reload failed, the old version keeps serving: %s",
              name, err);
    r->job = NULL;
    bctx_job_destroy (&job);
    return bctx_reply_error (code, "reload failed, the old version keeps serving: %s", err);
}

/* The preparer is done: refuse, or send the new version to the worker.
 * Return an error reply (new), or NULL when it went to the worker. */
static char *
s_send (bctx_reload_t *self, s_reload_t *r)
{
    bctx_job_t *job = r->job;
    bctx_worker_t *w = self->registry->contexts[r->ctx].worker;
    char err[1400];
    r->preparing = 0;
    if (job->plugin) {
        job->plugin->loaded = bctx_worker_loaded (w);
        atomic_fetch_add (job->plugin->loaded, 1);
        if (bctx_registry_check_read_side (self->registry, job->plugin, err, sizeof err) != 0)
            bctx_plugin_unref (&job->plugin);
    } else {
        snprintf (err, sizeof err, "%s", job->reply ? job->reply : "cannot load");
    }
    if (job->plugin && self->stopping) {
        bctx_plugin_unref (&job->plugin);
        snprintf (err, sizeof err, "the host is stopping");
    }
    if (!job->plugin || atomic_load (&job->state) != BCTX_JOB_PENDING)
        return s_refuse (self, r, err, sizeof err);
    free (job->reply);
    job->reply = NULL;
    if (zmq_send (self->registry->contexts[r->ctx].push, &job, sizeof job, 0) < 0) {
        r->job = NULL;
        bctx_job_destroy (&job);
        return bctx_reply_error (BCTX_E_UNAVAILABLE, "context %s is not taking commands",
                                 self->registry->config->contexts[r->ctx].name);
    }
    return NULL;
}

/* Forgets reload k. */
static void
s_remove (bctx_reload_t *self, size_t k)
{
    free (self->reloads[k].path);
    self->reloads[k] = self->reloads[--self->n_reloads];
}

/* Answers reload k with reply (new, freed here) and forgets it. */
static void
s_finish (bctx_reload_t *self, size_t k, char *reply)
{
    s_answer (self, &self->reloads[k], reply);
    free (reply);
    s_remove (self, k);
}

char *
bctx_reload_start (bctx_reload_t *self, size_t ctx, const char *path,
                   const unsigned char *envelope, size_t envelope_len, int delimiter,
                   const char **code)
{
    const char *ignored;
    code = code ? code : &ignored;
    /* First and cheapest: may code load from there at all?  Nothing opens
     * the file before this (the loader checks again for every load).  A
     * path that does not resolve goes on, for the loader to say so. */
    const bctx_config_t *config = self->registry->config;
    const char *name = config->contexts[ctx].name;
    bctx_plugin_bounds_t bounds = bctx_reload_bounds (config, 0);
    char *resolved = NULL, why[2048];
    if (bctx_plugin_dirs_check (&bounds, path, "reload", &resolved, why, sizeof why)
        == BCTX_ELOADFORBIDDEN) {
        bctx_worker_reload_failed (self->registry->contexts[ctx].worker, why);
        bctx_log (BCTX_LOG_ERROR, "context %s: reload refused, the old version keeps "
                  "serving: %s", name, why);
        *code = BCTX_E_FORBIDDEN;
        return bctx_reply_error (BCTX_E_FORBIDDEN, "reload refused, the old version keeps "
                                 "serving: %s", why);
    }
    free (resolved);
    for (size_t k = 0; k < self->n_reloads; k++)
        if (self->reloads[k].ctx == ctx) {
            *code = BCTX_E_UNAVAILABLE;
            return bctx_reply_error (BCTX_E_UNAVAILABLE, "a reload of context %s is already "
                                     "in progress", name);
        }
    if (envelope_len > sizeof self->reloads[0].identity) {
        *code = BCTX_E_BAD_REQUEST;
        return bctx_reply_error (BCTX_E_BAD_REQUEST, "routing id too long");
    }
    self->reloads = bctx_realloc (self->reloads, (self->n_reloads + 1) * sizeof *self->reloads);
    s_reload_t *r = &self->reloads[self->n_reloads++];
    memset (r, 0, sizeof *r);
    r->ctx = ctx;
    r->path = strdup (path);
    r->deadline = bctx_now () + (double) config->reload_timeout_ms / 1000.0;
    if (envelope_len)
        memcpy (r->identity, envelope, envelope_len);
    r->identity_len = envelope_len;
    r->delimiter = delimiter;
    bctx_log (BCTX_LOG_INFO, "context %s: reloading from %s", name, path);
    char *reply = s_load (self, r);
    if (reply) {
        *code = BCTX_E_INTERNAL;
        s_remove (self, self->n_reloads - 1);
    }
    return reply;
}

/* A thread that frees one JSON value (arg, stolen). */
static void *
s_free_json (void *arg)
{
    json_decref (arg);
    return NULL;
}

/* Frees a big JSON value on a thread of its own: the old version's
 * aggregate cache can take tens of milliseconds to free, which the API
 * thread must not spend while clients wait.  value: stolen. */
static void
s_free_later (json_t *value)
{
    if (!value)
        return;
    pthread_t thread;
    pthread_attr_t attr;
    pthread_attr_init (&attr);
    pthread_attr_setdetachstate (&attr, PTHREAD_CREATE_DETACHED);
    if (pthread_create (&thread, &attr, s_free_json, value) != 0)
        json_decref (value);
    pthread_attr_destroy (&attr);
}

/* A rollback came back (nobody waits for it), but the runners must follow
 * the worker back to the old version. */
static void
s_rolled_back (bctx_reload_t *self, bctx_job_t *job)
{
    const bctx_config_t *config = self->registry->config;
    if (job->rollback)
        self->rollbacks--;
    if (job->tag > 0 && !self->stopping && job->ok) {
        char err[512];
        size_t ctx = (size_t) job->tag - 1;
        if (ctx < self->registry->n_contexts
            && bctx_registry_switch_runners (self->registry, ctx, err, sizeof err) != 0)
            bctx_log (BCTX_LOG_ERROR, "context %s: after the rollback: %s",
                      config->contexts[ctx].name, err);
        bctx_log (BCTX_LOG_WARN, "context %s: rolled back to the previous version",
                  ctx < self->registry->n_contexts ? config->contexts[ctx].name : "?");
    }
}

/* The worker switched to reload r's version but its runners cannot
 * follow (err): sends the old version (job->plugin) back to the worker.
 * Return the reload's reply (new). */
static char *
s_roll_back (bctx_reload_t *self, s_reload_t *r, bctx_job_t *job, const char *err)
{
    bctx_log (BCTX_LOG_ERROR, "context %s: reload failed after the switch (%s); "
              "rolling back to version %s", self->registry->config->contexts[r->ctx].name,
              err, job->plugin->desc->version);
    bctx_worker_reload_failed (self->registry->contexts[r->ctx].worker, err);
    bctx_job_t *back = calloc (1, sizeof *back);
    back->kind = BCTX_JOB_RELOAD;
    back->tag = (long) r->ctx + 1;
    back->rollback = 1;
    back->plugin = job->plugin;
    job->plugin = NULL;
    if (zmq_send (self->registry->contexts[r->ctx].push, &back, sizeof back, 0) < 0)
        bctx_job_destroy (&back);
    else
        self->rollbacks++;
    return bctx_reply_error (BCTX_E_BAD_REQUEST, "reload rolled back: %s", err);
}

/* The worker switched to reload r's version: the runners follow, or the
 * old version goes back.  Answers r's client. */
static void
s_switched (bctx_reload_t *self, s_reload_t *r, bctx_job_t *job)
{
    char err[512];
    if (bctx_registry_switch_runners (self->registry, r->ctx, err, sizeof err) != 0) {
        char *reply = s_roll_back (self, r, job, err);
        s_answer (self, r, reply);
        free (reply);
        return;
    }
    bctx_plugin_t *now = bctx_worker_plugin (self->registry->contexts[r->ctx].worker);
    bctx_log (BCTX_LOG_INFO, "context %s: version %s from %s now serving (was %s); "
              "commands were held %lld us", self->registry->config->contexts[r->ctx].name,
              now->desc->version, now->path,
              job->plugin ? job->plugin->desc->version : "?", job->pause_us);
    bctx_plugin_unref (&now);
    s_answer (self, r, job->reply);
}

void
bctx_reload_done (void *arg, bctx_job_t *job)
{
    bctx_reload_t *self = arg;
    size_t k = 0;
    while (k < self->n_reloads && self->reloads[k].job != job)
        k++;
    if (k == self->n_reloads) {
        s_rolled_back (self, job);
        s_free_later (job->dropped);
        job->dropped = NULL;
        bctx_job_destroy (&job);
        return;
    }
    s_reload_t *r = &self->reloads[k];
    if (r->preparing) {
        char *reply = s_send (self, r);
        if (reply)
            s_finish (self, k, reply);
        return;
    }
    if (job->reply && job->ok && self->stopping)
        s_answer (self, r, job->reply);  /* switched, but the read side is already stopped */
    else if (job->reply && job->ok)
        s_switched (self, r, job);
    else
        s_answer (self, r, job->reply ? job->reply : S_NO_REPLY);
    s_free_later (job->dropped);
    job->dropped = NULL;
    bctx_job_destroy (&job);      /* drops the old version's worker reference */
    s_remove (self, k);
}

/* Reload r is past its deadline and was not taken: answers "unavailable". */
static void
s_time_out (bctx_reload_t *self, size_t k)
{
    s_reload_t *r = &self->reloads[k];
    const char *name = self->registry->config->contexts[r->ctx].name;
    char why[512];
    snprintf (why, sizeof why, "reload of context %s timed out after %zu ms: %s; "
              "the old version keeps serving", name, self->registry->config->reload_timeout_ms,
              r->job ? "the context did not reach a switch point (a command is "
                       "still running in it)"
                     : "the previous version is still draining");
    bctx_worker_reload_failed (self->registry->contexts[r->ctx].worker, why);
    bctx_log (BCTX_LOG_ERROR, "context %s: %s", name, why);
    s_finish (self, k, bctx_reply_error (BCTX_E_UNAVAILABLE, "%s", why));
}

double
bctx_reload_tick (bctx_reload_t *self)
{
    double now = bctx_now (), next = -1;
    for (size_t k = 0; k < self->n_reloads;) {
        s_reload_t *r = &self->reloads[k];
        if (r->preparing) {
            /* The preparer answers soon; its deadline is checked then. */
            if (now >= r->deadline)
                atomic_store (&r->job->state, BCTX_JOB_CANCELLED);
            k++;
            continue;
        }
        if (!r->job && now < r->deadline) {
            char *reply = s_load (self, r);
            if (reply) {
                s_finish (self, k, reply);
                continue;
            }
        }
        if (now >= r->deadline) {
            int expected = BCTX_JOB_PENDING;
            /* The worker frees a cancelled job when it gets to it. */
            if (!r->job || atomic_compare_exchange_strong (&r->job->state, &expected,
                                                           BCTX_JOB_CANCELLED)) {
                s_time_out (self, k);
                continue;
            }
            /* The worker took it: its answer is on the way. */
        }
        double wait = r->job ? r->deadline - now : 0.005;
        if (wait < 0)
            wait = 0.005;
        if (next < 0 || wait < next)
            next = wait;
        k++;
    }
    return next;
}

/* {"op":"reload","context":C,"plugin":P?} */
static char *
s_op_reload (void *arg, bctx_request_t *req)
{
    bctx_reload_t *self = arg;
    const bctx_config_t *config = self->registry->config;
    const char *op = NULL, *name = NULL, *path = NULL;
    json_error_t jerr;
    if (json_unpack_ex (req->body, &jerr, JSON_STRICT, "{s:s, s:s, s?s}", "op", &op,
                        "context", &name, "plugin", &path) != 0)
        return bctx_request_error (req, BCTX_E_BAD_REQUEST, "reload: %s", jerr.text);
    int i = bctx_registry_index (config, name);
    if (i < 0)
        return bctx_request_error (req, BCTX_E_UNKNOWN_CONTEXT,
                                   "no context \"%s\" on this host", name);
    return bctx_reload_start (self, (size_t) i, path ? path : config->contexts[i].plugin,
                              req->envelope, req->envelope_len, req->delimiter, &req->code);
}

/* The deadline tick, as the loop calls it. */
static double
s_tick (void *arg)
{
    return bctx_reload_tick (arg);
}

void
bctx_reload_attach (bctx_reload_t *self, bctx_loop_t *loop)
{
    bctx_loop_timer (loop, s_tick, self);
}

int
bctx_reload_busy (const bctx_reload_t *self)
{
    return self->n_reloads || self->rollbacks;
}

void
bctx_reload_stop (bctx_reload_t *self)
{
    self->stopping = 1;
}

const bctx_busy_t *
bctx_reload_busy_mark (const bctx_reload_t *self)
{
    return &self->busy;
}

int
bctx_reload_preparers (const bctx_reload_t *self)
{
    return atomic_load (&self->preparers);
}

void
bctx_reload_cancel (bctx_reload_t *self)
{
    for (size_t k = 0; k < self->n_reloads; k++) {
        /* Still at a worker: it will free the job when it gets to it. */
        if (self->reloads[k].job && !self->reloads[k].preparing)
            atomic_store (&self->reloads[k].job->state, BCTX_JOB_CANCELLED);
        free (self->reloads[k].path);
    }
    self->n_reloads = 0;
}

void
bctx_reload_destroy (bctx_reload_t **self_p)
{
    bctx_reload_t *self = self_p ? *self_p : NULL;
    if (!self)
        return;
    bctx_reload_cancel (self);
    free (self->reloads);
    free (self);
    *self_p = NULL;
}
