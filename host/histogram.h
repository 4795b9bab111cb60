/*
 * histogram - a duration histogram with fixed buckets, in seconds, as
 * Prometheus histograms are: 15 upper bounds from 100 us to 5 s and +Inf.
 * Observing is two relaxed atomic additions (no lock, no allocation), so
 * the thread that measures (a worker, the supervisor's API thread) pays
 * next to nothing, and another thread may read it at any time.  It
 * travels in the stats op as {"count", "sum", "buckets"} (docs/metrics.md).
 */
#ifndef BCTX_HISTOGRAM_H
#define BCTX_HISTOGRAM_H

#include <stdatomic.h>
#include <stdint.h>
#include <jansson.h>

/* Buckets: one per bound, and the last for what is above every bound. */
#define BCTX_HISTOGRAM_BUCKETS 16

/* The upper bounds in seconds, ascending (bucket i holds what is above
 * bound i-1 and at most bound i). */
extern const double bctx_histogram_bounds[BCTX_HISTOGRAM_BUCKETS - 1];

/* A histogram.  Zeroed: empty. */
typedef struct bctx_histogram {
    _Atomic uint64_t buckets[BCTX_HISTOGRAM_BUCKETS]; /* observations in each bucket
                                                         (not cumulative) */
    _Atomic uint64_t sum_ns;      /* their sum, in nanoseconds */
} bctx_histogram_t;

/* Counts one duration (a negative or NaN one as 0). */
void bctx_histogram_observe (bctx_histogram_t *self, double seconds);

/* Observations so far (the sum of the buckets). */
uint64_t bctx_histogram_count (const bctx_histogram_t *self);

/* {"count": N, "sum": seconds, "buckets": [16 counts, not cumulative]}.
 * Return: new. */
json_t *bctx_histogram_json (const bctx_histogram_t *self);

/* Reads what bctx_histogram_json wrote (json borrowed) into self.
 * Return 0, or -1 (self emptied) when json is not such an object. */
int bctx_histogram_from_json (bctx_histogram_t *self, const json_t *json);

#endif
