/*
 * figures - the supervisor's own figures of each context, in a small
 * table by name (a host has a handful of contexts: a linear search).
 */

#include "figures.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

/* One context's figures. */
typedef struct {
    char *name;                   /* the context */
    bctx_histogram_t commands;    /* admission to reply, in seconds */
    bctx_histogram_t pause;       /* reloads: commands held, in seconds */
    int64_t reloads[BCTX_RELOAD_OUTCOMES]; /* reloads by outcome */
} s_context_t;

struct bctx_figures {
    s_context_t **contexts;       /* each allocated once: its histograms never move */
    size_t n_contexts;            /* how many */
};

/* Frees a context's figures (an s_context_t *). */
static void
s_context_free (void *arg)
{
    s_context_t *c = arg;
    free (c->name);
    free (c);
}

bctx_figures_t *
bctx_figures_new (void)
{
    return bctx_calloc (1, sizeof (bctx_figures_t));
}

/* Context name's figures, made on first use. */
static s_context_t *
s_find (bctx_figures_t *self, const char *name)
{
    for (size_t i = 0; i < self->n_contexts; i++)
        if (strcmp (self->contexts[i]->name, name) == 0)
            return self->contexts[i];
    self->contexts = bctx_realloc (self->contexts,
                                   (self->n_contexts + 1) * sizeof *self->contexts);
    s_context_t *c = bctx_calloc (1, sizeof *c);
    c->name = strdup (name);
    self->contexts[self->n_contexts++] = c;
    return c;
}

bctx_histogram_t *
bctx_figures_commands (bctx_figures_t *self, const char *name)
{
    return &s_find (self, name)->commands;
}

void
bctx_figures_reload (bctx_figures_t *self, const char *name, int outcome, double pause)
{
    s_context_t *c = s_find (self, name);
    if (outcome >= 0 && outcome < BCTX_RELOAD_OUTCOMES)
        c->reloads[outcome]++;
    if (pause >= 0)
        bctx_histogram_observe (&c->pause, pause);
}

void
bctx_figures_report (bctx_figures_t *self, const char *name, json_t *c)
{
    s_context_t *f = s_find (self, name);
    json_object_set_new (c, "command_seconds", bctx_histogram_json (&f->commands));
    json_object_set_new (c, "reloads", json_pack (
        "{s:I, s:I, s:I}", "ok", (json_int_t) f->reloads[BCTX_RELOAD_OK],
        "failed", (json_int_t) f->reloads[BCTX_RELOAD_FAILED],
        "rolled_back", (json_int_t) f->reloads[BCTX_RELOAD_ROLLED_BACK]));
    json_object_set_new (c, "reload_pause_seconds", bctx_histogram_json (&f->pause));
}

void
bctx_figures_destroy (bctx_figures_t **self_p)
{
    BCTX_SELF_OR_RETURN (bctx_figures_t, self_p);
    bctx_items_free (self->contexts, self->n_contexts, s_context_free);
    free (self);
    *self_p = NULL;
}
