/*
 * api - the host's two ROUTER sockets (the public API and the admin
 * endpoint), the envelopes that carry each client's return address, the
 * checks every request's frames and JSON go through, the role of the
 * connection it came on, and the dispatch through the op table: each op
 * (BCTX_OP_*, protocol.h) has one handler, registered by the module that
 * owns it, and runs only for the roles the op names.
 */
#ifndef BCTX_API_H
#define BCTX_API_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#include "config.h"
#include "loop.h"
#include "protocol.h"
#include "security.h"

#define BCTX_API_ENVELOPE_MAX 512 /* longest encoded envelope */

/* The socket a request came in on: the first byte of its envelope. */
enum { BCTX_API_PUBLIC = 0, BCTX_API_ADMIN = 1 };

/* One request on its way through its handler. */
typedef struct bctx_request {
    json_t *body;                 /* the parsed JSON object (borrowed; a handler
                                     may add fields to it) */
    const char *text;             /* the request as it came (borrowed), to pass on
                                     unchanged without writing it again */
    size_t text_len;              /* its length */
    const bctx_op_t *op;          /* its op */
    unsigned role;                /* BCTX_ROLE_* of the connection */
    const unsigned char *envelope; /* the client's return address, encoded
                                     (borrowed: copy it to answer later) */
    size_t envelope_len;          /* its length */
    int delimiter;                /* the client sent an empty frame first */
    const char *code;             /* the outcome, set by the handler: NULL for
                                     success or a later answer, else the BCTX_E_*
                                     code of its error reply */
    const struct bctx_route *route; /* a "send" read off its routing keys alone
                                     (route.h), body NULL; else NULL */
    int parse;                    /* set by a route handler: parse it whole, and
                                     give it to the op's handler */
} bctx_request_t;

/* A handler: answers req (arg: borrowed, as registered).  Return the
 * reply (new), or NULL when another module answers later; an error reply
 * comes with req->code set (bctx_request_error does both). */
typedef char *(bctx_api_handler_fn) (void *arg, bctx_request_t *req);

/* What the API has counted since the start. */
typedef struct bctx_api_counters {
    int64_t requests;             /* requests taken */
    int64_t too_large;            /* refused as too_large (over host.max_message) */
    int64_t bad;                  /* answered bad_request */
    int64_t forbidden;            /* answered forbidden */
} bctx_api_counters_t;

typedef struct bctx_api bctx_api_t;

/* An API with no sockets yet and no handlers, taking requests of at most
 * max_message bytes.  Return: new. */
bctx_api_t *bctx_api_new (size_t max_message);

/* Makes fn (arg borrowed) the handler of op (BCTX_OP_*). */
void bctx_api_handle (bctx_api_t *self, int op, bctx_api_handler_fn *fn, void *arg);

/* Makes fn (arg borrowed) the handler of the "send"s read off their
 * routing keys alone (route.h), before any is parsed: it is given req
 * with body NULL and route set, and answers as a handler does, or sets
 * req->parse to have the request parsed whole and given to the op's
 * handler. */
void bctx_api_route_sends (bctx_api_t *self, bctx_api_handler_fn *fn, void *arg);

/* Counts an error answered later, by another process (BCTX_E_* code). */
void bctx_api_count (bctx_api_t *self, const char *code);

/* The first op without a handler, or -1 when every op has one. */
int bctx_api_unhandled (const bctx_api_t *self);

/* The in-process endpoints of the public ROUTER and the admin endpoint,
 * which the HTTP gateway connects to (a supervisor binds them). */
#define BCTX_API_INPROC       "inproc://bctx-api"
#define BCTX_API_ADMIN_INPROC "inproc://bctx-api-admin"

/* Binds the public ROUTER on config->api (CURVE from security, borrowed)
 * and the admin endpoint on ipc://<host.data>/run/admin.sock, in a
 * folder only this OS user may enter; in a supervisor, both also on
 * their BCTX_API_*INPROC.  Return 0, or -1 with the reason. */
int bctx_api_bind (bctx_api_t *self, void *zctx, const bctx_config_t *config,
                   bctx_security_t *security, char *err, size_t errlen);

/* Registers both sockets' readers in loop. */
void bctx_api_attach (bctx_api_t *self, bctx_loop_t *loop);

/* Checks and dispatches one request body (borrowed) that came from a
 * connection with `role`, whose return address is envelope (borrowed).
 * Return: the reply (new), or NULL when a module answers later. */
char *bctx_api_request (bctx_api_t *self, const char *body, size_t len, unsigned role,
                        const unsigned char *envelope, size_t envelope_len, int delimiter);

/* Sends one reply frame (borrowed) to the client named by its envelope. */
void bctx_api_send (bctx_api_t *self, const unsigned char *envelope, size_t envelope_len,
                    int delimiter, const char *reply);

/* An error reply with its code noted in req->code.  Return: new. */
char *bctx_request_error (bctx_request_t *req, const char *code, const char *fmt, ...)
    __attribute__ ((format (printf, 3, 4)));

/* The counters (borrowed). */
const bctx_api_counters_t *bctx_api_counters (const bctx_api_t *self);

/* The admin endpoint's address (borrowed), or NULL before bind. */
const char *bctx_api_admin_endpoint (const bctx_api_t *self);

/* Closes the sockets and frees the API; sets *self_p to NULL.  Idempotent. */
void bctx_api_destroy (bctx_api_t **self_p);

#endif
