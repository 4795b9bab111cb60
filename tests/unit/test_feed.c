/*
 * test_feed - unit tests of host/feed, what a projection or reactor reads:
 * only the event types it declared reach it ("<context>.<Type>", or every
 * type with "<context>.*"), in position order, from the store; the rows it
 * skips still move its last position, so a gap of other types is passed
 * over; events that no bus message announced are read all the same, since
 * the bus only wakes; a callback that stops leaves the position before
 * the event it stopped at; a declaration naming an unknown or unbridged
 * context, or malformed, is refused with a message.  A sibling's head
 * (another process writes its log) is read from its file when asked,
 * known to other threads as last read, and never moves back, even when
 * the file does (a log restored from an older copy).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "feed.h"
#include "store.h"

#define MAX_SEEN 32

/* A temporary folder with two contexts' logs, "bank" and "shop". */
typedef struct {
    char dir[256];                /* the folder */
    char bank_path[300];          /* bank's log */
    char shop_path[300];          /* shop's log */
    bctx_store_t *bank;           /* its writer */
    bctx_store_t *shop;           /* its writer */
    _Atomic int64_t bank_head;    /* bank's head, as a worker keeps it */
    _Atomic int64_t shop_head;    /* shop's head */
    bctx_source_t sources[3];     /* bank, shop, and "far" on a peer, not bridged */
} s_fixture_t;

/* What a feed's callback saw. */
typedef struct {
    char types[MAX_SEEN][64];     /* "<context>.<Type>" of each event */
    int64_t positions[MAX_SEEN];  /* its position */
    int n;                        /* how many */
    int stop_at;                  /* stop (non-zero) at this position, or 0 */
} s_seen_t;

static int
s_collect (const bctx_event_t *ev, void *arg)
{
    s_seen_t *seen = arg;
    if (seen->stop_at && ev->position == seen->stop_at)
        return 1;
    assert_true (seen->n < MAX_SEEN);
    assert_non_null (ev->data);
    snprintf (seen->types[seen->n], sizeof seen->types[seen->n], "%s.%s", ev->context,
              ev->type);
    seen->positions[seen->n++] = ev->position;
    return 0;
}

/* Appends one event of `type` to `aggregate` of store and moves head. */
static void
s_append (bctx_store_t *store, _Atomic int64_t *head, const char *aggregate,
          const char *type)
{
    bctx_row_t row = {
        .aggregate = aggregate, .type = type, .data = "{\"n\":1}",
        .metadata = "{\"command\":\"c\"}",
    };
    int64_t version = bctx_store_version (store, aggregate);
    assert_int_equal (bctx_store_begin (store), 0);
    assert_int_equal (bctx_store_append (store, aggregate, version, &row, 1), 0);
    assert_int_equal (bctx_store_commit (store), 0);
    atomic_store (head, row.position);
}

static int
s_setup (void **state)
{
    s_fixture_t *f = calloc (1, sizeof *f);
    const char *tmp = getenv ("TMPDIR");
    snprintf (f->dir, sizeof f->dir, "%s/bctx-test-feed-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp (f->dir)) {
        free (f);
        return -1;
    }
    snprintf (f->bank_path, sizeof f->bank_path, "%s/bank.db", f->dir);
    snprintf (f->shop_path, sizeof f->shop_path, "%s/shop.db", f->dir);
    char err[256];
    f->bank = bctx_store_open (f->bank_path, 0, err, sizeof err);
    f->shop = bctx_store_open (f->shop_path, 0, err, sizeof err);
    if (!f->bank || !f->shop) {
        fprintf (stderr, "bctx_store_open: %s\n", err);
        return -1;
    }
    f->sources[0] = (bctx_source_t) { .name = "bank", .store_path = f->bank_path,
                                      .head = &f->bank_head };
    f->sources[1] = (bctx_source_t) { .name = "shop", .store_path = f->shop_path,
                                      .head = &f->shop_head };
    f->sources[2] = (bctx_source_t) { .name = "far", .remote = 1 };
    *state = f;
    return 0;
}

static int
s_teardown (void **state)
{
    s_fixture_t *f = *state;
    bctx_store_destroy (&f->bank);
    bctx_store_destroy (&f->shop);
    char cmd[400];
    snprintf (cmd, sizeof cmd, "rm -rf '%s'", f->dir);
    if (system (cmd) != 0)
        fprintf (stderr, "cannot remove %s\n", f->dir);
    free (f);
    return 0;
}

/* A feed of `consumes`, or a failed test. */
static bctx_feed_t *
s_feed (s_fixture_t *f, const char *const *consumes)
{
    char err[256] = "";
    bctx_feed_t *feed = bctx_feed_new ("test", consumes, f->sources, 3, err, sizeof err);
    if (!feed)
        fail_msg ("bctx_feed_new: %s", err);
    return feed;
}

static void
test_consumed_types_only (void **state)
{
    s_fixture_t *f = *state;
    s_append (f->bank, &f->bank_head, "a1", "Opened");      /* 1 */
    s_append (f->bank, &f->bank_head, "a1", "Audited");     /* 2: not consumed */
    s_append (f->bank, &f->bank_head, "a2", "Opened");      /* 3 */
    s_append (f->bank, &f->bank_head, "a1", "Deposited");   /* 4 */
    s_append (f->bank, &f->bank_head, "a1", "Audited");     /* 5: not consumed */
    s_append (f->shop, &f->shop_head, "o1", "Ordered");     /* shop 1 */
    s_append (f->shop, &f->shop_head, "o1", "Shipped");     /* shop 2 */
    const char *const consumes[] = { "bank.Opened", "bank.Deposited", "shop.*", NULL };
    bctx_feed_t *feed = s_feed (f, consumes);
    assert_int_equal (bctx_feed_size (feed), 2);
    int bank = bctx_feed_index (feed, "bank");
    int shop = bctx_feed_index (feed, "shop");
    assert_true (bank >= 0 && shop >= 0 && bank != shop);
    assert_int_equal (bctx_feed_index (feed, "far"), -1);
    assert_string_equal (bctx_feed_name (feed, (size_t) bank), "bank");
    assert_int_equal (bctx_feed_head (feed, (size_t) bank), 5);

    s_seen_t seen = { .n = 0 };
    int64_t last = 0;
    assert_int_equal (bctx_feed_read (feed, (size_t) bank, 1, 100, s_collect, &seen, &last), 5);
    assert_int_equal (seen.n, 3);
    assert_string_equal (seen.types[0], "bank.Opened");
    assert_string_equal (seen.types[1], "bank.Opened");
    assert_string_equal (seen.types[2], "bank.Deposited");
    assert_int_equal (seen.positions[0], 1);
    assert_int_equal (seen.positions[1], 3);
    assert_int_equal (seen.positions[2], 4);
    /* The skipped Audited at 5 moves the position too. */
    assert_int_equal (last, 5);

    /* "shop.*": every type. */
    memset (&seen, 0, sizeof seen);
    last = 0;
    assert_int_equal (bctx_feed_read (feed, (size_t) shop, 1, 100, s_collect, &seen, &last), 2);
    assert_int_equal (seen.n, 2);
    assert_string_equal (seen.types[0], "shop.Ordered");
    assert_string_equal (seen.types[1], "shop.Shipped");
    assert_int_equal (last, 2);
    bctx_feed_destroy (&feed);
    assert_null (feed);
    bctx_feed_destroy (&feed);
}

static void
test_gaps_read_from_the_store (void **state)
{
    s_fixture_t *f = *state;
    const char *const consumes[] = { "bank.Deposited", NULL };
    bctx_feed_t *feed = s_feed (f, consumes);
    /* Nothing yet: nothing read, the position stays. */
    s_seen_t seen = { .n = 0 };
    int64_t last = 0;
    assert_int_equal (bctx_feed_read (feed, 0, 1, 100, s_collect, &seen, &last), 0);
    assert_int_equal (last, 0);
    /* Events no bus message announced (nothing is published here): the
     * store has them, so the feed reads them, in batches of `limit`. */
    for (int i = 0; i < 7; i++)
        s_append (f->bank, &f->bank_head, "a1", i % 2 ? "Audited" : "Deposited");
    assert_int_equal (bctx_feed_read (feed, 0, 1, 3, s_collect, &seen, &last), 3);
    assert_int_equal (last, 3);
    assert_int_equal (seen.n, 2);                 /* 1 and 3 */
    assert_int_equal (bctx_feed_read (feed, 0, last + 1, 3, s_collect, &seen, &last), 3);
    assert_int_equal (last, 6);
    assert_int_equal (bctx_feed_read (feed, 0, last + 1, 3, s_collect, &seen, &last), 1);
    assert_int_equal (last, 7);
    assert_int_equal (seen.n, 4);
    int64_t expected[] = { 1, 3, 5, 7 };
    for (int i = 0; i < 4; i++)
        assert_int_equal (seen.positions[i], expected[i]);
    /* A callback that stops: -1, and the position is the row before. */
    s_seen_t stopping = { .stop_at = 5 };
    last = 2;
    assert_int_equal (bctx_feed_read (feed, 0, 3, 100, s_collect, &stopping, &last), -1);
    assert_int_equal (last, 4);
    assert_int_equal (stopping.n, 1);
    assert_int_equal (stopping.positions[0], 3);
    bctx_feed_destroy (&feed);
}

/* Expects consumes refused with a message containing needle. */
static void
s_refused (s_fixture_t *f, const char *const *consumes, const char *needle)
{
    char err[256] = "";
    bctx_feed_t *feed = bctx_feed_new ("projection p", consumes, f->sources, 3, err,
                                       sizeof err);
    assert_null (feed);
    if (!strstr (err, needle))
        fail_msg ("\"%s\" lacks \"%s\"", err, needle);
    assert_non_null (strstr (err, "projection p"));
}

static void
test_refusals (void **state)
{
    s_fixture_t *f = *state;
    const char *const none[] = { NULL };
    s_refused (f, none, "consumes no event type");
    s_refused (f, NULL, "consumes no event type");
    const char *const unknown[] = { "bank.Opened", "mill.Ground", NULL };
    s_refused (f, unknown, "no context \"mill\" on this host");
    const char *const malformed[] = { "bankOpened", NULL };
    s_refused (f, malformed, "expected \"<context>.<Type>\"");
    const char *const empty_type[] = { "bank.", NULL };
    s_refused (f, empty_type, "expected \"<context>.<Type>\"");
    const char *const far[] = { "far.Moved", NULL };
    s_refused (f, far, "lives on a peer and is not bridged here");
}

/* Overwrites the log at path with the one at from, through SQLite's
 * backup (as a restore of an older copy under a running reader would). */
static void
s_restore (const char *path, const char *from)
{
    sqlite3 *src = NULL, *dst = NULL;
    assert_int_equal (sqlite3_open (from, &src), SQLITE_OK);
    assert_int_equal (sqlite3_open (path, &dst), SQLITE_OK);
    sqlite3_busy_timeout (dst, 5000);
    sqlite3_backup *b = sqlite3_backup_init (dst, "main", src, "main");
    assert_non_null (b);
    assert_int_equal (sqlite3_backup_step (b, -1), SQLITE_DONE);
    assert_int_equal (sqlite3_backup_finish (b), SQLITE_OK);
    sqlite3_close (src);
    sqlite3_close (dst);
}

/* The head of the log at path, through a connection of its own. */
static int64_t
s_file_head (const char *path)
{
    char err[256] = "";
    bctx_store_t *store = bctx_store_open (path, BCTX_STORE_READONLY, err, sizeof err);
    if (!store)
        fail_msg ("bctx_store_open: %s", err);
    int64_t head = bctx_store_head (store);
    bctx_store_destroy (&store);
    return head;
}

static void
test_a_sibling_head_read_in_pages (void **state)
{
    s_fixture_t *f = *state;
    /* bank as a sibling: no live head, its log is read from the file. */
    _Atomic int64_t unused = 0;
    bctx_source_t sources[] = {
        { .name = "bank", .store_path = f->bank_path, .remote = BCTX_SOURCE_SIBLING },
    };
    const char *const consumes[] = { "bank.*", NULL };
    char err[256] = "";
    bctx_feed_t *feed = bctx_feed_new ("test", consumes, sources, 1, err, sizeof err);
    if (!feed)
        fail_msg ("bctx_feed_new: %s", err);
    assert_int_equal (bctx_feed_head (feed, 0), 0);
    assert_int_equal (bctx_feed_head_known (feed, 0), 0);
    for (int i = 0; i < 5; i++)
        s_append (f->bank, &unused, i < 3 ? "a1" : "a2", "Moved");
    /* Known is what was last read: not yet. */
    assert_int_equal (bctx_feed_head_known (feed, 0), 0);
    assert_int_equal (bctx_feed_head (feed, 0), 5);
    assert_int_equal (bctx_feed_head_known (feed, 0), 5);

    /* Read in pages of 2 up to the head, each page on from the last. */
    s_seen_t seen = { .n = 0 };
    int64_t last = 0;
    int64_t pages[] = { 2, 2, 1, 0 };
    int64_t lasts[] = { 2, 4, 5, 5 };
    for (int i = 0; i < 4; i++) {
        assert_int_equal (bctx_feed_read (feed, 0, last + 1, 2, s_collect, &seen, &last),
                          pages[i]);
        assert_int_equal (last, lasts[i]);
    }
    assert_int_equal (seen.n, 5);
    for (int i = 0; i < 5; i++)
        assert_int_equal (seen.positions[i], i + 1);

    /* The file goes back to an older copy with one event: the head this
     * feed has read stays, so its consumer never goes back either. */
    char old_path[320];
    snprintf (old_path, sizeof old_path, "%s/old.db", f->dir);
    bctx_store_t *old = bctx_store_open (old_path, 0, err, sizeof err);
    assert_non_null (old);
    s_append (old, &unused, "a1", "Moved");
    bctx_store_destroy (&old);
    bctx_store_destroy (&f->bank);
    s_restore (f->bank_path, old_path);
    assert_int_equal (s_file_head (f->bank_path), 1);
    assert_int_equal (bctx_feed_head (feed, 0), 5);
    assert_int_equal (bctx_feed_head_known (feed, 0), 5);
    bctx_feed_destroy (&feed);
}

static void
test_a_live_head_is_the_workers (void **state)
{
    s_fixture_t *f = *state;
    const char *const consumes[] = { "bank.Opened", NULL };
    bctx_feed_t *feed = s_feed (f, consumes);
    /* The worker's head, as it moves, whatever the file says. */
    atomic_store (&f->bank_head, 3);
    assert_int_equal (bctx_feed_head (feed, 0), 3);
    assert_int_equal (bctx_feed_head_known (feed, 0), 3);
    atomic_store (&f->bank_head, 9);
    assert_int_equal (bctx_feed_head_known (feed, 0), 9);
    assert_int_equal (s_file_head (f->bank_path), 0);
    bctx_feed_destroy (&feed);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown (test_consumed_types_only, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_gaps_read_from_the_store, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_refusals, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_a_sibling_head_read_in_pages, s_setup,
                                         s_teardown),
        cmocka_unit_test_setup_teardown (test_a_live_head_is_the_workers, s_setup, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
