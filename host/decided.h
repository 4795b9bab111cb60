/*
 * decided - what a plugin's decide returned, before and as it is stored:
 * the check of its events (bctx_decided_check), then the rows they are
 * appended as (with the command's metadata) and the text each is
 * published as on the bus.
 */
#ifndef BCTX_DECIDED_H
#define BCTX_DECIDED_H

#include <stddef.h>
#include <jansson.h>

#include "store.h"

/* What bctx_decided_check found wrong with what a decide returned. */
enum {
    BCTX_DECIDED_MALFORMED = -1,  /* not an array of {"type", "data"} events */
    BCTX_DECIDED_TOO_LARGE = -2,  /* too many events, or an event's data too big */
};

/*
 * Checks what a plugin's decide put in `events` (borrowed), before anything
 * of it is folded or stored: a JSON array of at most max_events events
 * (host.max_events_per_command), each an object with a "type" of 1 to 128
 * letters, digits or '_' and a "data" object whose compact JSON text is at
 * most max_data bytes (host.max_message).  texts: NULL, or room for
 * json_array_size (events) pointers, which on success hold each event's
 * data as compact JSON text (new: the caller frees each); on failure they
 * are all NULL.  Return 0, or BCTX_DECIDED_MALFORMED or
 * BCTX_DECIDED_TOO_LARGE with why saying which event and what (naming the
 * limit's config key), e.g. "1001 events, over the limit of 1000
 * (host.max_events_per_command)".
 */
int bctx_decided_check (const json_t *events, size_t max_events, size_t max_data,
                        char **texts, char *why, size_t whylen);

/* Frees the first n of texts (NULL: nothing) and sets them to NULL. */
void bctx_decided_texts_free (char **texts, size_t n);

/* The metadata of a command's events: its id (borrowed), its request's
 * (borrowed) correlation and causation ids (its id when absent), the
 * time, the context's version (borrowed, may be NULL) and, for origin
 * BCTX_ORIGIN_REACTOR, the origin.  Return: new text. */
char *bctx_decided_metadata (json_t *req, const char *id, int origin, const char *version);

/* The n rows to append of the checked events (borrowed): each one's
 * type from events, its data from texts, the aggregate, metadata and the
 * command's stored key given (all borrowed by the rows).  Return: new
 * array (the caller frees it, not what it points to). */
bctx_row_t *bctx_decided_rows (const json_t *events, char **texts, size_t n,
                               const char *aggregate, const char *metadata,
                               const char *key);

/* The full event of context, appended as e (borrowed), as published on
 * the bus.  Return: new text. */
char *bctx_decided_event_text (const char *context, const bctx_row_t *e);

#endif
