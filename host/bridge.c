/*
 * bridge - the replica of a peer's context: live events from the peer's
 * bus, the rest fetched by position from the peer's API.
 */
#include "bridge.h"
#include "bus.h"
#include "feed.h"
#include "log.h"
#include "runner.h"
#include "security.h"
#include "store.h"
#include "util.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#define S_PAGE      10000     /* events per fetch (the most an "events" request returns) */
#define S_SILENCE   1.0       /* seconds without a live event before asking */
#define S_AGG_MAX   256       /* longest aggregate id a host takes, in bytes */
#define S_TYPE_MAX  128       /* longest event type */

struct bctx_bridge {
    char *context;                /* the remote context */
    char *peer;                   /* its peer's name */
    char *api;                    /* the peer's API endpoint */
    char *publish;                /* the peer's bus endpoint */
    char *server_key;             /* the peer's CURVE key, or NULL */
    char *path;                   /* the replica's file */
    size_t timeout_ms;            /* per request to the peer */
    bctx_store_t *store;          /* the replica (the thread's) */
    void *zctx;                   /* ZeroMQ context (borrowed) */
    const bctx_security_t *security; /* CURVE for the sockets to the peer (borrowed) */
    void *sub;                    /* SUB on the peer's bus (the thread's) */
    void *req;                    /* DEALER to the peer's API (the thread's) */
    void *wake;                   /* PUB into this host's bus (the thread's) */
    bctx_runner_t *runner;        /* its thread (s_run) and control pipe (no
                                     command but the stop) */
    int started;                  /* its thread was started */
    _Atomic int64_t head;         /* last position in the replica */
    pthread_mutex_t lock;         /* guards what follows */
    const char *state;            /* "connecting", "live", "catching up", "down" */
    int64_t peer_head;            /* highest position heard of */
    double last_contact;          /* monotonic seconds of the last answer */
    int64_t fetched;              /* events fetched through the API */
    int64_t live;                 /* events taken from the bus */
    int64_t duplicates;           /* bus events already in the replica */
    int64_t dropped;              /* malformed frames dropped */
};

static void
s_set_state (bctx_bridge_t *self, const char *state)
{
    pthread_mutex_lock (&self->lock);
    if (strcmp (self->state, state) != 0)
        bctx_log (strcmp (state, "down") == 0 ? BCTX_LOG_WARN : BCTX_LOG_INFO,
                  "bridge %s from peer %s: %s", self->context, self->peer, state);
    self->state = state;
    pthread_mutex_unlock (&self->lock);
}

static void *
s_socket (bctx_bridge_t *self, int type, const char *endpoint)
{
    void *s = zmq_socket (self->zctx, type);
    int linger = 0, ivl = 1000, ttl = 3000, reconnect_max = 2000, hwm = 100000;
    zmq_setsockopt (s, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt (s, ZMQ_HEARTBEAT_IVL, &ivl, sizeof ivl);
    zmq_setsockopt (s, ZMQ_HEARTBEAT_TIMEOUT, &ttl, sizeof ttl);
    zmq_setsockopt (s, ZMQ_RECONNECT_IVL_MAX, &reconnect_max, sizeof reconnect_max);
    zmq_setsockopt (s, ZMQ_RCVHWM, &hwm, sizeof hwm);
    bctx_security_client (self->security, s, self->server_key);
    if (type == ZMQ_SUB) {
        char topic[128];
        snprintf (topic, sizeof topic, "%s.", self->context);
        zmq_setsockopt (s, ZMQ_SUBSCRIBE, topic, strlen (topic));
    }
    zmq_connect (s, endpoint);
    return s;
}

typedef struct {
    const char *aggregate;        /* expected */
    int64_t version;              /* expected */
    const char *command;          /* expected, or NULL */
    int same;                     /* the row matched */
} s_match_t;

static int
s_match_row (const bctx_row_t *row, void *arg)
{
    s_match_t *m = arg;
    m->same = strcmp (row->aggregate, m->aggregate) == 0 && row->version == m->version
              && (!m->command || (row->command && strcmp (row->command, m->command) == 0));
    return 1;
}

/* Is the replica's event at pos the one the peer describes? */
static int
s_same_event (bctx_bridge_t *self, int64_t pos, const char *aggregate, int64_t version,
              const char *command)
{
    s_match_t m = { aggregate, version, command, 0 };
    if (!aggregate || bctx_store_read (self->store, pos, NULL, 1, s_match_row, &m) < 0)
        return 0;
    return m.same;
}

/* Is `type` 1 to S_TYPE_MAX letters, digits or '_' (len bytes, no NUL)? */
static int
s_valid_type (const char *type, size_t len)
{
    if (len == 0 || len > S_TYPE_MAX || strlen (type) != len)
        return 0;
    for (const char *p = type; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')
              || (*p >= '0' && *p <= '9') || *p == '_'))
            return 0;
    return 1;
}

int
bctx_bridge_event_read (json_t *ev, bctx_bridge_event_t *out, char *why, size_t whylen)
{
    json_t *jpos = json_object_get (ev, "position");
    json_t *jagg = json_object_get (ev, "aggregate");
    json_t *jtype = json_object_get (ev, "type");
    json_t *jversion = json_object_get (ev, "version");
    *out = (bctx_bridge_event_t) {
        .position = json_integer_value (jpos),
        .version = json_integer_value (jversion),
        .aggregate = json_string_value (jagg),
        .type = json_string_value (jtype),
        .data = json_object_get (ev, "data"),
        .metadata = json_object_get (ev, "metadata"),
    };
    out->command = json_string_value (json_object_get (out->metadata, "command_id"));
    if (!json_is_integer (jpos) || out->position < 1 || !out->aggregate) {
        snprintf (why, whylen, "an event without a position or an aggregate");
        return BCTX_BRIDGE_UNPLACED;
    }
    const char *bad = NULL;
    if (json_string_length (jagg) == 0 || json_string_length (jagg) > S_AGG_MAX
        || strlen (out->aggregate) != json_string_length (jagg))
        bad = "its aggregate is not a string of 1 to 256 bytes";
    else if (!out->type || !s_valid_type (out->type, json_string_length (jtype)))
        bad = "its type is not 1 to 128 letters, digits or _";
    else if (!json_is_integer (jversion) || out->version < 1)
        bad = "its version is not an integer >= 1";
    else if (!json_is_object (out->data) || !json_is_object (out->metadata))
        bad = "its data or metadata is not an object";
    if (bad) {
        snprintf (why, whylen, "malformed event at position %lld: %s",
                  (long long) out->position, bad);
        return BCTX_BRIDGE_MALFORMED;
    }
    return 0;
}

json_t *
bctx_bridge_live_parse (const void *frame, size_t size, char *why, size_t whylen)
{
    json_error_t jerr;
    json_t *ev = json_loadb (frame, size, 0, &jerr);
    if (!ev) {
        snprintf (why, whylen, "a frame that is not JSON (%s)", jerr.text);
        return NULL;
    }
    if (!json_is_object (ev) || !json_is_integer (json_object_get (ev, "position"))) {
        json_decref (ev);
        snprintf (why, whylen, "a frame that is not an event with a position");
        return NULL;
    }
    return ev;
}

/* Counts an event from the peer dropped (why: borrowed) and logs it. */
static void
s_drop (bctx_bridge_t *self, const char *why)
{
    pthread_mutex_lock (&self->lock);
    self->dropped++;
    pthread_mutex_unlock (&self->lock);
    bctx_log (BCTX_LOG_WARN, "bridge %s from peer %s: dropping %s",
              self->context, self->peer, why);
}

/* Notes, for stats, that the peer answered: its head is at least last,
 * and added events (if any) were appended, counted in *count (a field of
 * self, fetched or live). */
static void
s_heard (bctx_bridge_t *self, int64_t last, int64_t added, int64_t *count)
{
    pthread_mutex_lock (&self->lock);
    self->last_contact = bctx_now ();
    if (last > self->peer_head)
        self->peer_head = last;
    if (added > 0)
        *count += added;
    pthread_mutex_unlock (&self->lock);
}

/* Appends events (a JSON array, borrowed) that continue the replica, in
 * one transaction.  Stops at the first one that does not: a duplicate is
 * skipped, a gap ends the run.  Return how many were appended, or -1. */
static int64_t
s_append (bctx_bridge_t *self, json_t *events, int *gap)
{
    int64_t head = atomic_load (&self->head), added = 0;
    size_t i;
    json_t *ev;
    if (bctx_store_begin (self->store) != 0)
        return -1;
    json_array_foreach (events, i, ev) {
        bctx_bridge_event_t e;
        char why[160];
        int valid = bctx_bridge_event_read (ev, &e, why, sizeof why);
        int64_t pos = e.position;
        if (valid == BCTX_BRIDGE_UNPLACED) {
            s_drop (self, why);
            *gap = 1;
            break;
        }
        if (pos <= head + added) {
            /* A duplicate must be the same event: else the peer's log is
             * not the one this replica copies (it was replaced). */
            if (pos <= head && !s_same_event (self, pos, e.aggregate, e.version, e.command)) {
                bctx_store_rollback (self->store);
                s_set_state (self, "diverged");
                bctx_log (BCTX_LOG_ERROR, "bridge %s from peer %s: the peer's event at "
                          "position %lld differs from the replica's: its log is not the one "
                          "this host copied; the bridge stops (remove %s to copy it afresh)",
                          self->context, self->peer, (long long) pos, self->path);
                return -1;
            }
            pthread_mutex_lock (&self->lock);
            self->duplicates++;
            pthread_mutex_unlock (&self->lock);
            continue;
        }
        if (pos != head + added + 1) {
            *gap = 1;
            break;
        }
        if (valid != 0) {
            s_drop (self, why);
            *gap = 1;
            break;
        }
        char *dtext = json_dumps (e.data, JSON_COMPACT);
        char *mtext = json_dumps (e.metadata, JSON_COMPACT);
        bctx_row_t row = {
            .aggregate = e.aggregate, .type = e.type, .data = dtext, .metadata = mtext,
            .command = e.command,
        };
        int rc = bctx_store_append (self->store, e.aggregate, e.version - 1, &row, 1);
        free (dtext);
        free (mtext);
        if (rc != 0 || row.position != pos) {
            bctx_log (BCTX_LOG_ERROR, "bridge %s from peer %s: cannot append position %lld "
                      "(%s); the replica does not match the peer's log", self->context,
                      self->peer, (long long) pos,
                      rc == BCTX_ESTORECONFLICT ? "its aggregate version is taken"
                      : rc ? bctx_store_error (self->store) : "position differs");
            bctx_store_rollback (self->store);
            s_set_state (self, "diverged");
            return -1;
        }
        added++;
    }
    if (bctx_store_commit (self->store) != 0)
        return -1;
    atomic_store (&self->head, head + added);
    /* Wake this host's projections and reactors, as a local commit does:
     * once per event type in the batch (they read the events from the
     * replica; the bus only wakes them). */
    json_t *last_of_type = json_object ();
    json_array_foreach (events, i, ev) {
        json_int_t pos = json_integer_value (json_object_get (ev, "position"));
        const char *type = json_string_value (json_object_get (ev, "type"));
        if (type && pos > head && pos <= head + added)
            json_object_set (last_of_type, type, ev);
    }
    const char *type;
    json_t *last;
    json_object_foreach (last_of_type, type, last) {
        char topic[256];
        snprintf (topic, sizeof topic, "%s.%s", self->context, type);
        char *text = json_dumps (last, JSON_COMPACT);
        if (text)
            bctx_bus_publish (self->wake, topic, text, strlen (text));
        free (text);
    }
    json_decref (last_of_type);
    return added;
}

/* Asks the peer for a page of events from position `from`. */
static int
s_ask (bctx_bridge_t *self, int64_t from)
{
    char body[256];
    int n = snprintf (body, sizeof body,
                      "{\"op\":\"events\",\"context\":\"%s\",\"from\":%lld,\"limit\":%d}",
                      self->context, (long long) from, S_PAGE);
    if (zmq_send (self->req, "", 0, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0
        || zmq_send (self->req, body, (size_t) n, 0) < 0)
        return -1;
    return 0;
}

/* Fetches from the peer what follows the replica's head, page by page,
 * asking for the next page before storing the one in hand so both hosts
 * work at once.  Return 0 when up to date, -1 when the peer did not
 * answer. */
static int
s_fetch (bctx_bridge_t *self)
{
    if (s_ask (self, atomic_load (&self->head) + 1) < 0)
        goto down;
    /* At most 100 full pages' worth of events per call, however the
     * peer's budget cuts them. */
    for (int64_t taken = 0;;) {
        int ready = bctx_runner_wait (self->runner, self->req, (long) self->timeout_ms);
        if (ready <= 0 || (ready & BCTX_RUNNER_COMMAND)) {
            if (ready != 0)
                return -1;         /* a stop: the main loop reads it */
            goto down;
        }
        zmq_msg_t empty, msg;
        zmq_msg_init (&empty);
        zmq_msg_init (&msg);
        int ok = zmq_msg_recv (&empty, self->req, 0) >= 0 && zmq_msg_more (&empty)
                 && zmq_msg_recv (&msg, self->req, 0) >= 0;
        json_t *reply = ok ? json_loadb (zmq_msg_data (&msg), zmq_msg_size (&msg), 0, NULL)
                           : NULL;
        zmq_msg_close (&empty);
        zmq_msg_close (&msg);
        json_t *events = json_object_get (reply, "events");
        if (!json_is_true (json_object_get (reply, "ok")) || !json_is_array (events)) {
            bctx_log (BCTX_LOG_WARN, "bridge %s from peer %s: the peer refused the fetch",
                      self->context, self->peer);
            json_decref (reply);
            goto down;
        }
        size_t got = json_array_size (events);
        json_int_t last = got ? json_integer_value (json_object_get (
                                    json_array_get (events, got - 1), "position")) : 0;
        /* "next" is where the rest starts (a page may be cut short by the
         * peer's byte budget); a peer without it ends with a short page. */
        json_t *next = json_object_get (reply, "next");
        json_int_t from = json_is_integer (next) ? json_integer_value (next) : last + 1;
        taken += (int64_t) got;
        int more = (next ? json_is_integer (next) && got && from > last : got == S_PAGE)
                   && taken < 100 * S_PAGE;
        if (more && s_ask (self, from) < 0) {
            json_decref (reply);
            goto down;
        }
        int gap = 0;
        int64_t added = s_append (self, events, &gap);
        json_decref (reply);
        s_heard (self, last, added, &self->fetched);
        if (added < 0 || gap) {
            /* The page in flight may not follow: start afresh next time. */
            if (more)
                goto reset;
            return added < 0 ? -1 : 0;
        }
        if (!more)
            return 0;
        s_set_state (self, "catching up");
    }
down:
    s_set_state (self, "down");
reset:
    /* A new socket, so a late answer cannot be taken for the next one. */
    zmq_close (self->req);
    self->req = s_socket (self, ZMQ_DEALER, self->api);
    return -1;
}

/* Takes what the bus has: in order, duplicates dropped.  Return 1 when a
 * gap or a malformed frame calls for a fetch. */
static int
s_take_live (bctx_bridge_t *self)
{
    json_t *batch = json_array ();
    int need_fetch = 0;
    for (int k = 0; k < S_PAGE; k++) {
        zmq_msg_t topic, msg;
        zmq_msg_init (&topic);
        zmq_msg_init (&msg);
        if (zmq_msg_recv (&topic, self->sub, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close (&topic);
            zmq_msg_close (&msg);
            break;
        }
        json_t *ev = NULL;
        char why[160];
        if (zmq_msg_more (&topic) && zmq_msg_recv (&msg, self->sub, 0) >= 0 && !zmq_msg_more (&msg))
            ev = bctx_bridge_live_parse (zmq_msg_data (&msg), zmq_msg_size (&msg),
                                         why, sizeof why);
        else
            while (zmq_msg_more (&msg) && zmq_msg_recv (&msg, self->sub, 0) >= 0)
                ;
        zmq_msg_close (&topic);
        zmq_msg_close (&msg);
        if (!ev) {
            pthread_mutex_lock (&self->lock);
            self->dropped++;
            pthread_mutex_unlock (&self->lock);
            bctx_log (BCTX_LOG_WARN, "bridge %s from peer %s: dropping a malformed frame",
                      self->context, self->peer);
            need_fetch = 1;
            continue;
        }
        json_array_append_new (batch, ev);
    }
    if (json_array_size (batch)) {
        int gap = 0;
        int64_t added = s_append (self, batch, &gap);
        json_int_t last = json_integer_value (json_object_get (
            json_array_get (batch, json_array_size (batch) - 1), "position"));
        s_heard (self, last, added, &self->live);
        need_fetch |= gap || added < 0;
    }
    json_decref (batch);
    return need_fetch;
}

/* The bridge's thread: fetch when needed, then wait for the peer's bus or
 * the stop, with back-off while the peer is down. */
static void
s_run (bctx_runner_t *runner, void *arg)
{
    bctx_bridge_t *self = arg;
    self->sub = s_socket (self, ZMQ_SUB, self->publish);
    self->req = s_socket (self, ZMQ_DEALER, self->api);
    self->wake = bctx_bus_publisher (self->zctx, NULL);
    int need_fetch = 1, failures = 0;
    double last_heard = 0;
    for (;;) {
        if (bctx_runner_recv (runner) == BCTX_RUNNER_TERM)
            break;
        int diverged;
        pthread_mutex_lock (&self->lock);
        diverged = strcmp (self->state, "diverged") == 0;
        pthread_mutex_unlock (&self->lock);
        if (!diverged && (need_fetch || bctx_now () - last_heard > S_SILENCE)) {
            /* Subscribe first, then fetch: what arrives meanwhile on the
             * bus is either fetched too (dropped as a duplicate) or next. */
            if (s_fetch (self) == 0) {
                need_fetch = 0;
                failures = 0;
                pthread_mutex_lock (&self->lock);
                int bad = strcmp (self->state, "diverged") == 0;
                pthread_mutex_unlock (&self->lock);
                if (!bad)
                    s_set_state (self, "live");
            } else {
                failures++;
            }
            last_heard = bctx_now ();
        }
        /* Back off while the peer is down: 0.2 s, doubling to 3.2 s. */
        long wait = failures ? 200L << (failures < 5 ? failures - 1 : 4) : 1000;
        int ready = bctx_runner_wait (runner, self->sub, wait);
        if (ready < 0)
            break;
        if ((ready & BCTX_RUNNER_READY) && !diverged) {
            need_fetch |= s_take_live (self);
            last_heard = bctx_now ();
        } else if (ready & BCTX_RUNNER_READY) {
            bctx_feed_drain (self->sub);
        }
    }
    zmq_close (self->sub);
    zmq_close (self->req);
    bctx_socket_close (&self->wake);
    self->sub = self->req = self->wake = NULL;
}

bctx_bridge_t *
bctx_bridge_new (void *zctx, const bctx_security_t *security, const char *data,
                 const char *context,
                 const bctx_peer_config_t *peer, size_t timeout_ms, char *err, size_t errlen)
{
    bctx_bridge_t *self = calloc (1, sizeof *self);
    pthread_mutex_init (&self->lock, NULL);
    self->context = strdup (context);
    self->peer = strdup (peer->name);
    self->api = strdup (peer->api);
    self->publish = strdup (peer->publish);
    self->server_key = peer->public_key ? strdup (peer->public_key) : NULL;
    self->timeout_ms = timeout_ms;
    self->zctx = zctx;
    self->security = security;
    self->state = "connecting";
    self->path = bctx_bridge_replica_path (data, context);
    if (!self->path) {
        snprintf (err, errlen, "bridge %s: out of memory", context);
        goto fail;
    }
    char why[512];
    self->store = bctx_store_open (self->path, BCTX_STORE_REPLICA, why, sizeof why);
    if (!self->store) {
        snprintf (err, errlen, "bridge %s from peer %s: cannot open its replica (%s); move "
                  "or remove that file, and the bridge copies the peer's log afresh",
                  context, peer->name, why);
        goto fail;
    }
    atomic_store (&self->head, bctx_store_position (self->store));
    char runner[160];
    snprintf (runner, sizeof runner, "bridge-%s", context);
    self->runner = bctx_runner_new (zctx, runner, NULL, 0, err, errlen);
    if (!self->runner)
        goto fail;
    return self;
fail:
    bctx_bridge_destroy (&self);
    return NULL;
}

char *
bctx_bridge_replica_path (const char *data, const char *context)
{
    char *path;
    return asprintf (&path, "%s/replica-%s.db", data, context) < 0 ? NULL : path;
}

int
bctx_bridge_start (bctx_bridge_t *self)
{
    if (self->started)
        return 0;
    if (bctx_runner_start (self->runner, s_run, self) != 0)
        return -1;
    self->started = 1;
    return 0;
}

int
bctx_bridge_started (const bctx_bridge_t *self)
{
    return self->started;
}

const char *
bctx_bridge_context (const bctx_bridge_t *self)
{
    return self->context;
}

json_t *
bctx_bridge_stats (bctx_bridge_t *self)
{
    pthread_mutex_lock (&self->lock);
    int64_t head = atomic_load (&self->head);
    int64_t lag = self->peer_head > head ? self->peer_head - head : 0;
    json_t *stats = json_pack (
        "{s:s, s:s, s:s, s:I, s:I, s:I, s:f, s:I, s:I, s:I, s:I}",
        "context", self->context, "peer", self->peer, "state", self->state,
        "checkpoint", (json_int_t) head, "peer_head", (json_int_t) self->peer_head,
        "lag", (json_int_t) lag,
        "seconds_since_contact", self->last_contact ? bctx_now () - self->last_contact : -1.0,
        "fetched", (json_int_t) self->fetched, "live", (json_int_t) self->live,
        "duplicates", (json_int_t) self->duplicates, "dropped", (json_int_t) self->dropped);
    pthread_mutex_unlock (&self->lock);
    return stats;
}

void
bctx_bridge_destroy (bctx_bridge_t **self_p)
{
    BCTX_SELF_OR_RETURN (bctx_bridge_t, self_p);
    bctx_runner_destroy (&self->runner);
    bctx_store_destroy (&self->store);
    free (self->context);
    free (self->peer);
    free (self->api);
    free (self->publish);
    free (self->server_key);
    free (self->path);
    pthread_mutex_destroy (&self->lock);
    free (self);
    *self_p = NULL;
}
