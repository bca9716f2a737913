/* The scheduler's retention loop: claim due runs, produce their archives,
 * and once every report is in, delete the delivered ones, all without
 * waiting on Kafka in the scheduler's loop (a broker that is down delays the
 * deletes, and only them). While Redis is away, the claims stay in flight and
 * their end is tried again: the lease keeps other schedulers off them. */
#include <stdint.h>
#include <stdlib.h>

#include "archive.h"
#include "clock.h"
#include "err.h"
#include "log.h"
#include "retention.h"

struct bt_retention {
    const struct bt_config *cfg;
    struct bt_store *store;
    const struct bt_shard_lease *lease; /* which shards to claim in */
    rd_kafka_t *rk;
    rd_kafka_t *reader; /* looks for archives of claims taken over; made when needed */
    struct bt_retention_stats stats;
    struct bt_archive_run *runs; /* in flight: produced, reports awaited */
    size_t n;
    int shard;       /* the next to claim in: each in turn */
    int64_t next_ms; /* monotonic: the next claim, or try of a settle */
};

struct bt_retention *bt_retention_new(const struct bt_config *cfg, struct bt_store *store,
                                      const struct bt_shard_lease *lease, rd_kafka_t *rk,
                                      const struct bt_retention_stats *stats)
{
    struct bt_retention *rt = calloc(1, sizeof(*rt));

    if (!rt)
        return NULL;
    rt->cfg = cfg;
    rt->store = store;
    rt->lease = lease;
    rt->rk = rk;
    if (stats)
        rt->stats = *stats;
    return rt;
}

/* How many runs in flight still await a delivery report. */
static size_t awaiting(const struct bt_retention *rt)
{
    size_t n = 0;

    for (size_t i = 0; i < rt->n; i++)
        n += __atomic_load_n(&rt->runs[i].batch.pending, __ATOMIC_RELAXED) > 0;
    return n;
}

static bool reported(const struct bt_retention *rt)
{
    return awaiting(rt) == 0;
}

/* Ends the claims in flight; returns how many instances went, or BT_EAGAIN. */
static int settle(struct bt_retention *rt)
{
    int archived = 0, deleted = 0, failed = 0;

    if (bt_archive_settle(rt->store, rt->runs, rt->n, bt_clock_now_ms()))
        return BT_EAGAIN;
    for (size_t i = 0; i < rt->n; i++) {
        const struct bt_archive_run *ar = &rt->runs[i];
        failed += ar->action == BT_ARCHIVE_RETRY && ar->parts > 0;
        if (ar->result != 1 || ar->action != BT_ARCHIVE_DELETE)
            continue;
        archived += ar->parts > 0;
        deleted += ar->last;
    }
    if (archived || failed)
        bt_log(BT_LOG_INFO, "archived and deleted: runs=%d instances=%d retried=%d",
               archived, deleted, failed);
    bt_metrics_add(rt->stats.archived, archived);
    bt_metrics_add(rt->stats.deleted, deleted);
    bt_metrics_add(rt->stats.failed, failed);
    bt_archive_runs_free(rt->runs, rt->n);
    rt->runs = NULL;
    rt->n = 0;
    return deleted;
}

/* Claims the next due runs, of the first shard held in turn that has some,
 * and produces their archives. Only a pass over every shard held that found
 * none waits BT_RETENTION_IDLE_MS: a batch that was not full emptied one
 * shard, and the next may have a backlog of its own. */
static int claim(struct bt_retention *rt)
{
    int64_t now = bt_clock_now_ms();
    int shards = bt_store_shards(rt->store), ret = 0;

    for (int k = 0; k < shards && ret == 0 && rt->n == 0; k++) {
        int shard = rt->shard;

        rt->shard = (rt->shard + 1) % shards;
        if (!bt_shard_lease_holds(rt->lease, shard))
            continue;
        ret = bt_archive_claim(rt->store, shard, now, bt_archive_lease_ms(rt->cfg),
                               BT_RETENTION_BATCH, NULL, 0, &rt->runs, &rt->n);
    }
    if (ret)
        return ret;
    rt->next_ms =
        bt_clock_mono_ms() + (rt->n > 0 ? BT_RETENTION_PACE_MS : BT_RETENTION_IDLE_MS);
    /* runs not produced wait for their retry */
    return bt_archive_prepare(rt->store, rt->cfg, rt->rk, &rt->reader, rt->runs, rt->n,
                              now);
}

static int step(struct bt_retention *rt)
{
    int ret;

    if (rt->n > 0) {
        /* a settle that failed is tried again IDLE later, not each round */
        if (!reported(rt) || bt_clock_mono_ms() < rt->next_ms)
            return 0;
        if ((ret = settle(rt)) == BT_EAGAIN)
            rt->next_ms = bt_clock_mono_ms() + BT_RETENTION_IDLE_MS;
        return ret;
    }
    if (bt_clock_mono_ms() < rt->next_ms)
        return 0;
    /* a claim that failed is tried again IDLE later, not each round */
    if ((ret = claim(rt)) == BT_EAGAIN || (ret != 0 && rt->n == 0))
        rt->next_ms = bt_clock_mono_ms() + BT_RETENTION_IDLE_MS;
    return ret == BT_EAGAIN ? ret : 0;
}

int bt_retention_step(struct bt_retention *rt)
{
    int ret = step(rt);

    /* on the gauge: a broker that holds the deletes up is seen */
    bt_metrics_set(rt->stats.awaiting, (int64_t)awaiting(rt));
    return ret;
}

int64_t bt_retention_next_ms(const struct bt_retention *rt, bool *in_flight)
{
    *in_flight = rt->n > 0 && !reported(rt);
    if (*in_flight)
        return INT64_MAX; /* the reports wake it: the caller polls for them */
    return rt->next_ms;
}

void bt_retention_destroy(struct bt_retention *rt, int timeout_ms)
{
    int64_t deadline;

    if (!rt)
        return;
    deadline = bt_clock_mono_ms() + timeout_ms;
    while (rt->n > 0 && !reported(rt) && bt_clock_mono_ms() < deadline)
        rd_kafka_poll(rt->rk, 10);
    if (rt->n > 0 && !reported(rt)) {
        /* a stop does not wait for a broker that is away: what Kafka has not
         * confirmed is purged and its run put back, due again in 10 s. A
         * purged message may still have reached Kafka: that run is then
         * archived twice (at least once, as after a crash) */
        bt_log(BT_LOG_WARN,
               "archives not confirmed at stop, putting their runs back: "
               "count=%zu",
               rt->n);
        rd_kafka_purge(rt->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
        for (int i = 0; i < 500 && !reported(rt); i++)
            rd_kafka_poll(rt->rk, 10);
        if (!reported(rt))
            return; /* kept, not freed: a report could still write into it */
    }
    if (rt->n > 0 && settle(rt) == BT_EAGAIN)
        bt_log(BT_LOG_WARN, "cannot end the retention claims at stop: redis unreachable; "
                            "they are claimed again when their lease ends");
    bt_archive_runs_free(rt->runs, rt->n);
    if (rt->reader) {
        rd_kafka_consumer_close(rt->reader);
        rd_kafka_destroy(rt->reader);
    }
    free(rt);
}
