/* common/redis.c against a real redis-server: scripts by EVALSHA, pipelines,
 * atomicity across connections, kill -9 and restart, AUTH. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "harness.h"
#include "redis.h"
#include "sha1.h"

static struct bt_test_redis srv;
static struct bt_redis *r;

static const char echo_lua[] = "return {KEYS[1], ARGV[1], #KEYS, #ARGV}";

static struct bt_redis *connect_to(const char *password)
{
    char errstr[256] = "";
    struct bt_redis *h = bt_redis_new(srv.addr, NULL, password, errstr, sizeof(errstr));

    cr_assert_not_null(h, "bt_redis_new: %s", errstr);
    return h;
}

static void setup(void)
{
    cr_assert_eq(bt_test_redis_start(&srv), 0, "redis-server did not start");
    r = connect_to(NULL);
}

static void teardown(void)
{
    bt_redis_destroy(r);
    r = NULL;
    bt_test_redis_stop(&srv);
}

TestSuite(redis, .init = setup, .fini = teardown, .timeout = 60);

static void expect_str(redisReply *reply, const char *want)
{
    cr_assert_not_null(reply, "no reply: redis unreachable");
    cr_assert(reply->type == REDIS_REPLY_STRING || reply->type == REDIS_REPLY_STATUS,
              "reply type %d, want a string %s", reply->type, want);
    cr_assert_eq(reply->len, strlen(want));
    cr_assert_str_eq(reply->str, want);
    freeReplyObject(reply);
}

static void expect_int(redisReply *reply, long long want)
{
    cr_assert_not_null(reply, "no reply: redis unreachable");
    cr_assert_eq(reply->type, REDIS_REPLY_INTEGER, "reply type %d (%s), want %lld",
                 reply->type, reply->str ? reply->str : "", want);
    cr_assert_eq(reply->integer, want);
    freeReplyObject(reply);
}

static void expect_error(redisReply *reply, const char *prefix)
{
    cr_assert_not_null(reply, "no reply: redis unreachable");
    cr_assert_eq(reply->type, REDIS_REPLY_ERROR, "reply type %d, want error %s",
                 reply->type, prefix);
    cr_assert_eq(strncmp(reply->str, prefix, strlen(prefix)), 0, "error %s, want %s",
                 reply->str, prefix);
    freeReplyObject(reply);
}

/* The reply echo_lua gives for KEYS = {key}, ARGV = {arg}. */
static void expect_echo(redisReply *reply, const char *key, const char *arg)
{
    cr_assert_not_null(reply, "no reply: redis unreachable");
    cr_assert_eq(reply->type, REDIS_REPLY_ARRAY, "reply type %d (%s)", reply->type,
                 reply->str ? reply->str : "");
    cr_assert_eq(reply->elements, 4);
    cr_assert_str_eq(reply->element[0]->str, key);
    cr_assert_str_eq(reply->element[1]->str, arg);
    cr_assert_eq(reply->element[2]->integer, 1);
    cr_assert_eq(reply->element[3]->integer, 1);
    freeReplyObject(reply);
}

static redisReply *echo(struct bt_redis *h, const char *key, const char *arg)
{
    return bt_redis_eval(h, echo_lua, 1, 2, (const char *[]){key, arg}, NULL);
}

Test(redis, runs_commands_and_returns_error_replies_as_they_are)
{
    const char *set[] = {"SET", "bin", "a\0b"};
    const size_t setlen[] = {3, 3, 3};
    redisReply *reply;

    expect_str(bt_redis_argv(r, 3, set, setlen), "OK");
    reply = bt_redis_command(r, "GET %s", "bin");
    cr_assert_not_null(reply);
    cr_assert_eq(reply->len, 3);
    cr_assert_eq(memcmp(reply->str, "a\0b", 3), 0, "binary value not kept");
    freeReplyObject(reply);
    expect_int(bt_redis_command(r, "INCR n"), 1);
    expect_error(bt_redis_command(r, "LPUSH bin x"), "WRONGTYPE");
    expect_error(bt_redis_command(r, "NOSUCHCOMMAND"), "ERR");
    expect_int(bt_redis_command(r, "INCR n"), 2);
    cr_assert_eq(bt_redis_round_trips(r), 6);
}

Test(redis, rejects_addresses_that_are_not_host_and_port)
{
    const char *bad[] = {
        "localhost",       ":6379",          "localhost:",  "localhost:0",
        "localhost:65536", "localhost:12ab", "localhost:-1"};
    char errstr[128];

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        errstr[0] = '\0';
        cr_assert_null(bt_redis_new(bad[i], NULL, NULL, errstr, sizeof(errstr)), "%s",
                       bad[i]);
        cr_assert(strstr(errstr, bad[i]), "errstr \"%s\" does not name %s", errstr,
                  bad[i]);
    }
    bt_redis_destroy(NULL);
}

Test(redis, runs_scripts_by_evalsha_and_reloads_after_script_flush)
{
    char sha[41];
    redisReply *reply;

    bt_sha1_hex(echo_lua, strlen(echo_lua), sha);
    expect_echo(echo(r, "k", "v"), "k", "v");
    /* The first call meets NOSCRIPT, loads and runs again. */
    cr_assert_eq(bt_redis_round_trips(r), 3);
    reply = bt_redis_command(r, "SCRIPT EXISTS %s", sha);
    cr_assert_not_null(reply);
    cr_assert_eq(reply->type, REDIS_REPLY_ARRAY);
    cr_assert_eq(reply->element[0]->integer, 1, "our sha1 is not the one redis computed");
    freeReplyObject(reply);

    expect_echo(echo(r, "k2", "v2"), "k2", "v2");
    cr_assert_eq(bt_redis_round_trips(r), 5, "a loaded script costs one round trip");

    expect_str(bt_redis_command(r, "SCRIPT FLUSH"), "OK");
    expect_echo(echo(r, "k3", "v3"), "k3", "v3");
    cr_assert_eq(bt_redis_round_trips(r), 9);

    reply = bt_redis_command(r, "INFO commandstats");
    cr_assert_not_null(reply);
    cr_assert(strstr(reply->str, "cmdstat_evalsha:calls="), "%s", reply->str);
    cr_assert_null(strstr(reply->str, "cmdstat_eval:"), "a script was sent by EVAL");
    freeReplyObject(reply);
}

Test(redis, returns_the_compile_error_of_a_broken_script_in_calls_and_pipelines)
{
    static const char broken_lua[] = "return +";
    redisReply *reply;

    expect_error(bt_redis_eval(r, broken_lua, 0, 0, NULL, NULL), "ERR");
    cr_assert_eq(bt_redis_append_eval(r, broken_lua, 0, 0, NULL, NULL), 0);
    cr_assert_eq(bt_redis_append_argv(r, 2, (const char *[]){"INCR", "n"}, NULL), 0);
    cr_assert_eq(bt_redis_reply(r, &reply), 0);
    expect_error(reply, "ERR");
    cr_assert_eq(bt_redis_reply(r, &reply), 0);
    expect_int(reply, 1);
}

Test(redis, pipeline_returns_one_reply_per_command_in_order)
{
    enum { N = 200 };
    char arg[N][16];
    redisReply *reply;
    long long incr = 0;

    expect_str(bt_redis_command(r, "SET str x"), "OK");
    for (int i = 0; i < N; i++) {
        snprintf(arg[i], sizeof(arg[i]), "%d", i);
        if (i % 4 == 0)
            cr_assert_eq(bt_redis_append_eval(r, echo_lua, 1, 2,
                                              (const char *[]){"key", arg[i]}, NULL),
                         0);
        else if (i % 4 == 3)
            cr_assert_eq(
                bt_redis_append_argv(r, 3, (const char *[]){"LPUSH", "str", "x"}, NULL),
                0);
        else
            cr_assert_eq(bt_redis_append_argv(r, 2, (const char *[]){"INCR", "n"}, NULL),
                         0);
    }
    for (int i = 0; i < N; i++) {
        cr_assert_eq(bt_redis_reply(r, &reply), 0, "reply %d", i);
        if (i % 4 == 0)
            expect_echo(reply, "key", arg[i]);
        else if (i % 4 == 3)
            expect_error(reply, "WRONGTYPE");
        else
            expect_int(reply, ++incr);
    }
    /* SET, then the whole batch in one: the script was loaded in the same write. */
    cr_assert_eq(bt_redis_round_trips(r), 2);
}

Test(redis, pipeline_reruns_scripts_after_script_flush_and_keeps_reply_order)
{
    redisReply *reply;

    expect_echo(echo(r, "k", "v"), "k", "v");
    expect_str(bt_redis_command(r, "SCRIPT FLUSH"), "OK");
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(
            bt_redis_append_eval(r, echo_lua, 1, 2, (const char *[]){"k", "v"}, NULL), 0);
        cr_assert_eq(bt_redis_append_argv(r, 2, (const char *[]){"INCR", "n"}, NULL), 0);
    }
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(bt_redis_reply(r, &reply), 0);
        expect_echo(reply, "k", "v");
        cr_assert_eq(bt_redis_reply(r, &reply), 0);
        expect_int(reply, i + 1);
    }
    /* Replies may be read while more commands are appended. */
    cr_assert_eq(bt_redis_append_argv(r, 2, (const char *[]){"INCR", "n"}, NULL), 0);
    cr_assert_eq(bt_redis_append_argv(r, 2, (const char *[]){"INCR", "n"}, NULL), 0);
    cr_assert_eq(bt_redis_reply(r, &reply), 0);
    expect_int(reply, 4);
    cr_assert_eq(bt_redis_append_argv(r, 2, (const char *[]){"INCR", "n"}, NULL), 0);
    cr_assert_eq(bt_redis_reply(r, &reply), 0);
    expect_int(reply, 5);
    cr_assert_eq(bt_redis_reply(r, &reply), 0);
    expect_int(reply, 6);
}

Test(redis, connects_lazily_so_a_client_can_start_before_its_redis)
{
    struct bt_redis *early;

    bt_test_redis_kill(&srv);
    early = connect_to(NULL);
    cr_assert_null(bt_redis_command(early, "PING"));
    cr_assert_eq(bt_test_redis_restart(&srv), 0);
    expect_str(bt_redis_command(early, "PING"), "PONG");
    bt_redis_destroy(early);
}

Test(redis, reconnects_after_redis_server_is_killed_and_restarted)
{
    expect_str(bt_redis_command(r, "SET durable yes"), "OK");
    expect_echo(echo(r, "k", "v"), "k", "v");

    bt_test_redis_kill(&srv);
    cr_assert_null(bt_redis_command(r, "GET durable"), "the dead server answered");
    cr_assert_null(echo(r, "k", "v"), "the dead server answered");

    cr_assert_eq(bt_test_redis_restart(&srv), 0);
    /* The same handle, not a new one; appendfsync always kept the write, and
     * the script cache died with the server. */
    expect_str(bt_redis_command(r, "GET durable"), "yes");
    expect_echo(echo(r, "k", "v"), "k", "v");
}

Test(redis, pipeline_loses_its_batch_with_eagain_when_the_server_dies)
{
    redisReply *reply = NULL;

    expect_str(bt_redis_command(r, "PING"), "PONG");
    for (int i = 0; i < 3; i++)
        cr_assert_eq(bt_redis_append_argv(r, 2, (const char *[]){"INCR", "n"}, NULL), 0);
    bt_test_redis_kill(&srv);
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(bt_redis_reply(r, &reply), BT_EAGAIN, "reply %d", i);
        cr_assert_null(reply);
    }

    cr_assert_eq(bt_test_redis_restart(&srv), 0);
    for (int i = 0; i < 3; i++)
        cr_assert_eq(bt_redis_append_argv(r, 2, (const char *[]){"INCR", "n"}, NULL), 0);
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(bt_redis_reply(r, &reply), 0);
        expect_int(reply, i + 1);
    }
}

Test(redis, authenticates_with_a_password_and_is_refused_without_one)
{
    struct bt_redis *none, *wrong, *right;

    /* r stays authenticated: it connected before there was a password. */
    expect_str(bt_redis_command(r, "CONFIG SET requirepass s3cret"), "OK");
    none = connect_to(NULL);
    wrong = connect_to("guess");
    right = connect_to("s3cret");

    expect_error(bt_redis_command(none, "SET k v"), "NOAUTH");
    expect_error(bt_redis_command(wrong, "SET k v"), "NOAUTH");
    expect_str(bt_redis_command(right, "SET k v"), "OK");
    expect_echo(echo(right, "k", "v"), "k", "v");

    bt_redis_destroy(none);
    bt_redis_destroy(wrong);
    bt_redis_destroy(right);
}

/* Four clients move units from a to b with a script while a fifth reads both
 * keys: a script runs whole, so the reader never sees a unit in flight and no
 * move is lost. */
enum { MOVERS = 4, MOVES = 2000, TOTAL = 1000000 };

static const char move_lua[] = "local from = redis.call('DECR', KEYS[1])\n"
                               "local to = redis.call('INCR', KEYS[2])\n"
                               "redis.call('HINCRBY', KEYS[3], ARGV[1], 1)\n"
                               "return from + to\n";

struct mover {
    pthread_t thread;
    char id[16];
    int bad_replies;
    uint64_t round_trips;
};

static pthread_barrier_t start_line;
static atomic_bool movers_done;

static void *mover_main(void *arg)
{
    struct mover *m = arg;
    char errstr[128];
    struct bt_redis *h = bt_redis_new(srv.addr, NULL, NULL, errstr, sizeof(errstr));

    pthread_barrier_wait(&start_line);
    for (int i = 0; i < MOVES; i++) {
        redisReply *reply = bt_redis_eval(
            h, move_lua, 3, 4, (const char *[]){"a", "b", "moves", m->id}, NULL);

        if (!reply || reply->type != REDIS_REPLY_INTEGER || reply->integer != TOTAL)
            m->bad_replies++;
        freeReplyObject(reply);
    }
    m->round_trips = h ? bt_redis_round_trips(h) : 0;
    bt_redis_destroy(h);
    return NULL;
}

struct reader {
    pthread_t thread;
    long reads, broken;
};

static void *reader_main(void *arg)
{
    struct reader *rd = arg;
    char errstr[128];
    struct bt_redis *h = bt_redis_new(srv.addr, NULL, NULL, errstr, sizeof(errstr));

    pthread_barrier_wait(&start_line);
    while (h && !atomic_load(&movers_done)) {
        redisReply *reply = bt_redis_command(h, "MGET a b");

        rd->reads++;
        if (!reply || reply->type != REDIS_REPLY_ARRAY || reply->elements != 2 ||
            !reply->element[0]->str || !reply->element[1]->str ||
            atoll(reply->element[0]->str) + atoll(reply->element[1]->str) != TOTAL)
            rd->broken++;
        freeReplyObject(reply);
    }
    bt_redis_destroy(h);
    return NULL;
}

Test(redis, script_updates_are_atomic_across_clients)
{
    struct mover movers[MOVERS] = {0};
    struct reader rd = {0};
    redisReply *reply;

    expect_str(bt_redis_command(r, "SET a %d", TOTAL), "OK");
    expect_str(bt_redis_command(r, "SET b 0"), "OK");
    pthread_barrier_init(&start_line, NULL, MOVERS + 1);
    atomic_store(&movers_done, false);
    for (int i = 0; i < MOVERS; i++) {
        snprintf(movers[i].id, sizeof(movers[i].id), "mover%d", i);
        cr_assert_eq(pthread_create(&movers[i].thread, NULL, mover_main, &movers[i]), 0);
    }
    cr_assert_eq(pthread_create(&rd.thread, NULL, reader_main, &rd), 0);
    for (int i = 0; i < MOVERS; i++)
        pthread_join(movers[i].thread, NULL);
    atomic_store(&movers_done, true);
    pthread_join(rd.thread, NULL);
    pthread_barrier_destroy(&start_line);

    for (int i = 0; i < MOVERS; i++) {
        cr_assert_eq(movers[i].bad_replies, 0, "%s saw a broken sum", movers[i].id);
        /* Two more when this mover was the one to load the script. */
        cr_assert(movers[i].round_trips >= MOVES && movers[i].round_trips <= MOVES + 2,
                  "%s made %llu round trips", movers[i].id,
                  (unsigned long long)movers[i].round_trips);
        expect_str(bt_redis_command(r, "HGET moves %s", movers[i].id), "2000");
    }
    cr_assert_gt(rd.reads, 0);
    cr_assert_eq(rd.broken, 0, "%ld of %ld reads saw a unit in flight", rd.broken,
                 rd.reads);
    reply = bt_redis_command(r, "MGET a b");
    cr_assert_not_null(reply);
    cr_assert_eq(atoll(reply->element[0]->str), TOTAL - MOVERS * MOVES);
    cr_assert_eq(atoll(reply->element[1]->str), MOVERS * MOVES);
    freeReplyObject(reply);
}
