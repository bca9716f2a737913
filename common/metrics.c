/* The Prometheus registry and its /metrics endpoint. Families and series are
 * append-only lists: a series, once published with a release store, is never
 * moved or freed before the registry, so lookups and updates need no lock.
 * The registry's mutex only serialises creating families and series. */
#include <errno.h>
#include <math.h>
#include <netdb.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <microhttpd.h>

#include "err.h"
#include "health.h"
#include "log.h"
#include "metrics.h"
#include "procstat.h"

enum kind { COUNTER, GAUGE, HISTOGRAM };
static const char *const kind_names[] = {"counter", "gauge", "histogram"};

struct bt_series {
    struct bt_series *next; /* older series; immutable once published */
    const struct bt_metric *f;
    char **values;
    _Atomic int64_t value;     /* counter, gauge */
    _Atomic uint64_t *buckets; /* histogram: n_bounds + 1, not cumulative */
    _Atomic uint64_t sum_bits; /* histogram: the sum, a double's bits */
};

struct bt_metric {
    struct bt_metric *next; /* registered after this one */
    struct bt_metrics *m;
    enum kind kind;
    char *name, *help;
    char *labels[BT_METRICS_MAX_LABELS];
    size_t n_labels;
    double *bounds;
    size_t n_bounds;
    _Atomic(struct bt_series *) series; /* newest first */
    size_t n_series;                    /* under m->lock */
    bool warned_full;                   /* under m->lock */
};

struct bt_metrics {
    pthread_mutex_t lock;
    struct bt_metric *head, *tail;
    struct MHD_Daemon *daemon;
};

/* ---- registry ---- */

struct bt_metrics *bt_metrics_new(void)
{
    struct bt_metrics *m = calloc(1, sizeof(*m));

    if (!m)
        return NULL;
    pthread_mutex_init(&m->lock, NULL);
    bt_metrics_set(bt_metrics_series(bt_metrics_gauge(m, "baton_build_info",
                                                      "Always 1: the version of baton "
                                                      "this process runs, as a label.",
                                                      "version"),
                                     BT_VERSION),
                   1);
    return m;
}

static void free_series(struct bt_series *s, size_t n_labels)
{
    for (size_t i = 0; i < n_labels; i++)
        free(s->values[i]);
    free(s->values);
    free((void *)(uintptr_t)s->buckets);
    free(s);
}

/* A family's own memory; its series are freed apart. */
static void family_free(struct bt_metric *f)
{
    for (size_t i = 0; i < f->n_labels; i++)
        free(f->labels[i]);
    free(f->name);
    free(f->help);
    free(f->bounds);
    free(f);
}

void bt_metrics_destroy(struct bt_metrics *m)
{
    struct bt_metric *f, *next;

    if (!m)
        return;
    bt_metrics_stop(m);
    for (f = m->head; f; f = next) {
        struct bt_series *s = atomic_load(&f->series), *snext;
        next = f->next;
        for (; s; s = snext) {
            snext = s->next;
            free_series(s, f->n_labels);
        }
        family_free(f);
    }
    pthread_mutex_destroy(&m->lock);
    free(m);
}

static bool valid_name(const char *s, bool colon)
{
    if (!*s || (*s >= '0' && *s <= '9'))
        return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
              (*s >= '0' && *s <= '9') || *s == '_' || (colon && *s == ':')))
            return false;
    return true;
}

/* Splits "a,b" into f->labels. Names come from the code: a bad one is a bug. */
static void parse_labels(struct bt_metric *f, const char *labels)
{
    char *copy, *save = NULL;

    if (!labels)
        return;
    copy = strdup(labels);
    BT_ASSERT(copy);
    for (char *l = strtok_r(copy, ", ", &save); l; l = strtok_r(NULL, ", ", &save)) {
        BT_ASSERT(f->n_labels < BT_METRICS_MAX_LABELS);
        BT_ASSERT(valid_name(l, false) && strncmp(l, "__", 2) && strcmp(l, "le"));
        f->labels[f->n_labels] = strdup(l);
        BT_ASSERT(f->labels[f->n_labels]);
        f->n_labels++;
    }
    free(copy);
}

static bool same_family(const struct bt_metric *f, const struct bt_metric *g)
{
    if (f->kind != g->kind || f->n_labels != g->n_labels || f->n_bounds != g->n_bounds)
        return false;
    for (size_t i = 0; i < f->n_labels; i++)
        if (strcmp(f->labels[i], g->labels[i]))
            return false;
    for (size_t i = 0; i < f->n_bounds; i++)
        if (f->bounds[i] != g->bounds[i])
            return false;
    return true;
}

static struct bt_metric *add_family(struct bt_metrics *m, enum kind kind,
                                    const char *name, const char *help,
                                    const char *labels, const double *bounds,
                                    size_t n_bounds)
{
    struct bt_metric *f, *old;

    if (!m)
        return NULL;
    BT_ASSERT(valid_name(name, true) && help && !strchr(help, '\n'));
    f = calloc(1, sizeof(*f));
    BT_ASSERT(f);
    f->m = m;
    f->kind = kind;
    parse_labels(f, labels);
    if (kind == HISTOGRAM) {
        BT_ASSERT(n_bounds > 0 && (f->bounds = malloc(n_bounds * sizeof(*bounds))));
        for (size_t i = 0; i < n_bounds; i++)
            BT_ASSERT(isfinite(bounds[i]) && (i == 0 || bounds[i] > bounds[i - 1]));
        memcpy(f->bounds, bounds, n_bounds * sizeof(*bounds));
        f->n_bounds = n_bounds;
    }
    f->name = strdup(name);
    f->help = strdup(help);
    BT_ASSERT(f->name && f->help);
    pthread_mutex_lock(&m->lock);
    for (old = m->head; old && strcmp(old->name, name); old = old->next)
        ;
    if (!old) {
        if (m->tail)
            m->tail->next = f;
        else
            m->head = f;
        m->tail = f;
    }
    pthread_mutex_unlock(&m->lock);
    if (!old)
        return f;
    BT_ASSERT(same_family(old, f));
    family_free(f);
    return old;
}

struct bt_metric *bt_metrics_counter(struct bt_metrics *m, const char *name,
                                     const char *help, const char *labels)
{
    return add_family(m, COUNTER, name, help, labels, NULL, 0);
}

struct bt_metric *bt_metrics_gauge(struct bt_metrics *m, const char *name,
                                   const char *help, const char *labels)
{
    return add_family(m, GAUGE, name, help, labels, NULL, 0);
}

struct bt_metric *bt_metrics_histogram(struct bt_metrics *m, const char *name,
                                       const char *help, const char *labels,
                                       const double *bounds, size_t n_bounds)
{
    return add_family(m, HISTOGRAM, name, help, labels, bounds, n_bounds);
}

static struct bt_series *find(struct bt_series *s, const char *const *values, size_t n)
{
    for (; s; s = s->next) {
        size_t i = 0;
        while (i < n && !strcmp(s->values[i], values[i]))
            i++;
        if (i == n)
            return s;
    }
    return NULL;
}

static struct bt_series *create(struct bt_metric *f, const char *const *values)
{
    struct bt_series *s = calloc(1, sizeof(*s));
    bool ok = s && (s->values = calloc(f->n_labels + 1, sizeof(char *)));

    if (s)
        s->f = f;

    for (size_t i = 0; ok && i < f->n_labels; i++)
        ok = (s->values[i] = strdup(values[i])) != NULL;
    if (ok && f->kind == HISTOGRAM)
        ok = (s->buckets = calloc(f->n_bounds + 1, sizeof(*s->buckets))) != NULL;
    if (!ok && s) {
        free_series(s, s->values ? f->n_labels : 0);
        return NULL;
    }
    return s;
}

struct bt_series *bt_metrics_series(struct bt_metric *f, ...)
{
    const char *values[BT_METRICS_MAX_LABELS];
    struct bt_series *s;
    va_list ap;

    if (!f)
        return NULL;
    va_start(ap, f);
    for (size_t i = 0; i < f->n_labels; i++)
        values[i] = va_arg(ap, const char *);
    va_end(ap);
    for (size_t i = 0; i < f->n_labels; i++)
        if (!values[i])
            return NULL;
    if ((s = find(atomic_load_explicit(&f->series, memory_order_acquire), values,
                  f->n_labels)))
        return s;
    pthread_mutex_lock(&f->m->lock);
    /* another thread may have created it since the lock-free look */
    s = find(atomic_load_explicit(&f->series, memory_order_relaxed), values, f->n_labels);
    if (!s && f->n_series >= BT_METRICS_MAX_SERIES) {
        if (!f->warned_full)
            bt_log(BT_LOG_WARN,
                   "metric has too many label sets, dropping new ones: "
                   "metric=%s max=%d",
                   f->name, BT_METRICS_MAX_SERIES);
        f->warned_full = true;
    } else if (!s && (s = create(f, values))) {
        s->next = atomic_load_explicit(&f->series, memory_order_relaxed);
        f->n_series++;
        atomic_store_explicit(&f->series, s, memory_order_release);
    }
    pthread_mutex_unlock(&f->m->lock);
    return s;
}

struct bt_series *bt_metrics_dead_letters(struct bt_metrics *m, const char *role)
{
    return bt_metrics_series(bt_metrics_counter(m, "baton_dead_letters_total",
                                                "Messages sent to the DLQ.", "role"),
                             role);
}

struct bt_series *bt_metrics_round_trips(struct bt_metrics *m, const char *role)
{
    return bt_metrics_series(
        bt_metrics_counter(m, "baton_redis_round_trips_total",
                           "Round trips to Redis (a pipeline counts once).", "role"),
        role);
}

struct bt_series *bt_metrics_lag_series(struct bt_metrics *m, const char *role)
{
    return bt_metrics_series(
        bt_metrics_gauge(m, "baton_kafka_consumer_lag",
                         "Messages behind the high watermark on the assigned partitions.",
                         "role"),
        role);
}

void bt_metrics_each(struct bt_metric *f,
                     void (*fn)(const char *label, int64_t v, void *arg), void *arg)
{
    if (!f || f->n_labels != 1)
        return;
    for (struct bt_series *s = atomic_load_explicit(&f->series, memory_order_acquire); s;
         s = s->next)
        fn(s->values[0], atomic_load_explicit(&s->value, memory_order_relaxed), arg);
}

void bt_metrics_add(struct bt_series *s, int64_t v)
{
    if (s)
        atomic_fetch_add_explicit(&s->value, v, memory_order_relaxed);
}

void bt_metrics_set(struct bt_series *s, int64_t v)
{
    if (s)
        atomic_store_explicit(&s->value, v, memory_order_relaxed);
}

int64_t bt_metrics_value(const struct bt_series *s)
{
    return s ? atomic_load_explicit(&s->value, memory_order_relaxed) : 0;
}

static uint64_t double_bits(double d)
{
    uint64_t u;

    memcpy(&u, &d, sizeof(u));
    return u;
}

static double bits_double(uint64_t u)
{
    double d;

    memcpy(&d, &u, sizeof(d));
    return d;
}

void bt_metrics_observe(struct bt_series *s, double v)
{
    size_t i = 0;
    uint64_t old;

    if (!s || !s->buckets || isnan(v))
        return;
    while (i < s->f->n_bounds && v > s->f->bounds[i])
        i++;
    atomic_fetch_add_explicit(&s->buckets[i], 1, memory_order_relaxed);
    old = atomic_load_explicit(&s->sum_bits, memory_order_relaxed);
    while (!atomic_compare_exchange_weak_explicit(
        &s->sum_bits, &old, double_bits(bits_double(old) + v), memory_order_relaxed,
        memory_order_relaxed))
        ;
}

/* ---- exposition ---- */

struct buf {
    char *p;
    size_t len, cap;
    bool oom;
};

static void put(struct buf *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        char *p;
        while (b->len + n + 1 > cap)
            cap *= 2;
        if (!(p = realloc(b->p, cap))) {
            b->oom = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void puts_(struct buf *b, const char *s)
{
    put(b, s, strlen(s));
}

/* Escapes what the format requires: backslash and newline everywhere, and
 * the double quote inside label values. */
static void put_escaped(struct buf *b, const char *s, bool quote)
{
    for (; *s; s++) {
        if (*s == '\\')
            puts_(b, "\\\\");
        else if (*s == '\n')
            puts_(b, "\\n");
        else if (*s == '"' && quote)
            puts_(b, "\\\"");
        else
            put(b, s, 1);
    }
}

/* Shortest of %.15g / %.17g that reads back as d; Go's spellings otherwise. */
static void put_double(struct buf *b, double d)
{
    char s[40];

    if (isnan(d)) {
        puts_(b, "NaN");
        return;
    }
    if (isinf(d)) {
        puts_(b, d > 0 ? "+Inf" : "-Inf");
        return;
    }
    snprintf(s, sizeof(s), "%.15g", d);
    if (strtod(s, NULL) != d)
        snprintf(s, sizeof(s), "%.17g", d);
    puts_(b, s);
}

static void put_u64(struct buf *b, uint64_t v)
{
    char s[24];

    snprintf(s, sizeof(s), "%llu", (unsigned long long)v);
    puts_(b, s);
}

static void put_i64(struct buf *b, int64_t v)
{
    char s[24];

    snprintf(s, sizeof(s), "%lld", (long long)v);
    puts_(b, s);
}

/* name{labels...,le="x"} : suffix goes after the name, le may be NULL. */
static void put_name(struct buf *b, const struct bt_metric *f, const struct bt_series *s,
                     const char *suffix, const double *le)
{
    puts_(b, f->name);
    puts_(b, suffix);
    if (!f->n_labels && !le) {
        puts_(b, " ");
        return;
    }
    puts_(b, "{");
    for (size_t i = 0; i < f->n_labels; i++) {
        if (i)
            puts_(b, ",");
        puts_(b, f->labels[i]);
        puts_(b, "=\"");
        put_escaped(b, s->values[i], true);
        puts_(b, "\"");
    }
    if (le) {
        puts_(b, f->n_labels ? ",le=\"" : "le=\"");
        put_double(b, *le);
        puts_(b, "\"");
    }
    puts_(b, "} ");
}

static void put_series(struct buf *b, const struct bt_metric *f,
                       const struct bt_series *s)
{
    uint64_t total = 0;
    double inf = INFINITY;

    if (f->kind != HISTOGRAM) {
        put_name(b, f, s, "", NULL);
        put_i64(b, atomic_load_explicit(&s->value, memory_order_relaxed));
        puts_(b, "\n");
        return;
    }
    /* _count is the +Inf bucket, so the two always agree in one scrape */
    for (size_t i = 0; i <= f->n_bounds; i++) {
        total += atomic_load_explicit(&s->buckets[i], memory_order_relaxed);
        put_name(b, f, s, "_bucket", i < f->n_bounds ? &f->bounds[i] : &inf);
        put_u64(b, total);
        puts_(b, "\n");
    }
    put_name(b, f, s, "_sum", NULL);
    put_double(b, bits_double(atomic_load_explicit(&s->sum_bits, memory_order_relaxed)));
    puts_(b, "\n");
    put_name(b, f, s, "_count", NULL);
    put_u64(b, total);
    puts_(b, "\n");
}

static void put_family(struct buf *b, const struct bt_metric *f)
{
    const struct bt_series *order[BT_METRICS_MAX_SERIES];
    size_t n = 0;

    puts_(b, "# HELP ");
    puts_(b, f->name);
    puts_(b, " ");
    put_escaped(b, f->help, false);
    puts_(b, "\n# TYPE ");
    puts_(b, f->name);
    puts_(b, " ");
    puts_(b, kind_names[f->kind]);
    puts_(b, "\n");
    /* oldest first: the order the label sets appeared in */
    for (const struct bt_series *s =
             atomic_load_explicit(&f->series, memory_order_acquire);
         s && n < BT_METRICS_MAX_SERIES; s = s->next)
        order[n++] = s;
    while (n)
        put_series(b, f, order[--n]);
}

/* One sample of a family without labels, with its HELP and TYPE. */
static void put_single(struct buf *b, const char *name, const char *type,
                       const char *help, double v)
{
    puts_(b, "# HELP ");
    puts_(b, name);
    puts_(b, " ");
    puts_(b, help);
    puts_(b, "\n# TYPE ");
    puts_(b, name);
    puts_(b, " ");
    puts_(b, type);
    puts_(b, "\n");
    puts_(b, name);
    puts_(b, " ");
    put_double(b, v);
    puts_(b, "\n");
}

/* The families of Prometheus's client libraries, with their names and help,
 * read at each scrape; left out where /proc cannot be read. */
static void put_process(struct buf *b)
{
    struct bt_procstat ps;

    if (bt_procstat_read(&ps))
        return;
    put_single(b, "process_cpu_seconds_total", "counter",
               "Total user and system CPU time spent in seconds.", ps.cpu_seconds);
    put_single(b, "process_open_fds", "gauge", "Number of open file descriptors.",
               (double)ps.open_fds);
    put_single(b, "process_resident_memory_bytes", "gauge",
               "Resident memory size in bytes.", (double)ps.rss_bytes);
    put_single(b, "process_start_time_seconds", "gauge",
               "Start time of the process since unix epoch in seconds.", ps.start_time);
}

char *bt_metrics_render(struct bt_metrics *m, size_t *len)
{
    struct buf b = {0};

    if (!m)
        return NULL;
    put_process(&b);
    pthread_mutex_lock(&m->lock);
    for (const struct bt_metric *f = m->head; f; f = f->next)
        put_family(&b, f);
    pthread_mutex_unlock(&m->lock);
    if (b.oom || !b.p) {
        free(b.p);
        return NULL;
    }
    *len = b.len;
    return b.p;
}

/* ---- endpoint ---- */

static enum MHD_Result reply(struct MHD_Connection *conn, unsigned int status,
                             const char *text)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer(
        strlen(text), (void *)(uintptr_t)text, MHD_RESPMEM_MUST_COPY);
    enum MHD_Result ret;

    if (!resp)
        return MHD_NO;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                            "text/plain; charset=utf-8");
    ret = MHD_queue_response(conn, status, resp);
    MHD_destroy_response(resp);
    return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **req_cls)
{
    struct bt_metrics *m = cls;
    struct MHD_Response *resp;
    enum MHD_Result ret;
    char *text;
    size_t len = 0;

    (void)version;
    (void)upload_data;
    (void)upload_data_size;
    (void)req_cls;
    if (strcmp(url, "/metrics") && strcmp(url, "/healthz") && strcmp(url, "/readyz"))
        return reply(conn, MHD_HTTP_NOT_FOUND,
                     "not found: try /metrics, /healthz or /readyz\n");
    if (strcmp(method, "GET") && strcmp(method, "HEAD"))
        return reply(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "only GET\n");
    if (!strcmp(url, "/healthz")) { /* this thread answers: the process lives */
        char why[160], body[200];
        bool alive = bt_health_alive(why, sizeof(why));
        snprintf(body, sizeof(body), "%s%s\n",
                 alive ? "ok" : "stuck: ", alive ? "" : why);
        return reply(conn, alive ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE, body);
    }
    if (!strcmp(url, "/readyz")) {
        char why[160], body[200];
        bool ready = bt_health_ready(why, sizeof(why));
        snprintf(body, sizeof(body), "%s%s\n", ready ? "" : "not ready: ", why);
        return reply(conn, ready ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE, body);
    }
    if (!(text = bt_metrics_render(m, &len)))
        return reply(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n");
    if (!(resp = MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE))) {
        free(text);
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                            "text/plain; version=0.0.4; charset=utf-8");
    ret = MHD_queue_response(conn, MHD_HTTP_OK, resp);
    MHD_destroy_response(resp);
    return ret;
}

int bt_metrics_start(struct bt_metrics *m, const struct bt_config *cfg, char *errstr,
                     size_t errstr_size)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    const char *addr = cfg->metrics_addr && *cfg->metrics_addr ? cfg->metrics_addr : NULL;
    char port[16];
    unsigned int flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO;
    int rc, err;

    if (!m || cfg->metrics_port <= 0 || m->daemon)
        return 0;
    snprintf(port, sizeof(port), "%d", cfg->metrics_port);
    if ((rc = getaddrinfo(addr, port, &hints, &res))) {
        snprintf(errstr, errstr_size, "metrics-addr: cannot resolve \"%s\": %s",
                 addr ? addr : "", gai_strerror(rc));
        return BT_EINVAL;
    }
    if (res->ai_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    m->daemon =
        MHD_start_daemon(flags, (uint16_t)cfg->metrics_port, NULL, NULL, on_request, m,
                         MHD_OPTION_SOCK_ADDR, res->ai_addr, MHD_OPTION_CONNECTION_LIMIT,
                         32u, MHD_OPTION_CONNECTION_TIMEOUT, 10u, MHD_OPTION_END);
    err = errno;
    freeaddrinfo(res);
    if (!m->daemon) {
        snprintf(errstr, errstr_size, "cannot serve metrics on %s:%d: %s",
                 addr ? addr : "*", cfg->metrics_port, strerror(err));
        return BT_EIO;
    }
    bt_log(BT_LOG_INFO, "serving metrics: url=http://%s:%d/metrics", addr ? addr : "*",
           cfg->metrics_port);
    return 0;
}

void bt_metrics_stop(struct bt_metrics *m)
{
    if (!m || !m->daemon)
        return;
    MHD_stop_daemon(m->daemon);
    m->daemon = NULL;
}

/* ---- sources ---- */

int64_t bt_metrics_consumer_lag(rd_kafka_t *rk)
{
    rd_kafka_topic_partition_list_t *parts = NULL;
    int64_t lag = 0;

    if (!rk || rd_kafka_assignment(rk, &parts) || !parts)
        return 0;
    if (rd_kafka_position(rk, parts) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        for (int i = 0; i < parts->cnt; i++) {
            const rd_kafka_topic_partition_t *p = &parts->elems[i];
            int64_t low, high;
            if (p->offset < 0 ||
                rd_kafka_get_watermark_offsets(rk, p->topic, p->partition, &low, &high))
                continue;
            if (high > p->offset)
                lag += high - p->offset;
        }
    }
    rd_kafka_topic_partition_list_destroy(parts);
    return lag;
}
