/*
 * route - a "send"'s routing keys read off the request with jsmn.
 */

#include "route.h"

#include <string.h>

#define JSMN_STATIC
#define JSMN_STRICT
#include <jsmn.h>

int
bctx_span_is (bctx_span_t span, const char *word)
{
    size_t n = strlen (word);
    return span.text && span.len == n && memcmp (span.text, word, n) == 0;
}

/* Is token t a string with no escape in it? */
static int
s_plain (const char *text, const jsmntok_t *t)
{
    return t->type == JSMN_STRING
           && !memchr (text + t->start, '\\', (size_t) (t->end - t->start));
}

/* Fills *span with plain string token t, once.  Return 0, or -1 when the
 * key was seen already or t is not a plain string. */
static int
s_take (const char *text, const jsmntok_t *t, bctx_span_t *span)
{
    if (span->text || !s_plain (text, t))
        return -1;
    *span = (bctx_span_t) { text + t->start, (size_t) (t->end - t->start) };
    return 0;
}

int
bctx_route_read (const char *text, size_t len, bctx_route_t *route)
{
    jsmn_parser parser;
    jsmntok_t tokens[BCTX_ROUTE_TOKENS];
    jsmn_init (&parser);
    int n = jsmn_parse (&parser, text, len, tokens, BCTX_ROUTE_TOKENS);
    if (n < 1 || tokens[0].type != JSMN_OBJECT)
        return 0;
    /* One value: every token inside the object, only blanks after it. */
    if (tokens[n - 1].end > tokens[0].end)
        return 0;
    for (size_t i = (size_t) tokens[0].end; i < len; i++)
        if (!strchr (" \t\r\n", text[i]) || text[i] == '\0')
            return 0;
    memset (route, 0, sizeof *route);
    bctx_span_t op = { 0 };
    int i = 1;
    for (int key = 0; key < tokens[0].size; key++) {
        if (i + 1 >= n || !s_plain (text, &tokens[i]))
            return 0;
        const jsmntok_t *k = &tokens[i], *v = &tokens[i + 1];
        bctx_span_t name = { text + k->start, (size_t) (k->end - k->start) };
        bctx_span_t *into = bctx_span_is (name, "op") ? &op
                          : bctx_span_is (name, "context") ? &route->context
                          : bctx_span_is (name, "command") ? &route->command
                          : bctx_span_is (name, "id") ? &route->id
                          : bctx_span_is (name, "origin") ? &route->origin : NULL;
        if (into && s_take (text, v, into) < 0)
            return 0;
        /* The next key: the first token after the value's end. */
        for (i += 2; i < n && tokens[i].start < v->end; i++)
            ;
    }
    return i == n && bctx_span_is (op, "send") && route->context.len > 0;
}
