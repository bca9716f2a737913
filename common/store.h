/* Instances in Redis (docs/architecture.md#redis-keys): loading meta +
 * journal + unsent outbox in one pipelined round trip for a whole batch of
 * instances, and committing a batch of decisions, one Lua call each,
 * pipelined. Keys are hash-tagged by instance id: <kp>:{ID},
 * <kp>:{ID}:journal, <kp>:{ID}:h (and :h:<run> of runs that continued as
 * new; history.h), <kp>:{ID}:outbox, <kp>:{ID}:resend, and once deleted
 * <kp>:{ID}:deleted (archive.h). One store per thread (it owns a Redis
 * connection). */
#ifndef BT_STORE_H
#define BT_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "instance.h"
#include "redis.h"

struct bt_store;

/* A connection to cfg's Redis, a Redis Cluster when cfg says so (redis.h),
 * each call bounded by cfg's redis-timeout-ms; or NULL with errstr. */
struct bt_redis *bt_store_redis_new(const struct bt_config *cfg, char *errstr,
                                    size_t errstr_size);

/* Returns a new store on cfg's Redis (bt_store_destroy), or NULL with errstr. */
struct bt_store *bt_store_new(const struct bt_config *cfg, char *errstr,
                              size_t errstr_size);
void bt_store_destroy(struct bt_store *store);
/* The connection, for callers with their own commands. Borrowed. */
struct bt_redis *bt_store_redis(struct bt_store *store);
const char *bt_store_prefix(const struct bt_store *store);

/* Loads the outbox fields held by holder (an eager worker's name) too, as
 * local commands, so that it can tell which of its eager tasks a commit it
 * did not see succeed left unsubmitted. NULL: none (the default). */
void bt_store_set_holder(struct bt_store *store, const char *holder);

/* Fills insts[0..n) (fresh instances with only their id set) from Redis.
 * An instance not in Redis stays BT_STATUS_NONE. When unsent outbox commands
 * are found they are put in the instance's delta (to be produced again:
 * a worker died between its commit and its produce). The record of crashes
 * in its workflow code ("<kp>:{id}:crashes", workers/crashes.c) sets
 * crashes and crash_last. Returns 0, BT_EAGAIN
 * (Redis unreachable) or BT_EINVALMSG when stored state is corrupt (the
 * instance with it gets status BLOCKED and an error; others load). */
int bt_store_load(struct bt_store *store, struct bt_instance **insts, size_t n);

/* Commits the delta of each of insts[0..n) that is dirty, pipelined; on
 * success the instance's version advances, entries are marked clean and its
 * history and timers are cleared from the delta (commands stay, for the
 * caller to produce and then bt_store_forget). results[i]: 0, or BT_ECONFLICT
 * when another writer moved the instance on (reload and redo). Returns 0 or
 * BT_EAGAIN (then nothing is known to be committed; the caller retries with
 * fresh loads). A delta that resets the journal (continue-as-new) restarts
 * it and keeps the old run's history as <id>:h:<run>. Each run that a
 * commit ends (continue-as-new, or the instance reaching a final status)
 * enters the retention set "<kp>:retention" as "<run>|<id>", scored by when
 * its retention (cfg's retention and retention-type) ends: the scheduler
 * archives and deletes it then (archive.h). */
int bt_store_commit(struct bt_store *store, struct bt_instance **insts, size_t n,
                    int64_t now_ms, int *results);

/* bt_store_commit in two halves, so that Redis runs a part of a batch's
 * commits while the caller prepares the next part: _send appends and writes
 * the commits of the dirty ones of insts[0..n), marking them in sent[];
 * _recv reads their replies (results[] and the instances as above). Every
 * _send is followed, in order, by its _recv, also when _send failed. */
int bt_store_commit_send(struct bt_store *store, struct bt_instance **insts, size_t n,
                         int64_t now_ms, bool *sent);
int bt_store_commit_recv(struct bt_store *store, struct bt_instance **insts, size_t n,
                         const bool *sent, int *results);

/* The commands of one instance whose delivery Kafka confirmed. */
struct bt_delivered {
    char *id;
    struct bt_command *cmds;
    size_t n;
};

/* Forgets delivered commands: removes done[i].cmds from the outbox of each
 * done[i].id, all of them in one ack.lua call (a few for a huge batch). The
 * outbox index keeps the instances: the scheduler's sweep drops those left
 * with nothing to send (outbox_sweep.lua). Only appended to the pipeline: the
 * removal goes out with the next load or commit, in the same write, and its
 * reply is read there, or by bt_store_settle (call it when nothing else is
 * coming). A removal Redis did not answer (a restart) is kept and appended
 * again with the next write, so that the sweep does not send a delivered
 * command again. Returns 0 or BT_ENOMEM. */
int bt_store_forget(struct bt_store *store, const struct bt_delivered *done, size_t n);
/* Sends what bt_store_forget appended and reads its replies. 0 or BT_EAGAIN. */
int bt_store_settle(struct bt_store *store);

/* Shards (--redis-shards, docs/scaling.md): with N > 0 shards, instance id
 * belongs to shard slot(id) % N, and the key prefix of its keys and of its
 * shard's indexes (timers, outbox, idx:*, retention) is "<kp>:{<shard>}", so
 * that everything one commit touches is in one Redis Cluster slot; schedules
 * live in shard 0. With none, every prefix is <kp>. bt_store_shards: how
 * many prefixes there are to visit (1 with none). The _kp calls return
 * store's <kp> itself with no shards, else buf (BT_STORE_KP_SIZE bytes). */
#define BT_STORE_KP_SIZE 224
bool bt_store_sharded(const struct bt_store *store);
int bt_store_shards(const struct bt_store *store);
int bt_store_shard_of(const struct bt_store *store, const char *id);
const char *bt_store_shard_kp(const struct bt_store *store, int shard, char *buf,
                              size_t n);
const char *bt_store_kp_of(const struct bt_store *store, const char *id, char *buf,
                           size_t n);
/* The prefix of the schedules' keys (shard 0's). */
const char *bt_store_schedule_prefix(const struct bt_store *store);

/* Key of instance id with suffix ("" / ":journal" / ...) into buf: "<kp of
 * id>:{<id>}<suffix>". */
char *bt_store_key(const struct bt_store *store, const char *id, const char *suffix,
                   char *buf, size_t n);

/* The right to send instance id's unsent result again, for ttl_ms
 * ("<kp>:{id}:resend" = holder, SET NX PX): the worker that reloads the
 * instance and the outbox sweep may both find the result unsent at once; the
 * one that takes this looks for it on the topic and sends it, the other
 * leaves it. Returns 1 (taken, or holder's already), 0 (another has it) or
 * BT_EAGAIN. bt_store_give_resend gives it back before its time. */
int bt_store_take_resend(struct bt_store *store, const char *id, const char *holder,
                         int64_t ttl_ms);
void bt_store_give_resend(struct bt_store *store, const char *id);

/* The heartbeat key of worker ("<key prefix>:alive:<worker>") into buf. The
 * worker refreshes it every BT_ALIVE_EVERY_MS and it expires BT_ALIVE_TTL_MS
 * after the last refresh (workers/alive.c); the outbox sweep sends an eager
 * task on once its worker's key is gone. */
#define BT_ALIVE_EVERY_MS 1000
#define BT_ALIVE_TTL_MS   5000
char *bt_alive_key(const char *key_prefix, const char *worker, char *buf, size_t n);
/* The key that exists while a worker serving queue lives
 * ("<key prefix>:serving:<queue>"), same expiry. */
char *bt_serving_key(const char *prefix, const char *queue, char *buf, size_t n);
/* The sorted set of the workflow types that live workers of queue run
 * ("<key prefix>:types:<queue>"), each scored by its expiry (ms), the set
 * expiring with the last of them (workers/alive.h). */
char *bt_types_key(const char *prefix, const char *queue, char *buf, size_t n);

#endif
