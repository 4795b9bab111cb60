/*
 * runner - the actor shell of every projection, reactor and bridge (czmq's
 * zactor): a thread, a control pipe from its owner to it, and a
 * synchronous stop.  Commands are named messages on the pipe, each the
 * name of one of the user's enumerated codes; the owner's "$TERM" asks the
 * thread to end, and bctx_runner_stop returns only once the thread has
 * acknowledged it and ended.
 *
 * The owner (the thread that made the runner) calls new, start, send, stop
 * and destroy; the runner's thread calls pipe, recv and wait.
 */
#ifndef BCTX_RUNNER_H
#define BCTX_RUNNER_H

#include <stddef.h>

typedef struct bctx_runner bctx_runner_t;

/* What bctx_runner_recv returns besides a user's command (>= 1). */
enum {
    BCTX_RUNNER_NONE = -1,        /* no command waits */
    BCTX_RUNNER_TERM = 0,         /* "$TERM": end the thread (and every recv after) */
};

/* What bctx_runner_wait saw ready (or'ed). */
enum {
    BCTX_RUNNER_READY = 1,        /* the other socket has input */
    BCTX_RUNNER_COMMAND = 2,      /* a command waits on the pipe */
};

/* The thread's body: runs until bctx_runner_recv says BCTX_RUNNER_TERM,
 * then returns; the runner acknowledges the stop as it returns.  arg is
 * bctx_runner_start's. */
typedef void (*bctx_runner_fn) (bctx_runner_t *runner, void *arg);

/*
 * Makes a runner (not running) and its pipe in zctx (borrowed).  name
 * (copied) names it in messages and its inproc endpoint.  commands
 * (borrowed, must outlive the runner) names the user's commands by code:
 * commands[code] for each code from 1 to n_commands - 1 (commands[0] is
 * not used: code 0 is BCTX_RUNNER_TERM).  Return: new runner, or NULL with
 * the reason in err.
 */
bctx_runner_t *bctx_runner_new (void *zctx, const char *name, const char *const *commands,
                                size_t n_commands, char *err, size_t errlen);

/* Starts the thread running fn (runner, arg).  Return 0, or -1. */
int bctx_runner_start (bctx_runner_t *self, bctx_runner_fn fn, void *arg);

/* Sends the command `code` (1 .. n_commands - 1) to the thread without
 * waiting; commands sent before start wait on the pipe.  Return 0, or -1
 * when the pipe is full.  From the owner only. */
int bctx_runner_send (bctx_runner_t *self, int code);

/* The thread's end of the pipe (borrowed), to poll with other sockets. */
void *bctx_runner_pipe (bctx_runner_t *self);

/* The next command, without waiting: a user's code (>= 1), BCTX_RUNNER_NONE,
 * or BCTX_RUNNER_TERM, which every call returns once "$TERM" came (or the
 * ZeroMQ context is ending).  From the thread only. */
int bctx_runner_recv (bctx_runner_t *self);

/* Waits up to timeout_ms (-1: for ever) for input on `other` (a socket, or
 * NULL for none) or a command on the pipe.  Return an or of
 * BCTX_RUNNER_READY and BCTX_RUNNER_COMMAND (0 when the time ran out), or
 * -1 when the ZeroMQ context is ending (recv then says TERM).  Reads
 * nothing.  From the thread only; self NULL: waits for `other` alone
 * (from any thread). */
int bctx_runner_wait (bctx_runner_t *self, void *other, long timeout_ms);

/* Sends "$TERM", waits until the thread acknowledged it and returned (a
 * thread busy with a batch finishes it first), and joins it.  Idempotent;
 * nothing when the thread was never started.  From the owner only. */
void bctx_runner_stop (bctx_runner_t *self);

/* Stops the thread, closes the pipe and frees; sets *self_p to NULL.
 * Idempotent. */
void bctx_runner_destroy (bctx_runner_t **self_p);

#endif
