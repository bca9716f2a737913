/* Schedules end to end: the `baton schedule` and `baton start --at` commands,
 * real baton-scheduler processes and a worker running the test plugin
 * (tests/plugins/flows.c). Fires are counted from Redis (the instances whose
 * id starts with "<name>@") and, for duplicates, from the start events on the
 * events topic. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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

static pid_t scheduler(void)
{
    const char *argv[] = {BT_BIN_DIR "/baton-scheduler", NULL};

    return bt_test_spawn(argv, stack.envp, stack.log);
}

/* Runs `baton <args>` against the stack; returns its exit status. */
static int baton(const char *const *args)
{
    const char *argv[24] = {BT_BIN_DIR "/baton"};
    int argc = 1;
    pid_t pid;

    for (; *args && argc < 23; args++)
        argv[argc++] = *args;
    argv[argc] = NULL;
    pid = bt_test_spawn(argv, stack.envp, stack.log);
    cr_assert_gt(pid, 0);
    return bt_test_wait(pid, 30000);
}

/* The prefix of the schedules' keys: shard 0's (store.h). */
static const char *sp(void)
{
    static char kp[128];

    return bt_stack_shard_kp(&stack, 0, kp, sizeof(kp));
}

/* Instances whose id starts with "<name>@" (or is exactly name when exact),
 * in shard's index. */
static int instances_in(int shard, const char *name, bool exact, int *completed)
{
    char kp[128];
    redisReply *reply = bt_stack_redis(&stack, "ZRANGE %s:idx:all 0 -1",
                                       bt_stack_shard_kp(&stack, shard, kp, sizeof(kp)));
    size_t len = strlen(name);
    int n = 0;

    for (size_t i = 0; reply && i < reply->elements; i++) {
        const char *id = reply->element[i]->str;
        char status[32];
        if (exact ? strcmp(id, name) : strncmp(id, name, len) || id[len] != '@')
            continue;
        n++;
        if (completed)
            *completed +=
                !strcmp(bt_stack_status(&stack, id, status, sizeof(status)), "completed");
    }
    freeReplyObject(reply);
    return n;
}

/* Instances whose id starts with "<name>@" (or is exactly name when exact). */
static int instances(const char *name, bool exact, int *completed)
{
    int n = 0;

    if (completed)
        *completed = 0;
    for (int shard = 0; shard < bt_stack_shard_count(&stack); shard++)
        n += instances_in(shard, name, exact, completed);
    return n;
}

static long long hash_int(const char *name, const char *field)
{
    redisReply *reply =
        bt_stack_redis(&stack, "HGET %s:schedule:%s %s", sp(), name, field);
    long long v = reply && reply->type == REDIS_REPLY_STRING ? atoll(reply->str) : -1;

    freeReplyObject(reply);
    return v;
}

static bool all_completed(const char *name, int want)
{
    int done;

    return instances(name, false, &done) == want && done == want;
}

/* Start events on the events topic for ids starting with "<name>@". */
struct starts {
    const char *name;
    int64_t total; /* messages on the topic, all types */
    int64_t read;
    int raw;
    json_t *ids;
};

static bool count_start(const json_t *msg, void *arg)
{
    struct starts *s = arg;
    const char *type = json_string_value(json_object_get(msg, "type"));
    const char *id = json_string_value(json_object_get(msg, "id"));

    s->read++;
    if (type && id && !strcmp(type, "start") && !strncmp(id, s->name, strlen(s->name)) &&
        id[strlen(s->name)] == '@') {
        s->raw++;
        json_object_set_new(s->ids, id, json_true());
    }
    return s->read >= s->total;
}

/* Reads the whole events topic (up to its high watermarks, taken once the
 * instances are finished and nothing more is produced). */
static void read_starts(struct starts *s, const char *name)
{
    char topic[300];

    memset(s, 0, sizeof(*s));
    s->name = name;
    s->ids = json_object();
    snprintf(topic, sizeof(topic), "%s.events", stack.prefix);
    for (int p = 0; p < 4; p++) {
        int64_t lo, hi;
        cr_assert_eq(
            rd_kafka_query_watermark_offsets(stack.producer, topic, p, &lo, &hi, 5000),
            RD_KAFKA_RESP_ERR_NO_ERROR);
        s->total += hi - lo;
    }
    bt_stack_read(&stack, "events", 30000, count_start, s);
    cr_assert_eq(s->read, s->total, "read %lld of %lld events", (long long)s->read,
                 (long long)s->total);
}

/* Adds an every-second chain3 schedule, lets it run for about five seconds
 * and pauses it. The fires expected are the whole seconds from its creation
 * to the pause, which takes effect while `baton schedule pause` runs: at
 * least *lo - 1 (a slot due as the pause lands), at most *hi. */
static void run_five_seconds(const char *name, int *lo, int *hi)
{
    int64_t created, pausing, paused;

    cr_assert_eq(baton((const char *const[]){
                     "schedule", "add", name, "--cron", "*/1 * * * * *", "--workflow",
                     "chain3", "--input", "{\"v\":0}", "--overlap", "allow", NULL}),
                 0);
    created = hash_int(name, "created");
    bt_test_sleep_ms(5000); /* the window being measured */
    pausing = bt_clock_now_ms();
    cr_assert_eq(baton((const char *const[]){"schedule", "pause", name, NULL}), 0);
    paused = bt_clock_now_ms();
    *lo = (int)(pausing / 1000 - created / 1000);
    *hi = (int)(paused / 1000 - created / 1000);
}

Test(schedule, fires_every_second_for_five_seconds, .init = setup, .fini = teardown,
     .timeout = 90)
{
    pid_t worker = bt_stack_worker(&stack, "flows", NULL), sched = scheduler();
    int lo, hi, n, fired;
    bool ok;

    cr_assert_gt(worker, 0);
    cr_assert_gt(sched, 0);
    run_five_seconds("tick", &lo, &hi);
    fired = (int)hash_int("tick", "fired");
    cr_log_info("fires: %d in a window of %d..%d whole seconds", fired, lo, hi);
    cr_assert(fired >= 4 && fired <= 6, "fired %d times in about 5 s", fired);
    cr_assert(fired >= lo - 1 && fired <= hi, "fired %d, window %d..%d", fired, lo, hi);
    BT_TEST_WAIT_UNTIL(ok, all_completed("tick", fired), 30000);
    n = instances("tick", false, NULL);
    cr_assert(ok, "%d instances, %d fires: each fire starts one chain3 that completes", n,
              fired);
    cr_assert_eq(hash_int("tick", "skipped"), 0);
    cr_assert_eq(bt_test_stop(sched, BT_TEST_STOP_MS), 0,
                 "the scheduler must exit cleanly");
    cr_assert_eq(bt_test_stop(worker, BT_TEST_STOP_MS), 0);
}

Test(schedule, paused_schedule_starts_nothing, .init = setup, .fini = teardown,
     .timeout = 60)
{
    pid_t worker = bt_stack_worker(&stack, "flows", NULL), sched;
    redisReply *score;
    bool ok;

    cr_assert_eq(baton((const char *const[]){"schedule", "add", "idle", "--cron",
                                             "*/1 * * * * *", "--workflow", "chain3",
                                             "--input", "{\"v\":0}", NULL}),
                 0);
    cr_assert_eq(baton((const char *const[]){"schedule", "pause", "idle", NULL}), 0);
    score = bt_stack_redis(&stack, "ZSCORE %s:schedules idle", sp());
    cr_assert_str_eq(score->str, "inf");
    freeReplyObject(score);
    sched = scheduler();
    cr_assert_gt(sched, 0);
    bt_test_sleep_ms(3000); /* three slots a running schedule would fire */
    cr_assert_eq(instances("idle", false, NULL), 0);
    cr_assert_eq(hash_int("idle", "fired"), 0);
    /* and the same scheduler fires it once resumed */
    cr_assert_eq(baton((const char *const[]){"schedule", "resume", "idle", NULL}), 0);
    BT_TEST_WAIT_UNTIL(ok, instances("idle", false, NULL) >= 1, 30000);
    cr_assert(ok, "a resumed schedule must fire");
    bt_test_stop(sched, BT_TEST_STOP_MS);
    bt_test_stop(worker, BT_TEST_STOP_MS);
}

Test(schedule, two_schedulers_never_start_twice, .init = setup, .fini = teardown,
     .timeout = 120)
{
    pid_t worker = bt_stack_worker(&stack, "flows", NULL), s1 = scheduler(),
          s2 = scheduler();
    struct starts starts;
    int lo, hi, fired;
    bool ok;

    cr_assert(worker > 0 && s1 > 0 && s2 > 0);
    run_five_seconds("pair", &lo, &hi);
    fired = (int)hash_int("pair", "fired");
    cr_assert(fired >= lo - 1 && fired <= hi, "fired %d, window %d..%d", fired, lo, hi);
    BT_TEST_WAIT_UNTIL(ok, all_completed("pair", fired), 30000);
    cr_assert(ok, "each fire starts one instance, which completes");
    read_starts(&starts, "pair");
    cr_log_info("start events: raw=%d distinct=%zu fires=%d window=%d..%d", starts.raw,
                json_object_size(starts.ids), fired, lo, hi);
    cr_assert_eq((int)json_object_size(starts.ids), fired);
    cr_assert_eq(starts.raw, fired, "no slot may be fired by both schedulers");
    json_decref(starts.ids);
    cr_assert_eq(bt_test_stop(s1, BT_TEST_STOP_MS), 0);
    cr_assert_eq(bt_test_stop(s2, BT_TEST_STOP_MS), 0);
    bt_test_stop(worker, BT_TEST_STOP_MS);
}

Test(schedule, start_at_fires_once_at_its_time, .init = setup, .fini = teardown,
     .timeout = 60)
{
    pid_t worker = bt_stack_worker(&stack, "flows", NULL), sched = scheduler();
    int64_t at = (bt_clock_now_ms() / 1000 + 3) * 1000, created;
    char at_s[32], status[32];
    time_t at_t = (time_t)(at / 1000);
    struct tm tm;
    redisReply *reply;
    bool ok;

    gmtime_r(&at_t, &tm);
    strftime(at_s, sizeof(at_s), "%Y-%m-%dT%H:%M:%SZ", &tm);
    cr_assert_eq(baton((const char *const[]){"start", "chain3", "--id", "later", "--at",
                                             at_s, "--input", "{\"v\":10}", NULL}),
                 0);
    cr_assert_eq(baton((const char *const[]){"start", "chain3", "--id", "soon", "--at",
                                             "+1s", "--input", "{\"v\":20}", NULL}),
                 0);
    cr_assert_eq(baton((const char *const[]){"start", "chain3", "--id", "soon", "--at",
                                             "+1h", NULL}),
                 1, "a second one-shot of the same id must be refused");
    BT_TEST_WAIT_UNTIL(
        ok,
        !strcmp(bt_stack_status(&stack, "later", status, sizeof(status)), "completed") &&
            !strcmp(bt_stack_status(&stack, "soon", status, sizeof(status)), "completed"),
        30000);
    cr_assert(ok, "both one-shots must run to completion");
    char key[256];
    reply = bt_stack_redis(&stack, "HGET %s created",
                           bt_stack_key(&stack, "later", "", key, sizeof(key)));
    created = atoll(reply->str);
    freeReplyObject(reply);
    cr_assert(created >= at && created < at + 2000, "started at %lld for %lld",
              (long long)created, (long long)at);
    /* fired once: the schedule deleted itself */
    reply = bt_stack_redis(&stack, "ZCARD %s:schedules", sp());
    cr_assert_eq(reply->integer, 0);
    freeReplyObject(reply);
    cr_assert_eq(hash_int("later", "next"), -1);
    cr_assert_eq(instances("later", true, NULL), 1);
    bt_test_stop(sched, BT_TEST_STOP_MS);
    bt_test_stop(worker, BT_TEST_STOP_MS);
}

Test(schedule, skips_a_fire_while_the_previous_instance_runs, .init = setup,
     .fini = teardown, .timeout = 60)
{
    pid_t worker = bt_stack_worker(&stack, "flows", NULL), sched = scheduler();
    bool ok;

    /* await_review waits for a signal that never comes: always running */
    cr_assert_eq(
        baton((const char *const[]){"schedule", "add", "review", "--cron",
                                    "*/1 * * * * *", "--workflow", "await_review", NULL}),
        0);
    /* skipped too while the worker has yet to create the first instance */
    BT_TEST_WAIT_UNTIL(
        ok, instances("review", false, NULL) == 1 && hash_int("review", "skipped") >= 2,
        30000);
    cr_assert(ok, "fires must be skipped while the first instance runs");
    cr_assert_eq(baton((const char *const[]){"schedule", "pause", "review", NULL}), 0);
    cr_assert_eq(instances("review", false, NULL), 1);
    cr_assert_eq(hash_int("review", "fired"), 1);
    bt_test_stop(sched, BT_TEST_STOP_MS);
    bt_test_stop(worker, BT_TEST_STOP_MS);
}

Test(schedule, fires_once_for_missed_slots_then_follows_from_now, .init = setup,
     .fini = teardown, .timeout = 60)
{
    pid_t worker = bt_stack_worker(&stack, "flows", NULL), sched;
    int64_t now = bt_clock_now_ms(), missed = (now / 3600000 - 3) * 3600000;
    long long next;
    char id[128];
    time_t t = (time_t)(missed / 1000);
    struct tm tm;
    bool ok;

    cr_assert_eq(baton((const char *const[]){"schedule", "add", "hourly", "--cron",
                                             "0 * * * *", "--workflow", "chain3",
                                             "--input", "{\"v\":0}", NULL}),
                 0);
    /* as if no scheduler had run for three hours */
    freeReplyObject(bt_stack_redis(&stack, "HSET %s:schedule:hourly next %lld", sp(),
                                   (long long)missed));
    freeReplyObject(
        bt_stack_redis(&stack, "ZADD %s:schedules %lld hourly", sp(), (long long)missed));
    sched = scheduler();
    BT_TEST_WAIT_UNTIL(ok, all_completed("hourly", 1), 30000);
    cr_assert(ok, "the missed slots must fire once");
    gmtime_r(&t, &tm);
    strftime(id, sizeof(id), "hourly@%Y%m%dT%H%M%SZ", &tm);
    cr_assert_eq(instances(id, true, NULL), 1,
                 "the catch-up fire is the first missed slot");
    BT_TEST_WAIT_UNTIL(ok, hash_int("hourly", "fired") == 1, 10000);
    cr_assert(ok);
    /* then the first slot after now (the hour may have turned meanwhile) */
    next = hash_int("hourly", "next");
    cr_assert(next == (now / 3600000 + 1) * 3600000 ||
                  next == (now / 3600000 + 2) * 3600000,
              "next %lld", next);
    cr_assert_eq(instances("hourly", false, NULL), 1);
    bt_test_stop(sched, BT_TEST_STOP_MS);
    bt_test_stop(worker, BT_TEST_STOP_MS);
}

Test(schedule, trigger_starts_one_instance_now_and_keeps_the_next_fire, .init = setup,
     .fini = teardown, .timeout = 60)
{
    pid_t worker = bt_stack_worker(&stack, "flows", NULL);
    long long next;
    bool ok;

    cr_assert_eq(baton((const char *const[]){"schedule", "add", "yearly", "--cron",
                                             "0 0 1 1 *", "--workflow", "chain3",
                                             "--input", "{\"v\":0}", NULL}),
                 0);
    next = hash_int("yearly", "next");
    cr_assert_eq(baton((const char *const[]){"schedule", "trigger", "yearly", NULL}), 0);
    BT_TEST_WAIT_UNTIL(ok, all_completed("yearly", 1), 30000);
    cr_assert(ok, "trigger must start one instance, without a scheduler");
    cr_assert_eq(hash_int("yearly", "next"), next);
    cr_assert_eq(baton((const char *const[]){"schedule", "trigger", "nope", NULL}), 1);
    cr_assert_eq(baton((const char *const[]){"schedule", "delete", "yearly", NULL}), 0);
    cr_assert_eq(baton((const char *const[]){"schedule", "delete", "yearly", NULL}), 1);
    bt_test_stop(worker, BT_TEST_STOP_MS);
}

/* The line of `baton schedule list` that starts with name, or NULL. */
static const char *list_line(const char *out, const char *name, char *line, size_t n)
{
    for (const char *p = out; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
        size_t len = strcspn(p, "\n");
        if (!strncmp(p, name, strlen(name)) && p[strlen(name)] == ' ') {
            snprintf(line, n, "%.*s", (int)len, p);
            return line;
        }
    }
    return NULL;
}

Test(schedule, list_shows_each_schedules_queue, .init = setup, .fini = teardown,
     .timeout = 60)
{
    char out[8192], line[512];

    cr_assert_eq(BT_STACK_BATON(&stack, out, "schedule", "add", "nightly", "--cron",
                                "0 0 3 * * *", "--workflow", "chain3", "--queue",
                                "billing"),
                 0, "%s", out);
    cr_assert_eq(BT_STACK_BATON(&stack, out, "schedule", "add", "hourly", "--cron",
                                "0 0 * * * *", "--workflow", "chain3"),
                 0, "%s", out);
    cr_assert_eq(BT_STACK_BATON(&stack, out, "schedule", "list"), 0, "%s", out);
    cr_expect(strstr(out, " QUEUE "), "no QUEUE column: %s", out);
    cr_assert(list_line(out, "nightly", line, sizeof(line)), "%s", out);
    cr_expect(strstr(line, " billing "), "nightly's queue: %s", line);
    cr_assert(list_line(out, "hourly", line, sizeof(line)), "%s", out);
    cr_expect(strstr(line, " default "), "hourly runs on the default queue: %s", line);
}
