/*
 * worker_link - a context process's worker's end of its command link
 * (link.h): the listening socket, the supervisor's connection to it, the
 * frames read off it made into jobs, and the batch's replies written back
 * in one write.  Used by the worker thread only.
 */
#ifndef BCTX_WORKER_LINK_H
#define BCTX_WORKER_LINK_H

#include "link.h"
#include "worker.h"

/* A worker's command link.  Zeroed, then bctx_worker_link_init. */
typedef struct bctx_worker_link {
    int listener;                 /* listening, or -1 (no command link) */
    int conn;                     /* the supervisor's connection to it, or -1 */
    bctx_bytes_t in;              /* bytes read from conn, not all taken yet */
    bctx_bytes_t out;             /* replies on their way to conn */
} bctx_worker_link_t;

/* Sets self to no link (no listener, no connection). */
void bctx_worker_link_init (bctx_worker_link_t *self);

/* Listens at path (a file system path, not an endpoint).  Return 0, or
 * -1 with the reason in why. */
int bctx_worker_link_listen (bctx_worker_link_t *self, const char *path, char *why,
                             size_t whylen);

/* Waits until queue (a ZeroMQ socket, borrowed) or the link has
 * something, and takes a supervisor's new connection (after a restart
 * of its own link) in place of the old one.  Return 0, or -1 when the
 * host is going away. */
int bctx_worker_link_wait (bctx_worker_link_t *self, void *queue);

/* Takes one command waiting on the link, a frame whose body is a "send"
 * (its origin as the supervisor let it through), as a job, reading what
 * the link has when none is buffered.  A body that is not JSON is
 * dropped (the supervisor only sends what it parsed).  Return: new job
 * (job->link set), or NULL when none waits. */
bctx_job_t *bctx_worker_link_take (bctx_worker_link_t *self);

/* Puts the reply of job (a job->link one) on the link, written with the
 * rest of its batch's replies by bctx_worker_link_flush, and frees job
 * (stolen). */
void bctx_worker_link_put (bctx_worker_link_t *self, bctx_job_t *job);

/* Writes the replies put on the link, in one write when the socket takes
 * them (the supervisor always reads: a full one only waits, up to 5 s);
 * a supervisor that does not read loses its connection (name: the
 * context's, for the message). */
void bctx_worker_link_flush (bctx_worker_link_t *self, const char *name);

/* Closes the connection and the listener, frees the buffers. */
void bctx_worker_link_close (bctx_worker_link_t *self);

#endif
