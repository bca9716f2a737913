/* Time end to end: retries with backoff, compensation, activity timeouts
 * after a worker is killed, signal timeouts, durable sleeps and the
 * scheduler's exactly-once firing across kills and replicas. Real
 * redis-server, mock Kafka cluster, baton-worker and baton-scheduler. */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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

static json_t *wait_results(int want, int wait_ms)
{
    struct bt_stack_results r;

    bt_stack_results(&stack, &r, want, wait_ms);
    cr_assert_eq(r.distinct, want, "results: %d of %d", r.distinct, want);
    return r.by_id;
}

static json_t *history(const char *id, const char *ev)
{
    return bt_stack_history(&stack, id, NULL, ev);
}

static int64_t ts_of(json_t *records, size_t i)
{
    return json_integer_value(json_object_get(json_array_get(records, i), "ts"));
}

Test(time, retries_with_exponential_backoff_until_the_activity_succeeds, .init = setup,
     .fini = teardown, .timeout = 60)
{
    pid_t w = bt_stack_worker(&stack, "timing", NULL), sch = bt_stack_scheduler(&stack);

    cr_assert_eq(
        bt_stack_start_wf(&stack, "retry_or_compensate", "r-1",
                          json_pack("{s:i, s:i}", "fail_times", 2, "max_attempts", 5)),
        0);
    json_t *res = wait_results(1, 30000);
    json_t *out = json_object_get(json_object_get(res, "r-1"), "result");
    cr_assert_str_eq(json_string_value(json_object_get(out, "branch")), "ok");
    cr_assert_eq(
        json_integer_value(json_object_get(json_object_get(out, "result"), "attempt")),
        3);

    json_t *scheduled = history("r-1", "activity_scheduled");
    json_t *failed = history("r-1", "activity_failed");
    cr_assert_eq(json_array_size(scheduled), 3, "three attempts were dispatched");
    cr_assert_eq(json_array_size(failed), 2, "two attempts failed");
    for (size_t i = 0; i < 2; i++) {
        json_t *err = json_object_get(json_array_get(failed, i), "error");
        cr_assert_str_eq(json_string_value(json_object_get(err, "type")), "Flaky");
        cr_assert_eq(
            json_integer_value(json_object_get(json_array_get(failed, i), "attempt")),
            (json_int_t)i + 1);
    }
    /* backoff 100 ms, then 200 ms (coefficient 2), measured from each failure */
    int64_t gap1 = ts_of(scheduled, 1) - ts_of(failed, 0);
    int64_t gap2 = ts_of(scheduled, 2) - ts_of(failed, 1);
    cr_log_info("retry spacing: %lld ms, %lld ms", (long long)gap1, (long long)gap2);
    cr_assert(gap1 >= 100 && gap1 < 1000, "first backoff %lld ms", (long long)gap1);
    cr_assert(gap2 >= 200 && gap2 < 1100, "second backoff %lld ms", (long long)gap2);
    cr_assert(gap2 > gap1);
    json_decref(scheduled);
    json_decref(failed);
    json_decref(res);
    bt_test_stop(w, BT_TEST_STOP_MS);
    bt_test_stop(sch, BT_TEST_STOP_MS);
}

Test(time, gives_the_failure_to_the_workflow_when_attempts_run_out, .init = setup,
     .fini = teardown, .timeout = 60)
{
    pid_t w = bt_stack_worker(&stack, "timing", NULL), sch = bt_stack_scheduler(&stack);

    cr_assert_eq(
        bt_stack_start_wf(&stack, "retry_or_compensate", "c-1",
                          json_pack("{s:i, s:i}", "fail_times", 5, "max_attempts", 2)),
        0);
    json_t *res = wait_results(1, 30000);
    json_t *out = json_object_get(json_object_get(res, "c-1"), "result");
    cr_assert_str_eq(json_string_value(json_object_get(out, "branch")), "compensated");
    json_t *gave_up = history("c-1", "activity_gave_up");
    cr_assert_eq(json_array_size(gave_up), 1);
    cr_assert_eq(
        json_integer_value(json_object_get(json_array_get(gave_up, 0), "attempts")), 2);
    json_decref(gave_up);
    json_decref(res);
    bt_test_stop(w, BT_TEST_STOP_MS);
    bt_test_stop(sch, BT_TEST_STOP_MS);
}

Test(time, a_non_retryable_error_type_fails_the_step_at_once, .init = setup,
     .fini = teardown, .timeout = 60)
{
    pid_t w = bt_stack_worker(&stack, "timing", NULL), sch = bt_stack_scheduler(&stack);

    cr_assert_eq(bt_stack_start_wf(&stack, "no_retry", "nr-1",
                                   json_pack("{s:i}", "fail_times", 3)),
                 0);
    json_t *res = wait_results(1, 30000);
    json_t *out = json_object_get(json_object_get(res, "nr-1"), "result");
    cr_assert_str_eq(json_string_value(json_object_get(out, "branch")), "failed");
    cr_assert_str_eq(
        json_string_value(json_object_get(json_object_get(out, "error"), "type")),
        "Flaky");
    json_t *scheduled = history("nr-1", "activity_scheduled");
    cr_assert_eq(json_array_size(scheduled), 1, "no retry of a non-retryable error");
    json_decref(scheduled);
    json_decref(res);
    bt_test_stop(w, BT_TEST_STOP_MS);
    bt_test_stop(sch, BT_TEST_STOP_MS);
}

static bool file_has(const char *path, const char *text)
{
    char buf[256] = "";
    FILE *f = fopen(path, "r");
    size_t n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;

    if (f)
        fclose(f);
    buf[n] = '\0';
    return strstr(buf, text) != NULL;
}

Test(time, an_attempt_on_a_killed_worker_times_out_and_is_retried_elsewhere,
     .init = setup, .fini = teardown, .timeout = 60)
{
    char marker[400];
    bool running;
    pid_t a = bt_stack_worker(&stack, "timing", NULL), sch = bt_stack_scheduler(&stack);

    snprintf(marker, sizeof(marker), "%s/slow.marker", stack.redis.dir);
    cr_assert_eq(
        bt_stack_start_wf(&stack, "slow_once", "s-1",
                          json_pack("{s:i, s:s}", "first_ms", 30000, "marker", marker)),
        0);
    BT_TEST_WAIT_UNTIL(running, file_has(marker, "attempt 1"), 20000);
    cr_assert(running, "attempt 1 never started");
    bt_test_kill9(a);
    pid_t b = bt_stack_worker(&stack, "timing", NULL);
    json_t *res = wait_results(1, 30000);
    cr_assert_eq(json_integer_value(json_object_get(
                     json_object_get(json_object_get(res, "s-1"), "result"), "attempt")),
                 2, "the retry completed the instance");
    json_t *failed = history("s-1", "activity_failed");
    json_t *timer = history("s-1", "timer_fired");
    cr_assert_geq(json_array_size(timer), 1);
    cr_assert_str_eq(json_string_value(json_object_get(json_array_get(timer, 0), "kind")),
                     "timeout");
    cr_assert_eq(json_array_size(failed), 0, "the killed attempt never reported");
    json_decref(failed);
    json_decref(timer);
    json_decref(res);
    bt_test_stop(b, BT_TEST_STOP_MS);
    bt_test_stop(sch, BT_TEST_STOP_MS);
}

/* One activity thread and eager dispatch: six 1-s first attempts with a
 * 1.5 s start-to-close. The worker takes a task only when it would start in
 * time (workers/pace.h): here when its thread is free, as one queued behind
 * a running 1-s attempt would wait past a quarter of its timeout. So no
 * attempt times out in the worker's queue: each first attempt runs once and
 * completes its instance. (Before, eager dispatch queued them all at once:
 * the third and later timed out while they waited, were skipped, and their
 * retries completed the instances.) */
Test(time, no_attempt_times_out_while_it_waits_for_the_thread, .init = setup,
     .fini = teardown, .timeout = 60)
{
    const int n = 6;
    const char *const args[] = {"--eager=1", "--concurrency", "1", NULL};
    char marker[400], id[32];
    pid_t w = bt_stack_worker(&stack, "timing", args), sch = bt_stack_scheduler(&stack);
    json_t *res;
    int first;

    cr_assert_gt(w, 0);
    cr_assert_gt(sch, 0);
    snprintf(marker, sizeof(marker), "%s/queued.marker", stack.redis.dir);
    for (int i = 0; i < n; i++) {
        snprintf(id, sizeof(id), "q-%d", i);
        cr_assert_eq(bt_stack_start_wf(
                         &stack, "slow_once", id,
                         json_pack("{s:i, s:s}", "first_ms", 1000, "marker", marker)),
                     0);
    }
    res = wait_results(n, 40000);
    for (int i = 0; i < n; i++) {
        snprintf(id, sizeof(id), "q-%d", i);
        cr_assert_str_eq(
            json_string_value(json_object_get(json_object_get(res, id), "status")),
            "completed", "%s", id);
    }
    first = bt_test_count_lines_with(marker, "attempt 1");
    cr_log_info("first attempts run: %d of %d", first, n);
    cr_assert_eq(first, n, "%d of %d first attempts ran", first, n);
    for (int i = 0; i < n; i++) {
        snprintf(id, sizeof(id), "q-%d", i);
        cr_assert_eq(json_integer_value(json_object_get(
                         json_object_get(json_object_get(res, id), "result"), "attempt")),
                     1, "%s: its first attempt completed it", id);
    }
    json_decref(res);
    bt_test_stop(w, BT_TEST_STOP_MS);
    bt_test_stop(sch, BT_TEST_STOP_MS);
}

Test(time, a_signal_in_time_takes_branch_a_and_its_absence_branch_b, .init = setup,
     .fini = teardown, .timeout = 60)
{
    const char *sig = "{\"v\":1,\"type\":\"signal\",\"id\":\"w-a\",\"name\":\"review\","
                      "\"payload\":{\"approved\":true}}";
    pid_t w = bt_stack_worker(&stack, "timing", NULL), sch = bt_stack_scheduler(&stack);

    cr_assert_eq(
        bt_stack_start_wf(&stack, "wait_review", "w-a", json_pack("{s:i}", "ms", 20000)),
        0);
    cr_assert_eq(
        bt_stack_start_wf(&stack, "wait_review", "w-b", json_pack("{s:i}", "ms", 300)),
        0);
    cr_assert_eq(bt_stack_produce(&stack, "events", "w-a", sig, strlen(sig)), 0);
    json_t *res = wait_results(2, 30000);
    json_t *a = json_object_get(json_object_get(res, "w-a"), "result");
    json_t *b = json_object_get(json_object_get(res, "w-b"), "result");
    cr_assert_str_eq(json_string_value(json_object_get(a, "branch")), "A");
    cr_assert(json_is_true(json_object_get(json_object_get(a, "review"), "approved")));
    cr_assert_str_eq(json_string_value(json_object_get(b, "branch")), "B");
    json_decref(res);
    bt_test_stop(w, BT_TEST_STOP_MS);
    bt_test_stop(sch, BT_TEST_STOP_MS);
}

/* Timer events per instance id, read from the events topic. */
static bool count_timers(const json_t *msg, void *arg)
{
    json_t *counts = arg;
    const char *id = json_string_value(json_object_get(msg, "id"));

    if (id && !strcmp(json_string_value(json_object_get(msg, "type")), "timer"))
        json_object_set_new(
            counts, id,
            json_integer(json_integer_value(json_object_get(counts, id)) + 1));
    return false;
}

static void start_sleepers(const char *prefix, int n, int ms)
{
    for (int i = 0; i < n; i++) {
        char id[64];
        snprintf(id, sizeof(id), "%s-%d", prefix, i);
        cr_assert_eq(
            bt_stack_start_wf(&stack, "sleeper", id, json_pack("{s:i}", "ms", ms)), 0);
    }
}

static void assert_slept_once(const char *prefix, int n, json_t *res)
{
    for (int i = 0; i < n; i++) {
        char id[64];
        snprintf(id, sizeof(id), "%s-%d", prefix, i);
        cr_assert(json_object_get(res, id), "%s finished", id);
        json_t *fired = history(id, "timer_fired");
        cr_assert_eq(json_array_size(fired), 1,
                     "%s: the workflow saw its timer fire %zu times", id,
                     json_array_size(fired));
        json_decref(fired);
    }
}

static long timers_left(void)
{
    return (long)bt_stack_zcard(&stack, "timers");
}

Test(time, a_thousand_timers_fire_once_across_a_scheduler_kill, .init = setup,
     .fini = teardown, .timeout = 120)
{
    const int n = 1000;
    bool some;
    pid_t w = bt_stack_worker(&stack, "timing", NULL);

    start_sleepers("t", n, 1000);
    BT_TEST_WAIT_UNTIL(some, timers_left() == n, 30000);
    cr_assert(some, "all %d timers must be pending before the scheduler starts", n);
    pid_t sch = bt_stack_scheduler(&stack);
    BT_TEST_WAIT_UNTIL(some, timers_left() < n, 30000);
    cr_assert(some, "the scheduler never fired");
    bt_test_kill9(sch); /* mid-way: some claimed, some leased, some pending */
    sch = bt_stack_scheduler(&stack);
    json_t *res = wait_results(n, 60000);
    assert_slept_once("t", n, res);
    json_t *counts = json_object();
    bt_stack_read_all(&stack, "events", 20000, count_timers, counts);
    int dup = 0;
    const char *k;
    json_t *v;
    json_object_foreach(counts, k, v) dup += (int)json_integer_value(v) - 1;
    cr_log_info("timer events duplicated on Kafka after the kill: %d", dup);
    json_decref(counts);
    json_decref(res);
    bt_test_stop(w, BT_TEST_STOP_MS);
    bt_test_stop(sch, BT_TEST_STOP_MS);
}

Test(time, two_schedulers_fire_each_timer_once, .init = setup, .fini = teardown,
     .timeout = 120)
{
    const int n = 500;
    pid_t w = bt_stack_worker(&stack, "timing", NULL);
    pid_t s1 = bt_stack_scheduler(&stack), s2 = bt_stack_scheduler(&stack);

    start_sleepers("two", n, 300);
    json_t *res = wait_results(n, 60000);
    assert_slept_once("two", n, res);
    json_t *counts = json_object();
    bt_stack_read_all(&stack, "events", 20000, count_timers, counts);
    cr_assert_eq(json_object_size(counts), (size_t)n);
    const char *k;
    json_t *v;
    json_object_foreach(counts, k, v)
    {
        cr_assert_eq(json_integer_value(v), 1, "%s: its timer was sent %lld times", k,
                     (long long)json_integer_value(v));
    }
    json_decref(counts);
    json_decref(res);
    bt_test_stop(w, BT_TEST_STOP_MS);
    bt_test_stop(s1, BT_TEST_STOP_MS);
    bt_test_stop(s2, BT_TEST_STOP_MS);
}

/* How many shards scheduler pid holds (shard_lease.h: the owners' names end
 * in ":<pid>"); -1 when Redis does not answer. */
static int shards_held_by(pid_t pid)
{
    char kp[128], me[32];
    redisReply *a = bt_stack_redis(&stack, "HGETALL %s:shard-owners",
                                   bt_stack_shard_kp(&stack, 0, kp, sizeof(kp)));
    int n = 0;

    if (!a || a->type != REDIS_REPLY_ARRAY) {
        freeReplyObject(a);
        return -1;
    }
    snprintf(me, sizeof(me), ":%d", (int)pid);
    for (size_t i = 1; i < a->elements; i += 2) {
        size_t len = strlen(a->element[i]->str);
        n += len > strlen(me) && !strcmp(a->element[i]->str + len - strlen(me), me);
    }
    freeReplyObject(a);
    return n;
}

Test(time, schedulers_share_the_shards_and_take_over_those_of_one_that_died,
     .fini = teardown, .timeout = 120)
{
    enum { SHARDS = 8, N = 200 };
    bool ok;

    cr_assert_eq(bt_stack_start_sharded(&stack, NULL, SHARDS), 0);
    pid_t w = bt_stack_worker(&stack, "timing", NULL);
    pid_t s1 = bt_stack_scheduler(&stack), s2 = bt_stack_scheduler(&stack);
    BT_TEST_WAIT_UNTIL(
        ok, shards_held_by(s1) == SHARDS / 2 && shards_held_by(s2) == SHARDS / 2, 20000);
    cr_assert(ok, "each of two schedulers holds half the shards: %d and %d of %d",
              shards_held_by(s1), shards_held_by(s2), SHARDS);
    /* timers in every shard, half of them in the shards of one that dies */
    start_sleepers("share", N, 1500);
    bt_test_kill9(s1);
    BT_TEST_WAIT_UNTIL(ok, shards_held_by(s2) == SHARDS, 15000);
    cr_assert(ok, "the survivor holds %d of %d shards", shards_held_by(s2), SHARDS);
    json_t *res = wait_results(N, 60000);
    assert_slept_once("share", N, res);
    json_decref(res);
    /* a third one joins and takes half; the second, stopped, gives its half
     * back at once rather than when its lease would expire */
    pid_t s3 = bt_stack_scheduler(&stack);
    BT_TEST_WAIT_UNTIL(ok, shards_held_by(s3) == SHARDS / 2, 20000);
    cr_assert(ok, "the newcomer holds %d of %d shards", shards_held_by(s3), SHARDS);
    cr_assert_eq(bt_test_stop(s2, BT_TEST_STOP_MS), 0);
    cr_assert_eq(shards_held_by(s2), 0, "a stopped scheduler still holds shards");
    BT_TEST_WAIT_UNTIL(ok, shards_held_by(s3) == SHARDS, 15000);
    cr_assert(ok, "the last one holds %d of %d shards", shards_held_by(s3), SHARDS);
    bt_test_stop(w, BT_TEST_STOP_MS);
    bt_test_stop(s3, BT_TEST_STOP_MS);
}

Test(time, a_workflow_past_its_execution_timeout_fails, .init = setup, .fini = teardown,
     .timeout = 60)
{
    const char *start =
        "{\"v\":1,\"type\":\"start\",\"id\":\"to-1\",\"workflow\":\"wait_review\","
        "\"input\":{\"ms\":60000},\"execution_timeout_ms\":300}";
    pid_t w = bt_stack_worker(&stack, "timing", NULL), sch = bt_stack_scheduler(&stack);

    cr_assert_eq(bt_stack_produce(&stack, "events", "to-1", start, strlen(start)), 0);
    json_t *res = wait_results(1, 30000);
    json_t *r = json_object_get(res, "to-1");
    cr_assert_str_eq(json_string_value(json_object_get(r, "status")), "failed");
    cr_assert_str_eq(
        json_string_value(json_object_get(json_object_get(r, "error"), "type")),
        "WorkflowTimeout");
    json_decref(res);
    bt_test_stop(w, BT_TEST_STOP_MS);
    bt_test_stop(sch, BT_TEST_STOP_MS);
}

/* The scheduler's "late_ms_max=" at its stop (-1 when not found in the log). */
static long late_ms_max(void)
{
    char line[1024];
    long late = -1;
    FILE *f = fopen(stack.log, "r");
    const char *p;

    while (f && fgets(line, sizeof(line), f))
        if (strstr(line, "prog=scheduler") && (p = strstr(line, "late_ms_max=")))
            late = strtol(p + strlen("late_ms_max="), NULL, 10);
    if (f)
        fclose(f);
    return late;
}

/* An idle scheduler sleeps until the earliest timer it knows of, up to 1 s
 * (scheduler/wake.h); a timer committed meanwhile that is due sooner must
 * wake it (commit.lua publishes on <kp>:wake), not wait for that wake-up.
 * Three 300 ms sleeps one after the other, each started with nothing else
 * pending: without the wake-up each would be up to 700 ms late. */
Test(time, an_idle_scheduler_wakes_for_a_timer_due_before_its_wake_up, .init = setup,
     .fini = teardown, .timeout = 60)
{
    pid_t w = bt_stack_worker(&stack, "timing", NULL), sch = bt_stack_scheduler(&stack);
    long late;

    for (int i = 0; i < 3; i++) {
        char id[32];
        bt_test_sleep_ms(1200); /* the scheduler is asleep for up to 1 s now */
        snprintf(id, sizeof(id), "idle-%d", i);
        cr_assert_eq(
            bt_stack_start_wf(&stack, "sleeper", id, json_pack("{s:i}", "ms", 300)), 0);
        json_decref(wait_results(i + 1, 20000));
    }
    cr_assert_eq(bt_test_stop(sch, BT_TEST_STOP_MS), 0);
    late = late_ms_max();
    cr_assert(
        late >= 0 && late < 150,
        "a timer fired %ld ms late: the scheduler slept through its wake-up (see %s)",
        late, stack.log);
    bt_test_stop(w, BT_TEST_STOP_MS);
}

/* A backlog of slow steps on one worker: 100 fan-outs of naps up to 300 ms
 * (about 11 s of work for its 4 threads) with 2 s start-to-close timeouts.
 * A task's timeout starts when the worker takes it, and the worker takes no
 * more than about a second of work ahead of its threads (workers/pace.h):
 * the rest waits in Kafka, where the wait for a worker does not count. So
 * no step times out for waiting: each is dispatched once. (Before, 140 of
 * the 300 steps timed out while they waited and ran again.) */
Test(time, a_backlog_of_slow_steps_runs_each_step_once_within_its_timeout, .init = setup,
     .fini = teardown, .timeout = 150)
{
    const char *const args[] = {"--activity-timeout-ms", "2000", NULL};
    enum { N = 100 };
    pid_t w = bt_stack_worker(&stack, "flows", args), sch = bt_stack_scheduler(&stack);
    size_t again = 0;
    char id[64];
    json_t *res;

    cr_assert_gt(w, 0);
    cr_assert_gt(sch, 0);
    for (int i = 0; i < N; i++) {
        snprintf(id, sizeof(id), "slow-%d", i);
        cr_assert_eq(
            bt_stack_start_wf(&stack, "fanout3", id, json_pack("{s:i}", "max_ms", 300)),
            0);
    }
    res = wait_results(N, 120000);
    json_decref(res);
    for (int i = 0; i < N; i++) {
        snprintf(id, sizeof(id), "slow-%d", i);
        json_t *scheduled = history(id, "activity_scheduled");
        if (json_array_size(scheduled) != 3 && again++ < 3) {
            /* what happened to it, for whoever reads a failure */
            json_t *fired = history(id, NULL);
            char *d = json_dumps(fired, JSON_COMPACT);
            cr_log_warn("%s: %zu dispatches, history: %s", id, json_array_size(scheduled),
                        d);
            free(d);
            json_decref(fired);
        }
        json_decref(scheduled);
    }
    cr_assert_eq(again, 0, "%zu of %d instances dispatched a step again", again, N);
    cr_assert_eq(bt_test_stop(w, BT_TEST_STOP_MS), 0);
    cr_assert_eq(bt_test_stop(sch, BT_TEST_STOP_MS), 0);
}
