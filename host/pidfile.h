/*
 * pidfile - `bctx-host --pidfile FILE`: FILE holds the supervisor's pid
 * while it serves, so that scripts stop this host (kill $(cat FILE), or
 * `bctx stop`) and no other.  Claimed before the host starts (refused
 * while FILE names a live process), written once it serves, removed at
 * its clean exit.
 */
#ifndef BCTX_PIDFILE_H
#define BCTX_PIDFILE_H

#include <stddef.h>

/* Checks that path (borrowed) names no live process: absent, empty, or
 * the pid of one that is gone.  Return 0, or -1 with the reason in err. */
int bctx_pidfile_check (const char *path, char *err, size_t errlen);

/* Writes this process's pid into path (a temporary file renamed over it).
 * Return 0, or -1 with the reason in err. */
int bctx_pidfile_write (const char *path, char *err, size_t errlen);

/* Removes path if it still holds this process's pid. */
void bctx_pidfile_remove (const char *path);

#endif
