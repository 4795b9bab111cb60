/*
 * slow - a test context whose decide blocks until a gate file exists (or
 * 30 s pass), so a test can hold a command inside a context for exactly as
 * long as it wants.  Settings: {"gate": "/path/to/file"}.
 *
 * Command "Wait" (aggregate field "id") emits "Waited" once the gate opens;
 * "Pass" emits "Passed" at once.  Built with PLUGIN_V2 (slow_v2.so) it is
 * version 2.0.0, so a test sees which version decided a command.
 */
#include <bctx/plugin.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef struct {
    char *gate;               /* the file whose existence opens the gate */
} slow_t;

static int
s_init (const bctx_host_t *host, const json_t *settings, void **user)
{
    const char *gate = json_string_value (json_object_get (settings, "gate"));
    if (!gate) {
        host->log (host, BCTX_LOG_ERROR, "settings.gate: expected a file path");
        return BCTX_ERROR;
    }
    slow_t *self = calloc (1, sizeof *self);
    self->gate = strdup (gate);
    *user = self;
    return BCTX_OK;
}

static void
s_fini (void *user)
{
    slow_t *self = user;
    free (self->gate);
    free (self);
}

static int
s_wait (void *user, const json_t *state, const json_t *data, json_t *events,
        bctx_reason_t *why)
{
    (void) state;
    (void) why;
    slow_t *self = user;
    struct timespec tick = { 0, 10 * 1000 * 1000 };
    for (int i = 0; i < 3000 && access (self->gate, F_OK) != 0; i++)
        nanosleep (&tick, NULL);
    return bctx_emit (events, "Waited",
                      json_pack ("{s:O}", "id", json_object_get (data, "id")))
           == 0 ? BCTX_OK : BCTX_ERROR;
}

static int
s_pass (void *user, const json_t *state, const json_t *data, json_t *events,
        bctx_reason_t *why)
{
    (void) user;
    (void) state;
    (void) why;
    return bctx_emit (events, "Passed",
                      json_pack ("{s:O}", "id", json_object_get (data, "id")))
           == 0 ? BCTX_OK : BCTX_ERROR;
}

static json_t *
s_evolve (void *user, json_t *state, const char *type, const json_t *data)
{
    (void) user;
    (void) type;
    (void) data;
    json_decref (state);
    return json_object ();
}

static const bctx_command_t s_commands[] = {
    { .name = "Wait", .aggregate_field = "id", .decide = s_wait },
    { .name = "Pass", .aggregate_field = "id", .decide = s_pass },
    { .name = NULL }
};

static const bctx_context_t s_slow = BCTX_CONTEXT_INIT (
    .name = "slow",
#ifdef PLUGIN_V2
    .version = "2.0.0",
#else
    .version = "1.0.0",
#endif
    .commands = s_commands,
    .evolve = s_evolve,
    .init = s_init,
    .fini = s_fini,
);

BCTX_DECLARE_CONTEXT (s_slow)
