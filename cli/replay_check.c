/* `baton replay-check --plugin new.so [--type T] [--sample N]`: replays the
 * journal of every in-flight instance (running or blocked) against the code
 * in the given plugins, in memory, changing nothing, and lists the instances
 * the deploy would block, with the seq and the step names that differ. Exit
 * status 1 when any would. This is how a change to 90-day workflows ships
 * with confidence. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "err.h"
#include "log.h"
#include "registry.h"
#include "replay.h"

#define BATCH 200

struct tally {
    long checked, blocked, resumed, unknown_type;
};

static void check_one(struct bt_instance *inst, const struct bt_replay_env *env,
                      struct tally *t)
{
    bool was_blocked = inst->status == BT_STATUS_BLOCKED;

    if (!bt_registry_workflow(env->reg, inst->type)) {
        t->unknown_type++;
        printf("%-40s %-24s NOT IN PLUGIN  the new code has no workflow type \"%s\"\n",
               inst->id, inst->type, inst->type);
        return;
    }
    t->checked++;
    bt_replay_run(inst, env);
    if (inst->status == BT_STATUS_BLOCKED && !was_blocked) {
        t->blocked++;
        printf("%-40s %-24s WOULD BLOCK    %s\n", inst->id, inst->type,
               json_string_value(json_object_get(inst->error, "message")));
    } else if (was_blocked && inst->status != BT_STATUS_BLOCKED) {
        t->resumed++;
        printf(
            "%-40s %-24s WOULD RESUME   it is blocked now and replays with this code\n",
            inst->id, inst->type);
    }
}

/* One run: what it selects and what it found. */
struct check {
    const struct bt_replay_env *env;
    const char *type; /* NULL: every type */
    long sample;      /* at most this many; < 0: all */
    long seen;
    struct tally t;
};

/* Replays those of batch[0..n) that c selects; destroys them all. */
static void check_batch(struct check *c, struct bt_instance **batch, size_t n)
{
    for (size_t k = 0; k < n; k++) {
        struct bt_instance *inst = batch[k];
        if (inst->type && (!c->type || !strcmp(c->type, inst->type)) &&
            (c->sample < 0 || c->seen < c->sample) && !bt_status_final(inst->status)) {
            c->seen++;
            check_one(inst, c->env, &c->t);
        }
        bt_instance_destroy(inst);
    }
}

/* The instances in shard's status index idx ("running", "blocked"), loaded
 * BATCH at a time. Returns 0, or BT_EAGAIN when Redis does not answer. */
static int check_index(struct check *c, struct bt_store *store, int shard,
                       const char *idx)
{
    char kp[BT_STORE_KP_SIZE];
    redisReply *ids =
        bt_redis_command(bt_store_redis(store), "ZRANGE %s:idx:%s 0 -1",
                         bt_store_shard_kp(store, shard, kp, sizeof(kp)), idx);
    int ret = 0;

    if (!ids || ids->type != REDIS_REPLY_ARRAY) {
        freeReplyObject(ids);
        return BT_EAGAIN;
    }
    for (size_t i = 0; i < ids->elements && (c->sample < 0 || c->seen < c->sample);
         i += BATCH) {
        struct bt_instance *batch[BATCH];
        size_t n = 0;
        for (size_t k = i; k < ids->elements && n < BATCH; k++)
            batch[n++] = bt_instance_new(ids->element[k]->str);
        if (bt_store_load(store, batch, n)) {
            for (size_t k = 0; k < n; k++)
                bt_instance_destroy(batch[k]);
            ret = BT_EAGAIN;
            break;
        }
        check_batch(c, batch, n);
    }
    freeReplyObject(ids);
    return ret;
}

static const char *type_arg;
static int64_t sample_arg = -1;

static const struct bt_arg replay_check_args[] = {
    {"type", 0, BT_ARG_STR, &type_arg, "TYPE", "every type",
     .help = "only instances of this type"},
    {"sample", 0, BT_ARG_INT, &sample_arg, "N", "all", 1, INT64_C(1) << 40,
     .help = "replay at most N instances"},
    {NULL},
};

static const struct bt_cmd replay_check_cmd = {
    .name = "baton replay-check",
    .synopsis = "--plugin new.so [--plugin ...] [--type T] [--sample N]",
    .about = "Before a deploy: replay every in-flight instance against the code in the "
             "plugins, in memory, and list those it would block (exit 1 when any would).",
    .args = replay_check_args,
    .settings = (const char *const[]){"plugin", BT_CLI_REDIS_SETTINGS, NULL},
};

int bt_cli_replay_check(struct bt_config *cfg, int argc, char **argv)
{
    struct bt_store *store = NULL;
    bt_registry *reg = NULL;
    struct check c = {0};
    struct timespec ts;
    char errstr[512];
    int ret, n_pos;
    static const char *const indexes[] = {"running", "blocked"};

    if ((ret = bt_cli_args(&replay_check_cmd, argc, argv, NULL, &n_pos)) >= 0)
        return ret;
    ret = BT_EXIT_USAGE;
    c.type = type_arg;
    c.sample = (long)sample_arg;
    if (cfg->n_plugins == 0) {
        fprintf(stderr, "baton replay-check: --plugin is required\n");
        goto usage;
    }
    reg = bt_registry_new();
    for (size_t i = 0; i < cfg->n_plugins; i++)
        if (bt_registry_load(reg, cfg->plugins[i], errstr, sizeof(errstr))) {
            fprintf(stderr, "baton replay-check: %s\n", errstr);
            ret = BT_EXIT_FAIL;
            goto out;
        }
    if (!(store = bt_cli_store(cfg))) {
        ret = BT_EXIT_UNAVAILABLE;
        goto out;
    }
    /* the engine logs each block as a warning: the report below says it */
    bt_log_setup("baton", BT_LOG_ERROR, cfg->log_json);
    clock_gettime(CLOCK_REALTIME, &ts);
    struct bt_replay_env env = {.reg = reg,
                                .now_ms =
                                    (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000,
                                .default_timeout_ms = cfg->activity_timeout_ms,
                                .schedule_to_start_ms = cfg->schedule_to_start_ms,
                                .worker = "replay-check"};
    c.env = &env;
    for (int x = 0; x < 2 * bt_store_shards(store); x++)
        if (check_index(&c, store, x / 2, indexes[x % 2])) {
            ret = BT_EXIT_UNAVAILABLE;
            goto out;
        }
    printf(
        "replay-check: %ld instances replayed, %ld would block, %ld would resume, %ld of "
        "types the plugin lacks\n",
        c.t.checked, c.t.blocked, c.t.resumed, c.t.unknown_type);
    ret = c.t.blocked ? BT_EXIT_FAIL : BT_EXIT_OK;
    goto out;
usage:
    fprintf(stderr, "usage: baton replay-check --plugin new.so [--plugin ...] [--type T] "
                    "[--sample N]\n");
out:
    bt_store_destroy(store);
    bt_registry_destroy(reg);
    return ret;
}
