/*
 * supervise - spawning, reaping and restarting the context processes.
 * The obituary of a process names its context, how it ended and the
 * command it was serving; restarts back off from 100 ms to 10 s while a
 * context keeps failing, and a context that ran 10 s counts as healed.
 */

#include "supervise.h"
#include "poison.h"
#include "log.h"
#include "util.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#define S_FIRST_BACKOFF  0.1     /* seconds before the first restart */
#define S_MAX_BACKOFF    10.0    /* longest wait before a restart */
#define S_HEALED_AFTER   10.0    /* seconds up after which failures are forgotten */
#define S_RSS_EVERY      0.5     /* seconds between memory checks */
#define S_POLL_EVERY     0.1     /* seconds between reaps when SIGCHLD is missed */
#define S_PROBATION      10.0    /* seconds after a handover in which an unasked end
                                    of the new version brings the old one back */

struct bctx_supervise {
    bctx_registry_t *registry;    /* the config and the handles (borrowed) */
    void *zctx;                   /* for the links (borrowed) */
    char *exe;                    /* the binary to run */
    bctx_child_t **children;      /* one per context, and those still stopping */
    size_t n_children;            /* how many */
    bctx_child_fn *on_exit;       /* told when a process ended */
    void *on_exit_arg;            /* its argument */
    double rss_due;               /* monotonic: the next memory check */
    unsigned generations;         /* handovers started: the next one's number */
};

bctx_supervise_t *
bctx_supervise_new (bctx_registry_t *registry, void *zctx, const char *exe)
{
    bctx_supervise_t *self = calloc (1, sizeof *self);
    self->registry = registry;
    self->zctx = zctx;
    self->exe = strdup (exe);
    return self;
}

void
bctx_supervise_on_exit (bctx_supervise_t *self, bctx_child_fn *fn, void *arg)
{
    self->on_exit = fn;
    self->on_exit_arg = arg;
}

/* A child for context `name` with its link connected.  Return it, or
 * NULL with the reason. */
static bctx_child_t *
s_child_new (bctx_supervise_t *self, const char *name, size_t max_rss_mb,
             unsigned generation, char *err, size_t errlen)
{
    char *data = realpath (self->registry->config->data, NULL);
    char endpoint[4200], gen[16] = "";
    if (generation)
        snprintf (gen, sizeof gen, ".%u", generation);
    snprintf (endpoint, sizeof endpoint, "ipc://%s/run/ctx-%s%s.sock", data ? data : "?",
              name, gen);
    free (data);
    if (strlen (endpoint) - 6 > 107) {
        snprintf (err, errlen, "context %s: its link %s is over the 107 bytes a Unix socket "
                  "allows: give host.data a shorter path", name, endpoint + 6);
        return NULL;
    }
    /* No queueing for a process that is not there (immediate): a command
     * for a context that restarts is answered "unavailable" now. */
    static const int options[][2] = {
        { ZMQ_LINGER, 0 }, { ZMQ_IMMEDIATE, 1 }, { ZMQ_SNDHWM, 0 }, { ZMQ_RCVHWM, 0 },
        { ZMQ_RECONNECT_IVL, 10 }, { ZMQ_RECONNECT_IVL_MAX, 100 },
    };
    void *link = zmq_socket (self->zctx, ZMQ_DEALER);
    for (size_t k = 0; k < sizeof options / sizeof options[0]; k++)
        zmq_setsockopt (link, options[k][0], &options[k][1], sizeof options[k][1]);
    if (zmq_connect (link, endpoint) != 0) {
        snprintf (err, errlen, "context %s: cannot connect its link %s: %s", name, endpoint,
                  zmq_strerror (zmq_errno ()));
        zmq_close (link);
        return NULL;
    }
    bctx_child_t *c = calloc (1, sizeof *c);
    c->generation = generation;
    c->commands = -1;
    c->commands_reader = -1;
    c->commands_path = strdup (endpoint + strlen ("ipc://"));
    memcpy (strstr (c->commands_path, "/ctx-"), "/cmd-", 5);
    c->name = strdup (name);
    c->endpoint = strdup (endpoint);
    c->link = link;
    c->max_rss_mb = max_rss_mb;
    c->reader = -1;
    c->reactors = json_array ();
    c->projections = json_array ();
    c->consumes = json_object ();
    c->crashes = json_object ();
    return c;
}

static void
s_child_free (bctx_child_t *c)
{
    zmq_close (c->link);
    if (c->commands >= 0)
        close (c->commands);
    free (c->commands_path);
    bctx_bytes_clear (&c->out);
    bctx_bytes_clear (&c->in);
    json_decref (c->reactors);
    json_decref (c->projections);
    json_decref (c->consumes);
    json_decref (c->crashes);
    free (c->name);
    free (c->endpoint);
    free (c->plugin);
    free (c->fallback);
    free (c);
}

/* Starts child's process: this binary with --context, and --plugin
 * when a reload changed its version.  Return 0, or -1 (logged). */
static int
s_spawn (bctx_supervise_t *self, bctx_child_t *c)
{
    const char *argv[16];
    char gen[16], deadline[32];
    int n = 0;
    argv[n++] = self->exe;
    argv[n++] = "--context";
    argv[n++] = c->name;
    if (c->plugin) {
        argv[n++] = "--plugin";
        argv[n++] = c->plugin;
    }
    if (c->generation) {
        snprintf (gen, sizeof gen, "%u", c->generation);
        argv[n++] = "--generation";
        argv[n++] = gen;
    }
    if (c->standby) {
        snprintf (deadline, sizeof deadline, "%.6f", c->deadline);
        argv[n++] = "--standby";
        argv[n++] = "--deadline";
        argv[n++] = deadline;
    }
    argv[n++] = self->registry->config->path;
    argv[n] = NULL;
    pid_t parent = getpid ();
    pid_t pid = fork ();
    if (pid == 0) {
        /* Only async-signal-safe calls between fork and exec.  The process
         * dies with the supervisor, however the supervisor ends. */
        prctl (PR_SET_PDEATHSIG, SIGKILL);
        if (getppid () != parent)
            _exit (1);
        sigset_t none;
        sigemptyset (&none);
        sigprocmask (SIG_SETMASK, &none, NULL);
        execv (self->exe, (char *const *) argv);
        _exit (127);
    }
    if (pid < 0) {
        bctx_log (BCTX_LOG_ERROR, "context %s: cannot start its process: %s", c->name,
                  strerror (errno));
        return -1;
    }
    c->pid = pid;
    c->state = BCTX_CHILD_STARTING;
    c->killed = BCTX_KILL_NONE;
    c->started_at = bctx_now ();
    c->heard_at = c->started_at;
    c->up_at = 0;
    c->probe_at = 0;
    c->probing = 0;
    c->last_command[0] = '\0';
    bctx_log (BCTX_LOG_INFO, "context %s: process %d started", c->name, (int) pid);
    return 0;
}

/* Appends a child. */
static void
s_add (bctx_supervise_t *self, bctx_child_t *c)
{
    self->children = bctx_realloc (self->children,
                                   (self->n_children + 1) * sizeof *self->children);
    self->children[self->n_children++] = c;
}

int
bctx_supervise_spawn_all (bctx_supervise_t *self, char *err, size_t errlen)
{
    const bctx_config_t *config = self->registry->config;
    for (size_t i = 0; i < config->n_contexts; i++) {
        bctx_child_t *c = s_child_new (self, config->contexts[i].name,
                                       config->contexts[i].max_rss_mb, 0, err, errlen);
        if (!c)
            return -1;
        s_add (self, c);
        if (s_spawn (self, c) < 0) {
            snprintf (err, errlen, "context %s: cannot start its process", c->name);
            return -1;
        }
    }
    return 0;
}

/* How a process ended, from its wait status, into out. */
static void
s_describe (int status, char *out, size_t size)
{
    if (WIFSIGNALED (status))
        snprintf (out, size, "killed by signal %d (%s)", WTERMSIG (status),
                  strsignal (WTERMSIG (status)));
    else if (WIFEXITED (status) && WEXITSTATUS (status) == BCTX_EXIT_HUNG)
        snprintf (out, size, "hung: a handler ran past host.handler_timeout_ms (its "
                  "process exited with status %d)", BCTX_EXIT_HUNG);
    else
        snprintf (out, size, "exited with status %d", WEXITSTATUS (status));
}

/* The back-off before child's next start, counting this failure. */
static double
s_backoff (bctx_child_t *c, double now)
{
    if (c->up_at > 0 && now - c->up_at >= S_HEALED_AFTER)
        c->failures = 0;
    if (c->killed == BCTX_KILL_RSS || c->killed == BCTX_KILL_HANDOVER)
        return 0;
    double wait = S_FIRST_BACKOFF;
    for (int i = 0; i < c->failures && wait < S_MAX_BACKOFF; i++)
        wait *= 2;
    c->failures++;
    return wait < S_MAX_BACKOFF ? wait : S_MAX_BACKOFF;
}

/* Child's process ended with `status`. */
static void
s_ended (bctx_supervise_t *self, bctx_child_t *c, int status)
{
    char how[200];
    s_describe (status, how, sizeof how);
    int stopping = c->state == BCTX_CHILD_STOPPING || c->state == BCTX_CHILD_GONE
                   || c->killed == BCTX_KILL_STOP;
    if (c->killed == BCTX_KILL_NONE || !c->last_exit[0])
        snprintf (c->last_exit, sizeof c->last_exit, "%s", how);
    pid_t pid = c->pid;
    c->pid = 0;
    if (self->on_exit)
        self->on_exit (self->on_exit_arg, c);
    if (c->standby && !c->retired) {
        /* Its handover failed (reload.h says so); the old one serves on. */
        c->state = BCTX_CHILD_GONE;
        c->retired = 1;
        bctx_log (BCTX_LOG_ERROR, "context %s: the process %d of a new version ended "
                  "before it served: %s", c->name, (int) pid, c->last_exit);
        return;
    }
    int again = c->killed == BCTX_KILL_RSS || c->killed == BCTX_KILL_HANDOVER;
    if (c->retired || (stopping && !again)) {
        c->state = BCTX_CHILD_GONE;
        bctx_log (BCTX_LOG_INFO, "context %s: process %d %s (%s)", c->name, (int) pid,
                  c->retired ? "ended, replaced by a handover" : "stopped", how);
        return;
    }
    if (!again)
        bctx_poison_count (self->registry->config->data, c->name, c->crashes);
    double now = bctx_now (), wait = s_backoff (c, now);
    if (c->fallback && now < c->probation_until && !again) {
        /* The new version failed its first commands: the old one again. */
        snprintf (c->last_reload_error, sizeof c->last_reload_error, "the new version's "
                  "process ended (%s) %.1f s after the handover: rolled back to the "
                  "previous version, %s", c->last_exit, now - c->up_at, c->fallback);
        bctx_log (BCTX_LOG_ERROR, "context %s: %s", c->name, c->last_reload_error);
        free (c->plugin);
        c->plugin = c->fallback;
        c->fallback = NULL;
        wait = 0;
    }
    c->state = BCTX_CHILD_DOWN;
    c->restart_at = now + wait;
    bctx_log (again ? BCTX_LOG_WARN : BCTX_LOG_ERROR,
              "context %s: its process %d ended: %s%s%s; every other context goes on; "
              "restarting it in %.0f ms", c->name, (int) pid, c->last_exit,
              c->last_command[0] ? "; it was serving " : "", c->last_command, wait * 1000);
}

/* Reaps every ended process. */
static void
s_reap (bctx_supervise_t *self)
{
    int status;
    pid_t pid;
    while ((pid = waitpid (-1, &status, WNOHANG)) > 0)
        for (size_t i = 0; i < self->n_children; i++)
            if (self->children[i]->pid == pid)
                s_ended (self, self->children[i], status);
}

/* Resident memory of a process in MiB, or -1. */
static double
s_rss_mb (pid_t pid)
{
    char path[64];
    snprintf (path, sizeof path, "/proc/%d/statm", (int) pid);
    FILE *f = fopen (path, "r");
    long size = 0, resident = -1;
    if (f) {
        if (fscanf (f, "%ld %ld", &size, &resident) != 2)
            resident = -1;
        fclose (f);
    }
    return resident < 0 ? -1 : (double) resident * (double) sysconf (_SC_PAGESIZE)
                               / (1024.0 * 1024.0);
}

/* CPU seconds (user + system) of a process, or -1. */
static double
s_cpu_seconds (pid_t pid)
{
    char path[64], buf[1024];
    snprintf (path, sizeof path, "/proc/%d/stat", (int) pid);
    FILE *f = fopen (path, "r");
    if (!f)
        return -1;
    size_t n = fread (buf, 1, sizeof buf - 1, f);
    fclose (f);
    buf[n] = '\0';
    /* Fields after the command name, which is in parentheses. */
    char *p = strrchr (buf, ')');
    unsigned long utime = 0, stime = 0;
    if (!p || sscanf (p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu",
                      &utime, &stime) != 2)
        return -1;
    return (double) (utime + stime) / (double) sysconf (_SC_CLK_TCK);
}

void
bctx_supervise_kill (bctx_supervise_t *self, bctx_child_t *c, int why, int graceful)
{
    (void) self;
    if (!c->pid)
        return;
    c->killed = why;
    if (graceful)            /* it drains: nothing new for it */
        c->state = BCTX_CHILD_STOPPING;
    kill (c->pid, graceful ? SIGTERM : SIGKILL);
}

/* A process that is busy still answers others; one that has sent
 * nothing since the request, for handler_timeout_ms + 2 s, is frozen
 * (stopped, or its own watchdog cannot run): it is ended and started
 * again.  Silence before the request does not count: an idle process
 * says nothing. */
void
bctx_supervise_unanswered (bctx_supervise_t *self, bctx_child_t *c, double sent_at, double now)
{
    const bctx_config_t *config = self->registry->config;
    double since = c->heard_at > sent_at ? c->heard_at : sent_at;
    double silent = now - since, limit = (double) (config->handler_timeout_ms + 2000) / 1000.0;
    if (c->state != BCTX_CHILD_UP || c->killed != BCTX_KILL_NONE || silent < limit)
        return;
    snprintf (c->last_exit, sizeof c->last_exit, "hung: sent nothing for %.0f ms with a "
              "command in flight (over host.handler_timeout_ms + 2 s)", silent * 1000);
    bctx_log (BCTX_LOG_WARN, "context %s: process %d: %s: killing it", c->name, (int) c->pid,
              c->last_exit);
    bctx_supervise_kill (self, c, BCTX_KILL_HUNG, 0);
}

/* Ends the processes over their memory limit, between their batches (a
 * drain on SIGTERM), and those that do not start in time. */
static void
s_check_health (bctx_supervise_t *self, double now)
{
    const bctx_config_t *config = self->registry->config;
    double start_limit = (double) config->handler_timeout_ms / 1000.0 + 2.0;
    for (size_t i = 0; i < self->n_children; i++) {
        bctx_child_t *c = self->children[i];
        if (c->state == BCTX_CHILD_STARTING && c->killed == BCTX_KILL_NONE
            && now - c->started_at > start_limit) {
            snprintf (c->last_exit, sizeof c->last_exit, "hung: did not answer within "
                      "%.0f ms of its start (its init ran past host.handler_timeout_ms, "
                      "%zu ms)", start_limit * 1000, config->handler_timeout_ms);
            bctx_supervise_kill (self, c, BCTX_KILL_HUNG, 0);
        }
        if (c->state != BCTX_CHILD_UP || !c->max_rss_mb || now < self->rss_due)
            continue;
        double rss = s_rss_mb (c->pid);
        if (rss > (double) c->max_rss_mb && c->killed == BCTX_KILL_NONE) {
            snprintf (c->last_exit, sizeof c->last_exit, "rss %.0f MiB over "
                      "contexts[].max_rss_mb (%zu MiB)", rss, c->max_rss_mb);
            bctx_log (BCTX_LOG_WARN, "context %s: process %d: %s: restarting it after its "
                      "batch", c->name, (int) c->pid, c->last_exit);
            bctx_supervise_kill (self, c, BCTX_KILL_RSS, 1);
        }
    }
    if (now >= self->rss_due)
        self->rss_due = now + S_RSS_EVERY;
}

/* Frees the children a handover left behind once they have ended and
 * the relay has let go of them. */
static void
s_prune (bctx_supervise_t *self)
{
    for (size_t i = 0; i < self->n_children;) {
        bctx_child_t *c = self->children[i];
        if (c->retired && c->state == BCTX_CHILD_GONE && !c->pid && c->reader < 0
            && c->commands_reader < 0 && !c->pinned) {
            s_child_free (c);
            memmove (&self->children[i], &self->children[i + 1],
                     (self->n_children - i - 1) * sizeof *self->children);
            self->n_children--;
        } else {
            i++;
        }
    }
}

double
bctx_supervise_tick (void *self_)
{
    bctx_supervise_t *self = self_;
    s_reap (self);
    s_prune (self);
    double now = bctx_now (), next = -1;
    s_check_health (self, now);
    for (size_t i = 0; i < self->n_children; i++) {
        bctx_child_t *c = self->children[i];
        if (c->state == BCTX_CHILD_DOWN && now >= c->restart_at) {
            c->restarts++;
            if (s_spawn (self, c) < 0)
                c->restart_at = now + S_MAX_BACKOFF;
        }
        double wait = c->state == BCTX_CHILD_DOWN ? c->restart_at - now
                    : c->pid ? S_POLL_EVERY : -1;
        if (wait >= 0 && (next < 0 || wait < next))
            next = wait;
    }
    return next;
}

bctx_child_t **
bctx_supervise_children (bctx_supervise_t *self, size_t *n)
{
    *n = self->n_children;
    return self->children;
}

bctx_child_t *
bctx_supervise_find (bctx_supervise_t *self, const char *name)
{
    for (size_t i = 0; i < self->n_children; i++) {
        bctx_child_t *c = self->children[i];
        if (strcmp (c->name, name) == 0 && c->state != BCTX_CHILD_GONE && !c->standby
            && !c->retired)
            return c;
    }
    return NULL;
}

bctx_child_t *
bctx_supervise_standby (bctx_supervise_t *self, const char *name, const char *plugin,
                        double deadline, char *err, size_t errlen)
{
    bctx_child_t *old = bctx_supervise_find (self, name);
    bctx_child_t *c = s_child_new (self, name, old ? old->max_rss_mb : 0,
                                   ++self->generations, err, errlen);
    if (!c)
        return NULL;
    c->standby = 1;
    c->deadline = deadline;
    c->plugin = plugin ? strdup (plugin) : NULL;
    s_add (self, c);
    if (s_spawn (self, c) < 0) {
        snprintf (err, errlen, "cannot start a process for the new version");
        c->retired = 1;
        c->state = BCTX_CHILD_GONE;
        return NULL;
    }
    return c;
}

void
bctx_supervise_promote (bctx_supervise_t *self, bctx_child_t *next, bctx_child_t *old)
{
    next->standby = 0;
    if (old) {
        old->retired = 1;
        next->restarts = old->restarts;
        next->reloads = old->reloads + 1;
        int i = bctx_registry_index (self->registry->config, old->name);
        const char *was = old->plugin ? old->plugin
                        : i >= 0 ? self->registry->config->contexts[i].plugin : NULL;
        free (next->fallback);
        next->fallback = was ? strdup (was) : NULL;
        next->probation_until = bctx_now () + S_PROBATION;
    }
    next->last_reload_error[0] = '\0';
}

void
bctx_supervise_reinstate (bctx_supervise_t *self, bctx_child_t *old)
{
    (void) self;
    old->retired = 0;
    old->killed = BCTX_KILL_HANDOVER;
    if (!old->pid) {
        old->state = BCTX_CHILD_DOWN;
        old->restart_at = bctx_now ();
    }
}

void
bctx_supervise_retire (bctx_supervise_t *self, bctx_child_t *c, int graceful)
{
    c->retired = 1;
    if (c->pid)
        bctx_supervise_kill (self, c, BCTX_KILL_STOP, graceful);
    else
        c->state = BCTX_CHILD_GONE;
}

void
bctx_supervise_up (bctx_supervise_t *self, bctx_child_t *c)
{
    (void) self;
    if (c->state != BCTX_CHILD_STARTING)
        return;
    c->state = BCTX_CHILD_UP;
    c->up_at = bctx_now ();
    if (c->restarts && !c->standby)
        bctx_log (BCTX_LOG_INFO, "context %s: process %d serving again, %.0f ms after its "
                  "start", c->name, (int) c->pid, (c->up_at - c->started_at) * 1000);
}

void
bctx_supervise_reconfigure (bctx_supervise_t *self)
{
    const bctx_config_t *config = self->registry->config;
    for (size_t i = 0; i < self->n_children; i++) {
        bctx_child_t *c = self->children[i];
        int j = bctx_registry_index (config, c->name);
        if (c->state == BCTX_CHILD_GONE)
            continue;
        if (j < 0) {
            bctx_log (BCTX_LOG_INFO, "SIGHUP: context %s removed: draining its process",
                      c->name);
            if (c->pid)
                bctx_supervise_kill (self, c, BCTX_KILL_STOP, 1);
            else
                c->state = BCTX_CHILD_GONE;
            continue;
        }
        c->max_rss_mb = config->contexts[j].max_rss_mb;
        if (c->pid)
            kill (c->pid, SIGHUP);
    }
    for (size_t j = 0; j < config->n_contexts; j++) {
        if (bctx_supervise_find (self, config->contexts[j].name))
            continue;
        char err[512];
        bctx_child_t *c = s_child_new (self, config->contexts[j].name,
                                       config->contexts[j].max_rss_mb, 0, err, sizeof err);
        if (!c) {
            bctx_log (BCTX_LOG_ERROR, "SIGHUP: %s", err);
            continue;
        }
        s_add (self, c);
        if (s_spawn (self, c) == 0)
            bctx_log (BCTX_LOG_INFO, "SIGHUP: context %s added", c->name);
    }
}

int
bctx_supervise_stop (bctx_supervise_t *self)
{
    for (size_t i = 0; i < self->n_children; i++) {
        bctx_child_t *c = self->children[i];
        if (c->pid)
            bctx_supervise_kill (self, c, BCTX_KILL_STOP, 1);
        else
            c->state = BCTX_CHILD_GONE;
    }
    return 0;
}

int
bctx_supervise_all_gone (bctx_supervise_t *self)
{
    s_reap (self);
    for (size_t i = 0; i < self->n_children; i++)
        if (self->children[i]->pid)
            return 0;
    return 1;
}

void
bctx_supervise_kill_all (bctx_supervise_t *self)
{
    for (size_t i = 0; i < self->n_children; i++) {
        bctx_child_t *c = self->children[i];
        if (!c->pid)
            continue;
        bctx_log (BCTX_LOG_WARN, "context %s: process %d did not stop within "
                  "host.stop_timeout_ms (%zu ms): killed", c->name, (int) c->pid,
                  self->registry->config->stop_timeout_ms);
        c->state = BCTX_CHILD_GONE;
        kill (c->pid, SIGKILL);
        int status;
        if (waitpid (c->pid, &status, 0) == c->pid)
            s_ended (self, c, status);
    }
}

json_t *
bctx_supervise_process (const bctx_child_t *c)
{
    static const char *const states[] = { "down", "starting", "up", "stopping", "gone" };
    json_t *p = json_pack ("{s:i, s:s, s:i}", "pid", (int) c->pid, "state",
                           states[c->state], "restarts", c->restarts);
    json_object_set_new (p, "last_exit", c->last_exit[0] ? json_string (c->last_exit)
                                                         : json_null ());
    double rss = c->pid ? s_rss_mb (c->pid) : -1, cpu = c->pid ? s_cpu_seconds (c->pid) : -1;
    json_object_set_new (p, "rss_mb", rss >= 0 ? json_real (rss) : json_null ());
    json_object_set_new (p, "cpu_seconds", cpu >= 0 ? json_real (cpu) : json_null ());
    return p;
}

void
bctx_supervise_destroy (bctx_supervise_t **self_p)
{
    BCTX_SELF_OR_RETURN (bctx_supervise_t, self_p);
    /* Those still running (a start that failed after them): a drain
     * first, bounded. */
    bctx_supervise_stop (self);
    for (int i = 0; i < 200 && !bctx_supervise_all_gone (self); i++) {
        struct timespec tick = { 0, 10 * 1000 * 1000 };
        nanosleep (&tick, NULL);
    }
    bctx_supervise_kill_all (self);
    for (size_t i = 0; i < self->n_children; i++)
        s_child_free (self->children[i]);
    free (self->children);
    free (self->exe);
    free (self);
    *self_p = NULL;
}
