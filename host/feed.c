/*
 * feed - source contexts of a projection or reactor, read from their
 * stores with their consumed types.
 */
#include "feed.h"
#include "bus.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

typedef struct {
    char *name;                   /* the source context */
    bctx_store_t *store;          /* read-only connection */
    _Atomic int64_t *head;        /* its log's head, or NULL: read it from the store */
    _Atomic int64_t last_head;    /* the head last read from the store, by the
                                     consumer's thread (others read only this) */
    int all;                      /* "<context>.*" was declared */
    char **types;                 /* consumed types, NULL-terminated */
    size_t n_types;               /* how many */
} s_input_t;

struct bctx_feed {
    s_input_t *inputs;            /* one per source context */
    size_t n;                     /* how many */
    char *bus;                    /* the sources' bus, or NULL: BCTX_BUS_OUT */
};

static s_input_t *
s_input (bctx_feed_t *self, const char *name, size_t len)
{
    for (size_t i = 0; i < self->n; i++)
        if (strlen (self->inputs[i].name) == len
            && strncmp (self->inputs[i].name, name, len) == 0)
            return &self->inputs[i];
    return NULL;
}

bctx_feed_t *
bctx_feed_new (const char *who, const char *const *consumes,
               const bctx_source_t *sources, size_t n, char *err,
               size_t errlen)
{
    bctx_feed_t *self = calloc (1, sizeof *self);
    size_t cap = 0;
    for (const char *const *c = consumes; c && *c; c++)
        cap++;
    if (cap == 0) {
        snprintf (err, errlen, "%s: consumes no event type", who);
        goto fail;
    }
    self->inputs = calloc (cap, sizeof *self->inputs);
    for (const char *const *c = consumes; *c; c++) {
        const char *dot = strchr (*c, '.');
        if (!dot || dot == *c || !dot[1]) {
            snprintf (err, errlen, "%s: consumes \"%s\": expected \"<context>.<Type>\"",
                      who, *c);
            goto fail;
        }
        size_t len = (size_t) (dot - *c);
        s_input_t *in = s_input (self, *c, len);
        if (!in) {
            const bctx_source_t *src = NULL;
            for (size_t k = 0; k < n; k++)
                if (strlen (sources[k].name) == len
                    && strncmp (sources[k].name, *c, len) == 0)
                    src = &sources[k];
            if (!src) {
                snprintf (err, errlen, "%s: consumes \"%s\": no context \"%.*s\" on this host",
                          who, *c, (int) len, *c);
                goto fail;
            }
            if (!src->store_path) {
                snprintf (err, errlen, "%s: consumes \"%s\": context \"%.*s\" lives on a "
                          "peer and is not bridged here", who, *c, (int) len, *c);
                goto fail;
            }
            in = &self->inputs[self->n++];
            if (src->bus && !self->bus)
                self->bus = strdup (src->bus);
            in->name = strndup (*c, len);
            in->head = src->head;
            in->types = calloc (cap + 1, sizeof *in->types);
            in->store = bctx_store_open (src->store_path, BCTX_STORE_READONLY, err, errlen);
            if (!in->store)
                goto fail;
        }
        if (strcmp (dot + 1, "*") == 0)
            in->all = 1;
        else
            in->types[in->n_types++] = strdup (dot + 1);
    }
    return self;
fail:
    bctx_feed_destroy (&self);
    return NULL;
}

void
bctx_feed_destroy (bctx_feed_t **self_p)
{
    BCTX_SELF_OR_RETURN (bctx_feed_t, self_p);
    for (size_t i = 0; i < self->n; i++) {
        s_input_t *in = &self->inputs[i];
        free (in->name);
        bctx_strings_free (in->types, in->n_types);
        bctx_store_destroy (&in->store);
    }
    free (self->inputs);
    free (self->bus);
    free (self);
    *self_p = NULL;
}

size_t
bctx_feed_size (const bctx_feed_t *self)
{
    return self->n;
}

const char *
bctx_feed_name (const bctx_feed_t *self, size_t i)
{
    return self->inputs[i].name;
}

int
bctx_feed_index (const bctx_feed_t *self, const char *name)
{
    for (size_t i = 0; i < self->n; i++)
        if (strcmp (self->inputs[i].name, name) == 0)
            return (int) i;
    return -1;
}

int64_t
bctx_feed_head (const bctx_feed_t *self, size_t i)
{
    /* A sibling's log (another context process writes it): its head is
     * what is committed in the file now. */
    s_input_t *in = &self->inputs[i];
    if (!in->head) {
        /* One that cannot be read now (its writer's process restarts, a
         * checkpoint) has not moved back: the last one read holds. */
        int64_t head = bctx_store_head (in->store);
        if (head > atomic_load (&in->last_head))
            atomic_store (&in->last_head, head);
        return atomic_load (&in->last_head);
    }
    return atomic_load (self->inputs[i].head);
}

int64_t
bctx_feed_head_known (const bctx_feed_t *self, size_t i)
{
    const s_input_t *in = &self->inputs[i];
    return in->head ? atomic_load (in->head) : atomic_load (&in->last_head);
}

void
bctx_feed_lag (const bctx_feed_t *self, const int64_t *shown, json_t **checkpoints,
               json_t **lag)
{
    *checkpoints = json_object ();
    *lag = json_object ();
    for (size_t i = 0; i < self->n; i++) {
        const char *src = self->inputs[i].name;
        json_object_set_new (*checkpoints, src, json_integer (shown[i]));
        json_object_set_new (*lag, src, json_integer (bctx_feed_head_known (self, i)
                                                      - shown[i]));
    }
}

typedef struct {
    s_input_t *in;                /* the source */
    bctx_feed_fn fn;              /* the consumer's callback */
    void *arg;                    /* its argument */
    int64_t last;                 /* last position read */
    int failed;                   /* unreadable stored JSON */
    int stopped;                  /* fn asked to stop */
} s_reading_t;

static int
s_consumed (const s_input_t *in, const char *type)
{
    if (in->all)
        return 1;
    for (size_t k = 0; k < in->n_types; k++)
        if (strcmp (in->types[k], type) == 0)
            return 1;
    return 0;
}

static int
s_row (const bctx_row_t *row, void *arg)
{
    s_reading_t *r = arg;
    if (s_consumed (r->in, row->type)) {
        json_t *data = json_loads (row->data, 0, NULL);
        if (!data) {
            r->failed = 1;
            return 1;
        }
        bctx_event_t ev = {
            .context = r->in->name, .type = row->type,
            .aggregate = row->aggregate, .version = row->version,
            .position = row->position, .data = data, .metadata = row->metadata,
        };
        int rc = r->fn (&ev, r->arg);
        json_decref (data);
        if (rc != 0) {
            r->stopped = 1;
            return 1;
        }
    }
    r->last = row->position;
    return 0;
}

int64_t
bctx_feed_read (bctx_feed_t *self, size_t i, int64_t from, int64_t limit,
                bctx_feed_fn fn, void *arg, int64_t *last)
{
    s_reading_t r = { .in = &self->inputs[i], .fn = fn, .arg = arg, .last = *last };
    int64_t n = bctx_store_read (r.in->store, from, NULL, limit, s_row, &r);
    *last = r.last;
    if (n < 0 || r.failed || r.stopped)
        return -1;
    return n;
}

void *
bctx_feed_subscribe (const bctx_feed_t *self, void *zctx)
{
    void *sub = zmq_socket (zctx, ZMQ_SUB);
    int linger = 0;
    zmq_setsockopt (sub, ZMQ_LINGER, &linger, sizeof linger);
    for (size_t i = 0; i < self->n; i++) {
        const s_input_t *in = &self->inputs[i];
        char topic[256];
        if (in->all) {
            snprintf (topic, sizeof topic, "%s.", in->name);
            zmq_setsockopt (sub, ZMQ_SUBSCRIBE, topic, strlen (topic));
        }
        for (size_t k = 0; k < in->n_types; k++) {
            snprintf (topic, sizeof topic, "%s.%s", in->name, in->types[k]);
            zmq_setsockopt (sub, ZMQ_SUBSCRIBE, topic, strlen (topic));
        }
    }
    if (zmq_connect (sub, self->bus ? self->bus : BCTX_BUS_OUT) != 0) {
        zmq_close (sub);
        return NULL;
    }
    return sub;
}

int
bctx_feed_drain (void *sub)
{
    int n = 0;
    zmq_msg_t msg;
    zmq_msg_init (&msg);
    while (zmq_msg_recv (&msg, sub, ZMQ_DONTWAIT) >= 0)
        n++;
    zmq_msg_close (&msg);
    return n;
}
