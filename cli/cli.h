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

#include "config.h"
#include "store.h"

enum { BT_EXIT_OK = 0, BT_EXIT_FAIL = 1, BT_EXIT_USAGE = 2, BT_EXIT_UNAVAILABLE = 3 };

int bt_cli_dev(struct bt_config *cfg, int argc, char **argv);
/* Writes the Redis credentials of cfg (requirepass, and the ACL user when
 * there is one) to <home>/redis-auth.conf, mode 0600, for baton dev's
 * redis-server, and its path into path (size n); path is "" when there is no
 * password. Returns 0, or -1 having logged why. */
int bt_cli_dev_redis_conf(const struct bt_config *cfg, char *path, size_t n);
int bt_cli_bench(struct bt_config *cfg, int argc, char **argv);
int bt_cli_start(struct bt_config *cfg, int argc, char **argv);
int bt_cli_describe(struct bt_config *cfg, int argc, char **argv);
int bt_cli_history(struct bt_config *cfg, int argc, char **argv);
int bt_cli_list(struct bt_config *cfg, int argc, char **argv);
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
int bt_cli_stats(struct bt_config *cfg, int argc, char **argv);
int bt_cli_replay_check(struct bt_config *cfg, int argc, char **argv);
int bt_cli_signal(struct bt_config *cfg, int argc, char **argv);
int bt_cli_cancel(struct bt_config *cfg, int argc, char **argv);
int bt_cli_terminate(struct bt_config *cfg, int argc, char **argv);
int bt_cli_ratelimit(struct bt_config *cfg, int argc, char **argv);
int bt_cli_concurrency(struct bt_config *cfg, int argc, char **argv);

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

/* Blocks up to block_ms (at least 1) for the history records of instance id
 * after stream position after (in/out, size n; "0-0" from the start), the
 * way `baton history --follow` reads them. Returns 1 when one of them is the
 * "finished" record (*finished: it, for the caller to json_decref), 0 when
 * none came or none finished the instance, BT_EAGAIN when Redis did not
 * answer. */
int bt_cli_follow(struct bt_store *store, const char *id, char *after, size_t n,
                  int block_ms, json_t **finished);

/* The end of a `set`: reply (freed here) to the HSET of key; prints the
 * stored limit, or says why it failed. Returns a BT_EXIT_* status. */
int bt_cli_stored(struct bt_store *store, redisReply *reply, const char *key,
                  const char *name,
                  void (*print)(struct bt_store *store, const char *key,
                                const char *name));

/* `get` of a limit: print(store, key, name) when the Redis key exists, else
 * says there is no such <what> yet. Returns a BT_EXIT_* status. */
int bt_cli_show(struct bt_store *store, const char *key, const char *name,
                const char *what,
                void (*print)(struct bt_store *store, const char *key, const char *name));

/* Calls fn(store, key, name) for every Redis key matching pattern, which ends
 * in "*"; name is the part of the key the "*" matched. Returns BT_EXIT_OK or
 * BT_EXIT_UNAVAILABLE. */
int bt_cli_scan(struct bt_store *store, const char *pattern,
                void (*fn)(struct bt_store *store, const char *key, const char *name));

#endif
