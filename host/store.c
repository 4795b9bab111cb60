/*
 * store - SQLite implementation of the event store.  Each statement is
 * prepared once at open.  Append-only is enforced by triggers, so even a
 * user with the sqlite3 shell cannot update or delete an event.
 */
#include "store.h"
#include "store_sql.h"
#include "util.h"

#include <assert.h>
#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum {
    S_BEGIN, S_COMMIT, S_ROLLBACK, S_INSERT, S_VERSION, S_REMEMBER, S_RECALL,
    S_READ, S_READ_AGG_FROM, S_READ_AGG, S_LAST, S_POSITION_AT, S_COUNT
};

static const char *const s_sql[S_COUNT] = {
    [S_BEGIN] = "BEGIN IMMEDIATE",
    [S_COMMIT] = "COMMIT",
    [S_ROLLBACK] = "ROLLBACK",
    [S_INSERT] = "INSERT INTO events (position, aggregate, version, type, data, metadata, command)"
                 " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    [S_VERSION] = "SELECT max(version) FROM events WHERE aggregate = ?1",
    [S_REMEMBER] = "INSERT INTO commands (id, reply) VALUES (?1, ?2)",
    [S_RECALL] = "SELECT reply FROM commands WHERE id = ?1",
    [S_READ] = "SELECT position, aggregate, version, type, data, metadata, command"
               " FROM events WHERE position >= ?1 ORDER BY position LIMIT ?2",
    /* By version, which grows with position in an aggregate: the index on
     * (aggregate, version) serves it with no sort. */
    [S_READ_AGG_FROM] = "SELECT position, aggregate, version, type, data, metadata, command"
                        " FROM events WHERE aggregate = ?3 AND version >= ?4"
                        " AND position >= ?1 ORDER BY version LIMIT ?2",
    [S_READ_AGG] = "SELECT position, aggregate, version, type, data, metadata, command"
                   " FROM events WHERE aggregate = ?1 ORDER BY version",
    [S_LAST] = "SELECT coalesce(max(position), 0) FROM events",
    [S_POSITION_AT] = "SELECT position FROM events WHERE aggregate = ?1 AND version >= ?2"
                      " ORDER BY version LIMIT 1",
};

static const char s_schema[] =
    "CREATE TABLE IF NOT EXISTS events ("
    "  position  INTEGER PRIMARY KEY,"
    "  aggregate TEXT NOT NULL,"
    "  version   INTEGER NOT NULL,"
    "  type      TEXT NOT NULL,"
    "  data      TEXT NOT NULL,"
    "  metadata  TEXT NOT NULL,"
    "  command   TEXT,"
    "  UNIQUE (aggregate, version));"
    "CREATE TRIGGER IF NOT EXISTS events_no_update BEFORE UPDATE ON events"
    "  BEGIN SELECT RAISE(ABORT, 'the event log is append-only'); END;"
    "CREATE TRIGGER IF NOT EXISTS events_no_delete BEFORE DELETE ON events"
    "  BEGIN SELECT RAISE(ABORT, 'the event log is append-only'); END;"
    "CREATE TABLE IF NOT EXISTS commands ("
    "  id    TEXT PRIMARY KEY,"
    "  reply TEXT NOT NULL) WITHOUT ROWID;";

struct bctx_store {
    sqlite3 *db;                    /* the connection */
    sqlite3_stmt *stmt[S_COUNT];    /* prepared statements, by S_* */
    int64_t position;               /* last position appended or committed */
    int64_t committed;              /* last position known durable */
    int in_tx;                      /* inside begin … commit */
    int handed_off;                 /* another process writes on: no fold at close */
    char *path;                     /* the file, for messages */
    char error[512];                /* the first error since begin, or "" */
};

void
bctx_store_sql_err (char *err, size_t errlen, const char *path, sqlite3 *db)
{
    snprintf (err, errlen, "%s: %s", path, db ? sqlite3_errmsg (db)
                                               : "out of memory");
}

int
bctx_store_sql_exec (sqlite3_stmt *st)
{
    int rc = sqlite3_step (st);
    sqlite3_reset (st);
    return rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : rc;
}

/* A unique key taken (not some other constraint, such as NOT NULL). */
static int
s_is_duplicate (int rc)
{
    return rc == SQLITE_CONSTRAINT_UNIQUE || rc == SQLITE_CONSTRAINT_PRIMARYKEY;
}

/* Keeps the first error of a transaction (what a later rollback says
 * would hide it), naming a full disk as such.  rc: what SQLite returned. */
static void
s_fail (bctx_store_t *self, int rc)
{
    if (self->error[0])
        return;
    if (rc == SQLITE_FULL || ((rc & 0xff) == SQLITE_IOERR
                              && sqlite3_system_errno (self->db) == ENOSPC))
        snprintf (self->error, sizeof self->error, "disk full writing %s",
                  self->path);
    else
        snprintf (self->error, sizeof self->error, "%s: %s", self->path,
                  sqlite3_errmsg (self->db));
}

int64_t
bctx_store_sql_int (sqlite3_stmt *st, int64_t otherwise)
{
    int64_t v = otherwise;
    if (sqlite3_step (st) == SQLITE_ROW)
        v = sqlite3_column_int64 (st, 0);
    sqlite3_reset (st);
    sqlite3_clear_bindings (st);
    return v;
}

char *
bctx_store_sql_text (sqlite3_stmt *st)
{
    char *text = NULL;
    if (sqlite3_step (st) == SQLITE_ROW)
        text = strdup ((const char *) sqlite3_column_text (st, 0));
    sqlite3_reset (st);
    sqlite3_clear_bindings (st);
    return text;
}

/* The log's last position, or -1 when it cannot be read. */
static int64_t
s_last_position (bctx_store_t *self)
{
    return bctx_store_sql_int (self->stmt[S_LAST], -1);
}

int
bctx_store_sql_open (const char *path, int readonly, const char *synchronous,
                     const char *schema, const char *const *sql, int n,
                     sqlite3_stmt **stmt, sqlite3 **db, char *err, size_t errlen)
{
    int oflags = SQLITE_OPEN_NOMUTEX
                 | (readonly ? SQLITE_OPEN_READONLY
                             : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
    if (sqlite3_open_v2 (path, db, oflags, NULL) != SQLITE_OK) {
        bctx_store_sql_err (err, errlen, path, *db);
        return BCTX_ESTORE;
    }
    sqlite3_busy_timeout (*db, 5000);
    if (!readonly) {
        char pragmas[160];
        snprintf (pragmas, sizeof pragmas, "PRAGMA journal_mode=WAL; PRAGMA synchronous=%s;"
                  "PRAGMA cache_size=-16384;", synchronous);
        char *msg = NULL;
        if (sqlite3_exec (*db, pragmas, NULL, NULL, &msg) != SQLITE_OK
            || sqlite3_exec (*db, schema, NULL, NULL, &msg) != SQLITE_OK) {
            snprintf (err, errlen, "%s: %s", path, msg ? msg : "cannot set up");
            sqlite3_free (msg);
            return BCTX_ESTORE;
        }
    }
    for (int i = 0; i < n; i++)
        if (sqlite3_prepare_v3 (*db, sql[i], -1, SQLITE_PREPARE_PERSISTENT, &stmt[i],
                                NULL) != SQLITE_OK) {
            bctx_store_sql_err (err, errlen, path, *db);
            return BCTX_ESTORE;
        }
    return 0;
}

void
bctx_store_sql_close (sqlite3 *db, sqlite3_stmt **stmt, int n, int fold)
{
    for (int i = 0; i < n; i++)
        sqlite3_finalize (stmt[i]);
    if (fold && db && !sqlite3_db_readonly (db, "main"))
        sqlite3_wal_checkpoint_v2 (db, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);
    sqlite3_close (db);
}

bctx_store_t *
bctx_store_open (const char *path, int flags, char *err, size_t errlen)
{
    bctx_store_t *self = calloc (1, sizeof *self);
    self->path = strdup (path);
    if (bctx_store_sql_open (path, flags & BCTX_STORE_READONLY,
                             flags & BCTX_STORE_REPLICA ? "NORMAL" : "FULL", s_schema,
                             s_sql, S_COUNT, self->stmt, &self->db, err, errlen) != 0)
        goto fail;
    sqlite3_extended_result_codes (self->db, 1);
    self->position = self->committed = s_last_position (self);
    if (self->position < 0) {
        bctx_store_sql_err (err, errlen, path, self->db);
        goto fail;
    }
    return self;
fail:
    bctx_store_destroy (&self);
    return NULL;
}

void
bctx_store_destroy (bctx_store_t **self_p)
{
    BCTX_SELF_OR_RETURN (bctx_store_t, self_p);
    bctx_store_rollback (self);
    /* After a clean stop the context is one file.  Not after a hand-off:
     * the fold would hold the log's write lock, waiting for readers, while
     * the next writer waits. */
    bctx_store_sql_close (self->db, self->stmt, S_COUNT, !self->handed_off);
    free (self->path);
    free (self);
    *self_p = NULL;
}

void
bctx_store_hand_off (bctx_store_t *self)
{
    self->handed_off = 1;
}

int64_t
bctx_store_position (bctx_store_t *self)
{
    return self->position;
}

int64_t
bctx_store_head (bctx_store_t *self)
{
    return s_last_position (self);
}

int
bctx_store_begin (bctx_store_t *self)
{
    assert (!self->in_tx);
    self->error[0] = '\0';
    int rc = bctx_store_sql_exec (self->stmt[S_BEGIN]);
    if (rc != 0) {
        s_fail (self, rc);
        return BCTX_ESTORE;
    }
    self->in_tx = 1;
    /* Another writer (a second host on the same file) may have appended. */
    int64_t last = s_last_position (self);
    if (last < 0) {
        s_fail (self, sqlite3_errcode (self->db));
        bctx_store_rollback (self);
        return BCTX_ESTORE;
    }
    self->position = self->committed = last;
    return 0;
}

int
bctx_store_commit (bctx_store_t *self)
{
    assert (self->in_tx);
    int rc = bctx_store_sql_exec (self->stmt[S_COMMIT]);
    if (rc != 0) {
        s_fail (self, rc);
        bctx_store_rollback (self);
        return BCTX_ESTORE;
    }
    self->in_tx = 0;
    self->committed = self->position;
    return 0;
}

void
bctx_store_rollback (bctx_store_t *self)
{
    if (!self->in_tx)
        return;
    /* A full disk or an I/O error may have rolled the transaction back
     * already: a ROLLBACK then fails and says nothing useful. */
    if (!sqlite3_get_autocommit (self->db))
        bctx_store_sql_exec (self->stmt[S_ROLLBACK]);
    self->in_tx = 0;
    self->position = self->committed;
}

int64_t
bctx_store_version (bctx_store_t *self, const char *aggregate)
{
    sqlite3_stmt *st = self->stmt[S_VERSION];
    sqlite3_bind_text (st, 1, aggregate, -1, SQLITE_STATIC);
    return bctx_store_sql_int (st, -1);   /* NULL reads as 0 */
}

int
bctx_store_append (bctx_store_t *self, const char *aggregate,
                   int64_t expected, bctx_row_t *events, size_t n)
{
    assert (self->in_tx);
    int64_t current = bctx_store_version (self, aggregate);
    if (current < 0) {
        s_fail (self, sqlite3_errcode (self->db));
        return BCTX_ESTORE;
    }
    if (current != expected)
        return BCTX_ESTORECONFLICT;
    sqlite3_stmt *st = self->stmt[S_INSERT];
    for (size_t i = 0; i < n; i++) {
        bctx_row_t *e = &events[i];
        assert (strcmp (e->aggregate, aggregate) == 0);
        e->position = self->position + 1;
        e->version = expected + (int64_t) i + 1;
        sqlite3_bind_int64 (st, 1, e->position);
        sqlite3_bind_text (st, 2, aggregate, -1, SQLITE_STATIC);
        sqlite3_bind_int64 (st, 3, e->version);
        sqlite3_bind_text (st, 4, e->type, -1, SQLITE_STATIC);
        sqlite3_bind_text (st, 5, e->data, -1, SQLITE_STATIC);
        sqlite3_bind_text (st, 6, e->metadata, -1, SQLITE_STATIC);
        sqlite3_bind_text (st, 7, e->command, -1, SQLITE_STATIC);
        int rc = bctx_store_sql_exec (st);
        sqlite3_clear_bindings (st);
        if (rc != 0) {
            /* Events 0..i-1 are in the transaction; the caller rolls back. */
            if (s_is_duplicate (rc))
                return BCTX_ESTORECONFLICT;
            s_fail (self, rc);
            return BCTX_ESTORE;
        }
        self->position = e->position;
    }
    return 0;
}

int
bctx_store_remember (bctx_store_t *self, const char *id, const char *reply)
{
    assert (self->in_tx);
    sqlite3_stmt *st = self->stmt[S_REMEMBER];
    sqlite3_bind_text (st, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_text (st, 2, reply, -1, SQLITE_STATIC);
    int rc = bctx_store_sql_exec (st);
    sqlite3_clear_bindings (st);
    if (rc == 0)
        return 0;
    if (s_is_duplicate (rc))
        return BCTX_ESTORECONFLICT;
    s_fail (self, rc);
    return BCTX_ESTORE;
}

char *
bctx_store_recall (bctx_store_t *self, const char *id)
{
    sqlite3_stmt *st = self->stmt[S_RECALL];
    sqlite3_bind_text (st, 1, id, -1, SQLITE_STATIC);
    return bctx_store_sql_text (st);
}

static int64_t
s_read_rows (sqlite3_stmt *st, bctx_row_fn fn, void *arg)
{
    int64_t count = 0;
    int rc;
    while ((rc = sqlite3_step (st)) == SQLITE_ROW) {
        bctx_row_t e = {
            .position = sqlite3_column_int64 (st, 0),
            .aggregate = (const char *) sqlite3_column_text (st, 1),
            .version = sqlite3_column_int64 (st, 2),
            .type = (const char *) sqlite3_column_text (st, 3),
            .data = (const char *) sqlite3_column_text (st, 4),
            .metadata = (const char *) sqlite3_column_text (st, 5),
            .command = (const char *) sqlite3_column_text (st, 6),
        };
        count++;
        if (fn (&e, arg) != 0) {
            rc = SQLITE_DONE;
            break;
        }
    }
    sqlite3_reset (st);
    sqlite3_clear_bindings (st);
    return rc == SQLITE_DONE ? count : BCTX_ESTORE;
}

/* The position of aggregate's first event from version on, or INT64_MAX
 * when there is none. */
static int64_t
s_position_at (bctx_store_t *self, const char *aggregate, int64_t version)
{
    sqlite3_stmt *st = self->stmt[S_POSITION_AT];
    sqlite3_bind_text (st, 1, aggregate, -1, SQLITE_STATIC);
    sqlite3_bind_int64 (st, 2, version);
    return bctx_store_sql_int (st, INT64_MAX);
}

/* The first version of aggregate's stream at position `from` or after,
 * found by bisection over its versions (a few index lookups, where
 * filtering by position would walk the whole stream). */
static int64_t
s_version_from (bctx_store_t *self, const char *aggregate, int64_t from)
{
    if (from <= 1)
        return 1;
    int64_t lo = 1, hi = bctx_store_version (self, aggregate) + 1;
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        if (s_position_at (self, aggregate, mid) >= from)
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo;
}

int64_t
bctx_store_read (bctx_store_t *self, int64_t from, const char *aggregate,
                 int64_t limit, bctx_row_fn fn, void *arg)
{
    int64_t version = aggregate ? s_version_from (self, aggregate, from) : 0;
    sqlite3_stmt *st = self->stmt[aggregate ? S_READ_AGG_FROM : S_READ];
    sqlite3_bind_int64 (st, 1, from);
    sqlite3_bind_int64 (st, 2, limit);
    if (aggregate) {
        sqlite3_bind_text (st, 3, aggregate, -1, SQLITE_STATIC);
        sqlite3_bind_int64 (st, 4, version);
    }
    return s_read_rows (st, fn, arg);
}

int64_t
bctx_store_read_aggregate (bctx_store_t *self, const char *aggregate,
                           bctx_row_fn fn, void *arg)
{
    sqlite3_stmt *st = self->stmt[S_READ_AGG];
    sqlite3_bind_text (st, 1, aggregate, -1, SQLITE_STATIC);
    return s_read_rows (st, fn, arg);
}

const char *
bctx_store_error (bctx_store_t *self)
{
    return self->error[0] ? self->error : sqlite3_errmsg (self->db);
}

/* ---------------------------------------------------------------------
 * Checks at start, on files no connection has open yet: read-only, so a
 * refusal leaves every file as it was (no WAL is folded or removed).
 */

/* Opens path read-only.  Without a -wal beside it the file is opened
 * immutable, so SQLite creates no empty -wal either.  Return 0, or
 * BCTX_ESTORE with err. */
int
bctx_store_sql_open_readonly (const char *path, sqlite3 **db, char *err, size_t errlen)
{
    char wal[4096], uri[12300];
    snprintf (wal, sizeof wal, "%s-wal", path);
    int flags = SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX;
    const char *name = path;
    if (access (wal, F_OK) != 0 && strlen (path) < 4096) {
        /* A URI: %, ? and # in the path are escaped. */
        size_t n = (size_t) snprintf (uri, sizeof uri, "file:");
        for (const char *c = path; *c; c++)
            n += (size_t) (strchr ("%?#", *c)
                           ? snprintf (uri + n, sizeof uri - n, "%%%02X", (unsigned char) *c)
                           : snprintf (uri + n, sizeof uri - n, "%c", *c));
        snprintf (uri + n, sizeof uri - n, "?immutable=1");
        name = uri;
        flags |= SQLITE_OPEN_URI;
    }
    if (sqlite3_open_v2 (name, db, flags, NULL) != SQLITE_OK) {
        bctx_store_sql_err (err, errlen, path, *db);
        sqlite3_close (*db);
        *db = NULL;
        return BCTX_ESTORE;
    }
    sqlite3_busy_timeout (*db, 5000);
    return 0;
}

/* Progress handler: non-zero (interrupt) once the deadline has passed. */
static int
s_past_deadline (void *arg)
{
    const struct timespec *deadline = arg;
    struct timespec now;
    clock_gettime (CLOCK_MONOTONIC, &now);
    return now.tv_sec > deadline->tv_sec
           || (now.tv_sec == deadline->tv_sec && now.tv_nsec >= deadline->tv_nsec);
}

int
bctx_store_check (const char *path, int max_ms, char *err, size_t errlen)
{
    sqlite3 *db = NULL;
    if (bctx_store_sql_open_readonly (path, &db, err, errlen) != 0)
        return BCTX_ESTORE;
    struct timespec deadline;
    clock_gettime (CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += max_ms / 1000;
    deadline.tv_nsec += (long) (max_ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    sqlite3_progress_handler (db, 1000, s_past_deadline, &deadline);
    sqlite3_stmt *st = NULL;
    int result = 0;
    int rc = sqlite3_prepare_v2 (db, "PRAGMA quick_check", -1, &st, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_step (st);
    if (rc == SQLITE_ROW) {
        /* "ok", or the problems found, one a line, after a heading line
         * "*** in database main ***" that names none: keep the first. */
        const char *text = (const char *) sqlite3_column_text (st, 0);
        if (!text || strcmp (text, "ok") != 0) {
            const char *first = text ? text : "quick_check failed";
            if (strncmp (first, "*** ", 4) == 0 && strchr (first, '\n'))
                first = strchr (first, '\n') + 1;
            snprintf (err, errlen, "%s: %.*s", path, (int) strcspn (first, "\n"), first);
            result = BCTX_ESTOREDAMAGED;
        }
    } else if (rc == SQLITE_INTERRUPT) {
        snprintf (err, errlen, "%s: the check was cut short after %d ms", path, max_ms);
        result = BCTX_ESTORECUTSHORT;
    } else {
        bctx_store_sql_err (err, errlen, path, db);
        result = BCTX_ESTORE;
    }
    bctx_store_sql_close (db, &st, 1, 0);
    return result;
}

/* Whether db has a table of that name.  Return 1, 0, or -1. */
int
bctx_store_sql_has_table (sqlite3 *db, const char *name)
{
    sqlite3_stmt *st = NULL;
    int found = -1;
    if (sqlite3_prepare_v2 (db, "SELECT count(*) FROM sqlite_master"
                                " WHERE type = 'table' AND name = ?1",
                            -1, &st, NULL) == SQLITE_OK) {
        sqlite3_bind_text (st, 1, name, -1, SQLITE_STATIC);
        if (sqlite3_step (st) == SQLITE_ROW)
            found = sqlite3_column_int (st, 0) > 0;
    }
    sqlite3_finalize (st);
    return found;
}

int
bctx_store_peek_position (const char *path, int64_t *position, char *err,
                          size_t errlen)
{
    sqlite3 *db = NULL;
    if (bctx_store_sql_open_readonly (path, &db, err, errlen) != 0)
        return BCTX_ESTORE;
    *position = 0;
    int has = bctx_store_sql_has_table (db, "events");
    sqlite3_stmt *st = NULL;
    int rc = has < 0 ? SQLITE_ERROR : SQLITE_OK;
    if (has > 0) {
        rc = sqlite3_prepare_v2 (db, "SELECT coalesce(max(position), 0) FROM events",
                                 -1, &st, NULL);
        if (rc == SQLITE_OK && (rc = sqlite3_step (st)) == SQLITE_ROW) {
            *position = sqlite3_column_int64 (st, 0);
            rc = SQLITE_OK;
        }
    }
    if (rc != SQLITE_OK)
        bctx_store_sql_err (err, errlen, path, db);
    bctx_store_sql_close (db, &st, 1, 0);
    return rc == SQLITE_OK ? 0 : BCTX_ESTORE;
}

