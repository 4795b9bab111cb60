/*
 * http - the HTTP/JSON gateway of a supervisor (libmicrohttpd, its own
 * threads).  Each HTTP request becomes the wire protocol's JSON request,
 * sent to this host's own API over ZeroMQ inproc, so every role check and
 * error code is the API's; the error codes map to HTTP statuses.  Admin
 * ops need "Authorization: Bearer <host.http_admin_token>".  See
 * docs/http.md.
 */
#ifndef BCTX_HTTP_H
#define BCTX_HTTP_H

#include "config.h"

typedef struct bctx_http bctx_http_t;

/* Starts the gateway on config->http ("HOST:PORT").  zctx, config:
 * borrowed, and outlive it.  Return: new, or NULL with the reason. */
bctx_http_t *bctx_http_new (void *zctx, const bctx_config_t *config, char *err, size_t errlen);

/* The HTTP status of a wire error code (200 for NULL). */
unsigned bctx_http_status (const char *code);

/* Stops the gateway (waits for its threads) and frees it. */
void bctx_http_destroy (bctx_http_t **self_p);

#endif
