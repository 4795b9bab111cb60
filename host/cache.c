/*
 * cache - an aggregate's entry folded from its stream on first use; the
 * warm-up of a handover's standby and its catch-up at the take.
 */

#include "cache.h"

#include <stdio.h>
#include <string.h>

/* An aggregate's stream on its way through evolve. */
typedef struct {
    const bctx_plugin_t *plugin;  /* whose evolve folds */
    json_t *state;                /* the state so far (owned) */
    json_t *ids;                  /* command ids seen (owned) */
    int64_t version;              /* the last version folded */
    int failed;                   /* evolve or JSON failed */
} s_fold_t;

/* Notes in ids that the event at `position` was decided by command `key`. */
static void
s_note (json_t *ids, const char *key, int64_t position)
{
    /* The first position is enough: a command's events are contiguous in
     * the stream, so a retry reads from there while the id matches. */
    if (!json_object_get (ids, key))
        json_object_set_new (ids, key, json_integer (position));
}

void
bctx_cache_note_command (json_t *entry, const char *key, int64_t position)
{
    s_note (json_array_get (entry, BCTX_CACHE_IDS), key, position);
}

/* Folds one event of a stream (arg: the s_fold_t). */
static int
s_fold_one (const bctx_row_t *e, void *arg)
{
    s_fold_t *f = arg;
    json_t *data = json_loads (e->data, 0, NULL);
    if (!data) {
        f->failed = 1;
        return 1;
    }
    const bctx_plugin_t *p = f->plugin;
    f->state = p->desc->evolve (p->user, f->state, e->type, data);
    json_decref (data);
    f->version = e->version;
    if (e->command)
        s_note (f->ids, e->command, e->position);
    if (!f->state) {
        f->failed = 1;
        return 1;
    }
    return 0;
}

/* Folds an aggregate's whole stream with `plugin` from `store`.  Return:
 * new cache entry [version, state, ids], or NULL (why filled). */
static json_t *
s_fold_entry (const bctx_plugin_t *plugin, bctx_store_t *store, const char *aggregate,
              char *why, size_t whylen)
{
    s_fold_t f = { .plugin = plugin, .ids = json_object () };
    int64_t n = bctx_store_read_aggregate (store, aggregate, s_fold_one, &f);
    if (n < 0 || f.failed) {
        snprintf (why, whylen, "version %s cannot fold aggregate \"%s\": %s",
                  plugin->desc->version ? plugin->desc->version : "?", aggregate,
                  n < 0 ? bctx_store_error (store) : "evolve failed or stored data unreadable");
        json_decref (f.state);
        json_decref (f.ids);
        return NULL;
    }
    return json_pack ("[I, o, o]", (json_int_t) f.version,
                      f.state ? f.state : json_null (), f.ids);
}

json_t *
bctx_cache_entry (json_t *cache, const bctx_plugin_t *plugin, bctx_store_t *store,
                  const char *aggregate, char *why, size_t whylen)
{
    json_t *entry = json_object_get (cache, aggregate);
    if (entry)
        return entry;
    entry = s_fold_entry (plugin, store, aggregate, why, whylen);
    if (entry)
        json_object_set_new (cache, aggregate, entry);
    return entry;
}

/* Notes an aggregate of the log's recent events (arg: the set). */
static int
s_note_recent (const bctx_row_t *e, void *arg)
{
    json_object_set_new ((json_t *) arg, e->aggregate, json_true ());
    return 0;
}

/* A catch-up's cache and its evolve. */
typedef struct {
    json_t *cache;                /* the entries to bring up to date */
    const bctx_plugin_t *plugin;  /* whose evolve folds */
} s_catch_up_t;

/* Folds one event appended after warming into the cache entry it belongs
 * to; drops an entry it cannot bring exactly up to date. */
static int
s_catch_up_one (const bctx_row_t *e, void *arg)
{
    s_catch_up_t *c = arg;
    json_t *entry = json_object_get (c->cache, e->aggregate);
    if (!entry)
        return 0;
    int64_t version = json_integer_value (json_array_get (entry, BCTX_CACHE_VERSION));
    if (e->version <= version)
        return 0;                  /* already folded while warming */
    json_t *data = e->version == version + 1 ? json_loads (e->data, 0, NULL) : NULL;
    json_t *state = json_array_get (entry, BCTX_CACHE_STATE);
    const bctx_plugin_t *p = c->plugin;
    json_t *next = data ? p->desc->evolve (p->user, json_is_null (state) ? NULL
                                                                      : json_incref (state),
                                           e->type, data) : NULL;
    json_decref (data);
    if (!next) {
        json_object_del (c->cache, e->aggregate);
        return 0;
    }
    json_array_set_new (entry, BCTX_CACHE_VERSION, json_integer (e->version));
    json_array_set_new (entry, BCTX_CACHE_STATE, next);
    if (e->command)
        bctx_cache_note_command (entry, e->command, e->position);
    return 0;
}

int64_t
bctx_cache_catch_up (json_t *cache, const bctx_plugin_t *plugin, bctx_store_t *store,
                     int64_t *at)
{
    s_catch_up_t c = { cache, plugin };
    int64_t head = bctx_store_head (store);
    if (head > *at && bctx_store_read (store, *at + 1, NULL, head - *at, s_catch_up_one, &c) < 0)
        json_object_clear (cache);
    if (head >= 0)
        *at = head;
    return head;
}

int
bctx_cache_warm (json_t *cache, const bctx_plugin_t *plugin, bctx_store_t *store,
                 int64_t *at, char *err, size_t errlen)
{
    /* The aggregates of the log's recent events: the likely hot ones. */
    *at = bctx_store_head (store);
    json_t *recent = json_object ();
    int64_t from = *at > 10000 ? *at - 9999 : 1;
    int64_t n = bctx_store_read (store, from, NULL, 10000, s_note_recent, recent);
    int failed = n < 0 || *at < 0;
    if (failed)
        snprintf (err, errlen, "cannot read the log: %s", bctx_store_error (store));
    const char *aggregate;
    json_t *flag;
    json_object_foreach (recent, aggregate, flag) {
        if (failed || json_object_size (cache) >= 4000)
            break;
        json_t *entry = s_fold_entry (plugin, store, aggregate, err, errlen);
        if (!entry)
            failed = 1;
        else
            json_object_set_new (cache, aggregate, entry);
    }
    json_decref (recent);
    /* Warming took a while: fold what the serving process appended
     * meanwhile, again while that is much, so that little is left for the
     * take, when commands wait. */
    for (int round = 0; round < 8 && !failed; round++) {
        int64_t before = *at;
        if (bctx_cache_catch_up (cache, plugin, store, at) - before < 64)
            break;
    }
    if (failed)
        json_object_clear (cache);
    return failed ? -1 : 0;
}
