/*
 * test_decided - unit tests of bctx_decided_check (host/worker), the check
 * of what a plugin's decide returned before the host folds or stores any
 * of it: a valid array passes and yields each event's data as compact
 * JSON; an array of the wrong shape is malformed; too many events, or an
 * event whose data is too big, is too large.  Each refusal says which
 * event and why.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "worker.h"

/* Checks the JSON `text` with the given limits.  Return the code, with the
 * reason in why. */
static int
s_check (const char *text, size_t max_events, size_t max_data, char *why, size_t whylen)
{
    json_error_t jerr;
    json_t *events = json_loads (text, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
    if (!events)
        fail_msg ("bad test JSON %s: %s", text, jerr.text);
    char *texts[16] = { 0 };
    why[0] = '\0';
    int rc = bctx_decided_check (events, max_events, max_data,
                                 json_array_size (events) <= 16 ? texts : NULL, why, whylen);
    for (size_t i = 0; i < 16; i++) {
        if (rc != 0 && texts[i])
            fail_msg ("a refusal left text %zu set", i);
        free (texts[i]);
    }
    json_decref (events);
    return rc;
}

/* Expects `text` refused with code `code` and a reason containing needle. */
static void
s_refused (const char *text, size_t max_events, size_t max_data, int code, const char *needle)
{
    char why[256];
    int rc = s_check (text, max_events, max_data, why, sizeof why);
    if (rc != code)
        fail_msg ("%s: got %d, expected %d (%s)", text, rc, code, why);
    if (!strstr (why, needle))
        fail_msg ("%s: reason \"%s\" lacks \"%s\"", text, why, needle);
}

static void
test_valid (void **state)
{
    (void) state;
    json_t *events = json_loads ("[{\"type\": \"Deposited\", \"data\": {\"id\": \"a1\", \"n\": 5}},"
                                 " {\"type\": \"x_2\", \"data\": {}, \"extra\": 1}]", 0, NULL);
    assert_non_null (events);
    char *texts[2] = { NULL, NULL };
    char why[256] = "";
    assert_int_equal (bctx_decided_check (events, 2, 64, texts, why, sizeof why), 0);
    assert_string_equal (texts[0], "{\"id\":\"a1\",\"n\":5}");
    assert_string_equal (texts[1], "{}");
    free (texts[0]);
    free (texts[1]);
    /* Without texts, only the check. */
    assert_int_equal (bctx_decided_check (events, 2, 64, NULL, why, sizeof why), 0);
    json_decref (events);
    /* No events at all is a valid outcome. */
    assert_int_equal (s_check ("[]", 1, 64, why, sizeof why), 0);
    /* The limits are inclusive: 17 bytes of data, at most 17. */
    assert_int_equal (s_check ("[{\"type\": \"T\", \"data\": {\"id\": \"a1\", \"n\": 5}}]", 1, 17,
                               why, sizeof why), 0);
    /* A type of 128 characters is the longest allowed. */
    char text[512];
    snprintf (text, sizeof text, "[{\"type\": \"%0128d\", \"data\": {}}]", 0);
    assert_int_equal (s_check (text, 1, 64, why, sizeof why), 0);
}

static void
test_malformed (void **state)
{
    (void) state;
    s_refused ("{\"type\": \"T\", \"data\": {}}", 10, 64, BCTX_DECIDED_MALFORMED,
               "not an array");
    s_refused ("null", 10, 64, BCTX_DECIDED_MALFORMED, "not an array");
    s_refused ("[17]", 10, 64, BCTX_DECIDED_MALFORMED, "event 0, which is not an object");
    s_refused ("[{\"data\": {}}]", 10, 64, BCTX_DECIDED_MALFORMED,
               "event 0 without a valid type");
    s_refused ("[{\"type\": \"T\", \"data\": {}}, {\"type\": 7, \"data\": {}}]", 10, 64,
               BCTX_DECIDED_MALFORMED, "event 1 without a valid type");
    s_refused ("[{\"type\": \"\", \"data\": {}}]", 10, 64, BCTX_DECIDED_MALFORMED,
               "without a valid type");
    s_refused ("[{\"type\": \"a.b\", \"data\": {}}]", 10, 64, BCTX_DECIDED_MALFORMED,
               "without a valid type");
    s_refused ("[{\"type\": \"a b\", \"data\": {}}]", 10, 64, BCTX_DECIDED_MALFORMED,
               "without a valid type");
    s_refused ("[{\"type\": \"a\\u0000b\", \"data\": {}}]", 10, 64, BCTX_DECIDED_MALFORMED,
               "without a valid type");
    s_refused ("[{\"type\": \"\\u00e9t\\u00e9\", \"data\": {}}]", 10, 64,
               BCTX_DECIDED_MALFORMED, "without a valid type");
    char text[512];
    snprintf (text, sizeof text, "[{\"type\": \"%0129d\", \"data\": {}}]", 0);
    s_refused (text, 10, 64, BCTX_DECIDED_MALFORMED, "without a valid type");
    s_refused ("[{\"type\": \"T\"}]", 10, 64, BCTX_DECIDED_MALFORMED,
               "event 0 (T) whose data is not an object");
    s_refused ("[{\"type\": \"T\", \"data\": [1]}]", 10, 64, BCTX_DECIDED_MALFORMED,
               "whose data is not an object");
    s_refused ("[{\"type\": \"T\", \"data\": \"x\"}]", 10, 64, BCTX_DECIDED_MALFORMED,
               "whose data is not an object");
    /* The first fault wins, and texts filled before it are freed. */
    s_refused ("[{\"type\": \"T\", \"data\": {\"a\": 1}}, {\"type\": \"U\", \"data\": null}]",
               10, 64, BCTX_DECIDED_MALFORMED, "event 1 (U)");
}

static void
test_too_large (void **state)
{
    (void) state;
    s_refused ("[{\"type\": \"T\", \"data\": {}}, {\"type\": \"T\", \"data\": {}},"
               " {\"type\": \"T\", \"data\": {}}]", 2, 64, BCTX_DECIDED_TOO_LARGE,
               "3 events, over the limit of 2 (host.max_events_per_command)");
    /* Counted before anything is looked at. */
    s_refused ("[1, 2]", 1, 64, BCTX_DECIDED_TOO_LARGE, "2 events");
    s_refused ("[{\"type\": \"T\", \"data\": {\"id\": \"a1\", \"n\": 5}}]", 1, 16,
               BCTX_DECIDED_TOO_LARGE,
               "event 0 (T) with data of 17 bytes, over the limit of 16 (host.max_message)");
    s_refused ("[{\"type\": \"T\", \"data\": {}}, {\"type\": \"Big\", \"data\": {\"s\": \"xxxxxxxx\"}}]",
               2, 8, BCTX_DECIDED_TOO_LARGE, "event 1 (Big) with data of 16 bytes");
    /* A message too short for the reason is cut, not overrun. */
    char why[8];
    assert_int_equal (s_check ("[1, 2]", 1, 64, why, sizeof why), BCTX_DECIDED_TOO_LARGE);
    assert_int_equal (strlen (why), 7);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_valid),
        cmocka_unit_test (test_malformed),
        cmocka_unit_test (test_too_large),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
