/* Probes: snapshots of what a workload cost (Redis commandstats, topic
 * offsets, CPU of each process and thread). */
#define _GNU_SOURCE /* nftw, asprintf */
#include "driver.h"

/* INFO commandstats: calls of each command, also those made by scripts. And
 * INFO stats' total_writes_processed: Redis writes the replies to a client
 * once per batch of commands read from it, so this counts round trips (of
 * every client: the scheduler's polling too, see the idle line). */
void bench_read_cmdstats(struct bench *b, struct snapshot *snap)
{
    redisReply *reply = bt_redis_command(bt_store_redis(b->store), "INFO commandstats");
    char *save = NULL, *text, *p;

    snap->n_cmds = 0;
    snap->round_trips = 0;
    if (!reply || reply->type != REDIS_REPLY_STRING)
        goto out;
    text = strdup(reply->str);
    for (char *line = strtok_r(text, "\r\n", &save); line && snap->n_cmds < MAX_CMDS;
         line = strtok_r(NULL, "\r\n", &save)) {
        struct cmdstat *c = &snap->cmds[snap->n_cmds];
        char *colon = strchr(line, ':');
        if (strncmp(line, "cmdstat_", 8) || !colon)
            continue;
        snprintf(c->name, sizeof(c->name), "%.*s", (int)(colon - line - 8), line + 8);
        if (sscanf(colon + 1, "calls=%llu,usec=%llu", &c->calls, &c->usec) == 2 &&
            strcmp(c->name, "info"))
            snap->n_cmds++;
    }
    free(text);
    freeReplyObject(reply);
    reply = bt_redis_command(bt_store_redis(b->store), "INFO stats");
    if (reply && reply->type == REDIS_REPLY_STRING &&
        (p = strstr(reply->str, "total_writes_processed:")))
        snap->round_trips = strtoull(p + 23, NULL, 10);
out:
    freeReplyObject(reply);
}

/* Every topic of our prefix, with the sum of its partitions' high watermarks:
 * how many messages were ever produced to it. */
void bench_read_topics(struct bench *b, struct snapshot *snap)
{
    const struct rd_kafka_metadata *md = NULL;
    size_t plen = strlen(b->cfg->prefix);

    snap->n_topics = 0;
    if (rd_kafka_metadata(b->producer, 1, NULL, &md, 5000) != RD_KAFKA_RESP_ERR_NO_ERROR)
        return;
    for (int i = 0; i < md->topic_cnt && snap->n_topics < MAX_TOPICS; i++) {
        const rd_kafka_metadata_topic_t *t = &md->topics[i];
        struct topic_count *tc = &snap->topics[snap->n_topics];
        if (strncmp(t->topic, b->cfg->prefix, plen) || t->topic[plen] != '.')
            continue;
        snprintf(tc->name, sizeof(tc->name), "%s", t->topic);
        tc->messages = 0;
        for (int p = 0; p < t->partition_cnt; p++) {
            int64_t lo, hi;
            if (rd_kafka_query_watermark_offsets(
                    b->producer, t->topic, t->partitions[p].id, &lo, &hi, 5000) == 0)
                tc->messages += hi;
        }
        snap->n_topics++;
    }
    rd_kafka_metadata_destroy(md);
}

void bench_take_snapshot(struct bench *b, struct snapshot *snap, bool services)
{
    if (services) {
        bench_read_cmdstats(b, snap);
        bench_read_topics(b, snap);
    }
    for (int r = 0; r < N_ROLES; r++) {
        const struct role *role = &b->stack.roles[r];
        unsigned long long run_ns;
        snap->ticks[r] = 0;
        snap->wait_ns[r] = 0;
        if (role->n)
            bench_read_schedstat(role->pids[0], &run_ns, &snap->wait_ns[r]);
        for (int i = 0; i < role->n; i++) {
            char path[64];
            unsigned long long t;
            snprintf(path, sizeof(path), "/proc/%d/stat", (int)role->pids[i]);
            if (bench_read_stat(path, NULL, 0, NULL, &t) == 0)
                snap->ticks[r] += t;
        }
    }
    snap->n_threads[0] = snap->n_threads[1] = 0;
    if (b->stack.roles[R_WORKER].n)
        snap->n_threads[0] = bench_read_threads(b->stack.roles[R_WORKER].pids[0],
                                                snap->threads[0], MAX_THREADS);
    if (b->stack.roles[R_BROKER].n)
        snap->n_threads[1] = bench_read_threads(b->stack.roles[R_BROKER].pids[0],
                                                snap->threads[1], MAX_THREADS);
    bench_machine_cpu(&snap->busy, &snap->total);
    snap->t = bench_now_s();
}
