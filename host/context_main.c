/*
 * context_main - one context process, built from its modules in order,
 * served by one loop on this thread until SIGTERM, drained in order: the
 * read side first (a reactor may wait on the worker), then the worker's
 * queue.  Besides what a host serves, its link takes a handover's two
 * steps: "release" (the process being replaced gives its context up) and
 * "take" (its standby takes it).
 */

#include "context_main.h"
#include "api.h"
#include "commands.h"
#include "core.h"
#include "datadir.h"
#include "endpoint.h"
#include "log.h"
#include "loop.h"
#include "ops.h"
#include "peers.h"
#include "reconfig.h"
#include "registry.h"
#include "security.h"
#include "supervise.h"
#include "util.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#define S_MARK_EVERY   0.1     /* seconds between high-water mark updates */
#define S_LOCK_WAIT_MS 5000    /* longest wait for the writer lock a process
                                  of this context that is still ending holds */

struct bctx_context_main {
    bctx_core_t core;             /* the ZeroMQ context, registry (the config, the
                                     context and its runners), api (the link to the
                                     supervisor), commands, security, peers (the
                                     supervisor for siblings, and peer hosts), ops
                                     and the loop */
    bctx_datadir_t *datadir;      /* the context's writer lock and its mark, or NULL
                                     while standing by and once released */
    int stop_fd;                  /* the signalfd bctx_context_main_run was given */
    double mark_due;              /* monotonic: when to update the mark next */
    int running;                  /* its threads run: it took its context */
    int released;                 /* it gave its context up for a handover */
};

static char *s_op_release (void *arg, bctx_request_t *req);
static char *s_op_take (void *arg, bctx_request_t *req);
static char *s_op_reload (void *arg, bctx_request_t *req);

int
bctx_context_main_config (bctx_config_t *config, const char *name, const char *plugin,
                     unsigned generation, char *err, size_t errlen)
{
    char admin[4200], link[4200], in[4200], out[4200], sock[160];
    if (generation)
        snprintf (sock, sizeof sock, "ctx-%s.%u.sock", name, generation);
    else
        snprintf (sock, sizeof sock, "ctx-%s.sock", name);
    if (bctx_run_endpoint (config->data, "admin.sock", admin, sizeof admin, err, errlen) < 0
        || bctx_run_endpoint (config->data, sock, link, sizeof link, err, errlen) < 0
        || bctx_run_endpoint (config->data, "bus-in.sock", in, sizeof in, err, errlen) < 0
        || bctx_run_endpoint (config->data, "bus-out.sock", out, sizeof out, err, errlen) < 0)
        return -1;
    if (bctx_config_for_context (config, name, plugin, admin, link, in, out) < 0) {
        snprintf (err, errlen, "--context %s: %s has no local context of that name", name,
                  config->path);
        return -1;
    }
    return 0;
}

/* Builds the modules in order, each from the ones below it; a standby
 * stops short of starting its threads.  Return 0, or -1 with the reason. */
static int
s_build (bctx_context_main_t *self, bctx_config_t *config, char *err, size_t errlen)
{
    bctx_core_t *core = &self->core;
    if (bctx_core_open (core, config, err, errlen) < 0)
        return -1;
    core->registry->poison = bctx_poison_open (config->data, config->only, !config->standby);
    if (bctx_registry_open_contexts (core->registry, err, errlen) < 0)
        return -1;
    core->peers = bctx_peers_new (core->registry, core->api, core->security, err, errlen);
    if (!core->peers || bctx_registry_open_read_side (core->registry, err, errlen) < 0)
        return -1;
    bctx_commands_route (core->commands, core->peers);
    core->ops = bctx_ops_new (core->registry, core->api, core->commands, core->peers);
    bctx_api_handle (core->api, BCTX_OP_RELEASE, s_op_release, self);
    bctx_api_handle (core->api, BCTX_OP_TAKE, s_op_take, self);
    bctx_api_handle (core->api, BCTX_OP_RELOAD, s_op_reload, self);
    if (bctx_core_check_ops (core, err, errlen) < 0)
        return -1;
    if (bctx_api_bind (core->api, core->zctx, config, core->security, err, errlen) < 0)
        return -1;
    if (config->standby)
        return bctx_worker_warm (core->registry->contexts[0].worker, err, errlen);
    if (bctx_registry_start (core->registry, BCTX_COMMANDS_REPLIES, err, errlen) < 0)
        return -1;
    self->running = 1;
    return 0;
}

bctx_context_main_t *
bctx_context_main_new (bctx_config_t *config, int *failure, char *err, size_t errlen)
{
    bctx_context_main_t *self = calloc (1, sizeof *self);
    bctx_core_t *core = &self->core;
    self->stop_fd = -1;
    /* The writer lock first, before any file of the context is opened,
     * unless the process stands by for a handover: the process it replaces
     * holds it until it releases. */
    if (!config->standby) {
        self->datadir = bctx_datadir_attach (config->data, config->only, S_LOCK_WAIT_MS,
                                             err, errlen);
        if (!self->datadir) {
            bctx_config_destroy (&config);
            free (self);
            return NULL;
        }
    }
    if (s_build (self, config, err, errlen) < 0) {
        if (failure && core->registry && core->registry->contexts)
            *failure = core->registry->contexts[0].load_failure;
        if (!core->registry)
            bctx_config_destroy (&config);
        bctx_context_main_destroy (&self);
        return NULL;
    }
    const bctx_registry_t *reg = core->registry;
    bctx_log (BCTX_LOG_INFO, "context %s: process %d %s, %zu projection(s), %zu reactor(s)",
              config->only, (int) getpid (), config->standby ? "standing by for a handover"
                                                             : "ready",
              reg->n_projections, reg->n_reactors);
    return self;
}

/* A handover step's reply: {"ok":true,"position":N,"version":V,"plugin":P},
 * N the log's head, V and P the version this process runs.  Return: new. */
static char *
s_step_reply (bctx_context_main_t *self, int64_t position)
{
    bctx_plugin_t *p = bctx_worker_plugin (self->core.registry->contexts[0].worker);
    char *reply = bctx_reply_dump_new (json_pack (
        "{s:b, s:I, s:s, s:s}", "ok", 1, "position", (json_int_t) position, "version",
        p->desc->version ? p->desc->version : "", "plugin", p->path));
    bctx_plugin_unref (&p);
    return reply;
}

/* {"op":"release"}: the process a handover replaces gives its context
 * up.  Its runners end (each at a checkpoint), its worker finishes what it
 * was sent (all it was sent before this request) and stops, and its
 * writer lock is dropped.
 * The process lives on, serving nothing, until its SIGTERM.  Return the
 * reply (s_step_reply). */
static char *
s_op_release (void *arg, bctx_request_t *req)
{
    bctx_context_main_t *self = arg;
    if (!self->running || self->released)
        return bctx_request_error (req, BCTX_E_BAD_REQUEST, "context %s: nothing to release "
                                   "(%s)", self->core.registry->config->only,
                                   self->released ? "released already" : "not serving yet");
    bctx_registry_t *reg = self->core.registry;
    bctx_registry_end_runners (reg);
    bctx_registry_end_bridges (reg);
    bctx_registry_stop_workers (reg, 0);
    bctx_registry_join_workers (reg);
    bctx_worker_hand_off (reg->contexts[0].worker);
    /* No mark now: the process that takes writes one at its first tick
     * (a mark is a lower bound; this one's last is at most S_MARK_EVERY
     * old), and commands wait while this one releases. */
    bctx_datadir_destroy (&self->datadir);
    self->released = 1;
    int64_t position = atomic_load (&bctx_worker_stats (reg->contexts[0].worker)->position);
    bctx_log (BCTX_LOG_INFO, "context %s: released at position %lld for a handover",
              reg->config->only, (long long) position);
    return s_step_reply (self, position);
}

/* {"op":"take"}: a standby takes its context, once the process before it
 * released it: the writer lock, the log's head, and its threads.  Return
 * the reply (s_step_reply). */
static char *
s_op_take (void *arg, bctx_request_t *req)
{
    bctx_context_main_t *self = arg;
    bctx_core_t *core = &self->core;
    const bctx_config_t *config = core->registry->config;
    if (self->running || self->released)
        return bctx_request_error (req, BCTX_E_BAD_REQUEST, "context %s: serves already",
                                   config->only);
    char err[1024];
    /* Most of the catch-up first, while the old process lets the lock go
     * (the log is read, not written): only what it committed meanwhile is
     * left for after. */
    bctx_worker_refresh (core->registry->contexts[0].worker);
    self->datadir = bctx_datadir_attach (config->data, config->only, S_LOCK_WAIT_MS, err,
                                         sizeof err);
    if (!self->datadir)
        return bctx_request_error (req, BCTX_E_UNAVAILABLE, "%s", err);
    int64_t position = bctx_worker_refresh (core->registry->contexts[0].worker);
    if (position < 0 || bctx_registry_start (core->registry, BCTX_COMMANDS_REPLIES, err,
                                             sizeof err) < 0) {
        /* Half started: this process cannot be trusted to serve. */
        bctx_log (BCTX_LOG_ERROR, "context %s: cannot take over: %s", config->only,
                  position < 0 ? "cannot read the log's head" : err);
        _exit (1);
    }
    self->running = 1;
    bctx_log (BCTX_LOG_INFO, "context %s: took over at position %lld", config->only,
              (long long) position);
    return s_step_reply (self, position);
}

/* {"op":"reload"}: a handover is its supervisor's to run (reload.h); a
 * context process does not swap its own version. */
static char *
s_op_reload (void *arg, bctx_request_t *req)
{
    bctx_context_main_t *self = arg;
    return bctx_request_error (req, BCTX_E_BAD_REQUEST, "context %s: reload is served by "
                               "the host's supervisor, which hands the context over to a "
                               "new process", self->core.registry->config->only);
}

/* Raises the context's high-water mark to its worker's last commit (an
 * atomic the worker stores after each commit), every S_MARK_EVERY.
 * Return seconds until the next update. */
static double
s_mark_tick (void *arg)
{
    bctx_context_main_t *self = arg;
    double now = bctx_now ();
    if (now >= self->mark_due) {
        if (self->datadir)
            bctx_registry_mark (self->core.registry, self->datadir);
        self->mark_due = now + S_MARK_EVERY;
    }
    return self->mark_due - now;
}

/* The first plugin code of this process that has run past
 * host.handler_timeout_ms, named in what (its decide, a projection's or
 * a reactor's handler).  Return how long, or 0. */
static long long
s_hung (bctx_context_main_t *self, char *what, size_t size)
{
    const bctx_registry_t *reg = self->core.registry;
    long long limit = (long long) reg->config->handler_timeout_ms, ms;
    for (size_t i = 0; i < reg->n_contexts; i++)
        if (reg->contexts[i].worker
            && (ms = bctx_busy_ms (&bctx_worker_stats (reg->contexts[i].worker)->busy)) > limit) {
            snprintf (what, size, "its decide or evolve");
            return ms;
        }
    for (size_t i = 0; i < reg->n_projections + reg->n_reactors; i++) {
        const bctx_consumer_t *base = i < reg->n_projections
            ? bctx_projector_base (reg->projections[i].projector)
            : bctx_reactor_base (reg->reactors[i - reg->n_projections]);
        ms = i < reg->n_projections ? bctx_busy_ms (&base->busy)
                                    : bctx_reactor_busy_ms (reg->reactors[i - reg->n_projections]);
        if (ms > limit) {
            snprintf (what, size, "the handler of %s", base->who);
            return ms;
        }
    }
    return 0;
}

/* The watchdog: plugin code that runs past host.handler_timeout_ms ends
 * the process (its supervisor answers what was in flight and restarts
 * it).  Return seconds until the next look. */
static double
s_watchdog_tick (void *arg)
{
    bctx_context_main_t *self = arg;
    char what[200];
    long long ms = s_hung (self, what, sizeof what);
    if (ms > 0) {
        bctx_log (BCTX_LOG_ERROR, "context %s: hung: %s has run for %lld ms, past "
                  "host.handler_timeout_ms (%zu ms): this context process ends so that its "
                  "supervisor restarts it", self->core.registry->config->only, what, ms,
                  self->core.registry->config->handler_timeout_ms);
        _exit (BCTX_EXIT_HUNG);
    }
    return 0.1;
}

/* A signal: SIGHUP applies the config file again; SIGINT and SIGTERM
 * stop the loop. */
static int
s_on_signal (void *arg)
{
    bctx_context_main_t *self = arg;
    struct signalfd_siginfo si;
    if (read (self->stop_fd, &si, sizeof si) != (ssize_t) sizeof si)
        return BCTX_LOOP_NEW_TURN;
    if (si.ssi_signo == SIGHUP) {
        bctx_log (BCTX_LOG_INFO, "SIGHUP: re-reading %s", self->core.registry->config->path);
        if (self->running && !self->released)
            bctx_reconfig_apply (self->core.registry);
        return BCTX_LOOP_NEW_TURN;
    }
    if (si.ssi_signo == SIGCHLD)
        return BCTX_LOOP_NEW_TURN;
    bctx_log (BCTX_LOG_INFO, "signal %u: stopping", si.ssi_signo);
    return BCTX_LOOP_STOP;
}

int
bctx_context_main_run (bctx_context_main_t *self, int stop_fd)
{
    bctx_core_t *core = &self->core;
    /* Readers in the order they are served in a turn: the signal first,
     * then replies before new requests. */
    self->stop_fd = stop_fd;
    core->loop = bctx_loop_new ();
    bctx_loop_reader (core->loop, NULL, stop_fd, s_on_signal, self);
    bctx_commands_attach (core->commands, core->loop);
    bctx_peers_attach (core->peers, core->loop);
    bctx_loop_timer (core->loop, s_mark_tick, self);
    bctx_loop_timer (core->loop, s_watchdog_tick, self);
    bctx_api_attach (core->api, core->loop);
    bctx_loop_run (core->loop);

    /* The read side stops first: a reactor may be waiting on the worker. */
    bctx_registry_end_runners (core->registry);
    /* Drain: take nothing new, let the worker finish its queue. */
    bctx_log (BCTX_LOG_INFO, "draining %lld command(s) in flight",
              (long long) bctx_commands_in_flight (core->commands));
    if (self->running && !self->released)
        bctx_registry_stop_workers (core->registry, 0);
    bctx_commands_drain (core->commands);
    /* Commands at peers: their answers, until their deadlines; then
     * "unavailable" for the rest, so no client is left without a reply. */
    bctx_peers_drain (core->peers);
    return 0;
}

/* Stops the worker and lets what it hands back go. */
static void
s_stop_worker (bctx_context_main_t *self)
{
    bctx_core_t *core = &self->core;
    bctx_registry_stop_workers (core->registry, ZMQ_DONTWAIT);
    bctx_registry_join_workers (core->registry);
    /* The worker's last commit, in the mark, at a clean stop. */
    self->mark_due = 0;
    s_mark_tick (self);
    if (core->commands)
        bctx_commands_discard (core->commands);
}

void
bctx_context_main_destroy (bctx_context_main_t **self_p)
{
    BCTX_SELF_OR_RETURN (bctx_context_main_t, self_p);
    bctx_registry_t *reg = self->core.registry;
    if (reg) {
        /* The read side first: a reactor may be waiting on the worker. */
        bctx_registry_end_runners (reg);
        bctx_registry_end_bridges (reg);
        s_stop_worker (self);
        bctx_registry_close_contexts (reg);
    }
    bctx_core_close (&self->core, NULL);
    /* Last: every file of the context is closed before the lock goes. */
    bctx_datadir_destroy (&self->datadir);
    free (self);
    *self_p = NULL;
}
