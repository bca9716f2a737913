/* Retention: a finished instance (and each run an instance ended by
 * continue-as-new) is archived to <prefix>.archive and deleted from Redis a
 * retention period after it finished, by the real baton-scheduler; never a
 * running one, never one whose retention has not ended, and never before
 * Kafka confirmed its archive. `baton delete` does the same at once. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stack.h"

static struct bt_stack stack;

/* The programs' retention settings, before any of them starts. */
static void retention(const char *all, const char *types)
{
    snprintf(stack.env[6], sizeof(stack.env[6]), "BATON_RETENTION=%s", all);
    snprintf(stack.env[7], sizeof(stack.env[7]), "BATON_RETENTION_TYPES=%s",
             types ? types : "");
    stack.envp[6] = stack.env[6];
    stack.envp[7] = stack.env[7];
    stack.envp[8] = NULL;
}

static void setup(void)
{
    cr_assert_eq(bt_stack_start(&stack, NULL), 0, "cannot start the stack");
}

static void teardown(void)
{
    bt_stack_stop(&stack);
}

TestSuite(retention, .init = setup, .fini = teardown, .timeout = 180);

static long long integer(const char *fmt, const char *a, const char *b)
{
    redisReply *reply = bt_stack_redis(&stack, fmt, a, b);
    long long n = reply && reply->type == REDIS_REPLY_INTEGER ? reply->integer : -1;

    freeReplyObject(reply);
    return n;
}

static bool exists(const char *id)
{
    return integer("EXISTS %s:{%s}", stack.prefix, id) == 1;
}

/* Keys of instance id but its tombstone. */
static long long keys_of(const char *id)
{
    redisReply *reply = bt_stack_redis(&stack, "KEYS %s:{%s}*", stack.prefix, id);
    long long n = 0;

    for (size_t i = 0; reply && i < reply->elements; i++)
        n += strstr(reply->element[i]->str, "}:deleted") == NULL;
    freeReplyObject(reply);
    return n;
}

static void start(const char *type, const char *id)
{
    cr_assert_eq(bt_stack_start_wf(&stack, type, id, json_pack("{s:i}", "v", 1)), 0);
}

/* Whether every instance "<name>-<i>", i < n, has status (or, "", is gone). */
static bool all_are(const char *name, int n, const char *status)
{
    char id[64], buf[32];

    for (int i = 0; i < n; i++) {
        snprintf(id, sizeof(id), "%s-%d", name, i);
        if (strcmp(bt_stack_status(&stack, id, buf, sizeof(buf)), status))
            return false;
    }
    return true;
}

static void await_all(const char *name, int n, const char *status, int timeout_ms)
{
    bool ok;

    BT_TEST_WAIT_UNTIL(ok, all_are(name, n, status), timeout_ms);
    cr_assert(ok, "not every %s-* is \"%s\" after %d ms", name, status, timeout_ms);
}

/* The history of every run of instances "<name>-<i>", i < n, each with runs
 * runs, read from Redis: "<id>|<run>" -> records. */
static void snapshot(json_t *into, const char *name, int n, int runs)
{
    char id[64], key[96], suffix[32];

    for (int i = 0; i < n; i++) {
        snprintf(id, sizeof(id), "%s-%d", name, i);
        for (int run = 1; run <= runs; run++) {
            snprintf(suffix, sizeof(suffix), run < runs ? ":history:%d" : ":history",
                     run);
            snprintf(key, sizeof(key), "%s|%d", id, run);
            json_object_set_new(into, key, bt_stack_history(&stack, id, suffix, NULL));
        }
    }
}

/* Archive messages by "<id>|<run>": an array of each one read. */
static bool collect(const json_t *msg, void *arg)
{
    json_t *by_run = arg, *list;
    char key[320];

    snprintf(key, sizeof(key), "%s|%lld", json_string_value(json_object_get(msg, "id")),
             (long long)json_integer_value(json_object_get(msg, "run")));
    if (!(list = json_object_get(by_run, key)))
        json_object_set_new(by_run, key, list = json_array());
    json_array_append(list, (json_t *)(uintptr_t)msg);
    return false;
}

static json_t *archived(void)
{
    json_t *by_run = json_object();

    bt_stack_read_all(&stack, "archive", 20000, collect, by_run);
    return by_run;
}

/* Each run in want is archived exactly once, whole, with its status; returns
 * how many runs the archive holds. */
static size_t expect_archived_once(const json_t *archive, const json_t *want)
{
    const char *key;
    json_t *history;

    json_object_foreach((json_t *)(uintptr_t)want, key, history)
    {
        const json_t *list = json_object_get(archive, key);
        const json_t *msg = json_array_get(list, 0);
        cr_expect_eq(json_array_size(list), 1, "%s archived %zu times", key,
                     json_array_size(list));
        cr_expect(json_array_size(history) > 0, "%s: no history read", key);
        cr_expect(msg && json_equal(json_object_get(msg, "history"), history),
                  "%s: the archived history differs from Redis's", key);
        cr_expect_eq(json_integer_value(json_object_get(msg, "v")), 1);
        cr_expect_str_eq(json_string_value(json_object_get(msg, "type")), "archive");
    }
    return json_object_size(archive);
}

Test(retention, deletes_exactly_the_expired_finished_instances)
{
    json_t *histories = json_object(), *archive;
    pid_t worker, scheduler;
    bool ok;

    /* always_fails keeps 1 h: finished, but not expired */
    retention("1s", "always_fails=1h");
    worker = bt_stack_worker(&stack, "flows", NULL);
    for (int i = 0; i < 20; i++) {
        char id[32];
        snprintf(id, sizeof(id), "done-%d", i);
        start("chain3", id);
    }
    for (int i = 0; i < 5; i++) {
        char id[32];
        snprintf(id, sizeof(id), "kept-%d", i);
        start("always_fails", id);
        snprintf(id, sizeof(id), "open-%d", i);
        start("await_review", id);
    }
    await_all("done", 20, "completed", 60000);
    await_all("kept", 5, "failed", 60000);
    await_all("open", 5, "running", 60000);
    snapshot(histories, "done", 20, 1);
    cr_assert_eq(integer("ZCARD %s:retention", stack.prefix, NULL), 25,
                 "every finished run is due once");

    scheduler = bt_stack_scheduler(&stack);
    cr_assert_gt(scheduler, 0);
    await_all("done", 20, "", 30000);
    for (int i = 0; i < 20; i++) {
        char id[32];
        snprintf(id, sizeof(id), "done-%d", i);
        cr_expect_eq(keys_of(id), 0, "%s left keys behind", id);
        cr_expect_eq(integer("EXISTS %s:{%s}:deleted", stack.prefix, id), 1,
                     "%s has a tombstone", id);
        cr_expect_eq(integer("ZSCORE %s:idx:all %s", stack.prefix, id), -1);
    }
    /* the others stay whole: finished but not expired, and running */
    for (int i = 0; i < 5; i++) {
        char id[32];
        snprintf(id, sizeof(id), "kept-%d", i);
        cr_expect(exists(id) && keys_of(id) >= 3, "%s was touched", id);
        snprintf(id, sizeof(id), "open-%d", i);
        cr_expect(exists(id) && keys_of(id) >= 3, "%s was touched", id);
    }
    cr_expect_eq(integer("ZCARD %s:retention", stack.prefix, NULL), 5);
    cr_expect_eq(integer("ZCARD %s:retention:leased", stack.prefix, NULL), 0);
    archive = archived();
    cr_expect_eq(expect_archived_once(archive, histories), 20,
                 "only the expired ones are archived");
    const json_t *one = json_array_get(json_object_get(archive, "done-3|1"), 0);
    cr_expect_str_eq(json_string_value(json_object_get(one, "status")), "completed");
    cr_expect_eq(json_integer_value(json_object_get(json_object_get(one, "result"), "v")),
                 4);
    json_decref(archive);

    /* a running one that finishes expires like the others */
    static const char signal[] = "{\"v\":1,\"type\":\"signal\",\"id\":\"open-0\","
                                 "\"name\":\"review\",\"payload\":1}";
    cr_assert_eq(bt_stack_produce(&stack, "events", "open-0", signal, strlen(signal)), 0);
    BT_TEST_WAIT_UNTIL(ok, !exists("open-0"), 30000);
    cr_expect(ok, "open-0 finished and was deleted after its retention");
    cr_expect(exists("open-1"));
    archive = archived();
    cr_expect_eq(json_array_size(json_object_get(archive, "open-0|1")), 1);
    json_decref(archive);
    json_decref(histories);
    bt_test_stop(scheduler, 10000);
    bt_test_kill9(worker);
}
