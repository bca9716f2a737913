/* One thread's connection to Redis: it connects on first use and again after
 * any transport error, authenticates, runs scripts by EVALSHA with SHA1s
 * computed here, and keeps pipelined commands until their replies are read so
 * that a NOSCRIPT can be answered without the caller noticing. */
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "err.h"
#include "log.h"
#include "redis.h"
#include "sha1.h"

#define BT_REDIS_CONNECT_TIMEOUT_MS 1000

/* A script this handle has run, named by the address of its text. */
struct bt_redis_script {
    struct bt_redis_script *next;
    const char *text; /* borrowed: a static bt_lua_* text */
    char sha[41];
    uint64_t loaded_conn; /* the connection known to hold it; 0: none */
};

/* A copy of one command, in one allocation that starts at argvlen. */
struct bt_redis_cmd {
    struct bt_redis_script *script; /* NULL: not an EVALSHA */
    bool preload;                   /* a SCRIPT LOAD went out just before it */
    redisReply *reply;              /* read ahead of its turn */
    int argc;
    const char **argv;
    size_t *argvlen;
};

/* argv is laid out right after argvlen in the same block. */
_Static_assert(sizeof(size_t) % _Alignof(const char *) == 0, "argv alignment");

struct bt_redis {
    redisContext *rc; /* NULL: not connected */
    char *host;
    int port;
    char *password;
    uint64_t conn; /* connections made so far; names the current one */
    bool down;     /* unreachable already reported: log the change, not every try */
    uint64_t round_trips;
    struct bt_redis_script *scripts;
    /* The pipeline. cmds[head..nread) have their reply read, [nread..nsent)
     * wait for it on the wire, [nsent..ncmds) are not written yet: they go
     * out together when their first reply is asked for. */
    struct bt_redis_cmd *cmds;
    size_t cap, head, nread, nsent, ncmds;
    size_t nlost; /* commands dropped with a broken pipeline, not yet answered */
};

struct bt_redis *bt_redis_new(const char *addr, const char *password, char *errstr,
                              size_t errstr_size)
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
    r->password = password ? strdup(password) : NULL;
    if (!r->host || (password && !r->password))
        goto oom;
    goto out;
oom:
    snprintf(errstr, errstr_size, "out of memory");
    bt_redis_destroy(r);
    r = NULL;
out:
    return r;
}

static void cmd_release(struct bt_redis_cmd *cmd)
{
    free(cmd->argvlen);
    freeReplyObject(cmd->reply);
    memset(cmd, 0, sizeof(*cmd));
}

static size_t arg_len(int i, int npre, const char *const *pre, const char **argv,
                      const size_t *argvlen)
{
    if (i < npre)
        return strlen(pre[i]);
    return argvlen ? argvlen[i - npre] : strlen(argv[i - npre]);
}

/* Copies pre[0..npre) (C strings) followed by argv[0..argc) into cmd. */
static int cmd_init(struct bt_redis_cmd *cmd, int npre, const char *const *pre, int argc,
                    const char **argv, const size_t *argvlen)
{
    int n = npre + argc, ret = BT_ENOMEM;
    size_t bytes = (size_t)n * (sizeof(size_t) + sizeof(char *));
    char *data;

    memset(cmd, 0, sizeof(*cmd));
    BT_ASSERT(npre >= 0 && argc >= 0 && n > 0);
    for (int i = 0; i < n; i++)
        bytes += arg_len(i, npre, pre, argv, argvlen) + 1;
    data = malloc(bytes);
    if (!data)
        goto out;
    cmd->argvlen = (size_t *)(void *)data;
    cmd->argv = (const char **)(void *)(cmd->argvlen + n);
    data = (char *)(cmd->argv + n);
    for (int i = 0; i < n; i++) {
        cmd->argvlen[i] = arg_len(i, npre, pre, argv, argvlen);
        memcpy(data, i < npre ? pre[i] : argv[i - npre], cmd->argvlen[i]);
        data[cmd->argvlen[i]] = '\0';
        cmd->argv[i] = data;
        data += cmd->argvlen[i] + 1;
    }
    cmd->argc = n;
    ret = 0;
out:
    return ret;
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

/* Writes the decimal digits of v at p; returns their count. */
static size_t put_size(char *p, size_t v)
{
    char tmp[24];
    size_t n = 0, i = 0;

    do
        tmp[n++] = (char)('0' + v % 10);
    while ((v /= 10) > 0);
    while (n > 0)
        p[i++] = tmp[--n];
    return i;
}

static int eval_init(struct bt_redis *r, struct bt_redis_cmd *cmd, const char *script,
                     int nkeys, int argc, const char **argv, const size_t *argvlen)
{
    struct bt_redis_script *s;
    char nkeys_str[16];
    int ret = BT_ENOMEM;

    memset(cmd, 0, sizeof(*cmd));
    BT_ASSERT(nkeys >= 0 && nkeys <= argc);
    s = script_get(r, script);
    if (!s)
        goto out;
    nkeys_str[put_size(nkeys_str, (size_t)nkeys)] = '\0';
    ret = cmd_init(cmd, 3, (const char *const[]){"EVALSHA", s->sha, nkeys_str}, argc,
                   argv, argvlen);
    if (ret == 0)
        cmd->script = s;
out:
    return ret;
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
}

static void disconnect(struct bt_redis *r)
{
    if (r->rc)
        report_down(r, r->rc->err ? r->rc->errstr : "connection dropped");
    redisFree(r->rc);
    r->rc = NULL;
}

/* redisAppendCommandArgv, formatted here in one pass into one buffer: hiredis
 * builds the same RESP text with a printf-like call per argument, which was
 * a tenth of the worker's instructions per step. */
static int append_argv(redisContext *rc, int argc, const char **argv,
                       const size_t *argvlen)
{
    size_t total = 32, pos = 0; /* "*<argc>\r\n", then per argument "$<len>\r\n...\r\n" */
    char *buf;
    int ret;

    for (int i = 0; i < argc; i++)
        total += (argvlen ? argvlen[i] : strlen(argv[i])) + 26;
    if (!(buf = malloc(total)))
        return REDIS_ERR;
    buf[pos++] = '*';
    pos += put_size(buf + pos, (size_t)argc);
    buf[pos++] = '\r';
    buf[pos++] = '\n';
    for (int i = 0; i < argc; i++) {
        size_t len = argvlen ? argvlen[i] : strlen(argv[i]);
        buf[pos++] = '$';
        pos += put_size(buf + pos, len);
        buf[pos++] = '\r';
        buf[pos++] = '\n';
        memcpy(buf + pos, argv[i], len);
        pos += len;
        buf[pos++] = '\r';
        buf[pos++] = '\n';
    }
    ret = redisAppendFormattedCommand(rc, buf, pos);
    free(buf);
    return ret;
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
    if (!r->rc) {
        report_down(r, "out of memory");
        goto out;
    }
    if (r->rc->err) {
        disconnect(r);
        goto out;
    }
    if (r->password) {
        if (redisAppendCommand(r->rc, "AUTH %s", r->password) != REDIS_OK) {
            disconnect(r);
            goto out;
        }
        reply = round_trip(r);
        if (!reply)
            goto out;
        /* A wrong password is for the operator to fix, not an outage: the
         * connection stays, and every command's NOAUTH error says why. */
        if (reply->type == REDIS_REPLY_ERROR)
            bt_log(BT_LOG_ERROR, "redis refused the password: %s addr=%s:%d", reply->str,
                   r->host, r->port);
    }
    r->conn++;
    if (r->down)
        bt_log(BT_LOG_INFO, "redis reachable again addr=%s:%d", r->host, r->port);
    r->down = false;
    ret = 0;
out:
    freeReplyObject(reply);
    return ret;
}

static redisReply *redis_call(struct bt_redis *r, int argc, const char **argv,
                              const size_t *argvlen)
{
    redisReply *reply = NULL;

    /* A pipeline reply still on the wire would be taken for this one's. */
    BT_ASSERT(r->nread == r->nsent);
    if (redis_connect(r) < 0)
        goto out;
    if (append_argv(r->rc, argc, argv, argvlen) != REDIS_OK) {
        disconnect(r);
        goto out;
    }
    reply = round_trip(r);
out:
    return reply;
}

redisReply *bt_redis_command(struct bt_redis *r, const char *fmt, ...)
{
    redisReply *reply = NULL;
    va_list ap;
    int rc;

    BT_ASSERT(r->nread == r->nsent);
    if (redis_connect(r) < 0)
        goto out;
    va_start(ap, fmt);
    rc = redisvAppendCommand(r->rc, fmt, ap);
    va_end(ap);
    if (rc != REDIS_OK) {
        disconnect(r);
        goto out;
    }
    reply = round_trip(r);
out:
    return reply;
}

redisReply *bt_redis_argv(struct bt_redis *r, int argc, const char **argv,
                          const size_t *argvlen)
{
    return redis_call(r, argc, argv, argvlen);
}

/* Runs an EVALSHA command; on NOSCRIPT loads the script and tries once more. */
static redisReply *script_run(struct bt_redis *r, const struct bt_redis_cmd *cmd)
{
    redisReply *reply = redis_call(r, cmd->argc, cmd->argv, cmd->argvlen);

    if (is_noscript(reply)) {
        freeReplyObject(reply);
        reply =
            redis_call(r, 3, (const char *[]){"SCRIPT", "LOAD", cmd->script->text}, NULL);
        /* A script that does not compile: its error is the answer. */
        if (!reply || reply->type == REDIS_REPLY_ERROR)
            goto out;
        freeReplyObject(reply);
        reply = redis_call(r, cmd->argc, cmd->argv, cmd->argvlen);
    }
    if (reply && !is_noscript(reply))
        cmd->script->loaded_conn = r->conn;
out:
    return reply;
}

redisReply *bt_redis_eval(struct bt_redis *r, const char *script, int nkeys, int argc,
                          const char **argv, const size_t *argvlen)
{
    struct bt_redis_cmd cmd;
    redisReply *reply = NULL;

    if (eval_init(r, &cmd, script, nkeys, argc, argv, argvlen) < 0) {
        bt_log(BT_LOG_ERROR, "cannot run redis script: out of memory");
        goto out;
    }
    reply = script_run(r, &cmd);
out:
    cmd_release(&cmd);
    return reply;
}

static int queue_push(struct bt_redis *r, const struct bt_redis_cmd *cmd)
{
    struct bt_redis_cmd *cmds;
    size_t cap = r->cap ? r->cap * 2 : 16;
    int ret = 0;

    /* Appending after an unread BT_EAGAIN starts a new batch. */
    r->nlost = 0;
    if (r->ncmds == r->cap) {
        cmds = realloc(r->cmds, cap * sizeof(*cmds));
        if (!cmds) {
            ret = BT_ENOMEM;
            goto out;
        }
        r->cmds = cmds;
        r->cap = cap;
    }
    r->cmds[r->ncmds++] = *cmd;
out:
    return ret;
}

static void queue_pop(struct bt_redis *r)
{
    cmd_release(&r->cmds[r->head++]);
    if (r->head == r->ncmds)
        r->head = r->nread = r->nsent = r->ncmds = 0;
}

static void queue_clear(struct bt_redis *r)
{
    while (r->head < r->ncmds)
        queue_pop(r);
}

int bt_redis_append_argv(struct bt_redis *r, int argc, const char **argv,
                         const size_t *argvlen)
{
    struct bt_redis_cmd cmd;
    int ret = cmd_init(&cmd, 0, NULL, argc, argv, argvlen);

    if (ret == 0)
        ret = queue_push(r, &cmd);
    if (ret < 0)
        cmd_release(&cmd);
    return ret;
}

int bt_redis_append_eval(struct bt_redis *r, const char *script, int nkeys, int argc,
                         const char **argv, const size_t *argvlen)
{
    struct bt_redis_cmd cmd;
    int ret = eval_init(r, &cmd, script, nkeys, argc, argv, argvlen);

    if (ret == 0)
        ret = queue_push(r, &cmd);
    if (ret < 0)
        cmd_release(&cmd);
    return ret;
}

static int queue_flush(struct bt_redis *r)
{
    int ret = redis_connect(r);

    if (ret < 0)
        goto out;
    ret = BT_EAGAIN;
    for (; r->nsent < r->ncmds; r->nsent++) {
        struct bt_redis_cmd *cmd = &r->cmds[r->nsent];
        struct bt_redis_script *s = cmd->script;

        /* Loading a script new to this connection in the same write costs no
         * round trip and keeps the batch in order, where a NOSCRIPT would
         * re-run the script after the commands queued behind it. */
        if (s && s->loaded_conn != r->conn) {
            if (append_argv(r->rc, 3, (const char *[]){"SCRIPT", "LOAD", s->text},
                            NULL) != REDIS_OK)
                goto out;
            cmd->preload = true;
            s->loaded_conn = r->conn;
        }
        if (append_argv(r->rc, cmd->argc, cmd->argv, cmd->argvlen) != REDIS_OK)
            goto out;
    }
    r->round_trips++;
    ret = 0;
out:
    return ret;
}

static int queue_read(struct bt_redis *r)
{
    struct bt_redis_cmd *cmd = &r->cmds[r->nread];
    void *reply = NULL;
    int ret = BT_EAGAIN;

    if (cmd->preload) {
        if (redisGetReply(r->rc, &reply) != REDIS_OK)
            goto out;
        /* A failed load shows as NOSCRIPT on the command itself. */
        freeReplyObject(reply);
        reply = NULL;
        cmd->preload = false;
    }
    if (redisGetReply(r->rc, &reply) != REDIS_OK)
        goto out;
    cmd->reply = reply;
    r->nread++;
    ret = 0;
out:
    return ret;
}

int bt_redis_reply(struct bt_redis *r, redisReply **reply)
{
    struct bt_redis_cmd *cmd;
    int ret = 0;

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
        cmd->reply = script_run(r, cmd);
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

uint64_t bt_redis_round_trips(const struct bt_redis *r)
{
    return r->round_trips;
}

void bt_redis_destroy(struct bt_redis *r)
{
    struct bt_redis_script *s, *next;

    if (!r)
        return;
    queue_clear(r);
    free(r->cmds);
    for (s = r->scripts; s; s = next) {
        next = s->next;
        free(s);
    }
    redisFree(r->rc);
    free(r->host);
    free(r->password);
    free(r);
}
