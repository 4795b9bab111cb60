/*
 * bctx-peer-redis - the durable-append workload (peer.h) against Redis,
 * for make bench-peers: one XADD per event over hiredis,
 *   XADD acct-<s> 0-<version> type Deposited data <json>
 * whose explicit id refuses a version at or below the stream's last.
 *
 *   bctx-peer-redis --target HOST:PORT [--clients N] [--seconds S] [--max N]
 *
 * The run starts with FLUSHALL, after checking that the server runs with
 * appendonly yes and appendfsync always.
 */
#include "peer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <hiredis.h>

/* Opens a connection to HOST:PORT, replies awaited at most 10 s.
 * Return: new, or NULL. */
static void *
s_open (const char *target, char *err, size_t errlen)
{
    char host[256];
    int port = 0;
    if (sscanf (target, "%255[^:]:%d", host, &port) != 2 || port <= 0 || port > 65535) {
        snprintf (err, errlen, "--target %s: expected HOST:PORT", target);
        return NULL;
    }
    struct timeval timeout = { 10, 0 };
    redisContext *r = redisConnectWithTimeout (host, port, timeout);
    if (!r || r->err) {
        snprintf (err, errlen, "%s", r ? r->errstr : "out of memory");
        redisFree (r);
        return NULL;
    }
    redisSetTimeout (r, timeout);
    return r;
}

/* Checks that CONFIG GET name answers `want`; return 0 or -1. */
static int
s_config_is (redisContext *r, const char *name, const char *want, char *err, size_t errlen)
{
    redisReply *reply = redisCommand (r, "CONFIG GET %s", name);
    int rc = reply && reply->type == REDIS_REPLY_ARRAY && reply->elements == 2
             && strcmp (reply->element[1]->str, want) == 0 ? 0 : -1;
    if (rc != 0)
        snprintf (err, errlen, "%s is not %s: start the server with %s %s for a durable run",
                  name, want, name, want);
    freeReplyObject (reply);
    return rc;
}

/* Empties the server, on a durable server only. */
static int
s_reset (void *conn, char *err, size_t errlen)
{
    redisContext *r = conn;
    if (s_config_is (r, "appendonly", "yes", err, errlen) != 0
        || s_config_is (r, "appendfsync", "always", err, errlen) != 0)
        return -1;
    redisReply *reply = redisCommand (r, "FLUSHALL");
    int rc = reply && reply->type == REDIS_REPLY_STATUS ? 0 : -1;
    if (rc != 0)
        snprintf (err, errlen, "FLUSHALL: %s", reply ? reply->str : r->errstr);
    freeReplyObject (reply);
    return rc;
}

/* One XADD with the explicit id 0-<version>: durable when the server
 * answers (appendfsync always). */
static int
s_append (void *conn, int stream, long version, const char *payload, char *err, size_t errlen)
{
    redisContext *r = conn;
    redisReply *reply = redisCommand (r, "XADD acct-%d 0-%ld type Deposited data %s", stream,
                                      version, payload);
    int rc = 0;
    if (!reply) {
        snprintf (err, errlen, "XADD acct-%d: %s", stream, r->errstr);
        rc = -1;
    } else if (reply->type == REDIS_REPLY_ERROR) {
        rc = strstr (reply->str, "equal or smaller") ? PEER_CONFLICT : -1;
        snprintf (err, errlen, "XADD acct-%d 0-%ld: %s", stream, version, reply->str);
    }
    freeReplyObject (reply);
    return rc;
}

/* The sum of XLEN over the streams (pipelined), or -1. */
static long
s_count (void *conn, char *err, size_t errlen)
{
    redisContext *r = conn;
    for (int s = 0; s < PEER_STREAMS; s++)
        redisAppendCommand (r, "XLEN acct-%d", s);
    long n = 0;
    for (int s = 0; s < PEER_STREAMS; s++) {
        redisReply *reply = NULL;
        if (redisGetReply (r, (void **) &reply) != REDIS_OK
            || reply->type != REDIS_REPLY_INTEGER) {
            snprintf (err, errlen, "XLEN acct-%d: %s", s, reply ? reply->str : r->errstr);
            freeReplyObject (reply);
            return -1;      /* the connection is unusable now: the caller closes it */
        }
        n += (long) reply->integer;
        freeReplyObject (reply);
    }
    return n;
}

/* Closes a connection. */
static void
s_close (void *conn)
{
    redisFree (conn);
}

int
main (int argc, char **argv)
{
    static const peer_ops_t ops = {
        .name = "redis", .open = s_open, .reset = s_reset, .append = s_append,
        .count = s_count, .close = s_close,
    };
    return peer_main (argc, argv, &ops);
}
