/*
 * test_guard - what keeps a host from losing data without saying so:
 * one host per data directory (the LOCK file), a log that ends before a
 * position this host already acknowledged refuses to start (and starts
 * with --accept-truncated-log, saying what was lost), an integrity check
 * at start, and a clear error when the disk is full.
 *
 * The damaged-file cases are checked independently: the test opens a
 * copy of the damaged log with SQLite itself and asserts the log really
 * ends early before it asserts the host's refusal.
 */
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#define ACCOUNTS  5
#define DEPOSITS  200   /* about 450 WAL frames: below the 1000 of an automatic checkpoint */

/* The names and sizes of the files in dir, one a line, sorted (new);
 * LOCK aside: a host that took it writes its own pid there by right. */
static char *
s_listing (const char *dir)
{
    char cmd[600];
    snprintf (cmd, sizeof cmd, "cd '%s' && ls -l --time-style=+ | awk 'NR>1 && $6 != \"LOCK\""
              " {print $5, $6}'", dir);
    FILE *p = popen (cmd, "r");
    assert_non_null (p);
    char *text = calloc (1, 65536);
    size_t n = fread (text, 1, 65535, p);
    text[n] = '\0';
    pclose (p);
    return text;
}

/* The names only of the files in dir (new). */
static char *
s_names (const char *dir)
{
    char cmd[600];
    snprintf (cmd, sizeof cmd, "ls -1 '%s'", dir);
    FILE *p = popen (cmd, "r");
    assert_non_null (p);
    char *text = calloc (1, 65536);
    size_t n = fread (text, 1, 65535, p);
    text[n] = '\0';
    pclose (p);
    return text;
}

/* As h_start, with extra arguments, on an emptied log.  Return 0, or -1
 * (log printed). */
static int
s_start (h_host_t *h, const char *const *args)
{
    truncate (h->log, 0);
    return h_start_args (h, args);
}

/* Runs bctx-host with extra arguments and waits for it to exit (10 s at
 * most).  Return its exit status; its log in *log (new). */
static int
s_run_expecting_exit (h_host_t *h, const char *const *args, char **log)
{
    truncate (h->log, 0);
    pid_t pid = h_spawn_host (h, args);
    int status = h_wait (pid, 10000);
    *log = h_read_log (h);
    return status;
}

/* Sends one command and asserts it was applied.  Return its position. */
static long long
s_send_ok (const h_host_t *h, const char *command, const char *id, json_t *data)
{
    json_t *r = h_send (h->endpoint, "accounts", command, id, data);
    assert_non_null (r);
    if (!json_is_true (json_object_get (r, "ok"))) {
        char *text = json_dumps (r, 0);
        fail_msg ("%s was not applied: %s", command, text);
    }
    json_t *events = json_object_get (r, "events");
    long long pos = json_integer_value (json_object_get (json_array_get (events, 0), "position"));
    json_decref (r);
    return pos;
}

/* Opens ACCOUNTS accounts.  Return the last position. */
static long long
s_open_accounts (const h_host_t *h)
{
    long long pos = 0;
    for (int a = 0; a < ACCOUNTS; a++) {
        char account[16];
        snprintf (account, sizeof account, "a%d", a);
        pos = s_send_ok (h, "OpenAccount", NULL,
                         json_pack ("{s:s, s:s}", "account", account, "owner", "test"));
    }
    return pos;
}

/* The high-water mark the host wrote for accounts, or -1. */
static long long
s_mark (const h_host_t *h)
{
    char path[400];
    snprintf (path, sizeof path, "%s/data/accounts.hwm", h->dir);
    FILE *f = fopen (path, "r");
    long long mark = -1;
    if (f) {
        if (fscanf (f, "%lld", &mark) != 1)
            mark = -1;
        fclose (f);
    }
    return mark;
}

/*
 * A fresh host with DEPOSITS commands in the WAL of accounts.db (never
 * folded into the .db: below the automatic checkpoint, and no clean
 * stop), killed with -9 once its high-water mark shows the last one.
 * Return the last acknowledged position.
 */
static long long
s_killed_with_wal (h_host_t *h)
{
    assert_int_equal (h_init (h), 0);
    assert_int_equal (h_start (h), 0);
    long long last = s_open_accounts (h);
    for (int i = 0; i < DEPOSITS; i++) {
        char account[16];
        snprintf (account, sizeof account, "a%d", i % ACCOUNTS);
        last = s_send_ok (h, "Deposit", NULL,
                          json_pack ("{s:s, s:i}", "account", account, "amount", 1));
    }
    assert_int_equal (last, ACCOUNTS + DEPOSITS);
    /* The mark follows within ~100 ms: wait for it, bounded. */
    for (int i = 0; i < 1000 && s_mark (h) != last; i++)
        usleep (10000);
    assert_int_equal (s_mark (h), last);
    assert_int_equal (h_stop (h, SIGKILL), 128 + SIGKILL);
    char wal[400];
    snprintf (wal, sizeof wal, "%s/data/accounts.db-wal", h->dir);
    struct stat st;
    assert_int_equal (stat (wal, &st), 0);
    assert_true (st.st_size > 100 * 4096);
    return last;
}

/* Copies path to copy, or removes copy when path is missing. */
static void
s_copy (const char *path, const char *copy)
{
    char cmd[2000];
    snprintf (cmd, sizeof cmd, "rm -f '%s'; if [ -e '%s' ]; then cp '%s' '%s'; fi",
              copy, path, path, copy);
    assert_int_equal (system (cmd), 0);
}

/* The last position of the damaged log, read by SQLite itself from a
 * copy of accounts.db and its -wal (the originals stay untouched). */
static long long
s_log_end_of_copy (const h_host_t *h)
{
    char db[300], wal[300], cdb[300], cwal[300];
    snprintf (db, sizeof db, "%s/data/accounts.db", h->dir);
    snprintf (wal, sizeof wal, "%s/data/accounts.db-wal", h->dir);
    snprintf (cdb, sizeof cdb, "%s/copy.db", h->dir);
    snprintf (cwal, sizeof cwal, "%s/copy.db-wal", h->dir);
    s_copy (db, cdb);
    s_copy (wal, cwal);
    sqlite3 *conn = NULL;
    long long end = -1;
    assert_int_equal (sqlite3_open (cdb, &conn), SQLITE_OK);
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2 (conn, "SELECT coalesce(max(position), 0) FROM events", -1,
                            &st, NULL) != SQLITE_OK)
        end = 0;            /* no events table: nothing of the log is left */
    else if (sqlite3_step (st) == SQLITE_ROW)
        end = sqlite3_column_int64 (st, 0);
    sqlite3_finalize (st);
    sqlite3_close (conn);
    char cmd[1200];
    snprintf (cmd, sizeof cmd, "rm -f '%s' '%s' '%s-shm'", cdb, cwal, cdb);
    assert_int_equal (system (cmd), 0);
    return end;
}

/* Fails unless text contains needle (printed both when it does not). */
static void
s_assert_has (const char *text, const char *needle)
{
    if (!text || !strstr (text, needle))
        fail_msg ("expected \"%s\" in:\n%s", needle, text ? text : "(nothing)");
}

/*
 * The common end of the damaged-WAL cases: the log really ends early;
 * the host refuses to start, naming the file, both positions and the
 * mark, and writes nothing; with --accept-truncated-log accounts it
 * starts, logs what was lost, and appends after the log's end.
 */
static void
s_refuses_then_accepts (h_host_t *h, long long last)
{
    long long end = s_log_end_of_copy (h);
    assert_true (end >= 0);
    if (end >= last)
        fail_msg ("the damage lost nothing (log ends at %lld, last acknowledged %lld)",
                  end, last);
    char data[300];
    snprintf (data, sizeof data, "%s/data", h->dir);
    char *before = s_listing (data);

    char *log = NULL;
    assert_int_equal (s_run_expecting_exit (h, NULL, &log), 1);
    char want[600];
    snprintf (want, sizeof want, "%s/accounts.db: the log of context accounts ends at "
              "position %lld", data, end);
    s_assert_has (log, want);
    snprintf (want, sizeof want, "but position %lld was seen on this host: "
              "high-water mark %lld (%s/accounts.hwm)", last, last, data);
    s_assert_has (log, want);
    s_assert_has (log, "--accept-truncated-log accounts");
    s_assert_has (log, "Restore");
    free (log);
    char *after = s_listing (data);
    assert_string_equal (before, after);
    free (before);
    free (after);

    const char *const accept[] = { "--accept-truncated-log", "accounts", NULL };
    assert_int_equal (s_start (h, accept), 0);
    log = h_read_log (h);
    snprintf (want, sizeof want, "WARN --accept-truncated-log accounts: positions "
              "%lld..%lld of context accounts are lost", end + 1, last);
    s_assert_has (log, want);
    snprintf (want, sizeof want, "high-water mark reset to %lld", end);
    s_assert_has (log, want);
    free (log);
    /* The host serves: the next event takes the position after the end. */
    long long pos = s_send_ok (h, "OpenAccount", NULL,
                               json_pack ("{s:s, s:s}", "account", "after", "owner", "t"));
    assert_int_equal (pos, end + 1);
    assert_int_equal (h_cleanup (h), 0);
}

static void
test_second_host_on_one_data_dir_is_refused (void **state)
{
    (void) state;
    h_host_t h;
    assert_int_equal (h_init (&h), 0);
    assert_int_equal (h_start (&h), 0);
    long long last = s_open_accounts (&h);
    /* Once the mark shows the last command, the first host writes nothing
     * more until the next command: any new file would be the second's. */
    for (int i = 0; i < 1000 && s_mark (&h) != last; i++)
        usleep (10000);
    assert_int_equal (s_mark (&h), last);
    char data[300];
    snprintf (data, sizeof data, "%s/data", h.dir);
    char *before = s_names (data);

    char *err = NULL;
    int rc = h_run_host_expecting_exit (h.config, &err);
    assert_int_not_equal (rc, 0);
    assert_int_not_equal (rc, -1);           /* it exited at once, by itself */
    char want[400];
    snprintf (want, sizeof want, "host.data %s is in use by bctx-host pid %d", data,
              (int) h.pid);
    s_assert_has (err, want);
    free (err);
    char *after = s_names (data);
    assert_string_equal (before, after);
    free (before);
    free (after);

    /* The first host keeps serving. */
    s_send_ok (&h, "Deposit", NULL, json_pack ("{s:s, s:i}", "account", "a0", "amount", 5));
    assert_int_equal (h_cleanup (&h), 0);
}

static void
test_wal_truncated_by_half_refuses (void **state)
{
    (void) state;
    h_host_t h;
    long long last = s_killed_with_wal (&h);
    char wal[400];
    snprintf (wal, sizeof wal, "%s/data/accounts.db-wal", h.dir);
    struct stat st;
    assert_int_equal (stat (wal, &st), 0);
    assert_int_equal (truncate (wal, st.st_size / 2), 0);
    s_refuses_then_accepts (&h, last);
}

static void
test_wal_deleted_refuses (void **state)
{
    (void) state;
    h_host_t h;
    long long last = s_killed_with_wal (&h);
    char wal[400];
    snprintf (wal, sizeof wal, "%s/data/accounts.db-wal", h.dir);
    assert_int_equal (unlink (wal), 0);
    s_refuses_then_accepts (&h, last);
}

static void
test_wal_byte_flipped_refuses (void **state)
{
    (void) state;
    h_host_t h;
    long long last = s_killed_with_wal (&h);
    char wal[400];
    snprintf (wal, sizeof wal, "%s/data/accounts.db-wal", h.dir);
    /* In the first frame's page (after the 32-byte WAL header and the
     * 24-byte frame header): its checksum fails, and every frame after. */
    int fd = open (wal, O_RDWR);
    assert_true (fd >= 0);
    unsigned char b;
    assert_int_equal (pread (fd, &b, 1, 32 + 24 + 100), 1);
    b ^= 0xff;
    assert_int_equal (pwrite (fd, &b, 1, 32 + 24 + 100), 1);
    close (fd);
    s_refuses_then_accepts (&h, last);
}

static void
test_db_emptied_refuses (void **state)
{
    (void) state;
    h_host_t h;
    long long last = s_killed_with_wal (&h);
    char db[400];
    snprintf (db, sizeof db, "%s/data/accounts.db", h.dir);
    assert_int_equal (truncate (db, 0), 0);
    s_refuses_then_accepts (&h, last);
}

static void
test_corrupted_pages_refuse_at_start (void **state)
{
    (void) state;
    h_host_t h;
    assert_int_equal (h_init (&h), 0);
    assert_int_equal (h_start (&h), 0);
    s_open_accounts (&h);
    for (int i = 0; i < 300; i++)
        s_send_ok (&h, "Deposit", NULL, json_pack ("{s:s, s:i}", "account", "a1", "amount", 1));
    /* A clean stop folds the WAL into the one file. */
    assert_int_equal (h_stop (&h, SIGTERM), 0);
    char db[400];
    snprintf (db, sizeof db, "%s/data/accounts.db", h.dir);
    struct stat st;
    assert_int_equal (stat (db, &st), 0);
    long pages = (long) (st.st_size / 4096);
    assert_true (pages > 8);
    /* 2 KB of 0xff in the middle of each page past the schema's. */
    int fd = open (db, O_RDWR);
    assert_true (fd >= 0);
    unsigned char junk[2048];
    memset (junk, 0xff, sizeof junk);
    for (long p = 2; p < pages; p++)
        assert_int_equal (pwrite (fd, junk, sizeof junk, p * 4096 + 1024), (ssize_t) sizeof junk);
    close (fd);

    char *log = NULL;
    assert_int_equal (s_run_expecting_exit (&h, NULL, &log), 1);
    char want[500];
    snprintf (want, sizeof want, "integrity check at start: %s: ", db);
    s_assert_has (log, want);
    s_assert_has (log, "restore it (and its -wal) from a backup");
    free (log);
    assert_int_equal (h_cleanup (&h), 0);
}

/* The disk-full case's host and mount, for its teardown. */
typedef struct {
    h_host_t h;               /* the host */
    char mount[300];          /* the tmpfs mounted as host.data, or "" */
} s_full_t;

static int
s_full_teardown (void **state)
{
    s_full_t *f = *state;
    if (!f)
        return 0;
    if (f->h.pid)
        h_stop (&f->h, SIGKILL);
    if (f->mount[0] && umount (f->mount) != 0)
        fprintf (stderr, "test: cannot unmount %s: %s\n", f->mount, strerror (errno));
    h_cleanup (&f->h);
    free (f);
    return 0;
}

/* Sends a Deposit with id; Return 1 when applied, 0 when refused (the
 * reply's message in msg). */
static int
s_deposit (const h_host_t *h, const char *id, char *msg, size_t size)
{
    json_t *r = h_send (h->endpoint, "accounts", "Deposit", id,
                        json_pack ("{s:s, s:i}", "account", "a0", "amount", 1));
    assert_non_null (r);
    int ok = json_is_true (json_object_get (r, "ok"));
    const char *text = json_string_value (json_object_get (json_object_get (r, "error"),
                                                           "message"));
    snprintf (msg, size, "%s", text ? text : "");
    json_decref (r);
    return ok;
}

static void
test_disk_full_says_so_and_recovers (void **state)
{
    if (geteuid () != 0) {
        printf ("skipped: disk-full test needs root to mount a tmpfs\n");
        return;
    }
    s_full_t *f = calloc (1, sizeof *f);
    *state = f;
    h_host_t *h = &f->h;
    assert_int_equal (h_init (h), 0);
    snprintf (f->mount, sizeof f->mount, "%s/data", h->dir);
    assert_int_equal (mkdir (f->mount, 0755), 0);
    if (mount ("tmpfs", f->mount, "tmpfs", 0, "size=2m") != 0) {
        int e = errno;
        f->mount[0] = '\0';
        fail_msg ("cannot mount a tmpfs: %s", strerror (e));
    }
    assert_int_equal (h_start (h), 0);
    s_open_accounts (h);

    char ids[400][32];
    int acked[400] = { 0 };
    int n = 0;
    char msg[1024];
    for (; n < 10; n++) {
        snprintf (ids[n], sizeof ids[n], "before-%d", n);
        acked[n] = s_deposit (h, ids[n], msg, sizeof msg);
        assert_true (acked[n]);
    }
    /* Fill the disk. */
    char filler[400];
    snprintf (filler, sizeof filler, "%s/filler", f->mount);
    int fd = open (filler, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true (fd >= 0);
    static char chunk[65536];
    for (int i = 0; i < 1000 && write (fd, chunk, sizeof chunk) > 0; i++)
        ;
    close (fd);
    /* Commands until one finds the disk full (each frame needs room). */
    int refused = -1;
    for (; n < 300 && refused < 0; n++) {
        snprintf (ids[n], sizeof ids[n], "full-%d", n);
        acked[n] = s_deposit (h, ids[n], msg, sizeof msg);
        if (!acked[n])
            refused = n;
    }
    assert_true (refused >= 0);
    char want[500];
    snprintf (want, sizeof want, "store: disk full writing %s/accounts.db; the command "
              "was not applied", f->mount);
    assert_string_equal (msg, want);
    char *log = h_read_log (h);
    s_assert_has (log, want);
    free (log);
    /* Room again: commands succeed. */
    assert_int_equal (unlink (filler), 0);
    for (int k = 0; k < 20; k++, n++) {
        snprintf (ids[n], sizeof ids[n], "after-%d", n);
        acked[n] = s_deposit (h, ids[n], msg, sizeof msg);
        if (!acked[n])
            fail_msg ("command %s failed after the disk had room again: %s", ids[n], msg);
    }
    assert_int_equal (h_stop (h, SIGTERM), 0);

    /* Every acknowledged command is in the log once; the refused one not. */
    assert_int_equal (h_start (h), 0);
    json_t *events = h_events (h, "accounts");
    assert_non_null (events);
    json_t *count = json_object ();
    size_t i;
    json_t *e;
    json_array_foreach (events, i, e) {
        assert_int_equal (json_integer_value (json_object_get (e, "position")), (json_int_t) i + 1);
        const char *id = json_string_value (json_object_get (json_object_get (e, "metadata"),
                                                             "command_id"));
        assert_non_null (id);
        json_object_set_new (count, id, json_integer (json_integer_value (json_object_get (count, id)) + 1));
    }
    for (int k = 0; k < n; k++) {
        json_int_t c = json_integer_value (json_object_get (count, ids[k]));
        if (acked[k] && c != 1)
            fail_msg ("acknowledged command %s is in the log %d times", ids[k], (int) c);
        if (!acked[k] && c != 0)
            fail_msg ("refused command %s is in the log", ids[k]);
    }
    json_decref (count);
    json_decref (events);
    assert_int_equal (h_stop (h, SIGTERM), 0);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_second_host_on_one_data_dir_is_refused),
        cmocka_unit_test (test_wal_truncated_by_half_refuses),
        cmocka_unit_test (test_wal_deleted_refuses),
        cmocka_unit_test (test_wal_byte_flipped_refuses),
        cmocka_unit_test (test_db_emptied_refuses),
        cmocka_unit_test (test_corrupted_pages_refuse_at_start),
        cmocka_unit_test_teardown (test_disk_full_says_so_and_recovers, s_full_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
