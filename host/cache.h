/*
 * cache - a worker's aggregate cache: for each aggregate it has met, its
 * state, its version and the ids of the commands whose events are in its
 * stream, folded from that stream with the plugin's evolve.  A handover's
 * standby warms it from the log's recent events before it serves, and
 * folds what the old process appended at its take.  Only the worker
 * thread touches a cache (or the standby before that thread starts).
 */
#ifndef BCTX_CACHE_H
#define BCTX_CACHE_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#include "loader.h"
#include "store.h"

/* An entry of the cache, under the aggregate's id, is the JSON array
 * [version, state, ids], so that jansson's hash table finds it:
 *   version  the last version folded;
 *   state    what evolve returned (JSON null before the first event);
 *   ids      command id -> first position of every command whose events
 *            are in this aggregate's stream, so a retry is answered from
 *            the stream itself (per-stream idempotency). */
enum { BCTX_CACHE_VERSION, BCTX_CACHE_STATE, BCTX_CACHE_IDS };

/* The entry of `aggregate` in cache, folded with plugin from store when
 * absent.  Return: borrowed, or NULL with the reason in why. */
json_t *bctx_cache_entry (json_t *cache, const bctx_plugin_t *plugin, bctx_store_t *store,
                          const char *aggregate, char *why, size_t whylen);

/* Notes in entry that the command known by `key` decided the event at
 * `position` (only its first event is kept). */
void bctx_cache_note_command (json_t *entry, const char *key, int64_t position);

/* Fills cache with the aggregates of the log's most recent 10 000 events
 * (at most 4000), then folds what was appended meanwhile, a few rounds.
 * *at becomes the position the cache is folded to.  Return 0, or -1 with
 * the reason (an event plugin cannot fold) in err, the cache emptied. */
int bctx_cache_warm (json_t *cache, const bctx_plugin_t *plugin, bctx_store_t *store,
                     int64_t *at, char *err, size_t errlen);

/* Folds the events after *at into the entries they belong to (dropping
 * an entry it cannot bring exactly up to date).  Return the log's head,
 * now in *at, or -1. */
int64_t bctx_cache_catch_up (json_t *cache, const bctx_plugin_t *plugin, bctx_store_t *store,
                             int64_t *at);

#endif
