/*
 * test_concurrency - many clients at once: 8 clients depositing to one
 * account leave its balance exact, each aggregate's versions have no gaps,
 * and a context that is stuck in decide holds up only itself.
 */
#include "harness.h"

#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#define CLIENTS 8
#define DEPOSITS 150

static h_host_t s_host;

typedef struct {
    int index;                /* client number */
    long sum;                 /* what it deposited and saw acknowledged */
    int errors;               /* replies that were not ok */
    int out_of_order;         /* versions of its own replies not increasing */
} s_depositor_t;

static void *
s_deposit (void *arg)
{
    s_depositor_t *d = arg;
    json_int_t last_version = 0;
    for (int i = 0; i < DEPOSITS; i++) {
        int amount = 1 + (d->index * 31 + i) % 17;
        json_t *r = h_send (s_host.endpoint, "accounts", "Deposit", NULL,
                            json_pack ("{s:s, s:i}", "account", "shared", "amount", amount));
        if (!r || !json_is_true (json_object_get (r, "ok"))) {
            d->errors++;
        } else {
            d->sum += amount;
            json_t *ev = json_array_get (json_object_get (r, "events"), 0);
            json_int_t v = json_integer_value (json_object_get (ev, "version"));
            if (v <= last_version)
                d->out_of_order++;
            last_version = v;
        }
        json_decref (r);
    }
    return NULL;
}

static void
test_eight_clients_one_account (void **state)
{
    (void) state;
    json_t *r = h_send (s_host.endpoint, "accounts", "OpenAccount", NULL,
                        json_pack ("{s:s, s:s}", "account", "shared", "owner", "All"));
    assert_true (json_is_true (json_object_get (r, "ok")));
    json_decref (r);
    pthread_t threads[CLIENTS];
    s_depositor_t ds[CLIENTS];
    for (int i = 0; i < CLIENTS; i++) {
        ds[i] = (s_depositor_t) { .index = i };
        pthread_create (&threads[i], NULL, s_deposit, &ds[i]);
    }
    long expected = 0;
    for (int i = 0; i < CLIENTS; i++) {
        pthread_join (threads[i], NULL);
        assert_int_equal (ds[i].errors, 0);
        assert_int_equal (ds[i].out_of_order, 0);
        expected += ds[i].sum;
    }
    char *out = NULL;
    assert_int_equal (h_cli (&s_host, &out, "events", "--context", "accounts",
                             "--aggregate", "shared", NULL), 0);
    json_int_t version = 0, balance = -1, sum = 0;
    for (char *line = strtok (out, "\n"); line; line = strtok (NULL, "\n")) {
        json_t *e = h_json (line);
        assert_int_equal (json_integer_value (json_object_get (e, "version")), ++version);
        json_t *data = json_object_get (e, "data");
        if (version > 1) {
            sum += json_integer_value (json_object_get (data, "amount"));
            balance = json_integer_value (json_object_get (data, "balance"));
            assert_int_equal (balance, sum);
        }
        json_decref (e);
    }
    free (out);
    assert_int_equal (version, 1 + CLIENTS * DEPOSITS);
    assert_int_equal (balance, expected);
}

static atomic_int s_slow_done;

static void *
s_send_slow (void *arg)
{
    (void) arg;
    json_t *r = h_send (s_host.endpoint, "slow", "Wait", "slow-1",
                        json_pack ("{s:s}", "id", "w1"));
    atomic_store (&s_slow_done, r && json_is_true (json_object_get (r, "ok")) ? 1 : -1);
    json_decref (r);
    return NULL;
}

static void
test_a_stuck_context_holds_up_only_itself (void **state)
{
    (void) state;
    char gate[400];
    snprintf (gate, sizeof gate, "%s/gate", s_host.dir);
    pthread_t t;
    pthread_create (&t, NULL, s_send_slow, NULL);
    /* Until the slow command is in decide, "stats" shows it taken. */
    for (int i = 0; i < 500; i++) {
        json_t *s = h_request (s_host.endpoint, "{\"op\":\"stats\"}", 14, 5000);
        json_int_t taken = json_integer_value (json_object_get (
            json_object_get (json_object_get (s, "contexts"), "slow"), "commands"));
        json_decref (s);
        if (taken >= 1)
            break;
        usleep (10000);
    }
    /* The slow context is stuck; accounts still answers, many times. */
    for (int i = 0; i < 20; i++) {
        char account[32];
        snprintf (account, sizeof account, "busy-%d", i);
        json_t *r = h_send (s_host.endpoint, "accounts", "OpenAccount", NULL,
                            json_pack ("{s:s, s:s}", "account", account, "owner", "Fay"));
        assert_true (json_is_true (json_object_get (r, "ok")));
        json_decref (r);
    }
    assert_int_equal (atomic_load (&s_slow_done), 0);
    /* Open the gate: the slow command completes too. */
    FILE *f = fopen (gate, "w");
    assert_non_null (f);
    fclose (f);
    pthread_join (t, NULL);
    assert_int_equal (atomic_load (&s_slow_done), 1);
}

static int
s_setup (void **state)
{
    (void) state;
    if (h_init (&s_host) < 0)
        return -1;
    snprintf (s_host.contexts, sizeof s_host.contexts,
              "[{\"name\": \"accounts\", \"plugin\": \"%s\"},"
              " {\"name\": \"slow\", \"plugin\": \"%s\", \"settings\": {\"gate\": \"%s/gate\"}}]",
              h_path ("plugins/accounts/accounts.so"), h_path ("tests/plugins/slow.so"),
              s_host.dir);
    return h_start (&s_host);
}

static int
s_teardown (void **state)
{
    (void) state;
    return h_teardown (&s_host);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_eight_clients_one_account),
        cmocka_unit_test (test_a_stuck_context_holds_up_only_itself),
    };
    return cmocka_run_group_tests (tests, s_setup, s_teardown);
}
