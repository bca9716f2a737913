/* The retention workload: W chains run to the end, then every finished
 * run kept is made due for deletion at once, as `baton delete --query`
 * does, and the schedulers archive and delete them. It measures how fast such a backlog
 * goes (runs a second) and what a run costs the scheduler and Redis: what a retention
 * that holds Redis's memory flat must keep up with (docs/reliability.md, "Retention and
 * the archive"). */
#include "archive.h"
#include "driver.h"

#define DRAIN_S 600.0 /* a backlog not gone by then fails the workload */

/* Finished runs kept in every shard's retention set, the leased included;
 * < 0 when Redis does not answer. */
static long long kept_runs(struct bench *b)
{
    char set[BT_STORE_KP_SIZE + 32], leased[BT_STORE_KP_SIZE + 32];
    long long n = 0;

    for (int shard = 0; shard < bt_store_shards(b->store) && n >= 0; shard++) {
        bt_archive_set_names(b->store, shard, set, leased, sizeof(set));
        for (int i = 0; i < 2 && n >= 0; i++) {
            redisReply *r =
                bt_redis_command(bt_store_redis(b->store), "ZCARD %s", i ? leased : set);
            n = r && r->type == REDIS_REPLY_INTEGER ? n + r->integer : -1;
            freeReplyObject(r);
        }
    }
    return n;
}

/* Makes every kept run due now (score 0 in its retention set, as `baton
 * delete --query` does per instance, without the query's own reads): a
 * ZRANGE and ZADDs of 1,000 members per shard and call. 0 or BT_EAGAIN. */
static int all_due(struct bench *b)
{
    char key[BT_STORE_KP_SIZE + 32], leased[BT_STORE_KP_SIZE + 32];
    struct bt_redis *r = bt_store_redis(b->store);
    int ret = 0;

    for (int shard = 0; shard < bt_store_shards(b->store) && !ret; shard++) {
        bt_archive_set_names(b->store, shard, key, leased, sizeof(key));
        redisReply *all = bt_redis_command(r, "ZRANGE %s 0 -1", key);
        if (!all || all->type != REDIS_REPLY_ARRAY)
            ret = BT_EAGAIN;
        for (size_t i = 0; !ret && i < all->elements; i += 1000) {
            size_t n = all->elements - i < 1000 ? all->elements - i : 1000;
            const char **argv = calloc(3 + 2 * n, sizeof(*argv));
            redisReply *added = NULL;
            if (!argv) {
                ret = BT_ENOMEM;
                break;
            }
            argv[0] = "ZADD";
            argv[1] = key;
            argv[2] = "XX";
            for (size_t j = 0; j < n; j++) {
                argv[3 + 2 * j] = "0";
                argv[4 + 2 * j] = all->element[i + j]->str;
            }
            added = bt_redis_argv(r, (int)(3 + 2 * n), argv, NULL);
            if (!added || added->type != REDIS_REPLY_INTEGER)
                ret = BT_EAGAIN;
            freeReplyObject(added);
            free(argv);
        }
        freeReplyObject(all);
    }
    return ret;
}

/* Waits until no run is due or leased any more (or DRAIN_S); 0 or BT_EIO. */
static int drained(struct bench *b)
{
    double t0 = bench_now_s();
    int64_t n;

    while ((n = bt_archive_backlog(b->store, bt_clock_now_ms())) != 0) {
        if (bench_interrupted || bench_now_s() - t0 > DRAIN_S) {
            fprintf(stderr,
                    "baton bench: retention: %lld runs not deleted after %.0f s\n",
                    (long long)n, bench_now_s() - t0);
            return BT_EIO;
        }
        bt_clock_sleep_ms(20);
    }
    return 0;
}

static void report(struct bench *b, const struct snapshot *s0, const struct snapshot *s1,
                   long long runs)
{
    double el = s1->t - s0->t;
    json_t *o = json_pack("{s:s}", "workload", "retention");

    bench_put(o, "runs", (double)runs, 0);
    bench_put(o, "elapsed_s", el, 2);
    bench_put(o, "runs_per_s", el > 0 ? (double)runs / el : 0, 0);
    for (int r = R_SCHEDULER; r <= R_REDIS; r++) {
        char key[64];
        snprintf(key, sizeof(key), "cpu_us_per_run_%s", bench_role_names[r]);
        bench_put(o, key,
                  runs > 0
                      ? 1e6 * bench_seconds(s1->ticks[r] - s0->ticks[r]) / (double)runs
                      : 0,
                  1);
    }
    bench_emit(b, o);
    json_decref(o);
}

int bench_run_retention(struct bench *b, const char *tag, int n)
{
    struct snapshot *s0 = calloc(1, sizeof(*s0)), *s1 = calloc(1, sizeof(*s1));
    long long before, after;
    int ret = BT_ENOMEM;

    if (!s0 || !s1)
        goto out;
    if ((ret = bench_run_workload(b, CHAIN, tag, n, b->opts.steps, false)))
        goto out;
    ret = BT_EAGAIN;
    if ((before = kept_runs(b)) < 0)
        goto out;
    ret = BT_EIO;
    if (before == 0) {
        fprintf(stderr, "baton bench: retention: no finished run is kept in Redis (a "
                        "retention shorter than the run, or --redis-shards other than "
                        "the stack's)\n");
        goto out;
    }
    bench_take_snapshot(b, s0, true);
    if ((ret = all_due(b)) || (ret = drained(b)))
        goto out;
    bench_take_snapshot(b, s1, true);
    ret = BT_EAGAIN;
    if ((after = kept_runs(b)) < 0)
        goto out;
    report(b, s0, s1, before - after);
    ret = 0;
out:
    if (ret == BT_EAGAIN)
        fprintf(stderr, "baton bench: retention: Redis did not answer\n");
    free(s0);
    free(s1);
    return ret;
}
