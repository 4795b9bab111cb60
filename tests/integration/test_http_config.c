/*
 * test_http_config - what host.http binds, with the real bctx-host: an
 * address beyond loopback without host.allow_remote refuses the start,
 * naming host.http; "http": false opens no listener (the host's listening
 * sockets, read from /proc, are its API and bus only); "127.0.0.1:PORT"
 * and "[::1]:PORT" serve the gateway there; an address that is neither
 * IPv4 nor bracketed IPv6 is refused, saying which forms are taken.
 */
#include "harness.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

/* A port nothing listens on now, from the kernel (family AF_INET binds
 * 127.0.0.1, AF_INET6 ::1).  Return it, or -1. */
static int
s_free_port (int family)
{
    int fd = socket (family, SOCK_STREAM, 0);
    struct sockaddr_storage sa = { 0 };
    socklen_t len;
    if (family == AF_INET6) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *) &sa;
        a->sin6_family = AF_INET6;
        a->sin6_addr = in6addr_loopback;
        len = sizeof *a;
    } else {
        struct sockaddr_in *a = (struct sockaddr_in *) &sa;
        a->sin_family = AF_INET;
        a->sin_addr.s_addr = htonl (INADDR_LOOPBACK);
        len = sizeof *a;
    }
    int port = -1;
    if (fd >= 0 && bind (fd, (struct sockaddr *) &sa, len) == 0
        && getsockname (fd, (struct sockaddr *) &sa, &len) == 0)
        port = ntohs (family == AF_INET6 ? ((struct sockaddr_in6 *) &sa)->sin6_port
                                         : ((struct sockaddr_in *) &sa)->sin_port);
    if (fd >= 0)
        close (fd);
    return port;
}

/* Does process pid hold a socket whose inode is `inode`? */
static int
s_holds (pid_t pid, unsigned long inode)
{
    char dir[64], link[320], want[64];
    snprintf (dir, sizeof dir, "/proc/%d/fd", (int) pid);
    snprintf (want, sizeof want, "socket:[%lu]", inode);
    DIR *d = opendir (dir);
    if (!d)
        return 0;
    int found = 0;
    for (struct dirent *e; !found && (e = readdir (d));) {
        char path[400];
        snprintf (path, sizeof path, "%s/%s", dir, e->d_name);
        ssize_t n = readlink (path, link, sizeof link - 1);
        if (n > 0) {
            link[n] = '\0';
            found = strcmp (link, want) == 0;
        }
    }
    closedir (d);
    return found;
}

/* The TCP ports process pid listens on (IPv4 and IPv6), into ports (at
 * most max).  Return how many. */
static int
s_listening (pid_t pid, int *ports, int max)
{
    const char *tables[] = { "/proc/net/tcp", "/proc/net/tcp6" };
    int n = 0;
    for (int t = 0; t < 2; t++) {
        FILE *f = fopen (tables[t], "r");
        char line[512];
        if (!f)
            continue;
        if (!fgets (line, sizeof line, f))           /* the header */
            line[0] = '\0';
        while (fgets (line, sizeof line, f) && n < max) {
            char local[128], remote[128];
            unsigned st;
            unsigned long inode;
            /* sl local rem st tx:rx tr:when retrnsmt uid timeout inode */
            if (sscanf (line, "%*s %127s %127s %x %*s %*s %*s %*s %*s %lu", local, remote, &st,
                        &inode) != 4 || st != 0x0A)
                continue;
            const char *colon = strrchr (local, ':');
            if (colon && s_holds (pid, inode))
                ports[n++] = (int) strtol (colon + 1, NULL, 16);
        }
        fclose (f);
    }
    return n;
}

/* Is port among the n ports? */
static int
s_among (const int *ports, int n, int port)
{
    for (int i = 0; i < n; i++)
        if (ports[i] == port)
            return 1;
    return 0;
}

/* The port of a tcp://HOST:PORT endpoint. */
static int
s_port_of (const char *endpoint)
{
    const char *colon = strrchr (endpoint, ':');
    return colon ? atoi (colon + 1) : -1;
}

/* curl's HTTP status for GET url, the body in *body (new). */
static int
s_get (const h_host_t *h, const char *url, char **body)
{
    char out[400], cmd[1200];
    snprintf (out, sizeof out, "%s/curl.out", h->dir);
    snprintf (cmd, sizeof cmd, "curl -g -s -m 10 -o '%s' -w '%%{http_code}' '%s'", out, url);
    FILE *p = popen (cmd, "r");
    assert_non_null (p);
    int status = 0;
    if (fscanf (p, "%d", &status) != 1)
        status = 0;
    pclose (p);
    FILE *f = fopen (out, "r");
    char text[65536] = "";
    size_t n = f ? fread (text, 1, sizeof text - 1, f) : 0;
    text[n] = '\0';
    if (f)
        fclose (f);
    *body = strdup (text);
    return status;
}

/* Writes text (a format with the plugin's path and a port) as a config in
 * a fresh folder, runs the host on it, and checks that it exits 1 with
 * `want` in its log. */
static void
s_refused (const char *http, int allow_remote, const char *want)
{
    h_host_t h;
    assert_int_equal (h_init (&h), 0);
    FILE *f = fopen (h.config, "w");
    assert_non_null (f);
    fprintf (f, "{\"host\": {\"api\": \"tcp://127.0.0.1:%d\", \"data\": \"%s/data\","
             " \"http\": \"%s\"%s}, \"contexts\": %s}", s_free_port (AF_INET), h.dir, http,
             allow_remote ? ", \"allow_remote\": true" : "", h.contexts);
    fclose (f);
    char *err = NULL;
    int code = h_run_host_expecting_exit (h.config, &err);
    if (code != 1)
        fail_msg ("exit %d, log:\n%s", code, err);
    h_assert_contains (err, want);
    free (err);
    assert_int_equal (h_cleanup (&h), 0);
}

/* Beyond loopback without host.allow_remote: refused, naming host.http
 * and the key that would allow it. */
static void
test_non_loopback_refused (void **state)
{
    (void) state;
    char http[64], want[200];
    int port = s_free_port (AF_INET);
    snprintf (http, sizeof http, "0.0.0.0:%d", port);
    snprintf (want, sizeof want, "host.http: 0.0.0.0:%d is not a loopback address; set "
              "host.allow_remote to true", port);
    s_refused (http, 0, want);
    snprintf (http, sizeof http, "[::]:%d", port);
    s_refused (http, 0, "host.http: [::]");
}

/* Neither IPv4 nor bracketed IPv6, or no port: refused, with the forms. */
static void
test_bad_address_refused (void **state)
{
    (void) state;
    s_refused ("[nonsense]:7780", 1, "host.http: \"nonsense\" is not an IPv6 address");
    s_refused ("::1:7780", 1, "an IPv6 one goes in brackets: [::1]:7780");
    s_refused ("127.0.0.1", 1, "is not HOST:PORT (e.g. 127.0.0.1:7780, or [::1]:7780)");
}

/* "http": false (what the harness writes): the host listens on its API
 * and bus ports and nothing else. */
static void
test_http_false_no_listener (void **state)
{
    (void) state;
    h_host_t h;
    assert_int_equal (h_init (&h), 0);
    assert_int_equal (h_start (&h), 0);
    int ports[32];
    int n = s_listening (h.pid, ports, 32);
    assert_true (s_among (ports, n, s_port_of (h.endpoint)));   /* the method sees them */
    for (int i = 0; i < n; i++)
        if (ports[i] != s_port_of (h.endpoint) && ports[i] != s_port_of (h.publish))
            fail_msg ("with \"http\": false the host listens on port %d", ports[i]);
    assert_false (s_among (ports, n, 7780));
    assert_int_equal (h_cleanup (&h), 0);
}

/* host.http on 127.0.0.1:PORT, then on [::1]:PORT: the gateway answers
 * there, and the host listens on that port. */
static void
test_http_ipv4_and_ipv6_loopback (void **state)
{
    (void) state;
    for (int v6 = 0; v6 < 2; v6++) {
        h_host_t h;
        assert_int_equal (h_init (&h), 0);
        int port = s_free_port (v6 ? AF_INET6 : AF_INET);
        assert_true (port > 0);
        char url[128];
        snprintf (h.host_extra, sizeof h.host_extra, "\"http\": \"%s:%d\"",
                  v6 ? "[::1]" : "127.0.0.1", port);
        snprintf (url, sizeof url, "http://%s:%d/contexts", v6 ? "[::1]" : "127.0.0.1", port);
        assert_int_equal (h_start (&h), 0);
        char *body = NULL;
        assert_int_equal (s_get (&h, url, &body), 200);
        h_assert_contains (body, "\"accounts\"");
        free (body);
        int ports[32];
        int n = s_listening (h.pid, ports, 32);
        assert_true (s_among (ports, n, port));
        assert_int_equal (h_cleanup (&h), 0);
    }
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_non_loopback_refused),
        cmocka_unit_test (test_bad_address_refused),
        cmocka_unit_test (test_http_false_no_listener),
        cmocka_unit_test (test_http_ipv4_and_ipv6_loopback),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
