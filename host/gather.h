/*
 * gather - the supervisor's ops that span its context processes: `stats`
 * and `contexts`, each asked of every process that serves and merged with
 * what only the supervisor knows (its API's counters, its peers, each
 * process's pid, memory, restarts and handovers); `replay` and `retry`,
 * passed to the process that runs the projection or reactor they name.
 */
#ifndef BCTX_GATHER_H
#define BCTX_GATHER_H

#include "api.h"
#include "peers.h"
#include "registry.h"
#include "relay.h"
#include "supervise.h"

typedef struct bctx_gather bctx_gather_t;

/* Registers the stats, contexts, replay and retry handlers in api (every
 * argument borrowed).  Return: new. */
bctx_gather_t *bctx_gather_new (bctx_registry_t *registry, bctx_api_t *api,
                                bctx_supervise_t *supervise, bctx_relay_t *relay,
                                bctx_peers_t *peers);

/* Frees what is still being gathered (after the relay gave up on its
 * requests); sets *self_p to NULL.  Idempotent. */
void bctx_gather_destroy (bctx_gather_t **self_p);

#endif
