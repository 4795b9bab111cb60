/*
 * projection - the projection runner: catch-up, live feed, generations
 * and rebuilds, read-model cache, checkpoints.
 */
#include "projection.h"
#include "consumer.h"
#include "log.h"
#include "runner.h"
#include "store.h"
#include "util.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#define S_BATCH        5000      /* events per transaction */
#define S_CACHE_MAX    100000    /* read models kept parsed between batches */
#define S_IDLE_MS      1000      /* wake at least this often */

/* Commands to a projector's thread, by name on its runner's pipe. */
enum {
    S_REPLAY = 1,                 /* rebuild from position 1 */
    S_RETRY,                      /* apply the parked events asked for */
};

static const char *const s_commands[] = {
    [S_REPLAY] = "REPLAY",
    [S_RETRY] = "RETRY",
};

struct bctx_models {
    bctx_projector_t *owner;      /* whose */
    json_t *cache;                /* key -> value, or JSON null when absent */
    json_t *dirty;                /* keys written in this batch -> true */
    int failed;                   /* a store read failed in this batch */
};

struct bctx_projector {
    bctx_consumer_t base;         /* its feed, file, thread, poison slot, stats */
    int64_t passed_over;          /* parked events it did not hand its handler */
    const bctx_projection_t *def; /* its declaration, inside base.plugin */
    struct bctx_models models;    /* read models of the generation fed */
    int64_t gen;                  /* the generation being fed */
    int building;                 /* gen is a rebuild beside the live one */
    int64_t built_from;           /* heads when the rebuild started, summed */
    double last_progress_log;     /* when progress was last logged */
    int backoff_ms;               /* wait after a failure */
    double streak_start;          /* when the current catch-up began, or 0 */
    int64_t streak_from;          /* events handled when it began */
    /* Shared with the API thread, under base.lock: */
    json_t *retries;              /* parked events to apply: [[source, position], ...] */
    int64_t *shown_build;         /* per source: checkpoint of the rebuild */
    int shown_building;           /* a rebuild is running */
    int64_t rebuilds;             /* rebuilds completed since start */
};

/* --- host services --------------------------------------------------- */

json_t *
bctx_models_get (bctx_models_t *m, const char *key)
{
    if (!m || !key)
        return NULL;
    json_t *v = json_object_get (m->cache, key);
    if (!v) {
        char *text = bctx_readside_get (m->owner->base.db, m->owner->gen, key);
        v = text ? json_loads (text, JSON_DECODE_ANY, NULL) : json_null ();
        free (text);
        if (!v) {
            m->failed = 1;
            return NULL;
        }
        json_object_set_new (m->cache, key, v);
    }
    return json_is_null (v) ? NULL : json_incref (v);
}

int
bctx_models_put (bctx_models_t *m, const char *key, json_t *value)
{
    if (!m || !key || !value || json_is_null (value)) {
        json_decref (value);
        return -1;
    }
    if (json_object_set_new (m->cache, key, value) != 0)
        return -1;
    return json_object_set_new (m->dirty, key, json_true ());
}

int
bctx_models_delete (bctx_models_t *m, const char *key)
{
    if (!m || !key)
        return -1;
    json_object_set_new (m->cache, key, json_null ());
    return json_object_set_new (m->dirty, key, json_true ());
}

/* --- generations ----------------------------------------------------- */

static void
s_set_error (bctx_projector_t *self, const char *fmt, ...)
    __attribute__ ((format (printf, 2, 3)));

static void
s_set_error (bctx_projector_t *self, const char *fmt, ...)
{
    char text[256];
    va_list ap;
    va_start (ap, fmt);
    vsnprintf (text, sizeof text, fmt, ap);
    va_end (ap);
    pthread_mutex_lock (&self->base.lock);
    snprintf (self->base.error, sizeof self->base.error, "%s", text);
    pthread_mutex_unlock (&self->base.lock);
    bctx_log (BCTX_LOG_ERROR, "projection %s: %s", self->base.name, text);
}

/* Loads gen's checkpoints and forgets cached read models. */
static void
s_feed_gen (bctx_projector_t *self, int64_t gen, int building)
{
    self->gen = gen;
    self->building = building;
    json_object_clear (self->models.cache);
    json_object_clear (self->models.dirty);
    size_t n = bctx_feed_size (self->base.feed);
    for (size_t i = 0; i < n; i++)
        self->base.checkpoints[i] = bctx_readside_checkpoint (self->base.db, gen,
                                                          bctx_feed_name (self->base.feed, i));
    pthread_mutex_lock (&self->base.lock);
    self->shown_building = building;
    for (size_t i = 0; i < n; i++) {
        if (building)
            self->shown_build[i] = self->base.checkpoints[i];
        else
            self->base.shown[i] = self->base.checkpoints[i];
    }
    pthread_mutex_unlock (&self->base.lock);
}

/* Starts a rebuild into the generation after the live one. */
static int
s_start_rebuild (bctx_projector_t *self, const char *why)
{
    int64_t live = bctx_readside_meta (self->base.db, "live_gen", 1);
    int64_t next = live + 1;
    if (bctx_readside_begin (self->base.db) != 0)
        return -1;
    int64_t old_build = bctx_readside_meta (self->base.db, "build_gen", 0);
    if ((old_build && bctx_readside_drop (self->base.db, old_build) != 0)
        || bctx_readside_drop (self->base.db, next) != 0
        || bctx_readside_set_meta (self->base.db, "build_gen", next) != 0
        || bctx_readside_set_meta (self->base.db, "build_version", self->def->version) != 0
        || bctx_readside_commit (self->base.db) != 0) {
        bctx_readside_rollback (self->base.db);
        return -1;
    }
    self->built_from = 0;
    for (size_t i = 0; i < bctx_feed_size (self->base.feed); i++)
        self->built_from += bctx_feed_head (self->base.feed, i);
    bctx_log (BCTX_LOG_INFO, "projection %s: rebuilding version %u from position 1 (%s); "
              "queries answer from the live read models until it has caught up",
              self->base.name, self->def->version, why);
    s_feed_gen (self, next, 1);
    return 0;
}

/* The rebuild caught up: make it live, drop the old generation. */
static int
s_go_live (bctx_projector_t *self)
{
    int64_t old = bctx_readside_meta (self->base.db, "live_gen", 0);
    if (bctx_readside_begin (self->base.db) != 0)
        return -1;
    if (bctx_readside_set_meta (self->base.db, "live_gen", self->gen) != 0
        || bctx_readside_set_meta (self->base.db, "live_version", self->def->version) != 0
        || bctx_readside_delete_meta (self->base.db, "build_gen") != 0
        || bctx_readside_delete_meta (self->base.db, "build_version") != 0
        || (old && bctx_readside_drop (self->base.db, old) != 0)
        || bctx_readside_commit (self->base.db) != 0) {
        bctx_readside_rollback (self->base.db);
        return -1;
    }
    bctx_log (BCTX_LOG_INFO, "projection %s: rebuild of version %u caught up; now live",
              self->base.name, self->def->version);
    pthread_mutex_lock (&self->base.lock);
    self->rebuilds++;
    pthread_mutex_unlock (&self->base.lock);
    s_feed_gen (self, self->gen, 0);
    return 0;
}

/* Decides which generation to feed at start. */
static int
s_open_generations (bctx_projector_t *self)
{
    int64_t live = bctx_readside_meta (self->base.db, "live_gen", 0);
    if (live == 0) {
        /* First run: build generation 1 and serve it as it fills. */
        if (bctx_readside_begin (self->base.db) != 0
            || bctx_readside_set_meta (self->base.db, "live_gen", 1) != 0
            || bctx_readside_set_meta (self->base.db, "live_version", self->def->version) != 0
            || bctx_readside_commit (self->base.db) != 0) {
            bctx_readside_rollback (self->base.db);
            return -1;
        }
        s_feed_gen (self, 1, 0);
        return 0;
    }
    int64_t live_version = bctx_readside_meta (self->base.db, "live_version", 0);
    int64_t build = bctx_readside_meta (self->base.db, "build_gen", 0);
    int64_t build_version = bctx_readside_meta (self->base.db, "build_version", 0);
    /* Checkpoints of the live generation, for stats, whatever is fed. */
    s_feed_gen (self, live, 0);
    if (build && build_version == (int64_t) self->def->version) {
        bctx_log (BCTX_LOG_INFO, "projection %s: resuming the rebuild of version %u",
                  self->base.name, self->def->version);
        s_feed_gen (self, build, 1);
        return 0;
    }
    if (live_version != (int64_t) self->def->version) {
        char why[96];
        snprintf (why, sizeof why, "stored version %lld, declared %u",
                  (long long) live_version, self->def->version);
        return s_start_rebuild (self, why);
    }
    if (build) {
        /* A rebuild of another version was left behind: drop it. */
        if (bctx_readside_begin (self->base.db) != 0
            || bctx_readside_drop (self->base.db, build) != 0
            || bctx_readside_delete_meta (self->base.db, "build_gen") != 0
            || bctx_readside_delete_meta (self->base.db, "build_version") != 0
            || bctx_readside_commit (self->base.db) != 0) {
            bctx_readside_rollback (self->base.db);
            return -1;
        }
    }
    return 0;
}

/* --- feeding --------------------------------------------------------- */

/* Hands event to the handler, noted in the poison slot and the busy time.
 * Return the handler's result. */
static int
s_call (bctx_projector_t *self, const bctx_event_t *event)
{
    const bctx_plugin_t *p = self->base.plugin;
    bctx_slot_enter (self->base.slot, event);
    bctx_busy_begin (&self->base.busy);
    int rc = self->def->handle (p->user, &p->host, &self->models, event);
    bctx_busy_end (&self->base.busy);
    bctx_slot_leave (self->base.slot);
    return rc;
}

static int
s_handle (const bctx_event_t *event, void *arg)
{
    bctx_projector_t *self = arg;
    if (bctx_poison_parked (self->base.poison, self->base.who, event->context, event->position)) {
        bctx_log (BCTX_LOG_WARN, "%s: passes over %s.%s at position %lld, parked: it ended "
                  "its process %d times", self->base.who, event->context, event->type,
                  (long long) event->position, BCTX_POISON_LIMIT);
        self->passed_over++;
        return 0;
    }
    int rc = s_call (self, event);
    if (rc != BCTX_OK || self->models.failed) {
        s_set_error (self, "handler failed (%d) on %s.%s at position %lld", rc,
                     event->context, event->type, (long long) event->position);
        return 1;
    }
    return 0;
}

/* Writes the batch's dirty read models. */
static int
s_flush (bctx_projector_t *self)
{
    const char *key;
    json_t *flag;
    json_object_foreach (self->models.dirty, key, flag) {
        json_t *v = json_object_get (self->models.cache, key);
        int rc;
        if (!v || json_is_null (v)) {
            rc = bctx_readside_delete (self->base.db, self->gen, key);
        } else {
            char *text = json_dumps (v, JSON_COMPACT | JSON_ENCODE_ANY);
            rc = text ? bctx_readside_put (self->base.db, self->gen, key, text) : -1;
            free (text);
        }
        if (rc != 0)
            return -1;
    }
    json_object_clear (self->models.dirty);
    return 0;
}

/* Feeds one batch from source i.  Return 1 if more may be waiting, 0 if
 * caught up, -1 on failure (nothing of the batch kept). */
static int
s_batch (bctx_projector_t *self, size_t i)
{
    int64_t from = self->base.checkpoints[i] + 1;
    int64_t head = bctx_feed_head (self->base.feed, i);
    if (from > head + 1 && !self->base.error[0])
        /* Say it, once: the log is shorter than what was already read. */
        s_set_error (self, "checkpoint %lld for %s is past its log's last position %lld: "
                     "was the log replaced (a moved context without its file)? "
                     "`bctx replay %s` rebuilds from what the log holds",
                     (long long) self->base.checkpoints[i], bctx_feed_name (self->base.feed, i),
                     (long long) head, self->base.name);
    if (from > head)
        return 0;
    if (bctx_readside_begin (self->base.db) != 0) {
        s_set_error (self, "cannot begin: %s", bctx_readside_error (self->base.db));
        return -1;
    }
    int64_t last = self->base.checkpoints[i];
    self->models.failed = 0;
    /* No further than the head: the worker commits before it moves the
     * head, so the log may already hold more, and a checkpoint past the
     * head would look like a replaced log at the next batch.  Its
     * wake-up comes after the head has moved. */
    int64_t limit = head - from + 1 < S_BATCH ? head - from + 1 : S_BATCH;
    int64_t n = bctx_feed_read (self->base.feed, i, from, limit, s_handle, self, &last);
    const char *source = bctx_feed_name (self->base.feed, i);
    if (n < 0 || s_flush (self) != 0
        || (last > self->base.checkpoints[i]
            && bctx_readside_set_checkpoint (self->base.db, self->gen, source, last) != 0)
        || bctx_readside_commit (self->base.db) != 0) {
        if (n >= 0)
            s_set_error (self, "cannot store read models: %s", bctx_readside_error (self->base.db));
        bctx_readside_rollback (self->base.db);
        /* What the cache holds may be from the dropped batch. */
        json_object_clear (self->models.cache);
        json_object_clear (self->models.dirty);
        return -1;
    }
    self->base.checkpoints[i] = last;
    if (json_object_size (self->models.cache) > S_CACHE_MAX)
        json_object_clear (self->models.cache);
    pthread_mutex_lock (&self->base.lock);
    if (self->building)
        self->shown_build[i] = last;
    else
        self->base.shown[i] = last;
    self->base.handled += n;
    self->base.error[0] = '\0';
    pthread_mutex_unlock (&self->base.lock);
    return n == S_BATCH ? 1 : 0;
}

/* One pass over every source.  Return 1 if more may be waiting, 0 if all
 * caught up, -1 on failure. */
static int
s_catch_up (bctx_projector_t *self)
{
    int more = 0;
    for (size_t i = 0; i < bctx_feed_size (self->base.feed); i++) {
        int rc = s_batch (self, i);
        if (rc < 0)
            return -1;
        more |= rc;
    }
    if (self->building && bctx_now () - self->last_progress_log > 2.0) {
        int64_t done = 0, total = 0;
        for (size_t i = 0; i < bctx_feed_size (self->base.feed); i++) {
            done += self->base.checkpoints[i];
            total += bctx_feed_head (self->base.feed, i);
        }
        bctx_log (BCTX_LOG_INFO, "projection %s: rebuilding, %lld of %lld events read (%.0f%%)",
                  self->base.name, (long long) done, (long long) total,
                  total ? 100.0 * (double) done / (double) total : 100.0);
        self->last_progress_log = bctx_now ();
    }
    return more;
}

/* --- retry of parked events ------------------------------------------ */

typedef struct {
    bctx_projector_t *self;       /* the projector */
    int64_t position;             /* the parked event's */
    int rc;                       /* its handler's result, or -1 when not read */
} s_retrying_t;

/* Hands the parked event to the handler (the one row read: nothing else
 * is handed on). */
static int
s_retry_handle (const bctx_event_t *event, void *arg)
{
    s_retrying_t *r = arg;
    bctx_projector_t *self = r->self;
    if (event->position != r->position)
        return 0;
    r->rc = s_call (self, event);
    return 0;
}

/* Runs source's parked event at position again.  The projection is past
 * it, so the event is applied now, alone, to the read models as they are
 * (in the transaction of its read models; the checkpoint stays), and is
 * unparked.  A generation that has not reached it yet (a rebuild) folds
 * it in order once unparked.  A handler that fails leaves it parked; one
 * that crashes ends the process, which counts it (poison.h). */
static void
s_retry_one (bctx_projector_t *self, const char *source, int64_t position)
{
    if (!bctx_poison_parked (self->base.poison, self->base.who, source, position))
        return;                    /* asked twice: done already */
    int i = bctx_feed_index (self->base.feed, source);
    if (i < 0) {
        s_set_error (self, "cannot retry %s's event at position %lld: this version does "
                     "not consume %s; it stays parked", source, (long long) position, source);
        return;
    }
    if (self->base.checkpoints[i] < position) {
        bctx_log (BCTX_LOG_INFO, "projection %s: has not reached %s's parked event at "
                  "position %lld yet (a rebuild): unparked, it is folded in order", self->base.name,
                  source, (long long) position);
        bctx_poison_unpark (self->base.poison, self->base.who, source, position);
        return;
    }
    bctx_log (BCTX_LOG_INFO, "projection %s: retrying %s's parked event at position %lld",
              self->base.name, source, (long long) position);
    if (bctx_readside_begin (self->base.db) != 0) {
        s_set_error (self, "cannot begin: %s", bctx_readside_error (self->base.db));
        return;
    }
    s_retrying_t r = { .self = self, .position = position, .rc = -1 };
    int64_t last = position - 1;
    self->models.failed = 0;
    int64_t n = bctx_feed_read (self->base.feed, (size_t) i, position, 1, s_retry_handle, &r,
                                &last);
    if (n != 1 || r.rc != BCTX_OK || self->models.failed || s_flush (self) != 0
        || bctx_readside_commit (self->base.db) != 0) {
        if (n == 1 && r.rc != BCTX_OK)
            s_set_error (self, "retry of %s's parked event at position %lld: handler "
                         "failed (%d); it stays parked", source, (long long) position, r.rc);
        else
            s_set_error (self, "retry of %s's parked event at position %lld: cannot read "
                         "it or store its read models (%s); it stays parked", source,
                         (long long) position, bctx_readside_error (self->base.db));
        bctx_readside_rollback (self->base.db);
        json_object_clear (self->models.cache);
        json_object_clear (self->models.dirty);
        return;
    }
    pthread_mutex_lock (&self->base.lock);
    self->base.handled++;
    pthread_mutex_unlock (&self->base.lock);
    bctx_poison_unpark (self->base.poison, self->base.who, source, position);
}

/* Runs the parked events asked for, in the order asked. */
static void
s_retry (bctx_projector_t *self)
{
    pthread_mutex_lock (&self->base.lock);
    json_t *asked = self->retries;
    self->retries = json_array ();
    pthread_mutex_unlock (&self->base.lock);
    size_t k;
    json_t *e;
    json_array_foreach (asked, k, e)
        s_retry_one (self, json_string_value (json_array_get (e, 0)),
                     json_integer_value (json_array_get (e, 1)));
    json_decref (asked);
}

/* The projector's thread: commands, then a pass over the sources, then a
 * wait for the bus, a command or the idle tick. */
static void
s_run (bctx_runner_t *runner, void *arg)
{
    bctx_projector_t *self = arg;
    bctx_log_set_context (self->base.context);
    for (;;) {
        int cmd, replay = 0, retry = 0;
        while ((cmd = bctx_runner_recv (runner)) > 0) {
            if (cmd == S_REPLAY)
                replay = 1;
            else if (cmd == S_RETRY)
                retry = 1;
        }
        if (cmd == BCTX_RUNNER_TERM)
            break;
        if (replay && s_start_rebuild (self, "asked by replay") != 0)
            s_set_error (self, "cannot start a rebuild: %s", bctx_readside_error (self->base.db));
        if (retry)
            s_retry (self);
        if (!self->streak_start) {
            self->streak_start = bctx_now ();
            self->streak_from = self->base.handled;
        }
        int rc = s_catch_up (self);
        if (rc == 0) {
            /* Caught up: say how fast, when it was a catch-up worth naming. */
            int64_t n = self->base.handled - self->streak_from;
            double took = bctx_now () - self->streak_start;
            if (n >= 10000)
                bctx_log (BCTX_LOG_INFO, "projection %s: caught up %lld events in %.3f s "
                          "(%.0f events/s)", self->base.name, (long long) n, took,
                          took > 0 ? (double) n / took : 0.0);
            self->streak_start = 0;
        }
        int wait_ms = S_IDLE_MS;
        if (rc < 0) {
            self->backoff_ms = self->backoff_ms ? self->backoff_ms * 2 : 100;
            if (self->backoff_ms > 5000)
                self->backoff_ms = 5000;
            wait_ms = self->backoff_ms;
        } else {
            self->backoff_ms = 0;
            if (rc == 0 && self->building && s_go_live (self) != 0)
                s_set_error (self, "cannot switch to the rebuilt read models: %s",
                             bctx_readside_error (self->base.db));
            if (rc > 0)
                continue;
        }
        if (bctx_consumer_wait (&self->base, wait_ms) < 0)
            break;
    }
}

/* --- lifecycle ------------------------------------------------------- */

bctx_projector_t *
bctx_projector_new (void *zctx, const char *data, bctx_plugin_t *plugin,
                    const bctx_projection_t *def, const bctx_source_t *sources,
                    size_t n, char *err, size_t errlen)
{
    bctx_projector_t *self = calloc (1, sizeof *self);
    bctx_consumer_init (&self->base, "projection", plugin, def->name);
    self->def = def;
    self->models.owner = self;
    self->models.cache = json_object ();
    self->models.dirty = json_object ();
    self->retries = json_array ();
    if (!def->handle || def->version == 0) {
        snprintf (err, errlen, "%s: needs a handle and a version >= 1", self->base.label);
        goto fail;
    }
    if (bctx_consumer_open (&self->base, data, def->consumes, sources, n, err, errlen) != 0)
        goto fail;
    self->shown_build = calloc (bctx_feed_size (self->base.feed), sizeof *self->shown_build);
    if (s_open_generations (self) != 0) {
        snprintf (err, errlen, "%s: %s", self->base.path, bctx_readside_error (self->base.db));
        goto fail;
    }
    if (bctx_consumer_connect (&self->base, zctx, s_commands,
                               sizeof s_commands / sizeof *s_commands, s_run, self,
                               err, errlen) != 0)
        goto fail;
    return self;
fail:
    bctx_projector_destroy (&self);
    return NULL;
}

void
bctx_projector_replay (bctx_projector_t *self)
{
    bctx_runner_send (self->base.runner, S_REPLAY);
}

int
bctx_projector_retry (bctx_projector_t *self, const char *source, int64_t position)
{
    if (!bctx_poison_parked (self->base.poison, self->base.who, source, position))
        return -1;
    pthread_mutex_lock (&self->base.lock);
    json_array_append_new (self->retries, json_pack ("[s, I]", source, (json_int_t) position));
    pthread_mutex_unlock (&self->base.lock);
    bctx_runner_send (self->base.runner, S_RETRY);
    return 0;
}

bctx_consumer_t *
bctx_projector_base (bctx_projector_t *self)
{
    return &self->base;
}

const char *
bctx_projector_path (const bctx_projector_t *self)
{
    return self->base.path;
}

/* A projection's own stats (a bctx_consumer_stats_fn). */
static json_t *
s_stats (void *arg, json_t *checkpoints, json_t *lag)
{
    bctx_projector_t *self = arg;
    json_t *rebuild = json_null ();
    int64_t done = 0, total = 0;
    for (size_t i = 0; i < bctx_feed_size (self->base.feed); i++) {
        done += self->shown_build[i];
        total += bctx_feed_head_known (self->base.feed, i);
    }
    if (self->shown_building) {
        rebuild = json_pack ("{s:I, s:I, s:f}", "read", (json_int_t) done,
                             "of", (json_int_t) total,
                             "percent", total ? 100.0 * (double) done / (double) total : 100.0);
    }
    json_t *stats = json_pack ("{s:s, s:s, s:i, s:s, s:o, s:o, s:o, s:I, s:I, s:s?}",
                               "context", self->base.context, "name", self->base.name,
                               "version", (int) self->def->version,
                               "state", self->base.error[0] ? "failing"
                                        : self->shown_building ? "rebuilding" : "live",
                               "checkpoints", checkpoints, "lag", lag,
                               "rebuild", rebuild,
                               "handled", (json_int_t) self->base.handled,
                               "rebuilds", (json_int_t) self->rebuilds,
                               "error", self->base.error[0] ? self->base.error : NULL);
    json_object_set_new (stats, "passed_over", json_integer (self->passed_over));
    return stats;
}

json_t *
bctx_projector_stats (bctx_projector_t *self)
{
    return bctx_consumer_stats (&self->base, s_stats, self);
}

void
bctx_projector_destroy (bctx_projector_t **self_p)
{
    BCTX_SELF_OR_RETURN (bctx_projector_t, self_p);
    bctx_consumer_close (&self->base);
    json_decref (self->models.cache);
    json_decref (self->models.dirty);
    json_decref (self->retries);
    free (self->shown_build);
    free (self);
    *self_p = NULL;
}
