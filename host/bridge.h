/*
 * bridge - brings the events of a context that lives on a peer into a
 * local replica of its log, for the projections and reactors here that
 * consume it.  The Clone pattern of the zguide: subscribe to the peer's
 * bus, and fetch by position from the peer's API (`events`) whatever the
 * replica lacks: at start, after a gap, after a silence.  Duplicates are
 * dropped by position.  The replica is the durable checkpoint: a restart of
 * either side loses and repeats nothing.  The replica lives in
 * host.data/replica-<context>.db.  The supervisor runs the bridges; the
 * context processes read a replica as they read a sibling's log.
 */
#ifndef BCTX_BRIDGE_H
#define BCTX_BRIDGE_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#include "config.h"
#include "security.h"

typedef struct bctx_bridge bctx_bridge_t;

/* Opens (creating) the replica of `context` from `peer` (borrowed) under
 * data; its sockets to the peer are CURVE clients of `security` (borrowed,
 * outlives the bridge).  timeout_ms bounds each request to the peer.  Return: new bridge
 * (not running), or NULL with the reason in err. */
bctx_bridge_t *bctx_bridge_new (void *zctx, const bctx_security_t *security,
                                const char *data, const char *context,
                                const bctx_peer_config_t *peer, size_t timeout_ms,
                                char *err, size_t errlen);

/* Starts its thread, once.  Return 0 or -1.  started: has it? */
int bctx_bridge_start (bctx_bridge_t *self);
int bctx_bridge_started (const bctx_bridge_t *self);

/* The context's name (borrowed). */
const char *bctx_bridge_context (const bctx_bridge_t *self);

/* The file of the replica of `context` under data, which context
 * processes read like a sibling's log.  Return: new, or NULL. */
char *bctx_bridge_replica_path (const char *data, const char *context);

/* Its state for `stats`: peer, state, checkpoint, peer head, lag, last
 * contact, dropped frames.  Thread-safe.  Return: new. */
json_t *bctx_bridge_stats (bctx_bridge_t *self);

/* Stops the thread; sets *self_p to NULL.  Idempotent. */
void bctx_bridge_destroy (bctx_bridge_t **self_p);

/* One event of a peer's log as the bridge reads it, from the peer's bus or
 * from a page of its `events` replies.  Every pointer is borrowed from the
 * JSON event it was read from. */
typedef struct bctx_bridge_event {
    int64_t position;             /* its place in the peer's log (>= 1) */
    int64_t version;              /* its place in its aggregate's stream */
    const char *aggregate;        /* its aggregate id */
    const char *type;             /* its type, or NULL */
    const char *command;          /* metadata.command_id, or NULL */
    json_t *data;                 /* its data, or NULL */
    json_t *metadata;             /* its metadata, or NULL */
} bctx_bridge_event_t;

/* What bctx_bridge_event_read found wrong with an event. */
enum {
    BCTX_BRIDGE_UNPLACED = -1,    /* no position >= 1 or no aggregate: it cannot
                                     even be told apart from the replica's events */
    BCTX_BRIDGE_MALFORMED = -2,   /* position, aggregate, version and command are
                                     read, but it cannot be stored as it is */
};

/*
 * Reads one event a peer sent (ev: borrowed) into out.  A valid event has
 * an integer position >= 1, an aggregate of 1 to 256 bytes, a version
 * >= 1, a type of 1 to 128 letters, digits or '_', and object data and
 * metadata (metadata.command_id, if a string, names its command).  Return
 * 0, or BCTX_BRIDGE_UNPLACED or BCTX_BRIDGE_MALFORMED with the reason in
 * why; out is filled as far as it could be read.
 */
int bctx_bridge_event_read (json_t *ev, bctx_bridge_event_t *out, char *why, size_t whylen);

/* Parses one frame of the peer's bus (an event as JSON text, size bytes).
 * Return: new JSON object with an integer "position", to be read with
 * bctx_bridge_event_read, or NULL with the reason in why. */
json_t *bctx_bridge_live_parse (const void *frame, size_t size, char *why, size_t whylen);

#endif
