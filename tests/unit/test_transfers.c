/*
 * test_transfers - given-when-then tests of the transfers plugin with
 * bctx/testing.h: its three commands and their rejections, its two
 * projections, and the transfer-process reactor's paths (completed,
 * withdrawal rejected, deposit rejected and refunded, retry on error).
 * The plugin is plugins/transfers/transfers.so under $BCTX_BUILD.
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
    snprintf (path, sizeof path, "%s/plugins/transfers/transfers.so", root && *root ? root : ".");
    *state = bctx_testing_open (path, NULL);
    return *state ? 0 : -1;
}

static int
s_teardown (void **state)
{
    bctx_testing_destroy ((bctx_testing_t **) state);
    return 0;
}

#define REQ "{\"transfer\":\"t1\",\"from\":\"a\",\"to\":\"b\",\"amount\":5}"

static void
test_request (void **state)
{
    bctx_testing_t *t = *state;
    bctx_testing_when (t, "RequestTransfer", REQ);
    bctx_assert_events (t, "[{\"type\":\"TransferRequested\",\"data\":" REQ "}]");
    bctx_assert_state (t, "t1", "{\"state\":\"requested\",\"from\":\"a\",\"to\":\"b\",\"amount\":5}");
    bctx_testing_when (t, "RequestTransfer", REQ);
    bctx_assert_rejected (t, "transfer t1 was already requested");
}

static void
test_request_refusals (void **state)
{
    bctx_testing_t *t = *state;
    bctx_testing_when (t, "RequestTransfer", "{\"transfer\":\"t1\",\"from\":\"a\",\"to\":\"a\",\"amount\":5}");
    bctx_assert_rejected (t, "a transfer needs two different accounts");
    bctx_testing_when (t, "RequestTransfer", "{\"transfer\":\"t1\",\"to\":\"b\",\"amount\":5}");
    bctx_assert_invalid (t, "data.from and data.to");
    bctx_testing_when (t, "RequestTransfer", "{\"transfer\":\"t1\",\"from\":\"a\",\"to\":\"b\",\"amount\":0}");
    bctx_assert_invalid (t, "data.amount: expected a positive integer");
    bctx_assert_state (t, "t1", "null");
}

static void
test_complete_and_fail (void **state)
{
    bctx_testing_t *t = *state;
    bctx_testing_when (t, "CompleteTransfer", "{\"transfer\":\"t1\"}");
    bctx_assert_rejected (t, "unknown transfer t1");
    bctx_testing_when (t, "FailTransfer", "{\"transfer\":\"t1\",\"reason\":\"x\"}");
    bctx_assert_rejected (t, "unknown transfer t1");
    bctx_assert_given (t, "t1", "TransferRequested", REQ);
    bctx_testing_when (t, "FailTransfer", "{\"transfer\":\"t1\"}");
    bctx_assert_invalid (t, "data.reason: expected a string");
    bctx_testing_when (t, "CompleteTransfer", "{\"transfer\":\"t1\"}");
    bctx_assert_events (t, "[{\"type\":\"TransferCompleted\",\"data\":{\"transfer\":\"t1\"}}]");
    bctx_testing_when (t, "CompleteTransfer", "{\"transfer\":\"t1\"}");
    bctx_assert_rejected (t, "transfer t1 is already completed");
    bctx_testing_when (t, "FailTransfer", "{\"transfer\":\"t1\",\"reason\":\"x\"}");
    bctx_assert_rejected (t, "transfer t1 is already completed");

    bctx_assert_given (t, "t2", "TransferRequested", REQ);
    bctx_testing_when (t, "FailTransfer", "{\"transfer\":\"t2\",\"reason\":\"no money\"}");
    bctx_assert_events (t, "[{\"type\":\"TransferFailed\","
                           "\"data\":{\"transfer\":\"t2\",\"reason\":\"no money\"}}]");
    bctx_assert_state (t, "t2", "{\"state\":\"failed\",\"from\":\"a\",\"to\":\"b\",\"amount\":5}");
}

static void
test_balances_projection (void **state)
{
    bctx_testing_t *t = *state;
    assert_int_equal (bctx_testing_project (t, "balances", "accounts", "a", "AccountOpened",
                                            "{\"account\":\"a\",\"owner\":\"Ann\"}"), BCTX_OK);
    assert_int_equal (bctx_testing_project (t, "balances", "accounts", "a", "Deposited",
                                            "{\"account\":\"a\",\"amount\":9}"), BCTX_OK);
    assert_int_equal (bctx_testing_project (t, "balances", "accounts", "a", "Withdrawn",
                                            "{\"account\":\"a\",\"amount\":4}"), BCTX_OK);
    bctx_assert_model (t, "balances", "a", "{\"owner\":\"Ann\",\"balance\":5}");
    /* Money on an account never opened stops the projection. */
    assert_int_equal (bctx_testing_project (t, "balances", "accounts", "zz", "Deposited",
                                            "{\"amount\":1}"), BCTX_ERROR);
    bctx_assert_model (t, "balances", "zz", "null");
}

static void
test_transfers_projection (void **state)
{
    bctx_testing_t *t = *state;
    assert_int_equal (bctx_testing_project (t, "transfers", "transfers", "t1",
                                            "TransferRequested", REQ), BCTX_OK);
    assert_int_equal (bctx_testing_project (t, "transfers", "transfers", "t1", "TransferFailed",
                                            "{\"transfer\":\"t1\",\"reason\":\"r\"}"), BCTX_OK);
    bctx_assert_model (t, "transfers", "t1", "{\"state\":\"failed\",\"from\":\"a\",\"to\":\"b\","
                                             "\"amount\":5,\"reason\":\"r\"}");
}

#define WITHDRAW "{\"context\":\"accounts\",\"command\":\"Withdraw\"," \
                 "\"data\":{\"account\":\"a\",\"amount\":5}}"
#define DEPOSIT_B "{\"context\":\"accounts\",\"command\":\"Deposit\"," \
                  "\"data\":{\"account\":\"b\",\"amount\":5}}"
#define DEPOSIT_A "{\"context\":\"accounts\",\"command\":\"Deposit\"," \
                  "\"data\":{\"account\":\"a\",\"amount\":5}}"

static void
test_process_completes (void **state)
{
    bctx_testing_t *t = *state;
    assert_int_equal (bctx_testing_react (t, "transfer-process", "transfers", "t1",
                                          "TransferRequested", REQ), BCTX_OK);
    bctx_assert_sent (t, "[" WITHDRAW "," DEPOSIT_B ",{\"context\":\"transfers\","
                         "\"command\":\"CompleteTransfer\",\"data\":{\"transfer\":\"t1\"}}]");
}

static void
test_process_withdrawal_rejected (void **state)
{
    bctx_testing_t *t = *state;
    bctx_testing_reply (t, BCTX_REJECT, "insufficient funds");
    assert_int_equal (bctx_testing_react (t, "transfer-process", "transfers", "t1",
                                          "TransferRequested", REQ), BCTX_OK);
    bctx_assert_sent (t, "[" WITHDRAW ",{\"context\":\"transfers\",\"command\":\"FailTransfer\","
                         "\"data\":{\"transfer\":\"t1\",\"reason\":\"insufficient funds\"}}]");
}

static void
test_process_deposit_rejected_refunds (void **state)
{
    bctx_testing_t *t = *state;
    bctx_testing_reply (t, BCTX_OK, NULL);
    bctx_testing_reply (t, BCTX_REJECT, "unknown account b");
    assert_int_equal (bctx_testing_react (t, "transfer-process", "transfers", "t1",
                                          "TransferRequested", REQ), BCTX_OK);
    bctx_assert_sent (t, "[" WITHDRAW "," DEPOSIT_B "," DEPOSIT_A ",{\"context\":\"transfers\","
                         "\"command\":\"FailTransfer\",\"data\":{\"transfer\":\"t1\","
                         "\"reason\":\"unknown account b (refunded)\"}}]");
}

static void
test_process_retries_on_error (void **state)
{
    bctx_testing_t *t = *state;
    bctx_testing_reply (t, BCTX_ERROR, "not now");
    assert_int_equal (bctx_testing_react (t, "transfer-process", "transfers", "t1",
                                          "TransferRequested", REQ), BCTX_ERROR);
    bctx_assert_sent (t, "[" WITHDRAW "]");
    assert_int_equal (bctx_testing_react (t, "nope", "transfers", "t1", "X", NULL), BCTX_ERROR);
    assert_int_equal (bctx_testing_project (t, "nope", "transfers", "t1", "X", NULL), BCTX_ERROR);
}

#define T(f) cmocka_unit_test_setup_teardown (f, s_setup, s_teardown)

int
main (void)
{
    const struct CMUnitTest tests[] = {
        T (test_request), T (test_request_refusals), T (test_complete_and_fail),
        T (test_balances_projection), T (test_transfers_projection),
        T (test_process_completes), T (test_process_withdrawal_rejected),
        T (test_process_deposit_rejected_refunds), T (test_process_retries_on_error),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
