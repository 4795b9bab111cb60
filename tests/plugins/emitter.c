/*
 * emitter - a test-only context, named "emitter", that emits as many
 * events, as big, as it is told: the host's limits on what one decide may
 * return (host.max_events_per_command, host.max_message) are tested with
 * it.
 *
 * Command "Emit" (aggregate id in data.id) with data {"id", "n", "bytes"}
 * emits n events "Emitted" {"i": index, "seen": events folded before,
 * "s": a string of `bytes` bytes}.  Its state is {"n": events folded}, so
 * "seen" shows what the host's cached state was when decide ran.
 */
#include <bctx/plugin.h>
#include <stdlib.h>
#include <string.h>

#define S_MOST_EVENTS  1000000            /* refuse silly counts */
#define S_MOST_BYTES   (64 * 1024 * 1024) /* and silly sizes */

static int
s_emit (void *user, const json_t *state, const json_t *data, json_t *events,
        bctx_reason_t *why)
{
    (void) user;
    json_t *jn = json_object_get (data, "n");
    json_t *jbytes = json_object_get (data, "bytes");
    json_int_t n = json_integer_value (jn), bytes = json_integer_value (jbytes);
    if (!json_is_integer (jn) || n < 0 || n > S_MOST_EVENTS
        || (jbytes && (!json_is_integer (jbytes) || bytes < 0 || bytes > S_MOST_BYTES))) {
        bctx_reason (why, "Emit: expected {\"id\", \"n\": 0 to %d, \"bytes\": 0 to %d}",
                     S_MOST_EVENTS, S_MOST_BYTES);
        return BCTX_INVALID;
    }
    json_int_t seen = state ? json_integer_value (json_object_get (state, "n")) : 0;
    char *s = malloc ((size_t) bytes + 1);
    if (!s)
        return BCTX_ERROR;
    memset (s, 'x', (size_t) bytes);
    s[bytes] = '\0';
    int rc = BCTX_OK;
    for (json_int_t i = 0; i < n && rc == BCTX_OK; i++)
        if (bctx_emit (events, "Emitted", json_pack ("{s:I, s:I, s:s}", "i", i,
                                                     "seen", seen, "s", s)) != 0)
            rc = BCTX_ERROR;
    free (s);
    return rc;
}

static json_t *
s_evolve (void *user, json_t *state, const char *type, const json_t *data)
{
    (void) user, (void) type, (void) data;
    json_int_t n = state ? json_integer_value (json_object_get (state, "n")) : 0;
    json_decref (state);
    return json_pack ("{s:I}", "n", n + 1);
}

static const bctx_command_t s_commands[] = {
    { .name = "Emit", .aggregate_field = "id", .decide = s_emit },
    { .name = NULL }
};

static const bctx_context_t s_emitter = BCTX_CONTEXT_INIT (
    .name = "emitter",
    .version = "1.0.0",
    .commands = s_commands,
    .evolve = s_evolve,
);

BCTX_DECLARE_CONTEXT (s_emitter)
