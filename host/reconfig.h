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
 * registry with a handle per context.  Then supervise starts the contexts
 * it adds and stops those it removes; a context whose plugin or settings
 * changed is handed over to a new process (reload); every other context
 * process applies the rest itself (SIGHUP to each); the watches follow.
 * Return 0, or -1 (logged: nothing changed). */
int bctx_reconfig_supervisor (bctx_registry_t *registry, bctx_supervise_t *supervise,
                              bctx_reload_t *reload, bctx_watch_t *watch);

/* SIGHUP in a context process: re-reads registry->config's file (its
 * view of it, with the version it runs) and applies it to the registry:
 * siblings and runners; logs what was done or why nothing was. */
void bctx_reconfig_apply (bctx_registry_t *registry);

#endif
