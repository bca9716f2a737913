/* Counting from the outside: the results topic and the dead letters read from
 * their beginning by readers that belong to no group (a group could be
 * rebalanced by a broker fault and hand the reader old offsets again, which
 * would count one result twice), and the workload's execution lines in the
 * log. Everything is tallied per instance, O(1) each. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <hiredis/hiredis.h>
#include <jansson.h>

#include "chaos.h"
#include "clock.h"
#include "config.h"

#define CHAOS_POLL_BURST 5000 /* messages per call, so that the tick goes on */

int chaos_count_init(struct chaos_run *r)
{
    r->inst = calloc((size_t)r->opts->instances, sizeof(*r->inst));
    if (!r->inst)
        return -1;
    for (int i = 0; i < r->opts->instances; i++)
        r->inst[i].started_ms = r->inst[i].first_ms = -1;
    return 0;
}

void chaos_count_release(struct chaos_run *r)
{
    free(r->inst);
    free(r->exec_per_s);
    r->inst = NULL;
    r->exec_per_s = NULL;
}

int chaos_count_index(const struct chaos_run *r, const char *id)
{
    const size_t n = strlen(CHAOS_ID_PREFIX);
    char *end;
    long i;

    if (!id || strncmp(id, CHAOS_ID_PREFIX, n) || id[n] < '0' || id[n] > '9')
        return -1;
    i = strtol(id + n, &end, 10);
    return *end || i >= r->opts->instances ? -1 : (int)i;
}

int chaos_reader_open(struct chaos_reader *rd, struct chaos_run *r, const char *suffix)
{
    rd_kafka_topic_partition_list_t *parts = NULL;
    struct bt_config cfg;
    char errstr[256], topic[200], group[200];
    int ret = -1;

    memset(rd, 0, sizeof(*rd));
    rd->partitions = r->opts->partitions;
    rd->next = calloc((size_t)rd->partitions, sizeof(*rd->next));
    rd->at_end = calloc((size_t)rd->partitions, sizeof(*rd->at_end));
    if (!rd->next || !rd->at_end ||
        chaos_stack_config(r, &cfg, "enable.partition.eof=true"))
        goto out;
    /* a group id is required to build a consumer; assign() never joins it */
    snprintf(group, sizeof(group), "%s.chaos-reader.%s", r->prefix, suffix);
    rd->rk = bt_kafka_consumer_new(&cfg, group, NULL, NULL, errstr, sizeof(errstr));
    bt_config_release(&cfg);
    if (!rd->rk) {
        fprintf(stderr, "baton-chaos: cannot create a reader: %s\n", errstr);
        goto out;
    }
    snprintf(topic, sizeof(topic), "%s.%s", r->prefix, suffix);
    parts = rd_kafka_topic_partition_list_new(rd->partitions);
    for (int p = 0; p < rd->partitions; p++)
        rd_kafka_topic_partition_list_add(parts, topic, p)->offset =
            RD_KAFKA_OFFSET_BEGINNING;
    ret = rd_kafka_assign(rd->rk, parts) ? -1 : 0;
out:
    if (parts)
        rd_kafka_topic_partition_list_destroy(parts);
    return ret;
}

void chaos_reader_close(struct chaos_reader *rd)
{
    if (rd->rk) {
        rd_kafka_consumer_close(rd->rk);
        rd_kafka_destroy(rd->rk);
    }
    free(rd->next);
    free(rd->at_end);
    memset(rd, 0, sizeof(*rd));
}

bool chaos_reader_at_end(const struct chaos_reader *rd)
{
    for (int p = 0; p < rd->partitions; p++)
        if (!rd->at_end[p])
            return false;
    return rd->partitions > 0;
}

/* Whether rkm is a message not seen before; notes the ends of partitions. */
static bool fresh(struct chaos_reader *rd, const rd_kafka_message_t *rkm)
{
    int p = rkm->partition;

    if (p < 0 || p >= rd->partitions)
        return false;
    if (rkm->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        rd->at_end[p] = rkm->offset >= rd->next[p];
        return false;
    }
    if (rkm->err || rkm->offset < rd->next[p])
        return false;
    rd->next[p] = rkm->offset + 1;
    rd->at_end[p] = false;
    return true;
}

/* Polls rd for up to timeout_ms for the first message, then takes what is
 * ready, handing each fresh message to fn. */
static void drain(struct chaos_reader *rd, int timeout_ms,
                  void (*fn)(struct chaos_run *r, const rd_kafka_message_t *rkm),
                  struct chaos_run *r)
{
    rd_kafka_message_t *rkm;

    for (int n = 0; n < CHAOS_POLL_BURST; n++) {
        if (!(rkm = rd_kafka_consumer_poll(rd->rk, n ? 0 : timeout_ms)))
            break;
        if (fresh(rd, rkm))
            fn(r, rkm);
        rd_kafka_message_destroy(rkm);
    }
}

static void failed(struct chaos_run *r, struct chaos_inst *in, const char *id,
                   const json_t *error)
{
    const char *type = json_string_value(json_object_get(error, "type"));
    const char *message = json_string_value(json_object_get(error, "message"));

    if (!r->fail_reason[0])
        snprintf(r->fail_reason, sizeof(r->fail_reason), "%s: %s: %s", id,
                 type ? type : "?", message ? message : "?");
    in->failed = 1;
}

static void count_result(struct chaos_run *r, const rd_kafka_message_t *rkm)
{
    json_t *root = json_loadb(rkm->payload, rkm->len, 0, NULL);
    const char *id = json_string_value(json_object_get(root, "id"));
    const char *status = json_string_value(json_object_get(root, "status"));
    int64_t ts = rd_kafka_message_timestamp(rkm, NULL);
    int i = chaos_count_index(r, id);

    r->raw_results++;
    if (ts < 0)
        ts = chaos_wall_ms();
    if (id && !strcmp(id, CHAOS_WARMUP_ID)) {
        r->warmed_up = true;
    } else if (i < 0) {
        r->other_results++;
    } else {
        struct chaos_inst *in = &r->inst[i];

        if (in->results++ == 0) {
            /* clamped: -1 means none, and no result precedes its start */
            in->first_ms = (int32_t)(ts > r->t0_wall ? ts - r->t0_wall : 0);
            r->distinct++;
        }
        if (in->results == 0) /* saturate */
            in->results--;
        if (!status || strcmp(status, "completed"))
            failed(r, in, id, json_object_get(root, "error"));
    }
    json_decref(root);
}

void chaos_count_results(struct chaos_run *r, struct chaos_reader *rd, int timeout_ms)
{
    drain(rd, timeout_ms, count_result, r);
}

static void count_dead_letter(struct chaos_run *r, const rd_kafka_message_t *rkm)
{
    json_t *root = json_loadb(rkm->payload, rkm->len, 0, NULL);
    const char *key = json_string_value(json_object_get(root, "key"));
    const char *reason = json_string_value(json_object_get(root, "reason"));

    if (key && !strcmp(key, CHAOS_POISON_ID)) {
        r->poison_dead++;
    } else if (r->dead_letters++ == 0) {
        snprintf(r->dead_reason, sizeof(r->dead_reason), "%s key=%s",
                 reason ? reason : "?", key ? key : "-");
    }
    json_decref(root);
}

void chaos_count_dead_letters(struct chaos_run *r, int deadline_ms)
{
    struct chaos_reader rd;
    int64_t deadline = bt_test_now_ms() + deadline_ms;

    if (chaos_reader_open(&rd, r, "dlq") == 0)
        while (!chaos_reader_at_end(&rd) && bt_test_now_ms() < deadline)
            drain(&rd, 100, count_dead_letter, r);
    chaos_reader_close(&rd);
}

/* One execution line: its instance, step and attempt, and the second after
 * t0 it began in (-1: before t0, the warm-up's). Returns false for any other
 * line. */
static bool parse_execution(const struct chaos_run *r, const char *line, int *i,
                            int *step, int *attempt, int *second)
{
    long long ts;

    if (strncmp(line, "chaos-exec ", 11) ||
        sscanf(line,
               "chaos-exec id=" CHAOS_ID_PREFIX "%d step=%d seq=%*d attempt=%d pid=%*d "
               "ts=%lld",
               i, step, attempt, &ts) != 4 ||
        *i < 0 || *i >= r->opts->instances || *step < 1 || *step > CHAOS_STEPS)
        return false;
    *second = ts >= r->t0_wall ? (int)((ts - r->t0_wall) / 1000) : -1;
    return true;
}

int chaos_count_executions(struct chaos_run *r)
{
    char line[1024];
    FILE *f = fopen(r->log, "r");
    int i, step, attempt, second;

    r->n_seconds = (int)(r->end_ms / 1000) + 1;
    r->exec_per_s = calloc((size_t)r->n_seconds, sizeof(*r->exec_per_s));
    if (!f || !r->exec_per_s) {
        if (f)
            fclose(f);
        return -1;
    }
    while (fgets(line, sizeof(line), f)) {
        if (!parse_execution(r, line, &i, &step, &attempt, &second))
            continue;
        r->executions++;
        r->exec_retries += attempt > 1;
        if (r->inst[i].exec[step - 1] < UINT8_MAX)
            r->inst[i].exec[step - 1]++;
        if (second >= 0 && second < r->n_seconds)
            r->exec_per_s[second]++;
    }
    fclose(f);
    return 0;
}

/* Its status and error type, "blocked/WorkflowCrashed" say, into buf. */
static void crash_code_state(struct chaos_run *r, char *buf, size_t n)
{
    redisReply *reply =
        chaos_stack_redis(r, "HMGET %s:{%s} status error", r->prefix, CHAOS_CRASH_ID);
    json_t *error = NULL;

    snprintf(buf, n, "unknown");
    if (reply && reply->type == REDIS_REPLY_ARRAY && reply->elements == 2 &&
        reply->element[0]->type == REDIS_REPLY_STRING) {
        if (reply->element[1]->type == REDIS_REPLY_STRING)
            error = json_loads(reply->element[1]->str, 0, NULL);
        snprintf(buf, n, "%s/%s", reply->element[0]->str,
                 json_string_value(json_object_get(error, "type"))
                     ? json_string_value(json_object_get(error, "type"))
                     : "-");
    }
    json_decref(error);
    freeReplyObject(reply);
}

void chaos_count_crash_code(struct chaos_run *r)
{
    char line[1024];
    FILE *f;

    if (!r->crash_sent)
        return;
    for (int waited = 0;; waited += 500) {
        crash_code_state(r, r->crash_code_end, sizeof(r->crash_code_end));
        if (!strcmp(r->crash_code_end, "blocked/WorkflowCrashed") || waited >= 30000)
            break;
        bt_clock_sleep_ms(500);
    }
    if (!(f = fopen(r->log, "r")))
        return;
    while (fgets(line, sizeof(line), f))
        r->crash_code_crashes += strstr(line, "msg=\"crashed in workflow code\"") &&
                                 strstr(line, "workflow=" CHAOS_CRASH_ID " ");
    fclose(f);
}
