/*
 * bctx-soak - the bank under load and chaos, then its invariants checked.
 *
 * Starts the real bin/bctx-host with the bank (accounts and transfers, the
 * balances projection and the transfer-process reactor) in a temporary
 * directory, and runs for --seconds:
 *
 *   - client threads sending Deposits, Withdraws (some beyond the balance)
 *     and RequestTransfers (some to or from the unknown account "nobody",
 *     some beyond any balance), each with its own command id, resending
 *     the very same request (same id) after a timeout or an error until
 *     some answer comes; --impatient of them (default 1) give up on their
 *     first tries after a few ms, so copies of a command meet in the host;
 *   - a retrier resending commands already answered, with their ids, and
 *     checking the answer is the first one;
 *   - a chaos loop, on a seeded random schedule or a fixed --plan: kill -9
 *     of the host and a restart on the same data, reloads of accounts
 *     between its versions 1.0.0 and 2.0.0 through `bctx reload`, SIGHUPs
 *     with the config unchanged and with accounts' plugin path switched
 *     between copies of the two versions.
 *
 * Then it lets the transfers end, stops the host with SIGTERM, reads both
 * logs straight from their store files, starts the host again to read the
 * projections, and checks: positions 1..N without gaps; no command id
 * twice in a log; every acknowledged command in the log once, at the
 * position it was acknowledged with, and no acknowledged rejection there;
 * retries answered as the first time; money conserved (the balances add up
 * to the clients' deposits minus their withdrawals, each event's balance
 * is the fold's, none negative, and the balances projection equals the
 * fold); every transfer ended, moving money at most once (one withdrawal,
 * one deposit, as its outcome says); clean stops exit 0; the host logged
 * no ERROR line.
 *
 * It prints what it did and what it found, optionally writes the same as
 * JSON (--report FILE), and exits 1 when an invariant fails, naming the
 * offending ids and positions.  `make soak` runs it; so does
 * tests/integration/test_soak with a short fixed plan.
 *
 *   bctx-soak [--seconds N] [--seed N] [--clients N] [--impatient N]
 *             [--plan T:ACTION,…] [--report FILE] [--keep] [--quiet]
 *
 * ACTION is kill, reload, hup, hup-swap, reload-kill (kill -9 a few ms
 * into a reload) or hup-kill (kill -9 a few ms after a SIGHUP that
 * switches the plugin); T is seconds from the start of the load.  Built
 * files are found under $BCTX_BUILD (default: the folder above this
 * binary's).
 */
#include "../integration/harness.h"
#include "store.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define S_ACCOUNTS       12          /* accounts opened at the start */
#define S_FUNDING        1000        /* deposited into each at the start */
#define S_MAX_CLIENTS    64
#define S_MAX_ACTIONS    1024        /* chaos actions in one run, at most */
#define S_REPLY_MS       2000        /* a request without a reply by then is resent */
#define S_IMPATIENT_MS   20          /* an impatient client's first waits, at most */
#define S_IMPATIENT_TRIES 3          /* and how many of them */
#define S_GIVE_UP_US     (120 * 1000000LL) /* a command unanswered this long stays unknown */
#define S_SETTLE_US      (180 * 1000000LL) /* longest wait for the read side to settle */
#define S_WAIT_US        (60 * 1000000LL)  /* longest wait for a SIGHUP or a reload to show */
#define S_SHOWN          20          /* offending ids printed per invariant, at most */
#define S_NOBODY         (-1)        /* account index of the unknown account */

/* What a client command does. */
typedef enum {
    S_DEPOSIT,
    S_WITHDRAW,
    S_TRANSFER,
    S_OPEN
} s_kind_t;

/* What came of a command. */
typedef enum {
    S_PENDING,                       /* not answered yet */
    S_OK,                            /* acknowledged ok, with a position */
    S_REJECTED,                      /* acknowledged as rejected */
    S_UNKNOWN                        /* never answered, or only with errors */
} s_outcome_t;

/* One command a client sent, and what came of it.  Never moved once
 * recorded (the records array holds pointers). */
typedef struct {
    char id[40];                     /* command id, the same on every retry */
    s_kind_t kind;                   /* what it does */
    int account;                     /* account (or source) index, or S_NOBODY */
    int to;                          /* target index of a transfer, or S_NOBODY */
    int64_t amount;                  /* the amount it moves */
    _Atomic int outcome;             /* an s_outcome_t */
    int64_t position;                /* its event's position, when S_OK */
    int attempts;                    /* requests sent for it */
} s_command_t;

/* A chaos action. */
typedef enum {
    S_KILL,                          /* kill -9, restart on the same data */
    S_RELOAD,                        /* bctx reload accounts with the other version */
    S_HUP,                           /* SIGHUP, config unchanged */
    S_HUP_SWAP,                      /* SIGHUP, accounts' plugin path switched */
    S_RELOAD_KILL,                   /* kill -9 while a reload runs, restart */
    S_HUP_KILL,                      /* kill -9 right after a switching SIGHUP, restart */
    S_N_ACTIONS
} s_action_t;

static const char *const s_action_names[S_N_ACTIONS] = {
    "kill", "reload", "hup", "hup-swap", "reload-kill", "hup-kill"
};

/* One planned action. */
typedef struct {
    double at;                       /* seconds from the start of the load */
    s_action_t action;               /* what to do */
} s_step_t;

/* What the run did, for the summary.  Counters touched by several threads
 * are atomic. */
typedef struct {
    _Atomic long sent;               /* commands sent (first attempts) */
    _Atomic long ok;                 /* acknowledged ok */
    _Atomic long rejected;           /* acknowledged as rejected */
    _Atomic long unknown;            /* never answered */
    _Atomic long timeouts;           /* requests without a reply in time */
    _Atomic long errors;             /* error replies other than rejected */
    _Atomic long retries;            /* requests resent after a timeout or an error */
    _Atomic long resends;            /* answered commands resent by the retrier */
    _Atomic long transfers;          /* RequestTransfers acknowledged ok */
    long kills;                      /* kill -9 of the host */
    long restarts;                   /* restarts after them */
    long reloads_ok;                 /* bctx reload answered ok */
    long reloads_failed;             /* bctx reload answered otherwise */
    long hups;                       /* SIGHUPs with the config unchanged, applied */
    long hup_swaps;                  /* SIGHUPs switching the plugin, applied and reloaded */
    long hups_failed;                /* SIGHUPs refused, or whose reload did not show */
    long reload_kills;               /* kill -9 while a reload ran */
    long hup_kills;                  /* kill -9 right after a SIGHUP */
    long clean_stops;                /* SIGTERMs that exited 0 */
} s_counts_t;

/* One invariant's verdict: how many offences, and the first few. */
typedef struct {
    const char *name;                /* short name, in the report */
    const char *what;                /* what it checks, one line */
    long offences;                   /* how many times it failed */
    char shown[S_SHOWN][200];        /* the first offences, described */
} s_check_t;

enum {
    C_POSITIONS, C_UNIQUE, C_ACKED, C_RETRIES, C_MONEY, C_TRANSFERS,
    C_PROJECTIONS, C_HOST, C_LOG, C_N
};

static s_check_t s_checks[C_N] = {
    [C_POSITIONS] = { "positions", "each log's positions run 1..N without a gap" },
    [C_UNIQUE] = { "unique_ids", "no command id twice in a log" },
    [C_ACKED] = { "acknowledged_once", "every acknowledged command in its log once, at its "
                                      "position; no acknowledged rejection there" },
    [C_RETRIES] = { "retries_first_answer", "a resent command is answered as the first time" },
    [C_MONEY] = { "money", "sum of balances = client deposits - withdrawals; each event's "
                           "balance is the fold's; none negative" },
    [C_TRANSFERS] = { "transfers_once", "every transfer ended, with at most one withdrawal and "
                                        "one deposit, as its outcome says" },
    [C_PROJECTIONS] = { "projections", "the balances and transfers projections, caught up, "
                                       "equal the logs" },
    [C_HOST] = { "host", "the host restarts after kill -9 and exits 0 on SIGTERM" },
    [C_LOG] = { "host_log", "the host logged no ERROR line" },
};

static h_host_t s_host;              /* the host under test */
static s_counts_t s_counts;
static pthread_mutex_t s_lock = PTHREAD_MUTEX_INITIALIZER; /* guards the two below */
static char s_endpoint[64];          /* the API of the host now running */
static s_command_t **s_records;      /* every command sent, in order recorded */
static size_t s_n_records, s_cap_records;
static atomic_bool s_stop_new;       /* clients send no new command */
static atomic_bool s_stop_retrier;   /* the retrier stops */
static char s_plugin[2][400];        /* the copies of accounts 1.0.0 and 2.0.0 */
static int s_config_v;               /* which of them the config names (0, 1) */
static int s_quiet;                  /* print less (for the test) */
static unsigned s_chaos_seed;        /* the chaos loop's random sequence */

/* Records an offence against invariant c, printf-style. */
static void
s_offend (int c, const char *fmt, ...)
{
    s_check_t *k = &s_checks[c];
    if (k->offences < S_SHOWN) {
        va_list ap;
        va_start (ap, fmt);
        vsnprintf (k->shown[k->offences], sizeof k->shown[0], fmt, ap);
        va_end (ap);
    }
    k->offences++;
}

/* Prints a line of progress to stderr, with the time since the start. */
static void
s_say (const char *fmt, ...)
{
    static long long start;
    if (!start)
        start = h_now_us ();
    fprintf (stderr, "soak %7.2fs ", (double) (h_now_us () - start) / 1e6);
    va_list ap;
    va_start (ap, fmt);
    vfprintf (stderr, fmt, ap);
    va_end (ap);
    fputc ('\n', stderr);
}

/* The id of account `index` ("acc-3", or "nobody"), in out. */
static void
s_account_name (char *out, size_t size, int index)
{
    if (index == S_NOBODY)
        snprintf (out, size, "nobody");
    else
        snprintf (out, size, "acc-%d", index);
}

/* The API endpoint of the host now running, in out (safe from any thread). */
static void
s_get_endpoint (char *out, size_t size)
{
    pthread_mutex_lock (&s_lock);
    snprintf (out, size, "%s", s_endpoint);
    pthread_mutex_unlock (&s_lock);
}

/* Points every thread at a (re)started host's API. */
static void
s_set_endpoint (const char *endpoint)
{
    pthread_mutex_lock (&s_lock);
    snprintf (s_endpoint, sizeof s_endpoint, "%s", endpoint);
    pthread_mutex_unlock (&s_lock);
}

/* Adds a command to the records.  c: stolen.  Return 0, or -1 when out of
 * memory (c is freed). */
static int
s_record (s_command_t *c)
{
    pthread_mutex_lock (&s_lock);
    if (s_n_records == s_cap_records) {
        size_t cap = s_cap_records ? s_cap_records * 2 : 4096;
        s_command_t **grown = realloc (s_records, cap * sizeof *grown);
        if (!grown) {
            pthread_mutex_unlock (&s_lock);
            free (c);
            return -1;
        }
        s_records = grown;
        s_cap_records = cap;
    }
    s_records[s_n_records++] = c;
    pthread_mutex_unlock (&s_lock);
    return 0;
}

/* The request text of command c.  Return: new. */
static char *
s_body (const s_command_t *c)
{
    char a[32], b[32];
    s_account_name (a, sizeof a, c->account);
    s_account_name (b, sizeof b, c->to);
    json_t *data;
    const char *context = "accounts", *command;
    switch (c->kind) {
    case S_OPEN:
        command = "OpenAccount";
        data = json_pack ("{s:s, s:s}", "account", a, "owner", "Ada");
        break;
    case S_DEPOSIT:
        command = "Deposit";
        data = json_pack ("{s:s, s:I}", "account", a, "amount", (json_int_t) c->amount);
        break;
    case S_WITHDRAW:
        command = "Withdraw";
        data = json_pack ("{s:s, s:I}", "account", a, "amount", (json_int_t) c->amount);
        break;
    default:
        context = "transfers";
        command = "RequestTransfer";
        data = json_pack ("{s:s, s:s, s:s, s:I}", "transfer", c->id, "from", a, "to", b,
                          "amount", (json_int_t) c->amount);
        break;
    }
    json_t *req = json_pack ("{s:s, s:s, s:s, s:s, s:o}", "op", "send", "context", context,
                             "command", command, "id", c->id, "data", data);
    char *text = json_dumps (req, JSON_COMPACT);
    json_decref (req);
    return text;
}

/* The first event's position in an ok reply, or 0. */
static int64_t
s_reply_position (json_t *reply)
{
    json_t *ev = json_array_get (json_object_get (reply, "events"), 0);
    return json_integer_value (json_object_get (ev, "position"));
}

/* The error code of a reply, or NULL.  Return: borrowed. */
static const char *
s_reply_code (json_t *reply)
{
    return json_string_value (json_object_get (json_object_get (reply, "error"), "code"));
}

/*
 * Sends command c until an answer comes: ok (with its position) or
 * rejected.  A timeout or any other error resends the very same request
 * after a short wait, for at most S_GIVE_UP_US.  With `impatient` (a
 * seed), the first S_IMPATIENT_TRIES waits last a few ms, so copies of the
 * command reach the host while the first is still queued or deciding.
 * *position gets the ok answer's position.  Return the outcome (S_OK,
 * S_REJECTED or S_UNKNOWN).
 */
static int
s_send_until_answered (const s_command_t *c, unsigned *impatient, int *attempts,
                       int64_t *position)
{
    char *body = s_body (c);
    int outcome = S_UNKNOWN;
    long long give_up = h_now_us () + S_GIVE_UP_US;
    while (outcome == S_UNKNOWN && h_now_us () < give_up) {
        char endpoint[64];
        s_get_endpoint (endpoint, sizeof endpoint);
        int hurry = impatient && *attempts < S_IMPATIENT_TRIES;
        int wait_ms = hurry ? 1 + rand_r (impatient) % S_IMPATIENT_MS : S_REPLY_MS;
        if ((*attempts)++ > 0)
            atomic_fetch_add (&s_counts.retries, 1);
        json_t *reply = h_request (endpoint, body, strlen (body), wait_ms);
        const char *code = s_reply_code (reply);
        if (!reply) {
            atomic_fetch_add (&s_counts.timeouts, 1);
        } else if (json_is_true (json_object_get (reply, "ok"))) {
            *position = s_reply_position (reply);
            outcome = S_OK;
        } else if (code && strcmp (code, "rejected") == 0) {
            outcome = S_REJECTED;
        } else {
            atomic_fetch_add (&s_counts.errors, 1);
            if (code && strcmp (code, "unavailable") != 0 && strcmp (code, "internal") != 0) {
                char *text = json_dumps (reply, JSON_COMPACT);
                s_say ("unexpected answer to %s: %s", c->id, text);
                free (text);
            }
        }
        json_decref (reply);
        if (outcome == S_UNKNOWN && !hurry)
            usleep (50000);
    }
    free (body);
    return outcome;
}

/* Sends a new command, records it and what came of it (impatient: as in
 * s_send_until_answered).  Return the outcome, or -1 when out of memory. */
static int
s_run_command (s_kind_t kind, const char *id, int account, int to, int64_t amount,
               unsigned *impatient)
{
    s_command_t *c = calloc (1, sizeof *c);
    if (!c)
        return -1;
    snprintf (c->id, sizeof c->id, "%s", id);
    c->kind = kind;
    c->account = account;
    c->to = to;
    c->amount = amount;
    atomic_store (&c->outcome, S_PENDING);
    if (s_record (c) < 0)
        return -1;
    atomic_fetch_add (&s_counts.sent, 1);
    int attempts = 0;
    int64_t position = 0;
    int outcome = s_send_until_answered (c, impatient, &attempts, &position);
    c->attempts = attempts;
    c->position = position;
    atomic_store (&c->outcome, outcome);  /* after position: the retrier reads it */
    if (outcome == S_OK)
        atomic_fetch_add (&s_counts.ok, 1);
    else if (outcome == S_REJECTED)
        atomic_fetch_add (&s_counts.rejected, 1);
    else
        atomic_fetch_add (&s_counts.unknown, 1);
    if (outcome == S_OK && kind == S_TRANSFER)
        atomic_fetch_add (&s_counts.transfers, 1);
    return outcome;
}

/* A random account index, now and then the unknown account. */
static int
s_pick_account (unsigned *seed, int nobody_in)
{
    if (nobody_in && rand_r (seed) % nobody_in == 0)
        return S_NOBODY;
    return rand_r (seed) % S_ACCOUNTS;
}

/* Arguments of a client thread. */
typedef struct {
    int index;                       /* the client's number, in its ids */
    unsigned seed;                   /* its random sequence */
    int impatient;                   /* it resends after a few ms at first */
} s_client_arg_t;

/* A client: commands one after the other until told to stop. */
static void *
s_client (void *arg)
{
    s_client_arg_t *a = arg;
    unsigned seed = a->seed, hurry = a->seed ^ 0x1234;
    unsigned *impatient = a->impatient ? &hurry : NULL;
    for (long n = 0; !atomic_load (&s_stop_new); n++) {
        char id[40];
        snprintf (id, sizeof id, "c%d-%ld", a->index, n);
        int dice = rand_r (&seed) % 100;
        int rc;
        if (dice < 40) {
            rc = s_run_command (S_DEPOSIT, id, s_pick_account (&seed, 40), S_NOBODY,
                                1 + rand_r (&seed) % 100, impatient);
        } else if (dice < 65) {
            rc = s_run_command (S_WITHDRAW, id, s_pick_account (&seed, 0), S_NOBODY,
                                1 + rand_r (&seed) % 300, impatient);
        } else {
            int from = s_pick_account (&seed, 30), to;
            do
                to = s_pick_account (&seed, 25);
            while (to == from);
            int64_t amount = rand_r (&seed) % 10 == 0 ? 1000000 : 1 + rand_r (&seed) % 200;
            rc = s_run_command (S_TRANSFER, id, from, to, amount, impatient);
        }
        if (rc < 0) {
            s_say ("client %d: out of memory; it stops", a->index);
            break;
        }
    }
    return NULL;
}

/* The retrier: resends commands already answered, with their ids, and
 * checks the answer is the first one. */
static void *
s_retrier (void *arg)
{
    unsigned seed = *(unsigned *) arg;
    while (!atomic_load (&s_stop_retrier)) {
        usleep (5000);
        s_command_t copy;
        pthread_mutex_lock (&s_lock);
        size_t n = s_n_records;
        s_command_t *c = n ? s_records[(size_t) rand_r (&seed) % n] : NULL;
        int first = c ? atomic_load (&c->outcome) : S_PENDING;
        if (c && (first == S_OK || first == S_REJECTED)) {
            memcpy (copy.id, c->id, sizeof copy.id);
            copy.kind = c->kind;
            copy.account = c->account;
            copy.to = c->to;
            copy.amount = c->amount;
            copy.position = c->position;
        }
        pthread_mutex_unlock (&s_lock);
        if (first != S_OK && first != S_REJECTED)
            continue;
        int attempts = 0;
        int64_t position = 0;
        int again = s_send_until_answered (&copy, NULL, &attempts, &position);
        atomic_fetch_add (&s_counts.resends, 1);
        if (again == S_UNKNOWN)
            continue;              /* no answer at all: nothing to compare */
        if (again != first || (first == S_OK && position != copy.position))
            s_offend (C_RETRIES, "%s: first %s at position %lld, resent: %s at position %lld",
                      copy.id, first == S_OK ? "ok" : "rejected", (long long) copy.position,
                      again == S_OK ? "ok" : "rejected", (long long) position);
    }
    return NULL;
}

/* --- the host ---------------------------------------------------------- */

/* Copies file `from` to `to`.  Return 0 or -1. */
static int
s_copy (const char *from, const char *to)
{
    FILE *in = fopen (from, "rb");
    if (!in)
        return -1;
    FILE *out = fopen (to, "wb");
    if (!out) {
        fclose (in);
        return -1;
    }
    char buf[65536];
    size_t n;
    int rc = 0;
    while ((n = fread (buf, 1, sizeof buf, in)) > 0)
        if (fwrite (buf, 1, n, out) != n)
            rc = -1;
    if (ferror (in))
        rc = -1;
    fclose (in);
    if (fclose (out) != 0)
        rc = -1;
    return rc;
}

/* Sets the host's contexts to the bank, accounts from copy v. */
static void
s_set_contexts (int v)
{
    s_config_v = v;
    snprintf (s_host.contexts, sizeof s_host.contexts,
              "[{\"name\": \"accounts\", \"plugin\": \"%s\"},"
              " {\"name\": \"transfers\", \"plugin\": \"%s\"}]",
              s_plugin[v], h_path ("plugins/transfers/transfers.so"));
}

/* Rewrites the config in place (same ports), as h_write_config would.
 * Return 0 or -1. */
static int
s_rewrite_config (void)
{
    FILE *f = fopen (s_host.config, "w");
    if (!f)
        return -1;
    fprintf (f, "{\"host\": {\"name\": \"test\", \"api\": \"%s\", \"publish\": \"%s\","
                " \"data\": \"%s/data\"%s%s},\n \"contexts\": %s}\n",
             s_host.endpoint, s_host.publish, s_host.dir, s_host.host_extra[0] ? ", " : "",
             s_host.host_extra, s_host.contexts);
    return fclose (f) == 0 ? 0 : -1;
}

/* One request to the host now running.  Return: new reply, or NULL. */
static json_t *
s_ask (const char *body)
{
    char endpoint[64];
    s_get_endpoint (endpoint, sizeof endpoint);
    return h_request (endpoint, body, strlen (body), 10000);
}

/* The version accounts runs now ("1.0.0", "2.0.0"), in out; "" if unknown. */
static void
s_running_version (char *out, size_t size)
{
    out[0] = '\0';
    json_t *r = s_ask ("{\"op\":\"contexts\"}");
    size_t i;
    json_t *c;
    json_array_foreach (json_object_get (r, "contexts"), i, c)
        if (strcmp (json_string_value (json_object_get (c, "name")), "accounts") == 0)
            snprintf (out, size, "%s", json_string_value (json_object_get (c, "version")));
    json_decref (r);
}

/* Polls until accounts runs `version`, for at most S_WAIT_US.  Return 0
 * or -1. */
static int
s_wait_version (const char *version)
{
    long long deadline = h_now_us () + S_WAIT_US;
    while (h_now_us () < deadline) {
        char now[32];
        s_running_version (now, sizeof now);
        if (strcmp (now, version) == 0)
            return 0;
        usleep (50000);
    }
    return -1;
}

/* How many times `needle` is in the host's log. */
static int
s_log_count (const char *needle)
{
    char *log = h_read_log (&s_host);
    int n = 0;
    for (const char *p = log; p && (p = strstr (p, needle)); p += strlen (needle))
        n++;
    free (log);
    return n;
}

/* Sends SIGHUP and waits for the host to apply or refuse the config.
 * Return 0 when applied, -1 otherwise. */
static int
s_sighup (void)
{
    static const char applied[] = "SIGHUP: config applied";
    static const char refused[] = "SIGHUP: the new config is refused";
    int a = s_log_count (applied), r = s_log_count (refused);
    kill (s_host.pid, SIGHUP);
    long long deadline = h_now_us () + S_WAIT_US;
    while (h_now_us () < deadline) {
        usleep (20000);
        if (s_log_count (applied) > a)
            return 0;
        if (s_log_count (refused) > r)
            return -1;
    }
    return -1;
}

/* kill -9, then a restart on the same data.  Return 0, or -1 when the
 * host does not come back. */
static int
s_kill_and_restart (void)
{
    int status = h_stop (&s_host, SIGKILL);
    s_counts.kills++;
    if (status != 128 + SIGKILL)
        s_offend (C_HOST, "kill -9: the host had already exited (status %d)", status);
    if (h_start (&s_host) != 0) {
        s_offend (C_HOST, "the host did not restart after kill -9 %ld", s_counts.kills);
        return -1;
    }
    s_counts.restarts++;
    s_set_endpoint (s_host.endpoint);
    return 0;
}

/* bctx reload accounts with the version it does not run now. */
static void
s_reload (void)
{
    char now[32];
    s_running_version (now, sizeof now);
    int v = strcmp (now, "2.0.0") == 0 ? 0 : 1;
    char endpoint[64];
    s_get_endpoint (endpoint, sizeof endpoint);
    char *argv[] = { "bctx", "-e", endpoint, "--timeout", "60", "reload", "accounts",
                     s_plugin[v], NULL };
    char *out = NULL;
    int code = h_cli_argv (&out, argv);
    json_t *reply = h_json (out);
    const char *version = json_string_value (json_object_get (reply, "version"));
    if (code == 0 && version && strcmp (version, v ? "2.0.0" : "1.0.0") == 0) {
        s_counts.reloads_ok++;
        s_say ("reload: accounts %s -> %s", now, version);
    } else {
        s_counts.reloads_failed++;
        s_say ("reload: accounts %s -> %s failed (exit %d): %s", now, v ? "2.0.0" : "1.0.0",
               code, out ? out : "");
    }
    json_decref (reply);
    free (out);
}

/* SIGHUP; with swap, after switching the config's accounts plugin to the
 * other copy, then waiting for the reload it makes. */
static void
s_hup (int swap)
{
    int before = s_config_v;
    if (swap) {
        s_set_contexts (!before);
        if (s_rewrite_config () != 0) {
            s_say ("hup-swap: cannot rewrite %s", s_host.config);
            s_set_contexts (before);
            return;
        }
    }
    int rc = s_sighup ();
    if (rc == 0 && swap)
        rc = s_wait_version (s_config_v ? "2.0.0" : "1.0.0");
    if (rc != 0) {
        s_counts.hups_failed++;
        s_say ("%s: not applied (see %s)", swap ? "hup-swap" : "hup", s_host.log);
        if (swap) {
            /* The host still runs the old config: say so in the file too. */
            s_set_contexts (before);
            s_rewrite_config ();
        }
        return;
    }
    if (swap) {
        s_counts.hup_swaps++;
        s_say ("hup-swap: config names accounts %s; reloaded", s_config_v ? "2.0.0" : "1.0.0");
    } else {
        s_counts.hups++;
        s_say ("hup: config applied");
    }
}

/* kill -9 while `bctx reload` of accounts runs (a few ms after it
 * started), then a restart.  Return 0, or -1 when the host does not come
 * back. */
static int
s_reload_kill (void)
{
    char now[32];
    s_running_version (now, sizeof now);
    int v = strcmp (now, "2.0.0") == 0 ? 0 : 1;
    char endpoint[64];
    s_get_endpoint (endpoint, sizeof endpoint);
    char *argv[] = { "bctx", "-e", endpoint, "--timeout", "2", "reload", "accounts",
                     s_plugin[v], NULL };
    pid_t cli = h_spawn ("bctx", argv, NULL);
    usleep ((useconds_t) (rand_r (&s_chaos_seed) % 40000));
    s_say ("kill -9 (pid %d) during a reload to %s", (int) s_host.pid, v ? "2.0.0" : "1.0.0");
    int rc = s_kill_and_restart ();
    s_counts.reload_kills++;
    h_wait (cli, 30000);
    return rc;
}

/* A SIGHUP switching accounts' plugin path, kill -9 a few ms later, then
 * a restart (on the new config).  Return 0, or -1 when the host does not
 * come back. */
static int
s_hup_kill (void)
{
    s_set_contexts (!s_config_v);
    if (s_rewrite_config () != 0)
        s_say ("hup-kill: cannot rewrite %s", s_host.config);
    kill (s_host.pid, SIGHUP);
    usleep ((useconds_t) (rand_r (&s_chaos_seed) % 40000));
    s_say ("kill -9 (pid %d) after a SIGHUP naming accounts %s", (int) s_host.pid,
           s_config_v ? "2.0.0" : "1.0.0");
    int rc = s_kill_and_restart ();
    s_counts.hup_kills++;
    return rc;
}

/* One chaos action.  Return 0, or -1 when the host is gone for good. */
static int
s_act (s_action_t action)
{
    switch (action) {
    case S_KILL:
        s_say ("kill -9 (pid %d)", (int) s_host.pid);
        if (s_kill_and_restart () != 0)
            return -1;
        s_say ("restarted, pid %d", (int) s_host.pid);
        return 0;
    case S_RELOAD:
        s_reload ();
        return 0;
    case S_HUP:
        s_hup (0);
        return 0;
    case S_HUP_SWAP:
        s_hup (1);
        return 0;
    case S_RELOAD_KILL:
        return s_reload_kill ();
    default:
        return s_hup_kill ();
    }
}

/* Parses --plan "T:ACTION,…" into steps.  Return their number, or -1. */
static int
s_parse_plan (const char *text, s_step_t *steps, int max)
{
    char *copy = strdup (text);
    int n = 0;
    char *save = NULL;
    for (char *item = strtok_r (copy, ",", &save); item; item = strtok_r (NULL, ",", &save)) {
        char *colon = strchr (item, ':');
        if (!colon || n == max) {
            free (copy);
            return -1;
        }
        *colon = '\0';
        char *end;
        double at = strtod (item, &end);
        if (end == item || *end || at < 0) {
            free (copy);
            return -1;
        }
        int a;
        for (a = 0; a < S_N_ACTIONS && strcmp (s_action_names[a], colon + 1) != 0; a++)
            ;
        if (a == S_N_ACTIONS) {
            free (copy);
            return -1;
        }
        steps[n++] = (s_step_t) { .at = at, .action = (s_action_t) a };
    }
    free (copy);
    return n;
}

/* A seeded random plan over `seconds`: an action every 1 to 5 s. */
static int
s_random_plan (unsigned seed, double seconds, s_step_t *steps, int max)
{
    int n = 0;
    double at = 1 + rand_r (&seed) % 3000 / 1000.0;
    while (at < seconds - 1 && n < max) {
        int dice = rand_r (&seed) % 100;
        s_action_t a = dice < 25 ? S_KILL : dice < 50 ? S_RELOAD : dice < 60 ? S_HUP
                       : dice < 80 ? S_HUP_SWAP : dice < 90 ? S_RELOAD_KILL : S_HUP_KILL;
        steps[n++] = (s_step_t) { .at = at, .action = a };
        at += 1 + rand_r (&seed) % 4000 / 1000.0;
    }
    return n;
}

/* --- the end: settle, read, check ------------------------------------- */

/* The integer at j.a.b.c(.d) of a stats reply, or 0. */
static json_int_t
s_path_int (json_t *j, const char *a, const char *b, const char *c, const char *d)
{
    json_t *v = json_object_get (json_object_get (json_object_get (j, a), b), c);
    return json_integer_value (d ? json_object_get (v, d) : v);
}

/* Waits until the reactor and both projections have read everything, for
 * at most S_SETTLE_US.  Return 0, or -1 (with the last stats printed). */
static int
s_wait_settled (const char *when)
{
    long long deadline = h_now_us () + S_SETTLE_US;
    json_t *st = NULL;
    while (h_now_us () < deadline) {
        json_decref (st);
        st = s_ask ("{\"op\":\"stats\"}");
        if (st && s_path_int (st, "reactors", "transfer-process", "lag", "transfers") == 0
            && s_path_int (st, "projections", "balances", "lag", "accounts") == 0
            && s_path_int (st, "projections", "transfers", "lag", "transfers") == 0) {
            json_int_t parked = s_path_int (st, "reactors", "transfer-process", "parked", NULL);
            if (parked)
                s_offend (C_TRANSFERS, "%s: the transfer process parked %lld event(s)", when,
                          (long long) parked);
            json_decref (st);
            return 0;
        }
        usleep (100000);
    }
    char *text = st ? json_dumps (st, JSON_COMPACT) : NULL;
    s_say ("%s: the read side did not settle within %lld s: %s", when,
           S_SETTLE_US / 1000000, text ? text : "(no stats)");
    free (text);
    json_decref (st);
    return -1;
}

/* What a fold of both logs found. */
typedef struct {
    json_t *ids[2];                  /* per log: command id -> position */
    int64_t head[2];                 /* per log: last position read */
    int64_t balance[S_ACCOUNTS];     /* fold of the accounts log */
    int64_t client_in, client_out;   /* deposits, withdrawals by clients */
    int64_t process_in, process_out; /* by the transfer process */
    json_t *moved;                   /* "transfers:P" -> [[type, account, amount], …] */
    json_t *transfers;               /* transfer id -> {position, from, to, amount, end, reason} */
    long completed, failed, pending; /* transfers by outcome */
} s_fold_t;

/* Which log a reader reads. */
enum { L_ACCOUNTS, L_TRANSFERS };

/* Arguments of a log reader's callback. */
typedef struct {
    s_fold_t *fold;                  /* what is folded */
    int log;                         /* L_ACCOUNTS or L_TRANSFERS */
} s_reader_t;

/* An account index from its id, or S_NOBODY when it is not one of ours. */
static int
s_account_index (const char *account)
{
    int a, n = 0;
    if (sscanf (account, "acc-%d%n", &a, &n) == 1 && account[n] == '\0' && a >= 0
        && a < S_ACCOUNTS)
        return a;
    return S_NOBODY;
}

/* Folds one event of either log.  Return 0. */
static int
s_fold_row (const bctx_row_t *e, void *arg)
{
    s_reader_t *r = arg;
    s_fold_t *f = r->fold;
    const char *log = r->log == L_ACCOUNTS ? "accounts" : "transfers";
    if (e->position != f->head[r->log] + 1)
        s_offend (C_POSITIONS, "%s: position %lld follows %lld", log, (long long) e->position,
                  (long long) f->head[r->log]);
    f->head[r->log] = e->position;
    json_t *meta = json_loads (e->metadata, 0, NULL);
    json_t *data = json_loads (e->data, 0, NULL);
    const char *id = json_string_value (json_object_get (meta, "command_id"));
    const char *cause = json_string_value (json_object_get (meta, "causation_id"));
    if (!id) {
        s_offend (C_UNIQUE, "%s: the event at position %lld has no command id", log,
                  (long long) e->position);
        id = "";
    }
    json_t *first = json_object_get (f->ids[r->log], id);
    if (first)
        s_offend (C_UNIQUE, "%s: command %s at positions %lld and %lld", log, id,
                  (long long) json_integer_value (first), (long long) e->position);
    else
        json_object_set_new (f->ids[r->log], id, json_integer (e->position));
    int process = strncmp (id, "transfer-process:", 17) == 0;
    int64_t amount = json_integer_value (json_object_get (data, "amount"));
    if (r->log == L_ACCOUNTS) {
        int a = s_account_index (e->aggregate);
        if (a == S_NOBODY) {
            s_offend (C_MONEY, "accounts: an event on unknown account %s at position %lld",
                      e->aggregate, (long long) e->position);
        } else if (strcmp (e->type, "Deposited") == 0 || strcmp (e->type, "Withdrawn") == 0) {
            int in = e->type[0] == 'D';
            f->balance[a] += in ? amount : -amount;
            *(process ? (in ? &f->process_in : &f->process_out)
                      : (in ? &f->client_in : &f->client_out)) += amount;
            int64_t said = json_integer_value (json_object_get (data, "balance"));
            if (said != f->balance[a])
                s_offend (C_MONEY, "accounts: position %lld (%s) says balance %lld, the fold "
                          "%lld", (long long) e->position, id, (long long) said,
                          (long long) f->balance[a]);
            if (f->balance[a] < 0)
                s_offend (C_MONEY, "accounts: %s below zero at position %lld", e->aggregate,
                          (long long) e->position);
            if (process && cause) {
                json_t *list = json_object_get (f->moved, cause);
                if (!list)
                    json_object_set_new (f->moved, cause, list = json_array ());
                json_array_append_new (list, json_pack ("[s, s, I, I]", e->type, e->aggregate,
                                                        (json_int_t) amount,
                                                        (json_int_t) e->position));
            }
        }
    } else if (strcmp (e->type, "TransferRequested") == 0) {
        if (json_object_get (f->transfers, e->aggregate))
            s_offend (C_TRANSFERS, "transfer %s requested twice (again at position %lld)",
                      e->aggregate, (long long) e->position);
        else
            json_object_set_new (f->transfers, e->aggregate,
                                 json_pack ("{s:I, s:O, s:O, s:O, s:n}", "position",
                                            (json_int_t) e->position,
                                            "from", json_object_get (data, "from"),
                                            "to", json_object_get (data, "to"),
                                            "amount", json_object_get (data, "amount"), "end"));
    } else {
        json_t *t = json_object_get (f->transfers, e->aggregate);
        if (!t)
            s_offend (C_TRANSFERS, "transfer %s ended at position %lld before it was requested",
                      e->aggregate, (long long) e->position);
        else if (!json_is_null (json_object_get (t, "end")))
            s_offend (C_TRANSFERS, "transfer %s ended twice (again at position %lld)",
                      e->aggregate, (long long) e->position);
        else {
            json_object_set_new (t, "end", json_string (e->type));
            json_object_set (t, "reason", json_object_get (data, "reason"));
        }
    }
    json_decref (meta);
    json_decref (data);
    return 0;
}

/* Reads a context's log straight from its store file (the host stopped).
 * Return 0 or -1. */
static int
s_read_log (s_fold_t *f, int log)
{
    char path[512], err[512];
    snprintf (path, sizeof path, "%s/data/%s.db", s_host.dir,
              log == L_ACCOUNTS ? "accounts" : "transfers");
    bctx_store_t *store = bctx_store_open (path, BCTX_STORE_READONLY, err, sizeof err);
    if (!store) {
        s_say ("cannot open %s: %s", path, err);
        return -1;
    }
    s_reader_t r = { .fold = f, .log = log };
    int64_t got;
    do
        got = bctx_store_read (store, f->head[log] + 1, NULL, 10000, s_fold_row, &r);
    while (got > 0);
    if (got < 0)
        s_say ("cannot read %s: %s", path, bctx_store_error (store));
    bctx_store_destroy (&store);
    return got < 0 ? -1 : 0;
}

/* What one transfer moved must match how it ended. */
static void
s_check_transfer (s_fold_t *f, const char *t, json_t *tr)
{
    char cause[64];
    snprintf (cause, sizeof cause, "transfers:%lld",
              (long long) json_integer_value (json_object_get (tr, "position")));
    json_t *moved = json_object_get (f->moved, cause);
    const char *from = json_string_value (json_object_get (tr, "from"));
    const char *to = json_string_value (json_object_get (tr, "to"));
    json_int_t amount = json_integer_value (json_object_get (tr, "amount"));
    const char *end = json_string_value (json_object_get (tr, "end"));
    const char *reason = json_string_value (json_object_get (tr, "reason"));
    int withdrawn = 0, deposited_to = 0, refunded = 0, other = 0;
    size_t i;
    json_t *m;
    json_array_foreach (moved, i, m) {
        const char *type = json_string_value (json_array_get (m, 0));
        const char *account = json_string_value (json_array_get (m, 1));
        if (json_integer_value (json_array_get (m, 2)) != amount)
            other++;
        else if (strcmp (type, "Withdrawn") == 0 && strcmp (account, from) == 0)
            withdrawn++;
        else if (strcmp (type, "Deposited") == 0 && strcmp (account, to) == 0)
            deposited_to++;
        else if (strcmp (type, "Deposited") == 0 && strcmp (account, from) == 0)
            refunded++;
        else
            other++;
    }
    char *list = moved ? json_dumps (moved, JSON_COMPACT) : strdup ("nothing");
    int bad;
    if (!end) {
        f->pending++;
        bad = 1;
    } else if (strcmp (end, "TransferCompleted") == 0) {
        f->completed++;
        bad = withdrawn != 1 || deposited_to != 1 || refunded || other;
    } else {
        f->failed++;
        if (reason && strstr (reason, "(refunded)"))
            bad = withdrawn != 1 || refunded != 1 || deposited_to || other;
        else
            bad = withdrawn || refunded || deposited_to || other;
    }
    if (bad)
        s_offend (C_TRANSFERS, "transfer %s (%s -> %s, %lld) %s%s%s: moved %s", t, from, to,
                  (long long) amount, end ? end : "never ended", reason ? ": " : "",
                  reason ? reason : "", list);
    free (list);
}

/* Checks the client's records against the logs. */
static void
s_check_records (s_fold_t *f)
{
    for (size_t i = 0; i < s_n_records; i++) {
        s_command_t *c = s_records[i];
        int log = c->kind == S_TRANSFER ? L_TRANSFERS : L_ACCOUNTS;
        json_t *at = json_object_get (f->ids[log], c->id);
        int outcome = atomic_load (&c->outcome);
        if (outcome == S_OK && !at)
            s_offend (C_ACKED, "%s acknowledged at position %lld is not in the %s log", c->id,
                      (long long) c->position, log == L_ACCOUNTS ? "accounts" : "transfers");
        else if (outcome == S_OK && json_integer_value (at) != c->position)
            s_offend (C_ACKED, "%s acknowledged at position %lld is at position %lld", c->id,
                      (long long) c->position, (long long) json_integer_value (at));
        else if (outcome == S_REJECTED && at)
            s_offend (C_ACKED, "%s acknowledged as rejected is at position %lld", c->id,
                      (long long) json_integer_value (at));
    }
}

/* Every read model of a projection, a page at a time through the query
 * op.  Return: new object key -> value, or NULL. */
static json_t *
s_query_all (const char *projection)
{
    json_t *all = json_object ();
    char *after = NULL;
    for (int pages = 0; pages < 100000; pages++) {
        json_t *req = json_pack ("{s:s, s:s, s:i}", "op", "query", "projection", projection,
                                 "limit", 10000);
        if (after)
            json_object_set_new (req, "after", json_string (after));
        char *body = json_dumps (req, JSON_COMPACT);
        json_decref (req);
        json_t *page = s_ask (body);
        free (body);
        free (after);
        after = NULL;
        if (!json_is_true (json_object_get (page, "ok"))) {
            json_decref (page);
            json_decref (all);
            return NULL;
        }
        size_t i;
        json_t *item;
        json_array_foreach (json_object_get (page, "items"), i, item)
            json_object_set (all, json_string_value (json_object_get (item, "key")),
                             json_object_get (item, "value"));
        const char *next = json_string_value (json_object_get (page, "next"));
        after = next ? strdup (next) : NULL;
        json_decref (page);
        if (!after)
            return all;
    }
    free (after);
    json_decref (all);
    return NULL;
}

/* Compares the projections (host running, caught up) with the fold. */
static void
s_check_projections (s_fold_t *f)
{
    json_t *balances = s_query_all ("balances");
    json_t *transfers = s_query_all ("transfers");
    if (!balances || !transfers)
        s_offend (C_PROJECTIONS, "cannot query the projections");
    for (int a = 0; balances && a < S_ACCOUNTS; a++) {
        char account[32];
        s_account_name (account, sizeof account, a);
        json_t *m = json_object_get (balances, account);
        json_int_t b = json_integer_value (json_object_get (m, "balance"));
        if (!m || b != f->balance[a])
            s_offend (C_PROJECTIONS, "balances: %s has %lld, the fold of the log %lld", account,
                      (long long) b, (long long) f->balance[a]);
    }
    if (balances && json_object_size (balances) != S_ACCOUNTS)
        s_offend (C_PROJECTIONS, "balances: %zu read models for %d accounts",
                  json_object_size (balances), S_ACCOUNTS);
    const char *t;
    json_t *tr;
    json_object_foreach (f->transfers, t, tr) {
        if (!transfers)
            break;
        const char *end = json_string_value (json_object_get (tr, "end"));
        const char *want = !end ? "requested"
                           : strcmp (end, "TransferCompleted") == 0 ? "completed" : "failed";
        const char *got = json_string_value (json_object_get (json_object_get (transfers, t),
                                                              "state"));
        if (!got || strcmp (got, want) != 0)
            s_offend (C_PROJECTIONS, "transfers: %s is %s, the log says %s", t,
                      got ? got : "missing", want);
    }
    if (transfers && json_object_size (transfers) != json_object_size (f->transfers))
        s_offend (C_PROJECTIONS, "transfers: %zu read models for %zu transfers",
                  json_object_size (transfers), json_object_size (f->transfers));
    json_decref (balances);
    json_decref (transfers);
}

/* Stops the host with SIGTERM; a non-zero exit is an offence. */
static void
s_clean_stop (const char *when)
{
    int status = h_stop (&s_host, SIGTERM);
    if (status == 0)
        s_counts.clean_stops++;
    else
        s_offend (C_HOST, "%s: the host exited %d on SIGTERM (see %s)", when, status,
                  s_host.log);
}

/* Every ERROR line of the host's log is an offence. */
static void
s_check_log (void)
{
    char *log = h_read_log (&s_host);
    for (char *line = log ? strtok (log, "\n") : NULL; line; line = strtok (NULL, "\n"))
        if (strstr (line, " ERROR "))
            s_offend (C_LOG, "%.190s", line);
    free (log);
}

/* The whole end: settle, stop, read, restart, compare, stop. */
static void
s_check_all (s_fold_t *f)
{
    s_wait_settled ("after the load");
    s_clean_stop ("after the load");
    for (int log = 0; log < 2; log++) {
        f->ids[log] = json_object ();
        if (s_read_log (f, log) != 0)
            s_offend (C_POSITIONS, "cannot read the %s log", log ? "transfers" : "accounts");
    }
    const char *t;
    json_t *tr;
    json_object_foreach (f->transfers, t, tr)
        s_check_transfer (f, t, tr);
    s_check_records (f);
    int64_t sum = 0;
    for (int a = 0; a < S_ACCOUNTS; a++)
        sum += f->balance[a];
    if (sum != f->client_in - f->client_out)
        s_offend (C_MONEY, "the balances add up to %lld, clients deposited %lld and withdrew "
                  "%lld (transfer process: %lld in, %lld out)", (long long) sum,
                  (long long) f->client_in, (long long) f->client_out,
                  (long long) f->process_in, (long long) f->process_out);
    if (h_start (&s_host) != 0) {
        s_offend (C_HOST, "the host did not start again to read its projections");
        return;
    }
    s_set_endpoint (s_host.endpoint);
    if (s_wait_settled ("after a clean restart") != 0)
        s_offend (C_PROJECTIONS, "the projections did not catch up after a clean restart");
    else
        s_check_projections (f);
    s_clean_stop ("at the end");
    s_check_log ();
}

/* Prints the summary and, with `path`, writes it as JSON.  Return the
 * number of invariants that failed. */
static int
s_report (const s_fold_t *f, unsigned seed, double seconds, double took, const char *path)
{
    int failed = 0;
    json_t *checks = json_object ();
    for (int c = 0; c < C_N; c++) {
        s_check_t *k = &s_checks[c];
        json_t *shown = json_array ();
        for (long i = 0; i < k->offences && i < S_SHOWN; i++)
            json_array_append_new (shown, json_string (k->shown[i]));
        json_object_set_new (checks, k->name, json_pack ("{s:b, s:i, s:o}", "ok",
                                                         k->offences == 0, "offences",
                                                         (int) k->offences, "shown", shown));
        failed += k->offences != 0;
    }
    long done = atomic_load (&s_counts.resends);
    json_t *r = json_pack (
        "{s:I, s:f, s:f, s:{s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:i},"
        " s:{s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:i},"
        " s:{s:i, s:i, s:i, s:i}, s:{s:I, s:I}, s:o, s:b}",
        "seed", (json_int_t) seed, "seconds", seconds, "took", took,
        "chaos", "kills", (int) s_counts.kills, "restarts", (int) s_counts.restarts,
        "reloads_ok", (int) s_counts.reloads_ok, "reloads_failed", (int) s_counts.reloads_failed,
        "hups", (int) s_counts.hups, "hup_swaps", (int) s_counts.hup_swaps,
        "hups_failed", (int) s_counts.hups_failed, "reload_kills", (int) s_counts.reload_kills,
        "hup_kills", (int) s_counts.hup_kills, "clean_stops", (int) s_counts.clean_stops,
        "commands", "sent", (int) s_counts.sent, "ok", (int) s_counts.ok,
        "rejected", (int) s_counts.rejected, "unknown", (int) s_counts.unknown,
        "timeouts", (int) s_counts.timeouts, "errors", (int) s_counts.errors,
        "retries", (int) s_counts.retries, "resends", (int) done,
        "transfers_acknowledged", (int) s_counts.transfers,
        "transfers", "requested", (int) json_object_size (f->transfers),
        "completed", (int) f->completed, "failed", (int) f->failed, "pending", (int) f->pending,
        "positions", "accounts", (json_int_t) f->head[0], "transfers", (json_int_t) f->head[1],
        "checks", checks, "ok", failed == 0);
    printf ("bctx-soak: seed %u, %.0f s of load, %.1f s in all\n", seed, seconds, took);
    printf ("  chaos: %ld kill -9 (%ld restarts; %ld during a reload, %ld after a SIGHUP), "
            "%ld reloads ok, %ld failed, %ld SIGHUPs unchanged, %ld switching the plugin, "
            "%ld not applied; %ld clean stops\n", s_counts.kills, s_counts.restarts,
            s_counts.reload_kills, s_counts.hup_kills, s_counts.reloads_ok,
            s_counts.reloads_failed, s_counts.hups, s_counts.hup_swaps, s_counts.hups_failed,
            s_counts.clean_stops);
    printf ("  commands: %ld sent, %ld ok, %ld rejected, %ld unknown; %ld timeouts, %ld "
            "errors, %ld retries with the same id; %ld answered commands resent\n",
            (long) s_counts.sent, (long) s_counts.ok, (long) s_counts.rejected,
            (long) s_counts.unknown, (long) s_counts.timeouts, (long) s_counts.errors,
            (long) s_counts.retries, done);
    printf ("  transfers: %zu requested, %ld completed, %ld failed, %ld never ended\n",
            json_object_size (f->transfers), f->completed, f->failed, f->pending);
    printf ("  logs: accounts 1..%lld, transfers 1..%lld\n", (long long) f->head[0],
            (long long) f->head[1]);
    for (int c = 0; c < C_N; c++) {
        s_check_t *k = &s_checks[c];
        printf ("  %-4s %s: %s\n", k->offences ? "FAIL" : "ok", k->name, k->what);
        for (long i = 0; i < k->offences && i < S_SHOWN; i++)
            printf ("         %s\n", k->shown[i]);
        if (k->offences > S_SHOWN)
            printf ("         … and %ld more\n", k->offences - S_SHOWN);
    }
    if (path) {
        if (json_dump_file (r, path, JSON_COMPACT) != 0) {
            fprintf (stderr, "bctx-soak: cannot write %s\n", path);
            failed++;
        }
    }
    json_decref (r);
    fflush (stdout);
    return failed;
}

/* Sets $BCTX_BUILD to the folder above this binary's, unless set. */
static void
s_find_build (void)
{
    const char *b = getenv ("BCTX_BUILD");
    if (b && *b)
        return;
    char exe[PATH_MAX];
    ssize_t n = readlink ("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0)
        return;
    exe[n] = '\0';
    char *bin = dirname (exe);            /* …/bin */
    setenv ("BCTX_BUILD", dirname (bin), 1);
}

/* Prints how to call bctx-soak. */
static void
s_usage (void)
{
    fprintf (stderr, "usage: bctx-soak [--seconds N] [--seed N] [--clients N] [--impatient N] "
                     "[--plan T:ACTION,...] [--report FILE] [--keep] [--quiet]\n"
                     "  ACTION: kill, reload, hup, hup-swap, reload-kill, hup-kill; "
                     "T: seconds into the load\n");
}

int
main (int argc, char **argv)
{
    double seconds = 300;
    unsigned seed = (unsigned) (h_now_us () ^ getpid ());
    int clients = 4, impatient = 1, keep = 0;
    const char *plan = NULL, *report = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp (a, "--keep") == 0)
            keep = 1;
        else if (strcmp (a, "--quiet") == 0)
            s_quiet = 1;
        else if (!v) {
            s_usage ();
            return 2;
        } else if (strcmp (a, "--seconds") == 0 && (seconds = atof (v)) > 0)
            i++;
        else if (strcmp (a, "--seed") == 0)
            seed = (unsigned) strtoul (v, NULL, 10), i++;
        else if (strcmp (a, "--clients") == 0 && (clients = atoi (v)) >= 1
                 && clients <= S_MAX_CLIENTS)
            i++;
        else if (strcmp (a, "--impatient") == 0 && (impatient = atoi (v)) >= 0)
            i++;
        else if (strcmp (a, "--plan") == 0)
            plan = v, i++;
        else if (strcmp (a, "--report") == 0)
            report = v, i++;
        else {
            s_usage ();
            return 2;
        }
    }
    static s_step_t steps[S_MAX_ACTIONS];
    int n_steps = plan ? s_parse_plan (plan, steps, S_MAX_ACTIONS)
                       : s_random_plan (seed, seconds, steps, S_MAX_ACTIONS);
    if (n_steps < 0) {
        fprintf (stderr, "bctx-soak: --plan: expected T:ACTION,… with ACTION one of kill, "
                         "reload, hup, hup-swap, reload-kill, hup-kill\n");
        return 2;
    }
    signal (SIGPIPE, SIG_IGN);
    s_chaos_seed = seed ^ 0xc4a05;
    s_find_build ();
    long long started = h_now_us ();
    s_say ("seed %u, %.0f s, %d clients (%d impatient), %d chaos actions; build %s", seed,
           seconds, clients, impatient < clients ? impatient : clients, n_steps, h_build ());

    /* The host: accounts from a copy of version 1.0.0 or 2.0.0 in its
     * directory, so a SIGHUP can switch between two paths. */
    if (h_init (&s_host) != 0) {
        fprintf (stderr, "bctx-soak: cannot make a temporary directory\n");
        return 1;
    }
    char dir[300];
    snprintf (dir, sizeof dir, "%s/plugins", s_host.dir);
    mkdir (dir, 0755);
    snprintf (s_plugin[0], sizeof s_plugin[0], "%s/accounts-v1.so", dir);
    snprintf (s_plugin[1], sizeof s_plugin[1], "%s/accounts-v2.so", dir);
    if (s_copy (h_path ("plugins/accounts/accounts.so"), s_plugin[0]) != 0
        || s_copy (h_path ("plugins/accounts/accounts_v2.so"), s_plugin[1]) != 0) {
        fprintf (stderr, "bctx-soak: cannot copy the accounts plugins from %s/plugins/accounts "
                         "(run make first)\n", h_build ());
        h_cleanup (&s_host);
        return 1;
    }
    s_set_contexts (0);
    snprintf (s_host.host_extra, sizeof s_host.host_extra, "\"reload_timeout_ms\": 30000");
    if (h_start (&s_host) != 0) {
        fprintf (stderr, "bctx-soak: the host did not start (log: %s)\n", s_host.log);
        return 1;
    }
    s_set_endpoint (s_host.endpoint);
    s_say ("host pid %d on %s, data in %s/data", (int) s_host.pid, s_host.endpoint,
           s_host.dir);

    /* The accounts, opened and funded. */
    for (int a = 0; a < S_ACCOUNTS; a++) {
        char id[40];
        snprintf (id, sizeof id, "open-%d", a);
        if (s_run_command (S_OPEN, id, a, S_NOBODY, 0, NULL) != S_OK)
            s_offend (C_ACKED, "account acc-%d could not be opened", a);
        snprintf (id, sizeof id, "fund-%d", a);
        if (s_run_command (S_DEPOSIT, id, a, S_NOBODY, S_FUNDING, NULL) != S_OK)
            s_offend (C_ACKED, "account acc-%d could not be funded", a);
    }

    /* The load, and the chaos beside it. */
    pthread_t threads[S_MAX_CLIENTS], retrier;
    s_client_arg_t args[S_MAX_CLIENTS];
    for (int j = 0; j < clients; j++) {
        args[j] = (s_client_arg_t) { .index = j, .seed = seed * 31 + (unsigned) j,
                                     .impatient = j < impatient };
        pthread_create (&threads[j], NULL, s_client, &args[j]);
    }
    unsigned retrier_seed = seed ^ 0x5eed;
    pthread_create (&retrier, NULL, s_retrier, &retrier_seed);
    long long load_start = h_now_us ();
    int host_gone = 0;
    for (int k = 0; k < n_steps && !host_gone; k++) {
        long long at = load_start + (long long) (steps[k].at * 1e6);
        while (h_now_us () < at)
            usleep (20000);
        if (!s_quiet)
            s_say ("action %d/%d: %s", k + 1, n_steps, s_action_names[steps[k].action]);
        host_gone = s_act (steps[k].action) != 0;
    }
    long long load_end = load_start + (long long) (seconds * 1e6);
    while (!host_gone && h_now_us () < load_end)
        usleep (20000);
    atomic_store (&s_stop_new, 1);
    for (int j = 0; j < clients; j++)
        pthread_join (threads[j], NULL);
    atomic_store (&s_stop_retrier, 1);
    pthread_join (retrier, NULL);
    double loaded = (double) (h_now_us () - load_start) / 1e6;
    s_say ("load over after %.1f s: %ld commands sent; checking", loaded, (long) s_counts.sent);

    s_fold_t fold = { .moved = json_object (), .transfers = json_object () };
    if (!host_gone)
        s_check_all (&fold);
    else
        s_offend (C_HOST, "the host is gone; nothing more was checked");
    int failed = s_report (&fold, seed, loaded, (double) (h_now_us () - started) / 1e6, report);
    if (s_host.pid)
        h_stop (&s_host, SIGKILL);
    if (failed || keep) {
        printf ("  kept %s (host log: %s)\n", s_host.dir, s_host.log);
        printf ("  reproduce: %s --seed %u --seconds %.0f%s%s\n", argv[0], seed, seconds,
                plan ? " --plan " : "", plan ? plan : "");
    } else {
        h_cleanup (&s_host);
    }
    for (int log = 0; log < 2; log++)
        json_decref (fold.ids[log]);
    json_decref (fold.moved);
    json_decref (fold.transfers);
    for (size_t i = 0; i < s_n_records; i++)
        free (s_records[i]);
    free (s_records);
    return failed ? 1 : 0;
}
