/*
 * bctx-host - runs one host in the foreground:
 * `bctx-host [--accept-truncated-log CONTEXT]... CONFIG.json`.
 * The host is a supervisor that runs each context in a context process,
 * this same program run again as `bctx-host --context NAME [--plugin
 * PATH] [--generation G [--standby --deadline T]] CONFIG.json` (not for
 * people: the supervisor starts it; see context_main.h).
 * Exits 0 after a clean drain on SIGINT/SIGTERM, 1 with a message naming
 * the problem when the config or a context cannot be loaded, host.data is
 * another host's, or a log has lost events (see datadir.h);
 * --accept-truncated-log CONTEXT starts anyway and says what was lost.
 * --pidfile FILE: the supervisor's pid in FILE while it serves (pidfile.h);
 * it refuses to start while FILE names a live process.
 */
#include "config.h"
#include "context_main.h"
#include "log.h"
#include "pidfile.h"
#include "server.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#define S_USAGE "usage: bctx-host [--pidfile FILE] [--accept-truncated-log CONTEXT]... " \
                "CONFIG.json\n"

/* Set once main returns by itself: any other exit is unexpected. */
static int s_returning;

/* Runs at exit(): a plugin (or anything else) that calls exit() while the
 * host serves leaves a line saying so. */
static void
s_at_exit (void)
{
    if (!s_returning)
        bctx_log_unexpected_exit ();
}

/* A standby that cannot start tells its supervisor why, in
 * <host.data>/run/standby-NAME.G.json: {"failure": BCTX_LOAD_* or 0,
 * "message": ...}, read when the process has ended. */
static void
s_tell_supervisor (const char *data, const char *name, unsigned generation, int failure,
                   const char *message)
{
    char path[4200], tmp[4300];
    snprintf (path, sizeof path, "%s/run/standby-%s.%u.json", data, name, generation);
    snprintf (tmp, sizeof tmp, "%s.tmp", path);
    json_t *why = json_pack ("{s:i, s:s}", "failure", failure, "message", message);
    if (why && json_dump_file (why, tmp, JSON_COMPACT) == 0)
        rename (tmp, path);
    json_decref (why);
}

/* Runs the context process of `only` on config (stolen).  Return the
 * exit status. */
static int
s_context_main (bctx_config_t *config, const char *only, unsigned generation, int stop_fd)
{
    char err[2048], data[4096];
    snprintf (data, sizeof data, "%s", config->data);
    int standby = config->standby, failure = 0;
    bctx_context_main_t *context = bctx_context_main_new (config, &failure, err, sizeof err);
    if (!context) {
        bctx_log (BCTX_LOG_ERROR, "cannot start: %s", err);
        if (standby)
            s_tell_supervisor (data, only, generation, failure, err);
        s_returning = 1;
        return 1;
    }
    bctx_context_main_run (context, stop_fd);
    close (stop_fd);
    bctx_context_main_destroy (&context);
    bctx_log (BCTX_LOG_INFO, "context %s: process %d stopped", only, (int) getpid ());
    s_returning = 1;
    return 0;
}

int
main (int argc, char **argv)
{
    /* The contexts named by --accept-truncated-log, NULL-terminated. */
    const char *accept[argc > 0 ? argc : 1];
    size_t n_accept = 0;
    const char *path = NULL, *only = NULL, *plugin = NULL, *pidfile = NULL;
    unsigned generation = 0;
    int standby = 0;
    double deadline = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp (argv[i], "--accept-truncated-log") == 0 && i + 1 < argc
            && argv[i + 1][0] && argv[i + 1][0] != '-')
            accept[n_accept++] = argv[++i];
        else if (strcmp (argv[i], "--context") == 0 && i + 1 < argc)
            only = argv[++i];
        else if (strcmp (argv[i], "--pidfile") == 0 && i + 1 < argc && argv[i + 1][0])
            pidfile = argv[++i];
        else if (strcmp (argv[i], "--plugin") == 0 && i + 1 < argc)
            plugin = argv[++i];
        else if (strcmp (argv[i], "--generation") == 0 && i + 1 < argc)
            generation = (unsigned) strtoul (argv[++i], NULL, 10);
        else if (strcmp (argv[i], "--deadline") == 0 && i + 1 < argc)
            deadline = strtod (argv[++i], NULL);
        else if (strcmp (argv[i], "--standby") == 0)
            standby = 1;
        else if (argv[i][0] != '-' && !path)
            path = argv[i];
        else {
            fprintf (stderr, S_USAGE);
            return 2;
        }
    }
    accept[n_accept] = NULL;
    if (!path) {
        fprintf (stderr, S_USAGE);
        return 2;
    }
    const char *level = getenv ("BCTX_LOG");
    if (level && strcmp (level, "debug") == 0)
        bctx_log_set_level (BCTX_LOG_DEBUG);
    else if (level && strcmp (level, "warn") == 0)
        bctx_log_set_level (BCTX_LOG_WARN);

    char err[1024];
    if (pidfile && !only && bctx_pidfile_check (pidfile, err, sizeof err) < 0) {
        bctx_log (BCTX_LOG_ERROR, "cannot start: %s", err);
        return 1;
    }
    bctx_config_t *config = bctx_config_load (path, err, sizeof err);
    if (!config) {
        bctx_log (BCTX_LOG_ERROR, "bad config: %s", err);
        return 1;
    }
    if (only && bctx_context_main_config (config, only, plugin, generation, err, sizeof err) < 0) {
        bctx_log (BCTX_LOG_ERROR, "cannot start: %s", err);
        bctx_config_destroy (&config);
        return 1;
    }
    if (only) {
        config->standby = standby;
        config->load_deadline = deadline;
    }
    /* Block the stop signals in every thread (the ones ZeroMQ and the
     * workers start inherit this mask) and read them from a signalfd in
     * the API loop, so a signal can never land on a thread that ignores it. */
    sigset_t stop;
    sigemptyset (&stop);
    sigaddset (&stop, SIGINT);
    sigaddset (&stop, SIGTERM);
    sigaddset (&stop, SIGHUP);
    sigaddset (&stop, SIGCHLD);
    pthread_sigmask (SIG_BLOCK, &stop, NULL);
    int stop_fd = signalfd (-1, &stop, SFD_CLOEXEC | SFD_NONBLOCK);
    if (stop_fd < 0) {
        bctx_log (BCTX_LOG_ERROR, "signalfd: %s", strerror (errno));
        bctx_config_destroy (&config);
        return 1;
    }
    signal (SIGPIPE, SIG_IGN);

    atexit (s_at_exit);
    if (only)
        return s_context_main (config, only, generation, stop_fd);
    char name[128];
    snprintf (name, sizeof name, "%s", config->name);
    bctx_server_t *server = bctx_server_new (config, accept, err, sizeof err);
    if (!server) {
        bctx_log (BCTX_LOG_ERROR, "cannot start: %s", err);
        s_returning = 1;
        return 1;
    }
    if (pidfile && bctx_pidfile_write (pidfile, err, sizeof err) < 0) {
        bctx_log (BCTX_LOG_ERROR, "cannot start: %s", err);
        bctx_server_destroy (&server);
        s_returning = 1;
        return 1;
    }
    bctx_server_run (server, stop_fd);
    close (stop_fd);
    bctx_server_destroy (&server);
    bctx_pidfile_remove (pidfile);
    bctx_log (BCTX_LOG_INFO, "host %s stopped", name);
    s_returning = 1;
    return 0;
}
