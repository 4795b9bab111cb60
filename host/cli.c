/*
 * bctx - the command-line client.  Sends one request per call (or a series
 * of pages for `events`) to a host's API socket and prints JSON.
 *
 * Exit codes: 0 done, 1 the host answered with an error, 2 usage error,
 * 3 no host answered in time.
 */

#include "protocol.h"

#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#define S_DEFAULT_ENDPOINT "tcp://127.0.0.1:7700"
#define S_PAGE 1000

enum { EXIT_DONE = 0, EXIT_ERROR = 1, EXIT_USAGE = 2, EXIT_TIMEOUT = 3 };

typedef struct {
    void *zctx;           /* ZeroMQ context */
    void *req;            /* REQ socket to the host */
    const char *endpoint; /* where the host is */
    int timeout_ms;       /* how long to wait for each reply */
    char *admin;          /* the admin endpoint in use (new), or NULL */
} s_client_t;

static json_t *s_call (s_client_t *c, json_t *req, int *code);

static void
s_usage (void)
{
    fprintf (stderr,
        "usage: bctx [-e ENDPOINT] [--timeout SECONDS] SUBCOMMAND ...\n"
        "  send CONTEXT COMMAND JSON [--id ID]\n"
        "  events [--context C] [--aggregate A] [--from POS] [--limit N]\n"
        "  query PROJECTION [KEY] [--limit N] [--after KEY]\n"
        "  replay PROJECTION\n"
        "  retry REACTOR          run a reactor's parked events again\n"
        "  retry PROJECTION CONTEXT POSITION\n"
        "                         apply a projection's parked poison event now\n"
        "  reload CONTEXT [PLUGIN]\n"
        "  keygen                 print a new CURVE key pair\n"
        "  contexts\n"
        "  stats\n"
        "ENDPOINT defaults to $BCTX_ENDPOINT, else %s; the timeout to 5.\n"
        "replay, retry and reload are admin ops: they go to the admin endpoint the\n"
        "host names (an ipc:// socket under its host.data, for the host's own OS\n"
        "user), or to --admin ENDPOINT / $BCTX_ADMIN when given.\n"
        "A host with CURVE keys needs --server-key KEY (its public key) and this\n"
        "client's --public-key KEY --secret-key KEY (or $BCTX_SERVER_KEY,\n"
        "$BCTX_PUBLIC_KEY, $BCTX_SECRET_KEY); the host must list the public key.\n",
        S_DEFAULT_ENDPOINT);
}

/* Points the client at the admin endpoint (borrowed): a new REQ socket,
 * without CURVE (the endpoint is an ipc:// socket that file permissions
 * guard).  Return 0, or -1 after printing why. */
static int
s_use_admin (s_client_t *c, const char *endpoint)
{
    if (strncmp (endpoint, "ipc://", 6) == 0 && access (endpoint + 6, R_OK | W_OK) != 0) {
        fprintf (stderr, "bctx: cannot use the admin endpoint %s: %s; admin ops are for "
                 "the OS user that runs bctx-host (or a CURVE key whose role is admin)\n",
                 endpoint, strerror (errno));
        return -1;
    }
    void *req = zmq_socket (c->zctx, ZMQ_REQ);
    int linger = 0;
    zmq_setsockopt (req, ZMQ_LINGER, &linger, sizeof linger);
    if (zmq_connect (req, endpoint) != 0) {
        fprintf (stderr, "bctx: bad admin endpoint \"%s\": %s\n", endpoint,
                 zmq_strerror (zmq_errno ()));
        zmq_close (req);
        return -1;
    }
    zmq_close (c->req);
    c->req = req;
    free (c->admin);
    c->admin = strdup (endpoint);
    c->endpoint = c->admin;
    return 0;
}

/* An answer "forbidden" that names the admin endpoint: the op is an admin
 * op, so send it again there (once).  Return: the reply to keep (new). */
static json_t *
s_follow_admin (s_client_t *c, json_t *req, json_t *reply, int *code)
{
    json_t *error = json_object_get (reply, "error");
    const char *admin = json_string_value (json_object_get (error, "admin"));
    const char *what = json_string_value (json_object_get (error, "code"));
    if (c->admin || !admin || !what || strcmp (what, BCTX_E_FORBIDDEN) != 0)
        return reply;
    if (s_use_admin (c, admin) < 0)
        return reply;
    json_decref (reply);
    return s_call (c, req, code);
}

/* Sends `req` (borrowed) and waits for the reply.  Return: new reply, or
 * NULL after printing why, with *code set to the exit code. */
static json_t *
s_call (s_client_t *c, json_t *req, int *code)
{
    char *text = json_dumps (req, JSON_COMPACT);
    int rc = zmq_send (c->req, text, strlen (text), 0);
    free (text);
    if (rc < 0) {
        fprintf (stderr, "bctx: cannot send to %s: %s\n", c->endpoint,
                 zmq_strerror (zmq_errno ()));
        *code = EXIT_TIMEOUT;
        return NULL;
    }
    zmq_pollitem_t item = { c->req, 0, ZMQ_POLLIN, 0 };
    rc = zmq_poll (&item, 1, c->timeout_ms);
    if (rc <= 0) {
        fprintf (stderr, "bctx: no answer from %s within %d ms\n", c->endpoint,
                 c->timeout_ms);
        *code = EXIT_TIMEOUT;
        return NULL;
    }
    zmq_msg_t msg;
    zmq_msg_init (&msg);
    if (zmq_msg_recv (&msg, c->req, 0) < 0) {
        zmq_msg_close (&msg);
        *code = EXIT_TIMEOUT;
        return NULL;
    }
    json_error_t jerr;
    json_t *reply = json_loadb (zmq_msg_data (&msg), zmq_msg_size (&msg), 0, &jerr);
    zmq_msg_close (&msg);
    if (!json_is_object (reply)) {
        fprintf (stderr, "bctx: the host's reply is not a JSON object\n");
        json_decref (reply);
        *code = EXIT_ERROR;
        return NULL;
    }
    return s_follow_admin (c, req, reply, code);
}

static int
s_print_reply (json_t *reply)
{
    char *text = json_dumps (reply, JSON_COMPACT);
    puts (text);
    free (text);
    return json_is_true (json_object_get (reply, "ok")) ? EXIT_DONE : EXIT_ERROR;
}

/* One request, one printed reply. */
static int
s_simple (s_client_t *c, json_t *req)
{
    int code = EXIT_DONE;
    json_t *reply = s_call (c, req, &code);
    json_decref (req);
    if (!reply)
        return code;
    code = s_print_reply (reply);
    json_decref (reply);
    return code;
}

static int
s_send (s_client_t *c, int argc, char **argv)
{
    const char *id = NULL;
    const char *pos[3];
    int npos = 0;
    for (int i = 0; i < argc; i++) {
        if (strcmp (argv[i], "--id") == 0 && i + 1 < argc)
            id = argv[++i];
        else if (strncmp (argv[i], "--id=", 5) == 0)
            id = argv[i] + 5;
        else if (npos < 3)
            pos[npos++] = argv[i];
        else
            npos = 4;
    }
    if (npos != 3) {
        s_usage ();
        return EXIT_USAGE;
    }
    json_error_t jerr;
    json_t *data = json_loads (pos[2], 0, &jerr);
    if (!json_is_object (data)) {
        fprintf (stderr, "bctx: send: JSON must be an object%s%s\n",
                 data ? "" : ": ", data ? "" : jerr.text);
        json_decref (data);
        return EXIT_USAGE;
    }
    json_t *req = json_pack ("{s:s, s:s, s:s, s:o}", "op", "send", "context",
                             pos[0], "command", pos[1], "data", data);
    if (!req) {
        fprintf (stderr, "bctx: send: CONTEXT and COMMAND must be UTF-8\n");
        return EXIT_USAGE;
    }
    if (id)
        json_object_set_new (req, "id", json_string (id));
    return s_simple (c, req);
}

static int
s_parse_int (const char *s, long long min, long long *out)
{
    char *end;
    errno = 0;
    long long v = strtoll (s, &end, 10);
    if (errno || *end || end == s || v < min)
        return -1;
    *out = v;
    return 0;
}

/* Prints the events of one context, a line each, paging through: each
 * page's "next" says where the following one starts (a page may be cut
 * short by the host's byte budget), null when none follows. */
static int
s_events_of (s_client_t *c, const char *context, const char *aggregate,
             long long from, long long limit)
{
    long long printed = 0;
    for (;;) {
        long long page = S_PAGE;
        if (limit >= 0 && limit - printed < page)
            page = limit - printed;
        if (page <= 0)
            return EXIT_DONE;
        json_t *req = json_pack ("{s:s, s:s, s:I, s:I}", "op", "events",
                                 "context", context, "from", (json_int_t) from,
                                 "limit", (json_int_t) page);
        if (aggregate)
            json_object_set_new (req, "aggregate", json_string (aggregate));
        int code = EXIT_DONE;
        json_t *reply = c ? s_call (c, req, &code) : NULL;
        json_decref (req);
        if (!reply)
            return code;
        if (!json_is_true (json_object_get (reply, "ok"))) {
            code = s_print_reply (reply);
            json_decref (reply);
            return code;
        }
        json_t *events = json_object_get (reply, "events");
        size_t i;
        json_t *ev;
        json_array_foreach (events, i, ev) {
            char *text = json_dumps (ev, JSON_COMPACT);
            puts (text);
            free (text);
            from = json_integer_value (json_object_get (ev, "position")) + 1;
        }
        size_t got = json_array_size (events);
        printed += (long long) got;
        /* A host without "next" ends its events with a short page. */
        json_t *next = json_object_get (reply, "next");
        int more = next ? json_is_integer (next) : (long long) got == page;
        if (json_is_integer (next) && json_integer_value (next) >= from)
            from = json_integer_value (next);
        else if (json_is_integer (next))
            more = 0;             /* no progress: never ask the same page twice */
        json_decref (reply);
        if (!more || got == 0)
            return EXIT_DONE;
    }
}

static int
s_events (s_client_t *c, int argc, char **argv)
{
    const char *context = NULL, *aggregate = NULL;
    long long from = 1, limit = -1;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp (a, "--context") == 0 && v)
            context = v, i++;
        else if (strcmp (a, "--aggregate") == 0 && v)
            aggregate = v, i++;
        else if (strcmp (a, "--from") == 0 && v && s_parse_int (v, 1, &from) == 0)
            i++;
        else if (strcmp (a, "--limit") == 0 && v && s_parse_int (v, 1, &limit) == 0)
            i++;
        else {
            s_usage ();
            return EXIT_USAGE;
        }
    }
    if (context)
        return s_events_of (c, context, aggregate, from, limit);
    /* Every context of the host, one after the other. */
    int code = EXIT_DONE;
    json_t *req = json_pack ("{s:s}", "op", "contexts");
    json_t *reply = s_call (c, req, &code);
    json_decref (req);
    if (!reply)
        return code;
    json_t *list = json_object_get (reply, "contexts");
    size_t i;
    json_t *ctx;
    json_array_foreach (list, i, ctx) {
        code = s_events_of (c, json_string_value (json_object_get (ctx, "name")),
                            aggregate, from, limit);
        if (code != EXIT_DONE)
            break;
    }
    json_decref (reply);
    return code;
}

/* query PROJECTION KEY prints one read model; query PROJECTION prints a
 * page of them, {"items": [...], "next": KEY or null}. */
static int
s_query (s_client_t *c, int argc, char **argv)
{
    const char *pos[2] = { NULL, NULL }, *after = NULL;
    long long limit = -1;
    int npos = 0;
    for (int i = 0; i < argc; i++) {
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp (argv[i], "--after") == 0 && v)
            after = v, i++;
        else if (strcmp (argv[i], "--limit") == 0 && v && s_parse_int (v, 1, &limit) == 0)
            i++;
        else if (argv[i][0] != '-' && npos < 2)
            pos[npos++] = argv[i];
        else
            npos = 3;
    }
    if (npos < 1 || npos > 2 || (pos[1] && (after || limit > 0))) {
        s_usage ();
        return EXIT_USAGE;
    }
    json_t *req = json_pack ("{s:s, s:s}", "op", "query", "projection", pos[0]);
    if (pos[1])
        json_object_set_new (req, "key", json_string (pos[1]));
    if (after)
        json_object_set_new (req, "after", json_string (after));
    if (limit > 0)
        json_object_set_new (req, "limit", json_integer (limit));
    return s_simple (c, req);
}

/* replay PROJECTION / retry REACTOR: one name. */
static int
s_named (s_client_t *c, const char *op, const char *field, int argc, char **argv)
{
    if (argc != 1) {
        s_usage ();
        return EXIT_USAGE;
    }
    return s_simple (c, json_pack ("{s:s, s:s}", "op", op, field, argv[0]));
}

/* retry REACTOR, or retry PROJECTION CONTEXT POSITION: the poison event
 * parked for PROJECTION, named by its context's log and position (as
 * `stats` lists it). */
static int
s_retry (s_client_t *c, int argc, char **argv)
{
    if (argc == 1)
        return s_named (c, "retry", "reactor", argc, argv);
    char *end = NULL;
    long long position = argc == 3 ? strtoll (argv[2], &end, 10) : 0;
    if (argc != 3 || !end || *end || end == argv[2] || position < 1) {
        if (argc == 3)
            fprintf (stderr, "bctx: retry: POSITION must be a position in the log (1, 2, "
                             "...), got \"%s\"\n", argv[2]);
        s_usage ();
        return EXIT_USAGE;
    }
    return s_simple (c, json_pack ("{s:s, s:s, s:s, s:I}", "op", "retry", "projection",
                                   argv[0], "context", argv[1], "position",
                                   (json_int_t) position));
}

/* reload CONTEXT [PLUGIN]: a relative PLUGIN is made absolute, since the
 * host may run elsewhere in the file system. */
static int
s_reload (s_client_t *c, int argc, char **argv)
{
    if (argc < 1 || argc > 2) {
        s_usage ();
        return EXIT_USAGE;
    }
    json_t *req = json_pack ("{s:s, s:s}", "op", "reload", "context", argv[0]);
    if (argc == 2) {
        char *abs = realpath (argv[1], NULL);
        json_object_set_new (req, "plugin", json_string (abs ? abs : argv[1]));
        free (abs);
    }
    return s_simple (c, req);
}

/* replay PROJECTION. */
static int
s_replay (s_client_t *c, int argc, char **argv)
{
    return s_named (c, "replay", "projection", argc, argv);
}

/* A subcommand whose request is more than its op's name. */
typedef struct {
    const char *name;             /* the subcommand, an op's name */
    int (*run) (s_client_t *c, int argc, char **argv);
                                  /* builds, sends and prints its request; NULL:
                                     it takes no argument, the op alone is sent */
} s_subcommand_t;

static const s_subcommand_t s_subcommands[] = {
    { "send", s_send },
    { "events", s_events },
    { "query", s_query },
    { "replay", s_replay },
    { "retry", s_retry },
    { "reload", s_reload },
    { "contexts", NULL },
    { "stats", NULL },
};

/* The subcommand named name (borrowed), or NULL for an op sent alone. */
static const s_subcommand_t *
s_subcommand (const char *name)
{
    for (size_t i = 0; i < sizeof s_subcommands / sizeof s_subcommands[0]; i++)
        if (strcmp (s_subcommands[i].name, name) == 0)
            return &s_subcommands[i];
    return NULL;
}

/* The client's CURVE keys and admin endpoint: the environment's, then the
 * options'. */
typedef struct {
    const char *server;           /* the host's public key, or NULL */
    const char *public_key;       /* this client's public key, or NULL */
    const char *secret;           /* this client's secret key, or NULL */
    const char *admin;            /* the admin endpoint given, or NULL */
} s_keys_t;

/* Reads the options before the subcommand into c and keys.  Return -1
 * to go on, or the exit code (after printing why). */
static int
s_options (s_client_t *c, s_keys_t *keys, int argc, char **argv)
{
    static const struct option longopts[] = {
        { "endpoint", required_argument, NULL, 'e' },
        { "timeout", required_argument, NULL, 't' },
        { "server-key", required_argument, NULL, 'S' },
        { "public-key", required_argument, NULL, 'P' },
        { "secret-key", required_argument, NULL, 'K' },
        { "admin", required_argument, NULL, 'A' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };
    int opt;
    /* "+": stop at the subcommand; its own options are parsed below. */
    while ((opt = getopt_long (argc, argv, "+e:t:h", longopts, NULL)) != -1) {
        if (opt == 'A') {
            keys->admin = optarg;
        } else if (opt == 'S') {
            keys->server = optarg;
        } else if (opt == 'P') {
            keys->public_key = optarg;
        } else if (opt == 'K') {
            keys->secret = optarg;
        } else if (opt == 'e') {
            c->endpoint = optarg;
        } else if (opt == 't') {
            char *end;
            double s = strtod (optarg, &end);
            if (*end || end == optarg || s <= 0 || s > 86400) {
                fprintf (stderr, "bctx: --timeout: expected seconds, got \"%s\"\n", optarg);
                return EXIT_USAGE;
            }
            c->timeout_ms = (int) (s * 1000);
            if (c->timeout_ms < 1)
                c->timeout_ms = 1;
        } else {
            s_usage ();
            return opt == 'h' ? EXIT_DONE : EXIT_USAGE;
        }
    }
    return -1;
}

/* keygen: prints a new CURVE key pair.  Return the exit code. */
static int
s_keygen (int argc)
{
    char pub[41], sec[41];
    if (argc || zmq_curve_keypair (pub, sec) != 0) {
        fprintf (stderr, "bctx: keygen: %s\n", argc ? "takes no argument"
                                                    : "this libzmq has no CURVE");
        return argc ? EXIT_USAGE : EXIT_ERROR;
    }
    printf ("{\"public\":\"%s\",\"secret\":\"%s\"}\n", pub, sec);
    return EXIT_DONE;
}

/* Opens c's REQ socket (in c->zctx) with keys, connected to c->endpoint.
 * Return 0, or -1 after printing why. */
static int
s_open (s_client_t *c, const s_keys_t *keys)
{
    c->req = zmq_socket (c->zctx, ZMQ_REQ);
    int linger = 0;
    zmq_setsockopt (c->req, ZMQ_LINGER, &linger, sizeof linger);
    if (keys->server && *keys->server
        && (zmq_setsockopt (c->req, ZMQ_CURVE_SERVERKEY, keys->server, 40) != 0
            || zmq_setsockopt (c->req, ZMQ_CURVE_PUBLICKEY, keys->public_key, 40) != 0
            || zmq_setsockopt (c->req, ZMQ_CURVE_SECRETKEY, keys->secret, 40) != 0)) {
        fprintf (stderr, "bctx: a key is not a valid Z85 CURVE key\n");
        return -1;
    }
    if (zmq_connect (c->req, c->endpoint) != 0) {
        fprintf (stderr, "bctx: bad endpoint \"%s\": %s\n", c->endpoint,
                 zmq_strerror (zmq_errno ()));
        return -1;
    }
    return 0;
}

int
main (int argc, char **argv)
{
    s_client_t c = { .endpoint = getenv ("BCTX_ENDPOINT"), .timeout_ms = 5000 };
    if (!c.endpoint || !*c.endpoint)
        c.endpoint = S_DEFAULT_ENDPOINT;
    s_keys_t keys = { .server = getenv ("BCTX_SERVER_KEY"),
                      .public_key = getenv ("BCTX_PUBLIC_KEY"),
                      .secret = getenv ("BCTX_SECRET_KEY"), .admin = getenv ("BCTX_ADMIN") };
    int code = s_options (&c, &keys, argc, argv);
    if (code >= 0)
        return code;
    if (optind >= argc) {
        s_usage ();
        return EXIT_USAGE;
    }
    const char *sub = argv[optind];
    int sargc = argc - optind - 1;
    char **sargv = argv + optind + 1;
    if (strcmp (sub, "keygen") == 0)
        return s_keygen (sargc);
    if (keys.server && *keys.server
        && (!keys.public_key || strlen (keys.public_key) != 40 || !keys.secret
            || strlen (keys.secret) != 40 || strlen (keys.server) != 40)) {
        fprintf (stderr, "bctx: --server-key needs --public-key and --secret-key, "
                         "each a 40-character Z85 key\n");
        return EXIT_USAGE;
    }
    const bctx_op_t *op = bctx_op_find (sub);
    if (!op) {
        fprintf (stderr, "bctx: unknown subcommand \"%s\"\n", sub);
        s_usage ();
        return EXIT_USAGE;
    }
    const s_subcommand_t *how = s_subcommand (sub);
    if (how && !how->run && sargc) {
        s_usage ();
        return EXIT_USAGE;
    }
    c.zctx = zmq_ctx_new ();
    if (s_open (&c, &keys) < 0)
        code = EXIT_USAGE;
    else if (bctx_op_is_admin (op) && keys.admin && *keys.admin
             && s_use_admin (&c, keys.admin) < 0)
        code = EXIT_USAGE;
    else if (how && how->run)
        code = how->run (&c, sargc, sargv);
    else
        code = s_simple (&c, json_pack ("{s:s}", "op", sub));
    zmq_close (c.req);
    zmq_ctx_term (c.zctx);
    free (c.admin);
    fflush (stdout);
    return code;
}
