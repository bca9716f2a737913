/* `baton delete ID`: archives a finished instance now and deletes it, as the
 * scheduler does when its retention ends (archive.h): every run still kept
 * goes to <prefix>.archive, and only once Kafka confirmed it is the instance
 * deleted. A running (or blocked) instance is refused. `baton delete --query`
 * makes every finished match due for deletion now, for the schedulers'
 * retention loop, which deletes in small batches without stalling Redis. Also what `baton
 * describe` and `baton history` say about an instance that is gone. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "archive.h"
#include "cli.h"
#include "history.h"
#include "clock.h"
#include "instance.h"
#include "kafka.h"
#include "query.h"

/* How long `baton delete` waits for Kafka to confirm the archive. */
#define DELIVERY_WAIT_MS 15000

/* The members of id's runs still kept: the earlier ones whose history is
 * there and the last one ("<run>|<id>"). A new array of *n (free each and
 * it), or NULL when Redis did not answer. */
static char **kept_runs(struct bt_store *store, const char *id, int last, size_t *n)
{
    char **members = calloc((size_t)last, sizeof(*members));
    char key[600], list[600], suffix[32];
    bool ok = members != NULL;

    *n = 0;
    for (int run = 1; ok && run <= last; run++) {
        redisReply *reply = NULL;
        if (run < last) {
            snprintf(suffix, sizeof(suffix), ":history:%d", run);
            reply = bt_redis_command(bt_store_redis(store), "EXISTS %s %s",
                                     bt_history_key(store, id, run, list, sizeof(list)),
                                     bt_store_key(store, id, suffix, key, sizeof(key)));
            ok = reply && reply->type == REDIS_REPLY_INTEGER;
        }
        if (ok && (run == last || reply->integer >= 1)) {
            size_t len = strlen(id) + 16;
            if ((members[*n] = malloc(len)))
                snprintf(members[(*n)++], len, "%d|%s", run, id);
            else
                ok = false;
        }
        freeReplyObject(reply);
    }
    if (!ok) {
        for (size_t i = 0; members && i < *n; i++)
            free(members[i]);
        free(members);
        return NULL;
    }
    return members;
}

/* Produces the archives of runs[0..n) and waits up to DELIVERY_WAIT_MS for
 * Kafka; what it has not confirmed by then is purged, so that every report
 * is in. Returns 0 or the exit status of a producer that cannot be made. */
static int produce(const struct bt_config *cfg, struct bt_store *store,
                   struct bt_archive_run *runs, size_t n)
{
    char errstr[512];
    rd_kafka_t *rk = bt_kafka_producer_new(cfg, errstr, sizeof(errstr)), *reader = NULL;
    int64_t now = bt_clock_now_ms(), deadline = bt_clock_mono_ms() + DELIVERY_WAIT_MS;

    if (!rk) {
        fprintf(stderr, "baton: %s\n", errstr);
        return BT_EXIT_USAGE;
    }
    bt_archive_prepare(store, cfg, rk, &reader, runs, n, now);
    for (size_t i = 0; i < n; i++) {
        int64_t left = deadline - bt_clock_mono_ms();
        bt_kafka_wait(rk, &runs[i].batch, left > 0 ? (int)left : 0);
    }
    /* a purged message may still have reached Kafka: its run is put back
     * and archived again later, at least once */
    rd_kafka_purge(rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
    for (size_t i = 0; i < n; i++)
        bt_kafka_wait(rk, &runs[i].batch, -1);
    rd_kafka_destroy(rk);
    if (reader) {
        rd_kafka_consumer_close(reader);
        rd_kafka_destroy(reader);
    }
    return 0;
}

/* Archives and deletes the claimed runs; returns an exit status. */
static int archive_runs(const struct bt_config *cfg, struct bt_store *store,
                        struct bt_archive_run *runs, size_t n)
{
    char topic[300];
    size_t deleted = 0, unsent = 0, waiting = 0;
    int ret = produce(cfg, store, runs, n);

    if (ret)
        return ret;
    bt_kafka_topic(cfg, "archive", topic, sizeof(topic));
    /* delivered runs are deleted, the others put back for a scheduler */
    if (bt_archive_settle(store, runs, n, bt_clock_now_ms())) {
        fprintf(stderr,
                "baton: cannot end the deletion in Redis at %s: a scheduler will, "
                "once its claim expires\n",
                cfg->redis);
        return BT_EXIT_UNAVAILABLE;
    }
    for (size_t i = 0; i < n; i++) {
        deleted += runs[i].action == BT_ARCHIVE_DELETE && runs[i].result == 1;
        unsent += runs[i].action == BT_ARCHIVE_RETRY && runs[i].parts > 0;
        waiting += runs[i].result == -2 ||
                   (runs[i].action == BT_ARCHIVE_RETRY && runs[i].parts == 0);
    }
    if (deleted == n) {
        printf("deleted %s: %zu run%s archived to %s\n", runs[n - 1].id, n,
               n == 1 ? "" : "s", topic);
        return BT_EXIT_OK;
    }
    if (unsent)
        fprintf(stderr, "baton: cannot archive to Kafka topic %s at %s", topic,
                cfg->brokers);
    else if (waiting)
        fprintf(stderr, "baton: %s's result is not on Kafka yet (try again in a moment)",
                runs[n - 1].id);
    else
        fprintf(stderr, "baton: %s changed while it was archived", runs[n - 1].id);
    fprintf(stderr,
            ": %zu of %zu runs deleted (the others are due again: a running "
            "baton-scheduler archives and deletes them within seconds)\n",
            deleted, n);
    return unsent ? BT_EXIT_UNAVAILABLE : BT_EXIT_FAIL;
}

/* Checks that id has finished; its last run into *run. Exit status. */
static int finished(struct bt_store *store, const char *id, int *run)
{
    char key[600];
    redisReply *reply = bt_redis_command(bt_store_redis(store), "HMGET %s status run",
                                         bt_store_key(store, id, "", key, sizeof(key)));
    int ret = BT_EXIT_UNAVAILABLE;

    if (!reply || reply->type != REDIS_REPLY_ARRAY || reply->elements != 2)
        goto out;
    ret = BT_EXIT_FAIL;
    if (!reply->element[0]->str) {
        bt_cli_gone(store, id);
    } else if (!bt_status_final(bt_status_parse(reply->element[0]->str))) {
        fprintf(
            stderr,
            "baton: %s is %s: only a finished instance can be deleted (`baton cancel` "
            "or `baton terminate` it first)\n",
            id, reply->element[0]->str);
    } else {
        *run = reply->element[1]->str ? atoi(reply->element[1]->str) : 1;
        ret = *run >= 1 ? BT_EXIT_OK : BT_EXIT_FAIL;
    }
out:
    freeReplyObject(reply);
    return ret;
}

static const char *query_arg;
static bool yes_arg;

static const struct bt_arg delete_args[] = {
    BT_CLI_ARG_QUERY(query_arg),
    BT_CLI_ARG_YES(yes_arg),
    {NULL},
};

static const struct bt_cmd delete_cmd = {
    .name = "baton delete",
    .synopsis = "ID | --query QUERY [--yes]",
    .about = "Archive a finished instance's runs to <prefix>.archive and delete it from "
             "Redis now, as its retention would (refused while it runs). With --query: "
             "every finished instance that matches becomes due for deletion now, and "
             "the schedulers archive and delete them in small batches.",
    .args = delete_args,
    .settings = (const char *const[]){BT_CLI_REDIS_SETTINGS, BT_CLI_KAFKA_SETTINGS, NULL},
    .max_pos = 1,
};

static bool select_finished(const struct bt_query_row *row, void *arg)
{
    if (bt_status_final(bt_status_parse(row->status)))
        json_array_append_new(arg, json_string(row->id));
    return true;
}

/* Makes each kept run of id due for deletion now (ZADD XX: a run a
 * scheduler is archiving already is left to it). Exit status. */
static int due_now(struct bt_store *store, const char *id, int64_t now)
{
    char key[300], score[32], kp[BT_STORE_KP_SIZE];
    size_t n = 0;
    int run = 0, ret = finished(store, id, &run);
    char **members = ret ? NULL : kept_runs(store, id, run, &n);

    if (ret)
        return ret;
    if (!members)
        return BT_EXIT_UNAVAILABLE;
    snprintf(key, sizeof(key), "%s:retention", bt_store_kp_of(store, id, kp, sizeof(kp)));
    snprintf(score, sizeof(score), "%lld", (long long)now);
    for (size_t i = 0; i < n; i++) {
        const char *argv[] = {"ZADD", key, "XX", score, members[i]};
        redisReply *reply = bt_redis_argv(bt_store_redis(store), 5, argv, NULL);
        if (!reply || reply->type != REDIS_REPLY_INTEGER)
            ret = BT_EXIT_UNAVAILABLE;
        freeReplyObject(reply);
        free(members[i]);
    }
    free(members);
    return ret;
}

static int delete_by_query(const struct bt_config *cfg, struct bt_store *store)
{
    struct bt_query q = {0};
    json_t *ids = json_array();
    char next[64];
    size_t i, done = 0;
    json_t *id;
    int ret = bt_query_parse(&q, query_arg);

    if (ret)
        goto out;
    ret = BT_EXIT_UNAVAILABLE;
    if (bt_query_run(store, &q, NULL, select_finished, ids, next, sizeof(next)))
        goto out;
    ret = BT_EXIT_OK;
    if (!json_array_size(ids)) {
        fprintf(stderr, "delete: no finished instance matches\n");
        goto out;
    }
    ret = BT_EXIT_USAGE;
    if (!bt_cli_confirmed(yes_arg, "delete", json_array_size(ids)))
        goto out;
    ret = BT_EXIT_OK;
    json_array_foreach(ids, i, id)
    {
        int r = due_now(store, json_string_value(id), bt_clock_now_ms());
        if (r == BT_EXIT_UNAVAILABLE) {
            ret = r;
            break;
        }
        done += r == BT_EXIT_OK;
    }
    fprintf(stderr,
            "delete: %zu of %zu instances due for deletion now; the schedulers archive "
            "them to <prefix>.archive and delete them in small batches\n",
            done, json_array_size(ids));
out:
    if (ret == BT_EXIT_UNAVAILABLE)
        fprintf(stderr, "baton: cannot read from Redis at %s\n", cfg->redis);
    json_decref(ids);
    bt_query_release(&q);
    return ret;
}

int bt_cli_delete(struct bt_config *cfg, int argc, char **argv)
{
    struct bt_store *store;
    struct bt_archive_run *runs = NULL;
    char **members = NULL, *pos[1];
    size_t n_members = 0, n = 0;
    int run = 0, ret, n_pos;

    if ((ret = bt_cli_args(&delete_cmd, argc, argv, pos, &n_pos)) >= 0)
        return ret;
    if (!bt_cli_one_target("delete", n_pos, 1, query_arg))
        return BT_EXIT_USAGE;
    if (!(store = bt_cli_store(cfg)))
        return BT_EXIT_UNAVAILABLE;
    if (query_arg) {
        ret = delete_by_query(cfg, store);
        bt_store_destroy(store);
        return ret;
    }
    argv[1] = pos[0]; /* the id, wherever it was among the flags */
    if ((ret = finished(store, argv[1], &run)) != BT_EXIT_OK)
        goto out;
    ret = BT_EXIT_UNAVAILABLE;
    if (!(members = kept_runs(store, argv[1], run, &n_members)) ||
        bt_archive_claim(store, bt_store_shard_of(store, argv[1]), bt_clock_now_ms(),
                         bt_archive_lease_ms(cfg), n_members,
                         (const char *const *)members, n_members, &runs, &n))
        goto out;
    if (n == 0) {
        fprintf(stderr, "baton: a scheduler is archiving and deleting %s now\n", argv[1]);
        ret = BT_EXIT_FAIL;
        goto out;
    }
    /* runs a scheduler holds are archived and deleted by it */
    ret = archive_runs(cfg, store, runs, n);
out:
    if (ret == BT_EXIT_UNAVAILABLE && !runs)
        fprintf(stderr, "baton: cannot read from Redis at %s\n", cfg->redis);
    bt_archive_runs_free(runs, n);
    for (size_t i = 0; i < n_members; i++)
        free(members[i]);
    free(members);
    bt_store_destroy(store);
    return ret;
}

/* ---- instances that are gone ---- */

static void print_time(FILE *f, int64_t ms)
{
    time_t s = (time_t)(ms / 1000);
    struct tm tm;
    char buf[32];

    gmtime_r(&s, &tm);
    strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
    fprintf(f, "%s.%03dZ", buf, (int)(ms % 1000));
}

void bt_cli_gone(struct bt_store *store, const char *id)
{
    char key[600];
    redisReply *reply =
        bt_redis_command(bt_store_redis(store), "GET %s",
                         bt_store_key(store, id, ":deleted", key, sizeof(key)));
    json_t *root = reply && reply->type == REDIS_REPLY_STRING
                       ? json_loadb(reply->str, reply->len, 0, NULL)
                       : NULL;

    if (!root) {
        fprintf(stderr,
                "baton: no workflow instance \"%s\" (a finished instance is deleted "
                "when its retention ends: see the retention setting)\n",
                id);
    } else {
        fprintf(stderr, "baton: %s was archived to %s and deleted at ", id,
                json_string_value(json_object_get(root, "archive")));
        print_time(stderr, json_integer_value(json_object_get(root, "deleted")));
        fprintf(stderr, " (%s %s, ", json_string_value(json_object_get(root, "workflow")),
                json_string_value(json_object_get(root, "status")));
        print_time(stderr, json_integer_value(json_object_get(root, "finished")));
        fprintf(stderr, ", run %lld); its history is on that topic, keyed by its id\n",
                (long long)json_integer_value(json_object_get(root, "run")));
    }
    json_decref(root);
    freeReplyObject(reply);
}
