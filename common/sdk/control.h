/* Operators' controls of one instance: pause, resume and reset, applied by
 * the worker as events (control.c says what each does). */
#ifndef BT_CONTROL_H
#define BT_CONTROL_H

#include <stdint.h>

#include "codec.h"
#include "instance.h"
#include "replay.h"

/* Applies a pause, resume or reset message to inst: as bt_replay_apply
 * (which calls it). A reset applies to a finished instance too. */
int bt_control_apply(struct bt_instance *inst, const struct bt_msg *msg,
                     const struct bt_replay_env *env, const char **why);

/* The seq a reset message starts the new run from (its seq, or the last
 * failed step's), and 0; or BT_EINVALMSG with *why (static text, followed
 * by the instance's id in messages) when inst cannot be reset there. The
 * CLI asks before sending; the worker asks again when applying. */
int bt_control_reset_seq(const struct bt_instance *inst, const struct bt_msg *msg,
                         int64_t *seq, const char **why);

#endif
