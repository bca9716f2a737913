/* The `baton` command's groups. Each lives in cli/<group>.c and is dispatched
 * by cli/main.c from its command table. A command gets the loaded settings
 * and its own arguments (argv[0] is the command name, settings flags already
 * removed) and returns the process exit status: 0 ok, 1 the operation failed
 * (workflow failed, instance not found, ...), 2 usage error, 3 a service
 * (Kafka, Redis) unreachable. Messages for the user go to stderr, results to
 * stdout. */
#ifndef BT_CLI_H
#define BT_CLI_H

#include <stddef.h>
#include <jansson.h>

#include "args.h"
#include "config.h"
#include "history.h"
#include "store.h"

enum { BT_EXIT_OK = 0, BT_EXIT_FAIL = 1, BT_EXIT_USAGE = 2, BT_EXIT_UNAVAILABLE = 3 };

/* The settings a command that reads Redis, or produces to Kafka, uses: for
 * the `.settings` of its struct bt_cmd (args.h), in its --help. */
#define BT_CLI_REDIS_SETTINGS                                                            \
    "redis", "redis-user", "redis-password", "redis-password-file", "key-prefix"
#define BT_CLI_KAFKA_SETTINGS "brokers", "prefix", "kafka.<property>=<value>"

/* Parses a command's arguments with bt_args_parse(). Returns -1 when the
 * command should run, else the exit status to return at once: 0 after
 * --help or --version, BT_EXIT_USAGE when argv is wrong (said on stderr). */
int bt_cli_args(const struct bt_cmd *cmd, int argc, char **argv, char **pos, int *n_pos);

/* Prints root as one line of compact JSON on stdout and releases it (takes
 * the reference; NULL prints nothing). The `--json` of every command. */
void bt_cli_print_json(json_t *root);
/* ms since the epoch as RFC 3339 in UTC with milliseconds
 * ("2026-12-04T19:45:50.123Z"), the time format of every output, into buf
 * (size n, 32 is enough). Returns buf. */
char *bt_cli_time(int64_t ms, char *buf, size_t n);

int bt_cli_dev(struct bt_config *cfg, int argc, char **argv);
/* Writes the Redis credentials of cfg (requirepass, and the ACL user when
 * there is one) to <home>/redis-auth.conf, mode 0600, for baton dev's
 * redis-server, and its path into path (size n); path is "" when there is no
 * password. Returns 0, or BT_EIO having logged why. */
int bt_cli_dev_redis_conf(const struct bt_config *cfg, char *path, size_t n);
/* dev_env.c: the environment of the programs baton dev runs, into *envp
 * (NULL-terminated "NAME=value" strings): the inherited one without its
 * BATON_* variables (BATON_PLUGINS would otherwise load each plugin twice,
 * with the --plugin flags), and the settings baton dev resolved, with the
 * addresses of its Kafka cluster (brokers) and Redis (redis: host:port, or a
 * cluster's nodes, comma-separated, with cfg->redis_cluster set).
 * Returns 0 or BT_ENOMEM; *envp is set either way: the caller frees each
 * string and the array. */
int bt_cli_dev_envp(const struct bt_config *cfg, const char *brokers, const char *redis,
                    char ***envp);
/* The addresses and credentials other commands need, written to path
 * (dev.env) all or nothing. Returns 0, or BT_EIO having logged why. */
int bt_cli_dev_write_env(const struct bt_config *cfg, const char *path,
                         const char *brokers, const char *redis);
/* dev_redis.c, for --redis-cluster: removes what a former run's cluster left
 * in <home>/redis-cluster (each run makes its own), and makes a cluster of
 * the nodes at addrs (comma-separated, started and answering) with
 * redis-cli --cluster create, waiting until every node sees every slot
 * served. 0, or an error having logged why. */
int bt_cli_dev_cluster_reset(const struct bt_config *cfg);
/* Resolves a program name through $PATH into buf before any fork: the child
 * then only calls async-signal-safe functions, as a multi-threaded parent
 * requires. 0, or BT_ENOENT / BT_ENOMEM. */
int bt_cli_find_in_path(const char *name, char *buf, size_t n);
int bt_cli_dev_cluster_create(const struct bt_config *cfg, const char *addrs);
int bt_cli_bench(struct bt_config *cfg, int argc, char **argv);
int bt_cli_start(struct bt_config *cfg, int argc, char **argv);
int bt_cli_signal_with_start(struct bt_config *cfg, int argc, char **argv);
/* batch.c: sends msg (its id set per instance) to every instance that query
 * matches ("status=running AND type=T AND started<2026-12-01"), after --yes or
 * a person's "y"; verb names the action in its messages. An exit status. */
struct bt_msg;
/* The query language (query.h) in a flag's help, and the --query and --yes
 * flags of the batch operations. */
#define BT_CLI_QUERY_TERMS                                                               \
    "terms joined by AND: status=S, type=T, started<TIME, or a search attribute "        \
    "(brand=\"acme\", tier>=2)"
#define BT_CLI_ARG_QUERY(var)                                                            \
    {                                                                                    \
        "query", 0, BT_ARG_STR, &(var), "QUERY", NULL,                                   \
            .help = "every instance that matches, instead of ID: " BT_CLI_QUERY_TERMS    \
    }
#define BT_CLI_ARG_YES(var)                                                              \
    {                                                                                    \
        "yes", 0, BT_ARG_BOOL, &(var), .help = "with --query: do not ask"                \
    }
/* Whether queue (NULL: the default) can name a queue (codec.h); false
 * having said why, as `baton <cmd>`. */
bool bt_cli_queue_ok(const char *cmd, const char *queue);
/* A batch operation's target: an ID (n_pos == with_id positionals) or a
 * query, exactly one of them; false having said so. */
bool bt_cli_one_target(const char *cmd, int n_pos, int with_id, const char *query);
/* --yes, or a person's "y" on a terminal to "<verb> <n> instances?"; false
 * having said what --yes would do where nobody can answer. */
bool bt_cli_confirmed(bool yes, const char *verb, size_t n);
/* Sends msg (id set for each) to every live instance query matches (every
 * one, finished too, for a reset), having asked (bt_cli_confirmed). */
int bt_cli_batch(const struct bt_config *cfg, const char *query, bool yes,
                 struct bt_msg *msg, const char *verb);
/* What is done to each instance before the events go: an exit status, the
 * first not OK stops the batch. */
typedef int (*bt_cli_batch_prepare)(struct bt_store *store, const char *id,
                                    const char *type);
/* bt_cli_batch, on the matching instances in status only (NULL: as
 * bt_cli_batch), each prepared first (NULL: nothing to do). */
int bt_cli_batch_of(const struct bt_config *cfg, const char *query, bool yes,
                    struct bt_msg *msg, const char *verb, const char *status,
                    bt_cli_batch_prepare prepare);
int bt_cli_describe(struct bt_config *cfg, int argc, char **argv);
int bt_cli_history(struct bt_config *cfg, int argc, char **argv);
int bt_cli_list(struct bt_config *cfg, int argc, char **argv);

/* The reads behind the commands' --json, for `baton ui` (ui.c) too: each
 * returns BT_EXIT_OK, BT_EXIT_FAIL or BT_EXIT_UNAVAILABLE (Redis did not
 * answer) and prints nothing. */

/* describe.c: the model `describe --json` prints, into *root (a new
 * reference, caller json_decref()s it); BT_EXIT_FAIL when there is no
 * instance id. */
int bt_cli_describe_read(struct bt_store *store, const char *id, json_t **root);
/* inspect.c: one stored history record as `history --json` prints it (ts in
 * RFC 3339): a new reference, or NULL when the text is not a record. */
json_t *bt_cli_record(const char *text);
/* Appends to rows (borrowed) the records of instance id's run (0: the
 * current one) as `history --json` prints them. */
int bt_cli_history_json(struct bt_store *store, const char *id, int run, json_t *rows);
/* One instance as `list --json` prints it: a new reference. */
struct bt_query_row;
json_t *bt_cli_list_row(const struct bt_query_row *row);
int bt_cli_unblock(struct bt_config *cfg, int argc, char **argv);
int bt_cli_delete(struct bt_config *cfg, int argc, char **argv);
/* Tells the user (stderr) that instance id is not in Redis: when it was
 * archived and deleted if its tombstone is still there, else that it may
 * have been deleted after its retention. */
void bt_cli_gone(struct bt_store *store, const char *id);
int bt_cli_schedule(struct bt_config *cfg, int argc, char **argv);

/* `baton start TYPE --at TIME`: stores a one-shot schedule, named id, that
 * produces event (the encoded start event of instance id, of type; borrowed)
 * at TIME (RFC 3339, or "+30s" / "+5m" / "+2h" / "+1d" from now). Returns an
 * exit status, having told the user what went wrong. */
int bt_cli_schedule_at(struct bt_config *cfg, const char *type, const char *id,
                       const char *event, const char *at);
/* "+30s" / "+5m" / "+2h" / "+1d" from now, or RFC 3339 with Z or an offset
 * and optional fractions of a second, into *ms (since the epoch). Returns 0
 * or BT_EINVAL. */
int bt_cli_parse_time(const char *at, int64_t now, int64_t *ms);
int bt_cli_stats(struct bt_config *cfg, int argc, char **argv);
int bt_cli_dlq(struct bt_config *cfg, int argc, char **argv);
/* schedule.c: every schedule as `schedule list --json` prints it, appended to
 * rows (borrowed), in order of next fire. */
int bt_cli_schedule_list(struct bt_store *store, json_t *rows);
/* `schedule pause NAME` (cmd "pause") or `resume NAME` ("resume"). */
int bt_cli_schedule_pause_resume(struct bt_store *store, const char *cmd,
                                 const char *name);
/* `schedule trigger NAME`: the id of the instance started into id (size n). */
int bt_cli_schedule_trigger(const struct bt_config *cfg, struct bt_store *store,
                            const char *name, char *id, size_t n);
/* dlq.c: the dead letters named (n_names 0: every one), oldest first, at
 * most limit, as `dlq list --json` (whole: `dlq show --json`) prints them,
 * appended to rows (borrowed). Reads the DLQ topic to its end: seconds. */
int bt_cli_dlq_read(const struct bt_config *cfg, char **names, int n_names, bool whole,
                    long limit, json_t *rows);
/* `dlq redrive NAME...`: the names produced again into *sent (a new array,
 * caller json_decref()s it; NULL when nothing was tried). */
int bt_cli_dlq_redrive(const struct bt_config *cfg, char **names, int n_names,
                       json_t **sent);
/* ratelimit.c, concurrency.c: the limit stored at Redis key (a bucket, or a
 * concurrency hash) named name, as their `get --json` prints it: a new
 * reference. */
json_t *bt_cli_ratelimit_json(struct bt_store *store, const char *bucket,
                              const char *name);
/* RATE or RATE/s, tokens per second in (0, 1e9], as `ratelimit set` takes
 * it, into *rate: 0, or BT_EINVAL when it is not one. */
int bt_cli_ratelimit_parse(const char *text, double *rate);
/* The HSET of `ratelimit set KEY RATE [--burst N]` (burst <= 0: unchanged);
 * the bucket's Redis key into bucket (size n). Returns the reply (caller
 * frees; NULL: Redis did not answer). */
redisReply *bt_cli_ratelimit_hset(struct bt_store *store, const char *key, double rate,
                                  long long burst, char *bucket, size_t n);
json_t *bt_cli_concurrency_json(struct bt_store *store, const char *hash,
                                const char *name);
int bt_cli_replay_check(struct bt_config *cfg, int argc, char **argv);
int bt_cli_signal(struct bt_config *cfg, int argc, char **argv);
/* Sends msg (a signal or cancel of msg->id; borrowed) to its instance's
 * events topic, once Redis says the instance is there and not finished.
 * Returns an exit status, having told the user (stderr) what went wrong. */
int bt_cli_send_event(const struct bt_config *cfg, const struct bt_msg *msg);
/* Encodes msg and produces it to the topic suffix, keyed by its id: an exit
 * status, having said what went wrong. */
int bt_cli_send(const struct bt_config *cfg, const char *suffix,
                const struct bt_msg *msg);
/* "user@host (baton cli)": who sent an operator's control, for its history. */
const char *bt_cli_who(void);
int bt_cli_pause(struct bt_config *cfg, int argc, char **argv);
int bt_cli_resume(struct bt_config *cfg, int argc, char **argv);
int bt_cli_reset(struct bt_config *cfg, int argc, char **argv);
/* control.c: sends msg (a pause, resume or reset of msg->id; borrowed) once
 * the instance's status allows it, as `baton pause ID` does. Returns an exit
 * status, having said on stderr what went wrong. */
int bt_cli_control_send(const struct bt_config *cfg, const struct bt_msg *msg);
int bt_cli_cancel(struct bt_config *cfg, int argc, char **argv);
int bt_cli_terminate(struct bt_config *cfg, int argc, char **argv);
int bt_cli_ratelimit(struct bt_config *cfg, int argc, char **argv);
int bt_cli_concurrency(struct bt_config *cfg, int argc, char **argv);
int bt_cli_ui(struct bt_config *cfg, int argc, char **argv);

/* Produces one message to <prefix>.<suffix> and waits for its delivery.
 * Returns an exit status, having told the user what went wrong. */
int bt_cli_produce(const struct bt_config *cfg, const char *suffix, const char *key,
                   const char *payload, size_t len);
/* A store whose Redis answered PING, or NULL having told the user why. */
/* Looks instance id up: its status into status (size sn) and the topic
 * suffix of its events ("events" or "events.<queue>") into suffix (size n).
 * Returns BT_EXIT_OK, BT_EXIT_FAIL (no such instance; said on stderr) or
 * BT_EXIT_UNAVAILABLE. */
int bt_cli_lookup(const struct bt_config *cfg, const char *id, char *status, size_t sn,
                  char *suffix, size_t n);

struct bt_store *bt_cli_store(const struct bt_config *cfg);

/* Every Redis call of the CLI gives up after this long: a Redis that
 * accepts connections but never answers gets the user an error (exit 3)
 * within 5 s, counting the connect timeout. Blocking reads block for less. */
#define BT_CLI_REDIS_TIMEOUT_MS 3000
/* bt_store_new() with BT_CLI_REDIS_TIMEOUT_MS on its calls; NULL with
 * errstr filled. Freed with bt_store_destroy(). */
struct bt_store *bt_cli_store_new(const struct bt_config *cfg, char *errstr,
                                  size_t errstr_size);

/* Following an instance's history as `baton history --follow` and `start
 * --wait` do: a subscriber connection to the channel the commit that ends a
 * run publishes on (history.h), so the wait ends the moment the outcome is
 * in Redis. Without the subscription (an ACL user without the channel) it
 * polls every few ms. */
struct bt_cli_follow {
    struct bt_redis *sub; /* NULL: polling */
    char channel[600];    /* of the run followed */
    bool subscribed;      /* to it, on sub */
    size_t from;          /* records read so far */
    const char *redis;    /* its address, for what it says */
    int64_t down_since;   /* ms: Redis has not answered since; 0: it does */
};

/* How long a follower waits for a Redis that does not answer (a restart, a
 * failover: seconds) before it gives up. */
#define BT_CLI_FOLLOW_OUTAGE_MS 60000

/* f follows on cfg's Redis; bt_cli_follow_release frees what it holds. */
void bt_cli_follow_init(struct bt_cli_follow *f, const struct bt_config *cfg);
void bt_cli_follow_release(struct bt_cli_follow *f);

/* Reads the current run's records of instance id after those read so far
 * into h (released first); when there are none, waits up to block_ms (at
 * least 1) for its run to end and reads again. Following another id starts
 * from its first record. Returns 1 when one of them is the "finished"
 * record (*finished: it, for the caller to json_decref), 0 when none came or
 * none finished it, BT_EAGAIN when Redis did not answer for
 * BT_CLI_FOLLOW_OUTAGE_MS (until then: 0, having waited a little). */
int bt_cli_follow(struct bt_cli_follow *f, struct bt_store *store, const char *id,
                  int block_ms, struct bt_history *h, json_t **finished);
/* Notes whether Redis answered a read of the follower's caller: the first
 * time it does not, says on stderr that the follower waits for it, and when
 * it answers again, that it is back. Returns BT_EAGAIN when it has not
 * answered for BT_CLI_FOLLOW_OUTAGE_MS, else 0 (having waited a little when
 * it did not answer). */
int bt_cli_follow_outage(struct bt_cli_follow *f, bool answered);

/* `baton start` of an id that is taken: an instance of it runs (and
 * --id-conflict is fail), or it finished (and --id-reuse is reject), or it
 * is a child workflow's or lives on another queue. */
enum { BT_EXIT_CONFLICT = 4 };

/* What lives under an instance id (idpolicy.c). */
struct bt_cli_existing {
    bool exists;
    bool finished; /* completed, failed, cancelled or terminated */
    bool child;    /* started by a parent workflow */
    char status[32];
    int run;         /* its current run: 1, more after continue-as-new */
    char queue[300]; /* "default" when none */
};
/* Reads what lives under id into *ex. Returns BT_EXIT_OK (ex->exists says
 * whether anything does) or BT_EXIT_UNAVAILABLE. */
int bt_cli_existing(struct bt_store *store, const char *id, struct bt_cli_existing *ex);
/* Whether a live worker of queue (NULL: default) runs workflow type, from
 * the sets the workers' heartbeats keep (workers/alive.h). When live workers
 * of the queue say what they run and type is not among it, says so on
 * stderr and returns BT_EXIT_FAIL when refuse, else only warns. When none
 * says (none lives, or older workers), returns BT_EXIT_OK: the caller warns
 * about a queue nobody serves. BT_EXIT_UNAVAILABLE when Redis does not answer. */
int bt_cli_check_type(struct bt_store *store, const char *queue, const char *type,
                      bool refuse);

/* The end of a `set`: reply (freed here) to the HSET of key; prints the
 * stored limit, or says why it failed. Returns a BT_EXIT_* status. */
int bt_cli_stored(struct bt_store *store, redisReply *reply, const char *key,
                  const char *name,
                  void (*print)(struct bt_store *store, const char *key, const char *name,
                                void *arg));

/* `get` of a limit: print(store, key, name) when the Redis key exists, else
 * says there is no such <what> yet. Returns a BT_EXIT_* status. */
int bt_cli_show(struct bt_store *store, const char *key, const char *name,
                const char *what,
                void (*print)(struct bt_store *store, const char *key, const char *name,
                              void *arg));

/* Calls fn(store, key, name, arg) for every Redis key matching pattern, which
 * ends in "*"; name is the part of the key the "*" matched. Returns BT_EXIT_OK or
 * BT_EXIT_UNAVAILABLE. */
int bt_cli_scan(struct bt_store *store, const char *pattern,
                void (*fn)(struct bt_store *store, const char *key, const char *name,
                           void *arg),
                void *arg);

#endif
