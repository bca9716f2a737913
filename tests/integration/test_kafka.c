/* The Kafka layer against librdkafka's mock cluster: delivery reports counted
 * per batch, failures surfaced, manual offset commits, pause/resume, and
 * kafka.* properties passed through. Each test gets its own cluster; .fini
 * destroys every handle and the cluster even when an assertion fails. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "err.h"
#include "harness.h"
#include "kafka.h"

#define MAX_MSGS    4096
#define MAX_CLIENTS 8
#define API_PRODUCE 0 /* Kafka protocol ApiKey of ProduceRequest */

static struct bt_test_kafka kafka;
static struct bt_config cfg;
static rd_kafka_t *clients[MAX_CLIENTS];

/* Messages seen by a consumer, in arrival order; payloads are "m<id>". */
struct got {
    int n;
    int id[MAX_MSGS];
    int32_t partition[MAX_MSGS];
    int64_t offset[MAX_MSGS];
};
static struct got got_a, got_b; /* static: nothing to free when an assertion fails */

static void setup(void)
{
    char arg0[] = "baton-tests", flag[] = "--prefix", prefix[64];
    char *argv[] = {arg0, flag, prefix, NULL};
    int argc = 3;
    char errstr[256];

    snprintf(prefix, sizeof(prefix), "%s", bt_test_prefix());
    cr_assert_eq(bt_config_load(&cfg, &argc, argv, errstr, sizeof(errstr)), 0, "%s",
                 errstr);
    cr_assert_eq(bt_test_kafka_start(&kafka, cfg.prefix, 2, NULL), 0);
    free(cfg.brokers);
    cr_assert(cfg.brokers = strdup(kafka.brokers));
    cfg.embedded = 1;
}

static void drop(rd_kafka_t *rk)
{
    for (int i = 0; i < MAX_CLIENTS; i++)
        if (clients[i] == rk)
            clients[i] = NULL;
    if (rd_kafka_type(rk) == RD_KAFKA_CONSUMER)
        rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
}

static void teardown(void)
{
    for (int i = 0; i < MAX_CLIENTS; i++)
        if (clients[i])
            drop(clients[i]);
    bt_config_release(&cfg);
    bt_test_kafka_stop(&kafka);
}

TestSuite(kafka, .init = setup, .fini = teardown);

static rd_kafka_t *keep(rd_kafka_t *rk)
{
    for (int i = 0; i < MAX_CLIENTS; i++)
        if (!clients[i])
            return clients[i] = rk;
    cr_assert_fail("more than %d clients", MAX_CLIENTS);
    return NULL;
}

static rd_kafka_t *producer(void)
{
    char errstr[512];
    rd_kafka_t *rk = bt_kafka_producer_new(&cfg, errstr, sizeof(errstr));

    cr_assert(rk, "producer: %s", errstr);
    return keep(rk);
}

static rd_kafka_t *consumer(const char *group, const char *topic)
{
    char errstr[512];
    rd_kafka_t *rk =
        bt_kafka_consumer_new(&cfg, group, NULL, NULL, errstr, sizeof(errstr));
    const char *topics[] = {topic};

    cr_assert(rk, "consumer: %s", errstr);
    keep(rk);
    cr_assert_eq(bt_kafka_subscribe(rk, topics, 1), 0);
    return rk;
}

/* A consumer assigned partitions [0, partitions) of topic from the start. */
static rd_kafka_t *reader(const char *topic, int partitions)
{
    char errstr[512];
    rd_kafka_t *rk =
        bt_kafka_consumer_new(&cfg, "reader", NULL, NULL, errstr, sizeof(errstr));
    rd_kafka_topic_partition_list_t *parts =
        rd_kafka_topic_partition_list_new(partitions);
    rd_kafka_resp_err_t err;

    cr_assert(rk, "consumer: %s", errstr);
    keep(rk);
    for (int p = 0; p < partitions; p++)
        rd_kafka_topic_partition_list_add(parts, topic, p)->offset =
            RD_KAFKA_OFFSET_BEGINNING;
    err = rd_kafka_assign(rk, parts);
    rd_kafka_topic_partition_list_destroy(parts);
    cr_assert_eq(err, RD_KAFKA_RESP_ERR_NO_ERROR);
    return rk;
}

static void add_property(const char *prop)
{
    char **grown = realloc(cfg.kafka, (cfg.n_kafka + 1) * sizeof(*grown));

    cr_assert(grown);
    cfg.kafka = grown;
    cr_assert(cfg.kafka[cfg.n_kafka++] = strdup(prop));
}

/* Produces ids [from, to) keyed "wf-<id>", so they spread over partitions. */
static void produce_ids(rd_kafka_t *rk, const char *topic, int from, int to,
                        struct bt_kafka_batch *batch)
{
    char key[32], payload[32];

    for (int i = from; i < to; i++) {
        int klen = snprintf(key, sizeof(key), "wf-%d", i);
        int plen = snprintf(payload, sizeof(payload), "m%d", i);
        cr_assert_eq(
            bt_kafka_produce(rk, topic, key, (size_t)klen, payload, (size_t)plen, batch),
            0, "produce m%d", i);
    }
}

/* Polls until `want` more messages arrived or timeout_ms passed (a bounded
 * number of polls); error events are logged and skipped. Returns how many
 * arrived. */
static int poll_msgs(rd_kafka_t *rk, struct got *got, int want, int timeout_ms)
{
    int64_t deadline = bt_test_now_ms() + timeout_ms;
    int before = got->n;

    while (got->n - before < want && bt_test_now_ms() < deadline) {
        rd_kafka_message_t *rkm = rd_kafka_consumer_poll(rk, 20);
        char text[32];
        size_t len;

        if (!rkm)
            continue;
        if (rkm->err) {
            cr_log_info("consumer event: %s", rd_kafka_message_errstr(rkm));
        } else if (got->n < MAX_MSGS) {
            len = rkm->len < sizeof(text) - 1 ? rkm->len : sizeof(text) - 1;
            memcpy(text, rkm->payload, len);
            text[len] = '\0';
            got->id[got->n] = text[0] == 'm' ? atoi(text + 1) : -1;
            got->partition[got->n] = rkm->partition;
            got->offset[got->n] = rkm->offset;
            got->n++;
        }
        rd_kafka_message_destroy(rkm);
    }
    return got->n - before;
}

/* Asserts that got holds each of ids [0, n) exactly once. */
static void assert_exactly(const struct got *got, int n)
{
    static char seen[MAX_MSGS];

    memset(seen, 0, sizeof(seen));
    cr_assert_eq(got->n, n, "got %d messages, want %d", got->n, n);
    for (int i = 0; i < got->n; i++) {
        cr_assert(got->id[i] >= 0 && got->id[i] < n, "unexpected message m%d",
                  got->id[i]);
        cr_assert(!seen[got->id[i]], "m%d delivered twice", got->id[i]);
        seen[got->id[i]] = 1;
    }
}

/* Serves the group protocol until rk owns `want` partitions. */
static void wait_assigned(rd_kafka_t *rk, int want)
{
    int64_t deadline = bt_test_now_ms() + 15000;
    int cnt = 0;

    while (cnt < want && bt_test_now_ms() < deadline) {
        rd_kafka_topic_partition_list_t *parts = NULL;
        rd_kafka_message_t *rkm = rd_kafka_consumer_poll(rk, 20);

        if (rkm)
            rd_kafka_message_destroy(rkm);
        cr_assert_eq(rd_kafka_assignment(rk, &parts), RD_KAFKA_RESP_ERR_NO_ERROR);
        cnt = parts->cnt;
        rd_kafka_topic_partition_list_destroy(parts);
    }
    cr_assert_eq(cnt, want, "assigned %d partitions, want %d", cnt, want);
}

Test(kafka, produces_with_delivery_reports, .timeout = 60)
{
    const int n = 2000;
    struct bt_kafka_batch batch = {0}, more = {0};
    struct got *got = &got_a;
    char topic[256];
    rd_kafka_t *rk = producer(), *cons;

    bt_kafka_topic(&cfg, "events", topic, sizeof(topic));
    produce_ids(rk, topic, 0, n, &batch);
    cr_assert_eq(batch.pending, n, "reports are served only by polling");
    cr_assert_eq(bt_kafka_wait(rk, &batch, 10000), 0);
    cr_assert_eq(batch.pending, 0);
    cr_assert_eq(batch.failed, 0);
    cr_assert_eq(batch.err, RD_KAFKA_RESP_ERR_NO_ERROR);
    produce_ids(rk, topic, n, n + 10, &more);
    cr_assert_eq(bt_kafka_wait(rk, &more, -1), 0,
                 "a negative timeout waits without limit");
    cr_assert_eq(more.pending, 0);

    /* assigned, not subscribed: the mock delays a new group's first join by ~3 s */
    cons = reader(topic, 2);
    poll_msgs(cons, got, n + 10, 15000);
    cr_assert_eq(poll_msgs(cons, got, 1, 300), 0, "more messages than produced");
    assert_exactly(got, n + 10);
}

Test(kafka, delivery_failure_is_reported)
{
    const int n = 10;
    rd_kafka_resp_err_t errs[50];
    struct bt_kafka_batch batch = {0}, after = {0};
    char topic[256];
    rd_kafka_t *rk = producer();

    bt_kafka_topic(&cfg, "results", topic, sizeof(topic));
    /* more failing Produce requests than the batch can need: each one is permanent */
    for (size_t i = 0; i < sizeof(errs) / sizeof(errs[0]); i++)
        errs[i] = RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE;
    rd_kafka_mock_push_request_errors_array(kafka.mcluster, API_PRODUCE,
                                            sizeof(errs) / sizeof(errs[0]), errs);
    produce_ids(rk, topic, 0, n, &batch);
    cr_assert_eq(bt_kafka_wait(rk, &batch, 10000), BT_EAGAIN);
    cr_assert_eq(batch.pending, 0);
    cr_assert_eq(batch.failed, n);
    cr_assert_eq(batch.err, RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE, "err=%s",
                 rd_kafka_err2name(batch.err));

    /* the failure belongs to that batch, not to the producer */
    rd_kafka_mock_clear_request_errors(kafka.mcluster, API_PRODUCE);
    produce_ids(rk, topic, n, 2 * n, &after);
    cr_assert_eq(bt_kafka_wait(rk, &after, 10000), 0);
    cr_assert_eq(after.failed, 0);
}

Test(kafka, delivery_times_out_while_the_broker_is_down)
{
    struct bt_kafka_batch batch = {0}, after = {0};
    char topic[256];
    rd_kafka_t *rk;
    int rc = BT_EAGAIN;

    add_property("message.timeout.ms=500");
    add_property("reconnect.backoff.max.ms=100");
    rk = producer();
    bt_kafka_topic(&cfg, "events", topic, sizeof(topic));
    cr_assert_eq(rd_kafka_mock_broker_set_down(kafka.mcluster, 1), 0);
    produce_ids(rk, topic, 0, 5, &batch);
    cr_assert_eq(bt_kafka_wait(rk, &batch, 10000), BT_EAGAIN);
    cr_assert_eq(batch.pending, 0);
    cr_assert_eq(batch.failed, 5);
    cr_assert_eq(batch.err, RD_KAFKA_RESP_ERR__MSG_TIMED_OUT, "err=%s",
                 rd_kafka_err2name(batch.err));

    cr_assert_eq(rd_kafka_mock_broker_set_up(kafka.mcluster, 1), 0);
    /* message.timeout.ms is short: retry the batch as a worker would, reusing
     * it only once none of its messages is pending */
    for (int attempt = 0; attempt < 20 && rc == BT_EAGAIN; attempt++) {
        memset(&after, 0, sizeof(after));
        produce_ids(rk, topic, 5, 10, &after);
        rc = bt_kafka_wait(rk, &after, 10000);
    }
    cr_assert_eq(rc, 0, "still failing after the broker came back: %s",
                 rd_kafka_err2name(after.err));
    cr_assert_eq(after.pending, 0);
}

Test(kafka, refuses_a_message_larger_than_message_max_bytes)
{
    static char big[8192];
    struct bt_kafka_batch batch = {0};
    char topic[256];
    rd_kafka_t *rk;

    add_property("message.max.bytes=4096");
    rk = producer();
    bt_kafka_topic(&cfg, "events", topic, sizeof(topic));
    memset(big, 'x', sizeof(big));
    cr_assert_eq(bt_kafka_produce(rk, topic, "k", 1, big, sizeof(big), &batch),
                 BT_ETOOBIG);
    cr_assert_eq(batch.pending, 0, "a refused message is not counted");
}

Test(kafka, consumer_group_commits_offsets_manually)
{
    const int n = 40;
    struct bt_kafka_batch batch = {0};
    struct got *first = &got_a, *second = &got_b;
    char topic[256], committed[MAX_MSGS] = {0};
    int64_t start[2] = {-1, -1}, count[2] = {0}, cut[2];
    rd_kafka_topic_partition_list_t *offsets;
    rd_kafka_t *rk = producer(), *cons;
    int expect = 0;

    bt_kafka_topic(&cfg, "events", topic, sizeof(topic));
    produce_ids(rk, topic, 0, n, &batch);
    cr_assert_eq(bt_kafka_wait(rk, &batch, 10000), 0);

    cons = consumer("group", topic);
    poll_msgs(cons, first, n, 15000);
    assert_exactly(first, n);

    /* commit the first half of what each partition delivered */
    for (int i = 0; i < first->n; i++) {
        int32_t p = first->partition[i];
        cr_assert(p == 0 || p == 1);
        if (start[p] < 0)
            start[p] = first->offset[i];
        count[p]++;
    }
    cr_assert(count[0] > 0 && count[1] > 0, "keys should reach both partitions");
    offsets = rd_kafka_topic_partition_list_new(2);
    for (int p = 0; p < 2; p++) {
        cut[p] = start[p] + count[p] / 2;
        rd_kafka_topic_partition_list_add(offsets, topic, p)->offset = cut[p];
    }
    cr_assert_eq(rd_kafka_commit(cons, offsets, 0), RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_topic_partition_list_destroy(offsets);
    for (int i = 0; i < first->n; i++)
        if (first->offset[i] < cut[first->partition[i]])
            committed[first->id[i]] = 1;
        else
            expect++;
    drop(cons);

    cons = consumer("group", topic);
    poll_msgs(cons, second, expect, 15000);
    cr_assert_eq(poll_msgs(cons, second, 1, 300), 0, "more messages than uncommitted");
    cr_assert_eq(second->n, expect, "redelivered %d, want %d", second->n, expect);
    for (int i = 0; i < second->n; i++) {
        cr_assert(!committed[second->id[i]], "committed m%d came back", second->id[i]);
        cr_assert_geq(second->offset[i], cut[second->partition[i]]);
    }
}

Test(kafka, pauses_and_resumes_partitions)
{
    const int n = 60;
    struct bt_kafka_batch batch = {0};
    struct got *got = &got_a;
    rd_kafka_topic_partition_list_t *paused;
    char topic[256];
    int64_t lo, hi[2];
    rd_kafka_t *rk = producer(), *cons;
    int from_paused = 0;

    bt_kafka_topic(&cfg, "events", topic, sizeof(topic));
    cons = consumer("pauser", topic);
    wait_assigned(cons, 2);
    paused = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(paused, topic, 0);
    cr_assert_eq(rd_kafka_pause_partitions(cons, paused), RD_KAFKA_RESP_ERR_NO_ERROR);
    cr_assert_eq(paused->elems[0].err, RD_KAFKA_RESP_ERR_NO_ERROR);

    produce_ids(rk, topic, 0, n, &batch);
    cr_assert_eq(bt_kafka_wait(rk, &batch, 10000), 0);
    for (int p = 0; p < 2; p++)
        cr_assert_eq(rd_kafka_query_watermark_offsets(rk, topic, p, &lo, &hi[p], 5000),
                     RD_KAFKA_RESP_ERR_NO_ERROR);
    cr_assert(hi[0] > 0 && hi[1] > 0 && hi[0] + hi[1] == n);

    /* the running partition delivers all of its messages, the paused one none */
    poll_msgs(cons, got, (int)hi[1], 15000);
    poll_msgs(cons, got, 1, 500);
    cr_assert_eq(got->n, hi[1], "got %d, want the %d of partition 1", got->n, (int)hi[1]);
    for (int i = 0; i < got->n; i++)
        cr_assert_eq(got->partition[i], 1, "m%d came from the paused partition",
                     got->id[i]);

    cr_assert_eq(rd_kafka_resume_partitions(cons, paused), RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_topic_partition_list_destroy(paused);
    poll_msgs(cons, got, (int)hi[0], 15000);
    assert_exactly(got, n);
    for (int i = 0; i < got->n; i++)
        from_paused += got->partition[i] == 0;
    cr_assert_eq(from_paused, hi[0]);
}

Test(kafka, passes_kafka_properties_through_and_rejects_unknown_ones)
{
    char errstr[512], value[64];
    size_t size = sizeof(value);
    rd_kafka_t *rk, *cons;

    add_property("client.id=x");
    add_property("linger.ms=7");
    rk = producer();
    cr_assert(!strncmp(rd_kafka_name(rk), "x#", 2), "name %s", rd_kafka_name(rk));
    cr_assert_eq(rd_kafka_conf_get(rd_kafka_conf(rk), "linger.ms", value, &size),
                 RD_KAFKA_CONF_OK);
    cr_assert_str_eq(value, "7", "the operator's value wins over ours");
    cons = consumer("props", "unused");
    cr_assert(!strncmp(rd_kafka_name(cons), "x#", 2), "name %s", rd_kafka_name(cons));
    size = sizeof(value);
    cr_assert_eq(
        rd_kafka_conf_get(rd_kafka_conf(cons), "enable.auto.commit", value, &size),
        RD_KAFKA_CONF_OK);
    cr_assert_str_eq(value, "false");

    add_property("no.such.property=1");
    errstr[0] = '\0';
    cr_assert_null(bt_kafka_producer_new(&cfg, errstr, sizeof(errstr)));
    cr_assert(strstr(errstr, "no.such.property"), "errstr: %s", errstr);
    errstr[0] = '\0';
    cr_assert_null(bt_kafka_consumer_new(&cfg, "g", NULL, NULL, errstr, sizeof(errstr)));
    cr_assert(strstr(errstr, "no.such.property"), "errstr: %s", errstr);

    free(cfg.kafka[--cfg.n_kafka]);
    add_property("no-equals-sign");
    errstr[0] = '\0';
    cr_assert_null(bt_kafka_producer_new(&cfg, errstr, sizeof(errstr)));
    cr_assert(strstr(errstr, "no-equals-sign"), "errstr: %s", errstr);
}

static void take_and_give_back(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                               rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    (void)opaque;
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS)
        bt_kafka_assign(rk, parts);
    else
        bt_kafka_unassign(rk, parts);
}

/* The consumer's group.instance.id, "" when it has none. */
static void instance_id(rd_kafka_t *rk, char *value, size_t size)
{
    if (rd_kafka_conf_get(rd_kafka_conf(rk), "group.instance.id", value, &size) !=
        RD_KAFKA_CONF_OK)
        value[0] = '\0';
}

/* --member: each group member of the process gets its own static id, the
 * same at every start (numbered in the order they are made); readers without
 * a group role stay dynamic; a static member consumes like any other. */
Test(kafka, members_of_a_named_worker_are_static_and_distinct, .timeout = 60)
{
    char errstr[512], first[128], second[128], plain[128], topic[256], base[128];
    struct bt_kafka_batch batch = {0};
    const char *topics[1] = {topic};
    rd_kafka_t *a, *b, *r, *rk = producer();

    cr_assert(cfg.member = strdup("pod-3"));
    a = keep(bt_kafka_consumer_new(&cfg, "members", take_and_give_back, NULL, errstr,
                                   sizeof(errstr)));
    b = keep(bt_kafka_consumer_new(&cfg, "members", take_and_give_back, NULL, errstr,
                                   sizeof(errstr)));
    r = keep(bt_kafka_consumer_new(&cfg, "reader", NULL, NULL, errstr, sizeof(errstr)));
    cr_assert(a && b && r, "%s", errstr);
    instance_id(a, first, sizeof(first));
    instance_id(b, second, sizeof(second));
    instance_id(r, plain, sizeof(plain));
    cr_assert(!strncmp(first, "pod-3-", 6), "group.instance.id %s", first);
    snprintf(base, sizeof(base), "pod-3-%d", atoi(first + 6) + 1);
    cr_assert_str_eq(second, base, "the next member is numbered after the first");
    cr_assert(strncmp(plain, "pod-3", 5), "a reader is no static member: %s", plain);

    drop(b);
    bt_kafka_topic(&cfg, "static", topic, sizeof(topic));
    produce_ids(rk, topic, 0, 10, &batch);
    cr_assert_eq(bt_kafka_wait(rk, &batch, 10000), 0);
    cr_assert_eq(bt_kafka_subscribe(a, topics, 1), 0);
    poll_msgs(a, &got_a, 10, 20000);
    assert_exactly(&got_a, 10);
}

static bool assigned(rd_kafka_t *rk)
{
    rd_kafka_topic_partition_list_t *parts = NULL;
    bool any = !rd_kafka_assignment(rk, &parts) && parts && parts->cnt > 0;

    if (parts)
        rd_kafka_topic_partition_list_destroy(parts);
    return any;
}

/* A consumer closed while its group rebalances runs its revoke callback with
 * no current rebalance protocol (librdkafka answers NULL then): the stop of a
 * worker during a rebalance crashed on it (chaos, rolling restarts). Each
 * round closes the first member just after a second one joined. */
Test(kafka, a_member_closed_during_a_rebalance_gives_back_its_partitions, .timeout = 120)
{
    char errstr[512], topic[256];
    const char *topics[1] = {topic};
    struct bt_kafka_batch batch = {0};
    rd_kafka_t *rk = producer();

    bt_kafka_topic(&cfg, "closing", topic, sizeof(topic));
    produce_ids(rk, topic, 0, 4, &batch);
    cr_assert_eq(bt_kafka_wait(rk, &batch, 10000), 0);
    for (int round = 0; round < 3; round++) {
        rd_kafka_t *a = keep(bt_kafka_consumer_new(&cfg, "closing", take_and_give_back,
                                                   NULL, errstr, sizeof(errstr)));
        rd_kafka_t *b;
        int64_t deadline = bt_test_now_ms() + 20000;

        cr_assert(a, "%s", errstr);
        cr_assert_eq(bt_kafka_subscribe(a, topics, 1), 0);
        while (!assigned(a) && bt_test_now_ms() < deadline) {
            rd_kafka_message_t *m = rd_kafka_consumer_poll(a, 50);
            if (m)
                rd_kafka_message_destroy(m);
        }
        cr_assert(assigned(a), "the first member got no partitions");
        b = keep(bt_kafka_consumer_new(&cfg, "closing", take_and_give_back, NULL, errstr,
                                       sizeof(errstr)));
        cr_assert(b, "%s", errstr);
        cr_assert_eq(bt_kafka_subscribe(b, topics, 1), 0);
        for (int i = 0; i < 4 + round * 3; i++) {
            rd_kafka_message_t *m = rd_kafka_consumer_poll(b, 50);
            if (m)
                rd_kafka_message_destroy(m);
        }
        drop(a); /* the revoke callback runs in here */
        drop(b);
    }
}

/* The callbacks' helpers when the group has no protocol any more (librdkafka
 * answers NULL for it once the consumer is closing): they must not crash. */
Test(kafka, giving_back_partitions_works_once_the_group_is_gone, .timeout = 60)
{
    char errstr[512], topic[256];
    const char *topics[1] = {topic};
    rd_kafka_t *a = bt_kafka_consumer_new(&cfg, "gone", take_and_give_back, NULL, errstr,
                                          sizeof(errstr));
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(1);

    cr_assert(a, "%s", errstr);
    bt_kafka_topic(&cfg, "gone", topic, sizeof(topic));
    cr_assert_eq(bt_kafka_subscribe(a, topics, 1), 0);
    rd_kafka_topic_partition_list_add(parts, topic, 0);
    rd_kafka_consumer_close(a);
    bt_kafka_unassign(a, parts);
    bt_kafka_assign(a, parts);
    bt_kafka_unassign(a, parts);
    rd_kafka_topic_partition_list_destroy(parts);
    rd_kafka_destroy(a);
}
