/* metrics.h - the hub's counters, gauges and latency histograms, rendered in
 * the Prometheus text exposition format (version 0.0.4) for GET /metrics.
 * Thread-safe: workers off the event loop may count too. */
#ifndef HUB_METRICS_H
#define HUB_METRICS_H

#include <stdbool.h>
#include "buf.h"

struct metrics;

int metrics_new(struct metrics **out);
void metrics_free(struct metrics *m);                 /* NULL-safe */

/*
 * Generic series. A series is a metric name with its labels, written as it
 * appears in the exposition: `resedge_enroll_total{result="ok"}`. Label
 * values must already be escaped (metrics_escape_label). The first use of a
 * series creates it; the family's type is counter for inc/add and gauge for
 * set, unless metrics_describe said otherwise. All are no-ops on NULL m, and
 * silently drop a series that cannot be stored (out of memory, too long).
 */
void metrics_inc(struct metrics *m, const char *series);
void metrics_add(struct metrics *m, const char *series, double v);
void metrics_set(struct metrics *m, const char *series, double v);
/* # HELP and # TYPE for a family ("counter", "gauge"); call before first use. */
void metrics_describe(struct metrics *m, const char *family, const char *type,
                      const char *help);
/* A gauge computed at render time. */
typedef double (*metrics_gauge_fn)(void *arg);
int metrics_gauge_fn_add(struct metrics *m, const char *series, const char *help,
                         metrics_gauge_fn fn, void *arg);

/* Escapes \, " and newline for a label value into out (bounded); returns out. */
const char *metrics_escape_label(char *out, size_t size, const char *value);

/* Server-specific families. */
/* One request answered: resedge_http_requests_total{route,method,code} and
 * resedge_http_request_duration_seconds{route} (histogram). */
void metrics_observe_request(struct metrics *m, const char *route, const char *method,
                             int status, double seconds);
void metrics_tls_handshake(struct metrics *m, bool resumed);  /* full vs resumed */
void metrics_connections(struct metrics *m, int delta);       /* open connections gauge */

/* Appends the whole exposition to out. 0 or -RE_ETOOBIG/-RE_ENOMEM. */
int metrics_render(struct metrics *m, struct re_buf *out);

#endif
