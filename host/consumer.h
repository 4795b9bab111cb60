/*
 * consumer - the skeleton a projection and a reactor share: the plugin
 * version it runs, its feed of sources, its SQLite file of checkpoints
 * (bctx_readside_t) under host.data, its bus subscription, its thread on a
 * runner, its note of the event in hand for poison, and what its stats
 * show (checkpoints, events handled, the last failure) under one lock.
 * projection.c and reactor.c embed one and keep only what they do with
 * the events.
 *
 * The owner calls init, open, connect, guard and close (and starts
 * the runner); the consumer's thread calls wait.
 */
#ifndef BCTX_CONSUMER_H
#define BCTX_CONSUMER_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "bctx/plugin.h"
#include "feed.h"
#include "loader.h"
#include "poison.h"
#include "runner.h"
#include "store.h"
#include "util.h"

/* What a projection or reactor holds in common (a field of its struct). */
typedef struct bctx_consumer {
    const char *kind;             /* "projection" or "reactor" (static) */
    bctx_busy_t busy;             /* its handler running (the watchdog's) */
    bctx_poison_t *poison;        /* the events parked in this process, or NULL */
    bctx_slot_t *slot;            /* its note of the event it handles, or NULL */
    char who[100];                /* "KIND NAME", as poison names it */
    char label[160];              /* "context CONTEXT: KIND NAME", in messages */
    char *name;                   /* the projection's or reactor's name */
    char *path;                   /* its file: host.data/KIND-NAME.db */
    bctx_plugin_t *plugin;        /* the context's version it runs (a reference) */
    char *context;                /* the context's name */
    bctx_feed_t *feed;            /* its sources */
    bctx_readside_t *db;          /* its checkpoints (and what its kind keeps there) */
    void *sub;                    /* bus subscription (the thread's) */
    bctx_runner_t *runner;        /* its thread and control pipe */
    bctx_runner_fn run;           /* what its thread runs */
    void *run_arg;                /* with this (its projection or reactor) */
    int64_t *checkpoints;         /* per source: where the thread is (the thread's) */
    /* Shared with the API thread, under lock: */
    pthread_mutex_t lock;         /* guards what follows, and its kind's shared fields */
    int64_t *shown;               /* per source: checkpoint, for stats */
    int64_t handled;              /* events handled since start */
    char error[256];              /* last failure, or "" */
} bctx_consumer_t;

/* Fills self (zeroed by the caller) with its kind (static), a reference
 * to plugin and a copy of name.  Cannot fail; close undoes it. */
void bctx_consumer_init (bctx_consumer_t *self, const char *kind, bctx_plugin_t *plugin,
                         const char *name);

/* Opens its feed of `consumes` (borrowed) over the n `sources` and its
 * file under `data`.  Return 0, or -1 with the reason in err. */
int bctx_consumer_open (bctx_consumer_t *self, const char *data,
                        const char *const *consumes, const bctx_source_t *sources,
                        size_t n, char *err, size_t errlen);

/* Makes its runner (with the commands of bctx_runner_new, borrowed),
 * whose thread will run fn (arg), and its bus subscription in zctx.
 * Return 0, or -1 with the reason in err. */
int bctx_consumer_connect (bctx_consumer_t *self, void *zctx, const char *const *commands,
                           size_t n_commands, bctx_runner_fn fn, void *arg,
                           char *err, size_t errlen);

/* Starts its thread.  Return 0 or -1. */
int bctx_consumer_start (bctx_consumer_t *self);

/* Before its start: notes each event it handles in poison (borrowed, may
 * be NULL). */
void bctx_consumer_guard (bctx_consumer_t *self, bctx_poison_t *poison);

/* Waits up to ms for the bus (drained) or a command.  Return 0, or -1 when
 * the ZeroMQ context is ending.  From its thread only. */
int bctx_consumer_wait (bctx_consumer_t *self, long ms);

/* What builds a kind's stats under the consumer's lock: arg is the
 * projection or reactor; checkpoints and lag (new) are its feed's, stolen
 * into what it returns (new). */
typedef json_t *(*bctx_consumer_stats_fn) (void *arg, json_t *checkpoints, json_t *lag);

/* Its stats: under its lock, fn (arg, …) with its feed's checkpoints and
 * lag, then its events parked for poison as "poison".  Return: new. */
json_t *bctx_consumer_stats (bctx_consumer_t *self, bctx_consumer_stats_fn fn, void *arg);

/* Stops its thread (after the batch in hand) and frees all that init,
 * open and connect made.  Idempotent. */
void bctx_consumer_close (bctx_consumer_t *self);

#endif
