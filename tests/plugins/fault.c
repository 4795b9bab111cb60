/*
 * fault - a test context, named "fault", whose code misbehaves on demand,
 * so a test can show that it costs only its own context a restart.
 * Settings: {"dir": DIR, "fault": "segv"|"abort"|"exit"|"hang"|"leak"|"gate",
 *            "in": "decide"|"evolve"|"projection"|"reactor"|"init"}.
 * The fault fires only while the file DIR/armed exists (DIR/armed-v2 for
 * fault_v2.so, version 2.0.0: a new version that fails where the old one
 * did not); with "aggregate":
 * A in the settings, a projection's or reactor's fault fires only on the
 * events of aggregate A (a poison event).
 *
 * Command Hit {id} (aggregate field "id") -> event Hit {id}.
 * Projection "fault-view" (fault.Hit): a count per id.
 * Reactor "fault-reactor" (fault.Hit): does nothing, unless armed there.
 *
 * The faults: segv writes through a null pointer; abort calls abort();
 * exit calls exit(3); hang sleeps forever; leak keeps 1 MiB more per call
 * (freed at fini, so a clean stop leaks nothing); gate logs "fault VERSION:
 * in WHERE, waiting for DIR/open" and waits until that file exists (30 s
 * at most), so a test holds the code there for as long as it wants (in
 * init: a new version that is slow to load).
 */
#include <bctx/plugin.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#ifdef PLUGIN_V2
#define S_VERSION "2.0.0"
#else
#define S_VERSION "1.0.0"
#endif

typedef struct s_block {
    struct s_block *next;         /* the one kept before */
    char bytes[1024 * 1024];      /* touched, so they count in the RSS */
} s_block_t;

typedef struct {
    char armed[1024];             /* DIR/armed */
    char open[1024];              /* DIR/open: the gate fault's gate */
    const bctx_host_t *host;      /* for the gate fault's log line */
    char fault[16];               /* what to do */
    char in[16];                  /* where */
    char aggregate[64];           /* the only aggregate whose events fault, or "" */
    s_block_t *kept;              /* what leak kept */
} fault_t;

/* Misbehaves as told, when armed and `where` is the place (and, when
 * the settings name one, the event is of that aggregate). */
static void
s_maybe_on (fault_t *self, const char *where, const char *aggregate)
{
    if (strcmp (self->in, where) != 0 || access (self->armed, F_OK) != 0
        || (aggregate && self->aggregate[0] && strcmp (aggregate, self->aggregate) != 0))
        return;
    if (strcmp (self->fault, "segv") == 0) {
        volatile int *nowhere = NULL;
        *nowhere = 1;
    } else if (strcmp (self->fault, "abort") == 0) {
        abort ();
    } else if (strcmp (self->fault, "exit") == 0) {
        exit (3);
    } else if (strcmp (self->fault, "hang") == 0) {
        for (;;)
            sleep (1);
    } else if (strcmp (self->fault, "gate") == 0) {
        self->host->log (self->host, BCTX_LOG_INFO, "fault %s: in %s, waiting for %s",
                         S_VERSION, where, self->open);
        struct timespec tick = { 0, 10 * 1000 * 1000 };
        for (int i = 0; i < 3000 && access (self->open, F_OK) != 0; i++)
            nanosleep (&tick, NULL);
    } else if (strcmp (self->fault, "leak") == 0) {
        s_block_t *b = malloc (sizeof *b);
        if (b) {
            memset (b->bytes, 0x5a, sizeof b->bytes);
            b->next = self->kept;
            self->kept = b;
        }
    }
}

/* As s_maybe_on, for any aggregate. */
static void
s_maybe (fault_t *self, const char *where)
{
    s_maybe_on (self, where, NULL);
}

static int
s_init (const bctx_host_t *host, const json_t *settings, void **user)
{
    const char *dir = json_string_value (json_object_get (settings, "dir"));
    const char *fault = json_string_value (json_object_get (settings, "fault"));
    const char *in = json_string_value (json_object_get (settings, "in"));
    if (!dir || !fault || !in) {
        host->log (host, BCTX_LOG_ERROR, "settings: expected dir, fault and in");
        return BCTX_ERROR;
    }
    fault_t *self = calloc (1, sizeof *self);
    if (!self)
        return BCTX_ERROR;
#ifdef PLUGIN_V2
    snprintf (self->armed, sizeof self->armed, "%s/armed-v2", dir);
#else
    snprintf (self->armed, sizeof self->armed, "%s/armed", dir);
#endif
    snprintf (self->open, sizeof self->open, "%s/open", dir);
    self->host = host;
    snprintf (self->fault, sizeof self->fault, "%s", fault);
    snprintf (self->in, sizeof self->in, "%s", in);
    const char *only = json_string_value (json_object_get (settings, "aggregate"));
    snprintf (self->aggregate, sizeof self->aggregate, "%s", only ? only : "");
    s_maybe (self, "init");
    *user = self;
    return BCTX_OK;
}

static void
s_fini (void *user)
{
    fault_t *self = user;
    while (self && self->kept) {
        s_block_t *b = self->kept;
        self->kept = b->next;
        free (b);
    }
    free (self);
}

static int
s_hit (void *user, const json_t *state, const json_t *data, json_t *events,
       bctx_reason_t *why)
{
    (void) state;
    (void) why;
    s_maybe (user, "decide");
    return bctx_emit (events, "Hit", json_pack ("{s:O}", "id", json_object_get (data, "id")))
           == 0 ? BCTX_OK : BCTX_ERROR;
}

/* The state: how many Hits the aggregate had. */
static json_t *
s_evolve (void *user, json_t *state, const char *type, const json_t *data)
{
    (void) type;
    (void) data;
    s_maybe (user, "evolve");
    json_int_t n = json_integer_value (json_object_get (state, "hits"));
    json_decref (state);
    return json_pack ("{s:I}", "hits", n + 1);
}

static int
s_view (void *user, const bctx_host_t *host, bctx_models_t *models, const bctx_event_t *ev)
{
    s_maybe_on (user, "projection", ev->aggregate);
    json_t *was = host->model_get (models, ev->aggregate);
    json_int_t n = json_integer_value (json_object_get (was, "hits"));
    json_decref (was);
    return host->model_put (models, ev->aggregate, json_pack ("{s:I}", "hits", n + 1));
}

static int
s_react (void *user, const bctx_host_t *host, bctx_reaction_t *r, const bctx_event_t *ev)
{
    (void) host;
    (void) r;
    s_maybe_on (user, "reactor", ev->aggregate);
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

static const bctx_context_t s_context = BCTX_CONTEXT_INIT (
    .name = "fault",
    .version = S_VERSION,
    .commands = s_commands,
    .evolve = s_evolve,
    .projections = s_projections,
    .reactors = s_reactors,
    .init = s_init,
    .fini = s_fini,
);

BCTX_DECLARE_CONTEXT (s_context)
