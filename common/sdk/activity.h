/* Running one activity attempt: the activity side of the SDK (bt_act_*) and
 * the translation of its outcome into a completed or failed event. Thread
 * safe: each attempt has its own bt_act. */
#ifndef BT_ACTIVITY_H
#define BT_ACTIVITY_H

#include "codec.h"
#include "registry.h"

/* Runs def's function for the task and fills *event (a completed or failed
 * message for the task's instance; release with bt_msg_release). def NULL:
 * the activity is not registered here, which fails the attempt for good
 * with a clear error. Never fails itself: a crash-free activity always has
 * an outcome. */
void bt_activity_execute(const struct bt_activity_def *def, const struct bt_msg *task,
                         const char *worker, struct bt_msg *event);

/* Fills *event with a failure of the task's attempt without running any code:
 * WorkerLost, retryable (its retry policy decides). For an attempt that
 * other workers took and never finished, as an activity that crashes its
 * process leaves it (take_task.lua). */
void bt_activity_lost(const struct bt_msg *task, const char *worker,
                      struct bt_msg *event);

/* Encodes *event as bt_codec_encode does (a new buffer, caller frees), but an
 * outcome over max_payload bytes (a result no Kafka message can carry) is
 * turned into a failure first: PayloadTooLarge, not retryable, as every
 * attempt would return the same. */
char *bt_activity_encode(struct bt_msg *event, int64_t max_payload, size_t *len);

#endif
