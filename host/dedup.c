/*
 * dedup - command ids: their keys, fresh ones, and the reply of a
 * command accepted already, rebuilt from its stream.
 */

#include "dedup.h"
#include "protocol.h"
#include "worker.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

void
bctx_dedup_new_id (char out[33])
{
    unsigned char raw[16];
    if (getrandom (raw, sizeof raw, 0) != (ssize_t) sizeof raw) {
        static _Atomic uint64_t counter;
        uint64_t c = ++counter;
        memcpy (raw, &c, sizeof c);
        memset (raw + 8, 0, 8);
    }
    static const char hex[] = "0123456789abcdef";
    for (int i = 0; i < 16; i++) {
        out[2 * i] = hex[raw[i] >> 4];
        out[2 * i + 1] = hex[raw[i] & 15];
    }
    out[32] = '\0';
}

const char *
bctx_dedup_key (int origin, const char *id, char *buf, size_t size)
{
    if (origin != BCTX_ORIGIN_REACTOR)
        return id;
    snprintf (buf, size, "\x1e%s", id);
    return buf;
}

char *
bctx_dedup_accepted (const char *id, const char *aggregate, const bctx_row_t *events,
                     size_t n)
{
    bctx_buf_t b = { 0 };
    bctx_buf_add_str (&b, "{\"ok\":true,\"id\":");
    bctx_buf_add_json_string (&b, id);
    bctx_buf_add_str (&b, ",\"events\":[");
    for (size_t i = 0; i < n; i++) {
        bctx_buf_add_str (&b, i ? ",{\"type\":\"" : "{\"type\":\"");
        bctx_buf_add_str (&b, events[i].type);
        bctx_buf_add_str (&b, "\",\"aggregate\":");
        bctx_buf_add_json_string (&b, aggregate);
        bctx_buf_add_str (&b, ",\"version\":");
        bctx_buf_add_int (&b, events[i].version);
        bctx_buf_add_str (&b, ",\"position\":");
        bctx_buf_add_int (&b, events[i].position);
        bctx_buf_add_str (&b, "}");
    }
    bctx_buf_add_str (&b, "]}");
    return b.text;
}

/* The events of one command, collected while its stream is read. */
typedef struct {
    const char *id;               /* the stored key of the command whose events are collected */
    bctx_row_t *events;           /* copies of what was read */
    size_t n;                     /* how many */
    size_t cap;                   /* room in events: the most one command emits */
    char *types;                  /* their types, NUL-separated */
    size_t types_len;             /* bytes used in types */
    int failed;                   /* out of memory */
} s_replayed_t;

/* bctx_store_read's callback: collects e while it is the command's.
 * Return 0 to go on, 1 past the command's events. */
static int
s_collect_summary (const bctx_row_t *e, void *arg)
{
    s_replayed_t *r = arg;
    if (!e->command || strcmp (e->command, r->id) != 0 || r->n == r->cap)
        return 1;                  /* past the command's events */
    r->events[r->n] = *e;
    size_t tl = strlen (e->type) + 1;
    char *types = realloc (r->types, r->types_len + tl);
    if (!types) {
        r->failed = 1;
        return 1;
    }
    r->types = types;
    memcpy (r->types + r->types_len, e->type, tl);
    r->types_len += tl;
    r->n++;
    return 0;
}

char *
bctx_dedup_replay (bctx_store_t *store, const char *key, const char *id,
                   const char *aggregate, int64_t from, size_t max_events)
{
    s_replayed_t r = { .id = key, .cap = max_events,
                       .events = calloc (max_events, sizeof *r.events) };
    int64_t got = r.events ? bctx_store_read (store, from, aggregate,
                                              (int64_t) r.cap + 1, s_collect_summary, &r)
                           : -1;
    char *reply = NULL;
    if (got >= 0 && r.n > 0 && !r.failed) {
        const char *t = r.types;
        for (size_t i = 0; i < r.n; i++, t += strlen (t) + 1)
            r.events[i].type = t;
        reply = bctx_dedup_accepted (id, aggregate, r.events, r.n);
    }
    free (r.events);
    free (r.types);
    return reply;
}
