/* The consumer watchdog; see watchdog.h. Messages waiting (bt_kafka_waiting) are counted
 * from the broker's high watermarks against the consumer's position, or, for a partition
 * it has not consumed from since it was assigned (no position), against the group's
 * committed offset: such a partition is the very case of a fetch that never started. */
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
        (behind = bt_kafka_waiting(consumer, parts, 1000, false)) > 0) {
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
