/* The workflow role's batch (wftask.c): the events of one poll and the
 * instances they touch, kept across the rounds a conflict or a suspect
 * event redoes. Its own struct, apart from the worker handle, so that a line
 * says whether it works on the batch, the flights in the air or the inbox;
 * and so that what a round keeps or forgets of it is said in one place. */
#ifndef BT_BATCH_H
#define BT_BATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <librdkafka/rdkafka.h>

#include "codec.h"
#include "idmap.h"
#include "inbox.h"
#include "instance.h"

#define WF_BATCH_MAX 1024 /* events advanced at a time */

struct wf_flight;

/* One event of the batch and what became of it. */
struct wf_item {
    rd_kafka_message_t *rkm;      /* NULL for a local event (an eager task's outcome) */
    struct bt_local_event *local; /* from the inbox */
    struct bt_msg msg;
    struct bt_instance *inst;
    bool decoded;
    bool conflicted;
    bool assumed;   /* its instance taken for new without a load (a start) */
    bool forwarded; /* to the topic of its instance's queue */
    bool suspect;   /* refused by a cached instance that may be behind Redis */
    bool verified;  /* refused once already, by a fresh load: dead-letter it */
};

/* The batch being advanced: the events of one poll and the instances they
 * touch. Its flight collects the delivery reports of its commands and joins
 * the flights in the air once the batch is committed. */
struct wf_batch {
    struct wf_item items[WF_BATCH_MAX];
    size_t n_items;
    struct bt_instance **touched; /* each once, in first-touch order */
    size_t n_touched, cap_touched;
    uint64_t no; /* batches so far: an instance's mark says it is touched */
    struct wf_flight *flight;
};

/* Appends a Kafka message (rkm) or an inbox event (local), taken over.
 * Returns whether the batch is full now. */
bool wf_batch_add(struct wf_batch *b, rd_kafka_message_t *rkm,
                  struct bt_local_event *local);
/* Adds inst to the touched instances, once per batch. */
void wf_batch_touch(struct wf_batch *b, struct bt_instance *inst);

/* The instances below are cached (in cache) while the batch works on them;
 * the functions that forget one also take it out of the cache and free it. */

/* Forgets the instances of suspect items (not committed this round), and
 * marks all their items to be redone with a fresh load. Returns how many. */
size_t wf_batch_reload_suspects(struct wf_batch *b, struct bt_idmap *cache);
/* Forgets instances whose commit lost a race (results[i] for touched[i]);
 * their items are redone. Returns how many; *raced: whether one was loaded,
 * not just assumed new. */
size_t wf_batch_drop_conflicts(struct wf_batch *b, struct bt_idmap *cache,
                               const int *results, bool *raced);
/* After a failed try: forgets every touched instance. */
void wf_batch_drop_touched(struct wf_batch *b, struct bt_idmap *cache);
/* After the commit: forgets the instances that ended (their commands are in
 * the flight), those whose code crashed workers (crashes.h) and those
 * cached only to find they are unknown or another queue's. */
void wf_batch_drop_done(struct wf_batch *b, struct bt_idmap *cache);

/* The offsets after the batch's messages, per partition (new). */
rd_kafka_topic_partition_list_t *wf_batch_offsets(const struct wf_batch *b);
/* Frees the items' messages and empties the batch for the next poll. */
void wf_batch_release(struct wf_batch *b);
/* Frees what the batch keeps between polls. */
void wf_batch_free(struct wf_batch *b);

#endif
