/*
 * protocol - the wire protocol's error codes and reply builders, shared by
 * the API thread and the context workers.  Every reply is one JSON object
 * with "ok"; an error reply is {"ok":false,"error":{"code","message"}}.
 */
#ifndef BCTX_PROTOCOL_H
#define BCTX_PROTOCOL_H

#include <jansson.h>

/* The wire's error codes (BCTX_E_*) and the one code space. */
#include "errors.h"

/*
 * Who may do what.  A request arrives with one role, from where it came:
 * the admin endpoint (admin), a CURVE key listed in host.clients (its
 * role), a peer's key (peer), or, without CURVE, any local client
 * (client).  Each op names the roles that may use it.
 */
enum {
    BCTX_ROLE_PEER   = 1,         /* another host: forward, read logs */
    BCTX_ROLE_CLIENT = 2,         /* an application: commands and reads */
    BCTX_ROLE_ADMIN  = 4,         /* the operator: anything */
    BCTX_ROLE_SUPERVISOR = 8      /* a context process's supervisor, on its link:
                                     also the handover's steps */
};

/* The ops, in the order of the op table (a server indexes its handlers
 * by these). */
enum {
    BCTX_OP_SEND, BCTX_OP_EVENTS, BCTX_OP_QUERY, BCTX_OP_CONTEXTS, BCTX_OP_STATS,
    BCTX_OP_REPLAY, BCTX_OP_RETRY, BCTX_OP_RELOAD, BCTX_OP_STOP, BCTX_OP_RELEASE,
    BCTX_OP_TAKE, BCTX_OP_COUNT
};

/* One op of the wire protocol, as the host and the CLI know it. */
typedef struct bctx_op {
    int id;                       /* BCTX_OP_* */
    const char *name;             /* the request's "op" */
    unsigned roles;               /* BCTX_ROLE_* that may use it */
} bctx_op_t;

/* The op named `name` (borrowed), or NULL when there is none. */
const bctx_op_t *bctx_op_find (const char *name);

/* Is the op for admins only (it loads code or changes the host's shape)? */
int bctx_op_is_admin (const bctx_op_t *op);

/* The role named "client", "admin" or "peer", or 0. */
unsigned bctx_role_parse (const char *name);

/* The name of a role (static). */
const char *bctx_role_name (unsigned role);

/* The reply to an op the caller's role may not use: "forbidden", with a
 * message saying where it is served and, when there is one, the admin
 * endpoint in error.admin (so a client can go there).  Return: new. */
char *bctx_reply_forbidden (const char *op, unsigned role, const char *admin);

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

#define BCTX_ID_MAX 256           /* longest command id a client may give (a reactor's
                                     ids, names and a position, fit) */

/* Checks a "send" request's fields: only known keys, "context" a string,
 * "command" a non-empty string, "data" an object, the ids strings of 1 to
 * BCTX_ID_MAX bytes without control characters, "origin", if there,
 * "reactor" (who may say so is the API's to check).  Return NULL, or the
 * wire code (BCTX_E_BAD_REQUEST) with the message in why. */
const char *bctx_send_check (const json_t *body, char *why, size_t whylen);

/* The current UTC time as "2026-11-27T12:00:00.123456Z" into buf (>= 32). */
void bctx_time_iso (char *buf, size_t size);

#endif
