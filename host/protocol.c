/*
 * protocol - reply builders.
 */
#include "protocol.h"
#include "store.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

void
bctx_buf_add (bctx_buf_t *b, const char *text, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        b->cap = (b->len + n + 1) * 2 < 256 ? 256 : (b->len + n + 1) * 2;
        b->text = realloc (b->text, b->cap);
    }
    memcpy (b->text + b->len, text, n);
    b->len += n;
    b->text[b->len] = '\0';
}

void
bctx_buf_add_str (bctx_buf_t *b, const char *text)
{
    bctx_buf_add (b, text, strlen (text));
}

void
bctx_buf_add_int (bctx_buf_t *b, long long v)
{
    char num[24];
    int n = snprintf (num, sizeof num, "%lld", v);
    bctx_buf_add (b, num, (size_t) n);
}

void
bctx_buf_add_json_string (bctx_buf_t *b, const char *text)
{
    bctx_buf_add (b, "\"", 1);
    const unsigned char *p = (const unsigned char *) text, *run = p;
    for (; *p; p++) {
        if (*p != '"' && *p != '\\' && *p >= 0x20)
            continue;
        bctx_buf_add (b, (const char *) run, (size_t) (p - run));
        char esc[8];
        int n = *p < 0x20 ? snprintf (esc, sizeof esc, "\\u%04x", *p)
                          : snprintf (esc, sizeof esc, "\\%c", *p);
        bctx_buf_add (b, esc, (size_t) n);
        run = p + 1;
    }
    bctx_buf_add (b, (const char *) run, (size_t) (p - run));
    bctx_buf_add (b, "\"", 1);
}

void
bctx_buf_add_event (bctx_buf_t *b, const char *context, const bctx_row_t *e)
{
    bctx_buf_add_str (b, "{\"context\":");
    bctx_buf_add_json_string (b, context);
    bctx_buf_add_str (b, ",\"type\":");
    bctx_buf_add_json_string (b, e->type);
    bctx_buf_add_str (b, ",\"aggregate\":");
    bctx_buf_add_json_string (b, e->aggregate);
    bctx_buf_add_str (b, ",\"version\":");
    bctx_buf_add_int (b, e->version);
    bctx_buf_add_str (b, ",\"position\":");
    bctx_buf_add_int (b, e->position);
    bctx_buf_add_str (b, ",\"data\":");
    bctx_buf_add_str (b, e->data);
    bctx_buf_add_str (b, ",\"metadata\":");
    bctx_buf_add_str (b, e->metadata);
    bctx_buf_add_str (b, "}");
}
