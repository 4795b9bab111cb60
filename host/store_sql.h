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

/* Has db a table named name?  Return 1, 0, or -1 when it cannot tell. */
int bctx_store_sql_has_table (sqlite3 *db, const char *name);

/* Opens path read-only; without a -wal beside it immutable, so no empty
 * -wal is created.  Return 0, or BCTX_ESTORE with err. */
int bctx_store_sql_open_readonly (const char *path, sqlite3 **db, char *err, size_t errlen);

#endif
