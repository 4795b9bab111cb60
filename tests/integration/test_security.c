/*
 * test_security - who may do what, on the real host.
 *
 *   - reload, replay and retry are admin ops: the public API answers them
 *     "forbidden", naming the admin endpoint, and nothing changes (a
 *     plugin's constructor never runs); the
 *     admin endpoint (an ipc:// socket in a 0700 folder under host.data)
 *     serves them; the CLI finds it by itself, or takes --admin / BCTX_ADMIN;
 *   - with CURVE, each key's role decides: a client key may send and read
 *     but not reload, an admin key may reload, a peer's key may forward
 *     commands and read logs, nothing more;
 *   - a client cannot forge a reactor's command id: the reproducer of
 *     issue 8 (a Withdraw sent with the id the transfer-process reactor
 *     will derive) conserves money;
 *   - a plugin that calls exit() leaves a log line naming its context;
 *   - a wildcard bind with allow_remote logs a warning;
 *   - a peer whose API resolves to this host's own is refused.
 */
#include "harness.h"

#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zmq.h>
#include <cmocka.h>

#define REPLY_MS 5000

static json_t *
s_raw (const char *endpoint, const char *body)
{
    return h_request (endpoint, body, strlen (body), REPLY_MS);
}

/* The reload count of context `name`, read on endpoint. */
static json_int_t
s_reloads (const char *endpoint, const char *name)
{
    json_t *r = s_raw (endpoint, "{\"op\":\"contexts\"}");
    assert_non_null (r);
    json_int_t n = -1;
    size_t i;
    json_t *c;
    json_array_foreach (json_object_get (r, "contexts"), i, c)
        if (strcmp (json_string_value (json_object_get (c, "name")), name) == 0)
            n = json_integer_value (json_object_get (c, "reloads"));
    json_decref (r);
    return n;
}

static void
test_admin_ops_refused_on_the_public_api (void **state)
{
    (void) state;
    h_host_t h;
    assert_int_equal (h_init (&h), 0);
    /* A plugin whose constructor leaves a mark, were it ever loaded. */
    char marker[400], body[1200];
    snprintf (marker, sizeof marker, "%s/constructor-ran", h.dir);
    setenv ("BCTX_TEST_MARKER", marker, 1);
    assert_int_equal (h_start (&h), 0);
    snprintf (body, sizeof body, "{\"op\":\"reload\",\"context\":\"accounts\",\"plugin\":"
              "\"%s\"}", h_path ("tests/plugins/constructor.so"));
    json_t *refused = s_raw (h.endpoint, body);
    assert_non_null (refused);
    assert_string_equal (h_error_code (refused), "forbidden");
    json_decref (refused);
    assert_int_not_equal (access (marker, F_OK), 0);
    const char *ops[] = {
        "{\"op\":\"reload\",\"context\":\"accounts\"}",
        "{\"op\":\"replay\",\"projection\":\"balances\"}",
        "{\"op\":\"retry\",\"reactor\":\"transfer-process\"}",
    };
    for (size_t i = 0; i < 3; i++) {
        json_t *r = s_raw (h.endpoint, ops[i]);
        assert_non_null (r);
        assert_false (json_is_true (json_object_get (r, "ok")));
        assert_string_equal (h_error_code (r), "forbidden");
        /* It says where admin ops are served, in the text and as a field. */
        assert_non_null (strstr (h_error_message (r), h.admin));
        assert_string_equal (json_string_value (json_object_get (json_object_get (r, "error"),
                                                                 "admin")), h.admin);
        json_decref (r);
    }
    assert_int_equal (s_reloads (h.endpoint, "accounts"), 0);

    /* The admin endpoint serves them; its folder is the host user's only. */
    char run[400];
    snprintf (run, sizeof run, "%s/data/run", h.dir);
    struct stat st;
    assert_int_equal (stat (run, &st), 0);
    assert_int_equal (st.st_mode & 0777, 0700);
    json_t *r = s_raw (h.admin, ops[0]);
    assert_non_null (r);
    assert_true (json_is_true (json_object_get (r, "ok")));
    json_decref (r);
    assert_int_equal (s_reloads (h.endpoint, "accounts"), 1);

    /* The CLI goes there by itself for the host's own user ... */
    char *out = NULL;
    assert_int_equal (h_cli (&h, &out, "reload", "accounts", NULL), 0);
    assert_non_null (strstr (out, "\"ok\":true"));
    free (out);
    assert_int_equal (s_reloads (h.endpoint, "accounts"), 2);
    /* ... or where --admin says. */
    char *argv[] = { "bctx", "-e", h.endpoint, "--admin", h.admin, "reload", "accounts", NULL };
    assert_int_equal (h_cli_argv (&out, argv), 0);
    free (out);
    assert_int_equal (s_reloads (h.endpoint, "accounts"), 3);
    /* An --admin endpoint nobody serves: no answer, exit 3; nothing changes. */
    char none[400];
    snprintf (none, sizeof none, "ipc://%s/nobody.sock", h.dir);
    char *argv2[] = { "bctx", "-e", h.endpoint, "--timeout", "0.5", "--admin", none,
                      "reload", "accounts", NULL };
    int code = h_cli_argv (&out, argv2);
    free (out);
    assert_int_not_equal (code, 0);
    assert_int_equal (s_reloads (h.endpoint, "accounts"), 3);
    /* Client ops are not admin ops: the CLI does not go elsewhere. */
    assert_int_equal (h_cli (&h, &out, "contexts", NULL), 0);
    free (out);
    assert_int_not_equal (access (marker, F_OK), 0);
    unsetenv ("BCTX_TEST_MARKER");
    assert_int_equal (h_cleanup (&h), 0);
}

static json_t *
s_as (const h_host_t *h, const h_keys_t *server, const h_keys_t *me, const char *body)
{
    return h_request_keys (h->endpoint, server->pub, me->pub, me->sec, body, strlen (body),
                           REPLY_MS);
}

static void
test_curve_roles (void **state)
{
    (void) state;
    h_keys_t host = h_keygen (), client = h_keygen (), admin = h_keygen (), peer = h_keygen ();
    h_host_t h;
    assert_int_equal (h_init (&h), 0);
    snprintf (h.host_extra, sizeof h.host_extra,
              "\"curve\": {\"public\": \"%s\", \"secret\": \"%s\"}, \"clients\": [\"%s\","
              " {\"key\": \"%s\", \"role\": \"admin\"}]",
              host.pub, host.sec, client.pub, admin.pub);
    /* A peers[] entry only to list the peer's key; nothing runs there.
     * (The harness writes "contexts": followed by this text.) */
    snprintf (h.contexts, sizeof h.contexts,
              "[{\"name\": \"accounts\", \"plugin\": \"%s\"}], \"peers\": [{\"name\": \"p\","
              " \"api\": \"tcp://127.0.0.1:9\", \"publish\": \"tcp://127.0.0.1:9\","
              " \"public_key\": \"%s\"}]", h_path ("plugins/accounts/accounts.so"), peer.pub);
    assert_int_equal (h_start (&h), 0);

    const char *send = "{\"op\":\"send\",\"context\":\"accounts\",\"command\":\"OpenAccount\","
                       "\"id\":\"o1\",\"data\":{\"account\":\"a1\",\"owner\":\"Ann\"}}";
    const char *reload = "{\"op\":\"reload\",\"context\":\"accounts\"}";
    const char *events = "{\"op\":\"events\",\"context\":\"accounts\"}";
    const char *stats = "{\"op\":\"stats\"}";
    /* A client key: commands and reads, no admin op. */
    json_t *r = s_as (&h, &host, &client, send);
    assert_non_null (r);
    assert_true (json_is_true (json_object_get (r, "ok")));
    json_decref (r);
    r = s_as (&h, &host, &client, stats);
    assert_true (json_is_true (json_object_get (r, "ok")));
    json_decref (r);
    r = s_as (&h, &host, &client, reload);
    assert_non_null (r);
    assert_string_equal (h_error_code (r), "forbidden");
    assert_non_null (strstr (h_error_message (r), "role is client"));
    json_decref (r);
    /* A client key cannot claim a reactor's origin. */
    r = s_as (&h, &host, &client, "{\"op\":\"send\",\"context\":\"accounts\",\"command\":"
              "\"Deposit\",\"id\":\"x\",\"origin\":\"reactor\",\"data\":{\"account\":\"a1\","
              "\"amount\":1}}");
    assert_non_null (r);
    assert_string_equal (h_error_code (r), "forbidden");
    json_decref (r);
    /* An admin key: admin ops on the public API. */
    r = s_as (&h, &host, &admin, reload);
    assert_non_null (r);
    assert_true (json_is_true (json_object_get (r, "ok")));
    json_decref (r);
    /* A peer's key: commands and logs, nothing else. */
    r = s_as (&h, &host, &peer, events);
    assert_non_null (r);
    assert_true (json_is_true (json_object_get (r, "ok")));
    assert_int_equal (json_array_size (json_object_get (r, "events")), 1);
    json_decref (r);
    r = s_as (&h, &host, &peer, "{\"op\":\"send\",\"context\":\"accounts\",\"command\":"
              "\"Deposit\",\"id\":\"p1\",\"origin\":\"reactor\",\"data\":{\"account\":\"a1\","
              "\"amount\":5}}");
    assert_non_null (r);
    assert_true (json_is_true (json_object_get (r, "ok")));
    json_decref (r);
    const char *peer_refused[] = { stats, "{\"op\":\"contexts\"}", reload,
                                   "{\"op\":\"query\",\"projection\":\"x\"}" };
    for (size_t i = 0; i < 4; i++) {
        r = s_as (&h, &host, &peer, peer_refused[i]);
        assert_non_null (r);
        assert_string_equal (h_error_code (r), "forbidden");
        assert_non_null (strstr (h_error_message (r), "peer"));
        json_decref (r);
    }
    /* The same id from a client and from a (peer's) reactor are two
     * commands: the client's Deposit p1 is not taken for the reactor's. */
    r = s_as (&h, &host, &client, "{\"op\":\"send\",\"context\":\"accounts\",\"command\":"
              "\"Deposit\",\"id\":\"p1\",\"data\":{\"account\":\"a1\",\"amount\":7}}");
    assert_non_null (r);
    assert_true (json_is_true (json_object_get (r, "ok")));
    json_t *ev = json_array_get (json_object_get (r, "events"), 0);
    assert_int_equal (json_integer_value (json_object_get (ev, "position")), 3);
    json_decref (r);
    /* The admin endpoint needs no key: the OS user is the check. */
    r = s_raw (h.admin, reload);
    assert_non_null (r);
    assert_true (json_is_true (json_object_get (r, "ok")));
    json_decref (r);
    assert_int_equal (h_cleanup (&h), 0);
}

/* The transfers the transfer-process reactor has finished, by id. */
static const char *
s_transfer_state (h_host_t *h, const char *id, char *buf, size_t size)
{
    char *out = NULL;
    buf[0] = '\0';
    if (h_cli (h, &out, "query", "transfers", id, NULL) == 0) {
        json_t *r = h_json (out);
        const char *st = json_string_value (json_object_get (json_object_get (r, "value"),
                                                             "state"));
        snprintf (buf, size, "%s", st ? st : "");
        json_decref (r);
    }
    free (out);
    return buf;
}

static json_int_t
s_balance (h_host_t *h, const char *account)
{
    char *out = NULL;
    json_int_t b = -1;
    if (h_cli (h, &out, "query", "balances", account, NULL) == 0) {
        json_t *r = h_json (out);
        b = json_integer_value (json_object_get (json_object_get (r, "value"), "balance"));
        json_decref (r);
    }
    free (out);
    return b;
}

static json_t *
s_ok_send (h_host_t *h, const char *context, const char *command, const char *id,
           json_t *data_new)
{
    json_t *r = h_send (h->endpoint, context, command, id, data_new);
    assert_non_null (r);
    if (!json_is_true (json_object_get (r, "ok")))
        fail_msg ("%s %s: %s", context, command, h_error_message (r));
    return r;
}

static void
test_reactor_id_forgery_conserves_money (void **state)
{
    (void) state;
    h_host_t h;
    assert_int_equal (h_init (&h), 0);
    snprintf (h.contexts, sizeof h.contexts,
              "[{\"name\": \"accounts\", \"plugin\": \"%s\"},"
              " {\"name\": \"transfers\", \"plugin\": \"%s\"}]",
              h_path ("plugins/accounts/accounts.so"), h_path ("plugins/transfers/transfers.so"));
    assert_int_equal (h_start (&h), 0);
    json_decref (s_ok_send (&h, "accounts", "OpenAccount", "o1",
                            json_pack ("{s:s, s:s}", "account", "a1", "owner", "Ann")));
    json_decref (s_ok_send (&h, "accounts", "OpenAccount", "o2",
                            json_pack ("{s:s, s:s}", "account", "a2", "owner", "Bob")));
    json_decref (s_ok_send (&h, "accounts", "Deposit", "d1",
                            json_pack ("{s:s, s:i}", "account", "a1", "amount", 100)));
    json_decref (s_ok_send (&h, "accounts", "Deposit", "d2",
                            json_pack ("{s:s, s:i}", "account", "a2", "amount", 10)));
    /* The id the reactor will derive for its withdrawal of transfer t1,
     * the first event of the transfers log: taken first by a client. */
    json_decref (s_ok_send (&h, "accounts", "Withdraw", "transfer-process:transfers:1:0",
                            json_pack ("{s:s, s:i}", "account", "a1", "amount", 1)));
    json_decref (s_ok_send (&h, "transfers", "RequestTransfer", "t1",
                            json_pack ("{s:s, s:s, s:s, s:i}", "transfer", "t1", "from", "a1",
                                       "to", "a2", "amount", 50)));
    char st[32];
    long long deadline = h_now_us () + 20 * 1000000LL;
    while (h_now_us () < deadline && strcmp (s_transfer_state (&h, "t1", st, sizeof st),
                                             "completed") != 0)
        usleep (20000);
    assert_string_equal (st, "completed");
    /* The reactor withdrew its own 50: a1 paid 1 + 50, a2 got 50. */
    deadline = h_now_us () + 20 * 1000000LL;
    while (h_now_us () < deadline && s_balance (&h, "a2") != 60)
        usleep (20000);
    assert_int_equal (s_balance (&h, "a1"), 49);
    assert_int_equal (s_balance (&h, "a2"), 60);
    /* In the log: both withdrawals from a1, the reactor's marked as such. */
    json_t *log = h_events (&h, "accounts");
    assert_non_null (log);
    int withdrawals = 0, from_reactor = 0;
    json_int_t sum = 0;
    size_t i;
    json_t *e;
    json_array_foreach (log, i, e) {
        const char *type = json_string_value (json_object_get (e, "type"));
        json_int_t amount = json_integer_value (json_object_get (json_object_get (e, "data"),
                                                                 "amount"));
        json_t *meta = json_object_get (e, "metadata");
        if (strcmp (type, "Withdrawn") == 0) {
            withdrawals++;
            sum -= amount;
            const char *origin = json_string_value (json_object_get (meta, "origin"));
            if (origin && strcmp (origin, "reactor") == 0) {
                from_reactor++;
                assert_int_equal (amount, 50);
            }
        } else if (strcmp (type, "Deposited") == 0) {
            sum += amount;
        }
    }
    json_decref (log);
    assert_int_equal (withdrawals, 2);
    assert_int_equal (from_reactor, 1);
    /* Money is conserved: the balances are what the log moved. */
    assert_int_equal (sum, 49 + 60);
    /* An id with a control character (which the reactors' ids use to stay
     * apart) is refused. */
    json_t *r = h_send (h.endpoint, "accounts", "Deposit", "\x1etransfer-process:transfers:1:0",
                        json_pack ("{s:s, s:i}", "account", "a1", "amount", 1));
    assert_non_null (r);
    assert_string_equal (h_error_code (r), "bad_request");
    json_decref (r);
    assert_int_equal (h_cleanup (&h), 0);
}

static void
test_exit_in_plugin_is_logged (void **state)
{
    (void) state;
    h_host_t h;
    assert_int_equal (h_init (&h), 0);
    snprintf (h.contexts, sizeof h.contexts, "[{\"name\": \"exiter\", \"plugin\": \"%s\"}]",
              h_path ("tests/plugins/exiter.so"));
    assert_int_equal (h_start (&h), 0);
    json_t *r = h_send (h.endpoint, "exiter", "Exit", NULL, json_pack ("{s:s}", "id", "x"));
    json_decref (r);              /* no reply: the host is gone */
    int status = h_wait (h.pid, 10000);
    h.pid = 0;
    assert_int_not_equal (status, 0);
    char *log = h_read_log (&h);
    assert_non_null (log);
    if (!strstr (log, "context exiter: its plugin code called exit()"))
        fail_msg ("no exit line in the log:\n%s", log);
    free (log);
    h_cleanup (&h);
}

static void
test_self_peer_by_name_refused (void **state)
{
    (void) state;
    char dir[] = "/tmp/bctx-test-XXXXXX";
    assert_non_null (mkdtemp (dir));
    char path[300], *err = NULL;
    snprintf (path, sizeof path, "%s/self.json", dir);
    FILE *f = fopen (path, "w");
    assert_non_null (f);
    int port = 30000 + getpid () % 2000;
    fprintf (f, "{\"host\": {\"http\": false, \"api\": \"tcp://127.0.0.1:%d\", \"data\": \"%s/data\"},"
                " \"peers\": [{\"name\": \"me\", \"api\": \"tcp://localhost:%d\","
                " \"publish\": \"tcp://localhost:%d\"}],"
                " \"contexts\": [{\"name\": \"accounts\", \"plugin\": \"%s\"}]}\n",
             port, dir, port, port + 1, h_path ("plugins/accounts/accounts.so"));
    fclose (f);
    assert_int_equal (h_run_host_expecting_exit (path, &err), 1);
    if (!strstr (err, "peers[0].api: tcp://localhost:") || !strstr (err, "resolves to this "
                                                                         "host's own API"))
        fail_msg ("log: %s", err);
    free (err);
    char cmd[300];
    snprintf (cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal (system (cmd), 0);
}

/* A wildcard bind is only tried inside a network namespace of its own
 * (unshare -n: only a loopback that is down), so nothing outside can
 * reach it; that needs root. */
static void
test_wildcard_bind_warns (void **state)
{
    (void) state;
    if (geteuid () != 0 || system ("unshare -n true 2>/dev/null") != 0) {
        printf ("skipped: the wildcard-bind test needs root and unshare -n\n");
        return;
    }
    h_host_t h;
    assert_int_equal (h_init (&h), 0);
    FILE *f = fopen (h.config, "w");
    assert_non_null (f);
    fprintf (f, "{\"host\": {\"api\": \"tcp://0.0.0.0:7700\", \"allow_remote\": true,"
                " \"data\": \"%s/data\"}, \"contexts\": %s}\n", h.dir, h.contexts);
    fclose (f);
    char *argv[] = { "unshare", "-n", "--", (char *) h_path ("bin/bctx-host"), h.config, NULL };
    pid_t pid = fork ();
    if (pid == 0) {
        freopen (h.log, "w", stderr);
        execvp ("unshare", argv);
        _exit (127);
    }
    char *text = NULL;
    long long deadline = h_now_us () + 10 * 1000000LL;
    while (h_now_us () < deadline) {
        free (text);
        text = h_read_log (&h);
        if (text && strstr (text, "serving"))
            break;
        usleep (20000);
    }
    kill (pid, SIGTERM);
    assert_int_equal (h_wait (pid, 10000), 0);
    assert_non_null (text);
    if (!strstr (text, "WARN host.api tcp://0.0.0.0:7700 listens on every address")
        || !strstr (text, "nothing authenticates its clients"))
        fail_msg ("no warning in the log:\n%s", text);
    free (text);
    h_cleanup (&h);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_admin_ops_refused_on_the_public_api),
        cmocka_unit_test (test_curve_roles),
        cmocka_unit_test (test_reactor_id_forgery_conserves_money),
        cmocka_unit_test (test_exit_in_plugin_is_logged),
        cmocka_unit_test (test_self_peer_by_name_refused),
        cmocka_unit_test (test_wildcard_bind_warns),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
