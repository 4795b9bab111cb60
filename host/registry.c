/*
 * registry - the contexts, sources, bridges, projections and reactors of
 * this host by name, with the checks that a version's read side can run
 * beside the others, and their start and stop in order.
 */

#include "registry.h"
#include "log.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

bctx_registry_t *
bctx_registry_new (void *zctx, bctx_config_t *config)
{
    bctx_registry_t *self = calloc (1, sizeof *self);
    self->zctx = zctx;
    self->config = config;
    return self;
}

int
bctx_local_open (void *zctx, const bctx_config_t *config, size_t i,
                   bctx_local_t *c, char *err, size_t errlen)
{
    c->worker = bctx_worker_new (zctx, config, i, &c->load_failure, err, errlen);
    if (!c->worker)
        return -1;
    c->name = strdup (config->contexts[i].name);
    c->reader = bctx_store_open (bctx_worker_store_path (c->worker),
                                 BCTX_STORE_READONLY, err, errlen);
    if (!c->reader)
        return -1;
    int hwm = 0;
    c->push = zmq_socket (zctx, ZMQ_PUSH);
    zmq_setsockopt (c->push, ZMQ_SNDHWM, &hwm, sizeof hwm);
    if (zmq_connect (c->push, bctx_worker_endpoint (c->worker)) != 0) {
        snprintf (err, errlen, "contexts[%zu]: cannot connect its queue", i);
        return -1;
    }
    return 0;
}

void
bctx_local_close (bctx_local_t *c)
{
    if (c->push) {
        bctx_job_t *none = NULL;
        zmq_send (c->push, &none, sizeof none, 0);
    }
    bctx_store_destroy (&c->reader);
    bctx_worker_destroy (&c->worker);
    free (c->name);
    c->name = NULL;
    bctx_socket_close (&c->push);
}

int
bctx_registry_open_contexts (bctx_registry_t *self, char *err, size_t errlen)
{
    const bctx_config_t *config = self->config;
    self->contexts = calloc (config->n_contexts ? config->n_contexts : 1,
                             sizeof *self->contexts);
    for (size_t i = 0; i < config->n_contexts; i++) {
        int rc = bctx_local_open (self->zctx, config, i, &self->contexts[i], err, errlen);
        if (self->contexts[i].worker)
            self->n_contexts = i + 1;    /* to be closed */
        if (rc < 0)
            return -1;
    }
    return 0;
}

bctx_local_t *
bctx_registry_find (bctx_registry_t *self, const char *name)
{
    for (size_t i = 0; i < self->n_contexts; i++)
        if (strcmp (self->contexts[i].name, name) == 0)
            return &self->contexts[i];
    return NULL;
}

void
bctx_registry_open_handles (bctx_registry_t *self)
{
    const bctx_config_t *config = self->config;
    self->contexts = calloc (config->n_contexts ? config->n_contexts : 1,
                             sizeof *self->contexts);
    for (size_t i = 0; i < config->n_contexts; i++)
        self->contexts[i].name = strdup (config->contexts[i].name);
    self->n_contexts = config->n_contexts;
    for (size_t i = 0; i < config->n_contexts; i++)
        bctx_registry_open_reader (self, &self->contexts[i]);
}

int
bctx_registry_open_reader (bctx_registry_t *self, bctx_local_t *c)
{
    if (c->reader)
        return 0;
    char path[4200], err[512];
    snprintf (path, sizeof path, "%s/%s.db", self->config->data, c->name);
    /* Made once with its tables, so that every context process can read
     * every log from its start (the context's own process writes it). */
    if (access (path, F_OK) != 0) {
        bctx_store_t *made = bctx_store_open (path, 0, err, sizeof err);
        bctx_store_destroy (&made);
    }
    c->reader = bctx_store_open (path, BCTX_STORE_READONLY, err, sizeof err);
    if (!c->reader)
        bctx_log (BCTX_LOG_WARN, "context %s: cannot read its log: %s", c->name, err);
    return c->reader ? 0 : -1;
}

/* Frees what a projection's entry holds and clears it. */
static void
s_read_model_free (bctx_read_model_t *m)
{
    /* Readers close before the writer, so the writer's close, the file's
     * last, folds the WAL back into the one database file. */
    bctx_readside_destroy (&m->reader);
    bctx_projector_destroy (&m->projector);
    free (m->name);
    free (m->context);
    *m = (bctx_read_model_t) { 0 };
}

/* Is `name` among the strings of array `names`? */
static int
s_named_in (const json_t *names, const char *name)
{
    size_t i;
    json_t *v;
    json_array_foreach (names, i, v)
        if (json_is_string (v) && strcmp (json_string_value (v), name) == 0)
            return 1;
    return 0;
}

void
bctx_registry_set_views (bctx_registry_t *self, const char *ctx, const json_t *names)
{
    for (size_t i = 0; i < self->n_projections;) {
        bctx_read_model_t *m = &self->projections[i];
        if (strcmp (m->context, ctx) == 0 && !s_named_in (names, m->name)) {
            s_read_model_free (m);
            self->projections[i] = self->projections[--self->n_projections];
        } else {
            i++;
        }
    }
    size_t i;
    json_t *v;
    json_array_foreach (names, i, v) {
        const char *name = json_string_value (v);
        if (!name || bctx_registry_find_projection (self, name))
            continue;
        char path[4200], err[512];
        snprintf (path, sizeof path, "%s/projection-%s.db", self->config->data, name);
        bctx_readside_t *reader = bctx_readside_open (path, BCTX_STORE_READONLY, err, sizeof err);
        if (!reader) {
            bctx_log (BCTX_LOG_WARN, "projection %s: cannot read its read models: %s", name, err);
            continue;
        }
        self->projections = bctx_realloc (self->projections,
                                          (self->n_projections + 1) * sizeof *self->projections);
        self->projections[self->n_projections++] = (bctx_read_model_t) {
            .name = strdup (name), .reader = reader, .context = strdup (ctx) };
    }
}

json_t *
bctx_registry_remotes (const bctx_config_t *config)
{
    json_t *remote = json_array ();
    for (size_t r = 0; r < config->n_remotes; r++)
        json_array_append_new (remote, json_pack (
            "{s:s, s:s, s:s}", "name", config->remotes[r].name,
            "peer", config->peers[config->remotes[r].peer].name,
            "api", config->peers[config->remotes[r].peer].api));
    return remote;
}

int
bctx_registry_index (const bctx_config_t *config, const char *name)
{
    for (size_t i = 0; i < config->n_contexts; i++)
        if (strcmp (config->contexts[i].name, name) == 0)
            return (int) i;
    return -1;
}

bctx_read_model_t *
bctx_registry_find_projection (bctx_registry_t *self, const char *name)
{
    if (!name)
        return NULL;
    for (size_t i = 0; i < self->n_projections; i++)
        if (strcmp (self->projections[i].name, name) == 0)
            return &self->projections[i];
    return NULL;
}

bctx_reactor_runner_t *
bctx_registry_find_reactor (bctx_registry_t *self, const char *name)
{
    if (!name)
        return NULL;
    for (size_t i = 0; i < self->n_reactors; i++)
        if (strcmp (bctx_reactor_base (self->reactors[i])->name, name) == 0)
            return self->reactors[i];
    return NULL;
}

/* Does any runner of a context other than `ctx` use this name? */
static int
s_name_taken (bctx_registry_t *self, const char *kind, const char *name, const char *ctx)
{
    if (strcmp (kind, "projection") == 0) {
        for (size_t i = 0; i < self->n_projections; i++)
            if (strcmp (self->projections[i].name, name) == 0
                && strcmp (self->projections[i].context, ctx) != 0)
                return 1;
    } else {
        for (size_t i = 0; i < self->n_reactors; i++)
            if (strcmp (bctx_reactor_base (self->reactors[i])->name, name) == 0
                && strcmp (bctx_reactor_base (self->reactors[i])->context, ctx) != 0)
                return 1;
    }
    return 0;
}

int
bctx_registry_check_read_side (bctx_registry_t *self, const bctx_plugin_t *p,
                               char *err, size_t errlen)
{
    json_t *seen = json_object ();
    int rc = -1;
    const char *kinds[2] = { "projection", "reactor" };
    for (int k = 0; k < 2; k++) {
        size_t n = 0;
        const char *const *consumes[64];
        const char *names[64];
        if (k == 0)
            for (const bctx_projection_t *d = p->desc->projections; d && d->name && n < 64; d++)
                names[n] = d->name, consumes[n++] = d->consumes;
        else
            for (const bctx_reactor_t *d = p->desc->reactors; d && d->name && n < 64; d++)
                names[n] = d->name, consumes[n++] = d->consumes;
        for (size_t i = 0; i < n; i++) {
            char key[160];
            snprintf (key, sizeof key, "%s %s", kinds[k], names[i]);
            /* The name becomes a file name and a socket name. */
            size_t len = strlen (names[i]);
            if (len == 0 || len > 64 || strspn (names[i], "abcdefghijklmnopqrstuvwxyz"
                                                 "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") != len) {
                snprintf (err, errlen, "context %s: %s \"%s\": a name is 1 to 64 of "
                          "A-Z a-z 0-9 _ -", p->name, kinds[k], names[i]);
                goto done;
            }
            if (json_object_get (seen, key) || s_name_taken (self, kinds[k], names[i], p->name)) {
                snprintf (err, errlen, "context %s: %s is declared twice in this host",
                          p->name, key);
                goto done;
            }
            json_object_set_new (seen, key, json_true ());
            char who[200];
            snprintf (who, sizeof who, "context %s: %s", p->name, key);
            /* A feed opened and closed: the consumed contexts exist. */
            bctx_feed_t *feed = bctx_feed_new (who, consumes[i], self->sources,
                                               self->n_sources, err, errlen);
            if (!feed)
                goto done;
            bctx_feed_destroy (&feed);
        }
    }
    rc = 0;
done:
    json_decref (seen);
    return rc;
}

/* contexts[].reactor_lanes of context, or 1. */
static size_t
s_reactor_lanes (const bctx_registry_t *self, const char *context)
{
    for (size_t i = 0; i < self->config->n_contexts; i++)
        if (strcmp (self->config->contexts[i].name, context) == 0)
            return self->config->contexts[i].reactor_lanes ? self->config->contexts[i].reactor_lanes
                                                           : 1;
    return 1;
}

int
bctx_registry_add_runners (bctx_registry_t *self, bctx_plugin_t *p, int start,
                           char *err, size_t errlen)
{
    const char *data = self->config->data;
    for (const bctx_projection_t *d = p->desc->projections; d && d->name; d++) {
        if (bctx_registry_find_projection (self, d->name))
            continue;
        bctx_projector_t *pr = bctx_projector_new (self->zctx, data, p, d,
                                                   self->sources, self->n_sources, err, errlen);
        if (!pr)
            return -1;
        bctx_consumer_guard (bctx_projector_base (pr), self->poison);
        bctx_readside_t *reader = bctx_readside_open (bctx_projector_path (pr),
                                                      BCTX_STORE_READONLY, err, errlen);
        if (!reader || (start && bctx_consumer_start (bctx_projector_base (pr)) != 0)) {
            bctx_readside_destroy (&reader);
            bctx_projector_destroy (&pr);
            return -1;
        }
        self->projections = bctx_realloc (self->projections,
                                     (self->n_projections + 1) * sizeof *self->projections);
        self->projections[self->n_projections++] = (bctx_read_model_t) {
            strdup (d->name), pr, reader, strdup (p->name) };
    }
    for (const bctx_reactor_t *d = p->desc->reactors; d && d->name; d++) {
        if (bctx_registry_find_reactor (self, d->name))
            continue;
        bctx_reactor_runner_t *r = bctx_reactor_new (self->zctx, self->security, data, p, d,
                                                     self->sources, self->n_sources,
                                                     s_reactor_lanes (self, p->name),
                                                     err, errlen);
        if (!r)
            return -1;
        bctx_reactor_guard (r, self->poison);
        if (start && bctx_consumer_start (bctx_reactor_base (r)) != 0) {
            bctx_reactor_destroy (&r);
            return -1;
        }
        self->reactors = bctx_realloc (self->reactors, (self->n_reactors + 1) * sizeof *self->reactors);
        self->reactors[self->n_reactors++] = r;
    }
    return 0;
}

/* Frees the paths the remote sources are read from. */
static void
s_free_remote_paths (bctx_registry_t *self)
{
    for (size_t r = 0; r < self->n_remote_paths; r++)
        free (self->remote_paths[r]);
    free (self->remote_paths);
    self->remote_paths = NULL;
    self->n_remote_paths = 0;
}

void
bctx_registry_build_sources (bctx_registry_t *self)
{
    const bctx_config_t *config = self->config;
    free (self->sources);
    s_free_remote_paths (self);
    self->remote_paths = calloc (config->n_remotes ? config->n_remotes : 1,
                                 sizeof *self->remote_paths);
    self->n_remote_paths = config->n_remotes;
    for (size_t r = 0; r < config->n_remotes; r++) {
        const bctx_remote_config_t *rc = &config->remotes[r];
        /* A sibling's own file beside this one's, or the replica the
         * supervisor's bridge keeps of a peer's context. */
        if (rc->sibling && asprintf (&self->remote_paths[r], "%s/%s.db", config->data,
                                     rc->name) < 0)
            self->remote_paths[r] = NULL;
        else if (!rc->sibling)
            self->remote_paths[r] = bctx_bridge_replica_path (config->data, rc->name);
    }
    size_t n = self->n_contexts + config->n_remotes;
    self->sources = calloc (n ? n : 1, sizeof *self->sources);
    for (size_t i = 0; i < self->n_contexts; i++) {
        bctx_worker_t *w = self->contexts[i].worker;
        self->sources[i] = (bctx_source_t) {
            .name = bctx_worker_name (w),
            .store_path = bctx_worker_store_path (w),
            .head = &bctx_worker_stats (w)->position,
            .endpoint = bctx_worker_endpoint (w),
            .bus = config->bus_out,
        };
    }
    /* Another process writes each remote log: its head is read from it. */
    for (size_t r = 0; r < config->n_remotes; r++) {
        const bctx_remote_config_t *rc = &config->remotes[r];
        self->sources[self->n_contexts + r] = (bctx_source_t) {
            .name = rc->name, .store_path = self->remote_paths[r],
            .endpoint = config->peers[rc->peer].api,
            .remote = rc->sibling ? BCTX_SOURCE_SIBLING : 1,
            .server_key = config->peers[rc->peer].public_key,
            .timeout_ms = config->forward_timeout_ms, .bus = config->bus_out,
        };
    }
    self->n_sources = n;
}

const char *
bctx_registry_consumer (const bctx_plugin_t *p, const char *context, char *who, size_t size)
{
    size_t len = strlen (context);
    for (const bctx_projection_t *d = p->desc->projections; d && d->name; d++)
        for (const char *const *c = d->consumes; c && *c; c++)
            if (strncmp (*c, context, len) == 0 && (*c)[len] == '.') {
                snprintf (who, size, "projection %s", d->name);
                return who;
            }
    for (const bctx_reactor_t *d = p->desc->reactors; d && d->name; d++)
        for (const char *const *c = d->consumes; c && *c; c++)
            if (strncmp (*c, context, len) == 0 && (*c)[len] == '.') {
                snprintf (who, size, "reactor %s", d->name);
                return who;
            }
    return NULL;
}

int
bctx_registry_open_bridges (bctx_registry_t *self, char *err, size_t errlen)
{
    const bctx_config_t *config = self->config;
    for (size_t r = 0; r < config->n_remotes; r++) {
        const bctx_remote_config_t *rc = &config->remotes[r];
        if (rc->sibling)
            continue;
        bctx_bridge_t *b = bctx_bridge_new (self->zctx, self->security, config->data, rc->name,
                                            &config->peers[rc->peer],
                                            config->forward_timeout_ms, err, errlen);
        if (!b)
            return -1;
        self->bridges = bctx_realloc (self->bridges, (self->n_bridges + 1) * sizeof *self->bridges);
        self->bridges[self->n_bridges++] = b;
    }
    return 0;
}

void
bctx_registry_want_bridges (bctx_registry_t *self, const json_t *consumes)
{
    const char *who;
    json_t *sources;
    json_object_foreach ((json_t *) consumes, who, sources) {
        size_t k;
        json_t *source;
        json_array_foreach (sources, k, source)
            for (size_t b = 0; b < self->n_bridges; b++) {
                bctx_bridge_t *bridge = self->bridges[b];
                if (!bctx_bridge_started (bridge) && json_is_string (source)
                    && strcmp (bctx_bridge_context (bridge), json_string_value (source)) == 0
                    && bctx_bridge_start (bridge) != 0)
                    bctx_log (BCTX_LOG_ERROR, "bridge %s: cannot start its thread (%s "
                              "reads it): its replica stays where it is",
                              bctx_bridge_context (bridge), who);
            }
    }
}

json_t *
bctx_registry_bridge_stats (bctx_registry_t *self)
{
    json_t *bridges = json_object ();
    for (size_t i = 0; i < self->n_bridges; i++)
        if (bctx_bridge_started (self->bridges[i]))
            json_object_set_new (bridges, bctx_bridge_context (self->bridges[i]),
                                 bctx_bridge_stats (self->bridges[i]));
    return bridges;
}

int
bctx_registry_open_read_side (bctx_registry_t *self, char *err, size_t errlen)
{
    bctx_registry_build_sources (self);
    for (size_t i = 0; i < self->n_contexts; i++) {
        bctx_plugin_t *p = bctx_worker_plugin (self->contexts[i].worker);
        char why[512];
        int rc = bctx_registry_check_read_side (self, p, why, sizeof why) == 0
                 && bctx_registry_add_runners (self, p, 0, why, sizeof why) == 0 ? 0 : -1;
        bctx_plugin_unref (&p);
        if (rc < 0) {
            snprintf (err, errlen, "contexts[%zu]: %s", self->config->contexts[i].index, why);
            return -1;
        }
    }
    return 0;
}

int
bctx_registry_start (bctx_registry_t *self, const char *replies, char *err, size_t errlen)
{
    for (size_t i = 0; i < self->n_contexts; i++)
        if (bctx_worker_start (self->contexts[i].worker, replies) != 0) {
            snprintf (err, errlen, "contexts[%zu]: cannot start its worker", i);
            return -1;
        }
    for (size_t i = 0; i < self->n_projections; i++)
        if (bctx_consumer_start (bctx_projector_base (self->projections[i].projector)) != 0) {
            snprintf (err, errlen, "projection %s: cannot start its thread",
                      bctx_projector_base (self->projections[i].projector)->name);
            return -1;
        }
    for (size_t i = 0; i < self->n_reactors; i++)
        if (bctx_consumer_start (bctx_reactor_base (self->reactors[i])) != 0) {
            snprintf (err, errlen, "reactor %s: cannot start its thread",
                      bctx_reactor_base (self->reactors[i])->name);
            return -1;
        }
    return 0;
}

void
bctx_registry_drop_projections (bctx_registry_t *self, const char *name)
{
    for (size_t k = 0; k < self->n_projections;) {
        if (strcmp (self->projections[k].context, name) == 0) {
            s_read_model_free (&self->projections[k]);
            self->projections[k] = self->projections[--self->n_projections];
        } else {
            k++;
        }
    }
}

void
bctx_registry_end_reactors (bctx_registry_t *self)
{
    for (size_t i = 0; i < self->n_reactors; i++)
        bctx_reactor_destroy (&self->reactors[i]);
    self->n_reactors = 0;
}

void
bctx_registry_end_runners (bctx_registry_t *self)
{
    bctx_registry_end_reactors (self);
    for (size_t i = 0; i < self->n_projections; i++)
        s_read_model_free (&self->projections[i]);
    self->n_projections = 0;
}

void
bctx_registry_end_bridges (bctx_registry_t *self)
{
    for (size_t i = 0; i < self->n_bridges; i++)
        bctx_bridge_destroy (&self->bridges[i]);
    self->n_bridges = 0;
    free (self->sources);
    self->sources = NULL;
    self->n_sources = 0;
    s_free_remote_paths (self);
}

void
bctx_registry_stop_workers (bctx_registry_t *self, int flags)
{
    for (size_t i = 0; i < self->n_contexts; i++)
        if (self->contexts[i].push) {
            bctx_job_t *none = NULL;
            zmq_send (self->contexts[i].push, &none, sizeof none, flags);
        }
}

void
bctx_registry_join_workers (bctx_registry_t *self)
{
    for (size_t i = 0; i < self->n_contexts; i++)
        if (self->contexts[i].worker)
            bctx_worker_join (self->contexts[i].worker);
}

void
bctx_registry_mark (bctx_registry_t *self, bctx_datadir_t *datadir)
{
    for (size_t i = 0; i < self->n_contexts; i++) {
        bctx_worker_t *w = self->contexts[i].worker;
        if (!w)
            continue;
        bctx_datadir_mark (datadir, bctx_worker_name (w),
                           atomic_load (&bctx_worker_stats (w)->position));
    }
}

void
bctx_registry_close_contexts (bctx_registry_t *self)
{
    for (size_t i = 0; i < self->n_contexts; i++) {
        bctx_local_t *c = &self->contexts[i];
        bctx_store_destroy (&c->reader);     /* before the writer: see above */
        bctx_worker_destroy (&c->worker);
        free (c->name);
        bctx_socket_close (&c->push);
    }
    free (self->contexts);
    self->contexts = NULL;
    self->n_contexts = 0;
}

void
bctx_registry_destroy (bctx_registry_t **self_p)
{
    BCTX_SELF_OR_RETURN (bctx_registry_t, self_p);
    bctx_registry_end_runners (self);
    bctx_registry_end_bridges (self);
    bctx_registry_close_contexts (self);
    free (self->projections);
    free (self->reactors);
    free (self->bridges);
    bctx_poison_close (&self->poison);
    bctx_config_destroy (&self->config);
    free (self);
    *self_p = NULL;
}
