/*
 * bridge - brings the events of a context that lives on a peer into a
 * local replica of its log, for the projections and reactors here that
 * consume it.  The Clone pattern of the zguide: subscribe to the peer's
 * bus, and fetch by position from the peer's API (`events`) whatever the
 * replica lacks: at start, after a gap, after a silence.  Duplicates are
 * dropped by position.  The replica is the durable checkpoint: a restart of
 * either side loses and repeats nothing.  The replica lives in
 * host.data/replica-<context>.db and is read like a local log.
 */
#ifndef BCTX_BRIDGE_H
#define BCTX_BRIDGE_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#include "config.h"

typedef struct bctx_bridge bctx_bridge_t;

/* Opens (creating) the replica of `context` from `peer` (borrowed) under
 * data.  timeout_ms bounds each request to the peer.  Return: new bridge
 * (not running), or NULL with the reason in err. */
bctx_bridge_t *bctx_bridge_new (void *zctx, const char *data, const char *context,
                                const bctx_peer_config_t *peer, size_t timeout_ms,
                                char *err, size_t errlen);

/* Starts its thread.  Return 0 or -1. */
int bctx_bridge_start (bctx_bridge_t *self);

/* The replica's file, the context's name (borrowed), and the replica's
 * head, which feeds read as a log's head. */
const char *bctx_bridge_store_path (const bctx_bridge_t *self);
const char *bctx_bridge_context (const bctx_bridge_t *self);
_Atomic int64_t *bctx_bridge_head (bctx_bridge_t *self);

/* Its state for `stats`: peer, state, checkpoint, peer head, lag, last
 * contact, dropped frames.  Thread-safe.  Return: new. */
json_t *bctx_bridge_stats (bctx_bridge_t *self);

/* Stops the thread; sets *self_p to NULL.  Idempotent. */
void bctx_bridge_destroy (bctx_bridge_t **self_p);

#endif
