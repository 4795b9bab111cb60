/*
 * harness - process and socket plumbing for the integration tests.
 */
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include <setjmp.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

const char *
h_build (void)
{
    const char *b = getenv ("BCTX_BUILD");
    return b && *b ? b : ".";
}

const char *
h_path (const char *rel)
{
    static char slots[4][512];
    static int next;
    char *p = slots[next++ % 4];
    snprintf (p, sizeof slots[0], "%s/%s", h_build (), rel);
    return p;
}

long long
h_now_us (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (long long) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int
h_init (h_host_t *h)
{
    memset (h, 0, sizeof *h);
    snprintf (h->dir, sizeof h->dir, "/tmp/bctx-test-XXXXXX");
    if (!mkdtemp (h->dir))
        return -1;
    snprintf (h->config, sizeof h->config, "%s/host.json", h->dir);
    snprintf (h->log, sizeof h->log, "%s/host.log", h->dir);
    snprintf (h->admin, sizeof h->admin, "ipc://%s/data/run/admin.sock", h->dir);
    snprintf (h->contexts, sizeof h->contexts,
              "[{\"name\": \"accounts\", \"plugin\": \"%s\"}]",
              h_path ("plugins/accounts/accounts.so"));
    return 0;
}

int
h_write_config (h_host_t *h)
{
    static int counter;
    /* Below the kernel's ephemeral range (32768+), so no client socket
     * holds it. */
    int port = 20000 + (int) ((getpid () * 7919 + counter++ * 104729
                               + h_now_us ()) % 6000) * 2;
    snprintf (h->endpoint, sizeof h->endpoint, "tcp://127.0.0.1:%d", port);
    snprintf (h->publish, sizeof h->publish, "tcp://127.0.0.1:%d", port + 1);
    FILE *f = fopen (h->config, "w");
    if (!f)
        return -1;
    /* No HTTP gateway unless the test asks for one: the default port
     * (127.0.0.1:7780) is one for the whole machine. */
    int http = strstr (h->host_extra, "\"http\"") != NULL;
    fprintf (f, "{\"host\": {\"name\": \"test\", \"api\": \"%s\", \"publish\": \"%s\","
                " \"data\": \"%s/data\"%s%s%s},\n \"contexts\": %s%s%s}\n",
             h->endpoint, h->publish, h->dir, http ? "" : ", \"http\": false",
             h->host_extra[0] ? ", " : "", h->host_extra, h->contexts,
             h->top_extra[0] ? ", " : "", h->top_extra);
    fclose (f);
    return 0;
}

/* Every host this test process started, so that one a failed assertion
 * left running (cmocka jumps past its cleanup) is killed at exit and
 * cannot hold its ports for the tests after it. */
static pid_t s_hosts[256];
static size_t s_n_hosts;

/* At exit: kills each host started here that is still an unreaped child
 * (its context processes die with it). */
static void
s_kill_leftovers (void)
{
    for (size_t i = 0; i < s_n_hosts; i++)
        if (waitpid (s_hosts[i], NULL, WNOHANG) == 0) {
            fprintf (stderr, "harness: host %d still ran at exit: killed\n", (int) s_hosts[i]);
            kill (s_hosts[i], SIGKILL);
            waitpid (s_hosts[i], NULL, 0);
        }
}

static pid_t
s_spawn_host (const char *config, const char *log, const char *const *args)
{
    if (s_n_hosts == 0)
        atexit (s_kill_leftovers);
    pid_t pid = fork ();
    if (pid > 0 && s_n_hosts < sizeof s_hosts / sizeof s_hosts[0])
        s_hosts[s_n_hosts++] = pid;
    if (pid == 0) {
        int fd = open (log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2 (fd, 2);
            close (fd);
        }
        int null = open ("/dev/null", O_RDWR);
        dup2 (null, 0);
        dup2 (null, 1);
        char *argv[16];
        int n = 0;
        argv[n++] = "bctx-host";
        for (size_t i = 0; args && args[i] && n < 14; i++)
            argv[n++] = (char *) args[i];
        argv[n++] = (char *) config;
        argv[n] = NULL;
        execv (h_path ("bin/bctx-host"), argv);
        _exit (127);
    }
    return pid;
}

pid_t
h_spawn_host (const h_host_t *h, const char *const *args)
{
    return s_spawn_host (h->config, h->log, args);
}

/* Does the host answer, on its API or (a host with CURVE keys, which
 * answers no keyless client there) on its admin endpoint? */
static int
s_ready (h_host_t *h)
{
    json_t *r = h_request (h->endpoint, "{\"op\":\"contexts\"}", 17, 200);
    if (!r && strstr (h->host_extra, "\"curve\""))
        r = h_request (h->admin, "{\"op\":\"contexts\"}", 17, 200);
    int ok = r && json_is_true (json_object_get (r, "ok"));
    json_decref (r);
    return ok;
}

int
h_start (h_host_t *h)
{
    return h_start_args (h, NULL);
}

int
h_start_args (h_host_t *h, const char *const *args)
{
    for (int attempt = 0; attempt < 5; attempt++) {
        /* A retry's log starts afresh: the last attempt only failed for
         * its port. */
        if (attempt > 0 && truncate (h->log, 0) < 0 && errno != ENOENT)
            return -1;
        if (h_write_config (h) < 0)
            return -1;
        h->pid = s_spawn_host (h->config, h->log, args);
        long long deadline = h_now_us () + 10000000;
        while (h_now_us () < deadline) {
            int status;
            if (waitpid (h->pid, &status, WNOHANG) == h->pid) {
                h->pid = 0;
                break;            /* exited: maybe the port was taken */
            }
            if (s_ready (h))
                return 0;
        }
        if (h->pid) {
            kill (h->pid, SIGKILL);
            waitpid (h->pid, NULL, 0);
            h->pid = 0;
        }
        char *log = h_read_log (h);
        int port_taken = log && strstr (log, "Address already in use");
        if (!port_taken) {
            fprintf (stderr, "harness: host did not start; its log:\n%s\n",
                     log ? log : "(none)");
            free (log);
            return -1;
        }
        free (log);
    }
    return -1;
}

static char *
s_slurp_fd (int fd)
{
    size_t len = 0, cap = 4096;
    char *buf = malloc (cap);
    for (;;) {
        if (cap - len < 2048)
            buf = realloc (buf, cap *= 2);
        ssize_t n = read (fd, buf + len, cap - len - 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        len += (size_t) n;
    }
    buf[len] = '\0';
    return buf;
}

int
h_run_host_expecting_exit (const char *config, char **err)
{
    char log[] = "/tmp/bctx-test-log-XXXXXX";
    int fd = mkstemp (log);
    if (fd < 0)
        return -1;
    close (fd);
    pid_t pid = s_spawn_host (config, log, NULL);
    int status = -1;
    long long deadline = h_now_us () + 10000000;
    while (h_now_us () < deadline) {
        if (waitpid (pid, &status, WNOHANG) == pid)
            break;
        usleep (10000);
        status = -1;
    }
    if (status == -1) {
        kill (pid, SIGKILL);
        waitpid (pid, NULL, 0);
    }
    fd = open (log, O_RDONLY);
    *err = s_slurp_fd (fd);
    close (fd);
    unlink (log);
    if (status == -1)
        return -1;
    return WIFEXITED (status) ? WEXITSTATUS (status) : 128 + WTERMSIG (status);
}

int
h_stop (h_host_t *h, int sig)
{
    if (!h->pid)
        return -1;
    kill (h->pid, sig);
    int status = 0;
    long long deadline = h_now_us () + 20000000;
    while (waitpid (h->pid, &status, WNOHANG) == 0) {
        if (h_now_us () > deadline) {
            kill (h->pid, SIGKILL);
            waitpid (h->pid, &status, 0);
            break;
        }
        usleep (5000);
    }
    h->pid = 0;
    return WIFEXITED (status) ? WEXITSTATUS (status) : 128 + WTERMSIG (status);
}

int
h_cli_argv (char **out, char *const argv[])
{
    int pipefd[2];
    if (pipe (pipefd) < 0)
        return -1;
    pid_t pid = fork ();
    if (pid == 0) {
        dup2 (pipefd[1], 1);
        close (pipefd[0]);
        close (pipefd[1]);
        execv (h_path ("bin/bctx"), argv);
        _exit (127);
    }
    close (pipefd[1]);
    char *text = s_slurp_fd (pipefd[0]);
    close (pipefd[0]);
    int status;
    waitpid (pid, &status, 0);
    if (out)
        *out = text;
    else
        free (text);
    return WIFEXITED (status) ? WEXITSTATUS (status) : 128 + WTERMSIG (status);
}

int
h_cli (const h_host_t *h, char **out, ...)
{
    char *argv[32];
    int n = 0;
    argv[n++] = "bctx";
    argv[n++] = "-e";
    argv[n++] = (char *) h->endpoint;
    va_list ap;
    va_start (ap, out);
    char *a;
    while ((a = va_arg (ap, char *)) && n < 31)
        argv[n++] = a;
    va_end (ap);
    argv[n] = NULL;
    return h_cli_argv (out, argv);
}

json_t *
h_json (const char *text)
{
    return text ? json_loads (text, JSON_DISABLE_EOF_CHECK, NULL) : NULL;
}

static void *s_zctx;        /* shared by every thread of a test */

static void
s_zctx_init (void)
{
    s_zctx = zmq_ctx_new ();
}

json_t *
h_request (const char *endpoint, const char *body, size_t len, int timeout_ms)
{
    return h_request_keys (endpoint, NULL, NULL, NULL, body, len, timeout_ms);
}

json_t *
h_request_keys (const char *endpoint, const char *server_key, const char *public_key,
                const char *secret_key, const char *body, size_t len, int timeout_ms)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once (&once, s_zctx_init);
    void *zctx = s_zctx;
    void *req = zmq_socket (zctx, ZMQ_REQ);
    int linger = 0;
    zmq_setsockopt (req, ZMQ_LINGER, &linger, sizeof linger);
    if (server_key) {
        zmq_setsockopt (req, ZMQ_CURVE_SERVERKEY, server_key, 40);
        zmq_setsockopt (req, ZMQ_CURVE_PUBLICKEY, public_key, 40);
        zmq_setsockopt (req, ZMQ_CURVE_SECRETKEY, secret_key, 40);
    }
    zmq_connect (req, endpoint);
    json_t *reply = NULL;
    if (zmq_send (req, body, len, 0) == (int) len) {
        zmq_pollitem_t item = { req, 0, ZMQ_POLLIN, 0 };
        if (zmq_poll (&item, 1, timeout_ms) == 1) {
            zmq_msg_t msg;
            zmq_msg_init (&msg);
            if (zmq_msg_recv (&msg, req, 0) >= 0)
                reply = json_loadb (zmq_msg_data (&msg), zmq_msg_size (&msg), 0, NULL);
            zmq_msg_close (&msg);
        }
    }
    zmq_close (req);
    return reply;
}

json_t *
h_send (const char *endpoint, const char *context, const char *command,
        const char *id, json_t *data_new)
{
    json_t *req = json_pack ("{s:s, s:s, s:s, s:o}", "op", "send", "context",
                             context, "command", command, "data", data_new);
    if (id)
        json_object_set_new (req, "id", json_string (id));
    char *text = json_dumps (req, JSON_COMPACT);
    json_decref (req);
    json_t *reply = h_request (endpoint, text, strlen (text), 10000);
    free (text);
    return reply;
}

char *
h_read_log (const h_host_t *h)
{
    int fd = open (h->log, O_RDONLY);
    if (fd < 0)
        return NULL;
    char *text = s_slurp_fd (fd);
    close (fd);
    return text;
}

int
h_cleanup (h_host_t *h)
{
    int rc = 0;
    /* A clean stop, so a sanitizer build reports leaks in its exit code. */
    if (h->pid && (rc = h_stop (h, SIGTERM)) != 0) {
        char *log = h_read_log (h);
        fprintf (stderr, "harness: host exited %d on SIGTERM; its log:\n%s\n", rc,
                 log ? log : "(none)");
        free (log);
    }
    /* The context processes' sanitizer reports are in the same log (their
     * exit codes reach only the supervisor). */
    char *log = h->dir[0] && !h->faults_expected ? h_read_log (h) : NULL;
    if (log && (strstr (log, "ERROR: AddressSanitizer") || strstr (log, "ERROR: LeakSanitizer")
                || strstr (log, ": runtime error: "))) {
        fprintf (stderr, "harness: a sanitizer reported in the host's log:\n%s\n", log);
        rc = rc ? rc : 1;
    }
    free (log);
    if (h->dir[0]) {
        char cmd[400];
        snprintf (cmd, sizeof cmd, "rm -rf '%s'", h->dir);
        if (system (cmd) != 0)
            fprintf (stderr, "harness: could not remove %s\n", h->dir);
    }
    return rc;
}

pid_t
h_spawn (const char *name, char *const argv[], const char *out)
{
    char bin[64];
    snprintf (bin, sizeof bin, "bin/%s", name);
    char path[512];
    snprintf (path, sizeof path, "%s", h_path (bin));
    pid_t pid = fork ();
    if (pid == 0) {
        int fd = open (out ? out : "/dev/null", O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd >= 0) {
            dup2 (fd, 1);
            close (fd);
        }
        execv (path, argv);
        _exit (127);
    }
    return pid;
}

int
h_wait (pid_t pid, int timeout_ms)
{
    int status = 0;
    long long deadline = h_now_us () + (long long) timeout_ms * 1000;
    while (waitpid (pid, &status, WNOHANG) == 0) {
        if (h_now_us () > deadline) {
            kill (pid, SIGKILL);
            waitpid (pid, &status, 0);
            break;
        }
        usleep (5000);
    }
    return WIFEXITED (status) ? WEXITSTATUS (status) : 128 + WTERMSIG (status);
}

json_t *
h_events (const h_host_t *h, const char *context)
{
    char *out = NULL;
    int code = h_cli (h, &out, "events", "--context", context, NULL);
    if (code != 0) {
        free (out);
        return NULL;
    }
    json_t *all = json_array ();
    for (char *line = strtok (out, "\n"); line; line = strtok (NULL, "\n")) {
        json_t *e = json_loads (line, 0, NULL);
        if (!e) {
            json_decref (all);
            free (out);
            return NULL;
        }
        json_array_append_new (all, e);
    }
    free (out);
    return all;
}

h_keys_t
h_keygen (void)
{
    h_keys_t k;
    assert_int_equal (zmq_curve_keypair (k.pub, k.sec), 0);
    return k;
}

long long
h_deadline (int seconds)
{
    return h_now_us () + (long long) seconds * 1000000;
}

const char *
h_str (const json_t *j, const char *key)
{
    return json_string_value (json_object_get (j, key));
}

json_int_t
h_int (const json_t *j, const char *key)
{
    return json_integer_value (json_object_get (j, key));
}

json_t *
h_at (const json_t *j, const char *path)
{
    char buf[256];
    snprintf (buf, sizeof buf, "%s", path);
    json_t *v = (json_t *) j;
    char *save = NULL;
    for (char *k = strtok_r (buf, ".", &save); k && v; k = strtok_r (NULL, ".", &save))
        v = json_object_get (v, k);
    return v;
}

json_int_t
h_int_at (const json_t *j, const char *path)
{
    return json_integer_value (h_at (j, path));
}

int
h_ok (const json_t *reply)
{
    return json_is_true (json_object_get (reply, "ok"));
}

const char *
h_error_code (const json_t *reply)
{
    return h_str (json_object_get (reply, "error"), "code");
}

const char *
h_error_message (const json_t *reply)
{
    return h_str (json_object_get (reply, "error"), "message");
}

json_t *
h_stats (const h_host_t *h)
{
    static const char body[] = "{\"op\":\"stats\"}";
    return h_request (h->endpoint, body, sizeof body - 1, 5000);
}

json_t *
h_context_in (const json_t *reply, const char *name)
{
    size_t i;
    json_t *c;
    json_array_foreach (json_object_get (reply, "contexts"), i, c) {
        const char *n = h_str (c, "name");
        if (n && strcmp (n, name) == 0)
            return c;
    }
    return NULL;
}

json_t *
h_context_info (const h_host_t *h, const char *name)
{
    static const char body[] = "{\"op\":\"contexts\"}";
    json_t *r = h_request (h->endpoint, body, sizeof body - 1, 5000);
    json_t *found = h_context_in (r, name);
    json_incref (found);
    json_decref (r);
    return found;
}

json_t *
h_cli_json (const h_host_t *h, int timeout_s, int *code, ...)
{
    char timeout[16];
    snprintf (timeout, sizeof timeout, "%d", timeout_s);
    char *argv[32];
    int n = 0;
    argv[n++] = "bctx";
    argv[n++] = "-e";
    argv[n++] = (char *) h->endpoint;
    argv[n++] = "--timeout";
    argv[n++] = timeout;
    va_list ap;
    va_start (ap, code);
    char *a;
    while ((a = va_arg (ap, char *)) && n < 31)
        argv[n++] = a;
    va_end (ap);
    argv[n] = NULL;
    char *out = NULL;
    int rc = h_cli_argv (&out, argv);
    if (code)
        *code = rc;
    json_t *j = h_json (out);
    free (out);
    return j;
}

json_t *
h_query_all (const h_host_t *h, const char *projection, int limit)
{
    json_t *all = json_object ();
    char lim[16], after[256] = "";
    snprintf (lim, sizeof lim, "%d", limit);
    for (int page = 0; page < 10000; page++) {
        int code;
        json_t *r = after[0]
                    ? h_cli_json (h, 30, &code, "query", projection, "--limit", lim,
                                  "--after", after, NULL)
                    : h_cli_json (h, 30, &code, "query", projection, "--limit", lim, NULL);
        assert_int_equal (code, 0);
        assert_non_null (r);
        json_t *items = json_object_get (r, "items");
        assert_true (json_is_array (items));
        assert_true (json_array_size (items) <= (size_t) limit);
        size_t i;
        json_t *item;
        json_array_foreach (items, i, item) {
            const char *key = h_str (item, "key");
            assert_non_null (key);
            if (after[0] && strcmp (key, after) <= 0)
                fail_msg ("page after \"%s\" holds \"%s\": keys out of order", after, key);
            if (json_object_get (all, key))
                fail_msg ("key \"%s\" came twice", key);
            json_object_set (all, key, json_object_get (item, "value"));
            snprintf (after, sizeof after, "%s", key);
        }
        json_t *next = json_object_get (r, "next");
        assert_non_null (next);
        if (json_is_null (next)) {
            json_decref (r);
            return all;
        }
        /* A page that has a next one is full and ends with the next key. */
        assert_true (json_is_string (next));
        assert_int_equal (json_array_size (items), limit);
        assert_string_equal (json_string_value (next), after);
        json_decref (r);
    }
    fail_msg ("query %s never reached a last page", projection);
    return NULL;
}

int
h_teardown (h_host_t *h)
{
    if (h_cleanup (h) != 0)
        exit (1);
    return 0;
}

int
h_touch (const char *path)
{
    FILE *f = fopen (path, "w");
    if (!f)
        return -1;
    return fclose (f) == 0 ? 0 : -1;
}

char *
h_wait_log (const h_host_t *h, const char *needle, int timeout_ms)
{
    long long deadline = h_now_us () + (long long) timeout_ms * 1000;
    for (int i = 0; i < 100000; i++) {
        char *log = h_read_log (h);
        if (log && strstr (log, needle))
            return log;
        free (log);
        if (h_now_us () > deadline)
            break;
        usleep (10000);
    }
    return NULL;
}

long
h_number_after (const char *text, const char *line, const char *after)
{
    for (const char *at = text ? strstr (text, line) : NULL; at; at = strstr (at + 1, line)) {
        const char *start = at, *end = strchr (at, '\n');
        while (start > text && start[-1] != '\n')
            start--;
        const char *num = strstr (start, after);
        if (num && (!end || num < end))
            return strtol (num + strlen (after), NULL, 10);
    }
    return -1;
}

/* Is process pid a zombie (its state in /proc/PID/stat is Z)? */
static int
s_zombie (pid_t pid)
{
    char path[64], buf[512];
    snprintf (path, sizeof path, "/proc/%d/stat", (int) pid);
    FILE *f = fopen (path, "r");
    if (!f)
        return 0;
    size_t n = fread (buf, 1, sizeof buf - 1, f);
    fclose (f);
    buf[n] = '\0';
    const char *p = strrchr (buf, ')');
    return p && p[1] == ' ' && p[2] == 'Z';
}

int
h_gone (pid_t pid, int timeout_ms)
{
    long long deadline = h_now_us () + (long long) timeout_ms * 1000;
    for (int i = 0; i < 100000; i++) {
        if (pid <= 0 || (kill (pid, 0) < 0 && errno == ESRCH) || s_zombie (pid))
            return 1;
        if (h_now_us () > deadline)
            return 0;
        usleep (10000);
    }
    return 0;
}

int
h_http (const h_host_t *h, const char *method, const char *url, const char *extra,
        char **body)
{
    char out[400], cmd[4096];
    snprintf (out, sizeof out, "%s/http.out", h->dir);
    unlink (out);
    snprintf (cmd, sizeof cmd, "curl -s -m 20 -o '%s' -w '%%{http_code}' -X %s %s '%s'", out,
              method, extra ? extra : "", url);
    FILE *p = popen (cmd, "r");
    int status = -1;
    if (p) {
        if (fscanf (p, "%d", &status) != 1 || status == 0)
            status = -1;
        pclose (p);
    }
    char *text = NULL;
    FILE *f = fopen (out, "r");
    if (f) {
        fseek (f, 0, SEEK_END);
        long n = ftell (f);
        rewind (f);
        text = calloc (1, n > 0 ? (size_t) n + 1 : 1);
        if (n > 0 && fread (text, 1, (size_t) n, f) != (size_t) n)
            text[0] = '\0';
        fclose (f);
    }
    *body = text ? text : calloc (1, 1);
    return status;
}

int
h_sh (const char *fmt, ...)
{
    char *line = NULL;
    va_list ap;
    va_start (ap, fmt);
    int n = vasprintf (&line, fmt, ap);
    va_end (ap);
    if (n < 0)
        return -1;
    int rc = system (line);
    free (line);
    return rc;
}
