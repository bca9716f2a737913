/* The outbox: what a worker committed but did not see delivered is sent by
 * baton-scheduler once its grace has passed (the worker died in between),
 * and forgotten once Kafka has it; what a worker saw delivered is forgotten
 * by the worker itself, for a whole batch of instances at once (ack.lua).
 * Emptied outboxes leave the outbox index at the scheduler's sweep. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "stack.h"

static struct bt_stack stack;

static void setup(void)
{
    cr_assert_eq(bt_stack_start(&stack, NULL), 0, "cannot start the stack");
}

static void teardown(void)
{
    bt_stack_stop(&stack);
}

/* Outbox hashes left in Redis; -1 on error. */
static long long outboxes_left(void)
{
    return bt_stack_count_instance_keys(&stack, ":outbox");
}

/* Entries of the outbox indexes; -1 on error. */
static long long indexed(void)
{
    return bt_stack_zcard(&stack, "outbox");
}

/* Puts id in its shard's outbox index, committed long ago (past the
 * scheduler's grace). */
static void index_long_ago(const char *id)
{
    char kp[128];
    redisReply *reply = bt_stack_redis(&stack, "ZADD %s:outbox 1 %s",
                                       bt_stack_kp_of(&stack, id, kp, sizeof(kp)), id);

    cr_assert(reply && reply->type == REDIS_REPLY_INTEGER);
    freeReplyObject(reply);
}

/* Outbox hashes plus entries of the outbox index left in Redis; -1 on error. */
static long long outbox_left(void)
{
    long long keys = outboxes_left(), index = indexed();

    return keys < 0 || index < 0 ? -1 : keys + index;
}

/* A result message of instance id, made age_s ago: its payload into buf, its
 * length returned. */
static size_t result_payload(char *buf, size_t n, const char *id, int v, int age_s)
{
    int len = snprintf(buf, n,
                       "{\"v\":1,\"type\":\"result\",\"id\":\"%s\",\"workflow\":\"w\","
                       "\"status\":\"completed\",\"result\":{\"v\":%d},\"ts\":%lld}",
                       id, v, ((long long)time(NULL) - age_s) * 1000);
    cr_assert(len > 0 && (size_t)len < n);
    return (size_t)len;
}

/* Puts a result in the outbox as a worker writes it there:
 * "<topic suffix>\n<key>\n<payload>", committed long ago. */
static void put_unsent(const char *id, const char *field, const char *payload)
{
    char key[256];
    redisReply *reply = bt_stack_redis(
        &stack, "HSET %s %s results\n%s\n%s",
        bt_stack_key(&stack, id, ":outbox", key, sizeof(key)), field, id, payload);

    cr_assert(reply && reply->type == REDIS_REPLY_INTEGER);
    freeReplyObject(reply);
    index_long_ago(id);
}

static void put_unsent_result(const char *id, const char *field, int v)
{
    char payload[512];

    result_payload(payload, sizeof(payload), id, v, 60); /* as old as its commit */
    put_unsent(id, field, payload);
}

/* Result messages read back, by instance ob-<n> (n[0]: any other). */
struct sent {
    int n[3];
    json_int_t v2;
};

static bool count_result(const json_t *msg, void *arg)
{
    struct sent *got = arg;
    const char *id = json_string_value(json_object_get(msg, "id"));
    int k = id && !strcmp(id, "ob-1") ? 1 : id && !strcmp(id, "ob-2") ? 2 : 0;

    got->n[k]++;
    if (k == 2)
        got->v2 =
            json_integer_value(json_object_get(json_object_get(msg, "result"), "v"));
    return false;
}

Test(outbox, the_scheduler_sends_what_a_dead_worker_left_unsent_then_forgets_it,
     .init = setup, .fini = teardown, .timeout = 60)
{
    bool gone;

    put_unsent_result("ob-1", "r", 1);
    put_unsent_result("ob-2", "r", 2);
    put_unsent_result("ob-2", "r2", 3); /* two commands of one instance */
    /* an index entry whose outbox is already empty is dropped too */
    index_long_ago("ob-3");
    cr_assert_eq(outbox_left(), 2 + 3);

    cr_assert_gt(bt_stack_scheduler(&stack), 0);
    BT_TEST_WAIT_UNTIL(gone, outbox_left() == 0, 30000);
    cr_assert(gone, "the sent commands must leave the outbox: %lld left", outbox_left());
    /* what left the outbox is on Kafka: every command, once or more */
    struct sent got = {0};
    bt_stack_read_all(&stack, "results", 10000, count_result, &got);
    cr_assert_geq(got.n[0], 0);
    cr_assert_eq(got.n[1], 1, "ob-1's command sent %d times", got.n[1]);
    cr_assert_eq(got.n[2], 2, "ob-2's two commands sent %d times", got.n[2]);
    cr_assert(got.v2 == 2 || got.v2 == 3, "ob-2's last result: %lld", (long long)got.v2);
}

Test(outbox, a_worker_forgets_every_delivered_command_of_its_batches, .init = setup,
     .fini = teardown, .timeout = 120)
{
    const int n = 300;
    struct bt_stack_results r;
    pid_t worker = bt_stack_worker(&stack, "flows", NULL);
    bool gone;

    cr_assert_gt(worker, 0);
    /* many instances per batch: one ack.lua call covers them all */
    bt_stack_start_chains(&stack, "fg", 0, n);
    bt_stack_results(&stack, &r, n, 90000);
    cr_assert_eq(r.distinct, n, "results: %d of %d", r.distinct, n);
    json_decref(r.by_id);
    /* no scheduler runs yet: only the worker's acks can empty the outboxes */
    BT_TEST_WAIT_UNTIL(gone, outboxes_left() == 0, 10000);
    cr_assert(gone, "%lld outboxes left after every result", outboxes_left());
    cr_assert_eq(bt_test_stop(worker, BT_TEST_STOP_MS), 0);
    /* they stay indexed until the sweep finds them empty past its grace; one
     * sweep step looks at 256: the rest of the round follows */
    cr_assert_gt(indexed(), 256, "the index holds the emptied outboxes");
    cr_assert_gt(bt_stack_scheduler(&stack), 0);
    BT_TEST_WAIT_UNTIL(gone, indexed() == 0, 30000);
    cr_assert(gone, "%lld index entries left", indexed());
    cr_assert_eq(outboxes_left(), 0);
}

/* A worker can die after Kafka took a result and before it removed it from
 * the outbox. The sweep finds such a result on the results topic and only
 * forgets it; a result that is not there is sent. */
Test(outbox, the_scheduler_does_not_send_again_a_result_already_on_the_topic,
     .init = setup, .fini = teardown, .timeout = 60)
{
    char delivered[512];
    size_t len = result_payload(delivered, sizeof(delivered), "ob-1", 1, 60);
    struct sent got = {0};
    bool gone;

    /* some traffic around it on the partitions: the look reads past it */
    for (int i = 0; i < 50; i++) {
        char id[32], other[512];
        snprintf(id, sizeof(id), "other-%d", i);
        size_t n = result_payload(other, sizeof(other), id, i, 60);
        cr_assert_eq(bt_stack_produce(&stack, "results", id, other, n), 0);
        if (i == 25)
            cr_assert_eq(bt_stack_produce(&stack, "results", "ob-1", delivered, len), 0);
    }
    put_unsent("ob-1", "r", delivered);
    put_unsent_result("ob-2", "r", 2);
    cr_assert_gt(bt_stack_scheduler(&stack), 0);
    BT_TEST_WAIT_UNTIL(gone, outbox_left() == 0, 30000);
    cr_assert(gone, "the outbox must be emptied: %lld left", outbox_left());
    bt_stack_read_all(&stack, "results", 10000, count_result, &got);
    cr_assert_eq(got.n[1], 1, "ob-1's result is on the topic %d times", got.n[1]);
    cr_assert_eq(got.n[2], 1, "ob-2's result is on the topic %d times", got.n[2]);
    cr_assert_eq(bt_test_count_lines_with(stack.log, "result found sent"), 1);
}

/* The outbox index's score of id (when its outbox is next looked at, less
 * the grace); -1 when not indexed. */
static double index_score(const char *id)
{
    char kp[128];
    redisReply *reply = bt_stack_redis(&stack, "ZSCORE %s:outbox %s",
                                       bt_stack_kp_of(&stack, id, kp, sizeof(kp)), id);
    double score = reply && reply->type == REDIS_REPLY_STRING ? atof(reply->str) : -1;

    freeReplyObject(reply);
    return score;
}

/* The sweep picks instances by their last commit with commands, then reads
 * their outboxes: a result committed in between (its worker back from a
 * Redis outage, committing a batch it held) is on its way from that worker.
 * Seen in chaos runs (redis down 10 s; the broker down 12 s, the worker's
 * copy queued in librdkafka): the sweep sent it too, one result twice. The
 * sweep now leaves a result to its worker for 30 s after it was made; here
 * the "worker" delivers it and forgets it after the sweep's claim: one
 * result. */
Test(outbox, the_sweep_leaves_a_result_made_within_its_grace_to_its_worker, .init = setup,
     .fini = teardown, .timeout = 60)
{
    char payload[512];
    /* made 25 s ago: within the 30 s its worker has, looked at again 5 s on */
    size_t len = result_payload(payload, sizeof(payload), "ob-1", 1, 25);
    struct sent got = {0};
    char key[256];
    bool ok;

    put_unsent("ob-1", "r", payload); /* indexed long ago */
    cr_assert_gt(bt_stack_scheduler(&stack), 0);
    BT_TEST_WAIT_UNTIL(ok, index_score("ob-1") > 1, 20000);
    cr_assert(ok, "the sweep never looked at ob-1");
    /* what its worker does meanwhile: deliver it, then forget it */
    cr_assert_eq(bt_stack_produce(&stack, "results", "ob-1", payload, len), 0);
    freeReplyObject(bt_stack_redis(
        &stack, "HDEL %s r", bt_stack_key(&stack, "ob-1", ":outbox", key, sizeof(key))));
    /* looked at again once the result is BT_OUTBOX_RESULT_GRACE_MS (30 s) old */
    BT_TEST_WAIT_UNTIL(ok, outbox_left() == 0, 30000);
    cr_assert(ok, "the emptied outbox leaves the index: %lld left", outbox_left());
    bt_stack_read_all(&stack, "results", 10000, count_result, &got);
    cr_assert_eq(got.n[1], 1, "ob-1's result is on the topic %d times", got.n[1]);
}

static bool count_once(const json_t *msg, void *arg)
{
    const char *id = json_string_value(json_object_get(msg, "id"));
    *(int *)arg += id && !strcmp(id, "once-1");
    return false;
}

/* The same death seen by the next worker: the killed one's last batch is
 * redelivered, the instance loaded with the result still in its outbox. The
 * worker finds it on the topic and forgets it: one result. */
Test(outbox, a_result_delivered_before_its_worker_died_is_not_sent_again, .init = setup,
     .fini = teardown, .timeout = 120)
{
    int status, results = 0;
    pid_t first, second;
    bool gone;

    bt_stack_setenv(&stack, 0, "BATON_FAILPOINTS=exit-before-forgetting-a-result");
    /* the Kafka path: no eager task of the dead worker in the outbox, which
     * only the scheduler's sweep (not running here) would send */
    first = bt_stack_worker(&stack, "flows", (const char *const[]){"--eager=0", NULL});
    cr_assert_gt(first, 0);
    bt_stack_setenv(&stack, 0, NULL);
    cr_assert_eq(
        bt_stack_start_wf(&stack, "chain3", "once-1", json_pack("{s:i}", "v", 1)), 0);
    status = bt_test_wait(first, 60000);
    cr_assert_eq(status, 9, "the worker should have exited at its failpoint: %d", status);
    cr_assert_eq(outboxes_left(), 1, "the result stays in the dead worker's outbox");

    second = bt_stack_worker(&stack, "flows", (const char *const[]){"--eager=0", NULL});
    cr_assert_gt(second, 0);
    BT_TEST_WAIT_UNTIL(gone, outboxes_left() == 0, 60000);
    cr_assert(gone, "the next worker must clear the outbox");
    bt_stack_read_all(&stack, "results", 10000, count_once, &results);
    cr_assert_eq(results, 1, "once-1 has %d results", results);
    cr_assert_eq(bt_test_count_lines_with(stack.log, "result found sent"), 1);
    cr_assert_eq(bt_test_stop(second, BT_TEST_STOP_MS), 0);
}

/* The worker that reloads an instance and the sweep may find its result
 * unsent at the same moment: only the one holding the right to send it
 * (<kp>:{id}:resend) sends. Another process holds it here: the sweep leaves
 * the result while the right lasts, then sends it once. */
Test(outbox, the_sweep_leaves_a_result_another_process_is_sending, .init = setup,
     .fini = teardown, .timeout = 60)
{
    struct sent got = {0};
    redisReply *reply;
    bool gone;

    put_unsent_result("ob-1", "r", 1);
    char key[256];
    reply = bt_stack_redis(&stack, "SET %s other PX 4000",
                           bt_stack_key(&stack, "ob-1", ":resend", key, sizeof(key)));
    cr_assert(reply && reply->type == REDIS_REPLY_STATUS);
    freeReplyObject(reply);
    cr_assert_gt(bt_stack_scheduler(&stack), 0);
    BT_TEST_WAIT_UNTIL(
        gone, bt_test_count_lines_with(stack.log, "another process is sending") > 0,
        20000);
    cr_assert(gone, "the sweep never met the other sender's right");
    cr_assert_eq(outboxes_left(), 1, "the result stays while the other holds the right");
    BT_TEST_WAIT_UNTIL(gone, outbox_left() == 0, 30000);
    cr_assert(gone, "sent once the right expired: %lld left", outbox_left());
    bt_stack_read_all(&stack, "results", 10000, count_result, &got);
    cr_assert_eq(got.n[1], 1, "ob-1's result is on the topic %d times", got.n[1]);
}

/* A result left in an outbox past every grace whose worker (the one that
 * wrote the run's last history record) still lives is that worker's to
 * deliver: it may be waiting out a Kafka outage with the result queued
 * (seen: 5 results twice with the broker down 25 s). The sweep leaves it
 * while the worker's heartbeat key lives, and sends it once it is gone. */
Test(outbox, the_sweep_leaves_a_result_to_its_live_worker_and_sends_it_once_it_is_gone,
     .init = setup, .fini = teardown, .timeout = 90)
{
    struct sent got = {0};
    char key[256], record[256];
    redisReply *reply;
    int64_t until;
    bool ok;

    put_unsent_result("ob-1", "r", 1); /* made a minute ago */
    snprintf(record, sizeof(record),
             "{\"ev\":\"finished\",\"status\":\"completed\",\"ts\":%lld,"
             "\"worker\":\"here:7\"}",
             (long long)time(NULL) * 1000 - 60000);
    reply = bt_stack_redis(&stack, "RPUSH %s %s",
                           bt_stack_key(&stack, "ob-1", ":h", key, sizeof(key)), record);
    cr_assert(reply && reply->type == REDIS_REPLY_INTEGER);
    freeReplyObject(reply);
    reply = bt_stack_redis(&stack, "SET %s:alive:here:7 1 PX 60000", stack.prefix);
    cr_assert(reply && reply->type == REDIS_REPLY_STATUS);
    freeReplyObject(reply);

    cr_assert_gt(bt_stack_scheduler(&stack), 0);
    BT_TEST_WAIT_UNTIL(ok, index_score("ob-1") > 1, 20000);
    cr_assert(ok, "the sweep never looked at ob-1");
    /* past another look (a grace later): still its worker's */
    until = bt_test_now_ms() + 7000;
    while (bt_test_now_ms() < until) {
        cr_assert_eq(outboxes_left(), 1, "sent while its worker lives");
        bt_test_sleep_ms(100);
    }
    freeReplyObject(bt_stack_redis(&stack, "DEL %s:alive:here:7", stack.prefix));
    BT_TEST_WAIT_UNTIL(ok, outbox_left() == 0, 40000);
    cr_assert(ok, "sent once its worker was gone: %lld left", outbox_left());
    bt_stack_read_all(&stack, "results", 10000, count_result, &got);
    cr_assert_eq(got.n[1], 1, "ob-1's result is on the topic %d times", got.n[1]);
}

static bool count_tasks(const json_t *msg, void *arg)
{
    const char *id = json_string_value(json_object_get(msg, "id"));
    int *n = arg;

    n[id && !strcmp(id, "held-dead") ? 0 : id && !strcmp(id, "held-live") ? 1 : 2]++;
    return false;
}

/* Eager tasks in the outbox, under fields held by their worker: the sweep
 * sends the one whose worker is gone, leaves the one of a live worker, and
 * forgets without sending one of a live worker whose deadline passed long
 * ago (its timer retried it; a commit that went through unseen left it). */
Test(outbox, the_sweep_sends_the_held_tasks_of_dead_workers_only, .init = setup,
     .fini = teardown, .timeout = 60)
{
    long long now = (long long)time(NULL) * 1000;
    const struct {
        const char *id, *holder;
        long long deadline;
    } held[] = {{"held-dead", "gone:1", now + 600000},
                {"held-live", "here:1", now + 600000},
                {"held-stale", "here:1", now - 600000}};
    int sent[3] = {0};
    char key[256];
    bool gone;

    redisReply *reply =
        bt_stack_redis(&stack, "SET %s:alive:here:1 1 PX 60000", stack.prefix);
    freeReplyObject(reply);
    for (size_t i = 0; i < 3; i++) {
        char payload[512];
        snprintf(payload, sizeof(payload),
                 "{\"v\":1,\"type\":\"task\",\"id\":\"%s\",\"workflow\":\"w\",\"seq\":0,"
                 "\"attempt\":1,\"name\":\"a\",\"input\":null,\"deadline\":%lld}",
                 held[i].id, held[i].deadline);
        reply =
            bt_stack_redis(&stack, "HSET %s t|0|1|@%s tasks.default\n%s\n%s",
                           bt_stack_key(&stack, held[i].id, ":outbox", key, sizeof(key)),
                           held[i].holder, held[i].id, payload);
        cr_assert(reply && reply->type == REDIS_REPLY_INTEGER);
        freeReplyObject(reply);
        index_long_ago(held[i].id);
    }
    cr_assert_gt(bt_stack_scheduler(&stack), 0);
    BT_TEST_WAIT_UNTIL(gone, outboxes_left() == 1, 30000);
    cr_assert(gone, "%lld outboxes left", outboxes_left());
    reply =
        bt_stack_redis(&stack, "EXISTS %s",
                       bt_stack_key(&stack, "held-live", ":outbox", key, sizeof(key)));
    cr_assert(reply && reply->integer == 1, "the live worker's task stays");
    freeReplyObject(reply);
    bt_stack_read_all(&stack, "tasks.default", 10000, count_tasks, sent);
    cr_assert_eq(sent[0], 1, "the dead worker's task is sent once: %d", sent[0]);
    cr_assert_eq(sent[1] + sent[2], 0, "the live worker's tasks are not sent");
}

static bool count_lapse_tasks(const json_t *msg, void *arg)
{
    const char *id = json_string_value(json_object_get(msg, "id"));

    *(int *)arg += id && !strcmp(id, "held-lapse");
    return false;
}

/* A heartbeat also lapses while its worker lives: Redis away past the key's
 * TTL (a restart, a failover), the worker beating again within a second of
 * its return. Missing at one look, the worker is not taken for dead: its
 * task is looked at again BT_OUTBOX_GONE_MS later and stays once the
 * heartbeat is back. Missing at two looks that far apart, it is gone, and
 * its task is sent. */
Test(outbox, a_heartbeat_missing_at_one_look_only_is_not_a_dead_worker, .init = setup,
     .fini = teardown, .timeout = 60)
{
    long long now = (long long)time(NULL) * 1000;
    char key[256], payload[512];
    int sent = 0;
    bool ok;

    snprintf(
        payload, sizeof(payload),
        "{\"v\":1,\"type\":\"task\",\"id\":\"held-lapse\",\"workflow\":\"w\",\"seq\":0,"
        "\"attempt\":1,\"name\":\"a\",\"input\":null,\"deadline\":%lld}",
        now + 600000);
    redisReply *reply = bt_stack_redis(
        &stack, "HSET %s t|0|1|@lapse:1 tasks.default\nheld-lapse\n%s",
        bt_stack_key(&stack, "held-lapse", ":outbox", key, sizeof(key)), payload);
    cr_assert(reply && reply->type == REDIS_REPLY_INTEGER);
    freeReplyObject(reply);
    index_long_ago("held-lapse");

    /* the first look finds no heartbeat (its score moves off 1) */
    cr_assert_gt(bt_stack_scheduler(&stack), 0);
    BT_TEST_WAIT_UNTIL(ok, index_score("held-lapse") > 1, 20000);
    cr_assert(ok, "the sweep never looked at the held task");
    /* the worker beats again before the next */
    reply = bt_stack_redis(&stack, "SET %s:alive:lapse:1 1 PX 60000", stack.prefix);
    cr_assert(reply && reply->type == REDIS_REPLY_STATUS);
    freeReplyObject(reply);
    long long beat = (long long)time(NULL) * 1000;
    /* looked at again (claimed anew: scored at that look), or sent */
    BT_TEST_WAIT_UNTIL(
        ok, index_score("held-lapse") > (double)beat + 1000 || outboxes_left() == 0,
        20000);
    bt_stack_read_all(&stack, "tasks.default", 3000, count_lapse_tasks, &sent);
    cr_assert_eq(sent, 0, "a live worker's task was sent after its heartbeat lapsed");
    cr_assert_eq(bt_test_count_lines_with(stack.log, "worker is gone"), 0);
    cr_assert(ok, "the sweep never looked at the held task again");

    /* the worker dies: missing at two looks, its task goes */
    reply = bt_stack_redis(&stack, "DEL %s:alive:lapse:1", stack.prefix);
    freeReplyObject(reply);
    BT_TEST_WAIT_UNTIL(ok, outboxes_left() == 0, 30000);
    cr_assert(ok, "the dead worker's task is still held");
    bt_stack_read_all(&stack, "tasks.default", 10000, count_lapse_tasks, &sent);
    cr_assert_eq(sent, 1, "the task is sent %d times", sent);
}
