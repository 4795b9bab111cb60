/*
 * server - one running host: its context workers, its bus, and the API
 * ROUTER socket that clients talk to.  The API thread parses each request,
 * answers queries itself (reading the stores beside the writers, which WAL
 * allows) and hands commands to their context's worker.
 */
#ifndef BCTX_SERVER_H
#define BCTX_SERVER_H

#include <stddef.h>

#include "config.h"

typedef struct bctx_server bctx_server_t;

/* Starts a host for `config` (stolen, even on failure: the server keeps it
 * and replaces it on SIGHUP): creates the data directory and locks it,
 * checks what is in it (see datadir.h; accept_truncated, borrowed and
 * NULL-terminated or NULL, names the contexts whose lost events are
 * accepted), loads every context, opens every store, binds the API and
 * the bus.  All or nothing.
 * Return: new server, or NULL with the reason in err. */
bctx_server_t *bctx_server_new (bctx_config_t *config,
                                const char *const *accept_truncated,
                                char *err, size_t errlen);

/* Makes `config` the view of the context process of context `name`
 * (borrowed; plugin: the version to run instead of contexts[].plugin, or
 * NULL): its links, all in <host.data>/run (see
 * bctx_config_for_context).  Return 0, or -1 with the reason. */
int bctx_server_context_config (bctx_config_t *config, const char *name, const char *plugin,
                                char *err, size_t errlen);

/* Serves requests until `stop_fd` (a signalfd for SIGINT, SIGTERM and
 * SIGHUP) delivers SIGINT or SIGTERM, then drains: no new request is
 * taken, queued commands finish and are answered.  SIGHUP re-reads the
 * config file and applies what changed.  Return 0. */
int bctx_server_run (bctx_server_t *self, int stop_fd);

/* Stops the workers, closes everything; sets *self_p to NULL. */
void bctx_server_destroy (bctx_server_t **self_p);

#endif
