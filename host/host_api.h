/*
 * host_api - the one place that fills a plugin's host-services table
 * (bctx_host_t): logging and the context's name here, the read models of
 * projections (projection) and the commands of reactors (reactor).  The
 * loader calls it for each plugin it loads, so the loader itself knows
 * nothing of projections or reactors.
 */
#ifndef BCTX_HOST_API_H
#define BCTX_HOST_API_H

#include "bctx/plugin.h"

struct bctx_plugin;

/* Fills every entry of *host for `plugin` (borrowed; it must outlive the
 * table, which it normally holds): size, priv (the plugin), log,
 * context_name, model_get/put/delete and send. */
void bctx_host_api_fill (bctx_host_t *host, struct bctx_plugin *plugin);

#endif
