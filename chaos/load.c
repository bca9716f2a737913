/* The load: start events for instances wf-0 .. wf-<N-1> at a steady rate,
 * produced on their own thread so that a fault that blocks the driver for a
 * moment (a redis restart waits for PING) does not bend the rate; and the
 * poison, a start over the payload limit, produced by a client whose
 * message.max.bytes allows what baton must refuse. Each start's delivery is
 * tracked on its own, so a start lost to a broker fault is produced again
 * rather than blamed on the engine. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chaos.h"
#include "codec.h"
#include "config.h"

#define CHAOS_POISON_SIZE 1040078 /* over max-payload, under message.max.bytes */
#define CHAOS_WORKFLOW    "chaos3"

static char *encode_start(const char *id, json_t *body, size_t *len)
{
    struct bt_msg msg = {.type = BT_MSG_START,
                         .id = (char *)(uintptr_t)id,
                         .ts = chaos_wall_ms(),
                         .workflow = (char *)(uintptr_t)CHAOS_WORKFLOW,
                         .body = body};
    char *bytes = bt_codec_encode(&msg, len);

    json_decref(body);
    return bytes;
}

static int produce(rd_kafka_t *rk, struct chaos_run *r, const char *id, const char *bytes,
                   size_t len, struct bt_kafka_batch *batch)
{
    char topic[200];

    snprintf(topic, sizeof(topic), "%s.events", r->prefix);
    return bt_kafka_produce(rk, topic, id, strlen(id), bytes, len, batch);
}

/* Produces instance i's start, retrying while the local queue is full. */
static void produce_start(struct chaos_run *r, int i)
{
    char id[32];
    size_t len;
    char *bytes;

    snprintf(id, sizeof(id), CHAOS_ID_PREFIX "%d", i);
    bytes = encode_start(
        id, json_pack("{s:i, s:i}", "i", i, "sleep_ms", r->opts->sleep_ms), &len);
    while (bytes && !chaos_interrupted &&
           produce(r->load_rk, r, id, bytes, len, &r->batches[i]))
        rd_kafka_poll(r->load_rk, 100);
    free(bytes);
}

/* Waits until every delivery report is in (or the run is interrupted). */
static void flush_all(struct chaos_run *r)
{
    while (!chaos_interrupted && rd_kafka_outq_len(r->load_rk) > 0)
        rd_kafka_flush(r->load_rk, 100);
}

static void *load_main(void *arg)
{
    struct chaos_run *r = arg;
    const int n = r->opts->instances, rate = r->opts->rate;

    for (int i = 0; i < n && !chaos_interrupted; i++) {
        int64_t due = r->t0 + (rate ? (int64_t)i * 1000 / rate : 0), now;

        while ((now = bt_test_now_ms()) < due)
            rd_kafka_poll(r->load_rk, (int)(due - now < 10 ? due - now : 10));
        r->inst[i].started_ms = (int32_t)(chaos_wall_ms() - r->t0_wall);
        produce_start(r, i);
        atomic_fetch_add(&r->produced, 1);
        rd_kafka_poll(r->load_rk, 0);
    }
    flush_all(r);
    /* a delivery that failed for good is tried once more: a start delivered
     * twice is one instance, a start never delivered would be a false miss */
    for (int i = 0; i < n && !chaos_interrupted; i++) {
        if (!r->batches[i].failed)
            continue;
        r->batches[i] = (struct bt_kafka_batch){0};
        produce_start(r, i);
    }
    flush_all(r);
    for (int i = 0; i < n; i++)
        r->lost_starts += r->batches[i].failed > 0 || r->batches[i].pending > 0;
    atomic_store(&r->load_done, true);
    return NULL;
}

int chaos_load_init(struct chaos_run *r)
{
    struct bt_config cfg;
    char errstr[256];

    r->batches = calloc((size_t)r->opts->instances, sizeof(*r->batches));
    if (!r->batches || chaos_stack_config(r, &cfg, NULL))
        return -1;
    r->load_rk = bt_kafka_producer_new(&cfg, errstr, sizeof(errstr));
    bt_config_release(&cfg);
    if (!r->load_rk) {
        fprintf(stderr, "baton-chaos: cannot create a producer: %s\n", errstr);
        return -1;
    }
    /* the poison's producer also sends the crashing start: only this thread
     * serves its delivery reports */
    if (!r->faults || (!r->opts->fault[CHAOS_POISON].every_ms &&
                       !r->opts->fault[CHAOS_CRASH_CODE].every_ms))
        return 0;
    if (chaos_stack_config(r, &cfg, "message.max.bytes=4000000"))
        return -1;
    r->poison_rk = bt_kafka_producer_new(&cfg, errstr, sizeof(errstr));
    bt_config_release(&cfg);
    if (!r->poison_rk)
        fprintf(stderr, "baton-chaos: cannot create the poison producer: %s\n", errstr);
    return r->poison_rk ? 0 : -1;
}

int chaos_load_one(struct chaos_run *r, const char *id)
{
    struct bt_kafka_batch batch = {0};
    size_t len;
    char *bytes = encode_start(id, json_object(), &len);
    int ret = -1;

    if (bytes && produce(r->load_rk, r, id, bytes, len, &batch) == 0)
        ret = bt_kafka_wait(r->load_rk, &batch, 30000) ? -1 : 0;
    free(bytes);
    return ret;
}

int chaos_load_start(struct chaos_run *r)
{
    if (pthread_create(&r->load_thread, NULL, load_main, r))
        return -1;
    r->load_started = true;
    return 0;
}

void chaos_load_join(struct chaos_run *r)
{
    if (r->load_started)
        pthread_join(r->load_thread, NULL);
    r->load_started = false;
}

/* A start of exactly CHAOS_POISON_SIZE bytes: its input padded to fit. */
static char *poison_bytes(size_t *len)
{
    json_t *body = json_pack("{s:s}", "pad", "");
    char *bytes = encode_start(CHAOS_POISON_ID, json_incref(body), len), *pad = NULL;

    if (bytes && *len < CHAOS_POISON_SIZE && (pad = malloc(CHAOS_POISON_SIZE))) {
        memset(pad, 'p', CHAOS_POISON_SIZE - *len);
        pad[CHAOS_POISON_SIZE - *len] = '\0';
        json_object_set_new(body, "pad", json_string(pad));
        free(bytes);
        bytes = encode_start(CHAOS_POISON_ID, json_incref(body), len);
    }
    free(pad);
    json_decref(body);
    return bytes;
}

int chaos_load_poison(struct chaos_run *r)
{
    size_t len = 0;
    char *bytes = poison_bytes(&len);
    int ret = -1;

    if (bytes && len == CHAOS_POISON_SIZE &&
        produce(r->poison_rk, r, CHAOS_POISON_ID, bytes, len, &r->poison_batch) == 0) {
        chaos_note(r, "fault: poison start produced id=%s bytes=%zu", CHAOS_POISON_ID,
                   len);
        r->poison_sent = true;
        ret = 0;
    } else {
        chaos_note(r, "cannot produce the poison (bytes=%zu)", len);
    }
    free(bytes);
    return ret;
}

int chaos_load_crash_code(struct chaos_run *r)
{
    size_t len = 0;
    char *bytes = encode_start(CHAOS_CRASH_ID, json_pack("{s:s}", "crash", "segv"), &len);
    int ret = -1;

    if (bytes &&
        produce(r->poison_rk, r, CHAOS_CRASH_ID, bytes, len, &r->crash_batch) == 0) {
        chaos_note(r, "fault: a start whose workflow code crashes, id=%s",
                   CHAOS_CRASH_ID);
        r->crash_sent = true;
        ret = 0;
    } else {
        chaos_note(r, "cannot produce the crashing start");
    }
    free(bytes);
    return ret;
}

void chaos_load_poll(struct chaos_run *r, int timeout_ms)
{
    if (r->poison_rk && r->poison_sent)
        bt_kafka_wait(r->poison_rk, &r->poison_batch, timeout_ms);
    if (r->poison_rk && r->crash_sent)
        bt_kafka_wait(r->poison_rk, &r->crash_batch, timeout_ms);
}

void chaos_load_release(struct chaos_run *r)
{
    chaos_load_join(r);
    if (r->load_rk)
        rd_kafka_destroy(r->load_rk);
    if (r->poison_rk)
        rd_kafka_destroy(r->poison_rk);
    free(r->batches);
    r->load_rk = r->poison_rk = NULL;
    r->batches = NULL;
}
