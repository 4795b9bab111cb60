/*
 * test_http_ops - the HTTP gateway's ops on the bank (accounts and
 * transfers): a read model by key and in pages, the admin ops with the
 * token (replay, retry, reload), and 503 `unavailable` from a context
 * process that stopped answering, which the supervisor then ends and
 * starts again while the other context goes on serving.
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

#define TIMEOUT_MS 1000            /* host.handler_timeout_ms here */
#define TOKEN      "-H 'Authorization: Bearer s3cret'"

static h_host_t s_host;
static char s_base[64];

/* method path (with curl's extra arguments): the status, the body parsed
 * into *reply (new; NULL when it was no JSON). */
static int
s_call (const char *method, const char *path, const char *extra, json_t **reply)
{
    char url[256], *body;
    snprintf (url, sizeof url, "%s%s", s_base, path);
    int status = h_http (&s_host, method, url, extra, &body);
    *reply = h_json (body);
    if (!*reply)
        fprintf (stderr, "%s %s: %d, no JSON: %s\n", method, path, status, body);
    free (body);
    return status;
}

/* method path answers 200 and ok; the reply (new). */
static json_t *
s_ok (const char *method, const char *path, const char *extra)
{
    json_t *reply;
    int status = s_call (method, path, extra, &reply);
    if (status != 200 || !h_ok (reply)) {
        char *text = reply ? json_dumps (reply, 0) : NULL;
        fail_msg ("%s %s: %d %s", method, path, status, text ? text : "(none)");
    }
    return reply;
}

/* Waits up to 10 s for the balances read model of account to show
 * balance.  Return 1 when it does. */
static int
s_balance_is (const char *account, json_int_t balance)
{
    char path[128];
    snprintf (path, sizeof path, "/projections/balances/%s", account);
    for (long long end = h_deadline (10); h_now_us () < end; usleep (50 * 1000)) {
        json_t *reply;
        int status = s_call ("GET", path, NULL, &reply);
        json_int_t got = h_int_at (reply, "value.balance");
        int found = status == 200 && json_is_object (json_object_get (reply, "value"));
        json_decref (reply);
        if (found && got == balance)
            return 1;
    }
    return 0;
}

/* Two accounts, a deposit and a transfer: the read model by key, a
 * missing key (null), and every account in pages of one. */
static void
test_read_model (void **state)
{
    (void) state;
    json_decref (s_ok ("POST", "/contexts/accounts/commands/OpenAccount",
                       "-d '{\"account\":\"a1\",\"owner\":\"Ann\"}'"));
    json_decref (s_ok ("POST", "/contexts/accounts/commands/OpenAccount",
                       "-d '{\"account\":\"a2\",\"owner\":\"Bob\"}'"));
    json_decref (s_ok ("POST", "/contexts/accounts/commands/Deposit",
                       "-d '{\"account\":\"a1\",\"amount\":50}'"));
    json_decref (s_ok ("POST", "/contexts/transfers/commands/RequestTransfer",
                       "-d '{\"transfer\":\"t1\",\"from\":\"a1\",\"to\":\"a2\",\"amount\":30}'"));
    /* The reactor moves the money: both read models catch up. */
    assert_true (s_balance_is ("a1", 20));
    assert_true (s_balance_is ("a2", 30));
    json_t *r = s_ok ("GET", "/projections/balances/a1", NULL);
    h_assert_str (h_str (json_object_get (r, "value"), "owner"), "Ann");
    json_decref (r);
    r = s_ok ("GET", "/projections/balances/nobody", NULL);
    assert_true (json_is_null (json_object_get (r, "value")));
    json_decref (r);
    /* Pages of one: a1, then a2, then no next page. */
    r = s_ok ("GET", "/projections/balances?limit=1", NULL);
    json_t *items = json_object_get (r, "items");
    assert_int_equal (json_array_size (items), 1);
    h_assert_str (h_str (json_array_get (items, 0), "key"), "a1");
    h_assert_str (h_str (r, "next"), "a1");
    json_decref (r);
    r = s_ok ("GET", "/projections/balances?after=a1&limit=1", NULL);
    items = json_object_get (r, "items");
    assert_int_equal (json_array_size (items), 1);
    h_assert_str (h_str (json_array_get (items, 0), "key"), "a2");
    assert_true (json_is_null (json_object_get (r, "next")));
    json_decref (r);
    json_t *bad;
    assert_int_equal (s_call ("GET", "/projections/balances?limit=x", NULL, &bad), 400);
    h_assert_str (h_error_code (bad), "bad_request");
    json_decref (bad);
}

/* With the token each admin op is carried out, not refused. */
static void
test_admin_ops (void **state)
{
    (void) state;
    json_t *r = s_ok ("POST", "/projections/balances/replay", TOKEN);
    assert_true (json_is_true (json_object_get (r, "rebuilding")));
    json_decref (r);
    /* The rebuilt read model is the same. */
    assert_true (s_balance_is ("a1", 20));
    assert_true (s_balance_is ("a2", 30));
    r = s_ok ("POST", "/reactors/transfer-process/retry", TOKEN);
    assert_int_equal (h_int (r, "parked"), 0);
    json_decref (r);
    r = s_ok ("POST", "/contexts/accounts/reload", TOKEN);
    h_assert_str (h_str (r, "context"), "accounts");
    h_assert_str (h_str (r, "version"), "1.0.0");
    json_decref (r);
    /* The new version's process serves. */
    json_decref (s_ok ("POST", "/contexts/accounts/commands/Deposit",
                       "-d '{\"account\":\"a1\",\"amount\":1}'"));
    /* Without the token the same op is refused. */
    json_t *refused;
    assert_int_equal (s_call ("POST", "/projections/balances/replay", NULL, &refused), 403);
    h_assert_str (h_error_code (refused), "forbidden");
    json_decref (refused);
}

/* A process that was idle a long time and then stalls briefly (SIGSTOP
 * for less than handler_timeout_ms + 2 s) while a request with a shorter
 * deadline (a replay's) waits is not taken for frozen: its silence
 * before the request does not count. */
static void
test_brief_stall_is_not_killed (void **state)
{
    (void) state;
    json_t *st = s_ok ("GET", "/stats", NULL);
    pid_t pid = (pid_t) h_int_at (st, "contexts.transfers.process.pid");
    json_decref (st);
    assert_true (pid > 0);
    usleep ((TIMEOUT_MS + 2500) * 1000);      /* idle: it says nothing */
    assert_int_equal (kill (pid, SIGSTOP), 0);
    json_t *r;
    int status = s_call ("POST", "/projections/balances/replay", TOKEN, &r);
    json_decref (r);
    usleep (500 * 1000);                      /* stopped 2.5 s in all, under 3 s */
    assert_int_equal (kill (pid, SIGCONT), 0);
    assert_true (status == 200 || status == 503);
    st = s_ok ("GET", "/stats", NULL);
    assert_int_equal (h_int_at (st, "contexts.transfers.process.pid"), pid);
    json_decref (st);
    char *log = h_read_log (&s_host);
    assert_null (strstr (log, "sent nothing for"));
    free (log);
}

/* A context process that is stopped (SIGSTOP) answers nothing: the
 * command gets 503 within handler_timeout_ms + 2 s and a margin, the
 * supervisor kills the process and starts another, transfers serves all
 * along, and the same command sent again is taken. */
static void
test_frozen_context (void **state)
{
    (void) state;
    json_t *st = s_ok ("GET", "/stats", NULL);
    pid_t pid = (pid_t) h_int_at (st, "contexts.accounts.process.pid");
    json_int_t restarts = h_int_at (st, "contexts.accounts.process.restarts");
    json_decref (st);
    assert_true (pid > 0);
    assert_int_equal (kill (pid, SIGSTOP), 0);
    long long t0 = h_now_us ();
    json_t *r;
    int status = s_call ("POST", "/contexts/accounts/commands/Deposit",
                         "-H 'Idempotency-Key: frozen-1' -d '{\"account\":\"a1\",\"amount\":7}'",
                         &r);
    long long took_ms = (h_now_us () - t0) / 1000;
    assert_int_equal (status, 503);
    h_assert_str (h_error_code (r), "unavailable");
    h_assert_contains (h_error_message (r), "may be sent again");
    json_decref (r);
    if (took_ms > TIMEOUT_MS + 2000 + 3000)
        fail_msg ("answered after %lld ms", took_ms);
    /* The other context serves meanwhile. */
    json_decref (s_ok ("POST", "/contexts/transfers/commands/RequestTransfer",
                       "-d '{\"transfer\":\"t2\",\"from\":\"a2\",\"to\":\"a1\",\"amount\":5}'"));
    /* The stopped process is ended and another started. */
    assert_true (h_gone (pid, 10000));
    char *log = h_wait_log (&s_host, "sent nothing for", 5000);
    assert_non_null (log);
    free (log);
    int served = 0;
    for (long long end = h_deadline (15); !served && h_now_us () < end; usleep (100 * 1000)) {
        status = s_call ("POST", "/contexts/accounts/commands/Deposit",
                         "-H 'Idempotency-Key: frozen-1' -d '{\"account\":\"a1\",\"amount\":7}'",
                         &r);
        served = status == 200 && h_ok (r);
        json_decref (r);
    }
    assert_true (served);
    st = s_ok ("GET", "/stats", NULL);
    assert_int_not_equal (h_int_at (st, "contexts.accounts.process.pid"), pid);
    assert_true (h_int_at (st, "contexts.accounts.process.restarts") > restarts);
    h_assert_contains (h_str (h_at (st, "contexts.accounts.process"), "last_exit"), "hung");
    json_decref (st);
    /* a1: 20, +1 (test_admin_ops), +5 from t2, +7 once. */
    assert_true (s_balance_is ("a1", 33));
}

int
main (void)
{
    if (h_init (&s_host) < 0)
        return 1;
    int port = 21000 + (int) (getpid () % 5000);
    snprintf (s_base, sizeof s_base, "http://127.0.0.1:%d", port);
    snprintf (s_host.host_extra, sizeof s_host.host_extra,
              "\"http\": \"127.0.0.1:%d\", \"http_admin_token\": \"s3cret\", "
              "\"handler_timeout_ms\": %d", port, TIMEOUT_MS);
    snprintf (s_host.contexts, sizeof s_host.contexts,
              "[{\"name\": \"accounts\", \"plugin\": \"%s\"},"
              " {\"name\": \"transfers\", \"plugin\": \"%s\"}]",
              h_path ("plugins/accounts/accounts.so"), h_path ("plugins/transfers/transfers.so"));
    if (h_start (&s_host) < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_read_model),
        cmocka_unit_test (test_admin_ops),
        cmocka_unit_test (test_brief_stall_is_not_killed),
        cmocka_unit_test (test_frozen_context),
    };
    int failed = cmocka_run_group_tests (tests, NULL, NULL);
    if (h_cleanup (&s_host) != 0)
        return 1;
    return failed;
}
