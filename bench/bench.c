/* The workflows `baton bench` drives (build/plugins/bench.so). Every step is a
 * no-op that returns its input with v + 1, like the peers' harness
 * (../shared/peers): the figures measure the engine, not the activities.
 *   chain   input.k steps in sequence: result v = input v + k
 *   retry   3 steps; the second fails twice, then succeeds (fixed 100 ms backoff)
 *   fanout  10 steps in parallel, then fan-in: result v = input v + 1, n = 10
 *   limited one step under the shared rate limit "bench_limited" (100/s, burst
 *           10, one bucket in Redis for every worker process); the result
 *           says when the step started (t_us) and in which process (pid), so
 *           the driver measures the rate the steps really ran at
 * Inputs are passed on by reference (json_incref), not copied: a workflow is
 * replayed from its first line on every event, so a copy per step would cost
 * the workflow code O(K) per event, which is not what the bench measures. */
#include <stdint.h>
#include <time.h>
#include <unistd.h>

#include "baton.h"

#define FANOUT 10

/* the limited workload's bucket; the driver (bench/driver/) reads its live values in
 * Redis */
#define LIMIT_KEY   "bench_limited"
#define LIMIT_RATE  100.0
#define LIMIT_BURST 10

/* {"v": n, ...} -> {"v": n + 1, ...} */
static int inc(bt_act *act, const json_t *input, json_t **result)
{
    if (!json_is_object(input))
        return bt_act_fail(act, "InvalidInput", false, "inc needs an object");
    *result = json_deep_copy(input);
    json_object_set_new(
        *result, "v", json_integer(json_integer_value(json_object_get(input, "v")) + 1));
    return 0;
}

/* inc that fails its first two attempts, retryably */
static int inc_flaky(bt_act *act, const json_t *input, json_t **result)
{
    if (bt_act_attempt(act) <= 2)
        return bt_act_fail(act, "Flaky", true, "attempt %d fails on purpose",
                           bt_act_attempt(act));
    return inc(act, input, result);
}

/* inc that says when and where it ran: the wall clock (µs; one clock for
 * every process of the machine) and the worker's pid */
static int inc_limited(bt_act *act, const json_t *input, json_t **result)
{
    struct timespec ts;
    int ret;

    clock_gettime(CLOCK_REALTIME, &ts);
    if ((ret = inc(act, input, result)))
        return ret;
    json_object_set_new(
        *result, "t_us",
        json_integer((json_int_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000));
    json_object_set_new(*result, "pid", json_integer((json_int_t)getpid()));
    return 0;
}

/* A new reference to a borrowed value, for an SDK call that steals it. */
static json_t *ref(const json_t *v)
{
    return json_incref((json_t *)(uintptr_t)v);
}

static bt_poll chain(bt_wf *wf, const json_t *input)
{
    json_int_t k = json_integer_value(json_object_get(input, "k"));
    const json_t *cur = input;

    for (json_int_t i = 0; i < k; i++)
        BT_RUN(wf, &cur, "inc", ref(cur), NULL);
    return bt_complete(wf, ref(cur));
}

static bt_poll retry(bt_wf *wf, const json_t *input)
{
    static const struct bt_step_opts fixed = {
        .retry = {.max_attempts = 3, .initial_ms = 100, .coefficient = 1.0}};
    const json_t *a, *b, *c;

    BT_RUN(wf, &a, "inc", ref(input), NULL);
    BT_RUN(wf, &b, "inc_flaky", ref(a), &fixed);
    BT_RUN(wf, &c, "inc", ref(b), NULL);
    return bt_complete(wf, ref(c));
}

static bt_poll fanout(bt_wf *wf, const json_t *input)
{
    bt_future *fs[FANOUT];
    const json_t *first;

    for (int i = 0; i < FANOUT; i++)
        fs[i] = bt_start(wf, "inc", ref(input), NULL);
    BT_AWAIT_ALL(wf, fs, FANOUT);
    bt_await(wf, fs[0], &first, NULL);
    return bt_complete(wf,
                       json_pack("{s:O, s:O, s:i}", "wf", json_object_get(first, "wf"),
                                 "v", json_object_get(first, "v"), "n", FANOUT));
}

static bt_poll limited(bt_wf *wf, const json_t *input)
{
    const json_t *out;

    BT_RUN(wf, &out, "inc_limited", ref(input), NULL);
    return bt_complete(wf, ref(out));
}

int baton_register(bt_registry *r);
int baton_register(bt_registry *r)
{
    static const struct bt_step_opts shared = {
        .rate_key = LIMIT_KEY, .rate = LIMIT_RATE, .burst = LIMIT_BURST};

    if (bt_register_workflow(r, "bench_chain", chain) ||
        bt_register_workflow(r, "bench_retry", retry) ||
        bt_register_workflow(r, "bench_fanout", fanout) ||
        bt_register_workflow(r, "bench_limited", limited) ||
        bt_register_activity(r, "inc_limited", inc_limited, &shared) ||
        bt_register_activity(r, "inc", inc, NULL) ||
        bt_register_activity(r, "inc_flaky", inc_flaky, NULL))
        return -1;
    return 0;
}
