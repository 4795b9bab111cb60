/*
 * cli_new - `bctx new-context NAME [DIR]`: writes a minimal plugin that
 * builds outside the tree with only pkg-config (after `make install`):
 * NAME.c (one command, one event, decide and evolve, one projection),
 * a Makefile, a given-when-then test on bctx/testing.h and cmocka, a
 * config that runs it, and a README saying how.  It runs without a host.
 * Every file is checked before any is written: an existing one refuses
 * the whole run (exit 2), so nothing of the author's is overwritten.
 */
#include "cli.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The plugin.  @NAME@ is the context's name, @ITEMS@ its projection's. */
static const char s_plugin_c[] =
"/*\n"
" * @NAME@ - a bounded context for bctx, written by `bctx new-context @NAME@`.\n"
" *\n"
" * One command, Add {\"item\": ID, \"count\": N}, decided on the item's state\n"
" * (its total so far): N must be a whole number above 0 (else the data is\n"
" * invalid), and a total over S_MAX_TOTAL is rejected (a business rule).\n"
" * Accepted, it records the event Added {\"item\", \"count\", \"total\"};\n"
" * evolve folds each item's total, and the projection @ITEMS@ keeps it as\n"
" * a read model (`bctx query @ITEMS@ ID`).  Grow it from here: the plugin\n"
" * author's guide is docs/plugins.md in the bctx tree.\n"
" */\n"
"#include <bctx/plugin.h>\n"
"\n"
"#include <string.h>\n"
"\n"
"#define S_MAX_TOTAL 1000000\n"
"\n"
"/* Add: decided on state (borrowed, NULL for a new item). */\n"
"static int\n"
"s_add (void *user, const json_t *state, const json_t *data, json_t *events,\n"
"       bctx_reason_t *why)\n"
"{\n"
"    (void) user;\n"
"    json_t *count = json_object_get (data, \"count\");\n"
"    if (!json_is_integer (count) || json_integer_value (count) <= 0) {\n"
"        bctx_reason (why, \"data.count: expected a whole number above 0\");\n"
"        return BCTX_INVALID;\n"
"    }\n"
"    json_int_t total = json_integer_value (json_object_get (state, \"total\"))\n"
"                       + json_integer_value (count);\n"
"    if (total > S_MAX_TOTAL)\n"
"        return bctx_reason (why, \"item %s would hold %lld, over %d\",\n"
"                            json_string_value (json_object_get (data, \"item\")),\n"
"                            (long long) total, S_MAX_TOTAL);\n"
"    json_t *added = json_pack (\"{s:O, s:O, s:I}\", \"item\", json_object_get (data, \"item\"),\n"
"                               \"count\", count, \"total\", total);\n"
"    return added && bctx_emit (events, \"Added\", added) == 0 ? BCTX_OK : BCTX_ERROR;\n"
"}\n"
"\n"
"/* Folds one event into an item's state {\"total\": N}.  state: stolen. */\n"
"static json_t *\n"
"s_evolve (void *user, json_t *state, const char *type, const json_t *data)\n"
"{\n"
"    (void) user;\n"
"    if (!state)\n"
"        state = json_object ();\n"
"    if (state && strcmp (type, \"Added\") == 0)\n"
"        json_object_set (state, \"total\", json_object_get (data, \"total\"));\n"
"    return state;\n"
"}\n"
"\n"
"/* @ITEMS@: each item's total, under the item's id. */\n"
"static int\n"
"s_items (void *user, const bctx_host_t *host, bctx_models_t *models,\n"
"         const bctx_event_t *event)\n"
"{\n"
"    (void) user;\n"
"    json_t *model = json_pack (\"{s:O}\", \"total\", json_object_get (event->data, \"total\"));\n"
"    return model && host->model_put (models, event->aggregate, model) == 0 ? BCTX_OK\n"
"                                                                          : BCTX_ERROR;\n"
"}\n"
"\n"
"static const bctx_command_t s_commands[] = {\n"
"    { .name = \"Add\", .aggregate_field = \"item\", .decide = s_add },\n"
"    { .name = NULL }\n"
"};\n"
"\n"
"static const char *const s_items_consumes[] = { \"@NAME@.Added\", NULL };\n"
"\n"
"static const bctx_projection_t s_projections[] = {\n"
"    { .name = \"@ITEMS@\", .version = 1, .consumes = s_items_consumes, .handle = s_items },\n"
"    { .name = NULL }\n"
"};\n"
"\n"
"static const bctx_context_t s_context = BCTX_CONTEXT_INIT (\n"
"    .name = \"@NAME@\", .version = \"0.1.0\", .commands = s_commands, .evolve = s_evolve,\n"
"    .projections = s_projections);\n"
"\n"
"BCTX_DECLARE_CONTEXT (s_context)\n";

static const char s_test_c[] =
"/*\n"
" * test_@NAME@ - given-when-then tests of the @NAME@ plugin, in process and\n"
" * without a host, with bctx/testing.h and cmocka: `make test`.  The plugin\n"
" * is $BCTX_PLUGIN (default ./@NAME@.so).\n"
" */\n"
"#include <stdarg.h>\n"
"#include <stddef.h>\n"
"#include <stdint.h>\n"
"#include <setjmp.h>\n"
"#include <cmocka.h>\n"
"\n"
"#include <stdlib.h>\n"
"\n"
"#include <bctx/testing.h>\n"
"\n"
"static int\n"
"s_setup (void **state)\n"
"{\n"
"    const char *path = getenv (\"BCTX_PLUGIN\");\n"
"    *state = bctx_testing_open (path && *path ? path : \"./@NAME@.so\", NULL);\n"
"    return *state ? 0 : -1;\n"
"}\n"
"\n"
"static int\n"
"s_teardown (void **state)\n"
"{\n"
"    bctx_testing_destroy ((bctx_testing_t **) state);\n"
"    return 0;\n"
"}\n"
"\n"
"static void\n"
"test_add (void **state)\n"
"{\n"
"    bctx_testing_t *t = *state;\n"
"    assert_int_equal (bctx_testing_when (t, \"Add\", \"{\\\"item\\\":\\\"i1\\\",\\\"count\\\":2}\"), BCTX_OK);\n"
"    bctx_assert_events (t, \"[{\\\"type\\\":\\\"Added\\\",\"\n"
"                           \"\\\"data\\\":{\\\"item\\\":\\\"i1\\\",\\\"count\\\":2,\\\"total\\\":2}}]\");\n"
"    bctx_assert_state (t, \"i1\", \"{\\\"total\\\":2}\");\n"
"}\n"
"\n"
"static void\n"
"test_add_to_a_total (void **state)\n"
"{\n"
"    bctx_testing_t *t = *state;\n"
"    bctx_assert_given (t, \"i1\", \"Added\", \"{\\\"item\\\":\\\"i1\\\",\\\"count\\\":5,\\\"total\\\":5}\");\n"
"    assert_int_equal (bctx_testing_when (t, \"Add\", \"{\\\"item\\\":\\\"i1\\\",\\\"count\\\":3}\"), BCTX_OK);\n"
"    bctx_assert_events (t, \"[{\\\"type\\\":\\\"Added\\\",\"\n"
"                           \"\\\"data\\\":{\\\"item\\\":\\\"i1\\\",\\\"count\\\":3,\\\"total\\\":8}}]\");\n"
"    bctx_assert_state (t, \"i1\", \"{\\\"total\\\":8}\");\n"
"}\n"
"\n"
"static void\n"
"test_count_must_be_positive (void **state)\n"
"{\n"
"    bctx_testing_t *t = *state;\n"
"    bctx_testing_when (t, \"Add\", \"{\\\"item\\\":\\\"i1\\\",\\\"count\\\":0}\");\n"
"    bctx_assert_invalid (t, \"data.count\");\n"
"    bctx_testing_when (t, \"Add\", \"{\\\"item\\\":\\\"i1\\\"}\");\n"
"    bctx_assert_invalid (t, \"data.count\");\n"
"    bctx_assert_state (t, \"i1\", \"null\");\n"
"}\n"
"\n"
"static void\n"
"test_over_the_limit_is_rejected (void **state)\n"
"{\n"
"    bctx_testing_t *t = *state;\n"
"    bctx_assert_given (t, \"i1\", \"Added\", \"{\\\"item\\\":\\\"i1\\\",\\\"count\\\":999999,\"\n"
"                                          \"\\\"total\\\":999999}\");\n"
"    assert_int_equal (bctx_testing_when (t, \"Add\", \"{\\\"item\\\":\\\"i1\\\",\\\"count\\\":2}\"),\n"
"                      BCTX_REJECT);\n"
"    bctx_assert_rejected (t, \"over 1000000\");\n"
"    bctx_assert_state (t, \"i1\", \"{\\\"total\\\":999999}\");\n"
"}\n"
"\n"
"static void\n"
"test_projection_keeps_the_total (void **state)\n"
"{\n"
"    bctx_testing_t *t = *state;\n"
"    assert_int_equal (bctx_testing_project (t, \"@ITEMS@\", \"@NAME@\", \"i1\", \"Added\",\n"
"                                            \"{\\\"item\\\":\\\"i1\\\",\\\"count\\\":4,\\\"total\\\":4}\"),\n"
"                      BCTX_OK);\n"
"    bctx_assert_model (t, \"@ITEMS@\", \"i1\", \"{\\\"total\\\":4}\");\n"
"}\n"
"\n"
"int\n"
"main (void)\n"
"{\n"
"    const struct CMUnitTest tests[] = {\n"
"        cmocka_unit_test_setup_teardown (test_add, s_setup, s_teardown),\n"
"        cmocka_unit_test_setup_teardown (test_add_to_a_total, s_setup, s_teardown),\n"
"        cmocka_unit_test_setup_teardown (test_count_must_be_positive, s_setup, s_teardown),\n"
"        cmocka_unit_test_setup_teardown (test_over_the_limit_is_rejected, s_setup, s_teardown),\n"
"        cmocka_unit_test_setup_teardown (test_projection_keeps_the_total, s_setup, s_teardown),\n"
"    };\n"
"    return cmocka_run_group_tests (tests, NULL, NULL);\n"
"}\n";

static const char s_makefile[] =
"# @NAME@: `make` builds @NAME@.so, a bctx plugin; `make test` runs its\n"
"# given-when-then tests (cmocka, libcmocka-dev); `make clean`.\n"
"# bctx's headers come from pkg-config (bctx-plugin.pc, from `make install`\n"
"# in the bctx tree): set PKG_CONFIG_PATH=PREFIX/lib/pkgconfig when it was\n"
"# installed under a PREFIX pkg-config does not search.\n"
"CC ?= cc\n"
"CFLAGS ?= -std=c11 -Wall -Wextra -Werror -O2 -g\n"
"PKG_CONFIG ?= pkg-config\n"
"BCTX_PLUGIN_FLAGS := $(shell $(PKG_CONFIG) --cflags --libs bctx-plugin)\n"
"ifeq ($(BCTX_PLUGIN_FLAGS),)\n"
"$(error $(PKG_CONFIG) finds no bctx-plugin: run `make install` in the bctx tree, or set PKG_CONFIG_PATH to its PREFIX/lib/pkgconfig)\n"
"endif\n"
"\n"
".PHONY: all test clean\n"
"all: @NAME@.so\n"
"\n"
"@NAME@.so: @NAME@.c\n"
"\t$(CC) $(CFLAGS) -fvisibility=hidden -o $@ $< $(BCTX_PLUGIN_FLAGS) -shared -fPIC\n"
"\n"
"test_@NAME@: test_@NAME@.c\n"
"\t$(CC) $(CFLAGS) -o $@ $< $(BCTX_PLUGIN_FLAGS) -lcmocka -ldl\n"
"\n"
"test: @NAME@.so test_@NAME@\n"
"\tBCTX_PLUGIN=$(CURDIR)/@NAME@.so ./test_@NAME@\n"
"\n"
"clean:\n"
"\trm -f @NAME@.so test_@NAME@\n";

static const char s_config[] =
"{\n"
"  \"host\": { \"name\": \"@NAME@\", \"api\": \"tcp://127.0.0.1:7700\", \"data\": \"data\" },\n"
"  \"contexts\": [\n"
"    { \"name\": \"@NAME@\", \"plugin\": \"@NAME@.so\" }\n"
"  ]\n"
"}\n";

static const char s_readme[] =
"# @NAME@\n"
"\n"
"A bctx bounded context, written by `bctx new-context @NAME@`: the command\n"
"`Add {\"item\", \"count\"}`, the event `Added`, and the projection `@ITEMS@`.\n"
"\n"
"    make                                  # @NAME@.so (pkg-config bctx-plugin)\n"
"    make test                             # given-when-then tests, no host\n"
"    bctx-host @NAME@.json                 # paths in it are relative to its folder\n"
"    bctx send @NAME@ Add '{\"item\":\"i1\",\"count\":2}'\n"
"    bctx events --context @NAME@\n"
"    bctx query @ITEMS@ i1\n"
"\n"
"To add it to another host, put this in that config's `contexts`:\n"
"`{ \"name\": \"@NAME@\", \"plugin\": \"/path/to/@NAME@.so\" }`.\n";

/* One file to write: its name (a format with the context's name) and its
 * text (with @NAME@ and @ITEMS@). */
typedef struct {
    const char *name;             /* e.g. "%s.c" */
    const char *text;             /* the template */
} s_file_t;

static const s_file_t s_files[] = {
    { "%s.c", s_plugin_c },
    { "test_%s.c", s_test_c },
    { "Makefile", s_makefile },
    { "%s.json", s_config },
    { "README.md", s_readme },
};

#define S_N_FILES (sizeof s_files / sizeof s_files[0])

/* text with every @NAME@ as name and @ITEMS@ as items.  Return: new. */
static char *
s_fill (const char *text, const char *name, const char *items)
{
    size_t cap = strlen (text) * 2 + 4096, len = 0;
    char *out = bctx_malloc (cap);
    for (const char *p = text; *p;) {
        const char *with = strncmp (p, "@NAME@", 6) == 0 ? name
                           : strncmp (p, "@ITEMS@", 7) == 0 ? items : NULL;
        size_t take = with ? strlen (with) : 1;
        if (len + take + 1 > cap)
            out = bctx_realloc (out, cap = cap * 2 + take);
        memcpy (out + len, with ? with : p, take);
        len += take;
        p += with ? (with == name ? 6 : 7) : 1;
    }
    out[len] = '\0';
    return out;
}

/* Writes text as the new file path (never over an existing one).
 * Return 0, or -1 after printing why. */
static int
s_write (const char *path, const char *text)
{
    int fd = open (path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    size_t len = strlen (text), done = 0;
    while (fd >= 0 && done < len) {
        ssize_t n = write (fd, text + done, len - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        done += (size_t) n;
    }
    if (fd < 0 || done < len || close (fd) != 0) {
        fprintf (stderr, "bctx new-context: cannot write %s: %s\n", path, strerror (errno));
        return -1;
    }
    return 0;
}

/* The paths of the files under dir, into paths (S_N_FILES of PATH_MAX).
 * Return 0, or the exit code after printing which exist already. */
static int
s_paths (const char *dir, const char *name, char paths[][PATH_MAX])
{
    int taken = 0;
    for (size_t i = 0; i < S_N_FILES; i++) {
        char file[128];
        snprintf (file, sizeof file, s_files[i].name, name);
        snprintf (paths[i], PATH_MAX, "%s/%s", dir, file);
        if (access (paths[i], F_OK) == 0) {
            fprintf (stderr, "bctx new-context: %s exists already\n", paths[i]);
            taken = 1;
        }
    }
    if (taken)
        fprintf (stderr, "bctx new-context: nothing written: overwrite nothing; choose "
                 "another DIR or move those files away\n");
    return taken ? BCTX_CLI_USAGE : -1;
}

int
bctx_cli_new_context (bctx_cli_t *c, int argc, char **argv)
{
    const char *pos[2];
    int npos;
    int code = bctx_cli_parse (c, argc, argv, NULL, pos, 1, 2, &npos);
    if (code >= 0)
        return code;
    const char *name = pos[0];
    if (!bctx_name_valid (name))
        return bctx_cli_usage_error (c->sub, "NAME \"%s\" is not a context's name (1-64 of "
                                     "A-Z a-z 0-9 _ -, as contexts[].name takes)", name);
    const char *dir = npos > 1 ? pos[1] : name;
    char paths[S_N_FILES][PATH_MAX], err[PATH_MAX + 128];
    if ((code = s_paths (dir, name, paths)) >= 0)
        return code;
    if (bctx_mkdirs (dir, 0755, err, sizeof err) < 0) {
        fprintf (stderr, "bctx new-context: DIR: %s\n", err);
        return BCTX_CLI_ERROR;
    }
    /* The projection's name is unique in a host: the context's, suffixed
     * when that fits the 64 characters a name may have. */
    char items[80];
    snprintf (items, sizeof items, strlen (name) <= 58 ? "%s-items" : "%s", name);
    json_t *files = json_array ();
    for (size_t i = 0; i < S_N_FILES && code < 0; i++) {
        char *text = s_fill (s_files[i].text, name, items);
        if (s_write (paths[i], text) < 0)
            code = BCTX_CLI_ERROR;
        else
            json_array_append_new (files, json_string (paths[i]));
        free (text);
    }
    if (code >= 0) {
        json_decref (files);
        return code;
    }
    char next[PATH_MAX * 2 + 64];
    snprintf (next, sizeof next, "make -C %s && make -C %s test", dir, dir);
    json_t *reply = json_pack ("{s:b, s:s, s:s, s:o, s:s}", "ok", 1, "context", name,
                               "dir", dir, "files", files, "next", next);
    code = bctx_cli_show (c, c->sub, reply);
    json_decref (reply);
    return code;
}
