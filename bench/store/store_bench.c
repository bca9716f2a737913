/* Redis alone, no Kafka, no worker: the commits a three-step chain makes
 * (bt_store_commit and bt_store_forget as the worker calls them, records and
 * commands of a bench_chain's size), for B instances at a time, after Redis
 * already holds N finished instances. Prints redis-server CPU per step
 * (INFO cpu) and EVALSHA µs per call (INFO commandstats): whether a step
 * costs more when Redis holds more, without the noise of a whole stack.
 *
 *   build/bin/baton-store-bench ADDR N M [drop]
 *
 * N instances preloaded, M measured; "drop": the global sorted sets
 * (indexes, retention, outbox index) emptied after the preload, to tell
 * their part from the keyspace's.
 *
 * Only a Redis of its own: it writes under the key prefix "bt". Each run
 * names its instances after its pid, so that runs in turn on one Redis each
 * commit new instances (and a commit refused as a conflict, which would
 * measure nothing, ends the run with an error). */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "instance.h"
#include "redis.h"
#include "store.h"

#define BATCH 64
#define STEPS 3

static struct bt_store *store;
static int64_t now_ms = 1796424261528;

/* A record as replay.c writes it: body, then its time and worker. */
static void record(struct bt_instance *inst, const char *body)
{
    char text[512];
    int len = snprintf(text, sizeof(text), "%s", body);

    snprintf(text + len, sizeof(text) - (size_t)len,
             ",\"ts\":%lld,\"worker\":\"vm:19820\"}", (long long)now_ms);
    bt_delta_history(&inst->delta, strdup(text));
}

static void command(struct bt_instance *inst, int seq, const char *topic)
{
    char field[32], payload[400];

    snprintf(field, sizeof(field), "t|%d|1", seq);
    snprintf(payload, sizeof(payload),
             "{\"v\":1,\"type\":\"task\",\"id\":\"%s\",\"seq\":%d,\"attempt\":1,"
             "\"name\":\"inc\",\"queue\":\"default\",\"input\":{\"v\":%d,\"k\":3},"
             "\"deadline\":1796424321521,\"run\":1,\"workflow\":\"bench_chain\"}",
             inst->id, seq, seq);
    bt_delta_command(&inst->delta, strdup(field), strdup(topic), strdup(inst->id),
                     strdup(payload), strlen(payload));
}

static void timer(struct bt_instance *inst, bool add, int seq)
{
    char member[128];

    snprintf(member, sizeof(member), "timeout|%d|1|%s", seq, inst->id);
    bt_delta_timer(&inst->delta, add, strdup(member), now_ms + 60000);
}

/* Decision `step` of inst (0: the start, STEPS: the last). */
static void decide(struct bt_instance *inst, int step)
{
    char body[400];

    if (step == 0) {
        inst->type = strdup("bench_chain");
        inst->input = json_pack("{s:i, s:i}", "v", 0, "k", 3);
        inst->status = BT_STATUS_RUNNING;
        inst->created = now_ms;
        inst->run = 1;
        snprintf(body, sizeof(body),
                 "{\"ev\":\"started\",\"workflow\":\"bench_chain\",\"queue\":\"default\","
                 "\"input\":{\"v\":%d,\"k\":%d}",
                 0, 3);
        record(inst, body);
    } else {
        struct bt_entry *e = &inst->entries[step - 1];
        e->state = BT_ST_DONE;
        e->value = json_pack("{s:i, s:i}", "v", step, "k", 3);
        e->dirty = true;
        snprintf(
            body, sizeof(body),
            "{\"ev\":\"activity_completed\",\"seq\":%d,\"attempt\":1,\"name\":\"inc\","
            "\"result\":{\"v\":%d,\"k\":3}",
            step - 1, step);
        record(inst, body);
        timer(inst, false, step - 1);
    }
    if (step < STEPS) {
        struct bt_entry *e = bt_instance_append(inst, 'a', "inc");
        e->attempt = 1;
        e->due = now_ms + 60000;
        snprintf(
            body, sizeof(body),
            "{\"ev\":\"activity_scheduled\",\"seq\":%d,\"attempt\":1,\"name\":\"inc\","
            "\"queue\":\"default\",\"input\":{\"v\":%d,\"k\":3},\"deadline\":"
            "1796424321521",
            step, step);
        record(inst, body);
        command(inst, step, "tasks");
        timer(inst, true, step);
    } else {
        inst->status = BT_STATUS_COMPLETED;
        inst->result = json_pack("{s:i, s:i}", "v", STEPS, "k", 3);
        inst->delta.meta_dirty = true;
        snprintf(body, sizeof(body),
                 "{\"ev\":\"finished\",\"status\":\"completed\",\"result\":{\"v\":%d,"
                 "\"k\":%d},\"error\":null",
                 STEPS, 3);
        record(inst, body);
        command(inst, STEPS, "results");
    }
}

/* Runs instances first..first+n through the chain, BATCH at a time. */
static void run(long first, long n)
{
    struct bt_instance *insts[BATCH];
    int results[BATCH];

    for (long b = first; b < first + n; b += BATCH) {
        int k = (int)(first + n - b < BATCH ? first + n - b : BATCH);
        for (int i = 0; i < k; i++) {
            char id[64];
            snprintf(id, sizeof(id), "sb-%d-%ld", (int)getpid(), b + i);
            insts[i] = bt_instance_new(id);
        }
        for (int step = 0; step <= STEPS; step++) {
            struct bt_delivered done[BATCH];
            for (int i = 0; i < k; i++)
                decide(insts[i], step);
            now_ms++;
            if (bt_store_commit(store, insts, (size_t)k, now_ms, results))
                exit(1);
            for (int i = 0; i < k; i++) {
                if (results[i]) {
                    fprintf(stderr, "%s: commit refused (a conflict): not a fresh id\n",
                            insts[i]->id);
                    exit(1);
                }
            }
            for (int i = 0; i < k; i++) {
                done[i] = (struct bt_delivered){insts[i]->id, insts[i]->delta.cmds,
                                                insts[i]->delta.n_cmds};
            }
            bt_store_forget(store, done, (size_t)k);
            for (int i = 0; i < k; i++) {
                while (insts[i]->delta.n_cmds)
                    bt_command_release(&insts[i]->delta.cmds[--insts[i]->delta.n_cmds]);
            }
        }
        for (int i = 0; i < k; i++)
            bt_instance_destroy(insts[i]);
    }
    bt_store_settle(store);
}

static double info(const char *section, const char *name)
{
    redisReply *reply = bt_redis_command(bt_store_redis(store), "INFO %s", section);
    const char *p = reply && reply->str ? strstr(reply->str, name) : NULL;
    double v = p ? atof(p + strlen(name)) : 0;

    freeReplyObject(reply);
    return v;
}

int main(int argc, char **argv)
{
    char errstr[256], kp[] = "bt", addr[256] = "127.0.0.1:6379";
    struct bt_config cfg = {.key_prefix = kp, .retention_ms = 7LL * 86400000};
    long n = argc > 2 ? atol(argv[2]) : 0, m = argc > 3 ? atol(argv[3]) : 2000;
    double cpu0, cpu1, calls0, calls1;

    if (argc > 1)
        snprintf(addr, sizeof(addr), "%s", argv[1]);
    cfg.redis = addr;
    if (!(store = bt_store_new(&cfg, errstr, sizeof(errstr)))) {
        fprintf(stderr, "%s\n", errstr);
        return 1;
    }
    run(0, n);
    if (argc > 4 && !strcmp(argv[4], "drop"))
        freeReplyObject(bt_redis_command(bt_store_redis(store),
                                         "DEL bt:idx:all bt:idx:completed bt:retention "
                                         "bt:outbox bt:timers"));
    /* INFO commandstats after it tells the measured part alone */
    freeReplyObject(bt_redis_command(bt_store_redis(store), "CONFIG RESETSTAT"));
    cpu0 = info("cpu", "used_cpu_user:") + info("cpu", "used_cpu_sys:");
    calls0 = info("commandstats", "cmdstat_evalsha:calls=");
    run(n, m);
    cpu1 = info("cpu", "used_cpu_user:") + info("cpu", "used_cpu_sys:");
    calls1 = info("commandstats", "cmdstat_evalsha:calls=");
    printf("held=%ld measured=%ld redis_cpu_us_per_step=%.1f evalsha_calls=%.0f\n", n, m,
           (cpu1 - cpu0) * 1e6 / (double)(m * STEPS), calls1 - calls0);
    bt_store_destroy(store);
    return 0;
}
