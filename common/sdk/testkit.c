/* The test kit (baton_test.h): the worker's loop with the I/O taken out.
 * Every message a decision sends is encoded as for Kafka and queued, and
 * every one taken from the queue is decoded again, so a test goes through the
 * codec, replay and the journal's encoding as the engine does. Timers (the
 * engine's, and the signals and cancels a test schedules) wait in one array
 * sorted by due time. Activities run through bt_activity_execute, their
 * function or a test's stand-in (testkit_act.c). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "activity.h"
#include "baton_test.h"
#include "clock.h"
#include "codec.h"
#include "err.h"
#include "idmap.h"
#include "instance.h"
#include "log.h"
#include "registry.h"
#include "replay.h"
#include "testkit.h"

#define START_MS    INT64_C(1767225600000) /* 2026-01-01T00:00:00Z */
#define MAX_EVENTS  100000
#define MAX_SKIP_MS (INT64_C(10) * 366 * 24 * 3600 * 1000)
#define MAX_PAYLOAD 900000 /* the engine's default max-payload */
#define TIMEOUT_MS  60000  /* the worker's default activity-timeout-ms */
#define HISTORY_MAX 20000
#define TEST_WORKER "baton-test"

/* ---- errors, queue, timers ---- */

int bt_testkit_fail(bt_test_env *env, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(env->error, sizeof(env->error), fmt, ap);
    va_end(ap);
    return -1;
}

const char *bt_test_error_text(const bt_test_env *env)
{
    return env->error;
}

static struct queued *queued_new(const char *payload, size_t len)
{
    struct queued *q = malloc(sizeof(*q) + len + 1);

    BT_ASSERT(q);
    q->next = NULL;
    q->len = len;
    memcpy(q->payload, payload, len);
    q->payload[len] = '\0';
    return q;
}

void bt_testkit_send(bt_test_env *env, const char *payload, size_t len)
{
    struct queued *q = queued_new(payload, len);

    *env->tail = q;
    env->tail = &q->next;
}

/* Sends msg encoded; its fields stay the caller's. */
static int send_msg(bt_test_env *env, const struct bt_msg *msg)
{
    size_t len;
    char *bytes = bt_codec_encode(msg, &len);

    if (!bytes)
        return bt_testkit_fail(env, "cannot encode a %s message",
                               bt_msg_type_name(msg->type));
    bt_testkit_send(env, bytes, len);
    free(bytes);
    return 0;
}

static void timer_del(bt_test_env *env, const char *member)
{
    for (size_t i = 0; i < env->n_timers; i++)
        if (env->timers[i].member && !strcmp(env->timers[i].member, member)) {
            free(env->timers[i].member);
            memmove(&env->timers[i], &env->timers[i + 1],
                    (env->n_timers - i - 1) * sizeof(env->timers[0]));
            env->n_timers--;
            return;
        }
}

/* Adds a timer, after those due at the same time. member (an engine timer)
 * or q (a message the test scheduled) is taken. */
void bt_testkit_timer(bt_test_env *env, char *member, struct queued *q, int64_t due)
{
    size_t at;

    if (member) /* an engine timer set again moves */
        timer_del(env, member);
    at = env->n_timers;
    if (env->n_timers == env->cap_timers) {
        env->cap_timers = env->cap_timers ? env->cap_timers * 2 : 16;
        env->timers = realloc(env->timers, env->cap_timers * sizeof(env->timers[0]));
        BT_ASSERT(env->timers);
    }
    while (at > 0 && env->timers[at - 1].due > due)
        at--;
    memmove(&env->timers[at + 1], &env->timers[at],
            (env->n_timers - at) * sizeof(env->timers[0]));
    env->timers[at] = (struct timer){member, q, due};
    env->n_timers++;
}

/* Queues the first timer's message and removes the timer. */
static int fire_first(bt_test_env *env)
{
    struct timer t = env->timers[0];
    int ret = 0;

    memmove(&env->timers[0], &env->timers[1], (--env->n_timers) * sizeof(env->timers[0]));
    if (t.q) {
        *env->tail = t.q;
        env->tail = &t.q->next;
        return 0;
    }
    {
        struct bt_msg msg = {0};
        char kind[32];
        if (bt_timer_parse(t.member, &msg, kind, sizeof(kind)))
            ret = bt_testkit_fail(env, "a timer the engine set cannot be read: %s",
                                  t.member);
        else {
            msg.due = t.due;
            msg.ts = env->now;
            ret = send_msg(env, &msg);
        }
    }
    free(t.member);
    return ret;
}

/* ---- instances ---- */

static void record_free(void *p)
{
    struct record *rec = p;

    bt_instance_destroy(rec->inst);
    for (size_t i = 0; i < rec->n_history; i++)
        free(rec->history[i]);
    free(rec->history);
    free(rec);
}

struct record *bt_testkit_find(const bt_test_env *env, const char *id)
{
    return id ? bt_idmap_get(env->records, id) : NULL;
}

static struct record *record_add(bt_test_env *env, const char *id)
{
    struct record *rec = calloc(1, sizeof(*rec));

    BT_ASSERT(rec && (rec->inst = bt_instance_new(id)));
    BT_ASSERT(bt_idmap_put(env->records, id, rec) == 0);
    if (env->n_ids == env->cap_ids) {
        env->cap_ids = env->cap_ids ? env->cap_ids * 2 : 16;
        env->ids = realloc(env->ids, env->cap_ids * sizeof(env->ids[0]));
        BT_ASSERT(env->ids);
    }
    BT_ASSERT(env->ids[env->n_ids++] = strdup(id));
    return rec;
}

static char *dup_or_null(const char *s)
{
    char *d = s ? strdup(s) : NULL;

    BT_ASSERT(!s || d);
    return d;
}

static json_t *copy_json(const json_t *v)
{
    return v ? json_deep_copy(v) : NULL;
}

/* What Redis would give a new worker: the committed meta fields and the
 * journal, through the journal's own encoding. */
static struct bt_instance *reload(const struct bt_instance *o)
{
    struct bt_instance *n = bt_instance_new(o->id);

    BT_ASSERT(n);
    n->type = dup_or_null(o->type);
    n->input = copy_json(o->input);
    n->status = o->status;
    n->ver = o->ver;
    n->created = o->created;
    n->queue = dup_or_null(o->queue);
    n->parent_id = dup_or_null(o->parent_id);
    n->parent_seq = o->parent_seq;
    n->parent_queue = dup_or_null(o->parent_queue);
    n->run = o->run;
    n->base = o->base;
    n->hlen = o->hlen;
    n->cancel_requested = o->cancel_requested;
    n->paused_at = o->paused_at;
    n->attrs = copy_json(o->attrs);
    n->result = copy_json(o->result);
    n->error = copy_json(o->error);
    n->signals = copy_json(o->signals);
    n->kpos = dup_or_null(o->kpos);
    n->koff = o->koff;
    n->kts = o->kts;
    n->kpos_stored = o->kpos_stored;
    n->koff_stored = o->koff_stored;
    n->entries = calloc(o->n_entries + 1, sizeof(*n->entries));
    BT_ASSERT(n->entries);
    n->cap_entries = o->n_entries + 1;
    for (size_t i = 0; i < o->n_entries; i++) {
        char *text = bt_entry_encode(&o->entries[i]);
        BT_ASSERT(text && bt_entry_decode(&n->entries[i], text, strlen(text)) == 0);
        free(text);
    }
    n->n_entries = n->n_committed = o->n_entries;
    n->delta.old_status = n->status;
    return n;
}

static void crash_one(struct record *rec)
{
    struct bt_instance *fresh = reload(rec->inst);

    bt_instance_destroy(rec->inst);
    rec->inst = fresh;
}

void bt_test_crash(bt_test_env *env)
{
    for (size_t i = 0; i < env->n_ids; i++)
        crash_one(bt_testkit_find(env, env->ids[i]));
}

void bt_test_crash_after_every_event(bt_test_env *env, bool on)
{
    env->crash_every = on;
}

/* The commit, minus Redis: the commands are sent, the timers set and
 * cleared, the history kept. */
static void commit(bt_test_env *env, struct record *rec)
{
    struct bt_instance *inst = rec->inst;
    struct bt_delta *d = &inst->delta;

    for (size_t i = 0; i < d->n_cmds; i++) {
        if (!env->replaying) /* a replayed history brings its own outcomes */
            bt_testkit_send(env, d->cmds[i].payload, d->cmds[i].len);
        bt_command_release(&d->cmds[i]);
    }
    d->n_cmds = 0;
    for (size_t i = 0; i < d->n_timers_del; i++)
        timer_del(env, d->timers_del[i].member);
    for (size_t i = 0; i < d->n_timers_add && !env->replaying; i++) {
        char *member = strdup(d->timers_add[i].member);
        BT_ASSERT(member);
        bt_testkit_timer(env, member, NULL, d->timers_add[i].due);
    }
    if (rec->n_history + d->n_history > rec->cap_history) {
        rec->cap_history = (rec->n_history + d->n_history) * 2;
        rec->history = realloc(rec->history, rec->cap_history * sizeof(rec->history[0]));
        BT_ASSERT(rec->history);
    }
    for (size_t i = 0; i < d->n_history; i++)
        BT_ASSERT(rec->history[rec->n_history++] = strdup(d->history[i]));
    bt_instance_committed(inst, inst->ver + 1);
}

void bt_testkit_replay_env(const bt_test_env *env, struct bt_replay_env *renv)
{
    *renv = (struct bt_replay_env){.reg = env->reg,
                                   .now_ms = env->now,
                                   .default_timeout_ms = TIMEOUT_MS,
                                   .worker = TEST_WORKER,
                                   .history_max = HISTORY_MAX,
                                   .max_message = MAX_PAYLOAD};
}

int bt_testkit_apply(bt_test_env *env, const struct bt_msg *msg, const char **why)
{
    struct record *rec = bt_testkit_find(env, msg->id);
    struct bt_replay_env renv;
    int rc;

    *why = NULL;
    if (!rec && msg->type != BT_MSG_START) {
        env->dead_letters++;
        *why = "no such instance";
        return BT_ENOENT;
    }
    if (!rec)
        rec = record_add(env, msg->id);
    bt_testkit_replay_env(env, &renv);
    rc = bt_replay_apply(rec->inst, msg, &renv, why);
    if (rc == BT_EEXIST)
        return rc;
    if (rc) {
        env->dead_letters++;
        return rc;
    }
    bt_replay_run(rec->inst, &renv);
    commit(env, rec);
    if (env->crash_every)
        crash_one(rec);
    return 0;
}

/* Takes one queued message; 0 when there was none. */
static int step(bt_test_env *env)
{
    struct queued *q = env->head;
    struct bt_msg msg;
    char errstr[256];

    if (!q)
        return 0;
    if (!(env->head = q->next))
        env->tail = &env->head;
    if (bt_codec_decode(q->payload, q->len, MAX_PAYLOAD, &msg, errstr, sizeof(errstr))) {
        env->dead_letters++;
    } else {
        if (msg.type == BT_MSG_TASK)
            bt_testkit_run_task(env, &msg);
        else if (msg.type == BT_MSG_DEAD_LETTER)
            env->dead_letters++;
        else if (msg.type != BT_MSG_RESULT) /* a result is in its instance */
            bt_testkit_apply(env, &msg, &(const char *){NULL});
        bt_msg_release(&msg);
    }
    free(q);
    return 1;
}

static int drain(bt_test_env *env)
{
    while (step(env))
        if (++env->events > MAX_EVENTS)
            return bt_testkit_fail(env, "more than 100,000 events: a workflow that never "
                                        "ends?");
    return 0;
}

int bt_test_run(bt_test_env *env)
{
    int64_t limit = env->now + MAX_SKIP_MS;

    env->events = 0;
    for (;;) {
        if (drain(env))
            return -1;
        if (!env->n_timers)
            return 0;
        if (env->timers[0].due > limit)
            return bt_testkit_fail(env, "still waiting after 10 years of virtual time");
        if (env->timers[0].due > env->now)
            env->now = env->timers[0].due;
        if (fire_first(env))
            return -1;
    }
}

int bt_test_advance(bt_test_env *env, const char *duration)
{
    int64_t ms, target;

    if (bt_testkit_duration(duration, &ms))
        return bt_testkit_fail(env, "not a duration: \"%s\"", duration);
    target = env->now + ms;
    env->events = 0;
    for (;;) {
        if (drain(env))
            return -1;
        if (!env->n_timers || env->timers[0].due > target)
            break;
        if (env->timers[0].due > env->now)
            env->now = env->timers[0].due;
        if (fire_first(env))
            return -1;
    }
    env->now = target;
    return 0;
}

int64_t bt_test_now(const bt_test_env *env)
{
    return env->now;
}

/* ---- the environment ---- */

bt_test_env *bt_test_env_new(void)
{
    bt_test_env *env = calloc(1, sizeof(*env));

    if (!env)
        return NULL;
    env->tail = &env->head;
    env->now = START_MS;
    /* a test's output is its own: the engine's notes (an attempt failed, as
     * the test asked) only when BATON_LOG_LEVEL asks for them */
    if (!getenv("BATON_LOG_LEVEL"))
        bt_log_setup("baton-test", BT_LOG_WARN, 0);
    if (!(env->reg = bt_registry_new()) || !(env->records = bt_idmap_new())) {
        bt_test_env_free(env);
        return NULL;
    }
    return env;
}

void bt_test_env_free(bt_test_env *env)
{
    if (!env)
        return;
    while (env->head) {
        struct queued *q = env->head;
        env->head = q->next;
        free(q);
    }
    for (size_t i = 0; i < env->n_timers; i++) {
        free(env->timers[i].member);
        free(env->timers[i].q);
    }
    free(env->timers);
    if (env->records)
        bt_idmap_destroy(env->records, record_free);
    for (size_t i = 0; i < env->n_ids; i++)
        free(env->ids[i]);
    free(env->ids);
    bt_testkit_acts_free(env);
    bt_registry_destroy(env->reg);
    free(env);
}

int bt_test_load_plugin(bt_test_env *env, const char *path)
{
    char errstr[400];

    if (bt_registry_load(env->reg, path, errstr, sizeof(errstr)))
        return bt_testkit_fail(env, "%s", errstr);
    return 0;
}

int bt_test_register(bt_test_env *env, int (*register_fn)(bt_registry *r))
{
    if (register_fn(env->reg))
        return bt_testkit_fail(env, "the registration function refused");
    return 0;
}

/* ---- driving ---- */

/* Sends msg now, or schedules it `after` from now. */
static int deliver(bt_test_env *env, const struct bt_msg *msg, const char *after)
{
    int64_t ms = 0;
    size_t len;
    char *bytes;

    if (after && bt_testkit_duration(after, &ms))
        return bt_testkit_fail(env, "not a duration: \"%s\"", after);
    if (!ms)
        return send_msg(env, msg);
    if (!(bytes = bt_codec_encode(msg, &len)))
        return bt_testkit_fail(env, "cannot encode a %s message",
                               bt_msg_type_name(msg->type));
    bt_testkit_timer(env, NULL, queued_new(bytes, len), env->now + ms);
    free(bytes);
    return 0;
}

int bt_test_start(bt_test_env *env, const char *type, const char *id, json_t *input)
{
    struct bt_msg msg = {.type = BT_MSG_START,
                         .id = (char *)(uintptr_t)id,
                         .workflow = (char *)(uintptr_t)type,
                         .body = input,
                         .ts = env->now};
    int ret;

    if (!bt_registry_workflow(env->reg, type)) {
        json_decref(input);
        return bt_testkit_fail(env, "no workflow type \"%s\" is registered", type);
    }
    ret = send_msg(env, &msg);
    json_decref(input);
    return ret;
}

int bt_test_signal(bt_test_env *env, const char *id, const char *name, json_t *payload,
                   const char *after)
{
    struct bt_msg msg = {.type = BT_MSG_SIGNAL,
                         .id = (char *)(uintptr_t)id,
                         .name = (char *)(uintptr_t)name,
                         .body = payload,
                         .ts = env->now};
    int ret = deliver(env, &msg, after);

    json_decref(payload);
    return ret;
}

int bt_test_cancel(bt_test_env *env, const char *id, bool terminate, const char *after)
{
    struct bt_msg msg = {.type = BT_MSG_CANCEL,
                         .id = (char *)(uintptr_t)id,
                         .terminate = terminate,
                         .ts = env->now};

    return deliver(env, &msg, after);
}

int bt_test_pause(bt_test_env *env, const char *id, const char *after)
{
    struct bt_msg msg = {
        .type = BT_MSG_PAUSE, .id = (char *)(uintptr_t)id, .ts = env->now};

    return deliver(env, &msg, after);
}

int bt_test_resume(bt_test_env *env, const char *id, const char *after)
{
    struct bt_msg msg = {
        .type = BT_MSG_RESUME, .id = (char *)(uintptr_t)id, .ts = env->now};

    return deliver(env, &msg, after);
}

int bt_test_reset(bt_test_env *env, const char *id, int64_t seq, const char *after)
{
    struct bt_msg msg = {.type = BT_MSG_RESET,
                         .id = (char *)(uintptr_t)id,
                         .seq = seq < 0 ? -1 : seq,
                         .last_failure = seq < 0,
                         .ts = env->now};

    return deliver(env, &msg, after);
}

/* ---- what happened ---- */

const json_t *bt_test_attributes(const bt_test_env *env, const char *id)
{
    const struct record *rec = bt_testkit_find(env, id);

    return rec ? rec->inst->attrs : NULL;
}

const char *bt_test_status(const bt_test_env *env, const char *id)
{
    const struct record *rec = bt_testkit_find(env, id);

    return rec ? bt_status_name(rec->inst->status) : NULL;
}

const json_t *bt_test_result(const bt_test_env *env, const char *id)
{
    const struct record *rec = bt_testkit_find(env, id);

    return rec ? rec->inst->result : NULL;
}

const json_t *bt_test_failure(const bt_test_env *env, const char *id)
{
    const struct record *rec = bt_testkit_find(env, id);

    return rec ? rec->inst->error : NULL;
}

size_t bt_test_history_len(const bt_test_env *env, const char *id)
{
    const struct record *rec = bt_testkit_find(env, id);

    return rec ? rec->n_history : 0;
}

const char *bt_test_history(const bt_test_env *env, const char *id, size_t i)
{
    const struct record *rec = bt_testkit_find(env, id);

    return rec && i < rec->n_history ? rec->history[i] : NULL;
}

size_t bt_test_dead_letters(const bt_test_env *env)
{
    return env->dead_letters;
}
