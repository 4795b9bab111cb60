/*
 * ops - the ops that read and steer the host without a command: events
 * (a context's log, by pages), query (a projection's read models),
 * contexts, stats, and the admin ops replay (rebuild a projection) and
 * retry (a reactor's parked events).  They answer on the API thread,
 * reading the stores beside their writers, which WAL allows.
 */
#ifndef BCTX_OPS_H
#define BCTX_OPS_H

#include "api.h"
#include "commands.h"
#include "peers.h"
#include "registry.h"

typedef struct bctx_ops bctx_ops_t;

/* The ops over what registry holds; stats also count api's requests,
 * commands in flight and the peers' forwards (all borrowed).  Registers
 * each op's handler in api.  Return: new. */
bctx_ops_t *bctx_ops_new (bctx_registry_t *registry, bctx_api_t *api,
                          bctx_commands_t *commands, bctx_peers_t *peers);

/* Frees; sets *self_p to NULL.  Idempotent. */
void bctx_ops_destroy (bctx_ops_t **self_p);

#endif
