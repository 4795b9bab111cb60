/*
 * cli_ops - the subcommands of `bctx` that talk to a host: each reads its
 * arguments (bctx_cli_parse), builds its request and prints the reply.
 */

#include "cli.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_PAGE 1000

/* What a JSON value is, for a message ("an array"). */
static const char *
s_json_kind (const json_t *j)
{
    switch (json_typeof (j)) {
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: case JSON_REAL: return "a number";
    case JSON_TRUE: case JSON_FALSE: return "a boolean";
    case JSON_NULL: return "null";
    default: return "an object";
    }
}

int
bctx_cli_send (bctx_cli_t *c, int argc, char **argv)
{
    const char *id = NULL, *pos[3];
    const bctx_cli_opt_t opts[] = { { "--id", BCTX_CLI_TEXT, 0, &id }, { NULL, 0, 0, NULL } };
    int npos, code = bctx_cli_parse (c, argc, argv, opts, pos, 3, 3, &npos);
    if (code >= 0)
        return code;
    json_error_t jerr;
    json_t *data = json_loads (pos[2], 0, &jerr);
    if (!data)
        return bctx_cli_usage_error (c->sub, "JSON: line %d, column %d: %s", jerr.line,
                                     jerr.column, jerr.text);
    if (!json_is_object (data)) {
        code = bctx_cli_usage_error (c->sub, "JSON must be an object ({...}), got %s",
                                     s_json_kind (data));
        json_decref (data);
        return code;
    }
    json_t *req = json_pack ("{s:s, s:s, s:s, s:o}", "op", "send", "context",
                             pos[0], "command", pos[1], "data", data);
    if (!req)
        return bctx_cli_usage_error (c->sub, "CONTEXT and COMMAND must be UTF-8");
    if (id)
        json_object_set_new (req, "id", json_string (id));
    return bctx_cli_simple (c, req);
}

/* Asks one page of events.  Return: the reply (new), or NULL with *code. */
static json_t *
s_page (bctx_cli_t *c, const char *context, const char *aggregate, long long from,
        long long page, int *code)
{
    json_t *req = json_pack ("{s:s, s:s, s:I, s:I}", "op", "events", "context", context,
                             "from", (json_int_t) from, "limit", (json_int_t) page);
    if (!req) {
        fprintf (stderr, "bctx events: --context must be UTF-8\n");
        *code = BCTX_CLI_USAGE;
        return NULL;
    }
    if (aggregate)
        json_object_set_new (req, "aggregate", json_string (aggregate));
    return bctx_cli_call_ok (c, "events", req, code);
}

/* Prints the events of one context, paging through: each page's "next"
 * says where the following one starts (a page may be cut short by the
 * host's byte budget), null when none follows. */
int
bctx_cli_events_of (bctx_cli_t *c, const char *context, const char *aggregate,
                    long long from, long long limit, long long *printed, long long *last)
{
    *last = from - 1;
    for (;;) {
        long long page = S_PAGE;
        if (limit >= 0 && limit - *printed < page)
            page = limit - *printed;
        if (page <= 0)
            return BCTX_CLI_DONE;
        int code = BCTX_CLI_DONE;
        json_t *reply = s_page (c, context, aggregate, from, page, &code);
        if (!reply)
            return code;
        json_t *events = json_object_get (reply, "events");
        size_t i;
        json_t *ev;
        json_array_foreach (events, i, ev) {
            bctx_cli_show_event (c, ev);
            from = json_integer_value (json_object_get (ev, "position")) + 1;
            *last = from - 1;
        }
        size_t got = json_array_size (events);
        *printed += (long long) got;
        /* A host without "next" ends its events with a short page. */
        json_t *next = json_object_get (reply, "next");
        int more = next ? json_is_integer (next) : (long long) got == page;
        if (json_is_integer (next) && json_integer_value (next) >= from)
            from = json_integer_value (next);
        else if (json_is_integer (next))
            more = 0;             /* no progress: never ask the same page twice */
        json_decref (reply);
        if (!more || got == 0)
            return BCTX_CLI_DONE;
    }
}

int
bctx_cli_events (bctx_cli_t *c, int argc, char **argv)
{
    const char *context = NULL, *aggregate = NULL, *bus = getenv ("BCTX_BUS");
    long long from = 1, limit = -1;
    int follow = 0;
    const bctx_cli_opt_t opts[] = {
        { "--context", BCTX_CLI_TEXT, 0, &context },
        { "--aggregate", BCTX_CLI_TEXT, 0, &aggregate },
        { "--from", BCTX_CLI_COUNT, 1, &from },
        { "--limit", BCTX_CLI_COUNT, 1, &limit },
        { "--follow", BCTX_CLI_FLAG, 0, &follow },
        { "--bus", BCTX_CLI_TEXT, 0, &bus },
        { NULL, 0, 0, NULL }
    };
    int npos, code = bctx_cli_parse (c, argc, argv, opts, NULL, 0, 0, &npos);
    if (code >= 0)
        return code;
    if (follow && !context)
        return bctx_cli_usage_error (c->sub, "--follow needs --context C (one context's log)");
    if (follow)
        return bctx_cli_follow (c, context, aggregate, from, limit, bus);
    long long printed = 0, last;
    if (context)
        return bctx_cli_events_of (c, context, aggregate, from, limit, &printed, &last);
    /* Every context of the host, one after the other. */
    json_t *req = json_pack ("{s:s}", "op", "contexts");
    json_t *reply = bctx_cli_call (c, req, &code);
    json_decref (req);
    if (!reply)
        return code;
    code = BCTX_CLI_DONE;
    json_t *list = json_object_get (reply, "contexts");
    size_t i;
    json_t *ctx;
    json_array_foreach (list, i, ctx) {
        printed = 0;
        code = bctx_cli_events_of (c, json_string_value (json_object_get (ctx, "name")),
                                   aggregate, from, limit, &printed, &last);
        if (code != BCTX_CLI_DONE)
            break;
    }
    json_decref (reply);
    return code;
}

/* query PROJECTION KEY prints one read model; query PROJECTION prints a
 * page of them, {"items": [...], "next": KEY or null}. */
int
bctx_cli_query (bctx_cli_t *c, int argc, char **argv)
{
    const char *pos[2] = { NULL, NULL }, *after = NULL;
    long long limit = -1;
    const bctx_cli_opt_t opts[] = {
        { "--after", BCTX_CLI_TEXT, 0, &after },
        { "--limit", BCTX_CLI_COUNT, 1, &limit },
        { NULL, 0, 0, NULL }
    };
    int npos, code = bctx_cli_parse (c, argc, argv, opts, pos, 1, 2, &npos);
    if (code >= 0)
        return code;
    if (pos[1] && (after || limit > 0))
        return bctx_cli_usage_error (c->sub, "KEY reads one read model: --after and --limit "
                                     "are for a page (no KEY)");
    json_t *req = json_pack ("{s:s, s:s}", "op", "query", "projection", pos[0]);
    if (!req)
        return bctx_cli_usage_error (c->sub, "PROJECTION must be UTF-8");
    if (pos[1])
        json_object_set_new (req, "key", json_string (pos[1]));
    if (after)
        json_object_set_new (req, "after", json_string (after));
    if (limit > 0)
        json_object_set_new (req, "limit", json_integer (limit));
    return bctx_cli_simple (c, req);
}

/* replay PROJECTION [--wait]. */
int
bctx_cli_replay (bctx_cli_t *c, int argc, char **argv)
{
    const char *pos[1];
    int wait = 0;
    const bctx_cli_opt_t opts[] = { { "--wait", BCTX_CLI_FLAG, 0, &wait },
                                    { NULL, 0, 0, NULL } };
    int npos, code = bctx_cli_parse (c, argc, argv, opts, pos, 1, 1, &npos);
    if (code >= 0)
        return code;
    json_t *req = json_pack ("{s:s, s:s}", "op", "replay", "projection", pos[0]);
    if (!req)
        return bctx_cli_usage_error (c->sub, "PROJECTION must be UTF-8");
    if (!wait)
        return bctx_cli_simple (c, req);
    long long before = bctx_cli_rebuilds (c, pos[0], &code);
    json_t *reply = before >= 0 ? bctx_cli_call (c, req, &code) : NULL;
    json_decref (req);
    if (!reply)
        return code;
    if (!json_is_true (json_object_get (reply, "ok"))) {
        code = bctx_cli_show (c, c->sub, reply);
        json_decref (reply);
        return code;
    }
    json_decref (reply);
    return bctx_cli_replay_wait (c, pos[0], before);
}

/* retry REACTOR, or retry PROJECTION CONTEXT POSITION: the poison event
 * parked for PROJECTION, named by its context's log and position (as
 * `stats` lists it). */
int
bctx_cli_retry (bctx_cli_t *c, int argc, char **argv)
{
    const char *pos[3];
    int npos, code = bctx_cli_parse (c, argc, argv, NULL, pos, 1, 3, &npos);
    if (code >= 0)
        return code;
    if (npos == 1)
        return bctx_cli_simple (c, json_pack ("{s:s, s:s}", "op", "retry", "reactor", pos[0]));
    long long position;
    if (npos == 2)
        return bctx_cli_usage_error (c->sub, "missing POSITION (a projection's parked event "
                                     "is named by PROJECTION CONTEXT POSITION)");
    if (bctx_cli_number (pos[2], 1, &position) < 0)
        return bctx_cli_usage_error (c->sub, "POSITION must be a position in the log (1, 2, "
                                     "...), got \"%s\"", pos[2]);
    return bctx_cli_simple (c, json_pack ("{s:s, s:s, s:s, s:I}", "op", "retry", "projection",
                                          pos[0], "context", pos[1], "position",
                                          (json_int_t) position));
}

/* reload CONTEXT [PLUGIN]: a relative PLUGIN is made absolute, since the
 * host may run elsewhere in the file system. */
int
bctx_cli_reload (bctx_cli_t *c, int argc, char **argv)
{
    const char *pos[2] = { NULL, NULL };
    int npos, code = bctx_cli_parse (c, argc, argv, NULL, pos, 1, 2, &npos);
    if (code >= 0)
        return code;
    json_t *req = json_pack ("{s:s, s:s}", "op", "reload", "context", pos[0]);
    if (!req)
        return bctx_cli_usage_error (c->sub, "CONTEXT must be UTF-8");
    if (pos[1]) {
        char *abs = realpath (pos[1], NULL);
        json_object_set_new (req, "plugin", json_string (abs ? abs : pos[1]));
        free (abs);
    }
    return bctx_cli_simple (c, req);
}

/* stats [--watch [SECONDS]] [--count N]. */
int
bctx_cli_stats (bctx_cli_t *c, int argc, char **argv)
{
    long long watch = -1, count = -1;
    const bctx_cli_opt_t opts[] = {
        { "--watch", BCTX_CLI_MAYBE_COUNT, 1, &watch },
        { "--count", BCTX_CLI_COUNT, 1, &count },
        { NULL, 0, 0, NULL }
    };
    int npos, code = bctx_cli_parse (c, argc, argv, opts, NULL, 0, 0, &npos);
    if (code >= 0)
        return code;
    if (count > 0 && watch < 0)
        return bctx_cli_usage_error (c->sub, "--count N is for --watch");
    if (watch >= 0)
        return bctx_cli_watch (c, watch ? (double) watch : 2.0, count);
    return bctx_cli_simple (c, json_pack ("{s:s}", "op", "stats"));
}

int
bctx_cli_bare (bctx_cli_t *c, int argc, char **argv)
{
    int npos, code = bctx_cli_parse (c, argc, argv, NULL, NULL, 0, 0, &npos);
    if (code >= 0)
        return code;
    return bctx_cli_simple (c, json_pack ("{s:s}", "op", c->sub));
}
