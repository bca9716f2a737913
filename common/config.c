/* The settings table and its loader. Each row names a setting once; the flag
 * (--name, dashes for underscores), the environment variable and the help text
 * all come from it. */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "config.h"
#include "log.h"
#include "err.h"

enum kind { STR, INT, BOOL, LIST, DURATION };

struct setting {
    const char *name; /* flag without dashes */
    const char *env;
    enum kind kind;
    size_t off;
    size_t count_off; /* LIST only */
    const char *def;
    int64_t min, max;
    const char *help;
};

#define F(f) offsetof(struct bt_config, f)
static const struct setting settings[] = {
    {"brokers", "BATON_BROKERS", STR, F(brokers), 0, "localhost:9092", 0, 0,
     "Kafka bootstrap servers"},
    {"redis", "BATON_REDIS", STR, F(redis), 0, "127.0.0.1:6379", 0, 0, "Redis host:port"},
    {"redis-user", "BATON_REDIS_USER", STR, F(redis_user), 0, NULL, 0, 0,
     "Redis ACL user: AUTH user password (needs a password)"},
    {"redis-password", "BATON_REDIS_PASSWORD", STR, F(redis_password), 0, NULL, 0, 0,
     "Redis AUTH password (prefer the environment or the file: ps shows flags)"},
    {"redis-password-file", "BATON_REDIS_PASSWORD_FILE", STR, F(redis_password_file), 0,
     NULL, 0, 0, "file whose first line is the Redis AUTH password"},
    {"redis-cluster", "BATON_REDIS_CLUSTER", BOOL, F(redis_cluster), 0, "0", 0, 1,
     "Redis is a Redis Cluster: --redis names any of its nodes "
     "(host:port[,host:port...]); shards default to 16"},
    {"redis-shards", "BATON_REDIS_SHARDS", INT, F(redis_shards), 0, "0", 0, 1024,
     "spread the instances and their indexes over this many hash tags, as a Redis "
     "Cluster needs (0: none; every program of a deployment must agree)"},
    {"redis-wait-ms", "BATON_REDIS_WAIT_MS", INT, F(redis_wait_ms), 0, "1000", 0, 60000,
     "on a Redis Cluster, each batch of writes waits until a replica has it, up to "
     "this long, so that a failover loses nothing acknowledged (0: no wait)"},
    {"redis-timeout-ms", "BATON_REDIS_TIMEOUT_MS", INT, F(redis_timeout_ms), 0, "10000",
     0, 3600000,
     "a Redis call of a worker or scheduler unanswered this long counts as Redis "
     "unreachable: the connection is dropped and the batch retried, so a hung Redis "
     "or a connection lost without a reset stalls nothing for good (0: wait for ever; "
     "on a Redis Cluster, above redis-wait-ms)"},
    {"stop-timeout-ms", "BATON_STOP_TIMEOUT_MS", INT, F(stop_timeout_ms), 0, "20000", 0,
     3600000,
     "a worker or scheduler told to stop (SIGTERM, SIGINT) exits this long after the "
     "signal at the latest, whatever it waits for; what it had not committed is "
     "redelivered (0: no bound)"},
    {"prefix", "BATON_PREFIX", STR, F(prefix), 0, "baton", 0, 0,
     "topic prefix (tenancy): <prefix>.events, <prefix>.tasks.<queue>; 1 to 40 "
     "letters, digits, '.', '_' or '-'"},
    {"key-prefix", "BATON_KEY_PREFIX", STR, F(key_prefix), 0, NULL, 0, 0,
     "Redis key prefix (default: bt, or the topic prefix when that is set)"},
    {"log-level", "BATON_LOG_LEVEL", STR, F(log_level), 0, "info", 0, 0,
     "debug, info, warn or error"},
    {"log-json", "BATON_LOG_JSON", BOOL, F(log_json), 0, "0", 0, 1,
     "log one JSON object per line, every field a key, instead of logfmt"},
    {"max-payload", "BATON_MAX_PAYLOAD", INT, F(max_payload), 0, "900000", 1024,
     INT64_C(1) << 30,
     "largest message baton accepts or produces, in bytes (at most Kafka's "
     "message.max.bytes less 64 KiB for the envelope of what embeds it)"},
    {"metrics-addr", "BATON_METRICS_ADDR", STR, F(metrics_addr), 0, "127.0.0.1", 0, 0,
     "address of the metrics and health endpoint"},
    {"metrics-port", "BATON_METRICS_PORT", INT, F(metrics_port), 0, "0", 0, 65535,
     "port of /metrics, /healthz and /readyz (0: off)"},
    {"queues", "BATON_QUEUES", STR, F(queues), 0, "default", 0, 0,
     "queues this worker serves (their workflows and activities), comma-separated; "
     "each " BT_QUEUE_RULE},
    {"concurrency", "BATON_CONCURRENCY", INT, F(concurrency), 0, "4", 1, 1024,
     "activity threads per worker"},
    {"eager", "BATON_EAGER", BOOL, F(eager), 0, "1", 0, 1,
     "run an activity on the worker that decided it when that worker serves its "
     "queue and has room for it (no Kafka hops; when the worker dies, the "
     "scheduler sends its tasks to Kafka)"},
    {"member", "BATON_MEMBER", STR, F(member), 0, NULL, 0, 0,
     "a name this worker keeps across restarts (a StatefulSet pod's, a systemd "
     "instance's): its consumers join as static members (group.instance.id "
     "<member>-<n>), so a restart within the session timeout takes their partitions "
     "back without a rebalance; unset: dynamic members (docs/reliability.md, churn)"},
    {"assignment", "BATON_ASSIGNMENT", STR, F(assignment), 0, "auto", 0, 0,
     "how a worker's consumers share the partitions: group (Kafka's consumer group "
     "protocol), leases (leases in Redis; each consumer assigns its own partitions), "
     "auto (leases on `baton dev`'s embedded cluster, whose group coordinator stops "
     "while workers come and go; group elsewhere)"},
    {"concurrency-lease-ms", "BATON_CONCURRENCY_LEASE_MS", INT, F(concurrency_lease_ms),
     0, "30000", 300, 3600000,
     "lease of a concurrency-limit slot: a dead worker's slot frees after this long"},
    {"workflow-threads", "BATON_WORKFLOW_THREADS", INT, F(workflow_threads), 0, "1", 1,
     64,
     "workflow role threads per worker, each consuming its share of the events "
     "partitions"},
    {"partitions", "BATON_PARTITIONS", INT, F(partitions), 0, "4", 1, 1000,
     "partitions per topic created by `baton dev`"},
    {"home", "BATON_HOME", STR, F(home), 0, NULL, 0, 0,
     "state directory of `baton dev` (default: $HOME/.baton)"},
    {"dev-redis-port", "BATON_DEV_REDIS_PORT", INT, F(dev_redis_port), 0, "0", 0, 65535,
     "redis port for `baton dev` (0: a free one)"},
    {"activity-timeout-ms", "BATON_ACTIVITY_TIMEOUT_MS", INT, F(activity_timeout_ms), 0,
     "60000", 1, INT64_C(1) << 40, "default start-to-close timeout of an activity"},
    {"schedule-to-start-ms", "BATON_SCHEDULE_TO_START_MS", INT, F(schedule_to_start_ms),
     0, "86400000", 1, INT64_C(1) << 40,
     "how long an activity's task may wait for a worker (in Kafka, for a rate token or "
     "a concurrency slot) before its attempt times out (ScheduleToStartTimeout); "
     "start-to-close starts when a worker takes it"},
    {"history-max", "BATON_HISTORY_MAX", INT, F(history_max), 0, "20000", 0,
     INT64_C(1) << 40,
     "history records per run of an instance; beyond, it fails (0: no limit)"},
    {"watchdog-ms", "BATON_WATCHDOG_MS", INT, F(watchdog_ms), 0, "30000", 0, 3600000,
     "a consumer with messages waiting on its partitions that takes none for this "
     "long is stalled: logged, counted and its partitions assigned again (0: off)"},
    {"embedded", "BATON_EMBEDDED", BOOL, F(embedded), 0, "0", 0, 1,
     "the brokers are `baton dev`'s embedded cluster (short group timeouts)"},
    {"plugin", "BATON_PLUGINS", LIST, F(plugins), F(n_plugins), NULL, 0, 0,
     "plugin shared object to load (repeatable; env: colon-separated)"},
    {"retention", "BATON_RETENTION", DURATION, F(retention_ms), 0, "7d", 0, 0,
     "how long a finished instance (or a run ended by continue-as-new) stays in "
     "Redis before the scheduler archives it to <prefix>.archive and deletes it "
     "(units ms, s, m, h, d)"},
    {"retention-type", "BATON_RETENTION_TYPES", LIST, F(retention_types),
     F(n_retention_types), NULL, 0, 0,
     "TYPE=DURATION: the retention of one workflow type (repeatable; env: "
     "colon-separated)"},
};
#undef F

/* Sets s from text v; a bad value's error names it as the user gave it
 * (as: "--concurrency", "BATON_CONCURRENCY"). */
static int set_value(struct bt_config *cfg, const struct setting *s, const char *v,
                     const char *as, char *errstr, size_t n)
{
    char *base = (char *)cfg;
    char *end;
    long long x;

    switch (s->kind) {
    case STR: {
        char **p = (char **)(base + s->off);
        if (s->off == offsetof(struct bt_config, log_level) && v &&
            bt_log_parse_level(v) < 0) {
            snprintf(errstr, n, "%s: \"%s\" is not debug, info, warn or error", as, v);
            return BT_EINVAL;
        }
        if (s->off == offsetof(struct bt_config, assignment) && v && strcmp(v, "auto") &&
            strcmp(v, "group") && strcmp(v, "leases")) {
            snprintf(errstr, n, "%s: \"%s\" is not auto, group or leases", as, v);
            return BT_EINVAL;
        }
        free(*p);
        *p = v ? strdup(v) : NULL;
        return 0;
    }
    case LIST: {
        char ***p = (char ***)(base + s->off);
        size_t *cnt = (size_t *)(base + s->count_off);
        char **grown = realloc(*p, (*cnt + 1) * sizeof(*grown));
        if (!grown)
            return BT_ENOMEM;
        *p = grown;
        grown[(*cnt)++] = strdup(v);
        return 0;
    }
    case DURATION:
        if (bt_config_duration(v, (int64_t *)(base + s->off))) {
            snprintf(errstr, n,
                     "%s: \"%s\" is not a duration (an integer and a unit: ms, s, m, "
                     "h or d)",
                     as, v);
            return BT_EINVAL;
        }
        return 0;
    case INT:
    case BOOL:
        errno = 0;
        if (s->kind == BOOL && (!strcmp(v, "true") || !strcmp(v, "yes")))
            x = 1;
        else if (s->kind == BOOL && (!strcmp(v, "false") || !strcmp(v, "no")))
            x = 0;
        else
            x = strtoll(v, &end, 10);
        if (s->kind == INT && (errno || end == v || *end)) {
            snprintf(errstr, n, "%s: \"%s\" is not an integer", as, v);
            return BT_EINVAL;
        }
        if (x < s->min || x > s->max) {
            snprintf(errstr, n, "%s: %lld is out of range [%lld, %lld]", as, x,
                     (long long)s->min, (long long)s->max);
            return BT_EINVAL;
        }
        if (s->off == offsetof(struct bt_config, max_payload) ||
            s->off == offsetof(struct bt_config, activity_timeout_ms) ||
            s->off == offsetof(struct bt_config, schedule_to_start_ms))
            *(int64_t *)(base + s->off) = x;
        else
            *(int *)(base + s->off) = (int)x;
        return 0;
    }
    return BT_EINVAL;
}

static const struct setting *find(const char *name, size_t len)
{
    for (size_t i = 0; i < sizeof(settings) / sizeof(settings[0]); i++)
        if (strlen(settings[i].name) == len && !strncmp(settings[i].name, name, len))
            return &settings[i];
    return NULL;
}

static int add_kafka(struct bt_config *cfg, const char *name, const char *value)
{
    char **grown = realloc(cfg->kafka, (cfg->n_kafka + 1) * sizeof(*grown));
    size_t len = strlen(name) + strlen(value) + 2;

    if (!grown)
        return BT_ENOMEM;
    cfg->kafka = grown;
    if (!(grown[cfg->n_kafka] = malloc(len)))
        return BT_ENOMEM;
    snprintf(grown[cfg->n_kafka++], len, "%s=%s", name, value);
    return 0;
}

/* BATON_KAFKA_SECURITY_PROTOCOL=SASL_SSL -> the Kafka property
 * security.protocol=SASL_SSL; anything else is not one and is skipped. */
static int add_kafka_var(struct bt_config *cfg, const char *var)
{
    const char *eq = strchr(var, '=');
    char name[256];
    size_t len;

    if (strncmp(var, "BATON_KAFKA_", 12) || !eq)
        return 0;
    len = (size_t)(eq - (var + 12));
    if (len == 0 || len >= sizeof(name))
        return 0;
    for (size_t i = 0; i < len; i++) {
        char c = var[12 + i];
        name[i] = c == '_' ? '.' : (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
    }
    name[len] = '\0';
    return add_kafka(cfg, name, eq + 1);
}

/* The file `baton dev` writes: lines "BATON_BROKERS=..." read like the environment. */
static int load_dev_file(struct bt_config *cfg, char *errstr, size_t n)
{
    char path[4096], line[4096];
    FILE *f;
    int ret = 0;

    bt_config_dev_file(cfg, path, sizeof(path));
    if (!(f = fopen(path, "r")))
        return 0;
    while (!ret && fgets(line, sizeof(line), f)) {
        char *eq = strchr(line, '=');
        line[strcspn(line, "\n")] = '\0';
        if (!eq)
            continue;
        /* Kafka properties of the embedded cluster; the environment's and
         * the flags' come after them, and the last of a name wins */
        if ((ret = add_kafka_var(cfg, line)))
            break;
        *eq = '\0';
        for (size_t i = 0; i < sizeof(settings) / sizeof(settings[0]); i++)
            if (!strcmp(settings[i].env, line))
                ret = set_value(cfg, &settings[i], eq + 1, settings[i].env, errstr, n);
    }
    fclose(f);
    return ret;
}

char *bt_config_dev_file(const struct bt_config *cfg, char *buf, size_t n)
{
    snprintf(buf, n, "%s/dev.env", cfg->home);
    return buf;
}

/* The password from --redis-password-file: its first line, without the line
 * end (a file written by `echo` has one). */
static int read_password_file(struct bt_config *cfg, char *errstr, size_t n)
{
    char line[1024];
    FILE *f = fopen(cfg->redis_password_file, "r");
    int ret = BT_EINVAL;

    if (!f) {
        snprintf(errstr, n, "redis-password-file: cannot read %s: %s",
                 cfg->redis_password_file, strerror(errno));
        return BT_EINVAL;
    }
    if (!fgets(line, sizeof(line), f))
        line[0] = '\0';
    line[strcspn(line, "\r\n")] = '\0';
    if (!*line) {
        snprintf(errstr, n, "redis-password-file: %s: the first line is empty",
                 cfg->redis_password_file);
        goto out;
    }
    ret = (cfg->redis_password = strdup(line)) ? 0 : BT_ENOMEM;
out:
    fclose(f);
    return ret;
}

/* The password file, when given, wins over a password from anywhere else
 * (dev.env holds one for baton dev's own Redis); a user needs a password
 * (Redis has no passwordless AUTH of a user). */
static int redis_credentials(struct bt_config *cfg, char *errstr, size_t n)
{
    int ret;

    if (cfg->redis_user && !*cfg->redis_user) {
        free(cfg->redis_user);
        cfg->redis_user = NULL;
    }
    if (cfg->redis_password_file && *cfg->redis_password_file) {
        free(cfg->redis_password);
        cfg->redis_password = NULL;
        if ((ret = read_password_file(cfg, errstr, n)))
            return ret;
    }
    if (cfg->redis_user && !cfg->redis_password) {
        snprintf(errstr, n,
                 "redis-user: \"%s\" needs a password (redis-password-file or "
                 "BATON_REDIS_PASSWORD)",
                 cfg->redis_user);
        return BT_EINVAL;
    }
    return 0;
}

extern char **environ;

bool bt_config_partition_leases(const struct bt_config *cfg)
{
    const char *a = cfg->assignment ? cfg->assignment : "auto";

    return !strcmp(a, "leases") || (!strcmp(a, "auto") && cfg->embedded);
}

/* Each queue of the list (commas or spaces between) names topics (codec.h). */
static int check_queues(const struct bt_config *cfg, char *errstr, size_t errstr_size)
{
    const char *q = cfg->queues ? cfg->queues : "";

    while (*q) {
        size_t len = strcspn(q, ", ");
        if (len && !bt_codec_queue_ok(q, len, BT_QUEUE_MAX)) {
            snprintf(errstr, errstr_size, "queues: \"%.*s\" " BT_QUEUE_WHY,
                     (int)(len > 100 ? 100 : len), q);
            return BT_EINVAL;
        }
        q += len + (q[len] != '\0');
    }
    return 0;
}

static int check_retention_types(const struct bt_config *cfg, char *errstr, size_t n);

#define N_SETTINGS (sizeof(settings) / sizeof(settings[0]))

/* The defaults, and where `baton dev` keeps its state. */
static int load_defaults(struct bt_config *cfg, char *errstr, size_t errstr_size)
{
    const char *v;
    int ret;

    for (size_t i = 0; i < N_SETTINGS; i++)
        if (settings[i].def && (ret = set_value(cfg, &settings[i], settings[i].def,
                                                settings[i].name, errstr, errstr_size)))
            return ret;
    if ((v = getenv("BATON_HOME")) && *v) {
        cfg->home = strdup(v);
    } else {
        char buf[4096];
        snprintf(buf, sizeof(buf), "%s/.baton", getenv("HOME") ? getenv("HOME") : ".");
        cfg->home = strdup(buf);
    }
    return cfg->home ? 0 : BT_ENOMEM;
}

/* BATON_* variables (a LIST setting's values separated by ':'), then the
 * BATON_KAFKA_* properties. */
static int load_environment(struct bt_config *cfg, char *errstr, size_t errstr_size)
{
    const char *v;
    int ret = 0;

    for (size_t i = 0; i < N_SETTINGS && !ret; i++) {
        if (!(v = getenv(settings[i].env)) || !*v)
            continue;
        if (settings[i].kind == LIST) {
            char *copy = strdup(v), *save = NULL;
            for (char *tok = copy ? strtok_r(copy, ":", &save) : NULL; tok && !ret;
                 tok = strtok_r(NULL, ":", &save))
                ret = set_value(cfg, &settings[i], tok, settings[i].env, errstr,
                                errstr_size);
            free(copy);
        } else {
            ret = set_value(cfg, &settings[i], v, settings[i].env, errstr, errstr_size);
        }
    }
    for (char **e = environ; *e && !ret; e++)
        ret = add_kafka_var(cfg, *e);
    return ret;
}

/* --kafka.<property>=<value> (arg without its "--"; len: up to any '='). */
static int kafka_flag(struct bt_config *cfg, const char *arg, size_t len, char *errstr,
                      size_t errstr_size)
{
    const char *eq = strchr(arg, '=');
    char name[256];

    if (!eq || len - 6 >= sizeof(name)) {
        snprintf(errstr, errstr_size, "--%s: expected --kafka.<property>=<value>", arg);
        return BT_EINVAL;
    }
    memcpy(name, arg + 6, len - 6);
    name[len - 6] = '\0';
    return add_kafka(cfg, name, eq + 1);
}

/* The settings' flags, taken out of argv; the program's own flags and
 * arguments are left there, in order (*argc updated). */
static int load_flags(struct bt_config *cfg, int *argc, char **argv, char *errstr,
                      size_t errstr_size)
{
    int ret, out = 1;

    for (int i = 1; i < *argc; i++) {
        const char *arg = argv[i], *val, *eq;
        const struct setting *s;
        char flag[96];
        size_t len;

        if (!strcmp(arg, "--")) {
            while (i < *argc)
                argv[out++] = argv[i++];
            break;
        }
        if (strncmp(arg, "--", 2) != 0) {
            argv[out++] = argv[i];
            continue;
        }
        arg += 2;
        eq = strchr(arg, '=');
        len = eq ? (size_t)(eq - arg) : strlen(arg);
        if (!strncmp(arg, "kafka.", 6)) {
            if ((ret = kafka_flag(cfg, arg, len, errstr, errstr_size)))
                return ret;
            continue;
        }
        if (!(s = find(arg, len))) {
            argv[out++] = argv[i]; /* the program's own flag */
            continue;
        }
        if (eq) {
            val = eq + 1;
        } else if (s->kind == BOOL) {
            val = "1";
        } else if (i + 1 < *argc) {
            val = argv[++i];
        } else {
            snprintf(errstr, errstr_size, "--%s needs a value", s->name);
            return BT_EINVAL;
        }
        snprintf(flag, sizeof(flag), "--%s", s->name);
        if ((ret = set_value(cfg, s, val, flag, errstr, errstr_size)))
            return ret;
    }
    *argc = out;
    argv[out] = NULL;
    return 0;
}

/* What holds only with every source read: derived values and limits that
 * depend on one another. */
static int finish(struct bt_config *cfg, char *errstr, size_t errstr_size)
{
    int ret;

    if (!cfg->key_prefix)
        cfg->key_prefix = strdup(strcmp(cfg->prefix, "baton") ? cfg->prefix : "bt");
    if (cfg->max_payload + BT_CONFIG_ENVELOPE_ROOM > bt_config_message_max(cfg)) {
        snprintf(errstr, errstr_size,
                 "max-payload: %lld leaves no room for the envelope under Kafka's "
                 "message.max.bytes (%lld): at most %lld, or raise "
                 "kafka.message.max.bytes (and the broker's max.message.bytes)",
                 (long long)cfg->max_payload, (long long)bt_config_message_max(cfg),
                 (long long)(bt_config_message_max(cfg) - BT_CONFIG_ENVELOPE_ROOM));
        return BT_EINVAL;
    }
    if ((ret = redis_credentials(cfg, errstr, errstr_size)))
        return ret;
    /* a write's WAIT for a replica is a call too: past the timeout, every
     * batch on a cluster would count as Redis unreachable */
    if (cfg->redis_cluster && cfg->redis_timeout_ms > 0 &&
        cfg->redis_wait_ms >= cfg->redis_timeout_ms) {
        snprintf(errstr, errstr_size,
                 "redis-wait-ms: %d is not below redis-timeout-ms (%d): each write waits "
                 "for a replica that long, longer than a call may take",
                 cfg->redis_wait_ms, cfg->redis_timeout_ms);
        return BT_EINVAL;
    }
    /* a cluster runs a script only on keys of one slot: the shards' tags */
    if (cfg->redis_cluster && cfg->redis_shards == 0)
        cfg->redis_shards = BT_CONFIG_CLUSTER_SHARDS;
    if (!cfg->key_prefix || strlen(cfg->key_prefix) > 200) {
        snprintf(errstr, errstr_size, "key-prefix: at most 200 bytes");
        return cfg->key_prefix ? BT_EINVAL : BT_ENOMEM;
    }
    if (!bt_codec_queue_ok(cfg->prefix, strlen(cfg->prefix), BT_PREFIX_MAX)) {
        snprintf(errstr, errstr_size,
                 "prefix: \"%.100s\" begins every topic name: 1 to %d letters, digits, "
                 "'.', '_' or '-'",
                 cfg->prefix, BT_PREFIX_MAX);
        return BT_EINVAL;
    }
    return check_queues(cfg, errstr, errstr_size)
               ? BT_EINVAL
               : check_retention_types(cfg, errstr, errstr_size);
}

int bt_config_load(struct bt_config *cfg, int *argc, char **argv, char *errstr,
                   size_t errstr_size)
{
    int ret;

    memset(cfg, 0, sizeof(*cfg));
    /* each source over the one before: defaults, dev.env (the address file
     * only fills what the environment does not set), the environment, flags */
    if ((ret = load_defaults(cfg, errstr, errstr_size)) ||
        (ret = load_dev_file(cfg, errstr, errstr_size)) ||
        (ret = load_environment(cfg, errstr, errstr_size)) ||
        (ret = load_flags(cfg, argc, argv, errstr, errstr_size)))
        return ret;
    return finish(cfg, errstr, errstr_size);
}

int bt_config_duration(const char *text, int64_t *ms)
{
    static const struct {
        const char *name;
        int64_t ms;
    } units[] = {{"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}, {"d", 86400000}};
    char *end;
    long long x;

    errno = 0;
    x = strtoll(text, &end, 10);
    if (errno || end == text || x < 0 || *text == '-' || *text == '+')
        return BT_EINVAL;
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        /* 100 years at most: no overflow once added to a time in ms */
        if (!strcmp(end, units[i].name) && x <= INT64_C(3155760000000) / units[i].ms) {
            *ms = x * units[i].ms;
            return 0;
        }
    }
    return BT_EINVAL;
}

/* The duration of rule ("TYPE=DURATION") when its type is type (NULL: any). */
static int rule_ms(const char *rule, const char *type, int64_t *ms)
{
    const char *eq = strrchr(rule, '=');

    if (!eq || eq == rule ||
        (type && (strlen(type) != (size_t)(eq - rule) ||
                  strncmp(rule, type, (size_t)(eq - rule)))))
        return BT_EINVAL;
    return bt_config_duration(eq + 1, ms);
}

static int check_retention_types(const struct bt_config *cfg, char *errstr, size_t n)
{
    int64_t ms;

    for (size_t i = 0; i < cfg->n_retention_types; i++) {
        if (rule_ms(cfg->retention_types[i], NULL, &ms)) {
            snprintf(errstr, n,
                     "retention-type: \"%s\" is not TYPE=DURATION (e.g. "
                     "registration=30d; units ms, s, m, h, d)",
                     cfg->retention_types[i]);
            return BT_EINVAL;
        }
    }
    return 0;
}

int64_t bt_config_retention(int64_t retention_ms, char *const *rules, size_t n,
                            const char *type)
{
    int64_t ms;

    /* the last rule for a type wins, as a later flag overrides an earlier one */
    for (size_t i = n; type && i-- > 0;)
        if (rule_ms(rules[i], type, &ms) == 0)
            return ms;
    return retention_ms;
}

const char *bt_config_kafka(const struct bt_config *cfg, const char *name)
{
    size_t len = strlen(name);
    const char *v = NULL;

    for (size_t i = 0; i < cfg->n_kafka; i++)
        if (!strncmp(cfg->kafka[i], name, len) && cfg->kafka[i][len] == '=')
            v = cfg->kafka[i] + len + 1;
    return v;
}

int bt_config_add_kafka(struct bt_config *cfg, const char *name, const char *value)
{
    return add_kafka(cfg, name, value);
}

int64_t bt_config_message_max(const struct bt_config *cfg)
{
    const char *v = bt_config_kafka(cfg, "message.max.bytes");

    return v ? strtoll(v, NULL, 10) : BT_CONFIG_MESSAGE_MAX;
}

void bt_config_release(struct bt_config *cfg)
{
    const size_t n_settings = sizeof(settings) / sizeof(settings[0]);

    for (size_t i = 0; i < n_settings; i++) {
        char *base = (char *)cfg;
        if (settings[i].kind == STR) {
            free(*(char **)(base + settings[i].off));
        } else if (settings[i].kind == LIST) {
            char **list = *(char ***)(base + settings[i].off);
            size_t cnt = *(size_t *)(base + settings[i].count_off);
            for (size_t j = 0; j < cnt; j++)
                free(list[j]);
            free(list);
        }
    }
    for (size_t j = 0; j < cfg->n_kafka; j++)
        free(cfg->kafka[j]);
    free(cfg->kafka);
    memset(cfg, 0, sizeof(*cfg));
}

void bt_config_usage(void *file)
{
    FILE *f = file;
    const size_t n_settings = sizeof(settings) / sizeof(settings[0]);

    fprintf(f, "Settings (flag, environment variable, default):\n");
    for (size_t i = 0; i < n_settings; i++)
        fprintf(f, "  --%-22s %-26s %s%s%s\n      %s\n", settings[i].name,
                settings[i].env, settings[i].def ? "[" : "",
                settings[i].def ? settings[i].def : "", settings[i].def ? "]" : "",
                settings[i].help);
    fprintf(f,
            "  --kafka.<property>=<value> BATON_KAFKA_<PROPERTY>\n"
            "      any librdkafka property, passed through unchanged (SASL, TLS, ...)\n");
}

void bt_config_usage_of(void *file, const char *const *names)
{
    FILE *f = file;
    const size_t n_settings = sizeof(settings) / sizeof(settings[0]);

    for (; *names; names++) {
        const struct setting *s = NULL;
        for (size_t i = 0; i < n_settings && !s; i++)
            if (!strcmp(settings[i].name, *names))
                s = &settings[i];
        if (!s) {
            fprintf(f, "  --%s\n", *names); /* kafka.<property> */
            continue;
        }
        fprintf(f, "  --%-22s %-26s %s%s%s\n      %s\n", s->name, s->env,
                s->def ? "[" : "", s->def ? s->def : "", s->def ? "]" : "", s->help);
    }
}
