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
#include "watch.h"

/* Re-reads registry->config's file and applies it to registry, reload
 * and watch (borrowed); logs what was done or why nothing was. */
void bctx_reconfig_apply (bctx_registry_t *registry, bctx_reload_t *reload,
                          bctx_watch_t *watch);

#endif
