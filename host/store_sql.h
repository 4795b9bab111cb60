/*
 * store_sql - what store.c and readside.c share of SQLite: the store
 * module's own helpers, not part of its interface (store.h).
 */
#ifndef BCTX_STORE_SQL_H
#define BCTX_STORE_SQL_H

#include <sqlite3.h>
#include <stddef.h>

/* "path: message" of db's last error (or "out of memory") into err. */
void bctx_store_sql_err (char *err, size_t errlen, const char *path, sqlite3 *db);

/* Steps a statement to its end and resets it.  Return 0, or SQLite's code. */
int bctx_store_sql_exec (sqlite3_stmt *st);

/* Steps a bound statement for one row: its first column as an integer
 * (int64) or text (new, caller frees), or otherwise / NULL when there is
 * no row; then resets it and clears its bindings. */
int64_t bctx_store_sql_int (sqlite3_stmt *st, int64_t otherwise);
char *bctx_store_sql_text (sqlite3_stmt *st);

/* Has db a table named name?  Return 1, 0, or -1 when it cannot tell. */
int bctx_store_sql_has_table (sqlite3 *db, const char *name);

/*
 * Opens path into *db: read-only when readonly, else read-write (creating
 * it) and set up: WAL, synchronous=`synchronous` ("FULL" or "NORMAL"), a
 * 16 MiB page cache, then `schema` run.  Then prepares the n statements
 * of sql into stmt.  Return 0, or BCTX_ESTORE with "path: why" in err;
 * what was opened or prepared is left in *db and stmt for the caller's
 * destroy to close.
 */
int bctx_store_sql_open (const char *path, int readonly, const char *synchronous,
                         const char *schema, const char *const *sql, int n,
                         sqlite3_stmt **stmt, sqlite3 **db, char *err, size_t errlen);

/* Finalizes the n statements of stmt (NULL ones too) and closes db (NULL
 * is fine).  With fold, a writable db's WAL is first folded into the
 * file (a checkpoint that truncates it), so a closed store is one file. */
void bctx_store_sql_close (sqlite3 *db, sqlite3_stmt **stmt, int n, int fold);

/* Opens path read-only; without a -wal beside it immutable, so no empty
 * -wal is created.  Return 0, or BCTX_ESTORE with err. */
int bctx_store_sql_open_readonly (const char *path, sqlite3 **db, char *err, size_t errlen);

#endif
