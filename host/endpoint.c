/*
 * endpoint - string tests and name resolution for tcp endpoints.
 */
#include "endpoint.h"

#include <errno.h>
#include <ifaddrs.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>

int
bctx_endpoint_is_loopback (const char *endpoint)
{
    static const char *const ok[] = {
        "tcp://127.", "tcp://localhost:", "tcp://[::1]:", "ipc://", "inproc://", NULL
    };
    for (const char *const *p = ok; *p; p++)
        if (strncmp (endpoint, *p, strlen (*p)) == 0)
            return 1;
    return 0;
}

/* Splits "tcp://HOST:PORT" into host (brackets of an IPv6 address
 * removed) and port.  Return 0, or -1 when it is not that form. */
static int
s_split (const char *endpoint, char *host, size_t hostlen, char *port, size_t portlen)
{
    if (strncmp (endpoint, "tcp://", 6) != 0)
        return -1;
    const char *h = endpoint + 6;
    const char *colon = strrchr (h, ':');
    if (!colon || colon == h || !colon[1] || strlen (colon + 1) >= portlen)
        return -1;
    size_t n = (size_t) (colon - h);
    if (h[0] == '[' && n >= 2 && h[n - 1] == ']')
        h++, n -= 2;
    if (n >= hostlen)
        return -1;
    memcpy (host, h, n);
    host[n] = '\0';
    snprintf (port, portlen, "%s", colon + 1);
    return 0;
}

int
bctx_endpoint_is_wildcard (const char *endpoint)
{
    char host[256], port[16];
    if (s_split (endpoint, host, sizeof host, port, sizeof port) < 0)
        return 0;
    return strcmp (host, "*") == 0 || strcmp (host, "0.0.0.0") == 0
           || strcmp (host, "::") == 0;
}

/* Are two socket addresses the same address (ports aside)? */
static int
s_same_address (const struct sockaddr *a, const struct sockaddr *b)
{
    if (a->sa_family != b->sa_family)
        return 0;
    if (a->sa_family == AF_INET)
        return ((const struct sockaddr_in *) a)->sin_addr.s_addr
               == ((const struct sockaddr_in *) b)->sin_addr.s_addr;
    if (a->sa_family == AF_INET6)
        return memcmp (&((const struct sockaddr_in6 *) a)->sin6_addr,
                       &((const struct sockaddr_in6 *) b)->sin6_addr, 16) == 0;
    return 0;
}

/* Is the address one of this machine's (loopback or an interface's)? */
static int
s_local_address (const struct sockaddr *a)
{
    if (a->sa_family == AF_INET
        && (ntohl (((const struct sockaddr_in *) a)->sin_addr.s_addr) >> 24) == 127)
        return 1;
    if (a->sa_family == AF_INET6
        && IN6_IS_ADDR_LOOPBACK (&((const struct sockaddr_in6 *) a)->sin6_addr))
        return 1;
    struct ifaddrs *list = NULL;
    if (getifaddrs (&list) != 0)
        return 0;
    int found = 0;
    for (struct ifaddrs *i = list; i && !found; i = i->ifa_next)
        found = i->ifa_addr && s_same_address (i->ifa_addr, a);
    freeifaddrs (list);
    return found;
}

int
bctx_endpoint_same_socket (const char *local, const char *peer)
{
    char lhost[256], lport[16], phost[256], pport[16];
    if (s_split (local, lhost, sizeof lhost, lport, sizeof lport) < 0
        || s_split (peer, phost, sizeof phost, pport, sizeof pport) < 0
        || atoi (lport) != atoi (pport))
        return 0;
    struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *pa = NULL, *la = NULL;
    if (getaddrinfo (phost, pport, &hints, &pa) != 0)
        return 0;
    int wildcard = bctx_endpoint_is_wildcard (local);
    int same = 0;
    if (!wildcard && getaddrinfo (lhost, lport, &hints, &la) != 0)
        la = NULL;
    for (struct addrinfo *p = pa; p && !same; p = p->ai_next) {
        if (wildcard)
            same = s_local_address (p->ai_addr);
        for (struct addrinfo *l = la; l && !same; l = l->ai_next)
            same = s_same_address (l->ai_addr, p->ai_addr);
    }
    freeaddrinfo (pa);
    if (la)
        freeaddrinfo (la);
    return same;
}

int
bctx_run_endpoint (const char *data, const char *name, char *out, size_t size,
                   char *err, size_t errlen)
{
    char *real = realpath (data, NULL);
    if (!real) {
        snprintf (err, errlen, "host.data: %s: %s", data, strerror (errno));
        return -1;
    }
    char run[PATH_MAX + 8];
    snprintf (run, sizeof run, "%s/run", real);
    free (real);
    if (mkdir (run, 0700) < 0 && errno != EEXIST) {
        snprintf (err, errlen, "host.data: cannot create %s: %s", run, strerror (errno));
        return -1;
    }
    snprintf (out, size, "ipc://%s/%s", run, name);
    if (strlen (out) - 6 > 107) {
        snprintf (err, errlen, "host.data: the socket %s is over the 107 bytes a Unix "
                  "socket allows: give host.data a shorter path", out + 6);
        return -1;
    }
    return 0;
}
