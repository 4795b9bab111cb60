/*
 * hold - the contexts whose commands wait at the relay, and those
 * commands, for a handover.
 */

#include "hold.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int
bctx_hold_has (const bctx_hold_t *self, const char *name)
{
    for (size_t i = 0; i < self->n_names; i++)
        if (strcmp (self->names[i], name) == 0)
            return 1;
    return 0;
}

void
bctx_hold_start (bctx_hold_t *self, const char *name)
{
    if (bctx_hold_has (self, name))
        return;
    self->names = bctx_realloc (self->names, (self->n_names + 1) * sizeof *self->names);
    self->names[self->n_names++] = strdup (name);
}

void
bctx_hold_add (bctx_hold_t *self, const char *name, const bctx_request_t *req,
               const char *what)
{
    self->held = bctx_realloc (self->held, (self->n_held + 1) * sizeof *self->held);
    bctx_held_t *h = &self->held[self->n_held++];
    *h = (bctx_held_t) { .name = strdup (name), .text = strndup (req->text, req->text_len),
                         .len = req->text_len, .env_len = req->envelope_len,
                         .delimiter = req->delimiter, .admitted = bctx_now () };
    memcpy (h->env, req->envelope, req->envelope_len);
    snprintf (h->what, sizeof h->what, "%s", what);
}

bctx_held_t *
bctx_hold_take (bctx_hold_t *self, const char *name, size_t *n)
{
    for (size_t i = 0; name && i < self->n_names; i++)
        if (strcmp (self->names[i], name) == 0) {
            free (self->names[i]);
            self->names[i] = self->names[--self->n_names];
            break;
        }
    bctx_held_t *taken = NULL;
    size_t kept = 0;
    *n = 0;
    for (size_t i = 0; i < self->n_held; i++) {
        bctx_held_t *h = &self->held[i];
        if (name && strcmp (h->name, name) != 0) {
            self->held[kept++] = *h;
            continue;
        }
        taken = bctx_realloc (taken, (*n + 1) * sizeof *taken);
        taken[(*n)++] = *h;
    }
    self->n_held = kept;
    return taken;
}

void
bctx_held_free (bctx_held_t *held, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free (held[i].name);
        free (held[i].text);
    }
    free (held);
}

void
bctx_hold_clear (bctx_hold_t *self)
{
    bctx_held_free (self->held, self->n_held);
    for (size_t i = 0; i < self->n_names; i++)
        free (self->names[i]);
    free (self->names);
    *self = (bctx_hold_t) { 0 };
}
