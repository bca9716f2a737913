/* A real redis-server per test, on a free loopback port with its own data
 * dir, durable on every write (appendfsync always) so that kill -9 tests can
 * assert what survives. */
#define _XOPEN_SOURCE 700 /* nftw */
#include <arpa/inet.h>
#include <ftw.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>
#include <hiredis/hiredis.h>

#include "harness.h"

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
    char exe[512], port[16], logpath[300];
    /* clang-format off */
    const char *argv[] = {exe,
                          "--port", port,
                          "--bind", "127.0.0.1",
                          "--dir", r->dir,
                          "--appendonly", "yes",
                          "--appendfsync", "always",
                          "--save", "",
                          "--daemonize", "no",
                          NULL};
    /* clang-format on */
    int64_t deadline = bt_test_now_ms() + BT_TEST_REDIS_START_MS;
    int ret = -1;

    if (find_in_path("redis-server", exe, sizeof(exe)) < 0)
        goto out;
    snprintf(port, sizeof(port), "%d", r->port);
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

int bt_test_redis_start(struct bt_test_redis *r)
{
    int ret = -1;

    memset(r, 0, sizeof(*r));
    snprintf(r->dir, sizeof(r->dir), "/tmp/bt-redis-XXXXXX");
    if (!mkdtemp(r->dir)) {
        r->dir[0] = '\0';
        goto out;
    }
    /* Someone may take the probed port before redis-server binds it. */
    for (int attempt = 0; attempt < 3 && ret < 0; attempt++) {
        r->port = free_port();
        if (r->port < 0)
            break;
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

static int remove_entry(const char *path, const struct stat *st, int type,
                        struct FTW *ftw)
{
    (void)st;
    (void)type;
    (void)ftw;
    return remove(path);
}

void bt_test_redis_stop(struct bt_test_redis *r)
{
    bt_test_redis_kill(r);
    if (r->dir[0])
        nftw(r->dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    r->dir[0] = '\0';
}
