/*
 * accounts - the bank's accounts context: OpenAccount, Deposit, Withdraw.
 *
 * An account is an aggregate identified by data.account.  Its state is
 * {"owner": "...", "balance": N}.  A balance never goes below zero, amounts
 * are positive integers, an account opens once, and every other command
 * needs an open account.
 */
#include <bctx/plugin.h>
#include <stdlib.h>
#include <string.h>

#ifndef ACCOUNTS_VERSION
#define ACCOUNTS_VERSION "1.0.0"
#endif

/* Reads data.amount as a positive integer into *amount. */
static int
s_amount (const json_t *data, json_int_t *amount, bctx_reason_t *why)
{
    const json_t *v = json_object_get (data, "amount");
    if (!json_is_integer (v) || json_integer_value (v) <= 0) {
        bctx_reason (why, "data.amount: expected a positive integer");
        return BCTX_INVALID;
    }
    *amount = json_integer_value (v);
    return BCTX_OK;
}

static json_int_t
s_balance (const json_t *state)
{
    return json_integer_value (json_object_get (state, "balance"));
}

static int
s_open (void *user, const json_t *state, const json_t *data, json_t *events,
        bctx_reason_t *why)
{
    (void) user;
    const char *account = json_string_value (json_object_get (data, "account"));
    const json_t *owner = json_object_get (data, "owner");
    if (!json_is_string (owner) || json_string_length (owner) == 0) {
        bctx_reason (why, "data.owner: expected a non-empty string");
        return BCTX_INVALID;
    }
    if (state)
        return bctx_reason (why, "account %s is already open", account);
    return bctx_emit (events, "AccountOpened",
                      json_pack ("{s:s, s:O}", "account", account,
                                 "owner", owner)) == 0 ? BCTX_OK : BCTX_ERROR;
}

static int
s_deposit (void *user, const json_t *state, const json_t *data,
           json_t *events, bctx_reason_t *why)
{
    (void) user;
    const char *account = json_string_value (json_object_get (data, "account"));
    json_int_t amount;
    if (s_amount (data, &amount, why) != BCTX_OK)
        return BCTX_INVALID;
    if (!state)
        return bctx_reason (why, "unknown account %s", account);
    json_int_t balance = s_balance (state);
    if (amount > INT64_MAX / 2 - balance)
        return bctx_reason (why, "deposit of %lld would overflow account %s",
                            (long long) amount, account);
    return bctx_emit (events, "Deposited",
                      json_pack ("{s:s, s:I, s:I}", "account", account,
                                 "amount", amount, "balance", balance + amount))
           == 0 ? BCTX_OK : BCTX_ERROR;
}

static int
s_withdraw (void *user, const json_t *state, const json_t *data,
            json_t *events, bctx_reason_t *why)
{
    (void) user;
    const char *account = json_string_value (json_object_get (data, "account"));
    json_int_t amount;
    if (s_amount (data, &amount, why) != BCTX_OK)
        return BCTX_INVALID;
    if (!state)
        return bctx_reason (why, "unknown account %s", account);
    json_int_t balance = s_balance (state);
    if (amount > balance)
        return bctx_reason (why, "insufficient funds: account %s has %lld, "
                            "withdrawal of %lld", account, (long long) balance,
                            (long long) amount);
    return bctx_emit (events, "Withdrawn",
                      json_pack ("{s:s, s:I, s:I}", "account", account,
                                 "amount", amount, "balance", balance - amount))
           == 0 ? BCTX_OK : BCTX_ERROR;
}

/* state: stolen.  Return: new. */
static json_t *
s_evolve (void *user, json_t *state, const char *type, const json_t *data)
{
    (void) user;
    if (strcmp (type, "AccountOpened") == 0) {
        json_decref (state);
        return json_pack ("{s:O, s:I}", "owner", json_object_get (data, "owner"),
                          "balance", (json_int_t) 0);
    }
    if (!state)
        return NULL;               /* money moved on an account never opened */
    json_int_t amount = json_integer_value (json_object_get (data, "amount"));
    if (strcmp (type, "Deposited") == 0)
        json_object_set_new (state, "balance", json_integer (s_balance (state) + amount));
    else if (strcmp (type, "Withdrawn") == 0)
        json_object_set_new (state, "balance", json_integer (s_balance (state) - amount));
    /* Event types this version does not know leave the state as it is. */
    return state;
}

static const bctx_command_t s_commands[] = {
    { .name = "OpenAccount", .aggregate_field = "account", .decide = s_open },
    { .name = "Deposit", .aggregate_field = "account", .decide = s_deposit },
    { .name = "Withdraw", .aggregate_field = "account", .decide = s_withdraw },
    { .name = NULL }
};

static const bctx_context_t s_accounts = BCTX_CONTEXT_INIT (
    .name = "accounts",
    .version = ACCOUNTS_VERSION,
    .commands = s_commands,
    .evolve = s_evolve,
);

BCTX_DECLARE_CONTEXT (s_accounts)
