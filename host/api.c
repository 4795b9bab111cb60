/*
 * api - the ROUTERs clients talk to, and the one place a request's frames,
 * size, JSON, op and role are checked before the op's handler runs.
 *
 * A client's return address is its routing envelope: every frame before
 * the empty delimiter (one for a direct client, more behind a broker or a
 * forwarding host).  It is kept as one byte string: first the socket it
 * came in on (BCTX_API_PUBLIC or BCTX_API_ADMIN), then each frame as one
 * length byte and its bytes.
 */

#include "api.h"
#include "route.h"
#include "util.h"
#include "frames.h"
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#define S_FRAMES  8               /* most frames of a request kept */
#define S_BATCH   256             /* most requests per socket per turn */

/* One op's handler. */
typedef struct {
    bctx_api_handler_fn *fn;      /* NULL: none registered */
    void *arg;                    /* passed to fn (borrowed) */
} s_handler_t;

/* A socket's reader: which of the API's sockets. */
typedef struct {
    bctx_api_t *api;              /* the API (borrowed) */
    int which;                    /* BCTX_API_PUBLIC or BCTX_API_ADMIN */
} s_reader_t;

struct bctx_api {
    size_t max_message;           /* host.max_message */
    void *router;                 /* the public API socket */
    void *admin;                  /* the admin endpoint's ROUTER (ipc, 0700 folder) */
    char *admin_endpoint;         /* its address: ipc://<host.data, absolute>/run/admin.sock */
    bctx_security_t *security;    /* the roles of CURVE keys (borrowed), or NULL */
    unsigned admin_role;          /* the role of what comes on the admin endpoint:
                                     admin, and on a context process's link also
                                     its supervisor's */
    s_handler_t handlers[BCTX_OP_COUNT]; /* by BCTX_OP_* */
    s_handler_t route;            /* of the sends routed unparsed, or none */
    s_reader_t readers[2];        /* by BCTX_API_PUBLIC / _ADMIN */
    bctx_api_counters_t counters; /* what was counted */
};

bctx_api_t *
bctx_api_new (size_t max_message)
{
    bctx_api_t *self = calloc (1, sizeof *self);
    self->max_message = max_message;
    return self;
}

void
bctx_api_handle (bctx_api_t *self, int op, bctx_api_handler_fn *fn, void *arg)
{
    if (op >= 0 && op < BCTX_OP_COUNT)
        self->handlers[op] = (s_handler_t) { fn, arg };
}

void
bctx_api_route_sends (bctx_api_t *self, bctx_api_handler_fn *fn, void *arg)
{
    self->route = (s_handler_t) { fn, arg };
}

void
bctx_api_count (bctx_api_t *self, const char *code)
{
    if (!code)
        return;
    if (strcmp (code, BCTX_E_BAD_REQUEST) == 0)
        self->counters.bad++;
    else if (strcmp (code, BCTX_E_FORBIDDEN) == 0)
        self->counters.forbidden++;
    else if (strcmp (code, BCTX_E_TOO_LARGE) == 0)
        self->counters.too_large++;
}

int
bctx_api_unhandled (const bctx_api_t *self)
{
    for (int op = 0; op < BCTX_OP_COUNT; op++)
        if (!self->handlers[op].fn)
            return op;
    return -1;
}

/* Makes <host.data>/run, 0700 and this user's, and the admin endpoint's
 * address in it into endpoint.  Return 0, or -1 with the reason. */
static int
s_admin_path (const char *data_dir, char *endpoint, size_t size, char *err, size_t errlen)
{
    char *data = realpath (data_dir, NULL);
    char run[4096];
    if (!data || snprintf (run, sizeof run, "%s/run", data) >= (int) sizeof run) {
        snprintf (err, errlen, "host.data: %s: %s", data_dir,
                  data ? "path too long" : strerror (errno));
        free (data);
        return -1;
    }
    free (data);
    struct stat st;
    if (mkdir (run, 0700) < 0 && errno != EEXIST) {
        snprintf (err, errlen, "host.data: cannot create %s: %s", run, strerror (errno));
        return -1;
    }
    if (lstat (run, &st) < 0 || !S_ISDIR (st.st_mode) || st.st_uid != geteuid ()
        || chmod (run, 0700) < 0) {
        snprintf (err, errlen, "host.data: %s must be a folder owned by this user (uid %u), "
                  "for the admin endpoint; remove it or fix its owner", run,
                  (unsigned) geteuid ());
        return -1;
    }
    /* A Unix socket's path has room for 107 bytes. */
    snprintf (endpoint, size, "ipc://%s/admin.sock", run);
    if (strlen (endpoint) - 6 > 107) {
        snprintf (err, errlen, "host.data: the admin socket %s is %zu bytes long, over the "
                  "107 a Unix socket allows: give host.data a shorter path", endpoint + 6,
                  strlen (endpoint) - 6);
        return -1;
    }
    return 0;
}

/* The admin endpoint: a ROUTER on ipc://<host.data>/run/admin.sock, the
 * folder made 0700 and owned by this user, so that only the host's own OS
 * user (and root) can connect: file permissions are its authentication,
 * as for docker.sock.  link: another ipc address in that folder to bind
 * instead (a context process's link), or NULL.  Return 0, or -1 with the
 * reason. */
static int
s_open_admin (bctx_api_t *self, void *zctx, const char *data, const char *link,
              char *err, size_t errlen)
{
    char endpoint[4200];
    if (s_admin_path (data, endpoint, sizeof endpoint, err, errlen) < 0)
        return -1;
    if (link)
        snprintf (endpoint, sizeof endpoint, "%s", link);
    self->admin = zmq_socket (zctx, ZMQ_ROUTER);
    int one = 1, hwm = 0;
    zmq_setsockopt (self->admin, ZMQ_ROUTER_MANDATORY, &one, sizeof one);
    zmq_setsockopt (self->admin, ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_setsockopt (self->admin, ZMQ_RCVHWM, &hwm, sizeof hwm);
    if (zmq_bind (self->admin, endpoint) != 0) {
        snprintf (err, errlen, "admin endpoint: cannot bind %s: %s", endpoint,
                  zmq_strerror (zmq_errno ()));
        return -1;
    }
    self->admin_endpoint = strdup (endpoint);
    return 0;
}

int
bctx_api_bind (bctx_api_t *self, void *zctx, const bctx_config_t *config,
               bctx_security_t *security, char *err, size_t errlen)
{
    self->security = security;
    self->admin_role = BCTX_ROLE_ADMIN;
    /* A context process serves only its link to the supervisor, which
     * checked each request's role: it comes in as the admin's, and the
     * supervisor's own steps of a handover come on it too. */
    if (config->only) {
        self->admin_role = BCTX_ROLE_ADMIN | BCTX_ROLE_SUPERVISOR;
        return s_open_admin (self, zctx, config->data, config->api, err, errlen);
    }
    self->router = zmq_socket (zctx, ZMQ_ROUTER);
    int one = 1, hwm = 0;
    zmq_setsockopt (self->router, ZMQ_ROUTER_MANDATORY, &one, sizeof one);
    zmq_setsockopt (self->router, ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_setsockopt (self->router, ZMQ_RCVHWM, &hwm, sizeof hwm);
    /* Requests over max_message get a too_large reply; far bigger ones are
     * cut off by the transport so one client cannot exhaust memory. */
    int64_t cutoff = (int64_t) config->max_message * 16 + 65536;
    zmq_setsockopt (self->router, ZMQ_MAXMSGSIZE, &cutoff, sizeof cutoff);
    bctx_security_server (security, self->router);
    if (zmq_bind (self->router, config->api) != 0) {
        snprintf (err, errlen, "host.api: cannot bind %s: %s", config->api,
                  zmq_strerror (zmq_errno ()));
        return -1;
    }
    /* The HTTP gateway's way in, in this process only: every role check
     * and error code stays the API's own. */
    if (s_open_admin (self, zctx, config->data, NULL, err, errlen) < 0)
        return -1;
    if (zmq_bind (self->router, BCTX_API_INPROC) != 0
        || zmq_bind (self->admin, BCTX_API_ADMIN_INPROC) != 0) {
        snprintf (err, errlen, "api: cannot bind %s: %s", BCTX_API_INPROC,
                  zmq_strerror (zmq_errno ()));
        return -1;
    }
    return 0;
}

/* Encodes the socket and frames[0..n-1] into out.  Return the length, or
 * 0 when a frame is empty or longer than 255 bytes or the whole does not
 * fit. */
static size_t
s_envelope_encode (int socket, zmq_msg_t *frames, int n, unsigned char *out, size_t cap)
{
    size_t len = 0;
    out[len++] = (unsigned char) socket;
    for (int i = 0; i < n; i++) {
        size_t f = zmq_msg_size (&frames[i]);
        if (f == 0 || f > 255 || len + 1 + f > cap)
            return 0;
        out[len++] = (unsigned char) f;
        memcpy (out + len, zmq_msg_data (&frames[i]), f);
        len += f;
    }
    return len;
}

/* Sends the envelope's frames with ZMQ_SNDMORE on socket.  Return 0/-1. */
static int
s_envelope_send (void *socket, const unsigned char *env, size_t len)
{
    for (size_t at = 0; at < len;) {
        size_t f = env[at++];
        if (at + f > len || zmq_send (socket, env + at, f, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0)
            return -1;
        at += f;
    }
    return 0;
}

void
bctx_api_send (bctx_api_t *self, const unsigned char *envelope, size_t envelope_len,
               int delimiter, const char *reply)
{
    if (envelope_len < 1)
        return;
    void *socket = envelope[0] == BCTX_API_ADMIN ? self->admin : self->router;
    if (!socket)
        return;
    if (s_envelope_send (socket, envelope + 1, envelope_len - 1) < 0) {
        if (zmq_errno () == EHOSTUNREACH)
            bctx_log (BCTX_LOG_INFO, "client left before its reply");
        else
            bctx_log (BCTX_LOG_WARN, "cannot reply: %s", zmq_strerror (zmq_errno ()));
        return;
    }
    if (delimiter)
        zmq_send (socket, "", 0, ZMQ_SNDMORE);
    zmq_send (socket, reply, strlen (reply), 0);
}

char *
bctx_request_error (bctx_request_t *req, const char *code, const char *fmt, ...)
{
    char message[512];
    va_list ap;
    va_start (ap, fmt);
    vsnprintf (message, sizeof message, fmt, ap);
    va_end (ap);
    req->code = code;
    return bctx_reply_error (code, "%s", message);
}

/* Runs the op's handler, once the op is known and the role may use it. */
static char *
s_dispatch (bctx_api_t *self, bctx_request_t *req)
{
    const s_handler_t *h = &self->handlers[req->op->id];
    if (!h->fn)
        return bctx_request_error (req, BCTX_E_INTERNAL, "op \"%s\" has no handler",
                                   req->op->name);
    return h->fn (h->arg, req);
}

char *
bctx_api_request (bctx_api_t *self, const char *body, size_t len, unsigned role,
                  const unsigned char *envelope, size_t envelope_len, int delimiter)
{
    if (len > self->max_message) {
        self->counters.too_large++;
        return bctx_reply_error (BCTX_E_TOO_LARGE,
                                 "request of %zu bytes is over the limit of %zu (host.max_message)",
                                 len, self->max_message);
    }
    bctx_request_t req = { .role = role, .envelope = envelope, .envelope_len = envelope_len,
                           .delimiter = delimiter, .text = body, .text_len = len };
    /* A plain "send" goes on unparsed: the context process that decides
     * it parses it, once. */
    bctx_route_t route;
    if (self->route.fn && bctx_route_read (body, len, &route)) {
        req.op = bctx_op_find ("send");
        req.route = &route;
        if (req.op->roles & role) {
            char *reply = self->route.fn (self->route.arg, &req);
            if (!req.parse) {
                bctx_api_count (self, req.code);
                return reply;
            }
            free (reply);
        }
        req.route = NULL;
        req.code = NULL;
    }
    json_error_t jerr;
    json_t *json = json_loadb (body, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!json) {
        self->counters.bad++;
        return bctx_reply_error (BCTX_E_BAD_REQUEST,
                                 "malformed JSON at line %d, column %d: %s",
                                 jerr.line, jerr.column, jerr.text);
    }
    req.body = json;
    char *reply = NULL;
    const char *name = json_string_value (json_object_get (json, "op"));
    req.op = bctx_op_find (name);
    if (!json_is_object (json)) {
        reply = bctx_request_error (&req, BCTX_E_BAD_REQUEST, "a request is a JSON object");
    } else if (!name) {
        reply = bctx_request_error (&req, BCTX_E_BAD_REQUEST, "\"op\" must be a string");
    } else if (!req.op) {
        reply = bctx_request_error (&req, BCTX_E_BAD_REQUEST, "unknown op \"%s\"", name);
    } else if (!(req.op->roles & role)) {
        req.code = BCTX_E_FORBIDDEN;
        reply = bctx_reply_forbidden (req.op->name, role, bctx_op_is_admin (req.op)
                                                          ? self->admin_endpoint : NULL);
        bctx_log (BCTX_LOG_INFO, "refused %s from a %s connection: forbidden", req.op->name,
                  bctx_role_name (role));
    } else {
        reply = s_dispatch (self, &req);
    }
    if (req.code && strcmp (req.code, BCTX_E_TOO_LARGE) != 0)
        bctx_api_count (self, req.code);
    json_decref (json);
    return reply;
}

/* Takes one message from a ROUTER (BCTX_API_PUBLIC or _ADMIN) and answers
 * it or hands it on.  Return 0 when none was waiting. */
static int
s_on_request (bctx_api_t *self, int which)
{
    void *socket = which == BCTX_API_ADMIN ? self->admin : self->router;
    zmq_msg_t frames[S_FRAMES];
    int n = bctx_frames_recv (socket, frames, S_FRAMES);
    if (n == 0)
        return 0;
    self->counters.requests++;
    int kept = n < S_FRAMES ? n : S_FRAMES;
    char *reply = NULL;
    /* The envelope ends at the first empty frame; a DEALER that sends no
     * delimiter has its routing id alone as envelope. */
    int empty = -1;
    for (int i = 1; i < kept && empty < 0; i++)
        if (zmq_msg_size (&frames[i]) == 0)
            empty = i;
    int delimiter = empty > 0;
    int envelope_n = delimiter ? empty : 1;
    int body_at = delimiter ? empty + 1 : 1;
    unsigned char env[BCTX_API_ENVELOPE_MAX];
    size_t env_len = n >= 2 ? s_envelope_encode (which, frames, envelope_n, env, sizeof env)
                            : 0;
    if (env_len == 0) {
        /* Nothing to answer to (a lone frame, or an envelope too big). */
        self->counters.bad++;
    } else {
        if (body_at >= kept || n != body_at + 1) {
            self->counters.bad++;
            reply = bctx_reply_error (BCTX_E_BAD_REQUEST,
                                      "a request is one frame of JSON after at most %d "
                                      "envelope frames, got %d frames", S_FRAMES - 2, n);
        } else {
            /* The admin endpoint is admin; the public API's role comes
             * from the connection's CURVE key (client without keys). */
            unsigned role = which == BCTX_API_ADMIN
                            ? self->admin_role
                            : bctx_security_role (self->security,
                                                  zmq_msg_gets (&frames[body_at], "User-Id"));
            if (!role) {
                self->counters.bad++;
                reply = bctx_reply_error (BCTX_E_FORBIDDEN, "this connection has no role");
            } else {
                reply = bctx_api_request (self, zmq_msg_data (&frames[body_at]),
                                          zmq_msg_size (&frames[body_at]), role, env, env_len,
                                          delimiter);
            }
        }
        if (reply)
            bctx_api_send (self, env, env_len, delimiter, reply);
    }
    free (reply);
    for (int i = 0; i < kept; i++)
        zmq_msg_close (&frames[i]);
    return 1;
}

/* A ROUTER is readable: a bounded number of requests per turn, so the
 * workers' replies are never starved.  The receive itself says when
 * none is left (asking ZMQ_EVENTS first would cost as much again). */
static int
s_on_readable (void *arg)
{
    s_reader_t *r = arg;
    for (int i = 0; i < S_BATCH && s_on_request (r->api, r->which); i++)
        ;
    return BCTX_LOOP_GO_ON;
}

void
bctx_api_attach (bctx_api_t *self, bctx_loop_t *loop)
{
    self->readers[BCTX_API_PUBLIC] = (s_reader_t) { self, BCTX_API_PUBLIC };
    self->readers[BCTX_API_ADMIN] = (s_reader_t) { self, BCTX_API_ADMIN };
    if (self->router)
        bctx_loop_reader (loop, self->router, 0, s_on_readable, &self->readers[BCTX_API_PUBLIC]);
    bctx_loop_reader (loop, self->admin, 0, s_on_readable, &self->readers[BCTX_API_ADMIN]);
}

const bctx_api_counters_t *
bctx_api_counters (const bctx_api_t *self)
{
    return &self->counters;
}

const char *
bctx_api_admin_endpoint (const bctx_api_t *self)
{
    return self->admin_endpoint;
}

void
bctx_api_destroy (bctx_api_t **self_p)
{
    BCTX_SELF_OR_RETURN (bctx_api_t, self_p);
    bctx_socket_close (&self->router);
    bctx_socket_close (&self->admin);
    free (self->admin_endpoint);
    free (self);
    *self_p = NULL;
}
