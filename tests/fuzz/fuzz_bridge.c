/*
 * fuzz_bridge - libFuzzer target for how a bridge reads what a peer sends:
 * bctx_bridge_live_parse on the input as one bus frame, and
 * bctx_bridge_event_read on each event it yields, on each event of the
 * input read as an "events" page reply ({"ok": true, "events": [...]}), and
 * on each element of the input read as an array.  Whatever the bridge
 * would store must be a well-formed event; whatever it would place (as a
 * duplicate or a gap) must have a position and an aggregate.
 */
#include "bridge.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Reads one event and checks what the bridge is promised about it. */
static void
s_read (json_t *ev)
{
    bctx_bridge_event_t e;
    char why[160] = "";
    int rc = bctx_bridge_event_read (ev, &e, why, sizeof why);
    if (rc != 0 && !why[0])
        abort ();
    if (rc == BCTX_BRIDGE_UNPLACED)
        return;
    if (rc != 0 && rc != BCTX_BRIDGE_MALFORMED) {
        fprintf (stderr, "fuzz_bridge: unknown code %d\n", rc);
        abort ();
    }
    if (e.position < 1 || !e.aggregate) {
        fprintf (stderr, "fuzz_bridge: an event placed without a position or aggregate\n");
        abort ();
    }
    if (rc == 0 && (!*e.aggregate || strlen (e.aggregate) > 256 || !e.type || !*e.type
                    || e.version < 1 || !json_is_object (e.data)
                    || !json_is_object (e.metadata))) {
        fprintf (stderr, "fuzz_bridge: a malformed event taken as valid\n");
        abort ();
    }
    if (rc == 0) {
        /* The bridge stores these texts. */
        char *d = json_dumps (e.data, JSON_COMPACT), *m = json_dumps (e.metadata, JSON_COMPACT);
        if (!d || !m)
            abort ();
        free (d);
        free (m);
    }
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    char why[160];
    json_t *ev = bctx_bridge_live_parse (data, size, why, sizeof why);
    if (ev) {
        if (!json_is_integer (json_object_get (ev, "position")))
            abort ();
        s_read (ev);
        json_decref (ev);
    }
    json_t *page = json_loadb ((const char *) data, size, JSON_DECODE_ANY, NULL);
    json_t *events = json_is_array (page) ? page : json_object_get (page, "events");
    size_t i;
    json_t *one;
    json_array_foreach (events, i, one)
        s_read (one);
    json_decref (page);
    return 0;
}
