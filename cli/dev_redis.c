/* `baton dev`'s Redis: the credentials of its own redis-server, given to it
 * in a config file (mode 0600 in $BATON_HOME) rather than as flags, as a
 * command line is anybody's to read in ps; and with --redis-cluster, the
 * cluster its nodes make. */
#define _XOPEN_SOURCE 700 /* POSIX.1-2008 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/time.h>
#include <hiredis/hiredis.h>

#include "cli.h"
#include "clock.h"
#include "err.h"
#include "log.h"
#include "proc.h"
#include "tree.h"

#define CLUSTER_TIMEOUT_MS 30000 /* redis-cli's create, then every slot served */

/* One config-file argument in double quotes, as redis-server reads them
 * (sdssplitargs): a password may hold spaces, quotes or backslashes. */
static void put_quoted(FILE *f, const char *lead, const char *v)
{
    fprintf(f, "\"%s", lead);
    for (; *v; v++)
        fprintf(f, *v == '"' || *v == '\\' ? "\\%c" : "%c", *v);
    fputc('"', f);
}

int bt_cli_dev_redis_conf(const struct bt_config *cfg, char *path, size_t n)
{
    FILE *f;
    int fd, bad;

    path[0] = '\0';
    if (!cfg->redis_password)
        return 0;
    snprintf(path, n, "%s/redis-auth.conf", cfg->home);
    unlink(path); /* a file left by another umask or user: start afresh */
    if ((fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600)) < 0 ||
        !(f = fdopen(fd, "w"))) {
        if (fd >= 0)
            close(fd);
        bt_log(BT_LOG_ERROR, "cannot write: %s file=%s", strerror(errno), path);
        return BT_EIO;
    }
    /* the default user gets the password too: clients without a user
     * (redis-cli -a) still work, and nobody gets in without it */
    fputs("requirepass ", f);
    put_quoted(f, "", cfg->redis_password);
    if (cfg->redis_user) {
        fputs("\nuser ", f);
        put_quoted(f, "", cfg->redis_user);
        fputs(" on ", f);
        put_quoted(f, ">", cfg->redis_password);
        fputs(" ~* &* +@all", f);
    }
    fputc('\n', f);
    bad = fflush(f) != 0;
    if (fclose(f) || bad) {
        bt_log(BT_LOG_ERROR, "cannot write: %s file=%s", strerror(errno), path);
        return BT_EIO;
    }
    return 0;
}

int bt_cli_dev_cluster_reset(const struct bt_config *cfg)
{
    char dir[PATH_MAX];

    snprintf(dir, sizeof(dir), "%s/redis-cluster", cfg->home);
    if (bt_remove_tree(dir) && errno != ENOENT) {
        bt_log(BT_LOG_ERROR, "cannot remove the last run's cluster: %s dir=%s",
               strerror(errno), dir);
        return BT_EIO;
    }
    return 0;
}

/* Whether the node at addr ("host:port") sees all 16384 slots served. */
static bool cluster_up(const struct bt_config *cfg, const char *addr)
{
    struct timeval tv = {.tv_sec = 0, .tv_usec = 500000};
    const char *colon = strrchr(addr, ':');
    redisContext *rc = redisConnectWithTimeout("127.0.0.1", atoi(colon + 1), tv);
    redisReply *reply = NULL;
    bool up = false;

    if (rc && !rc->err && cfg->redis_password)
        freeReplyObject(
            cfg->redis_user
                ? redisCommand(rc, "AUTH %s %s", cfg->redis_user, cfg->redis_password)
                : redisCommand(rc, "AUTH %s", cfg->redis_password));
    if (rc && !rc->err && (reply = redisCommand(rc, "CLUSTER INFO")))
        up = reply->type == REDIS_REPLY_STRING &&
             strstr(reply->str, "cluster_state:ok") &&
             strstr(reply->str, "cluster_slots_ok:16384");
    freeReplyObject(reply);
    redisFree(rc);
    return up;
}

static bool all_up(const struct bt_config *cfg, const char *addrs)
{
    char copy[512], *save = NULL;

    snprintf(copy, sizeof(copy), "%s", addrs);
    for (char *a = strtok_r(copy, ",", &save); a; a = strtok_r(NULL, ",", &save))
        if (!cluster_up(cfg, a))
            return false;
    return true;
}

/* redis-cli's arguments to make a cluster of the nodes at addrs: a new
 * NULL-terminated array (bt_strv_free), or NULL when out of memory. */
static char **create_argv(const struct bt_config *cfg, const char *exe, const char *addrs)
{
    char copy[512], *save = NULL;
    const char *args[24] = {exe, "--cluster", "create"};
    char **argv = calloc(24, sizeof(*argv));
    int argc = 3;

    snprintf(copy, sizeof(copy), "%s", addrs);
    for (char *a = strtok_r(copy, ",", &save); a && argc < 16;
         a = strtok_r(NULL, ",", &save))
        args[argc++] = a;
    args[argc++] = "--cluster-replicas";
    args[argc++] = "0";
    args[argc++] = "--cluster-yes";
    if (cfg->redis_user) { /* the password comes from REDISCLI_AUTH */
        args[argc++] = "--user";
        args[argc++] = cfg->redis_user;
    }
    for (int i = 0; argv && i < argc; i++)
        if (!(argv[i] = strdup(args[i]))) {
            bt_strv_free(argv);
            return NULL;
        }
    return argv;
}

int bt_cli_dev_cluster_create(const struct bt_config *cfg, const char *addrs)
{
    char log[PATH_MAX], auth[600], exe[PATH_MAX], **argv = NULL;
    char *envp[] = {auth, NULL};
    const struct bt_spawn how = {.log = log, .stdin_null = true, .deathsig = SIGKILL};
    int64_t deadline = bt_clock_mono_ms() + CLUSTER_TIMEOUT_MS;
    int status;
    pid_t pid = -1;

    /* the password in redis-cli's environment, not on its command line */
    snprintf(auth, sizeof(auth), "REDISCLI_AUTH=%s",
             cfg->redis_password ? cfg->redis_password : "");
    if (!cfg->redis_password)
        envp[0] = NULL;
    snprintf(log, sizeof(log), "%s/redis-cluster/create.log", cfg->home);
    if (bt_cli_find_in_path("redis-cli", exe, sizeof(exe)) == 0 &&
        (argv = create_argv(cfg, exe, addrs)))
        pid = bt_proc_spawn(argv, envp, &how);
    bt_strv_free(argv);
    if (pid < 0) {
        bt_log(BT_LOG_ERROR, "cannot run redis-cli (run scripts/bootstrap)");
        return BT_ENOENT;
    }
    if ((status = bt_proc_wait(pid, CLUSTER_TIMEOUT_MS)) != 0) {
        bt_proc_stop(pid, 0, false);
        bt_log(BT_LOG_ERROR, "redis-cli --cluster create failed status=%d log=%s", status,
               log);
        return BT_EIO;
    }
    while (!all_up(cfg, addrs)) {
        if (bt_clock_mono_ms() >= deadline) {
            bt_log(BT_LOG_ERROR, "the redis cluster did not come up nodes=%s", addrs);
            return BT_ETIMEDOUT;
        }
        bt_clock_sleep_ms(50);
    }
    return 0;
}
