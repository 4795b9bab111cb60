/*
 * feed - what a projection or reactor reads: the logs of the contexts it
 * consumes, filtered to the event types it declared ("<context>.<Type>" or
 * "<context>.*"), in position order for each source.  It also opens the bus
 * subscription that wakes its consumer.  The bus only ever wakes: the
 * events themselves always come from the store, from the consumer's
 * checkpoint on, so a lost or repeated bus message changes nothing.
 */
#ifndef BCTX_FEED_H
#define BCTX_FEED_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "bctx/plugin.h"
#include "store.h"

/* A context whose log can be fed from: its name, its store file, and the
 * live head of its log (the worker's last committed position). */
typedef struct bctx_source {
    const char *name;             /* the context's name */
    const char *store_path;       /* its SQLite file */
    _Atomic int64_t *head;        /* its last committed position, or NULL for a
                                     sibling (another context process writes its
                                     log): read from the file when asked */
    const char *endpoint;         /* its worker's queue (or its peer's API), for commands */
    int remote;                   /* it lives on a peer: store_path is its replica,
                                     or NULL when nothing here consumes it; or
                                     BCTX_SOURCE_SIBLING: another context process
                                     of this host, reached through the supervisor */
    const char *server_key;       /* the peer's CURVE key, or NULL */
    size_t timeout_ms;            /* a remote one: how long to wait for its peer */
    const char *bus;              /* where its wake-ups are subscribed: a context
                                     process's supervisor's bus, or NULL for this
                                     process's own (BCTX_BUS_OUT) */
} bctx_source_t;

/* bctx_source_t.remote of a sibling. */
#define BCTX_SOURCE_SIBLING 2

typedef struct bctx_feed bctx_feed_t;

/* Called for each matching event.  Return 0 to go on, non-zero to stop
 * (the event is then not counted as read). */
typedef int (*bctx_feed_fn) (const bctx_event_t *event, void *arg);

/*
 * Builds the feed of a consumer named `who` declaring `consumes` (borrowed,
 * NULL-terminated), resolving each context among the n `sources`.  Opens a
 * read-only store per source.  Return: new feed, or NULL with the reason
 * in err (an unknown context, a malformed entry).
 */
bctx_feed_t *bctx_feed_new (const char *who, const char *const *consumes,
                            const bctx_source_t *sources, size_t n,
                            char *err, size_t errlen);
void bctx_feed_destroy (bctx_feed_t **self_p);

/* How many source contexts, and the name of source i (borrowed). */
size_t bctx_feed_size (const bctx_feed_t *self);
const char *bctx_feed_name (const bctx_feed_t *self, size_t i);

/* The index of the source named name, or -1. */
int bctx_feed_index (const bctx_feed_t *self, const char *name);

/* The head of source i's log.  For a sibling it is read from its store,
 * on the feed's connection: only the consumer's own thread may ask. */
int64_t bctx_feed_head (const bctx_feed_t *self, size_t i);

/* The head of source i's log as last known, without reading a store:
 * for any thread (stats). */
int64_t bctx_feed_head_known (const bctx_feed_t *self, size_t i);

/* A consumer's place in each source for its stats: shown[i] (its
 * checkpoint in source i) by source name in *checkpoints, and how far it
 * is behind the source's head as last known in *lag.  Return: both new
 * objects. */
void bctx_feed_lag (const bctx_feed_t *self, const int64_t *shown, json_t **checkpoints,
                    json_t **lag);

/*
 * Reads source i from position `from` on, at most `limit` rows, calling fn
 * for each event whose type is consumed.  *last gets the last position
 * read (matching or not; unchanged when nothing was read).  Return the rows
 * read, or -1 on a store error or when fn stopped (with *last at the row
 * before the one that stopped).
 */
int64_t bctx_feed_read (bctx_feed_t *self, size_t i, int64_t from,
                        int64_t limit, bctx_feed_fn fn, void *arg,
                        int64_t *last);

/* A SUB socket on the internal bus (the sources' bus) subscribed to
 * every consumed topic.
 * Return: new socket (zmq_close it), or NULL. */
void *bctx_feed_subscribe (const bctx_feed_t *self, void *zctx);

/* Drains every waiting message of a SUB socket.  Return how many. */
int bctx_feed_drain (void *sub);

#endif
