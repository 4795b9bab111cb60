/*
 * metrics - the stats op's reply as Prometheus text format 0.0.4 (prefix
 * bctx_, _total counters, labels context/projection/reactor/peer).  See
 * docs/metrics.md.
 */
#ifndef BCTX_METRICS_H
#define BCTX_METRICS_H

/* The metrics of a stats reply (borrowed JSON text).  Return: new text,
 * or NULL when the reply is not a stats reply. */
char *bctx_metrics_render (const char *stats_reply);

#endif
