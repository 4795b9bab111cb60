/*
 * config - reads and validates a host's JSON config with jansson.  Every
 * error message starts with the file and the JSON path of the value at
 * fault.
 */
#include "config.h"
#include "lanes.h"
#include "endpoint.h"
#include "protocol.h"
#include "util.h"

#include <stdint.h>

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

static void
s_fail (char *err, size_t errlen, const char *file, const char *fmt, ...)
{
    int n = snprintf (err, errlen, "%s: ", file);
    if (n < 0 || (size_t) n >= errlen)
        return;
    va_list ap;
    va_start (ap, fmt);
    vsnprintf (err + n, errlen - (size_t) n, fmt, ap);
    va_end (ap);
}

/* Checks that every key of `obj` is in the NULL-terminated `allowed`; an
 * unknown one is named with the allowed key nearest to it, if one is near
 * (a typo: two edits at most, one for a key of three letters or less). */
static int
s_only_keys (json_t *obj, const char *const *allowed, const char *where,
             const char *file, char *err, size_t errlen)
{
    const char *key;
    json_t *value;
    json_object_foreach (obj, key, value) {
        int known = 0;
        for (const char *const *a = allowed; *a; a++)
            if (strcmp (*a, key) == 0)
                known = 1;
        if (!known) {
            const char *dot = *where ? "." : "";
            const char *near = bctx_nearest (key, allowed, strlen (key) <= 3 ? 1 : 2);
            if (near)
                s_fail (err, errlen, file, "%s%s%s: unknown key (did you mean %s%s%s?)",
                        where, dot, key, where, dot, near);
            else
                s_fail (err, errlen, file, "%s%s%s: unknown key", where, dot, key);
            return -1;
        }
    }
    return 0;
}

/* Reads an optional string member into *out (new copy); keeps *out when the
 * key is absent. */
static int
s_string (json_t *obj, const char *key, const char *where, char **out,
          const char *file, char *err, size_t errlen)
{
    json_t *v = json_object_get (obj, key);
    if (!v)
        return 0;
    if (!json_is_string (v) || json_string_length (v) == 0) {
        s_fail (err, errlen, file, "%s.%s: expected a non-empty string",
                where, key);
        return -1;
    }
    free (*out);
    *out = strdup (json_string_value (v));
    return 0;
}

static int
s_size (json_t *obj, const char *key, const char *where, size_t *out,
        size_t min, size_t max, const char *file, char *err, size_t errlen)
{
    json_t *v = json_object_get (obj, key);
    if (!v)
        return 0;
    if (!json_is_integer (v) || json_integer_value (v) < (json_int_t) min
        || (size_t) json_integer_value (v) > max) {
        s_fail (err, errlen, file, "%s.%s: expected an integer from %zu to %zu",
                where, key, min, max);
        return -1;
    }
    *out = (size_t) json_integer_value (v);
    return 0;
}

/* Is text a CURVE key in Z85 (40 characters that decode to 32 bytes)? */
static int
s_z85_key (const char *text)
{
    uint8_t key[32];
    return text && strlen (text) == 40 && zmq_z85_decode (key, text) != NULL;
}

/* host.clients (borrowed): the client keys, each with its role.  file
 * starts messages.  Return 0, or -1 with err. */
static int
s_read_clients (bctx_config_t *self, json_t *clients, const char *file, char *err,
                size_t errlen)
{
    if (!json_is_array (clients)) {
        s_fail (err, errlen, file, "host.clients: expected an array of public keys");
        return -1;
    }
    self->clients = calloc (json_array_size (clients) + 1, sizeof *self->clients);
    self->client_roles = calloc (json_array_size (clients) + 1, sizeof *self->client_roles);
    size_t i;
    json_t *k;
    json_array_foreach (clients, i, k) {
        /* A key alone is a client; {"key": K, "role": R} names the role. */
        static const char *const kkeys[] = { "key", "role", NULL };
        char where[48];
        snprintf (where, sizeof where, "host.clients[%zu]", i);
        json_t *key = json_is_object (k) ? json_object_get (k, "key") : k;
        const char *role = json_is_object (k)
                           ? json_string_value (json_object_get (k, "role")) : "client";
        unsigned r = bctx_role_parse (role);
        if (json_is_object (k) && s_only_keys (k, kkeys, where, file, err, errlen) < 0)
            return -1;
        if (!s_z85_key (json_string_value (key))) {
            s_fail (err, errlen, file, "%s: expected a 40-character Z85 key, or "
                    "{\"key\": KEY, \"role\": \"client\" or \"admin\"}", where);
            return -1;
        }
        if (r != BCTX_ROLE_CLIENT && r != BCTX_ROLE_ADMIN) {
            s_fail (err, errlen, file, "%s.role: expected \"client\" or \"admin\"", where);
            return -1;
        }
        self->client_roles[self->n_clients] = r;
        self->clients[self->n_clients++] = strdup (json_string_value (key));
    }
    return 0;
}

/* host.http ("HOST:PORT" or false) and host.http_admin_token. */
static int
s_read_http (bctx_config_t *self, json_t *host, char *err, size_t errlen)
{
    json_t *http = json_object_get (host, "http");
    if (json_is_false (http)) {
        free (self->http);
        self->http = NULL;
    }
    else if (http) {
        free (self->http);
        self->http = NULL;
        if (s_string (host, "http", "host", &self->http, self->path, err, errlen) < 0)
            return -1;
        self->http_given = 1;
    }
    return s_string (host, "http_admin_token", "host", &self->http_admin_token,
                     self->path, err, errlen);
}

static int
s_read_host (bctx_config_t *self, json_t *host, char *err, size_t errlen)
{
    static const char *const keys[] = {
        "name", "api", "publish", "data", "max_message", "max_reply", "max_batch",
        "max_events_per_command", "reload_timeout_ms", "forward_timeout_ms", "allow_remote",
        "curve", "clients", "plugin_dirs", "max_plugin_bytes", "handler_timeout_ms",
        "stop_timeout_ms", "http", "http_admin_token", NULL
    };
    const char *file = self->path;
    if (!json_is_object (host)) {
        s_fail (err, errlen, file, "host: expected an object");
        return -1;
    }
    if (s_only_keys (host, keys, "host", file, err, errlen) < 0
        || s_string (host, "name", "host", &self->name, file, err, errlen) < 0
        || s_string (host, "api", "host", &self->api, file, err, errlen) < 0
        || s_string (host, "publish", "host", &self->publish, file, err, errlen) < 0
        || s_string (host, "data", "host", &self->data, file, err, errlen) < 0
        || s_size (host, "max_message", "host", &self->max_message, 64,
                   256u * 1024 * 1024, file, err, errlen) < 0
        || s_size (host, "max_reply", "host", &self->max_reply, 64 + BCTX_REPLY_SLACK,
                   1024u * 1024 * 1024, file, err, errlen) < 0
        || s_size (host, "max_batch", "host", &self->max_batch, 1, 65536,
                   file, err, errlen) < 0
        || s_size (host, "max_events_per_command", "host", &self->max_events_per_command,
                   1, 100000, file, err, errlen) < 0
        || s_size (host, "reload_timeout_ms", "host", &self->reload_timeout_ms, 10,
                   600000, file, err, errlen) < 0
        || s_size (host, "forward_timeout_ms", "host", &self->forward_timeout_ms, 10,
                   600000, file, err, errlen) < 0
        || s_size (host, "max_plugin_bytes", "host", &self->max_plugin_bytes, 4096,
                   (size_t) 1 << 40, file, err, errlen) < 0
        || s_size (host, "handler_timeout_ms", "host", &self->handler_timeout_ms, 100,
                   3600000, file, err, errlen) < 0
        || s_size (host, "stop_timeout_ms", "host", &self->stop_timeout_ms, 100,
                   3600000, file, err, errlen) < 0
        || bctx_config_plugin_dirs (self, json_object_get (host, "plugin_dirs"), err, errlen) < 0)
        return -1;
    /* A reply holds at least one event, and an event may be as big as a
     * request: the budget must leave room for one.  Unset, it grows with
     * max_message. */
    if (self->max_reply < self->max_message + BCTX_REPLY_SLACK) {
        if (json_object_get (host, "max_reply")) {
            s_fail (err, errlen, file, "host.max_reply: %zu bytes is too small for "
                    "host.max_message of %zu: make it at least %zu (max_message + %d for "
                    "the reply around one event)", self->max_reply, self->max_message,
                    self->max_message + BCTX_REPLY_SLACK, BCTX_REPLY_SLACK);
            return -1;
        }
        self->max_reply = self->max_message + BCTX_REPLY_SLACK;
    }
    json_t *remote = json_object_get (host, "allow_remote");
    if (remote && !json_is_boolean (remote)) {
        s_fail (err, errlen, file, "host.allow_remote: expected true or false");
        return -1;
    }
    self->allow_remote = json_is_true (remote);
    if (s_read_http (self, host, err, errlen) < 0)
        return -1;
    json_t *curve = json_object_get (host, "curve");
    if (curve) {
        static const char *const ckeys[] = { "public", "secret", NULL };
        if (!json_is_object (curve)) {
            s_fail (err, errlen, file, "host.curve: expected {\"public\": …, \"secret\": …}");
            return -1;
        }
        if (s_only_keys (curve, ckeys, "host.curve", file, err, errlen) < 0
            || s_string (curve, "public", "host.curve", &self->curve_public, file, err, errlen) < 0
            || s_string (curve, "secret", "host.curve", &self->curve_secret, file, err, errlen) < 0)
            return -1;
        if (!s_z85_key (self->curve_public) || !s_z85_key (self->curve_secret)) {
            s_fail (err, errlen, file, "host.curve: public and secret must be 40-character Z85 "
                    "keys (make them with `bctx keygen`)");
            return -1;
        }
    }
    json_t *clients = json_object_get (host, "clients");
    if (clients && s_read_clients (self, clients, file, err, errlen) < 0)
        return -1;
    return 0;
}

/* The contexts[] index of a context already named so, local or remote,
 * or -1. */
static long
s_context_named (bctx_config_t *self, const char *name)
{
    for (size_t j = 0; j < self->n_contexts; j++)
        if (strcmp (self->contexts[j].name, name) == 0)
            return (long) self->contexts[j].index;
    for (size_t j = 0; j < self->n_remotes; j++)
        if (strcmp (self->remotes[j].name, name) == 0)
            return (long) self->remotes[j].index;
    return -1;
}

/* contexts[i] with a "peer": the context lives on that peer. */
static int
s_read_remote (bctx_config_t *self, size_t i, json_t *c, char *err, size_t errlen)
{
    static const char *const keys[] = { "name", "peer", NULL };
    const char *file = self->path;
    char where[32];
    snprintf (where, sizeof where, "contexts[%zu]", i);
    if (s_only_keys (c, keys, where, file, err, errlen) < 0)
        return -1;
    const char *name = json_string_value (json_object_get (c, "name"));
    const char *peer = json_string_value (json_object_get (c, "peer"));
    if (!name || !bctx_name_valid (name)) {
        s_fail (err, errlen, file, "%s.name: expected a name (1-64 of A-Z a-z 0-9 _ -)", where);
        return -1;
    }
    long twin = s_context_named (self, name);
    if (twin >= 0) {
        s_fail (err, errlen, file, "%s.name: duplicate context name \"%s\" (also "
                "contexts[%ld])", where, name, twin);
        return -1;
    }
    size_t k = 0;
    while (peer && k < self->n_peers && strcmp (self->peers[k].name, peer) != 0)
        k++;
    if (!peer || k == self->n_peers) {
        s_fail (err, errlen, file, "%s.peer: expected the name of one of peers[]", where);
        return -1;
    }
    self->remotes[self->n_remotes++] = (bctx_remote_config_t) { strdup (name), k, i, 0 };
    return 0;
}

/* Names entry i of the array `list` in where ("peers[1]") and checks that
 * it is an object.  Return 0, or -1 with err. */
static int
s_entry (char *where, size_t size, const char *list, size_t i, const json_t *entry,
         const char *file, char *err, size_t errlen)
{
    snprintf (where, size, "%s[%zu]", list, i);
    if (!json_is_object (entry)) {
        s_fail (err, errlen, file, "%s: expected an object", where);
        return -1;
    }
    return 0;
}

static int
s_read_peer (bctx_config_t *self, size_t i, json_t *p, char *err, size_t errlen)
{
    static const char *const keys[] = { "name", "api", "publish", "public_key", NULL };
    const char *file = self->path;
    char where[32];
    if (s_entry (where, sizeof where, "peers", i, p, file, err, errlen) < 0)
        return -1;
    bctx_peer_config_t *pc = &self->peers[i];
    if (s_only_keys (p, keys, where, file, err, errlen) < 0
        || s_string (p, "name", where, &pc->name, file, err, errlen) < 0
        || s_string (p, "api", where, &pc->api, file, err, errlen) < 0
        || s_string (p, "publish", where, &pc->publish, file, err, errlen) < 0
        || s_string (p, "public_key", where, &pc->public_key, file, err, errlen) < 0)
        return -1;
    if (pc->public_key && !s_z85_key (pc->public_key)) {
        s_fail (err, errlen, file, "%s.public_key: expected a 40-character Z85 key", where);
        return -1;
    }
    if (!pc->name || !bctx_name_valid (pc->name) || !pc->api || !pc->publish) {
        s_fail (err, errlen, file, "%s: needs a name, an api and a publish endpoint", where);
        return -1;
    }
    for (size_t j = 0; j < i; j++)
        if (strcmp (self->peers[j].name, pc->name) == 0) {
            s_fail (err, errlen, file, "%s.name: duplicate peer name \"%s\"", where, pc->name);
            return -1;
        }
    return 0;
}

static int
s_read_context (bctx_config_t *self, size_t i, json_t *c, char *err,
                size_t errlen)
{
    static const char *const keys[] = { "name", "plugin", "settings", "watch", "max_rss_mb",
                                        "reactor_lanes", NULL };
    const char *file = self->path;
    char where[32];
    if (s_entry (where, sizeof where, "contexts", i, c, file, err, errlen) < 0)
        return -1;
    if (json_object_get (c, "peer"))
        return s_read_remote (self, i, c, err, errlen);
    bctx_context_config_t *cc = &self->contexts[self->n_contexts];
    if (s_only_keys (c, keys, where, file, err, errlen) < 0
        || s_string (c, "name", where, &cc->name, file, err, errlen) < 0
        || s_string (c, "plugin", where, &cc->plugin, file, err, errlen) < 0
        || s_size (c, "max_rss_mb", where, &cc->max_rss_mb, 16, 1024 * 1024,
                   file, err, errlen) < 0
        || s_size (c, "reactor_lanes", where, &cc->reactor_lanes, 1, BCTX_LANES_MAX,
                   file, err, errlen) < 0)
        return -1;
    if (!cc->name) {
        s_fail (err, errlen, file, "%s.name: missing", where);
        return -1;
    }
    if (!bctx_name_valid (cc->name)) {
        s_fail (err, errlen, file,
                "%s.name: \"%s\" is not a name (1-64 of A-Z a-z 0-9 _ -)",
                where, cc->name);
        return -1;
    }
    if (!cc->plugin) {
        s_fail (err, errlen, file, "%s.plugin: missing", where);
        return -1;
    }
    if (cc->plugin[0] != '/')
        snprintf (cc->plugin_given, sizeof cc->plugin_given, "%s", cc->plugin);
    char *plugin = bctx_config_resolve (self->folder, cc->plugin);
    free (cc->plugin);
    cc->plugin = plugin;
    long twin = s_context_named (self, cc->name);
    if (twin >= 0) {
        s_fail (err, errlen, file, "%s.name: duplicate context name \"%s\" (also "
                "contexts[%ld])", where, cc->name, twin);
        free (cc->name);
        free (cc->plugin);
        cc->name = cc->plugin = NULL;
        return -1;
    }
    json_t *watch = json_object_get (c, "watch");
    if (watch && !json_is_boolean (watch)) {
        s_fail (err, errlen, file, "%s.watch: expected true or false", where);
        return -1;
    }
    cc->watch = json_is_true (watch);
    json_t *settings = json_object_get (c, "settings");
    cc->settings = settings ? json_incref (settings) : json_null ();
    cc->index = i;
    self->n_contexts++;
    return 0;
}

bctx_config_t *
bctx_config_parse (const char *text, const char *path, char *err,
                   size_t errlen)
{
    static const char *const keys[] = { "host", "contexts", "peers", NULL };
    json_error_t jerr;
    json_t *root = json_loads (text, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        s_fail (err, errlen, path, "line %d, column %d: %s", jerr.line,
                jerr.column, jerr.text);
        return NULL;
    }
    bctx_config_t *self = calloc (1, sizeof *self);
    self->path = strdup (path);
    self->folder = bctx_config_folder (path);
    self->name = strdup ("bctx");
    self->api = strdup (BCTX_DEFAULT_API);
    self->http = strdup (BCTX_DEFAULT_HTTP);
    self->data = strdup (BCTX_DEFAULT_DATA);
    self->max_message = BCTX_DEFAULT_MAX_MESSAGE;
    self->max_reply = BCTX_DEFAULT_MAX_REPLY;
    self->max_batch = BCTX_DEFAULT_BATCH;
    self->max_events_per_command = BCTX_DEFAULT_MAX_EVENTS;
    self->reload_timeout_ms = BCTX_DEFAULT_RELOAD_MS;
    self->forward_timeout_ms = BCTX_DEFAULT_FORWARD_MS;
    self->max_plugin_bytes = BCTX_DEFAULT_PLUGIN_BYTES;
    self->handler_timeout_ms = BCTX_DEFAULT_HANDLER_MS;
    self->stop_timeout_ms = BCTX_DEFAULT_STOP_MS;

    if (!json_is_object (root)) {
        s_fail (err, errlen, path, "(root): expected an object");
        goto fail;
    }
    if (s_only_keys (root, keys, "", path, err, errlen) < 0)
        goto fail;
    json_t *host = json_object_get (root, "host");
    if (host && s_read_host (self, host, err, errlen) < 0)
        goto fail;
    char *data = bctx_config_resolve (self->folder, self->data);
    free (self->data);
    self->data = data;
    json_t *contexts = json_object_get (root, "contexts");
    if (!contexts) {
        s_fail (err, errlen, path, "contexts: missing");
        goto fail;
    }
    if (!json_is_array (contexts)) {
        s_fail (err, errlen, path, "contexts: expected an array");
        goto fail;
    }
    json_t *peers = json_object_get (root, "peers");
    if (peers && !json_is_array (peers)) {
        s_fail (err, errlen, path, "peers: expected an array");
        goto fail;
    }
    self->n_peers = json_array_size (peers);
    self->peers = calloc (self->n_peers ? self->n_peers : 1, sizeof *self->peers);
    for (size_t i = 0; i < self->n_peers; i++)
        if (s_read_peer (self, i, json_array_get (peers, i), err, errlen) < 0)
            goto fail;
    size_t n = json_array_size (contexts);
    self->contexts = calloc (n ? n : 1, sizeof *self->contexts);
    self->contexts_cap = n ? n : 1;
    self->remotes = calloc (n ? n : 1, sizeof *self->remotes);
    for (size_t i = 0; i < n; i++)
        if (s_read_context (self, i, json_array_get (contexts, i), err,
                            errlen) < 0)
            goto fail;
    if (!self->plugin_dirs_given)
        bctx_config_default_plugin_dirs (self);
    if (self->n_clients && !self->curve_public) {
        s_fail (err, errlen, path, "host.clients: client keys need host.curve, this host's "
                "own keys");
        goto fail;
    }
    for (size_t i = 0; i < self->n_peers; i++)
        if (strcmp (self->peers[i].api, self->api) == 0) {
            s_fail (err, errlen, path, "peers[%zu].api: %s is this host's own API",
                    i, self->peers[i].api);
            goto fail;
        }
    for (size_t i = 0; i < self->n_peers; i++)
        if (self->peers[i].public_key && !self->curve_public) {
            s_fail (err, errlen, path, "peers[%zu].public_key: a peer with a key needs "
                    "host.curve, this host's own keys", i);
            goto fail;
        }
    /* Without keys, nothing listens beyond this machine unless asked to. */
    if (!self->allow_remote && !self->curve_public) {
        const char *eps[2] = { self->api, self->publish };
        const char *names[2] = { "host.api", "host.publish" };
        for (int k = 0; k < 2; k++)
            if (eps[k] && !bctx_endpoint_is_loopback (eps[k])) {
                s_fail (err, errlen, path, "%s: %s is not a loopback address; without "
                        "host.curve keys nothing authenticates clients, so set "
                        "host.allow_remote to true to bind it anyway", names[k], eps[k]);
                goto fail;
            }
        char http[300];
        snprintf (http, sizeof http, "tcp://%.280s", self->http ? self->http : "");
        if (self->http && !bctx_endpoint_is_loopback (http)) {
            s_fail (err, errlen, path, "host.http: %s is not a loopback address; set "
                    "host.allow_remote to true to serve HTTP beyond this machine",
                    self->http);
            goto fail;
        }
    }
    json_decref (root);
    return self;
fail:
    json_decref (root);
    bctx_config_destroy (&self);
    return NULL;
}

bctx_config_t *
bctx_config_load (const char *path, char *err, size_t errlen)
{
    FILE *f = fopen (path, "rb");
    if (!f) {
        s_fail (err, errlen, path, "cannot open: %m");
        return NULL;
    }
    char *text = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (cap - len < 4096) {
            cap = cap ? cap * 2 : 8192;
            char *bigger = realloc (text, cap);
            if (!bigger) {
                free (text);
                fclose (f);
                s_fail (err, errlen, path, "out of memory reading it");
                return NULL;
            }
            text = bigger;
        }
        size_t n = fread (text + len, 1, cap - len - 1, f);
        len += n;
        if (n == 0)
            break;
    }
    int bad = ferror (f);
    fclose (f);
    if (bad) {
        free (text);
        s_fail (err, errlen, path, "cannot read");
        return NULL;
    }
    text[len] = '\0';
    bctx_config_t *self = bctx_config_parse (text, path, err, errlen);
    free (text);
    return self;
}

void
bctx_config_destroy (bctx_config_t **self_p)
{
    BCTX_SELF_OR_RETURN (bctx_config_t, self_p);
    /* Past n_contexts too: an entry read halfway before an error. */
    for (size_t i = 0; i < self->contexts_cap; i++) {
        free (self->contexts[i].name);
        free (self->contexts[i].plugin);
        json_decref (self->contexts[i].settings);
    }
    free (self->contexts);
    for (size_t i = 0; i < self->n_remotes; i++)
        free (self->remotes[i].name);
    free (self->remotes);
    for (size_t i = 0; i < self->n_peers; i++) {
        free (self->peers[i].name);
        free (self->peers[i].api);
        free (self->peers[i].publish);
        free (self->peers[i].public_key);
    }
    bctx_strings_free (self->clients, self->n_clients);
    free (self->client_roles);
    bctx_strings_free (self->plugin_dirs, self->n_plugin_dirs);
    free (self->curve_public);
    free (self->curve_secret);
    free (self->peers);
    free (self->path);
    free (self->folder);
    free (self->name);
    free (self->api);
    free (self->http);
    free (self->http_admin_token);
    free (self->publish);
    free (self->data);
    free (self->only);
    free (self->bus_in);
    free (self->bus_out);
    free (self->command_link);
    free (self);
    *self_p = NULL;
}
