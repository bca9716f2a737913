/* `baton stats`: instances by type and status from the counts the commits
 * keep (commit.lua) and the deletes take back (retention_delete.lua), once
 * the scheduler's pass has counted the instances an older baton started
 * (counts_backfill.lua, marker <kp>:counted per shard); until then from
 * every instance's meta. Each figure is checked against the metas
 * themselves, after starts, failures, signals, cancels, terminations,
 * pauses, new runs of an id (of another type too) and deletes. */
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

TestSuite(stats, .init = setup, .fini = teardown, .timeout = 180);

#define BATON(out, ...) BT_STACK_BATON(&stack, (out), __VA_ARGS__)

/* The instances of the test: name and how many. */
static const struct {
    const char *name, *type;
    int n;
} groups[] = {{"c", "chain3", 12}, {"f", "always_fails", 5}, {"r", "await_review", 8}};
#define N_GROUPS (sizeof(groups) / sizeof(groups[0]))

static void each_id(void (*fn)(const char *id, void *arg), void *arg)
{
    char id[32];

    for (size_t g = 0; g < N_GROUPS; g++)
        for (int i = 0; i < groups[g].n; i++) {
            snprintf(id, sizeof(id), "%s-%d", groups[g].name, i);
            fn(id, arg);
        }
}

/* Adds id's type and status, read from its meta, into arg. */
static void add_truth(const char *id, void *arg)
{
    char key[256];
    redisReply *m = bt_stack_redis(&stack, "HMGET %s type status",
                                   bt_stack_key(&stack, id, "", key, sizeof(key)));
    json_t *t;

    cr_assert(m && m->type == REDIS_REPLY_ARRAY && m->elements == 2);
    if (m->element[0]->str && m->element[1]->str) {
        if (!(t = json_object_get(arg, m->element[0]->str)))
            json_object_set_new(arg, m->element[0]->str, t = json_object());
        json_object_set_new(
            t, m->element[1]->str,
            json_integer(json_integer_value(json_object_get(t, m->element[1]->str)) + 1));
    }
    freeReplyObject(m);
}

/* {type: {status: n}} of every instance, from the metas. */
static json_t *truth(void)
{
    json_t *by_type = json_object();

    each_id(add_truth, by_type);
    return by_type;
}

/* `baton stats --json`'s types, without their totals and zeros. */
static json_t *stats(void)
{
    char out[16384];
    json_t *root, *types, *row, *v, *kept = json_object();
    const char *type, *status;

    cr_assert_eq(BATON(out, "stats", "--json"), 0, "%s", out);
    root = json_loads(out, 0, NULL);
    types = json_object_get(root, "types");
    cr_assert(json_is_object(types), "%s", out);
    json_object_foreach(types, type, row)
    {
        json_t *t = json_object();
        json_object_foreach(row, status,
                            v) if (strcmp(status, "total") && json_integer_value(v) != 0)
            json_object_set(t, status, v);
        if (json_object_size(t))
            json_object_set(kept, type, t);
        json_decref(t);
    }
    json_decref(root);
    return kept;
}

static void expect_stats_true(const char *when)
{
    json_t *want = truth(), *got = stats();
    char *w = json_dumps(want, JSON_SORT_KEYS), *g = json_dumps(got, JSON_SORT_KEYS);

    cr_expect(json_equal(want, got), "%s: stats say %s, the metas %s", when, g, w);
    free(w);
    free(g);
    json_decref(want);
    json_decref(got);
}

/* The text table's row of type says what --json says, a column each. */
static void expect_text_row(const char *type)
{
    static const char *const cols[] = {"running", "completed", "failed",     "blocked",
                                       "paused",  "cancelled", "terminated", "total"};
    char out[16384], want[256], *row;
    json_t *root, *t;
    int n = 0;

    cr_assert_eq(BATON(out, "stats", "--json"), 0, "%s", out);
    root = json_loads(out, 0, NULL);
    t = json_object_get(json_object_get(root, "types"), type);
    cr_assert(json_is_object(t), "%s", out);
    n = snprintf(want, sizeof(want), "%s", type);
    for (size_t i = 0; i < sizeof(cols) / sizeof(cols[0]); i++)
        n += snprintf(want + n, sizeof(want) - (size_t)n, " %lld",
                      (long long)json_integer_value(json_object_get(t, cols[i])));
    json_decref(root);
    cr_assert_eq(BATON(out, "stats"), 0, "%s", out);
    cr_assert(strstr(out, " cancelled terminated "), "the header: %s", out);
    cr_assert((row = strstr(out, type)) != NULL, "%s", out);
    row[strcspn(row, "\n")] = '\0';
    /* the row with its runs of spaces made one */
    for (char *r = row, *w = row;; r++) {
        if (*r == ' ' && w > row && w[-1] == ' ')
            continue;
        if (!(*w++ = *r))
            break;
    }
    cr_expect_str_eq(row, want, "the text row against --json");
}

/* Shards whose pass is done (their marker). */
static int counted_shards(void)
{
    int n = 0;

    for (int k = 0; k < bt_stack_shard_count(&stack); k++) {
        char kp[128];
        redisReply *r = bt_stack_redis(&stack, "EXISTS %s:counted",
                                       bt_stack_shard_kp(&stack, k, kp, sizeof(kp)));
        n += r && r->type == REDIS_REPLY_INTEGER && r->integer == 1;
        freeReplyObject(r);
    }
    return n;
}

static void await_status(const char *id, const char *status)
{
    char buf[32];
    bool ok;

    BT_TEST_WAIT_UNTIL(ok, !strcmp(bt_stack_status(&stack, id, buf, sizeof(buf)), status),
                       60000);
    cr_assert(ok, "%s is \"%s\", not \"%s\"", id, buf, status);
}

/* Whether id's second run (a new one) has completed. */
static bool second_run_done(const char *id)
{
    char key[256];
    redisReply *m = bt_stack_redis(&stack, "HMGET %s run status",
                                   bt_stack_key(&stack, id, "", key, sizeof(key)));
    bool done = m && m->type == REDIS_REPLY_ARRAY && m->elements == 2 &&
                m->element[0]->str && m->element[1]->str &&
                atoi(m->element[0]->str) >= 2 && !strcmp(m->element[1]->str, "completed");

    freeReplyObject(m);
    return done;
}

/* As an older baton left them: no counts, no marker, no instance counted. */
static void forget_counts(const char *id, void *arg)
{
    char key[256];

    (void)arg;
    freeReplyObject(bt_stack_redis(&stack, "HDEL %s counted",
                                   bt_stack_key(&stack, id, "", key, sizeof(key))));
}

static void as_before_counts(void)
{
    for (int k = 0; k < bt_stack_shard_count(&stack); k++) {
        char kp[128];
        bt_stack_shard_kp(&stack, k, kp, sizeof(kp));
        freeReplyObject(bt_stack_redis(&stack, "DEL %s:counts %s:counted", kp, kp));
    }
    each_id(forget_counts, NULL);
}

Test(stats, count_every_change_and_the_pass_counts_what_an_older_baton_started)
{
    pid_t worker = bt_stack_worker(&stack, "flows", NULL), scheduler;
    char out[8192], id[32];
    bool ok;

    for (size_t g = 0; g < N_GROUPS; g++)
        for (int i = 0; i < groups[g].n; i++) {
            snprintf(id, sizeof(id), "%s-%d", groups[g].name, i);
            cr_assert_eq(
                bt_stack_start_wf(&stack, groups[g].type, id, json_pack("{s:i}", "v", i)),
                0);
        }
    for (size_t g = 0; g < N_GROUPS; g++)
        for (int i = 0; i < groups[g].n; i++) {
            snprintf(id, sizeof(id), "%s-%d", groups[g].name, i);
            await_status(id, g == 0 ? "completed" : g == 1 ? "failed" : "running");
        }
    /* no scheduler has run the pass yet: counted from the metas */
    cr_assert_eq(counted_shards(), 0);
    expect_stats_true("before the pass");

    scheduler = bt_stack_scheduler(&stack);
    BT_TEST_WAIT_UNTIL(ok, counted_shards() == bt_stack_shard_count(&stack), 20000);
    cr_assert(ok, "the pass marked %d of %d shards", counted_shards(),
              bt_stack_shard_count(&stack));
    expect_stats_true("after the pass");
    /* and they are the counters': one more in them shows */
    char kp[128];
    bt_stack_kp_of(&stack, "c-0", kp, sizeof(kp));
    freeReplyObject(bt_stack_redis(&stack, "HINCRBY %s:counts ghost|running 1", kp));
    json_t *got = stats();
    cr_expect_eq(
        json_integer_value(json_object_get(json_object_get(got, "ghost"), "running")), 1,
        "stats do not read the counts");
    json_decref(got);
    freeReplyObject(bt_stack_redis(&stack, "HDEL %s:counts ghost|running", kp));

    /* every way a status changes */
    cr_assert_eq(BATON(out, "signal", "r-0", "review", "--payload", "{\"ok\":true}"), 0,
                 "%s", out);
    cr_assert_eq(BATON(out, "cancel", "r-1"), 0, "%s", out);
    cr_assert_eq(BATON(out, "terminate", "r-2", "--reason", "test"), 0, "%s", out);
    cr_assert_eq(BATON(out, "pause", "r-3"), 0, "%s", out);
    await_status("r-0", "completed");
    await_status("r-1", "completed"); /* its cleanup step ran */
    await_status("r-2", "terminated");
    await_status("r-3", "paused");
    expect_stats_true("after a signal, a cancel, a termination and a pause");
    expect_text_row("await_review");
    /* a finished id started again, and a running one replaced by an
     * instance of another type: new runs */
    cr_assert_eq(BATON(out, "start", "chain3", "--id", "c-1", "--input", "{\"v\":1}",
                       "--id-reuse", "allow"),
                 0, "%s", out);
    cr_assert_eq(BATON(out, "start", "chain3", "--id", "r-6", "--input", "{\"v\":1}",
                       "--id-conflict", "terminate-existing"),
                 0, "%s", out);
    /* a delete takes the instance out */
    cr_assert_eq(BATON(out, "delete", "f-0"), 0, "%s", out);
    await_status("f-0", "");
    BT_TEST_WAIT_UNTIL(ok, second_run_done("c-1") && second_run_done("r-6"), 60000);
    cr_assert(ok, "the new runs did not complete");
    expect_stats_true("after new runs and a delete");

    /* as an older baton left it: counted from the metas again, a change
     * meanwhile is not counted twice, and the next scheduler's pass counts
     * every instance once */
    cr_assert_eq(bt_test_stop(scheduler, BT_TEST_STOP_MS), 0);
    as_before_counts();
    expect_stats_true("with no counts");
    cr_assert_eq(BATON(out, "signal", "r-4", "review", "--payload", "{}"), 0, "%s", out);
    await_status("r-4", "completed");
    scheduler = bt_stack_scheduler(&stack);
    BT_TEST_WAIT_UNTIL(ok, counted_shards() == bt_stack_shard_count(&stack), 20000);
    cr_assert(ok, "the second pass marked %d shards", counted_shards());
    expect_stats_true("after the second pass");
    cr_assert_eq(BATON(out, "signal", "r-5", "review", "--payload", "{}"), 0, "%s", out);
    await_status("r-5", "completed");
    expect_stats_true("after a change counted by the commit");
    bt_test_stop(scheduler, BT_TEST_STOP_MS);
    bt_test_stop(worker, BT_TEST_STOP_MS);
}
