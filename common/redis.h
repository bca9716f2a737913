/* The Redis layer: one connection (not thread safe: one per thread) that
 * reconnects by itself after a transport error, authenticates, and runs the
 * Lua scripts of common/lua by EVALSHA, loading them once per connection and
 * again when Redis answers NOSCRIPT (after SCRIPT FLUSH or a restart). Each
 * connection made or lost is reported to the process's readiness (health.h). */
#ifndef BT_REDIS_H
#define BT_REDIS_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <hiredis/hiredis.h>

struct bt_redis;

/* addr "host:port"; user and password may be NULL (copied): each
 * connection sends AUTH password, or AUTH user password (an ACL user) when
 * both are set. Refused credentials are logged once per connection and make
 * the process not ready (health.h); the connection stays, and every command
 * then answers a NOAUTH error. Does not connect yet: the first call does, so
 * a client can start before its Redis. Returns a new handle, freed with
 * bt_redis_destroy(); NULL with errstr filled on a bad address. */
struct bt_redis *bt_redis_new(const char *addr, const char *user, const char *password,
                              char *errstr, size_t errstr_size);
/* A handle on a Redis Cluster (redis_cluster.h): seeds "host:port[,...]",
 * any nodes of it. Every call below then goes to the master that owns its
 * key's slot (a script's: its first key), with the same reply rules: a node
 * that cannot be reached is an unreachable Redis, and the next call reads
 * the slot map again. A pipeline may span nodes; when one of them breaks,
 * the batch is lost as a whole. Not connected yet, as above. */
struct bt_redis *bt_redis_new_cluster(const char *seeds, const char *user,
                                      const char *password, char *errstr,
                                      size_t errstr_size);
void bt_redis_destroy(struct bt_redis *r);

/* Runs one command (hiredis format). Returns a new reply, freed with
 * freeReplyObject(); REDIS_REPLY_ERROR replies are returned as they are
 * (the server refused). NULL when Redis is unreachable (BT_EAGAIN): the
 * connection is dropped and the next call reconnects. */
redisReply *bt_redis_command(struct bt_redis *r, const char *fmt, ...);
redisReply *bt_redis_vcommand(struct bt_redis *r, const char *fmt, va_list ap);
redisReply *bt_redis_argv(struct bt_redis *r, int argc, const char **argv,
                          const size_t *argvlen);

/* Redis's clock (TIME) in ms since the epoch, the clock its scripts use;
 * BT_EAGAIN when Redis is unreachable or refused. */
int64_t bt_redis_now_ms(struct bt_redis *r);

/* Runs a script (one of lua_scripts.h's bt_lua_* texts) with nkeys keys
 * followed by the other args in argv[0..argc). Same reply rules as above. */
redisReply *bt_redis_eval(struct bt_redis *r, const char *script, int nkeys, int argc,
                          const char **argv, const size_t *argvlen);

/* Pipelining: queue commands with bt_redis_append_*(), then collect exactly
 * one reply per appended command, in order, with bt_redis_reply(). A script
 * that hits NOSCRIPT in a pipeline is loaded and re-run transparently, but
 * after the commands queued behind it; only a SCRIPT FLUSH on a live
 * connection causes that, as scripts new to a connection go out with a
 * SCRIPT LOAD ahead of them in the same write.
 * Append returns 0 or BT_ENOMEM; bt_redis_reply returns 0 with *reply set
 * (caller frees) or BT_EAGAIN when the connection broke: then every queued
 * command is lost (none may have run, or some may), the replies still due
 * for that batch are BT_EAGAIN too, and the connection is reset; the caller
 * retries its batch, which must be idempotent. Commands are written when the
 * batch's first reply is asked for; from then until its last reply, the
 * synchronous calls above must not be used (asserted). */
int bt_redis_append_argv(struct bt_redis *r, int argc, const char **argv,
                         const size_t *argvlen);
int bt_redis_append_eval(struct bt_redis *r, const char *script, int nkeys, int argc,
                         const char **argv, const size_t *argvlen);
int bt_redis_reply(struct bt_redis *r, redisReply **reply);
/* Writes the commands appended since the last write now, rather than when
 * their first reply is asked for: Redis runs them while the caller prepares
 * the next ones. Returns 0 or BT_EAGAIN (the connection broke: every queued
 * command is lost, as above). */
int bt_redis_flush(struct bt_redis *r);
/* Whether the batch was lost (its connection broke) and some of its replies
 * are still to be read, each BT_EAGAIN: a command appended now would start
 * a new batch and drop them. */
bool bt_redis_batch_lost(const struct bt_redis *r);

/* Bounds each read and write of every connection (this one and the next)
 * to ms: a Redis that accepts connections but does not answer makes the
 * call return NULL, as unreachable, instead of blocking for ever. Blocking
 * commands (XREAD BLOCK) must block for less. Default: none; the
 * connections of bt_store_redis_new() take cfg's redis-timeout-ms. */
void bt_redis_set_timeout(struct bt_redis *r, int ms);

/* For what each node answers for its own keys alone (SCAN, DBSIZE): how
 * many masters there are to ask (1 on a single Redis; on a cluster, from
 * the slot map, read first when needed: BT_EAGAIN when it cannot be), and a
 * command sent to the k-th of them, with the reply rules above. */
int bt_redis_masters(struct bt_redis *r);
redisReply *bt_redis_master_argv(struct bt_redis *r, int k, int argc, const char **argv,
                                 const size_t *argvlen);

/* On a Redis Cluster handle: every pipelined batch and every script waits
 * until a replica of each master it went to has what this connection wrote
 * (WAIT 1 ms); when none has it in time, the call fails as on an unreachable
 * Redis (NULL, BT_EAGAIN), for the caller to retry: what a master
 * acknowledged then survives its failover (replication is asynchronous). A
 * master with no replica is not waited for. 0 (the default): no wait. No
 * effect on a single Redis. */
void bt_redis_set_wait(struct bt_redis *r, int ms);

/* Subscribe mode, for a handle used for nothing else (asserted: no pipeline
 * in flight): bt_redis_subscribe connects if needed and subscribes to
 * channel; 0, BT_EAGAIN when Redis is unreachable, or BT_EINVAL when Redis
 * refused (no channel permission for an ACL user, say: the caller polls
 * instead). bt_redis_wait_message then waits up to timeout_ms for messages
 * on it and discards them: returns how many came (0: none in time, or a
 * signal cut the wait short), or BT_EAGAIN when the connection broke (the
 * next bt_redis_subscribe reconnects; messages sent meanwhile are lost, so
 * the caller must look at what they announce after subscribing again). */
int bt_redis_subscribe(struct bt_redis *r, const char *channel);
int bt_redis_wait_message(struct bt_redis *r, int timeout_ms);

/* Round trips made so far (a pipeline counts once; AUTH and the SCRIPT LOAD
 * after a NOSCRIPT count too): for metrics and bench. */
uint64_t bt_redis_round_trips(const struct bt_redis *r);

/* The slot of a key, as Redis Cluster computes it: CRC16 (XMODEM) of the key,
 * or of the part between the first '{' and the next '}' when that part is not
 * empty (the hash tag), modulo BT_REDIS_SLOTS. */
#define BT_REDIS_SLOTS 16384
unsigned bt_redis_slot(const char *key, size_t len);

#endif
