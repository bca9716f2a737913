/* Concurrency limits end to end: a limit of 2 holds across 3 worker processes
 * of 4 activity threads each, and the lease of a worker killed with -9 while
 * its step runs frees its slot when the lease expires (not before), after
 * which the work completes (the killed step is retried after its
 * start-to-close timeout). Real redis-server, mock Kafka cluster, baton-worker
 * and baton-scheduler; the activities (tests/plugins/capped.c) append their
 * start and end times to a file. */
#define _GNU_SOURCE /* strptime, timegm */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

/* Wall-clock ms of the last "task partitions assigned" log line in
 * (after, before], or after when there is none. */
static int64_t last_assignment(int64_t after, int64_t before)
{
    FILE *f = fopen(stack.log, "r");
    char line[1024];
    int64_t last = after;

    cr_assert(f);
    while (fgets(line, sizeof(line), f)) {
        struct tm tm = {0};
        int ms = 0;
        const char *ts = strstr(line, "ts=");
        int64_t at;
        if (!ts || !strstr(line, "task partitions assigned") ||
            !strptime(ts + 3, "%Y-%m-%dT%H:%M:%S", &tm) ||
            sscanf(ts + 3 + 19, ".%3dZ", &ms) != 1)
            continue;
        at = (int64_t)timegm(&tm) * 1000 + ms;
        if (at > last && at <= before)
            last = at;
    }
    fclose(f);
    return last;
}

struct run {
    char id[64];
    int attempt, pid;
    int64_t start, end; /* end 0: never ended (its worker was killed) */
};

/* The runs recorded in path, in start order of the file; *n their count.
 * Caller frees. */
static struct run *runs(const char *path, size_t *n)
{
    FILE *f = fopen(path, "r");
    struct run *v = NULL;
    size_t cap = 0;
    char what, id[64];
    long long ms;
    int pid, attempt;

    *n = 0;
    while (f && fscanf(f, " %c %lld %d %63s %d", &what, &ms, &pid, id, &attempt) == 5) {
        size_t i;
        for (i = 0; i < *n; i++)
            if (!strcmp(v[i].id, id) && v[i].attempt == attempt && v[i].pid == pid)
                break;
        if (i == *n) {
            if (*n == cap) {
                cap = cap ? cap * 2 : 64;
                v = realloc(v, cap * sizeof(*v));
                cr_assert(v);
            }
            memset(&v[i], 0, sizeof(v[i]));
            snprintf(v[i].id, sizeof(v[i].id), "%s", id);
            v[i].attempt = attempt;
            v[i].pid = pid;
            (*n)++;
        }
        if (what == 'S')
            v[i].start = ms;
        else
            v[i].end = ms;
    }
    if (f)
        fclose(f);
    return v;
}

static size_t count_starts(const char *path)
{
    size_t n;
    free(runs(path, &n));
    return n;
}

/* The most runs in progress at once; a run without an end lasts until
 * open_end. An end and a start in the same ms are counted end first: the
 * start had to wait for that slot. */
static int peak(const struct run *v, size_t n, int64_t open_end)
{
    int best = 0;

    for (size_t i = 0; i < n; i++) {
        int c = 0;
        for (size_t j = 0; j < n; j++) {
            int64_t end = v[j].end ? v[j].end : open_end;
            c += v[j].start <= v[i].start && end > v[i].start;
        }
        if (c > best)
            best = c;
    }
    return best;
}

static void join_three(const char *const *args, pid_t *pids)
{
    bool ok;

    for (int i = 0; i < 3; i++)
        cr_assert_gt(pids[i] = bt_stack_worker(&stack, "capped", args), 0);
    /* start once all three are in the group: a later join stalls every task
     * consumer for seconds on the embedded cluster */
    BT_TEST_WAIT_UNTIL(
        ok, bt_test_count_lines_with(stack.log, "task partitions assigned") >= 3, 40000);
    cr_assert(ok, "the three workers never joined their group");
}

static json_t *wait_results(int want, int wait_ms)
{
    struct bt_stack_results r;

    bt_stack_results(&stack, &r, want, wait_ms);
    cr_assert_eq(r.distinct, want, "results: %d of %d", r.distinct, want);
    return r.by_id;
}

static long long leases_held(void)
{
    redisReply *reply = bt_stack_redis(&stack, "ZCARD {%s:cc:cc}:holders", stack.prefix);
    long long n = reply && reply->type == REDIS_REPLY_INTEGER ? reply->integer : -1;

    freeReplyObject(reply);
    return n;
}

Test(concurrency, a_limit_of_two_holds_across_three_workers, .init = setup,
     .fini = teardown, .timeout = 120)
{
    const char *args[] = {"--concurrency", "4", NULL};
    char path[256], id[64];
    pid_t pids[3];
    enum { N = 16 };
    struct run *v;
    size_t n, pids_seen = 0;
    redisReply *reply;
    bool ok;

    snprintf(path, sizeof(path), "/tmp/%s-runs", stack.prefix);
    unlink(path);
    join_three(args, pids);
    for (int i = 0; i < N; i++) {
        snprintf(id, sizeof(id), "cc-%d", i);
        cr_assert_eq(bt_stack_start_wf(
                         &stack, "capped", id,
                         json_pack("{s:s, s:s, s:i}", "file", path, "id", id, "ms", 250)),
                     0);
    }
    json_decref(wait_results(N, 60000));

    v = runs(path, &n);
    cr_assert_eq(n, N, "one run per step: %zu", n);
    for (size_t i = 0; i < n; i++) {
        cr_assert_gt(v[i].end, 0, "%s never ended", v[i].id);
        for (size_t j = 0; j < i; j++)
            if (v[j].pid == v[i].pid)
                goto seen;
        pids_seen++;
    seen:;
    }
    cr_log_info("peak %d running, on %zu worker processes", peak(v, n, 0), pids_seen);
    cr_assert_leq(peak(v, n, 0), 2, "more than 2 steps ran at once");
    cr_assert_eq(peak(v, n, 0), 2, "the limit of 2 was never used in full");
    cr_assert_geq(pids_seen, 2, "the steps ran on one worker only");
    free(v);
    /* the registered default created the live limit, and every lease is back */
    reply = bt_stack_redis(&stack, "HGET %s:cc:cc limit", stack.prefix);
    cr_assert(reply && reply->type == REDIS_REPLY_STRING && !strcmp(reply->str, "2"));
    freeReplyObject(reply);
    /* a lease goes back just after its step's outcome left: wait for it */
    BT_TEST_WAIT_UNTIL(ok, leases_held() == 0, 2000);
    cr_assert(ok, "leases left behind: %lld", leases_held());
    unlink(path);
}

/* Whether every run recorded in path has ended, but those of pid dead. */
static bool all_ended(const char *path, pid_t dead)
{
    size_t n;
    struct run *v = runs(path, &n);
    bool done = true;

    for (size_t i = 0; i < n; i++)
        done &= v[i].end > 0 || v[i].pid == dead;
    free(v);
    return done;
}

static bool scheduled(const char *id)
{
    json_t *found = bt_stack_history(&stack, id, NULL, "activity_scheduled");
    bool yes = json_array_size(found) > 0;

    json_decref(found);
    return yes;
}

/* The pid of the worker holding the lease of instance id (the holder is
 * "<host>:<pid>|<n>|<id>|<seq>|<attempt>") and its expiry (Redis's clock,
 * ms); 0 when none holds it. */
static pid_t lease_of(const char *id, int64_t *expiry)
{
    redisReply *reply =
        bt_stack_redis(&stack, "ZRANGE {%s:cc:cc}:holders 0 -1 WITHSCORES", stack.prefix);
    char needle[100];
    pid_t pid = 0;

    snprintf(needle, sizeof(needle), "|%s|", id);
    for (size_t i = 0; reply && i + 1 < reply->elements; i += 2) {
        const char *m = reply->element[i]->str, *colon = strchr(m, ':');
        if (strstr(m, needle) && colon) {
            pid = atoi(colon + 1);
            *expiry = atoll(reply->element[i + 1]->str);
        }
    }
    freeReplyObject(reply);
    return pid;
}

Test(concurrency, a_killed_workers_lease_frees_its_slot_when_it_expires, .init = setup,
     .fini = teardown, .timeout = 150)
{
    /* 3 s: renewed every second, a busy CI machine does not lose it */
    const char *args[] = {"--concurrency", "4", "--concurrency-lease-ms", "3000", NULL};
    char path[256], id[64];
    pid_t pids[3], victim;
    int64_t killed, expiry = 0, first = 0, renewed;
    enum { SHORT = 8 };
    struct run *v;
    size_t n;
    json_t *res;
    bool ok, rerun = false;

    snprintf(path, sizeof(path), "/tmp/%s-runs", stack.prefix);
    unlink(path);
    join_three(args, pids);
    cr_assert_gt(bt_stack_scheduler(&stack), 0);
    /* two long steps take both slots; the first attempt of each runs 10 s */
    for (int i = 0; i < 2; i++) {
        snprintf(id, sizeof(id), "long-%d", i);
        cr_assert_eq(bt_stack_start_wf(&stack, "capped", id,
                                       json_pack("{s:s, s:s, s:i, s:i, s:i}", "file",
                                                 path, "id", id, "first_ms", 10000, "ms",
                                                 50, "timeout_ms", 12000)),
                     0);
    }
    BT_TEST_WAIT_UNTIL(ok, count_starts(path) == 2, 30000);
    cr_assert(ok, "the two long steps never started");
    victim = lease_of("long-0", &expiry);
    cr_assert_gt(victim, 0, "long-0 holds no lease");
    /* a renewal moves the expiry on: it runs every third of the lease */
    BT_TEST_WAIT_UNTIL(ok, (lease_of("long-0", &renewed), renewed > expiry), 3000);
    cr_assert(ok, "the lease of a running step is never renewed");
    for (int i = 0; i < SHORT; i++) {
        snprintf(id, sizeof(id), "short-%d", i);
        cr_assert_eq(bt_stack_start_wf(
                         &stack, "capped", id,
                         json_pack("{s:s, s:s, s:i}", "file", path, "id", id, "ms", 50)),
                     0);
    }
    /* every short step is dispatched and waits for a slot before the kill: the
     * ones on the survivors' partitions must get the freed slot as soon as the
     * lease expires, whatever the group's rebalance does to the others */
    for (int i = 0; i < SHORT; i++) {
        snprintf(id, sizeof(id), "short-%d", i);
        BT_TEST_WAIT_UNTIL(ok, scheduled(id), 30000);
        cr_assert(ok, "%s never dispatched", id);
    }
    bt_test_kill9(victim);
    killed = bt_clock_now_ms();
    cr_assert_eq(lease_of("long-0", &expiry), victim, "the dead worker's lease stays");
    cr_log_info("killed worker %d; its lease expires %lld ms later", (int)victim,
                (long long)(expiry - killed));
    cr_assert_gt(expiry, killed, "the lease must outlive its worker for a while");
    cr_assert_leq(expiry, killed + 3000 + 50, "a lease lasts 3 s from its last renewal");

    res = wait_results(2 + SHORT, 90000);
    json_decref(res);
    /* a redelivered attempt may still run after its instance is done */
    BT_TEST_WAIT_UNTIL(ok, all_ended(path, victim), 30000);
    cr_assert(ok, "a run never ended");

    v = runs(path, &n);
    /* the killed step ran again elsewhere: retried after its start-to-close
     * timeout, or its uncommitted task redelivered to the partition's new
     * owner (at-least-once), or both */
    for (size_t i = 0; i < n; i++)
        if (!strcmp(v[i].id, "long-0") && v[i].pid != victim) {
            cr_log_info("long-0 ran again as attempt %d, %lld ms after the kill",
                        v[i].attempt, (long long)(v[i].start - killed));
            cr_assert_gt(v[i].start, killed);
            rerun = true;
        }
    cr_assert(rerun, "the killed step never ran again");
    for (size_t i = 0; i < n; i++)
        if (v[i].start > killed && (!first || v[i].start < first))
            first = v[i].start;
    cr_log_info("first start after the kill: %lld ms after it, %lld ms after the expiry",
                (long long)(first - killed), (long long)(first - expiry));
    /* the slot freed with the lease: not before it, and soon after it (a
     * waiting task asks again at least once a second). But the kill's
     * rebalance revokes every partition on the embedded cluster, and tasks
     * waiting on a revoked partition are left to its next owner, which
     * fetches them again once it has them: soon after the later of the
     * expiry and that assignment. */
    int64_t assigned = last_assignment(killed, first);
    int64_t from = assigned > expiry ? assigned : expiry;
    cr_log_info("task partitions last assigned %lld ms after the kill",
                (long long)(assigned - killed));
    cr_assert_geq(first, expiry, "a step started %lld ms before the lease expired",
                  (long long)(expiry - first));
    cr_assert_leq(first, from + 1500,
                  "the freed slot stayed unused %lld ms after the expiry and %lld ms "
                  "after the last assignment",
                  (long long)(first - expiry), (long long)(first - assigned));
    /* the killed run counts as running until its lease expired */
    cr_assert_leq(peak(v, n, expiry), 2, "more than 2 steps ran at once");
    for (size_t i = 0; i < n; i++)
        cr_assert(v[i].end || v[i].pid == victim, "%s never ended", v[i].id);
    free(v);
    unlink(path);
}

#define BATON(out, ...) BT_STACK_BATON(&stack, (out), __VA_ARGS__)

Test(concurrency, the_cli_sets_gets_and_lists_limits, .init = setup, .fini = teardown,
     .timeout = 60)
{
    char out[4096];
    redisReply *reply;

    cr_assert_eq(BATON(out, "concurrency", "get", "carrier:att"), 1, "%s", out);
    cr_assert(strstr(out, "no concurrency limit"), "%s", out);
    cr_assert_eq(BATON(out, "concurrency", "set", "carrier:att", "3"), 0, "%s", out);
    cr_assert(strstr(out, "carrier:att limit=3 in_use=0"), "%s", out);
    reply = bt_stack_redis(&stack, "HGET %s:cc:carrier:att limit", stack.prefix);
    cr_assert(reply && reply->type == REDIS_REPLY_STRING && !strcmp(reply->str, "3"));
    freeReplyObject(reply);
    /* a lease taken by some worker shows as in use until it expires */
    freeReplyObject(bt_stack_redis(&stack, "ZADD {%s:cc:carrier:att}:holders %lld w|1",
                                   stack.prefix, (long long)bt_clock_now_ms() + 60000));
    cr_assert_eq(BATON(out, "concurrency", "get", "carrier:att"), 0, "%s", out);
    cr_assert(strstr(out, "carrier:att limit=3 in_use=1"), "%s", out);
    cr_assert_eq(BATON(out, "concurrency", "set", "carrier:ups", "0"), 0, "%s", out);
    cr_assert_eq(BATON(out, "concurrency", "list"), 0, "%s", out);
    cr_assert(strstr(out, "carrier:att limit=3") && strstr(out, "carrier:ups limit=0"),
              "%s", out);
    cr_assert_eq(BATON(out, "concurrency", "set", "carrier:att", "many"), 2, "%s", out);
    cr_assert(strstr(out, "\"many\" is not an integer"), "%s", out);
    cr_assert_eq(BATON(out, "concurrency", "set", "carrier:att", "-1"), 2, "%s", out);
    cr_assert_eq(BATON(out, "concurrency", "set", "carrier:att"), 2, "%s", out);
    reply = bt_stack_redis(&stack, "HGET %s:cc:carrier:att limit", stack.prefix);
    cr_assert(reply && reply->type == REDIS_REPLY_STRING && !strcmp(reply->str, "3"),
              "a refused set changes nothing");
    freeReplyObject(reply);
}
