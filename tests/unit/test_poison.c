/*
 * test_poison - unit tests of host/poison's notes file: a standby (not
 * fresh) maps the notes of the process it will replace without touching
 * them (the process keeps writing through its own map, and a crash is
 * still counted against the event it noted), while a fresh start empties
 * them; a note is the event in hand until its handler returns; a reactor
 * lane's note counts for its reactor.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdatomic.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "poison.h"

/* host.data with its run/ folder, fresh for one test (new). */
static char *
s_data (void)
{
    const char *tmp = getenv ("TMPDIR");
    char *dir = NULL, run[600];
    if (asprintf (&dir, "%s/bctx-test-poison-XXXXXX", tmp && *tmp ? tmp : "/tmp") < 0
        || !mkdtemp (dir))
        fail_msg ("cannot make a temporary folder");
    snprintf (run, sizeof run, "%s/run", dir);
    assert_int_equal (mkdir (run, 0700), 0);
    return dir;
}

/* Removes what s_data made and what poison wrote there. */
static void
s_remove (char *dir)
{
    char path[700];
    snprintf (path, sizeof path, "%s/run/state-fault", dir);
    unlink (path);
    snprintf (path, sizeof path, "%s/run/park-fault.json", dir);
    unlink (path);
    snprintf (path, sizeof path, "%s/run", dir);
    rmdir (path);
    rmdir (dir);
    free (dir);
}

/* An event of context "fault" at position. */
static bctx_event_t
s_event (int64_t position)
{
    return (bctx_event_t) { .context = "fault", .type = "Hit", .aggregate = "h1",
                            .version = 1, .position = position, .data = NULL,
                            .metadata = "{}" };
}

static void
test_a_standby_keeps_the_running_process_notes (void **state)
{
    (void) state;
    char *data = s_data ();
    bctx_poison_t *running = bctx_poison_open (data, "fault", 1);
    assert_non_null (running);
    bctx_slot_t *slot = bctx_poison_slot (running, "projection fault-view");
    assert_non_null (slot);
    bctx_event_t ev = s_event (7);
    bctx_slot_enter (slot, &ev);

    /* The standby's open leaves the note, and sees it in its own map. */
    bctx_poison_t *standby = bctx_poison_open (data, "fault", 0);
    assert_non_null (standby);
    assert_int_equal (atomic_load (&slot->position), 7);
    assert_string_equal (slot->aggregate, "h1");
    bctx_slot_t *seen = bctx_poison_slot (standby, "projection fault-view");
    assert_non_null (seen);
    assert_ptr_not_equal (seen, slot);
    assert_int_equal (atomic_load (&seen->position), 7);

    /* The running process goes on writing through its map. */
    bctx_slot_leave (slot);
    assert_int_equal (atomic_load (&seen->position), 0);
    ev = s_event (8);
    bctx_slot_enter (slot, &ev);
    assert_int_equal (atomic_load (&seen->position), 8);

    /* A fresh start (no other process of the context) empties them. */
    bctx_poison_t *fresh = bctx_poison_open (data, "fault", 1);
    assert_non_null (fresh);
    assert_int_equal (atomic_load (&slot->position), 0);
    assert_string_equal (slot->runner, "");

    bctx_poison_close (&fresh);
    bctx_poison_close (&standby);
    bctx_poison_close (&running);
    assert_null (running);
    s_remove (data);
}

/* The notes of lane 3 ("reactor r" BCTX_POISON_LANE "3") are counted for
 * "reactor r": at the third end the event is parked for it, and only
 * that event (the other lane's, counted once, is not). */
static void
test_a_lane_counts_for_its_reactor (void **state)
{
    (void) state;
    char *data = s_data ();
    json_t *crashes = json_object ();
    char lane3[64], lane1[64];
    snprintf (lane3, sizeof lane3, "reactor r%c3", BCTX_POISON_LANE);
    snprintf (lane1, sizeof lane1, "reactor r%c1", BCTX_POISON_LANE);
    for (int end = 1; end <= BCTX_POISON_LIMIT; end++) {
        bctx_poison_t *p = bctx_poison_open (data, "fault", 1);
        assert_non_null (p);
        bctx_slot_t *slot = bctx_poison_slot (p, lane3);
        assert_non_null (slot);
        bctx_event_t ev = s_event (5);
        bctx_slot_enter (slot, &ev);
        if (end == 1) {            /* beside it once, on another lane */
            bctx_event_t other = s_event (6);
            bctx_slot_enter (bctx_poison_slot (p, lane1), &other);
        }
        int parked = bctx_poison_count (data, "fault", crashes);
        assert_int_equal (parked, end == BCTX_POISON_LIMIT);
        bctx_poison_close (&p);
    }
    bctx_poison_t *p = bctx_poison_open (data, "fault", 1);
    assert_true (bctx_poison_parked (p, "reactor r", "fault", 5));
    assert_false (bctx_poison_parked (p, "reactor r", "fault", 6));
    assert_false (bctx_poison_parked (p, lane3, "fault", 5));
    json_t *list = bctx_poison_list (p, "reactor r");
    assert_int_equal (json_array_size (list), 1);
    json_decref (list);
    bctx_poison_close (&p);
    json_decref (crashes);
    s_remove (data);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_a_standby_keeps_the_running_process_notes),
        cmocka_unit_test (test_a_lane_counts_for_its_reactor),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
