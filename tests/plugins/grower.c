/*
 * grower - a test context whose second version (grower_v2.so, built with
 * -DPLUGIN_V2) declares one more projection than the first.  A test can
 * make that projection impossible to open, so the reload fails after the
 * worker has switched, and the host must roll back to version 1.
 *
 * Command "Add" (aggregate field "id") emits "Added" {id}.  Projections:
 * "grower_totals" (both versions) counts Added per id; "grower_more" (v2
 * only) does the same.
 */
#include <bctx/plugin.h>
#include <string.h>

#ifdef PLUGIN_V2
#define GROWER_VERSION "2.0.0"
#else
#define GROWER_VERSION "1.0.0"
#endif

static int
s_add (void *user, const json_t *state, const json_t *data, json_t *events,
       bctx_reason_t *why)
{
    (void) user;
    (void) state;
    (void) why;
    return bctx_emit (events, "Added", json_pack ("{s:O}", "id", json_object_get (data, "id")))
           == 0 ? BCTX_OK : BCTX_ERROR;
}

static json_t *
s_evolve (void *user, json_t *state, const char *type, const json_t *data)
{
    (void) user;
    (void) type;
    (void) data;
    json_int_t n = state ? json_integer_value (json_object_get (state, "n")) : 0;
    json_decref (state);
    return json_pack ("{s:I}", "n", n + 1);
}

static int
s_count (void *user, const bctx_host_t *host, bctx_models_t *models, const bctx_event_t *ev)
{
    (void) user;
    json_t *m = host->model_get (models, ev->aggregate);
    json_int_t n = m ? json_integer_value (json_object_get (m, "n")) : 0;
    json_decref (m);
    return host->model_put (models, ev->aggregate, json_pack ("{s:I}", "n", n + 1)) == 0
           ? BCTX_OK : BCTX_ERROR;
}

static const char *const s_added[] = { "grower.Added", NULL };

static const bctx_projection_t s_projections[] = {
    { .name = "grower_totals", .version = 1, .consumes = s_added, .handle = s_count },
#ifdef PLUGIN_V2
    { .name = "grower_more", .version = 1, .consumes = s_added, .handle = s_count },
#endif
    { .name = NULL }
};

static const bctx_command_t s_commands[] = {
    { .name = "Add", .aggregate_field = "id", .decide = s_add },
    { .name = NULL }
};

static const bctx_context_t s_grower = BCTX_CONTEXT_INIT (
    .name = "grower",
    .version = GROWER_VERSION,
    .commands = s_commands,
    .evolve = s_evolve,
    .projections = s_projections,
);

BCTX_DECLARE_CONTEXT (s_grower)
