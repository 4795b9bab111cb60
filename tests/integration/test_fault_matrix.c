/*
 * test_fault_matrix - a context whose plugin code crashes, exits, hangs or leaks
 * costs that context a restart and nothing else (issue 9: each context in
 * its own process under a supervisor).
 *
 * The misbehaving context is tests/plugins/faulty.c: it fires its fault
 * (segv, abort, exit, hang or leak) in one place (decide, evolve, its
 * projection, its reactor or init) while the file <dir>/armed exists.  The
 * host runs it beside the bank's accounts context, with
 * host.handler_timeout_ms 1000 (and contexts[].max_rss_mb 64 for leak).
 *
 * For each fault and place: a few Hits go through disarmed; the fault is
 * armed and triggered while 200 Deposits go to accounts on another thread;
 * then it is checked that
 *   - a command whose decide or evolve faulted is answered "unavailable"
 *     (for a hang, within handler_timeout_ms plus a margin);
 *   - every Deposit was answered ok: the other context went on serving;
 *   - stats show contexts.fault.process restarted, with last_exit naming
 *     the cause;
 *   - disarmed, the fault context serves again;
 *   - nothing acknowledged was lost or doubled: the accounts log holds each
 *     acknowledged Deposit exactly once and their amounts exactly, and the
 *     fault context's log has gap-free positions with each acknowledged
 *     Hit exactly once.
 * A faulty init is loaded by `bctx reload` (same plugin, armed): the reload
 * fails or the process restarts, and disarmed the context serves again.
 * Last, SIGTERM with a hung decide in flight ends within
 * host.stop_timeout_ms plus a margin, with exit status 0.
 */
#include "harness.h"

#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#define TIMEOUT_MS   1000         /* host.handler_timeout_ms of the fault tests */
#define N_DEPOSITS   200          /* the load on accounts while fault is down */
#define N_BEFORE     3            /* Hits sent before arming */
#define POLL_US      (20 * 1000000LL) /* how long a poll for a state may take */

/* What one test holds. */
typedef struct {
    h_host_t h;                   /* the host */
    int hits;                     /* Hits sent so far (names the next one) */
    json_t *acked_hits;           /* Hit id -> true, for each Hit answered ok */
    pthread_t load;               /* the thread sending the Deposits */
    int load_running;             /* load is to be joined */
    atomic_int stop_load;         /* set to end the load early (teardown) */
    json_t *acked_deposits;       /* command id -> amount of each Deposit answered ok;
                                     only the load thread touches it while it runs */
    char load_error[256];         /* the first Deposit answer that was not ok */
    json_t *hung_reply;           /* the SIGTERM test's Hit in flight: its reply */
} s_t;

static int s_bad_exits;           /* hosts that did not exit 0 on SIGTERM */

/* --- helpers --------------------------------------------------------- */

static int
s_setup (void **state)
{
    s_t *t = calloc (1, sizeof *t);
    if (!t || h_init (&t->h) < 0)
        return -1;
    t->h.faults_expected = 1;     /* a sanitizer's report of the crash is expected */
    t->acked_hits = json_object ();
    t->acked_deposits = json_object ();
    *state = t;
    return 0;
}

/* Creates (on = 1) or removes (on = 0) <dir>/armed. */
static void
s_arm (const s_t *t, int on)
{
    char path[512];
    snprintf (path, sizeof path, "%s/armed", t->h.dir);
    if (on) {
        FILE *f = fopen (path, "w");
        assert_non_null (f);
        fclose (f);
    } else {
        unlink (path);
    }
}

/* Disarms first, so a host kept busy by a fault can stop; counts a host
 * that does not exit 0 on SIGTERM (or leaks under ASan): cmocka would not
 * count a failed teardown. */
static int
s_teardown (void **state)
{
    s_t *t = *state;
    s_arm (t, 0);
    atomic_store (&t->stop_load, 1);
    if (t->load_running)
        pthread_join (t->load, NULL);
    if (h_cleanup (&t->h) != 0)
        s_bad_exits++;
    json_decref (t->acked_hits);
    json_decref (t->acked_deposits);
    json_decref (t->hung_reply);
    free (t);
    return 0;
}

/* The error code of a reply: "ok" for an ok one, "no reply" for none (the
 * harness waits 10 s), "no code" for an error without one. */
static const char *
s_code (const json_t *reply)
{
    if (!reply)
        return "no reply";
    if (h_ok (reply))
        return "ok";
    const char *code = h_error_code (reply);
    return code ? code : "no code";
}

/* Starts the host with accounts and fault (settings fault, in; `entry`
 * added to fault's context entry; `host_extra` the host keys) and opens the
 * account "acc". */
static void
s_start (s_t *t, const char *fault, const char *in, const char *entry,
         const char *host_extra)
{
    snprintf (t->h.contexts, sizeof t->h.contexts,
              "[{\"name\": \"accounts\", \"plugin\": \"%s\"},"
              " {\"name\": \"fault\", \"plugin\": \"%s\", \"settings\": {\"dir\": \"%s\","
              " \"fault\": \"%s\", \"in\": \"%s\"}%s}]",
              h_path ("plugins/accounts/accounts.so"), h_path ("tests/plugins/faulty.so"),
              t->h.dir, fault, in, entry);
    snprintf (t->h.host_extra, sizeof t->h.host_extra, "%s", host_extra);
    assert_int_equal (h_start (&t->h), 0);
    json_t *r = h_send (t->h.endpoint, "accounts", "OpenAccount", "open-acc",
                        json_pack ("{s:s, s:s}", "account", "acc", "owner", "test"));
    assert_string_equal (s_code (r), "ok");
    json_decref (r);
}

/* Sends the next Hit (command id and aggregate id "hit-N") and notes it
 * when answered ok.  Return the reply (new, NULL after 10 s). */
static json_t *
s_hit (s_t *t)
{
    char id[32];
    snprintf (id, sizeof id, "hit-%d", ++t->hits);
    json_t *r = h_send (t->h.endpoint, "fault", "Hit", id, json_pack ("{s:s}", "id", id));
    if (json_is_true (json_object_get (r, "ok")))
        json_object_set_new (t->acked_hits, id, json_true ());
    return r;
}

/* Sends a Hit that must be answered ok. */
static void
s_hit_ok (s_t *t)
{
    json_t *r = s_hit (t);
    assert_string_equal (s_code (r), "ok");
    json_decref (r);
}

/* The load thread: N_DEPOSITS Deposits of 1, 2, 3, … to "acc", a few ms
 * apart so they span the fault and the restart.  It stops at the first
 * answer that is not ok (the test has failed then). */
static void *
s_load (void *arg)
{
    s_t *t = arg;
    for (int i = 1; i <= N_DEPOSITS && !atomic_load (&t->stop_load); i++) {
        char id[32];
        snprintf (id, sizeof id, "dep-%d", i);
        json_t *r = h_send (t->h.endpoint, "accounts", "Deposit", id,
                            json_pack ("{s:s, s:i}", "account", "acc", "amount", i));
        if (json_is_true (json_object_get (r, "ok"))) {
            json_object_set_new (t->acked_deposits, id, json_integer (i));
        } else {
            char *text = r ? json_dumps (r, JSON_COMPACT) : NULL;
            snprintf (t->load_error, sizeof t->load_error, "%s: %s", id,
                      text ? text : "no reply within 10 s");
            free (text);
            json_decref (r);
            break;
        }
        json_decref (r);
        usleep (5000);
    }
    return NULL;
}

static void
s_load_start (s_t *t)
{
    assert_int_equal (pthread_create (&t->load, NULL, s_load, t), 0);
    t->load_running = 1;
}

/* Waits for the load to end; every Deposit must have been answered ok. */
static void
s_load_join (s_t *t)
{
    pthread_join (t->load, NULL);
    t->load_running = 0;
    if (t->load_error[0])
        fail_msg ("accounts did not serve while fault was down: %s", t->load_error);
    assert_int_equal (json_object_size (t->acked_deposits), N_DEPOSITS);
}

/* stats.contexts.fault.process, straight from the API socket.  Return:
 * new, or NULL if the host did not answer or shows none. */
static json_t *
s_process (const s_t *t)
{
    static const char body[] = "{\"op\":\"stats\"}";
    json_t *all = h_request (t->h.endpoint, body, sizeof body - 1, 2000);
    json_t *p = json_object_get (json_object_get (json_object_get (all, "contexts"),
                                                  "fault"), "process");
    json_incref (p);
    json_decref (all);
    return p;
}

static json_int_t
s_restarts (const json_t *process)
{
    return json_integer_value (json_object_get (process, "restarts"));
}

/* Does last_exit name what `fault` does?  Under AddressSanitizer a segfault
 * is caught by ASan, which exits with status 1. */
static int
s_names_cause (const char *fault, const char *last_exit)
{
    if (!last_exit)
        return 0;
    if (strcmp (fault, "segv") == 0)
        return strstr (last_exit, "killed by signal 11") != NULL
               || strcmp (last_exit, "exited with status 1") == 0;
    if (strcmp (fault, "abort") == 0)
        return strstr (last_exit, "killed by signal 6") != NULL;
    if (strcmp (fault, "exit") == 0)
        return strcmp (last_exit, "exited with status 3") == 0;
    if (strcmp (fault, "hang") == 0)
        return strncmp (last_exit, "hung: ", 6) == 0;
    return strstr (last_exit, "max_rss_mb") != NULL;
}

/* Polls stats until the fault context has restarted at least once and its
 * last_exit names the cause. */
static void
s_wait_restarted (const s_t *t, const char *fault)
{
    char last[256] = "(no stats.contexts.fault.process)";
    long long deadline = h_now_us () + POLL_US;
    for (int i = 0; i < 400 && h_now_us () < deadline; i++) {
        json_t *p = s_process (t);
        const char *text = json_string_value (json_object_get (p, "last_exit"));
        int done = p && s_restarts (p) >= 1 && s_names_cause (fault, text);
        if (p) {
            char *dump = json_dumps (p, JSON_COMPACT);
            snprintf (last, sizeof last, "%s", dump ? dump : "?");
            free (dump);
        }
        json_decref (p);
        if (done)
            return;
        usleep (50000);
    }
    fail_msg ("the fault context did not restart after %s; its process stats: %s", fault,
              last);
}

/* Disarmed, polls with Hits until one is answered ok: the context is back. */
static void
s_wait_back (s_t *t)
{
    s_arm (t, 0);
    char last[64] = "none";
    long long deadline = h_now_us () + POLL_US;
    for (int i = 0; i < 200 && h_now_us () < deadline; i++) {
        json_t *r = s_hit (t);
        snprintf (last, sizeof last, "%s", s_code (r));
        json_decref (r);
        if (strcmp (last, "ok") == 0)
            return;
        usleep (100000);
    }
    fail_msg ("the fault context did not serve again once disarmed (last answer: %s)", last);
}

/* The logs hold what was acknowledged, exactly once: the accounts log each
 * acknowledged Deposit and the sum of their amounts, the fault log
 * gap-free positions and each acknowledged Hit (no Hit twice). */
static void
s_check_logs (const s_t *t)
{
    json_t *accounts = h_events (&t->h, "accounts");
    json_t *faults = h_events (&t->h, "fault");
    assert_non_null (accounts);
    assert_non_null (faults);
    json_t *seen = json_object ();
    json_int_t sum = 0, expected = 0;
    size_t i;
    const char *key;
    json_t *e, *v;
    json_array_foreach (accounts, i, e) {
        if (strcmp (json_string_value (json_object_get (e, "type")), "Deposited") != 0)
            continue;
        const char *id = json_string_value (json_object_get (json_object_get (e, "metadata"),
                                                             "command_id"));
        assert_non_null (id);
        if (json_object_get (seen, id))
            fail_msg ("Deposit %s acted twice", id);
        if (!json_object_get (t->acked_deposits, id))
            fail_msg ("Deposit %s is in the log but was never acknowledged", id);
        json_object_set_new (seen, id, json_true ());
        sum += json_integer_value (json_object_get (json_object_get (e, "data"), "amount"));
    }
    json_object_foreach (t->acked_deposits, key, v) {
        if (!json_object_get (seen, key))
            fail_msg ("acknowledged Deposit %s is not in the accounts log", key);
        expected += json_integer_value (v);
    }
    assert_int_equal (sum, expected);
    json_object_clear (seen);
    json_array_foreach (faults, i, e) {
        assert_int_equal (json_integer_value (json_object_get (e, "position")),
                          (json_int_t) i + 1);
        const char *id = json_string_value (json_object_get (json_object_get (e, "data"), "id"));
        assert_non_null (id);
        if (json_object_get (seen, id))
            fail_msg ("Hit %s is twice in the fault log", id);
        json_object_set_new (seen, id, json_true ());
    }
    json_object_foreach (t->acked_hits, key, v)
        if (!json_object_get (seen, key))
            fail_msg ("acknowledged Hit %s is not in the fault log", key);
    json_decref (seen);
    json_decref (accounts);
    json_decref (faults);
}

/* Triggers an armed fault other than leak with one Hit: a decide or
 * evolve that faults has its command answered "unavailable" (a hang
 * within the timeout plus a margin); a projection or reactor runs after
 * the commit, so its Hit may be answered either way. */
static void
s_trigger (s_t *t, const char *fault, const char *in)
{
    long long sent = h_now_us ();
    json_t *r = s_hit (t);
    long long took_ms = (h_now_us () - sent) / 1000;
    const char *code = s_code (r);
    if (strcmp (in, "decide") == 0 || strcmp (in, "evolve") == 0) {
        assert_string_equal (code, "unavailable");
        if (strcmp (fault, "hang") == 0 && took_ms > TIMEOUT_MS + 1500)
            fail_msg ("a hung %s was answered after %lld ms: over handler_timeout_ms "
                      "(%d ms) plus 1.5 s", in, took_ms, TIMEOUT_MS);
    } else if (strcmp (code, "ok") != 0 && strcmp (code, "unavailable") != 0) {
        fail_msg ("Hit with %s in %s: answered %s", fault, in, code);
    }
    json_decref (r);
}

/* Leaks 1 MiB per armed call: sends Hits until the context is restarted
 * for going over max_rss_mb (at most 2000 Hits and 60 s). */
static void
s_leak_until_restart (s_t *t)
{
    long long deadline = h_now_us () + 60 * 1000000LL;
    for (int i = 0; i < 2000 && h_now_us () < deadline; i++) {
        json_t *r = s_hit (t);
        const char *code = s_code (r);
        if (strcmp (code, "ok") != 0 && strcmp (code, "unavailable") != 0)
            fail_msg ("leaking Hit %d: answered %s", t->hits, code);
        json_decref (r);
        if (i % 8 == 7) {
            json_t *p = s_process (t);
            json_int_t restarts = s_restarts (p);
            json_decref (p);
            if (restarts >= 1)
                return;
        }
    }
    fail_msg ("the fault context leaking 1 MiB per call was not restarted by "
              "max_rss_mb 64 after %d Hits", t->hits);
}

/* One fault in one place, from start to the checks of the logs. */
static void
s_fault_case (void **state, const char *fault, const char *in)
{
    s_t *t = *state;
    char host_extra[64];
    snprintf (host_extra, sizeof host_extra, "\"handler_timeout_ms\": %d", TIMEOUT_MS);
    int leak = strcmp (fault, "leak") == 0;
    s_start (t, fault, in, leak ? ", \"max_rss_mb\": 64" : "", host_extra);
    for (int i = 0; i < N_BEFORE; i++)
        s_hit_ok (t);
    s_arm (t, 1);
    s_load_start (t);
    if (leak)
        s_leak_until_restart (t);
    else
        s_trigger (t, fault, in);
    s_load_join (t);
    s_wait_restarted (t, fault);
    s_wait_back (t);
    s_check_logs (t);
}

/* A faulty init, loaded by reloading the same plugin while armed, with the
 * Deposits going meanwhile: the reload fails or the process restarts, and
 * disarmed the context serves again. */
static void
s_init_case (void **state, const char *fault)
{
    s_t *t = *state;
    char host_extra[64];
    snprintf (host_extra, sizeof host_extra, "\"handler_timeout_ms\": %d", TIMEOUT_MS);
    s_start (t, fault, "init", "", host_extra);
    for (int i = 0; i < N_BEFORE; i++)
        s_hit_ok (t);
    s_arm (t, 1);
    s_load_start (t);
    char *out = NULL;
    /* -t: the CLI's reply timeout, in seconds. */
    int code = h_cli (&t->h, &out, "-t", "20", "reload", "fault",
                      h_path ("tests/plugins/faulty.so"), NULL);
    s_load_join (t);
    json_t *p = s_process (t);
    json_int_t restarts = s_restarts (p);
    json_decref (p);
    if (code == 0 && restarts < 1) {
        fprintf (stderr, "reload printed: %s\n", out ? out : "");
        free (out);
        fail_msg ("reload with %s in init succeeded and nothing restarted", fault);
    }
    free (out);
    s_wait_back (t);
    s_check_logs (t);
}

/* --- the tests ------------------------------------------------------- */

/* Each fault in each place: test_<fault>_in_<place>. */
#define S_FAULTS(X) \
    X (segv, decide) X (segv, evolve) X (segv, projection) X (segv, reactor) \
    X (abort, decide) X (abort, evolve) X (abort, projection) X (abort, reactor) \
    X (exit, decide) X (exit, evolve) X (exit, projection) X (exit, reactor) \
    X (hang, decide) X (hang, evolve) X (hang, projection) X (hang, reactor) \
    X (leak, decide) X (leak, evolve) X (leak, projection) X (leak, reactor)
#define S_INITS(X) X (segv) X (abort) X (exit) X (hang)

#define S_DEFINE_FAULT(fault, in) \
    static void test_##fault##_in_##in (void **state) { s_fault_case (state, #fault, #in); }
#define S_DEFINE_INIT(fault) \
    static void test_##fault##_in_init (void **state) { s_init_case (state, #fault); }
S_FAULTS (S_DEFINE_FAULT)
S_INITS (S_DEFINE_INIT)

/* The reply of the Hit left hung in decide by the SIGTERM test. */
static void *
s_hung_hit (void *arg)
{
    s_t *t = arg;
    t->hung_reply = s_hit (t);
    return NULL;
}

/* SIGTERM with a decide hung in flight: the host drains within
 * stop_timeout_ms (killing what did not stop) and exits 0.  The watchdog
 * is set far off so it does not end the hang first. */
static void
test_sigterm_with_hung_decide_exits_in_time (void **state)
{
    s_t *t = *state;
    s_start (t, "hang", "decide", "",
             "\"handler_timeout_ms\": 60000, \"stop_timeout_ms\": 2000");
    for (int i = 0; i < N_BEFORE; i++)
        s_hit_ok (t);
    s_arm (t, 1);
    pthread_t hitter;
    assert_int_equal (pthread_create (&hitter, NULL, s_hung_hit, t), 0);
    char fired[512];
    snprintf (fired, sizeof fired, "%s/fired", t->h.dir);
    long long deadline = h_now_us () + 10 * 1000000LL;
    for (int i = 0; i < 1000 && access (fired, F_OK) != 0 && h_now_us () < deadline; i++)
        usleep (10000);
    assert_int_equal (access (fired, F_OK), 0);
    long long start = h_now_us ();
    int rc = h_stop (&t->h, SIGTERM);
    long long took_ms = (h_now_us () - start) / 1000;
    pthread_join (hitter, NULL);
    /* Its decide never returned, so it cannot have been acknowledged. */
    assert_string_not_equal (s_code (t->hung_reply), "ok");
    if (took_ms > 2000 + 2000)
        fail_msg ("SIGTERM with a hung decide took %lld ms: over stop_timeout_ms (2000 ms) "
                  "plus 2 s", took_ms);
    assert_int_equal (rc, 0);
}

int
main (void)
{
#define S_ENTRY(fault, in) \
    cmocka_unit_test_setup_teardown (test_##fault##_in_##in, s_setup, s_teardown),
#define S_INIT_ENTRY(fault) S_ENTRY (fault, init)
    const struct CMUnitTest tests[] = {
        S_FAULTS (S_ENTRY)
        S_INITS (S_INIT_ENTRY)
        cmocka_unit_test_setup_teardown (test_sigterm_with_hung_decide_exits_in_time,
                                         s_setup, s_teardown),
    };
    int failed = cmocka_run_group_tests (tests, NULL, NULL);
    if (s_bad_exits)
        fprintf (stderr, "test_fault_matrix: %d host(s) did not exit 0 on SIGTERM\n", s_bad_exits);
    return failed + s_bad_exits;
}
