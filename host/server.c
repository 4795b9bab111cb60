/*
 * server - the supervisor, built from its modules: the registry of
 * handles, the api (the ROUTERs and the op table), commands, ops, peers,
 * the context processes (supervise) with the relay to them, the
 * handovers between them (reload, watch), and the bridges that keep
 * replicas of the peers' contexts.  It loads no plugin.  One loop
 * on this thread serves them.  This file builds them in order, runs the
 * loop until SIGINT or SIGTERM (SIGHUP goes to reconfig), drains in
 * order, and takes them down in order.  A context process is
 * context_main's.
 */

#include "server.h"
#include "api.h"
#include "bus.h"
#include "commands.h"
#include "core.h"
#include "datadir.h"
#include "endpoint.h"
#include "gather.h"
#include "http.h"
#include "log.h"
#include "loop.h"
#include "ops.h"
#include "peers.h"
#include "reconfig.h"
#include "registry.h"
#include "relay.h"
#include "reload.h"
#include "supervise.h"
#include "security.h"
#include "watch.h"
#include "util.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <limits.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

struct bctx_server {
    bctx_core_t core;             /* the ZeroMQ context, registry (the config and
                                     the handles), api, commands, security, peers,
                                     ops and the loop */
    bctx_datadir_t *datadir;      /* the lock on host.data and the high-water marks */
    bctx_bus_t *bus;              /* the internal bus */
    bctx_reload_t *reload;        /* handovers in progress */
    bctx_watch_t *watch;          /* the watched plugin files */
    bctx_supervise_t *supervise;  /* the context processes */
    bctx_relay_t *relay;          /* requests to them, commands among them */
    bctx_gather_t *gather;        /* stats, contexts, replay and retry across them */
    bctx_http_t *http;            /* the HTTP gateway on host.http, or NULL */
    int stop_fd;                  /* the signalfd bctx_server_run was given */
};

/* {"op":"stop"} (admin): the drain SIGTERM starts, started by the same
 * signal to this process, read from the loop's signalfd once the reply
 * is out. */
static char *
s_op_stop (void *arg, bctx_request_t *req)
{
    bctx_server_t *self = arg;
    (void) req;
    bctx_log (BCTX_LOG_INFO, "stop asked on the admin endpoint");
    kill (getpid (), SIGTERM);
    return bctx_reply_dump_new (json_pack ("{s:b, s:s, s:i, s:b}", "ok", 1, "host",
                                           self->core.registry->config->name, "pid",
                                           (int) getpid (), "stopping", 1));
}

/* Creates host.data and its parents.  Return 0, or -1 with the reason
 * under "host.data: ". */
static int
s_mkdirs (const char *path, char *err, size_t errlen)
{
    char why[512];
    if (bctx_mkdirs (path, 0755, why, sizeof why) == 0)
        return 0;
    snprintf (err, errlen, "host.data: %s", why);
    return -1;
}

/* Warns about an API or bus that listens on every address. */
static void
s_warn_wildcards (const bctx_config_t *config)
{
    const char *binds[2] = { config->api, config->publish };
    for (int k = 0; k < 2; k++)
        if (binds[k] && bctx_endpoint_is_wildcard (binds[k]))
            bctx_log (BCTX_LOG_WARN, "%s %s listens on every address of this machine%s",
                      k ? "host.publish" : "host.api", binds[k], config->curve_public
                      ? "; CURVE keys authenticate its clients"
                      : " and nothing authenticates its clients (host.allow_remote without "
                        "host.curve): anyone who can reach it can send commands and read "
                        "every log");
}

/* Waits until every context process answers, or one ends, or the start
 * takes too long.  Return 0, or -1 with the reason. */
static int
s_boot (bctx_server_t *self, char *err, size_t errlen)
{
    const bctx_config_t *config = self->core.registry->config;
    double deadline = bctx_now () + (double) config->handler_timeout_ms / 1000.0 + 10.0;
    while (!bctx_relay_all_up (self->relay)) {
        bctx_supervise_tick (self->supervise);
        size_t n;
        bctx_child_t **children = bctx_supervise_children (self->supervise, &n);
        for (size_t i = 0; i < n; i++)
            if (children[i]->state == BCTX_CHILD_DOWN) {
                snprintf (err, errlen, "context %s: its process ended while starting (%s); "
                          "its own message is in the lines above", children[i]->name,
                          children[i]->last_exit);
                return -1;
            }
        if (bctx_now () > deadline) {
            snprintf (err, errlen, "the context processes did not all answer within "
                      "%.0f s of their start", (double) config->handler_timeout_ms / 1000 + 10);
            return -1;
        }
        bctx_relay_tick (self->relay);
        bctx_relay_wait (self->relay, 10);
    }
    return 0;
}

/* Starts the HTTP gateway on host.http.  It goes through the API's
 * inproc endpoints, which CURVE does not cover: with host.curve it runs
 * only when host.http names it.  A default address in use is a warning.
 * Return 0, or -1 with the reason. */
static int
s_start_http (bctx_server_t *self, const bctx_config_t *config, char *err, size_t errlen)
{
    if (!config->http || (config->curve_public && !config->http_given))
        return 0;
    self->http = bctx_http_new (self->core.zctx, config, err, errlen);
    if (self->http || config->http_given)
        return self->http ? 0 : -1;
    bctx_log (BCTX_LOG_WARN, "%s; the HTTP gateway is off", err);
    err[0] = '\0';
    return 0;
}

/* Builds the supervisor's modules in order and starts the context
 * processes; binds the API once they all answer.  Return 0, or -1 with
 * the reason. */
static int
s_build (bctx_server_t *self, bctx_config_t *config, char *err, size_t errlen)
{
    bctx_core_t *core = &self->core;
    char in[4200], out[4200], exe[PATH_MAX];
    /* The context processes run this program again, or $BCTX_HOST_EXE (a
     * process that embeds the host, as the fuzz target does). */
    const char *given = getenv ("BCTX_HOST_EXE");
    ssize_t len = given ? (ssize_t) snprintf (exe, sizeof exe, "%s", given)
                        : readlink ("/proc/self/exe", exe, sizeof exe - 1);
    if (len <= 0 || len >= (ssize_t) sizeof exe) {
        snprintf (err, errlen, "cannot find this program (/proc/self/exe): %s", strerror (errno));
        return -1;
    }
    exe[len] = '\0';
    if (bctx_run_endpoint (config->data, "bus-in.sock", in, sizeof in, err, errlen) < 0
        || bctx_run_endpoint (config->data, "bus-out.sock", out, sizeof out, err, errlen) < 0)
        return -1;
    if (bctx_core_open (core, config, err, errlen) < 0)
        return -1;
    bctx_registry_open_handles (core->registry);
    if (bctx_registry_open_bridges (core->registry, err, errlen) < 0)
        return -1;
    self->bus = bctx_bus_new (core->zctx, config->publish, in, out, core->security, err, errlen);
    if (!self->bus)
        return -1;
    core->peers = bctx_peers_new (core->registry, core->api, core->security, err, errlen);
    if (!core->peers)
        return -1;
    core->ops = bctx_ops_new (core->registry, core->api, core->commands, core->peers);
    self->supervise = bctx_supervise_new (core->registry, core->zctx, exe);
    self->relay = bctx_relay_new (core->registry, core->api, self->supervise);
    self->gather = bctx_gather_new (core->registry, core->api, self->supervise, self->relay,
                                    core->peers);
    self->reload = bctx_reload_new (core->registry, core->api, self->supervise, self->relay);
    self->watch = bctx_watch_new (core->registry, self->reload, err, errlen);
    if (!self->watch)
        return -1;
    bctx_api_handle (core->api, BCTX_OP_STOP, s_op_stop, self);
    bctx_commands_route (core->commands, core->peers);
    bctx_commands_relay (core->commands, self->relay);
    if (bctx_core_check_ops (core, err, errlen) < 0
        || bctx_supervise_spawn_all (self->supervise, err, errlen) < 0
        || s_boot (self, err, errlen) < 0
        || bctx_api_bind (core->api, core->zctx, config, core->security, err, errlen) < 0
        || s_start_http (self, config, err, errlen) < 0)
        return -1;
    s_warn_wildcards (config);
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
    self->stop_fd = -1;
    /* host.data is this host's before any file in it is opened, and what
     * is in it is checked before anything is served. */
    self->datadir = bctx_datadir_open (config->data, err, errlen);
    if (!self->datadir
        || bctx_datadir_guard (self->datadir, config, accept_truncated, err, errlen) < 0) {
        bctx_datadir_destroy (&self->datadir);
        bctx_config_destroy (&config);
        free (self);
        return NULL;
    }
    if (s_build (self, config, err, errlen) < 0) {
        if (!self->core.registry)
            bctx_config_destroy (&config);
        bctx_server_destroy (&self);
        return NULL;
    }
    const bctx_registry_t *reg = self->core.registry;
    bctx_log (BCTX_LOG_INFO, "host %s serving %zu context(s), each in its own process, "
              "%zu projection(s) on %s, data in %s; admin ops on %s", config->name,
              reg->n_contexts, reg->n_projections, config->api, config->data,
              bctx_api_admin_endpoint (self->core.api));
    return self;
}

/* A signal: SIGHUP applies the config file again; SIGCHLD reaps; SIGINT
 * and SIGTERM stop the loop. */
static int
s_on_signal (void *arg)
{
    bctx_server_t *self = arg;
    bctx_core_t *core = &self->core;
    struct signalfd_siginfo si;
    if (read (self->stop_fd, &si, sizeof si) != (ssize_t) sizeof si)
        return BCTX_LOOP_NEW_TURN;
    if (si.ssi_signo == SIGCHLD) {
        bctx_supervise_tick (self->supervise);
        return BCTX_LOOP_NEW_TURN;
    }
    if (si.ssi_signo == SIGHUP) {
        bctx_log (BCTX_LOG_INFO, "SIGHUP: re-reading %s", core->registry->config->path);
        if (bctx_reconfig_supervisor (core->registry, self->supervise, self->reload,
                                      self->watch) == 0)
            bctx_relay_attach (self->relay, core->loop);
        return BCTX_LOOP_NEW_TURN;
    }
    bctx_log (BCTX_LOG_INFO, "signal %u: stopping", si.ssi_signo);
    return BCTX_LOOP_STOP;
}

int
bctx_server_run (bctx_server_t *self, int stop_fd)
{
    bctx_core_t *core = &self->core;
    self->stop_fd = stop_fd;
    core->loop = bctx_loop_new ();
    bctx_loop_reader (core->loop, NULL, self->stop_fd, s_on_signal, self);
    bctx_peers_attach (core->peers, core->loop);
    bctx_relay_attach (self->relay, core->loop);
    bctx_reload_attach (self->reload, core->loop);
    bctx_watch_attach (self->watch, core->loop);
    bctx_loop_timer (core->loop, bctx_supervise_tick, self->supervise);
    bctx_api_attach (core->api, core->loop);
    bctx_loop_run (core->loop);

    /* Drain: every context process is asked to finish what it has
     * (SIGTERM), their answers passed on, and what did not stop within
     * host.stop_timeout_ms killed. */
    const bctx_config_t *config = core->registry->config;
    bctx_log (BCTX_LOG_INFO, "draining %lld command(s) in flight",
              (long long) bctx_relay_in_flight (self->relay));
    bctx_reload_stop (self->reload);
    bctx_supervise_stop (self->supervise);
    double deadline = bctx_now () + (double) config->stop_timeout_ms / 1000.0;
    while (!bctx_supervise_all_gone (self->supervise) && bctx_now () < deadline) {
        bctx_relay_tick (self->relay);
        bctx_relay_wait (self->relay, 10);
    }
    bctx_relay_read_all (self->relay);
    bctx_supervise_kill_all (self->supervise);
    bctx_relay_abandon (self->relay);
    bctx_peers_drain (core->peers);
    return 0;
}

void
bctx_server_destroy (bctx_server_t **self_p)
{
    BCTX_SELF_OR_RETURN (bctx_server_t, self_p);
    bctx_http_destroy (&self->http);
    bctx_watch_destroy (&self->watch);
    bctx_reload_destroy (&self->reload);
    bctx_gather_destroy (&self->gather);
    bctx_relay_destroy (&self->relay);
    bctx_supervise_destroy (&self->supervise);
    bctx_core_close (&self->core, &self->bus);
    /* Last: every file under host.data is closed before the lock goes. */
    bctx_datadir_destroy (&self->datadir);
    free (self);
    *self_p = NULL;
}
