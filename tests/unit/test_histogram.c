/*
 * test_histogram - unit tests of host/histogram and host/figures: each
 * duration lands in the first bucket whose bound is at least it (a bound
 * itself included, past the last bound in the overflow bucket, a negative
 * or NaN one in the first); the count is the buckets' sum and the sum is
 * the durations'; the stats op's JSON reads back to the same histogram,
 * and JSON of another shape is refused; figures count reloads by outcome
 * and their pauses per context, and keep each context apart.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "figures.h"
#include "histogram.h"

/* The count in bucket i. */
static uint64_t
s_in (const bctx_histogram_t *h, size_t i)
{
    return atomic_load (&h->buckets[i]);
}

static void
test_buckets (void **state)
{
    (void) state;
    bctx_histogram_t h = { 0 };
    assert_int_equal (bctx_histogram_count (&h), 0);
    bctx_histogram_observe (&h, 0.00005);   /* under the first bound */
    bctx_histogram_observe (&h, 0.0001);    /* on it: le is "at most" */
    bctx_histogram_observe (&h, 0.0003);    /* between 0.00025 and 0.0005 */
    bctx_histogram_observe (&h, 1.0);       /* on the bound 1 */
    bctx_histogram_observe (&h, 5.0001);    /* past the last bound */
    bctx_histogram_observe (&h, -1);        /* a clock that went back: 0 */
    bctx_histogram_observe (&h, NAN);
    assert_int_equal (s_in (&h, 0), 4);
    assert_int_equal (s_in (&h, 2), 1);
    assert_int_equal (s_in (&h, 12), 1);
    assert_true (bctx_histogram_bounds[12] == 1.0);
    assert_int_equal (s_in (&h, BCTX_HISTOGRAM_BUCKETS - 1), 1);
    assert_int_equal (bctx_histogram_count (&h), 7);
    double sum = (double) atomic_load (&h.sum_ns) / 1e9;
    assert_true (fabs (sum - (0.00005 + 0.0001 + 0.0003 + 1.0 + 5.0001)) < 1e-6);
    for (size_t i = 1; i < BCTX_HISTOGRAM_BUCKETS - 1; i++)
        assert_true (bctx_histogram_bounds[i] > bctx_histogram_bounds[i - 1]);
}

static void
test_json (void **state)
{
    (void) state;
    bctx_histogram_t h = { 0 }, back;
    bctx_histogram_observe (&h, 0.002);
    bctx_histogram_observe (&h, 0.002);
    bctx_histogram_observe (&h, 30);
    json_t *j = bctx_histogram_json (&h);
    assert_int_equal (json_integer_value (json_object_get (j, "count")), 3);
    assert_true (fabs (json_real_value (json_object_get (j, "sum")) - 30.004) < 1e-6);
    json_t *buckets = json_object_get (j, "buckets");
    assert_int_equal (json_array_size (buckets), BCTX_HISTOGRAM_BUCKETS);
    assert_int_equal (json_integer_value (json_array_get (buckets, 4)), 2);   /* le 0.0025 */
    assert_int_equal (json_integer_value (json_array_get (buckets, 15)), 1);  /* +Inf */
    assert_int_equal (bctx_histogram_from_json (&back, j), 0);
    for (size_t i = 0; i < BCTX_HISTOGRAM_BUCKETS; i++)
        assert_int_equal (s_in (&back, i), s_in (&h, i));
    assert_int_equal (bctx_histogram_count (&back), 3);
    /* Another shape: refused, and nothing half read. */
    json_array_set_new (buckets, 3, json_string ("x"));
    assert_int_equal (bctx_histogram_from_json (&back, j), -1);
    assert_int_equal (bctx_histogram_count (&back), 0);
    json_array_remove (buckets, 3);
    assert_int_equal (bctx_histogram_from_json (&back, j), -1);
    assert_int_equal (bctx_histogram_from_json (&back, NULL), -1);
    json_decref (j);
}

static void
test_figures (void **state)
{
    (void) state;
    bctx_figures_t *f = bctx_figures_new ();
    bctx_histogram_t *a = bctx_figures_commands (f, "accounts");
    assert_ptr_equal (a, bctx_figures_commands (f, "accounts"));
    assert_ptr_not_equal (a, bctx_figures_commands (f, "transfers"));
    bctx_histogram_observe (a, 0.001);
    bctx_figures_reload (f, "accounts", BCTX_RELOAD_OK, 0.004);
    bctx_figures_reload (f, "accounts", BCTX_RELOAD_FAILED, -1);   /* refused: no pause */
    bctx_figures_reload (f, "accounts", BCTX_RELOAD_ROLLED_BACK, 0.2);
    json_t *c = json_object ();
    bctx_figures_report (f, "accounts", c);
    json_t *reloads = json_object_get (c, "reloads");
    assert_int_equal (json_integer_value (json_object_get (reloads, "ok")), 1);
    assert_int_equal (json_integer_value (json_object_get (reloads, "failed")), 1);
    assert_int_equal (json_integer_value (json_object_get (reloads, "rolled_back")), 1);
    assert_int_equal (json_integer_value (json_object_get (json_object_get (
        c, "reload_pause_seconds"), "count")), 2);
    assert_int_equal (json_integer_value (json_object_get (json_object_get (
        c, "command_seconds"), "count")), 1);
    json_object_clear (c);
    bctx_figures_report (f, "transfers", c);
    assert_int_equal (json_integer_value (json_object_get (json_object_get (
        c, "command_seconds"), "count")), 0);
    json_decref (c);
    bctx_figures_destroy (&f);
    assert_null (f);
    bctx_figures_destroy (&f);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_buckets),
        cmocka_unit_test (test_json),
        cmocka_unit_test (test_figures),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
