/*
 * route - what the supervisor needs of a "send" to pass it on unparsed:
 * its op, context, command, id and origin, read off the request's
 * top-level keys by jsmn's tokenizer, which builds nothing and allocates
 * nothing.  The context process that decides the command is the one that
 * parses it (jansson) and checks the rest.  Anything this cannot read
 * plainly is parsed whole by the API as before, so this module never has
 * to be right about what it does not take.
 */
#ifndef BCTX_ROUTE_H
#define BCTX_ROUTE_H

#include <stddef.h>

/* A top-level string value, as it stands in the request (no escape in
 * it): text[0..len-1], not NUL-ended; len 0 and text NULL when absent. */
typedef struct bctx_span {
    const char *text;
    size_t len;
} bctx_span_t;

/* A "send" read off its top-level keys. */
typedef struct bctx_route {
    bctx_span_t context;
    bctx_span_t command;
    bctx_span_t id;
    bctx_span_t origin;
} bctx_route_t;

/* Reads request text (len bytes) as a plain "send".  Return 1 with *route
 * filled when it is one JSON object, with nothing after it, whose
 * top-level keys are escape-free strings, each of op, context, command,
 * id and origin at most once, op the string "send", context a non-empty
 * escape-free string and command, id and origin escape-free strings
 * when present, in at most BCTX_ROUTE_TOKENS tokens.  Return 0 for
 * anything else, which the caller parses whole. */
int bctx_route_read (const char *text, size_t len, bctx_route_t *route);

#define BCTX_ROUTE_TOKENS 128     /* JSON values a request routed unparsed may hold */

/* Does span equal the NUL-ended word? */
int bctx_span_is (bctx_span_t span, const char *word);

#endif
