/*
 * needs_setting - a test-only context, named "needs_setting", that proves a
 * context's "settings" from config reach its init.  init requires
 * settings {"greeting": "<non-empty string>"} and fails (after logging why)
 * when it is absent or not a string; it keeps a copy of the greeting in
 * its `user` state, which fini frees.  The one command "Greet" (aggregate
 * id in data.id) emits {"type": "Greeted", "data": {"id": …, "greeting": …}}
 * so a test can see the configured greeting come back out.  An optional
 * setting "fini_marker" names a file that fini creates, so a test can see
 * that fini ran (and ran only after a successful init).
 */
#include <bctx/plugin.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    char *greeting;            /* settings.greeting, copied at init */
    char *fini_marker;         /* settings.fini_marker, or NULL */
} s_state_t;

static int
s_greet (void *user, const json_t *state, const json_t *data, json_t *events,
         bctx_reason_t *why)
{
    (void) state, (void) why;
    const s_state_t *self = user;
    const char *id = json_string_value (json_object_get (data, "id"));
    return bctx_emit (events, "Greeted",
                      json_pack ("{s:s, s:s}", "id", id ? id : "",
                                 "greeting", self->greeting)) == 0
           ? BCTX_OK : BCTX_ERROR;
}

static json_t *
s_evolve (void *user, json_t *state, const char *type, const json_t *data)
{
    (void) user, (void) type, (void) data;
    json_t *next = state ? state : json_object ();
    json_t *count = json_object_get (next, "greeted");
    json_object_set_new (next, "greeted",
                         json_integer (json_integer_value (count) + 1));
    return next;
}

static int
s_init (const bctx_host_t *host, const json_t *settings, void **user)
{
    const json_t *greeting = json_object_get (settings, "greeting");
    if (!json_is_string (greeting) || json_string_length (greeting) == 0) {
        host->log (host, BCTX_LOG_ERROR,
                   "settings.greeting: expected a non-empty string");
        return BCTX_ERROR;
    }
    const json_t *marker = json_object_get (settings, "fini_marker");
    if (marker && !json_is_string (marker)) {
        host->log (host, BCTX_LOG_ERROR, "settings.fini_marker: expected a string");
        return BCTX_ERROR;
    }
    s_state_t *self = calloc (1, sizeof *self);
    if (!self || !(self->greeting = strdup (json_string_value (greeting)))
        || (marker && !(self->fini_marker = strdup (json_string_value (marker))))) {
        if (self)
            free (self->greeting);
        free (self);
        host->log (host, BCTX_LOG_ERROR, "out of memory");
        return BCTX_ERROR;
    }
    *user = self;
    return BCTX_OK;
}

static void
s_fini (void *user)
{
    s_state_t *self = user;
    if (!self)
        return;
    if (self->fini_marker) {
        FILE *f = fopen (self->fini_marker, "w");
        if (f)
            fclose (f);
    }
    free (self->fini_marker);
    free (self->greeting);
    free (self);
}

static const bctx_command_t s_commands[] = {
    { .name = "Greet", .aggregate_field = "id", .decide = s_greet },
    { .name = NULL }
};

static const bctx_context_t s_context = BCTX_CONTEXT_INIT (
    .name = "needs_setting",
    .version = "1.0.0",
    .commands = s_commands,
    .evolve = s_evolve,
    .init = s_init,
    .fini = s_fini,
);

BCTX_DECLARE_CONTEXT (s_context)
