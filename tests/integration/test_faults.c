/*
 * test_faults - a context whose plugin code crashes, aborts, exits, hangs
 * or leaks costs only its own context a restart (tests/plugins/fault.c).
 * Each case shows three things: the accounts context keeps serving during
 * the fault (a load of Deposits that all succeed), the faulty context
 * comes back once the fault is disarmed, and nothing acknowledged is
 * lost or doubled (every acknowledged id is in its log exactly once, the
 * positions have no gap, the deposits add up).  Also: SIGTERM with a hung
 * decide in flight ends within host.stop_timeout_ms; a poison event is
 * parked after 3 ends, listed in stats, and `bctx retry` runs it again
 * (counted again while it still crashes, unparked once it runs).
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

/* The poison events parked for runner `name` of `kind` ("projections" or
 * "reactors"), from stats, polled until there are n of them and (n > 0)
 * the first ended its process `ends` times.  Return the last list seen
 * (new), or NULL when no stats had the runner's part. */
static json_t *
s_poison (h_host_t *h, const char *kind, const char *name, size_t n, json_int_t ends)
{
    json_t *list = NULL;
    for (long long end = h_now_us () + 20 * 1000000LL; h_now_us () < end; usleep (100000)) {
        json_t *r = h_request (h->endpoint, "{\"op\":\"stats\"}", 14, 3000);
        json_t *l = json_object_get (json_object_get (json_object_get (r, kind), name),
                                     "poison");
        if (json_is_array (l)) {
            json_decref (list);
            list = json_incref (l);
        }
        json_decref (r);
        if (list && json_array_size (list) == n
            && (n == 0 || json_integer_value (json_object_get (json_array_get (list, 0),
                                                               "ends")) == ends))
            break;
    }
    return list;
}

/* Checks that a poison list (borrowed) holds one entry: fault's event at
 * position 1, a Hit of aggregate "poison", which ended its process ends
 * times, with the time it was parked. */
static void
s_check_poison (json_t *list, json_int_t ends)
{
    assert_non_null (list);
    assert_int_equal (json_array_size (list), 1);
    json_t *e = json_array_get (list, 0);
    assert_string_equal (json_string_value (json_object_get (e, "context")), "fault");
    assert_int_equal (json_integer_value (json_object_get (e, "position")), 1);
    assert_string_equal (json_string_value (json_object_get (e, "aggregate")), "poison");
    assert_string_equal (json_string_value (json_object_get (e, "type")), "Hit");
    assert_int_equal (json_integer_value (json_object_get (e, "ends")), ends);
    const char *when = json_string_value (json_object_get (e, "parked_at"));
    assert_non_null (when);
    assert_int_equal (strlen (when), strlen ("2026-11-27T12:00:00.123456Z"));
}

/* Starts a host with accounts and a fault context whose `in`
 * ("projection" or "reactor") crashes on the events of aggregate
 * "poison", armed, and sends the poison event (position 1). */
static void
s_start_poison_lanes (h_host_t *h, const char *in, int lanes)
{
    assert_int_equal (h_init (h), 0);
    h->faults_expected = 1;
    snprintf (h->contexts, sizeof h->contexts,
              "[{\"name\": \"accounts\", \"plugin\": \"%s\"},"
              " {\"name\": \"fault\", \"plugin\": \"%s\", \"settings\": {\"dir\": \"%s\","
              " \"fault\": \"segv\", \"in\": \"%s\", \"aggregate\": \"poison\"},"
              " \"reactor_lanes\": %d}]",
              h_path ("plugins/accounts/accounts.so"), h_path ("tests/plugins/fault.so"),
              h->dir, in, lanes);
    assert_int_equal (h_start (h), 0);
    s_arm (h, 1);
    int acked;
    assert_null (s_hit (h, "poison", &acked));
}

static void
s_start_poison (h_host_t *h, const char *in)
{
    s_start_poison_lanes (h, in, 1);
}

/* Accounts serves: a new account opens.  tag names it. */
static void
s_accounts_serve (h_host_t *h, const char *tag)
{
    json_t *r = h_send (h->endpoint, "accounts", "OpenAccount", tag,
                        json_pack ("{s:s, s:s}", "account", tag, "owner", "Ann"));
    if (!json_is_true (json_object_get (r, "ok")))
        fail_msg ("accounts, %s: %s", tag, r ? json_dumps (r, 0) : "timeout");
    json_decref (r);
}

/* Runs `bctx retry ARGS...` (NULL-terminated, at most 3) with the poison
 * event still crashing: the reply is ok, or "unavailable" when the
 * process ended before its answer went out. */
static void
s_retry_crashing (h_host_t *h, const char *a, const char *b, const char *c)
{
    char *out = NULL;
    int rc = h_cli (h, &out, "retry", a, b, c, NULL);
    if (rc != 0 && !(rc == 1 && out && strstr (out, "unavailable")))
        fail_msg ("retry %s: exit %d: %s", a, rc, out ? out : "");
    free (out);
}

/* The hits of aggregate id in fault-view, or -1 when it has none. */
static json_int_t
s_view_hits (h_host_t *h, const char *id)
{
    char body[200];
    int n = snprintf (body, sizeof body, "{\"op\":\"query\",\"projection\":\"fault-view\","
                      "\"key\":\"%s\"}", id);
    json_t *view = h_request (h->endpoint, body, (size_t) n, 2000);
    json_t *value = json_object_get (view, "value");
    json_int_t hits = json_is_object (value)
                      ? json_integer_value (json_object_get (value, "hits")) : -1;
    json_decref (view);
    return hits;
}

/* Stops the host and checks that its log holds no sanitizer report but
 * the null stores (SEGVs) the fault plugin makes on purpose (a build with
 * sanitizers reports them there; the harness does not look when faults
 * are expected). */
static void
s_stop_clean (h_host_t *h)
{
    assert_int_equal (h_stop (h, SIGTERM), 0);
    char *log = h_read_log (h);
    assert_non_null (log);
    const char *bad = strstr (log, "ERROR: LeakSanitizer");
    for (const char *at = log; !bad && (at = strstr (at, "ERROR: AddressSanitizer")); at++)
        if (strncmp (at, "ERROR: AddressSanitizer: SEGV", 29) != 0)
            bad = at;
    for (const char *at = log; !bad && (at = strstr (at, ": runtime error: ")); at++) {
        const char *line = at;
        while (line > log && line[-1] != '\n')
            line--;
        if (strncmp (line, "tests/plugins/fault.c:", 22) != 0)
            bad = line;
    }
    char found[2000];
    snprintf (found, sizeof found, "%s", bad ? bad : "");
    free (log);
    if (found[0])
        fail_msg ("a sanitizer report in the host's log:\n%s", found);
}

/* A projection that crashes on one event (a poison event) crashes its
 * process again at each restart, BCTX_POISON_LIMIT (3) times; then the
 * event is parked for it, and it goes on with the other events.  Stats
 * list the parked event: where it is, what it is, how many ends. */
static void
test_poison_event_is_parked (void **state)
{
    (void) state;
    h_host_t h;
    s_start_poison (&h, "projection");
    /* It stays armed: only parking ends the loop. */
    int acked;
    json_int_t fine = -1;
    for (long long end = h_now_us () + 30 * 1000000LL; fine < 1 && h_now_us () < end;
         usleep (100000)) {
        s_hit (&h, "fine", &acked);
        fine = s_view_hits (&h, "fine");
    }
    assert_true (fine >= 1);
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
    json_t *list = s_poison (&h, "projections", "fault-view", 1, 3);
    s_check_poison (list, 3);
    json_decref (list);
    assert_int_equal (s_view_hits (&h, "poison"), -1);
    char *log = h_read_log (&h);
    assert_non_null (strstr (log, "projection fault-view ended its process 3 times on fault's "
                                  "event at position 1: parked for it"));
    free (log);
    s_stop_clean (&h);
    assert_int_equal (h_cleanup (&h), 0);
}

/* `bctx retry PROJECTION CONTEXT POSITION` runs a projection's parked
 * poison event again.  While the plugin still crashes on it, the retry
 * ends the process once more: the end is counted on the event, which
 * stays parked, and accounts serves throughout.  Once the plugin is
 * fixed (disarmed), the retry applies the event to the read model now
 * and it leaves the parked list. */
static void
test_poison_event_retry_in_projection (void **state)
{
    (void) state;
    h_host_t h;
    s_start_poison (&h, "projection");
    json_t *list = s_poison (&h, "projections", "fault-view", 1, 3);
    s_check_poison (list, 3);
    json_decref (list);

    /* Names that are not a parked event, or not a position. */
    char *out = NULL;
    assert_int_equal (h_cli (&h, &out, "retry", "fault-view", "fault", "2", NULL), 1);
    assert_non_null (strstr (out, "bad_request"));
    free (out);
    out = NULL;
    assert_int_equal (h_cli (&h, &out, "retry", "fault-view", "fault", "one", NULL), 2);
    free (out);

    /* Still broken: one more end, still parked; accounts serves. */
    s_retry_crashing (&h, "fault-view", "fault", "1");
    s_accounts_serve (&h, "during");
    list = s_poison (&h, "projections", "fault-view", 1, 4);
    s_check_poison (list, 4);
    json_decref (list);
    json_t *p = s_process (&h);
    assert_int_equal (json_integer_value (json_object_get (p, "restarts")), 4);
    json_decref (p);
    s_accounts_serve (&h, "after");
    int acked = 0;
    for (long long end = h_now_us () + 20 * 1000000LL; !acked && h_now_us () < end;
         usleep (50000))
        s_hit (&h, "other", &acked);
    assert_true (acked);
    assert_int_equal (s_view_hits (&h, "poison"), -1);

    /* Fixed: the retry applies it, and it is no longer parked. */
    s_arm (&h, 0);
    out = NULL;
    assert_int_equal (h_cli (&h, &out, "retry", "fault-view", "fault", "1", NULL), 0);
    json_t *reply = h_json (out);
    assert_true (json_is_true (json_object_get (reply, "retrying")));
    assert_int_equal (json_integer_value (json_object_get (reply, "position")), 1);
    json_decref (reply);
    free (out);
    list = s_poison (&h, "projections", "fault-view", 0, 0);
    assert_non_null (list);
    assert_int_equal (json_array_size (list), 0);
    json_decref (list);
    assert_int_equal (s_view_hits (&h, "poison"), 1);
    p = s_process (&h);
    assert_int_equal (json_integer_value (json_object_get (p, "restarts")), 4);
    json_decref (p);
    /* Asked again, there is nothing left to retry. */
    out = NULL;
    assert_int_equal (h_cli (&h, &out, "retry", "fault-view", "fault", "1", NULL), 1);
    free (out);
    char *log = h_read_log (&h);
    assert_non_null (strstr (log, "projection fault-view ended its process again on fault's "
                                  "event at position 1 (4 times), retried: it stays parked"));
    assert_non_null (strstr (log, "fault's event at position 1 is no longer parked"));
    free (log);
    s_stop_clean (&h);
    assert_int_equal (h_cleanup (&h), 0);
}

/* A reactor's poison event is parked with its failed events and listed
 * in its stats; `bctx retry REACTOR` runs it again by the same path:
 * while it still crashes it is counted and stays parked, once fixed it
 * runs and is no longer parked. */
static void
test_poison_event_retry_in_reactor (void **state)
{
    (void) state;
    h_host_t h;
    s_start_poison (&h, "reactor");
    json_t *list = s_poison (&h, "reactors", "fault-reactor", 1, 3);
    s_check_poison (list, 3);
    json_decref (list);
    json_t *r = h_request (h.endpoint, "{\"op\":\"stats\"}", 14, 3000);
    json_t *fr = json_object_get (json_object_get (r, "reactors"), "fault-reactor");
    assert_int_equal (json_integer_value (json_object_get (fr, "parked")), 1);
    assert_string_equal (json_string_value (json_object_get (fr, "state")), "parked");
    json_decref (r);

    s_retry_crashing (&h, "fault-reactor", NULL, NULL);
    s_accounts_serve (&h, "during");
    list = s_poison (&h, "reactors", "fault-reactor", 1, 4);
    s_check_poison (list, 4);
    json_decref (list);

    s_arm (&h, 0);
    char *out = NULL;
    int rc = 1;
    /* Its process may still be starting: retried until it answers. */
    for (long long end = h_now_us () + 20 * 1000000LL; rc != 0 && h_now_us () < end;
         usleep (100000)) {
        free (out);
        out = NULL;
        rc = h_cli (&h, &out, "retry", "fault-reactor", NULL);
    }
    assert_int_equal (rc, 0);
    free (out);
    list = s_poison (&h, "reactors", "fault-reactor", 0, 0);
    assert_non_null (list);
    assert_int_equal (json_array_size (list), 0);
    json_decref (list);
    json_int_t parked = -1;
    for (long long end = h_now_us () + 20 * 1000000LL; parked != 0 && h_now_us () < end;
         usleep (100000)) {
        r = h_request (h.endpoint, "{\"op\":\"stats\"}", 14, 3000);
        fr = json_object_get (json_object_get (r, "reactors"), "fault-reactor");
        if (fr)
            parked = json_integer_value (json_object_get (fr, "parked"));
        json_decref (r);
    }
    assert_int_equal (parked, 0);
    s_accounts_serve (&h, "after");
    s_stop_clean (&h);
    assert_int_equal (h_cleanup (&h), 0);
}

/* On 4 lanes (contexts[].reactor_lanes), a reactor's poison event is
 * parked after three ends of its process, as on one thread, and it alone:
 * every other aggregate's events, sent while it crash-loops, are handled. */
static void
test_poison_event_on_lanes (void **state)
{
    (void) state;
    h_host_t h;
    s_start_poison_lanes (&h, "reactor", 4);
    char *log = h_wait_log (&h, "reactor fault-reactor: 4 lanes", 5000);
    assert_non_null (log);
    free (log);
    /* Hits of other aggregates, while it crash-loops: each resent until
     * taken (a restarting process answers unavailable). */
    for (int i = 0; i < 12; i++) {
        char id[32];
        snprintf (id, sizeof id, "fine-%d", i);
        int acked = 0;
        for (long long end = h_now_us () + 20 * 1000000LL; !acked && h_now_us () < end;
             usleep (50000))
            s_hit (&h, id, &acked);
        assert_true (acked);
    }
    json_t *list = s_poison (&h, "reactors", "fault-reactor", 1, 3);
    s_check_poison (list, 3);
    json_decref (list);
    /* Everything after it is handled, and only the poison event parked. */
    json_int_t lag = -1, parked = -1;
    for (long long end = h_now_us () + 20 * 1000000LL; (lag != 0 || parked != 1)
         && h_now_us () < end; usleep (100000)) {
        json_t *r = h_request (h.endpoint, "{\"op\":\"stats\"}", 14, 3000);
        json_t *fr = json_object_get (json_object_get (r, "reactors"), "fault-reactor");
        if (fr) {
            lag = json_integer_value (json_object_get (json_object_get (fr, "lag"), "fault"));
            parked = json_integer_value (json_object_get (fr, "parked"));
        }
        json_decref (r);
    }
    assert_int_equal (lag, 0);
    assert_int_equal (parked, 1);
    s_accounts_serve (&h, "lanes");
    s_stop_clean (&h);
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
    /* How it ended: signal 11, or exit 1 from AddressSanitizer's handler. */
    assert_non_null (strstr (out, "the new version's process"));
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

/* A reactor that waits for a peer that does not answer (nothing listens
 * on its port) still ends at SIGTERM at once: its wait and its back-off
 * read the stop.  (A regression: its own thread's waits once missed it,
 * and the process was killed at host.stop_timeout_ms.) */
static void
test_sigterm_with_a_reactor_waiting_on_a_peer (void **state)
{
    (void) state;
    h_host_t h;
    assert_int_equal (h_init (&h), 0);
    int port = 30000 + (int) (getpid () % 5000) * 2;
    snprintf (h.contexts, sizeof h.contexts,
              "[{\"name\": \"accounts\", \"peer\": \"a\"},"
              " {\"name\": \"transfers\", \"plugin\": \"%s\"}]",
              h_path ("plugins/transfers/transfers.so"));
    snprintf (h.top_extra, sizeof h.top_extra,
              "\"peers\": [{\"name\": \"a\", \"api\": \"tcp://127.0.0.1:%d\","
              " \"publish\": \"tcp://127.0.0.1:%d\"}]", port, port + 1);
    snprintf (h.host_extra, sizeof h.host_extra, "\"stop_timeout_ms\": 6000");
    assert_int_equal (h_start (&h), 0);
    json_t *r = h_send (h.endpoint, "transfers", "RequestTransfer", "t-wait",
                        json_pack ("{s:s, s:s, s:s, s:i}", "transfer", "t1", "from", "x",
                                   "to", "y", "amount", 5));
    assert_true (json_is_true (json_object_get (r, "ok")));
    json_decref (r);
    const char *state_now = NULL;
    json_t *st = NULL;
    for (long long end = h_now_us () + 20 * 1000000LL; h_now_us () < end; usleep (100000)) {
        json_decref (st);
        st = h_stats (&h);
        state_now = h_str (h_at (st, "reactors.transfer-process"), "state");
        if (state_now && strcmp (state_now, "waiting") == 0)
            break;
    }
    h_assert_str (state_now, "waiting");
    json_decref (st);
    long long t0 = h_now_us ();
    assert_int_equal (h_stop (&h, SIGTERM), 0);
    long long took_ms = (h_now_us () - t0) / 1000;
    if (took_ms > 3000)
        fail_msg ("SIGTERM took %lld ms", took_ms);
    char *log = h_read_log (&h);
    assert_null (strstr (log, "did not stop within"));
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
        cmocka_unit_test (test_poison_event_retry_in_projection),
        cmocka_unit_test (test_poison_event_retry_in_reactor),
        cmocka_unit_test (test_poison_event_on_lanes),
        cmocka_unit_test (test_sigterm_with_a_hung_decide),
        cmocka_unit_test (test_sigterm_with_a_reactor_waiting_on_a_peer),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
