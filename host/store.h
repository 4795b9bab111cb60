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

#include "errors.h"

typedef struct bctx_store bctx_store_t;

/* Return codes besides 0 (errors.h): BCTX_ESTORE, an I/O or SQLite
 * failure (see the message); BCTX_ESTORECONFLICT, the expected version is
 * not the current one; BCTX_ESTOREDAMAGED and BCTX_ESTORECUTSHORT, what
 * bctx_store_check found. */

/* Open flags. */
#define BCTX_STORE_READONLY  1   /* a reader beside the writer (WAL allows it) */
#define BCTX_STORE_REPLICA   2   /* a copy of a peer's log: synchronous=NORMAL,
                                    since the peer can always send it again */

/* One event as stored.  Strings are borrowed from the caller (append) or
 * from the store until the callback returns (read). */
typedef struct bctx_row {
    int64_t position;          /* place in the context's log, from 1 */
    const char *aggregate;     /* the aggregate's id */
    int64_t version;           /* place in the aggregate's stream, from 1 */
    const char *type;          /* e.g. "Deposited" */
    const char *data;          /* JSON text */
    const char *metadata;      /* JSON text: command id, correlation, causation, time */
    const char *command;       /* id of the command that decided it, or NULL */
} bctx_row_t;

/* Called once per event read, in position (or version) order.  Return 0 to
 * go on, non-zero to stop. */
typedef int (*bctx_row_fn) (const bctx_row_t *event, void *arg);

/* Opens (creating if needed, unless READONLY) the store file at `path`.
 * Return: new store, or NULL with a message in err. */
bctx_store_t *bctx_store_open (const char *path, int flags, char *err,
                               size_t errlen);

/* Closes the store and sets *self_p to NULL.  An open transaction is
 * rolled back, and a writer folds the WAL into the file.  Idempotent. */
void bctx_store_destroy (bctx_store_t **self_p);

/* The writer of this log is another process's from now on (a handover):
 * this one's close leaves the WAL to it. */
void bctx_store_hand_off (bctx_store_t *self);

/* The last position in the log (0 when empty), as of the last commit or
 * append by this connection. */
int64_t bctx_store_position (bctx_store_t *self);

/* The last position committed in the log, read now (for a reader beside
 * the writer, whose bctx_store_position only knows its own appends).
 * Return it, or -1. */
int64_t bctx_store_head (bctx_store_t *self);

/* Starts a write transaction.  Return 0 or BCTX_ESTORE. */
int bctx_store_begin (bctx_store_t *self);

/* Makes everything since begin durable (one fsync).  Return 0, or
 * BCTX_ESTORE after rolling back. */
int bctx_store_commit (bctx_store_t *self);

/* Drops everything since begin. */
void bctx_store_rollback (bctx_store_t *self);

/*
 * Appends `n` events to one aggregate's stream, inside a transaction.
 * Each events[i].aggregate must equal `aggregate`; type, data and metadata
 * are read.  The store fills position and version.  `expected` is the
 * aggregate's current version (0 for a new aggregate): when it differs,
 * nothing is appended and BCTX_ESTORECONFLICT is returned.
 */
int bctx_store_append (bctx_store_t *self, const char *aggregate,
                       int64_t expected, bctx_row_t *events, size_t n);

/* The aggregate's current version (0 when it has no events), or -1. */
int64_t bctx_store_version (bctx_store_t *self, const char *aggregate);

/* Remembers the reply given to command `id` (JSON text), inside a
 * transaction.  Commands that appended events need not be remembered here:
 * their id is on their events.  Return 0, BCTX_ESTORECONFLICT when the id is known, or
 * BCTX_ESTORE. */
int bctx_store_remember (bctx_store_t *self, const char *id,
                         const char *reply);

/* The reply first given to command `id`.  Return: new string (free it), or
 * NULL when the id is unknown. */
char *bctx_store_recall (bctx_store_t *self, const char *id);

/* Reads up to `limit` events from position `from` on, in position order;
 * only `aggregate`'s when it is not NULL.  Return the number read, or
 * BCTX_ESTORE. */
int64_t bctx_store_read (bctx_store_t *self, int64_t from,
                         const char *aggregate, int64_t limit,
                         bctx_row_fn fn, void *arg);

/* Reads one aggregate's events in version order, all of them. */
int64_t bctx_store_read_aggregate (bctx_store_t *self, const char *aggregate,
                                   bctx_row_fn fn, void *arg);

/* The first error since the last begin (a full disk is "disk full writing
 * PATH"; a later rollback's complaint never hides it), else the last
 * SQLite error message of this store.  Return: borrowed. */
const char *bctx_store_error (bctx_store_t *self);

/*
 * Checks at start, on files no connection has open yet.  They open the
 * file read-only and leave it (and its -wal) as it was.
 */

/* Runs SQLite's quick_check on the file at path (a log or a read-side
 * file) for at most max_ms.  Return 0 when sound; BCTX_ESTORECUTSHORT
 * when the time ran out first; BCTX_ESTOREDAMAGED with "PATH: first
 * problem" in err when the file is damaged, BCTX_ESTORE when it cannot
 * be read. */
int bctx_store_check (const char *path, int max_ms, char *err, size_t errlen);

/* The last position in the log file at path (0 when it has no log yet),
 * in *position.  Return 0, or BCTX_ESTORE with err. */
int bctx_store_peek_position (const char *path, int64_t *position, char *err,
                              size_t errlen);



/*
 * The read side: one SQLite file per projection (its read models and its
 * checkpoints, written in one transaction so they never drift apart) or
 * per reactor (its checkpoints and parked events).
 *
 * Read models live in generations: queries read the live generation while
 * a rebuild fills the next one beside it; the switch is one transaction
 * that changes meta "live_gen".  Checkpoints are per generation and per
 * source context.
 */
typedef struct bctx_readside bctx_readside_t;

/* Called once per read model listed.  Return 0 to go on. */
typedef int (*bctx_model_fn) (const char *key, const char *value, void *arg);

/* Called once per parked event.  Return 0 to go on. */
typedef int (*bctx_parked_fn) (const char *source, int64_t position,
                               const char *aggregate, const char *reason,
                               void *arg);

/* Opens (creating unless READONLY) the read-side file at path.  Return:
 * new, or NULL with a message in err. */
bctx_readside_t *bctx_readside_open (const char *path, int flags, char *err,
                                     size_t errlen);
void bctx_readside_destroy (bctx_readside_t **self_p);

/* Transactions: every write below happens inside one.  Return 0 or -1. */
int bctx_readside_begin (bctx_readside_t *self);
int bctx_readside_commit (bctx_readside_t *self);
void bctx_readside_rollback (bctx_readside_t *self);

/* An integer setting ("live_gen", "live_version", "build_gen", …), or
 * `otherwise` when absent. */
int64_t bctx_readside_meta (bctx_readside_t *self, const char *key,
                            int64_t otherwise);
int bctx_readside_set_meta (bctx_readside_t *self, const char *key,
                            int64_t value);
int bctx_readside_delete_meta (bctx_readside_t *self, const char *key);

/* The read model under key in generation gen (JSON text).  Return: new,
 * or NULL when absent. */
char *bctx_readside_get (bctx_readside_t *self, int64_t gen, const char *key);

/* The read model under key in the live generation.  Return: new or NULL. */
char *bctx_readside_get_live (bctx_readside_t *self, const char *key);

/* Stores (replacing) or deletes a read model.  key, value: borrowed. */
int bctx_readside_put (bctx_readside_t *self, int64_t gen, const char *key,
                       const char *value);
int bctx_readside_delete (bctx_readside_t *self, int64_t gen, const char *key);

/* Lists up to limit read models of the live generation with key > after
 * (all when after is NULL), in key order.  Return the count, or -1. */
int64_t bctx_readside_list_live (bctx_readside_t *self, const char *after,
                                 int64_t limit, bctx_model_fn fn, void *arg);

/* Removes every read model and checkpoint of generation gen. */
int bctx_readside_drop (bctx_readside_t *self, int64_t gen);

/* The last position handled from source in generation gen (0 if none). */
int64_t bctx_readside_checkpoint (bctx_readside_t *self, int64_t gen,
                                  const char *source);
int bctx_readside_set_checkpoint (bctx_readside_t *self, int64_t gen,
                                  const char *source, int64_t position);

/* Parked events of a reactor: park, list in position order, unpark. */
int bctx_readside_park (bctx_readside_t *self, const char *source,
                        int64_t position, const char *aggregate,
                        const char *reason);
int64_t bctx_readside_parked (bctx_readside_t *self, bctx_parked_fn fn,
                              void *arg);
int bctx_readside_unpark (bctx_readside_t *self, const char *source,
                          int64_t position);

/* The last SQLite error message.  Return: borrowed. */
const char *bctx_readside_error (bctx_readside_t *self);

/* Called once per source context with its largest checkpoint over every
 * generation.  source: borrowed until the call returns.  Return 0 to go on. */
typedef int (*bctx_checkpoint_fn) (const char *source, int64_t position,
                                   void *arg);

/* Lists the checkpoints of the read-side file at path, read-only (as the
 * checks at start above).  Return 0, or BCTX_ESTORE with err. */
int bctx_readside_peek_checkpoints (const char *path, bctx_checkpoint_fn fn,
                                    void *arg, char *err, size_t errlen);
#endif
