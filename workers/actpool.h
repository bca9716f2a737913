/* The activity threads: a queue of jobs to run, threads that take them in
 * order and run each through the role's run function, and the list of jobs
 * run whose outcome is on its way, which the consumer thread takes back.
 * Thread safe. Internal to workers/. */
#ifndef BT_ACTPOOL_H
#define BT_ACTPOOL_H

#include <stdbool.h>
#include <stdint.h>
#include <librdkafka/rdkafka.h>

#include "job.h"

struct bt_actpool;

/* Starts n threads. run(ctx, job) runs one job on a thread; it returns true
 * when nothing is left to do for the job (the pool frees it), false to hand
 * it back through bt_actpool_produced. Returns NULL when no thread starts. */
struct bt_actpool *bt_actpool_new(int n, bool (*run)(void *ctx, struct job *job),
                                  void *ctx);
/* Lets the running jobs finish and joins the threads (queued ones stay, for
 * bt_actpool_take_queued). Idempotent. */
void bt_actpool_stop(struct bt_actpool *p);
/* Frees the pool (stopped first); jobs still queued are freed too. */
void bt_actpool_destroy(struct bt_actpool *p);
int bt_actpool_threads(const struct bt_actpool *p);

/* Queues job to run (takes it). */
void bt_actpool_enqueue(struct bt_actpool *p, struct job *job);
/* Queues job (an eager task: its timeout started at its decision) ahead of
 * the others, after the eager ones queued before it. */
void bt_actpool_enqueue_eager(struct bt_actpool *p, struct job *job);
/* The jobs run since the last call (their outcomes on their way), as a
 * list linked by next; the caller owns them. */
struct job *bt_actpool_produced(struct bt_actpool *p);
/* n jobs taken back through bt_actpool_produced are over. */
void bt_actpool_released(struct bt_actpool *p, int n);
/* Jobs queued, running or taken back and not released yet. */
int bt_actpool_inflight(struct bt_actpool *p);
/* How many threads run a job past its start-to-close timeout by more than
 * grace_ms (an activity that ignores its timeout and hangs: the attempt was
 * retried, the thread stays taken); each such job is logged once. */
int bt_actpool_overdue(struct bt_actpool *p, int64_t now_ms, int64_t grace_ms);
/* The jobs running (*busy), queued and not started yet (*queued), and in
 * flight (*inflight, as bt_actpool_inflight; NULL: not wanted). */
void bt_actpool_load(struct bt_actpool *p, int *busy, int *queued, int *inflight);
/* Takes out the queued jobs (not started yet) of the partitions in parts (a
 * revoke); returns them as a list linked by next, the caller owns them. */
struct job *bt_actpool_drop_queued(struct bt_actpool *p,
                                   const rd_kafka_topic_partition_list_t *parts);
/* Takes out the next queued job, or NULL (after bt_actpool_stop). */
struct job *bt_actpool_take_queued(struct bt_actpool *p);

#endif
