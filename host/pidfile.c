/*
 * pidfile - the supervisor's pid in a file while it serves (pidfile.h).
 */
#include "pidfile.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

/* The pid path holds: > 0, 0 when it holds none (absent, empty, not a
 * number), or -1 when it cannot be read (errno says why). */
static long
s_read (const char *path)
{
    FILE *f = fopen (path, "r");
    if (!f)
        return errno == ENOENT ? 0 : -1;
    long pid = 0;
    if (fscanf (f, "%ld", &pid) != 1 || pid < 0)
        pid = 0;
    fclose (f);
    return pid;
}

int
bctx_pidfile_check (const char *path, char *err, size_t errlen)
{
    long pid = s_read (path);
    if (pid < 0) {
        snprintf (err, errlen, "--pidfile %s: %s", path, strerror (errno));
        return -1;
    }
    if (pid > 0 && pid != (long) getpid () && (kill ((pid_t) pid, 0) == 0 || errno == EPERM)) {
        snprintf (err, errlen, "--pidfile %s: process %ld is running (a host that already "
                  "serves?); stop it (`bctx stop`, or kill %ld), or remove the file if that "
                  "process is no host", path, pid, pid);
        return -1;
    }
    return 0;
}

int
bctx_pidfile_write (const char *path, char *err, size_t errlen)
{
    char tmp[4200];
    snprintf (tmp, sizeof tmp, "%s.%ld.tmp", path, (long) getpid ());
    FILE *f = fopen (tmp, "w");
    int ok = f && fprintf (f, "%ld\n", (long) getpid ()) > 0;
    if (f && fclose (f) != 0)
        ok = 0;
    if (!ok || rename (tmp, path) != 0) {
        snprintf (err, errlen, "--pidfile %s: %s", path, strerror (errno));
        unlink (tmp);
        return -1;
    }
    return 0;
}

void
bctx_pidfile_remove (const char *path)
{
    if (path && s_read (path) == (long) getpid ())
        unlink (path);
}
