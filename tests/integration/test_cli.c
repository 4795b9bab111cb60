/*
 * test_cli - bctx's help texts (stdout, exit 0), usage errors (exit 2,
 * naming the argument, on stderr), invalid JSON with its line and column,
 * the no-host and endpoint-form hints, --pretty against piped JSON Lines,
 * replay --wait, and bctx-host --pidfile (a second host on the same file
 * refused) with `bctx stop` (the admin op that drains as SIGTERM).
 */
#include "harness.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
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
    /* A second host on the same pidfile, while the first serves: refused,
     * naming the file and the running pid; the file still names the first. */
    h_host_t h2;
    h_init (&h2);
    assert_int_equal (h_write_config (&h2), 0);
    pid_t second = h_spawn_host (&h2, args);
    assert_int_equal (h_wait (second, 20000), 1);
    char *log2 = h_read_log (&h2);
    char want[600];
    snprintf (want, sizeof want, "--pidfile %s: process %ld is running", pidfile, pid);
    h_assert_contains (log2, want);
    free (log2);
    h_cleanup (&h2);
    f = fopen (pidfile, "r");
    assert_non_null (f);
    long still = 0;
    assert_int_equal (fscanf (f, "%ld", &still), 1);
    fclose (f);
    assert_int_equal (still, (long) h.pid);
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

/* Runs bctx with argv (NULL-ended, argv[0] unused), stdout into *out and
 * stderr into *err (both new).  Return the exit code. */
static int
s_cli2 (char **out, char **err, char *const argv[])
{
    char path[] = "/tmp/bctx-test-stderr-XXXXXX";
    int fd = mkstemp (path);
    assert_true (fd >= 0);
    fflush (stderr);
    int saved = dup (2);
    dup2 (fd, 2);
    int code = h_cli_argv (out, argv);
    dup2 (saved, 2);
    close (saved);
    lseek (fd, 0, SEEK_SET);
    char text[16384];
    ssize_t n = read (fd, text, sizeof text - 1);
    text[n > 0 ? n : 0] = '\0';
    close (fd);
    unlink (path);
    *err = strdup (text);
    return code;
}

/* Help on stdout with nothing on stderr; each usage error on stderr
 * naming what is wrong, with that subcommand's usage, and nothing on
 * stdout; JSON errors with line and column; the endpoint's form; and
 * with no host, the hint to check it runs and -e. */
static void
test_help_and_error_texts (void **state)
{
    (void) state;
    char *out = NULL, *err = NULL;
    char *a1[] = { "bctx", "help", NULL };
    assert_int_equal (s_cli2 (&out, &err, a1), 0);
    h_assert_contains (out, "usage: bctx [-e ENDPOINT]");
    h_assert_contains (out, "new-context");
    assert_string_equal (err, "");
    free (out), free (err);
    char *a2[] = { "bctx", "send", "--help", NULL };
    assert_int_equal (s_cli2 (&out, &err, a2), 0);
    h_assert_contains (out, "usage: bctx [OPTIONS] send CONTEXT COMMAND JSON [--id ID]");
    h_assert_contains (out, "--id ID names the command");
    assert_string_equal (err, "");
    free (out), free (err);
    char *a3[] = { "bctx", "events", "--limit", "x", NULL };
    assert_int_equal (s_cli2 (&out, &err, a3), 2);
    h_assert_contains (err, "bctx events: --limit: expected a whole number >= 1, got \"x\"");
    h_assert_contains (err, "usage: bctx [OPTIONS] events");
    assert_string_equal (out, "");
    free (out), free (err);
    char *a4[] = { "bctx", "send", "accounts", "Deposit", NULL };
    assert_int_equal (s_cli2 (&out, &err, a4), 2);
    h_assert_contains (err, "bctx send: missing argument (expected CONTEXT COMMAND JSON");
    free (out), free (err);
    char *a5[] = { "bctx", "query", "balances", "--bogus", NULL };
    assert_int_equal (s_cli2 (&out, &err, a5), 2);
    h_assert_contains (err, "bctx query: unknown option \"--bogus\"");
    h_assert_contains (err, "usage: bctx [OPTIONS] query");
    free (out), free (err);
    char *a6[] = { "bctx", "send", "inventory", "Add", "{\"sku\": 1,\n \"n\": x}", NULL };
    assert_int_equal (s_cli2 (&out, &err, a6), 2);
    h_assert_contains (err, "bctx send: JSON: line 2, column ");
    free (out), free (err);
    char *a7[] = { "bctx", "-e", "nonsense", "contexts", NULL };
    assert_int_equal (s_cli2 (&out, &err, a7), 2);
    h_assert_contains (err, "bad endpoint \"nonsense\" (from -e)");
    h_assert_contains (err, "tcp://HOST:PORT");
    free (out), free (err);
    /* No host: a port just taken from the kernel and let go. */
    int fd = socket (AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl (INADDR_LOOPBACK) };
    socklen_t len = sizeof sa;
    assert_int_equal (bind (fd, (struct sockaddr *) &sa, len), 0);
    assert_int_equal (getsockname (fd, (struct sockaddr *) &sa, &len), 0);
    close (fd);
    char endpoint[64];
    snprintf (endpoint, sizeof endpoint, "tcp://127.0.0.1:%d", ntohs (sa.sin_port));
    char *a8[] = { "bctx", "-e", endpoint, "--timeout", "0.3", "contexts", NULL };
    assert_int_equal (s_cli2 (&out, &err, a8), 3);
    h_assert_contains (err, "is bctx-host running on");
    h_assert_contains (err, "Set -e or BCTX_ENDPOINT");
    free (out), free (err);
}

/* replay --wait, piped: exit 0 once the projection rebuilt and caught up,
 * and one final JSON line (no progress bar, which is for a terminal);
 * an unknown projection exits 1 naming those that exist; events piped
 * are JSON lines, --pretty a table. */
static void
test_replay_wait (void **state)
{
    (void) state;
    h_host_t h;
    h_init (&h);
    snprintf (h.contexts, sizeof h.contexts,
              "[{\"name\": \"accounts\", \"plugin\": \"%s\"},"
              " {\"name\": \"transfers\", \"plugin\": \"%s\"}]",
              h_path ("plugins/accounts/accounts.so"), h_path ("plugins/transfers/transfers.so"));
    assert_int_equal (h_start (&h), 0);
    for (int i = 0; i < 20; i++) {
        char id[32], account[16];
        snprintf (id, sizeof id, "rw-%d", i);
        snprintf (account, sizeof account, "w%d", i);
        json_t *r = h_send (h.endpoint, "accounts", "OpenAccount", id,
                            json_pack ("{s:s, s:s}", "account", account, "owner", "W"));
        assert_true (h_ok (r));
        json_decref (r);
    }
    json_t *stats = h_stats (&h);
    json_int_t before = h_int_at (stats, "projections.balances.rebuilds");
    json_decref (stats);
    char *out = NULL;
    assert_int_equal (h_cli (&h, &out, "--timeout", "30", "replay", "balances", "--wait", NULL), 0);
    assert_null (strchr (out, '\r'));
    assert_null (strchr (out, '\033'));
    char *nl = strchr (out, '\n');
    assert_non_null (nl);
    assert_string_equal (nl + 1, "");                  /* one line */
    json_t *j = h_json (out);
    assert_true (h_ok (j));
    h_assert_str (h_str (j, "projection"), "balances");
    h_assert_str (h_str (json_object_get (j, "stats"), "state"), "live");
    assert_true (h_int_at (j, "stats.rebuilds") > before);
    assert_int_equal (h_int_at (j, "stats.lag.accounts"), 0);
    json_decref (j);
    free (out);
    /* Caught up: every account is there again. */
    json_t *all = h_query_all (&h, "balances", 7);
    assert_int_equal (json_object_size (all), 20);
    json_decref (all);
    assert_int_equal (h_cli (&h, &out, "replay", "nosuch", "--wait", NULL), 1);
    h_assert_contains (out, "unknown_projection");
    h_assert_contains (out, "balances");
    free (out);
    assert_int_equal (h_cli (&h, &out, "events", "--context", "accounts", "--limit", "2", NULL), 0);
    j = h_json (out);
    h_assert_str (h_str (j, "type"), "AccountOpened");
    json_decref (j);
    free (out);
    assert_int_equal (h_cli (&h, &out, "--pretty", "events", "--context", "accounts", "--limit",
                             "2", NULL), 0);
    h_assert_contains (out, "POSITION");
    h_assert_contains (out, "AccountOpened");
    assert_null (h_json (out));
    free (out);
    h_teardown (&h);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_help_on_stdout),
        cmocka_unit_test (test_pretty_pidfile_and_stop),
        cmocka_unit_test (test_follow_and_stop_refused),
        cmocka_unit_test (test_help_and_error_texts),
        cmocka_unit_test (test_replay_wait),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
