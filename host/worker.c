/*
 * worker - the command path of one context: queue, aggregate cache,
 * decide, group commit, reply, publish.
 */

#include "worker.h"
#include "cache.h"
#include "decided.h"
#include "dedup.h"
#include "worker_link.h"
#include "bus.h"
#include "log.h"
#include "protocol.h"
#include "store.h"
#include "util.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#define S_CACHE_MAX   200000   /* aggregates cached before the cache is reset */
#define S_AGG_MAX     256      /* longest aggregate id, in bytes */

struct bctx_worker {
    char *name;                   /* the context's name */
    char *endpoint;               /* inproc endpoint of the queue */
    char *store_path;             /* host.data/<name>.db */
    void *zctx;                   /* the host's ZeroMQ context (borrowed) */
    void *queue;                  /* PULL: job pointers from the API thread */
    void *replies;                /* PUSH: job pointers back, with replies */
    void *bus;                    /* PUB into the internal bus */
    char *bus_in;                 /* where it connects: its supervisor's bus, or NULL */
    bctx_worker_link_t link;      /* a context process's command link (worker_link.h) */
    bctx_plugin_t *plugin;        /* the version serving (the worker's reference) */
    _Atomic int loaded;           /* versions loaded: 1 (a version is swapped by a
                                     handover between processes) */
    pthread_mutex_t info_lock;    /* guards the plugin against readers */
    char loaded_at[40];           /* when the serving version was loaded */
    int info_lock_ready;          /* info_lock was initialised */
    bctx_store_t *store;          /* the context's log (read-write) */
    json_t *cache;                /* aggregate id -> [version, state] */
    int64_t warm_at;              /* a standby: the position its cache is folded to */
    size_t max_batch;             /* most commands per commit */
    size_t max_events;            /* most events per command (host.max_events_per_command) */
    size_t max_data;              /* largest event data, in bytes (host.max_message) */
    pthread_t thread;             /* the worker thread */
    int started;                  /* thread was created */
    bctx_worker_stats_t stats;    /* counters */
};

/* What one command of a batch produced, kept until the commit. */
typedef struct {
    bctx_job_t *job;              /* the job (borrowed until replied) */
    char **topics;                /* topics of the events to publish */
    char **texts;                 /* the events as JSON text */
    size_t n_published;           /* how many */
} s_pending_t;

void
bctx_job_destroy (bctx_job_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    json_decref ((*self_p)->request);
    free ((*self_p)->reply);
    free (*self_p);
    *self_p = NULL;
}

/* The cache entry of an aggregate, folding its events from the store when
 * absent.  Return: borrowed, or NULL on failure (message in why). */
static json_t *
s_aggregate (bctx_worker_t *self, const char *aggregate, char *why,
             size_t whylen)
{
    return bctx_cache_entry (self->cache, self->plugin, self->store, aggregate, why, whylen);
}

/* Remembers the reply of a command that appended nothing (for retries) and
 * sets it on the job.  Only ids a client or reactor chose are remembered:
 * nobody can retry an id the host made up.  key: the command's stored key.
 * reply: stolen. */
static int
s_settle (bctx_worker_t *self, bctx_job_t *job, const char *key, char *reply)
{
    job->reply = reply;
    if (!json_object_get (job->request, "id"))
        return 0;
    int rc = bctx_store_remember (self->store, key, reply);
    return rc == BCTX_ESTORE ? -1 : 0;
}

/* Adds an event to publish after the commit.  topic, text: stolen. */
static void
s_publish_later (s_pending_t *p, char *topic, char *text)
{
    p->topics = bctx_realloc (p->topics, (p->n_published + 1) * sizeof *p->topics);
    p->texts = bctx_realloc (p->texts, (p->n_published + 1) * sizeof *p->texts);
    p->topics[p->n_published] = topic;
    p->texts[p->n_published] = text;
    p->n_published++;
}

static void
s_pending_clear (s_pending_t *p)
{
    for (size_t i = 0; i < p->n_published; i++) {
        free (p->topics[i]);
        free (p->texts[i]);
    }
    free (p->topics);
    free (p->texts);
    p->topics = p->texts = NULL;
    p->n_published = 0;
}

/* One command on its way through s_handle: what it names, then what its
 * decide returned.  s_decision_clear frees what it owns. */
typedef struct {
    const char *command;          /* its name (in the request) */
    const char *id;               /* its id, given or made (idbuf) */
    const char *key;              /* the id as remembered (bctx_dedup_key) */
    int given;                    /* the request named its id */
    char idbuf[33];               /* a made id */
    char keybuf[BCTX_DEDUP_KEY_MAX]; /* a reactor's key */
    const bctx_command_t *cmd;    /* the plugin's command */
    const char *aggregate;        /* its aggregate id (in the request) */
    json_t *entry;                /* the aggregate's cache entry (borrowed) */
    json_t *events;               /* what decide returned (owned) */
    char **texts;                 /* each event's data as JSON text (owned) */
    size_t n;                     /* how many events */
    json_t *next;                 /* the state after folding them (owned), or NULL */
} s_decision_t;

/* s_handle's steps return this to go on, or s_handle's own result. */
#define S_GO_ON 1

static void
s_decision_clear (s_decision_t *d)
{
    if (d->texts)
        bctx_decided_texts_free (d->texts, d->n);
    free (d->texts);
    json_decref (d->events);
    json_decref (d->next);
}

/* Fails job with code and a message (static or formatted by the
 * caller), counted as failed.  Return 0: the command is answered. */
static int
s_fail (bctx_worker_t *self, bctx_job_t *job, char *reply)
{
    atomic_fetch_add (&self->stats.failed, 1);
    job->reply = reply;
    return 0;
}

/* What the command names: its id (a remembered one is answered from
 * memory or from its stream), its command and its aggregate's entry.
 * Return S_GO_ON, or s_handle's result once the job is answered. */
static int
s_resolve (bctx_worker_t *self, bctx_job_t *job, s_decision_t *d)
{
    json_t *req = job->request;
    d->command = json_string_value (json_object_get (req, "command"));
    json_t *data = json_object_get (req, "data");
    json_t *jid = json_object_get (req, "id");
    d->given = jid != NULL;
    if (jid) {
        d->id = json_string_value (jid);
        d->key = bctx_dedup_key (job->origin, d->id, d->keybuf, sizeof d->keybuf);
        /* A retry of a command that appended nothing (a rejection). */
        char *first = bctx_store_recall (self->store, d->key);
        if (first) {
            atomic_fetch_add (&self->stats.duplicates, 1);
            job->reply = first;
            return 0;
        }
    } else {
        bctx_dedup_new_id (d->idbuf);
        d->id = d->key = d->idbuf;
    }
    d->cmd = bctx_plugin_command (self->plugin, d->command);
    if (!d->cmd)
        return s_fail (self, job, bctx_reply_error (BCTX_E_UNKNOWN_COMMAND,
                                                    "context \"%s\" has no command \"%s\"",
                                                    self->name, d->command));
    json_t *jagg = json_object_get (data, d->cmd->aggregate_field);
    d->aggregate = json_string_value (jagg);
    if (!d->aggregate || !*d->aggregate || json_string_length (jagg) > S_AGG_MAX
        || strlen (d->aggregate) != json_string_length (jagg))
        return s_fail (self, job, bctx_reply_error (
            BCTX_E_BAD_REQUEST, "data.%s: expected the aggregate id, a string of 1 to %d bytes",
            d->cmd->aggregate_field, S_AGG_MAX));
    char why[512];
    d->entry = s_aggregate (self, d->aggregate, why, sizeof why);
    if (!d->entry) {
        bctx_log (BCTX_LOG_ERROR, "context %s: %s", self->name, why);
        return s_fail (self, job, bctx_reply_error (BCTX_E_INTERNAL, "%s", why));
    }
    json_t *ids = json_array_get (d->entry, BCTX_CACHE_IDS);
    json_t *seen = d->given ? json_object_get (ids, d->key) : NULL;
    if (seen) {
        /* A retry of a command whose events are in this stream. */
        job->reply = bctx_dedup_replay (self->store, d->key, d->id, d->aggregate,
                                        json_integer_value (seen), self->max_events);
        if (!job->reply) {
            job->reply = bctx_reply_error (BCTX_E_INTERNAL, "cannot read back command %s",
                                           d->id);
            return -1;
        }
        atomic_fetch_add (&self->stats.duplicates, 1);
        return 0;
    }
    return S_GO_ON;
}

/* Runs decide, checks what it returned and folds it, before anything is
 * stored: nothing is folded (so the cache is untouched) when the check
 * fails.  Return S_GO_ON with events to store, or s_handle's result once
 * the job is answered. */
static int
s_decide (bctx_worker_t *self, bctx_job_t *job, s_decision_t *d)
{
    const bctx_plugin_t *p = self->plugin;
    json_t *state = json_array_get (d->entry, BCTX_CACHE_STATE);
    d->events = json_array ();
    bctx_reason_t reason = { { 0 } };
    int rc = d->cmd->decide (p->user, json_is_null (state) ? NULL : state,
                             json_object_get (job->request, "data"), d->events, &reason);
    if (rc == BCTX_REJECT) {
        atomic_fetch_add (&self->stats.rejected, 1);
        return s_settle (self, job, d->key, bctx_reply_error (
            BCTX_E_REJECTED, "%s", reason.text[0] ? reason.text : "rejected"));
    }
    if (rc == BCTX_INVALID)
        return s_fail (self, job, bctx_reply_error (
            BCTX_E_BAD_REQUEST, "%s", reason.text[0] ? reason.text : "invalid command data"));
    if (rc != BCTX_OK)
        return s_fail (self, job, bctx_reply_error (BCTX_E_INTERNAL, "%s.%s: decide failed (%d)",
                                                    self->name, d->command, rc));
    size_t n = json_array_size (d->events);
    char bad[256];
    d->texts = n <= self->max_events ? calloc (n ? n : 1, sizeof *d->texts) : NULL;
    int crc = bctx_decided_check (d->events, self->max_events, self->max_data, d->texts,
                                  bad, sizeof bad);
    if (crc == 0 && !d->texts) {
        snprintf (bad, sizeof bad, "%zu events, more than memory allows", n);
        crc = BCTX_DECIDED_TOO_LARGE;
    }
    if (crc != 0)
        return s_fail (self, job, bctx_reply_error (
            crc == BCTX_DECIDED_TOO_LARGE ? BCTX_E_TOO_LARGE : BCTX_E_INTERNAL,
            "%s.%s: decide returned %s", self->name, d->command, bad));
    d->n = n;
    d->next = json_is_null (state) ? NULL : json_incref (state);
    for (size_t i = 0; i < n; i++) {
        json_t *ev = json_array_get (d->events, i);
        d->next = p->desc->evolve (p->user, d->next,
                                   json_string_value (json_object_get (ev, "type")),
                                   json_object_get (ev, "data"));
        if (!d->next) {
            /* evolve may have changed the cached state in place: forget it. */
            json_object_del (self->cache, d->aggregate);
            return s_fail (self, job, bctx_reply_error (
                BCTX_E_INTERNAL, "%s.%s: evolve failed on a new event", self->name,
                d->command));
        }
    }
    if (n == 0) {
        /* Accepted, nothing to record: remember the reply by id. */
        atomic_fetch_add (&self->stats.accepted, 1);
        return s_settle (self, job, d->key, bctx_dedup_accepted (d->id, d->aggregate, NULL, 0));
    }
    return S_GO_ON;
}

/* Appends the decided events with the aggregate's expected version, and
 * on success moves the cache entry on and queues the events to publish
 * after the commit.  Return s_handle's result. */
static int
s_record (bctx_worker_t *self, s_pending_t *pending, s_decision_t *d)
{
    bctx_job_t *job = pending->job;
    const bctx_plugin_t *p = self->plugin;
    int64_t version = json_integer_value (json_array_get (d->entry, BCTX_CACHE_VERSION));
    char *metadata = bctx_decided_metadata (job->request, d->id, job->origin,
                                            p->desc->version);
    bctx_row_t *rows = bctx_decided_rows (d->events, d->texts, d->n, d->aggregate, metadata,
                                          d->key);
    int arc = bctx_store_append (self->store, d->aggregate, version, rows, d->n);
    int result = 0;
    if (arc == BCTX_ESTORECONFLICT) {
        /* Another writer moved the aggregate on: forget what we knew.
         * The version check comes before any insert, so nothing of this
         * command is in the transaction. */
        json_object_del (self->cache, d->aggregate);
        s_fail (self, job, bctx_reply_error (BCTX_E_CONFLICT, "aggregate \"%s\" is no longer "
                                             "at version %lld", d->aggregate,
                                             (long long) version));
    } else if (arc != 0) {
        job->reply = bctx_reply_error (BCTX_E_INTERNAL, "store: %s",
                                       bctx_store_error (self->store));
        result = -1;
    } else {
        for (size_t i = 0; i < d->n; i++) {
            char *topic = NULL;
            if (asprintf (&topic, "%s.%s", self->name, rows[i].type) < 0)
                topic = NULL;
            s_publish_later (pending, topic, bctx_decided_event_text (self->name, &rows[i]));
        }
        json_array_set_new (d->entry, BCTX_CACHE_VERSION,
                            json_integer (version + (json_int_t) d->n));
        json_array_set_new (d->entry, BCTX_CACHE_STATE, d->next ? d->next : json_null ());
        d->next = NULL;
        bctx_cache_note_command (d->entry, d->key, rows[0].position);
        atomic_fetch_add (&self->stats.accepted, 1);
        job->reply = bctx_dedup_accepted (d->id, d->aggregate, rows, d->n);
    }
    free (rows);
    free (metadata);
    return result;
}

/*
 * Decides one command inside the open transaction.  Sets job->reply.
 * Return 0, or -1 when the store failed and the batch must be rolled back.
 * Events to publish after the commit go to `pending`.
 */
static int
s_handle (bctx_worker_t *self, s_pending_t *pending)
{
    s_decision_t d = { .command = NULL };
    int rc = s_resolve (self, pending->job, &d);
    if (rc == S_GO_ON)
        rc = s_decide (self, pending->job, &d);
    if (rc == S_GO_ON)
        rc = s_record (self, pending, &d);
    s_decision_clear (&d);
    return rc;
}

static void
s_reply (bctx_worker_t *self, bctx_job_t *job)
{
    if (job->waiter) {
        bctx_waiter_t *w = job->waiter;
        pthread_mutex_lock (&w->lock);
        w->done = 1;
        pthread_cond_signal (&w->cond);
        pthread_mutex_unlock (&w->lock);
        return;
    }
    if (job->link) {
        /* Written with the rest of its batch's replies. */
        bctx_worker_link_put (&self->link, job);
        return;
    }
    if (zmq_send (self->replies, &job, sizeof job, 0) < 0) {
        bctx_log (BCTX_LOG_ERROR, "context %s: cannot hand a reply back: %s",
                  self->name, zmq_strerror (zmq_errno ()));
        bctx_job_destroy (&job);
    }
}

/* Runs one batch: decide all, commit once, then reply and publish. */
static void
s_batch (bctx_worker_t *self, s_pending_t *batch, size_t n)
{
    int failed = 0;
    if (bctx_store_begin (self->store) != 0) {
        failed = 1;
    } else {
        bctx_busy_begin (&self->stats.busy);
        for (size_t i = 0; i < n && !failed; i++) {
            atomic_fetch_add (&self->stats.commands, 1);
            if (s_handle (self, &batch[i]) < 0)
                failed = 1;
        }
        bctx_busy_end (&self->stats.busy);
        if (!failed) {
            /* The durable COMMIT, its fsync included. */
            double t0 = bctx_now ();
            failed = bctx_store_commit (self->store) != 0;
            if (!failed)
                bctx_histogram_observe (&self->stats.commit_seconds, bctx_now () - t0);
        }
    }
    if (failed) {
        /* Nothing of this batch is durable: say so to every client, and
         * forget cached state that may include its events. */
        char *msg = bctx_reply_error (BCTX_E_INTERNAL,
                                      "store: %s; the command was not applied",
                                      bctx_store_error (self->store));
        bctx_log (BCTX_LOG_ERROR, "context %s: batch of %zu failed: store: %s; "
                  "the command was not applied", self->name, n,
                  bctx_store_error (self->store));
        bctx_store_rollback (self->store);
        json_object_clear (self->cache);
        for (size_t i = 0; i < n; i++) {
            free (batch[i].job->reply);
            batch[i].job->reply = strdup (msg);
            s_pending_clear (&batch[i]);
            s_reply (self, batch[i].job);
        }
        bctx_worker_link_flush (&self->link, self->name);
        free (msg);
        atomic_fetch_add (&self->stats.failed, (int64_t) n);
        return;
    }
    atomic_fetch_add (&self->stats.batches, 1);
    atomic_store (&self->stats.position, bctx_store_position (self->store));
    for (size_t i = 0; i < n; i++)
        s_reply (self, batch[i].job);
    bctx_worker_link_flush (&self->link, self->name);
    /* Publish after the replies: the bus is a wake-up, clients come first. */
    int64_t events = 0;
    for (size_t i = 0; i < n; i++) {
        s_pending_t *p = &batch[i];
        for (size_t k = 0; k < p->n_published; k++)
            if (p->topics[k] && p->texts[k])
                bctx_bus_publish (self->bus, p->topics[k], p->texts[k],
                                  strlen (p->texts[k]));
        events += (int64_t) p->n_published;
        s_pending_clear (p);
    }
    atomic_fetch_add (&self->stats.events, events);
    if (json_object_size (self->cache) > S_CACHE_MAX)
        json_object_clear (self->cache);
}

static void *
s_run (void *arg)
{
    bctx_worker_t *self = arg;
    bctx_log_set_context (self->name);
    s_pending_t *batch = calloc (self->max_batch, sizeof *batch);
    int stopping = 0;
    while (!stopping) {
        size_t n = 0;
        if (self->link.listener >= 0 && bctx_worker_link_wait (&self->link, self->queue) < 0)
            break;
        while (n < self->max_batch) {
            bctx_job_t *job = self->link.listener >= 0 ? bctx_worker_link_take (&self->link)
                                                       : NULL;
            if (job) {
                batch[n++] = (s_pending_t) { .job = job };
                continue;
            }
            int rc = zmq_recv (self->queue, &job, sizeof job,
                               n == 0 && self->link.listener < 0 ? 0 : ZMQ_DONTWAIT);
            if (rc < 0 && zmq_errno () == EINTR)
                continue;
            if (rc < 0 && zmq_errno () == EAGAIN)
                break;
            if (rc < 0) {            /* ETERM: the host is going away */
                stopping = 1;
                break;
            }
            if (rc != (int) sizeof job)
                continue;
            if (!job) {
                stopping = 1;
                break;
            }
            batch[n++] = (s_pending_t) { .job = job };
        }
        if (n)
            s_batch (self, batch, n);
        else
            bctx_worker_link_flush (&self->link, self->name);   /* refusals alone */
    }
    /* At a drain, what the supervisor sent before it stopped sending. */
    for (size_t n = 1; self->link.conn >= 0 && n > 0;) {
        bctx_job_t *job;
        for (n = 0; n < self->max_batch && (job = bctx_worker_link_take (&self->link)); n++)
            batch[n] = (s_pending_t) { .job = job };
        if (n)
            s_batch (self, batch, n);
    }
    bctx_worker_link_flush (&self->link, self->name);
    free (batch);
    return NULL;
}

bctx_worker_t *
bctx_worker_new (void *zctx, const bctx_config_t *config, size_t index, int *failure,
                 char *err, size_t errlen)
{
    const bctx_context_config_t *cc = &config->contexts[index];
    char where[600];
    if (config->standby)
        snprintf (where, sizeof where, "reload");
    else if (cc->plugin_given[0] && config->folder)
        snprintf (where, sizeof where, "contexts[%zu].plugin \"%s\" (relative to the config "
                  "file's folder %s)", cc->index, cc->plugin_given, config->folder);
    else
        snprintf (where, sizeof where, "contexts[%zu].plugin", cc->index);
    bctx_worker_t *self = calloc (1, sizeof *self);
    self->name = strdup (cc->name);
    self->zctx = zctx;
    self->max_batch = config->max_batch;
    self->max_events = config->max_events_per_command;
    self->max_data = config->max_message;
    self->cache = json_object ();
    bctx_worker_link_init (&self->link);
    self->bus_in = config->bus_in ? strdup (config->bus_in) : NULL;
    if (asprintf (&self->endpoint, "inproc://bctx-worker-%s", cc->name) < 0
        || asprintf (&self->store_path, "%s/%s.db", config->data, cc->name) < 0)
        goto fail;
    pthread_mutex_init (&self->info_lock, NULL);
    self->info_lock_ready = 1;
    /* A handover's new version has the reload's deadline for its copy. */
    bctx_plugin_bounds_t bounds = {
        .dirs = config->plugin_dirs, .n_dirs = config->n_plugin_dirs,
        .dirs_given = config->plugin_dirs_given, .max_bytes = config->max_plugin_bytes,
        .deadline = config->load_deadline,
    };
    self->plugin = bctx_plugin_load (cc->name, cc->plugin, cc->settings, &bounds,
                                     where, failure, err, errlen);
    if (!self->plugin)
        goto fail;
    atomic_store (&self->loaded, 1);
    self->plugin->loaded = &self->loaded;
    bctx_time_iso (self->loaded_at, sizeof self->loaded_at);
    self->store = bctx_store_open (self->store_path, 0, err, errlen);
    if (!self->store)
        goto fail;
    atomic_store (&self->stats.position, bctx_store_position (self->store));
    self->queue = zmq_socket (zctx, ZMQ_PULL);
    int hwm = 0;   /* no limit: commands queue, they are never dropped */
    zmq_setsockopt (self->queue, ZMQ_RCVHWM, &hwm, sizeof hwm);
    if (zmq_bind (self->queue, self->endpoint) != 0) {
        snprintf (err, errlen, "contexts[%zu]: cannot bind %s: %s", cc->index,
                  self->endpoint, zmq_strerror (zmq_errno ()));
        goto fail;
    }
    if (config->command_link) {
        /* The supervisor's commands come here without a hop through the
         * API thread, and without ZeroMQ's I/O threads (link.h). */
        char why[512];
        if (bctx_worker_link_listen (&self->link, config->command_link + strlen ("ipc://"),
                                     why, sizeof why) < 0) {
            snprintf (err, errlen, "contexts[%zu]: its command link: %s", cc->index, why);
            goto fail;
        }
    }
    return self;
fail:
    bctx_worker_destroy (&self);
    return NULL;
}

int
bctx_worker_start (bctx_worker_t *self, const char *replies)
{
    self->replies = zmq_socket (self->zctx, ZMQ_PUSH);
    int hwm = 0;
    zmq_setsockopt (self->replies, ZMQ_SNDHWM, &hwm, sizeof hwm);
    if (zmq_connect (self->replies, replies) != 0)
        return -1;
    self->bus = bctx_bus_publisher (self->zctx, self->bus_in);
    if (!self->bus)
        return -1;
    if (pthread_create (&self->thread, NULL, s_run, self) != 0)
        return -1;
    self->started = 1;
    bctx_log (BCTX_LOG_INFO, "context %s: version %s from %s, position %lld",
              self->name, self->plugin->desc->version ? self->plugin->desc->version : "?",
              self->plugin->path, (long long) bctx_store_position (self->store));
    return 0;
}

const char *
bctx_worker_endpoint (const bctx_worker_t *self)
{
    return self->endpoint;
}

const char *
bctx_worker_name (const bctx_worker_t *self)
{
    return self->name;
}

bctx_plugin_t *
bctx_worker_plugin (bctx_worker_t *self)
{
    pthread_mutex_lock (&self->info_lock);
    bctx_plugin_t *p = bctx_plugin_ref (self->plugin);
    pthread_mutex_unlock (&self->info_lock);
    return p;
}

json_t *
bctx_worker_describe (bctx_worker_t *self)
{
    pthread_mutex_lock (&self->info_lock);
    const bctx_plugin_t *p = self->plugin;
    json_t *commands = json_array ();
    for (size_t k = 0; k < p->n_commands; k++)
        json_array_append_new (commands, json_string (p->desc->commands[k].name));
    json_t *projections = json_array ();
    for (const bctx_projection_t *d = p->desc->projections; d && d->name; d++)
        json_array_append_new (projections, json_pack ("{s:s, s:i}", "name", d->name,
                                                       "version", (int) d->version));
    json_t *reactors = json_array ();
    for (const bctx_reactor_t *d = p->desc->reactors; d && d->name; d++)
        json_array_append_new (reactors, json_string (d->name));
    json_t *info = json_pack (
        "{s:s, s:s, s:s, s:s, s:i, s:I, s:o, s:o, s:o}",
        "name", self->name, "version", p->desc->version ? p->desc->version : "",
        "plugin", p->path, "loaded_at", self->loaded_at,
        "versions_loaded", atomic_load (&self->loaded),
        "position", (json_int_t) atomic_load (&self->stats.position),
        "commands", commands, "projections", projections, "reactors", reactors);
    pthread_mutex_unlock (&self->info_lock);
    return info;
}

_Atomic int *
bctx_worker_loaded (bctx_worker_t *self)
{
    return &self->loaded;
}

bctx_worker_stats_t *
bctx_worker_stats (bctx_worker_t *self)
{
    return &self->stats;
}

int
bctx_worker_warm (bctx_worker_t *self, char *err, size_t errlen)
{
    return bctx_cache_warm (self->cache, self->plugin, self->store, &self->warm_at, err,
                            errlen);
}

int64_t
bctx_worker_refresh (bctx_worker_t *self)
{
    int64_t head = bctx_cache_catch_up (self->cache, self->plugin, self->store,
                                        &self->warm_at);
    if (head >= 0)
        atomic_store (&self->stats.position, head);
    return head;
}

void
bctx_worker_hand_off (bctx_worker_t *self)
{
    bctx_store_hand_off (self->store);
}

const char *
bctx_worker_store_path (const bctx_worker_t *self)
{
    return self->store_path;
}

void
bctx_worker_join (bctx_worker_t *self)
{
    if (self && self->started) {
        pthread_join (self->thread, NULL);
        self->started = 0;
    }
}

void
bctx_worker_destroy (bctx_worker_t **self_p)
{
    BCTX_SELF_OR_RETURN (bctx_worker_t, self_p);
    bctx_worker_join (self);
    bctx_socket_close (&self->queue);
    if (self->replies)
        zmq_close (self->replies);   /* keeps its linger: replies still queued go out */
    bctx_worker_link_close (&self->link);
    bctx_socket_close (&self->bus);
    bctx_store_destroy (&self->store);
    bctx_plugin_unref (&self->plugin);
    if (self->info_lock_ready)
        pthread_mutex_destroy (&self->info_lock);
    json_decref (self->cache);
    free (self->name);
    free (self->endpoint);
    free (self->store_path);
    free (self->bus_in);
    free (self);
    *self_p = NULL;
}
