/* Queues nobody serves; see unserved.h. */
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "kafka.h"
#include "log.h"
#include "redis.h"
#include "store.h"
#include "unserved.h"

/* Queues kept track of: their gauges stay as long as the process. */
#define MAX_QUEUES       256
#define LOG_EVERY_MS     60000
#define KAFKA_TIMEOUT_MS 2000

struct queue {
    char *name;
    struct bt_series *waiting;
    int64_t logged_ms; /* monotonic; 0: not logged since it was last fine */
};

struct bt_unserved {
    char events[300]; /* "<prefix>.events" */
    char *kp;         /* key prefix of the serving keys */
    rd_kafka_t *rk;   /* a consumer of the workflow group, never subscribed */
    struct bt_redis *r;
    struct bt_metric *family;
    struct queue queues[MAX_QUEUES];
    size_t n_queues;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv; /* on CLOCK_MONOTONIC */
    bool stop, started;
};

/* The queue whose events topic is topic, or NULL: "<prefix>.events" is
 * "default", "<prefix>.events.<q>" is q. */
static const char *queue_of(const struct bt_unserved *u, const char *topic)
{
    size_t n = strlen(u->events);

    if (strncmp(topic, u->events, n))
        return NULL;
    if (!topic[n])
        return "default";
    return topic[n] == '.' && topic[n + 1] ? topic + n + 1 : NULL;
}

/* 1 when a live worker serves queue, 0 when none, -1 when Redis cannot tell. */
static int served(struct bt_unserved *u, const char *queue)
{
    char key[600];
    redisReply *reply = bt_redis_command(u->r, "EXISTS %s",
                                         bt_serving_key(u->kp, queue, key, sizeof(key)));
    int ret = reply && reply->type == REDIS_REPLY_INTEGER ? reply->integer > 0 : -1;

    freeReplyObject(reply);
    return ret;
}

/* Events on t's partitions past the workflow group's committed offsets (all
 * of them where it committed none), or -1 when Kafka cannot tell. */
static int64_t waiting(struct bt_unserved *u, const rd_kafka_metadata_topic_t *t)
{
    rd_kafka_topic_partition_list_t *parts =
        rd_kafka_topic_partition_list_new(t->partition_cnt);
    int64_t total;

    for (int i = 0; i < t->partition_cnt; i++) /* no position: the committed */
        rd_kafka_topic_partition_list_add(parts, t->topic, t->partitions[i].id);
    total = bt_kafka_waiting(u->rk, parts, KAFKA_TIMEOUT_MS, true);
    rd_kafka_topic_partition_list_destroy(parts);
    return total;
}

static struct queue *queue_state(struct bt_unserved *u, const char *name)
{
    struct queue *q;

    for (size_t i = 0; i < u->n_queues; i++)
        if (!strcmp(u->queues[i].name, name))
            return &u->queues[i];
    if (u->n_queues == MAX_QUEUES)
        return NULL;
    q = &u->queues[u->n_queues];
    if (!(q->name = strdup(name)))
        return NULL;
    q->waiting = bt_metrics_series(u->family, name);
    q->logged_ms = 0;
    u->n_queues++;
    return q;
}

static void report(struct bt_unserved *u, const char *topic, const char *queue, int64_t n)
{
    struct queue *q = queue_state(u, queue);
    int64_t now = bt_clock_mono_ms();

    if (!q)
        return;
    bt_metrics_set(q->waiting, n);
    if (n == 0) {
        q->logged_ms = 0;
    } else if (!q->logged_ms || now - q->logged_ms >= LOG_EVERY_MS) {
        bt_log(BT_LOG_WARN,
               "events wait on a queue no live worker serves: queue=%s waiting=%lld "
               "topic=%s",
               queue, (long long)n, topic);
        q->logged_ms = now;
    }
}

static void look(struct bt_unserved *u)
{
    const struct rd_kafka_metadata *md = NULL;

    if (rd_kafka_metadata(u->rk, 1, NULL, &md, KAFKA_TIMEOUT_MS))
        return; /* Kafka away: the next look */
    for (int i = 0; i < md->topic_cnt; i++) {
        const rd_kafka_metadata_topic_t *t = &md->topics[i];
        const char *queue = queue_of(u, t->topic);
        int is_served;
        int64_t n;
        if (!queue || t->err || (is_served = served(u, queue)) < 0)
            continue;
        n = is_served ? 0 : waiting(u, t);
        if (n >= 0)
            report(u, t->topic, queue, n);
    }
    rd_kafka_metadata_destroy(md);
    rd_kafka_poll(u->rk, 0); /* its log and error callbacks */
}

static void *run(void *arg)
{
    struct bt_unserved *u = arg;
    int64_t next = bt_clock_mono_ms() + BT_UNSERVED_FIRST_MS;

    pthread_mutex_lock(&u->mu);
    while (!u->stop) {
        int64_t now = bt_clock_mono_ms();
        if (now < next) {
            struct timespec ts;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            ts.tv_sec += (next - now) / 1000;
            ts.tv_nsec += (long)((next - now) % 1000) * 1000000;
            if (ts.tv_nsec >= 1000000000)
                ts.tv_sec++, ts.tv_nsec -= 1000000000;
            pthread_cond_timedwait(&u->cv, &u->mu, &ts);
            continue;
        }
        pthread_mutex_unlock(&u->mu);
        look(u);
        next = bt_clock_mono_ms() + BT_UNSERVED_EVERY_MS;
        pthread_mutex_lock(&u->mu);
    }
    pthread_mutex_unlock(&u->mu);
    return NULL;
}

static int init_sync(struct bt_unserved *u)
{
    pthread_condattr_t attr;
    int ret = pthread_condattr_init(&attr);

    if (!ret)
        ret = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    if (!ret)
        ret = pthread_cond_init(&u->cv, &attr);
    pthread_condattr_destroy(&attr);
    return ret ? ret : pthread_mutex_init(&u->mu, NULL);
}

struct bt_unserved *bt_unserved_start(const struct bt_config *cfg, struct bt_metrics *m,
                                      char *errstr, size_t errstr_size)
{
    struct bt_unserved *u = calloc(1, sizeof(*u));
    char group[300];

    snprintf(errstr, errstr_size, "out of memory");
    if (!u || init_sync(u)) {
        free(u);
        return NULL;
    }
    bt_kafka_topic(cfg, "events", u->events, sizeof(u->events));
    snprintf(group, sizeof(group), "%s.workflows", cfg->prefix);
    u->family = bt_metrics_gauge(m, "baton_queue_unserved_events",
                                 "Events waiting on the events topic of a queue no live "
                                 "worker serves: starts nothing runs yet.",
                                 "queue");
    if (!(u->kp = strdup(cfg->key_prefix)) ||
        !(u->rk = bt_kafka_consumer_new(cfg, group, NULL, NULL, errstr, errstr_size)) ||
        !(u->r = bt_store_redis_new(cfg, errstr, errstr_size)) ||
        pthread_create(&u->thread, NULL, run, u)) {
        bt_unserved_stop(u);
        return NULL;
    }
    u->started = true;
    return u;
}

void bt_unserved_stop(struct bt_unserved *u)
{
    if (!u)
        return;
    if (u->started) {
        pthread_mutex_lock(&u->mu);
        u->stop = true;
        pthread_cond_signal(&u->cv);
        pthread_mutex_unlock(&u->mu);
        pthread_join(u->thread, NULL);
    }
    if (u->rk) {
        rd_kafka_consumer_close(u->rk);
        rd_kafka_destroy(u->rk);
    }
    bt_redis_destroy(u->r);
    for (size_t i = 0; i < u->n_queues; i++)
        free(u->queues[i].name);
    free(u->kp);
    pthread_cond_destroy(&u->cv);
    pthread_mutex_destroy(&u->mu);
    free(u);
}
