/* baton-scheduler: fires due timers (durable sleeps, signal timeouts, activity
 * timeouts, delayed retries) as `timer` events, starts the instances of due
 * schedules (cron and one-shot), re-sends outbox commands that dead workers
 * left unsent, and archives and deletes finished runs whose retention ended.
 * Run one or more; they share the work through atomic claims in Redis. */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "args.h"
#include "clock.h"
#include "config.h"
#include "archive.h"
#include "backfill.h"
#include "err.h"
#include "kafka.h"
#include "log.h"
#include "metrics.h"
#include "outbox.h"
#include "retention.h"
#include "schedules.h"
#include "store.h"
#include "timers.h"
#include "wake.h"

#define OUTBOX_EVERY_MS 1000
#define OUTBOX_GRACE_MS 5000
#define GAUGES_EVERY_MS 2000

static volatile sig_atomic_t stopping;

static void on_signal(int sig)
{
    (void)sig;
    stopping = 1;
}

static const struct bt_cmd scheduler_cmd = {
    .name = "baton-scheduler",
    .synopsis = "[settings]",
    .about = "Fire due timers, start the instances of due schedules and re-send what "
             "dead workers left in their outbox, until SIGTERM or SIGINT. Run one or "
             "more.",
    .settings =
        (const char *const[]){"brokers", "redis", "redis-user", "redis-password",
                              "redis-password-file", "prefix", "key-prefix",
                              "max-payload", "metrics-addr", "metrics-port", "log-level",
                              "log-json", "kafka.<property>=<value>", NULL},
};

/* The retention families; returns the backlog gauge. */
static struct bt_series *retention_metrics(struct bt_metrics *metrics,
                                           struct bt_retention_stats *kept)
{
    kept->deleted = bt_metrics_series(bt_metrics_counter(
        metrics, "baton_retention_deleted_total",
        "Finished instances archived and deleted after their retention.", NULL));
    kept->archived = bt_metrics_series(bt_metrics_counter(
        metrics, "baton_retention_archived_total",
        "Runs (of finished or continued instances) archived and deleted.", NULL));
    kept->failed = bt_metrics_series(bt_metrics_counter(
        metrics, "baton_retention_failures_total",
        "Runs whose archive Kafka did not confirm: kept, tried again.", NULL));
    return bt_metrics_series(
        bt_metrics_gauge(metrics, "baton_retention_backlog",
                         "Runs whose retention ended that are not deleted yet.", NULL));
}

int main(int argc, char **argv)
{
    struct bt_config cfg;
    struct bt_store *store = NULL;
    struct bt_timer_stats stats = {0};
    struct bt_timers *timers = NULL;
    struct bt_wake *wake = NULL;
    struct bt_schedule_stats sched = {0};
    struct bt_metrics *metrics = NULL;
    struct bt_series *fired_total, *resent_total, *pending, *round_trips, *backlog;
    struct bt_retention_stats kept = {0};
    struct bt_retention *retention = NULL;
    struct bt_backfill backfill = {0};
    rd_kafka_t *rk = NULL;
    char errstr[512] =
        "out of memory"; /* what a failed constructor without errstr means */
    int64_t next_sweep = 0, next_gauges = 0;
    struct bt_outbox_sweep sweep = {0};
    int backoff = 50, ret = 1, level;

    if (bt_config_load(&cfg, &argc, argv, errstr, sizeof(errstr))) {
        fprintf(stderr,
                "baton-scheduler: %s\n  (`baton-scheduler --help` lists the settings)\n",
                errstr);
        ret = 2;
        goto out;
    }
    if ((ret = bt_args_parse(&scheduler_cmd, argc, argv, NULL, &(int){0}))) {
        ret = ret == 1 ? 0 : 2; /* --help or --version; or a usage error */
        goto out;
    }
    ret = 1;
    /* bt_config_load refused a level it does not know */
    level = bt_log_parse_level(cfg.log_level);
    bt_log_setup("scheduler", (enum bt_log_level)level, cfg.log_json);
    metrics = bt_metrics_new();
    fired_total = bt_metrics_series(
        bt_metrics_counter(metrics, "baton_timers_fired_total", "Timers fired.", NULL));
    stats.lateness = bt_metrics_series(bt_metrics_histogram(
        metrics, "baton_timer_lateness_seconds",
        "How long after its due time a timer fired.", NULL,
        (const double[]){0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30},
        12));
    pending = bt_metrics_series(bt_metrics_gauge(
        metrics, "baton_timers_pending", "Timers waiting to fire, due or not.", NULL));
    resent_total = bt_metrics_series(bt_metrics_counter(
        metrics, "baton_outbox_resent_total",
        "Commands re-sent from the outbox of instances a worker left unsent.", NULL));
    round_trips = bt_metrics_series(
        bt_metrics_counter(metrics, "baton_redis_round_trips_total",
                           "Round trips to Redis (a pipeline counts once).", "role"),
        "scheduler");
    backlog = retention_metrics(metrics, &kept);
    if (!(store = bt_store_new(&cfg, errstr, sizeof(errstr))) ||
        !(rk = bt_kafka_producer_new(&cfg, errstr, sizeof(errstr))) ||
        !(timers = bt_timers_new(&cfg, store, rk, &stats)) ||
        !(wake = bt_wake_new(&cfg, bt_store_prefix(store), errstr, sizeof(errstr))) ||
        !(retention = bt_retention_new(&cfg, store, rk, &kept)) ||
        bt_metrics_start(metrics, &cfg, errstr, sizeof(errstr))) {
        bt_log(BT_LOG_ERROR, "cannot start: %s", errstr);
        goto out;
    }
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    signal(SIGPIPE, SIG_IGN);
    bt_log(BT_LOG_INFO, "starting: brokers=%s redis=%s prefix=%s", cfg.brokers, cfg.redis,
           cfg.prefix);
    while (!stopping) {
        int fired = bt_timers_fire(timers);
        int started = fired == BT_EAGAIN ? 0 : bt_schedules_fire(&cfg, store, rk, &sched);
        if (fired == BT_EAGAIN || started == BT_EAGAIN) {
            bt_log(BT_LOG_WARN, "redis or kafka unavailable: backoff_ms=%d", backoff);
            bt_clock_sleep_ms(backoff);
            backoff = backoff < 5000 ? backoff * 2 : backoff;
            continue;
        }
        backoff = 50;
        bt_metrics_add(fired_total, fired);
        if (bt_clock_mono_ms() >= next_sweep) {
            int resent = bt_outbox_resend(&cfg, store, rk, OUTBOX_GRACE_MS, &sweep);
            bt_metrics_add(resent_total, resent > 0 ? resent : 0);
            /* a full step: the rest of the round goes on between timer claims */
            next_sweep = bt_clock_mono_ms() + (sweep.more ? 0 : OUTBOX_EVERY_MS);
        }
        bt_retention_step(retention);
        bt_backfill_step(&backfill, &cfg, store);
        if (bt_clock_mono_ms() >= next_gauges) {
            int64_t n = bt_timers_pending(store);
            if (n >= 0)
                bt_metrics_set(pending, n);
            if ((n = bt_archive_backlog(store, bt_clock_now_ms())) >= 0)
                bt_metrics_set(backlog, n);
            bt_metrics_set(round_trips,
                           (int64_t)bt_redis_round_trips(bt_store_redis(store)));
            next_gauges = bt_clock_mono_ms() + GAUGES_EVERY_MS;
        }
        if (fired == 0 && started == 0) {
            int64_t due = bt_timers_next(timers);
            if (sched.next > 0 && (due <= 0 || sched.next < due))
                due = sched.next;
            bt_wake_sleep(
                wake,
                bt_wake_timeout(due, next_sweep < next_gauges ? next_sweep : next_gauges,
                                bt_timers_in_flight(timers)));
        }
        rd_kafka_poll(rk, 0);
    }
    bt_log(BT_LOG_INFO,
           "stopping: fired=%llu late_ms_max=%lld scheduled=%llu skipped=%llu",
           (unsigned long long)stats.fired, (long long)stats.late_ms_max,
           (unsigned long long)sched.fired, (unsigned long long)sched.skipped);
    ret = 0;
out:
    bt_wake_destroy(wake);
    bt_timers_destroy(timers, 5000);
    bt_retention_destroy(retention, 5000);
    bt_outbox_sweep_end(&sweep);
    bt_metrics_destroy(metrics);
    if (rk) {
        rd_kafka_flush(rk, 5000);
        rd_kafka_destroy(rk);
    }
    bt_store_destroy(store);
    bt_config_release(&cfg);
    return ret;
}
