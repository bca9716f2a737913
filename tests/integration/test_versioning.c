/* Versioning of in-flight instances, the scenario from the field: instances of
 * a 10-step workflow paused at different steps; a deploy inserts step 5.2
 * behind a patch and appends steps 11 and 12. `baton replay-check` predicts
 * what a deploy would block before it happens. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stack.h"

static struct bt_stack stack;

static void setup(void)
{
    cr_assert_eq(bt_stack_start(&stack, NULL), 0, "cannot start the stack");
}

static void teardown(void)
{
    bt_stack_stop(&stack);
}

static void go(const char *id, int times)
{
    char payload[256];
    int len = snprintf(payload, sizeof(payload),
                       "{\"v\":1,\"type\":\"signal\",\"id\":\"%s\",\"name\":\"go\"}", id);
    for (int i = 0; i < times; i++)
        cr_assert_eq(bt_stack_produce(&stack, "events", id, payload, (size_t)len), 0);
}

static long long journal_len(const char *id)
{
    redisReply *reply = bt_stack_redis(&stack, "HLEN %s:{%s}:journal", stack.prefix, id);
    long long n = reply ? reply->integer : -1;

    freeReplyObject(reply);
    return n;
}

/* Whether a step called name completed in id's history (its journal goes
 * when it completes: the history is what stays). */
static bool ran(const char *id, const char *name)
{
    json_t *done = bt_stack_history(&stack, id, NULL, "activity_completed");
    bool found = false;
    size_t i;
    json_t *rec;

    json_array_foreach(done, i, rec)
    {
        const char *n = json_string_value(json_object_get(rec, "name"));
        found |= n && !strcmp(n, name);
    }
    json_decref(done);
    return found;
}

static int replay_check(const char *plugin, char *out, size_t n)
{
    char path[512], log[512];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s.so", BT_PLUGIN_DIR, plugin);
    snprintf(log, sizeof(log), "%s/replay-check-%s.out", stack.redis.dir, plugin);
    int status = bt_test_wait(
        bt_test_spawn((const char *const[]){BT_BIN_DIR "/baton", "replay-check",
                                            "--plugin", path, NULL},
                      stack.envp, log),
        30000);
    f = fopen(log, "r");
    size_t len = f ? fread(out, 1, n - 1, f) : 0;
    out[len] = '\0';
    if (f)
        fclose(f);
    return status;
}

Test(versioning, patched_insert_and_appended_steps_reach_instances_paused_anywhere,
     .init = setup, .fini = teardown, .timeout = 120)
{
    /* instance -> "go" signals before the deploy: paused before step k + 1 */
    static const struct {
        const char *id;
        int gos;
        bool runs_5_2;
    } at[] = {{"v-a", 2, true}, {"v-b", 4, true}, {"v-c", 6, false}, {"v-d", 9, false}};
    char out[8192];
    bool ok;
    pid_t w = bt_stack_worker(&stack, "steps10", NULL);

    for (int i = 0; i < 4; i++) {
        cr_assert_eq(bt_stack_start_wf(&stack, "steps", at[i].id, NULL), 0);
        go(at[i].id, at[i].gos);
    }
    for (int i = 0; i < 4; i++) {
        /* wait_1, s1, ..., wait_k, s_k, wait_k+1: s_k is done */
        BT_TEST_WAIT_UNTIL(ok, journal_len(at[i].id) == 2 * at[i].gos + 1, 30000);
        cr_assert(ok, "%s did not pause at step %d (journal %lld)", at[i].id,
                  at[i].gos + 1, journal_len(at[i].id));
    }
    cr_assert_eq(bt_test_stop(w, 20000), 0);

    /* before deploying: the bad change would block exactly v-d, the good one none */
    cr_assert_eq(replay_check("steps12_bad", out, sizeof(out)), 1, "%s", out);
    cr_assert(strstr(out, "v-d") && strstr(out, "WOULD BLOCK") && strstr(out, "\"s8\"") &&
                  strstr(out, "\"s9\""),
              "%s", out);
    cr_assert(!strstr(out, "v-a ") && !strstr(out, "v-b ") && !strstr(out, "v-c "), "%s",
              out);
    cr_assert(strstr(out, "4 instances replayed, 1 would block"), "%s", out);
    cr_assert_eq(replay_check("steps12", out, sizeof(out)), 0, "%s", out);
    cr_assert(strstr(out, "4 instances replayed, 0 would block"), "%s", out);
    for (int i = 0; i < 4; i++)
        cr_assert_eq(journal_len(at[i].id), 2 * at[i].gos + 1,
                     "replay-check changed nothing");

    /* the deploy */
    w = bt_stack_worker(&stack, "steps12", NULL);
    for (int i = 0; i < 4; i++)
        go(at[i].id, 12 - at[i].gos);
    for (int i = 0; i < 4; i++) {
        char buf[32];
        BT_TEST_WAIT_UNTIL(
            ok, !strcmp(bt_stack_status(&stack, at[i].id, buf, sizeof(buf)), "completed"),
            60000);
        cr_assert(ok, "%s is %s", at[i].id, buf);
        cr_assert_eq(ran(at[i].id, "s5_2"), at[i].runs_5_2, "%s: step 5.2", at[i].id);
        cr_assert(ran(at[i].id, "s11") && ran(at[i].id, "s12"), "%s: steps 11 and 12",
                  at[i].id);
    }
    bt_test_stop(w, BT_TEST_STOP_MS);
}
