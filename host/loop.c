/*
 * loop - the readers and timers of the host's one API thread, polled with
 * zmq_poll: ticks first (each says how long the poll may sleep), then the
 * callbacks of whatever became readable, in the order of registration.
 */

#include "loop.h"
#include "log.h"
#include "util.h"

#include <errno.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

/* One registered reader. */
typedef struct {
    int id;                       /* its id, or -1 once ended */
    void *socket;                 /* ZeroMQ socket, or NULL */
    int fd;                       /* the descriptor when socket is NULL */
    bctx_loop_fn *fn;             /* called when readable */
    void *arg;                    /* passed to fn (borrowed) */
} s_reader_t;

/* One registered timer. */
typedef struct {
    bctx_tick_fn *tick;           /* called each turn */
    void *arg;                    /* passed to tick (borrowed) */
} s_timer_t;

struct bctx_loop {
    s_reader_t *readers;          /* registered readers */
    size_t n_readers;             /* how many */
    s_timer_t *timers;            /* registered timers */
    size_t n_timers;              /* how many */
    int next_id;                  /* id of the next reader */
};

bctx_loop_t *
bctx_loop_new (void)
{
    return calloc (1, sizeof (bctx_loop_t));
}

int
bctx_loop_reader (bctx_loop_t *self, void *socket, int fd, bctx_loop_fn *fn, void *arg)
{
    s_reader_t *more = realloc (self->readers, (self->n_readers + 1) * sizeof *more);
    if (!more) {
        bctx_log (BCTX_LOG_ERROR, "loop: out of memory for a reader");
        abort ();
    }
    self->readers = more;
    self->readers[self->n_readers++] = (s_reader_t) { self->next_id, socket, fd, fn, arg };
    return self->next_id++;
}

void
bctx_loop_reader_end (bctx_loop_t *self, int id)
{
    for (size_t i = 0; i < self->n_readers; i++)
        if (self->readers[i].id == id) {
            for (size_t j = i + 1; j < self->n_readers; j++)
                self->readers[j - 1] = self->readers[j];
            self->n_readers--;
            return;
        }
}

void
bctx_loop_reader_close (bctx_loop_t *self, int *id, int *fd)
{
    if (*id >= 0 && self)
        bctx_loop_reader_end (self, *id);
    *id = -1;
    if (*fd >= 0)
        close (*fd);
    *fd = -1;
}

void
bctx_loop_timer (bctx_loop_t *self, bctx_tick_fn *tick, void *arg)
{
    s_timer_t *more = realloc (self->timers, (self->n_timers + 1) * sizeof *more);
    if (!more) {
        bctx_log (BCTX_LOG_ERROR, "loop: out of memory for a timer");
        abort ();
    }
    self->timers = more;
    self->timers[self->n_timers++] = (s_timer_t) { tick, arg };
}

/* Ticks every timer.  Return the poll's timeout in milliseconds, or -1. */
static long
s_tick (bctx_loop_t *self)
{
    double wait = -1;
    for (size_t i = 0; i < self->n_timers; i++) {
        double next = self->timers[i].tick (self->timers[i].arg);
        if (next >= 0 && (wait < 0 || next < wait))
            wait = next;
    }
    return wait < 0 ? -1 : (long) (wait * 1000) + 1;
}

int
bctx_loop_run (bctx_loop_t *self)
{
    for (;;) {
        long timeout = s_tick (self);
        size_t n = self->n_readers;
        zmq_pollitem_t items[n ? n : 1];
        int ids[n ? n : 1];
        for (size_t i = 0; i < n; i++) {
            items[i] = (zmq_pollitem_t) { self->readers[i].socket, self->readers[i].fd,
                                          ZMQ_POLLIN, 0 };
            ids[i] = self->readers[i].id;
        }
        if (zmq_poll (items, (int) n, timeout) < 0) {
            if (zmq_errno () == EINTR)
                continue;
            bctx_log (BCTX_LOG_ERROR, "poll: %s", zmq_strerror (zmq_errno ()));
            return -1;
        }
        int rc = BCTX_LOOP_GO_ON;
        for (size_t i = 0; i < n && rc == BCTX_LOOP_GO_ON; i++) {
            if (!(items[i].revents & ZMQ_POLLIN))
                continue;
            /* Find it again: a callback may have ended readers. */
            for (size_t j = 0; j < self->n_readers; j++)
                if (self->readers[j].id == ids[i]) {
                    rc = self->readers[j].fn (self->readers[j].arg);
                    break;
                }
        }
        if (rc == BCTX_LOOP_STOP)
            return 0;
    }
}

void
bctx_loop_destroy (bctx_loop_t **self_p)
{
    BCTX_SELF_OR_RETURN (bctx_loop_t, self_p);
    free (self->readers);
    free (self->timers);
    free (self);
    *self_p = NULL;
}
