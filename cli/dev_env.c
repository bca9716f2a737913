/* The settings `baton dev` hands on: the environment of the programs it runs
 * (baton-scheduler, baton-worker) and $BATON_HOME/dev.env, where the other
 * `baton` commands find its addresses. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "cli.h"
#include "err.h"
#include "log.h"

static int envp_push(char ***envp, size_t *n, const char *name, const char *value)
{
    char **grown = realloc(*envp, (*n + 2) * sizeof(*grown));
    size_t len = strlen(name) + strlen(value) + 2;

    if (!grown)
        return BT_ENOMEM;
    *envp = grown;
    if (!(grown[*n] = malloc(len)))
        return BT_ENOMEM;
    snprintf(grown[(*n)++], len, "%s=%s", name, value);
    grown[*n] = NULL;
    return 0;
}

extern char **environ;

/* texts[0..n) joined by sep: a new string (free), or NULL. */
static char *join(char *const *texts, size_t n, char sep)
{
    size_t len = 1, at = 0;
    char *out;

    for (size_t i = 0; i < n; i++)
        len += strlen(texts[i]) + 1;
    if (!(out = malloc(len)))
        return NULL;
    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(texts[i]);
        memcpy(out + at, texts[i], l);
        at += l;
        out[at++] = sep;
    }
    out[at ? at - 1 : 0] = '\0';
    return out;
}

/* This run's name for its embedded cluster, the same for every process it
 * starts (scheduler/kafka_change.c): the mock cluster's own id is its
 * address in memory, which another run can have again. */
static const char *run_name(void)
{
    static char name[48];

    if (!name[0])
        snprintf(name, sizeof(name), "%lld.%d", (long long)bt_clock_now_ms(),
                 (int)getpid());
    return name;
}

int bt_cli_dev_envp(const struct bt_config *cfg, const char *brokers, const char *redis,
                    char ***envp)
{
    char num[12][32], *rules = NULL;
    size_t n = 0;
    int ret = 0;

    *envp = calloc(1, sizeof(**envp));
    if (!*envp)
        return BT_ENOMEM;
    for (char **e = environ; *e && !ret; e++)
        if (strncmp(*e, "BATON_", 6)) {
            char **grown = realloc(*envp, (n + 2) * sizeof(*grown));
            if (!grown)
                return BT_ENOMEM;
            *envp = grown;
            grown[n] = strdup(*e);
            grown[++n] = NULL;
            ret = grown[n - 1] ? 0 : BT_ENOMEM;
        }
    snprintf(num[9], sizeof(num[9]), "%d", cfg->redis_shards);
    snprintf(num[10], sizeof(num[10]), "%d", cfg->redis_wait_ms);
    snprintf(num[11], sizeof(num[11]), "%lld", (long long)cfg->schedule_to_start_ms);
    snprintf(num[0], sizeof(num[0]), "%d", cfg->concurrency);
    snprintf(num[1], sizeof(num[1]), "%lld", (long long)cfg->max_payload);
    snprintf(num[2], sizeof(num[2]), "%lld", (long long)cfg->activity_timeout_ms);
    snprintf(num[3], sizeof(num[3]), "%d", cfg->log_json);
    snprintf(num[4], sizeof(num[4]), "%d", cfg->eager);
    snprintf(num[5], sizeof(num[5]), "%lld", (long long)cfg->history_max);
    snprintf(num[6], sizeof(num[6]), "%d", cfg->concurrency_lease_ms);
    snprintf(num[7], sizeof(num[7]), "%d", cfg->workflow_threads);
    snprintf(num[8], sizeof(num[8]), "%lldms", (long long)cfg->retention_ms);
    if (cfg->n_retention_types &&
        !(rules = join(cfg->retention_types, cfg->n_retention_types, ':')))
        return BT_ENOMEM;
    ret = ret || envp_push(envp, &n, "BATON_BROKERS", brokers) ||
          envp_push(envp, &n, "BATON_REDIS", redis) ||
          (cfg->redis_cluster && (envp_push(envp, &n, "BATON_REDIS_CLUSTER", "1") ||
                                  envp_push(envp, &n, "BATON_REDIS_WAIT_MS", num[10]))) ||
          (cfg->redis_shards > 0 && envp_push(envp, &n, "BATON_REDIS_SHARDS", num[9])) ||
          envp_push(envp, &n, "BATON_PREFIX", cfg->prefix) ||
          envp_push(envp, &n, "BATON_KEY_PREFIX", cfg->key_prefix) ||
          envp_push(envp, &n, "BATON_EMBEDDED", "1") ||
          envp_push(envp, &n, "BATON_DEV_EPOCH", run_name()) ||
          envp_push(envp, &n, "BATON_HOME", cfg->home) ||
          envp_push(envp, &n, "BATON_QUEUES", cfg->queues) ||
          envp_push(envp, &n, "BATON_CONCURRENCY", num[0]) ||
          envp_push(envp, &n, "BATON_MAX_PAYLOAD", num[1]) ||
          envp_push(envp, &n, "BATON_ACTIVITY_TIMEOUT_MS", num[2]) ||
          envp_push(envp, &n, "BATON_SCHEDULE_TO_START_MS", num[11]) ||
          envp_push(envp, &n, "BATON_LOG_LEVEL", cfg->log_level) ||
          envp_push(envp, &n, "BATON_LOG_JSON", num[3]) ||
          envp_push(envp, &n, "BATON_EAGER", num[4]) ||
          envp_push(envp, &n, "BATON_HISTORY_MAX", num[5]) ||
          envp_push(envp, &n, "BATON_CONCURRENCY_LEASE_MS", num[6]) ||
          envp_push(envp, &n, "BATON_WORKFLOW_THREADS", num[7]) ||
          envp_push(envp, &n, "BATON_METRICS_ADDR", cfg->metrics_addr) ||
          (cfg->redis_user && envp_push(envp, &n, "BATON_REDIS_USER", cfg->redis_user)) ||
          envp_push(envp, &n, "BATON_RETENTION", num[8]) ||
          (rules && envp_push(envp, &n, "BATON_RETENTION_TYPES", rules)) ||
          (cfg->redis_password &&
           envp_push(envp, &n, "BATON_REDIS_PASSWORD", cfg->redis_password));
    if (!ret && !bt_config_kafka(cfg, "fetch.wait.max.ms"))
        ret = envp_push(envp, &n, "BATON_KAFKA_FETCH_WAIT_MAX_MS", BT_DEV_FETCH_WAIT_MS);
    /* Kafka properties (a SASL password, say) go in the environment, as the
     * Redis password does: a command line is anybody's to read in ps */
    for (size_t i = 0; i < cfg->n_kafka && !ret; i++) {
        const char *eq = strchr(cfg->kafka[i], '=');
        char name[300] = "BATON_KAFKA_";
        size_t len = eq ? (size_t)(eq - cfg->kafka[i]) : 0, k = strlen(name);
        for (size_t j = 0; j < len && k + 1 < sizeof(name); j++) {
            char ch = cfg->kafka[i][j];
            name[k++] = ch == '.' ? '_' : (char)toupper((unsigned char)ch);
        }
        name[k] = '\0';
        ret = eq && envp_push(envp, &n, name, eq + 1);
    }
    free(rules);
    return ret ? BT_ENOMEM : 0;
}

/* Written to a temporary file and renamed, so a reader sees all or nothing. */
int bt_cli_dev_write_env(const struct bt_config *cfg, const char *path,
                         const char *brokers, const char *redis)
{
    char tmp[PATH_MAX + 32];
    FILE *f;
    int fd, bad;

    snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid());
    if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0600)) < 0 ||
        !(f = fdopen(fd, "w"))) {
        if (fd >= 0)
            close(fd);
        bt_log(BT_LOG_ERROR, "cannot write: %s file=%s", strerror(errno), tmp);
        return BT_EIO;
    }
    fprintf(f,
            "BATON_BROKERS=%s\nBATON_REDIS=%s\nBATON_PREFIX=%s\n"
            "BATON_KEY_PREFIX=%s\nBATON_EMBEDDED=1\n",
            brokers, redis, cfg->prefix, cfg->key_prefix);
    if (cfg->redis_cluster)
        fprintf(f, "BATON_REDIS_CLUSTER=1\nBATON_REDIS_WAIT_MS=%d\n", cfg->redis_wait_ms);
    /* every program of the stack must agree on them, the CLI's too */
    if (cfg->redis_shards > 0)
        fprintf(f, "BATON_REDIS_SHARDS=%d\n", cfg->redis_shards);
    fprintf(f, "BATON_KAFKA_FETCH_WAIT_MAX_MS=%s\n",
            bt_config_kafka(cfg, "fetch.wait.max.ms")
                ? bt_config_kafka(cfg, "fetch.wait.max.ms")
                : BT_DEV_FETCH_WAIT_MS);
    if (cfg->redis_user)
        fprintf(f, "BATON_REDIS_USER=%s\n", cfg->redis_user);
    if (cfg->redis_password)
        fprintf(f, "BATON_REDIS_PASSWORD=%s\n", cfg->redis_password);
    bad = fflush(f) || fsync(fileno(f));
    if (fclose(f) || bad || rename(tmp, path)) {
        bt_log(BT_LOG_ERROR, "cannot write: %s file=%s", strerror(errno), path);
        unlink(tmp);
        return BT_EIO;
    }
    return 0;
}
