/* Fetch control in the activity role (acttask_int.h): the consumer stops
 * fetching while the role holds as many tasks as it may, and resumes where
 * it consumed up to; and the failpoint that stops it behind its back. */
#include "log.h"
#include "acttask_int.h"

/* librdkafka 2.0 drops what it had prefetched on pause and resumes after it:
 * after a resume, each partition goes back to the position consumed up to.
 * One not consumed from since its assignment has no position and fetches
 * from the committed offset anyway; none assigned (mid-rebalance): nothing
 * to do. */
static void seek_consumed(struct bt_acttask *at,
                          const rd_kafka_topic_partition_list_t *assigned)
{
    rd_kafka_topic_partition_list_t *pos = rd_kafka_topic_partition_list_copy(assigned);
    rd_kafka_topic_partition_list_t *seek = rd_kafka_topic_partition_list_new(pos->cnt);
    rd_kafka_error_t *error;

    rd_kafka_position(at->consumer, pos);
    for (int i = 0; i < pos->cnt; i++)
        if (pos->elems[i].offset >= 0)
            rd_kafka_topic_partition_list_add(seek, pos->elems[i].topic,
                                              pos->elems[i].partition)
                ->offset = pos->elems[i].offset;
    rd_kafka_topic_partition_list_destroy(pos);
    if (seek->cnt && (error = rd_kafka_seek_partitions(at->consumer, seek, 1000))) {
        bt_log(BT_LOG_WARN, "cannot seek after resume: %s", rd_kafka_error_string(error));
        rd_kafka_error_destroy(error);
    }
    rd_kafka_topic_partition_list_destroy(seek);
}

/* Stop fetching while the threads are busy: the rest waits in Kafka, not here. */
void act_backpressure(struct bt_acttask *at)
{
    rd_kafka_topic_partition_list_t *assigned = NULL;
    int inflight;
    bool want_pause;

    inflight = bt_actpool_inflight(at->pool);
    inflight += bt_admission_waiting(at->adm); /* waiting for a token counts as busy */
    inflight += at->pace.n;
    want_pause = inflight >= act_buffer_max(at);
    if (want_pause == at->paused || (!want_pause && inflight > 2 * at->cfg->concurrency))
        return;
    if (rd_kafka_assignment(at->consumer, &assigned) == 0) {
        if (want_pause) {
            rd_kafka_pause_partitions(at->consumer, assigned);
        } else {
            rd_kafka_resume_partitions(at->consumer, assigned);
            seek_consumed(at, assigned);
        }
        rd_kafka_topic_partition_list_destroy(assigned);
    }
    at->paused = want_pause;
}

/* Failpoint stop-task-fetch: once some tasks were taken, the consumer stops
 * fetching without knowing it (its partitions paused behind backpressure's
 * back), as a fetch that never resumed would; the watchdog must mend it. */
void act_stop_fetch_once(struct bt_acttask *at)
{
    rd_kafka_topic_partition_list_t *assigned = NULL;

    if (at->fetch_stopped || at->taken == 0 ||
        rd_kafka_assignment(at->consumer, &assigned))
        return;
    if (assigned->cnt) {
        bt_log(BT_LOG_WARN, "failpoint stop-task-fetch: task partitions paused");
        rd_kafka_pause_partitions(at->consumer, assigned);
        at->fetch_stopped = true;
    }
    rd_kafka_topic_partition_list_destroy(assigned);
}
