/*
 * test_startup - the real bctx-host refuses a bad config or a broken
 * plugin: it exits 1 with a message naming the problem (and, for a key's
 * typo, the key meant), and never starts half-configured; relative paths
 * in a config resolve against the config file's folder, from any working
 * directory and on SIGHUP's re-read.
 */
#include "harness.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

static char s_dir[256];

/* Writes `text` as a config, runs the host on it, and checks that it
 * exits 1 with every one of the NULL-terminated substrings in its log. */
static void
s_refused (const char *text, ...)
{
    char path[320];
    snprintf (path, sizeof path, "%s/bad.json", s_dir);
    FILE *f = fopen (path, "w");
    assert_non_null (f);
    fputs (text, f);
    fclose (f);
    char *err = NULL;
    int code = h_run_host_expecting_exit (path, &err);
    if (code != 1)
        fail_msg ("exit %d, log:\n%s", code, err);
    va_list ap;
    va_start (ap, text);
    const char *want;
    while ((want = va_arg (ap, const char *)))
        if (!strstr (err, want))
            fail_msg ("log lacks \"%s\":\n%s", want, err);
    va_end (ap);
    free (err);
}

/* A config with the given contexts array, on a port nobody uses. */
static char *
s_config (const char *contexts)
{
    char *text = NULL;
    if (asprintf (&text, "{\"host\": {\"http\": false, \"api\": \"tcp://127.0.0.1:%d\", \"data\": \"%s/data\"},"
                         " \"contexts\": %s}", 40000 + getpid () % 10000, s_dir, contexts) < 0)
        return NULL;
    return text;
}

static void
s_refused_plugin (const char *plugin_rel, const char *want)
{
    char ctx[600];
    snprintf (ctx, sizeof ctx, "[{\"name\": \"accounts\", \"plugin\": \"%s\"}]",
              h_path (plugin_rel));
    char *text = s_config (ctx);
    s_refused (text, "contexts[0].plugin", want, NULL);
    free (text);
}

static void
test_missing_config_file (void **state)
{
    (void) state;
    char *err = NULL;
    assert_int_equal (h_run_host_expecting_exit ("/nonexistent/bctx.json", &err), 1);
    assert_non_null (strstr (err, "/nonexistent/bctx.json"));
    free (err);
}

static void
test_bad_json_and_keys (void **state)
{
    (void) state;
    s_refused ("{\"host\": {\"name\": \"x\",}", "line 1", NULL);
    s_refused ("{\"host\": {\"nmae\": \"x\"}, \"contexts\": []}", "host.nmae", "unknown key", NULL);
    s_refused ("{\"host\": {\"api\": 7700}, \"contexts\": []}", "host.api", NULL);
    s_refused ("{\"contexts\": {}}", "contexts: expected an array", NULL);
    s_refused ("{\"host\": {}}", "contexts: missing", NULL);
    s_refused ("{\"contexts\": [{\"name\": \"a\", \"plugin\": \"x.so\", \"bogus\": 1}]}",
               "contexts[0].bogus", NULL);
    s_refused ("{\"contexts\": [{\"name\": \"a\"}]}", "contexts[0].plugin: missing", NULL);
}

/* A key's typo: the host refuses to start, naming the key and the one
 * meant, for the host's keys, a context's and the top level's. */
static void
test_key_typo_suggests (void **state)
{
    (void) state;
    s_refused ("{\"host\": {\"pubish\": \"tcp://127.0.0.1:7701\"}, \"contexts\": []}",
               "bad.json: host.pubish: unknown key (did you mean host.publish?)", NULL);
    s_refused ("{\"contexts\": [{\"name\": \"a\", \"plugn\": \"a.so\"}]}",
               "contexts[0].plugn: unknown key (did you mean contexts[0].plugin?)", NULL);
    s_refused ("{\"contxts\": []}", "contxts: unknown key (did you mean contexts?)", NULL);
}

/* Writes h's config (h->config) with relative data and plugin paths, on
 * h's ports. */
static void
s_write_relative (const h_host_t *h, const char *contexts)
{
    FILE *f = fopen (h->config, "w");
    assert_non_null (f);
    fprintf (f, "{\"host\": {\"http\": false, \"api\": \"%s\", \"publish\": \"%s\","
             " \"data\": \"data\"}, \"contexts\": %s}\n", h->endpoint, h->publish, contexts);
    fclose (f);
}

/* The "contexts" reply once it lists n contexts (10 s at most). */
static json_t *
s_contexts_when (const h_host_t *h, size_t n)
{
    json_t *r = NULL;
    for (int i = 0; i < 200; i++) {
        json_decref (r);
        r = h_request (h->endpoint, "{\"op\":\"contexts\"}", 17, 1000);
        if (r && json_array_size (json_object_get (r, "contexts")) == n)
            return r;
        usleep (50000);
    }
    return r;
}

/* A config in conf/ with "data": "data" and plugins in conf/plugins,
 * started from another folder: it loads, its data is written next to the
 * config, and SIGHUP's re-read resolves a context added the same way. */
static void
test_relative_to_config_folder (void **state)
{
    (void) state;
    h_host_t h;
    assert_int_equal (h_init (&h), 0);
    char *root = realpath (h.dir, NULL);
    assert_non_null (root);
    assert_int_equal (h_sh ("mkdir -p '%s/conf/plugins' '%s/elsewhere' && cp '%s' '%s' "
                            "'%s/conf/plugins/'", h.dir, h.dir,
                            h_path ("plugins/accounts/accounts.so"),
                            h_path ("plugins/transfers/transfers.so"), h.dir), 0);
    snprintf (h.config, sizeof h.config, "%s/conf/host.json", h.dir);
    assert_int_equal (h_write_config (&h), 0);       /* picks the ports */
    s_write_relative (&h, "[{\"name\": \"accounts\", \"plugin\": \"plugins/accounts.so\"}]");
    char elsewhere[400];
    snprintf (elsewhere, sizeof elsewhere, "%s/elsewhere", h.dir);
    int back = open (".", O_RDONLY);
    assert_true (back >= 0);
    assert_int_equal (chdir (elsewhere), 0);
    h.pid = h_spawn_host (&h, NULL);
    assert_int_equal (fchdir (back), 0);
    close (back);
    json_t *r = s_contexts_when (&h, 1);
    if (!h_context_in (r, "accounts")) {
        char *log = h_read_log (&h);
        fail_msg ("the host did not serve; its log:\n%s", log);
    }
    char want[800];
    snprintf (want, sizeof want, "%s/conf/plugins/accounts.so", root);
    h_assert_str (h_str (h_context_in (r, "accounts"), "plugin"), want);
    json_decref (r);
    r = h_send (h.endpoint, "accounts", "OpenAccount", "rel-1",
                json_pack ("{s:s, s:s}", "account", "r1", "owner", "R"));
    assert_true (h_ok (r));
    json_decref (r);
    snprintf (want, sizeof want, "%s/conf/data/accounts.db", h.dir);
    assert_int_equal (access (want, F_OK), 0);
    snprintf (want, sizeof want, "%s/data", elsewhere);
    assert_int_not_equal (access (want, F_OK), 0);
    /* SIGHUP: the same rule for what the re-read adds. */
    s_write_relative (&h, "[{\"name\": \"accounts\", \"plugin\": \"plugins/accounts.so\"},"
                          " {\"name\": \"transfers\", \"plugin\": \"./plugins/transfers.so\"}]");
    kill (h.pid, SIGHUP);
    r = s_contexts_when (&h, 2);
    snprintf (want, sizeof want, "%s/conf/plugins/transfers.so", root);
    h_assert_str (h_str (h_context_in (r, "transfers"), "plugin"), want);
    json_decref (r);
    snprintf (want, sizeof want, "%s/conf/data/transfers.db", h.dir);
    assert_int_equal (access (want, F_OK), 0);
    free (root);
    assert_int_equal (h_cleanup (&h), 0);
}

/* A relative plugin or plugin folder that is not there: the message
 * names the config file's folder, whatever the working directory. */
static void
test_relative_missing_names_folder (void **state)
{
    (void) state;
    char dir[400], path[500], text[600];
    snprintf (dir, sizeof dir, "%s/relconf", s_dir);
    assert_int_equal (mkdir (dir, 0755), 0);
    char *real = realpath (dir, NULL);
    assert_non_null (real);
    snprintf (path, sizeof path, "%s/host.json", dir);
    int back = open (".", O_RDONLY);
    assert_true (back >= 0);
    assert_int_equal (chdir ("/"), 0);
    for (int k = 0; k < 2; k++) {
        FILE *f = fopen (path, "w");
        assert_non_null (f);
        if (k == 0)
            fprintf (f, "{\"host\": {\"http\": false, \"api\": \"tcp://127.0.0.1:%d\","
                     " \"data\": \"data\"}, \"contexts\": [{\"name\": \"accounts\","
                     " \"plugin\": \"plugins/missing.so\"}]}", 40000 + getpid () % 10000);
        else
            fprintf (f, "{\"host\": {\"http\": false, \"plugin_dirs\": [\"nodir\"]},"
                     " \"contexts\": []}");
        fclose (f);
        char *err = NULL;
        int code = h_run_host_expecting_exit (path, &err);
        if (code != 1)
            fail_msg ("exit %d, log:\n%s", code, err);
        if (k == 0) {
            snprintf (text, sizeof text, "contexts[0].plugin \"plugins/missing.so\" (relative to "
                      "the config file's folder %s): %s/plugins/missing.so: No such file", real,
                      real);
        } else {
            snprintf (text, sizeof text, "host.plugin_dirs[0]: nodir (relative to the config "
                      "file's folder %s): No such file", real);
        }
        h_assert_contains (err, text);
        free (err);
    }
    assert_int_equal (fchdir (back), 0);
    close (back);
    free (real);
}

static void
test_bad_peers_and_keys (void **state)
{
    (void) state;
    const char *peer = "{\"name\": \"a\", \"api\": \"tcp://127.0.0.1:7790\","
                       " \"publish\": \"tcp://127.0.0.1:7791\"}";
    char text[1200];
    snprintf (text, sizeof text, "{\"peers\": [%s], \"contexts\": [{\"name\": \"accounts\","
              " \"peer\": \"nobody\"}]}", peer);
    s_refused (text, "contexts[0].peer", NULL);
    snprintf (text, sizeof text, "{\"peers\": [%s, %s], \"contexts\": []}", peer, peer);
    s_refused (text, "peers[1].name", "duplicate peer", NULL);
    s_refused ("{\"host\": {\"api\": \"tcp://127.0.0.1:7790\"}, \"peers\": [{\"name\": \"a\","
               " \"api\": \"tcp://127.0.0.1:7790\", \"publish\": \"tcp://127.0.0.1:7791\"}],"
               " \"contexts\": []}", "peers[0].api", "own API", NULL);
    s_refused ("{\"host\": {\"clients\": [\"rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7\"]},"
               " \"contexts\": []}", "host.clients", "host.curve", NULL);
    s_refused ("{\"host\": {\"curve\": {\"public\": \"not a Z85 key, though forty chars long..\","
               " \"secret\": \"not a Z85 key, though forty chars long..\"}}, \"contexts\": []}",
               "host.curve", "Z85", NULL);
    s_refused ("{\"peers\": [{\"name\": \"a\", \"api\": \"tcp://127.0.0.1:7790\","
               " \"publish\": \"tcp://127.0.0.1:7791\","
               " \"public_key\": \"rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7\"}], \"contexts\": []}",
               "peers[0].public_key", "host.curve", NULL);
}

/* The supervisor opens the replica of every peer's context at start:
 * one it cannot open refuses the start, naming the file and what to do. */
static void
test_unopenable_replica (void **state)
{
    (void) state;
    char path[400], text[1200];
    snprintf (path, sizeof path, "%s/data", s_dir);
    mkdir (path, 0755);
    snprintf (path, sizeof path, "%s/data/replica-accounts.db", s_dir);
    assert_int_equal (mkdir (path, 0755), 0);
    snprintf (text, sizeof text,
              "{\"host\": {\"http\": false, \"api\": \"tcp://127.0.0.1:%d\", \"data\": \"%s/data\"},"
              " \"peers\": [{\"name\": \"a\", \"api\": \"tcp://127.0.0.1:7790\","
              " \"publish\": \"tcp://127.0.0.1:7791\"}],"
              " \"contexts\": [{\"name\": \"accounts\", \"peer\": \"a\"}]}",
              40000 + getpid () % 10000, s_dir);
    s_refused (text, "bridge accounts from peer a", "replica-accounts.db",
               "copies the peer's log afresh", NULL);
    assert_int_equal (rmdir (path), 0);
}

static void
test_duplicate_context_name (void **state)
{
    (void) state;
    char ctx[1200];
    const char *p = h_path ("plugins/accounts/accounts.so");
    snprintf (ctx, sizeof ctx, "[{\"name\": \"accounts\", \"plugin\": \"%s\"},"
                               " {\"name\": \"accounts\", \"plugin\": \"%s\"}]", p, p);
    char *text = s_config (ctx);
    s_refused (text, "contexts[1].name", "duplicate", NULL);
    free (text);
}

static void
test_broken_plugins (void **state)
{
    (void) state;
    s_refused_plugin ("plugins/accounts/missing.so", "No such file");
    s_refused_plugin ("tests/plugins/not_a_plugin.so", "not a loadable shared object");
    s_refused_plugin ("tests/plugins/no_entry.so", "entry symbol");
    s_refused_plugin ("tests/plugins/wrong_abi.so", "abi_version");
    s_refused_plugin ("tests/plugins/init_fails.so", "init");
}

static void
test_never_half_configured (void **state)
{
    (void) state;
    /* The first context is fine, the second is broken: nothing starts,
     * and the first one's store is left as it was. */
    char ctx[1200];
    snprintf (ctx, sizeof ctx, "[{\"name\": \"accounts\", \"plugin\": \"%s\"},"
                               " {\"name\": \"broken\", \"plugin\": \"%s\"}]",
              h_path ("plugins/accounts/accounts.so"), h_path ("tests/plugins/init_fails.so"));
    char *text = s_config (ctx);
    s_refused (text, "contexts[1].plugin", NULL);
    free (text);
}

static void
test_unusable_endpoint_and_data_dir (void **state)
{
    (void) state;
    char text[1200];
    snprintf (text, sizeof text,
              "{\"host\": {\"api\": \"tcp://no.such.interface:1\", \"data\": \"%s/data\"},"
              " \"contexts\": [{\"name\": \"accounts\", \"plugin\": \"%s\"}]}",
              s_dir, h_path ("plugins/accounts/accounts.so"));
    s_refused (text, "host.api", NULL);
    snprintf (text, sizeof text,
              "{\"host\": {\"data\": \"/proc/self/no/such\"},"
              " \"contexts\": [{\"name\": \"accounts\", \"plugin\": \"%s\"}]}",
              h_path ("plugins/accounts/accounts.so"));
    s_refused (text, "host.data", NULL);
}

static void
test_api_port_taken (void **state)
{
    (void) state;
    h_host_t h;
    assert_int_equal (h_init (&h), 0);
    assert_int_equal (h_start (&h), 0);
    /* A second host on the same API endpoint. */
    char text[1200];
    snprintf (text, sizeof text,
              "{\"host\": {\"http\": false, \"api\": \"%s\", \"data\": \"%s/data2\"},"
              " \"contexts\": [{\"name\": \"accounts\", \"plugin\": \"%s\"}]}",
              h.endpoint, s_dir, h_path ("plugins/accounts/accounts.so"));
    s_refused (text, "host.api", "Address already in use", NULL);
    /* The first one still serves. */
    char *out = NULL;
    assert_int_equal (h_cli (&h, &out, "contexts", NULL), 0);
    free (out);
    assert_int_equal (h_cleanup (&h), 0);
}

int
main (void)
{
    snprintf (s_dir, sizeof s_dir, "/tmp/bctx-test-XXXXXX");
    if (!mkdtemp (s_dir))
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_missing_config_file),
        cmocka_unit_test (test_bad_json_and_keys),
        cmocka_unit_test (test_key_typo_suggests),
        cmocka_unit_test (test_relative_to_config_folder),
        cmocka_unit_test (test_relative_missing_names_folder),
        cmocka_unit_test (test_bad_peers_and_keys),
        cmocka_unit_test (test_unopenable_replica),
        cmocka_unit_test (test_duplicate_context_name),
        cmocka_unit_test (test_broken_plugins),
        cmocka_unit_test (test_never_half_configured),
        cmocka_unit_test (test_unusable_endpoint_and_data_dir),
        cmocka_unit_test (test_api_port_taken),
    };
    int rc = cmocka_run_group_tests (tests, NULL, NULL);
    char cmd[300];
    snprintf (cmd, sizeof cmd, "rm -rf '%s'", s_dir);
    if (system (cmd) != 0)
        rc = 1;
    return rc;
}
