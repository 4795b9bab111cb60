/*
 * loader - opens a context's plugin and validates its descriptor.
 *
 * A plugin loads only from the folders it is allowed (host.plugin_dirs,
 * checked after realpath, before anything opens the file) and only up to
 * host.max_plugin_bytes.  The .so is copied to a unique temporary file
 * which is dlopen'ed (RTLD_NOW | RTLD_LOCAL) and unlinked at once, so a
 * later reload of the same path loads the new file rather than glibc's
 * cached handle; the copy stops at the load's deadline.  Every refusal
 * names the config path and the reason.
 */
#ifndef BCTX_LOADER_H
#define BCTX_LOADER_H

#include <stdatomic.h>
#include <stddef.h>
#include <jansson.h>

#include "bctx/plugin.h"
#include "errors.h"

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

/* What a load may touch: the folders a plugin may come from
 * (host.plugin_dirs), the largest file (host.max_plugin_bytes), and when
 * it gives up (a reload's deadline). */
typedef struct bctx_plugin_bounds {
    char *const *dirs;            /* borrowed: folders, each resolved by realpath */
    size_t n_dirs;                /* how many */
    int dirs_given;               /* 1: they are host.plugin_dirs; 0: the default,
                                     the folders of contexts[].plugin (for messages) */
    size_t max_bytes;             /* largest plugin file, in bytes; 0: no limit */
    double deadline;              /* CLOCK_MONOTONIC seconds after which copying
                                     and checking the file give up; 0: never */
} bctx_plugin_bounds_t;

/* Why a load failed, for the caller to pick its reply's code: BCTX_ELOAD
 * (missing, not a plugin, init failed, ...), BCTX_ELOADFORBIDDEN (outside
 * the bounds' folders), BCTX_ELOADTOOBIG (over the bounds' max_bytes),
 * BCTX_ELOADTIMEDOUT (the bounds' deadline passed); errors.h. */

/*
 * Resolves `path` with realpath (a relative path against the working
 * directory, as everywhere in the host) and checks that the file it names
 * lies under one of bounds->dirs, comparing whole path components (/a/b
 * holds /a/b/x.so, not /a/bc/x.so); symlinks are followed first, so none
 * leads out.  Nothing is opened.  `where` starts messages.  Return 0 with
 * the resolved path in *resolved (new); BCTX_ELOAD when path does not
 * resolve (errno's text in err); BCTX_ELOADFORBIDDEN with err naming the
 * resolved path and the allowed folders.
 */
int bctx_plugin_dirs_check (const bctx_plugin_bounds_t *bounds, const char *path,
                            const char *where, char **resolved, char *err, size_t errlen);

/*
 * Loads the plugin at `path` for the context `name` and calls its init with
 * `settings` (all borrowed).  `where` names the config path in messages
 * (e.g. "contexts[0].plugin").  bounds (borrowed): where it may come from,
 * how big it may be, and when to give up; the host always passes them,
 * NULL (no bounds) is for tests.  Return: new plugin, or NULL with the
 * reason in err and, if failure is set, a BCTX_ELOAD* in *failure.
 * Checks, in order: the path resolves to a file under bounds->dirs (before
 * anything opens it), that file (opened by its resolved path) is a regular
 * file of at most bounds->max_bytes, its copy is made before the deadline
 * and is a whole shared object, the entry symbol exists, the magic block
 * matches exactly, the descriptor is complete, its name equals `name`, and
 * init succeeds.
 */
bctx_plugin_t *bctx_plugin_load (const char *name, const char *path,
                                 const json_t *settings,
                                 const bctx_plugin_bounds_t *bounds, const char *where,
                                 int *failure, char *err, size_t errlen);

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
