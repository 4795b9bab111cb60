/*
 * security - CURVE keys on sockets and the ZAP handler that checks the
 * client keys.
 */
#include "security.h"
#include "log.h"
#include "protocol.h"
#include "util.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>


struct bctx_security {
    char *public_key;             /* this host's key (Z85), or NULL: no CURVE */
    char *secret_key;             /* its secret half */
    char **allowed;               /* client keys admitted (Z85) */
    unsigned *roles;              /* the role of each (BCTX_ROLE_*) */
    size_t n_allowed;             /* how many */
    void *zap;                    /* REP at inproc://zeromq.zap.01 (the thread's) */
    pthread_t thread;             /* runs s_zap */
    int started;                  /* thread was created */
};

/* The role of a client key: the first listing of it wins, host.clients
 * before peers.  Return BCTX_ROLE_*, or 0 when the key is unknown. */
static unsigned
s_role (const bctx_security_t *self, const char *key)
{
    for (size_t i = 0; i < self->n_allowed; i++)
        if (strcmp (self->allowed[i], key) == 0)
            return self->roles[i];
    return 0;
}

/* Answers ZAP requests until the context ends. */
static void *
s_zap (void *arg)
{
    bctx_security_t *self = arg;
    for (;;) {
        zmq_msg_t frames[7];
        int n = 0, more = 1, failed = 0;
        while (more) {
            zmq_msg_t scratch, *m = n < 7 ? &frames[n] : &scratch;
            zmq_msg_init (m);
            if (zmq_msg_recv (m, self->zap, 0) < 0) {
                zmq_msg_close (m);
                failed = 1;
                break;
            }
            more = zmq_msg_more (m);
            if (n >= 7)
                zmq_msg_close (m);
            n++;
        }
        if (failed && zmq_errno () == ETERM) {
            for (int i = 0; i < (n < 7 ? n : 7); i++)
                zmq_msg_close (&frames[i]);
            break;
        }
        int kept = n < 7 ? n : 7;
        /* version, request id, domain, address, identity, mechanism, key */
        const char *status = "400", *text = "unknown client key", *user = "";
        char key[41] = "";
        if (n == 7 && zmq_msg_size (&frames[5]) == 5
            && memcmp (zmq_msg_data (&frames[5]), "CURVE", 5) == 0
            && zmq_msg_size (&frames[6]) == 32) {
            zmq_z85_encode (key, zmq_msg_data (&frames[6]), 32);
            unsigned role = s_role (self, key);
            if (role)
                status = "200", text = "OK", user = bctx_role_name (role);
        }
        if (strcmp (status, "200") != 0)
            bctx_log (BCTX_LOG_WARN, "refused a client with %s key %s",
                      key[0] ? "the unknown" : "no CURVE", key[0] ? key : "");
        if (kept >= 2) {
            zmq_send (self->zap, "1.0", 3, ZMQ_SNDMORE);
            zmq_send (self->zap, zmq_msg_data (&frames[1]), zmq_msg_size (&frames[1]),
                      ZMQ_SNDMORE);
            zmq_send (self->zap, status, 3, ZMQ_SNDMORE);
            zmq_send (self->zap, text, strlen (text), ZMQ_SNDMORE);
            /* The user id is the role: every message from this
             * connection carries it, as its "User-Id" property. */
            zmq_send (self->zap, user, strlen (user), ZMQ_SNDMORE);
            zmq_send (self->zap, "", 0, 0);
        }
        for (int i = 0; i < kept; i++)
            zmq_msg_close (&frames[i]);
    }
    bctx_socket_close (&self->zap);
    return NULL;
}

bctx_security_t *
bctx_security_new (void *zctx, const bctx_config_t *config, char *err, size_t errlen)
{
    bctx_security_t *self = calloc (1, sizeof *self);
    if (!config->curve_public)
        return self;
    self->public_key = strdup (config->curve_public);
    self->secret_key = strdup (config->curve_secret);
    self->allowed = calloc (config->n_clients + config->n_peers + 1, sizeof *self->allowed);
    self->roles = calloc (config->n_clients + config->n_peers + 1, sizeof *self->roles);
    for (size_t i = 0; i < config->n_clients; i++) {
        self->roles[self->n_allowed] = config->client_roles[i];
        self->allowed[self->n_allowed++] = strdup (config->clients[i]);
    }
    for (size_t i = 0; i < config->n_peers; i++)
        if (config->peers[i].public_key) {
            self->roles[self->n_allowed] = BCTX_ROLE_PEER;
            self->allowed[self->n_allowed++] = strdup (config->peers[i].public_key);
        }
    self->zap = zmq_socket (zctx, ZMQ_REP);
    if (zmq_bind (self->zap, "inproc://zeromq.zap.01") != 0
        || pthread_create (&self->thread, NULL, s_zap, self) != 0) {
        snprintf (err, errlen, "host.curve: cannot start the ZAP handler");
        zmq_close (self->zap);
        self->zap = NULL;
        bctx_security_destroy (&self);
        return NULL;
    }
    self->started = 1;
    return self;
}

void
bctx_security_server (const bctx_security_t *self, void *socket)
{
    if (!self || !self->public_key)
        return;
    int on = 1;
    zmq_setsockopt (socket, ZMQ_CURVE_SERVER, &on, sizeof on);
    zmq_setsockopt (socket, ZMQ_CURVE_SECRETKEY, self->secret_key, 40);
    zmq_setsockopt (socket, ZMQ_ZAP_DOMAIN, "bctx", 4);
}

void
bctx_security_client (const bctx_security_t *self, void *socket, const char *peer_key)
{
    if (!self || !self->public_key || !peer_key)
        return;
    zmq_setsockopt (socket, ZMQ_CURVE_SERVERKEY, peer_key, 40);
    zmq_setsockopt (socket, ZMQ_CURVE_PUBLICKEY, self->public_key, 40);
    zmq_setsockopt (socket, ZMQ_CURVE_SECRETKEY, self->secret_key, 40);
}

unsigned
bctx_security_role (const bctx_security_t *self, const char *user_id)
{
    if (!self || !self->public_key)
        return BCTX_ROLE_CLIENT;
    return bctx_role_parse (user_id);
}

void
bctx_security_destroy (bctx_security_t **self_p)
{
    BCTX_SELF_OR_RETURN (bctx_security_t, self_p);
    if (self->started)
        pthread_join (self->thread, NULL);
    bctx_strings_free (self->allowed, self->n_allowed);
    free (self->roles);
    free (self->public_key);
    free (self->secret_key);
    free (self);
    *self_p = NULL;
}
