/* The test kit's activities (baton_test.h): each attempt runs through
 * bt_activity_execute, as on a worker, with the registered function or a
 * test's stand-in, and is recorded as a call. The stand-in runs inside the
 * SDK's own bt_act (a thread-local says which one is due), so a scripted
 * failure is made by bt_act_fail and the recorded idempotency key is the
 * SDK's. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "activity.h"
#include "baton_test.h"
#include "err.h"
#include "registry.h"
#include "testkit.h"

/* The attempt being run (one env per thread). */
static _Thread_local struct {
    const struct stand_in *stand_in;
    const struct bt_activity_def *real;
    struct call *call;
    bool no_answer; /* a scripted timeout: the outcome is dropped */
} running;

int bt_testkit_duration(const char *s, int64_t *ms)
{
    static const struct {
        const char *unit;
        int64_t ms;
    } units[] = {{"ms", 1},      {"s", 1000},     {"m", 60000},
                 {"h", 3600000}, {"d", 86400000}, {"", 1}};
    char *end;
    long long n;

    if (!s || !*s)
        return BT_EINVAL;
    n = strtoll(s, &end, 10);
    if (end == s || n < 0)
        return BT_EINVAL;
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
        if (!strcmp(end, units[i].unit)) {
            *ms = n * units[i].ms;
            return 0;
        }
    return BT_EINVAL;
}

static struct stand_in *stand_in(bt_test_env *env, const char *name, bool make)
{
    struct stand_in *grown;

    for (size_t i = 0; i < env->n_stand_ins; i++)
        if (!strcmp(env->stand_ins[i].name, name))
            return &env->stand_ins[i];
    if (!make)
        return NULL;
    grown = realloc(env->stand_ins, (env->n_stand_ins + 1) * sizeof(*grown));
    BT_ASSERT(grown);
    env->stand_ins = grown;
    grown = &env->stand_ins[env->n_stand_ins++];
    *grown = (struct stand_in){.name = strdup(name)};
    BT_ASSERT(grown->name);
    return grown;
}

int bt_test_mock_activity(bt_test_env *env, const char *name, bt_activity_fn fn)
{
    if (!fn)
        return bt_testkit_fail(env, "mock of \"%s\": no function", name);
    stand_in(env, name, true)->fn = fn;
    return 0;
}

int bt_test_script_activity(bt_test_env *env, const char *name, const char *script)
{
    json_error_t jerr;
    json_t *s = json_loads(script, 0, &jerr);
    struct stand_in *in;

    if (!json_is_array(s) || !json_array_size(s)) {
        json_decref(s);
        return bt_testkit_fail(env, "script of \"%s\": not a JSON array of outcomes",
                               name);
    }
    in = stand_in(env, name, true);
    json_decref(in->script);
    in->script = s;
    return 0;
}

int bt_test_fail_activity(bt_test_env *env, const char *name, int times,
                          const char *error_type)
{
    struct stand_in *in = stand_in(env, name, true);

    free(in->fail_type);
    BT_ASSERT(in->fail_type = strdup(error_type ? error_type : "TestFailure"));
    in->fail_times = times;
    return 0;
}

/* One scripted outcome. */
static int scripted(bt_act *act, const json_t *outcome, json_t **result)
{
    const json_t *error = json_object_get(outcome, "error");
    json_int_t after = json_integer_value(json_object_get(outcome, "retry_after_ms"));
    const char *message = json_string_value(json_object_get(outcome, "message"));

    if (json_is_true(json_object_get(outcome, "timeout"))) {
        running.no_answer = true;
        return 0;
    }
    if (json_is_string(error)) {
        if (after > 0)
            return bt_act_throttled(act, after);
        return bt_act_fail(act, json_string_value(error),
                           !json_is_false(json_object_get(outcome, "retryable")), "%s",
                           message ? message : "scripted failure");
    }
    *result = json_deep_copy(json_object_get(outcome, "result"));
    if (!*result)
        *result = json_null();
    return 0;
}

/* The function every attempt runs: records the SDK's idempotency key, then
 * does what the test said, or what the activity does. */
static int attempt_fn(bt_act *act, const json_t *input, json_t **result)
{
    const struct stand_in *in = running.stand_in;
    int attempt = bt_act_attempt(act);

    running.call->c.idempotency_key = strdup(bt_act_idempotency_key(act));
    if (in && attempt <= in->fail_times)
        return bt_act_fail(act, in->fail_type, true, "failed by the test (attempt %d)",
                           attempt);
    if (in && in->script) {
        size_t n = json_array_size(in->script), i = (size_t)(attempt - 1);
        return scripted(act, json_array_get(in->script, i < n ? i : n - 1), result);
    }
    if (in && in->fn)
        return in->fn(act, input, result);
    return running.real->fn(act, input, result);
}

static struct call *add_call(bt_test_env *env, const struct bt_msg *task)
{
    struct call *c;

    if (env->n_calls == env->cap_calls) {
        env->cap_calls = env->cap_calls ? env->cap_calls * 2 : 32;
        env->calls = realloc(env->calls, env->cap_calls * sizeof(env->calls[0]));
        BT_ASSERT(env->calls);
    }
    c = &env->calls[env->n_calls++];
    *c = (struct call){.name = strdup(task->name)};
    c->c.id = strdup(task->id);
    BT_ASSERT(c->name && c->c.id);
    c->c.seq = task->seq;
    c->c.attempt = task->attempt;
    c->c.input = task->body ? json_deep_copy(task->body) : json_null();
    c->c.at_ms = env->now;
    return c;
}

/* take_task.lua's check: the step still waits for this attempt and the
 * instance runs. */
static bool wanted(const bt_test_env *env, const struct bt_msg *task)
{
    const struct record *rec = bt_testkit_find(env, task->id);
    const struct bt_instance *inst = rec ? rec->inst : NULL;
    const struct bt_entry *e;

    if (!inst || (inst->status != BT_STATUS_RUNNING && inst->status != BT_STATUS_BLOCKED))
        return false;
    if (task->seq < inst->base || task->seq - inst->base >= (int64_t)inst->n_entries)
        return false;
    e = &inst->entries[task->seq - inst->base];
    return e->kind == BT_ENTRY_ACTIVITY && e->state == BT_ST_WAITING &&
           e->attempt == task->attempt;
}

void bt_testkit_run_task(bt_test_env *env, const struct bt_msg *task)
{
    const struct bt_activity_def *real = bt_registry_activity(env->reg, task->name);
    struct stand_in *in = stand_in(env, task->name, false);
    struct bt_activity_def def;
    struct bt_msg event = {0};
    int64_t timeout = task->deadline - task->ts;
    char *member, *bytes;
    size_t len;

    if (!wanted(env, task))
        return;
    /* its start-to-close timeout starts now (the replay set the timer) */
    if (task->deadline &&
        (member = bt_timer_member("timeout", task->seq, task->attempt, task->id)))
        bt_testkit_timer(env, member, NULL,
                         timeout > 0 && task->ts ? env->now + timeout : task->deadline);
    running.stand_in = in;
    running.real = real;
    running.call = add_call(env, task);
    running.no_answer = false;
    if (real)
        def = *real;
    else
        def = (struct bt_activity_def){.name = task->name};
    def.fn = attempt_fn;
    bt_activity_execute(real || in ? &def : NULL, task, "baton-test", &event);
    if (!running.no_answer) {
        event.ts = env->now;
        if ((bytes = bt_activity_encode(&event, 900000, &len))) {
            bt_testkit_send(env, bytes, len);
            free(bytes);
        }
    }
    bt_msg_release(&event);
    memset(&running, 0, sizeof(running));
}

size_t bt_test_calls(const bt_test_env *env, const char *name)
{
    size_t n = 0;

    for (size_t i = 0; i < env->n_calls; i++)
        n += !strcmp(env->calls[i].name, name);
    return n;
}

const struct bt_test_call *bt_test_call(const bt_test_env *env, const char *name,
                                        size_t i)
{
    for (size_t k = 0; k < env->n_calls; k++)
        if (!strcmp(env->calls[k].name, name) && i-- == 0)
            return &env->calls[k].c;
    return NULL;
}

void bt_testkit_acts_free(bt_test_env *env)
{
    for (size_t i = 0; i < env->n_stand_ins; i++) {
        free(env->stand_ins[i].name);
        free(env->stand_ins[i].fail_type);
        json_decref(env->stand_ins[i].script);
    }
    free(env->stand_ins);
    for (size_t i = 0; i < env->n_calls; i++) {
        free(env->calls[i].name);
        free((char *)(uintptr_t)env->calls[i].c.id);
        free((char *)(uintptr_t)env->calls[i].c.idempotency_key);
        json_decref((json_t *)(uintptr_t)env->calls[i].c.input);
    }
    free(env->calls);
}
