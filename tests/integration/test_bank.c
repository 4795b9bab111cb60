/*
 * test_bank - the bank across its two contexts (accounts, transfers) on the
 * real host, with kill -9 in the middle of the traffic.
 *
 * Ten accounts are opened with known deposits.  Then several clients send
 * 300 RequestTransfer commands (random accounts, a few to or from the
 * unknown account "nobody", some amounts larger than any balance), each
 * with a fixed command id, resending the same command whenever a request
 * gets no reply, while the host is killed with SIGKILL three times and
 * restarted.  Once every request is acknowledged and the read side has
 * caught up, the whole log is checked:
 *
 *   - money is conserved: the balances add up to what was deposited at
 *     setup, none is negative, and the balances projection agrees with a
 *     fold of the accounts log;
 *   - no command acted twice: command ids are unique in the accounts log;
 *   - every transfer ended, completed or failed, and moved exactly the
 *     money its outcome says: a completed one a withdrawal from `from` and
 *     a deposit to `to`; a refunded one a withdrawal and the refund; any
 *     other failed one nothing.
 *
 * The test runs twice: with the transfer-process reactor on its own
 * thread, and on 8 lanes (contexts[].reactor_lanes), where transfers of
 * different ids run at once.
 */
#include "harness.h"

#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#define N_ACCOUNTS   10
#define N_TRANSFERS  300
#define N_SENDERS    4
#define N_KILLS      3
#define WAVE         (N_TRANSFERS / N_KILLS) /* transfers sent between two kills */
#define REPLY_MS     1000         /* a request without a reply by then is resent */
#define NOBODY       (-1)         /* plan index of the unknown account */

/* One planned transfer. */
typedef struct {
    int from, to;                 /* account indexes, or NOBODY */
    json_int_t amount;            /* what it asks to move */
} plan_t;

/* What a sender saw of one request. */
typedef struct {
    int done;                     /* an answer came */
    int ok;                       /* the answer was ok:true */
    int resends;                  /* requests without a reply */
    char error[160];              /* the error answer, if any */
} outcome_t;

static plan_t s_plan[N_TRANSFERS];
static outcome_t s_outcome[N_TRANSFERS];
static json_int_t s_initial[N_ACCOUNTS];

/* The API endpoint of the host now running (it changes at each restart),
 * and how many waves of transfers the senders may send. */
static pthread_mutex_t s_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t s_opened = PTHREAD_COND_INITIALIZER;
static char s_endpoint[64];
static int s_waves;
static int s_acked[N_KILLS];       /* acknowledged transfers, per wave */

/* Lets the senders go on with the next wave, and returns once a quarter
 * of it is acknowledged: the rest is then on its way. */
static void
s_open_wave (void)
{
    pthread_mutex_lock (&s_lock);
    int wave = s_waves++;
    pthread_cond_broadcast (&s_opened);
    pthread_mutex_unlock (&s_lock);
    long long deadline = h_now_us () + 30 * 1000000LL;
    for (;;) {
        pthread_mutex_lock (&s_lock);
        int acked = s_acked[wave];
        pthread_mutex_unlock (&s_lock);
        if (acked >= WAVE / 4 || h_now_us () > deadline)
            return;
        usleep (1000);
    }
}

static void
s_set_endpoint (const char *endpoint)
{
    pthread_mutex_lock (&s_lock);
    snprintf (s_endpoint, sizeof s_endpoint, "%s", endpoint);
    pthread_mutex_unlock (&s_lock);
}

static void
s_account (char *out, size_t size, int index)
{
    if (index == NOBODY)
        snprintf (out, size, "nobody");
    else
        snprintf (out, size, "acc-%d", index);
}

/*
 * Sends one command with command id `id` until some answer comes back,
 * resending the very same request (same id) after each silence, for at
 * most 60 s.  Safe from any thread.  Return the reply (new) or NULL.
 */
static json_t *
s_send_until_answered (const char *context, const char *command, const char *id,
                       json_t *data_new, int *resends)
{
    json_t *req = json_pack ("{s:s, s:s, s:s, s:s, s:o}", "op", "send", "context", context,
                             "command", command, "id", id, "data", data_new);
    char *body = json_dumps (req, JSON_COMPACT);
    json_decref (req);
    json_t *reply = NULL;
    long long deadline = h_now_us () + 60 * 1000000LL;
    while (!reply && h_now_us () < deadline) {
        char endpoint[64];
        pthread_mutex_lock (&s_lock);
        snprintf (endpoint, sizeof endpoint, "%s", s_endpoint);
        pthread_mutex_unlock (&s_lock);
        reply = h_request (endpoint, body, strlen (body), REPLY_MS);
        if (!reply) {
            (*resends)++;
            usleep (50000);
        }
    }
    free (body);
    return reply;
}

/* A sender: transfers first, first + N_SENDERS, …, as fast as the host
 * answers, each wave once it is opened.  No cmocka assert here (not the
 * test's thread): what it saw goes to s_outcome. */
static void *
s_sender (void *arg)
{
    int first = (int) (intptr_t) arg;
    for (int k = first; k < N_TRANSFERS; k += N_SENDERS) {
        pthread_mutex_lock (&s_lock);
        while (s_waves <= k / WAVE)
            pthread_cond_wait (&s_opened, &s_lock);
        pthread_mutex_unlock (&s_lock);
        char id[32], from[32], to[32];
        snprintf (id, sizeof id, "t-%d", k);
        s_account (from, sizeof from, s_plan[k].from);
        s_account (to, sizeof to, s_plan[k].to);
        outcome_t *o = &s_outcome[k];
        json_t *reply = s_send_until_answered (
            "transfers", "RequestTransfer", id,
            json_pack ("{s:s, s:s, s:s, s:I}", "transfer", id, "from", from, "to", to,
                       "amount", s_plan[k].amount), &o->resends);
        o->done = reply != NULL;
        o->ok = json_is_true (json_object_get (reply, "ok"));
        if (reply && !o->ok) {
            char *text = json_dumps (reply, JSON_COMPACT);
            snprintf (o->error, sizeof o->error, "%s", text);
            free (text);
        }
        json_decref (reply);
        pthread_mutex_lock (&s_lock);
        s_acked[k / WAVE]++;
        pthread_mutex_unlock (&s_lock);
    }
    return NULL;
}

/* A plan with every kind of transfer, the same on every run. */
static void
s_make_plan (void)
{
    unsigned seed = 20240601;
    for (int k = 0; k < N_TRANSFERS; k++) {
        plan_t *p = &s_plan[k];
        p->from = rand_r (&seed) % N_ACCOUNTS;
        do
            p->to = rand_r (&seed) % N_ACCOUNTS;
        while (p->to == p->from);
        p->amount = 1 + rand_r (&seed) % 700;
        if (k % 10 == 3)
            p->amount = 1000000;          /* more than any balance */
        if (k % 23 == 5)
            p->to = NOBODY;               /* withdrawn, then refunded */
        else if (k % 29 == 7)
            p->from = NOBODY;             /* the withdrawal is refused */
    }
}

/* --- reading the host ------------------------------------------------ */

/* Every transfer is completed or failed in the transfers read models. */
static int
s_all_finished (const h_host_t *h, json_t **models)
{
    json_t *all = h_query_all (h, "transfers", 100);
    int finished = json_object_size (all) == N_TRANSFERS;
    const char *key;
    json_t *v;
    json_object_foreach (all, key, v) {
        const char *state = h_str (v, "state");
        if (!state || (strcmp (state, "completed") != 0 && strcmp (state, "failed") != 0))
            finished = 0;
    }
    if (models)
        *models = all;
    else
        json_decref (all);
    return finished;
}

/* Waits until the reactor and both projections have read everything and
 * every transfer has ended. */
static void
s_wait_settled (const h_host_t *h)
{
    long long deadline = h_now_us () + 60 * 1000000LL;
    for (;;) {
        json_t *st = h_stats (h);
        assert_non_null (st);
        int caught_up =
            h_int_at (st, "reactors.transfer-process.lag.transfers") == 0
            && h_int_at (st, "projections.balances.lag.accounts") == 0
            && h_int_at (st, "projections.transfers.lag.transfers") == 0;
        json_int_t parked = h_int_at (st, "reactors.transfer-process.parked");
        if (parked != 0) {
            char *text = json_dumps (json_object_get (st, "reactors"), JSON_COMPACT);
            fail_msg ("the transfer process parked events: %s", text);
        }
        if (caught_up && s_all_finished (h, NULL)) {
            json_decref (st);
            return;
        }
        if (h_now_us () > deadline) {
            char *text = json_dumps (st, JSON_COMPACT);
            fail_msg ("the read side did not settle within 60 s: %s", text);
        }
        json_decref (st);
        usleep (200000);
    }
}

/* --- the test -------------------------------------------------------- */

static void
test_money_is_conserved_across_kill_9 (void **state)
{
    h_host_t *h = *state;
    /* The test runs twice in this program: every wave and outcome anew. */
    s_waves = 0;
    memset (s_acked, 0, sizeof s_acked);
    memset (s_outcome, 0, sizeof s_outcome);
    s_make_plan ();
    s_set_endpoint (h->endpoint);

    /* Setup: open the accounts and fund them, with fixed ids. */
    json_int_t deposited = 0;
    for (int i = 0; i < N_ACCOUNTS; i++) {
        char account[32], id[48];
        int resends = 0;
        s_account (account, sizeof account, i);
        snprintf (id, sizeof id, "open-%s", account);
        json_t *r = s_send_until_answered ("accounts", "OpenAccount", id,
                                           json_pack ("{s:s, s:s}", "account", account,
                                                      "owner", "Ada"), &resends);
        assert_true (json_is_true (json_object_get (r, "ok")));
        json_decref (r);
        s_initial[i] = 1000 + 250 * i;
        deposited += s_initial[i];
        snprintf (id, sizeof id, "fund-%s", account);
        r = s_send_until_answered ("accounts", "Deposit", id,
                                   json_pack ("{s:s, s:I}", "account", account,
                                              "amount", s_initial[i]), &resends);
        assert_true (json_is_true (json_object_get (r, "ok")));
        json_decref (r);
    }

    /* The traffic comes in waves, and the host is killed in the middle of
     * each, at a slightly different moment: while requests are in flight
     * and while the transfer process is behind, in the middle of some
     * transfer. */
    pthread_t senders[N_SENDERS];
    for (int j = 0; j < N_SENDERS; j++)
        assert_int_equal (pthread_create (&senders[j], NULL, s_sender, (void *) (intptr_t) j), 0);
    static const int kill_after_ms[N_KILLS] = { 0, 15, 40 };
    json_int_t behind = 0, repeated = 0;
    for (int round = 0; round < N_KILLS; round++) {
        s_open_wave ();
        usleep ((useconds_t) kill_after_ms[round] * 1000);
        /* For the record (not a pass/fail matter): how far behind the
         * process was, and how many of its commands a restart repeated
         * (answered from the log: their ids were already there). */
        json_t *st = h_stats (h);
        behind += h_int_at (st, "reactors.transfer-process.lag.transfers");
        repeated += h_int_at (st, "contexts.accounts.duplicates");
        json_decref (st);
        assert_int_equal (h_stop (h, SIGKILL), 128 + SIGKILL);
        assert_int_equal (h_start (h), 0);
        s_set_endpoint (h->endpoint);
    }
    for (int j = 0; j < N_SENDERS; j++)
        pthread_join (senders[j], NULL);
    int resends = 0;
    for (int k = 0; k < N_TRANSFERS; k++) {
        if (!s_outcome[k].done)
            fail_msg ("transfer t-%d was never acknowledged", k);
        if (!s_outcome[k].ok)
            fail_msg ("transfer t-%d was refused: %s", k, s_outcome[k].error);
        resends += s_outcome[k].resends;
    }

    s_wait_settled (h);
    json_t *st = h_stats (h);
    repeated += h_int_at (st, "contexts.accounts.duplicates");
    json_decref (st);

    /* The logs, read back in full. */
    json_t *accounts = h_events (h, "accounts");
    json_t *transfers = h_events (h, "transfers");
    assert_non_null (accounts);
    assert_non_null (transfers);

    /* (b) A fold of the accounts log; command ids are unique, and each
     * event records the balance the fold gives. */
    json_int_t folded[N_ACCOUNTS] = { 0 };
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
        const char *type = h_str (e, "type");
        const char *account = h_str (e, "aggregate");
        int a = -1;
        if (sscanf (account, "acc-%d", &a) != 1 || a < 0 || a >= N_ACCOUNTS)
            fail_msg ("an event on unexpected account %s", account);
        json_t *data = json_object_get (e, "data");
        if (strcmp (type, "Deposited") == 0)
            folded[a] += h_int (data, "amount");
        else if (strcmp (type, "Withdrawn") == 0)
            folded[a] -= h_int (data, "amount");
        else
            assert_string_equal (type, "AccountOpened");
        if (strcmp (type, "AccountOpened") != 0)
            assert_int_equal (h_int (data, "balance"), folded[a]);
        assert_true (folded[a] >= 0);
        if (strncmp (id, "transfer-process:", 17) == 0) {
            const char *cause = h_str (meta, "causation_id");
            assert_non_null (cause);
            json_t *list = json_object_get (caused, cause);
            if (!list)
                json_object_set_new (caused, cause, list = json_array ());
            json_array_append (list, e);
        } else {
            /* Only the setup's commands, besides the transfer process. */
            assert_true (strncmp (id, "open-", 5) == 0 || strncmp (id, "fund-", 5) == 0);
        }
    }

    /* (a) The balances projection, page by page, agrees with the fold,
     * and the money adds up to what was deposited. */
    json_t *balances = h_query_all (h, "balances", 3);
    assert_int_equal (json_object_size (balances), N_ACCOUNTS);
    json_int_t sum = 0;
    for (int a = 0; a < N_ACCOUNTS; a++) {
        char account[32];
        s_account (account, sizeof account, a);
        json_t *m = json_object_get (balances, account);
        assert_non_null (m);
        assert_true (h_int (m, "balance") >= 0);
        assert_int_equal (h_int (m, "balance"), folded[a]);
        sum += h_int (m, "balance");
    }
    assert_int_equal (sum, deposited);

    /* (c), (d) Each transfer: requested once, ended once, and moved what its
     * outcome says. */
    json_t *requested = json_object ();  /* transfer -> position of TransferRequested */
    json_t *ended = json_object ();      /* transfer -> its TransferCompleted/Failed */
    json_array_foreach (transfers, i, e) {
        const char *type = h_str (e, "type");
        const char *t = h_str (e, "aggregate");
        if (strcmp (type, "TransferRequested") == 0) {
            assert_null (json_object_get (requested, t));
            json_object_set_new (requested, t, json_integer (h_int (e, "position")));
        } else {
            if (json_object_get (ended, t))
                fail_msg ("transfer %s ended twice", t);
            json_object_set (ended, t, e);
        }
    }
    json_t *models = NULL;
    assert_true (s_all_finished (h, &models));
    int completed = 0, refunded = 0, refused = 0, short_of_funds = 0;
    size_t movements = 0;
    for (int k = 0; k < N_TRANSFERS; k++) {
        char t[32], from[32], to[32], cause[64];
        snprintf (t, sizeof t, "t-%d", k);
        s_account (from, sizeof from, s_plan[k].from);
        s_account (to, sizeof to, s_plan[k].to);
        json_t *pos = json_object_get (requested, t);
        json_t *end = json_object_get (ended, t);
        json_t *model = json_object_get (models, t);
        assert_non_null (pos);
        assert_non_null (end);
        assert_non_null (model);
        assert_string_equal (h_str (model, "from"), from);
        assert_string_equal (h_str (model, "to"), to);
        assert_int_equal (h_int (model, "amount"), s_plan[k].amount);
        snprintf (cause, sizeof cause, "transfers:%lld", (long long) json_integer_value (pos));
        json_t *moved = json_object_get (caused, cause);
        size_t n = json_array_size (moved);
        movements += n;
        json_t *first = json_array_get (moved, 0), *second = json_array_get (moved, 1);
        if (strcmp (h_str (end, "type"), "TransferCompleted") == 0) {
            completed++;
            assert_string_equal (h_str (model, "state"), "completed");
            assert_int_equal (n, 2);
            assert_string_equal (h_str (first, "type"), "Withdrawn");
            assert_string_equal (h_str (first, "aggregate"), from);
            assert_string_equal (h_str (second, "type"), "Deposited");
            assert_string_equal (h_str (second, "aggregate"), to);
        } else {
            assert_string_equal (h_str (end, "type"), "TransferFailed");
            assert_string_equal (h_str (model, "state"), "failed");
            const char *reason = h_str (json_object_get (end, "data"), "reason");
            assert_non_null (reason);
            assert_string_equal (h_str (model, "reason"), reason);
            if (strstr (reason, "(refunded)")) {
                refunded++;
                assert_int_equal (s_plan[k].to, NOBODY);
                assert_int_equal (n, 2);
                assert_string_equal (h_str (first, "type"), "Withdrawn");
                assert_string_equal (h_str (first, "aggregate"), from);
                assert_string_equal (h_str (second, "type"), "Deposited");
                assert_string_equal (h_str (second, "aggregate"), from);
            } else {
                assert_int_equal (n, 0);
                if (s_plan[k].from == NOBODY) {
                    refused++;
                    assert_non_null (strstr (reason, "unknown account nobody"));
                } else {
                    short_of_funds++;
                    assert_non_null (strstr (reason, "insufficient funds"));
                }
            }
        }
        if (s_plan[k].from == NOBODY)
            assert_string_equal (h_str (end, "type"), "TransferFailed");
        for (size_t m = 0; m < n; m++)
            assert_int_equal (h_int (json_object_get (json_array_get (moved, m), "data"),
                                     "amount"), s_plan[k].amount);
    }
    /* Nothing moved money on behalf of a transfer that is not one of ours. */
    size_t all_moved = 0;
    const char *key;
    json_t *list;
    json_object_foreach (caused, key, list)
        all_moved += json_array_size (list);
    assert_int_equal (all_moved, movements);
    /* Every path of the process was taken. */
    assert_true (completed > 0);
    assert_true (refunded > 0);
    assert_true (refused > 0);
    assert_true (short_of_funds > 0);
    printf ("%d transfers: %d completed, %d refunded, %d refused, %d short of funds; "
            "%d kills with the process %lld events behind in all; %d requests resent; "
            "%lld commands of the process repeated\n", N_TRANSFERS, completed, refunded,
            refused, short_of_funds, N_KILLS, (long long) behind, resends, (long long) repeated);

    json_decref (models);
    json_decref (requested);
    json_decref (ended);
    json_decref (balances);
    json_decref (caused);
    json_decref (ids);
    json_decref (accounts);
    json_decref (transfers);
}

static int
s_start (void **state, int lanes)
{
    static h_host_t hosts[2];
    h_host_t *h = &hosts[lanes > 1];
    if (h_init (h) < 0)
        return -1;
    snprintf (h->contexts, sizeof h->contexts,
              "[{\"name\": \"accounts\", \"plugin\": \"%s\"},"
              " {\"name\": \"transfers\", \"plugin\": \"%s\", \"reactor_lanes\": %d}]",
              h_path ("plugins/accounts/accounts.so"), h_path ("plugins/transfers/transfers.so"),
              lanes);
    *state = h;
    return h_start (h);
}

static int
s_setup (void **state)
{
    return s_start (state, 1);
}

static int
s_setup_lanes (void **state)
{
    return s_start (state, 8);
}

static int
s_teardown (void **state)
{
    return h_teardown (*state);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown (test_money_is_conserved_across_kill_9,
                                         s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_money_is_conserved_across_kill_9,
                                         s_setup_lanes, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
