/*
 * core - what the supervisor (server.c) and a context process
 * (context_main.c) both stand on: the ZeroMQ context, the registry, the
 * api with its op table, commands and security, built first; and the
 * peers, ops and loop each builds on them.  Both take it down last, in
 * the one order ZeroMQ needs: sockets closed, the context shut down, the
 * bus's proxies ended, the context terminated, and then the registry.
 */
#ifndef BCTX_CORE_H
#define BCTX_CORE_H

#include <stddef.h>

#include "api.h"
#include "bus.h"
#include "commands.h"
#include "config.h"
#include "loop.h"
#include "ops.h"
#include "peers.h"
#include "registry.h"
#include "security.h"

typedef struct bctx_core {
    void *zctx;                   /* the ZeroMQ context */
    bctx_registry_t *registry;    /* the config and what runs */
    bctx_api_t *api;              /* the ROUTERs (or the link) and the op table */
    bctx_commands_t *commands;    /* send admission, routing and replies */
    bctx_security_t *security;    /* CURVE keys and the ZAP handler */
    bctx_peers_t *peers;          /* forwarding to peer hosts (the owner builds it) */
    bctx_ops_t *ops;              /* events, query... (the owner builds it) */
    bctx_loop_t *loop;            /* readers and timers of the owner's thread */
} bctx_core_t;

/* Builds core's first modules for config, which the registry owns from
 * here on, even when this fails.  Return 0, or -1 with the reason. */
int bctx_core_open (bctx_core_t *core, bctx_config_t *config, char *err, size_t errlen);

/* Checks that every op has a handler.  Return 0, or -1 naming the op. */
int bctx_core_check_ops (const bctx_core_t *core, char *err, size_t errlen);

/* Takes core down (what the owner built on it gone already), with the
 * owner's bus, if any (*bus, may be NULL), at its place in the order. */
void bctx_core_close (bctx_core_t *core, bctx_bus_t **bus);

#endif
