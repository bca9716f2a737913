/* The workflow role's metrics (docs/metrics.md; wftask_int.h): its families,
 * the counters of its thread mirrored into the shared registry, and the
 * status changes of the instances a commit made durable. */
#include <stdlib.h>

#include "clock.h"
#include "err.h"
#include "metrics.h"
#include "wftask_int.h"

void wf_register_metrics(struct bt_wftask *wt, struct bt_metrics *m)
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
    wt->m.dead = bt_metrics_dead_letters(m, "workflow");
    wt->m.round_trips = bt_metrics_round_trips(m, "workflow");
    wt->m.timer_late = bt_metrics_histogram(
        m, "baton_timer_applied_lateness_seconds",
        "How long after its due time a timer's event was applied to its instance (end "
        "to end: the scheduler, Kafka and any rebalance on the way).",
        "kind",
        (const double[]){0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30},
        12);
    wt->m.lag = bt_metrics_lag_series(m, "workflow");
}

/* Adds what counter grew since it was last exported: several workflow
 * threads share the series. */
static void export_delta(struct bt_series *s, uint64_t now, uint64_t *exported)
{
    bt_metrics_add(s, (int64_t)(now - *exported));
    *exported = now;
}

/* Mirrors the counters of this thread into the registry. */
void wf_export_metrics(struct bt_wftask *wt)
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
void wf_before_commit(struct bt_wftask *wt)
{
    if (wt->batch.n_touched > wt->m.cap_before) {
        struct wf_before *grown =
            realloc(wt->m.before, wt->batch.n_touched * sizeof(*grown));
        BT_ASSERT(grown);
        wt->m.before = grown;
        wt->m.cap_before = wt->batch.n_touched;
    }
    for (size_t i = 0; i < wt->batch.n_touched; i++)
        wt->m.before[i] = (struct wf_before){wt->batch.touched[i]->delta.old_status,
                                             wt->batch.touched[i]->ver};
}

/* Counts the status changes the commit made durable: an instance's version
 * advances only when its commit went through, whatever the call returned. */
void wf_after_commit(struct bt_wftask *wt)
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
