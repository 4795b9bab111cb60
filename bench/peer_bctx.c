/*
 * bctx-peer-check - make bench-peers' checks of a bctx run, on the
 * accounts log the host left (run it after the host stopped): the log
 * holds exactly the Deposits bctx-bench counted as acknowledged, and an
 * append at a stale version is refused by the store's expected-version
 * check, the one the worker's appends go through.  Nothing is written:
 * the refused append's transaction is rolled back.
 *
 *   bctx-peer-check STORE.db ACKED
 *
 * Prints {"stored":N,"stale_rejected":true|false}; exit status 1 when a
 * check fails.
 */
#include "store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_PAGE 10000

/* What the read of the log found. */
typedef struct {
    long deposits;          /* events of type Deposited */
    int64_t last;           /* position of the last event read */
} s_tally_t;

/* Counts one event read. */
static int
s_tally (const bctx_row_t *event, void *arg)
{
    s_tally_t *t = arg;
    if (strcmp (event->type, "Deposited") == 0)
        t->deposits++;
    t->last = event->position;
    return 0;
}

int
main (int argc, char **argv)
{
    if (argc != 3) {
        fprintf (stderr, "usage: bctx-peer-check STORE.db ACKED\n");
        return 2;
    }
    long acked = atol (argv[2]);
    char err[512];
    bctx_store_t *store = bctx_store_open (argv[1], 0, err, sizeof err);
    if (!store) {
        fprintf (stderr, "bctx-peer-check: %s\n", err);
        return 1;
    }
    int failed = 0;
    s_tally_t tally = { 0, 0 };
    int64_t got;
    while ((got = bctx_store_read (store, tally.last + 1, NULL, S_PAGE, s_tally, &tally)) > 0)
        ;
    if (got < 0) {
        fprintf (stderr, "bctx-peer-check: %s: cannot read the log: %s\n", argv[1],
                 bctx_store_error (store));
        failed = 1;
    } else if (tally.deposits != acked) {
        fprintf (stderr, "bctx-peer-check: %s: %ld Deposits acknowledged but %ld stored: an "
                 "acknowledged event is missing or one was stored twice\n", argv[1], acked,
                 tally.deposits);
        failed = 1;
    }
    /* acc-0 was opened, so it is at version 1 or more: expecting one less
     * is stale. */
    int64_t version = bctx_store_version (store, "acc-0");
    int stale_rejected = 0;
    if (version < 1) {
        fprintf (stderr, "bctx-peer-check: %s: acc-0 has no event: no stale version to try\n",
                 argv[1]);
    } else if (bctx_store_begin (store) != 0) {
        fprintf (stderr, "bctx-peer-check: %s: %s\n", argv[1], bctx_store_error (store));
    } else {
        bctx_row_t row = { .aggregate = "acc-0", .type = "Deposited",
                           .data = "{\"account\":\"acc-0\",\"amount\":1,\"balance\":0}",
                           .metadata = "{\"command_id\":\"stale\"}", .command = "stale" };
        int rc = bctx_store_append (store, "acc-0", version - 1, &row, 1);
        stale_rejected = rc == BCTX_ESTORECONFLICT;
        if (rc == 0)
            fprintf (stderr, "bctx-peer-check: %s: an append to acc-0 expecting version %lld "
                     "(it is at %lld) was accepted\n", argv[1], (long long) (version - 1),
                     (long long) version);
        else if (!stale_rejected)
            fprintf (stderr, "bctx-peer-check: %s: the stale append failed for another "
                     "reason: %s\n", argv[1], bctx_store_error (store));
        bctx_store_rollback (store);
    }
    printf ("{\"stored\":%ld,\"stale_rejected\":%s}\n", tally.deposits,
            stale_rejected ? "true" : "false");
    bctx_store_destroy (&store);
    return failed || !stale_rejected ? 1 : 0;
}
