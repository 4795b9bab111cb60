/*
 * frames - one multipart ZeroMQ message read without blocking, its first
 * frames kept and the rest dropped: how the relay reads its children's
 * links, peers their DEALERs and the api its ROUTERs (a message of more
 * frames than expected is read whole, so the next one starts at a message
 * boundary).
 */
#ifndef BCTX_FRAMES_H
#define BCTX_FRAMES_H

#include <zmq.h>

/* Receives the message waiting on socket (borrowed), ZMQ_DONTWAIT: its
 * first max frames into frames (the caller closes the first n of them,
 * or max when n is larger), the others closed here.  Return n, how many
 * frames the message had: 0 when none waits. */
int bctx_frames_recv (void *socket, zmq_msg_t *frames, int max);

#endif
