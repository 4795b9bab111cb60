/*
 * sender - a reactor's commands to its targets: the sockets, the send,
 * the wait for the reply and what the reply means.
 */
#include "sender.h"
#include "protocol.h"
#include "util.h"
#include "worker.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

/* One context a reactor may send to. */
typedef struct s_target {
    char *name;                   /* the context's name */
    char *endpoint;               /* its worker's queue, or the API to send to */
    void *socket;                 /* PUSH to the queue, or REQ to the API (the
                                     runner thread's), made lazily; NULL */
    int remote;                   /* bctx_source_t.remote: 0 local, else a peer's
                                     or a sibling (BCTX_SOURCE_SIBLING) */
    char *key;                    /* its peer's CURVE key, or NULL */
    size_t timeout_ms;            /* how long to wait for its peer, 0: 5 s */
} s_target_t;

struct bctx_sender {
    void *zctx;                   /* ZeroMQ context (borrowed) */
    const bctx_security_t *security; /* CURVE for a remote target's REQ (borrowed) */
    s_target_t *targets;          /* the contexts it may send to */
    size_t n_targets;             /* how many */
};

bctx_sender_t *
bctx_sender_new (void *zctx, const bctx_security_t *security,
                 const bctx_source_t *targets, size_t n)
{
    bctx_sender_t *self = bctx_calloc (1, sizeof *self);
    self->zctx = zctx;
    self->security = security;
    self->targets = bctx_calloc (n ? n : 1, sizeof *self->targets);
    self->n_targets = n;
    for (size_t i = 0; i < n; i++) {
        s_target_t *t = &self->targets[i];
        t->name = strdup (targets[i].name);
        t->endpoint = strdup (targets[i].endpoint);
        t->remote = targets[i].remote;
        t->key = targets[i].server_key ? strdup (targets[i].server_key) : NULL;
        t->timeout_ms = targets[i].timeout_ms;
    }
    return self;
}

/* The target named context, with its socket made, or NULL when there is
 * no such target or its socket cannot connect. */
static s_target_t *
s_target (bctx_sender_t *self, const char *context)
{
    for (size_t i = 0; i < self->n_targets; i++) {
        s_target_t *t = &self->targets[i];
        if (strcmp (t->name, context) != 0)
            continue;
        if (!t->socket) {
            void *socket = zmq_socket (self->zctx, t->remote ? ZMQ_REQ : ZMQ_PUSH);
            int hwm = 0, linger = 0;
            zmq_setsockopt (socket, ZMQ_SNDHWM, &hwm, sizeof hwm);
            zmq_setsockopt (socket, ZMQ_LINGER, &linger, sizeof linger);
            if (t->remote)
                bctx_security_client (self->security, socket, t->key);
            if (zmq_connect (socket, t->endpoint) != 0) {
                zmq_close (socket);
                return NULL;
            }
            t->socket = socket;
        }
        return t;
    }
    return NULL;
}

int
bctx_sender_knows (bctx_sender_t *self, const char *context)
{
    return s_target (self, context) != NULL;
}

/* What a command's reply (borrowed, NULL when none) means to a reactor:
 * BCTX_OK, BCTX_REJECT (a business outcome: why says why) or BCTX_ERROR
 * (anything else: the event is retried). */
static int
s_outcome (json_t *reply, bctx_reason_t *why)
{
    if (json_is_true (json_object_get (reply, "ok")))
        return BCTX_OK;
    json_t *error = json_object_get (reply, "error");
    const char *code = json_string_value (json_object_get (error, "code"));
    const char *message = json_string_value (json_object_get (error, "message"));
    bctx_reason (why, "%s", message ? message : "no reply");
    return code && strcmp (code, BCTX_E_REJECTED) == 0 ? BCTX_REJECT : BCTX_ERROR;
}

/* Sends a command (borrowed) to a peer's API, or a sibling's through the
 * supervisor, and waits (bounded) for the outcome.  A peer that does not
 * answer is a BCTX_ERROR: the event is retried. */
static int
s_send_remote (s_target_t *t, bctx_runner_t *runner, json_t *request, bctx_sent_t *sent,
               bctx_reason_t *why)
{
    char *body = request ? json_dumps (request, JSON_COMPACT) : NULL;
    void *req = t->socket;
    if (!body || zmq_send (req, body, strlen (body), 0) < 0) {
        bctx_reason (why, "send: cannot reach %s", t->name);
        free (body);
        return BCTX_ERROR;
    }
    free (body);
    size_t timeout = t->timeout_ms ? t->timeout_ms : 5000;
    int ready = bctx_runner_wait (runner, req, (long) timeout);
    if (ready <= 0 || !(ready & BCTX_RUNNER_READY)) {
        /* A REQ that got no answer cannot send again: start afresh. */
        zmq_close (req);
        t->socket = NULL;
        if (ready != 0) {
            sent->interrupted = 1;
            bctx_reason (why, "send: interrupted");
        } else {
            sent->unreachable = 1;
            bctx_reason (why, "send: the peer of context %s did not answer", t->name);
        }
        return BCTX_ERROR;
    }
    zmq_msg_t msg;
    zmq_msg_init (&msg);
    json_t *reply = NULL;
    if (zmq_msg_recv (&msg, req, 0) >= 0)
        reply = json_loadb (zmq_msg_data (&msg), zmq_msg_size (&msg), 0, NULL);
    zmq_msg_close (&msg);
    int rc = s_outcome (reply, why);
    /* A context that restarts (its process ended) is no fault of the
     * event either: it waits, as for a peer that does not answer. */
    const char *code = json_string_value (json_object_get (json_object_get (reply, "error"),
                                                           "code"));
    if (code && strcmp (code, BCTX_E_UNAVAILABLE) == 0)
        sent->unreachable = 1;
    json_decref (reply);
    return rc;
}

/* Queues a command (stolen) on a local worker's queue as a reactor's job
 * and waits for the worker to hand it back with its reply. */
static int
s_send_local (s_target_t *t, json_t *request, bctx_reason_t *why)
{
    bctx_waiter_t waiter = { .done = 0 };
    pthread_mutex_init (&waiter.lock, NULL);
    pthread_cond_init (&waiter.cond, NULL);
    bctx_job_t *job = bctx_calloc (1, sizeof *job);
    job->waiter = &waiter;
    job->origin = BCTX_ORIGIN_REACTOR;
    job->request = request;
    int rc = BCTX_ERROR;
    if (!job->request || zmq_send (t->socket, &job, sizeof job, 0) < 0) {
        bctx_reason (why, "send: cannot queue the command for \"%s\"", t->name);
    } else {
        pthread_mutex_lock (&waiter.lock);
        while (!waiter.done)
            pthread_cond_wait (&waiter.cond, &waiter.lock);
        pthread_mutex_unlock (&waiter.lock);
        json_t *reply = job->reply ? json_loads (job->reply, 0, NULL) : NULL;
        rc = s_outcome (reply, why);
        json_decref (reply);
    }
    bctx_job_destroy (&job);
    pthread_mutex_destroy (&waiter.lock);
    pthread_cond_destroy (&waiter.cond);
    return rc;
}

int
bctx_sender_send (bctx_sender_t *self, bctx_runner_t *runner, const char *context,
                  json_t *request, bctx_sent_t *sent, bctx_reason_t *why)
{
    s_target_t *t = s_target (self, context);
    if (!t) {
        json_decref (request);
        bctx_reason (why, "send: no context \"%s\" on this host", context);
        return BCTX_ERROR;
    }
    if (!t->remote)
        return s_send_local (t, request, why);
    /* A context on a peer: the same request over its API.  With CURVE the
     * peer knows this host's key, so it takes the command as a reactor's;
     * without keys it cannot tell this host from a local client there,
     * and keeps the id with its clients' ids.  A sibling is reached
     * through this host's own supervisor, on its admin endpoint, which
     * takes the command as a reactor's. */
    if (t->key || t->remote == BCTX_SOURCE_SIBLING)
        json_object_set_new (request, "origin", json_string ("reactor"));
    int rc = s_send_remote (t, runner, request, sent, why);
    json_decref (request);
    return rc;
}

void
bctx_sender_close (bctx_sender_t *self)
{
    for (size_t i = 0; i < self->n_targets; i++)
        if (self->targets[i].socket) {
            zmq_close (self->targets[i].socket);
            self->targets[i].socket = NULL;
        }
}

/* Frees what target t holds (its socket is closed already). */
static void
s_target_free (s_target_t *t)
{
    free (t->name);
    free (t->endpoint);
    free (t->key);
}

void
bctx_sender_destroy (bctx_sender_t **self_p)
{
    BCTX_SELF_OR_RETURN (bctx_sender_t, self_p);
    for (size_t i = 0; i < self->n_targets; i++)
        s_target_free (&self->targets[i]);
    free (self->targets);
    free (self);
    *self_p = NULL;
}
