/*
 * figures - what the supervisor measures of each context itself, by
 * context name, across its processes (a restart or a handover does not
 * reset them): the latency of its commands from the relay's admission to
 * their reply, its reloads by outcome, and how long each reload held its
 * commands.  The relay owns them and observes commands, reload observes
 * reloads, gather reports them in the stats op.  The API thread's.
 */
#ifndef BCTX_FIGURES_H
#define BCTX_FIGURES_H

#include <stdint.h>
#include <jansson.h>

#include "histogram.h"

/* How a reload ended (reload.h). */
enum {
    BCTX_RELOAD_OK = 0,           /* the new version serves */
    BCTX_RELOAD_FAILED = 1,       /* refused or given up: the old version serves */
    BCTX_RELOAD_ROLLED_BACK = 2,  /* failed after the old one released: it starts again */
    BCTX_RELOAD_OUTCOMES = 3
};

typedef struct bctx_figures bctx_figures_t;

/* Return: new, empty. */
bctx_figures_t *bctx_figures_new (void);

/* The command latency histogram of context `name` (borrowed), made on
 * first use.  Return: borrowed, valid until bctx_figures_destroy. */
bctx_histogram_t *bctx_figures_commands (bctx_figures_t *self, const char *name);

/* Counts a reload of context `name` that ended with outcome
 * (BCTX_RELOAD_*), and, when pause >= 0, the seconds its commands were
 * held. */
void bctx_figures_reload (bctx_figures_t *self, const char *name, int outcome,
                          double pause);

/* Sets context name's figures in stats object c (borrowed):
 * "command_seconds", "reloads" {ok, failed, rolled_back} and
 * "reload_pause_seconds". */
void bctx_figures_report (bctx_figures_t *self, const char *name, json_t *c);

/* Frees; sets *self_p to NULL.  Idempotent. */
void bctx_figures_destroy (bctx_figures_t **self_p);

#endif
