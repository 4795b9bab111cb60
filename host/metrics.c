/*
 * metrics - the stats op's reply as Prometheus text: each figure of the
 * stats reply whose meaning is known mapped to a typed family (counter,
 * gauge, histogram or a 0/1 state set), with its HELP and TYPE lines and
 * its labels (context, projection, reactor, peer, outcome, state).  A
 * figure the reply does not carry is left out; a family is still there,
 * with no samples.  docs/metrics.md lists them.
 */

#include "metrics.h"
#include "histogram.h"
#include "protocol.h"

#include <stdio.h>
#include <string.h>

/* Appends one sample: name{k1="v1",...} number.  labels: pairs, NULL
 * ended (NULL: none). */
static void
s_sample (bctx_buf_t *b, const char *name, const char *const *labels, double v)
{
    bctx_buf_add_str (b, name);
    for (size_t i = 0; labels && labels[i]; i += 2) {
        bctx_buf_add_str (b, i ? "," : "{");
        bctx_buf_add_str (b, labels[i]);
        bctx_buf_add_str (b, "=");
        /* JSON's escapes of \ " and newline are the text format's. */
        bctx_buf_add_json_string (b, labels[i + 1]);
        if (!labels[i + 2])
            bctx_buf_add_str (b, "}");
    }
    char line[64];
    int n = snprintf (line, sizeof line, " %.17g\n", v);
    bctx_buf_add (b, line, (size_t) n);
}

/* Appends a family's HELP and TYPE lines. */
static void
s_family (bctx_buf_t *b, const char *name, const char *type, const char *help)
{
    char line[640];
    int n = snprintf (line, sizeof line, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
    bctx_buf_add (b, line, (size_t) n);
}

/* The member of o at path "a" or "a.b".  Return: borrowed, or NULL. */
static json_t *
s_at (json_t *o, const char *path)
{
    const char *dot = strchr (path, '.');
    if (!dot)
        return json_object_get (o, path);
    char first[64];
    snprintf (first, sizeof first, "%.*s", (int) (dot - path), path);
    return json_object_get (json_object_get (o, first), dot + 1);
}

/* A family of one number per member of group (contexts, projections,
 * ...), labelled label=member name: the number at path, times scale;
 * path "#poison" is the length of the member's poison list. */
static void
s_series (bctx_buf_t *b, json_t *group, const char *label, const char *name, const char *type,
          const char *help, const char *path, double scale)
{
    s_family (b, name, type, help);
    const char *key;
    json_t *m;
    json_object_foreach (group, key, m) {
        json_t *v = s_at (m, path);
        const char *labels[] = { label, key, NULL };
        if (json_is_number (v))
            s_sample (b, name, labels, json_number_value (v) * scale);
    }
}

/* A histogram family from the stats objects at field of every context
 * (histogram.h's JSON): cumulative buckets to +Inf, _sum and _count. */
static void
s_histogram (bctx_buf_t *b, json_t *contexts, const char *name, const char *help,
             const char *field)
{
    s_family (b, name, "histogram", help);
    char bucket[128], sum[128], count[128], le[32];
    snprintf (bucket, sizeof bucket, "%s_bucket", name);
    snprintf (sum, sizeof sum, "%s_sum", name);
    snprintf (count, sizeof count, "%s_count", name);
    const char *ctx;
    json_t *c;
    json_object_foreach (contexts, ctx, c) {
        bctx_histogram_t h;
        if (bctx_histogram_from_json (&h, json_object_get (c, field)) < 0)
            continue;
        uint64_t seen = 0;
        for (size_t i = 0; i < BCTX_HISTOGRAM_BUCKETS; i++) {
            seen += atomic_load (&h.buckets[i]);
            if (i < BCTX_HISTOGRAM_BUCKETS - 1)
                snprintf (le, sizeof le, "%g", bctx_histogram_bounds[i]);
            const char *labels[] = { "context", ctx, "le",
                                     i < BCTX_HISTOGRAM_BUCKETS - 1 ? le : "+Inf", NULL };
            s_sample (b, bucket, labels, (double) seen);
        }
        const char *labels[] = { "context", ctx, NULL };
        s_sample (b, sum, labels, (double) atomic_load (&h.sum_ns) / 1e9);
        s_sample (b, count, labels, (double) seen);
    }
}

/* A family of each member's numbers by key in the object at field
 * (a runner's checkpoints and lag by source context). */
static void
s_by_source (bctx_buf_t *b, json_t *group, const char *label, const char *name,
             const char *help, const char *field)
{
    s_family (b, name, "gauge", help);
    const char *key, *source;
    json_t *m, *v;
    json_object_foreach (group, key, m)
        json_object_foreach (json_object_get (m, field), source, v) {
            const char *labels[] = { label, key, "context", source, NULL };
            if (json_is_number (v))
                s_sample (b, name, labels, json_number_value (v));
        }
}

/* One sample of a state set: name{label=key[,extra=more],state=state} on. */
static void
s_state (bctx_buf_t *b, const char *name, const char *label, const char *key,
         const char *extra, const char *more, const char *state, int on)
{
    const char *with[] = { label, key, extra, more, "state", state, NULL };
    const char *without[] = { label, key, "state", state, NULL };
    s_sample (b, name, extra && more ? with : without, on);
}

/* A state set: for each member, 1 for its state (its "state" string) and
 * 0 for the other states of states (NULL ended); a state not in states
 * gets its 1 too.  extra: a second label, from the member's field of that
 * name, or NULL. */
static void
s_states (bctx_buf_t *b, json_t *group, const char *label, const char *extra,
          const char *name, const char *help, const char *const *states)
{
    s_family (b, name, "gauge", help);
    const char *key;
    json_t *m;
    json_object_foreach (group, key, m) {
        const char *state = json_string_value (json_object_get (m, "state"));
        const char *more = extra ? json_string_value (json_object_get (m, extra)) : NULL;
        int listed = 0;
        for (size_t i = 0; states[i]; i++) {
            int on = state && strcmp (states[i], state) == 0;
            listed |= on;
            s_state (b, name, label, key, extra, more, states[i], on);
        }
        if (state && !listed)
            s_state (b, name, label, key, extra, more, state, 1);
    }
}

/* Commands by outcome, reloads by outcome and the API's errors. */
static void
s_outcomes (bctx_buf_t *b, json_t *stats, json_t *contexts)
{
    static const char *const commands[] = { "accepted", "rejected", "failed", "duplicates" };
    static const char *const reloads[] = { "ok", "failed", "rolled_back" };
    static const char *const errors[] = { "bad_request", "too_large", "forbidden" };
    const char *ctx;
    json_t *c;
    s_family (b, "bctx_commands_total", "counter", "commands handled, by outcome");
    json_object_foreach (contexts, ctx, c)
        for (size_t i = 0; i < 4; i++) {
            json_t *v = json_object_get (c, commands[i]);
            const char *labels[] = { "context", ctx, "outcome",
                                     i == 3 ? "duplicate" : commands[i], NULL };
            if (json_is_number (v))
                s_sample (b, "bctx_commands_total", labels, json_number_value (v));
        }
    s_family (b, "bctx_reloads_total", "counter", "reloads (handovers), by outcome");
    json_object_foreach (contexts, ctx, c)
        for (size_t i = 0; i < 3; i++) {
            json_t *v = json_object_get (json_object_get (c, "reloads"), reloads[i]);
            const char *labels[] = { "context", ctx, "outcome", reloads[i], NULL };
            if (json_is_number (v))
                s_sample (b, "bctx_reloads_total", labels, json_number_value (v));
        }
    s_family (b, "bctx_api_errors_total", "counter", "requests the API refused, by code");
    for (size_t i = 0; i < 3; i++) {
        json_t *v = json_object_get (json_object_get (stats, "api"), errors[i]);
        const char *labels[] = { "code", errors[i], NULL };
        if (json_is_number (v))
            s_sample (b, "bctx_api_errors_total", labels, json_number_value (v));
    }
}

/* Every context's own families. */
static void
s_contexts (bctx_buf_t *b, json_t *cs)
{
    s_series (b, cs, "context", "bctx_events_appended_total", "counter",
              "events appended to the context's log", "events", 1);
    s_series (b, cs, "context", "bctx_commits_total", "counter",
              "commits (group commits) of the context's log", "commits", 1);
    s_series (b, cs, "context", "bctx_commands_per_commit", "gauge",
              "commands per commit, on average", "commands_per_commit", 1);
    s_series (b, cs, "context", "bctx_log_position", "gauge",
              "the last position of the context's log", "position", 1);
    s_series (b, cs, "context", "bctx_process_restarts_total", "counter",
              "restarts of the context process", "process.restarts", 1);
    s_series (b, cs, "context", "bctx_process_resident_memory_bytes", "gauge",
              "RSS of the context process", "process.rss_mb", 1024.0 * 1024.0);
    s_series (b, cs, "context", "bctx_process_cpu_seconds_total", "counter",
              "CPU time of the context process", "process.cpu_seconds", 1);
    s_histogram (b, cs, "bctx_command_duration_seconds", "a command's time from the "
                 "supervisor's admission to its reply", "command_seconds");
    s_histogram (b, cs, "bctx_commit_duration_seconds", "a commit of the context's log, "
                 "its fsync included", "commit_seconds");
    s_histogram (b, cs, "bctx_reload_pause_seconds", "how long a reload held the "
                 "context's commands", "reload_pause_seconds");
}

/* The families of projections or reactors (kind), each labelled kind. */
static void
s_runners (bctx_buf_t *b, json_t *rs, const char *kind, const char *const *states)
{
    char name[96], help[160];
    snprintf (name, sizeof name, "bctx_%s_checkpoint", kind);
    snprintf (help, sizeof help, "the last position the %s handled, by source context", kind);
    s_by_source (b, rs, kind, name, help, "checkpoints");
    snprintf (name, sizeof name, "bctx_%s_lag_events", kind);
    snprintf (help, sizeof help, "events of the source context the %s has not handled", kind);
    s_by_source (b, rs, kind, name, help, "lag");
    snprintf (name, sizeof name, "bctx_%s_handled_events_total", kind);
    snprintf (help, sizeof help, "events the %s handled", kind);
    s_series (b, rs, kind, name, "counter", help, "handled", 1);
    snprintf (name, sizeof name, "bctx_%s_state", kind);
    snprintf (help, sizeof help, "the %s's state (1 for the one it is in)", kind);
    s_states (b, rs, kind, NULL, name, help, states);
    /* Parked: poison (they ended the process) and, for a reactor, events
     * of aggregates whose event failed its retries. */
    snprintf (name, sizeof name, "bctx_%s_parked_events", kind);
    snprintf (help, sizeof help, "events the %s parked, by why", kind);
    s_family (b, name, "gauge", help);
    const char *key;
    json_t *r;
    json_object_foreach (rs, key, r) {
        const char *poison[] = { kind, key, "reason", "poison", NULL };
        s_sample (b, name, poison, (double) json_array_size (json_object_get (r, "poison")));
        const char *retries[] = { kind, key, "reason", "retries", NULL };
        if (json_is_number (json_object_get (r, "parked")))
            s_sample (b, name, retries, json_number_value (json_object_get (r, "parked")));
    }
}

/* Bridges (labelled by the replica's context and its peer) and peers. */
static void
s_remote (bctx_buf_t *b, json_t *bridges, json_t *peers)
{
    static const struct {
        const char *field, *name, *type, *help;
    } fields[] = {
        { "checkpoint", "bctx_bridge_checkpoint", "gauge", "the last position in the replica" },
        { "peer_head", "bctx_bridge_peer_head", "gauge", "the peer's last position heard of" },
        { "lag", "bctx_bridge_lag_events", "gauge", "events of the peer not in the replica" },
        { "seconds_since_contact", "bctx_bridge_contact_age_seconds", "gauge",
          "seconds since the peer last answered" },
        { "fetched", "bctx_bridge_fetched_events_total", "counter",
          "events fetched through the peer's API" },
        { "live", "bctx_bridge_live_events_total", "counter", "events taken from the peer's bus" },
        { "duplicates", "bctx_bridge_duplicate_events_total", "counter",
          "bus events that were in the replica already" },
        { "dropped", "bctx_bridge_dropped_frames_total", "counter", "malformed frames dropped" },
    };
    for (size_t f = 0; f < sizeof fields / sizeof fields[0]; f++) {
        s_family (b, fields[f].name, fields[f].type, fields[f].help);
        const char *key;
        json_t *m;
        json_object_foreach (bridges, key, m) {
            json_t *v = json_object_get (m, fields[f].field);
            const char *peer = json_string_value (json_object_get (m, "peer"));
            const char *labels[] = { "context", key, "peer", peer ? peer : "", NULL };
            if (json_is_number (v))
                s_sample (b, fields[f].name, labels, json_number_value (v));
        }
    }
    static const char *const states[] = { "connecting", "catching up", "live", "down",
                                          "diverged", NULL };
    s_states (b, bridges, "context", "peer", "bctx_bridge_state",
              "the bridge's state (1 for the one it is in)", states);
    s_series (b, peers, "peer", "bctx_peer_forwarded_commands_total", "counter",
              "commands forwarded to the peer host", "forwarded", 1);
    s_series (b, peers, "peer", "bctx_peer_unanswered_commands_total", "counter",
              "forwarded commands the peer did not answer in time, or that could not be "
              "sent", "unanswered", 1);
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
    s_sample (&b, "bctx_api_requests_total", NULL,
              json_number_value (json_object_get (api, "requests")));
    s_family (&b, "bctx_api_in_flight", "gauge", "requests the API has not answered yet");
    s_sample (&b, "bctx_api_in_flight", NULL,
              json_number_value (json_object_get (api, "in_flight")));
    json_t *contexts = json_object_get (stats, "contexts");
    s_outcomes (&b, stats, contexts);
    s_contexts (&b, contexts);
    static const char *const projection[] = { "live", "rebuilding", "failing", NULL };
    static const char *const reactor[] = { "live", "waiting", "parked", NULL };
    json_t *projections = json_object_get (stats, "projections");
    s_runners (&b, projections, "projection", projection);
    s_series (&b, projections, "projection", "bctx_projection_rebuilds_total", "counter",
              "rebuilds of the projection", "rebuilds", 1);
    s_series (&b, projections, "projection", "bctx_projection_passed_over_events_total",
              "counter", "parked events the projection did not hand its handler",
              "passed_over", 1);
    json_t *reactors = json_object_get (stats, "reactors");
    s_runners (&b, reactors, "reactor", reactor);
    s_series (&b, reactors, "reactor", "bctx_reactor_retries_total", "counter",
              "events the reactor tried again after a failure", "retries", 1);
    s_remote (&b, json_object_get (stats, "bridges"), json_object_get (stats, "peers"));
    json_decref (stats);
    if (!b.text)
        bctx_buf_add_str (&b, "");
    return b.text;
}
