/*
 * bctx-fill - writes a large accounts log straight through the store
 * module, for benchmarks that need one (projection catch-up).  Not a way
 * to feed a running host: run it before the host starts.
 *
 *   bctx-fill STORE.db EVENTS ACCOUNTS
 *
 * Opens ACCOUNTS accounts, then appends Deposits round-robin until the log
 * holds EVENTS events, 10 000 per transaction, with the same data and
 * metadata shapes the accounts plugin and the host write.
 */
#include "store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_PER_TX 10000

int
main (int argc, char **argv)
{
    if (argc != 4) {
        fprintf (stderr, "usage: bctx-fill STORE.db EVENTS ACCOUNTS\n");
        return 2;
    }
    long events = atol (argv[2]), accounts = atol (argv[3]);
    if (events < accounts || accounts < 1) {
        fprintf (stderr, "bctx-fill: need EVENTS >= ACCOUNTS >= 1\n");
        return 2;
    }
    char err[512];
    bctx_store_t *store = bctx_store_open (argv[1], 0, err, sizeof err);
    if (!store) {
        fprintf (stderr, "bctx-fill: %s\n", err);
        return 1;
    }
    long *balance = calloc ((size_t) accounts, sizeof *balance);
    long *version = calloc ((size_t) accounts, sizeof *version);
    long written = bctx_store_position (store);
    char agg[32], data[160], meta[400], id[48];
    while (written < events) {
        if (bctx_store_begin (store) != 0)
            return 1;
        for (int k = 0; k < S_PER_TX && written < events; k++, written++) {
            long a = written % accounts;
            snprintf (agg, sizeof agg, "acc-%ld", a);
            snprintf (id, sizeof id, "fill-%ld", written);
            snprintf (meta, sizeof meta,
                      "{\"command_id\":\"%s\",\"correlation_id\":\"%s\",\"causation_id\":\"%s\","
                      "\"time\":\"2026-01-01T00:00:00.000000Z\"}", id, id, id);
            bctx_row_t row = { .aggregate = agg, .data = data, .metadata = meta, .command = id };
            if (version[a] == 0) {
                row.type = "AccountOpened";
                snprintf (data, sizeof data, "{\"account\":\"%s\",\"owner\":\"fill\"}", agg);
            } else {
                balance[a] += 1 + written % 7;
                row.type = "Deposited";
                snprintf (data, sizeof data, "{\"account\":\"%s\",\"amount\":%ld,\"balance\":%ld}",
                          agg, 1 + written % 7, balance[a]);
            }
            if (bctx_store_append (store, agg, version[a], &row, 1) != 0) {
                fprintf (stderr, "bctx-fill: %s\n", bctx_store_error (store));
                return 1;
            }
            version[a]++;
        }
        if (bctx_store_commit (store) != 0)
            return 1;
    }
    printf ("{\"events\":%ld,\"accounts\":%ld}\n", written, accounts);
    free (balance);
    free (version);
    bctx_store_destroy (&store);
    return 0;
}
