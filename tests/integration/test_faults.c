/*
 * test_faults - a context whose plugin code crashes, aborts, exits, hangs
 * or leaks costs only its own context a restart (tests/plugins/fault.c).
 * Each case shows three things: the accounts context keeps serving during
 * the fault (a load of Deposits that all succeed), the faulty context
 * comes back once the fault is disarmed, and nothing acknowledged is
 * lost or doubled (every acknowledged id is in its log exactly once, the
 * positions have no gap, the deposits add up).  Also: SIGTERM with a hung
 * decide in flight ends within host.stop_timeout_ms.
 */
#include "harness.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define S_LOAD 100        /* Deposits sent to accounts during a fault */

/* One case: the fault, where it is, and what its obituary says (either). */
typedef struct {
    const char *fault;
    const char *in;
    const char *exit_a;
    const char *exit_b;
} s_case_t;

/* Starts a host with accounts and a fault context for case c. */
static void
s_start (h_host_t *h, const s_case_t *c, const char *extra)
{
    assert_int_equal (h_init (h), 0);
    h->faults_expected = 1;
    snprintf (h->contexts, sizeof h->contexts,
              "[{\"name\": \"accounts\", \"plugin\": \"%s\"},"
              " {\"name\": \"fault\", \"plugin\": \"%s\", %s"
              "  \"settings\": {\"dir\": \"%s\", \"fault\": \"%s\", \"in\": \"%s\"}}]",
              h_path ("plugins/accounts/accounts.so"), h_path ("tests/plugins/fault.so"),
              strcmp (c->fault, "leak") == 0 ? "\"max_rss_mb\": 64," : "",
              h->dir, c->fault, c->in);
    snprintf (h->host_extra, sizeof h->host_extra, "%s", extra);
    assert_int_equal (h_start (h), 0);
}

/* Arms (1) or disarms (0) the fault. */
static void
s_arm (h_host_t *h, int on)
{
    char path[400];
    snprintf (path, sizeof path, "%s/armed", h->dir);
    if (on) {
        FILE *f = fopen (path, "w");
        assert_non_null (f);
        fclose (f);
    } else {
        unlink (path);
    }
}

/* Sends Hit {id}.  Return the error code, or NULL when ok (*acked set). */
static const char *
s_hit (h_host_t *h, const char *id, int *acked)
{
    static char code[64];
    json_t *r = h_send (h->endpoint, "fault", "Hit", id, json_pack ("{s:s}", "id", id));
    *acked = r && json_is_true (json_object_get (r, "ok"));
    snprintf (code, sizeof code, "%s", r ? json_string_value (json_object_get (
                  json_object_get (r, "error"), "code")) ?: "?" : "timeout");
    json_decref (r);
    return *acked ? NULL : code;
}

/* The fault context's process, from stats (new), or NULL. */
static json_t *
s_process (h_host_t *h)
{
    json_t *r = h_request (h->endpoint, "{\"op\":\"stats\"}", 14, 3000);
    json_t *p = json_object_get (json_object_get (json_object_get (r, "contexts"), "fault"),
                                 "process");
    json_incref (p);
    json_decref (r);
    return p;
}

/* Every event of `context` is at positions 1..n, and each id in acked
 * (n_acked of them) is the command id of exactly one of them.  Return n. */
static size_t
s_check_log (h_host_t *h, const char *context, char ids[][32], size_t n_acked)
{
    json_t *all = h_events (h, context);
    assert_non_null (all);
    size_t i;
    json_t *e;
    json_array_foreach (all, i, e)
        assert_int_equal (json_integer_value (json_object_get (e, "position")), (json_int_t) i + 1);
    for (size_t k = 0; k < n_acked; k++) {
        int seen = 0;
        json_array_foreach (all, i, e) {
            const char *id = json_string_value (json_object_get (json_object_get (e, "metadata"),
                                                                 "command_id"));
            seen += id && strcmp (id, ids[k]) == 0;
        }
        if (seen != 1)
            fail_msg ("%s: acknowledged id %s is in the log %d times", context, ids[k], seen);
    }
    size_t n = json_array_size (all);
    json_decref (all);
    return n;
}

static void
s_run_case (const s_case_t *c)
{
    h_host_t h;
    s_start (&h, c, "\"handler_timeout_ms\": 1000");
    json_t *r = h_send (h.endpoint, "accounts", "OpenAccount", "open",
                        json_pack ("{s:s, s:s}", "account", "a1", "owner", "Ann"));
    assert_true (json_is_true (json_object_get (r, "ok")));
    json_decref (r);
    char fault_ids[2100][32];
    size_t n_fault = 0;
    int acked;
    assert_null (s_hit (&h, "h0", &acked));
    snprintf (fault_ids[n_fault++], 32, "h0");

    /* The fault: its commands in flight answered unavailable, soon. */
    s_arm (&h, 1);
    int decides = strcmp (c->in, "decide") == 0 || strcmp (c->in, "evolve") == 0;
    long long t0 = h_now_us ();
    if (strcmp (c->fault, "leak") == 0) {
        for (int i = 0; i < 2000 && h_now_us () - t0 < 60 * 1000000LL; i++) {
            char id[32];
            snprintf (id, sizeof id, "l%d", i);
            if (!s_hit (&h, id, &acked))
                snprintf (fault_ids[n_fault++], 32, "%s", id);
            json_t *p = s_process (&h);
            int restarted = json_integer_value (json_object_get (p, "restarts")) >= 1;
            json_decref (p);
            if (restarted)
                break;
        }
    } else {
        const char *code = s_hit (&h, "h1", &acked);
        if (decides) {
            assert_non_null (code);
            assert_string_equal (code, "unavailable");
            assert_true (h_now_us () - t0 < 2500 * 1000LL);
        } else if (acked) {
            snprintf (fault_ids[n_fault++], 32, "h1");
        }
    }
    /* Meanwhile accounts serves every one of a load of deposits. */
    char deposit_ids[S_LOAD + 1][32];
    snprintf (deposit_ids[0], 32, "open");
    for (int i = 0; i < S_LOAD; i++) {
        snprintf (deposit_ids[i + 1], 32, "d%d", i);
        r = h_send (h.endpoint, "accounts", "Deposit", deposit_ids[i + 1],
                    json_pack ("{s:s, s:i}", "account", "a1", "amount", 1));
        if (!json_is_true (json_object_get (r, "ok")))
            fail_msg ("deposit %d during the fault: %s", i, r ? json_dumps (r, 0) : "timeout");
        json_decref (r);
    }
    /* The obituary. */
    json_t *p = NULL;
    for (long long end = h_now_us () + 20 * 1000000LL; h_now_us () < end; usleep (50000)) {
        json_decref (p);
        p = s_process (&h);
        if (json_integer_value (json_object_get (p, "restarts")) >= 1
            && json_is_string (json_object_get (p, "last_exit")))
            break;
    }
    assert_true (json_integer_value (json_object_get (p, "restarts")) >= 1);
    const char *how = json_string_value (json_object_get (p, "last_exit"));
    assert_non_null (how);
    if (!strstr (how, c->exit_a) && !(c->exit_b && strstr (how, c->exit_b)))
        fail_msg ("%s in %s: last_exit is \"%s\"", c->fault, c->in, how);
    json_decref (p);

    /* Disarmed, it comes back. */
    s_arm (&h, 0);
    int back = 0;
    for (long long end = h_now_us () + 20 * 1000000LL; !back && h_now_us () < end;
         usleep (50000))
        back = s_hit (&h, "h2", &acked) == NULL;
    assert_true (back);
    snprintf (fault_ids[n_fault++], 32, "h2");

    /* Nothing acknowledged lost or doubled; the money adds up. */
    assert_int_equal (s_check_log (&h, "accounts", deposit_ids, S_LOAD + 1), S_LOAD + 1);
    s_check_log (&h, "fault", fault_ids, n_fault);
    assert_int_equal (h_cleanup (&h), 0);
}

#define S_CASE(name, fault, in, a, b)                                            \
    static void name (void **state)                                              \
    {                                                                            \
        (void) state;                                                            \
        const s_case_t c = { fault, in, a, b };                                  \
        s_run_case (&c);                                                         \
    }

S_CASE (test_segv_in_decide, "segv", "decide", "signal 11", "status 1")
S_CASE (test_abort_in_decide, "abort", "decide", "signal 6", NULL)
S_CASE (test_exit_in_decide, "exit", "decide", "status 3", "status 23")
S_CASE (test_hang_in_decide, "hang", "decide", "hung", NULL)
S_CASE (test_leak_in_decide, "leak", "decide", "max_rss_mb", NULL)
S_CASE (test_segv_in_evolve, "segv", "evolve", "signal 11", "status 1")
S_CASE (test_hang_in_evolve, "hang", "evolve", "hung", NULL)
S_CASE (test_segv_in_projection, "segv", "projection", "signal 11", "status 1")
S_CASE (test_abort_in_projection, "abort", "projection", "signal 6", NULL)
S_CASE (test_hang_in_projection, "hang", "projection", "hung", NULL)
S_CASE (test_exit_in_reactor, "exit", "reactor", "status 3", "status 23")
S_CASE (test_hang_in_reactor, "hang", "reactor", "hung", NULL)
S_CASE (test_leak_in_projection, "leak", "projection", "max_rss_mb", NULL)

/* A projection that crashes on one event (a poison event) crashes its
 * process again at each restart, BCTX_POISON_LIMIT (3) times; then the
 * event is parked for it, and it goes on with the other events. */
static void
test_poison_event_is_parked (void **state)
{
    (void) state;
    h_host_t h;
    assert_int_equal (h_init (&h), 0);
    h.faults_expected = 1;
    snprintf (h.contexts, sizeof h.contexts,
              "[{\"name\": \"fault\", \"plugin\": \"%s\", \"settings\": {\"dir\": \"%s\","
              " \"fault\": \"segv\", \"in\": \"projection\", \"aggregate\": \"poison\"}}]",
              h_path ("tests/plugins/fault.so"), h.dir);
    assert_int_equal (h_start (&h), 0);
    s_arm (&h, 1);
    int acked;
    assert_null (s_hit (&h, "poison", &acked));
    /* It stays armed: only parking ends the loop. */
    json_t *view = NULL;
    for (long long end = h_now_us () + 30 * 1000000LL; h_now_us () < end; usleep (100000)) {
        json_decref (view);
        s_hit (&h, "fine", &acked);
        view = h_request (h.endpoint, "{\"op\":\"query\",\"projection\":\"fault-view\","
                          "\"key\":\"fine\"}", 53, 2000);
        if (json_is_object (json_object_get (view, "value")))
            break;
    }
    assert_true (json_integer_value (json_object_get (json_object_get (view, "value"), "hits"))
                 >= 1);
    json_decref (view);
    json_t *p = s_process (&h);
    assert_int_equal (json_integer_value (json_object_get (p, "restarts")), 3);
    json_decref (p);
    /* Polled: a stats that its process answers late lacks its part. */
    json_int_t passed = 0;
    for (long long end = h_now_us () + 20 * 1000000LL; passed != 1 && h_now_us () < end;
         usleep (100000)) {
        json_t *r = h_request (h.endpoint, "{\"op\":\"stats\"}", 14, 3000);
        json_t *fv = json_object_get (json_object_get (r, "projections"), "fault-view");
        passed = json_integer_value (json_object_get (fv, "passed_over"));
        json_decref (r);
    }
    assert_int_equal (passed, 1);
    char *log = h_read_log (&h);
    assert_non_null (strstr (log, "projection fault-view ended its process 3 times on fault's "
                                  "event at position 1: parked for it"));
    free (log);
    assert_int_equal (h_cleanup (&h), 0);
}

/* A new version whose init crashes, loaded by reload: its process is a
 * standby of the handover, so the reload is answered with an error that
 * says so, and the old version serves all along (it never restarts). */
static void
test_segv_in_init_at_reload (void **state)
{
    (void) state;
    const s_case_t c = { "segv", "init", NULL, NULL };
    h_host_t h;
    s_start (&h, &c, "\"handler_timeout_ms\": 1000");
    int acked;
    assert_null (s_hit (&h, "i0", &acked));
    s_arm (&h, 1);
    char *out = NULL;
    int rc = h_cli (&h, &out, "reload", "fault", h_path ("tests/plugins/fault.so"), NULL);
    assert_int_not_equal (rc, 0);
    assert_non_null (strstr (out, "the old version keeps serving"));
    assert_non_null (strstr (out, "signal 11"));
    free (out);
    /* Still armed, and the old version answers at once. */
    assert_null (s_hit (&h, "i0b", &acked));
    /* Accounts serves meanwhile. */
    json_t *r = h_send (h.endpoint, "accounts", "OpenAccount", "open",
                        json_pack ("{s:s, s:s}", "account", "a1", "owner", "Ann"));
    assert_true (json_is_true (json_object_get (r, "ok")));
    json_decref (r);
    s_arm (&h, 0);
    int back = 0;
    for (long long end = h_now_us () + 20 * 1000000LL; !back && h_now_us () < end;
         usleep (50000))
        back = s_hit (&h, "i1", &acked) == NULL;
    assert_true (back);
    json_t *p = s_process (&h);
    assert_int_equal (json_integer_value (json_object_get (p, "restarts")), 0);
    json_decref (p);
    char ids[3][32] = { "i0", "i0b", "i1" };
    s_check_log (&h, "fault", ids, 3);
    assert_int_equal (h_cleanup (&h), 0);
}

/* SIGTERM while a decide hangs: the host still exits 0 within
 * host.stop_timeout_ms (and a margin), killing the hung process. */
static void
test_sigterm_with_a_hung_decide (void **state)
{
    (void) state;
    const s_case_t c = { "hang", "decide", NULL, NULL };
    h_host_t h;
    s_start (&h, &c, "\"handler_timeout_ms\": 60000, \"stop_timeout_ms\": 2000");
    s_arm (&h, 1);
    /* A client whose Hit hangs in decide. */
    char *argv[] = { "bctx", "-e", h.endpoint, "--timeout", "30", "send", "fault", "Hit",
                     "{\"id\":\"x\"}", NULL };
    pid_t client = h_spawn ("bctx", argv, NULL);
    usleep (500000);
    long long t0 = h_now_us ();
    kill (h.pid, SIGTERM);
    assert_int_equal (h_wait (h.pid, 10000), 0);
    h.pid = 0;
    assert_true (h_now_us () - t0 < 4 * 1000000LL);
    /* The client got an answer (unavailable), not a timeout. */
    int status = h_wait (client, 5000);
    assert_int_not_equal (status, 0);
    char *log = h_read_log (&h);
    assert_non_null (strstr (log, "did not stop within host.stop_timeout_ms"));
    free (log);
    assert_int_equal (h_cleanup (&h), 0);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_segv_in_decide),
        cmocka_unit_test (test_abort_in_decide),
        cmocka_unit_test (test_exit_in_decide),
        cmocka_unit_test (test_hang_in_decide),
        cmocka_unit_test (test_leak_in_decide),
        cmocka_unit_test (test_segv_in_evolve),
        cmocka_unit_test (test_hang_in_evolve),
        cmocka_unit_test (test_segv_in_projection),
        cmocka_unit_test (test_abort_in_projection),
        cmocka_unit_test (test_hang_in_projection),
        cmocka_unit_test (test_exit_in_reactor),
        cmocka_unit_test (test_hang_in_reactor),
        cmocka_unit_test (test_leak_in_projection),
        cmocka_unit_test (test_segv_in_init_at_reload),
        cmocka_unit_test (test_poison_event_is_parked),
        cmocka_unit_test (test_sigterm_with_a_hung_decide),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
