/* bt_redis on a real Redis Cluster (3 masters, 3 replicas, on loopback):
 * each key on its master, pipelines across masters in order, ASK and MOVED
 * while a slot migrates, pub/sub, and a master killed mid-run. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "err.h"
#include "harness.h"
#include "redis.h"

static struct bt_test_rcluster cl;
static struct bt_redis *r;

static struct bt_redis *connect_cluster(void)
{
    char errstr[256] = "";
    struct bt_redis *h =
        bt_redis_new_cluster(cl.seeds, NULL, NULL, errstr, sizeof(errstr));

    cr_assert_not_null(h, "bt_redis_new_cluster: %s", errstr);
    return h;
}

static void setup(void)
{
    cr_assert_eq(bt_test_rcluster_start(&cl, false), 0,
                 "the redis cluster did not start");
    r = connect_cluster();
}

/* with a replica per master, for the failover */
static void setup_replicas(void)
{
    cr_assert_eq(bt_test_rcluster_start(&cl, true), 0, "the redis cluster did not start");
    r = connect_cluster();
}

static void teardown(void)
{
    bt_redis_destroy(r);
    r = NULL;
    bt_test_rcluster_stop(&cl);
}

/* each test names its .init: a suite's would run before a test's own */
TestSuite(redis_cluster, .fini = teardown, .timeout = 120);

/* A command straight to one node, past the router. */
static redisReply *on_node(int node, const char *fmt, ...)
{
    struct timeval tv = {.tv_sec = 1};
    redisContext *rc = redisConnectWithTimeout("127.0.0.1", cl.node[node].port, tv);
    redisReply *reply = NULL;
    va_list ap;

    cr_assert(rc && !rc->err, "cannot reach node %d", node);
    va_start(ap, fmt);
    reply = redisvCommand(rc, fmt, ap);
    va_end(ap);
    redisFree(rc);
    cr_assert_not_null(reply);
    return reply;
}

static void expect_str(redisReply *reply, const char *want)
{
    cr_assert_not_null(reply, "no reply: redis unreachable");
    cr_assert(reply->type == REDIS_REPLY_STRING || reply->type == REDIS_REPLY_STATUS,
              "reply type %d (%s), want \"%s\"", reply->type,
              reply->str ? reply->str : "", want);
    cr_assert_str_eq(reply->str, want);
    freeReplyObject(reply);
}

static long long int_of(redisReply *reply)
{
    long long n;

    cr_assert_not_null(reply, "no reply: redis unreachable");
    cr_assert_eq(reply->type, REDIS_REPLY_INTEGER, "reply type %d (%s)", reply->type,
                 reply->str ? reply->str : "");
    n = reply->integer;
    freeReplyObject(reply);
    return n;
}

Test(redis_cluster, each_key_goes_to_the_master_of_its_slot, .init = setup)
{
    char key[32], val[32];
    int per_master[BT_TEST_RCLUSTER_NODES] = {0}, masters = 0;

    for (int i = 0; i < 90; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        snprintf(val, sizeof(val), "v%d", i);
        freeReplyObject(bt_redis_argv(r, 3, (const char *[]){"SET", key, val}, NULL));
    }
    for (int i = 0; i < 90; i++) {
        int m;

        snprintf(key, sizeof(key), "k%d", i);
        snprintf(val, sizeof(val), "v%d", i);
        m = bt_test_rcluster_master_of(&cl, key);
        cr_assert_geq(m, 0);
        /* there, and only there: GET on that node answers it */
        expect_str(on_node(m, "GET %s", key), val);
        expect_str(bt_redis_command(r, "GET %s", key), val);
        per_master[m]++;
    }
    for (int i = 0; i < cl.n; i++)
        masters += per_master[i] > 0;
    cr_expect_eq(masters, 3, "90 keys on %d masters", masters);
}

static const char counter_lua[] = "return redis.call('INCRBY', KEYS[1], ARGV[1])";

Test(redis_cluster, a_pipeline_across_masters_answers_in_order, .init = setup)
{
    long long want[7] = {0};
    char key[16], by[16];
    enum { N = 700 };

    /* counters on different slots, bumped in turn by commands and a script:
     * each reply is the running sum of its counter, so an answer out of
     * order shows */
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < N; i++) {
            snprintf(key, sizeof(key), "c{%d}", i % 7);
            snprintf(by, sizeof(by), "%d", i % 5 + 1);
            cr_assert_eq(i % 2 ? bt_redis_append_argv(
                                     r, 3, (const char *[]){"INCRBY", key, by}, NULL)
                               : bt_redis_append_eval(r, counter_lua, 1, 2,
                                                      (const char *[]){key, by}, NULL),
                         0);
        }
        if (round == 1)
            cr_assert_eq(bt_redis_flush(r), 0);
        for (int i = 0; i < N; i++) {
            redisReply *reply = NULL;

            cr_assert_eq(bt_redis_reply(r, &reply), 0);
            want[i % 7] += i % 5 + 1;
            cr_assert_eq(int_of(reply), want[i % 7], "reply %d of round %d", i, round);
        }
    }
}

/* A node's id (CLUSTER MYID). */
static void node_id(int node, char *id, size_t n)
{
    redisReply *reply = on_node(node, "CLUSTER MYID");

    snprintf(id, n, "%s", reply->str);
    freeReplyObject(reply);
}

static int other_master(int than)
{
    for (int i = 0; i < cl.n; i++) {
        redisReply *role;
        bool master;

        if (i == than)
            continue;
        role = on_node(i, "ROLE");
        master = strcmp(role->element[0]->str, "master") == 0;
        freeReplyObject(role);
        if (master)
            return i;
    }
    return -1;
}

Test(redis_cluster, follows_ask_and_moved_while_a_slot_migrates, .init = setup)
{
    const char *key = "migrating";
    char src_id[64], dst_id[64], port[16];
    long long slot;
    int src, dst;
    redisReply *reply = NULL;

    expect_str(bt_redis_command(r, "SET %s %s", key, "before"), "OK");
    src = bt_test_rcluster_master_of(&cl, key);
    dst = other_master(src);
    cr_assert(src >= 0 && dst >= 0);
    node_id(src, src_id, sizeof(src_id));
    node_id(dst, dst_id, sizeof(dst_id));
    reply = on_node(src, "CLUSTER KEYSLOT %s", key);
    slot = reply->integer;
    freeReplyObject(reply);

    /* the key moves, the slot not yet: the source answers ASK */
    freeReplyObject(on_node(dst, "CLUSTER SETSLOT %lld IMPORTING %s", slot, src_id));
    freeReplyObject(on_node(src, "CLUSTER SETSLOT %lld MIGRATING %s", slot, dst_id));
    snprintf(port, sizeof(port), "%d", cl.node[dst].port);
    freeReplyObject(on_node(src, "MIGRATE 127.0.0.1 %s %s 0 5000", port, key));
    reply = on_node(src, "GET %s", key);
    cr_assert_eq(reply->type, REDIS_REPLY_ERROR);
    cr_assert(strncmp(reply->str, "ASK ", 4) == 0, "the source says %s", reply->str);
    freeReplyObject(reply);
    expect_str(bt_redis_command(r, "GET %s", key), "before");
    cr_assert_eq(bt_redis_append_argv(r, 2, (const char *[]){"GET", key}, NULL), 0);
    cr_assert_eq(bt_redis_append_argv(r, 2, (const char *[]){"GET", "k-elsewhere"}, NULL),
                 0);
    cr_assert_eq(bt_redis_reply(r, &reply), 0);
    expect_str(reply, "before");
    cr_assert_eq(bt_redis_reply(r, &reply), 0);
    cr_assert_eq(reply->type, REDIS_REPLY_NIL);
    freeReplyObject(reply);

    /* the slot moves: the source answers MOVED, and the router keeps to the
     * new owner */
    for (int i = 0; i < cl.n; i++)
        freeReplyObject(on_node(i, "CLUSTER SETSLOT %lld NODE %s", slot, dst_id));
    reply = on_node(src, "GET %s", key);
    cr_assert(reply->type == REDIS_REPLY_ERROR && strncmp(reply->str, "MOVED ", 6) == 0);
    freeReplyObject(reply);
    expect_str(bt_redis_command(r, "SET %s %s", key, "after"), "OK");
    expect_str(on_node(dst, "GET %s", key), "after");
    expect_str(bt_redis_command(r, "GET %s", key), "after");
}

Test(redis_cluster, a_subscriber_hears_a_publish_made_on_another_node, .init = setup)
{
    struct bt_redis *sub = connect_cluster();
    long long heard = 0;
    int n = 0;

    cr_assert_eq(bt_redis_subscribe(sub, "news"), 0);
    /* PUBLISH goes to the channel's slot; the cluster bus carries it to the
     * subscriber's node, so send until one comes through */
    for (int i = 0; i < 50 && n == 0; i++) {
        heard += int_of(bt_redis_command(r, "PUBLISH news %d", i));
        n = bt_redis_wait_message(sub, 100);
    }
    cr_expect_gt(n, 0, "no message came");
    cr_expect_gt(heard, 0, "no node counted the subscriber");
    bt_redis_destroy(sub);
}

/* The replica of master m (from CLUSTER SLOTS); -1 when none. */
static int replica_of(int m)
{
    redisReply *slots = on_node(m, "CLUSTER SLOTS");
    int port = -1;

    for (size_t i = 0; i < slots->elements; i++) {
        const redisReply *e = slots->element[i];

        if (e->elements >= 4 && e->element[2]->element[1]->integer == cl.node[m].port)
            port = (int)e->element[3]->element[1]->integer;
    }
    freeReplyObject(slots);
    for (int i = 0; i < cl.n; i++)
        if (cl.node[i].port == port)
            return i;
    return -1;
}

/* Whether the replica holds key = want (READONLY: a replica answers reads). */
static bool replica_has(int replica, const char *key, const char *want)
{
    struct timeval tv = {.tv_sec = 1};
    redisContext *rc = redisConnectWithTimeout("127.0.0.1", cl.node[replica].port, tv);
    redisReply *ro = rc && !rc->err ? redisCommand(rc, "READONLY") : NULL;
    redisReply *got = ro ? redisCommand(rc, "GET %s", key) : NULL;
    bool ok = got && got->type == REDIS_REPLY_STRING && strcmp(got->str, want) == 0;

    freeReplyObject(ro);
    freeReplyObject(got);
    redisFree(rc);
    return ok;
}

static bool reads(const char *key, const char *want)
{
    redisReply *reply = bt_redis_command(r, "GET %s", key);
    bool ok = reply && reply->type == REDIS_REPLY_STRING && strcmp(reply->str, want) == 0;

    freeReplyObject(reply);
    return ok;
}

Test(redis_cluster, a_killed_master_is_replaced_by_its_replica_without_losing_a_write,
     .init = setup_replicas)
{
    const char *key = "precious";
    int m, replica;
    bool ok;

    BT_TEST_RELEASE_ONLY(); /* CI time */

    expect_str(bt_redis_command(r, "SET %s %s", key, "kept"), "OK");
    m = bt_test_rcluster_master_of(&cl, key);
    replica = replica_of(m);
    cr_assert(m >= 0 && replica >= 0, "master %d, replica %d", m, replica);
    /* replication is asynchronous: kill the master once the replica has it */
    BT_TEST_WAIT_UNTIL(ok, replica_has(replica, key, "kept"), 10000);
    cr_assert(ok, "the replica never got the write");

    bt_test_redis_kill(&cl.node[m]);
    cr_assert_eq(bt_test_rcluster_await_failover(&cl, m, 30000), 0, "no failover");
    /* calls answer NULL (unreachable) until the router reads the new map */
    BT_TEST_WAIT_UNTIL(ok, reads(key, "kept"), 10000);
    cr_assert(ok, "the value is not read back after the failover");
    cr_expect_eq(bt_test_rcluster_master_of(&cl, key), replica);
    /* and a pipeline touching every master works again */
    for (int i = 0; i < 30; i++) {
        char k[16];

        snprintf(k, sizeof(k), "after%d", i);
        cr_assert_eq(bt_redis_append_argv(r, 3, (const char *[]){"SET", k, "x"}, NULL),
                     0);
    }
    for (int i = 0; i < 30; i++) {
        redisReply *reply = NULL;

        cr_assert_eq(bt_redis_reply(r, &reply), 0, "reply %d lost", i);
        expect_str(reply, "OK");
    }
}

/* Writes key and a key on another master (into other), then kills key's
 * master: the connection to it breaks, and the map, read again, still names
 * it (no failover within the node timeout, 1 s). Returns that master. */
static int kill_master_of(const char *key, char *other, size_t n)
{
    int m = bt_test_rcluster_master_of(&cl, key);

    cr_assert_geq(m, 0);
    other[0] = '\0';
    for (int i = 0; !other[0] && i < 100; i++) {
        snprintf(other, n, "elsewhere%d", i);
        if (bt_test_rcluster_master_of(&cl, other) == m)
            other[0] = '\0';
    }
    cr_assert(other[0], "no key on another master");
    expect_str(bt_redis_command(r, "SET %s %s", key, "before"), "OK");
    expect_str(bt_redis_command(r, "SET %s %s", other, "before"), "OK");
    bt_test_redis_kill(&cl.node[m]);
    cr_assert_null(bt_redis_command(r, "GET %s", key));
    return m;
}

/* A batch flushed before its replies are read (as the worker's commits
 * are) while one master is dead and the map still names it: that master's
 * part cannot be written, and the whole batch is lost, each reply
 * BT_EAGAIN, never a reply taken for another's (the WAIT that follows each
 * master's part was once appended after the failed write and read as the
 * first command's answer, and the next read asserted). */
Test(redis_cluster, a_batch_flushed_to_a_dead_master_is_lost_whole,
     .init = setup_replicas)
{
    const char *key = "doomed";
    char other[32];
    int m;
    bool ok;

    BT_TEST_RELEASE_ONLY(); /* CI time */

    bt_redis_set_wait(r, 1000); /* as the programs do (--redis-wait-ms) */
    m = kill_master_of(key, other, sizeof(other));
    for (int round = 0; round < 2; round++) {
        cr_assert_eq(bt_redis_append_argv(r, 3, (const char *[]){"SET", key, "a"}, NULL),
                     0);
        cr_assert_eq(
            bt_redis_append_argv(r, 3, (const char *[]){"SET", other, "b"}, NULL), 0);
        cr_assert_eq(bt_redis_append_argv(r, 3, (const char *[]){"SET", key, "c"}, NULL),
                     0);
        cr_assert_eq(bt_redis_flush(r), 0);
        for (int i = 0; i < 3; i++) {
            redisReply *reply = NULL;
            cr_assert_eq(bt_redis_reply(r, &reply), BT_EAGAIN, "reply %d of round %d", i,
                         round);
            cr_assert_null(reply);
        }
    }
    /* and once the replica took over, the same batch goes through */
    cr_assert_eq(bt_test_rcluster_await_failover(&cl, m, 30000), 0, "no failover");
    BT_TEST_WAIT_UNTIL(ok, reads(key, "before"), 10000);
    cr_assert(ok, "the value is not read back after the failover");
    cr_assert_eq(bt_redis_append_argv(r, 3, (const char *[]){"SET", key, "a"}, NULL), 0);
    cr_assert_eq(bt_redis_append_argv(r, 3, (const char *[]){"SET", other, "b"}, NULL),
                 0);
    cr_assert_eq(bt_redis_flush(r), 0);
    for (int i = 0; i < 2; i++) {
        redisReply *reply = NULL;
        cr_assert_eq(bt_redis_reply(r, &reply), 0, "reply %d after the failover", i);
        expect_str(reply, "OK");
    }
}

/* A batch sent in parts, each flushed as soon as it is appended (the
 * worker's commits go out part by part while the next part is replayed),
 * while one master is dead and the map still names it: the first part's
 * write to that master fails, and the next part appended there must not
 * take its place (its replies were once read as the first part's, and the
 * read past them asserted). The whole batch is lost, each reply BT_EAGAIN. */
Test(redis_cluster, a_batch_flushed_in_parts_to_a_dead_master_is_lost_whole,
     .init = setup_replicas)
{
    const char *key = "doomed";
    char other[32];

    BT_TEST_RELEASE_ONLY(); /* CI time */

    bt_redis_set_wait(r, 1000);
    kill_master_of(key, other, sizeof(other));
    for (int round = 0; round < 2; round++) {
        for (int part = 0; part < 3; part++) {
            cr_assert_eq(
                bt_redis_append_argv(r, 3, (const char *[]){"SET", key, "a"}, NULL), 0);
            cr_assert_eq(
                bt_redis_append_argv(r, 3, (const char *[]){"SET", other, "b"}, NULL), 0);
            cr_assert_eq(bt_redis_flush(r), 0);
        }
        for (int i = 0; i < 6; i++) {
            redisReply *reply = NULL;
            cr_assert_eq(bt_redis_reply(r, &reply), BT_EAGAIN, "reply %d of round %d", i,
                         round);
            cr_assert_null(reply);
        }
    }
}

Test(redis_cluster, a_scan_visits_every_master, .init = setup)
{
    char key[32];
    int found = 0, masters;

    for (int i = 0; i < 60; i++) {
        snprintf(key, sizeof(key), "scan:%d", i);
        expect_str(bt_redis_command(r, "SET %s x", key), "OK");
    }
    masters = bt_redis_masters(r);
    cr_assert_eq(masters, 3);
    for (int m = 0; m < masters; m++) {
        char cursor[32] = "0";

        do {
            const char *argv[] = {"SCAN", cursor, "MATCH", "scan:*", "COUNT", "100"};
            redisReply *reply = bt_redis_master_argv(r, m, 6, argv, NULL);

            cr_assert(reply && reply->type == REDIS_REPLY_ARRAY);
            snprintf(cursor, sizeof(cursor), "%s", reply->element[0]->str);
            found += (int)reply->element[1]->elements;
            freeReplyObject(reply);
        } while (strcmp(cursor, "0"));
    }
    cr_expect_eq(found, 60, "SCAN over the masters found %d of 60 keys", found);
}
