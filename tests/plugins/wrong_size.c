/*
 * wrong_size - a test-only plugin whose magic block has the right
 * abi_version but a context_size that is not sizeof (bctx_context_t), as
 * when a plugin is built against a header whose descriptor grew or shrank
 * without the ABI version being bumped.  The loader must refuse it with a
 * message naming magic.context_size and both sizes.  The magic block is
 * filled by hand; WRONG_SIZE_DELTA is what the test expects the difference
 * to be.
 */
#include <bctx/plugin.h>

#define WRONG_SIZE_DELTA 8

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
        .abi_version = BCTX_ABI_VERSION,
        .context_size = (uint32_t) sizeof (bctx_context_t) + WRONG_SIZE_DELTA,
        .command_size = (uint32_t) sizeof (bctx_command_t),
        .projection_size = (uint32_t) sizeof (bctx_projection_t),
        .reactor_size = (uint32_t) sizeof (bctx_reactor_t),
        .event_size = (uint32_t) sizeof (bctx_event_t),
    },
    .name = "wrong_size",
    .version = "1.0.0",
    .commands = s_commands,
    .evolve = s_evolve,
};

BCTX_DECLARE_CONTEXT (s_context)
