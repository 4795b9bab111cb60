/*
 * fuzz_decided - libFuzzer target for bctx_decided_check, the host's check
 * of what a plugin's decide returned.  Each input is parsed as JSON (an
 * input that is not JSON is skipped) and checked with small limits, so
 * both "too large" refusals are reached.  An accepted array must hold only
 * what the host can store, and its texts must read back as the data.
 */
#include "worker.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_MAX_EVENTS  16
#define S_MAX_DATA    256

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    json_t *events = json_loadb ((const char *) data, size,
                                 JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
    if (!events)
        return 0;
    char *texts[S_MAX_EVENTS] = { 0 };
    char why[256] = "";
    size_t n = json_array_size (events);
    int rc = bctx_decided_check (events, S_MAX_EVENTS, S_MAX_DATA,
                                 n <= S_MAX_EVENTS ? texts : NULL, why, sizeof why);
    if (rc != 0 && (rc != BCTX_DECIDED_MALFORMED && rc != BCTX_DECIDED_TOO_LARGE)) {
        fprintf (stderr, "fuzz_decided: unknown code %d\n", rc);
        abort ();
    }
    if (rc != 0 && !why[0]) {
        fprintf (stderr, "fuzz_decided: a refusal without its reason\n");
        abort ();
    }
    for (size_t i = 0; i < S_MAX_EVENTS; i++) {
        if (rc != 0 && texts[i])
            abort ();
        if (rc == 0 && i < n) {
            /* What will be stored reads back as what was decided. */
            json_t *ev = json_array_get (events, i);
            json_t *back = texts[i] ? json_loads (texts[i], JSON_ALLOW_NUL, NULL) : NULL;
            if (!back || strlen (texts[i]) > S_MAX_DATA
                || !json_equal (back, json_object_get (ev, "data"))
                || !json_is_string (json_object_get (ev, "type"))) {
                fprintf (stderr, "fuzz_decided: event %zu accepted but not storable\n", i);
                abort ();
            }
            json_decref (back);
        }
        free (texts[i]);
    }
    json_decref (events);
    return 0;
}
