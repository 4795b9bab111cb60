/*
 * test_plugin_dirs - plugins load only from host.plugin_dirs, and a load is
 * bounded, against the real binaries: a reload from a folder outside them
 * is refused as forbidden before anything opens the file (the plugin's
 * constructor never runs); a symlink inside a plugin folder that leads out
 * is refused, whether the watch or the CLI reloads it; a config naming a
 * plugin outside host.plugin_dirs does not start; a file over
 * host.max_plugin_bytes is refused by its size; and a file whose copy
 * would outlast host.reload_timeout_ms is given up at the deadline.  Each
 * time the old version keeps serving.  Reloads go through the CLI.
 *
 * Every host must exit 0 on SIGTERM afterwards (under AddressSanitizer that
 * is how a leak shows).
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
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#define WAIT_S 20               /* the longest any single wait in this file lasts */
#define MIB    (1024L * 1024)

static h_host_t s_host;         /* the host of the test that runs */

/* --- helpers --------------------------------------------------------- */

/* A built file's path, resolved (new). */
static char *
s_real (const char *rel)
{
    char *p = realpath (h_path (rel), NULL);
    assert_non_null (p);
    return p;
}

/* The folder of a built file, resolved (new). */
static char *
s_real_dir (const char *rel)
{
    char *p = s_real (rel);
    *strrchr (p, '/') = '\0';
    return p;
}

/* "<test dir>/<rel>" into buf.  Return buf. */
static char *
s_in_dir (char *buf, size_t size, const char *rel)
{
    snprintf (buf, size, "%s/%s", s_host.dir, rel);
    return buf;
}

/* Copies the file `from` to `to`. */
static void
s_copy (const char *from, const char *to)
{
    int in = open (from, O_RDONLY);
    assert_true (in >= 0);
    int out = open (to, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true (out >= 0);
    char buf[65536];
    ssize_t n;
    while ((n = read (in, buf, sizeof buf)) > 0)
        assert_int_equal (write (out, buf, (size_t) n), n);
    close (in);
    assert_int_equal (close (out), 0);
}

/* A file of `bytes` bytes that takes no room (a hole, all zeros). */
static void
s_sparse (const char *path, long bytes)
{
    int fd = open (path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true (fd >= 0);
    assert_int_equal (ftruncate (fd, bytes), 0);
    assert_int_equal (close (fd), 0);
}

/* Points `link` at `target` at once: a symlink made beside, renamed over. */
static void
s_link_over (const char *target, const char *link)
{
    char tmp[600];
    snprintf (tmp, sizeof tmp, "%s.new", link);
    unlink (tmp);
    assert_int_equal (symlink (target, tmp), 0);
    assert_int_equal (rename (tmp, link), 0);
}

/* `bctx reload CONTEXT [PLUGIN]`; *code gets the CLI's exit code.
 * Return its output (new), or NULL. */
static json_t *
s_reload (const char *context, const char *plugin, int *code)
{
    char *out = NULL;
    *code = plugin ? h_cli (&s_host, &out, "--timeout", "30", "reload", context, plugin, NULL)
                   : h_cli (&s_host, &out, "--timeout", "30", "reload", context, NULL);
    json_t *r = h_json (out);
    free (out);
    return r;
}

/* Reloads `context` (from `plugin`, or its config's file: NULL) expecting
 * a refusal with `code` whose message contains every NULL-ended part.
 * Return the message (new). */
static char *
s_assert_refused (const char *context, const char *plugin, const char *code, ...)
{
    int exit_code;
    json_t *r = s_reload (context, plugin, &exit_code);
    char *text = r ? json_dumps (r, JSON_COMPACT) : NULL;
    if (exit_code != 1 || !r || json_is_true (json_object_get (r, "ok"))
        || !h_error_code (r) || strcmp (h_error_code (r), code) != 0)
        fail_msg ("reload %s %s: exit %d (expected 1, %s): %s", context,
                  plugin ? plugin : "", exit_code, code, text ? text : "no output");
    free (text);
    const char *message = h_error_message (r);
    h_assert_contains (message, "the old version keeps serving");
    va_list ap;
    va_start (ap, code);
    for (const char *part; (part = va_arg (ap, const char *));)
        h_assert_contains (message, part);
    va_end (ap);
    char *copy = strdup (message);
    json_decref (r);
    return copy;
}

/* Waits until context `name` runs `version` with a last_reload_error that
 * contains `error` (NULL: is null).  Fails the test after WAIT_S. */
static void
s_wait_context (const char *name, const char *version, const char *error)
{
    long long deadline = h_now_us () + WAIT_S * 1000000LL;
    char *last = NULL;
    while (h_now_us () < deadline) {
        json_t *info = h_context_info (&s_host, name);
        const char *v = h_str (info, "version");
        json_t *err = json_object_get (info, "last_reload_error");
        int there = v && strcmp (v, version) == 0
                    && (error ? json_is_string (err) && strstr (json_string_value (err), error)
                              : json_is_null (err));
        free (last);
        last = info ? json_dumps (info, JSON_COMPACT) : NULL;
        json_decref (info);
        if (there) {
            free (last);
            return;
        }
        usleep (20000);
    }
    fail_msg ("context %s did not reach version %s with last_reload_error %s within %d s; "
              "last seen: %s", name, version, error ? error : "null", WAIT_S,
              last ? last : "nothing");
}

/* A command that must be accepted: the context still serves. */
static void
s_assert_serves (const char *context, const char *command, json_t *data_new)
{
    json_t *r = h_send (s_host.endpoint, context, command, NULL, data_new);
    if (!json_is_true (json_object_get (r, "ok"))) {
        char *text = r ? json_dumps (r, JSON_COMPACT) : NULL;
        fail_msg ("%s %s: %s", context, command, text ? text : "no reply");
    }
    json_decref (r);
}

/* The entries of a folder besides . and .. */
static int
s_entries (const char *dir)
{
    char cmd[600];
    snprintf (cmd, sizeof cmd, "test -z \"$(ls -A '%s')\"", dir);
    return system (cmd) == 0 ? 0 : 1;
}

/* --- fixtures -------------------------------------------------------- */

static int
s_teardown (void **state)
{
    (void) state;
    unsetenv ("BCTX_TEST_MARKER");
    unsetenv ("TMPDIR");
    return h_teardown (&s_host);
}

/* accounts and ctor (the constructor plugin), with the default
 * plugin_dirs: the folders of those two; BCTX_TEST_MARKER set for the
 * host, so each load of ctor leaves the marker. */
static int
s_setup_default (void **state)
{
    (void) state;
    if (h_init (&s_host) < 0)
        return -1;
    char marker[400];
    setenv ("BCTX_TEST_MARKER", s_in_dir (marker, sizeof marker, "marker"), 1);
    snprintf (s_host.contexts, sizeof s_host.contexts,
              "[{\"name\": \"accounts\", \"plugin\": \"%s\"},"
              " {\"name\": \"ctor\", \"plugin\": \"%s\"}]",
              h_path ("plugins/accounts/accounts.so"), h_path ("tests/plugins/constructor.so"));
    return h_start (&s_host);
}

/* accounts from <dir>/plugins/accounts.so, watched, with plugin_dirs
 * [<dir>/plugins]; <dir>/outside holds the second version. */
static int
s_setup_symlink (void **state)
{
    (void) state;
    if (h_init (&s_host) < 0)
        return -1;
    char plugins[400], outside[400], file[500];
    if (mkdir (s_in_dir (plugins, sizeof plugins, "plugins"), 0755) < 0
        || mkdir (s_in_dir (outside, sizeof outside, "outside"), 0755) < 0)
        return -1;
    snprintf (file, sizeof file, "%s/accounts.so", plugins);
    s_copy (h_path ("plugins/accounts/accounts.so"), file);
    snprintf (file, sizeof file, "%s/accounts_v2.so", plugins);
    s_copy (h_path ("plugins/accounts/accounts_v2.so"), file);
    snprintf (file, sizeof file, "%s/accounts_v2.so", outside);
    s_copy (h_path ("plugins/accounts/accounts_v2.so"), file);
    snprintf (s_host.contexts, sizeof s_host.contexts,
              "[{\"name\": \"accounts\", \"plugin\": \"%s/accounts.so\", \"watch\": true}]",
              plugins);
    snprintf (s_host.host_extra, sizeof s_host.host_extra, "\"plugin_dirs\": [\"%s\"]",
              plugins);
    return h_start (&s_host);
}

/* accounts with plugin_dirs [<dir>/plugins, accounts' folder], files
 * copied to <dir>/tmp (TMPDIR), and the host keys in `extra`. */
static int
s_setup_bounded (const char *extra)
{
    if (h_init (&s_host) < 0)
        return -1;
    char plugins[400], tmp[400];
    if (mkdir (s_in_dir (plugins, sizeof plugins, "plugins"), 0755) < 0
        || mkdir (s_in_dir (tmp, sizeof tmp, "tmp"), 0700) < 0)
        return -1;
    setenv ("TMPDIR", tmp, 1);
    char *accounts = s_real_dir ("plugins/accounts/accounts.so");
    snprintf (s_host.host_extra, sizeof s_host.host_extra,
              "\"plugin_dirs\": [\"%s\", \"%s\"]%s%s", plugins, accounts,
              *extra ? ", " : "", extra);
    free (accounts);
    return h_start (&s_host);
}

static int
s_setup_small_limit (void **state)
{
    (void) state;
    return s_setup_bounded ("\"max_plugin_bytes\": 1048576");
}

static int
s_setup_short_timeout (void **state)
{
    (void) state;
    return s_setup_bounded ("\"reload_timeout_ms\": 10");
}

/* --- 1. a plugin from outside runs nothing --------------------------- */

static void
test_a_plugin_from_outside_runs_nothing (void **state)
{
    (void) state;
    char marker[400], outside[400], copy[500];
    s_in_dir (marker, sizeof marker, "marker");
    /* The configured ctor loaded, and its constructor left the marker:
     * the trace works. */
    assert_int_equal (access (marker, F_OK), 0);
    assert_int_equal (unlink (marker), 0);
    s_assert_serves ("ctor", "Do", json_pack ("{s:s}", "id", "x1"));

    /* The same plugin copied to a folder no context's plugin is in. */
    assert_int_equal (mkdir (s_in_dir (outside, sizeof outside, "outside"), 0755), 0);
    snprintf (copy, sizeof copy, "%s/constructor.so", outside);
    s_copy (h_path ("tests/plugins/constructor.so"), copy);
    char *real_copy = realpath (copy, NULL);
    char *accounts = s_real_dir ("plugins/accounts/accounts.so");
    char *tests = s_real_dir ("tests/plugins/constructor.so");
    char *message = s_assert_refused ("ctor", copy, "forbidden", real_copy, accounts, tests,
                                      "host.plugin_dirs", NULL);
    free (message);
    /* Nothing opened it: its constructor did not run. */
    if (access (marker, F_OK) == 0)
        fail_msg ("the refused plugin's constructor ran: %s exists", marker);
    s_wait_context ("ctor", "1.0.0", "outside the folders of contexts[].plugin");
    s_assert_serves ("ctor", "Do", json_pack ("{s:s}", "id", "x2"));
    s_assert_serves ("accounts", "OpenAccount",
                     json_pack ("{s:s, s:s}", "account", "a1", "owner", "Ada"));

    /* From its own folder, the same reload goes in (and runs it). */
    int code;
    json_t *r = s_reload ("ctor", h_path ("tests/plugins/constructor.so"), &code);
    assert_int_equal (code, 0);
    json_decref (r);
    assert_int_equal (access (marker, F_OK), 0);
    s_wait_context ("ctor", "1.0.0", NULL);
    free (real_copy);
    free (accounts);
    free (tests);
}

/* --- 2. a symlink that leads out ------------------------------------- */

static void
test_a_symlink_out_of_plugin_dirs_is_refused (void **state)
{
    (void) state;
    char plugins[400], outside[400], link[500], target[500], inside[500];
    s_in_dir (plugins, sizeof plugins, "plugins");
    s_in_dir (outside, sizeof outside, "outside");
    snprintf (link, sizeof link, "%s/accounts.so", plugins);
    snprintf (target, sizeof target, "%s/accounts_v2.so", outside);
    s_assert_serves ("accounts", "OpenAccount",
                     json_pack ("{s:s, s:s}", "account", "a1", "owner", "Ada"));

    /* The configured file becomes a link out: the watch reloads it, the
     * host resolves it, and refuses. */
    s_link_over (target, link);
    s_wait_context ("accounts", "1.0.0", "outside host.plugin_dirs");
    /* So does a reload of the configured file by the CLI. */
    char *real_target = realpath (target, NULL);
    char *real_plugins = realpath (plugins, NULL);
    char *message = s_assert_refused ("accounts", NULL, "forbidden", link, real_target,
                                      real_plugins, NULL);
    free (message);
    s_assert_serves ("accounts", "Deposit",
                     json_pack ("{s:s, s:i}", "account", "a1", "amount", 5));

    /* A link that stays inside is fine: the watch takes the new version. */
    snprintf (inside, sizeof inside, "%s/accounts_v2.so", plugins);
    s_link_over (inside, link);
    s_wait_context ("accounts", "2.0.0", NULL);
    s_assert_serves ("accounts", "Deposit",
                     json_pack ("{s:s, s:i}", "account", "a1", "amount", 5));

    /* A SIGHUP whose config names a plugin outside: refused whole. */
    FILE *f = fopen (s_host.config, "w");
    assert_non_null (f);
    fprintf (f, "{\"host\": {\"http\": false, \"name\": \"test\", \"api\": \"%s\", \"publish\": \"%s\","
                " \"data\": \"%s/data\", %s},\n \"contexts\": [{\"name\": \"accounts\","
                " \"plugin\": \"%s\"}]}\n", s_host.endpoint, s_host.publish, s_host.dir,
             s_host.host_extra, target);
    fclose (f);
    kill (s_host.pid, SIGHUP);
    long long deadline = h_now_us () + WAIT_S * 1000000LL;
    char *log = NULL;
    int seen = 0;
    while (!seen && h_now_us () < deadline) {
        free (log);
        log = h_read_log (&s_host);
        seen = log && strstr (log, "SIGHUP: the new config is refused");
        if (!seen)
            usleep (20000);
    }
    if (!seen)
        fail_msg ("no SIGHUP refusal in the log within %d s:\n%s", WAIT_S, log ? log : "");
    const char *line = strstr (log, "SIGHUP: the new config is refused");
    h_assert_contains (line, "contexts[0].plugin");
    h_assert_contains (line, real_target);
    free (log);
    s_wait_context ("accounts", "2.0.0", NULL);
    s_assert_serves ("accounts", "Deposit",
                     json_pack ("{s:s, s:i}", "account", "a1", "amount", 5));
    free (real_target);
    free (real_plugins);
}

/* --- 3. a config naming a plugin outside plugin_dirs ----------------- */

static void
test_a_config_plugin_outside_plugin_dirs_is_refused (void **state)
{
    (void) state;
    char plugins[400];
    assert_int_equal (mkdir (s_in_dir (plugins, sizeof plugins, "plugins"), 0755), 0);
    snprintf (s_host.host_extra, sizeof s_host.host_extra, "\"plugin_dirs\": [\"%s\"]",
              plugins);
    assert_int_equal (h_write_config (&s_host), 0);
    char *err = NULL;
    int code = h_run_host_expecting_exit (s_host.config, &err);
    if (code != 1)
        fail_msg ("exit %d (expected 1), log:\n%s", code, err ? err : "");
    char *real = s_real ("plugins/accounts/accounts.so");
    char *real_plugins = realpath (plugins, NULL);
    h_assert_contains (err, "contexts[0].plugin");
    h_assert_contains (err, real);
    h_assert_contains (err, "host.plugin_dirs (");
    h_assert_contains (err, real_plugins);
    free (err);
    free (real);
    free (real_plugins);

    /* A plugin folder that is not there. */
    snprintf (s_host.host_extra, sizeof s_host.host_extra,
              "\"plugin_dirs\": [\"%s/nowhere\"]", s_host.dir);
    assert_int_equal (h_write_config (&s_host), 0);
    code = h_run_host_expecting_exit (s_host.config, &err);
    if (code != 1)
        fail_msg ("exit %d (expected 1), log:\n%s", code, err ? err : "");
    h_assert_contains (err, "host.plugin_dirs[0]");
    h_assert_contains (err, "No such file or directory");
    free (err);
}

/* --- 4. a file over max_plugin_bytes --------------------------------- */

static void
test_a_file_over_max_plugin_bytes_is_refused_by_size (void **state)
{
    (void) state;
    char big[400], tmp[400];
    s_in_dir (big, sizeof big, "plugins/big.so");
    s_sparse (big, 2 * MIB);
    char *message = s_assert_refused ("accounts", big, "too_large", "2097152 bytes",
                                      "host.max_plugin_bytes (1048576)", NULL);
    free (message);
    /* Refused by its size: no copy was made, not even a partial one. */
    assert_int_equal (s_entries (s_in_dir (tmp, sizeof tmp, "tmp")), 0);
    s_wait_context ("accounts", "1.0.0", "host.max_plugin_bytes");
    s_assert_serves ("accounts", "OpenAccount",
                     json_pack ("{s:s, s:s}", "account", "a1", "owner", "Ada"));
}

/* --- 5. a copy that outlasts the reload's timeout -------------------- */

static void
test_a_copy_past_the_timeout_is_given_up (void **state)
{
    (void) state;
    char big[400], huge[400], tmp[400];
    /* Over the default host.max_plugin_bytes (256 MiB): refused by size. */
    s_in_dir (huge, sizeof huge, "plugins/huge.so");
    s_sparse (huge, 300 * MIB);
    char *message = s_assert_refused ("accounts", huge, "too_large", "314572800 bytes",
                                      "host.max_plugin_bytes (268435456)", NULL);
    free (message);

    /* Just under it: the copy begins, and stops at the 10 ms deadline, far
     * short of the 255 MiB (whole, it would take around a second here). */
    s_in_dir (big, sizeof big, "plugins/big.so");
    s_sparse (big, 255 * MIB);
    long long t0 = h_now_us ();
    message = s_assert_refused ("accounts", big, "unavailable", "timed out after 10 ms",
                                "the deadline passed while copying it", NULL);
    long long took_ms = (h_now_us () - t0) / 1000;
    free (message);
    /* A generous bound: only a copy that ignored the deadline altogether
     * on a very slow disk would come near it. */
    if (took_ms > 10000)
        fail_msg ("the reload was answered after %lld ms", took_ms);
    /* The partial copy is gone. */
    assert_int_equal (s_entries (s_in_dir (tmp, sizeof tmp, "tmp")), 0);
    s_wait_context ("accounts", "1.0.0", "timed out");
    s_assert_serves ("accounts", "OpenAccount",
                     json_pack ("{s:s, s:s}", "account", "a1", "owner", "Ada"));
}

static int
s_setup_plain (void **state)
{
    (void) state;
    return h_init (&s_host);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown (test_a_plugin_from_outside_runs_nothing,
                                         s_setup_default, s_teardown),
        cmocka_unit_test_setup_teardown (test_a_symlink_out_of_plugin_dirs_is_refused,
                                         s_setup_symlink, s_teardown),
        cmocka_unit_test_setup_teardown (test_a_config_plugin_outside_plugin_dirs_is_refused,
                                         s_setup_plain, s_teardown),
        cmocka_unit_test_setup_teardown (test_a_file_over_max_plugin_bytes_is_refused_by_size,
                                         s_setup_small_limit, s_teardown),
        cmocka_unit_test_setup_teardown (test_a_copy_past_the_timeout_is_given_up,
                                         s_setup_short_timeout, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
