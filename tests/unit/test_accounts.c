/*
 * test_accounts - given-when-then tests of the accounts plugin with
 * bctx/testing.h: every command, every rejection and every invalid datum
 * of the bank domain, and the state evolve folds.  The plugin is the built
 * plugins/accounts/accounts.so under $BCTX_BUILD (default ".").
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>

#include <bctx/testing.h>

static int
s_setup (void **state)
{
    const char *root = getenv ("BCTX_BUILD");
    char path[4096];
    snprintf (path, sizeof path, "%s/plugins/accounts/accounts.so", root && *root ? root : ".");
    *state = bctx_testing_open (path, NULL);
    return *state ? 0 : -1;
}

static int
s_teardown (void **state)
{
    bctx_testing_destroy ((bctx_testing_t **) state);
    return 0;
}

#define OPENED "{\"account\":\"a1\",\"owner\":\"Ann\"}"

static void
test_open_account (void **state)
{
    bctx_testing_t *t = *state;
    assert_int_equal (bctx_testing_when (t, "OpenAccount", OPENED), BCTX_OK);
    bctx_assert_events (t, "[{\"type\":\"AccountOpened\",\"data\":" OPENED "}]");
    bctx_assert_state (t, "a1", "{\"owner\":\"Ann\",\"balance\":0}");
}

static void
test_open_twice_is_rejected (void **state)
{
    bctx_testing_t *t = *state;
    bctx_assert_given (t, "a1", "AccountOpened", OPENED);
    assert_int_equal (bctx_testing_when (t, "OpenAccount", OPENED), BCTX_REJECT);
    bctx_assert_rejected (t, "account a1 is already open");
}

static void
test_open_needs_an_owner (void **state)
{
    bctx_testing_t *t = *state;
    bctx_testing_when (t, "OpenAccount", "{\"account\":\"a1\"}");
    bctx_assert_invalid (t, "data.owner");
    bctx_testing_when (t, "OpenAccount", "{\"account\":\"a1\",\"owner\":\"\"}");
    bctx_assert_invalid (t, "data.owner");
    bctx_assert_state (t, "a1", "null");
}

static void
test_deposit (void **state)
{
    bctx_testing_t *t = *state;
    bctx_assert_given (t, "a1", "AccountOpened", OPENED);
    bctx_assert_given (t, "a1", "Deposited", "{\"account\":\"a1\",\"amount\":10,\"balance\":10}");
    bctx_testing_when (t, "Deposit", "{\"account\":\"a1\",\"amount\":5}");
    bctx_assert_events (t, "[{\"type\":\"Deposited\","
                           "\"data\":{\"account\":\"a1\",\"amount\":5,\"balance\":15}}]");
    bctx_assert_state (t, "a1", "{\"owner\":\"Ann\",\"balance\":15}");
}

static void
test_deposit_rejections (void **state)
{
    bctx_testing_t *t = *state;
    bctx_testing_when (t, "Deposit", "{\"account\":\"nope\",\"amount\":5}");
    bctx_assert_rejected (t, "unknown account nope");
    bctx_assert_given (t, "a1", "AccountOpened", OPENED);
    bctx_testing_when (t, "Deposit", "{\"account\":\"a1\",\"amount\":4611686018427387904}");
    bctx_assert_rejected (t, "would overflow account a1");
    bctx_assert_state (t, "a1", "{\"owner\":\"Ann\",\"balance\":0}");
}

static void
test_amount_must_be_positive_integer (void **state)
{
    bctx_testing_t *t = *state;
    bctx_assert_given (t, "a1", "AccountOpened", OPENED);
    const char *bad[] = { "{\"account\":\"a1\"}", "{\"account\":\"a1\",\"amount\":0}",
                          "{\"account\":\"a1\",\"amount\":-3}",
                          "{\"account\":\"a1\",\"amount\":\"7\"}",
                          "{\"account\":\"a1\",\"amount\":1.5}" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        bctx_testing_when (t, "Deposit", bad[i]);
        bctx_assert_invalid (t, "data.amount: expected a positive integer");
        bctx_testing_when (t, "Withdraw", bad[i]);
        bctx_assert_invalid (t, "data.amount: expected a positive integer");
    }
}

static void
test_withdraw (void **state)
{
    bctx_testing_t *t = *state;
    bctx_assert_given (t, "a1", "AccountOpened", OPENED);
    bctx_assert_given (t, "a1", "Deposited", "{\"account\":\"a1\",\"amount\":10,\"balance\":10}");
    bctx_testing_when (t, "Withdraw", "{\"account\":\"a1\",\"amount\":10}");
    bctx_assert_events (t, "[{\"type\":\"Withdrawn\","
                           "\"data\":{\"account\":\"a1\",\"amount\":10,\"balance\":0}}]");
    bctx_assert_state (t, "a1", "{\"owner\":\"Ann\",\"balance\":0}");
}

static void
test_withdraw_rejections (void **state)
{
    bctx_testing_t *t = *state;
    bctx_testing_when (t, "Withdraw", "{\"account\":\"nope\",\"amount\":1}");
    bctx_assert_rejected (t, "unknown account nope");
    bctx_assert_given (t, "a1", "AccountOpened", OPENED);
    bctx_assert_given (t, "a1", "Deposited", "{\"account\":\"a1\",\"amount\":3,\"balance\":3}");
    bctx_testing_when (t, "Withdraw", "{\"account\":\"a1\",\"amount\":4}");
    bctx_assert_rejected (t, "insufficient funds: account a1 has 3, withdrawal of 4");
    bctx_assert_state (t, "a1", "{\"owner\":\"Ann\",\"balance\":3}");
}

/* What the harness itself refuses, as the host does. */
static void
test_harness_refusals (void **state)
{
    bctx_testing_t *t = *state;
    assert_int_equal (bctx_testing_when (t, "Close", "{\"account\":\"a1\"}"), BCTX_ERROR);
    assert_non_null (strstr (bctx_testing_error (t), "unknown command Close"));
    assert_int_equal (bctx_testing_when (t, "Deposit", "{\"amount\":1}"), BCTX_INVALID);
    assert_non_null (strstr (bctx_testing_error (t), "data.account"));
    assert_int_equal (bctx_testing_when (t, "Deposit", "{\"account\":"), BCTX_ERROR);
    assert_non_null (strstr (bctx_testing_error (t), "bad JSON"));
    /* evolve refuses money on an account never opened. */
    assert_int_equal (bctx_testing_given (t, "a2", "Deposited", "{\"amount\":1}"), -1);
    assert_non_null (strstr (bctx_testing_error (t), "evolve returned NULL"));
    /* A then that does not hold says what it got. */
    bctx_testing_when (t, "Deposit", "{\"account\":\"zz\",\"amount\":1}");
    assert_int_equal (bctx_testing_then_events (t, "[]"), -1);
    assert_non_null (strstr (bctx_testing_error (t), "unknown account zz"));
    assert_int_equal (bctx_testing_then_refused (t, BCTX_REJECT, "other text"), -1);
    assert_null (bctx_testing_open ("/nonexistent/x.so", NULL));
}

#define T(f) cmocka_unit_test_setup_teardown (f, s_setup, s_teardown)

int
main (void)
{
    const struct CMUnitTest tests[] = {
        T (test_open_account), T (test_open_twice_is_rejected), T (test_open_needs_an_owner),
        T (test_deposit), T (test_deposit_rejections), T (test_amount_must_be_positive_integer),
        T (test_withdraw), T (test_withdraw_rejections), T (test_harness_refusals),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
