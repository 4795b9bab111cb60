/*
 * reload - the hot swap of a context's plugin, as a state machine on the
 * API thread: a reload waits while two versions are loaded, is prepared
 * (loaded, checked, warmed) on a preparer thread of its own, goes to the
 * context's worker, which switches between batches, and comes back; the
 * context's projections and reactors then follow the new version, or the
 * worker is sent the old version back.  A reload past host.reload_timeout_ms
 * is answered "unavailable" and the old version keeps serving.
 */
#ifndef BCTX_RELOAD_H
#define BCTX_RELOAD_H

#include <stddef.h>

#include "api.h"
#include "config.h"
#include "loader.h"
#include "loop.h"
#include "registry.h"
#include "worker.h"

typedef struct bctx_reload bctx_reload_t;

/* A reload module over registry and api (borrowed); registers the
 * "reload" handler in api.  Return: new. */
bctx_reload_t *bctx_reload_new (bctx_registry_t *registry, bctx_api_t *api);

/* Registers the deadline tick in loop. */
void bctx_reload_attach (bctx_reload_t *self, bctx_loop_t *loop);

/* Starts a reload of context ctx from path (borrowed), for the client at
 * envelope (borrowed, copied; envelope_len 0: nobody to answer, a watch
 * or SIGHUP).  Return NULL when the outcome will be answered later, or an
 * error reply (new, already logged) with its code in *code (code may be
 * NULL). */
char *bctx_reload_start (bctx_reload_t *self, size_t ctx, const char *path,
                         const unsigned char *envelope, size_t envelope_len,
                         int delimiter, const char **code);

/* Takes a reload job (stolen) back from a preparer or a worker; matches
 * bctx_reload_done_fn (arg: the reload module). */
void bctx_reload_done (void *arg, bctx_job_t *job);

/* Loads waiting reloads whose old version has drained; cancels the ones
 * past their deadline.  Return the seconds until the next deadline, or -1. */
double bctx_reload_tick (bctx_reload_t *self);

/* Is a reload or a rollback on its way? */
int bctx_reload_busy (const bctx_reload_t *self);

/* The host is stopping: no reload goes further. */
void bctx_reload_stop (bctx_reload_t *self);

/* Preparer threads still running. */
int bctx_reload_preparers (const bctx_reload_t *self);

/* Since when a preparer loads a version (borrowed), for the watchdog. */
const bctx_busy_t *bctx_reload_busy_mark (const bctx_reload_t *self);

/* The bounds of a plugin load under config (borrowed: its dirs stay the
 * config's), giving up at deadline (monotonic seconds; 0: never). */
bctx_plugin_bounds_t bctx_reload_bounds (const bctx_config_t *config, double deadline);

/* Cancels the reloads still at workers (they free the jobs) and forgets
 * every reload (at the end, before the workers stop). */
void bctx_reload_cancel (bctx_reload_t *self);

/* Cancels what is left and frees, once no preparer runs any more (they
 * count themselves down in it); sets *self_p to NULL.  Idempotent. */
void bctx_reload_destroy (bctx_reload_t **self_p);

#endif
