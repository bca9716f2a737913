/* Scripts of common/lua that serve a whole batch in one call, against a real
 * redis-server: each item of the batch gets its own answer, in order. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "lua_scripts.h"
#include "redis.h"

static struct bt_test_redis srv;
static struct bt_redis *r;

static void setup(void)
{
    char errstr[256] = "";

    cr_assert_eq(bt_test_redis_start(&srv), 0, "redis-server did not start");
    r = bt_redis_new(srv.addr, NULL, NULL, errstr, sizeof(errstr));
    cr_assert_not_null(r, "bt_redis_new: %s", errstr);
}

static void teardown(void)
{
    bt_redis_destroy(r);
    bt_test_redis_stop(&srv);
}

TestSuite(scripts, .init = setup, .fini = teardown, .timeout = 60);

static void run(const char *fmt, const char *arg)
{
    redisReply *reply = bt_redis_command(r, fmt, arg);

    cr_assert(reply && reply->type != REDIS_REPLY_ERROR, "%s: %s", fmt,
              reply ? reply->str : "no reply");
    freeReplyObject(reply);
}

/* Instance id with journal entry 0 as text, status and the timeout timer of
 * attempt `at` due at 1000. */
static void instance_raw(const char *id, const char *entry, int at, const char *status)
{
    char cmd[512];

    snprintf(cmd, sizeof(cmd), "HSET t:{%s}:journal 0 %%s", id);
    run(cmd, entry);
    snprintf(cmd, sizeof(cmd), "HSET t:{%s} status %%s", id);
    run(cmd, status);
    snprintf(cmd, sizeof(cmd), "ZADD t:timers 1000 timeout|0|%d|%%s", at);
    run(cmd, id);
}

/* The same with entry 0 as bt_entry_encode writes it (state s, attempt at). */
static void instance(const char *id, int s, int at, const char *status)
{
    char entry[128];

    snprintf(entry, sizeof(entry), "{\"k\":\"a\",\"s\":%d,\"n\":\"inc\",\"at\":%d}", s,
             at);
    instance_raw(id, entry, at, status);
}

static long long due_of(const char *member)
{
    redisReply *reply = bt_redis_command(r, "ZSCORE t:timers %s", member);
    long long due = reply && reply->type == REDIS_REPLY_STRING ? atoll(reply->str) : -1;

    freeReplyObject(reply);
    return due;
}

Test(scripts, take_task_answers_each_task_of_a_batch_in_order)
{
    /* id, attempt asked, expected answer */
    static const struct {
        const char *id;
        const char *attempt;
        long long want;
    } tasks[] = {
        {"run", "1", 1},        /* waiting, running: take it */
        {"done", "1", 0},       /* step done */
        {"superseded", "2", 0}, /* the journal is at attempt 1 */
        {"gone", "1", 0},       /* no such instance */
        {"finished", "1", 0},   /* instance completed */
        {"blocked", "1", 1},    /* blocked instances still run their steps */
        {"failed", "1", 0},     /* the attempt failed: replay decides */
        {"due", "1", 1},        /* more fields after the attempt */
        {"tenth", "1", 0},      /* attempt 10 is not attempt 1 */
        {"valued", "1", 0},     /* done, with a value that looks like an entry */
        {"utf8", "1", 1},       /* a name with non-ASCII letters, unescaped */
        /* entries written otherwise than by bt_entry_encode: decoded in full */
        {"escaped", "1", 1},
        {"reordered", "1", 0},
        {"reordered_waiting", "1", 1},
        {"real", "1", 1},       /* 1.0 is attempt 1 */
        {"nodeadline", "1", 1}, /* a task without a deadline (due 0) */
    };
    enum { N = sizeof(tasks) / sizeof(tasks[0]) };
    char keys[N][2][64], members[N][64];
    const char *argv[1 + 7 * N];
    redisReply *reply;

    instance("run", 0, 1, "running");
    instance("done", 4, 1, "running");
    instance("superseded", 0, 1, "running");
    instance("finished", 0, 1, "completed");
    instance("blocked", 0, 1, "blocked");
    instance("failed", 1, 1, "running");
    instance_raw("escaped", "{\"k\":\"a\",\"s\":0,\"n\":\"in\\\"c\",\"at\":1}", 1,
                 "running");
    instance_raw("reordered", "{\"s\":4,\"k\":\"a\",\"n\":\"inc\",\"at\":1}", 1,
                 "running");
    instance("tenth", 0, 10, "running");
    instance("nodeadline", 0, 1, "running");
    instance_raw("valued",
                 "{\"k\":\"a\",\"s\":4,\"n\":\"inc\",\"at\":1,\"v\":{\"k\":\"a\",\"s\":0,"
                 "\"n\":\"inc\",\"at\":1}}",
                 1, "running");
    instance_raw("utf8", "{\"k\":\"a\",\"s\":0,\"n\":\"d\xc3\xa9j\xc3\xa0\",\"at\":1}", 1,
                 "running");
    instance_raw("reordered_waiting", "{\"at\":1,\"s\":0,\"k\":\"a\",\"n\":\"inc\"}", 1,
                 "running");
    instance_raw("real", "{\"k\":\"a\",\"s\":0,\"n\":\"inc\",\"at\":1.0}", 1, "running");
    instance_raw("due", "{\"k\":\"a\",\"s\":0,\"n\":\"inc\",\"at\":1,\"d\":99}", 1,
                 "running");
    argv[0] = "t:timers";
    for (int i = 0; i < N; i++) {
        snprintf(keys[i][0], sizeof(keys[i][0]), "t:{%s}:journal", tasks[i].id);
        snprintf(keys[i][1], sizeof(keys[i][1]), "t:{%s}", tasks[i].id);
        snprintf(members[i], sizeof(members[i]), "timeout|0|%s|%s", tasks[i].attempt,
                 tasks[i].id);
        argv[1 + 2 * i] = keys[i][0];
        argv[2 + 2 * i] = keys[i][1];
        argv[1 + 2 * N + 5 * i] = "0";
        argv[2 + 2 * N + 5 * i] = tasks[i].attempt;
        argv[3 + 2 * N + 5 * i] = members[i];
        argv[4 + 2 * N + 5 * i] = strcmp(tasks[i].id, "nodeadline") ? "5000" : "0";
        argv[5 + 2 * N + 5 * i] = ""; /* fetched first here: no mark */
    }
    reply = bt_redis_eval(r, bt_lua_take_task, 1 + 2 * N, 1 + 7 * N, argv, NULL);
    cr_assert(reply && reply->type == REDIS_REPLY_ARRAY, "%s",
              reply && reply->str ? reply->str : "not an array");
    cr_assert_eq(reply->elements, N);
    for (int i = 0; i < N; i++)
        cr_expect_eq(reply->element[i]->integer, tasks[i].want, "%s: %lld, want %lld",
                     tasks[i].id, reply->element[i]->integer, tasks[i].want);
    freeReplyObject(reply);
    /* the taken ones' timeouts restart; the others' timers stay as they were */
    cr_expect_eq(due_of("timeout|0|1|run"), 5000);
    cr_expect_eq(due_of("timeout|0|1|blocked"), 5000);
    cr_expect_eq(due_of("timeout|0|1|done"), 1000);
    cr_expect_eq(due_of("timeout|0|1|superseded"), 1000);
    cr_expect_eq(due_of("timeout|0|1|finished"), 1000);
    cr_expect_eq(due_of("timeout|0|2|superseded"), -1, "XX: no timer is added");
    cr_expect_eq(due_of("timeout|0|1|nodeadline"), 1000, "no deadline: the timer stays");
}

/* One take of task "lost" (seq 0, attempt "1" or "2") by taker: its answer. */
static long long take_as(const char *attempt, const char *taker)
{
    char member[64];
    const char *argv[] = {
        "t:timers", "t:{lost}:journal", "t:{lost}", "0", attempt, member, "5000", taker};

    snprintf(member, sizeof(member), "timeout|0|%s|lost", attempt);
    redisReply *reply = bt_redis_eval(r, bt_lua_take_task, 3, 8, argv, NULL);
    long long answer;

    cr_assert(reply && reply->type == REDIS_REPLY_ARRAY && reply->elements == 1, "%s",
              reply && reply->str ? reply->str : "not an array of one");
    answer = reply->element[0]->integer;
    freeReplyObject(reply);
    return answer;
}

/* Task "lost"'s mark, as take_task.lua keeps it: "<attempt>|<lost>|<taker>". */
static char *mark_of_lost(void)
{
    redisReply *reply = bt_redis_command(r, "HGET t:{lost}:tk 0");
    char *text = reply && reply->type == REDIS_REPLY_STRING ? strdup(reply->str) : NULL;

    freeReplyObject(reply);
    cr_assert_not_null(text, "no mark");
    return text;
}

Test(scripts, take_task_counts_the_workers_that_took_an_attempt_and_never_finished_it)
{
    char *mark;

    instance("lost", 0, 1, "running");
    cr_expect_eq(take_as("1", "w:1/7"), 1, "the first take runs it");
    cr_expect_eq(take_as("1", "w:1/7"), 1,
                 "the same process again (its partition came back)");
    mark = mark_of_lost();
    cr_expect_str_eq(mark, "1|0|w:1/7");
    free(mark);
    redisReply *flag = bt_redis_command(r, "HGET t:{lost} tk");
    cr_expect(flag && flag->type == REDIS_REPLY_STRING && !strcmp(flag->str, "1"),
              "the meta says the marks exist, for commit.lua to drop them");
    freeReplyObject(flag);
    cr_expect_eq(take_as("1", "w:1/9"), 1,
                 "another process (same host and pid): one loss");
    mark = mark_of_lost();
    cr_expect_str_eq(mark, "1|1|w:1/9");
    free(mark);
    cr_expect_eq(take_as("1", "w:3/1"), 2, "a second loss: lost, not run again");
    cr_expect_eq(take_as("1", "w:4/1"), 2, "and for every later taker");
    cr_expect_eq(take_as("1", ""), 1, "no taker: unmarked, as before");
    /* the next attempt starts its own count */
    run("HSET t:{lost}:journal 0 %s", "{\"k\":\"a\",\"s\":0,\"n\":\"inc\",\"at\":2}");
    cr_expect_eq(take_as("1", "w:4/1"), 0, "attempt 1 is superseded");
    cr_expect_eq(take_as("2", "w:4/1"), 1, "attempt 2's first take runs it");
    mark = mark_of_lost();
    cr_expect_str_eq(mark, "2|0|w:4/1");
    free(mark);
}

Test(scripts, ack_forgets_what_each_outbox_had_delivered_and_leaves_the_index_alone)
{
    /* a: both commands delivered; b: one of two (the other is newer); c: an
     * outbox already empty; a again in a second piece (a split batch) */
    const char *argv[] = {"t:{a}:outbox",
                          "t:{b}:outbox",
                          "t:{c}:outbox",
                          "t:{a}:outbox",
                          "1",
                          "f1",
                          "1",
                          "f1",
                          "0",
                          "1",
                          "f2"};
    redisReply *reply;

    run("HSET t:{a}:outbox f1 x f2 %s", "y");
    run("HSET t:{b}:outbox f1 x f2 %s", "y");
    run("ZADD t:outbox 1 a 1 b 1 %s", "c");
    reply = bt_redis_eval(r, bt_lua_ack, 4, 11, argv, NULL);
    cr_assert(reply && reply->type == REDIS_REPLY_INTEGER, "%s",
              reply && reply->str ? reply->str : "not an integer");
    cr_expect_eq(reply->integer, 3, "commands forgotten: %lld", reply->integer);
    freeReplyObject(reply);
    reply = bt_redis_command(r, "HKEYS t:{b}:outbox");
    cr_assert(reply && reply->elements == 1);
    cr_expect_str_eq(reply->element[0]->str, "f2");
    freeReplyObject(reply);
    reply = bt_redis_command(r, "EXISTS t:{a}:outbox");
    cr_expect_eq(reply->integer, 0);
    freeReplyObject(reply);
    /* emptied outboxes leave the index at the scheduler's sweep */
    reply = bt_redis_command(r, "ZCARD t:outbox");
    cr_expect_eq(reply->integer, 3);
    freeReplyObject(reply);
}

/* One outbox_sweep.lua step: past the grace before `before`, at most limit,
 * claiming what it returns at 1000. */
static redisReply *sweep(const char *before, const char *limit)
{
    const char *argv[] = {"t:outbox", before, limit, "t", "1000"};
    redisReply *reply = bt_redis_eval(r, bt_lua_outbox_sweep, 1, 5, argv, NULL);

    cr_assert(reply && reply->type == REDIS_REPLY_ARRAY && reply->elements >= 1, "%s",
              reply && reply->str ? reply->str : "not an array");
    return reply;
}

static void expect_index(const char *want)
{
    redisReply *reply = bt_redis_command(r, "ZRANGE t:outbox 0 -1");
    char got[256] = "";

    cr_assert(reply && reply->type == REDIS_REPLY_ARRAY);
    for (size_t i = 0; i < reply->elements; i++) {
        strcat(got, i ? " " : "");
        strcat(got, reply->element[i]->str);
    }
    cr_expect_str_eq(got, want);
    freeReplyObject(reply);
}

Test(scripts, outbox_sweep_drops_emptied_outboxes_past_the_grace_and_returns_the_others)
{
    redisReply *reply;

    /* past the grace (score < 100): e1, e2, e3 emptied, u1, u2 with commands;
     * fresh (score 500): e4 emptied (its worker may still be sending) and u3 */
    run("HSET t:{u1}:outbox f %s", "x");
    run("HSET t:{u2}:outbox f %s", "x");
    run("HSET t:{u3}:outbox f %s", "x");
    run("ZADD t:outbox 1 e1 2 u1 3 e2 4 u2 5 e3 500 e4 500 %s", "u3");

    /* a step of two: e1 dropped, u1 returned and claimed (scored 1000) */
    reply = sweep("100", "2");
    cr_assert_eq(reply->elements, 2);
    cr_expect_eq(reply->element[0]->integer, 2, "looked at");
    cr_expect_str_eq(reply->element[1]->str, "u1");
    freeReplyObject(reply);
    expect_index("e2 u2 e3 e4 u3 u1");

    /* the round goes on from the head: e2 and e3 dropped, u2 returned */
    reply = sweep("100", "256");
    cr_assert_eq(reply->elements, 2);
    cr_expect_eq(reply->element[0]->integer, 3, "looked at");
    cr_expect_str_eq(reply->element[1]->str, "u2");
    freeReplyObject(reply);
    expect_index("e4 u3 u1 u2");

    /* another scheduler sweeping at once finds them claimed: nothing twice */
    reply = sweep("100", "256");
    cr_expect_eq(reply->elements, 1);
    cr_expect_eq(reply->element[0]->integer, 0);
    freeReplyObject(reply);

    /* a grace after the claim: u1's commands were delivered since (dropped),
     * u2's were not (returned again); e4 and u3 are past it now too */
    run("DEL %s", "t:{u1}:outbox");
    reply = sweep("1001", "256");
    cr_assert_eq(reply->elements, 3);
    cr_expect_eq(reply->element[0]->integer, 4);
    cr_expect_str_eq(reply->element[1]->str, "u3");
    cr_expect_str_eq(reply->element[2]->str, "u2");
    freeReplyObject(reply);
    expect_index("u2 u3");
}

Test(scripts, outbox_sweep_finds_the_few_outboxes_left_among_many_emptied_ones)
{
    char id[32], cmd[64];
    redisReply *reply;

    /* 200 indexed past the grace, in order i0..i199; i7, i8, i100 and i199
     * still hold commands */
    for (int i = 0; i < 200; i++) {
        snprintf(cmd, sizeof(cmd), "ZADD t:outbox %d %%s", i / 2); /* before 100 */
        snprintf(id, sizeof(id), "i%d", i);
        run(cmd, id);
    }
    run("HSET t:{i7}:outbox f %s", "x");
    run("HSET t:{i8}:outbox f %s", "x");
    run("HSET t:{i100}:outbox f %s", "x");
    run("HSET t:{i199}:outbox f %s", "x");
    reply = sweep("100", "256");
    cr_assert_eq(reply->elements, 5);
    cr_expect_eq(reply->element[0]->integer, 200);
    cr_expect_str_eq(reply->element[1]->str, "i7");
    cr_expect_str_eq(reply->element[2]->str, "i8");
    cr_expect_str_eq(reply->element[3]->str, "i100");
    cr_expect_str_eq(reply->element[4]->str, "i199");
    freeReplyObject(reply);
    expect_index("i100 i199 i7 i8"); /* claimed: all scored 1000 */
}

/* retention_claim.lua at now with lease 100 (members: explicit ones). */
static redisReply *claim(const char *now, const char *limit, const char *member)
{
    const char *argv[] = {"t:retention", "t:retention:leased", now, "100", limit, member};
    redisReply *reply =
        bt_redis_eval(r, bt_lua_retention_claim, 2, member ? 6 : 5, argv, NULL);

    cr_assert(reply && reply->type == REDIS_REPLY_ARRAY, "claim: %s",
              reply && reply->str ? reply->str : "no reply");
    return reply;
}

/* retention_delete.lua for one run: its answer. */
static long long settle(const char *member, const char *token, const char *action,
                        const char *entries)
{
    const char *argv[] = {"t:retention", "t:retention:leased",
                          "t",           "5000",
                          member,        token,
                          action,        "7000",
                          entries,       "60000|{}"};
    redisReply *reply = bt_redis_eval(r, bt_lua_retention_delete, 2, 10, argv, NULL);
    long long v;

    cr_assert(reply && reply->type == REDIS_REPLY_ARRAY && reply->elements == 1,
              "settle: %s", reply && reply->str ? reply->str : "no reply");
    v = reply->element[0]->integer;
    freeReplyObject(reply);
    return v;
}

static long long count(const char *fmt, const char *arg)
{
    redisReply *reply = bt_redis_command(r, fmt, arg);
    long long n = reply && reply->type == REDIS_REPLY_INTEGER ? reply->integer : -1;

    freeReplyObject(reply);
    return n;
}

Test(scripts, retention_claims_each_due_run_once_and_again_when_its_lease_expired)
{
    redisReply *reply;

    run("ZADD t:retention 10 1|a 20 1|b 30 1|c 5000 %s", "1|later");
    reply = claim("25", "256", NULL);
    cr_assert_eq(reply->elements, 6, "a and b are due at 25: member, token, previous");
    cr_expect_str_eq(reply->element[0]->str, "1|a");
    cr_expect_eq(reply->element[1]->integer, 125, "the token: the lease's expiry");
    cr_expect_eq(reply->element[2]->integer, 0, "a fresh claim");
    cr_expect_str_eq(reply->element[3]->str, "1|b");
    freeReplyObject(reply);
    /* another scheduler at once: nothing left for it but c, due at 30 */
    reply = claim("30", "256", NULL);
    cr_assert_eq(reply->elements, 3);
    cr_expect_str_eq(reply->element[0]->str, "1|c");
    freeReplyObject(reply);
    /* past the leases of a and b (125): claimed again, with a new token, and
     * the old one said (its holder may have archived it) */
    reply = claim("126", "1", NULL);
    cr_assert_eq(reply->elements, 3, "the limit holds");
    cr_expect_str_eq(reply->element[0]->str, "1|a");
    cr_expect_eq(reply->element[1]->integer, 226);
    cr_expect_eq(reply->element[2]->integer, 125, "taken over from the claim of 125");
    freeReplyObject(reply);
    /* named (baton delete): taken unless its lease holds, due or not */
    reply = claim("127", "1", "1|later");
    cr_expect_eq(reply->elements, 3);
    freeReplyObject(reply);
    reply = claim("127", "1", "1|a");
    cr_expect_eq(reply->elements, 0, "held by another until 226");
    freeReplyObject(reply);
    reply = claim("127", "1", "1|b");
    cr_assert_eq(reply->elements, 3, "b's claim expired at 125");
    cr_expect_eq(reply->element[2]->integer, 125);
    freeReplyObject(reply);
    cr_expect_eq(count("ZCARD %s", "t:retention"), 0);
}

Test(scripts, retention_delete_needs_the_claim_a_finished_instance_and_its_history)
{
    redisReply *reply;

    run("HSET t:{a} status completed run 1 type %s", "w");
    run("XADD t:{a}:history * e %s", "{}");
    run("HSET t:{a}:journal 0 %s", "{}");
    run("ZADD t:idx:all 1 a 1 r 1 %s", "o");
    run("ZADD t:idx:completed 1 %s", "a");
    run("HSET t:{r} status running run %s", "1");
    run("HSET t:{o} status failed run %s", "1");
    run("HSET t:{o}:outbox r %s", "results\nx\n{}");
    run("ZADD t:retention 10 1|a 10 1|r 10 %s", "1|o");
    reply = claim("20", "256", NULL);
    cr_assert_eq(reply->elements, 9);
    freeReplyObject(reply);

    cr_expect_eq(settle("1|a", "119", "d", "1"), 0, "another token: not ours");
    cr_expect_eq(count("EXISTS %s", "t:{a}"), 1);
    cr_expect_eq(settle("1|r", "120", "d", "0"), -1, "a running instance: refused");
    cr_expect_eq(count("EXISTS %s", "t:{r}"), 1);
    cr_expect_eq(count("ZRANK t:retention %s", "1|r"), -1, "the running one is dropped");
    cr_expect_eq(settle("1|o", "120", "d", "0"), -2, "its result is not on Kafka yet");
    cr_expect_eq(settle("1|a", "120", "d", "2"), -3, "its history changed");
    cr_expect_eq(count("EXISTS t:{o} t:{a} %s", "t:{r}"), 3);
    cr_expect_eq(count("ZCARD %s", "t:retention:leased"), 0, "no claim left");
    cr_expect_eq(count("ZCARD %s", "t:retention"), 2, "a and o put back, 5 s later");
    reply = claim("6000", "256", NULL);
    cr_expect_eq(reply->elements, 0);
    freeReplyObject(reply);
    reply = claim("10001", "256", NULL);
    cr_assert_eq(reply->elements, 6);
    freeReplyObject(reply);
    cr_expect_eq(settle("1|a", "10101", "d", "1"), 1);
    cr_expect_eq(count("EXISTS t:{a} t:{a}:history t:{a}:journal %s", "x"), 0);
    cr_expect_eq(count("ZRANK t:idx:all %s", "a"), -1);
    cr_expect_eq(count("ZCARD %s", "t:idx:completed"), 0);
    cr_expect_eq(count("PTTL %s", "t:{a}:deleted") > 0, 1, "a tombstone with a TTL");
    cr_expect_eq(settle("1|o", "10101", "r", "0"), 2, "put back as asked");
    cr_expect_eq(count("ZCARD %s", "t:retention:leased"), 0);
}
