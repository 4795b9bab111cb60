/*
 * reactor - runs one reactor on its own thread: feeds it the events it
 * consumes in position order for each source, checkpointed after each, and
 * carries out the commands it sends (host->send) on the local contexts,
 * with ids derived from the event so a redelivered event never acts twice.
 *
 * A failing event is retried with back-off; an aggregate whose event keeps
 * failing is parked, and so are its later events, while other aggregates
 * go on.  `bctx retry REACTOR` runs the parked events again.  Checkpoints
 * and parked events live in host.data/reactor-<name>.db.
 */
#ifndef BCTX_REACTOR_H
#define BCTX_REACTOR_H

#include "consumer.h"
#include "poison.h"
#include "util.h"
#include <stddef.h>
#include <jansson.h>

#include "bctx/plugin.h"
#include "feed.h"
#include "loader.h"
#include "security.h"

typedef struct bctx_reactor_runner bctx_reactor_runner_t;

/* Host service behind bctx_host_t.send. */
int bctx_reaction_send (bctx_reaction_t *reaction, const char *context,
                        const char *command, json_t *data, bctx_reason_t *why);

/* Opens the reactor `def` (borrowed, from `plugin`, of which it takes a
 * reference)
 * with its file under `data`; it reads from and sends to `targets` (every
 * local context), a remote one through a CURVE client of `security`
 * (borrowed, outlives the runner).  lanes (contexts[].reactor_lanes):
 * with more than 1, events of different aggregates are handled that many
 * at once, each aggregate's in order (lanes.h).  Return: new runner (not
 * running), or NULL with the reason in err. */
bctx_reactor_runner_t *bctx_reactor_new (void *zctx, const bctx_security_t *security,
                                         const char *data,
                                         bctx_plugin_t *plugin,
                                         const bctx_reactor_t *def,
                                         const bctx_source_t *targets, size_t n,
                                         size_t lanes, char *err, size_t errlen);

/* bctx_consumer_guard, and a poison slot for each lane. */
void bctx_reactor_guard (bctx_reactor_runner_t *self, bctx_poison_t *poison);

/* How long its longest-running handler has run, on any lane (0: none
 * runs).  The watchdog's; from any thread. */
long long bctx_reactor_busy_ms (bctx_reactor_runner_t *self);

/* What it shares with a projection (borrowed): its name, its context,
 * its busy mark for the watchdog, and bctx_consumer_guard before its
 * start (which parks the events parked for it). */
bctx_consumer_t *bctx_reactor_base (bctx_reactor_runner_t *self);

/* Asks it to run its parked events again, its parked poison events too
 * (from the API thread only). */
void bctx_reactor_retry (bctx_reactor_runner_t *self);

/* Parked events right now (thread-safe). */
int64_t bctx_reactor_parked (bctx_reactor_runner_t *self);

/* Its state for `stats`, with the poison events parked for it (among its
 * parked events).  Thread-safe.  Return: new. */
json_t *bctx_reactor_stats (bctx_reactor_runner_t *self);

/* Stops the thread after the event in hand; sets *self_p to NULL. */
void bctx_reactor_destroy (bctx_reactor_runner_t **self_p);

#endif
