/*
 * registry - what runs in this host, by name: the config it runs, its
 * contexts (each a worker, the queue to it and a read-only store for
 * queries), the sources feeds read from (local and remote contexts), the
 * bridges that replicate remote contexts, and the projections and
 * reactors of every context.  It checks that a version's read side can
 * run here, creates and starts the runners, and stops them in order.
 * It sends nothing to clients: the modules above it answer.
 */
#ifndef BCTX_REGISTRY_H
#define BCTX_REGISTRY_H

#include <stddef.h>

#include "bridge.h"
#include "config.h"
#include "datadir.h"
#include "feed.h"
#include "loader.h"
#include "projection.h"
#include "poison.h"
#include "reactor.h"
#include "store.h"
#include "worker.h"

/* One local context as the API thread sees it.  In a context process it
 * has its worker; in the supervisor only its name and its log, read-only
 * (its context process runs the worker). */
typedef struct bctx_local {
    char *name;                   /* the context's name */
    bctx_worker_t *worker;        /* the context's worker, or NULL in the supervisor */
    void *push;                   /* PUSH: job pointers to the worker, or NULL */
    bctx_store_t *reader;         /* read-only store for queries (in the supervisor,
                                     NULL until its context process made the file) */
    int load_failure;             /* why its plugin did not load (BCTX_LOAD_*), or 0 */
} bctx_local_t;

/* One projection: its runner and a read-only view of its read models.
 * The supervisor has only the view: a context process runs the runner. */
typedef struct bctx_read_model {
    char *name;                   /* the projection's name */
    bctx_projector_t *projector;  /* runs the projection, or NULL in the supervisor */
    bctx_readside_t *reader;      /* read-only, for queries */
    char *context;                /* the context that declares it */
} bctx_read_model_t;

/* The table of what runs.  Modules above read its fields; only the
 * registry's functions (and SIGHUP's reconfig) change them. */
typedef struct bctx_registry {
    void *zctx;                   /* the ZeroMQ context (borrowed) */
    bctx_config_t *config;        /* owned; replaced on SIGHUP */
    bctx_local_t *contexts;     /* one per config context, in its order */
    size_t n_contexts;            /* how many */
    bctx_source_t *sources;       /* every context, local or remote, for feeds */
    char **remote_paths;          /* the file each remote context is read from
                                     (config->remotes order): a sibling's log, or
                                     the replica of a peer's context */
    size_t n_remote_paths;        /* how many */
    size_t n_sources;             /* how many */
    bctx_bridge_t **bridges;      /* the supervisor's replicas of the peers' contexts
                                     (one each, started once a process reads it) */
    size_t n_bridges;             /* how many */
    bctx_read_model_t *projections; /* every projection of every context */
    size_t n_projections;         /* how many */
    bctx_reactor_runner_t **reactors; /* every reactor of every context */
    bctx_poison_t *poison;        /* a context process's notes and parked events
                                     (owned), or NULL */
    const bctx_security_t *security; /* CURVE for the sockets reactors and bridges
                                     open to peers (borrowed; set by the server) */
    size_t n_reactors;            /* how many */
} bctx_registry_t;

/* An empty registry for config (stolen) in ZeroMQ context zctx
 * (borrowed).  Return: new. */
bctx_registry_t *bctx_registry_new (void *zctx, bctx_config_t *config);

/* Opens context i of config (borrowed) into c: loads its plugin, opens
 * its store for reading and connects a queue to its worker (not started).
 * Return 0, or -1 with the reason in err (c then holds what to close). */
int bctx_local_open (void *zctx, const bctx_config_t *config, size_t i,
                       bctx_local_t *c, char *err, size_t errlen);

/* Stops a context's worker after its queue and frees what serves it. */
void bctx_local_close (bctx_local_t *c);

/* Opens every context of the config.  Return 0, or -1 with the reason. */
int bctx_registry_open_contexts (bctx_registry_t *self, char *err, size_t errlen);

/* The supervisor's registry: a handle per context of the config, with no
 * worker and no plugin (their context processes load them). */
void bctx_registry_open_handles (bctx_registry_t *self);

/* Opens (once) the read-only log of a handle, making the file with its
 * tables first when it is new.  Return 0, or -1 (logged). */
int bctx_registry_open_reader (bctx_registry_t *self, bctx_local_t *c);

/* The supervisor's view of the projections of context `ctx`: a
 * read-only reader for each name in `names` (a JSON array of strings,
 * borrowed) not known yet, and none for those of ctx it no longer
 * names. */
void bctx_registry_set_views (bctx_registry_t *self, const char *ctx, const json_t *names);

/* Builds the sources, and creates (without starting) the projections and
 * reactors every context declares.  Return 0, or -1 with the reason. */
int bctx_registry_open_read_side (bctx_registry_t *self, char *err, size_t errlen);

/* Starts every worker (replies go to the PULL bound at `replies`),
 * projection and reactor.  Return 0, or -1 with the reason. */
int bctx_registry_start (bctx_registry_t *self, const char *replies, char *err, size_t errlen);

/* The local context named `name` (borrowed), or NULL. */
bctx_local_t *bctx_registry_find (bctx_registry_t *self, const char *name);

/* What `bctx contexts` shows of config's (borrowed) remote contexts:
 * [{name, peer, api}].  Return: new. */
json_t *bctx_registry_remotes (const bctx_config_t *config);

/* The index of the context named `name` in config, or -1. */
int bctx_registry_index (const bctx_config_t *config, const char *name);

/* The projection / reactor named `name` (may be NULL), or NULL. */
bctx_read_model_t *bctx_registry_find_projection (bctx_registry_t *self, const char *name);
bctx_reactor_runner_t *bctx_registry_find_reactor (bctx_registry_t *self, const char *name);

/* Checks that a version (borrowed) declares projections and reactors this
 * host can run: names unique in the host and within the plugin, every
 * consumed context known.  Return 0, or -1 with the reason. */
int bctx_registry_check_read_side (bctx_registry_t *self, const bctx_plugin_t *p,
                                   char *err, size_t errlen);

/* Creates (and, when start is set, starts) the runners of a version's
 * projections and reactors that do not run yet.  Return 0, or -1. */
int bctx_registry_add_runners (bctx_registry_t *self, bctx_plugin_t *p, int start,
                               char *err, size_t errlen);

/* Rebuilds the sources: the local contexts, then the remote ones: a
 * sibling's log, or the replica the supervisor's bridge keeps. */
void bctx_registry_build_sources (bctx_registry_t *self);

/* The first projection or reactor of version p that consumes events of
 * `context`, named in who ("projection balances").  Return who, or NULL. */
const char *bctx_registry_consumer (const bctx_plugin_t *p, const char *context,
                                    char *who, size_t size);


/* Stops and frees the projections of context `name`. */
void bctx_registry_drop_projections (bctx_registry_t *self, const char *name);

/* Stops and frees every reactor; then (end_runners) every projection too. */
void bctx_registry_end_reactors (bctx_registry_t *self);
void bctx_registry_end_runners (bctx_registry_t *self);

/*
 * The supervisor's bridges.  open_bridges creates, without starting, the
 * replica of every context of a peer (its file, so that a context process
 * can open it to read).  want_bridges starts those that a context process
 * reads: `consumes` (borrowed) is what its runners read, {"projection P":
 * [context, ...]}.  bridge_stats: the started ones', by context (new).
 */
int bctx_registry_open_bridges (bctx_registry_t *self, char *err, size_t errlen);
void bctx_registry_want_bridges (bctx_registry_t *self, const json_t *consumes);
json_t *bctx_registry_bridge_stats (bctx_registry_t *self);

/* Stops and frees the bridges and the sources. */
void bctx_registry_end_bridges (bctx_registry_t *self);

/* Asks every worker to finish its queue and stop (zmq_send flags). */
void bctx_registry_stop_workers (bctx_registry_t *self, int flags);

/* Waits for every worker's thread to end (after stop_workers). */
void bctx_registry_join_workers (bctx_registry_t *self);

/* Raises each context's high-water mark in datadir to its last commit. */
void bctx_registry_mark (bctx_registry_t *self, bctx_datadir_t *datadir);

/* Closes every context (readers before writers, so the writer's close
 * folds the WAL back); the config stays. */
void bctx_registry_close_contexts (bctx_registry_t *self);

/* Frees the registry and its config (after close_contexts and the end of
 * the ZeroMQ context); sets *self_p to NULL.  Idempotent. */
void bctx_registry_destroy (bctx_registry_t **self_p);

#endif
