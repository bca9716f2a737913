/* What the parts of the workflow role share: wftask.c (the handle and the
 * loop: poll, advance, commit), batch.c (the batch), wfapply.c (decoding,
 * loading and applying its events), wfsend.c (what it puts on Kafka),
 * flights.c (batches waiting for their delivery reports) and wfmetrics.c.
 * Not part of any public API: wftask.h is. */
#ifndef BT_WFTASK_INT_H
#define BT_WFTASK_INT_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <librdkafka/rdkafka.h>

#include "batch.h"
#include "crashes.h"
#include "idmap.h"
#include "inbox.h"
#include "kafka.h"
#include "replay.h"
#include "store.h"
#include "unseen.h"
#include "watchdog.h"
#include "wftask.h"

#define WF_MAX_QUEUES 64

/* A batch whose decisions are committed and whose messages are on their way
 * to Kafka. Heap-allocated: queued messages point at its batch counters. */
struct wf_flight {
    struct wf_flight *next;
    struct bt_kafka_batch cmds; /* the commands' delivery reports */
    struct bt_kafka_batch dlq;  /* the dead letters' and forwarded events' */
    struct bt_delivered *sent;  /* per instance, the commands moved out of its delta */
    size_t n_sent, cap_sent;
    struct bt_delivered *held; /* eager tasks whose outcome the batch carried */
    size_t n_held;
    rd_kafka_topic_partition_list_t *offsets; /* to commit when landed */
    int64_t retry_at;                         /* mono ms: re-produce failed commands */
    int backoff_ms;
};

/* A touched instance before its commit, to count its status change. */
struct wf_before {
    enum bt_status status;
    int64_t ver;
};

struct bt_wftask {
    const struct bt_config *cfg;
    const bt_registry *reg;
    rd_kafka_t *consumer, *producer;
    struct bt_partlease *leases; /* NULL: the group shares the partitions */
    struct bt_store *store;
    struct bt_idmap *cache;
    char *worker;
    char cluster[128];
    char *queues[WF_MAX_QUEUES]; /* served workflow queues */
    size_t n_queues;
    struct wf_batch batch;                /* the events being advanced */
    struct wf_flight *flights, **landing; /* in flight, oldest first; tail link */
    int n_flights;
    struct bt_wftask_stats stats;
    struct bt_wftask_eager eager;      /* .submit NULL: off */
    struct bt_inbox inbox;             /* eager tasks' outcomes (inbox.h) */
    rd_kafka_queue_t *wake;            /* the consumer's queue: yielded on delivery */
    const volatile sig_atomic_t *stop; /* set: give up a batch being retried */
    uint64_t taken;                    /* events taken from Kafka or the inbox */
    struct bt_watchdog watchdog;
    rd_kafka_t *lookback;    /* bt_unsent_drop_delivered's reader */
    struct bt_unseen unseen; /* eager tasks of failed tries (unseen.h) */
    /* partitions came (or an unblock): ask whether some workflow code
     * crashed a worker lately; until crashes.until (ms; 0: not careful),
     * starts are loaded, not assumed new, and the types it says are stopped
     * (crashes.h) */
    bool crash_check;
    struct bt_crashes_seen crashes;
    struct {
        struct bt_metric *started, *finished, *blocked_total, *in_flight, *blocked,
            *paused;
        struct bt_metric *timer_late;
        struct bt_series *events, *ignored, *dead, *conflicts, *batches, *round_trips,
            *lag, *forwarded, *eager;
        struct wf_before *before; /* of each touched instance */
        size_t cap_before;
        int64_t lag_at;                  /* ms: when the consumer lag was last measured */
        struct bt_wftask_stats exported; /* what the series hold of stats */
        uint64_t round_trips_exported;
        int64_t lag_exported;
    } m;
};

/* wftask.c: whether the stop flag is set. */
bool wf_stop_asked(const struct bt_wftask *wt);

/* ---- wfapply.c: a batch's events to its instances ---- */

/* Decodes the items; dead-letters what is not an event. */
void wf_decode_all(struct bt_wftask *wt);
/* Finds the instances of the pending items: cached, assumed new or loaded. */
int wf_resolve(struct bt_wftask *wt, bool only_conflicted);
/* Applies the pending items to their instances, touching those that took
 * one; forwards those of another queue's instances. */
void wf_apply_all(struct bt_wftask *wt, const struct bt_replay_env *env,
                  bool only_conflicted);
/* Replays touched[from..to). */
void wf_replay_range(struct bt_wftask *wt, const struct bt_replay_env *env, size_t from,
                     size_t to);

/* ---- wfsend.c: to Kafka ---- */

void wf_dead_letter(struct bt_wftask *wt, const struct wf_item *it, const char *reason);
/* Passes an item on to its instance's queue's events topic. */
void wf_forward_local(struct bt_wftask *wt, struct wf_item *it);
void wf_forward(struct bt_wftask *wt, struct wf_item *it, const char *queue);

/* The room each queue's activity role had for eager tasks, asked once per
 * batch and used up as its parts are marked. */
struct wf_eager_room {
    struct {
        const char *queue;
        int marked;
    } seen[8];
    size_t n_seen;
};
void wf_mark_eager(struct bt_wftask *wt, struct wf_eager_room *room, size_t from,
                   size_t to, int64_t now_ms);
int wf_produce_commands(struct bt_wftask *wt);
void wf_hand_off_inbox(struct bt_wftask *wt);

/* ---- flights.c ---- */

/* A batch's flight, empty. */
struct wf_flight *wf_flight_new(void);
/* Frees what a flight holds of its instances' commands. */
void wf_sent_release(struct wf_flight *f);
/* NULL is a no-op. */
void wf_flight_destroy(struct wf_flight *f);
void wf_land(struct bt_wftask *wt, int max_left, bool patient);
void wf_drop_flying(const struct bt_wftask *wt, struct bt_instance *inst);
/* The batch's flight joins those in the air, with the batch's offsets to
 * commit when it lands (none when a stop abandoned it: redelivered). */
void wf_take_off(struct bt_wftask *wt, bool abandoned);

/* ---- wfmetrics.c ---- */

void wf_register_metrics(struct bt_wftask *wt, struct bt_metrics *m);
/* Mirrors the counters of this thread into the registry. */
void wf_export_metrics(struct bt_wftask *wt);
/* Remember the touched instances' status and version before the commit,
 * then count the changes it made durable. */
void wf_before_commit(struct bt_wftask *wt);
void wf_after_commit(struct bt_wftask *wt);

#endif
