/*
 * bus - XSUB/XPUB proxy thread behind the internal event bus.
 */
#include "bus.h"
#include "util.h"
#include "log.h"
#include "security.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#define S_HWM 100000    /* events held for a slow subscriber before drops: it
                           then reads the store (or its peer) for the rest */

/* One proxy: an XSUB and an XPUB, and the thread between them. */
typedef struct {
    void *xsub;          /* where publishers are */
    void *xpub;          /* where subscribers are */
    pthread_t thread;    /* runs zmq_proxy */
    int started;         /* thread was created */
} s_proxy_t;

struct bctx_bus {
    s_proxy_t proxies[2]; /* the bus, or a context process's two relays */
    int n;                /* how many */
};

static void *
s_run (void *arg)
{
    s_proxy_t *p = arg;
    zmq_proxy (p->xsub, p->xpub, NULL);   /* returns on ETERM */
    bctx_socket_close (&p->xsub);
    bctx_socket_close (&p->xpub);
    return NULL;
}

/* Opens proxy p's two sockets, with the bus's high-water marks. */
static void
s_open (void *zctx, s_proxy_t *p)
{
    int hwm = S_HWM;
    p->xsub = zmq_socket (zctx, ZMQ_XSUB);
    p->xpub = zmq_socket (zctx, ZMQ_XPUB);
    zmq_setsockopt (p->xsub, ZMQ_RCVHWM, &hwm, sizeof hwm);
    zmq_setsockopt (p->xpub, ZMQ_SNDHWM, &hwm, sizeof hwm);
}

/* Starts the threads of the bus's proxies, or closes their sockets on
 * failure.  Return the bus, or NULL with the reason. */
static bctx_bus_t *
s_start (bctx_bus_t *self, int ok, char *err, size_t errlen)
{
    for (int i = 0; ok && i < self->n; i++) {
        self->proxies[i].started = pthread_create (&self->proxies[i].thread, NULL, s_run,
                                                   &self->proxies[i]) == 0;
        if (!self->proxies[i].started) {
            snprintf (err, errlen, "bus: cannot start its thread");
            ok = 0;
        }
    }
    if (ok)
        return self;
    /* Nothing started stays: a started proxy ends at the context's end. */
    for (int i = 0; i < self->n; i++)
        if (!self->proxies[i].started) {
            zmq_close (self->proxies[i].xsub);
            zmq_close (self->proxies[i].xpub);
        }
    bctx_bus_destroy (&self);
    return NULL;
}

bctx_bus_t *
bctx_bus_new (void *zctx, const char *publish, const char *ipc_in, const char *ipc_out,
              const struct bctx_security *security, char *err, size_t errlen)
{
    bctx_bus_t *self = calloc (1, sizeof *self);
    s_proxy_t *p = &self->proxies[0];
    self->n = 1;
    s_open (zctx, p);
    int ok = zmq_bind (p->xsub, BCTX_BUS_IN) == 0 && zmq_bind (p->xpub, BCTX_BUS_OUT) == 0
             && (!ipc_in || zmq_bind (p->xsub, ipc_in) == 0)
             && (!ipc_out || zmq_bind (p->xpub, ipc_out) == 0);
    if (!ok)
        snprintf (err, errlen, "bus: cannot bind: %s", zmq_strerror (zmq_errno ()));
    bctx_security_server (security, p->xpub);
    if (ok && publish && zmq_bind (p->xpub, publish) != 0) {
        snprintf (err, errlen, "host.publish: %s: %s", publish,
                  zmq_strerror (zmq_errno ()));
        ok = 0;
    }
    return s_start (self, ok, err, errlen);
}

bctx_bus_t *
bctx_bus_relay_new (void *zctx, const char *up, const char *down, char *err, size_t errlen)
{
    bctx_bus_t *self = calloc (1, sizeof *self);
    self->n = 2;
    s_proxy_t *rise = &self->proxies[0], *fall = &self->proxies[1];
    s_open (zctx, rise);
    s_open (zctx, fall);
    int ok = zmq_bind (rise->xsub, BCTX_BUS_IN) == 0 && zmq_connect (rise->xpub, up) == 0
             && zmq_connect (fall->xsub, down) == 0 && zmq_bind (fall->xpub, BCTX_BUS_OUT) == 0;
    if (!ok)
        snprintf (err, errlen, "bus: cannot relay to the supervisor's bus (%s, %s): %s",
                  up, down, zmq_strerror (zmq_errno ()));
    return s_start (self, ok, err, errlen);
}

void *
bctx_bus_publisher (void *zctx, const char *endpoint)
{
    void *pub = zmq_socket (zctx, ZMQ_PUB);
    int hwm = S_HWM;
    zmq_setsockopt (pub, ZMQ_SNDHWM, &hwm, sizeof hwm);
    if (zmq_connect (pub, endpoint ? endpoint : BCTX_BUS_IN) != 0) {
        zmq_close (pub);
        return NULL;
    }
    return pub;
}

int
bctx_bus_publish (void *publisher, const char *topic, const char *json,
                  size_t len)
{
    if (zmq_send (publisher, topic, strlen (topic), ZMQ_SNDMORE) < 0
        || zmq_send (publisher, json, len, 0) < 0)
        return -1;
    return 0;
}

void
bctx_bus_destroy (bctx_bus_t **self_p)
{
    BCTX_SELF_OR_RETURN (bctx_bus_t, self_p);
    for (int i = 0; i < self->n; i++)
        if (self->proxies[i].started)
            pthread_join (self->proxies[i].thread, NULL);
    free (self);
    *self_p = NULL;
}
