/*
 * projection - runs one projection on its own thread: feeds it the events
 * it consumes from its checkpoint on (catching up in batches, then woken
 * by the bus), writes its read models and checkpoints in one transaction
 * per batch, and rebuilds it beside the live read models when its version
 * changes or `bctx replay` asks.  Its read models live in
 * host.data/projection-<name>.db.
 */
#ifndef BCTX_PROJECTION_H
#define BCTX_PROJECTION_H

#include "consumer.h"
#include "poison.h"
#include "util.h"
#include <stddef.h>
#include <jansson.h>

#include "bctx/plugin.h"
#include "feed.h"
#include "loader.h"

typedef struct bctx_projector bctx_projector_t;

/* Host services behind bctx_host_t.model_get/put/delete. */
json_t *bctx_models_get (bctx_models_t *models, const char *key);
int bctx_models_put (bctx_models_t *models, const char *key, json_t *value);
int bctx_models_delete (bctx_models_t *models, const char *key);

/*
 * Opens the projection `def` (borrowed, from `plugin`, of which the
 * projector takes a reference) with its read-side file under `data`, and
 * its feed over `sources`.  Return: new projector (not running), or NULL
 * with the reason in err.
 */
bctx_projector_t *bctx_projector_new (void *zctx, const char *data,
                                      bctx_plugin_t *plugin,
                                      const bctx_projection_t *def,
                                      const bctx_source_t *sources, size_t n,
                                      char *err, size_t errlen);

/* What it shares with a reactor (borrowed): its name, its context, its
 * busy mark for the watchdog, and bctx_consumer_guard before its start. */
bctx_consumer_t *bctx_projector_base (bctx_projector_t *self);

/* Asks for a rebuild from position 1 (from the API thread only). */
void bctx_projector_replay (bctx_projector_t *self);

/* Asks it to run source's parked poison event at position again (from the
 * API thread only): applied now to the read models as they are, since
 * the projection is past it, then unparked; a rebuild that has not
 * reached it folds it in order.  Return 0, or -1 when that event is not
 * parked for it. */
int bctx_projector_retry (bctx_projector_t *self, const char *source, int64_t position);

/* Its read-side file (borrowed). */
const char *bctx_projector_path (const bctx_projector_t *self);

/* Its state for `stats`: version, state, checkpoints, lag, rebuild
 * progress, last error, the poison events parked for it.  Thread-safe.  Return: new. */
json_t *bctx_projector_stats (bctx_projector_t *self);

/* Stops the thread (after the batch in hand), closes everything; sets
 * *self_p to NULL.  Idempotent. */
void bctx_projector_destroy (bctx_projector_t **self_p);

#endif
