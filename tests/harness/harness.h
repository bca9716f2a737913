/* Test fixtures: real services on free loopback ports and real baton
 * processes. Everything started here dies with the test process (children get
 * PR_SET_PDEATHSIG=SIGKILL), so a failing or crashing test leaves nothing
 * behind; the stop functions clean up in the ordinary case. */
#ifndef BT_HARNESS_H
#define BT_HARNESS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

/* A redis-server on a free port, with its own data dir (appendonly yes). */
struct bt_test_redis {
    pid_t pid;
    int port;
    char addr[64]; /* "127.0.0.1:<port>" */
    char dir[256]; /* data dir, removed by stop */
    bool cluster;  /* set before start: a Redis Cluster node (cluster-enabled) */
    int bus_port;  /* a cluster node's cluster bus */
};
/* Starts it and waits until it answers PING. Returns 0 or -1. */
int bt_test_redis_start(struct bt_test_redis *r);
/* SIGKILLs it (data dir kept), for restart tests. */
void bt_test_redis_kill(struct bt_test_redis *r);
/* Starts it again on the same port and dir (AOF replayed). Returns 0 or -1. */
int bt_test_redis_restart(struct bt_test_redis *r);
/* Stops it and removes its data dir. Idempotent. */
void bt_test_redis_stop(struct bt_test_redis *r);
/* Has r (its dir made) stopped at the process's exit if it was not by then:
 * bt_test_redis_start does it. */
void bt_test_redis_track(struct bt_test_redis *r);

/* A Redis Cluster of 3 masters, with a replica each when asked (for a
 * failover, a second after a master stops answering), all on loopback, made
 * with `redis-cli --cluster create`. */
#define BT_TEST_RCLUSTER_NODES 6
struct bt_test_rcluster {
    struct bt_test_redis node[BT_TEST_RCLUSTER_NODES];
    int n;           /* nodes: 3, or 6 with replicas */
    char seeds[256]; /* "127.0.0.1:<port>,..." of every node */
};
/* Starts the nodes, makes the cluster, and waits until every node sees all
 * 16384 slots served (and each master its replica). Returns 0 or -1 (what
 * was started is stopped). */
int bt_test_rcluster_start(struct bt_test_rcluster *c, bool replicas);
/* The node that serves key's slot as a master now; -1 when none does. */
int bt_test_rcluster_master_of(struct bt_test_rcluster *c, const char *key);
/* Waits up to timeout_ms until a node other than the dead one serves every
 * slot the dead one served, seen from every live node. Returns 0 or -1. */
int bt_test_rcluster_await_failover(struct bt_test_rcluster *c, int dead, int timeout_ms);
void bt_test_rcluster_stop(struct bt_test_rcluster *c);

/* A Kafka mock cluster in this process, with the baton topics of `prefix`
 * created (events, results, dlq, tasks.default, tasks.legacy, archive and any extra
 * task queues given, `partitions` each). */
struct bt_test_kafka {
    rd_kafka_t *rk; /* owns the cluster */
    rd_kafka_mock_cluster_t *mcluster;
    char brokers[256];
};
int bt_test_kafka_start(struct bt_test_kafka *k, const char *prefix, int partitions,
                        const char *const *extra_queues);
/* Creates one more topic. Returns 0 or -1. */
int bt_test_kafka_topic(struct bt_test_kafka *k, const char *topic, int partitions);
void bt_test_kafka_stop(struct bt_test_kafka *k);

/* A prefix unique to this test process ("t<pid>x<counter>"), for topics and keys. */
const char *bt_test_prefix(void);

/* Spawns argv (argv[0] is a path) with extra environment entries env
 * ("NAME=value", NULL-terminated, may be NULL), stdout and stderr appended to
 * log_path (NULL: inherited). Returns the pid or -1. */
pid_t bt_test_spawn(const char *const *argv, const char *const *env,
                    const char *log_path);
/* Waits up to timeout_ms for pid to exit; returns its exit status (0..255,
 * 128+signal) or -1 on timeout. */
int bt_test_wait(pid_t pid, int timeout_ms);
/* SIGKILL and reap. */
void bt_test_kill9(pid_t pid);
/* SIGTERM, wait up to timeout_ms, then SIGKILL; returns the exit status. */
int bt_test_stop(pid_t pid, int timeout_ms);
/* How long a test lets a baton program take to stop: past a worker's own
 * 20 s stop deadline (stop-timeout-ms, stop.h), which a sanitizer build on a loaded
 * machine may approach, so that a slow stop is not taken for a hang. */
#define BT_TEST_STOP_MS 25000

/* Milliseconds of CLOCK_MONOTONIC. */
int64_t bt_test_now_ms(void);

/* Polls cond every 10 ms until it holds or timeout_ms passes, then sets the
 * bool ok to whether it held. Synchronise on conditions, never on sleeps. */
#define BT_TEST_WAIT_UNTIL(ok, cond, timeout_ms)                                         \
    do {                                                                                 \
        int64_t bt__deadline = bt_test_now_ms() + (timeout_ms);                          \
        while (!((ok) = (cond)) && bt_test_now_ms() < bt__deadline)                      \
            bt_test_sleep_ms(10);                                                        \
    } while (0)
void bt_test_sleep_ms(int ms);

/* How many lines of the file at path contain text (0 when it cannot be read). */
size_t bt_test_count_lines_with(const char *path, const char *text);
/* The last n - 1 bytes of the file at path (all of a shorter one; "" when it
 * cannot be read) in buf, NUL-terminated: a program's last words for a
 * failure's message. Returns buf. */
char *bt_test_file_tail(const char *path, char *buf, size_t n);

/* Skips the test under the sanitizers (make test-asan): for tests of whole
 * programs' timing and orchestration (the chaos and bench drivers, a browser,
 * timeouts waited out), whose C paths other tests run there, so that CI
 * stays within its 20 minutes. They run in the release build (make test). */
#if defined(__SANITIZE_ADDRESS__)
#define BT_TEST_RELEASE_ONLY() cr_skip_test("runs in the release build only (make test)")
#else
#define BT_TEST_RELEASE_ONLY() ((void)0)
#endif

#endif
