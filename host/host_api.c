/*
 * host_api - the host services a plugin calls, gathered into its table.
 */
#include "host_api.h"
#include "loader.h"
#include "log.h"
#include "projection.h"
#include "reactor.h"

#include <stdarg.h>
#include <stdio.h>

/* host->log: one line of the host's log, naming the plugin's context. */
static void
s_host_log (const bctx_host_t *host, int level, const char *fmt, ...)
{
    const bctx_plugin_t *self = host->priv;
    char line[1024];
    va_list ap;
    va_start (ap, fmt);
    vsnprintf (line, sizeof line, fmt, ap);
    va_end (ap);
    bctx_log (level, "context %s: %s", self->name, line);
}

/* host->context_name: the context's name from the config (borrowed). */
static const char *
s_host_context_name (const bctx_host_t *host)
{
    const bctx_plugin_t *self = host->priv;
    return self->name;
}

void
bctx_host_api_fill (bctx_host_t *host, bctx_plugin_t *plugin)
{
    *host = (bctx_host_t) {
        .size = sizeof *host,
        .priv = plugin,
        .log = s_host_log,
        .context_name = s_host_context_name,
        .model_get = bctx_models_get,
        .model_put = bctx_models_put,
        .model_delete = bctx_models_delete,
        .send = bctx_reaction_send,
    };
}
