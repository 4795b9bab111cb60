/*
 * test_console - the live web console of a real host (the tour's accounts
 * and transfers) in Debian's headless chromium, driven through the
 * DevTools protocol over --remote-debugging-pipe: chromium reads commands
 * on its fd 3 and writes replies and events on its fd 4, each a JSON
 * message ended by a NUL byte.  The page must list the contexts, send a
 * command from its own form, show new events live (SSE) without a reload,
 * keep admin buttons off without the token and show a 403 clearly, and
 * give a PNG screenshot.  The static routes are checked with curl.
 */
#include "harness.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#define S_CHROMIUM  "/usr/bin/chromium"
#define S_WAIT_S    30            /* the bound on each wait for the page */

static h_host_t s_host;
static char s_base[64];           /* http://127.0.0.1:PORT */

/* The browser: its pid (and process group), our ends of its pipes, the
 * bytes read but not yet split into messages, and the page's session. */
static struct {
    pid_t pid;                    /* chromium, leader of its process group, or 0 */
    int to, from;                 /* its fd 3 (our writes), its fd 4 (our reads) */
    char *buf;                    /* read from `from`, not yet a whole message */
    size_t len, cap;              /* of buf: used, allocated */
    int next_id;                  /* the last message id sent */
    char session[128];            /* the page's DevTools session id */
} s_cr = { .to = -1, .from = -1 };

/* --- the DevTools pipe ----------------------------------------------- */

/* This environment with HOME and the XDG folders in the test's folder,
 * so that chromium writes nothing outside it.  Return: new, NULL-ended,
 * each string new. */
static char **
s_chromium_env (void)
{
    extern char **environ;
    size_t n = 0;
    while (environ[n])
        n++;
    char **env = calloc (n + 4, sizeof *env);
    assert_non_null (env);
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (strncmp (environ[i], "HOME=", 5) != 0 && strncmp (environ[i], "XDG_", 4) != 0)
            env[k++] = strdup (environ[i]);
    static const char *const vars[] = { "HOME", "XDG_CONFIG_HOME", "XDG_CACHE_HOME" };
    for (size_t i = 0; i < 3; i++) {
        char *v = NULL;
        assert_true (asprintf (&v, "%s=%s/home", vars[i], s_host.dir) > 0);
        env[k++] = v;
    }
    return env;
}

/* Starts chromium with the pipe on its fds 3 and 4, in its own process
 * group (its helpers with it), its output to DIR/chromium.log. */
static void
s_chromium_start (void)
{
    if (access (S_CHROMIUM, X_OK) != 0)
        fail_msg ("%s is not there: install Debian's chromium (make test does)", S_CHROMIUM);
    int in[2], out[2];
    assert_int_equal (pipe2 (in, O_CLOEXEC), 0);
    assert_int_equal (pipe2 (out, O_CLOEXEC), 0);
    char profile[400], log[400];
    snprintf (profile, sizeof profile, "--user-data-dir=%s/chromium", s_host.dir);
    snprintf (log, sizeof log, "%s/chromium.log", s_host.dir);
    char *argv[] = {
        S_CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
        "--no-default-browser-check", "--disable-dev-shm-usage", "--disable-extensions",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--disable-default-apps", "--disable-domain-reliability", "--no-pings",
        "--disable-client-side-phishing-detection", "--disable-breakpad",
        /* Nothing but loopback: no name resolves to anything else. */
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
        "--window-size=1280,1700", profile, "--remote-debugging-pipe", "about:blank", NULL,
    };
    char **envp = s_chromium_env ();
    pid_t pid = fork ();
    assert_true (pid >= 0);
    if (pid == 0) {
        setpgid (0, 0);
        int r = fcntl (in[0], F_DUPFD, 10), w = fcntl (out[1], F_DUPFD, 10);
        int fd = open (log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        int null = open ("/dev/null", O_RDONLY);
        if (r < 0 || w < 0 || fd < 0 || null < 0 || dup2 (r, 3) < 0 || dup2 (w, 4) < 0
            || dup2 (null, 0) < 0 || dup2 (fd, 1) < 0 || dup2 (fd, 2) < 0)
            _exit (126);
        execve (S_CHROMIUM, argv, envp);
        _exit (127);
    }
    for (char **e = envp; *e; e++)
        free (*e);
    free (envp);
    setpgid (pid, pid);
    close (in[0]);
    close (out[1]);
    s_cr.pid = pid;
    s_cr.to = in[1];
    s_cr.from = out[0];
}

/* Ends chromium: Browser.close, then its process group is killed after at
 * most 5 s.  Safe to call when it is not running. */
static void
s_chromium_stop (void)
{
    if (s_cr.pid <= 0)
        return;
    if (s_cr.to >= 0) {
        static const char close_msg[] = "{\"id\":999999,\"method\":\"Browser.close\"}";
        if (write (s_cr.to, close_msg, sizeof close_msg) < 0) { /* it is gone already */ }
    }
    int reaped = 0;
    for (long long end = h_deadline (5); !reaped && h_now_us () < end; usleep (50 * 1000))
        reaped = waitpid (s_cr.pid, NULL, WNOHANG) == s_cr.pid;
    kill (-s_cr.pid, SIGKILL);    /* its group: itself if still there, and any helper */
    if (!reaped)
        waitpid (s_cr.pid, NULL, 0);
    s_cr.pid = 0;
    if (s_cr.to >= 0)
        close (s_cr.to);
    if (s_cr.from >= 0)
        close (s_cr.from);
    s_cr.to = s_cr.from = -1;
    free (s_cr.buf);
    s_cr.buf = NULL;
    s_cr.len = s_cr.cap = 0;
}

static void
s_chromium_at_exit (void)
{
    s_chromium_stop ();
}

/* Sends method with params (stolen, may be NULL), on the page's session
 * when page is set.  Return the message id. */
static int
s_cdp_send (const char *method, json_t *params, int page)
{
    int id = ++s_cr.next_id;
    json_t *msg = json_pack ("{s:i, s:s, s:o}", "id", id, "method", method,
                             "params", params ? params : json_object ());
    if (page)
        json_object_set_new (msg, "sessionId", json_string (s_cr.session));
    char *text = json_dumps (msg, JSON_COMPACT);
    json_decref (msg);
    size_t n = strlen (text) + 1;     /* the NUL ends the message */
    size_t done = 0;
    while (done < n) {
        ssize_t w = write (s_cr.to, text + done, n - done);
        if (w < 0 && errno == EINTR)
            continue;
        assert_true (w > 0);
        done += (size_t) w;
    }
    free (text);
    return id;
}

/* The next whole message from chromium, waiting until deadline (h_now_us
 * units).  Return: new, or NULL when none came in time or the pipe ended. */
static json_t *
s_cdp_read (long long deadline)
{
    for (;;) {
        char *end = s_cr.len ? memchr (s_cr.buf, '\0', s_cr.len) : NULL;
        if (end) {
            json_t *j = json_loads (s_cr.buf, 0, NULL);
            size_t used = (size_t) (end - s_cr.buf) + 1;
            memmove (s_cr.buf, end + 1, s_cr.len - used);
            s_cr.len -= used;
            return j;
        }
        long long left_ms = (deadline - h_now_us ()) / 1000;
        if (left_ms <= 0)
            return NULL;
        struct pollfd p = { s_cr.from, POLLIN, 0 };
        if (poll (&p, 1, (int) left_ms) <= 0)
            continue;
        if (s_cr.cap - s_cr.len < 65536) {
            char *bigger = realloc (s_cr.buf, s_cr.cap * 2 + 65536);
            assert_non_null (bigger);
            s_cr.buf = bigger;
            s_cr.cap = s_cr.cap * 2 + 65536;
        }
        ssize_t n = read (s_cr.from, s_cr.buf + s_cr.len, s_cr.cap - s_cr.len);
        if (n == 0 || (n < 0 && errno != EINTR))
            return NULL;
        if (n > 0)
            s_cr.len += (size_t) n;
    }
}

/* Sends method and waits (S_WAIT_S at most) for its answer, skipping
 * events.  Return its "result" (new); fails the test on an error. */
static json_t *
s_cdp (const char *method, json_t *params, int page)
{
    int id = s_cdp_send (method, params, page);
    long long deadline = h_deadline (S_WAIT_S);
    for (;;) {
        json_t *msg = s_cdp_read (deadline);
        if (!msg)
            fail_msg ("chromium did not answer %s within %d s (see chromium.log)", method,
                      S_WAIT_S);
        if (json_integer_value (json_object_get (msg, "id")) == id) {
            json_t *err = json_object_get (msg, "error");
            if (err) {
                char *text = json_dumps (err, JSON_COMPACT);
                fail_msg ("%s failed: %s", method, text);
            }
            json_t *result = json_incref (json_object_get (msg, "result"));
            json_decref (msg);
            return result;
        }
        json_decref (msg);
    }
}

/* Evaluates expr in the page (awaiting a promise).  Return its value
 * (new), or NULL when it threw. */
static json_t *
s_js (const char *expr)
{
    json_t *r = s_cdp ("Runtime.evaluate",
                       json_pack ("{s:s, s:b, s:b}", "expression", expr, "returnByValue", 1,
                                  "awaitPromise", 1), 1);
    json_t *value = json_object_get (r, "exceptionDetails") ? NULL
        : json_incref (json_object_get (json_object_get (r, "result"), "value"));
    json_decref (r);
    return value;
}

/* Polls expr every 100 ms until it is true, for S_WAIT_S at most. */
static int
s_js_until (const char *expr)
{
    long long deadline = h_deadline (S_WAIT_S);
    while (h_now_us () < deadline) {
        json_t *v = s_js (expr);
        int yes = json_is_true (v);
        json_decref (v);
        if (yes)
            return 1;
        usleep (100 * 1000);
    }
    return 0;
}

#define s_assert_until(expr)                                                    \
    do {                                                                        \
        if (!s_js_until (expr))                                                 \
            fail_msg ("the page never had: %s", expr);                          \
    } while (0)

/* The string value of expr (new), or NULL. */
static char *
s_js_str (const char *expr)
{
    json_t *v = s_js (expr);
    char *s = json_is_string (v) ? strdup (json_string_value (v)) : NULL;
    json_decref (v);
    return s;
}

/* --- curl ---------------------------------------------------------- */

/* Runs curl on path; returns the status, the body and the headers in
 * *body and *headers (new, either may be NULL). */
static int
s_curl (const char *method, const char *path, const char *extra, char **body, char **headers)
{
    char cmd[2048], out[400], head[400];
    snprintf (out, sizeof out, "%s/curl.out", s_host.dir);
    snprintf (head, sizeof head, "%s/curl.head", s_host.dir);
    snprintf (cmd, sizeof cmd, "curl -s -m 20 -o '%s' -D '%s' -w '%%{http_code}' -X %s %s '%s%s'",
              out, head, method, extra ? extra : "", s_base, path);
    FILE *p = popen (cmd, "r");
    assert_non_null (p);
    int status = -1;
    if (fscanf (p, "%d", &status) != 1)
        status = -1;
    pclose (p);
    const char *files[2] = { out, head };
    char **into[2] = { body, headers };
    for (int i = 0; i < 2; i++) {
        if (!into[i])
            continue;
        FILE *f = fopen (files[i], "r");
        char *text = calloc (1, 1 << 20);
        if (f) {
            text[fread (text, 1, (1 << 20) - 1, f)] = '\0';
            fclose (f);
        }
        *into[i] = text;
    }
    return status;
}

/* --- the tests ------------------------------------------------------- */

/* GET /, /console.css and /console.js: 200, their type, no-cache and the
 * CSP; other paths are the gateway's 400 as before. */
static void
test_static (void **state)
{
    (void) state;
    static const struct { const char *path, *type, *part; } files[] = {
        { "/", "Content-Type: text/html; charset=utf-8", "<script src=\"/console.js\"" },
        { "/console.css", "Content-Type: text/css; charset=utf-8", "#events" },
        { "/console.js", "Content-Type: text/javascript; charset=utf-8", "EventSource" },
    };
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char *body, *head;
        assert_int_equal (s_curl ("GET", files[i].path, NULL, &body, &head), 200);
        h_assert_contains (head, files[i].type);
        h_assert_contains (head, "Cache-Control: no-cache");
        h_assert_contains (head, "Content-Security-Policy: default-src 'self'; script-src 'self'");
        h_assert_contains (body, files[i].part);
        free (body);
        free (head);
    }
    static const char *const others[] = { "/console.png", "/index.html", "/console.js/x" };
    for (size_t i = 0; i < sizeof others / sizeof others[0]; i++) {
        char *body;
        assert_int_equal (s_curl ("GET", others[i], NULL, &body, NULL), 400);
        json_t *j = h_json (body);
        h_assert_str (h_error_code (j), "bad_request");
        json_decref (j);
        free (body);
    }
    char *body;
    assert_int_equal (s_curl ("POST", "/", "-d '{}'", &body, NULL), 400);
    free (body);
}

/* The page lists the tour's contexts, with their versions and real pids,
 * and their projections and reactor. */
static void
test_page (void **state)
{
    (void) state;
    s_assert_until ("[...document.querySelectorAll('#contexts tbody tr')]"
                    ".map(r => r.dataset.context).sort().join() === 'accounts,transfers'");
    json_t *info = h_context_info (&s_host, "accounts");
    assert_non_null (info);
    char expr[400];
    snprintf (expr, sizeof expr, "[...document.querySelectorAll("
              "'#contexts tr[data-context=accounts] td')].map(t => t.textContent).join('|')"
              ".startsWith('accounts|1.0.0|%lld|up|')",
              (long long) h_int_at (info, "process.pid"));
    json_decref (info);
    s_assert_until (expr);
    s_assert_until ("[...document.querySelectorAll('#readers tbody tr')]"
                    ".map(r => r.dataset.kind + ':' + r.dataset.reader).sort().join() === "
                    "'projection:balances,projection:transfers,reactor:transfer-process'");
    s_assert_until ("document.getElementById('conn').textContent === 'connected'");
}

/* Without the token every admin button is off, and a click does nothing;
 * a wrong token gets a clear 403; the right one gets Retry and Reload
 * done; Forget turns the buttons off again. */
static void
test_admin (void **state)
{
    (void) state;
    s_assert_until ("document.querySelectorAll('button.admin').length === 5");
    s_assert_until ("[...document.querySelectorAll('button.admin')].every(b => b.disabled)");
    json_t *v = s_js ("document.querySelector('#readers tr[data-reader=\"transfer-process\"] "
                      "button.admin').click(); new Promise(r => setTimeout(r, 500))"
                      ".then(() => document.getElementById('notice').hidden)");
    assert_true (json_is_true (v));
    json_decref (v);
    s_js ("document.getElementById('admin-token').value = 'wrong';"
          "document.getElementById('admin-save').click(); true");
    s_assert_until ("[...document.querySelectorAll('button.admin')].every(b => !b.disabled)");
    s_js ("document.querySelector('#readers tr[data-reader=\"transfer-process\"] "
          "button.admin').click(); true");
    s_assert_until ("document.getElementById('notice').dataset.status === '403'");
    char *notice = s_js_str ("document.getElementById('notice').textContent");
    h_assert_contains (notice, "403 forbidden");
    free (notice);
    s_js ("document.getElementById('admin-token').value = 's3cret';"
          "document.getElementById('admin-save').click();"
          "document.querySelector('#readers tr[data-reader=\"transfer-process\"] "
          "button.admin').click(); true");
    s_assert_until ("document.getElementById('notice').dataset.status === '200'");
    notice = s_js_str ("document.getElementById('notice').textContent");
    h_assert_contains (notice, "\"reactor\":\"transfer-process\"");
    free (notice);
    /* Reload from the contexts table: the configured plugin again. */
    s_js ("document.getElementById('notice').dataset.status = '';"
          "document.querySelector('#contexts tr[data-context=accounts] button.admin').click(); true");
    s_assert_until ("document.getElementById('notice').dataset.status === '200'");
    notice = s_js_str ("document.getElementById('notice').textContent");
    h_assert_contains (notice, "Reload: done.");
    h_assert_contains (notice, "\"previous\":\"1.0.0\"");
    free (notice);
    s_js ("document.getElementById('admin-forget').click(); true");
    s_assert_until ("[...document.querySelectorAll('button.admin')].every(b => b.disabled)");
}

/* The page's reply to its send form, as JSON (new), once it has one. */
static json_t *
s_form_reply (void)
{
    s_assert_until ("document.getElementById('send-reply').dataset.status === '200'");
    char *text = s_js_str ("document.getElementById('send-reply').textContent");
    assert_non_null (text);
    h_assert_contains (text, "HTTP 200\n");
    json_t *j = json_loads (strchr (text, '\n') + 1, 0, NULL);
    free (text);
    assert_non_null (j);
    return j;
}

/* Live: with the stream browser on accounts and live on, a command sent
 * from the page's own form and one sent with curl both appear as live
 * rows, without the page being loaded again; the data's markup is text. */
static void
test_send_live (void **state)
{
    (void) state;
    s_js ("window.bctxSamePage = 'yes'; true");
    s_js ("{ document.getElementById('stream-context').value = 'accounts';"
          "const l = document.getElementById('stream-live'); l.checked = true;"
          "l.dispatchEvent(new Event('change')); true }");
    s_assert_until ("document.getElementById('stream-state').textContent"
                    ".startsWith('live from position')");
    s_js ("{ const c = document.getElementById('send-context'); c.value = 'accounts';"
          "c.dispatchEvent(new Event('change'));"
          "document.getElementById('send-command').value = 'OpenAccount';"
          "document.getElementById('send-data').value = '{\"account\":\"web1\",\"owner\":\"<img id=pwn src=x>\"}';"
          "document.getElementById('send-button').click(); true }");
    json_t *reply = s_form_reply ();
    assert_true (h_ok (reply));
    json_t *event = json_array_get (json_object_get (reply, "events"), 0);
    h_assert_str (h_str (event, "type"), "AccountOpened");
    h_assert_str (h_str (event, "aggregate"), "web1");
    json_int_t position = h_int (event, "position");
    json_decref (reply);
    /* The gateway's reply is the log's truth. */
    json_t *events = h_events (&s_host, "accounts");
    json_t *stored = json_array_get (events, (size_t) position - 1);
    h_assert_str (h_str (stored, "aggregate"), "web1");
    json_decref (events);
    char expr[600];
    snprintf (expr, sizeof expr, "(e => !!e && e.classList.contains('live') && "
              "e.textContent.includes('AccountOpened') && e.textContent.includes('web1'))"
              "(document.querySelector('#events li[data-position=\"%lld\"]'))",
              (long long) position);
    s_assert_until (expr);
    /* The owner is markup: it shows as text and makes no element. */
    snprintf (expr, sizeof expr, "!document.getElementById('pwn') && document.querySelector("
              "'#events li[data-position=\"%lld\"]').textContent.includes('<img id=pwn src=x>')",
              (long long) position);
    s_assert_until (expr);
    char *body;
    assert_int_equal (s_curl ("POST", "/contexts/accounts/commands/Deposit",
                              "-d '{\"account\":\"web1\",\"amount\":42}'", &body, NULL), 200);
    free (body);
    snprintf (expr, sizeof expr, "(e => !!e && e.classList.contains('live') && "
              "e.textContent.includes('Deposited') && e.textContent.includes('\"amount\": 42'))"
              "(document.querySelector('#events li[data-position=\"%lld\"]'))",
              (long long) position + 1);
    s_assert_until (expr);
    s_assert_until ("document.getElementById('events').dataset.live === '2'");
    s_assert_until ("window.bctxSamePage === 'yes'");
}

/* The number of rows in the stream browser, and the first one's position,
 * are as given (a JS condition). */
static void
s_assert_rows (int count, long long first)
{
    char expr[300];
    snprintf (expr, sizeof expr, "(l => l.length === %d && l[0].dataset.position === '%lld')"
              "(document.querySelectorAll('#events li'))", count, first);
    s_assert_until (expr);
}

/* Many events: live takes them all; then pages of 20 with next and prev,
 * and one aggregate's events alone. */
static void
test_paging (void **state)
{
    (void) state;
    for (int i = 0; i < 25; i++) {
        json_t *r = h_send (s_host.endpoint, "accounts", "Deposit", NULL,
                            json_pack ("{s:s, s:i}", "account", "web1", "amount", 1));
        assert_true (h_ok (r));
        json_decref (r);
    }
    json_t *r = h_send (s_host.endpoint, "accounts", "OpenAccount", NULL,
                        json_pack ("{s:s, s:s}", "account", "other", "owner", "Bo"));
    assert_true (h_ok (r));
    json_decref (r);
    json_t *info = h_context_info (&s_host, "accounts");
    long long total = (long long) h_int (info, "position");
    json_decref (info);
    assert_true (total > 20 && total <= 40);   /* two pages */
    char expr[300];
    snprintf (expr, sizeof expr, "document.getElementById('events').dataset.live === '%lld'",
              total);
    s_assert_until (expr);            /* every event came live, once */
    s_assert_rows ((int) total, 1);
    s_js ("{ const l = document.getElementById('stream-live'); l.checked = false;"
          "l.dispatchEvent(new Event('change'));"
          "document.getElementById('stream-from').value = '1';"
          "document.getElementById('stream-load').click(); true }");
    s_assert_rows (20, 1);
    s_assert_until ("document.getElementById('stream-prev').disabled && "
                    "!document.getElementById('stream-next').disabled");
    s_js ("document.getElementById('stream-next').click(); true");
    s_assert_rows ((int) total - 20, 21);
    s_assert_until ("!document.getElementById('stream-prev').disabled && "
                    "document.getElementById('stream-next').disabled");
    s_js ("document.getElementById('stream-prev').click(); true");
    s_assert_rows (20, 1);
    s_js ("document.getElementById('stream-aggregate').value = 'other';"
          "document.getElementById('stream-load').click(); true");
    s_assert_rows (1, total);
    s_assert_until ("document.querySelector('#events li').textContent.includes('AccountOpened other')");
}

/* A bad body from the form: the gateway's 400 shown as the reply. */
static void
test_send_bad (void **state)
{
    (void) state;
    s_js ("document.getElementById('send-data').value = '{\"account\":';"
          "document.getElementById('send-button').click(); true");
    s_assert_until ("document.getElementById('send-reply').dataset.status === '400'");
    char *text = s_js_str ("document.getElementById('send-reply').textContent");
    h_assert_contains (text, "bad_request");
    free (text);
}

/* A screenshot of the page, saved as DIR/console.png: a PNG. */
static void
test_screenshot (void **state)
{
    (void) state;
    json_t *r = s_cdp ("Page.captureScreenshot", json_pack ("{s:s}", "format", "png"), 1);
    const char *data = h_str (r, "data");
    assert_non_null (data);
    char b64[400], png[400], cmd[1000];
    snprintf (b64, sizeof b64, "%s/console.png.b64", s_host.dir);
    snprintf (png, sizeof png, "%s/console.png", s_host.dir);
    FILE *f = fopen (b64, "w");
    assert_non_null (f);
    fputs (data, f);
    fclose (f);
    json_decref (r);
    snprintf (cmd, sizeof cmd, "base64 -d '%s' > '%s'", b64, png);
    assert_int_equal (system (cmd), 0);
    unsigned char magic[8] = { 0 };
    f = fopen (png, "rb");
    assert_non_null (f);
    assert_int_equal (fread (magic, 1, sizeof magic, f), sizeof magic);
    fclose (f);
    assert_memory_equal (magic, "\x89PNG\r\n\x1a\n", 8);
    struct stat st;
    assert_int_equal (stat (png, &st), 0);
    assert_true (st.st_size > 1000);
    fprintf (stderr, "test_console: screenshot %s (%lld bytes)\n", png, (long long) st.st_size);
}

/* No script error and no CSP violation on the page, all along. */
static void
test_clean (void **state)
{
    (void) state;
    char *faults = s_js_str ("JSON.stringify(window.bctxFaults)");
    h_assert_str (faults, "[]");
    free (faults);
}

/* --- setup ----------------------------------------------------------- */

/* A loopback port nobody listens on now. */
static int
s_free_port (void)
{
    int fd = socket (AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl (INADDR_LOOPBACK) };
    socklen_t len = sizeof sa;
    assert_int_equal (bind (fd, (struct sockaddr *) &sa, sizeof sa), 0);
    assert_int_equal (getsockname (fd, (struct sockaddr *) &sa, &len), 0);
    close (fd);
    return ntohs (sa.sin_port);
}

/* The page's script errors and CSP violations are kept in
 * window.bctxFaults from its first moment. */
static const char s_fault_watch[] =
    "window.bctxFaults = [];"
    "addEventListener('error', e => bctxFaults.push('error: ' + e.message));"
    "addEventListener('unhandledrejection', e => bctxFaults.push('rejection: ' + e.reason));"
    "addEventListener('securitypolicyviolation', e => bctxFaults.push('csp: ' + e.violatedDirective));";

static int
s_setup (void **state)
{
    (void) state;
    signal (SIGPIPE, SIG_IGN);
    if (h_init (&s_host) < 0)
        return -1;
    snprintf (s_host.contexts, sizeof s_host.contexts,
              "[{\"name\": \"accounts\", \"plugin\": \"%s\"}, "
              "{\"name\": \"transfers\", \"plugin\": \"%s\"}]",
              h_path ("plugins/accounts/accounts.so"), h_path ("plugins/transfers/transfers.so"));
    int port = s_free_port ();
    snprintf (s_base, sizeof s_base, "http://127.0.0.1:%d", port);
    snprintf (s_host.host_extra, sizeof s_host.host_extra,
              "\"http\": \"127.0.0.1:%d\", \"http_admin_token\": \"s3cret\"", port);
    if (h_start (&s_host) < 0)
        return -1;
    atexit (s_chromium_at_exit);
    s_chromium_start ();
    json_t *r = s_cdp ("Target.createTarget", json_pack ("{s:s}", "url", "about:blank"), 0);
    json_t *a = s_cdp ("Target.attachToTarget", json_pack ("{s:s, s:b}", "targetId",
                       h_str (r, "targetId"), "flatten", 1), 0);
    snprintf (s_cr.session, sizeof s_cr.session, "%s", h_str (a, "sessionId"));
    json_decref (r);
    json_decref (a);
    json_decref (s_cdp ("Page.enable", NULL, 1));
    json_decref (s_cdp ("Page.addScriptToEvaluateOnNewDocument",
                        json_pack ("{s:s}", "source", s_fault_watch), 1));
    char url[128];
    snprintf (url, sizeof url, "%s/", s_base);
    json_t *nav = s_cdp ("Page.navigate", json_pack ("{s:s}", "url", url), 1);
    int failed = json_object_get (nav, "errorText") != NULL;
    json_decref (nav);
    return failed ? -1 : 0;
}

static int
s_teardown (void **state)
{
    (void) state;
    s_chromium_stop ();
    return h_teardown (&s_host);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_static),
        cmocka_unit_test (test_page),
        cmocka_unit_test (test_admin),
        cmocka_unit_test (test_send_live),
        cmocka_unit_test (test_screenshot),
        cmocka_unit_test (test_paging),
        cmocka_unit_test (test_send_bad),
        cmocka_unit_test (test_clean),
    };
    return cmocka_run_group_tests (tests, s_setup, s_teardown);
}
