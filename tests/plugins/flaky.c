/*
 * flaky - a test context whose reactor fails on demand, so a test can make
 * one aggregate's events fail for exactly as long as it wants while the
 * others go on.  Settings: {"dir": "/path/to/a/directory"}.
 *
 * Commands (aggregate field "id"):
 *   Poke {id} -> Poked {id}
 *   Note {id} -> Noted {id}
 *
 * Reactor "flaky-reactor", on flaky.Poked of aggregate X: while the file
 * "<dir>/fail-X" exists it returns BCTX_ERROR (the host retries with
 * back-off, then parks the aggregate); otherwise it sends Note {id: X} to
 * this context through host->send, so each success is a Noted event in the
 * log, whose metadata names the Poked event that caused it.
 */
#include <bctx/plugin.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct {
    char *dir;                /* where the fail-<aggregate> files are looked for */
} flaky_t;

static int
s_init (const bctx_host_t *host, const json_t *settings, void **user)
{
    const char *dir = json_string_value (json_object_get (settings, "dir"));
    if (!dir || !*dir) {
        host->log (host, BCTX_LOG_ERROR, "settings.dir: expected a directory path");
        return BCTX_ERROR;
    }
    flaky_t *self = calloc (1, sizeof *self);
    if (!self || !(self->dir = strdup (dir))) {
        free (self);
        return BCTX_ERROR;
    }
    *user = self;
    return BCTX_OK;
}

static void
s_fini (void *user)
{
    flaky_t *self = user;
    if (!self)
        return;
    free (self->dir);
    free (self);
}

/* Emits `type` {"id": data.id}. */
static int
s_emit_id (const json_t *data, json_t *events, const char *type)
{
    return bctx_emit (events, type, json_pack ("{s:O}", "id", json_object_get (data, "id")))
           == 0 ? BCTX_OK : BCTX_ERROR;
}

static int
s_poke (void *user, const json_t *state, const json_t *data, json_t *events,
        bctx_reason_t *why)
{
    (void) user;
    (void) state;
    (void) why;
    return s_emit_id (data, events, "Poked");
}

static int
s_note (void *user, const json_t *state, const json_t *data, json_t *events,
        bctx_reason_t *why)
{
    (void) user;
    (void) state;
    (void) why;
    return s_emit_id (data, events, "Noted");
}

/* The state is the number of events of the aggregate; nothing decides on
 * it, but evolve must return something for every event. */
static json_t *
s_evolve (void *user, json_t *state, const char *type, const json_t *data)
{
    (void) user;
    (void) type;
    (void) data;
    json_int_t n = json_integer_value (json_object_get (state, "events"));
    json_decref (state);
    return json_pack ("{s:I}", "events", n + 1);
}

/* --- the reactor ----------------------------------------------------- */

static int
s_react (void *user, const bctx_host_t *host, bctx_reaction_t *r,
         const bctx_event_t *ev)
{
    flaky_t *self = user;
    char path[1024];
    snprintf (path, sizeof path, "%s/fail-%s", self->dir, ev->aggregate);
    if (access (path, F_OK) == 0) {
        host->log (host, BCTX_LOG_INFO, "flaky-reactor: %s exists: failing %s at %lld",
                   path, ev->aggregate, (long long) ev->position);
        return BCTX_ERROR;
    }
    bctx_reason_t why;
    int rc = host->send (r, "flaky", "Note", json_pack ("{s:s}", "id", ev->aggregate), &why);
    /* A rejection cannot happen (Note accepts everything); anything but
     * OK is retried by the host. */
    return rc == BCTX_OK ? BCTX_OK : BCTX_ERROR;
}

static const char *const s_poked[] = { "flaky.Poked", NULL };

static const bctx_reactor_t s_reactors[] = {
    { .name = "flaky-reactor", .consumes = s_poked, .react = s_react },
    { .name = NULL }
};

static const bctx_command_t s_commands[] = {
    { .name = "Poke", .aggregate_field = "id", .decide = s_poke },
    { .name = "Note", .aggregate_field = "id", .decide = s_note },
    { .name = NULL }
};

static const bctx_context_t s_flaky = BCTX_CONTEXT_INIT (
    .name = "flaky",
    .version = "1.0.0",
    .commands = s_commands,
    .evolve = s_evolve,
    .reactors = s_reactors,
    .init = s_init,
    .fini = s_fini,
);

BCTX_DECLARE_CONTEXT (s_flaky)
