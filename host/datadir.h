/*
 * datadir - the host's hold on host.data: one host per data directory, a
 * high-water mark per local context, and the checks made at start before
 * anything is served.
 *
 * Files it owns under host.data:
 *   LOCK            flock'ed (LOCK_EX) for the host's life; holds its pid
 *   <context>.hwm   the last position of the context known committed, as
 *                   decimal text and a newline; replaced whole (temp file
 *                   + rename), never fsynced: a stale mark is a lower bound
 *
 * At start, for each local context, the log's end (<context>.db) is
 * compared with every position seen elsewhere on this host: its
 * high-water mark and the checkpoints for it in every projection-*.db and
 * reactor-*.db.  A log that ends before one of them has lost events: the
 * host refuses to start unless told to accept it (--accept-truncated-log).
 * Every log and read-side file is also run through SQLite's quick_check.
 */
#ifndef BCTX_DATADIR_H
#define BCTX_DATADIR_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"

#define BCTX_DATADIR_CHECK_MS  3000   /* longest quick_check of one file */

typedef struct bctx_datadir bctx_datadir_t;

/* Takes host.data (path, borrowed; the directory must exist) for this
 * process: creates its LOCK file when missing, locks it without waiting
 * and writes the pid into it.  Nothing else is written.  Return: new, or
 * NULL with "host.data PATH is in use by bctx-host pid N" (or why the
 * lock could not be taken) in err. */
bctx_datadir_t *bctx_datadir_open (const char *path, char *err, size_t errlen);

/* The hold of a context process on host.data (path, borrowed), which its
 * supervisor took and checked: the context's writer lock
 * run/<context>.lock, flock'ed, waiting up to wait_ms for a process of
 * the same context that is still ending; marks may be written at once.
 * Return: new, or NULL with the reason in err. */
bctx_datadir_t *bctx_datadir_attach (const char *path, const char *context, int wait_ms,
                                     char *err, size_t errlen);

/*
 * Checks every local context of config (borrowed) before it is served:
 * the integrity of its log and of every read-side file, and that no log
 * ends before a position seen elsewhere on this host.  accept (borrowed,
 * NULL-terminated, or NULL) names the contexts whose loss is accepted:
 * for those the loss is logged, the projections and reactors ahead are
 * named, and the high-water mark is reset to the log's end.
 * Nothing is written when it refuses.
 * Return 0, or -1 with the file, what is wrong and what to do in err.
 */
int bctx_datadir_guard (bctx_datadir_t *self, const bctx_config_t *config,
                        const char *const *accept, char *err, size_t errlen);

/* Raises context's high-water mark (context: borrowed) to position, the
 * last position its worker committed, writing the file when it grew.  A
 * failed write is logged once and tried again at the next call.  Does
 * nothing before bctx_datadir_guard succeeded. */
void bctx_datadir_mark (bctx_datadir_t *self, const char *context,
                        int64_t position);

/* Releases the lock (after every store is closed) and frees; sets
 * *self_p to NULL.  Idempotent. */
void bctx_datadir_destroy (bctx_datadir_t **self_p);

#endif
