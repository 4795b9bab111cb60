/*
 * pile - a test-only context, named "pile", whose read models grow without
 * bound: the paging tests need one bigger than a reply may be.
 *
 * Command (aggregate: data.id):
 *   Put {id, text: string} -> Put {id, text}
 *
 * Projection "piles" (pile.Put): id -> {"texts": [every text put, in order]}
 */
#include <bctx/plugin.h>
#include <string.h>

/* Put: text must be a string. */
static int
s_put (void *user, const json_t *state, const json_t *data, json_t *events,
       bctx_reason_t *why)
{
    (void) user, (void) state;
    const json_t *text = json_object_get (data, "text");
    if (!json_is_string (text)) {
        bctx_reason (why, "data.text: expected a string");
        return BCTX_INVALID;
    }
    return bctx_emit (events, "Put", json_pack ("{s:O, s:O}", "id", json_object_get (data, "id"),
                                                "text", text)) == 0 ? BCTX_OK : BCTX_ERROR;
}

/* The aggregate's state is how many texts it holds.  state: stolen.
 * Return: new. */
static json_t *
s_evolve (void *user, json_t *state, const char *type, const json_t *data)
{
    (void) user, (void) type, (void) data;
    json_int_t n = json_integer_value (json_object_get (state, "n"));
    json_decref (state);
    return json_pack ("{s:I}", "n", n + 1);
}

/* piles: appends the event's text to its id's read model. */
static int
s_piles (void *user, const bctx_host_t *host, bctx_models_t *models, const bctx_event_t *ev)
{
    (void) user;
    json_t *model = host->model_get (models, ev->aggregate);
    if (!json_is_object (model)) {
        json_decref (model);
        model = json_pack ("{s:[]}", "texts");
    }
    json_t *texts = json_object_get (model, "texts");
    if (!json_is_array (texts) || json_array_append (texts, json_object_get (ev->data, "text")) != 0) {
        json_decref (model);
        return BCTX_ERROR;
    }
    return host->model_put (models, ev->aggregate, model) == 0 ? BCTX_OK : BCTX_ERROR;
}

static const char *const s_puts[] = { "pile.Put", NULL };

static const bctx_projection_t s_projections[] = {
    { .name = "piles", .version = 1, .consumes = s_puts, .handle = s_piles },
    { .name = NULL }
};

static const bctx_command_t s_commands[] = {
    { .name = "Put", .aggregate_field = "id", .decide = s_put },
    { .name = NULL }
};

static const bctx_context_t s_pile = BCTX_CONTEXT_INIT (
    .name = "pile",
    .version = "1.0.0",
    .commands = s_commands,
    .evolve = s_evolve,
    .projections = s_projections,
);

BCTX_DECLARE_CONTEXT (s_pile)
