/*
 * test_errors - unit tests of host/errors: every code of the one code
 * space is negative, has its own text and a wire code from DESIGN.md's
 * list; the loader's and the store's outcomes map to the wire codes their
 * replies carried; 0 and codes that are not ours have a text too; each
 * wire code has the HTTP status docs/http.md gives it.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "errors.h"
#include "http.h"

/* Every code, from the map. */
static const int s_codes[] = {
#define XX(name, value, wire, text) BCTX_##name,
    BCTX_ERRNO_MAP (XX)
#undef XX
};

/* The wire's codes, as DESIGN.md lists them. */
static const char *s_wire[] = {
    "bad_request", "unknown_context", "unknown_command", "unknown_projection",
    "rejected", "conflict", "unavailable", "too_large", "forbidden", "internal"
};

/* Is code one of DESIGN.md's wire codes? */
static int
s_is_wire (const char *code)
{
    for (size_t i = 0; i < sizeof s_wire / sizeof *s_wire; i++)
        if (code && strcmp (code, s_wire[i]) == 0)
            return 1;
    return 0;
}

static void
test_every_code (void **state)
{
    (void) state;
    size_t n = sizeof s_codes / sizeof *s_codes;
    assert_true (n >= 10);
    for (size_t i = 0; i < n; i++) {
        assert_true (s_codes[i] < 0);
        const char *text = bctx_strerror (s_codes[i]);
        assert_non_null (text);
        assert_string_not_equal (text, "unknown error");
        assert_true (s_is_wire (bctx_error_wire (s_codes[i])));
        for (size_t j = 0; j < i; j++)
            assert_string_not_equal (text, bctx_strerror (s_codes[j]));
    }
}

static void
test_wire_codes (void **state)
{
    (void) state;
    /* The first ten are the wire's own, in DESIGN.md's order. */
    for (size_t i = 0; i < sizeof s_wire / sizeof *s_wire; i++)
        assert_string_equal (bctx_error_wire (s_codes[i]), s_wire[i]);
    /* The loader's and the store's outcomes. */
    assert_string_equal (bctx_error_wire (BCTX_ELOAD), BCTX_E_BAD_REQUEST);
    assert_string_equal (bctx_error_wire (BCTX_ELOADFORBIDDEN), BCTX_E_FORBIDDEN);
    assert_string_equal (bctx_error_wire (BCTX_ELOADTOOBIG), BCTX_E_TOO_LARGE);
    assert_string_equal (bctx_error_wire (BCTX_ELOADTIMEDOUT), BCTX_E_UNAVAILABLE);
    assert_string_equal (bctx_error_wire (BCTX_ESTORE), BCTX_E_INTERNAL);
    assert_string_equal (bctx_error_wire (BCTX_ESTORECONFLICT), BCTX_E_CONFLICT);
    assert_string_equal (bctx_error_wire (BCTX_ESTOREDAMAGED), BCTX_E_INTERNAL);
}

static void
test_not_ours (void **state)
{
    (void) state;
    assert_string_equal (bctx_strerror (BCTX_EOK), "ok");
    assert_null (bctx_error_wire (BCTX_EOK));
    assert_string_equal (bctx_strerror (-9999), "unknown error");
    assert_string_equal (bctx_strerror (7), "unknown error");
    assert_string_equal (bctx_error_wire (-9999), BCTX_E_INTERNAL);
}

static void
test_http_statuses (void **state)
{
    (void) state;
    /* docs/http.md's table, in s_wire's order. */
    static const unsigned want[] = { 400, 404, 404, 404, 422, 409, 503, 413, 403, 500 };
    for (size_t i = 0; i < sizeof s_wire / sizeof *s_wire; i++)
        assert_int_equal (bctx_http_status (s_wire[i]), want[i]);
    assert_int_equal (bctx_http_status (NULL), 200);
    /* A code the map does not know is the gateway's fault, not the
     * client's. */
    assert_int_equal (bctx_http_status ("no_such_code"), 500);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_every_code),
        cmocka_unit_test (test_wire_codes),
        cmocka_unit_test (test_not_ours),
        cmocka_unit_test (test_http_statuses),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
