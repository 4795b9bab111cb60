/*
 * runs - a context process's projections, reactors and what they read,
 * from its stats.
 */

#include "runs.h"

#include <stdio.h>

/* The names (keys) of object `o` as an array.  Return: new. */
static json_t *
s_keys (const json_t *o)
{
    json_t *names = json_array ();
    const char *key;
    json_t *v;
    json_object_foreach ((json_t *) o, key, v)
        json_array_append_new (names, json_string (key));
    return names;
}

/* Adds to consumes what each runner of `runners` (stats' projections or
 * reactors) reads: the sources of its checkpoints. */
static void
s_consumed (json_t *consumes, const char *kind, const json_t *runners)
{
    const char *name;
    json_t *r;
    json_object_foreach ((json_t *) runners, name, r) {
        char who[160];
        snprintf (who, sizeof who, "%s %s", kind, name);
        json_object_set_new (consumes, who, s_keys (json_object_get (r, "checkpoints")));
    }
}

int
bctx_runs_learn (bctx_child_t *c, const json_t *stats)
{
    json_t *projections = json_object_get (stats, "projections");
    json_t *reactors = json_object_get (stats, "reactors");
    if (!json_is_object (projections) || !json_is_object (reactors))
        return -1;
    json_decref (c->projections);
    c->projections = s_keys (projections);
    json_decref (c->reactors);
    c->reactors = s_keys (reactors);
    json_object_clear (c->consumes);
    s_consumed (c->consumes, "projection", projections);
    s_consumed (c->consumes, "reactor", reactors);
    return 0;
}
