/*
 * security - CURVE for the API, the bus and the bridges.  When the config
 * gives this host keys (host.curve), its API and bus sockets are CURVE
 * servers, and a ZAP handler (ZeroMQ's authentication protocol, RFC 27)
 * admits only the client keys the config names: host.clients and every
 * peer's public_key, and names each connection's role (client, admin or
 * peer) as its ZAP user id.  Sockets this host opens to a peer are CURVE clients
 * with this host's keys and the peer's public key.  Without keys nothing
 * changes (and config refuses non-loopback endpoints).
 */
#ifndef BCTX_SECURITY_H
#define BCTX_SECURITY_H

#include <stddef.h>

#include "config.h"

typedef struct bctx_security bctx_security_t;

/* Starts the ZAP handler in zctx when config has keys.  Return: new (also
 * when there are no keys: then it does nothing), or NULL with err. */
bctx_security_t *bctx_security_new (void *zctx, const bctx_config_t *config, char *err,
                                    size_t errlen);

/* Makes socket (not yet bound) a CURVE server, when there are keys. */
void bctx_security_server (const bctx_security_t *self, void *socket);

/* Makes socket (not yet connected) a CURVE client of a peer whose public
 * key is peer_key (NULL: no CURVE), when there are keys. */
void bctx_security_client (const bctx_security_t *self, void *socket, const char *peer_key);

/* The role of a message that came through a socket made a server by
 * bctx_security_server, from its "User-Id" property (borrowed, may be
 * NULL).  Without keys every client has the client role.  Return
 * BCTX_ROLE_*, or 0 (unknown: refuse). */
unsigned bctx_security_role (const bctx_security_t *self, const char *user_id);

/* Joins the ZAP handler; call after zmq_ctx_shutdown.  Idempotent. */
void bctx_security_destroy (bctx_security_t **self_p);

#endif
