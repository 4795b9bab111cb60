/*
 * endpoint - what a ZeroMQ endpoint string says about where it listens:
 * loopback or not, a wildcard bind or not, and whether two tcp endpoints
 * name the same socket once their host names are resolved.
 */
#ifndef BCTX_ENDPOINT_H
#define BCTX_ENDPOINT_H

#include <stddef.h>

/* Does the endpoint stay on this machine (tcp on 127.x, localhost or ::1,
 * ipc, inproc)?  A string test: no name is resolved.  Return 1 or 0. */
int bctx_endpoint_is_loopback (const char *endpoint);

/* Is it a tcp bind on every address (host "*", 0.0.0.0 or [::])?
 * Return 1 or 0. */
int bctx_endpoint_is_wildcard (const char *endpoint);

/* Would connecting to `peer` reach a socket bound at `local`?  Both are
 * tcp endpoints; host names are resolved (getaddrinfo), a wildcard `local`
 * matches every address of this machine.  Return 1 when they are the same
 * socket, 0 otherwise (also when either cannot be resolved). */
int bctx_endpoint_same_socket (const char *local, const char *peer);

/* "ipc://<realpath of data>/run/<name>" into out (size bytes), making
 * <data>/run (0700) if it is not there: where the supervisor and its
 * context processes meet.  Return 0, or -1 with the reason (a path over
 * the 107 bytes a Unix socket allows among them). */
int bctx_run_endpoint (const char *data, const char *name, char *out, size_t size,
                       char *err, size_t errlen);

#endif
