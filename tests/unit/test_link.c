/*
 * test_link - unit tests of host/link, the command link's frames
 * ([u32 length, little-endian][u64 tag][body], the length counting the
 * tag and the body) over real sockets: a socketpair, and a Unix socket
 * in a temporary folder.  Frames come back whole with their tags and
 * bodies (empty, binary, large); a frame that arrives a byte at a time is
 * taken only once it is whole; many frames in one read are all taken; a
 * large frame goes through partial writes; a length over
 * BCTX_LINK_MAX_FRAME, or too short for the tag, is garbage; an ended
 * link says so on both sides.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "link.h"

/* Two connected non-blocking stream sockets, or a failed test. */
static void
s_pair (int fds[2])
{
    assert_int_equal (socketpair (AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fds), 0);
}

/* Takes the next frame of in, expecting `tag` and body[0 .. len). */
static void
s_expect (bctx_bytes_t *in, uint64_t tag, const char *body, size_t len)
{
    uint64_t t = 0;
    const char *b = NULL;
    size_t n = 0;
    assert_int_equal (bctx_link_next (in, &t, &b, &n), 1);
    assert_true (t == tag);
    assert_int_equal (n, len);
    if (len)
        assert_memory_equal (b, body, len);
}

/* The 12 bytes of a frame's head: length n (tag and body), then tag. */
static void
s_head (unsigned char head[12], uint32_t n, uint64_t tag)
{
    for (int i = 0; i < 4; i++)
        head[i] = (unsigned char) (n >> (8 * i));
    for (int i = 0; i < 8; i++)
        head[4 + i] = (unsigned char) (tag >> (8 * i));
}

static void
test_frames_come_back_whole (void **state)
{
    (void) state;
    int fds[2];
    s_pair (fds);
    bctx_bytes_t out = { 0 }, in = { 0 };
    const char binary[] = { 'a', '\0', '\n', (char) 0xff, 'z' };
    bctx_link_put (&out, 1, "{\"op\":\"send\"}", 13);
    bctx_link_put (&out, 0, "", 0);
    bctx_link_put (&out, UINT64_MAX, binary, sizeof binary);
    /* The wire format, byte by byte: little-endian length, then tag. */
    assert_int_equal (out.len, 3 * 12 + 13 + 0 + sizeof binary);
    unsigned char head[12];
    s_head (head, 8 + 13, 1);
    assert_memory_equal (out.data, head, 12);
    assert_memory_equal (out.data + 12, "{\"op\":\"send\"}", 13);

    assert_int_equal (bctx_link_flush (fds[0], &out), 0);
    assert_int_equal (out.len, 0);
    assert_int_equal (out.off, 0);
    assert_int_equal (bctx_link_fill (fds[1], &in), 1);
    assert_int_equal (bctx_link_ready (&in), 1);
    s_expect (&in, 1, "{\"op\":\"send\"}", 13);
    s_expect (&in, 0, "", 0);
    s_expect (&in, UINT64_MAX, binary, sizeof binary);
    /* All taken: nothing waits, and nothing more is read. */
    assert_int_equal (bctx_link_ready (&in), 0);
    uint64_t tag;
    const char *body;
    size_t len;
    assert_int_equal (bctx_link_next (&in, &tag, &body, &len), 0);
    assert_int_equal (bctx_link_fill (fds[1], &in), 0);
    bctx_bytes_clear (&out);
    bctx_bytes_clear (&in);
    assert_null (in.data);
    assert_int_equal (in.len, 0);
    close (fds[0]);
    close (fds[1]);
}

static void
test_a_frame_in_pieces_waits_until_whole (void **state)
{
    (void) state;
    int fds[2];
    s_pair (fds);
    bctx_bytes_t out = { 0 }, in = { 0 };
    bctx_link_put (&out, 42, "hello", 5);
    bctx_link_put (&out, 43, "world!", 6);
    size_t total = out.len;
    size_t first_end = 12 + 5;
    uint64_t tag;
    const char *body;
    size_t len;
    /* One byte a write, one fill each: a frame is taken only once whole. */
    for (size_t i = 0; i < total; i++) {
        assert_int_equal (send (fds[0], out.data + i, 1, 0), 1);
        assert_int_equal (bctx_link_fill (fds[1], &in), 1);
        if (i + 1 < first_end) {
            assert_int_equal (bctx_link_ready (&in), 0);
            assert_int_equal (bctx_link_next (&in, &tag, &body, &len), 0);
        } else if (i + 1 == first_end) {
            s_expect (&in, 42, "hello", 5);
        } else if (i + 1 < total) {
            assert_int_equal (bctx_link_next (&in, &tag, &body, &len), 0);
        }
    }
    s_expect (&in, 43, "world!", 6);
    assert_int_equal (bctx_link_next (&in, &tag, &body, &len), 0);
    bctx_bytes_clear (&out);
    bctx_bytes_clear (&in);
    close (fds[0]);
    close (fds[1]);
}

static void
test_many_frames_in_one_read (void **state)
{
    (void) state;
    int fds[2];
    s_pair (fds);
    bctx_bytes_t out = { 0 }, in = { 0 };
    enum { N = 2000 };
    for (uint64_t i = 0; i < N; i++) {
        char body[32];
        int n = snprintf (body, sizeof body, "frame %llu", (unsigned long long) i);
        bctx_link_put (&out, i * 7, body, (size_t) n);
    }
    /* Written and read in turns, as much as each side takes. */
    size_t taken = 0;
    for (int round = 0; round < 10000 && taken < N; round++) {
        assert_int_equal (bctx_link_flush (fds[0], &out), 0);
        assert_true (bctx_link_fill (fds[1], &in) >= 0);
        uint64_t tag;
        const char *body;
        size_t len;
        int rc;
        while ((rc = bctx_link_next (&in, &tag, &body, &len)) == 1) {
            char expected[32];
            int n = snprintf (expected, sizeof expected, "frame %zu", taken);
            assert_true (tag == (uint64_t) taken * 7);
            assert_int_equal (len, (size_t) n);
            assert_memory_equal (body, expected, len);
            taken++;
        }
        assert_int_equal (rc, 0);
    }
    assert_int_equal (taken, N);
    assert_int_equal (out.len, 0);
    bctx_bytes_clear (&out);
    bctx_bytes_clear (&in);
    close (fds[0]);
    close (fds[1]);
}

static void
test_a_large_frame_through_partial_writes (void **state)
{
    (void) state;
    int fds[2];
    s_pair (fds);
    /* Far more than a socket's buffer: the flush writes part of it and
     * keeps the rest for the next. */
    size_t size = 4u * 1024 * 1024;
    char *big = malloc (size);
    assert_non_null (big);
    for (size_t i = 0; i < size; i++)
        big[i] = (char) (i * 31 + 7);
    bctx_bytes_t out = { 0 }, in = { 0 };
    bctx_link_put (&out, 5, big, size);
    bctx_link_put (&out, 6, "after", 5);
    assert_int_equal (bctx_link_flush (fds[0], &out), 0);
    assert_true (out.off > 0);
    assert_true (out.off < out.len);
    int frames = 0;
    for (int round = 0; round < 100000 && frames < 2; round++) {
        assert_int_equal (bctx_link_flush (fds[0], &out), 0);
        assert_true (bctx_link_fill (fds[1], &in) >= 0);
        if (frames == 0 && bctx_link_ready (&in)) {
            s_expect (&in, 5, big, size);
            frames++;
        }
        if (frames == 1 && bctx_link_ready (&in)) {
            s_expect (&in, 6, "after", 5);
            frames++;
        }
    }
    assert_int_equal (frames, 2);
    assert_int_equal (out.len, 0);
    free (big);
    bctx_bytes_clear (&out);
    bctx_bytes_clear (&in);
    close (fds[0]);
    close (fds[1]);
}

/* Sends a frame head of length n (and nothing else) through a fresh
 * pair.  Return what bctx_link_next then says. */
static int
s_next_after_head (uint32_t n)
{
    int fds[2];
    s_pair (fds);
    unsigned char head[12];
    s_head (head, n, 77);
    assert_int_equal (send (fds[0], head, sizeof head, 0), (ssize_t) sizeof head);
    bctx_bytes_t in = { 0 };
    assert_int_equal (bctx_link_fill (fds[1], &in), 1);
    uint64_t tag = 0;
    const char *body = NULL;
    size_t len = 0;
    int rc = bctx_link_next (&in, &tag, &body, &len);
    if (rc != 1)
        assert_int_equal (in.off, 0);   /* nothing taken */
    bctx_bytes_clear (&in);
    close (fds[0]);
    close (fds[1]);
    return rc;
}

static void
test_a_length_out_of_bounds_is_garbage (void **state)
{
    (void) state;
    /* Over the longest frame: refused before any body is waited for. */
    assert_int_equal (s_next_after_head (BCTX_LINK_MAX_FRAME + 1), -1);
    assert_int_equal (s_next_after_head (UINT32_MAX), -1);
    /* Too short to hold the tag. */
    assert_int_equal (s_next_after_head (7), -1);
    assert_int_equal (s_next_after_head (0), -1);
    /* At the bounds: a frame still on its way, or an empty body. */
    assert_int_equal (s_next_after_head (BCTX_LINK_MAX_FRAME), 0);
    assert_int_equal (s_next_after_head (9), 0);
    assert_int_equal (s_next_after_head (8), 1);
}

static void
test_an_ended_link (void **state)
{
    (void) state;
    int fds[2];
    s_pair (fds);
    bctx_bytes_t out = { 0 }, in = { 0 };
    /* What was written before the end is still read, then the end. */
    bctx_link_put (&out, 3, "last", 4);
    assert_int_equal (bctx_link_flush (fds[0], &out), 0);
    close (fds[0]);
    assert_int_equal (bctx_link_fill (fds[1], &in), 1);
    s_expect (&in, 3, "last", 4);
    assert_int_equal (bctx_link_fill (fds[1], &in), -1);
    /* Writing to a link whose other end is gone: -1, and no SIGPIPE. */
    bctx_link_put (&out, 4, "lost", 4);
    assert_int_equal (bctx_link_flush (fds[1], &out), -1);
    assert_int_equal (bctx_link_write (fds[1], &out, 100), -1);
    bctx_bytes_clear (&out);
    bctx_bytes_clear (&in);
    close (fds[1]);
}

/* Waits (5 s at most) until fd is readable. */
static void
s_readable (int fd)
{
    struct pollfd p = { fd, POLLIN, 0 };
    assert_int_equal (poll (&p, 1, 5000), 1);
}

static void
test_listen_connect_accept (void **state)
{
    (void) state;
    const char *tmp = getenv ("TMPDIR");
    char dir[256], path[320];
    snprintf (dir, sizeof dir, "%s/bctx-test-link-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    assert_non_null (mkdtemp (dir));
    snprintf (path, sizeof path, "%s/cmd-x.sock", dir);
    /* Nothing listens yet. */
    assert_int_equal (bctx_link_connect (path), -1);
    /* A file left at the path (a crashed process's socket) is replaced. */
    FILE *stale = fopen (path, "w");
    assert_non_null (stale);
    fclose (stale);
    char err[512] = "";
    int listener = bctx_link_listen (path, err, sizeof err);
    if (listener < 0)
        fail_msg ("bctx_link_listen: %s", err);
    int client = bctx_link_connect (path);
    assert_true (client >= 0);
    s_readable (listener);
    int server = bctx_link_accept (listener);
    assert_true (server >= 0);
    /* Nothing accepted twice. */
    assert_int_equal (bctx_link_accept (listener), -1);

    /* A command one way, its reply the other, under the same tag. */
    bctx_bytes_t out = { 0 }, in = { 0 };
    bctx_link_put (&out, 1234, "ping", 4);
    assert_int_equal (bctx_link_write (client, &out, 5000), 0);
    s_readable (server);
    assert_int_equal (bctx_link_fill (server, &in), 1);
    s_expect (&in, 1234, "ping", 4);
    bctx_link_put (&out, 1234, "pong", 4);
    assert_int_equal (bctx_link_write (server, &out, 5000), 0);
    s_readable (client);
    assert_int_equal (bctx_link_fill (client, &in), 1);
    s_expect (&in, 1234, "pong", 4);
    /* The client goes: the server's side ends. */
    close (client);
    s_readable (server);
    assert_int_equal (bctx_link_fill (server, &in), -1);
    close (server);
    close (listener);
    bctx_bytes_clear (&out);
    bctx_bytes_clear (&in);

    /* A path too long for a Unix socket is refused with its name. */
    char longpath[200];
    memset (longpath, 'x', sizeof longpath - 1);
    longpath[0] = '/';
    longpath[sizeof longpath - 1] = '\0';
    assert_int_equal (bctx_link_listen (longpath, err, sizeof err), -1);
    assert_non_null (strstr (err, "too long for a Unix socket"));
    assert_non_null (strstr (err, longpath));
    assert_int_equal (bctx_link_connect (longpath), -1);
    unlink (path);
    assert_int_equal (rmdir (dir), 0);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_frames_come_back_whole),
        cmocka_unit_test (test_a_frame_in_pieces_waits_until_whole),
        cmocka_unit_test (test_many_frames_in_one_read),
        cmocka_unit_test (test_a_large_frame_through_partial_writes),
        cmocka_unit_test (test_a_length_out_of_bounds_is_garbage),
        cmocka_unit_test (test_an_ended_link),
        cmocka_unit_test (test_listen_connect_accept),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
