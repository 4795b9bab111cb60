/*
 * poison - the notes of the runners, and the events parked for them.
 */

#include "poison.h"
#include "log.h"
#include "protocol.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

struct bctx_poison {
    bctx_slot_t *slots;           /* BCTX_POISON_SLOTS, mapped shared */
    char *context;                /* the context, for messages */
    char *path;                   /* the park file */
    pthread_mutex_t lock;         /* guards parked (runners and the API thread) */
    _Atomic long long n_parked;   /* entries in parked: at 0 a lookup takes no lock */
    json_t *parked;               /* {runner: [{"context", "position", "aggregate",
                                     "type", "ends", "parked_at"}, ...]} */
};

/* host.data/run/NAME-CONTEXT(.json) into out. */
static void
s_path (char *out, size_t size, const char *data, const char *name, const char *context,
        const char *ext)
{
    snprintf (out, size, "%s/run/%s-%s%s", data, name, context, ext);
}

/* The park file at path: an object, empty when there is none or it does
 * not parse.  Return: new. */
static json_t *
s_load (const char *path)
{
    json_t *parked = json_load_file (path, 0, NULL);
    if (!json_is_object (parked)) {
        json_decref (parked);
        parked = json_object ();
    }
    return parked;
}

/* Writes parked (borrowed) to path whole, through a new file renamed over
 * it, so a reader never sees half of it.  Return 0, or -1 (logged). */
static int
s_save (const char *context, const char *path, const json_t *parked)
{
    char tmp[4300];
    snprintf (tmp, sizeof tmp, "%s.new", path);
    if (json_dump_file (parked, tmp, JSON_COMPACT) != 0 || rename (tmp, path) != 0) {
        bctx_log (BCTX_LOG_ERROR, "context %s: cannot write %s: %s", context, path,
                  strerror (errno));
        unlink (tmp);
        return -1;
    }
    return 0;
}

/* The index in list (an array, or NULL) of the entry for source's event at
 * position, or -1. */
static ssize_t
s_find (const json_t *list, const char *source, int64_t position)
{
    size_t i;
    json_t *e;
    json_array_foreach (list, i, e) {
        const char *context = json_string_value (json_object_get (e, "context"));
        if (json_integer_value (json_object_get (e, "position")) == position
            && context && strcmp (context, source) == 0)
            return (ssize_t) i;
    }
    return -1;
}

bctx_poison_t *
bctx_poison_open (const char *data, const char *context, int fresh)
{
    char path[4200];
    s_path (path, sizeof path, data, "state", context, "");
    size_t size = BCTX_POISON_SLOTS * sizeof (bctx_slot_t);
    /* Never truncated: a standby maps the file of the process it will
     * replace, and a shorter file under that process's map would end it
     * with SIGBUS.  Its size never changes, so ftruncate only makes it. */
    int fd = open (path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    struct stat st;
    void *map = MAP_FAILED;
    if (fd >= 0 && fstat (fd, &st) == 0
        && (st.st_size == (off_t) size || ftruncate (fd, (off_t) size) == 0))
        map = mmap (NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (fd >= 0)
        close (fd);
    if (map != MAP_FAILED && fresh)
        memset (map, 0, size);
    if (map == MAP_FAILED) {
        bctx_log (BCTX_LOG_WARN, "context %s: cannot map %s (%s): poison events will not "
                  "be parked", context, path, strerror (errno));
        return NULL;
    }
    bctx_poison_t *self = calloc (1, sizeof *self);
    self->slots = map;
    pthread_mutex_init (&self->lock, NULL);
    self->context = strdup (context);
    s_path (path, sizeof path, data, "park", context, ".json");
    self->path = strdup (path);
    self->parked = s_load (path);
    const char *who;
    json_t *list;
    long long n = 0;
    json_object_foreach (self->parked, who, list)
        n += (long long) json_array_size (list);
    atomic_store (&self->n_parked, n);
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
bctx_poison_parked (bctx_poison_t *self, const char *who, const char *source,
                    int64_t position)
{
    if (!self || atomic_load (&self->n_parked) == 0)
        return 0;
    pthread_mutex_lock (&self->lock);
    int found = s_find (json_object_get (self->parked, who), source, position) >= 0;
    pthread_mutex_unlock (&self->lock);
    return found;
}

json_t *
bctx_poison_list (bctx_poison_t *self, const char *who)
{
    if (!self)
        return json_array ();
    pthread_mutex_lock (&self->lock);
    json_t *list = json_object_get (self->parked, who);
    json_t *copy = json_is_array (list) ? json_deep_copy (list) : json_array ();
    pthread_mutex_unlock (&self->lock);
    return copy;
}

int
bctx_poison_unpark (bctx_poison_t *self, const char *who, const char *source,
                    int64_t position)
{
    if (!self)
        return -1;
    pthread_mutex_lock (&self->lock);
    json_t *list = json_object_get (self->parked, who);
    ssize_t at = s_find (list, source, position);
    int rc = -1;
    if (at >= 0) {
        json_array_remove (list, (size_t) at);
        if (json_array_size (list) == 0)
            json_object_del (self->parked, who);
        atomic_fetch_sub (&self->n_parked, 1);
        rc = s_save (self->context, self->path, self->parked);
    }
    pthread_mutex_unlock (&self->lock);
    if (rc == 0)
        bctx_log (BCTX_LOG_INFO, "context %s: %s: %s's event at position %lld is no "
                  "longer parked", self->context, who, source, (long long) position);
    return rc;
}

/* Copies value (NULL: "") into field of size bytes, cut to fit. */
static void
s_note (char *field, size_t size, const char *value)
{
    size_t n = value ? strnlen (value, size - 1) : 0;
    if (n)
        memcpy (field, value, n);
    field[n] = '\0';
}

void
bctx_slot_enter (bctx_slot_t *slot, const bctx_event_t *event)
{
    if (!slot)
        return;
    s_note (slot->source, sizeof slot->source, event->context);
    s_note (slot->aggregate, sizeof slot->aggregate, event->aggregate);
    s_note (slot->type, sizeof slot->type, event->type);
    atomic_store (&slot->position, (long long) event->position);
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
    BCTX_SELF_OR_RETURN (bctx_poison_t, self_p);
    munmap (self->slots, BCTX_POISON_SLOTS * sizeof (bctx_slot_t));
    json_decref (self->parked);
    pthread_mutex_destroy (&self->lock);
    free (self->context);
    free (self->path);
    free (self);
    *self_p = NULL;
}

int
bctx_poison_count (const char *data, const char *context, json_t *crashes)
{
    char path[4200];
    s_path (path, sizeof path, data, "state", context, "");
    size_t size = BCTX_POISON_SLOTS * sizeof (bctx_slot_t);
    bctx_slot_t *slots = malloc (size);
    int fd = slots ? open (path, O_RDONLY | O_CLOEXEC) : -1;
    ssize_t n = fd >= 0 ? read (fd, slots, size) : -1;
    if (fd >= 0)
        close (fd);
    if (n != (ssize_t) size) {
        free (slots);
        return 0;
    }
    s_path (path, sizeof path, data, "park", context, ".json");
    json_t *parked = s_load (path);
    int now = 0, changed = 0;
    for (size_t i = 0; i < BCTX_POISON_SLOTS; i++) {
        bctx_slot_t *s = &slots[i];
        long long position = atomic_load (&s->position);
        s->runner[sizeof s->runner - 1] = s->source[sizeof s->source - 1] = '\0';
        s->aggregate[sizeof s->aggregate - 1] = s->type[sizeof s->type - 1] = '\0';
        s->runner[strcspn (s->runner, (char[]) { BCTX_POISON_LANE, '\0' })] = '\0';
        if (!s->runner[0] || position <= 0)
            continue;
        char key[200];
        snprintf (key, sizeof key, "%.95s\x1f%.71s\x1f%lld", s->runner, s->source, position);
        json_t *list = json_object_get (parked, s->runner);
        ssize_t at = s_find (list, s->source, position);
        if (at >= 0) {
            /* A retry of the parked event ended the process: one more
             * end, and it stays parked. */
            json_t *e = json_array_get (list, (size_t) at);
            json_int_t ends = json_integer_value (json_object_get (e, "ends")) + 1;
            json_object_set_new (e, "ends", json_integer (ends));
            json_object_set_new (crashes, key, json_integer (ends));
            bctx_log (BCTX_LOG_ERROR, "context %s: %s ended its process again on %s's "
                      "event at position %lld (%lld times), retried: it stays parked",
                      context, s->runner, s->source, position, (long long) ends);
            changed = 1;
            continue;
        }
        /* Counted to the limit before but not parked now: a retry
         * unparked it, so this is its first end since. */
        json_int_t before = json_integer_value (json_object_get (crashes, key));
        json_int_t times = (before >= BCTX_POISON_LIMIT ? 0 : before) + 1;
        json_object_set_new (crashes, key, json_integer (times));
        if (times < BCTX_POISON_LIMIT)
            continue;
        if (!list) {
            list = json_array ();
            json_object_set_new (parked, s->runner, list);
        }
        char when[40];
        bctx_time_iso (when, sizeof when);
        json_array_append_new (list, json_pack ("{s:s, s:I, s:s, s:s, s:I, s:s}",
                                                "context", s->source,
                                                "position", (json_int_t) position,
                                                "aggregate", s->aggregate, "type", s->type,
                                                "ends", times, "parked_at", when));
        bctx_log (BCTX_LOG_ERROR, "context %s: %s ended its process %d times on %s's event "
                  "at position %lld: parked for it; it goes on with the other events",
                  context, s->runner, BCTX_POISON_LIMIT, s->source, position);
        now++;
        changed = 1;
    }
    if (changed)
        s_save (context, path, parked);
    json_decref (parked);
    free (slots);
    return now;
}
