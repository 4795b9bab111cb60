/*
 * http - the HTTP/JSON gateway: routes to wire requests, one ZeroMQ REQ
 * socket per HTTP request on this process's inproc API endpoints, and the
 * web console's files (console.c) at /, /console.css and /console.js.
 * libmicrohttpd runs a thread per connection, so a call may block.
 */

#include "http.h"
#include "api.h"
#include "console.h"
#include "protocol.h"
#include "util.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

struct bctx_http {
    struct MHD_Daemon *daemon;    /* the server, with its threads */
    void *zctx;                   /* the host's ZeroMQ context (borrowed) */
    const bctx_config_t *config;  /* the host's config (borrowed) */
    atomic_int stopping;          /* set by destroy: calls and streams end */
};

/* One HTTP request being read. */
typedef struct {
    bctx_buf_t body;              /* the body read so far */
    int too_large;                /* it went over host.max_message (not kept) */
} s_upload_t;

unsigned
bctx_http_status (const char *code)
{
    static const struct { const char *code; unsigned status; } map[] = {
        { BCTX_E_BAD_REQUEST, 400 }, { BCTX_E_FORBIDDEN, 403 },
        { BCTX_E_UNKNOWN_CONTEXT, 404 }, { BCTX_E_UNKNOWN_COMMAND, 404 },
        { BCTX_E_UNKNOWN_PROJECTION, 404 }, { BCTX_E_CONFLICT, 409 },
        { BCTX_E_TOO_LARGE, 413 }, { BCTX_E_REJECTED, 422 },
        { BCTX_E_UNAVAILABLE, 503 }, { BCTX_E_INTERNAL, 500 },
    };
    if (!code)
        return 200;
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (strcmp (map[i].code, code) == 0)
            return map[i].status;
    return 500;
}

/* Sends req (borrowed) to the API (admin: the admin endpoint) and waits
 * for its reply, in slices so that a stop ends the wait.  Return: new
 * reply text (an "unavailable" error when none came). */
static char *
s_call (bctx_http_t *self, int admin, json_t *req)
{
    char *text = json_dumps (req, JSON_COMPACT);
    void *sock = zmq_socket (self->zctx, ZMQ_REQ);
    int zero = 0;
    zmq_setsockopt (sock, ZMQ_LINGER, &zero, sizeof zero);
    char *reply = NULL;
    if (zmq_connect (sock, admin ? BCTX_API_ADMIN_INPROC : BCTX_API_INPROC) == 0
        && zmq_send (sock, text, strlen (text), 0) >= 0) {
        zmq_pollitem_t item = { sock, 0, ZMQ_POLLIN, 0 };
        for (int slice = 0; slice < 300 && !atomic_load (&self->stopping); slice++)
            if (zmq_poll (&item, 1, 100) > 0) {
                zmq_msg_t msg;
                zmq_msg_init (&msg);
                if (zmq_msg_recv (&msg, sock, 0) >= 0)
                    reply = strndup (zmq_msg_data (&msg), zmq_msg_size (&msg));
                zmq_msg_close (&msg);
                break;
            }
    }
    zmq_close (sock);
    free (text);
    return reply ? reply : bctx_reply_error (BCTX_E_UNAVAILABLE,
                                             "the host's API did not answer in time");
}

/* Queues body (stolen) as the response, with its status and type. */
static enum MHD_Result
s_respond (struct MHD_Connection *conn, unsigned status, char *body, const char *type)
{
    struct MHD_Response *r = MHD_create_response_from_buffer (strlen (body), body,
                                                              MHD_RESPMEM_MUST_FREE);
    MHD_add_response_header (r, "Content-Type", type);
    enum MHD_Result ret = MHD_queue_response (conn, status, r);
    MHD_destroy_response (r);
    return ret;
}

/* Answers with the wire reply text (stolen), its status from its code. */
static enum MHD_Result
s_reply (struct MHD_Connection *conn, char *reply)
{
    json_t *j = json_loads (reply, 0, NULL);
    const char *code = json_is_true (json_object_get (j, "ok")) ? NULL
        : json_string_value (json_object_get (json_object_get (j, "error"), "code"));
    unsigned status = json_is_object (j) ? bctx_http_status (code) : 500;
    json_decref (j);
    return s_respond (conn, status, reply, "application/json");
}

/* An error of the gateway itself. */
static enum MHD_Result
s_error (struct MHD_Connection *conn, const char *code, const char *message)
{
    return s_reply (conn, bctx_reply_error (code, "%s", message));
}

/* A file of the web console (static, not copied), never cached stale and
 * under the console's strict Content-Security-Policy. */
static enum MHD_Result
s_console (struct MHD_Connection *conn, const bctx_console_file_t *file)
{
    struct MHD_Response *r = MHD_create_response_from_buffer (file->len, (void *) file->bytes,
                                                              MHD_RESPMEM_PERSISTENT);
    MHD_add_response_header (r, "Content-Type", file->type);
    MHD_add_response_header (r, "Cache-Control", "no-cache");
    MHD_add_response_header (r, "Content-Security-Policy", BCTX_CONSOLE_CSP);
    MHD_add_response_header (r, "X-Content-Type-Options", "nosniff");
    enum MHD_Result ret = MHD_queue_response (conn, 200, r);
    MHD_destroy_response (r);
    return ret;
}

/* Does the request carry the admin token?  0 when none is configured. */
static int
s_is_admin (bctx_http_t *self, struct MHD_Connection *conn)
{
    const char *auth = MHD_lookup_connection_value (conn, MHD_HEADER_KIND, "Authorization");
    const char *token = self->config->http_admin_token;
    if (!token || !auth || strncmp (auth, "Bearer ", 7) != 0)
        return 0;
    const char *given = auth + 7;
    size_t n = strlen (token), m = strlen (given);
    unsigned diff = (unsigned) (n ^ m);
    for (size_t i = 0; i < n; i++)
        diff |= (unsigned char) token[i] ^ (unsigned char) (i < m ? given[i] : 0);
    return diff == 0;
}

/* A query argument as an integer into *out (kept when absent).  Return
 * 0, or -1 when it is not one. */
static int
s_arg_int (struct MHD_Connection *conn, const char *name, json_int_t *out)
{
    const char *v = MHD_lookup_connection_value (conn, MHD_GET_ARGUMENT_KIND, name);
    if (!v)
        return 0;
    char *end;
    long long n = strtoll (v, &end, 10);
    if (!*v || *end || n < 0)
        return -1;
    *out = n;
    return 0;
}

/* Splits path into at most 5 parts (in buf).  Return the count, or -1. */
static int
s_split (const char *url, char *buf, size_t size, char **parts)
{
    if (strlen (url) >= size || url[0] != '/')
        return -1;
    strcpy (buf, url + 1);
    int n = 0;
    for (char *save = NULL, *p = strtok_r (buf, "/", &save); p; p = strtok_r (NULL, "/", &save)) {
        if (n == 5)
            return -1;
        parts[n++] = p;
    }
    return n;
}

/* One server-sent-events stream of a context's log: a page of events at
 * a time from `next` on, then the log polled every S_STREAM_POLL_MS once
 * caught up.  At most one page is held, so a slow client costs one page
 * and its thread, and MHD's connection timeout cuts one that stops
 * reading. */
#define S_STREAM_PAGE     100
#define S_STREAM_POLL_MS  100
#define S_STREAM_BEAT_MS  1000    /* a comment line this often when quiet */

typedef struct {
    bctx_http_t *http;            /* the gateway (borrowed) */
    char *context;                /* the context's name */
    json_int_t next;              /* the next position to send */
    bctx_buf_t out;               /* formatted, not yet sent */
    size_t sent;                  /* of out, already given to MHD */
} s_stream_t;

/* Fetches the page from s->next into s->out as SSE records.  Return the
 * number of events, or -1 (error reply text in *error, new) when the API
 * refused. */
static int
s_stream_page (s_stream_t *s, char **error)
{
    json_t *req = json_pack ("{s:s, s:s, s:I, s:I}", "op", "events", "context", s->context,
                             "from", s->next, "limit", (json_int_t) S_STREAM_PAGE);
    char *text = s_call (s->http, 0, req);
    json_decref (req);
    json_t *reply = json_loads (text, 0, NULL);
    if (!json_is_true (json_object_get (reply, "ok"))) {
        json_decref (reply);
        *error = text;
        return -1;
    }
    free (text);
    size_t i;
    json_t *event;
    json_array_foreach (json_object_get (reply, "events"), i, event) {
        json_int_t position = json_integer_value (json_object_get (event, "position"));
        char *line = json_dumps (event, JSON_COMPACT);
        char id[64];
        snprintf (id, sizeof id, "id: %lld\ndata: ", (long long) position);
        bctx_buf_add_str (&s->out, id);
        bctx_buf_add_str (&s->out, line);
        bctx_buf_add_str (&s->out, "\n\n");
        free (line);
        if (position >= s->next)
            s->next = position + 1;
    }
    int n = (int) json_array_size (json_object_get (reply, "events"));
    json_decref (reply);
    return n;
}

/* MHD's reader of a stream: what is formatted, else the next page, else
 * waits (in slices, ending at a stop) and sends a comment now and then. */
static ssize_t
s_stream_read (void *cls, uint64_t pos, char *buf, size_t max)
{
    (void) pos;
    s_stream_t *s = cls;
    int quiet_ms = 0;
    while (s->sent >= s->out.len) {
        if (atomic_load (&s->http->stopping))
            return MHD_CONTENT_READER_END_OF_STREAM;
        s->out.len = s->sent = 0;
        char *error = NULL;
        int n = s_stream_page (s, &error);
        if (n < 0) {
            free (error);             /* the context went, or the host stops */
            return MHD_CONTENT_READER_END_WITH_ERROR;
        }
        if (n > 0)
            break;
        if (quiet_ms >= S_STREAM_BEAT_MS) {
            bctx_buf_add_str (&s->out, ": quiet\n\n");
            break;
        }
        struct timespec nap = { 0, S_STREAM_POLL_MS * 1000000L };
        nanosleep (&nap, NULL);
        quiet_ms += S_STREAM_POLL_MS;
    }
    size_t n = s->out.len - s->sent < max ? s->out.len - s->sent : max;
    memcpy (buf, s->out.text + s->sent, n);
    s->sent += n;
    return (ssize_t) n;
}

static void
s_stream_free (void *cls)
{
    s_stream_t *s = cls;
    free (s->context);
    free (s->out.text);
    free (s);
}

/* GET /contexts/{c}/events/stream?from=N, or from Last-Event-ID + 1: the
 * first page is read before answering, so an unknown context is a 404. */
static enum MHD_Result
s_stream (bctx_http_t *self, struct MHD_Connection *conn, const char *context,
          json_int_t from)
{
    const char *last = MHD_lookup_connection_value (conn, MHD_HEADER_KIND, "Last-Event-ID");
    if (last) {
        char *end;
        long long id = strtoll (last, &end, 10);
        if (!*last || *end || id < 0)
            return s_error (conn, BCTX_E_BAD_REQUEST, "Last-Event-ID must be a position");
        from = id + 1;
    }
    s_stream_t *s = calloc (1, sizeof *s);
    *s = (s_stream_t) { .http = self, .context = strdup (context), .next = from < 1 ? 1 : from };
    char *error = NULL;
    if (s_stream_page (s, &error) < 0) {
        s_stream_free (s);
        return s_reply (conn, error);
    }
    struct MHD_Response *r = MHD_create_response_from_callback (MHD_SIZE_UNKNOWN, 16384,
                                                                s_stream_read, s,
                                                                s_stream_free);
    MHD_add_response_header (r, "Content-Type", "text/event-stream");
    MHD_add_response_header (r, "Cache-Control", "no-cache");
    enum MHD_Result ret = MHD_queue_response (conn, 200, r);
    MHD_destroy_response (r);
    return ret;
}

#include "metrics.h"

/* A GET: the read ops and /metrics. */
static enum MHD_Result
s_get (bctx_http_t *self, struct MHD_Connection *conn, char **p, int n)
{
    json_t *req = NULL;
    json_int_t from = 1, limit = 100, plimit = 0;
    if (s_arg_int (conn, "from", &from) < 0 || s_arg_int (conn, "limit", &limit) < 0
        || s_arg_int (conn, "limit", &plimit) < 0)
        return s_error (conn, BCTX_E_BAD_REQUEST, "from and limit must be integers >= 0");
    if (n == 1 && strcmp (p[0], "contexts") == 0)
        req = json_pack ("{s:s}", "op", "contexts");
    else if (n == 1 && strcmp (p[0], "stats") == 0)
        req = json_pack ("{s:s}", "op", "stats");
    else if (n == 1 && strcmp (p[0], "metrics") == 0) {
        json_t *stats = json_pack ("{s:s}", "op", "stats");
        char *reply = s_call (self, 0, stats);
        json_decref (stats);
        char *text = bctx_metrics_render (reply);
        free (reply);
        if (!text)
            return s_error (conn, BCTX_E_UNAVAILABLE, "no stats from the host");
        return s_respond (conn, 200, text, "text/plain; version=0.0.4; charset=utf-8");
    }
    else if (n == 4 && strcmp (p[0], "contexts") == 0 && strcmp (p[2], "events") == 0
             && strcmp (p[3], "stream") == 0)
        return s_stream (self, conn, p[1], from);
    else if (n == 3 && strcmp (p[0], "contexts") == 0 && strcmp (p[2], "events") == 0) {
        req = json_pack ("{s:s, s:s, s:I, s:I}", "op", "events", "context", p[1],
                         "from", from, "limit", limit);
        const char *agg = MHD_lookup_connection_value (conn, MHD_GET_ARGUMENT_KIND, "aggregate");
        if (req && agg)
            json_object_set_new (req, "aggregate", json_string (agg));
    }
    else if ((n == 2 || n == 3) && strcmp (p[0], "projections") == 0) {
        req = json_pack ("{s:s, s:s}", "op", "query", "projection", p[1]);
        const char *after = MHD_lookup_connection_value (conn, MHD_GET_ARGUMENT_KIND, "after");
        if (req && n == 3)
            json_object_set_new (req, "key", json_string (p[2]));
        if (req && n == 2 && after)
            json_object_set_new (req, "after", json_string (after));
        if (req && n == 2 && plimit > 0)
            json_object_set_new (req, "limit", json_integer (plimit));
    }
    else
        return s_error (conn, BCTX_E_BAD_REQUEST, "no such route (see docs/http.md)");
    if (!req)
        return s_error (conn, BCTX_E_BAD_REQUEST, "names must be UTF-8");
    char *reply = s_call (self, 0, req);
    json_decref (req);
    return s_reply (conn, reply);
}

/* A POST: a command, or an admin op. */
static enum MHD_Result
s_post (bctx_http_t *self, struct MHD_Connection *conn, char **p, int n, const bctx_buf_t *body)
{
    json_t *req = NULL;
    int admin = 0;
    if (n == 4 && strcmp (p[0], "contexts") == 0 && strcmp (p[2], "commands") == 0) {
        json_error_t jerr;
        json_t *data = json_loadb (body->text ? body->text : "", body->len, 0, &jerr);
        if (!json_is_object (data)) {
            json_decref (data);
            char msg[300];
            snprintf (msg, sizeof msg, "the body must be a JSON object%s%s (line %d, "
                      "column %d)", data ? "" : ": ", data ? "" : jerr.text, jerr.line,
                      jerr.column);
            return s_error (conn, BCTX_E_BAD_REQUEST, msg);
        }
        req = json_pack ("{s:s, s:s, s:s, s:o}", "op", "send", "context", p[1],
                         "command", p[3], "data", data);
        const char *id = MHD_lookup_connection_value (conn, MHD_HEADER_KIND, "Idempotency-Key");
        if (req && id)
            json_object_set_new (req, "id", json_string (id));
    }
    else if (n == 3 && strcmp (p[0], "contexts") == 0 && strcmp (p[2], "reload") == 0)
        admin = 1, req = json_pack ("{s:s, s:s}", "op", "reload", "context", p[1]);
    else if (n == 3 && strcmp (p[0], "projections") == 0 && strcmp (p[2], "replay") == 0)
        admin = 1, req = json_pack ("{s:s, s:s}", "op", "replay", "projection", p[1]);
    else if (n == 3 && strcmp (p[0], "reactors") == 0 && strcmp (p[2], "retry") == 0)
        admin = 1, req = json_pack ("{s:s, s:s}", "op", "retry", "reactor", p[1]);
    else
        return s_error (conn, BCTX_E_BAD_REQUEST, "no such route (see docs/http.md)");
    if (!req)
        return s_error (conn, BCTX_E_BAD_REQUEST, "names must be UTF-8");
    if (admin && !s_is_admin (self, conn)) {
        json_decref (req);
        return s_error (conn, BCTX_E_FORBIDDEN, self->config->http_admin_token
                        ? "admin ops need Authorization: Bearer with host.http_admin_token"
                        : "admin ops over HTTP are off: host.http_admin_token is not set");
    }
    char *reply = s_call (self, admin, req);
    json_decref (req);
    return s_reply (conn, reply);
}

/* libmicrohttpd's handler: reads the body (up to host.max_message), then
 * routes.  A Content-Length over the limit is answered before any of the
 * body is read. */
static enum MHD_Result
s_on_request (void *cls, struct MHD_Connection *conn, const char *url, const char *method,
              const char *version, const char *data, size_t *data_size, void **con_cls)
{
    (void) version;
    bctx_http_t *self = cls;
    s_upload_t *up = *con_cls;
    if (!up) {
        up = calloc (1, sizeof *up);
        *con_cls = up;
        const char *cl = MHD_lookup_connection_value (conn, MHD_HEADER_KIND, "Content-Length");
        if (cl && strtoull (cl, NULL, 10) > self->config->max_message)
            up->too_large = 1;
        else
            return MHD_YES;
    }
    else if (*data_size) {
        if (up->body.len + *data_size > self->config->max_message)
            up->too_large = 1;
        if (!up->too_large)
            bctx_buf_add (&up->body, data, *data_size);
        *data_size = 0;
        return MHD_YES;
    }
    if (up->too_large) {
        char msg[200];
        snprintf (msg, sizeof msg, "the body is over the limit of %zu bytes (host.max_message)",
                  self->config->max_message);
        return s_error (conn, BCTX_E_TOO_LARGE, msg);
    }
    bctx_console_file_t file;
    if (strcmp (method, "GET") == 0 && bctx_console_find (url, &file) == 0)
        return s_console (conn, &file);
    char buf[1024], *parts[5];
    int n = s_split (url, buf, sizeof buf, parts);
    if (n < 0)
        return s_error (conn, BCTX_E_BAD_REQUEST, "no such route (see docs/http.md)");
    if (strcmp (method, "GET") == 0)
        return s_get (self, conn, parts, n);
    if (strcmp (method, "POST") == 0)
        return s_post (self, conn, parts, n, &up->body);
    return s_error (conn, BCTX_E_BAD_REQUEST, "only GET and POST are served");
}

/* Frees a request's upload state. */
static void
s_on_done (void *cls, struct MHD_Connection *conn, void **con_cls,
           enum MHD_RequestTerminationCode why)
{
    (void) cls, (void) conn, (void) why;
    s_upload_t *up = *con_cls;
    if (up) {
        free (up->body.text);
        free (up);
    }
    *con_cls = NULL;
}

/* host.http ("HOST:PORT", HOST an IPv4 address, localhost or an IPv6
 * one in brackets, "[::1]:7780") into sa.  Return 0, or -1 with err. */
static int
s_address (const char *http, struct sockaddr_storage *sa, int *ipv6, char *err, size_t errlen)
{
    char host[256];
    const char *colon = strrchr (http, ':');
    char *end = NULL;
    unsigned long port = colon ? strtoul (colon + 1, &end, 10) : 0;
    size_t hn = colon ? (size_t) (colon - http) : 0;
    if (!colon || port == 0 || port > 65535 || *end || hn == 0 || hn >= sizeof host) {
        snprintf (err, errlen, "host.http: \"%s\" is not HOST:PORT (e.g. 127.0.0.1:7780, "
                  "or [::1]:7780)", http);
        return -1;
    }
    memcpy (host, http, hn);
    host[hn] = '\0';
    memset (sa, 0, sizeof *sa);
    *ipv6 = host[0] == '[' && host[hn - 1] == ']';
    if (*ipv6) {
        struct sockaddr_in6 *a6 = (struct sockaddr_in6 *) sa;
        host[hn - 1] = '\0';
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons ((uint16_t) port);
        if (inet_pton (AF_INET6, host + 1, &a6->sin6_addr) == 1)
            return 0;
        snprintf (err, errlen, "host.http: \"%s\" is not an IPv6 address", host + 1);
        return -1;
    }
    struct sockaddr_in *a4 = (struct sockaddr_in *) sa;
    a4->sin_family = AF_INET;
    a4->sin_port = htons ((uint16_t) port);
    if (strcmp (host, "localhost") == 0)
        strcpy (host, "127.0.0.1");
    if (inet_pton (AF_INET, host, &a4->sin_addr) == 1)
        return 0;
    snprintf (err, errlen, "host.http: \"%s\" is not an IPv4 address (an IPv6 one goes in "
              "brackets: [::1]:7780)", host);
    return -1;
}

bctx_http_t *
bctx_http_new (void *zctx, const bctx_config_t *config, char *err, size_t errlen)
{
    struct sockaddr_storage sa;
    int ipv6 = 0;
    if (s_address (config->http, &sa, &ipv6, err, errlen) < 0)
        return NULL;
    bctx_http_t *self = calloc (1, sizeof *self);
    self->zctx = zctx;
    self->config = config;
    self->daemon = MHD_start_daemon (
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_ERROR_LOG
            | (ipv6 ? MHD_USE_IPv6 : 0),
        0, NULL, NULL, s_on_request, self,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *) &sa,
        MHD_OPTION_NOTIFY_COMPLETED, s_on_done, self,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned) 60,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned) 256,
        MHD_OPTION_END);
    if (!self->daemon) {
        snprintf (err, errlen, "host.http: cannot listen on %s (in use?)", config->http);
        free (self);
        return NULL;
    }
    return self;
}

void
bctx_http_destroy (bctx_http_t **self_p)
{
    BCTX_SELF_OR_RETURN (bctx_http_t, self_p);
    atomic_store (&self->stopping, 1);
    MHD_stop_daemon (self->daemon);
    free (self);
    *self_p = NULL;
}
