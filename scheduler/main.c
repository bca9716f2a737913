/* baton-scheduler: fires due timers (durable sleeps, signal timeouts, activity
 * timeouts, delayed retries) as `timer` events, starts the instances of due
 * schedules (cron and one-shot), re-sends outbox commands that dead workers
 * left unsent, and archives and deletes finished runs whose retention ended.
 * Run one or more; they share the work through atomic claims in Redis and,
 * with shards, leases on the shards (shard_lease.h). */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "args.h"
#include "clock.h"
#include "config.h"
#include "archive.h"
#include "backfill.h"
#include "kafka_change.h"
#include "err.h"
#include "kafka.h"
#include "log.h"
#include "metrics.h"
#include "outbox.h"
#include "redis_durability.h"
#include "retention.h"
#include "schedules.h"
#include "shard_lease.h"
#include "stop.h"
#include "store.h"
#include "timers.h"
#include "unserved.h"
#include "wake.h"

#define OUTBOX_EVERY_MS 1000
#define OUTBOX_GRACE_MS 5000
#define GAUGES_EVERY_MS 2000

static volatile sig_atomic_t stopping;

/* The stop is bounded by stop-timeout-ms from the signal on (stop.h):
 * timers claimed and not sent by then fire again when their lease ends. */
static void on_signal(int sig)
{
    (void)sig;
    stopping = 1;
    bt_stop_signal();
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
    kept->awaiting = bt_metrics_series(bt_metrics_gauge(
        metrics, "baton_retention_awaiting_kafka",
        "Runs claimed and archived whose delivery Kafka has not confirmed yet.", NULL));
    return bt_metrics_series(
        bt_metrics_gauge(metrics, "baton_retention_backlog",
                         "Runs whose retention ended that are not deleted yet.", NULL));
}

/* What main starts and what its rounds carry from one to the next. */
struct scheduler {
    struct bt_config cfg;
    struct bt_store *store;
    struct bt_shard_lease *lease;
    rd_kafka_t *rk;
    struct bt_timers *timers;
    struct bt_timer_stats stats;
    struct bt_schedule_stats sched;
    struct bt_wake *wake;
    struct bt_unserved *unserved; /* its own thread: queues nobody serves */
    bool durability_told;         /* redis_durability.h: once Redis answers */
    struct bt_retention *retention;
    struct bt_retention_stats kept;
    struct bt_backfill backfill, counts; /* retention's, and the counts' */
    struct bt_outbox_sweep sweep;
    struct bt_metrics *metrics;
    struct bt_series *fired_total, *resent_total, *pending, *round_trips, *backlog;
    struct bt_series *shards_held;
    int64_t next_sweep, next_gauges; /* CLOCK_MONOTONIC ms */
};

static void register_metrics(struct scheduler *s)
{
    struct bt_metrics *m = s->metrics = bt_metrics_new();

    s->fired_total = bt_metrics_series(
        bt_metrics_counter(m, "baton_timers_fired_total", "Timers fired.", NULL));
    s->stats.lateness = bt_metrics_series(bt_metrics_histogram(
        m, "baton_timer_lateness_seconds", "How long after its due time a timer fired.",
        NULL,
        (const double[]){0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30},
        12));
    s->pending = bt_metrics_series(bt_metrics_gauge(
        m, "baton_timers_pending", "Timers waiting to fire, due or not.", NULL));
    s->resent_total = bt_metrics_series(bt_metrics_counter(
        m, "baton_outbox_resent_total",
        "Commands re-sent from the outbox of instances a worker left unsent.", NULL));
    s->round_trips = bt_metrics_round_trips(m, "scheduler");
    s->shards_held = bt_metrics_series(bt_metrics_gauge(
        m, "baton_scheduler_shards_held",
        "Shards of the store whose timers, outboxes and retention this scheduler "
        "visits (1 without shards).",
        NULL));
    s->backlog = retention_metrics(m, &s->kept);
}

/* Returns 0, or BT_EIO with errstr ("out of memory" when a constructor
 * without errstr failed). */
static int start(struct scheduler *s, char *errstr, size_t errstr_size)
{
    const struct bt_config *cfg = &s->cfg;

    snprintf(errstr, errstr_size, "out of memory");
    s->counts.kind = BT_BACKFILL_COUNTS;
    register_metrics(s);
    if (!(s->store = bt_store_new(cfg, errstr, errstr_size)) ||
        !(s->lease = bt_shard_lease_new(s->store, s->shards_held)) ||
        !(s->rk = bt_kafka_producer_new(cfg, errstr, errstr_size)) ||
        !(s->timers = bt_timers_new(cfg, s->store, s->lease, s->rk, &s->stats)) ||
        !(s->wake = bt_wake_new(cfg, bt_store_prefix(s->store), errstr, errstr_size)) ||
        !(s->retention = bt_retention_new(cfg, s->store, s->lease, s->rk, &s->kept)) ||
        !(s->unserved = bt_unserved_start(cfg, s->metrics, errstr, errstr_size)) ||
        bt_metrics_start(s->metrics, cfg, errstr, errstr_size))
        return BT_EIO;
    bt_kafka_change_check(s->store, s->rk);
    return 0;
}

/* The periodic chores between timer claims: the outbox sweep (a step at a
 * time), retention, the backfills, the gauges. */
static void chores(struct scheduler *s)
{
    if (bt_clock_mono_ms() >= s->next_sweep) {
        int resent = bt_outbox_resend(&s->cfg, s->store, s->lease, s->rk, OUTBOX_GRACE_MS,
                                      &s->sweep);
        bt_metrics_add(s->resent_total, resent > 0 ? resent : 0);
        /* a full step: the rest of the round goes on between timer claims */
        s->next_sweep = bt_clock_mono_ms() + (s->sweep.more ? 0 : OUTBOX_EVERY_MS);
    }
    if (!s->durability_told)
        s->durability_told = bt_redis_durability_check(bt_store_redis(s->store));
    bt_retention_step(s->retention);
    bt_backfill_step(&s->backfill, &s->cfg, s->store, s->lease);
    bt_backfill_step(&s->counts, &s->cfg, s->store, s->lease);
    if (bt_clock_mono_ms() >= s->next_gauges) {
        int64_t n = bt_timers_pending(s->store);
        if (n >= 0)
            bt_metrics_set(s->pending, n);
        if ((n = bt_archive_backlog(s->store, bt_clock_now_ms())) >= 0)
            bt_metrics_set(s->backlog, n);
        bt_metrics_set(s->round_trips,
                       (int64_t)bt_redis_round_trips(bt_store_redis(s->store)));
        s->next_gauges = bt_clock_mono_ms() + GAUGES_EVERY_MS;
    }
}

/* The earliest chore (monotonic ms), and whether Kafka's delivery reports
 * are awaited (fired timers, archives): the idle sleep must not outlast
 * either, or a chore's pace becomes the sleep's. */
static int64_t next_chore(struct scheduler *s, bool *in_flight)
{
    bool archiving;
    int64_t at[] = {s->next_sweep,
                    s->next_gauges,
                    bt_shard_lease_next(s->lease),
                    bt_retention_next_ms(s->retention, &archiving),
                    bt_backfill_next_ms(&s->backfill),
                    bt_backfill_next_ms(&s->counts)};
    int64_t next = at[0];

    for (size_t i = 1; i < sizeof(at) / sizeof(at[0]); i++)
        if (at[i] < next)
            next = at[i];
    *in_flight = bt_timers_in_flight(s->timers) || archiving;
    return next;
}

/* Rounds until a signal: due timers, due schedules, the chores; with
 * nothing due, a sleep until the earliest due time or a wake-up. */
static void run(struct scheduler *s)
{
    int backoff = 50;

    while (!stopping) {
        /* a failed renewal keeps the shards held: the claims below say
         * whether Redis is back */
        (void)bt_shard_lease_renew(s->lease);
        int fired = bt_timers_fire(s->timers);
        int started = fired == BT_EAGAIN
                          ? 0
                          : bt_schedules_fire(&s->cfg, s->store, s->rk, &s->sched);
        if (fired == BT_EAGAIN || started == BT_EAGAIN) {
            bt_log(BT_LOG_WARN, "redis or kafka unavailable: backoff_ms=%d", backoff);
            bt_clock_sleep_ms(backoff);
            backoff = backoff < 5000 ? backoff * 2 : backoff;
            continue;
        }
        backoff = 50;
        bt_metrics_add(s->fired_total, fired);
        chores(s);
        if (fired == 0 && started == 0) {
            bool in_flight;
            int64_t due = bt_timers_next(s->timers), chore = next_chore(s, &in_flight);
            if (s->sched.next > 0 && (due <= 0 || s->sched.next < due))
                due = s->sched.next;
            bt_wake_sleep(s->wake, bt_wake_timeout(due, chore, in_flight));
        }
        rd_kafka_poll(s->rk, 0);
    }
}

static void stop_all(struct scheduler *s)
{
    bt_unserved_stop(s->unserved);
    bt_wake_destroy(s->wake);
    bt_timers_destroy(s->timers, 5000);
    bt_retention_destroy(s->retention, 5000);
    bt_outbox_sweep_end(&s->sweep);
    /* after what it had claimed was delivered: others take over at once */
    bt_shard_lease_destroy(s->lease);
    bt_metrics_destroy(s->metrics);
    if (s->rk) {
        rd_kafka_flush(s->rk, 5000);
        rd_kafka_destroy(s->rk);
    }
    bt_store_destroy(s->store);
    bt_config_release(&s->cfg);
}

int main(int argc, char **argv)
{
    static struct scheduler s;
    char errstr[512];
    int ret;

    /* first: a SIGTERM while the scheduler starts is a clean stop too */
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    signal(SIGPIPE, SIG_IGN);
    if (bt_config_load(&s.cfg, &argc, argv, errstr, sizeof(errstr))) {
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
    /* bt_config_load refused a level it does not know */
    bt_log_setup("scheduler", (enum bt_log_level)bt_log_parse_level(s.cfg.log_level),
                 s.cfg.log_json);
    if (bt_stop_arm(s.cfg.stop_timeout_ms)) {
        bt_log(BT_LOG_ERROR, "cannot start: out of memory");
        ret = 1;
        goto out;
    }
    if (start(&s, errstr, sizeof(errstr))) {
        bt_log(BT_LOG_ERROR, "cannot start: %s", errstr);
        ret = 1;
        goto out;
    }
    bt_log(BT_LOG_INFO, "starting: brokers=%s redis=%s prefix=%s", s.cfg.brokers,
           s.cfg.redis, s.cfg.prefix);
    run(&s);
    bt_log(BT_LOG_INFO,
           "stopping: fired=%llu late_ms_max=%lld scheduled=%llu skipped=%llu",
           (unsigned long long)s.stats.fired, (long long)s.stats.late_ms_max,
           (unsigned long long)s.sched.fired, (unsigned long long)s.sched.skipped);
out:
    stop_all(&s);
    return ret;
}
