/* Redis Cluster routing over standalone bt_redis handles: the slot map, the
 * node handles, redirects, and the pipeline spread over the nodes. A
 * pipelined command keeps a copy of its arguments until its reply is handed
 * out, so that a redirect can send it again elsewhere. */
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "err.h"
#include "log.h"
#include "redis.h"
#include "redis_cluster.h"

/* Redirects followed for one command before its last error is the answer. */
#define BT_CLUSTER_REDIRECTS 8
/* The wait before a TRYAGAIN is tried again: a slot is moving. */
#define BT_CLUSTER_TRYAGAIN_MS 25

struct node {
    char *addr;         /* "host:port" */
    struct bt_redis *r; /* made on first use */
    bool queued;        /* has pipelined commands whose replies are not read */
    bool replica;       /* the map shows it has a replica: writes wait for it */
    bool waited;        /* a WAIT follows its part of the batch */
};

/* One command: what a redirect needs to send it again. */
struct cmd {
    const char *script; /* NULL: argv[0] is the command */
    int nkeys, argc;
    const char **argv;
    const size_t *argvlen;
};

/* A pipelined command; its arguments are c->args[off...]: argc lengths, then
 * the bytes. */
struct pending {
    const char *script;
    int nkeys, argc, node;
    size_t off;
    redisReply *reply;
    bool lost;
};

struct bt_rcluster {
    char *user, *password;
    int timeout_ms;
    int wait_ms;        /* > 0: writes wait for a replica this long (redis.h) */
    struct node *nodes; /* the seeds, then every master the map named */
    size_t nnodes;
    int16_t slot_node[BT_REDIS_SLOTS]; /* node index; -1: no master known */
    bool stale;                        /* read the map before the next command */
    bool not_cluster_logged;
    uint64_t redirects;
    /* The pipeline: q[head..collected) have their replies read,
     * [collected..n) are appended; flushed: some node has them on the wire. */
    struct pending *q;
    size_t head, collected, n, cap;
    bool flushed, failed;
    char *args;
    size_t args_len, args_cap;
    int sub_node; /* the node subscribed on; -1: none */
};

static size_t len_of(const char **argv, const size_t *argvlen, int i)
{
    return argvlen ? argvlen[i] : strlen(argv[i]);
}

/* The index of the node at addr, added when new (create); -1 when unknown
 * and not created, or out of memory. */
static int node_find(struct bt_rcluster *c, const char *addr, bool create)
{
    struct node *grown;

    for (size_t i = 0; i < c->nnodes; i++)
        if (strcmp(c->nodes[i].addr, addr) == 0)
            return (int)i;
    if (!create || c->nnodes >= INT16_MAX)
        return -1;
    if (!(grown = realloc(c->nodes, (c->nnodes + 1) * sizeof(*grown))))
        return -1;
    c->nodes = grown;
    c->nodes[c->nnodes] = (struct node){.addr = strdup(addr)};
    if (!c->nodes[c->nnodes].addr)
        return -1;
    return (int)c->nnodes++;
}

static struct bt_redis *node_handle(struct bt_rcluster *c, int i)
{
    struct node *n = &c->nodes[i];
    char errstr[128];

    if (!n->r) {
        n->r = bt_redis_new(n->addr, c->user, c->password, errstr, sizeof(errstr));
        if (!n->r)
            bt_log(BT_LOG_ERROR, "redis cluster: %s", errstr);
        else if (c->timeout_ms > 0)
            bt_redis_set_timeout(n->r, c->timeout_ms);
    }
    return n->r;
}

static int str_int(const redisReply *r)
{
    return r->type == REDIS_REPLY_INTEGER ? (int)r->integer : -1;
}

/* Reads CLUSTER SLOTS's answer from node `asked` into the map: each entry
 * is [first, last, [ip, port, ...] (the master), replicas...]; an empty ip
 * means the node asked. 0, or BT_EINVAL on an answer of another shape. */
static int map_load(struct bt_rcluster *c, int asked, const redisReply *reply)
{
    int16_t *map = malloc(sizeof(c->slot_node));
    int ret = BT_EINVAL;

    if (!map)
        return BT_ENOMEM;
    for (size_t s = 0; s < BT_REDIS_SLOTS; s++)
        map[s] = -1;
    for (size_t i = 0; i < c->nnodes; i++)
        c->nodes[i].replica = false;
    for (size_t i = 0; i < reply->elements; i++) {
        const redisReply *e = reply->element[i], *m;
        char addr[300];
        const char *host;
        int first, last, node;

        if (e->type != REDIS_REPLY_ARRAY || e->elements < 3)
            goto out;
        first = str_int(e->element[0]), last = str_int(e->element[1]);
        m = e->element[2];
        if (first < 0 || last < first || last >= BT_REDIS_SLOTS ||
            m->type != REDIS_REPLY_ARRAY || m->elements < 2 ||
            m->element[0]->type != REDIS_REPLY_STRING || str_int(m->element[1]) < 1)
            goto out;
        host = m->element[0]->str;
        if (!*host) { /* "the node you asked": its host */
            const char *a = c->nodes[asked].addr;
            snprintf(addr, sizeof(addr), "%.*s:%d", (int)(strrchr(a, ':') - a), a,
                     str_int(m->element[1]));
        } else {
            snprintf(addr, sizeof(addr), "%s:%d", host, str_int(m->element[1]));
        }
        if ((node = node_find(c, addr, true)) < 0) {
            ret = BT_ENOMEM;
            goto out;
        }
        for (int s = first; s <= last; s++)
            map[s] = (int16_t)node;
        c->nodes[node].replica = c->nodes[node].replica || e->elements > 3;
    }
    memcpy(c->slot_node, map, sizeof(c->slot_node));
    ret = 0;
out:
    free(map);
    return ret;
}

/* Reads the map from the first node that answers. 0 or BT_EAGAIN. */
static int map_refresh(struct bt_rcluster *c)
{
    for (size_t i = 0; i < c->nnodes; i++) {
        struct bt_redis *r = node_handle(c, (int)i);
        redisReply *reply =
            r ? bt_redis_argv(r, 2, (const char *[]){"CLUSTER", "SLOTS"}, NULL) : NULL;
        int ret = BT_EAGAIN;

        if (reply && reply->type == REDIS_REPLY_ARRAY)
            ret = map_load(c, (int)i, reply);
        else if (reply && reply->type == REDIS_REPLY_ERROR && !c->not_cluster_logged) {
            bt_log(BT_LOG_ERROR,
                   "redis cluster: %s refused CLUSTER SLOTS (%s): is it a cluster node?",
                   c->nodes[i].addr, reply->str);
            c->not_cluster_logged = true;
        }
        freeReplyObject(reply);
        if (ret == 0) {
            c->stale = false;
            return 0;
        }
    }
    return BT_EAGAIN;
}

static int cmd_key(const struct cmd *cmd, const char **key, size_t *len)
{
    if (!cmd->script)
        return bt_redis_command_key(cmd->argc, cmd->argv, cmd->argvlen, key, len);
    if (cmd->nkeys < 1)
        return 0;
    *key = cmd->argv[0];
    *len = len_of(cmd->argv, cmd->argvlen, 0);
    return 1;
}

/* The node that owns the command's key (any known one for a keyless
 * command), the map read first when stale or silent about that slot and
 * may_refresh (no pipeline on the wire); -1 when no node is known for it. */
static int route(struct bt_rcluster *c, const struct cmd *cmd, bool may_refresh)
{
    const char *key;
    size_t len;
    int slot = -1;

    if (cmd_key(cmd, &key, &len))
        slot = (int)bt_redis_slot(key, len);
    if (may_refresh && (c->stale || (slot >= 0 && c->slot_node[slot] < 0)))
        map_refresh(c);
    if (slot >= 0)
        return c->slot_node[slot];
    for (int s = 0; s < BT_REDIS_SLOTS; s++)
        if (c->slot_node[s] >= 0)
            return c->slot_node[s];
    return c->nnodes > 0 ? 0 : -1;
}

enum redirect { NOT_REDIRECTED, MOVED, ASK, TRYAGAIN, DOWN };

/* What an error reply asks for; for MOVED and ASK, the slot and the node's
 * address. */
static enum redirect redirect_of(const redisReply *reply, unsigned *slot, char *addr,
                                 size_t n)
{
    enum redirect how = NOT_REDIRECTED;
    char word[16], to[256];

    if (!reply || reply->type != REDIS_REPLY_ERROR || !reply->str)
        return NOT_REDIRECTED;
    if (strncmp(reply->str, "TRYAGAIN", 8) == 0)
        return TRYAGAIN;
    if (strncmp(reply->str, "CLUSTERDOWN", 11) == 0)
        return DOWN;
    if (sscanf(reply->str, "%15s %u %255s", word, slot, to) != 3 ||
        *slot >= BT_REDIS_SLOTS)
        return NOT_REDIRECTED;
    if (strcmp(word, "MOVED") == 0)
        how = MOVED;
    else if (strcmp(word, "ASK") == 0)
        how = ASK;
    if (how != NOT_REDIRECTED)
        snprintf(addr, n, "%s", to);
    return how;
}

static redisReply *node_run(struct bt_rcluster *c, int node, const struct cmd *cmd,
                            bool asking)
{
    struct bt_redis *r = node_handle(c, node);
    redisReply *reply;

    if (!r)
        return NULL;
    if (asking) {
        if (!(reply = bt_redis_argv(r, 1, (const char *[]){"ASKING"}, NULL)))
            return NULL;
        freeReplyObject(reply);
    }
    return cmd->script ? bt_redis_eval(r, cmd->script, cmd->nkeys, cmd->argc, cmd->argv,
                                       cmd->argvlen)
                       : bt_redis_argv(r, cmd->argc, cmd->argv, cmd->argvlen);
}

/* Whether node's replica has what this connection wrote (WAIT 1): false
 * when it did not answer within wait_ms, or the node broke. */
static bool replicated(struct bt_rcluster *c, int node)
{
    char ms[32];
    redisReply *reply;
    bool ok;

    snprintf(ms, sizeof(ms), "%d", c->wait_ms);
    reply = bt_redis_argv(c->nodes[node].r, 3, (const char *[]){"WAIT", "1", ms}, NULL);
    ok = reply && reply->type == REDIS_REPLY_INTEGER && reply->integer >= 1;
    if (reply && !ok)
        bt_log(BT_LOG_WARN,
               "redis cluster: no replica of %s took the writes within %d ms",
               c->nodes[node].addr, c->wait_ms);
    freeReplyObject(reply);
    return ok;
}

/* Sends cmd to node, following redirects; no pipeline in flight. NULL when
 * a node cannot be reached or the cluster is down (the map is read again
 * before the next command), and when a script's writes did not reach a
 * replica in time (redis.h, bt_redis_set_wait). */
static redisReply *run(struct bt_rcluster *c, const struct cmd *cmd, int node)
{
    bool asking = false;

    for (int tries = 0;; tries++) {
        redisReply *reply = node >= 0 ? node_run(c, node, cmd, asking) : NULL;
        enum redirect how;
        unsigned slot = 0;
        char addr[256];

        if (!reply) {
            c->stale = true;
            return NULL;
        }
        how = redirect_of(reply, &slot, addr, sizeof(addr));
        if (how == NOT_REDIRECTED && cmd->script && c->wait_ms > 0 &&
            reply->type != REDIS_REPLY_ERROR && c->nodes[node].replica &&
            !replicated(c, node)) {
            freeReplyObject(reply);
            return NULL;
        }
        if (how == NOT_REDIRECTED || tries == BT_CLUSTER_REDIRECTS)
            return reply;
        freeReplyObject(reply);
        c->redirects++;
        asking = false;
        if (how == DOWN) {
            c->stale = true;
            return NULL;
        }
        if (how == TRYAGAIN) {
            bt_clock_sleep_ms(BT_CLUSTER_TRYAGAIN_MS);
            continue;
        }
        if ((node = node_find(c, addr, true)) < 0)
            return NULL;
        if (how == MOVED) { /* the slot moved for good: others may have too */
            c->slot_node[slot] = (int16_t)node;
            c->stale = true;
        } else {
            asking = true;
        }
    }
}

redisReply *bt_rcluster_argv(struct bt_rcluster *c, int argc, const char **argv,
                             const size_t *argvlen)
{
    struct cmd cmd = {.argc = argc, .argv = argv, .argvlen = argvlen};

    return run(c, &cmd, route(c, &cmd, true));
}

/* A formatted command's arguments, pointing into cmd: for the cluster's
 * routing, which needs the key. argc, or -1 when out of memory. */
static int resp_split(char *cmd, const char ***argvp, size_t **lensp)
{
    int argc = (int)strtol(cmd + 1, &cmd, 10);
    const char **argv = malloc((size_t)(argc > 0 ? argc : 1) * sizeof(*argv));
    size_t *lens = malloc((size_t)(argc > 0 ? argc : 1) * sizeof(*lens));

    if (!argv || !lens) {
        free(argv);
        free(lens);
        return -1;
    }
    for (int i = 0; i < argc; i++) {
        lens[i] = (size_t)strtoull(cmd + 3, &cmd, 10); /* "\r\n$<len>" */
        argv[i] = cmd + 2;
        cmd += 2 + lens[i];
    }
    *argvp = argv;
    *lensp = lens;
    return argc;
}

redisReply *bt_rcluster_vcommand(struct bt_rcluster *c, const char *fmt, va_list ap)
{
    redisReply *reply = NULL;
    const char **argv = NULL;
    size_t *lens = NULL;
    char *cmd = NULL;
    int argc;

    if (redisvFormatCommand(&cmd, fmt, ap) < 0)
        return NULL;
    if ((argc = resp_split(cmd, &argv, &lens)) > 0)
        reply = bt_rcluster_argv(c, argc, argv, lens);
    free(argv);
    free(lens);
    redisFreeCommand(cmd);
    return reply;
}

redisReply *bt_rcluster_eval(struct bt_rcluster *c, const char *script, int nkeys,
                             int argc, const char **argv, const size_t *argvlen)
{
    struct cmd cmd = {script, nkeys, argc, argv, argvlen};

    return run(c, &cmd, route(c, &cmd, true));
}

/* Copies a command's arguments behind the others of the pipeline; their
 * offset, or (size_t)-1 when out of memory. */
static size_t args_keep(struct bt_rcluster *c, int argc, const char **argv,
                        const size_t *argvlen)
{
    size_t off = (c->args_len + 7) & ~(size_t)7,
           need = off + (size_t)argc * sizeof(size_t);
    size_t *lens;
    char *p;

    for (int i = 0; i < argc; i++)
        need += len_of(argv, argvlen, i);
    if (need > c->args_cap) {
        size_t cap = c->args_cap ? c->args_cap : 4096;
        char *grown;

        while (cap < need)
            cap *= 2;
        if (!(grown = realloc(c->args, cap)))
            return (size_t)-1;
        c->args = grown;
        c->args_cap = cap;
    }
    lens = (size_t *)(void *)(c->args + off);
    p = c->args + off + (size_t)argc * sizeof(size_t);
    for (int i = 0; i < argc; i++) {
        lens[i] = len_of(argv, argvlen, i);
        memcpy(p, argv[i], lens[i]);
        p += lens[i];
    }
    c->args_len = need;
    return off;
}

/* A pending command's copy as a struct cmd; argv (argc entries) is the
 * caller's. */
static struct cmd args_cmd(const struct bt_rcluster *c, const struct pending *p,
                           const char **argv)
{
    const size_t *lens = (const size_t *)(const void *)(c->args + p->off);
    const char *at = c->args + p->off + (size_t)p->argc * sizeof(size_t);

    for (int i = 0; i < p->argc; i++) {
        argv[i] = at;
        at += lens[i];
    }
    return (struct cmd){p->script, p->nkeys, p->argc, argv, lens};
}

static void queue_drop(struct bt_rcluster *c)
{
    for (size_t i = c->head; i < c->n; i++)
        freeReplyObject(c->q[i].reply);
    c->head = c->collected = c->n = 0;
    c->args_len = 0;
    c->failed = false;
}

int bt_rcluster_append(struct bt_rcluster *c, const char *script, int nkeys, int argc,
                       const char **argv, const size_t *argvlen)
{
    struct cmd cmd = {script, nkeys, argc, argv, argvlen};
    struct pending *p;
    struct bt_redis *r;
    int node, ret;

    /* Appending after an unread BT_EAGAIN starts a new batch (redis.h). */
    if (c->failed)
        queue_drop(c);
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 16;

        if (!(p = realloc(c->q, cap * sizeof(*p))))
            return BT_ENOMEM;
        c->q = p;
        c->cap = cap;
    }
    p = &c->q[c->n];
    *p = (struct pending){.script = script, .nkeys = nkeys, .argc = argc};
    if ((p->off = args_keep(c, argc, argv, argvlen)) == (size_t)-1)
        return BT_ENOMEM;
    /* With no node known the command is lost at its reply, as on a broken
     * connection; a wrong node answers MOVED, followed when collected. */
    node = route(c, &cmd, !c->flushed && c->collected == c->n);
    p->node = node;
    if (node >= 0 && (r = node_handle(c, node))) {
        ret = script ? bt_redis_append_eval(r, script, nkeys, argc, argv, argvlen)
                     : bt_redis_append_argv(r, argc, argv, argvlen);
        if (ret)
            return ret;
        c->nodes[node].queued = true;
    } else {
        p->node = -1;
    }
    c->n++;
    return 0;
}

/* A node whose part of the batch could not be written dropped it: its
 * commands are lost (collect answers BT_EAGAIN for the whole batch), and
 * not read from the node, where what is appended next (a batch is flushed
 * part by part) would answer in their place. */
static void node_lost(struct bt_rcluster *c, int node)
{
    for (size_t i = c->collected; i < c->n; i++)
        if (c->q[i].node == node)
            c->q[i].node = -1;
    c->nodes[node].queued = c->nodes[node].waited = false;
    c->stale = true;
}

int bt_rcluster_flush(struct bt_rcluster *c)
{
    for (size_t i = 0; i < c->nnodes; i++)
        if (c->nodes[i].queued && c->nodes[i].r && bt_redis_flush(c->nodes[i].r) < 0)
            node_lost(c, (int)i);
    c->flushed = true;
    return 0;
}

/* Sends again, with redirects followed, the collected commands a node
 * redirected; the nodes have nothing on the wire. false when one of them
 * cannot be run. */
static bool collect_redirected(struct bt_rcluster *c)
{
    for (size_t i = c->collected; i < c->n; i++) {
        struct pending *p = &c->q[i];
        const char **argv;
        struct cmd cmd;
        unsigned slot;
        char addr[256];

        if (redirect_of(p->reply, &slot, addr, sizeof(addr)) == NOT_REDIRECTED)
            continue;
        if (!(argv = malloc((size_t)p->argc * sizeof(*argv))))
            return false;
        cmd = args_cmd(c, p, argv);
        freeReplyObject(p->reply);
        c->redirects++;
        p->reply = run(c, &cmd, route(c, &cmd, true));
        free(argv);
        if (!p->reply)
            return false;
    }
    return true;
}

/* Reads the replies of every appended command, in order (each node's come
 * in the order its commands went), then re-sends the redirected ones. When
 * a node broke, the whole batch is lost (BT_EAGAIN for each), as on one
 * connection, and the map is read again before the next command. */
static void collect(struct bt_rcluster *c)
{
    char ms[32];
    bool ok = true;

    /* each master's part of the batch, then a WAIT for its replica; not
     * behind a part whose write failed already (a flush): appended there,
     * the WAIT would start a new batch on that connection, and the lost
     * part's replies would be read from it */
    snprintf(ms, sizeof(ms), "%d", c->wait_ms);
    for (size_t i = 0; i < c->nnodes; i++) {
        struct node *n = &c->nodes[i];

        n->waited =
            n->queued && n->r && !bt_redis_batch_lost(n->r) && n->replica &&
            c->wait_ms > 0 &&
            bt_redis_append_argv(n->r, 3, (const char *[]){"WAIT", "1", ms}, NULL) == 0;
    }
    bt_rcluster_flush(c);
    for (size_t i = c->collected; i < c->n; i++) {
        struct pending *p = &c->q[i];

        if (p->node < 0 || bt_redis_reply(c->nodes[p->node].r, &p->reply) < 0)
            ok = false;
    }
    for (size_t i = 0; i < c->nnodes; i++) {
        struct node *n = &c->nodes[i];
        redisReply *acked = NULL;

        if (n->waited && (bt_redis_reply(n->r, &acked) < 0 ||
                          acked->type != REDIS_REPLY_INTEGER || acked->integer < 1)) {
            if (acked)
                bt_log(BT_LOG_WARN,
                       "redis cluster: no replica of %s took the writes within %d ms",
                       n->addr, c->wait_ms);
            ok = false;
        }
        freeReplyObject(acked);
        n->queued = n->waited = false;
    }
    c->flushed = false;
    if (ok)
        ok = collect_redirected(c);
    if (!ok) {
        for (size_t i = c->collected; i < c->n; i++) {
            freeReplyObject(c->q[i].reply);
            c->q[i].reply = NULL;
            c->q[i].lost = true;
        }
        c->stale = true;
        c->failed = true;
    }
    c->collected = c->n;
}

int bt_rcluster_reply(struct bt_rcluster *c, redisReply **reply)
{
    struct pending *p;
    int ret = 0;

    *reply = NULL;
    /* More replies asked for than commands appended: a bug in the caller. */
    BT_ASSERT(c->head < c->n);
    if (c->head == c->collected)
        collect(c);
    p = &c->q[c->head++];
    if (p->lost)
        ret = BT_EAGAIN;
    *reply = p->reply;
    p->reply = NULL;
    if (c->head == c->n)
        queue_drop(c);
    return ret;
}

int bt_rcluster_subscribe(struct bt_rcluster *c, const char *channel)
{
    struct cmd cmd = {.argc = 2, .argv = (const char *[]){"PUBLISH", channel}};
    struct bt_redis *r;
    int node;

    /* A handle in subscribe mode answers nothing else: start afresh. */
    if (c->sub_node >= 0) {
        bt_redis_destroy(c->nodes[c->sub_node].r);
        c->nodes[c->sub_node].r = NULL;
        c->sub_node = -1;
    }
    if ((node = route(c, &cmd, true)) < 0 || !(r = node_handle(c, node)))
        return BT_EAGAIN;
    c->sub_node = node;
    return bt_redis_subscribe(r, channel);
}

int bt_rcluster_wait_message(struct bt_rcluster *c, int timeout_ms)
{
    int n;

    if (c->sub_node < 0)
        return BT_EAGAIN;
    if ((n = bt_redis_wait_message(c->nodes[c->sub_node].r, timeout_ms)) == BT_EAGAIN)
        c->stale = true;
    return n;
}

/* The k-th master of the map (in slot order), -1 past the last. */
static int master_at(const struct bt_rcluster *c, int k)
{
    int seen = 0, last = -1;

    for (int s = 0; s < BT_REDIS_SLOTS; s++) {
        int node = c->slot_node[s];

        if (node < 0 || node == last)
            continue;
        last = node;
        /* a master serves one range here, or several: count each once */
        bool before = false;
        for (int t = 0; t < s && !before; t++)
            before = c->slot_node[t] == node;
        if (!before && seen++ == k)
            return node;
    }
    return -1;
}

int bt_rcluster_masters(struct bt_rcluster *c)
{
    int n = 0;

    if (c->stale && map_refresh(c) < 0)
        return BT_EAGAIN;
    while (master_at(c, n) >= 0)
        n++;
    return n;
}

redisReply *bt_rcluster_master_argv(struct bt_rcluster *c, int k, int argc,
                                    const char **argv, const size_t *argvlen)
{
    struct cmd cmd = {.argc = argc, .argv = argv, .argvlen = argvlen};
    int node = master_at(c, k);
    redisReply *reply = node >= 0 ? node_run(c, node, &cmd, false) : NULL;

    if (!reply)
        c->stale = true;
    return reply;
}

void bt_rcluster_set_wait(struct bt_rcluster *c, int ms)
{
    c->wait_ms = ms;
}

void bt_rcluster_set_timeout(struct bt_rcluster *c, int ms)
{
    c->timeout_ms = ms;
    for (size_t i = 0; i < c->nnodes; i++)
        if (c->nodes[i].r)
            bt_redis_set_timeout(c->nodes[i].r, ms);
}

uint64_t bt_rcluster_round_trips(const struct bt_rcluster *c)
{
    uint64_t n = c->redirects;

    for (size_t i = 0; i < c->nnodes; i++)
        if (c->nodes[i].r)
            n += bt_redis_round_trips(c->nodes[i].r);
    return n;
}

struct bt_rcluster *bt_rcluster_new(const char *seeds, const char *user,
                                    const char *password, char *errstr,
                                    size_t errstr_size)
{
    struct bt_rcluster *c = calloc(1, sizeof(*c));
    char *list = strdup(seeds), *save = NULL;

    if (!c || !list)
        goto oom;
    c->sub_node = -1;
    c->stale = true;
    for (size_t s = 0; s < BT_REDIS_SLOTS; s++)
        c->slot_node[s] = -1;
    if ((user && *user && !(c->user = strdup(user))) ||
        (password && !(c->password = strdup(password))))
        goto oom;
    for (char *a = strtok_r(list, ",", &save); a; a = strtok_r(NULL, ",", &save)) {
        struct bt_redis *probe = bt_redis_new(a, NULL, NULL, errstr, errstr_size);

        if (!probe) /* errstr says which address */
            goto fail;
        bt_redis_destroy(probe);
        if (node_find(c, a, true) < 0)
            goto oom;
    }
    if (c->nnodes == 0) {
        snprintf(errstr, errstr_size, "redis cluster: no node address in \"%s\"", seeds);
        goto fail;
    }
    free(list);
    return c;
oom:
    snprintf(errstr, errstr_size, "out of memory");
fail:
    free(list);
    bt_rcluster_destroy(c);
    return NULL;
}

void bt_rcluster_destroy(struct bt_rcluster *c)
{
    if (!c)
        return;
    queue_drop(c);
    for (size_t i = 0; i < c->nnodes; i++) {
        bt_redis_destroy(c->nodes[i].r);
        free(c->nodes[i].addr);
    }
    free(c->nodes);
    free(c->q);
    free(c->args);
    free(c->user);
    free(c->password);
    free(c);
}
