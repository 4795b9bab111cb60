/*
 * peers - forwarding to peer hosts.  A forwarded command goes out as
 * [tag][""][request] on the peer's DEALER; the tag comes back with the
 * reply and names the client that waits for it.
 */

#include "peers.h"
#include "frames.h"
#include "endpoint.h"
#include "log.h"
#include "util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

/* A peer this host forwards commands to. */
typedef struct {
    bctx_peers_t *owner;          /* the module (for its reader) */
    size_t index;                 /* its place in config->peers */
    void *dealer;                 /* to the peer's API */
    int64_t forwarded;            /* commands sent there */
    int64_t unanswered;           /* of which timed out or could not be sent */
} s_peer_t;

/* A command forwarded to a peer, waiting for its reply. */
typedef struct {
    uint64_t tag;                 /* sent beside it, comes back with the reply */
    size_t peer;                  /* where it went */
    double deadline;              /* monotonic: then "unavailable" */
    unsigned char env[BCTX_API_ENVELOPE_MAX]; /* the client's envelope */
    size_t env_len;               /* its length */
    int delimiter;                /* the client sent an empty frame first */
} s_forward_t;

struct bctx_peers {
    bctx_registry_t *registry;    /* for the config (borrowed) */
    bctx_api_t *api;              /* to answer clients (borrowed) */
    s_peer_t *peers;              /* one per config peer */
    size_t n_peers;               /* how many */
    s_forward_t *forwards;        /* commands at peers */
    size_t n_forwards;            /* how many */
    uint64_t next_tag;            /* tags of forwarded commands */
};

/* A DEALER to a peer's API.  Return it, or NULL with the reason. */
static void *
s_connect (bctx_peers_t *self, size_t i, bctx_security_t *security, char *err, size_t errlen)
{
    const bctx_config_t *config = self->registry->config;
    const bctx_peer_config_t *pc = &config->peers[i];
    /* The config compares the strings; names may still hide this host. */
    if (bctx_endpoint_same_socket (config->api, pc->api)) {
        snprintf (err, errlen, "peers[%zu].api: %s resolves to this host's own API (%s): "
                  "a peer is another host", i, pc->api, config->api);
        return NULL;
    }
    /* No queueing for a peer that is not connected (immediate): the client
     * gets "unavailable" now rather than at the deadline. */
    static const int options[][2] = {
        { ZMQ_LINGER, 0 }, { ZMQ_IMMEDIATE, 1 }, { ZMQ_SNDHWM, 100000 },
        { ZMQ_HEARTBEAT_IVL, 1000 }, { ZMQ_HEARTBEAT_TIMEOUT, 3000 },
        { ZMQ_RECONNECT_IVL_MAX, 2000 },
    };
    void *d = zmq_socket (self->registry->zctx, ZMQ_DEALER);
    for (size_t k = 0; k < sizeof options / sizeof options[0]; k++)
        zmq_setsockopt (d, options[k][0], &options[k][1], sizeof options[k][1]);
    bctx_security_client (security, d, pc->public_key);
    if (zmq_connect (d, pc->api) != 0) {
        snprintf (err, errlen, "peers[%zu].api: %s: %s", i, pc->api,
                  zmq_strerror (zmq_errno ()));
        zmq_close (d);
        return NULL;
    }
    return d;
}

bctx_peers_t *
bctx_peers_new (bctx_registry_t *registry, bctx_api_t *api, bctx_security_t *security,
                char *err, size_t errlen)
{
    bctx_peers_t *self = calloc (1, sizeof *self);
    self->registry = registry;
    self->api = api;
    size_t n = registry->config->n_peers;
    self->peers = calloc (n ? n : 1, sizeof *self->peers);
    self->n_peers = n;
    for (size_t i = 0; i < n; i++) {
        self->peers[i] = (s_peer_t) { .owner = self, .index = i };
        self->peers[i].dealer = s_connect (self, i, security, err, errlen);
        if (!self->peers[i].dealer) {
            bctx_peers_destroy (&self);
            return NULL;
        }
    }
    return self;
}

char *
bctx_peers_forward (bctx_peers_t *self, size_t peer, json_t *req,
                    const unsigned char *envelope, size_t envelope_len, int delimiter,
                    const char **code)
{
    const bctx_config_t *config = self->registry->config;
    const bctx_peer_config_t *pc = &config->peers[peer];
    s_peer_t *p = &self->peers[peer];
    char *body = json_dumps (req, JSON_COMPACT);
    uint64_t tag = ++self->next_tag;
    p->forwarded++;
    int rc = body ? 0 : -1;
    if (rc == 0 && (zmq_send (p->dealer, &tag, sizeof tag, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0
                    || zmq_send (p->dealer, "", 0, ZMQ_SNDMORE) < 0
                    || zmq_send (p->dealer, body, strlen (body), 0) < 0))
        rc = -1;
    free (body);
    if (rc < 0) {
        p->unanswered++;
        *code = BCTX_E_UNAVAILABLE;
        return bctx_reply_error (BCTX_E_UNAVAILABLE, "peer %s (%s) is not connected",
                                 pc->name, pc->api);
    }
    self->forwards = bctx_realloc (self->forwards, (self->n_forwards + 1) * sizeof *self->forwards);
    s_forward_t *f = &self->forwards[self->n_forwards++];
    f->tag = tag;
    f->peer = peer;
    f->deadline = bctx_now () + (double) config->forward_timeout_ms / 1000.0;
    memcpy (f->env, envelope, envelope_len);
    f->env_len = envelope_len;
    f->delimiter = delimiter;
    return NULL;
}

/* Passes one reply of `peer` (its frames) to the client that waits for it. */
static void
s_answer (bctx_peers_t *self, size_t peer, zmq_msg_t *frames, int n)
{
    uint64_t tag = 0;
    if (n == 3 && zmq_msg_size (&frames[0]) == sizeof tag && zmq_msg_size (&frames[1]) == 0)
        memcpy (&tag, zmq_msg_data (&frames[0]), sizeof tag);
    size_t i = 0;
    while (tag && i < self->n_forwards
           && (self->forwards[i].tag != tag || self->forwards[i].peer != peer))
        i++;
    if (tag && i < self->n_forwards) {
        s_forward_t *f = &self->forwards[i];
        char *reply = strndup (zmq_msg_data (&frames[2]), zmq_msg_size (&frames[2]));
        bctx_api_send (self->api, f->env, f->env_len, f->delimiter, reply);
        free (reply);
        self->forwards[i] = self->forwards[--self->n_forwards];
    } else {
        bctx_log (BCTX_LOG_INFO, "peer %s: dropping a reply nobody waits for "
                  "(late or malformed)", self->registry->config->peers[peer].name);
    }
}

/* A peer answered: pass its replies on, a bounded number per turn. */
static int
s_on_peer_reply (void *arg)
{
    s_peer_t *p = arg;
    for (int k = 0; k < 256; k++) {
        zmq_msg_t frames[3];
        int n = bctx_frames_recv (p->dealer, frames, 3);
        if (n == 0)
            break;
        s_answer (p->owner, p->index, frames, n);
        for (int j = 0; j < (n < 3 ? n : 3); j++)
            zmq_msg_close (&frames[j]);
    }
    return BCTX_LOOP_GO_ON;
}

double
bctx_peers_tick (void *self_)
{
    bctx_peers_t *self = self_;
    const bctx_config_t *config = self->registry->config;
    double now = bctx_now (), next = -1;
    for (size_t i = 0; i < self->n_forwards;) {
        s_forward_t *f = &self->forwards[i];
        if (now >= f->deadline) {
            const bctx_peer_config_t *pc = &config->peers[f->peer];
            self->peers[f->peer].unanswered++;
            char *reply = bctx_reply_error (BCTX_E_UNAVAILABLE, "peer %s (%s) did not answer "
                                            "within %zu ms", pc->name, pc->api,
                                            config->forward_timeout_ms);
            bctx_api_send (self->api, f->env, f->env_len, f->delimiter, reply);
            free (reply);
            self->forwards[i] = self->forwards[--self->n_forwards];
            continue;
        }
        if (next < 0 || f->deadline - now < next)
            next = f->deadline - now;
        i++;
    }
    return next;
}


void
bctx_peers_attach (bctx_peers_t *self, bctx_loop_t *loop)
{
    for (size_t i = 0; i < self->n_peers; i++)
        bctx_loop_reader (loop, self->peers[i].dealer, 0, s_on_peer_reply, &self->peers[i]);
    bctx_loop_timer (loop, bctx_peers_tick, self);
}

void
bctx_peers_drain (bctx_peers_t *self)
{
    while (self->n_forwards > 0) {
        size_t n_items = self->n_peers;
        zmq_pollitem_t items[n_items ? n_items : 1];
        for (size_t i = 0; i < n_items; i++)
            items[i] = (zmq_pollitem_t) { self->peers[i].dealer, 0, ZMQ_POLLIN, 0 };
        double wait = bctx_peers_tick (self);
        if (wait < 0)
            break;
        if (zmq_poll (items, (int) n_items, (long) (wait * 1000) + 1) < 0
            && zmq_errno () != EINTR)
            break;
        for (size_t i = 0; i < n_items; i++)
            if (items[i].revents & ZMQ_POLLIN)
                s_on_peer_reply (&self->peers[i]);
    }
}

json_t *
bctx_peers_stats (const bctx_peers_t *self)
{
    const bctx_config_t *config = self->registry->config;
    json_t *peers = json_object ();
    for (size_t i = 0; i < self->n_peers; i++)
        json_object_set_new (peers, config->peers[i].name, json_pack (
            "{s:s, s:s, s:I, s:I}", "api", config->peers[i].api,
            "publish", config->peers[i].publish,
            "forwarded", (json_int_t) self->peers[i].forwarded,
            "unanswered", (json_int_t) self->peers[i].unanswered));
    return peers;
}

void
bctx_peers_destroy (bctx_peers_t **self_p)
{
    BCTX_SELF_OR_RETURN (bctx_peers_t, self_p);
    for (size_t i = 0; i < self->n_peers; i++)
        if (self->peers[i].dealer)
            zmq_close (self->peers[i].dealer);
    free (self->peers);
    free (self->forwards);
    free (self);
    *self_p = NULL;
}
