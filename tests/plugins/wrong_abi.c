/*
 * wrong_abi - a test-only plugin built as if against a newer plugin.h: its
 * magic block says abi_version BCTX_ABI_VERSION + 1.  Everything else in
 * the descriptor is complete and valid, so the only reason the loader can
 * give for refusing it is the ABI version, and the message must name
 * magic.abi_version with both numbers.  The magic block is filled by hand
 * (not with BCTX_MAGIC) because being wrong is the point.
 */
#include <bctx/plugin.h>

static int
s_decide (void *user, const json_t *state, const json_t *data,
          json_t *events, bctx_reason_t *why)
{
    (void) user, (void) state, (void) data, (void) why;
    return bctx_emit (events, "Done", NULL) == 0 ? BCTX_OK : BCTX_ERROR;
}

static json_t *
s_evolve (void *user, json_t *state, const char *type, const json_t *data)
{
    (void) user, (void) type, (void) data;
    return state ? state : json_object ();
}

static const bctx_command_t s_commands[] = {
    { .name = "Do", .aggregate_field = "id", .decide = s_decide },
    { .name = NULL }
};

static const bctx_context_t s_context = {
    .magic = {
        .abi_version = BCTX_ABI_VERSION + 1,
        .context_size = (uint32_t) sizeof (bctx_context_t),
        .command_size = (uint32_t) sizeof (bctx_command_t),
        .projection_size = (uint32_t) sizeof (bctx_projection_t),
        .reactor_size = (uint32_t) sizeof (bctx_reactor_t),
        .event_size = (uint32_t) sizeof (bctx_event_t),
    },
    .name = "wrong_abi",
    .version = "1.0.0",
    .commands = s_commands,
    .evolve = s_evolve,
};

BCTX_DECLARE_CONTEXT (s_context)
