/*
 * cli - what the parts of the `bctx` command-line client share: the
 * connection to a host, the exit codes, the subcommands' argument parser
 * and usage texts (cli.c), the subcommands (cli_ops.c), printing for a
 * terminal or a pipe (cli_show.c), the live ones: events --follow,
 * replay --wait, stats --watch (cli_live.c), and new-context, which
 * writes a plugin to start from (cli_new.c).
 *
 * Exit codes: 0 done, 1 the host answered with an error, 2 usage error,
 * 3 no host answered in time.
 */
#ifndef BCTX_CLI_H
#define BCTX_CLI_H

#include <jansson.h>

enum {
    BCTX_CLI_DONE = 0,            /* done */
    BCTX_CLI_ERROR = 1,           /* the host answered with an error */
    BCTX_CLI_USAGE = 2,           /* the command line is wrong */
    BCTX_CLI_TIMEOUT = 3          /* no host answered in time */
};

/* The client: one REQ socket to the host (or its admin endpoint). */
typedef struct bctx_cli {
    void *zctx;                   /* ZeroMQ context */
    void *req;                    /* REQ socket to the host */
    const char *endpoint;         /* where the host is (borrowed, or admin) */
    int timeout_ms;               /* how long to wait for each reply */
    char *admin;                  /* the admin endpoint in use (new), or NULL */
    int pretty;                   /* print for people (a terminal, or --pretty) */
    int terminal;                 /* stdout is a terminal (progress, redraws) */
    const char *sub;              /* the subcommand running (borrowed) */
    int header;                   /* the events table's header is printed */
    const char *server_key;       /* the host's CURVE public key, or NULL */
    const char *public_key;       /* this client's CURVE public key, or NULL */
    const char *secret_key;       /* this client's CURVE secret key, or NULL */
} bctx_cli_t;

/* Sends req (borrowed) and waits for the reply, following a "forbidden"
 * that names the admin endpoint once.  Return: new reply, or NULL after
 * printing why, with *code set to the exit code. */
json_t *bctx_cli_call (bctx_cli_t *c, json_t *req, int *code);

/* As bctx_cli_call, with req stolen, for a reply that must be ok: an
 * error reply is printed as the subcommand `what` prints it.  Return: new
 * ok reply, or NULL with *code set. */
json_t *bctx_cli_call_ok (bctx_cli_t *c, const char *what, json_t *req, int *code);

/* Sends req (stolen), prints the reply as `c->sub` prints it.  Return the
 * exit code. */
int bctx_cli_simple (bctx_cli_t *c, json_t *req);

/* --- arguments (cli.c) ------------------------------------------------ */

/* What an option of a subcommand takes. */
enum {
    BCTX_CLI_FLAG,                /* nothing: *(int *) out = 1 */
    BCTX_CLI_TEXT,                /* a value: *(const char **) out */
    BCTX_CLI_COUNT,               /* a whole number >= min: *(long long *) out */
    BCTX_CLI_MAYBE_COUNT          /* a flag, with a whole number >= min after it
                                     when the next argument is one: *(long long *)
                                     out, set to 0 without one */
};

/* One option of a subcommand. */
typedef struct {
    const char *name;             /* "--limit" */
    int kind;                     /* BCTX_CLI_* above */
    long long min;                /* the least number a COUNT takes */
    void *out;                    /* where the value goes (borrowed) */
} bctx_cli_opt_t;

/* Parses a subcommand's arguments: options as opts (NULL-name ended)
 * says, then between min_pos and max_pos positional ones into pos
 * (borrowed from argv).  --help / -h print the subcommand's usage;
 * --pretty sets c->pretty.  Return -1 to go on, or the exit code after
 * printing (the usage on stdout for --help, else what is wrong and the
 * usage on stderr). */
int bctx_cli_parse (bctx_cli_t *c, int argc, char **argv, const bctx_cli_opt_t *opts,
                    const char **pos, int min_pos, int max_pos, int *npos);

/* Prints "bctx SUB: " and the message, then SUB's usage, on stderr.
 * Return BCTX_CLI_USAGE. */
int bctx_cli_usage_error (const char *sub, const char *fmt, ...)
    __attribute__ ((format (printf, 2, 3)));

/* Parses a whole number >= min.  Return 0, or -1. */
int bctx_cli_number (const char *s, long long min, long long *out);

/* --- the subcommands (cli_ops.c) -------------------------------------- */

int bctx_cli_send (bctx_cli_t *c, int argc, char **argv);
int bctx_cli_events (bctx_cli_t *c, int argc, char **argv);
int bctx_cli_query (bctx_cli_t *c, int argc, char **argv);
int bctx_cli_replay (bctx_cli_t *c, int argc, char **argv);
int bctx_cli_retry (bctx_cli_t *c, int argc, char **argv);
int bctx_cli_reload (bctx_cli_t *c, int argc, char **argv);
int bctx_cli_stats (bctx_cli_t *c, int argc, char **argv);
/* contexts and stop: no argument, the op alone. */
int bctx_cli_bare (bctx_cli_t *c, int argc, char **argv);

/* Prints the events of one context from `from` on, a page at a time, at
 * most limit (< 0: all).  *last gets the position of the last event read
 * (from - 1 when none).  Return the exit code. */
int bctx_cli_events_of (bctx_cli_t *c, const char *context, const char *aggregate,
                        long long from, long long limit, long long *printed,
                        long long *last);

/* new-context NAME [DIR]: writes a minimal plugin, runs without a host
 * (cli_new.c).  Return the exit code. */
int bctx_cli_new_context (bctx_cli_t *c, int argc, char **argv);

/* --- printing (cli_show.c) -------------------------------------------- */

/* Prints a reply of op `what` (borrowed): a JSON line, or for people
 * (c->pretty) a table (contexts, stats) or indented JSON.  Return the
 * exit code its "ok" says. */
int bctx_cli_show (const bctx_cli_t *c, const char *what, json_t *reply);

/* Prints one event (borrowed): a JSON line, or a table row for people
 * (the header before the first, once: c->header). */
void bctx_cli_show_event (bctx_cli_t *c, json_t *event);

/* Draws a progress bar of done/total on stderr's line, in place. */
void bctx_cli_show_progress (const char *label, double done, double total);

/* --- live (cli_live.c) ------------------------------------------------ */

/* events --follow of context from `from` on, at most limit (< 0: until
 * SIGINT).  Return the exit code. */
int bctx_cli_follow (bctx_cli_t *c, const char *context, const char *aggregate,
                     long long from, long long limit, const char *bus);

/* Waits until projection `name` rebuilt (its rebuilds past `before`,
 * live, no lag), polling stats.  Return the exit code. */
int bctx_cli_replay_wait (bctx_cli_t *c, const char *name, long long before);

/* The rebuilds projection `name` finished, from stats: >= 0, or -1 with
 * *code set (printed why). */
long long bctx_cli_rebuilds (bctx_cli_t *c, const char *name, int *code);

/* stats every `seconds`, `count` times (< 0: until SIGINT), redrawn in
 * place on a terminal.  Return the exit code. */
int bctx_cli_watch (bctx_cli_t *c, double seconds, long long count);

#endif
