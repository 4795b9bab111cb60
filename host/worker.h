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
#include "decided.h"   /* bctx_decided_check, declared here before */
#include "histogram.h"
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
    int origin;                   /* a send: BCTX_ORIGIN_CLIENT or _REACTOR, set by
                                     whoever made the job, never by the request */
    int link;                     /* a send that came on the worker's own link:
                                     identity is [routing id][tag], and the reply
                                     goes straight back on it */
} bctx_job_t;

/* Where a command came from.  Command ids are remembered per origin, so an
 * id a client chooses can never be taken for one a reactor derived. */
enum { BCTX_ORIGIN_CLIENT = 0, BCTX_ORIGIN_REACTOR = 1 };

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
    bctx_histogram_t commit_seconds; /* each commit's COMMIT, its fsync included */
} bctx_worker_stats_t;

typedef struct bctx_worker bctx_worker_t;

/*
 * Loads the context's plugin, opens its store (host.data/<name>.db) and
 * binds its queue in ZeroMQ context zctx.  `index` names it in messages
 * ("contexts[index]").  Return: new worker (not yet running), or NULL with
 * the reason in err and, when the plugin did not load, a BCTX_LOAD_* in
 * *failure (if failure is set).
 */
bctx_worker_t *bctx_worker_new (void *zctx, const bctx_config_t *config,
                                size_t index, int *failure, char *err, size_t errlen);

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
 * commands, load time, versions loaded.  Thread-safe.
 * Return: new. */
json_t *bctx_worker_describe (bctx_worker_t *self);

/* How many versions of the context this process has loaded: 1, as a
 * handover swaps versions between processes.  Passed to
 * bctx_plugin_t.loaded. */
_Atomic int *bctx_worker_loaded (bctx_worker_t *self);
bctx_worker_stats_t *bctx_worker_stats (bctx_worker_t *self);
const char *bctx_worker_store_path (const bctx_worker_t *self);

/* A handover's standby, before it is ready: folds the aggregates of the
 * log's most recent 10 000 events (at most 4000) into the cache with its
 * version's evolve, then what the serving process appended meanwhile.
 * Not while the worker runs.  Return 0, or -1 with the reason (an event
 * the version cannot fold) in err. */
int bctx_worker_warm (bctx_worker_t *self, char *err, size_t errlen);

/* After the worker's stop at a handover: the log's next writer is
 * another process, so its close leaves the WAL as it is. */
void bctx_worker_hand_off (bctx_worker_t *self);

/* Reads the log's head again into the stats' position, and folds into
 * the cache what was appended since it was warmed (a handover's take:
 * the old process appended since).  Not while the worker runs.  Return
 * the head, or -1. */
int64_t bctx_worker_refresh (bctx_worker_t *self);

/* Waits for the thread to end (after a NULL job was queued).  The worker
 * stays allocated: jobs it handed back may still refer to it. */
void bctx_worker_join (bctx_worker_t *self);

/* Joins the thread (after a NULL job), unloads the plugin, closes the
 * store; sets *self_p to NULL.  Idempotent. */
void bctx_worker_destroy (bctx_worker_t **self_p);

#endif
