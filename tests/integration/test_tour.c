/*
 * test_tour - the README's tour against the real binaries, then every kind
 * of bad input a client can send, each followed by proof that the host
 * still serves.
 */
#include "harness.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>
#include <cmocka.h>

static h_host_t s_host;

static int
s_setup (void **state)
{
    (void) state;
    if (h_init (&s_host) < 0)
        return -1;
    snprintf (s_host.host_extra, sizeof s_host.host_extra, "\"max_message\": 4096");
    return h_start (&s_host);
}

static int
s_teardown (void **state)
{
    (void) state;
    return h_teardown (&s_host);
}

/* Runs `bctx send` and returns its parsed output; *code gets the exit code. */
static json_t *
s_cli_send (const char *context, const char *command, const char *data,
            const char *id, int *code)
{
    char *out = NULL;
    if (id)
        *code = h_cli (&s_host, &out, "send", context, command, data, "--id", id, NULL);
    else
        *code = h_cli (&s_host, &out, "send", context, command, data, NULL);
    json_t *j = h_json (out);
    free (out);
    return j;
}

/* The host still takes commands after whatever the test did. */
static void
s_assert_serving (void)
{
    static int n;
    char data[96];
    snprintf (data, sizeof data, "{\"account\":\"alive-%d\",\"owner\":\"Ed\"}", ++n);
    int code;
    json_t *r = s_cli_send ("accounts", "OpenAccount", data, NULL, &code);
    assert_int_equal (code, 0);
    assert_true (json_is_true (json_object_get (r, "ok")));
    json_decref (r);
}

static void
test_tour (void **state)
{
    (void) state;
    int code;
    json_t *r = s_cli_send ("accounts", "OpenAccount", "{\"account\":\"a1\",\"owner\":\"Ada\"}",
                            NULL, &code);
    assert_int_equal (code, 0);
    assert_true (json_is_true (json_object_get (r, "ok")));
    json_t *ev = json_array_get (json_object_get (r, "events"), 0);
    assert_string_equal (json_string_value (json_object_get (ev, "type")), "AccountOpened");
    assert_int_equal (json_integer_value (json_object_get (ev, "version")), 1);
    json_decref (r);

    r = s_cli_send ("accounts", "Deposit", "{\"account\":\"a1\",\"amount\":100}", NULL, &code);
    assert_int_equal (code, 0);
    ev = json_array_get (json_object_get (r, "events"), 0);
    assert_string_equal (json_string_value (json_object_get (ev, "type")), "Deposited");
    assert_int_equal (json_integer_value (json_object_get (ev, "version")), 2);
    json_decref (r);

    r = s_cli_send ("accounts", "Withdraw", "{\"account\":\"a1\",\"amount\":500}", NULL, &code);
    assert_int_equal (code, 1);
    assert_false (json_is_true (json_object_get (r, "ok")));
    assert_string_equal (h_error_code (r), "rejected");
    const char *msg = json_string_value (json_object_get (json_object_get (r, "error"), "message"));
    assert_non_null (strstr (msg, "insufficient funds"));
    json_decref (r);

    /* events: one JSON object per line, with every field. */
    char *out = NULL;
    code = h_cli (&s_host, &out, "events", "--context", "accounts", "--aggregate", "a1", NULL);
    assert_int_equal (code, 0);
    int lines = 0;
    for (char *line = strtok (out, "\n"); line; line = strtok (NULL, "\n")) {
        json_t *e = h_json (line);
        assert_non_null (e);
        lines++;
        assert_string_equal (json_string_value (json_object_get (e, "context")), "accounts");
        assert_string_equal (json_string_value (json_object_get (e, "aggregate")), "a1");
        assert_int_equal (json_integer_value (json_object_get (e, "version")), lines);
        assert_true (json_integer_value (json_object_get (e, "position")) >= lines);
        assert_true (json_is_object (json_object_get (e, "data")));
        json_t *meta = json_object_get (e, "metadata");
        assert_non_null (json_string_value (json_object_get (meta, "command_id")));
        assert_non_null (json_string_value (json_object_get (meta, "correlation_id")));
        assert_non_null (json_string_value (json_object_get (meta, "causation_id")));
        assert_non_null (json_string_value (json_object_get (meta, "time")));
        if (lines == 2)
            assert_int_equal (json_integer_value (json_object_get (json_object_get (e, "data"),
                                                                   "balance")), 100);
        json_decref (e);
    }
    free (out);
    assert_int_equal (lines, 2);

    /* contexts names the plugin and its commands. */
    code = h_cli (&s_host, &out, "contexts", NULL);
    assert_int_equal (code, 0);
    assert_non_null (strstr (out, "\"accounts\""));
    assert_non_null (strstr (out, "\"Withdraw\""));
    free (out);
}

static void
test_retry_with_same_id_returns_first_result (void **state)
{
    (void) state;
    int code;
    json_t *r = s_cli_send ("accounts", "OpenAccount", "{\"account\":\"r1\",\"owner\":\"Bo\"}",
                            "open-r1", &code);
    assert_int_equal (code, 0);
    json_decref (r);
    json_t *first = s_cli_send ("accounts", "Deposit", "{\"account\":\"r1\",\"amount\":7}",
                                "dep-r1", &code);
    assert_int_equal (code, 0);
    json_t *again = s_cli_send ("accounts", "Deposit", "{\"account\":\"r1\",\"amount\":7}",
                                "dep-r1", &code);
    assert_int_equal (code, 0);
    assert_true (json_equal (first, again));
    json_decref (first);
    json_decref (again);
    /* A rejected command's retry is rejected the same way, even though the
     * account could now pay. */
    json_t *no = s_cli_send ("accounts", "Withdraw", "{\"account\":\"r1\",\"amount\":50}",
                             "wd-r1", &code);
    assert_int_equal (code, 1);
    json_decref (s_cli_send ("accounts", "Deposit", "{\"account\":\"r1\",\"amount\":100}",
                             NULL, &code));
    json_t *no_again = s_cli_send ("accounts", "Withdraw", "{\"account\":\"r1\",\"amount\":50}",
                                   "wd-r1", &code);
    assert_int_equal (code, 1);
    assert_true (json_equal (no, no_again));
    json_decref (no);
    json_decref (no_again);
    char *out = NULL;
    code = h_cli (&s_host, &out, "events", "--context", "accounts", "--aggregate", "r1", NULL);
    int lines = 0;
    for (char *p = out; (p = strchr (p, '\n')); p++)
        lines++;
    free (out);
    assert_int_equal (lines, 3);       /* opened, deposited 7, deposited 100 */
}

static void
test_domain_rules (void **state)
{
    (void) state;
    int code;
    json_t *r = s_cli_send ("accounts", "Deposit", "{\"account\":\"ghost\",\"amount\":5}",
                            NULL, &code);
    assert_int_equal (code, 1);
    assert_string_equal (h_error_code (r), "rejected");
    assert_non_null (strstr (json_string_value (json_object_get (json_object_get (r, "error"), "message")), "unknown account"));
    json_decref (r);
    json_decref (s_cli_send ("accounts", "OpenAccount", "{\"account\":\"d1\",\"owner\":\"Cy\"}",
                             NULL, &code));
    r = s_cli_send ("accounts", "OpenAccount", "{\"account\":\"d1\",\"owner\":\"Cy\"}",
                    NULL, &code);
    assert_int_equal (code, 1);
    assert_string_equal (h_error_code (r), "rejected");
    json_decref (r);
    const char *bad_amounts[] = { "0", "-5", "1.5", "\"10\"", "null" };
    for (size_t i = 0; i < 5; i++) {
        char data[128];
        snprintf (data, sizeof data, "{\"account\":\"d1\",\"amount\":%s}", bad_amounts[i]);
        r = s_cli_send ("accounts", "Deposit", data, NULL, &code);
        assert_int_equal (code, 1);
        assert_string_equal (h_error_code (r), "bad_request");
        json_decref (r);
    }
    s_assert_serving ();
}

/* One raw request; asserts the error code of the reply. */
static void
s_expect (const char *body, size_t len, const char *code)
{
    json_t *r = h_request (s_host.endpoint, body, len, 5000);
    assert_non_null (r);
    assert_false (json_is_true (json_object_get (r, "ok")));
    if (strcmp (h_error_code (r), code) != 0)
        fail_msg ("expected %s, got %s", code, json_dumps (r, 0));
    json_decref (r);
}

#define EXPECT(body, code) s_expect (body, strlen (body), code)

static void
test_malformed_json (void **state)
{
    (void) state;
    EXPECT ("{\"op\":\"send\",", "bad_request");
    EXPECT ("not json at all", "bad_request");
    EXPECT ("[1,2,3]", "bad_request");
    EXPECT ("", "bad_request");
    s_expect ("{\"op\":\"send\"}\0garbage", 22, "bad_request");
    s_assert_serving ();
}

static void
test_missing_and_wrong_typed_fields (void **state)
{
    (void) state;
    EXPECT ("{}", "bad_request");
    EXPECT ("{\"op\":42}", "bad_request");
    EXPECT ("{\"op\":\"frobnicate\"}", "bad_request");
    EXPECT ("{\"op\":\"send\",\"command\":\"Deposit\",\"data\":{}}", "bad_request");
    EXPECT ("{\"op\":\"send\",\"context\":7,\"command\":\"Deposit\",\"data\":{}}", "bad_request");
    EXPECT ("{\"op\":\"send\",\"context\":\"accounts\",\"data\":{}}", "bad_request");
    EXPECT ("{\"op\":\"send\",\"context\":\"accounts\",\"command\":\"Deposit\"}", "bad_request");
    EXPECT ("{\"op\":\"send\",\"context\":\"accounts\",\"command\":\"Deposit\",\"data\":\"x\"}",
            "bad_request");
    EXPECT ("{\"op\":\"send\",\"context\":\"accounts\",\"command\":\"Deposit\",\"data\":{},\"id\":5}",
            "bad_request");
    EXPECT ("{\"op\":\"send\",\"context\":\"accounts\",\"command\":\"Deposit\",\"data\":{},\"extra\":1}",
            "bad_request");
    /* The aggregate id field is missing or not a string. */
    EXPECT ("{\"op\":\"send\",\"context\":\"accounts\",\"command\":\"Deposit\",\"data\":{\"amount\":1}}",
            "bad_request");
    EXPECT ("{\"op\":\"send\",\"context\":\"accounts\",\"command\":\"Deposit\","
            "\"data\":{\"account\":1,\"amount\":1}}", "bad_request");
    EXPECT ("{\"op\":\"events\"}", "bad_request");
    EXPECT ("{\"op\":\"events\",\"context\":\"accounts\",\"limit\":0}", "bad_request");
    EXPECT ("{\"op\":\"events\",\"context\":\"accounts\",\"from\":\"x\"}", "bad_request");
    s_assert_serving ();
}

static void
test_unknown_context_and_command (void **state)
{
    (void) state;
    EXPECT ("{\"op\":\"send\",\"context\":\"nope\",\"command\":\"Deposit\",\"data\":{}}",
            "unknown_context");
    EXPECT ("{\"op\":\"send\",\"context\":\"accounts\",\"command\":\"Nope\","
            "\"data\":{\"account\":\"a\"}}", "unknown_command");
    EXPECT ("{\"op\":\"events\",\"context\":\"nope\"}", "unknown_context");
    int code;
    json_t *r = s_cli_send ("nope", "X", "{}", NULL, &code);
    assert_int_equal (code, 1);
    assert_string_equal (h_error_code (r), "unknown_context");
    json_decref (r);
    s_assert_serving ();
}

static void
test_oversize_payload (void **state)
{
    (void) state;
    /* The host here allows 4096 bytes (host.max_message). */
    size_t len = 10000;
    char *big = malloc (len + 1);
    int n = snprintf (big, len, "{\"op\":\"send\",\"context\":\"accounts\","
                      "\"command\":\"Deposit\",\"data\":{\"account\":\"a1\",\"pad\":\"");
    memset (big + n, 'x', len - (size_t) n - 4);
    memcpy (big + len - 4, "\"}}", 4);
    s_expect (big, len - 1, "too_large");
    free (big);
    s_assert_serving ();
}

static void
test_multi_frame_request (void **state)
{
    (void) state;
    void *zctx = zmq_ctx_new ();
    void *dealer = zmq_socket (zctx, ZMQ_DEALER);
    int linger = 0;
    zmq_setsockopt (dealer, ZMQ_LINGER, &linger, sizeof linger);
    zmq_connect (dealer, s_host.endpoint);
    zmq_send (dealer, "", 0, ZMQ_SNDMORE);
    zmq_send (dealer, "{\"op\":\"stats\"}", 14, ZMQ_SNDMORE);
    zmq_send (dealer, "{\"op\":\"stats\"}", 14, 0);
    zmq_pollitem_t item = { dealer, 0, ZMQ_POLLIN, 0 };
    assert_int_equal (zmq_poll (&item, 1, 5000), 1);
    char buf[1024];
    int n = zmq_recv (dealer, buf, sizeof buf, 0);
    assert_int_equal (n, 0);                 /* the delimiter comes back */
    n = zmq_recv (dealer, buf, sizeof buf - 1, 0);
    assert_true (n > 0);
    buf[n] = '\0';
    assert_non_null (strstr (buf, "bad_request"));
    /* A DEALER without a delimiter frame also gets an answer. */
    zmq_send (dealer, "{\"op\":\"contexts\"}", 17, 0);
    assert_int_equal (zmq_poll (&item, 1, 5000), 1);
    n = zmq_recv (dealer, buf, sizeof buf - 1, 0);
    assert_true (n > 0);
    buf[n] = '\0';
    assert_non_null (strstr (buf, "\"ok\":true"));
    /* A deep envelope: six frames before the delimiter, then the body, so
     * the body lies past what the host keeps: refused, not a crash. */
    const char *hops[] = { "a", "b", "c", "d", "e", "f" };
    for (int i = 0; i < 6; i++)
        zmq_send (dealer, hops[i], 1, ZMQ_SNDMORE);
    zmq_send (dealer, "", 0, ZMQ_SNDMORE);
    zmq_send (dealer, "{\"op\":\"contexts\"}", 17, 0);
    assert_int_equal (zmq_poll (&item, 1, 5000), 1);
    int more = 1;
    while (more) {
        n = zmq_recv (dealer, buf, sizeof buf - 1, 0);
        assert_true (n >= 0);
        buf[n < (int) sizeof buf - 1 ? n : (int) sizeof buf - 1] = '\0';
        size_t more_size = sizeof more;
        zmq_getsockopt (dealer, ZMQ_RCVMORE, &more, &more_size);
    }
    assert_non_null (strstr (buf, "bad_request"));
    /* A shallower one (a client behind a broker) is served. */
    zmq_send (dealer, "hop", 3, ZMQ_SNDMORE);
    zmq_send (dealer, "", 0, ZMQ_SNDMORE);
    zmq_send (dealer, "{\"op\":\"contexts\"}", 17, 0);
    assert_int_equal (zmq_poll (&item, 1, 5000), 1);
    more = 1;
    while (more) {
        n = zmq_recv (dealer, buf, sizeof buf - 1, 0);
        assert_true (n >= 0);
        buf[n < (int) sizeof buf - 1 ? n : (int) sizeof buf - 1] = '\0';
        size_t more_size = sizeof more;
        zmq_getsockopt (dealer, ZMQ_RCVMORE, &more, &more_size);
    }
    assert_non_null (strstr (buf, "\"ok\":true"));
    zmq_close (dealer);
    zmq_ctx_term (zctx);
    s_assert_serving ();
}

static void
test_client_disconnects_mid_request (void **state)
{
    (void) state;
    int code;
    json_decref (s_cli_send ("accounts", "OpenAccount", "{\"account\":\"gone\",\"owner\":\"Di\"}",
                             NULL, &code));
    /* Ten clients send a deposit and vanish before the reply. */
    for (int i = 0; i < 10; i++) {
        void *zctx = zmq_ctx_new ();
        void *req = zmq_socket (zctx, ZMQ_REQ);
        zmq_connect (req, s_host.endpoint);
        char body[256];
        int n = snprintf (body, sizeof body,
                          "{\"op\":\"send\",\"context\":\"accounts\",\"command\":\"Deposit\","
                          "\"id\":\"gone-%d\",\"data\":{\"account\":\"gone\",\"amount\":10}}", i);
        zmq_send (req, body, (size_t) n, 0);
        zmq_close (req);          /* default linger: the request leaves first */
        zmq_ctx_term (zctx);
    }
    s_assert_serving ();
    /* Each of them was applied once; its retry returns the first result. */
    for (int i = 0; i < 10; i++) {
        char id[32];
        snprintf (id, sizeof id, "gone-%d", i);
        json_t *r = s_cli_send ("accounts", "Deposit", "{\"account\":\"gone\",\"amount\":10}",
                                id, &code);
        assert_int_equal (code, 0);
        json_decref (r);
    }
    char *out = NULL;
    h_cli (&s_host, &out, "events", "--context", "accounts", "--aggregate", "gone", NULL);
    int lines = 0;
    for (char *p = out; (p = strchr (p, '\n')); p++)
        lines++;
    assert_non_null (strstr (out, "\"balance\":100"));
    free (out);
    assert_int_equal (lines, 11);
}

static void
test_cli_exit_codes (void **state)
{
    (void) state;
    char *out = NULL;
    /* 2: usage errors. */
    assert_int_equal (h_cli (&s_host, &out, NULL), 2);
    free (out);
    assert_int_equal (h_cli (&s_host, &out, "frobnicate", NULL), 2);
    free (out);
    assert_int_equal (h_cli (&s_host, &out, "send", "accounts", "Deposit", NULL), 2);
    free (out);
    assert_int_equal (h_cli (&s_host, &out, "send", "accounts", "Deposit", "{not json", NULL), 2);
    free (out);
    assert_int_equal (h_cli (&s_host, &out, "events", "--from", "zero", NULL), 2);
    free (out);
    /* 3: nobody answers in time. */
    char *argv[] = { "bctx", "-e", "tcp://127.0.0.1:9", "--timeout", "0.3", "contexts", NULL };
    long long t0 = h_now_us ();
    assert_int_equal (h_cli_argv (&out, argv), 3);
    free (out);
    assert_true (h_now_us () - t0 < 5000000);
    /* 0: stats answers. */
    assert_int_equal (h_cli (&s_host, &out, "stats", NULL), 0);
    json_t *s = h_json (out);
    free (out);
    assert_true (json_integer_value (json_object_get (json_object_get (s, "api"), "too_large")) >= 0);
    assert_non_null (json_object_get (json_object_get (s, "contexts"), "accounts"));
    json_decref (s);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_tour),
        cmocka_unit_test (test_retry_with_same_id_returns_first_result),
        cmocka_unit_test (test_domain_rules),
        cmocka_unit_test (test_malformed_json),
        cmocka_unit_test (test_missing_and_wrong_typed_fields),
        cmocka_unit_test (test_unknown_context_and_command),
        cmocka_unit_test (test_oversize_payload),
        cmocka_unit_test (test_multi_frame_request),
        cmocka_unit_test (test_client_disconnects_mid_request),
        cmocka_unit_test (test_cli_exit_codes),
    };
    return cmocka_run_group_tests (tests, s_setup, s_teardown);
}
