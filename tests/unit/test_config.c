/*
 * test_config - unit tests of host/config: what a valid config reads as
 * (defaults, every key), and how each kind of bad config is refused: the
 * message always starts with the file, then names the JSON path of the value
 * at fault ("host.bogus: unknown key", "contexts[1].plugin: expected …").
 * Most tests parse a JSON text with bctx_config_parse under the file name
 * "t.json"; the file tests write a real file in a temporary directory.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "protocol.h"

#include <zmq.h>

/* A config with one context and nothing else: the smallest valid one. */
#define ONE_CONTEXT "\"contexts\": [{\"name\": \"accounts\", \"plugin\": \"a.so\"}]"

/* Parses `text` as "t.json" expecting a refusal; checks that the message
 * starts with the file name and contains every NULL-terminated needle. */
static void
s_refused (const char *text, ...)
{
    char err[512] = "";
    bctx_config_t *config = bctx_config_parse (text, "t.json", err, sizeof err);
    if (config) {
        bctx_config_destroy (&config);
        fail_msg ("accepted a bad config: %s", text);
    }
    if (strncmp (err, "t.json: ", 8) != 0)
        fail_msg ("message does not start with the file: \"%s\"", err);
    va_list ap;
    va_start (ap, text);
    for (const char *needle; (needle = va_arg (ap, const char *));)
        if (!strstr (err, needle)) {
            va_end (ap);
            fail_msg ("message \"%s\" lacks \"%s\" (config: %s)", err, needle,
                      text);
        }
    va_end (ap);
}

/* Parses `text` expecting success; fails the test with the message if not. */
static bctx_config_t *
s_accepted (const char *text)
{
    char err[512] = "";
    bctx_config_t *config = bctx_config_parse (text, "t.json", err, sizeof err);
    if (!config)
        fail_msg ("refused a good config: %s (config: %s)", err, text);
    return config;
}

static void
test_defaults (void **state)
{
    (void) state;
    bctx_config_t *c = s_accepted ("{" ONE_CONTEXT "}");
    assert_string_equal (c->path, "t.json");
    assert_string_equal (c->name, "bctx");
    assert_string_equal (c->api, BCTX_DEFAULT_API);
    assert_null (c->publish);
    /* "t.json" is not a file: its folder is the working directory, which
     * relative paths (the default host.data among them) resolve against. */
    char *cwd = realpath (".", NULL), want[4200];
    assert_non_null (cwd);
    assert_string_equal (c->folder, cwd);
    snprintf (want, sizeof want, "%s/%s", cwd, BCTX_DEFAULT_DATA);
    assert_string_equal (c->data, want);
    assert_int_equal (c->max_message, BCTX_DEFAULT_MAX_MESSAGE);
    assert_int_equal (c->max_batch, BCTX_DEFAULT_BATCH);
    assert_int_equal (c->max_events_per_command, BCTX_DEFAULT_MAX_EVENTS);
    assert_int_equal (c->n_contexts, 1);
    assert_string_equal (c->contexts[0].name, "accounts");
    snprintf (want, sizeof want, "%s/a.so", cwd);
    assert_string_equal (c->contexts[0].plugin, want);
    free (cwd);
    /* No "settings": init gets JSON null, never a C NULL. */
    assert_non_null (c->contexts[0].settings);
    assert_true (json_is_null (c->contexts[0].settings));
    bctx_config_destroy (&c);
    assert_null (c);
    /* Idempotent, and harmless on NULL. */
    bctx_config_destroy (&c);
    bctx_config_destroy (NULL);

    /* An empty "host" object changes nothing. */
    c = s_accepted ("{\"host\": {}, " ONE_CONTEXT "}");
    assert_string_equal (c->api, BCTX_DEFAULT_API);
    assert_int_equal (c->max_batch, BCTX_DEFAULT_BATCH);
    bctx_config_destroy (&c);
}

static void
test_every_key (void **state)
{
    (void) state;
    bctx_config_t *c = s_accepted (
        "{\n"
        "  \"host\": {\n"
        "    \"name\": \"bank-a\",\n"
        "    \"api\": \"tcp://127.0.0.1:7800\",\n"
        "    \"publish\": \"tcp://127.0.0.1:7801\",\n"
        "    \"data\": \"/var/lib/bctx\",\n"
        "    \"max_message\": 4096,\n"
        "    \"max_batch\": 7,\n"
        "    \"max_events_per_command\": 12\n"
        "  },\n"
        "  \"contexts\": [\n"
        "    { \"name\": \"accounts\", \"plugin\": \"plugins/accounts.so\",\n"
        "      \"settings\": { \"limit\": 10, \"tags\": [\"a\", \"b\"] } },\n"
        "    { \"name\": \"transfers-2_B\", \"plugin\": \"t.so\" }\n"
        "  ]\n"
        "}\n");
    assert_string_equal (c->name, "bank-a");
    assert_string_equal (c->api, "tcp://127.0.0.1:7800");
    assert_string_equal (c->publish, "tcp://127.0.0.1:7801");
    assert_string_equal (c->data, "/var/lib/bctx");
    assert_int_equal (c->max_message, 4096);
    assert_int_equal (c->max_batch, 7);
    assert_int_equal (c->max_events_per_command, 12);
    assert_int_equal (c->n_contexts, 2);
    assert_string_equal (c->contexts[0].name, "accounts");
    char *cwd = realpath (".", NULL), want[4200];
    assert_non_null (cwd);
    snprintf (want, sizeof want, "%s/plugins/accounts.so", cwd);
    assert_string_equal (c->contexts[0].plugin, want);
    assert_string_equal (c->contexts[1].name, "transfers-2_B");
    snprintf (want, sizeof want, "%s/t.so", cwd);
    assert_string_equal (c->contexts[1].plugin, want);
    free (cwd);
    assert_true (json_is_null (c->contexts[1].settings));
    bctx_config_destroy (&c);
}

/* The limits of host.max_message, host.max_batch and
 * host.max_events_per_command are inclusive. */
static void
test_limits_inclusive (void **state)
{
    (void) state;
    bctx_config_t *c = s_accepted (
        "{\"host\": {\"max_message\": 64, \"max_batch\": 1, \"max_events_per_command\": 1}, "
        ONE_CONTEXT "}");
    assert_int_equal (c->max_message, 64);
    assert_int_equal (c->max_batch, 1);
    assert_int_equal (c->max_events_per_command, 1);
    bctx_config_destroy (&c);
    c = s_accepted ("{\"host\": {\"max_message\": 268435456, \"max_batch\": 65536, "
                    "\"max_events_per_command\": 100000}, " ONE_CONTEXT "}");
    assert_int_equal (c->max_message, 256u * 1024 * 1024);
    assert_int_equal (c->max_batch, 65536);
    assert_int_equal (c->max_events_per_command, 100000);
    bctx_config_destroy (&c);
}

static void
test_settings_passed_as_json (void **state)
{
    (void) state;
    bctx_config_t *c = s_accepted (
        "{\"contexts\": ["
        " {\"name\": \"a\", \"plugin\": \"a.so\","
        "  \"settings\": {\"greeting\": \"hi\", \"n\": 3, \"deep\": {\"x\": [1, null]}}},"
        " {\"name\": \"b\", \"plugin\": \"b.so\", \"settings\": [1, 2]},"
        " {\"name\": \"c\", \"plugin\": \"c.so\", \"settings\": \"text\"},"
        " {\"name\": \"d\", \"plugin\": \"d.so\", \"settings\": null},"
        " {\"name\": \"e\", \"plugin\": \"e.so\"}"
        "]}");
    assert_int_equal (c->n_contexts, 5);
    json_t *want = json_loads (
        "{\"greeting\": \"hi\", \"n\": 3, \"deep\": {\"x\": [1, null]}}", 0, NULL);
    assert_non_null (want);
    assert_true (json_equal (c->contexts[0].settings, want));
    json_decref (want);
    assert_true (json_is_array (c->contexts[1].settings));
    assert_int_equal (json_array_size (c->contexts[1].settings), 2);
    assert_string_equal (json_string_value (c->contexts[2].settings), "text");
    assert_true (json_is_null (c->contexts[3].settings));
    assert_true (json_is_null (c->contexts[4].settings));
    /* The settings outlive the parsed document: the config owns a
     * reference. */
    assert_string_equal (json_string_value (json_object_get (
                             c->contexts[0].settings, "greeting")), "hi");
    bctx_config_destroy (&c);
}

static void
test_unknown_keys (void **state)
{
    (void) state;
    s_refused ("{\"bogus\": 1, " ONE_CONTEXT "}", "bogus: unknown key", NULL);
    s_refused ("{\"host\": {\"name\": \"x\", \"bogus\": true}, " ONE_CONTEXT "}",
               "host.bogus: unknown key", NULL);
    s_refused ("{\"contexts\": ["
               " {\"name\": \"a\", \"plugin\": \"a.so\"},"
               " {\"name\": \"b\", \"plugin\": \"b.so\", \"plugn\": \"typo\"}]}",
               "contexts[1].plugn: unknown key", NULL);
    /* Keys are case-sensitive. */
    s_refused ("{\"Contexts\": []}", "Contexts: unknown key", NULL);

    /* The whole message, once, so its shape is pinned down. */
    char err[256];
    bctx_config_t *c = bctx_config_parse (
        "{\"host\": {\"bogus\": 1}, " ONE_CONTEXT "}", "dir/x.json", err,
        sizeof err);
    assert_null (c);
    assert_string_equal (err, "dir/x.json: host.bogus: unknown key");
}

/* An unknown key near a known one (a typo: two edits at most) names it;
 * one far from every key, or as near to two, names none. */
static void
test_did_you_mean (void **state)
{
    (void) state;
    char err[256];
    bctx_config_t *c = bctx_config_parse ("{\"host\": {\"pubish\": \"tcp://127.0.0.1:1\"}, "
                                          ONE_CONTEXT "}", "t.json", err, sizeof err);
    assert_null (c);
    assert_string_equal (err, "t.json: host.pubish: unknown key (did you mean host.publish?)");
    s_refused ("{\"host\": {\"nmae\": \"x\"}, " ONE_CONTEXT "}",
               "host.nmae: unknown key (did you mean host.name?)", NULL);
    s_refused ("{\"host\": {\"max_mesage\": 4096}, " ONE_CONTEXT "}",
               "(did you mean host.max_message?)", NULL);
    s_refused ("{\"contexts\": [{\"name\": \"a\", \"plugn\": \"a.so\"}]}",
               "contexts[0].plugn: unknown key (did you mean contexts[0].plugin?)", NULL);
    s_refused ("{\"contexts\": [{\"name\": \"a\", \"plugin\": \"a.so\", \"wacth\": true}]}",
               "contexts[0].wacth: unknown key (did you mean contexts[0].watch?)", NULL);
    s_refused ("{\"contxts\": []}", "contxts: unknown key (did you mean contexts?)", NULL);
    s_refused ("{\"peer\": [], " ONE_CONTEXT "}", "peer: unknown key (did you mean peers?)",
               NULL);
    s_refused ("{\"peers\": [{\"name\": \"b\", \"api\": \"tcp://127.0.0.1:1\", \"publsh\": "
               "\"tcp://127.0.0.1:2\"}], " ONE_CONTEXT "}",
               "peers[0].publsh: unknown key (did you mean peers[0].publish?)", NULL);
    /* Far from every key: no guess. */
    c = bctx_config_parse ("{\"host\": {\"bogus\": 1}, " ONE_CONTEXT "}", "t.json", err,
                           sizeof err);
    assert_null (c);
    assert_string_equal (err, "t.json: host.bogus: unknown key");
    c = bctx_config_parse ("{\"host\": {\"publishing_endpoint\": 1}, " ONE_CONTEXT "}",
                           "t.json", err, sizeof err);
    assert_null (c);
    assert_null (strstr (err, "did you mean"));
}

/* Relative paths resolve against the config file's folder, whatever the
 * working directory: "../" and "./" fold into it, an absolute path stays,
 * and a config reached through a symlink is read from where it lies. */
static void
test_relative_to_config (void **state)
{
    (void) state;
    char base[] = "/tmp/bctx-test-config-XXXXXX";
    assert_non_null (mkdtemp (base));
    char *real = realpath (base, NULL);
    assert_non_null (real);
    char dir[300], path[400], link[400], want[600], err[512] = "";
    snprintf (dir, sizeof dir, "%s/etc", base);
    assert_int_equal (mkdir (dir, 0755), 0);
    snprintf (path, sizeof path, "%s/host.json", dir);
    FILE *f = fopen (path, "w");
    assert_non_null (f);
    fputs ("{\"host\": {\"data\": \"../var/data\"}, \"contexts\": ["
           "{\"name\": \"a\", \"plugin\": \"./plugins/a.so\"},"
           "{\"name\": \"b\", \"plugin\": \"/opt/b.so\"},"
           "{\"name\": \"c\", \"plugin\": \"c.so\"}]}", f);
    assert_int_equal (fclose (f), 0);
    /* Read from / and through a symlink in another folder. */
    snprintf (link, sizeof link, "%s/link.json", base);
    assert_int_equal (symlink (path, link), 0);
    int back = open (".", O_RDONLY);
    assert_true (back >= 0);
    assert_int_equal (chdir ("/"), 0);
    for (int i = 0; i < 2; i++) {
        bctx_config_t *c = bctx_config_load (i ? link : path, err, sizeof err);
        if (!c)
            fail_msg ("%s", err);
        snprintf (want, sizeof want, "%s/etc", real);
        assert_string_equal (c->folder, want);
        snprintf (want, sizeof want, "%s/var/data", real);
        assert_string_equal (c->data, want);
        snprintf (want, sizeof want, "%s/etc/plugins/a.so", real);
        assert_string_equal (c->contexts[0].plugin, want);
        assert_string_equal (c->contexts[1].plugin, "/opt/b.so");
        snprintf (want, sizeof want, "%s/etc/c.so", real);
        assert_string_equal (c->contexts[2].plugin, want);
        bctx_config_destroy (&c);
    }
    assert_int_equal (fchdir (back), 0);
    close (back);
    /* The folding stops at the root. */
    char *p = bctx_config_resolve ("/a", "../../x");
    assert_string_equal (p, "/x");
    free (p);
    p = bctx_config_resolve ("/", "./x/../y");
    assert_string_equal (p, "/x/../y");
    free (p);
    p = bctx_config_resolve ("/a/b", "..");
    assert_string_equal (p, "/a");
    free (p);
    unlink (link);
    unlink (path);
    rmdir (dir);
    rmdir (base);
    free (real);
}

static void
test_wrong_types (void **state)
{
    (void) state;
    s_refused ("[]", "(root): expected an object", NULL);
    /* A bare scalar is not even accepted as a JSON document. */
    s_refused ("\"config\"", "line 1, column", NULL);
    s_refused ("{\"host\": [], " ONE_CONTEXT "}", "host: expected an object", NULL);
    s_refused ("{\"host\": {\"api\": 7700}, " ONE_CONTEXT "}",
               "host.api: expected a non-empty string", NULL);
    s_refused ("{\"host\": {\"api\": \"\"}, " ONE_CONTEXT "}",
               "host.api: expected a non-empty string", NULL);
    s_refused ("{\"host\": {\"name\": null}, " ONE_CONTEXT "}", "host.name:", NULL);
    s_refused ("{\"host\": {\"publish\": false}, " ONE_CONTEXT "}",
               "host.publish:", NULL);
    s_refused ("{\"host\": {\"data\": {}}, " ONE_CONTEXT "}", "host.data:", NULL);
    s_refused ("{\"contexts\": {\"name\": \"a\", \"plugin\": \"a.so\"}}",
               "contexts: expected an array", NULL);
    s_refused ("{\"contexts\": \"a.so\"}", "contexts: expected an array", NULL);
    s_refused ("{\"contexts\": [\"a.so\"]}", "contexts[0]: expected an object",
               NULL);
    s_refused ("{\"contexts\": [{\"name\": \"a\", \"plugin\": \"a.so\"},"
               " {\"name\": \"b\", \"plugin\": 3}]}",
               "contexts[1].plugin: expected a non-empty string", NULL);
    s_refused ("{\"contexts\": [{\"name\": [\"a\"], \"plugin\": \"a.so\"}]}",
               "contexts[0].name: expected a non-empty string", NULL);
}

/* host.max_reply: 8 MiB by default, growing with a larger max_message
 * when unset; set, it must leave room for one event of max_message. */
static void
test_max_reply (void **state)
{
    (void) state;
    bctx_config_t *c = s_accepted ("{" ONE_CONTEXT "}");
    assert_int_equal (c->max_reply, BCTX_DEFAULT_MAX_REPLY);
    bctx_config_destroy (&c);
    c = s_accepted ("{\"host\": {\"max_message\": 16777216}, " ONE_CONTEXT "}");
    assert_int_equal (c->max_reply, 16777216 + BCTX_REPLY_SLACK);
    bctx_config_destroy (&c);
    c = s_accepted ("{\"host\": {\"max_message\": 2097152, \"max_reply\": 3145728}, "
                    ONE_CONTEXT "}");
    assert_int_equal (c->max_reply, 3145728);
    bctx_config_destroy (&c);
    c = s_accepted ("{\"host\": {\"max_message\": 1024, \"max_reply\": 66560}, "
                    ONE_CONTEXT "}");
    assert_int_equal (c->max_reply, 1024 + BCTX_REPLY_SLACK);
    bctx_config_destroy (&c);
    s_refused ("{\"host\": {\"max_reply\": 1048576}, " ONE_CONTEXT "}",
               "host.max_reply: 1048576 bytes is too small for host.max_message of 1048576",
               "at least 1114112", NULL);
    s_refused ("{\"host\": {\"max_message\": 1024, \"max_reply\": 66559}, " ONE_CONTEXT "}",
               "host.max_reply:", "at least 66560", NULL);
    s_refused ("{\"host\": {\"max_reply\": \"8MB\"}, " ONE_CONTEXT "}",
               "host.max_reply: expected an integer", NULL);
}

static void
test_numbers_out_of_range (void **state)
{
    (void) state;
    s_refused ("{\"host\": {\"max_message\": \"1MB\"}, " ONE_CONTEXT "}",
               "host.max_message: expected an integer", NULL);
    s_refused ("{\"host\": {\"max_message\": 1048576.0}, " ONE_CONTEXT "}",
               "host.max_message: expected an integer", NULL);
    s_refused ("{\"host\": {\"max_message\": 63}, " ONE_CONTEXT "}",
               "host.max_message: expected an integer from 64 to 268435456",
               NULL);
    s_refused ("{\"host\": {\"max_message\": 268435457}, " ONE_CONTEXT "}",
               "host.max_message:", NULL);
    s_refused ("{\"host\": {\"max_message\": -1}, " ONE_CONTEXT "}",
               "host.max_message:", NULL);
    s_refused ("{\"host\": {\"max_message\": 9223372036854775807}, " ONE_CONTEXT "}",
               "host.max_message:", NULL);
    s_refused ("{\"host\": {\"max_batch\": 0}, " ONE_CONTEXT "}",
               "host.max_batch: expected an integer from 1 to 65536", NULL);
    s_refused ("{\"host\": {\"max_batch\": 65537}, " ONE_CONTEXT "}",
               "host.max_batch:", NULL);
    s_refused ("{\"host\": {\"max_batch\": true}, " ONE_CONTEXT "}",
               "host.max_batch:", NULL);
    s_refused ("{\"host\": {\"max_events_per_command\": 0}, " ONE_CONTEXT "}",
               "host.max_events_per_command: expected an integer from 1 to 100000", NULL);
    s_refused ("{\"host\": {\"max_events_per_command\": 100001}, " ONE_CONTEXT "}",
               "host.max_events_per_command:", NULL);
    s_refused ("{\"contexts\": [{\"name\": \"a\", \"plugin\": \"a.so\", \"reactor_lanes\": 0}]}",
               "contexts[0].reactor_lanes: expected an integer from 1 to 64", NULL);
    s_refused ("{\"contexts\": [{\"name\": \"a\", \"plugin\": \"a.so\", \"reactor_lanes\": 65}]}",
               "contexts[0].reactor_lanes:", NULL);
    bctx_config_t *c = s_accepted ("{\"contexts\": [{\"name\": \"a\", \"plugin\": \"a.so\", "
                                   "\"reactor_lanes\": 64}]}");
    assert_int_equal (c->contexts[0].reactor_lanes, 64);
    bctx_config_destroy (&c);
}

static void
test_missing_keys (void **state)
{
    (void) state;
    s_refused ("{}", "contexts: missing", NULL);
    s_refused ("{\"host\": {\"name\": \"x\"}}", "contexts: missing", NULL);
    s_refused ("{\"contexts\": [{\"plugin\": \"a.so\"}]}",
               "contexts[0].name: missing", NULL);
    s_refused ("{\"contexts\": [{\"name\": \"a\", \"plugin\": \"a.so\"},"
               " {\"name\": \"b\"}]}", "contexts[1].plugin: missing", NULL);
    s_refused ("{\"contexts\": [{}]}", "contexts[0].name: missing", NULL);
}

static void
test_invalid_context_name (void **state)
{
    (void) state;
    s_refused ("{\"contexts\": [{\"name\": \"my accounts\", \"plugin\": \"a.so\"}]}",
               "contexts[0].name:", "\"my accounts\"", "is not a name", NULL);
    s_refused ("{\"contexts\": [{\"name\": \"a.b\", \"plugin\": \"a.so\"}]}",
               "contexts[0].name:", "is not a name", NULL);
    s_refused ("{\"contexts\": [{\"name\": \"../etc\", \"plugin\": \"a.so\"}]}",
               "contexts[0].name:", "is not a name", NULL);
    s_refused ("{\"contexts\": [{\"name\": \"\", \"plugin\": \"a.so\"}]}",
               "contexts[0].name:", NULL);

    /* 64 characters is the longest name; 65 is refused. */
    char name[66];
    memset (name, 'n', 65);
    name[65] = '\0';
    char text[256];
    snprintf (text, sizeof text,
              "{\"contexts\": [{\"name\": \"%s\", \"plugin\": \"a.so\"}]}", name);
    s_refused (text, "contexts[0].name:", "is not a name", NULL);
    name[64] = '\0';
    snprintf (text, sizeof text,
              "{\"contexts\": [{\"name\": \"%s\", \"plugin\": \"a.so\"}]}", name);
    bctx_config_t *c = s_accepted (text);
    assert_int_equal (strlen (c->contexts[0].name), 64);
    bctx_config_destroy (&c);
}

static void
test_duplicate_context_name (void **state)
{
    (void) state;
    s_refused ("{\"contexts\": ["
               " {\"name\": \"accounts\", \"plugin\": \"a.so\"},"
               " {\"name\": \"transfers\", \"plugin\": \"t.so\"},"
               " {\"name\": \"accounts\", \"plugin\": \"b.so\"}]}",
               "contexts[2].name:", "duplicate", "\"accounts\"", "contexts[0]",
               NULL);
    /* Names differing only in case are different contexts. */
    bctx_config_t *c = s_accepted (
        "{\"contexts\": [{\"name\": \"a\", \"plugin\": \"a.so\"},"
        " {\"name\": \"A\", \"plugin\": \"a.so\"}]}");
    assert_int_equal (c->n_contexts, 2);
    bctx_config_destroy (&c);
}

static void
test_malformed_json (void **state)
{
    (void) state;
    /* A missing comma at the start of line 3. */
    s_refused ("{\n  \"host\": {}\n  \"contexts\": []\n}\n", "line 3, column", NULL);
    s_refused ("{\"contexts\": [", "line 1, column", NULL);
    s_refused ("", "line", "column", NULL);
    /* A key given twice is refused rather than silently overwritten. */
    s_refused ("{\"host\": {\"api\": \"tcp://a:1\", \"api\": \"tcp://b:2\"},"
               " " ONE_CONTEXT "}", "line 1, column", "api", NULL);
}

/* A buffer too short for the message gets a truncated, terminated message
 * and no overflow (AddressSanitizer would see one). */
static void
test_short_error_buffer (void **state)
{
    (void) state;
    char *err = malloc (12);
    assert_non_null (err);
    bctx_config_t *c = bctx_config_parse ("{\"host\": {\"bogus\": 1}}",
                                          "a-long-file-name.json", err, 12);
    assert_null (c);
    assert_true (memchr (err, '\0', 12) != NULL);
    assert_int_equal (strncmp (err, "a-long-file", 11), 0);
    c = bctx_config_parse ("{\"host\": {\"bogus\": 1}}", "t.json", err, 12);
    assert_null (c);
    assert_string_equal (err, "t.json: hos");
    free (err);
}

/* bctx_config_load reads a real file; a missing one is refused with its
 * path and the system's reason. */
static void
test_load_file (void **state)
{
    (void) state;
    char dir[] = "/tmp/bctx-test-config-XXXXXX";
    assert_non_null (mkdtemp (dir));
    char path[256];
    snprintf (path, sizeof path, "%s/host.json", dir);

    char err[512] = "";
    bctx_config_t *c = bctx_config_load (path, err, sizeof err);
    assert_null (c);
    assert_int_equal (strncmp (err, path, strlen (path)), 0);
    assert_non_null (strstr (err, "cannot open"));
    assert_non_null (strstr (err, "No such file or directory"));

    FILE *f = fopen (path, "w");
    assert_non_null (f);
    fputs ("{\"host\": {\"name\": \"from-file\"},\n"
           " \"contexts\": [{\"name\": \"accounts\", \"plugin\": \"a.so\","
           " \"settings\": {\"k\": \"v\"}}]}\n", f);
    /* Larger than the loader's first read buffer, to cross a refill. */
    for (int i = 0; i < 3000; i++)
        fputs ("          ", f);
    fputc ('\n', f);
    assert_int_equal (fclose (f), 0);
    c = bctx_config_load (path, err, sizeof err);
    if (!c)
        fail_msg ("%s", err);
    assert_string_equal (c->path, path);
    assert_string_equal (c->name, "from-file");
    assert_int_equal (c->n_contexts, 1);
    assert_string_equal (json_string_value (json_object_get (
                             c->contexts[0].settings, "k")), "v");
    bctx_config_destroy (&c);

    /* A bad file: the message names the file, the path and the fault. */
    f = fopen (path, "w");
    assert_non_null (f);
    fputs ("{\"contexts\": [{\"name\": \"a\"}]}", f);
    assert_int_equal (fclose (f), 0);
    c = bctx_config_load (path, err, sizeof err);
    assert_null (c);
    assert_int_equal (strncmp (err, path, strlen (path)), 0);
    assert_non_null (strstr (err, "contexts[0].plugin: missing"));

    /* An empty file is malformed JSON, not a crash. */
    f = fopen (path, "w");
    assert_non_null (f);
    assert_int_equal (fclose (f), 0);
    c = bctx_config_load (path, err, sizeof err);
    assert_null (c);
    assert_non_null (strstr (err, "line"));

    /* A directory is not a config. */
    c = bctx_config_load (dir, err, sizeof err);
    assert_null (c);
    assert_int_equal (strncmp (err, dir, strlen (dir)), 0);

    assert_int_equal (unlink (path), 0);
    assert_int_equal (rmdir (dir), 0);
}

/* host.clients: a key alone is a client; {key, role} names the role. */
static void
test_client_roles (void **state)
{
    (void) state;
    char pub[41], sec[41], k1[41], s1[41], k2[41], s2[41];
    assert_int_equal (zmq_curve_keypair (pub, sec), 0);
    assert_int_equal (zmq_curve_keypair (k1, s1), 0);
    assert_int_equal (zmq_curve_keypair (k2, s2), 0);
    char text[1024];
    snprintf (text, sizeof text, "{\"host\": {\"curve\": {\"public\": \"%s\", \"secret\": "
              "\"%s\"}, \"clients\": [\"%s\", {\"key\": \"%s\", \"role\": \"admin\"}]}, "
              ONE_CONTEXT "}", pub, sec, k1, k2);
    bctx_config_t *c = s_accepted (text);
    assert_int_equal (c->n_clients, 2);
    assert_string_equal (c->clients[0], k1);
    assert_int_equal (c->client_roles[0], BCTX_ROLE_CLIENT);
    assert_string_equal (c->clients[1], k2);
    assert_int_equal (c->client_roles[1], BCTX_ROLE_ADMIN);
    bctx_config_destroy (&c);
    /* A role that is not client or admin (a peer's is given by peers[]). */
    snprintf (text, sizeof text, "{\"host\": {\"curve\": {\"public\": \"%s\", \"secret\": "
              "\"%s\"}, \"clients\": [{\"key\": \"%s\", \"role\": \"peer\"}]}, "
              ONE_CONTEXT "}", pub, sec, k1);
    s_refused (text, "host.clients[0].role", "\"client\" or \"admin\"", NULL);
    snprintf (text, sizeof text, "{\"host\": {\"curve\": {\"public\": \"%s\", \"secret\": "
              "\"%s\"}, \"clients\": [{\"key\": \"%s\", \"rol\": \"admin\"}]}, "
              ONE_CONTEXT "}", pub, sec, k1);
    s_refused (text, "host.clients[0].rol: unknown key", NULL);
    snprintf (text, sizeof text, "{\"host\": {\"curve\": {\"public\": \"%s\", \"secret\": "
              "\"%s\"}, \"clients\": [{\"role\": \"admin\"}]}, " ONE_CONTEXT "}", pub, sec);
    s_refused (text, "host.clients[0]: expected a 40-character Z85 key", NULL);
}

/* host.plugin_dirs is kept resolved; without it, the folders of
 * contexts[].plugin are (resolved too: a plugin beside "t.json", which
 * is no file, is in the working directory); host.max_plugin_bytes defaults to 256 MiB. */
static void
test_plugin_dirs (void **state)
{
    (void) state;
    char base[] = "/tmp/bctx-test-config-XXXXXX";
    assert_non_null (mkdtemp (base));
    char *real = realpath (base, NULL), *cwd = realpath (".", NULL);
    assert_non_null (real);
    assert_non_null (cwd);
    char text[1024];
    snprintf (text, sizeof text, "{\"host\": {\"plugin_dirs\": [\"%s/\", \"%s\"], "
              "\"max_plugin_bytes\": 4096}, " ONE_CONTEXT "}", base, real);
    bctx_config_t *c = s_accepted (text);
    assert_true (c->plugin_dirs_given);
    assert_int_equal (c->n_plugin_dirs, 1);       /* the same folder twice */
    assert_string_equal (c->plugin_dirs[0], real);
    assert_int_equal (c->max_plugin_bytes, 4096);
    bctx_config_destroy (&c);

    c = s_accepted ("{" ONE_CONTEXT "}");
    assert_false (c->plugin_dirs_given);
    assert_int_equal (c->n_plugin_dirs, 1);
    assert_string_equal (c->plugin_dirs[0], cwd);
    assert_int_equal (c->max_plugin_bytes, 256u * 1024 * 1024);
    bctx_config_destroy (&c);

    /* Folders that are not there, not folders, or not a list. */
    snprintf (text, sizeof text, "{\"host\": {\"plugin_dirs\": [\"%s/nowhere\"]}, "
              ONE_CONTEXT "}", base);
    s_refused (text, "host.plugin_dirs[0]: ", "nowhere: No such file or directory", NULL);
    s_refused ("{\"host\": {\"plugin_dirs\": [\"no-such-folder\"]}, " ONE_CONTEXT "}",
               "host.plugin_dirs[0]: no-such-folder (relative to the config file's folder ",
               cwd, NULL);
    s_refused ("{\"host\": {\"plugin_dirs\": [\"/dev/null\"]}, " ONE_CONTEXT "}",
               "host.plugin_dirs[0]: /dev/null: not a folder", NULL);
    s_refused ("{\"host\": {\"plugin_dirs\": []}, " ONE_CONTEXT "}",
               "host.plugin_dirs: expected a non-empty array", NULL);
    s_refused ("{\"host\": {\"plugin_dirs\": \"/tmp\"}, " ONE_CONTEXT "}",
               "host.plugin_dirs: expected a non-empty array", NULL);
    s_refused ("{\"host\": {\"plugin_dirs\": [3]}, " ONE_CONTEXT "}",
               "host.plugin_dirs[0]: expected a folder's path", NULL);
    s_refused ("{\"host\": {\"max_plugin_bytes\": 10}, " ONE_CONTEXT "}",
               "host.max_plugin_bytes: expected an integer from 4096", NULL);
    rmdir (base);
    free (real);
    free (cwd);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_defaults),
        cmocka_unit_test (test_every_key),
        cmocka_unit_test (test_limits_inclusive),
        cmocka_unit_test (test_settings_passed_as_json),
        cmocka_unit_test (test_unknown_keys),
        cmocka_unit_test (test_did_you_mean),
        cmocka_unit_test (test_relative_to_config),
        cmocka_unit_test (test_wrong_types),
        cmocka_unit_test (test_numbers_out_of_range),
        cmocka_unit_test (test_max_reply),
        cmocka_unit_test (test_missing_keys),
        cmocka_unit_test (test_invalid_context_name),
        cmocka_unit_test (test_duplicate_context_name),
        cmocka_unit_test (test_malformed_json),
        cmocka_unit_test (test_short_error_buffer),
        cmocka_unit_test (test_load_file),
        cmocka_unit_test (test_client_roles),
        cmocka_unit_test (test_plugin_dirs),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
