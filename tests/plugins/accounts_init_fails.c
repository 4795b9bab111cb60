/*
 * accounts_init_fails - a test-only plugin that claims to be the
 * "accounts" context (so a reload of accounts gets past the name check)
 * but whose init logs why through host->log and returns BCTX_ERROR, as a
 * new version does when it cannot start.  A reload to it must fail, say
 * that init failed, leave the old version serving, and never call fini
 * (init stored nothing to free).
 */
#include <bctx/plugin.h>
#include <stdlib.h>

static int
s_decide (void *user, const json_t *state, const json_t *data,
          json_t *events, bctx_reason_t *why)
{
    (void) user, (void) state, (void) data, (void) why;
    return bctx_emit (events, "Deposited", NULL) == 0 ? BCTX_OK : BCTX_ERROR;
}

static json_t *
s_evolve (void *user, json_t *state, const char *type, const json_t *data)
{
    (void) user, (void) type, (void) data;
    return state ? state : json_object ();
}

static int
s_init (const bctx_host_t *host, const json_t *settings, void **user)
{
    (void) settings;
    *user = NULL;
    host->log (host, BCTX_LOG_ERROR, "accounts_init_fails: refusing to start (%s)",
               "this version always fails its init");
    return BCTX_ERROR;
}

/* Never called: the host calls fini only after a successful init. */
static void
s_fini (void *user)
{
    (void) user;
    abort ();
}

static const bctx_command_t s_commands[] = {
    { .name = "OpenAccount", .aggregate_field = "account", .decide = s_decide },
    { .name = "Deposit", .aggregate_field = "account", .decide = s_decide },
    { .name = NULL }
};

static const bctx_context_t s_context = BCTX_CONTEXT_INIT (
    .name = "accounts",
    .version = "9.9.9",
    .commands = s_commands,
    .evolve = s_evolve,
    .init = s_init,
    .fini = s_fini,
);

BCTX_DECLARE_CONTEXT (s_context)
