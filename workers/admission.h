/* Admission of activity tasks (the activity role's consumer thread): a task
 * with a concurrency key first gets a lease on one of the key's slots, then a
 * task with a rate key takes a token from the key's bucket; one pipelined
 * call per batch and kind. A task that gets neither now is kept here, in a
 * delay list ordered by when it is to ask again, so neither the consumer nor
 * the other keys block. Only one task per key asks at a time (the key's
 * "asker"); the others wait in line behind it in arrival order and the next
 * one asks as soon as the one before was served: waiting costs a couple of
 * calls per token or slot, however many tasks wait. Leases held here are
 * renewed every third of their length and released, pipelined too, when the
 * attempt ends. Not thread safe: the consumer thread's. */
#ifndef BT_ADMISSION_H
#define BT_ADMISSION_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "job.h"
#include "metrics.h"
#include "registry.h"
#include "store.h"

struct bt_admission;

/* cfg, reg, store (the consumer thread's) and metrics (NULL: none) are
 * borrowed. Returns a new handle (bt_admission_destroy) or NULL. */
struct bt_admission *bt_admission_new(const struct bt_config *cfg, const bt_registry *reg,
                                      struct bt_store *store, const char *worker,
                                      struct bt_metrics *metrics);
/* The gauge of tasks waiting for a rate key's token (label key), in metrics:
 * the heartbeat shares its values in Redis for operators (alive.h). */
struct bt_metric *bt_admission_rate_waiting(struct bt_metrics *metrics);
/* Frees every task it still keeps (their leases given back) and the handle. */
void bt_admission_destroy(struct bt_admission *adm);

/* Gets each of jobs[0..n) its slot, then its token (NULL entries are
 * skipped). Those that must wait are kept here and set to NULL in jobs[];
 * the others are admitted. Redis unreachable: a task runs without a slot or
 * token (at-least-once and running beat a limit that cannot be asked). */
void bt_admission_admit(struct bt_admission *adm, struct job **jobs, size_t n);
/* Moves up to max kept tasks whose time to ask again has come into jobs[]
 * (to be admitted again). Returns how many. */
size_t bt_admission_due(struct bt_admission *adm, struct job **jobs, size_t max);
/* Wall-clock ms when the next kept task is to ask again; -1: none. */
int64_t bt_admission_next_ms(const struct bt_admission *adm);
/* Takes out the kept tasks fetched from partitions in parts (revoked: their
 * new owner runs them) and returns them as a list, to be given back
 * (bt_admission_unlease) and freed by the caller. */
struct job *bt_admission_drop_revoked(struct bt_admission *adm,
                                      const rd_kafka_topic_partition_list_t *parts);
/* How many tasks are kept here (they count as busy for backpressure). */
int bt_admission_waiting(const struct bt_admission *adm);

/* The attempt of job ended (or will not run): its lease is given back with
 * the next bt_admission_flush. */
void bt_admission_unlease(struct bt_admission *adm, struct job *job);
/* The attempt of job said its downstream throttled it: nobody takes its rate
 * key's tokens for job->throttle_ms. */
void bt_admission_throttled(struct bt_admission *adm, const struct job *job);
/* Gives back the leases of ended attempts and, every third of a lease, renews
 * those held; one round trip each. */
void bt_admission_flush(struct bt_admission *adm);

#endif
