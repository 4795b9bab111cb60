/*
 * frames - a multipart message read whole, its first frames kept.
 */

#include "frames.h"

int
bctx_frames_recv (void *socket, zmq_msg_t *frames, int max)
{
    int n = 0, more = 1;
    while (more) {
        zmq_msg_t scratch, *m = n < max ? &frames[n] : &scratch;
        zmq_msg_init (m);
        if (zmq_msg_recv (m, socket, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close (m);
            break;
        }
        more = zmq_msg_more (m);
        if (n >= max)
            zmq_msg_close (m);
        n++;
    }
    return n;
}
