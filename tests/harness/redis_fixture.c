/* A real redis-server per test, on a free loopback port with its own data
 * dir, durable on every write (appendfsync always) so that kill -9 tests can
 * assert what survives. */
#define _XOPEN_SOURCE 700 /* POSIX.1-2008 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>
#include <hiredis/hiredis.h>

#include "harness.h"
#include "tree.h"

#define BT_TEST_REDIS_START_MS 5000

/* The port the kernel hands out for 127.0.0.1:0; it is free again once the
 * socket is closed, for redis-server to take unless someone is quicker. */
static int free_port(void)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0};
    socklen_t len = sizeof(sa);
    int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;

    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0)
        goto out;
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &len) < 0)
        goto out;
    port = ntohs(sa.sin_port);
out:
    if (fd >= 0)
        close(fd);
    return port;
}

/* execve does not search PATH, and redis-server lives in different places. */
static int find_in_path(const char *name, char *path, size_t size)
{
    const char *dirs = getenv("PATH");
    int ret = -1;

    if (!dirs)
        dirs = "/usr/local/bin:/usr/bin:/bin";
    while (*dirs && ret < 0) {
        size_t n = strcspn(dirs, ":");

        snprintf(path, size, "%.*s/%s", (int)n, dirs, name);
        if (access(path, X_OK) == 0)
            ret = 0;
        dirs += n + (dirs[n] == ':');
    }
    return ret;
}

static bool answers_ping(int port)
{
    struct timeval tv = {.tv_sec = 0, .tv_usec = 200000};
    redisContext *rc = redisConnectWithTimeout("127.0.0.1", port, tv);
    redisReply *reply = NULL;
    bool ok = false;

    if (!rc || rc->err)
        goto out;
    reply = redisCommand(rc, "PING");
    /* While it replays its AOF, redis answers -LOADING. */
    ok = reply && reply->type == REDIS_REPLY_STATUS && strcmp(reply->str, "PONG") == 0;
out:
    freeReplyObject(reply);
    redisFree(rc);
    return ok;
}

static void dump_log(const struct bt_test_redis *r)
{
    char path[300], buf[4096];
    FILE *f;
    size_t n;

    snprintf(path, sizeof(path), "%s/redis.log", r->dir);
    f = fopen(path, "r");
    if (!f)
        return;
    fprintf(stderr, "redis-server on port %d did not start; its log:\n", r->port);
    while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
        fwrite(buf, 1, n, stderr);
    fclose(f);
}

/* Starts redis-server on r->port and r->dir and waits until it answers. */
static int launch(struct bt_test_redis *r)
{
    char exe[512], port[16], bus[16], logpath[300];
    /* clang-format off */
    const char *argv[] = {exe,
                          "--port", port,
                          "--bind", "127.0.0.1",
                          "--dir", r->dir,
                          "--appendonly", "yes",
                          "--appendfsync", "always",
                          "--save", "",
                          "--daemonize", "no",
                          /* a cluster node: its state in its own dir, a
                           * failover a second after a master stops */
                          r->cluster ? "--cluster-enabled" : NULL, "yes",
                          "--cluster-config-file", "nodes.conf",
                          "--cluster-node-timeout", "1000",
                          /* its own: port + 10000 may be past 65535 */
                          "--cluster-port", bus,
                          NULL};
    /* clang-format on */
    int64_t deadline = bt_test_now_ms() + BT_TEST_REDIS_START_MS;
    int ret = -1;

    if (find_in_path("redis-server", exe, sizeof(exe)) < 0)
        goto out;
    snprintf(port, sizeof(port), "%d", r->port);
    snprintf(bus, sizeof(bus), "%d", r->bus_port);
    snprintf(logpath, sizeof(logpath), "%s/redis.log", r->dir);
    r->pid = bt_test_spawn(argv, NULL, logpath);
    if (r->pid < 0)
        goto out;
    for (;;) {
        if (answers_ping(r->port)) {
            ret = 0;
            break;
        }
        /* A server that exits early (its port taken, say) is not waited for. */
        if (bt_test_wait(r->pid, 0) >= 0) {
            r->pid = 0;
            break;
        }
        if (bt_test_now_ms() >= deadline)
            break;
        bt_test_sleep_ms(10);
    }
out:
    if (ret < 0) {
        bt_test_kill9(r->pid);
        r->pid = 0;
    }
    return ret;
}

/* The fixtures not stopped yet: a test that skips itself (cr_skip_test)
 * leaves without its .fini, so what it started is stopped at its exit. */
#define LIVE_MAX 64
static struct bt_test_redis *live[LIVE_MAX];

static void stop_the_rest(void)
{
    for (int i = 0; i < LIVE_MAX; i++)
        if (live[i])
            bt_test_redis_stop(live[i]);
}

void bt_test_redis_track(struct bt_test_redis *r)
{
    static bool registered;

    if (!registered)
        registered = atexit(stop_the_rest) == 0;
    for (int i = 0; i < LIVE_MAX; i++) {
        if (!live[i] || live[i] == r) {
            live[i] = r;
            return;
        }
    }
}

int bt_test_redis_start(struct bt_test_redis *r)
{
    bool cluster = r->cluster;
    int ret = -1;

    memset(r, 0, sizeof(*r));
    r->cluster = cluster;
    snprintf(r->dir, sizeof(r->dir), "/tmp/bt-redis-XXXXXX");
    if (!mkdtemp(r->dir)) {
        r->dir[0] = '\0';
        goto out;
    }
    bt_test_redis_track(r);
    /* Someone may take the probed port before redis-server binds it. */
    for (int attempt = 0; attempt < 3 && ret < 0; attempt++) {
        r->port = free_port();
        if (r->port < 0)
            break;
        do
            r->bus_port = r->cluster ? free_port() : 0;
        while (r->cluster && r->bus_port == r->port);
        snprintf(r->addr, sizeof(r->addr), "127.0.0.1:%d", r->port);
        ret = launch(r);
    }
out:
    if (ret < 0) {
        dump_log(r);
        bt_test_redis_stop(r);
    }
    return ret;
}

void bt_test_redis_kill(struct bt_test_redis *r)
{
    bt_test_kill9(r->pid);
    r->pid = 0;
}

int bt_test_redis_restart(struct bt_test_redis *r)
{
    int ret;

    bt_test_redis_kill(r);
    ret = launch(r);
    if (ret < 0)
        dump_log(r);
    return ret;
}

void bt_test_redis_stop(struct bt_test_redis *r)
{
    for (int i = 0; i < LIVE_MAX; i++)
        if (live[i] == r)
            live[i] = NULL;
    bt_test_redis_kill(r);
    if (r->dir[0])
        bt_remove_tree(r->dir);
    r->dir[0] = '\0';
}

/* Redis Cluster. */

#define BT_TEST_RCLUSTER_START_MS 30000

static redisReply *node_command(const struct bt_test_redis *r, const char *cmd)
{
    struct timeval tv = {.tv_sec = 0, .tv_usec = 500000};
    redisContext *rc =
        r->pid > 0 ? redisConnectWithTimeout("127.0.0.1", r->port, tv) : NULL;
    redisReply *reply = rc && !rc->err ? redisCommand(rc, cmd) : NULL;

    redisFree(rc);
    return reply;
}

/* The port of the master serving slot in a CLUSTER SLOTS reply; -1: none. */
static int slot_master(const redisReply *slots, long long slot)
{
    for (size_t i = 0; slots && i < slots->elements; i++) {
        const redisReply *e = slots->element[i];

        if (e->elements >= 3 && e->element[0]->integer <= slot &&
            slot <= e->element[1]->integer)
            return (int)e->element[2]->element[1]->integer;
    }
    return -1;
}

/* Whether node r sees the cluster up, every slot served, none by dead_port,
 * and each master with its replica when replicas. */
static bool node_sees_cluster_up(const struct bt_test_redis *r, int dead_port,
                                 bool replicas)
{
    redisReply *info = node_command(r, "CLUSTER INFO");
    redisReply *slots = node_command(r, "CLUSTER SLOTS");
    bool ok = info && info->type == REDIS_REPLY_STRING &&
              strstr(info->str, "cluster_state:ok") &&
              strstr(info->str, "cluster_slots_ok:16384") && slots &&
              slots->type == REDIS_REPLY_ARRAY;

    for (size_t i = 0; ok && i < slots->elements; i++)
        ok = slots->element[i]->elements >= (replicas ? 4 : 3) &&
             slots->element[i]->element[2]->element[1]->integer != dead_port;
    freeReplyObject(info);
    freeReplyObject(slots);
    return ok;
}

static bool cluster_up(const struct bt_test_rcluster *c, int dead)
{
    for (int i = 0; i < c->n; i++)
        if (i != dead &&
            !node_sees_cluster_up(&c->node[i], dead >= 0 ? c->node[dead].port : -1,
                                  dead < 0 && c->n > 3))
            return false;
    return true;
}

static int cluster_create(struct bt_test_rcluster *c)
{
    const char *argv[BT_TEST_RCLUSTER_NODES + 8] = {0};
    char exe[512], logpath[300], tail[2048];
    int n = 0, status;
    pid_t pid;

    if (find_in_path("redis-cli", exe, sizeof(exe)) < 0)
        return -1;
    argv[n++] = exe;
    argv[n++] = "--cluster";
    argv[n++] = "create";
    for (int i = 0; i < c->n; i++)
        argv[n++] = c->node[i].addr;
    argv[n++] = "--cluster-replicas";
    argv[n++] = c->n > 3 ? "1" : "0";
    argv[n++] = "--cluster-yes";
    snprintf(logpath, sizeof(logpath), "%s/create.log", c->node[0].dir);
    if ((pid = bt_test_spawn(argv, NULL, logpath)) < 0)
        return -1;
    if ((status = bt_test_wait(pid, BT_TEST_RCLUSTER_START_MS)) != 0) {
        bt_test_kill9(pid);
        fprintf(stderr, "redis-cli --cluster create failed (%d):\n%s\n", status,
                bt_test_file_tail(logpath, tail, sizeof(tail)));
        return -1;
    }
    return 0;
}

int bt_test_rcluster_start(struct bt_test_rcluster *c, bool replicas)
{
    size_t len = 0;
    bool up;

    memset(c, 0, sizeof(*c));
    c->n = replicas ? BT_TEST_RCLUSTER_NODES : 3;
    for (int i = 0; i < c->n; i++) {
        c->node[i].cluster = true;
        if (bt_test_redis_start(&c->node[i]) < 0)
            goto fail;
        len += (size_t)snprintf(c->seeds + len, sizeof(c->seeds) - len, "%s%s",
                                i ? "," : "", c->node[i].addr);
    }
    if (cluster_create(c) < 0)
        goto fail;
    BT_TEST_WAIT_UNTIL(up, cluster_up(c, -1), BT_TEST_RCLUSTER_START_MS);
    if (up)
        return 0;
    fprintf(stderr, "the redis cluster did not come up\n");
fail:
    bt_test_rcluster_stop(c);
    return -1;
}

int bt_test_rcluster_master_of(struct bt_test_rcluster *c, const char *key)
{
    for (int i = 0; i < c->n; i++) {
        struct timeval tv = {.tv_sec = 0, .tv_usec = 500000};
        redisContext *rc;
        redisReply *slot = NULL, *slots = NULL;
        int port = -1;

        if (c->node[i].pid <= 0)
            continue;
        rc = redisConnectWithTimeout("127.0.0.1", c->node[i].port, tv);
        if (rc && !rc->err && (slot = redisCommand(rc, "CLUSTER KEYSLOT %s", key)) &&
            (slots = redisCommand(rc, "CLUSTER SLOTS")))
            port = slot_master(slots, slot->integer);
        freeReplyObject(slot);
        freeReplyObject(slots);
        redisFree(rc);
        for (int j = 0; port > 0 && j < c->n; j++)
            if (c->node[j].port == port)
                return j;
    }
    return -1;
}

int bt_test_rcluster_await_failover(struct bt_test_rcluster *c, int dead, int timeout_ms)
{
    bool up;

    BT_TEST_WAIT_UNTIL(up, cluster_up(c, dead), timeout_ms);
    return up ? 0 : -1;
}

void bt_test_rcluster_stop(struct bt_test_rcluster *c)
{
    for (int i = 0; i < BT_TEST_RCLUSTER_NODES; i++)
        bt_test_redis_stop(&c->node[i]);
}
