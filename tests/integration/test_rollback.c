/*
 * test_rollback - a reload is a handover between two context processes,
 * so a new version that fails never costs the old one its place:
 *   - one that fails while it starts (here: its added projection cannot
 *     open its file) never served: the old version keeps serving, its
 *     projections run its code, and a later reload, once the cause is
 *     gone, succeeds;
 *   - one that crashes on its first command after the switch is rolled
 *     back: the old version serves again, and the context says why.
 */
#include "harness.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

static h_host_t s_host;

/* The version that decided a new command of context (id: its aggregate
 * field's value), from its event's metadata (new), or NULL when the
 * command failed. */
static char *
s_decided_by (const char *context, const char *command, const char *id)
{
    json_t *r = h_send (s_host.endpoint, context, command, NULL, json_pack ("{s:s}", "id", id));
    if (!json_is_true (json_object_get (r, "ok"))) {
        json_decref (r);
        return NULL;
    }
    json_int_t pos = json_integer_value (json_object_get (
        json_array_get (json_object_get (r, "events"), 0), "position"));
    json_decref (r);
    char body[160];
    int n = snprintf (body, sizeof body, "{\"op\":\"events\",\"context\":\"%s\","
                      "\"from\":%lld,\"limit\":1}", context, (long long) pos);
    r = h_request (s_host.endpoint, body, (size_t) n, 5000);
    json_t *meta = json_object_get (json_array_get (json_object_get (r, "events"), 0),
                                    "metadata");
    char *v = strdup (json_string_value (json_object_get (meta, "context_version")));
    json_decref (r);
    return v;
}

/* The version that decided a new Add of grower, which must be accepted. */
static char *
s_deciding_version (const char *id)
{
    char *v = s_decided_by ("grower", "Add", id);
    assert_non_null (v);
    return v;
}

static int
s_has_projection (const char *name)
{
    json_t *r = h_request (s_host.endpoint, "{\"op\":\"stats\"}", 14, 5000);
    int has = json_object_get (json_object_get (r, "projections"), name) != NULL;
    json_decref (r);
    return has;
}

static void
test_a_failure_before_the_switch_keeps_the_old_version (void **state)
{
    (void) state;
    char *v = s_deciding_version ("x");
    assert_string_equal (v, "1.0.0");
    free (v);
    /* The v2 projection's file cannot be opened: a directory is in the way. */
    char blocker[400];
    snprintf (blocker, sizeof blocker, "%s/data/projection-grower_more.db", s_host.dir);
    assert_int_equal (mkdir (blocker, 0755), 0);
    char *out = NULL;
    int code = h_cli (&s_host, &out, "reload", "grower", h_path ("tests/plugins/grower_v2.so"),
                      NULL);
    assert_int_equal (code, 1);
    assert_non_null (strstr (out, "the old version keeps serving"));
    assert_non_null (strstr (out, "projection-grower_more.db"));
    free (out);
    /* The old version never stopped serving: bounded all the same. */
    json_t *c = NULL;
    for (int i = 0; i < 200; i++) {
        json_decref (c);
        c = h_context_info (&s_host, "grower");
        if (c && strcmp (json_string_value (json_object_get (c, "version")), "1.0.0") == 0
            && json_integer_value (json_object_get (c, "versions_loaded")) == 1)
            break;
        usleep (20000);
    }
    assert_string_equal (json_string_value (json_object_get (c, "version")), "1.0.0");
    assert_int_equal (json_integer_value (json_object_get (c, "versions_loaded")), 1);
    assert_non_null (json_string_value (json_object_get (c, "last_reload_error")));
    json_decref (c);
    v = s_deciding_version ("y");
    assert_string_equal (v, "1.0.0");
    free (v);
    assert_false (s_has_projection ("grower_more"));
    assert_true (s_has_projection ("grower_totals"));
    char *log = h_read_log (&s_host);
    assert_non_null (strstr (log, "reload failed, the old version keeps serving"));
    free (log);

    /* Cause gone: the same reload succeeds. */
    assert_int_equal (rmdir (blocker), 0);
    code = h_cli (&s_host, &out, "reload", "grower", h_path ("tests/plugins/grower_v2.so"), NULL);
    assert_int_equal (code, 0);
    free (out);
    v = s_deciding_version ("z");
    assert_string_equal (v, "2.0.0");
    free (v);
    assert_true (s_has_projection ("grower_more"));
}

/* The version that decided a new Hit of fault, or NULL when it failed. */
static char *
s_hit_version (const char *id)
{
    return s_decided_by ("fault", "Hit", id);
}

static void
test_a_crash_after_the_switch_rolls_back (void **state)
{
    (void) state;
    char *v = s_hit_version ("h0");
    assert_non_null (v);
    assert_string_equal (v, "1.0.0");
    free (v);
    /* Version 2 segfaults in decide while DIR/armed-v2 exists; 1 never. */
    char armed[400];
    snprintf (armed, sizeof armed, "%s/armed-v2", s_host.dir);
    FILE *f = fopen (armed, "w");
    assert_non_null (f);
    fclose (f);
    char *out = NULL;
    assert_int_equal (h_cli (&s_host, &out, "reload", "fault",
                             h_path ("tests/plugins/fault_v2.so"), NULL), 0);
    assert_non_null (strstr (out, "\"version\":\"2.0.0\""));
    free (out);
    /* Its first command crashes it: never acknowledged. */
    v = s_hit_version ("h1");
    assert_null (v);
    /* The old version comes back, bounded. */
    for (int i = 0; i < 200 && !v; i++) {
        v = s_hit_version ("h2");
        if (!v)
            usleep (50000);
    }
    assert_non_null (v);
    assert_string_equal (v, "1.0.0");
    free (v);
    json_t *c = h_context_info (&s_host, "fault");
    assert_string_equal (json_string_value (json_object_get (c, "version")), "1.0.0");
    const char *why = json_string_value (json_object_get (c, "last_reload_error"));
    assert_non_null (why);
    assert_non_null (strstr (why, "rolled back to the previous version"));
    json_decref (c);
    char *log = h_read_log (&s_host);
    assert_non_null (strstr (log, "rolled back to the previous version"));
    free (log);
}

static int
s_setup_fault (void **state)
{
    (void) state;
    if (h_init (&s_host) < 0)
        return -1;
    s_host.faults_expected = 1;
    snprintf (s_host.contexts, sizeof s_host.contexts,
              "[{\"name\": \"fault\", \"plugin\": \"%s\", \"settings\": {\"dir\": \"%s\", "
              "\"fault\": \"segv\", \"in\": \"decide\"}}]", h_path ("tests/plugins/fault.so"),
              s_host.dir);
    return h_start (&s_host);
}

static int
s_setup (void **state)
{
    (void) state;
    if (h_init (&s_host) < 0)
        return -1;
    snprintf (s_host.contexts, sizeof s_host.contexts,
              "[{\"name\": \"grower\", \"plugin\": \"%s\"}]", h_path ("tests/plugins/grower.so"));
    return h_start (&s_host);
}

static int
s_teardown (void **state)
{
    (void) state;
    /* cmocka does not count a failed group teardown: fail the run here. */
    if (h_cleanup (&s_host) != 0)
        exit (1);
    return 0;
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown (test_a_failure_before_the_switch_keeps_the_old_version,
                                         s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_a_crash_after_the_switch_rolls_back,
                                         s_setup_fault, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
