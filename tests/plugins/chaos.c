/* The chaos suite's workload (chaos/, `make chaos`): a workflow of three
 * steps in sequence whose activity sleeps a random 5-50 ms, with a durable
 * sleep of the input's sleep_ms (a timer) after the first when it is set. Each execution
 * of the activity writes one line, as it begins, to the process's stderr, which the chaos
 * driver appends to its log and counts afterwards (ts: wall clock, ms since the epoch,
 * for the driver's timeline):
 *
 *   chaos-exec id=<workflow id> step=<1..3> seq=<seq> attempt=<n> pid=<pid> ts=<ms>
 *
 * The activity talks to nothing else: what it did is only in that line, so
 * counting lines counts executions, re-executions after a crash included.
 * An input with "crash" (the driver's --crash-code) raises SIGSEGV in the
 * workflow code. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "baton.h"

#define CHAOS_STEPS 3

/* A seed per thread, from the clock and the thread's stack address: the
 * activity pool's threads must not sleep in lockstep. */
static unsigned thread_seed(void)
{
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    return ((unsigned)now.tv_nsec ^ (unsigned)(uintptr_t)&now ^ (unsigned)getpid()) | 1;
}

static void record(bt_act *act, int step)
{
    struct timespec now;
    char line[512];
    int n;

    clock_gettime(CLOCK_REALTIME, &now);
    n = snprintf(line, sizeof(line),
                 "chaos-exec id=%s step=%d seq=%lld attempt=%d pid=%d ts=%lld\n",
                 bt_act_workflow_id(act), step, (long long)bt_act_seq(act),
                 bt_act_attempt(act), (int)getpid(),
                 (long long)now.tv_sec * 1000 + now.tv_nsec / 1000000);
    /* one write(2) per line: the log is shared by every process (O_APPEND) */
    if (n > 0 && (size_t)n < sizeof(line) && write(STDERR_FILENO, line, (size_t)n) < 0)
        return;
}

/* {"step": k} -> {"step": k, "slept_ms": ms} */
static int chaos_step(bt_act *act, const json_t *input, json_t **result)
{
    static _Thread_local unsigned seed;
    int step = (int)json_integer_value(json_object_get(input, "step"));
    long ms;

    if (!seed)
        seed = thread_seed();
    /* recorded as it begins: a run cut short by a kill still ran */
    record(act, step);
    ms = 5 + rand_r(&seed) % 46;
    nanosleep(&(struct timespec){0, ms * 1000000L}, NULL);
    *result = json_pack("{s:i, s:i}", "step", step, "slept_ms", (int)ms);
    return 0;
}

static bt_poll chaos3(bt_wf *wf, const json_t *input)
{
    json_int_t sleep_ms = json_integer_value(json_object_get(input, "sleep_ms"));

    /* the driver's --crash-code: a bug this one input meets */
    if (json_object_get(input, "crash"))
        raise(SIGSEGV);
    for (int step = 1; step <= CHAOS_STEPS; step++) {
        BT_RUN(wf, NULL, "chaos_step", json_pack("{s:i}", "step", step), NULL);
        if (step == 1 && sleep_ms > 0)
            BT_SLEEP(wf, sleep_ms);
    }
    return bt_complete(wf, json_pack("{s:i}", "steps", CHAOS_STEPS));
}

int baton_register(bt_registry *r);
int baton_register(bt_registry *r)
{
    /* the worker's defaults (start-to-close, retry policy), as a user gets them */
    return bt_register_workflow(r, "chaos3", chaos3) ||
                   bt_register_activity(r, "chaos_step", chaos_step, NULL)
               ? -1
               : 0;
}
