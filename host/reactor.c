/*
 * reactor - the reactor runner: feed, retries with back-off, parking by
 * aggregate; its commands leave through its sender (sender.c).  A batch
 * on lanes is reactor_lanes.c's.
 */
#include "reactor.h"
#include "consumer.h"
#include "lanes.h"
#include "reactor_internal.h"
#include "log.h"
#include "runner.h"
#include "sender.h"
#include "store.h"
#include "util.h"
#include "worker.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#define S_ATTEMPTS   5         /* tries of one event before it is parked */
#define S_FIRST_MS   20        /* first back-off; doubles each try */
#define S_IDLE_MS    1000      /* wake at least this often */

/* Commands to a reactor's thread, by name on its runner's pipe. */
enum {
    S_RETRY = 1,                  /* run the parked events again */
};

static const char *const s_commands[] = {
    [S_RETRY] = "RETRY",
};

struct bctx_reaction {
    bctx_reactor_runner_t *owner; /* whose */
    bctx_hand_t *hand;               /* on which thread */
    const bctx_event_t *event;    /* the event being handled */
    int sends;                    /* commands sent so far for it */
    int unreachable;              /* a peer did not answer (not the handler's fault) */
};

/* --- sending --------------------------------------------------------- */

/* Reads the commands waiting on the pipe: a stop or a retry is kept in
 * stopping or retry_asked for the main loop. */
void
bctx_reactor_read_commands (bctx_reactor_runner_t *self)
{
    int cmd;
    while ((cmd = bctx_runner_recv (self->base.runner)) > 0)
        if (cmd == S_RETRY)
            self->retry_asked = 1;
    if (cmd == BCTX_RUNNER_TERM)
        self->stopping = 1;
}

int
bctx_reaction_send (bctx_reaction_t *r, const char *context,
                    const char *command, json_t *data, bctx_reason_t *why)
{
    bctx_reason_t scratch;
    if (!why)
        why = &scratch;
    why->text[0] = '\0';
    if (!r || !context || !command || !json_is_object (data)) {
        json_decref (data);
        bctx_reason (why, "send: needs a context, a command and an object data");
        return BCTX_ERROR;
    }
    bctx_reactor_runner_t *self = r->owner;
    if (!bctx_sender_knows (r->hand->sender, context)) {
        json_decref (data);
        bctx_reason (why, "send: no context \"%s\" on this host", context);
        return BCTX_ERROR;
    }
    const bctx_event_t *ev = r->event;
    char id[256], cause[192];
    snprintf (id, sizeof id, "%s:%s:%lld:%d", self->base.name, ev->context,
              (long long) ev->position, r->sends++);
    snprintf (cause, sizeof cause, "%s:%lld", ev->context, (long long) ev->position);
    json_t *meta = ev->metadata ? json_loads (ev->metadata, 0, NULL) : NULL;
    const char *corr = json_string_value (json_object_get (meta, "correlation_id"));
    json_t *request = json_pack ("{s:s, s:s, s:s, s:s, s:o, s:s, s:s}", "op", "send",
                                 "context", context, "command", command, "id", id,
                                 "data", data, "correlation_id", corr ? corr : id,
                                 "causation_id", cause);
    json_decref (meta);
    /* Waiting for a reply is not the handler's time. */
    bctx_hand_t *hand = r->hand;
    long long busy = atomic_load (&hand->busy->since_us);
    bctx_busy_end (hand->busy);
    bctx_sent_t sent = { 0 };
    int rc = bctx_sender_send (hand->sender, hand->runner, context, request, &sent, why);
    if (sent.interrupted && hand->runner)
        bctx_reactor_read_commands (self);
    if (sent.unreachable)
        r->unreachable = 1;
    if (busy)
        bctx_busy_begin (hand->busy);
    return rc;
}

/* --- handling -------------------------------------------------------- */

void
bctx_reactor_key (char *out, size_t size, const char *source, const char *aggregate)
{
    snprintf (out, size, "%s\x1f%s", source, aggregate);
}

/* Sets the last failure shown in stats; waiting: it is a peer that does
 * not answer (the event waits, it is not parked). */
void
bctx_reactor_set_error (bctx_reactor_runner_t *self, const char *text, int waiting)
{
    pthread_mutex_lock (&self->base.lock);
    snprintf (self->base.error, sizeof self->base.error, "%s", text);
    self->waiting = waiting;
    pthread_mutex_unlock (&self->base.lock);
}

/* The last failure is over, unless events are parked (their reason
 * stays shown). */
static void
s_clear_error (bctx_reactor_runner_t *self)
{
    pthread_mutex_lock (&self->base.lock);
    if (!self->n_parked) {
        self->base.error[0] = '\0';
        self->waiting = 0;
    }
    pthread_mutex_unlock (&self->base.lock);
}

/* Waits ms, unless a stop arrives.  Return 1 if asked to stop. */
static int
s_pause (bctx_reactor_runner_t *self, const bctx_hand_t *hand, int ms)
{
    if (hand->runner) {
        if (bctx_runner_wait (hand->runner, NULL, ms) != 0)
            bctx_reactor_read_commands (self);
        return self->stopping;
    }
    /* A lane: the reactor's thread reads the stop, the lane looks. */
    for (int slept = 0; slept < ms && !self->stopping; slept += 10)
        nanosleep (&(struct timespec) { 0, 10 * 1000000L }, NULL);
    return self->stopping;
}

/* Runs react on one event, with back-off.  Return 0 when it succeeded, 1
 * when it kept failing (reason in why), -1 when asked to stop. */
static int
s_tries (bctx_reactor_runner_t *self, bctx_hand_t *hand, const bctx_event_t *ev, char *why,
         size_t whylen)
{
    const bctx_plugin_t *p = self->base.plugin;
    int delay = S_FIRST_MS;
    for (int attempt = 1; attempt <= S_ATTEMPTS; attempt++) {
        bctx_reaction_t r = { .owner = self, .hand = hand, .event = ev };
        bctx_busy_begin (hand->busy);
        int rc = self->def->react (p->user, &p->host, &r, ev);
        bctx_busy_end (hand->busy);
        if (rc == BCTX_OK) {
            if (attempt > 1 || r.unreachable)
                s_clear_error (self);      /* the wait or the failures are over */
            return 0;
        }
        if (self->stopping)
            return -1;
        snprintf (why, whylen, "react failed (%d) on %s.%s at position %lld, try %d of %d",
                  rc, ev->context, ev->type, (long long) ev->position, attempt, S_ATTEMPTS);
        if (r.unreachable) {
            /* A peer that does not answer is no fault of the event: wait
             * for it (a stop still ends the wait), do not park. */
            snprintf (why, whylen, "a peer does not answer; %s.%s at position %lld waits",
                      ev->context, ev->type, (long long) ev->position);
            bctx_reactor_set_error (self, why, 1);
            attempt--;
        }
        bctx_log (BCTX_LOG_WARN, "reactor %s: %s", self->base.name, why);
        pthread_mutex_lock (&self->base.lock);
        self->retries++;
        pthread_mutex_unlock (&self->base.lock);
        if (attempt < S_ATTEMPTS && s_pause (self, hand, delay))
            return -1;
        delay = delay * 2 > 5000 ? 5000 : delay * 2;
    }
    return 1;
}

/* s_tries, noted in hand's poison slot. */
int
bctx_reactor_attempt (bctx_reactor_runner_t *self, bctx_hand_t *hand, const bctx_event_t *ev, char *why,
           size_t whylen)
{
    bctx_slot_enter (hand->slot, ev);
    int rc = s_tries (self, hand, ev, why, whylen);
    bctx_slot_leave (hand->slot);
    return rc;
}

typedef struct {
    bctx_reactor_runner_t *self;  /* the runner */
    size_t source;                /* index of the source being read */
} s_reading_t;

static int
s_on_event (const bctx_event_t *ev, void *arg)
{
    s_reading_t *rd = arg;
    bctx_reactor_runner_t *self = rd->self;
    char key[512], why[256] = "";
    bctx_reactor_key (key, sizeof key, ev->context, ev->aggregate);
    int parked = json_object_get (self->parked, key) != NULL;
    int rc = 0;
    if (parked) {
        snprintf (why, sizeof why, "waits behind a parked event of aggregate %s", ev->aggregate);
    } else if (bctx_poison_parked (self->base.poison, self->base.who, ev->context, ev->position)) {
        snprintf (why, sizeof why, "ended its process %d times", BCTX_POISON_LIMIT);
        rc = 1;
    } else {
        rc = bctx_reactor_attempt (self, &self->hand, ev, why, sizeof why);
    }
    if (rc < 0)
        return 1;                  /* stopping: this event is not done */
    if (bctx_readside_begin (self->base.db) != 0)
        return 1;
    if ((parked || rc == 1)
        && bctx_readside_park (self->base.db, ev->context, ev->position, ev->aggregate, why) != 0)
        goto fail;
    if (bctx_readside_set_checkpoint (self->base.db, 0, ev->context, ev->position) != 0
        || bctx_readside_commit (self->base.db) != 0)
        goto fail;
    if (parked || rc == 1) {
        json_object_set_new (self->parked, key, json_integer (
            json_integer_value (json_object_get (self->parked, key)) + 1));
        if (!parked)
            bctx_log (BCTX_LOG_WARN, "reactor %s: parked aggregate %s of %s at position %lld; "
                      "`bctx retry %s` runs it again", self->base.name, ev->aggregate,
                      ev->context, (long long) ev->position, self->base.name);
    }
    self->base.checkpoints[rd->source] = ev->position;
    pthread_mutex_lock (&self->base.lock);
    self->base.shown[rd->source] = ev->position;
    self->base.handled++;
    if (parked || rc == 1) {
        self->n_parked++;
        snprintf (self->base.error, sizeof self->base.error, "%s", why);
        self->waiting = 0;
    }
    pthread_mutex_unlock (&self->base.lock);
    return 0;
fail:
    bctx_readside_rollback (self->base.db);
    bctx_reactor_set_error (self, bctx_readside_error (self->base.db), 0);
    return 1;
}

/* One batch from source i.  Return 1 if more may wait, 0 if caught up,
 * -1 on failure or stop. */
static int
s_batch (bctx_reactor_runner_t *self, size_t i)
{
    if (self->lanes && !self->serial_first)
        return bctx_reactor_batch_lanes (self, i);
    int64_t from = self->base.checkpoints[i] + 1;
    if (from > bctx_feed_head (self->base.feed, i))
        return 0;
    s_reading_t rd = { .self = self, .source = i };
    int64_t last = self->base.checkpoints[i];
    int64_t n = bctx_feed_read (self->base.feed, i, from, S_BATCH, s_on_event, &rd, &last);
    if (n < 0)
        return -1;
    /* Rows after the last consumed event move the checkpoint too. */
    if (last > self->base.checkpoints[i]) {
        if (bctx_readside_begin (self->base.db) != 0
            || bctx_readside_set_checkpoint (self->base.db, 0,
                                             bctx_feed_name (self->base.feed, i), last) != 0
            || bctx_readside_commit (self->base.db) != 0) {
            bctx_readside_rollback (self->base.db);
            return -1;
        }
        self->base.checkpoints[i] = last;
        pthread_mutex_lock (&self->base.lock);
        self->base.shown[i] = last;
        pthread_mutex_unlock (&self->base.lock);
    }
    return n == S_BATCH ? 1 : 0;
}

/* --- retry of parked events ------------------------------------------ */

typedef struct {
    char *source;                 /* context */
    int64_t position;             /* where */
    char *aggregate;              /* whose */
} s_parked_t;

typedef struct {
    s_parked_t *items;            /* parked events in order */
    size_t n;                     /* how many */
} s_parked_list_t;

static int
s_collect_parked (const char *source, int64_t position, const char *aggregate,
                  const char *reason, void *arg)
{
    (void) reason;
    s_parked_list_t *l = arg;
    l->items = bctx_realloc (l->items, (l->n + 1) * sizeof *l->items);
    l->items[l->n++] = (s_parked_t) { strdup (source), position, strdup (aggregate) };
    return 0;
}

typedef struct {
    bctx_reactor_runner_t *self;  /* the runner */
    int rc;                       /* s_attempt's result */
    char why[256];                /* its reason */
} s_retrying_t;

/* Runs one parked event again, noted in the runner's slot: a poison
 * event that crashes again is counted again (poison.h). */
static int
s_retry_one (const bctx_event_t *ev, void *arg)
{
    s_retrying_t *r = arg;
    r->rc = bctx_reactor_attempt (r->self, &r->self->hand, ev, r->why, sizeof r->why);
    return 0;
}

/* Rebuilds the in-memory parked map from the file. */
static void
s_load_parked (bctx_reactor_runner_t *self)
{
    s_parked_list_t l = { 0 };
    bctx_readside_parked (self->base.db, s_collect_parked, &l);
    json_object_clear (self->parked);
    for (size_t k = 0; k < l.n; k++) {
        char key[512];
        bctx_reactor_key (key, sizeof key, l.items[k].source, l.items[k].aggregate);
        json_object_set_new (self->parked, key, json_integer (
            json_integer_value (json_object_get (self->parked, key)) + 1));
        free (l.items[k].source);
        free (l.items[k].aggregate);
    }
    free (l.items);
    pthread_mutex_lock (&self->base.lock);
    self->n_parked = (int64_t) l.n;
    pthread_mutex_unlock (&self->base.lock);
}

static void
s_retry_parked (bctx_reactor_runner_t *self)
{
    s_parked_list_t l = { 0 };
    bctx_readside_parked (self->base.db, s_collect_parked, &l);
    json_t *failed = json_object ();
    size_t resumed = 0;
    bctx_log (BCTX_LOG_INFO, "reactor %s: retrying %zu parked event(s)", self->base.name, l.n);
    for (size_t k = 0; k < l.n && !self->stopping; k++) {
        s_parked_t *it = &l.items[k];
        char key[512];
        bctx_reactor_key (key, sizeof key, it->source, it->aggregate);
        int src = bctx_feed_index (self->base.feed, it->source);
        if (json_object_get (failed, key) || src < 0)
            continue;              /* keep order: the aggregate is still stuck */
        s_retrying_t r = { .self = self, .rc = 1 };
        int64_t last = it->position - 1;
        int64_t n = bctx_feed_read (self->base.feed, (size_t) src, it->position, 1,
                                    s_retry_one, &r, &last);
        if (n == 1 && r.rc == 0) {
            if (bctx_readside_begin (self->base.db) == 0
                && bctx_readside_unpark (self->base.db, it->source, it->position) == 0
                && bctx_readside_commit (self->base.db) == 0)
                resumed++;
            else
                bctx_readside_rollback (self->base.db);
            /* A poison event that ran well is no longer one. */
            if (bctx_poison_parked (self->base.poison, self->base.who, it->source, it->position))
                bctx_poison_unpark (self->base.poison, self->base.who, it->source, it->position);
        } else {
            json_object_set_new (failed, key, json_true ());
        }
    }
    for (size_t k = 0; k < l.n; k++) {
        free (l.items[k].source);
        free (l.items[k].aggregate);
    }
    free (l.items);
    json_decref (failed);
    s_load_parked (self);
    bctx_log (BCTX_LOG_INFO, "reactor %s: %zu parked event(s) done, %lld still parked",
              self->base.name, resumed, (long long) bctx_reactor_parked (self));
    if (bctx_reactor_parked (self) == 0)
        bctx_reactor_set_error (self, "", 0);
}

/* --- thread ---------------------------------------------------------- */

/* The reactor's thread: commands, parked events to retry, then a batch
 * per source, then a wait for the bus, a command or the idle tick. */
static void
s_run (bctx_runner_t *runner, void *arg)
{
    (void) runner;                 /* self->base.runner */
    bctx_reactor_runner_t *self = arg;
    bctx_log_set_context (self->base.context);
    self->hand.slot = self->base.slot;
    self->hand.runner = self->base.runner;     /* made after the hand: its waits end at a stop */
    while (!self->stopping) {
        bctx_reactor_read_commands (self);
        int retry = self->retry_asked;
        self->retry_asked = 0;
        if (self->stopping)
            break;
        if (retry)
            s_retry_parked (self);
        int more = 0, failed = 0;
        for (size_t i = 0; i < bctx_feed_size (self->base.feed) && !self->stopping; i++) {
            int rc = s_batch (self, i);
            if (rc < 0)
                failed = 1;
            else
                more |= rc;
        }
        if (!failed)
            self->serial_first = 0;
        if (more && !failed)
            continue;
        if (bctx_consumer_wait (&self->base, failed ? 200 : S_IDLE_MS) < 0)
            break;
    }
    bctx_sender_close (self->sender);
    for (size_t l = 0; self->lanes && l < self->n_lanes; l++)
        bctx_sender_close (self->lane_hands[l].sender);
}

/* --- lifecycle ------------------------------------------------------- */

bctx_reactor_runner_t *
bctx_reactor_new (void *zctx, const bctx_security_t *security, const char *data,
                  bctx_plugin_t *plugin,
                  const bctx_reactor_t *def, const bctx_source_t *targets,
                  size_t n, size_t lanes, char *err, size_t errlen)
{
    bctx_reactor_runner_t *self = calloc (1, sizeof *self);
    bctx_consumer_init (&self->base, "reactor", plugin, def->name);
    self->def = def;
    self->parked = json_object ();
    if (!def->react) {
        snprintf (err, errlen, "%s: needs a react", self->base.label);
        goto fail;
    }
    if (bctx_consumer_open (&self->base, data, def->consumes, targets, n, err, errlen) != 0)
        goto fail;
    self->sender = bctx_sender_new (zctx, security, targets, n);
    self->hand = (bctx_hand_t) { self->sender, NULL, &self->base.busy, NULL };
    if (bctx_reactor_open_lanes (self, zctx, security, targets, n, lanes, err, errlen) != 0)
        goto fail;
    for (size_t i = 0; i < bctx_feed_size (self->base.feed); i++)
        self->base.checkpoints[i] = self->base.shown[i]
            = bctx_readside_checkpoint (self->base.db, 0, bctx_feed_name (self->base.feed, i));
    s_load_parked (self);
    if (bctx_consumer_connect (&self->base, zctx, s_commands,
                               sizeof s_commands / sizeof *s_commands, s_run, self,
                               err, errlen) != 0)
        goto fail;
    return self;
fail:
    bctx_reactor_destroy (&self);
    return NULL;
}

void
bctx_reactor_guard (bctx_reactor_runner_t *self, bctx_poison_t *poison)
{
    bctx_consumer_guard (&self->base, poison);
    for (size_t l = 0; self->lanes && l < self->n_lanes; l++) {
        char who[160];
        snprintf (who, sizeof who, "%s%c%zu", self->base.who, BCTX_POISON_LANE, l);
        self->lane_hands[l].slot = bctx_poison_slot (poison, who);
        if (poison && !self->lane_hands[l].slot)
            bctx_log (BCTX_LOG_WARN, "%s: lane %zu has no poison slot left (%d in all): a "
                      "crash there is not counted on its event", self->base.label, l,
                      BCTX_POISON_SLOTS);
    }
}

long long
bctx_reactor_busy_ms (bctx_reactor_runner_t *self)
{
    long long most = bctx_busy_ms (&self->base.busy);
    for (size_t l = 0; self->lanes && l < self->n_lanes; l++) {
        long long ms = bctx_busy_ms (&self->lane_busy[l]);
        most = ms > most ? ms : most;
    }
    return most;
}

void
bctx_reactor_retry (bctx_reactor_runner_t *self)
{
    bctx_runner_send (self->base.runner, S_RETRY);
}

bctx_consumer_t *
bctx_reactor_base (bctx_reactor_runner_t *self)
{
    return &self->base;
}

int64_t
bctx_reactor_parked (bctx_reactor_runner_t *self)
{
    pthread_mutex_lock (&self->base.lock);
    int64_t n = self->n_parked;
    pthread_mutex_unlock (&self->base.lock);
    return n;
}

/* A reactor's own stats (a bctx_consumer_stats_fn). */
static json_t *
s_stats (void *arg, json_t *checkpoints, json_t *lag)
{
    bctx_reactor_runner_t *self = arg;
    return json_pack ("{s:s, s:s, s:s, s:o, s:o, s:I, s:I, s:I, s:s?}",
                      "context", self->base.context, "name", self->base.name,
                      "state", self->n_parked ? "parked"
                               : self->waiting ? "waiting"
                               : "live",
                      "checkpoints", checkpoints, "lag", lag,
                      "parked", (json_int_t) self->n_parked,
                      "handled", (json_int_t) self->base.handled,
                      "retries", (json_int_t) self->retries,
                      "error", self->base.error[0] ? self->base.error : NULL);
}

json_t *
bctx_reactor_stats (bctx_reactor_runner_t *self)
{
    return bctx_consumer_stats (&self->base, s_stats, self);
}

void
bctx_reactor_destroy (bctx_reactor_runner_t **self_p)
{
    BCTX_SELF_OR_RETURN (bctx_reactor_runner_t, self_p);
    /* Its thread sends through the sender: stopped first. */
    bctx_runner_destroy (&self->base.runner);
    bctx_lanes_destroy (&self->lanes);
    for (size_t l = 0; self->lane_hands && l < self->n_lanes; l++)
        bctx_sender_destroy (&self->lane_hands[l].sender);
    free (self->lane_hands);
    free (self->lane_busy);
    bctx_sender_destroy (&self->sender);
    bctx_consumer_close (&self->base);
    json_decref (self->parked);
    free (self);
    *self_p = NULL;
}
