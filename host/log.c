/*
 * log - the host's line logger.  One write(2) per line so lines from
 * several threads never interleave.
 */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

/* The least important level printed (bctx_log_set_level). */
static int s_level = BCTX_LOG_INFO;

/* The context whose plugin code this thread runs, or NULL. */
static _Thread_local const char *s_context;

void
bctx_log_set_level (int level)
{
    s_level = level;
}

const char *
bctx_log_set_context (const char *name)
{
    const char *was = s_context;
    s_context = name;
    return was;
}

void
bctx_log_unexpected_exit (void)
{
    if (s_context)
        bctx_log (BCTX_LOG_ERROR, "context %s: its plugin code called exit(): its context "
                  "process ends with it (its supervisor restarts it; fix or remove that "
                  "plugin)", s_context);
    else
        bctx_log (BCTX_LOG_ERROR, "the host process is ending through exit() outside any "
                  "context's code, without a drain");
}

void
bctx_log (int level, const char *fmt, ...)
{
    static const char *const names[] = { "ERROR", "WARN", "INFO", "DEBUG" };
    if (level > s_level)
        return;
    if (level < 0 || level > BCTX_LOG_DEBUG)
        level = BCTX_LOG_ERROR;
    struct timespec ts;
    clock_gettime (CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r (&ts.tv_sec, &tm);
    char line[2048];
    int n = (int) strftime (line, sizeof line, "%Y-%m-%dT%H:%M:%S", &tm);
    n += snprintf (line + n, sizeof line - (size_t) n, ".%03ldZ %s ",
                   ts.tv_nsec / 1000000, names[level]);
    va_list ap;
    va_start (ap, fmt);
    int m = vsnprintf (line + n, sizeof line - (size_t) n - 1, fmt, ap);
    va_end (ap);
    if (m < 0)
        m = 0;
    n += m;
    if (n > (int) sizeof line - 2)
        n = (int) sizeof line - 2;
    line[n++] = '\n';
    ssize_t w = write (STDERR_FILENO, line, (size_t) n);
    (void) w;
}
