/*
 * poison - the notes of the runners, and the events parked for them.
 */

#include "poison.h"
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

struct bctx_poison {
    bctx_slot_t *slots;           /* BCTX_POISON_SLOTS, mapped shared */
    json_t *parked;               /* {runner: [[source, position], ...]} */
};

/* host.data/run/NAME-CONTEXT(.json) into out. */
static void
s_path (char *out, size_t size, const char *data, const char *name, const char *context,
        const char *ext)
{
    snprintf (out, size, "%s/run/%s-%s%s", data, name, context, ext);
}

bctx_poison_t *
bctx_poison_open (const char *data, const char *context)
{
    char path[4200];
    s_path (path, sizeof path, data, "state", context, "");
    size_t size = BCTX_POISON_SLOTS * sizeof (bctx_slot_t);
    int fd = open (path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    void *map = MAP_FAILED;
    if (fd >= 0 && ftruncate (fd, (off_t) size) == 0)
        map = mmap (NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (fd >= 0)
        close (fd);
    if (map == MAP_FAILED) {
        bctx_log (BCTX_LOG_WARN, "context %s: cannot map %s (%s): poison events will not "
                  "be parked", context, path, strerror (errno));
        return NULL;
    }
    bctx_poison_t *self = calloc (1, sizeof *self);
    self->slots = map;
    s_path (path, sizeof path, data, "park", context, ".json");
    self->parked = json_load_file (path, 0, NULL);
    if (!json_is_object (self->parked)) {
        json_decref (self->parked);
        self->parked = json_object ();
    }
    return self;
}

bctx_slot_t *
bctx_poison_slot (bctx_poison_t *self, const char *who)
{
    for (size_t i = 0; self && i < BCTX_POISON_SLOTS; i++) {
        bctx_slot_t *s = &self->slots[i];
        if (strcmp (s->runner, who) == 0)
            return s;
        if (!s->runner[0]) {
            snprintf (s->runner, sizeof s->runner, "%s", who);
            return s;
        }
    }
    return NULL;
}

int
bctx_poison_parked (const bctx_poison_t *self, const char *who, const char *source,
                    int64_t position)
{
    if (!self)
        return 0;
    size_t i;
    json_t *e;
    json_array_foreach (json_object_get (self->parked, who), i, e)
        if (json_integer_value (json_array_get (e, 1)) == position
            && json_is_string (json_array_get (e, 0))
            && strcmp (json_string_value (json_array_get (e, 0)), source) == 0)
            return 1;
    return 0;
}

void
bctx_slot_enter (bctx_slot_t *slot, const char *source, int64_t position)
{
    if (!slot)
        return;
    if (strncmp (slot->source, source, sizeof slot->source) != 0)
        snprintf (slot->source, sizeof slot->source, "%s", source);
    atomic_store (&slot->position, (long long) position);
}

void
bctx_slot_leave (bctx_slot_t *slot)
{
    if (slot)
        atomic_store (&slot->position, 0);
}

void
bctx_poison_close (bctx_poison_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    munmap ((*self_p)->slots, BCTX_POISON_SLOTS * sizeof (bctx_slot_t));
    json_decref ((*self_p)->parked);
    free (*self_p);
    *self_p = NULL;
}

int
bctx_poison_count (const char *data, const char *context, json_t *crashes)
{
    char path[4200];
    s_path (path, sizeof path, data, "state", context, "");
    bctx_slot_t slots[BCTX_POISON_SLOTS];
    int fd = open (path, O_RDONLY | O_CLOEXEC);
    ssize_t n = fd >= 0 ? read (fd, slots, sizeof slots) : -1;
    if (fd >= 0)
        close (fd);
    if (n != (ssize_t) sizeof slots)
        return 0;
    s_path (path, sizeof path, data, "park", context, ".json");
    json_t *parked = json_load_file (path, 0, NULL);
    if (!json_is_object (parked)) {
        json_decref (parked);
        parked = json_object ();
    }
    int now = 0;
    for (size_t i = 0; i < BCTX_POISON_SLOTS; i++) {
        bctx_slot_t *s = &slots[i];
        long long position = atomic_load (&s->position);
        s->runner[sizeof s->runner - 1] = s->source[sizeof s->source - 1] = '\0';
        if (!s->runner[0] || position <= 0)
            continue;
        char key[200];
        snprintf (key, sizeof key, "%.95s\x1f%.71s\x1f%lld", s->runner, s->source, position);
        json_int_t times = json_integer_value (json_object_get (crashes, key)) + 1;
        json_object_set_new (crashes, key, json_integer (times));
        if (times != BCTX_POISON_LIMIT)
            continue;
        json_t *list = json_object_get (parked, s->runner);
        if (!list) {
            list = json_array ();
            json_object_set_new (parked, s->runner, list);
        }
        json_array_append_new (list, json_pack ("[s, I]", s->source, (json_int_t) position));
        bctx_log (BCTX_LOG_ERROR, "context %s: %s ended its process %d times on %s's event "
                  "at position %lld: parked for it; it goes on with the other events",
                  context, s->runner, BCTX_POISON_LIMIT, s->source, position);
        now++;
    }
    if (now && json_dump_file (parked, path, JSON_COMPACT) != 0)
        bctx_log (BCTX_LOG_ERROR, "context %s: cannot write %s: %s", context, path,
                  strerror (errno));
    json_decref (parked);
    return now;
}
