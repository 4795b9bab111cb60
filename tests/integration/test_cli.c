/*
 * test_cli - bctx's help texts (stdout, exit 0), usage errors (exit 2),
 * --pretty against piped JSON Lines, and bctx-host --pidfile with
 * `bctx stop` (the admin op that drains as SIGTERM).
 */
#include "harness.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

static void
test_help_on_stdout (void **state)
{
    (void) state;
    h_host_t h;
    h_init (&h);
    char *out = NULL;
    char *a1[] = { "bctx", "--help", NULL };
    assert_int_equal (h_cli_argv (&out, a1), 0);
    h_assert_contains (out, "usage: bctx");
    h_assert_contains (out, "events");
    free (out);
    char *a2[] = { "bctx", "help", "send", NULL };
    assert_int_equal (h_cli_argv (&out, a2), 0);
    h_assert_contains (out, "send CONTEXT COMMAND JSON");
    free (out);
    char *a3[] = { "bctx", "events", "--help", NULL };
    assert_int_equal (h_cli_argv (&out, a3), 0);
    h_assert_contains (out, "--follow");
    free (out);
    char *a4[] = { "bctx", "help", "nosuch", NULL };
    assert_int_equal (h_cli_argv (&out, a4), 2);
    free (out);
    char *a5[] = { "bctx", "events", "--limit", "x", NULL };
    assert_int_equal (h_cli_argv (&out, a5), 2);
    free (out);
    char *a6[] = { "bctx", "-e", "nonsense", "contexts", NULL };
    assert_int_equal (h_cli_argv (&out, a6), 2);
    free (out);
    h_cleanup (&h);
}

static void
test_pretty_pidfile_and_stop (void **state)
{
    (void) state;
    h_host_t h;
    h_init (&h);
    char pidfile[400];
    snprintf (pidfile, sizeof pidfile, "%s/host.pid", h.dir);
    const char *args[] = { "--pidfile", pidfile, NULL };
    assert_int_equal (h_start_args (&h, args), 0);
    FILE *f = fopen (pidfile, "r");
    assert_non_null (f);
    long pid = 0;
    assert_int_equal (fscanf (f, "%ld", &pid), 1);
    fclose (f);
    assert_int_equal (pid, (long) h.pid);
    char *out = NULL;
    assert_int_equal (h_cli (&h, &out, "contexts", NULL), 0);
    json_t *j = h_json (out);
    assert_non_null (j);                     /* piped: one JSON line */
    json_decref (j);
    free (out);
    assert_int_equal (h_cli (&h, &out, "--pretty", "contexts", NULL), 0);
    h_assert_contains (out, "CONTEXT");
    h_assert_contains (out, "accounts");
    assert_null (h_json (out));
    free (out);
    assert_int_equal (h_cli (&h, &out, "stats", "--pretty", NULL), 0);
    h_assert_contains (out, "RSS_MB");
    free (out);
    assert_int_equal (h_cli (&h, &out, "stats", "--watch", "1", "--count", "2", NULL), 0);
    int lines = 0;
    for (char *p = out; p && (p = strchr (p, '\n')); p++)
        lines++;
    assert_int_equal (lines, 2);
    free (out);
    /* stop: an admin op, answered, then the host drains and exits 0. */
    assert_int_equal (h_cli (&h, &out, "stop", NULL), 0);
    j = h_json (out);
    assert_true (h_ok (j));
    json_decref (j);
    free (out);
    assert_true (h_gone (h.pid, 20000));
    assert_int_not_equal (access (pidfile, F_OK), 0);
    h.pid = 0;
    h_cleanup (&h);
}

/* Counts the lines of file path that name position "pos" (as
 * "\"position\":N,"), and all its lines in *lines. */
static int
s_count_position (const char *path, int pos, int *lines)
{
    FILE *f = fopen (path, "r");
    if (!f)
        return -1;
    char line[4096], needle[48];
    snprintf (needle, sizeof needle, "\"position\":%d,", pos);
    int n = 0;
    *lines = 0;
    while (fgets (line, sizeof line, f)) {
        (*lines)++;
        if (strstr (line, needle))
            n++;
    }
    fclose (f);
    return n;
}

/* events --follow: the log from --from, then live events from the bus,
 * each once, across the seam; and stop refused on the public API. */
static void
test_follow_and_stop_refused (void **state)
{
    (void) state;
    h_host_t h;
    h_init (&h);
    assert_int_equal (h_start (&h), 0);
    json_t *r = h_send (h.endpoint, "accounts", "OpenAccount", "f-open",
                        json_pack ("{s:s, s:s}", "account", "f1", "owner", "F"));
    assert_true (h_ok (r));
    json_decref (r);
    r = h_send (h.endpoint, "accounts", "Deposit", "f-dep-1",
                json_pack ("{s:s, s:i}", "account", "f1", "amount", 1));
    assert_true (h_ok (r));
    json_decref (r);
    char out[400];
    snprintf (out, sizeof out, "%s/follow.out", h.dir);
    char *argv[] = { "bctx", "-e", h.endpoint, "events", "--context", "accounts",
                     "--follow", "--limit", "4", NULL };
    pid_t follower = h_spawn ("bctx", argv, out);
    /* Two more once it is following: they come live, after the two logged. */
    usleep (1000 * 1000);
    for (int i = 2; i <= 3; i++) {
        char id[32];
        snprintf (id, sizeof id, "f-dep-%d", i);
        r = h_send (h.endpoint, "accounts", "Deposit", id,
                    json_pack ("{s:s, s:i}", "account", "f1", "amount", i));
        assert_true (h_ok (r));
        json_decref (r);
    }
    assert_int_equal (h_wait (follower, 20000), 0);
    int lines = 0;
    for (int pos = 1; pos <= 4; pos++)
        assert_int_equal (s_count_position (out, pos, &lines), 1);
    assert_int_equal (lines, 4);
    /* stop is an admin op: the public API refuses it, and the host serves on. */
    char *text = NULL;
    assert_int_equal (h_cli (&h, &text, "--admin", h.endpoint, "stop", NULL), 1);
    h_assert_contains (text, "forbidden");
    free (text);
    assert_int_equal (h_cli (&h, &text, "contexts", NULL), 0);
    free (text);
    h_teardown (&h);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_help_on_stdout),
        cmocka_unit_test (test_pretty_pidfile_and_stop),
        cmocka_unit_test (test_follow_and_stop_refused),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
