/*
 * worker - one thread per context: takes that context's commands in
 * arrival order, rebuilds each aggregate (from its cache, or by folding its
 * events through the plugin's evolve), calls decide, and appends the events.
 *
 * Group commit: the worker takes every command already queued (up to
 * host.max_batch), decides them one after the other against the state the
 * earlier ones left, appends all their events in one transaction, commits
 * once (one fsync), and only then replies and publishes the events on the
 * bus.  A slow context holds up only its own thread.
 */
#ifndef BCTX_WORKER_H
#define BCTX_WORKER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#include "config.h"
#include "loader.h"
#include "util.h"

/* Lets a thread wait for the reply to a job it submitted itself (a
 * reactor's command) instead of having it sent to the API thread. */
typedef struct bctx_waiter {
    pthread_mutex_t lock;         /* guards done */
    pthread_cond_t cond;          /* signalled when done */
    int done;                     /* the job has its reply */
} bctx_waiter_t;

/* One client request on its way through a worker and back.  The API thread
 * makes it, passes its pointer to the worker and frees it once the worker
 * hands it back with a reply. */
typedef struct bctx_job {
    unsigned char identity[512];  /* the client's routing envelope, encoded */
    size_t identity_len;          /* its length */
    int delimiter;                /* the client sent an empty frame first */
    json_t *request;              /* owned: the parsed "send" request */
    char *reply;                  /* owned: reply JSON text, set by the worker */
    bctx_waiter_t *waiter;        /* borrowed: who waits, or NULL for the API */
    int kind;                     /* BCTX_JOB_SEND or BCTX_JOB_RELOAD */
    int origin;                   /* a send: BCTX_ORIGIN_CLIENT or _REACTOR, set by
                                     whoever made the job, never by the request */
    /* A reload: the new version going in (a reference), and once the
     * worker has switched, the old version coming out (the worker's former
     * reference, handed to whoever takes the job back). */
    bctx_plugin_t *plugin;
    _Atomic int state;            /* BCTX_JOB_PENDING, _TAKEN or _CANCELLED */
    long long pause_us;           /* a reload: how long the switch held commands */
    json_t *dropped;              /* a reload: the old aggregate cache, for the
                                     taker to free off the command path */
    json_t *warm;                 /* a reload: aggregates folded beforehand by
                                     the new version, as of position warm_at */
    int64_t warm_at;              /* the log's head when warming began */
    int prepared;                 /* a reload: loaded and checked off-thread */
    long tag;                     /* the API thread's own mark (a rollback's context) */
    int rollback;                 /* a reload undoing one that failed after its
                                     switch: not counted, its error kept */
    int load_failure;             /* a reload that could not be prepared: why
                                     (BCTX_ELOAD*, loader.h) */
    int ok;                       /* set with reply by the worker: the reload
                                     switched (reply is its success) */
    int link;                     /* a send that came on the worker's own link:
                                     identity is [routing id][tag], and the reply
                                     goes straight back on it */
} bctx_job_t;

enum { BCTX_JOB_SEND = 0, BCTX_JOB_RELOAD = 1 };
/* Where a command came from.  Command ids are remembered per origin, so an
 * id a client chooses can never be taken for one a reactor derived. */
enum { BCTX_ORIGIN_CLIENT = 0, BCTX_ORIGIN_REACTOR = 1 };
enum { BCTX_JOB_PENDING = 0, BCTX_JOB_TAKEN = 1, BCTX_JOB_CANCELLED = 2 };

/*
 * Prepares a reload off the command path, in the calling thread: loads the
 * plugin at `path` for context `name` (settings, bounds borrowed: where it
 * may come from, how big it may be, when to give up), checks that its
 * evolve folds the aggregates of the log's recent events, and folds them
 * into a warm cache the worker adopts at the switch, so the first commands
 * after it do not all rebuild their aggregate.  store_path: the context's
 * log, opened read-only here.  Return: new plugin (job->warm, job->warm_at
 * set), or NULL with the reason in err and job->load_failure set.
 */
bctx_plugin_t *bctx_worker_prepare (bctx_job_t *job, const char *name, const char *path,
                                    const json_t *settings,
                                    const bctx_plugin_bounds_t *bounds,
                                    const char *store_path, char *err, size_t errlen);

/* What bctx_decided_check found wrong with what a decide returned. */
enum {
    BCTX_DECIDED_MALFORMED = -1,  /* not an array of {"type", "data"} events */
    BCTX_DECIDED_TOO_LARGE = -2,  /* too many events, or an event's data too big */
};

/*
 * Checks what a plugin's decide put in `events` (borrowed), before anything
 * of it is folded or stored: a JSON array of at most max_events events
 * (host.max_events_per_command), each an object with a "type" of 1 to 128
 * letters, digits or '_' and a "data" object whose compact JSON text is at
 * most max_data bytes (host.max_message).  texts: NULL, or room for
 * json_array_size (events) pointers, which on success hold each event's
 * data as compact JSON text (new: the caller frees each); on failure they
 * are all NULL.  Return 0, or BCTX_DECIDED_MALFORMED or
 * BCTX_DECIDED_TOO_LARGE with why saying which event and what (naming the
 * limit's config key), e.g. "1001 events, over the limit of 1000
 * (host.max_events_per_command)".
 */
int bctx_decided_check (const json_t *events, size_t max_events, size_t max_data,
                        char **texts, char *why, size_t whylen);

/* Frees a job; sets *self_p to NULL.  Idempotent. */
void bctx_job_destroy (bctx_job_t **self_p);

/* Counters, written by the worker and read by anyone. */
typedef struct bctx_worker_stats {
    _Atomic int64_t commands;     /* commands taken */
    _Atomic int64_t accepted;     /* decided with events (or none) and stored */
    _Atomic int64_t rejected;     /* decide rejected */
    _Atomic int64_t failed;       /* any other error reply */
    _Atomic int64_t duplicates;   /* answered from a remembered command id */
    _Atomic int64_t batches;      /* commits */
    _Atomic int64_t events;       /* events appended and committed */
    _Atomic int64_t position;     /* last committed position */
    bctx_busy_t busy;             /* decide and evolve running (the watchdog's) */
} bctx_worker_stats_t;

typedef struct bctx_worker bctx_worker_t;

/*
 * Loads the context's plugin, opens its store (host.data/<name>.db) and
 * binds its queue in ZeroMQ context zctx.  `index` names it in messages
 * ("contexts[index]").  Return: new worker (not yet running), or NULL with
 * the reason in err.
 */
bctx_worker_t *bctx_worker_new (void *zctx, const bctx_config_t *config,
                                size_t index, char *err, size_t errlen);

/* Starts the worker thread.  Replies go to the PULL socket bound at
 * `replies`.  Return 0 or -1. */
int bctx_worker_start (bctx_worker_t *self, const char *replies);

/* The endpoint of the worker's queue (borrowed): connect a PUSH socket and
 * send job pointers (sizeof (bctx_job_t *) bytes); a NULL pointer asks the
 * worker to finish what is queued and stop. */
const char *bctx_worker_endpoint (const bctx_worker_t *self);

/* Borrowed accessors. */
const char *bctx_worker_name (const bctx_worker_t *self);

/* The version serving now, with one more reference for the caller (release
 * it with bctx_plugin_unref).  Thread-safe. */
bctx_plugin_t *bctx_worker_plugin (bctx_worker_t *self);

/* What `bctx contexts` shows of the context: its plugin's version, path,
 * commands, load time, reload count, last reload error.  Thread-safe.
 * Return: new. */
json_t *bctx_worker_describe (bctx_worker_t *self);

/* Records a reload that failed before it reached the worker (a bad file,
 * a failing init), for bctx_worker_describe.  why: borrowed. */
void bctx_worker_reload_failed (bctx_worker_t *self, const char *why);

/* How many versions of the context are loaded (1, or 2 while an old one
 * drains).  Passed to bctx_plugin_t.loaded of each version. */
_Atomic int *bctx_worker_loaded (bctx_worker_t *self);
bctx_worker_stats_t *bctx_worker_stats (bctx_worker_t *self);
const char *bctx_worker_store_path (const bctx_worker_t *self);

/* Waits for the thread to end (after a NULL job was queued).  The worker
 * stays allocated: jobs it handed back may still refer to it. */
void bctx_worker_join (bctx_worker_t *self);

/* Joins the thread (after a NULL job), unloads the plugin, closes the
 * store; sets *self_p to NULL.  Idempotent. */
void bctx_worker_destroy (bctx_worker_t **self_p);

#endif
