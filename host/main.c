/*
 * bctx-host - runs one host in the foreground: `bctx-host CONFIG.json`.
 * Exits 0 after a clean drain on SIGINT/SIGTERM, 1 with a message naming
 * the problem when the config or a context cannot be loaded.
 */
#include "config.h"
#include "log.h"
#include "server.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static volatile sig_atomic_t s_stop;

static void
s_on_signal (int sig)
{
    (void) sig;
    s_stop = 1;
}

int
main (int argc, char **argv)
{
    if (argc != 2 || argv[1][0] == '-') {
        fprintf (stderr, "usage: bctx-host CONFIG.json\n");
        return 2;
    }
    const char *level = getenv ("BCTX_LOG");
    if (level && strcmp (level, "debug") == 0)
        bctx_log_level = BCTX_LOG_DEBUG;
    else if (level && strcmp (level, "warn") == 0)
        bctx_log_level = BCTX_LOG_WARN;

    char err[1024];
    bctx_config_t *config = bctx_config_load (argv[1], err, sizeof err);
    if (!config) {
        bctx_log (BCTX_LOG_ERROR, "bad config: %s", err);
        return 1;
    }
    struct sigaction sa;
    memset (&sa, 0, sizeof sa);
    sa.sa_handler = s_on_signal;
    sigaction (SIGINT, &sa, NULL);
    sigaction (SIGTERM, &sa, NULL);
    signal (SIGPIPE, SIG_IGN);

    bctx_server_t *server = bctx_server_new (config, err, sizeof err);
    if (!server) {
        bctx_log (BCTX_LOG_ERROR, "cannot start: %s", err);
        bctx_config_destroy (&config);
        return 1;
    }
    bctx_server_run (server, &s_stop);
    bctx_server_destroy (&server);
    bctx_log (BCTX_LOG_INFO, "host %s stopped", config->name);
    bctx_config_destroy (&config);
    return 0;
}
