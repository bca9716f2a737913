/* The engine end to end: real redis-server, the Kafka mock cluster, real
 * baton-worker processes running the test plugin (tests/plugins/flows.c). */
#include <criterion/criterion.h>
#include <signal.h>
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

/* Whether id's history shows want_steps steps completed, each once (its
 * journal goes when it completes: the history is what stays). */
static bool count_journal_done(const char *id, int want_steps)
{
    json_t *done = bt_stack_history(&stack, id, NULL, "activity_completed");
    json_t *seqs = json_object();
    size_t i;
    json_t *rec;
    char seq[32];

    json_array_foreach(done, i, rec)
    {
        snprintf(seq, sizeof(seq), "%lld",
                 (long long)json_integer_value(json_object_get(rec, "seq")));
        json_object_set_new(seqs, seq, json_true());
    }
    bool ok = (int)json_array_size(done) == want_steps &&
              (int)json_object_size(seqs) == want_steps;
    json_decref(seqs);
    json_decref(done);
    return ok;
}

Test(engine, completes_a_thousand_three_step_workflows_started_through_kafka,
     .init = setup, .fini = teardown, .timeout = 120)
{
    const int n = 1000;
    struct bt_stack_results r;
    pid_t worker = bt_stack_worker(&stack, "flows", NULL);

    cr_assert_gt(worker, 0);
    for (int i = 0; i < n; i++) {
        char id[64];
        snprintf(id, sizeof(id), "chain-%d", i);
        cr_assert_eq(
            bt_stack_start_wf(&stack, "chain3", id,
                              json_pack("{s:i, s:s}", "v", i, "pad", "xxxxxxxx")),
            0);
    }
    bt_stack_results(&stack, &r, n, 90000);
    cr_assert_eq(r.distinct, n, "results: %d distinct of %d (raw %d)", r.distinct, n,
                 r.raw);
    cr_log_info("results: distinct=%d raw=%d", r.distinct, r.raw);
    for (int i = 0; i < n; i++) {
        char id[64];
        json_t *res;
        snprintf(id, sizeof(id), "chain-%d", i);
        res = json_object_get(r.by_id, id);
        cr_assert_str_eq(json_string_value(json_object_get(res, "status")), "completed");
        cr_assert_eq(
            json_integer_value(json_object_get(json_object_get(res, "result"), "v")),
            i + 3, "%s: each step must be applied exactly once", id);
        cr_assert(count_journal_done(id, 3), "%s: journal must hold 3 completed steps",
                  id);
    }
    json_decref(r.by_id);
    cr_assert_eq(bt_test_stop(worker, BT_TEST_STOP_MS), 0,
                 "the worker must exit cleanly on SIGTERM");
}

Test(engine, fans_out_and_in_whatever_the_completion_order, .init = setup,
     .fini = teardown, .timeout = 60)
{
    struct bt_stack_results r;
    pid_t worker = bt_stack_worker(&stack, "flows",
                                   (const char *const[]){"--concurrency", "3", NULL});

    cr_assert_gt(worker, 0);
    for (int i = 0; i < 20; i++) {
        char id[64];
        snprintf(id, sizeof(id), "fan-%d", i);
        cr_assert_eq(
            bt_stack_start_wf(&stack, "fanout3", id, json_pack("{s:i}", "max_ms", 30)),
            0);
    }
    bt_stack_results(&stack, &r, 20, 30000);
    cr_assert_eq(r.distinct, 20);
    for (int i = 0; i < 20; i++) {
        char id[64];
        snprintf(id, sizeof(id), "fan-%d", i);
        json_t *order = json_object_get(
            json_object_get(json_object_get(r.by_id, id), "result"), "order");
        /* fan-in collects by future, not by arrival: always 0, 1, 2 */
        cr_assert_eq(json_array_size(order), 3);
        for (int k = 0; k < 3; k++)
            cr_assert_eq(json_integer_value(json_array_get(order, k)), k);
        cr_assert(count_journal_done(id, 3));
    }
    json_decref(r.by_id);
    bt_test_stop(worker, BT_TEST_STOP_MS);
}

Test(engine, side_effects_are_recorded_and_replayed_identically, .init = setup,
     .fini = teardown, .timeout = 60)
{
    struct bt_stack_results r;
    pid_t worker = bt_stack_worker(&stack, "flows", NULL);

    cr_assert_eq(
        bt_stack_start_wf(&stack, "side_effects", "se-1", json_pack("{s:i}", "v", 1)), 0);
    bt_stack_results(&stack, &r, 1, 30000);
    json_t *res = json_object_get(json_object_get(r.by_id, "se-1"), "result");
    cr_assert_not_null(res);
    /* the first values were recorded before the activity and replayed after it */
    cr_assert_gt(json_integer_value(json_object_get(res, "now")), 1600000000000LL);
    cr_assert_eq(strlen(json_string_value(json_object_get(res, "uuid"))), 36);
    cr_assert_str_neq(json_string_value(json_object_get(res, "uuid")),
                      json_string_value(json_object_get(res, "uuid_again")));
    cr_assert_geq(json_integer_value(json_object_get(res, "now_again")),
                  json_integer_value(json_object_get(res, "now")));
    /* the value the code saw on its last replay is the one recorded */
    json_t *effects = bt_stack_history(&stack, "se-1", NULL, "side_effect");
    json_t *first = json_array_get(effects, 0);
    cr_assert_eq(json_array_size(effects), 5, "now, random, uuid, now, uuid");
    cr_assert_str_eq(json_string_value(json_object_get(first, "name")), "now");
    cr_assert_eq(json_integer_value(json_object_get(first, "value")),
                 json_integer_value(json_object_get(res, "now")));
    json_decref(effects);
    json_decref(r.by_id);
    bt_test_stop(worker, BT_TEST_STOP_MS);
}

static void start_chains(const char *prefix, int n)
{
    for (int i = 0; i < n; i++) {
        char id[64];
        snprintf(id, sizeof(id), "%s-%d", prefix, i);
        cr_assert_eq(bt_stack_start_wf(&stack, "chain3", id, json_pack("{s:i}", "v", i)),
                     0);
    }
}

static void assert_chains_done(const char *prefix, int n, struct bt_stack_results *r)
{
    cr_assert_eq(r->distinct, n, "results: %d distinct of %d (raw %d)", r->distinct, n,
                 r->raw);
    for (int i = 0; i < n; i++) {
        char id[64];
        snprintf(id, sizeof(id), "%s-%d", prefix, i);
        json_t *res = json_object_get(r->by_id, id);
        cr_assert_eq(
            json_integer_value(json_object_get(json_object_get(res, "result"), "v")),
            i + 3, "%s: every step result applied exactly once", id);
        cr_assert(count_journal_done(id, 3), "%s: journal must hold 3 completed steps",
                  id);
    }
}

Test(engine, loses_nothing_when_the_worker_is_killed_at_random_moments, .init = setup,
     .fini = teardown, .timeout = 180)
{
    const int n = 500;
    struct bt_stack_results r;
    unsigned seed = (unsigned)bt_test_now_ms();
    pid_t worker = bt_stack_worker(&stack, "flows", NULL);
    /* the eager tasks a killed worker held come back through the sweep */
    pid_t sched = bt_stack_scheduler(&stack);

    cr_assert_gt(sched, 0);
    start_chains("kill", n);
    for (int round = 0; round < 4; round++) {
        /* kill when some, but not all, instances have finished */
        char buf[32];
        bool started;
        BT_TEST_WAIT_UNTIL(started,
                           bt_stack_status(&stack, "kill-0", buf, sizeof(buf))[0], 20000);
        cr_assert(started, "the worker never picked up the first instance");
        bt_test_sleep_ms(50 +
                         (int)(rand_r(&seed) % 300)); /* a random moment, not a sync */
        bt_test_kill9(worker);
        worker = bt_stack_worker(&stack, "flows", NULL);
        cr_assert_gt(worker, 0);
    }
    bt_stack_results(&stack, &r, n, 120000);
    assert_chains_done("kill", n, &r);
    cr_log_info(
        "after 4 kills: distinct=%d raw=%d (raw - distinct = duplicates on Kafka)",
        r.distinct, r.raw);
    json_decref(r.by_id);
    bt_test_stop(worker, BT_TEST_STOP_MS);
    bt_test_stop(sched, BT_TEST_STOP_MS);
}

/* Two workers with args; one stops cleanly (SIGTERM) mid-run and comes back.
 * No scheduler runs: whatever the stopping worker held must reach the other
 * through Kafka, not through a timer or the outbox sweep. */
static void share_and_rebalance(const char *tag, const char *const *args)
{
    const int n = 400;
    struct bt_stack_results r;
    pid_t w1 = bt_stack_worker(&stack, "flows", args);
    pid_t w2 = bt_stack_worker(&stack, "flows", args);
    char buf[32], first[64], tag2[64];
    bool started;

    snprintf(first, sizeof(first), "%s-0", tag);
    snprintf(tag2, sizeof(tag2), "%s2", tag);
    start_chains(tag, n / 2);
    BT_TEST_WAIT_UNTIL(started, bt_stack_status(&stack, first, buf, sizeof(buf))[0],
                       30000);
    cr_assert(started);
    /* one leaves the group (clean stop), the other takes over; then it comes back */
    cr_assert_eq(bt_test_stop(w2, 20000), 0);
    start_chains(tag2, n / 2);
    w2 = bt_stack_worker(&stack, "flows", args);
    bt_stack_results(&stack, &r, n, 150000);
    cr_assert_eq(r.distinct, n, "results: %d of %d", r.distinct, n);
    json_decref(r.by_id);
    for (int i = 0; i < n / 2; i++) {
        char id[160];
        snprintf(id, sizeof(id), "%s-%d", tag, i);
        cr_assert(count_journal_done(id, 3), "%s", id);
        snprintf(id, sizeof(id), "%s-%d", tag2, i);
        cr_assert(count_journal_done(id, 3), "%s", id);
    }
    bt_test_stop(w1, BT_TEST_STOP_MS);
    bt_test_stop(w2, BT_TEST_STOP_MS);
}

Test(engine, two_workers_share_the_work_and_a_rebalance_loses_nothing, .init = setup,
     .fini = teardown, .timeout = 180)
{
    share_and_rebalance("pair", (const char *const[]){"--eager=0", NULL});
}

/* The same with eager dispatch: at its clean stop the worker hands its
 * queued eager tasks and the outcomes it has not applied to Kafka (350 of 400
 * completed within the test when they were left to the sweep). */
Test(engine, an_eager_worker_that_stops_cleanly_hands_its_work_to_kafka, .init = setup,
     .fini = teardown, .timeout = 180)
{
    share_and_rebalance("epair", (const char *const[]){"--eager=1", NULL});
}

static int signal_wf(const char *id, const char *name)
{
    char payload[512];
    int len =
        snprintf(payload, sizeof(payload),
                 "{\"v\":1,\"type\":\"signal\",\"id\":\"%s\",\"name\":\"%s\"}", id, name);
    return bt_stack_produce(&stack, "events", id, payload, (size_t)len);
}

static bool journal_len_is(const char *id, long long n)
{
    char key[300];
    redisReply *reply = bt_stack_redis(
        &stack, "HLEN %s", bt_stack_key(&stack, id, ":journal", key, sizeof(key)));
    bool ok = reply && reply->integer == n;
    freeReplyObject(reply);
    return ok;
}

Test(engine, appended_steps_run_in_flight_and_reordered_steps_block, .init = setup,
     .fini = teardown, .timeout = 120)
{
    char buf[64];
    bool ok;
    pid_t w = bt_stack_worker(&stack, "versioned_v1", NULL);

    for (int i = 0; i < 4; i++) {
        char id[32];
        snprintf(id, sizeof(id), "ver-%d", i);
        cr_assert_eq(bt_stack_start_wf(&stack, "versioned", id, NULL), 0);
    }
    /* every instance waits for "go" after step a */
    BT_TEST_WAIT_UNTIL(ok,
                       journal_len_is("ver-0", 2) && journal_len_is("ver-1", 2) &&
                           journal_len_is("ver-2", 2) && journal_len_is("ver-3", 2),
                       30000);
    cr_assert(ok, "instances did not reach their signal wait");
    cr_assert_eq(bt_test_stop(w, 20000), 0);

    /* deploy v2 (appends c): in-flight instances run it */
    w = bt_stack_worker(&stack, "versioned_v2", NULL);
    signal_wf("ver-0", "go");
    signal_wf("ver-1", "go");
    BT_TEST_WAIT_UNTIL(
        ok,
        !strcmp(bt_stack_status(&stack, "ver-0", buf, sizeof(buf)), "completed") &&
            !strcmp(bt_stack_status(&stack, "ver-1", buf, sizeof(buf)), "completed"),
        60000);
    cr_assert(ok, "ver-0/1 must complete on v2, status %s", buf);
    json_t *done = bt_stack_history(&stack, "ver-0", NULL, "activity_completed");
    cr_assert_str_eq(json_string_value(json_object_get(
                         json_array_get(done, json_array_size(done) - 1), "name")),
                     "c", "the appended step c must have run");
    json_decref(done);
    cr_assert_eq(bt_test_stop(w, 20000), 0);

    /* deploy v3 (reorders a and b): old instances block, nothing corrupted */
    w = bt_stack_worker(&stack, "versioned_v3", NULL);
    signal_wf("ver-2", "go");
    BT_TEST_WAIT_UNTIL(
        ok, !strcmp(bt_stack_status(&stack, "ver-2", buf, sizeof(buf)), "blocked"),
        60000);
    cr_assert(ok, "ver-2 must be blocked, is %s", buf);
    char key[300];
    redisReply *err = bt_stack_redis(&stack, "HGET %s error",
                                     bt_stack_key(&stack, "ver-2", "", key, sizeof(key)));
    cr_assert(err && err->str && strstr(err->str, "seq 0") &&
                  strstr(err->str, "\\\"a\\\"") && strstr(err->str, "\\\"b\\\""),
              "the error must name the seq and both steps: %s",
              err ? err->str : "(none)");
    freeReplyObject(err);
    cr_assert(journal_len_is("ver-2", 2), "a blocked instance's journal is untouched");
    cr_assert_eq(bt_test_stop(w, 20000), 0);

    /* compatible code again (v2): `baton unblock` makes the blocked one resume */
    w = bt_stack_worker(&stack, "versioned_v2", NULL);
    signal_wf("ver-3", "go");
    pid_t cli = bt_test_spawn(
        (const char *const[]){BT_BIN_DIR "/baton", "unblock", "ver-2", NULL}, stack.envp,
        stack.log);
    cr_assert_eq(bt_test_wait(cli, 20000), 0,
                 "baton unblock must succeed on a blocked instance");
    BT_TEST_WAIT_UNTIL(
        ok,
        !strcmp(bt_stack_status(&stack, "ver-2", buf, sizeof(buf)), "completed") &&
            !strcmp(bt_stack_status(&stack, "ver-3", buf, sizeof(buf)), "completed"),
        60000);
    cr_assert(ok, "blocked instance must resume after a compatible deploy: %s", buf);
    bt_test_stop(w, BT_TEST_STOP_MS);
}

struct dlq {
    int n;
    bool malformed, unknown_type, unknown_instance, finished;
    char origin[128];
};

static bool collect_dlq(const json_t *msg, void *arg)
{
    struct dlq *d = arg;
    const char *reason = json_string_value(json_object_get(msg, "reason"));
    const char *topic =
        json_string_value(json_object_get(json_object_get(msg, "origin"), "topic"));

    d->n++;
    if (topic)
        snprintf(d->origin, sizeof(d->origin), "%s", topic);
    if (reason && strstr(reason, "malformed JSON"))
        d->malformed = true;
    if (reason && strstr(reason, "unknown workflow type"))
        d->unknown_type = true;
    if (reason && strstr(reason, "unknown instance"))
        d->unknown_instance = true;
    if (reason && strstr(reason, "signal: instance already finished"))
        d->finished = true;
    return d->malformed && d->unknown_type && d->unknown_instance && d->finished;
}

Test(engine, bad_input_goes_to_the_dlq_and_the_rest_goes_on, .init = setup,
     .fini = teardown, .timeout = 60)
{
    struct dlq d = {0};
    struct bt_stack_results r;
    const char *bad = "{\"v\":1,\"type\":\"start\",\"id\":";
    const char *unknown = "{\"v\":1,\"type\":\"completed\",\"id\":\"nobody\",\"seq\":0,"
                          "\"attempt\":1,\"result\":null}";
    pid_t w = bt_stack_worker(&stack, "flows", NULL);

    cr_assert_eq(bt_stack_produce(&stack, "events", "x", bad, strlen(bad)), 0);
    cr_assert_eq(bt_stack_start_wf(&stack, "no_such_workflow", "orphan", NULL), 0);
    cr_assert_eq(bt_stack_produce(&stack, "events", "nobody", unknown, strlen(unknown)),
                 0);
    start_chains("good", 5);
    bt_stack_results(&stack, &r, 5, 30000);
    assert_chains_done("good", 5, &r);
    json_decref(r.by_id);
    /* a signal through Kafka for an instance that has finished */
    const char *late = "{\"v\":1,\"type\":\"signal\",\"id\":\"good-0\",\"name\":\"x\"}";
    cr_assert_eq(bt_stack_produce(&stack, "events", "good-0", late, strlen(late)), 0);
    bt_stack_read(&stack, "dlq", 30000, collect_dlq, &d);
    cr_assert(d.malformed && d.unknown_type && d.unknown_instance && d.finished,
              "dlq: malformed=%d unknown_type=%d unknown_instance=%d finished=%d",
              d.malformed, d.unknown_type, d.unknown_instance, d.finished);
    char want[128];
    snprintf(want, sizeof(want), "%s.events", stack.prefix);
    cr_assert_str_eq(d.origin, want);
    cr_assert_eq(bt_test_stop(w, BT_TEST_STOP_MS), 0,
                 "the worker must still be alive and exit cleanly");
}

/* Counts the dead letters up to the late signal's (keyed by instance, they
 * keep the events' order). */
static bool late_signal_refused(const json_t *msg, void *arg)
{
    struct dlq *d = arg;
    const char *reason = json_string_value(json_object_get(msg, "reason"));

    d->n++;
    d->finished = reason && strstr(reason, "signal: instance already finished");
    return d->finished;
}

/* A start is committed without loading its instance first (almost every
 * start is of a new one); one of an instance that exists must still change
 * nothing, running or finished. Events of one instance share a partition, so
 * what follows a duplicate start is applied after it. */
Test(engine, a_second_start_of_an_instance_changes_nothing, .init = setup,
     .fini = teardown, .timeout = 60)
{
    char out[4096], buf[32];
    struct dlq d = {0};
    bool ok;
    pid_t w = bt_stack_worker(&stack, "flows", NULL);
    const char *late = "{\"v\":1,\"type\":\"signal\",\"id\":\"twice\",\"name\":\"x\"}";

    cr_assert_gt(w, 0);
    cr_assert_eq(
        bt_stack_start_wf(&stack, "await_review", "twice", json_pack("{s:i}", "n", 1)),
        0);
    BT_TEST_WAIT_UNTIL(
        ok, !strcmp(bt_stack_status(&stack, "twice", buf, sizeof(buf)), "running"),
        20000);
    cr_assert(ok, "the first start must run: %s", buf);
    /* while it runs, then the signal it waits for */
    cr_assert_eq(
        bt_stack_start_wf(&stack, "await_review", "twice", json_pack("{s:i}", "n", 2)),
        0);
    cr_assert_eq(
        bt_stack_baton(&stack, out, sizeof(out),
                       (const char *const[]){"signal", "twice", "review", "--payload",
                                             "{\"ok\":true}", NULL}),
        0, "%s", out);
    BT_TEST_WAIT_UNTIL(
        ok, !strcmp(bt_stack_status(&stack, "twice", buf, sizeof(buf)), "completed"),
        20000);
    cr_assert(ok, "the signal must complete it: %s", buf);
    char key[300];
    redisReply *ver = bt_stack_redis(&stack, "HGET %s ver",
                                     bt_stack_key(&stack, "twice", "", key, sizeof(key)));
    cr_assert(ver && ver->type == REDIS_REPLY_STRING);
    long long ver_done = strtoll(ver->str, NULL, 10);
    freeReplyObject(ver);
    /* when finished, then an event that is refused where everyone can see it */
    cr_assert_eq(
        bt_stack_start_wf(&stack, "await_review", "twice", json_pack("{s:i}", "n", 3)),
        0);
    cr_assert_eq(bt_stack_produce(&stack, "events", "twice", late, strlen(late)), 0);
    bt_stack_read(&stack, "dlq", 30000, late_signal_refused, &d);
    cr_assert(d.finished, "the late signal must be refused");
    cr_assert_eq(d.n, 1, "only the late signal is a dead letter, not the starts: %d",
                 d.n);

    json_t *started = bt_stack_history(&stack, "twice", ":history", "started");
    cr_assert_eq(json_array_size(started), 1, "one start applied");
    json_decref(started);
    redisReply *meta = bt_stack_redis(&stack, "HMGET %s input result status ver", key);
    cr_assert(meta && meta->type == REDIS_REPLY_ARRAY && meta->elements == 4);
    cr_assert(strstr(meta->element[0]->str, "\"n\":1"), "the first input stays: %s",
              meta->element[0]->str);
    cr_assert(strstr(meta->element[1]->str, "\"ok\":true"), "%s", meta->element[1]->str);
    cr_assert_str_eq(meta->element[2]->str, "completed");
    cr_assert_eq(strtoll(meta->element[3]->str, NULL, 10), ver_done,
                 "nothing committed after it finished");
    freeReplyObject(meta);
    cr_assert_eq(bt_test_stop(w, BT_TEST_STOP_MS), 0);
}

Test(engine, an_external_program_serves_a_queue_through_the_published_schemas,
     .init = setup, .fini = teardown, .timeout = 60)
{
    char script[2048];
    struct bt_stack_results r;
    pid_t w = bt_stack_worker(&stack, "flows", NULL);

    /* the "legacy system": kcat reads commands, jq answers, kcat writes events
     * (one kcat -P per answer: it sends only when its input ends) */
    snprintf(
        script, sizeof(script),
        "kcat -C -b %s -t %s.tasks.legacy -o beginning -u -q -f '%%s\n' | "
        "jq -c --unbuffered -r '\"\\(.id)|\" + ({v: 1, type: \"completed\", id: .id, "
        "seq: .seq, attempt: .attempt, result: {legacy: true, echo: .input}} | tojson)' "
        "| "
        "while IFS= read -r line; do "
        "printf '%%s\n' \"$line\" | kcat -P -b %s -t %s.events -K '|'; done",
        stack.kafka.brokers, stack.prefix, stack.kafka.brokers, stack.prefix);
    pid_t pipeline = bt_test_spawn(
        (const char *const[]){"/usr/bin/setsid", "/bin/sh", "-c", script, NULL}, NULL,
        stack.log);
    cr_assert_gt(pipeline, 0);
    cr_assert_eq(
        bt_stack_start_wf(&stack, "legacy1", "leg-1", json_pack("{s:s}", "q", "x")), 0);
    bt_stack_results(&stack, &r, 1, 40000);
    json_t *res = json_object_get(json_object_get(r.by_id, "leg-1"), "result");
    cr_assert(json_is_true(json_object_get(res, "legacy")),
              "the legacy program's answer");
    cr_assert_str_eq(
        json_string_value(json_object_get(json_object_get(res, "echo"), "q")), "x");
    json_decref(r.by_id);
    kill(-pipeline, SIGKILL); /* setsid made it a process group: kcat and jq too */
    bt_test_kill9(pipeline);
    bt_test_stop(w, BT_TEST_STOP_MS);
}

static bool count_msgs(const json_t *msg, void *arg)
{
    (void)msg;
    ++*(int *)arg;
    return false;
}

Test(engine, eager_dispatch_runs_steps_on_the_deciding_worker_without_kafka,
     .init = setup, .fini = teardown, .timeout = 120)
{
    const int n = 300;
    struct bt_stack_results r;
    /* two workflow threads: each outcome goes back to the one that decided */
    pid_t worker =
        bt_stack_worker(&stack, "flows",
                        (const char *const[]){"--eager=1", "--workflow-threads=2", NULL});
    int tasks = 0;
    char buf[32];
    bool done;

    cr_assert_gt(worker, 0);
    /* one at a time: a thread is always free, so no task goes through Kafka */
    for (int i = 0; i < 10; i++) {
        char id[32];
        snprintf(id, sizeof(id), "one-%d", i);
        cr_assert_eq(bt_stack_start_wf(&stack, "chain3", id, json_pack("{s:i}", "v", i)),
                     0);
        BT_TEST_WAIT_UNTIL(
            done, !strcmp(bt_stack_status(&stack, id, buf, sizeof(buf)), "completed"),
            30000);
        cr_assert(done, "%s: %s", id, buf);
    }
    bt_stack_read_all(&stack, "tasks.default", 3000, count_msgs, &tasks);
    cr_assert_eq(tasks, 0, "%d tasks went through Kafka", tasks);
    /* many at once: what the threads cannot take at once goes to Kafka */
    start_chains("eager", n);
    bt_stack_results(&stack, &r, n + 10, 60000);
    cr_assert_eq(r.distinct, n + 10);
    r.distinct -= 10; /* the one-at-a-time ones, checked above */
    assert_chains_done("eager", n, &r);
    json_decref(r.by_id);
    cr_assert_eq(bt_test_stop(worker, BT_TEST_STOP_MS), 0,
                 "the worker must exit cleanly");
}

/* An eager task lives in its instance's outbox under a field held by its
 * worker. A worker that dies running one (failpoint exit-in-eager-task)
 * stops refreshing its alive key. Once the key is gone, the scheduler's
 * outbox sweep sends the task to Kafka. The step's timeout is far off: only
 * the sweep can bring these steps back within the test. */
Test(engine, eager_tasks_of_a_dead_worker_are_sent_again_from_the_outbox, .init = setup,
     .fini = teardown, .timeout = 120)
{
    const int n = 20;
    const char *const args[] = {"--eager=1", "--activity-timeout-ms", "600000", NULL};
    struct bt_stack_results r;
    pid_t first, second, sched;
    int status;

    bt_stack_setenv(&stack, 0, "BATON_FAILPOINTS=exit-in-eager-task");
    first = bt_stack_worker(&stack, "flows", args);
    bt_stack_setenv(&stack, 0, NULL);
    cr_assert_gt(first, 0);
    start_chains("held", n);
    status = bt_test_wait(first, 60000);
    cr_assert_eq(status, 9, "the worker should have exited at its failpoint: %d", status);
    second = bt_stack_worker(&stack, "flows", args);
    sched = bt_stack_scheduler(&stack);
    cr_assert_gt(second, 0);
    cr_assert_gt(sched, 0);
    bt_stack_results(&stack, &r, n, 90000);
    assert_chains_done("held", n, &r);
    json_decref(r.by_id);
    cr_assert_geq(bt_test_count_lines_with(stack.log, "an eager task's worker is gone"),
                  1);
    cr_assert_eq(bt_test_stop(second, BT_TEST_STOP_MS), 0);
    cr_assert_eq(bt_test_stop(sched, BT_TEST_STOP_MS), 0);
    /* every held field was forgotten (a task the dead worker had sent
     * through Kafka may still sit in its outbox as sent-but-not-forgotten:
     * the sweep re-sends and forgets it 5 s after the instance's last
     * commit, as after any crash) */
    char pattern[128];
    size_t held = 0;
    snprintf(pattern, sizeof(pattern),
             stack.shards ? "%s:{*}:{*}:outbox" : "%s:{*}:outbox", stack.prefix);
    redisReply *keys = bt_stack_redis(&stack, "KEYS %s", pattern);
    cr_assert(keys && keys->type == REDIS_REPLY_ARRAY);
    for (size_t i = 0; i < keys->elements; i++) {
        redisReply *fields = bt_stack_redis(&stack, "HKEYS %s", keys->element[i]->str);
        for (size_t j = 0; fields && j < fields->elements; j++)
            held += strstr(fields->element[j]->str, "|@") != NULL;
        freeReplyObject(fields);
    }
    freeReplyObject(keys);
    cr_assert_eq(held, 0, "held fields left in the outboxes");
}

/* A commit whose reply is lost (failpoint commit-reply-lost: the first
 * batch with eager tasks, then every 4th) is tried again; the retry finds the instances
 * already advanced, with their eager tasks in the outbox but never handed to
 * the activity role. It hands them over then: with a 600 s step timeout and
 * no dead worker, nothing else would run them within the test. */
Test(engine, eager_tasks_of_a_commit_whose_reply_was_lost_still_run, .init = setup,
     .fini = teardown, .timeout = 120)
{
    const int n = 40;
    const char *const args[] = {"--eager=1", "--activity-timeout-ms", "600000", NULL};
    struct bt_stack_results r;
    pid_t worker;

    bt_stack_setenv(&stack, 0, "BATON_FAILPOINTS=commit-reply-lost");
    worker = bt_stack_worker(&stack, "flows", args);
    bt_stack_setenv(&stack, 0, NULL);
    cr_assert_gt(worker, 0);
    start_chains("lost", n);
    bt_stack_results(&stack, &r, n, 90000);
    assert_chains_done("lost", n, &r);
    json_decref(r.by_id);
    cr_assert_geq(bt_test_count_lines_with(stack.log, "failpoint commit-reply-lost"), 1);
    cr_assert_eq(bt_test_stop(worker, BT_TEST_STOP_MS), 0);
}

/* The fan-outs' naps (up to 100 ms each, 4 at a time: about 1.5 s of work)
 * keep eager steps running and queued in the worker when it is killed, also
 * on a machine fast enough to finish quick steps before any kill (CI ran 200
 * chains of instant steps to their end before the kill, then stopped the
 * new worker before it had set its SIGTERM handler). The work stays well
 * within the steps' timeout: a step's timer runs from its dispatch until a
 * worker takes it, then again from the take, the wait for a thread
 * included. */
Test(engine, eager_steps_of_a_killed_worker_are_retried_after_their_timeout,
     .init = setup, .fini = teardown, .timeout = 180)
{
    const int n = 40;
    const char *const args[] = {"--eager=1", "--activity-timeout-ms", "5000", NULL};
    struct bt_stack_results r;
    unsigned seed = (unsigned)bt_test_now_ms();
    pid_t worker = bt_stack_worker(&stack, "flows", args),
          sched = bt_stack_scheduler(&stack);
    char buf[32], id[64];
    bool started;

    cr_assert_gt(worker, 0);
    cr_assert_gt(sched, 0);
    for (int i = 0; i < n; i++) {
        snprintf(id, sizeof(id), "ekill-%d", i);
        cr_assert_eq(
            bt_stack_start_wf(&stack, "fanout3", id, json_pack("{s:i}", "max_ms", 100)),
            0);
    }
    BT_TEST_WAIT_UNTIL(started, bt_stack_status(&stack, "ekill-0", buf, sizeof(buf))[0],
                       20000);
    cr_assert(started, "the worker never picked up the first instance");
    bt_test_sleep_ms(20 + (int)(rand_r(&seed) % 200)); /* a random moment, not a sync */
    bt_test_kill9(worker);
    worker = bt_stack_worker(&stack, "flows", args);
    cr_assert_gt(worker, 0);
    /* what the dead worker was running locally comes back by its timeout */
    bt_stack_results(&stack, &r, n, 120000);
    cr_assert_eq(r.distinct, n, "results: %d distinct of %d (raw %d)", r.distinct, n,
                 r.raw);
    for (int i = 0; i < n; i++) {
        snprintf(id, sizeof(id), "ekill-%d", i);
        json_t *order = json_object_get(
            json_object_get(json_object_get(r.by_id, id), "result"), "order");
        cr_assert_eq(json_array_size(order), 3, "%s: three naps collected", id);
        cr_assert(count_journal_done(id, 3), "%s: journal must hold 3 completed steps",
                  id);
    }
    json_decref(r.by_id);
    cr_assert_eq(bt_test_stop(worker, BT_TEST_STOP_MS), 0);
    cr_assert_eq(bt_test_stop(sched, BT_TEST_STOP_MS), 0);
}
