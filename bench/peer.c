/*
 * peer - the driver of the durable-append workload (see peer.h): the
 * clients' threads, the bounds of a run, the latencies and the checks
 * after it.  Knows no peer: each client program gives it a peer_ops_t.
 */
#include "peer.h"

#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define S_MAX_CLIENTS 256

typedef struct {
    const peer_ops_t *ops;  /* the peer */
    const char *target;     /* where it listens */
    int clients;            /* concurrent clients */
    double seconds;         /* a run lasts at most this long */
    long max;               /* and appends at most this many events in all */
    double deadline;        /* monotonic seconds; set before the start */
    pthread_barrier_t start;    /* every client connected, then go */
} s_run_t;

typedef struct {
    s_run_t *run;           /* shared settings */
    int index;              /* client number k: owns streams s % C == k */
    void *conn;             /* its connection, or NULL */
    long quota;             /* at most this many events */
    long *lat;              /* latency of each acknowledged event, µs */
    long acked;             /* how many were acknowledged */
    long last[PEER_STREAMS];    /* last version acknowledged, per stream */
    int failed;             /* an append failed: the client stopped */
    char err[512];          /* why */
} s_client_t;

/* Monotonic time in seconds. */
static double
s_now (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

/* Writes into buf (PEER_PAYLOAD + 1 bytes) the JSON of event `n` of
 * `stream`: exactly PEER_PAYLOAD bytes, padded with a note. */
static void
s_payload (char *buf, int stream, long n)
{
    int len = snprintf (buf, PEER_PAYLOAD + 1,
                        "{\"account\":\"acct-%d\",\"amount\":%ld,\"note\":\"", stream,
                        1 + n % 100);
    while (len < PEER_PAYLOAD - 2)
        buf[len++] = 'x';
    buf[len++] = '"';
    buf[len++] = '}';
    buf[len] = '\0';
}

/* One client: appends to its streams round robin, each at last + 1,
 * until its quota or the deadline. */
static void *
s_client (void *arg)
{
    s_client_t *c = arg;
    s_run_t *run = c->run;
    pthread_barrier_wait (&run->start);     /* connected */
    pthread_barrier_wait (&run->start);     /* the deadline is set: go */
    if (!c->conn)
        return NULL;
    char payload[PEER_PAYLOAD + 1];
    int stream = c->index;
    for (long i = 0; i < c->quota; i++) {
        double t0 = s_now ();
        if (t0 >= run->deadline)
            break;
        s_payload (payload, stream, i);
        int rc = run->ops->append (c->conn, stream, c->last[stream] + 1, payload, c->err,
                                   sizeof c->err);
        if (rc != 0) {
            if (rc == PEER_CONFLICT)
                snprintf (c->err, sizeof c->err, "acct-%d: version %ld refused, though this "
                          "client owns the stream", stream, c->last[stream] + 1);
            c->failed = 1;
            break;
        }
        c->lat[c->acked++] = (long) ((s_now () - t0) * 1e6);
        c->last[stream]++;
        stream += run->clients;
        if (stream >= PEER_STREAMS)
            stream = c->index;
    }
    return NULL;
}

/* Orders latencies for qsort. */
static int
s_cmp_long (const void *a, const void *b)
{
    long x = *(const long *) a, y = *(const long *) b;
    return (x > y) - (x < y);
}

/* After the run: the count stored must equal `acked`, and an append to
 * stream 0 at its last version (`last`, from 1) must be refused.  Sets
 * *stored and *stale_rejected; return 0 when both hold, else -1 with a
 * message on stderr. */
static int
s_check (s_run_t *run, long acked, long last, long *stored, int *stale_rejected)
{
    const peer_ops_t *ops = run->ops;
    char err[512] = "";
    void *conn = ops->open (run->target, err, sizeof err);
    if (!conn) {
        fprintf (stderr, "%s: cannot connect to %s to check the run: %s\n", ops->name,
                 run->target, err);
        return -1;
    }
    int rc = 0;
    *stored = ops->count (conn, err, sizeof err);
    if (*stored != acked) {
        fprintf (stderr, "%s: %ld events acknowledged but %ld stored%s%s: an acknowledged "
                 "event is missing or one was stored twice\n", ops->name, acked, *stored,
                 *stored < 0 ? ", " : "", *stored < 0 ? err : "");
        rc = -1;
    }
    char payload[PEER_PAYLOAD + 1];
    s_payload (payload, 0, 0);
    int arc = last < 1 ? -1 : ops->append (conn, 0, last, payload, err, sizeof err);
    *stale_rejected = arc == PEER_CONFLICT;
    if (last < 1)
        fprintf (stderr, "%s: stream acct-0 has no event: no stale version to try\n",
                 ops->name);
    else if (arc == 0)
        fprintf (stderr, "%s: an append to acct-0 at its last version %ld (stale) was "
                 "accepted: the peer does not check versions\n", ops->name, last);
    else if (arc != PEER_CONFLICT)
        fprintf (stderr, "%s: the stale append to acct-0 failed for another reason: %s\n",
                 ops->name, err);
    long after = ops->count (conn, err, sizeof err);
    if (arc != 0 && after != *stored) {
        fprintf (stderr, "%s: %ld events stored after the refused append, %ld before\n",
                 ops->name, after, *stored);
        rc = -1;
    }
    ops->close (conn);
    return *stale_rejected ? rc : -1;
}

int
peer_main (int argc, char **argv, const peer_ops_t *ops)
{
    s_run_t run = { .ops = ops, .clients = 1, .seconds = 5, .max = 1000000 };
    static const struct option longopts[] = {
        { "target", required_argument, NULL, 't' },
        { "clients", required_argument, NULL, 'c' },
        { "seconds", required_argument, NULL, 's' },
        { "max", required_argument, NULL, 'm' },
        { NULL, 0, NULL, 0 }
    };
    int opt;
    while ((opt = getopt_long (argc, argv, "", longopts, NULL)) != -1) {
        switch (opt) {
        case 't': run.target = optarg; break;
        case 'c': run.clients = atoi (optarg); break;
        case 's': run.seconds = atof (optarg); break;
        case 'm': run.max = atol (optarg); break;
        default:
            fprintf (stderr, "usage: %s --target TARGET [--clients N] [--seconds S] [--max N]\n",
                     argv[0]);
            return 2;
        }
    }
    if (!run.target || run.clients < 1 || run.clients > S_MAX_CLIENTS || run.seconds <= 0
        || run.seconds > 600 || run.max < run.clients) {
        fprintf (stderr, "%s: need --target, --clients 1 to %d, --seconds above 0 and at most "
                 "600, --max at least the clients\n", argv[0], S_MAX_CLIENTS);
        return 2;
    }
    char err[512] = "";
    void *conn = ops->open (run.target, err, sizeof err);
    if (!conn || ops->reset (conn, err, sizeof err) != 0) {
        fprintf (stderr, "%s: cannot prepare the store at %s: %s\n", ops->name, run.target, err);
        if (conn)
            ops->close (conn);
        return 1;
    }
    ops->close (conn);

    s_client_t *cs = calloc ((size_t) run.clients, sizeof *cs);
    pthread_t *ts = calloc ((size_t) run.clients, sizeof *ts);
    if (!cs || !ts) {
        fprintf (stderr, "%s: out of memory\n", ops->name);
        return 1;
    }
    pthread_barrier_init (&run.start, NULL, (unsigned) run.clients + 1);
    int failed = 0;
    for (int k = 0; k < run.clients; k++) {
        cs[k].run = &run;
        cs[k].index = k;
        cs[k].quota = run.max / run.clients + (k < run.max % run.clients);
        cs[k].lat = malloc ((size_t) cs[k].quota * sizeof *cs[k].lat);
        cs[k].conn = ops->open (run.target, cs[k].err, sizeof cs[k].err);
        if (!cs[k].lat || !cs[k].conn) {
            fprintf (stderr, "%s: client %d cannot start: %s\n", ops->name, k,
                     cs[k].lat ? cs[k].err : "out of memory");
            if (cs[k].conn)
                ops->close (cs[k].conn);
            cs[k].conn = NULL;
            failed = 1;
        }
        pthread_create (&ts[k], NULL, s_client, &cs[k]);
    }
    pthread_barrier_wait (&run.start);
    double t0 = s_now ();
    run.deadline = t0 + run.seconds;
    pthread_barrier_wait (&run.start);
    long acked = 0;
    for (int k = 0; k < run.clients; k++) {
        pthread_join (ts[k], NULL);
        acked += cs[k].acked;
    }
    double elapsed = s_now () - t0;
    long *all = malloc ((size_t) (acked ? acked : 1) * sizeof *all);
    long n = 0, errors = 0;
    for (int k = 0; k < run.clients; k++) {
        if (all)
            memcpy (all + n, cs[k].lat, (size_t) cs[k].acked * sizeof *all);
        n += cs[k].acked;
        if (cs[k].failed) {
            errors++;
            fprintf (stderr, "%s: client %d stopped: %s\n", ops->name, k, cs[k].err);
        }
        if (cs[k].conn)
            ops->close (cs[k].conn);
        free (cs[k].lat);
    }
    long p50 = 0, p99 = 0;
    if (all && acked) {
        qsort (all, (size_t) acked, sizeof *all, s_cmp_long);
        p50 = all[acked / 2];
        p99 = all[(long) ((double) acked * 0.99)];
    }
    long stored = -1;
    int stale_rejected = 0;
    if (s_check (&run, acked, cs[0].last[0], &stored, &stale_rejected) != 0)
        failed = 1;
    printf ("{\"peer\":\"%s\",\"clients\":%d,\"events\":%ld,\"errors\":%ld,\"seconds\":%.3f,"
            "\"per_second\":%.0f,\"p50_us\":%ld,\"p99_us\":%ld,\"stored\":%ld,"
            "\"stale_rejected\":%s}\n", ops->name, run.clients, acked, errors, elapsed,
            (double) acked / elapsed, p50, p99, stored, stale_rejected ? "true" : "false");
    free (all);
    free (cs);
    free (ts);
    pthread_barrier_destroy (&run.start);
    return failed || errors ? 1 : 0;
}
