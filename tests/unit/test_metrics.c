/*
 * test_metrics - unit tests of host/metrics on a stats reply written here:
 * every sample belongs to a family announced with # HELP and # TYPE before
 * it; a histogram of the reply comes out cumulative, ending in +Inf equal
 * to its _count, with its _sum; commands and reloads by outcome, the
 * process's RSS in bytes, a runner's checkpoint and lag by source, parked
 * events by reason, a bridge's state as a 0/1 set with its peer; a label
 * with a quote is escaped; a reply that is not a stats reply gives NULL.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "histogram.h"
#include "metrics.h"

static const char s_stats[] =
    "{\"ok\":true,\"host\":\"h\",\"api\":{\"requests\":9,\"in_flight\":1,\"bad_request\":2,"
    "\"too_large\":0,\"forbidden\":3},"
    "\"contexts\":{\"acc\\\"x\":{\"position\":7,\"commands\":5,\"accepted\":4,\"rejected\":1,"
    "\"failed\":0,\"duplicates\":0,\"events\":6,\"commits\":2,\"commands_per_commit\":2.5,"
    "\"commit_seconds\":{\"count\":2,\"sum\":0.003,"
    "\"buckets\":[0,0,0,1,1,0,0,0,0,0,0,0,0,0,0,0]},"
    "\"command_seconds\":{\"count\":5,\"sum\":7.5,"
    "\"buckets\":[1,0,0,0,0,0,0,0,0,0,0,0,0,0,1,3]},"
    "\"reloads\":{\"ok\":1,\"failed\":2,\"rolled_back\":0},"
    "\"reload_pause_seconds\":{\"count\":0,\"sum\":0,\"buckets\":[1,2]},"
    "\"process\":{\"pid\":1,\"restarts\":3,\"rss_mb\":2,\"cpu_seconds\":0.5}}},"
    "\"projections\":{\"bal\":{\"context\":\"t\",\"state\":\"rebuilding\","
    "\"checkpoints\":{\"acc\":4},\"lag\":{\"acc\":3},\"handled\":4,\"rebuilds\":1,"
    "\"passed_over\":0,\"poison\":[{\"position\":2}]}},"
    "\"reactors\":{\"r\":{\"context\":\"t\",\"state\":\"parked\",\"checkpoints\":{\"t\":1},"
    "\"lag\":{\"t\":0},\"parked\":2,\"handled\":1,\"retries\":5,\"poison\":[]}},"
    "\"bridges\":{\"acc\":{\"context\":\"acc\",\"peer\":\"a\",\"state\":\"catching up\","
    "\"checkpoint\":3,\"peer_head\":9,\"lag\":6,\"seconds_since_contact\":0.25,"
    "\"fetched\":3,\"live\":0,\"duplicates\":0,\"dropped\":1}},"
    "\"peers\":{\"a\":{\"api\":\"tcp://x\",\"forwarded\":4,\"unanswered\":1}}}";

/* Is line (whole) in text? */
static int
s_has (const char *text, const char *line)
{
    size_t n = strlen (line);
    for (const char *p = text; (p = strstr (p, line)); p++)
        if ((p == text || p[-1] == '\n') && p[n] == '\n')
            return 1;
    return 0;
}

/* Asserts that line is in text, showing text when it is not. */
static void
s_expect (const char *text, const char *line)
{
    if (!s_has (text, line))
        fprintf (stderr, "missing: %s\nin:\n%s", line, text);
    assert_true (s_has (text, line));
}

static void
test_types (void **state)
{
    (void) state;
    char *text = bctx_metrics_render (s_stats);
    assert_non_null (text);
    /* Each sample's family was typed before it: its name, less a
     * histogram's suffix, is in a # TYPE line above. */
    size_t samples = 0;
    for (char *line = text; *line; line = strchr (line, '\n') + 1) {
        if (line[0] == '#')
            continue;
        char name[128];
        assert_int_equal (sscanf (line, "%127[a-z_]", name), 1);
        size_t n = strlen (name);
        static const char *const suffixes[] = { "_bucket", "_sum", "_count" };
        for (size_t k = 0; k < 3; k++) {
            size_t m = strlen (suffixes[k]);
            if (n > m && strcmp (name + n - m, suffixes[k]) == 0 && strstr (name, "_seconds_"))
                name[n - m] = '\0';
        }
        char type[160];
        snprintf (type, sizeof type, "\n# TYPE %s ", name);
        char *at = strstr (text, type);
        assert_non_null (at);
        assert_true (at < line);
        samples++;
    }
    assert_true (samples > 50);
    free (text);
}

static void
test_values (void **state)
{
    (void) state;
    char *text = bctx_metrics_render (s_stats);
    assert_non_null (text);
    s_expect (text, "bctx_commands_total{context=\"acc\\\"x\",outcome=\"rejected\"} 1");
    s_expect (text, "bctx_reloads_total{context=\"acc\\\"x\",outcome=\"failed\"} 2");
    s_expect (text, "bctx_api_errors_total{code=\"forbidden\"} 3");
    s_expect (text, "bctx_process_resident_memory_bytes{context=\"acc\\\"x\"} 2097152");
    s_expect (text, "bctx_process_restarts_total{context=\"acc\\\"x\"} 3");
    /* Cumulative, to +Inf == _count. */
    s_expect (text, "# TYPE bctx_command_duration_seconds histogram");
    s_expect (text, "bctx_command_duration_seconds_bucket{context=\"acc\\\"x\",le=\"0.0001\"} 1");
    s_expect (text, "bctx_command_duration_seconds_bucket{context=\"acc\\\"x\",le=\"2.5\"} 1");
    s_expect (text, "bctx_command_duration_seconds_bucket{context=\"acc\\\"x\",le=\"5\"} 2");
    s_expect (text, "bctx_command_duration_seconds_bucket{context=\"acc\\\"x\",le=\"+Inf\"} 5");
    s_expect (text, "bctx_command_duration_seconds_count{context=\"acc\\\"x\"} 5");
    s_expect (text, "bctx_command_duration_seconds_sum{context=\"acc\\\"x\"} 7.5");
    s_expect (text, "bctx_commit_duration_seconds_bucket{context=\"acc\\\"x\",le=\"0.0025\"} 2");
    /* A histogram of another shape is left out, its family still typed. */
    assert_null (strstr (text, "bctx_reload_pause_seconds_bucket"));
    s_expect (text, "# TYPE bctx_reload_pause_seconds histogram");
    s_expect (text, "bctx_projection_checkpoint{projection=\"bal\",context=\"acc\"} 4");
    s_expect (text, "bctx_projection_lag_events{projection=\"bal\",context=\"acc\"} 3");
    s_expect (text, "bctx_projection_parked_events{projection=\"bal\",reason=\"poison\"} 1");
    s_expect (text, "bctx_projection_state{projection=\"bal\",state=\"rebuilding\"} 1");
    s_expect (text, "bctx_projection_state{projection=\"bal\",state=\"live\"} 0");
    s_expect (text, "bctx_reactor_parked_events{reactor=\"r\",reason=\"retries\"} 2");
    s_expect (text, "bctx_reactor_retries_total{reactor=\"r\"} 5");
    s_expect (text, "bctx_bridge_lag_events{context=\"acc\",peer=\"a\"} 6");
    s_expect (text, "bctx_bridge_state{context=\"acc\",peer=\"a\",state=\"catching up\"} 1");
    s_expect (text, "bctx_bridge_state{context=\"acc\",peer=\"a\",state=\"live\"} 0");
    s_expect (text, "bctx_peer_unanswered_commands_total{peer=\"a\"} 1");
    free (text);
}

static void
test_not_stats (void **state)
{
    (void) state;
    assert_null (bctx_metrics_render (NULL));
    assert_null (bctx_metrics_render ("not json"));
    assert_null (bctx_metrics_render ("{\"ok\":false,\"error\":{\"code\":\"internal\"}}"));
    /* A stats reply with nothing in it: only the families. */
    char *text = bctx_metrics_render ("{\"ok\":true}");
    assert_non_null (text);
    s_expect (text, "# TYPE bctx_commands_total counter");
    assert_null (strstr (text, "bctx_commands_total{"));
    free (text);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_types),
        cmocka_unit_test (test_values),
        cmocka_unit_test (test_not_stats),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
