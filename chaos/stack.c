/* The services of one run and its log: a redis-server on a free loopback port
 * (appendonly, as baton dev runs it), the Kafka mock cluster inside this
 * process (so faults can be injected through its API), the environment the
 * baton programs read, and one log file that every program and the driver
 * append to. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <hiredis/hiredis.h>

#include "chaos.h"
#include "config.h"

extern char **environ;

int chaos_stack_start(struct chaos_run *r, const char *dir)
{
    int n;

    snprintf(r->prefix, sizeof(r->prefix), "%s", bt_test_prefix());
    snprintf(r->dir, sizeof(r->dir), "%s", dir);
    snprintf(r->log, sizeof(r->log), "%s/%s.log", dir, r->name);
    r->log_fd = open(r->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (r->log_fd < 0) {
        fprintf(stderr, "baton-chaos: cannot open %s: %s\n", r->log, strerror(errno));
        return -1;
    }
    if (bt_test_redis_start(&r->redis)) {
        fprintf(stderr, "baton-chaos: cannot start redis-server\n");
        return -1;
    }
    r->redis_up = true;
    if (bt_test_kafka_start(&r->kafka, r->prefix, r->opts->partitions, NULL)) {
        fprintf(stderr, "baton-chaos: cannot start the Kafka mock cluster\n");
        return -1;
    }
    snprintf(r->env[0], sizeof(r->env[0]), "BATON_BROKERS=%s", r->kafka.brokers);
    snprintf(r->env[1], sizeof(r->env[1]), "BATON_REDIS=%s", r->redis.addr);
    snprintf(r->env[2], sizeof(r->env[2]), "BATON_PREFIX=%s", r->prefix);
    snprintf(r->env[3], sizeof(r->env[3]), "BATON_EMBEDDED=1");
    snprintf(r->env[4], sizeof(r->env[4]), "BATON_HOME=%s", dir);
    /* BATON_LOG_LEVEL=debug with BATON_KAFKA_DEBUG=cgrp shows a rebalance */
    snprintf(r->env[5], sizeof(r->env[5]), "BATON_LOG_LEVEL=%s",
             getenv("BATON_LOG_LEVEL") ? getenv("BATON_LOG_LEVEL") : "info");
    n = 6;
    /* client settings to try under faults (BATON_KAFKA_SESSION_TIMEOUT_MS=...,
     * BATON_ASSIGNMENT=group) reach the workers and schedulers */
    for (char **e = environ; *e && n < 6 + CHAOS_MAX_PASSED_ENV; e++)
        if (!strncmp(*e, "BATON_KAFKA_", 12) || !strncmp(*e, "BATON_ASSIGNMENT=", 17))
            snprintf(r->env[n++], sizeof(r->env[0]), "%s", *e);
    for (int i = 0; i < n; i++)
        r->envp[i] = r->env[i];
    r->envp[n] = NULL;
    chaos_note(r, "starting: run=%s redis=%s brokers=%s prefix=%s", r->name,
               r->redis.addr, r->kafka.brokers, r->prefix);
    return 0;
}

/* redis's own log lives in its data dir, which bt_test_redis_stop removes. */
static void keep_redis_log(struct chaos_run *r)
{
    char from[320], to[400], buf[8192];
    FILE *in, *out;
    size_t n;

    snprintf(from, sizeof(from), "%s/redis.log", r->redis.dir);
    snprintf(to, sizeof(to), "%s/%s-redis.log", r->dir, r->name);
    if (!(in = fopen(from, "r")))
        return;
    if ((out = fopen(to, "w"))) {
        while ((n = fread(buf, 1, sizeof(buf), in)) > 0)
            fwrite(buf, 1, n, out);
        fclose(out);
    }
    fclose(in);
}

void chaos_stack_stop(struct chaos_run *r)
{
    if (r->redis.dir[0])
        keep_redis_log(r);
    bt_test_redis_stop(&r->redis); /* SIGKILL ends a paused one too */
    r->redis_up = r->redis_paused = false;
    bt_test_kafka_stop(&r->kafka);
    if (r->log_fd >= 0)
        close(r->log_fd);
    r->log_fd = -1;
}

void *chaos_stack_redis(struct chaos_run *r, const char *fmt, ...)
{
    struct timeval tv = {.tv_sec = 2};
    redisContext *rc;
    redisReply *reply = NULL;
    va_list ap;

    if (!r->redis_up)
        return NULL;
    rc = redisConnectWithTimeout("127.0.0.1", r->redis.port, tv);
    if (rc && !rc->err) {
        redisSetTimeout(rc, tv);
        va_start(ap, fmt);
        reply = redisvCommand(rc, fmt, ap);
        va_end(ap);
    }
    redisFree(rc);
    return reply;
}

void chaos_stack_redis_down(struct chaos_run *r, bool shutdown)
{
    if (shutdown) {
        /* the server closes the connection instead of replying */
        freeReplyObject(chaos_stack_redis(r, "SHUTDOWN"));
        if (bt_test_wait(r->redis.pid, 10000) >= 0)
            r->redis.pid = 0;
        else
            chaos_note(r, "redis did not exit after SHUTDOWN within 10 s: killing it");
    }
    bt_test_redis_kill(&r->redis); /* a no-op once it exited */
    r->redis_up = false;
}

void chaos_stack_redis_pause(struct chaos_run *r)
{
    kill(r->redis.pid, SIGSTOP);
    r->redis_paused = true;
    r->redis_up = false;
}

int chaos_stack_redis_up(struct chaos_run *r)
{
    if (r->redis_paused) {
        if (kill(r->redis.pid, SIGCONT))
            return -1;
        r->redis_paused = false;
        r->redis_up = true;
        return 0;
    }
    if (bt_test_redis_restart(&r->redis))
        return -1;
    r->redis_up = true;
    return 0;
}

int chaos_stack_config(struct chaos_run *r, struct bt_config *cfg, const char *kafka_prop)
{
    char name[] = "baton-chaos", brokers[300], prefix[100], prop[200];
    char *argv[] = {name, brokers, prefix, prop, NULL};
    int argc = kafka_prop ? 4 : 3;
    char errstr[256];

    snprintf(brokers, sizeof(brokers), "--brokers=%s", r->kafka.brokers);
    snprintf(prefix, sizeof(prefix), "--prefix=%s", r->prefix);
    snprintf(prop, sizeof(prop), "--kafka.%s", kafka_prop ? kafka_prop : "");
    if (kafka_prop == NULL)
        argv[3] = NULL;
    if (bt_config_load(cfg, &argc, argv, errstr, sizeof(errstr))) {
        fprintf(stderr, "baton-chaos: %s\n", errstr);
        return -1;
    }
    cfg->embedded = 1;
    return 0;
}

void chaos_note(struct chaos_run *r, const char *fmt, ...)
{
    char msg[768], line[900], ts[32];
    struct timespec now;
    struct tm tm;
    va_list ap;
    int n;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
    /* the programs' format (common/log.c), so one grep reads the whole story */
    n = snprintf(line, sizeof(line), "ts=%s.%03ldZ level=info prog=chaos %s\n", ts,
                 now.tv_nsec / 1000000, msg);
    if (n > (int)sizeof(line) - 1)
        n = sizeof(line) - 1;
    if (r->log_fd >= 0 && write(r->log_fd, line, (size_t)n) < 0)
        return;
}
