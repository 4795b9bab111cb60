/*
 * consumer - a projection's or reactor's plugin reference, feed, file,
 * bus subscription and runner: made, waited on and freed in one place.
 */
#include "consumer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

void
bctx_consumer_init (bctx_consumer_t *self, const char *kind, bctx_plugin_t *plugin,
                    const char *name)
{
    pthread_mutex_init (&self->lock, NULL);
    self->kind = kind;
    self->name = strdup (name);
    self->plugin = bctx_plugin_ref (plugin);
    self->context = strdup (plugin->name);
    snprintf (self->who, sizeof self->who, "%s %s", kind, name);
    snprintf (self->label, sizeof self->label, "context %s: %s", plugin->name, self->who);
}

int
bctx_consumer_open (bctx_consumer_t *self, const char *data,
                    const char *const *consumes, const bctx_source_t *sources,
                    size_t n, char *err, size_t errlen)
{
    self->feed = bctx_feed_new (self->label, consumes, sources, n, err, errlen);
    if (!self->feed)
        return -1;
    size_t k = bctx_feed_size (self->feed);
    self->checkpoints = calloc (k, sizeof *self->checkpoints);
    self->shown = calloc (k, sizeof *self->shown);
    if (asprintf (&self->path, "%s/%s-%s.db", data, self->kind, self->name) < 0) {
        self->path = NULL;
        return -1;
    }
    self->db = bctx_readside_open (self->path, 0, err, errlen);
    return self->db ? 0 : -1;
}

int
bctx_consumer_connect (bctx_consumer_t *self, void *zctx, const char *const *commands,
                       size_t n_commands, bctx_runner_fn fn, void *arg,
                       char *err, size_t errlen)
{
    self->run = fn;
    self->run_arg = arg;
    char runner[160];
    snprintf (runner, sizeof runner, "%s-%s", self->kind, self->name);
    self->runner = bctx_runner_new (zctx, runner, commands, n_commands, err, errlen);
    if (!self->runner)
        return -1;
    self->sub = bctx_feed_subscribe (self->feed, zctx);
    if (!self->sub) {
        snprintf (err, errlen, "%s: cannot subscribe to the bus", self->label);
        return -1;
    }
    return 0;
}

int
bctx_consumer_start (bctx_consumer_t *self)
{
    return bctx_runner_start (self->runner, self->run, self->run_arg);
}

void
bctx_consumer_guard (bctx_consumer_t *self, bctx_poison_t *poison)
{
    self->poison = poison;
    self->slot = bctx_poison_slot (poison, self->who);
}

int
bctx_consumer_wait (bctx_consumer_t *self, long ms)
{
    int ready = bctx_runner_wait (self->runner, self->sub, ms);
    if (ready < 0)
        return -1;
    if (ready & BCTX_RUNNER_READY)
        bctx_feed_drain (self->sub);
    return 0;
}

json_t *
bctx_consumer_stats (bctx_consumer_t *self, bctx_consumer_stats_fn fn, void *arg)
{
    json_t *checkpoints, *lag;
    json_t *poison = bctx_poison_list (self->poison, self->who);
    pthread_mutex_lock (&self->lock);
    bctx_feed_lag (self->feed, self->shown, &checkpoints, &lag);
    json_t *stats = fn (arg, checkpoints, lag);
    json_object_set_new (stats, "poison", poison);
    pthread_mutex_unlock (&self->lock);
    return stats;
}

void
bctx_consumer_close (bctx_consumer_t *self)
{
    if (!self->kind)
        return;
    bctx_runner_destroy (&self->runner);
    if (self->sub)
        zmq_close (self->sub);
    self->sub = NULL;
    bctx_readside_destroy (&self->db);
    bctx_feed_destroy (&self->feed);
    free (self->checkpoints);
    free (self->shown);
    bctx_plugin_unref (&self->plugin);
    free (self->context);
    free (self->name);
    free (self->path);
    pthread_mutex_destroy (&self->lock);
    memset (self, 0, sizeof *self);
}
