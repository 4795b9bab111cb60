/*
 * util - the clock, mkdirs, the name rule, the nearest word and checked
 * allocation.
 */
#include "util.h"

#include <stdatomic.h>

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zmq.h>
#include <time.h>

double
bctx_now (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

/* Makes one folder; an existing folder is fine, anything else in the way
 * is not.  Return 0, or -1 with the reason in err. */
static int
s_mkdir (const char *path, mode_t mode, char *err, size_t errlen)
{
    if (mkdir (path, mode) == 0)
        return 0;
    int e = errno;
    struct stat st;
    if (e == EEXIST && stat (path, &st) == 0 && S_ISDIR (st.st_mode))
        return 0;
    if (e == EEXIST)
        snprintf (err, errlen, "cannot create %s: something that is not a folder is "
                  "in the way (move it, or choose another path)", path);
    else
        snprintf (err, errlen, "cannot create %s: %s", path, strerror (e));
    return -1;
}

int
bctx_mkdirs (const char *path, mode_t mode, char *err, size_t errlen)
{
    if (!path || !*path) {
        snprintf (err, errlen, "cannot create a folder without a path");
        return -1;
    }
    char *p = bctx_malloc (strlen (path) + 1);
    strcpy (p, path);
    int rc = 0;
    for (char *s = p + 1; *s && rc == 0; s++)
        if (*s == '/' && s[-1] != '/') {
            *s = '\0';
            rc = s_mkdir (p, mode, err, errlen);
            *s = '/';
        }
    if (rc == 0)
        rc = s_mkdir (p, mode, err, errlen);
    free (p);
    return rc;
}

/* Says what could not be had, and ends the process. */
static void
s_out_of_memory (const char *what, size_t size)
{
    fprintf (stderr, "bctx: out of memory: %s of %zu bytes failed\n", what, size);
    abort ();
}

void *
bctx_malloc (size_t size)
{
    void *p = malloc (size ? size : 1);
    if (!p)
        s_out_of_memory ("malloc", size);
    return p;
}

void *
bctx_calloc (size_t n, size_t size)
{
    if (size && n > SIZE_MAX / size)
        s_out_of_memory ("calloc (overflowing)", SIZE_MAX);
    void *p = calloc (n ? n : 1, size ? size : 1);
    if (!p)
        s_out_of_memory ("calloc", n * size);
    return p;
}

void *
bctx_realloc (void *p, size_t size)
{
    void *bigger = realloc (p, size ? size : 1);
    if (!bigger)
        s_out_of_memory ("realloc", size);
    return bigger;
}

void
bctx_grow (void **p, size_t *cap, size_t need, size_t size)
{
    if (need <= *cap)
        return;
    size_t n = *cap ? *cap : 8;
    while (n < need) {
        if (n > SIZE_MAX / 2)
            s_out_of_memory ("growing an array", SIZE_MAX);
        n *= 2;
    }
    if (size && n > SIZE_MAX / size)
        s_out_of_memory ("growing an array", SIZE_MAX);
    char *bigger = bctx_realloc (*p, n * size);
    memset (bigger + *cap * size, 0, (n - *cap) * size);
    *p = bigger;
    *cap = n;
}

void
bctx_busy_begin (bctx_busy_t *b)
{
    atomic_store (&b->since_us, (long long) (bctx_now () * 1e6) | 1);
}

void
bctx_busy_end (bctx_busy_t *b)
{
    atomic_store (&b->since_us, 0);
}

long long
bctx_busy_ms (const bctx_busy_t *b)
{
    long long since = atomic_load (&((bctx_busy_t *) b)->since_us);
    return since ? ((long long) (bctx_now () * 1e6) - since) / 1000 : 0;
}

void
bctx_items_free (void *v, size_t n, void (*item_free) (void *))
{
    void **items = v;
    for (size_t i = 0; i < n; i++)
        item_free (items[i]);
    free (v);
}

void
bctx_strings_free (char **v, size_t n)
{
    bctx_items_free (v, n, free);
}

void
bctx_socket_close (void **socket_p)
{
    if (!socket_p || !*socket_p)
        return;
    int linger = 0;
    zmq_setsockopt (*socket_p, ZMQ_LINGER, &linger, sizeof linger);
    zmq_close (*socket_p);
    *socket_p = NULL;
}

int
bctx_name_valid (const char *name)
{
    size_t len = name ? strlen (name) : 0;
    return len > 0 && len <= 64
           && strspn (name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                            "0123456789_-") == len;
}

/* The optimal string alignment distance (Damerau-Levenshtein without
 * edits of a swapped pair) between a and b, or max + 1 when it is more
 * than max: three rows of at most 64 columns, so longer words count as
 * far. */
static size_t
s_distance (const char *a, const char *b, size_t max)
{
    size_t la = strlen (a), lb = strlen (b);
    if (la > 63 || lb > 63 || (la > lb ? la - lb : lb - la) > max)
        return max + 1;
    size_t rows[3][64];
    size_t *before = rows[0], *prev = rows[1], *cur = rows[2];
    for (size_t j = 0; j <= lb; j++)
        prev[j] = j;
    for (size_t i = 1; i <= la; i++) {
        cur[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t cost = a[i - 1] != b[j - 1];
            size_t d = prev[j - 1] + cost;
            if (prev[j] + 1 < d)
                d = prev[j] + 1;
            if (cur[j - 1] + 1 < d)
                d = cur[j - 1] + 1;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]
                && before[j - 2] + 1 < d)
                d = before[j - 2] + 1;
            cur[j] = d;
        }
        size_t *t = before;
        before = prev, prev = cur, cur = t;
    }
    return prev[lb] <= max ? prev[lb] : max + 1;
}

const char *
bctx_nearest (const char *word, const char *const *words, size_t max_distance)
{
    const char *best = NULL;
    size_t best_d = max_distance + 1;
    int tie = 0;
    for (const char *const *w = words; w && *w; w++) {
        size_t d = s_distance (word, *w, max_distance);
        if (d < best_d)
            best = *w, best_d = d, tie = 0;
        else if (d == best_d && best)
            tie = 1;
    }
    /* Two words as near say nothing about which was meant. */
    return best && !tie ? best : NULL;
}
