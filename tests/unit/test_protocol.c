/*
 * test_protocol - the op table and the roles: every op is found by its
 * name, admin ops are exactly the ones that load code or change the
 * host's shape, peers may only send and read logs, and a forbidden reply
 * names the admin endpoint.
 */
#include "protocol.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <cmocka.h>

static void
test_every_op_is_found_by_name (void **state)
{
    (void) state;
    const char *names[] = { "send", "events", "query", "contexts", "stats",
                            "replay", "retry", "reload", "stop", "release", "take" };
    _Static_assert (sizeof names / sizeof *names == BCTX_OP_COUNT, "one name an op");
    for (int i = 0; i < BCTX_OP_COUNT; i++) {
        const bctx_op_t *op = bctx_op_find (names[i]);
        assert_non_null (op);
        assert_string_equal (op->name, names[i]);
        assert_int_equal (op->id, i);
    }
    assert_null (bctx_op_find ("nope"));
    assert_null (bctx_op_find (""));
    assert_null (bctx_op_find (NULL));
    assert_null (bctx_op_find ("Send"));
}

static void
test_roles (void **state)
{
    (void) state;
    const char *admin_only[] = { "replay", "retry", "reload", "stop" };
    for (int i = 0; i < 4; i++) {
        const bctx_op_t *op = bctx_op_find (admin_only[i]);
        assert_true (bctx_op_is_admin (op));
        assert_int_equal (op->roles, BCTX_ROLE_ADMIN);
    }
    /* A handover's steps: only a supervisor, on a context process's link. */
    const char *handover[] = { "release", "take" };
    for (int i = 0; i < 2; i++) {
        const bctx_op_t *op = bctx_op_find (handover[i]);
        assert_int_equal (op->roles, BCTX_ROLE_SUPERVISOR);
        assert_false (bctx_op_is_admin (op));
    }
    const char *peer_ok[] = { "send", "events" };
    for (int i = 0; i < 2; i++)
        assert_true (bctx_op_find (peer_ok[i])->roles & BCTX_ROLE_PEER);
    const char *peer_no[] = { "query", "contexts", "stats" };
    for (int i = 0; i < 3; i++) {
        const bctx_op_t *op = bctx_op_find (peer_no[i]);
        assert_false (op->roles & BCTX_ROLE_PEER);
        assert_true (op->roles & BCTX_ROLE_CLIENT);
        assert_true (op->roles & BCTX_ROLE_ADMIN);
        assert_false (bctx_op_is_admin (op));
    }
    assert_int_equal (bctx_role_parse ("client"), BCTX_ROLE_CLIENT);
    assert_int_equal (bctx_role_parse ("admin"), BCTX_ROLE_ADMIN);
    assert_int_equal (bctx_role_parse ("peer"), BCTX_ROLE_PEER);
    assert_int_equal (bctx_role_parse ("root"), 0);
    assert_int_equal (bctx_role_parse (NULL), 0);
    assert_string_equal (bctx_role_name (BCTX_ROLE_ADMIN), "admin");
}

static void
test_forbidden_reply (void **state)
{
    (void) state;
    char *text = bctx_reply_forbidden ("reload", BCTX_ROLE_CLIENT, "ipc:///d/run/admin.sock");
    json_t *r = json_loads (text, 0, NULL);
    free (text);
    assert_non_null (r);
    assert_true (json_is_false (json_object_get (r, "ok")));
    json_t *e = json_object_get (r, "error");
    assert_string_equal (json_string_value (json_object_get (e, "code")), "forbidden");
    assert_string_equal (json_string_value (json_object_get (e, "admin")),
                         "ipc:///d/run/admin.sock");
    assert_non_null (strstr (json_string_value (json_object_get (e, "message")),
                             "reload is an admin op"));
    json_decref (r);
    text = bctx_reply_forbidden ("stats", BCTX_ROLE_PEER, NULL);
    r = json_loads (text, 0, NULL);
    free (text);
    e = json_object_get (r, "error");
    assert_null (json_object_get (e, "admin"));
    assert_non_null (strstr (json_string_value (json_object_get (e, "message")), "(peer)"));
    json_decref (r);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_every_op_is_found_by_name),
        cmocka_unit_test (test_roles),
        cmocka_unit_test (test_forbidden_reply),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
