/* The Kafka fixture: librdkafka's mock cluster in the test process, one
 * broker on loopback, with the baton topics of a prefix created up front. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

int bt_test_kafka_topic(struct bt_test_kafka *k, const char *topic, int partitions)
{
    rd_kafka_resp_err_t err =
        rd_kafka_mock_topic_create(k->mcluster, topic, partitions, 1);

    if (err) {
        fprintf(stderr, "kafka fixture: cannot create topic %s: %s\n", topic,
                rd_kafka_err2str(err));
        return -1;
    }
    return 0;
}

static int create_suffix(struct bt_test_kafka *k, const char *prefix, const char *suffix,
                         int partitions)
{
    char topic[512];

    snprintf(topic, sizeof(topic), "%s.%s", prefix, suffix);
    return bt_test_kafka_topic(k, topic, partitions);
}

int bt_test_kafka_start(struct bt_test_kafka *k, const char *prefix, int partitions,
                        const char *const *extra_queues)
{
    static const char *const fixed[] = {"events",        "results",      "dlq",
                                        "tasks.default", "tasks.legacy", "archive"};
    char errstr[512], suffix[256];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    const char *bootstraps;

    memset(k, 0, sizeof(*k));
    /* this handle only hosts the cluster: its "no bootstrap.servers" notice is noise */
    rd_kafka_conf_set(conf, "log_level", "4", NULL, 0);
    /* BT_TEST_MOCK_DEBUG=mock: the cluster's side on the test's stderr */
    if (getenv("BT_TEST_MOCK_DEBUG")) {
        rd_kafka_conf_set(conf, "log_level", "7", NULL, 0);
        rd_kafka_conf_set(conf, "debug", getenv("BT_TEST_MOCK_DEBUG"), NULL, 0);
    }
    if (!(k->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr)))) {
        rd_kafka_conf_destroy(conf);
        fprintf(stderr, "kafka fixture: cannot create a handle: %s\n", errstr);
        return -1;
    }
    if (!(k->mcluster = rd_kafka_mock_cluster_new(k->rk, 1)) ||
        !(bootstraps = rd_kafka_mock_cluster_bootstraps(k->mcluster))) {
        fprintf(stderr, "kafka fixture: cannot start the mock cluster\n");
        goto fail;
    }
    snprintf(k->brokers, sizeof(k->brokers), "%s", bootstraps);
    for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
        if (create_suffix(k, prefix, fixed[i], partitions))
            goto fail;
    for (size_t i = 0; extra_queues && extra_queues[i]; i++) {
        snprintf(suffix, sizeof(suffix), "tasks.%s", extra_queues[i]);
        if (create_suffix(k, prefix, suffix, partitions))
            goto fail;
        snprintf(suffix, sizeof(suffix), "events.%s", extra_queues[i]);
        if (create_suffix(k, prefix, suffix, partitions))
            goto fail;
    }
    return 0;
fail:
    bt_test_kafka_stop(k);
    return -1;
}

void bt_test_kafka_stop(struct bt_test_kafka *k)
{
    /* the cluster before the handle that owns it */
    if (k->mcluster)
        rd_kafka_mock_cluster_destroy(k->mcluster);
    if (k->rk)
        rd_kafka_destroy(k->rk);
    k->mcluster = NULL;
    k->rk = NULL;
    k->brokers[0] = '\0';
}
