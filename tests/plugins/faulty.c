/*
 * faulty - a test context (named "fault") whose code misbehaves on demand, in one chosen
 * place, so a test can watch the host survive a plugin that crashes,
 * exits, hangs or leaks.  Settings:
 *   {"dir": DIR, "fault": "segv"|"abort"|"exit"|"hang"|"leak",
 *    "in": "decide"|"evolve"|"projection"|"reactor"|"init"}
 *
 * The fault fires only while the file DIR/armed exists (checked with
 * access(2) at each call), so a test arms and disarms it by creating and
 * removing that file.  Each time it fires it first creates DIR/fired and
 * logs a line (where the place has the host's log), so a test can wait
 * until a fault is under way.
 *
 * Faults: segv writes through a NULL pointer; abort calls abort(); exit
 * calls exit(3); hang sleeps 1 s at a time for as long as DIR/armed exists
 * (burning no CPU; the tests disarm only once the host has killed it, so
 * to the host it hangs forever, and a failed test's teardown can still
 * stop the host cleanly); leak
 * allocates and fills 1 MiB per call and keeps it (freed in fini, so a
 * clean stop leaks nothing), then the call goes on normally.
 *
 * Command Hit {id} (aggregate field "id") -> event Hit {"id": id}.  The
 * aggregate's state is its number of events (evolve).  Projection
 * "fault-view" keeps {"count": N} per id; reactor "fault-reactor" does
 * nothing.  Both consume fault.Hit.
 */
#include <bctx/plugin.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define S_LEAK_BYTES (1024 * 1024)   /* what one leaking call keeps */

/* One block kept by the leak fault. */
typedef struct s_block {
    struct s_block *next;     /* the block kept before this one */
} s_block_t;

typedef struct {
    const bctx_host_t *host;  /* the host's services, valid until fini */
    char armed[1024];         /* DIR/armed: the fault fires while it exists */
    char fired[1024];         /* DIR/fired: created each time it fires */
    char fault[16];           /* "segv", "abort", "exit", "hang" or "leak" */
    char in[16];              /* where it fires: "decide", "evolve", … */
    pthread_mutex_t lock;     /* guards blocks: places run on several threads */
    s_block_t *blocks;        /* what the leak fault kept, newest first */
} fault_t;

/* Is `value` one of the NULL-ended `names`? */
static int
s_one_of (const char *value, const char *const *names)
{
    for (; *names; names++)
        if (strcmp (value, *names) == 0)
            return 1;
    return 0;
}

/* Fires the configured fault if it is configured for `place` and DIR/armed
 * exists; returns only for leak (or when nothing fires). */
static void
s_maybe_fault (fault_t *self, const char *place)
{
    if (strcmp (self->in, place) != 0 || access (self->armed, F_OK) != 0)
        return;
    int fd = open (self->fired, O_WRONLY | O_CREAT, 0644);
    if (fd >= 0)
        close (fd);
    if (self->host && strcmp (self->fault, "leak") != 0)
        self->host->log (self->host, BCTX_LOG_WARN, "fault: %s in %s, as armed",
                         self->fault, place);
    if (strcmp (self->fault, "segv") == 0) {
        volatile int *nowhere = NULL;
        *nowhere = 1;
        abort ();             /* not reached */
    } else if (strcmp (self->fault, "abort") == 0) {
        abort ();
    } else if (strcmp (self->fault, "exit") == 0) {
        exit (3);
    } else if (strcmp (self->fault, "hang") == 0) {
        while (access (self->armed, F_OK) == 0)
            sleep (1);
    } else {
        s_block_t *b = malloc (S_LEAK_BYTES);
        if (!b)
            return;
        memset (b, 0xab, S_LEAK_BYTES);
        pthread_mutex_lock (&self->lock);
        b->next = self->blocks;
        self->blocks = b;
        pthread_mutex_unlock (&self->lock);
    }
}

static int
s_init (const bctx_host_t *host, const json_t *settings, void **user)
{
    static const char *const faults[] = { "segv", "abort", "exit", "hang", "leak", NULL };
    static const char *const places[] = { "decide", "evolve", "projection", "reactor",
                                          "init", NULL };
    const char *dir = json_string_value (json_object_get (settings, "dir"));
    const char *fault = json_string_value (json_object_get (settings, "fault"));
    const char *in = json_string_value (json_object_get (settings, "in"));
    if (!dir || !*dir) {
        host->log (host, BCTX_LOG_ERROR, "settings.dir: expected a directory path");
        return BCTX_ERROR;
    }
    if (!fault || !s_one_of (fault, faults)) {
        host->log (host, BCTX_LOG_ERROR, "settings.fault: expected one of segv, abort, "
                   "exit, hang, leak");
        return BCTX_ERROR;
    }
    if (!in || !s_one_of (in, places)) {
        host->log (host, BCTX_LOG_ERROR, "settings.in: expected one of decide, evolve, "
                   "projection, reactor, init");
        return BCTX_ERROR;
    }
    fault_t *self = calloc (1, sizeof *self);
    if (!self)
        return BCTX_ERROR;
    self->host = host;
    snprintf (self->armed, sizeof self->armed, "%s/armed", dir);
    snprintf (self->fired, sizeof self->fired, "%s/fired", dir);
    snprintf (self->fault, sizeof self->fault, "%s", fault);
    snprintf (self->in, sizeof self->in, "%s", in);
    pthread_mutex_init (&self->lock, NULL);
    s_maybe_fault (self, "init");
    *user = self;
    return BCTX_OK;
}

static void
s_fini (void *user)
{
    fault_t *self = user;
    if (!self)
        return;
    while (self->blocks) {
        s_block_t *next = self->blocks->next;
        free (self->blocks);
        self->blocks = next;
    }
    pthread_mutex_destroy (&self->lock);
    free (self);
}

/* Hit {id} -> Hit {id}. */
static int
s_hit (void *user, const json_t *state, const json_t *data, json_t *events,
       bctx_reason_t *why)
{
    (void) state;
    (void) why;
    s_maybe_fault (user, "decide");
    return bctx_emit (events, "Hit", json_pack ("{s:O}", "id", json_object_get (data, "id")))
           == 0 ? BCTX_OK : BCTX_ERROR;
}

/* The state is {"events": N}, the number of events of the aggregate. */
static json_t *
s_evolve (void *user, json_t *state, const char *type, const json_t *data)
{
    (void) type;
    (void) data;
    s_maybe_fault (user, "evolve");
    json_int_t n = json_integer_value (json_object_get (state, "events"));
    json_decref (state);
    return json_pack ("{s:I}", "events", n + 1);
}

/* --- the projection and the reactor ----------------------------------- */

/* fault-view: {"count": N} under each Hit's id. */
static int
s_view (void *user, const bctx_host_t *host, bctx_models_t *models,
        const bctx_event_t *ev)
{
    s_maybe_fault (user, "projection");
    const char *id = json_string_value (json_object_get (ev->data, "id"));
    if (!id)
        return BCTX_OK;
    json_t *model = host->model_get (models, id);
    json_int_t n = json_integer_value (json_object_get (model, "count"));
    json_decref (model);
    return host->model_put (models, id, json_pack ("{s:I}", "count", n + 1)) == 0
           ? BCTX_OK : BCTX_ERROR;
}

/* fault-reactor: nothing, unless armed. */
static int
s_react (void *user, const bctx_host_t *host, bctx_reaction_t *r,
         const bctx_event_t *ev)
{
    (void) host;
    (void) r;
    (void) ev;
    s_maybe_fault (user, "reactor");
    return BCTX_OK;
}

static const char *const s_hits[] = { "fault.Hit", NULL };

static const bctx_projection_t s_projections[] = {
    { .name = "fault-view", .version = 1, .consumes = s_hits, .handle = s_view },
    { .name = NULL }
};

static const bctx_reactor_t s_reactors[] = {
    { .name = "fault-reactor", .consumes = s_hits, .react = s_react },
    { .name = NULL }
};

static const bctx_command_t s_commands[] = {
    { .name = "Hit", .aggregate_field = "id", .decide = s_hit },
    { .name = NULL }
};

static const bctx_context_t s_fault = BCTX_CONTEXT_INIT (
    .name = "fault",
    .version = "1.0.0",
    .commands = s_commands,
    .evolve = s_evolve,
    .projections = s_projections,
    .reactors = s_reactors,
    .init = s_init,
    .fini = s_fini,
);

BCTX_DECLARE_CONTEXT (s_fault)
