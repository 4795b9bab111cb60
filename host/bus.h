/*
 * bus - the host's internal event bus: an XSUB/XPUB proxy on its own
 * thread.  Each context worker publishes its committed events into it;
 * projections, reactors, bridges (and, through host.publish, processes
 * outside) subscribe to it.
 *
 * A message is two frames: the topic "<context>.<EventType>" and the event
 * as JSON text carrying its position.  PUB/SUB is only a wake-up: a
 * consumer that sees a gap in positions reads the store.
 */
#ifndef BCTX_BUS_H
#define BCTX_BUS_H

#include <stddef.h>

/* Where publishers connect (a PUB socket) and subscribers connect (SUB). */
#define BCTX_BUS_IN   "inproc://bctx-bus-in"
#define BCTX_BUS_OUT  "inproc://bctx-bus"

typedef struct bctx_bus bctx_bus_t;
struct bctx_security;

/* Binds the bus in ZeroMQ context `zctx` (borrowed), also on `ipc_in`
 * and `ipc_out` when not NULL (where the context processes' relays
 * connect), and on the tcp endpoint `publish` when not NULL (a CURVE
 * server when `security` has keys), then starts the proxy thread.
 * Return: new bus, or NULL with a message in err. */
bctx_bus_t *bctx_bus_new (void *zctx, const char *publish, const char *ipc_in,
                          const char *ipc_out, const struct bctx_security *security,
                          char *err, size_t errlen);

/* The bus of a context process: two proxy threads relaying its own
 * inproc bus to the supervisor's, the process's events up to `up` (the
 * supervisor's ipc_in) and every subscribed event down from `down` (its
 * ipc_out), so the threads of the process publish and subscribe on
 * BCTX_BUS_IN and BCTX_BUS_OUT as in one process.  Return: new, or NULL
 * with a message in err. */
bctx_bus_t *bctx_bus_relay_new (void *zctx, const char *up, const char *down,
                                char *err, size_t errlen);

/* Opens a publisher socket connected to the bus: this process's
 * (BCTX_BUS_IN) when endpoint is NULL, else endpoint (a context process's
 * worker publishes straight on its supervisor's bus, no relay between).
 * Return: new socket, to be used by one thread and closed with
 * zmq_close. */
void *bctx_bus_publisher (void *zctx, const char *endpoint);

/* Publishes one event: topic and JSON text (both borrowed).  Return 0 or -1. */
int bctx_bus_publish (void *publisher, const char *topic, const char *json,
                      size_t len);

/* Joins the proxy thread.  Call after zmq_ctx_shutdown on its context. */
void bctx_bus_destroy (bctx_bus_t **self_p);

#endif
