/*
 * commands - admission, routing and replies of "send".  A command that
 * passes the checks goes to its context's worker as a job pointer on the
 * context's PUSH, or to the peer that owns the context; the worker hands
 * the job back on the replies PULL, and the reply goes to the client.
 */

#include "commands.h"
#include "route.h"
#include "util.h"
#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#define S_NO_REPLY "{\"ok\":false,\"error\":{\"code\":\"internal\",\"message\":\"no reply\"}}"

struct bctx_commands {
    bctx_registry_t *registry;    /* the contexts (borrowed) */
    bctx_api_t *api;              /* to answer clients (borrowed) */
    bctx_peers_t *peers;          /* where remote contexts live (borrowed), or NULL */
    bctx_relay_t *relay;          /* in the supervisor: to the context processes */
    void *replies;                /* PULL: jobs back from workers */
    int64_t in_flight;            /* jobs handed to workers, not yet back */
};

static char *s_op_send (void *arg, bctx_request_t *r);

bctx_commands_t *
bctx_commands_new (bctx_registry_t *registry, bctx_api_t *api, char *err, size_t errlen)
{
    bctx_commands_t *self = calloc (1, sizeof *self);
    self->registry = registry;
    self->api = api;
    self->replies = zmq_socket (registry->zctx, ZMQ_PULL);
    int hwm = 0;
    zmq_setsockopt (self->replies, ZMQ_RCVHWM, &hwm, sizeof hwm);
    if (zmq_bind (self->replies, BCTX_COMMANDS_REPLIES) != 0) {
        snprintf (err, errlen, "cannot bind %s", BCTX_COMMANDS_REPLIES);
        bctx_commands_destroy (&self);
        return NULL;
    }
    bctx_api_handle (api, BCTX_OP_SEND, s_op_send, self);
    return self;
}

void
bctx_commands_route (bctx_commands_t *self, bctx_peers_t *peers)
{
    self->peers = peers;
}

/* A "send" read off its routing keys alone (api.h): to the context
 * process that decides it, unparsed; that process parses it and checks
 * its fields (bctx_send_check).  Anything else (a peer's context, one
 * not known, an "origin" from a connection that may not give one) is
 * parsed whole and goes to s_op_send, which says what is wrong. */
static char *
s_route_send (void *arg, bctx_request_t *r)
{
    bctx_commands_t *self = arg;
    const bctx_route_t *route = r->route;
    char name[256];
    bctx_local_t *c = NULL;
    if (route->context.len < sizeof name) {
        memcpy (name, route->context.text, route->context.len);
        name[route->context.len] = '\0';
        c = bctx_registry_find (self->registry, name);
    }
    if (!c || c->worker || (route->origin.text
                            && !(r->role & (BCTX_ROLE_PEER | BCTX_ROLE_ADMIN)))) {
        r->parse = 1;
        return NULL;
    }
    return bctx_relay_send (self->relay, r, name);
}

void
bctx_commands_relay (bctx_commands_t *self, bctx_relay_t *relay)
{
    self->relay = relay;
    if (relay)
        bctx_api_route_sends (self->api, s_route_send, self);
}

/* Checks a "send"'s fields (bctx_send_check).  Return NULL, or an error
 * reply (new). */
static char *
s_check_fields (bctx_request_t *r)
{
    char why[300];
    const char *code = bctx_send_check (r->body, why, sizeof why);
    return code ? bctx_request_error (r, code, "%s", why) : NULL;
}

/* A reactor's command: only a peer host (whose reactor sent it) or an
 * admin may say so.  Its id then lives apart from the clients' ids.
 * Return NULL (*from_reactor set), or an error reply (new). */
static char *
s_check_origin (bctx_request_t *r, int *from_reactor)
{
    *from_reactor = 0;
    if (!json_object_get (r->body, "origin"))
        return NULL;              /* its value: bctx_send_check */
    if (!(r->role & (BCTX_ROLE_PEER | BCTX_ROLE_ADMIN)))
        return bctx_request_error (r, BCTX_E_FORBIDDEN, "send: only a peer host's reactor "
                                   "sends commands with \"origin\": \"reactor\"; this "
                                   "connection's role is %s", bctx_role_name (r->role));
    *from_reactor = 1;
    return NULL;
}

/* A command for a context not on this host: to the peer that owns it, or
 * unknown_context.  Return NULL when forwarded, or an error reply (new). */
static char *
s_to_peer (bctx_commands_t *self, bctx_request_t *r, const char *name)
{
    const bctx_config_t *config = self->registry->config;
    const char *by = json_string_value (json_object_get (r->body, "forwarded_by"));
    for (size_t i = 0; self->peers && i < config->n_remotes; i++) {
        if (strcmp (config->remotes[i].name, name) != 0)
            continue;
        if (by)    /* forwarded once already: never twice, or two hosts loop */
            return bctx_request_error (r, BCTX_E_UNKNOWN_CONTEXT,
                                       "context \"%s\" is not on host %s, which host %s "
                                       "forwarded it to: their configs point at each other",
                                       name, config->name, by);
        json_object_set_new (r->body, "forwarded_by", json_string (config->name));
        return bctx_peers_forward (self->peers, config->remotes[i].peer, r->body, r->envelope,
                                   r->envelope_len, r->delimiter, &r->code);
    }
    return bctx_request_error (r, BCTX_E_UNKNOWN_CONTEXT, "no context \"%s\" on this host", name);
}

/* Checks a "send" and hands it to its worker or its peer.  Return NULL
 * when handed on (the worker or the peer replies), or an error reply. */
static char *
s_op_send (void *arg, bctx_request_t *r)
{
    bctx_commands_t *self = arg;
    int from_reactor = 0;
    char *reply = s_check_fields (r);
    if (!reply)
        reply = s_check_origin (r, &from_reactor);
    if (reply)
        return reply;
    const char *name = json_string_value (json_object_get (r->body, "context"));
    bctx_local_t *c = bctx_registry_find (self->registry, name);
    if (!c)
        return s_to_peer (self, r, name);
    if (!c->worker)     /* the supervisor: its context process decides */
        return self->relay ? bctx_relay_send (self->relay, r, name)
                           : bctx_request_error (r, BCTX_E_UNAVAILABLE, "context \"%s\" "
                                                 "is not taking commands", name);
    if (r->envelope_len > sizeof ((bctx_job_t *) 0)->identity)
        return bctx_request_error (r, BCTX_E_BAD_REQUEST, "routing id too long");
    bctx_job_t *job = calloc (1, sizeof *job);
    memcpy (job->identity, r->envelope, r->envelope_len);
    job->identity_len = r->envelope_len;
    job->delimiter = r->delimiter;
    job->origin = from_reactor ? BCTX_ORIGIN_REACTOR : BCTX_ORIGIN_CLIENT;
    job->request = json_incref (r->body);
    if (zmq_send (c->push, &job, sizeof job, 0) < 0) {
        bctx_job_destroy (&job);
        return bctx_request_error (r, BCTX_E_UNAVAILABLE,
                                   "context \"%s\" is not taking commands", name);
    }
    self->in_flight++;
    return NULL;
}

/* Jobs back from workers: replies to their clients. */
static int
s_on_reply (void *arg)
{
    bctx_commands_t *self = arg;
    bctx_job_t *job;
    while (zmq_recv (self->replies, &job, sizeof job, ZMQ_DONTWAIT) == (int) sizeof job) {
        self->in_flight--;
        bctx_api_send (self->api, job->identity, job->identity_len, job->delimiter,
                       job->reply ? job->reply : S_NO_REPLY);
        bctx_job_destroy (&job);
    }
    return BCTX_LOOP_GO_ON;
}

void
bctx_commands_attach (bctx_commands_t *self, bctx_loop_t *loop)
{
    bctx_loop_reader (loop, self->replies, 0, s_on_reply, self);
}

int64_t
bctx_commands_in_flight (const bctx_commands_t *self)
{
    if (self->relay)
        return bctx_relay_in_flight (self->relay);
    return self->in_flight;
}

void
bctx_commands_drain (bctx_commands_t *self)
{
    while (self->in_flight > 0) {
        zmq_pollitem_t item = { self->replies, 0, ZMQ_POLLIN, 0 };
        if (zmq_poll (&item, 1, 1000) < 0 && zmq_errno () != EINTR)
            break;
        s_on_reply (self);
    }
}

void
bctx_commands_discard (bctx_commands_t *self)
{
    bctx_job_t *job;
    while (self->replies
           && zmq_recv (self->replies, &job, sizeof job, ZMQ_DONTWAIT) == (int) sizeof job)
        bctx_job_destroy (&job);
}

void
bctx_commands_destroy (bctx_commands_t **self_p)
{
    BCTX_SELF_OR_RETURN (bctx_commands_t, self_p);
    if (self->replies) {
        /* Free any job a worker handed back after the drain. */
        bctx_commands_discard (self);
        bctx_socket_close (&self->replies);
    }
    free (self);
    *self_p = NULL;
}
