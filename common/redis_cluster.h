/* Redis Cluster under the bt_redis calls (redis.h): a slot map read with
 * CLUSTER SLOTS, one standalone bt_redis handle per master, and each command
 * sent to the master that owns its key's slot. MOVED updates the map and
 * re-sends, ASK re-sends once to the node named with ASKING ahead, TRYAGAIN
 * (a slot moving under a multi-key command) waits a little and re-sends, and
 * a node that cannot be reached, or CLUSTERDOWN, answers as an unreachable
 * Redis does (NULL, BT_EAGAIN in a pipeline) and makes the next call read
 * the map again: after a failover the replica that took over is found there.
 * Internal to common/: redis.c forwards to it when its handle was made with
 * bt_redis_new_cluster(). */
#ifndef BT_REDIS_CLUSTER_H
#define BT_REDIS_CLUSTER_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <hiredis/hiredis.h>

struct bt_rcluster;

/* The key a command is routed by: *key and *len set and 1, or 0 for a command
 * that names none (TIME, INFO, SCRIPT, an EVAL with no keys...), which any
 * node answers. */
int bt_redis_command_key(int argc, const char **argv, const size_t *argvlen,
                         const char **key, size_t *len);

/* seeds: "host:port[,host:port...]", nodes of the cluster to read the map
 * from (any of them; copied). NULL with errstr filled on a bad address. */
struct bt_rcluster *bt_rcluster_new(const char *seeds, const char *user,
                                    const char *password, char *errstr,
                                    size_t errstr_size);
void bt_rcluster_destroy(struct bt_rcluster *c);

/* As bt_redis_argv / bt_redis_eval / the pipeline calls, routed. */
redisReply *bt_rcluster_argv(struct bt_rcluster *c, int argc, const char **argv,
                             const size_t *argvlen);
redisReply *bt_rcluster_vcommand(struct bt_rcluster *c, const char *fmt, va_list ap);
redisReply *bt_rcluster_eval(struct bt_rcluster *c, const char *script, int nkeys,
                             int argc, const char **argv, const size_t *argvlen);
int bt_rcluster_append(struct bt_rcluster *c, const char *script, int nkeys, int argc,
                       const char **argv, const size_t *argvlen);
int bt_rcluster_reply(struct bt_rcluster *c, redisReply **reply);
int bt_rcluster_flush(struct bt_rcluster *c);

/* Pub/sub on the node that owns the channel's slot (a cluster delivers every
 * PUBLISH to every node's subscribers). */
int bt_rcluster_subscribe(struct bt_rcluster *c, const char *channel);
int bt_rcluster_wait_message(struct bt_rcluster *c, int timeout_ms);

int bt_rcluster_masters(struct bt_rcluster *c);
redisReply *bt_rcluster_master_argv(struct bt_rcluster *c, int k, int argc,
                                    const char **argv, const size_t *argvlen);
void bt_rcluster_set_timeout(struct bt_rcluster *c, int ms);
void bt_rcluster_set_wait(struct bt_rcluster *c, int ms);
uint64_t bt_rcluster_round_trips(const struct bt_rcluster *c);

#endif
