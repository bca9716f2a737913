/* The workflow role. One batch of events at a time:
 *   decode -> load the instances not cached (one pipelined round trip; the
 *   start of a new one needs none: see assume_new, wfapply.c) ->
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
 * forwarded to that queue's topic, with the commands, before the offsets.
 * Here: the handle and the loop (poll, advance, commit); wftask_int.h lists
 * the files that hold the rest. */
#define _GNU_SOURCE /* asprintf */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "err.h"
#include "failpoint.h"
#include "log.h"
#include "partlease.h"
#include "stop.h"
#include "wftask_int.h"

#define MAX_CACHED    200000
#define MAX_CONFLICTS 8
#define MAX_FLIGHTS   16 /* batches awaiting delivery reports */
#define LAND_EVERY_MS 2  /* poll slice while batches are in flight */
#define COMMIT_PART   64 /* instances replayed and sent to Redis at a time */

static void destroy_instance(void *inst)
{
    bt_instance_destroy(inst);
}

static void rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    struct bt_wftask *wt = opaque;

    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        bt_log(BT_LOG_INFO, "partitions assigned: count=%d", parts->cnt);
        wt->crash_check = true; /* a crashed worker's, maybe */
        bt_kafka_assign(rk, parts);
        return;
    }
    /* offsets of what was advanced here are committed before another worker
     * takes over; what we cached may go stale */
    wf_land(wt, 0, false);
    bt_log(BT_LOG_INFO, "partitions revoked: count=%d cached=%zu", parts->cnt,
           bt_idmap_size(wt->cache));
    bt_idmap_clear(wt->cache, destroy_instance);
    bt_kafka_unassign(rk, parts);
}

struct bt_wftask *bt_wftask_new(const struct bt_config *cfg, const bt_registry *reg,
                                struct bt_metrics *metrics, const char *worker_name,
                                char *errstr, size_t errstr_size)
{
    struct bt_wftask *wt = calloc(1, sizeof(*wt));
    char group[300], *list = NULL, *save = NULL;
    char topics[WF_MAX_QUEUES][300];
    const char *names[WF_MAX_QUEUES];
    char *id = NULL;

    if (!wt)
        return NULL;
    wt->cfg = cfg;
    wt->reg = reg;
    wt->worker = strdup(worker_name);
    wt->cache = bt_idmap_new();
    wt->landing = &wt->flights;
    bt_inbox_init(&wt->inbox);
    wf_register_metrics(wt, metrics);
    bt_watchdog_init(&wt->watchdog, "workflow", cfg->watchdog_ms, metrics);
    snprintf(group, sizeof(group), "%s.workflows", cfg->prefix);
    list = strdup(cfg->queues);
    for (char *q = strtok_r(list, ", ", &save); q && wt->n_queues < WF_MAX_QUEUES;
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
    if (bt_partlease_start(cfg, wt->consumer, group, names, wt->n_queues, wt->worker,
                           rebalance_cb, wt, &wt->leases, errstr, errstr_size))
        goto fail;
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

void bt_wftask_destroy(struct bt_wftask *wt)
{
    if (!wt)
        return;
    if (wt->consumer && wt->producer && wt->store) {
        bt_stop_step("workflow role: last batch");
        wf_land(wt, 0, false);
        bt_stop_step("workflow role: eager hand-off");
        wf_hand_off_inbox(wt);
    }
    bt_stop_step("workflow role: redis replies");
    if (wt->store)
        bt_store_settle(wt->store);
    bt_crashes_seen_clear(&wt->crashes);
    if (wt->wake)
        rd_kafka_queue_destroy(wt->wake);
    if (wt->consumer) {
        bt_stop_step("workflow role: consumer close");
        bt_partlease_destroy(wt->leases);
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
        struct wf_flight *f = wt->flights;
        wt->flights = f->next;
        wf_flight_destroy(f);
    }
    wf_flight_destroy(wt->batch.flight);
    bt_store_destroy(wt->store);
    bt_idmap_destroy(wt->cache, destroy_instance);
    /* outcomes that came too late for this worker's own batches */
    bt_inbox_release(&wt->inbox);
    wf_batch_free(&wt->batch);
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

/* Failpoint commit-reply-lost: the first batch with eager tasks whose commit
 * went through, then every 4th, is taken for one whose reply never came (a
 * Redis restart at the wrong moment), to test what the retry finds. The
 * first always: on a fast machine a test's instances fit in a few batches. */
static bool lose_reply(struct bt_wftask *wt)
{
    static int seen;
    bool eager = false;

    for (size_t i = 0; i < wt->batch.n_touched && !eager; i++)
        for (size_t c = 0; c < wt->batch.touched[i]->delta.n_cmds; c++)
            eager |= wt->batch.touched[i]->delta.cmds[c].local;
    if (!eager || !bt_failpoint("commit-reply-lost") ||
        __atomic_fetch_add(&seen, 1, __ATOMIC_RELAXED) % 4)
        return false;
    bt_log(BT_LOG_WARN, "failpoint commit-reply-lost: the batch is tried again");
    return true;
}

/* Replays the touched instances and commits their decisions, part by part:
 * each part's commits go to Redis as soon as it is replayed, so Redis runs
 * them while the next part is replayed (it sat idle while a whole batch was
 * replayed, then this thread waited while Redis ran all of it). */
static int commit_all(struct bt_wftask *wt, const struct bt_replay_env *env, int *results)
{
    struct wf_eager_room room = {0};
    bool *sent = calloc(wt->batch.n_touched + 1, sizeof(*sent));
    size_t from, to;
    int ret = 0, rc;

    BT_ASSERT(sent);
    for (from = 0; from < wt->batch.n_touched && ret == 0; from = to) {
        to = from + COMMIT_PART < wt->batch.n_touched ? from + COMMIT_PART
                                                      : wt->batch.n_touched;
        wf_replay_range(wt, env, from, to);
        wf_mark_eager(wt, &room, from, to, env->now_ms);
        ret = bt_store_commit_send(wt->store, wt->batch.touched + from, to - from,
                                   env->now_ms, sent + from);
    }
    wf_before_commit(wt);
    rc = bt_store_commit_recv(wt->store, wt->batch.touched, from, sent, results);
    wf_after_commit(wt);
    free(sent);
    if (!ret && !rc && lose_reply(wt))
        return BT_EAGAIN;
    return ret ? ret : rc;
}

/* Advances every instance of the batch: resolve -> apply -> commit, redone
 * for the items of instances that lost a race or were refused by a stale
 * copy, then produce. BT_EAGAIN: redo the whole batch. */
static int advance(struct bt_wftask *wt)
{
    struct bt_replay_env env = {.reg = wt->reg,
                                .now_ms = bt_clock_now_ms(),
                                .default_timeout_ms = wt->cfg->activity_timeout_ms,
                                .schedule_to_start_ms = wt->cfg->schedule_to_start_ms,
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
        if (wf_resolve(wt, redo))
            goto out;
        wf_apply_all(wt, &env, redo);
        suspects = wf_batch_reload_suspects(&wt->batch, wt->cache);
        free(results);
        results = calloc(wt->batch.n_touched + 1, sizeof(*results));
        BT_ASSERT(results);
        rc = commit_all(wt, &env, results);
        if (rc)
            goto out;
        wt->stats.commits += wt->batch.n_touched;
        if (!wf_batch_drop_conflicts(&wt->batch, wt->cache, results, &raced) &&
            !suspects) {
            ret = 0;
            break;
        }
        /* a duplicate start taken for a new instance's is no race */
        wt->stats.conflicts += raced;
        redo = true;
    }
    if (ret)
        goto out;
    if (wf_produce_commands(wt)) {
        bt_log(BT_LOG_WARN, "cannot produce commands");
        ret = BT_EAGAIN;
        goto out;
    }
    /* their commands are in the flight now: done with them */
    wf_batch_drop_done(&wt->batch, wt->cache);
out:
    free(results);
    return ret;
}

/* Advances the batch, trying again with a backoff while Redis or Kafka is
 * unavailable. Returns false when a stop gave it up instead. */
static bool advance_retrying(struct bt_wftask *wt)
{
    int backoff_ms = 50;

    while (advance(wt) == BT_EAGAIN) {
        bt_unseen_note(&wt->unseen, wt->batch.touched, wt->batch.n_touched);
        wf_batch_drop_touched(&wt->batch, wt->cache);
        /* a failed load leaves empty instances in the cache, a failed commit
         * instances ahead of Redis: nothing cached is known to match Redis
         * now (taken for unknown, a valid event would be dead-lettered) */
        bt_idmap_clear(wt->cache, destroy_instance);
        if (wf_stop_asked(wt)) {
            /* its offsets stay uncommitted: whoever owns the partitions next
             * gets the batch again */
            bt_log(BT_LOG_INFO, "stopping with a batch not advanced: it is redelivered");
            wf_sent_release(wt->batch.flight);
            return false;
        }
        bt_log(BT_LOG_WARN, "redis or kafka unavailable, retrying batch: backoff_ms=%d",
               backoff_ms);
        for (int slept = 0; slept < backoff_ms && !wf_stop_asked(wt); slept += 50)
            bt_clock_sleep_ms(50);
        if (backoff_ms < 5000)
            backoff_ms *= 2;
        /* the reloaded outboxes hold what this try produced: it is sent again,
         * but for the results found delivered; so first let what is still in
         * flight from it land (what does not in time reports into the flight
         * later, and its result may come twice) */
        bt_kafka_wait(wt->producer, &wt->batch.flight->cmds, 5000);
        wf_sent_release(wt->batch.flight);
        wt->batch.flight->cmds.err = 0;
        wt->batch.flight->cmds.failed = 0;
    }
    return true;
}

void bt_wftask_set_stop(struct bt_wftask *wt, const volatile sig_atomic_t *flag)
{
    wt->stop = flag;
}

bool wf_stop_asked(const struct bt_wftask *wt)
{
    return wt->stop && *wt->stop;
}

/* Fills the batch: what the consumer has (waiting up to timeout_ms for the
 * first message), then the outcomes in the inbox, up to a full batch. */
static void take_batch(struct bt_wftask *wt, int timeout_ms)
{
    rd_kafka_message_t *rkm = rd_kafka_consumer_poll(wt->consumer, timeout_ms);

    while (rkm) {
        if (rkm->err) {
            if (rkm->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                bt_log(BT_LOG_WARN, "consumer error: %s", rd_kafka_message_errstr(rkm));
            rd_kafka_message_destroy(rkm);
        } else if (wf_batch_add(&wt->batch, rkm, NULL)) {
            break;
        }
        rkm = rd_kafka_consumer_poll(wt->consumer, 0);
    }
    while (wt->batch.n_items < WF_BATCH_MAX) {
        struct bt_local_event *ev = bt_inbox_pop(&wt->inbox);
        if (!ev)
            break;
        wf_batch_add(&wt->batch, NULL, ev);
    }
}

/* Failpoint slow-workflow-batch: the first batch waits 6 s before it is
 * advanced, as a batch behind the brokers' outage does, to test that a busy
 * loop keeps its partitions (partlease.h). */
static void stall_once(void)
{
    static atomic_bool done;

    if (!bt_failpoint("slow-workflow-batch") || atomic_exchange(&done, true))
        return;
    bt_log(BT_LOG_WARN, "failpoint slow-workflow-batch: the batch waits 6 s");
    bt_clock_sleep_ms(6000);
    bt_log(BT_LOG_WARN, "failpoint slow-workflow-batch: the batch goes on");
}

int bt_wftask_poll(struct bt_wftask *wt, int timeout_ms)
{
    bool advanced;
    int handled;

    wf_export_metrics(wt);
    bt_partlease_tick(wt->leases);
    wf_land(wt, MAX_FLIGHTS - 1, true);
    /* short slices while batches are in flight: they land between polls */
    if (wt->flights && timeout_ms > LAND_EVERY_MS)
        timeout_ms = LAND_EVERY_MS;
    take_batch(wt, timeout_ms);
    if (!wt->batch.n_items) {
        /* idle: nothing else will carry the outbox removals */
        wf_land(wt, MAX_FLIGHTS, true);
        bt_store_settle(wt->store);
        bt_watchdog_check(&wt->watchdog, wt->consumer, wt->taken, false);
        return 0;
    }
    stall_once();
    wt->stats.batches++;
    wt->taken += wt->batch.n_items;
    wt->batch.flight = wf_flight_new();
    wf_decode_all(wt);
    advanced = advance_retrying(wt);
    wf_take_off(wt, !advanced);
    handled = (int)wt->batch.n_items;
    wf_batch_release(&wt->batch);
    if (bt_idmap_size(wt->cache) > MAX_CACHED)
        bt_idmap_clear(wt->cache, destroy_instance);
    return handled;
}
