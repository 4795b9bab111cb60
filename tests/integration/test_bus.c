/*
 * test_bus - a subscriber on the host's bus (host.publish) receives every
 * committed event, in position order, with topic "<context>.<EventType>",
 * while several clients send commands at once.
 */
#include "harness.h"

#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>
#include <cmocka.h>

#define SENDERS 4
#define EACH 100

static h_host_t s_host;

static void *
s_sender (void *arg)
{
    int index = (int) (long) arg;
    for (int i = 0; i < EACH; i++) {
        json_t *r = h_send (s_host.endpoint, "accounts", "Deposit", NULL,
                            json_pack ("{s:s, s:i}", "account", index % 2 ? "b1" : "b2",
                                       "amount", 1 + i));
        json_decref (r);
    }
    return NULL;
}

/* Receives one bus message; returns the event (new) and the topic. */
static json_t *
s_receive (void *sub, char *topic, size_t size)
{
    zmq_pollitem_t item = { sub, 0, ZMQ_POLLIN, 0 };
    if (zmq_poll (&item, 1, 5000) != 1)
        return NULL;
    int n = zmq_recv (sub, topic, size - 1, 0);
    if (n < 0)
        return NULL;
    topic[n < (int) size - 1 ? n : (int) size - 1] = '\0';
    zmq_msg_t msg;
    zmq_msg_init (&msg);
    zmq_msg_recv (&msg, sub, 0);
    json_t *ev = json_loadb (zmq_msg_data (&msg), zmq_msg_size (&msg), 0, NULL);
    zmq_msg_close (&msg);
    return ev;
}

static void
test_subscriber_sees_every_event_in_order (void **state)
{
    (void) state;
    void *zctx = zmq_ctx_new ();
    void *sub = zmq_socket (zctx, ZMQ_SUB);
    int linger = 0;
    zmq_setsockopt (sub, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt (sub, ZMQ_SUBSCRIBE, "accounts.", 9);
    assert_int_equal (zmq_connect (sub, s_host.publish), 0);

    /* Open accounts until the subscription is live (ZeroMQ's slow joiner). */
    char topic[128];
    json_t *ev = NULL;
    int probes = 0;
    while (!ev && probes < 100) {
        char account[32];
        snprintf (account, sizeof account, "probe-%d", probes++);
        json_decref (h_send (s_host.endpoint, "accounts", "OpenAccount", NULL,
                             json_pack ("{s:s, s:s}", "account", account, "owner", "Gus")));
        ev = s_receive (sub, topic, sizeof topic);
    }
    assert_non_null (ev);
    json_int_t last = json_integer_value (json_object_get (ev, "position"));
    json_decref (ev);
    /* Drain the other probes' events. */
    while (last < probes) {
        ev = s_receive (sub, topic, sizeof topic);
        assert_non_null (ev);
        assert_int_equal (json_integer_value (json_object_get (ev, "position")), last + 1);
        last++;
        json_decref (ev);
    }
    json_decref (h_send (s_host.endpoint, "accounts", "OpenAccount", NULL,
                         json_pack ("{s:s, s:s}", "account", "b1", "owner", "Hal")));
    json_decref (h_send (s_host.endpoint, "accounts", "OpenAccount", NULL,
                         json_pack ("{s:s, s:s}", "account", "b2", "owner", "Ida")));
    pthread_t threads[SENDERS];
    for (long i = 0; i < SENDERS; i++)
        pthread_create (&threads[i], NULL, s_sender, (void *) i);
    int deposits = 0;
    for (int k = 0; k < 2 + SENDERS * EACH; k++) {
        ev = s_receive (sub, topic, sizeof topic);
        assert_non_null (ev);
        json_int_t pos = json_integer_value (json_object_get (ev, "position"));
        assert_int_equal (pos, last + 1);
        last = pos;
        const char *type = json_string_value (json_object_get (ev, "type"));
        char want[160];
        snprintf (want, sizeof want, "accounts.%s", type);
        assert_string_equal (topic, want);
        assert_string_equal (json_string_value (json_object_get (ev, "context")), "accounts");
        assert_non_null (json_object_get (ev, "metadata"));
        if (strcmp (type, "Deposited") == 0)
            deposits++;
        json_decref (ev);
    }
    for (int i = 0; i < SENDERS; i++)
        pthread_join (threads[i], NULL);
    assert_int_equal (deposits, SENDERS * EACH);
    /* Nothing more than what was committed. */
    zmq_pollitem_t item = { sub, 0, ZMQ_POLLIN, 0 };
    assert_int_equal (zmq_poll (&item, 1, 200), 0);
    zmq_close (sub);
    zmq_ctx_term (zctx);
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
        cmocka_unit_test (test_subscriber_sees_every_event_in_order),
    };
    return cmocka_run_group_tests (tests, s_setup, s_teardown);
}
