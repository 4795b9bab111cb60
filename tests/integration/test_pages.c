/*
 * test_pages - replies that could grow without bound stop at host.max_reply
 * bytes and say where to go on.  One host with host.max_message 2 MiB and
 * host.max_reply 3 MiB runs the accounts (with 1.1 MB owners, so no more
 * than two AccountOpened fit in a reply), the transfers (whose balances
 * read models hold the owners) and the test context "pile" (whose read
 * models grow with every Put).
 *
 *   1. A raw "events" request with limit 10000 gets at most max_reply
 *      bytes and a "next"; following next reaches every event exactly once,
 *      and ends with next null.  `bctx events` prints every event.
 *   2. An aggregate's events from any position are exactly the ones of
 *      the whole log with that aggregate and a position at least as big.
 *   3. A query list is cut within the budget with a "next" to pass as
 *      "after", null once nothing follows (also when the limit cut it).
 *   4. A read model over max_reply is too_large, by key or in a list,
 *      naming the key and the limit; the list goes on past it.
 */
#include "harness.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>
#include <cmocka.h>

#define MAX_REPLY    (3 * 1024 * 1024)
#define OWNER_SIZE   1100000      /* bytes of each big owner: two fit in a reply, three do not */
#define N_BIG        12           /* accounts with a big owner */
#define N_SMALL      30           /* deposits to two small accounts, interleaved */

static h_host_t s_host;
static void *s_zctx;              /* this test's own ZeroMQ context */
static json_int_t s_head;         /* the accounts log's last position */

/* One raw request; the reply's JSON text in *text (new) and its size.
 * Return the parsed reply (new), or NULL after 10 s. */
static json_t *
s_raw (const char *body, size_t *size)
{
    void *req = zmq_socket (s_zctx, ZMQ_REQ);
    int linger = 0;
    zmq_setsockopt (req, ZMQ_LINGER, &linger, sizeof linger);
    zmq_connect (req, s_host.endpoint);
    json_t *reply = NULL;
    *size = 0;
    if (zmq_send (req, body, strlen (body), 0) == (int) strlen (body)) {
        zmq_pollitem_t item = { req, 0, ZMQ_POLLIN, 0 };
        if (zmq_poll (&item, 1, 10000) == 1) {
            zmq_msg_t msg;
            zmq_msg_init (&msg);
            if (zmq_msg_recv (&msg, req, 0) >= 0) {
                *size = zmq_msg_size (&msg);
                reply = json_loadb (zmq_msg_data (&msg), zmq_msg_size (&msg), 0, NULL);
            }
            zmq_msg_close (&msg);
        }
    }
    zmq_close (req);
    return reply;
}

/* Sends a command and asserts it was accepted. */
static void
s_ok (const char *context, const char *command, json_t *data_new)
{
    json_t *r = h_send (s_host.endpoint, context, command, NULL, data_new);
    if (!json_is_true (json_object_get (r, "ok"))) {
        char *text = r ? json_dumps (r, JSON_COMPACT) : NULL;
        fail_msg ("%s %s: %s", context, command, text ? text : "no answer");
    }
    json_decref (r);
}

/* Waits (30 s at most) until projection has a read model under key. */
static void
s_wait_model (const char *projection, const char *key)
{
    char body[256];
    snprintf (body, sizeof body, "{\"op\":\"query\",\"projection\":\"%s\",\"key\":\"%s\"}",
              projection, key);
    long long deadline = h_now_us () + 30 * 1000000LL;
    for (int tries = 0; tries < 3000; tries++) {
        size_t size;
        json_t *r = s_raw (body, &size);
        int there = r && !json_is_null (json_object_get (r, "value"))
                    && json_object_get (r, "value");
        json_decref (r);
        if (there)
            return;
        if (h_now_us () > deadline)
            break;
        usleep (10000);
    }
    fail_msg ("projection %s has no read model %s after 30 s", projection, key);
}

static int
s_setup (void **state)
{
    (void) state;
    s_zctx = zmq_ctx_new ();
    if (h_init (&s_host) < 0)
        return -1;
    snprintf (s_host.host_extra, sizeof s_host.host_extra,
              "\"max_message\": %d, \"max_reply\": %d", 2 * 1024 * 1024, MAX_REPLY);
    snprintf (s_host.contexts, sizeof s_host.contexts,
              "[{\"name\": \"accounts\", \"plugin\": \"%s\"},"
              " {\"name\": \"transfers\", \"plugin\": \"%s\"},"
              " {\"name\": \"pile\", \"plugin\": \"%s\"}]",
              h_path ("plugins/accounts/accounts.so"), h_path ("plugins/transfers/transfers.so"),
              h_path ("tests/plugins/pile.so"));
    if (h_start (&s_host) < 0)
        return -1;
    /* Big accounts, each with a deposit; then two small accounts whose
     * deposits interleave. */
    char *owner = malloc (OWNER_SIZE + 1);
    memset (owner, 'o', OWNER_SIZE);
    owner[OWNER_SIZE] = '\0';
    for (int i = 0; i < N_BIG; i++) {
        char account[32];
        snprintf (account, sizeof account, "big-%02d", i);
        s_ok ("accounts", "OpenAccount", json_pack ("{s:s, s:s}", "account", account,
                                                    "owner", owner));
        s_ok ("accounts", "Deposit", json_pack ("{s:s, s:i}", "account", account,
                                                "amount", i + 1));
    }
    free (owner);
    s_ok ("accounts", "OpenAccount", json_pack ("{s:s, s:s}", "account", "s-a", "owner", "A"));
    s_ok ("accounts", "OpenAccount", json_pack ("{s:s, s:s}", "account", "s-b", "owner", "B"));
    for (int k = 0; k < N_SMALL; k++)
        s_ok ("accounts", "Deposit", json_pack ("{s:s, s:i}", "account", k % 3 ? "s-a" : "s-b",
                                                "amount", k + 1));
    s_head = 2 * N_BIG + 2 + N_SMALL;
    s_wait_model ("balances", "s-b");
    return 0;
}

static int
s_teardown (void **state)
{
    (void) state;
    int rc = h_cleanup (&s_host);
    zmq_ctx_term (s_zctx);
    /* cmocka does not count a failed group teardown: fail the run here. */
    if (rc != 0)
        exit (1);
    return 0;
}

/* 1. The whole log through raw pages, then through the CLI. */
static void
test_events_pages_within_budget (void **state)
{
    (void) state;
    json_int_t from = 1, cut = 0;
    int pages = 0;
    for (;; pages++) {
        assert_true (pages < 1000);
        char body[160];
        snprintf (body, sizeof body,
                  "{\"op\":\"events\",\"context\":\"accounts\",\"from\":%lld,\"limit\":10000}",
                  (long long) from);
        size_t size;
        json_t *r = s_raw (body, &size);
        assert_non_null (r);
        assert_true (json_is_true (json_object_get (r, "ok")));
        assert_true (size <= MAX_REPLY);
        json_t *events = json_object_get (r, "events");
        assert_true (json_array_size (events) >= 1);
        size_t i;
        json_t *e;
        json_array_foreach (events, i, e) {
            /* Each event once, in order, none missing. */
            assert_int_equal (json_integer_value (json_object_get (e, "position")), from);
            from++;
        }
        json_t *next = json_object_get (r, "next");
        assert_non_null (next);
        if (json_array_size (events) < 10000 && json_is_integer (next))
            cut++;
        if (json_is_null (next)) {
            json_decref (r);
            break;
        }
        assert_true (json_is_integer (next));
        assert_int_equal (json_integer_value (next), from);
        json_decref (r);
    }
    assert_int_equal (from, s_head + 1);
    /* The big owners made the budget cut pages short, more than once. */
    assert_true (cut >= N_BIG / 4);
    printf ("  %lld events in %d pages of at most %d bytes\n", (long long) s_head, pages + 1,
            MAX_REPLY);

    /* A page cut by its limit says where the rest starts, too. */
    size_t size;
    json_t *r = s_raw ("{\"op\":\"events\",\"context\":\"accounts\",\"from\":2,\"limit\":1}",
                       &size);
    assert_int_equal (json_array_size (json_object_get (r, "events")), 1);
    assert_int_equal (json_integer_value (json_object_get (r, "next")), 3);
    json_decref (r);
    /* … and one that ends the log exactly with its limit has nothing more. */
    char body[160];
    snprintf (body, sizeof body,
              "{\"op\":\"events\",\"context\":\"accounts\",\"from\":%lld,\"limit\":2}",
              (long long) s_head - 1);
    r = s_raw (body, &size);
    assert_int_equal (json_array_size (json_object_get (r, "events")), 2);
    assert_true (json_is_null (json_object_get (r, "next")));
    json_decref (r);

    /* The CLI follows next: one line per event, in order. */
    json_t *all = h_events (&s_host, "accounts");
    assert_non_null (all);
    assert_int_equal (json_array_size (all), (size_t) s_head);
    size_t i;
    json_t *e;
    json_array_foreach (all, i, e)
        assert_int_equal (json_integer_value (json_object_get (e, "position")), (json_int_t) i + 1);
    json_decref (all);
    /* With --from and --limit, too. */
    char *out = NULL;
    assert_int_equal (h_cli (&s_host, &out, "events", "--context", "accounts", "--from", "3",
                             "--limit", "9", NULL), 0);
    int lines = 0;
    for (char *p = out; p && (p = strchr (p, '\n')); p++)
        lines++;
    free (out);
    assert_int_equal (lines, 9);
}

/* 2. An aggregate's events from each position of the log. */
static void
test_aggregate_from_any_position (void **state)
{
    (void) state;
    json_t *all = h_events (&s_host, "accounts");
    assert_non_null (all);
    const char *aggregates[] = { "s-a", "s-b", "big-03" };
    for (size_t a = 0; a < 3; a++) {
        for (json_int_t from = 1; from <= s_head + 1; from++) {
            char body[200];
            snprintf (body, sizeof body, "{\"op\":\"events\",\"context\":\"accounts\","
                      "\"aggregate\":\"%s\",\"from\":%lld,\"limit\":10000}", aggregates[a],
                      (long long) from);
            size_t size;
            json_t *r = s_raw (body, &size);
            assert_non_null (r);
            json_t *got = json_object_get (r, "events");
            size_t k = 0, i;
            json_t *e;
            json_array_foreach (all, i, e) {
                if ((json_int_t) i + 1 < from || strcmp (h_str (e, "aggregate"), aggregates[a]))
                    continue;
                json_t *g = json_array_get (got, k++);
                if (!g || json_integer_value (json_object_get (g, "position")) != (json_int_t) i + 1)
                    fail_msg ("events of %s from %lld: position %zu missing", aggregates[a],
                              (long long) from, i + 1);
            }
            assert_int_equal (json_array_size (got), k);
            assert_true (json_is_null (json_object_get (r, "next")));
            json_decref (r);
        }
    }
    /* Limited: the next of an aggregate's page is its next event. */
    size_t size;
    json_t *r = s_raw ("{\"op\":\"events\",\"context\":\"accounts\",\"aggregate\":\"s-a\","
                       "\"limit\":1}", &size);
    assert_int_equal (json_array_size (json_object_get (r, "events")), 1);
    json_int_t second = 0;
    size_t i;
    json_t *e;
    int seen = 0;
    json_array_foreach (all, i, e)
        if (strcmp (h_str (e, "aggregate"), "s-a") == 0 && ++seen == 2)
            second = (json_int_t) i + 1;
    assert_int_equal (json_integer_value (json_object_get (r, "next")), second);
    json_decref (r);
    json_decref (all);
}

/* 3. A list of the balances (each 1.1 MB), page by page. */
static void
test_query_pages_within_budget (void **state)
{
    (void) state;
    json_t *keys = json_object ();
    char after[64] = "";
    int pages = 0, cut = 0;
    for (;; pages++) {
        assert_true (pages < 100);
        char body[200];
        if (after[0])
            snprintf (body, sizeof body, "{\"op\":\"query\",\"projection\":\"balances\","
                      "\"after\":\"%s\",\"limit\":1000}", after);
        else
            snprintf (body, sizeof body,
                      "{\"op\":\"query\",\"projection\":\"balances\",\"limit\":1000}");
        size_t size;
        json_t *r = s_raw (body, &size);
        assert_non_null (r);
        assert_true (json_is_true (json_object_get (r, "ok")));
        assert_true (size <= MAX_REPLY);
        json_t *items = json_object_get (r, "items");
        assert_true (json_array_size (items) >= 1);
        size_t i;
        json_t *item;
        const char *last = NULL;
        json_array_foreach (items, i, item) {
            last = h_str (item, "key");
            assert_non_null (last);
            assert_null (json_object_get (keys, last));
            json_object_set_new (keys, last, json_true ());
            if (strncmp (last, "big-", 4) == 0)
                assert_int_equal (strlen (h_str (json_object_get (item, "value"), "owner")),
                                  OWNER_SIZE);
        }
        json_t *next = json_object_get (r, "next");
        assert_non_null (next);
        if (json_is_null (next)) {
            json_decref (r);
            break;
        }
        cut++;
        assert_string_equal (json_string_value (next), last);
        snprintf (after, sizeof after, "%s", last);
        json_decref (r);
    }
    assert_int_equal (json_object_size (keys), N_BIG + 2);
    assert_true (cut >= N_BIG / 4);
    json_decref (keys);

    /* Cut by the limit: next when more follow, null when none does. */
    size_t size;
    json_t *r = s_raw ("{\"op\":\"query\",\"projection\":\"balances\",\"after\":\"big-11\","
                       "\"limit\":1}", &size);
    assert_string_equal (h_str (json_array_get (json_object_get (r, "items"), 0), "key"), "s-a");
    assert_string_equal (h_str (r, "next"), "s-a");
    json_decref (r);
    r = s_raw ("{\"op\":\"query\",\"projection\":\"balances\",\"after\":\"s-a\","
               "\"limit\":1}", &size);
    assert_string_equal (h_str (json_array_get (json_object_get (r, "items"), 0), "key"), "s-b");
    assert_true (json_is_null (json_object_get (r, "next")));
    json_decref (r);
    /* One read model by key, as before. */
    r = s_raw ("{\"op\":\"query\",\"projection\":\"balances\",\"key\":\"s-b\"}", &size);
    assert_string_equal (h_str (r, "key"), "s-b");
    assert_string_equal (h_str (json_object_get (r, "value"), "owner"), "B");
    json_decref (r);
    r = s_raw ("{\"op\":\"query\",\"projection\":\"balances\",\"key\":\"nobody\"}", &size);
    assert_true (json_is_true (json_object_get (r, "ok")));
    assert_true (json_is_null (json_object_get (r, "value")));
    json_decref (r);
}

/* 4. A read model bigger than a reply may be. */
static void
test_oversize_read_model (void **state)
{
    (void) state;
    char *text = malloc (OWNER_SIZE + 1);
    memset (text, 't', OWNER_SIZE);
    text[OWNER_SIZE] = '\0';
    s_ok ("pile", "Put", json_pack ("{s:s, s:s}", "id", "a-small", "text", "x"));
    for (int k = 0; k < 3; k++)
        s_ok ("pile", "Put", json_pack ("{s:s, s:s}", "id", "big", "text", text));
    free (text);
    s_ok ("pile", "Put", json_pack ("{s:s, s:s}", "id", "c-small", "text", "y"));
    s_wait_model ("piles", "c-small");

    size_t size;
    json_t *r = s_raw ("{\"op\":\"query\",\"projection\":\"piles\",\"key\":\"big\"}", &size);
    assert_non_null (r);
    assert_string_equal (h_error_code (r), "too_large");
    const char *msg = h_str (json_object_get (r, "error"), "message");
    assert_non_null (strstr (msg, "\"big\""));
    assert_non_null (strstr (msg, "3145728"));
    assert_non_null (strstr (msg, "host.max_reply"));
    json_decref (r);

    /* In a list: the page before it ends short of it ... */
    r = s_raw ("{\"op\":\"query\",\"projection\":\"piles\"}", &size);
    assert_int_equal (json_array_size (json_object_get (r, "items")), 1);
    assert_string_equal (h_str (r, "next"), "a-small");
    json_decref (r);
    /* ... the page that starts with it is refused, naming it ... */
    r = s_raw ("{\"op\":\"query\",\"projection\":\"piles\",\"after\":\"a-small\"}", &size);
    assert_string_equal (h_error_code (r), "too_large");
    assert_non_null (strstr (h_str (json_object_get (r, "error"), "message"), "\"big\""));
    json_decref (r);
    /* ... and the list goes on past it. */
    r = s_raw ("{\"op\":\"query\",\"projection\":\"piles\",\"after\":\"big\"}", &size);
    json_t *item = json_array_get (json_object_get (r, "items"), 0);
    assert_string_equal (h_str (item, "key"), "c-small");
    assert_string_equal (json_string_value (json_array_get (
                             json_object_get (json_object_get (item, "value"), "texts"), 0)), "y");
    assert_true (json_is_null (json_object_get (r, "next")));
    json_decref (r);

    /* The host still serves the small ones by key. */
    r = s_raw ("{\"op\":\"query\",\"projection\":\"piles\",\"key\":\"a-small\"}", &size);
    assert_true (json_is_true (json_object_get (r, "ok")));
    assert_int_equal (json_array_size (json_object_get (json_object_get (r, "value"), "texts")),
                      1);
    json_decref (r);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_events_pages_within_budget),
        cmocka_unit_test (test_aggregate_from_any_position),
        cmocka_unit_test (test_query_pages_within_budget),
        cmocka_unit_test (test_oversize_read_model),
    };
    return cmocka_run_group_tests (tests, s_setup, s_teardown);
}
