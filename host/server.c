/*
 * server - the API thread: ROUTER socket, request parsing and validation,
 * routing of commands to context workers, queries of the logs, and the
 * clean drain on shutdown.
 */

#include "server.h"
#include "bus.h"
#include "bridge.h"
#include "endpoint.h"
#include "datadir.h"
#include "feed.h"
#include "log.h"
#include "projection.h"
#include "reactor.h"
#include "protocol.h"
#include "security.h"
#include "store.h"
#include "worker.h"

#include <errno.h>
#include <signal.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <libgen.h>
#include <sys/inotify.h>
#include <sys/signalfd.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#define S_REPLIES      "inproc://bctx-replies"
#define S_EVENTS_MAX   10000   /* most events one "events" request returns */
#define S_ID_MAX       256     /* longest command id a client may give (a reactor's
                                  ids, names and a position, fit) */
#define S_MARK_EVERY   0.1     /* seconds between high-water mark updates */

typedef struct {
    bctx_worker_t *worker;        /* the context's worker */
    void *push;                   /* PUSH: job pointers to the worker */
    bctx_store_t *reader;         /* read-only store for queries */
} s_context_t;

typedef struct {
    bctx_projector_t *projector;  /* runs the projection */
    bctx_readside_t *reader;      /* read-only, for queries */
} s_projection_t;

/* A reload on its way: waiting for the old version to drain (job NULL),
 * or sent to the worker and not back yet. */
typedef struct {
    bctx_job_t *job;              /* at the worker, or NULL while waiting */
    size_t ctx;                   /* index of the context */
    char *path;                   /* the plugin file to load */
    double deadline;              /* monotonic seconds: then "unavailable" */
    unsigned char identity[512];  /* the client's envelope, if any */
    size_t identity_len;          /* 0: a reload from the file watch */
    int delimiter;                /* the client sent an empty frame first */
    int preparing;                /* job is with the preparer thread */
} s_reload_t;

/* A context whose plugin file is watched. */
typedef struct {
    int wd;                       /* inotify watch on the file's directory, or -1 */
    char *file;                   /* the file's name in that directory */
    double due;                   /* when to reload (debounced), or 0 */
} s_watch_t;

/* A peer this host forwards commands to. */
typedef struct {
    void *dealer;                 /* to the peer's API */
    int64_t forwarded;            /* commands sent there */
    int64_t unanswered;           /* of which timed out or could not be sent */
} s_peer_t;

/* A command forwarded to a peer, waiting for its reply. */
typedef struct {
    uint64_t tag;                 /* sent beside it, comes back with the reply */
    size_t peer;                  /* where it went */
    double deadline;              /* monotonic: then "unavailable" */
    unsigned char env[512];       /* the client's envelope */
    size_t env_len;               /* its length */
    int delimiter;                /* the client sent an empty frame first */
} s_forward_t;

struct bctx_server {
    bctx_config_t *config;        /* owned; replaced on SIGHUP */
    void *zctx;                   /* the ZeroMQ context */
    void *router;                 /* the API socket */
    void *admin;                  /* the admin endpoint's ROUTER (ipc, 0700 folder) */
    char *admin_endpoint;         /* its address: ipc://<host.data, absolute>/run/admin.sock */
    void *replies;                /* PULL: jobs back from workers */
    bctx_bus_t *bus;              /* the internal bus */
    bctx_security_t *security;    /* CURVE keys and the ZAP handler */
    s_context_t *contexts;        /* one per config context */
    size_t n_contexts;            /* how many */
    bctx_source_t *sources;       /* every context, local or remote, for feeds */
    size_t n_sources;             /* how many */
    bctx_bridge_t **bridges;      /* replicas of the remote contexts consumed here */
    size_t n_bridges;             /* how many */
    s_projection_t *projections;  /* every projection of every context */
    size_t n_projections;         /* how many */
    bctx_reactor_runner_t **reactors; /* every reactor of every context */
    size_t n_reactors;            /* how many */
    s_peer_t *peers;              /* one per config peer */
    s_forward_t *forwards;        /* commands at peers */
    size_t n_forwards;            /* how many */
    uint64_t next_tag;            /* tags of forwarded commands */
    s_reload_t *reloads;          /* reloads in progress */
    size_t n_reloads;             /* how many */
    int inotify;                  /* inotify descriptor, or -1 */
    int stopping;                 /* draining: no reload goes further */
    _Atomic int preparers;        /* preparer threads still running */
    int rollbacks;                /* rollback jobs at workers */
    s_watch_t *watches;           /* one per context */
    int64_t in_flight;            /* jobs handed to workers, not yet back */
    int64_t requests;             /* requests taken */
    int64_t too_large;            /* requests refused as too_large */
    int64_t bad;                  /* requests refused as bad_request */
    int64_t forbidden;            /* requests refused as forbidden */
    bctx_datadir_t *datadir;      /* the lock on host.data and the high-water marks */
    double mark_due;              /* monotonic: when to update the marks next */
};

static double
s_now (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

static int
s_mkdirs (const char *path, char *err, size_t errlen)
{
    char *p = strdup (path);
    for (char *s = p + 1; *s; s++)
        if (*s == '/') {
            *s = '\0';
            if (mkdir (p, 0755) < 0 && errno != EEXIST)
                goto fail;
            *s = '/';
        }
    if (mkdir (p, 0755) < 0 && errno != EEXIST)
        goto fail;
    free (p);
    return 0;
fail:
    snprintf (err, errlen, "host.data: cannot create %s: %s", p, strerror (errno));
    free (p);
    return -1;
}

/* Does any runner of a context other than `ctx` use this name? */
static int
s_name_taken (bctx_server_t *self, const char *kind, const char *name, const char *ctx)
{
    if (strcmp (kind, "projection") == 0) {
        for (size_t i = 0; i < self->n_projections; i++)
            if (strcmp (bctx_projector_name (self->projections[i].projector), name) == 0
                && strcmp (bctx_projector_context (self->projections[i].projector), ctx) != 0)
                return 1;
    } else {
        for (size_t i = 0; i < self->n_reactors; i++)
            if (strcmp (bctx_reactor_name (self->reactors[i]), name) == 0
                && strcmp (bctx_reactor_context (self->reactors[i]), ctx) != 0)
                return 1;
    }
    return 0;
}

/* Checks that a version of context `ctx` declares projections and reactors
 * this host can run: names unique in the host and within the plugin, and
 * every consumed context known.  Return 0, or -1 with the reason. */
static int
s_check_read_side (bctx_server_t *self, const bctx_plugin_t *p, char *err, size_t errlen)
{
    json_t *seen = json_object ();
    int rc = -1;
    const char *kinds[2] = { "projection", "reactor" };
    for (int k = 0; k < 2; k++) {
        size_t n = 0;
        const char *const *consumes[64];
        const char *names[64];
        if (k == 0)
            for (const bctx_projection_t *d = p->desc->projections; d && d->name && n < 64; d++)
                names[n] = d->name, consumes[n++] = d->consumes;
        else
            for (const bctx_reactor_t *d = p->desc->reactors; d && d->name && n < 64; d++)
                names[n] = d->name, consumes[n++] = d->consumes;
        for (size_t i = 0; i < n; i++) {
            char key[160];
            snprintf (key, sizeof key, "%s %s", kinds[k], names[i]);
            /* The name becomes a file name and a socket name. */
            size_t len = strlen (names[i]);
            if (len == 0 || len > 64 || strspn (names[i], "abcdefghijklmnopqrstuvwxyz"
                                                 "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") != len) {
                snprintf (err, errlen, "context %s: %s \"%s\": a name is 1 to 64 of "
                          "A-Z a-z 0-9 _ -", p->name, kinds[k], names[i]);
                goto done;
            }
            if (json_object_get (seen, key) || s_name_taken (self, kinds[k], names[i], p->name)) {
                snprintf (err, errlen, "context %s: %s is declared twice in this host",
                          p->name, key);
                goto done;
            }
            json_object_set_new (seen, key, json_true ());
            char who[200];
            snprintf (who, sizeof who, "context %s: %s", p->name, key);
            /* A feed opened and closed: the consumed contexts exist. */
            bctx_feed_t *feed = bctx_feed_new (who, consumes[i], self->sources,
                                               self->n_sources, err, errlen);
            if (!feed)
                goto done;
            bctx_feed_destroy (&feed);
        }
    }
    rc = 0;
done:
    json_decref (seen);
    return rc;
}

static s_projection_t *s_find_projection (bctx_server_t *self, const char *name);
static int s_watch_open (bctx_server_t *self, char *err, size_t errlen);
static int s_open_peers (bctx_server_t *self, char *err, size_t errlen);
static bctx_reactor_runner_t *s_find_reactor (bctx_server_t *self, const char *name);

/* Creates (and, when start is set, starts) the runners of a version's
 * projections and reactors that do not run yet.  Return 0 or -1. */
static int
s_add_runners (bctx_server_t *self, bctx_plugin_t *p, int start, char *err, size_t errlen)
{
    for (const bctx_projection_t *d = p->desc->projections; d && d->name; d++) {
        if (s_find_projection (self, d->name))
            continue;
        bctx_projector_t *pr = bctx_projector_new (self->zctx, self->config->data, p, d,
                                                   self->sources, self->n_sources, err, errlen);
        if (!pr)
            return -1;
        bctx_readside_t *reader = bctx_readside_open (bctx_projector_path (pr),
                                                      BCTX_STORE_READONLY, err, errlen);
        if (!reader || (start && bctx_projector_start (pr) != 0)) {
            bctx_readside_destroy (&reader);
            bctx_projector_destroy (&pr);
            return -1;
        }
        self->projections = realloc (self->projections,
                                     (self->n_projections + 1) * sizeof *self->projections);
        self->projections[self->n_projections++] = (s_projection_t) { pr, reader };
    }
    for (const bctx_reactor_t *d = p->desc->reactors; d && d->name; d++) {
        if (s_find_reactor (self, d->name))
            continue;
        bctx_reactor_runner_t *r = bctx_reactor_new (self->zctx, self->config->data, p, d,
                                                     self->sources, self->n_sources, err, errlen);
        if (!r)
            return -1;
        if (start && bctx_reactor_start (r) != 0) {
            bctx_reactor_destroy (&r);
            return -1;
        }
        self->reactors = realloc (self->reactors, (self->n_reactors + 1) * sizeof *self->reactors);
        self->reactors[self->n_reactors++] = r;
    }
    return 0;
}

/* The contexts feeds may read and reactors may send to: the local ones,
 * then the remote ones (read from their replica when bridged). */
static void
s_build_sources (bctx_server_t *self)
{
    free (self->sources);
    size_t n = self->n_contexts + self->config->n_remotes;
    self->sources = calloc (n ? n : 1, sizeof *self->sources);
    for (size_t i = 0; i < self->n_contexts; i++) {
        bctx_worker_t *w = self->contexts[i].worker;
        self->sources[i] = (bctx_source_t) {
            .name = bctx_worker_name (w),
            .store_path = bctx_worker_store_path (w),
            .head = &bctx_worker_stats (w)->position,
            .endpoint = bctx_worker_endpoint (w),
        };
    }
    for (size_t r = 0; r < self->config->n_remotes; r++) {
        const bctx_remote_config_t *rc = &self->config->remotes[r];
        bctx_source_t *src = &self->sources[self->n_contexts + r];
        *src = (bctx_source_t) {
            .name = rc->name, .endpoint = self->config->peers[rc->peer].api, .remote = 1,
            .server_key = self->config->peers[rc->peer].public_key,
            .timeout_ms = self->config->forward_timeout_ms,
        };
        for (size_t b = 0; b < self->n_bridges; b++)
            if (strcmp (bctx_bridge_context (self->bridges[b]), rc->name) == 0) {
                src->store_path = bctx_bridge_store_path (self->bridges[b]);
                src->head = bctx_bridge_head (self->bridges[b]);
            }
    }
    self->n_sources = n;
}

/* The first projection or reactor of a version that consumes events of
 * `context`, named in who ("projection balances").  Return who, or NULL. */
static const char *
s_consumer (const bctx_plugin_t *p, const char *context, char *who, size_t size)
{
    size_t len = strlen (context);
    for (const bctx_projection_t *d = p->desc->projections; d && d->name; d++)
        for (const char *const *c = d->consumes; c && *c; c++)
            if (strncmp (*c, context, len) == 0 && (*c)[len] == '.') {
                snprintf (who, size, "projection %s", d->name);
                return who;
            }
    for (const bctx_reactor_t *d = p->desc->reactors; d && d->name; d++)
        for (const char *const *c = d->consumes; c && *c; c++)
            if (strncmp (*c, context, len) == 0 && (*c)[len] == '.') {
                snprintf (who, size, "reactor %s", d->name);
                return who;
            }
    return NULL;
}

/* Opens a bridge for every remote context a local projection or reactor
 * consumes. */
static int
s_open_bridges (bctx_server_t *self, char *err, size_t errlen)
{
    for (size_t r = 0; r < self->config->n_remotes; r++) {
        const bctx_remote_config_t *rc = &self->config->remotes[r];
        int needed = 0;
        for (size_t i = 0; i < self->n_contexts && !needed; i++) {
            char who[200];
            bctx_plugin_t *p = bctx_worker_plugin (self->contexts[i].worker);
            needed = s_consumer (p, rc->name, who, sizeof who) != NULL;
            bctx_plugin_unref (&p);
        }
        if (!needed)
            continue;
        bctx_bridge_t *b = bctx_bridge_new (self->zctx, self->config->data, rc->name,
                                            &self->config->peers[rc->peer],
                                            self->config->forward_timeout_ms, err, errlen);
        if (!b)
            return -1;
        self->bridges = realloc (self->bridges, (self->n_bridges + 1) * sizeof *self->bridges);
        self->bridges[self->n_bridges++] = b;
    }
    return 0;
}

/* Creates the projections and reactors every context declares, with
 * names unique in the host. */
static int
s_open_read_side (bctx_server_t *self, char *err, size_t errlen)
{
    if (s_open_bridges (self, err, errlen) < 0)
        return -1;
    s_build_sources (self);
    for (size_t i = 0; i < self->n_contexts; i++) {
        bctx_plugin_t *p = bctx_worker_plugin (self->contexts[i].worker);
        char why[512];
        int rc = s_check_read_side (self, p, why, sizeof why) == 0
                 && s_add_runners (self, p, 0, why, sizeof why) == 0 ? 0 : -1;
        bctx_plugin_unref (&p);
        if (rc < 0) {
            snprintf (err, errlen, "contexts[%zu]: %s", self->config->contexts[i].index, why);
            return -1;
        }
    }
    return 0;
}

/* The admin endpoint: a ROUTER on ipc://<host.data>/run/admin.sock, the
 * folder made 0700 and owned by this user, so that only the host's own OS
 * user (and root) can connect: file permissions are its authentication,
 * as for docker.sock.  Return 0, or -1 with the reason. */
static int
s_open_admin (bctx_server_t *self, char *err, size_t errlen)
{
    char *data = realpath (self->config->data, NULL);
    char run[4096];
    if (!data || snprintf (run, sizeof run, "%s/run", data) >= (int) sizeof run) {
        snprintf (err, errlen, "host.data: %s: %s", self->config->data,
                  data ? "path too long" : strerror (errno));
        free (data);
        return -1;
    }
    free (data);
    struct stat st;
    if (mkdir (run, 0700) < 0 && errno != EEXIST) {
        snprintf (err, errlen, "host.data: cannot create %s: %s", run, strerror (errno));
        return -1;
    }
    if (lstat (run, &st) < 0 || !S_ISDIR (st.st_mode) || st.st_uid != geteuid ()
        || chmod (run, 0700) < 0) {
        snprintf (err, errlen, "host.data: %s must be a folder owned by this user (uid %u), "
                  "for the admin endpoint; remove it or fix its owner", run,
                  (unsigned) geteuid ());
        return -1;
    }
    /* A Unix socket's path has room for 107 bytes. */
    char endpoint[4200];
    snprintf (endpoint, sizeof endpoint, "ipc://%s/admin.sock", run);
    if (strlen (endpoint) - 6 > 107) {
        snprintf (err, errlen, "host.data: the admin socket %s is %zu bytes long, over the "
                  "107 a Unix socket allows: give host.data a shorter path", endpoint + 6,
                  strlen (endpoint) - 6);
        return -1;
    }
    self->admin = zmq_socket (self->zctx, ZMQ_ROUTER);
    int one = 1, hwm = 0;
    zmq_setsockopt (self->admin, ZMQ_ROUTER_MANDATORY, &one, sizeof one);
    zmq_setsockopt (self->admin, ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_setsockopt (self->admin, ZMQ_RCVHWM, &hwm, sizeof hwm);
    if (zmq_bind (self->admin, endpoint) != 0) {
        snprintf (err, errlen, "admin endpoint: cannot bind %s: %s", endpoint,
                  zmq_strerror (zmq_errno ()));
        return -1;
    }
    self->admin_endpoint = strdup (endpoint);
    return 0;
}

bctx_server_t *
bctx_server_new (bctx_config_t *config, const char *const *accept_truncated,
                 char *err, size_t errlen)
{
    if (s_mkdirs (config->data, err, errlen) < 0) {
        bctx_config_destroy (&config);
        return NULL;
    }
    bctx_server_t *self = calloc (1, sizeof *self);
    self->config = config;
    self->inotify = -1;
    /* host.data is this host's before any file in it is opened, and what
     * is in it is checked before anything is served. */
    self->datadir = bctx_datadir_open (config->data, err, errlen);
    if (!self->datadir
        || bctx_datadir_guard (self->datadir, config, accept_truncated, err, errlen) < 0) {
        bctx_datadir_destroy (&self->datadir);
        bctx_config_destroy (&self->config);
        free (self);
        return NULL;
    }
    self->zctx = zmq_ctx_new ();
    self->replies = zmq_socket (self->zctx, ZMQ_PULL);
    int hwm = 0;
    zmq_setsockopt (self->replies, ZMQ_RCVHWM, &hwm, sizeof hwm);
    if (zmq_bind (self->replies, S_REPLIES) != 0) {
        snprintf (err, errlen, "cannot bind %s", S_REPLIES);
        goto fail;
    }
    self->security = bctx_security_new (self->zctx, config, err, errlen);
    if (!self->security)
        goto fail;
    bctx_security = self->security;
    self->bus = bctx_bus_new (self->zctx, config->publish, self->security, err, errlen);
    if (!self->bus)
        goto fail;
    self->contexts = calloc (config->n_contexts ? config->n_contexts : 1,
                             sizeof *self->contexts);
    for (size_t i = 0; i < config->n_contexts; i++) {
        s_context_t *c = &self->contexts[i];
        c->worker = bctx_worker_new (self->zctx, config, i, err, errlen);
        if (!c->worker)
            goto fail;
        self->n_contexts = i + 1;
        c->reader = bctx_store_open (bctx_worker_store_path (c->worker),
                                     BCTX_STORE_READONLY, err, errlen);
        if (!c->reader)
            goto fail;
        c->push = zmq_socket (self->zctx, ZMQ_PUSH);
        zmq_setsockopt (c->push, ZMQ_SNDHWM, &hwm, sizeof hwm);
        if (zmq_connect (c->push, bctx_worker_endpoint (c->worker)) != 0) {
            snprintf (err, errlen, "contexts[%zu]: cannot connect its queue", i);
            goto fail;
        }
    }
    if (s_open_peers (self, err, errlen) < 0 || s_open_read_side (self, err, errlen) < 0
        || s_watch_open (self, err, errlen) < 0)
        goto fail;
    self->router = zmq_socket (self->zctx, ZMQ_ROUTER);
    int one = 1;
    zmq_setsockopt (self->router, ZMQ_ROUTER_MANDATORY, &one, sizeof one);
    zmq_setsockopt (self->router, ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_setsockopt (self->router, ZMQ_RCVHWM, &hwm, sizeof hwm);
    /* Requests over max_message get a too_large reply; far bigger ones are
     * cut off by the transport so one client cannot exhaust memory. */
    int64_t cutoff = (int64_t) config->max_message * 16 + 65536;
    zmq_setsockopt (self->router, ZMQ_MAXMSGSIZE, &cutoff, sizeof cutoff);
    bctx_security_server (self->security, self->router);
    if (zmq_bind (self->router, config->api) != 0) {
        snprintf (err, errlen, "host.api: cannot bind %s: %s", config->api,
                  zmq_strerror (zmq_errno ()));
        goto fail;
    }
    if (s_open_admin (self, err, errlen) < 0)
        goto fail;
    const char *binds[2] = { config->api, config->publish };
    for (int k = 0; k < 2; k++)
        if (binds[k] && bctx_endpoint_is_wildcard (binds[k]))
            bctx_log (BCTX_LOG_WARN, "%s %s listens on every address of this machine%s",
                      k ? "host.publish" : "host.api", binds[k], config->curve_public
                      ? "; CURVE keys authenticate its clients"
                      : " and nothing authenticates its clients (host.allow_remote without "
                        "host.curve): anyone who can reach it can send commands and read "
                        "every log");
    for (size_t i = 0; i < self->n_contexts; i++)
        if (bctx_worker_start (self->contexts[i].worker, S_REPLIES) != 0) {
            snprintf (err, errlen, "contexts[%zu]: cannot start its worker", i);
            goto fail;
        }
    for (size_t i = 0; i < self->n_bridges; i++)
        if (bctx_bridge_start (self->bridges[i]) != 0) {
            snprintf (err, errlen, "bridge %s: cannot start its thread",
                      bctx_bridge_context (self->bridges[i]));
            goto fail;
        }
    for (size_t i = 0; i < self->n_projections; i++)
        if (bctx_projector_start (self->projections[i].projector) != 0) {
            snprintf (err, errlen, "projection %s: cannot start its thread",
                      bctx_projector_name (self->projections[i].projector));
            goto fail;
        }
    for (size_t i = 0; i < self->n_reactors; i++)
        if (bctx_reactor_start (self->reactors[i]) != 0) {
            snprintf (err, errlen, "reactor %s: cannot start its thread",
                      bctx_reactor_name (self->reactors[i]));
            goto fail;
        }
    bctx_log (BCTX_LOG_INFO, "host %s serving %zu context(s), %zu projection(s), "
              "%zu reactor(s) on %s, data in %s; admin ops on %s", config->name,
              self->n_contexts, self->n_projections, self->n_reactors, config->api,
              config->data, self->admin_endpoint);
    return self;
fail:
    bctx_server_destroy (&self);
    return NULL;
}

static s_context_t *
s_find (bctx_server_t *self, const char *name)
{
    for (size_t i = 0; i < self->n_contexts; i++)
        if (strcmp (bctx_worker_name (self->contexts[i].worker), name) == 0)
            return &self->contexts[i];
    return NULL;
}

/* A client's return address is its routing envelope: every frame before
 * the empty delimiter (one for a direct client, more behind a broker or a
 * forwarding host).  It is kept as one byte string: first the socket it
 * came in on (S_PUBLIC or S_ADMIN), then each frame as one length byte and
 * its bytes. */
#define S_ENVELOPE_MAX 512
enum { S_PUBLIC = 0, S_ADMIN = 1 };

/* Encodes the socket and frames[0..n-1] into out.  Return the length, or
 * 0 when a frame is empty or longer than 255 bytes or the whole does not
 * fit. */
static size_t
s_envelope_encode (int socket, zmq_msg_t *frames, int n, unsigned char *out, size_t cap)
{
    size_t len = 0;
    out[len++] = (unsigned char) socket;
    for (int i = 0; i < n; i++) {
        size_t f = zmq_msg_size (&frames[i]);
        if (f == 0 || f > 255 || len + 1 + f > cap)
            return 0;
        out[len++] = (unsigned char) f;
        memcpy (out + len, zmq_msg_data (&frames[i]), f);
        len += f;
    }
    return len;
}

/* Sends the envelope's frames with ZMQ_SNDMORE on socket.  Return 0/-1. */
static int
s_envelope_send (void *socket, const unsigned char *env, size_t len)
{
    for (size_t at = 0; at < len;) {
        size_t f = env[at++];
        if (at + f > len || zmq_send (socket, env + at, f, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0)
            return -1;
        at += f;
    }
    return 0;
}

/* Sends one reply frame to the client named by its envelope. */
static void
s_send (bctx_server_t *self, const void *envelope, size_t envelope_len,
        int delimiter, const char *reply)
{
    const unsigned char *env = envelope;
    if (envelope_len < 1)
        return;
    void *socket = env[0] == S_ADMIN ? self->admin : self->router;
    if (s_envelope_send (socket, env + 1, envelope_len - 1) < 0) {
        if (zmq_errno () == EHOSTUNREACH)
            bctx_log (BCTX_LOG_INFO, "client left before its reply");
        else
            bctx_log (BCTX_LOG_WARN, "cannot reply: %s", zmq_strerror (zmq_errno ()));
        return;
    }
    if (delimiter)
        zmq_send (socket, "", 0, ZMQ_SNDMORE);
    zmq_send (socket, reply, strlen (reply), 0);
}

/* Room kept in a reply's budget for what closes it (`],"next":N}`). */
#define S_REPLY_TAIL 64

typedef struct {
    bctx_buf_t out;          /* the reply being written */
    const char *context;     /* whose events */
    int64_t n;               /* events written */
    int64_t limit;           /* most events to write */
    size_t budget;           /* most bytes out may hold (the first event aside) */
    int64_t next;            /* position of the first event left out, or 0 */
} s_collect_t;

/* Writes one event into the reply, unless the reply has its limit of
 * events or the event would take it past its budget: then notes the
 * event's position as where the next page starts, and stops.  The first
 * event is always written, so every page moves on. */
static int
s_collect (const bctx_row_t *e, void *arg)
{
    s_collect_t *c = arg;
    if (c->n < c->limit) {
        size_t before = c->out.len;
        if (c->n)
            bctx_buf_add (&c->out, ",", 1);
        bctx_buf_add_event (&c->out, c->context, e);
        if (c->n == 0 || c->out.len <= c->budget) {
            c->n++;
            return 0;
        }
        c->out.len = before;
        c->out.text[before] = '\0';
    }
    c->next = e->position;
    return 1;
}

/* {"op":"events","context":C,"from":P,"limit":N,"aggregate":A}: up to N
 * events from position P on, within host.max_reply bytes, and "next": the
 * position to ask from for the rest, or null when there is none. */
static char *
s_op_events (bctx_server_t *self, json_t *req)
{
    const char *name = NULL, *aggregate = NULL;
    json_int_t from = 1, limit = 100;
    json_error_t jerr;
    if (json_unpack_ex (req, &jerr, 0, "{s:s, s?s, s?I, s?I}", "context", &name,
                        "aggregate", &aggregate, "from", &from, "limit", &limit) != 0)
        return bctx_reply_error (BCTX_E_BAD_REQUEST, "events: %s", jerr.text);
    if (from < 1 || limit < 1 || limit > S_EVENTS_MAX)
        return bctx_reply_error (BCTX_E_BAD_REQUEST,
                                 "events: from must be >= 1 and limit 1 to %d",
                                 S_EVENTS_MAX);
    s_context_t *c = s_find (self, name);
    if (!c)
        return bctx_reply_error (BCTX_E_UNKNOWN_CONTEXT,
                                 "no context \"%s\" on this host", name);
    s_collect_t col = { .context = name, .limit = limit,
                        .budget = self->config->max_reply - S_REPLY_TAIL };
    bctx_buf_add_str (&col.out, "{\"ok\":true,\"events\":[");
    /* One row past the limit tells whether more follow. */
    int64_t n = bctx_store_read (c->reader, from, aggregate, limit + 1, s_collect, &col);
    if (n < 0) {
        free (col.out.text);
        return bctx_reply_error (BCTX_E_INTERNAL, "events: %s",
                                 bctx_store_error (c->reader));
    }
    bctx_buf_add_str (&col.out, "],\"next\":");
    if (col.next)
        bctx_buf_add_int (&col.out, col.next);
    else
        bctx_buf_add_str (&col.out, "null");
    bctx_buf_add_str (&col.out, "}");
    return col.out.text;
}

static s_projection_t *
s_find_projection (bctx_server_t *self, const char *name)
{
    if (!name)
        return NULL;
    for (size_t i = 0; i < self->n_projections; i++)
        if (strcmp (bctx_projector_name (self->projections[i].projector), name) == 0)
            return &self->projections[i];
    return NULL;
}

static bctx_reactor_runner_t *
s_find_reactor (bctx_server_t *self, const char *name)
{
    if (!name)
        return NULL;
    for (size_t i = 0; i < self->n_reactors; i++)
        if (strcmp (bctx_reactor_name (self->reactors[i]), name) == 0)
            return self->reactors[i];
    return NULL;
}

typedef struct {
    bctx_buf_t out;               /* the reply being written */
    int64_t n;                    /* read models written */
    int64_t limit;                /* most read models to write */
    size_t budget;                /* most bytes out may hold */
    char *last;                   /* key of the last one written (new), or NULL */
    char *refused;                /* key of a first one past the budget (new), or NULL */
    size_t refused_size;          /* its value's size */
    int more;                     /* read models follow the page */
} s_listing_t;

/* Writes one read model, its stored JSON text as it is, into the page,
 * unless the page has its limit or the model would take it past its
 * budget: then the page ends there, with more to follow. */
static int
s_list_one (const char *key, const char *value, void *arg)
{
    s_listing_t *l = arg;
    if (l->n < l->limit) {
        size_t before = l->out.len;
        if (l->n)
            bctx_buf_add (&l->out, ",", 1);
        bctx_buf_add_str (&l->out, "{\"key\":");
        bctx_buf_add_json_string (&l->out, key);
        bctx_buf_add_str (&l->out, ",\"value\":");
        bctx_buf_add_str (&l->out, value);
        bctx_buf_add_str (&l->out, "}");
        /* Room for the key once more, escaped at worst, as "next". */
        if (l->out.len + 6 * strlen (key) <= l->budget) {
            l->n++;
            free (l->last);
            l->last = strdup (key);
            return 0;
        }
        l->out.len = before;
        l->out.text[before] = '\0';
        if (l->n == 0) {
            l->refused = strdup (key);
            l->refused_size = strlen (value);
            return 1;
        }
    }
    l->more = 1;
    return 1;
}

/* {"op":"query","projection":P,"key":K} or a page of them with
 * "after"/"limit", within host.max_reply bytes; a page's "next" is the
 * "after" of the next page, or null when none follows. */
static char *
s_op_query (bctx_server_t *self, json_t *req)
{
    const char *op = NULL, *name = NULL, *key = NULL, *after = NULL;
    json_int_t limit = 100;
    json_error_t jerr;
    if (json_unpack_ex (req, &jerr, JSON_STRICT, "{s:s, s:s, s?s, s?s, s?I}", "op", &op,
                        "projection", &name, "key", &key, "after", &after,
                        "limit", &limit) != 0)
        return bctx_reply_error (BCTX_E_BAD_REQUEST, "query: %s", jerr.text);
    if (limit < 1 || limit > S_EVENTS_MAX)
        return bctx_reply_error (BCTX_E_BAD_REQUEST, "query: limit must be 1 to %d",
                                 S_EVENTS_MAX);
    if (key && after)
        return bctx_reply_error (BCTX_E_BAD_REQUEST, "query: give a key or a page, not both");
    s_projection_t *p = s_find_projection (self, name);
    if (!p)
        return bctx_reply_error (BCTX_E_BAD_REQUEST, "no projection \"%s\" on this host", name);
    size_t max = self->config->max_reply;
    bctx_buf_t out = { 0 };
    bctx_buf_add_str (&out, "{\"ok\":true,\"projection\":");
    bctx_buf_add_json_string (&out, name);
    if (key) {
        /* The stored text is compact JSON, as the projection wrote it. */
        char *text = bctx_readside_get_live (p->reader, key);
        size_t size = text ? strlen (text) : 0;
        if (size + out.len + strlen (key) * 6 + S_REPLY_TAIL > max) {
            free (text);
            free (out.text);
            return bctx_reply_error (BCTX_E_TOO_LARGE, "query: read model \"%s\" of %s is "
                                     "%zu bytes, over the reply limit of %zu (host.max_reply)",
                                     key, name, size, max);
        }
        bctx_buf_add_str (&out, ",\"key\":");
        bctx_buf_add_json_string (&out, key);
        bctx_buf_add_str (&out, ",\"value\":");
        bctx_buf_add_str (&out, text ? text : "null");
        bctx_buf_add_str (&out, "}");
        free (text);
        return out.text;
    }
    bctx_buf_add_str (&out, ",\"items\":[");
    s_listing_t l = { .out = out, .limit = limit, .budget = max - S_REPLY_TAIL };
    /* One row past the limit tells whether more follow. */
    int64_t n = bctx_readside_list_live (p->reader, after, limit + 1, s_list_one, &l);
    char *reply = NULL;
    if (n < 0)
        reply = bctx_reply_error (BCTX_E_INTERNAL, "query: %s", bctx_readside_error (p->reader));
    else if (l.refused)
        reply = bctx_reply_error (BCTX_E_TOO_LARGE, "query: read model \"%s\" of %s is %zu "
                                  "bytes, over the reply limit of %zu (host.max_reply); list "
                                  "past it with \"after\":\"%s\"", l.refused, name,
                                  l.refused_size, max, l.refused);
    if (!reply) {
        bctx_buf_add_str (&l.out, "],\"next\":");
        if (l.more && l.last)
            bctx_buf_add_json_string (&l.out, l.last);
        else
            bctx_buf_add_str (&l.out, "null");
        bctx_buf_add_str (&l.out, "}");
        reply = l.out.text;
    } else {
        free (l.out.text);
    }
    free (l.last);
    free (l.refused);
    return reply;
}

static char *
s_op_replay (bctx_server_t *self, json_t *req)
{
    const char *name = NULL, *op = NULL;
    json_error_t jerr;
    if (json_unpack_ex (req, &jerr, JSON_STRICT, "{s:s, s:s}", "op", &op,
                        "projection", &name) != 0)
        return bctx_reply_error (BCTX_E_BAD_REQUEST, "replay: %s", jerr.text);
    s_projection_t *p = s_find_projection (self, name);
    if (!p)
        return bctx_reply_error (BCTX_E_BAD_REQUEST, "no projection \"%s\" on this host", name);
    bctx_projector_replay (p->projector);
    bctx_log (BCTX_LOG_INFO, "projection %s: replay asked", name);
    return bctx_reply_dump_new (json_pack ("{s:b, s:s, s:b}", "ok", 1, "projection", name,
                                           "rebuilding", 1));
}

static char *
s_op_retry (bctx_server_t *self, json_t *req)
{
    const char *name = NULL, *op = NULL;
    json_error_t jerr;
    if (json_unpack_ex (req, &jerr, JSON_STRICT, "{s:s, s:s}", "op", &op,
                        "reactor", &name) != 0)
        return bctx_reply_error (BCTX_E_BAD_REQUEST, "retry: %s", jerr.text);
    bctx_reactor_runner_t *r = s_find_reactor (self, name);
    if (!r)
        return bctx_reply_error (BCTX_E_BAD_REQUEST, "no reactor \"%s\" on this host", name);
    int64_t parked = bctx_reactor_parked (r);
    bctx_reactor_retry (r);
    return bctx_reply_dump_new (json_pack ("{s:b, s:s, s:I}", "ok", 1, "reactor", name,
                                           "parked", (json_int_t) parked));
}

/* --- hot swap -------------------------------------------------------- */

static void s_send (bctx_server_t *self, const void *identity, size_t identity_len,
                    int delimiter, const char *reply);

/* Answers the client of a reload (if any) and logs the outcome. */
static void
s_reload_answer (bctx_server_t *self, s_reload_t *r, const char *reply)
{
    if (r->identity_len)
        s_send (self, r->identity, r->identity_len, r->delimiter, reply);
}

/* The bounds of a plugin load under config (borrowed: its dirs stay the
 * config's), giving up at deadline (monotonic seconds; 0: never). */
static bctx_plugin_bounds_t
s_bounds (const bctx_config_t *config, double deadline)
{
    return (bctx_plugin_bounds_t) {
        .dirs = config->plugin_dirs, .n_dirs = config->n_plugin_dirs,
        .dirs_given = config->plugin_dirs_given, .max_bytes = config->max_plugin_bytes,
        .deadline = deadline,
    };
}

/* What a preparer thread needs; it owns this and frees it. */
typedef struct {
    void *zctx;                   /* to hand the job back */
    _Atomic int *running;         /* the server's count of preparers */
    bctx_job_t *job;              /* the reload job it fills */
    char *name;                   /* the context */
    char *path;                   /* the plugin file */
    json_t *settings;             /* the context's settings (a reference) */
    char *store_path;             /* the context's log */
    bctx_plugin_bounds_t bounds;  /* the load's bounds, with the reload's deadline */
    char **dirs;                  /* bounds.dirs, copied: a SIGHUP may free the config's */
} s_preparer_t;

/* Frees what a preparer owns, and itself. */
static void
s_preparer_free (s_preparer_t *p)
{
    free (p->name);
    free (p->path);
    json_decref (p->settings);
    free (p->store_path);
    for (size_t i = 0; p->dirs && i < p->bounds.n_dirs; i++)
        free (p->dirs[i]);
    free (p->dirs);
    free (p);
}

/* Loads, checks and warms the new version off the API thread, then hands
 * the job back to the API thread through the replies socket. */
static void *
s_prepare (void *arg)
{
    s_preparer_t *p = arg;
    bctx_job_t *job = p->job;
    char err[1024];
    job->plugin = bctx_worker_prepare (job, p->name, p->path, p->settings, &p->bounds,
                                       p->store_path, err, sizeof err);
    if (!job->plugin)
        job->reply = strdup (err);
    job->prepared = 1;
    void *push = zmq_socket (p->zctx, ZMQ_PUSH);
    int linger = 0;
    if (push)
        zmq_setsockopt (push, ZMQ_LINGER, &linger, sizeof linger);
    if (!push || zmq_connect (push, S_REPLIES) != 0
        || zmq_send (push, &job, sizeof job, 0) < 0)
        bctx_job_destroy (&job);   /* the host is stopping */
    if (push)
        zmq_close (push);
    _Atomic int *running = p->running;
    s_preparer_free (p);
    atomic_fetch_sub (running, 1);
    return NULL;
}

/* Starts preparing the new version on its own thread.  Return NULL when
 * started (or when it must wait for the old version to drain), or an error
 * reply (new). */
static char *
s_reload_load (bctx_server_t *self, s_reload_t *r)
{
    bctx_worker_t *w = self->contexts[r->ctx].worker;
    const bctx_context_config_t *cc = &self->config->contexts[r->ctx];
    if (atomic_load (bctx_worker_loaded (w)) >= 2)
        return NULL;               /* at most two versions: wait */
    s_preparer_t *p = calloc (1, sizeof *p);
    p->zctx = self->zctx;
    p->running = &self->preparers;
    atomic_fetch_add (&self->preparers, 1);
    p->job = calloc (1, sizeof *p->job);
    p->job->kind = BCTX_JOB_RELOAD;
    p->name = strdup (cc->name);
    p->path = strdup (r->path);
    p->settings = json_incref (cc->settings);
    p->store_path = strdup (bctx_worker_store_path (w));
    /* The copy of the file and its checks stop at the reload's deadline. */
    p->bounds = s_bounds (self->config, r->deadline);
    p->dirs = calloc (p->bounds.n_dirs ? p->bounds.n_dirs : 1, sizeof *p->dirs);
    for (size_t i = 0; i < p->bounds.n_dirs; i++)
        p->dirs[i] = strdup (self->config->plugin_dirs[i]);
    p->bounds.dirs = p->dirs;
    r->job = p->job;
    r->preparing = 1;
    pthread_t thread;
    pthread_attr_t attr;
    pthread_attr_init (&attr);
    pthread_attr_setdetachstate (&attr, PTHREAD_CREATE_DETACHED);
    int rc = pthread_create (&thread, &attr, s_prepare, p);
    pthread_attr_destroy (&attr);
    if (rc != 0) {
        atomic_fetch_sub (&self->preparers, 1);
        r->job = NULL;
        r->preparing = 0;
        bctx_job_destroy (&p->job);
        s_preparer_free (p);
        return bctx_reply_error (BCTX_E_INTERNAL, "cannot start a thread to load the plugin");
    }
    return NULL;
}

/* The preparer is done: refuse, or send the new version to the worker.
 * Return an error reply (new), or NULL when it went to the worker. */
static char *
s_reload_send (bctx_server_t *self, s_reload_t *r)
{
    bctx_job_t *job = r->job;
    bctx_worker_t *w = self->contexts[r->ctx].worker;
    const char *name = self->config->contexts[r->ctx].name;
    char err[1400];
    r->preparing = 0;
    if (job->plugin) {
        job->plugin->loaded = bctx_worker_loaded (w);
        atomic_fetch_add (job->plugin->loaded, 1);
        if (s_check_read_side (self, job->plugin, err, sizeof err) != 0)
            bctx_plugin_unref (&job->plugin);
    } else {
        snprintf (err, sizeof err, "%s", job->reply ? job->reply : "cannot load");
    }
    if (job->plugin && self->stopping) {
        bctx_plugin_unref (&job->plugin);
        snprintf (err, sizeof err, "the host is stopping");
    }
    if (!job->plugin || atomic_load (&job->state) != BCTX_JOB_PENDING) {
        /* The wire code follows why: a timeout is "unavailable" like the
         * tick's, a refused file by its reason, anything else the request's. */
        const char *code = BCTX_E_BAD_REQUEST;
        if (job->plugin || job->load_failure == BCTX_LOAD_TIMED_OUT) {
            char why[1024];
            snprintf (why, sizeof why, "%.1000s", job->plugin ? "" : err);
            snprintf (err, sizeof err, "reload of context %s timed out after %zu ms while "
                      "loading the plugin%s%s", name, self->config->reload_timeout_ms,
                      *why ? ": " : "", why);
            code = BCTX_E_UNAVAILABLE;
        } else if (job->load_failure == BCTX_LOAD_FORBIDDEN) {
            code = BCTX_E_FORBIDDEN;
        } else if (job->load_failure == BCTX_LOAD_TOO_BIG) {
            code = BCTX_E_TOO_LARGE;
        }
        bctx_plugin_unref (&job->plugin);
        bctx_worker_reload_failed (w, err);
        bctx_log (BCTX_LOG_ERROR, "context %s: reload failed, the old version keeps serving: %s",
                  name, err);
        r->job = NULL;
        bctx_job_destroy (&job);
        return bctx_reply_error (code, "reload failed, the old version keeps serving: %s", err);
    }
    free (job->reply);
    job->reply = NULL;
    if (zmq_send (self->contexts[r->ctx].push, &job, sizeof job, 0) < 0) {
        r->job = NULL;
        bctx_job_destroy (&job);
        return bctx_reply_error (BCTX_E_UNAVAILABLE, "context %s is not taking commands", name);
    }
    return NULL;
}

static void
s_reload_remove (bctx_server_t *self, size_t k)
{
    free (self->reloads[k].path);
    self->reloads[k] = self->reloads[--self->n_reloads];
}

/* Starts a reload of context ctx from path (borrowed).  Return an error
 * reply (new), or NULL when the outcome will be answered later. */
static char *
s_reload_start (bctx_server_t *self, size_t ctx, const char *path,
                const void *identity, size_t identity_len, int delimiter)
{
    /* First and cheapest: may code load from there at all?  Nothing opens
     * the file before this (the loader checks again for every load).  A
     * path that does not resolve goes on, for the loader to say so. */
    const char *name = self->config->contexts[ctx].name;
    bctx_plugin_bounds_t bounds = s_bounds (self->config, 0);
    char *resolved = NULL, why[2048];
    if (bctx_plugin_dirs_check (&bounds, path, "reload", &resolved, why, sizeof why)
        == BCTX_LOAD_FORBIDDEN) {
        bctx_worker_reload_failed (self->contexts[ctx].worker, why);
        bctx_log (BCTX_LOG_ERROR, "context %s: reload refused, the old version keeps "
                  "serving: %s", name, why);
        return bctx_reply_error (BCTX_E_FORBIDDEN, "reload refused, the old version keeps "
                                 "serving: %s", why);
    }
    free (resolved);
    for (size_t k = 0; k < self->n_reloads; k++)
        if (self->reloads[k].ctx == ctx)
            return bctx_reply_error (BCTX_E_UNAVAILABLE, "a reload of context %s is already "
                                     "in progress", self->config->contexts[ctx].name);
    if (identity_len > sizeof self->reloads[0].identity)
        return bctx_reply_error (BCTX_E_BAD_REQUEST, "routing id too long");
    self->reloads = realloc (self->reloads, (self->n_reloads + 1) * sizeof *self->reloads);
    s_reload_t *r = &self->reloads[self->n_reloads++];
    memset (r, 0, sizeof *r);
    r->ctx = ctx;
    r->path = strdup (path);
    r->deadline = s_now () + (double) self->config->reload_timeout_ms / 1000.0;
    if (identity_len)
        memcpy (r->identity, identity, identity_len);
    r->identity_len = identity_len;
    r->delimiter = delimiter;
    bctx_log (BCTX_LOG_INFO, "context %s: reloading from %s", self->config->contexts[ctx].name,
              path);
    char *reply = s_reload_load (self, r);
    if (reply)
        s_reload_remove (self, self->n_reloads - 1);
    return reply;
}

/* After the worker switched: moves the context's projections and reactors
 * to the new version, starts the ones it adds, stops the ones it drops. */
static int
s_reload_runners (bctx_server_t *self, size_t ctx, char *err, size_t errlen)
{
    bctx_plugin_t *p = bctx_worker_plugin (self->contexts[ctx].worker);
    const char *name = p->name;
    for (size_t i = 0; i < self->n_projections;) {
        bctx_projector_t *pr = self->projections[i].projector;
        if (strcmp (bctx_projector_context (pr), name) != 0) {
            i++;
            continue;
        }
        const bctx_projection_t *def = NULL;
        for (const bctx_projection_t *d = p->desc->projections; d && d->name; d++)
            if (strcmp (d->name, bctx_projector_name (pr)) == 0)
                def = d;
        if (def) {
            bctx_projector_switch (pr, p, def, self->sources, self->n_sources);
            i++;
        } else {
            bctx_log (BCTX_LOG_INFO, "projection %s: no longer declared; stopped",
                      bctx_projector_name (pr));
            bctx_projector_destroy (&self->projections[i].projector);
            bctx_readside_destroy (&self->projections[i].reader);
            self->projections[i] = self->projections[--self->n_projections];
        }
    }
    for (size_t i = 0; i < self->n_reactors;) {
        bctx_reactor_runner_t *r = self->reactors[i];
        if (strcmp (bctx_reactor_context (r), name) != 0) {
            i++;
            continue;
        }
        const bctx_reactor_t *def = NULL;
        for (const bctx_reactor_t *d = p->desc->reactors; d && d->name; d++)
            if (strcmp (d->name, bctx_reactor_name (r)) == 0)
                def = d;
        if (def) {
            bctx_reactor_switch (r, p, def, self->sources, self->n_sources);
            i++;
        } else {
            bctx_log (BCTX_LOG_INFO, "reactor %s: no longer declared; stopped",
                      bctx_reactor_name (r));
            bctx_reactor_destroy (&self->reactors[i]);
            self->reactors[i] = self->reactors[--self->n_reactors];
        }
    }
    int rc = s_add_runners (self, p, 1, err, errlen);
    bctx_plugin_unref (&p);
    return rc;
}

static void *
s_free_json (void *arg)
{
    json_decref (arg);
    return NULL;
}

/* Frees a big JSON value on a thread of its own: the old version's
 * aggregate cache can take tens of milliseconds to free, which the API
 * thread must not spend while clients wait.  value: stolen. */
static void
s_free_later (json_t *value)
{
    if (!value)
        return;
    pthread_t thread;
    pthread_attr_t attr;
    pthread_attr_init (&attr);
    pthread_attr_setdetachstate (&attr, PTHREAD_CREATE_DETACHED);
    if (pthread_create (&thread, &attr, s_free_json, value) != 0)
        json_decref (value);
    pthread_attr_destroy (&attr);
}

/* A reload job came back from its worker. */
static void
s_reload_done (bctx_server_t *self, bctx_job_t *job)
{
    size_t k = 0;
    while (k < self->n_reloads && self->reloads[k].job != job)
        k++;
    if (k == self->n_reloads) {
        /* A rollback (see below): nobody waits for it, but the runners
         * must follow the worker back to the old version. */
        if (job->rollback)
            self->rollbacks--;
        if (job->tag > 0 && !self->stopping && job->reply
            && strstr (job->reply, "\"ok\":true")) {
            char err[512];
            size_t ctx = (size_t) job->tag - 1;
            if (ctx < self->n_contexts && s_reload_runners (self, ctx, err, sizeof err) != 0)
                bctx_log (BCTX_LOG_ERROR, "context %s: after the rollback: %s",
                          self->config->contexts[ctx].name, err);
            bctx_log (BCTX_LOG_WARN, "context %s: rolled back to the previous version",
                      ctx < self->n_contexts ? self->config->contexts[ctx].name : "?");
        }
        s_free_later (job->dropped);
        job->dropped = NULL;
        bctx_job_destroy (&job);
        return;
    }
    s_reload_t *r = &self->reloads[k];
    const char *name = self->config->contexts[r->ctx].name;
    if (r->preparing) {
        char *reply = s_reload_send (self, r);
        if (reply) {
            s_reload_answer (self, r, reply);
            free (reply);
            s_reload_remove (self, k);
        }
        return;
    }
    if (job->reply && strstr (job->reply, "\"ok\":true") && self->stopping) {
        /* The worker switched, but the read side is already stopped. */
        s_reload_answer (self, r, job->reply);
    } else if (job->reply && strstr (job->reply, "\"ok\":true")) {
        char err[512];
        if (s_reload_runners (self, r->ctx, err, sizeof err) != 0) {
            /* Put the old version back; job->plugin is it. */
            bctx_log (BCTX_LOG_ERROR, "context %s: reload failed after the switch (%s); "
                      "rolling back to version %s", name, err,
                      job->plugin->desc->version);
            bctx_worker_reload_failed (self->contexts[r->ctx].worker, err);
            bctx_job_t *back = calloc (1, sizeof *back);
            back->kind = BCTX_JOB_RELOAD;
            back->tag = (long) r->ctx + 1;
            back->rollback = 1;
            back->plugin = job->plugin;
            job->plugin = NULL;
            if (zmq_send (self->contexts[r->ctx].push, &back, sizeof back, 0) < 0)
                bctx_job_destroy (&back);
            else
                self->rollbacks++;
            char *reply = bctx_reply_error (BCTX_E_BAD_REQUEST, "reload rolled back: %s", err);
            s_reload_answer (self, r, reply);
            free (reply);
        } else {
            bctx_plugin_t *now = bctx_worker_plugin (self->contexts[r->ctx].worker);
            bctx_log (BCTX_LOG_INFO, "context %s: version %s from %s now serving (was %s); "
                      "commands were held %lld us", name, now->desc->version, now->path,
                      job->plugin ? job->plugin->desc->version : "?", job->pause_us);
            bctx_plugin_unref (&now);
            s_reload_answer (self, r, job->reply);
        }
    } else {
        s_reload_answer (self, r, job->reply ? job->reply
                         : "{\"ok\":false,\"error\":{\"code\":\"internal\",\"message\":\"no reply\"}}");
    }
    s_free_later (job->dropped);
    job->dropped = NULL;
    bctx_job_destroy (&job);      /* drops the old version's worker reference */
    s_reload_remove (self, k);
}

/* Loads waiting reloads whose old version has drained; cancels the ones
 * past their deadline.  Return the seconds until the next deadline, or -1. */
static double
s_reload_tick (bctx_server_t *self)
{
    double now = s_now (), next = -1;
    for (size_t k = 0; k < self->n_reloads;) {
        s_reload_t *r = &self->reloads[k];
        const char *name = self->config->contexts[r->ctx].name;
        if (r->preparing) {
            /* The preparer answers soon; its deadline is checked then. */
            if (now >= r->deadline)
                atomic_store (&r->job->state, BCTX_JOB_CANCELLED);
            k++;
            continue;
        }
        if (!r->job && now < r->deadline) {
            char *reply = s_reload_load (self, r);
            if (reply) {
                s_reload_answer (self, r, reply);
                free (reply);
                s_reload_remove (self, k);
                continue;
            }
        }
        if (now >= r->deadline) {
            int expected = BCTX_JOB_PENDING;
            if (!r->job || atomic_compare_exchange_strong (&r->job->state, &expected,
                                                           BCTX_JOB_CANCELLED)) {
                /* The worker frees a cancelled job when it gets to it. */
                char why[512];
                snprintf (why, sizeof why, "reload of context %s timed out after %zu ms: %s; "
                          "the old version keeps serving", name, self->config->reload_timeout_ms,
                          r->job ? "the context did not reach a switch point (a command is "
                                   "still running in it)"
                                 : "the previous version is still draining");
                char *reply = bctx_reply_error (BCTX_E_UNAVAILABLE, "%s", why);
                bctx_worker_reload_failed (self->contexts[r->ctx].worker, why);
                bctx_log (BCTX_LOG_ERROR, "context %s: %s", name, why);
                s_reload_answer (self, r, reply);
                free (reply);
                s_reload_remove (self, k);
                continue;
            }
            /* The worker took it: its answer is on the way. */
        }
        double wait = r->job ? r->deadline - now : 0.005;
        if (wait < 0)
            wait = 0.005;
        if (next < 0 || wait < next)
            next = wait;
        k++;
    }
    return next;
}

/* {"op":"reload","context":C,"plugin":P?} */
static char *
s_op_reload (bctx_server_t *self, json_t *req, const void *identity, size_t identity_len,
             int delimiter)
{
    const char *op = NULL, *name = NULL, *path = NULL;
    json_error_t jerr;
    if (json_unpack_ex (req, &jerr, JSON_STRICT, "{s:s, s:s, s?s}", "op", &op,
                        "context", &name, "plugin", &path) != 0)
        return bctx_reply_error (BCTX_E_BAD_REQUEST, "reload: %s", jerr.text);
    for (size_t i = 0; i < self->n_contexts; i++)
        if (strcmp (self->config->contexts[i].name, name) == 0)
            return s_reload_start (self, i, path ? path : self->config->contexts[i].plugin,
                                   identity, identity_len, delimiter);
    return bctx_reply_error (BCTX_E_UNKNOWN_CONTEXT, "no context \"%s\" on this host", name);
}

/* --- file watch ------------------------------------------------------ */

static int
s_watch_open (bctx_server_t *self, char *err, size_t errlen)
{
    self->inotify = -1;
    self->watches = calloc (self->n_contexts ? self->n_contexts : 1, sizeof *self->watches);
    for (size_t i = 0; i < self->n_contexts; i++) {
        s_watch_t *w = &self->watches[i];
        w->wd = -1;
        if (!self->config->contexts[i].watch)
            continue;
        if (self->inotify < 0) {
            self->inotify = inotify_init1 (IN_NONBLOCK | IN_CLOEXEC);
            if (self->inotify < 0) {
                snprintf (err, errlen, "contexts[%zu].watch: inotify: %s", i, strerror (errno));
                return -1;
            }
        }
        char *a = strdup (self->config->contexts[i].plugin);
        char *b = strdup (self->config->contexts[i].plugin);
        w->file = strdup (basename (b));
        w->wd = inotify_add_watch (self->inotify, dirname (a),
                                   IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE);
        free (a);
        free (b);
        if (w->wd < 0) {
            snprintf (err, errlen, "contexts[%zu].watch: cannot watch %s: %s", i,
                      self->config->contexts[i].plugin, strerror (errno));
            return -1;
        }
        bctx_log (BCTX_LOG_INFO, "context %s: watching %s", self->config->contexts[i].name,
                  self->config->contexts[i].plugin);
    }
    return 0;
}

/* Reads inotify events: a change to a watched file (re)arms its debounce. */
static void
s_watch_read (bctx_server_t *self)
{
    char buf[8192] __attribute__ ((aligned (__alignof__ (struct inotify_event))));
    ssize_t n;
    while ((n = read (self->inotify, buf, sizeof buf)) > 0) {
        for (char *p = buf; p < buf + n;) {
            struct inotify_event *ev = (struct inotify_event *) p;
            for (size_t i = 0; i < self->n_contexts; i++) {
                s_watch_t *w = &self->watches[i];
                if (w->wd == ev->wd && ev->len && strcmp (ev->name, w->file) == 0)
                    w->due = s_now () + 0.3;   /* quiet for 300 ms: whole */
            }
            p += sizeof *ev + ev->len;
        }
    }
}

/* Starts the reloads whose files have been quiet long enough.  Return the
 * seconds until the next one is due, or -1. */
static double
s_watch_tick (bctx_server_t *self)
{
    double now = s_now (), next = -1;
    for (size_t i = 0; self->watches && i < self->n_contexts; i++) {
        s_watch_t *w = &self->watches[i];
        if (!w->due)
            continue;
        if (now >= w->due) {
            w->due = 0;
            bctx_log (BCTX_LOG_INFO, "context %s: %s changed", self->config->contexts[i].name,
                      self->config->contexts[i].plugin);
            char *reply = s_reload_start (self, i, self->config->contexts[i].plugin, NULL, 0, 0);
            free (reply);       /* already logged */
        } else if (next < 0 || w->due - now < next) {
            next = w->due - now;
        }
    }
    return next;
}

static char *
s_op_contexts (bctx_server_t *self)
{
    json_t *list = json_array ();
    for (size_t i = 0; i < self->n_contexts; i++) {
        json_t *info = bctx_worker_describe (self->contexts[i].worker);
        json_object_set_new (info, "watch", json_boolean (self->config->contexts[i].watch));
        json_array_append_new (list, info);
    }
    json_t *remote = json_array ();
    for (size_t r = 0; r < self->config->n_remotes; r++)
        json_array_append_new (remote, json_pack (
            "{s:s, s:s, s:s}", "name", self->config->remotes[r].name,
            "peer", self->config->peers[self->config->remotes[r].peer].name,
            "api", self->config->peers[self->config->remotes[r].peer].api));
    return bctx_reply_dump_new (json_pack ("{s:b, s:s, s:o, s:o}", "ok", 1, "host",
                                           self->config->name, "contexts", list,
                                           "remote", remote));
}

static char *
s_op_stats (bctx_server_t *self)
{
    json_t *contexts = json_object ();
    for (size_t i = 0; i < self->n_contexts; i++) {
        bctx_worker_t *w = self->contexts[i].worker;
        bctx_worker_stats_t *s = bctx_worker_stats (w);
        int64_t batches = atomic_load (&s->batches);
        int64_t commands = atomic_load (&s->commands);
        json_object_set_new (contexts, bctx_worker_name (w), json_pack (
            "{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:f}",
            "position", (json_int_t) atomic_load (&s->position),
            "commands", (json_int_t) commands,
            "accepted", (json_int_t) atomic_load (&s->accepted),
            "rejected", (json_int_t) atomic_load (&s->rejected),
            "failed", (json_int_t) atomic_load (&s->failed),
            "duplicates", (json_int_t) atomic_load (&s->duplicates),
            "events", (json_int_t) atomic_load (&s->events),
            "commits", (json_int_t) batches,
            "commands_per_commit", batches ? (double) commands / (double) batches : 0.0));
    }
    json_t *projections = json_object ();
    for (size_t i = 0; i < self->n_projections; i++)
        json_object_set_new (projections, bctx_projector_name (self->projections[i].projector),
                             bctx_projector_stats (self->projections[i].projector));
    json_t *reactors = json_object ();
    for (size_t i = 0; i < self->n_reactors; i++)
        json_object_set_new (reactors, bctx_reactor_name (self->reactors[i]),
                             bctx_reactor_stats (self->reactors[i]));
    json_t *bridges = json_object ();
    for (size_t i = 0; i < self->n_bridges; i++)
        json_object_set_new (bridges, bctx_bridge_context (self->bridges[i]),
                             bctx_bridge_stats (self->bridges[i]));
    json_t *peers = json_object ();
    for (size_t i = 0; i < self->config->n_peers; i++)
        json_object_set_new (peers, self->config->peers[i].name, json_pack (
            "{s:s, s:s, s:I, s:I}", "api", self->config->peers[i].api,
            "publish", self->config->peers[i].publish,
            "forwarded", (json_int_t) self->peers[i].forwarded,
            "unanswered", (json_int_t) self->peers[i].unanswered));
    return bctx_reply_dump_new (json_pack (
        "{s:b, s:s, s:{s:I, s:I, s:I, s:I, s:I}, s:o, s:o, s:o, s:o, s:o}", "ok", 1, "host",
        self->config->name, "api", "requests", (json_int_t) self->requests,
        "in_flight", (json_int_t) self->in_flight,
        "bad_request", (json_int_t) self->bad,
        "too_large", (json_int_t) self->too_large,
        "forbidden", (json_int_t) self->forbidden, "contexts", contexts,
        "projections", projections, "reactors", reactors, "bridges", bridges,
        "peers", peers));
}

/* --- forwarding to peers -------------------------------------------- */

static int
s_open_peers (bctx_server_t *self, char *err, size_t errlen)
{
    self->peers = calloc (self->config->n_peers ? self->config->n_peers : 1,
                          sizeof *self->peers);
    for (size_t i = 0; i < self->config->n_peers; i++) {
        const bctx_peer_config_t *pc = &self->config->peers[i];
        /* The config compares the strings; names may still hide this host. */
        if (bctx_endpoint_same_socket (self->config->api, pc->api)) {
            snprintf (err, errlen, "peers[%zu].api: %s resolves to this host's own API (%s): "
                      "a peer is another host", i, pc->api, self->config->api);
            return -1;
        }
        void *d = zmq_socket (self->zctx, ZMQ_DEALER);
        int linger = 0, immediate = 1, hwm = 100000;
        int ivl = 1000, ttl = 3000, reconnect_max = 2000;
        zmq_setsockopt (d, ZMQ_LINGER, &linger, sizeof linger);
        /* No queueing for a peer that is not connected: the client gets
         * "unavailable" now rather than at the deadline. */
        zmq_setsockopt (d, ZMQ_IMMEDIATE, &immediate, sizeof immediate);
        zmq_setsockopt (d, ZMQ_SNDHWM, &hwm, sizeof hwm);
        zmq_setsockopt (d, ZMQ_HEARTBEAT_IVL, &ivl, sizeof ivl);
        zmq_setsockopt (d, ZMQ_HEARTBEAT_TIMEOUT, &ttl, sizeof ttl);
        zmq_setsockopt (d, ZMQ_RECONNECT_IVL_MAX, &reconnect_max, sizeof reconnect_max);
        bctx_security_client (self->security, d, pc->public_key);
        if (zmq_connect (d, pc->api) != 0) {
            snprintf (err, errlen, "peers[%zu].api: %s: %s", i, pc->api,
                      zmq_strerror (zmq_errno ()));
            zmq_close (d);
            return -1;
        }
        self->peers[i].dealer = d;
    }
    return 0;
}

/* Forwards a command for a context that lives on a peer.  Return NULL when
 * sent (the peer's reply comes back later), or an error reply. */
static char *
s_forward (bctx_server_t *self, size_t peer, json_t *req, const void *env,
           size_t env_len, int delimiter)
{
    const bctx_peer_config_t *pc = &self->config->peers[peer];
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
        return bctx_reply_error (BCTX_E_UNAVAILABLE, "peer %s (%s) is not connected",
                                 pc->name, pc->api);
    }
    self->forwards = realloc (self->forwards, (self->n_forwards + 1) * sizeof *self->forwards);
    s_forward_t *f = &self->forwards[self->n_forwards++];
    f->tag = tag;
    f->peer = peer;
    f->deadline = s_now () + (double) self->config->forward_timeout_ms / 1000.0;
    memcpy (f->env, env, env_len);
    f->env_len = env_len;
    f->delimiter = delimiter;
    return NULL;
}

/* A peer answered: pass the reply to the client that waits for it. */
static void
s_on_peer_reply (bctx_server_t *self, size_t peer)
{
    for (int k = 0; k < 256; k++) {
        zmq_msg_t frames[3];
        int n = 0, more = 1;
        while (more) {
            zmq_msg_t scratch, *m = n < 3 ? &frames[n] : &scratch;
            zmq_msg_init (m);
            if (zmq_msg_recv (m, self->peers[peer].dealer, ZMQ_DONTWAIT) < 0) {
                zmq_msg_close (m);
                break;
            }
            more = zmq_msg_more (m);
            if (n >= 3)
                zmq_msg_close (m);
            n++;
        }
        if (n == 0)
            return;
        int kept = n < 3 ? n : 3;
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
            s_send (self, f->env, f->env_len, f->delimiter, reply);
            free (reply);
            self->forwards[i] = self->forwards[--self->n_forwards];
        } else {
            bctx_log (BCTX_LOG_INFO, "peer %s: dropping a reply nobody waits for "
                      "(late or malformed)", self->config->peers[peer].name);
        }
        for (int j = 0; j < kept; j++)
            zmq_msg_close (&frames[j]);
    }
}

/* Answers "unavailable" to the forwarded commands past their deadline.
 * Return the seconds until the next deadline, or -1. */
static double
s_forward_tick (bctx_server_t *self)
{
    double now = s_now (), next = -1;
    for (size_t i = 0; i < self->n_forwards;) {
        s_forward_t *f = &self->forwards[i];
        if (now >= f->deadline) {
            const bctx_peer_config_t *pc = &self->config->peers[f->peer];
            self->peers[f->peer].unanswered++;
            char *reply = bctx_reply_error (BCTX_E_UNAVAILABLE, "peer %s (%s) did not answer "
                                            "within %zu ms", pc->name, pc->api,
                                            self->config->forward_timeout_ms);
            s_send (self, f->env, f->env_len, f->delimiter, reply);
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

/* Is text[0..len-1] free of NUL and other control characters? */
static int
s_printable (const char *text, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if ((unsigned char) text[i] < 0x20 || text[i] == 0x7f)
            return 0;
    return 1;
}

/* Checks a "send" and hands it to its worker.  Return NULL when handed on
 * (the worker replies), or an error reply. */
static char *
s_op_send (bctx_server_t *self, json_t *req, unsigned role, const void *identity,
           size_t identity_len, int delimiter)
{
    static const char *const keys[] = {
        "op", "context", "command", "id", "data", "correlation_id",
        "causation_id", "forwarded_by", "origin", NULL
    };
    const char *key;
    json_t *value;
    json_object_foreach (req, key, value) {
        int known = 0;
        for (const char *const *k = keys; *k; k++)
            known |= strcmp (*k, key) == 0;
        if (!known)
            return bctx_reply_error (BCTX_E_BAD_REQUEST, "send: unknown field \"%s\"", key);
    }
    json_t *context = json_object_get (req, "context");
    json_t *command = json_object_get (req, "command");
    json_t *data = json_object_get (req, "data");
    if (!json_is_string (context))
        return bctx_reply_error (BCTX_E_BAD_REQUEST, "send: \"context\" must be a string");
    if (!json_is_string (command) || json_string_length (command) == 0)
        return bctx_reply_error (BCTX_E_BAD_REQUEST,
                                 "send: \"command\" must be a non-empty string");
    if (!json_is_object (data))
        return bctx_reply_error (BCTX_E_BAD_REQUEST, "send: \"data\" must be an object");
    static const char *const ids[] = { "id", "correlation_id", "causation_id" };
    for (size_t i = 0; i < 3; i++) {
        json_t *v = json_object_get (req, ids[i]);
        if (v && (!json_is_string (v) || json_string_length (v) == 0
                  || json_string_length (v) > S_ID_MAX
                  || !s_printable (json_string_value (v), json_string_length (v))))
            return bctx_reply_error (BCTX_E_BAD_REQUEST,
                                     "send: \"%s\" must be a string of 1 to %d bytes, "
                                     "without control characters", ids[i], S_ID_MAX);
    }
    /* A reactor's command: only a peer host (whose reactor sent it) or an
     * admin may say so.  Its id then lives apart from the clients' ids. */
    json_t *origin = json_object_get (req, "origin");
    int from_reactor = 0;
    if (origin) {
        if (!json_is_string (origin) || strcmp (json_string_value (origin), "reactor") != 0)
            return bctx_reply_error (BCTX_E_BAD_REQUEST,
                                     "send: \"origin\" can only be \"reactor\"");
        if (!(role & (BCTX_ROLE_PEER | BCTX_ROLE_ADMIN))) {
            self->forbidden++;
            return bctx_reply_error (BCTX_E_FORBIDDEN, "send: only a peer host's reactor "
                                     "sends commands with \"origin\": \"reactor\"; this "
                                     "connection's role is %s", bctx_role_name (role));
        }
        from_reactor = 1;
    }
    s_context_t *c = s_find (self, json_string_value (context));
    if (!c) {
        const char *by = json_string_value (json_object_get (req, "forwarded_by"));
        for (size_t i = 0; i < self->config->n_remotes; i++) {
            if (strcmp (self->config->remotes[i].name, json_string_value (context)) != 0)
                continue;
            if (by)    /* forwarded once already: never twice, or two hosts loop */
                return bctx_reply_error (BCTX_E_UNKNOWN_CONTEXT,
                                         "context \"%s\" is not on host %s, which host %s "
                                         "forwarded it to: their configs point at each other",
                                         json_string_value (context), self->config->name, by);
            json_object_set_new (req, "forwarded_by", json_string (self->config->name));
            return s_forward (self, self->config->remotes[i].peer, req, identity,
                              identity_len, delimiter);
        }
        return bctx_reply_error (BCTX_E_UNKNOWN_CONTEXT,
                                 "no context \"%s\" on this host",
                                 json_string_value (context));
    }
    if (identity_len > sizeof ((bctx_job_t *) 0)->identity)
        return bctx_reply_error (BCTX_E_BAD_REQUEST, "routing id too long");
    bctx_job_t *job = calloc (1, sizeof *job);
    memcpy (job->identity, identity, identity_len);
    job->identity_len = identity_len;
    job->delimiter = delimiter;
    job->origin = from_reactor ? BCTX_ORIGIN_REACTOR : BCTX_ORIGIN_CLIENT;
    job->request = json_incref (req);
    if (zmq_send (c->push, &job, sizeof job, 0) < 0) {
        bctx_job_destroy (&job);
        return bctx_reply_error (BCTX_E_UNAVAILABLE, "context \"%s\" is not taking commands",
                                 json_string_value (context));
    }
    self->in_flight++;
    return NULL;
}

/* Parses and answers one request body from a connection with `role`
 * (BCTX_ROLE_*).  Return: reply (new), or NULL when a worker will answer. */
static char *
s_request (bctx_server_t *self, const char *body, size_t len, unsigned role,
           const void *identity, size_t identity_len, int delimiter)
{
    if (len > self->config->max_message) {
        self->too_large++;
        return bctx_reply_error (BCTX_E_TOO_LARGE,
                                 "request of %zu bytes is over the limit of %zu (host.max_message)",
                                 len, self->config->max_message);
    }
    json_error_t jerr;
    json_t *req = json_loadb (body, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!req) {
        self->bad++;
        return bctx_reply_error (BCTX_E_BAD_REQUEST,
                                 "malformed JSON at line %d, column %d: %s",
                                 jerr.line, jerr.column, jerr.text);
    }
    char *reply = NULL;
    const char *name = json_string_value (json_object_get (req, "op"));
    const bctx_op_t *op = bctx_op_find (name);
    if (!json_is_object (req)) {
        reply = bctx_reply_error (BCTX_E_BAD_REQUEST, "a request is a JSON object");
    } else if (!name) {
        reply = bctx_reply_error (BCTX_E_BAD_REQUEST, "\"op\" must be a string");
    } else if (!op) {
        reply = bctx_reply_error (BCTX_E_BAD_REQUEST, "unknown op \"%s\"", name);
    } else if (!(op->roles & role)) {
        self->forbidden++;
        reply = bctx_reply_forbidden (op->name, role, bctx_op_is_admin (op)
                                                      ? self->admin_endpoint : NULL);
        bctx_log (BCTX_LOG_INFO, "refused %s from a %s connection: forbidden", op->name,
                  bctx_role_name (role));
    } else {
        switch (op->id) {
        case BCTX_OP_SEND:
            reply = s_op_send (self, req, role, identity, identity_len, delimiter);
            break;
        case BCTX_OP_EVENTS:
            reply = s_op_events (self, req);
            break;
        case BCTX_OP_QUERY:
            reply = s_op_query (self, req);
            break;
        case BCTX_OP_CONTEXTS:
            reply = s_op_contexts (self);
            break;
        case BCTX_OP_STATS:
            reply = s_op_stats (self);
            break;
        case BCTX_OP_REPLAY:
            reply = s_op_replay (self, req);
            break;
        case BCTX_OP_RETRY:
            reply = s_op_retry (self, req);
            break;
        case BCTX_OP_RELOAD:
            reply = s_op_reload (self, req, identity, identity_len, delimiter);
            break;
        default:
            reply = bctx_reply_error (BCTX_E_INTERNAL, "op \"%s\" has no handler", op->name);
        }
    }
    if (reply && strstr (reply, "\"code\":\"bad_request\""))
        self->bad++;
    json_decref (req);
    return reply;
}

/* Takes one message from a ROUTER (S_PUBLIC or S_ADMIN) and answers it or
 * hands it on. */
static void
s_on_request (bctx_server_t *self, int which)
{
    enum { S_FRAMES = 8 };
    void *socket = which == S_ADMIN ? self->admin : self->router;
    zmq_msg_t frames[S_FRAMES];
    int n = 0, more = 1;
    while (more) {
        zmq_msg_t scratch, *m = n < S_FRAMES ? &frames[n] : &scratch;
        zmq_msg_init (m);
        if (zmq_msg_recv (m, socket, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close (m);
            break;
        }
        more = zmq_msg_more (m);
        if (n >= S_FRAMES)
            zmq_msg_close (m);
        n++;
    }
    self->requests++;
    int kept = n < S_FRAMES ? n : S_FRAMES;
    char *reply = NULL;
    /* The envelope ends at the first empty frame; a DEALER that sends no
     * delimiter has its routing id alone as envelope. */
    int empty = -1;
    for (int i = 1; i < kept && empty < 0; i++)
        if (zmq_msg_size (&frames[i]) == 0)
            empty = i;
    int delimiter = empty > 0;
    int envelope_n = delimiter ? empty : 1;
    int body_at = delimiter ? empty + 1 : 1;
    unsigned char env[S_ENVELOPE_MAX];
    size_t env_len = n >= 2 ? s_envelope_encode (which, frames, envelope_n, env, sizeof env)
                            : 0;
    if (env_len == 0) {
        /* Nothing to answer to (a lone frame, or an envelope too big). */
        self->bad++;
    } else {
        if (body_at >= kept || n != body_at + 1) {
            self->bad++;
            reply = bctx_reply_error (BCTX_E_BAD_REQUEST,
                                      "a request is one frame of JSON after at most %d "
                                      "envelope frames, got %d frames", S_FRAMES - 2, n);
        } else {
            /* The admin endpoint is admin; the public API's role comes
             * from the connection's CURVE key (client without keys). */
            unsigned role = which == S_ADMIN
                            ? BCTX_ROLE_ADMIN
                            : bctx_security_role (self->security,
                                                  zmq_msg_gets (&frames[body_at], "User-Id"));
            if (!role) {
                self->bad++;
                reply = bctx_reply_error (BCTX_E_FORBIDDEN, "this connection has no role");
            } else {
                reply = s_request (self, zmq_msg_data (&frames[body_at]),
                                   zmq_msg_size (&frames[body_at]), role, env, env_len,
                                   delimiter);
            }
        }
        if (reply)
            s_send (self, env, env_len, delimiter, reply);
    }
    free (reply);
    for (int i = 0; i < kept; i++)
        zmq_msg_close (&frames[i]);
}

static void
s_on_reply (bctx_server_t *self)
{
    bctx_job_t *job;
    while (zmq_recv (self->replies, &job, sizeof job, ZMQ_DONTWAIT) == (int) sizeof job) {
        if (job->kind == BCTX_JOB_RELOAD) {
            s_reload_done (self, job);
            continue;
        }
        self->in_flight--;
        s_send (self, job->identity, job->identity_len, job->delimiter,
                job->reply ? job->reply : "{\"ok\":false,\"error\":{\"code\":\"internal\",\"message\":\"no reply\"}}");
        bctx_job_destroy (&job);
    }
}

/* --- SIGHUP: a changed config ------------------------------------------ */

static int
s_same (const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp (a, b) == 0);
}

static int
s_same_keys (const bctx_config_t *a, const bctx_config_t *b)
{
    if (a->n_clients != b->n_clients)
        return 0;
    for (size_t i = 0; i < a->n_clients; i++)
        if (strcmp (a->clients[i], b->clients[i]) != 0
            || a->client_roles[i] != b->client_roles[i])
            return 0;
    return 1;
}

/* Are host.plugin_dirs the same in both (absent in both counts: their
 * defaults follow contexts[].plugin)? */
static int
s_same_plugin_dirs (const bctx_config_t *a, const bctx_config_t *b)
{
    if (a->plugin_dirs_given != b->plugin_dirs_given)
        return 0;
    if (!a->plugin_dirs_given)
        return 1;
    if (a->n_plugin_dirs != b->n_plugin_dirs)
        return 0;
    for (size_t i = 0; i < a->n_plugin_dirs; i++)
        if (strcmp (a->plugin_dirs[i], b->plugin_dirs[i]) != 0)
            return 0;
    return 1;
}

static int
s_config_index (const bctx_config_t *c, const char *name)
{
    for (size_t i = 0; i < c->n_contexts; i++)
        if (strcmp (c->contexts[i].name, name) == 0)
            return (int) i;
    return -1;
}

/* Does a runner that stays consume a context that goes? */
static const char *
s_consumer_of (bctx_server_t *self, const bctx_config_t *next, const char *gone)
{
    static char who[200];
    for (size_t i = 0; i < self->n_contexts; i++) {
        if (s_config_index (next, self->config->contexts[i].name) < 0)
            continue;
        bctx_plugin_t *p = bctx_worker_plugin (self->contexts[i].worker);
        const char *hit = s_consumer (p, gone, who, sizeof who);
        bctx_plugin_unref (&p);
        if (hit)
            return hit;
    }
    return NULL;
}

/* Stops a context's worker after its queue, and frees what serves it. */
static void
s_context_close (s_context_t *c)
{
    if (c->push) {
        bctx_job_t *none = NULL;
        zmq_send (c->push, &none, sizeof none, 0);
    }
    bctx_store_destroy (&c->reader);
    bctx_worker_destroy (&c->worker);
    if (c->push) {
        int linger = 0;
        zmq_setsockopt (c->push, ZMQ_LINGER, &linger, sizeof linger);
        zmq_close (c->push);
        c->push = NULL;
    }
}

/*
 * Re-reads the config file and applies what changed: contexts added are
 * loaded, contexts removed are drained and unloaded, contexts whose plugin
 * or settings changed are reloaded.  Everything that can be checked is
 * checked first; a config that fails a check changes nothing.
 */
static void
s_reconfigure (bctx_server_t *self)
{
    char err[1024];
    bctx_config_t *next = bctx_config_load (self->config->path, err, sizeof err);
    const bctx_config_t *cur = self->config;
    const char *why = NULL;
    char whybuf[1200];
    if (!next) {
        why = err;
    } else if (!s_same (cur->name, next->name) || !s_same (cur->api, next->api)
               || !s_same (cur->publish, next->publish) || !s_same (cur->data, next->data)
               || cur->max_message != next->max_message || cur->max_batch != next->max_batch
               || cur->max_events_per_command != next->max_events_per_command
               || cur->reload_timeout_ms != next->reload_timeout_ms
               || cur->forward_timeout_ms != next->forward_timeout_ms
               || cur->allow_remote != next->allow_remote
               || !s_same (cur->curve_public, next->curve_public)
               || !s_same (cur->curve_secret, next->curve_secret)
               || !s_same_keys (cur, next)
               || cur->max_plugin_bytes != next->max_plugin_bytes
               || !s_same_plugin_dirs (cur, next)) {
        why = "the host section changed: restart the host to apply it";
    } else if (cur->n_peers || next->n_peers || cur->n_remotes || next->n_remotes) {
        why = "this host has peers: SIGHUP does not apply configs with peers yet; restart it";
    } else if (self->n_reloads || self->rollbacks) {
        why = "a reload is in progress: send SIGHUP again when it is done";
    }
    /* Every plugin the new config names must lie in its plugin folders. */
    for (size_t j = 0; next && j < next->n_contexts && !why; j++) {
        bctx_plugin_bounds_t bounds = s_bounds (next, 0);
        char where[48], *resolved = NULL;
        snprintf (where, sizeof where, "contexts[%zu].plugin", next->contexts[j].index);
        if (bctx_plugin_dirs_check (&bounds, next->contexts[j].plugin, where, &resolved,
                                    whybuf, sizeof whybuf) == BCTX_LOAD_FORBIDDEN)
            why = whybuf;
        free (resolved);
    }
    if (!why) {
        for (size_t i = 0; i < cur->n_contexts && !why; i++) {
            if (s_config_index (next, cur->contexts[i].name) >= 0)
                continue;
            const char *user = s_consumer_of (self, next, cur->contexts[i].name);
            if (user) {
                snprintf (whybuf, sizeof whybuf, "%s consumes context %s, which the new "
                          "config removes", user, cur->contexts[i].name);
                why = whybuf;
            }
        }
    }
    /* Load the added contexts before changing anything. */
    s_context_t *added = calloc (next ? next->n_contexts + 1 : 1, sizeof *added);
    for (size_t j = 0; next && j < next->n_contexts && !why; j++) {
        if (s_config_index (cur, next->contexts[j].name) >= 0)
            continue;
        s_context_t *c = &added[j];
        c->worker = bctx_worker_new (self->zctx, next, j, err, sizeof err);
        if (c->worker)
            c->reader = bctx_store_open (bctx_worker_store_path (c->worker),
                                         BCTX_STORE_READONLY, err, sizeof err);
        if (!c->worker || !c->reader) {
            why = err;
            break;
        }
        int hwm = 0;
        c->push = zmq_socket (self->zctx, ZMQ_PUSH);
        zmq_setsockopt (c->push, ZMQ_SNDHWM, &hwm, sizeof hwm);
        zmq_connect (c->push, bctx_worker_endpoint (c->worker));
    }
    /* The added contexts' projections and reactors must be runnable too:
     * check them against the contexts of the new config. */
    for (size_t j = 0; next && j < next->n_contexts && !why; j++) {
        if (!added[j].worker)
            continue;
        bctx_source_t *all = calloc (next->n_contexts, sizeof *all);
        for (size_t k = 0; k < next->n_contexts; k++) {
            int i = s_config_index (cur, next->contexts[k].name);
            bctx_worker_t *w = i >= 0 ? self->contexts[i].worker : added[k].worker;
            all[k] = (bctx_source_t) {
                .name = bctx_worker_name (w), .store_path = bctx_worker_store_path (w),
                .head = &bctx_worker_stats (w)->position, .endpoint = bctx_worker_endpoint (w),
            };
        }
        bctx_source_t *saved = self->sources;
        size_t saved_n = self->n_contexts, saved_sources = self->n_sources;
        self->sources = all;
        self->n_contexts = next->n_contexts;
        self->n_sources = next->n_contexts;
        bctx_plugin_t *p = bctx_worker_plugin (added[j].worker);
        if (s_check_read_side (self, p, err, sizeof err) != 0)
            why = err;
        bctx_plugin_unref (&p);
        self->sources = saved;
        self->n_contexts = saved_n;
        self->n_sources = saved_sources;
        free (all);
    }
    if (why) {
        for (size_t j = 0; next && j < next->n_contexts; j++)
            s_context_close (&added[j]);
        free (added);
        bctx_config_destroy (&next);
        bctx_log (BCTX_LOG_ERROR, "SIGHUP: the new config is refused, nothing changed: %s", why);
        return;
    }

    /* From here on the new config is applied.  Reactors restart from their
     * checkpoints, so that each knows every context it may send to. */
    for (size_t i = 0; i < self->n_reactors; i++)
        bctx_reactor_destroy (&self->reactors[i]);
    self->n_reactors = 0;
    s_context_t *contexts = calloc (next->n_contexts ? next->n_contexts : 1, sizeof *contexts);
    for (size_t i = 0; i < cur->n_contexts; i++) {
        int j = s_config_index (next, cur->contexts[i].name);
        if (j >= 0) {
            contexts[j] = self->contexts[i];
            continue;
        }
        const char *gone = cur->contexts[i].name;
        for (size_t k = 0; k < self->n_projections;) {
            if (strcmp (bctx_projector_context (self->projections[k].projector), gone) == 0) {
                bctx_projector_destroy (&self->projections[k].projector);
                bctx_readside_destroy (&self->projections[k].reader);
                self->projections[k] = self->projections[--self->n_projections];
            } else {
                k++;
            }
        }
        s_context_close (&self->contexts[i]);
        bctx_log (BCTX_LOG_INFO, "SIGHUP: context %s drained and unloaded", gone);
    }
    for (size_t j = 0; j < next->n_contexts; j++)
        if (added[j].worker) {
            contexts[j] = added[j];
            if (bctx_worker_start (contexts[j].worker, S_REPLIES) != 0)
                bctx_log (BCTX_LOG_ERROR, "SIGHUP: context %s: cannot start its worker; "
                          "its commands will not be answered", next->contexts[j].name);
            else
                bctx_log (BCTX_LOG_INFO, "SIGHUP: context %s added", next->contexts[j].name);
        }
    free (added);
    free (self->contexts);
    self->contexts = contexts;
    self->n_contexts = next->n_contexts;
    /* Keep the old config until the reloads below have read their paths. */
    bctx_config_t *old = self->config;
    self->config = next;
    s_build_sources (self);
    for (size_t i = 0; i < self->n_contexts; i++) {
        bctx_plugin_t *p = bctx_worker_plugin (self->contexts[i].worker);
        if (s_check_read_side (self, p, err, sizeof err) != 0
            || s_add_runners (self, p, 1, err, sizeof err) != 0)
            bctx_log (BCTX_LOG_ERROR, "SIGHUP: context %s: %s", p->name, err);
        bctx_plugin_unref (&p);
    }
    for (size_t j = 0; j < next->n_contexts; j++) {
        int i = s_config_index (old, next->contexts[j].name);
        if (i < 0)
            continue;
        if (strcmp (old->contexts[i].plugin, next->contexts[j].plugin) != 0
            || !json_equal (old->contexts[i].settings, next->contexts[j].settings)) {
            char *reply = s_reload_start (self, j, next->contexts[j].plugin, NULL, 0, 0);
            free (reply);          /* logged */
        }
    }
    /* The watches follow the new config. */
    if (self->watches)
        for (size_t i = 0; i < old->n_contexts; i++)
            free (self->watches[i].file);
    free (self->watches);
    self->watches = NULL;
    if (self->inotify >= 0)
        close (self->inotify);
    if (s_watch_open (self, err, sizeof err) != 0)
        bctx_log (BCTX_LOG_ERROR, "SIGHUP: %s", err);
    bctx_config_destroy (&old);
    bctx_log (BCTX_LOG_INFO, "SIGHUP: config applied: %zu context(s), %zu projection(s), "
              "%zu reactor(s)", self->n_contexts, self->n_projections, self->n_reactors);
}

/* Raises each context's high-water mark to its worker's last commit
 * (an atomic the worker stores after each commit), every S_MARK_EVERY.
 * Return seconds until the next update. */
static double
s_mark_tick (bctx_server_t *self)
{
    double now = s_now ();
    if (now >= self->mark_due) {
        for (size_t i = 0; i < self->n_contexts; i++) {
            bctx_worker_t *w = self->contexts[i].worker;
            bctx_datadir_mark (self->datadir, bctx_worker_name (w),
                               atomic_load (&bctx_worker_stats (w)->position));
        }
        self->mark_due = now + S_MARK_EVERY;
    }
    return self->mark_due - now;
}

int
bctx_server_run (bctx_server_t *self, int stop_fd)
{
    for (;;) {
        size_t n_items = 5 + self->config->n_peers;
        zmq_pollitem_t items[n_items];
        items[0] = (zmq_pollitem_t) { self->replies, 0, ZMQ_POLLIN, 0 };
        items[1] = (zmq_pollitem_t) { self->router, 0, ZMQ_POLLIN, 0 };
        items[2] = (zmq_pollitem_t) { NULL, stop_fd, ZMQ_POLLIN, 0 };
        /* poll(2) skips a negative descriptor: no watch, no item. */
        items[3] = (zmq_pollitem_t) { NULL, self->inotify, ZMQ_POLLIN, 0 };
        items[4] = (zmq_pollitem_t) { self->admin, 0, ZMQ_POLLIN, 0 };
        for (size_t i = 0; i < self->config->n_peers; i++)
            items[5 + i] = (zmq_pollitem_t) { self->peers[i].dealer, 0, ZMQ_POLLIN, 0 };
        double a = s_reload_tick (self), b = s_watch_tick (self), c = s_forward_tick (self);
        double wait = a < 0 ? b : b < 0 ? a : a < b ? a : b;
        if (c >= 0 && (wait < 0 || c < wait))
            wait = c;
        double m = s_mark_tick (self);
        if (wait < 0 || m < wait)
            wait = m;
        long timeout = wait < 0 ? -1 : (long) (wait * 1000) + 1;
        int rc = zmq_poll (items, (int) n_items, timeout);
        if (rc < 0) {
            if (zmq_errno () == EINTR)
                continue;
            bctx_log (BCTX_LOG_ERROR, "poll: %s", zmq_strerror (zmq_errno ()));
            break;
        }
        if (items[2].revents & ZMQ_POLLIN) {
            struct signalfd_siginfo si;
            if (read (stop_fd, &si, sizeof si) != (ssize_t) sizeof si)
                continue;
            if (si.ssi_signo == SIGHUP) {
                bctx_log (BCTX_LOG_INFO, "SIGHUP: re-reading %s", self->config->path);
                s_reconfigure (self);
                continue;
            }
            bctx_log (BCTX_LOG_INFO, "signal %u: stopping", si.ssi_signo);
            break;
        }
        if (items[0].revents & ZMQ_POLLIN)
            s_on_reply (self);
        if (self->inotify >= 0 && (items[3].revents & ZMQ_POLLIN))
            s_watch_read (self);
        for (size_t i = 0; i < self->config->n_peers; i++)
            if (items[5 + i].revents & ZMQ_POLLIN)
                s_on_peer_reply (self, i);
        /* A bounded number per turn, so replies are never starved. */
        for (int which = S_PUBLIC; which <= S_ADMIN; which++) {
            void *socket = which == S_ADMIN ? self->admin : self->router;
            for (int i = 0; i < 256 && (items[which == S_ADMIN ? 4 : 1].revents & ZMQ_POLLIN);
                 i++) {
                int events = 0;
                size_t size = sizeof events;
                zmq_getsockopt (socket, ZMQ_EVENTS, &events, &size);
                if (!(events & ZMQ_POLLIN))
                    break;
                s_on_request (self, which);
            }
        }
    }
    self->stopping = 1;
    /* The read side stops first: a reactor may be waiting on a worker. */
    for (size_t i = 0; i < self->n_reactors; i++)
        bctx_reactor_destroy (&self->reactors[i]);
    self->n_reactors = 0;
    for (size_t i = 0; i < self->n_projections; i++) {
        bctx_readside_destroy (&self->projections[i].reader);
        bctx_projector_destroy (&self->projections[i].projector);
    }
    self->n_projections = 0;
    /* Drain: take nothing new, let every worker finish its queue. */
    bctx_log (BCTX_LOG_INFO, "draining %lld command(s) in flight",
              (long long) self->in_flight);
    for (size_t i = 0; i < self->n_contexts; i++) {
        bctx_job_t *none = NULL;
        zmq_send (self->contexts[i].push, &none, sizeof none, 0);
    }
    while (self->in_flight > 0) {
        zmq_pollitem_t item = { self->replies, 0, ZMQ_POLLIN, 0 };
        if (zmq_poll (&item, 1, 1000) < 0 && zmq_errno () != EINTR)
            break;
        s_on_reply (self);
    }
    /* Commands at peers: their answers, until their deadlines; then
     * "unavailable" for the rest, so no client is left without a reply. */
    while (self->n_forwards > 0) {
        size_t n_items = self->config->n_peers;
        zmq_pollitem_t items[n_items ? n_items : 1];
        for (size_t i = 0; i < n_items; i++)
            items[i] = (zmq_pollitem_t) { self->peers[i].dealer, 0, ZMQ_POLLIN, 0 };
        double wait = s_forward_tick (self);
        if (wait < 0)
            break;
        if (zmq_poll (items, (int) n_items, (long) (wait * 1000) + 1) < 0
            && zmq_errno () != EINTR)
            break;
        for (size_t i = 0; i < n_items; i++)
            if (items[i].revents & ZMQ_POLLIN)
                s_on_peer_reply (self, i);
    }
    return 0;
}

void
bctx_server_destroy (bctx_server_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    bctx_server_t *self = *self_p;
    int linger = 0;
    /* The read side first: a reactor may be waiting on a worker. */
    for (size_t i = 0; i < self->n_reactors; i++)
        bctx_reactor_destroy (&self->reactors[i]);
    free (self->reactors);
    for (size_t i = 0; i < self->n_projections; i++) {
        /* Readers close before the writer, so the writer's close, the
         * file's last, folds the WAL back into the one database file. */
        bctx_readside_destroy (&self->projections[i].reader);
        bctx_projector_destroy (&self->projections[i].projector);
    }
    free (self->projections);
    for (size_t i = 0; i < self->n_bridges; i++)
        bctx_bridge_destroy (&self->bridges[i]);
    free (self->bridges);
    free (self->sources);
    for (size_t k = 0; k < self->n_reloads; k++) {
        /* Still at a worker: it will free the job when it gets to it. */
        if (self->reloads[k].job && !self->reloads[k].preparing)
            atomic_store (&self->reloads[k].job->state, BCTX_JOB_CANCELLED);
        free (self->reloads[k].path);
    }
    free (self->reloads);
    if (self->watches)
        for (size_t i = 0; i < self->n_contexts; i++)
            free (self->watches[i].file);
    free (self->watches);
    if (self->inotify >= 0)
        close (self->inotify);
    for (size_t i = 0; i < self->n_contexts; i++) {
        s_context_t *c = &self->contexts[i];
        if (c->push) {
            bctx_job_t *none = NULL;
            zmq_send (c->push, &none, sizeof none, ZMQ_DONTWAIT);
        }
    }
    /* Workers end first; then the jobs they handed back are freed (a
     * reload's old version among them, whose unloading counts down in its
     * worker); then the workers are freed. */
    for (size_t i = 0; i < self->n_contexts; i++)
        bctx_worker_join (self->contexts[i].worker);
    /* The workers' last commits, in the marks, at a clean stop. */
    self->mark_due = 0;
    s_mark_tick (self);
    if (self->replies) {
        bctx_job_t *job;
        while (zmq_recv (self->replies, &job, sizeof job, ZMQ_DONTWAIT) == (int) sizeof job)
            bctx_job_destroy (&job);
    }
    /* Reload preparers still loading hand their job back to a socket that
     * is about to go: wait for them, bounded. */
    for (int i = 0; i < 1000 && atomic_load (&self->preparers) > 0; i++) {
        struct timespec tick = { 0, 10 * 1000 * 1000 };
        nanosleep (&tick, NULL);
        bctx_job_t *job;
        while (self->replies
               && zmq_recv (self->replies, &job, sizeof job, ZMQ_DONTWAIT) == (int) sizeof job)
            bctx_job_destroy (&job);
    }
    for (size_t i = 0; i < self->n_contexts; i++) {
        s_context_t *c = &self->contexts[i];
        bctx_store_destroy (&c->reader);     /* before the writer: see above */
        bctx_worker_destroy (&c->worker);
        if (c->push) {
            zmq_setsockopt (c->push, ZMQ_LINGER, &linger, sizeof linger);
            zmq_close (c->push);
        }
    }
    free (self->contexts);
    for (size_t i = 0; self->peers && i < self->config->n_peers; i++)
        if (self->peers[i].dealer)
            zmq_close (self->peers[i].dealer);
    free (self->peers);
    free (self->forwards);
    if (self->router) {
        zmq_setsockopt (self->router, ZMQ_LINGER, &linger, sizeof linger);
        zmq_close (self->router);
    }
    if (self->admin) {
        zmq_setsockopt (self->admin, ZMQ_LINGER, &linger, sizeof linger);
        zmq_close (self->admin);
    }
    free (self->admin_endpoint);
    if (self->replies) {
        /* Free any job a worker handed back after the drain. */
        bctx_job_t *job;
        while (zmq_recv (self->replies, &job, sizeof job, ZMQ_DONTWAIT) == (int) sizeof job)
            bctx_job_destroy (&job);
        zmq_setsockopt (self->replies, ZMQ_LINGER, &linger, sizeof linger);
        zmq_close (self->replies);
    }
    zmq_ctx_shutdown (self->zctx);
    bctx_bus_destroy (&self->bus);
    bctx_security = NULL;
    bctx_security_destroy (&self->security);
    zmq_ctx_term (self->zctx);
    bctx_config_destroy (&self->config);
    /* Last: every file under host.data is closed before the lock goes. */
    bctx_datadir_destroy (&self->datadir);
    free (self);
    *self_p = NULL;
}
