/*
 * poison - poison events, parked across restarts.  Each projection and
 * reactor of a context process notes, before its handler runs, which
 * event it hands it: in a slot of host.data/run/state-CONTEXT, a file
 * mapped shared, so the note outlives a crash.  When the process ends
 * without being asked to, the supervisor reads the notes and counts, for
 * each runner and event, the ends it was in.  An event that ended the
 * process BCTX_POISON_LIMIT times is parked for that runner: it is
 * written to host.data/run/park-CONTEXT.json, which the next process
 * reads, and its runner passes over that event (logged, listed in
 * stats) and goes on with the others.  A restart never crash-loops on
 * one event.  `bctx retry` runs a parked event again: a crash there is
 * one more end of the process, counted on the event, which stays
 * parked; a success unparks it (the context process rewrites the file).
 */
#ifndef BCTX_POISON_H
#define BCTX_POISON_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#include "bctx/plugin.h"

#define BCTX_POISON_LIMIT 3      /* ends of a process on one event before it is parked */
#define BCTX_POISON_SLOTS 512    /* runners noted per context process: each projection
                                    and reactor, and each lane of a reactor (up to 64),
                                    for the process and a standby beside it */
#define BCTX_POISON_LANE '\x1f' /* "reactor NAME" BCTX_POISON_LANE "3": lane 3's slot,
                                    counted for "reactor NAME" */

/* What one runner is handling. */
typedef struct bctx_slot {
    char runner[96];              /* "projection NAME" or "reactor NAME" */
    char source[72];              /* the context of the event */
    char aggregate[257];          /* its aggregate (at most 256 bytes) */
    char type[96];                /* its type, cut to 95 bytes */
    _Atomic long long position;   /* its position, or 0 between events */
} bctx_slot_t;

typedef struct bctx_poison bctx_poison_t;

/* A context process's notes (the state file, shared with the process it
 * replaces when it is a standby; emptied when fresh, that is, when no
 * other process of the context runs) and the events its supervisor
 * parked.  Return: new, or NULL (logged: no parking). */
bctx_poison_t *bctx_poison_open (const char *data, const char *context, int fresh);

/* The slot of runner `who` ("projection balances"), or NULL when all are
 * taken.  Borrowed, valid until close. */
bctx_slot_t *bctx_poison_slot (bctx_poison_t *self, const char *who);

/* Is the event at position of source parked for runner `who`?  From any
 * thread. */
int bctx_poison_parked (bctx_poison_t *self, const char *who, const char *source,
                        int64_t position);

/* The events parked for runner `who`, in the order they were parked:
 * [{"context", "position", "aggregate", "type", "ends", "parked_at"}]
 * (ends: how many times the event ended its process).  Return: new
 * array (empty when none, or when self is NULL).  From any thread. */
json_t *bctx_poison_list (bctx_poison_t *self, const char *who);

/* After a retry that succeeded: the event at position of source is no
 * longer parked for `who`, here and in the park file.  Return 0, or -1
 * when it was not parked or the file could not be written (logged; it is
 * unparked in this process all the same).  From any thread. */
int bctx_poison_unpark (bctx_poison_t *self, const char *who, const char *source,
                        int64_t position);

/* Notes in slot that event is being handled. */
void bctx_slot_enter (bctx_slot_t *slot, const bctx_event_t *event);

/* Notes in slot that the handler returned. */
void bctx_slot_leave (bctx_slot_t *slot);

/* Unmaps; sets *self_p to NULL.  Idempotent. */
void bctx_poison_close (bctx_poison_t **self_p);

/* The supervisor, after context's process ended unasked: counts each
 * event its notes name in crashes ({"runner\x1fsource\x1fposition": n},
 * borrowed, kept across restarts) and parks those at the limit (logged).
 * An event already parked (its retry ended the process) has its ends
 * counted in the park file and stays parked; one that a retry unparked
 * starts a new count.  Return how many it parked now. */
int bctx_poison_count (const char *data, const char *context, json_t *crashes);

#endif
