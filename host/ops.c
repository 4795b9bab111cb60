/*
 * ops - events, query, contexts, stats, replay and retry (and stop's
 * refusal in a context process).  An unknown projection answers
 * unknown_projection, naming the projections there are.  Replies that
 * could grow without bound (events, query lists) stop at host.max_reply
 * bytes and carry a "next" cursor.
 */

#include "ops.h"
#include "log.h"

#include <stdlib.h>
#include <string.h>

#define S_EVENTS_MAX   10000   /* most events (or read models) one request returns */
/* Room kept in a reply's budget for what closes it (`],"next":N}`). */
#define S_REPLY_TAIL   64

struct bctx_ops {
    bctx_registry_t *registry;    /* what runs here (borrowed) */
    bctx_api_t *api;              /* its counters, for stats (borrowed) */
    bctx_commands_t *commands;    /* commands in flight, for stats (borrowed) */
    bctx_peers_t *peers;          /* forwards, for stats (borrowed) */
};

/* The reply to a projection or reactor (`key`) named `name` that this
 * host does not run: unknown_projection (bad_request for a reactor), its
 * message listing those that run.  Return: new. */
static char *
s_unknown (bctx_ops_t *self, bctx_request_t *req, const char *key, const char *name)
{
    bctx_registry_t *reg = self->registry;
    int projection = strcmp (key, "projection") == 0;
    size_t n = projection ? reg->n_projections : reg->n_reactors;
    bctx_buf_t names = { 0 };
    bctx_buf_add_str (&names, "");
    for (size_t i = 0; i < n; i++) {
        bctx_buf_add_str (&names, i ? ", " : "");
        bctx_buf_add_str (&names, projection ? reg->projections[i].name
                                             : bctx_reactor_base (reg->reactors[i])->name);
    }
    char *reply = bctx_request_error (req, projection ? BCTX_E_UNKNOWN_PROJECTION
                                                      : BCTX_E_BAD_REQUEST,
                                      "no %s \"%s\" on this host; its %ss: %s", key, name,
                                      key, n ? names.text : "none");
    free (names.text);
    return reply;
}

/* An "events" page being written. */
typedef struct {
    bctx_buf_t out;          /* the reply being written */
    const char *context;     /* whose events */
    int64_t n;               /* events written */
    int64_t limit;           /* most events to write */
    size_t budget;           /* most bytes out may hold (the first event aside) */
    int64_t next;            /* position of the first event left out, or 0 */
} s_collect_t;

/* Writes one event into the reply, unless the reply has its limit of
 * events or the event would take it past its budget: then notes the
 * event's position as where the next page starts, and stops.  The first
 * event is always written, so every page moves on. */
static int
s_collect (const bctx_row_t *e, void *arg)
{
    s_collect_t *c = arg;
    if (c->n < c->limit) {
        size_t before = c->out.len;
        if (c->n)
            bctx_buf_add (&c->out, ",", 1);
        bctx_buf_add_event (&c->out, c->context, e);
        if (c->n == 0 || c->out.len <= c->budget) {
            c->n++;
            return 0;
        }
        c->out.len = before;
        c->out.text[before] = '\0';
    }
    c->next = e->position;
    return 1;
}

/* {"op":"events","context":C,"from":P,"limit":N,"aggregate":A}: up to N
 * events from position P on, within host.max_reply bytes, and "next": the
 * position to ask from for the rest, or null when there is none. */
static char *
s_op_events (void *arg, bctx_request_t *req)
{
    bctx_ops_t *self = arg;
    const char *name = NULL, *aggregate = NULL;
    json_int_t from = 1, limit = 100;
    json_error_t jerr;
    if (json_unpack_ex (req->body, &jerr, 0, "{s:s, s?s, s?I, s?I}", "context", &name,
                        "aggregate", &aggregate, "from", &from, "limit", &limit) != 0)
        return bctx_request_error (req, BCTX_E_BAD_REQUEST, "events: %s", jerr.text);
    if (from < 1 || limit < 1 || limit > S_EVENTS_MAX)
        return bctx_request_error (req, BCTX_E_BAD_REQUEST,
                                   "events: from must be >= 1 and limit 1 to %d",
                                   S_EVENTS_MAX);
    bctx_local_t *c = bctx_registry_find (self->registry, name);
    if (!c)
        return bctx_request_error (req, BCTX_E_UNKNOWN_CONTEXT,
                                   "no context \"%s\" on this host", name);
    s_collect_t col = { .context = name, .limit = limit,
                        .budget = self->registry->config->max_reply - S_REPLY_TAIL };
    bctx_buf_add_str (&col.out, "{\"ok\":true,\"events\":[");
    /* One row past the limit tells whether more follow. */
    int64_t n = bctx_store_read (c->reader, from, aggregate, limit + 1, s_collect, &col);
    if (n < 0) {
        free (col.out.text);
        return bctx_request_error (req, BCTX_E_INTERNAL, "events: %s",
                                   bctx_store_error (c->reader));
    }
    bctx_buf_add_str (&col.out, "],\"next\":");
    if (col.next)
        bctx_buf_add_int (&col.out, col.next);
    else
        bctx_buf_add_str (&col.out, "null");
    bctx_buf_add_str (&col.out, "}");
    return col.out.text;
}

/* A "query" page of read models being written. */
typedef struct {
    bctx_buf_t out;               /* the reply being written */
    int64_t n;                    /* read models written */
    int64_t limit;                /* most read models to write */
    size_t budget;                /* most bytes out may hold */
    char *last;                   /* key of the last one written (new), or NULL */
    char *refused;                /* key of a first one past the budget (new), or NULL */
    size_t refused_size;          /* its value's size */
    int more;                     /* read models follow the page */
} s_listing_t;

/* Writes one read model, its stored JSON text as it is, into the page,
 * unless the page has its limit or the model would take it past its
 * budget: then the page ends there, with more to follow. */
static int
s_list_one (const char *key, const char *value, void *arg)
{
    s_listing_t *l = arg;
    if (l->n < l->limit) {
        size_t before = l->out.len;
        if (l->n)
            bctx_buf_add (&l->out, ",", 1);
        bctx_buf_add_str (&l->out, "{\"key\":");
        bctx_buf_add_json_string (&l->out, key);
        bctx_buf_add_str (&l->out, ",\"value\":");
        bctx_buf_add_str (&l->out, value);
        bctx_buf_add_str (&l->out, "}");
        /* Room for the key once more, escaped at worst, as "next". */
        if (l->out.len + 6 * strlen (key) <= l->budget) {
            l->n++;
            free (l->last);
            l->last = strdup (key);
            return 0;
        }
        l->out.len = before;
        l->out.text[before] = '\0';
        if (l->n == 0) {
            l->refused = strdup (key);
            l->refused_size = strlen (value);
            return 1;
        }
    }
    l->more = 1;
    return 1;
}

/* One read model by key into out (borrowed, the reply so far; freed on
 * error).  Return the reply (new). */
static char *
s_query_key (bctx_ops_t *self, bctx_request_t *req, bctx_read_model_t *p,
             const char *name, const char *key, bctx_buf_t out)
{
    size_t max = self->registry->config->max_reply;
    /* The stored text is compact JSON, as the projection wrote it. */
    char *text = bctx_readside_get_live (p->reader, key);
    size_t size = text ? strlen (text) : 0;
    if (size + out.len + strlen (key) * 6 + S_REPLY_TAIL > max) {
        free (text);
        free (out.text);
        return bctx_request_error (req, BCTX_E_TOO_LARGE, "query: read model \"%s\" of %s is "
                                   "%zu bytes, over the reply limit of %zu (host.max_reply)",
                                   key, name, size, max);
    }
    bctx_buf_add_str (&out, ",\"key\":");
    bctx_buf_add_json_string (&out, key);
    bctx_buf_add_str (&out, ",\"value\":");
    bctx_buf_add_str (&out, text ? text : "null");
    bctx_buf_add_str (&out, "}");
    free (text);
    return out.text;
}

/* A page of read models after `after` (may be NULL) into out (the reply
 * so far, taken over).  Return the reply (new). */
static char *
s_query_page (bctx_ops_t *self, bctx_request_t *req, bctx_read_model_t *p,
              const char *name, const char *after, json_int_t limit, bctx_buf_t out)
{
    size_t max = self->registry->config->max_reply;
    bctx_buf_add_str (&out, ",\"items\":[");
    s_listing_t l = { .out = out, .limit = limit, .budget = max - S_REPLY_TAIL };
    /* One row past the limit tells whether more follow. */
    int64_t n = bctx_readside_list_live (p->reader, after, limit + 1, s_list_one, &l);
    char *reply = NULL;
    if (n < 0)
        reply = bctx_request_error (req, BCTX_E_INTERNAL, "query: %s",
                                    bctx_readside_error (p->reader));
    else if (l.refused)
        reply = bctx_request_error (req, BCTX_E_TOO_LARGE, "query: read model \"%s\" of %s "
                                    "is %zu bytes, over the reply limit of %zu "
                                    "(host.max_reply); list past it with \"after\":\"%s\"",
                                    l.refused, name, l.refused_size, max, l.refused);
    if (!reply) {
        bctx_buf_add_str (&l.out, "],\"next\":");
        if (l.more && l.last)
            bctx_buf_add_json_string (&l.out, l.last);
        else
            bctx_buf_add_str (&l.out, "null");
        bctx_buf_add_str (&l.out, "}");
        reply = l.out.text;
    } else {
        free (l.out.text);
    }
    free (l.last);
    free (l.refused);
    return reply;
}

/* {"op":"query","projection":P,"key":K} or a page of them with
 * "after"/"limit", within host.max_reply bytes; a page's "next" is the
 * "after" of the next page, or null when none follows. */
static char *
s_op_query (void *arg, bctx_request_t *req)
{
    bctx_ops_t *self = arg;
    const char *op = NULL, *name = NULL, *key = NULL, *after = NULL;
    json_int_t limit = 100;
    json_error_t jerr;
    if (json_unpack_ex (req->body, &jerr, JSON_STRICT, "{s:s, s:s, s?s, s?s, s?I}", "op", &op,
                        "projection", &name, "key", &key, "after", &after,
                        "limit", &limit) != 0)
        return bctx_request_error (req, BCTX_E_BAD_REQUEST, "query: %s", jerr.text);
    if (limit < 1 || limit > S_EVENTS_MAX)
        return bctx_request_error (req, BCTX_E_BAD_REQUEST, "query: limit must be 1 to %d",
                                   S_EVENTS_MAX);
    if (key && after)
        return bctx_request_error (req, BCTX_E_BAD_REQUEST,
                                   "query: give a key or a page, not both");
    bctx_read_model_t *p = bctx_registry_find_projection (self->registry, name);
    if (!p)
        return s_unknown (self, req, "projection", name);
    bctx_buf_t out = { 0 };
    bctx_buf_add_str (&out, "{\"ok\":true,\"projection\":");
    bctx_buf_add_json_string (&out, name);
    if (key)
        return s_query_key (self, req, p, name, key, out);
    return s_query_page (self, req, p, name, after, limit, out);
}

/* Unpacks a request of exactly {"op", key: NAME} and finds the
 * projection (key "projection") or the reactor of that name.  Return it
 * (borrowed), or NULL with an error reply (new) in *error. */
static void *
s_named (bctx_ops_t *self, bctx_request_t *req, const char *key, const char **name,
         char **error)
{
    const char *op = NULL;
    json_error_t jerr;
    if (json_unpack_ex (req->body, &jerr, JSON_STRICT, "{s:s, s:s}", "op", &op,
                        key, name) != 0) {
        *error = bctx_request_error (req, BCTX_E_BAD_REQUEST, "%s: %s", req->op->name,
                                     jerr.text);
        return NULL;
    }
    void *found = strcmp (key, "projection") == 0
                  ? (void *) bctx_registry_find_projection (self->registry, *name)
                  : (void *) bctx_registry_find_reactor (self->registry, *name);
    if (!found)
        *error = s_unknown (self, req, key, *name);
    return found;
}

/* {"op":"replay","projection":P} rebuilds P's read models from the logs;
 * {"op":"retry","reactor":R} runs R's parked events again. */
static char *
s_op_steer (void *arg, bctx_request_t *req)
{
    int replay = req->op->id == BCTX_OP_REPLAY;
    const char *name = NULL;
    char *error = NULL;
    void *runner = s_named (arg, req, replay ? "projection" : "reactor", &name, &error);
    if (!runner)
        return error;
    if (replay) {
        bctx_projector_replay (((bctx_read_model_t *) runner)->projector);
        bctx_log (BCTX_LOG_INFO, "projection %s: replay asked", name);
        return bctx_reply_dump_new (json_pack ("{s:b, s:s, s:b}", "ok", 1, "projection", name,
                                               "rebuilding", 1));
    }
    int64_t parked = bctx_reactor_parked (runner);
    bctx_reactor_retry (runner);
    return bctx_reply_dump_new (json_pack ("{s:b, s:s, s:I}", "ok", 1, "reactor", name,
                                           "parked", (json_int_t) parked));
}

/* {"op":"retry","projection":P,"context":C,"position":N} runs the poison
 * event of C at N parked for P again: applied now to P's read models
 * (answered at once; `stats` shows the outcome); {"op":"retry",
 * "reactor":R} as s_op_steer. */
static char *
s_op_retry (void *arg, bctx_request_t *req)
{
    bctx_ops_t *self = arg;
    if (!json_object_get (req->body, "projection"))
        return s_op_steer (arg, req);
    const char *op = NULL, *name = NULL, *context = NULL;
    json_int_t position = 0;
    json_error_t jerr;
    if (json_unpack_ex (req->body, &jerr, JSON_STRICT, "{s:s, s:s, s:s, s:I}", "op", &op,
                        "projection", &name, "context", &context, "position", &position) != 0)
        return bctx_request_error (req, BCTX_E_BAD_REQUEST, "retry: %s (a projection's "
                                   "parked event is named by its context and position)",
                                   jerr.text);
    bctx_read_model_t *p = bctx_registry_find_projection (self->registry, name);
    if (!p)
        return s_unknown (self, req, "projection", name);
    if (bctx_projector_retry (p->projector, context, position) != 0)
        return bctx_request_error (req, BCTX_E_BAD_REQUEST, "projection %s has no parked "
                                   "event of %s at position %lld; `bctx stats` lists its "
                                   "parked events under \"poison\"", name, context,
                                   (long long) position);
    bctx_log (BCTX_LOG_INFO, "projection %s: retry of %s's parked event at position %lld "
              "asked", name, context, (long long) position);
    return bctx_reply_dump_new (json_pack ("{s:b, s:s, s:s, s:I, s:b}", "ok", 1,
                                           "projection", name, "context", context,
                                           "position", position, "retrying", 1));
}

/* {"op":"contexts"}: the local contexts and the remote ones. */
static char *
s_op_contexts (void *arg, bctx_request_t *req)
{
    bctx_ops_t *self = arg;
    const bctx_config_t *config = self->registry->config;
    (void) req;
    json_t *list = json_array ();
    for (size_t i = 0; i < self->registry->n_contexts; i++) {
        json_t *info = bctx_worker_describe (self->registry->contexts[i].worker);
        json_object_set_new (info, "watch", json_boolean (config->contexts[i].watch));
        json_array_append_new (list, info);
    }
    return bctx_reply_dump_new (json_pack ("{s:b, s:s, s:o, s:o}", "ok", 1, "host",
                                           config->name, "contexts", list,
                                           "remote", bctx_registry_remotes (config)));
}

/* The counters of every context's worker, by name.  Return: new. */
static json_t *
s_context_stats (bctx_registry_t *registry)
{
    json_t *contexts = json_object ();
    for (size_t i = 0; i < registry->n_contexts; i++) {
        bctx_worker_t *w = registry->contexts[i].worker;
        bctx_worker_stats_t *s = bctx_worker_stats (w);
        int64_t batches = atomic_load (&s->batches);
        int64_t commands = atomic_load (&s->commands);
        json_object_set_new (contexts, bctx_worker_name (w), json_pack (
            "{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:f, s:o}",
            "position", (json_int_t) atomic_load (&s->position),
            "commands", (json_int_t) commands,
            "accepted", (json_int_t) atomic_load (&s->accepted),
            "rejected", (json_int_t) atomic_load (&s->rejected),
            "failed", (json_int_t) atomic_load (&s->failed),
            "duplicates", (json_int_t) atomic_load (&s->duplicates),
            "events", (json_int_t) atomic_load (&s->events),
            "commits", (json_int_t) batches,
            "commands_per_commit", batches ? (double) commands / (double) batches : 0.0,
            "commit_seconds", bctx_histogram_json (&s->commit_seconds)));
    }
    return contexts;
}

/* {"op":"stats"}: the API's, every context's, runner's and peer's
 * counters (a context process's; the supervisor's gather merges them,
 * with its own bridges). */
static char *
s_op_stats (void *arg, bctx_request_t *req)
{
    bctx_ops_t *self = arg;
    bctx_registry_t *reg = self->registry;
    (void) req;
    json_t *projections = json_object ();
    for (size_t i = 0; i < reg->n_projections; i++)
        json_object_set_new (projections, reg->projections[i].name,
                             bctx_projector_stats (reg->projections[i].projector));
    json_t *reactors = json_object ();
    for (size_t i = 0; i < reg->n_reactors; i++)
        json_object_set_new (reactors, bctx_reactor_base (reg->reactors[i])->name,
                             bctx_reactor_stats (reg->reactors[i]));
    const bctx_api_counters_t *n = bctx_api_counters (self->api);
    return bctx_reply_dump_new (json_pack (
        "{s:b, s:s, s:{s:I, s:I, s:I, s:I, s:I}, s:o, s:o, s:o, s:o}", "ok", 1, "host",
        reg->config->name, "api", "requests", (json_int_t) n->requests,
        "in_flight", (json_int_t) bctx_commands_in_flight (self->commands),
        "bad_request", (json_int_t) n->bad,
        "too_large", (json_int_t) n->too_large,
        "forbidden", (json_int_t) n->forbidden, "contexts", s_context_stats (reg),
        "projections", projections, "reactors", reactors,
        "peers", bctx_peers_stats (self->peers)));
}

/* {"op":"stop"} in a context process: the supervisor's op (server.c
 * answers it there); the link never passes it on. */
static char *
s_op_stop (void *arg, bctx_request_t *req)
{
    (void) arg;
    return bctx_request_error (req, BCTX_E_BAD_REQUEST, "stop: a context process is stopped "
                               "by its supervisor (`bctx stop` stops the host)");
}

bctx_ops_t *
bctx_ops_new (bctx_registry_t *registry, bctx_api_t *api, bctx_commands_t *commands,
              bctx_peers_t *peers)
{
    bctx_ops_t *self = calloc (1, sizeof *self);
    *self = (bctx_ops_t) { registry, api, commands, peers };
    bctx_api_handle (api, BCTX_OP_EVENTS, s_op_events, self);
    bctx_api_handle (api, BCTX_OP_QUERY, s_op_query, self);
    bctx_api_handle (api, BCTX_OP_CONTEXTS, s_op_contexts, self);
    bctx_api_handle (api, BCTX_OP_STATS, s_op_stats, self);
    bctx_api_handle (api, BCTX_OP_REPLAY, s_op_steer, self);
    bctx_api_handle (api, BCTX_OP_RETRY, s_op_retry, self);
    bctx_api_handle (api, BCTX_OP_STOP, s_op_stop, self);
    return self;
}

void
bctx_ops_destroy (bctx_ops_t **self_p)
{
    BCTX_SELF_OR_RETURN (bctx_ops_t, self_p);
    free (self);
    *self_p = NULL;
}
