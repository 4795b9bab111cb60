/*
 * console - the live web console's static files, embedded in bctx-host
 * (console_assets.S) and served by the HTTP gateway at /, /console.css and
 * /console.js.  See docs/console.md.
 */
#ifndef BCTX_CONSOLE_H
#define BCTX_CONSOLE_H

#include <stddef.h>

/* One embedded file. */
typedef struct {
    const char *bytes;            /* its contents (static, not NUL-ended) */
    size_t len;                   /* their length */
    const char *type;             /* its Content-Type */
} bctx_console_file_t;

/* The file served at url path (e.g. "/" or "/console.js", no query).
 * Return 0 with *file filled, or -1 when the path is none of the
 * console's. */
int bctx_console_find (const char *path, bctx_console_file_t *file);

/* The Content-Security-Policy the console's files are served with: only
 * this origin's scripts, styles and connections, nothing inline. */
#define BCTX_CONSOLE_CSP                                                    \
    "default-src 'self'; script-src 'self'; style-src 'self'; "             \
    "img-src 'self'; connect-src 'self'; base-uri 'none'; "                 \
    "form-action 'none'; frame-ancestors 'none'"

#endif
