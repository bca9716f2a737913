/* What every command needs from the services: one message produced and
 * confirmed, and a Redis connection that answers. Errors are printed here in
 * words a shell user can act on. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <pwd.h>
#include <unistd.h>

#include "cli.h"
#include "codec.h"
#include "err.h"
#include "instance.h"
#include "kafka.h"

int bt_cli_args(const struct bt_cmd *cmd, int argc, char **argv, char **pos, int *n_pos)
{
    int rc = bt_args_parse(cmd, argc, argv, pos, n_pos);

    return rc == 0 ? -1 : rc == 1 ? BT_EXIT_OK : BT_EXIT_USAGE;
}

void bt_cli_print_json(json_t *root)
{
    char *text = root ? json_dumps(root, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;

    if (text)
        printf("%s\n", text);
    free(text);
    json_decref(root);
}

char *bt_cli_time(int64_t ms, char *buf, size_t n)
{
    time_t s = (time_t)(ms / 1000);
    struct tm tm;
    char date[32];

    gmtime_r(&s, &tm);
    strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf, n, "%s.%03dZ", date, (int)(ms % 1000));
    return buf;
}

int bt_cli_produce(const struct bt_config *cfg, const char *suffix, const char *key,
                   const char *payload, size_t len)
{
    char errstr[512], topic[512];
    struct bt_kafka_batch batch = {0};
    rd_kafka_t *rk;
    int ret = BT_EXIT_UNAVAILABLE;

    if ((int64_t)len > cfg->max_payload) { /* the workers would dead-letter it */
        fprintf(stderr,
                "baton: the message is %zu bytes, over the limit of %lld (setting "
                "max-payload): pass large data by reference\n",
                len, (long long)cfg->max_payload);
        return BT_EXIT_FAIL;
    }
    if (!(rk = bt_kafka_producer_new(cfg, errstr, sizeof(errstr)))) {
        fprintf(stderr, "baton: %s\n", errstr);
        return BT_EXIT_USAGE;
    }
    bt_kafka_topic(cfg, suffix, topic, sizeof(topic));
    if (bt_kafka_produce(rk, topic, key, strlen(key), payload, len, &batch) ||
        bt_kafka_wait(rk, &batch, 10000)) {
        fprintf(stderr,
                "baton: cannot deliver to Kafka topic %s at %s: %s\n"
                "  (is `baton dev` running, or are --brokers / BATON_BROKERS right?)\n",
                topic, cfg->brokers,
                batch.err ? rd_kafka_err2str(batch.err) : "timed out");
        goto out;
    }
    ret = BT_EXIT_OK;
out:
    rd_kafka_destroy(rk);
    return ret;
}

int bt_cli_send(const struct bt_config *cfg, const char *suffix, const struct bt_msg *msg)
{
    size_t len;
    char *bytes = bt_codec_encode(msg, &len);
    int ret;

    if (!bytes) {
        fprintf(stderr, "baton: invalid id or name (1..256 characters, no control "
                        "characters)\n");
        return BT_EXIT_USAGE;
    }
    ret = bt_cli_produce(cfg, suffix, msg->id, bytes, len);
    free(bytes);
    return ret;
}

bool bt_cli_one_target(const char *cmd, int n_pos, int with_id, const char *query)
{
    if ((n_pos == with_id) == (query != NULL)) {
        fprintf(stderr, "baton %s: give %s\n", cmd,
                query ? "--query or an ID, not both" : "an ID, or --query");
        return false;
    }
    return true;
}

bool bt_cli_queue_ok(const char *cmd, const char *queue)
{
    if (!queue || bt_codec_queue_ok(queue, strlen(queue), BT_QUEUE_MAX))
        return true;
    fprintf(stderr, "baton %s: queue \"%s\": a queue " BT_QUEUE_WHY "\n", cmd, queue);
    return false;
}

const char *bt_cli_who(void)
{
    static char who[300];
    char host[256] = "";
    const char *user = getenv("USER");
    const struct passwd *pw = user && *user ? NULL : getpwuid(getuid());

    if (pw)
        user = pw->pw_name;
    if (!who[0]) {
        if (gethostname(host, sizeof(host) - 1))
            snprintf(host, sizeof(host), "?");
        snprintf(who, sizeof(who), "%s@%s (baton cli)", user && *user ? user : "?", host);
    }
    return who;
}

struct bt_store *bt_cli_store_new(const struct bt_config *cfg, char *errstr,
                                  size_t errstr_size)
{
    struct bt_store *store = bt_store_new(cfg, errstr, errstr_size);

    if (store)
        bt_redis_set_timeout(bt_store_redis(store), BT_CLI_REDIS_TIMEOUT_MS);
    return store;
}

struct bt_store *bt_cli_store(const struct bt_config *cfg)
{
    char errstr[512];
    struct bt_store *store = bt_cli_store_new(cfg, errstr, sizeof(errstr));
    redisReply *reply;

    if (!store) {
        fprintf(stderr, "baton: %s\n", errstr);
        return NULL;
    }
    reply = bt_redis_command(bt_store_redis(store), "PING");
    if (!reply || reply->type == REDIS_REPLY_ERROR) {
        /* a refused AUTH leaves the connection up: PING then says NOAUTH */
        bool refused = reply && !strncmp(reply->str, "NOAUTH", 6);
        fprintf(stderr, "baton: %s Redis at %s: %s\n  (%s)\n",
                refused ? "refused by" : "cannot reach", cfg->redis,
                reply ? reply->str : "no connection, or no answer in time",
                refused ? "check --redis-user / BATON_REDIS_USER and the password: "
                          "BATON_REDIS_PASSWORD or --redis-password-file"
                        : "is `baton dev` running, or are --redis / BATON_REDIS right?");
        freeReplyObject(reply);
        bt_store_destroy(store);
        return NULL;
    }
    freeReplyObject(reply);
    return store;
}

int bt_cli_lookup(const struct bt_config *cfg, const char *id, char *status, size_t sn,
                  char *suffix, size_t n)
{
    struct bt_store *store = bt_cli_store(cfg);
    redisReply *reply;
    char key[600];
    int ret = BT_EXIT_OK;

    if (!store)
        return BT_EXIT_UNAVAILABLE;
    reply = bt_redis_command(bt_store_redis(store), "HMGET %s status queue",
                             bt_store_key(store, id, "", key, sizeof(key)));
    if (!reply || reply->type != REDIS_REPLY_ARRAY || reply->elements != 2) {
        ret = BT_EXIT_UNAVAILABLE;
    } else if (reply->element[0]->type != REDIS_REPLY_STRING) {
        /* starts are events: one a worker has not taken yet is no instance */
        fprintf(stderr,
                "baton: no workflow instance \"%s\" (one just started exists once a "
                "worker has taken its start; signal-with-start signals either way)\n",
                id);
        ret = BT_EXIT_FAIL;
    } else {
        const redisReply *q = reply->element[1];
        char *s = bt_events_suffix(q->type == REDIS_REPLY_STRING ? q->str : NULL);
        snprintf(status, sn, "%s", reply->element[0]->str);
        snprintf(suffix, n, "%s", s ? s : "events");
        free(s);
    }
    freeReplyObject(reply);
    bt_store_destroy(store);
    return ret;
}

int bt_cli_scan(struct bt_store *store, const char *pattern,
                void (*fn)(struct bt_store *store, const char *key, const char *name,
                           void *arg),
                void *arg)
{
    struct bt_redis *r = bt_store_redis(store);
    size_t skip = strlen(pattern) - 1;
    int masters = bt_redis_masters(r); /* a Redis Cluster: each its own keys */

    if (masters < 0)
        return BT_EXIT_UNAVAILABLE;
    for (int m = 0; m < masters; m++) {
        char cursor[32] = "0";

        do {
            const char *argv[] = {"SCAN", cursor, "MATCH", pattern, "COUNT", "500"};
            redisReply *reply = bt_redis_master_argv(r, m, 6, argv, NULL);
            if (!reply || reply->type != REDIS_REPLY_ARRAY || reply->elements != 2) {
                freeReplyObject(reply);
                return BT_EXIT_UNAVAILABLE;
            }
            snprintf(cursor, sizeof(cursor), "%s", reply->element[0]->str);
            for (size_t i = 0; i < reply->element[1]->elements; i++) {
                const char *key = reply->element[1]->element[i]->str;
                fn(store, key, key + skip, arg);
            }
            freeReplyObject(reply);
        } while (strcmp(cursor, "0"));
    }
    return BT_EXIT_OK;
}

int bt_cli_show(struct bt_store *store, const char *key, const char *name,
                const char *what,
                void (*print)(struct bt_store *store, const char *key, const char *name,
                              void *arg))
{
    redisReply *reply = bt_redis_command(bt_store_redis(store), "EXISTS %s", key);
    bool there = reply && reply->type == REDIS_REPLY_INTEGER && reply->integer;

    if (!reply)
        return BT_EXIT_UNAVAILABLE;
    freeReplyObject(reply);
    if (!there) {
        fprintf(stderr, "baton: no %s \"%s\" (none used or set yet)\n", what, name);
        return BT_EXIT_FAIL;
    }
    print(store, key, name, NULL);
    return BT_EXIT_OK;
}

int bt_cli_stored(struct bt_store *store, redisReply *reply, const char *key,
                  const char *name,
                  void (*print)(struct bt_store *store, const char *key, const char *name,
                                void *arg))
{
    int ret = !reply                             ? BT_EXIT_UNAVAILABLE
              : reply->type == REDIS_REPLY_ERROR ? BT_EXIT_FAIL
                                                 : BT_EXIT_OK;

    if (ret == BT_EXIT_OK)
        print(store, key, name, NULL);
    else
        fprintf(stderr, "baton: cannot set %s: %s\n", name,
                reply ? reply->str : "Redis unreachable");
    freeReplyObject(reply);
    return ret;
}
