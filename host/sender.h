/*
 * sender - a reactor's commands on their way to the contexts it may send
 * to: one socket per target, made lazily by the reactor's thread (a PUSH
 * to a local worker's queue, a REQ to a peer's API or to this host's
 * supervisor for a sibling), the request sent, its reply waited for, and
 * what the reply means to the reactor.  The reactor builds the request
 * (ids, correlation); this module knows how it travels.
 */
#ifndef BCTX_SENDER_H
#define BCTX_SENDER_H

#include <stddef.h>
#include <jansson.h>

#include "bctx/plugin.h"
#include "feed.h"
#include "runner.h"
#include "security.h"

typedef struct bctx_sender bctx_sender_t;

/* How a send ended besides its outcome. */
typedef struct bctx_sent {
    int unreachable;              /* the target's peer did not answer, or its
                                     context restarts: not the event's fault */
    int interrupted;              /* a command on the runner's pipe (or the end of
                                     the ZeroMQ context) cut the wait short: read
                                     the pipe */
} bctx_sent_t;

/* The sender to the n `targets` (borrowed; what it needs is copied), with
 * sockets in zctx and CURVE clients of security for a peer (both borrowed,
 * outliving the sender).  Return: new. */
bctx_sender_t *bctx_sender_new (void *zctx, const bctx_security_t *security,
                                const bctx_source_t *targets, size_t n);

/* Is `context` one of its targets, and can its socket be made?  From the
 * runner's thread only (it makes the socket). */
int bctx_sender_knows (bctx_sender_t *self, const char *context);

/*
 * Sends request (stolen, even on failure; an "op":"send" object, NULL when
 * it could not be built) to context and waits for
 * its reply: a local worker's for ever (the worker always answers), a
 * peer's or the supervisor's for the target's timeout, waking early for a
 * command on runner's pipe.  From the runner's thread only.  Return
 * BCTX_OK, BCTX_REJECT (the command was rejected: why says why) or
 * BCTX_ERROR (anything else: why says what, sent says whether it was the
 * event's fault).
 */
int bctx_sender_send (bctx_sender_t *self, bctx_runner_t *runner, const char *context,
                      json_t *request, bctx_sent_t *sent, bctx_reason_t *why);

/* Closes the sockets the runner's thread made; call from it before it
 * ends.  The next send makes them again. */
void bctx_sender_close (bctx_sender_t *self);

/* Frees the sender (after bctx_sender_close).  Idempotent. */
void bctx_sender_destroy (bctx_sender_t **self_p);

#endif
