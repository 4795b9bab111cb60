/*
 * relay - requests to the context processes and their answers.
 */

#include "relay.h"
#include "route.h"
#include "frames.h"
#include "hold.h"
#include "runs.h"
#include "log.h"
#include "util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#define S_PROBE_AGAIN   0.01     /* seconds between tries to reach a starting one */
#define S_PROBE_RESEND  1.0      /* seconds before asking a silent one again */

/* What a request passed to a process is for. */
enum {
    S_CLIENT = 0,                 /* a client's: the reply goes back as it is */
    S_PROBE = 1,                  /* the relay's own stats: the process is up */
    S_ASK = 2                     /* the relay's users' own requests (gather.h,
                                     reload.h): the reply goes to its fn */
};

/* Who waits for a child to have no command in flight. */
typedef struct {
    bctx_child_t *child;          /* the child */
    bctx_relay_fn *fn;            /* told once it has none */
    void *arg;                    /* its argument */
} s_idle_t;

/* A request at a process, waiting for its reply. */
typedef struct {
    uint64_t tag;                 /* sent beside it, comes back with the reply */
    bctx_child_t *child;          /* where it went */
    int kind;                     /* S_* */
    double deadline;              /* monotonic: then "unavailable" */
    double sent_at;               /* monotonic: when it went to the process */
    unsigned char env[BCTX_API_ENVELOPE_MAX]; /* the client's envelope (S_CLIENT) */
    size_t env_len;               /* its length */
    int delimiter;                /* the client sent an empty frame first */
    char what[160];               /* the command, for an obituary, or "" */
    bctx_histogram_t *latency;    /* a command's context's latency (figures.h), or NULL */
    double admitted;              /* monotonic: when the command was admitted */
    bctx_relay_fn *fn;            /* S_ASK: who takes the reply */
    void *arg;                    /* its argument */
} s_pending_t;

struct bctx_relay {
    bctx_registry_t *registry;    /* the config, handles and views (borrowed) */
    bctx_api_t *api;              /* to answer clients (borrowed) */
    bctx_supervise_t *supervise;  /* the children (borrowed) */
    bctx_loop_t *loop;            /* where the links are read (borrowed) */
    s_pending_t *pending;         /* requests at processes */
    size_t n_pending;             /* how many */
    int64_t in_flight;            /* of which clients' commands */
    uint64_t next_tag;            /* tags */
    bctx_hold_t hold;             /* the contexts handed over and their commands held */
    bctx_relay_fn *child_fn;      /* told of standbys up and children ended */
    void *child_arg;              /* its argument */
    s_idle_t *idles;              /* children whose commands in flight are awaited */
    size_t n_idles;               /* how many */
    bctx_figures_t *figures;      /* each context's latency and reloads */
};

static void s_on_exit (void *arg, bctx_child_t *child);
static void s_unlink (bctx_relay_t *self, bctx_child_t *c);
static void s_link_commands (bctx_relay_t *self, bctx_child_t *c);
static int s_on_readable (void *arg);

bctx_relay_t *
bctx_relay_new (bctx_registry_t *registry, bctx_api_t *api, bctx_supervise_t *supervise)
{
    bctx_relay_t *self = calloc (1, sizeof *self);
    *self = (bctx_relay_t) { .registry = registry, .api = api, .supervise = supervise,
                             .figures = bctx_figures_new () };
    bctx_supervise_on_exit (supervise, s_on_exit, self);
    return self;
}

/* Sends text (borrowed) to child with a new tag, on its worker's own
 * link for a command (its link when that one is not connected yet).
 * Return the pending entry (its kind and deadline still to set), or NULL
 * when the process is not connected. */
static s_pending_t *
s_pass_on (bctx_relay_t *self, bctx_child_t *child, const char *text, size_t len,
           int command)
{
    uint64_t tag = ++self->next_tag;
    if (command && child->commands >= 0) {
        /* Written now; what the socket does not take, at the next tick. */
        bctx_link_put (&child->out, tag, text, len);
        if (bctx_link_flush (child->commands, &child->out) < 0)
            s_unlink (self, child);   /* its replies come no more: its exit answers */
    } else {
        if (zmq_send (child->link, &tag, sizeof tag, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0)
            return NULL;
        zmq_send (child->link, "", 0, ZMQ_SNDMORE);
        zmq_send (child->link, text, len, 0);
    }
    self->pending = bctx_realloc (self->pending, (self->n_pending + 1) * sizeof *self->pending);
    s_pending_t *p = &self->pending[self->n_pending++];
    *p = (s_pending_t) { .tag = tag, .child = child, .sent_at = bctx_now () };
    return p;
}

/* s_pass_on on the link. */
static s_pending_t *
s_pass (bctx_relay_t *self, bctx_child_t *child, const char *text, size_t len)
{
    return s_pass_on (self, child, text, len, 0);
}

/* Copies a client's return address into p. */
static void
s_return_to (s_pending_t *p, const bctx_request_t *req)
{
    memcpy (p->env, req->envelope, req->envelope_len);
    p->env_len = req->envelope_len;
    p->delimiter = req->delimiter;
}

/* The error reply for a context whose process cannot take a request. */
static char *
s_unavailable (bctx_request_t *req, const bctx_child_t *c)
{
    if (c->state == BCTX_CHILD_DOWN || c->state == BCTX_CHILD_STARTING)
        return bctx_request_error (req, BCTX_E_UNAVAILABLE, "context \"%s\" is restarting "
                                   "(its process %s); try again", c->name,
                                   c->last_exit[0] ? c->last_exit : "is starting");
    return bctx_request_error (req, BCTX_E_UNAVAILABLE, "context \"%s\" is not taking "
                               "commands (its process is stopping)", c->name);
}

/* What an obituary names of a command: "Deposit (id x)", into what. */
static void
s_what (const bctx_request_t *req, char *what, size_t size)
{
    if (req->route) {
        const bctx_route_t *r = req->route;
        snprintf (what, size, "%.*s (id %.*s)", (int) r->command.len,
                  r->command.text ? r->command.text : "", r->id.text ? (int) r->id.len : 4,
                  r->id.text ? r->id.text : "none");
        return;
    }
    const char *id = json_string_value (json_object_get (req->body, "id"));
    snprintf (what, size, "%s (id %s)",
              json_string_value (json_object_get (req->body, "command")), id ? id : "none");
}

char *
bctx_relay_send (bctx_relay_t *self, bctx_request_t *req, const char *name)
{
    if (self->hold.n_names && bctx_hold_has (&self->hold, name)) {
        char what[160];
        s_what (req, what, sizeof what);
        bctx_hold_add (&self->hold, name, req, what);
        self->in_flight++;
        return NULL;
    }
    bctx_child_t *c = bctx_supervise_find (self->supervise, name);
    if (!c || c->state != BCTX_CHILD_UP)
        return c ? s_unavailable (req, c)
                 : bctx_request_error (req, BCTX_E_UNAVAILABLE, "context \"%s\" has no "
                                       "process", name);
    s_pending_t *p = s_pass_on (self, c, req->text, req->text_len, 1);
    if (!p)
        return s_unavailable (req, c);
    const bctx_config_t *config = self->registry->config;
    p->kind = S_CLIENT;
    p->deadline = bctx_now () + (double) (config->handler_timeout_ms + 2000) / 1000.0;
    s_return_to (p, req);
    s_what (req, p->what, sizeof p->what);
    p->latency = bctx_figures_commands (self->figures, name);
    p->admitted = bctx_now ();
    self->in_flight++;
    return NULL;
}

char *
bctx_relay_forward (bctx_relay_t *self, bctx_child_t *c, bctx_request_t *req, double timeout)
{
    s_pending_t *p = c->state == BCTX_CHILD_UP ? s_pass (self, c, req->text, req->text_len)
                                              : NULL;
    if (!p)
        return s_unavailable (req, c);
    p->kind = S_CLIENT;
    p->deadline = bctx_now () + timeout;
    s_return_to (p, req);
    self->in_flight++;
    return NULL;
}

/* Removes pending entry i. */
static void
s_drop (bctx_relay_t *self, size_t i)
{
    if (self->pending[i].kind == S_CLIENT)
        self->in_flight--;
    self->pending[i] = self->pending[--self->n_pending];
}

/* Does child have a client's command in flight, or bytes of one not
 * written yet? */
static int
s_busy (const bctx_relay_t *self, const bctx_child_t *c)
{
    if (c->commands >= 0 && c->out.off < c->out.len)
        return 1;
    for (size_t i = 0; i < self->n_pending; i++)
        if (self->pending[i].child == c && self->pending[i].kind == S_CLIENT)
            return 1;
    return 0;
}

/* Tells who waits for child to be idle, once it is. */
static void
s_check_idle (bctx_relay_t *self, bctx_child_t *c)
{
    for (size_t i = 0; i < self->n_idles; i++) {
        if (self->idles[i].child != c)
            continue;
        if (s_busy (self, c))
            return;
        s_idle_t told = self->idles[i];
        self->idles[i] = self->idles[--self->n_idles];
        told.fn (told.arg, c, NULL);
        return;
    }
}

void
bctx_relay_learn (bctx_relay_t *self, bctx_child_t *c, const json_t *stats)
{
    if (bctx_runs_learn (c, stats) < 0)
        return;
    bctx_registry_want_bridges (self->registry, c->consumes);
    if (!c->standby && !c->retired)
        bctx_registry_set_views (self->registry, c->name, c->projections);
}

/* Asks child for its stats (S_PROBE).  Return the pending entry, or
 * NULL when it could not be sent. */
static s_pending_t *
s_probe (bctx_relay_t *self, bctx_child_t *c)
{
    static const char ask[] = "{\"op\":\"stats\"}";
    s_pending_t *p = s_pass (self, c, ask, sizeof ask - 1);
    if (!p)
        return NULL;
    p->kind = S_PROBE;
    p->deadline = bctx_now () + S_PROBE_RESEND;
    c->probing = 1;
    return p;
}

/* A process's reply to a probe: it is up, and this is what it runs. */
static void
s_probed (bctx_relay_t *self, bctx_child_t *c, const char *reply)
{
    json_t *stats = json_loads (reply, 0, NULL);
    if (stats)
        bctx_relay_learn (self, c, stats);
    json_decref (stats);
    c->probing = 0;
    if (c->standby) {
        bctx_supervise_up (self->supervise, c);
        if (self->child_fn)
            self->child_fn (self->child_arg, c, reply);
        return;
    }
    bctx_local_t *handle = bctx_registry_find (self->registry, c->name);
    if (handle)
        bctx_registry_open_reader (self->registry, handle);
    s_link_commands (self, c);
    bctx_supervise_up (self->supervise, c);
}

/* Passes one reply of child (tag, body borrowed) on. */
static void
s_deliver (bctx_relay_t *self, bctx_child_t *c, uint64_t tag, const char *body, size_t len)
{
    c->heard_at = bctx_now ();
    size_t i = 0;
    while (tag && i < self->n_pending
           && (self->pending[i].tag != tag || self->pending[i].child != c))
        i++;
    if (!tag || i == self->n_pending)
        return;                   /* late: answered "unavailable" already */
    char *reply = strndup (body, len);
    /* Taken out first: answering may add entries. */
    s_pending_t p = self->pending[i];
    s_drop (self, i);
    switch (p.kind) {
    case S_CLIENT:
        bctx_api_send (self->api, p.env, p.env_len, p.delimiter, reply);
        if (p.latency)
            bctx_histogram_observe (p.latency, bctx_now () - p.admitted);
        s_check_idle (self, c);
        break;
    case S_PROBE:
        s_probed (self, c, reply);
        break;
    case S_ASK:
        p.fn (p.arg, c, reply);
        break;
    }
    free (reply);
}

/* Passes one reply of child (its frames: [tag][""][reply]) on. */
static void
s_answer (bctx_relay_t *self, bctx_child_t *c, zmq_msg_t *frames, int n)
{
    uint64_t tag = 0;
    if (n == 3 && zmq_msg_size (&frames[0]) == sizeof tag && zmq_msg_size (&frames[1]) == 0)
        memcpy (&tag, zmq_msg_data (&frames[0]), sizeof tag);
    if (tag)
        s_deliver (self, c, tag, zmq_msg_data (&frames[2]), zmq_msg_size (&frames[2]));
}

/* Reads up to 256 replies of child c on its link. */
static void
s_read_on (bctx_relay_t *self, bctx_child_t *c, void *socket)
{
    for (int k = 0; k < 256; k++) {
        zmq_msg_t frames[3];
        int n = bctx_frames_recv (socket, frames, 3);
        if (n == 0)
            break;
        s_answer (self, c, frames, n);
        for (int j = 0; j < (n < 3 ? n : 3); j++)
            zmq_msg_close (&frames[j]);
    }
}

/* Reads the replies waiting on child c's command link. */
static void
s_read_commands (bctx_relay_t *self, bctx_child_t *c)
{
    if (c->commands < 0)
        return;
    int rc = bctx_link_fill (c->commands, &c->in);
    uint64_t tag;
    const char *body;
    size_t len;
    int more;
    while ((more = bctx_link_next (&c->in, &tag, &body, &len)) == 1) {
        /* A request the worker refused before deciding: counted here. */
        int refused = (int) (tag >> BCTX_LINK_TAG_BITS);
        if (refused)
            bctx_api_count (self->api, bctx_error_wire (-refused));
        s_deliver (self, c, tag & BCTX_LINK_TAG_MASK, body, len);
    }
    if (rc < 0 || more < 0)
        s_unlink (self, c);
}

/* Reads both of child c's links. */
static void
s_read (bctx_relay_t *self, bctx_child_t *c)
{
    s_read_commands (self, c);
    s_read_on (self, c, c->link);
}

/* Connects child c's command link, once it answers (its worker listens
 * from before it does), and reads it in the loop. */
static void
s_link_commands (bctx_relay_t *self, bctx_child_t *c)
{
    if (c->commands >= 0)
        return;
    c->commands = bctx_link_connect (c->commands_path);
    if (c->commands < 0) {
        bctx_log (BCTX_LOG_WARN, "context %s: cannot connect its command link %s: its "
                  "commands take its request link", c->name, c->commands_path);
        return;
    }
    if (self->loop && c->reader_arg)
        c->commands_reader = bctx_loop_reader (self->loop, NULL, c->commands, s_on_readable,
                                               c->reader_arg);
}

/* Closes child c's command link (its process ended, or the link broke):
 * what was written to it is answered at the process's exit or deadline. */
static void
s_unlink (bctx_relay_t *self, bctx_child_t *c)
{
    if (c->commands_reader >= 0 && self->loop)
        bctx_loop_reader_end (self->loop, c->commands_reader);
    c->commands_reader = -1;
    if (c->commands >= 0)
        close (c->commands);
    c->commands = -1;
    c->out.off = c->out.len = 0;
    c->in.off = c->in.len = 0;
}

void
bctx_relay_wait (bctx_relay_t *self, int ms)
{
    size_t n;
    bctx_child_t **children = bctx_supervise_children (self->supervise, &n);
    zmq_pollitem_t items[2 * n + 1];
    for (size_t i = 0; i < n; i++) {
        items[2 * i] = (zmq_pollitem_t) { children[i]->link, 0, ZMQ_POLLIN, 0 };
        items[2 * i + 1] = (zmq_pollitem_t) { NULL, children[i]->commands, ZMQ_POLLIN, 0 };
    }
    zmq_poll (items, (int) (2 * n), ms);
    bctx_relay_read_all (self);
}

void
bctx_relay_read_all (bctx_relay_t *self)
{
    size_t n;
    bctx_child_t **children = bctx_supervise_children (self->supervise, &n);
    for (size_t i = 0; i < n; i++)
        s_read (self, children[i]);
}

/* A link reader's argument: the relay and the child. */
typedef struct {
    bctx_relay_t *relay;
    bctx_child_t *child;
} s_link_arg_t;

/* The loop's callback of a link. */
static int
s_on_readable (void *arg)
{
    s_link_arg_t *a = arg;
    s_read (a->relay, a->child);
    return BCTX_LOOP_GO_ON;
}


void
bctx_relay_attach (bctx_relay_t *self, bctx_loop_t *loop)
{
    if (!self->loop)
        bctx_loop_timer (loop, bctx_relay_tick, self);
    self->loop = loop;
    size_t n;
    bctx_child_t **children = bctx_supervise_children (self->supervise, &n);
    for (size_t i = 0; i < n; i++) {
        if (children[i]->reader >= 0)
            continue;
        s_link_arg_t *a = calloc (1, sizeof *a);
        *a = (s_link_arg_t) { self, children[i] };
        children[i]->reader = bctx_loop_reader (loop, children[i]->link, 0, s_on_readable, a);
        children[i]->reader_arg = a;
        if (children[i]->commands >= 0 && children[i]->commands_reader < 0)
            children[i]->commands_reader = bctx_loop_reader (loop, NULL, children[i]->commands,
                                                             s_on_readable, a);
    }
}

/* Answers pending entry i "unavailable" (why: what happened) and drops it. */
static void
s_fail (bctx_relay_t *self, size_t i, const char *why)
{
    s_pending_t *p = &self->pending[i];
    if (p->kind == S_CLIENT) {
        char *reply = bctx_reply_error (BCTX_E_UNAVAILABLE, "context \"%s\": %s; the command "
                                        "was not acknowledged, so it may be sent again",
                                        p->child->name, why);
        bctx_api_send (self->api, p->env, p->env_len, p->delimiter, reply);
        free (reply);
        if (p->latency)
            bctx_histogram_observe (p->latency, bctx_now () - p->admitted);
    }
    if (p->kind == S_PROBE)
        p->child->probing = 0;
    s_pending_t was = *p;
    s_drop (self, i);
    if (was.kind == S_ASK)
        was.fn (was.arg, was.child, NULL);
    else if (was.kind == S_CLIENT)
        s_check_idle (self, was.child);
}

double
bctx_relay_tick (void *self_)
{
    bctx_relay_t *self = self_;
    double now = bctx_now (), next = -1;
    size_t n;
    bctx_child_t **children = bctx_supervise_children (self->supervise, &n);
    for (size_t i = 0; i < n; i++) {
        bctx_child_t *c = children[i];
        if (c->commands >= 0 && c->out.off < c->out.len) {
            if (bctx_link_flush (c->commands, &c->out) < 0)
                s_unlink (self, c);
            else if (c->out.off < c->out.len)
                next = 0.001;     /* its socket is full: again soon */
        }
        if (c->state != BCTX_CHILD_STARTING || c->probing || now < c->probe_at)
            continue;
        if (!s_probe (self, c))
            c->probe_at = now + S_PROBE_AGAIN;
        double wait = c->probing ? S_PROBE_RESEND : S_PROBE_AGAIN;
        if (next < 0 || wait < next)
            next = wait;
    }
    for (size_t i = 0; i < self->n_pending;) {
        s_pending_t *p = &self->pending[i];
        if (now < p->deadline) {
            if (next < 0 || p->deadline - now < next)
                next = p->deadline - now;
            i++;
            continue;
        }
        bctx_child_t *c = p->child;
        int client = p->kind == S_CLIENT;
        double sent_at = p->sent_at;
        s_fail (self, i, "its process did not answer in time");
        if (client)
            bctx_supervise_unanswered (self->supervise, c, sent_at, now);
    }
    return next;
}

const char *
bctx_relay_oldest (const bctx_relay_t *self, const bctx_child_t *child)
{
    for (size_t i = 0; i < self->n_pending; i++)
        if (self->pending[i].child == child && self->pending[i].what[0])
            return self->pending[i].what;
    return NULL;
}

/* A context process ended: whatever waits for it is answered. */
static void
s_on_exit (void *arg, bctx_child_t *c)
{
    bctx_relay_t *self = arg;
    /* What it answered before it ended is passed on first. */
    s_read_commands (self, c);
    const char *oldest = bctx_relay_oldest (self, c);
    snprintf (c->last_command, sizeof c->last_command, "%s", oldest ? oldest : "");
    s_unlink (self, c);
    char why[320];
    snprintf (why, sizeof why, "its process ended (%s) before it answered", c->last_exit);
    for (size_t i = 0; i < self->n_pending;)
        if (self->pending[i].child == c)
            s_fail (self, i, why);
        else
            i++;
    s_check_idle (self, c);
    if ((c->standby || c->retired) && c->reader >= 0 && self->loop) {
        /* It does not come back: its supervisor frees it. */
        bctx_loop_reader_end (self->loop, c->reader);
        c->reader = -1;
        free (c->reader_arg);
        c->reader_arg = NULL;
    }
    if (self->child_fn)
        self->child_fn (self->child_arg, c, NULL);
}

int
bctx_relay_all_up (bctx_relay_t *self)
{
    size_t n;
    bctx_child_t **children = bctx_supervise_children (self->supervise, &n);
    for (size_t i = 0; i < n; i++)
        if (children[i]->state != BCTX_CHILD_UP)
            return 0;
    return 1;
}

int64_t
bctx_relay_in_flight (const bctx_relay_t *self)
{
    return self->in_flight;
}

bctx_figures_t *
bctx_relay_figures (bctx_relay_t *self)
{
    return self->figures;
}

/* Answers held command h (taken out of the hold) "unavailable" (why). */
static void
s_held_fail (bctx_relay_t *self, const bctx_held_t *h, const char *why)
{
    char *reply = bctx_reply_error (BCTX_E_UNAVAILABLE, "context \"%s\": %s; the command "
                                    "was not acknowledged, so it may be sent again", h->name,
                                    why);
    bctx_api_send (self->api, h->env, h->env_len, h->delimiter, reply);
    free (reply);
    bctx_histogram_observe (bctx_figures_commands (self->figures, h->name),
                            bctx_now () - h->admitted);
    self->in_flight--;
}

void
bctx_relay_on_child (bctx_relay_t *self, bctx_relay_fn *fn, void *arg)
{
    self->child_fn = fn;
    self->child_arg = arg;
}

void
bctx_relay_hold (bctx_relay_t *self, const char *name)
{
    bctx_hold_start (&self->hold, name);
}

void
bctx_relay_unhold (bctx_relay_t *self, const char *name)
{
    size_t n;
    bctx_held_t *held = bctx_hold_take (&self->hold, name, &n);
    bctx_child_t *c = bctx_supervise_find (self->supervise, name);
    const bctx_config_t *config = self->registry->config;
    double deadline = bctx_now () + (double) (config->handler_timeout_ms + 2000) / 1000.0;
    for (size_t i = 0; i < n; i++) {
        bctx_held_t *h = &held[i];
        s_pending_t *p = c && c->state == BCTX_CHILD_UP
                         ? s_pass_on (self, c, h->text, h->len, 1) : NULL;
        if (!p) {
            s_held_fail (self, h, "its process is not taking commands");
            continue;
        }
        p->kind = S_CLIENT;
        p->deadline = deadline;
        memcpy (p->env, h->env, h->env_len);
        p->env_len = h->env_len;
        p->delimiter = h->delimiter;
        memcpy (p->what, h->what, sizeof p->what);
        p->latency = bctx_figures_commands (self->figures, name);
        p->admitted = h->admitted;
    }
    bctx_held_free (held, n);
}

void
bctx_relay_when_idle (bctx_relay_t *self, bctx_child_t *child, bctx_relay_fn *fn, void *arg)
{
    self->idles = bctx_realloc (self->idles, (self->n_idles + 1) * sizeof *self->idles);
    self->idles[self->n_idles++] = (s_idle_t) { child, fn, arg };
    s_check_idle (self, child);
}

int
bctx_relay_ask (bctx_relay_t *self, bctx_child_t *child, const char *text, size_t len,
                double timeout, bctx_relay_fn *fn, void *arg)
{
    s_pending_t *p = s_pass (self, child, text, len);
    if (!p)
        return -1;
    p->kind = S_ASK;
    p->deadline = bctx_now () + timeout;
    p->fn = fn;
    p->arg = arg;
    return 0;
}

void
bctx_relay_promoted (bctx_relay_t *self, bctx_child_t *c)
{
    bctx_registry_set_views (self->registry, c->name, c->projections);
    bctx_local_t *handle = bctx_registry_find (self->registry, c->name);
    if (handle)
        bctx_registry_open_reader (self->registry, handle);
    s_link_commands (self, c);
}

void
bctx_relay_abandon (bctx_relay_t *self)
{
    size_t n;
    bctx_held_t *held = bctx_hold_take (&self->hold, NULL, &n);
    for (size_t i = 0; i < n; i++)
        s_held_fail (self, &held[i], "the host stopped before its process took it");
    bctx_held_free (held, n);
    while (self->n_pending > 0)
        s_fail (self, 0, "the host stopped before its process answered");
}

void
bctx_relay_destroy (bctx_relay_t **self_p)
{
    BCTX_SELF_OR_RETURN (bctx_relay_t, self_p);
    bctx_hold_clear (&self->hold);
    size_t n;
    bctx_child_t **children = bctx_supervise_children (self->supervise, &n);
    for (size_t i = 0; i < n; i++) {
        free (children[i]->reader_arg);
        children[i]->reader_arg = NULL;
    }
    bctx_supervise_on_exit (self->supervise, NULL, NULL);
    free (self->pending);
    free (self->idles);
    bctx_figures_destroy (&self->figures);
    free (self);
    *self_p = NULL;
}
