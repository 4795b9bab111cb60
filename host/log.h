/*
 * log - one line per event of note, to stderr, with a timestamp and level.
 */
#ifndef BCTX_LOG_H
#define BCTX_LOG_H

#include "bctx/plugin.h"

/* Least important level printed; BCTX_LOG_INFO unless BCTX_LOG=debug. */
extern int bctx_log_level;

/* Writes one line: "2026-11-27T00:00:00.000Z INFO message". */
void bctx_log (int level, const char *fmt, ...)
    __attribute__ ((format (printf, 2, 3)));

#endif
