/*
 * bctx-ceiling - measures, in a given folder, the limits of the disk and of
 * SQLite that the host's durable figures are to be read against, so that
 * `make bench` prints ceilings of the same run on the same disk.  A
 * measuring tool, not part of the host: it talks to SQLite directly.
 *
 *   bctx-ceiling DIR [--seconds S]
 *
 * Each measure stops after S seconds (default 3) or a fixed count,
 * whichever comes first:
 *   1. a 200-byte append then fdatasync, up to 2000 times: p50, p99, syncs/s;
 *   2. 1000 200-byte records appended per fdatasync, up to 1000 syncs:
 *      records/s;
 *   3. SQLite in WAL mode with synchronous=FULL, on a table shaped like the
 *      host's event log, 200-byte data over 1000 aggregates: events/s at 1
 *      event per transaction (up to 20 000) and at 100 (up to 300 000);
 *   4. a sequential read of that log in position order, repeated up to 10
 *      times: events/s.
 * Prints one JSON object on stdout and removes the files it wrote.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sqlite3.h>

#define S_RECORD       200      /* bytes per record, and per event's data */
#define S_SMALL_MAX    2000     /* small syncs at most */
#define S_BATCH        1000     /* records per sync in the batched measure */
#define S_BATCH_MAX    1000     /* batched syncs at most (200 MB) */
#define S_AGGREGATES   1000     /* aggregates the events are spread over */
#define S_ONE_MAX      20000    /* events at most at 1 per transaction */
#define S_HUNDRED_MAX  300000   /* events at most at 100 per transaction */
#define S_READS_MAX    10       /* full reads of the log at most */

/* The host's event log (host/store.c), without its triggers. */
static const char s_schema[] =
    "CREATE TABLE events ("
    "  position  INTEGER PRIMARY KEY,"
    "  aggregate TEXT NOT NULL,"
    "  version   INTEGER NOT NULL,"
    "  type      TEXT NOT NULL,"
    "  data      TEXT NOT NULL,"
    "  metadata  TEXT NOT NULL,"
    "  command   TEXT,"
    "  UNIQUE (aggregate, version));";

/* The SQLite writer's state, carried from one write measure to the next. */
typedef struct {
    sqlite3 *db;                    /* the connection */
    sqlite3_stmt *insert;           /* the prepared INSERT */
    long position;                  /* last position written */
    long version[S_AGGREGATES];     /* last version of each aggregate */
    char data[S_RECORD + 1];        /* the data of every event */
} s_log_t;

/* Returns monotonic seconds. */
static double
s_now (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

/* Orders longs for qsort. */
static int
s_cmp_long (const void *a, const void *b)
{
    long x = *(const long *) a, y = *(const long *) b;
    return (x > y) - (x < y);
}

/* Writes all of buf to fd; returns 0, or -1 with errno set. */
static int
s_write_all (int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write (fd, buf, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        buf += n;
        len -= (size_t) n;
    }
    return 0;
}

/* Measure 1: appends S_RECORD bytes then fdatasyncs, up to S_SMALL_MAX
 * times or seconds; sets p50 and p99 (µs) and syncs per second.  Returns 0,
 * or -1 after saying on stderr which file failed. */
static int
s_small_syncs (const char *path, double seconds, long *p50, long *p99, double *per_second)
{
    int fd = open (path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0600);
    long *lat = malloc (S_SMALL_MAX * sizeof *lat);
    char rec[S_RECORD];
    memset (rec, 'x', sizeof rec);
    rec[S_RECORD - 1] = '\n';
    if (fd < 0 || !lat) {
        fprintf (stderr, "bctx-ceiling: %s: %s\n", path, fd < 0 ? strerror (errno) : "out of memory");
        if (fd >= 0)
            close (fd);
        free (lat);
        return -1;
    }
    double t0 = s_now (), deadline = t0 + seconds;
    long n = 0;
    while (n < S_SMALL_MAX && s_now () < deadline) {
        double t = s_now ();
        if (s_write_all (fd, rec, sizeof rec) != 0 || fdatasync (fd) != 0) {
            fprintf (stderr, "bctx-ceiling: %s: %s\n", path, strerror (errno));
            close (fd);
            unlink (path);
            free (lat);
            return -1;
        }
        lat[n++] = (long) ((s_now () - t) * 1e6);
    }
    double elapsed = s_now () - t0;
    close (fd);
    unlink (path);
    qsort (lat, (size_t) n, sizeof *lat, s_cmp_long);
    *p50 = n ? lat[n / 2] : 0;
    *p99 = n ? lat[(long) ((double) n * 0.99)] : 0;
    *per_second = elapsed > 0 ? (double) n / elapsed : 0;
    free (lat);
    return 0;
}

/* Measure 2: appends S_BATCH records of S_RECORD bytes per fdatasync, up to
 * S_BATCH_MAX syncs or seconds; sets records per second.  Returns 0, or -1
 * after saying on stderr which file failed. */
static int
s_batched_syncs (const char *path, double seconds, double *per_second)
{
    int fd = open (path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0600);
    char *buf = malloc ((size_t) S_BATCH * S_RECORD);
    if (fd < 0 || !buf) {
        fprintf (stderr, "bctx-ceiling: %s: %s\n", path, fd < 0 ? strerror (errno) : "out of memory");
        if (fd >= 0)
            close (fd);
        free (buf);
        return -1;
    }
    memset (buf, 'x', (size_t) S_BATCH * S_RECORD);
    for (int i = 1; i <= S_BATCH; i++)
        buf[i * S_RECORD - 1] = '\n';
    double t0 = s_now (), deadline = t0 + seconds;
    long syncs = 0;
    while (syncs < S_BATCH_MAX && s_now () < deadline) {
        if (s_write_all (fd, buf, (size_t) S_BATCH * S_RECORD) != 0 || fdatasync (fd) != 0) {
            fprintf (stderr, "bctx-ceiling: %s: %s\n", path, strerror (errno));
            close (fd);
            unlink (path);
            free (buf);
            return -1;
        }
        syncs++;
    }
    double elapsed = s_now () - t0;
    close (fd);
    unlink (path);
    free (buf);
    *per_second = elapsed > 0 ? (double) syncs * S_BATCH / elapsed : 0;
    return 0;
}

/* Says on stderr what SQLite reported for path; returns -1. */
static int
s_sqlite_err (const char *path, sqlite3 *db)
{
    fprintf (stderr, "bctx-ceiling: %s: %s\n", path, db ? sqlite3_errmsg (db) : "cannot open");
    return -1;
}

/* Opens a new log at path with the host's pragmas for a context's store
 * (WAL, synchronous=FULL, a 16 MB cache).  Returns 0, or -1 after saying
 * why on stderr; log->db is then closed by s_log_close all the same. */
static int
s_log_open (s_log_t *log, const char *path)
{
    memset (log, 0, sizeof *log);
    unlink (path);
    if (sqlite3_open_v2 (path, &log->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE
                         | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK
        || sqlite3_exec (log->db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
                         "PRAGMA cache_size=-16384;", NULL, NULL, NULL) != SQLITE_OK
        || sqlite3_exec (log->db, s_schema, NULL, NULL, NULL) != SQLITE_OK
        || sqlite3_prepare_v2 (log->db,
                               "INSERT INTO events (position, aggregate, version, type, data,"
                               " metadata, command) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                               -1, &log->insert, NULL) != SQLITE_OK)
        return s_sqlite_err (path, log->db);
    int len = snprintf (log->data, sizeof log->data, "{\"account\":\"acc-0\",\"amount\":1,\"note\":\"");
    memset (log->data + len, 'x', (size_t) (S_RECORD - len - 2));
    memcpy (log->data + S_RECORD - 2, "\"}", 3);
    return 0;
}

/* Closes what s_log_open opened and removes the log's files. */
static void
s_log_close (s_log_t *log, const char *path)
{
    sqlite3_finalize (log->insert);
    sqlite3_close (log->db);
    log->insert = NULL;
    log->db = NULL;
    char side[1100];
    unlink (path);
    snprintf (side, sizeof side, "%s-wal", path);
    unlink (side);
    snprintf (side, sizeof side, "%s-shm", path);
    unlink (side);
}

/* Measure 3: appends events per_tx to a transaction, round-robin over the
 * aggregates, until max events or seconds; sets events per second.  Returns
 * 0, or -1 after saying why on stderr. */
static int
s_log_write (s_log_t *log, const char *path, int per_tx, long max, double seconds,
             double *per_second)
{
    char agg[32], meta[256], id[48];
    double t0 = s_now (), deadline = t0 + seconds;
    long written = 0;
    while (written < max && s_now () < deadline) {
        if (sqlite3_exec (log->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
            return s_sqlite_err (path, log->db);
        for (int k = 0; k < per_tx; k++, written++) {
            long pos = ++log->position, a = pos % S_AGGREGATES;
            snprintf (agg, sizeof agg, "acc-%ld", a);
            snprintf (id, sizeof id, "ceiling-%ld", pos);
            snprintf (meta, sizeof meta,
                      "{\"command_id\":\"%s\",\"correlation_id\":\"%s\",\"causation_id\":\"%s\","
                      "\"time\":\"2026-01-01T00:00:00.000000Z\"}", id, id, id);
            sqlite3_stmt *st = log->insert;
            sqlite3_bind_int64 (st, 1, pos);
            sqlite3_bind_text (st, 2, agg, -1, SQLITE_STATIC);
            sqlite3_bind_int64 (st, 3, ++log->version[a]);
            sqlite3_bind_text (st, 4, "Deposited", -1, SQLITE_STATIC);
            sqlite3_bind_text (st, 5, log->data, S_RECORD, SQLITE_STATIC);
            sqlite3_bind_text (st, 6, meta, -1, SQLITE_STATIC);
            sqlite3_bind_text (st, 7, id, -1, SQLITE_STATIC);
            int rc = sqlite3_step (st);
            sqlite3_reset (st);
            if (rc != SQLITE_DONE) {
                s_sqlite_err (path, log->db);
                sqlite3_exec (log->db, "ROLLBACK", NULL, NULL, NULL);
                return -1;
            }
        }
        if (sqlite3_exec (log->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
            return s_sqlite_err (path, log->db);
    }
    double elapsed = s_now () - t0;
    *per_second = elapsed > 0 ? (double) written / elapsed : 0;
    return 0;
}

/* Measure 4: reads the whole log in position order on a new read-only
 * connection, every column of every row, up to S_READS_MAX times or
 * seconds; sets events per second and the events in the log.  Returns 0,
 * or -1 after saying why on stderr. */
static int
s_log_read (const char *path, double seconds, double *per_second, long *events)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    if (sqlite3_open_v2 (path, &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK
        || sqlite3_prepare_v2 (db, "SELECT position, aggregate, version, type, data, metadata,"
                               " command FROM events ORDER BY position", -1, &st, NULL) != SQLITE_OK) {
        s_sqlite_err (path, db);
        sqlite3_close (db);
        return -1;
    }
    double t0 = s_now (), deadline = t0 + seconds;
    long rows = 0;
    int rc = SQLITE_DONE;
    *events = 0;
    for (int pass = 0; pass < S_READS_MAX && s_now () < deadline && rc == SQLITE_DONE; pass++) {
        long n = 0;
        while ((rc = sqlite3_step (st)) == SQLITE_ROW) {
            (void) sqlite3_column_int64 (st, 0);
            (void) sqlite3_column_int64 (st, 2);
            for (int c = 1; c <= 6; c++)
                if (c != 2)
                    (void) sqlite3_column_text (st, c);
            n++;
        }
        sqlite3_reset (st);
        rows += n;
        *events = n;
    }
    double elapsed = s_now () - t0;
    if (rc != SQLITE_DONE) {
        s_sqlite_err (path, db);
        sqlite3_finalize (st);
        sqlite3_close (db);
        return -1;
    }
    sqlite3_finalize (st);
    sqlite3_close (db);
    *per_second = elapsed > 0 ? (double) rows / elapsed : 0;
    return 0;
}

int
main (int argc, char **argv)
{
    double seconds = 3;
    if (argc == 4 && strcmp (argv[2], "--seconds") == 0)
        seconds = atof (argv[3]);
    if ((argc != 2 && argc != 4) || seconds <= 0 || seconds > 60) {
        fprintf (stderr, "usage: bctx-ceiling DIR [--seconds S]  (S per measure, 0 < S <= 60)\n");
        return 2;
    }
    char small[1024], batch[1024], db[1024];
    if ((size_t) snprintf (small, sizeof small, "%s/ceiling-small.dat", argv[1]) >= sizeof small
        || (size_t) snprintf (batch, sizeof batch, "%s/ceiling-batch.dat", argv[1]) >= sizeof batch
        || (size_t) snprintf (db, sizeof db, "%s/ceiling.db", argv[1]) >= sizeof db) {
        fprintf (stderr, "bctx-ceiling: %s: path too long\n", argv[1]);
        return 2;
    }
    long p50 = 0, p99 = 0, events = 0;
    double syncs = 0, records = 0, one = 0, hundred = 0, read = 0;
    if (s_small_syncs (small, seconds, &p50, &p99, &syncs) != 0
        || s_batched_syncs (batch, seconds, &records) != 0)
        return 1;
    s_log_t *log = malloc (sizeof *log);
    if (!log) {
        fprintf (stderr, "bctx-ceiling: out of memory\n");
        return 1;
    }
    int rc = s_log_open (log, db);
    if (rc == 0)
        rc = s_log_write (log, db, 1, S_ONE_MAX, seconds, &one);
    if (rc == 0)
        rc = s_log_write (log, db, 100, S_HUNDRED_MAX, seconds, &hundred);
    sqlite3_finalize (log->insert);
    log->insert = NULL;
    if (rc == 0)
        rc = s_log_read (db, seconds, &read, &events);
    s_log_close (log, db);
    free (log);
    if (rc != 0)
        return 1;
    printf ("{\"seconds_each\":%.3f,\"fdatasync_p50_us\":%ld,\"fdatasync_p99_us\":%ld,"
            "\"fdatasync_per_second\":%.0f,\"batch_records_per_second\":%.0f,"
            "\"sqlite_1_per_tx_per_second\":%.0f,\"sqlite_100_per_tx_per_second\":%.0f,"
            "\"sqlite_read_per_second\":%.0f,\"read_events\":%ld}\n",
            seconds, p50, p99, syncs, records, one, hundred, read, events);
    return 0;
}
