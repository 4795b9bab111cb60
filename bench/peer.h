/*
 * peer - the durable-append workload that make bench-peers runs against
 * bctx's peers (PostgreSQL, Redis), one driver for every peer.
 *
 * C clients, one connection each, send one event at a time to 1000
 * streams "acct-<s>" (a 200-byte JSON payload), each waiting for the
 * peer's durable acknowledgement.  Client k owns the streams s with
 * s % C == k and sends each its expected version, last + 1, so no two
 * clients race on a stream.  A run stops after --max events in all or
 * --seconds, whichever comes first.  Then the driver checks that the peer
 * stores exactly the events acknowledged and that an append with a stale
 * version is rejected, and prints one JSON object: clients, events,
 * errors, seconds, per_second, p50_us, p99_us, stored, stale_rejected.
 * Exit status 1 when a check fails or a client met an error.
 */
#ifndef BCTX_BENCH_PEER_H
#define BCTX_BENCH_PEER_H

#include <stddef.h>

#define PEER_STREAMS 1000   /* streams "acct-0" … "acct-999" */
#define PEER_PAYLOAD 200    /* bytes of JSON per event */
#define PEER_CONFLICT 1     /* append's answer to a stale version */

/* What one peer does for the driver.  Each function gets the connection
 * `conn` it opened (borrowed) and writes a message into err on failure. */
typedef struct peer_ops {
    const char *name;       /* e.g. "postgresql", for messages */
    /* Opens one connection to the peer at target.  Return: new, or NULL. */
    void *(*open) (const char *target, char *err, size_t errlen);
    /* Empties the peer's store before a run.  Return 0 or -1. */
    int (*reset) (void *conn, char *err, size_t errlen);
    /* Appends one event to stream "acct-<stream>" at version, durable
     * when it returns 0.  Return PEER_CONFLICT when the peer refused the
     * version (the stream is past it), -1 on any other failure.
     * payload: borrowed JSON text. */
    int (*append) (void *conn, int stream, long version, const char *payload,
                   char *err, size_t errlen);
    /* The number of events the peer stores, or -1. */
    long (*count) (void *conn, char *err, size_t errlen);
    /* Closes a connection from open. */
    void (*close) (void *conn);
} peer_ops_t;

/* Parses --target TARGET --clients N --seconds S --max N, runs the
 * workload against the peer `ops` and prints its JSON.  Return the exit
 * status for main: 0, 1 when a check failed, 2 on a bad command line. */
int peer_main (int argc, char **argv, const peer_ops_t *ops);

#endif
