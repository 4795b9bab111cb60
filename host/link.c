/*
 * link - frames over a Unix stream socket.
 */

#include "link.h"
#include "util.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

/* path as a Unix socket address.  Return 0, or -1 when it is too long. */
static int
s_address (const char *path, struct sockaddr_un *a)
{
    memset (a, 0, sizeof *a);
    a->sun_family = AF_UNIX;
    if (strlen (path) >= sizeof a->sun_path)
        return -1;
    memcpy (a->sun_path, path, strlen (path));
    return 0;
}

int
bctx_link_listen (const char *path, char *err, size_t errlen)
{
    struct sockaddr_un a;
    if (s_address (path, &a) < 0) {
        snprintf (err, errlen, "%s: too long for a Unix socket", path);
        return -1;
    }
    int fd = socket (AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    unlink (path);
    if (fd < 0 || bind (fd, (struct sockaddr *) &a, sizeof a) < 0 || listen (fd, 4) < 0) {
        snprintf (err, errlen, "%s: %s", path, strerror (errno));
        if (fd >= 0)
            close (fd);
        return -1;
    }
    return fd;
}

int
bctx_link_accept (int listener)
{
    return accept4 (listener, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
}

int
bctx_link_connect (const char *path)
{
    struct sockaddr_un a;
    if (s_address (path, &a) < 0)
        return -1;
    int fd = socket (AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd >= 0 && connect (fd, (struct sockaddr *) &a, sizeof a) < 0) {
        close (fd);
        fd = -1;
    }
    return fd;
}

/* Makes room for `more` bytes after b's data. */
static void
s_room (bctx_bytes_t *b, size_t more)
{
    if (b->off > 0 && b->off == b->len)
        b->off = b->len = 0;
    if (b->len + more > b->cap) {
        if (b->off > 0) {          /* what was taken goes first */
            memmove (b->data, b->data + b->off, b->len - b->off);
            b->len -= b->off;
            b->off = 0;
        }
        void *p = b->data;
        bctx_grow (&p, &b->cap, b->len + more, 1);
        b->data = p;
    }
}

void
bctx_link_put (bctx_bytes_t *out, uint64_t tag, const char *body, size_t len)
{
    uint32_t n = (uint32_t) (len + sizeof tag);
    s_room (out, sizeof n + n);
    unsigned char head[12];
    for (int i = 0; i < 4; i++)
        head[i] = (unsigned char) (n >> (8 * i));
    for (int i = 0; i < 8; i++)
        head[4 + i] = (unsigned char) (tag >> (8 * i));
    memcpy (out->data + out->len, head, sizeof head);
    memcpy (out->data + out->len + sizeof head, body, len);
    out->len += sizeof head + len;
}

int
bctx_link_flush (int fd, bctx_bytes_t *out)
{
    while (out->off < out->len) {
        ssize_t w = send (fd, out->data + out->off, out->len - out->off, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return 0;
        if (w <= 0)
            return -1;
        out->off += (size_t) w;
    }
    out->off = out->len = 0;
    return 0;
}

int
bctx_link_write (int fd, bctx_bytes_t *out, int timeout_ms)
{
    double deadline = bctx_now () + timeout_ms / 1000.0;
    while (out->off < out->len) {
        if (bctx_link_flush (fd, out) < 0)
            return -1;
        if (out->off >= out->len)
            break;
        int left = (int) ((deadline - bctx_now ()) * 1000);
        struct pollfd p = { fd, POLLOUT, 0 };
        if (left <= 0 || (poll (&p, 1, left) < 0 && errno != EINTR))
            return -1;
    }
    return 0;
}

int
bctx_link_fill (int fd, bctx_bytes_t *in)
{
    int got = 0;
    for (;;) {
        s_room (in, 65536);
        ssize_t r = recv (fd, in->data + in->len, in->cap - in->len, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return got;
        if (r <= 0)
            return -1;
        in->len += (size_t) r;
        got = 1;
        if ((size_t) r < 65536)
            return got;
    }
}

int
bctx_link_next (bctx_bytes_t *in, uint64_t *tag, const char **body, size_t *len)
{
    size_t have = in->len - in->off;
    if (have < 12)
        return 0;
    const unsigned char *p = (const unsigned char *) in->data + in->off;
    uint32_t n = 0;
    for (int i = 0; i < 4; i++)
        n |= (uint32_t) p[i] << (8 * i);
    if (n < 8 || n > BCTX_LINK_MAX_FRAME)
        return -1;
    if (have < 4 + (size_t) n)
        return 0;
    uint64_t t = 0;
    for (int i = 0; i < 8; i++)
        t |= (uint64_t) p[4 + i] << (8 * i);
    *tag = t;
    *body = (const char *) p + 12;
    *len = n - 8;
    in->off += 4 + (size_t) n;
    return 1;
}

int
bctx_link_ready (const bctx_bytes_t *in)
{
    bctx_bytes_t peek = *in;
    uint64_t tag;
    const char *body;
    size_t len;
    return bctx_link_next (&peek, &tag, &body, &len) == 1;
}

void
bctx_bytes_clear (bctx_bytes_t *b)
{
    free (b->data);
    *b = (bctx_bytes_t) { 0 };
}
