/*
 * relay - the supervisor's side of each context process's link: requests
 * passed on as they came ([tag][""][request] on the link's DEALER, the
 * tag back with the reply names who waits), the answers passed back, and
 * the requests of the modules above it (gather.h, reload.h) passed on
 * with a callback for the reply.  A command in flight when its context
 * process ends is answered "unavailable": it was never acknowledged.
 *
 * It also asks a starting process for its stats until it answers (then
 * it is up), and learns from them which projections and reactors it
 * runs: queries then read those read models from their files here, and
 * replay and retry go to the process that runs them.  During a handover
 * it holds the context's commands (reload.h), in a bctx_hold_t (hold.h).
 */
#ifndef BCTX_RELAY_H
#define BCTX_RELAY_H

#include <stdint.h>

#include "api.h"
#include "figures.h"
#include "loop.h"
#include "registry.h"
#include "supervise.h"

typedef struct bctx_relay bctx_relay_t;

/* The relay of supervisor's children (all borrowed).  Return: new. */
bctx_relay_t *bctx_relay_new (bctx_registry_t *registry, bctx_api_t *api,
                              bctx_supervise_t *supervise);

/* Registers the links' readers (again after SIGHUP added some) and the
 * tick in loop. */
void bctx_relay_attach (bctx_relay_t *self, bctx_loop_t *loop);

/* Passes a client's request (borrowed; not a command) to child, its reply
 * back to the client as it comes, or "unavailable" after timeout seconds.
 * Return NULL, or an error reply (new) when child is not up. */
char *bctx_relay_forward (bctx_relay_t *self, bctx_child_t *child, bctx_request_t *req,
                          double timeout);

/* Learns from a process's stats (borrowed) what it runs: its projections
 * (the views queries read here), its reactors, what each consumes. */
void bctx_relay_learn (bctx_relay_t *self, bctx_child_t *child, const json_t *stats);

/* Passes a "send" for context `name`, checked already, to its process.
 * Return NULL (its reply comes later), or an error reply (new) with
 * req->code set. */
char *bctx_relay_send (bctx_relay_t *self, bctx_request_t *req, const char *name);

/* Probes starting processes, answers what is past its deadline.
 * Return the seconds until it wants to run again, or -1.
 * self is a bctx_relay_t (borrowed): this is its timer, a bctx_tick_fn. */
double bctx_relay_tick (void *self);

/* Reads every link once (start and drain, outside the loop). */
void bctx_relay_read_all (bctx_relay_t *self);

/* Outside the loop (start and drain): waits up to ms for any child's
 * link or command link, then reads them all. */
void bctx_relay_wait (bctx_relay_t *self, int ms);

/* Are all children up (start)? */
int bctx_relay_all_up (bctx_relay_t *self);

/* Commands passed to context processes and not answered yet. */
int64_t bctx_relay_in_flight (const bctx_relay_t *self);

/* Each context's command latency (from bctx_relay_send's admission, or
 * its hold, to the reply that goes out) and reloads.  Return: borrowed,
 * the relay's. */
bctx_figures_t *bctx_relay_figures (bctx_relay_t *self);

/* Answers "unavailable" to everything still waiting (at the end). */
void bctx_relay_abandon (bctx_relay_t *self);

/* What a handover (reload.h) hears of a child: fn (arg, child, reply),
 * reply NULL when it ended or did not answer in time. */
typedef void (bctx_relay_fn) (void *arg, bctx_child_t *child, const char *reply);

/* Who hears of a standby that came up (reply: its stats) and of any child
 * that ended (reply NULL) (fn, arg borrowed). */
void bctx_relay_on_child (bctx_relay_t *self, bctx_relay_fn *fn, void *arg);

/* Holds the commands for context `name` at the relay: none goes to its
 * process and none is refused, until bctx_relay_unhold. */
void bctx_relay_hold (bctx_relay_t *self, const char *name);

/* Passes the held commands of context `name` on to the process that
 * serves it now, in the order they came. */
void bctx_relay_unhold (bctx_relay_t *self, const char *name);

/* The oldest command in flight at child ("Deposit (id X)", borrowed), or
 * NULL. */
const char *bctx_relay_oldest (const bctx_relay_t *self, const bctx_child_t *child);

/* fn (arg, child, NULL) once child has no command in flight and nothing
 * unwritten on its command link: at once if it has none (one wait per
 * child; a child's end counts as idle). */
void bctx_relay_when_idle (bctx_relay_t *self, bctx_child_t *child, bctx_relay_fn *fn,
                           void *arg);

/* Sends request text (len bytes, borrowed) to child; fn (arg, child,
 * reply) when it answers, with reply NULL after timeout seconds or at its
 * end.  Return 0, or -1 when it cannot be sent. */
int bctx_relay_ask (bctx_relay_t *self, bctx_child_t *child, const char *text, size_t len,
                    double timeout, bctx_relay_fn *fn, void *arg);

/* A handover switched to child: queries read what it runs, and its
 * command link is connected. */
void bctx_relay_promoted (bctx_relay_t *self, bctx_child_t *child);

/* Frees; sets *self_p to NULL.  Idempotent. */
void bctx_relay_destroy (bctx_relay_t **self_p);

#endif
