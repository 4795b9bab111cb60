/*
 * test_install - the SDK as a plugin author outside the tree uses it:
 * `make install` into a temporary prefix, a plugin written there and
 * built with only `pkg-config --cflags --libs bctx-plugin` (PKG_CONFIG_PATH
 * into the prefix), loaded by the installed bctx-host, a command sent with
 * the installed bctx, and the event read back; then `make uninstall`
 * leaves none of the installed files.
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

/* Runs a shell command line built printf-style.  Return its exit status. */
static int s_sh (const char *fmt, ...) __attribute__ ((format (printf, 1, 2)));
static int
s_sh (const char *fmt, ...)
{
    char *line = NULL;
    va_list ap;
    va_start (ap, fmt);
    int n = vasprintf (&line, fmt, ap);
    va_end (ap);
    assert_true (n > 0);
    int rc = system (line);
    free (line);
    return rc;
}

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
    assert_int_equal (s_sh ("make -s -C '%s' O='%s' PREFIX='%s' DESTDIR= install >/dev/null",
                            source ? source : ".", build, prefix), 0);
    char path[1024];
    snprintf (path, sizeof path, "%s/plugin.c", h.dir);
    FILE *f = fopen (path, "w");
    assert_non_null (f);
    fputs (s_plugin, f);
    fclose (f);
    /* Only pkg-config says where the headers are. */
    assert_int_equal (s_sh ("cd '%s' && PKG_CONFIG_PATH='%s/lib/pkgconfig' sh -c "
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
    assert_int_equal (s_sh ("make -s -C '%s' O='%s' PREFIX='%s' DESTDIR= uninstall",
                            source ? source : ".", build, prefix), 0);
    assert_int_equal (s_sh ("test -d '%s' && test -z \"$(find '%s' -type f)\"", prefix,
                            prefix), 0);
    assert_int_equal (h_teardown (&h), 0);
    setenv ("BCTX_BUILD", build, 1);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_install_build_load_send),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
