/*
 * test_soak - a short, fixed run of bin/bctx-soak (what `make soak` runs
 * for longer at random): the bank under four clients and a retrier for
 * 20 s, with three kill -9 and restarts (one while a reload runs, one
 * right after a SIGHUP), two reloads of accounts between 1.0.0 and 2.0.0,
 * two SIGHUPs with the config unchanged and two that switch accounts'
 * plugin path, then every invariant checked.
 *
 * The number of commands depends on the machine's speed; the invariants
 * do not.  The test also checks the run did what it says (commands
 * acknowledged and rejected, resent, transfers both completed and failed,
 * kills, a reload and a SIGHUP that took), so it cannot pass on an idle
 * host.
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

#define S_SECONDS "20"
#define S_PLAN    "2:reload,4:kill,6:hup,8:hup-swap,10:reload-kill,12:reload,14:hup-swap," \
                  "16:hup-kill,18:hup"
#define S_KILLS   3
#define S_BOUND_MS (900 * 1000)   /* the soak bounds itself well below this */

static json_t *s_report;          /* the soak's report, freed by the teardown */

/* An integer at report.a.b. */
static json_int_t
s_int (json_t *report, const char *a, const char *b)
{
    return json_integer_value (json_object_get (json_object_get (report, a), b));
}

/* Fails with the offences when the report's check `name` failed. */
static void
s_assert_check (json_t *report, const char *name)
{
    json_t *check = json_object_get (json_object_get (report, "checks"), name);
    assert_non_null (check);
    if (!json_is_true (json_object_get (check, "ok"))) {
        char *shown = json_dumps (json_object_get (check, "shown"), JSON_INDENT (2));
        fail_msg ("invariant %s failed %lld time(s): %s", name,
                  (long long) json_integer_value (json_object_get (check, "offences")), shown);
    }
    assert_int_equal (json_integer_value (json_object_get (check, "offences")), 0);
}

static void
test_soak_keeps_the_bank_invariants (void **state)
{
    (void) state;
    char dir[] = "/tmp/bctx-test-soak-XXXXXX";
    assert_non_null (mkdtemp (dir));
    char report_path[64], out_path[64];
    snprintf (report_path, sizeof report_path, "%s/report.json", dir);
    snprintf (out_path, sizeof out_path, "%s/summary.txt", dir);
    char *argv[] = { "bctx-soak", "--seconds", S_SECONDS, "--seed", "20261201", "--clients",
                     "4", "--plan", S_PLAN, "--report", report_path, NULL };
    pid_t pid = h_spawn ("bctx-soak", argv, out_path);
    assert_true (pid > 0);
    int status = h_wait (pid, S_BOUND_MS);

    /* What it printed, for the test's log. */
    FILE *f = fopen (out_path, "r");
    if (f) {
        char line[1024];
        while (fgets (line, sizeof line, f))
            fputs (line, stdout);
        fclose (f);
    }
    json_t *report = s_report = json_load_file (report_path, 0, NULL);
    if (!report)
        fail_msg ("bctx-soak exited %d without a report", status);

    /* Every invariant, one by one. */
    s_assert_check (report, "positions");
    s_assert_check (report, "unique_ids");
    s_assert_check (report, "acknowledged_once");
    s_assert_check (report, "retries_first_answer");
    s_assert_check (report, "money");
    s_assert_check (report, "transfers_once");
    s_assert_check (report, "projections");
    s_assert_check (report, "host");
    s_assert_check (report, "host_log");
    assert_true (json_is_true (json_object_get (report, "ok")));
    assert_int_equal (status, 0);

    /* It really did something: the chaos happened ... */
    assert_int_equal (s_int (report, "chaos", "kills"), S_KILLS);
    assert_int_equal (s_int (report, "chaos", "restarts"), S_KILLS);
    assert_int_equal (s_int (report, "chaos", "reload_kills"), 1);
    assert_int_equal (s_int (report, "chaos", "hup_kills"), 1);
    assert_true (s_int (report, "chaos", "reloads_ok") >= 1);
    assert_true (s_int (report, "chaos", "hups") + s_int (report, "chaos", "hup_swaps") >= 1);
    assert_int_equal (s_int (report, "chaos", "clean_stops"), 2);
    /* ... under load, with every kind of outcome. */
    assert_true (s_int (report, "commands", "ok") > 0);
    assert_true (s_int (report, "commands", "rejected") > 0);
    assert_true (s_int (report, "commands", "resends") > 0);
    assert_true (s_int (report, "transfers", "completed") > 0);
    assert_true (s_int (report, "transfers", "failed") > 0);
    assert_int_equal (s_int (report, "transfers", "pending"), 0);
    assert_true (s_int (report, "positions", "accounts") > 0);
    assert_true (s_int (report, "positions", "transfers") > 0);

    unlink (report_path);
    unlink (out_path);
    rmdir (dir);
}

static int
s_teardown (void **state)
{
    (void) state;
    json_decref (s_report);
    s_report = NULL;
    return 0;
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown (test_soak_keeps_the_bank_invariants, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
