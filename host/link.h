/*
 * link - the command link between the supervisor and a context process's
 * worker: a Unix stream socket (host.data/run/cmd-NAME.sock) carrying
 * frames of [u32 length, little-endian][u64 tag][body], the length
 * counting the tag and the body.  The supervisor writes each command as
 * it came from its client, with a tag; the worker answers with the same
 * tag.  Without ZeroMQ's I/O threads on either side, a command costs no
 * thread wake-up but the worker's own, and one write carries every
 * command that waits.
 */
#ifndef BCTX_LINK_H
#define BCTX_LINK_H

#include <stddef.h>
#include <stdint.h>

#define BCTX_LINK_MAX_FRAME (1024u * 1024 * 1024)  /* a longer length is garbage */

/* The tags the supervisor makes stay below 2^56.  A reply's tag carries
 * in its high byte the (negated) BCTX_E* code of a request its worker
 * refused before deciding it, or 0: the supervisor counts the refusal
 * without reading the reply. */
#define BCTX_LINK_TAG_BITS 56
#define BCTX_LINK_TAG_MASK ((UINT64_C (1) << BCTX_LINK_TAG_BITS) - 1)

/* Bytes on their way in or out of a link. */
typedef struct bctx_bytes {
    char *data;                   /* owned */
    size_t len;                   /* bytes held */
    size_t cap;                   /* bytes allocated */
    size_t off;                   /* bytes of data already taken (input) or sent */
} bctx_bytes_t;

/* Listens on path (a file; one there is replaced).  Return the socket
 * (non-blocking, close-on-exec), or -1 with the reason in err. */
int bctx_link_listen (const char *path, char *err, size_t errlen);

/* Accepts a connection on a listening socket.  Return it (non-blocking),
 * or -1. */
int bctx_link_accept (int listener);

/* Connects to path.  Return the socket (non-blocking), or -1. */
int bctx_link_connect (const char *path);

/* Appends one frame to out. */
void bctx_link_put (bctx_bytes_t *out, uint64_t tag, const char *body, size_t len);

/* Writes what out holds that fd takes now (never blocks).  Return 0 (all
 * or part written: out->len - out->off left), or -1 when the link broke. */
int bctx_link_flush (int fd, bctx_bytes_t *out);

/* As bctx_link_flush, waiting (poll) until all is written or timeout_ms
 * passed.  Return 0, or -1. */
int bctx_link_write (int fd, bctx_bytes_t *out, int timeout_ms);

/* Reads what fd has now into in.  Return 1 when bytes came, 0 when none
 * waits, -1 when the link ended or broke. */
int bctx_link_fill (int fd, bctx_bytes_t *in);

/* The next whole frame in `in`: its tag, and its body (borrowed, valid
 * until the next fill) in *body, *len.  Return 1, 0 when no whole frame
 * waits, or -1 when the stream is garbage. */
int bctx_link_next (bctx_bytes_t *in, uint64_t *tag, const char **body, size_t *len);

/* Does `in` hold a whole frame? */
int bctx_link_ready (const bctx_bytes_t *in);

/* Frees what b holds and empties it. */
void bctx_bytes_clear (bctx_bytes_t *b);

#endif
