/*
 * test_install - the SDK as a plugin author outside the tree uses it:
 * `make install` into a temporary prefix, a plugin written there and
 * built with only `pkg-config --cflags --libs bctx-plugin` (PKG_CONFIG_PATH
 * into the prefix), loaded by the installed bctx-host, a command sent with
 * the installed bctx, and the event read back; then `make uninstall`
 * leaves none of the installed files.  And `bctx new-context` as an
 * author starts with it: the plugin it writes builds with its Makefile
 * (pkg-config only), its cmocka test passes, the installed host loads it
 * and serves its command and projection; a second run or a bad name is
 * refused with exit 2 and nothing overwritten.
 */
#include "harness.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

/* A minimal plugin, as an author would write it against <bctx/plugin.h>. */
static const char s_plugin[] =
    "#include <bctx/plugin.h>\n"
    "#include <string.h>\n"
    "static int s_add (void *u, const json_t *state, const json_t *data, json_t *events,\n"
    "                  bctx_reason_t *why) {\n"
    "    (void) u; (void) state; (void) why;\n"
    "    return bctx_emit (events, \"Added\", json_deep_copy (data)) == 0 ? BCTX_OK : BCTX_ERROR;\n"
    "}\n"
    "static json_t *s_evolve (void *u, json_t *s, const char *t, const json_t *d) {\n"
    "    (void) u; (void) t; (void) d; json_decref (s); return json_object ();\n"
    "}\n"
    "static const bctx_command_t s_cmds[] = { { .name = \"Add\", .aggregate_field = \"sku\",\n"
    "    .decide = s_add }, { .name = NULL } };\n"
    "static const bctx_context_t s_ctx = BCTX_CONTEXT_INIT (.name = \"inventory\",\n"
    "    .version = \"0.1.0\", .commands = s_cmds, .evolve = s_evolve);\n"
    "BCTX_DECLARE_CONTEXT (s_ctx)\n";

static void
test_install_build_load_send (void **state)
{
    (void) state;
    h_host_t h;
    assert_int_equal (h_init (&h), 0);
    const char *source = getenv ("BCTX_SOURCE");
    char build[1024], prefix[512];
    snprintf (build, sizeof build, "%s", h_build ());
    snprintf (prefix, sizeof prefix, "%s/prefix", h.dir);
    assert_int_equal (h_sh ("make -s -C '%s' O='%s' PREFIX='%s' DESTDIR= install >/dev/null",
                            source ? source : ".", build, prefix), 0);
    char path[1024];
    snprintf (path, sizeof path, "%s/plugin.c", h.dir);
    FILE *f = fopen (path, "w");
    assert_non_null (f);
    fputs (s_plugin, f);
    fclose (f);
    /* Only pkg-config says where the headers are. */
    assert_int_equal (h_sh ("cd '%s' && PKG_CONFIG_PATH='%s/lib/pkgconfig' sh -c "
                            "'cc -std=c11 -Wall -Werror plugin.c -o inventory.so "
                            "$(pkg-config --cflags --libs bctx-plugin) -shared -fPIC'",
                            h.dir, prefix), 0);
    snprintf (h.contexts, sizeof h.contexts,
              "[{\"name\": \"inventory\", \"plugin\": \"%s/inventory.so\"}]", h.dir);
    /* From here the harness runs the installed bctx-host and bctx. */
    setenv ("BCTX_BUILD", prefix, 1);
    assert_string_equal (h_path ("bin/bctx-host"), strcat (strcpy (path, prefix), "/bin/bctx-host"));
    assert_int_equal (h_start (&h), 0);
    char *out = NULL;
    int code = h_cli (&h, &out, "send", "inventory", "Add", "{\"sku\":\"s1\",\"n\":3}", NULL);
    assert_int_equal (code, 0);
    free (out);
    json_t *events = h_events (&h, "inventory");
    assert_non_null (events);
    char *text = json_dumps (events, JSON_COMPACT);
    assert_non_null (strstr (text, "\"Added\""));
    assert_non_null (strstr (text, "\"s1\""));
    free (text);
    json_decref (events);
    assert_int_equal (h_sh ("make -s -C '%s' O='%s' PREFIX='%s' DESTDIR= uninstall",
                            source ? source : ".", build, prefix), 0);
    assert_int_equal (h_sh ("test -d '%s' && test -z \"$(find '%s' -type f)\"", prefix,
                            prefix), 0);
    assert_int_equal (h_teardown (&h), 0);
    setenv ("BCTX_BUILD", build, 1);
}

/* Runs the installed bctx (BCTX_BUILD is the prefix) with argv, stdout
 * into *out (new).  Return its exit code. */
static int
s_bctx (char **out, char *const argv[])
{
    return h_cli_argv (out, argv);
}

static void
test_new_context (void **state)
{
    (void) state;
    h_host_t h;
    assert_int_equal (h_init (&h), 0);
    const char *source = getenv ("BCTX_SOURCE");
    char build[1024], prefix[512], dir[512], pc[600];
    snprintf (build, sizeof build, "%s", h_build ());
    snprintf (prefix, sizeof prefix, "%s/prefix", h.dir);
    snprintf (dir, sizeof dir, "%s/src/inventory", h.dir);
    snprintf (pc, sizeof pc, "PKG_CONFIG_PATH='%s/lib/pkgconfig'", prefix);
    assert_int_equal (h_sh ("make -s -C '%s' O='%s' PREFIX='%s' DESTDIR= install >/dev/null",
                            source ? source : ".", build, prefix), 0);
    setenv ("BCTX_BUILD", prefix, 1);
    char *out = NULL;
    char *a1[] = { "bctx", "new-context", "inventory", dir, NULL };
    assert_int_equal (s_bctx (&out, a1), 0);
    json_t *j = h_json (out);                     /* piped: one JSON line */
    assert_true (h_ok (j));
    assert_int_equal (json_array_size (json_object_get (j, "files")), 5);
    json_decref (j);
    free (out);
    /* Its Makefile builds it with only pkg-config, and its test passes. */
    assert_int_equal (h_sh ("%s make -s -C '%s' >/dev/null", pc, dir), 0);
    assert_int_equal (h_sh ("%s make -s -C '%s' test >'%s/unit.out' 2>&1", pc, dir, h.dir), 0);
    char path[1024];
    snprintf (path, sizeof path, "%s/unit.out", h.dir);
    FILE *f = fopen (path, "r");
    assert_non_null (f);
    char text[8192] = "";
    size_t n = fread (text, 1, sizeof text - 1, f);
    text[n] = '\0';
    fclose (f);
    h_assert_contains (text, "[  PASSED  ] 5 test(s).");
    /* Twice: refused, exit 2, naming a file, and the file kept. */
    snprintf (path, sizeof path, "%s/inventory.c", dir);
    assert_int_equal (h_sh ("echo '/* mine */' >> '%s'", path), 0);
    assert_int_equal (h_sh ("'%s/bin/bctx' new-context inventory '%s' 2>'%s/again.err'", prefix,
                            dir, h.dir) >> 8, 2);
    assert_int_equal (h_sh ("grep -q 'inventory.c exists already' '%s/again.err'", h.dir), 0);
    assert_int_equal (h_sh ("tail -1 '%s' | grep -q mine", path), 0);
    char *a2[] = { "bctx", "new-context", "no/good", NULL };
    assert_int_equal (s_bctx (&out, a2), 2);
    free (out);
    char *a3[] = { "bctx", "new-context", "--help", NULL };
    assert_int_equal (s_bctx (&out, a3), 0);
    h_assert_contains (out, "new-context NAME [DIR]");
    free (out);
    /* The installed host loads it: its command, its event, its projection. */
    snprintf (h.contexts, sizeof h.contexts,
              "[{\"name\": \"inventory\", \"plugin\": \"%s/inventory.so\"}]", dir);
    assert_int_equal (h_start (&h), 0);
    assert_int_equal (h_cli (&h, &out, "send", "inventory", "Add",
                             "{\"item\":\"i1\",\"count\":3}", NULL), 0);
    free (out);
    assert_int_equal (h_cli (&h, &out, "send", "inventory", "Add",
                             "{\"item\":\"i1\",\"count\":0}", NULL), 1);
    h_assert_contains (out, "data.count");
    free (out);
    json_t *events = h_events (&h, "inventory");
    assert_int_equal (json_array_size (events), 1);
    json_t *e = json_array_get (events, 0);
    h_assert_str (h_str (e, "type"), "Added");
    assert_int_equal (h_int (json_object_get (e, "data"), "total"), 3);
    json_decref (events);
    json_t *model = NULL;
    for (int i = 0; i < 100; i++) {                  /* the projection catches up */
        json_decref (model);
        model = h_cli_json (&h, 5, NULL, "query", "inventory-items", "i1", NULL);
        if (h_ok (model) && h_int_at (model, "value.total") == 3)
            break;
        usleep (50000);
    }
    assert_true (h_ok (model));
    assert_int_equal (h_int_at (model, "value.total"), 3);
    json_decref (model);
    assert_int_equal (h_teardown (&h), 0);
    setenv ("BCTX_BUILD", build, 1);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_install_build_load_send),
        cmocka_unit_test (test_new_context),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
