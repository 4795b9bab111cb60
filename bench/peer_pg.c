/*
 * bctx-peer-pg - the durable-append workload (peer.h) against PostgreSQL,
 * for make bench-peers: one autocommit INSERT per event into
 *   events (seq bigserial PRIMARY KEY, stream, version, type, data jsonb,
 *           UNIQUE (stream, version))
 * over libpq; UNIQUE (stream, version) refuses a stale version.
 *
 *   bctx-peer-pg --target CONNINFO [--clients N] [--seconds S] [--max N]
 *
 * The run starts by dropping and creating the table, after checking that
 * the server runs with fsync and synchronous_commit on.
 */
#include "peer.h"

#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <libpq-fe.h>

#define S_INSERT "INSERT INTO events (stream, version, type, data) " \
                 "VALUES ($1, $2::bigint, 'Deposited', $3::jsonb)"

/* One client's connection. */
typedef struct {
    PGconn *pg;             /* libpq's connection */
    int prepared;           /* the INSERT is prepared as "append" */
} s_conn_t;

/* Runs sql, expecting `status`; return 0, or -1 with the server's message. */
static int
s_exec (PGconn *pg, const char *sql, ExecStatusType status, char *err, size_t errlen)
{
    PGresult *res = PQexec (pg, sql);
    int rc = PQresultStatus (res) == status ? 0 : -1;
    if (rc != 0)
        snprintf (err, errlen, "%s: %s", sql, PQerrorMessage (pg));
    PQclear (res);
    return rc;
}

/* Opens a connection.  Return: new, or NULL. */
static void *
s_open (const char *target, char *err, size_t errlen)
{
    s_conn_t *c = calloc (1, sizeof *c);
    if (!c) {
        snprintf (err, errlen, "out of memory");
        return NULL;
    }
    c->pg = PQconnectdb (target);
    if (PQstatus (c->pg) != CONNECTION_OK) {
        snprintf (err, errlen, "%s", PQerrorMessage (c->pg));
        PQfinish (c->pg);
        free (c);
        return NULL;
    }
    if (s_exec (c->pg, "SET client_min_messages = warning", PGRES_COMMAND_OK, err,
                errlen) != 0) {
        PQfinish (c->pg);
        free (c);
        return NULL;
    }
    return c;
}

/* Checks that setting `name` is "on"; return 0 or -1 with a message. */
static int
s_is_on (PGconn *pg, const char *name, char *err, size_t errlen)
{
    char sql[64];
    snprintf (sql, sizeof sql, "SHOW %s", name);
    PGresult *res = PQexec (pg, sql);
    int rc = PQresultStatus (res) == PGRES_TUPLES_OK && PQntuples (res) == 1
             && strcmp (PQgetvalue (res, 0, 0), "on") == 0 ? 0 : -1;
    if (rc != 0)
        snprintf (err, errlen, "%s is not on: start the server with -c %s=on for a durable "
                  "run", name, name);
    PQclear (res);
    return rc;
}

/* Drops and creates the events table, on a durable server only. */
static int
s_reset (void *conn, char *err, size_t errlen)
{
    PGconn *pg = ((s_conn_t *) conn)->pg;
    if (s_is_on (pg, "fsync", err, errlen) != 0
        || s_is_on (pg, "synchronous_commit", err, errlen) != 0)
        return -1;
    return s_exec (pg, "DROP TABLE IF EXISTS events", PGRES_COMMAND_OK, err, errlen) != 0
           || s_exec (pg, "CREATE TABLE events (seq bigserial PRIMARY KEY, stream text NOT NULL, "
                      "version bigint NOT NULL, type text NOT NULL, data jsonb NOT NULL, "
                      "UNIQUE (stream, version))", PGRES_COMMAND_OK, err, errlen) != 0 ? -1 : 0;
}

/* One autocommit INSERT (prepared on first use): durable when the
 * server answers. */
static int
s_append (void *conn, int stream, long version, const char *payload, char *err, size_t errlen)
{
    s_conn_t *c = conn;
    PGconn *pg = c->pg;
    if (!c->prepared) {
        PGresult *res = PQprepare (pg, "append", S_INSERT, 3, NULL);
        c->prepared = PQresultStatus (res) == PGRES_COMMAND_OK;
        PQclear (res);
        if (!c->prepared) {
            snprintf (err, errlen, "PREPARE %s: %s", S_INSERT, PQerrorMessage (pg));
            return -1;
        }
    }
    char name[32], ver[32];
    snprintf (name, sizeof name, "acct-%d", stream);
    snprintf (ver, sizeof ver, "%ld", version);
    const char *values[3] = { name, ver, payload };
    PGresult *res = PQexecPrepared (pg, "append", 3, values, NULL, NULL, 0);
    int rc = 0;
    if (PQresultStatus (res) != PGRES_COMMAND_OK) {
        const char *state = PQresultErrorField (res, PG_DIAG_SQLSTATE);
        rc = state && strcmp (state, "23505") == 0 ? PEER_CONFLICT : -1;   /* unique_violation */
        snprintf (err, errlen, "INSERT into %s at version %ld: %s", name, version,
                  PQerrorMessage (pg));
    }
    PQclear (res);
    return rc;
}

/* SELECT count(*) FROM events, or -1. */
static long
s_count (void *conn, char *err, size_t errlen)
{
    PGconn *pg = ((s_conn_t *) conn)->pg;
    PGresult *res = PQexec (pg, "SELECT count(*) FROM events");
    long n = -1;
    if (PQresultStatus (res) == PGRES_TUPLES_OK && PQntuples (res) == 1)
        sscanf (PQgetvalue (res, 0, 0), "%ld", &n);
    else
        snprintf (err, errlen, "SELECT count(*): %s", PQerrorMessage (pg));
    PQclear (res);
    return n;
}

/* Closes a connection. */
static void
s_close (void *conn)
{
    s_conn_t *c = conn;
    PQfinish (c->pg);
    free (c);
}

int
main (int argc, char **argv)
{
    static const peer_ops_t ops = {
        .name = "postgresql", .open = s_open, .reset = s_reset, .append = s_append,
        .count = s_count, .close = s_close,
    };
    return peer_main (argc, argv, &ops);
}
