/*
 * test_store - unit tests of host/store on real SQLite files: appends and
 * reads, positions without gaps (across rollbacks and reopens), versions
 * and optimistic concurrency, remembered command ids, a read-only second
 * connection, and the append-only rule enforced inside the file itself.
 * Each test gets a fresh temporary directory (removed after) holding one
 * store, "ctx.db", opened for writing.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store.h"

typedef struct {
    char dir[64];              /* the test's temporary directory */
    char path[128];            /* dir/ctx.db */
    bctx_store_t *store;       /* a writer on path */
} fixture_t;

/* Events read back, copied out of the store's borrowed strings. */
#define MAX_SEEN 64
typedef struct {
    size_t n;
    int stop_after;            /* the callback stops after this many (0: never) */
    struct {
        int64_t position, version;
        char aggregate[32], type[32], data[128], metadata[128];
    } e[MAX_SEEN];
} seen_t;

static int
s_collect (const bctx_row_t *event, void *arg)
{
    seen_t *seen = arg;
    assert_true (seen->n < MAX_SEEN);
    assert_non_null (event->aggregate);
    assert_non_null (event->type);
    assert_non_null (event->data);
    assert_non_null (event->metadata);
    size_t i = seen->n++;
    seen->e[i].position = event->position;
    seen->e[i].version = event->version;
    snprintf (seen->e[i].aggregate, sizeof seen->e[i].aggregate, "%s",
              event->aggregate);
    snprintf (seen->e[i].type, sizeof seen->e[i].type, "%s", event->type);
    snprintf (seen->e[i].data, sizeof seen->e[i].data, "%s", event->data);
    snprintf (seen->e[i].metadata, sizeof seen->e[i].metadata, "%s",
              event->metadata);
    return seen->stop_after && (int) seen->n >= seen->stop_after;
}

static bctx_store_t *
s_open (const char *path, int flags)
{
    char err[512] = "";
    bctx_store_t *store = bctx_store_open (path, flags, err, sizeof err);
    if (!store)
        fail_msg ("cannot open %s: %s", path, err);
    return store;
}

/* Appends `n` events of type `type` to `aggregate` in their own
 * transaction, expecting version `expected`; returns the last position. */
static int64_t
s_append (bctx_store_t *store, const char *aggregate, int64_t expected,
          const char *type, size_t n)
{
    bctx_row_t events[8];
    char data[8][32];
    assert_true (n <= 8);
    for (size_t i = 0; i < n; i++) {
        snprintf (data[i], sizeof data[i], "{\"n\":%zu}", i);
        events[i] = (bctx_row_t) {
            .aggregate = aggregate, .type = type, .data = data[i],
            .metadata = "{\"command\":\"c\"}",
        };
    }
    assert_int_equal (bctx_store_begin (store), 0);
    assert_int_equal (bctx_store_append (store, aggregate, expected, events, n), 0);
    assert_int_equal (bctx_store_commit (store), 0);
    return events[n - 1].position;
}

static int64_t
s_read_all (bctx_store_t *store, seen_t *seen)
{
    memset (seen, 0, sizeof *seen);
    return bctx_store_read (store, 1, NULL, 1000, s_collect, seen);
}

/* Positions 1..n in order, no gaps. */
static void
s_assert_gap_free (const seen_t *seen)
{
    for (size_t i = 0; i < seen->n; i++)
        assert_int_equal (seen->e[i].position, (int64_t) i + 1);
}

static int
s_setup (void **state)
{
    fixture_t *f = calloc (1, sizeof *f);
    if (!f)
        return -1;
    snprintf (f->dir, sizeof f->dir, "/tmp/bctx-test-store-XXXXXX");
    if (!mkdtemp (f->dir)) {
        free (f);
        return -1;
    }
    snprintf (f->path, sizeof f->path, "%s/ctx.db", f->dir);
    char err[512] = "";
    f->store = bctx_store_open (f->path, 0, err, sizeof err);
    if (!f->store) {
        fprintf (stderr, "bctx_store_open: %s\n", err);
        rmdir (f->dir);
        free (f);
        return -1;
    }
    *state = f;
    return 0;
}

static int
s_teardown (void **state)
{
    fixture_t *f = *state;
    bctx_store_destroy (&f->store);
    DIR *d = opendir (f->dir);
    if (d) {
        for (struct dirent *e; (e = readdir (d));) {
            if (strcmp (e->d_name, ".") == 0 || strcmp (e->d_name, "..") == 0)
                continue;
            char path[512];
            snprintf (path, sizeof path, "%s/%s", f->dir, e->d_name);
            unlink (path);
        }
        closedir (d);
    }
    int rc = rmdir (f->dir);
    free (f);
    return rc;
}

static void
test_empty_store (void **state)
{
    fixture_t *f = *state;
    assert_int_equal (bctx_store_position (f->store), 0);
    assert_int_equal (bctx_store_version (f->store, "a1"), 0);
    seen_t seen;
    assert_int_equal (s_read_all (f->store, &seen), 0);
    assert_int_equal (seen.n, 0);
    assert_int_equal (access (f->path, F_OK), 0);
}

static void
test_append_and_read_back (void **state)
{
    fixture_t *f = *state;
    bctx_row_t a[3] = {
        { .aggregate = "a1", .type = "Opened", .data = "{\"owner\":\"ann\"}",
          .metadata = "{\"command\":\"c1\"}" },
        { .aggregate = "a1", .type = "Deposited", .data = "{\"amount\":5}",
          .metadata = "{\"command\":\"c1\"}" },
        { .aggregate = "a1", .type = "Deposited", .data = "{\"amount\":7}",
          .metadata = "{\"command\":\"c1\"}" },
    };
    bctx_row_t b[2] = {
        { .aggregate = "b2", .type = "Opened", .data = "{\"owner\":\"bob\"}",
          .metadata = "{\"command\":\"c2\"}" },
        { .aggregate = "b2", .type = "Withdrawn", .data = "{\"amount\":1}",
          .metadata = "{\"command\":\"c2\"}" },
    };
    assert_int_equal (bctx_store_begin (f->store), 0);
    assert_int_equal (bctx_store_append (f->store, "a1", 0, a, 3), 0);
    assert_int_equal (bctx_store_append (f->store, "b2", 0, b, 2), 0);
    /* The store fills positions (log-wide) and versions (per aggregate). */
    for (int i = 0; i < 3; i++) {
        assert_int_equal (a[i].position, i + 1);
        assert_int_equal (a[i].version, i + 1);
    }
    assert_int_equal (b[0].position, 4);
    assert_int_equal (b[0].version, 1);
    assert_int_equal (b[1].position, 5);
    assert_int_equal (b[1].version, 2);
    assert_int_equal (bctx_store_position (f->store), 5);
    assert_int_equal (bctx_store_commit (f->store), 0);
    assert_int_equal (bctx_store_position (f->store), 5);

    seen_t seen;
    assert_int_equal (s_read_all (f->store, &seen), 5);
    assert_int_equal (seen.n, 5);
    s_assert_gap_free (&seen);
    const char *aggregate[5] = { "a1", "a1", "a1", "b2", "b2" };
    const int64_t version[5] = { 1, 2, 3, 1, 2 };
    const char *type[5] = { "Opened", "Deposited", "Deposited", "Opened",
                            "Withdrawn" };
    for (int i = 0; i < 5; i++) {
        assert_string_equal (seen.e[i].aggregate, aggregate[i]);
        assert_int_equal (seen.e[i].version, version[i]);
        assert_string_equal (seen.e[i].type, type[i]);
    }
    assert_string_equal (seen.e[0].data, "{\"owner\":\"ann\"}");
    assert_string_equal (seen.e[2].data, "{\"amount\":7}");
    assert_string_equal (seen.e[0].metadata, "{\"command\":\"c1\"}");
    assert_string_equal (seen.e[4].metadata, "{\"command\":\"c2\"}");

    /* A later append continues both counters. */
    assert_int_equal (s_append (f->store, "a1", 3, "Deposited", 1), 6);
    assert_int_equal (bctx_store_version (f->store, "a1"), 4);
}

static void
test_version (void **state)
{
    fixture_t *f = *state;
    assert_int_equal (bctx_store_version (f->store, "a1"), 0);
    s_append (f->store, "a1", 0, "T", 3);
    s_append (f->store, "b2", 0, "T", 1);
    assert_int_equal (bctx_store_version (f->store, "a1"), 3);
    assert_int_equal (bctx_store_version (f->store, "b2"), 1);
    assert_int_equal (bctx_store_version (f->store, "c3"), 0);
    /* Aggregate ids are compared exactly. */
    assert_int_equal (bctx_store_version (f->store, "A1"), 0);
    assert_int_equal (bctx_store_version (f->store, "a"), 0);
    /* Inside a transaction, this connection sees its own appends. */
    bctx_row_t e = { .aggregate = "a1", .type = "T", .data = "{}",
                       .metadata = "{}" };
    assert_int_equal (bctx_store_begin (f->store), 0);
    assert_int_equal (bctx_store_append (f->store, "a1", 3, &e, 1), 0);
    assert_int_equal (bctx_store_version (f->store, "a1"), 4);
    bctx_store_rollback (f->store);
    assert_int_equal (bctx_store_version (f->store, "a1"), 3);
}

static void
test_optimistic_concurrency (void **state)
{
    fixture_t *f = *state;
    s_append (f->store, "a1", 0, "T", 2);
    assert_int_equal (bctx_store_position (f->store), 2);

    bctx_row_t e[2] = {
        { .aggregate = "a1", .type = "Late", .data = "{}", .metadata = "{}" },
        { .aggregate = "a1", .type = "Late", .data = "{}", .metadata = "{}" },
    };
    assert_int_equal (bctx_store_begin (f->store), 0);
    /* Stale (behind), ahead, and "new aggregate" expectations all fail. */
    assert_int_equal (bctx_store_append (f->store, "a1", 1, e, 2),
                      BCTX_ESTORECONFLICT);
    assert_int_equal (bctx_store_append (f->store, "a1", 3, e, 2),
                      BCTX_ESTORECONFLICT);
    assert_int_equal (bctx_store_append (f->store, "a1", 0, e, 1),
                      BCTX_ESTORECONFLICT);
    /* Nothing was appended: the position and version did not move. */
    assert_int_equal (bctx_store_position (f->store), 2);
    assert_int_equal (bctx_store_version (f->store, "a1"), 2);
    /* The transaction is still good for other appends (group commit: one
     * command's conflict does not spoil the others'). */
    bctx_row_t other = { .aggregate = "b2", .type = "T", .data = "{}",
                           .metadata = "{}" };
    assert_int_equal (bctx_store_append (f->store, "b2", 0, &other, 1), 0);
    assert_int_equal (other.position, 3);
    assert_int_equal (bctx_store_commit (f->store), 0);

    seen_t seen;
    assert_int_equal (s_read_all (f->store, &seen), 3);
    s_assert_gap_free (&seen);
    for (size_t i = 0; i < seen.n; i++)
        assert_string_not_equal (seen.e[i].type, "Late");

    /* With the right expectation the append goes through. */
    assert_int_equal (s_append (f->store, "a1", 2, "T", 1), 4);
    assert_int_equal (bctx_store_version (f->store, "a1"), 3);
}

/* Two writers on one file: the second's cached position is refreshed at
 * begin, and its stale expectation is caught. */
static void
test_two_writers (void **state)
{
    fixture_t *f = *state;
    bctx_store_t *other = s_open (f->path, 0);
    assert_int_equal (bctx_store_position (other), 0);
    s_append (f->store, "a1", 0, "T", 2);

    bctx_row_t e = { .aggregate = "a1", .type = "T", .data = "{}",
                       .metadata = "{}" };
    assert_int_equal (bctx_store_begin (other), 0);
    assert_int_equal (bctx_store_position (other), 2);
    assert_int_equal (bctx_store_append (other, "a1", 0, &e, 1),
                      BCTX_ESTORECONFLICT);
    assert_int_equal (bctx_store_append (other, "a1", 2, &e, 1), 0);
    assert_int_equal (e.position, 3);
    assert_int_equal (e.version, 3);
    assert_int_equal (bctx_store_commit (other), 0);
    bctx_store_destroy (&other);
    assert_null (other);

    assert_int_equal (s_append (f->store, "a1", 3, "T", 1), 4);
    seen_t seen;
    assert_int_equal (s_read_all (f->store, &seen), 4);
    s_assert_gap_free (&seen);
}

static void
test_remember_recall (void **state)
{
    fixture_t *f = *state;
    assert_null (bctx_store_recall (f->store, "c-1"));

    assert_int_equal (bctx_store_begin (f->store), 0);
    assert_int_equal (bctx_store_remember (f->store, "c-1", "{\"ok\":true,\"n\":1}"), 0);
    assert_int_equal (bctx_store_remember (f->store, "c-2", "{\"ok\":false}"), 0);
    assert_int_equal (bctx_store_commit (f->store), 0);

    char *reply = bctx_store_recall (f->store, "c-1");
    assert_non_null (reply);
    assert_string_equal (reply, "{\"ok\":true,\"n\":1}");
    free (reply);
    reply = bctx_store_recall (f->store, "c-2");
    assert_non_null (reply);
    assert_string_equal (reply, "{\"ok\":false}");
    free (reply);
    assert_null (bctx_store_recall (f->store, "c-3"));
    assert_null (bctx_store_recall (f->store, "C-1"));

    /* The first reply stands: remembering an id again is a conflict. */
    assert_int_equal (bctx_store_begin (f->store), 0);
    assert_int_equal (bctx_store_remember (f->store, "c-1", "{\"ok\":true,\"n\":2}"),
                      BCTX_ESTORECONFLICT);
    /* The transaction survives the conflict. */
    assert_int_equal (bctx_store_remember (f->store, "c-4", "{}"), 0);
    assert_int_equal (bctx_store_commit (f->store), 0);
    reply = bctx_store_recall (f->store, "c-1");
    assert_string_equal (reply, "{\"ok\":true,\"n\":1}");
    free (reply);
    reply = bctx_store_recall (f->store, "c-4");
    assert_non_null (reply);
    free (reply);

    /* A remembered id that is rolled back is forgotten. */
    assert_int_equal (bctx_store_begin (f->store), 0);
    assert_int_equal (bctx_store_remember (f->store, "c-5", "{}"), 0);
    bctx_store_rollback (f->store);
    assert_null (bctx_store_recall (f->store, "c-5"));

    /* Remembered ids survive a reopen. */
    bctx_store_destroy (&f->store);
    f->store = s_open (f->path, 0);
    reply = bctx_store_recall (f->store, "c-2");
    assert_non_null (reply);
    assert_string_equal (reply, "{\"ok\":false}");
    free (reply);
}

static void
test_rollback (void **state)
{
    fixture_t *f = *state;
    s_append (f->store, "a1", 0, "T", 2);

    bctx_row_t e[3] = {
        { .aggregate = "a1", .type = "Gone", .data = "{}", .metadata = "{}" },
        { .aggregate = "a1", .type = "Gone", .data = "{}", .metadata = "{}" },
        { .aggregate = "a1", .type = "Gone", .data = "{}", .metadata = "{}" },
    };
    assert_int_equal (bctx_store_begin (f->store), 0);
    assert_int_equal (bctx_store_append (f->store, "a1", 2, e, 3), 0);
    assert_int_equal (bctx_store_position (f->store), 5);
    bctx_store_rollback (f->store);
    assert_int_equal (bctx_store_position (f->store), 2);
    assert_int_equal (bctx_store_version (f->store, "a1"), 2);
    /* Rolling back again, outside a transaction, does nothing. */
    bctx_store_rollback (f->store);
    assert_int_equal (bctx_store_position (f->store), 2);

    seen_t seen;
    assert_int_equal (s_read_all (f->store, &seen), 2);
    for (size_t i = 0; i < seen.n; i++)
        assert_string_not_equal (seen.e[i].type, "Gone");

    /* The next append reuses the positions the rollback freed: no gap. */
    assert_int_equal (s_append (f->store, "a1", 2, "T", 1), 3);
    assert_int_equal (s_read_all (f->store, &seen), 3);
    s_assert_gap_free (&seen);
}

/* Closing with a transaction open rolls it back. */
static void
test_destroy_rolls_back (void **state)
{
    fixture_t *f = *state;
    s_append (f->store, "a1", 0, "T", 1);
    bctx_row_t e = { .aggregate = "a1", .type = "Gone", .data = "{}",
                       .metadata = "{}" };
    assert_int_equal (bctx_store_begin (f->store), 0);
    assert_int_equal (bctx_store_append (f->store, "a1", 1, &e, 1), 0);
    assert_int_equal (bctx_store_remember (f->store, "c-1", "{}"), 0);
    bctx_store_destroy (&f->store);
    assert_null (f->store);
    bctx_store_destroy (&f->store);   /* idempotent */

    f->store = s_open (f->path, 0);
    assert_int_equal (bctx_store_position (f->store), 1);
    assert_int_equal (bctx_store_version (f->store, "a1"), 1);
    assert_null (bctx_store_recall (f->store, "c-1"));
}

static void
test_positions_survive_reopen (void **state)
{
    fixture_t *f = *state;
    s_append (f->store, "a1", 0, "T", 3);
    s_append (f->store, "b2", 0, "T", 2);
    bctx_store_destroy (&f->store);

    f->store = s_open (f->path, 0);
    assert_int_equal (bctx_store_position (f->store), 5);
    assert_int_equal (bctx_store_version (f->store, "a1"), 3);
    assert_int_equal (s_append (f->store, "a1", 3, "T", 2), 7);
    bctx_store_destroy (&f->store);

    f->store = s_open (f->path, 0);
    assert_int_equal (bctx_store_position (f->store), 7);
    assert_int_equal (s_append (f->store, "c3", 0, "T", 1), 8);
    seen_t seen;
    assert_int_equal (s_read_all (f->store, &seen), 8);
    s_assert_gap_free (&seen);
    assert_int_equal (seen.e[6].version, 5);
    assert_string_equal (seen.e[6].aggregate, "a1");
}

static void
test_read_filters (void **state)
{
    fixture_t *f = *state;
    /* Positions: 1 a1, 2 b2, 3 a1, 4 b2, 5 a1, 6 c3, 7 a1 */
    s_append (f->store, "a1", 0, "T", 1);
    s_append (f->store, "b2", 0, "T", 1);
    s_append (f->store, "a1", 1, "T", 1);
    s_append (f->store, "b2", 1, "T", 1);
    s_append (f->store, "a1", 2, "T", 1);
    s_append (f->store, "c3", 0, "T", 1);
    s_append (f->store, "a1", 3, "T", 1);
    seen_t seen;

    /* One aggregate, from the start. */
    memset (&seen, 0, sizeof seen);
    assert_int_equal (bctx_store_read (f->store, 1, "a1", 100, s_collect, &seen), 4);
    const int64_t a1[4] = { 1, 3, 5, 7 };
    for (int i = 0; i < 4; i++) {
        assert_string_equal (seen.e[i].aggregate, "a1");
        assert_int_equal (seen.e[i].position, a1[i]);
        assert_int_equal (seen.e[i].version, i + 1);
    }

    /* From and limit, all aggregates. */
    memset (&seen, 0, sizeof seen);
    assert_int_equal (bctx_store_read (f->store, 3, NULL, 2, s_collect, &seen), 2);
    assert_int_equal (seen.e[0].position, 3);
    assert_int_equal (seen.e[1].position, 4);

    /* From, limit and aggregate together: the first a1 at 4 or after. */
    memset (&seen, 0, sizeof seen);
    assert_int_equal (bctx_store_read (f->store, 4, "a1", 1, s_collect, &seen), 1);
    assert_int_equal (seen.e[0].position, 5);
    assert_int_equal (seen.e[0].version, 3);

    memset (&seen, 0, sizeof seen);
    assert_int_equal (bctx_store_read (f->store, 2, "b2", 100, s_collect, &seen), 2);
    assert_int_equal (seen.e[0].position, 2);
    assert_int_equal (seen.e[1].position, 4);

    /* Past the end, an unknown aggregate, a zero limit: nothing. */
    memset (&seen, 0, sizeof seen);
    assert_int_equal (bctx_store_read (f->store, 8, NULL, 100, s_collect, &seen), 0);
    assert_int_equal (bctx_store_read (f->store, 1, "zz", 100, s_collect, &seen), 0);
    assert_int_equal (bctx_store_read (f->store, 1, NULL, 0, s_collect, &seen), 0);
    assert_int_equal (seen.n, 0);

    /* The last event exactly. */
    assert_int_equal (bctx_store_read (f->store, 7, NULL, 100, s_collect, &seen), 1);
    assert_int_equal (seen.e[0].position, 7);

    /* The callback stops the read; the count includes the one it saw. */
    memset (&seen, 0, sizeof seen);
    seen.stop_after = 2;
    assert_int_equal (bctx_store_read (f->store, 1, NULL, 100, s_collect, &seen), 2);
    assert_int_equal (seen.n, 2);

    /* A stopped read leaves the statement reusable. */
    memset (&seen, 0, sizeof seen);
    assert_int_equal (bctx_store_read (f->store, 1, NULL, 100, s_collect, &seen), 7);
}

/* An aggregate's events from any position: exactly those of the whole log
 * with that aggregate and a position at least as big, in order, however
 * its events are spread among others'. */
static void
test_read_aggregate_from_any_position (void **state)
{
    fixture_t *f = *state;
    int64_t version[3] = { 0, 0, 0 };
    const char *names[3] = { "a1", "b2", "c3" };
    for (int k = 0; k < 40; k++) {
        int a = k % 7 < 3 ? 0 : k % 7 < 6 ? 1 : 2;
        s_append (f->store, names[a], version[a]++, "T", 1);
    }
    seen_t all;
    assert_int_equal (s_read_all (f->store, &all), 40);
    for (int a = 0; a < 3; a++) {
        for (int64_t from = 1; from <= 41; from++) {
            for (int64_t limit = 1; limit <= 100; limit += 99) {
                seen_t seen = { 0 };
                int64_t n = bctx_store_read (f->store, from, names[a], limit, s_collect, &seen);
                size_t k = 0;
                for (size_t i = 0; i < all.n && (int64_t) k < limit; i++) {
                    if (all.e[i].position < from || strcmp (all.e[i].aggregate, names[a]))
                        continue;
                    assert_true (k < seen.n);
                    assert_int_equal (seen.e[k].position, all.e[i].position);
                    assert_int_equal (seen.e[k].version, all.e[i].version);
                    k++;
                }
                assert_int_equal (n, (int64_t) k);
                assert_int_equal (seen.n, k);
            }
        }
    }
}

static void
test_read_aggregate (void **state)
{
    fixture_t *f = *state;
    s_append (f->store, "a1", 0, "Opened", 1);
    s_append (f->store, "b2", 0, "Opened", 2);
    s_append (f->store, "a1", 1, "Deposited", 3);
    s_append (f->store, "b2", 2, "Deposited", 1);
    seen_t seen = { 0 };
    assert_int_equal (bctx_store_read_aggregate (f->store, "a1", s_collect, &seen), 4);
    assert_int_equal (seen.n, 4);
    const int64_t positions[4] = { 1, 4, 5, 6 };
    for (int i = 0; i < 4; i++) {
        assert_string_equal (seen.e[i].aggregate, "a1");
        assert_int_equal (seen.e[i].version, i + 1);
        assert_int_equal (seen.e[i].position, positions[i]);
    }
    assert_string_equal (seen.e[0].type, "Opened");
    assert_string_equal (seen.e[3].type, "Deposited");
    assert_string_equal (seen.e[3].data, "{\"n\":2}");

    memset (&seen, 0, sizeof seen);
    assert_int_equal (bctx_store_read_aggregate (f->store, "b2", s_collect, &seen), 3);
    assert_int_equal (seen.e[2].position, 7);
    memset (&seen, 0, sizeof seen);
    assert_int_equal (bctx_store_read_aggregate (f->store, "none", s_collect, &seen), 0);
}

/* A READONLY connection beside the writer sees what is committed, never
 * what is not. */
static void
test_readonly_reader (void **state)
{
    fixture_t *f = *state;
    s_append (f->store, "a1", 0, "T", 2);

    bctx_store_t *reader = s_open (f->path, BCTX_STORE_READONLY);
    assert_int_equal (bctx_store_position (reader), 2);
    seen_t seen;
    assert_int_equal (s_read_all (reader, &seen), 2);

    bctx_row_t e = { .aggregate = "a1", .type = "Pending", .data = "{}",
                       .metadata = "{}" };
    assert_int_equal (bctx_store_begin (f->store), 0);
    assert_int_equal (bctx_store_append (f->store, "a1", 2, &e, 1), 0);
    assert_int_equal (bctx_store_remember (f->store, "c-1", "{}"), 0);
    /* Not committed: the reader does not see it. */
    assert_int_equal (s_read_all (reader, &seen), 2);
    assert_int_equal (bctx_store_version (reader, "a1"), 2);
    assert_null (bctx_store_recall (reader, "c-1"));
    assert_int_equal (bctx_store_commit (f->store), 0);

    /* Committed: now it does. */
    assert_int_equal (s_read_all (reader, &seen), 3);
    assert_string_equal (seen.e[2].type, "Pending");
    assert_int_equal (bctx_store_version (reader, "a1"), 3);
    char *reply = bctx_store_recall (reader, "c-1");
    assert_non_null (reply);
    free (reply);

    /* A reader cannot write. */
    bctx_row_t w = { .aggregate = "a1", .type = "T", .data = "{}",
                       .metadata = "{}" };
    if (bctx_store_begin (reader) == 0) {
        assert_int_not_equal (bctx_store_append (reader, "a1", 3, &w, 1), 0);
        bctx_store_rollback (reader);
    }
    bctx_store_destroy (&reader);
    assert_int_equal (s_read_all (f->store, &seen), 3);
}

/* A reader can open the file after the writer has closed it (and WAL files
 * have been cleaned up). */
static void
test_readonly_after_writer_closed (void **state)
{
    fixture_t *f = *state;
    s_append (f->store, "a1", 0, "T", 2);
    bctx_store_destroy (&f->store);
    bctx_store_t *reader = s_open (f->path, BCTX_STORE_READONLY);
    seen_t seen;
    assert_int_equal (s_read_all (reader, &seen), 2);
    bctx_store_destroy (&reader);
}

static void
test_open_failures (void **state)
{
    fixture_t *f = *state;
    char err[512] = "";
    char path[256];

    /* READONLY never creates. */
    snprintf (path, sizeof path, "%s/absent.db", f->dir);
    assert_null (bctx_store_open (path, BCTX_STORE_READONLY, err, sizeof err));
    assert_int_equal (strncmp (err, path, strlen (path)), 0);
    assert_int_not_equal (access (path, F_OK), 0);

    /* A directory that does not exist. */
    snprintf (path, sizeof path, "%s/no/such/dir/x.db", f->dir);
    err[0] = '\0';
    assert_null (bctx_store_open (path, 0, err, sizeof err));
    assert_int_equal (strncmp (err, path, strlen (path)), 0);

    /* A file that is not SQLite. */
    snprintf (path, sizeof path, "%s/text.db", f->dir);
    FILE *fp = fopen (path, "w");
    assert_non_null (fp);
    for (int i = 0; i < 64; i++)
        fputs ("this is not a database, just some text in a file\n", fp);
    assert_int_equal (fclose (fp), 0);
    err[0] = '\0';
    assert_null (bctx_store_open (path, 0, err, sizeof err));
    assert_int_equal (strncmp (err, path, strlen (path)), 0);
    assert_true (strlen (err) > strlen (path) + 2);
}

/* Append-only is in the file itself: even the sqlite3 shell cannot update
 * or delete an event. */
static void
test_append_only (void **state)
{
    fixture_t *f = *state;
    s_append (f->store, "a1", 0, "T", 3);
    bctx_store_destroy (&f->store);

    sqlite3 *db = NULL;
    assert_int_equal (sqlite3_open (f->path, &db), SQLITE_OK);
    sqlite3_busy_timeout (db, 5000);
    char *msg = NULL;
    assert_int_not_equal (sqlite3_exec (db, "UPDATE events SET type = 'Forged'"
                                            " WHERE position = 2",
                                        NULL, NULL, &msg), SQLITE_OK);
    assert_non_null (msg);
    assert_non_null (strstr (msg, "append-only"));
    sqlite3_free (msg);
    msg = NULL;
    assert_int_not_equal (sqlite3_exec (db, "DELETE FROM events WHERE position = 3",
                                        NULL, NULL, &msg), SQLITE_OK);
    assert_non_null (msg);
    assert_non_null (strstr (msg, "append-only"));
    sqlite3_free (msg);
    msg = NULL;
    assert_int_not_equal (sqlite3_exec (db, "DELETE FROM events", NULL, NULL,
                                        &msg), SQLITE_OK);
    sqlite3_free (msg);
    msg = NULL;
    /* Two events cannot share an aggregate version. */
    assert_int_not_equal (sqlite3_exec (db,
                              "INSERT INTO events (position, aggregate, version,"
                              " type, data, metadata)"
                              " VALUES (4, 'a1', 2, 'Dup', '{}', '{}')",
                              NULL, NULL, &msg), SQLITE_OK);
    sqlite3_free (msg);
    msg = NULL;
    sqlite3_stmt *st = NULL;
    assert_int_equal (sqlite3_prepare_v2 (db, "SELECT count(*) FROM events"
                                              " WHERE type = 'T'",
                                          -1, &st, NULL), SQLITE_OK);
    assert_int_equal (sqlite3_step (st), SQLITE_ROW);
    assert_int_equal (sqlite3_column_int64 (st, 0), 3);
    sqlite3_finalize (st);
    assert_int_equal (sqlite3_close (db), SQLITE_OK);

    /* The store still reads all three, unchanged. */
    f->store = s_open (f->path, 0);
    seen_t seen;
    assert_int_equal (s_read_all (f->store, &seen), 3);
    s_assert_gap_free (&seen);
    for (size_t i = 0; i < seen.n; i++)
        assert_string_equal (seen.e[i].type, "T");
}

/* The store file is in WAL mode. */
static void
test_wal_mode (void **state)
{
    fixture_t *f = *state;
    s_append (f->store, "a1", 0, "T", 1);
    sqlite3 *db = NULL;
    assert_int_equal (sqlite3_open_v2 (f->path, &db, SQLITE_OPEN_READONLY, NULL),
                      SQLITE_OK);
    sqlite3_stmt *st = NULL;
    assert_int_equal (sqlite3_prepare_v2 (db, "PRAGMA journal_mode", -1, &st,
                                          NULL), SQLITE_OK);
    assert_int_equal (sqlite3_step (st), SQLITE_ROW);
    assert_string_equal ((const char *) sqlite3_column_text (st, 0), "wal");
    sqlite3_finalize (st);
    sqlite3_close (db);
}

/* The size of f's WAL file, or -1 when there is none. */
static long long
s_wal_size (const fixture_t *f)
{
    char wal[160];
    snprintf (wal, sizeof wal, "%s-wal", f->path);
    struct stat st;
    return stat (wal, &st) == 0 ? (long long) st.st_size : -1;
}

/* A writer that hands its log off (a handover) leaves the WAL at its
 * close to the next writer, which goes on from its head; a writer's
 * ordinary close folds the WAL into the file. */
static void
test_hand_off_leaves_the_wal (void **state)
{
    fixture_t *f = *state;
    assert_int_equal (s_append (f->store, "a1", 0, "T", 5), 5);
    long long before = s_wal_size (f);
    assert_true (before > 0);
    char err[512] = "";
    bctx_store_t *next = bctx_store_open (f->path, 0, err, sizeof err);
    assert_non_null (next);
    bctx_store_hand_off (f->store);
    bctx_store_destroy (&f->store);
    assert_int_equal (s_wal_size (f), before);
    assert_int_equal (s_append (next, "a1", 5, "T", 1), 6);
    bctx_store_destroy (&next);
    assert_true (s_wal_size (f) <= 0);
}

#define T(name) cmocka_unit_test_setup_teardown (name, s_setup, s_teardown)

int
main (void)
{
    const struct CMUnitTest tests[] = {
        T (test_empty_store),
        T (test_append_and_read_back),
        T (test_version),
        T (test_optimistic_concurrency),
        T (test_two_writers),
        T (test_remember_recall),
        T (test_rollback),
        T (test_destroy_rolls_back),
        T (test_positions_survive_reopen),
        T (test_read_filters),
        T (test_read_aggregate),
        T (test_read_aggregate_from_any_position),
        T (test_readonly_reader),
        T (test_readonly_after_writer_closed),
        T (test_open_failures),
        T (test_append_only),
        T (test_wal_mode),
        T (test_hand_off_leaves_the_wal),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
