/*
 * protocol - the wire protocol's error codes and reply builders, shared by
 * the API thread and the context workers.  Every reply is one JSON object
 * with "ok"; an error reply is {"ok":false,"error":{"code","message"}}.
 */
#ifndef BCTX_PROTOCOL_H
#define BCTX_PROTOCOL_H

#include <jansson.h>

#define BCTX_E_BAD_REQUEST      "bad_request"
#define BCTX_E_UNKNOWN_CONTEXT  "unknown_context"
#define BCTX_E_UNKNOWN_COMMAND  "unknown_command"
#define BCTX_E_REJECTED         "rejected"
#define BCTX_E_CONFLICT         "conflict"
#define BCTX_E_UNAVAILABLE      "unavailable"
#define BCTX_E_TOO_LARGE        "too_large"
#define BCTX_E_FORBIDDEN      "forbidden"
#define BCTX_E_INTERNAL         "internal"

/* An error reply as JSON text.  code, fmt: borrowed.  Return: new string. */
char *bctx_reply_error (const char *code, const char *fmt, ...)
    __attribute__ ((format (printf, 2, 3)));

/* Serialises a reply compactly.  reply: stolen.  Return: new string. */
char *bctx_reply_dump_new (json_t *reply);

/* A growing text buffer, for JSON built from parts that are JSON already
 * (cheaper than parsing them only to print them again). */
typedef struct bctx_buf {
    char *text;                   /* NUL-terminated; the caller frees it */
    size_t len;                   /* bytes used */
    size_t cap;                   /* bytes allocated */
} bctx_buf_t;

/* Appends n bytes of text / a C string / an integer / a C string as a
 * quoted, escaped JSON string. */
void bctx_buf_add (bctx_buf_t *b, const char *text, size_t n);
void bctx_buf_add_str (bctx_buf_t *b, const char *text);
void bctx_buf_add_int (bctx_buf_t *b, long long v);
void bctx_buf_add_json_string (bctx_buf_t *b, const char *text);

/* Appends an event as the wire carries it (the bus, the "events" reply):
 * {context, type, aggregate, version, position, data, metadata}, with the
 * stored data and metadata, JSON text already, as they are.  context,
 * event: borrowed. */
struct bctx_row;
void bctx_buf_add_event (bctx_buf_t *b, const char *context, const struct bctx_row *event);

/* The current UTC time as "2026-11-27T12:00:00.123456Z" into buf (>= 32). */
void bctx_time_iso (char *buf, size_t size);

#endif
