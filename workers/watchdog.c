/* The consumer watchdog; see watchdog.h. Messages waiting are counted from
 * the broker's high watermarks against the consumer's position, or, for a
 * partition it has not consumed from since it was assigned (no position),
 * against the group's committed offset: such a partition is the very case of
 * a fetch that never started. */
#include "clock.h"
#include "kafka.h"
#include "log.h"
#include "watchdog.h"

void bt_watchdog_init(struct bt_watchdog *wd, const char *role, int64_t stall_ms,
                      struct bt_metrics *metrics)
{
    wd->role = role;
    wd->stall_ms = stall_ms;
    wd->seen = 0;
    wd->since = bt_clock_mono_ms();
    wd->stalls = bt_metrics_series(
        bt_metrics_counter(metrics, "baton_consumer_stalls_total",
                           "Times a consumer had messages waiting on its partitions "
                           "but took none for watchdog-ms, and was assigned them again.",
                           "role"),
        role);
}

/* Messages waiting on the assigned partitions (parts, positions filled). */
static int64_t waiting(rd_kafka_t *consumer, rd_kafka_topic_partition_list_t *parts)
{
    rd_kafka_topic_partition_list_t *committed =
        rd_kafka_topic_partition_list_copy(parts);
    int64_t total = 0;

    if (rd_kafka_committed(consumer, committed, 1000))
        rd_kafka_topic_partition_list_destroy(committed), committed = NULL;
    for (int i = 0; i < parts->cnt; i++) {
        const rd_kafka_topic_partition_t *p = &parts->elems[i];
        int64_t low, high, from = p->offset;
        if (rd_kafka_query_watermark_offsets(consumer, p->topic, p->partition, &low,
                                             &high, 1000))
            continue;
        if (from < 0 && committed)
            from = committed->elems[i].offset;
        if (from < 0) /* nothing committed: auto.offset.reset=earliest */
            from = low;
        if (high > from)
            total += high - from;
    }
    if (committed) /* NULL when the look failed: Kafka away */
        rd_kafka_topic_partition_list_destroy(committed);
    return total;
}

bool bt_watchdog_check(struct bt_watchdog *wd, rd_kafka_t *consumer, uint64_t progress,
                       bool idle)
{
    rd_kafka_topic_partition_list_t *parts = NULL;
    int64_t now = bt_clock_mono_ms(), behind;
    bool stalled = false;

    if (progress != wd->seen || idle || wd->stall_ms <= 0) {
        wd->seen = progress;
        wd->since = now;
        return false;
    }
    if (now - wd->since < wd->stall_ms)
        return false;
    wd->since = now; /* look again a whole period later */
    if (rd_kafka_assignment(consumer, &parts) || !parts)
        return false;
    if (parts->cnt && rd_kafka_position(consumer, parts) == RD_KAFKA_RESP_ERR_NO_ERROR &&
        (behind = waiting(consumer, parts)) > 0) {
        bt_log(BT_LOG_WARN,
               "consumer stalled: no message taken for %lld ms while %lld wait on its "
               "%d partitions; assigning them again role=%s",
               (long long)wd->stall_ms, (long long)behind, parts->cnt, wd->role);
        bt_metrics_add(wd->stalls, 1);
        /* a pause outlives an assignment in librdkafka: resume first */
        rd_kafka_resume_partitions(consumer, parts);
        for (int i = 0; i < parts->cnt; i++)
            parts->elems[i].offset = RD_KAFKA_OFFSET_INVALID; /* from the committed */
        bt_kafka_unassign(consumer, parts);
        bt_kafka_assign(consumer, parts);
        stalled = true;
    }
    rd_kafka_topic_partition_list_destroy(parts);
    return stalled;
}
