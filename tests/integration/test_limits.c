/*
 * test_limits - what one command's decide may return is bounded: at most
 * host.max_events_per_command events (default 1000), each with data of at
 * most host.max_message bytes.  A command over either limit is answered
 * too_large, naming the command, the figure and the config key; nothing
 * of it is stored, the aggregate's cached state is as before, the stats
 * count it as failed, and the next command is served as usual.
 *
 * A malformed "send" the supervisor passed on unparsed is answered
 * bad_request by the context process, and counted.
 *
 * The "emitter" test context emits as many events, as big, as a command
 * asks (tests/plugins/emitter.c).  The host runs with host.max_message 4096.
 */
#include "harness.h"

#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

static h_host_t s_host;

/* Sends Emit {id, n, bytes} with command id `id` (or none).  Return: new reply. */
static json_t *
s_emit (const char *id, const char *aggregate, int n, int bytes)
{
    json_t *r = h_send (s_host.endpoint, "emitter", "Emit", id,
                        json_pack ("{s:s, s:i, s:i}", "id", aggregate, "n", n, "bytes", bytes));
    assert_non_null (r);
    return r;
}

/* The error code of a reply, or "" when it is ok. */
static const char *
s_code (json_t *reply)
{
    const char *code = h_error_code (reply);
    return code ? code : "";
}

/* How many events the emitter context's log holds. */
static size_t
s_logged (void)
{
    json_t *all = h_events (&s_host, "emitter");
    assert_non_null (all);
    size_t n = json_array_size (all);
    json_decref (all);
    return n;
}

/* stats: contexts.emitter.<field>. */
static json_int_t
s_stat (const char *field)
{
    json_t *st = h_stats (&s_host);
    assert_non_null (st);
    json_int_t v = json_integer_value (json_object_get (
        json_object_get (json_object_get (st, "contexts"), "emitter"), field));
    json_decref (st);
    return v;
}

/* Sends a command whose decide emits 1001 events, then one that emits
 * 1000, then one event too big, then a normal one. */
static void
test_decide_output_is_bounded (void **state)
{
    (void) state;
    /* One over the event limit: refused, nothing stored. */
    json_t *r = s_emit ("over", "a1", 1001, 0);
    assert_string_equal (s_code (r), "too_large");
    const char *msg = json_string_value (json_object_get (json_object_get (r, "error"),
                                                          "message"));
    assert_non_null (strstr (msg, "emitter.Emit"));
    assert_non_null (strstr (msg, "1001 events"));
    assert_non_null (strstr (msg, "1000"));
    assert_non_null (strstr (msg, "host.max_events_per_command"));
    json_decref (r);
    assert_int_equal (s_logged (), 0);
    assert_int_equal (s_stat ("failed"), 1);

    /* At the limit: stored, all of it. */
    r = s_emit ("full", "a1", 1000, 0);
    assert_true (json_is_true (json_object_get (r, "ok")));
    json_t *events = json_object_get (r, "events");
    assert_int_equal (json_array_size (events), 1000);
    assert_int_equal (json_integer_value (json_object_get (json_array_get (events, 999),
                                                           "version")), 1000);
    char *first = json_dumps (r, JSON_COMPACT);
    json_decref (r);
    assert_int_equal (s_logged (), 1000);
    /* A retry of it is answered from the log with the same 1000 events. */
    r = s_emit ("full", "a1", 1000, 0);
    char *again = json_dumps (r, JSON_COMPACT);
    assert_string_equal (again, first);
    free (again);
    free (first);
    json_decref (r);
    assert_int_equal (s_logged (), 1000);
    assert_int_equal (s_stat ("duplicates"), 1);

    /* One event whose data is over host.max_message (4096). */
    r = s_emit ("big", "a1", 1, 5000);
    assert_string_equal (s_code (r), "too_large");
    msg = json_string_value (json_object_get (json_object_get (r, "error"), "message"));
    assert_non_null (strstr (msg, "emitter.Emit"));
    assert_non_null (strstr (msg, "event 0 (Emitted)"));
    assert_non_null (strstr (msg, "4096"));
    assert_non_null (strstr (msg, "host.max_message"));
    json_decref (r);
    /* The same with the event behind others that fit: none is stored. */
    r = s_emit (NULL, "a1", 3, 4090);
    assert_string_equal (s_code (r), "too_large");
    json_decref (r);
    assert_int_equal (s_logged (), 1000);
    assert_int_equal (s_stat ("failed"), 3);

    /* A normal command still succeeds, decided on the state of the 1000
     * stored events (the refused ones left the cached state as it was). */
    r = s_emit ("after", "a1", 1, 10);
    assert_true (json_is_true (json_object_get (r, "ok")));
    events = json_object_get (r, "events");
    assert_int_equal (json_array_size (events), 1);
    assert_int_equal (json_integer_value (json_object_get (json_array_get (events, 0),
                                                           "version")), 1001);
    json_decref (r);
    json_t *all = h_events (&s_host, "emitter");
    assert_int_equal (json_array_size (all), 1001);
    json_t *data = json_object_get (json_array_get (all, 1000), "data");
    assert_int_equal (json_integer_value (json_object_get (data, "seen")), 1000);
    assert_int_equal (strlen (json_string_value (json_object_get (data, "s"))), 10);
    json_decref (all);
    assert_int_equal (s_stat ("accepted"), 2);
    assert_int_equal (s_stat ("failed"), 3);
}

/* A lower host.max_events_per_command holds too, after a restart. */
static void
test_a_lower_event_limit (void **state)
{
    (void) state;
    assert_int_equal (h_stop (&s_host, SIGTERM), 0);
    snprintf (s_host.host_extra, sizeof s_host.host_extra,
              "\"max_message\": 4096, \"max_events_per_command\": 2");
    assert_int_equal (h_start (&s_host), 0);
    json_t *r = s_emit (NULL, "b1", 3, 1);
    assert_string_equal (s_code (r), "too_large");
    assert_non_null (strstr (json_string_value (json_object_get (json_object_get (r, "error"),
                                                                 "message")),
                             "3 events, over the limit of 2 (host.max_events_per_command)"));
    json_decref (r);
    r = s_emit (NULL, "b1", 2, 1);
    assert_true (json_is_true (json_object_get (r, "ok")));
    json_decref (r);
    assert_int_equal (s_logged (), 1003);
}

/* A "send" the supervisor reads off its routing keys alone goes on
 * unparsed; the context process parses it and checks its fields.  Each
 * malformed one is answered bad_request there, naming what is wrong,
 * counted by the supervisor's API, and its process serves on. */
static void
test_a_send_passed_on_unparsed_is_checked_where_it_is_decided (void **state)
{
    (void) state;
    static const struct {
        const char *body;
        const char *says;
    } bad[] = {
        { "{\"op\":\"send\",\"context\":\"emitter\",\"command\":\"Emit\",\"data\":{},"
          "\"bogus\":1}", "unknown field \"bogus\"" },
        { "{\"op\":\"send\",\"context\":\"emitter\",\"command\":\"Emit\","
          "\"data\":{\"n\":1,\"n\":2}}", "duplicate object key" },
        { "{\"op\":\"send\",\"context\":\"emitter\",\"command\":\"Emit\","
          "\"data\":{\"id\":\"\xff\"}}", "unable to decode byte 0xff" },
        { "{\"op\":\"send\",\"context\":\"emitter\",\"command\":\"Emit\","
          "\"data\":{\"n\":01}}", "malformed JSON" },
        { "{\"op\":\"send\",\"context\":\"emitter\",\"command\":\"Emit\",\"data\":[]}",
          "\"data\" must be an object" },
        { "{\"op\":\"send\",\"context\":\"emitter\",\"command\":\"\",\"data\":{}}",
          "\"command\" must be a non-empty string" },
        { "{\"op\":\"send\",\"context\":\"emitter\",\"command\":\"Emit\",\"id\":\"\","
          "\"data\":{}}", "\"id\" must be a string of 1 to" },
    };
    const size_t n_bad = sizeof bad / sizeof *bad;
    json_t *st = h_stats (&s_host);
    json_int_t before = h_int_at (st, "api.bad_request");
    json_int_t pid = h_int_at (st, "contexts.emitter.pid");
    json_decref (st);
    size_t logged = s_logged ();
    for (size_t i = 0; i < n_bad; i++) {
        json_t *r = h_request (s_host.endpoint, bad[i].body, strlen (bad[i].body), 5000);
        assert_non_null (r);
        assert_string_equal (s_code (r), "bad_request");
        if (!strstr (h_error_message (r), bad[i].says))
            fail_msg ("request %zu: \"%s\" lacks \"%s\"", i, h_error_message (r), bad[i].says);
        json_decref (r);
    }
    /* Counted once each; nothing stored; the same process serves on. */
    st = h_stats (&s_host);
    assert_int_equal (h_int_at (st, "api.bad_request"), before + (json_int_t) n_bad);
    assert_int_equal (h_int_at (st, "contexts.emitter.pid"), pid);
    json_decref (st);
    assert_int_equal (s_logged (), logged);
    json_t *r = s_emit (NULL, "after-bad", 1, 10);
    assert_string_equal (s_code (r), "");
    json_decref (r);
    assert_int_equal (s_logged (), logged + 1);
}

static int
s_setup (void **state)
{
    (void) state;
    if (h_init (&s_host) < 0)
        return -1;
    snprintf (s_host.contexts, sizeof s_host.contexts,
              "[{\"name\": \"emitter\", \"plugin\": \"%s\"}]", h_path ("tests/plugins/emitter.so"));
    snprintf (s_host.host_extra, sizeof s_host.host_extra, "\"max_message\": 4096");
    return h_start (&s_host);
}

static int
s_teardown (void **state)
{
    (void) state;
    return h_teardown (&s_host);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_decide_output_is_bounded),
        cmocka_unit_test (test_a_lower_event_limit),
        cmocka_unit_test (test_a_send_passed_on_unparsed_is_checked_where_it_is_decided),
    };
    return cmocka_run_group_tests (tests, s_setup, s_teardown);
}
