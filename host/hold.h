/*
 * hold - the commands of a context held at the relay while it is handed
 * over (reload.h): which contexts are held, and every command held for
 * them with its client's return address, in arrival order, until the
 * relay passes them on or answers them.  The relay's, on the API thread.
 */
#ifndef BCTX_HOLD_H
#define BCTX_HOLD_H

#include <stddef.h>

#include "api.h"

/* A command held while its context is handed over. */
typedef struct bctx_held {
    char *name;                   /* its context */
    char *text;                   /* the request (owned) */
    size_t len;                   /* its length */
    unsigned char env[BCTX_API_ENVELOPE_MAX]; /* the client's envelope */
    size_t env_len;               /* its length */
    int delimiter;                /* the client sent an empty frame first */
    char what[160];               /* the command, for an obituary */
    double admitted;              /* monotonic: when it came (its latency's start) */
} bctx_held_t;

/* The contexts held and their commands.  Zeroed: none. */
typedef struct bctx_hold {
    char **names;                 /* contexts whose commands are held */
    size_t n_names;               /* how many */
    bctx_held_t *held;            /* the commands held, in arrival order */
    size_t n_held;                /* how many */
} bctx_hold_t;

/* Are context name's (borrowed) commands held? */
int bctx_hold_has (const bctx_hold_t *self, const char *name);

/* Holds context name's (borrowed) commands from now on (once). */
void bctx_hold_start (bctx_hold_t *self, const char *name);

/* Keeps req (borrowed: its text and return address are copied), a
 * command for held context name, with what names it for an obituary. */
void bctx_hold_add (bctx_hold_t *self, const char *name, const bctx_request_t *req,
                    const char *what);

/* Stops holding context name (borrowed) and takes its commands out, in
 * the order they came; name NULL takes every context's and stops
 * holding none.  Return: new array of *n (free it with bctx_held_free),
 * or NULL when none was held. */
bctx_held_t *bctx_hold_take (bctx_hold_t *self, const char *name, size_t *n);

/* Frees n commands taken by bctx_hold_take (held may be NULL). */
void bctx_held_free (bctx_held_t *held, size_t n);

/* Frees every command held and every name (self itself is the caller's). */
void bctx_hold_clear (bctx_hold_t *self);

#endif
