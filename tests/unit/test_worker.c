/*
 * test_worker - unit tests of host/worker, the command path of one
 * context, driven without a host around it: a real store in a temporary
 * folder, the real test plugins ledger.so and reject_all.so (found under
 * $BCTX_BUILD, default "."), the worker's queue fed job pointers by a
 * PUSH socket and its replies taken from a PULL socket, as commands.c
 * does.  An accepted command is stored and answered with its positions;
 * a retry of the same id is answered from the log and stores nothing;
 * the same id from a reactor is another command; every refusal comes
 * with its wire code; the commands queued together share one commit, at
 * most host.max_batch of them; a worker opened again over the same log
 * rebuilds its aggregates from it; a NULL job stops it after what was
 * queued; and commands on its own command link (link.h) are answered
 * there, under the tag they came with.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#include "config.h"
#include "dedup.h"
#include "link.h"
#include "protocol.h"
#include "store.h"
#include "worker.h"

#define S_REPLIES "inproc://test-worker-replies"
#define S_LEDGER 0                /* contexts[0]: ledger.so */
#define S_REJECT_ALL 1            /* contexts[1]: reject_all.so */

/* A temporary folder, a config naming it, and one worker at a time. */
typedef struct {
    char dir[256];                /* the folder: host.data */
    char link_path[320];          /* dir/cmd-ledger.sock, for the link test */
    bctx_config_t *config;        /* the config the worker is made from */
    void *zctx;                   /* the ZeroMQ context of the open worker */
    void *replies;                /* PULL bound at S_REPLIES: jobs back */
    void *push;                   /* PUSH connected to the worker's queue */
    bctx_worker_t *worker;        /* the open worker, or NULL */
} s_fixture_t;

/* Parses the test's config: host.data is f->dir, max_batch is given,
 * and the two contexts are the test plugins under $BCTX_BUILD. */
static bctx_config_t *
s_config (s_fixture_t *f, int max_batch)
{
    const char *build = getenv ("BCTX_BUILD");
    if (!build || !*build)
        build = ".";
    char text[2048];
    snprintf (text, sizeof text,
              "{\"host\": {\"data\": \"%s\", \"max_batch\": %d},"
              " \"contexts\": [{\"name\": \"ledger\", \"plugin\": \"%s/tests/plugins/ledger.so\"},"
              " {\"name\": \"reject_all\", \"plugin\": \"%s/tests/plugins/reject_all.so\"}]}",
              f->dir, max_batch, build, build);
    char err[512] = "";
    bctx_config_t *config = bctx_config_parse (text, "t.json", err, sizeof err);
    if (!config)
        fail_msg ("bctx_config_parse: %s", err);
    return config;
}

static int
s_setup (void **state)
{
    s_fixture_t *f = calloc (1, sizeof *f);
    const char *tmp = getenv ("TMPDIR");
    snprintf (f->dir, sizeof f->dir, "%s/bctx-test-worker-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp (f->dir)) {
        free (f);
        return -1;
    }
    snprintf (f->link_path, sizeof f->link_path, "%s/cmd-ledger.sock", f->dir);
    *state = f;
    return 0;
}

/* Makes context `index`'s worker in a new ZeroMQ context, with its
 * reply socket and a PUSH on its queue; starts it unless `start` is 0
 * (jobs pushed before the start wait on the queue). */
static void
s_open (s_fixture_t *f, size_t index, int start)
{
    char err[512] = "";
    f->zctx = zmq_ctx_new ();
    f->replies = zmq_socket (f->zctx, ZMQ_PULL);
    assert_int_equal (zmq_bind (f->replies, S_REPLIES), 0);
    f->worker = bctx_worker_new (f->zctx, f->config, index, NULL, err, sizeof err);
    if (!f->worker)
        fail_msg ("bctx_worker_new: %s", err);
    f->push = zmq_socket (f->zctx, ZMQ_PUSH);
    assert_int_equal (zmq_connect (f->push, bctx_worker_endpoint (f->worker)), 0);
    if (start)
        assert_int_equal (bctx_worker_start (f->worker, S_REPLIES), 0);
}

/* Queues a NULL job (finish what is queued, then stop) and waits for the
 * thread to end; the worker stays, so its counters can be read. */
static void
s_stop (s_fixture_t *f)
{
    bctx_job_t *none = NULL;
    assert_int_equal (zmq_send (f->push, &none, sizeof none, 0), (int) sizeof none);
    bctx_worker_join (f->worker);
}

/* Stops (if running) and destroys the worker, closes the sockets and
 * ends the ZeroMQ context. */
static void
s_close (s_fixture_t *f)
{
    if (!f->zctx)
        return;
    bctx_worker_destroy (&f->worker);
    assert_null (f->worker);
    int linger = 0;
    zmq_setsockopt (f->push, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt (f->replies, ZMQ_LINGER, &linger, sizeof linger);
    zmq_close (f->push);
    zmq_close (f->replies);
    zmq_ctx_term (f->zctx);
    f->zctx = f->push = f->replies = NULL;
}

static int
s_teardown (void **state)
{
    s_fixture_t *f = *state;
    if (f->worker && f->zctx)
        s_stop (f);
    s_close (f);
    bctx_config_destroy (&f->config);
    char cmd[400];
    snprintf (cmd, sizeof cmd, "rm -rf '%s'", f->dir);
    if (system (cmd) != 0)
        fprintf (stderr, "cannot remove %s\n", f->dir);
    free (f);
    return 0;
}

/* A send job for `command` with JSON `data`, id (NULL: the worker makes
 * one) and origin, as commands.c makes it.  Return: new. */
static bctx_job_t *
s_job (const char *command, const char *id, const char *data, int origin)
{
    json_error_t jerr;
    json_t *jdata = json_loads (data, 0, &jerr);
    if (!jdata)
        fail_msg ("bad test JSON %s: %s", data, jerr.text);
    bctx_job_t *job = calloc (1, sizeof *job);
    job->origin = origin;
    job->request = json_pack ("{s:s, s:s, s:s, s:o}", "op", "send", "context", "ledger",
                              "command", command, "data", jdata);
    if (id)
        json_object_set_new (job->request, "id", json_string (id));
    return job;
}

/* Queues job (the worker owns it until it hands it back). */
static void
s_push (s_fixture_t *f, bctx_job_t *job)
{
    assert_int_equal (zmq_send (f->push, &job, sizeof job, 0), (int) sizeof job);
}

/* The next job handed back (waits 10 s at most), or a failed test. */
static bctx_job_t *
s_take (s_fixture_t *f)
{
    zmq_pollitem_t item = { f->replies, 0, ZMQ_POLLIN, 0 };
    if (zmq_poll (&item, 1, 10000) != 1)
        fail_msg ("no reply from the worker within 10 s");
    bctx_job_t *job = NULL;
    assert_int_equal (zmq_recv (f->replies, &job, sizeof job, 0), (int) sizeof job);
    assert_non_null (job);
    assert_non_null (job->reply);
    return job;
}

/* The reply's error code (static copy), or "" for an ok reply. */
static const char *
s_code (const char *reply)
{
    static char code[64];
    json_t *json = json_loads (reply, 0, NULL);
    assert_non_null (json);
    json_t *ok = json_object_get (json, "ok");
    assert_true (json_is_boolean (ok));
    const char *c = json_string_value (json_object_get (json_object_get (json, "error"),
                                                        "code"));
    assert_true (json_is_true (ok) == !c);
    snprintf (code, sizeof code, "%s", c ? c : "");
    json_decref (json);
    return code;
}

/* Field `key` (an integer) of event i of an ok reply, or -1. */
static long long
s_event_int (const char *reply, size_t i, const char *key)
{
    json_t *json = json_loads (reply, 0, NULL);
    assert_non_null (json);
    json_t *v = json_object_get (json_array_get (json_object_get (json, "events"), i), key);
    long long n = json_is_integer (v) ? (long long) json_integer_value (v) : -1;
    json_decref (json);
    return n;
}

/* How many events an ok reply lists. */
static size_t
s_n_events (const char *reply)
{
    json_t *json = json_loads (reply, 0, NULL);
    assert_non_null (json);
    size_t n = json_array_size (json_object_get (json, "events"));
    json_decref (json);
    return n;
}

/* Sends one command and takes its reply job.  Return: the job (the
 * caller destroys it). */
static bctx_job_t *
s_send (s_fixture_t *f, const char *command, const char *id, const char *data, int origin)
{
    s_push (f, s_job (command, id, data, origin));
    return s_take (f);
}

/* The head of the log at the worker's store path, read through a
 * connection of its own. */
static int64_t
s_head (s_fixture_t *f)
{
    char err[512] = "";
    bctx_store_t *store = bctx_store_open (bctx_worker_store_path (f->worker),
                                           BCTX_STORE_READONLY, err, sizeof err);
    if (!store)
        fail_msg ("bctx_store_open: %s", err);
    int64_t head = bctx_store_head (store);
    bctx_store_destroy (&store);
    return head;
}

static void
test_accepted_is_stored_and_answered (void **state)
{
    s_fixture_t *f = *state;
    f->config = s_config (f, 16);
    s_open (f, S_LEDGER, 1);
    assert_string_equal (bctx_worker_name (f->worker), "ledger");
    char path[400];
    snprintf (path, sizeof path, "%s/ledger.db", f->dir);
    assert_string_equal (bctx_worker_store_path (f->worker), path);

    bctx_job_t *job = s_send (f, "Add", "c-1", "{\"id\":\"a\",\"n\":3}", BCTX_ORIGIN_CLIENT);
    assert_string_equal (s_code (job->reply), "");
    assert_int_equal (s_n_events (job->reply), 1);
    assert_int_equal (s_event_int (job->reply, 0, "position"), 1);
    assert_int_equal (s_event_int (job->reply, 0, "version"), 1);
    assert_non_null (strstr (job->reply, "\"id\":\"c-1\""));
    assert_non_null (strstr (job->reply, "\"type\":\"Added\""));
    bctx_job_destroy (&job);
    assert_null (job);
    bctx_job_destroy (&job);      /* idempotent */
    bctx_job_destroy (NULL);

    /* Durable before the reply: another connection sees it. */
    assert_int_equal (s_head (f), 1);
    /* A second command on the same aggregate goes on from its version. */
    job = s_send (f, "Add", NULL, "{\"id\":\"a\",\"n\":4}", BCTX_ORIGIN_CLIENT);
    assert_int_equal (s_event_int (job->reply, 0, "position"), 2);
    assert_int_equal (s_event_int (job->reply, 0, "version"), 2);
    /* The worker made an id: 32 hex digits. */
    json_t *reply = json_loads (job->reply, 0, NULL);
    const char *id = json_string_value (json_object_get (reply, "id"));
    assert_non_null (id);
    assert_int_equal (strlen (id), 32);
    assert_int_equal (strspn (id, "0123456789abcdef"), 32);
    json_decref (reply);
    bctx_job_destroy (&job);

    bctx_worker_stats_t *stats = bctx_worker_stats (f->worker);
    assert_int_equal (atomic_load (&stats->position), 2);
    s_stop (f);
    assert_int_equal (atomic_load (&stats->commands), 2);
    assert_int_equal (atomic_load (&stats->accepted), 2);
    assert_int_equal (atomic_load (&stats->events), 2);
    assert_int_equal (atomic_load (&stats->batches), 2);
    assert_int_equal (atomic_load (&stats->failed), 0);

    json_t *info = bctx_worker_describe (f->worker);
    assert_string_equal (json_string_value (json_object_get (info, "name")), "ledger");
    assert_string_equal (json_string_value (json_object_get (info, "version")), "1.0.0");
    assert_int_equal (json_integer_value (json_object_get (info, "position")), 2);
    assert_int_equal (json_integer_value (json_object_get (info, "versions_loaded")), 1);
    assert_string_equal (json_string_value (json_array_get (json_object_get (info, "commands"),
                                                            0)), "Add");
    json_decref (info);
}

static void
test_a_retry_is_answered_from_the_log (void **state)
{
    s_fixture_t *f = *state;
    f->config = s_config (f, 16);
    s_open (f, S_LEDGER, 1);
    bctx_job_t *first = s_send (f, "Add", "c-7", "{\"id\":\"a\",\"n\":1}", BCTX_ORIGIN_CLIENT);
    bctx_job_t *other = s_send (f, "Add", "c-8", "{\"id\":\"a\",\"n\":1}", BCTX_ORIGIN_CLIENT);
    /* The same id again, even with other data: the first reply, nothing new. */
    bctx_job_t *again = s_send (f, "Add", "c-7", "{\"id\":\"a\",\"n\":99}", BCTX_ORIGIN_CLIENT);
    assert_string_equal (s_code (again->reply), "");
    assert_int_equal (s_event_int (again->reply, 0, "position"), 1);
    assert_int_equal (s_event_int (again->reply, 0, "version"), 1);
    assert_string_equal (again->reply, first->reply);
    assert_int_equal (s_head (f), 2);
    /* The same id from a reactor is another command. */
    bctx_job_t *reacted = s_send (f, "Add", "c-7", "{\"id\":\"a\",\"n\":1}",
                                  BCTX_ORIGIN_REACTOR);
    assert_string_equal (s_code (reacted->reply), "");
    assert_int_equal (s_event_int (reacted->reply, 0, "position"), 3);
    assert_int_equal (s_head (f), 3);
    /* A client's id and a reactor's id stay apart both ways. */
    bctx_job_t *client = s_send (f, "Add", "c-7", "{\"id\":\"a\",\"n\":1}",
                                 BCTX_ORIGIN_CLIENT);
    assert_int_equal (s_event_int (client->reply, 0, "position"), 1);
    s_stop (f);
    bctx_worker_stats_t *stats = bctx_worker_stats (f->worker);
    assert_int_equal (atomic_load (&stats->duplicates), 2);
    assert_int_equal (atomic_load (&stats->accepted), 3);
    assert_int_equal (atomic_load (&stats->events), 3);
    bctx_job_destroy (&first);
    bctx_job_destroy (&other);
    bctx_job_destroy (&again);
    bctx_job_destroy (&reacted);
    bctx_job_destroy (&client);
}

/* Sends command with data to the open worker; expects the error `code`
 * and a message containing needle. */
static void
s_refused (s_fixture_t *f, const char *command, const char *id, const char *data,
           const char *code, const char *needle)
{
    bctx_job_t *job = s_send (f, command, id, data, BCTX_ORIGIN_CLIENT);
    assert_string_equal (s_code (job->reply), code);
    json_t *reply = json_loads (job->reply, 0, NULL);
    const char *message = json_string_value (json_object_get (json_object_get (reply, "error"),
                                                              "message"));
    if (!message || !strstr (message, needle))
        fail_msg ("reply %s lacks \"%s\"", job->reply, needle);
    json_decref (reply);
    bctx_job_destroy (&job);
}

static void
test_refusals_carry_their_code (void **state)
{
    s_fixture_t *f = *state;
    f->config = s_config (f, 16);
    s_open (f, S_LEDGER, 1);
    s_refused (f, "Subtract", NULL, "{\"id\":\"a\",\"n\":1}", BCTX_E_UNKNOWN_COMMAND,
               "context \"ledger\" has no command \"Subtract\"");
    s_refused (f, "Add", NULL, "{\"n\":1}", BCTX_E_BAD_REQUEST, "data.id");
    s_refused (f, "Add", NULL, "{\"id\":\"\",\"n\":1}", BCTX_E_BAD_REQUEST, "data.id");
    s_refused (f, "Add", NULL, "{\"id\":7,\"n\":1}", BCTX_E_BAD_REQUEST, "data.id");
    /* decide says the data is invalid: bad_request with its reason. */
    s_refused (f, "Add", NULL, "{\"id\":\"a\",\"n\":0}", BCTX_E_BAD_REQUEST,
               "data.n: expected a positive integer");
    s_stop (f);
    bctx_worker_stats_t *stats = bctx_worker_stats (f->worker);
    assert_int_equal (atomic_load (&stats->failed), 5);
    assert_int_equal (atomic_load (&stats->accepted), 0);
    assert_int_equal (s_head (f), 0);
    s_close (f);

    /* A rejection: its reason, nothing stored, and a retry of its id gets
     * the same rejection without deciding again. */
    s_open (f, S_REJECT_ALL, 1);
    assert_string_equal (bctx_worker_name (f->worker), "reject_all");
    s_refused (f, "Do", "r-1", "{\"id\":\"x\"}", BCTX_E_REJECTED,
               "reject_all rejects every command (id x)");
    s_refused (f, "Do", "r-1", "{\"id\":\"y\"}", BCTX_E_REJECTED,
               "reject_all rejects every command (id x)");
    s_stop (f);
    stats = bctx_worker_stats (f->worker);
    assert_int_equal (atomic_load (&stats->rejected), 1);
    assert_int_equal (atomic_load (&stats->duplicates), 1);
    assert_int_equal (s_head (f), 0);
}

/* Removes context name's log (and its WAL files, if any) from f->dir. */
static void
s_remove_log (s_fixture_t *f, const char *name)
{
    const char *suffixes[] = { "", "-wal", "-shm" };
    for (size_t i = 0; i < 3; i++) {
        char path[400];
        snprintf (path, sizeof path, "%s/%s.db%s", f->dir, name, suffixes[i]);
        assert_true (unlink (path) == 0 || (i > 0 && errno == ENOENT));
    }
}

/* Queues n Add commands on aggregate "a" before the worker starts, then
 * starts it and takes every reply.  Expects versions 1 .. n in order. */
static void
s_queued_batch (s_fixture_t *f, int n)
{
    s_open (f, S_LEDGER, 0);
    for (int i = 0; i < n; i++)
        s_push (f, s_job ("Add", NULL, "{\"id\":\"a\",\"n\":1}", BCTX_ORIGIN_CLIENT));
    assert_int_equal (bctx_worker_start (f->worker, S_REPLIES), 0);
    for (int i = 0; i < n; i++) {
        bctx_job_t *job = s_take (f);
        /* Each decided against the state the one before left. */
        assert_int_equal (s_event_int (job->reply, 0, "version"), i + 1);
        assert_int_equal (s_event_int (job->reply, 0, "position"), i + 1);
        bctx_job_destroy (&job);
    }
    s_stop (f);
}

static void
test_queued_commands_share_one_commit (void **state)
{
    s_fixture_t *f = *state;
    f->config = s_config (f, 16);
    s_queued_batch (f, 5);
    bctx_worker_stats_t *stats = bctx_worker_stats (f->worker);
    assert_int_equal (atomic_load (&stats->commands), 5);
    assert_int_equal (atomic_load (&stats->batches), 1);
    assert_int_equal (atomic_load (&stats->events), 5);
    assert_int_equal (s_head (f), 5);
    s_close (f);
    bctx_config_destroy (&f->config);

    /* At most host.max_batch a commit: 5 commands in batches of 2. */
    f->config = s_config (f, 2);
    s_remove_log (f, "ledger");
    s_queued_batch (f, 5);
    stats = bctx_worker_stats (f->worker);
    assert_int_equal (atomic_load (&stats->commands), 5);
    assert_int_equal (atomic_load (&stats->batches), 3);
    assert_int_equal (s_head (f), 5);
}

static void
test_aggregates_are_rebuilt_from_the_log (void **state)
{
    s_fixture_t *f = *state;
    f->config = s_config (f, 16);
    s_open (f, S_LEDGER, 1);
    for (int i = 0; i < 3; i++) {
        bctx_job_t *job = s_send (f, "Add", NULL, "{\"id\":\"a\",\"n\":2}", BCTX_ORIGIN_CLIENT);
        bctx_job_destroy (&job);
    }
    bctx_job_t *job = s_send (f, "Add", "c-b", "{\"id\":\"b\",\"n\":2}", BCTX_ORIGIN_CLIENT);
    bctx_job_destroy (&job);
    s_stop (f);
    s_close (f);

    /* A new worker over the same log: no cache, so "a" is folded from its
     * three events, and a remembered id still answers. */
    s_open (f, S_LEDGER, 1);
    assert_int_equal (atomic_load (&bctx_worker_stats (f->worker)->position), 4);
    job = s_send (f, "Add", NULL, "{\"id\":\"a\",\"n\":2}", BCTX_ORIGIN_CLIENT);
    assert_int_equal (s_event_int (job->reply, 0, "version"), 4);
    assert_int_equal (s_event_int (job->reply, 0, "position"), 5);
    bctx_job_destroy (&job);
    job = s_send (f, "Add", "c-b", "{\"id\":\"b\",\"n\":2}", BCTX_ORIGIN_CLIENT);
    assert_int_equal (s_event_int (job->reply, 0, "position"), 4);
    assert_int_equal (s_event_int (job->reply, 0, "version"), 1);
    bctx_job_destroy (&job);
    s_stop (f);
    assert_int_equal (atomic_load (&bctx_worker_stats (f->worker)->duplicates), 1);
    assert_int_equal (s_head (f), 5);
}

static void
test_a_null_job_stops_after_what_was_queued (void **state)
{
    s_fixture_t *f = *state;
    f->config = s_config (f, 16);
    s_open (f, S_LEDGER, 0);
    for (int i = 0; i < 3; i++)
        s_push (f, s_job ("Add", NULL, "{\"id\":\"a\",\"n\":1}", BCTX_ORIGIN_CLIENT));
    bctx_job_t *none = NULL;
    assert_int_equal (zmq_send (f->push, &none, sizeof none, 0), (int) sizeof none);
    /* Queued after the stop: never taken (the test frees it). */
    bctx_job_t *late = s_job ("Add", NULL, "{\"id\":\"late\",\"n\":1}", BCTX_ORIGIN_CLIENT);
    s_push (f, late);
    assert_int_equal (bctx_worker_start (f->worker, S_REPLIES), 0);
    bctx_worker_join (f->worker);
    for (int i = 0; i < 3; i++) {
        bctx_job_t *job = s_take (f);
        assert_string_equal (s_code (job->reply), "");
        bctx_job_destroy (&job);
    }
    zmq_pollitem_t item = { f->replies, 0, ZMQ_POLLIN, 0 };
    assert_int_equal (zmq_poll (&item, 1, 0), 0);
    assert_int_equal (atomic_load (&bctx_worker_stats (f->worker)->commands), 3);
    assert_int_equal (s_head (f), 3);
    assert_null (late->reply);
    /* Its pointer is dropped with the queue; the job is the test's. */
    bctx_worker_destroy (&f->worker);
    bctx_job_destroy (&late);
}

/* Reads frames from fd into in until `want` frames came (10 s at most);
 * tags[i] and replies[i] (new) get each. */
static void
s_link_take (int fd, bctx_bytes_t *in, size_t want, uint64_t *tags, char **replies)
{
    size_t got = 0;
    for (int round = 0; round < 1000 && got < want; round++) {
        uint64_t tag;
        const char *body;
        size_t len;
        int rc = 0;
        while (got < want && (rc = bctx_link_next (in, &tag, &body, &len)) == 1) {
            tags[got] = tag;
            replies[got++] = strndup (body, len);
        }
        assert_true (rc >= 0);
        if (got == want)
            break;
        struct pollfd p = { fd, POLLIN, 0 };
        assert_true (poll (&p, 1, 10) >= 0);
        assert_true (bctx_link_fill (fd, in) >= 0);
    }
    assert_int_equal (got, want);
}

static void
test_the_command_link (void **state)
{
    s_fixture_t *f = *state;
    f->config = s_config (f, 16);
    char link[400];
    snprintf (link, sizeof link, "ipc://%s", f->link_path);
    f->config->command_link = strdup (link);
    s_open (f, S_LEDGER, 1);
    int fd = bctx_link_connect (f->link_path);
    assert_true (fd >= 0);

    /* Three commands in one write, and one frame that is not JSON: that
     * one is answered bad_request at once, its refusal in its tag's high
     * byte (link.h), the others under their own tags after their batch. */
    const char *bodies[] = {
        "{\"op\":\"send\",\"context\":\"ledger\",\"command\":\"Add\",\"id\":\"k-1\","
        "\"data\":{\"id\":\"a\",\"n\":1}}",
        "not json",
        "{\"op\":\"send\",\"context\":\"ledger\",\"command\":\"Add\",\"id\":\"k-1\","
        "\"origin\":\"reactor\",\"data\":{\"id\":\"a\",\"n\":1}}",
        "{\"op\":\"send\",\"context\":\"ledger\",\"command\":\"Nope\",\"data\":{}}",
    };
    const uint64_t sent_tags[] = { 0x0102030405060708ull, 2, 0x00ffffffffffffffull, 9 };
    bctx_bytes_t out = { 0 };
    for (size_t i = 0; i < 4; i++)
        bctx_link_put (&out, sent_tags[i], bodies[i], strlen (bodies[i]));
    assert_int_equal (bctx_link_write (fd, &out, 5000), 0);
    assert_int_equal (out.len - out.off, 0);

    bctx_bytes_t in = { 0 };
    uint64_t tags[4];
    char *replies[4];
    s_link_take (fd, &in, 4, tags, replies);
    assert_true (tags[0] == (sent_tags[1] | ((uint64_t) -BCTX_EBADREQUEST << BCTX_LINK_TAG_BITS)));
    assert_string_equal (s_code (replies[0]), BCTX_E_BAD_REQUEST);
    assert_non_null (strstr (replies[0], "malformed JSON"));
    assert_true (tags[1] == sent_tags[0]);
    assert_string_equal (s_code (replies[1]), "");
    assert_int_equal (s_event_int (replies[1], 0, "position"), 1);
    /* origin "reactor" on the link keeps its id apart from the client's. */
    assert_true (tags[2] == sent_tags[2]);
    assert_string_equal (s_code (replies[2]), "");
    assert_int_equal (s_event_int (replies[2], 0, "position"), 2);
    assert_true (tags[3] == sent_tags[3]);
    assert_string_equal (s_code (replies[3]), BCTX_E_UNKNOWN_COMMAND);
    for (size_t i = 0; i < 4; i++)
        free (replies[i]);

    /* Once the worker stopped, nothing more came; the refused frame was
     * never a command. */
    s_stop (f);
    assert_true (bctx_link_fill (fd, &in) >= 0);
    assert_int_equal (bctx_link_ready (&in), 0);
    assert_int_equal (atomic_load (&bctx_worker_stats (f->worker)->commands), 3);
    assert_int_equal (s_head (f), 2);
    /* Nothing went to the reply socket: link replies stay on the link. */
    zmq_pollitem_t item = { f->replies, 0, ZMQ_POLLIN, 0 };
    assert_int_equal (zmq_poll (&item, 1, 0), 0);
    close (fd);
    bctx_bytes_clear (&out);
    bctx_bytes_clear (&in);
}

/* A fresh id is 32 lower-case hex digits, and two are not the same. */
static void
test_fresh_ids (void **state)
{
    (void) state;
    char a[33], b[33];
    memset (a, 'x', sizeof a);
    bctx_dedup_new_id (a);
    bctx_dedup_new_id (b);
    assert_int_equal (strlen (a), 32);
    assert_int_equal (strspn (a, "0123456789abcdef"), 32);
    assert_string_not_equal (a, b);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_fresh_ids),
        cmocka_unit_test_setup_teardown (test_accepted_is_stored_and_answered, s_setup,
                                         s_teardown),
        cmocka_unit_test_setup_teardown (test_a_retry_is_answered_from_the_log, s_setup,
                                         s_teardown),
        cmocka_unit_test_setup_teardown (test_refusals_carry_their_code, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_queued_commands_share_one_commit, s_setup,
                                         s_teardown),
        cmocka_unit_test_setup_teardown (test_aggregates_are_rebuilt_from_the_log, s_setup,
                                         s_teardown),
        cmocka_unit_test_setup_teardown (test_a_null_job_stops_after_what_was_queued,
                                         s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_the_command_link, s_setup, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
