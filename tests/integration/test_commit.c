/* bt_store_commit against a real redis-server: what each commit leaves in the
 * meta hash, the history list and the status indexes. commit.lua only gets
 * the keys and fields a commit changes (the indexes when the status moves,
 * the archive key on continue-as-new, the status when it may differ), so
 * these check that every kind of commit still writes what it did. */
#define _GNU_SOURCE /* strdup */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "err.h"
#include "harness.h"
#include "history.h"
#include "instance.h"
#include "instances.h"
#include "store.h"

static struct bt_test_redis srv;
static struct bt_store *store;

static void setup(void)
{
    char errstr[256] = "";
    char kp[] = "c", rule[] = "short=1s";
    char *rules[] = {rule};
    struct bt_config cfg = {.key_prefix = kp,
                            .retention_ms = 5000,
                            .retention_types = rules,
                            .n_retention_types = 1};

    cr_assert_eq(bt_test_redis_start(&srv), 0, "redis-server did not start");
    cfg.redis = srv.addr;
    store = bt_store_new(&cfg, errstr, sizeof(errstr));
    cr_assert_not_null(store, "bt_store_new: %s", errstr);
}

static void teardown(void)
{
    bt_store_destroy(store);
    bt_test_redis_stop(&srv);
}

TestSuite(commit, .init = setup, .fini = teardown, .timeout = 60);

static redisReply *cmd(const char *fmt, const char *arg)
{
    redisReply *reply = bt_redis_command(bt_store_redis(store), fmt, arg);

    cr_assert(reply && reply->type != REDIS_REPLY_ERROR, "%s: %s", fmt,
              reply ? reply->str : "no reply");
    return reply;
}

/* Field f of the meta hash of id, or "" when absent (static buffer). */
static const char *meta(const char *id, const char *f)
{
    static char value[256];
    char key[128];
    redisReply *reply;

    snprintf(key, sizeof(key), "HGET c:{%s} %s", id, f);
    reply = cmd(key, NULL);
    snprintf(value, sizeof(value), "%s",
             reply->type == REDIS_REPLY_STRING ? reply->str : "");
    freeReplyObject(reply);
    return value;
}

/* 1 when id is in index c:idx:<name>. */
static int indexed(const char *name, const char *id)
{
    char key[128];
    redisReply *reply;
    int in;

    snprintf(key, sizeof(key), "ZSCORE c:idx:%s %%s", name);
    reply = cmd(key, id);
    in = reply->type == REDIS_REPLY_STRING;
    freeReplyObject(reply);
    return in;
}

/* When run member ("<run>|<id>") of the retention set is due; -1 when it is
 * not there. */
static long long retention_due(const char *member)
{
    redisReply *reply = cmd("ZSCORE c:retention %s", member);
    long long due = reply->type == REDIS_REPLY_STRING ? atoll(reply->str) : -1;

    freeReplyObject(reply);
    return due;
}

/* Records in history list key (a full key name). */
static long long history_len(const char *key)
{
    redisReply *reply = cmd("LLEN %s", key);
    long long n = reply->integer;

    freeReplyObject(reply);
    return n;
}

static void record(struct bt_instance *inst, const char *ev)
{
    char text[64];

    snprintf(text, sizeof(text), "{\"ev\":\"%s\"}", ev);
    cr_assert_eq(bt_delta_history(&inst->delta, strdup(text)), 0);
}

static void commit(struct bt_instance *inst, int64_t now, int want)
{
    int result = -1;

    cr_assert_eq(bt_store_commit(store, &inst, 1, now, &result), 0);
    cr_assert_eq(result, want, "commit of %s: %d, want %d", inst->id, result, want);
}

/* A new running instance as the worker commits its start (an event read at
 * offset 7), with one step. */
static struct bt_instance *started(const char *id)
{
    struct bt_instance *inst = bt_test_instance_new(id);

    cr_assert_not_null(bt_instance_append(inst, 'a', "step"));
    record(inst, "started");
    commit(inst, 1000, 0);
    return inst;
}

Test(commit, a_start_writes_the_meta_fields_and_both_indexes)
{
    struct bt_instance *inst = started("s1");

    cr_expect_str_eq(meta("s1", "ver"), "1");
    cr_expect_str_eq(meta("s1", "status"), "running");
    cr_expect_str_eq(meta("s1", "type"), "flow");
    cr_expect_str_eq(meta("s1", "updated"), "1000");
    cr_expect_str_eq(meta("s1", "created"), "1000");
    cr_expect_str_eq(meta("s1", "jlen"), "1");
    cr_expect_str_eq(meta("s1", "hlen"), "1");
    cr_expect_str_eq(meta("s1", "kpos"), "cluster/events/0");
    cr_expect_str_eq(meta("s1", "koff"), "7");
    cr_expect_str_eq(meta("s1", "kts"), "990");
    cr_expect_str_eq(meta("s1", "run"), "1");
    cr_expect(indexed("all", "s1"));
    cr_expect(indexed("running", "s1"));
    cr_expect_not(indexed("none", "s1"));
    cr_expect_eq(history_len("c:{s1}:h"), 1);
    bt_instance_destroy(inst);
}

Test(commit, a_step_keeps_the_status_and_its_index_and_advances_the_rest)
{
    struct bt_instance *inst = started("s2");

    inst->koff = 8;
    inst->kts = 1990;
    inst->koff_stored = false; /* a new event applied, as the worker marks it */
    cr_assert_not_null(bt_instance_append(inst, 'a', "next"));
    record(inst, "activity_completed");
    record(inst, "activity_scheduled");
    commit(inst, 2000, 0);
    cr_expect_str_eq(meta("s2", "ver"), "2");
    cr_expect_str_eq(meta("s2", "status"), "running");
    cr_expect_str_eq(meta("s2", "updated"), "2000");
    cr_expect_str_eq(meta("s2", "jlen"), "2");
    cr_expect_str_eq(meta("s2", "hlen"), "3");
    cr_expect_str_eq(meta("s2", "koff"), "8");
    cr_expect_str_eq(meta("s2", "kts"), "1990");
    cr_expect(indexed("running", "s2"));
    cr_expect_eq(history_len("c:{s2}:h"), 3, "one element per record");

    /* a decision no Kafka event caused leaves the event position as it was */
    free(inst->kpos);
    inst->kpos = NULL;
    record(inst, "signal_buffered");
    commit(inst, 3000, 0);
    cr_expect_str_eq(meta("s2", "ver"), "3");
    cr_expect_str_eq(meta("s2", "kpos"), "cluster/events/0");
    cr_expect_str_eq(meta("s2", "koff"), "8");
    cr_expect_str_eq(meta("s2", "updated"), "3000");
    bt_instance_destroy(inst);
}

/* The score of id in the outbox index, or -1 when it is not there. */
static long long outbox_score(const char *id)
{
    redisReply *reply = cmd("ZSCORE c:outbox %s", id);
    long long score = reply->type == REDIS_REPLY_STRING ? atoll(reply->str) : -1;

    freeReplyObject(reply);
    return score;
}

static void command(struct bt_instance *inst, const char *field)
{
    cr_assert_eq(bt_delta_command(&inst->delta, strdup(field), strdup("tasks.default"),
                                  strdup(inst->id), strdup("{}"), 2),
                 0);
}

Test(commit, the_outbox_index_holds_the_time_of_the_last_commit_with_commands)
{
    struct bt_instance *inst = started("o1");

    cr_expect_eq(outbox_score("o1"), -1, "no commands yet");
    command(inst, "t|0|1");
    record(inst, "activity_scheduled");
    commit(inst, 2000, 0);
    bt_delta_reset(&inst->delta); /* as the worker does once it is committed */
    cr_expect_eq(outbox_score("o1"), 2000);
    /* delivered and forgotten: the index entry stays for the sweep */
    char field[] = "t|0|1";
    struct bt_delivered done = {inst->id, &(struct bt_command){.field = field}, 1};
    cr_assert_eq(bt_store_forget(store, &done, 1), 0);
    cr_assert_eq(bt_store_settle(store), 0);
    redisReply *reply = cmd("EXISTS %s", "c:{o1}:outbox");
    cr_expect_eq(reply->integer, 0);
    freeReplyObject(reply);
    cr_expect_eq(outbox_score("o1"), 2000);
    /* the grace of a later command runs from its own commit */
    command(inst, "t|1|1");
    record(inst, "activity_scheduled");
    commit(inst, 3000, 0);
    bt_delta_reset(&inst->delta);
    cr_expect_eq(outbox_score("o1"), 3000);
    /* a commit without commands leaves it */
    record(inst, "signal_buffered");
    commit(inst, 4000, 0);
    cr_expect_eq(outbox_score("o1"), 3000);
    bt_instance_destroy(inst);
}

Test(commit, each_record_is_one_list_element_in_order)
{
    struct bt_instance *inst = started("h1");
    static const char *const evs[] = {"activity_completed", "activity_scheduled",
                                      "activity_scheduled", "activity_scheduled"};
    struct bt_history h;

    for (int n = 1; n <= 4; n++) {
        bt_delta_reset(&inst->delta);
        for (int r = 0; r < n; r++)
            record(inst, evs[r]);
        commit(inst, 2000 + n, 0);
    }
    bt_history_init(&h);
    cr_assert_eq(bt_history_read(store, "h1", 0, 0, &h), 0);
    cr_assert_eq(h.n, 11);
    cr_expect_eq(h.entries, 11);
    for (size_t n = 1, i = 1; n <= 4; n++) {
        for (size_t r = 0; r < n; r++, i++) {
            char want[64];
            snprintf(want, sizeof(want), "{\"ev\":\"%s\"}", evs[r]);
            cr_expect_str_eq(h.records[i], want);
        }
    }
    cr_assert_eq(bt_history_read(store, "h1", 0, 9, &h), 0, "from the 10th on");
    cr_expect_eq(h.n, 2);
    bt_history_release(&h);
    cr_expect_str_eq(meta("h1", "hlen"), "11");
    bt_instance_destroy(inst);
}

/* Redis written before the list kept a run's history as a stream: an
 * instance running at the upgrade goes on in the list, and is read whole */
Test(commit, an_old_stream_history_is_read_before_the_list)
{
    struct bt_instance *inst = started("old1");
    struct bt_history h;

    freeReplyObject(cmd("DEL %s", "c:{old1}:h"));
    freeReplyObject(
        cmd("XADD c:{old1}:history * e {\"ev\":\"started\"} e %s", "{\"ev\":\"a\"}"));
    freeReplyObject(cmd("XADD c:{old1}:history * e %s", "{\"ev\":\"b\"}"));
    record(inst, "c");
    commit(inst, 2000, 0);
    bt_history_init(&h);
    cr_assert_eq(bt_history_read(store, "old1", 0, 0, &h), 0);
    cr_assert_eq(h.n, 4);
    cr_expect_str_eq(h.records[0], "{\"ev\":\"started\"}");
    cr_expect_str_eq(h.records[2], "{\"ev\":\"b\"}");
    cr_expect_str_eq(h.records[3], "{\"ev\":\"c\"}");
    cr_expect_eq(h.entries, 3, "two stream entries and one list element");
    cr_assert_eq(bt_history_read(store, "old1", 0, 3, &h), 0);
    cr_assert_eq(h.n, 1);
    cr_expect_str_eq(h.records[0], "{\"ev\":\"c\"}");
    bt_history_release(&h);
    bt_instance_destroy(inst);
}

/* The score of member in timers set key, or -1 when it is not there. */
static long long timer_score(const char *key, const char *member)
{
    char fmt[128];
    redisReply *reply;
    long long score;

    snprintf(fmt, sizeof(fmt), "ZSCORE %s %%s", key);
    reply = cmd(fmt, member);
    score = reply->type == REDIS_REPLY_STRING ? atoll(reply->str) : -1;
    freeReplyObject(reply);
    return score;
}

Test(commit, a_deleted_timer_leaves_the_timers_or_the_leased_set)
{
    struct bt_instance *inst = started("t1");

    cr_assert_eq(bt_delta_timer(&inst->delta, true, strdup("timeout|0|1|t1"), 5000), 0);
    cr_assert_eq(bt_delta_timer(&inst->delta, true, strdup("timeout|1|1|t1"), 6000), 0);
    record(inst, "activity_scheduled");
    commit(inst, 2000, 0);
    cr_expect_eq(timer_score("c:timers", "timeout|0|1|t1"), 5000);
    /* the scheduler claimed the second one: it moved to the leased set */
    freeReplyObject(cmd("ZREM c:timers %s", "timeout|1|1|t1"));
    freeReplyObject(cmd("ZADD c:timers:leased 9000 %s", "timeout|1|1|t1"));
    bt_delta_reset(&inst->delta);
    cr_assert_eq(bt_delta_timer(&inst->delta, false, strdup("timeout|0|1|t1"), 0), 0);
    cr_assert_eq(bt_delta_timer(&inst->delta, false, strdup("timeout|1|1|t1"), 0), 0);
    record(inst, "activity_completed");
    commit(inst, 3000, 0);
    cr_expect_eq(timer_score("c:timers", "timeout|0|1|t1"), -1);
    cr_expect_eq(timer_score("c:timers:leased", "timeout|1|1|t1"), -1);
    bt_instance_destroy(inst);
}

Test(commit, the_event_position_is_written_when_it_changed)
{
    struct bt_instance *inst = started("k1");

    /* a marker in Redis shows whether a commit wrote the field */
    freeReplyObject(cmd("HSET c:{k1} kpos %s", "marker"));
    inst->koff = 8;
    inst->kts = 1990;
    inst->koff_stored = false; /* next event, same partition */
    record(inst, "activity_completed");
    commit(inst, 2000, 0);
    cr_expect_str_eq(meta("k1", "kpos"), "marker", "the same partition is not rewritten");
    cr_expect_str_eq(meta("k1", "koff"), "8");
    cr_expect_str_eq(meta("k1", "kts"), "1990");

    /* no new event (a timer fired here, an eager step): nothing to write */
    freeReplyObject(cmd("HSET c:{k1} koff %s", "marker"));
    bt_delta_reset(&inst->delta);
    record(inst, "activity_scheduled");
    commit(inst, 3000, 0);
    cr_expect_str_eq(meta("k1", "koff"), "marker");

    /* another partition: all three */
    free(inst->kpos);
    inst->kpos = strdup("cluster/events/3");
    inst->kpos_stored = inst->koff_stored = false;
    inst->koff = 2;
    inst->kts = 3990;
    bt_delta_reset(&inst->delta);
    record(inst, "activity_completed");
    commit(inst, 4000, 0);
    cr_expect_str_eq(meta("k1", "kpos"), "cluster/events/3");
    cr_expect_str_eq(meta("k1", "koff"), "2");
    cr_expect_str_eq(meta("k1", "kts"), "3990");
    cr_expect_str_eq(meta("k1", "ver"), "4");
    bt_instance_destroy(inst);
}

Test(commit, a_status_change_moves_the_instance_between_indexes)
{
    struct bt_instance *inst = started("s3");

    inst->status = BT_STATUS_COMPLETED;
    inst->result = json_pack("{s:i}", "n", 2);
    inst->delta.meta_dirty = true;
    record(inst, "finished");
    commit(inst, 2000, 0);
    cr_expect_str_eq(meta("s3", "status"), "completed");
    cr_expect_str_eq(meta("s3", "result"), "{\"n\":2}");
    cr_expect_not(indexed("running", "s3"));
    cr_expect(indexed("completed", "s3"));
    cr_expect(indexed("all", "s3"));
    bt_instance_destroy(inst);
}

Test(commit, a_finished_instance_is_due_for_deletion_when_its_retention_ends)
{
    struct bt_instance *inst = started("r1"), *other = started("r2");

    cr_expect_eq(retention_due("1|r1"), -1, "a running instance is never due");
    inst->status = BT_STATUS_FAILED;
    inst->error = json_pack("{s:s, s:s}", "type", "Boom", "message", "");
    inst->delta.meta_dirty = true;
    record(inst, "finished");
    commit(inst, 2000, 0);
    cr_expect_eq(retention_due("1|r1"), 2000 + 5000, "the retention setting");
    /* a type with its own rule (retention-type short=1s) */
    free(other->type);
    other->type = strdup("short");
    other->status = BT_STATUS_CANCELLED;
    other->delta.meta_dirty = true;
    record(other, "finished");
    commit(other, 3000, 0);
    cr_expect_eq(retention_due("1|r2"), 3000 + 1000, "the type's own retention");
    bt_instance_destroy(inst);
    bt_instance_destroy(other);
}

Test(commit, a_stale_version_writes_nothing)
{
    struct bt_instance *inst = started("s4");

    inst->ver = 0; /* as a worker that lost the instance would have it */
    inst->status = BT_STATUS_FAILED;
    record(inst, "finished");
    commit(inst, 2000, BT_ECONFLICT);
    cr_expect_str_eq(meta("s4", "ver"), "1");
    cr_expect_str_eq(meta("s4", "status"), "running");
    cr_expect_str_eq(meta("s4", "updated"), "1000");
    cr_expect(indexed("running", "s4"));
    cr_expect_not(indexed("failed", "s4"));
    cr_expect_eq(history_len("c:{s4}:h"), 1);
    bt_instance_destroy(inst);
}

/* continue-as-new: the old run's history is archived, with or without a
 * status change in the same commit */
static void continue_as_new(const char *id, enum bt_status status)
{
    struct bt_instance *inst = started(id);
    char key[64];
    redisReply *ttl;

    record(inst, "continued_as_new");
    inst->delta.reset = true;
    inst->delta.reset_history = 1; /* "continued_as_new" ends run 1 */
    inst->run = 2;
    inst->status = status;
    inst->delta.meta_dirty = true;
    record(inst, "started");
    commit(inst, 2000, 0);
    cr_expect_str_eq(meta(id, "run"), "2");
    cr_expect_str_eq(meta(id, "hlen"), "1");
    cr_expect_str_eq(meta(id, "status"), bt_status_name(status));
    snprintf(key, sizeof(key), "c:{%s}:h:1", id);
    cr_expect_eq(history_len(key), 2, "run 1: started, continued_as_new");
    ttl = cmd("TTL %s", key);
    cr_expect_eq(ttl->integer, -1, "kept until the scheduler archives it");
    freeReplyObject(ttl);
    snprintf(key, sizeof(key), "1|%s", id);
    cr_expect_eq(retention_due(key), 2000 + 5000, "run 1 ended: due for its archive");
    snprintf(key, sizeof(key), "2|%s", id);
    cr_expect_eq(retention_due(key), bt_status_final(status) ? 2000 + 5000 : -1);
    snprintf(key, sizeof(key), "c:{%s}:h", id);
    cr_expect_eq(history_len(key), 1, "run 2: started");
    cr_expect(indexed(bt_status_name(status), id));
    cr_expect_eq(indexed("running", id), status == BT_STATUS_RUNNING);
    bt_instance_destroy(inst);
}

Test(commit, continue_as_new_archives_the_old_run)
{
    continue_as_new("s5", BT_STATUS_RUNNING);
}

Test(commit, continue_as_new_with_a_status_change_archives_and_moves)
{
    continue_as_new("s6", BT_STATUS_BLOCKED);
}

Test(commit, a_new_run_that_finishes_in_the_same_decision_ends_both_runs)
{
    continue_as_new("s7", BT_STATUS_COMPLETED);
}
