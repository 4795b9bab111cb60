/*
 * dedup - a command's id, remembered so that a retry is answered and
 * never decided twice: the key an id is stored under (one space of ids
 * per origin), a fresh id for a command sent without one, and the reply
 * of a command accepted already, rebuilt from its events in the stream.
 * (A rejection's reply is remembered as it was: bctx_store_remember.)
 */
#ifndef BCTX_DEDUP_H
#define BCTX_DEDUP_H

#include <stddef.h>
#include <stdint.h>

#include "store.h"

/* Longest stored command key: an id of at most 256 bytes and its
 * origin's mark. */
#define BCTX_DEDUP_KEY_MAX 320

/* Writes a fresh command id into out: 128 random bits in hex. */
void bctx_dedup_new_id (char out[33]);

/* The key a command's id (borrowed) is remembered under: the id itself
 * for a client's command (origin BCTX_ORIGIN_CLIENT); for a reactor's,
 * the id behind a record separator (0x1e), which the API refuses in a
 * client's id, written into buf.  So the two origins never share an id,
 * whatever a client chooses.  Return: id or buf. */
const char *bctx_dedup_key (int origin, const char *id, char *buf, size_t size);

/* The reply of an accepted command: its id and its n events (borrowed)
 * of aggregate.  Return: new text. */
char *bctx_dedup_accepted (const char *id, const char *aggregate, const bctx_row_t *events,
                           size_t n);

/* The first reply of a command whose events are in the stream of
 * aggregate, rebuilt from those events read from store (at most
 * max_events, the most one command can have emitted).  key: the
 * command's stored key (bctx_dedup_key); id: its id as the client knows
 * it; from: its first position.  Return: new text, or NULL when they
 * cannot be read. */
char *bctx_dedup_replay (bctx_store_t *store, const char *key, const char *id,
                         const char *aggregate, int64_t from, size_t max_events);

#endif
