/*
 * bctx/plugin.h - the one header a bounded-context plugin includes.
 *
 * A plugin is a shared object that exports one function, bctx_context(),
 * returning a const descriptor: the context's name and version, its
 * commands (each with a decide), its aggregate's evolve, and init/fini.
 * The host checks the descriptor's magic block exactly before it uses any
 * other field, so a plugin built against another version of this header is
 * refused with a message naming the field that differs.
 *
 * Data crosses the boundary as jansson values (json_t).  Beside every
 * pointer is who owns it:
 *   borrowed - the callee may read it during the call, not keep or free it;
 *   new      - the callee returns a new reference, the caller releases it;
 *   stolen   - the callee takes the caller's reference, even on failure.
 *
 * Rules for plugins: keep no static state that must survive a reload,
 * register nothing after init, use no atexit() and no destructors.  All
 * state a plugin needs lives in the `user` pointer it sets in init.
 */
#ifndef BCTX_PLUGIN_H
#define BCTX_PLUGIN_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <jansson.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Bumped on any incompatible change to the structures below. */
#define BCTX_ABI_VERSION 2

/* Name of the one function a plugin exports. */
#define BCTX_ENTRY_SYMBOL "bctx_context"

/* Return codes of decide (and init). */
#define BCTX_OK       0   /* accepted: the events appended are to be stored */
#define BCTX_REJECT   1   /* rejected: why->text says why; nothing is stored */
#define BCTX_INVALID  2   /* the data is malformed: why->text names the field;
                             the client gets "bad_request" */
#define BCTX_ERROR   -1   /* the plugin failed: the client gets "internal" */

/* Log levels for host->log. */
enum { BCTX_LOG_ERROR = 0, BCTX_LOG_WARN = 1, BCTX_LOG_INFO = 2, BCTX_LOG_DEBUG = 3 };

/* Compared field by field, exactly, before any other descriptor field is
 * read.  Always fill it with BCTX_MAGIC. */
typedef struct bctx_magic {
    uint32_t abi_version;      /* BCTX_ABI_VERSION the plugin was built with */
    uint32_t context_size;     /* sizeof (bctx_context_t) at build time */
    uint32_t command_size;     /* sizeof (bctx_command_t) at build time */
    uint32_t projection_size;  /* sizeof (bctx_projection_t) at build time */
    uint32_t reactor_size;     /* sizeof (bctx_reactor_t) at build time */
    uint32_t event_size;       /* sizeof (bctx_event_t) at build time */
} bctx_magic_t;

/* A rejection's reason, filled by decide with bctx_reason(). */
typedef struct bctx_reason {
    char text[256];            /* human-readable, NUL-terminated */
} bctx_reason_t;

/* An event as a projection or reactor sees it.  Everything is borrowed
 * for the duration of the handler call. */
typedef struct bctx_event {
    const char *context;       /* the context whose log holds it */
    const char *type;          /* e.g. "Deposited" */
    const char *aggregate;     /* the aggregate's id */
    int64_t version;           /* place in the aggregate's stream, from 1 */
    int64_t position;          /* place in the context's log, from 1 */
    const json_t *data;        /* what the context decided */
    const char *metadata;      /* JSON text {command_id, correlation_id,
                                  causation_id, time, context_version, and
                                  origin "reactor" for a reactor's command};
                                  json_loads it when needed (most handlers
                                  never do) */
} bctx_event_t;

/* The read models a projection handler may read and write (opaque). */
typedef struct bctx_models bctx_models_t;

/* A reactor handler's right to send commands (opaque). */
typedef struct bctx_reaction bctx_reaction_t;

/* Services the host offers a plugin.  The table only ever grows at the end:
 * a plugin that wants an entry added later checks `size` (or the pointer for
 * NULL) before calling it.  The table is owned by the host and stays valid
 * from init until fini returns. */
typedef struct bctx_host bctx_host_t;
struct bctx_host {
    size_t size;               /* sizeof (bctx_host_t) in the host */
    void *priv;                /* the host's own; a plugin never touches it */
    /* Writes one line to the host's log, prefixed with the context name.
     * fmt: borrowed, printf-style. */
    void (*log) (const bctx_host_t *host, int level, const char *fmt, ...)
        __attribute__ ((format (printf, 3, 4)));
    /* The name this context has in the host's config.  Return: borrowed,
     * valid until fini. */
    const char *(*context_name) (const bctx_host_t *host);

    /* --- read models, only inside a projection's handle --- */
    /* The read model stored under key.  Return: new, or NULL if none. */
    json_t *(*model_get) (bctx_models_t *models, const char *key);
    /* Stores value (stolen) under key, replacing what was there.  It is
     * committed together with the projection's checkpoint.  Return 0/-1. */
    int (*model_put) (bctx_models_t *models, const char *key, json_t *value);
    /* Removes the read model under key.  Return 0/-1. */
    int (*model_delete) (bctx_models_t *models, const char *key);

    /* --- commands, only inside a reactor's react --- */
    /* Sends a command to any context and waits for the outcome.  context,
     * command: borrowed; data: stolen.  The host gives the command an id
     * derived from the event being handled and the call's order within the
     * handler, so a redelivered event never acts twice: a repeated send
     * returns the first outcome.  Return BCTX_OK (accepted), BCTX_REJECT
     * (why says why; a business outcome, not an error) or BCTX_ERROR (the
     * command could not be applied now: return BCTX_ERROR from react and
     * the host retries the event later). */
    int (*send) (bctx_reaction_t *reaction, const char *context,
                 const char *command, json_t *data, bctx_reason_t *why);
};

/*
 * decide - the command handler.  Given the aggregate's current state and
 * the command's data, either append events to `events` and return BCTX_OK,
 * or fill `why` and return BCTX_REJECT (a business rule says no) or
 * BCTX_INVALID (the data itself is wrong: a missing or wrong-typed field).  It must not have side effects: the
 * host may call it again for the same command after a crash.
 *
 *   user:   what init stored; plugin-owned.
 *   state:  borrowed; the aggregate's state folded by evolve, or NULL when
 *           the aggregate has no events yet.
 *   data:   borrowed; the command's "data" object.  The aggregate id field
 *           named in bctx_command_t is present and a string.
 *   events: borrowed JSON array; append each new event with bctx_emit().
 *   why:    borrowed; fill with bctx_reason() when rejecting.
 */
typedef int (*bctx_decide_fn) (void *user, const json_t *state,
                               const json_t *data, json_t *events,
                               bctx_reason_t *why);

/*
 * evolve - folds one event into an aggregate's state.
 *
 *   state:  stolen; the state so far, or NULL for the aggregate's first
 *           event.
 *   type:   borrowed; the event type, e.g. "Deposited".
 *   data:   borrowed; the event's data.
 *   Return: new; the next state.  NULL is a plugin failure ("internal").
 *
 * A newer version of a plugin must still read every event type an older
 * version wrote: the log is never rewritten.
 */
typedef json_t *(*bctx_evolve_fn) (void *user, json_t *state,
                                   const char *type, const json_t *data);

/*
 * A projection folds events (of its own context or of others) into read
 * models: JSON documents by key, queried with `bctx query NAME [KEY]`.
 * The host feeds it every event it consumes, in position order for each
 * source context, exactly once as far as the read models can tell: the
 * models a handler writes and the projection's checkpoint commit in one
 * transaction.  Bump `version` when the handler changes what it writes:
 * the host then rebuilds the projection from position 1 beside the old
 * read models and switches to the new ones when they have caught up.
 *
 * handle: user as for decide; host: the services table; models: where
 * read models are read and written (host->model_get/put/delete); event:
 * borrowed.  Return BCTX_OK, or BCTX_ERROR to stop the projection (it is
 * retried later; nothing of the failed batch is kept).
 */
typedef struct bctx_projection {
    const char *name;             /* unique in the host, e.g. "balances" */
    uint32_t version;             /* from 1; bump to rebuild */
    const char *const *consumes;  /* "<context>.<Type>" or "<context>.*", NULL-ended */
    int (*handle) (void *user, const bctx_host_t *host, bctx_models_t *models,
                   const bctx_event_t *event);
} bctx_projection_t;

/*
 * A reactor reacts to events by sending commands (host->send): a process
 * manager or saga.  The host feeds it every event it consumes, in
 * position order for each source context, and checkpoints it after each.
 * Return BCTX_OK when done with the event, or BCTX_ERROR to have it
 * retried with back-off; an aggregate whose events keep failing is
 * parked (its later events wait too) without holding up the others, until
 * `bctx retry REACTOR`.
 */
typedef struct bctx_reactor {
    const char *name;             /* unique in the host */
    const char *const *consumes;  /* "<context>.<Type>" or "<context>.*", NULL-ended */
    int (*react) (void *user, const bctx_host_t *host,
                  bctx_reaction_t *reaction, const bctx_event_t *event);
} bctx_reactor_t;

/* One command a context accepts. */
typedef struct bctx_command {
    const char *name;             /* e.g. "Deposit" */
    const char *aggregate_field;  /* field of data holding the aggregate id */
    bctx_decide_fn decide;        /* see above */
} bctx_command_t;

/* The descriptor.  Build it with BCTX_CONTEXT_INIT so fields added later
 * default to zero. */
typedef struct bctx_context {
    bctx_magic_t magic;           /* BCTX_MAGIC */
    const char *name;             /* the context's name, e.g. "accounts" */
    const char *version;          /* the plugin's version, e.g. "1.0.0" */
    const bctx_command_t *commands; /* array ended by an entry with name NULL */
    bctx_evolve_fn evolve;        /* the aggregate's fold */
    const bctx_projection_t *projections; /* array ended by name NULL, or NULL */
    const bctx_reactor_t *reactors;       /* array ended by name NULL, or NULL */
    /* Called once after load, before any command.  settings: borrowed, the
     * context's "settings" from config (JSON null if absent).  host:
     * borrowed, valid until fini.  Store plugin state in *user.  Return
     * BCTX_OK, or BCTX_ERROR after logging why: the host then refuses to
     * start (or keeps the old version on a reload). */
    int (*init) (const bctx_host_t *host, const json_t *settings, void **user);
    /* Called once before unload with what init stored; frees it. */
    void (*fini) (void *user);
} bctx_context_t;

#define BCTX_MAGIC { BCTX_ABI_VERSION, (uint32_t) sizeof (bctx_context_t), \
                     (uint32_t) sizeof (bctx_command_t), \
                     (uint32_t) sizeof (bctx_projection_t), \
                     (uint32_t) sizeof (bctx_reactor_t), \
                     (uint32_t) sizeof (bctx_event_t) }

/* Initialiser for a descriptor:
 *   static const bctx_context_t ctx = BCTX_CONTEXT_INIT (.name = "x", …); */
#define BCTX_CONTEXT_INIT(...) { .magic = BCTX_MAGIC, __VA_ARGS__ }

/* Declares the exported entry point returning `desc` (a bctx_context_t). */
#define BCTX_DECLARE_CONTEXT(desc) \
    __attribute__ ((visibility ("default"))) \
    const bctx_context_t *bctx_context (void) { return &(desc); }

typedef const bctx_context_t *(*bctx_entry_fn) (void);

/* Appends an event {"type": type, "data": data} to `events`.
 * type: borrowed.  data: stolen (NULL means an empty object).
 * Return 0, or -1 when out of memory. */
static inline int
bctx_emit (json_t *events, const char *type, json_t *data)
{
    json_t *ev = json_pack ("{s:s, s:o}", "type", type,
                            "data", data ? data : json_object ());
    if (!ev)
        return -1;
    return json_array_append_new (events, ev);
}

/* Fills a rejection reason, printf-style, and returns BCTX_REJECT so a
 * decide can end with `return bctx_reason (why, "…", …);`.  For
 * BCTX_INVALID, fill it the same way and return BCTX_INVALID. */
static inline int bctx_reason (bctx_reason_t *why, const char *fmt, ...)
    __attribute__ ((format (printf, 2, 3)));
static inline int
bctx_reason (bctx_reason_t *why, const char *fmt, ...)
{
    va_list ap;
    va_start (ap, fmt);
    vsnprintf (why->text, sizeof why->text, fmt, ap);
    va_end (ap);
    return BCTX_REJECT;
}

#ifdef __cplusplus
}
#endif
#endif
