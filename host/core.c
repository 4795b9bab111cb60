/*
 * core - the modules the supervisor and a context process both build
 * first and take down last (see core.h).
 */
#include "core.h"

#include <stdio.h>
#include <zmq.h>

int
bctx_core_open (bctx_core_t *core, bctx_config_t *config, char *err, size_t errlen)
{
    core->zctx = zmq_ctx_new ();
    core->registry = bctx_registry_new (core->zctx, config);
    core->api = bctx_api_new (config->max_message);
    core->commands = bctx_commands_new (core->registry, core->api, err, errlen);
    if (!core->commands)
        return -1;
    core->security = bctx_security_new (core->zctx, config, err, errlen);
    if (!core->security)
        return -1;
    core->registry->security = core->security;
    return 0;
}

int
bctx_core_check_ops (const bctx_core_t *core, char *err, size_t errlen)
{
    int op = bctx_api_unhandled (core->api);
    if (op < 0)
        return 0;
    snprintf (err, errlen, "op %d has no handler", op);
    return -1;
}

void
bctx_core_close (bctx_core_t *core, bctx_bus_t **bus)
{
    bctx_peers_destroy (&core->peers);
    bctx_api_destroy (&core->api);
    bctx_commands_destroy (&core->commands);
    bctx_ops_destroy (&core->ops);
    bctx_loop_destroy (&core->loop);
    if (core->registry)
        bctx_registry_end_bridges (core->registry);
    if (core->zctx)
        zmq_ctx_shutdown (core->zctx);
    if (bus)
        bctx_bus_destroy (bus);
    bctx_security_destroy (&core->security);
    if (core->zctx)
        zmq_ctx_term (core->zctx);
    core->zctx = NULL;
    bctx_registry_destroy (&core->registry);
}
