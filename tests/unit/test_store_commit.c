/* The arguments of one commit.lua call as store_commit.c lays them out
 * (bt__store_commit_args), without Redis: the keys, the fixed arguments at
 * the positions commit_proto.h names, then each section's count and items in
 * its order, and nothing after the last. The tests walk the sections as the
 * script does (a count, then count * width items), so a section out of place
 * or of the wrong width shows up as the wrong text where one is expected. */
#define _GNU_SOURCE /* strdup */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "argbuf.h"
#include "commit_proto.h"
#include "history.h"
#include "instance.h"
#include "instances.h"
#include "store_int.h"

static char kp[] = "c", rule[] = "short=1s";
static char *rules[] = {rule};
/* no connection: the arguments need the key prefix and retention alone */
static const struct bt_store store = {
    .kp = kp, .retention_ms = 5000, .retention_types = rules, .n_retention_types = 1};

static struct bt_argbuf args;
static int nkeys;

static void setup(void)
{
    bt_argbuf_init(&args);
}

static void teardown(void)
{
    bt_argbuf_release(&args);
}

TestSuite(store_commit, .init = setup, .fini = teardown);

static void build(const struct bt_instance *inst, int64_t now_ms)
{
    bt_argbuf_reset(&args);
    nkeys = bt__store_commit_args(&store, inst, now_ms, &args);
    bt_argbuf_resolve(&args);
}

/* Argument i as a string (static buffer: one at a time). */
static const char *arg(size_t i)
{
    static char text[512];

    cr_assert_lt(i, args.n, "argument %zu of %zu", i, args.n);
    snprintf(text, sizeof(text), "%.*s", (int)args.lens[i], args.argv[i]);
    return text;
}

static void expect_arg(size_t i, const char *want)
{
    cr_expect_str_eq(arg(i), want, "argument %zu", i);
}

/* Where section s's count is: each section before it is its count and
 * count * width items. */
static size_t section(enum bt_commit_section s)
{
    size_t i = (size_t)nkeys + BT_CA__FIXED;

    for (int k = 0; k < (int)s; k++)
        i += 1 + (size_t)atoll(arg(i)) * (size_t)bt_commit_section_width[k];
    return i;
}

/* Section s holds n items; returns where its first item is. */
static size_t expect_section(enum bt_commit_section s, int n)
{
    size_t i = section(s);

    cr_expect_eq(atoll(arg(i)), n, "section %d holds %s items, want %d", (int)s, arg(i),
                 n);
    return i + 1;
}

/* The last section ends the arguments. */
static void expect_end(void)
{
    size_t last = section(BT_CS__COUNT - 1);
    size_t items =
        (size_t)atoll(arg(last)) * (size_t)bt_commit_section_width[BT_CS__COUNT - 1];

    cr_expect_eq(last + 1 + items, args.n, "arguments after the last section");
}

/* The fixed keys of id, in commit_proto.h's order. */
static void expect_fixed_keys(const char *id)
{
    char key[64];

    snprintf(key, sizeof(key), "c:{%s}", id);
    expect_arg(BT_CK_META, key);
    snprintf(key, sizeof(key), "c:{%s}:journal", id);
    expect_arg(BT_CK_JOURNAL, key);
    snprintf(key, sizeof(key), "c:{%s}:h", id);
    expect_arg(BT_CK_HISTORY, key);
    snprintf(key, sizeof(key), "c:{%s}:outbox", id);
    expect_arg(BT_CK_OUTBOX, key);
    expect_arg(BT_CK_OUTBOX_INDEX, "c:outbox");
    expect_arg(BT_CK_TIMERS, "c:timers");
}

static void expect_fixed_arg(enum bt_commit_arg k, const char *want)
{
    expect_arg((size_t)nkeys + k, want);
}

/* The meta section's pairs from i on, name then value, NULL-ended. */
static void expect_pairs(size_t i, const char *const *pairs)
{
    for (; *pairs; pairs++, i++)
        expect_arg(i, *pairs);
}

static void record(struct bt_instance *inst, const char *text)
{
    cr_assert_eq(bt_delta_history(&inst->delta, strdup(text)), 0);
}

/* inst as a worker holds it after commit ver. */
static void committed(struct bt_instance *inst, int64_t ver)
{
    bt_instance_committed(inst, ver);
    cr_assert_not(bt_instance_dirty(inst));
}

Test(store_commit, a_start_writes_every_key_the_meta_and_each_section_in_order)
{
    static const char *const meta[] = {
        "status", "running", "type", "flow", "input", "{\"n\":1}", "created", "1000",
        /* counted from its start in <kp>:counts (commit.lua) */
        "counted", "1", "run", "1", "base", "0", "result", "", "error", "", "signals", "",
        "cancel", "0", NULL};
    struct bt_instance *inst = bt_test_instance_new("s1");
    struct bt_entry *e = bt_instance_append(inst, 'a', "step");
    char *entry, *unpacked;
    size_t i;

    cr_assert_not_null(e);
    record(inst, "{\"ev\":\"started\",\"workflow\":\"s1\"}");
    cr_assert_eq(bt_delta_command(&inst->delta, strdup("t|0|1"), strdup("tasks.q"),
                                  strdup("s1"), strdup("{}"), 2),
                 0);
    cr_assert_eq(bt_delta_timer(&inst->delta, true, strdup("a|0|1|s1"), 31000), 0);
    build(inst, 1000);

    cr_expect_eq(nkeys, BT_CK__FIXED + 1, "the new status's index, no old one");
    expect_fixed_keys("s1");
    expect_arg(BT_CK__FIXED, "c:idx:running");

    expect_fixed_arg(BT_CA_VER, "0");
    expect_fixed_arg(BT_CA_ID, "s1");
    expect_fixed_arg(BT_CA_NOW, "1000");
    expect_fixed_arg(BT_CA_RESET, "-1");
    expect_fixed_arg(BT_CA_JLEN, "1");
    expect_fixed_arg(BT_CA_HLEN, "1");
    expect_fixed_arg(BT_CA_KPOS, "cluster/events/0");
    expect_fixed_arg(BT_CA_KOFF, "7");
    expect_fixed_arg(BT_CA_KTS, "990");

    i = expect_section(BT_CS_META, 11);
    expect_pairs(i, meta);

    i = expect_section(BT_CS_JOURNAL, 1);
    expect_arg(i, "0");
    cr_assert_not_null(entry = bt_entry_encode(e));
    expect_arg(i + 1, entry);
    free(entry);

    i = expect_section(BT_CS_HISTORY, 1);
    cr_assert_not_null(unpacked = bt_history_unpack(args.argv[i], args.lens[i]));
    cr_expect_str_eq(unpacked, "{\"ev\":\"started\",\"workflow\":\"s1\"}");
    free(unpacked);

    i = expect_section(BT_CS_OUTBOX, 1);
    expect_arg(i, "t|0|1");
    expect_arg(i + 1, "tasks.q\ns1\n{}");

    i = expect_section(BT_CS_TIMERS_ADD, 1);
    expect_arg(i, "31000");
    expect_arg(i + 1, "a|0|1|s1");

    expect_section(BT_CS_TIMERS_DEL, 0);
    expect_section(BT_CS_RUNS_ENDED, 0);
    expect_end();
    bt_instance_destroy(inst);
}

Test(store_commit, a_step_sends_only_what_changed)
{
    struct bt_instance *inst = bt_test_instance_new("s2");
    size_t i;

    cr_assert_not_null(bt_instance_append(inst, 'a', "step"));
    record(inst, "{\"ev\":\"started\"}");
    committed(inst, 1);
    cr_assert_not_null(bt_instance_append(inst, 't', "sleep"));
    record(inst, "{\"ev\":\"timer_started\"}");
    cr_assert_eq(bt_delta_timer(&inst->delta, false, strdup("a|0|1|s2"), 0), 0);
    build(inst, 2000);

    cr_expect_eq(nkeys, BT_CK__FIXED, "no index key: the status stays");
    expect_fixed_keys("s2");
    expect_fixed_arg(BT_CA_VER, "1");
    expect_fixed_arg(BT_CA_JLEN, "2");
    expect_fixed_arg(BT_CA_HLEN, "2");
    /* Redis holds the event position already: left out */
    expect_fixed_arg(BT_CA_KPOS, "");
    expect_fixed_arg(BT_CA_KOFF, "");
    expect_fixed_arg(BT_CA_KTS, "");

    expect_section(BT_CS_META, 0);
    i = expect_section(BT_CS_JOURNAL, 1);
    expect_arg(i, "1");
    expect_section(BT_CS_HISTORY, 1);
    expect_section(BT_CS_OUTBOX, 0);
    expect_section(BT_CS_TIMERS_ADD, 0);
    i = expect_section(BT_CS_TIMERS_DEL, 1);
    expect_arg(i, "a|0|1|s2");
    expect_section(BT_CS_RUNS_ENDED, 0);
    expect_end();

    /* a new event on the same partition: its offset and time only */
    inst->koff = 8;
    inst->kts = 1990;
    inst->koff_stored = false;
    build(inst, 2000);
    expect_fixed_arg(BT_CA_KPOS, "");
    expect_fixed_arg(BT_CA_KOFF, "8");
    expect_fixed_arg(BT_CA_KTS, "1990");
    bt_instance_destroy(inst);
}

Test(store_commit, finishing_names_both_indexes_and_ends_the_run_at_its_types_retention)
{
    static const char *const meta[] = {"status", "completed", "result",  "{\"ok\":true}",
                                       "error",  "",          "signals", "",
                                       "cancel", "0",         NULL};
    struct bt_instance *inst = bt_test_instance_new("s3");
    size_t i;

    free(inst->type);
    inst->type = strdup("short"); /* retention 1 s by its rule */
    committed(inst, 4);
    inst->status = BT_STATUS_COMPLETED;
    inst->result = json_pack("{s:b}", "ok", 1);
    inst->delta.meta_dirty = true;
    record(inst, "{\"ev\":\"completed\"}");
    build(inst, 5000);

    cr_expect_eq(nkeys, BT_CK__FIXED + 2);
    expect_arg(BT_CK__FIXED, "c:idx:completed");
    expect_arg(BT_CK__FIXED + 1, "c:idx:running");
    expect_fixed_arg(BT_CA_VER, "4");

    i = expect_section(BT_CS_META, 5);
    expect_pairs(i, meta);
    expect_section(BT_CS_JOURNAL, 0);
    expect_section(BT_CS_HISTORY, 1);
    i = expect_section(BT_CS_RUNS_ENDED, 1);
    expect_arg(i, "6000");
    expect_arg(i + 1, "1|s3");
    expect_end();
    bt_instance_destroy(inst);
}

Test(store_commit, continue_as_new_names_the_old_runs_list_and_ends_that_run)
{
    static const char *const meta[] = {"run",       "2",    "base", "1", "input",
                                       "{\"n\":1}", "type", "flow", NULL};
    struct bt_instance *inst = bt_test_instance_new("s4");
    size_t i;

    cr_assert_not_null(bt_instance_append(inst, 'a', "step"));
    committed(inst, 2);
    /* the old run's last two records, then the new run's first */
    record(inst, "{\"ev\":\"completed\"}");
    record(inst, "{\"ev\":\"continued_as_new\"}");
    record(inst, "{\"ev\":\"started\"}");
    inst->delta.reset = true;
    inst->delta.reset_history = 2;
    inst->run = 2;
    inst->base = 1;
    build(inst, 3000);

    cr_expect_eq(nkeys, BT_CK__FIXED + 1, "the old run's list last, no index");
    expect_arg(BT_CK__FIXED, "c:{s4}:h:1");
    expect_fixed_arg(BT_CA_RESET, "2");
    expect_fixed_arg(BT_CA_HLEN, "1");

    i = expect_section(BT_CS_META, 4);
    expect_pairs(i, meta);
    expect_section(BT_CS_HISTORY, 3);
    i = expect_section(BT_CS_RUNS_ENDED, 1);
    expect_arg(i, "8000");
    expect_arg(i + 1, "1|s4");
    expect_end();
    bt_instance_destroy(inst);
}
