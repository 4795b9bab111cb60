/*
 * reactor_internal - what reactor.c and reactor_lanes.c share: the
 * runner's struct, who runs a handler, and the handling both use.  Not
 * for other modules (they use reactor.h).
 */
#ifndef BCTX_REACTOR_INTERNAL_H
#define BCTX_REACTOR_INTERNAL_H

#include "reactor.h"
#include "lanes.h"
#include "runner.h"
#include "sender.h"

#include <stdatomic.h>

#define S_BATCH      200       /* events read per store query */

/* Who runs a handler: the reactor's own thread, or one of its lanes.
 * Each has its own sockets, busy mark and poison slot. */
typedef struct {
    bctx_sender_t *sender;        /* its sockets to the targets */
    bctx_runner_t *runner;        /* the reactor's thread: waits a stop ends; NULL
                                     in a lane */
    bctx_busy_t *busy;            /* its handler running (the watchdog's) */
    bctx_slot_t *slot;            /* its note of the event in hand, or NULL */
} bctx_hand_t;

struct bctx_reactor_runner {
    bctx_consumer_t base;         /* its feed, file, thread, poison slot, stats; its
                                     busy time does not count the waits for its
                                     commands' replies */
    const bctx_reactor_t *def;    /* its declaration, inside base.plugin */
    bctx_sender_t *sender;        /* the contexts it may send to */
    bctx_hand_t hand;             /* its own thread's */
    size_t n_lanes;               /* contexts[].reactor_lanes: 1, or lanes at once */
    bctx_lanes_t *lanes;          /* their threads, when n_lanes > 1 */
    bctx_hand_t *lane_hands;      /* theirs */
    bctx_busy_t *lane_busy;       /* their busy marks */
    int serial_first;             /* the first batch after a start runs on the thread
                                     alone, so a poison event is noted alone */
    atomic_int stopping;          /* a stop arrived (lanes read it) */
    int retry_asked;              /* a retry arrived while backing off */
    json_t *parked;               /* "source\x1faggregate" -> count */
    /* Shared with the API thread, under base.lock: */
    int64_t n_parked;             /* parked events */
    int64_t retries;              /* failed attempts (the last one before parking too) */
    int waiting;                  /* error says a peer does not answer: the event waits */
};

/* key = source and aggregate, the key of the parked map and of a lane. */
void bctx_reactor_key (char *out, size_t size, const char *source, const char *aggregate);

/* Reads the runner's pipe: a stop or a retry is kept for the thread's loop.
 * From the reactor's thread. */
void bctx_reactor_read_commands (bctx_reactor_runner_t *self);

/* Sets the last failure shown in stats; waiting: a peer does not answer. */
void bctx_reactor_set_error (bctx_reactor_runner_t *self, const char *text, int waiting);

/* Runs react on ev by hand, with back-off, noted in hand's poison slot.
 * Return 0 when it succeeded, 1 when it kept failing (why says why), -1
 * when asked to stop. */
int bctx_reactor_attempt (bctx_reactor_runner_t *self, bctx_hand_t *hand, const bctx_event_t *ev,
                          char *why, size_t whylen);

/* With lanes > 1, the lanes' threads, senders and busy marks.  Return 0,
 * or -1 with the reason in err. */
int bctx_reactor_open_lanes (bctx_reactor_runner_t *self, void *zctx,
                             const bctx_security_t *security, const bctx_source_t *targets,
                             size_t n, size_t lanes, char *err, size_t errlen);

/* One batch of source i on the lanes.  Return 1 if more may wait, 0 if
 * caught up, -1 on failure or stop. */
int bctx_reactor_batch_lanes (bctx_reactor_runner_t *self, size_t i);

#endif
