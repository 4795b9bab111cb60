/*
 * bus - XSUB/XPUB proxy thread behind the internal event bus.
 */
#include "bus.h"
#include "log.h"
#include "security.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#define S_HWM 100000    /* events held for a slow subscriber before drops: it
                           then reads the store (or its peer) for the rest */

struct bctx_bus {
    void *xsub;          /* where publishers connect */
    void *xpub;          /* where subscribers connect */
    pthread_t thread;    /* runs zmq_proxy */
    int started;         /* thread was created */
};

static void *
s_run (void *arg)
{
    bctx_bus_t *self = arg;
    zmq_proxy (self->xsub, self->xpub, NULL);   /* returns on ETERM */
    int linger = 0;
    zmq_setsockopt (self->xsub, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt (self->xpub, ZMQ_LINGER, &linger, sizeof linger);
    zmq_close (self->xsub);
    zmq_close (self->xpub);
    return NULL;
}

bctx_bus_t *
bctx_bus_new (void *zctx, const char *publish, const struct bctx_security *security,
              char *err, size_t errlen)
{
    bctx_bus_t *self = calloc (1, sizeof *self);
    int hwm = S_HWM;
    self->xsub = zmq_socket (zctx, ZMQ_XSUB);
    self->xpub = zmq_socket (zctx, ZMQ_XPUB);
    zmq_setsockopt (self->xsub, ZMQ_RCVHWM, &hwm, sizeof hwm);
    zmq_setsockopt (self->xpub, ZMQ_SNDHWM, &hwm, sizeof hwm);
    if (zmq_bind (self->xsub, BCTX_BUS_IN) != 0
        || zmq_bind (self->xpub, BCTX_BUS_OUT) != 0) {
        snprintf (err, errlen, "bus: cannot bind: %s", zmq_strerror (zmq_errno ()));
        goto fail;
    }
    bctx_security_server (security, self->xpub);
    if (publish && zmq_bind (self->xpub, publish) != 0) {
        snprintf (err, errlen, "host.publish: %s: %s", publish,
                  zmq_strerror (zmq_errno ()));
        goto fail;
    }
    if (pthread_create (&self->thread, NULL, s_run, self) != 0) {
        snprintf (err, errlen, "bus: cannot start its thread");
        goto fail;
    }
    self->started = 1;
    return self;
fail:
    zmq_close (self->xsub);
    zmq_close (self->xpub);
    free (self);
    return NULL;
}

void *
bctx_bus_publisher (void *zctx)
{
    void *pub = zmq_socket (zctx, ZMQ_PUB);
    int hwm = S_HWM;
    zmq_setsockopt (pub, ZMQ_SNDHWM, &hwm, sizeof hwm);
    if (zmq_connect (pub, BCTX_BUS_IN) != 0) {
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
    if (!self_p || !*self_p)
        return;
    bctx_bus_t *self = *self_p;
    if (self->started)
        pthread_join (self->thread, NULL);
    free (self);
    *self_p = NULL;
}
