/*
 * reject_all - a test-only context, named "reject_all", whose one command
 * "Do" (aggregate id in data.id) always rejects with a reason and emits
 * nothing.  It shows a rejection travelling back to the client with its
 * reason, and that a rejected command stores no event.
 */
#include <bctx/plugin.h>

static int
s_do (void *user, const json_t *state, const json_t *data, json_t *events,
      bctx_reason_t *why)
{
    (void) user, (void) state, (void) events;
    const char *id = json_string_value (json_object_get (data, "id"));
    return bctx_reason (why, "reject_all rejects every command (id %s)",
                        id ? id : "?");
}

/* Never reached in practice (no event is ever stored), but a descriptor
 * must have an evolve. */
static json_t *
s_evolve (void *user, json_t *state, const char *type, const json_t *data)
{
    (void) user, (void) type, (void) data;
    return state ? state : json_object ();
}

static const bctx_command_t s_commands[] = {
    { .name = "Do", .aggregate_field = "id", .decide = s_do },
    { .name = NULL }
};

static const bctx_context_t s_context = BCTX_CONTEXT_INIT (
    .name = "reject_all",
    .version = "1.0.0",
    .commands = s_commands,
    .evolve = s_evolve,
);

BCTX_DECLARE_CONTEXT (s_context)
