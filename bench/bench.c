/*
 * bctx-bench - a load generator for a running host.  N client threads, each
 * with its own REQ socket, send Deposits spread over the accounts, one at a
 * time, each waiting for its durable reply.  Bounded in count and time.
 *
 *   bctx-bench [-e ENDPOINT] [--clients N] [--accounts N] [--seconds S]
 *              [--max N] [--setup] [--ack-log FILE] [--prefix P] [--timeout MS]
 *
 * --timeout MS bounds the wait for one reply (default 10000); a client
 * whose reply does not come stops.
 * --probe PROJECTION also measures, every 20 ms, how long after a Deposit
 * is acknowledged the projection has handled it (lag_p50_us, lag_p99_us).
 * --transfers N requests N transfers (amount 1 between random accounts)
 * and waits until the transfer-process reactor has handled them all.
 * --reloads N --reload-plugins A.so,B.so --admin ENDPOINT reloads the
 * accounts context N times through the host's admin endpoint while the
 * clients run, alternating A and B, and reports the
 * longest command in flight at each switch or sent within 10 ms after it
 * (pause p50/p99/max), beside the same measure between reloads (calm).
 * --setup opens the accounts first (acc-0 … acc-N-1, idempotent ids).
 * --ack-log writes "id amount account" for every acknowledged Deposit, so a
 * test can check that nothing acknowledged was lost.  Prints one JSON
 * object: commands, errors, timeouts, seconds, per_second, p50_us, p99_us.
 */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <jansson.h>
#include <zmq.h>

typedef struct {
    const char *endpoint;   /* the host's API */
    int clients;            /* concurrent clients */
    int accounts;           /* accounts spread over */
    double seconds;         /* run at most this long */
    long max;               /* at most this many commands per client */
    const char *prefix;     /* command id prefix */
    FILE *ack_log;          /* acknowledged deposits, or NULL */
    pthread_mutex_t lock;   /* guards ack_log */
    void *zctx;             /* shared ZeroMQ context */
    double deadline;        /* monotonic seconds */
} s_opts_t;

typedef struct {
    s_opts_t *o;            /* shared options */
    int index;              /* client number */
    long *lat;              /* latencies in µs */
    double *start;          /* when each was sent (monotonic s) */
    long n;                 /* how many */
    long cap;               /* room */
    long errors;            /* error replies */
    long timeouts;          /* no reply in time: the client stops */
} s_client_t;

static double
s_now (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

static void *
s_new_req (void *zctx, const char *endpoint)
{
    void *req = zmq_socket (zctx, ZMQ_REQ);
    int linger = 0;
    zmq_setsockopt (req, ZMQ_LINGER, &linger, sizeof linger);
    zmq_connect (req, endpoint);
    return req;
}

/* Sends body and waits; returns the reply length, or -1 on timeout. */
static int s_timeout_ms = 10000;

static int
s_call (void *req, const char *body, int len, char *reply, int cap)
{
    if (zmq_send (req, body, (size_t) len, 0) != len)
        return -1;
    zmq_pollitem_t item = { req, 0, ZMQ_POLLIN, 0 };
    if (zmq_poll (&item, 1, s_timeout_ms) != 1)
        return -1;
    int n = zmq_recv (req, reply, (size_t) cap - 1, 0);
    if (n < 0)
        return -1;
    if (n > cap - 1)
        n = cap - 1;
    reply[n] = '\0';
    return n;
}

static void *
s_client (void *arg)
{
    s_client_t *c = arg;
    s_opts_t *o = c->o;
    void *req = s_new_req (o->zctx, o->endpoint);
    unsigned seed = (unsigned) (c->index * 2654435761u) ^ (unsigned) time (NULL);
    char body[512], reply[4096];
    for (long i = 0; i < o->max && s_now () < o->deadline; i++) {
        int account = (int) (rand_r (&seed) % (unsigned) o->accounts);
        int amount = 1 + (int) (rand_r (&seed) % 100);
        char id[96];
        snprintf (id, sizeof id, "%s-%d-%ld", o->prefix, c->index, i);
        int len = snprintf (body, sizeof body,
                            "{\"op\":\"send\",\"context\":\"accounts\",\"command\":\"Deposit\","
                            "\"id\":\"%s\",\"data\":{\"account\":\"acc-%d\",\"amount\":%d}}",
                            id, account, amount);
        double t0 = s_now ();
        int n = s_call (req, body, len, reply, sizeof reply);
        double t1 = s_now ();
        if (n < 0) {
            c->timeouts++;
            break;                 /* REQ is stuck without a reply: stop */
        }
        if (!strstr (reply, "\"ok\":true")) {
            c->errors++;
            continue;
        }
        if (c->n == c->cap) {
            c->cap = c->cap ? c->cap * 2 : 4096;
            c->lat = realloc (c->lat, (size_t) c->cap * sizeof *c->lat);
            c->start = realloc (c->start, (size_t) c->cap * sizeof *c->start);
        }
        c->start[c->n] = t0;
        c->lat[c->n++] = (long) ((t1 - t0) * 1e6);
        if (o->ack_log) {
            pthread_mutex_lock (&o->lock);
            fprintf (o->ack_log, "%s %d acc-%d\n", id, amount, account);
            fflush (o->ack_log);
            pthread_mutex_unlock (&o->lock);
        }
    }
    zmq_close (req);
    return NULL;
}

/* --- live projection lag probe --------------------------------------- */

typedef struct {
    s_opts_t *o;            /* shared options */
    const char *projection; /* whose lag */
    long *lag;              /* ack -> projected, µs */
    long n;                 /* how many */
} s_probe_t;

/* The checkpoint of projection `name` for source "accounts", or -1. */
static long
s_checkpoint (void *req, const char *name)
{
    static const char body[] = "{\"op\":\"stats\"}";
    static char reply[1 << 20];
    int n = s_call (req, body, (int) sizeof body - 1, reply, sizeof reply);
    if (n < 0)
        return -1;
    json_t *s = json_loads (reply, 0, NULL);
    json_t *p = json_object_get (json_object_get (s, "projections"), name);
    long c = p ? (long) json_integer_value (json_object_get (json_object_get (p, "checkpoints"),
                                                             "accounts")) : -1;
    json_decref (s);
    return c;
}

static void *
s_probe (void *arg)
{
    s_probe_t *p = arg;
    s_opts_t *o = p->o;
    void *req = s_new_req (o->zctx, o->endpoint);
    char body[256], reply[4096];
    long cap = 1024;
    p->lag = malloc ((size_t) cap * sizeof *p->lag);
    for (long i = 0; s_now () < o->deadline - 0.2 && i < 100000; i++) {
        int len = snprintf (body, sizeof body,
                            "{\"op\":\"send\",\"context\":\"accounts\",\"command\":\"Deposit\","
                            "\"data\":{\"account\":\"acc-0\",\"amount\":1}}");
        if (s_call (req, body, len, reply, sizeof reply) < 0)
            break;
        double t0 = s_now ();
        const char *at = strstr (reply, "\"position\":");
        if (!at)
            continue;
        long pos = atol (at + 11);
        long seen;
        while ((seen = s_checkpoint (req, p->projection)) >= 0 && seen < pos
               && s_now () - t0 < 5)
            ;
        if (seen < 0)
            break;
        if (p->n == cap)
            p->lag = realloc (p->lag, (size_t) (cap *= 2) * sizeof *p->lag);
        p->lag[p->n++] = (long) ((s_now () - t0) * 1e6);
        struct timespec pause = { 0, 20 * 1000 * 1000 };
        nanosleep (&pause, NULL);
    }
    zmq_close (req);
    return NULL;
}

/* --- transfers ------------------------------------------------------- */

/* How many events the reactor has handled, or -1. */
static long
s_reactor_handled (void *req, const char *name)
{
    static const char body[] = "{\"op\":\"stats\"}";
    static char reply[1 << 20];
    if (s_call (req, body, (int) sizeof body - 1, reply, sizeof reply) < 0)
        return -1;
    json_t *s = json_loads (reply, 0, NULL);
    json_t *r = json_object_get (json_object_get (s, "reactors"), name);
    long h = r ? (long) json_integer_value (json_object_get (r, "handled")) : -1;
    json_decref (s);
    return h;
}

typedef struct {
    s_opts_t *o;            /* shared options */
    int index;              /* client number */
    long count;             /* transfers to request */
    long sent;              /* acknowledged */
} s_transferer_t;

static void *
s_transferer (void *arg)
{
    s_transferer_t *t = arg;
    s_opts_t *o = t->o;
    void *req = s_new_req (o->zctx, o->endpoint);
    unsigned seed = (unsigned) (t->index * 2654435761u) ^ (unsigned) time (NULL);
    char body[512], reply[4096];
    for (long i = 0; i < t->count && s_now () < o->deadline; i++) {
        int from = (int) (rand_r (&seed) % (unsigned) o->accounts);
        int to = (int) ((unsigned) from + 1 + rand_r (&seed) % (unsigned) (o->accounts - 1))
                 % o->accounts;
        int len = snprintf (body, sizeof body,
                            "{\"op\":\"send\",\"context\":\"transfers\",\"command\":\"RequestTransfer\","
                            "\"data\":{\"transfer\":\"%s-%d-%ld\",\"from\":\"acc-%d\",\"to\":\"acc-%d\","
                            "\"amount\":1}}", o->prefix, t->index, i, from, to);
        if (s_call (req, body, len, reply, sizeof reply) < 0)
            break;
        if (strstr (reply, "\"ok\":true"))
            t->sent++;
    }
    zmq_close (req);
    return NULL;
}

/* Requests `total` transfers from the clients, then waits until the
 * reactor has handled them all.  Prints transfers/s end to end. */
static int
s_run_transfers (s_opts_t *o, long total)
{
    void *req = s_new_req (o->zctx, o->endpoint);
    long before = s_reactor_handled (req, "transfer-process");
    if (before < 0) {
        fprintf (stderr, "bctx-bench: no transfer-process reactor on this host\n");
        zmq_close (req);
        return 1;
    }
    s_transferer_t *ts = calloc ((size_t) o->clients, sizeof *ts);
    pthread_t *th = calloc ((size_t) o->clients, sizeof *th);
    double t0 = s_now ();
    o->deadline = t0 + o->seconds;
    for (int i = 0; i < o->clients; i++) {
        ts[i] = (s_transferer_t) { .o = o, .index = i,
                                   .count = total / o->clients + (i < total % o->clients) };
        pthread_create (&th[i], NULL, s_transferer, &ts[i]);
    }
    long sent = 0;
    for (int i = 0; i < o->clients; i++) {
        pthread_join (th[i], NULL);
        sent += ts[i].sent;
    }
    double requested = s_now () - t0;
    long handled = before;
    while (handled - before < sent && s_now () - t0 < o->seconds + 120) {
        struct timespec pause = { 0, 2 * 1000 * 1000 };
        nanosleep (&pause, NULL);
        handled = s_reactor_handled (req, "transfer-process");
    }
    double elapsed = s_now () - t0;
    printf ("{\"clients\":%d,\"transfers\":%ld,\"done\":%ld,\"requested_in\":%.3f,"
            "\"seconds\":%.3f,\"per_second\":%.0f}\n", o->clients, sent, handled - before,
            requested, elapsed, (double) (handled - before) / elapsed);
    free (ts);
    free (th);
    zmq_close (req);
    return 0;
}

static int
s_cmp_long (const void *a, const void *b)
{
    long x = *(const long *) a, y = *(const long *) b;
    return (x > y) - (x < y);
}

static int
s_setup (s_opts_t *o)
{
    void *req = s_new_req (o->zctx, o->endpoint);
    char body[256], reply[4096];
    int failed = 0;
    for (int i = 0; i < o->accounts && !failed; i++) {
        int len = snprintf (body, sizeof body,
                            "{\"op\":\"send\",\"context\":\"accounts\",\"command\":\"OpenAccount\","
                            "\"id\":\"open-acc-%d\",\"data\":{\"account\":\"acc-%d\",\"owner\":\"bench\"}}",
                            i, i);
        if (s_call (req, body, len, reply, sizeof reply) < 0
            || (!strstr (reply, "\"ok\":true") && !strstr (reply, "already open")))
            failed = 1;
    }
    zmq_close (req);
    if (failed)
        fprintf (stderr, "bctx-bench: could not open the accounts: %s\n", reply);
    return failed ? -1 : 0;
}

int
main (int argc, char **argv)
{
    s_opts_t o = {
        .endpoint = getenv ("BCTX_ENDPOINT") ? getenv ("BCTX_ENDPOINT") : "tcp://127.0.0.1:7700",
        .clients = 1, .accounts = 1000, .seconds = 5, .max = 10000000, .prefix = NULL,
    };
    int setup = 0;
    const char *admin = NULL;   /* --admin: where reloads go */
    const char *probe_name = NULL;
    long transfers = 0;
    int reloads = 0;
    const char *reload_plugins = NULL;
    static const struct option longopts[] = {
        { "clients", required_argument, NULL, 'c' },
        { "accounts", required_argument, NULL, 'a' },
        { "seconds", required_argument, NULL, 's' },
        { "max", required_argument, NULL, 'm' },
        { "prefix", required_argument, NULL, 'p' },
        { "ack-log", required_argument, NULL, 'l' },
        { "setup", no_argument, NULL, 'S' },
        { "timeout", required_argument, NULL, 't' },
        { "probe", required_argument, NULL, 'P' },
        { "transfers", required_argument, NULL, 'T' },
        { "reloads", required_argument, NULL, 'R' },
        { "reload-plugins", required_argument, NULL, 'L' },
        { "admin", required_argument, NULL, 'A' },
        { NULL, 0, NULL, 0 }
    };
    int opt;
    while ((opt = getopt_long (argc, argv, "e:", longopts, NULL)) != -1) {
        switch (opt) {
        case 'e': o.endpoint = optarg; break;
        case 'A': admin = optarg; break;
        case 'c': o.clients = atoi (optarg); break;
        case 'a': o.accounts = atoi (optarg); break;
        case 's': o.seconds = atof (optarg); break;
        case 'm': o.max = atol (optarg); break;
        case 'p': o.prefix = optarg; break;
        case 'S': setup = 1; break;
        case 't': s_timeout_ms = atoi (optarg); break;
        case 'P': probe_name = optarg; break;
        case 'T': transfers = atol (optarg); break;
        case 'R': reloads = atoi (optarg); break;
        case 'L': reload_plugins = optarg; break;
        case 'l':
            o.ack_log = fopen (optarg, "a");
            if (!o.ack_log) {
                perror (optarg);
                return 2;
            }
            break;
        default:
            fprintf (stderr, "usage: bctx-bench [-e ENDPOINT] [--clients N] [--accounts N]"
                             " [--seconds S] [--max N] [--setup] [--ack-log FILE] [--prefix P] [--timeout MS]\n");
            return 2;
        }
    }
    if (o.clients < 1 || o.clients > 1024 || o.accounts < 1 || o.seconds <= 0 || o.max < 1) {
        fprintf (stderr, "bctx-bench: bad numbers\n");
        return 2;
    }
    char prefix[64];
    if (!o.prefix) {
        snprintf (prefix, sizeof prefix, "bench-%d-%ld", (int) getpid (), (long) time (NULL));
        o.prefix = prefix;
    }
    pthread_mutex_init (&o.lock, NULL);
    o.zctx = zmq_ctx_new ();
    if (setup && s_setup (&o) < 0)
        return 1;
    if (transfers > 0) {
        int rc = s_run_transfers (&o, transfers);
        zmq_ctx_term (o.zctx);
        return rc;
    }
    s_client_t *cs = calloc ((size_t) o.clients, sizeof *cs);
    pthread_t *ts = calloc ((size_t) o.clients, sizeof *ts);
    double t0 = s_now ();
    o.deadline = t0 + o.seconds;
    for (int i = 0; i < o.clients; i++) {
        cs[i] = (s_client_t) { .o = &o, .index = i };
        pthread_create (&ts[i], NULL, s_client, &cs[i]);
    }
    s_probe_t probe = { .o = &o, .projection = probe_name };
    pthread_t probe_thread;
    if (probe_name)
        pthread_create (&probe_thread, NULL, s_probe, &probe);
    /* Reloads of the accounts context while the clients run, evenly spaced,
     * alternating the plugins given; each window is [sent, answered]. */
    double (*windows)[2] = calloc ((size_t) (reloads > 0 ? reloads : 1), sizeof *windows);
    int reloaded = 0, reload_errors = 0;
    if (reloads > 0 && reload_plugins) {
        char *copy = strdup (reload_plugins);
        char *second = strchr (copy, ',');
        if (second)
            *second++ = '\0';
        void *req = s_new_req (o.zctx, admin ? admin : o.endpoint);
        for (int k = 0; k < reloads; k++) {
            double at = t0 + o.seconds * (k + 1) / (reloads + 1);
            while (s_now () < at) {
                struct timespec pause = { 0, 1000 * 1000 };
                nanosleep (&pause, NULL);
            }
            char body[1200], reply[4096];
            int len = snprintf (body, sizeof body,
                                "{\"op\":\"reload\",\"context\":\"accounts\",\"plugin\":\"%s\"}",
                                (k % 2 == 0 || !second) ? copy : second);
            windows[reloaded][0] = s_now ();
            if (s_call (req, body, len, reply, sizeof reply) < 0)
                break;
            windows[reloaded++][1] = s_now ();
            if (!strstr (reply, "\"ok\":true")) {
                reload_errors++;
                fprintf (stderr, "bctx-bench: reload: %s\n", reply);
            }
        }
        zmq_close (req);
        free (copy);
    }
    long total = 0, errors = 0, timeouts = 0;
    for (int i = 0; i < o.clients; i++) {
        pthread_join (ts[i], NULL);
        total += cs[i].n;
        errors += cs[i].errors;
        timeouts += cs[i].timeouts;
    }
    double elapsed = s_now () - t0;
    char reload_text[300] = "";
    if (reloaded > 0) {
        /* The pause a client saw: the longest command in flight when the
         * switch happened (just before the reload's answer) or sent in the
         * 10 ms after it, when the new version's cache is coldest.  Then
         * the same measure half an interval later, where no reload ran:
         * the load's own tail, to compare with. */
        double shift = o.seconds / (reloads + 1) / 2;
        long *worst = calloc ((size_t) reloaded, sizeof *worst);
        long *calm = calloc ((size_t) reloaded, sizeof *calm);
        for (int k = 0; k < reloaded; k++)
            for (int i = 0; i < o.clients; i++)
                for (long j = 0; j < cs[i].n; j++) {
                    double st = cs[i].start[j], en = st + (double) cs[i].lat[j] / 1e6;
                    double at = windows[k][1], calm_at = windows[k][1] + shift;
                    if (st <= at + 0.010 && en >= at - 0.001 && cs[i].lat[j] > worst[k])
                        worst[k] = cs[i].lat[j];
                    if (st <= calm_at + 0.010 && en >= calm_at - 0.001 && cs[i].lat[j] > calm[k])
                        calm[k] = cs[i].lat[j];
                }
        qsort (worst, (size_t) reloaded, sizeof *worst, s_cmp_long);
        qsort (calm, (size_t) reloaded, sizeof *calm, s_cmp_long);
        snprintf (reload_text, sizeof reload_text,
                  ",\"reloads\":%d,\"reload_errors\":%d,\"pause_p50_us\":%ld,"
                  "\"pause_p99_us\":%ld,\"pause_max_us\":%ld,\"calm_p50_us\":%ld,"
                  "\"calm_max_us\":%ld", reloaded, reload_errors,
                  worst[reloaded / 2], worst[(int) ((double) reloaded * 0.99)],
                  worst[reloaded - 1], calm[reloaded / 2], calm[reloaded - 1]);
        free (worst);
        free (calm);
    }
    free (windows);
    char probe_text[160] = "";
    if (probe_name) {
        pthread_join (probe_thread, NULL);
        qsort (probe.lag, (size_t) probe.n, sizeof *probe.lag, s_cmp_long);
        snprintf (probe_text, sizeof probe_text,
                  ",\"probe\":\"%s\",\"probes\":%ld,\"lag_p50_us\":%ld,\"lag_p99_us\":%ld",
                  probe_name, probe.n, probe.n ? probe.lag[probe.n / 2] : 0,
                  probe.n ? probe.lag[(long) ((double) probe.n * 0.99)] : 0);
        free (probe.lag);
    }
    long *all = malloc ((size_t) (total ? total : 1) * sizeof *all);
    long k = 0;
    for (int i = 0; i < o.clients; i++) {
        memcpy (all + k, cs[i].lat, (size_t) cs[i].n * sizeof *all);
        k += cs[i].n;
        free (cs[i].lat);
        free (cs[i].start);
    }
    qsort (all, (size_t) total, sizeof *all, s_cmp_long);
    long p50 = total ? all[total / 2] : 0;
    long p99 = total ? all[(long) ((double) total * 0.99)] : 0;
    printf ("{\"clients\":%d,\"commands\":%ld,\"errors\":%ld,\"timeouts\":%ld,"
            "\"seconds\":%.3f,\"per_second\":%.0f,\"p50_us\":%ld,\"p99_us\":%ld%s%s}\n",
            o.clients, total, errors, timeouts, elapsed, (double) total / elapsed, p50, p99,
            probe_text, reload_text);
    free (all);
    free (cs);
    free (ts);
    if (o.ack_log)
        fclose (o.ack_log);
    zmq_ctx_term (o.zctx);
    return 0;
}
