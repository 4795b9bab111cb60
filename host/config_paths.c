/*
 * config_paths - the paths of a config: every relative path in it
 * (host.data, host.plugin_dirs, contexts[].plugin) resolves against the
 * config file's folder, so a config means the same from any working
 * directory (a service's, a shell's, SIGHUP's re-read), and the folders
 * plugins may load from (host.plugin_dirs or their default).  The rest of
 * the module is config.c (reading and checking) and config_context.c.
 */
#include "config.h"

#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

char *
bctx_config_folder (const char *path)
{
    char *real = realpath (path, NULL);
    if (real) {
        char *folder = strdup (dirname (real));
        free (real);
        return folder;
    }
    /* No such file (a config parsed from a text): its folder as named. */
    char *copy = strdup (path);
    char *folder = copy ? realpath (dirname (copy), NULL) : NULL;
    free (copy);
    if (!folder) {
        char cwd[PATH_MAX];
        folder = strdup (getcwd (cwd, sizeof cwd) ? cwd : ".");
    }
    return folder;
}

char *
bctx_config_resolve (const char *folder, const char *path)
{
    if (path[0] == '/')
        return strdup (path);
    /* Leading "./" and "../" are taken off lexically: folder is resolved
     * (no symlink in it), so its ".." is its parent. */
    size_t keep = strlen (folder);
    for (;;) {
        if (strncmp (path, "./", 2) == 0)
            path += 2;
        else if (strcmp (path, ".") == 0)
            path += 1;
        else if (strncmp (path, "../", 3) == 0 || strcmp (path, "..") == 0) {
            path += path[2] ? 3 : 2;
            while (keep > 1 && folder[keep - 1] != '/')
                keep--;
            if (keep > 1)
                keep--;
        } else
            break;
        while (*path == '/')
            path++;
    }
    char *out = NULL;
    if (asprintf (&out, "%.*s%s%s", (int) keep, folder,
                  *path && folder[keep - 1] != '/' ? "/" : "", path) < 0)
        return NULL;
    return out;
}

const char *
bctx_config_relative_note (const bctx_config_t *self, const char *path, char *buf,
                           size_t size)
{
    if (path[0] == '/' || !self->folder)
        return "";
    snprintf (buf, size, " (relative to the config file's folder %s)", self->folder);
    return buf;
}

/* Adds a resolved folder to self->plugin_dirs, unless it is there
 * already.  dir: stolen. */
static void
s_add_plugin_dir (bctx_config_t *self, char *dir)
{
    for (size_t i = 0; i < self->n_plugin_dirs; i++)
        if (strcmp (self->plugin_dirs[i], dir) == 0) {
            free (dir);
            return;
        }
    char **bigger = realloc (self->plugin_dirs,
                             (self->n_plugin_dirs + 1) * sizeof *self->plugin_dirs);
    if (!bigger) {
        free (dir);
        return;
    }
    self->plugin_dirs = bigger;
    self->plugin_dirs[self->n_plugin_dirs++] = dir;
}

int
bctx_config_plugin_dirs (bctx_config_t *self, json_t *dirs, char *err, size_t errlen)
{
    const char *file = self->path;
    if (!dirs)
        return 0;
    if (!json_is_array (dirs) || json_array_size (dirs) == 0) {
        snprintf (err, errlen, "%s: host.plugin_dirs: expected a non-empty array of folders",
                  file);
        return -1;
    }
    size_t i;
    json_t *d;
    json_array_foreach (dirs, i, d) {
        const char *text = json_string_value (d);
        char note[PATH_MAX + 64];
        if (!text || !*text) {
            snprintf (err, errlen, "%s: host.plugin_dirs[%zu]: expected a folder's path",
                      file, i);
            return -1;
        }
        char *path = bctx_config_resolve (self->folder, text);
        char *real = path ? realpath (path, NULL) : NULL;
        int e = errno;
        free (path);
        struct stat st;
        if (!real || stat (real, &st) < 0 || !S_ISDIR (st.st_mode)) {
            snprintf (err, errlen, "%s: host.plugin_dirs[%zu]: %s%s: %s", file, i, text,
                      bctx_config_relative_note (self, text, note, sizeof note),
                      real ? "not a folder" : strerror (e));
            free (real);
            return -1;
        }
        s_add_plugin_dir (self, real);
    }
    self->plugin_dirs_given = 1;
    return 0;
}

void
bctx_config_default_plugin_dirs (bctx_config_t *self)
{
    for (size_t i = 0; i < self->n_contexts; i++) {
        char *copy = strdup (self->contexts[i].plugin);
        char *dir = copy ? realpath (dirname (copy), NULL) : NULL;
        free (copy);
        if (dir)
            s_add_plugin_dir (self, dir);
        char *file = realpath (self->contexts[i].plugin, NULL);
        if (file) {
            char *real = strdup (dirname (file));
            if (real)
                s_add_plugin_dir (self, real);
        }
        free (file);
    }
}
