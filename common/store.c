/* Instances in Redis: batch load and batch commit. A commit is one EVALSHA of
 * commit.lua per instance, all of a batch pipelined in one round trip; the
 * script's version guard makes a commit from a worker that lost the instance
 * (a rebalance) fail instead of overwriting newer state. */
#define _GNU_SOURCE /* strndup */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "jsonw.h"
#include "log.h"
#include "lua_scripts.h"
#include "argbuf.h"
#include "store_int.h"

static int copy_retention(struct bt_store *store, const struct bt_config *cfg)
{
    size_t n = cfg->n_retention_types;

    store->retention_ms = cfg->retention_ms;
    if (n && !(store->retention_types = calloc(n, sizeof(*store->retention_types))))
        return BT_ENOMEM;
    for (; store->n_retention_types < n; store->n_retention_types++) {
        char *rule = strdup(cfg->retention_types[store->n_retention_types]);
        if (!rule)
            return BT_ENOMEM;
        store->retention_types[store->n_retention_types] = rule;
    }
    return 0;
}

struct bt_redis *bt_store_redis_new(const struct bt_config *cfg, char *errstr,
                                    size_t errstr_size)
{
    struct bt_redis *r;

    if (!cfg->redis_cluster) {
        r = bt_redis_new(cfg->redis, cfg->redis_user, cfg->redis_password, errstr,
                         errstr_size);
    } else if ((r = bt_redis_new_cluster(cfg->redis, cfg->redis_user, cfg->redis_password,
                                         errstr, errstr_size))) {
        bt_redis_set_wait(r, cfg->redis_wait_ms);
    }
    if (r && cfg->redis_timeout_ms > 0)
        bt_redis_set_timeout(r, cfg->redis_timeout_ms);
    return r;
}

struct bt_store *bt_store_new(const struct bt_config *cfg, char *errstr,
                              size_t errstr_size)
{
    struct bt_store *store = calloc(1, sizeof(*store));

    if (!store)
        return NULL;
    store->kp = strdup(cfg->key_prefix);
    store->shards = cfg->redis_shards;
    store->kp0 = malloc(BT_STORE_KP_SIZE);
    if (store->kp0 && store->kp) {
        const char *kp0 = bt_store_shard_kp(store, 0, store->kp0, BT_STORE_KP_SIZE);

        if (kp0 != store->kp0) /* no shards: <kp> itself */
            snprintf(store->kp0, BT_STORE_KP_SIZE, "%s", kp0);
    }
    store->r = bt_store_redis_new(cfg, errstr, errstr_size);
    if (!store->r || !store->kp || !store->kp0 || copy_retention(store, cfg)) {
        bt_store_destroy(store);
        return NULL;
    }
    return store;
}

void bt_store_set_holder(struct bt_store *store, const char *holder)
{
    free(store->holder);
    store->holder = holder ? strdup(holder) : NULL;
}

void bt_store_destroy(struct bt_store *store)
{
    if (!store)
        return;
    free(store->holder);
    for (size_t i = 0; i < store->n_retention_types; i++)
        free(store->retention_types[i]);
    free(store->retention_types);
    while (store->forgets) {
        struct forget *f = store->forgets;
        store->forgets = f->next;
        free(f);
    }
    bt_redis_destroy(store->r);
    free(store->kp);
    free(store->kp0);
    free(store);
}

struct bt_redis *bt_store_redis(struct bt_store *store)
{
    return store->r;
}

const char *bt_store_prefix(const struct bt_store *store)
{
    return store->kp;
}

bool bt_store_sharded(const struct bt_store *store)
{
    return store->shards > 0;
}

const char *bt_store_schedule_prefix(const struct bt_store *store)
{
    return store->kp0;
}

int bt_store_shards(const struct bt_store *store)
{
    return store->shards > 0 ? store->shards : 1;
}

int bt_store_shard_of(const struct bt_store *store, const char *id)
{
    return store->shards > 0
               ? (int)(bt_redis_slot(id, strlen(id)) % (unsigned)store->shards)
               : 0;
}

const char *bt_store_shard_kp(const struct bt_store *store, int shard, char *buf,
                              size_t n)
{
    if (store->shards == 0)
        return store->kp;
    snprintf(buf, n, "%s:{%d}", store->kp, shard);
    return buf;
}

const char *bt_store_kp_of(const struct bt_store *store, const char *id, char *buf,
                           size_t n)
{
    return bt_store_shard_kp(store, bt_store_shard_of(store, id), buf, n);
}

char *bt_store_key(const struct bt_store *store, const char *id, const char *suffix,
                   char *buf, size_t n)
{
    char kpbuf[BT_STORE_KP_SIZE];
    const char *kp = bt_store_kp_of(store, id, kpbuf, sizeof(kpbuf));
    size_t kl = strlen(kp), il = strlen(id), sl = strlen(suffix);

    /* on every step's path: no printf unless the key does not fit */
    if (kl + il + sl + 3 >= n) {
        snprintf(buf, n, "%s:{%s}%s", kp, id, suffix);
        return buf;
    }
    memcpy(buf, kp, kl);
    memcpy(buf + kl, ":{", 2);
    memcpy(buf + kl + 2, id, il);
    buf[kl + 2 + il] = '}';
    memcpy(buf + kl + 3 + il, suffix, sl + 1);
    return buf;
}

/* ---- replies owed ---- */

/* Appends the forgets not in the pipeline yet (all of them after a broken
 * connection), ahead of whatever is appended next. */
int bt__store_append_forgets(struct bt_store *store)
{
    struct forget *f = store->forgets;

    for (size_t i = 0; f && i < store->owed; i++)
        f = f->next;
    for (; f; f = f->next) {
        if (bt_redis_append_eval(store->r, bt_lua_ack, f->nkeys, f->argc, f->argv,
                                 f->lens))
            return BT_ENOMEM;
        store->owed++;
    }
    return 0;
}

/* Reads the replies owed to the forgets in the pipeline (they come first)
 * and drops the answered ones; the others stay for the next write. */
int bt__store_read_owed(struct bt_store *store)
{
    struct forget **link = &store->forgets;
    int ret = 0;

    for (; store->owed > 0; store->owed--) {
        redisReply *reply = NULL;
        struct forget *f = *link;
        if (bt_redis_reply(store->r, &reply)) {
            ret = BT_EAGAIN;
        } else if (reply->type == REDIS_REPLY_ERROR) { /* LOADING, OOM: later */
            bt_log(BT_LOG_WARN, "cannot clear the outbox yet: %s", reply->str);
            ret = BT_EAGAIN;
        } else {
            *link = f->next;
            store->n_forgets--;
            free(f);
            f = NULL;
        }
        if (f)
            link = &f->next;
        freeReplyObject(reply);
    }
    return ret;
}

int bt_store_settle(struct bt_store *store)
{
    int ret = bt__store_append_forgets(store);

    return ret ? ret : bt__store_read_owed(store);
}

/* ---- load ---- */

static json_t *parse_json(const redisReply *v)
{
    return json_loadb(v->str, v->len, JSON_DECODE_ANY, NULL);
}

static int load_meta(struct bt_instance *inst, const redisReply *reply)
{
    for (size_t i = 0; i + 1 < reply->elements; i += 2) {
        const char *f = reply->element[i]->str;
        const redisReply *v = reply->element[i + 1];
        if (!strcmp(f, "type")) {
            inst->type = strndup(v->str, v->len);
        } else if (!strcmp(f, "status")) {
            int s = bt_status_parse(v->str);
            if (s < 0)
                return BT_EINVALMSG;
            inst->status = (enum bt_status)s;
        } else if (!strcmp(f, "ver")) {
            inst->ver = strtoll(v->str, NULL, 10);
        } else if (!strcmp(f, "created")) {
            inst->created = strtoll(v->str, NULL, 10);
        } else if (!strcmp(f, "queue")) {
            inst->queue = strndup(v->str, v->len);
        } else if (!strcmp(f, "parent")) {
            inst->parent_id = strndup(v->str, v->len);
        } else if (!strcmp(f, "pqueue")) {
            inst->parent_queue = strndup(v->str, v->len);
        } else if (!strcmp(f, "run")) {
            inst->run = (int)strtol(v->str, NULL, 10);
        } else if (!strcmp(f, "base")) {
            inst->base = strtoll(v->str, NULL, 10);
        } else if (!strcmp(f, "hlen")) {
            inst->hlen = strtoll(v->str, NULL, 10);
        } else if (!strcmp(f, "pseq")) {
            inst->parent_seq = strtoll(v->str, NULL, 10);
        } else if (!strcmp(f, "cancel")) {
            inst->cancel_requested = v->str[0] == '1';
        } else if (!strcmp(f, "paused")) {
            inst->paused_at = strtoll(v->str, NULL, 10);
        } else if (!strcmp(f, "attrs") && v->len) {
            inst->attrs = parse_json(v);
        } else if (!strcmp(f, "input")) {
            inst->input = parse_json(v);
        } else if (!strcmp(f, "result") && v->len) {
            inst->result = parse_json(v);
        } else if (!strcmp(f, "error") && v->len) {
            inst->error = parse_json(v);
        } else if (!strcmp(f, "kpos")) {
            inst->kpos = strndup(v->str, v->len);
            inst->kpos_stored = true;
        } else if (!strcmp(f, "koff")) {
            inst->koff = strtoll(v->str, NULL, 10);
            inst->koff_stored = true;
        } else if (!strcmp(f, "kts")) {
            inst->kts = strtoll(v->str, NULL, 10);
        } else if (!strcmp(f, "signals") && v->len) {
            inst->signals = parse_json(v);
        }
    }
    if (inst->ver > 0 && (!inst->type || !inst->input || inst->run < 1 || inst->base < 0))
        return BT_EINVALMSG;
    return 0;
}

static int load_journal(struct bt_instance *inst, const redisReply *reply)
{
    size_t n = reply->elements / 2;

    if (n == 0)
        return 0;
    inst->entries = calloc(n, sizeof(*inst->entries));
    if (!inst->entries)
        return BT_ENOMEM;
    inst->cap_entries = n;
    for (size_t i = 0; i < reply->elements; i += 2) {
        char *end;
        long long seq = strtoll(reply->element[i]->str, &end, 10) - inst->base;
        const redisReply *v = reply->element[i + 1];
        if (*end || seq < 0 || (size_t)seq >= n)
            return BT_EINVALMSG; /* seqs must be exactly base..base+n-1 */
        if (inst->entries[seq].name ||
            bt_entry_decode(&inst->entries[seq], v->str, v->len))
            return BT_EINVALMSG;
    }
    inst->n_entries = inst->n_committed = n;
    for (size_t i = 0; i < n; i++)
        if (!inst->entries[i].name)
            return BT_EINVALMSG;
    return 0;
}

/* Unsent commands: "<topic>\n<key>\n<payload>" under their outbox field;
 * but eager tasks held by another worker: the sweep's business. Those held
 * by this store's holder come as local commands. */
static int load_outbox(const struct bt_store *store, struct bt_instance *inst,
                       const redisReply *reply)
{
    for (size_t i = 0; i + 1 < reply->elements; i += 2) {
        const redisReply *v = reply->element[i + 1];
        const char *holder = bt_command_holder(reply->element[i]->str);
        if (holder && (!store->holder || strcmp(holder, store->holder)))
            continue;
        const char *nl1 = memchr(v->str, '\n', v->len), *nl2;
        if (!nl1 || !(nl2 = memchr(nl1 + 1, '\n', v->len - (size_t)(nl1 + 1 - v->str))))
            return BT_EINVALMSG;
        size_t plen = v->len - (size_t)(nl2 + 1 - v->str);
        char *payload = malloc(plen + 1);
        if (payload) {
            memcpy(payload, nl2 + 1, plen);
            payload[plen] = '\0';
        }
        if (bt_delta_command(&inst->delta, strdup(reply->element[i]->str),
                             strndup(v->str, (size_t)(nl1 - v->str)),
                             strndup(nl1 + 1, (size_t)(nl2 - nl1 - 1)), payload, plen))
            return BT_ENOMEM;
        inst->delta.cmds[inst->delta.n_cmds - 1].local = holder != NULL;
    }
    return 0;
}

/* The crash record of its workflow code (workers/crashes.c): n, last. */
static void load_crashes(struct bt_instance *inst, const redisReply *reply)
{
    for (size_t i = 0; i + 1 < reply->elements; i += 2) {
        const char *f = reply->element[i]->str, *v = reply->element[i + 1]->str;
        if (!strcmp(f, "n"))
            inst->crashes = atoi(v);
        else if (!strcmp(f, "last") && !inst->crash_last)
            inst->crash_last = strdup(v);
    }
}

static void mark_corrupt(struct bt_instance *inst, const char *what)
{
    bt_log(BT_LOG_ERROR, "corrupt state in redis: %s workflow=%s", what, inst->id);
    /* keep it out of the way: a blocked instance is never advanced */
    inst->status = BT_STATUS_BLOCKED;
    json_decref(inst->error);
    inst->error = json_pack("{s:s, s:s}", "type", "CorruptState", "message", what);
}

int bt_store_load(struct bt_store *store, struct bt_instance **insts, size_t n)
{
    /* the instance's keys, and the record of crashes in its code */
    static const char *const suffixes[] = {"", ":journal", ":outbox", ":crashes"};
    int ret = bt__store_append_forgets(store);

    if (ret)
        return ret;
    for (size_t i = 0; i < n; i++) {
        for (int s = 0; s < 4; s++) {
            char key[600];
            const char *argv[] = {"HGETALL", key};
            bt_store_key(store, insts[i]->id, suffixes[s], key, sizeof(key));
            if (bt_redis_append_argv(store->r, 2, argv, NULL))
                return BT_ENOMEM;
        }
    }
    bt__store_read_owed(store); /* they went out in the same write, ahead of ours */
    for (size_t i = 0; i < n; i++) {
        redisReply *replies[4] = {NULL, NULL, NULL, NULL};
        int bad = 0;
        for (int s = 0; s < 4; s++)
            if (bt_redis_reply(store->r, &replies[s]))
                ret = BT_EAGAIN;
        if (ret != BT_EAGAIN) {
            for (int s = 0; s < 4; s++)
                if (replies[s]->type != REDIS_REPLY_ARRAY)
                    bad = 1;
            if (!bad)
                load_crashes(insts[i], replies[3]);
            if (!bad && load_meta(insts[i], replies[0]))
                mark_corrupt(insts[i], "meta fields");
            else if (!bad && load_journal(insts[i], replies[1]))
                mark_corrupt(insts[i], "journal entry");
            else if (!bad && load_outbox(store, insts[i], replies[2]))
                mark_corrupt(insts[i], "outbox entry");
            else if (bad)
                ret = BT_EAGAIN;
        }
        for (int s = 0; s < 4; s++)
            freeReplyObject(replies[s]);
    }
    return ret;
}

/* ---- forgetting delivered commands ---- */

/* Bounds of one ack.lua call: Redis runs nothing else while a script runs,
 * and Lua's unpack() takes at most ~8000 values. An instance with more
 * fields than MAX_FIELDS goes in several pieces (its key repeats). */
#define FORGET_MAX_OUTBOXES 256
#define FORGET_MAX_FIELDS   1024

/* Keeps a copy of one ack.lua call's arguments in store->forgets, dropping
 * the oldest past MAX_FORGETS. */
static int keep_forget(struct bt_store *store, int nkeys, const struct bt_argbuf *a)
{
    size_t bytes = 0;
    struct forget *f, **tail;
    char *t;

    for (size_t i = 0; i < a->n; i++)
        bytes += a->lens[i];
    f = malloc(sizeof(*f) + a->n * (sizeof(*f->argv) + sizeof(*f->lens)) + bytes);
    if (!f)
        return BT_ENOMEM;
    f->next = NULL;
    f->nkeys = nkeys;
    f->argc = (int)a->n;
    f->lens = (size_t *)(void *)f->texts;
    f->argv = (const char **)(void *)(f->lens + a->n);
    t = (char *)(f->argv + a->n);
    for (size_t i = 0; i < a->n; i++) {
        memcpy(t, a->argv[i], a->lens[i]);
        f->argv[i] = t;
        f->lens[i] = a->lens[i];
        t += a->lens[i];
    }
    if (store->n_forgets == MAX_FORGETS && store->owed == 0) {
        struct forget *old = store->forgets;
        bt_log(BT_LOG_WARN, "too many outbox removals waiting for redis; dropping "
                            "one: its commands may be sent twice");
        store->forgets = old->next;
        store->n_forgets--;
        free(old);
    }
    for (tail = &store->forgets; *tail; tail = &(*tail)->next)
        ;
    *tail = f;
    store->n_forgets++;
    return bt__store_append_forgets(store);
}

/* One piece: fields [from, to) of done[i]. */
struct piece {
    size_t i, from, to;
};

static int forget_chunk(struct bt_store *store, const struct bt_delivered *done,
                        const struct piece *pieces, size_t n, struct bt_argbuf *a)
{
    char kpbuf[BT_STORE_KP_SIZE];

    bt_argbuf_reset(a);
    for (size_t p = 0; p < n; p++) {
        const char *id = done[pieces[p].i].id;

        bt_argbuf_key(a, bt_store_kp_of(store, id, kpbuf, sizeof(kpbuf)), id, ":outbox");
    }
    for (size_t p = 0; p < n; p++) {
        const struct bt_delivered *d = &done[pieces[p].i];
        bt_argbuf_int(a, (long long)(pieces[p].to - pieces[p].from));
        for (size_t c = pieces[p].from; c < pieces[p].to; c++)
            bt_argbuf_str(a, d->cmds[c].field);
    }
    bt_argbuf_resolve(a);
    return keep_forget(store, (int)n, a);
}

/* done[] in the order of their shards (one ack.lua call touches one shard's
 * slot): by shard, then as given. */
struct by_shard {
    int shard;
    size_t i;
};

static int cmp_shard(const void *a, const void *b)
{
    const struct by_shard *x = a, *y = b;

    if (x->shard != y->shard)
        return x->shard < y->shard ? -1 : 1;
    return x->i < y->i ? -1 : x->i > y->i;
}

int bt_store_forget(struct bt_store *store, const struct bt_delivered *done, size_t n)
{
    struct piece pieces[FORGET_MAX_OUTBOXES];
    struct bt_argbuf a = {0};
    struct by_shard *order = malloc((n ? n : 1) * sizeof(*order));
    size_t np = 0, fields = 0;
    int ret = order ? 0 : BT_ENOMEM;

    for (size_t k = 0; k < n && order; k++)
        order[k] = (struct by_shard){bt_store_shard_of(store, done[k].id), k};
    if (order && store->shards > 0)
        qsort(order, n, sizeof(*order), cmp_shard);
    for (size_t k = 0; k < n && ret == 0; k++) {
        size_t i = order[k].i, from = 0;

        if (np && order[k].shard != order[k - 1].shard) {
            ret = forget_chunk(store, done, pieces, np, &a);
            np = fields = 0;
        }
        do {
            size_t c = done[i].n - from;
            if (c > FORGET_MAX_FIELDS - fields)
                c = FORGET_MAX_FIELDS - fields;
            pieces[np++] = (struct piece){i, from, from + c};
            from += c;
            fields += c;
            if (np == FORGET_MAX_OUTBOXES || fields == FORGET_MAX_FIELDS) {
                ret = forget_chunk(store, done, pieces, np, &a);
                np = fields = 0;
            }
        } while (from < done[i].n && ret == 0);
    }
    if (np && ret == 0)
        ret = forget_chunk(store, done, pieces, np, &a);
    bt_argbuf_release(&a);
    free(order);
    return ret;
}

char *bt_alive_key(const char *prefix, const char *worker, char *buf, size_t n)
{
    snprintf(buf, n, "%s:alive:%s", prefix, worker);
    return buf;
}

char *bt_serving_key(const char *prefix, const char *queue, char *buf, size_t n)
{
    snprintf(buf, n, "%s:serving:%s", prefix, queue);
    return buf;
}

char *bt_types_key(const char *prefix, const char *queue, char *buf, size_t n)
{
    snprintf(buf, n, "%s:types:%s", prefix, queue);
    return buf;
}

int bt_store_take_resend(struct bt_store *store, const char *id, const char *holder,
                         int64_t ttl_ms)
{
    char key[600], ttl[24];
    redisReply *reply;
    int ret;

    bt_store_key(store, id, ":resend", key, sizeof(key));
    snprintf(ttl, sizeof(ttl), "%lld", (long long)ttl_ms);
    reply = bt_redis_argv(store->r, 6,
                          (const char *[]){"SET", key, holder, "NX", "PX", ttl}, NULL);
    if (!reply || reply->type == REDIS_REPLY_ERROR) {
        ret = BT_EAGAIN;
    } else if (reply->type == REDIS_REPLY_STATUS) {
        ret = 1;
    } else { /* it exists: ours already (a batch tried again)? */
        freeReplyObject(reply);
        reply = bt_redis_argv(store->r, 2, (const char *[]){"GET", key}, NULL);
        ret = !reply ? BT_EAGAIN
                     : reply->type == REDIS_REPLY_STRING && !strcmp(reply->str, holder);
    }
    freeReplyObject(reply);
    return ret;
}

void bt_store_give_resend(struct bt_store *store, const char *id)
{
    char key[600];

    bt_store_key(store, id, ":resend", key, sizeof(key));
    freeReplyObject(bt_redis_argv(store->r, 2, (const char *[]){"DEL", key}, NULL));
}
