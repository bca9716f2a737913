/* The workflow role. One batch of events at a time:
 *   decode -> load the instances not cached (one pipelined round trip; the
 *   start of a new one needs none: see assume_new) ->
 *   apply each event in order -> replay each touched instance once and
 *   commit its decision (commit.lua, pipelined: written to Redis 64
 *   instances at a time, as they are replayed; one wait for the replies) ->
 *   produce their commands.
 * The batch then waits "in flight" while the next ones are advanced: when
 * all its delivery reports are in (batches land oldest first), its outbox
 * entries are forgotten (sent with the next round trip) and its Kafka offsets
 * committed. So offsets never pass an event whose commands are not on Kafka,
 * and an instance's next events are applied to its cached, committed state.
 * A crash anywhere before an offset commit redelivers the batches from
 * there; redelivered events are recognised by their Kafka position (or by
 * seq/attempt) and dropped, and unsent commands are found again in the
 * outbox.
 * A worker reads the events topics of the queues it serves; an event for an
 * instance of another queue (a kcat user who wrote to baton.events) is
 * forwarded to that queue's topic, with the commands, before the offsets. */
#define _GNU_SOURCE /* asprintf */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "codec.h"
#include "err.h"
#include "failpoint.h"
#include "idmap.h"
#include "inbox.h"
#include "kafka.h"
#include "log.h"
#include "stop.h"
#include "replay.h"
#include "store.h"
#include "unseen.h"
#include "unsent.h"
#include "watchdog.h"
#include "wftask.h"

#define MAX_BATCH     1024
#define MAX_CACHED    200000
#define MAX_CONFLICTS 8
#define MAX_QUEUES    64
#define MAX_FLIGHTS   16 /* batches awaiting delivery reports */
#define LAND_EVERY_MS 2  /* poll slice while batches are in flight */
#define COMMIT_PART   64 /* instances replayed and sent to Redis at a time */

struct item {
    rd_kafka_message_t *rkm;      /* NULL for a local event (an eager task's outcome) */
    struct bt_local_event *local; /* from the inbox */
    struct bt_msg msg;
    struct bt_instance *inst;
    bool decoded;
    bool conflicted;
    bool assumed;   /* its instance taken for new without a load (a start) */
    bool forwarded; /* to the topic of its instance's queue */
    bool suspect;   /* refused by a cached instance that may be behind Redis */
    bool verified;  /* refused once already, by a fresh load: dead-letter it */
};

/* A batch whose decisions are committed and whose messages are on their way
 * to Kafka. Heap-allocated: queued messages point at its batch counters. */
struct flight {
    struct flight *next;
    struct bt_kafka_batch cmds; /* the commands' delivery reports */
    struct bt_kafka_batch dlq;  /* the dead letters' and forwarded events' */
    struct bt_delivered *sent;  /* per instance, the commands moved out of its delta */
    size_t n_sent, cap_sent;
    struct bt_delivered *held; /* eager tasks whose outcome the batch carried */
    size_t n_held;
    rd_kafka_topic_partition_list_t *offsets; /* to commit when landed */
    int64_t retry_at;                         /* mono ms: re-produce failed commands */
    int backoff_ms;
};

/* A touched instance before its commit, to count its status change. */
struct before {
    enum bt_status status;
    int64_t ver;
};

/* The batch being advanced: the events of one poll and the instances they
 * touch. Its flight collects the delivery reports of its commands and joins
 * the flights in the air once the batch is committed. */
struct batch {
    struct item items[MAX_BATCH];
    size_t n_items;
    struct bt_instance **touched; /* each once, in first-touch order */
    size_t n_touched, cap_touched;
    uint64_t no; /* batches so far: an instance's mark says it is touched */
    struct flight *flight;
};

struct bt_wftask {
    const struct bt_config *cfg;
    const bt_registry *reg;
    rd_kafka_t *consumer, *producer;
    struct bt_store *store;
    struct bt_idmap *cache;
    char *worker;
    char cluster[128];
    char *queues[MAX_QUEUES]; /* served workflow queues */
    size_t n_queues;
    struct batch batch;                /* the events being advanced */
    struct flight *flights, **landing; /* in flight, oldest first; tail link */
    int n_flights;
    struct bt_wftask_stats stats;
    struct bt_wftask_eager eager;      /* .submit NULL: off */
    struct bt_inbox inbox;             /* eager tasks' outcomes (inbox.h) */
    rd_kafka_queue_t *wake;            /* the consumer's queue: yielded on delivery */
    const volatile sig_atomic_t *stop; /* set: give up a batch being retried */
    uint64_t taken;                    /* events taken from Kafka or the inbox */
    struct bt_watchdog watchdog;
    rd_kafka_t *lookback;    /* bt_unsent_drop_delivered's reader */
    struct bt_unseen unseen; /* eager tasks of failed tries (unseen.h) */
    struct {
        struct bt_metric *started, *finished, *blocked_total, *in_flight, *blocked,
            *paused;
        struct bt_metric *timer_late;
        struct bt_series *events, *ignored, *dead, *conflicts, *batches, *round_trips,
            *lag, *forwarded, *eager;
        struct before *before; /* of each touched instance */
        size_t cap_before;
        int64_t lag_at;                  /* ms: when the consumer lag was last measured */
        struct bt_wftask_stats exported; /* what the series hold of stats */
        uint64_t round_trips_exported;
        int64_t lag_exported;
    } m;
};

static void destroy_instance(void *inst)
{
    bt_instance_destroy(inst);
}

static void land(struct bt_wftask *wt, int max_left, bool patient);
static bool stop_asked(const struct bt_wftask *wt);
static void forward_local(struct bt_wftask *wt, struct item *it);
static void flight_destroy(struct flight *f);

static void rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    struct bt_wftask *wt = opaque;

    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        bt_log(BT_LOG_INFO, "partitions assigned: count=%d", parts->cnt);
        bt_kafka_assign(rk, parts);
        return;
    }
    /* offsets of what was advanced here are committed before another worker
     * takes over; what we cached may go stale */
    land(wt, 0, false);
    bt_log(BT_LOG_INFO, "partitions revoked: count=%d cached=%zu", parts->cnt,
           bt_idmap_size(wt->cache));
    bt_idmap_clear(wt->cache, destroy_instance);
    bt_kafka_unassign(rk, parts);
}

static void register_metrics(struct bt_wftask *wt, struct bt_metrics *m)
{
    wt->m.started =
        bt_metrics_counter(m, "baton_instances_started_total",
                           "Instances started, by workflow type.", "workflow");
    wt->m.finished = bt_metrics_counter(m, "baton_instances_finished_total",
                                        "Instances that reached a final status "
                                        "(completed, failed, cancelled, terminated).",
                                        "workflow,status");
    wt->m.blocked_total = bt_metrics_counter(
        m, "baton_instances_blocked_total",
        "Times an instance was blocked (its code no longer matches its journal).",
        "workflow");
    wt->m.in_flight = bt_metrics_gauge(
        m, "baton_instances_in_flight",
        "Running instances: started or unblocked minus finished or blocked here.",
        "workflow");
    wt->m.blocked =
        bt_metrics_gauge(m, "baton_instances_blocked",
                         "Blocked instances: blocked minus unblocked here.", "workflow");
    wt->m.paused = bt_metrics_gauge(
        m, "baton_instances_paused",
        "Paused instances: paused minus resumed, reset or ended here.", "workflow");
    wt->m.events = bt_metrics_series(bt_metrics_counter(
        m, "baton_events_applied_total", "Events applied to instances.", NULL));
    wt->m.ignored = bt_metrics_series(
        bt_metrics_counter(m, "baton_events_ignored_total",
                           "Events ignored as redelivered or stale.", NULL));
    wt->m.conflicts = bt_metrics_series(bt_metrics_counter(
        m, "baton_commit_conflicts_total",
        "Commit rounds redone because another worker had moved an instance on.", NULL));
    wt->m.eager = bt_metrics_series(bt_metrics_counter(
        m, "baton_tasks_eager_total",
        "Tasks run by this worker's activity role without Kafka (--eager).", NULL));
    wt->m.forwarded = bt_metrics_series(bt_metrics_counter(
        m, "baton_events_forwarded_total",
        "Events read on another queue's topic and forwarded to their instance's.", NULL));
    wt->m.batches = bt_metrics_series(bt_metrics_counter(
        m, "baton_event_batches_total", "Batches of events polled and advanced.", NULL));
    wt->m.dead =
        bt_metrics_series(bt_metrics_counter(m, "baton_dead_letters_total",
                                             "Messages sent to the DLQ.", "role"),
                          "workflow");
    wt->m.round_trips = bt_metrics_series(
        bt_metrics_counter(m, "baton_redis_round_trips_total",
                           "Round trips to Redis (a pipeline counts once).", "role"),
        "workflow");
    wt->m.timer_late = bt_metrics_histogram(
        m, "baton_timer_applied_lateness_seconds",
        "How long after its due time a timer's event was applied to its instance (end "
        "to end: the scheduler, Kafka and any rebalance on the way).",
        "kind",
        (const double[]){0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30},
        12);
    wt->m.lag = bt_metrics_series(
        bt_metrics_gauge(m, "baton_kafka_consumer_lag",
                         "Messages behind the high watermark on the assigned partitions.",
                         "role"),
        "workflow");
}

/* Adds what counter grew since it was last exported: several workflow
 * threads share the series. */
static void export_delta(struct bt_series *s, uint64_t now, uint64_t *exported)
{
    bt_metrics_add(s, (int64_t)(now - *exported));
    *exported = now;
}

/* Mirrors the counters of this thread into the registry. */
static void export_metrics(struct bt_wftask *wt)
{
    struct bt_wftask_stats *x = &wt->m.exported;
    int64_t now = bt_clock_now_ms();

    export_delta(wt->m.events, wt->stats.events, &x->events);
    export_delta(wt->m.ignored, wt->stats.duplicates, &x->duplicates);
    export_delta(wt->m.dead, wt->stats.dead, &x->dead);
    export_delta(wt->m.conflicts, wt->stats.conflicts, &x->conflicts);
    export_delta(wt->m.forwarded, wt->stats.forwarded, &x->forwarded);
    export_delta(wt->m.eager, wt->stats.eager, &x->eager);
    export_delta(wt->m.batches, wt->stats.batches, &x->batches);
    export_delta(wt->m.round_trips, bt_redis_round_trips(bt_store_redis(wt->store)),
                 &wt->m.round_trips_exported);
    if (wt->m.lag && now - wt->m.lag_at >= 1000) {
        int64_t lag = bt_metrics_consumer_lag(wt->consumer);
        bt_metrics_add(wt->m.lag, lag - wt->m.lag_exported); /* a sum over threads */
        wt->m.lag_exported = lag;
        wt->m.lag_at = now;
    }
}

/* Remembers each touched instance's committed status and version. */
static void before_commit(struct bt_wftask *wt)
{
    if (wt->batch.n_touched > wt->m.cap_before) {
        struct before *grown =
            realloc(wt->m.before, wt->batch.n_touched * sizeof(*grown));
        BT_ASSERT(grown);
        wt->m.before = grown;
        wt->m.cap_before = wt->batch.n_touched;
    }
    for (size_t i = 0; i < wt->batch.n_touched; i++)
        wt->m.before[i] = (struct before){wt->batch.touched[i]->delta.old_status,
                                          wt->batch.touched[i]->ver};
}

/* Counts the status changes the commit made durable: an instance's version
 * advances only when its commit went through, whatever the call returned. */
static void after_commit(struct bt_wftask *wt)
{
    for (size_t i = 0; i < wt->batch.n_touched; i++) {
        const struct bt_instance *inst = wt->batch.touched[i];
        const char *type = inst->type ? inst->type : "";
        enum bt_status from = wt->m.before[i].status, to = inst->status;
        if (inst->ver == wt->m.before[i].ver || from == to)
            continue;
        if (from == BT_STATUS_NONE)
            bt_metrics_add(bt_metrics_series(wt->m.started, type), 1);
        if (bt_status_final(to))
            bt_metrics_add(bt_metrics_series(wt->m.finished, type, bt_status_name(to)),
                           1);
        if (to == BT_STATUS_BLOCKED)
            bt_metrics_add(bt_metrics_series(wt->m.blocked_total, type), 1);
        bt_metrics_add(bt_metrics_series(wt->m.in_flight, type),
                       (to == BT_STATUS_RUNNING) - (from == BT_STATUS_RUNNING));
        bt_metrics_add(bt_metrics_series(wt->m.blocked, type),
                       (to == BT_STATUS_BLOCKED) - (from == BT_STATUS_BLOCKED));
        bt_metrics_add(bt_metrics_series(wt->m.paused, type),
                       (to == BT_STATUS_PAUSED) - (from == BT_STATUS_PAUSED));
    }
}

struct bt_wftask *bt_wftask_new(const struct bt_config *cfg, const bt_registry *reg,
                                struct bt_metrics *metrics, const char *worker_name,
                                char *errstr, size_t errstr_size)
{
    struct bt_wftask *wt = calloc(1, sizeof(*wt));
    char group[300], *list = NULL, *save = NULL;
    char topics[MAX_QUEUES][300];
    const char *names[MAX_QUEUES];
    char *id = NULL;

    if (!wt)
        return NULL;
    wt->cfg = cfg;
    wt->reg = reg;
    wt->worker = strdup(worker_name);
    wt->cache = bt_idmap_new();
    wt->landing = &wt->flights;
    bt_inbox_init(&wt->inbox);
    register_metrics(wt, metrics);
    bt_watchdog_init(&wt->watchdog, "workflow", cfg->watchdog_ms, metrics);
    snprintf(group, sizeof(group), "%s.workflows", cfg->prefix);
    list = strdup(cfg->queues);
    for (char *q = strtok_r(list, ", ", &save); q && wt->n_queues < MAX_QUEUES;
         q = strtok_r(NULL, ", ", &save)) {
        char *suffix = bt_events_suffix(q);
        bt_kafka_topic(cfg, suffix, topics[wt->n_queues], sizeof(topics[0]));
        names[wt->n_queues] = topics[wt->n_queues];
        wt->queues[wt->n_queues++] = strdup(q);
        free(suffix);
    }
    free(list);
    if (!wt->n_queues) {
        snprintf(errstr, errstr_size, "queues: no queue given");
        goto fail;
    }
    if (!(wt->store = bt_store_new(cfg, errstr, errstr_size)) ||
        !(wt->producer = bt_kafka_producer_new(cfg, errstr, errstr_size)) ||
        !(wt->consumer =
              bt_kafka_consumer_new(cfg, group, rebalance_cb, wt, errstr, errstr_size)))
        goto fail;
    if (bt_kafka_subscribe(wt->consumer, names, wt->n_queues)) {
        snprintf(errstr, errstr_size, "cannot subscribe to %s", names[0]);
        goto fail;
    }
    wt->wake = rd_kafka_queue_get_consumer(wt->consumer);
    /* the cluster id qualifies Kafka offsets: a new cluster restarts them at 0 */
    id = rd_kafka_clusterid(wt->consumer, 5000);
    snprintf(wt->cluster, sizeof(wt->cluster), "%s", id ? id : "unknown");
    if (id)
        rd_kafka_mem_free(wt->consumer, id);
    return wt;
fail:
    bt_wftask_destroy(wt);
    return NULL;
}

/* At the stop: the outcomes of eager tasks not applied yet go to Kafka, for
 * whoever owns their instances next (unsent.h). */
static void hand_off_inbox(struct bt_wftask *wt)
{
    struct bt_handoff h[256] = {0};
    struct bt_msg msgs[256];
    size_t n = 0;
    char errstr[256];

    for (struct bt_local_event *ev; (ev = bt_inbox_pop(&wt->inbox));) {
        if (n < 256 &&
            !bt_codec_decode(ev->payload, ev->len, (size_t)wt->cfg->max_payload, &msgs[n],
                             errstr, sizeof(errstr))) {
            h[n] = (struct bt_handoff){strdup(ev->suffix), msgs[n].id,     NULL, ev->len,
                                       msgs[n].seq,        msgs[n].attempt};
            h[n].payload = strdup(ev->payload);
            BT_ASSERT(h[n].suffix && h[n].payload);
            n++;
        } /* else the sweep sends its task again once this worker is gone */
        bt_local_event_free(ev);
    }
    bt_unsent_hand_off(wt->producer, wt->cfg, wt->store, wt->worker, h, n);
    for (size_t i = 0; i < n; i++) {
        free((char *)(uintptr_t)h[i].suffix);
        free((void *)(uintptr_t)h[i].payload);
        bt_msg_release(&msgs[i]);
    }
}

void bt_wftask_destroy(struct bt_wftask *wt)
{
    if (!wt)
        return;
    if (wt->consumer && wt->producer && wt->store) {
        bt_stop_step("workflow role: last batch");
        land(wt, 0, false);
        bt_stop_step("workflow role: eager hand-off");
        hand_off_inbox(wt);
    }
    bt_stop_step("workflow role: redis replies");
    if (wt->store)
        bt_store_settle(wt->store);
    if (wt->wake)
        rd_kafka_queue_destroy(wt->wake);
    if (wt->consumer) {
        bt_stop_step("workflow role: consumer close");
        rd_kafka_consumer_close(wt->consumer);
        rd_kafka_destroy(wt->consumer);
    }
    if (wt->lookback) {
        bt_stop_step("workflow role: lookback close");
        rd_kafka_consumer_close(wt->lookback);
        rd_kafka_destroy(wt->lookback);
    }
    if (wt->producer) {
        bt_stop_step("workflow role: producer close");
        rd_kafka_flush(wt->producer, 5000);
        rd_kafka_destroy(wt->producer);
    }
    /* not landed: uncommitted, so redelivered to the next owner */
    while (wt->flights) {
        struct flight *f = wt->flights;
        wt->flights = f->next;
        flight_destroy(f);
    }
    flight_destroy(wt->batch.flight);
    bt_store_destroy(wt->store);
    bt_idmap_destroy(wt->cache, destroy_instance);
    /* outcomes that came too late for this worker's own batches */
    bt_inbox_release(&wt->inbox);
    free(wt->batch.touched);
    bt_unseen_release(&wt->unseen);
    free(wt->m.before);
    for (size_t i = 0; i < wt->n_queues; i++)
        free(wt->queues[i]);
    free(wt->worker);
    free(wt);
}

const struct bt_wftask_stats *bt_wftask_stats(const struct bt_wftask *wt)
{
    return &wt->stats;
}

void bt_wftask_set_eager(struct bt_wftask *wt, const struct bt_wftask_eager *eager)
{
    wt->eager = *eager;
    bt_store_set_holder(wt->store, wt->worker); /* see unseen.h */
}

void bt_wftask_deliver(void *ctx, const char *suffix, const char *id, const char *payload,
                       size_t len)
{
    struct bt_wftask *wt = ctx;

    bt_inbox_push(&wt->inbox, suffix, id, payload, len);
    rd_kafka_queue_yield(wt->wake); /* the workflow thread may be in a poll */
}

/* ---- producing ---- */

static int produce(struct bt_wftask *wt, const char *suffix, const char *key,
                   const char *payload, size_t len)
{
    char topic[512];

    bt_kafka_topic(wt->cfg, suffix, topic, sizeof(topic));
    return bt_kafka_produce(wt->producer, topic, key, strlen(key), payload, len,
                            &wt->batch.flight->cmds);
}

static void dead_letter(struct bt_wftask *wt, const struct item *it, const char *reason)
{
    const rd_kafka_message_t *rkm = it->rkm;
    struct bt_msg dl;
    char topic[512];
    char *bytes = NULL;
    size_t len;

    if (!rkm) { /* made by this worker: a bug, not input */
        bt_log(BT_LOG_ERROR, "local event refused: %s workflow=%s", reason,
               it->local->id);
        return;
    }
    bt_log(BT_LOG_WARN, "dead letter: %s topic=%s partition=%d offset=%lld", reason,
           rd_kafka_topic_name(rkm->rkt), rkm->partition, (long long)rkm->offset);
    wt->stats.dead++;
    if (bt_codec_dead_letter(&dl, reason, rd_kafka_topic_name(rkm->rkt), rkm->partition,
                             rkm->offset, rkm->key, rkm->key_len, rkm->payload, rkm->len))
        return;
    dl.ts = bt_clock_now_ms();
    if ((bytes = bt_codec_encode_dead_letter(&dl, (size_t)wt->cfg->max_payload, &len))) {
        bt_kafka_topic(wt->cfg, "dlq", topic, sizeof(topic));
        bt_kafka_produce(wt->producer, topic, rkm->key, rkm->key ? rkm->key_len : 0,
                         bytes, len, &wt->batch.flight->dlq);
    }
    free(bytes);
    bt_msg_release(&dl);
}

/* ---- flights ---- */

static void sent_release(struct flight *f)
{
    for (size_t i = 0; i < f->n_sent; i++) {
        for (size_t c = 0; c < f->sent[i].n; c++)
            bt_command_release(&f->sent[i].cmds[c]);
        free(f->sent[i].cmds);
        free(f->sent[i].id);
    }
    f->n_sent = 0;
}

static void flight_destroy(struct flight *f)
{
    if (!f)
        return;
    sent_release(f);
    free(f->sent);
    for (size_t i = 0; i < f->n_held; i++) {
        bt_command_release(f->held[i].cmds);
        free(f->held[i].cmds);
        free(f->held[i].id);
    }
    free(f->held);
    if (f->offsets)
        rd_kafka_topic_partition_list_destroy(f->offsets);
    free(f);
}

static bool in_air(const struct flight *f)
{
    return __atomic_load_n(&f->cmds.pending, __ATOMIC_ACQUIRE) > 0 ||
           __atomic_load_n(&f->dlq.pending, __ATOMIC_ACQUIRE) > 0;
}

/* Sends a flight's commands again after a failed delivery (its reports are
 * all in): duplicates are dropped downstream, a lost command is not. */
static void resend(struct bt_wftask *wt, struct flight *f)
{
    bt_log(BT_LOG_WARN, "commands not delivered, sending again: %s backoff_ms=%d",
           rd_kafka_err2str(f->cmds.err), f->backoff_ms);
    f->cmds = (struct bt_kafka_batch){0};
    for (size_t i = 0; i < f->n_sent; i++)
        for (size_t c = 0; c < f->sent[i].n; c++) {
            const struct bt_command *cmd = &f->sent[i].cmds[c];
            char topic[512];
            bt_kafka_topic(wt->cfg, cmd->topic, topic, sizeof(topic));
            if (bt_kafka_produce(wt->producer, topic, cmd->key, strlen(cmd->key),
                                 cmd->payload, cmd->len, &f->cmds))
                f->cmds.failed++; /* not queued: try again after the backoff */
        }
    f->retry_at = bt_clock_mono_ms() + f->backoff_ms;
    f->backoff_ms = f->backoff_ms < 5000 ? f->backoff_ms * 2 : f->backoff_ms;
}

/* Whether flight f delivers a result. */
static bool sends_result(const struct flight *f)
{
    for (size_t i = 0; i < f->n_sent; i++)
        for (size_t c = 0; c < f->sent[i].n; c++)
            if (!strcmp(f->sent[i].cmds[c].topic, "results"))
                return true;
    return false;
}

/* Lands the flights whose messages are all delivered, oldest first: forgets
 * their commands from the outbox and commits their offsets. Then, when more
 * than max_left are in flight, waits for the oldest; patient: until they
 * land, else gives up after one wait (at shutdown, or when Kafka is gone
 * during a revoke: their offsets stay uncommitted, which only redelivers). */
static void land(struct bt_wftask *wt, int max_left, bool patient)
{
    rd_kafka_poll(wt->producer, 0);
    while (wt->flights) {
        struct flight *f = wt->flights;
        rd_kafka_resp_err_t err;
        if (in_air(f) || (f->cmds.failed && bt_clock_mono_ms() < f->retry_at)) {
            if (wt->n_flights <= max_left)
                break;
            if (bt_kafka_wait(wt->producer, &f->cmds, 10000) == BT_ETIMEDOUT ||
                bt_kafka_wait(wt->producer, &f->dlq, 10000) == BT_ETIMEDOUT) {
                bt_log(BT_LOG_WARN, "commands not delivered yet, waiting");
                if (!patient || stop_asked(wt))
                    break;
            }
            if (f->cmds.failed && !in_air(f)) {
                int64_t left = f->retry_at - bt_clock_mono_ms();
                if ((!patient || stop_asked(wt)) && left > 0)
                    break;
                if (left > 0)
                    bt_clock_sleep_ms((int)left);
            }
            continue;
        }
        if (f->cmds.failed) {
            resend(wt, f);
            continue;
        }
        if (bt_failpoint("exit-before-forgetting-a-result") && sends_result(f)) {
            bt_log(BT_LOG_WARN, "failpoint exit-before-forgetting-a-result: exiting");
            _exit(9);
        }
        /* kept by the store until Redis answers it, across restarts */
        if (bt_store_forget(wt->store, f->sent, f->n_sent) ||
            bt_store_forget(wt->store, f->held, f->n_held))
            bt_log(BT_LOG_WARN, "cannot clear the outbox; commands may be sent twice");
        if (f->offsets->cnt && (err = rd_kafka_commit(wt->consumer, f->offsets, 1)))
            bt_log(BT_LOG_WARN, "cannot commit offsets: %s", rd_kafka_err2str(err));
        if (!(wt->flights = f->next))
            wt->landing = &wt->flights;
        wt->n_flights--;
        flight_destroy(f);
    }
}

/* True when the command field of instance id is on its way in a flight. */
static bool flying(const struct bt_wftask *wt, const char *id, const char *field)
{
    for (const struct flight *f = wt->flights; f; f = f->next)
        for (size_t i = 0; i < f->n_sent; i++)
            if (!strcmp(f->sent[i].id, id))
                for (size_t c = 0; c < f->sent[i].n; c++)
                    if (!strcmp(f->sent[i].cmds[c].field, field))
                        return true;
    return false;
}

/* Drops the outbox commands of a freshly loaded instance that this worker
 * has in flight already (they are forgotten when they land). */
static void drop_flying(const struct bt_wftask *wt, struct bt_instance *inst)
{
    struct bt_delta *d = &inst->delta;
    size_t k = 0;

    for (size_t c = 0; c < d->n_cmds; c++) {
        if (!flying(wt, inst->id, d->cmds[c].field)) {
            d->cmds[k++] = d->cmds[c];
            continue;
        }
        bt_command_release(&d->cmds[c]);
    }
    d->n_cmds = k;
}

/* ---- one batch ---- */

static void touch(struct bt_wftask *wt, struct bt_instance *inst)
{
    if (inst->mark == wt->batch.no)
        return;
    inst->mark = wt->batch.no;
    if (wt->batch.n_touched == wt->batch.cap_touched) {
        size_t cap = wt->batch.cap_touched ? wt->batch.cap_touched * 2 : 256;
        struct bt_instance **grown = realloc(wt->batch.touched, cap * sizeof(*grown));
        BT_ASSERT(grown);
        wt->batch.touched = grown;
        wt->batch.cap_touched = cap;
    }
    wt->batch.touched[wt->batch.n_touched++] = inst;
}

static void decode_all(struct bt_wftask *wt)
{
    char errstr[512];

    for (size_t i = 0; i < wt->batch.n_items; i++) {
        struct item *it = &wt->batch.items[i];
        int rc = bt_codec_decode(it->rkm ? it->rkm->payload : it->local->payload,
                                 it->rkm ? it->rkm->len : it->local->len,
                                 (size_t)wt->cfg->max_payload, &it->msg, errstr,
                                 sizeof(errstr));
        if (rc) {
            dead_letter(wt, it, errstr);
            continue;
        }
        if (it->msg.type >= BT_MSG_TASK) {
            snprintf(errstr, sizeof(errstr),
                     "type: a %s message does not belong on the "
                     "events topic",
                     bt_msg_type_name(it->msg.type));
            dead_letter(wt, it, errstr);
            bt_msg_release(&it->msg);
            continue;
        }
        it->decoded = true;
    }
}

static bool serves(const struct bt_wftask *wt, const char *queue);

/* Whether the start event of an instance not cached can skip the load: almost
 * every start is of a new instance, and commit.lua refuses a commit that
 * expects version 0 of an instance that exists (a conflict: the redo loads
 * it and finds the duplicate). Only a start that can succeed here: its type
 * known and its queue served (it is not forwarded on a guess). */
static bool assume_new(const struct bt_wftask *wt, const struct item *it)
{
    return it->msg.type == BT_MSG_START &&
           bt_registry_workflow(wt->reg, it->msg.workflow) && serves(wt, it->msg.queue);
}

/* Loads (one round trip) every instance of the pending items not cached, but
 * those of new instances' starts (first round only). */
static int resolve(struct bt_wftask *wt, bool only_conflicted)
{
    struct bt_instance **load = NULL;
    size_t n_load = 0;
    int ret = 0;

    load = malloc(wt->batch.n_items * sizeof(*load));
    BT_ASSERT(load);
    for (size_t i = 0; i < wt->batch.n_items; i++) {
        struct item *it = &wt->batch.items[i];
        if (!it->decoded || it->forwarded || (only_conflicted && !it->conflicted))
            continue;
        it->assumed = false;
        it->inst = bt_idmap_get(wt->cache, it->msg.id);
        if (it->inst)
            continue;
        if (it->local) {
            /* not cached: its partition went to another worker meanwhile,
             * which applies it from Kafka */
            forward_local(wt, it);
            continue;
        }
        it->inst = bt_instance_new(it->msg.id);
        BT_ASSERT(it->inst);
        bt_idmap_put(wt->cache, it->msg.id, it->inst);
        if (!only_conflicted && assume_new(wt, it)) {
            it->assumed = true;
            continue;
        }
        load[n_load++] = it->inst;
    }
    if (n_load) {
        size_t n_unsent = 0;
        ret = bt_store_load(wt->store, load, n_load);
        for (size_t i = 0; i < n_load; i++) {
            load[i]->delta.old_status = load[i]->status;
            if (load[i]->delta.n_cmds)
                bt_unseen_keep(&wt->unseen, load[i]);
            if (load[i]->delta.n_cmds && wt->flights)
                drop_flying(wt, load[i]);
            if (load[i]->delta.n_cmds) /* unsent commands of a dead worker */
                load[n_unsent++] = load[i];
        }
        bt_unsent_drop_delivered(&wt->lookback, wt->cfg, wt->store, wt->worker, load,
                                 n_unsent);
        for (size_t i = 0; i < n_unsent; i++)
            if (load[i]->delta.n_cmds) /* send them */
                touch(wt, load[i]);
    }
    free(load);
    return ret;
}

static bool serves(const struct bt_wftask *wt, const char *queue)
{
    if (!queue)
        queue = "default";
    for (size_t i = 0; i < wt->n_queues; i++)
        if (!strcmp(wt->queues[i], queue))
            return true;
    return false;
}

/* The queue whose workers run the item's instance, when this worker does not
 * serve it: a start names it, other events find it in the instance. */
static const char *foreign_queue(const struct bt_wftask *wt, const struct item *it)
{
    const char *queue;

    if (it->msg.type == BT_MSG_START && it->inst->status == BT_STATUS_NONE)
        queue = it->msg.queue;
    else if (it->inst->status != BT_STATUS_NONE)
        queue = it->inst->queue;
    else
        return NULL;
    return serves(wt, queue) ? NULL : queue ? queue : "default";
}

static void forward_local(struct bt_wftask *wt, struct item *it)
{
    char topic[512];

    bt_kafka_topic(wt->cfg, it->local->suffix, topic, sizeof(topic));
    if (bt_kafka_produce(wt->producer, topic, it->local->id, strlen(it->local->id),
                         it->local->payload, it->local->len, &wt->batch.flight->dlq) == 0)
        wt->stats.forwarded++;
    it->forwarded = true;
}

static void forward(struct bt_wftask *wt, struct item *it, const char *queue)
{
    char *suffix = bt_events_suffix(queue);
    const rd_kafka_message_t *rkm = it->rkm;
    char topic[512];

    bt_kafka_topic(wt->cfg, suffix, topic, sizeof(topic));
    bt_log(BT_LOG_DEBUG, "forwarded: workflow=%s type=%s from=%s to=%s", it->msg.id,
           bt_msg_type_name(it->msg.type), rd_kafka_topic_name(rkm->rkt), topic);
    if (bt_kafka_produce(wt->producer, topic, rkm->key, rkm->key ? rkm->key_len : 0,
                         rkm->payload, rkm->len, &wt->batch.flight->dlq) == 0)
        wt->stats.forwarded++;
    free(suffix);
    it->forwarded = true;
}

static void apply_all(struct bt_wftask *wt, const struct bt_replay_env *env,
                      bool only_conflicted)
{
    /* "<cluster>/<topic>/<partition>", written once per run of a partition's
     * events (a batch holds few partitions; snprintf per event cost 2 % of
     * the worker) */
    char pos[512] = "";
    const rd_kafka_topic_t *pos_rkt = NULL;
    int32_t pos_partition = -1;

    for (size_t i = 0; i < wt->batch.n_items; i++) {
        struct item *it = &wt->batch.items[i];
        const char *why;
        int64_t ts;
        int rc;

        if (!it->decoded || it->forwarded || (only_conflicted && !it->conflicted))
            continue;
        it->conflicted = false;
        if ((why = foreign_queue(wt, it))) {
            if (it->local)
                forward_local(wt, it);
            else
                forward(wt, it, why);
            continue;
        }
        if (it->local) { /* no Kafka position: seq and attempt tell duplicates */
            rc = bt_replay_apply(it->inst, &it->msg, env, &why);
            if (rc == 0) {
                wt->stats.events++;
                touch(wt, it->inst);
            } else {
                wt->stats.duplicates++;
            }
            continue;
        }
        if (it->rkm->rkt != pos_rkt || it->rkm->partition != pos_partition) {
            pos_rkt = it->rkm->rkt;
            pos_partition = it->rkm->partition;
            snprintf(pos, sizeof(pos), "%s/%s/%d", wt->cluster,
                     rd_kafka_topic_name(pos_rkt), pos_partition);
        }
        ts = rd_kafka_message_timestamp(it->rkm, NULL);
        /* a redelivery sits at or below the last applied offset and was
         * written no later than it: a new cluster (the embedded one restarted,
         * whose id may repeat) restarts offsets, but not the clock */
        if (it->inst->kpos && !strcmp(it->inst->kpos, pos) &&
            it->rkm->offset <= it->inst->koff && ts <= it->inst->kts) {
            wt->stats.duplicates++;
            continue;
        }
        rc = bt_replay_apply(it->inst, &it->msg, env, &why);
        if (rc == 0) {
            if (!it->inst->kpos || strcmp(it->inst->kpos, pos)) {
                free(it->inst->kpos);
                it->inst->kpos = strdup(pos);
                it->inst->kpos_stored = false;
            }
            it->inst->koff = it->rkm->offset;
            it->inst->kts = ts;
            it->inst->koff_stored = false;
            wt->stats.events++;
            touch(wt, it->inst);
            if (it->msg.type == BT_MSG_TIMER && it->msg.due > 0)
                bt_metrics_observe(
                    bt_metrics_series(wt->m.timer_late, it->msg.kind),
                    (double)(env->now_ms > it->msg.due ? env->now_ms - it->msg.due : 0) /
                        1000.0);
        } else if (rc == BT_EEXIST) {
            bt_log(BT_LOG_DEBUG, "ignored: %s workflow=%s type=%s seq=%lld attempt=%d",
                   why, it->msg.id, bt_msg_type_name(it->msg.type),
                   (long long)it->msg.seq, it->msg.attempt);
            wt->stats.duplicates++;
        } else if (rc == BT_EINVALMSG && !it->verified) {
            /* the cached copy may be behind Redis (another worker committed
             * the instance after this one loaded it: one paused past its
             * session that woke up): judged again against a fresh load */
            it->suspect = true;
        } else {
            char reason[600];
            snprintf(reason, sizeof(reason), "%s: %s \"%s\"",
                     bt_msg_type_name(it->msg.type), why,
                     it->msg.type == BT_MSG_START ? it->msg.workflow : it->msg.id);
            dead_letter(wt, it, reason);
        }
    }
}

static void replay_range(struct bt_wftask *wt, const struct bt_replay_env *env,
                         size_t from, size_t to)
{
    for (size_t i = from; i < to; i++) {
        struct bt_instance *inst = wt->batch.touched[i];
        if (bt_replay_run(inst, env) == BT_ENOENT)
            bt_log(BT_LOG_ERROR,
                   "workflow type not registered on this worker: %s workflow=%s",
                   inst->type, inst->id);
    }
}

/* Forgets the instances of suspect items (not committed this round), and
 * marks all their items to be redone with a fresh load. Returns how many. */
static size_t reload_suspects(struct bt_wftask *wt)
{
    size_t n = 0;

    for (size_t i = 0; i < wt->batch.n_items; i++) {
        struct bt_instance *inst = wt->batch.items[i].inst;
        if (!wt->batch.items[i].suspect || !inst)
            continue;
        n++;
        for (size_t j = 0; j < wt->batch.n_items; j++) {
            struct item *it = &wt->batch.items[j];
            if (it->inst != inst)
                continue;
            it->verified |= it->suspect;
            it->suspect = false;
            it->conflicted = true;
            it->assumed = false;
            it->inst = NULL;
        }
        for (size_t t = 0; t < wt->batch.n_touched;) {
            if (wt->batch.touched[t] == inst)
                wt->batch.touched[t] = wt->batch.touched[--wt->batch.n_touched];
            else
                t++;
        }
        bt_idmap_del(wt->cache, inst->id);
        bt_instance_destroy(inst);
    }
    return n;
}

/* Forgets instances whose commit lost a race; their items are redone.
 * Returns how many; *raced: whether one was loaded, not just assumed new. */
static size_t drop_conflicts(struct bt_wftask *wt, const int *results, bool *raced)
{
    size_t n = 0;

    *raced = false;
    for (size_t i = 0; i < wt->batch.n_touched; i++) {
        struct bt_instance *inst = wt->batch.touched[i];
        bool assumed = false;
        if (results[i] != BT_ECONFLICT)
            continue;
        n++;
        for (size_t j = 0; j < wt->batch.n_items; j++)
            if (wt->batch.items[j].inst == inst) {
                assumed |= wt->batch.items[j].assumed;
                wt->batch.items[j].conflicted = true;
                wt->batch.items[j].assumed = false;
                wt->batch.items[j].inst = NULL;
            }
        *raced |= !assumed;
        bt_idmap_del(wt->cache, inst->id);
        bt_instance_destroy(inst);
        wt->batch.touched[i] = NULL;
    }
    /* keep the committed ones: their commands still have to be produced */
    size_t k = 0;
    for (size_t i = 0; i < wt->batch.n_touched; i++)
        if (wt->batch.touched[i])
            wt->batch.touched[k++] = wt->batch.touched[i];
    wt->batch.n_touched = k;
    return n;
}

/* The room each queue's activity role had for eager tasks, asked once per
 * batch and used up as its parts are marked. */
struct eager_room {
    struct {
        const char *queue;
        int left;
    } seen[8];
    size_t n_seen;
};

/* Eager dispatch: marks the tasks this worker's activity role can start at
 * once (its queue served here, a thread free), before the commit, which then
 * leaves them out of the outbox. Their start-to-close timers stay: a crash
 * retries them like any lost attempt. */
static void mark_eager(struct bt_wftask *wt, struct eager_room *room, size_t from,
                       size_t to)
{
    if (!wt->eager.submit)
        return;
    for (size_t i = from; i < to; i++) {
        struct bt_delta *d = &wt->batch.touched[i]->delta;
        for (size_t c = 0; c < d->n_cmds; c++) {
            struct bt_command *cmd = &d->cmds[c];
            const char *queue = cmd->topic + strlen("tasks.");
            size_t k;
            if (!cmd->eager_ok || cmd->local || strncmp(cmd->topic, "tasks.", 6))
                continue;
            for (k = 0; k < room->n_seen && strcmp(room->seen[k].queue, queue); k++)
                ;
            if (k == room->n_seen) {
                if (room->n_seen == sizeof(room->seen) / sizeof(room->seen[0]))
                    continue;
                room->seen[room->n_seen].queue = queue;
                room->seen[room->n_seen++].left = wt->eager.slots(wt->eager.ctx, queue);
            }
            if (room->seen[k].left > 0 && !bt_command_hold(&cmd->field, wt->worker)) {
                room->seen[k].left--;
                cmd->local = true;
            }
        }
    }
}

/* Hands the committed eager tasks of delta d to the activity role and drops
 * them from d. */
static void submit_eager(struct bt_wftask *wt, struct bt_delta *d)
{
    size_t k = 0;

    for (size_t c = 0; c < d->n_cmds; c++) {
        struct bt_command *cmd = &d->cmds[c];
        if (!cmd->local) {
            d->cmds[k++] = *cmd;
            continue;
        }
        wt->eager.submit(wt->eager.ctx, cmd->payload, cmd->len, wt);
        wt->stats.eager++;
        bt_command_release(cmd);
    }
    d->n_cmds = k;
}

/* Produces the commands of the touched instances and moves them out of their
 * deltas into the batch's flight, which forgets them once they landed. */
static int produce_commands(struct bt_wftask *wt)
{
    struct flight *f = wt->batch.flight;

    for (size_t i = 0; i < wt->batch.n_touched; i++) {
        struct bt_delta *d = &wt->batch.touched[i]->delta;
        submit_eager(wt, d);
        if (!d->n_cmds)
            continue;
        for (size_t c = 0; c < d->n_cmds; c++)
            if (produce(wt, d->cmds[c].topic, d->cmds[c].key, d->cmds[c].payload,
                        d->cmds[c].len))
                return BT_EAGAIN;
        if (f->n_sent == f->cap_sent) {
            size_t cap = f->cap_sent ? f->cap_sent * 2 : 64;
            struct bt_delivered *grown = realloc(f->sent, cap * sizeof(*grown));
            BT_ASSERT(grown);
            f->sent = grown;
            f->cap_sent = cap;
        }
        f->sent[f->n_sent].id = strdup(wt->batch.touched[i]->id);
        BT_ASSERT(f->sent[f->n_sent].id);
        f->sent[f->n_sent].cmds = d->cmds;
        f->sent[f->n_sent++].n = d->n_cmds;
        d->cmds = NULL;
        d->n_cmds = d->cap_cmds = 0;
    }
    return 0;
}

static void drop_touched(struct bt_wftask *wt)
{
    /* their memory may be ahead of Redis: reload them next time */
    for (size_t i = 0; i < wt->batch.n_touched; i++) {
        bt_idmap_del(wt->cache, wt->batch.touched[i]->id);
        bt_instance_destroy(wt->batch.touched[i]);
    }
    wt->batch.n_touched = 0;
    for (size_t i = 0; i < wt->batch.n_items; i++)
        wt->batch.items[i].inst = NULL;
}

/* Instances that turned out not to exist, or to be another queue's, were
 * cached only to find that out. */
static void forget_unknown(struct bt_wftask *wt)
{
    for (size_t i = 0; i < wt->batch.n_items; i++) {
        struct bt_instance *inst = wt->batch.items[i].inst;
        if (!inst || (inst->status != BT_STATUS_NONE && !wt->batch.items[i].forwarded))
            continue;
        for (size_t j = i; j < wt->batch.n_items; j++)
            if (wt->batch.items[j].inst == inst)
                wt->batch.items[j].inst = NULL;
        if (bt_idmap_del(wt->cache, inst->id) == inst)
            bt_instance_destroy(inst);
    }
}

/* Replays the touched instances and commits their decisions, part by part:
 * each part's commits go to Redis as soon as it is replayed, so Redis runs
 * them while the next part is replayed (it sat idle while a whole batch was
 * replayed, then this thread waited while Redis ran all of it). */
/* Failpoint commit-reply-lost: every 4th batch with eager tasks whose commit
 * went through is taken for one whose reply never came (a Redis restart at
 * the wrong moment), to test what the retry finds. */
static bool lose_reply(struct bt_wftask *wt)
{
    static int seen;
    bool eager = false;

    for (size_t i = 0; i < wt->batch.n_touched && !eager; i++)
        for (size_t c = 0; c < wt->batch.touched[i]->delta.n_cmds; c++)
            eager |= wt->batch.touched[i]->delta.cmds[c].local;
    if (!eager || !bt_failpoint("commit-reply-lost") ||
        __atomic_add_fetch(&seen, 1, __ATOMIC_RELAXED) % 4)
        return false;
    bt_log(BT_LOG_WARN, "failpoint commit-reply-lost: the batch is tried again");
    return true;
}

static int commit_all(struct bt_wftask *wt, const struct bt_replay_env *env, int *results)
{
    struct eager_room room = {0};
    bool *sent = calloc(wt->batch.n_touched + 1, sizeof(*sent));
    size_t from, to;
    int ret = 0, rc;

    BT_ASSERT(sent);
    for (from = 0; from < wt->batch.n_touched && ret == 0; from = to) {
        to = from + COMMIT_PART < wt->batch.n_touched ? from + COMMIT_PART
                                                      : wt->batch.n_touched;
        replay_range(wt, env, from, to);
        mark_eager(wt, &room, from, to);
        ret = bt_store_commit_send(wt->store, wt->batch.touched + from, to - from,
                                   env->now_ms, sent + from);
    }
    before_commit(wt);
    rc = bt_store_commit_recv(wt->store, wt->batch.touched, from, sent, results);
    after_commit(wt);
    free(sent);
    if (!ret && !rc && lose_reply(wt))
        return BT_EAGAIN;
    return ret ? ret : rc;
}

/* Advances every instance of the batch. BT_EAGAIN: redo the whole batch. */
static int advance(struct bt_wftask *wt)
{
    struct bt_replay_env env = {.reg = wt->reg,
                                .now_ms = bt_clock_now_ms(),
                                .default_timeout_ms = wt->cfg->activity_timeout_ms,
                                .history_max = wt->cfg->history_max,
                                .max_message = wt->cfg->max_payload,
                                .worker = wt->worker};
    bool redo = false, raced;
    size_t suspects;
    int *results = NULL;
    int ret = BT_EAGAIN, rc;

    wt->batch.no++;
    wt->batch.n_touched = 0;
    for (int round = 0; round < MAX_CONFLICTS; round++) {
        if (resolve(wt, redo))
            goto out;
        apply_all(wt, &env, redo);
        suspects = reload_suspects(wt);
        free(results);
        results = calloc(wt->batch.n_touched + 1, sizeof(*results));
        BT_ASSERT(results);
        rc = commit_all(wt, &env, results);
        if (rc)
            goto out;
        wt->stats.commits += wt->batch.n_touched;
        if (!drop_conflicts(wt, results, &raced) && !suspects) {
            ret = 0;
            break;
        }
        /* a duplicate start taken for a new instance's is no race */
        wt->stats.conflicts += raced;
        redo = true;
    }
    if (ret)
        goto out;
    if (produce_commands(wt)) {
        bt_log(BT_LOG_WARN, "cannot produce commands");
        ret = BT_EAGAIN;
        goto out;
    }
    /* their commands are in the flight now: done with them */
    for (size_t i = 0; i < wt->batch.n_touched; i++) {
        struct bt_instance *inst = wt->batch.touched[i];
        if (bt_status_final(inst->status)) {
            bt_idmap_del(wt->cache, inst->id);
            for (size_t j = 0; j < wt->batch.n_items; j++)
                if (wt->batch.items[j].inst == inst)
                    wt->batch.items[j].inst = NULL;
            bt_instance_destroy(inst);
        }
    }
    wt->batch.n_touched = 0;
    forget_unknown(wt);
out:
    free(results);
    return ret;
}

/* The offsets after the batch's messages, per partition. */
static rd_kafka_topic_partition_list_t *batch_offsets(const struct bt_wftask *wt)
{
    rd_kafka_topic_partition_list_t *offsets = rd_kafka_topic_partition_list_new(8);

    for (size_t i = 0; i < wt->batch.n_items; i++) {
        const rd_kafka_message_t *rkm = wt->batch.items[i].rkm;
        if (!rkm)
            continue;
        rd_kafka_topic_partition_t *p = rd_kafka_topic_partition_list_find(
            offsets, rd_kafka_topic_name(rkm->rkt), rkm->partition);
        if (!p)
            p = rd_kafka_topic_partition_list_add(offsets, rd_kafka_topic_name(rkm->rkt),
                                                  rkm->partition);
        if (rkm->offset + 1 > p->offset)
            p->offset = rkm->offset + 1;
    }
    return offsets;
}

/* Notes in the batch's flight the held outbox fields of the eager tasks
 * whose outcomes it applied or forwarded: forgotten when it lands (the
 * outcome committed or on Kafka by then). A worker that dies first leaves
 * them to the outbox sweep, which sends those tasks again. */
static void note_held(struct bt_wftask *wt)
{
    struct flight *f = wt->batch.flight;
    size_t n = 0;

    for (size_t i = 0; i < wt->batch.n_items; i++)
        n += wt->batch.items[i].local != NULL && wt->batch.items[i].decoded;
    if (!n)
        return;
    f->held = calloc(n, sizeof(*f->held));
    BT_ASSERT(f->held);
    for (size_t i = 0; i < wt->batch.n_items; i++) {
        const struct item *it = &wt->batch.items[i];
        struct bt_command *cmd;
        char *id;
        int rc;
        if (!it->local || !it->decoded ||
            (it->msg.type != BT_MSG_COMPLETED && it->msg.type != BT_MSG_FAILED))
            continue;
        cmd = calloc(1, sizeof(*cmd));
        id = strdup(it->local->id);
        BT_ASSERT(cmd && id);
        cmd->field = bt_task_field(it->msg.seq, it->msg.attempt);
        rc = cmd->field ? bt_command_hold(&cmd->field, wt->worker) : BT_ENOMEM;
        BT_ASSERT(rc == 0);
        f->held[f->n_held++] = (struct bt_delivered){id, cmd, 1};
    }
}

static void release_items(struct bt_wftask *wt)
{
    for (size_t i = 0; i < wt->batch.n_items; i++) {
        if (wt->batch.items[i].decoded)
            bt_msg_release(&wt->batch.items[i].msg);
        if (wt->batch.items[i].rkm)
            rd_kafka_message_destroy(wt->batch.items[i].rkm);
        bt_local_event_free(wt->batch.items[i].local);
    }
    wt->batch.n_items = 0;
}

void bt_wftask_set_stop(struct bt_wftask *wt, const volatile sig_atomic_t *flag)
{
    wt->stop = flag;
}

static bool stop_asked(const struct bt_wftask *wt)
{
    return wt->stop && *wt->stop;
}

int bt_wftask_poll(struct bt_wftask *wt, int timeout_ms)
{
    rd_kafka_message_t *rkm;
    int backoff_ms = 50, handled;
    bool abandoned = false;

    export_metrics(wt);
    land(wt, MAX_FLIGHTS - 1, true);
    /* short slices while batches are in flight: they land between polls */
    if (wt->flights && timeout_ms > LAND_EVERY_MS)
        timeout_ms = LAND_EVERY_MS;
    rkm = rd_kafka_consumer_poll(wt->consumer, timeout_ms);

    while (rkm) {
        if (rkm->err) {
            if (rkm->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                bt_log(BT_LOG_WARN, "consumer error: %s", rd_kafka_message_errstr(rkm));
            rd_kafka_message_destroy(rkm);
        } else {
            memset(&wt->batch.items[wt->batch.n_items], 0, sizeof(wt->batch.items[0]));
            wt->batch.items[wt->batch.n_items++].rkm = rkm;
            if (wt->batch.n_items == MAX_BATCH)
                break;
        }
        rkm = rd_kafka_consumer_poll(wt->consumer, 0);
    }
    while (wt->batch.n_items < MAX_BATCH) {
        struct bt_local_event *ev = bt_inbox_pop(&wt->inbox);
        if (!ev)
            break;
        memset(&wt->batch.items[wt->batch.n_items], 0, sizeof(wt->batch.items[0]));
        wt->batch.items[wt->batch.n_items++].local = ev;
    }
    if (!wt->batch.n_items) {
        /* idle: nothing else will carry the outbox removals */
        land(wt, MAX_FLIGHTS, true);
        bt_store_settle(wt->store);
        bt_watchdog_check(&wt->watchdog, wt->consumer, wt->taken, false);
        return 0;
    }
    wt->stats.batches++;
    wt->taken += wt->batch.n_items;
    wt->batch.flight = calloc(1, sizeof(*wt->batch.flight));
    BT_ASSERT(wt->batch.flight);
    wt->batch.flight->backoff_ms = 50;
    decode_all(wt);
    while (advance(wt) == BT_EAGAIN) {
        bt_unseen_note(&wt->unseen, wt->batch.touched, wt->batch.n_touched);
        drop_touched(wt);
        /* a failed load leaves empty instances in the cache, a failed commit
         * instances ahead of Redis: nothing cached is known to match Redis
         * now (taken for unknown, a valid event would be dead-lettered) */
        bt_idmap_clear(wt->cache, destroy_instance);
        if (stop_asked(wt)) {
            /* its offsets stay uncommitted: whoever owns the partitions next
             * gets the batch again */
            bt_log(BT_LOG_INFO, "stopping with a batch not advanced: it is redelivered");
            abandoned = true;
            sent_release(wt->batch.flight);
            break;
        }
        bt_log(BT_LOG_WARN, "redis or kafka unavailable, retrying batch: backoff_ms=%d",
               backoff_ms);
        for (int slept = 0; slept < backoff_ms && !stop_asked(wt); slept += 50)
            bt_clock_sleep_ms(50);
        if (backoff_ms < 5000)
            backoff_ms *= 2;
        /* the reloaded outboxes hold what this try produced: it is sent again,
         * but for the results found delivered; so first let what is still in
         * flight from it land (what does not in time reports into the flight
         * later, and its result may come twice) */
        bt_kafka_wait(wt->producer, &wt->batch.flight->cmds, 5000);
        sent_release(wt->batch.flight);
        wt->batch.flight->cmds.err = 0;
        wt->batch.flight->cmds.failed = 0;
    }
    wt->batch.flight->offsets =
        abandoned ? rd_kafka_topic_partition_list_new(1) : batch_offsets(wt);
    if (!abandoned)
        note_held(wt);
    *wt->landing = wt->batch.flight;
    wt->landing = &wt->batch.flight->next;
    wt->n_flights++;
    wt->batch.flight = NULL;
    handled = (int)wt->batch.n_items;
    release_items(wt);
    if (bt_idmap_size(wt->cache) > MAX_CACHED)
        bt_idmap_clear(wt->cache, destroy_instance);
    return handled;
}
