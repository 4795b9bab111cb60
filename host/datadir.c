/*
 * datadir - the LOCK file, the high-water marks and the checks at start
 * of host.data.  SQLite is reached only through store.h.
 */
#include "datadir.h"
#include "log.h"
#include "store.h"
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

/* One local context's high-water mark. */
typedef struct {
    char *context;                /* its name */
    int64_t mark;                 /* the position in its file (as far as known) */
    int failing;                  /* the last write failed (logged once) */
} s_mark_t;

struct bctx_datadir {
    char *path;                   /* host.data */
    int lock_fd;                  /* LOCK, flock'ed; -1 once released */
    s_mark_t *marks;              /* one per context marked */
    size_t n_marks;               /* how many */
    int guarded;                  /* bctx_datadir_guard passed: marks may be written */
};

/* A checkpoint of a projection or reactor, seen in a read-side file. */
typedef struct {
    char *kind;                   /* "projection" or "reactor" */
    char *name;                   /* its name */
    char *file;                   /* its read-side file */
    char *source;                 /* the context it reads */
    int64_t position;             /* its largest checkpoint for source */
} s_seen_t;

/* Every checkpoint seen, and the file being read (for the callback). */
typedef struct {
    s_seen_t *items;              /* the checkpoints */
    size_t n;                     /* how many */
    const char *kind;             /* of the file being read */
    const char *name;             /* of the file being read */
    const char *file;             /* the file being read */
} s_seen_list_t;

bctx_datadir_t *
bctx_datadir_open (const char *path, char *err, size_t errlen)
{
    char *lock = NULL;
    if (asprintf (&lock, "%s/LOCK", path) < 0) {
        snprintf (err, errlen, "host.data %s: out of memory", path);
        return NULL;
    }
    int fd = open (lock, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        snprintf (err, errlen, "host.data: cannot open %s: %s", lock, strerror (errno));
        free (lock);
        return NULL;
    }
    int locked = flock (fd, LOCK_EX | LOCK_NB);
    /* A host killed with SIGKILL is gone, but a child it was starting may
     * hold the lock for a moment between its fork and its exec: when the
     * pid in the file is dead, wait for that, bounded. */
    for (int waited = 0; locked < 0 && errno == EWOULDBLOCK && waited < 2000; waited += 10) {
        char buf[32] = { 0 };
        long pid = pread (fd, buf, sizeof buf - 1, 0) > 0 ? strtol (buf, NULL, 10) : 0;
        if (pid <= 0 || kill ((pid_t) pid, 0) == 0 || errno != ESRCH) {
            errno = EWOULDBLOCK;
            break;
        }
        struct timespec tick = { 0, 10 * 1000 * 1000 };
        nanosleep (&tick, NULL);
        locked = flock (fd, LOCK_EX | LOCK_NB);
    }
    if (locked < 0) {
        int e = errno;
        if (e == EWOULDBLOCK) {
            char buf[32] = { 0 };
            ssize_t n = pread (fd, buf, sizeof buf - 1, 0);
            char *end = NULL;
            long pid = n > 0 ? strtol (buf, &end, 10) : 0;
            if (pid > 0 && end && *end == '\n')
                snprintf (err, errlen, "host.data %s is in use by bctx-host pid %ld; "
                          "stop that host first, or give this one another host.data",
                          path, pid);
            else
                snprintf (err, errlen, "host.data %s is in use by another bctx-host "
                          "(%s holds no pid yet); stop that host first", path, lock);
        } else {
            snprintf (err, errlen, "host.data: cannot lock %s: %s", lock, strerror (e));
        }
        close (fd);
        free (lock);
        return NULL;
    }
    char pid[32];
    int len = snprintf (pid, sizeof pid, "%ld\n", (long) getpid ());
    if (ftruncate (fd, 0) < 0 || pwrite (fd, pid, (size_t) len, 0) != len) {
        snprintf (err, errlen, "host.data: cannot write %s: %s", lock, strerror (errno));
        close (fd);
        free (lock);
        return NULL;
    }
    free (lock);
    bctx_datadir_t *self = calloc (1, sizeof *self);
    if (!self || !(self->path = strdup (path))) {
        free (self);
        close (fd);
        snprintf (err, errlen, "host.data %s: out of memory", path);
        return NULL;
    }
    self->lock_fd = fd;
    return self;
}

bctx_datadir_t *
bctx_datadir_attach (const char *path, const char *context, int wait_ms,
                     char *err, size_t errlen)
{
    char lock[4096];
    snprintf (lock, sizeof lock, "%s/run/%s.lock", path, context);
    int fd = open (lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        snprintf (err, errlen, "host.data: cannot open %s: %s", lock, strerror (errno));
        return NULL;
    }
    /* A process of this context that is still ending holds it, or the
     * one a handover replaces, which lets it go within a few ms: looked
     * at every 0.2 ms for the first 50 ms, then every 10 ms. */
    int rc;
    double start = bctx_now (), waited = 0;
    while ((rc = flock (fd, LOCK_EX | LOCK_NB)) < 0 && errno == EWOULDBLOCK
           && waited * 1000 < wait_ms) {
        struct timespec tick = { 0, waited < 0.05 ? 200 * 1000 : 10 * 1000 * 1000 };
        nanosleep (&tick, NULL);
        waited = bctx_now () - start;
    }
    if (rc < 0) {
        snprintf (err, errlen, "context %s: %s is still held by another process of this "
                  "context after %d ms", context, lock, wait_ms);
        close (fd);
        return NULL;
    }
    bctx_datadir_t *self = calloc (1, sizeof *self);
    self->path = strdup (path);
    self->lock_fd = fd;
    self->guarded = 1;     /* the supervisor checked host.data before it started */
    return self;
}

void
bctx_datadir_destroy (bctx_datadir_t **self_p)
{
    BCTX_SELF_OR_RETURN (bctx_datadir_t, self_p);
    for (size_t i = 0; i < self->n_marks; i++)
        free (self->marks[i].context);
    free (self->marks);
    if (self->lock_fd >= 0)
        close (self->lock_fd);    /* releases the flock */
    free (self->path);
    free (self);
    *self_p = NULL;
}

/* Reads context's high-water mark file.  Return the mark, 0 when there is
 * none, or -1 when it cannot be read (logged: it is only a lower bound). */
static int64_t
s_read_mark (const char *dir, const char *context)
{
    char path[4096];
    snprintf (path, sizeof path, "%s/%s.hwm", dir, context);
    int fd = open (path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno != ENOENT)
            bctx_log (BCTX_LOG_WARN, "%s: cannot read the high-water mark: %s; ignored",
                      path, strerror (errno));
        return errno == ENOENT ? 0 : -1;
    }
    char buf[32] = { 0 };
    ssize_t n = read (fd, buf, sizeof buf - 1);
    close (fd);
    char *end = NULL;
    long long mark = n > 0 ? strtoll (buf, &end, 10) : -1;
    if (n <= 0 || mark < 0 || end == buf || *end != '\n') {
        bctx_log (BCTX_LOG_WARN, "%s: not a high-water mark (expected a position and "
                  "a newline); ignored", path);
        return -1;
    }
    return (int64_t) mark;
}

/* Replaces context's high-water mark file with position: a temp file,
 * then rename, so a reader sees the old mark or the new, never half.  No
 * fsync: a mark lost to a crash is an older, lower one.  Return 0, or -1
 * with the reason in why. */
static int
s_write_mark (const char *dir, const char *context, int64_t position,
              char *why, size_t whylen)
{
    char path[4096], tmp[4112];
    snprintf (path, sizeof path, "%s/%s.hwm", dir, context);
    snprintf (tmp, sizeof tmp, "%s.tmp", path);
    char text[32];
    int len = snprintf (text, sizeof text, "%" PRId64 "\n", position);
    int fd = open (tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        snprintf (why, whylen, "%s: %s", tmp, strerror (errno));
        return -1;
    }
    int rc = write (fd, text, (size_t) len) == len ? 0 : -1;
    int e = errno;
    if (close (fd) < 0 && rc == 0) {
        rc = -1;
        e = errno;
    }
    if (rc == 0 && rename (tmp, path) < 0) {
        rc = -1;
        e = errno;
    }
    if (rc < 0) {
        snprintf (why, whylen, "%s: %s", tmp, e ? strerror (e) : "short write");
        unlink (tmp);
    }
    return rc;
}

/* The entry of context in the marks table; added, from its file, when
 * new.  Return: borrowed, or NULL when out of memory. */
static s_mark_t *
s_find_mark (bctx_datadir_t *self, const char *context, int64_t mark)
{
    for (size_t i = 0; i < self->n_marks; i++)
        if (strcmp (self->marks[i].context, context) == 0)
            return &self->marks[i];
    s_mark_t *grown = realloc (self->marks, (self->n_marks + 1) * sizeof *grown);
    if (!grown)
        return NULL;
    self->marks = grown;
    s_mark_t *m = &self->marks[self->n_marks];
    *m = (s_mark_t) { .context = strdup (context), .mark = mark };
    if (!m->context)
        return NULL;
    self->n_marks++;
    return m;
}

void
bctx_datadir_mark (bctx_datadir_t *self, const char *context, int64_t position)
{
    if (!self || !self->guarded)
        return;
    s_mark_t *m = NULL;
    for (size_t i = 0; i < self->n_marks && !m; i++)
        if (strcmp (self->marks[i].context, context) == 0)
            m = &self->marks[i];
    if (!m) {
        /* A context added since the start (SIGHUP): keep a higher mark
         * its file may hold, so a loss is still found at the next start. */
        int64_t old = s_read_mark (self->path, context);
        m = s_find_mark (self, context, old > 0 ? old : 0);
        if (!m)
            return;
    }
    if (position <= m->mark)
        return;
    char why[4200];
    if (s_write_mark (self->path, context, position, why, sizeof why) != 0) {
        if (!m->failing)
            bctx_log (BCTX_LOG_WARN, "context %s: cannot write its high-water mark: %s; "
                      "tried again every 100 ms", context, why);
        m->failing = 1;
        return;
    }
    if (m->failing)
        bctx_log (BCTX_LOG_INFO, "context %s: high-water mark written again (%" PRId64 ")",
                  context, position);
    m->failing = 0;
    m->mark = position;
}

/* ------------------------------------------------------------------
 * The checks at start.
 */

/* Runs quick_check on the file at path; what to do on damage is `fix`.
 * A check cut short is logged and passes.  Return 0, or -1 with err. */
static int
s_check (const char *path, const char *fix, char *err, size_t errlen)
{
    char why[2048];
    int rc = bctx_store_check (path, BCTX_DATADIR_CHECK_MS, why, sizeof why);
    if (rc == BCTX_ESTORECUTSHORT) {
        bctx_log (BCTX_LOG_WARN, "integrity check at start: %s; the rest of the file "
                  "is not checked", why);
        return 0;
    }
    if (rc != 0) {
        snprintf (err, errlen, "integrity check at start: %s. %s", why, fix);
        return -1;
    }
    return 0;
}

/* Adds one checkpoint of the file being read to the list. */
static int
s_add_seen (const char *source, int64_t position, void *arg)
{
    s_seen_list_t *list = arg;
    s_seen_t *grown = realloc (list->items, (list->n + 1) * sizeof *grown);
    if (!grown)
        return -1;
    list->items = grown;
    list->items[list->n++] = (s_seen_t) {
        .kind = strdup (list->kind), .name = strdup (list->name),
        .file = strdup (list->file), .source = strdup (source),
        .position = position,
    };
    return 0;
}

static void
s_seen_free (s_seen_list_t *list)
{
    for (size_t i = 0; i < list->n; i++) {
        free (list->items[i].kind);
        free (list->items[i].name);
        free (list->items[i].file);
        free (list->items[i].source);
    }
    free (list->items);
    list->items = NULL;
    list->n = 0;
}

/* Orders directory entries by name (messages come out the same each time). */
static int
s_by_name (const void *a, const void *b)
{
    return strcmp (*(char *const *) a, *(char *const *) b);
}

/* Whether entry is a read-side file: "projection-NAME.db" or
 * "reactor-NAME.db".  Sets *kind (static) and name.  Return 1 or 0. */
static int
s_read_side_file (const char *entry, const char **kind, char *name, size_t size)
{
    static const char *const kinds[] = { "projection", "reactor" };
    size_t len = strlen (entry);
    for (size_t k = 0; k < 2; k++) {
        size_t plen = strlen (kinds[k]);
        if (len > plen + 4 && strncmp (entry, kinds[k], plen) == 0
            && entry[plen] == '-' && strcmp (entry + len - 3, ".db") == 0
            && len - plen - 4 < size) {
            *kind = kinds[k];
            memcpy (name, entry + plen + 1, len - plen - 4);
            name[len - plen - 4] = '\0';
            return 1;
        }
    }
    return 0;
}

/* Checks every read-side file under host.data and lists its checkpoints.
 * Return 0, or -1 with err. */
static int
s_scan_read_side (bctx_datadir_t *self, s_seen_list_t *seen, char *err, size_t errlen)
{
    DIR *d = opendir (self->path);
    if (!d) {
        snprintf (err, errlen, "host.data: cannot list %s: %s", self->path, strerror (errno));
        return -1;
    }
    char **names = NULL;
    size_t n = 0;
    struct dirent *de;
    while ((de = readdir (d))) {
        const char *kind;
        char name[256];
        if (!s_read_side_file (de->d_name, &kind, name, sizeof name))
            continue;
        char **grown = realloc (names, (n + 1) * sizeof *grown);
        if (!grown)
            break;
        names = grown;
        if (!(names[n] = strdup (de->d_name)))
            break;
        n++;
    }
    closedir (d);
    if (n)
        qsort (names, n, sizeof *names, s_by_name);
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        const char *kind;
        char name[256], path[4096], fix[4600];
        s_read_side_file (names[i], &kind, name, sizeof name);
        snprintf (path, sizeof path, "%s/%s", self->path, names[i]);
        struct stat st;
        if (stat (path, &st) != 0 || st.st_size == 0)
            continue;
        snprintf (fix, sizeof fix, "It holds the %s %s's checkpoints%s: restore it (and "
                  "its -wal) from a backup, or remove it with its -wal and -shm so the %s %s",
                  kind, name, strcmp (kind, "projection") == 0 ? " and read models" : "",
                  kind, strcmp (kind, "projection") == 0
                        ? "is rebuilt from the logs"
                        : "starts again from the start of the logs");
        if (s_check (path, fix, err, errlen) != 0) {
            rc = -1;
            break;
        }
        seen->kind = kind;
        seen->name = name;
        seen->file = path;
        char why[4200];
        if (bctx_readside_peek_checkpoints (path, s_add_seen, seen, why, sizeof why) != 0) {
            snprintf (err, errlen, "cannot read the checkpoints at start: %s", why);
            rc = -1;
        }
    }
    bctx_strings_free (names, n);
    return rc;
}

/* Whether context is named in accept (NULL-terminated, or NULL). */
static int
s_accepted (const char *const *accept, const char *context)
{
    for (size_t i = 0; accept && accept[i]; i++)
        if (strcmp (accept[i], context) == 0)
            return 1;
    return 0;
}

/* Checks one local context.  Return 0, or -1 with err. */
static int
s_guard_context (bctx_datadir_t *self, const bctx_config_t *config, const char *context,
                 const s_seen_list_t *seen, int accept, char *err, size_t errlen)
{
    char db[4096], hwm[4096];
    snprintf (db, sizeof db, "%s/%s.db", self->path, context);
    snprintf (hwm, sizeof hwm, "%s/%s.hwm", self->path, context);
    int64_t end = 0;
    struct stat st;
    const char *state = "";
    if (stat (db, &st) != 0)
        state = " (the file is missing)";
    else if (st.st_size == 0)
        state = " (the file is empty)";   /* SQLite is not let near it: it would drop the -wal */
    else {
        char fix[4600];
        snprintf (fix, sizeof fix, "It is the log of context %s: restore it (and its -wal) "
                  "from a backup; `sqlite3 %s .recover` can copy what is still readable "
                  "into a new file", context, db);
        if (s_check (db, fix, err, errlen) != 0)
            return -1;
        char why[4200];
        if (bctx_store_peek_position (db, &end, why, sizeof why) != 0) {
            snprintf (err, errlen, "cannot read the log's end at start: %s", why);
            return -1;
        }
    }
    int64_t mark = s_read_mark (self->path, context);
    int64_t seen_max = mark > 0 ? mark : 0;
    for (size_t i = 0; i < seen->n; i++)
        if (strcmp (seen->items[i].source, context) == 0 && seen->items[i].position > seen_max)
            seen_max = seen->items[i].position;
    if (seen_max <= end) {
        if (accept)
            bctx_log (BCTX_LOG_INFO, "--accept-truncated-log %s: the log ends at %" PRId64
                      " and nothing past it was seen: nothing is lost", context, end);
        if (!s_find_mark (self, context, mark > 0 ? mark : 0)) {
            snprintf (err, errlen, "context %s: out of memory", context);
            return -1;
        }
        return 0;
    }
    /* Where the positions past the end were seen. */
    char where[2048];
    size_t used = 0;
    where[0] = '\0';
    if (mark > end)
        used += (size_t) snprintf (where, sizeof where, "high-water mark %" PRId64 " (%s)",
                                   mark, hwm);
    for (size_t i = 0; i < seen->n && used < sizeof where; i++) {
        const s_seen_t *s = &seen->items[i];
        if (strcmp (s->source, context) == 0 && s->position > end)
            used += (size_t) snprintf (where + used, sizeof where - used,
                                       "%s%s %s checkpoint %" PRId64 " (%s)",
                                       used ? ", " : "", s->kind, s->name, s->position,
                                       s->file);
    }
    if (!accept) {
        snprintf (err, errlen, "%s: the log of context %s ends at position %" PRId64 "%s, "
                  "but position %" PRId64 " was seen on this host: %s. Events %" PRId64
                  "..%" PRId64 " are lost (a damaged or missing -wal, or an older copy of "
                  "the file). Restore %s and its -wal from a backup, or accept the loss: "
                  "bctx-host --accept-truncated-log %s %s (then `bctx replay` each "
                  "projection named)", db, context, end, state, seen_max, where, end + 1,
                  seen_max, db, context, config->path ? config->path : "CONFIG.json");
        return -1;
    }
    bctx_log (BCTX_LOG_WARN, "--accept-truncated-log %s: positions %" PRId64 "..%" PRId64
              " of context %s are lost: %s ends at %" PRId64 "%s, but %s",
              context, end + 1, seen_max, context, db, end, state, where);
    for (size_t i = 0; i < seen->n; i++) {
        const s_seen_t *s = &seen->items[i];
        if (strcmp (s->source, context) != 0 || s->position <= end)
            continue;
        if (strcmp (s->kind, "projection") == 0)
            bctx_log (BCTX_LOG_WARN, "projection %s: its checkpoint %" PRId64 " for %s is "
                      "past the log's end %" PRId64 ": rebuild it with `bctx replay %s`",
                      s->name, s->position, context, end, s->name);
        else
            bctx_log (BCTX_LOG_WARN, "reactor %s: its checkpoint %" PRId64 " for %s is "
                      "past the log's end %" PRId64 ": it will not react to the events "
                      "that take positions %" PRId64 "..%" PRId64 " again",
                      s->name, s->position, context, end, end + 1, s->position);
    }
    char why[4200];
    if (s_write_mark (self->path, context, end, why, sizeof why) != 0) {
        snprintf (err, errlen, "--accept-truncated-log %s: cannot reset the high-water "
                  "mark: %s", context, why);
        return -1;
    }
    bctx_log (BCTX_LOG_WARN, "context %s: high-water mark reset to %" PRId64, context, end);
    if (!s_find_mark (self, context, end)) {
        snprintf (err, errlen, "context %s: out of memory", context);
        return -1;
    }
    return 0;
}

int
bctx_datadir_guard (bctx_datadir_t *self, const bctx_config_t *config,
                    const char *const *accept, char *err, size_t errlen)
{
    for (size_t i = 0; accept && accept[i]; i++) {
        int known = 0;
        for (size_t k = 0; k < config->n_contexts && !known; k++)
            known = strcmp (config->contexts[k].name, accept[i]) == 0;
        if (!known) {
            snprintf (err, errlen, "--accept-truncated-log %s: no context of that name "
                      "runs on this host", accept[i]);
            return -1;
        }
    }
    s_seen_list_t seen = { 0 };
    int rc = s_scan_read_side (self, &seen, err, errlen);
    for (size_t i = 0; i < config->n_contexts && rc == 0; i++) {
        const char *name = config->contexts[i].name;
        rc = s_guard_context (self, config, name, &seen, s_accepted (accept, name),
                              err, errlen);
    }
    s_seen_free (&seen);
    if (rc == 0)
        self->guarded = 1;
    return rc;
}
