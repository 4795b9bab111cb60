/*
 * loop - the host's event loop: a table of readers (ZeroMQ sockets or file
 * descriptors, each with a callback) and timers (ticks that say when they
 * want to run next), polled together, as czmq's zloop.  The loop knows
 * readers and timers, never the modules behind them: each module
 * registers its own.
 */
#ifndef BCTX_LOOP_H
#define BCTX_LOOP_H

/* What a reader's callback tells the loop. */
enum {
    BCTX_LOOP_GO_ON = 0,          /* serve the other readers of this turn */
    BCTX_LOOP_NEW_TURN = 1,       /* skip them: the host changed shape, poll again */
    BCTX_LOOP_STOP = -1           /* end bctx_loop_run */
};

/* A reader's callback: its socket or descriptor is readable.  arg:
 * borrowed, as registered.  Return BCTX_LOOP_*. */
typedef int (bctx_loop_fn) (void *arg);

/* A timer's tick, called once per turn before the poll: does what is due
 * and returns the seconds until it wants to run again, or -1 for never
 * (until something else wakes the loop). */
typedef double (bctx_tick_fn) (void *arg);

typedef struct bctx_loop bctx_loop_t;

/* A new, empty loop.  Return: new. */
bctx_loop_t *bctx_loop_new (void);

/* Registers a reader: a ZeroMQ socket (fd ignored), or when socket is
 * NULL a descriptor (a negative one is skipped, as poll(2) does).
 * Readers are served in the order they were registered.  socket, arg:
 * borrowed.  Return its id (>= 0), for bctx_loop_reader_end. */
int bctx_loop_reader (bctx_loop_t *self, void *socket, int fd, bctx_loop_fn *fn, void *arg);

/* Removes the reader `id`; an unknown id is ignored. */
void bctx_loop_reader_end (bctx_loop_t *self, int id);

/* A module's teardown of a descriptor it reads: ends the reader *id (when
 * it is >= 0 and self is not NULL), closes *fd (when it is >= 0), and sets
 * both to -1. */
void bctx_loop_reader_close (bctx_loop_t *self, int *id, int *fd);

/* Registers a timer, ticked in the order of registration.  arg: borrowed. */
void bctx_loop_timer (bctx_loop_t *self, bctx_tick_fn *tick, void *arg);

/* Runs turns until a reader returns BCTX_LOOP_STOP.  Return 0, or -1
 * when polling failed (logged). */
int bctx_loop_run (bctx_loop_t *self);


/* Frees the loop (not what it polls); sets *self_p to NULL.  Idempotent. */
void bctx_loop_destroy (bctx_loop_t **self_p);

#endif
