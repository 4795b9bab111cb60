/*
 * test_api - the op table's dispatch, without a running host: every op
 * reaches its own handler, the modules of a host register a handler for
 * every op, a role the op does not name is refused before any handler
 * runs, and an outcome is counted by the code its handler returns, never
 * by the reply's text.  A handler registered again for an op replaces the
 * first (with its own argument), an op number outside the table changes
 * nothing, and an unknown op is a bad request that names it.
 */
#include "api.h"
#include "commands.h"
#include "gather.h"
#include "ops.h"
#include "registry.h"
#include "reload.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <cmocka.h>
#include <zmq.h>

/* What the stub handlers saw. */
typedef struct {
    int called[BCTX_OP_COUNT];    /* calls per op */
    unsigned role;                /* the role of the last call */
    size_t envelope_len;          /* the envelope length of the last call */
} s_seen_t;

/* Answers ok, noting which op ran. */
static char *
s_stub (void *arg, bctx_request_t *req)
{
    s_seen_t *seen = arg;
    seen->called[req->op->id]++;
    seen->role = req->role;
    seen->envelope_len = req->envelope_len;
    return strdup ("{\"ok\":true}");
}

/* An API with the stub as the handler of every op. */
static bctx_api_t *
s_api_with_stubs (s_seen_t *seen)
{
    bctx_api_t *api = bctx_api_new (4096);
    for (int op = 0; op < BCTX_OP_COUNT; op++)
        bctx_api_handle (api, op, s_stub, seen);
    return api;
}

/* The reply's error code (static copy), or "" for an ok reply. */
static const char *
s_code (const char *reply)
{
    static char code[64];
    json_t *json = json_loads (reply, 0, NULL);
    assert_non_null (json);
    const char *c = json_string_value (json_object_get (json_object_get (json, "error"),
                                                        "code"));
    snprintf (code, sizeof code, "%s", c ? c : "");
    json_decref (json);
    return code;
}

/* Sends {"op":name} with role and returns the reply (new). */
static char *
s_ask (bctx_api_t *api, const char *name, unsigned role)
{
    char body[128];
    snprintf (body, sizeof body, "{\"op\":\"%s\"}", name);
    static const unsigned char env[] = { BCTX_API_PUBLIC, 2, 'i', 'd' };
    return bctx_api_request (api, body, strlen (body), role, env, sizeof env, 1);
}

static void
test_every_op_reaches_its_own_handler (void **state)
{
    (void) state;
    const char *names[] = { "send", "events", "query", "contexts", "stats",
                            "replay", "retry", "reload", "stop", "release", "take" };
    _Static_assert (sizeof names / sizeof *names == BCTX_OP_COUNT, "one name an op");
    /* What a context process's link carries: an admin's requests and its
     * supervisor's handover steps. */
    const unsigned link = BCTX_ROLE_ADMIN | BCTX_ROLE_SUPERVISOR;
    s_seen_t seen = { .role = 0 };
    bctx_api_t *api = s_api_with_stubs (&seen);
    assert_int_equal (bctx_api_unhandled (api), -1);
    for (int i = 0; i < BCTX_OP_COUNT; i++) {
        char *reply = s_ask (api, names[i], link);
        assert_string_equal (s_code (reply), "");
        free (reply);
        for (int op = 0; op < BCTX_OP_COUNT; op++)
            assert_int_equal (seen.called[op], op <= i ? 1 : 0);
        assert_int_equal (seen.role, link);
        assert_int_equal (seen.envelope_len, 4);
    }
    assert_int_equal (bctx_api_counters (api)->bad, 0);
    bctx_api_destroy (&api);
    assert_null (api);
}

static void
test_an_op_without_a_handler_is_internal (void **state)
{
    (void) state;
    s_seen_t seen = { .role = 0 };
    bctx_api_t *api = bctx_api_new (4096);
    assert_int_equal (bctx_api_unhandled (api), BCTX_OP_SEND);
    bctx_api_handle (api, BCTX_OP_SEND, s_stub, &seen);
    assert_int_equal (bctx_api_unhandled (api), BCTX_OP_EVENTS);
    char *reply = s_ask (api, "events", BCTX_ROLE_CLIENT);
    assert_string_equal (s_code (reply), BCTX_E_INTERNAL);
    free (reply);
    bctx_api_destroy (&api);
}

static void
test_the_modules_of_a_host_handle_every_op (void **state)
{
    (void) state;
    void *zctx = zmq_ctx_new ();
    bctx_registry_t registry = { .zctx = zctx };
    char err[256];
    bctx_api_t *api = bctx_api_new (4096);
    bctx_commands_t *commands = bctx_commands_new (&registry, api, err, sizeof err);
    assert_non_null (commands);
    assert_int_not_equal (bctx_api_unhandled (api), -1);
    /* The supervisor's shape: ops, the relay to the context processes and
     * the handovers between them. */
    bctx_ops_t *ops = bctx_ops_new (&registry, api, commands, NULL);
    bctx_supervise_t *supervise = bctx_supervise_new (&registry, zctx, "/bin/false");
    bctx_relay_t *relay = bctx_relay_new (&registry, api, supervise);
    bctx_gather_t *gather = bctx_gather_new (&registry, api, supervise, relay, NULL);
    bctx_reload_t *reload = bctx_reload_new (&registry, api, supervise, relay);
    assert_int_equal (bctx_api_unhandled (api), -1);
    bctx_ops_destroy (&ops);
    bctx_reload_destroy (&reload);
    bctx_gather_destroy (&gather);
    bctx_relay_destroy (&relay);
    bctx_supervise_destroy (&supervise);
    bctx_commands_destroy (&commands);
    bctx_api_destroy (&api);
    zmq_ctx_term (zctx);
}

static void
test_roles_are_checked_before_any_handler_runs (void **state)
{
    (void) state;
    const unsigned roles[] = { BCTX_ROLE_PEER, BCTX_ROLE_CLIENT, BCTX_ROLE_ADMIN };
    const char *names[] = { "send", "events", "query", "contexts", "stats",
                            "replay", "retry", "reload", "stop", "release", "take" };
    s_seen_t seen = { .role = 0 };
    bctx_api_t *api = s_api_with_stubs (&seen);
    int64_t refused = 0;
    for (int i = 0; i < BCTX_OP_COUNT; i++)
        for (size_t r = 0; r < 3; r++) {
            const bctx_op_t *op = bctx_op_find (names[i]);
            int before = seen.called[op->id];
            char *reply = s_ask (api, names[i], roles[r]);
            if (op->roles & roles[r]) {
                assert_string_equal (s_code (reply), "");
                assert_int_equal (seen.called[op->id], before + 1);
            } else {
                assert_string_equal (s_code (reply), BCTX_E_FORBIDDEN);
                assert_int_equal (seen.called[op->id], before);
                refused++;
            }
            free (reply);
        }
    /* A client may not reload, replay or retry, and nobody but a
     * supervisor release or take: at least those. */
    assert_true (refused >= 3 + 2 * 3);
    assert_int_equal (bctx_api_counters (api)->forbidden, refused);
    bctx_api_destroy (&api);
}

/* Fails as a bad request, by its code. */
static char *
s_bad (void *arg, bctx_request_t *req)
{
    (void) arg;
    return bctx_request_error (req, BCTX_E_BAD_REQUEST, "bad %s", "indeed");
}

/* Succeeds with a reply whose text looks like a bad request. */
static char *
s_looks_bad (void *arg, bctx_request_t *req)
{
    (void) arg;
    (void) req;
    return strdup ("{\"ok\":true,\"value\":{\"code\":\"bad_request\"}}");
}

/* Answers later: nothing now. */
static char *
s_later (void *arg, bctx_request_t *req)
{
    (void) arg;
    (void) req;
    return NULL;
}

static void
test_outcomes_are_counted_by_code_not_text (void **state)
{
    (void) state;
    bctx_api_t *api = bctx_api_new (4096);
    bctx_api_handle (api, BCTX_OP_QUERY, s_bad, NULL);
    bctx_api_handle (api, BCTX_OP_EVENTS, s_looks_bad, NULL);
    bctx_api_handle (api, BCTX_OP_SEND, s_later, NULL);
    char *reply = s_ask (api, "query", BCTX_ROLE_CLIENT);
    assert_string_equal (s_code (reply), BCTX_E_BAD_REQUEST);
    assert_non_null (strstr (reply, "bad indeed"));
    free (reply);
    assert_int_equal (bctx_api_counters (api)->bad, 1);
    reply = s_ask (api, "events", BCTX_ROLE_CLIENT);
    assert_string_equal (s_code (reply), "");
    free (reply);
    assert_int_equal (bctx_api_counters (api)->bad, 1);
    assert_null (s_ask (api, "send", BCTX_ROLE_CLIENT));
    assert_int_equal (bctx_api_counters (api)->bad, 1);
    bctx_api_destroy (&api);
}

static void
test_bad_requests_never_reach_a_handler (void **state)
{
    (void) state;
    s_seen_t seen = { .role = 0 };
    bctx_api_t *api = s_api_with_stubs (&seen);
    const unsigned char env[] = { BCTX_API_PUBLIC, 1, 'x' };
    const char *bodies[] = { "{\"op\":", "[1,2]", "{\"op\":7}", "{\"op\":\"nope\"}",
                             "{\"op\":\"stats\",\"op\":\"stats\"}" };
    for (size_t i = 0; i < 5; i++) {
        char *reply = bctx_api_request (api, bodies[i], strlen (bodies[i]),
                                        BCTX_ROLE_ADMIN, env, sizeof env, 0);
        assert_string_equal (s_code (reply), BCTX_E_BAD_REQUEST);
        free (reply);
    }
    assert_int_equal (bctx_api_counters (api)->bad, 5);
    char big[5000];
    memset (big, ' ', sizeof big);
    memcpy (big, "{\"op\":\"stats\"}", 14);
    char *reply = bctx_api_request (api, big, sizeof big, BCTX_ROLE_ADMIN, env, sizeof env, 0);
    assert_string_equal (s_code (reply), BCTX_E_TOO_LARGE);
    free (reply);
    assert_int_equal (bctx_api_counters (api)->too_large, 1);
    for (int op = 0; op < BCTX_OP_COUNT; op++)
        assert_int_equal (seen.called[op], 0);
    bctx_api_destroy (&api);
}

/* The error message of a reply (static copy), or "". */
static const char *
s_message (const char *reply)
{
    static char message[256];
    json_t *json = json_loads (reply, 0, NULL);
    assert_non_null (json);
    const char *m = json_string_value (json_object_get (json_object_get (json, "error"),
                                                        "message"));
    snprintf (message, sizeof message, "%s", m ? m : "");
    json_decref (json);
    return message;
}

static void
test_registration (void **state)
{
    (void) state;
    s_seen_t first = { .role = 0 }, second = { .role = 0 };
    bctx_api_t *api = bctx_api_new (4096);
    bctx_api_handle (api, BCTX_OP_STATS, s_stub, &first);
    bctx_api_handle (api, BCTX_OP_STATS, s_stub, &second);
    char *reply = s_ask (api, "stats", BCTX_ROLE_CLIENT);
    assert_string_equal (s_code (reply), "");
    free (reply);
    /* The later registration answers, with its own argument. */
    assert_int_equal (first.called[BCTX_OP_STATS], 0);
    assert_int_equal (second.called[BCTX_OP_STATS], 1);
    assert_int_equal (second.role, BCTX_ROLE_CLIENT);
    /* Outside the table: ignored, every op but stats still unhandled. */
    bctx_api_handle (api, -1, s_stub, &first);
    bctx_api_handle (api, BCTX_OP_COUNT, s_stub, &first);
    assert_int_equal (bctx_api_unhandled (api), BCTX_OP_SEND);
    for (int op = 0; op < BCTX_OP_COUNT; op++)
        if (op != BCTX_OP_STATS)
            bctx_api_handle (api, op, s_stub, &first);
    assert_int_equal (bctx_api_unhandled (api), -1);
    bctx_api_destroy (&api);
}

static void
test_an_unknown_op_is_a_bad_request_naming_it (void **state)
{
    (void) state;
    s_seen_t seen = { .role = 0 };
    bctx_api_t *api = s_api_with_stubs (&seen);
    /* Whatever the role: the op is checked before the role. */
    const unsigned roles[] = { BCTX_ROLE_PEER, BCTX_ROLE_CLIENT, BCTX_ROLE_ADMIN };
    for (size_t r = 0; r < 3; r++) {
        char *reply = s_ask (api, "launch", roles[r]);
        assert_string_equal (s_code (reply), BCTX_E_BAD_REQUEST);
        assert_string_equal (s_message (reply), "unknown op \"launch\"");
        free (reply);
    }
    /* Op names are exact: no case folding, no prefixes. */
    char *reply = s_ask (api, "SEND", BCTX_ROLE_ADMIN);
    assert_string_equal (s_code (reply), BCTX_E_BAD_REQUEST);
    free (reply);
    reply = s_ask (api, "sen", BCTX_ROLE_ADMIN);
    assert_string_equal (s_code (reply), BCTX_E_BAD_REQUEST);
    free (reply);
    assert_int_equal (bctx_api_counters (api)->bad, 5);
    assert_int_equal (bctx_api_counters (api)->forbidden, 0);
    for (int op = 0; op < BCTX_OP_COUNT; op++)
        assert_int_equal (seen.called[op], 0);
    bctx_api_destroy (&api);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_every_op_reaches_its_own_handler),
        cmocka_unit_test (test_an_op_without_a_handler_is_internal),
        cmocka_unit_test (test_the_modules_of_a_host_handle_every_op),
        cmocka_unit_test (test_roles_are_checked_before_any_handler_runs),
        cmocka_unit_test (test_outcomes_are_counted_by_code_not_text),
        cmocka_unit_test (test_bad_requests_never_reach_a_handler),
        cmocka_unit_test (test_registration),
        cmocka_unit_test (test_an_unknown_op_is_a_bad_request_naming_it),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
