/*
 * test_projection - unit tests of host/projection: the bus is only a
 * wake-up.  A projection reads its events from the store, from its
 * checkpoint on, so a wake-up that never comes (a missing delivery) only
 * delays it, and wake-ups that come many times, or carry junk, or arrive
 * before the event is visible (duplicates) count nothing twice.
 *
 * Everything runs in this process, with no host around it: a ZeroMQ
 * context and the internal bus, an "accounts" store written by the test
 * (rows shaped like the accounts plugin's events), the real transfers
 * plugin (whose first projection is "balances"), and one projector fed
 * from that store.  The read models are read back from the projection's
 * own file through a read-only connection, as the API thread does.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "bus.h"
#include "feed.h"
#include "loader.h"
#include "projection.h"
#include "store.h"

typedef struct {
    char dir[64];                 /* the test's temporary directory */
    char store_path[128];         /* dir/accounts.db */
    bctx_store_t *store;          /* the test writes the log through it */
    _Atomic int64_t head;         /* what the projector takes as the log's head */
    void *zctx;                   /* ZeroMQ context */
    bctx_bus_t *bus;              /* the internal bus */
    bctx_plugin_t *plugin;        /* transfers.so */
    bctx_source_t source;         /* the one source: accounts */
    bctx_projector_t *projector;  /* the balances projection, running */
    bctx_readside_t *reader;      /* read-only, on the projection's file */
    void *pub;                    /* PUB into the bus, for wake-ups (or NULL) */
    void *probe;                  /* SUB on the bus, to see them pass (or NULL) */
    int commands;                 /* command ids handed out so far */
} fixture_t;

static long long
s_now_ms (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (long long) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* --- the log --------------------------------------------------------- */

/* Appends one event to the accounts log in its own transaction, as the
 * accounts worker would, but does not move the head.  data: JSON text.
 * Return its position. */
static int64_t
s_append (fixture_t *f, const char *account, const char *type, const char *data)
{
    char meta[192];
    int c = ++f->commands;
    snprintf (meta, sizeof meta,
              "{\"command_id\":\"c-%d\",\"correlation_id\":\"c-%d\",\"causation_id\":\"c-%d\","
              "\"time\":\"2024-01-01T00:00:00.000Z\"}", c, c, c);
    char id[32];
    snprintf (id, sizeof id, "c-%d", c);
    bctx_row_t row = { .aggregate = account, .type = type, .data = data,
                       .metadata = meta, .command = id };
    int64_t version = bctx_store_version (f->store, account);
    assert_true (version >= 0);
    assert_int_equal (bctx_store_begin (f->store), 0);
    assert_int_equal (bctx_store_append (f->store, account, version, &row, 1), 0);
    assert_int_equal (bctx_store_commit (f->store), 0);
    return row.position;
}

static int64_t
s_open_account (fixture_t *f, const char *account, const char *owner)
{
    char data[128];
    snprintf (data, sizeof data, "{\"account\":\"%s\",\"owner\":\"%s\"}", account, owner);
    return s_append (f, account, "AccountOpened", data);
}

/* Deposited (amount > 0) or Withdrawn (amount < 0), with the balance the
 * accounts plugin would record. */
static int64_t
s_move (fixture_t *f, const char *account, long long amount, long long balance)
{
    char data[128];
    snprintf (data, sizeof data, "{\"account\":\"%s\",\"amount\":%lld,\"balance\":%lld}",
              account, amount < 0 ? -amount : amount, balance);
    return s_append (f, account, amount < 0 ? "Withdrawn" : "Deposited", data);
}

/* Makes everything appended so far visible to the projector, as the
 * worker does after its commit. */
static void
s_bump_head (fixture_t *f)
{
    atomic_store (&f->head, bctx_store_position (f->store));
}

/* --- the read side --------------------------------------------------- */

/* The balance of `account` in the live read models, or -1 if it has none. */
static long long
s_balance (fixture_t *f, const char *account)
{
    char *text = bctx_readside_get_live (f->reader, account);
    if (!text)
        return -1;
    json_t *model = json_loads (text, 0, NULL);
    free (text);
    assert_non_null (model);
    long long balance = json_integer_value (json_object_get (model, "balance"));
    json_decref (model);
    return balance;
}

/* Waits up to timeout_ms for `account` to reach `balance`.  Return 1 if
 * it did. */
static int
s_wait_balance (fixture_t *f, const char *account, long long balance, int timeout_ms)
{
    long long deadline = s_now_ms () + timeout_ms;
    while (s_balance (f, account) != balance) {
        if (s_now_ms () > deadline)
            return 0;
        usleep (5000);
    }
    return 1;
}

/* One number of the projector's stats: "handled", or "lag"/"checkpoints"
 * of the accounts source. */
static long long
s_stat (fixture_t *f, const char *what)
{
    json_t *stats = bctx_projector_stats (f->projector);
    assert_non_null (stats);
    json_t *v = json_object_get (stats, what);
    if (json_is_object (v))
        v = json_object_get (v, "accounts");
    assert_true (json_is_integer (v));
    long long n = json_integer_value (v);
    json_decref (stats);
    return n;
}

static void
s_assert_no_error (fixture_t *f)
{
    json_t *stats = bctx_projector_stats (f->projector);
    assert_string_equal (json_string_value (json_object_get (stats, "state")), "live");
    assert_true (json_is_null (json_object_get (stats, "error"))
                 || !json_object_get (stats, "error"));
    json_decref (stats);
}

/* --- the projector --------------------------------------------------- */

static void
s_start_projector (fixture_t *f)
{
    char err[512] = "";
    /* After a projector is destroyed, its inproc control endpoint may take
     * a moment to be released. */
    for (int tries = 0; !f->projector && tries < 100; tries++) {
        f->projector = bctx_projector_new (f->zctx, f->dir, f->plugin,
                                           &f->plugin->desc->projections[0], &f->source, 1,
                                           err, sizeof err);
        if (!f->projector)
            usleep (10000);
    }
    if (!f->projector)
        fail_msg ("bctx_projector_new: %s", err);
    assert_string_equal (bctx_projector_base (f->projector)->name, "balances");
    assert_int_equal (bctx_consumer_start (bctx_projector_base (f->projector)), 0);
    if (!f->reader) {
        f->reader = bctx_readside_open (bctx_projector_path (f->projector), BCTX_STORE_READONLY,
                                        err, sizeof err);
        if (!f->reader)
            fail_msg ("bctx_readside_open: %s", err);
    }
}

/* A log of three events: a1 (Ada) and a2 (Bob) opened, 100 on a1. */
static int
s_setup (void **state)
{
    fixture_t *f = calloc (1, sizeof *f);
    if (!f)
        return -1;
    snprintf (f->dir, sizeof f->dir, "/tmp/bctx-test-projection-XXXXXX");
    if (!mkdtemp (f->dir)) {
        free (f);
        return -1;
    }
    snprintf (f->store_path, sizeof f->store_path, "%s/accounts.db", f->dir);
    char err[512] = "";
    f->store = bctx_store_open (f->store_path, 0, err, sizeof err);
    if (!f->store) {
        fprintf (stderr, "bctx_store_open: %s\n", err);
        return -1;
    }
    f->zctx = zmq_ctx_new ();
    f->bus = bctx_bus_new (f->zctx, NULL, NULL, NULL, NULL, err, sizeof err);
    if (!f->bus) {
        fprintf (stderr, "bctx_bus_new: %s\n", err);
        return -1;
    }
    const char *build = getenv ("BCTX_BUILD");
    char path[512];
    snprintf (path, sizeof path, "%s/plugins/transfers/transfers.so",
              build && *build ? build : ".");
    json_t *settings = json_null ();
    f->plugin = bctx_plugin_load ("transfers", path, settings, NULL, "test", NULL, err, sizeof err);
    json_decref (settings);
    if (!f->plugin) {
        fprintf (stderr, "bctx_plugin_load: %s\n", err);
        return -1;
    }
    f->source = (bctx_source_t) { .name = "accounts", .store_path = f->store_path,
                                  .head = &f->head, .endpoint = "inproc://unused" };
    *state = f;
    s_open_account (f, "a1", "Ada");
    s_open_account (f, "a2", "Bob");
    s_move (f, "a1", 100, 100);
    s_bump_head (f);
    s_start_projector (f);
    return 0;
}

static int
s_teardown (void **state)
{
    fixture_t *f = *state;
    bctx_projector_destroy (&f->projector);
    bctx_projector_destroy (&f->projector);      /* idempotent */
    bctx_readside_destroy (&f->reader);
    if (f->pub)
        zmq_close (f->pub);
    if (f->probe)
        zmq_close (f->probe);
    zmq_ctx_shutdown (f->zctx);
    bctx_bus_destroy (&f->bus);
    zmq_ctx_term (f->zctx);
    bctx_plugin_destroy (&f->plugin);
    bctx_store_destroy (&f->store);
    char cmd[128];
    snprintf (cmd, sizeof cmd, "rm -rf '%s'", f->dir);
    int rc = system (cmd);
    free (f);
    return rc == 0 ? 0 : -1;
}

/* --- wake-ups -------------------------------------------------------- */

/* Opens a publisher into the bus and a probe subscribed to "accounts.",
 * and waits until what the publisher sends gets through. */
static void
s_open_publisher (fixture_t *f)
{
    int linger = 0;
    f->pub = zmq_socket (f->zctx, ZMQ_PUB);
    zmq_setsockopt (f->pub, ZMQ_LINGER, &linger, sizeof linger);
    assert_int_equal (zmq_connect (f->pub, BCTX_BUS_IN), 0);
    f->probe = zmq_socket (f->zctx, ZMQ_SUB);
    zmq_setsockopt (f->probe, ZMQ_LINGER, &linger, sizeof linger);
    assert_int_equal (zmq_setsockopt (f->probe, ZMQ_SUBSCRIBE, "accounts.", 9), 0);
    assert_int_equal (zmq_connect (f->probe, BCTX_BUS_OUT), 0);
    /* Subscriptions travel to the publisher asynchronously: send until the
     * probe sees a message. */
    long long deadline = s_now_ms () + 5000;
    for (;;) {
        zmq_send (f->pub, "accounts.Deposited", 18, ZMQ_SNDMORE);
        zmq_send (f->pub, "hello", 5, 0);
        zmq_pollitem_t item = { f->probe, 0, ZMQ_POLLIN, 0 };
        if (zmq_poll (&item, 1, 10) == 1)
            break;
        if (s_now_ms () > deadline)
            fail_msg ("nothing published into the bus came out of it");
    }
    usleep (20000);
    bctx_feed_drain (f->probe);
}

/* Publishes `n` wake-ups with topic `topic` (frames: topic, payload).
 * payload NULL sends the topic alone, a one-frame message. */
static void
s_wake (fixture_t *f, const char *topic, const char *payload, int n)
{
    for (int i = 0; i < n; i++) {
        if (payload) {
            assert_true (zmq_send (f->pub, topic, strlen (topic), ZMQ_SNDMORE) >= 0);
            assert_true (zmq_send (f->pub, payload, strlen (payload), 0) >= 0);
        } else {
            assert_true (zmq_send (f->pub, topic, strlen (topic), 0) >= 0);
        }
    }
}

/* Waits until the probe has received `n` frames in all. */
static void
s_assert_probe_saw (fixture_t *f, int n)
{
    long long deadline = s_now_ms () + 5000;
    int seen = 0;
    while (seen < n) {
        zmq_pollitem_t item = { f->probe, 0, ZMQ_POLLIN, 0 };
        if (zmq_poll (&item, 1, 100) == 1)
            seen += bctx_feed_drain (f->probe);
        if (s_now_ms () > deadline)
            fail_msg ("the bus passed %d of %d frames", seen, n);
    }
    assert_int_equal (seen, n);
}

/* --- tests ----------------------------------------------------------- */

static void
test_catches_up_from_the_store_at_start (void **state)
{
    fixture_t *f = *state;
    assert_true (s_wait_balance (f, "a1", 100, 5000));
    assert_int_equal (s_balance (f, "a2"), 0);
    assert_int_equal (s_balance (f, "nobody"), -1);
    assert_int_equal (s_stat (f, "handled"), 3);
    assert_int_equal (s_stat (f, "checkpoints"), 3);
    assert_int_equal (s_stat (f, "lag"), 0);
    s_assert_no_error (f);
}

/* Missing deliveries: events are committed and the head moves, but no
 * wake-up is ever published.  The projector still reads them. */
static void
test_missing_wake_ups_only_delay (void **state)
{
    fixture_t *f = *state;
    assert_true (s_wait_balance (f, "a1", 100, 5000));
    s_move (f, "a1", 50, 150);
    s_move (f, "a2", 70, 70);
    s_move (f, "a1", -30, 120);
    s_open_account (f, "a3", "Cy");
    s_bump_head (f);
    /* It wakes at least every second by itself. */
    assert_true (s_wait_balance (f, "a1", 120, 10000));
    assert_true (s_wait_balance (f, "a3", 0, 10000));
    assert_int_equal (s_balance (f, "a2"), 70);
    assert_int_equal (s_stat (f, "handled"), 7);
    assert_int_equal (s_stat (f, "checkpoints"), 7);
    assert_int_equal (s_stat (f, "lag"), 0);

    /* Again, with events committed in many small transactions. */
    long long balance = 70;
    for (int i = 1; i <= 20; i++) {
        balance += i;
        s_move (f, "a2", i, balance);
        if (i % 5 == 0)
            s_bump_head (f);
    }
    assert_true (s_wait_balance (f, "a2", balance, 10000));
    assert_int_equal (s_stat (f, "handled"), 27);
    assert_int_equal (s_stat (f, "lag"), 0);
    s_assert_no_error (f);
}

/* Duplicated deliveries: the same wake-up many times, junk wake-ups, and
 * wake-ups that come before the event is visible.  Nothing is counted
 * twice, nothing breaks. */
static void
test_duplicate_and_junk_wake_ups_count_nothing_twice (void **state)
{
    fixture_t *f = *state;
    assert_true (s_wait_balance (f, "a1", 100, 5000));
    s_open_publisher (f);

    /* The wake-up of position 3 (100 on a1), as a worker publishes it,
     * again and again, among junk of every shape on every consumed topic. */
    const char *real = "{\"context\":\"accounts\",\"type\":\"Deposited\",\"aggregate\":\"a1\","
                       "\"version\":2,\"position\":3,\"data\":{\"account\":\"a1\","
                       "\"amount\":100,\"balance\":100},\"metadata\":{\"command_id\":\"c-3\"}}";
    const char *claims_more = "{\"context\":\"accounts\",\"type\":\"Deposited\","
                              "\"aggregate\":\"a1\",\"version\":9,\"position\":99,"
                              "\"data\":{\"account\":\"a1\",\"amount\":1000000}}";
    s_wake (f, "accounts.Deposited", real, 300);
    s_wake (f, "accounts.Deposited", "not JSON at all", 100);
    s_wake (f, "accounts.Deposited", "", 50);
    s_wake (f, "accounts.Deposited", claims_more, 50);
    s_wake (f, "accounts.Withdrawn", "{\"position\":-1}", 50);
    s_wake (f, "accounts.AccountOpened", "[]", 50);
    s_wake (f, "accounts.Deposited", NULL, 50);
    /* The bus carried them all (frames: 2 per message, 1 for the last 50). */
    s_assert_probe_saw (f, 2 * 600 + 50);
    /* Past an idle wake of the projector, nothing changed. */
    usleep (1500000);
    assert_int_equal (s_balance (f, "a1"), 100);
    assert_int_equal (s_balance (f, "a2"), 0);
    assert_int_equal (s_stat (f, "handled"), 3);
    assert_int_equal (s_stat (f, "checkpoints"), 3);
    assert_int_equal (s_stat (f, "lag"), 0);
    s_assert_no_error (f);

    /* A new event: wake-ups come before the head moves, then many times
     * after; it is folded once. */
    s_move (f, "a1", 5, 105);
    s_wake (f, "accounts.Deposited", real, 100);
    usleep (100000);
    s_bump_head (f);
    s_wake (f, "accounts.Deposited", real, 200);
    assert_true (s_wait_balance (f, "a1", 105, 5000));
    s_wake (f, "accounts.Deposited", real, 200);
    usleep (1500000);
    assert_int_equal (s_balance (f, "a1"), 105);
    assert_int_equal (s_stat (f, "handled"), 4);
    assert_int_equal (s_stat (f, "checkpoints"), 4);
    assert_int_equal (s_stat (f, "lag"), 0);
    s_assert_no_error (f);
}

/* A restarted projector goes on from its checkpoint: what it had folded
 * is not folded again. */
static void
test_restart_goes_on_from_the_checkpoint (void **state)
{
    fixture_t *f = *state;
    assert_true (s_wait_balance (f, "a1", 100, 5000));
    bctx_projector_destroy (&f->projector);
    assert_null (f->projector);
    s_move (f, "a1", 1, 101);
    s_move (f, "a2", 2, 2);
    s_bump_head (f);
    assert_int_equal (s_balance (f, "a1"), 100);
    s_start_projector (f);
    assert_true (s_wait_balance (f, "a1", 101, 10000));
    assert_true (s_wait_balance (f, "a2", 2, 10000));
    /* Only the two new events were read by the new projector. */
    assert_int_equal (s_stat (f, "handled"), 2);
    assert_int_equal (s_stat (f, "checkpoints"), 5);
    assert_int_equal (s_stat (f, "lag"), 0);
    s_assert_no_error (f);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown (test_catches_up_from_the_store_at_start,
                                         s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_missing_wake_ups_only_delay,
                                         s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_duplicate_and_junk_wake_ups_count_nothing_twice,
                                         s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_restart_goes_on_from_the_checkpoint,
                                         s_setup, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
