/*
 * reload - the handover state machine.  A handover is in one of four
 * steps: the standby starting (its process loads the new version), the
 * old process draining (commands held, those in flight still answered),
 * the old process releasing, and the standby taking.  Each step ends with
 * the relay telling this module (a reply, or the end of a process), and
 * every outcome goes back to the client as a reply with a code.
 */

#include "reload.h"
#include "log.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Where a handover is. */
enum {
    S_STARTING = 0,               /* the standby loads the new version */
    S_DRAINING = 1,               /* commands held; the old one's in flight finish */
    S_SWITCHING = 2               /* the old one told "release", the standby "take" */
};

/* One handover on its way. */
typedef struct {
    char *name;                   /* the context */
    bctx_child_t *old;            /* the process serving it */
    bctx_child_t *next;           /* the standby */
    int step;                     /* S_* */
    char *path;                   /* the plugin asked for, as asked (for messages) */
    double held_at;               /* monotonic: when its commands began to wait */
    double switch_at;             /* monotonic: when "release" and "take" went */
    double released_at;           /* monotonic: when the old one answered "release" */
    double taken_at;              /* monotonic: when the standby answered "take" */
    int released;                 /* the old one let its context go */
    int took;                     /* the standby: 1 took, -1 could not (why) */
    json_t *taken;                /* its answer, once it took */
    char why[600];                /* why it could not */
    double deadline;              /* monotonic: the end of the drain */
    char previous[64];            /* the version the old one ran */
    unsigned char env[BCTX_API_ENVELOPE_MAX]; /* the client's envelope, if any */
    size_t env_len;               /* 0: a reload of the file watch or SIGHUP */
    int delimiter;                /* the client sent an empty frame first */
} s_handover_t;

struct bctx_reload {
    bctx_registry_t *registry;    /* the config (borrowed) */
    bctx_api_t *api;              /* to answer clients (borrowed) */
    bctx_supervise_t *supervise;  /* the processes (borrowed) */
    bctx_relay_t *relay;          /* the links to them (borrowed) */
    bctx_loop_t *loop;            /* where the links are read (borrowed), or NULL */
    s_handover_t **handovers;     /* on their way */
    size_t n_handovers;           /* how many */
};

static char *s_op_reload (void *arg, bctx_request_t *req);
static char *s_op_internal (void *arg, bctx_request_t *req);
static void s_on_child (void *arg, bctx_child_t *child, const char *reply);

bctx_reload_t *
bctx_reload_new (bctx_registry_t *registry, bctx_api_t *api, bctx_supervise_t *supervise,
                 bctx_relay_t *relay)
{
    bctx_reload_t *self = calloc (1, sizeof *self);
    *self = (bctx_reload_t) { .registry = registry, .api = api, .supervise = supervise,
                              .relay = relay };
    bctx_api_handle (api, BCTX_OP_RELOAD, s_op_reload, self);
    bctx_api_handle (api, BCTX_OP_RELEASE, s_op_internal, self);
    bctx_api_handle (api, BCTX_OP_TAKE, s_op_internal, self);
    bctx_relay_on_child (relay, s_on_child, self);
    return self;
}

bctx_plugin_bounds_t
bctx_reload_bounds (const bctx_config_t *config, double deadline)
{
    return (bctx_plugin_bounds_t) {
        .dirs = config->plugin_dirs, .n_dirs = config->n_plugin_dirs,
        .dirs_given = config->plugin_dirs_given, .max_bytes = config->max_plugin_bytes,
        .deadline = deadline,
    };
}

/* Forgets handover h (answered already). */
static void
s_forget (bctx_reload_t *self, s_handover_t *h)
{
    for (size_t i = 0; i < self->n_handovers; i++)
        if (self->handovers[i] == h) {
            self->handovers[i] = self->handovers[--self->n_handovers];
            break;
        }
    /* Its processes may be freed now (supervise.c's s_prune). */
    h->old->pinned--;
    h->next->pinned--;
    json_decref (h->taken);
    free (h->name);
    free (h->path);
    free (h);
}

/* Answers h's client, if any, with reply (new, freed here), and forgets h. */
static void
s_finish (bctx_reload_t *self, s_handover_t *h, char *reply)
{
    if (h->env_len)
        bctx_api_send (self->api, h->env, h->env_len, h->delimiter, reply);
    free (reply);
    s_forget (self, h);
}

/* Counts handover h's outcome (BCTX_RELOAD_*) and, once its commands
 * were held, how long they were (until now: they are let go). */
static void
s_count (bctx_reload_t *self, const s_handover_t *h, int outcome)
{
    double pause = h->held_at > 0 ? bctx_now () - h->held_at : -1;
    bctx_figures_reload (bctx_relay_figures (self->relay), h->name, outcome, pause);
}

/* A handover that failed before its switch: the standby ends, the held
 * commands go to the old process, which served all along (or, when it
 * ended or was killed, to the old version's next process); its context
 * shows why.  code, why: borrowed. */
static void
s_give_up (bctx_reload_t *self, s_handover_t *h, const char *code, const char *why)
{
    const bctx_child_t *old = h->old;
    const char *outcome = old->pid && old->state == BCTX_CHILD_UP && !old->killed
                          ? "the old version keeps serving"
                          : "the old version starts again";
    if (h->next && !h->next->retired)
        bctx_supervise_retire (self->supervise, h->next, 0);
    s_count (self, h, BCTX_RELOAD_FAILED);
    bctx_relay_unhold (self->relay, h->name);
    bctx_child_t *c = bctx_supervise_find (self->supervise, h->name);
    if (c)
        snprintf (c->last_reload_error, sizeof c->last_reload_error, "%.1000s", why);
    bctx_log (BCTX_LOG_ERROR, "context %s: reload failed, %s: %s", h->name, outcome, why);
    s_finish (self, h, bctx_reply_error (code, "reload failed, %s: %s", outcome, why));
}

/* A handover that failed after the old process released its context:
 * that version is started again (the handover's rollback). */
static void
s_roll_back (bctx_reload_t *self, s_handover_t *h, const char *why)
{
    if (h->next && !h->next->retired)
        bctx_supervise_retire (self->supervise, h->next, 0);
    bctx_supervise_reinstate (self->supervise, h->old);
    s_count (self, h, BCTX_RELOAD_ROLLED_BACK);
    bctx_relay_unhold (self->relay, h->name);
    snprintf (h->old->last_reload_error, sizeof h->old->last_reload_error,
              "%s; rolled back to the previous version", why);
    bctx_log (BCTX_LOG_ERROR, "context %s: reload failed after the switch began: %s; rolled "
              "back to the previous version, which starts again", h->name, why);
    s_finish (self, h, bctx_reply_error (BCTX_E_UNAVAILABLE, "reload failed after the old "
                                         "version released its context: %s; rolled back to "
                                         "the previous version, which starts again", why));
}

/* The handover of child c (as old or next), or NULL. */
static s_handover_t *
s_find (bctx_reload_t *self, const bctx_child_t *c)
{
    for (size_t i = 0; i < self->n_handovers; i++)
        if (self->handovers[i]->old == c || self->handovers[i]->next == c)
            return self->handovers[i];
    return NULL;
}

/* The handover of child c (as old or next) when it is at step, or NULL
 * (an answer that comes after the handover moved on or ended). */
static s_handover_t *
s_at (bctx_reload_t *self, const bctx_child_t *c, int step)
{
    s_handover_t *h = s_find (self, c);
    return h && h->step == step ? h : NULL;
}

/* The reason a standby wrote before it ended (context_main.h's
 * standby-NAME.G.json), into why, with its wire code.  Return the code. */
static const char *
s_standby_failure (bctx_reload_t *self, s_handover_t *h, char *why, size_t size)
{
    char path[4200];
    snprintf (path, sizeof path, "%s/run/standby-%s.%u.json", self->registry->config->data,
              h->name, h->next->generation);
    json_t *told = json_load_file (path, 0, NULL);
    unlink (path);
    const char *message = json_string_value (json_object_get (told, "message"));
    int failure = (int) json_integer_value (json_object_get (told, "failure"));
    const char *code = BCTX_E_BAD_REQUEST;
    if (!message) {
        snprintf (why, size, "the new version's process %s before it was ready",
                  h->next->last_exit);
        code = BCTX_E_UNAVAILABLE;
    } else if (failure == BCTX_ELOADTIMEDOUT) {
        snprintf (why, size, "reload of context %s timed out after %zu ms while loading the "
                  "plugin: %s", h->name, self->registry->config->reload_timeout_ms, message);
        code = bctx_error_wire (failure);
    } else {
        /* The loader's outcome carries its wire code; anything else that
         * stopped the standby (its read side, its log) is the request's. */
        snprintf (why, size, "%s", message);
        code = failure < 0 ? bctx_error_wire (failure) : BCTX_E_BAD_REQUEST;
    }
    json_decref (told);
    return code;
}

/* The switch: the old process released and the standby took.  Routing
 * goes to the standby, and the held commands with it. */
static void
s_switch (bctx_reload_t *self, s_handover_t *h)
{
    json_t *r = h->taken;
    bctx_supervise_promote (self->supervise, h->next, h->old);
    bctx_relay_promoted (self->relay, h->next);
    s_count (self, h, BCTX_RELOAD_OK);
    bctx_relay_unhold (self->relay, h->name);
    double now = bctx_now (), pause = now - h->held_at;
    const char *version = json_string_value (json_object_get (r, "version"));
    const char *plugin = json_string_value (json_object_get (r, "plugin"));
    json_int_t position = json_integer_value (json_object_get (r, "position"));
    bctx_log (BCTX_LOG_INFO, "context %s: handed over from version %s (process %d) to %s "
              "(process %d) at position %lld; commands waited %.1f ms (drain %.1f, then "
              "released in %.1f and taken in %.1f, at once)", h->name, h->previous,
              (int) h->old->pid, version ? version : "?", (int) h->next->pid,
              (long long) position, pause * 1000, (h->switch_at - h->held_at) * 1000,
              (h->released_at - h->switch_at) * 1000, (h->taken_at - h->switch_at) * 1000);
    s_finish (self, h, bctx_reply_dump_new (json_pack (
        "{s:b, s:s, s:s, s:s, s:s, s:I, s:I}", "ok", 1, "context", h->name, "version",
        version ? version : "", "previous", h->previous, "plugin", plugin ? plugin : "",
        "pause_us", (json_int_t) (pause * 1e6), "position", position)));
}

/* Goes on with h's switch once both its halves answered: the switch, or,
 * when the standby could not take, the rollback. */
static void
s_go_on (bctx_reload_t *self, s_handover_t *h)
{
    if (!h->released || !h->took)
        return;
    if (h->took < 0)
        s_roll_back (self, h, h->why);
    else
        s_switch (self, h);
}

/* The standby's answer to "take" (it took the writer lock once the old
 * process let it go). */
static void
s_taken (void *arg, bctx_child_t *next, const char *reply)
{
    bctx_reload_t *self = arg;
    s_handover_t *h = s_at (self, next, S_SWITCHING);
    if (!h || h->took)
        return;
    h->taken_at = bctx_now ();
    json_t *r = reply ? json_loads (reply, 0, NULL) : NULL;
    if (json_is_true (json_object_get (r, "ok"))) {
        h->took = 1;
        h->taken = r;
    } else {
        const char *message = json_string_value (json_object_get (json_object_get (r, "error"),
                                                                  "message"));
        snprintf (h->why, sizeof h->why, "the new version could not take over: %s",
                  message ? message : next->last_exit[0] ? next->last_exit
                                                          : "it did not answer in time");
        h->took = -1;
        json_decref (r);
    }
    s_go_on (self, h);
}

/* The old process's answer to "release". */
static void
s_released (void *arg, bctx_child_t *old, const char *reply)
{
    bctx_reload_t *self = arg;
    s_handover_t *h = s_at (self, old, S_SWITCHING);
    if (!h || h->released)
        return;
    h->released_at = bctx_now ();
    json_t *r = reply ? json_loads (reply, 0, NULL) : NULL;
    int ok = json_is_true (json_object_get (r, "ok"));
    const char *previous = json_string_value (json_object_get (r, "version"));
    snprintf (h->previous, sizeof h->previous, "%s", previous ? previous : "?");
    json_decref (r);
    if (!ok && old->pid) {
        /* It may have stopped half its threads: it is restarted, with its
         * version, and the reload given up (the standby, which may have
         * taken the lock once the old one was killed, is ended unused:
         * no command went to it). */
        bctx_supervise_kill (self->supervise, old, BCTX_KILL_HUNG, 0);
        s_give_up (self, h, BCTX_E_UNAVAILABLE, "the old version did not release its context "
                   "in time: its process is restarted");
        return;
    }
    /* Released (or ended, which released it too): it goes. */
    bctx_supervise_retire (self->supervise, old, 1);
    h->released = 1;
    s_go_on (self, h);
}

/* The old process has no command in flight: it is told "release" and
 * the standby "take", at once.  The old one lets the writer lock go; the
 * standby waits for that lock, then reads the log's head.  So the switch
 * costs one round trip, not two. */
static void
s_idle (void *arg, bctx_child_t *old, const char *reply)
{
    (void) reply;
    bctx_reload_t *self = arg;
    s_handover_t *h = s_at (self, old, S_DRAINING);
    if (!h)
        return;
    h->step = S_SWITCHING;
    h->switch_at = bctx_now ();
    double timeout = (double) self->registry->config->handler_timeout_ms / 1000.0;
    static const char release[] = "{\"op\":\"release\"}", take[] = "{\"op\":\"take\"}";
    if (bctx_relay_ask (self->relay, old, release, sizeof release - 1, timeout + 2.0,
                        s_released, self) < 0) {
        s_give_up (self, h, BCTX_E_UNAVAILABLE, "the old version's process cannot be reached");
        return;
    }
    if (bctx_relay_ask (self->relay, h->next, take, sizeof take - 1, timeout + 7.0, s_taken,
                        self) < 0) {
        snprintf (h->why, sizeof h->why, "the new version's process cannot be reached");
        h->took = -1;
    }
}

/* The standby answered: it is ready.  The commands wait from now on. */
static void
s_ready (bctx_reload_t *self, s_handover_t *h)
{
    h->step = S_DRAINING;
    h->held_at = bctx_now ();
    h->deadline = h->held_at + (double) self->registry->config->reload_timeout_ms / 1000.0;
    bctx_relay_hold (self->relay, h->name);
    bctx_relay_when_idle (self->relay, h->old, s_idle, self);
}

/* What the relay tells of a child: a standby up (reply its stats), or a
 * process that ended (reply NULL). */
static void
s_on_child (void *arg, bctx_child_t *c, const char *reply)
{
    bctx_reload_t *self = arg;
    s_handover_t *h = s_find (self, c);
    if (!h)
        return;
    char why[1400];
    if (c == h->next && reply) {
        if (h->step == S_STARTING)
            s_ready (self, h);
    } else if (c == h->next) {
        if (h->step == S_STARTING) {
            const char *code = s_standby_failure (self, h, why, sizeof why);
            s_give_up (self, h, code, why);
        } else if (h->step == S_DRAINING) {
            snprintf (why, sizeof why, "the new version's process %s", c->last_exit);
            s_give_up (self, h, BCTX_E_UNAVAILABLE, why);
        }
        /* Switching: the ask's answer (NULL) rolls it back. */
    } else if (h->step == S_STARTING || h->step == S_DRAINING) {
        /* The old process ended: the context restarts as after any crash;
         * this reload is given up. */
        snprintf (why, sizeof why, "the old version's process %s during the reload",
                  c->last_exit);
        s_give_up (self, h, BCTX_E_UNAVAILABLE, why);
    }
}

/* Checks that a reload of ctx from path may start.  Return NULL, or an
 * error reply (new, logged) with its code in *code. */
static char *
s_check (bctx_reload_t *self, size_t ctx, const char *path, const char **code)
{
    const bctx_config_t *config = self->registry->config;
    const char *name = config->contexts[ctx].name;
    /* First and cheapest: may code load from there at all?  Nothing opens
     * the file before this (the standby's loader checks again).  A path
     * that does not resolve goes on, for the loader to say so. */
    bctx_plugin_bounds_t bounds = bctx_reload_bounds (config, 0);
    char *resolved = NULL, why[2048];
    if (bctx_plugin_dirs_check (&bounds, path, "reload", &resolved, why, sizeof why)
        == BCTX_ELOADFORBIDDEN) {
        bctx_child_t *c = bctx_supervise_find (self->supervise, name);
        if (c)
            snprintf (c->last_reload_error, sizeof c->last_reload_error, "%.1000s", why);
        bctx_log (BCTX_LOG_ERROR, "context %s: reload refused, the old version keeps "
                  "serving: %s", name, why);
        *code = BCTX_E_FORBIDDEN;
        return bctx_reply_error (BCTX_E_FORBIDDEN, "reload refused, the old version keeps "
                                 "serving: %s", why);
    }
    free (resolved);
    for (size_t i = 0; i < self->n_handovers; i++)
        if (strcmp (self->handovers[i]->name, name) == 0) {
            *code = BCTX_E_UNAVAILABLE;
            return bctx_reply_error (BCTX_E_UNAVAILABLE, "a reload of context %s is already "
                                     "in progress", name);
        }
    bctx_child_t *c = bctx_supervise_find (self->supervise, name);
    if (!c || c->state != BCTX_CHILD_UP) {
        *code = BCTX_E_UNAVAILABLE;
        return bctx_reply_error (BCTX_E_UNAVAILABLE, "context %s is restarting (its process "
                                 "%s): reload it once it serves", name,
                                 c && c->last_exit[0] ? c->last_exit : "is starting");
    }
    return NULL;
}

char *
bctx_reload_start (bctx_reload_t *self, size_t ctx, const char *path,
                   const unsigned char *envelope, size_t envelope_len, int delimiter,
                   const char **code)
{
    const char *ignored;
    code = code ? code : &ignored;
    const bctx_config_t *config = self->registry->config;
    const char *name = config->contexts[ctx].name;
    char *refused = s_check (self, ctx, path ? path : config->contexts[ctx].plugin, code);
    if (refused) {
        bctx_figures_reload (bctx_relay_figures (self->relay), name, BCTX_RELOAD_FAILED, -1);
        return refused;
    }
    if (envelope_len > sizeof self->handovers[0]->env) {
        *code = BCTX_E_BAD_REQUEST;
        return bctx_reply_error (BCTX_E_BAD_REQUEST, "routing id too long");
    }
    char err[512];
    double deadline = bctx_now () + (double) config->reload_timeout_ms / 1000.0;
    bctx_child_t *next = bctx_supervise_standby (self->supervise, name, path, deadline,
                                                 err, sizeof err);
    if (!next) {
        bctx_figures_reload (bctx_relay_figures (self->relay), name, BCTX_RELOAD_FAILED, -1);
        *code = BCTX_E_INTERNAL;
        bctx_log (BCTX_LOG_ERROR, "context %s: reload failed: %s", name, err);
        return bctx_reply_error (BCTX_E_INTERNAL, "reload failed, the old version keeps "
                                 "serving: %s", err);
    }
    if (self->loop)
        bctx_relay_attach (self->relay, self->loop);
    s_handover_t *h = calloc (1, sizeof *h);
    *h = (s_handover_t) { .name = strdup (name), .old = bctx_supervise_find (self->supervise,
                                                                            name),
                          .next = next, .step = S_STARTING,
                          .path = strdup (path ? path : config->contexts[ctx].plugin),
                          .env_len = envelope_len, .delimiter = delimiter };
    if (envelope_len)
        memcpy (h->env, envelope, envelope_len);
    /* Both stay allocated while the handover refers to them, whatever
     * their processes do. */
    h->old->pinned++;
    h->next->pinned++;
    self->handovers = bctx_realloc (self->handovers,
                                    (self->n_handovers + 1) * sizeof *self->handovers);
    self->handovers[self->n_handovers++] = h;
    bctx_log (BCTX_LOG_INFO, "context %s: reloading from %s: process %d loads it", name,
              h->path, (int) next->pid);
    return NULL;
}

/* {"op":"reload","context":C,"plugin":P?}: a handover of C to P (or to
 * its configured plugin). */
static char *
s_op_reload (void *arg, bctx_request_t *req)
{
    bctx_reload_t *self = arg;
    const char *op = NULL, *name = NULL, *path = NULL;
    json_error_t jerr;
    if (json_unpack_ex (req->body, &jerr, JSON_STRICT, "{s:s, s:s, s?s}", "op", &op,
                        "context", &name, "plugin", &path) != 0)
        return bctx_request_error (req, BCTX_E_BAD_REQUEST, "reload: %s", jerr.text);
    int i = bctx_registry_index (self->registry->config, name);
    if (i < 0)
        return bctx_request_error (req, BCTX_E_UNKNOWN_CONTEXT,
                                   "no context \"%s\" on this host", name);
    const char *code = NULL;
    char *reply = bctx_reload_start (self, (size_t) i, path, req->envelope, req->envelope_len,
                                     req->delimiter, &code);
    if (reply)
        req->code = code;
    return reply;
}

/* release and take are the supervisor's own requests to its context
 * processes; the api refuses them to every role here before this runs. */
static char *
s_op_internal (void *arg, bctx_request_t *req)
{
    (void) arg;
    return bctx_request_error (req, BCTX_E_FORBIDDEN, "%s is a step of a handover, sent "
                               "only by a supervisor to its context processes",
                               req->op->name);
}

double
bctx_reload_tick (void *self_)
{
    bctx_reload_t *self = self_;
    double now = bctx_now (), next = -1;
    for (size_t i = 0; i < self->n_handovers;) {
        s_handover_t *h = self->handovers[i];
        if (h->step != S_DRAINING) {
            i++;
            continue;
        }
        if (now < h->deadline) {
            if (next < 0 || h->deadline - now < next)
                next = h->deadline - now;
            i++;
            continue;
        }
        char why[600];
        const char *oldest = bctx_relay_oldest (self->relay, h->old);
        snprintf (why, sizeof why, "reload of context %s timed out after %zu ms waiting for "
                  "the old version to finish its commands in flight (the oldest: %s)", h->name,
                  self->registry->config->reload_timeout_ms,
                  oldest ? oldest : "a decide that runs on");
        s_give_up (self, h, BCTX_E_UNAVAILABLE, why);   /* removes it: same i again */
    }
    return next;
}


void
bctx_reload_attach (bctx_reload_t *self, bctx_loop_t *loop)
{
    self->loop = loop;
    bctx_loop_timer (loop, bctx_reload_tick, self);
}

void
bctx_reload_stop (bctx_reload_t *self)
{
    while (self->n_handovers > 0) {
        s_handover_t *h = self->handovers[0];
        if (h->step == S_SWITCHING)
            s_roll_back (self, h, "the host is stopping");
        else
            s_give_up (self, h, BCTX_E_UNAVAILABLE, "the host is stopping");
    }
}

void
bctx_reload_destroy (bctx_reload_t **self_p)
{
    BCTX_SELF_OR_RETURN (bctx_reload_t, self_p);
    for (size_t i = 0; i < self->n_handovers; i++) {
        free (self->handovers[i]->name);
        free (self->handovers[i]->path);
        json_decref (self->handovers[i]->taken);
        free (self->handovers[i]);
    }
    free (self->handovers);
    free (self);
    *self_p = NULL;
}
