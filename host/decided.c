/*
 * decided - a decide's events checked, made into rows and bus texts.
 */

#include "decided.h"
#include "protocol.h"
#include "worker.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Is type 1 to 128 letters, digits or _? */
static int
s_valid_type (const char *type)
{
    size_t n = 0;
    for (const char *p = type; *p; p++, n++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')
              || (*p >= '0' && *p <= '9') || *p == '_'))
            return 0;
    return n > 0 && n <= 128;
}

void
bctx_decided_texts_free (char **texts, size_t n)
{
    for (size_t i = 0; texts && i < n; i++) {
        free (texts[i]);
        texts[i] = NULL;
    }
}

int
bctx_decided_check (const json_t *events, size_t max_events, size_t max_data,
                    char **texts, char *why, size_t whylen)
{
    if (!json_is_array (events)) {
        snprintf (why, whylen, "a value that is not an array of events");
        return BCTX_DECIDED_MALFORMED;
    }
    size_t n = json_array_size (events);
    if (n > max_events) {
        snprintf (why, whylen, "%zu events, over the limit of %zu "
                  "(host.max_events_per_command)", n, max_events);
        return BCTX_DECIDED_TOO_LARGE;
    }
    for (size_t i = 0; i < n; i++) {
        json_t *ev = json_array_get (events, i);
        json_t *jtype = json_object_get (ev, "type");
        const char *type = json_string_value (jtype);
        json_t *data = json_object_get (ev, "data");
        int rc = BCTX_DECIDED_MALFORMED;
        char *text = NULL;
        if (!json_is_object (ev))
            snprintf (why, whylen, "event %zu, which is not an object", i);
        else if (!type || strlen (type) != json_string_length (jtype) || !s_valid_type (type))
            snprintf (why, whylen, "event %zu without a valid type "
                      "(1 to 128 letters, digits or _)", i);
        else if (!json_is_object (data))
            snprintf (why, whylen, "event %zu (%s) whose data is not an object", i, type);
        else if (!(text = json_dumps (data, JSON_COMPACT)))
            snprintf (why, whylen, "event %zu (%s) whose data cannot be written as JSON",
                      i, type);
        else if (strlen (text) > max_data) {
            snprintf (why, whylen, "event %zu (%s) with data of %zu bytes, over the "
                      "limit of %zu (host.max_message)", i, type, strlen (text), max_data);
            rc = BCTX_DECIDED_TOO_LARGE;
        } else {
            rc = 0;
        }
        if (rc == 0 && texts) {
            texts[i] = text;
            continue;
        }
        free (text);
        if (rc != 0) {
            bctx_decided_texts_free (texts, i);
            return rc;
        }
    }
    return 0;
}

char *
bctx_decided_metadata (json_t *req, const char *id, int origin, const char *version)
{
    const char *corr = json_string_value (json_object_get (req, "correlation_id"));
    const char *cause = json_string_value (json_object_get (req, "causation_id"));
    char when[40];
    bctx_time_iso (when, sizeof when);
    bctx_buf_t b = { 0 };
    bctx_buf_add_str (&b, "{\"command_id\":");
    bctx_buf_add_json_string (&b, id);
    bctx_buf_add_str (&b, ",\"correlation_id\":");
    bctx_buf_add_json_string (&b, corr ? corr : id);
    bctx_buf_add_str (&b, ",\"causation_id\":");
    bctx_buf_add_json_string (&b, cause ? cause : id);
    bctx_buf_add_str (&b, ",\"time\":\"");
    bctx_buf_add_str (&b, when);
    bctx_buf_add_str (&b, "\",\"context_version\":");
    bctx_buf_add_json_string (&b, version ? version : "");
    if (origin == BCTX_ORIGIN_REACTOR)
        bctx_buf_add_str (&b, ",\"origin\":\"reactor\"");
    bctx_buf_add_str (&b, "}");
    return b.text;
}

bctx_row_t *
bctx_decided_rows (const json_t *events, char **texts, size_t n, const char *aggregate,
                   const char *metadata, const char *key)
{
    bctx_row_t *rows = calloc (n, sizeof *rows);
    for (size_t i = 0; i < n; i++) {
        json_t *ev = json_array_get (events, i);
        rows[i] = (bctx_row_t) {
            .aggregate = aggregate,
            .type = json_string_value (json_object_get (ev, "type")),
            .data = texts[i],
            .metadata = metadata,
            .command = key,
        };
    }
    return rows;
}

char *
bctx_decided_event_text (const char *context, const bctx_row_t *e)
{
    bctx_buf_t b = { 0 };
    bctx_buf_add_event (&b, context, e);
    return b.text;
}
