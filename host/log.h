/*
 * log - one line per event of note, to stderr, with a timestamp and level.
 */
#ifndef BCTX_LOG_H
#define BCTX_LOG_H

#include "bctx/plugin.h"

/* Sets the least important level printed (BCTX_LOG_*; BCTX_LOG_INFO until
 * it is set).  Call once, before any thread but the first starts. */
void bctx_log_set_level (int level);

/* Names the context whose plugin code the calling thread runs (borrowed,
 * must outlive the thread's use; NULL: none), so that a plugin that ends
 * the process with exit() is named in the log.  Return the previous one. */
const char *bctx_log_set_context (const char *name);

/* Logs, from an atexit handler, that the process is ending through exit()
 * in the middle of serving, naming the context whose code the exiting
 * thread was running. */
void bctx_log_unexpected_exit (void);

/* Writes one line: "2026-11-27T00:00:00.000Z INFO message". */
void bctx_log (int level, const char *fmt, ...)
    __attribute__ ((format (printf, 2, 3)));

#endif
