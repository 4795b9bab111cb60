/*
 * test_sighup - SIGHUP makes a running host re-read its config: a context
 * added is loaded, a context removed is drained and unloaded, a changed
 * plugin path is reloaded, and a bad new config changes nothing.
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

static h_host_t s_host;

/* Rewrites the config with new contexts (same host section, same ports). */
static void
s_rewrite (const char *contexts)
{
    FILE *f = fopen (s_host.config, "w");
    assert_non_null (f);
    fprintf (f, "{\"host\": {\"http\": false, \"name\": \"test\", \"api\": \"%s\", \"publish\": \"%s\","
                " \"data\": \"%s/data\"},\n \"contexts\": %s}\n",
             s_host.endpoint, s_host.publish, s_host.dir, contexts);
    fclose (f);
}

/* The "contexts" reply, polled until pred holds or 5 s pass. */
static json_t *
s_contexts_until (int (*pred) (json_t *))
{
    json_t *r = NULL;
    for (int i = 0; i < 250; i++) {
        json_decref (r);
        r = h_request (s_host.endpoint, "{\"op\":\"contexts\"}", 17, 2000);
        if (r && pred (r))
            break;
        usleep (20000);
    }
    return r;
}

static int
s_two (json_t *r)
{
    return json_array_size (json_object_get (r, "contexts")) == 2;
}

static int
s_one (json_t *r)
{
    return json_array_size (json_object_get (r, "contexts")) == 1;
}

static int
s_v2 (json_t *r)
{
    /* A context whose process did not answer in time is listed without
     * its version. */
    const char *v = json_string_value (json_object_get (h_context_in (r, "accounts"),
                                                        "version"));
    return v && strcmp (v, "2.0.0") == 0;
}

static void
test_sighup_applies_a_changed_config (void **state)
{
    (void) state;
    const char *acc = h_path ("plugins/accounts/accounts.so");
    char ctx[2048];
    json_t *r = h_send (s_host.endpoint, "accounts", "OpenAccount", NULL,
                        json_pack ("{s:s, s:s}", "account", "a1", "owner", "Ada"));
    assert_true (json_is_true (json_object_get (r, "ok")));
    json_decref (r);

    /* Add transfers. */
    snprintf (ctx, sizeof ctx, "[{\"name\": \"accounts\", \"plugin\": \"%s\"},"
                               " {\"name\": \"transfers\", \"plugin\": \"%s\"}]",
              acc, h_path ("plugins/transfers/transfers.so"));
    s_rewrite (ctx);
    kill (s_host.pid, SIGHUP);
    r = s_contexts_until (s_two);
    assert_non_null (h_context_in (r, "transfers"));
    json_decref (r);
    r = h_send (s_host.endpoint, "transfers", "RequestTransfer", NULL,
                json_pack ("{s:s, s:s, s:s, s:i}", "transfer", "t1", "from", "a1",
                           "to", "a2", "amount", 5));
    assert_true (json_is_true (json_object_get (r, "ok")));
    json_decref (r);

    /* A bad config changes nothing. */
    FILE *f = fopen (s_host.config, "w");
    fputs ("{\"contexts\": [", f);
    fclose (f);
    kill (s_host.pid, SIGHUP);
    usleep (300000);
    r = h_request (s_host.endpoint, "{\"op\":\"contexts\"}", 17, 2000);
    assert_int_equal (json_array_size (json_object_get (r, "contexts")), 2);
    json_decref (r);
    char *log = h_read_log (&s_host);
    assert_non_null (strstr (log, "refused, nothing changed"));
    free (log);

    /* Removing accounts while balances (in transfers) consumes it: refused. */
    snprintf (ctx, sizeof ctx, "[{\"name\": \"transfers\", \"plugin\": \"%s\"}]",
              h_path ("plugins/transfers/transfers.so"));
    s_rewrite (ctx);
    kill (s_host.pid, SIGHUP);
    usleep (300000);
    r = h_request (s_host.endpoint, "{\"op\":\"contexts\"}", 17, 2000);
    assert_int_equal (json_array_size (json_object_get (r, "contexts")), 2);
    json_decref (r);
    log = h_read_log (&s_host);
    assert_non_null (strstr (log, "consumes context accounts"));
    free (log);

    /* Remove transfers and change accounts' plugin: drained, reloaded. */
    snprintf (ctx, sizeof ctx, "[{\"name\": \"accounts\", \"plugin\": \"%s\"}]",
              h_path ("plugins/accounts/accounts_v2.so"));
    s_rewrite (ctx);
    kill (s_host.pid, SIGHUP);
    r = s_contexts_until (s_one);
    assert_null (h_context_in (r, "transfers"));
    json_decref (r);
    r = s_contexts_until (s_v2);
    assert_true (s_v2 (r));
    json_decref (r);
    r = h_send (s_host.endpoint, "transfers", "RequestTransfer", NULL,
                json_pack ("{s:s, s:s, s:s, s:i}", "transfer", "t2", "from", "a1",
                           "to", "a2", "amount", 5));
    assert_string_equal (json_string_value (json_object_get (json_object_get (r, "error"),
                                                             "code")), "unknown_context");
    json_decref (r);
    r = h_send (s_host.endpoint, "accounts", "Deposit", NULL,
                json_pack ("{s:s, s:i}", "account", "a1", "amount", 9));
    assert_true (json_is_true (json_object_get (r, "ok")));
    json_decref (r);
}

/* The reloads count of context name in a contexts reply, or -1. */
static json_int_t
s_reloads (json_t *r, const char *name)
{
    json_t *c = h_context_in (r, name);
    return c ? json_integer_value (json_object_get (c, "reloads")) : -1;
}

/* Both contexts handed over once more, with no reload error. */
static json_int_t s_want_accounts, s_want_transfers;
static int
s_both_handed_over (json_t *r)
{
    json_t *a = h_context_in (r, "accounts"), *t = h_context_in (r, "transfers");
    return s_reloads (r, "accounts") == s_want_accounts
           && s_reloads (r, "transfers") == s_want_transfers
           && a && json_is_null (json_object_get (a, "last_reload_error"))
           && t && json_is_null (json_object_get (t, "last_reload_error"));
}

/* One SIGHUP that changes two contexts' plugins: two handovers at once,
 * both switch, and both contexts serve. */
static void
test_sighup_hands_two_contexts_over_at_once (void **state)
{
    (void) state;
    char ctx[2048];
    snprintf (ctx, sizeof ctx, "[{\"name\": \"accounts\", \"plugin\": \"%s\"},"
                               " {\"name\": \"transfers\", \"plugin\": \"%s\"}]",
              h_path ("plugins/accounts/accounts_v2.so"), h_path ("plugins/transfers/transfers.so"));
    s_rewrite (ctx);
    kill (s_host.pid, SIGHUP);
    json_t *r = s_contexts_until (s_two);
    assert_non_null (h_context_in (r, "transfers"));
    s_want_accounts = s_reloads (r, "accounts") + 1;
    s_want_transfers = s_reloads (r, "transfers") + 1;
    json_decref (r);
    snprintf (ctx, sizeof ctx, "[{\"name\": \"accounts\", \"plugin\": \"%s\"},"
                               " {\"name\": \"transfers\", \"plugin\": \"%s\"}]",
              h_path ("plugins/accounts/accounts.so"),
              h_path ("plugins/transfers/transfers_v2.so"));
    s_rewrite (ctx);
    kill (s_host.pid, SIGHUP);
    r = s_contexts_until (s_both_handed_over);
    if (!s_both_handed_over (r)) {
        char *text = r ? json_dumps (r, JSON_COMPACT) : NULL;
        fail_msg ("both contexts were not handed over: %s", text ? text : "no reply");
    }
    const char *v = json_string_value (json_object_get (h_context_in (r, "accounts"),
                                                        "version"));
    assert_non_null (v);
    assert_string_equal (v, "1.0.0");
    json_decref (r);
    r = h_send (s_host.endpoint, "accounts", "Deposit", NULL,
                json_pack ("{s:s, s:i}", "account", "a1", "amount", 1));
    assert_true (json_is_true (json_object_get (r, "ok")));
    json_decref (r);
    r = h_send (s_host.endpoint, "transfers", "RequestTransfer", NULL,
                json_pack ("{s:s, s:s, s:s, s:i}", "transfer", "t3", "from", "a1",
                           "to", "a2", "amount", 1));
    assert_true (json_is_true (json_object_get (r, "ok")));
    json_decref (r);
}

static int
s_setup (void **state)
{
    (void) state;
    return h_init (&s_host) < 0 ? -1 : h_start (&s_host);
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
        cmocka_unit_test (test_sighup_applies_a_changed_config),
        cmocka_unit_test (test_sighup_hands_two_contexts_over_at_once),
    };
    return cmocka_run_group_tests (tests, s_setup, s_teardown);
}
