/*
 * cli_show - how `bctx` prints a reply: piped, one JSON line as the host
 * sent it (scripts and tests read that); for people (a terminal, or
 * --pretty), tables for contexts, stats and events, indented JSON for the
 * rest, and an error as one line on stderr.
 */

#include "cli.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_COLS 10                 /* most columns a table has */
#define S_CELL 48                 /* widest a cell is printed (longer: cut, "…") */

/* A table being filled, then printed with each column as wide as its
 * widest cell. */
typedef struct {
    size_t cols;                  /* columns */
    size_t rows;                  /* rows, the header first */
    char **cells;                 /* rows * cols texts (new) */
} s_table_t;

/* Adds a row of the t->cols texts (borrowed; NULL shows as "-"). */
static void
s_add (s_table_t *t, const char *const *texts)
{
    char **bigger = realloc (t->cells, (t->rows + 1) * t->cols * sizeof *bigger);
    if (!bigger)
        return;
    t->cells = bigger;
    for (size_t i = 0; i < t->cols; i++)
        t->cells[t->rows * t->cols + i] = strdup (texts[i] ? texts[i] : "-");
    t->rows++;
}

/* Adds a row of t->cols cells, from the strings given. */
static void
s_row (s_table_t *t, ...)
{
    const char *texts[S_COLS];
    va_list ap;
    va_start (ap, t);
    for (size_t i = 0; i < t->cols; i++)
        texts[i] = va_arg (ap, const char *);
    va_end (ap);
    s_add (t, texts);
}

/* Prints t under title (or none) and frees its cells. */
static void
s_table_print (s_table_t *t, const char *title)
{
    size_t width[S_COLS] = { 0 };
    for (size_t r = 0; r < t->rows; r++)
        for (size_t i = 0; i < t->cols; i++) {
            size_t n = strlen (t->cells[r * t->cols + i]);
            if (n > width[i])
                width[i] = n > S_CELL ? S_CELL : n;
        }
    if (title)
        printf ("%s\n", title);
    for (size_t r = 0; r < t->rows; r++) {
        for (size_t i = 0; i < t->cols; i++) {
            const char *cell = t->cells[r * t->cols + i];
            int cut = strlen (cell) > S_CELL;
            printf ("%s%-*.*s%s", i ? "  " : "", cut ? S_CELL - 3 : (int) width[i],
                    cut ? S_CELL - 3 : S_CELL, cell, cut ? "..." : "");
            free (t->cells[r * t->cols + i]);
        }
        printf ("\n");
    }
    free (t->cells);
    t->cells = NULL;
    t->rows = 0;
}

/* A JSON value as short text into buf: a string as it is, else compact
 * JSON ("-" for none).  Return buf. */
static const char *
s_text (const json_t *v, char *buf, size_t size)
{
    if (!v || json_is_null (v))
        snprintf (buf, size, "-");
    else if (json_is_string (v))
        snprintf (buf, size, "%s", json_string_value (v));
    else {
        char *text = json_dumps (v, JSON_COMPACT | JSON_ENCODE_ANY);
        snprintf (buf, size, "%s", text ? text : "?");
        free (text);
    }
    return buf;
}

/* Adds a row: first (unless NULL), then the text of o's member each of
 * keys names, in turn, up to t->cols cells ("process.pid": the member
 * pid of o's "process"). */
static void
s_row_of (s_table_t *t, const char *first, const json_t *o, const char *const *keys)
{
    char b[S_COLS][256];
    const char *texts[S_COLS];
    size_t i = 0;
    if (first)
        texts[i++] = first;
    for (; i < t->cols; i++, keys++) {
        const json_t *from = o;
        const char *key = *keys;
        if (strncmp (key, "process.", 8) == 0) {
            from = json_object_get (o, "process");
            key += 8;
        }
        texts[i] = s_text (json_object_get (from, key), b[i], sizeof b[i]);
    }
    s_add (t, texts);
}

/* The sum of an object's numbers (a runner's lag by context) as text. */
static const char *
s_sum (const json_t *o, char *buf, size_t size)
{
    long long sum = 0;
    const char *k;
    json_t *v;
    json_object_foreach ((json_t *) o, k, v)
        sum += json_integer_value (v);
    snprintf (buf, size, "%lld", sum);
    return buf;
}

static void
s_show_contexts (json_t *reply)
{
    s_table_t t = { .cols = 7 };
    s_row (&t, "CONTEXT", "VERSION", "POSITION", "PID", "STATE", "RELOADS", "PLUGIN");
    size_t i;
    json_t *c;
    static const char *const keys[] = { "name", "version", "position", "process.pid",
                                        "process.state", "reloads", "plugin" };
    json_array_foreach (json_object_get (reply, "contexts"), i, c)
        s_row_of (&t, NULL, c, keys);
    char title[256];
    snprintf (title, sizeof title, "host %s", json_string_value (json_object_get (reply, "host")));
    s_table_print (&t, title);
    json_t *remote = json_object_get (reply, "remote");
    if (json_array_size (remote) == 0)
        return;
    t.cols = 3;
    s_row (&t, "REMOTE", "PEER", "API");
    static const char *const remote_keys[] = { "name", "peer", "api" };
    json_array_foreach (remote, i, c)
        s_row_of (&t, NULL, c, remote_keys);
    s_table_print (&t, "");
}

/* The runners of stats (projections or reactors) as a table. */
static void
s_show_runners (json_t *runners, const char *title)
{
    if (json_object_size (runners) == 0)
        return;
    s_table_t t = { .cols = 6 };
    s_row (&t, title, "CONTEXT", "STATE", "LAG", "HANDLED", "PARKED");
    const char *name;
    json_t *r;
    json_object_foreach (runners, name, r) {
        char b[5][256];
        json_t *parked = json_object_get (r, "parked");
        if (!parked)
            snprintf (b[4], 256, "%zu", json_array_size (json_object_get (r, "poison")));
        s_row (&t, name, s_text (json_object_get (r, "context"), b[0], 256),
               s_text (json_object_get (r, "state"), b[1], 256),
               s_sum (json_object_get (r, "lag"), b[2], 256),
               s_text (json_object_get (r, "handled"), b[3], 256),
               parked ? s_text (parked, b[4], 256) : b[4]);
    }
    printf ("\n");
    s_table_print (&t, NULL);
}

static void
s_show_stats (json_t *reply)
{
    json_t *api = json_object_get (reply, "api");
    printf ("host %s: %lld requests, %lld in flight, %lld bad, %lld too large, %lld forbidden\n",
            json_string_value (json_object_get (reply, "host")),
            (long long) json_integer_value (json_object_get (api, "requests")),
            (long long) json_integer_value (json_object_get (api, "in_flight")),
            (long long) json_integer_value (json_object_get (api, "bad_request")),
            (long long) json_integer_value (json_object_get (api, "too_large")),
            (long long) json_integer_value (json_object_get (api, "forbidden")));
    s_table_t t = { .cols = 9 };
    s_row (&t, "CONTEXT", "POSITION", "COMMANDS", "ACCEPTED", "REJECTED", "FAILED", "EVENTS",
           "PID", "RSS_MB");
    const char *name;
    json_t *c;
    static const char *const keys[] = { "position", "commands", "accepted", "rejected",
                                        "failed", "events", "process.pid", "process.rss_mb" };
    json_object_foreach (json_object_get (reply, "contexts"), name, c)
        s_row_of (&t, name, c, keys);
    printf ("\n");
    s_table_print (&t, NULL);
    s_show_runners (json_object_get (reply, "projections"), "PROJECTION");
    s_show_runners (json_object_get (reply, "reactors"), "REACTOR");
}

int
bctx_cli_show (const bctx_cli_t *c, const char *what, json_t *reply)
{
    int ok = json_is_true (json_object_get (reply, "ok"));
    if (!c->pretty) {
        char *text = json_dumps (reply, JSON_COMPACT);
        puts (text);
        free (text);
    } else if (!ok) {
        json_t *error = json_object_get (reply, "error");
        fprintf (stderr, "bctx %s: %s: %s\n", what,
                 json_string_value (json_object_get (error, "code")),
                 json_string_value (json_object_get (error, "message")));
    } else if (strcmp (what, "contexts") == 0) {
        s_show_contexts (reply);
    } else if (strcmp (what, "stats") == 0) {
        s_show_stats (reply);
    } else {
        char *text = json_dumps (reply, JSON_INDENT (2));
        puts (text);
        free (text);
    }
    fflush (stdout);
    return ok ? BCTX_CLI_DONE : BCTX_CLI_ERROR;
}

void
bctx_cli_show_event (bctx_cli_t *c, json_t *event)
{
    if (!c->pretty) {
        char *text = json_dumps (event, JSON_COMPACT);
        puts (text);
        free (text);
        return;
    }
    if (!c->header)
        printf ("%8s  %-12s  %-16s  %7s  %-20s  %s\n", "POSITION", "CONTEXT", "AGGREGATE",
                "VERSION", "TYPE", "DATA");
    c->header = 1;
    char b[5][256];
    printf ("%8s  %-12s  %-16s  %7s  %-20s  %s\n",
            s_text (json_object_get (event, "position"), b[0], 256),
            s_text (json_object_get (event, "context"), b[1], 256),
            s_text (json_object_get (event, "aggregate"), b[2], 256),
            s_text (json_object_get (event, "version"), b[3], 256),
            s_text (json_object_get (event, "type"), b[4], 256),
            s_text (json_object_get (event, "data"), (char[1024]) { 0 }, 1024));
}

void
bctx_cli_show_progress (const char *label, double done, double total)
{
    int width = 30;
    double part = total > 0 ? done / total : 1.0;
    if (part > 1)
        part = 1;
    int full = (int) (part * width);
    char bar[64];
    for (int i = 0; i < width; i++)
        bar[i] = i < full ? '#' : '.';
    bar[width] = '\0';
    fprintf (stderr, "\r%s [%s] %5.1f%% (%.0f of %.0f)", label, bar, 100.0 * part, done, total);
    fflush (stderr);
}
