/* One thread's connection to Redis: it connects on first use and again after
 * any transport error, authenticates, runs scripts by EVALSHA with SHA1s
 * computed here, and keeps pipelined commands until their replies are read so
 * that a NOSCRIPT can be answered without the caller noticing. */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>

#include "err.h"
#include "health.h"
#include "jsonw.h"
#include "log.h"
#include "redis.h"
#include "redis_cluster.h"
#include "sha1.h"

#define BT_REDIS_CONNECT_TIMEOUT_MS 1000

/* A script this handle has run, named by the address of its text. */
struct bt_redis_script {
    struct bt_redis_script *next;
    const char *text; /* borrowed: a static bt_lua_* text */
    char sha[41];
    uint64_t loaded_conn; /* the connection known to hold it; 0: none */
};

/* One pipelined command: its RESP text is text[off, off + len) of the
 * handle's pipeline text, kept until its reply is taken (a NOSCRIPT re-runs
 * it from there). */
struct bt_redis_cmd {
    struct bt_redis_script *script; /* NULL: not an EVALSHA */
    redisReply *reply;              /* read ahead of its turn */
    size_t off, len;
};

/* A growing RESP text. */
struct resp {
    char *buf;
    size_t len, cap;
};

struct bt_redis {
    struct bt_rcluster *cluster; /* set: every call goes to redis_cluster.c */
    redisContext *rc;            /* NULL: not connected */
    char *host;
    int port;
    char *user; /* NULL: AUTH with the password alone */
    char *password;
    uint64_t conn; /* connections made so far; names the current one */
    bool down;     /* unreachable already reported: log the change, not every try */
    uint64_t round_trips;
    int timeout_ms; /* of each read and write; 0: none (hiredis blocks) */
    struct bt_redis_script *scripts;
    /* The pipeline. cmds[head..nread) have their reply read, [nread..nsent)
     * wait for it on the wire, [nsent..ncmds) are not written yet: they go
     * out together when their first reply is asked for. */
    struct bt_redis_cmd *cmds;
    size_t cap, head, nread, nsent, ncmds;
    size_t nlost; /* commands dropped with a broken pipeline, not yet answered */
    /* The commands' RESP, formatted once at append and written by us in one
     * write: hiredis would copy each into its output buffer, which it frees
     * after every write and regrows from nothing (a copy per doubling). */
    struct resp text;
    struct resp preload; /* SCRIPT LOADs that go out ahead of a batch */
    size_t npreloads;    /* their replies, read before the batch's first */
};

struct bt_redis *bt_redis_new(const char *addr, const char *user, const char *password,
                              char *errstr, size_t errstr_size)
{
    struct bt_redis *r = NULL;
    const char *colon = strrchr(addr, ':');
    char *end = NULL;
    long port = 0;

    if (colon && colon != addr && colon[1])
        port = strtol(colon + 1, &end, 10);
    if (port < 1 || port > 65535 || *end) {
        snprintf(errstr, errstr_size, "redis address is not host:port: %s", addr);
        goto out;
    }
    r = calloc(1, sizeof(*r));
    if (!r)
        goto oom;
    r->port = (int)port;
    r->host = strndup(addr, (size_t)(colon - addr));
    r->user = user && *user ? strdup(user) : NULL;
    r->password = password ? strdup(password) : NULL;
    if (!r->host || (password && !r->password) || (user && *user && !r->user))
        goto oom;
    goto out;
oom:
    snprintf(errstr, errstr_size, "out of memory");
    bt_redis_destroy(r);
    r = NULL;
out:
    return r;
}

struct bt_redis *bt_redis_new_cluster(const char *seeds, const char *user,
                                      const char *password, char *errstr,
                                      size_t errstr_size)
{
    struct bt_redis *r = calloc(1, sizeof(*r));

    if (!r) {
        snprintf(errstr, errstr_size, "out of memory");
        return NULL;
    }
    if (!(r->cluster = bt_rcluster_new(seeds, user, password, errstr, errstr_size))) {
        free(r);
        return NULL;
    }
    return r;
}

static void cmd_release(struct bt_redis_cmd *cmd)
{
    freeReplyObject(cmd->reply);
    memset(cmd, 0, sizeof(*cmd));
}

static bool resp_reserve(struct resp *t, size_t n)
{
    size_t cap = t->cap ? t->cap : 4096;
    char *grown;

    if (n <= t->cap - t->len)
        return true;
    while (cap - t->len < n)
        cap *= 2;
    if (!(grown = realloc(t->buf, cap)))
        return false;
    t->buf = grown;
    t->cap = cap;
    return true;
}

static size_t arg_len(int i, int npre, const char *const *pre, const char **argv,
                      const size_t *argvlen)
{
    if (i < npre)
        return strlen(pre[i]);
    return argvlen ? argvlen[i - npre] : strlen(argv[i - npre]);
}

/* Appends pre[0..npre) (C strings) followed by argv[0..argc) to t as one
 * RESP command ("*<n>\r\n", then "$<len>\r\n<arg>\r\n" per argument), in one
 * pass. 0 or BT_ENOMEM. */
static int resp_command(struct resp *t, int npre, const char *const *pre, int argc,
                        const char **argv, const size_t *argvlen)
{
    int n = npre + argc;
    size_t total = 32;
    char *p;

    BT_ASSERT(npre >= 0 && argc >= 0 && n > 0);
    for (int i = 0; i < n; i++)
        total += arg_len(i, npre, pre, argv, argvlen) + 26;
    if (!resp_reserve(t, total))
        return BT_ENOMEM;
    p = t->buf + t->len;
    *p++ = '*';
    p += bt_jw_itoa(p, n); /* its NUL is overwritten */
    *p++ = '\r';
    *p++ = '\n';
    for (int i = 0; i < n; i++) {
        size_t len = arg_len(i, npre, pre, argv, argvlen);

        *p++ = '$';
        p += bt_jw_itoa(p, (int64_t)len);
        *p++ = '\r';
        *p++ = '\n';
        memcpy(p, i < npre ? pre[i] : argv[i - npre], len);
        p += len;
        *p++ = '\r';
        *p++ = '\n';
    }
    t->len = (size_t)(p - t->buf);
    return 0;
}

static struct bt_redis_script *script_get(struct bt_redis *r, const char *text)
{
    struct bt_redis_script *s;

    for (s = r->scripts; s; s = s->next)
        if (s->text == text)
            goto out;
    s = calloc(1, sizeof(*s));
    if (!s)
        goto out;
    s->text = text;
    bt_sha1_hex(text, strlen(text), s->sha);
    s->next = r->scripts;
    r->scripts = s;
out:
    return s;
}

/* Appends an EVALSHA of script to t; *sp: the script. 0 or BT_ENOMEM. */
static int eval_format(struct bt_redis *r, struct resp *t, struct bt_redis_script **sp,
                       const char *script, int nkeys, int argc, const char **argv,
                       const size_t *argvlen)
{
    struct bt_redis_script *s;
    char nkeys_str[BT_JW_INT_SIZE];

    BT_ASSERT(nkeys >= 0 && nkeys <= argc);
    if (!(*sp = s = script_get(r, script)))
        return BT_ENOMEM;
    bt_jw_itoa(nkeys_str, nkeys);
    return resp_command(t, 3, (const char *const[]){"EVALSHA", s->sha, nkeys_str}, argc,
                        argv, argvlen);
}

static bool is_noscript(const redisReply *reply)
{
    return reply && reply->type == REDIS_REPLY_ERROR && reply->str &&
           strncmp(reply->str, "NOSCRIPT", 8) == 0;
}

static void report_down(struct bt_redis *r, const char *why)
{
    if (!r->down)
        bt_log(BT_LOG_WARN, "redis unreachable: %s addr=%s:%d", why, r->host, r->port);
    else
        bt_log(BT_LOG_DEBUG, "redis still unreachable: %s addr=%s:%d", why, r->host,
               r->port);
    r->down = true;
    bt_health_set(BT_HEALTH_REDIS, "redis unreachable");
}

/* Why the connection is dropped, for the log: past the timeout hiredis says
 * only "Resource temporarily unavailable". */
static const char *down_reason(const struct bt_redis *r, char *buf, size_t n)
{
    if (r->timeout_ms > 0 && r->rc->err == REDIS_ERR_IO &&
        (errno == EAGAIN || errno == EWOULDBLOCK)) {
        snprintf(buf, n, "no answer within %d ms", r->timeout_ms);
        return buf;
    }
    return r->rc->err ? r->rc->errstr : "connection dropped";
}

static void disconnect(struct bt_redis *r)
{
    char why[64];

    if (r->rc)
        report_down(r, down_reason(r, why, sizeof(why)));
    redisFree(r->rc);
    r->rc = NULL;
}

/* Sends what hiredis has buffered and reads one reply. */
static redisReply *round_trip(struct bt_redis *r)
{
    void *reply = NULL;

    r->round_trips++;
    if (redisGetReply(r->rc, &reply) != REDIS_OK) {
        disconnect(r);
        reply = NULL;
    }
    return reply;
}

/* AUTH on a new connection. Returns its reply (caller frees), NULL when the
 * connection broke. A refusal is for the operator to fix, not an outage:
 * the connection stays, and every command's NOAUTH error says why. */
static redisReply *authenticate(struct bt_redis *r)
{
    redisReply *reply;
    int rc = r->user ? redisAppendCommand(r->rc, "AUTH %s %s", r->user, r->password)
                     : redisAppendCommand(r->rc, "AUTH %s", r->password);

    if (rc != REDIS_OK) {
        disconnect(r);
        return NULL;
    }
    if ((reply = round_trip(r)) && reply->type == REDIS_REPLY_ERROR)
        bt_log(BT_LOG_ERROR, "redis refused the %s: %s user=%s addr=%s:%d",
               r->user ? "user or password" : "password", reply->str,
               r->user ? r->user : "default", r->host, r->port);
    return reply;
}

static int redis_connect(struct bt_redis *r)
{
    struct timeval tv = {.tv_sec = BT_REDIS_CONNECT_TIMEOUT_MS / 1000,
                         .tv_usec = BT_REDIS_CONNECT_TIMEOUT_MS % 1000 * 1000};
    redisReply *reply = NULL;
    int ret = 0;

    if (r->rc)
        goto out;
    ret = BT_EAGAIN;
    r->rc = redisConnectWithTimeout(r->host, r->port, tv);
    if (r->rc && !r->rc->err && r->timeout_ms > 0)
        redisSetTimeout(r->rc, (struct timeval){.tv_sec = r->timeout_ms / 1000,
                                                .tv_usec = r->timeout_ms % 1000 * 1000});
    if (!r->rc) {
        report_down(r, "out of memory");
        goto out;
    }
    if (r->rc->err) {
        disconnect(r);
        goto out;
    }
    if (r->password && !(reply = authenticate(r)))
        goto out;
    r->conn++;
    if (r->down)
        bt_log(BT_LOG_INFO, "redis reachable again addr=%s:%d", r->host, r->port);
    r->down = false;
    bt_health_set(BT_HEALTH_REDIS, !reply || reply->type != REDIS_REPLY_ERROR ? NULL
                                   : r->user ? "redis refused the user or password"
                                             : "redis refused the password");
    ret = 0;
out:
    freeReplyObject(reply);
    return ret;
}

/* Sends one formatted command through hiredis and reads its reply: the
 * synchronous calls, with no pipelined reply on the wire. */
static redisReply *call_formatted(struct bt_redis *r, const char *cmd, size_t len)
{
    redisReply *reply = NULL;

    /* A pipeline reply still on the wire would be taken for this one's. */
    BT_ASSERT(r->nread == r->nsent && r->npreloads == 0);
    if (redis_connect(r) < 0)
        goto out;
    if (redisAppendFormattedCommand(r->rc, cmd, len) != REDIS_OK) {
        disconnect(r);
        goto out;
    }
    reply = round_trip(r);
out:
    return reply;
}

static redisReply *redis_call(struct bt_redis *r, int argc, const char **argv,
                              const size_t *argvlen)
{
    struct resp t = {0};
    redisReply *reply = NULL;

    if (resp_command(&t, 0, NULL, argc, argv, argvlen) == 0)
        reply = call_formatted(r, t.buf, t.len);
    free(t.buf);
    return reply;
}

redisReply *bt_redis_vcommand(struct bt_redis *r, const char *fmt, va_list ap)
{
    redisReply *reply = NULL;

    if (r->cluster)
        return bt_rcluster_vcommand(r->cluster, fmt, ap);
    BT_ASSERT(r->nread == r->nsent && r->npreloads == 0);
    if (redis_connect(r) < 0)
        return NULL;
    if (redisvAppendCommand(r->rc, fmt, ap) != REDIS_OK) {
        disconnect(r);
        return NULL;
    }
    reply = round_trip(r);
    return reply;
}

redisReply *bt_redis_command(struct bt_redis *r, const char *fmt, ...)
{
    redisReply *reply;
    va_list ap;

    va_start(ap, fmt);
    reply = bt_redis_vcommand(r, fmt, ap);
    va_end(ap);
    return reply;
}

redisReply *bt_redis_argv(struct bt_redis *r, int argc, const char **argv,
                          const size_t *argvlen)
{
    if (r->cluster)
        return bt_rcluster_argv(r->cluster, argc, argv, argvlen);
    return redis_call(r, argc, argv, argvlen);
}

/* Runs a formatted EVALSHA of s; on NOSCRIPT loads s and tries once more. */
static redisReply *script_run(struct bt_redis *r, struct bt_redis_script *s,
                              const char *cmd, size_t len)
{
    redisReply *reply = call_formatted(r, cmd, len);

    if (is_noscript(reply)) {
        freeReplyObject(reply);
        reply = redis_call(r, 3, (const char *[]){"SCRIPT", "LOAD", s->text}, NULL);
        /* A script that does not compile: its error is the answer. */
        if (!reply || reply->type == REDIS_REPLY_ERROR)
            goto out;
        freeReplyObject(reply);
        reply = call_formatted(r, cmd, len);
    }
    if (reply && !is_noscript(reply))
        s->loaded_conn = r->conn;
out:
    return reply;
}

redisReply *bt_redis_eval(struct bt_redis *r, const char *script, int nkeys, int argc,
                          const char **argv, const size_t *argvlen)
{
    struct bt_redis_script *s;
    struct resp t = {0};
    redisReply *reply = NULL;

    if (r->cluster)
        return bt_rcluster_eval(r->cluster, script, nkeys, argc, argv, argvlen);
    if (eval_format(r, &t, &s, script, nkeys, argc, argv, argvlen) < 0)
        bt_log(BT_LOG_ERROR, "cannot run redis script: out of memory");
    else
        reply = script_run(r, s, t.buf, t.len);
    free(t.buf);
    return reply;
}

static void queue_pop(struct bt_redis *r)
{
    cmd_release(&r->cmds[r->head++]);
    if (r->head == r->ncmds) {
        r->head = r->nread = r->nsent = r->ncmds = 0;
        r->text.len = 0;
    }
}

static void queue_clear(struct bt_redis *r)
{
    while (r->head < r->ncmds)
        queue_pop(r);
    r->text.len = 0;
    r->npreloads = 0;
}

/* Queues the command that the caller just formatted at the end of r->text
 * (from off on). */
static int queue_push(struct bt_redis *r, struct bt_redis_script *script, size_t off)
{
    struct bt_redis_cmd *cmds;
    size_t cap = r->cap ? r->cap * 2 : 16;

    /* Appending after an unread BT_EAGAIN starts a new batch. */
    r->nlost = 0;
    if (r->ncmds == r->cap) {
        cmds = realloc(r->cmds, cap * sizeof(*cmds));
        if (!cmds) {
            r->text.len = off;
            return BT_ENOMEM;
        }
        r->cmds = cmds;
        r->cap = cap;
    }
    r->cmds[r->ncmds++] =
        (struct bt_redis_cmd){.script = script, .off = off, .len = r->text.len - off};
    return 0;
}

int bt_redis_append_argv(struct bt_redis *r, int argc, const char **argv,
                         const size_t *argvlen)
{
    size_t off = r->text.len;
    int ret;

    if (r->cluster)
        return bt_rcluster_append(r->cluster, NULL, 0, argc, argv, argvlen);
    ret = resp_command(&r->text, 0, NULL, argc, argv, argvlen);
    return ret ? ret : queue_push(r, NULL, off);
}

int bt_redis_append_eval(struct bt_redis *r, const char *script, int nkeys, int argc,
                         const char **argv, const size_t *argvlen)
{
    struct bt_redis_script *s;
    size_t off = r->text.len;
    int ret;

    if (r->cluster)
        return bt_rcluster_append(r->cluster, script, nkeys, argc, argv, argvlen);
    ret = eval_format(r, &r->text, &s, script, nkeys, argc, argv, argvlen);
    if (ret) {
        r->text.len = off;
        return ret;
    }
    return queue_push(r, s, off);
}

/* Sends all of buf; hiredis's own buffer is empty here. */
static int write_all(struct bt_redis *r, const char *buf, size_t len)
{
    BT_ASSERT(sdslen(r->rc->obuf) == 0);
    while (len > 0) {
        ssize_t n = send(r->rc->fd, buf, len, MSG_NOSIGNAL); /* no SIGPIPE */

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            bt_log(BT_LOG_DEBUG, "redis write failed: %s", strerror(errno));
            return BT_EAGAIN;
        }
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

static int queue_flush(struct bt_redis *r)
{
    size_t from = r->cmds[r->nsent].off;
    int ret = redis_connect(r);

    if (ret < 0)
        goto out;
    ret = BT_ENOMEM;
    /* Scripts new to this connection are loaded in the same write, ahead of
     * the batch: no round trip of their own, and no NOSCRIPT that would run
     * a script after the commands queued behind it. */
    r->preload.len = 0;
    for (size_t i = r->nsent; i < r->ncmds; i++) {
        struct bt_redis_script *s = r->cmds[i].script;

        if (!s || s->loaded_conn == r->conn)
            continue;
        if (resp_command(&r->preload, 0, NULL, 3,
                         (const char *[]){"SCRIPT", "LOAD", s->text}, NULL))
            goto out;
        s->loaded_conn = r->conn;
        r->npreloads++;
    }
    if ((ret = write_all(r, r->preload.buf, r->preload.len)) ||
        (ret = write_all(r, r->text.buf + from, r->text.len - from)))
        goto out;
    r->nsent = r->ncmds;
    r->round_trips++;
out:
    return ret;
}

static int queue_read(struct bt_redis *r)
{
    void *reply = NULL;

    /* A failed load shows as NOSCRIPT on the command itself. */
    for (; r->npreloads > 0; r->npreloads--) {
        if (redisGetReply(r->rc, &reply) != REDIS_OK)
            return BT_EAGAIN;
        freeReplyObject(reply);
        reply = NULL;
    }
    if (redisGetReply(r->rc, &reply) != REDIS_OK)
        return BT_EAGAIN;
    r->cmds[r->nread++].reply = reply;
    return 0;
}

int bt_redis_reply(struct bt_redis *r, redisReply **reply)
{
    struct bt_redis_cmd *cmd;
    int ret = 0;

    if (r->cluster)
        return bt_rcluster_reply(r->cluster, reply);
    *reply = NULL;
    if (r->head == r->ncmds && r->nlost > 0) {
        r->nlost--;
        ret = BT_EAGAIN;
        goto out;
    }
    /* More replies asked for than commands appended: a bug in the caller. */
    BT_ASSERT(r->head < r->ncmds);
    if (r->head == r->nsent)
        ret = queue_flush(r);
    if (ret == 0 && r->head == r->nread)
        ret = queue_read(r);
    if (ret < 0)
        goto fail;
    cmd = &r->cmds[r->head];
    if (cmd->script && is_noscript(cmd->reply)) {
        /* The replies still on the wire are read first, to free the
         * connection for the re-run. */
        while (ret == 0 && r->nread < r->nsent)
            ret = queue_read(r);
        if (ret < 0)
            goto fail;
        freeReplyObject(cmd->reply);
        cmd->reply = script_run(r, cmd->script, r->text.buf + cmd->off, cmd->len);
        if (!cmd->reply) {
            ret = BT_EAGAIN;
            goto fail;
        }
    }
    *reply = cmd->reply;
    cmd->reply = NULL;
    queue_pop(r);
    goto out;
fail:
    disconnect(r);
    r->nlost = r->ncmds - r->head - 1;
    queue_clear(r);
out:
    return ret;
}

int bt_redis_flush(struct bt_redis *r)
{
    int ret;

    if (r->cluster)
        return bt_rcluster_flush(r->cluster);
    if (r->nsent == r->ncmds)
        return 0;
    if ((ret = queue_flush(r)) < 0) {
        /* what went out before this write may have run: all of it is lost */
        disconnect(r);
        r->nlost = r->ncmds - r->head;
        queue_clear(r);
    }
    return ret;
}

bool bt_redis_batch_lost(const struct bt_redis *r)
{
    return !r->cluster && r->head == r->ncmds && r->nlost > 0;
}

void bt_redis_set_timeout(struct bt_redis *r, int ms)
{
    r->timeout_ms = ms;
    if (r->cluster)
        bt_rcluster_set_timeout(r->cluster, ms);
    if (r->rc)
        redisSetTimeout(
            r->rc, (struct timeval){.tv_sec = ms / 1000, .tv_usec = ms % 1000 * 1000});
}

int bt_redis_masters(struct bt_redis *r)
{
    return r->cluster ? bt_rcluster_masters(r->cluster) : 1;
}

redisReply *bt_redis_master_argv(struct bt_redis *r, int k, int argc, const char **argv,
                                 const size_t *argvlen)
{
    if (r->cluster)
        return bt_rcluster_master_argv(r->cluster, k, argc, argv, argvlen);
    return k == 0 ? redis_call(r, argc, argv, argvlen) : NULL;
}

void bt_redis_set_wait(struct bt_redis *r, int ms)
{
    if (r->cluster)
        bt_rcluster_set_wait(r->cluster, ms);
}

uint64_t bt_redis_round_trips(const struct bt_redis *r)
{
    return r->cluster ? bt_rcluster_round_trips(r->cluster) : r->round_trips;
}

void bt_redis_destroy(struct bt_redis *r)
{
    struct bt_redis_script *s, *next;

    if (!r)
        return;
    bt_rcluster_destroy(r->cluster);
    queue_clear(r);
    free(r->cmds);
    free(r->text.buf);
    free(r->preload.buf);
    for (s = r->scripts; s; s = next) {
        next = s->next;
        free(s);
    }
    redisFree(r->rc);
    free(r->host);
    free(r->user);
    free(r->password);
    free(r);
}

int bt_redis_subscribe(struct bt_redis *r, const char *channel)
{
    redisReply *reply = NULL;
    int ret = BT_EAGAIN;

    if (r->cluster)
        return bt_rcluster_subscribe(r->cluster, channel);
    BT_ASSERT(r->nread == r->nsent && r->npreloads == 0);
    if (redis_connect(r) < 0)
        goto out;
    if (redisAppendCommand(r->rc, "SUBSCRIBE %s", channel) != REDIS_OK) {
        disconnect(r);
        goto out;
    }
    if (!(reply = round_trip(r)))
        goto out;
    ret = reply->type == REDIS_REPLY_ARRAY ? 0 : BT_EINVAL;
    if (ret)
        bt_log(BT_LOG_WARN, "redis refused a subscription: %s channel=%s",
               reply->str ? reply->str : "", channel);
out:
    freeReplyObject(reply);
    return ret;
}

/* Discards the replies hiredis has read already; returns how many. */
static int drain(struct bt_redis *r)
{
    void *reply = NULL;
    int n = 0;

    while (redisGetReplyFromReader(r->rc, &reply) == REDIS_OK && reply) {
        freeReplyObject(reply);
        reply = NULL;
        n++;
    }
    return n;
}

int bt_redis_wait_message(struct bt_redis *r, int timeout_ms)
{
    struct pollfd pfd = {.events = POLLIN};
    int n;

    if (r->cluster)
        return bt_rcluster_wait_message(r->cluster, timeout_ms);
    if (!r->rc)
        return BT_EAGAIN;
    /* a message may have come in one read with the SUBSCRIBE's reply */
    if ((n = drain(r)) > 0)
        return n;
    pfd.fd = r->rc->fd;
    if (poll(&pfd, 1, timeout_ms) <= 0)
        return 0;
    if (redisBufferRead(r->rc) != REDIS_OK) {
        disconnect(r);
        return BT_EAGAIN;
    }
    n = drain(r);
    if (r->rc->err) {
        disconnect(r);
        return BT_EAGAIN;
    }
    return n;
}

int64_t bt_redis_now_ms(struct bt_redis *r)
{
    redisReply *reply = bt_redis_command(r, "TIME");
    int64_t now = BT_EAGAIN;

    if (reply && reply->type == REDIS_REPLY_ARRAY && reply->elements == 2 &&
        reply->element[0]->type == REDIS_REPLY_STRING &&
        reply->element[1]->type == REDIS_REPLY_STRING)
        now = strtoll(reply->element[0]->str, NULL, 10) * 1000 +
              strtoll(reply->element[1]->str, NULL, 10) / 1000;
    freeReplyObject(reply);
    return now;
}
