/*
 * metrics - the stats op's reply as Prometheus text: named series for the
 * figures whose meaning is fixed (commands by outcome, events, commits,
 * position, process), and each other number of a projection, reactor,
 * bridge or peer as a gauge named after its stats field.
 */

#include "metrics.h"
#include "protocol.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

/* Appends one sample: name{label="value"} number. */
static void
s_sample (bctx_buf_t *b, const char *name, const char *label, const char *value,
          const char *label2, const char *value2, double v)
{
    char line[1024];
    int n = snprintf (line, sizeof line, "%s", name);
    if (label)
        n += snprintf (line + n, sizeof line - (size_t) n, "{%s=", label);
    bctx_buf_add (b, line, (size_t) n);
    if (label) {
        bctx_buf_add_json_string (b, value);
        if (label2) {
            bctx_buf_add_str (b, ",");
            bctx_buf_add_str (b, label2);
            bctx_buf_add_str (b, "=");
            bctx_buf_add_json_string (b, value2);
        }
        bctx_buf_add_str (b, "}");
    }
    n = snprintf (line, sizeof line, " %.17g\n", v);
    bctx_buf_add (b, line, (size_t) n);
}

/* Appends a family's HELP and TYPE lines. */
static void
s_family (bctx_buf_t *b, const char *name, const char *type, const char *help)
{
    char line[512];
    int n = snprintf (line, sizeof line, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
    bctx_buf_add (b, line, (size_t) n);
}

/* One fixed series of every context: the field's number, per context. */
static void
s_context_series (bctx_buf_t *b, json_t *contexts, const char *name, const char *type,
                  const char *help, const char *path, double scale)
{
    s_family (b, name, type, help);
    const char *ctx;
    json_t *c;
    json_object_foreach (contexts, ctx, c) {
        json_t *v = json_object_get (c, path);
        if (!v && strncmp (path, "process.", 8) == 0)
            v = json_object_get (json_object_get (c, "process"), path + 8);
        if (json_is_number (v))
            s_sample (b, name, "context", ctx, NULL, NULL, json_number_value (v) * scale);
    }
}

/* Every number of each member of group (projections, reactors, bridges,
 * peers) as a gauge bctx_<kind>_<field>{<label>=name}. */
static void
s_group (bctx_buf_t *b, json_t *group, const char *kind, const char *label)
{
    const char *name;
    json_t *member;
    json_object_foreach (group, name, member) {
        const char *field;
        json_t *v;
        json_object_foreach (member, field, v) {
            char metric[200];
            int n = snprintf (metric, sizeof metric, "bctx_%s_", kind);
            for (const char *f = field; *f && n < (int) sizeof metric - 1; f++)
                metric[n++] = isalnum ((unsigned char) *f) ? *f : '_';
            metric[n] = '\0';
            if (json_is_number (v))
                s_sample (b, metric, label, name, NULL, NULL, json_number_value (v));
            else if (json_is_boolean (v))
                s_sample (b, metric, label, name, NULL, NULL, json_is_true (v));
            else if (json_is_string (v) && strcmp (field, "state") == 0)
                s_sample (b, metric, label, name, "state", json_string_value (v), 1);
        }
    }
}

/* Commands by outcome, per context. */
static void
s_outcomes (bctx_buf_t *b, json_t *contexts)
{
    static const char *const outcomes[] = { "accepted", "rejected", "failed", "duplicates" };
    s_family (b, "bctx_commands_total", "counter", "commands handled, by outcome");
    const char *ctx;
    json_t *c;
    json_object_foreach (contexts, ctx, c)
        for (size_t i = 0; i < 4; i++) {
            json_t *v = json_object_get (c, outcomes[i]);
            if (json_is_number (v))
                s_sample (b, "bctx_commands_total", "context", ctx, "outcome",
                          i == 3 ? "duplicate" : outcomes[i], json_number_value (v));
        }
}

char *
bctx_metrics_render (const char *stats_reply)
{
    json_t *stats = stats_reply ? json_loads (stats_reply, 0, NULL) : NULL;
    if (!json_is_true (json_object_get (stats, "ok"))) {
        json_decref (stats);
        return NULL;
    }
    bctx_buf_t b = { 0 };
    json_t *api = json_object_get (stats, "api");
    s_family (&b, "bctx_api_requests_total", "counter", "requests the API read");
    s_sample (&b, "bctx_api_requests_total", NULL, NULL, NULL, NULL,
              json_number_value (json_object_get (api, "requests")));
    s_family (&b, "bctx_api_in_flight", "gauge", "requests the API has not answered yet");
    s_sample (&b, "bctx_api_in_flight", NULL, NULL, NULL, NULL,
              json_number_value (json_object_get (api, "in_flight")));
    json_t *contexts = json_object_get (stats, "contexts");
    s_outcomes (&b, contexts);
    s_context_series (&b, contexts, "bctx_events_appended_total", "counter",
                      "events appended to the context's log", "events", 1);
    s_context_series (&b, contexts, "bctx_commits_total", "counter",
                      "commits (group commits) of the context's log", "commits", 1);
    s_context_series (&b, contexts, "bctx_commands_per_commit", "gauge",
                      "commands per commit, on average", "commands_per_commit", 1);
    s_context_series (&b, contexts, "bctx_log_position", "gauge",
                      "the last position of the context's log", "position", 1);
    s_context_series (&b, contexts, "bctx_process_restarts_total", "counter",
                      "restarts of the context process", "process.restarts", 1);
    s_context_series (&b, contexts, "bctx_process_resident_memory_bytes", "gauge",
                      "RSS of the context process", "process.rss_mb", 1024.0 * 1024.0);
    s_context_series (&b, contexts, "bctx_process_cpu_seconds_total", "counter",
                      "CPU time of the context process", "process.cpu_seconds", 1);
    s_group (&b, json_object_get (stats, "projections"), "projection", "projection");
    s_group (&b, json_object_get (stats, "reactors"), "reactor", "reactor");
    s_group (&b, json_object_get (stats, "bridges"), "bridge", "context");
    s_group (&b, json_object_get (stats, "peers"), "peer", "peer");
    json_decref (stats);
    if (!b.text)
        bctx_buf_add_str (&b, "");
    return b.text;
}
