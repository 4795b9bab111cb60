/*
 * protocol - reply builders.
 */
#include "protocol.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

char *
bctx_reply_error (const char *code, const char *fmt, ...)
{
    char message[512];
    va_list ap;
    va_start (ap, fmt);
    vsnprintf (message, sizeof message, fmt, ap);
    va_end (ap);
    /* Messages may quote client bytes: keep only valid UTF-8 for jansson. */
    json_t *msg = json_string (message);
    if (!msg)
        msg = json_string ("(message not valid UTF-8)");
    return bctx_reply_dump_new (json_pack ("{s:b, s:{s:s, s:o}}", "ok", 0,
                                           "error", "code", code,
                                           "message", msg));
}

char *
bctx_reply_dump_new (json_t *reply)
{
    char *text = json_dumps (reply, JSON_COMPACT);
    json_decref (reply);
    return text;
}

void
bctx_time_iso (char *buf, size_t size)
{
    struct timespec ts;
    clock_gettime (CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r (&ts.tv_sec, &tm);
    size_t n = strftime (buf, size, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf (buf + n, size - n, ".%06ldZ", ts.tv_nsec / 1000);
}
