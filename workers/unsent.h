/* Commands a worker finds unsent in the outbox of an instance it loads: the
 * worker that committed them died (or lost Redis) before it saw them
 * delivered. They are sent again; duplicates of commands and events are
 * dropped where they arrive, but a result goes to the user's code: one
 * that is on the results topic already is forgotten instead of sent. */
#ifndef BT_UNSENT_H
#define BT_UNSENT_H

#include <stddef.h>
#include <librdkafka/rdkafka.h>

#include "config.h"
#include "instance.h"
#include "store.h"

/* Drops from the deltas of insts[0..n) the results another process is
 * sending (bt_store_take_resend, as worker) and those found on the results
 * topic, which it forgets from their outboxes (bt_store_forget). *reader is
 * the lookback reader, made on first need (the caller closes it). Returns
 * how many were found sent. Kafka not answering finds none: sent twice
 * rather than lost. */
size_t bt_unsent_drop_delivered(rd_kafka_t **reader, const struct bt_config *cfg,
                                struct bt_store *store, const char *worker,
                                struct bt_instance **insts, size_t n);

/* A message this worker holds for an eager task (the task itself, or its
 * outcome for the workflow role), to hand to Kafka at a clean stop. */
struct bt_handoff {
    const char *suffix; /* topic suffix: "tasks.<queue>", "events[.<queue>]" */
    const char *id;     /* key: the instance */
    const void *payload;
    size_t len;
    int64_t seq; /* the task's, naming its held outbox field */
    int attempt;
};

/* At a clean stop: produces h[0..n) and, once Kafka has them, forgets their
 * held outbox fields, so that the next owner takes them at once (else the
 * sweep would send the tasks again once the worker's alive key is gone, and
 * a finished one would run twice). Returns how many were handed off. */
size_t bt_unsent_hand_off(rd_kafka_t *producer, const struct bt_config *cfg,
                          struct bt_store *store, const char *worker,
                          const struct bt_handoff *h, size_t n);

#endif
