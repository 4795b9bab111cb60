/*
 * util - the clock, mkdirs and checked allocation.
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
bctx_strings_free (char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free (v[i]);
    free (v);
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
