/*
 * harness - what the integration tests share: start and stop the real
 * bin/bctx-host on a config written into a temporary directory, run the
 * real bin/bctx and capture what it prints, and talk to a host's API
 * socket directly when a test needs bytes the CLI would never send.
 *
 * Built files are found under $BCTX_BUILD (tests/run.sh sets it).  The
 * h_query_all and h_keygen helpers assert with cmocka: link cmocka.
 */
#ifndef BCTX_HARNESS_H
#define BCTX_HARNESS_H

#include <jansson.h>
#include <stddef.h>
#include <sys/types.h>

typedef struct h_host {
    char dir[256];          /* the test's temporary directory */
    char config[320];       /* config file path */
    char log[320];          /* the host's stderr */
    char endpoint[64];      /* tcp://127.0.0.1:PORT of the API */
    char publish[64];       /* tcp://127.0.0.1:PORT+1 of the bus */
    char admin[320];        /* ipc://DIR/data/run/admin.sock: the admin endpoint */
    char contexts[4096];    /* the "contexts" JSON array text */
    char host_extra[1024];  /* extra "host" keys, e.g. "\"max_message\": 1024" */
    char top_extra[1024];   /* extra top-level keys, e.g. "\"peers\": [...]" */
    pid_t pid;              /* the running bctx-host, or 0 */
    int faults_expected;    /* the test crashes plugin code on purpose: a
                               sanitizer's report in the log is no failure */
} h_host_t;

/* $BCTX_BUILD, or "." */
const char *h_build (void);

/* A path under the build: h_path ("plugins/accounts/accounts.so").
 * Return: static buffer, valid until the next call with the same slot. */
const char *h_path (const char *rel);

/* Prepares h with a fresh temporary directory and the accounts context.
 * Return 0. */
int h_init (h_host_t *h);

/* Writes h->config from h's fields, picking fresh ports. */
int h_write_config (h_host_t *h);

/* Starts bctx-host ARGS... h->config (args: NULL-terminated, or NULL)
 * without waiting for it, its stderr appended to h->log; a host still
 * running when the test program exits is killed then.  Return its pid
 * (h->pid is not set). */
pid_t h_spawn_host (const h_host_t *h, const char *const *args);

/* Starts bctx-host (writing the config first) and waits until it answers
 * (up to 10 s).  Retries with other ports if they are taken.  Return 0, or
 * -1 (the host's log is printed). */
int h_start (h_host_t *h);

/* As h_start, with extra arguments (NULL-terminated, or NULL) before the
 * config. */
int h_start_args (h_host_t *h, const char *const *args);

/* Starts bctx-host on a config file and waits for it to exit (up to 10 s).
 * Return its exit status (or -1), with its stderr in *err (new). */
int h_run_host_expecting_exit (const char *config, char **err);

/* Sends signal sig and waits for the host to exit.  Return its exit status
 * (128+signal when killed by one). */
int h_stop (h_host_t *h, int sig);

/* Runs bin/bctx -e h->endpoint ARGS... (NULL-terminated) and captures
 * stdout in *out (new, may be NULL) .  Return the exit code. */
int h_cli (const h_host_t *h, char **out, ...);

/* As h_cli with an explicit argv (argv[0] unused, NULL-terminated). */
int h_cli_argv (char **out, char *const argv[]);

/* Parses a CLI's one-line JSON output.  Return: new, or NULL. */
json_t *h_json (const char *text);

/* One raw request to endpoint with a REQ socket.  Return: new reply, or
 * NULL after timeout_ms. */
json_t *h_request (const char *endpoint, const char *body, size_t len,
                   int timeout_ms);

/* As h_request, as a CURVE client with public_key/secret_key of a host
 * whose key is server_key (all Z85; server_key NULL: no CURVE). */
json_t *h_request_keys (const char *endpoint, const char *server_key, const char *public_key,
                        const char *secret_key, const char *body, size_t len, int timeout_ms);

/* Sends the "send" op; returns the reply (new) or NULL on timeout. */
json_t *h_send (const char *endpoint, const char *context, const char *command,
                const char *id, json_t *data_new);

/* Starts bin/NAME with argv (argv[0] unused, NULL-terminated), stdout to
 * the file `out` (or /dev/null).  Return its pid. */
pid_t h_spawn (const char *name, char *const argv[], const char *out);

/* Waits up to timeout_ms for pid; kills it after that.  Return its exit
 * status (128+signal when killed). */
int h_wait (pid_t pid, int timeout_ms);

/* Every event of a context, read through `bctx events`.  Return: new JSON
 * array, or NULL if the CLI failed. */
json_t *h_events (const h_host_t *h, const char *context);

/* The host's log (new string). */
char *h_read_log (const h_host_t *h);

/* Stops a still-running host with SIGTERM and removes the directory.
 * Return the host's exit status (0: clean, and no leak under ASan). */
int h_cleanup (h_host_t *h);

/* Microseconds since some fixed point. */
long long h_now_us (void);

/* h_now_us () `seconds` from now: the end of a bounded wait. */
long long h_deadline (int seconds);

/* A CURVE key pair. */
typedef struct h_keys {
    char pub[41];                 /* public key, Z85 */
    char sec[41];                 /* secret key, Z85 */
} h_keys_t;

/* A new key pair (asserts that ZeroMQ made one). */
h_keys_t h_keygen (void);

/* --- replies and their fields ---------------------------------------- */

/* j's string field key (borrowed), or NULL (no such string, or j NULL). */
const char *h_str (const json_t *j, const char *key);

/* j's integer field key, or 0. */
json_int_t h_int (const json_t *j, const char *key);

/* The value at a dotted path of object keys in j, e.g.
 * "projections.balances.lag.accounts" (borrowed), or NULL. */
json_t *h_at (const json_t *j, const char *path);

/* The integer at a dotted path in j, or 0. */
json_int_t h_int_at (const json_t *j, const char *path);

/* Does reply say "ok": true? */
int h_ok (const json_t *reply);

/* An error reply's error.code and error.message (borrowed), or NULL. */
const char *h_error_code (const json_t *reply);
const char *h_error_message (const json_t *reply);

/* The host's stats (the "stats" op on its API, 5 s at most).  Return:
 * new, or NULL when no reply came. */
json_t *h_stats (const h_host_t *h);

/* The entry named name in a "contexts" reply's list (borrowed), or NULL. */
json_t *h_context_in (const json_t *reply, const char *name);

/* The host's entry for context name (the "contexts" op, 5 s at most).
 * Return: new, or NULL (no reply, or no such context). */
json_t *h_context_info (const h_host_t *h, const char *name);

/* Runs `bctx -e h->endpoint --timeout timeout_s ARGS...` (NULL-ended).
 * *code (code may be NULL) gets the exit code.  Return: the parsed
 * output (new), or NULL if it printed no JSON. */
json_t *h_cli_json (const h_host_t *h, int timeout_s, int *code, ...);

/* Every read model of projection, read with `bctx query` in pages of
 * limit (30 s for each): asserts that each page is at most limit long,
 * keys come in order and never twice, and a page that has a next one is
 * full and names its last key as next.  Return: new object, key ->
 * value. */
json_t *h_query_all (const h_host_t *h, const char *projection, int limit);

/* A test group's teardown: h_cleanup, and the test program exits 1 when
 * the host did not exit 0 (or leaked under ASan), since cmocka does not
 * count a failed group teardown.  Return 0. */
int h_teardown (h_host_t *h);

/* --- files, the log and processes ------------------------------------ */

/* Creates the empty file path (a gate or an arming file).  Return 0, or
 * -1. */
int h_touch (const char *path);

/* Waits up to timeout_ms for the host's log to contain needle.  Return:
 * the log (new) once it does, or NULL. */
char *h_wait_log (const h_host_t *h, const char *needle, int timeout_ms);

/* The number after `after` (borrowed) on the first line of text that has
 * both `line` and `after`, e.g. the pid in "...: process 123 loads it".
 * Return it, or -1. */
long h_number_after (const char *text, const char *line, const char *after);

/* Waits up to timeout_ms for process pid to be gone (no such process, or
 * a zombie that is no child of ours).  Return 1 when it is, else 0. */
int h_gone (pid_t pid, int timeout_ms);

/* Runs `sh -c LINE`, LINE built printf-style.  Return its exit status
 * (as system() gives it). */
int h_sh (const char *fmt, ...) __attribute__ ((format (printf, 1, 2)));

/* --- HTTP --------------------------------------------------------------- */

/* One HTTP request with curl (20 s at most): method to url, with curl's
 * extra arguments (shell words, e.g. "-H 'X: y' -d '{}'", or NULL).  The
 * body goes through a file in h->dir.  Return the status (-1: curl gave
 * none), the body in *body (new, "" when there was none). */
int h_http (const h_host_t *h, const char *method, const char *url, const char *extra,
            char **body);

/* assert_string_equal, but a NULL fails instead of crashing (a macro:
 * cmocka's fail_msg reports the test's own line). */
#define h_assert_str(got, want)                                                 \
    do {                                                                        \
        const char *got_ = (got), *want_ = (want);                              \
        if (!got_ || strcmp (got_, want_) != 0)                                 \
            fail_msg ("%s is \"%s\", expected \"%s\"", #got,                   \
                      got_ ? got_ : "(null)", want_);                           \
    } while (0)

/* Fails unless text (may be NULL) contains part. */
#define h_assert_contains(text, part)                                           \
    do {                                                                        \
        const char *text_ = (text), *part_ = (part);                            \
        if (!text_ || !strstr (text_, part_))                                   \
            fail_msg ("%s is \"%s\", which lacks \"%s\"", #text,               \
                      text_ ? text_ : "(null)", part_);                         \
    } while (0)

#endif
