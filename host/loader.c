/*
 * loader - dlopen of context plugins, with the magic-block check and the
 * per-context host-services table.
 */

#include "loader.h"
#include "host_api.h"
#include "log.h"
#include "util.h"

#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Has the deadline (0: none) passed? */
static int
s_late (double deadline)
{
    return deadline > 0 && bctx_now () >= deadline;
}

/* Copies the open file `in` to a fresh file under $TMPDIR and returns its
 * name (new), or NULL with errno set: ETIMEDOUT when the deadline (0:
 * none) passed first.  *copied gets the bytes copied. */
static char *
s_copy_to_temp (int in, double deadline, long long *copied)
{
    *copied = 0;
    const char *dir = getenv ("TMPDIR");
    char *tmp = NULL;
    if (asprintf (&tmp, "%s/bctx-plugin-XXXXXX.so", dir && *dir ? dir : "/tmp") < 0)
        return NULL;
    int out = mkstemps (tmp, 3);
    if (out < 0) {
        int e = errno;
        free (tmp);
        errno = e;
        return NULL;
    }
    char buf[65536];
    ssize_t n;
    int ok = 1;
    while ((n = read (in, buf, sizeof buf)) != 0) {
        if (n < 0) {
            if (errno == EINTR)
                continue;
            ok = 0;
            break;
        }
        for (ssize_t off = 0; off < n;) {
            ssize_t w = write (out, buf + off, (size_t) (n - off));
            if (w < 0 && errno == EINTR)
                continue;
            if (w < 0) {
                ok = 0;
                break;
            }
            off += w;
        }
        if (!ok)
            break;
        *copied += n;
        if (s_late (deadline)) {
            errno = ETIMEDOUT;
            ok = 0;
            break;
        }
    }
    int e = errno;
    if (close (out) < 0 && ok) {
        e = errno;
        ok = 0;
    }
    if (!ok) {
        unlink (tmp);
        free (tmp);
        errno = e;
        return NULL;
    }
    return tmp;
}

/* Does the resolved path `file` lie under the resolved folder `dir`, by
 * whole path components? */
static int
s_under (const char *dir, const char *file)
{
    size_t len = strlen (dir);
    if (len == 0 || strncmp (file, dir, len) != 0)
        return 0;
    return dir[len - 1] == '/' || file[len] == '/';
}

/* The allowed folders as a message shows them: "host.plugin_dirs (A, B)"
 * or, for the default, "the folders of contexts[].plugin (A, B), the
 * default of host.plugin_dirs", into buf.  Return buf. */
static const char *
s_dirs_text (const bctx_plugin_bounds_t *bounds, char *buf, size_t size)
{
    size_t used = (size_t) snprintf (buf, size, "%s (",
                                     bounds->dirs_given ? "host.plugin_dirs"
                                                        : "the folders of contexts[].plugin");
    for (size_t i = 0; i < bounds->n_dirs && used < size; i++)
        used += (size_t) snprintf (buf + used, size - used, "%s%s", i ? ", " : "",
                                   bounds->dirs[i]);
    if (used < size)
        snprintf (buf + used, size - used, "%s)%s", bounds->n_dirs ? "" : "none",
                  bounds->dirs_given ? "" : ", the default of host.plugin_dirs");
    return buf;
}

int
bctx_plugin_dirs_check (const bctx_plugin_bounds_t *bounds, const char *path,
                        const char *where, char **resolved, char *err, size_t errlen)
{
    *resolved = NULL;
    char *real = realpath (path, NULL);
    if (!real) {
        snprintf (err, errlen, "%s: %s: %s", where, path, strerror (errno));
        return BCTX_ELOAD;
    }
    for (size_t i = 0; i < bounds->n_dirs; i++)
        if (s_under (bounds->dirs[i], real)) {
            *resolved = real;
            return 0;
        }
    char cwd[PATH_MAX] = "", dirs[2048];
    if (path[0] != '/' && !getcwd (cwd, sizeof cwd))
        snprintf (cwd, sizeof cwd, "?");
    snprintf (err, errlen, "%s: %s%s%s%s resolves to %s, outside %s: plugins load only "
              "from there; put it in one of those folders, or add its folder to "
              "host.plugin_dirs and restart the host", where, path,
              *cwd ? " (relative to the working directory " : "", cwd, *cwd ? ")" : "",
              real, s_dirs_text (bounds, dirs, sizeof dirs));
    free (real);
    return BCTX_ELOADFORBIDDEN;
}

/* Refuses a file that is not a whole 64-bit ELF shared object before
 * dlopen sees it: glibc maps loadable segments by their headers, and a file
 * cut short (a plugin still being written) would fault on first touch
 * instead of failing to load.  Gives up when the deadline (0: none) passes.
 * Return 0, or -1 with the reason in why. */
static int
s_check_elf (const char *path, double deadline, char *why, size_t whylen)
{
    int fd = open (path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat (fd, &st) < 0) {
        snprintf (why, whylen, "%s", strerror (errno));
        if (fd >= 0)
            close (fd);
        return -1;
    }
    Elf64_Ehdr eh;
    int rc = -1;
    uint64_t size = (uint64_t) st.st_size;
    if (pread (fd, &eh, sizeof eh, 0) != (ssize_t) sizeof eh
        || memcmp (eh.e_ident, ELFMAG, SELFMAG) != 0) {
        snprintf (why, whylen, "not an ELF file");
    } else if (eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_type != ET_DYN) {
        snprintf (why, whylen, "not a 64-bit ELF shared object");
    } else if (eh.e_phentsize != sizeof (Elf64_Phdr) || eh.e_phnum == 0
               || eh.e_phoff + (uint64_t) eh.e_phnum * eh.e_phentsize > size
               || eh.e_shoff + (uint64_t) eh.e_shnum * eh.e_shentsize > size) {
        snprintf (why, whylen, "file cut short (%llu bytes): its headers reach past the end",
                  (unsigned long long) size);
    } else {
        rc = 0;
        for (int i = 0; i < eh.e_phnum && rc == 0; i++) {
            Elf64_Phdr ph;
            if (i % 256 == 255 && s_late (deadline)) {
                snprintf (why, whylen, "the deadline passed while checking its headers");
                rc = -1;
                break;
            }
            if (pread (fd, &ph, sizeof ph, (off_t) (eh.e_phoff + (uint64_t) i * sizeof ph))
                != (ssize_t) sizeof ph) {
                snprintf (why, whylen, "cannot read program header %d", i);
                rc = -1;
            } else if ((ph.p_type == PT_LOAD || ph.p_type == PT_DYNAMIC)
                       && ph.p_offset + ph.p_filesz > size) {
                snprintf (why, whylen, "file cut short (%llu bytes): a segment ends at %llu",
                          (unsigned long long) size,
                          (unsigned long long) (ph.p_offset + ph.p_filesz));
                rc = -1;
            }
        }
    }
    close (fd);
    return rc;
}

static int
s_check_magic (const bctx_context_t *d, const char *where, const char *path,
               char *err, size_t errlen)
{
    static const bctx_magic_t want = BCTX_MAGIC;
    const char *field = NULL;
    uint32_t got = 0, exp = 0;
    if (d->magic.abi_version != want.abi_version)
        field = "abi_version", got = d->magic.abi_version, exp = want.abi_version;
    else if (d->magic.context_size != want.context_size)
        field = "context_size", got = d->magic.context_size, exp = want.context_size;
    else if (d->magic.command_size != want.command_size)
        field = "command_size", got = d->magic.command_size, exp = want.command_size;
    else if (d->magic.projection_size != want.projection_size)
        field = "projection_size", got = d->magic.projection_size, exp = want.projection_size;
    else if (d->magic.reactor_size != want.reactor_size)
        field = "reactor_size", got = d->magic.reactor_size, exp = want.reactor_size;
    else if (d->magic.event_size != want.event_size)
        field = "event_size", got = d->magic.event_size, exp = want.event_size;
    if (!field)
        return 0;
    snprintf (err, errlen,
              "%s: %s: incompatible plugin ABI: magic.%s is %u, the host expects %u",
              where, path, field, got, exp);
    return -1;
}

static int
s_check_descriptor (bctx_plugin_t *self, const char *name, const char *where,
                    const char *path, char *err, size_t errlen)
{
    const bctx_context_t *d = self->desc;
    if (!d->name || !*d->name) {
        snprintf (err, errlen, "%s: %s: descriptor has no name", where, path);
        return -1;
    }
    if (strcmp (d->name, name) != 0) {
        snprintf (err, errlen,
                  "%s: %s: plugin is context \"%s\", config names it \"%s\"",
                  where, path, d->name, name);
        return -1;
    }
    if (!d->evolve) {
        snprintf (err, errlen, "%s: %s: descriptor has no evolve", where, path);
        return -1;
    }
    if (!d->commands || !d->commands[0].name) {
        snprintf (err, errlen, "%s: %s: descriptor declares no commands",
                  where, path);
        return -1;
    }
    size_t n = 0;
    for (const bctx_command_t *c = d->commands; c->name; c++, n++) {
        if (!c->decide || !c->aggregate_field || !*c->aggregate_field) {
            snprintf (err, errlen,
                      "%s: %s: command \"%s\" lacks decide or aggregate_field",
                      where, path, c->name);
            return -1;
        }
        for (const bctx_command_t *p = d->commands; p < c; p++)
            if (strcmp (p->name, c->name) == 0) {
                snprintf (err, errlen, "%s: %s: command \"%s\" declared twice",
                          where, path, c->name);
                return -1;
            }
    }
    self->n_commands = n;
    return 0;
}

/* Sets *failure (if given) to code. */
static void
s_failed (int *failure, int code)
{
    if (failure)
        *failure = code;
}

/* The checks before dlopen: path resolves within bounds (NULL: none), is
 * a regular file within its size, and its copy, made and checked before
 * the deadline, is a whole shared object.  Return the copy's path (new;
 * the caller unlinks it), or NULL with err and, for a refusal by bounds,
 * its code in *failure. */
static char *
s_copy_checked (const char *path, const bctx_plugin_bounds_t *bounds, const char *where,
                int *failure, char *err, size_t errlen)
{
    /* Where the file really is, and whether it may load from there, before
     * anything opens it: opening it by its resolved path (no symlink at the
     * end either) then reads the file that was checked. */
    char *real = NULL;
    if (bounds) {
        int rc = bctx_plugin_dirs_check (bounds, path, where, &real, err, errlen);
        if (rc != 0) {
            s_failed (failure, rc);
            return NULL;
        }
    } else {
        real = strdup (path);
    }
    double deadline = bounds ? bounds->deadline : 0;
    /* O_NONBLOCK: a FIFO in a plugin folder must not hang the load. */
    int in = open (real, O_RDONLY | O_CLOEXEC | O_NONBLOCK | (bounds ? O_NOFOLLOW : 0));
    struct stat st;
    if (in < 0 || fstat (in, &st) < 0) {
        snprintf (err, errlen, "%s: %s: %s", where, path, strerror (errno));
        if (in >= 0)
            close (in);
        free (real);
        return NULL;
    }
    free (real);
    if (!S_ISREG (st.st_mode)) {
        snprintf (err, errlen, "%s: %s: not a regular file", where, path);
        close (in);
        return NULL;
    }
    if (bounds && bounds->max_bytes && (unsigned long long) st.st_size > bounds->max_bytes) {
        snprintf (err, errlen, "%s: %s: %lld bytes, over host.max_plugin_bytes (%zu): "
                  "refused without copying it (raise host.max_plugin_bytes if a plugin "
                  "really is that big)", where, path, (long long) st.st_size,
                  bounds->max_bytes);
        s_failed (failure, BCTX_ELOADTOOBIG);
        close (in);
        return NULL;
    }
    long long copied;
    char *copy = s_copy_to_temp (in, deadline, &copied);
    int e = errno;
    close (in);
    if (!copy && e == ETIMEDOUT) {
        snprintf (err, errlen, "%s: %s: the deadline passed while copying it for loading "
                  "(%lld of %lld bytes copied)", where, path, copied, (long long) st.st_size);
        s_failed (failure, BCTX_ELOADTIMEDOUT);
        return NULL;
    }
    if (!copy) {
        snprintf (err, errlen, "%s: %s: cannot copy for loading: %s", where,
                  path, strerror (e));
        return NULL;
    }
    char why[256];
    if (s_check_elf (copy, deadline, why, sizeof why) < 0 || s_late (deadline)) {
        int late = s_late (deadline);
        unlink (copy);
        free (copy);
        if (late) {
            snprintf (err, errlen, "%s: %s: the deadline passed while checking it for "
                      "loading", where, path);
            s_failed (failure, BCTX_ELOADTIMEDOUT);
        } else {
            snprintf (err, errlen, "%s: %s: not a loadable shared object: %s", where, path, why);
        }
        return NULL;
    }
    return copy;
}

bctx_plugin_t *
bctx_plugin_load (const char *name, const char *path, const json_t *settings,
                  const bctx_plugin_bounds_t *bounds, const char *where, int *failure,
                  char *err, size_t errlen)
{
    s_failed (failure, BCTX_ELOAD);
    char *copy = s_copy_checked (path, bounds, where, failure, err, errlen);
    if (!copy)
        return NULL;
    dlerror ();
    void *handle = dlopen (copy, RTLD_NOW | RTLD_LOCAL);
    unlink (copy);
    if (!handle) {
        const char *why = dlerror ();
        /* dlerror names the temporary copy; name the user's file instead. */
        const char *colon = why ? strstr (why, copy) : NULL;
        if (colon)
            why = colon + strlen (copy) + (colon[strlen (copy)] == ':' ? 2 : 0);
        snprintf (err, errlen, "%s: %s: not a loadable shared object: %s",
                  where, path, why ? why : "unknown error");
        free (copy);
        return NULL;
    }
    free (copy);
    dlerror ();
    bctx_entry_fn entry;
    *(void **) &entry = dlsym (handle, BCTX_ENTRY_SYMBOL);
    if (!entry) {
        snprintf (err, errlen, "%s: %s: entry symbol %s() not found", where,
                  path, BCTX_ENTRY_SYMBOL);
        dlclose (handle);
        return NULL;
    }
    const bctx_context_t *desc = entry ();
    if (!desc) {
        snprintf (err, errlen, "%s: %s: %s() returned NULL", where, path,
                  BCTX_ENTRY_SYMBOL);
        dlclose (handle);
        return NULL;
    }
    if (s_check_magic (desc, where, path, err, errlen) < 0) {
        dlclose (handle);
        return NULL;
    }
    bctx_plugin_t *self = calloc (1, sizeof *self);
    self->handle = handle;
    self->desc = desc;
    self->name = strdup (name);
    self->path = strdup (path);
    bctx_host_api_fill (&self->host, self);
    if (s_check_descriptor (self, name, where, path, err, errlen) < 0) {
        bctx_plugin_destroy (&self);
        return NULL;
    }
    if (desc->init) {
        json_t *null = json_null ();
        const char *was = bctx_log_set_context (self->name);
        int rc = desc->init (&self->host, settings ? settings : null,
                             &self->user);
        bctx_log_set_context (was);
        json_decref (null);
        if (rc != BCTX_OK) {
            snprintf (err, errlen, "%s: %s: init of context \"%s\" failed (%d)",
                      where, path, name, rc);
            bctx_plugin_destroy (&self);
            return NULL;
        }
    }
    self->initialised = 1;
    atomic_store (&self->refs, 1);
    return self;
}

bctx_plugin_t *
bctx_plugin_ref (bctx_plugin_t *self)
{
    atomic_fetch_add (&self->refs, 1);
    return self;
}

void
bctx_plugin_unref (bctx_plugin_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    if (atomic_fetch_sub (&(*self_p)->refs, 1) == 1)
        bctx_plugin_destroy (self_p);
    *self_p = NULL;
}

const bctx_command_t *
bctx_plugin_command (const bctx_plugin_t *self, const char *command)
{
    for (size_t i = 0; i < self->n_commands; i++)
        if (strcmp (self->desc->commands[i].name, command) == 0)
            return &self->desc->commands[i];
    return NULL;
}

void
bctx_plugin_destroy (bctx_plugin_t **self_p)
{
    BCTX_SELF_OR_RETURN (bctx_plugin_t, self_p);
    if (self->initialised && self->desc->fini) {
        const char *was = bctx_log_set_context (self->name);
        self->desc->fini (self->user);
        bctx_log_set_context (was);
    }
    if (self->handle)
        dlclose (self->handle);
    if (self->loaded)
        atomic_fetch_sub (self->loaded, 1);
    free (self->name);
    free (self->path);
    free (self);
    *self_p = NULL;
}
