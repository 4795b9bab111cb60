/*
 * watch - the plugin files of the contexts configured with "watch": true,
 * followed with inotify on their folders; a file quiet for 300 ms after a
 * change is reloaded.
 */
#ifndef BCTX_WATCH_H
#define BCTX_WATCH_H

#include <stddef.h>

#include "loop.h"
#include "registry.h"
#include "reload.h"

typedef struct bctx_watch bctx_watch_t;

/* Watches the plugin files of registry's config (registry, reload
 * borrowed: reloads start there).  Return: new, or NULL with the reason
 * in err. */
bctx_watch_t *bctx_watch_new (bctx_registry_t *registry, bctx_reload_t *reload,
                              char *err, size_t errlen);

/* Registers the inotify descriptor (now and after each renew) and the
 * debounce tick in loop (borrowed). */
void bctx_watch_attach (bctx_watch_t *self, bctx_loop_t *loop);

/* Follows the registry's config after it changed: drops every watch and
 * watches the files the new config names.  Return 0, or -1 with the
 * reason (then nothing is watched). */
int bctx_watch_renew (bctx_watch_t *self, char *err, size_t errlen);

/* Starts the reloads whose files have been quiet long enough.  Return the
 * seconds until the next one is due, or -1.
 * self is a bctx_watch_t (borrowed): this is its timer, a bctx_tick_fn. */
double bctx_watch_tick (void *self);

/* Stops watching and frees; sets *self_p to NULL.  Idempotent. */
void bctx_watch_destroy (bctx_watch_t **self_p);

#endif
