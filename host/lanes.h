/*
 * lanes - a fixed set of threads that run a batch of items together,
 * each item on the lane its key hashes to, in order within a lane: a
 * reactor's per-aggregate lanes (as Axon's segments and Dolittle's
 * partitions), parallel across aggregates and in order within one.
 *
 * The owner hands a batch to bctx_lanes_run and waits for all of it; it
 * is called back every few milliseconds meanwhile, to read its own
 * commands (a stop) without a thread of its own.
 */
#ifndef BCTX_LANES_H
#define BCTX_LANES_H

#include <stddef.h>

typedef struct bctx_lanes bctx_lanes_t;

/* Runs item (an index into the batch) on lane.  arg: as given to run. */
typedef void (bctx_lane_fn) (void *arg, size_t lane, size_t item);

/* Called on the owner's thread while a batch runs.  arg: as given. */
typedef void (bctx_lanes_poll_fn) (void *arg);

/* n threads (2 to BCTX_LANES_MAX), waiting for a batch.  Return: new, or
 * NULL when a thread could not be made. */
bctx_lanes_t *bctx_lanes_new (size_t n);

#define BCTX_LANES_MAX 64

/* How many lanes. */
size_t bctx_lanes_size (const bctx_lanes_t *self);

/* The lane of key (a NUL-ended string): the same key, the same lane. */
size_t bctx_lanes_of (const bctx_lanes_t *self, const char *key);

/* Runs fn (arg, lane, i) for each i < n on lane lane_of[i] (borrowed),
 * the items of one lane in increasing i, and returns when all are done;
 * poll (poll_arg) runs on the caller's thread every few ms meanwhile
 * (poll may be NULL).  From the owner's thread only. */
void bctx_lanes_run (bctx_lanes_t *self, const size_t *lane_of, size_t n, bctx_lane_fn *fn,
                     void *arg, bctx_lanes_poll_fn *poll, void *poll_arg);

/* Ends and joins the threads (none may be running a batch) and frees
 * self; sets *self_p to NULL.  Idempotent. */
void bctx_lanes_destroy (bctx_lanes_t **self_p);

#endif
