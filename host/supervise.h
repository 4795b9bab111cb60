/*
 * supervise - the supervisor's context processes: one per local context,
 * each `bctx-host --context NAME CONFIG` re-executed from this binary,
 * which loads that context's plugin and runs its worker, projections and
 * reactors.  This module spawns them, notices when one ends (SIGCHLD),
 * says why (the signal or exit status, the command it was serving),
 * restarts it with back-off, restarts one whose resident memory passes
 * contexts[].max_rss_mb, and stops them all within host.stop_timeout_ms.
 * The supervisor itself loads no plugin and runs none of their code.
 *
 * Talking to them is the relay's job (relay.h): each context process
 * serves its link, a ROUTER on ipc://<host.data>/run/ctx-NAME.sock.
 */
#ifndef BCTX_SUPERVISE_H
#define BCTX_SUPERVISE_H

#include <stddef.h>
#include <sys/types.h>
#include <jansson.h>

#include "link.h"
#include "loop.h"
#include "registry.h"

/* The exit status of a context process whose watchdog found a handler
 * running past host.handler_timeout_ms (EX_SOFTWARE). */
#define BCTX_EXIT_HUNG 70

/* Where a context process is in its life. */
enum {
    BCTX_CHILD_DOWN = 0,          /* not running: restarts at restart_at */
    BCTX_CHILD_STARTING = 1,      /* running, not answering on its link yet */
    BCTX_CHILD_UP = 2,            /* answering */
    BCTX_CHILD_STOPPING = 3,      /* told to stop (SIGTERM): no new commands */
    BCTX_CHILD_GONE = 4           /* stopped for good (removed, or host stopping) */
};

/* Why the supervisor ended a context process itself, if it did. */
enum {
    BCTX_KILL_NONE = 0,
    BCTX_KILL_RSS = 1,            /* over contexts[].max_rss_mb */
    BCTX_KILL_HUNG = 2,           /* did not start, or stopped answering */
    BCTX_KILL_STOP = 3,           /* the host stops, or SIGHUP removed it */
    BCTX_KILL_HANDOVER = 4        /* a handover that failed after the release: it
                                     starts again at once, with its version */
};

/* One context process, as the supervisor and the relay see it. */
typedef struct bctx_child {
    char *name;                   /* its context */
    pid_t pid;                    /* its process, or 0 */
    int state;                    /* BCTX_CHILD_* */
    void *link;                   /* DEALER to its link (the relay's) */
    int commands;                 /* its worker's command link (link.h), connected
                                     once it is up, or -1 (sends then take link) */
    char *commands_path;          /* that socket's file */
    bctx_bytes_t out;             /* commands not written to it yet */
    bctx_bytes_t in;              /* replies read from it, not all taken yet */
    char *endpoint;               /* ipc://<host.data>/run/ctx-NAME.sock */
    char *plugin;                 /* the version it serves since a reload, or NULL:
                                     contexts[].plugin */
    size_t max_rss_mb;            /* contexts[].max_rss_mb, or 0 */
    int restarts;                 /* times it was started again */
    int failures;                 /* ends in a row without a stable run (back-off) */
    int killed;                   /* BCTX_KILL_*: why the supervisor ended it */
    char last_exit[256];          /* how the last process ended, or "" */
    double started_at;            /* monotonic: when the process was spawned */
    double up_at;                 /* monotonic: when it first answered */
    double heard_at;              /* monotonic: when it last answered anything */
    double restart_at;            /* monotonic: when a DOWN one starts again */
    double probe_at;              /* monotonic: when to ask a STARTING one again */
    json_t *reactors;             /* the reactor names it last reported (array) */
    json_t *projections;          /* the projection names it last reported (array) */
    json_t *consumes;             /* what its runners read: {"projection P": [context,
                                     ...], "reactor R": [...]}, as last reported */
    char last_command[160];       /* the oldest command in flight, for its obituary */
    json_t *crashes;              /* the events its runners were on when it ended
                                     unasked, and how often (poison.h) */
    int reader;                   /* the relay's loop reader of link, or -1 */
    void *reader_arg;             /* the relay's argument of that reader */
    int commands_reader;          /* the relay's loop reader of commands, or -1 */
    int probing;                  /* the relay has asked it for its stats */
    unsigned generation;          /* 0 for a context's first process, else the number
                                     of the handover that started it: in its links'
                                     names (ctx-NAME.G.sock) */
    int standby;                  /* started by a handover and not serving yet: no
                                     command goes to it (reload.h) */
    int retired;                  /* replaced by a handover, or a standby given up:
                                     it ends and is not started again */
    double deadline;              /* a standby: by when its plugin's copy must be made
                                     (monotonic), passed to it */
    char *fallback;               /* the version this one replaced, run again if this
                                     one ends unasked before probation_until, or NULL */
    double probation_until;       /* monotonic: end of the new version's probation */
    int pinned;                   /* handovers that refer to it: not freed until 0 */
    int reloads;                  /* handovers that switched this context */
    char last_reload_error[1024]; /* why the last reload failed, or "" */
} bctx_child_t;

typedef struct bctx_supervise bctx_supervise_t;

/* What the relay is told when a context process ended (to answer what
 * was in flight) or came up.  arg: as registered. */
typedef void (bctx_child_fn) (void *arg, bctx_child_t *child);

/* The supervisor of the registry's contexts (borrowed).  exe: the binary
 * to re-execute (borrowed).  Return: new, none started yet. */
bctx_supervise_t *bctx_supervise_new (bctx_registry_t *registry, void *zctx,
                                      const char *exe);

/* Who hears of a context process that ended (fn, arg borrowed). */
void bctx_supervise_on_exit (bctx_supervise_t *self, bctx_child_fn *fn, void *arg);

/* Spawns a process for every context.  Return 0, or -1 with the reason. */
int bctx_supervise_spawn_all (bctx_supervise_t *self, char *err, size_t errlen);

/* Checks on the processes: reaps those that ended (after SIGCHLD, or
 * polled), restarts those due, ends those over their memory limit or
 * that do not start in time.  Return the seconds until it wants to run
 * again.
 * self is a bctx_supervise_t (borrowed): this is its timer, a bctx_tick_fn. */
double bctx_supervise_tick (void *self);

/* The children, in config order (borrowed), and how many. */
bctx_child_t **bctx_supervise_children (bctx_supervise_t *self, size_t *n);

/* The child serving context `name` (not a standby, not retired), or NULL. */
bctx_child_t *bctx_supervise_find (bctx_supervise_t *self, const char *name);

/* Starts a standby process for a handover of context `name`: the same
 * binary with --standby, its own links (a new generation), plugin (NULL:
 * contexts[].plugin) and deadline.  It serves nothing until promoted.
 * Return it, or NULL with the reason. */
bctx_child_t *bctx_supervise_standby (bctx_supervise_t *self, const char *name,
                                      const char *plugin, double deadline,
                                      char *err, size_t errlen);

/* A handover switched: standby `next` serves its context from now on, in
 * place of `old` (retired already, or NULL).  A context process that
 * ends unasked within the probation after this runs old's version again. */
void bctx_supervise_promote (bctx_supervise_t *self, bctx_child_t *next, bctx_child_t *old);

/* A handover failed after `old` released its context: old serves again,
 * its process started anew (at once) once the one that released has ended. */
void bctx_supervise_reinstate (bctx_supervise_t *self, bctx_child_t *old);

/* Gives a child up for good: a standby whose handover failed, or a
 * retired process (SIGKILL, or SIGTERM when graceful). */
void bctx_supervise_retire (bctx_supervise_t *self, bctx_child_t *child, int graceful);

/* A child answered on its link for the first time since it started. */
void bctx_supervise_up (bctx_supervise_t *self, bctx_child_t *child);

/* A client's request to child, sent at sent_at (monotonic), went
 * unanswered past its deadline (the relay's).  A process that has sent
 * nothing since for host.handler_timeout_ms + 2 s is frozen: it is
 * killed and started again. */
void bctx_supervise_unanswered (bctx_supervise_t *self, bctx_child_t *child, double sent_at,
                                double now);

/* Ends the process of child (SIGKILL, or SIGTERM when graceful) for
 * `why` (BCTX_KILL_*); it restarts unless why is BCTX_KILL_STOP. */
void bctx_supervise_kill (bctx_supervise_t *self, bctx_child_t *child, int why, int graceful);

/* SIGHUP: the registry's config was replaced.  Spawns the contexts it
 * adds, stops those it removes, and passes SIGHUP to the others. */
void bctx_supervise_reconfigure (bctx_supervise_t *self);

/* Asks every process to drain (SIGTERM).  Return 0. */
int bctx_supervise_stop (bctx_supervise_t *self);

/* Are all processes gone? */
int bctx_supervise_all_gone (bctx_supervise_t *self);

/* Kills what did not stop (SIGKILL) and reaps it. */
void bctx_supervise_kill_all (bctx_supervise_t *self);

/* What `bctx stats` shows of a context's process: {pid, state, restarts,
 * last_exit, rss_mb, cpu_seconds}.  Return: new. */
json_t *bctx_supervise_process (const bctx_child_t *child);

/* Frees the children (after kill_all); sets *self_p to NULL.  Idempotent. */
void bctx_supervise_destroy (bctx_supervise_t **self_p);

#endif
