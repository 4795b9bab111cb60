/*
 * test_loader - unit tests of host/loader against real shared objects: the
 * bank's accounts plugin and the test-only plugins of tests/plugins/ (a
 * wrong ABI, a wrong size, no entry symbol, an init that fails, one that
 * needs a setting) and a text file posing as a .so.  Every refusal must
 * start with the config path passed as `where`, then name the file and the
 * reason.  Built files are found under $BCTX_BUILD (default ".").
 *
 * The group setup points TMPDIR at a fresh directory, so the tests can also
 * check that the loader's temporary copy of each .so is gone once loaded.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "loader.h"

#define WHERE "contexts[0].plugin"

static char s_tmpdir[] = "/tmp/bctx-test-loader-XXXXXX";

/* The path of a built file, relative to the build root (new string). */
static char *
s_built (const char *relative)
{
    const char *root = getenv ("BCTX_BUILD");
    char *path = NULL;
    if (asprintf (&path, "%s/%s", root && *root ? root : ".", relative) < 0)
        return NULL;
    if (access (path, R_OK) != 0)
        fprintf (stderr, "test_loader: %s is not built (set BCTX_BUILD?)\n",
                 path);
    return path;
}

static char *
s_test_plugin (const char *name)
{
    char relative[128];
    snprintf (relative, sizeof relative, "tests/plugins/%s.so", name);
    return s_built (relative);
}

/* Entries in the temporary directory besides . and .. */
static int
s_tmp_entries (void)
{
    DIR *d = opendir (s_tmpdir);
    if (!d)
        return -1;
    int n = 0;
    for (struct dirent *e; (e = readdir (d));)
        if (strcmp (e->d_name, ".") != 0 && strcmp (e->d_name, "..") != 0)
            n++;
    closedir (d);
    return n;
}

/* Loads `path` as context `name` expecting a refusal, and checks the
 * message: it starts with "WHERE: path: " and contains every needle in the
 * NULL-terminated list. */
static void
s_refused (const char *name, const char *path, const json_t *settings, ...)
{
    char err[1024] = "";
    bctx_plugin_t *p = bctx_plugin_load (name, path, settings, NULL, WHERE, NULL, err,
                                         sizeof err);
    if (p) {
        bctx_plugin_destroy (&p);
        fail_msg ("%s loaded, but should have been refused", path);
    }
    char prefix[1024];
    snprintf (prefix, sizeof prefix, "%s: %s: ", WHERE, path);
    if (strncmp (err, prefix, strlen (prefix)) != 0)
        fail_msg ("message \"%s\" does not start with \"%s\"", err, prefix);
    va_list ap;
    va_start (ap, settings);
    for (const char *needle; (needle = va_arg (ap, const char *));)
        if (!strstr (err, needle)) {
            va_end (ap);
            fail_msg ("message \"%s\" lacks \"%s\"", err, needle);
        }
    va_end (ap);
    /* Nothing is left behind in TMPDIR by a refusal either. */
    assert_int_equal (s_tmp_entries (), 0);
}

/* True when `number` appears in `text` as a whole number (not as part of a
 * longer one). */
static int
s_has_number (const char *text, unsigned long number)
{
    char want[32];
    snprintf (want, sizeof want, "%lu", number);
    size_t len = strlen (want);
    for (const char *p = text; (p = strstr (p, want)); p++) {
        int before = p > text && p[-1] >= '0' && p[-1] <= '9';
        int after = p[len] >= '0' && p[len] <= '9';
        if (!before && !after)
            return 1;
    }
    return 0;
}

/* Calls the Deposit command of an accounts plugin on an account holding
 * 10 and checks the event it decides. */
static void
s_deposit_works (const bctx_plugin_t *p)
{
    const bctx_command_t *deposit = bctx_plugin_command (p, "Deposit");
    assert_non_null (deposit);
    json_t *state = json_pack ("{s:s, s:i}", "owner", "ann", "balance", 10);
    json_t *data = json_pack ("{s:s, s:i}", "account", "a1", "amount", 5);
    json_t *events = json_array ();
    bctx_reason_t why = { "" };
    int rc = deposit->decide (p->user, state, data, events, &why);
    assert_int_equal (rc, BCTX_OK);
    assert_int_equal (json_array_size (events), 1);
    json_t *ev = json_array_get (events, 0);
    assert_string_equal (json_string_value (json_object_get (ev, "type")),
                         "Deposited");
    assert_int_equal (json_integer_value (json_object_get (
                          json_object_get (ev, "data"), "balance")), 15);
    json_decref (events);
    json_decref (data);
    json_decref (state);
}

static int
s_setup (void **state)
{
    (void) state;
    if (!mkdtemp (s_tmpdir))
        return -1;
    return setenv ("TMPDIR", s_tmpdir, 1);
}

static int
s_teardown (void **state)
{
    (void) state;
    return rmdir (s_tmpdir);
}

static void
test_accounts_loads (void **state)
{
    (void) state;
    char *path = s_built ("plugins/accounts/accounts.so");
    char err[1024] = "";
    bctx_plugin_t *p = bctx_plugin_load ("accounts", path, NULL, NULL, WHERE, NULL, err,
                                         sizeof err);
    if (!p)
        fail_msg ("%s", err);
    assert_non_null (p->handle);
    assert_non_null (p->desc);
    assert_string_equal (p->desc->name, "accounts");
    assert_non_null (p->desc->version);
    assert_non_null (p->desc->evolve);
    assert_string_equal (p->name, "accounts");
    assert_string_equal (p->path, path);
    assert_int_equal (p->n_commands, 3);
    assert_true (p->initialised);

    const bctx_command_t *c = bctx_plugin_command (p, "Deposit");
    assert_non_null (c);
    assert_string_equal (c->name, "Deposit");
    assert_string_equal (c->aggregate_field, "account");
    assert_non_null (c->decide);
    assert_non_null (bctx_plugin_command (p, "OpenAccount"));
    assert_non_null (bctx_plugin_command (p, "Withdraw"));
    assert_null (bctx_plugin_command (p, "Nope"));
    assert_null (bctx_plugin_command (p, "deposit"));
    assert_null (bctx_plugin_command (p, ""));
    s_deposit_works (p);

    /* The host-services table the plugin got. */
    assert_int_equal (p->host.size, sizeof (bctx_host_t));
    assert_non_null (p->host.log);
    assert_string_equal (p->host.context_name (&p->host), "accounts");

    /* The temporary copy was unlinked as soon as it was open. */
    assert_int_equal (s_tmp_entries (), 0);

    bctx_plugin_destroy (&p);
    assert_null (p);
    free (path);
}

static void
test_destroy_idempotent (void **state)
{
    (void) state;
    char *path = s_built ("plugins/accounts/accounts.so");
    char err[1024] = "";
    bctx_plugin_t *p = bctx_plugin_load ("accounts", path, NULL, NULL, WHERE, NULL, err,
                                         sizeof err);
    if (!p)
        fail_msg ("%s", err);
    bctx_plugin_destroy (&p);
    assert_null (p);
    bctx_plugin_destroy (&p);
    assert_null (p);
    bctx_plugin_destroy (NULL);
    free (path);
}

/* The same path loaded twice gives two independent copies of the code:
 * what a reload relies on.  Unloading one leaves the other working. */
static void
test_same_path_twice (void **state)
{
    (void) state;
    char *path = s_built ("plugins/accounts/accounts.so");
    char err[1024] = "";
    bctx_plugin_t *a = bctx_plugin_load ("accounts", path, NULL, NULL, WHERE, NULL, err,
                                         sizeof err);
    if (!a)
        fail_msg ("%s", err);
    bctx_plugin_t *b = bctx_plugin_load ("accounts", path, NULL, NULL, WHERE, NULL, err,
                                         sizeof err);
    if (!b)
        fail_msg ("%s", err);
    assert_ptr_not_equal (a->handle, b->handle);
    /* Separate mappings: the descriptors and the code live apart. */
    assert_ptr_not_equal (a->desc, b->desc);
    assert_ptr_not_equal ((void *) bctx_plugin_command (a, "Deposit"),
                          (void *) bctx_plugin_command (b, "Deposit"));
    s_deposit_works (a);
    s_deposit_works (b);
    assert_int_equal (s_tmp_entries (), 0);

    bctx_plugin_destroy (&a);
    s_deposit_works (b);
    bctx_plugin_destroy (&b);
    free (path);
}

static void
test_missing_file (void **state)
{
    (void) state;
    s_refused ("accounts", "/nonexistent/dir/accounts.so", NULL,
               "No such file or directory", NULL);
    s_refused ("accounts", s_tmpdir, NULL, "not a regular file", NULL);
}

static void
test_not_a_shared_object (void **state)
{
    (void) state;
    char *path = s_test_plugin ("not_a_plugin");
    s_refused ("accounts", path, NULL, "not a loadable shared object", NULL);
    /* dlerror names the loader's temporary copy; the message must not. */
    char err[1024] = "";
    assert_null (bctx_plugin_load ("accounts", path, NULL, NULL, WHERE, NULL, err,
                                   sizeof err));
    assert_null (strstr (err, "bctx-plugin-"));
    free (path);
}

static void
test_no_entry_symbol (void **state)
{
    (void) state;
    char *path = s_test_plugin ("no_entry");
    s_refused ("no_entry", path, NULL, "entry symbol", BCTX_ENTRY_SYMBOL, NULL);
    free (path);
}

static void
test_wrong_abi (void **state)
{
    (void) state;
    char *path = s_test_plugin ("wrong_abi");
    char err[1024] = "";
    assert_null (bctx_plugin_load ("wrong_abi", path, NULL, NULL, WHERE, NULL, err,
                                   sizeof err));
    s_refused ("wrong_abi", path, NULL, "abi_version", NULL);
    /* Both versions are named: the plugin's and the host's. */
    const char *field = strstr (err, "abi_version");
    assert_non_null (field);
    assert_true (s_has_number (field, BCTX_ABI_VERSION + 1));
    assert_true (s_has_number (field, BCTX_ABI_VERSION));
    /* Only the first differing field is named. */
    assert_null (strstr (err, "context_size"));
    free (path);
}

static void
test_wrong_size (void **state)
{
    (void) state;
    char *path = s_test_plugin ("wrong_size");
    char err[1024] = "";
    assert_null (bctx_plugin_load ("wrong_size", path, NULL, NULL, WHERE, NULL, err,
                                   sizeof err));
    s_refused ("wrong_size", path, NULL, "context_size", NULL);
    const char *field = strstr (err, "context_size");
    assert_non_null (field);
    assert_true (s_has_number (field, sizeof (bctx_context_t)));
    assert_true (s_has_number (field, sizeof (bctx_context_t) + 8));
    assert_null (strstr (err, "abi_version"));
    free (path);
}

static void
test_init_fails (void **state)
{
    (void) state;
    char *path = s_test_plugin ("init_fails");
    /* The plugin's fini aborts: it must not be called after a failed init. */
    s_refused ("init_fails", path, NULL, "init", "\"init_fails\"", NULL);
    free (path);
}

static void
test_name_mismatch (void **state)
{
    (void) state;
    char *path = s_built ("plugins/accounts/accounts.so");
    s_refused ("other", path, NULL, "\"accounts\"", "\"other\"", NULL);
    free (path);
}

/* A plugin of another context is refused for the name, not loaded under
 * the wrong one, even when it would otherwise load. */
static void
test_name_mismatch_test_plugin (void **state)
{
    (void) state;
    char *path = s_test_plugin ("reject_all");
    s_refused ("accounts", path, NULL, "\"reject_all\"", "\"accounts\"", NULL);
    free (path);
}

/* reject_all loads, and its one command rejects with a reason. */
static void
test_reject_all (void **state)
{
    (void) state;
    char *path = s_test_plugin ("reject_all");
    char err[1024] = "";
    bctx_plugin_t *p = bctx_plugin_load ("reject_all", path, NULL, NULL, WHERE, NULL, err,
                                         sizeof err);
    if (!p)
        fail_msg ("%s", err);
    assert_int_equal (p->n_commands, 1);
    const bctx_command_t *c = bctx_plugin_command (p, "Do");
    assert_non_null (c);
    assert_string_equal (c->aggregate_field, "id");
    json_t *data = json_pack ("{s:s}", "id", "x-1");
    json_t *events = json_array ();
    bctx_reason_t why = { "" };
    assert_int_equal (c->decide (p->user, NULL, data, events, &why), BCTX_REJECT);
    assert_int_equal (json_array_size (events), 0);
    assert_non_null (strstr (why.text, "x-1"));
    json_decref (events);
    json_decref (data);
    bctx_plugin_destroy (&p);
    free (path);
}

/* Settings from config reach the plugin's init: needs_setting fails its
 * init without a greeting, and with one, its command emits it. */
static void
test_settings_reach_init (void **state)
{
    (void) state;
    char *path = s_test_plugin ("needs_setting");
    char err[1024] = "";

    /* Without settings (NULL: init gets JSON null), with JSON null, and
     * with a greeting of the wrong type, init fails. */
    s_refused ("needs_setting", path, NULL, "init", NULL);
    json_t *null = json_null ();
    s_refused ("needs_setting", path, null, "init", NULL);
    json_decref (null);
    json_t *bad = json_pack ("{s:i}", "greeting", 5);
    s_refused ("needs_setting", path, bad, "init", NULL);
    json_decref (bad);

    /* fini creates fini_marker: it must not run for a failed init (the
     * greeting of the wrong type below), and must run on destroy. */
    char marker[128];
    snprintf (marker, sizeof marker, "%s/fini-ran", s_tmpdir);
    bad = json_pack ("{s:i, s:s}", "greeting", 5, "fini_marker", marker);
    s_refused ("needs_setting", path, bad, "init", NULL);
    json_decref (bad);
    assert_int_not_equal (access (marker, F_OK), 0);

    json_t *settings = json_pack ("{s:s, s:s}", "greeting", "hello, world",
                                  "fini_marker", marker);
    bctx_plugin_t *p = bctx_plugin_load ("needs_setting", path, settings, NULL,
                                         WHERE, NULL, err, sizeof err);
    if (!p)
        fail_msg ("%s", err);
    /* The loader borrowed the settings: they are still ours, unchanged. */
    assert_int_equal (settings->refcount, 1);
    json_decref (settings);
    assert_non_null (p->user);

    const bctx_command_t *greet = bctx_plugin_command (p, "Greet");
    assert_non_null (greet);
    json_t *data = json_pack ("{s:s}", "id", "g-1");
    json_t *events = json_array ();
    bctx_reason_t why = { "" };
    assert_int_equal (greet->decide (p->user, NULL, data, events, &why), BCTX_OK);
    assert_int_equal (json_array_size (events), 1);
    json_t *ev = json_array_get (events, 0);
    assert_string_equal (json_string_value (json_object_get (ev, "type")),
                         "Greeted");
    json_t *ev_data = json_object_get (ev, "data");
    assert_string_equal (json_string_value (json_object_get (ev_data, "greeting")),
                         "hello, world");
    assert_string_equal (json_string_value (json_object_get (ev_data, "id")),
                         "g-1");
    json_decref (events);
    json_decref (data);
    /* fini ran (and freed what init stored: LeakSanitizer checks that). */
    assert_int_not_equal (access (marker, F_OK), 0);
    bctx_plugin_destroy (&p);
    assert_int_equal (access (marker, F_OK), 0);
    assert_int_equal (unlink (marker), 0);
    free (path);
}

/* Two loads of one plugin with different settings keep separate state. */
static void
test_settings_per_load (void **state)
{
    (void) state;
    char *path = s_test_plugin ("needs_setting");
    char err[1024] = "";
    json_t *s1 = json_pack ("{s:s}", "greeting", "one");
    json_t *s2 = json_pack ("{s:s}", "greeting", "two");
    bctx_plugin_t *a = bctx_plugin_load ("needs_setting", path, s1, NULL, WHERE, NULL, err,
                                         sizeof err);
    if (!a)
        fail_msg ("%s", err);
    bctx_plugin_t *b = bctx_plugin_load ("needs_setting", path, s2, NULL, WHERE, NULL, err,
                                         sizeof err);
    if (!b)
        fail_msg ("%s", err);
    json_decref (s1);
    json_decref (s2);
    const bctx_plugin_t *both[2] = { a, b };
    const char *want[2] = { "one", "two" };
    for (int i = 0; i < 2; i++) {
        json_t *data = json_pack ("{s:s}", "id", "g");
        json_t *events = json_array ();
        bctx_reason_t why = { "" };
        const bctx_command_t *greet = bctx_plugin_command (both[i], "Greet");
        assert_non_null (greet);
        assert_int_equal (greet->decide (both[i]->user, NULL, data, events, &why),
                          BCTX_OK);
        assert_string_equal (json_string_value (json_object_get (
                                 json_object_get (json_array_get (events, 0),
                                                  "data"), "greeting")),
                             want[i]);
        json_decref (events);
        json_decref (data);
    }
    bctx_plugin_destroy (&a);
    bctx_plugin_destroy (&b);
    free (path);
}

/* `where` is whatever the caller passes: the message starts with it. */
static void
test_where_is_the_prefix (void **state)
{
    (void) state;
    char err[1024] = "";
    assert_null (bctx_plugin_load ("x", "/nonexistent.so", NULL, NULL,
                                   "contexts[7].plugin", NULL, err, sizeof err));
    assert_int_equal (strncmp (err, "contexts[7].plugin: /nonexistent.so: ",
                               strlen ("contexts[7].plugin: /nonexistent.so: ")),
                      0);
    assert_null (bctx_plugin_load ("x", "/nonexistent.so", NULL, NULL,
                                   "reload", NULL, err, sizeof err));
    assert_int_equal (strncmp (err, "reload: ", 8), 0);
}

/* --- where a plugin may come from, and how much of it ---------------- */

/* A folder of the plugin-folder tests: "<base>/<name>" (new), created. */
static char *
s_folder (const char *base, const char *name)
{
    char *path = NULL;
    assert_true (asprintf (&path, "%s/%s", base, name) > 0);
    assert_int_equal (mkdir (path, 0755), 0);
    return path;
}

/* Copies the built file `from` to `to`. */
static void
s_copy_file (const char *from, const char *to)
{
    FILE *in = fopen (from, "rb"), *out = fopen (to, "wb");
    assert_non_null (in);
    assert_non_null (out);
    char buf[65536];
    size_t n;
    while ((n = fread (buf, 1, sizeof buf, in)) > 0)
        assert_int_equal (fwrite (buf, 1, n, out), n);
    fclose (in);
    assert_int_equal (fclose (out), 0);
}

/* Removes a tree the plugin-folder tests made (files, links, folders). */
static void
s_remove_tree (const char *path)
{
    DIR *d = opendir (path);
    if (!d) {
        unlink (path);
        return;
    }
    for (struct dirent *e; (e = readdir (d));) {
        if (strcmp (e->d_name, ".") == 0 || strcmp (e->d_name, "..") == 0)
            continue;
        char *child = NULL;
        if (asprintf (&child, "%s/%s", path, e->d_name) > 0)
            s_remove_tree (child);
        free (child);
    }
    closedir (d);
    rmdir (path);
}

/* A fresh folder for one test, resolved (new). */
static char *
s_base (void)
{
    char tmpl[] = "/tmp/bctx-test-dirs-XXXXXX";
    assert_non_null (mkdtemp (tmpl));
    char *real = realpath (tmpl, NULL);
    assert_non_null (real);
    return real;
}

/* The path check compares whole components after resolving symlinks,
 * and its refusal names the resolved path and the allowed folders. */
static void
test_dirs_check (void **state)
{
    (void) state;
    char *base = s_base ();
    char *a = s_folder (base, "a"), *ab = s_folder (base, "ab");
    char inside[600], beside[600], link[600], err[2048] = "", *resolved = NULL;
    snprintf (inside, sizeof inside, "%s/x.so", a);
    snprintf (beside, sizeof beside, "%s/x.so", ab);
    snprintf (link, sizeof link, "%s/link.so", a);
    char *built = s_built ("plugins/accounts/accounts.so");
    s_copy_file (built, inside);
    free (built);
    s_copy_file (inside, beside);
    assert_int_equal (symlink (beside, link), 0);
    char *dirs[] = { a };
    bctx_plugin_bounds_t bounds = { .dirs = dirs, .n_dirs = 1, .dirs_given = 1 };

    /* Inside: allowed, resolved. */
    assert_int_equal (bctx_plugin_dirs_check (&bounds, inside, "reload", &resolved, err,
                                              sizeof err), 0);
    assert_string_equal (resolved, inside);
    free (resolved);
    /* Through a "..": resolved first, so it counts where it lands. */
    char dotted[700];
    snprintf (dotted, sizeof dotted, "%s/../ab/x.so", a);
    assert_int_equal (bctx_plugin_dirs_check (&bounds, dotted, "reload", &resolved, err,
                                              sizeof err), BCTX_ELOADFORBIDDEN);
    assert_null (resolved);
    /* A folder whose name only starts like an allowed one. */
    assert_int_equal (bctx_plugin_dirs_check (&bounds, beside, "reload", &resolved, err,
                                              sizeof err), BCTX_ELOADFORBIDDEN);
    assert_non_null (strstr (err, "host.plugin_dirs ("));
    assert_non_null (strstr (err, a));
    /* A symlink inside that leads out: refused, naming where it leads. */
    assert_int_equal (bctx_plugin_dirs_check (&bounds, link, "reload", &resolved, err,
                                              sizeof err), BCTX_ELOADFORBIDDEN);
    if (strncmp (err, "reload: ", 8) != 0 || !strstr (err, link) || !strstr (err, beside))
        fail_msg ("message \"%s\" should start with \"reload: \" and name %s and %s", err,
                  link, beside);
    /* A path that does not resolve is not refused as forbidden: the
     * loader says it is missing. */
    char missing[600];
    snprintf (missing, sizeof missing, "%s/missing.so", a);
    assert_int_equal (bctx_plugin_dirs_check (&bounds, missing, "reload", &resolved, err,
                                              sizeof err), BCTX_ELOAD);
    assert_non_null (strstr (err, "No such file or directory"));
    /* The default's message says where the folders come from. */
    bounds.dirs_given = 0;
    assert_int_equal (bctx_plugin_dirs_check (&bounds, beside, "reload", &resolved, err,
                                              sizeof err), BCTX_ELOADFORBIDDEN);
    assert_non_null (strstr (err, "the folders of contexts[].plugin"));
    /* "/" holds everything. */
    char *root[] = { "/" };
    bctx_plugin_bounds_t all = { .dirs = root, .n_dirs = 1, .dirs_given = 1 };
    assert_int_equal (bctx_plugin_dirs_check (&all, beside, "reload", &resolved, err,
                                              sizeof err), 0);
    free (resolved);
    s_remove_tree (base);
    free (a);
    free (ab);
    free (base);
}

/* A relative path resolves against the working directory, and the
 * refusal says so. */
static void
test_dirs_check_relative (void **state)
{
    (void) state;
    char *base = s_base ();
    char *a = s_folder (base, "a"), *b = s_folder (base, "b");
    char file[600], err[2048] = "", *resolved = NULL;
    snprintf (file, sizeof file, "%s/x.so", b);
    char *built = s_built ("plugins/accounts/accounts.so");
    s_copy_file (built, file);
    free (built);
    char *dirs[] = { a };
    bctx_plugin_bounds_t bounds = { .dirs = dirs, .n_dirs = 1, .dirs_given = 1 };
    int back = open (".", O_RDONLY | O_DIRECTORY);
    assert_true (back >= 0);
    assert_int_equal (chdir (base), 0);
    int rc = bctx_plugin_dirs_check (&bounds, "b/x.so", "reload", &resolved, err, sizeof err);
    assert_int_equal (fchdir (back), 0);
    close (back);
    assert_int_equal (rc, BCTX_ELOADFORBIDDEN);
    char want[700];
    snprintf (want, sizeof want, "reload: b/x.so (relative to the working directory %s) "
              "resolves to %s, outside host.plugin_dirs (%s)", base, file, a);
    if (strncmp (err, want, strlen (want)) != 0)
        fail_msg ("message \"%s\" does not start with \"%s\"", err, want);
    s_remove_tree (base);
    free (a);
    free (b);
    free (base);
}

/* The loader itself refuses a plugin from outside its folders before it
 * opens it: the constructor of the plugin never runs, nothing is copied.
 * From inside, the same file loads (and its constructor runs: the marker
 * shows the test would see it). */
static void
test_load_outside_dirs_runs_nothing (void **state)
{
    (void) state;
    char *base = s_base ();
    char *in = s_folder (base, "in"), *out = s_folder (base, "out");
    char inside[600], outside[600], marker[600], err[2048] = "";
    snprintf (inside, sizeof inside, "%s/constructor.so", in);
    snprintf (outside, sizeof outside, "%s/constructor.so", out);
    snprintf (marker, sizeof marker, "%s/marker", base);
    char *built = s_test_plugin ("constructor");
    s_copy_file (built, inside);
    s_copy_file (built, outside);
    free (built);
    assert_int_equal (setenv ("BCTX_TEST_MARKER", marker, 1), 0);
    char *dirs[] = { in };
    bctx_plugin_bounds_t bounds = { .dirs = dirs, .n_dirs = 1, .dirs_given = 1,
                                    .max_bytes = 256u * 1024 * 1024 };
    int failure = 0;
    bctx_plugin_t *p = bctx_plugin_load ("ctor", outside, NULL, &bounds, WHERE, &failure,
                                         err, sizeof err);
    assert_null (p);
    assert_int_equal (failure, BCTX_ELOADFORBIDDEN);
    assert_non_null (strstr (err, in));
    assert_int_equal (access (marker, F_OK), -1);
    assert_int_equal (s_tmp_entries (), 0);

    p = bctx_plugin_load ("ctor", inside, NULL, &bounds, WHERE, &failure, err, sizeof err);
    if (!p)
        fail_msg ("%s", err);
    assert_int_equal (access (marker, F_OK), 0);
    bctx_plugin_destroy (&p);
    unsetenv ("BCTX_TEST_MARKER");
    s_remove_tree (base);
    free (in);
    free (out);
    free (base);
}

/* A file over max_bytes is refused by its size, naming it and the key;
 * a deadline already past stops the copy; neither leaves a copy behind. */
static void
test_load_bounded (void **state)
{
    (void) state;
    char *path = s_built ("plugins/accounts/accounts.so");
    char *real = realpath (path, NULL);
    assert_non_null (real);
    char *dir = strdup (real);
    *strrchr (dir, '/') = '\0';
    char *dirs[] = { dir };
    struct stat st;
    assert_int_equal (stat (real, &st), 0);
    bctx_plugin_bounds_t bounds = { .dirs = dirs, .n_dirs = 1, .dirs_given = 1,
                                    .max_bytes = (size_t) st.st_size - 1 };
    char err[2048] = "", size[32];
    int failure = 0;
    assert_null (bctx_plugin_load ("accounts", path, NULL, &bounds, WHERE, &failure, err,
                                   sizeof err));
    assert_int_equal (failure, BCTX_ELOADTOOBIG);
    snprintf (size, sizeof size, "%lld bytes", (long long) st.st_size);
    if (!strstr (err, size) || !strstr (err, "host.max_plugin_bytes"))
        fail_msg ("message \"%s\" should name the size (%s) and host.max_plugin_bytes",
                  err, size);
    assert_int_equal (s_tmp_entries (), 0);

    bounds.max_bytes = (size_t) st.st_size;
    bounds.deadline = 1;          /* long past on CLOCK_MONOTONIC */
    assert_null (bctx_plugin_load ("accounts", path, NULL, &bounds, WHERE, &failure, err,
                                   sizeof err));
    assert_int_equal (failure, BCTX_ELOADTIMEDOUT);
    assert_non_null (strstr (err, "deadline"));
    assert_int_equal (s_tmp_entries (), 0);

    bounds.deadline = 0;
    bctx_plugin_t *p = bctx_plugin_load ("accounts", path, NULL, &bounds, WHERE, &failure,
                                         err, sizeof err);
    if (!p)
        fail_msg ("%s", err);
    bctx_plugin_destroy (&p);
    free (dir);
    free (real);
    free (path);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_accounts_loads),
        cmocka_unit_test (test_destroy_idempotent),
        cmocka_unit_test (test_same_path_twice),
        cmocka_unit_test (test_missing_file),
        cmocka_unit_test (test_not_a_shared_object),
        cmocka_unit_test (test_no_entry_symbol),
        cmocka_unit_test (test_wrong_abi),
        cmocka_unit_test (test_wrong_size),
        cmocka_unit_test (test_init_fails),
        cmocka_unit_test (test_name_mismatch),
        cmocka_unit_test (test_name_mismatch_test_plugin),
        cmocka_unit_test (test_reject_all),
        cmocka_unit_test (test_settings_reach_init),
        cmocka_unit_test (test_settings_per_load),
        cmocka_unit_test (test_where_is_the_prefix),
        cmocka_unit_test (test_dirs_check),
        cmocka_unit_test (test_dirs_check_relative),
        cmocka_unit_test (test_load_outside_dirs_runs_nothing),
        cmocka_unit_test (test_load_bounded),
    };
    return cmocka_run_group_tests (tests, s_setup, s_teardown);
}
