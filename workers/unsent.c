/* Unsent outbox commands of loaded instances (unsent.h). */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "kafka.h"
#include "log.h"
#include "lookback.h"
#include "unsent.h"

/* Long enough for a look, a send and its delivery; a worker that dies with
 * it leaves the result to the sweep after this. */
#define RESEND_TTL_MS 30000

static bool is_result(const struct bt_command *c)
{
    return !strcmp(c->topic, "results");
}

static int64_t made_ms(const struct bt_command *c)
{
    json_t *msg = json_loadb(c->payload, c->len, 0, NULL);
    int64_t ts = json_integer_value(json_object_get(msg, "ts"));

    json_decref(msg);
    return ts;
}

/* Moves the commands of d whose sought entry (from *k on, one per result)
 * was found into gone (room for d->n_cmds); returns how many moved. */
static size_t split(struct bt_delta *d, const struct bt_sought *sought, size_t *k,
                    struct bt_command *gone)
{
    size_t kept = 0, n_gone = 0;

    for (size_t c = 0; c < d->n_cmds; c++) {
        if (is_result(&d->cmds[c]) && sought[(*k)++].found)
            gone[n_gone++] = d->cmds[c];
        else
            d->cmds[kept++] = d->cmds[c];
    }
    d->n_cmds = kept;
    return n_gone;
}

/* Drops the results of d: another process is sending them. */
static void leave_results(struct bt_delta *d)
{
    size_t kept = 0;

    for (size_t c = 0; c < d->n_cmds; c++) {
        if (is_result(&d->cmds[c]))
            bt_command_release(&d->cmds[c]);
        else
            d->cmds[kept++] = d->cmds[c];
    }
    d->n_cmds = kept;
}

/* How many results insts[0..n) have left to send once each instance with
 * some took the right to send them (bt_store_take_resend); the results of
 * those another process has are dropped. */
static size_t take_results(struct bt_store *store, const char *worker,
                           struct bt_instance **insts, size_t n)
{
    size_t n_results = 0;

    for (size_t i = 0; i < n; i++) {
        struct bt_delta *d = &insts[i]->delta;
        size_t here = 0;
        for (size_t c = 0; c < d->n_cmds; c++)
            here += is_result(&d->cmds[c]);
        if (!here)
            continue;
        if (bt_store_take_resend(store, insts[i]->id, worker, RESEND_TTL_MS) == 0) {
            bt_log(BT_LOG_INFO, "another process is sending the result: workflow=%s",
                   insts[i]->id);
            leave_results(d);
            continue;
        }
        n_results += here;
    }
    return n_results;
}

size_t bt_unsent_drop_delivered(rd_kafka_t **reader, const struct bt_config *cfg,
                                struct bt_store *store, const char *worker,
                                struct bt_instance **insts, size_t n)
{
    struct bt_sought *sought = NULL;
    struct bt_delivered *done = NULL;
    char topic[512], errstr[256];
    size_t n_sought = take_results(store, worker, insts, n), k = 0, n_done = 0,
           dropped = 0;

    if (!n_sought)
        return 0;
    if (!*reader && !(*reader = bt_lookback_reader_new(cfg, errstr, sizeof(errstr)))) {
        bt_log(BT_LOG_WARN, "cannot look for sent results: %s", errstr);
        return 0;
    }
    sought = calloc(n_sought, sizeof(*sought));
    done = calloc(n, sizeof(*done));
    BT_ASSERT(sought && done);
    for (size_t i = 0; i < n; i++)
        for (size_t c = 0; c < insts[i]->delta.n_cmds; c++) {
            const struct bt_command *cmd = &insts[i]->delta.cmds[c];
            if (is_result(cmd))
                sought[k++] = (struct bt_sought){cmd->key, cmd->payload, cmd->len,
                                                 made_ms(cmd), false};
        }
    if (bt_lookback(*reader, cfg, bt_kafka_topic(cfg, "results", topic, sizeof(topic)),
                    sought, n_sought))
        bt_log(BT_LOG_WARN,
               "cannot tell whether results were sent; sending them: count=%zu",
               n_sought);
    k = 0;
    for (size_t i = 0; i < n; i++) {
        struct bt_delta *d = &insts[i]->delta;
        struct bt_command *gone;
        size_t n_gone;
        if (!d->n_cmds)
            continue;
        gone = malloc(d->n_cmds * sizeof(*gone));
        BT_ASSERT(gone);
        if (!(n_gone = split(d, sought, &k, gone))) {
            free(gone);
            continue;
        }
        bt_log(BT_LOG_INFO, "result found sent, not sending it again: workflow=%s",
               insts[i]->id);
        done[n_done++] = (struct bt_delivered){insts[i]->id, gone, n_gone};
        dropped += n_gone;
    }
    if (n_done && bt_store_forget(store, done, n_done))
        bt_log(BT_LOG_WARN, "cannot clear the outbox; a sent result stays in it");
    for (size_t i = 0; i < n_done; i++) {
        for (size_t c = 0; c < done[i].n; c++)
            bt_command_release(&done[i].cmds[c]);
        free(done[i].cmds);
    }
    free(done);
    free(sought);
    return dropped;
}

size_t bt_unsent_hand_off(rd_kafka_t *producer, const struct bt_config *cfg,
                          struct bt_store *store, const char *worker,
                          const struct bt_handoff *h, size_t n)
{
    struct bt_kafka_batch batch = {0};
    struct bt_delivered *done;
    struct bt_command *cmds;
    size_t n_done = 0;

    if (!n)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char topic[512];
        bt_kafka_topic(cfg, h[i].suffix, topic, sizeof(topic));
        bt_kafka_produce(producer, topic, h[i].id, strlen(h[i].id), h[i].payload,
                         h[i].len, &batch);
    }
    if (bt_kafka_wait(producer, &batch, 5000)) {
        /* left in the outbox: the sweep sends them once the alive key is gone */
        bt_log(BT_LOG_WARN, "cannot hand eager work to Kafka at the stop: count=%zu", n);
        /* the stop must not wait for Kafka: what is still queued is dropped
         * (reported at once), and the messages point at batch until then */
        rd_kafka_purge(producer, RD_KAFKA_PURGE_F_QUEUE);
        if (batch.pending)
            bt_kafka_wait(producer, &batch, -1);
        return 0;
    }
    done = calloc(n, sizeof(*done));
    cmds = calloc(n, sizeof(*cmds));
    BT_ASSERT(done && cmds);
    for (size_t i = 0; i < n; i++) {
        cmds[i].field = bt_task_field(h[i].seq, h[i].attempt);
        if (!cmds[i].field || bt_command_hold(&cmds[i].field, worker))
            continue;
        done[n_done++] = (struct bt_delivered){(char *)(uintptr_t)h[i].id, &cmds[i], 1};
    }
    if (bt_store_forget(store, done, n_done) || bt_store_settle(store))
        bt_log(BT_LOG_WARN, "cannot forget the eager work handed to Kafka");
    bt_log(BT_LOG_INFO, "stopping: eager work handed to Kafka: count=%zu", n);
    for (size_t i = 0; i < n; i++)
        free(cmds[i].field);
    free(cmds);
    free(done);
    return n;
}
