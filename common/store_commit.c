/* The commit of decisions (store.h): the arguments of one commit.lua call per
 * instance, laid out as commit_proto.h declares them, appended to the
 * pipeline for a whole batch; and the script with its preamble of the same
 * names (bt_commit_script). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "argbuf.h"
#include "commit_proto.h"
#include "err.h"
#include "history.h"
#include "log.h"
#include "lua_scripts.h"
#include "store_int.h"

const int bt_commit_section_width[BT_CS__COUNT] = {
#define X(name, width) width,
    BT_COMMIT_SECTIONS(X)
#undef X
};

static char *commit_script;
static pthread_once_t script_once = PTHREAD_ONCE_INIT;

static void put_names(FILE *f, const char *prefix, const char *const *names, int n)
{
    for (int i = 0; i < n; i++)
        fprintf(f, "local %s%s = %d\n", prefix, names[i], i + 1);
}

static void make_script(void)
{
    static const char *const keys[] = {
#define X(name) #name,
        BT_COMMIT_KEYS(X)
#undef X
    };
    static const char *const args[] = {
#define X(name) #name,
        BT_COMMIT_ARGS(X)
#undef X
    };
    static const char *const sections[] = {
#define X(name, width) #name,
        BT_COMMIT_SECTIONS(X)
#undef X
    };
    size_t size = 0;
    FILE *f = open_memstream(&commit_script, &size);

    if (!f)
        return;
    /* the script's own lines follow: its errors' line numbers are off by the
     * preamble's */
    put_names(f, "K_", keys, BT_CK__FIXED);
    put_names(f, "A_", args, BT_CA__FIXED);
    put_names(f, "S_", sections, BT_CS__COUNT);
    fprintf(f, "local A__SECTIONS = %d\nlocal WIDTH = {", BT_CA__FIXED + 1);
    for (int i = 0; i < BT_CS__COUNT; i++)
        fprintf(f, "%s%d", i ? ", " : "", bt_commit_section_width[i]);
    fprintf(f, "}\n%s", bt_lua_commit);
    if (fclose(f)) {
        free(commit_script);
        commit_script = NULL;
    }
}

const char *bt_commit_script(void)
{
    pthread_once(&script_once, make_script);
    return commit_script;
}

/* The index key of status s. */
static void arg_index(struct bt_argbuf *a, const char *kp, enum bt_status s)
{
    bt_argbuf_begin(a);
    bt_argbuf_puts(a, kp);
    bt_argbuf_puts(a, ":idx:");
    bt_argbuf_puts(a, bt_status_name(s));
    bt_argbuf_end(a);
}

/* The section of runs that this commit ends, in the shape ZADD takes
 * (retention due, "<run>|<id>"): the one continue-as-new ends, and the last
 * one when the instance finishes (both in one decision when the new run ends
 * at once). */
static void arg_ended_runs(const struct bt_store *store, const struct bt_instance *inst,
                           int64_t now_ms, struct bt_argbuf *a)
{
    const struct bt_delta *d = &inst->delta;
    bool finished = inst->status != d->old_status && bt_status_final(inst->status);
    int64_t due =
        now_ms + bt_config_retention(store->retention_ms, store->retention_types,
                                     store->n_retention_types, inst->type);

    bt_argbuf_int(a, (long long)d->reset + finished);
    for (int run = d->reset ? inst->run - 1 : inst->run; run <= inst->run; run++) {
        if (run == inst->run && !finished)
            break;
        bt_argbuf_int(a, due);
        bt_argbuf_begin(a);
        bt_argbuf_put_int(a, run);
        bt_argbuf_put(a, "|", 1);
        bt_argbuf_puts(a, inst->id);
        bt_argbuf_end(a);
    }
}

/* The fixed keys, each where commit_proto.h puts it, then the optional ones;
 * returns how many keys. */
static int build_keys(const struct bt_store *store, const struct bt_instance *inst,
                      struct bt_argbuf *a)
{
    const struct bt_delta *d = &inst->delta;
    char kpbuf[BT_STORE_KP_SIZE];
    const char *kp = bt_store_kp_of(store, inst->id, kpbuf, sizeof(kpbuf));

    for (int k = 0; k < BT_CK__FIXED; k++) {
        switch ((enum bt_commit_key)k) {
        case BT_CK_META:
            bt_argbuf_key(a, kp, inst->id, "");
            break;
        case BT_CK_JOURNAL:
            bt_argbuf_key(a, kp, inst->id, ":journal");
            break;
        case BT_CK_HISTORY:
            bt_argbuf_key(a, kp, inst->id, ":h");
            break;
        case BT_CK_OUTBOX:
            bt_argbuf_key(a, kp, inst->id, ":outbox");
            break;
        case BT_CK_OUTBOX_INDEX:
            bt_argbuf_name(a, kp, "outbox");
            break;
        case BT_CK_TIMERS:
            bt_argbuf_name(a, kp, "timers");
            break;
        case BT_CK__FIXED:
            break;
        }
    }
    if (inst->status != d->old_status) {
        arg_index(a, kp, inst->status);
        if (inst->ver > 0)
            arg_index(a, kp, d->old_status);
    }
    if (d->reset) {
        /* the run that ends on continue-as-new is the one before inst->run */
        bt_argbuf_begin(a);
        bt_argbuf_puts(a, kp);
        bt_argbuf_put(a, ":{", 2);
        bt_argbuf_puts(a, inst->id);
        bt_argbuf_puts(a, "}:h:");
        bt_argbuf_put_int(a, inst->run - 1);
        bt_argbuf_end(a);
    }
    return (int)a->n;
}

/* The fixed arguments, each where commit_proto.h puts it. */
static void build_fixed(const struct bt_instance *inst, int64_t now_ms,
                        struct bt_argbuf *a)
{
    const struct bt_delta *d = &inst->delta;
    /* the event position, only what Redis does not hold yet */
    bool kpos = inst->kpos && !inst->kpos_stored;
    bool koff = inst->kpos && (!inst->koff_stored || !inst->kpos_stored);

    for (int k = 0; k < BT_CA__FIXED; k++) {
        switch ((enum bt_commit_arg)k) {
        case BT_CA_VER:
            bt_argbuf_int(a, inst->ver);
            break;
        case BT_CA_ID:
            bt_argbuf_str(a, inst->id);
            break;
        case BT_CA_NOW:
            bt_argbuf_int(a, now_ms);
            break;
        case BT_CA_RESET:
            bt_argbuf_int(a, d->reset ? (long long)d->reset_history : -1);
            break;
        case BT_CA_JLEN:
            bt_argbuf_int(a, (long long)inst->n_entries);
            break;
        case BT_CA_HLEN:
            bt_argbuf_int(a, (long long)bt_instance_history_after(inst));
            break;
        case BT_CA_KPOS:
            bt_argbuf_str(a, kpos ? inst->kpos : "");
            break;
        case BT_CA_KOFF:
            koff ? bt_argbuf_int(a, inst->koff) : bt_argbuf_str(a, "");
            break;
        case BT_CA_KTS:
            koff ? bt_argbuf_int(a, inst->kts) : bt_argbuf_str(a, "");
            break;
        case BT_CA__FIXED:
            break;
        }
    }
}

/* The meta pairs of a new instance or a new run. */
static size_t build_meta_run(const struct bt_instance *inst, struct bt_argbuf *a)
{
    size_t n = 0;
    bool run = inst->ver == 0 || inst->delta.reset;

    if (inst->ver == 0) {
        bt_argbuf_str(a, "type");
        bt_argbuf_str(a, inst->type);
        bt_argbuf_str(a, "input");
        bt_argbuf_json(a, inst->input);
        bt_argbuf_str(a, "created");
        bt_argbuf_int(a, inst->created);
        bt_argbuf_str(a, "counted"); /* in <kp>:counts from its start (commit.lua) */
        bt_argbuf_str(a, "1");
        n += 4;
        if (inst->queue) {
            bt_argbuf_str(a, "queue");
            bt_argbuf_str(a, inst->queue);
            n++;
        }
        if (inst->parent_id) {
            bt_argbuf_str(a, "parent");
            bt_argbuf_str(a, inst->parent_id);
            bt_argbuf_str(a, "pseq");
            bt_argbuf_int(a, inst->parent_seq);
            n += 2;
        }
        if (inst->parent_queue) {
            bt_argbuf_str(a, "pqueue");
            bt_argbuf_str(a, inst->parent_queue);
            n++;
        }
    }
    if (run) {
        bt_argbuf_str(a, "run");
        bt_argbuf_int(a, inst->run);
        bt_argbuf_str(a, "base");
        bt_argbuf_int(a, inst->base);
        n += 2;
        if (inst->ver > 0) { /* the type too: a reused id's new run may change it */
            bt_argbuf_str(a, "input");
            bt_argbuf_json(a, inst->input);
            bt_argbuf_str(a, "type");
            bt_argbuf_str(a, inst->type);
            n += 2;
        }
    }
    return n;
}

/* The meta section: its count, then the pairs. */
static void build_meta(const struct bt_instance *inst, struct bt_argbuf *a)
{
    const struct bt_delta *d = &inst->delta;
    size_t count_at = a->n, n = 0;

    bt_argbuf_str(a, "0"); /* patched once the pairs are known */
    /* The status only when it may differ from the stored one. A blocked
     * instance may have been blocked here by a load that found corrupt state
     * (the stored status is still the old one): it is written as before. */
    if (inst->status != d->old_status || inst->ver == 0 || d->meta_dirty ||
        inst->status == BT_STATUS_BLOCKED) {
        bt_argbuf_str(a, "status");
        bt_argbuf_str(a, bt_status_name(inst->status));
        n++;
    }
    n += build_meta_run(inst, a);
    if (d->meta_dirty || inst->ver == 0) {
        bt_argbuf_str(a, "result");
        bt_argbuf_json(a, inst->result);
        bt_argbuf_str(a, "error");
        bt_argbuf_json(a, inst->error);
        bt_argbuf_str(a, "signals");
        bt_argbuf_json(a, inst->signals);
        bt_argbuf_str(a, "cancel");
        bt_argbuf_str(a, inst->cancel_requested ? "1" : "0");
        n += 4;
    }
    if (d->pause_changed) { /* only then: most instances are never paused */
        bt_argbuf_str(a, "paused");
        bt_argbuf_int(a, inst->paused_at);
        n++;
    }
    if (d->attrs_changed) {
        bt_argbuf_str(a, "attrs");
        bt_argbuf_json(a, inst->attrs);
        n++;
    }
    bt_argbuf_patch_int(a, count_at, (long long)n);
}

/* The journal and history sections. */
static void build_entries(const struct bt_instance *inst, struct bt_argbuf *a)
{
    const struct bt_delta *d = &inst->delta;
    size_t n = 0;

    for (size_t i = 0; i < inst->n_entries; i++)
        n += inst->entries[i].dirty;
    bt_argbuf_int(a, (long long)n);
    for (size_t i = 0; i < inst->n_entries; i++) {
        if (!inst->entries[i].dirty)
            continue;
        bt_argbuf_int(a, inst->base + (long long)i);
        bt_argbuf_own(a, bt_entry_encode(&inst->entries[i]));
    }
    bt_argbuf_int(a, (long long)d->n_history);
    for (size_t i = 0; i < d->n_history; i++) {
        size_t len = strlen(d->history[i]);
        bt_argbuf_begin(a);
        bt_argbuf_wrote(a,
                        bt_history_pack(bt_argbuf_room(a, len + 1), d->history[i], len));
        bt_argbuf_end(a);
    }
}

/* The outbox and timer sections, in the shapes HSET and ZADD take. */
static void build_commands(const struct bt_instance *inst, struct bt_argbuf *a)
{
    const struct bt_delta *d = &inst->delta;

    /* eager tasks too, under their holder's field: recovered from there
     * when their worker dies */
    bt_argbuf_int(a, (long long)d->n_cmds);
    for (size_t i = 0; i < d->n_cmds; i++) {
        const struct bt_command *c = &d->cmds[i];
        bt_argbuf_str(a, c->field);
        bt_argbuf_begin(a);
        bt_argbuf_puts(a, c->topic);
        bt_argbuf_put(a, "\n", 1);
        bt_argbuf_puts(a, c->key);
        bt_argbuf_put(a, "\n", 1);
        bt_argbuf_put(a, c->payload, c->len);
        bt_argbuf_end(a);
    }
    bt_argbuf_int(a, (long long)d->n_timers_add);
    for (size_t i = 0; i < d->n_timers_add; i++) {
        bt_argbuf_int(a, d->timers_add[i].due);
        bt_argbuf_str(a, d->timers_add[i].member);
    }
    bt_argbuf_int(a, (long long)d->n_timers_del);
    for (size_t i = 0; i < d->n_timers_del; i++)
        bt_argbuf_str(a, d->timers_del[i].member);
}

/* The sections in commit_proto.h's order. */
int bt__store_commit_args(const struct bt_store *store, const struct bt_instance *inst,
                          int64_t now_ms, struct bt_argbuf *a)
{
    int nkeys = build_keys(store, inst, a);

    build_fixed(inst, now_ms, a);
    BT_ASSERT(a->n == (size_t)nkeys + BT_CA__FIXED);
    build_meta(inst, a);     /* BT_CS_META */
    build_entries(inst, a);  /* BT_CS_JOURNAL, BT_CS_HISTORY */
    build_commands(inst, a); /* BT_CS_OUTBOX, BT_CS_TIMERS_ADD, BT_CS_TIMERS_DEL */
    arg_ended_runs(store, inst, now_ms, a); /* BT_CS_RUNS_ENDED */
    return nkeys;
}

int bt_store_commit_send(struct bt_store *store, struct bt_instance **insts, size_t n,
                         int64_t now_ms, bool *sent)
{
    struct bt_argbuf a;
    const char *script = bt_commit_script();
    int ret = script ? bt__store_append_forgets(store) : BT_ENOMEM;
    int nkeys;

    bt_argbuf_init(&a);

    for (size_t i = 0; i < n; i++) {
        if (ret || !(sent[i] = bt_instance_dirty(insts[i])))
            continue;
        bt_argbuf_reset(&a);
        nkeys = bt__store_commit_args(store, insts[i], now_ms, &a);
        bt_argbuf_resolve(&a);
        if (bt_redis_append_eval(store->r, script, nkeys, (int)a.n, a.argv, a.lens)) {
            sent[i] = false;
            ret = BT_ENOMEM;
            break;
        }
    }
    bt_argbuf_release(&a);
    if (bt_redis_flush(store->r))
        ret = BT_EAGAIN; /* the replies say so too */
    return ret;
}

int bt_store_commit_recv(struct bt_store *store, struct bt_instance **insts, size_t n,
                         const bool *sent, int *results)
{
    int ret = 0;

    bt__store_read_owed(store); /* they went out ahead of the commits */
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