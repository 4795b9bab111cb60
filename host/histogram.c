/*
 * histogram - fixed-bucket duration histograms: observe, count, and the
 * stats op's JSON both ways.
 */

#include "histogram.h"

#include <string.h>

/* Longest duration summed, in seconds: beyond it the sum in nanoseconds
 * would not fit its 64 bits after a few observations. */
#define S_SUM_MAX 1e6

const double bctx_histogram_bounds[BCTX_HISTOGRAM_BUCKETS - 1] = {
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1, 2.5, 5
};

void
bctx_histogram_observe (bctx_histogram_t *self, double seconds)
{
    if (!(seconds > 0))
        seconds = 0;              /* NaN too */
    size_t i = 0;
    while (i < BCTX_HISTOGRAM_BUCKETS - 1 && seconds > bctx_histogram_bounds[i])
        i++;
    atomic_fetch_add_explicit (&self->buckets[i], 1, memory_order_relaxed);
    double ns = (seconds < S_SUM_MAX ? seconds : S_SUM_MAX) * 1e9;
    atomic_fetch_add_explicit (&self->sum_ns, (uint64_t) ns, memory_order_relaxed);
}

uint64_t
bctx_histogram_count (const bctx_histogram_t *self)
{
    uint64_t n = 0;
    for (size_t i = 0; i < BCTX_HISTOGRAM_BUCKETS; i++)
        n += atomic_load_explicit (&self->buckets[i], memory_order_relaxed);
    return n;
}

json_t *
bctx_histogram_json (const bctx_histogram_t *self)
{
    json_t *buckets = json_array ();
    uint64_t count = 0;
    /* The count is the buckets' sum as read here, so the +Inf bucket of
     * the cumulative form always equals it. */
    for (size_t i = 0; i < BCTX_HISTOGRAM_BUCKETS; i++) {
        uint64_t n = atomic_load_explicit (&self->buckets[i], memory_order_relaxed);
        count += n;
        json_array_append_new (buckets, json_integer ((json_int_t) n));
    }
    double sum = (double) atomic_load_explicit (&self->sum_ns, memory_order_relaxed) / 1e9;
    return json_pack ("{s:I, s:f, s:o}", "count", (json_int_t) count, "sum", sum, "buckets",
                      buckets);
}

int
bctx_histogram_from_json (bctx_histogram_t *self, const json_t *json)
{
    memset (self, 0, sizeof *self);
    const json_t *buckets = json_object_get (json, "buckets");
    const json_t *sum = json_object_get (json, "sum");
    if (json_array_size (buckets) != BCTX_HISTOGRAM_BUCKETS || !json_is_number (sum)
        || !(json_number_value (sum) >= 0))
        return -1;
    for (size_t i = 0; i < BCTX_HISTOGRAM_BUCKETS; i++) {
        const json_t *n = json_array_get (buckets, i);
        if (!json_is_integer (n) || json_integer_value (n) < 0) {
            memset (self, 0, sizeof *self);
            return -1;
        }
        atomic_store (&self->buckets[i], (uint64_t) json_integer_value (n));
    }
    double ns = json_number_value (sum) * 1e9;
    atomic_store (&self->sum_ns, ns < 1.8e19 ? (uint64_t) ns : UINT64_MAX);
    return 0;
}
