/*
 * bctx/testing.h - given-when-then tests of a plugin, in process, no host.
 *
 * Header-only.  It drives a plugin through the same bctx/plugin.h contract
 * the host uses: init with settings and a bctx_host_t table, decide with the
 * aggregate's state folded by evolve, the decided events checked the way
 * the host checks them ({"type": string, "data": object}) and folded into
 * the state, projections fed bctx_event_t with in-memory read models, and
 * reactors whose host->send is recorded and answered by the test.
 *
 *   bctx_testing_t *t = bctx_testing_new (bctx_context (), NULL);
 *   bctx_testing_given (t, "a1", "AccountOpened", "{\"account\":\"a1\",\"owner\":\"Ann\"}");
 *   bctx_testing_when (t, "Deposit", "{\"account\":\"a1\",\"amount\":5}");
 *   bctx_assert_events (t, "[{\"type\":\"Deposited\",\"data\":{...}}]");
 *   bctx_testing_destroy (&t);
 *
 * The bctx_assert_* macros call cmocka's fail_msg (include <cmocka.h>
 * first); without cmocka, call the bctx_testing_then_* functions, which
 * return 0 or -1 with the reason in bctx_testing_error().
 *
 * What it does not do: store anything, run more than one context, check
 * sizes against host limits, or give commands ids (no deduplication).
 */
#ifndef BCTX_TESTING_H
#define BCTX_TESTING_H

#include <bctx/plugin.h>
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The harness: one context, its aggregates' streams, one projection's
 * read models and one reactor's sent commands. */
typedef struct bctx_testing {
    const bctx_context_t *desc;   /* the plugin's descriptor; borrowed */
    bctx_host_t host;             /* the services table given to the plugin */
    void *user;                   /* what the plugin's init stored */
    int inited;                   /* init ran and returned BCTX_OK */
    json_t *states;               /* aggregate id -> folded state (owned) */
    json_t *versions;             /* aggregate id -> number of events (owned) */
    int64_t position;             /* events given or decided so far */
    json_t *events;               /* what the last when decided (owned) */
    int rc;                       /* what the last when returned */
    bctx_reason_t why;            /* the last when's reason */
    json_t *models;               /* projection name -> {key -> model} (owned) */
    const char *projection;       /* the projection being fed; borrowed */
    json_t *sent;                 /* [{context, command, data}] of react (owned) */
    json_t *replies;              /* queued [rc, reason] answers to send (owned) */
    void *dl;                     /* the dlopen handle of bctx_testing_open, or NULL */
    char error[512];              /* why the last then failed */
} bctx_testing_t;

/* Sets self->error, printf-style (the arguments may point into it). */
static inline void bctx_testing_fail_ (bctx_testing_t *self, const char *fmt, ...)
    __attribute__ ((format (printf, 2, 3)));
static inline void
bctx_testing_fail_ (bctx_testing_t *self, const char *fmt, ...)
{
    char text[sizeof self->error];
    va_list ap;
    va_start (ap, fmt);
    vsnprintf (text, sizeof text, fmt, ap);
    va_end (ap);
    memcpy (self->error, text, sizeof text);
}

/* host->log: to stderr, prefixed like the host's log. */
static inline void bctx_testing_log_ (const bctx_host_t *host, int level,
                                      const char *fmt, ...)
    __attribute__ ((format (printf, 3, 4)));
static inline void
bctx_testing_log_ (const bctx_host_t *host, int level, const char *fmt, ...)
{
    const bctx_testing_t *self = (const bctx_testing_t *) host->priv;
    va_list ap;
    va_start (ap, fmt);
    fprintf (stderr, "[testing %d] context %s: ", level, self->desc->name);
    vfprintf (stderr, fmt, ap);
    fputc ('\n', stderr);
    va_end (ap);
}

static inline const char *
bctx_testing_context_name_ (const bctx_host_t *host)
{
    return ((const bctx_testing_t *) host->priv)->desc->name;
}

/* The read models of the projection being fed. */
static inline json_t *
bctx_testing_models_ (bctx_models_t *models)
{
    bctx_testing_t *self = (bctx_testing_t *) models;
    if (!self->projection)
        return NULL;
    json_t *m = json_object_get (self->models, self->projection);
    if (!m) {
        m = json_object ();
        json_object_set_new (self->models, self->projection, m);
    }
    return m;
}

static inline json_t *
bctx_testing_model_get_ (bctx_models_t *models, const char *key)
{
    json_t *m = bctx_testing_models_ (models);
    json_t *v = m ? json_object_get (m, key) : NULL;
    return v ? json_deep_copy (v) : NULL;
}

static inline int
bctx_testing_model_put_ (bctx_models_t *models, const char *key, json_t *value)
{
    json_t *m = bctx_testing_models_ (models);
    if (!m || !value) {
        json_decref (value);
        return -1;
    }
    return json_object_set_new (m, key, value);
}

static inline int
bctx_testing_model_delete_ (bctx_models_t *models, const char *key)
{
    json_t *m = bctx_testing_models_ (models);
    if (!m)
        return -1;
    json_object_del (m, key);
    return 0;
}

/* host->send: records the command, answers with the next queued reply
 * (BCTX_OK when none is queued). */
static inline int
bctx_testing_send_ (bctx_reaction_t *reaction, const char *context,
                    const char *command, json_t *data, bctx_reason_t *why)
{
    bctx_testing_t *self = (bctx_testing_t *) reaction;
    json_array_append_new (self->sent, json_pack ("{s:s, s:s, s:o}", "context", context,
                                                  "command", command,
                                                  "data", data ? data : json_object ()));
    json_t *reply = json_array_get (self->replies, 0);
    if (!reply)
        return BCTX_OK;
    int rc = (int) json_integer_value (json_array_get (reply, 0));
    snprintf (why->text, sizeof why->text, "%s",
              json_string_value (json_array_get (reply, 1)));
    json_array_remove (self->replies, 0);
    return rc;
}

/* Parses text as JSON (NULL text: NULL).  Return: new, or NULL with the
 * reason in self->error. */
static inline json_t *
bctx_testing_parse_ (bctx_testing_t *self, const char *text)
{
    if (!text)
        return NULL;
    json_error_t jerr;
    json_t *j = json_loads (text, JSON_DECODE_ANY, &jerr);
    if (!j)
        bctx_testing_fail_ (self, "bad JSON %s: %s (line %d, column %d)",
                  text, jerr.text, jerr.line, jerr.column);
    return j;
}

/* An event's data: JSON text, NULL for {}.  Return: new, or NULL with
 * the reason. */
static inline json_t *
bctx_testing_data_ (bctx_testing_t *self, const char *data)
{
    return data ? bctx_testing_parse_ (self, data) : json_object ();
}

/* Runs the plugin's init with settings (JSON text, or NULL for null).
 * Return: new harness, or NULL (the reason on stderr) when init fails. */
static inline bctx_testing_t *
bctx_testing_new (const bctx_context_t *desc, const char *settings)
{
    static const bctx_magic_t want = BCTX_MAGIC;
    if (!desc || memcmp (&desc->magic, &want, sizeof want) != 0 || !desc->evolve) {
        fprintf (stderr, "bctx_testing_new: no descriptor, wrong magic, or no evolve\n");
        return NULL;
    }
    bctx_testing_t *self = (bctx_testing_t *) calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->desc = desc;
    self->host = (bctx_host_t) {
        .size = sizeof self->host, .priv = self,
        .log = bctx_testing_log_, .context_name = bctx_testing_context_name_,
        .model_get = bctx_testing_model_get_, .model_put = bctx_testing_model_put_,
        .model_delete = bctx_testing_model_delete_, .send = bctx_testing_send_,
    };
    self->states = json_object ();
    self->versions = json_object ();
    self->events = json_array ();
    self->models = json_object ();
    self->sent = json_array ();
    self->replies = json_array ();
    json_t *s = settings ? bctx_testing_parse_ (self, settings) : json_null ();
    int rc = s && desc->init ? desc->init (&self->host, s, &self->user) : (s ? BCTX_OK : -1);
    json_decref (s);
    self->inited = rc == BCTX_OK;
    if (!self->inited) {
        fprintf (stderr, "bctx_testing_new: %s\n",
                 s ? "the plugin's init failed" : self->error);
        json_decref (self->states);
        json_decref (self->versions);
        json_decref (self->events);
        json_decref (self->models);
        json_decref (self->sent);
        json_decref (self->replies);
        free (self);
        return NULL;
    }
    return self;
}

/* Runs the plugin's fini and frees the harness; *self_p becomes NULL. */
static inline void
bctx_testing_destroy (bctx_testing_t **self_p)
{
    bctx_testing_t *self = self_p ? *self_p : NULL;
    if (!self)
        return;
    if (self->inited && self->desc->fini)
        self->desc->fini (self->user);
    json_decref (self->states);
    json_decref (self->versions);
    json_decref (self->events);
    json_decref (self->models);
    json_decref (self->sent);
    json_decref (self->replies);
    if (self->dl)
        dlclose (self->dl);
    free (self);
    *self_p = NULL;
}

/* Loads the plugin at path (dlopen, then its bctx_context) and runs
 * bctx_testing_new on it.  Return: new harness, or NULL (the reason on
 * stderr). */
static inline bctx_testing_t *
bctx_testing_open (const char *path, const char *settings)
{
    void *dl = dlopen (path, RTLD_NOW | RTLD_LOCAL);
    if (!dl) {
        fprintf (stderr, "bctx_testing_open: %s\n", dlerror ());
        return NULL;
    }
    bctx_entry_fn entry;
    *(void **) &entry = dlsym (dl, BCTX_ENTRY_SYMBOL);
    bctx_testing_t *self = entry ? bctx_testing_new (entry (), settings) : NULL;
    if (!entry)
        fprintf (stderr, "bctx_testing_open: %s exports no %s\n", path, BCTX_ENTRY_SYMBOL);
    if (!self) {
        dlclose (dl);
        return NULL;
    }
    self->dl = dl;
    return self;
}

/* Why the last given, when or then failed.  Return: borrowed. */
static inline const char *
bctx_testing_error (const bctx_testing_t *self)
{
    return self->error;
}

/* Folds one event (data: borrowed) into aggregate's state with evolve.
 * Return 0, or -1 when evolve returned NULL. */
static inline int
bctx_testing_fold_ (bctx_testing_t *self, const char *aggregate, const char *type,
                    const json_t *data)
{
    json_t *state = json_object_get (self->states, aggregate);
    json_t *next = self->desc->evolve (self->user, state ? json_incref (state) : NULL,
                                       type, data);
    if (!next) {
        json_object_del (self->states, aggregate);
        snprintf (self->error, sizeof self->error,
                  "evolve returned NULL for %s on aggregate %s", type, aggregate);
        return -1;
    }
    json_object_set_new (self->states, aggregate, next);
    json_int_t v = json_integer_value (json_object_get (self->versions, aggregate));
    json_object_set_new (self->versions, aggregate, json_integer (v + 1));
    self->position++;
    return 0;
}

/* Given: an event of aggregate in the log (data: JSON text, NULL for {}).
 * Return 0, or -1 (bad JSON, or evolve failed) with bctx_testing_error. */
static inline int
bctx_testing_given (bctx_testing_t *self, const char *aggregate, const char *type,
                    const char *data)
{
    json_t *d = bctx_testing_data_ (self, data);
    if (!d)
        return -1;
    int rc = bctx_testing_fold_ (self, aggregate, type, d);
    json_decref (d);
    return rc;
}

/* When: command with data (JSON text), decided on the state of the
 * aggregate named by the command's aggregate_field; accepted events are
 * checked and folded.  Return what decide returned (BCTX_OK, BCTX_REJECT,
 * BCTX_INVALID, BCTX_ERROR), or BCTX_ERROR for a harness-side problem
 * (unknown command, missing aggregate id, bad event) with the reason in
 * bctx_testing_error. */
static inline int
bctx_testing_when (bctx_testing_t *self, const char *command, const char *data)
{
    json_array_clear (self->events);
    memset (&self->why, 0, sizeof self->why);
    self->error[0] = '\0';
    self->rc = BCTX_ERROR;
    const bctx_command_t *cmd = self->desc->commands;
    while (cmd && cmd->name && strcmp (cmd->name, command) != 0)
        cmd++;
    if (!cmd || !cmd->name) {
        bctx_testing_fail_ (self, "unknown command %s", command);
        return self->rc;
    }
    json_t *d = bctx_testing_parse_ (self, data ? data : "{}");
    if (!d)
        return self->rc;
    const char *aggregate = json_string_value (json_object_get (d, cmd->aggregate_field));
    if (!json_is_object (d) || !aggregate) {
        /* The host answers bad_request before decide runs. */
        bctx_testing_fail_ (self, "data.%s: the aggregate id is missing "
                  "or not a string (the host refuses this before decide)",
                  cmd->aggregate_field);
        self->rc = BCTX_INVALID;
        json_decref (d);
        return self->rc;
    }
    const json_t *state = json_object_get (self->states, aggregate);
    self->rc = cmd->decide (self->user, state, d, self->events, &self->why);
    for (size_t i = 0; self->rc == BCTX_OK && i < json_array_size (self->events); i++) {
        json_t *ev = json_array_get (self->events, i);
        const char *type = json_string_value (json_object_get (ev, "type"));
        json_t *evd = json_object_get (ev, "data");
        size_t len = type ? strlen (type) : 0;
        if (len == 0 || len > 128 || strspn (type, "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                "abcdefghijklmnopqrstuvwxyz0123456789_") != len || !json_is_object (evd)) {
            bctx_testing_fail_ (self, "decide returned event %zu without a type of 1-128 "
                      "of A-Z a-z 0-9 _ and a data object (the host answers internal)", i);
            self->rc = BCTX_ERROR;
        } else if (bctx_testing_fold_ (self, aggregate, type, evd) != 0) {
            self->rc = BCTX_ERROR;
        }
    }
    json_decref (d);
    return self->rc;
}

/* The events the last when decided (a JSON array).  Return: borrowed. */
static inline const json_t *
bctx_testing_events (const bctx_testing_t *self)
{
    return self->events;
}

/* The folded state of aggregate, or NULL if it has no events.
 * Return: borrowed. */
static inline const json_t *
bctx_testing_state (const bctx_testing_t *self, const char *aggregate)
{
    return json_object_get (self->states, aggregate);
}

/* Compares a JSON value with expected JSON text.  Return 0 or -1. */
static inline int
bctx_testing_equal_ (bctx_testing_t *self, const char *what, const json_t *got,
                     const char *expected)
{
    json_t *want = bctx_testing_parse_ (self, expected);
    if (!want)
        return -1;
    int same = got && json_equal (got, want);
    json_decref (want);
    if (same)
        return 0;
    char *text = got ? json_dumps (got, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY)
                     : NULL;
    bctx_testing_fail_ (self, "%s: expected %s, got %s", what, expected,
              text ? text : "nothing");
    free (text);
    return -1;
}

/* Then: the last when was accepted with exactly these events (JSON text
 * of an array of {"type", "data"}).  Return 0, or -1 with the reason. */
static inline int
bctx_testing_then_events (bctx_testing_t *self, const char *expected)
{
    if (self->rc != BCTX_OK) {
        bctx_testing_fail_ (self, "expected events, but decide returned "
                  "%d: %s%s", self->rc, self->why.text, self->error);
        return -1;
    }
    return bctx_testing_equal_ (self, "events", self->events, expected);
}

/* Then: the last when returned rc (BCTX_REJECT or BCTX_INVALID), decided
 * no event, and its reason contains `contains` (NULL: anything).
 * Return 0, or -1 with the reason. */
static inline int
bctx_testing_then_refused (bctx_testing_t *self, int rc, const char *contains)
{
    const char *text = self->why.text[0] ? self->why.text : self->error;
    if (self->rc != rc) {
        bctx_testing_fail_ (self, "expected decide to return %d, got %d (%s)",
                  rc, self->rc, text);
        return -1;
    }
    if (self->rc == BCTX_REJECT && json_array_size (self->events) > 0) {
        bctx_testing_fail_ (self, "rejected, yet decided %zu events",
                  json_array_size (self->events));
        return -1;
    }
    if (contains && !strstr (text, contains)) {
        bctx_testing_fail_ (self, "reason \"%s\" does not contain \"%s\"",
                  text, contains);
        return -1;
    }
    return 0;
}

/* Then: aggregate's folded state equals expected (JSON text; "null" for
 * no events).  Return 0, or -1 with the reason. */
static inline int
bctx_testing_then_state (bctx_testing_t *self, const char *aggregate, const char *expected)
{
    const json_t *got = bctx_testing_state (self, aggregate);
    return bctx_testing_equal_ (self, "state", got ? got : json_null (), expected);
}

/* Builds the bctx_event_t a projection or reactor sees (data: borrowed). */
static inline bctx_event_t
bctx_testing_event_ (bctx_testing_t *self, const char *context, const char *aggregate,
                     const char *type, const json_t *data)
{
    self->position++;
    return (bctx_event_t) {
        .context = context, .type = type, .aggregate = aggregate, .version = 1,
        .position = self->position, .data = data,
        .metadata = "{\"command_id\":\"testing\",\"correlation_id\":\"testing\","
                    "\"causation_id\":\"testing\",\"time\":\"1970-01-01T00:00:00Z\"}",
    };
}

/* The projection named name, or NULL with the reason.  Return: borrowed. */
static inline const bctx_projection_t *
bctx_testing_projection_ (bctx_testing_t *self, const char *name)
{
    const bctx_projection_t *p = self->desc->projections;
    while (p && p->name && strcmp (p->name, name) != 0)
        p++;
    if (!p || !p->name)
        bctx_testing_fail_ (self, "unknown projection %s", name);
    return p && p->name ? p : NULL;
}

/* The reactor named name, or NULL with the reason.  Return: borrowed. */
static inline const bctx_reactor_t *
bctx_testing_reactor_ (bctx_testing_t *self, const char *name)
{
    const bctx_reactor_t *r = self->desc->reactors;
    while (r && r->name && strcmp (r->name, name) != 0)
        r++;
    if (!r || !r->name)
        bctx_testing_fail_ (self, "unknown reactor %s", name);
    return r && r->name ? r : NULL;
}

/* Feeds projection one event of context (data: JSON text, NULL for {}).
 * Return what handle returned, or BCTX_ERROR with the reason. */
static inline int
bctx_testing_project (bctx_testing_t *self, const char *projection, const char *context,
                      const char *aggregate, const char *type, const char *data)
{
    const bctx_projection_t *p = bctx_testing_projection_ (self, projection);
    json_t *d = p ? bctx_testing_data_ (self, data) : NULL;
    if (!d)
        return BCTX_ERROR;
    bctx_event_t ev = bctx_testing_event_ (self, context, aggregate, type, d);
    self->projection = p->name;
    int rc = p->handle (self->user, &self->host, (bctx_models_t *) self, &ev);
    self->projection = NULL;
    json_decref (d);
    return rc;
}

/* The read model of projection under key, or NULL.  Return: borrowed. */
static inline const json_t *
bctx_testing_model (const bctx_testing_t *self, const char *projection, const char *key)
{
    return json_object_get (json_object_get (self->models, projection), key);
}

/* Then: the read model of projection under key equals expected (JSON
 * text; "null" for none).  Return 0, or -1 with the reason. */
static inline int
bctx_testing_then_model (bctx_testing_t *self, const char *projection, const char *key,
                         const char *expected)
{
    const json_t *got = bctx_testing_model (self, projection, key);
    return bctx_testing_equal_ (self, "model", got ? got : json_null (), expected);
}

/* Queues the answer the next host->send of a reactor gets: rc (BCTX_OK,
 * BCTX_REJECT or BCTX_ERROR) and its reason (borrowed, may be NULL). */
static inline void
bctx_testing_reply (bctx_testing_t *self, int rc, const char *reason)
{
    json_array_append_new (self->replies, json_pack ("[i, s]", rc, reason ? reason : ""));
}

/* Feeds reactor one event of context; forgets earlier sends.  Return
 * what react returned, or BCTX_ERROR with the reason. */
static inline int
bctx_testing_react (bctx_testing_t *self, const char *reactor, const char *context,
                    const char *aggregate, const char *type, const char *data)
{
    const bctx_reactor_t *r = bctx_testing_reactor_ (self, reactor);
    json_t *d = r ? bctx_testing_data_ (self, data) : NULL;
    if (!d)
        return BCTX_ERROR;
    json_array_clear (self->sent);
    bctx_event_t ev = bctx_testing_event_ (self, context, aggregate, type, d);
    int rc = r->react (self->user, &self->host, (bctx_reaction_t *) self, &ev);
    json_decref (d);
    return rc;
}

/* Then: the last react sent exactly these commands (JSON text of an array
 * of {"context", "command", "data"}).  Return 0, or -1 with the reason. */
static inline int
bctx_testing_then_sent (bctx_testing_t *self, const char *expected)
{
    return bctx_testing_equal_ (self, "sent", self->sent, expected);
}

/* cmocka-style asserts: fail the test with the harness's reason. */
#define bctx_assert_ok_(call, self) \
    do { if ((call) != 0) fail_msg ("%s", bctx_testing_error (self)); } while (0)
#define bctx_assert_given(self, agg, type, data) \
    bctx_assert_ok_ (bctx_testing_given ((self), (agg), (type), (data)), (self))
#define bctx_assert_events(self, expected) \
    bctx_assert_ok_ (bctx_testing_then_events ((self), (expected)), (self))
#define bctx_assert_rejected(self, contains) \
    bctx_assert_ok_ (bctx_testing_then_refused ((self), BCTX_REJECT, (contains)), (self))
#define bctx_assert_invalid(self, contains) \
    bctx_assert_ok_ (bctx_testing_then_refused ((self), BCTX_INVALID, (contains)), (self))
#define bctx_assert_state(self, agg, expected) \
    bctx_assert_ok_ (bctx_testing_then_state ((self), (agg), (expected)), (self))
#define bctx_assert_model(self, proj, key, expected) \
    bctx_assert_ok_ (bctx_testing_then_model ((self), (proj), (key), (expected)), (self))
#define bctx_assert_sent(self, expected) \
    bctx_assert_ok_ (bctx_testing_then_sent ((self), (expected)), (self))

#ifdef __cplusplus
}
#endif
#endif
