/*
 * worker_link - the worker's end of a context process's command link:
 * frames in as jobs, replies out in one write a batch.
 */

#include "worker_link.h"
#include "log.h"
#include "protocol.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

void
bctx_worker_link_init (bctx_worker_link_t *self)
{
    *self = (bctx_worker_link_t) { .listener = -1, .conn = -1 };
}

int
bctx_worker_link_listen (bctx_worker_link_t *self, const char *path, char *why,
                         size_t whylen)
{
    self->listener = bctx_link_listen (path, why, whylen);
    return self->listener < 0 ? -1 : 0;
}

int
bctx_worker_link_wait (bctx_worker_link_t *self, void *queue)
{
    if (bctx_link_ready (&self->in))
        return 0;                 /* frames read already */
    zmq_pollitem_t items[3] = {
        { queue, 0, ZMQ_POLLIN, 0 }, { NULL, self->listener, ZMQ_POLLIN, 0 },
        { NULL, self->conn, ZMQ_POLLIN, 0 },
    };
    while (zmq_poll (items, self->conn >= 0 ? 3 : 2, -1) < 0)
        if (zmq_errno () != EINTR)
            return -1;
    if (items[1].revents & ZMQ_POLLIN) {
        /* A supervisor (again, after a restart of its own link). */
        int fd = bctx_link_accept (self->listener);
        if (fd >= 0) {
            if (self->conn >= 0)
                close (self->conn);
            self->conn = fd;
            self->in.off = self->in.len = 0;
        }
    }
    return 0;
}

/* Answers the request of tag with an error reply (code, why), its refusal
 * noted in the reply's tag (link.h). */
static void
s_refuse (bctx_worker_link_t *self, uint64_t tag, int refusal, const char *code,
          const char *why)
{
    char *reply = bctx_reply_error (code, "%s", why);
    uint64_t marked = (tag & BCTX_LINK_TAG_MASK)
                      | ((uint64_t) -refusal << BCTX_LINK_TAG_BITS);
    bctx_link_put (&self->out, marked, reply, strlen (reply));
    free (reply);
}

bctx_job_t *
bctx_worker_link_take (bctx_worker_link_t *self)
{
    int filled = 0;
    while (self->conn >= 0) {
        uint64_t tag;
        const char *body;
        size_t len;
        int rc = bctx_link_next (&self->in, &tag, &body, &len);
        if (rc == 0 && !filled) {
            filled = 1;
            rc = bctx_link_fill (self->conn, &self->in) < 0 ? -1 : 2;
        }
        if (rc == 2)
            continue;
        if (rc < 0) {             /* the supervisor went, or sent garbage */
            close (self->conn);
            self->conn = -1;
        }
        if (rc <= 0)
            return NULL;
        /* Parsed here, once: the supervisor read only its routing keys. */
        json_error_t jerr;
        json_t *req = json_loadb (body, len, JSON_REJECT_DUPLICATES, &jerr);
        char why[400];
        const char *code = req ? bctx_send_check (req, why, sizeof why) : BCTX_E_BAD_REQUEST;
        if (code) {
            if (!req)
                snprintf (why, sizeof why, "malformed JSON at line %d, column %d: %s",
                          jerr.line, jerr.column, jerr.text);
            s_refuse (self, tag, BCTX_EBADREQUEST, code, why);
            json_decref (req);
            continue;
        }
        bctx_job_t *job = calloc (1, sizeof *job);
        job->link = 1;
        memcpy (job->identity, &tag, sizeof tag);
        job->identity_len = sizeof tag;
        const char *origin = json_string_value (json_object_get (req, "origin"));
        job->origin = origin && strcmp (origin, "reactor") == 0 ? BCTX_ORIGIN_REACTOR
                                                                : BCTX_ORIGIN_CLIENT;
        job->request = req;
        return job;
    }
    return NULL;
}

void
bctx_worker_link_put (bctx_worker_link_t *self, bctx_job_t *job)
{
    uint64_t tag;
    memcpy (&tag, job->identity, sizeof tag);
    const char *reply = job->reply ? job->reply : "{\"ok\":false}";
    if (self->conn >= 0)
        bctx_link_put (&self->out, tag, reply, strlen (reply));
    bctx_job_destroy (&job);
}

void
bctx_worker_link_flush (bctx_worker_link_t *self, const char *name)
{
    if (self->conn < 0 || self->out.off >= self->out.len)
        return;
    if (bctx_link_write (self->conn, &self->out, 5000) < 0) {
        bctx_log (BCTX_LOG_WARN, "context %s: its supervisor does not read its command "
                  "link; it answers \"unavailable\"", name);
        close (self->conn);
        self->conn = -1;
        self->out.off = self->out.len = 0;
    }
}

void
bctx_worker_link_close (bctx_worker_link_t *self)
{
    if (self->conn >= 0)
        close (self->conn);
    if (self->listener >= 0)
        close (self->listener);
    self->conn = self->listener = -1;
    bctx_bytes_clear (&self->in);
    bctx_bytes_clear (&self->out);
}
