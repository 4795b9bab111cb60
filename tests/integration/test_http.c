/*
 * test_http - the HTTP/JSON gateway of a real host: each route, the
 * error statuses, admin refusal without and with the token, an oversize
 * body, and /metrics parsed by python3-prometheus-client (every family
 * typed; commands, their latency histogram and commit time moving with
 * commands; a reload counted with its pause).  The client is curl.
 */
#include "harness.h"

#include <stdarg.h>
#include <setjmp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

static h_host_t s_host;
static char s_base[64];
static char s_dir_file[400];

/* Runs curl with the given arguments after the URL path; returns the
 * HTTP status, the body in *body (new). */
static int
s_curl (char **body, const char *method, const char *path, const char *extra)
{
    char cmd[2048], out[400];
    snprintf (out, sizeof out, "%s/curl.out", s_host.dir);
    snprintf (cmd, sizeof cmd, "curl -s -m 20 -o '%s' -w '%%{http_code}' -X %s %s '%s%s'",
              out, method, extra ? extra : "", s_base, path);
    FILE *p = popen (cmd, "r");
    assert_non_null (p);
    int status = 0;
    if (fscanf (p, "%d", &status) != 1)
        status = -1;
    pclose (p);
    FILE *f = fopen (out, "r");
    char *text = calloc (1, 1 << 20);
    if (f) {
        size_t n = fread (text, 1, (1 << 20) - 1, f);
        text[n] = '\0';
        fclose (f);
    }
    *body = text;
    return status;
}

/* The status of a request, with its body's error code checked. */
static void
s_expect (const char *method, const char *path, const char *extra, int status,
          const char *code)
{
    char *body;
    int got = s_curl (&body, method, path, extra);
    if (got != status)
        fprintf (stderr, "%s %s: %d %s\n", method, path, got, body);
    assert_int_equal (got, status);
    json_t *j = h_json (body);
    assert_non_null (j);
    if (code)
        assert_string_equal (h_error_code (j), code);
    else
        assert_true (h_ok (j));
    json_decref (j);
    free (body);
}

static void
test_routes (void **state)
{
    (void) state;
    s_expect ("POST", "/contexts/accounts/commands/OpenAccount",
              "-H 'Idempotency-Key: open-a1' -d '{\"account\":\"a1\",\"owner\":\"Ann\"}'",
              200, NULL);
    s_expect ("POST", "/contexts/accounts/commands/Deposit",
              "-d '{\"account\":\"a1\",\"amount\":5}'", 200, NULL);
    s_expect ("GET", "/contexts", NULL, 200, NULL);
    s_expect ("GET", "/stats", NULL, 200, NULL);
    char *body;
    assert_int_equal (s_curl (&body, "GET", "/contexts/accounts/events?from=1&limit=10", NULL),
                      200);
    json_t *j = h_json (body);
    assert_int_equal (json_array_size (json_object_get (j, "events")), 2);
    json_decref (j);
    free (body);
    /* The same Idempotency-Key again: the same command, no new event. */
    s_expect ("POST", "/contexts/accounts/commands/OpenAccount",
              "-H 'Idempotency-Key: open-a1' -d '{\"account\":\"a1\",\"owner\":\"Ann\"}'",
              200, NULL);
    assert_int_equal (s_curl (&body, "GET", "/contexts/accounts/events", NULL), 200);
    j = h_json (body);
    assert_int_equal (json_array_size (json_object_get (j, "events")), 2);
    json_decref (j);
    free (body);
}

static void
test_errors (void **state)
{
    (void) state;
    s_expect ("POST", "/contexts/accounts/commands/OpenAccount", "-d '{\"account\":'", 400,
              "bad_request");
    s_expect ("GET", "/nowhere", NULL, 400, "bad_request");
    s_expect ("GET", "/contexts/accounts/events?from=x", NULL, 400, "bad_request");
    s_expect ("POST", "/contexts/nosuch/commands/X", "-d '{}'", 404, "unknown_context");
    s_expect ("POST", "/contexts/accounts/commands/Nope", "-d '{}'", 404, "unknown_command");
    s_expect ("GET", "/projections/nosuch/k", NULL, 404, "unknown_projection");
    s_expect ("POST", "/contexts/accounts/commands/Withdraw",
              "-d '{\"account\":\"a1\",\"amount\":1000}'", 422, "rejected");
    /* Oversize: host.max_message is 4096 here. */
    char extra[600];
    snprintf (extra, sizeof extra, "-H 'Content-Type: application/json' --data-binary @%s",
              s_dir_file);
    s_expect ("POST", "/contexts/accounts/commands/Deposit", extra, 413, "too_large");
}

static void
test_admin (void **state)
{
    (void) state;
    s_expect ("POST", "/contexts/accounts/reload", NULL, 403, "forbidden");
    s_expect ("POST", "/contexts/accounts/reload", "-H 'Authorization: Bearer wrong'", 403,
              "forbidden");
    /* With the token the op reaches the admin endpoint: a reactor that
     * does not exist is the API's own answer, not a refusal. */
    char *body;
    int status = s_curl (&body, "POST", "/reactors/nosuch/retry",
                         "-H 'Authorization: Bearer s3cret'");
    json_t *j = h_json (body);
    assert_non_null (j);
    assert_int_not_equal (status, 403);
    assert_string_not_equal (h_error_code (j) ? h_error_code (j) : "", "forbidden");
    json_decref (j);
    free (body);
}

/* /metrics as python3-prometheus-client's parser reads it:
 * {"types": {family: type}, "samples": [[name, {label: value}, number]]}.
 * Return: new. */
static json_t *
s_scrape (void)
{
    char *body;
    assert_int_equal (s_curl (&body, "GET", "/metrics", NULL), 200);
    free (body);
    char cmd[1200], out[400];
    snprintf (out, sizeof out, "%s/curl.out", s_host.dir);
    snprintf (cmd, sizeof cmd, "/usr/bin/python3 -c 'import sys, json\n"
              "from prometheus_client.parser import text_string_to_metric_families as f\n"
              "types, samples = {}, []\n"
              "for m in f(open(sys.argv[1]).read()):\n"
              "  types[m.name] = m.type\n"
              "  samples += [[s.name, s.labels, s.value] for s in m.samples]\n"
              "print(json.dumps({\"types\": types, \"samples\": samples}))' '%s'", out);
    FILE *p = popen (cmd, "r");
    assert_non_null (p);
    char *text = calloc (1, 1 << 20);
    size_t len = fread (text, 1, (1 << 20) - 1, p);
    text[len] = '\0';
    assert_int_equal (pclose (p), 0);
    json_t *scrape = h_json (text);
    free (text);
    assert_non_null (scrape);
    return scrape;
}

/* labels' value of key, or "" (borrowed). */
static const char *
s_label (const json_t *labels, const char *key)
{
    const char *v = h_str (labels, key);
    return v ? v : "";
}

/* The value of sample name whose labels are context="accounts" and, when
 * key is given, key=value; -1 when there is none. */
static double
s_value (json_t *scrape, const char *name, const char *key, const char *value)
{
    size_t i;
    json_t *s;
    json_array_foreach (json_object_get (scrape, "samples"), i, s) {
        json_t *labels = json_array_get (s, 1);
        if (strcmp (json_string_value (json_array_get (s, 0)), name) != 0
            || json_object_size (labels) != (key ? 2u : 1u)
            || strcmp (s_label (labels, "context"), "accounts") != 0
            || (key && strcmp (s_label (labels, key), value) != 0))
            continue;
        return json_number_value (json_array_get (s, 2));
    }
    return -1;
}

/* Every family has its # TYPE: none is "unknown" to the parser. */
static void
s_all_typed (json_t *scrape)
{
    const char *name;
    json_t *type;
    json_object_foreach (json_object_get (scrape, "types"), name, type) {
        if (strcmp (json_string_value (type), "unknown") == 0)
            fprintf (stderr, "family %s has no # TYPE\n", name);
        assert_string_not_equal (json_string_value (type), "unknown");
    }
    assert_true (json_object_size (json_object_get (scrape, "types")) > 30);
}

/* accounts' buckets of histogram name are cumulative and end in +Inf,
 * equal to its _count.  Return that count. */
static double
s_histogram (json_t *scrape, const char *name)
{
    char bucket[128], count[128];
    snprintf (bucket, sizeof bucket, "%s_bucket", name);
    snprintf (count, sizeof count, "%s_count", name);
    double last_le = -1, last = 0;
    int buckets = 0;
    size_t i;
    json_t *s;
    json_array_foreach (json_object_get (scrape, "samples"), i, s) {
        json_t *labels = json_array_get (s, 1);
        if (strcmp (json_string_value (json_array_get (s, 0)), bucket) != 0
            || strcmp (s_label (labels, "context"), "accounts") != 0)
            continue;
        double le = strtod (s_label (labels, "le"), NULL);
        double v = json_number_value (json_array_get (s, 2));
        assert_true (le > last_le);          /* in order of their bounds */
        assert_true (v >= last);             /* cumulative */
        last_le = le, last = v;
        buckets++;
    }
    assert_int_equal (buckets, 16);
    assert_true (last_le > 1e300);           /* the last is +Inf */
    assert_true (last == s_value (scrape, count, NULL, NULL));
    return last;
}

/* Commands, their latency and commits move with commands; a reload
 * counts once as "ok" with one pause; the command latency lives in the
 * supervisor, so it goes on across the reload's new process. */
static void
test_metrics (void **state)
{
    (void) state;
    enum { N = 5 };
    json_t *m = s_scrape ();
    s_all_typed (m);
    double accepted = s_value (m, "bctx_commands_total", "outcome", "accepted");
    double commands = s_histogram (m, "bctx_command_duration_seconds");
    double reloads = s_value (m, "bctx_reloads_total", "outcome", "ok");
    double pauses = s_histogram (m, "bctx_reload_pause_seconds");
    assert_true (accepted >= 0 && reloads >= 0);
    json_decref (m);
    for (int i = 0; i < N; i++)
        s_expect ("POST", "/contexts/accounts/commands/Deposit",
                  "-d '{\"account\":\"a1\",\"amount\":1}'", 200, NULL);
    m = s_scrape ();
    s_all_typed (m);
    assert_true (s_value (m, "bctx_commands_total", "outcome", "accepted") == accepted + N);
    double after = s_histogram (m, "bctx_command_duration_seconds");
    assert_true (after >= commands + N);
    assert_true (s_histogram (m, "bctx_commit_duration_seconds") > 0);
    assert_true (s_value (m, "bctx_commit_duration_seconds_sum", NULL, NULL) > 0);
    json_decref (m);
    s_expect ("POST", "/contexts/accounts/reload", "-H 'Authorization: Bearer s3cret'", 200,
              NULL);
    s_expect ("POST", "/contexts/accounts/commands/Deposit",
              "-d '{\"account\":\"a1\",\"amount\":1}'", 200, NULL);
    m = s_scrape ();
    s_all_typed (m);
    assert_true (s_value (m, "bctx_reloads_total", "outcome", "ok") == reloads + 1);
    assert_true (s_histogram (m, "bctx_reload_pause_seconds") == pauses + 1);
    assert_true (s_histogram (m, "bctx_command_duration_seconds") >= after + 1);
    json_decref (m);
}

/* Reads an SSE stream from path (with curl's extra arguments) for at most
 * seconds; returns the ids in order in ids[] (count in *n) and the body
 * (new).  The two Deposits of amount 71 and 72 are sent meanwhile when
 * send is set. */
static char *
s_stream (const char *path, const char *extra, int seconds, int send, long long *ids, int *n)
{
    char cmd[1024];
    snprintf (cmd, sizeof cmd, "curl -s -N -m %d %s '%s%s'", seconds, extra ? extra : "",
              s_base, path);
    FILE *p = popen (cmd, "r");
    assert_non_null (p);
    if (send) {
        usleep (500 * 1000);          /* caught up and polling: these come live */
        s_expect ("POST", "/contexts/accounts/commands/Deposit",
                  "-d '{\"account\":\"a1\",\"amount\":71}'", 200, NULL);
        s_expect ("POST", "/contexts/accounts/commands/Deposit",
                  "-d '{\"account\":\"a1\",\"amount\":72}'", 200, NULL);
    }
    char *text = calloc (1, 1 << 20);
    size_t len = fread (text, 1, (1 << 20) - 1, p);
    text[len] = '\0';
    pclose (p);
    *n = 0;
    for (char *line = text; (line = strstr (line, "id: ")); line += 4)
        if (line == text || line[-1] == '\n')
            ids[(*n)++] = atoll (line + 4);
    return text;
}

/* The events stream: the log from ?from=1, then live events, each once
 * and in order, each with its data; resumed after a disconnect with
 * Last-Event-ID it starts right after that id; an unknown context is 404. */
static void
test_stream (void **state)
{
    (void) state;
    long long ids[256];
    int n = 0;
    char *body = s_stream ("/contexts/accounts/events/stream?from=1", NULL, 6, 1, ids, &n);
    assert_true (n >= 4);             /* test_routes' two, and the two sent here */
    for (int i = 0; i < n; i++)
        assert_int_equal (ids[i], i + 1);
    h_assert_contains (body, "\"amount\":71");
    h_assert_contains (body, "\"amount\":72");
    h_assert_contains (body, "data: {\"context\":\"accounts\"");
    free (body);
    int last = n;
    char header[64];
    snprintf (header, sizeof header, "-H 'Last-Event-ID: %d'", last - 1);
    body = s_stream ("/contexts/accounts/events/stream", header, 2, 0, ids, &n);
    assert_int_equal (n, 1);
    assert_int_equal (ids[0], last);
    h_assert_contains (body, "\"amount\":72");
    free (body);
    s_expect ("GET", "/contexts/nosuch/events/stream", NULL, 404, "unknown_context");
    s_expect ("GET", "/contexts/accounts/events/stream", "-H 'Last-Event-ID: x'", 400,
              "bad_request");
}

int
main (void)
{
    if (h_init (&s_host) < 0)
        return 1;
    int port = 14000 + (int) (getpid () % 5000);
    snprintf (s_base, sizeof s_base, "http://127.0.0.1:%d", port);
    snprintf (s_host.host_extra, sizeof s_host.host_extra,
              "\"http\": \"127.0.0.1:%d\", \"http_admin_token\": \"s3cret\", "
              "\"max_message\": 4096", port);
    snprintf (s_dir_file, sizeof s_dir_file, "%s/big.json", s_host.dir);
    FILE *f = fopen (s_dir_file, "w");
    fputs ("{\"account\":\"a1\",\"pad\":\"", f);
    for (int i = 0; i < 100000; i++)
        fputc ('x', f);
    fputs ("\"}", f);
    fclose (f);
    if (h_start (&s_host) < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_routes),
        cmocka_unit_test (test_errors),
        cmocka_unit_test (test_admin),
        cmocka_unit_test (test_metrics),
        cmocka_unit_test (test_stream),
    };
    int failed = cmocka_run_group_tests (tests, NULL, NULL);
    if (h_cleanup (&s_host) != 0)
        return 1;
    return failed;
}
