/*
 * runs - what a context process runs, learnt from its stats: the names
 * of its projections and reactors, and the sources each reads (the
 * checkpoints it reports), kept on its bctx_child_t (supervise.h) for
 * queries, replay, retry and stats.
 */
#ifndef BCTX_RUNS_H
#define BCTX_RUNS_H

#include <jansson.h>

#include "supervise.h"

/* Sets child's projections, reactors and consumes from stats (a process's
 * "stats" reply, borrowed).  Return 0, or -1 (child untouched) when stats
 * lists no projections or reactors object. */
int bctx_runs_learn (bctx_child_t *child, const json_t *stats);

#endif
