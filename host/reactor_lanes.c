/*
 * reactor_lanes - a reactor's batch on its lanes (contexts[].reactor_lanes):
 * the events copied out of the feed, those of a parked aggregate or parked
 * as poison decided first, the rest run on the lanes their aggregates hash
 * to, then settled in position order in one transaction (reactor.c runs a
 * batch on its own thread, and everything else).
 */
#include "reactor_internal.h"
#include "log.h"
#include "sender.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { S_DONE = 0, S_PARK = 1, S_STOPPED = -1, S_BEHIND = 2 }; /* an event's outcome */

/* One event of a batch on lanes, copied out of the feed's row. */
typedef struct {
    bctx_event_t ev;              /* its fields point at what follows */
    char *context, *type, *aggregate, *metadata;
    json_t *data;
    char key[512];                /* source and aggregate: the lane's key */
    int rc;                       /* S_*: what became of it */
    char why[256];                /* why it is parked */
} s_item_t;

typedef struct {
    bctx_reactor_runner_t *self;
    s_item_t *items;              /* the batch, in position order */
    size_t n;                     /* how many */
    size_t *lane_of;              /* each one's lane */
} s_lot_t;

static int
s_copy_event (const bctx_event_t *ev, void *arg)
{
    s_lot_t *lot = arg;
    s_item_t *it = &lot->items[lot->n++];
    it->context = strdup (ev->context);
    it->type = strdup (ev->type);
    it->aggregate = strdup (ev->aggregate);
    it->metadata = ev->metadata ? strdup (ev->metadata) : NULL;
    it->data = json_deep_copy (ev->data);
    it->ev = (bctx_event_t) { it->context, it->type, it->aggregate, ev->version,
                              ev->position, it->data, it->metadata };
    bctx_reactor_key (it->key, sizeof it->key, ev->context, ev->aggregate);
    return 0;
}

/* On lane: one event, unless an earlier one of its aggregate in this
 * batch was parked (the lane has them all, in order). */
static void
s_lane_item (void *arg, size_t lane, size_t k)
{
    s_lot_t *lot = arg;
    s_item_t *it = &lot->items[k];
    bctx_reactor_runner_t *self = lot->self;
    if (it->rc != S_DONE)
        return;                    /* decided before the lanes ran */
    if (self->stopping) {
        it->rc = S_STOPPED;
        return;
    }
    for (size_t j = k; j-- > 0;)
        if (lot->lane_of[j] == lane && strcmp (lot->items[j].key, it->key) == 0
            && (lot->items[j].rc == S_PARK || lot->items[j].rc == S_BEHIND)) {
            it->rc = S_BEHIND;
            snprintf (it->why, sizeof it->why, "waits behind a parked event of aggregate %s",
                      it->aggregate);
            return;
        }
    it->rc = bctx_reactor_attempt (self, &self->lane_hands[lane], &it->ev, it->why, sizeof it->why);
    if (it->rc < 0)
        it->rc = S_STOPPED;
}

static void
s_lanes_poll (void *arg)
{
    bctx_reactor_read_commands (arg);
}

/* The batch's outcome, up to the first event not done: parked events and
 * the checkpoint in one transaction, then what stats show.  through: the
 * checkpoint when all were done.  Return 0, or -1. */
static int
s_settle (bctx_reactor_runner_t *self, size_t i, s_lot_t *lot, int64_t through)
{
    size_t k = 0;
    while (k < lot->n && lot->items[k].rc != S_STOPPED)
        k++;
    int64_t checkpoint = k == lot->n ? through
                       : lot->items[k].ev.position - 1;
    if (checkpoint <= self->base.checkpoints[i])
        return k == lot->n ? 0 : -1;
    if (bctx_readside_begin (self->base.db) != 0)
        return -1;
    for (size_t j = 0; j < k; j++) {
        s_item_t *it = &lot->items[j];
        if ((it->rc == S_PARK || it->rc == S_BEHIND)
            && bctx_readside_park (self->base.db, it->context, it->ev.position, it->aggregate,
                                   it->why) != 0)
            goto fail;
    }
    if (bctx_readside_set_checkpoint (self->base.db, 0, bctx_feed_name (self->base.feed, i),
                                      checkpoint) != 0
        || bctx_readside_commit (self->base.db) != 0)
        goto fail;
    self->base.checkpoints[i] = checkpoint;
    pthread_mutex_lock (&self->base.lock);
    self->base.shown[i] = checkpoint;
    self->base.handled += (int64_t) k;
    for (size_t j = 0; j < k; j++) {
        s_item_t *it = &lot->items[j];
        if (it->rc != S_PARK && it->rc != S_BEHIND)
            continue;
        if (!json_object_get (self->parked, it->key) && it->rc == S_PARK)
            bctx_log (BCTX_LOG_WARN, "reactor %s: parked aggregate %s of %s at position %lld; "
                      "`bctx retry %s` runs it again", self->base.name, it->aggregate,
                      it->context, (long long) it->ev.position, self->base.name);
        json_object_set_new (self->parked, it->key, json_integer (
            json_integer_value (json_object_get (self->parked, it->key)) + 1));
        self->n_parked++;
        snprintf (self->base.error, sizeof self->base.error, "%s", it->why);
        self->waiting = 0;
    }
    pthread_mutex_unlock (&self->base.lock);
    return k == lot->n ? 0 : -1;
fail:
    bctx_readside_rollback (self->base.db);
    bctx_reactor_set_error (self, bctx_readside_error (self->base.db), 0);
    return -1;
}

/* One batch from source i on the lanes: the events copied out, those of
 * a parked aggregate or parked as poison decided here, the rest run on
 * their aggregates' lanes, then settled in order.  Return as s_batch. */
int
bctx_reactor_batch_lanes (bctx_reactor_runner_t *self, size_t i)
{
    int64_t from = self->base.checkpoints[i] + 1;
    if (from > bctx_feed_head (self->base.feed, i))
        return 0;
    s_lot_t lot = { .self = self };
    lot.items = bctx_calloc (S_BATCH, sizeof *lot.items);
    lot.lane_of = bctx_calloc (S_BATCH, sizeof *lot.lane_of);
    int64_t last = self->base.checkpoints[i];
    int64_t n = bctx_feed_read (self->base.feed, i, from, S_BATCH, s_copy_event, &lot, &last);
    for (size_t k = 0; n >= 0 && k < lot.n; k++) {
        s_item_t *it = &lot.items[k];
        lot.lane_of[k] = bctx_lanes_of (self->lanes, it->key);
        if (json_object_get (self->parked, it->key)) {
            it->rc = S_BEHIND;
            snprintf (it->why, sizeof it->why, "waits behind a parked event of aggregate %s",
                      it->aggregate);
        } else if (bctx_poison_parked (self->base.poison, self->base.who, it->context,
                                       it->ev.position)) {
            it->rc = S_PARK;
            snprintf (it->why, sizeof it->why, "ended its process %d times", BCTX_POISON_LIMIT);
        }
    }
    int rc = -1;
    if (n >= 0) {
        bctx_lanes_run (self->lanes, lot.lane_of, lot.n, s_lane_item, &lot, s_lanes_poll, self);
        if (s_settle (self, i, &lot, last) == 0)
            rc = n == S_BATCH ? 1 : 0;
    }
    for (size_t k = 0; k < lot.n; k++) {
        s_item_t *it = &lot.items[k];
        free (it->context);
        free (it->type);
        free (it->aggregate);
        free (it->metadata);
        json_decref (it->data);
    }
    free (lot.items);
    free (lot.lane_of);
    return rc;
}

/* With lanes > 1: their threads, and a sender and busy mark each; the
 * first batch after the start runs on the thread alone. */
int
bctx_reactor_open_lanes (bctx_reactor_runner_t *self, void *zctx,
                         const bctx_security_t *security, const bctx_source_t *targets,
                         size_t n, size_t lanes, char *err, size_t errlen)
{
    self->n_lanes = lanes > 1 ? lanes : 1;
    if (self->n_lanes == 1)
        return 0;
    self->lane_hands = bctx_calloc (self->n_lanes, sizeof *self->lane_hands);
    self->lane_busy = bctx_calloc (self->n_lanes, sizeof *self->lane_busy);
    for (size_t l = 0; l < self->n_lanes; l++)
        self->lane_hands[l] = (bctx_hand_t) { bctx_sender_new (zctx, security, targets, n), NULL,
                                           &self->lane_busy[l], NULL };
    self->lanes = bctx_lanes_new (self->n_lanes);
    if (!self->lanes) {
        snprintf (err, errlen, "%s: cannot start its %zu lanes", self->base.label,
                  self->n_lanes);
        return -1;
    }
    self->serial_first = 1;
    bctx_log (BCTX_LOG_INFO, "reactor %s: %zu lanes (events of different aggregates at once)",
              self->base.name, self->n_lanes);
    return 0;
}

