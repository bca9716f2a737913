/* Rate limits end to end: 3 worker processes share one token bucket in
 * Redis, an operator raises the rate live with HSET, and a step's "throttled"
 * report holds its key for every worker without counting an attempt. Real
 * redis-server, mock Kafka cluster, baton-worker and baton-scheduler; the
 * activities (tests/plugins/limited.c) append their start times to a file.
 * The shared-limit run lasts about 22 s: 75 steps at 5/s, then 75 at 10/s. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
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

static void nap(void)
{
    struct timespec ts = {0, 20 * 1000000L};
    nanosleep(&ts, NULL);
}

static int cmp_ms(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* The start times in path, sorted; *n their count. Caller frees. */
static int64_t *starts(const char *path, size_t *n)
{
    FILE *f = fopen(path, "r");
    int64_t *v = NULL;
    size_t cap = 0;
    long long ms;

    *n = 0;
    while (f && fscanf(f, "%lld", &ms) == 1) {
        if (*n == cap) {
            cap = cap ? cap * 2 : 64;
            v = realloc(v, cap * sizeof(*v));
            cr_assert(v);
        }
        v[(*n)++] = ms;
    }
    if (f)
        fclose(f);
    if (*n)
        qsort(v, *n, sizeof(*v), cmp_ms);
    return v;
}

static size_t count_lines(const char *path)
{
    size_t n;
    free(starts(path, &n));
    return n;
}

static size_t in_window(const int64_t *v, size_t n, int64_t from, int64_t to)
{
    size_t c = 0;
    for (size_t i = 0; i < n; i++)
        c += v[i] >= from && v[i] < to;
    return c;
}

static json_t *wait_results(int want, int wait_ms)
{
    struct bt_stack_results r;

    bt_stack_results(&stack, &r, want, wait_ms);
    cr_assert_eq(r.distinct, want, "results: %d of %d", r.distinct, want);
    return r.by_id;
}

/* The waiters of every worker on the key "carrier", as `baton ratelimit get
 * --json` sums them. */
static json_int_t waiters(void)
{
    char out[4096];
    json_t *root;
    json_int_t n;

    cr_assert_eq(BT_STACK_BATON(&stack, out, "ratelimit", "get", "carrier", "--json"), 0,
                 "%s", out);
    root = json_loads(out, 0, NULL);
    cr_assert(json_is_integer(json_object_get(root, "waiters")), "%s", out);
    n = json_integer_value(json_object_get(root, "waiters"));
    json_decref(root);
    return n;
}

Test(ratelimit, three_workers_share_a_limit_that_changes_live, .init = setup,
     .fini = teardown, .timeout = 150)
{
    const char *args[] = {"--concurrency", "4", NULL};
    char path[256], id[64];
    enum { N = 150, BEFORE = 75 };
    int64_t *v, raised, deadline;
    size_t n, peak = 0, sharing = 0;

    snprintf(path, sizeof(path), "/tmp/%s-starts", stack.prefix);
    unlink(path);
    for (int i = 0; i < 3; i++)
        cr_assert_gt(bt_stack_worker(&stack, "limited", args), 0);
    /* measure once all three are in the group: a later join rebalances the
     * task consumers, which stalls all of them for seconds on the embedded
     * cluster */
    deadline = bt_clock_now_ms() + 40000;
    while (bt_test_count_lines_with(stack.log, "task partitions assigned") < 3 &&
           bt_clock_now_ms() < deadline)
        nap();
    cr_assert_geq(bt_test_count_lines_with(stack.log, "task partitions assigned"), 3,
                  "the three workers never joined their group");
    for (int i = 0; i < N; i++) {
        snprintf(id, sizeof(id), "rl-%d", i);
        /* no key in the input: limited_call's registered key "carrier", 5/s burst 5 */
        cr_assert_eq(
            bt_stack_start_wf(&stack, "one_step", id, json_pack("{s:s}", "file", path)),
            0);
    }
    deadline = bt_clock_now_ms() + 40000;
    while (count_lines(path) < BEFORE && bt_clock_now_ms() < deadline) {
        /* each worker shares its waiters for operators */
        redisReply *reply = bt_stack_redis(&stack, "HLEN %s:rlw:carrier", stack.prefix);
        if (reply && reply->type == REDIS_REPLY_INTEGER &&
            (size_t)reply->integer > sharing)
            sharing = (size_t)reply->integer;
        freeReplyObject(reply);
        nap();
    }
    cr_assert_geq(count_lines(path), BEFORE, "%d steps must have started", BEFORE);
    cr_assert_geq(sharing, 2, "waiters shared by %zu workers at most", sharing);
    cr_assert_gt(waiters(), 0, "half of the steps still wait for their token");
    raised = bt_clock_now_ms();
    freeReplyObject(
        bt_stack_redis(&stack, "HSET %s:rl:carrier rate 10 burst 10", stack.prefix));
    json_decref(wait_results(N, 60000));
    /* the last beat of each worker with waiters takes them back */
    deadline = bt_clock_now_ms() + 10000;
    while (waiters() != 0 && bt_clock_now_ms() < deadline)
        nap();
    cr_assert_eq(waiters(), 0, "every step ran: nobody waits");

    v = starts(path, &n);
    cr_assert_eq(n, N, "one start per step (none retried): %zu", n);
    for (size_t i = 0; i < n; i++) {
        size_t c = in_window(v, n, v[i], v[i] + 1000);
        if (v[i] + 1000 <= raised && c > peak)
            peak = c;
        cr_assert_leq(c, 20, "a second from %lld holds %zu starts (10/s + burst 10)",
                      (long long)v[i], c);
    }
    cr_assert_leq(peak, 10, "before the change, a second held %zu starts (5/s + 5)",
                  peak);
    cr_assert_geq(in_window(v, n, raised - 2000, raised), 8,
                  "the limit was being used before the change");
    /* 5/s could never give more than 5 x 2 + 5 in two seconds: the best two
     * seconds starting within 2 s of the change (a consumer-group rebalance
     * on a slow machine may stall every worker for a moment) must beat that */
    size_t after = 0;
    for (int64_t from = raised; from <= raised + 2000; from += 50) {
        size_t c = in_window(v, n, from, from + 2000);
        if (c > after)
            after = c;
    }
    cr_log_info("peak before the change %zu/s, best 2 s after it %zu, run %lld ms", peak,
                after, (long long)(v[n - 1] - v[0]));
    cr_assert_geq(after, 16, "after raising to 10/s, 2 s held only %zu starts", after);
    free(v);
    unlink(path);
}

Test(ratelimit, a_throttle_holds_the_key_and_does_not_count_an_attempt, .init = setup,
     .fini = teardown, .timeout = 90)
{
    char first[256], others[256], marker[256], id[64];
    int64_t deadline, held = 0, thrown;
    struct stat st;
    redisReply *reply;
    json_t *res;
    int64_t *v;
    size_t n;

    snprintf(first, sizeof(first), "/tmp/%s-first", stack.prefix);
    snprintf(others, sizeof(others), "/tmp/%s-others", stack.prefix);
    snprintf(marker, sizeof(marker), "/tmp/%s-marker", stack.prefix);
    unlink(first);
    unlink(others);
    unlink(marker);
    cr_assert_gt(bt_stack_worker(&stack, "limited", NULL), 0);
    cr_assert_gt(bt_stack_worker(&stack, "limited", NULL), 0);
    cr_assert_gt(bt_stack_scheduler(&stack), 0);
    cr_assert_eq(bt_stack_start_wf(&stack, "one_step", "th-1",
                                   json_pack("{s:s, s:s, s:s, s:i, s:s}", "activity",
                                             "throttle_once", "key", "api", "file", first,
                                             "throttle_ms", 2000, "marker", marker)),
                 0);
    /* the throttle reached Redis: the key's bucket is held */
    deadline = bt_clock_now_ms() + 30000;
    while (!held && bt_clock_now_ms() < deadline) {
        reply = bt_stack_redis(&stack, "HGET %s:rl:api until", stack.prefix);
        if (reply && reply->type == REDIS_REPLY_STRING)
            held = atoll(reply->str);
        freeReplyObject(reply);
        if (!held)
            nap();
    }
    cr_assert_gt(held, 0, "the throttle must set the bucket's until");
    cr_assert_eq(stat(marker, &st), 0);
    thrown = (int64_t)st.st_mtim.tv_sec * 1000 + st.st_mtim.tv_nsec / 1000000;
    cr_assert_geq(held, thrown + 1900, "held for 2 s from the throttle");
    {
        char out[4096];
        cr_assert_eq(BT_STACK_BATON(&stack, out, "ratelimit", "get", "api"), 0, "%s",
                     out);
        cr_assert(strstr(out, " throttles=1 ") && !strstr(out, "throttled_at=-"),
                  "the throttle counted and stamped: %s", out);
    }
    cr_log_info("throttled at %lld, held until %lld", (long long)thrown, (long long)held);
    for (int i = 0; i < 5; i++) {
        snprintf(id, sizeof(id), "th-other-%d", i);
        cr_assert_eq(
            bt_stack_start_wf(&stack, "one_step", id,
                              json_pack("{s:s, s:s}", "file", others, "key", "api")),
            0);
    }
    res = wait_results(6, 30000);

    v = starts(others, &n);
    cr_assert_eq(n, 5);
    for (size_t i = 0; i < n; i++)
        cr_assert_geq(v[i], held, "a step under the key started %lld ms before %lld",
                      (long long)(held - v[i]), (long long)held);
    cr_assert_lt(v[n - 1], held + 2000, "the rate resumes after the hold");
    free(v);
    v = starts(first, &n);
    cr_assert_eq(n, 1, "the throttled attempt records nothing; its retry once");
    cr_assert_geq(v[0], held, "the retry waited for the hold");
    free(v);

    /* bt_act_attempt() counts dispatches (the retry is attempt 2), while the
     * retry's record counts the attempts against max_attempts: the throttle
     * is not one of them */
    json_t *out = json_object_get(json_object_get(res, "th-1"), "result");
    cr_assert_eq(json_integer_value(json_object_get(out, "attempt")), 2);
    json_decref(res);
    json_t *retries = bt_stack_history(&stack, "th-1", NULL, "retry_scheduled");
    cr_assert_eq(json_array_size(retries), 1, "one step was throttled");
    cr_assert_eq(
        json_integer_value(json_object_get(json_array_get(retries, 0), "counted")), 0,
        "the throttle did not count as an attempt");
    json_decref(retries);
    unlink(first);
    unlink(others);
    unlink(marker);
}

/* 40 steps under a key of 5/s wait up to 8 s for their token, 4 times their
 * start-to-close timeout of 2 s: the wait for a token is the wait for a
 * worker, which start-to-close does not count (it starts at the take), so
 * every step runs once, as attempt 1, with the scheduler firing timers. */
Test(ratelimit, a_wait_for_tokens_longer_than_the_timeout_retries_nothing, .init = setup,
     .fini = teardown, .timeout = 120)
{
    const char *const args[] = {"--activity-timeout-ms", "2000", NULL};
    enum { N = 40 };
    char path[256], id[64];
    json_t *res, *v;
    const char *key;
    size_t n;

    snprintf(path, sizeof(path), "/tmp/%s-starts", stack.prefix);
    unlink(path);
    cr_assert_gt(bt_stack_worker(&stack, "limited", args), 0);
    cr_assert_gt(bt_stack_scheduler(&stack), 0);
    for (int i = 0; i < N; i++) {
        snprintf(id, sizeof(id), "backlog-%d", i);
        cr_assert_eq(
            bt_stack_start_wf(&stack, "one_step", id, json_pack("{s:s}", "file", path)),
            0);
    }
    res = wait_results(N, 60000);
    json_object_foreach(res, key, v)
    {
        json_t *out = json_object_get(v, "result");
        cr_assert_str_eq(
            json_string_value(json_object_get(v, "status")), "completed", "%s: %s", key,
            json_string_value(json_object_get(json_object_get(v, "error"), "type")));
        cr_assert_eq(json_integer_value(json_object_get(out, "attempt")), 1,
                     "%s ran as attempt %lld", key,
                     (long long)json_integer_value(json_object_get(out, "attempt")));
    }
    json_decref(res);
    free(starts(path, &n));
    cr_assert_eq(n, N, "one start per step: %zu", n);
    unlink(path);
}

#define BATON(out, ...) BT_STACK_BATON(&stack, (out), __VA_ARGS__)

Test(ratelimit, the_cli_sets_gets_and_lists_buckets, .init = setup, .fini = teardown,
     .timeout = 60)
{
    char out[4096];
    redisReply *reply;

    cr_assert_eq(BATON(out, "ratelimit", "get", "carrier:att"), 1, "%s", out);
    cr_assert_eq(BATON(out, "ratelimit", "set", "carrier:att", "2/s", "--burst", "3"), 0,
                 "%s", out);
    cr_assert(strstr(out, "carrier:att rate=2/s burst=3"), "%s", out);
    reply = bt_stack_redis(&stack, "HMGET %s:rl:carrier:att rate burst", stack.prefix);
    cr_assert(reply && reply->elements == 2 && reply->element[0]->str &&
              reply->element[1]->str);
    cr_assert_str_eq(reply->element[0]->str, "2");
    cr_assert_str_eq(reply->element[1]->str, "3");
    freeReplyObject(reply);
    cr_assert_eq(BATON(out, "ratelimit", "set", "carrier:ups", "0.5"), 0, "%s", out);
    cr_assert_eq(BATON(out, "ratelimit", "get", "carrier:ups"), 0, "%s", out);
    cr_assert(strstr(out, "carrier:ups rate=0.5/s"), "%s", out);
    cr_assert_eq(BATON(out, "ratelimit", "list"), 0, "%s", out);
    cr_assert(strstr(out, "carrier:att rate=2/s") &&
                  strstr(out, "carrier:ups rate=0.5/s"),
              "%s", out);
    cr_assert_eq(BATON(out, "ratelimit", "set", "carrier:att", "fast"), 2, "%s", out);
}

/* get shows the tokens a take would find now, refilled since the last take
 * up to the burst, not the leftover of that take. */
Test(ratelimit, get_shows_the_tokens_refilled_until_now, .init = setup, .fini = teardown,
     .timeout = 60)
{
    char out[4096];
    redisReply *reply;

    /* emptied by a take long ago: full again */
    freeReplyObject(bt_stack_redis(
        &stack, "HSET %s:rl:carrier:dhl rate 10 burst 5 tokens 0 ts 1", stack.prefix));
    cr_assert_eq(BATON(out, "ratelimit", "get", "carrier:dhl"), 0, "%s", out);
    cr_assert(strstr(out, "carrier:dhl rate=10/s burst=5 tokens=5 "), "%s", out);
    /* a take stamped a minute ahead of Redis's clock: nothing refilled yet */
    reply = bt_stack_redis(&stack, "TIME");
    cr_assert(reply && reply->type == REDIS_REPLY_ARRAY && reply->elements == 2);
    long long ahead = atoll(reply->element[0]->str) * 1000 + 60000;
    freeReplyObject(reply);
    freeReplyObject(bt_stack_redis(&stack, "HSET %s:rl:carrier:dhl tokens 0.5 ts %lld",
                                   stack.prefix, ahead));
    cr_assert_eq(BATON(out, "ratelimit", "get", "carrier:dhl"), 0, "%s", out);
    cr_assert(strstr(out, "carrier:dhl rate=10/s burst=5 tokens=0.5 "), "%s", out);
}
