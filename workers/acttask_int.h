/* What the parts of the activity role share: acttask.c (the handle, the
 * consumer thread and the activity threads' work), actproduce.c (outcomes
 * and dead letters to Kafka, and reaping their delivery reports) and
 * acteager.c (tasks submitted by this worker's workflow role, and their
 * hand-off at a clean stop). Not part of any public API: acttask.h is. */
#ifndef BT_ACTTASK_INT_H
#define BT_ACTTASK_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <librdkafka/rdkafka.h>

#include "actpool.h"
#include "acttask.h"
#include "admission.h"
#include "idmap.h"
#include "job.h"
#include "offsets.h"
#include "pace.h"
#include "redelivered.h"
#include "recent.h"
#include "store.h"
#include "watchdog.h"

struct bt_acttask {
    const struct bt_config *cfg;
    const bt_registry *reg;
    char *worker;
    char *taker; /* "<worker>/<start ms>": this process in take_task.lua's marks */
    struct bt_redelivered redelivered; /* consumer thread only */
    rd_kafka_t *consumer, *producer;
    struct bt_partlease *leases; /* NULL: the group shares the partitions */
    struct bt_store *store;      /* consumer thread's */
    pthread_t consumer_thread;
    atomic_bool stop;
    struct bt_actpool *pool; /* the activity threads */

    pthread_mutex_t lock;                    /* guards submitted and stats */
    struct job *submitted, **submitted_tail; /* eager tasks for the consumer thread */
    int n_submitted;

    struct job *sending;        /* consumer thread only: awaiting delivery reports */
    struct bt_admission *adm;   /* consumer thread only: slots and tokens */
    struct bt_pace pace;        /* fetched tasks not taken yet: see pace.h */
    struct bt_offsets *offsets; /* consumer thread only */
    struct bt_idmap *held;      /* consumer thread only: attempt key -> its job */
    struct bt_recent *sent;     /* consumer thread only: attempts whose outcome went */
    uint64_t taken;             /* consumer thread only: messages taken from Kafka */
    struct bt_watchdog watchdog;
    bool fetch_stopped; /* failpoint stop-task-fetch fired */
    bool paused;

    char *queues[64]; /* served task queues */
    size_t n_queues;
    rd_kafka_queue_t *wake; /* the consumer's queue: yielded on a submit */
    void (*deliver)(void *owner, const char *suffix, const char *id, const char *payload,
                    size_t len);

    struct bt_acttask_stats stats; /* under lock */
    struct {
        struct bt_metric *attempts, *retries, *duration, *wait;
        struct bt_series *dead, *round_trips, *lag, *untaken, *overdue;
        int64_t lag_at; /* consumer thread: when the lag was last measured */
    } m;
};

/* ---- acttask.c ---- */

/* Counts one more in a field of at->stats (any thread). */
void act_count(struct bt_acttask *at, uint64_t *field);
/* Queues job for the activity threads. */
void act_enqueue(struct bt_acttask *at, struct job *job);
/* job's attempt is over here: it and its twins let their offsets go. sent:
 * Kafka confirmed its outcome, so the attempt goes to at->sent (recent.h). */
void act_unhold(struct bt_acttask *at, struct job *job, bool sent);
/* How many tasks the role holds (queued, running, waiting for a token):
 * past it, it fetches no more from Kafka and takes no eager task. */
int act_buffer_max(const struct bt_acttask *at);
/* Whether a task with a start-to-close of timeout_ms (0: none), queued
 * after `more` others about to be, starts in time here (pace.h) and fits
 * the buffer; busy and queued are the pool's (bt_actpool_load). */
bool act_fits(struct bt_acttask *at, int busy, int queued, int more, int64_t timeout_ms);
/* A task's start-to-close timeout, from its message (0: none). */
int64_t act_timeout_ms(const struct bt_msg *task);

/* ---- actfetch.c ---- */

/* Pauses the task partitions while the role holds act_buffer_max tasks,
 * resumes them (where they were consumed up to) once it holds half. */
void act_backpressure(struct bt_acttask *at);
/* Failpoint stop-task-fetch: pauses the partitions behind the role's back. */
void act_stop_fetch_once(struct bt_acttask *at);

/* ---- actproduce.c ---- */

/* Sends the task message rkm to the DLQ, waiting until it is on Kafka. */
void act_dead_letter(struct bt_acttask *at, const rd_kafka_message_t *rkm,
                     const char *reason);
/* Queues the job's outcome for Kafka; a full local queue is retried later.
 * A submitted task's outcome goes back to this worker's workflow role: then
 * returns true (nothing to wait for). */
bool act_produce_event(struct bt_acttask *at, struct job *job);
/* Consumer thread: releases the jobs whose outcome Kafka confirmed;
 * re-sends failed ones. */
void act_reap(struct bt_acttask *at);

/* ---- acteager.c ---- */

/* At a clean stop, once the threads are stopped: the tasks queued or waiting
 * but never run are not committed, so Kafka redelivers them; the eager ones
 * (submitted here, never on Kafka) are handed to Kafka. */
void act_hand_off_unrun(struct bt_acttask *at);

#endif
