/*
 * test_curve - CURVE on the API and the bridges: with host.curve keys, a
 * client without keys or with a key the host does not list is refused
 * (and the host says so in its log), the right key works; a peer whose key
 * the owner does not list gets no events, the right one does; and without
 * keys a config that binds beyond loopback is refused.
 */
#include "harness.h"

#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zmq.h>
#include <cmocka.h>

typedef struct {
    char dir[256];                /* temp directory */
    char config[320];             /* its config */
    char log[320];                /* its stderr */
    pid_t pid;                    /* the running host */
    int port;                     /* api; publish is port + 1 */
} s_host_t;

static int s_next_port;

static void
s_host_init (s_host_t *h)
{
    memset (h, 0, sizeof *h);
    snprintf (h->dir, sizeof h->dir, "/tmp/bctx-test-XXXXXX");
    assert_non_null (mkdtemp (h->dir));
    snprintf (h->config, sizeof h->config, "%s/host.json", h->dir);
    snprintf (h->log, sizeof h->log, "%s/host.log", h->dir);
    if (!s_next_port)
        s_next_port = 25000 + (getpid () % 1000) * 4;
    h->port = s_next_port;
    s_next_port += 2;
}

/* Writes the config: host section with keys, then peers and contexts. */
static void
s_write (s_host_t *h, const h_keys_t *keys, const char *clients, const char *peers,
         const char *contexts)
{
    FILE *f = fopen (h->config, "w");
    assert_non_null (f);
    fprintf (f, "{\"host\": {\"http\": false, \"name\": \"h%d\", \"api\": \"tcp://127.0.0.1:%d\","
                " \"publish\": \"tcp://127.0.0.1:%d\", \"data\": \"%s/data\","
                " \"forward_timeout_ms\": 1000,"
                " \"curve\": {\"public\": \"%s\", \"secret\": \"%s\"}, \"clients\": [%s]},"
                " \"peers\": [%s], \"contexts\": [%s]}\n",
             h->port, h->port, h->port + 1, h->dir, keys->pub, keys->sec, clients, peers,
             contexts);
    fclose (f);
}

static void
s_start (s_host_t *h)
{
    h->pid = fork ();
    if (h->pid == 0) {
        int fd = open (h->log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        dup2 (fd, 2);
        execl (h_path ("bin/bctx-host"), "bctx-host", h->config, (char *) NULL);
        _exit (127);
    }
    usleep (300000);
    assert_int_equal (waitpid (h->pid, NULL, WNOHANG), 0);   /* still running */
}

static int
s_stop (s_host_t *h)
{
    if (!h->pid)
        return 0;
    kill (h->pid, SIGTERM);
    int status = 0;
    for (int i = 0; i < 400 && waitpid (h->pid, &status, WNOHANG) == 0; i++)
        usleep (25000);
    if (kill (h->pid, 0) == 0) {
        kill (h->pid, SIGKILL);
        waitpid (h->pid, &status, 0);
    }
    h->pid = 0;
    char cmd[300];
    snprintf (cmd, sizeof cmd, "rm -rf '%s'", h->dir);
    if (system (cmd) != 0)
        return -1;
    return WIFEXITED (status) ? WEXITSTATUS (status) : 128 + WTERMSIG (status);
}

/* bctx with keys (NULL: none) against host h; output in *out (new). */
static int
s_cli (const s_host_t *h, const h_keys_t *server, const h_keys_t *client, char **out, ...)
{
    char endpoint[64];
    snprintf (endpoint, sizeof endpoint, "tcp://127.0.0.1:%d", h->port);
    char *argv[32];
    int n = 0;
    argv[n++] = "bctx";
    argv[n++] = "-e";
    argv[n++] = endpoint;
    argv[n++] = "--timeout";
    argv[n++] = "1";
    if (server) {
        argv[n++] = "--server-key";
        argv[n++] = (char *) server->pub;
        argv[n++] = "--public-key";
        argv[n++] = (char *) client->pub;
        argv[n++] = "--secret-key";
        argv[n++] = (char *) client->sec;
    }
    va_list ap;
    va_start (ap, out);
    char *a;
    while ((a = va_arg (ap, char *)) && n < 31)
        argv[n++] = a;
    va_end (ap);
    argv[n] = NULL;
    return h_cli_argv (out, argv);
}

static int
s_log_has (const s_host_t *h, const char *text)
{
    FILE *f = fopen (h->log, "r");
    if (!f)
        return 0;
    char line[2048];
    int found = 0;
    while (!found && fgets (line, sizeof line, f))
        found = strstr (line, text) != NULL;
    fclose (f);
    return found;
}

static void
test_api_needs_the_right_key (void **state)
{
    (void) state;
    h_keys_t host = h_keygen (), client = h_keygen (), stranger = h_keygen ();
    s_host_t h;
    s_host_init (&h);
    char clients[64], ctx[512];
    snprintf (clients, sizeof clients, "\"%s\"", client.pub);
    snprintf (ctx, sizeof ctx, "{\"name\": \"accounts\", \"plugin\": \"%s\"}",
              h_path ("plugins/accounts/accounts.so"));
    s_write (&h, &host, clients, "", ctx);
    s_start (&h);
    char *out = NULL;
    /* No keys: no answer. */
    assert_int_equal (s_cli (&h, NULL, NULL, &out, "contexts", NULL), 3);
    free (out);
    /* A key the host does not list: refused, and the log says so. */
    assert_int_equal (s_cli (&h, &host, &stranger, &out, "contexts", NULL), 3);
    free (out);
    for (int i = 0; i < 40 && !s_log_has (&h, "refused a client"); i++)
        usleep (50000);
    assert_true (s_log_has (&h, "refused a client"));
    /* The listed key: served. */
    assert_int_equal (s_cli (&h, &host, &client, &out, "send", "accounts", "OpenAccount",
                             "{\"account\":\"k1\",\"owner\":\"Kay\"}", NULL), 0);
    assert_non_null (strstr (out, "\"ok\":true"));
    free (out);
    assert_int_equal (s_stop (&h), 0);
}

static void
test_bridge_needs_the_right_peer_key (void **state)
{
    (void) state;
    h_keys_t ka = h_keygen (), kb = h_keygen (), kc = h_keygen (), client = h_keygen ();
    s_host_t a, b, c;
    s_host_init (&a);
    s_host_init (&b);
    s_host_init (&c);
    char clients[64], peers_a[512], peers_b[512], peers_c[512], ctx_a[512], ctx_b[512];
    snprintf (clients, sizeof clients, "\"%s\"", client.pub);
    /* A lists B's key (as a peer), not C's. */
    snprintf (peers_a, sizeof peers_a, "{\"name\": \"b\", \"api\": \"tcp://127.0.0.1:%d\","
              " \"publish\": \"tcp://127.0.0.1:%d\", \"public_key\": \"%s\"}",
              b.port, b.port + 1, kb.pub);
    snprintf (ctx_a, sizeof ctx_a, "{\"name\": \"accounts\", \"plugin\": \"%s\"}",
              h_path ("plugins/accounts/accounts.so"));
    s_write (&a, &ka, clients, peers_a, ctx_a);
    snprintf (peers_b, sizeof peers_b, "{\"name\": \"a\", \"api\": \"tcp://127.0.0.1:%d\","
              " \"publish\": \"tcp://127.0.0.1:%d\", \"public_key\": \"%s\"}",
              a.port, a.port + 1, ka.pub);
    snprintf (ctx_b, sizeof ctx_b, "{\"name\": \"accounts\", \"peer\": \"a\"},"
              " {\"name\": \"transfers\", \"plugin\": \"%s\"}",
              h_path ("plugins/transfers/transfers.so"));
    s_write (&b, &kb, clients, peers_b, ctx_b);
    memcpy (peers_c, peers_b, sizeof peers_c);
    s_write (&c, &kc, clients, peers_c, ctx_b);
    s_start (&a);
    s_start (&b);
    s_start (&c);
    char *out = NULL;
    assert_int_equal (s_cli (&a, &ka, &client, &out, "send", "accounts", "OpenAccount",
                             "{\"account\":\"p1\",\"owner\":\"Pat\"}", NULL), 0);
    free (out);
    /* B is listed: its bridge brings the event, its projection shows it. */
    int seen = 0;
    for (int i = 0; i < 100 && !seen; i++) {
        s_cli (&b, &kb, &client, &out, "query", "balances", "p1", NULL);
        seen = out && strstr (out, "\"owner\":\"Pat\"");
        free (out);
        out = NULL;
        if (!seen)
            usleep (50000);
    }
    assert_true (seen);
    /* C is not listed: nothing comes, A refuses it, C still serves. */
    usleep (500000);
    assert_int_equal (s_cli (&c, &kc, &client, &out, "query", "balances", "p1", NULL), 0);
    assert_non_null (strstr (out, "\"value\":null"));
    free (out);
    assert_int_equal (s_cli (&c, &kc, &client, &out, "stats", NULL), 0);
    json_t *stats = h_json (out);
    free (out);
    json_t *bridge = json_object_get (json_object_get (stats, "bridges"), "accounts");
    assert_int_equal (json_integer_value (json_object_get (bridge, "checkpoint")), 0);
    assert_string_not_equal (json_string_value (json_object_get (bridge, "state")), "live");
    json_decref (stats);
    assert_true (s_log_has (&a, "refused a client"));
    /* Commands C forwards to A are refused too: unavailable, no hang. */
    assert_int_equal (s_cli (&c, &kc, &client, &out, "send", "accounts", "Deposit",
                             "{\"account\":\"p1\",\"amount\":5}", NULL), 1);
    assert_non_null (strstr (out, "unavailable"));
    free (out);
    assert_int_equal (s_stop (&c), 0);
    assert_int_equal (s_stop (&b), 0);
    assert_int_equal (s_stop (&a), 0);
}

static void
test_no_keys_means_loopback_only (void **state)
{
    (void) state;
    char dir[] = "/tmp/bctx-test-XXXXXX";
    assert_non_null (mkdtemp (dir));
    char path[300];
    snprintf (path, sizeof path, "%s/c.json", dir);
    FILE *f = fopen (path, "w");
    fprintf (f, "{\"host\": {\"api\": \"tcp://0.0.0.0:7999\", \"data\": \"%s/data\"},"
                " \"contexts\": [{\"name\": \"accounts\", \"plugin\": \"%s\"}]}",
             dir, h_path ("plugins/accounts/accounts.so"));
    fclose (f);
    char *err = NULL;
    assert_int_equal (h_run_host_expecting_exit (path, &err), 1);
    assert_non_null (strstr (err, "host.api"));
    assert_non_null (strstr (err, "allow_remote"));
    free (err);
    char cmd[300];
    snprintf (cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal (system (cmd), 0);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_api_needs_the_right_key),
        cmocka_unit_test (test_bridge_needs_the_right_peer_key),
        cmocka_unit_test (test_no_keys_means_loopback_only),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
