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
#include "store.h"

/* An ack.lua call kept until Redis has answered it. After a broken
 * connection it is appended again ahead of the next load or commit: a removal
 * lost to a Redis restart would let the scheduler's sweep send a delivered
 * command again (a second result message). */
struct forget {
    struct forget *next;
    int nkeys, argc;
    const char **argv; /* into texts */
    size_t *lens;
    char texts[];
};

/* Forgets kept at most: more only while Redis stays away, and then the
 * workflow role stops landing batches long before (MAX_FLIGHTS). */
#define MAX_FORGETS 4096

struct bt_store {
    struct bt_redis *r;
    char *kp;               /* key prefix */
    struct forget *forgets; /* not answered yet, oldest first */
    size_t n_forgets;
    size_t owed;  /* the first `owed` forgets are in the pipeline, replies due */
    char *holder; /* its held outbox fields are loaded (bt_store_set_holder) */
    /* the retention settings, copied: when a finished run is deleted */
    int64_t retention_ms;
    char **retention_types;
    size_t n_retention_types;
};

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

struct bt_store *bt_store_new(const struct bt_config *cfg, char *errstr,
                              size_t errstr_size)
{
    struct bt_store *store = calloc(1, sizeof(*store));

    if (!store)
        return NULL;
    store->kp = strdup(cfg->key_prefix);
    store->r = bt_redis_new(cfg->redis, cfg->redis_user, cfg->redis_password, errstr,
                            errstr_size);
    if (!store->r || !store->kp || copy_retention(store, cfg)) {
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

char *bt_store_key(const struct bt_store *store, const char *id, const char *suffix,
                   char *buf, size_t n)
{
    size_t kp = strlen(store->kp), il = strlen(id), sl = strlen(suffix);

    /* on every step's path: no printf unless the key does not fit */
    if (kp + il + sl + 3 >= n) {
        snprintf(buf, n, "%s:{%s}%s", store->kp, id, suffix);
        return buf;
    }
    memcpy(buf, store->kp, kp);
    memcpy(buf + kp, ":{", 2);
    memcpy(buf + kp + 2, id, il);
    buf[kp + 2 + il] = '}';
    memcpy(buf + kp + 3 + il, suffix, sl + 1);
    return buf;
}

/* ---- replies owed ---- */

/* Appends the forgets not in the pipeline yet (all of them after a broken
 * connection), ahead of whatever is appended next. */
static int append_forgets(struct bt_store *store)
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
static int read_owed(struct bt_store *store)
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
    int ret = append_forgets(store);

    return ret ? ret : read_owed(store);
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
    static const char *const suffixes[] = {"", ":journal", ":outbox"};
    int ret = append_forgets(store);

    if (ret)
        return ret;
    for (size_t i = 0; i < n; i++) {
        for (int s = 0; s < 3; s++) {
            char key[600];
            const char *argv[] = {"HGETALL", key};
            bt_store_key(store, insts[i]->id, suffixes[s], key, sizeof(key));
            if (bt_redis_append_argv(store->r, 2, argv, NULL))
                return BT_ENOMEM;
        }
    }
    read_owed(store); /* they went out in the same write, ahead of ours */
    for (size_t i = 0; i < n; i++) {
        redisReply *replies[3] = {NULL, NULL, NULL};
        int bad = 0;
        for (int s = 0; s < 3; s++)
            if (bt_redis_reply(store->r, &replies[s]))
                ret = BT_EAGAIN;
        if (ret != BT_EAGAIN) {
            for (int s = 0; s < 3; s++)
                if (replies[s]->type != REDIS_REPLY_ARRAY)
                    bad = 1;
            if (!bad && load_meta(insts[i], replies[0]))
                mark_corrupt(insts[i], "meta fields");
            else if (!bad && load_journal(insts[i], replies[1]))
                mark_corrupt(insts[i], "journal entry");
            else if (!bad && load_outbox(store, insts[i], replies[2]))
                mark_corrupt(insts[i], "outbox entry");
            else if (bad)
                ret = BT_EAGAIN;
        }
        for (int s = 0; s < 3; s++)
            freeReplyObject(replies[s]);
    }
    return ret;
}

/* ---- commit ---- */

/* The argument vector of one commit.lua call. The texts made here (numbers,
 * keys, encoded values) are written one after the other into one buffer that
 * is reused from call to call; an argument records its offset there, as the
 * buffer may move while it grows, and argv is resolved at the end. Borrowed
 * texts are pointed at directly. */
#define BORROWED SIZE_MAX

struct args {
    const char **argv;
    size_t *lens, *offs; /* offs[i]: in buf, or BORROWED */
    size_t n, cap;
    char *buf;
    size_t used, size;
    size_t start; /* of the argument being built */
};

static void slot(struct args *a, const char *s, size_t off, size_t len)
{
    if (a->n == a->cap) {
        a->cap = a->cap ? a->cap * 2 : 64;
        a->argv = realloc(a->argv, a->cap * sizeof(*a->argv));
        a->lens = realloc(a->lens, a->cap * sizeof(*a->lens));
        a->offs = realloc(a->offs, a->cap * sizeof(*a->offs));
        BT_ASSERT(a->argv && a->lens && a->offs);
    }
    a->argv[a->n] = s;
    a->offs[a->n] = off;
    a->lens[a->n++] = len;
}

static void reserve(struct args *a, size_t len)
{
    if (a->used + len <= a->size)
        return;
    a->size = a->size ? a->size * 2 : 4096;
    if (a->size < a->used + len)
        a->size = a->used + len;
    a->buf = realloc(a->buf, a->size);
    BT_ASSERT(a->buf);
}

/* An argument in pieces: arg_begin, arg_put..., arg_end. */
static void arg_begin(struct args *a)
{
    a->start = a->used;
}

static void arg_put(struct args *a, const char *s, size_t len)
{
    reserve(a, len);
    memcpy(a->buf + a->used, s, len);
    a->used += len;
}

static void arg_puts(struct args *a, const char *s)
{
    arg_put(a, s, strlen(s));
}

static void arg_put_int(struct args *a, long long v)
{
    char num[BT_JW_INT_SIZE];

    arg_put(a, num, bt_jw_itoa(num, v));
}

static void arg_end(struct args *a)
{
    slot(a, NULL, a->start, a->used - a->start);
}

static void arg_str(struct args *a, const char *s)
{
    slot(a, s, BORROWED, strlen(s));
}

static void arg_int(struct args *a, long long v)
{
    arg_begin(a);
    arg_put_int(a, v);
    arg_end(a);
}

/* Copies s, then frees it. */
static void arg_own(struct args *a, char *s)
{
    BT_ASSERT(s);
    arg_begin(a);
    arg_puts(a, s);
    arg_end(a);
    free(s);
}

/* Replaces argument i (a count not known when it was appended). */
static void arg_patch_int(struct args *a, size_t i, long long v)
{
    size_t n = a->n;

    arg_int(a, v);
    a->n = n;
    a->argv[i] = NULL;
    a->offs[i] = a->offs[n];
    a->lens[i] = a->lens[n];
}

static void arg_json(struct args *a, const json_t *v)
{
    /* written straight into the arguments' buffer, lent to a writer */
    struct bt_jw w = {a->buf, a->used, a->size, false};

    arg_begin(a);
    if (v) {
        bt_jw_value(&w, v);
        BT_ASSERT(!w.failed); /* as reserve() does */
        a->buf = w.buf;
        a->used = w.len;
        a->size = w.cap;
    }
    arg_end(a);
}

/* "<kp>:{<id>}<suffix>" */
static void arg_key(struct args *a, const char *kp, const char *id, const char *suffix)
{
    arg_begin(a);
    arg_puts(a, kp);
    arg_put(a, ":{", 2);
    arg_puts(a, id);
    arg_put(a, "}", 1);
    arg_puts(a, suffix);
    arg_end(a);
}

/* "<kp>:<name>" */
static void arg_name(struct args *a, const char *kp, const char *name)
{
    arg_begin(a);
    arg_puts(a, kp);
    arg_put(a, ":", 1);
    arg_puts(a, name);
    arg_end(a);
}

/* Points argv at the texts in the buffer, now that it no longer moves. */
static void args_resolve(struct args *a)
{
    for (size_t i = 0; i < a->n; i++)
        if (a->offs[i] != BORROWED)
            a->argv[i] = a->buf + a->offs[i];
}

static void args_reset(struct args *a)
{
    a->n = a->used = 0;
}

static void args_free(struct args *a)
{
    free(a->argv);
    free(a->lens);
    free(a->offs);
    free(a->buf);
}

/* The index key of status s. */
static void arg_index(struct args *a, const char *kp, enum bt_status s)
{
    arg_begin(a);
    arg_puts(a, kp);
    arg_puts(a, ":idx:");
    arg_puts(a, bt_status_name(s));
    arg_end(a);
}

/* The section of runs that this commit ends, in the shape ZADD takes
 * (retention due, "<run>|<id>"): the one continue-as-new ends, and the last
 * one when the instance finishes (both in one decision when the new run ends
 * at once). */
static void arg_ended_runs(const struct bt_store *store, const struct bt_instance *inst,
                           int64_t now_ms, struct args *a)
{
    const struct bt_delta *d = &inst->delta;
    bool finished = inst->status != d->old_status && bt_status_final(inst->status);
    int64_t due =
        now_ms + bt_config_retention(store->retention_ms, store->retention_types,
                                     store->n_retention_types, inst->type);

    arg_int(a, (long long)d->reset + finished);
    for (int run = d->reset ? inst->run - 1 : inst->run; run <= inst->run; run++) {
        if (run == inst->run && !finished)
            break;
        arg_int(a, due);
        arg_begin(a);
        arg_put_int(a, run);
        arg_put(a, "|", 1);
        arg_puts(a, inst->id);
        arg_end(a);
    }
}

/* Appends the keys and arguments of inst's commit.lua call; returns how many
 * of them are keys. */
static int build_commit(struct bt_store *store, struct bt_instance *inst, int64_t now_ms,
                        struct args *a)
{
    static const char *const key_suffixes[] = {"", ":journal", ":history", ":outbox"};
    struct bt_delta *d = &inst->delta;
    bool moved = inst->status != d->old_status;
    size_t count_at, n, nkeys;

    for (int k = 0; k < 4; k++)
        arg_key(a, store->kp, inst->id, key_suffixes[k]);
    arg_name(a, store->kp, "outbox");
    arg_name(a, store->kp, "timers"); /* commit.lua names the leased ones and idx:all */
    if (moved) {
        arg_index(a, store->kp, inst->status);
        if (inst->ver > 0)
            arg_index(a, store->kp, d->old_status);
    }
    if (d->reset) {
        /* the run that ends on continue-as-new is the one before inst->run */
        arg_begin(a);
        arg_puts(a, store->kp);
        arg_put(a, ":{", 2);
        arg_puts(a, inst->id);
        arg_puts(a, "}:history:");
        arg_put_int(a, inst->run - 1);
        arg_end(a);
    }
    nkeys = a->n;

    arg_int(a, inst->ver);
    arg_str(a, inst->id);
    arg_int(a, now_ms);
    arg_int(a, d->reset ? (long long)d->reset_history : -1);
    arg_int(a, (long long)inst->n_entries);
    arg_int(a, (long long)bt_instance_history_after(inst));
    /* the event position, only what Redis does not hold yet */
    arg_str(a, inst->kpos && !inst->kpos_stored ? inst->kpos : "");
    if (inst->kpos && (!inst->koff_stored || !inst->kpos_stored)) {
        arg_int(a, inst->koff);
        arg_int(a, inst->kts);
    } else {
        arg_str(a, "");
        arg_str(a, "");
    }

    /* other meta pairs: a placeholder count, patched once they are known */
    count_at = a->n;
    arg_str(a, "0");
    n = 0;
    /* The status only when it may differ from the stored one. A blocked
     * instance may have been blocked here by a load that found corrupt state
     * (the stored status is still the old one): it is written as before. */
    if (moved || inst->ver == 0 || d->meta_dirty || inst->status == BT_STATUS_BLOCKED) {
        arg_str(a, "status");
        arg_str(a, bt_status_name(inst->status));
        n++;
    }
    if (inst->ver == 0) {
        arg_str(a, "type");
        arg_str(a, inst->type);
        arg_str(a, "input");
        arg_json(a, inst->input);
        arg_str(a, "created");
        arg_int(a, inst->created);
        n += 3;
        if (inst->queue) {
            arg_str(a, "queue");
            arg_str(a, inst->queue);
            n++;
        }
        if (inst->parent_id) {
            arg_str(a, "parent");
            arg_str(a, inst->parent_id);
            arg_str(a, "pseq");
            arg_int(a, inst->parent_seq);
            n += 2;
        }
        if (inst->parent_queue) {
            arg_str(a, "pqueue");
            arg_str(a, inst->parent_queue);
            n++;
        }
    }
    if (inst->ver == 0 || d->reset) {
        arg_str(a, "run");
        arg_int(a, inst->run);
        arg_str(a, "base");
        arg_int(a, inst->base);
        n += 2;
        if (inst->ver > 0) { /* the type too: a reused id's new run may change it */
            arg_str(a, "input");
            arg_json(a, inst->input);
            arg_str(a, "type");
            arg_str(a, inst->type);
            n += 2;
        }
    }
    if (d->meta_dirty || inst->ver == 0) {
        arg_str(a, "result");
        arg_json(a, inst->result);
        arg_str(a, "error");
        arg_json(a, inst->error);
        arg_str(a, "signals");
        arg_json(a, inst->signals);
        arg_str(a, "cancel");
        arg_str(a, inst->cancel_requested ? "1" : "0");
        n += 4;
    }
    if (d->pause_changed) { /* only then: most instances are never paused */
        arg_str(a, "paused");
        arg_int(a, inst->paused_at);
        n++;
    }
    if (d->attrs_changed) {
        arg_str(a, "attrs");
        arg_json(a, inst->attrs);
        n++;
    }
    arg_patch_int(a, count_at, (long long)n);

    n = 0;
    for (size_t i = 0; i < inst->n_entries; i++)
        n += inst->entries[i].dirty;
    arg_int(a, (long long)n);
    for (size_t i = 0; i < inst->n_entries; i++) {
        if (!inst->entries[i].dirty)
            continue;
        arg_int(a, inst->base + (long long)i);
        arg_own(a, bt_entry_encode(&inst->entries[i]));
    }

    /* the records only: commit.lua adds the field names XADD takes */
    arg_int(a, (long long)d->n_history);
    for (size_t i = 0; i < d->n_history; i++)
        arg_str(a, d->history[i]);

    /* eager tasks too, under their holder's field: recovered from there
     * when their worker dies */
    arg_int(a, (long long)d->n_cmds);
    for (size_t i = 0; i < d->n_cmds; i++) {
        const struct bt_command *c = &d->cmds[i];
        arg_str(a, c->field);
        arg_begin(a);
        arg_puts(a, c->topic);
        arg_put(a, "\n", 1);
        arg_puts(a, c->key);
        arg_put(a, "\n", 1);
        arg_put(a, c->payload, c->len);
        arg_end(a);
    }

    /* in the shape ZADD takes: score, member */
    arg_int(a, (long long)d->n_timers_add);
    for (size_t i = 0; i < d->n_timers_add; i++) {
        arg_int(a, d->timers_add[i].due);
        arg_str(a, d->timers_add[i].member);
    }
    arg_int(a, (long long)d->n_timers_del);
    for (size_t i = 0; i < d->n_timers_del; i++)
        arg_str(a, d->timers_del[i].member);
    arg_ended_runs(store, inst, now_ms, a);
    return (int)nkeys;
}

int bt_store_commit_send(struct bt_store *store, struct bt_instance **insts, size_t n,
                         int64_t now_ms, bool *sent)
{
    struct args a = {0};
    int ret = append_forgets(store);
    int nkeys;

    for (size_t i = 0; i < n; i++) {
        if (ret || !(sent[i] = bt_instance_dirty(insts[i])))
            continue;
        args_reset(&a);
        nkeys = build_commit(store, insts[i], now_ms, &a);
        args_resolve(&a);
        if (bt_redis_append_eval(store->r, bt_lua_commit, nkeys, (int)a.n, a.argv,
                                 a.lens)) {
            sent[i] = false;
            ret = BT_ENOMEM;
            break;
        }
    }
    args_free(&a);
    if (bt_redis_flush(store->r))
        ret = BT_EAGAIN; /* the replies say so too */
    return ret;
}

int bt_store_commit_recv(struct bt_store *store, struct bt_instance **insts, size_t n,
                         const bool *sent, int *results)
{
    int ret = 0;

    read_owed(store); /* they went out ahead of the commits */
    for (size_t i = 0; i < n; i++) {
        redisReply *reply = NULL;
        results[i] = 0;
        if (!sent[i])
            continue;
        if (bt_redis_reply(store->r, &reply)) {
            ret = BT_EAGAIN;
            continue;
        }
        if (reply->type == REDIS_REPLY_ARRAY && reply->elements == 2 &&
            reply->element[0]->type == REDIS_REPLY_INTEGER) {
            if (reply->element[0]->integer == 0)
                bt_instance_committed(insts[i], reply->element[1]->integer);
            else
                results[i] = BT_ECONFLICT;
        } else {
            bt_log(BT_LOG_ERROR, "commit refused by redis: %s workflow=%s",
                   reply->type == REDIS_REPLY_ERROR ? reply->str : "unexpected reply",
                   insts[i]->id);
            ret = BT_EAGAIN;
        }
        freeReplyObject(reply);
    }
    return ret;
}

int bt_store_commit(struct bt_store *store, struct bt_instance **insts, size_t n,
                    int64_t now_ms, int *results)
{
    bool *sent = calloc(n ? n : 1, sizeof(*sent));
    int ret, rc;

    if (!sent)
        return BT_ENOMEM;
    ret = bt_store_commit_send(store, insts, n, now_ms, sent);
    /* what was sent is read, whatever happened to the rest */
    rc = bt_store_commit_recv(store, insts, n, sent, results);
    free(sent);
    return ret ? ret : rc;
}

/* ---- forgetting delivered commands ---- */

/* Bounds of one ack.lua call: Redis runs nothing else while a script runs,
 * and Lua's unpack() takes at most ~8000 values. An instance with more
 * fields than MAX_FIELDS goes in several pieces (its key repeats). */
#define FORGET_MAX_OUTBOXES 256
#define FORGET_MAX_FIELDS   1024

/* Keeps a copy of one ack.lua call's arguments in store->forgets, dropping
 * the oldest past MAX_FORGETS. */
static int keep_forget(struct bt_store *store, int nkeys, const struct args *a)
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
    return append_forgets(store);
}

/* One piece: fields [from, to) of done[i]. */
struct piece {
    size_t i, from, to;
};

static int forget_chunk(struct bt_store *store, const struct bt_delivered *done,
                        const struct piece *pieces, size_t n, struct args *a)
{
    args_reset(a);
    for (size_t p = 0; p < n; p++)
        arg_key(a, store->kp, done[pieces[p].i].id, ":outbox");
    for (size_t p = 0; p < n; p++) {
        const struct bt_delivered *d = &done[pieces[p].i];
        arg_int(a, (long long)(pieces[p].to - pieces[p].from));
        for (size_t c = pieces[p].from; c < pieces[p].to; c++)
            arg_str(a, d->cmds[c].field);
    }
    args_resolve(a);
    return keep_forget(store, (int)n, a);
}

int bt_store_forget(struct bt_store *store, const struct bt_delivered *done, size_t n)
{
    struct piece pieces[FORGET_MAX_OUTBOXES];
    struct args a = {0};
    size_t np = 0, fields = 0;
    int ret = 0;

    for (size_t i = 0; i < n && ret == 0; i++) {
        size_t from = 0;
        do {
            size_t k = done[i].n - from;
            if (k > FORGET_MAX_FIELDS - fields)
                k = FORGET_MAX_FIELDS - fields;
            pieces[np++] = (struct piece){i, from, from + k};
            from += k;
            fields += k;
            if (np == FORGET_MAX_OUTBOXES || fields == FORGET_MAX_FIELDS) {
                ret = forget_chunk(store, done, pieces, np, &a);
                np = fields = 0;
            }
        } while (from < done[i].n && ret == 0);
    }
    if (np && ret == 0)
        ret = forget_chunk(store, done, pieces, np, &a);
    args_free(&a);
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
