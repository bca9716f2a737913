/* A small Prometheus registry: counter, gauge and histogram families with a
 * few labels each, rendered in the text exposition format 0.0.4, and the
 * HTTP endpoint (libmicrohttpd, its own thread) that serves it at GET
 * /metrics, beside the probes /healthz and /readyz. Every baton process has
 * one registry; its modules register their families at start-up and keep the
 * pointers. The process_* families are read from /proc at each scrape.
 *
 * Thread safety: everything may be called from any thread. Updating a series
 * is one atomic operation (a histogram observation: one per bucket, one CAS
 * loop for the sum); looking a label set up scans the family's few series
 * without a lock and allocates only the first time that set is seen.
 *
 * A NULL registry, family or series is accepted everywhere and does nothing,
 * so a module can run without metrics and its hot path needs no branch. */
#ifndef BT_METRICS_H
#define BT_METRICS_H

#include <stddef.h>
#include <stdint.h>
#include <librdkafka/rdkafka.h>

#include "config.h"

struct bt_metrics; /* the registry and its endpoint */
struct bt_metric;  /* one family: a name, its help, label names */
struct bt_series;  /* one label set of a family, with its value */

#define BT_METRICS_MAX_LABELS 4
/* Label sets beyond this many per family are dropped (a bound on memory if a
 * label value ever comes from outside), with one warning per family. */
#define BT_METRICS_MAX_SERIES 512

/* A new registry, already holding baton_build_info{version=BT_VERSION} 1;
 * its rendering starts with the process_* families. Caller frees with
 * bt_metrics_destroy. NULL when out of memory. */
struct bt_metrics *bt_metrics_new(void);
/* Stops the endpoint, if started, and frees the registry with every family
 * and series: pointers obtained from it are invalid afterwards. NULL is a
 * no-op. */
void bt_metrics_destroy(struct bt_metrics *m);

/* Serves, on cfg->metrics_addr:cfg->metrics_port from a thread of
 * libmicrohttpd: GET /metrics; GET /healthz, 200 "ok" while that thread
 * answers; GET /readyz, 200 when bt_health_ready() (health.h), else 503 with
 * its reason in plain text; 404 for other paths. Port 0: does nothing and
 * returns 0.
 * Returns 0, or BT_EINVAL (bad address) / BT_EIO (cannot listen) with errstr.
 * cfg is read only during the call. */
int bt_metrics_start(struct bt_metrics *m, const struct bt_config *cfg, char *errstr,
                     size_t errstr_size);
/* Stops serving; the registry stays usable. Not started or NULL: no-op. */
void bt_metrics_stop(struct bt_metrics *m);

/* Registers a family and returns it (borrowed, valid until the registry is
 * destroyed). name follows Prometheus rules (counters end in _total, units
 * are base units: _seconds, _bytes); help is one line; labels is a
 * comma-separated list of at most BT_METRICS_MAX_LABELS label names, or NULL.
 * All strings are copied. Registering a name again returns the existing
 * family when its type and labels are the same (two modules may share one)
 * and aborts otherwise: names are fixed in the code, so a clash is a bug.
 * Histogram bounds: n_bounds ascending upper bounds, without +Inf. */
struct bt_metric *bt_metrics_counter(struct bt_metrics *m, const char *name,
                                     const char *help, const char *labels);
struct bt_metric *bt_metrics_gauge(struct bt_metrics *m, const char *name,
                                   const char *help, const char *labels);
struct bt_metric *bt_metrics_histogram(struct bt_metrics *m, const char *name,
                                       const char *help, const char *labels,
                                       const double *bounds, size_t n_bounds);

/* The series of family f for the given label values, one const char * per
 * label name of the family, in order (none for a family without labels).
 * Created at first use with the values copied; borrowed, valid until the
 * registry is destroyed, so callers may keep it. Returns NULL when f is NULL,
 * a value is NULL, the family is full or memory ran out. */
struct bt_series *bt_metrics_series(struct bt_metric *f, ...);

/* The series of role ("workflow", "activity", "scheduler") in the families
 * every role of baton exports, registered once here with their help. */
struct bt_series *bt_metrics_dead_letters(struct bt_metrics *m, const char *role);
struct bt_series *bt_metrics_round_trips(struct bt_metrics *m, const char *role);
struct bt_series *bt_metrics_lag_series(struct bt_metrics *m, const char *role);

/* Counter or gauge: adds v (a counter only ever grows: v >= 0). */
void bt_metrics_add(struct bt_series *s, int64_t v);
/* Counter or gauge: sets the value. For a counter this mirrors a monotonic
 * count kept elsewhere (Redis round trips of a connection). */
void bt_metrics_set(struct bt_series *s, int64_t v);
/* Histogram: records one observation of v (in the family's unit). */
void bt_metrics_observe(struct bt_series *s, double v);
/* Counter or gauge of one label: calls fn with each series' label value
 * and current value, newest series first. Lock free, from any thread (the
 * heartbeat shares a gauge's values this way). */
void bt_metrics_each(struct bt_metric *f,
                     void (*fn)(const char *label, int64_t v, void *arg), void *arg);
/* Counter or gauge: the current value (0 for NULL); for tests. */
int64_t bt_metrics_value(const struct bt_series *s);

/* The whole registry in the text exposition format 0.0.4: a new malloc'd
 * NUL-terminated string, caller frees; *len gets its length. NULL when out of
 * memory. */
char *bt_metrics_render(struct bt_metrics *m, size_t *len);

/* Messages behind the consumer's position, summed over its assigned
 * partitions, from the high watermarks librdkafka cached at its last fetch
 * (no request to the brokers). Partitions without a position yet are left
 * out. Thread safe, as those librdkafka calls are. */
int64_t bt_metrics_consumer_lag(rd_kafka_t *rk);

#endif
