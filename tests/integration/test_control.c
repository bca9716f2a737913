/* An operator's controls through the CLI against a real stack (redis-server,
 * the embedded Kafka cluster, baton-worker, baton-scheduler): pause across a
 * durable sleep that would have fired (it does not; after resume it fires
 * with the rest of its time), a signal kept while paused, pause and resume
 * by query, reset of a failed instance to its failed step (the step before
 * it is not run again), and the CLI's refusals. */
#define _DEFAULT_SOURCE     /* timegm */
#define _XOPEN_SOURCE   700 /* strptime */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "stack.h"

static struct bt_stack stack;

static void setup(void)
{
    cr_assert_eq(bt_stack_start(&stack, NULL), 0, "cannot start the stack");
    cr_assert_gt(bt_stack_worker(&stack, "timing", NULL), 0);
    cr_assert_gt(bt_stack_scheduler(&stack), 0);
}

static void teardown(void)
{
    bt_stack_stop(&stack);
}

static bool has_status(const char *id, const char *want)
{
    char buf[64];
    return !strcmp(bt_stack_status(&stack, id, buf, sizeof(buf)), want);
}

static void await_status(const char *id, const char *want, int wait_ms)
{
    bool ok;
    char buf[64];

    BT_TEST_WAIT_UNTIL(ok, has_status(id, want), wait_ms);
    cr_assert(ok, "%s: status %s, expected %s", id,
              bt_stack_status(&stack, id, buf, sizeof(buf)), want);
}

/* The records of `baton history ID --json [--run N]` whose ev is ev (NULL:
 * all), through the CLI as a user reads them; none before it exists. */
static json_t *records(const char *id, const char *run, const char *ev)
{
    static char out[1 << 20];
    json_t *all = json_array();
    int rc = run ? BT_STACK_BATON(&stack, out, "history", id, "--json", "--run", run)
                 : BT_STACK_BATON(&stack, out, "history", id, "--json");

    if (rc)
        return all;
    for (char *line = strtok(out, "\n"); line; line = strtok(NULL, "\n")) {
        json_t *rec = json_loads(line, 0, NULL);
        const char *name = json_string_value(json_object_get(rec, "ev"));
        if (rec && (!ev || (name && !strcmp(name, ev))))
            json_array_append(all, rec);
        json_decref(rec);
    }
    return all;
}

struct statuses {
    const char *id;
    char *buf;
    size_t n;
};

static bool add_status(const json_t *msg, void *arg)
{
    struct statuses *s = arg;
    size_t len = strlen(s->buf);

    if (!strcmp(json_string_value(json_object_get(msg, "id")), s->id))
        snprintf(s->buf + len, s->n - len, "%s ",
                 json_string_value(json_object_get(msg, "status")));
    return false; /* read on */
}

/* The statuses of id's results on the results topic, in order, into buf. */
static void results_of(const char *id, char *buf, size_t n)
{
    struct statuses s = {id, buf, n};

    buf[0] = '\0';
    bt_stack_read_all(&stack, "results", 5000, add_status, &s);
}

/* A record's time: `--json` writes it as RFC 3339 with milliseconds. */
static int64_t ms_of(const json_t *rec)
{
    const char *ts = json_string_value(json_object_get(rec, "ts"));
    struct tm tm = {0};
    const char *rest = ts ? strptime(ts, "%Y-%m-%dT%H:%M:%S", &tm) : NULL;

    cr_assert(rest && *rest == '.', "record time %s", ts ? ts : "(none)");
    return (int64_t)timegm(&tm) * 1000 + strtol(rest + 1, NULL, 10);
}

static int64_t ts_of(const char *id, const char *ev)
{
    json_t *r = records(id, NULL, ev);
    int64_t ts = json_array_size(r) ? ms_of(json_array_get(r, 0)) : 0;

    cr_assert_eq(json_array_size(r), 1, "%s: %zu %s records", id, json_array_size(r), ev);
    json_decref(r);
    return ts;
}

static size_t count(const char *id, const char *ev)
{
    json_t *r = records(id, NULL, ev);
    size_t n = json_array_size(r);

    json_decref(r);
    return n;
}

Test(control, a_paused_sleep_does_not_fire_and_gets_the_rest_of_its_time_on_resume,
     .init = setup, .fini = teardown, .timeout = 90)
{
    char out[4096];
    bool ok;

    cr_assert_eq(
        bt_stack_start_wf(&stack, "sleeper", "nap", json_pack("{s:i}", "ms", 2500)), 0);
    cr_assert_eq(
        bt_stack_start_wf(&stack, "wait_review", "rev", json_pack("{s:i}", "ms", 2500)),
        0);
    BT_TEST_WAIT_UNTIL(ok, count("nap", "sleep_started") && count("rev", "signal_wait"),
                       20000);
    cr_assert_eq(BT_STACK_BATON(&stack, out, "pause", "nap", "--reason", "maintenance"),
                 0, "%s", out);
    cr_assert_eq(BT_STACK_BATON(&stack, out, "pause", "rev"), 0, "%s", out);
    await_status("nap", "paused", 20000);
    await_status("rev", "paused", 20000);
    cr_assert_neq(BT_STACK_BATON(&stack, out, "pause", "nap"), 0, "paused twice");
    cr_assert(strstr(out, "paused"), "%s", out);
    /* visible where a user looks */
    cr_assert_eq(BT_STACK_BATON(&stack, out, "describe", "nap", "--json"), 0, "%s", out);
    cr_assert(strstr(out, "\"paused_since\":\"20"), "%s", out);
    cr_assert_eq(BT_STACK_BATON(&stack, out, "list", "--status", "paused"), 0, "%s", out);
    cr_assert(strstr(out, "nap") && strstr(out, "rev"), "%s", out);
    cr_assert_eq(BT_STACK_BATON(&stack, out, "stats", "--json"), 0, "%s", out);
    json_t *stats = json_loads(out, 0, NULL), *types = json_object_get(stats, "types");
    cr_assert_eq(
        json_integer_value(json_object_get(json_object_get(types, "sleeper"), "paused")),
        1, "%s", out);
    /* their timers are out of the set */
    cr_assert_eq(
        json_integer_value(json_object_get(json_object_get(stats, "timers"), "pending")),
        0, "%s", out);
    json_decref(stats);

    /* a signal while paused is kept, the code does not run on it yet */
    cr_assert_eq(BT_STACK_BATON(&stack, out, "signal", "rev", "review", "--payload",
                                "{\"ok\":true}"),
                 0, "%s", out);
    BT_TEST_WAIT_UNTIL(ok, count("rev", "signal_received") == 1, 20000);
    cr_assert(ok);

    /* both would have ended by now: sleep and signal timeout were 2.5 s */
    int64_t paused = ts_of("nap", "paused");
    bt_test_sleep_ms(3500); /* a non-event is seen by waiting past its time */
    cr_assert(has_status("nap", "paused") && has_status("rev", "paused"));
    cr_assert_eq(count("nap", "timer_fired"), 0, "the paused sleep fired");
    cr_assert_eq(count("rev", "timer_fired"), 0, "the paused signal timeout fired");

    cr_assert_eq(BT_STACK_BATON(&stack, out, "resume", "nap"), 0, "%s", out);
    cr_assert_eq(BT_STACK_BATON(&stack, out, "resume", "rev"), 0, "%s", out);
    await_status("nap", "completed", 30000);
    await_status("rev", "completed", 30000);

    /* the sleep fired after the resume, at its due moved by the pause */
    json_t *started = records("nap", NULL, "sleep_started");
    json_t *resumed = records("nap", NULL, "resumed");
    int64_t due = json_integer_value(json_object_get(json_array_get(started, 0), "due"));
    int64_t paused_ms =
        json_integer_value(json_object_get(json_array_get(resumed, 0), "paused_ms"));
    int64_t resumed_ts = ms_of(json_array_get(resumed, 0));
    int64_t fired = ts_of("nap", "timer_fired");
    cr_log_info("due %lld, paused at %lld for %lld ms, fired %lld ms after the resume",
                (long long)due, (long long)paused, (long long)paused_ms,
                (long long)(fired - resumed_ts));
    cr_assert_gt(paused_ms, 3000);
    cr_assert_geq(fired, due + paused_ms, "fired before its moved due");
    cr_assert_geq(fired - resumed_ts, due - paused - 50, "not the rest of its time");
    cr_assert_lt(fired - resumed_ts, due - paused + 5000, "fired late after the resume");
    json_decref(started);
    json_decref(resumed);

    /* the review signal kept while paused took branch A */
    struct bt_stack_results r;
    bt_stack_results(&stack, &r, 2, 60000); /* a fresh reader joins its group first */
    json_t *res = json_object_get(json_object_get(r.by_id, "rev"), "result");
    cr_assert_str_eq(json_string_value(json_object_get(res, "branch")), "A");
    json_decref(r.by_id);

    json_t *p = records("nap", NULL, "paused");
    cr_assert_str_eq(json_string_value(json_object_get(json_array_get(p, 0), "reason")),
                     "maintenance");
    cr_assert(
        strstr(json_string_value(json_object_get(json_array_get(p, 0), "by")), "@"));
    json_decref(p);
    cr_assert_neq(BT_STACK_BATON(&stack, out, "resume", "nap"), 0,
                  "resumed a finished one");
}

Test(control, pause_and_resume_by_query_act_on_every_match, .init = setup,
     .fini = teardown, .timeout = 90)
{
    char out[4096], id[32];
    bool ok;
    enum { N = 20 };

    for (int i = 0; i < N; i++) {
        snprintf(id, sizeof(id), "q-%d", i);
        cr_assert_eq(
            bt_stack_start_wf(&stack, "sleeper", id, json_pack("{s:i}", "ms", 1500)), 0);
    }
    BT_TEST_WAIT_UNTIL(ok, has_status("q-0", "running") && has_status("q-19", "running"),
                       20000);
    cr_assert_eq(BT_STACK_BATON(&stack, out, "pause", "--query", "type=sleeper", "--yes"),
                 0, "%s", out);
    cr_assert(strstr(out, "pause: 20 instances"), "%s", out);
    for (int i = 0; i < N; i++) {
        snprintf(id, sizeof(id), "q-%d", i);
        await_status(id, "paused", 20000);
    }
    cr_assert_eq(
        BT_STACK_BATON(&stack, out, "resume", "--query", "status=paused", "--yes"), 0,
        "%s", out);
    struct bt_stack_results r;
    bt_stack_results(&stack, &r, N, 30000);
    cr_assert_eq(r.distinct, N);
    cr_assert_eq(r.raw, N, "one result each");
    json_decref(r.by_id);
}

Test(control, reset_of_a_failed_instance_to_its_failed_step_completes_it, .init = setup,
     .fini = teardown, .timeout = 90)
{
    char out[4096], marker[400], gate[400];
    json_t *input;

    snprintf(marker, sizeof(marker), "%s/first.marker", stack.redis.dir);
    snprintf(gate, sizeof(gate), "%s/gate", stack.redis.dir);
    input = json_pack("{s:i, s:s, s:s}", "first_ms", 0, "marker", marker, "gate", gate);
    cr_assert_eq(bt_stack_start_wf(&stack, "gated", "g-1", input), 0);
    await_status("g-1", "failed", 30000);

    /* refused here, with a reason, before anything is sent */
    cr_assert_eq(BT_STACK_BATON(&stack, out, "reset", "g-1"), 2, "%s", out);
    cr_assert_eq(BT_STACK_BATON(&stack, out, "reset", "g-1", "--to", "7"), 1, "%s", out);
    cr_assert(strstr(out, "no step with this seq"), "%s", out);
    cr_assert_eq(BT_STACK_BATON(&stack, out, "reset", "nobody", "--to-last-failure"), 1,
                 "%s", out);

    FILE *f = fopen(gate, "w"); /* the fault is fixed */
    cr_assert(f);
    fclose(f);
    cr_assert_eq(BT_STACK_BATON(&stack, out, "reset", "g-1", "--to-last-failure",
                                "--reason", "gate opened"),
                 0, "%s", out);
    await_status("g-1", "completed", 30000);

    /* the first step's result was kept: it ran once */
    cr_assert_eq(bt_test_count_lines_with(marker, "attempt"), 1);
    /* the old run is kept and names the new one; the new one says where from */
    json_t *old = records("g-1", "1", "reset");
    cr_assert_eq(json_array_size(old), 1);
    cr_assert_eq(json_integer_value(json_object_get(json_array_get(old, 0), "next_run")),
                 2);
    cr_assert_eq(json_integer_value(json_object_get(json_array_get(old, 0), "seq")), 1);
    json_t *started = records("g-1", NULL, "started");
    json_t *from = json_object_get(json_array_get(started, 0), "reset_from");
    cr_assert_eq(json_integer_value(json_object_get(from, "run")), 1);
    cr_assert_eq(json_integer_value(json_object_get(from, "seq")), 1);
    json_decref(old);
    json_decref(started);

    /* two results: the failed run's, then the new run's */
    char seen[64];
    bool ok;
    BT_TEST_WAIT_UNTIL(
        ok, (results_of("g-1", seen, sizeof(seen)), !strcmp(seen, "failed completed ")),
        20000);
    cr_assert(ok, "results of g-1: %s", seen);
}
