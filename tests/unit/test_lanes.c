/*
 * test_lanes - unit tests of host/lanes: each item runs once, on the lane
 * it was given, in order within its lane; two lanes really run at once;
 * the owner is polled while a batch runs; a key always has the same lane.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>

#include "lanes.h"

#define N 500

typedef struct {
    const size_t *lane_of;        /* each item's lane */
    atomic_int runs[N];           /* times each item ran */
    size_t last[BCTX_LANES_MAX];  /* per lane: 1 + the last item it ran */
    atomic_int out_of_order;      /* a lane ran an item before an earlier one */
    atomic_int wrong_lane;        /* an item ran on another lane */
} s_seen_t;

static void
s_record (void *arg, size_t lane, size_t item)
{
    s_seen_t *seen = arg;
    atomic_fetch_add (&seen->runs[item], 1);
    if (seen->lane_of[item] != lane)
        atomic_store (&seen->wrong_lane, 1);
    if (seen->last[lane] > item)
        atomic_store (&seen->out_of_order, 1);
    seen->last[lane] = item + 1;
}

static void
test_each_item_once_in_order (void **state)
{
    (void) state;
    bctx_lanes_t *lanes = bctx_lanes_new (4);
    assert_non_null (lanes);
    assert_int_equal (bctx_lanes_size (lanes), 4);
    static size_t lane_of[N];
    for (size_t i = 0; i < N; i++)
        lane_of[i] = (i * 7 + i / 3) % 4;
    for (int round = 0; round < 3; round++) {
        static s_seen_t seen;
        memset (&seen, 0, sizeof seen);
        seen.lane_of = lane_of;
        bctx_lanes_run (lanes, lane_of, N, s_record, &seen, NULL, NULL);
        for (size_t i = 0; i < N; i++)
            assert_int_equal (atomic_load (&seen.runs[i]), 1);
        assert_int_equal (atomic_load (&seen.wrong_lane), 0);
        assert_int_equal (atomic_load (&seen.out_of_order), 0);
    }
    bctx_lanes_destroy (&lanes);
    assert_null (lanes);
    bctx_lanes_destroy (&lanes);                 /* idempotent */
}

/* Item 0 (lane 0) waits for item 1 (lane 1): only lanes that run at once
 * let it see the flag within its bounded wait. */
typedef struct {
    int wait_ms;                  /* how long item 0 waits at most */
    atomic_int flag;
    atomic_int saw;
} s_meet_t;

static void
s_meet (void *arg, size_t lane, size_t item)
{
    (void) lane;
    s_meet_t *m = arg;
    if (item == 1) {
        atomic_store (&m->flag, 1);
        return;
    }
    for (int i = 0; i < m->wait_ms && !atomic_load (&m->flag); i++)
        nanosleep (&(struct timespec) { 0, 1000000L }, NULL);
    atomic_store (&m->saw, atomic_load (&m->flag));
}

static void
s_count (void *arg)
{
    atomic_fetch_add ((atomic_int *) arg, 1);
}

static void
test_lanes_run_at_once_and_owner_is_polled (void **state)
{
    (void) state;
    bctx_lanes_t *lanes = bctx_lanes_new (2);
    assert_non_null (lanes);
    static const size_t lane_of[] = { 0, 1 };
    s_meet_t m = { .wait_ms = 10000 };
    atomic_int polls = 0;
    bctx_lanes_run (lanes, lane_of, 2, s_meet, &m, s_count, &polls);
    assert_int_equal (atomic_load (&m.saw), 1);
    /* A batch that takes a while: the owner is polled meanwhile. */
    static const size_t one[] = { 1, 0 };
    s_meet_t slow = { .wait_ms = 300 };
    atomic_store (&polls, 0);
    bctx_lanes_run (lanes, one, 1, s_meet, &slow, s_count, &polls);   /* item 0 waits 300 ms */
    assert_int_equal (atomic_load (&slow.saw), 0);
    assert_true (atomic_load (&polls) > 10);
    bctx_lanes_destroy (&lanes);
}

static void
test_a_key_has_one_lane (void **state)
{
    (void) state;
    bctx_lanes_t *lanes = bctx_lanes_new (16);
    assert_non_null (lanes);
    size_t used[16] = { 0 };
    for (int i = 0; i < 1000; i++) {
        char key[32];
        snprintf (key, sizeof key, "accounts\x1f" "a%d", i);
        size_t l = bctx_lanes_of (lanes, key);
        assert_true (l < 16);
        assert_int_equal (bctx_lanes_of (lanes, key), l);
        used[l]++;
    }
    for (size_t l = 0; l < 16; l++)
        assert_true (used[l] > 0);              /* 1000 keys reach every lane */
    bctx_lanes_destroy (&lanes);
    assert_null (bctx_lanes_new (1));
    assert_null (bctx_lanes_new (BCTX_LANES_MAX + 1));
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_each_item_once_in_order),
        cmocka_unit_test (test_lanes_run_at_once_and_owner_is_polled),
        cmocka_unit_test (test_a_key_has_one_lane),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
