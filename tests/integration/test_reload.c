/*
 * test_reload - hot swap against the real binaries: twenty reloads under
 * continuous load lose and double nothing, and each command is decided by
 * the version that served while it was on its way; every way a new version
 * can be bad (missing, not ELF, cut short, wrong ABI, another context,
 * failing init) leaves the old one serving and says why; a decide that
 * never returns makes a reload time out instead of hanging; a watched
 * plugin file reloads itself when it is replaced (and survives being
 * overwritten with garbage); and a reload that changes a projection's
 * version rebuilds that projection and no other.
 *
 * Every host must exit 0 on SIGTERM afterwards: under AddressSanitizer that
 * is how a version leaked by a reload shows.
 */
#include "harness.h"

#include <elf.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#define WAIT_S       20         /* the longest any single wait in this file lasts */
#define ACCOUNTS     20         /* accounts the load test spreads deposits over */
#define CLIENTS      4          /* client threads of the load test */
#define RELOADS      20         /* reloads under load */
#define MAX_SENDS    50000      /* most commands one load client sends */

static h_host_t s_host;         /* the host of the test that runs */

/* Threads a test started, joined by the teardown if the test failed
 * before it could join them itself. */
static pthread_t s_threads[8];
static int s_n_threads;
static atomic_int s_stop;       /* tells load clients to stop */

/* --- helpers --------------------------------------------------------- */

static long long
s_deadline (int seconds)
{
    return h_now_us () + (long long) seconds * 1000000;
}

static json_int_t
s_int (const json_t *obj, const char *key)
{
    return json_integer_value (json_object_get (obj, key));
}

static const char *
s_str (const json_t *obj, const char *key)
{
    return json_string_value (json_object_get (obj, key));
}

static int
s_ok (const json_t *reply)
{
    return json_is_true (json_object_get (reply, "ok"));
}

static const char *
s_error_code (const json_t *reply)
{
    return s_str (json_object_get (reply, "error"), "code");
}

static const char *
s_error_message (const json_t *reply)
{
    return s_str (json_object_get (reply, "error"), "message");
}

/* Whether the host has ended (left unreaped, for s_assert_host_runs). */
static int
s_host_ended (void)
{
    siginfo_t info;
    memset (&info, 0, sizeof info);
    return !s_host.pid
           || (waitid (P_PID, (id_t) s_host.pid, &info, WEXITED | WNOHANG | WNOWAIT) == 0
               && info.si_pid == s_host.pid);
}

/* Fails the test if the host is no longer running, saying how it ended
 * and what the test was `doing`.  Return: nothing when it runs. */
static void
s_assert_host_runs (const char *doing)
{
    int status;
    if (!s_host.pid || waitpid (s_host.pid, &status, WNOHANG) != s_host.pid)
        return;
    s_host.pid = 0;
    char *log = h_read_log (&s_host);
    fprintf (stderr, "the host's log:\n%s\n", log ? log : "(none)");
    free (log);
    if (WIFSIGNALED (status))
        fail_msg ("the host died of signal %d (%s) %s", WTERMSIG (status),
                  strsignal (WTERMSIG (status)), doing);
    fail_msg ("the host exited %d %s (its log is above)", WEXITSTATUS (status), doing);
}

/* Runs `bctx -e ENDPOINT --timeout SECONDS ARGS...` (NULL-ended).  *code
 * gets the exit code.  Return: the parsed output (new), or NULL. */
static json_t *
s_cli (int timeout_s, int *code, ...)
{
    char timeout[16];
    snprintf (timeout, sizeof timeout, "%d", timeout_s);
    char *argv[32];
    int n = 0;
    argv[n++] = "bctx";
    argv[n++] = "-e";
    argv[n++] = s_host.endpoint;
    argv[n++] = "--timeout";
    argv[n++] = timeout;
    va_list ap;
    va_start (ap, code);
    char *a;
    while ((a = va_arg (ap, char *)) && n < 31)
        argv[n++] = a;
    va_end (ap);
    argv[n] = NULL;
    char *out = NULL;
    *code = h_cli_argv (&out, argv);
    json_t *j = h_json (out);
    free (out);
    return j;
}

/* `bctx reload CONTEXT [PLUGIN]`, waiting up to 30 s for the answer. */
static json_t *
s_reload (const char *context, const char *plugin, int *code)
{
    return plugin ? s_cli (30, code, "reload", context, plugin, NULL)
                  : s_cli (30, code, "reload", context, NULL);
}

/* One context's entry in the "contexts" reply.  Return: new, or NULL. */
static json_t *
s_context_info (const char *name)
{
    json_t *r = h_request (s_host.endpoint, "{\"op\":\"contexts\"}", 17, 5000);
    json_t *found = NULL;
    size_t i;
    json_t *c;
    json_array_foreach (json_object_get (r, "contexts"), i, c) {
        if (s_str (c, "name") && strcmp (s_str (c, "name"), name) == 0)
            found = json_incref (c);
    }
    json_decref (r);
    return found;
}

/* Waits until context `name` shows `version`, `reloads`, one version
 * loaded, and a last_reload_error that is set (error_set 1) or null (0).
 * Return its entry (new); fails the test after WAIT_S seconds. */
static json_t *
s_wait_context (const char *name, const char *version, json_int_t reloads, int error_set)
{
    long long deadline = s_deadline (WAIT_S);
    json_t *info = NULL;
    do {
        json_decref (info);
        info = s_context_info (name);
        const char *v = s_str (info, "version");
        json_t *err = json_object_get (info, "last_reload_error");
        if (v && strcmp (v, version) == 0 && s_int (info, "reloads") == reloads
            && s_int (info, "versions_loaded") == 1
            && (error_set ? json_is_string (err) : json_is_null (err)))
            return info;
        if (s_host_ended ()) {
            json_decref (info);
            s_assert_host_runs ("waiting for a reload");
        }
        usleep (20000);
    } while (h_now_us () < deadline);
    char *text = info ? json_dumps (info, JSON_COMPACT) : NULL;
    json_decref (info);
    fail_msg ("context %s did not reach version %s, %lld reloads, one version loaded, "
              "last_reload_error %s within %d s; last seen: %s", name, version,
              (long long) reloads, error_set ? "set" : "null", WAIT_S, text ? text : "nothing");
    free (text);
    return NULL;
}

static json_t *
s_stats (void)
{
    return h_request (s_host.endpoint, "{\"op\":\"stats\"}", 14, 5000);
}

static json_t *
s_query (const char *projection, const char *key)
{
    char body[256];
    int len = snprintf (body, sizeof body,
                        "{\"op\":\"query\",\"projection\":\"%s\",\"key\":\"%s\"}",
                        projection, key);
    return h_request (s_host.endpoint, body, (size_t) len, 5000);
}

static void
s_open (const char *account)
{
    json_t *r = h_send (s_host.endpoint, "accounts", "OpenAccount", NULL,
                        json_pack ("{s:s, s:s}", "account", account, "owner", "Ada"));
    if (!s_ok (r)) {
        char *text = r ? json_dumps (r, JSON_COMPACT) : NULL;
        fail_msg ("OpenAccount %s: %s", account, text ? text : "no reply");
    }
    json_decref (r);
}

/* The metadata.context_version of the event at `position` in a context's
 * log (new string; "" if there is none). */
static char *
s_decided_by (const char *context, json_int_t position)
{
    char body[160];
    int len = snprintf (body, sizeof body,
                        "{\"op\":\"events\",\"context\":\"%s\",\"from\":%lld,\"limit\":1}",
                        context, (long long) position);
    json_t *r = h_request (s_host.endpoint, body, (size_t) len, 5000);
    json_t *ev = json_array_get (json_object_get (r, "events"), 0);
    const char *v = s_int (ev, "position") == position
                    ? s_str (json_object_get (ev, "metadata"), "context_version") : NULL;
    char *copy = strdup (v ? v : "");
    json_decref (r);
    return copy;
}

/* A Deposit that must be accepted; checks the version that decided it.
 * version: NULL for any. */
static void
s_assert_deposit (const char *account, int amount, const char *version)
{
    json_t *r = h_send (s_host.endpoint, "accounts", "Deposit", NULL,
                        json_pack ("{s:s, s:i}", "account", account, "amount", amount));
    if (!s_ok (r)) {
        char *text = r ? json_dumps (r, JSON_COMPACT) : NULL;
        fail_msg ("Deposit to %s: %s", account, text ? text : "no reply");
    }
    json_t *ev = json_array_get (json_object_get (r, "events"), 0);
    h_assert_str (s_str (ev, "type"), "Deposited");
    if (version) {
        char *got = s_decided_by ("accounts", s_int (ev, "position"));
        h_assert_str (got, version);
        free (got);
    }
    json_decref (r);
}

/* Copies the first `bytes` bytes of `from` to `to` (all of it: -1),
 * writing in place (open with O_TRUNC). */
static void
s_copy (const char *from, const char *to, long bytes)
{
    int in = open (from, O_RDONLY);
    assert_true (in >= 0);
    int out = open (to, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true (out >= 0);
    char buf[65536];
    long left = bytes < 0 ? -1 : bytes;
    ssize_t n;
    while (left != 0 && (n = read (in, buf, left > 0 && left < (long) sizeof buf
                                              ? (size_t) left : sizeof buf)) > 0) {
        assert_int_equal (write (out, buf, (size_t) n), n);
        if (left > 0)
            left -= n;
    }
    close (in);
    assert_int_equal (close (out), 0);
}

/* Replaces `to` by a complete copy of `from` at once: written beside it,
 * then renamed over it. */
static void
s_replace (const char *from, const char *to)
{
    char tmp[600];
    snprintf (tmp, sizeof tmp, "%s.new", to);
    s_copy (from, tmp, -1);
    assert_int_equal (rename (tmp, to), 0);
}

/* Where the last loadable segment of a 64-bit ELF file ends: the bytes
 * the dynamic loader maps. */
static long
s_loadable_end (const char *path)
{
    int fd = open (path, O_RDONLY);
    assert_true (fd >= 0);
    Elf64_Ehdr eh;
    assert_int_equal (pread (fd, &eh, sizeof eh, 0), sizeof eh);
    assert_int_equal (memcmp (eh.e_ident, ELFMAG, SELFMAG), 0);
    assert_int_equal (eh.e_ident[EI_CLASS], ELFCLASS64);
    long end = 0;
    for (int i = 0; i < eh.e_phnum; i++) {
        Elf64_Phdr ph;
        assert_int_equal (pread (fd, &ph, sizeof ph, (off_t) (eh.e_phoff + (size_t) i * eh.e_phentsize)),
                          sizeof ph);
        if (ph.p_type == PT_LOAD && (long) (ph.p_offset + ph.p_filesz) > end)
            end = (long) (ph.p_offset + ph.p_filesz);
    }
    close (fd);
    assert_true (end > 0);
    return end;
}

/* A built file's path as the CLI sends it (absolute, symlinks resolved). */
static char *
s_real (const char *rel)
{
    char *p = realpath (h_path (rel), NULL);
    assert_non_null (p);
    return p;
}

static void
s_open_gate (void)
{
    char gate[400];
    snprintf (gate, sizeof gate, "%s/gate", s_host.dir);
    FILE *f = fopen (gate, "w");
    if (f)
        fclose (f);
}

/* --- fixtures -------------------------------------------------------- */

/* accounts, with plugin_dirs that also hold the bad versions the tests
 * try: the test plugins' folder and the test's own directory. */
static int
s_setup_accounts (void **state)
{
    (void) state;
    atomic_store (&s_stop, 0);
    s_n_threads = 0;
    if (h_init (&s_host) < 0)
        return -1;
    char *accounts = realpath (h_path ("plugins/accounts/accounts.so"), NULL);
    char *tests = realpath (h_path ("tests/plugins/wrong_abi.so"), NULL);
    if (!accounts || !tests) {
        free (accounts);
        free (tests);
        return -1;
    }
    *strrchr (accounts, '/') = '\0';
    *strrchr (tests, '/') = '\0';
    snprintf (s_host.host_extra, sizeof s_host.host_extra,
              "\"plugin_dirs\": [\"%s\", \"%s\", \"%s\"]", accounts, tests, s_host.dir);
    free (accounts);
    free (tests);
    return h_start (&s_host);
}

static int
s_setup_slow (void **state)
{
    (void) state;
    atomic_store (&s_stop, 0);
    s_n_threads = 0;
    if (h_init (&s_host) < 0)
        return -1;
    snprintf (s_host.contexts, sizeof s_host.contexts,
              "[{\"name\": \"accounts\", \"plugin\": \"%s\"},"
              " {\"name\": \"slow\", \"plugin\": \"%s\", \"settings\": {\"gate\": \"%s/gate\"}}]",
              h_path ("plugins/accounts/accounts.so"), h_path ("tests/plugins/slow.so"),
              s_host.dir);
    snprintf (s_host.host_extra, sizeof s_host.host_extra, "\"reload_timeout_ms\": 1000");
    return h_start (&s_host);
}

static int
s_setup_watch (void **state)
{
    (void) state;
    atomic_store (&s_stop, 0);
    s_n_threads = 0;
    if (h_init (&s_host) < 0)
        return -1;
    char copy[400];
    snprintf (copy, sizeof copy, "%s/accounts.so", s_host.dir);
    s_copy (h_path ("plugins/accounts/accounts.so"), copy, -1);
    snprintf (s_host.contexts, sizeof s_host.contexts,
              "[{\"name\": \"accounts\", \"plugin\": \"%s\", \"watch\": true}]", copy);
    return h_start (&s_host);
}

static int
s_setup_bank (void **state)
{
    (void) state;
    atomic_store (&s_stop, 0);
    s_n_threads = 0;
    if (h_init (&s_host) < 0)
        return -1;
    snprintf (s_host.contexts, sizeof s_host.contexts,
              "[{\"name\": \"accounts\", \"plugin\": \"%s\"},"
              " {\"name\": \"transfers\", \"plugin\": \"%s\"}]",
              h_path ("plugins/accounts/accounts.so"),
              h_path ("plugins/transfers/transfers.so"));
    return h_start (&s_host);
}

static int
s_teardown (void **state)
{
    (void) state;
    /* Whatever a failed test left blocked gets going again. */
    atomic_store (&s_stop, 1);
    s_open_gate ();
    for (int i = 0; i < s_n_threads; i++)
        pthread_join (s_threads[i], NULL);
    s_n_threads = 0;
    /* A host that does not exit 0 on SIGTERM (or leaks under ASan) fails
     * the run: cmocka does not count a failed teardown. */
    if (h_cleanup (&s_host) != 0)
        exit (1);
    return 0;
}

static void
s_thread (void *(*fn) (void *), void *arg)
{
    assert_true (s_n_threads < (int) (sizeof s_threads / sizeof s_threads[0]));
    assert_int_equal (pthread_create (&s_threads[s_n_threads], NULL, fn, arg), 0);
    s_n_threads++;
}

static void
s_join_threads (void)
{
    for (int i = 0; i < s_n_threads; i++)
        pthread_join (s_threads[i], NULL);
    s_n_threads = 0;
}

/* --- 1. reloads under load ------------------------------------------- */

typedef struct {
    char id[32];              /* command id */
    char account[16];         /* where it deposited */
    long long sent_us;        /* monotonic time just before it was sent */
    long long acked_us;       /* and just after its reply came back */
} s_ack_t;

typedef struct {
    int index;                /* client number */
    s_ack_t *acks;            /* acknowledged commands (new) */
    size_t n_acks;            /* how many */
    int errors;               /* replies that were not ok */
    int lost;                 /* requests with no reply at all */
    char first_error[512];    /* the first bad reply, for the failure message */
    _Atomic long long last_acked_sent; /* sent_us of the latest acknowledged one */
} s_client_t;

static s_client_t s_clients[CLIENTS];

static void *
s_load (void *arg)
{
    s_client_t *c = arg;
    for (int n = 0; n < MAX_SENDS && !atomic_load (&s_stop); n++) {
        s_ack_t a;
        snprintf (a.id, sizeof a.id, "c%d-%d", c->index, n);
        snprintf (a.account, sizeof a.account, "acc-%d", (c->index * 7 + n) % ACCOUNTS);
        a.sent_us = h_now_us ();
        json_t *r = h_send (s_host.endpoint, "accounts", "Deposit", a.id,
                            json_pack ("{s:s, s:i}", "account", a.account, "amount", 1));
        if (!r) {
            c->lost++;
        } else if (!s_ok (r)) {
            if (!c->errors++) {
                char *text = json_dumps (r, JSON_COMPACT);
                snprintf (c->first_error, sizeof c->first_error, "%s: %s", a.id, text);
                free (text);
            }
        } else {
            a.acked_us = h_now_us ();
            c->acks[c->n_acks++] = a;
            atomic_store (&c->last_acked_sent, a.sent_us);
        }
        json_decref (r);
    }
    return NULL;
}

/* Waits until some client has an acknowledged command sent after t_us. */
static void
s_wait_acked_after (long long t_us)
{
    long long deadline = s_deadline (WAIT_S);
    while (h_now_us () < deadline) {
        for (int i = 0; i < CLIENTS; i++)
            if (atomic_load (&s_clients[i].last_acked_sent) > t_us)
                return;
        usleep (2000);
    }
    fail_msg ("no command sent after a reload was acknowledged within %d s", WAIT_S);
}

static void
test_twenty_reloads_under_load (void **state)
{
    (void) state;
    for (int i = 0; i < ACCOUNTS; i++) {
        char account[16];
        snprintf (account, sizeof account, "acc-%d", i);
        s_open (account);
    }
    char *v1 = s_real ("plugins/accounts/accounts.so");
    char *v2 = s_real ("plugins/accounts/accounts_v2.so");
    for (int i = 0; i < CLIENTS; i++) {
        free (s_clients[i].acks);
        memset (&s_clients[i], 0, sizeof s_clients[i]);
        s_clients[i].index = i;
        s_clients[i].acks = calloc (MAX_SENDS, sizeof *s_clients[i].acks);
        s_thread (s_load, &s_clients[i]);
    }
    /* Load first, then reload k: to 2.0.0 when k is even, back to 1.0.0
     * when odd.  sent[k] is taken before the CLI starts and replied[k] after
     * it exits, so the windows below are, if anything, too narrow. */
    s_wait_acked_after (0);
    long long sent[RELOADS], replied[RELOADS];
    const char *version[RELOADS];
    for (int k = 0; k < RELOADS; k++) {
        const char *plugin = k % 2 == 0 ? v2 : v1;
        version[k] = k % 2 == 0 ? "2.0.0" : "1.0.0";
        int code;
        sent[k] = h_now_us ();
        json_t *r = s_reload ("accounts", plugin, &code);
        replied[k] = h_now_us ();
        if (code != 0 || !s_ok (r)) {
            char *text = r ? json_dumps (r, JSON_COMPACT) : NULL;
            fail_msg ("reload %d to %s: exit %d, %s", k, plugin, code, text ? text : "no output");
        }
        h_assert_str (s_str (r, "context"), "accounts");
        h_assert_str (s_str (r, "version"), version[k]);
        h_assert_str (s_str (r, "previous"), k % 2 == 0 ? "1.0.0" : "2.0.0");
        h_assert_str (s_str (r, "plugin"), plugin);
        assert_true (json_is_integer (json_object_get (r, "pause_us")));
        assert_true (s_int (r, "pause_us") >= 0);
        json_decref (r);
        /* Something was sent, and acknowledged, in this version's window. */
        s_wait_acked_after (replied[k]);
        usleep (50000);
    }
    atomic_store (&s_stop, 1);
    s_join_threads ();

    size_t acked = 0;
    for (int i = 0; i < CLIENTS; i++) {
        if (s_clients[i].errors || s_clients[i].lost)
            fail_msg ("client %d: %d replies not ok, %d lost; first: %s", i,
                      s_clients[i].errors, s_clients[i].lost, s_clients[i].first_error);
        acked += s_clients[i].n_acks;
    }

    /* Every acknowledged command is in the log exactly once. */
    json_t *events = h_events (&s_host, "accounts");
    assert_non_null (events);
    json_t *by_id = json_object ();
    size_t i;
    json_t *e;
    json_array_foreach (events, i, e) {
        assert_int_equal (s_int (e, "position"), (json_int_t) i + 1);
        const char *id = s_str (json_object_get (e, "metadata"), "command_id");
        assert_non_null (id);
        if (json_object_get (by_id, id))
            fail_msg ("command %s is in the log twice", id);
        json_object_set (by_id, id, e);
    }
    assert_int_equal (json_array_size (events), ACCOUNTS + acked);

    /* The version that decided each command: for one sent after reload k
     * answered and answered itself before reload k+1 was sent, reload k's.
     * (Sent before reload k+1 is not enough: requests on two connections
     * may reach the host in either order.)  The others were on their way
     * while a reload was, and either version may have decided them. */
    int in_window[RELOADS + 1] = { 0 };
    size_t ambiguous = 0;
    for (int c = 0; c < CLIENTS; c++) {
        for (size_t n = 0; n < s_clients[c].n_acks; n++) {
            const s_ack_t *a = &s_clients[c].acks[n];
            e = json_object_get (by_id, a->id);
            if (!e)
                fail_msg ("acknowledged command %s is not in the log", a->id);
            h_assert_str (s_str (e, "type"), "Deposited");
            h_assert_str (s_str (e, "aggregate"), a->account);
            const char *got = s_str (json_object_get (e, "metadata"), "context_version");
            assert_non_null (got);
            int k = -1;               /* the last reload answered before it was sent */
            while (k + 1 < RELOADS && replied[k + 1] < a->sent_us)
                k++;
            const char *want = NULL;
            if (k == -1 && a->acked_us < sent[0])
                want = "1.0.0";
            else if (k >= 0 && (k == RELOADS - 1 || a->acked_us < sent[k + 1]))
                want = version[k];
            if (want) {
                in_window[k + 1]++;
                if (strcmp (got, want) != 0)
                    fail_msg ("command %s, sent and answered %s reload %d, was decided "
                              "by version %s, not %s", a->id,
                              k < 0 ? "before" : "between", k < 0 ? 0 : k, got, want);
            } else {
                ambiguous++;
                if (strcmp (got, "1.0.0") != 0 && strcmp (got, "2.0.0") != 0)
                    fail_msg ("command %s: context_version \"%s\"", a->id, got);
            }
        }
    }
    for (int k = 0; k <= RELOADS; k++)
        if (in_window[k] == 0)
            fail_msg ("no acknowledged command in the window after reload %d", k - 1);
    printf ("%zu deposits acknowledged during %d reloads; %zu on their way while a "
            "reload was\n", acked, RELOADS, ambiguous);
    json_decref (by_id);
    json_decref (events);

    /* The old version is released a moment after the last switch. */
    json_t *info = s_wait_context ("accounts", "1.0.0", RELOADS, 0);
    h_assert_str (s_str (info, "plugin"), v1);
    json_decref (info);
    for (int c = 0; c < CLIENTS; c++) {
        free (s_clients[c].acks);
        s_clients[c].acks = NULL;
    }
    free (v1);
    free (v2);
}

/* --- 2. a bad new version leaves the old one serving ----------------- */

/* Reloads accounts from `plugin` and expects the refusal: exit 1,
 * bad_request, a message with each of `parts` (NULL-ended), and the old
 * version still serving and saying why in last_reload_error. */
static void
s_assert_refused (const char *plugin, ...)
{
    /* The CLI in the background, so that a host that dies loading the
     * plugin fails the test at once rather than after the CLI's timeout. */
    char out[400], doing[700];
    snprintf (out, sizeof out, "%s/reload.out", s_host.dir);
    snprintf (doing, sizeof doing, "while reloading accounts from %s", plugin);
    char *argv[] = { "bctx", "-e", s_host.endpoint, "--timeout", "10", "reload", "accounts",
                     (char *) plugin, NULL };
    pid_t cli = h_spawn ("bctx", argv, out);
    long long deadline = s_deadline (WAIT_S);
    int status, code = -1;
    while (h_now_us () < deadline) {
        if (waitpid (cli, &status, WNOHANG) == cli) {
            code = WIFEXITED (status) ? WEXITSTATUS (status) : 128 + WTERMSIG (status);
            break;
        }
        if (s_host_ended ()) {
            kill (cli, SIGKILL);
            waitpid (cli, NULL, 0);
            break;
        }
        usleep (5000);
    }
    s_assert_host_runs (doing);
    if (code < 0) {
        kill (cli, SIGKILL);
        waitpid (cli, NULL, 0);
        fail_msg ("the CLI did not exit within %d s %s", WAIT_S, doing);
    }
    json_t *r = NULL;
    FILE *f = fopen (out, "r");
    if (f) {
        char line[4096];
        if (fgets (line, sizeof line, f))
            r = h_json (line);
        fclose (f);
    }
    if (code != 1 || !r) {
        char *text = r ? json_dumps (r, JSON_COMPACT) : NULL;
        fail_msg ("reload from %s: exit %d (expected 1), %s", plugin, code,
                  text ? text : "no output");
    }
    assert_false (s_ok (r));
    h_assert_str (s_error_code (r), "bad_request");
    const char *message = s_error_message (r);
    h_assert_contains (message, "reload failed, the old version keeps serving: ");
    json_t *info = s_wait_context ("accounts", "1.0.0", 0, 1);
    const char *why = s_str (info, "last_reload_error");
    va_list ap;
    va_start (ap, plugin);
    const char *part;
    while ((part = va_arg (ap, const char *))) {
        h_assert_contains (message, part);
        h_assert_contains (why, part);
    }
    va_end (ap);
    h_assert_str (s_str (info, "plugin"), h_path ("plugins/accounts/accounts.so"));
    json_decref (info);
    json_decref (r);
    s_assert_deposit ("a1", 5, "1.0.0");
}

static void
test_bad_versions_are_refused (void **state)
{
    (void) state;
    s_open ("a1");
    s_assert_deposit ("a1", 5, "1.0.0");
    char path[600];

    snprintf (path, sizeof path, "%s/missing.so", s_host.dir);
    s_assert_refused (path, path, "No such file or directory", NULL);

    char *p = s_real ("tests/plugins/not_a_plugin.so");
    s_assert_refused (p, p, "not a loadable shared object", NULL);
    free (p);

    p = s_real ("tests/plugins/wrong_abi.so");
    s_assert_refused (p, p, "abi_version", NULL);
    free (p);

    p = s_real ("tests/plugins/reject_all.so");
    s_assert_refused (p, p, "\"reject_all\"", "\"accounts\"", NULL);
    free (p);

    p = s_real ("tests/plugins/accounts_init_fails.so");
    s_assert_refused (p, p, "init", "failed", NULL);
    free (p);
    /* The plugin's own reason reached the log. */
    char *log = h_read_log (&s_host);
    h_assert_contains (log, "accounts_init_fails: refusing to start");
    free (log);

    /* After all that, a good version still goes in, and clears the error. */
    int code;
    json_t *r = s_reload ("accounts", h_path ("plugins/accounts/accounts_v2.so"), &code);
    assert_int_equal (code, 0);
    h_assert_str (s_str (r, "version"), "2.0.0");
    json_decref (r);
    json_decref (s_wait_context ("accounts", "2.0.0", 1, 0));
    s_assert_deposit ("a1", 5, "2.0.0");
    /* The new version folded the log: 7 deposits of 5. */
    json_t *events = h_events (&s_host, "accounts");
    assert_non_null (events);
    json_t *last = json_array_get (events, json_array_size (events) - 1);
    assert_int_equal (s_int (json_object_get (last, "data"), "balance"), 7 * 5);
    json_decref (events);
}

/* A file cut inside what the dynamic loader maps: its ELF and program
 * headers are whole, its code is not, as after an interrupted copy or a
 * full disk.  (Half of the whole file would not do: the debug sections at
 * its end are never mapped, so losing them harms nothing.) */
static void
test_a_truncated_plugin_is_refused (void **state)
{
    (void) state;
    s_open ("a1");
    s_assert_deposit ("a1", 5, "1.0.0");
    const char *good = h_path ("plugins/accounts/accounts.so");
    long end = s_loadable_end (good);
    char path[600];
    snprintf (path, sizeof path, "%s/truncated.so", s_host.dir);
    s_copy (good, path, end / 2);
    s_assert_refused (path, path, NULL);
    json_t *r = h_request (s_host.endpoint, "{\"op\":\"contexts\"}", 17, 5000);
    assert_true (s_ok (r));
    json_decref (r);
}

/* --- 3. a decide that does not return -------------------------------- */

static atomic_int s_wait_done;  /* 0 running, 1 ok, -1 failed */
static atomic_int s_pass_done;  /* likewise */
static char s_pass_version[32]; /* context_version of the Pass event */

static void *
s_send_wait (void *arg)
{
    (void) arg;
    json_t *r = h_send (s_host.endpoint, "slow", "Wait", "wait-1",
                        json_pack ("{s:s}", "id", "w1"));
    atomic_store (&s_wait_done, s_ok (r) ? 1 : -1);
    json_decref (r);
    return NULL;
}

static void *
s_send_pass (void *arg)
{
    (void) arg;
    json_t *r = h_send (s_host.endpoint, "slow", "Pass", "pass-1",
                        json_pack ("{s:s}", "id", "p1"));
    json_t *ev = json_array_get (json_object_get (r, "events"), 0);
    char *v = s_decided_by ("slow", s_int (ev, "position"));
    snprintf (s_pass_version, sizeof s_pass_version, "%s", v);
    free (v);
    atomic_store (&s_pass_done, s_ok (r) ? 1 : -1);
    json_decref (r);
    return NULL;
}

static void
test_a_hung_decide_times_the_reload_out (void **state)
{
    (void) state;
    atomic_store (&s_wait_done, 0);
    atomic_store (&s_pass_done, 0);
    s_open ("a1");
    s_thread (s_send_wait, NULL);
    /* Until the Wait is inside decide, stats shows it taken. */
    long long deadline = s_deadline (WAIT_S);
    json_int_t taken = 0;
    while (taken < 1 && h_now_us () < deadline) {
        json_t *s = s_stats ();
        taken = s_int (json_object_get (json_object_get (s, "contexts"), "slow"), "commands");
        json_decref (s);
        if (taken < 1)
            usleep (10000);
    }
    assert_int_equal (taken, 1);

    /* The reload cannot reach a switch point; it gives up after 1 s while
     * accounts goes on serving. */
    char out[400], timeout[] = "30";
    snprintf (out, sizeof out, "%s/reload.out", s_host.dir);
    char *argv[] = { "bctx", "-e", s_host.endpoint, "--timeout", timeout, "reload", "slow",
                     NULL };
    long long t0 = h_now_us ();
    pid_t cli = h_spawn ("bctx", argv, out);
    for (int i = 0; i < 5; i++)
        s_assert_deposit ("a1", 1, "1.0.0");
    int code = h_wait (cli, 30000);
    long long took_ms = (h_now_us () - t0) / 1000;
    assert_int_equal (code, 1);
    if (took_ms >= 5000)
        fail_msg ("the reload answered after %lld ms; reload_timeout_ms is 1000", took_ms);
    FILE *f = fopen (out, "r");
    assert_non_null (f);
    char line[2048] = "";
    assert_non_null (fgets (line, sizeof line, f));
    fclose (f);
    json_t *r = h_json (line);
    assert_non_null (r);
    assert_false (s_ok (r));
    h_assert_str (s_error_code (r), "unavailable");
    h_assert_contains (s_error_message (r), "timed out");
    h_assert_contains (s_error_message (r), "the old version keeps serving");
    json_decref (r);

    /* Another context reloads meanwhile: only slow is stuck. */
    r = s_reload ("accounts", h_path ("plugins/accounts/accounts_v2.so"), &code);
    assert_int_equal (code, 0);
    h_assert_str (s_str (r, "version"), "2.0.0");
    json_decref (r);
    s_assert_deposit ("a1", 1, "2.0.0");

    /* A command queued behind the abandoned reload. */
    s_thread (s_send_pass, NULL);
    deadline = s_deadline (WAIT_S);
    json_int_t in_flight = 0;
    while (in_flight < 2 && h_now_us () < deadline) {
        json_t *s = s_stats ();
        in_flight = s_int (json_object_get (s, "api"), "in_flight");
        json_decref (s);
        if (in_flight < 2)
            usleep (10000);
    }
    assert_int_equal (in_flight, 2);      /* Wait and Pass, at the worker */
    assert_int_equal (atomic_load (&s_wait_done), 0);
    assert_int_equal (atomic_load (&s_pass_done), 0);

    s_open_gate ();
    s_join_threads ();
    assert_int_equal (atomic_load (&s_wait_done), 1);
    assert_int_equal (atomic_load (&s_pass_done), 1);
    h_assert_str (s_pass_version, "1.0.0");
    json_t *info = s_wait_context ("slow", "1.0.0", 0, 1);
    h_assert_contains (s_str (info, "last_reload_error"), "timed out");
    json_decref (info);

    /* Nothing holds the context now: the same reload goes through. */
    r = s_reload ("slow", NULL, &code);
    assert_int_equal (code, 0);
    assert_true (s_ok (r));
    h_assert_str (s_str (r, "version"), "1.0.0");
    json_decref (r);
    json_decref (s_wait_context ("slow", "1.0.0", 1, 0));
    r = h_send (s_host.endpoint, "slow", "Wait", "wait-2", json_pack ("{s:s}", "id", "w2"));
    assert_true (s_ok (r));
    json_decref (r);
}

/* --- 4. the file watch ----------------------------------------------- */

static void
test_a_watched_plugin_reloads_itself (void **state)
{
    (void) state;
    char plugin[400];
    snprintf (plugin, sizeof plugin, "%s/accounts.so", s_host.dir);
    json_t *info = s_context_info ("accounts");
    assert_true (json_is_true (json_object_get (info, "watch")));
    h_assert_str (s_str (info, "version"), "1.0.0");
    json_decref (info);
    s_open ("a1");
    s_assert_deposit ("a1", 2, "1.0.0");

    /* A deploy: the new file written beside, then renamed over. */
    s_replace (h_path ("plugins/accounts/accounts_v2.so"), plugin);
    json_decref (s_wait_context ("accounts", "2.0.0", 1, 0));
    s_assert_deposit ("a1", 2, "2.0.0");

    /* A broken deploy: the file overwritten in place with garbage. */
    int fd = open (plugin, O_WRONLY | O_TRUNC);
    assert_true (fd >= 0);
    assert_int_equal (write (fd, "garbage\n", 8), 8);
    assert_int_equal (close (fd), 0);
    info = s_wait_context ("accounts", "2.0.0", 1, 1);
    h_assert_contains (s_str (info, "last_reload_error"), "not a loadable shared object");
    json_decref (info);
    s_assert_deposit ("a1", 2, "2.0.0");

    /* Fixed: the good file renamed over the garbage. */
    s_replace (h_path ("plugins/accounts/accounts.so"), plugin);
    json_decref (s_wait_context ("accounts", "1.0.0", 2, 0));
    s_assert_deposit ("a1", 2, "1.0.0");
}

/* --- 5. a projection's new version is rebuilt ------------------------ */

/* The projection's entry in stats (new). */
static json_t *
s_projection_stats (const char *name)
{
    json_t *s = s_stats ();
    json_t *p = json_incref (json_object_get (json_object_get (s, "projections"), name));
    json_decref (s);
    return p;
}

/* Waits until every account's balance read model equals balances[i]. */
static void
s_wait_balances (const json_int_t *balances, int n)
{
    long long deadline = s_deadline (WAIT_S);
    for (int i = 0; i < n; i++) {
        char account[16];
        snprintf (account, sizeof account, "b%d", i);
        json_int_t got = -1;
        while (h_now_us () < deadline) {
            json_t *r = s_query ("balances", account);
            got = s_int (json_object_get (r, "value"), "balance");
            int there = json_is_object (json_object_get (r, "value"));
            json_decref (r);
            if (there && got == balances[i])
                break;
            usleep (20000);
        }
        if (got != balances[i])
            fail_msg ("balances %s is %lld, expected %lld", account, (long long) got,
                      (long long) balances[i]);
    }
}

static void
test_a_reload_rebuilds_a_changed_projection (void **state)
{
    (void) state;
    enum { N = 5 };
    json_int_t balances[N];
    for (int i = 0; i < N; i++) {
        char account[16];
        snprintf (account, sizeof account, "b%d", i);
        s_open (account);
        balances[i] = 0;
        for (int k = 0; k <= i; k++) {
            s_assert_deposit (account, 10 + k, "1.0.0");
            balances[i] += 10 + k;
        }
    }
    s_wait_balances (balances, N);
    json_t *p = s_projection_stats ("balances");
    assert_int_equal (s_int (p, "version"), 1);
    assert_int_equal (s_int (json_object_get (p, "lag"), "accounts"), 0);
    assert_int_equal (s_int (p, "rebuilds"), 0);
    json_decref (p);

    int code;
    json_t *r = s_reload ("transfers", h_path ("plugins/transfers/transfers_v2.so"), &code);
    assert_int_equal (code, 0);
    assert_true (s_ok (r));
    h_assert_str (s_str (r, "context"), "transfers");
    json_decref (r);
    json_decref (s_wait_context ("transfers", "1.0.0", 1, 0));

    /* balances is rebuilt at version 2 and goes live again, caught up. */
    long long deadline = s_deadline (WAIT_S);
    int done = 0;
    p = NULL;
    while (!done && h_now_us () < deadline) {
        json_decref (p);
        p = s_projection_stats ("balances");
        done = s_int (p, "version") == 2 && s_int (p, "rebuilds") == 1
               && s_str (p, "state") && strcmp (s_str (p, "state"), "live") == 0
               && json_is_integer (json_object_get (json_object_get (p, "lag"), "accounts"))
               && s_int (json_object_get (p, "lag"), "accounts") == 0;
        if (!done)
            usleep (20000);
    }
    if (!done) {
        char *text = p ? json_dumps (p, JSON_COMPACT) : NULL;
        fail_msg ("balances was not rebuilt at version 2 within %d s: %s", WAIT_S,
                  text ? text : "no stats");
    }
    assert_true (json_is_null (json_object_get (p, "error")));
    json_decref (p);
    s_wait_balances (balances, N);

    /* transfers kept its version: not rebuilt. */
    p = s_projection_stats ("transfers");
    assert_int_equal (s_int (p, "version"), 1);
    assert_int_equal (s_int (p, "rebuilds"), 0);
    h_assert_str (s_str (p, "state"), "live");
    json_decref (p);

    /* The new version runs the whole context: a transfer goes through its
     * reactor, both projections follow. */
    r = h_send (s_host.endpoint, "transfers", "RequestTransfer", NULL,
                json_pack ("{s:s, s:s, s:s, s:i}", "transfer", "t1", "from", "b4",
                           "to", "b0", "amount", 7));
    assert_true (s_ok (r));
    json_decref (r);
    balances[4] -= 7;
    balances[0] += 7;
    s_wait_balances (balances, N);
    deadline = s_deadline (WAIT_S);
    const char *st = NULL;
    while (h_now_us () < deadline) {
        r = s_query ("transfers", "t1");
        st = s_str (json_object_get (r, "value"), "state");
        int completed = st && strcmp (st, "completed") == 0;
        json_decref (r);
        if (completed)
            break;
        st = NULL;
        usleep (20000);
    }
    if (!st)
        fail_msg ("transfer t1 did not complete within %d s", WAIT_S);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown (test_twenty_reloads_under_load,
                                         s_setup_accounts, s_teardown),
        cmocka_unit_test_setup_teardown (test_bad_versions_are_refused,
                                         s_setup_accounts, s_teardown),
        cmocka_unit_test_setup_teardown (test_a_hung_decide_times_the_reload_out,
                                         s_setup_slow, s_teardown),
        cmocka_unit_test_setup_teardown (test_a_watched_plugin_reloads_itself,
                                         s_setup_watch, s_teardown),
        cmocka_unit_test_setup_teardown (test_a_reload_rebuilds_a_changed_projection,
                                         s_setup_bank, s_teardown),
        cmocka_unit_test_setup_teardown (test_a_truncated_plugin_is_refused,
                                         s_setup_accounts, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
