/*
 * util - small services every module of the host needs: the monotonic
 * clock, making a folder with its parents, the name rule, the nearest of
 * a list of words (for "did you mean"), and allocation that is checked
 * once here (libuv's uv__malloc): an allocation that fails aborts the
 * process with one message naming the size, so no caller handles NULL.
 */
#ifndef BCTX_UTIL_H
#define BCTX_UTIL_H

#include <stddef.h>
#include <sys/types.h>

/* Monotonic seconds (CLOCK_MONOTONIC), for deadlines and durations. */
double bctx_now (void);

/* Since when a thread has been running plugin code: the monotonic
 * microsecond it started, or 0.  Its thread sets it; a watchdog reads
 * it (a context process ends itself when one runs past
 * host.handler_timeout_ms). */
typedef struct bctx_busy {
    _Atomic long long since_us;   /* when it started, or 0 */
} bctx_busy_t;

/* Marks plugin code started / ended on b. */
void bctx_busy_begin (bctx_busy_t *b);
void bctx_busy_end (bctx_busy_t *b);

/* How long b has been busy, in ms (0 when it is not). */
long long bctx_busy_ms (const bctx_busy_t *b);

/*
 * Makes the folder `path` and every missing parent with `mode` (an
 * existing folder is fine).  Return 0, or -1 with err naming the folder
 * that could not be made and why (a file that is not a folder in the way
 * among them).
 */
int bctx_mkdirs (const char *path, mode_t mode, char *err, size_t errlen);

/* Is name a name as the host takes them (a context's, a peer's; the
 * name of `bctx new-context`): 1 to 64 of A-Z a-z 0-9 _ -?  It becomes a
 * file name, a socket name and a C identifier's part. */
int bctx_name_valid (const char *name);

/* The word of the NULL-terminated `words` (borrowed) nearest to `word`,
 * by edit distance (insert, delete, replace, swap two neighbours), when
 * it is at most max_distance edits away and nearer than any other; else
 * NULL.  For "unknown key (did you mean host.publish?)". */
const char *bctx_nearest (const char *word, const char *const *words, size_t max_distance);

/* malloc, calloc and realloc that never return NULL: on failure they log
 * the size asked for and abort.  Return: new (bctx_realloc: p's block
 * moved or grown; p is then no longer valid).  A size of 0 asks for 1
 * byte, so the result is never NULL. */
void *bctx_malloc (size_t size);
void *bctx_calloc (size_t n, size_t size);
void *bctx_realloc (void *p, size_t size);

/*
 * Makes the array *p (of *cap items of `size` bytes) hold at least `need`
 * items, growing it (doubled, 8 items at least) when it is smaller; the
 * new items are zeroed.  *p and *cap are updated; abort as bctx_malloc
 * when memory runs out.
 */
void bctx_grow (void **p, size_t *cap, size_t need, size_t size);

/*
 * The first line of every destructor x_destroy (x_t **self_p): declares
 * `type *self`, the object *self_p names, and returns from the destructor
 * when there is none (self_p or *self_p NULL), so that a destructor may be
 * called again.  The destructor ends by setting *self_p to NULL.
 */
#define BCTX_SELF_OR_RETURN(type, self_p) \
    type *self = (self_p) ? *(self_p) : NULL; \
    if (!self) \
        return

/* Frees the n items of v, an array of owned pointers (an x_t **), each
 * with item_free, then v (NULL when n is 0 is fine). */
void bctx_items_free (void *v, size_t n, void (*item_free) (void *));

/* Frees the n strings of v, then v (NULL when n is 0 is fine). */
void bctx_strings_free (char **v, size_t n);

/* Closes the ZeroMQ socket *socket_p, if any, dropping what it has not
 * sent (no linger), and sets *socket_p to NULL. */
void bctx_socket_close (void **socket_p);

#endif
