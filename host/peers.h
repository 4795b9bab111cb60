/*
 * peers - commands forwarded to the peer hosts that own remote contexts:
 * one DEALER per peer, the commands waiting at each with their deadlines,
 * and the peers' replies passed back to the clients that wait for them.
 */
#ifndef BCTX_PEERS_H
#define BCTX_PEERS_H

#include <stddef.h>
#include <jansson.h>

#include "api.h"
#include "loop.h"
#include "registry.h"
#include "security.h"

typedef struct bctx_peers bctx_peers_t;

/* Connects a DEALER to every peer of registry->config (registry, api,
 * security borrowed: the config is read through the registry, replies go
 * out through the api).  Return: new, or NULL with the reason in err. */
bctx_peers_t *bctx_peers_new (bctx_registry_t *registry, bctx_api_t *api,
                              bctx_security_t *security, char *err, size_t errlen);

/* Registers each peer's DEALER and the deadline tick in loop. */
void bctx_peers_attach (bctx_peers_t *self, bctx_loop_t *loop);

/* Forwards a command (req, borrowed) to peer `peer` for the client at
 * envelope (borrowed, copied).  Return NULL when sent (the peer's reply
 * comes back later), or an error reply (new) with its code in *code. */
char *bctx_peers_forward (bctx_peers_t *self, size_t peer, json_t *req,
                          const unsigned char *envelope, size_t envelope_len,
                          int delimiter, const char **code);

/* Answers "unavailable" to the forwarded commands past their deadline.
 * Return the seconds until the next deadline, or -1.
 * self is a bctx_peers_t (borrowed): this is its timer, a bctx_tick_fn. */
double bctx_peers_tick (void *self);

/* Waits for the commands still at peers: their answers until their
 * deadlines, then "unavailable", so no client is left without a reply. */
void bctx_peers_drain (bctx_peers_t *self);

/* What `bctx stats` shows of the peers: {name: {api, publish, forwarded,
 * unanswered}}.  Return: new. */
json_t *bctx_peers_stats (const bctx_peers_t *self);

/* Closes the DEALERs and frees; sets *self_p to NULL.  Idempotent. */
void bctx_peers_destroy (bctx_peers_t **self_p);

#endif
