/*
 * lanes - a batch's items on a fixed set of threads, by the hash of each
 * item's key (see lanes.h).
 */
#include "lanes.h"
#include "util.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#define S_POLL_MS 5               /* the owner's poll while a batch runs */

/* One lane's thread and its index. */
typedef struct {
    bctx_lanes_t *owner;
    size_t index;
    pthread_t thread;
} s_lane_t;

struct bctx_lanes {
    size_t n;                     /* lanes */
    s_lane_t *lanes;              /* their threads */
    size_t n_started;             /* threads made */
    pthread_mutex_t lock;         /* guards what follows */
    pthread_cond_t go;            /* a batch, or the end */
    pthread_cond_t done;          /* a lane finished its part */
    unsigned long generation;     /* batches handed out */
    size_t running;               /* lanes still on the batch */
    int ending;                   /* destroy: the threads return */
    const size_t *lane_of;        /* the batch: each item's lane */
    size_t n_items;               /* its size */
    bctx_lane_fn *fn;             /* what runs an item */
    void *arg;                    /* with this */
};

/* A lane's thread: each batch's items of its lane, in order. */
static void *
s_lane_main (void *arg)
{
    s_lane_t *lane = arg;
    bctx_lanes_t *self = lane->owner;
    unsigned long seen = 0;
    pthread_mutex_lock (&self->lock);
    for (;;) {
        while (!self->ending && self->generation == seen)
            pthread_cond_wait (&self->go, &self->lock);
        if (self->ending)
            break;
        seen = self->generation;
        const size_t *lane_of = self->lane_of;
        size_t n = self->n_items;
        bctx_lane_fn *fn = self->fn;
        void *fn_arg = self->arg;
        pthread_mutex_unlock (&self->lock);
        for (size_t i = 0; i < n; i++)
            if (lane_of[i] == lane->index)
                fn (fn_arg, lane->index, i);
        pthread_mutex_lock (&self->lock);
        if (--self->running == 0)
            pthread_cond_signal (&self->done);
    }
    pthread_mutex_unlock (&self->lock);
    return NULL;
}

bctx_lanes_t *
bctx_lanes_new (size_t n)
{
    if (n < 2 || n > BCTX_LANES_MAX)
        return NULL;
    bctx_lanes_t *self = bctx_calloc (1, sizeof *self);
    self->n = n;
    self->lanes = bctx_calloc (n, sizeof *self->lanes);
    pthread_mutex_init (&self->lock, NULL);
    pthread_cond_init (&self->go, NULL);
    pthread_condattr_t attr;
    pthread_condattr_init (&attr);
    pthread_condattr_setclock (&attr, CLOCK_MONOTONIC);
    pthread_cond_init (&self->done, &attr);
    pthread_condattr_destroy (&attr);
    for (size_t i = 0; i < n; i++) {
        self->lanes[i] = (s_lane_t) { self, i, 0 };
        if (pthread_create (&self->lanes[i].thread, NULL, s_lane_main, &self->lanes[i]) != 0) {
            bctx_lanes_destroy (&self);
            return NULL;
        }
        self->n_started++;
    }
    return self;
}

size_t
bctx_lanes_size (const bctx_lanes_t *self)
{
    return self->n;
}

size_t
bctx_lanes_of (const bctx_lanes_t *self, const char *key)
{
    uint64_t h = 14695981039346656037ULL;          /* FNV-1a */
    for (const unsigned char *p = (const unsigned char *) key; *p; p++)
        h = (h ^ *p) * 1099511628211ULL;
    return (size_t) (h % self->n);
}

void
bctx_lanes_run (bctx_lanes_t *self, const size_t *lane_of, size_t n, bctx_lane_fn *fn,
                void *arg, bctx_lanes_poll_fn *poll, void *poll_arg)
{
    pthread_mutex_lock (&self->lock);
    self->lane_of = lane_of;
    self->n_items = n;
    self->fn = fn;
    self->arg = arg;
    self->running = self->n;
    self->generation++;
    pthread_cond_broadcast (&self->go);
    while (self->running > 0) {
        struct timespec until;
        clock_gettime (CLOCK_MONOTONIC, &until);
        until.tv_nsec += S_POLL_MS * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        if (pthread_cond_timedwait (&self->done, &self->lock, &until) != 0 && poll
            && self->running > 0) {
            pthread_mutex_unlock (&self->lock);
            poll (poll_arg);
            pthread_mutex_lock (&self->lock);
        }
    }
    pthread_mutex_unlock (&self->lock);
}

void
bctx_lanes_destroy (bctx_lanes_t **self_p)
{
    BCTX_SELF_OR_RETURN (bctx_lanes_t, self_p);
    pthread_mutex_lock (&self->lock);
    self->ending = 1;
    pthread_cond_broadcast (&self->go);
    pthread_mutex_unlock (&self->lock);
    for (size_t i = 0; i < self->n_started; i++)
        pthread_join (self->lanes[i].thread, NULL);
    pthread_mutex_destroy (&self->lock);
    pthread_cond_destroy (&self->go);
    pthread_cond_destroy (&self->done);
    free (self->lanes);
    free (self);
    *self_p = NULL;
}
