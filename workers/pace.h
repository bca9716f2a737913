/* How far ahead of its threads the activity role takes tasks. Taking a task
 * (take_task.lua) starts its start-to-close timeout, so a task taken long
 * before a thread is free would time out waiting for one. A task is taken
 * when it would start in time: at once (a thread is free for it), or, at the
 * threads' recent pace, within BT_PACE_AHEAD_MS and a quarter of its
 * timeout. The tasks fetched beyond wait here, untaken, their timers still
 * allowing the wait for a worker (--schedule-to-start-ms). Fast steps never
 * wait here; steps of a second or more are taken as threads come free.
 * The pace (bt_pace_note) is thread safe; the list is the consumer
 * thread's. Internal to workers/. */
#ifndef BT_PACE_H
#define BT_PACE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <librdkafka/rdkafka.h>

#include "job.h"

#define BT_PACE_AHEAD_MS 1000 /* the most work taken ahead of the threads */

struct bt_pace {
    _Atomic int64_t run_us;  /* recent run time of a task (see bt_pace_note) */
    _Atomic int64_t runs;    /* tasks run: the pace is trusted after a few */
    struct job *head, *tail; /* fetched, waiting to be taken, in fetch order */
    int n;
};

/* A task ran for us microseconds (any thread). */
void bt_pace_note(struct bt_pace *p, int64_t us);
/* Whether a task with a start-to-close of timeout_ms (0: none) starts in
 * time behind `ahead` queued tasks while `busy` of `threads` threads run. */
bool bt_pace_fits(const struct bt_pace *p, int threads, int busy, int ahead,
                  int64_t timeout_ms);

/* Consumer thread: job waits to be taken (after those waiting already). */
void bt_pace_wait(struct bt_pace *p, struct job *job);
/* The task that waited longest, or NULL. */
struct job *bt_pace_first(const struct bt_pace *p);
/* Takes out up to max waiting tasks, oldest first, into out; their count. */
size_t bt_pace_take(struct bt_pace *p, struct job **out, size_t max);
/* Takes out the waiting tasks of the partitions in parts (a revoke), as a
 * list linked by next; the caller owns them. */
struct job *bt_pace_drop_revoked(struct bt_pace *p,
                                 const rd_kafka_topic_partition_list_t *parts);

#endif
