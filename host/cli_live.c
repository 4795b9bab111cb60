/*
 * cli_live - the subcommands of `bctx` that keep running: events --follow
 * (the log, then the host's bus), replay --wait (stats until the
 * projection caught up) and stats --watch.  Each ends at SIGINT or
 * SIGTERM, read from a signalfd beside its sockets (exit 0).
 */

#include "cli.h"

#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>
#include <zmq.h>

#define S_RECHECK_MS  1000        /* a quiet bus: read the log again after this */
#define S_POLL_MS     100         /* replay --wait asks stats this often */

/* Blocks SIGINT and SIGTERM and opens a signalfd of them.  Return it, or -1. */
static int
s_signals (void)
{
    sigset_t set;
    sigemptyset (&set);
    sigaddset (&set, SIGINT);
    sigaddset (&set, SIGTERM);
    sigprocmask (SIG_BLOCK, &set, NULL);
    return signalfd (-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
}

/* Did a stop signal come on fd (within wait_ms)? */
static int
s_stopped (int fd, int wait_ms)
{
    struct pollfd p = { fd, POLLIN, 0 };
    return fd >= 0 && poll (&p, 1, wait_ms) > 0;
}

/* The bus endpoint of the host, new: host.publish from its contexts
 * reply, a wildcard host made the API's.  NULL with *code after printing
 * why. */
static char *
s_bus_endpoint (bctx_cli_t *c, int *code)
{
    json_t *req = json_pack ("{s:s}", "op", "contexts");
    json_t *reply = bctx_cli_call (c, req, code);
    json_decref (req);
    if (!reply)
        return NULL;
    const char *publish = json_string_value (json_object_get (reply, "publish"));
    if (!publish) {
        fprintf (stderr, "bctx events: --follow reads the host's bus, and this host publishes "
                 "none (host.publish is not set): set host.publish in its config, or give "
                 "--bus ENDPOINT\n");
        json_decref (reply);
        *code = BCTX_CLI_ERROR;
        return NULL;
    }
    char *bus = NULL;
    const char *wild = strstr (publish, "://*:") ? "*" : strstr (publish, "://0.0.0.0:")
                       ? "0.0.0.0" : NULL;
    const char *api_host = strstr (c->endpoint, "://");
    const char *api_port = api_host ? strrchr (api_host, ':') : NULL;
    if (wild && api_port && api_port > api_host + 3) {
        const char *port = strrchr (publish, ':');
        if (asprintf (&bus, "tcp://%.*s%s", (int) (api_port - api_host - 3), api_host + 3,
                      port) < 0)
            bus = NULL;
    }
    if (!bus)
        bus = strdup (publish);
    json_decref (reply);
    return bus;
}

/* A SUB socket on bus for the events of context.  Return it, or NULL
 * after printing why. */
static void *
s_subscribe (bctx_cli_t *c, const char *bus, const char *context)
{
    void *sub = zmq_socket (c->zctx, ZMQ_SUB);
    int linger = 0;
    zmq_setsockopt (sub, ZMQ_LINGER, &linger, sizeof linger);
    char topic[300];
    snprintf (topic, sizeof topic, "%s.", context);
    zmq_setsockopt (sub, ZMQ_SUBSCRIBE, topic, strlen (topic));
    if (c->server_key
        && (zmq_setsockopt (sub, ZMQ_CURVE_SERVERKEY, c->server_key, 40) != 0
            || zmq_setsockopt (sub, ZMQ_CURVE_PUBLICKEY, c->public_key, 40) != 0
            || zmq_setsockopt (sub, ZMQ_CURVE_SECRETKEY, c->secret_key, 40) != 0)) {
        fprintf (stderr, "bctx events: a key is not a valid Z85 CURVE key\n");
        zmq_close (sub);
        return NULL;
    }
    if (zmq_connect (sub, bus) != 0) {
        fprintf (stderr, "bctx events: bad bus endpoint \"%s\": %s; expected tcp://HOST:PORT\n",
                 bus, zmq_strerror (zmq_errno ()));
        zmq_close (sub);
        return NULL;
    }
    return sub;
}

/* One event from the bus (new), or NULL. */
static json_t *
s_bus_event (void *sub)
{
    zmq_msg_t topic, body;
    zmq_msg_init (&topic);
    zmq_msg_init (&body);
    json_t *event = NULL;
    int more = 0;
    size_t size = sizeof more;
    if (zmq_msg_recv (&topic, sub, ZMQ_DONTWAIT) >= 0
        && zmq_getsockopt (sub, ZMQ_RCVMORE, &more, &size) == 0 && more
        && zmq_msg_recv (&body, sub, ZMQ_DONTWAIT) >= 0)
        event = json_loadb (zmq_msg_data (&body), zmq_msg_size (&body), 0, NULL);
    /* Drop what else the message has. */
    while (zmq_getsockopt (sub, ZMQ_RCVMORE, &more, &size) == 0 && more
           && zmq_msg_recv (&body, sub, ZMQ_DONTWAIT) >= 0)
        ;
    zmq_msg_close (&topic);
    zmq_msg_close (&body);
    return event;
}

/* What a follow has printed and read so far. */
typedef struct {
    const char *context;          /* whose log (borrowed) */
    const char *aggregate;        /* only this aggregate's events, or NULL */
    long long limit;              /* most events to print, < 0: no end */
    long long printed;            /* events printed */
    long long seen;               /* the log's position read up to */
} s_follow_t;

/* Reads the log from f->seen + 1 on, printing as it goes.  Return the
 * exit code. */
static int
s_catch_up (bctx_cli_t *c, s_follow_t *f, long long at_least)
{
    long long last;
    int code = bctx_cli_events_of (c, f->context, f->aggregate, f->seen + 1, f->limit,
                                   &f->printed, &last);
    if (last > f->seen)
        f->seen = last;
    /* Read after `at_least` was committed: the log holds it, filtered out
     * or not. */
    if (code == BCTX_CLI_DONE && at_least > f->seen
        && (f->limit < 0 || f->printed < f->limit))
        f->seen = at_least;
    fflush (stdout);
    return code;
}

/* One event from the bus: printed when it is the next one, the log read
 * up to it when some came before it unseen.  Return the exit code. */
static int
s_on_bus (bctx_cli_t *c, s_follow_t *f, json_t *event)
{
    long long p = (long long) json_integer_value (json_object_get (event, "position"));
    if (p <= f->seen)
        return BCTX_CLI_DONE;     /* printed from the log already */
    if (p > f->seen + 1)
        return s_catch_up (c, f, p);
    f->seen = p;
    const char *agg = json_string_value (json_object_get (event, "aggregate"));
    if (f->aggregate && (!agg || strcmp (agg, f->aggregate) != 0))
        return BCTX_CLI_DONE;
    bctx_cli_show_event (c, event);
    fflush (stdout);
    f->printed++;
    return BCTX_CLI_DONE;
}

int
bctx_cli_follow (bctx_cli_t *c, const char *context, const char *aggregate,
                 long long from, long long limit, const char *bus)
{
    int code = BCTX_CLI_DONE;
    char *endpoint = bus && *bus ? strdup (bus) : s_bus_endpoint (c, &code);
    if (!endpoint)
        return code;
    /* Subscribed first, so the bus has the events committed while the log
     * is read; what the subscription missed, a gap or the quiet re-read
     * finds in the log. */
    void *sub = s_subscribe (c, endpoint, context);
    free (endpoint);
    if (!sub)
        return BCTX_CLI_USAGE;
    int sig = s_signals ();
    s_follow_t f = { .context = context, .aggregate = aggregate, .limit = limit,
                     .seen = from - 1 };
    code = s_catch_up (c, &f, 0);
    while (code == BCTX_CLI_DONE && (limit < 0 || f.printed < limit)) {
        zmq_pollitem_t items[2] = { { sub, 0, ZMQ_POLLIN, 0 }, { NULL, sig, ZMQ_POLLIN, 0 } };
        int n = zmq_poll (items, sig >= 0 ? 2 : 1, S_RECHECK_MS);
        if (n < 0 || (sig >= 0 && (items[1].revents & ZMQ_POLLIN)))
            break;
        if (n == 0) {
            code = s_catch_up (c, &f, 0);
            continue;
        }
        json_t *event = s_bus_event (sub);
        if (event)
            code = s_on_bus (c, &f, event);
        json_decref (event);
    }
    if (sig >= 0)
        close (sig);
    zmq_close (sub);
    return code;
}

/* stats (new), or NULL with *code. */
static json_t *
s_stats (bctx_cli_t *c, int *code)
{
    return bctx_cli_call_ok (c, "stats", json_pack ("{s:s}", "op", "stats"), code);
}

long long
bctx_cli_rebuilds (bctx_cli_t *c, const char *name, int *code)
{
    json_t *stats = s_stats (c, code);
    if (!stats)
        return -1;
    json_t *p = json_object_get (json_object_get (stats, "projections"), name);
    long long n = (long long) json_integer_value (json_object_get (p, "rebuilds"));
    json_decref (stats);
    return n;
}

/* The sum of a runner's lag by context. */
static long long
s_lag (const json_t *p)
{
    long long sum = 0;
    const char *k;
    json_t *v;
    json_object_foreach (json_object_get (p, "lag"), k, v)
        sum += json_integer_value (v);
    return sum;
}

int
bctx_cli_replay_wait (bctx_cli_t *c, const char *name, long long before)
{
    int sig = s_signals (), code = BCTX_CLI_DONE, rebuilding = 0, bar = 0;
    while (!s_stopped (sig, S_POLL_MS)) {
        json_t *stats = s_stats (c, &code);
        if (!stats)
            break;
        json_t *p = json_object_get (json_object_get (stats, "projections"), name);
        const char *state = json_string_value (json_object_get (p, "state"));
        long long rebuilds = (long long) json_integer_value (json_object_get (p, "rebuilds"));
        json_t *rebuild = json_object_get (p, "rebuild");
        rebuilding |= state && strcmp (state, "rebuilding") == 0;
        if (c->terminal && json_is_object (rebuild)) {
            bctx_cli_show_progress (name, json_number_value (json_object_get (rebuild, "read")),
                                    json_number_value (json_object_get (rebuild, "of")));
            bar = 1;
        }
        int done = state && strcmp (state, "live") == 0 && s_lag (p) == 0
                   && (rebuilds > before || rebuilding);
        if (done || (state && strcmp (state, "failing") == 0)) {
            if (bar)
                fprintf (stderr, "\n");
            json_t *out = json_pack ("{s:b, s:s, s:O}", "ok", done, "projection", name,
                                     "stats", p);
            if (!done)
                json_object_set_new (out, "error", json_pack ("{s:s, s:O}", "code", "internal",
                                     "message", json_object_get (p, "error")));
            code = bctx_cli_show (c, "replay", out);
            json_decref (out);
            json_decref (stats);
            break;
        }
        json_decref (stats);
    }
    if (sig >= 0)
        close (sig);
    return code;
}

int
bctx_cli_watch (bctx_cli_t *c, double seconds, long long count)
{
    int sig = s_signals (), code = BCTX_CLI_DONE;
    for (long long i = 0; count < 0 || i < count; i++) {
        if (i && s_stopped (sig, (int) (seconds * 1000)))
            break;
        json_t *stats = s_stats (c, &code);
        if (!stats)
            break;
        if (c->terminal)
            printf ("\033[H\033[2J");     /* home, clear: redrawn in place */
        code = bctx_cli_show (c, "stats", stats);
        json_decref (stats);
    }
    if (sig >= 0)
        close (sig);
    return code;
}
