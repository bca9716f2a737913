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
#include "journal.h"
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

#endif
