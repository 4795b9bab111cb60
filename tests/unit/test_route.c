/*
 * test_route - a "send" read off its routing keys (route.c): the plain
 * ones are read with their context, command, id and origin; anything the
 * tokenizer cannot read plainly is left to the whole parse (0), so that
 * the supervisor never routes a request other than jansson would read it.
 */
#include "route.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

/* route_read on a NUL-ended text. */
static int
s_read (const char *text, bctx_route_t *route)
{
    return bctx_route_read (text, strlen (text), route);
}

static void
test_a_plain_send_is_read (void **state)
{
    (void) state;
    bctx_route_t r;
    assert_int_equal (s_read ("{\"op\":\"send\",\"context\":\"accounts\",\"command\":\"Deposit\","
                              "\"id\":\"c-17\",\"data\":{\"account\":\"a1\",\"amount\":5,"
                              "\"nested\":{\"op\":\"x\",\"context\":\"y\"}}}\n", &r), 1);
    assert_true (bctx_span_is (r.context, "accounts"));
    assert_true (bctx_span_is (r.command, "Deposit"));
    assert_true (bctx_span_is (r.id, "c-17"));
    assert_null (r.origin.text);
    /* Keys in any order; the data's own "context" is not the request's. */
    assert_int_equal (s_read ("{\"data\":{\"context\":\"other\"},\"origin\":\"reactor\","
                              "\"context\":\"transfers\",\"op\":\"send\",\"command\":\"C\"}",
                              &r), 1);
    assert_true (bctx_span_is (r.context, "transfers"));
    assert_true (bctx_span_is (r.origin, "reactor"));
    assert_null (r.id.text);
}

static void
test_what_is_not_plain_is_parsed_whole (void **state)
{
    (void) state;
    bctx_route_t r;
    const char *whole[] = {
        "",
        "[]",
        "\"send\"",
        "{}",
        "{\"op\":\"query\",\"context\":\"accounts\"}",          /* not a send */
        "{\"op\":\"send\"}",                                     /* no context */
        "{\"op\":\"send\",\"context\":\"\"}",                    /* empty context */
        "{\"op\":\"send\",\"context\":7}",                       /* not a string */
        "{\"op\":\"send\",\"context\":\"acc\\u006funts\"}",      /* an escape */
        "{\"o\\u0070\":\"send\",\"context\":\"accounts\"}",      /* an escaped key */
        "{\"op\":\"send\",\"context\":\"a\",\"context\":\"b\"}", /* twice */
        "{\"op\":\"send\",\"op\":\"send\",\"context\":\"a\"}",
        "{\"op\":\"send\",\"context\":\"a\"} {}",                /* two values */
        "{\"op\":\"send\",\"context\":\"a\"} x",                 /* something after */
        "{\"op\":\"send\",\"context\":\"a\"",                    /* cut short */
        "{\"op\":\"send\",\"context\":\"a\",\"id\":5}",          /* id not a string */
        "{\"op\":\"send\",\"context\":\"a\",\"origin\":null}",
    };
    for (size_t i = 0; i < sizeof whole / sizeof *whole; i++)
        assert_int_equal (s_read (whole[i], &r), 0);
    /* A NUL after the object. */
    const char nul[] = "{\"op\":\"send\",\"context\":\"a\"}\0";
    assert_int_equal (bctx_route_read (nul, sizeof nul - 1, &r), 0);
}

static void
test_a_request_of_many_values_is_parsed_whole (void **state)
{
    (void) state;
    char text[8192];
    size_t n = (size_t) snprintf (text, sizeof text,
                                  "{\"op\":\"send\",\"context\":\"a\",\"data\":{\"list\":[");
    for (int i = 0; i < BCTX_ROUTE_TOKENS; i++)
        n += (size_t) snprintf (text + n, sizeof text - n, "%s%d", i ? "," : "", i);
    snprintf (text + n, sizeof text - n, "]}}");
    bctx_route_t r;
    assert_int_equal (s_read (text, &r), 0);
}

static void
test_span_is (void **state)
{
    (void) state;
    bctx_span_t s = { "sendx", 4 };
    assert_true (bctx_span_is (s, "send"));
    assert_false (bctx_span_is (s, "sendx"));
    assert_false (bctx_span_is (s, "sen"));
    assert_false (bctx_span_is ((bctx_span_t) { 0 }, ""));
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_a_plain_send_is_read),
        cmocka_unit_test (test_what_is_not_plain_is_parsed_whole),
        cmocka_unit_test (test_a_request_of_many_values_is_parsed_whole),
        cmocka_unit_test (test_span_is),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
