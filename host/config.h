/*
 * config - reads and validates a host's JSON config.
 *
 * The config is checked whole before anything starts: an unknown key, a
 * wrong type or a missing required key is an error whose message names its
 * JSON path (e.g. "contexts[1].plugin: expected a string").
 *
 * Relative paths in it (host.data, host.plugin_dirs, contexts[].plugin)
 * resolve against the config file's folder (its realpath's dirname), not
 * the working directory: the config keeps them resolved.
 *
 * In three files: config.c reads and checks the file, config_paths.c
 * resolves its paths, config_context.c turns a config into a context
 * process's view (bctx_config_for_context).
 */
#ifndef BCTX_CONFIG_H
#define BCTX_CONFIG_H

#include <stddef.h>
#include <jansson.h>

#define BCTX_DEFAULT_API          "tcp://127.0.0.1:7700"
#define BCTX_DEFAULT_HTTP         "127.0.0.1:7780"
#define BCTX_DEFAULT_DATA         "data"
#define BCTX_DEFAULT_MAX_MESSAGE  (1024 * 1024)
#define BCTX_DEFAULT_MAX_REPLY    (8 * 1024 * 1024)
#define BCTX_REPLY_SLACK          (64 * 1024)  /* room in a reply beside one event
                                                  of host.max_message bytes */
#define BCTX_DEFAULT_BATCH        1024
#define BCTX_DEFAULT_MAX_EVENTS   1000
#define BCTX_DEFAULT_RELOAD_MS    5000
#define BCTX_DEFAULT_FORWARD_MS   5000
#define BCTX_DEFAULT_PLUGIN_BYTES (256u * 1024 * 1024)
#define BCTX_DEFAULT_HANDLER_MS   5000
#define BCTX_DEFAULT_STOP_MS      10000

typedef struct bctx_context_config {
    char *name;              /* the context's name, unique in the host */
    char *plugin;            /* path of the plugin .so, absolute (as written
                                when it was, else resolved against the
                                config file's folder) */
    char plugin_given[256];  /* contexts[].plugin as written when it was
                                relative (for messages), else "" */
    json_t *settings;        /* handed to the plugin's init; JSON null if absent */
    int watch;               /* reload when the plugin file changes */
    size_t max_rss_mb;       /* contexts[].max_rss_mb: restart its context process
                                when its resident memory grows past it (0: never) */
    size_t reactor_lanes;    /* contexts[].reactor_lanes: events of different
                                aggregates each of its reactors handles at once
                                (0 when not given: 1) */
    size_t index;            /* its place in the file's contexts[] */
} bctx_context_config_t;

/* Another host this one is bridged to. */
typedef struct bctx_peer_config {
    char *name;              /* peers[].name */
    char *api;               /* peers[].api: its API endpoint */
    char *publish;           /* peers[].publish: its bus endpoint */
    char *public_key;        /* peers[].public_key: its CURVE key (Z85), or NULL */
} bctx_peer_config_t;

/* A context that lives on a peer: commands are forwarded there, and its
 * events are bridged here when a local projection or reactor needs them. */
typedef struct bctx_remote_config {
    char *name;              /* the context's name */
    size_t peer;             /* index in peers[] */
    size_t index;            /* its place in the file's contexts[] */
    int sibling;             /* a context of this host served by another context
                                process: its log is read from host.data, and its
                                commands go through the supervisor (peer) */
} bctx_remote_config_t;

typedef struct bctx_config {
    char *path;              /* the file this was read from */
    char *folder;            /* its folder, resolved: what relative paths in
                                it are relative to */
    char *name;              /* host.name */
    char *api;               /* host.api: the ROUTER endpoint clients use */
    char *publish;           /* host.publish: tcp endpoint of the bus, or NULL */
    char *data;              /* host.data: directory of the SQLite files,
                                absolute as contexts[].plugin */
    size_t max_message;      /* host.max_message: largest request, in bytes */
    size_t max_reply;        /* host.max_reply: budget of an "events" or "query"
                                reply, in bytes (at least max_message + slack) */
    size_t max_batch;        /* host.max_batch: most commands per commit */
    size_t max_events_per_command; /* host.max_events_per_command: most events
                                 one command's decide may emit (1 to 100000);
                                 each event's data is also held to max_message */
    size_t reload_timeout_ms; /* host.reload_timeout_ms: longest wait for a
                                 context to reach a switch point */
    bctx_context_config_t *contexts; /* contexts[] that run here */
    size_t n_contexts;       /* how many */
    size_t contexts_cap;     /* entries allocated in contexts (zeroed past n_contexts) */
    bctx_remote_config_t *remotes; /* contexts[] that live on peers */
    size_t n_remotes;        /* how many */
    bctx_peer_config_t *peers; /* peers[] */
    size_t n_peers;          /* how many */
    size_t forward_timeout_ms; /* host.forward_timeout_ms: wait for a peer */
    int allow_remote;        /* host.allow_remote: bind beyond loopback */
    char *http;              /* host.http: HOST:PORT of the HTTP gateway, or NULL
                                when "http": false */
    int http_given;          /* host.http was in the file (a bind failure then
                                stops the start; on the default it is a warning) */
    char *http_admin_token;  /* host.http_admin_token: the Bearer token of admin
                                ops over HTTP, or NULL (refused) */
    char *curve_public;      /* host.curve.public: this host's CURVE key (Z85), or NULL */
    char *curve_secret;      /* host.curve.secret: its secret half */
    char **clients;          /* host.clients: client keys the API accepts (Z85) */
    unsigned *client_roles;  /* the role of each (BCTX_ROLE_CLIENT or _ADMIN) */
    size_t n_clients;        /* how many */
    char **plugin_dirs;      /* the folders plugins may load from, each resolved by
                                realpath: host.plugin_dirs, or when it is absent
                                the folders of contexts[].plugin */
    size_t n_plugin_dirs;    /* how many */
    int plugin_dirs_given;   /* host.plugin_dirs was in the file */
    size_t max_plugin_bytes; /* host.max_plugin_bytes: largest plugin file */
    size_t handler_timeout_ms; /* host.handler_timeout_ms: longest a plugin's
                                 decide, evolve, handler or init may run before
                                 its context process is killed and restarted */
    size_t stop_timeout_ms;  /* host.stop_timeout_ms: longest drain at SIGTERM
                                before what did not stop is killed */
    /* Not read from the file: set by the process that runs the config. */
    char *only;              /* the one context a context process serves, or NULL
                                in the supervisor */
    char *bus_in;            /* the supervisor's bus, where publishers connect */
    char *bus_out;           /* and where subscribers connect (ipc) */
    int standby;             /* a context process started for a handover: it takes
                                its context's writer only when told (take) */
    double load_deadline;    /* monotonic seconds by which its plugin's copy must
                                be made (a handover's reload_timeout_ms), or 0 */
    char *command_link;      /* a context process's worker's own link, for its
                                commands (the link's address with "cmd-" for
                                "ctx-"), or NULL */
} bctx_config_t;

/* Reads and validates the config at `path` (borrowed).  Return: new config,
 * or NULL with a message naming the file and the JSON path in `err` (at
 * most errlen bytes). */
bctx_config_t *bctx_config_load (const char *path, char *err, size_t errlen);

/* As bctx_config_load, from a JSON text; `path` only names it in messages. */
bctx_config_t *bctx_config_parse (const char *text, const char *path,
                                  char *err, size_t errlen);

/*
 * Turns a config into the view of the context process that serves context
 * `name` (borrowed): that context is its one local context (running the
 * plugin at `plugin` when not NULL, the version it serves since a reload);
 * every other local context becomes a sibling, reached through the
 * supervisor's admin endpoint `supervisor` (borrowed), as a pseudo-peer
 * named "supervisor"; the process binds no public API (host.api becomes
 * `link`, its link to the supervisor) and no bus (host.publish is
 * dropped; bus_in and bus_out are the supervisor's).  Return 0, or -1
 * when the config has no context `name`.
 */
int bctx_config_for_context (bctx_config_t *self, const char *name, const char *plugin,
                             const char *supervisor, const char *link,
                             const char *bus_in, const char *bus_out);

/* --- paths (config_paths.c) ------------------------------------------ */

/* The folder of the config file at path (borrowed): dirname of its
 * realpath, or for a file that does not exist the resolved folder it
 * names (else the working directory).  Return: new. */
char *bctx_config_folder (const char *path);

/* path (borrowed) made absolute against folder (borrowed, resolved): an
 * absolute path as it is, leading "./" and "../" folded into folder.
 * Return: new, or NULL when out of memory. */
char *bctx_config_resolve (const char *folder, const char *path);

/* " (relative to the config file's folder DIR)" into buf when path
 * (borrowed) is relative, else "".  Return buf or "". */
const char *bctx_config_relative_note (const bctx_config_t *self, const char *path,
                                       char *buf, size_t size);

/* Reads host.plugin_dirs (borrowed, may be NULL): folders that must
 * exist, kept resolved.  Return 0, or -1 with err (naming the file). */
int bctx_config_plugin_dirs (bctx_config_t *self, json_t *dirs, char *err, size_t errlen);

/* Without host.plugin_dirs: the folders of contexts[].plugin, each as
 * named (its folder resolved) and as its file resolves (a plugin that is
 * a symlink), so that what the config names loads.  A plugin whose folder
 * does not resolve adds nothing; loading it says why. */
void bctx_config_default_plugin_dirs (bctx_config_t *self);

/* Frees a config and sets *self_p to NULL.  Idempotent. */
void bctx_config_destroy (bctx_config_t **self_p);

#endif
