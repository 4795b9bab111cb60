/*
 * ledger - a test-only context, named "ledger", for the read-side tests: a
 * projection that is easy to check and can be made as slow as a test needs.
 *
 * Command (aggregate: data.id):
 *   Add {id, n: positive integer} -> Added {id, n}
 *
 * Projection "totals" (ledger.Added): id -> {"total": sum of n, "v": V}
 * where V is the projection's version: 1, or 2 when built with
 * -DPLUGIN_V2 (ledger_v2.so).  Loading ledger_v2.so over a data directory
 * ledger.so filled makes the host rebuild "totals", and a query tells by
 * "v" which generation answered.
 *
 * Settings (optional): {"delay_us": N} makes the projection's handler
 * sleep N microseconds per event (default 0), so that a rebuild of a few
 * thousand events takes seconds and a test can watch it.
 */
#include <bctx/plugin.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifdef PLUGIN_V2
#define PROJ_V 2
#else
#define PROJ_V 1
#endif

typedef struct {
    long delay_us;             /* settings.delay_us: sleep per projected event */
} s_state_t;

/* Add: n must be a positive integer. */
static int
s_add (void *user, const json_t *state, const json_t *data, json_t *events,
       bctx_reason_t *why)
{
    (void) user, (void) state;
    const json_t *n = json_object_get (data, "n");
    if (!json_is_integer (n) || json_integer_value (n) <= 0) {
        bctx_reason (why, "data.n: expected a positive integer");
        return BCTX_INVALID;
    }
    return bctx_emit (events, "Added",
                      json_pack ("{s:O, s:O}", "id", json_object_get (data, "id"),
                                 "n", n)) == 0 ? BCTX_OK : BCTX_ERROR;
}

/* The aggregate's state is its running total.  state: stolen.  Return: new. */
static json_t *
s_evolve (void *user, json_t *state, const char *type, const json_t *data)
{
    (void) user;
    json_t *next = state ? state : json_object ();
    if (strcmp (type, "Added") == 0) {
        json_int_t total = json_integer_value (json_object_get (next, "total"))
                           + json_integer_value (json_object_get (data, "n"));
        json_object_set_new (next, "total", json_integer (total));
    }
    return next;
}

/* Sleeps us microseconds, whatever signals arrive. */
static void
s_sleep_us (long us)
{
    struct timespec ts = { .tv_sec = us / 1000000, .tv_nsec = (us % 1000000) * 1000 };
    while (nanosleep (&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* totals: adds the event's n to its id's read model. */
static int
s_totals (void *user, const bctx_host_t *host, bctx_models_t *models,
          const bctx_event_t *ev)
{
    const s_state_t *self = user;
    if (self->delay_us > 0)
        s_sleep_us (self->delay_us);
    json_t *model = host->model_get (models, ev->aggregate);
    json_int_t total = json_integer_value (json_object_get (model, "total"))
                       + json_integer_value (json_object_get (ev->data, "n"));
    json_decref (model);
    json_t *next = json_pack ("{s:I, s:i}", "total", total, "v", PROJ_V);
    return next && host->model_put (models, ev->aggregate, next) == 0
           ? BCTX_OK : BCTX_ERROR;
}

static int
s_init (const bctx_host_t *host, const json_t *settings, void **user)
{
    const json_t *delay = json_object_get (settings, "delay_us");
    if (delay && (!json_is_integer (delay) || json_integer_value (delay) < 0)) {
        host->log (host, BCTX_LOG_ERROR, "settings.delay_us: expected an integer >= 0");
        return BCTX_ERROR;
    }
    s_state_t *self = calloc (1, sizeof *self);
    if (!self) {
        host->log (host, BCTX_LOG_ERROR, "out of memory");
        return BCTX_ERROR;
    }
    self->delay_us = delay ? (long) json_integer_value (delay) : 0;
    *user = self;
    return BCTX_OK;
}

static void
s_fini (void *user)
{
    free (user);
}

static const char *const s_added[] = { "ledger.Added", NULL };

static const bctx_projection_t s_projections[] = {
    { .name = "totals", .version = PROJ_V, .consumes = s_added, .handle = s_totals },
    { .name = NULL }
};

static const bctx_command_t s_commands[] = {
    { .name = "Add", .aggregate_field = "id", .decide = s_add },
    { .name = NULL }
};

static const bctx_context_t s_ledger = BCTX_CONTEXT_INIT (
    .name = "ledger",
    .version = PROJ_V == 2 ? "2.0.0" : "1.0.0",
    .commands = s_commands,
    .evolve = s_evolve,
    .projections = s_projections,
    .init = s_init,
    .fini = s_fini,
);

BCTX_DECLARE_CONTEXT (s_ledger)
