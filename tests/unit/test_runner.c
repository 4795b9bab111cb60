/*
 * test_runner - unit tests of host/runner, the actor shell of projections,
 * reactors and bridges: commands reach the thread in the order they were
 * sent (those sent before start too); bctx_runner_stop returns only after
 * the thread acknowledged "$TERM" and ended, and waits for a thread busy
 * with its work; bctx_runner_wait tells the pipe from another socket;
 * destroy is idempotent, started or not.
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
#include <unistd.h>
#include <zmq.h>

#include "runner.h"

enum { C_RED = 1, C_GREEN, C_BLUE };

static const char *const s_commands[] = {
    [C_RED] = "RED",
    [C_GREEN] = "GREEN",
    [C_BLUE] = "BLUE",
};

#define S_N_COMMANDS (sizeof s_commands / sizeof *s_commands)

/* What a test thread saw and did. */
typedef struct {
    int seen[64];                 /* the commands received, in order */
    atomic_int n_seen;            /* how many */
    int busy_ms;                  /* work before it reads its first command */
    atomic_int busy;              /* it is doing that work */
    atomic_int worked;            /* it finished that work */
    atomic_int ended;             /* its body is about to return */
} s_log_t;

/* A runner's body: records every command until $TERM. */
static void
s_record (bctx_runner_t *runner, void *arg)
{
    s_log_t *log = arg;
    if (log->busy_ms) {
        atomic_store (&log->busy, 1);
        usleep ((useconds_t) log->busy_ms * 1000);
        atomic_store (&log->worked, 1);
    }
    for (;;) {
        int cmd;
        while ((cmd = bctx_runner_recv (runner)) > 0) {
            int n = atomic_load (&log->n_seen);
            if (n < 64) {
                log->seen[n] = cmd;
                atomic_store (&log->n_seen, n + 1);
            }
        }
        if (cmd == BCTX_RUNNER_TERM)
            break;
        if (bctx_runner_wait (runner, NULL, 1000) < 0)
            break;
    }
    /* Something a stop that returned early would not see. */
    usleep (20000);
    atomic_store (&log->ended, 1);
}

/* A new runner in zctx, or a failed test. */
static bctx_runner_t *
s_runner (void *zctx, const char *name)
{
    char err[256] = "";
    bctx_runner_t *r = bctx_runner_new (zctx, name, s_commands, S_N_COMMANDS, err, sizeof err);
    if (!r)
        fail_msg ("bctx_runner_new: %s", err);
    return r;
}

/* Waits (5 s at most) until the thread has seen n commands. */
static void
s_wait_seen (s_log_t *log, int n)
{
    for (int i = 0; i < 500 && atomic_load (&log->n_seen) < n; i++)
        usleep (10000);
    assert_int_equal (atomic_load (&log->n_seen), n);
}

static void
test_commands_in_order (void **state)
{
    (void) state;
    void *zctx = zmq_ctx_new ();
    bctx_runner_t *r = s_runner (zctx, "order");
    s_log_t log = { .n_seen = 0 };
    /* Sent before the thread runs: they wait on the pipe. */
    assert_int_equal (bctx_runner_send (r, C_BLUE), 0);
    assert_int_equal (bctx_runner_send (r, C_RED), 0);
    assert_int_equal (bctx_runner_start (r, s_record, &log), 0);
    int sent[] = { C_GREEN, C_GREEN, C_RED, C_BLUE, C_RED };
    for (size_t i = 0; i < sizeof sent / sizeof *sent; i++)
        assert_int_equal (bctx_runner_send (r, sent[i]), 0);
    s_wait_seen (&log, 7);
    int expected[] = { C_BLUE, C_RED, C_GREEN, C_GREEN, C_RED, C_BLUE, C_RED };
    for (size_t i = 0; i < 7; i++)
        assert_int_equal (log.seen[i], expected[i]);
    bctx_runner_destroy (&r);
    assert_null (r);
    assert_int_equal (atomic_load (&log.ended), 1);
    zmq_ctx_term (zctx);
}

static void
test_stop_waits_for_the_thread (void **state)
{
    (void) state;
    void *zctx = zmq_ctx_new ();
    bctx_runner_t *r = s_runner (zctx, "stop");
    s_log_t log = { .n_seen = 0 };
    assert_int_equal (bctx_runner_start (r, s_record, &log), 0);
    assert_int_equal (bctx_runner_send (r, C_RED), 0);
    s_wait_seen (&log, 1);
    bctx_runner_stop (r);
    /* The thread's last step before returning is done by now. */
    assert_int_equal (atomic_load (&log.ended), 1);
    /* Again: nothing to do, nothing blocks. */
    bctx_runner_stop (r);
    bctx_runner_destroy (&r);
    zmq_ctx_term (zctx);
}

static void
test_stop_of_a_busy_thread (void **state)
{
    (void) state;
    void *zctx = zmq_ctx_new ();
    bctx_runner_t *r = s_runner (zctx, "busy");
    s_log_t log = { .busy_ms = 300 };
    assert_int_equal (bctx_runner_start (r, s_record, &log), 0);
    for (int i = 0; i < 500 && !atomic_load (&log.busy); i++)
        usleep (10000);
    assert_int_equal (atomic_load (&log.busy), 1);
    /* Asked while busy: the work is finished first, and so is the body. */
    bctx_runner_send (r, C_GREEN);
    bctx_runner_stop (r);
    assert_int_equal (atomic_load (&log.worked), 1);
    assert_int_equal (atomic_load (&log.ended), 1);
    /* The command that came before $TERM was delivered. */
    assert_int_equal (atomic_load (&log.n_seen), 1);
    assert_int_equal (log.seen[0], C_GREEN);
    bctx_runner_destroy (&r);
    zmq_ctx_term (zctx);
}

/* What s_waiter saw, checked by the test's own thread. */
typedef struct {
    void *pull;                   /* the other socket */
    int idle_ready;               /* bctx_runner_wait with nothing sent */
    int idle_cmd;                 /* bctx_runner_recv with nothing sent */
    atomic_int checked_idle;      /* those two are in */
    int seen;                     /* or of what the waits then saw */
    int got_x;                    /* messages read from the other socket */
    int cmd;                      /* the command then received */
    int after_term;               /* a recv after $TERM */
} s_waiting_t;

/* A body that tries bctx_runner_wait against a PULL socket, then ends at
 * $TERM. */
static void
s_waiter (bctx_runner_t *runner, void *arg)
{
    s_waiting_t *w = arg;
    /* Nothing yet: the time runs out. */
    w->idle_ready = bctx_runner_wait (runner, w->pull, 10);
    w->idle_cmd = bctx_runner_recv (runner);
    atomic_store (&w->checked_idle, 1);
    /* The test sends "x" on the other socket, then BLUE on the pipe. */
    for (int i = 0; i < 500 && !(w->seen & BCTX_RUNNER_COMMAND); i++) {
        int ready = bctx_runner_wait (runner, w->pull, 10);
        if (ready < 0)
            break;
        w->seen |= ready;
        char x;
        if ((ready & BCTX_RUNNER_READY) && zmq_recv (w->pull, &x, 1, ZMQ_DONTWAIT) == 1)
            w->got_x++;           /* read, or the next wait would see it again */
    }
    w->cmd = bctx_runner_recv (runner);
    for (int i = 0; i < 100 && bctx_runner_recv (runner) != BCTX_RUNNER_TERM; i++)
        bctx_runner_wait (runner, NULL, 1000);
    /* Once $TERM came, every recv says so. */
    w->after_term = bctx_runner_recv (runner);
}

static void
test_wait (void **state)
{
    (void) state;
    void *zctx = zmq_ctx_new ();
    void *pull = zmq_socket (zctx, ZMQ_PULL);
    void *push = zmq_socket (zctx, ZMQ_PUSH);
    assert_int_equal (zmq_bind (pull, "inproc://test-runner-wait"), 0);
    assert_int_equal (zmq_connect (push, "inproc://test-runner-wait"), 0);
    bctx_runner_t *r = s_runner (zctx, "wait");
    s_waiting_t w = { .pull = pull };
    assert_int_equal (bctx_runner_start (r, s_waiter, &w), 0);
    for (int i = 0; i < 500 && !atomic_load (&w.checked_idle); i++)
        usleep (10000);
    assert_int_equal (atomic_load (&w.checked_idle), 1);
    assert_int_equal (zmq_send (push, "x", 1, 0), 1);
    assert_int_equal (bctx_runner_send (r, C_BLUE), 0);
    bctx_runner_destroy (&r);
    assert_int_equal (w.idle_ready, 0);
    assert_int_equal (w.idle_cmd, BCTX_RUNNER_NONE);
    assert_int_equal (w.seen, BCTX_RUNNER_READY | BCTX_RUNNER_COMMAND);
    assert_int_equal (w.got_x, 1);
    assert_int_equal (w.cmd, C_BLUE);
    assert_int_equal (w.after_term, BCTX_RUNNER_TERM);
    zmq_close (push);
    zmq_close (pull);
    zmq_ctx_term (zctx);
}

static void
test_destroy_idempotent (void **state)
{
    (void) state;
    void *zctx = zmq_ctx_new ();
    /* Never started: no thread to stop. */
    bctx_runner_t *r = s_runner (zctx, "idle");
    assert_int_equal (bctx_runner_send (r, C_RED), 0);
    bctx_runner_destroy (&r);
    assert_null (r);
    bctx_runner_destroy (&r);
    bctx_runner_destroy (NULL);
    bctx_runner_stop (NULL);
    /* Two runners of one name side by side, and one made again at once. */
    bctx_runner_t *a = s_runner (zctx, "same");
    bctx_runner_t *b = s_runner (zctx, "same");
    s_log_t la = { .n_seen = 0 }, lb = { .n_seen = 0 };
    assert_int_equal (bctx_runner_start (a, s_record, &la), 0);
    assert_int_equal (bctx_runner_start (b, s_record, &lb), 0);
    bctx_runner_send (a, C_RED);
    bctx_runner_send (b, C_BLUE);
    s_wait_seen (&la, 1);
    s_wait_seen (&lb, 1);
    assert_int_equal (la.seen[0], C_RED);
    assert_int_equal (lb.seen[0], C_BLUE);
    bctx_runner_destroy (&a);
    bctx_runner_destroy (&a);
    bctx_runner_destroy (&b);
    a = s_runner (zctx, "same");
    bctx_runner_destroy (&a);
    zmq_ctx_term (zctx);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_commands_in_order),
        cmocka_unit_test (test_stop_waits_for_the_thread),
        cmocka_unit_test (test_stop_of_a_busy_thread),
        cmocka_unit_test (test_wait),
        cmocka_unit_test (test_destroy_idempotent),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
