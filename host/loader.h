/*
 * loader - opens a context's plugin and validates its descriptor.
 *
 * The .so is copied to a unique temporary file which is dlopen'ed
 * (RTLD_NOW | RTLD_LOCAL) and unlinked at once, so a later reload of the
 * same path loads the new file rather than glibc's cached handle.  Every
 * refusal names the config path and the reason.
 */
#ifndef BCTX_LOADER_H
#define BCTX_LOADER_H

#include <stdatomic.h>
#include <stddef.h>
#include <jansson.h>

#include "bctx/plugin.h"

typedef struct bctx_plugin {
    void *handle;                 /* from dlopen */
    const bctx_context_t *desc;   /* the plugin's descriptor (in handle) */
    bctx_host_t host;             /* host services handed to init */
    void *user;                   /* what init stored */
    char *name;                   /* the context's name (from config) */
    char *path;                   /* the path it was loaded from */
    size_t n_commands;            /* entries in desc->commands */
    int initialised;              /* init returned BCTX_OK */
    _Atomic int refs;             /* holders: the worker, each runner, a reload */
    _Atomic int *loaded;          /* if set, decremented when this is unloaded */
} bctx_plugin_t;

/*
 * Loads the plugin at `path` for the context `name` and calls its init with
 * `settings` (all borrowed).  `where` names the config path in messages
 * (e.g. "contexts[0].plugin").  Return: new plugin, or NULL with the reason
 * in err.  Checks, in order: the file exists and is a shared object, the
 * entry symbol exists, the magic block matches exactly, the descriptor is
 * complete, its name equals `name`, and init succeeds.
 */
bctx_plugin_t *bctx_plugin_load (const char *name, const char *path,
                                 const json_t *settings, const char *where,
                                 char *err, size_t errlen);

/* Finds a command by name.  Return: borrowed, or NULL. */
const bctx_command_t *bctx_plugin_command (const bctx_plugin_t *self,
                                           const char *command);

/* Calls fini, dlcloses and frees; sets *self_p to NULL.  Idempotent.
 * For a plugin shared between threads use bctx_plugin_unref instead. */
void bctx_plugin_destroy (bctx_plugin_t **self_p);

/* Takes one more reference (a new holder: the worker, a projection's or
 * reactor's runner).  A loaded plugin starts with one.  Return: self. */
bctx_plugin_t *bctx_plugin_ref (bctx_plugin_t *self);

/* Drops a reference and sets *self_p to NULL; the last one unloads the
 * plugin (fini, dlclose), in the calling thread: nothing runs in the old
 * code any more by then. */
void bctx_plugin_unref (bctx_plugin_t **self_p);

#endif
