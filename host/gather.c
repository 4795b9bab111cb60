/*
 * gather - stats and contexts from every context process, merged with
 * the supervisor's own; replay and retry to the process that runs them.
 * Each part is a request on the relay with a callback; a process that
 * does not answer within S_GATHER_WAIT is left out of the reply.
 */

#include "gather.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_GATHER_WAIT   2.0      /* seconds a stats or contexts waits for a process */

struct bctx_gather;

/* A stats or contexts waiting for the processes' parts. */
typedef struct {
    struct bctx_gather *self;     /* whose */
    int op;                       /* BCTX_OP_STATS or BCTX_OP_CONTEXTS */
    unsigned char env[BCTX_API_ENVELOPE_MAX]; /* the client's envelope */
    size_t env_len;               /* its length */
    int delimiter;                /* the client sent an empty frame first */
    int waiting;                  /* parts not in yet */
    json_t *parts;                /* {context: its reply} */
} s_gather_t;

struct bctx_gather {
    bctx_registry_t *registry;    /* the config (borrowed) */
    bctx_api_t *api;              /* to answer clients (borrowed) */
    bctx_supervise_t *supervise;  /* the processes (borrowed) */
    bctx_relay_t *relay;          /* the links to them (borrowed) */
    bctx_peers_t *peers;          /* for stats (borrowed) */
    s_gather_t **gathers;         /* being gathered */
    size_t n_gathers;             /* how many */
};

static char *s_op_gather (void *arg, bctx_request_t *req);
static char *s_op_named (void *arg, bctx_request_t *req);

bctx_gather_t *
bctx_gather_new (bctx_registry_t *registry, bctx_api_t *api, bctx_supervise_t *supervise,
                 bctx_relay_t *relay, bctx_peers_t *peers)
{
    bctx_gather_t *self = calloc (1, sizeof *self);
    *self = (bctx_gather_t) { .registry = registry, .api = api, .supervise = supervise,
                              .relay = relay, .peers = peers };
    bctx_api_handle (api, BCTX_OP_STATS, s_op_gather, self);
    bctx_api_handle (api, BCTX_OP_CONTEXTS, s_op_gather, self);
    bctx_api_handle (api, BCTX_OP_REPLAY, s_op_named, self);
    bctx_api_handle (api, BCTX_OP_RETRY, s_op_named, self);
    return self;
}

/* One object member of every part, merged into one object: stats'
 * contexts, projections and reactors.  Return: new. */
static json_t *
s_merge (const json_t *parts, const char *key)
{
    json_t *all = json_object ();
    const char *name;
    json_t *part;
    json_object_foreach ((json_t *) parts, name, part) {
        json_t *o = json_object_get (part, key);
        if (json_is_object (o))
            json_object_update (all, o);
    }
    return all;
}

/* The stats reply of a finished gather.  Return: new. */
static char *
s_stats_reply (bctx_gather_t *self, s_gather_t *g)
{
    json_t *contexts = s_merge (g->parts, "contexts");
    size_t n;
    bctx_child_t **children = bctx_supervise_children (self->supervise, &n);
    for (size_t i = 0; i < n; i++) {
        if (children[i]->state == BCTX_CHILD_GONE || children[i]->standby
            || children[i]->retired)
            continue;
        json_t *c = json_object_get (contexts, children[i]->name);
        if (!c) {
            c = json_object ();
            json_object_set_new (contexts, children[i]->name, c);
        }
        json_object_set_new (c, "process", bctx_supervise_process (children[i]));
        bctx_figures_report (bctx_relay_figures (self->relay), children[i]->name, c);
    }
    const bctx_api_counters_t *k = bctx_api_counters (self->api);
    return bctx_reply_dump_new (json_pack (
        "{s:b, s:s, s:{s:I, s:I, s:I, s:I, s:I}, s:o, s:o, s:o, s:o, s:o}", "ok", 1, "host",
        self->registry->config->name, "api", "requests", (json_int_t) k->requests,
        "in_flight", (json_int_t) bctx_relay_in_flight (self->relay),
        "bad_request", (json_int_t) k->bad,
        "too_large", (json_int_t) k->too_large, "forbidden", (json_int_t) k->forbidden,
        "contexts", contexts, "projections", s_merge (g->parts, "projections"),
        "reactors", s_merge (g->parts, "reactors"),
        "bridges", bctx_registry_bridge_stats (self->registry),
        "peers", bctx_peers_stats (self->peers)));
}

/* The contexts reply of a finished gather, in config order.  Return: new. */
static char *
s_contexts_reply (bctx_gather_t *self, s_gather_t *g)
{
    const bctx_config_t *config = self->registry->config;
    json_t *list = json_array ();
    for (size_t i = 0; i < config->n_contexts; i++) {
        const char *name = config->contexts[i].name;
        bctx_child_t *c = bctx_supervise_find (self->supervise, name);
        /* One that SIGHUP added is listed once it serves. */
        if (c && c->state == BCTX_CHILD_STARTING && !c->restarts)
            continue;
        json_t *part = json_object_get (g->parts, name);
        json_t *info = json_array_get (json_object_get (part, "contexts"), 0);
        info = info ? json_deep_copy (info) : json_pack ("{s:s}", "name", name);
        if (c) {
            /* The handovers are the supervisor's to count. */
            json_object_set_new (info, "reloads", json_integer (c->reloads));
            json_object_set_new (info, "last_reload_error", c->last_reload_error[0]
                                 ? json_string (c->last_reload_error) : json_null ());
            json_object_set_new (info, "process", bctx_supervise_process (c));
        }
        json_array_append_new (list, info);
    }
    /* Where the bus is, for `bctx events --follow`. */
    return bctx_reply_dump_new (json_pack ("{s:b, s:s, s:o, s:o, s:s?}", "ok", 1, "host",
                                           config->name, "contexts", list, "remote",
                                           bctx_registry_remotes (config), "publish",
                                           config->publish));
}

/* Frees a gather (an s_gather_t *) not yet answered, or answered. */
static void
s_gather_free (void *arg)
{
    s_gather_t *g = arg;
    json_decref (g->parts);
    free (g);
}

/* Answers gather g and frees it. */
static void
s_gather_end (bctx_gather_t *self, s_gather_t *g)
{
    char *reply = g->op == BCTX_OP_STATS ? s_stats_reply (self, g) : s_contexts_reply (self, g);
    bctx_api_send (self->api, g->env, g->env_len, g->delimiter, reply);
    free (reply);
    for (size_t i = 0; i < self->n_gathers; i++)
        if (self->gathers[i] == g) {
            self->gathers[i] = self->gathers[--self->n_gathers];
            break;
        }
    s_gather_free (g);
}

/* A part of gather g came in from child (reply borrowed), or did not
 * (reply NULL: it ended, or did not answer in time). */
static void
s_gathered (void *arg, bctx_child_t *c, const char *reply)
{
    s_gather_t *g = arg;
    bctx_gather_t *self = g->self;
    json_t *part = reply ? json_loads (reply, 0, NULL) : NULL;
    if (part) {
        if (g->op == BCTX_OP_STATS)
            bctx_relay_learn (self->relay, c, part);
        json_object_set_new (g->parts, c->name, part);
    }
    if (--g->waiting == 0)
        s_gather_end (self, g);
}

/* {"op":"stats"} and {"op":"contexts"}: every process's, with the
 * supervisor's own (api, peers, each process's pid and memory). */
static char *
s_op_gather (void *arg, bctx_request_t *req)
{
    bctx_gather_t *self = arg;
    s_gather_t *g = calloc (1, sizeof *g);
    *g = (s_gather_t) { .self = self, .op = req->op->id, .parts = json_object (),
                        .env_len = req->envelope_len, .delimiter = req->delimiter };
    memcpy (g->env, req->envelope, req->envelope_len);
    self->gathers = bctx_realloc (self->gathers, (self->n_gathers + 1) * sizeof *self->gathers);
    self->gathers[self->n_gathers++] = g;
    /* One more until every process was asked: no part ends it early. */
    g->waiting = 1;
    size_t n;
    bctx_child_t **children = bctx_supervise_children (self->supervise, &n);
    for (size_t i = 0; i < n; i++) {
        if (children[i]->state != BCTX_CHILD_UP || children[i]->standby
            || children[i]->retired)
            continue;
        if (bctx_relay_ask (self->relay, children[i], req->text, req->text_len, S_GATHER_WAIT,
                            s_gathered, g) == 0)
            g->waiting++;
    }
    if (--g->waiting == 0)
        s_gather_end (self, g);
    return NULL;
}
/* The reply to a projection (or reactor) `name` that no process runs:
 * unknown_projection (bad_request for a reactor), listing those the
 * processes run.  Return: new. */
static char *
s_unknown (bctx_gather_t *self, bctx_request_t *req, int projection, const char *name)
{
    const char *key = projection ? "projection" : "reactor";
    bctx_buf_t names = { 0 };
    bctx_buf_add_str (&names, "");
    size_t n;
    bctx_child_t **children = bctx_supervise_children (self->supervise, &n);
    for (size_t i = 0; i < n; i++) {
        if (children[i]->standby || children[i]->retired)
            continue;
        size_t k;
        json_t *v;
        json_array_foreach (projection ? children[i]->projections : children[i]->reactors,
                            k, v) {
            bctx_buf_add_str (&names, names.len ? ", " : "");
            bctx_buf_add_str (&names, json_string_value (v));
        }
    }
    char *reply = bctx_request_error (req, projection ? BCTX_E_UNKNOWN_PROJECTION
                                                      : BCTX_E_BAD_REQUEST,
                                      "no %s \"%s\" on this host; its %ss: %s", key, name,
                                      key, names.len ? names.text : "none");
    free (names.text);
    return reply;
}

/* {"op":"replay","projection":P}, {"op":"retry","reactor":R} and
 * {"op":"retry","projection":P,...} (a parked event: the process checks
 * the rest): to the process that runs it. */
static char *
s_op_named (void *arg, bctx_request_t *req)
{
    bctx_gather_t *self = arg;
    int replay = req->op->id == BCTX_OP_REPLAY;
    int projection = replay || json_object_get (req->body, "projection");
    const char *key = projection ? "projection" : "reactor";
    const char *op = NULL, *name = NULL;
    json_error_t jerr;
    if (json_unpack_ex (req->body, &jerr, replay ? JSON_STRICT : 0, "{s:s, s:s}", "op", &op,
                        key, &name) != 0)
        return bctx_request_error (req, BCTX_E_BAD_REQUEST, "%s: %s", req->op->name,
                                   jerr.text);
    size_t n;
    bctx_child_t **children = bctx_supervise_children (self->supervise, &n);
    for (size_t i = 0; i < n; i++) {
        if (children[i]->standby || children[i]->retired)
            continue;
        json_t *names = projection ? children[i]->projections : children[i]->reactors;
        size_t k;
        json_t *v;
        json_array_foreach (names, k, v) {
            if (strcmp (json_string_value (v), name) != 0)
                continue;
            return bctx_relay_forward (self->relay, children[i], req, S_GATHER_WAIT);
        }
    }
    return s_unknown (self, req, projection, name);
}


void
bctx_gather_destroy (bctx_gather_t **self_p)
{
    BCTX_SELF_OR_RETURN (bctx_gather_t, self_p);
    bctx_items_free (self->gathers, self->n_gathers, s_gather_free);
    free (self);
    *self_p = NULL;
}
