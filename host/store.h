/*
 * store - the event store: one SQLite file (WAL mode) per context.
 *
 * It owns the context's log (events with gap-free positions and per-
 * aggregate versions, append-only, each carrying the id of the command that
 * decided it), and the replies of commands that decided no event (a
 * rejection), remembered by command id.  Only this module knows SQLite.  The
 * interface is kept narrow so another backend can stand beside it.
 *
 * A writer groups many appends in one transaction (bctx_store_begin …
 * bctx_store_commit): the commit is one fsync (synchronous=FULL), and
 * nothing appended is durable before the commit returns 0.
 */
#ifndef BCTX_STORE_H
#define BCTX_STORE_H

#include <stddef.h>
#include <stdint.h>

typedef struct bctx_store bctx_store_t;

/* Return codes besides 0. */
#define BCTX_STORE_ERROR     -1  /* I/O or SQLite failure; see the message */
#define BCTX_STORE_CONFLICT  -2  /* expected version is not the current one */

/* Open flags. */
#define BCTX_STORE_READONLY  1   /* a reader beside the writer (WAL allows it) */

/* One event as stored.  Strings are borrowed from the caller (append) or
 * from the store until the callback returns (read). */
typedef struct bctx_event {
    int64_t position;          /* place in the context's log, from 1 */
    const char *aggregate;     /* the aggregate's id */
    int64_t version;           /* place in the aggregate's stream, from 1 */
    const char *type;          /* e.g. "Deposited" */
    const char *data;          /* JSON text */
    const char *metadata;      /* JSON text: command id, correlation, causation, time */
    const char *command;       /* id of the command that decided it, or NULL */
} bctx_event_t;

/* Called once per event read, in position (or version) order.  Return 0 to
 * go on, non-zero to stop. */
typedef int (*bctx_event_fn) (const bctx_event_t *event, void *arg);

/* Opens (creating if needed, unless READONLY) the store file at `path`.
 * Return: new store, or NULL with a message in err. */
bctx_store_t *bctx_store_open (const char *path, int flags, char *err,
                               size_t errlen);

/* Closes the store and sets *self_p to NULL.  An open transaction is
 * rolled back.  Idempotent. */
void bctx_store_destroy (bctx_store_t **self_p);

/* The last position in the log (0 when empty), as of the last commit or
 * append by this connection. */
int64_t bctx_store_position (bctx_store_t *self);

/* Starts a write transaction.  Return 0 or BCTX_STORE_ERROR. */
int bctx_store_begin (bctx_store_t *self);

/* Makes everything since begin durable (one fsync).  Return 0, or
 * BCTX_STORE_ERROR after rolling back. */
int bctx_store_commit (bctx_store_t *self);

/* Drops everything since begin. */
void bctx_store_rollback (bctx_store_t *self);

/*
 * Appends `n` events to one aggregate's stream, inside a transaction.
 * Each events[i].aggregate must equal `aggregate`; type, data and metadata
 * are read.  The store fills position and version.  `expected` is the
 * aggregate's current version (0 for a new aggregate): when it differs,
 * nothing is appended and BCTX_STORE_CONFLICT is returned.
 */
int bctx_store_append (bctx_store_t *self, const char *aggregate,
                       int64_t expected, bctx_event_t *events, size_t n);

/* The aggregate's current version (0 when it has no events), or -1. */
int64_t bctx_store_version (bctx_store_t *self, const char *aggregate);

/* Remembers the reply given to command `id` (JSON text), inside a
 * transaction.  Commands that appended events need not be remembered here:
 * their id is on their events.  Return 0, BCTX_STORE_CONFLICT when the id is known, or
 * BCTX_STORE_ERROR. */
int bctx_store_remember (bctx_store_t *self, const char *id,
                         const char *reply);

/* The reply first given to command `id`.  Return: new string (free it), or
 * NULL when the id is unknown. */
char *bctx_store_recall (bctx_store_t *self, const char *id);

/* Reads up to `limit` events from position `from` on, in position order;
 * only `aggregate`'s when it is not NULL.  Return the number read, or
 * BCTX_STORE_ERROR. */
int64_t bctx_store_read (bctx_store_t *self, int64_t from,
                         const char *aggregate, int64_t limit,
                         bctx_event_fn fn, void *arg);

/* Reads one aggregate's events in version order, all of them. */
int64_t bctx_store_read_aggregate (bctx_store_t *self, const char *aggregate,
                                   bctx_event_fn fn, void *arg);

/* The last SQLite error message of this store.  Return: borrowed. */
const char *bctx_store_error (bctx_store_t *self);

#endif
