/*
 * loader - dlopen of context plugins, with the magic-block check and the
 * per-context host-services table.
 */

#include "loader.h"
#include "log.h"
#include "projection.h"
#include "reactor.h"

#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void
s_host_log (const bctx_host_t *host, int level, const char *fmt, ...)
{
    const bctx_plugin_t *self = host->priv;
    char line[1024];
    va_list ap;
    va_start (ap, fmt);
    vsnprintf (line, sizeof line, fmt, ap);
    va_end (ap);
    bctx_log (level, "context %s: %s", self->name, line);
}

static const char *
s_host_context_name (const bctx_host_t *host)
{
    const bctx_plugin_t *self = host->priv;
    return self->name;
}

/* Copies `path` to a fresh file under $TMPDIR and returns its name (new),
 * or NULL with errno set. */
static char *
s_copy_to_temp (const char *path)
{
    int in = open (path, O_RDONLY | O_CLOEXEC);
    if (in < 0)
        return NULL;
    const char *dir = getenv ("TMPDIR");
    char *tmp = NULL;
    if (asprintf (&tmp, "%s/bctx-plugin-XXXXXX.so", dir && *dir ? dir : "/tmp") < 0) {
        close (in);
        return NULL;
    }
    int out = mkstemps (tmp, 3);
    if (out < 0) {
        int e = errno;
        close (in);
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
    }
    int e = errno;
    close (in);
    if (close (out) < 0)
        ok = 0;
    if (!ok) {
        unlink (tmp);
        free (tmp);
        errno = e;
        return NULL;
    }
    return tmp;
}

/* Refuses a file that is not a whole 64-bit ELF shared object before
 * dlopen sees it: glibc maps loadable segments by their headers, and a file
 * cut short (a plugin still being written) would fault on first touch
 * instead of failing to load.  Return 0, or -1 with the reason in why. */
static int
s_check_elf (const char *path, char *why, size_t whylen)
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

bctx_plugin_t *
bctx_plugin_load (const char *name, const char *path, const json_t *settings,
                  const char *where, char *err, size_t errlen)
{
    struct stat st;
    if (stat (path, &st) < 0) {
        snprintf (err, errlen, "%s: %s: %s", where, path, strerror (errno));
        return NULL;
    }
    if (!S_ISREG (st.st_mode)) {
        snprintf (err, errlen, "%s: %s: not a regular file", where, path);
        return NULL;
    }
    char *copy = s_copy_to_temp (path);
    if (!copy) {
        snprintf (err, errlen, "%s: %s: cannot copy for loading: %s", where,
                  path, strerror (errno));
        return NULL;
    }
    char why[256];
    if (s_check_elf (copy, why, sizeof why) < 0) {
        unlink (copy);
        free (copy);
        snprintf (err, errlen, "%s: %s: not a loadable shared object: %s", where, path, why);
        return NULL;
    }
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
    self->host.size = sizeof self->host;
    self->host.priv = self;
    self->host.log = s_host_log;
    self->host.context_name = s_host_context_name;
    self->host.model_get = bctx_models_get;
    self->host.model_put = bctx_models_put;
    self->host.model_delete = bctx_models_delete;
    self->host.send = bctx_reaction_send;
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
    if (!self_p || !*self_p)
        return;
    bctx_plugin_t *self = *self_p;
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
