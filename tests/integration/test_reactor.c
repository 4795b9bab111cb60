/*
 * test_reactor - reactors on the real host, driven by the test context
 * tests/plugins/flaky.c: its reactor fails for aggregate X while the file
 * <dir>/fail-X exists, and otherwise answers each Poked with a Note, which
 * shows up as a Noted event in the log.
 *
 * What is checked: an aggregate whose event keeps failing is retried with
 * back-off and then parked, its later events wait behind it, and the other
 * aggregates are not held up; `bctx retry` runs the parked events again in
 * order (and leaves them parked while they still fail); a restart repeats
 * nothing; a failure that goes away during the back-off is retried without
 * parking.  Each test runs twice: with the reactor on its own thread, and
 * on 4 lanes (contexts[].reactor_lanes), where the same must hold.
 */
#include "harness.h"

#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#define REACTOR "flaky-reactor"

/* --- helpers --------------------------------------------------------- */

/* Starts a host with the one context "flaky", whose fail files live in the
 * test's directory, its reactor on `lanes` lanes. */
static int
s_start (void **state, int lanes)
{
    h_host_t *h = calloc (1, sizeof *h);
    if (!h || h_init (h) < 0)
        return -1;
    snprintf (h->contexts, sizeof h->contexts,
              "[{\"name\": \"flaky\", \"plugin\": \"%s\", \"settings\": {\"dir\": \"%s\"},"
              " \"reactor_lanes\": %d}]",
              h_path ("tests/plugins/flaky.so"), h->dir, lanes);
    *state = h;
    if (h_start (h) != 0)
        return -1;
    if (lanes > 1) {
        /* The lanes really run. */
        char want[64], *log;
        snprintf (want, sizeof want, "reactor %s: %d lanes", REACTOR, lanes);
        if (!(log = h_wait_log (h, want, 5000)))
            return -1;
        free (log);
    }
    return 0;
}

static int
s_setup (void **state)
{
    return s_start (state, 1);
}

static int
s_setup_lanes (void **state)
{
    return s_start (state, 4);
}

static int
s_teardown (void **state)
{
    h_host_t *h = *state;
    int rc = h_cleanup (h);
    free (h);
    /* A host that does not exit 0 on SIGTERM (or leaks under ASan) fails
     * the run: cmocka would not count a failed teardown. */
    if (rc != 0)
        exit (1);
    return 0;
}

/* Creates (fail = 1) or removes (fail = 0) <dir>/fail-<aggregate>. */
static void
s_fail_file (const h_host_t *h, const char *aggregate, int fail)
{
    char path[512];
    snprintf (path, sizeof path, "%s/fail-%s", h->dir, aggregate);
    if (fail) {
        FILE *f = fopen (path, "w");
        assert_non_null (f);
        fclose (f);
    } else {
        assert_int_equal (unlink (path), 0);
    }
}

/* Pokes aggregate `id`.  Return the position of its Poked event. */
static json_int_t
s_poke (const h_host_t *h, const char *id)
{
    json_t *r = h_send (h->endpoint, "flaky", "Poke", NULL, json_pack ("{s:s}", "id", id));
    assert_non_null (r);
    assert_true (json_is_true (json_object_get (r, "ok")));
    json_t *ev = json_array_get (json_object_get (r, "events"), 0);
    assert_string_equal (json_string_value (json_object_get (ev, "type")), "Poked");
    json_int_t position = json_integer_value (json_object_get (ev, "position"));
    assert_true (position > 0);
    json_decref (r);
    return position;
}

/* The reactor's stats, straight from the API socket (no CLI process, so
 * it can be polled quickly).  Return: new. */
static json_t *
s_stats (const h_host_t *h)
{
    json_t *all = h_stats (h);
    assert_non_null (all);
    json_t *r = json_object_get (json_object_get (all, "reactors"), REACTOR);
    assert_non_null (r);
    json_incref (r);
    json_decref (all);
    return r;
}

static const char *
s_state (const json_t *stats)
{
    return json_string_value (json_object_get (stats, "state"));
}

/* Every Noted event of the log, in position order.  Return: new array. */
static json_t *
s_noted (const h_host_t *h)
{
    json_t *all = h_events (h, "flaky");
    assert_non_null (all);
    json_t *noted = json_array ();
    size_t i;
    json_t *e;
    json_array_foreach (all, i, e)
        if (strcmp (json_string_value (json_object_get (e, "type")), "Noted") == 0)
            json_array_append (noted, e);
    json_decref (all);
    return noted;
}

/* How many Noted events aggregate `id` has. */
static size_t
s_count (const json_t *noted, const char *id)
{
    size_t n = 0, i;
    json_t *e;
    json_array_foreach (noted, i, e)
        if (strcmp (json_string_value (json_object_get (e, "aggregate")), id) == 0)
            n++;
    return n;
}

/* The Noted event caused by the Poked event at `position` (borrowed), or
 * NULL.  The host names the cause "<context>:<position>". */
static json_t *
s_caused_by (const json_t *noted, json_int_t position)
{
    char cause[64];
    snprintf (cause, sizeof cause, "flaky:%lld", (long long) position);
    size_t i;
    json_t *e;
    json_array_foreach (noted, i, e) {
        const char *c = json_string_value (json_object_get (json_object_get (e, "metadata"),
                                                            "causation_id"));
        if (c && strcmp (c, cause) == 0)
            return e;
    }
    return NULL;
}

/* Every event's command id is different from every other's. */
static void
s_assert_command_ids_unique (const h_host_t *h)
{
    json_t *all = h_events (h, "flaky");
    assert_non_null (all);
    json_t *seen = json_object ();
    size_t i;
    json_t *e;
    json_array_foreach (all, i, e) {
        const char *id = json_string_value (json_object_get (json_object_get (e, "metadata"),
                                                             "command_id"));
        assert_non_null (id);
        if (json_object_get (seen, id))
            fail_msg ("command id %s is on two events", id);
        json_object_set_new (seen, id, json_true ());
    }
    json_decref (seen);
    json_decref (all);
}

static json_int_t
s_log_size (const h_host_t *h)
{
    json_t *all = h_events (h, "flaky");
    assert_non_null (all);
    json_int_t n = (json_int_t) json_array_size (all);
    json_decref (all);
    return n;
}

/* --- tests ----------------------------------------------------------- */

static void
test_failing_aggregate_is_parked_and_retried (void **state)
{
    h_host_t *h = *state;
    s_fail_file (h, "bad", 1);
    json_int_t good1 = s_poke (h, "good1");
    json_int_t bad_a = s_poke (h, "bad");
    json_int_t good2 = s_poke (h, "good2");
    json_int_t bad_b = s_poke (h, "bad");
    json_int_t good3 = s_poke (h, "good3");

    /* The good aggregates go through although "bad" fails before them;
     * both events of "bad" end parked, the second behind the first. */
    json_t *stats = NULL, *noted = NULL;
    long long deadline = h_now_us () + 20 * 1000000LL;
    for (;;) {
        json_decref (stats);
        json_decref (noted);
        stats = s_stats (h);
        noted = s_noted (h);
        if (s_count (noted, "good1") == 1 && s_count (noted, "good2") == 1
            && s_count (noted, "good3") == 1 && h_int (stats, "parked") == 2
            && h_int (json_object_get (stats, "lag"), "flaky") == 0)
            break;
        if (h_now_us () > deadline) {
            char *text = json_dumps (stats, JSON_COMPACT);
            fail_msg ("the reactor did not get past \"bad\": %s", text);
        }
        usleep (50000);
    }
    assert_string_equal (s_state (stats), "parked");
    /* Every try of the first "bad" event failed before it was parked. */
    assert_true (h_int (stats, "retries") >= 4);
    assert_non_null (json_string_value (json_object_get (stats, "error")));
    assert_int_equal (s_count (noted, "bad"), 0);
    assert_non_null (s_caused_by (noted, good1));
    assert_non_null (s_caused_by (noted, good2));
    assert_non_null (s_caused_by (noted, good3));
    char *log = h_read_log (h);
    assert_non_null (strstr (log, "parked aggregate bad"));
    free (log);
    json_decref (noted);

    /* A retry while the failure lasts: the first parked event is tried
     * again (and fails again), the second keeps waiting behind it. */
    json_int_t retries = h_int (stats, "retries");
    json_decref (stats);
    char *out = NULL;
    assert_int_equal (h_cli (h, &out, "retry", REACTOR, NULL), 0);
    json_t *reply = h_json (out);
    free (out);
    assert_true (json_is_true (json_object_get (reply, "ok")));
    assert_int_equal (h_int (reply, "parked"), 2);
    json_decref (reply);
    deadline = h_now_us () + 20 * 1000000LL;
    for (stats = s_stats (h); h_int (stats, "retries") < retries + 5; stats = s_stats (h)) {
        if (h_now_us () > deadline)
            fail_msg ("a retry while the failure lasts did not try again");
        json_decref (stats);
        usleep (20000);
    }
    json_decref (stats);
    /* The failed retry is done once the log says so. */
    deadline = h_now_us () + 10 * 1000000LL;
    for (;;) {
        log = h_read_log (h);
        int done = strstr (log, "2 still parked") != NULL;
        free (log);
        if (done)
            break;
        if (h_now_us () > deadline)
            fail_msg ("the failed retry did not finish");
        usleep (20000);
    }
    stats = s_stats (h);
    assert_int_equal (h_int (stats, "parked"), 2);
    assert_string_equal (s_state (stats), "parked");
    json_decref (stats);
    noted = s_noted (h);
    assert_int_equal (s_count (noted, "bad"), 0);
    json_decref (noted);

    /* An unknown reactor is an error, said so. */
    out = NULL;
    assert_int_equal (h_cli (h, &out, "retry", "no-such-reactor", NULL), 1);
    free (out);

    /* The failure is gone: a retry runs both parked events, in order. */
    s_fail_file (h, "bad", 0);
    assert_int_equal (h_cli (h, NULL, "retry", REACTOR, NULL), 0);
    deadline = h_now_us () + 20 * 1000000LL;
    for (;;) {
        stats = s_stats (h);
        noted = s_noted (h);
        if (s_count (noted, "bad") == 2 && h_int (stats, "parked") == 0)
            break;
        if (h_now_us () > deadline)
            fail_msg ("the retry did not run the parked events: %zu Noted for bad, "
                      "%lld parked", s_count (noted, "bad"),
                      (long long) h_int (stats, "parked"));
        json_decref (stats);
        json_decref (noted);
        usleep (50000);
    }
    assert_string_equal (s_state (stats), "live");
    json_decref (stats);
    /* One Note per parked event, in the order of the events. */
    json_t *first = s_caused_by (noted, bad_a), *second = s_caused_by (noted, bad_b);
    assert_non_null (first);
    assert_non_null (second);
    assert_string_equal (json_string_value (json_object_get (first, "aggregate")), "bad");
    assert_string_equal (json_string_value (json_object_get (second, "aggregate")), "bad");
    assert_true (json_integer_value (json_object_get (first, "position"))
                 < json_integer_value (json_object_get (second, "position")));
    assert_int_equal (json_array_size (noted), 5);
    json_decref (noted);
    s_assert_command_ids_unique (h);

    /* A restart repeats nothing: no event is handled a second time. */
    json_int_t before = s_log_size (h);
    assert_int_equal (h_stop (h, SIGTERM), 0);
    assert_int_equal (h_start (h), 0);
    usleep (1500000);
    assert_int_equal (s_log_size (h), before);
    s_assert_command_ids_unique (h);
    stats = s_stats (h);
    assert_int_equal (h_int (stats, "parked"), 0);
    assert_string_equal (s_state (stats), "live");
    assert_int_equal (h_int (json_object_get (stats, "lag"), "flaky"), 0);
    assert_int_equal (h_int (json_object_get (stats, "checkpoints"), "flaky"), before);
    json_decref (stats);

    /* And it goes on with new events. */
    json_int_t good4 = s_poke (h, "good4");
    deadline = h_now_us () + 10 * 1000000LL;
    for (;;) {
        noted = s_noted (h);
        json_t *e = s_caused_by (noted, good4);
        json_decref (noted);
        if (e)
            break;
        if (h_now_us () > deadline)
            fail_msg ("the reactor did not handle an event after the restart");
        usleep (50000);
    }
    s_assert_command_ids_unique (h);
}

static void
test_transient_failure_is_retried_without_parking (void **state)
{
    h_host_t *h = *state;
    json_t *stats = s_stats (h);
    json_int_t retries = h_int (stats, "retries");
    json_decref (stats);

    s_fail_file (h, "blip", 1);
    json_int_t blip = s_poke (h, "blip");
    /* Wait for the first failed try, then end the failure well within the
     * back-off (tries at about 0, 20, 60, 140 and 300 ms). */
    long long deadline = h_now_us () + 10 * 1000000LL;
    for (;;) {
        stats = s_stats (h);
        json_int_t now = h_int (stats, "retries");
        json_decref (stats);
        if (now > retries)
            break;
        if (h_now_us () > deadline)
            fail_msg ("the reactor never tried the blip");
        usleep (2000);
    }
    usleep (30000);
    s_fail_file (h, "blip", 0);

    deadline = h_now_us () + 10 * 1000000LL;
    json_t *noted;
    for (;;) {
        noted = s_noted (h);
        if (s_count (noted, "blip") == 1)
            break;
        json_decref (noted);
        if (h_now_us () > deadline)
            fail_msg ("the blip was not retried");
        usleep (20000);
    }
    assert_non_null (s_caused_by (noted, blip));
    json_decref (noted);
    stats = s_stats (h);
    assert_int_equal (h_int (stats, "parked"), 0);
    assert_string_equal (s_state (stats), "live");
    assert_true (h_int (stats, "retries") > retries);
    assert_true (h_int (stats, "retries") < retries + 5);
    json_decref (stats);
    char *log = h_read_log (h);
    assert_null (strstr (log, "parked aggregate"));
    free (log);
    s_assert_command_ids_unique (h);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown (test_failing_aggregate_is_parked_and_retried,
                                         s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_transient_failure_is_retried_without_parking,
                                         s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_failing_aggregate_is_parked_and_retried,
                                         s_setup_lanes, s_teardown),
        cmocka_unit_test_setup_teardown (test_transient_failure_is_retried_without_parking,
                                         s_setup_lanes, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
