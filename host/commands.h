/*
 * commands - the path of a command through the API thread: the checks a
 * "send" passes before it is admitted, its routing to the worker of a
 * local context or to the peer that owns a remote one, and the replies
 * the workers hand back, sent on to their clients.  Reload jobs come back
 * on the same socket and are passed to whoever registered for them.
 */
#ifndef BCTX_COMMANDS_H
#define BCTX_COMMANDS_H

#include <stdint.h>

#include "api.h"
#include "loop.h"
#include "peers.h"
#include "registry.h"
#include "relay.h"
#include "worker.h"

/* Where workers hand jobs back. */
#define BCTX_COMMANDS_REPLIES "inproc://bctx-replies"

typedef struct bctx_commands bctx_commands_t;

/* Binds the replies PULL in the registry's ZeroMQ context and registers
 * the "send" handler in api (registry, api borrowed).  Return: new, or
 * NULL with the reason in err. */
bctx_commands_t *bctx_commands_new (bctx_registry_t *registry, bctx_api_t *api,
                                    char *err, size_t errlen);

/* Sets where remote contexts' commands go (borrowed). */
void bctx_commands_route (bctx_commands_t *self, bctx_peers_t *peers);

/* In the supervisor: local contexts' commands go to their context
 * processes through relay (borrowed). */
void bctx_commands_relay (bctx_commands_t *self, bctx_relay_t *relay);

/* Registers the replies reader in loop. */
void bctx_commands_attach (bctx_commands_t *self, bctx_loop_t *loop);

/* Commands handed to workers and not answered yet. */
int64_t bctx_commands_in_flight (const bctx_commands_t *self);

/* Waits until every command handed to a worker is answered (after the
 * workers were asked to stop). */
void bctx_commands_drain (bctx_commands_t *self);

/* Frees every job handed back and not taken yet (at the end, when nobody
 * answers any more). */
void bctx_commands_discard (bctx_commands_t *self);

/* Closes the replies socket (after discarding what is in it) and frees;
 * sets *self_p to NULL.  Idempotent. */
void bctx_commands_destroy (bctx_commands_t **self_p);

#endif
