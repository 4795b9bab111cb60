/*
 * readside - SQLite implementation of the read side: one file per
 * projection (its read models in generations, its checkpoints) or per
 * reactor (its checkpoints and parked events).  Part of the store module:
 * its interface is in store.h, and with store.c it is the only code that
 * knows SQLite.
 */
#include "store.h"
#include "store_sql.h"
#include "util.h"

#include <assert.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
    R_BEGIN, R_COMMIT, R_ROLLBACK, R_META, R_SET_META, R_DEL_META, R_GET,
    R_GET_LIVE, R_PUT, R_DELETE, R_LIST_LIVE, R_LIST_LIVE_AFTER, R_DROP_MODELS,
    R_DROP_CHECKPOINTS, R_CHECKPOINT, R_SET_CHECKPOINT, R_PARK, R_PARKED,
    R_UNPARK, R_COUNT
};

static const char *const r_sql[R_COUNT] = {
    [R_BEGIN] = "BEGIN IMMEDIATE",
    [R_COMMIT] = "COMMIT",
    [R_ROLLBACK] = "ROLLBACK",
    [R_META] = "SELECT value FROM meta WHERE key = ?1",
    [R_SET_META] = "INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)",
    [R_DEL_META] = "DELETE FROM meta WHERE key = ?1",
    [R_GET] = "SELECT value FROM models WHERE gen = ?1 AND key = ?2",
    [R_GET_LIVE] = "SELECT value FROM models WHERE key = ?1 AND gen ="
                   " (SELECT value FROM meta WHERE key = 'live_gen')",
    [R_PUT] = "INSERT OR REPLACE INTO models (gen, key, value) VALUES (?1, ?2, ?3)",
    [R_DELETE] = "DELETE FROM models WHERE gen = ?1 AND key = ?2",
    [R_LIST_LIVE] = "SELECT key, value FROM models WHERE gen ="
                    " (SELECT value FROM meta WHERE key = 'live_gen')"
                    " ORDER BY key LIMIT ?1",
    [R_LIST_LIVE_AFTER] = "SELECT key, value FROM models WHERE gen ="
                          " (SELECT value FROM meta WHERE key = 'live_gen')"
                          " AND key > ?2 ORDER BY key LIMIT ?1",
    [R_DROP_MODELS] = "DELETE FROM models WHERE gen = ?1",
    [R_DROP_CHECKPOINTS] = "DELETE FROM checkpoints WHERE gen = ?1",
    [R_CHECKPOINT] = "SELECT position FROM checkpoints WHERE gen = ?1 AND source = ?2",
    [R_SET_CHECKPOINT] = "INSERT OR REPLACE INTO checkpoints (gen, source, position)"
                         " VALUES (?1, ?2, ?3)",
    [R_PARK] = "INSERT OR REPLACE INTO parked (source, position, aggregate, reason)"
               " VALUES (?1, ?2, ?3, ?4)",
    [R_PARKED] = "SELECT source, position, aggregate, reason FROM parked"
                 " ORDER BY source, position",
    [R_UNPARK] = "DELETE FROM parked WHERE source = ?1 AND position = ?2",
};

static const char r_schema[] =
    "CREATE TABLE IF NOT EXISTS meta ("
    "  key   TEXT PRIMARY KEY,"
    "  value INTEGER NOT NULL) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS models ("
    "  gen   INTEGER NOT NULL,"
    "  key   TEXT NOT NULL,"
    "  value TEXT NOT NULL,"
    "  PRIMARY KEY (gen, key)) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS checkpoints ("
    "  gen      INTEGER NOT NULL,"
    "  source   TEXT NOT NULL,"
    "  position INTEGER NOT NULL,"
    "  PRIMARY KEY (gen, source)) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS parked ("
    "  source    TEXT NOT NULL,"
    "  position  INTEGER NOT NULL,"
    "  aggregate TEXT NOT NULL,"
    "  reason    TEXT,"
    "  PRIMARY KEY (source, position)) WITHOUT ROWID;";

struct bctx_readside {
    sqlite3 *db;                    /* the connection */
    sqlite3_stmt *stmt[R_COUNT];    /* prepared statements, by R_* */
    int in_tx;                      /* inside begin … commit */
};

bctx_readside_t *
bctx_readside_open (const char *path, int flags, char *err, size_t errlen)
{
    bctx_readside_t *self = calloc (1, sizeof *self);
    /* NORMAL is enough: a read model can always be rebuilt from the log,
     * and in WAL mode a process crash loses no commit. */
    if (bctx_store_sql_open (path, flags & BCTX_STORE_READONLY, "NORMAL", r_schema, r_sql,
                             R_COUNT, self->stmt, &self->db, err, errlen) != 0)
        goto fail;
    return self;
fail:
    bctx_readside_destroy (&self);
    return NULL;
}

void
bctx_readside_destroy (bctx_readside_t **self_p)
{
    BCTX_SELF_OR_RETURN (bctx_readside_t, self_p);
    bctx_readside_rollback (self);
    bctx_store_sql_close (self->db, self->stmt, R_COUNT, 0);
    free (self);
    *self_p = NULL;
}

int
bctx_readside_begin (bctx_readside_t *self)
{
    assert (!self->in_tx);
    if (bctx_store_sql_exec (self->stmt[R_BEGIN]) != 0)
        return -1;
    self->in_tx = 1;
    return 0;
}

int
bctx_readside_commit (bctx_readside_t *self)
{
    assert (self->in_tx);
    if (bctx_store_sql_exec (self->stmt[R_COMMIT]) != 0) {
        bctx_readside_rollback (self);
        return -1;
    }
    self->in_tx = 0;
    return 0;
}

void
bctx_readside_rollback (bctx_readside_t *self)
{
    if (!self->in_tx)
        return;
    bctx_store_sql_exec (self->stmt[R_ROLLBACK]);
    self->in_tx = 0;
}

/* Runs a statement whose parameters are already bound; clears them. */
static int
r_run (sqlite3_stmt *st)
{
    int rc = bctx_store_sql_exec (st);
    sqlite3_clear_bindings (st);
    return rc == 0 ? 0 : -1;
}

/* Runs st with ?1 the text and ?2 the integer given. */
static int
r_run_text_int (sqlite3_stmt *st, const char *text, int64_t value)
{
    sqlite3_bind_text (st, 1, text, -1, SQLITE_STATIC);
    sqlite3_bind_int64 (st, 2, value);
    return r_run (st);
}

int64_t
bctx_readside_meta (bctx_readside_t *self, const char *key, int64_t otherwise)
{
    sqlite3_stmt *st = self->stmt[R_META];
    sqlite3_bind_text (st, 1, key, -1, SQLITE_STATIC);
    return bctx_store_sql_int (st, otherwise);
}

int
bctx_readside_set_meta (bctx_readside_t *self, const char *key, int64_t value)
{
    return r_run_text_int (self->stmt[R_SET_META], key, value);
}

int
bctx_readside_delete_meta (bctx_readside_t *self, const char *key)
{
    sqlite3_stmt *st = self->stmt[R_DEL_META];
    sqlite3_bind_text (st, 1, key, -1, SQLITE_STATIC);
    return r_run (st);
}

char *
bctx_readside_get (bctx_readside_t *self, int64_t gen, const char *key)
{
    sqlite3_stmt *st = self->stmt[R_GET];
    sqlite3_bind_int64 (st, 1, gen);
    sqlite3_bind_text (st, 2, key, -1, SQLITE_STATIC);
    return bctx_store_sql_text (st);
}

char *
bctx_readside_get_live (bctx_readside_t *self, const char *key)
{
    sqlite3_stmt *st = self->stmt[R_GET_LIVE];
    sqlite3_bind_text (st, 1, key, -1, SQLITE_STATIC);
    return bctx_store_sql_text (st);
}

int
bctx_readside_put (bctx_readside_t *self, int64_t gen, const char *key,
                   const char *value)
{
    sqlite3_stmt *st = self->stmt[R_PUT];
    sqlite3_bind_int64 (st, 1, gen);
    sqlite3_bind_text (st, 2, key, -1, SQLITE_STATIC);
    sqlite3_bind_text (st, 3, value, -1, SQLITE_STATIC);
    return r_run (st);
}

int
bctx_readside_delete (bctx_readside_t *self, int64_t gen, const char *key)
{
    sqlite3_stmt *st = self->stmt[R_DELETE];
    sqlite3_bind_int64 (st, 1, gen);
    sqlite3_bind_text (st, 2, key, -1, SQLITE_STATIC);
    return r_run (st);
}

int64_t
bctx_readside_list_live (bctx_readside_t *self, const char *after,
                         int64_t limit, bctx_model_fn fn, void *arg)
{
    sqlite3_stmt *st = self->stmt[after ? R_LIST_LIVE_AFTER : R_LIST_LIVE];
    sqlite3_bind_int64 (st, 1, limit);
    if (after)
        sqlite3_bind_text (st, 2, after, -1, SQLITE_STATIC);
    int64_t n = 0;
    int rc;
    while ((rc = sqlite3_step (st)) == SQLITE_ROW) {
        n++;
        if (fn ((const char *) sqlite3_column_text (st, 0),
                (const char *) sqlite3_column_text (st, 1), arg) != 0) {
            rc = SQLITE_DONE;
            break;
        }
    }
    sqlite3_reset (st);
    sqlite3_clear_bindings (st);
    return rc == SQLITE_DONE ? n : -1;
}

int
bctx_readside_drop (bctx_readside_t *self, int64_t gen)
{
    sqlite3_bind_int64 (self->stmt[R_DROP_MODELS], 1, gen);
    sqlite3_bind_int64 (self->stmt[R_DROP_CHECKPOINTS], 1, gen);
    return r_run (self->stmt[R_DROP_MODELS]) == 0
           && r_run (self->stmt[R_DROP_CHECKPOINTS]) == 0 ? 0 : -1;
}

int64_t
bctx_readside_checkpoint (bctx_readside_t *self, int64_t gen, const char *source)
{
    sqlite3_stmt *st = self->stmt[R_CHECKPOINT];
    sqlite3_bind_int64 (st, 1, gen);
    sqlite3_bind_text (st, 2, source, -1, SQLITE_STATIC);
    return bctx_store_sql_int (st, 0);
}

int
bctx_readside_set_checkpoint (bctx_readside_t *self, int64_t gen,
                              const char *source, int64_t position)
{
    sqlite3_stmt *st = self->stmt[R_SET_CHECKPOINT];
    sqlite3_bind_int64 (st, 1, gen);
    sqlite3_bind_text (st, 2, source, -1, SQLITE_STATIC);
    sqlite3_bind_int64 (st, 3, position);
    return r_run (st);
}

int
bctx_readside_park (bctx_readside_t *self, const char *source, int64_t position,
                    const char *aggregate, const char *reason)
{
    sqlite3_stmt *st = self->stmt[R_PARK];
    sqlite3_bind_text (st, 1, source, -1, SQLITE_STATIC);
    sqlite3_bind_int64 (st, 2, position);
    sqlite3_bind_text (st, 3, aggregate, -1, SQLITE_STATIC);
    sqlite3_bind_text (st, 4, reason, -1, SQLITE_STATIC);
    return r_run (st);
}

int64_t
bctx_readside_parked (bctx_readside_t *self, bctx_parked_fn fn, void *arg)
{
    sqlite3_stmt *st = self->stmt[R_PARKED];
    int64_t n = 0;
    int rc;
    while ((rc = sqlite3_step (st)) == SQLITE_ROW) {
        n++;
        if (fn && fn ((const char *) sqlite3_column_text (st, 0),
                      sqlite3_column_int64 (st, 1),
                      (const char *) sqlite3_column_text (st, 2),
                      (const char *) sqlite3_column_text (st, 3), arg) != 0) {
            rc = SQLITE_DONE;
            break;
        }
    }
    sqlite3_reset (st);
    return rc == SQLITE_DONE ? n : -1;
}

int
bctx_readside_unpark (bctx_readside_t *self, const char *source, int64_t position)
{
    return r_run_text_int (self->stmt[R_UNPARK], source, position);
}

const char *
bctx_readside_error (bctx_readside_t *self)
{
    return sqlite3_errmsg (self->db);
}

int
bctx_readside_peek_checkpoints (const char *path, bctx_checkpoint_fn fn,
                                void *arg, char *err, size_t errlen)
{
    sqlite3 *db = NULL;
    if (bctx_store_sql_open_readonly (path, &db, err, errlen) != 0)
        return BCTX_ESTORE;
    int has = bctx_store_sql_has_table (db, "checkpoints");
    sqlite3_stmt *st = NULL;
    int rc = has < 0 ? SQLITE_ERROR : SQLITE_DONE;
    if (has > 0) {
        rc = sqlite3_prepare_v2 (db, "SELECT source, max(position) FROM checkpoints"
                                     " GROUP BY source ORDER BY source",
                                 -1, &st, NULL);
        if (rc == SQLITE_OK)
            while ((rc = sqlite3_step (st)) == SQLITE_ROW)
                if (fn ((const char *) sqlite3_column_text (st, 0),
                        sqlite3_column_int64 (st, 1), arg) != 0) {
                    rc = SQLITE_DONE;
                    break;
                }
    }
    if (rc != SQLITE_DONE)
        bctx_store_sql_err (err, errlen, path, db);
    bctx_store_sql_close (db, &st, 1, 0);
    return rc == SQLITE_DONE ? 0 : BCTX_ESTORE;
}
