/*
 * test_handover - the error paths of a reload's handover (host/reload.c)
 * that the other suites do not reach, each held at the step it tests by a
 * gate file rather than by timing:
 *   - the old process dies while the standby loads (its init waits on a
 *     gate): the reload answers unavailable, the context restarts with the
 *     old version and serves;
 *   - the standby dies while it loads: the reload answers unavailable, and
 *     the old process served throughout (every command ok, same pid);
 *   - a command in flight in the old process while the reload drains it:
 *     every command sent meanwhile is answered ok, and once only, with the
 *     old version's events before the new one's; past reload_timeout_ms the
 *     reload gives up instead and the old version serves every command;
 *   - SIGTERM to the host while the standby loads: the host exits 0 in
 *     time, the reload never says ok, no context process outlives it, and
 *     after a restart every acknowledged command is in the log once.
 *
 * The standby that is slow to load is tests/plugins/fault_v2.so with the
 * fault "gate" in init, armed by DIR/armed-v2: its init logs "fault 2.0.0:
 * in init, waiting for DIR/open" and waits for that file.  The old
 * version (fault.so, armed by DIR/armed, never here) starts at once.
 */
#include "harness.h"

#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#define WAIT_MS    20000       /* the longest any single wait of this file lasts */
#define SENDERS    4           /* client threads that send while a handover runs */
#define MAX_SENDS  2000        /* most commands one sender sends */
#define STOP_MS    3000        /* host.stop_timeout_ms of the SIGTERM case */

static h_host_t s_host;         /* the host of the test that runs */

/* --- helpers --------------------------------------------------------- */

/* DIR/name of the test's directory, into path. */
static void
s_file (char *path, size_t size, const char *name)
{
    snprintf (path, size, "%s/%s", s_host.dir, name);
}

/* Creates DIR/name (an arming file or a gate). */
static void
s_touch (const char *name)
{
    char path[400];
    s_file (path, sizeof path, name);
    assert_int_equal (h_touch (path), 0);
}

/* Sends command {id} of context with command id `id`, waiting up to
 * timeout_ms.  Return: the reply (new), or NULL after the timeout. */
static json_t *
s_command (const char *context, const char *command, const char *id, int timeout_ms)
{
    char body[400];
    int n = snprintf (body, sizeof body, "{\"op\":\"send\",\"context\":\"%s\",\"command\":"
                      "\"%s\",\"id\":\"%s\",\"data\":{\"id\":\"%s\"}}", context, command, id,
                      id);
    return h_request (s_host.endpoint, body, (size_t) n, timeout_ms);
}

/* Sends command {id} of context and fails unless it is acknowledged. */
static void
s_assert_acked (const char *context, const char *command, const char *id)
{
    json_t *r = s_command (context, command, id, WAIT_MS);
    if (!h_ok (r)) {
        char *text = r ? json_dumps (r, JSON_COMPACT) : NULL;
        fail_msg ("%s %s (id %s): %s", context, command, id, text ? text : "no reply");
    }
    json_decref (r);
}

/* The pid of context's serving process, from the host's stats, or 0. */
static long
s_pid (const char *context)
{
    json_t *s = h_stats (&s_host);
    char path[160];
    snprintf (path, sizeof path, "contexts.%s.process.pid", context);
    long pid = (long) h_int_at (s, path);
    json_decref (s);
    return pid;
}

/* The host's entry for context (new); fails when there is none. */
static json_t *
s_info (const char *context)
{
    json_t *c = h_context_info (&s_host, context);
    if (!c)
        fail_msg ("no entry for context %s in the host's contexts", context);
    return c;
}

/* Waits until the host's stats show at least n of the clients' commands
 * in flight (held or at a context process), at most WAIT_MS. */
static void
s_wait_in_flight (json_int_t n)
{
    json_int_t seen = -1;
    long long deadline = h_deadline (WAIT_MS / 1000);
    for (int i = 0; i < 2000 && h_now_us () < deadline; i++) {
        json_t *s = h_stats (&s_host);
        seen = h_int_at (s, "api.in_flight");
        json_decref (s);
        if (seen >= n)
            return;
        usleep (10000);
    }
    fail_msg ("%lld command(s) in flight, expected %lld", (long long) seen, (long long) n);
}

/* The host's log once it has needle (new); fails after WAIT_MS. */
static char *
s_wait_log (const char *needle)
{
    char *log = h_wait_log (&s_host, needle, WAIT_MS);
    if (!log) {
        char *all = h_read_log (&s_host);
        fail_msg ("the host's log has no \"%s\" after %d ms; it is:\n%s", needle, WAIT_MS,
                  all ? all : "(none)");
    }
    return log;
}

/* A reload run by the CLI in the background. */
typedef struct {
    pid_t pid;                    /* the CLI */
    int timeout_s;                /* its --timeout */
    char out[400];                /* where it prints */
} s_reload_t;

/* Starts `bctx reload context plugin` with a --timeout of timeout_s. */
static void
s_reload_begin (s_reload_t *r, const char *context, const char *plugin, int timeout_s)
{
    static char timeout[16];
    r->timeout_s = timeout_s;
    snprintf (timeout, sizeof timeout, "%d", timeout_s);
    s_file (r->out, sizeof r->out, "reload.out");
    char *argv[] = { "bctx", "-e", s_host.endpoint, "--timeout", timeout, "reload",
                     (char *) context, (char *) plugin, NULL };
    r->pid = h_spawn ("bctx", argv, r->out);
    assert_true (r->pid > 0);
}

/* Waits for the reload's CLI (its timeout and 10 s more at most; killed
 * after).  Return: what it printed, parsed (new), or NULL; its exit code
 * in *code. */
static json_t *
s_reload_end (s_reload_t *r, int *code)
{
    *code = h_wait (r->pid, (r->timeout_s + 10) * 1000);
    r->pid = 0;
    json_t *j = NULL;
    FILE *f = fopen (r->out, "r");
    if (f) {
        char line[4096];
        if (fgets (line, sizeof line, f))
            j = h_json (line);
        fclose (f);
    }
    return j;
}

/* The reload's answer is a refusal with code `want_code` whose message has
 * part; exit code 1. */
static void
s_assert_refused (const json_t *r, int code, const char *want_code, const char *part)
{
    if (code != 1 || !r) {
        char *text = r ? json_dumps (r, JSON_COMPACT) : NULL;
        fail_msg ("reload: exit %d (expected 1), %s", code, text ? text : "no output");
    }
    assert_false (h_ok (r));
    h_assert_str (h_error_code (r), want_code);
    h_assert_contains (h_error_message (r), part);
}

/* A client thread that sends command `command` of `context` with ids
 * PREFIX-0, PREFIX-1, ... one after the other until told to stop. */
typedef struct {
    const char *context;          /* where */
    const char *command;          /* what */
    char prefix[16];              /* its ids' start */
    int timeout_ms;               /* each command's longest wait */
    int stop_on_failure;          /* stops at the first command not acknowledged */
    atomic_int stop;              /* set: no new command */
    atomic_int acked;             /* how many were acknowledged */
    int sent;                     /* how many were sent */
    int failed;                   /* how many were not acknowledged */
    char first_failure[600];      /* the first of them and its reply */
    char ids[MAX_SENDS][32];      /* the acknowledged ids, in order */
    long long sent_at[MAX_SENDS]; /* h_now_us () when each acknowledged one was sent */
    pthread_t thread;             /* the thread */
    int running;                  /* started and not joined yet */
} s_sender_t;

/* A sender's thread. */
static void *
s_sender_run (void *arg)
{
    s_sender_t *s = arg;
    long long deadline = h_deadline (60);
    for (int i = 0; i < MAX_SENDS && !atomic_load (&s->stop) && h_now_us () < deadline; i++) {
        char id[32];
        snprintf (id, sizeof id, "%s-%d", s->prefix, i);
        long long at = h_now_us ();
        json_t *r = s_command (s->context, s->command, id, s->timeout_ms);
        s->sent++;
        if (h_ok (r)) {
            int k = atomic_load (&s->acked);
            snprintf (s->ids[k], sizeof s->ids[k], "%s", id);
            s->sent_at[k] = at;
            atomic_store (&s->acked, k + 1);
        } else {
            if (!s->failed++) {
                char *text = r ? json_dumps (r, JSON_COMPACT) : NULL;
                snprintf (s->first_failure, sizeof s->first_failure, "%s: %s", id,
                          text ? text : "no reply");
                free (text);
            }
            if (s->stop_on_failure) {
                json_decref (r);
                break;
            }
        }
        json_decref (r);
    }
    return NULL;
}

/* Starts sender s (zeroed by the caller, or static). */
static void
s_sender_start (s_sender_t *s, const char *context, const char *command, const char *prefix,
                int timeout_ms, int stop_on_failure)
{
    s->context = context;
    s->command = command;
    snprintf (s->prefix, sizeof s->prefix, "%s", prefix);
    s->timeout_ms = timeout_ms;
    s->stop_on_failure = stop_on_failure;
    atomic_store (&s->stop, 0);
    atomic_store (&s->acked, 0);
    s->sent = s->failed = 0;
    s->first_failure[0] = '\0';
    assert_int_equal (pthread_create (&s->thread, NULL, s_sender_run, s), 0);
    s->running = 1;
}

/* Stops sender s and waits for its thread. */
static void
s_sender_stop (s_sender_t *s)
{
    if (!s->running)
        return;
    atomic_store (&s->stop, 1);
    pthread_join (s->thread, NULL);
    s->running = 0;
}

/* Waits until sender s has at least n acknowledged, at most WAIT_MS. */
static void
s_sender_wait (s_sender_t *s, int n)
{
    long long deadline = h_deadline (WAIT_MS / 1000);
    for (int i = 0; i < 4000 && atomic_load (&s->acked) < n && h_now_us () < deadline; i++)
        usleep (5000);
    if (atomic_load (&s->acked) < n)
        fail_msg ("sender %s: %d acknowledged, expected %d at least (%d failed: %s)",
                  s->prefix, atomic_load (&s->acked), n, s->failed, s->first_failure);
}

/* Fails unless every command sender s sent was acknowledged. */
static void
s_sender_assert_all_acked (const s_sender_t *s)
{
    if (s->failed)
        fail_msg ("sender %s: %d of %d command(s) not acknowledged, the first %s", s->prefix,
                  s->failed, s->sent, s->first_failure);
}

/* The command id of event e (borrowed), or NULL. */
static const char *
s_command_id (const json_t *e)
{
    return json_string_value (json_object_get (json_object_get (e, "metadata"), "command_id"));
}

/* The version that decided event e (borrowed), or NULL. */
static const char *
s_version (const json_t *e)
{
    return json_string_value (json_object_get (json_object_get (e, "metadata"),
                                               "context_version"));
}

/* Every event of context (new), checked: at positions 1..n, no command id
 * twice. */
static json_t *
s_log (const char *context)
{
    json_t *all = h_events (&s_host, context);
    if (!all)
        fail_msg ("cannot read the events of context %s", context);
    json_t *seen = json_object ();
    size_t i;
    json_t *e;
    json_array_foreach (all, i, e) {
        assert_int_equal (h_int (e, "position"), (json_int_t) i + 1);
        const char *id = s_command_id (e);
        assert_non_null (id);
        if (json_object_get (seen, id))
            fail_msg ("%s: command id %s is in the log twice", context, id);
        json_object_set_new (seen, id, json_integer ((json_int_t) i));
    }
    json_decref (seen);
    return all;
}

/* The event of command id in all (borrowed); fails when there is none. */
static json_t *
s_event_of (const json_t *all, const char *id)
{
    size_t i;
    json_t *e;
    json_array_foreach ((json_t *) all, i, e) {
        const char *got = s_command_id (e);
        if (got && strcmp (got, id) == 0)
            return e;
    }
    fail_msg ("acknowledged command %s is not in the log", id);
    return NULL;
}

/* Fails unless each id sender s had acknowledged is in all, decided by
 * version (NULL: any). */
static void
s_assert_in_log (const json_t *all, const s_sender_t *s, const char *version)
{
    for (int k = 0; k < atomic_load (&s->acked); k++) {
        json_t *e = s_event_of (all, s->ids[k]);
        if (version)
            h_assert_str (s_version (e), version);
    }
}

/* Waits until context is served by a process other than `not_pid` that
 * is up, at most WAIT_MS.  Return its entry (new). */
static json_t *
s_wait_serving (const char *context, long not_pid)
{
    json_t *c = NULL;
    long long deadline = h_deadline (WAIT_MS / 1000);
    for (int i = 0; i < 2000 && h_now_us () < deadline; i++) {
        json_decref (c);
        c = h_context_info (&s_host, context);
        const char *state = json_string_value (h_at (c, "process.state"));
        long pid = (long) h_int_at (c, "process.pid");
        if (state && strcmp (state, "up") == 0 && pid > 0 && pid != not_pid)
            return c;
        usleep (10000);
    }
    char *text = c ? json_dumps (c, JSON_COMPACT) : NULL;
    fail_msg ("context %s is not served by a new process (its old one was %ld): %s", context,
              not_pid, text ? text : "no entry");
    return NULL;
}

/* Starts a host with the fault context whose version 2 waits in init for
 * DIR/open (armed: DIR/armed-v2).  host_extra: more "host" keys, or "". */
static int
s_start_gated (const char *host_extra)
{
    if (h_init (&s_host) < 0)
        return -1;
    snprintf (s_host.contexts, sizeof s_host.contexts,
              "[{\"name\": \"fault\", \"plugin\": \"%s\", \"settings\": {\"dir\": \"%s\", "
              "\"fault\": \"gate\", \"in\": \"init\"}}]", h_path ("tests/plugins/fault.so"),
              s_host.dir);
    /* A standby may start for as long as handler_timeout_ms + 2 s: more
     * than any test here keeps one waiting. */
    snprintf (s_host.host_extra, sizeof s_host.host_extra,
              "\"handler_timeout_ms\": 30000%s%s", host_extra[0] ? ", " : "", host_extra);
    return h_start (&s_host);
}

/* Starts the reload of fault to version 2 and waits until that version's
 * init waits at its gate.  Return the standby's pid (from the host's line
 * "reloading from ...: process N loads it"). */
static long
s_reload_to_gated (s_reload_t *r, int timeout_s)
{
    s_touch ("armed-v2");
    s_reload_begin (r, "fault", h_path ("tests/plugins/fault_v2.so"), timeout_s);
    char *log = s_wait_log ("fault 2.0.0: in init, waiting for");
    long standby = h_number_after (log, "reloading from", ": process ");
    free (log);
    assert_true (standby > 0);
    return standby;
}

/* --- 1. the old process dies while the standby loads ---------------- */

static void
test_the_old_process_dying_while_the_standby_loads_restarts_the_old_version (void **state)
{
    (void) state;
    s_assert_acked ("fault", "Hit", "before");
    long old = s_pid ("fault");
    assert_true (old > 0);
    s_reload_t r;
    long standby = s_reload_to_gated (&r, 30);
    assert_true (standby != old);

    /* The standby waits in its init (S_STARTING) for as long as the gate
     * stays shut: the old process's end is the only thing that happens. */
    assert_int_equal (kill ((pid_t) old, SIGKILL), 0);
    int code;
    json_t *reply = s_reload_end (&r, &code);
    s_assert_refused (reply, code, "unavailable", "the old version's process");
    h_assert_contains (h_error_message (reply), "during the reload");
    json_decref (reply);
    /* The reload gave up: its standby is ended, not left waiting. */
    assert_true (h_gone ((pid_t) standby, WAIT_MS));
    s_touch ("open");

    /* The context restarts, as after any crash, with the old version. */
    json_t *c = s_wait_serving ("fault", old);
    h_assert_str (h_str (c, "version"), "1.0.0");
    char *v1 = realpath (h_path ("tests/plugins/fault.so"), NULL);
    assert_non_null (v1);
    h_assert_str (h_str (c, "plugin"), v1);
    free (v1);
    assert_true (h_int_at (c, "process.restarts") >= 1);
    assert_int_equal (h_int (c, "reloads"), 0);
    h_assert_contains (h_str (c, "last_reload_error"), "the old version's process");
    json_decref (c);
    s_assert_acked ("fault", "Hit", "after");
    json_t *all = s_log ("fault");
    assert_int_equal (json_array_size (all), 2);
    h_assert_str (s_version (s_event_of (all, "before")), "1.0.0");
    h_assert_str (s_version (s_event_of (all, "after")), "1.0.0");
    json_decref (all);
    char *log = h_read_log (&s_host);
    h_assert_contains (log, "reload failed, the old version starts again: the old version's "
                       "process");
    free (log);
}

/* --- 2. the standby dies while it loads ------------------------------ */

static s_sender_t s_load;          /* the load on the old version */

static void
test_the_standby_dying_while_it_loads_leaves_the_old_version_serving (void **state)
{
    (void) state;
    s_assert_acked ("fault", "Hit", "before");
    long old = s_pid ("fault");
    assert_true (old > 0);
    json_t *c = s_info ("fault");
    json_int_t restarts = h_int_at (c, "process.restarts");
    json_decref (c);

    /* A load on the old version from before the reload to after its
     * answer: none of it may fail. */
    s_sender_start (&s_load, "fault", "Hit", "load", 10000, 0);
    s_sender_wait (&s_load, 5);
    s_reload_t r;
    long standby = s_reload_to_gated (&r, 30);
    assert_true (standby != old);
    int during = atomic_load (&s_load.acked);
    s_sender_wait (&s_load, during + 20);     /* served while the standby waits */
    assert_int_equal (kill ((pid_t) standby, SIGKILL), 0);
    int code;
    json_t *reply = s_reload_end (&r, &code);
    s_assert_refused (reply, code, "unavailable", "the new version's process");
    h_assert_contains (h_error_message (reply), "before it was ready");
    h_assert_contains (h_error_message (reply), "the old version keeps serving");
    json_decref (reply);
    int answered = atomic_load (&s_load.acked);
    s_sender_wait (&s_load, answered + 20);   /* and after the reload's answer */
    s_sender_stop (&s_load);
    s_sender_assert_all_acked (&s_load);

    /* The same process, the same version, and it says why. */
    assert_int_equal (s_pid ("fault"), old);
    c = s_info ("fault");
    h_assert_str (h_str (c, "version"), "1.0.0");
    assert_int_equal (h_int_at (c, "process.restarts"), restarts);
    assert_int_equal (h_int (c, "reloads"), 0);
    h_assert_contains (h_str (c, "last_reload_error"), "before it was ready");
    json_decref (c);
    json_t *all = s_log ("fault");
    assert_int_equal (json_array_size (all), (size_t) atomic_load (&s_load.acked) + 1);
    s_assert_in_log (all, &s_load, "1.0.0");
    json_decref (all);

    /* Nothing of the failed handover is left in the way: the same reload,
     * its gate open, succeeds. */
    s_touch ("open");
    s_reload_begin (&r, "fault", h_path ("tests/plugins/fault_v2.so"), 30);
    reply = s_reload_end (&r, &code);
    assert_int_equal (code, 0);
    h_assert_str (h_str (reply, "version"), "2.0.0");
    h_assert_str (h_str (reply, "previous"), "1.0.0");
    json_decref (reply);
    s_assert_acked ("fault", "Hit", "after");
    all = s_log ("fault");
    h_assert_str (s_version (s_event_of (all, "after")), "2.0.0");
    json_decref (all);
}

/* --- 3. commands held while the old process drains ------------------- */

static s_sender_t s_passes[SENDERS];  /* Passes sent while the handover runs */
static json_t *s_wait_reply;          /* the Wait's reply, or NULL */
static pthread_t s_wait_thread;       /* who sends the Wait */
static int s_wait_running;            /* it was started and not joined yet */

/* Sends the Wait (its decide blocks until DIR/gate exists). */
static void *
s_send_wait (void *arg)
{
    (void) arg;
    s_wait_reply = s_command ("slow", "Wait", "wait", 60000);
    return NULL;
}

/* Starts a host with the slow context, gate DIR/gate; host_extra: more
 * "host" keys. */
static int
s_start_slow (const char *host_extra)
{
    if (h_init (&s_host) < 0)
        return -1;
    snprintf (s_host.contexts, sizeof s_host.contexts,
              "[{\"name\": \"slow\", \"plugin\": \"%s\", \"settings\": {\"gate\": \"%s/gate\"}}]",
              h_path ("tests/plugins/slow.so"), s_host.dir);
    /* The Wait runs for as long as a test wants, past no watchdog. */
    snprintf (s_host.host_extra, sizeof s_host.host_extra,
              "\"handler_timeout_ms\": 30000, %s", host_extra);
    return h_start (&s_host);
}

/* Sends the Wait and waits until it is inside the old version's decide
 * (stats count it taken).  Return the old process's pid. */
static long
s_wait_in_decide (void)
{
    s_wait_reply = NULL;
    assert_int_equal (pthread_create (&s_wait_thread, NULL, s_send_wait, NULL), 0);
    s_wait_running = 1;
    json_int_t taken = 0;
    long long deadline = h_deadline (WAIT_MS / 1000);
    for (int i = 0; i < 2000 && taken < 1 && h_now_us () < deadline; i++) {
        json_t *s = h_stats (&s_host);
        taken = h_int_at (s, "contexts.slow.commands");
        json_decref (s);
        if (taken < 1)
            usleep (10000);
    }
    assert_int_equal (taken, 1);
    long old = s_pid ("slow");
    assert_true (old > 0);
    return old;
}

/* Starts the Pass senders, and waits until each has one on its way (held
 * at the host, or queued behind the Wait in the old process: either way
 * unanswered while the gate is shut). */
static void
s_passes_start (void)
{
    for (int k = 0; k < SENDERS; k++) {
        char prefix[16];
        snprintf (prefix, sizeof prefix, "pass%d", k);
        s_sender_start (&s_passes[k], "slow", "Pass", prefix, 60000, 0);
    }
    s_wait_in_flight (1 + SENDERS);
}

/* Stops the Pass senders; each must have had every command answered ok. */
static void
s_passes_stop (void)
{
    for (int k = 0; k < SENDERS; k++)
        s_sender_stop (&s_passes[k]);
    for (int k = 0; k < SENDERS; k++)
        s_sender_assert_all_acked (&s_passes[k]);
}

/* The Wait thread's end; its reply must be ok. */
static void
s_wait_joined (void)
{
    pthread_join (s_wait_thread, NULL);
    s_wait_running = 0;
    if (!h_ok (s_wait_reply)) {
        char *text = s_wait_reply ? json_dumps (s_wait_reply, JSON_COMPACT) : NULL;
        fail_msg ("the Wait: %s", text ? text : "no reply");
    }
    json_decref (s_wait_reply);
    s_wait_reply = NULL;
}

static void
test_commands_held_while_a_command_drains_are_all_answered_once (void **state)
{
    (void) state;
    long old = s_wait_in_decide ();
    s_reload_t r;
    s_reload_begin (&r, "slow", h_path ("tests/plugins/slow_v2.so"), 60);
    /* The Passes go a moment after the standby stands by, so that the
     * supervisor holds them while it drains the Wait (S_DRAINING).  Were
     * they sent before it saw the standby ready, they would queue behind
     * the Wait in the old process instead and be decided by the old
     * version: every assertion below holds either way (the count of held
     * Passes printed at the end shows which it was). */
    free (s_wait_log ("standing by for a handover"));
    usleep (300000);
    s_passes_start ();
    long long opened_at = h_now_us ();
    s_touch ("gate");
    int code;
    json_t *reply = s_reload_end (&r, &code);
    if (code != 0 || !h_ok (reply)) {
        char *text = reply ? json_dumps (reply, JSON_COMPACT) : NULL;
        fail_msg ("reload: exit %d, %s", code, text ? text : "no output");
    }
    h_assert_str (h_str (reply, "version"), "2.0.0");
    h_assert_str (h_str (reply, "previous"), "1.0.0");
    json_decref (reply);
    /* Answered ok: the new version serves the name from now on. */
    s_assert_acked ("slow", "Pass", "after");
    s_passes_stop ();
    s_wait_joined ();

    json_t *all = s_log ("slow");
    size_t acked = 2;
    for (int k = 0; k < SENDERS; k++) {
        s_assert_in_log (all, &s_passes[k], NULL);
        acked += (size_t) atomic_load (&s_passes[k].acked);
    }
    assert_int_equal (json_array_size (all), acked);
    h_assert_str (s_version (s_event_of (all, "wait")), "1.0.0");
    h_assert_str (s_version (s_event_of (all, "after")), "2.0.0");
    /* One switch: every event of the old version before every event of
     * the new one. */
    size_t i, held = 0;
    json_t *e;
    int new_seen = 0;
    json_array_foreach (all, i, e) {
        const char *v = s_version (e);
        assert_non_null (v);
        if (strcmp (v, "2.0.0") == 0)
            new_seen = 1;
        else if (new_seen)
            fail_msg ("event %zu (%s) of version %s comes after the new version's", i + 1,
                      s_command_id (e), v);
    }
    for (int k = 0; k < SENDERS; k++)
        for (int n = 0; n < atomic_load (&s_passes[k].acked); n++)
            held += s_passes[k].sent_at[n] < opened_at
                    && strcmp (s_version (s_event_of (all, s_passes[k].ids[n])), "2.0.0") == 0;
    json_decref (all);
    json_t *c = s_info ("slow");
    h_assert_str (h_str (c, "version"), "2.0.0");
    assert_int_equal (h_int (c, "reloads"), 1);
    assert_true (h_int_at (c, "process.pid") != old);
    assert_true (json_is_null (json_object_get (c, "last_reload_error")));
    json_decref (c);
    printf ("%zu command(s) acknowledged; %zu Pass(es) held while the Wait drained\n",
            acked, held);
}

static void
test_a_drain_past_reload_timeout_keeps_the_old_version_serving (void **state)
{
    (void) state;
    long old = s_wait_in_decide ();
    s_reload_t r;
    s_reload_begin (&r, "slow", h_path ("tests/plugins/slow_v2.so"), 60);
    /* As above: the Passes most likely held, else queued behind the Wait;
     * either way unanswered until the gate opens.  The gate stays shut
     * until the reload has answered: the Wait cannot end first, so the
     * reload can only give up. */
    free (s_wait_log ("standing by for a handover"));
    usleep (300000);
    s_passes_start ();
    int code;
    json_t *reply = s_reload_end (&r, &code);
    s_assert_refused (reply, code, "unavailable", "timed out");
    h_assert_contains (h_error_message (reply), "the old version keeps serving");
    /* "waiting for the old version to finish its commands in flight"; a
     * machine so slow that the standby's copy of the plugin outran the
     * 2 s says "while loading the plugin" instead, timed out all the same. */
    printf ("the reload: %s\n", h_error_message (reply));
    json_decref (reply);
    json_t *c = s_info ("slow");
    h_assert_str (h_str (c, "version"), "1.0.0");
    assert_int_equal (h_int_at (c, "process.pid"), old);
    assert_int_equal (h_int (c, "reloads"), 0);
    h_assert_contains (h_str (c, "last_reload_error"), "timed out");
    json_decref (c);

    /* The held commands went to the old process, behind the Wait. */
    s_touch ("gate");
    for (int k = 0; k < SENDERS; k++)
        s_sender_wait (&s_passes[k], 3);
    s_passes_stop ();
    s_wait_joined ();
    assert_int_equal (s_pid ("slow"), old);
    json_t *all = s_log ("slow");
    size_t acked = 1;
    for (int k = 0; k < SENDERS; k++) {
        s_assert_in_log (all, &s_passes[k], "1.0.0");
        acked += (size_t) atomic_load (&s_passes[k].acked);
    }
    assert_int_equal (json_array_size (all), acked);
    h_assert_str (s_version (s_event_of (all, "wait")), "1.0.0");
    json_decref (all);

    /* The gate open, the same reload succeeds. */
    s_reload_begin (&r, "slow", h_path ("tests/plugins/slow_v2.so"), 30);
    reply = s_reload_end (&r, &code);
    assert_int_equal (code, 0);
    h_assert_str (h_str (reply, "version"), "2.0.0");
    json_decref (reply);
}

/* --- 4. SIGTERM to the host in the middle of a handover ------------- */

static void
test_sigterm_during_a_handover_stops_the_host_cleanly (void **state)
{
    (void) state;
    long old = s_pid ("fault");
    assert_true (old > 0);
    s_sender_start (&s_load, "fault", "Hit", "hit", 3000, 1);
    s_sender_wait (&s_load, 5);
    s_reload_t r;
    long standby = s_reload_to_gated (&r, 10);
    int before = atomic_load (&s_load.acked);
    s_sender_wait (&s_load, before + 5);

    /* SIGTERM while the standby waits in its init and Hits are on their
     * way.  The host gives the reload up, ends the standby, drains the old
     * process: it exits 0, within host.stop_timeout_ms and a margin (a host
     * that does not is killed, and fails here). */
    long long t0 = h_now_us ();
    assert_int_equal (kill (s_host.pid, SIGTERM), 0);
    int status = h_wait (s_host.pid, STOP_MS + 10000);
    long long took_ms = (h_now_us () - t0) / 1000;
    s_host.pid = 0;
    assert_int_equal (status, 0);
    printf ("the host stopped in %lld ms\n", took_ms);
    s_sender_stop (&s_load);
    /* Its context processes do not outlive it. */
    assert_true (h_gone ((pid_t) standby, WAIT_MS));
    assert_true (h_gone ((pid_t) old, WAIT_MS));

    /* The reload's client: "unavailable" when the answer made it out
     * before the host closed its socket, else no answer (exit 3, the CLI's
     * timeout); never ok, since its new version never finished loading. */
    int code;
    json_t *reply = s_reload_end (&r, &code);
    if (reply) {
        assert_int_equal (code, 1);
        assert_false (h_ok (reply));
        h_assert_str (h_error_code (reply), "unavailable");
        h_assert_contains (h_error_message (reply), "the host is stopping");
    } else {
        assert_int_equal (code, 3);
    }
    printf ("the reload's client: exit %d, %s\n", code,
            reply ? h_error_message (reply) : "no answer");
    json_decref (reply);

    /* After a restart (version 1: armed-v2 arms only version 2), every
     * acknowledged Hit is in the log, once. */
    assert_int_equal (h_start (&s_host), 0);
    json_t *c = s_info ("fault");
    h_assert_str (h_str (c, "version"), "1.0.0");
    json_decref (c);
    json_t *all = s_log ("fault");
    s_assert_in_log (all, &s_load, "1.0.0");
    /* At most one Hit more: the one whose answer the stop cut off. */
    assert_true (json_array_size (all) >= (size_t) atomic_load (&s_load.acked));
    assert_true (json_array_size (all) <= (size_t) atomic_load (&s_load.acked) + 1);
    json_decref (all);
    s_assert_acked ("fault", "Hit", "after-restart");
}

/* --- setups ---------------------------------------------------------- */

static int
s_setup_gated (void **state)
{
    (void) state;
    return s_start_gated ("");
}

static int
s_setup_gated_stop (void **state)
{
    (void) state;
    char extra[64];
    snprintf (extra, sizeof extra, "\"stop_timeout_ms\": %d", STOP_MS);
    return s_start_gated (extra);
}

static int
s_setup_drain (void **state)
{
    (void) state;
    return s_start_slow ("\"reload_timeout_ms\": 30000");
}

static int
s_setup_drain_timeout (void **state)
{
    (void) state;
    return s_start_slow ("\"reload_timeout_ms\": 2000");
}

static int
s_teardown (void **state)
{
    (void) state;
    /* Opened, so that no decide or init of a failed test waits on. */
    if (s_host.dir[0]) {
        char path[400];
        s_file (path, sizeof path, "gate");
        (void) h_touch (path);
        s_file (path, sizeof path, "open");
        (void) h_touch (path);
    }
    /* The threads of a test that failed first, answered by now or soon
     * (every command they send has its timeout). */
    s_sender_stop (&s_load);
    for (int k = 0; k < SENDERS; k++)
        s_sender_stop (&s_passes[k]);
    if (s_wait_running) {
        pthread_join (s_wait_thread, NULL);
        s_wait_running = 0;
        json_decref (s_wait_reply);
        s_wait_reply = NULL;
    }
    return h_teardown (&s_host);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown (
            test_the_old_process_dying_while_the_standby_loads_restarts_the_old_version,
            s_setup_gated, s_teardown),
        cmocka_unit_test_setup_teardown (
            test_the_standby_dying_while_it_loads_leaves_the_old_version_serving,
            s_setup_gated, s_teardown),
        cmocka_unit_test_setup_teardown (
            test_commands_held_while_a_command_drains_are_all_answered_once,
            s_setup_drain, s_teardown),
        cmocka_unit_test_setup_teardown (
            test_a_drain_past_reload_timeout_keeps_the_old_version_serving,
            s_setup_drain_timeout, s_teardown),
        cmocka_unit_test_setup_teardown (
            test_sigterm_during_a_handover_stops_the_host_cleanly, s_setup_gated_stop,
            s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
