/* One run, in phases: the stack and the processes; a warm-up instance (the
 * workers have joined their groups once it completes); the load with the
 * faults for opts.duration; the drain, which waits on conditions with
 * deadlines (every result in, the outbox index empty so that no result can
 * still come, the topics read to their ends); the counting; the teardown.
 * The driver's main thread ticks: faults, processes, results read so far. */
#include <stdio.h>
#include <hiredis/hiredis.h>

#include "chaos.h"

#define CHAOS_WARMUP_MS    60000 /* the workers' first rebalances and metadata */
#define CHAOS_SETTLED_MS   6000  /* no assignment this long: the groups are stable */
#define CHAOS_PROGRESS_MS  10000
#define CHAOS_SETTLE_MS    60000 /* the sweep's grace and a round or two */
#define CHAOS_READ_END_MS  30000
#define CHAOS_TICK_POLL_MS 50

volatile sig_atomic_t chaos_interrupted;

static void progress(struct chaos_run *r, int64_t now)
{
    if (!r->t0 || now < r->next_progress)
        return;
    r->next_progress = now + CHAOS_PROGRESS_MS;
    fprintf(stderr,
            "%s: %3lld s: started %d/%d, results %d, workers up %d/%d, schedulers up "
            "%d/%d, redis %s\n",
            r->name, (long long)(now - r->t0) / 1000, atomic_load(&r->produced),
            r->opts->instances, r->distinct, chaos_procs_up(r, CHAOS_WORKER),
            r->opts->workers, chaos_procs_up(r, CHAOS_SCHEDULER), r->opts->schedulers,
            r->redis_up ? "up" : "down");
}

/* Ticks until done(r) holds (NULL: never) or deadline passes; returns
 * whether it held. */
static bool run_until(struct chaos_run *r, struct chaos_reader *rd, int64_t deadline,
                      bool (*done)(struct chaos_run *r))
{
    int64_t now;

    while (!chaos_interrupted) {
        if (done && done(r))
            return true;
        if ((now = bt_test_now_ms()) >= deadline)
            return false;
        chaos_faults_tick(r, now);
        chaos_procs_tick(r, now);
        chaos_load_poll(r, 0);
        chaos_count_results(r, rd, CHAOS_TICK_POLL_MS);
        progress(r, now);
    }
    return false;
}

/* Ready when the warm-up instance has its result, every worker has had its
 * partitions of both roles assigned and no assignment came for a while: the
 * mock cluster completes a rebalance only seconds after a member joins, and
 * workers that join one by one cause several. */
static bool settled(struct chaos_run *r)
{
    int64_t now = bt_test_now_ms();
    size_t n;

    if (!r->warmed_up)
        return false;
    /* both roles: msg="partitions assigned" and msg="task partitions assigned" */
    n = bt_test_count_lines_with(r->log, "partitions assigned\" count=");
    if (n != r->assigned_lines) {
        r->assigned_lines = n;
        r->assigned_at = now;
    }
    return n >= 2 * (size_t)r->opts->workers && now - r->assigned_at >= CHAOS_SETTLED_MS;
}

static bool all_results(struct chaos_run *r)
{
    return atomic_load(&r->load_done) && r->distinct >= r->opts->instances;
}

static bool outbox_empty(struct chaos_run *r)
{
    redisReply *reply = chaos_stack_redis(r, "ZCARD %s:outbox", r->prefix);
    bool empty = reply && reply->type == REDIS_REPLY_INTEGER && reply->integer == 0;

    freeReplyObject(reply);
    return empty;
}

static int warm_up(struct chaos_run *r, struct chaos_reader *rd)
{
    if (chaos_load_one(r, CHAOS_WARMUP_ID) ||
        !run_until(r, rd, bt_test_now_ms() + CHAOS_WARMUP_MS, settled)) {
        fprintf(stderr,
                "%s: the workers did not settle within %d s (warm-up result: %s, "
                "partition assignments: %zu of %d workers x 2 roles); see %s\n",
                r->name, CHAOS_WARMUP_MS / 1000, r->warmed_up ? "in" : "none",
                r->assigned_lines, r->opts->workers, r->log);
        return -1;
    }
    return 0;
}

/* The load, and the faults when the run has them. A run without faults ends
 * as soon as every result is in: it is only there to compare. */
static int chaos_phase(struct chaos_run *r, struct chaos_reader *rd)
{
    r->t0 = bt_test_now_ms();
    r->t0_wall = chaos_wall_ms();
    r->chaos_end = r->t0 + r->opts->duration_ms;
    chaos_note(r, "load: instances=%d rate=%d/s faults=%s for_ms=%lld",
               r->opts->instances, r->opts->rate, r->faults ? "on" : "off",
               (long long)r->opts->duration_ms);
    if (chaos_load_start(r))
        return -1;
    run_until(r, rd, r->chaos_end, r->faults ? NULL : all_results);
    chaos_faults_end(r, bt_test_now_ms());
    return 0;
}

static void drain_phase(struct chaos_run *r, struct chaos_reader *rd)
{
    bool all = run_until(r, rd, bt_test_now_ms() + r->opts->drain_ms, all_results);
    int64_t deadline;

    chaos_note(r, "drain: results=%d of %d%s", r->distinct, r->opts->instances,
               all ? "" : " (deadline passed)");
    /* the scheduler's sweep re-sends what an outbox still holds after its
     * grace and then drops the emptied outboxes: once the index is empty, no
     * result can come any more */
    if (!run_until(r, rd, bt_test_now_ms() + (all ? CHAOS_SETTLE_MS : 5000),
                   outbox_empty))
        chaos_note(r, "drain: the outbox index is not empty");
    deadline = bt_test_now_ms() + CHAOS_READ_END_MS;
    while (!chaos_reader_at_end(rd) && bt_test_now_ms() < deadline && !chaos_interrupted)
        chaos_count_results(r, rd, 100);
    r->end_ms = chaos_wall_ms() - r->t0_wall;
    chaos_load_join(r);
    chaos_load_poll(r, 10000);
    chaos_count_dead_letters(r, CHAOS_READ_END_MS);
}

int chaos_run(struct chaos_run *r, const char *dir)
{
    struct chaos_reader rd = {0};
    int ret = -1;

    r->log_fd = -1;
    r->rolling_next = -1;
    r->redis_outage = r->broker_outage = -1;
    r->seed = r->opts->seed;
    if (chaos_count_init(r) || chaos_stack_start(r, dir) || chaos_procs_start(r) ||
        chaos_load_init(r) || chaos_reader_open(&rd, r, "results") || warm_up(r, &rd) ||
        chaos_phase(r, &rd))
        goto out;
    drain_phase(r, &rd);
    chaos_count_crash_code(r); /* redis is still up */
    ret = chaos_interrupted ? -1 : 0;
out:
    chaos_reader_close(&rd);
    chaos_load_release(r);
    chaos_procs_stop(r);
    if (ret == 0 && chaos_count_executions(r))
        ret = -1;
    chaos_stack_stop(r);
    return ret;
}

void chaos_run_release(struct chaos_run *r)
{
    chaos_count_release(r);
}
