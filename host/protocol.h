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
#define BCTX_E_INTERNAL         "internal"

/* An error reply as JSON text.  code, fmt: borrowed.  Return: new string. */
char *bctx_reply_error (const char *code, const char *fmt, ...)
    __attribute__ ((format (printf, 2, 3)));

/* Serialises a reply compactly.  reply: stolen.  Return: new string. */
char *bctx_reply_dump_new (json_t *reply);

/* The current UTC time as "2026-11-27T12:00:00.123456Z" into buf (>= 32). */
void bctx_time_iso (char *buf, size_t size);

#endif
