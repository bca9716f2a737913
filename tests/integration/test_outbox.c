/* The outbox: what a worker committed but did not see delivered is sent by
 * baton-scheduler once its grace has passed (the worker died in between),
 * and forgotten once Kafka has it; what a worker saw delivered is forgotten
 * by the worker itself, for a whole batch of instances at once (ack.lua).
 * Emptied outboxes leave the outbox index at the scheduler's sweep. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

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
    redisReply *keys = bt_stack_redis(&stack, "KEYS %s:{*}:outbox", stack.prefix);
    long long n =
        keys && keys->type == REDIS_REPLY_ARRAY ? (long long)keys->elements : -1;

    freeReplyObject(keys);
    return n;
}

/* Entries of the outbox index; -1 on error. */
static long long indexed(void)
{
    redisReply *index = bt_stack_redis(&stack, "ZCARD %s:outbox", stack.prefix);
    long long n = index && index->type == REDIS_REPLY_INTEGER ? index->integer : -1;

    freeReplyObject(index);
    return n;
}

/* Outbox hashes plus entries of the outbox index left in Redis; -1 on error. */
static long long outbox_left(void)
{
    long long keys = outboxes_left(), index = indexed();

    return keys < 0 || index < 0 ? -1 : keys + index;
}

/* A result message as a worker writes it to its outbox:
 * "<topic suffix>\n<key>\n<payload>". */
static void put_unsent_result(const char *id, const char *field, int v)
{
    char entry[512];
    redisReply *reply;

    snprintf(entry, sizeof(entry),
             "results\n%s\n{\"v\":1,\"type\":\"result\",\"id\":\"%s\","
             "\"status\":\"completed\",\"result\":{\"v\":%d}}",
             id, id, v);
    reply = bt_stack_redis(&stack, "HSET %s:{%s}:outbox %s %s", stack.prefix, id, field,
                           entry);
    cr_assert(reply && reply->type == REDIS_REPLY_INTEGER);
    freeReplyObject(reply);
    /* committed long ago: past the scheduler's grace */
    reply = bt_stack_redis(&stack, "ZADD %s:outbox 1 %s", stack.prefix, id);
    cr_assert(reply && reply->type == REDIS_REPLY_INTEGER);
    freeReplyObject(reply);
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
    put_unsent_result("ob-2", "r2", 2); /* two commands of one instance */
    /* an index entry whose outbox is already empty is dropped too */
    redisReply *reply = bt_stack_redis(&stack, "ZADD %s:outbox 1 ob-3", stack.prefix);
    freeReplyObject(reply);
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
    cr_assert_eq(got.v2, 2);
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
    for (int i = 0; i < n; i++) {
        char id[64];
        snprintf(id, sizeof(id), "fg-%d", i);
        cr_assert_eq(bt_stack_start_wf(&stack, "chain3", id, json_pack("{s:i}", "v", i)),
                     0);
    }
    bt_stack_results(&stack, &r, n, 90000);
    cr_assert_eq(r.distinct, n, "results: %d of %d", r.distinct, n);
    json_decref(r.by_id);
    /* no scheduler runs yet: only the worker's acks can empty the outboxes */
    BT_TEST_WAIT_UNTIL(gone, outboxes_left() == 0, 10000);
    cr_assert(gone, "%lld outboxes left after every result", outboxes_left());
    cr_assert_eq(bt_test_stop(worker, 10000), 0);
    /* they stay indexed until the sweep finds them empty past its grace; one
     * sweep step looks at 256: the rest of the round follows */
    cr_assert_gt(indexed(), 256, "the index holds the emptied outboxes");
    cr_assert_gt(bt_stack_scheduler(&stack), 0);
    BT_TEST_WAIT_UNTIL(gone, indexed() == 0, 30000);
    cr_assert(gone, "%lld index entries left", indexed());
    cr_assert_eq(outboxes_left(), 0);
}
