/*
 * context_main - one context process: `bctx-host --context NAME CONFIG`,
 * which the supervisor starts (supervise.h).  It loads that context's
 * plugin and runs its worker, projections, reactors and bridges, serving
 * only its link to the supervisor.
 *
 * A process started for a handover (--standby, see reload.h) builds all
 * of that, loading the new version and opening its files, but runs none
 * of it: it takes its context's writer lock and starts its threads only
 * when the supervisor sends "take", once the process it replaces has
 * answered "release" (its runners ended, its worker drained and stopped,
 * its lock given up).
 */
#ifndef BCTX_CONTEXT_MAIN_H
#define BCTX_CONTEXT_MAIN_H

#include <stddef.h>

#include "config.h"

typedef struct bctx_context_main bctx_context_main_t;

/* Makes `config` the view of the context process of context `name`
 * (borrowed; plugin: the version to run instead of contexts[].plugin, or
 * NULL): its links, all in <host.data>/run, named with `generation` (0
 * for a context's first process, the handover's number after; see
 * bctx_config_for_context).  Return 0, or -1 with the reason. */
int bctx_context_main_config (bctx_config_t *config, const char *name, const char *plugin,
                         unsigned generation, char *err, size_t errlen);

/* Starts the context process for `config` (stolen, even on failure), made
 * by bctx_context_main_config.  Return: new, or NULL with the reason in err and,
 * when loading the plugin failed, a BCTX_LOAD_* (loader.h) in *failure. */
bctx_context_main_t *bctx_context_main_new (bctx_config_t *config, int *failure,
                                  char *err, size_t errlen);

/* Serves its link until `stop_fd` (a signalfd) delivers SIGINT or SIGTERM,
 * then drains.  SIGHUP re-reads the config file.  Return 0. */
int bctx_context_main_run (bctx_context_main_t *self, int stop_fd);

/* Stops the threads, closes everything; sets *self_p to NULL. */
void bctx_context_main_destroy (bctx_context_main_t **self_p);

#endif
