/*
 * transfers - the bank's transfers context, its read side, and the process
 * that moves the money.
 *
 * Commands (aggregate: data.transfer):
 *   RequestTransfer {transfer, from, to, amount} -> TransferRequested
 *   CompleteTransfer {transfer}                 -> TransferCompleted
 *   FailTransfer {transfer, reason}             -> TransferFailed
 *
 * Reactor "transfer-process", on TransferRequested: Withdraw from the
 * source account, then Deposit to the target, then CompleteTransfer.  If
 * the withdrawal is rejected (insufficient funds, unknown account) it
 * sends FailTransfer with the reason; if the deposit is rejected (unknown
 * account) it gives the money back to the source first.  Every command it
 * sends has an id derived from the event, so a redelivered event repeats
 * nothing: money is conserved whatever crashes in between.
 *
 * Projections:
 *   balances  (accounts.*)   account -> {"owner", "balance"}
 *   transfers (transfers.*)  transfer -> {"state", "from", "to", "amount", "reason"?}
 */
#include <bctx/plugin.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef BALANCES_VERSION
#define BALANCES_VERSION 1
#endif

static const char *
s_str (const json_t *data, const char *key)
{
    return json_string_value (json_object_get (data, key));
}

/* --- the transfer aggregate ------------------------------------------ */

static int
s_request (void *user, const json_t *state, const json_t *data, json_t *events,
           bctx_reason_t *why)
{
    (void) user;
    const char *from = s_str (data, "from"), *to = s_str (data, "to");
    const json_t *amount = json_object_get (data, "amount");
    if (!from || !*from || !to || !*to) {
        bctx_reason (why, "data.from and data.to: expected account ids");
        return BCTX_INVALID;
    }
    if (!json_is_integer (amount) || json_integer_value (amount) <= 0) {
        bctx_reason (why, "data.amount: expected a positive integer");
        return BCTX_INVALID;
    }
    if (strcmp (from, to) == 0)
        return bctx_reason (why, "a transfer needs two different accounts");
    if (state)
        return bctx_reason (why, "transfer %s was already requested", s_str (data, "transfer"));
    return bctx_emit (events, "TransferRequested",
                      json_pack ("{s:s, s:s, s:s, s:O}", "transfer", s_str (data, "transfer"),
                                 "from", from, "to", to, "amount", amount))
           == 0 ? BCTX_OK : BCTX_ERROR;
}

/* Completing or failing: only a requested transfer, only once. */
static int
s_finish (const json_t *state, const json_t *data, json_t *events, bctx_reason_t *why,
          const char *type, json_t *extra)
{
    const char *transfer = s_str (data, "transfer");
    if (!state) {
        json_decref (extra);
        return bctx_reason (why, "unknown transfer %s", transfer);
    }
    const char *now = s_str (state, "state");
    if (strcmp (now, "requested") != 0) {
        json_decref (extra);
        return bctx_reason (why, "transfer %s is already %s", transfer, now);
    }
    json_t *ev = extra ? extra : json_object ();
    json_object_set_new (ev, "transfer", json_string (transfer));
    return bctx_emit (events, type, ev) == 0 ? BCTX_OK : BCTX_ERROR;
}

static int
s_complete (void *user, const json_t *state, const json_t *data, json_t *events,
            bctx_reason_t *why)
{
    (void) user;
    return s_finish (state, data, events, why, "TransferCompleted", NULL);
}

static int
s_fail (void *user, const json_t *state, const json_t *data, json_t *events,
        bctx_reason_t *why)
{
    (void) user;
    const char *reason = s_str (data, "reason");
    if (!reason) {
        bctx_reason (why, "data.reason: expected a string");
        return BCTX_INVALID;
    }
    return s_finish (state, data, events, why, "TransferFailed",
                     json_pack ("{s:s}", "reason", reason));
}

/* state: stolen.  Return: new. */
static json_t *
s_evolve (void *user, json_t *state, const char *type, const json_t *data)
{
    (void) user;
    if (strcmp (type, "TransferRequested") == 0) {
        json_decref (state);
        return json_pack ("{s:s, s:O, s:O, s:O}", "state", "requested",
                          "from", json_object_get (data, "from"),
                          "to", json_object_get (data, "to"),
                          "amount", json_object_get (data, "amount"));
    }
    if (!state)
        return NULL;
    if (strcmp (type, "TransferCompleted") == 0)
        json_object_set_new (state, "state", json_string ("completed"));
    else if (strcmp (type, "TransferFailed") == 0)
        json_object_set_new (state, "state", json_string ("failed"));
    return state;
}

/* --- the process ----------------------------------------------------- */

static int
s_react (void *user, const bctx_host_t *host, bctx_reaction_t *r, const bctx_event_t *ev)
{
    (void) user;
    const char *transfer = s_str (ev->data, "transfer");
    const char *from = s_str (ev->data, "from"), *to = s_str (ev->data, "to");
    json_int_t amount = json_integer_value (json_object_get (ev->data, "amount"));
    bctx_reason_t why;
    int rc = host->send (r, "accounts", "Withdraw",
                         json_pack ("{s:s, s:I}", "account", from, "amount", amount), &why);
    if (rc == BCTX_ERROR)
        return BCTX_ERROR;
    if (rc == BCTX_REJECT) {
        rc = host->send (r, "transfers", "FailTransfer",
                         json_pack ("{s:s, s:s}", "transfer", transfer, "reason", why.text),
                         &why);
        return rc == BCTX_ERROR ? BCTX_ERROR : BCTX_OK;
    }
    rc = host->send (r, "accounts", "Deposit",
                     json_pack ("{s:s, s:I}", "account", to, "amount", amount), &why);
    if (rc == BCTX_ERROR)
        return BCTX_ERROR;
    if (rc == BCTX_REJECT) {
        /* Give the money back, then say why the transfer failed. */
        char reason[300];
        snprintf (reason, sizeof reason, "%s (refunded)", why.text);
        rc = host->send (r, "accounts", "Deposit",
                         json_pack ("{s:s, s:I}", "account", from, "amount", amount), &why);
        if (rc != BCTX_OK)
            return BCTX_ERROR;
        rc = host->send (r, "transfers", "FailTransfer",
                         json_pack ("{s:s, s:s}", "transfer", transfer, "reason", reason), &why);
        return rc == BCTX_ERROR ? BCTX_ERROR : BCTX_OK;
    }
    rc = host->send (r, "transfers", "CompleteTransfer",
                     json_pack ("{s:s}", "transfer", transfer), &why);
    return rc == BCTX_ERROR ? BCTX_ERROR : BCTX_OK;
}

/* --- projections ----------------------------------------------------- */

static int
s_balances (void *user, const bctx_host_t *host, bctx_models_t *models,
            const bctx_event_t *ev)
{
    (void) user;
    const char *account = ev->aggregate;
    if (strcmp (ev->type, "AccountOpened") == 0)
        return host->model_put (models, account,
                                json_pack ("{s:O, s:i}", "owner",
                                           json_object_get (ev->data, "owner"),
                                           "balance", 0)) == 0 ? BCTX_OK : BCTX_ERROR;
    json_t *model = host->model_get (models, account);
    if (!model)
        return BCTX_ERROR;         /* money on an account never opened */
    json_int_t amount = json_integer_value (json_object_get (ev->data, "amount"));
    json_int_t balance = json_integer_value (json_object_get (model, "balance"));
    if (strcmp (ev->type, "Deposited") == 0)
        balance += amount;
    else if (strcmp (ev->type, "Withdrawn") == 0)
        balance -= amount;
    json_object_set_new (model, "balance", json_integer (balance));
    return host->model_put (models, account, model) == 0 ? BCTX_OK : BCTX_ERROR;
}

static int
s_transfers (void *user, const bctx_host_t *host, bctx_models_t *models,
             const bctx_event_t *ev)
{
    (void) user;
    const char *transfer = ev->aggregate;
    if (strcmp (ev->type, "TransferRequested") == 0)
        return host->model_put (models, transfer,
                                json_pack ("{s:s, s:O, s:O, s:O}", "state", "requested",
                                           "from", json_object_get (ev->data, "from"),
                                           "to", json_object_get (ev->data, "to"),
                                           "amount", json_object_get (ev->data, "amount")))
               == 0 ? BCTX_OK : BCTX_ERROR;
    json_t *model = host->model_get (models, transfer);
    if (!model)
        return BCTX_ERROR;
    if (strcmp (ev->type, "TransferCompleted") == 0) {
        json_object_set_new (model, "state", json_string ("completed"));
    } else if (strcmp (ev->type, "TransferFailed") == 0) {
        json_object_set_new (model, "state", json_string ("failed"));
        json_object_set (model, "reason", json_object_get (ev->data, "reason"));
    }
    return host->model_put (models, transfer, model) == 0 ? BCTX_OK : BCTX_ERROR;
}

static const char *const s_accounts_events[] = {
    "accounts.AccountOpened", "accounts.Deposited", "accounts.Withdrawn", NULL
};
static const char *const s_transfer_events[] = { "transfers.*", NULL };
static const char *const s_requested[] = { "transfers.TransferRequested", NULL };

static const bctx_projection_t s_projections[] = {
    { .name = "balances", .version = BALANCES_VERSION, .consumes = s_accounts_events,
      .handle = s_balances },
    { .name = "transfers", .version = 1, .consumes = s_transfer_events,
      .handle = s_transfers },
    { .name = NULL }
};

static const bctx_reactor_t s_reactors[] = {
    { .name = "transfer-process", .consumes = s_requested, .react = s_react },
    { .name = NULL }
};

static const bctx_command_t s_commands[] = {
    { .name = "RequestTransfer", .aggregate_field = "transfer", .decide = s_request },
    { .name = "CompleteTransfer", .aggregate_field = "transfer", .decide = s_complete },
    { .name = "FailTransfer", .aggregate_field = "transfer", .decide = s_fail },
    { .name = NULL }
};

static const bctx_context_t s_transfers_ctx = BCTX_CONTEXT_INIT (
    .name = "transfers",
    .version = "1.0.0",
    .commands = s_commands,
    .evolve = s_evolve,
    .projections = s_projections,
    .reactors = s_reactors,
);

BCTX_DECLARE_CONTEXT (s_transfers_ctx)
