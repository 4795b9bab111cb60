/*
 * test_bridge - the bank split across two real hosts on loopback: host A
 * owns the accounts, host B owns the transfers, with B's transfer process
 * sending its withdrawals and deposits to A over A's API, and B's balances
 * projection folding A's accounts events, carried to a replica on B by a
 * bridge (a subscription to A's bus plus fetches by position).
 *
 *   1. Commands go in through either host (the other one forwards them);
 *      once everything settles, money is conserved, no transfer moved money
 *      twice, and B's balances agree with a fold of A's log.
 *   2. kill -9 of A in the middle of the transfers, then a restart: clients
 *      of B get "unavailable" meanwhile (never a hang), and it all
 *      converges.  Then B is killed while its bridge catches up on
 *      thousands of events, and restarted: its replica converges too.
 *   3. A peer that is not there, or that is stopped (SIGSTOP), gives
 *      "unavailable": at once, or after host.forward_timeout_ms.
 *   4. A fake peer whose bus publishes junk: each malformed frame is
 *      dropped with a log line, the host keeps serving, and a valid event
 *      still lands in the replica.
 *   5. A peer whose host.max_reply cuts its pages far short of their
 *      limit: the bridge follows each page's "next" and copies it all.
 *
 * The two hosts name each other in their configs, so their ports are fixed
 * before either starts (23000-24999, picked from the pid, checked free).
 */
#include "harness.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sqlite3.h>
#include <unistd.h>
#include <zmq.h>
#include <cmocka.h>

#define N_ACCOUNTS     8
#define NOBODY         (-1)       /* plan index of the unknown account "nobody" */
#define SETTLE_S       60         /* longest wait for the two hosts to settle */
#define BULK_DEPOSITS  12000      /* deposits B's bridge catches up on */
#define FILLED         5000       /* events of a's log in test 5 */
#define SMALL_REPLY    (4096 + 65536) /* test 5: a's host.max_reply, the least for its
                                     max_message of 4096 */

static void *s_zctx;              /* this test's own ZeroMQ context */

/* --- two hosts that know each other --------------------------------- */

/* A pair of hosts: a owns the accounts, b the transfers. */
typedef struct {
    h_host_t a, b;                /* the two hosts (dir, config, log, endpoints, pid) */
    char a_extra[256];            /* extra "host" keys of a, e.g. forward_timeout_ms */
    char b_extra[256];            /* the same for b */
    char fake_api[64];            /* b's peer "a" when it is a fake (test 4): */
    char fake_publish[64];        /* the endpoints the test binds itself */
} s_pair_t;

static s_pair_t s_pair;

/* The fake peer's API: answers "events" with nothing, and rejects
 * commands. */
typedef struct {
    void *router;                 /* bound on the fake api (the thread's) */
    _Atomic int stop;             /* set by the test */
    _Atomic int fetches;          /* "events" requests answered */
    _Atomic int sends;            /* "send" requests answered */
    pthread_t thread;             /* runs s_fake_api */
    int running;                  /* thread was created */
    void *pub;                    /* XPUB bound on the fake publish endpoint */
} s_fake_t;

static s_fake_t s_fake;           /* test 4's fake peer */

/* 1 if nothing listens on 127.0.0.1:port (checked the way ZeroMQ binds). */
static int
s_port_free (int port)
{
    int fd = socket (AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return 0;
    int one = 1;
    setsockopt (fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in addr = { .sin_family = AF_INET, .sin_port = htons ((uint16_t) port) };
    addr.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
    int ok = bind (fd, (struct sockaddr *) &addr, sizeof addr) == 0 && listen (fd, 1) == 0;
    close (fd);
    return ok;
}

/* The first of n free consecutive ports in 23000-24999, starting from a
 * place picked from the pid (and moving on at each call).  Return the
 * port, or -1. */
static int
s_pick_ports (int n)
{
    static int calls;
    int slots = 2000 / 8;
    int start = (int) ((getpid () * 31 + calls++ * 17) % slots);
    for (int k = 0; k < slots; k++) {
        int base = 23000 + ((start + k) % slots) * 8;
        int free_all = 1;
        for (int i = 0; i < n && free_all; i++)
            free_all = s_port_free (base + i);
        if (free_all)
            return base;
    }
    return -1;
}

/* Writes a host's config: name, its own endpoints, one peer, contexts. */
static int
s_write_config (const h_host_t *h, const char *name, const char *extra,
                const char *peer, const char *peer_api, const char *peer_publish,
                const char *contexts)
{
    FILE *f = fopen (h->config, "w");
    if (!f)
        return -1;
    fprintf (f, "{\"host\": {\"http\": false, \"name\": \"%s\", \"api\": \"%s\", \"publish\": \"%s\","
                " \"data\": \"%s/data\"%s%s},\n"
                " \"peers\": [{\"name\": \"%s\", \"api\": \"%s\", \"publish\": \"%s\"}],\n"
                " \"contexts\": %s}\n",
             name, h->endpoint, h->publish, h->dir, extra[0] ? ", " : "", extra,
             peer, peer_api, peer_publish, contexts);
    return fclose (f) == 0 ? 0 : -1;
}

/* Fixes the four ports and writes both configs.  With a fake peer, b's
 * peer "a" gets two more ports that the test binds itself. */
static int
s_pair_configure (s_pair_t *p, int fake)
{
    int base = s_pick_ports (fake ? 6 : 4);
    if (base < 0)
        return -1;
    snprintf (p->a.endpoint, sizeof p->a.endpoint, "tcp://127.0.0.1:%d", base);
    snprintf (p->a.publish, sizeof p->a.publish, "tcp://127.0.0.1:%d", base + 1);
    snprintf (p->b.endpoint, sizeof p->b.endpoint, "tcp://127.0.0.1:%d", base + 2);
    snprintf (p->b.publish, sizeof p->b.publish, "tcp://127.0.0.1:%d", base + 3);
    snprintf (p->fake_api, sizeof p->fake_api, "tcp://127.0.0.1:%d", base + 4);
    snprintf (p->fake_publish, sizeof p->fake_publish, "tcp://127.0.0.1:%d", base + 5);
    char contexts[1024];
    snprintf (contexts, sizeof contexts,
              "[{\"name\": \"accounts\", \"plugin\": \"%s\"}, {\"name\": \"transfers\", "
              "\"peer\": \"b\"}]", h_path ("plugins/accounts/accounts.so"));
    if (s_write_config (&p->a, "bank-a", p->a_extra, "b", p->b.endpoint, p->b.publish,
                        contexts) < 0)
        return -1;
    snprintf (contexts, sizeof contexts,
              "[{\"name\": \"accounts\", \"peer\": \"a\"}, {\"name\": \"transfers\", "
              "\"plugin\": \"%s\"}]", h_path ("plugins/transfers/transfers.so"));
    return s_write_config (&p->b, "bank-b", p->b_extra, "a",
                           fake ? p->fake_api : p->a.endpoint,
                           fake ? p->fake_publish : p->a.publish, contexts);
}

/* Waits (up to 20 s) until the host answers `contexts`.  Return 0, or -1
 * with its log printed. */
static int
s_wait_ready (h_host_t *h)
{
    long long deadline = h_now_us () + 20 * 1000000LL;
    for (int tries = 0; tries < 2000 && h_now_us () < deadline; tries++) {
        int status;
        if (waitpid (h->pid, &status, WNOHANG) == h->pid) {
            h->pid = 0;
            break;
        }
        json_t *r = h_request (h->endpoint, "{\"op\":\"contexts\"}", 17, 200);
        int ok = r && json_is_true (json_object_get (r, "ok"));
        json_decref (r);
        if (ok)
            return 0;
        usleep (10000);
    }
    char *log = h_read_log (h);
    fprintf (stderr, "test_bridge: host %s did not start; its log:\n%s\n", h->config,
             log ? log : "(none)");
    free (log);
    return -1;
}

static int
s_start (h_host_t *h)
{
    h->pid = h_spawn_host (h, NULL);
    return s_wait_ready (h);
}

static int
s_pair_setup (void **state, const char *a_extra, const char *b_extra)
{
    s_pair_t *p = &s_pair;
    memset (p, 0, sizeof *p);
    if (h_init (&p->a) < 0 || h_init (&p->b) < 0)
        return -1;
    snprintf (p->a_extra, sizeof p->a_extra, "%s", a_extra);
    snprintf (p->b_extra, sizeof p->b_extra, "%s", b_extra);
    *state = p;
    return s_pair_configure (p, 0);
}

static int
s_setup (void **state)
{
    /* A short forward timeout, so the test's clients (5 s) see the
     * host's "unavailable" rather than their own timeout. */
    return s_pair_setup (state, "\"forward_timeout_ms\": 1500", "\"forward_timeout_ms\": 1500");
}

static int
s_setup_1s (void **state)
{
    return s_pair_setup (state, "\"forward_timeout_ms\": 1000", "\"forward_timeout_ms\": 1000");
}

static int
s_setup_small_pages (void **state)
{
    char a_extra[160];
    snprintf (a_extra, sizeof a_extra, "\"forward_timeout_ms\": 1500, \"max_message\": 4096, "
              "\"max_reply\": %d", SMALL_REPLY);
    return s_pair_setup (state, a_extra, "\"forward_timeout_ms\": 1500");
}

static int
s_setup_fake (void **state)
{
    s_pair_t *p = &s_pair;
    memset (p, 0, sizeof *p);
    if (h_init (&p->a) < 0 || h_init (&p->b) < 0)
        return -1;
    snprintf (p->b_extra, sizeof p->b_extra, "\"forward_timeout_ms\": 1000");
    *state = p;
    return s_pair_configure (p, 1);
}

/* Stops test 4's fake peer, if it runs. */
static void
s_fake_stop (void)
{
    if (s_fake.running) {
        s_fake.stop = 1;
        pthread_join (s_fake.thread, NULL);
        s_fake.running = 0;
    }
    if (s_fake.router)
        zmq_close (s_fake.router);
    if (s_fake.pub)
        zmq_close (s_fake.pub);
    s_fake.router = s_fake.pub = NULL;
}

static int
s_teardown (void **state)
{
    s_pair_t *p = *state;
    /* A host left stopped by a failed test must run again to exit. */
    if (p->a.pid)
        kill (p->a.pid, SIGCONT);
    if (p->b.pid)
        kill (p->b.pid, SIGCONT);
    /* Both stop cleanly (and, under ASan, without leaks), or the run
     * fails: cmocka would not count a failed teardown. */
    int rb = h_cleanup (&p->b);
    int ra = h_cleanup (&p->a);
    s_fake_stop ();
    if (ra != 0 || rb != 0) {
        fprintf (stderr, "test_bridge: a host exited %d, b exited %d on SIGTERM\n", ra, rb);
        exit (1);
    }
    return 0;
}

/* --- reading hosts -------------------------------------------------- */

/* How many times `what` is in h's log. */
static int
s_count_in_log (const h_host_t *h, const char *what)
{
    char *log = h_read_log (h);
    int n = 0;
    for (const char *at = log; at && (at = strstr (at, what)); at++)
        n++;
    free (log);
    return n;
}

/* A number about h's replica of the accounts, read from its file:
 * max(position) or count(*).  Return it, or -1. */
static long long
s_replica (const h_host_t *h, const char *what)
{
    char path[400];
    snprintf (path, sizeof path, "%s/data/replica-accounts.db", h->dir);
    sqlite3 *db = NULL;
    long long pos = -1;
    sqlite3_stmt *st = NULL;
    char sql[128];
    snprintf (sql, sizeof sql, "SELECT coalesce(%s, 0) FROM events", what);
    if (sqlite3_open_v2 (path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK
        && sqlite3_prepare_v2 (db, sql, -1, &st, NULL) == SQLITE_OK
        && sqlite3_step (st) == SQLITE_ROW)
        pos = sqlite3_column_int64 (st, 0);
    sqlite3_finalize (st);
    sqlite3_close (db);
    return pos;
}

/* --- sending -------------------------------------------------------- */

static void
s_account (char *out, size_t size, int index)
{
    if (index == NOBODY)
        snprintf (out, size, "nobody");
    else
        snprintf (out, size, "acc-%d", index);
}

/*
 * Sends one command with a fixed id to endpoint until it is answered with
 * something else than "unavailable" (a peer not connected yet, or gone for
 * a while), resending the very same request, for at most 30 s.  Safe from
 * any thread.  Return the reply (new) or NULL.
 */
static json_t *
s_send_until_done (const char *endpoint, const char *context, const char *command,
                   const char *id, json_t *data_new)
{
    json_t *req = json_pack ("{s:s, s:s, s:s, s:s, s:o}", "op", "send", "context", context,
                             "command", command, "id", id, "data", data_new);
    char *body = json_dumps (req, JSON_COMPACT);
    json_decref (req);
    json_t *reply = NULL;
    long long deadline = h_now_us () + 30 * 1000000LL;
    for (int tries = 0; tries < 1000 && h_now_us () < deadline; tries++) {
        reply = h_request (endpoint, body, strlen (body), 5000);
        const char *code = h_error_code (reply);
        if (reply && !(code && strcmp (code, "unavailable") == 0))
            break;
        json_decref (reply);
        reply = NULL;
        usleep (100000);
    }
    free (body);
    return reply;
}

/* As s_send_until_done, and the answer must be ok. */
static void
s_send_ok (const char *endpoint, const char *context, const char *command, const char *id,
           json_t *data_new)
{
    json_t *r = s_send_until_done (endpoint, context, command, id, data_new);
    if (!json_is_true (json_object_get (r, "ok"))) {
        char *text = r ? json_dumps (r, JSON_COMPACT) : NULL;
        fail_msg ("%s %s (id %s) at %s: %s", context, command, id, endpoint,
                  text ? text : "no answer");
    }
    json_decref (r);
}

/* Opens the accounts with fixed ids, half through each host (B forwards
 * to A), and funds them.  Return the money deposited. */
static json_int_t
s_open_accounts (s_pair_t *p)
{
    json_int_t deposited = 0;
    for (int i = 0; i < N_ACCOUNTS; i++) {
        const char *ep = i % 2 ? p->b.endpoint : p->a.endpoint;
        char account[32], id[48];
        s_account (account, sizeof account, i);
        snprintf (id, sizeof id, "open-%s", account);
        s_send_ok (ep, "accounts", "OpenAccount", id,
                   json_pack ("{s:s, s:s}", "account", account, "owner", "Ada"));
        json_int_t amount = 1000 + 250 * i;
        snprintf (id, sizeof id, "fund-%s", account);
        /* Funded through the other host. */
        s_send_ok (i % 2 ? p->a.endpoint : p->b.endpoint, "accounts", "Deposit", id,
                   json_pack ("{s:s, s:I}", "account", account, "amount", amount));
        deposited += amount;
    }
    return deposited;
}

/* The k-th planned transfer: the same on every run, with every kind of
 * outcome (completed, short of funds, refused, refunded). */
static void
s_plan (int k, char *from, char *to, size_t size, json_int_t *amount)
{
    unsigned seed = 7919u * (unsigned) k + 17u;
    int f = rand_r (&seed) % N_ACCOUNTS, t;
    do
        t = rand_r (&seed) % N_ACCOUNTS;
    while (t == f);
    *amount = 1 + rand_r (&seed) % 600;
    if (k % 10 == 3)
        *amount = 1000000;            /* more than any balance */
    if (k % 13 == 5)
        t = NOBODY;                   /* withdrawn, then refunded */
    else if (k % 17 == 7)
        f = NOBODY;                   /* the withdrawal is refused */
    s_account (from, size, f);
    s_account (to, size, t);
}

/* Requests transfer k through endpoint, until answered ok. */
static void
s_request_transfer (const char *endpoint, int k)
{
    char id[32], from[32], to[32];
    json_int_t amount;
    snprintf (id, sizeof id, "t-%d", k);
    s_plan (k, from, to, sizeof from, &amount);
    s_send_ok (endpoint, "transfers", "RequestTransfer", id,
               json_pack ("{s:s, s:s, s:s, s:I}", "transfer", id, "from", from, "to", to,
                          "amount", amount));
}

/*
 * Sends n Deposits of `amount` to the accounts through endpoint, ids
 * prefix-0 … prefix-(n-1), pipelined on one DEALER (at most 256 in
 * flight), and waits for every answer (60 s at most).  Return how many
 * were answered ok.
 */
static int
s_deposit_many (const char *endpoint, const char *prefix, int n, json_int_t amount)
{
    void *d = zmq_socket (s_zctx, ZMQ_DEALER);
    int linger = 0;
    zmq_setsockopt (d, ZMQ_LINGER, &linger, sizeof linger);
    zmq_connect (d, endpoint);
    int sent = 0, answered = 0, ok = 0;
    long long deadline = h_now_us () + 60 * 1000000LL;
    while (answered < n && h_now_us () < deadline) {
        while (sent < n && sent - answered < 256) {
            char body[256], account[32];
            s_account (account, sizeof account, sent % N_ACCOUNTS);
            int len = snprintf (body, sizeof body,
                                "{\"op\":\"send\",\"context\":\"accounts\",\"command\":"
                                "\"Deposit\",\"id\":\"%s-%d\",\"data\":{\"account\":\"%s\","
                                "\"amount\":%lld}}", prefix, sent, account, (long long) amount);
            if (zmq_send (d, "", 0, ZMQ_SNDMORE) < 0 || zmq_send (d, body, (size_t) len, 0) < 0)
                break;
            sent++;
        }
        zmq_pollitem_t item = { d, 0, ZMQ_POLLIN, 0 };
        if (zmq_poll (&item, 1, 1000) != 1)
            continue;
        zmq_msg_t msg;
        zmq_msg_init (&msg);
        while (zmq_msg_recv (&msg, d, ZMQ_DONTWAIT) >= 0) {
            if (zmq_msg_size (&msg) == 0)
                continue;                 /* the delimiter */
            json_t *r = json_loadb (zmq_msg_data (&msg), zmq_msg_size (&msg), 0, NULL);
            ok += json_is_true (json_object_get (r, "ok"));
            json_decref (r);
            answered++;
        }
        zmq_msg_close (&msg);
    }
    zmq_close (d);
    return ok;
}

/* --- settling and checking ------------------------------------------ */

/* Every transfer of the transfers read models on b has ended.  Return
 * 1/0; *count gets how many there are. */
static int
s_all_finished (const h_host_t *b, size_t *count)
{
    json_t *all = h_query_all (b, "transfers", 50);
    int finished = 1;
    const char *key;
    json_t *v;
    json_object_foreach (all, key, v) {
        const char *state = h_str (v, "state");
        if (!state || (strcmp (state, "completed") != 0 && strcmp (state, "failed") != 0))
            finished = 0;
    }
    *count = json_object_size (all);
    json_decref (all);
    return finished;
}

/* Waits (SETTLE_S at most) until b's transfer process and projections
 * have read everything, every one of the n_transfers has ended, and b's
 * replica holds all of a's accounts log. */
static void
s_wait_settled (const s_pair_t *p, size_t n_transfers)
{
    long long deadline = h_now_us () + SETTLE_S * 1000000LL;
    for (int rounds = 0;; rounds++) {
        json_t *sa = h_stats (&p->a), *sb = h_stats (&p->b);
        assert_non_null (sa);
        assert_non_null (sb);
        json_int_t parked = h_int_at (sb, "reactors.transfer-process.parked");
        if (parked != 0) {
            char *text = json_dumps (h_at (sb, "reactors"), JSON_COMPACT);
            fail_msg ("b's transfer process parked events: %s", text);
        }
        json_int_t head = h_int_at (sa, "contexts.accounts.position");
        size_t count = 0;
        int settled =
            h_at (sb, "reactors.transfer-process.lag.transfers")
            && h_int_at (sb, "reactors.transfer-process.lag.transfers") == 0
            && h_int_at (sb, "projections.transfers.lag.transfers") == 0
            && h_int_at (sb, "bridges.accounts.lag") == 0
            && h_int_at (sb, "bridges.accounts.checkpoint") == head
            && h_int_at (sb, "projections.balances.lag.accounts") == 0
            && h_int_at (sb, "projections.balances.checkpoints.accounts") == head
            && s_all_finished (&p->b, &count) && count == n_transfers;
        /* The process may still be sending to a when its lag is 0 (the
         * lag moves after the event is handled): a's head must hold
         * still across two looks. */
        if (settled) {
            usleep (100000);
            json_t *again = h_stats (&p->a);
            settled = h_int_at (again, "contexts.accounts.position") == head;
            json_decref (again);
        }
        if (settled) {
            json_decref (sa);
            json_decref (sb);
            return;
        }
        if (h_now_us () > deadline || rounds > SETTLE_S * 10) {
            char *ta = json_dumps (sa, JSON_COMPACT), *tb = json_dumps (sb, JSON_COMPACT);
            fail_msg ("the hosts did not settle within %d s (%zu transfers of %zu seen)\n"
                      "a: %s\nb: %s", SETTLE_S, count, n_transfers, ta, tb);
        }
        json_decref (sa);
        json_decref (sb);
        usleep (100000);
    }
}

/*
 * The whole bank across the two hosts, once settled:
 *   - a's accounts log: positions without gaps, each command id once, the
 *     balance each event records is the fold's, never below zero;
 *   - b's balances projection: one read model per account of the log, each
 *     equal to the fold, adding up to what was deposited;
 *   - transfers t-0 … t-(n-1): each ended once and moved money at most once
 *     (a completed one: a withdrawal and a deposit; a refunded one: a
 *     withdrawal and its refund; any other failure: nothing), and nothing
 *     else moved money on the process's behalf.
 */
static void
s_check_bank (const s_pair_t *p, json_int_t deposited, int n_transfers)
{
    json_t *accounts = h_events (&p->a, "accounts");
    json_t *transfers = h_events (&p->b, "transfers");
    assert_non_null (accounts);
    assert_non_null (transfers);

    json_t *folded = json_object ();   /* account -> balance */
    json_t *ids = json_object ();
    json_t *caused = json_object ();   /* "transfers:P" -> [event, …] */
    size_t i;
    json_t *e;
    json_array_foreach (accounts, i, e) {
        assert_int_equal (h_int (e, "position"), (json_int_t) i + 1);
        json_t *meta = json_object_get (e, "metadata");
        const char *id = h_str (meta, "command_id");
        assert_non_null (id);
        if (json_object_get (ids, id))
            fail_msg ("command %s acted twice on the accounts", id);
        json_object_set_new (ids, id, json_true ());
        const char *type = h_str (e, "type"), *account = h_str (e, "aggregate");
        json_t *data = json_object_get (e, "data");
        json_int_t balance = h_int (folded, account);
        if (strcmp (type, "AccountOpened") == 0) {
            assert_null (json_object_get (folded, account));
        } else {
            assert_non_null (json_object_get (folded, account));
            if (strcmp (type, "Deposited") == 0)
                balance += h_int (data, "amount");
            else if (strcmp (type, "Withdrawn") == 0)
                balance -= h_int (data, "amount");
            else
                fail_msg ("unexpected event %s in the accounts log", type);
            assert_int_equal (h_int (data, "balance"), balance);
            assert_true (balance >= 0);
        }
        json_object_set_new (folded, account, json_integer (balance));
        if (strncmp (id, "transfer-process:", 17) == 0) {
            const char *cause = h_str (meta, "causation_id");
            assert_non_null (cause);
            json_t *list = json_object_get (caused, cause);
            if (!list)
                json_object_set_new (caused, cause, list = json_array ());
            json_array_append (list, e);
        }
    }

    /* b's balances: the fold, account by account, and the money adds up. */
    json_t *balances = h_query_all (&p->b, "balances", 50);
    assert_int_equal (json_object_size (balances), json_object_size (folded));
    json_int_t sum = 0;
    const char *key;
    json_t *v;
    json_object_foreach (folded, key, v) {
        json_t *m = json_object_get (balances, key);
        if (!m)
            fail_msg ("account %s is in a's log but not in b's balances", key);
        if (h_int (m, "balance") != json_integer_value (v))
            fail_msg ("account %s: b's balances say %lld, a's log folds to %lld", key,
                      (long long) h_int (m, "balance"), (long long) json_integer_value (v));
        sum += h_int (m, "balance");
    }
    assert_int_equal (sum, deposited);

    /* Each transfer: requested once, ended once, moved what it says. */
    json_t *requested = json_object ();   /* transfer -> position */
    json_t *ended = json_object ();       /* transfer -> its last event */
    json_array_foreach (transfers, i, e) {
        const char *type = h_str (e, "type"), *t = h_str (e, "aggregate");
        if (strcmp (type, "TransferRequested") == 0) {
            assert_null (json_object_get (requested, t));
            json_object_set_new (requested, t, json_integer (h_int (e, "position")));
        } else {
            if (json_object_get (ended, t))
                fail_msg ("transfer %s ended twice", t);
            json_object_set (ended, t, e);
        }
    }
    assert_int_equal (json_object_size (requested), (size_t) n_transfers);
    int completed = 0, refunded = 0, failed = 0;
    size_t movements = 0;
    for (int k = 0; k < n_transfers; k++) {
        char t[32], from[32], to[32], cause[64];
        json_int_t amount;
        snprintf (t, sizeof t, "t-%d", k);
        s_plan (k, from, to, sizeof from, &amount);
        json_t *pos = json_object_get (requested, t), *end = json_object_get (ended, t);
        if (!pos || !end)
            fail_msg ("transfer %s: requested %s, ended %s", t, pos ? "yes" : "no",
                      end ? "yes" : "no");
        snprintf (cause, sizeof cause, "transfers:%lld", (long long) json_integer_value (pos));
        json_t *moved = json_object_get (caused, cause);
        size_t n = json_array_size (moved);
        movements += n;
        json_t *first = json_array_get (moved, 0), *second = json_array_get (moved, 1);
        const char *reason = h_str (json_object_get (end, "data"), "reason");
        if (strcmp (h_str (end, "type"), "TransferCompleted") == 0) {
            completed++;
            assert_int_equal (n, 2);
            assert_string_equal (h_str (first, "type"), "Withdrawn");
            assert_string_equal (h_str (first, "aggregate"), from);
            assert_string_equal (h_str (second, "type"), "Deposited");
            assert_string_equal (h_str (second, "aggregate"), to);
        } else if (reason && strstr (reason, "(refunded)")) {
            refunded++;
            assert_string_equal (to, "nobody");
            assert_int_equal (n, 2);
            assert_string_equal (h_str (first, "type"), "Withdrawn");
            assert_string_equal (h_str (second, "type"), "Deposited");
            assert_string_equal (h_str (second, "aggregate"), from);
        } else {
            failed++;
            assert_string_equal (h_str (end, "type"), "TransferFailed");
            assert_int_equal (n, 0);
        }
        for (size_t m = 0; m < n; m++)
            assert_int_equal (h_int (json_object_get (json_array_get (moved, m), "data"),
                                     "amount"), amount);
    }
    size_t all_moved = 0;
    json_object_foreach (caused, key, v)
        all_moved += json_array_size (v);
    assert_int_equal (all_moved, movements);
    assert_true (completed > 0);
    assert_true (refunded > 0);
    assert_true (failed > 0);
    printf ("  %d transfers: %d completed, %d refunded, %d failed; %zu accounts events\n",
            n_transfers, completed, refunded, failed, json_array_size (accounts));

    json_decref (requested);
    json_decref (ended);
    json_decref (balances);
    json_decref (caused);
    json_decref (ids);
    json_decref (folded);
    json_decref (accounts);
    json_decref (transfers);
}

/* --- 1. the bank across two hosts ----------------------------------- */

static void
test_bank_across_two_hosts (void **state)
{
    s_pair_t *p = *state;
    assert_int_equal (s_start (&p->a), 0);
    assert_int_equal (s_start (&p->b), 0);

    json_int_t deposited = s_open_accounts (p);
    /* The CLI, too, reaches a context on the other host. */
    char *out = NULL;
    int code = h_cli (&p->b, &out, "send", "accounts", "Deposit",
                      "{\"account\":\"acc-0\",\"amount\":5}", "--id", "cli-fund", NULL);
    json_t *r = h_json (out);
    free (out);
    assert_int_equal (code, 0);
    assert_true (json_is_true (json_object_get (r, "ok")));
    assert_string_equal (h_str (json_array_get (json_object_get (r, "events"), 0), "type"),
                         "Deposited");
    json_decref (r);
    deposited += 5;
    /* And the owner's errors come back as they are. */
    code = h_cli (&p->b, &out, "send", "accounts", "Withdraw",
                  "{\"account\":\"acc-0\",\"amount\":99999999}", NULL);
    r = h_json (out);
    free (out);
    assert_int_equal (code, 1);
    assert_string_equal (h_error_code (r), "rejected");
    json_decref (r);
    /* a connects to b in its own time: until then, "unavailable". */
    r = s_send_until_done (p->a.endpoint, "transfers", "RequestTransfer", "bad",
                           json_pack ("{s:s, s:s, s:s, s:i}", "transfer", "bad", "from", "acc-1",
                                      "to", "acc-1", "amount", 1));
    assert_string_equal (h_error_code (r), "rejected");
    json_decref (r);

    /* From here on, both are connected: nothing goes unanswered. */
    json_t *sa = h_stats (&p->a), *sb = h_stats (&p->b);
    json_int_t a_unanswered = h_int_at (sa, "peers.b.unanswered");
    json_int_t b_unanswered = h_int_at (sb, "peers.a.unanswered");
    json_decref (sa);
    json_decref (sb);

    /* Transfers through either host: a forwards them to b. */
    enum { N = 60 };
    for (int k = 0; k < N; k++)
        s_request_transfer (k % 2 ? p->a.endpoint : p->b.endpoint, k);
    /* A retry of a forwarded transfer answers its first result. */
    s_request_transfer (p->a.endpoint, 0);

    s_wait_settled (p, N);
    s_check_bank (p, deposited, N);

    /* Both hosts counted what they forwarded. */
    sa = h_stats (&p->a);
    sb = h_stats (&p->b);
    assert_true (h_int_at (sa, "peers.b.forwarded") >= N / 2 + 2);
    assert_int_equal (h_int_at (sa, "peers.b.unanswered"), a_unanswered);
    assert_true (h_int_at (sb, "peers.a.forwarded") >= N_ACCOUNTS + 2);
    assert_int_equal (h_int_at (sb, "peers.a.unanswered"), b_unanswered);
    assert_string_equal (json_string_value (h_at (sb, "bridges.accounts.state")), "live");
    assert_string_equal (json_string_value (h_at (sb, "bridges.accounts.peer")), "a");
    assert_int_equal (h_int_at (sb, "bridges.accounts.dropped"), 0);
    assert_true (h_int_at (sb, "bridges.accounts.fetched") + h_int_at (sb, "bridges.accounts.live")
                 == h_int_at (sb, "bridges.accounts.checkpoint"));
    assert_int_equal (s_replica (&p->b, "count(*)"), h_int_at (sb, "bridges.accounts.checkpoint"));
    /* a bridges nothing: no projection or reactor of a reads transfers. */
    assert_int_equal (json_object_size (json_object_get (sa, "bridges")), 0);
    json_decref (sa);

    /* The bridge is b's supervisor's, not the process of the context that
     * reads it: that process killed, the bridge goes on, its counts whole
     * (one in that process would begin again at 0), and the new process
     * reads the replica it kept. */
    json_int_t carried = h_int_at (sb, "bridges.accounts.checkpoint");
    pid_t reader = (pid_t) h_int_at (sb, "contexts.transfers.process.pid");
    json_decref (sb);
    assert_true (reader > 0);
    assert_int_equal (kill (reader, SIGKILL), 0);
    for (int k = 0; k < 5; k++) {
        char id[32];
        snprintf (id, sizeof id, "after-kill-%d", k);
        s_send_ok (p->a.endpoint, "accounts", "Deposit", id,
                   json_pack ("{s:s, s:i}", "account", "acc-1", "amount", 1));
    }
    sb = NULL;
    long long until = h_deadline (30);
    while (h_now_us () < until) {
        json_decref (sb);
        sb = h_stats (&p->b);
        if (h_int_at (sb, "contexts.transfers.process.restarts") >= 1
            && h_int_at (sb, "contexts.transfers.process.pid") != reader
            && h_int_at (sb, "bridges.accounts.checkpoint") >= carried + 5)
            break;
        usleep (50000);
    }
    assert_true (h_int_at (sb, "contexts.transfers.process.restarts") >= 1);
    assert_true (h_int_at (sb, "bridges.accounts.checkpoint") >= carried + 5);
    assert_int_equal (h_int_at (sb, "bridges.accounts.fetched")
                      + h_int_at (sb, "bridges.accounts.live"),
                      h_int_at (sb, "bridges.accounts.checkpoint"));
    assert_int_equal (s_replica (&p->b, "count(*)"), h_int_at (sb, "bridges.accounts.checkpoint"));
    json_decref (sb);
}

/* --- 2. kill -9 of either host -------------------------------------- */

/* The transfers sent to b while a gets killed (no cmocka assert here: not
 * the test's thread). */
typedef struct {
    const char *endpoint;         /* b's API */
    int first, last;              /* transfers first … last-1 */
    _Atomic int acked;            /* answered ok so far */
    _Atomic int failed;           /* answered otherwise, or not at all */
} s_sender_t;

static void *
s_sender (void *arg)
{
    s_sender_t *s = arg;
    for (int k = s->first; k < s->last; k++) {
        char id[32], from[32], to[32];
        json_int_t amount;
        snprintf (id, sizeof id, "t-%d", k);
        s_plan (k, from, to, sizeof from, &amount);
        json_t *r = s_send_until_done (s->endpoint, "transfers", "RequestTransfer", id,
                                       json_pack ("{s:s, s:s, s:s, s:I}", "transfer", id,
                                                  "from", from, "to", to, "amount", amount));
        if (json_is_true (json_object_get (r, "ok")))
            s->acked++;
        else
            s->failed++;
        json_decref (r);
    }
    return NULL;
}

/* `bctx send accounts Deposit` to "nobody" through b while a is down:
 * exit 1, "unavailable", well before the client's own timeout.  (Should
 * it reach a after all, "nobody" makes it a rejection, moving nothing.) */
static void
s_assert_unavailable_now (const s_pair_t *p, int forward_ms)
{
    long long t0 = h_now_us ();
    char *out = NULL;
    int code = h_cli (&p->b, &out, "--timeout", "10", "send", "accounts", "Deposit",
                      "{\"account\":\"nobody\",\"amount\":1}", NULL);
    long long ms = (h_now_us () - t0) / 1000;
    json_t *r = h_json (out);
    if (code != 1 || !r || !h_error_code (r) || strcmp (h_error_code (r), "unavailable") != 0)
        fail_msg ("a command for a peer that is down: exit %d, %s", code, out ? out : "");
    free (out);
    json_decref (r);
    if (ms >= forward_ms + 2000)
        fail_msg ("\"unavailable\" came after %lld ms", ms);
}

static void
test_kill_9_of_either_host (void **state)
{
    s_pair_t *p = *state;
    assert_int_equal (s_start (&p->a), 0);
    assert_int_equal (s_start (&p->b), 0);
    json_int_t deposited = s_open_accounts (p);

    /* Transfers through b, with a killed while b's process moves money. */
    enum { WAVE1 = 100, WAVE2 = 40 };
    s_sender_t sender = { .endpoint = p->b.endpoint, .first = 0, .last = WAVE1 };
    pthread_t thread;
    assert_int_equal (pthread_create (&thread, NULL, s_sender, &sender), 0);
    long long deadline = h_now_us () + 30 * 1000000LL;
    for (int polls = 0; polls < 3000 && h_now_us () < deadline; polls++) {
        json_t *sb = h_stats (&p->b);
        json_int_t handled = h_int_at (sb, "reactors.transfer-process.handled");
        json_decref (sb);
        if (sender.acked >= WAVE1 / 3 && handled >= 5)
            break;
        usleep (2000);
    }
    json_t *sb = h_stats (&p->b);
    json_int_t behind = h_int_at (sb, "reactors.transfer-process.lag.transfers");
    json_decref (sb);
    assert_int_equal (h_stop (&p->a, SIGKILL), 128 + SIGKILL);

    /* While a is down: b's clients get "unavailable" for the accounts,
     * at once or after the forward timeout, and b still takes
     * transfers. */
    long long down_at = h_now_us ();
    s_assert_unavailable_now (p, 1500);
    usleep (300000);
    s_assert_unavailable_now (p, 1500);
    sb = h_stats (&p->b);
    assert_true (h_int_at (sb, "peers.a.unanswered") >= 2);
    json_decref (sb);
    /* A transfer taken now makes b's reactor send to a, which does not
     * answer: the reactor waits for a (it does not park the event), and
     * its stats say "waiting".  (Sent again through a below: the same id.) */
    s_request_transfer (p->b.endpoint, WAVE1);
    int waiting = 0;
    deadline = h_now_us () + 15 * 1000000LL;
    while (!waiting && h_now_us () < deadline) {
        sb = h_stats (&p->b);
        const char *st = json_string_value (h_at (sb, "reactors.transfer-process.state"));
        waiting = st && strcmp (st, "waiting") == 0;
        json_decref (sb);
        if (!waiting)
            usleep (50000);
    }
    assert_true (waiting);
    while (h_now_us () - down_at < 1500000)
        usleep (50000);

    /* a is back, on the same config, ports and data. */
    assert_int_equal (s_start (&p->a), 0);
    pthread_join (thread, NULL);
    assert_int_equal (sender.acked, WAVE1);
    assert_int_equal (sender.failed, 0);
    /* More transfers, now through a (forwarded to b). */
    for (int k = WAVE1; k < WAVE1 + WAVE2; k++)
        s_request_transfer (p->a.endpoint, k);
    s_wait_settled (p, WAVE1 + WAVE2);
    s_check_bank (p, deposited, WAVE1 + WAVE2);
    sb = h_stats (&p->b);
    printf ("  a killed with b's process %lld events behind; it retried %lld times\n",
            (long long) behind, (long long) h_int_at (sb, "reactors.transfer-process.retries"));
    json_decref (sb);

    /* Now b: stopped cleanly, while a takes thousands of deposits … */
    json_t *before = h_stats (&p->b);
    json_int_t checkpoint = h_int_at (before, "bridges.accounts.checkpoint");
    json_decref (before);
    assert_int_equal (h_stop (&p->b, SIGTERM), 0);
    assert_int_equal (s_deposit_many (p->a.endpoint, "bulk", BULK_DEPOSITS, 3), BULK_DEPOSITS);
    deposited += (json_int_t) BULK_DEPOSITS * 3;
    json_t *sa = h_stats (&p->a);
    json_int_t head = h_int_at (sa, "contexts.accounts.position");
    json_decref (sa);
    assert_true (head >= checkpoint + BULK_DEPOSITS);

    /* … then started, and killed while its bridge fetches what it
     * missed: as soon as it logs that it serves, then later and later. */
    static const int kill_after_ms[] = { 0, 60, 120, 180, 300 };
    int short_of_head = 0;
    for (int round = 0; round < 5; round++) {
        int before_start = s_count_in_log (&p->b, " serving ");
        p->b.pid = h_spawn_host (&p->b, NULL);
        deadline = h_now_us () + 20 * 1000000LL;
        for (int polls = 0; polls < 20000 && h_now_us () < deadline; polls++) {
            if (s_count_in_log (&p->b, " serving ") > before_start)
                break;
            if (waitpid (p->b.pid, NULL, WNOHANG) == p->b.pid)
                fail_msg ("b exited on restart");
            usleep (500);
        }
        assert_true (s_count_in_log (&p->b, " serving ") > before_start);
        usleep ((useconds_t) kill_after_ms[round] * 1000);
        assert_int_equal (h_stop (&p->b, SIGKILL), 128 + SIGKILL);
        long long at = s_replica (&p->b, "max(position)");
        printf ("  b killed %d ms after it served: its replica at %lld of %lld\n",
                kill_after_ms[round], at, (long long) head);
        short_of_head += at < head;
    }
    /* At least once, it was killed with the replica behind. */
    assert_true (short_of_head > 0);

    /* Started again: its replica and balances converge on a's log, each
     * event once. */
    assert_int_equal (s_start (&p->b), 0);
    s_wait_settled (p, WAVE1 + WAVE2);
    s_check_bank (p, deposited, WAVE1 + WAVE2);
    sb = h_stats (&p->b);
    assert_int_equal (h_int_at (sb, "bridges.accounts.checkpoint"), head);
    assert_int_equal (h_int_at (sb, "bridges.accounts.lag"), 0);
    assert_int_equal (h_int_at (sb, "bridges.accounts.dropped"), 0);
    json_decref (sb);
    /* Each position once in the replica, none missing. */
    assert_int_equal (s_replica (&p->b, "max(position)"), head);
    assert_int_equal (s_replica (&p->b, "count(*)"), head);
}

/* --- 3. a peer that is down or stopped ------------------------------ */

static void
test_peer_down_gives_unavailable (void **state)
{
    s_pair_t *p = *state;
    /* b alone: a was never started. */
    assert_int_equal (s_start (&p->b), 0);
    s_assert_unavailable_now (p, 1000);
    /* b still serves its own context and its own read side. */
    char *out = NULL;
    int code = h_cli (&p->b, &out, "send", "transfers", "FailTransfer",
                      "{\"transfer\":\"none\",\"reason\":\"x\"}", NULL);
    json_t *r = h_json (out);
    free (out);
    assert_int_equal (code, 1);
    assert_string_equal (h_error_code (r), "rejected");
    json_decref (r);
    assert_int_equal (h_cli (&p->b, NULL, "contexts", NULL), 0);
    json_t *sb = h_stats (&p->b);
    const char *st = json_string_value (h_at (sb, "bridges.accounts.state"));
    assert_non_null (st);
    if (strcmp (st, "connecting") != 0 && strcmp (st, "down") != 0)
        fail_msg ("bridge of a peer never started: %s", st);
    assert_int_equal (h_int_at (sb, "bridges.accounts.checkpoint"), 0);
    assert_true (h_int_at (sb, "peers.a.unanswered") >= 1);
    json_decref (sb);

    /* a starts: the same command now reaches it (and is rejected
     * there: no account "nobody"). */
    assert_int_equal (s_start (&p->a), 0);
    r = s_send_until_done (p->b.endpoint, "accounts", "Deposit", "probe-1",
                           json_pack ("{s:s, s:i}", "account", "nobody", "amount", 1));
    assert_string_equal (h_error_code (r), "rejected");
    json_decref (r);
    s_send_ok (p->b.endpoint, "accounts", "OpenAccount", "open-s1",
               json_pack ("{s:s, s:s}", "account", "s1", "owner", "Sam"));

    /* a stopped (SIGSTOP): connected but silent.  The forwarded command
     * is answered "unavailable" after forward_timeout_ms (1 s). */
    sb = h_stats (&p->b);
    json_int_t unanswered = h_int_at (sb, "peers.a.unanswered");
    json_decref (sb);
    assert_int_equal (kill (p->a.pid, SIGSTOP), 0);
    long long t0 = h_now_us ();
    r = h_send (p->b.endpoint, "accounts", "Deposit", "stopped-1",
                json_pack ("{s:s, s:i}", "account", "s1", "amount", 7));
    long long ms = (h_now_us () - t0) / 1000;
    assert_non_null (r);
    assert_string_equal (h_error_code (r), "unavailable");
    json_decref (r);
    if (ms < 500 || ms >= 3000)
        fail_msg ("\"unavailable\" from a stopped peer after %lld ms (forward timeout 1000)", ms);
    sb = h_stats (&p->b);
    assert_int_equal (h_int_at (sb, "peers.a.unanswered"), unanswered + 1);
    json_decref (sb);
    assert_int_equal (kill (p->a.pid, SIGCONT), 0);

    /* "unavailable" is not "not done": a may have taken it once it ran
     * again.  A retry with the same id applies it exactly once. */
    s_send_ok (p->b.endpoint, "accounts", "Deposit", "stopped-1",
               json_pack ("{s:s, s:i}", "account", "s1", "amount", 7));
    s_send_ok (p->b.endpoint, "accounts", "Deposit", "stopped-1",
               json_pack ("{s:s, s:i}", "account", "s1", "amount", 7));
    json_t *events = h_events (&p->a, "accounts");
    assert_non_null (events);
    size_t i;
    json_t *e;
    int deposits = 0;
    json_array_foreach (events, i, e)
        deposits += strcmp (h_str (e, "type"), "Deposited") == 0;
    assert_int_equal (deposits, 1);
    json_decref (events);
    /* And b's replica catches up with it. */
    long long deadline = h_now_us () + 20 * 1000000LL;
    json_t *m = NULL;
    for (int polls = 0; polls < 400 && h_now_us () < deadline; polls++) {
        char *q = NULL;
        if (h_cli (&p->b, &q, "query", "balances", "s1", NULL) == 0)
            m = h_json (q);
        free (q);
        if (m && h_int (json_object_get (m, "value"), "balance") == 7)
            break;
        json_decref (m);
        m = NULL;
        usleep (50000);
    }
    assert_non_null (m);
    json_decref (m);
}

/* --- 4. junk from a fake peer --------------------------------------- */

static void *
s_fake_api (void *arg)
{
    s_fake_t *f = arg;
    while (!f->stop) {
        zmq_pollitem_t item = { f->router, 0, ZMQ_POLLIN, 0 };
        if (zmq_poll (&item, 1, 50) != 1)
            continue;
        zmq_msg_t frames[8];
        int n = 0, more = 1;
        while (more && n < 8) {
            zmq_msg_init (&frames[n]);
            if (zmq_msg_recv (&frames[n], f->router, 0) < 0)
                break;
            more = zmq_msg_more (&frames[n]);
            n++;
        }
        if (n >= 2 && !more) {
            json_t *req = json_loadb (zmq_msg_data (&frames[n - 1]),
                                      zmq_msg_size (&frames[n - 1]), 0, NULL);
            const char *op = h_str (req, "op");
            const char *reply;
            if (op && strcmp (op, "events") == 0) {
                reply = "{\"ok\":true,\"events\":[]}";
                f->fetches++;
            } else if (op && strcmp (op, "send") == 0) {
                reply = "{\"ok\":false,\"error\":{\"code\":\"rejected\","
                        "\"message\":\"the fake peer rejects everything\"}}";
                f->sends++;
            } else {
                reply = "{\"ok\":false,\"error\":{\"code\":\"bad_request\",\"message\":\"?\"}}";
            }
            json_decref (req);
            /* The envelope back as it came, then the reply. */
            for (int k = 0; k < n - 1; k++)
                zmq_send (f->router, zmq_msg_data (&frames[k]), zmq_msg_size (&frames[k]),
                          ZMQ_SNDMORE);
            zmq_send (f->router, reply, strlen (reply), 0);
        }
        for (int k = 0; k < n; k++)
            zmq_msg_close (&frames[k]);
        while (more) {              /* more than 8 frames: drop the rest */
            zmq_msg_t rest;
            zmq_msg_init (&rest);
            more = zmq_msg_recv (&rest, f->router, 0) >= 0 && zmq_msg_more (&rest);
            zmq_msg_close (&rest);
        }
    }
    return NULL;
}

static void
s_publish (void *pub, int n, ...)
{
    va_list ap;
    va_start (ap, n);
    for (int k = 0; k < n; k++) {
        const char *frame = va_arg (ap, const char *);
        assert_int_equal (zmq_send (pub, frame, strlen (frame), k < n - 1 ? ZMQ_SNDMORE : 0),
                          (int) strlen (frame));
    }
    va_end (ap);
}

/* Waits (10 s at most) until b's bridge stats reach `want` at path. */
static json_int_t
s_wait_bridge (const h_host_t *b, const char *path, json_int_t want)
{
    json_int_t v = -1;
    long long deadline = h_now_us () + 10 * 1000000LL;
    for (int polls = 0; polls < 500 && h_now_us () < deadline; polls++) {
        json_t *st = h_stats (b);
        v = h_int_at (st, path);
        json_decref (st);
        if (v >= want)
            break;
        usleep (20000);
    }
    return v;
}

static void
test_malformed_frames_from_a_fake_peer (void **state)
{
    s_pair_t *p = *state;
    s_fake_t *fake = &s_fake;
    memset (fake, 0, sizeof *fake);
    fake->router = zmq_socket (s_zctx, ZMQ_ROUTER);
    void *pub = fake->pub = zmq_socket (s_zctx, ZMQ_XPUB);
    int linger = 0;
    zmq_setsockopt (fake->router, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt (pub, ZMQ_LINGER, &linger, sizeof linger);
    assert_int_equal (zmq_bind (fake->router, p->fake_api), 0);
    assert_int_equal (zmq_bind (pub, p->fake_publish), 0);
    assert_int_equal (pthread_create (&fake->thread, NULL, s_fake_api, fake), 0);
    fake->running = 1;

    assert_int_equal (s_start (&p->b), 0);
    /* b's bridge subscribes to "accounts." … */
    int subscribed = 0;
    for (int polls = 0; polls < 100 && !subscribed; polls++) {
        zmq_pollitem_t item = { pub, 0, ZMQ_POLLIN, 0 };
        if (zmq_poll (&item, 1, 100) == 1) {
            char sub[64];
            int n = zmq_recv (pub, sub, sizeof sub, 0);
            subscribed = n == 10 && sub[0] == 1 && memcmp (sub + 1, "accounts.", 9) == 0;
        }
    }
    assert_true (subscribed);
    /* … and goes live after its first fetch. */
    long long deadline = h_now_us () + 10 * 1000000LL;
    char state_now[32] = "";
    for (int polls = 0; polls < 500 && h_now_us () < deadline; polls++) {
        json_t *st = h_stats (&p->b);
        const char *now = json_string_value (h_at (st, "bridges.accounts.state"));
        snprintf (state_now, sizeof state_now, "%s", now ? now : "");
        int live = strcmp (state_now, "live") == 0;
        json_decref (st);
        if (live)
            break;
        usleep (20000);
    }
    assert_string_equal (state_now, "live");
    assert_true (fake->fetches >= 1);
    assert_int_equal (s_wait_bridge (&p->b, "bridges.accounts.checkpoint", 0), 0);

    /* Junk, each kind once. */
    s_publish (pub, 1, "accounts.one-frame");
    s_publish (pub, 2, "accounts.Deposited", "this is not JSON {");
    s_publish (pub, 2, "accounts.Deposited", "{\"type\":\"Deposited\",\"aggregate\":\"x\"}");
    s_publish (pub, 3, "accounts.Deposited", "{\"position\":1}", "{}");
    s_publish (pub, 2, "accounts.Deposited", "[1,2,3]");
    s_publish (pub, 2, "accounts.Deposited", "{\"position\":\"1\"}");
    enum { JUNK = 6 };
    json_int_t dropped = s_wait_bridge (&p->b, "bridges.accounts.dropped", JUNK);
    assert_int_equal (dropped, JUNK);

    /* A valid event, as a host publishes it. */
    static const char opened[] =
        "{\"context\":\"accounts\",\"type\":\"AccountOpened\",\"aggregate\":\"fake-1\","
        "\"version\":1,\"position\":1,\"data\":{\"account\":\"fake-1\",\"owner\":\"Fay\"},"
        "\"metadata\":{\"command_id\":\"fake-open-1\",\"correlation_id\":\"fake-open-1\","
        "\"causation_id\":\"fake-open-1\",\"time\":\"2024-06-01T00:00:00Z\"}}";
    s_publish (pub, 2, "accounts.AccountOpened", opened);
    assert_int_equal (s_wait_bridge (&p->b, "bridges.accounts.checkpoint", 1), 1);
    /* Again (a duplicate), then position 2 without its fields: neither
     * moves the replica. */
    s_publish (pub, 2, "accounts.AccountOpened", opened);
    assert_true (s_wait_bridge (&p->b, "bridges.accounts.duplicates", 1) >= 1);
    s_publish (pub, 2, "accounts.Deposited", "{\"position\":2}");
    assert_int_equal (s_wait_bridge (&p->b, "bridges.accounts.dropped", JUNK + 1), JUNK + 1);

    json_t *st = h_stats (&p->b);
    assert_int_equal (h_int_at (st, "bridges.accounts.checkpoint"), 1);
    assert_int_equal (h_int_at (st, "bridges.accounts.live"), 1);
    json_decref (st);
    /* A line for each frame dropped. */
    assert_true (s_count_in_log (&p->b, "dropping a malformed frame") >= JUNK);

    /* The balances projection folded the event. */
    json_t *m = NULL;
    deadline = h_now_us () + 10 * 1000000LL;
    for (int polls = 0; polls < 500 && h_now_us () < deadline; polls++) {
        char *out = NULL;
        if (h_cli (&p->b, &out, "query", "balances", "fake-1", NULL) == 0)
            m = h_json (out);
        free (out);
        if (m)
            break;
        usleep (20000);
    }
    assert_non_null (m);
    json_t *value = json_object_get (m, "value");
    assert_string_equal (h_str (value, "owner"), "Fay");
    assert_int_equal (h_int (value, "balance"), 0);
    json_decref (m);

    /* b still serves: its contexts, its own commands, and its process,
     * whose withdrawal the fake peer rejects. */
    char *out = NULL;
    assert_int_equal (h_cli (&p->b, &out, "contexts", NULL), 0);
    assert_non_null (strstr (out, "transfers"));
    free (out);
    assert_int_equal (h_cli (&p->b, &out, "send", "transfers", "RequestTransfer",
                             "{\"transfer\":\"t-f\",\"from\":\"fake-1\",\"to\":\"x\","
                             "\"amount\":5}", NULL), 0);
    free (out);
    deadline = h_now_us () + 20 * 1000000LL;
    m = NULL;
    for (int polls = 0; polls < 400 && h_now_us () < deadline; polls++) {
        if (h_cli (&p->b, &out, "query", "transfers", "t-f", NULL) == 0)
            m = h_json (out);
        free (out);
        const char *s = h_str (json_object_get (m, "value"), "state");
        if (s && strcmp (s, "failed") == 0)
            break;
        json_decref (m);
        m = NULL;
        usleep (50000);
    }
    assert_non_null (m);
    assert_non_null (strstr (h_str (json_object_get (m, "value"), "reason"),
                             "the fake peer rejects everything"));
    json_decref (m);
    assert_true (fake->sends >= 1);

    /* b exits 0 while the fake is still there (teardown), then the fake
     * goes. */
}

/* --- 5. pages cut short by the peer's byte budget ------------------- */

static void
test_catch_up_through_cut_pages (void **state)
{
    s_pair_t *p = *state;
    /* a's log, written before a starts: thousands of events, a few hundred
     * to a page of SMALL_REPLY bytes. */
    char data[300], store[320], events[16];
    snprintf (data, sizeof data, "%s/data", p->a.dir);
    snprintf (store, sizeof store, "%s/accounts.db", data);
    snprintf (events, sizeof events, "%d", FILLED);
    assert_int_equal (mkdir (data, 0700), 0);
    char *const fill[] = { "bctx-fill", store, events, "8", NULL };
    assert_int_equal (h_wait (h_spawn ("bctx-fill", fill, NULL), 60000), 0);
    assert_int_equal (s_start (&p->a), 0);
    static const char page[] = "{\"op\":\"events\",\"context\":\"accounts\",\"limit\":10000}";
    json_t *r = h_request (p->a.endpoint, page, sizeof page - 1, 5000);
    assert_non_null (r);
    size_t cut = json_array_size (json_object_get (r, "events"));
    assert_true (cut > 0 && cut < FILLED / 4);
    assert_int_equal (json_integer_value (json_object_get (r, "next")), (json_int_t) cut + 1);
    json_decref (r);

    /* b starts with nothing: its bridge fetches the whole log. */
    assert_int_equal (s_start (&p->b), 0);
    s_wait_settled (p, 0);
    assert_int_equal (s_replica (&p->b, "max(position)"), FILLED);
    assert_int_equal (s_replica (&p->b, "count(*)"), FILLED);
    json_t *sb = h_stats (&p->b);
    assert_int_equal (h_int_at (sb, "bridges.accounts.fetched"), FILLED);
    assert_int_equal (h_int_at (sb, "bridges.accounts.dropped"), 0);
    json_decref (sb);

    /* The CLI reads a's whole log across the cut pages, and b's balances
     * are its fold. */
    json_t *log = h_events (&p->a, "accounts");
    assert_non_null (log);
    assert_int_equal (json_array_size (log), FILLED);
    json_t *folded = json_object ();
    size_t i;
    json_t *e;
    json_array_foreach (log, i, e) {
        assert_int_equal (h_int (e, "position"), (json_int_t) i + 1);
        const char *account = h_str (e, "aggregate");
        json_int_t amount = h_int (json_object_get (e, "data"), "amount");
        json_object_set_new (folded, account, json_integer (h_int (folded, account) + amount));
    }
    json_t *balances = h_query_all (&p->b, "balances", 50);
    assert_int_equal (json_object_size (balances), 8);
    const char *key;
    json_t *v;
    json_object_foreach (folded, key, v)
        assert_int_equal (h_int (json_object_get (balances, key), "balance"),
                          json_integer_value (v));
    printf ("  %d events fetched in pages of %zu events (%d bytes)\n", FILLED, cut,
            SMALL_REPLY);
    json_decref (balances);
    json_decref (folded);
    json_decref (log);
}

int
main (void)
{
    s_zctx = zmq_ctx_new ();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown (test_bank_across_two_hosts, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_kill_9_of_either_host, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_peer_down_gives_unavailable, s_setup_1s,
                                         s_teardown),
        cmocka_unit_test_setup_teardown (test_malformed_frames_from_a_fake_peer, s_setup_fake,
                                         s_teardown),
        cmocka_unit_test_setup_teardown (test_catch_up_through_cut_pages, s_setup_small_pages,
                                         s_teardown),
    };
    int failed = cmocka_run_group_tests (tests, NULL, NULL);
    zmq_ctx_term (s_zctx);
    return failed;
}
