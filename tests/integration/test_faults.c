/* Faults of the stores under load: redis-server killed or shut down and
 * restarted (same port, AOF) while instances are started and advanced. A
 * store that was away for a moment is never a verdict about a message:
 * nothing goes to the dead letters, nothing is produced twice, all complete. */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "baton.h"
#include "clock.h"
#include "codec.h"
#include "config.h"
#include "kafka.h"
#include "registry.h"
#include "scrape.h"
#include "replay.h"
#include "stack.h"
#include "store.h"

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
    return (long)bt_stack_zcard(&stack, "outbox");
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
    cr_assert_eq(bt_test_stop(worker, BT_TEST_STOP_MS), 0);
    cr_assert_eq(bt_test_stop(scheduler, BT_TEST_STOP_MS), 0);
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

/* Produces a start of exactly size bytes for type (input {"bytes": blob,
 * "pad": ...}) with key. */
static void produce_start_of_size(rd_kafka_t *rk, const char *key, const char *id,
                                  const char *type, size_t size, int blob)
{
    struct bt_msg msg = {.type = BT_MSG_START,
                         .id = (char *)(uintptr_t)id,
                         .workflow = (char *)(uintptr_t)type,
                         .body = json_pack("{s:i, s:s}", "bytes", blob, "pad", "")};
    size_t len, pad;
    char *bytes = bt_codec_encode(&msg, &len), *text, topic[300];
    struct bt_kafka_batch batch = {0};

    pad = size - len;
    text = malloc(pad + 1);
    memset(text, 'p', pad);
    text[pad] = '\0';
    json_object_set_new(msg.body, "pad", json_string(text));
    free(bytes);
    bytes = bt_codec_encode(&msg, &len);
    cr_assert_eq(len, size);
    snprintf(topic, sizeof(topic), "%s.events", stack.prefix);
    cr_assert_eq(bt_kafka_produce(rk, topic, key, strlen(key), bytes, len, &batch), 0);
    cr_assert_eq(bt_kafka_wait(rk, &batch, 10000), 0, "%s", rd_kafka_err2str(batch.err));
    free(text);
    free(bytes);
    json_decref(msg.body);
}

struct dead_sizes {
    int n;
    int64_t size[8];
    char reason[8][200];
};

static bool dead_size(const json_t *msg, void *arg)
{
    struct dead_sizes *d = arg;

    if (d->n < 8) {
        d->size[d->n] = json_integer_value(json_object_get(msg, "payload_size"));
        snprintf(d->reason[d->n++], sizeof(d->reason[0]), "%s",
                 json_string_value(json_object_get(msg, "reason")));
    }
    return false;
}

/* One partition (one key) carries a start just under librdkafka's 1,000,000
 * bytes but over max-payload, one of 2 MiB, and workflows whose step input,
 * activity result or own result outgrow the limit: each gets a clear error,
 * the starts behind them complete, and the worker stops on SIGTERM. */
Test(faults, oversized_messages_fail_with_a_clear_error_and_the_partition_flows,
     .init = setup, .fini = teardown, .timeout = 120)
{
    static const char *const big[] = {"big_result", "big_step", "big_finish"};
    const char *key = "one-partition";
    char errstr[256], brokers[300], name[] = "test",
                                    max[] = "--kafka.message.max.bytes=4000000";
    char *argv[] = {name, brokers, max, NULL};
    int argc = 3;
    struct bt_config cfg;
    rd_kafka_t *rk;
    pid_t worker = bt_stack_worker(&stack, "sizes", NULL);
    struct bt_stack_results r;
    struct dead_sizes dead = {0};
    const int after = 20;

    cr_assert_gt(worker, 0);
    /* a client that allows what baton must refuse */
    snprintf(brokers, sizeof(brokers), "--brokers=%s", stack.kafka.brokers);
    cr_assert_eq(bt_config_load(&cfg, &argc, argv, errstr, sizeof(errstr)), 0, "%s",
                 errstr);
    rk = bt_kafka_producer_new(&cfg, errstr, sizeof(errstr));
    bt_config_release(&cfg);
    cr_assert(rk, "%s", errstr);
    produce_start_of_size(rk, key, "poison-1", "small", 1040078, 10);
    produce_start_of_size(rk, key, "poison-2", "small", 2 << 20, 10);
    /* an activity's result, a step's input, a workflow's result: 950,000 bytes */
    for (int i = 0; i < 3; i++)
        produce_start_of_size(rk, key, big[i], big[i], 1000, 950000);
    for (int i = 0; i < after; i++) {
        char id[32];
        snprintf(id, sizeof(id), "after-%d", i);
        produce_start_of_size(rk, key, id, "small", 200, 10);
    }
    rd_kafka_destroy(rk);
    bt_stack_results(&stack, &r, after + 3, 60000);
    cr_assert_eq(r.distinct, after + 3, "results: %d of %d", r.distinct, after + 3);
    for (int i = 0; i < after; i++) {
        char id[32];
        snprintf(id, sizeof(id), "after-%d", i);
        cr_expect_str_eq(
            json_string_value(json_object_get(json_object_get(r.by_id, id), "status")),
            "completed", "%s", id);
    }
    for (int i = 0; i < 3; i++) {
        const json_t *res = json_object_get(r.by_id, big[i]);
        const json_t *err = json_object_get(res, "error");
        cr_expect_str_eq(json_string_value(json_object_get(res, "status")), "failed",
                         "%s", big[i]);
        cr_expect_str_eq(json_string_value(json_object_get(err, "type")),
                         "PayloadTooLarge", "%s", big[i]);
        cr_log_info("%s: %s", big[i], json_string_value(json_object_get(err, "message")));
    }
    json_decref(r.by_id);
    bt_stack_read_all(&stack, "dlq", 10000, dead_size, &dead);
    cr_assert_eq(dead.n, 2, "dead letters: %d", dead.n);
    cr_expect_eq(dead.size[0], 1040078, "%s", dead.reason[0]);
    cr_expect_eq(dead.size[1], 2 << 20, "%s", dead.reason[1]);
    cr_expect(strstr(dead.reason[0], "exceeds the limit"), "%s", dead.reason[0]);
    cr_assert_eq(bt_test_stop(worker, BT_TEST_STOP_MS), 0,
                 "the worker must stop on SIGTERM");
}

Test(faults, the_cli_refuses_an_input_over_the_limit_before_producing, .init = setup,
     .fini = teardown, .timeout = 60)
{
    char path[300], arg[310], out[1024];
    FILE *f;

    snprintf(path, sizeof(path), "%s/big-input.json", stack.redis.dir);
    cr_assert((f = fopen(path, "w")));
    fputs("{\"pad\":\"", f);
    for (int i = 0; i < 1000000; i++)
        fputc('x', f);
    fputs("\"}", f);
    fclose(f);
    snprintf(arg, sizeof(arg), "@%s", path);
    cr_assert_eq(BT_STACK_BATON(&stack, out, "start", "small", "--input", arg), 1, "%s",
                 out);
    cr_expect(strstr(out, "over the limit of 900000"), "%s", out);
}

/* A worker whose task consumer stops fetching (failpoint stop-task-fetch
 * pauses its partitions behind its back, as a fetch that never resumed after
 * a pause or a rebalance would) is found by its watchdog and mended: every
 * instance completes. With the watchdog off the steps would wait for good. */
Test(faults, a_worker_whose_task_fetch_stops_is_mended_by_its_watchdog, .init = setup,
     .fini = teardown, .timeout = 120)
{
    const int n = 40;
    struct bt_stack_results r;
    pid_t worker;

    bt_stack_setenv(&stack, 0, "BATON_FAILPOINTS=stop-task-fetch");
    bt_stack_setenv(&stack, 1, "BATON_WATCHDOG_MS=2000");
    /* tasks through Kafka: the failpoint stops their fetch */
    worker = bt_stack_worker(&stack, "flows", (const char *const[]){"--eager=0", NULL});
    cr_assert_gt(worker, 0);
    for (int i = 0; i < n; i++) {
        char id[32];
        snprintf(id, sizeof(id), "wd-%d", i);
        cr_assert_eq(bt_stack_start_wf(&stack, "chain3", id, json_pack("{s:i}", "v", i)),
                     0);
    }
    bt_stack_results(&stack, &r, n, 60000);
    json_decref(r.by_id);
    cr_assert_eq(bt_test_count_lines_with(stack.log, "failpoint stop-task-fetch"), 1,
                 "the failpoint did not fire");
    cr_assert_eq(r.distinct, n, "results: %d of %d", r.distinct, n);
    cr_expect_geq(bt_test_count_lines_with(stack.log, "consumer stalled"), 1);
    cr_assert_eq(bt_test_stop(worker, BT_TEST_STOP_MS), 0);
}

/* Starts chains "<name>-<i>" for from <= i < to. */
static void start_chains(const char *name, int from, int to)
{
    for (int i = from; i < to; i++) {
        char id[32];
        snprintf(id, sizeof(id), "%s-%d", name, i);
        cr_assert_eq(bt_stack_start_wf(&stack, "chain3", id, json_pack("{s:i}", "v", i)),
                     0);
    }
}

/* The watchdog reads the group's committed offsets when a consumer took
 * nothing for watchdog-ms (an eager worker's task consumer, always). With
 * the broker down that read fails, and the worker freed a list it had not
 * got: a crash (SIGSEGV), seen in a chaos run with the broker down 12 s. */
Test(faults, a_watchdog_look_while_the_broker_is_down_is_no_crash, .init = setup,
     .fini = teardown, .timeout = 120)
{
    struct bt_stack_results r;
    pid_t worker;
    int64_t until;

    bt_stack_setenv(&stack, 0, "BATON_WATCHDOG_MS=300");
    worker = bt_stack_worker(&stack, "flows", NULL);
    cr_assert_gt(worker, 0);
    start_chains("wb", 0, 5);
    bt_stack_results(&stack, &r, 5, 60000);
    json_decref(r.by_id);
    cr_assert_eq(r.distinct, 5, "results before the outage: %d of 5", r.distinct);
    cr_assert_eq(rd_kafka_mock_broker_set_down(stack.kafka.mcluster, 1), 0);
    /* several of the watchdog's looks while it is down */
    until = bt_test_now_ms() + 4000;
    while (bt_test_now_ms() < until) {
        cr_assert_lt(bt_test_wait(worker, 0), 0, "the worker died with the broker down");
        bt_test_sleep_ms(100);
    }
    cr_assert_eq(rd_kafka_mock_broker_set_up(stack.kafka.mcluster, 1), 0);
    start_chains("wb", 5, 10);
    bt_stack_results(&stack, &r, 10, 60000);
    json_decref(r.by_id);
    cr_assert_lt(bt_test_wait(worker, 0), 0, "the worker died (its log: %s)", stack.log);
    cr_assert_eq(r.distinct, 10, "results: %d of 10", r.distinct);
    cr_assert_eq(bt_test_stop(worker, BT_TEST_STOP_MS), 0);
}

static bool collect_reasons(const json_t *msg, void *arg)
{
    json_array_append(arg, json_object_get(msg, "reason"));
    return false;
}

/* Outcomes written by hand for a waiting step that no task of the instance
 * could have produced: for a seq never scheduled, an attempt never started,
 * another activity. Each is dead-lettered with its reason; the real outcome
 * still completes the step, once. */
Test(faults, an_outcome_no_task_could_have_produced_is_dead_lettered, .init = setup,
     .fini = teardown, .timeout = 60)
{
    static const char *const forged[] = {
        "{\"v\":1,\"type\":\"completed\",\"id\":\"forge\",\"seq\":5,\"attempt\":1,"
        "\"result\":{\"forged\":1}}",
        "{\"v\":1,\"type\":\"completed\",\"id\":\"forge\",\"seq\":0,\"attempt\":3,"
        "\"result\":{\"forged\":2}}",
        "{\"v\":1,\"type\":\"completed\",\"id\":\"forge\",\"seq\":0,\"attempt\":1,"
        "\"name\":\"inc\",\"result\":{\"forged\":3}}",
    };
    static const char *const why[] = {"no step with this seq was scheduled",
                                      "this attempt of the step was never started",
                                      "names another activity"};
    pid_t worker = bt_stack_worker(&stack, "overlap", NULL);
    json_t *reasons = json_array(), *done;
    char buf[32];
    bool ok;

    cr_assert_gt(worker, 0);
    cr_assert_eq(
        bt_stack_start_wf(&stack, "one_hold", "forge", json_pack("{s:i}", "ms", 2000)),
        0);
    BT_TEST_WAIT_UNTIL(ok, bt_test_count_lines_with(stack.log, "EXEC ") == 1, 30000);
    cr_assert(ok, "the step never started");
    for (int i = 0; i < 3; i++)
        cr_assert_eq(
            bt_stack_produce(&stack, "events", "forge", forged[i], strlen(forged[i])), 0);
    BT_TEST_WAIT_UNTIL(
        ok, !strcmp(bt_stack_status(&stack, "forge", buf, sizeof(buf)), "completed"),
        30000);
    cr_assert(ok, "status %s", buf);
    bt_stack_read_all(&stack, "dlq", 10000, collect_reasons, reasons);
    cr_assert_eq(json_array_size(reasons), 3, "dead letters: %zu",
                 json_array_size(reasons));
    for (size_t i = 0; i < 3; i++) {
        const char *reason = json_string_value(json_array_get(reasons, i));
        cr_expect(reason && strstr(reason, why[i]), "%s", reason);
    }
    done = bt_stack_history(&stack, "forge", NULL, "activity_completed");
    cr_assert_eq(json_array_size(done), 1);
    cr_expect_null(
        json_object_get(json_object_get(json_array_get(done, 0), "result"), "forged"));
    json_decref(done);
    json_decref(reasons);
    cr_assert_eq(bt_test_stop(worker, BT_TEST_STOP_MS), 0);
}

/* The test's own copy of tests/plugins/overlap.c's two_holds, to commit a
 * step of an instance as another worker would. */
static bt_poll two_holds(bt_wf *wf, const json_t *input)
{
    BT_RUN(wf, NULL, "hold", json_deep_copy(input), NULL);
    BT_RUN(wf, NULL, "hold", json_pack("{s:i}", "ms", 0), NULL);
    return bt_complete(wf, json_pack("{s:b}", "both", 1));
}

static int hold(bt_act *act, const json_t *input, json_t **result)
{
    (void)act;
    (void)input;
    *result = json_object();
    return 0;
}

/* Applies the completion of step 0 of instance id and commits the decision,
 * as another worker that took the instance over would (behind the back of
 * the worker that has it cached). */
static void commit_elsewhere(const char *id)
{
    char errstr[256], redis[300], prefix[128], shards[32], name[] = "test";
    char *argv[] = {name, redis, prefix, shards, NULL};
    int argc = stack.shards > 0 ? 4 : 3, result = -1;
    struct bt_config cfg;
    bt_registry *reg = bt_registry_new();
    struct bt_store *store;
    struct bt_instance *inst = bt_instance_new(id);
    struct bt_msg done = {.type = BT_MSG_COMPLETED,
                          .id = (char *)(uintptr_t)id,
                          .seq = 0,
                          .attempt = 1,
                          .body = json_object()};
    const char *why = "";

    snprintf(redis, sizeof(redis), "--redis=%s", stack.redis.addr);
    snprintf(prefix, sizeof(prefix), "--prefix=%s", stack.prefix);
    snprintf(shards, sizeof(shards), "--redis-shards=%d", stack.shards);
    if (argc == 3)
        argv[3] = NULL;
    cr_assert_eq(bt_config_load(&cfg, &argc, argv, errstr, sizeof(errstr)), 0, "%s",
                 errstr);
    cr_assert_eq(bt_register_workflow(reg, "two_holds", two_holds), 0);
    cr_assert_eq(bt_register_activity(reg, "hold", hold, NULL), 0);
    struct bt_replay_env env = {.reg = reg,
                                .now_ms = bt_clock_now_ms(),
                                .default_timeout_ms = 60000,
                                .worker = "test"};
    cr_assert((store = bt_store_new(&cfg, errstr, sizeof(errstr))), "%s", errstr);
    cr_assert_eq(bt_store_load(store, &inst, 1), 0);
    cr_assert_eq(bt_replay_apply(inst, &done, &env, &why), 0, "%s", why);
    cr_assert_eq(bt_replay_run(inst, &env), 0);
    cr_assert_eq(bt_store_commit(store, &inst, 1, env.now_ms, &result), 0);
    cr_assert_eq(result, 0, "the commit must win");
    json_decref(done.body);
    bt_instance_destroy(inst);
    bt_store_destroy(store);
    bt_registry_destroy(reg);
    bt_config_release(&cfg);
}

/* A worker whose cached instance fell behind Redis (another worker committed
 * it meanwhile: one that took the partition while this one was paused past
 * its session, say) gets the outcome of a step its copy has not scheduled
 * yet. It is judged against a fresh load, not dead-lettered as forged. */
Test(faults, an_outcome_ahead_of_a_stale_cached_instance_is_applied_after_a_reload,
     .init = setup, .fini = teardown, .timeout = 60)
{
    static const char done1[] =
        "{\"v\":1,\"type\":\"completed\",\"id\":\"stale\",\"seq\":1,"
        "\"attempt\":1,\"name\":\"hold\",\"result\":{}}";
    pid_t worker = bt_stack_worker(&stack, "overlap", NULL);
    json_t *reasons = json_array();
    char buf[32];
    bool ok;

    cr_assert_gt(worker, 0);
    cr_assert_eq(
        bt_stack_start_wf(&stack, "two_holds", "stale", json_pack("{s:i}", "ms", 20000)),
        0);
    /* the worker has the instance cached, its first step running (20 s) */
    BT_TEST_WAIT_UNTIL(ok, bt_test_count_lines_with(stack.log, "EXEC ") == 1, 30000);
    cr_assert(ok, "the step never started");
    commit_elsewhere("stale");
    cr_assert_eq(bt_stack_produce(&stack, "events", "stale", done1, strlen(done1)), 0);
    BT_TEST_WAIT_UNTIL(
        ok, !strcmp(bt_stack_status(&stack, "stale", buf, sizeof(buf)), "completed"),
        15000);
    bt_stack_read_all(&stack, "dlq", 5000, collect_reasons, reasons);
    cr_expect_eq(json_array_size(reasons), 0, "dead-lettered: %s",
                 json_string_value(json_array_get(reasons, 0)));
    cr_assert(ok, "status %s", buf);
    json_decref(reasons);
    bt_test_kill9(worker); /* its first step still sleeps */
}

/* The suite "stalls": what would otherwise wait silently, for good (a hung
 * Redis, a stop blocked on it, starts on a queue nobody serves). Apart from
 * "faults" because nothing in it depends on the store's sharding, which CI
 * runs "faults" again with (make test-sharded). */

/* A worker and a scheduler at work (5 chains "<tag>-<i>" done), then redis
 * paused (SIGSTOP) and 5 more started, whose commits wait on it. */
static void hang_redis_at_work(const char *tag, pid_t *worker, pid_t *scheduler)
{
    struct bt_stack_results r;

    *worker = bt_stack_worker(&stack, "flows", NULL);
    *scheduler = bt_stack_scheduler(&stack);
    cr_assert(*worker > 0 && *scheduler > 0);
    start_chains(tag, 0, 5);
    bt_stack_results(&stack, &r, 5, 60000);
    json_decref(r.by_id);
    cr_assert_eq(r.distinct, 5, "results before the hang: %d of 5", r.distinct);
    bt_stack_redis_down(&stack, "pause");
    start_chains(tag, 5, 10);
}

/* A Redis that hangs (SIGSTOP here; a connection lost without a reset, in a
 * network, looks the same) leaves its clients' calls unanswered. Past
 * redis-timeout-ms a call counts as Redis unreachable: dropped and retried
 * as after a restart. Before, the worker waited in read() for as long as
 * Redis hung, and for ever on a connection nobody would answer again. */
Test(stalls, a_hung_redis_is_unreachable_after_the_timeout_and_loses_nothing,
     .init = setup, .fini = teardown, .timeout = 120)
{
    struct bt_stack_results r;
    json_t *per_id = json_object();
    pid_t worker, scheduler;
    bool ok;

    bt_stack_setenv(&stack, 0, "BATON_REDIS_TIMEOUT_MS=500");
    hang_redis_at_work("hung", &worker, &scheduler);
    BT_TEST_WAIT_UNTIL(ok, bt_test_count_lines_with(stack.log, "no answer within 500 ms"),
                       15000);
    cr_assert_eq(bt_stack_redis_up(&stack), 0);
    cr_assert(ok, "no call was given up while redis hung");
    bt_stack_results(&stack, &r, 10, 60000);
    json_decref(r.by_id);
    cr_assert_eq(r.distinct, 10, "results: %d of 10", r.distinct);
    cr_assert_eq(bt_stack_read_all(&stack, "dlq", 3000, count_one, per_id), 0,
                 "dead letters after a hung redis");
    json_decref(per_id);
    cr_assert_eq(bt_test_stop(worker, BT_TEST_STOP_MS), 0);
    cr_assert_eq(bt_test_stop(scheduler, BT_TEST_STOP_MS), 0);
}

/* SIGTERM while Redis hangs, with no timeout on its calls: a worker and a
 * scheduler blocked on it still exit, with status 0, stop-timeout-ms after
 * the signal. Before, the stop's deadline began only once the main loop saw
 * the signal, which a call blocked on Redis kept it from doing for good. */
Test(stalls, sigterm_ends_a_worker_and_a_scheduler_in_time_while_redis_hangs,
     .init = setup, .fini = teardown, .timeout = 120)
{
    pid_t worker, scheduler;
    int64_t t0;

    bt_stack_setenv(&stack, 0, "BATON_REDIS_TIMEOUT_MS=0");
    bt_stack_setenv(&stack, 1, "BATON_STOP_TIMEOUT_MS=2000");
    hang_redis_at_work("term", &worker, &scheduler);
    /* the worker's stop, at least, deletes its heartbeat key in Redis */
    kill(worker, SIGTERM);
    kill(scheduler, SIGTERM);
    t0 = bt_test_now_ms();
    cr_assert_eq(bt_test_wait(worker, 8000), 0, "the worker did not stop in time");
    cr_assert_eq(bt_test_wait(scheduler, 8000), 0, "the scheduler did not stop in time");
    cr_log_info("both stopped %lld ms after SIGTERM", (long long)(bt_test_now_ms() - t0));
    cr_assert_geq(bt_test_count_lines_with(stack.log, "the stop took over 2000 ms"), 1,
                  "no deadline ended a stop: nothing waited on the hung redis");
}

static void setup_nobody(void)
{
    cr_assert_eq(bt_stack_start(&stack, (const char *const[]){"nobody", NULL}), 0,
                 "cannot start the stack");
}

/* Starts produced (by any producer, not only `baton start`) to a queue no
 * live worker serves wait on its events topic: not lost, but nothing runs
 * them and nothing times them out. The scheduler says so, in its log and
 * on /metrics; the queue a worker serves is not named. Before, nothing
 * did: they waited silently. */
Test(stalls, starts_on_a_queue_nobody_serves_are_reported_by_the_scheduler,
     .init = setup_nobody, .fini = teardown, .timeout = 60)
{
    static const char start[] = "{\"v\":1,\"type\":\"start\",\"id\":\"nob-1\","
                                "\"workflow\":\"chain3\",\"queue\":\"nobody\","
                                "\"input\":{\"v\":1}}";
    int port, port2, status;
    char *body = NULL, *line;
    pid_t worker, scheduler;
    bool ok;

    cr_assert_eq(bt_test_free_ports(&port, &port2), 0);
    worker = bt_stack_worker(&stack, "flows", NULL); /* serves "default" */
    cr_assert_gt(worker, 0);
    start_chains("served", 0, 2);
    cr_assert_eq(
        bt_stack_produce(&stack, "events.nobody", "nob-1", start, sizeof(start) - 1), 0);
    bt_stack_setenv(&stack, 0, "BATON_METRICS_PORT=%d", port);
    scheduler = bt_stack_scheduler(&stack);
    cr_assert_gt(scheduler, 0);
    BT_TEST_WAIT_UNTIL(
        ok, bt_test_count_lines_with(stack.log, "no live worker serves\" queue=nobody"),
        20000);
    cr_assert(ok, "the scheduler did not report the queue nobody serves");
    BT_TEST_WAIT_UNTIL(
        ok,
        (free(body), body = bt_test_http_get(port, "/metrics", &status)) &&
            strstr(body, "baton_queue_unserved_events{queue=\"nobody\"} 1"),
        10000);
    cr_assert(ok, "no gauge of the queue nobody serves: %s", body ? body : "(no answer)");
    line = strstr(body, "baton_queue_unserved_events{queue=\"default\"}");
    cr_assert(!line || !strncmp(strchr(line, '}'), "} 0", 3),
              "the served queue is reported: %.80s", line);
    free(body);
    cr_assert_eq(bt_test_count_lines_with(stack.log, "queue=default waiting"), 0);
    cr_assert_eq(bt_test_stop(scheduler, BT_TEST_STOP_MS), 0);
    cr_assert_eq(bt_test_stop(worker, BT_TEST_STOP_MS), 0);
}

/* `baton start --wait`, `baton history --follow` and `baton stats --watch`
 * ride out a Redis restart, saying so. Before, the first read Redis did not
 * answer ended them (exit 3, "lost Redis while waiting"), though the
 * instance went on and completed; and a watch's JSON lines stayed in its
 * buffer when its output was not a terminal. */
Test(faults, a_waiting_cli_rides_out_a_redis_restart, .init = setup, .fini = teardown,
     .timeout = 150)
{
    pid_t worker = bt_stack_worker(&stack, "timing", NULL);
    pid_t scheduler = bt_stack_scheduler(&stack);
    const char *const start[] = {
        BT_BIN_DIR "/baton", "start",         "sleeper", "--id", "wr-1",
        "--input",           "{\"ms\":3000}", "--wait",  NULL};
    const char *const follow[] = {BT_BIN_DIR "/baton", "history", "wr-1", "--follow",
                                  NULL};
    const char *const watch[] = {BT_BIN_DIR "/baton", "stats", "--watch", "--json", NULL};
    char waited[400], followed[400], watched[400], status[32], tail[2048];
    pid_t cli, follower, watcher;
    int watch_status = -1;
    size_t before;
    bool ok;

    cr_assert(worker > 0 && scheduler > 0);
    BT_TEST_WAIT_UNTIL(ok, bt_stack_type_known(&stack, "sleeper"), 30000);
    cr_assert(ok, "the worker never registered its workflow types");
    snprintf(waited, sizeof(waited), "%s/wait.out", stack.redis.dir);
    snprintf(followed, sizeof(followed), "%s/follow.out", stack.redis.dir);
    snprintf(watched, sizeof(watched), "%s/watch.out", stack.redis.dir);
    cr_assert_gt(watcher = bt_test_spawn(watch, stack.envp, watched), 0);
    BT_TEST_WAIT_UNTIL(ok, bt_test_count_lines_with(watched, "\"dead_letters\"") > 0,
                       30000);
    cr_expect(ok, "stats --watch --json printed no line as it read it");
    cr_assert_gt(cli = bt_test_spawn(start, stack.envp, waited), 0);
    BT_TEST_WAIT_UNTIL(
        ok, !strcmp(bt_stack_status(&stack, "wr-1", status, sizeof(status)), "running"),
        30000);
    cr_assert(ok, "wr-1 never ran");
    cr_assert_gt(follower = bt_test_spawn(follow, stack.envp, followed), 0);
    BT_TEST_WAIT_UNTIL(ok, bt_test_count_lines_with(followed, "started") > 0, 30000);
    cr_assert(ok, "the follower printed nothing");

    /* down until the waiting start and the watch have met it (or ended) */
    bt_stack_redis_down(&stack, "kill");
    BT_TEST_WAIT_UNTIL(ok,
                       bt_test_count_lines_with(waited, "waiting for it") &&
                           (bt_test_count_lines_with(watched, "does not answer") ||
                            (watch_status = bt_test_wait(watcher, 0)) >= 0),
                       30000);
    cr_assert_eq(bt_stack_redis_up(&stack), 0);
    before = bt_test_count_lines_with(watched, "\"dead_letters\"");

    cr_expect_eq(bt_test_wait(cli, 60000), 0,
                 "start --wait did not ride out the restart");
    cr_expect_eq(bt_test_count_lines_with(waited, "{\"slept\":true}"), 1);
    cr_expect_geq(bt_test_count_lines_with(waited, "waiting for it"), 1);
    cr_expect_eq(bt_test_wait(follower, 60000), 0,
                 "history --follow did not ride out the restart: %s",
                 bt_test_file_tail(followed, tail, sizeof(tail)));
    cr_expect_eq(bt_test_count_lines_with(followed, "finished"), 1);
    BT_TEST_WAIT_UNTIL(ok,
                       watch_status < 0 && bt_test_count_lines_with(
                                               watched, "\"dead_letters\"") >= before + 2,
                       30000);
    cr_expect(ok, "stats --watch did not ride out the restart (exit status %d)",
              watch_status);
    if (watch_status < 0) /* not reaped yet */
        bt_test_stop(watcher, BT_TEST_STOP_MS);
    cr_expect_eq(bt_test_stop(worker, BT_TEST_STOP_MS), 0);
    cr_expect_eq(bt_test_stop(scheduler, BT_TEST_STOP_MS), 0);
}
