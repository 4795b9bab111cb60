/*
 * config_context - a config turned into the view of one context process
 * (bctx_config_for_context, config.h): its one context, the others as
 * siblings behind the supervisor, its links instead of the host's API and
 * bus.  The rest of the module, reading and checking the file, is
 * config.c.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

/* Replaces *field with a copy of value (may be NULL). */
static void
s_set (char **field, const char *value)
{
    free (*field);
    *field = value ? strdup (value) : NULL;
}

int
bctx_config_for_context (bctx_config_t *self, const char *name, const char *plugin,
                         const char *supervisor, const char *link,
                         const char *bus_in, const char *bus_out)
{
    long k = -1;
    for (size_t i = 0; i < self->n_contexts; i++)
        if (strcmp (self->contexts[i].name, name) == 0)
            k = (long) i;
    if (k < 0)
        return -1;
    /* The pseudo-peer every sibling's commands go to. */
    bctx_peer_config_t *peers = realloc (self->peers, (self->n_peers + 1) * sizeof *peers);
    if (!peers)
        return -1;
    self->peers = peers;
    bctx_peer_config_t *sup = &self->peers[self->n_peers];
    *sup = (bctx_peer_config_t) { strdup ("supervisor"), strdup (supervisor),
                                  strdup (bus_out), NULL };
    /* The other local contexts become siblings; the remotes array has
     * room for every entry of the file's contexts[]. */
    for (size_t i = 0; i < self->n_contexts; i++) {
        bctx_context_config_t *cc = &self->contexts[i];
        if ((long) i == k)
            continue;
        self->remotes[self->n_remotes++] = (bctx_remote_config_t) {
            .name = cc->name, .peer = self->n_peers, .index = cc->index, .sibling = 1 };
        cc->name = NULL;
        s_set (&cc->plugin, NULL);
        json_decref (cc->settings);
        cc->settings = NULL;
    }
    self->n_peers++;
    if (k > 0) {
        self->contexts[0] = self->contexts[k];
        memset (&self->contexts[k], 0, sizeof self->contexts[k]);
    }
    self->n_contexts = 1;
    if (plugin)
        s_set (&self->contexts[0].plugin, plugin);
    s_set (&self->only, name);
    s_set (&self->api, link);
    s_set (&self->publish, NULL);
    s_set (&self->bus_in, bus_in);
    s_set (&self->bus_out, bus_out);
    s_set (&self->command_link, link);
    char *mark = strstr (self->command_link, "/ctx-");
    if (mark)
        memcpy (mark, "/cmd-", 5);
    return 0;
}
