/* One activity task in the activity role, from its fetch (or its eager
 * submission) to its end: what admission, the activity threads and the
 * consumer thread each record of it. Internal to workers/. */
#ifndef BT_JOB_H
#define BT_JOB_H

#include <stdbool.h>
#include <stdint.h>
#include <librdkafka/rdkafka.h>

#include "codec.h"
#include "kafka.h"
#include "metrics.h"

struct job {
    struct job *next;
    rd_kafka_message_t *rkm; /* kept until done: its offset is committed then;
                              * NULL for a task submitted here (eager) */
    char *local;             /* a submitted task's bytes, or NULL */
    void *owner;             /* who submitted it: its outcome goes there */
    bool direct;             /* submitted straight to the activity threads: the
                              * thread that runs it also frees it */
    size_t local_len;
    uint64_t generation; /* of the offset tracker when it was fetched */
    struct bt_msg task;
    bool decoded;
    char *event; /* the encoded outcome, kept until Kafka confirmed it */
    size_t event_len;
    struct bt_kafka_batch delivery;
    int64_t due_ms;      /* its start-to-close timeout fires then (0: none) */
    int64_t ready_ms;    /* delayed: when its bucket will have a token */
    int64_t throttle_ms; /* its attempt was throttled: hold its bucket that long */
    bool asked;          /* a token take or acquire is in the pipeline */
    bool slotted;        /* holds its concurrency slot, or needs none */
    bool tokened;        /* took its rate-limit token, or needs none */
    bool leased; /* holds a lease (consumer thread: in the admission's leased list) */
    int64_t slot_backoff;      /* the next wait for a slot, ms */
    int64_t rate_since;        /* when it was first refused a token; 0: never */
    struct bt_series *waiting; /* the "waiting" gauge it counts in, or NULL */
    struct job *lease_next;    /* consumer thread: next in the admission's leased list */
    char lease_id[BT_ID_MAX + 320]; /* holder: "<worker>|<n>|<id>|<seq>|<attempt>" */
    bool held;        /* the copy of its attempt that runs here (consumer thread) */
    bool lost;        /* others took its attempt and lost it: reported failed */
    bool maybe_taken; /* a previous owner of its partition may have taken it */
    struct job *twin; /* other copies of the attempt, fetched again meanwhile:
                       * not run, their offsets released with this one */
};

/* When job's start-to-close timeout fires (ms), or 0 when it has none: a
 * task from Kafka's restarted when it was taken, an eager one's runs from
 * its decision. */
int64_t bt_job_due_ms(const struct job *job);

/* Frees job and what it owns (its message, its encoded outcome, its twins). */
void bt_job_free(struct job *job);
/* Moves job's count from the "waiting" gauge it was in to s (NULL: none). */
void bt_job_set_waiting(struct job *job, struct bt_series *s);
/* Whether job came from one of the partitions in parts (a revoke's). */
bool bt_job_revoked(const struct job *job, const rd_kafka_topic_partition_list_t *parts);
/* Appends job to the list *head (linked by next, its last job *tail). */
void bt_job_list_append(struct job **head, struct job **tail, struct job *job);
/* Takes the jobs revoked by parts out of the list *head (linked by next, its
 * last job *tail) and returns them as a list; *n counts them. */
struct job *bt_job_list_drop_revoked(struct job **head, struct job **tail,
                                     const rd_kafka_topic_partition_list_t *parts,
                                     int *n);
/* "<id>|<seq>|<attempt>" of job's task into buf (n >= BT_JOB_KEY_SIZE). */
#define BT_JOB_KEY_SIZE (BT_ID_MAX + 48)
void bt_job_attempt_key(const struct job *job, char *buf, size_t n);

#endif
