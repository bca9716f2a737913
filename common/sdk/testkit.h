/* The test kit's insides, shared by testkit.c (the loop, time, instances)
 * and testkit_act.c (activities: stand-ins, calls). */
#ifndef BT_TESTKIT_H
#define BT_TESTKIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "baton_test.h"
#include "codec.h"
#include "idmap.h"
#include "instance.h"
#include "replay.h"

/* A message on its way, encoded as for Kafka. */
struct queued {
    struct queued *next;
    size_t len;
    char payload[]; /* len bytes, then '\0' */
};

/* One engine timer (member) or one message a test scheduled (q). */
struct timer {
    char *member;
    struct queued *q;
    int64_t due;
};

/* An instance, and its history as the worker would have written it. */
struct record {
    struct bt_instance *inst;
    char **history;
    size_t n_history, cap_history;
};

/* A test's stand-in for an activity. */
struct stand_in {
    char *name;
    bt_activity_fn fn; /* or NULL: the registered one */
    json_t *script;    /* or NULL */
    int fail_times;    /* attempts that fail first */
    char *fail_type;
};

struct call {
    char *name;
    struct bt_test_call c; /* its strings and input owned */
};

struct bt_test_env {
    bt_registry *reg;
    int64_t now;
    struct queued *head, **tail;
    struct timer *timers; /* by due time */
    size_t n_timers, cap_timers;
    struct bt_idmap *records; /* id -> struct record */
    char **ids;               /* in start order */
    size_t n_ids, cap_ids;
    struct stand_in *stand_ins;
    size_t n_stand_ins;
    struct call *calls;
    size_t n_calls, cap_calls;
    size_t dead_letters;
    size_t events; /* of the current run */
    bool crash_every;
    bool replaying; /* bt_test_replay_history: decisions send nothing */
    char error[512];
};

/* Sets env's error text; returns -1. */
int bt_testkit_fail(bt_test_env *env, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Queues an encoded message (copied). */
void bt_testkit_send(bt_test_env *env, const char *payload, size_t len);
/* Sets a timer (member or q taken). */
void bt_testkit_timer(bt_test_env *env, char *member, struct queued *q, int64_t due);
struct record *bt_testkit_find(const bt_test_env *env, const char *id);
void bt_testkit_replay_env(const bt_test_env *env, struct bt_replay_env *renv);
/* Applies an instance event, replays, commits. Returns bt_replay_apply's
 * code (*why its reason); 0 when applied. */
int bt_testkit_apply(bt_test_env *env, const struct bt_msg *msg, const char **why);

/* testkit_act.c */
/* Runs an attempt as the activity role does: skipped when its journal entry
 * no longer waits for it, its timeout set, its outcome sent. */
void bt_testkit_run_task(bt_test_env *env, const struct bt_msg *task);
/* "1500ms", "90s", "15m", "24h", "7d" or plain ms; 0 or BT_EINVAL. */
int bt_testkit_duration(const char *s, int64_t *ms);
void bt_testkit_acts_free(bt_test_env *env);

#endif
