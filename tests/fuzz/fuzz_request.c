/*
 * fuzz_request - libFuzzer target for the host's request path: the
 * envelope checks, the JSON request parser and every op behind it, run by
 * the real host code in this process.
 *
 * LLVMFuzzerInitialize writes a config into a temporary directory (the
 * bank's accounts and transfers plugins from this build, host.api on an
 * ipc:// path there, no bus endpoint), starts the server on a thread and
 * connects a DEALER to its API and to its admin endpoint (in turn).  Each input is sent as one request frame after an
 * empty delimiter frame, and its reply is awaited for at most 5 s: every
 * request that can be answered is answered with one JSON object with "ok",
 * so a missing or malformed reply aborts (a bug).  Other shapes:
 *   - an input with 0xff bytes is split there into several frames;
 *   - an input starting with 0xfe 0xff is sent without the delimiter, so
 *     its first frames are taken as a routing envelope.  Envelopes the
 *     host cannot encode get no reply by design; those go through a second
 *     DEALER whose replies are ignored.
 * The host lives across inputs and is stopped cleanly at exit.
 *
 * The host here is the supervisor: its context processes are the build's
 * bin/bctx-host ($BCTX_HOST_EXE), where ops that load code (reload) run
 * for real, held to the plugin folders of the config (this build's plugin
 * folders).  dlopen in this process is still wrapped
 * (-Wl,--wrap=dlopen): only a file with the same bytes as one of the two
 * configured plugins would be loaded here, whatever path an input names.
 */
#include "config.h"
#include "log.h"
#include "server.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#define S_REPLY_MS     5000      /* longest wait for a reply: longer is a bug */
#define S_MAX_MESSAGE  2048      /* host.max_message of the fuzzed host */
#define S_MAX_FRAMES   64        /* frames an input is split into, at most */
#define S_ENVELOPE_MAX 512       /* the host's encoded envelope limit (server.c) */
#define S_KEPT_FRAMES  8         /* frames the host keeps of a message (server.c) */
#define S_PLUGIN_MAX   (64 * 1024 * 1024) /* largest file the dlopen guard reads */

/* What the target keeps between inputs. */
static struct {
    char dir[PATH_MAX];           /* the temporary directory */
    char build[PATH_MAX];         /* the build the plugins come from */
    bctx_server_t *server;        /* the host under test */
    pthread_t thread;             /* runs bctx_server_run */
    int running;                  /* thread was started */
    int stop[2];                  /* pipe: the server reads a signalfd_siginfo */
    void *zctx;                   /* the client side's ZeroMQ context */
    void *dealer;                 /* sends the requests that get a reply */
    void *dropper;                /* sends the ones that cannot get one */
    unsigned char *allowed[2];    /* the bytes of the plugins dlopen may load */
    size_t allowed_len[2];        /* their lengths */
} s_fuzz;

void *__real_dlopen (const char *file, int mode);
/* Reads a whole file (at most S_PLUGIN_MAX bytes).  Return: new, or NULL. */
static unsigned char *
s_slurp (const char *path, size_t *len)
{
    int fd = open (path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat (fd, &st) != 0 || !S_ISREG (st.st_mode) || st.st_size > S_PLUGIN_MAX) {
        if (fd >= 0)
            close (fd);
        return NULL;
    }
    unsigned char *buf = malloc ((size_t) st.st_size + 1);
    size_t got = 0;
    ssize_t n;
    while (buf && got < (size_t) st.st_size
           && (n = read (fd, buf + got, (size_t) st.st_size - got)) > 0)
        got += (size_t) n;
    close (fd);
    if (buf && got != (size_t) st.st_size) {
        free (buf);
        buf = NULL;
    }
    *len = got;
    return buf;
}

/* The loader's dlopen: loads only a copy of a configured plugin. */
void *
__wrap_dlopen (const char *file, int mode)
{
    size_t len = 0;
    unsigned char *bytes = file ? s_slurp (file, &len) : NULL;
    int ok = 0;
    for (size_t i = 0; bytes && i < 2; i++)
        ok |= s_fuzz.allowed[i] && len == s_fuzz.allowed_len[i]
              && memcmp (bytes, s_fuzz.allowed[i], len) == 0;
    free (bytes);
    return ok ? __real_dlopen (file, mode) : NULL;
}

/* Removes what the host left in the temporary directory. */
static void
s_remove_dir (void)
{
    if (!s_fuzz.dir[0])
        return;
    char cmd[PATH_MAX + 16];
    snprintf (cmd, sizeof cmd, "rm -rf '%s'", s_fuzz.dir);
    if (system (cmd) != 0)
        fprintf (stderr, "fuzz_request: cannot remove %s\n", s_fuzz.dir);
    s_fuzz.dir[0] = '\0';
}

/* At exit: stop the host as SIGTERM would, and free everything. */
static void
s_shutdown (void)
{
    if (s_fuzz.running) {
        struct signalfd_siginfo si = { .ssi_signo = SIGTERM };
        if (write (s_fuzz.stop[1], &si, sizeof si) == (ssize_t) sizeof si)
            pthread_join (s_fuzz.thread, NULL);
        s_fuzz.running = 0;
    }
    zmq_close (s_fuzz.dealer);
    zmq_close (s_fuzz.dropper);
    zmq_ctx_term (s_fuzz.zctx);
    bctx_server_destroy (&s_fuzz.server);
    close (s_fuzz.stop[0]);
    close (s_fuzz.stop[1]);
    free (s_fuzz.allowed[0]);
    free (s_fuzz.allowed[1]);
    s_remove_dir ();
}

static void *
s_serve (void *arg)
{
    (void) arg;
    bctx_server_run (s_fuzz.server, s_fuzz.stop[0]);
    return NULL;
}

/* Fails the whole run: the target cannot work. */
static void
s_die (const char *what)
{
    fprintf (stderr, "fuzz_request: %s\n", what);
    s_remove_dir ();
    exit (1);
}

/* The build the plugins come from: $BCTX_BUILD, else three folders up
 * from this binary (BUILD/tests/fuzz/fuzz_request). */
static void
s_find_build (void)
{
    const char *env = getenv ("BCTX_BUILD");
    if (env) {
        snprintf (s_fuzz.build, sizeof s_fuzz.build, "%s", env);
        return;
    }
    ssize_t n = readlink ("/proc/self/exe", s_fuzz.build, sizeof s_fuzz.build - 1);
    if (n < 0)
        s_die ("cannot read /proc/self/exe; set BCTX_BUILD");
    s_fuzz.build[n] = '\0';
    for (int up = 0; up < 3; up++) {
        char *slash = strrchr (s_fuzz.build, '/');
        if (!slash)
            s_die ("cannot find the build from this binary's path; set BCTX_BUILD");
        *slash = '\0';
    }
}

int
LLVMFuzzerInitialize (int *argc, char ***argv)
{
    (void) argc, (void) argv;
    bctx_log_set_level (getenv ("BCTX_LOG") ? BCTX_LOG_INFO : BCTX_LOG_ERROR);
    signal (SIGPIPE, SIG_IGN);
    s_find_build ();
    char plugins[2][PATH_MAX];
    snprintf (plugins[0], sizeof plugins[0], "%s/plugins/accounts/accounts.so", s_fuzz.build);
    snprintf (plugins[1], sizeof plugins[1], "%s/plugins/transfers/transfers.so", s_fuzz.build);
    for (int i = 0; i < 2; i++)
        if (!(s_fuzz.allowed[i] = s_slurp (plugins[i], &s_fuzz.allowed_len[i])))
            s_die ("cannot read the plugins; build them first (make fuzz)");

    snprintf (s_fuzz.dir, sizeof s_fuzz.dir, "/tmp/bctx-fuzz-XXXXXX");
    if (!mkdtemp (s_fuzz.dir))
        s_die ("cannot make a temporary directory");
    char path[PATH_MAX + 32], api[PATH_MAX + 32];
    snprintf (path, sizeof path, "%s/config.json", s_fuzz.dir);
    snprintf (api, sizeof api, "ipc://%s/api", s_fuzz.dir);
    FILE *f = fopen (path, "w");
    if (!f)
        s_die ("cannot write the config");
    fprintf (f, "{\"host\": {\"name\": \"fuzz\", \"api\": \"%s\", \"data\": \"%s/data\", "
             "\"max_message\": %d},\n \"contexts\": [\n"
             "  {\"name\": \"accounts\", \"plugin\": \"%s\"},\n"
             "  {\"name\": \"transfers\", \"plugin\": \"%s\"}]}\n",
             api, s_fuzz.dir, S_MAX_MESSAGE, plugins[0], plugins[1]);
    fclose (f);
    /* As bctx-host's main does, the host's threads (and ZeroMQ's, which
     * they start) take no asynchronous signal: libFuzzer's SIGALRM goes to
     * this thread, whose mask is restored below. */
    sigset_t quiet, was;
    sigemptyset (&quiet);
    sigaddset (&quiet, SIGALRM);
    sigaddset (&quiet, SIGINT);
    sigaddset (&quiet, SIGTERM);
    sigaddset (&quiet, SIGHUP);
    sigaddset (&quiet, SIGUSR1);
    sigaddset (&quiet, SIGUSR2);
    sigaddset (&quiet, SIGCHLD);
    pthread_sigmask (SIG_BLOCK, &quiet, &was);
    char err[1024];
    bctx_config_t *config = bctx_config_load (path, err, sizeof err);
    if (!config)
        s_die (err);
    /* The host's context processes are the build's bctx-host, not this. */
    char exe[PATH_MAX + 32];
    snprintf (exe, sizeof exe, "%s/bin/bctx-host", s_fuzz.build);
    setenv ("BCTX_HOST_EXE", exe, 1);
    s_fuzz.server = bctx_server_new (config, NULL, err, sizeof err);
    if (!s_fuzz.server)
        s_die (err);
    if (pipe (s_fuzz.stop) != 0)
        s_die ("pipe failed");
    if (pthread_create (&s_fuzz.thread, NULL, s_serve, NULL) != 0)
        s_die ("cannot start the server thread");
    s_fuzz.running = 1;
    atexit (s_shutdown);

    s_fuzz.zctx = zmq_ctx_new ();
    s_fuzz.dealer = zmq_socket (s_fuzz.zctx, ZMQ_DEALER);
    s_fuzz.dropper = zmq_socket (s_fuzz.zctx, ZMQ_DEALER);
    int linger = 0;
    zmq_setsockopt (s_fuzz.dealer, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt (s_fuzz.dropper, ZMQ_LINGER, &linger, sizeof linger);
    /* Five bytes, as a ROUTER would pick: the envelope checks below count them. */
    zmq_setsockopt (s_fuzz.dealer, ZMQ_ROUTING_ID, "fuzz1", 5);
    zmq_setsockopt (s_fuzz.dropper, ZMQ_ROUTING_ID, "fuzz2", 5);
    /* The dealer also reaches the admin endpoint: a DEALER sends to its
     * peers in turn, so every other request is served there with the
     * admin role (reload, replay, retry run), the rest as a client's. */
    char admin[PATH_MAX + 64];
    snprintf (admin, sizeof admin, "ipc://%s/data/run/admin.sock", s_fuzz.dir);
    if (zmq_connect (s_fuzz.dealer, api) != 0 || zmq_connect (s_fuzz.dropper, api) != 0
        || zmq_connect (s_fuzz.dealer, admin) != 0)
        s_die ("cannot connect to the host");
    pthread_sigmask (SIG_SETMASK, &was, NULL);
    return 0;
}

/* Can the host answer a message of frames (its routing id first, then
 * those sent) as server.c's s_on_request does?  Its envelope (every frame
 * before the first empty one among those it keeps, or the routing id
 * alone) must encode in S_ENVELOPE_MAX bytes, each frame 1 to 255 bytes,
 * and no frame may be over the transport's size cut-off. */
static int
s_answerable (const size_t *len, int n)
{
    for (int i = 0; i < n; i++)
        if (len[i] > (size_t) S_MAX_MESSAGE * 16 + 65536)
            return 0;
    int kept = n < S_KEPT_FRAMES ? n : S_KEPT_FRAMES, empty = -1;
    for (int i = 1; i < kept && empty < 0; i++)
        if (len[i] == 0)
            empty = i;
    int envelope_n = empty > 0 ? empty : 1;
    size_t total = 0;
    for (int i = 0; i < envelope_n; i++) {
        if (len[i] == 0 || len[i] > 255)
            return 0;
        total += 1 + len[i];
    }
    return n >= 2 && total <= S_ENVELOPE_MAX;
}

/* Milliseconds on the monotonic clock. */
static long long
s_now_ms (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (long long) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits for the reply on the dealer and checks it: its last frame is a JSON
 * object with a boolean "ok".  Aborts when there is none in time.  A
 * signal (libFuzzer's SIGALRM lands on this thread) does not end the wait. */
static void
s_await_reply (size_t size)
{
    zmq_pollitem_t item = { s_fuzz.dealer, 0, ZMQ_POLLIN, 0 };
    long long deadline = s_now_ms () + S_REPLY_MS;
    int rc;
    while ((rc = zmq_poll (&item, 1, (long) (deadline - s_now_ms ()))) < 0
           && zmq_errno () == EINTR && s_now_ms () < deadline)
        ;
    if (rc != 1) {
        fprintf (stderr, "fuzz_request: no reply within %d ms to a request of %zu bytes (%s)\n",
                 S_REPLY_MS, size, rc < 0 ? zmq_strerror (zmq_errno ()) : "timed out");
        abort ();
    }
    zmq_msg_t msg;
    zmq_msg_init (&msg);
    int more = 1;
    json_t *reply = NULL;
    while (more) {
        if (zmq_msg_recv (&msg, s_fuzz.dealer, 0) < 0) {
            if (zmq_errno () == EINTR)
                continue;
            break;
        }
        more = zmq_msg_more (&msg);
        if (!more)
            reply = json_loadb (zmq_msg_data (&msg), zmq_msg_size (&msg), 0, NULL);
    }
    zmq_msg_close (&msg);
    if (!json_is_object (reply) || !json_is_boolean (json_object_get (reply, "ok"))) {
        fprintf (stderr, "fuzz_request: a reply that is not a JSON object with \"ok\"\n");
        abort ();
    }
    json_decref (reply);
}

/* Sends one frame, again when a signal interrupts it; aborts on failure. */
static void
s_send_frame (void *socket, const void *data, size_t len, int flags)
{
    while (zmq_send (socket, data, len, flags) < 0)
        if (zmq_errno () != EINTR) {
            fprintf (stderr, "fuzz_request: cannot send: %s\n", zmq_strerror (zmq_errno ()));
            abort ();
        }
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    char scratch[256];
    while (zmq_recv (s_fuzz.dropper, scratch, sizeof scratch, ZMQ_DONTWAIT) >= 0)
        ;
    /* The frames to send: split at 0xff bytes. */
    int delimiter = !(size >= 2 && data[0] == 0xfe && data[1] == 0xff);
    size_t at = delimiter ? 0 : 2;
    const uint8_t *frame[S_MAX_FRAMES + 2];
    size_t len[S_MAX_FRAMES + 2];
    int n = 0;
    len[n++] = 5;                 /* the routing id the host sees first */
    if (delimiter)
        len[n++] = 0;
    for (;;) {
        const uint8_t *end = n < S_MAX_FRAMES
                             ? memchr (data + at, 0xff, size - at) : NULL;
        size_t l = end ? (size_t) (end - (data + at)) : size - at;
        frame[n] = data + at;
        len[n++] = l;
        if (!end)
            break;
        at += l + 1;
    }
    void *socket = s_answerable (len, n) ? s_fuzz.dealer : s_fuzz.dropper;
    int first = delimiter ? 2 : 1;
    if (delimiter)
        s_send_frame (socket, "", 0, ZMQ_SNDMORE);
    for (int i = first; i < n; i++)
        s_send_frame (socket, len[i] ? frame[i] : (const uint8_t *) "", len[i],
                      i + 1 < n ? ZMQ_SNDMORE : 0);
    if (socket == s_fuzz.dealer)
        s_await_reply (size);
    return 0;
}
