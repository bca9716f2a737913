/* Faults of the stores under load: redis-server killed or shut down and
 * restarted (same port, AOF) while instances are started and advanced. A
 * store that was away for a moment is never a verdict about a message:
 * nothing goes to the dead letters, nothing is produced twice, all complete. */
#include <criterion/criterion.h>
#include <stdlib.h>
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

static bool count_one(const json_t *msg, void *arg)
{
    json_t *seen = arg;
    const char *id = json_string_value(json_object_get(msg, "id"));
    json_int_t n = json_integer_value(json_object_get(seen, id ? id : "?"));

    json_object_set_new(seen, id ? id : "?", json_integer(n + 1));
    return false;
}

static long outbox_index_size(void)
{
    redisReply *reply = bt_stack_redis(&stack, "ZCARD %s:outbox", stack.prefix);
    long n = reply && reply->type == REDIS_REPLY_INTEGER ? (long)reply->integer : -1;

    freeReplyObject(reply);
    return n;
}

/* Starts n chains, taking redis down after a third of them and bringing it
 * back after two thirds, then checks that every instance has exactly one
 * result and nothing reached the dead letters. */
static void run_through_an_outage(const char *how, const char *tag, int n)
{
    pid_t worker = bt_stack_worker(&stack, "flows", NULL);
    pid_t scheduler = bt_stack_scheduler(&stack);
    struct bt_stack_results r;
    json_t *per_id = json_object();
    int dead, dup = 0;
    bool ok;

    cr_assert(worker > 0 && scheduler > 0);
    for (int i = 0; i < n; i++) {
        char id[64];
        if (i == n / 3) { /* steps are in flight: their events come in meanwhile */
            char first[64], buf[32];
            snprintf(first, sizeof(first), "%s-0", tag);
            BT_TEST_WAIT_UNTIL(
                ok,
                !strcmp(bt_stack_status(&stack, first, buf, sizeof(buf)), "completed"),
                30000);
            cr_assert(ok, "the worker did not start working");
            bt_stack_redis_down(&stack, how);
            cr_log_info("redis down (%s) after %d starts", how, i);
        }
        if (i == 2 * n / 3)
            cr_assert_eq(bt_stack_redis_up(&stack), 0, "redis does not restart");
        snprintf(id, sizeof(id), "%s-%d", tag, i);
        cr_assert_eq(bt_stack_start_wf(&stack, "chain3", id, json_pack("{s:i}", "v", i)),
                     0);
        bt_test_sleep_ms(3); /* a steady rate of starts, not a synchronisation */
    }
    bt_stack_results(&stack, &r, n, 120000);
    cr_assert_eq(r.distinct, n, "results: %d distinct of %d", r.distinct, n);
    json_decref(r.by_id);
    /* the sweep re-sends what an outbox still holds once its grace passed, then
     * drops the emptied ones: once the index is empty, nothing more comes */
    BT_TEST_WAIT_UNTIL(ok, outbox_index_size() == 0, 60000);
    cr_assert(ok, "the outbox index still holds %ld instances", outbox_index_size());
    bt_stack_read_all(&stack, "results", 20000, count_one, per_id);
    for (int i = 0; i < n; i++) {
        char id[64];
        snprintf(id, sizeof(id), "%s-%d", tag, i);
        json_int_t k = json_integer_value(json_object_get(per_id, id));
        cr_assert_geq(k, 1, "%s: no result", id);
        dup += (int)(k - 1);
    }
    json_decref(per_id);
    per_id = json_object();
    dead = bt_stack_read_all(&stack, "dlq", 5000, count_one, per_id);
    json_decref(per_id);
    cr_log_info("%s: %d results, %d duplicates, %d dead letters; batches retried %zu, "
                "commands re-sent by the sweep %zu",
                how, n, dup, dead, bt_test_count_lines_with(stack.log, "retrying batch"),
                bt_test_count_lines_with(stack.log, "re-sent unsent"));
    cr_assert_eq(dup, 0, "results produced twice: %d", dup);
    cr_assert_eq(dead, 0, "valid events dead-lettered while redis was away: %d", dead);
    cr_assert_eq(bt_test_stop(worker, 15000), 0);
    cr_assert_eq(bt_test_stop(scheduler, 15000), 0);
}

Test(faults, redis_killed_and_restarted_mid_run_loses_and_repeats_nothing, .init = setup,
     .fini = teardown, .timeout = 240)
{
    run_through_an_outage("kill", "rk", 600);
}

Test(faults, redis_shut_down_and_restarted_mid_run_loses_and_repeats_nothing,
     .init = setup, .fini = teardown, .timeout = 240)
{
    run_through_an_outage("shutdown", "rs", 600);
}
