/*
 * reconfig - SIGHUP.  The new config is checked whole (its host section,
 * its plugin folders, who consumes a context it removes, the added
 * contexts loaded and their read side), and only then applied.
 */

#include "reconfig.h"
#include "commands.h"
#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Are two optional strings the same? */
static int
s_same (const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp (a, b) == 0);
}

/* Are the CURVE keys of clients and their roles the same in both? */
static int
s_same_keys (const bctx_config_t *a, const bctx_config_t *b)
{
    if (a->n_clients != b->n_clients)
        return 0;
    for (size_t i = 0; i < a->n_clients; i++)
        if (strcmp (a->clients[i], b->clients[i]) != 0
            || a->client_roles[i] != b->client_roles[i])
            return 0;
    return 1;
}

/* Are host.plugin_dirs the same in both (absent in both counts: their
 * defaults follow contexts[].plugin)? */
static int
s_same_plugin_dirs (const bctx_config_t *a, const bctx_config_t *b)
{
    if (a->plugin_dirs_given != b->plugin_dirs_given)
        return 0;
    if (!a->plugin_dirs_given)
        return 1;
    if (a->n_plugin_dirs != b->n_plugin_dirs)
        return 0;
    for (size_t i = 0; i < a->n_plugin_dirs; i++)
        if (strcmp (a->plugin_dirs[i], b->plugin_dirs[i]) != 0)
            return 0;
    return 1;
}

/* What SIGHUP cannot apply in next's host section and peers, or NULL. */
static const char *
s_check_host (const bctx_config_t *cur, const bctx_config_t *next)
{
    if (!s_same (cur->name, next->name) || !s_same (cur->api, next->api)
        || !s_same (cur->publish, next->publish) || !s_same (cur->data, next->data)
        || cur->max_message != next->max_message || cur->max_batch != next->max_batch
        || cur->max_events_per_command != next->max_events_per_command
        || cur->reload_timeout_ms != next->reload_timeout_ms
        || cur->forward_timeout_ms != next->forward_timeout_ms
        || cur->allow_remote != next->allow_remote
        || !s_same (cur->curve_public, next->curve_public)
        || !s_same (cur->curve_secret, next->curve_secret)
        || !s_same_keys (cur, next)
        || cur->max_plugin_bytes != next->max_plugin_bytes
        || cur->handler_timeout_ms != next->handler_timeout_ms
        || cur->stop_timeout_ms != next->stop_timeout_ms
        || !s_same_plugin_dirs (cur, next))
        return "the host section changed: restart the host to apply it";
    /* A context process's own pseudo-peer, and its siblings, are not peers. */
    size_t own = cur->only ? 1 : 0;
    size_t remotes = 0;
    for (size_t r = 0; r < cur->n_remotes; r++)
        remotes += !cur->remotes[r].sibling;
    for (size_t r = 0; r < next->n_remotes; r++)
        remotes += !next->remotes[r].sibling;
    if (cur->n_peers > own || next->n_peers > own || remotes)
        return "this host has peers: SIGHUP does not apply configs with peers yet; restart it";
    return NULL;
}

/* Does a runner that stays consume a context that goes? */
static const char *
s_consumer_of (bctx_registry_t *reg, const bctx_config_t *next, const char *gone)
{
    static char who[200];
    for (size_t i = 0; i < reg->n_contexts; i++) {
        if (bctx_registry_index (next, reg->config->contexts[i].name) < 0)
            continue;
        bctx_plugin_t *p = bctx_worker_plugin (reg->contexts[i].worker);
        const char *hit = bctx_registry_consumer (p, gone, who, sizeof who);
        bctx_plugin_unref (&p);
        if (hit)
            return hit;
    }
    return NULL;
}

/* Checks next's plugins against its plugin folders, and that no runner
 * that stays consumes a context next removes.  Return why not (in whybuf
 * or static), or NULL. */
static const char *
s_check_contexts (bctx_registry_t *reg, const bctx_config_t *next, char *whybuf, size_t size)
{
    const char *why = NULL;
    /* Every plugin the new config names must lie in its plugin folders. */
    for (size_t j = 0; j < next->n_contexts && !why; j++) {
        bctx_plugin_bounds_t bounds = bctx_reload_bounds (next, 0);
        char where[48], *resolved = NULL;
        snprintf (where, sizeof where, "contexts[%zu].plugin", next->contexts[j].index);
        if (bctx_plugin_dirs_check (&bounds, next->contexts[j].plugin, where, &resolved,
                                    whybuf, size) == BCTX_ELOADFORBIDDEN)
            why = whybuf;
        free (resolved);
    }
    const bctx_config_t *cur = reg->config;
    for (size_t i = 0; i < cur->n_contexts && !why; i++) {
        if (bctx_registry_index (next, cur->contexts[i].name) >= 0)
            continue;
        const char *user = s_consumer_of (reg, next, cur->contexts[i].name);
        if (user) {
            snprintf (whybuf, size, "%s consumes context %s, which the new "
                      "config removes", user, cur->contexts[i].name);
            why = whybuf;
        }
    }
    return why;
}

/* Checks the read side of added context j (added[j]) against the
 * contexts of the new config.  Return 0, or -1 with the reason. */
static int
s_check_added (bctx_registry_t *reg, const bctx_config_t *next, bctx_local_t *added,
               size_t j, char *err, size_t errlen)
{
    bctx_source_t *all = calloc (next->n_contexts, sizeof *all);
    for (size_t k = 0; k < next->n_contexts; k++) {
        int i = bctx_registry_index (reg->config, next->contexts[k].name);
        bctx_worker_t *w = i >= 0 ? reg->contexts[i].worker : added[k].worker;
        all[k] = (bctx_source_t) {
            .name = bctx_worker_name (w), .store_path = bctx_worker_store_path (w),
            .head = &bctx_worker_stats (w)->position, .endpoint = bctx_worker_endpoint (w),
        };
    }
    bctx_source_t *saved = reg->sources;
    size_t saved_n = reg->n_contexts, saved_sources = reg->n_sources;
    reg->sources = all;
    reg->n_contexts = next->n_contexts;
    reg->n_sources = next->n_contexts;
    bctx_plugin_t *p = bctx_worker_plugin (added[j].worker);
    int rc = bctx_registry_check_read_side (reg, p, err, errlen);
    bctx_plugin_unref (&p);
    reg->sources = saved;
    reg->n_contexts = saved_n;
    reg->n_sources = saved_sources;
    free (all);
    return rc;
}

/* Loads the contexts next adds into added (one slot per next context)
 * and checks their read side, before anything changes.  Return 0, or -1
 * with the reason (added then holds what to close). */
static int
s_open_added (bctx_registry_t *reg, bctx_config_t *next, bctx_local_t *added,
              char *err, size_t errlen)
{
    for (size_t j = 0; j < next->n_contexts; j++)
        if (bctx_registry_index (reg->config, next->contexts[j].name) < 0
            && bctx_local_open (reg->zctx, next, j, &added[j], err, errlen) < 0)
            return -1;
    /* The added contexts' projections and reactors must be runnable too. */
    for (size_t j = 0; j < next->n_contexts; j++)
        if (added[j].worker && s_check_added (reg, next, added, j, err, errlen) != 0)
            return -1;
    return 0;
}

/* Swaps in next's contexts: the kept ones, the added ones (started), and
 * the removed ones drained and closed. */
static void
s_swap_contexts (bctx_registry_t *reg, const bctx_config_t *next, bctx_local_t *added)
{
    const bctx_config_t *cur = reg->config;
    bctx_local_t *contexts = calloc (next->n_contexts ? next->n_contexts : 1,
                                       sizeof *contexts);
    for (size_t i = 0; i < cur->n_contexts; i++) {
        int j = bctx_registry_index (next, cur->contexts[i].name);
        if (j >= 0) {
            contexts[j] = reg->contexts[i];
            continue;
        }
        const char *gone = cur->contexts[i].name;
        bctx_registry_drop_projections (reg, gone);
        bctx_local_close (&reg->contexts[i]);
        bctx_log (BCTX_LOG_INFO, "SIGHUP: context %s drained and unloaded", gone);
    }
    for (size_t j = 0; j < next->n_contexts; j++)
        if (added[j].worker) {
            contexts[j] = added[j];
            if (bctx_worker_start (contexts[j].worker, BCTX_COMMANDS_REPLIES) != 0)
                bctx_log (BCTX_LOG_ERROR, "SIGHUP: context %s: cannot start its worker; "
                          "its commands will not be answered", next->contexts[j].name);
            else
                bctx_log (BCTX_LOG_INFO, "SIGHUP: context %s added", next->contexts[j].name);
        }
    free (reg->contexts);
    reg->contexts = contexts;
    reg->n_contexts = next->n_contexts;
}

/* Applies next (stolen), checked already. */
static void
s_apply (bctx_registry_t *reg, bctx_config_t *next, bctx_local_t *added)
{
    char err[1024];
    /* Reactors restart from their checkpoints, so that each knows every
     * context it may send to. */
    bctx_registry_end_reactors (reg);
    s_swap_contexts (reg, next, added);
    bctx_config_t *old = reg->config;
    reg->config = next;
    bctx_registry_build_sources (reg);
    for (size_t i = 0; i < reg->n_contexts; i++) {
        bctx_plugin_t *p = bctx_worker_plugin (reg->contexts[i].worker);
        if (bctx_registry_check_read_side (reg, p, err, sizeof err) != 0
            || bctx_registry_add_runners (reg, p, 1, err, sizeof err) != 0)
            bctx_log (BCTX_LOG_ERROR, "SIGHUP: context %s: %s", p->name, err);
        bctx_plugin_unref (&p);
    }
    bctx_config_destroy (&old);
    bctx_log (BCTX_LOG_INFO, "SIGHUP: config applied: %zu context(s), %zu projection(s), "
              "%zu reactor(s)", reg->n_contexts, reg->n_projections, reg->n_reactors);
}

/* The config file again, as this process sees it: a context process's
 * own view of it, with the same links as now.  Return: new, or NULL
 * with the reason in err. */
static bctx_config_t *
s_load (const bctx_config_t *cur, char *err, size_t errlen)
{
    bctx_config_t *next = bctx_config_load (cur->path, err, errlen);
    if (!next || !cur->only)
        return next;
    /* Its own version and settings stay: a change to them is a handover
     * to a new process, which the supervisor starts. */
    if (bctx_config_for_context (next, cur->only, cur->contexts[0].plugin,
                                 cur->peers[cur->n_peers - 1].api,
                                 cur->api, cur->bus_in, cur->bus_out) < 0) {
        snprintf (err, errlen, "%s no longer has context %s", cur->path, cur->only);
        bctx_config_destroy (&next);
    }
    return next;
}

/* A runner of a context process that stays which reads a context that
 * next removes, as its process last reported: "projection P consumes
 * context C, ..." into whybuf.  Return whybuf, or NULL. */
static const char *
s_consumed_gone (bctx_supervise_t *supervise, const bctx_config_t *cur,
                 const bctx_config_t *next, char *whybuf, size_t size)
{
    size_t n;
    bctx_child_t **children = bctx_supervise_children (supervise, &n);
    for (size_t i = 0; i < n; i++) {
        if (bctx_registry_index (next, children[i]->name) < 0)
            continue;
        const char *who;
        json_t *sources;
        json_object_foreach (children[i]->consumes, who, sources) {
            size_t k;
            json_t *v;
            json_array_foreach (sources, k, v) {
                const char *gone = json_string_value (v);
                if (bctx_registry_index (cur, gone) >= 0 && bctx_registry_index (next, gone) < 0) {
                    snprintf (whybuf, size, "%s consumes context %s, which the new config "
                              "removes", who, gone);
                    return whybuf;
                }
            }
        }
    }
    return NULL;
}

/* The contexts of next whose plugin or settings differ from cur's, by
 * index in next, as 1s in changed (next->n_contexts entries). */
static void
s_changed (const bctx_config_t *cur, const bctx_config_t *next, char *changed)
{
    for (size_t j = 0; j < next->n_contexts; j++) {
        int i = bctx_registry_index (cur, next->contexts[j].name);
        changed[j] = i >= 0
                     && (strcmp (cur->contexts[i].plugin, next->contexts[j].plugin) != 0
                         || !json_equal (cur->contexts[i].settings,
                                         next->contexts[j].settings));
    }
}

int
bctx_reconfig_supervisor (bctx_registry_t *reg, bctx_supervise_t *supervise,
                          bctx_reload_t *reload, bctx_watch_t *watch)
{
    char err[1024], whybuf[1200];
    bctx_config_t *next = s_load (reg->config, err, sizeof err);
    const char *why = next ? s_check_host (reg->config, next) : err;
    if (!why)
        why = s_consumed_gone (supervise, reg->config, next, whybuf, sizeof whybuf);
    /* Every plugin the new config names must lie in its plugin folders
     * (the context processes check the rest). */
    for (size_t j = 0; next && !why && j < next->n_contexts; j++) {
        bctx_plugin_bounds_t bounds = bctx_reload_bounds (next, 0);
        char where[48], *resolved = NULL;
        snprintf (where, sizeof where, "contexts[%zu].plugin", next->contexts[j].index);
        if (bctx_plugin_dirs_check (&bounds, next->contexts[j].plugin, where, &resolved,
                                    whybuf, sizeof whybuf) == BCTX_ELOADFORBIDDEN)
            why = whybuf;
        free (resolved);
    }
    if (why) {
        bctx_log (BCTX_LOG_ERROR, "SIGHUP: the new config is refused, nothing changed: %s", why);
        bctx_config_destroy (&next);
        return -1;
    }
    /* The handles follow the new config; the ones that stay keep their
     * reader, the removed ones lose their views. */
    bctx_local_t *contexts = calloc (next->n_contexts ? next->n_contexts : 1, sizeof *contexts);
    for (size_t i = 0; i < reg->n_contexts; i++) {
        int j = bctx_registry_index (next, reg->contexts[i].name);
        if (j >= 0) {
            contexts[j] = reg->contexts[i];
            continue;
        }
        json_t *none = json_array ();
        bctx_registry_set_views (reg, reg->contexts[i].name, none);
        json_decref (none);
        bctx_local_close (&reg->contexts[i]);
    }
    for (size_t j = 0; j < next->n_contexts; j++)
        if (!contexts[j].name)
            contexts[j].name = strdup (next->contexts[j].name);
    free (reg->contexts);
    reg->contexts = contexts;
    reg->n_contexts = next->n_contexts;
    char changed[next->n_contexts + 1];
    s_changed (reg->config, next, changed);
    bctx_config_destroy (&reg->config);
    reg->config = next;
    bctx_supervise_reconfigure (supervise);
    for (size_t j = 0; j < next->n_contexts; j++) {
        if (!changed[j])
            continue;
        char *reply = bctx_reload_start (reload, j, NULL, NULL, 0, 0, NULL);
        free (reply);          /* logged */
    }
    if (bctx_watch_renew (watch, err, sizeof err) != 0)
        bctx_log (BCTX_LOG_ERROR, "SIGHUP: %s", err);
    return 0;
}

void
bctx_reconfig_apply (bctx_registry_t *reg)
{
    char err[1024], whybuf[1200];
    bctx_config_t *next = s_load (reg->config, err, sizeof err);
    const char *why = NULL;
    if (!next)
        why = err;
    else
        why = s_check_host (reg->config, next);
    if (!why)
        why = s_check_contexts (reg, next, whybuf, sizeof whybuf);
    bctx_local_t *added = calloc (next ? next->n_contexts + 1 : 1, sizeof *added);
    if (!why && s_open_added (reg, next, added, err, sizeof err) != 0)
        why = err;
    if (why) {
        for (size_t j = 0; next && j < next->n_contexts; j++)
            bctx_local_close (&added[j]);
        free (added);
        bctx_config_destroy (&next);
        bctx_log (BCTX_LOG_ERROR, "SIGHUP: the new config is refused, nothing changed: %s", why);
        return;
    }
    int j = next ? bctx_registry_index (next, reg->config->only) : -1;
    if (j >= 0) {
        /* Its settings stay too (see s_load). */
        json_decref (next->contexts[j].settings);
        next->contexts[j].settings = json_incref (reg->config->contexts[0].settings);
    }
    s_apply (reg, next, added);
    free (added);
}
