/*
 * reconfig - SIGHUP: the config file read again and what changed applied
 * while the host serves.  Contexts added are loaded, contexts removed are
 * drained and unloaded, contexts whose plugin or settings changed are
 * reloaded.  Everything that can be checked is checked first; a config
 * that fails a check changes nothing.
 */
#ifndef BCTX_RECONFIG_H
#define BCTX_RECONFIG_H

#include "registry.h"
#include "reload.h"
#include "supervise.h"
#include "watch.h"

/* SIGHUP in the supervisor: the new config checked (its host section and
 * plugin folders, and that no runner of a context that stays reads a
 * context it removes, as supervise's processes last told) and put in the
 * registry with a handle per context.
 * The context processes then apply it themselves (SIGHUP to each, by
 * supervise).  Return 0, or -1 (logged: nothing changed). */
int bctx_reconfig_supervisor (bctx_registry_t *registry, bctx_supervise_t *supervise);

/* SIGHUP in a context process: re-reads registry->config's file (its
 * view of it) and applies it to registry, reload and watch (borrowed);
 * logs what was done or why nothing was. */
void bctx_reconfig_apply (bctx_registry_t *registry, bctx_reload_t *reload,
                          bctx_watch_t *watch);

#endif
