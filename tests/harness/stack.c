/* The whole-stack fixture: services on free ports, the real programs, and
 * the test's own Kafka clients. */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "err.h"
#include "redis.h"
#include "config.h"
#include "kafka.h"
#include "history.h"
#include "stack.h"

static void test_config(struct bt_stack *s, struct bt_config *cfg)
{
    char name[] = "test", *argv[] = {name, NULL};
    int argc = 1;
    char errstr[256];

    bt_config_load(cfg, &argc, argv, errstr, sizeof(errstr));
    free(cfg->brokers);
    cfg->brokers = strdup(s->kafka.brokers);
    free(cfg->prefix);
    cfg->prefix = strdup(s->prefix);
    cfg->embedded = 1;
}

static int start(struct bt_stack *s, const char *const *queues, int shards)
{
    struct bt_config cfg;
    char errstr[256];
    int n = 0;

    snprintf(s->prefix, sizeof(s->prefix), "%s", bt_test_prefix());
    s->shards = shards;
    if (bt_test_kafka_start(&s->kafka, s->prefix, 4, queues))
        return -1;
    snprintf(s->env[n++], sizeof(s->env[0]), "BATON_BROKERS=%s", s->kafka.brokers);
    snprintf(s->env[n++], sizeof(s->env[0]), "BATON_REDIS=%s",
             s->cluster ? s->cluster->seeds : s->redis.addr);
    snprintf(s->env[n++], sizeof(s->env[0]), "BATON_PREFIX=%s", s->prefix);
    snprintf(s->env[n++], sizeof(s->env[0]), "BATON_EMBEDDED=1");
    snprintf(s->env[n++], sizeof(s->env[0]), "BATON_HOME=%s", s->redis.dir);
    snprintf(s->env[n++], sizeof(s->env[0]), "BATON_LOG_LEVEL=%s",
             getenv("BT_TEST_LOG_LEVEL") ? getenv("BT_TEST_LOG_LEVEL") : "info");
    /* librdkafka's own debug contexts in the programs' log (cgrp, fetch...) */
    if (getenv("BT_TEST_KAFKA_DEBUG"))
        snprintf(s->env[n++], sizeof(s->env[0]), "BATON_KAFKA_DEBUG=%s",
                 getenv("BT_TEST_KAFKA_DEBUG"));
    if (s->cluster)
        snprintf(s->env[n++], sizeof(s->env[0]), "BATON_REDIS_CLUSTER=1");
    if (shards > 0)
        snprintf(s->env[n++], sizeof(s->env[0]), "BATON_REDIS_SHARDS=%d", shards);
    for (int i = 0; i < n; i++)
        s->envp[i] = s->env[i];
    s->envp[n] = NULL;
    s->n_env = n;
    snprintf(s->log, sizeof(s->log), "%s/programs.log", s->redis.dir);
    test_config(s, &cfg);
    s->producer = bt_kafka_producer_new(&cfg, errstr, sizeof(errstr));
    s->r = s->cluster ? bt_redis_new_cluster(s->cluster->seeds, NULL, NULL, errstr,
                                             sizeof(errstr))
                      : bt_redis_new(s->redis.addr, NULL, NULL, errstr, sizeof(errstr));
    bt_config_release(&cfg);
    return s->producer && s->r ? 0 : -1;
}

int bt_stack_start_cluster(struct bt_stack *s, const char *const *queues, int shards,
                           bool replicas)
{
    memset(s, 0, sizeof(*s));
    snprintf(s->redis.dir, sizeof(s->redis.dir), "/tmp/bt-stack-XXXXXX");
    if (!mkdtemp(s->redis.dir)) {
        s->redis.dir[0] = '\0';
        return -1;
    }
    bt_test_redis_track(&s->redis);
    if (!(s->cluster = calloc(1, sizeof(*s->cluster))) ||
        bt_test_rcluster_start(s->cluster, replicas) < 0) {
        free(s->cluster);
        s->cluster = NULL;
        return -1;
    }
    return start(s, queues, shards);
}

int bt_stack_start_sharded(struct bt_stack *s, const char *const *queues, int shards)
{
    memset(s, 0, sizeof(*s));
    if (bt_test_redis_start(&s->redis))
        return -1;
    return start(s, queues, shards);
}

int bt_stack_start(struct bt_stack *s, const char *const *queues)
{
    const char *cluster = getenv("BT_TEST_REDIS_CLUSTER");
    const char *shards = getenv("BT_TEST_REDIS_SHARDS");

    if (cluster && !strcmp(cluster, "1"))
        return bt_stack_start_cluster(s, queues, shards ? atoi(shards) : 8, false);
    return bt_stack_start_sharded(s, queues, shards ? atoi(shards) : 0);
}

void bt_stack_setenv(struct bt_stack *s, int i, const char *fmt, ...)
{
    int at = s->n_env + i;
    va_list ap;

    BT_ASSERT(i >= 0 && at < (int)(sizeof(s->env) / sizeof(s->env[0])));
    if (!fmt) {
        s->envp[at] = NULL;
        return;
    }
    va_start(ap, fmt);
    vsnprintf(s->env[at], sizeof(s->env[at]), fmt, ap);
    va_end(ap);
    s->envp[at] = s->env[at];
    s->envp[at + 1] = NULL;
}

const char *bt_stack_shard_kp(const struct bt_stack *s, int shard, char *buf, size_t n)
{
    if (s->shards > 0)
        snprintf(buf, n, "%s:{%d}", s->prefix, shard);
    else
        snprintf(buf, n, "%s", s->prefix);
    return buf;
}

int bt_stack_shard_count(const struct bt_stack *s)
{
    return s->shards > 0 ? s->shards : 1;
}

const char *bt_stack_kp_of(const struct bt_stack *s, const char *id, char *buf, size_t n)
{
    return bt_stack_shard_kp(
        s, s->shards > 0 ? (int)(bt_redis_slot(id, strlen(id)) % (unsigned)s->shards) : 0,
        buf, n);
}

long long bt_stack_zcard(struct bt_stack *s, const char *suffix)
{
    long long n = 0;

    for (int shard = 0; shard < bt_stack_shard_count(s) && n >= 0; shard++) {
        char kp[128];
        redisReply *reply = bt_stack_redis(
            s, "ZCARD %s:%s", bt_stack_shard_kp(s, shard, kp, sizeof(kp)), suffix);
        n = reply && reply->type == REDIS_REPLY_INTEGER ? n + reply->integer : -1;
        freeReplyObject(reply);
    }
    return n;
}

long bt_stack_count_instance_keys(struct bt_stack *s, const char *suffix)
{
    long n = 0;

    for (int shard = 0; shard < bt_stack_shard_count(s) && n >= 0; shard++) {
        char kp[128], pattern[192];
        snprintf(pattern, sizeof(pattern), "%s:{*}%s",
                 bt_stack_shard_kp(s, shard, kp, sizeof(kp)), suffix);
        long k = bt_stack_count_keys(s, pattern);
        n = k < 0 ? -1 : n + k;
    }
    return n;
}

long bt_stack_count_keys(struct bt_stack *s, const char *pattern)
{
    int masters = bt_redis_masters(s->r);
    long n = masters < 0 ? -1 : 0;

    for (int m = 0; m < masters && n >= 0; m++) {
        const char *argv[] = {"KEYS", pattern};
        redisReply *keys = bt_redis_master_argv(s->r, m, 2, argv, NULL);

        n = keys && keys->type == REDIS_REPLY_ARRAY ? n + (long)keys->elements : -1;
        freeReplyObject(keys);
    }
    return n;
}

const char *bt_stack_key(const struct bt_stack *s, const char *id, const char *suffix,
                         char *buf, size_t n)
{
    char kp[128];

    snprintf(buf, n, "%s:{%s}%s", bt_stack_kp_of(s, id, kp, sizeof(kp)), id, suffix);
    return buf;
}

/* With BT_TEST_KEEP_LOGS=DIR, the programs' log outlives the stack as
 * DIR/<suite>.<test>.<prefix>.log (to read a failure's cause after the
 * test; scripts/run-tests shows the end of a failed test's). */
static void keep_log(const struct bt_stack *s)
{
    const char *dir = getenv("BT_TEST_KEEP_LOGS");
    char path[600], buf[65536];
    FILE *in, *out;
    size_t n;

    if (!dir || !s->log[0] || !(in = fopen(s->log, "r")))
        return;
    /* named after the test, for scripts/run-tests to show a failure's */
    if (criterion_current_test)
        snprintf(path, sizeof(path), "%s/%s.%s.%s.log", dir,
                 criterion_current_test->category, criterion_current_test->name,
                 s->prefix);
    else
        snprintf(path, sizeof(path), "%s/%s.log", dir, s->prefix);
    if ((out = fopen(path, "w"))) {
        while ((n = fread(buf, 1, sizeof(buf), in)) > 0)
            fwrite(buf, 1, n, out);
        fclose(out);
    }
    fclose(in);
}

void bt_stack_stop(struct bt_stack *s)
{
    if (s->redis_paused) /* a test that failed with it paused */
        bt_stack_redis_up(s);
    keep_log(s);
    if (s->results) {
        rd_kafka_consumer_close(s->results);
        rd_kafka_destroy(s->results);
        s->results = NULL;
    }
    if (s->producer) {
        rd_kafka_destroy(s->producer);
        s->producer = NULL;
    }
    bt_redis_destroy(s->r);
    s->r = NULL;
    bt_test_kafka_stop(&s->kafka);
    if (s->cluster) {
        bt_test_rcluster_stop(s->cluster);
        free(s->cluster);
        s->cluster = NULL;
    }
    bt_test_redis_stop(&s->redis); /* on a cluster: its dir */
}

pid_t bt_stack_worker(struct bt_stack *s, const char *plugin, const char *const *args)
{
    char plugin_path[512];
    const char *argv[32] = {BT_BIN_DIR "/baton-worker", "--plugin", plugin_path};
    int argc = 3;

    snprintf(plugin_path, sizeof(plugin_path), "%s/%s.so", BT_PLUGIN_DIR, plugin);
    for (; args && *args && argc < 30; args++)
        argv[argc++] = *args;
    argv[argc] = NULL;
    return bt_test_spawn(argv, s->envp, s->log);
}

int bt_stack_baton(struct bt_stack *s, char *out, size_t n, const char *const *args)
{
    static int calls;
    char log[400];
    const char *argv[16] = {BT_BIN_DIR "/baton"};
    int argc = 1, status;
    FILE *f;

    for (; *args && argc < 15; args++)
        argv[argc++] = *args;
    argv[argc] = NULL;
    snprintf(log, sizeof(log), "%s/baton-%d.out", s->redis.dir, calls++);
    status = bt_test_wait(bt_test_spawn(argv, s->envp, log), 60000);
    out[0] = '\0';
    if ((f = fopen(log, "r"))) {
        size_t len = fread(out, 1, n - 1, f);
        out[len] = '\0';
        fclose(f);
    }
    return status;
}

pid_t bt_stack_scheduler(struct bt_stack *s)
{
    const char *argv[] = {BT_BIN_DIR "/baton-scheduler", NULL};

    return bt_test_spawn(argv, s->envp, s->log);
}

int bt_stack_produce(struct bt_stack *s, const char *suffix, const char *key,
                     const void *payload, size_t len)
{
    char topic[300];
    struct bt_kafka_batch batch = {0};

    snprintf(topic, sizeof(topic), "%s.%s", s->prefix, suffix);
    if (bt_kafka_produce(s->producer, topic, key, key ? strlen(key) : 0, payload, len,
                         &batch))
        return -1;
    return bt_kafka_wait(s->producer, &batch, 10000) ? -1 : 0;
}

int bt_stack_start_wf(struct bt_stack *s, const char *type, const char *id, json_t *input)
{
    struct bt_msg msg = {.type = BT_MSG_START,
                         .id = (char *)(uintptr_t)id,
                         .workflow = (char *)(uintptr_t)type,
                         .body = input};
    size_t len;
    char *bytes = bt_codec_encode(&msg, &len);
    int ret = bytes ? bt_stack_produce(s, "events", id, bytes, len) : -1;

    free(bytes);
    json_decref(input);
    return ret;
}

void bt_stack_start_chains(struct bt_stack *s, const char *prefix, int from, int to)
{
    for (int i = from; i < to; i++) {
        char id[64];
        snprintf(id, sizeof(id), "%s-%d", prefix, i);
        cr_assert_eq(bt_stack_start_wf(s, "chain3", id, json_pack("{s:i}", "v", i)), 0,
                     "cannot start %s", id);
    }
}

/* Assigns every partition of topic from its beginning, without a group
 * join: the mock cluster holds a new group's first join for 3 s. Metadata
 * the cluster does not give yet is asked again until the deadline, and why
 * it failed goes to the test's log: a reader that read nothing says why.
 * Returns the partition count, or -1. */
static int assign_all(rd_kafka_t *rk, const char *topic, int64_t deadline)
{
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    rd_kafka_topic_partition_list_t *parts;
    rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR__TIMED_OUT;
    int n = -1;

    while (rkt && n <= 0 && bt_test_now_ms() < deadline) {
        const struct rd_kafka_metadata *md = NULL;
        int wait = (int)(deadline - bt_test_now_ms());

        err = rd_kafka_metadata(rk, 0, rkt, &md, wait < 5000 ? wait : 5000);
        if (!err)
            err =
                md->topic_cnt == 1 ? md->topics[0].err : RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC;
        if (!err)
            n = md->topics[0].partition_cnt;
        if (md)
            rd_kafka_metadata_destroy(md);
        if (n <= 0)
            bt_test_sleep_ms(100);
    }
    if (rkt)
        rd_kafka_topic_destroy(rkt);
    if (n <= 0) {
        cr_log_error("cannot read %s: no metadata: %s", topic, rd_kafka_err2str(err));
        return -1;
    }
    parts = rd_kafka_topic_partition_list_new(n);
    for (int i = 0; i < n; i++)
        rd_kafka_topic_partition_list_add(parts, topic, i)->offset =
            RD_KAFKA_OFFSET_BEGINNING;
    if ((err = rd_kafka_assign(rk, parts))) {
        cr_log_error("cannot read %s: %s", topic, rd_kafka_err2str(err));
        n = -1;
    }
    rd_kafka_topic_partition_list_destroy(parts);
    return n;
}

static int read_topic(struct bt_stack *s, const char *suffix, int wait_ms, bool to_end,
                      bool (*fn)(const json_t *msg, void *arg), void *arg)
{
    struct bt_config cfg;
    char errstr[256], topic[300], group[300];
    char *eof = strdup("enable.partition.eof=true");
    rd_kafka_t *rk;
    int64_t deadline = bt_test_now_ms() + wait_ms;
    int n = 0, ends = 0, partitions;

    test_config(s, &cfg);
    cfg.kafka = &eof;
    cfg.n_kafka = 1;
    snprintf(topic, sizeof(topic), "%s.%s", s->prefix, suffix);
    snprintf(group, sizeof(group), "%s.reader.%s.%lld", s->prefix, suffix,
             (long long)bt_test_now_ms());
    rk = bt_kafka_consumer_new(&cfg, group, NULL, NULL, errstr, sizeof(errstr));
    cfg.kafka = NULL;
    cfg.n_kafka = 0;
    bt_config_release(&cfg);
    free(eof);
    if (!rk) {
        cr_log_error("cannot read %s: %s", topic, errstr);
        return -1;
    }
    if ((partitions = assign_all(rk, topic, deadline)) < 0) {
        rd_kafka_destroy(rk);
        return -1;
    }
    while (bt_test_now_ms() < deadline) {
        rd_kafka_message_t *rkm = rd_kafka_consumer_poll(rk, 50);
        json_t *root;
        bool done = false;
        if (!rkm)
            continue;
        if (rkm->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            done = to_end && ++ends == partitions;
        } else if (!rkm->err && (root = json_loadb(rkm->payload, rkm->len, 0, NULL))) {
            n++;
            done = fn(root, arg);
            json_decref(root);
        }
        rd_kafka_message_destroy(rkm);
        if (done)
            break;
    }
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return n;
}

int bt_stack_read(struct bt_stack *s, const char *suffix, int wait_ms,
                  bool (*fn)(const json_t *msg, void *arg), void *arg)
{
    return read_topic(s, suffix, wait_ms, false, fn, arg);
}

int bt_stack_read_all(struct bt_stack *s, const char *suffix, int wait_ms,
                      bool (*fn)(const json_t *msg, void *arg), void *arg)
{
    return read_topic(s, suffix, wait_ms, true, fn, arg);
}

static bool collect_result(const json_t *msg, void *arg)
{
    struct bt_stack_results *r = arg;
    const char *id = json_string_value(json_object_get(msg, "id"));

    r->raw++;
    if (id && !json_object_get(r->by_id, id)) {
        json_object_set(r->by_id, id, (json_t *)(uintptr_t)msg);
        r->distinct++;
    }
    return r->distinct >= r->want;
}

void bt_stack_results(struct bt_stack *s, struct bt_stack_results *r, int want,
                      int wait_ms)
{
    memset(r, 0, sizeof(*r));
    r->want = want;
    r->by_id = json_object();
    bt_stack_read(s, "results", wait_ms, collect_result, r);
}

redisReply *bt_stack_redis(struct bt_stack *s, const char *fmt, ...)
{
    va_list ap;
    redisReply *reply;

    va_start(ap, fmt);
    reply = bt_redis_vcommand(s->r, fmt, ap);
    va_end(ap);
    return reply;
}

void bt_stack_redis_down(struct bt_stack *s, const char *how)
{
    BT_ASSERT(!s->cluster); /* a node at a time: bt_test_rcluster */
    if (!strcmp(how, "pause")) {
        kill(s->redis.pid, SIGSTOP);
        s->redis_paused = true;
        return;
    }
    if (!strcmp(how, "shutdown")) {
        freeReplyObject(bt_redis_command(s->r, "SHUTDOWN"));
        if (bt_test_wait(s->redis.pid, 10000) >= 0)
            s->redis.pid = 0;
    }
    bt_test_redis_kill(&s->redis); /* a no-op once it exited */
}

int bt_stack_redis_up(struct bt_stack *s)
{
    char errstr[128];

    if (s->redis_paused) {
        s->redis_paused = false;
        return kill(s->redis.pid, SIGCONT);
    }
    if (bt_test_redis_restart(&s->redis))
        return -1;
    /* a fresh connection: the old one would fail its next command */
    bt_redis_destroy(s->r);
    s->r = bt_redis_new(s->redis.addr, NULL, NULL, errstr, sizeof(errstr));
    return s->r ? 0 : -1;
}

int bt_stack_redis_restart(struct bt_stack *s, const char *how)
{
    bt_stack_redis_down(s, how);
    return bt_stack_redis_up(s);
}

bool bt_stack_type_known(struct bt_stack *s, const char *type)
{
    redisReply *r = bt_stack_redis(s, "ZSCORE %s:types:default %s", s->prefix, type);
    bool yes = r && r->type == REDIS_REPLY_STRING;

    freeReplyObject(r);
    return yes;
}

const char *bt_stack_status(struct bt_stack *s, const char *id, char *buf, size_t n)
{
    char key[600];
    redisReply *reply =
        bt_stack_redis(s, "HGET %s status", bt_stack_key(s, id, "", key, sizeof(key)));

    snprintf(buf, n, "%s", reply && reply->type == REDIS_REPLY_STRING ? reply->str : "");
    freeReplyObject(reply);
    return buf;
}

static void add_record(json_t *out, const char *text, const char *ev)
{
    json_t *rec = json_loads(text, 0, NULL);
    const char *name = json_string_value(json_object_get(rec, "ev"));

    if (rec && (!ev || (name && !strcmp(name, ev))))
        json_array_append(out, rec);
    json_decref(rec);
}

/* The old stream's records (history.h), then the list's. */
json_t *bt_stack_history(struct bt_stack *s, const char *id, const char *suffix,
                         const char *ev)
{
    const char *legacy = suffix ? suffix : ":history";
    const char *run = strncmp(legacy, ":history:", 9) ? NULL : legacy + 9;
    char key[600];
    redisReply *reply =
        bt_stack_redis(s, "XRANGE %s - +", bt_stack_key(s, id, legacy, key, sizeof(key)));
    json_t *out = json_array();

    for (size_t i = 0; reply && reply->type == REDIS_REPLY_ARRAY && i < reply->elements;
         i++) {
        const redisReply *fields = reply->element[i]->element[1];
        for (size_t f = 1; f < fields->elements; f += 2)
            add_record(out, fields->element[f]->str, ev);
    }
    freeReplyObject(reply);
    bt_stack_key(s, id, ":h", key, sizeof(key));
    snprintf(key + strlen(key), sizeof(key) - strlen(key), "%s%s", run ? ":" : "",
             run ? run : "");
    reply = bt_stack_redis(s, "LRANGE %s 0 -1", key);
    for (size_t i = 0; reply && reply->type == REDIS_REPLY_ARRAY && i < reply->elements;
         i++) {
        char *text = bt_history_unpack(reply->element[i]->str, reply->element[i]->len);
        if (text)
            add_record(out, text, ev);
        free(text);
    }
    freeReplyObject(reply);
    return out;
}
