/* Partitions shared out through leases in Redis (workers/partlease.h,
 * partition_leases.lua): against a real redis-server, the shares, one owner
 * per partition at a time, a dead member's partitions moving once its lease
 * expires and a leaving one's at once; with real workers, a worker killed -9
 * whose partitions the other takes over while it keeps its own. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "lua_scripts.h"
#include "redis.h"
#include "stack.h"

#define PARTS 6

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

struct share {
    char held[64], surplus[64]; /* "0,1,2," */
    long long live, share;
};

static void list_of(const redisReply *list, char *buf, size_t n)
{
    size_t used = 0;

    buf[0] = '\0';
    for (size_t i = 0; i < list->elements && used < n; i++)
        used +=
            (size_t)snprintf(buf + used, n - used, "%lld,", list->element[i]->integer);
}

/* One call of the script as member me (leases of ttl_ms). */
static struct share lease(const char *me, int ttl_ms, bool leaving, const char *given)
{
    char ttl[16], parts[16];
    const char *argv[] = {"t:parts:{g:t}:members",
                          "t:parts:{g:t}:owners",
                          me,
                          ttl,
                          parts,
                          leaving ? "1" : "0",
                          given};
    struct share s = {0};
    redisReply *reply;

    snprintf(ttl, sizeof(ttl), "%d", ttl_ms);
    snprintf(parts, sizeof(parts), "%d", PARTS);
    reply = bt_redis_eval(r, bt_lua_partition_leases, 2, 7, argv, NULL);
    cr_assert(reply && reply->type == REDIS_REPLY_ARRAY && reply->elements == 4,
              "partition_leases: %s", reply && reply->str ? reply->str : "no array");
    list_of(reply->element[0], s.held, sizeof(s.held));
    list_of(reply->element[1], s.surplus, sizeof(s.surplus));
    s.live = reply->element[2]->integer;
    s.share = reply->element[3]->integer;
    freeReplyObject(reply);
    return s;
}

/* Each partition's owner from the hash ('-': none), as "aab---". */
static void owners(char *buf)
{
    memset(buf, '-', PARTS);
    buf[PARTS] = '\0';
    for (int p = 0; p < PARTS; p++) {
        redisReply *o = bt_redis_command(r, "HGET t:parts:{g:t}:owners %d", p);
        if (o && o->type == REDIS_REPLY_STRING)
            buf[p] = o->str[0];
        freeReplyObject(o);
    }
}

Test(partlease, the_members_share_the_partitions_and_each_has_one_owner, .init = setup,
     .fini = teardown, .timeout = 60)
{
    struct share a, b, c;
    char own[PARTS + 1];

    a = lease("a", 60000, false, "");
    cr_expect_str_eq(a.held, "0,1,2,3,4,5,", "alone, a takes all");
    /* b joins: its share is 3, but a owns them all until it gives some back */
    b = lease("b", 60000, false, "");
    cr_expect_str_eq(b.held, "", "b takes nothing a still owns");
    cr_expect_eq(b.share, 3);
    cr_expect_eq(b.live, 2);
    a = lease("a", 60000, false, "");
    cr_expect_str_eq(a.held, "0,1,2,3,4,5,", "a keeps them until it gave them back");
    cr_expect_str_eq(a.surplus, "3,4,5,", "beyond its share of 3");
    owners(own);
    cr_expect_str_eq(own, "aaaaaa");
    /* a stopped reading them and committed: it gives them back */
    a = lease("a", 60000, false, a.surplus);
    cr_expect_str_eq(a.held, "0,1,2,");
    cr_expect_str_eq(a.surplus, "");
    b = lease("b", 60000, false, "");
    cr_expect_str_eq(b.held, "3,4,5,");
    owners(own);
    cr_expect_str_eq(own, "aaabbb");
    /* c joins: the remainder of 6 / 3 is none; a and b give one each */
    c = lease("c", 60000, false, "");
    cr_expect_eq(c.share, 2);
    cr_expect_str_eq(c.held, "");
    a = lease("a", 60000, false, "");
    b = lease("b", 60000, false, "");
    cr_expect_str_eq(a.surplus, "2,");
    cr_expect_str_eq(b.surplus, "5,");
    lease("a", 60000, false, a.surplus);
    lease("b", 60000, false, b.surplus);
    c = lease("c", 60000, false, "");
    cr_expect_str_eq(c.held, "2,5,");
    owners(own);
    cr_expect_str_eq(own, "aacbbc");
    /* a partition given back by one that no longer owns it stays its owner's */
    lease("a", 60000, false, "5,");
    owners(own);
    cr_expect_str_eq(own, "aacbbc");
    /* c leaves: its partitions are free at once, and a and b take them */
    c = lease("c", 60000, true, "");
    cr_expect_str_eq(c.held, "");
    a = lease("a", 60000, false, "");
    b = lease("b", 60000, false, "");
    cr_expect_str_eq(a.held, "0,1,2,");
    cr_expect_str_eq(b.held, "3,4,5,");
}

/* a (leases of ttl_a) and b (ttl_b) end up with half the partitions each:
 * a takes all, b joins, a gives back its surplus, b takes it. */
static void share_half(int ttl_a, int ttl_b)
{
    struct share a, b;

    lease("a", ttl_a, false, "");
    lease("b", ttl_b, false, "");
    a = lease("a", ttl_a, false, "");
    lease("a", ttl_a, false, a.surplus);
    b = lease("b", ttl_b, false, "");
    cr_assert_str_eq(b.held, "3,4,5,");
}

Test(partlease, a_dead_members_partitions_move_once_its_lease_expired, .init = setup,
     .fini = teardown, .timeout = 60)
{
    struct share a, b;
    bool moved;

    share_half(300, 60000);
    /* a stops renewing (killed): b takes its partitions once its lease
     * expired, and not before */
    b = lease("b", 60000, false, "");
    cr_expect_str_eq(b.held, "3,4,5,", "a's lease still runs");
    BT_TEST_WAIT_UNTIL(moved, (b = lease("b", 60000, false, ""), b.live == 1), 5000);
    cr_assert(moved, "a's membership never expired");
    cr_expect_str_eq(b.held, "3,4,5,0,1,2,");
    cr_expect_eq(b.share, PARTS);
    /* a comes back (a pause, not a death): it owns nothing any more */
    a = lease("a", 300, false, "");
    cr_expect_str_eq(a.held, "", "a's old partitions are b's");
}

/* Redis away for longer than a lease (a restart): nobody could renew, so
 * the first member back must not take the others' partitions; one that
 * stays away after that still loses them. */
Test(partlease, time_without_any_call_does_not_count_against_the_members, .init = setup,
     .fini = teardown, .timeout = 60)
{
    struct share a, b;
    int64_t t0;
    bool ok;

    share_half(600, 600);
    /* no call at all for twice a lease: what a restart of Redis looks like */
    t0 = bt_redis_now_ms(r);
    BT_TEST_WAIT_UNTIL(ok, bt_redis_now_ms(r) - t0 > 1200, 5000);
    cr_assert(ok);
    b = lease("b", 600, false, "");
    cr_expect_eq(b.live, 2, "a's membership outlived the silence");
    cr_expect_str_eq(b.held, "3,4,5,");
    a = lease("a", 600, false, "");
    cr_expect_str_eq(a.held, "0,1,2,", "a kept its partitions");
    /* now only b calls: a's lease runs out as usual */
    BT_TEST_WAIT_UNTIL(ok, (b = lease("b", 600, false, ""), b.live == 1), 5000);
    cr_assert(ok, "a's membership never expired");
    cr_expect_str_eq(b.held, "3,4,5,0,1,2,");
}

/* Two real workers on the embedded cluster share the partitions through
 * leases; one is killed -9 mid-run: the other keeps reading its own and
 * takes the dead one's once its lease expired, and every instance ends. */
static struct bt_stack stack;

static void stack_setup(void)
{
    cr_assert_eq(bt_stack_start(&stack, NULL), 0, "cannot start the stack");
}

static void stack_teardown(void)
{
    bt_stack_stop(&stack);
}

Test(partlease, a_killed_workers_partitions_move_to_the_live_one, .init = stack_setup,
     .fini = stack_teardown, .timeout = 150)
{
    struct bt_stack_results res;
    char took[64], took_a[64];
    size_t before;
    pid_t a, b;
    bool ok;
    const int n = 60;

    a = bt_stack_worker(&stack, "flows", NULL);
    b = bt_stack_worker(&stack, "flows", NULL);
    cr_assert(a > 0 && b > 0);
    /* each worker took a share of both roles' partitions */
    snprintf(took_a, sizeof(took_a), "pid=%d msg=\"partition leases taken", (int)a);
    snprintf(took, sizeof(took), "pid=%d msg=\"partition leases taken", (int)b);
    BT_TEST_WAIT_UNTIL(ok,
                       bt_test_count_lines_with(stack.log, took_a) >= 2 &&
                           bt_test_count_lines_with(stack.log, took) >= 2,
                       20000);
    cr_assert(ok, "the workers never took their leases: see %s", stack.log);
    bt_stack_start_chains(&stack, "pl", 0, n / 2);
    bt_stack_results(&stack, &res, n / 2, 60000);
    cr_assert_eq(res.distinct, n / 2, "before the kill: %d of %d", res.distinct, n / 2);
    json_decref(res.by_id);
    before = bt_test_count_lines_with(stack.log, took);
    bt_test_kill9(a);
    bt_stack_start_chains(&stack, "pl", n / 2, n);
    bt_stack_results(&stack, &res, n, 60000);
    cr_assert_eq(res.distinct, n, "results: %d of %d", res.distinct, n);
    json_decref(res.by_id);
    cr_expect_gt(bt_test_count_lines_with(stack.log, took), before,
                 "b took the dead worker's share: see %s", stack.log);
    cr_assert_eq(bt_test_stop(b, BT_TEST_STOP_MS), 0);
}

/* A worker whose loop is busy longer than a lease (a batch waiting for the
 * brokers; here the failpoint slow-workflow-batch, 6 s) keeps its
 * partitions: its membership is renewed by a thread of its own. When the
 * renewal rode on the loop, the other worker took them meanwhile and sent
 * again the results the busy one still had on their way. */
Test(partlease, a_worker_busy_longer_than_a_lease_keeps_its_partitions,
     .init = stack_setup, .fini = stack_teardown, .timeout = 120)
{
    struct bt_stack_results res;
    char took_b[64], gave_a[64];
    size_t b_took, a_gave;
    pid_t a, b;
    bool ok;

    bt_stack_setenv(&stack, 0, "BATON_FAILPOINTS=slow-workflow-batch");
    a = bt_stack_worker(&stack, "flows", NULL);
    bt_stack_setenv(&stack, 0, NULL);
    b = bt_stack_worker(&stack, "flows", NULL);
    cr_assert(a > 0 && b > 0);
    snprintf(gave_a, sizeof(gave_a), "pid=%d msg=\"partition leases given up", (int)a);
    snprintf(took_b, sizeof(took_b), "pid=%d msg=\"partition leases taken", (int)b);
    BT_TEST_WAIT_UNTIL(ok,
                       bt_test_count_lines_with(stack.log, "leases taken") >= 4 &&
                           bt_test_count_lines_with(stack.log, took_b) >= 2,
                       20000);
    cr_assert(ok, "the workers never took their leases: see %s", stack.log);
    bt_stack_start_chains(&stack, "busy", 0, 20);
    BT_TEST_WAIT_UNTIL(
        ok, bt_test_count_lines_with(stack.log, "the batch waits 6 s") == 1, 20000);
    cr_assert(ok, "worker a never took a batch: see %s", stack.log);
    b_took = bt_test_count_lines_with(stack.log, took_b);
    a_gave = bt_test_count_lines_with(stack.log, gave_a);
    BT_TEST_WAIT_UNTIL(ok, bt_test_count_lines_with(stack.log, "the batch goes on") == 1,
                       20000);
    cr_assert(ok, "the failpoint never ended: see %s", stack.log);
    cr_expect_eq(bt_test_count_lines_with(stack.log, took_b), b_took,
                 "b took a's partitions while a was busy: see %s", stack.log);
    cr_expect_eq(bt_test_count_lines_with(stack.log, gave_a), a_gave,
                 "a gave up its partitions: see %s", stack.log);
    bt_stack_results(&stack, &res, 20, 60000);
    cr_assert_eq(res.distinct, 20, "results: %d of 20", res.distinct);
    cr_expect_eq(res.raw, 20, "a result came twice");
    json_decref(res.by_id);
    cr_assert_eq(bt_test_stop(a, BT_TEST_STOP_MS), 0);
    cr_assert_eq(bt_test_stop(b, BT_TEST_STOP_MS), 0);
}
