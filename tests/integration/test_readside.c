/*
 * test_readside - the read side against the real binaries: queries of the
 * bank's projections (one key, pages, unknown names), the checkpoints and
 * lag that `bctx stats` shows, kill -9 of a host while a projection catches
 * up or rebuilds (the read models still equal the fold of the log after a
 * restart), and a rebuild on a projection's version change while queries
 * keep answering from the old read models until the switch.
 *
 * The bank runs plugins/accounts + plugins/transfers; the rebuild tests
 * run tests/plugins/ledger.so and ledger_v2.so, whose projection "totals"
 * sleeps settings.delay_us per event so a rebuild takes seconds.
 */
#include "harness.h"

#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zmq.h>
#include <cmocka.h>

#define WAIT_S        60        /* the longest any wait in this file lasts */
#define BANK_ACCOUNTS 50        /* accounts the kill -9 tests fill */
#define LEDGER_IDS    20        /* aggregates the ledger tests spread over */
#define REPLY_MS      30000     /* how long a client waits for one reply: long, */
#define REPLY_S       30        /* so that a loaded machine is no failure */

static h_host_t s_host;         /* the host of the test that runs */

/* --- fixtures -------------------------------------------------------- */

static int
s_setup_bank (void **state)
{
    (void) state;
    if (h_init (&s_host) < 0)
        return -1;
    snprintf (s_host.contexts, sizeof s_host.contexts,
              "[{\"name\": \"accounts\", \"plugin\": \"%s\"},"
              " {\"name\": \"transfers\", \"plugin\": \"%s\"}]",
              h_path ("plugins/accounts/accounts.so"),
              h_path ("plugins/transfers/transfers.so"));
    return h_start (&s_host);
}

/* The ledger context, from `plugin` (relative to the build), with a
 * projection handler that sleeps delay_us per event. */
static void
s_ledger_contexts (h_host_t *h, const char *plugin, int delay_us)
{
    snprintf (h->contexts, sizeof h->contexts,
              "[{\"name\": \"ledger\", \"plugin\": \"%s\","
              " \"settings\": {\"delay_us\": %d}}]", h_path (plugin), delay_us);
}

static int
s_setup_ledger (void **state)
{
    (void) state;
    if (h_init (&s_host) < 0)
        return -1;
    s_ledger_contexts (&s_host, "tests/plugins/ledger.so", 200);
    return h_start (&s_host);
}

static int
s_teardown (void **state)
{
    (void) state;
    return h_teardown (&s_host);
}

/* --- helpers --------------------------------------------------------- */

static void
s_sleep_ms (int ms)
{
    usleep ((useconds_t) ms * 1000);
}

/* Prints the end of the host's log, to explain a failure that follows. */
static void
s_print_log_tail (const h_host_t *h)
{
    char *log = h_read_log (h);
    size_t len = log ? strlen (log) : 0;
    fprintf (stderr, "--- end of the host's log ---\n%s\n",
             log ? log + (len > 4000 ? len - 4000 : 0) : "(none)");
    free (log);
}

/* `bctx send` that must be accepted. */
static void
s_must_send (const h_host_t *h, const char *context, const char *command, const char *data)
{
    int code;
    json_t *r = h_cli_json (h, REPLY_S, &code, "send", context, command, data, NULL);
    if (code != 0 || !json_is_true (json_object_get (r, "ok"))) {
        s_print_log_tail (h);
        char *text = r ? json_dumps (r, JSON_COMPACT) : NULL;
        fail_msg ("send %s %s %s: exit %d, %s", context, command, data, code,
                  text ? text : "(no JSON)");
    }
    json_decref (r);
}

/* `bctx query PROJECTION KEY`, which must succeed.  Return: the read model
 * (new), or NULL when the reply says null. */
static json_t *
s_query (const h_host_t *h, const char *projection, const char *key)
{
    int code;
    json_t *r = h_cli_json (h, REPLY_S, &code, "query", projection, key, NULL);
    if (code != 0)
        s_print_log_tail (h);
    assert_int_equal (code, 0);
    assert_non_null (r);
    assert_true (json_is_true (json_object_get (r, "ok")));
    assert_string_equal (h_str (r, "key"), key);
    json_t *value = json_object_get (r, "value");
    assert_non_null (value);
    value = json_is_null (value) ? NULL : json_incref (value);
    json_decref (r);
    return value;
}

/* The host's stats over the wire protocol.  Return: new, or NULL. */
static json_t *
s_stats (const h_host_t *h)
{
    json_t *r = h_request (h->endpoint, "{\"op\":\"stats\"}", 14, REPLY_MS);
    if (!r)
        s_print_log_tail (h);
    if (r && !json_is_true (json_object_get (r, "ok"))) {
        json_decref (r);
        return NULL;
    }
    return r;
}

/* Borrowed: stats.projections[name]. */
static json_t *
s_proj (const json_t *stats, const char *name)
{
    return json_object_get (json_object_get (stats, "projections"), name);
}

/* stats.contexts[context].position */
static json_int_t
s_position (const json_t *stats, const char *context)
{
    return h_int (json_object_get (json_object_get (stats, "contexts"), context), "position");
}

/* The projection is live, has no error, and has handled source up to its
 * log's position. */
static int
s_caught_up (const json_t *stats, const char *projection, const char *source)
{
    json_t *p = s_proj (stats, projection);
    const char *st = h_str (p, "state");
    return p && st && strcmp (st, "live") == 0
           && h_int (json_object_get (p, "checkpoints"), source) == s_position (stats, source)
           && h_int (json_object_get (p, "lag"), source) == 0;
}

/* Polls stats until projection has caught up with source (at most
 * WAIT_S).  Return: the stats that showed it (new), or NULL. */
static json_t *
s_wait_caught_up (const h_host_t *h, const char *projection, const char *source)
{
    long long deadline = h_deadline (WAIT_S);
    while (h_now_us () < deadline) {
        json_t *stats = s_stats (h);
        if (stats && s_caught_up (stats, projection, source))
            return stats;
        json_decref (stats);
        s_sleep_ms (20);
    }
    return NULL;
}

/* --- a: queries ------------------------------------------------------ */

static void
test_query_balances_and_transfers (void **state)
{
    (void) state;
    h_host_t *h = &s_host;
    s_must_send (h, "accounts", "OpenAccount", "{\"account\":\"a1\",\"owner\":\"Ada\"}");
    s_must_send (h, "accounts", "OpenAccount", "{\"account\":\"a2\",\"owner\":\"Bob\"}");
    s_must_send (h, "accounts", "OpenAccount", "{\"account\":\"a3\",\"owner\":\"Cy\"}");
    s_must_send (h, "accounts", "Deposit", "{\"account\":\"a1\",\"amount\":100}");
    s_must_send (h, "accounts", "Withdraw", "{\"account\":\"a1\",\"amount\":30}");
    s_must_send (h, "accounts", "Deposit", "{\"account\":\"a3\",\"amount\":5}");
    s_must_send (h, "transfers", "RequestTransfer",
                 "{\"transfer\":\"t1\",\"from\":\"a1\",\"to\":\"a2\",\"amount\":20}");
    /* t2 asks more than a3 holds: the process fails it and says why. */
    s_must_send (h, "transfers", "RequestTransfer",
                 "{\"transfer\":\"t2\",\"from\":\"a3\",\"to\":\"a1\",\"amount\":1000}");

    /* The process runs asynchronously: wait (bounded) until both transfers
     * are finished in the read model, then check how. */
    const char *t1 = NULL, *t2 = NULL;
    json_t *m1 = NULL, *m2 = NULL;
    long long deadline = h_deadline (WAIT_S);
    while (h_now_us () < deadline) {
        json_decref (m1);
        json_decref (m2);
        m1 = s_query (h, "transfers", "t1");
        m2 = s_query (h, "transfers", "t2");
        t1 = h_str (m1, "state");
        t2 = h_str (m2, "state");
        if (t1 && t2 && strcmp (t1, "requested") != 0 && strcmp (t2, "requested") != 0)
            break;
        s_sleep_ms (20);
    }
    assert_non_null (t1);
    assert_string_equal (t1, "completed");
    assert_string_equal (h_str (m1, "from"), "a1");
    assert_string_equal (h_str (m1, "to"), "a2");
    assert_int_equal (h_int (m1, "amount"), 20);
    assert_non_null (t2);
    assert_string_equal (t2, "failed");
    assert_non_null (h_str (m2, "reason"));
    assert_non_null (strstr (h_str (m2, "reason"), "insufficient funds"));
    json_decref (m1);
    json_decref (m2);

    /* Every accounts event the process caused is in the log now; once
     * balances has handled the whole log, its models are exact. */
    json_t *stats = s_wait_caught_up (h, "balances", "accounts");
    assert_non_null (stats);
    json_decref (stats);
    struct { const char *key, *owner; json_int_t balance; } want[] = {
        { "a1", "Ada", 100 - 30 - 20 }, { "a2", "Bob", 20 }, { "a3", "Cy", 5 },
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        json_t *m = s_query (h, "balances", want[i].key);
        assert_non_null (m);
        assert_string_equal (h_str (m, "owner"), want[i].owner);
        assert_int_equal (h_int (m, "balance"), want[i].balance);
        json_decref (m);
    }

    /* A key with no read model: ok, value null. */
    int code;
    json_t *r = h_cli_json (h, REPLY_S, &code, "query", "balances", "nobody", NULL);
    assert_int_equal (code, 0);
    assert_true (json_is_true (json_object_get (r, "ok")));
    assert_string_equal (h_str (r, "key"), "nobody");
    assert_true (json_is_null (json_object_get (r, "value")));
    json_decref (r);

    /* Unknown projections: exit 1, unknown_projection, naming it and
     * listing those there are. */
    const char *unknown[][3] = {
        { "query", "nope", NULL }, { "query", "nope", "a1" }, { "replay", "nope", NULL },
    };
    for (size_t i = 0; i < 3; i++) {
        r = h_cli_json (h, REPLY_S, &code, unknown[i][0], unknown[i][1], unknown[i][2], NULL);
        assert_int_equal (code, 1);
        assert_non_null (r);
        assert_false (json_is_true (json_object_get (r, "ok")));
        assert_string_equal (h_error_code (r), "unknown_projection");
        h_assert_contains (h_str (json_object_get (r, "error"), "message"), "\"nope\"");
        h_assert_contains (h_str (json_object_get (r, "error"), "message"), "balances");
        json_decref (r);
    }
    /* Usage errors never reach the host: exit 2. */
    r = h_cli_json (h, REPLY_S, &code, "query", NULL);
    assert_int_equal (code, 2);
    json_decref (r);
    r = h_cli_json (h, REPLY_S, &code, "query", "balances", "a1", "--limit", "2", NULL);
    assert_int_equal (code, 2);
    json_decref (r);
    /* A page and a key at once over the wire: bad_request. */
    const char *both = "{\"op\":\"query\",\"projection\":\"balances\",\"key\":\"a1\",\"after\":\"a1\"}";
    r = h_request (h->endpoint, both, strlen (both), REPLY_MS);
    assert_non_null (r);
    assert_string_equal (h_error_code (r), "bad_request");
    json_decref (r);
}

static void
test_query_pages_with_limit_and_after (void **state)
{
    (void) state;
    h_host_t *h = &s_host;
    /* Ids whose byte order differs from their order of creation. */
    const char *ids[] = { "m3", "a1", "z9", "b20", "b3", "c", "A0" };
    const char *sorted[] = { "A0", "a1", "b20", "b3", "c", "m3", "z9" };
    size_t n = sizeof ids / sizeof ids[0];
    for (size_t i = 0; i < n; i++) {
        char data[96];
        snprintf (data, sizeof data, "{\"account\":\"%s\",\"owner\":\"o-%s\"}", ids[i], ids[i]);
        s_must_send (h, "accounts", "OpenAccount", data);
        snprintf (data, sizeof data, "{\"account\":\"%s\",\"amount\":%zu}", ids[i], i + 1);
        s_must_send (h, "accounts", "Deposit", data);
    }
    json_t *stats = s_wait_caught_up (h, "balances", "accounts");
    assert_non_null (stats);
    json_decref (stats);

    /* Pages of 2 (and of 1, 3, 7, 100): every key once, in order, with
     * the right value. */
    int limits[] = { 2, 1, 3, 7, 100 };
    for (size_t l = 0; l < sizeof limits / sizeof limits[0]; l++) {
        json_t *all = h_query_all (h, "balances", limits[l]);
        assert_int_equal (json_object_size (all), n);
        for (size_t i = 0; i < n; i++) {
            json_t *v = json_object_get (all, ids[i]);
            if (!v)
                fail_msg ("limit %d: key %s missing", limits[l], ids[i]);
            assert_int_equal (h_int (v, "balance"), (json_int_t) i + 1);
            char owner[32];
            snprintf (owner, sizeof owner, "o-%s", ids[i]);
            assert_string_equal (h_str (v, "owner"), owner);
        }
        json_decref (all);
    }

    /* The first page of 2 by hand: the two smallest keys, next = the
     * second; then the page after it. */
    int code;
    json_t *r = h_cli_json (h, REPLY_S, &code, "query", "balances", "--limit", "2", NULL);
    assert_int_equal (code, 0);
    json_t *items = json_object_get (r, "items");
    assert_int_equal (json_array_size (items), 2);
    assert_string_equal (h_str (json_array_get (items, 0), "key"), sorted[0]);
    assert_string_equal (h_str (json_array_get (items, 1), "key"), sorted[1]);
    assert_string_equal (h_str (r, "next"), sorted[1]);
    json_decref (r);
    r = h_cli_json (h, REPLY_S, &code, "query", "balances", "--limit", "2", "--after", sorted[1], NULL);
    assert_int_equal (code, 0);
    items = json_object_get (r, "items");
    assert_int_equal (json_array_size (items), 2);
    assert_string_equal (h_str (json_array_get (items, 0), "key"), sorted[2]);
    assert_string_equal (h_str (json_array_get (items, 1), "key"), sorted[3]);
    json_decref (r);
    /* --after alone: the rest, and no next. */
    r = h_cli_json (h, REPLY_S, &code, "query", "balances", "--after", "c", NULL);
    assert_int_equal (code, 0);
    items = json_object_get (r, "items");
    assert_int_equal (json_array_size (items), 2);
    assert_string_equal (h_str (json_array_get (items, 0), "key"), "m3");
    assert_string_equal (h_str (json_array_get (items, 1), "key"), "z9");
    assert_true (json_is_null (json_object_get (r, "next")));
    json_decref (r);
    /* After the last key (or a key past every other): empty, no next. */
    r = h_cli_json (h, REPLY_S, &code, "query", "balances", "--after", "zzz", NULL);
    assert_int_equal (code, 0);
    assert_int_equal (json_array_size (json_object_get (r, "items")), 0);
    assert_true (json_is_null (json_object_get (r, "next")));
    json_decref (r);
    /* A limit out of range is the client's error. */
    const char *big = "{\"op\":\"query\",\"projection\":\"balances\",\"limit\":0}";
    r = h_request (h->endpoint, big, strlen (big), REPLY_MS);
    assert_non_null (r);
    assert_string_equal (h_error_code (r), "bad_request");
    json_decref (r);
}

/* --- b: stats -------------------------------------------------------- */

static void
test_stats_shows_checkpoints_and_lag (void **state)
{
    (void) state;
    h_host_t *h = &s_host;
    s_must_send (h, "accounts", "OpenAccount", "{\"account\":\"s1\",\"owner\":\"Sue\"}");
    s_must_send (h, "accounts", "OpenAccount", "{\"account\":\"s2\",\"owner\":\"Sam\"}");
    s_must_send (h, "accounts", "Deposit", "{\"account\":\"s1\",\"amount\":40}");
    s_must_send (h, "transfers", "RequestTransfer",
                 "{\"transfer\":\"st1\",\"from\":\"s1\",\"to\":\"s2\",\"amount\":15}");
    /* The transfer ends with TransferCompleted at transfers position 2. */
    long long deadline = h_deadline (WAIT_S);
    json_t *stats = NULL;
    while (h_now_us () < deadline) {
        json_decref (stats);
        stats = s_stats (h);
        if (stats && s_position (stats, "transfers") == 2
            && s_caught_up (stats, "balances", "accounts")
            && s_caught_up (stats, "transfers", "transfers"))
            break;
        s_sleep_ms (20);
    }
    json_decref (stats);

    /* The same through `bctx stats`. */
    int code;
    stats = h_cli_json (h, REPLY_S, &code, "stats", NULL);
    assert_int_equal (code, 0);
    assert_non_null (stats);
    /* accounts: 2 opened, 1 deposit, the transfer's withdraw and deposit. */
    assert_int_equal (s_position (stats, "accounts"), 5);
    assert_int_equal (s_position (stats, "transfers"), 2);
    struct { const char *name, *source; json_int_t position; } want[] = {
        { "balances", "accounts", 5 }, { "transfers", "transfers", 2 },
    };
    for (size_t i = 0; i < 2; i++) {
        json_t *p = s_proj (stats, want[i].name);
        assert_non_null (p);
        assert_string_equal (h_str (p, "name"), want[i].name);
        assert_string_equal (h_str (p, "context"), "transfers");
        assert_int_equal (h_int (p, "version"), 1);
        assert_string_equal (h_str (p, "state"), "live");
        json_t *cp = json_object_get (p, "checkpoints");
        json_t *lag = json_object_get (p, "lag");
        /* One checkpoint per source it consumes, and only those. */
        assert_int_equal (json_object_size (cp), 1);
        assert_int_equal (json_object_size (lag), 1);
        assert_int_equal (h_int (cp, want[i].source), want[i].position);
        assert_int_equal (h_int (lag, want[i].source), 0);
        assert_true (json_is_null (json_object_get (p, "rebuild")));
        assert_int_equal (h_int (p, "handled"), want[i].position);
        assert_int_equal (h_int (p, "rebuilds"), 0);
        assert_true (json_is_null (json_object_get (p, "error")));
    }
    json_decref (stats);
    json_t *m = s_query (h, "balances", "s2");
    assert_non_null (m);
    assert_int_equal (h_int (m, "balance"), 15);
    json_decref (m);
}

/* --- c: kill -9 while a projection catches up or rebuilds ------------ */

/* Fills the accounts log with `per_client` * 4 deposits over
 * BANK_ACCOUNTS accounts (opened first), using bin/bctx-bench. */
static void
s_fill_accounts (const h_host_t *h, const char *prefix, int per_client)
{
    char accounts[16], max[16], out[400];
    snprintf (accounts, sizeof accounts, "%d", BANK_ACCOUNTS);
    snprintf (max, sizeof max, "%d", per_client);
    snprintf (out, sizeof out, "%s/bench-%s.json", h->dir, prefix);
    char *argv[] = { "bctx-bench", "-e", (char *) h->endpoint, "--setup",
                     "--accounts", accounts, "--clients", "4", "--max", max,
                     "--seconds", "50", "--prefix", (char *) prefix, NULL };
    pid_t pid = h_spawn ("bctx-bench", argv, out);
    assert_int_equal (h_wait (pid, WAIT_S * 1000), 0);
    json_error_t jerr;
    json_t *report = json_load_file (out, 0, &jerr);
    assert_non_null (report);
    assert_int_equal (h_int (report, "commands"), (json_int_t) per_client * 4);
    assert_int_equal (h_int (report, "errors"), 0);
    json_decref (report);
}

/* A few withdrawals, so the fold has both kinds of movement. */
static void
s_withdraw_some (const h_host_t *h, int round)
{
    for (int i = 0; i < 10; i++) {
        char account[32], id[48];
        snprintf (account, sizeof account, "acc-%d", (i * 7 + round) % BANK_ACCOUNTS);
        snprintf (id, sizeof id, "wd-%d-%d", round, i);
        json_t *r = h_send (h->endpoint, "accounts", "Withdraw", id,
                            json_pack ("{s:s, s:i}", "account", account, "amount", 1 + i));
        assert_non_null (r);
        assert_true (json_is_true (json_object_get (r, "ok")));
        json_decref (r);
    }
}

/* Checks every balances read model against the fold of the accounts log:
 * owner from AccountOpened, balance = deposits - withdrawals, the same
 * set of accounts. */
static void
s_assert_balances_match_log (const h_host_t *h)
{
    json_t *events = h_events (h, "accounts");
    assert_non_null (events);
    assert_true (json_array_size (events) > 0);
    json_t *want = json_object ();
    size_t i;
    json_t *e;
    json_array_foreach (events, i, e) {
        const char *agg = h_str (e, "aggregate");
        const char *type = h_str (e, "type");
        json_t *data = json_object_get (e, "data");
        assert_non_null (agg);
        assert_non_null (type);
        if (strcmp (type, "AccountOpened") == 0) {
            json_object_set_new (want, agg, json_pack ("{s:O, s:I}", "owner",
                                                       json_object_get (data, "owner"),
                                                       "balance", (json_int_t) 0));
            continue;
        }
        json_t *m = json_object_get (want, agg);
        assert_non_null (m);
        json_int_t amount = h_int (data, "amount");
        json_int_t balance = h_int (m, "balance");
        if (strcmp (type, "Deposited") == 0)
            balance += amount;
        else if (strcmp (type, "Withdrawn") == 0)
            balance -= amount;
        else
            fail_msg ("unexpected event type %s", type);
        json_object_set_new (m, "balance", json_integer (balance));
    }
    json_decref (events);

    json_t *got = h_query_all (h, "balances", 1000);
    assert_int_equal (json_object_size (got), json_object_size (want));
    const char *key;
    json_t *w;
    json_object_foreach (want, key, w) {
        json_t *g = json_object_get (got, key);
        if (!g)
            fail_msg ("balances has no read model for %s", key);
        if (!json_equal (g, w)) {
            char *gt = json_dumps (g, JSON_COMPACT), *wt = json_dumps (w, JSON_COMPACT);
            fail_msg ("balances %s is %s; the log folds to %s", key, gt, wt);
        }
    }
    json_decref (got);
    json_decref (want);
}

/* Removes a projection's read-side file (and its WAL) while no host runs. */
static void
s_remove_projection_file (const h_host_t *h, const char *name)
{
    const char *suffix[] = { "", "-wal", "-shm" };
    for (size_t i = 0; i < 3; i++) {
        char path[512];
        snprintf (path, sizeof path, "%s/data/projection-%s.db%s", h->dir, name, suffix[i]);
        int rc = unlink (path);
        if (i == 0)
            assert_int_equal (rc, 0);
    }
}

/* One stats request on a socket that retries its connection every 5 ms,
 * so the reply comes as soon as a host that is still starting binds.
 * Return: new, or NULL after timeout_ms. */
static json_t *
s_stats_eager (void *zctx, const char *endpoint, int timeout_ms)
{
    void *req = zmq_socket (zctx, ZMQ_REQ);
    int linger = 0, ivl = 5;
    zmq_setsockopt (req, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt (req, ZMQ_RECONNECT_IVL, &ivl, sizeof ivl);
    zmq_connect (req, endpoint);
    json_t *reply = NULL;
    if (zmq_send (req, "{\"op\":\"stats\"}", 14, 0) == 14) {
        zmq_pollitem_t item = { req, 0, ZMQ_POLLIN, 0 };
        if (zmq_poll (&item, 1, timeout_ms) == 1) {
            zmq_msg_t msg;
            zmq_msg_init (&msg);
            if (zmq_msg_recv (&msg, req, 0) >= 0)
                reply = json_loadb (zmq_msg_data (&msg), zmq_msg_size (&msg), 0, NULL);
            zmq_msg_close (&msg);
        }
    }
    zmq_close (req);
    return reply;
}

/* Starts the host without waiting for it (h_start waits, and by then a
 * small catch-up is over), polls its stats from the first moment it
 * answers, and kill -9s it while `projection` still lags behind `source`:
 * at the first stats that show progress (checkpoint > 0) and lag, or at
 * the last one that shows lag.  Return 1 if killed while lagging, 0 if
 * the projection had caught up first (the host then still runs). */
static int
s_start_and_kill_during_catch_up (h_host_t *h, const char *projection, const char *source)
{
    void *zctx = zmq_ctx_new ();
    int killed = 0;
    for (int attempt = 0; attempt < 5 && !killed && !h->pid; attempt++) {
        assert_int_equal (h_write_config (h), 0);
        pid_t pid = h_spawn_host (h, NULL);
        assert_true (pid >= 0);
        h->pid = pid;
        json_t *stats = NULL;
        long long deadline = h_deadline (10);
        while (!stats && h_now_us () < deadline) {
            if (waitpid (pid, NULL, WNOHANG) == pid) {
                h->pid = 0;         /* exited: maybe the port was taken */
                break;
            }
            stats = s_stats_eager (zctx, h->endpoint, 100);
        }
        if (!h->pid)
            continue;
        assert_non_null (stats);
        /* Poll as fast as the host answers until it has made progress. */
        json_int_t lag = 0, done = 0;
        for (int k = 0; k < 10000 && stats; k++) {
            json_t *p = s_proj (stats, projection);
            assert_non_null (p);
            lag = h_int (json_object_get (p, "lag"), source);
            done = h_int (json_object_get (p, "checkpoints"), source);
            if (lag == 0 || done > 0)
                break;
            json_decref (stats);
            stats = s_stats_eager (zctx, h->endpoint, REPLY_MS);
        }
        json_decref (stats);
        if (lag > 0) {
            assert_int_equal (h_stop (h, SIGKILL), 128 + SIGKILL);
            killed = 1;
            printf ("killed -9 with %s at %lld, %lld behind\n", projection,
                    (long long) done, (long long) lag);
        }
    }
    zmq_ctx_term (zctx);
    assert_true (killed || h->pid);
    return killed;
}

static void
test_kill_9_during_catch_up_then_restart (void **state)
{
    (void) state;
    h_host_t *h = &s_host;
    s_fill_accounts (h, "f0", 6000);
    s_withdraw_some (h, 0);
    int killed = 0;
    for (int round = 0; round < 4 && !killed; round++) {
        json_t *stats = s_wait_caught_up (h, "balances", "accounts");
        assert_non_null (stats);
        json_decref (stats);
        /* A clean stop, then a read side that starts again from nothing. */
        assert_int_equal (h_stop (h, SIGTERM), 0);
        s_remove_projection_file (h, "balances");
        killed = s_start_and_kill_during_catch_up (h, "balances", "accounts");
        if (!killed) {
            /* Caught up before we could look: a bigger log next time. */
            char prefix[16];
            snprintf (prefix, sizeof prefix, "f%d", round + 1);
            s_fill_accounts (h, prefix, 5000);
            s_withdraw_some (h, round + 1);
        }
    }
    if (!killed)
        printf ("note: balances always caught up before stats could show lag\n");
    else
        assert_int_equal (h_start (h), 0);
    json_t *stats = s_wait_caught_up (h, "balances", "accounts");
    assert_non_null (stats);
    json_decref (stats);
    s_assert_balances_match_log (h);
    /* Still live: a new deposit shows. */
    json_t *before = s_query (h, "balances", "acc-3");
    assert_non_null (before);
    s_must_send (h, "accounts", "Deposit", "{\"account\":\"acc-3\",\"amount\":1000}");
    stats = s_wait_caught_up (h, "balances", "accounts");
    assert_non_null (stats);
    json_decref (stats);
    json_t *after = s_query (h, "balances", "acc-3");
    assert_int_equal (h_int (after, "balance"), h_int (before, "balance") + 1000);
    json_decref (before);
    json_decref (after);
}

static void
test_kill_9_during_replay_then_restart (void **state)
{
    (void) state;
    h_host_t *h = &s_host;
    s_fill_accounts (h, "f0", 6000);
    s_withdraw_some (h, 0);
    json_t *stats = s_wait_caught_up (h, "balances", "accounts");
    assert_non_null (stats);
    json_decref (stats);
    int killed = 0;
    for (int round = 0; round < 4 && !killed; round++) {
        stats = s_stats (h);
        assert_non_null (stats);
        json_int_t rebuilds = h_int (s_proj (stats, "balances"), "rebuilds");
        json_decref (stats);
        const char *replay = "{\"op\":\"replay\",\"projection\":\"balances\"}";
        json_t *r = h_request (h->admin, replay, strlen (replay), REPLY_MS);
        assert_non_null (r);
        assert_true (json_is_true (json_object_get (r, "ok")));
        assert_true (json_is_true (json_object_get (r, "rebuilding")));
        json_decref (r);
        /* Kill it at the first stats that show a rebuild part done. */
        long long deadline = h_deadline (WAIT_S);
        while (h_now_us () < deadline) {
            stats = s_stats (h);
            assert_non_null (stats);
            json_t *p = s_proj (stats, "balances");
            const char *st = h_str (p, "state");
            assert_non_null (st);
            assert_string_not_equal (st, "failing");
            /* Queries answer from the live models meanwhile: lag 0. */
            assert_int_equal (h_int (json_object_get (p, "lag"), "accounts"), 0);
            json_t *rb = json_object_get (p, "rebuild");
            if (strcmp (st, "rebuilding") == 0 && json_is_object (rb)
                && h_int (rb, "read") > 0 && h_int (rb, "read") < h_int (rb, "of")) {
                assert_int_equal (h_stop (h, SIGKILL), 128 + SIGKILL);
                printf ("killed -9 with the rebuild at %lld of %lld\n",
                        (long long) h_int (rb, "read"), (long long) h_int (rb, "of"));
                killed = 1;
                json_decref (stats);
                break;
            }
            int over = strcmp (st, "live") == 0 && h_int (p, "rebuilds") > rebuilds;
            json_decref (stats);
            if (over)
                break;          /* the rebuild finished before we saw it */
        }
        if (!killed) {
            char prefix[16];
            snprintf (prefix, sizeof prefix, "f%d", round + 1);
            s_fill_accounts (h, prefix, 5000);
            s_withdraw_some (h, round + 1);
            stats = s_wait_caught_up (h, "balances", "accounts");
            assert_non_null (stats);
            json_decref (stats);
        }
    }
    if (!killed) {
        printf ("note: the rebuild always finished before stats could show it\n");
    } else {
        assert_int_equal (h_start (h), 0);
        /* The restarted host carries on with the rebuild it was doing,
         * answering from the live read models meanwhile, and switches. */
        long long deadline = h_deadline (WAIT_S);
        while (h_now_us () < deadline) {
            stats = s_stats (h);
            int done = stats && h_int (s_proj (stats, "balances"), "rebuilds") >= 1
                       && s_caught_up (stats, "balances", "accounts");
            json_decref (stats);
            if (done)
                break;
            s_sleep_ms (20);
        }
        char *log = h_read_log (h);
        assert_non_null (log);
        assert_non_null (strstr (log, "projection balances: resuming the rebuild of version 1"));
        free (log);
    }
    stats = s_wait_caught_up (h, "balances", "accounts");
    assert_non_null (stats);
    if (killed)
        assert_int_equal (h_int (s_proj (stats, "balances"), "rebuilds"), 1);
    json_decref (stats);
    s_assert_balances_match_log (h);
}

/* --- d: rebuild on a version change ---------------------------------- */

/* Sends `count` Adds to the ledger, pipelined on one DEALER socket (so
 * they share commits), the k-th to id l-(k % LEDGER_IDS) with n = 1 + k %
 * 7, and adds each n to totals[id].  Return 0 when every one was
 * accepted. */
static int
s_add_many (const h_host_t *h, const char *prefix, int count, json_int_t *totals)
{
    void *zctx = zmq_ctx_new ();
    void *dealer = zmq_socket (zctx, ZMQ_DEALER);
    int linger = 0;
    zmq_setsockopt (dealer, ZMQ_LINGER, &linger, sizeof linger);
    zmq_connect (dealer, h->endpoint);
    int sent = 0, got = 0, ok = 0;
    long long deadline = h_deadline (WAIT_S);
    while (got < count && h_now_us () < deadline) {
        while (sent < count && sent - got < 200) {
            char body[256];
            int id = sent % LEDGER_IDS, n = 1 + sent % 7;
            int len = snprintf (body, sizeof body,
                                "{\"op\":\"send\",\"context\":\"ledger\",\"command\":\"Add\","
                                "\"id\":\"%s-%d\",\"data\":{\"id\":\"l-%02d\",\"n\":%d}}",
                                prefix, sent, id, n);
            if (zmq_send (dealer, "", 0, ZMQ_SNDMORE) != 0
                || zmq_send (dealer, body, (size_t) len, 0) != len)
                break;
            totals[id] += n;
            sent++;
        }
        zmq_pollitem_t item = { dealer, 0, ZMQ_POLLIN, 0 };
        if (zmq_poll (&item, 1, 1000) != 1)
            continue;
        char frame[1024];
        int more = 0;
        size_t more_len = sizeof more;
        int len = zmq_recv (dealer, frame, sizeof frame - 1, 0);   /* delimiter */
        zmq_getsockopt (dealer, ZMQ_RCVMORE, &more, &more_len);
        if (len != 0 || !more)
            break;
        len = zmq_recv (dealer, frame, sizeof frame - 1, 0);
        if (len < 0)
            break;
        frame[len < (int) sizeof frame - 1 ? len : (int) sizeof frame - 1] = '\0';
        got++;
        if (strstr (frame, "\"ok\":true"))
            ok++;
        else
            fprintf (stderr, "Add refused: %s\n", frame);
    }
    if (ok != count) {
        fprintf (stderr, "%d Adds sent, %d answered, %d accepted, of %d\n", sent, got, ok, count);
        s_print_log_tail (h);
    }
    zmq_close (dealer);
    zmq_ctx_term (zctx);
    return ok == count ? 0 : -1;
}

/* Checks every totals read model: the expected total per id and version
 * v; `extra` names one more id (or NULL) with total extra_total. */
static void
s_assert_totals (const h_host_t *h, const json_int_t *totals, int v, const char *extra,
                 json_int_t extra_total)
{
    json_t *all = h_query_all (h, "totals", 7);
    assert_int_equal (json_object_size (all), LEDGER_IDS + (extra ? 1 : 0));
    for (int i = 0; i < LEDGER_IDS; i++) {
        char id[16];
        snprintf (id, sizeof id, "l-%02d", i);
        json_t *m = json_object_get (all, id);
        if (!m)
            fail_msg ("totals has no read model for %s", id);
        assert_int_equal (h_int (m, "total"), totals[i]);
        assert_int_equal (h_int (m, "v"), v);
    }
    if (extra) {
        json_t *m = json_object_get (all, extra);
        assert_non_null (m);
        assert_int_equal (h_int (m, "total"), extra_total);
        assert_int_equal (h_int (m, "v"), v);
    }
    json_decref (all);
}

/* Fills the ledger with `count` Adds and waits until totals (v1) has
 * caught up. */
static void
s_fill_ledger (const h_host_t *h, int count, json_int_t *totals)
{
    assert_int_equal (s_add_many (h, "fill", count, totals), 0);
    json_t *stats = s_wait_caught_up (h, "totals", "ledger");
    assert_non_null (stats);
    assert_int_equal (s_position (stats, "ledger"), count);
    json_decref (stats);
    s_assert_totals (h, totals, 1, NULL, 0);
}

static void
test_rebuild_on_version_change_keeps_answering (void **state)
{
    (void) state;
    h_host_t *h = &s_host;
    json_int_t totals[LEDGER_IDS] = { 0 };
    s_fill_ledger (h, 12000, totals);

    /* Same context name, same data, the projection at version 2. */
    assert_int_equal (h_stop (h, SIGTERM), 0);
    s_ledger_contexts (h, "tests/plugins/ledger_v2.so", 200);
    assert_int_equal (h_start (h), 0);

    int seen_rebuilding = 0, seen_switched = 0, seen_v2 = 0, late_sent = 0;
    json_int_t last_read = -1, late_total = 0;
    long queries = 0;
    long long deadline = h_deadline (WAIT_S);
    for (int k = 0; h_now_us () < deadline; k++) {
        json_t *stats = s_stats (h);
        assert_non_null (stats);
        json_t *p = s_proj (stats, "totals");
        assert_non_null (p);
        assert_int_equal (h_int (p, "version"), 2);
        const char *st = h_str (p, "state");
        assert_non_null (st);
        json_t *rb = json_object_get (p, "rebuild");
        if (strcmp (st, "rebuilding") == 0) {
            /* Never back to rebuilding once the new models answered. */
            assert_false (seen_switched);
            assert_false (seen_v2);
            seen_rebuilding = 1;
            /* Progress: read of the log's length, never going back. */
            assert_true (json_is_object (rb));
            assert_int_equal (h_int (rb, "of"), s_position (stats, "ledger"));
            assert_true (h_int (rb, "read") >= last_read);
            assert_true (h_int (rb, "read") <= h_int (rb, "of"));
            last_read = h_int (rb, "read");
            if (!late_sent) {
                /* Commands go on during the rebuild: to ids the loop
                 * below does not query (their live models are stale until
                 * the switch) and to a new id. */
                for (int i = LEDGER_IDS / 2; i < LEDGER_IDS; i++) {
                    char data[64];
                    snprintf (data, sizeof data, "{\"id\":\"l-%02d\",\"n\":5}", i);
                    s_must_send (h, "ledger", "Add", data);
                    totals[i] += 5;
                }
                s_must_send (h, "ledger", "Add", "{\"id\":\"late\",\"n\":9}");
                late_total = 9;
                late_sent = 1;
            }
        } else {
            assert_string_equal (st, "live");
            assert_true (json_is_null (rb));
            if (seen_rebuilding)
                seen_switched = 1;
        }
        json_decref (stats);

        /* A query of an id the late commands do not touch: it always
         * answers, with the right total; v1 until the switch, v2 from the
         * first v2 on and whenever stats said the switch was made. */
        char id[16];
        snprintf (id, sizeof id, "l-%02d", k % (LEDGER_IDS / 2));
        json_t *m = s_query (h, "totals", id);
        queries++;
        assert_non_null (m);
        assert_int_equal (h_int (m, "total"), totals[k % (LEDGER_IDS / 2)]);
        json_int_t v = h_int (m, "v");
        json_decref (m);
        if (seen_v2 || seen_switched)
            assert_int_equal (v, 2);
        else
            assert_true (v == 1 || v == 2);
        if (v == 2)
            seen_v2 = 1;
        if (seen_switched)
            break;
        s_sleep_ms (10);
    }
    printf ("%ld queries; the rebuild was seen at up to %lld read\n", queries,
            (long long) last_read);
    assert_true (seen_rebuilding);
    assert_true (seen_switched);
    assert_true (late_sent);

    /* After the switch the new models carry on with the late commands. */
    json_t *stats = s_wait_caught_up (h, "totals", "ledger");
    assert_non_null (stats);
    assert_int_equal (s_position (stats, "ledger"), 12000 + LEDGER_IDS / 2 + 1);
    assert_int_equal (h_int (s_proj (stats, "totals"), "rebuilds"), 1);
    json_decref (stats);
    s_assert_totals (h, totals, 2, "late", late_total);
    char *log = h_read_log (h);
    assert_non_null (log);
    assert_non_null (strstr (log, "projection totals: rebuilding version 2"));
    assert_non_null (strstr (log, "projection totals: rebuild of version 2 caught up; now live"));
    free (log);

    /* A restart keeps version 2 live: no second rebuild. */
    assert_int_equal (h_stop (h, SIGTERM), 0);
    assert_int_equal (h_start (h), 0);
    stats = s_wait_caught_up (h, "totals", "ledger");
    assert_non_null (stats);
    assert_int_equal (h_int (s_proj (stats, "totals"), "rebuilds"), 0);
    assert_true (json_is_null (json_object_get (s_proj (stats, "totals"), "rebuild")));
    json_decref (stats);
    s_assert_totals (h, totals, 2, "late", late_total);
}

static void
test_replay_rebuilds_and_totals_stay (void **state)
{
    (void) state;
    h_host_t *h = &s_host;
    json_int_t totals[LEDGER_IDS] = { 0 };
    s_fill_ledger (h, 8000, totals);
    json_t *stats = s_stats (h);
    assert_non_null (stats);
    json_int_t rebuilds = h_int (s_proj (stats, "totals"), "rebuilds");
    json_decref (stats);

    int code;
    json_t *r = h_cli_json (h, REPLY_S, &code, "replay", "totals", NULL);
    assert_int_equal (code, 0);
    assert_non_null (r);
    assert_true (json_is_true (json_object_get (r, "ok")));
    assert_string_equal (h_str (r, "projection"), "totals");
    json_decref (r);

    /* While it rebuilds, every query answers from the live models with
     * the same totals; it ends with one rebuild more. */
    int seen_rebuilding = 0, done = 0;
    long long deadline = h_deadline (WAIT_S);
    for (int k = 0; h_now_us () < deadline && !done; k++) {
        stats = s_stats (h);
        assert_non_null (stats);
        json_t *p = s_proj (stats, "totals");
        const char *st = h_str (p, "state");
        assert_non_null (st);
        assert_string_not_equal (st, "failing");
        if (strcmp (st, "rebuilding") == 0)
            seen_rebuilding = 1;
        done = strcmp (st, "live") == 0 && h_int (p, "rebuilds") > rebuilds;
        json_decref (stats);
        char id[16];
        snprintf (id, sizeof id, "l-%02d", k % LEDGER_IDS);
        json_t *m = s_query (h, "totals", id);
        assert_non_null (m);
        assert_int_equal (h_int (m, "total"), totals[k % LEDGER_IDS]);
        assert_int_equal (h_int (m, "v"), 1);
        json_decref (m);
        s_sleep_ms (10);
    }
    assert_true (done);
    /* 8000 events at 200 µs each: the rebuild lasts long enough to see. */
    assert_true (seen_rebuilding);
    stats = s_wait_caught_up (h, "totals", "ledger");
    assert_non_null (stats);
    assert_int_equal (h_int (s_proj (stats, "totals"), "rebuilds"), rebuilds + 1);
    json_decref (stats);
    s_assert_totals (h, totals, 1, NULL, 0);
    char *log = h_read_log (h);
    assert_non_null (log);
    assert_non_null (strstr (log, "projection totals: replay asked"));
    assert_non_null (strstr (log, "rebuilding version 1 from position 1 (asked by replay)"));
    free (log);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown (test_query_balances_and_transfers,
                                         s_setup_bank, s_teardown),
        cmocka_unit_test_setup_teardown (test_query_pages_with_limit_and_after,
                                         s_setup_bank, s_teardown),
        cmocka_unit_test_setup_teardown (test_stats_shows_checkpoints_and_lag,
                                         s_setup_bank, s_teardown),
        cmocka_unit_test_setup_teardown (test_kill_9_during_catch_up_then_restart,
                                         s_setup_bank, s_teardown),
        cmocka_unit_test_setup_teardown (test_kill_9_during_replay_then_restart,
                                         s_setup_bank, s_teardown),
        cmocka_unit_test_setup_teardown (test_rebuild_on_version_change_keeps_answering,
                                         s_setup_ledger, s_teardown),
        cmocka_unit_test_setup_teardown (test_replay_rebuilds_and_totals_stay,
                                         s_setup_ledger, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
