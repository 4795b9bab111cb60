/*
 * bctx - the command-line client: the options before the subcommand, the
 * subcommands' table with their usage texts, the argument parser they
 * share, and the request/reply round trip to a host's API socket.
 * cli.h says what the other parts (cli_ops, cli_show, cli_live) do.
 */

#include "cli.h"
#include "protocol.h"

#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#define S_DEFAULT_ENDPOINT "tcp://127.0.0.1:7700"
#define S_ENDPOINT_FORM "tcp://HOST:PORT (e.g. tcp://127.0.0.1:7700) or ipc://PATH"

/* A subcommand: its name, what runs it, and its usage. */
typedef struct {
    const char *name;             /* the subcommand (an op's name but keygen, help) */
    int (*run) (bctx_cli_t *c, int argc, char **argv);
                                  /* builds, sends and prints; NULL: runs without
                                     a host (keygen, help) */
    const char *synopsis;         /* its arguments, one line */
    const char *summary;          /* what it does, for the general usage */
    const char *details;          /* more lines for its own usage, or "" */
} s_subcommand_t;

static const s_subcommand_t s_subcommands[] = {
    { "send", bctx_cli_send, "CONTEXT COMMAND JSON [--id ID]",
      "send a command to a context",
      "JSON is the command's data, an object. --id ID names the command: sent again\n"
      "with the same id, it is done once (the first reply comes back).\n" },
    { "events", bctx_cli_events,
      "[--context C] [--aggregate A] [--from POS] [--limit N] [--follow [--bus ENDPOINT]]",
      "print events, a JSON line each",
      "Without --context, every context's, one after the other. --from POS starts at\n"
      "position POS (1 is the first event), --limit N stops after N events.\n"
      "--follow (needs --context) prints the log from POS, then new events as they\n"
      "are committed, until --limit N events or Ctrl-C; it reads them from the host's\n"
      "bus (host.publish, or --bus ENDPOINT / $BCTX_BUS). Resume with --from the last\n"
      "position printed + 1: nothing is missed, nothing printed twice.\n" },
    { "query", bctx_cli_query, "PROJECTION [KEY] [--limit N] [--after KEY]",
      "read a projection's read model, or a page of them",
      "With KEY, that one read model. Without, a page: {\"items\": [...], \"next\": KEY\n"
      "or null}; ask the next page with --after NEXT.\n" },
    { "replay", bctx_cli_replay, "PROJECTION [--wait]",
      "rebuild a projection's read models from the logs (admin)",
      "--wait returns once the projection caught up again (a progress bar on a\n"
      "terminal), printing its stats.\n" },
    { "retry", bctx_cli_retry, "REACTOR | PROJECTION CONTEXT POSITION",
      "run parked events again (admin)",
      "retry REACTOR runs a reactor's parked events again; retry PROJECTION CONTEXT\n"
      "POSITION applies a projection's parked poison event (as `stats` lists it) now.\n" },
    { "reload", bctx_cli_reload, "CONTEXT [PLUGIN]",
      "load a new version of a context's plugin (admin)",
      "PLUGIN (default: the configured one) is made absolute before it is sent.\n" },
    { "contexts", bctx_cli_bare, "", "list the contexts, local and remote", "" },
    { "stats", bctx_cli_stats, "[--watch [SECONDS]] [--count N]",
      "print the host's counters",
      "--watch prints them every SECONDS (default 2), redrawn in place on a\n"
      "terminal, until Ctrl-C or --count N times.\n" },
    { "stop", bctx_cli_bare, "", "drain and stop the host, as SIGTERM does (admin)", "" },
    { "keygen", NULL, "", "print a new CURVE key pair", "" },
    { "new-context", NULL, "NAME [DIR]",
      "write a minimal plugin to start a context from (no host needed)",
      "Writes into DIR (default ./NAME, made if missing) NAME.c (the command Add, the\n"
      "event Added, decide, evolve and the projection NAME-items), a Makefile that\n"
      "builds NAME.so with `pkg-config --cflags --libs bctx-plugin` (after `make\n"
      "install`), test_NAME.c (given-when-then on bctx/testing.h and cmocka: `make\n"
      "test`), NAME.json (a config that runs it) and README.md. NAME is a context's\n"
      "name (1-64 of A-Z a-z 0-9 _ -). It overwrites nothing: if one of those files\n"
      "exists, it writes none and exits 2.\n" },
    { "help", NULL, "[SUBCOMMAND]", "print this, or a subcommand's usage", "" },
};

#define S_N_SUBCOMMANDS (sizeof s_subcommands / sizeof s_subcommands[0])

/* The subcommand named name (borrowed), or NULL. */
static const s_subcommand_t *
s_subcommand (const char *name)
{
    for (size_t i = 0; name && i < S_N_SUBCOMMANDS; i++)
        if (strcmp (s_subcommands[i].name, name) == 0)
            return &s_subcommands[i];
    return NULL;
}

/* Prints the general usage on out. */
static void
s_usage (FILE *out)
{
    fprintf (out, "usage: bctx [-e ENDPOINT] [--timeout SECONDS] [--pretty] SUBCOMMAND ...\n\n");
    for (size_t i = 0; i < S_N_SUBCOMMANDS; i++)
        fprintf (out, "  %-11s %s\n              %s\n", s_subcommands[i].name,
                 s_subcommands[i].synopsis, s_subcommands[i].summary);
    fprintf (out,
        "\n`bctx help SUBCOMMAND` or `bctx SUBCOMMAND --help` says more about one.\n"
        "ENDPOINT (%s) defaults to $BCTX_ENDPOINT, else %s;\n"
        "the timeout to 5 seconds. --pretty (the default on a terminal) prints tables\n"
        "and indented JSON; piped, each reply is one JSON line.\n"
        "replay, retry, reload and stop are admin ops: they go to the admin endpoint the\n"
        "host names (an ipc:// socket under its host.data, for the host's own OS\n"
        "user), or to --admin ENDPOINT / $BCTX_ADMIN when given.\n"
        "A host with CURVE keys needs --server-key KEY (its public key) and this\n"
        "client's --public-key KEY --secret-key KEY (or $BCTX_SERVER_KEY,\n"
        "$BCTX_PUBLIC_KEY, $BCTX_SECRET_KEY); the host must list the public key.\n"
        "Exit codes: 0 done, 1 the host answered an error, 2 usage, 3 no answer.\n",
        S_ENDPOINT_FORM, S_DEFAULT_ENDPOINT);
}

/* Prints one subcommand's usage on out. */
static void
s_sub_usage (FILE *out, const s_subcommand_t *s)
{
    fprintf (out, "usage: bctx [OPTIONS] %s%s%s\n%s.\n%s", s->name, *s->synopsis ? " " : "",
             s->synopsis, s->summary, s->details);
    fprintf (out, "(`bctx help` lists the OPTIONS and the other subcommands.)\n");
}

int
bctx_cli_usage_error (const char *sub, const char *fmt, ...)
{
    fprintf (stderr, "bctx %s: ", sub);
    va_list ap;
    va_start (ap, fmt);
    vfprintf (stderr, fmt, ap);
    va_end (ap);
    fputc ('\n', stderr);
    s_sub_usage (stderr, s_subcommand (sub));
    return BCTX_CLI_USAGE;
}

int
bctx_cli_number (const char *s, long long min, long long *out)
{
    char *end;
    errno = 0;
    long long v = strtoll (s, &end, 10);
    if (errno || *end || end == s || v < min)
        return -1;
    *out = v;
    return 0;
}

/* Takes option o's value from argv[*i + 1] on.  Return -1, or the exit
 * code after printing what is wrong. */
static int
s_option_value (bctx_cli_t *c, const bctx_cli_opt_t *o, int argc, char **argv, int *i)
{
    const char *v = *i + 1 < argc ? argv[*i + 1] : NULL;
    long long n;
    if (o->kind == BCTX_CLI_FLAG) {
        *(int *) o->out = 1;
    } else if (o->kind == BCTX_CLI_MAYBE_COUNT) {
        *(long long *) o->out = 0;
        if (v && bctx_cli_number (v, o->min, &n) == 0)
            *(long long *) o->out = n, (*i)++;
    } else if (!v) {
        return bctx_cli_usage_error (c->sub, "%s needs a value", o->name);
    } else if (o->kind == BCTX_CLI_TEXT) {
        *(const char **) o->out = v, (*i)++;
    } else if (bctx_cli_number (v, o->min, &n) == 0) {
        *(long long *) o->out = n, (*i)++;
    } else {
        return bctx_cli_usage_error (c->sub, "%s: expected a whole number >= %lld, got \"%s\"",
                                     o->name, o->min, v);
    }
    return -1;
}

int
bctx_cli_parse (bctx_cli_t *c, int argc, char **argv, const bctx_cli_opt_t *opts,
                const char **pos, int min_pos, int max_pos, int *npos)
{
    const s_subcommand_t *s = s_subcommand (c->sub);
    *npos = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp (a, "--help") == 0 || strcmp (a, "-h") == 0) {
            s_sub_usage (stdout, s);
            return BCTX_CLI_DONE;
        }
        if (strcmp (a, "--pretty") == 0) {
            c->pretty = 1;
            continue;
        }
        const bctx_cli_opt_t *o = opts;
        while (o && o->name && strcmp (o->name, a) != 0)
            o++;
        if (o && o->name) {
            int code = s_option_value (c, o, argc, argv, &i);
            if (code >= 0)
                return code;
        } else if (a[0] == '-' && a[1] && strcmp (a, "-") != 0 && !(a[1] >= '0' && a[1] <= '9')) {
            return bctx_cli_usage_error (c->sub, "unknown option \"%s\"", a);
        } else if (*npos >= max_pos) {
            return bctx_cli_usage_error (c->sub, "unexpected argument \"%s\"", a);
        } else {
            pos[(*npos)++] = a;
        }
    }
    if (*npos < min_pos)
        return bctx_cli_usage_error (c->sub, "missing argument%s (expected %s)",
                                     min_pos - *npos > 1 ? "s" : "", s->synopsis);
    return -1;
}

/* Points the client at the admin endpoint (borrowed): a new REQ socket,
 * without CURVE (the endpoint is an ipc:// socket that file permissions
 * guard).  Return 0, or -1 after printing why. */
static int
s_use_admin (bctx_cli_t *c, const char *endpoint)
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
        fprintf (stderr, "bctx: bad admin endpoint \"%s\": %s; expected %s\n", endpoint,
                 zmq_strerror (zmq_errno ()), S_ENDPOINT_FORM);
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
s_follow_admin (bctx_cli_t *c, json_t *req, json_t *reply, int *code)
{
    json_t *error = json_object_get (reply, "error");
    const char *admin = json_string_value (json_object_get (error, "admin"));
    const char *what = json_string_value (json_object_get (error, "code"));
    if (c->admin || !admin || !what || strcmp (what, BCTX_E_FORBIDDEN) != 0)
        return reply;
    if (s_use_admin (c, admin) < 0)
        return reply;
    json_decref (reply);
    return bctx_cli_call (c, req, code);
}

/* Says that no host answered, and what to check.  Return BCTX_CLI_TIMEOUT. */
static int
s_no_answer (const bctx_cli_t *c, const char *what)
{
    if (c->admin)
        fprintf (stderr, "bctx: %s from %s within %d ms: is bctx-host running with the admin "
                 "endpoint %s? Set --admin or BCTX_ADMIN\n", what, c->endpoint,
                 c->timeout_ms, c->endpoint);
    else
        fprintf (stderr, "bctx: %s from %s within %d ms: is bctx-host running on %s? "
                 "Set -e or BCTX_ENDPOINT\n", what, c->endpoint, c->timeout_ms, c->endpoint);
    return BCTX_CLI_TIMEOUT;
}

json_t *
bctx_cli_call (bctx_cli_t *c, json_t *req, int *code)
{
    char *text = json_dumps (req, JSON_COMPACT);
    int rc = zmq_send (c->req, text, strlen (text), 0);
    free (text);
    if (rc < 0) {
        fprintf (stderr, "bctx: cannot send to %s: %s\n", c->endpoint,
                 zmq_strerror (zmq_errno ()));
        *code = BCTX_CLI_TIMEOUT;
        return NULL;
    }
    zmq_pollitem_t item = { c->req, 0, ZMQ_POLLIN, 0 };
    rc = zmq_poll (&item, 1, c->timeout_ms);
    zmq_msg_t msg;
    zmq_msg_init (&msg);
    if (rc <= 0 || zmq_msg_recv (&msg, c->req, 0) < 0) {
        zmq_msg_close (&msg);
        *code = s_no_answer (c, "no answer");
        return NULL;
    }
    json_t *reply = json_loadb (zmq_msg_data (&msg), zmq_msg_size (&msg), 0, NULL);
    zmq_msg_close (&msg);
    if (!json_is_object (reply)) {
        fprintf (stderr, "bctx: the host's reply is not a JSON object\n");
        json_decref (reply);
        *code = BCTX_CLI_ERROR;
        return NULL;
    }
    return s_follow_admin (c, req, reply, code);
}

json_t *
bctx_cli_call_ok (bctx_cli_t *c, const char *what, json_t *req, int *code)
{
    json_t *reply = bctx_cli_call (c, req, code);
    json_decref (req);
    if (reply && !json_is_true (json_object_get (reply, "ok"))) {
        *code = bctx_cli_show (c, what, reply);
        json_decref (reply);
        return NULL;
    }
    return reply;
}

int
bctx_cli_simple (bctx_cli_t *c, json_t *req)
{
    int code = BCTX_CLI_DONE;
    json_t *reply = bctx_cli_call (c, req, &code);
    json_decref (req);
    if (!reply)
        return code;
    code = bctx_cli_show (c, c->sub, reply);
    json_decref (reply);
    return code;
}

/* The client's CURVE keys and admin endpoint: the environment's, then the
 * options'. */
typedef struct {
    const char *server;           /* the host's public key, or NULL */
    const char *public_key;       /* this client's public key, or NULL */
    const char *secret;           /* this client's secret key, or NULL */
    const char *admin;            /* the admin endpoint given, or NULL */
    const char *endpoint_from;    /* where the endpoint came from: "-e",
                                     "$BCTX_ENDPOINT" or "the default" */
} s_keys_t;

/* The option getopt refused, as the user wrote it (static or argv's). */
static const char *
s_bad_option (int argc, char **argv)
{
    static char letter[3] = "-?";
    if (optopt) {
        letter[1] = (char) optopt;
        return letter;
    }
    return optind - 1 < argc ? argv[optind - 1] : "?";
}

/* Reads the options before the subcommand into c and keys.  Return -1
 * to go on, or the exit code (after printing why). */
static int
s_options (bctx_cli_t *c, s_keys_t *keys, int argc, char **argv)
{
    static const struct option longopts[] = {
        { "endpoint", required_argument, NULL, 'e' },
        { "timeout", required_argument, NULL, 't' },
        { "server-key", required_argument, NULL, 'S' },
        { "public-key", required_argument, NULL, 'P' },
        { "secret-key", required_argument, NULL, 'K' },
        { "admin", required_argument, NULL, 'A' },
        { "pretty", no_argument, NULL, 'p' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };
    int opt;
    opterr = 0;
    /* "+": stop at the subcommand; its own options are parsed there. */
    while ((opt = getopt_long (argc, argv, "+:e:t:h", longopts, NULL)) != -1) {
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
            keys->endpoint_from = "-e";
        } else if (opt == 'p') {
            c->pretty = 1;
        } else if (opt == 't') {
            char *end;
            double s = strtod (optarg, &end);
            if (*end || end == optarg || s <= 0 || s > 86400) {
                fprintf (stderr, "bctx: --timeout: expected seconds (0 to 86400), got \"%s\"\n",
                         optarg);
                return BCTX_CLI_USAGE;
            }
            c->timeout_ms = (int) (s * 1000);
            if (c->timeout_ms < 1)
                c->timeout_ms = 1;
        } else if (opt == 'h') {
            s_usage (stdout);
            return BCTX_CLI_DONE;
        } else {
            fprintf (stderr, "bctx: %s \"%s\"\n", opt == ':' ? "a value is missing after"
                     : "unknown option", s_bad_option (argc, argv));
            s_usage (stderr);
            return BCTX_CLI_USAGE;
        }
    }
    return -1;
}

/* keygen: prints a new CURVE key pair.  Return the exit code. */
static int
s_keygen (bctx_cli_t *c, int argc, char **argv)
{
    int npos;
    int code = bctx_cli_parse (c, argc, argv, NULL, NULL, 0, 0, &npos);
    if (code >= 0)
        return code;
    char pub[41], sec[41];
    if (zmq_curve_keypair (pub, sec) != 0) {
        fprintf (stderr, "bctx keygen: this libzmq has no CURVE\n");
        return BCTX_CLI_ERROR;
    }
    printf ("{\"public\":\"%s\",\"secret\":\"%s\"}\n", pub, sec);
    return BCTX_CLI_DONE;
}

/* help [SUBCOMMAND]: the usage on stdout.  Return the exit code. */
static int
s_help (int argc, char **argv)
{
    if (argc == 0) {
        s_usage (stdout);
        return BCTX_CLI_DONE;
    }
    const s_subcommand_t *s = s_subcommand (argv[0]);
    if (argc > 1 || !s) {
        fprintf (stderr, "bctx help: %s \"%s\"\n", s ? "unexpected argument" : "no subcommand",
                 argv[argc > 1 ? 1 : 0]);
        s_usage (stderr);
        return BCTX_CLI_USAGE;
    }
    s_sub_usage (stdout, s);
    return BCTX_CLI_DONE;
}

/* Opens c's REQ socket (in c->zctx) with keys, connected to c->endpoint.
 * Return 0, or -1 after printing why. */
static int
s_open (bctx_cli_t *c, const s_keys_t *keys)
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
        fprintf (stderr, "bctx: bad endpoint \"%s\" (from %s): %s; expected %s\n",
                 c->endpoint, keys->endpoint_from, zmq_strerror (zmq_errno ()),
                 S_ENDPOINT_FORM);
        return -1;
    }
    return 0;
}

/* Runs subcommand s with its arguments on a connection.  Return the exit
 * code. */
static int
s_run (bctx_cli_t *c, const s_keys_t *keys, const s_subcommand_t *s, int argc, char **argv)
{
    if (keys->server && *keys->server
        && (!keys->public_key || strlen (keys->public_key) != 40 || !keys->secret
            || strlen (keys->secret) != 40 || strlen (keys->server) != 40)) {
        fprintf (stderr, "bctx: --server-key needs --public-key and --secret-key, "
                         "each a 40-character Z85 key\n");
        return BCTX_CLI_USAGE;
    }
    int code;
    if (keys->server && *keys->server)
        c->server_key = keys->server, c->public_key = keys->public_key,
        c->secret_key = keys->secret;
    c->zctx = zmq_ctx_new ();
    if (s_open (c, keys) < 0)
        code = BCTX_CLI_USAGE;
    else if (bctx_op_is_admin (bctx_op_find (s->name)) && keys->admin && *keys->admin
             && s_use_admin (c, keys->admin) < 0)
        code = BCTX_CLI_USAGE;
    else
        code = s->run (c, argc, argv);
    zmq_close (c->req);
    zmq_ctx_term (c->zctx);
    free (c->admin);
    return code;
}

int
main (int argc, char **argv)
{
    bctx_cli_t c = { .endpoint = getenv ("BCTX_ENDPOINT"), .timeout_ms = 5000,
                     .terminal = isatty (STDOUT_FILENO) };
    c.pretty = c.terminal;
    s_keys_t keys = { .server = getenv ("BCTX_SERVER_KEY"),
                      .public_key = getenv ("BCTX_PUBLIC_KEY"),
                      .secret = getenv ("BCTX_SECRET_KEY"), .admin = getenv ("BCTX_ADMIN"),
                      .endpoint_from = "$BCTX_ENDPOINT" };
    if (!c.endpoint || !*c.endpoint)
        c.endpoint = S_DEFAULT_ENDPOINT, keys.endpoint_from = "the default";
    int code = s_options (&c, &keys, argc, argv);
    if (code >= 0)
        return code;
    if (optind >= argc) {
        fprintf (stderr, "bctx: missing SUBCOMMAND\n");
        s_usage (stderr);
        return BCTX_CLI_USAGE;
    }
    c.sub = argv[optind];
    const s_subcommand_t *s = s_subcommand (c.sub);
    int sargc = argc - optind - 1;
    char **sargv = argv + optind + 1;
    if (!s) {
        fprintf (stderr, "bctx: unknown subcommand \"%s\"\n", c.sub);
        s_usage (stderr);
        return BCTX_CLI_USAGE;
    }
    if (strcmp (s->name, "help") == 0)
        return s_help (sargc, sargv);
    if (strcmp (s->name, "keygen") == 0)
        return s_keygen (&c, sargc, sargv);
    if (strcmp (s->name, "new-context") == 0)
        return bctx_cli_new_context (&c, sargc, sargv);
    code = s_run (&c, &keys, s, sargc, sargv);
    fflush (stdout);
    return code;
}
