/* The replay engine alone (common/sdk/replay.h): a journal and an event in, the
 * decision out (journal entries, commands), with no Redis and no Kafka. Each
 * test commits its decisions as the worker would (bt_instance_committed)
 * and reads the commands back through the codec. */
#include <criterion/criterion.h>
#include <stdint.h>
#include <string.h>

#include "baton.h"
#include "codec.h"
#include "err.h"
#include "instance.h"
#include "registry.h"
#include "replay.h"

/* A string for a field of struct bt_msg, which the codec owns as char *. */
#define MUT(s) ((char *)(uintptr_t)(s))

static int inc(bt_act *act, const json_t *input, json_t **result)
{
    (void)act;
    (void)input;
    *result = json_null();
    return 0;
}

/* a then b, b's input a's result; completes with b's */
static bt_poll two_steps(bt_wf *wf, const json_t *input)
{
    const json_t *a, *b;

    BT_RUN(wf, &a, "a", json_deep_copy(input), NULL);
    BT_RUN(wf, &b, "b", json_deep_copy(a), NULL);
    return bt_complete(wf, json_deep_copy(b));
}

/* the same type with its first step renamed: a deploy that breaks replay */
static bt_poll renamed(bt_wf *wf, const json_t *input)
{
    const json_t *a;

    BT_RUN(wf, &a, "b", json_deep_copy(input), NULL);
    return bt_complete(wf, json_deep_copy(a));
}

static bt_registry *reg;
static struct bt_replay_env env;

static void setup_with(bt_workflow_fn fn)
{
    cr_assert((reg = bt_registry_new()));
    cr_assert_eq(bt_register_workflow(reg, "two", fn), 0);
    cr_assert_eq(bt_register_activity(reg, "a", inc, NULL), 0);
    cr_assert_eq(bt_register_activity(reg, "b", inc, NULL), 0);
    env = (struct bt_replay_env){.reg = reg,
                                 .now_ms = 1700000000000,
                                 .default_timeout_ms = 60000,
                                 .worker = "unit"};
}

static void setup(void)
{
    setup_with(two_steps);
}

static void teardown(void)
{
    bt_registry_destroy(reg);
}

/* Applies msg and runs the code, as one decision; commits it. */
static void decide(struct bt_instance *inst, struct bt_msg *msg)
{
    const char *why = NULL;

    cr_assert_eq(bt_replay_apply(inst, msg, &env, &why), 0, "%s", why ? why : "");
    cr_assert_eq(bt_replay_run(inst, &env), 0);
    bt_instance_committed(inst, inst->ver + 1);
}

/* The only command of the last decision, decoded; its delta emptied. */
static void only_command(struct bt_instance *inst, struct bt_msg *out)
{
    char errstr[200];

    cr_assert_eq(inst->delta.n_cmds, 1, "%zu commands", inst->delta.n_cmds);
    cr_assert_eq(bt_codec_decode(inst->delta.cmds[0].payload, inst->delta.cmds[0].len,
                                 1 << 20, out, errstr, sizeof(errstr)),
                 0, "%s", errstr);
    bt_delta_reset(&inst->delta);
}

static void start(struct bt_instance *inst)
{
    struct bt_msg msg = {.type = BT_MSG_START,
                         .id = MUT("wf-1"),
                         .workflow = MUT("two"),
                         .body = json_pack("{s:i}", "v", 1)};

    decide(inst, &msg);
    json_decref(msg.body);
}

static void complete(struct bt_instance *inst, int64_t seq, const char *name,
                     json_t *result)
{
    struct bt_msg msg = {.type = BT_MSG_COMPLETED,
                         .id = MUT("wf-1"),
                         .name = MUT(name),
                         .seq = seq,
                         .attempt = 1,
                         .body = result};

    decide(inst, &msg);
    json_decref(result);
}

Test(replay, a_start_schedules_the_first_step_only, .init = setup, .fini = teardown)
{
    struct bt_instance *inst = bt_instance_new("wf-1");
    struct bt_msg task;

    start(inst);
    cr_assert_eq(inst->status, BT_STATUS_RUNNING);
    only_command(inst, &task);
    cr_assert_eq(task.type, BT_MSG_TASK);
    cr_assert_str_eq(task.name, "a");
    cr_assert_eq(task.attempt, 1);
    cr_assert_eq(json_integer_value(json_object_get(task.body, "v")), 1);
    bt_msg_release(&task);
    bt_instance_destroy(inst);
}

Test(replay, a_completion_replays_the_journal_and_schedules_the_next_step_once,
     .init = setup, .fini = teardown)
{
    struct bt_instance *inst = bt_instance_new("wf-1");
    struct bt_msg task, result;
    int64_t seq_a;

    start(inst);
    only_command(inst, &task);
    seq_a = task.seq;
    bt_msg_release(&task);
    complete(inst, seq_a, "a", json_pack("{s:s}", "from", "a"));
    only_command(inst, &task); /* b, and not a again */
    cr_assert_str_eq(task.name, "b");
    cr_assert_neq(task.seq, seq_a);
    cr_assert_str_eq(json_string_value(json_object_get(task.body, "from")), "a");
    complete(inst, task.seq, "b", json_pack("{s:s}", "from", "b"));
    bt_msg_release(&task);
    cr_assert_eq(inst->status, BT_STATUS_COMPLETED);
    cr_assert_str_eq(json_string_value(json_object_get(inst->result, "from")), "b");
    only_command(inst, &result);
    cr_assert_eq(result.type, BT_MSG_RESULT);
    cr_assert_str_eq(result.status, "completed");
    bt_msg_release(&result);
    bt_instance_destroy(inst);
}

Test(replay, a_duplicate_completion_is_refused_as_already_applied, .init = setup,
     .fini = teardown)
{
    struct bt_instance *inst = bt_instance_new("wf-1");
    struct bt_msg task;
    const char *why = NULL;

    start(inst);
    only_command(inst, &task);
    complete(inst, task.seq, "a", json_null());
    struct bt_msg again = {.type = BT_MSG_COMPLETED,
                           .id = MUT("wf-1"),
                           .name = MUT("a"),
                           .seq = task.seq,
                           .attempt = 1};
    cr_assert_eq(bt_replay_apply(inst, &again, &env, &why), BT_EEXIST);
    /* another activity's name for that step: no task could have sent it */
    again.name = MUT("b");
    cr_assert_eq(bt_replay_apply(inst, &again, &env, &why), BT_EINVALMSG);
    cr_assert(why);
    bt_msg_release(&task);
    bt_instance_destroy(inst);
}

/* The timeout timer of the attempt whose task start(inst) dispatched fires at
 * due; returns the error type the attempt failed with. */
static const char *timeout_fires(struct bt_instance *inst, int64_t seq, int64_t due)
{
    struct bt_msg timer = {.type = BT_MSG_TIMER,
                           .id = MUT("wf-1"),
                           .kind = MUT("timeout"),
                           .seq = seq,
                           .attempt = 1,
                           .due = due};
    const char *why = NULL;
    const struct bt_entry *e = &inst->entries[seq - inst->base];

    cr_assert_eq(bt_replay_apply(inst, &timer, &env, &why), 0, "%s", why ? why : "");
    cr_assert_eq(e->state, BT_ST_ATTEMPT_FAILED);
    return json_string_value(json_object_get(e->error, "type"));
}

/* A task's timer allows the wait for a worker on top of start-to-close; an
 * eager start (start_due) or a worker's take (another due) leaves
 * start-to-close alone. Fired at the due the workflow gave it, no worker
 * took the task. */
Test(replay, a_task_timer_allows_the_wait_for_a_worker_and_says_which_timeout_fired,
     .init = setup, .fini = teardown)
{
    struct bt_instance *inst = bt_instance_new("wf-1"), *other = bt_instance_new("wf-1");
    const struct bt_command *cmd;
    struct bt_msg task, msg = {.type = BT_MSG_START,
                               .id = MUT("wf-1"),
                               .workflow = MUT("two"),
                               .body = json_pack("{s:i}", "v", 1)};
    const char *why = NULL;
    int64_t due;

    env.schedule_to_start_ms = 10000;
    cr_assert_eq(bt_replay_apply(inst, &msg, &env, &why), 0, "%s", why ? why : "");
    cr_assert_eq(bt_replay_run(inst, &env), 0);
    cmd = &inst->delta.cmds[0];
    cr_assert_eq(inst->delta.n_timers_add, 1);
    cr_assert_eq(cmd->start_timer, 1, "the command points at its timer");
    due = inst->delta.timers_add[0].due;
    cr_assert_eq(due, env.now_ms + 60000 + 10000, "start-to-close + schedule-to-start");
    cr_assert_eq(cmd->start_due, env.now_ms + 60000, "start-to-close alone");
    cr_assert(strstr(inst->delta.timers_add[0].member, "timeout|"));
    bt_instance_committed(inst, inst->ver + 1);
    cr_assert_eq(cmd->start_timer, 0, "written: the timer is no longer in the delta");
    only_command(inst, &task);
    cr_assert_eq(task.deadline, env.now_ms + 60000, "the task carries start-to-close");
    cr_assert_str_eq(timeout_fires(inst, task.seq, due), "ScheduleToStartTimeout");
    start(other);
    bt_delta_reset(&other->delta);
    cr_assert_str_eq(timeout_fires(other, task.seq, env.now_ms + 61234),
                     "StartToCloseTimeout");
    bt_msg_release(&task);
    json_decref(msg.body);
    bt_instance_destroy(inst);
    bt_instance_destroy(other);
}

/* The journal says step 1 ran "a"; the code deployed since runs "b" there. */
Test(replay, code_that_no_longer_matches_its_journal_blocks_the_instance, .init = setup,
     .fini = teardown)
{
    struct bt_instance *inst = bt_instance_new("wf-1");
    struct bt_msg task;

    start(inst);
    only_command(inst, &task);
    bt_registry_destroy(reg);
    setup_with(renamed);
    complete(inst, task.seq, "a", json_null());
    cr_assert_eq(inst->status, BT_STATUS_BLOCKED);
    cr_assert(inst->error);
    cr_assert_eq(inst->delta.n_cmds, 0, "a blocked instance sends nothing");
    bt_msg_release(&task);
    bt_instance_destroy(inst);
}
