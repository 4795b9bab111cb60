/*
 * runner - the actor shell: a thread, a PAIR pipe, named commands and the
 * "$TERM" handshake.
 */
#include "runner.h"
#include "log.h"
#include "util.h"

#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#define S_TERM "$TERM"            /* the owner's stop */
#define S_DONE "$DONE"            /* the thread's acknowledgement, as it ends */

struct bctx_runner {
    char *name;                   /* names it in messages */
    const char *const *commands;  /* the user's command names by code (borrowed) */
    size_t n_commands;            /* how many codes, 0 included */
    void *pipe;                   /* PAIR: the owner's end */
    void *thread_pipe;            /* PAIR: the thread's end */
    pthread_t thread;             /* runs s_main */
    int started;                  /* the thread was created and not joined yet */
    bctx_runner_fn fn;            /* the thread's body */
    void *arg;                    /* its argument */
    int terming;                  /* the thread saw "$TERM" (the thread's) */
};

/* Opens a PAIR socket in zctx that drops what it holds when closed. */
static void *
s_pair (void *zctx)
{
    void *s = zmq_socket (zctx, ZMQ_PAIR);
    int linger = 0;
    if (s)
        zmq_setsockopt (s, ZMQ_LINGER, &linger, sizeof linger);
    return s;
}

bctx_runner_t *
bctx_runner_new (void *zctx, const char *name, const char *const *commands,
                 size_t n_commands, char *err, size_t errlen)
{
    bctx_runner_t *self = bctx_calloc (1, sizeof *self);
    self->name = strdup (name);
    self->commands = commands;
    self->n_commands = n_commands;
    self->pipe = s_pair (zctx);
    self->thread_pipe = s_pair (zctx);
    /* The name is made unique by the socket's address: a closed inproc
     * endpoint is released asynchronously, so a runner made again at once
     * under the same name (a SIGHUP restarts every reactor) could find its
     * old name still taken. */
    char endpoint[256];
    snprintf (endpoint, sizeof endpoint, "inproc://bctx-%s-%p", name, self->pipe);
    if (!self->name || !self->pipe || !self->thread_pipe
        || zmq_bind (self->pipe, endpoint) != 0
        || zmq_connect (self->thread_pipe, endpoint) != 0) {
        snprintf (err, errlen, "%s: cannot open its control pipe: %s", name,
                  zmq_strerror (zmq_errno ()));
        bctx_runner_destroy (&self);
        return NULL;
    }
    return self;
}

/* The thread: the user's body, then the acknowledgement. */
static void *
s_main (void *arg)
{
    bctx_runner_t *self = arg;
    self->fn (self, self->arg);
    /* The owner waits for this before it joins (it fails only when the
     * ZeroMQ context is ending, and then the owner's wait fails too). */
    zmq_send (self->thread_pipe, S_DONE, strlen (S_DONE), 0);
    return NULL;
}

int
bctx_runner_start (bctx_runner_t *self, bctx_runner_fn fn, void *arg)
{
    assert (!self->started);
    self->fn = fn;
    self->arg = arg;
    if (pthread_create (&self->thread, NULL, s_main, self) != 0)
        return -1;
    self->started = 1;
    return 0;
}

int
bctx_runner_send (bctx_runner_t *self, int code)
{
    assert (code >= 1 && (size_t) code < self->n_commands && self->commands[code]);
    const char *name = self->commands[code];
    return zmq_send (self->pipe, name, strlen (name), ZMQ_DONTWAIT) < 0 ? -1 : 0;
}

void *
bctx_runner_pipe (bctx_runner_t *self)
{
    return self->thread_pipe;
}

int
bctx_runner_recv (bctx_runner_t *self)
{
    while (!self->terming) {
        char name[64];
        int n = zmq_recv (self->thread_pipe, name, sizeof name - 1, ZMQ_DONTWAIT);
        if (n < 0) {
            if (zmq_errno () == ETERM)
                self->terming = 1;
            else
                return BCTX_RUNNER_NONE;
            break;
        }
        name[n < (int) sizeof name - 1 ? n : (int) sizeof name - 1] = '\0';
        if (strcmp (name, S_TERM) == 0) {
            self->terming = 1;
            break;
        }
        for (size_t code = 1; code < self->n_commands; code++)
            if (self->commands[code] && strcmp (self->commands[code], name) == 0)
                return (int) code;
        bctx_log (BCTX_LOG_ERROR, "%s: ignores an unknown command \"%s\"", self->name, name);
    }
    return BCTX_RUNNER_TERM;
}

int
bctx_runner_wait (bctx_runner_t *self, void *other, long timeout_ms)
{
    if (!self) {
        /* Another thread of the runner's (a reactor's lane): other alone. */
        zmq_pollitem_t item = { other, 0, ZMQ_POLLIN, 0 };
        if (zmq_poll (&item, other ? 1 : 0, timeout_ms) < 0)
            return zmq_errno () == ETERM ? -1 : 0;
        return (item.revents & ZMQ_POLLIN) ? BCTX_RUNNER_READY : 0;
    }
    zmq_pollitem_t items[] = {
        { self->thread_pipe, 0, ZMQ_POLLIN, 0 },
        { other, 0, ZMQ_POLLIN, 0 },
    };
    if (zmq_poll (items, other ? 2 : 1, timeout_ms) < 0) {
        if (zmq_errno () != ETERM)
            return 0;
        self->terming = 1;
        return -1;
    }
    return ((items[0].revents & ZMQ_POLLIN) ? BCTX_RUNNER_COMMAND : 0)
           | (other && (items[1].revents & ZMQ_POLLIN) ? BCTX_RUNNER_READY : 0);
}

void
bctx_runner_stop (bctx_runner_t *self)
{
    if (!self || !self->started)
        return;
    /* Until "$DONE" comes back; "$TERM" is sent again while the pipe is
     * full (a busy thread reads its commands later; one that ended by
     * itself has acknowledged already). */
    int sent = 0;
    for (;;) {
        if (!sent)
            sent = zmq_send (self->pipe, S_TERM, strlen (S_TERM), ZMQ_DONTWAIT) >= 0
                   || zmq_errno () == ETERM;
        zmq_pollitem_t item = { self->pipe, 0, ZMQ_POLLIN, 0 };
        int rc = zmq_poll (&item, 1, sent ? -1 : 100);
        if (rc < 0 && zmq_errno () == ETERM)
            break;
        if (rc > 0) {
            char ack[16];
            zmq_recv (self->pipe, ack, sizeof ack, ZMQ_DONTWAIT);
            break;
        }
    }
    pthread_join (self->thread, NULL);
    self->started = 0;
}

void
bctx_runner_destroy (bctx_runner_t **self_p)
{
    BCTX_SELF_OR_RETURN (bctx_runner_t, self_p);
    bctx_runner_stop (self);
    if (self->pipe)
        zmq_close (self->pipe);
    if (self->thread_pipe)
        zmq_close (self->thread_pipe);
    free (self->name);
    free (self);
    *self_p = NULL;
}
