/*
 * protocol - the op table, the roles, and the reply builders.
 */
#include "protocol.h"
#include "store.h"
#include "util.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define S_ALL (BCTX_ROLE_PEER | BCTX_ROLE_CLIENT | BCTX_ROLE_ADMIN)
#define S_USERS (BCTX_ROLE_CLIENT | BCTX_ROLE_ADMIN)

/* Every op; peers may forward commands and read logs, nothing more. */
static const bctx_op_t s_ops[] = {
    { BCTX_OP_SEND,     "send",     S_ALL },
    { BCTX_OP_EVENTS,   "events",   S_ALL },
    { BCTX_OP_QUERY,    "query",    S_USERS },
    { BCTX_OP_CONTEXTS, "contexts", S_USERS },
    { BCTX_OP_STATS,    "stats",    S_USERS },
    { BCTX_OP_REPLAY,   "replay",   BCTX_ROLE_ADMIN },
    { BCTX_OP_RETRY,    "retry",    BCTX_ROLE_ADMIN },
    { BCTX_OP_RELOAD,   "reload",   BCTX_ROLE_ADMIN },
    /* A drain of the whole host, as SIGTERM: the supervisor's alone. */
    { BCTX_OP_STOP,     "stop",     BCTX_ROLE_ADMIN },
    /* A handover's steps, between the supervisor and its context
     * processes (reload.h): no client, admin or peer may send them. */
    { BCTX_OP_RELEASE,  "release",  BCTX_ROLE_SUPERVISOR },
    { BCTX_OP_TAKE,     "take",     BCTX_ROLE_SUPERVISOR },
    { 0, NULL, 0 }
};
_Static_assert (sizeof s_ops / sizeof s_ops[0] == BCTX_OP_COUNT + 1,
                "one row per BCTX_OP_*");

const bctx_op_t *
bctx_op_find (const char *name)
{
    for (const bctx_op_t *op = s_ops; name && op->name; op++)
        if (strcmp (op->name, name) == 0)
            return op;
    return NULL;
}

int
bctx_op_is_admin (const bctx_op_t *op)
{
    return op && op->roles == BCTX_ROLE_ADMIN;
}

static const char *const s_roles[] = { "peer", "client", "admin" };

unsigned
bctx_role_parse (const char *name)
{
    for (unsigned i = 0; name && i < 3; i++)
        if (strcmp (s_roles[i], name) == 0)
            return 1u << i;
    return 0;
}

const char *
bctx_role_name (unsigned role)
{
    for (unsigned i = 0; i < 3; i++)
        if (role == 1u << i)
            return s_roles[i];
    return "?";
}

char *
bctx_reply_forbidden (const char *op, unsigned role, const char *admin)
{
    char message[600];
    if (admin)
        snprintf (message, sizeof message, "%s is an admin op, and this connection's role is "
                  "%s: admin ops are served on the admin endpoint %s (to the host's own OS "
                  "user), or to a CURVE key whose role is admin", op, bctx_role_name (role),
                  admin);
    else
        snprintf (message, sizeof message, "%s is not open to this connection's role (%s)",
                  op, bctx_role_name (role));
    json_t *error = json_pack ("{s:s, s:s}", "code", BCTX_E_FORBIDDEN, "message", message);
    if (admin)
        json_object_set_new (error, "admin", json_string (admin));
    return bctx_reply_dump_new (json_pack ("{s:b, s:o}", "ok", 0, "error", error));
}

char *
bctx_reply_error (const char *code, const char *fmt, ...)
{
    char message[512];
    va_list ap;
    va_start (ap, fmt);
    vsnprintf (message, sizeof message, fmt, ap);
    va_end (ap);
    /* Messages may quote client bytes: keep only valid UTF-8 for jansson. */
    json_t *msg = json_string (message);
    if (!msg)
        msg = json_string ("(message not valid UTF-8)");
    return bctx_reply_dump_new (json_pack ("{s:b, s:{s:s, s:o}}", "ok", 0,
                                           "error", "code", code,
                                           "message", msg));
}

char *
bctx_reply_dump_new (json_t *reply)
{
    char *text = json_dumps (reply, JSON_COMPACT);
    json_decref (reply);
    return text;
}

void
bctx_time_iso (char *buf, size_t size)
{
    struct timespec ts;
    clock_gettime (CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r (&ts.tv_sec, &tm);
    size_t n = strftime (buf, size, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf (buf + n, size - n, ".%06ldZ", ts.tv_nsec / 1000);
}

void
bctx_buf_add (bctx_buf_t *b, const char *text, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        b->cap = (b->len + n + 1) * 2 < 256 ? 256 : (b->len + n + 1) * 2;
        b->text = bctx_realloc (b->text, b->cap);
    }
    memcpy (b->text + b->len, text, n);
    b->len += n;
    b->text[b->len] = '\0';
}

void
bctx_buf_add_str (bctx_buf_t *b, const char *text)
{
    bctx_buf_add (b, text, strlen (text));
}

void
bctx_buf_add_int (bctx_buf_t *b, long long v)
{
    char num[24];
    int n = snprintf (num, sizeof num, "%lld", v);
    bctx_buf_add (b, num, (size_t) n);
}

void
bctx_buf_add_json_string (bctx_buf_t *b, const char *text)
{
    bctx_buf_add (b, "\"", 1);
    const unsigned char *p = (const unsigned char *) text, *run = p;
    for (; *p; p++) {
        if (*p != '"' && *p != '\\' && *p >= 0x20)
            continue;
        bctx_buf_add (b, (const char *) run, (size_t) (p - run));
        char esc[8];
        int n = *p < 0x20 ? snprintf (esc, sizeof esc, "\\u%04x", *p)
                          : snprintf (esc, sizeof esc, "\\%c", *p);
        bctx_buf_add (b, esc, (size_t) n);
        run = p + 1;
    }
    bctx_buf_add (b, (const char *) run, (size_t) (p - run));
    bctx_buf_add (b, "\"", 1);
}

/* Adds `key` (the JSON text before a member's value, e.g. ",\"type\":")
 * then value: a string to quote, or JSON text as it is (raw). */
static void
s_member (bctx_buf_t *b, const char *key, const char *value, int raw)
{
    bctx_buf_add_str (b, key);
    if (raw)
        bctx_buf_add_str (b, value);
    else
        bctx_buf_add_json_string (b, value);
}

void
bctx_buf_add_event (bctx_buf_t *b, const char *context, const bctx_row_t *e)
{
    s_member (b, "{\"context\":", context, 0);
    s_member (b, ",\"type\":", e->type, 0);
    s_member (b, ",\"aggregate\":", e->aggregate, 0);
    bctx_buf_add_str (b, ",\"version\":");
    bctx_buf_add_int (b, e->version);
    bctx_buf_add_str (b, ",\"position\":");
    bctx_buf_add_int (b, e->position);
    s_member (b, ",\"data\":", e->data, 1);
    s_member (b, ",\"metadata\":", e->metadata, 1);
    bctx_buf_add_str (b, "}");
}

/* Is text[0..len-1] free of NUL and other control characters? */
static int
s_printable (const char *text, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if ((unsigned char) text[i] < 0x20 || text[i] == 0x7f)
            return 0;
    return 1;
}

const char *
bctx_send_check (const json_t *body, char *why, size_t whylen)
{
    static const char *const keys[] = {
        "op", "context", "command", "id", "data", "correlation_id",
        "causation_id", "forwarded_by", "origin", NULL
    };
    if (!json_is_object (body)) {
        snprintf (why, whylen, "a request is a JSON object");
        return BCTX_E_BAD_REQUEST;
    }
    const char *key;
    json_t *value;
    json_object_foreach ((json_t *) body, key, value) {
        int known = 0;
        for (const char *const *k = keys; *k; k++)
            known |= strcmp (*k, key) == 0;
        if (!known) {
            snprintf (why, whylen, "send: unknown field \"%s\"", key);
            return BCTX_E_BAD_REQUEST;
        }
    }
    const json_t *command = json_object_get (body, "command");
    const json_t *origin = json_object_get (body, "origin");
    if (!json_is_string (json_object_get (body, "context")))
        snprintf (why, whylen, "send: \"context\" must be a string");
    else if (!json_is_string (command) || json_string_length (command) == 0)
        snprintf (why, whylen, "send: \"command\" must be a non-empty string");
    else if (!json_is_object (json_object_get (body, "data")))
        snprintf (why, whylen, "send: \"data\" must be an object");
    else if (origin && (!json_is_string (origin)
                        || strcmp (json_string_value (origin), "reactor") != 0))
        snprintf (why, whylen, "send: \"origin\" can only be \"reactor\"");
    else
        why[0] = '\0';
    if (why[0])
        return BCTX_E_BAD_REQUEST;
    static const char *const ids[] = { "id", "correlation_id", "causation_id" };
    for (size_t i = 0; i < 3; i++) {
        const json_t *v = json_object_get (body, ids[i]);
        if (v && (!json_is_string (v) || json_string_length (v) == 0
                  || json_string_length (v) > BCTX_ID_MAX
                  || !s_printable (json_string_value (v), json_string_length (v)))) {
            snprintf (why, whylen, "send: \"%s\" must be a string of 1 to %d bytes, "
                      "without control characters", ids[i], BCTX_ID_MAX);
            return BCTX_E_BAD_REQUEST;
        }
    }
    return NULL;
}
