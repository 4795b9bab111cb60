/*
 * test_durability - kill -9 of a host under load, then a restart: every
 * acknowledged command's events are in the log exactly once, positions
 * have no gaps, and a client's retry of any command id (acknowledged or
 * not) applies nothing twice.
 *
 * The load comes from the real bin/bctx-bench, which logs every Deposit
 * it saw acknowledged.
 */
#include "harness.h"

#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#define ACCOUNTS 20

typedef struct {
    char id[96];              /* command id */
    int amount;               /* deposited */
    char account[32];         /* where */
} ack_t;

/* Reads the bench's ack log.  Return the count; *acks is new. */
static size_t
s_read_acks (const char *path, ack_t **acks)
{
    FILE *f = fopen (path, "r");
    size_t n = 0, cap = 1024;
    *acks = malloc (cap * sizeof **acks);
    if (!f)
        return 0;
    ack_t a;
    while (fscanf (f, "%95s %d %31s", a.id, &a.amount, a.account) == 3) {
        if (n == cap)
            *acks = realloc (*acks, (cap *= 2) * sizeof **acks);
        (*acks)[n++] = a;
    }
    fclose (f);
    return n;
}

/* Checks the whole log: gap-free positions, per-aggregate versions, each
 * command id at most once, and balances that add up.  Return the map
 * command id -> event (new). */
static json_t *
s_check_log (const h_host_t *h)
{
    json_t *events = h_events (h, "accounts");
    assert_non_null (events);
    json_t *by_id = json_object ();
    json_t *versions = json_object ();
    json_t *sums = json_object ();
    size_t i;
    json_t *e;
    json_array_foreach (events, i, e) {
        assert_int_equal (json_integer_value (json_object_get (e, "position")), (json_int_t) i + 1);
        const char *agg = json_string_value (json_object_get (e, "aggregate"));
        json_int_t v = json_integer_value (json_object_get (e, "version"));
        json_int_t last = json_integer_value (json_object_get (versions, agg));
        assert_int_equal (v, last + 1);
        json_object_set_new (versions, agg, json_integer (v));
        const char *id = json_string_value (json_object_get (json_object_get (e, "metadata"),
                                                             "command_id"));
        assert_non_null (id);
        if (json_object_get (by_id, id))
            fail_msg ("command %s is in the log twice", id);
        json_object_set (by_id, id, e);
        const char *type = json_string_value (json_object_get (e, "type"));
        json_t *data = json_object_get (e, "data");
        if (strcmp (type, "Deposited") == 0) {
            json_int_t sum = json_integer_value (json_object_get (sums, agg))
                             + json_integer_value (json_object_get (data, "amount"));
            json_object_set_new (sums, agg, json_integer (sum));
            /* The balance the event recorded is the sum of all deposits. */
            assert_int_equal (json_integer_value (json_object_get (data, "balance")), sum);
        }
    }
    json_decref (events);
    json_decref (versions);
    json_decref (sums);
    return by_id;
}

static void
test_kill_9_under_load_loses_and_doubles_nothing (void **state)
{
    (void) state;
    h_host_t h;
    assert_int_equal (h_init (&h), 0);
    assert_int_equal (h_start (&h), 0);
    char acklog[400];
    snprintf (acklog, sizeof acklog, "%s/acks.txt", h.dir);

    for (int round = 0; round < 3; round++) {
        char prefix[32], accounts[16];
        snprintf (prefix, sizeof prefix, "r%d", round);
        snprintf (accounts, sizeof accounts, "%d", ACCOUNTS);
        char *argv[] = { "bctx-bench", "-e", h.endpoint, "--setup", "--accounts", accounts,
                         "--clients", "4", "--seconds", "20", "--timeout", "1500",
                         "--prefix", prefix, "--ack-log", acklog, NULL };
        pid_t load = h_spawn ("bctx-bench", argv, NULL);
        usleep (400000 + round * 150000);
        assert_int_equal (h_stop (&h, SIGKILL), 128 + SIGKILL);
        /* The clients notice the silence and stop. */
        h_wait (load, 30000);
        assert_int_equal (h_start (&h), 0);

        ack_t *acks;
        size_t n = s_read_acks (acklog, &acks);
        assert_true (n > 0);
        json_t *by_id = s_check_log (&h);
        for (size_t k = 0; k < n; k++) {
            json_t *e = json_object_get (by_id, acks[k].id);
            if (!e)
                fail_msg ("acknowledged command %s is not in the log", acks[k].id);
            assert_string_equal (json_string_value (json_object_get (e, "aggregate")),
                                 acks[k].account);
            assert_int_equal (json_integer_value (json_object_get (json_object_get (e, "data"),
                                                                   "amount")), acks[k].amount);
        }
        size_t before = json_object_size (by_id);
        /* Retry every acknowledged command: each answers its first result. */
        for (size_t k = 0; k < n; k += 7) {
            json_t *r = h_send (h.endpoint, "accounts", "Deposit", acks[k].id,
                                json_pack ("{s:s, s:i}", "account", acks[k].account,
                                           "amount", acks[k].amount));
            assert_non_null (r);
            assert_true (json_is_true (json_object_get (r, "ok")));
            json_t *ev = json_array_get (json_object_get (r, "events"), 0);
            json_t *logged = json_object_get (by_id, acks[k].id);
            assert_int_equal (json_integer_value (json_object_get (ev, "position")),
                              json_integer_value (json_object_get (logged, "position")));
            json_decref (r);
        }
        json_decref (by_id);
        by_id = s_check_log (&h);
        assert_int_equal (json_object_size (by_id), before);
        json_decref (by_id);
        free (acks);
        printf ("round %d: %zu acknowledged, %zu commands in the log\n", round, n, before);
    }
    assert_int_equal (h_stop (&h, SIGTERM), 0);
    assert_int_equal (h_cleanup (&h), 0);
}

static void
test_sigterm_drains_and_exits_zero (void **state)
{
    (void) state;
    h_host_t h;
    assert_int_equal (h_init (&h), 0);
    assert_int_equal (h_start (&h), 0);
    char acklog[400];
    snprintf (acklog, sizeof acklog, "%s/acks.txt", h.dir);
    char *argv[] = { "bctx-bench", "-e", h.endpoint, "--setup", "--accounts", "5",
                     "--clients", "4", "--seconds", "20", "--timeout", "1500",
                     "--ack-log", acklog, NULL };
    pid_t load = h_spawn ("bctx-bench", argv, NULL);
    usleep (500000);
    assert_int_equal (h_stop (&h, SIGTERM), 0);
    h_wait (load, 30000);
    char *log = h_read_log (&h);
    assert_non_null (strstr (log, "draining"));
    assert_non_null (strstr (log, "stopped"));
    free (log);
    assert_int_equal (h_start (&h), 0);
    ack_t *acks;
    size_t n = s_read_acks (acklog, &acks);
    assert_true (n > 0);
    json_t *by_id = s_check_log (&h);
    for (size_t k = 0; k < n; k++)
        if (!json_object_get (by_id, acks[k].id))
            fail_msg ("acknowledged command %s is not in the log", acks[k].id);
    json_decref (by_id);
    free (acks);
    assert_int_equal (h_cleanup (&h), 0);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_kill_9_under_load_loses_and_doubles_nothing),
        cmocka_unit_test (test_sigterm_drains_and_exits_zero),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
