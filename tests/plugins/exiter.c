/*
 * exiter - a test-only context, named "exiter", whose one command "Exit"
 * (aggregate id in data.id) calls exit(3) inside decide: a plugin that
 * ends the host's process.  Until contexts run in their own processes,
 * the host can only say so in its log, naming the context.
 */
#include <bctx/plugin.h>

#include <stdlib.h>

static int
s_exit (void *user, const json_t *state, const json_t *data, json_t *events,
        bctx_reason_t *why)
{
    (void) user, (void) state, (void) data, (void) events, (void) why;
    exit (3);
}

static json_t *
s_evolve (void *user, json_t *state, const char *type, const json_t *data)
{
    (void) user, (void) type, (void) data;
    return state ? state : json_object ();
}

static const bctx_command_t s_commands[] = {
    { .name = "Exit", .aggregate_field = "id", .decide = s_exit },
    { .name = NULL }
};

static const bctx_context_t s_context = BCTX_CONTEXT_INIT (
    .name = "exiter",
    .version = "1.0.0",
    .commands = s_commands,
    .evolve = s_evolve,
);

BCTX_DECLARE_CONTEXT (s_context)
