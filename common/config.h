/* Settings of every baton program, from one table: defaults, then the file
 * written by `baton dev` (so other commands find it without flags), then
 * BATON_* environment variables, then command-line flags. Read and validated
 * once at start-up; nothing else in baton calls getenv(). */
#ifndef BT_CONFIG_H
#define BT_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct bt_config {
    char *brokers;        /* Kafka bootstrap servers */
    char *redis;          /* host:port */
    char *redis_user;     /* ACL user; NULL: AUTH password alone (user default) */
    char *redis_password; /* NULL: no AUTH; read from redis_password_file when set */
    char *redis_password_file;
    int redis_cluster;    /* redis names nodes of a Redis Cluster */
    int redis_shards;     /* hash tags the instances are spread over (0: none) */
    int redis_wait_ms;    /* on a cluster: writes wait for a replica (redis.h) */
    int redis_timeout_ms; /* a call unanswered this long: Redis unreachable */
    int stop_timeout_ms;  /* a worker or scheduler exits this long after SIGTERM */
    char *prefix;         /* topic prefix: <prefix>.events, <prefix>.tasks.<q> */
    char *key_prefix;     /* Redis key prefix: <key_prefix>:{ID} */
    char *log_level;
    int log_json;
    int64_t max_payload; /* bytes; larger messages are dead-lettered, larger
                          * commands fail their instance (PayloadTooLarge) */
    char *metrics_addr;
    int metrics_port;     /* 0: no metrics endpoint */
    char *queues;         /* comma-separated queues served by a worker: the
                           * workflows (events.<q>) and activities (tasks.<q>) */
    int concurrency;      /* activity threads */
    int workflow_threads; /* workflow role consumers (threads) per worker */
    int partitions;       /* partitions per topic created by `baton dev` */
    char *home;           /* where `baton dev` keeps its state and address file */
    int dev_redis_port;
    int64_t activity_timeout_ms;  /* default start-to-close timeout */
    int64_t schedule_to_start_ms; /* how long a task may wait for a worker */
    int64_t history_max;          /* history records per run (0: no limit) */
    int embedded;                 /* brokers are `baton dev`'s mock cluster */
    char **plugins;               /* --plugin, repeatable */
    size_t n_plugins;
    char **kafka; /* "name=value" for librdkafka, passed through unchanged */
    size_t n_kafka;
    /* ms a concurrency-limit lease lasts unless renewed (every third of it) */
    int concurrency_lease_ms;
    int eager;        /* run a step's activity on the deciding worker when it can */
    char *member;     /* static group membership's name, or NULL */
    char *assignment; /* "auto", "group" or "leases": bt_config_partition_leases */
    int watchdog_ms;  /* a consumer idle this long with messages waiting is stalled */
    /* how long a finished instance (or a run ended by continue-as-new) stays
     * in Redis before it is archived to <prefix>.archive and deleted */
    int64_t retention_ms;
    char **retention_types; /* "TYPE=DURATION": retention_ms for one type */
    size_t n_retention_types;
};

/* Fills cfg from the table and consumes the flags it knows from argv
 * (argv[0] stays; *argc is updated; what is left is the caller's: positional
 * arguments and program-specific flags). Returns 0, or BT_EINVAL with a
 * message naming the setting in errstr. cfg is released with
 * bt_config_release(), also on error. */
int bt_config_load(struct bt_config *cfg, int *argc, char **argv, char *errstr,
                   size_t errstr_size);
void bt_config_release(struct bt_config *cfg);

/* The value of Kafka property name as the clients get it (the last one
 * given wins), or NULL when none was given. */
const char *bt_config_kafka(const struct bt_config *cfg, const char *name);
/* Adds Kafka property name=value after those given: it wins over them.
 * Returns 0 or BT_ENOMEM. */
int bt_config_add_kafka(struct bt_config *cfg, const char *name, const char *value);

/* How long `baton dev`'s embedded cluster holds an empty fetch (ms), for
 * every consumer of its stack (its children, and the workers started beside
 * it, which read dev.env). librdkafka's mock cluster answers an empty fetch
 * only after this wait and never early, so an idle consumer asks it 1,000
 * times a second at 1 ms: 17 % of a core for an idle stack, 3.5 % at 20 ms,
 * where a hop waits 10 ms more on average (bench/README.md, "Idle"). The
 * benchmark asks for 1 ms, the nearest the mock comes to a real broker,
 * which answers as soon as data comes. */
#define BT_DEV_FETCH_WAIT_MS "20"

/* Shards on a Redis Cluster unless --redis-shards says: enough hash tags to
 * spread over a few masters (16 land 6, 6 and 4 on three). */
#define BT_CONFIG_CLUSTER_SHARDS 16

/* The producer's message.max.bytes: librdkafka's default, as most brokers'
 * max.message.bytes is a little above it, unless kafka.message.max.bytes is
 * set. max-payload must stay BT_CONFIG_ENVELOPE_ROOM below it, so that what
 * embeds a payload (a task its input, a dead letter its message) can be
 * produced. */
#define BT_CONFIG_MESSAGE_MAX   1000000
#define BT_CONFIG_ENVELOPE_ROOM 65536
int64_t bt_config_message_max(const struct bt_config *cfg);
/* Whether the workers' consumers share partitions through leases in Redis
 * (workers/partlease.h) rather than Kafka's group protocol (--assignment). */
bool bt_config_partition_leases(const struct bt_config *cfg);

/* Parses a duration, "<integer><unit>" with unit ms, s, m, h or d ("7d",
 * "1500ms"), into *ms. Returns 0, or BT_EINVAL (no unit, not a number, or
 * beyond 100 years). */
int bt_config_duration(const char *text, int64_t *ms);

/* The retention of instances of workflow type: its retention-type rule when
 * there is one, else retention_ms. rules are "TYPE=DURATION" texts checked
 * by bt_config_load (one that does not parse is skipped). */
int64_t bt_config_retention(int64_t retention_ms, char *const *rules, size_t n,
                            const char *type);

/* The help text of every setting: flag, environment variable, default. */
void bt_config_usage(void *file);
/* The same for the settings named in names (NULL-terminated): the ones a
 * command reads, in its --help. A name not in the table is printed as it is. */
void bt_config_usage_of(void *file, const char *const *names);

/* Path of the address file of `baton dev` under cfg->home; static buffer-free:
 * writes into buf. Returns buf. */
char *bt_config_dev_file(const struct bt_config *cfg, char *buf, size_t n);

#endif
