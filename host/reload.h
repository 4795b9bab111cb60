/*
 * reload - the hot swap of a context's version, as a handover between two
 * context processes, run by the supervisor:
 *
 *   1. a standby process starts with the new version (supervise.h): it
 *      loads the plugin, runs its init, opens the log and the read side,
 *      read-only as far as the context goes, and answers;
 *   2. the context's commands are held at the relay from then on (none is
 *      refused); once the old process has answered every command in
 *      flight, it is told "release": its runners end at a checkpoint, its
 *      worker stops, its writer lock is dropped;
 *   3. the standby is told "take": it takes the lock, reads the log's head
 *      and starts; the relay routes to it, the held commands go to it, and
 *      the old process is ended.
 *
 * A new version that cannot load, fails its init, crashes or hangs before
 * step 2 never served: the old one kept serving all along, and the reply
 * says what went wrong.  One that ends unasked in its first seconds is
 * replaced by the old version again (supervise.h).  A reload whose old
 * version does not finish its commands in flight within
 * host.reload_timeout_ms is given up ("unavailable"), and the held
 * commands go to the old version.
 *
 * Every step is a request on a link, so the standby could as well run on a
 * peer host: that is how a context will move.
 */
#ifndef BCTX_RELOAD_H
#define BCTX_RELOAD_H

#include <stddef.h>

#include "api.h"
#include "config.h"
#include "loader.h"
#include "loop.h"
#include "registry.h"
#include "relay.h"
#include "supervise.h"

typedef struct bctx_reload bctx_reload_t;

/* The handovers of supervise's children (all borrowed), through relay;
 * registers the "reload" handler in api.  Return: new. */
bctx_reload_t *bctx_reload_new (bctx_registry_t *registry, bctx_api_t *api,
                                bctx_supervise_t *supervise, bctx_relay_t *relay);

/* Registers the deadline tick in loop. */
void bctx_reload_attach (bctx_reload_t *self, bctx_loop_t *loop);

/* Starts a reload of context ctx (its index in the registry's config)
 * from path (borrowed; NULL: contexts[].plugin), for the client at
 * envelope (borrowed, copied; envelope_len 0: nobody to answer, a watch
 * or SIGHUP).  Return NULL when the outcome will be answered later, or an
 * error reply (new, already logged) with its code in *code (code may be
 * NULL). */
char *bctx_reload_start (bctx_reload_t *self, size_t ctx, const char *path,
                         const unsigned char *envelope, size_t envelope_len,
                         int delimiter, const char **code);

/* Gives up the reloads past their deadline.  Return the seconds until the
 * next deadline, or -1.
 * self is a bctx_reload_t (borrowed): this is its timer, a bctx_tick_fn. */
double bctx_reload_tick (void *self);

/* The host is stopping: every reload still on its way is given up. */
void bctx_reload_stop (bctx_reload_t *self);

/* The bounds of a plugin load under config (borrowed: its dirs stay the
 * config's), giving up at deadline (monotonic seconds; 0: never). */
bctx_plugin_bounds_t bctx_reload_bounds (const bctx_config_t *config, double deadline);

/* Frees; sets *self_p to NULL.  Idempotent. */
void bctx_reload_destroy (bctx_reload_t **self_p);

#endif
