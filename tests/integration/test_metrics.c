/* The /metrics endpoints of baton-worker and baton-scheduler after a real
 * run: the counters match what happened, and the text is valid exposition
 * format (checked line by line here, and by promtool when it is installed). */
#include <criterion/criterion.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "err.h"
#include "metrics.h"
#include "scrape.h"
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

/* Fetches and parses /metrics on port into e; asserts it parses. */
static void scrape(int port, struct bt_test_expo *e, char **text)
{
    char why[512];
    int status;

    *text = bt_test_http_get(port, "/metrics", &status);
    cr_assert_not_null(*text, "no answer on port %d", port);
    cr_assert_eq(status, 200);
    cr_assert(bt_test_expo_parse(*text, e, why, sizeof(why)), "port %d: %s", port, why);
}

/* promtool check metrics, required in CI (scripts/bootstrap fetches it). */
static void promtool_accepts(const char *text)
{
    int rc = bt_test_promtool(text);

    if (rc < 0) {
        cr_assert(!getenv("CI"),
                  "CI must check /metrics with promtool: run scripts/bootstrap");
        cr_log_info(
            "promtool not installed: exposition checked by this test's reader only");
        return;
    }
    cr_assert_eq(rc, 0, "promtool check metrics rejected the output (status %d)", rc);
}

static bool settled(int port, struct bt_test_expo *e)
{
    char *text;

    scrape(port, e, &text);
    free(text);
    return bt_test_expo_count(e, "baton_instances_finished_total",
                              "workflow=\"chain3\",status=\"completed\"") == 50 &&
           bt_test_expo_count(e, "baton_instances_finished_total",
                              "workflow=\"always_fails\",status=\"failed\"") == 3 &&
           bt_test_expo_count(e, "baton_instances_finished_total",
                              "workflow=\"sleeper\",status=\"completed\"") == 5 &&
           bt_test_expo_count(e, "baton_dead_letters_total", "role=\"workflow\"") >= 1 &&
           bt_test_expo_count(e, "baton_events_applied_total", "") >= 58 + 153 + 5;
}

Test(metrics, counters_match_the_run_and_the_exposition_is_valid, .init = setup,
     .fini = teardown, .timeout = 120)
{
    static struct bt_test_expo e;
    struct bt_stack_results r;
    char wport[16], sched_env[64], *text, timing[512];
    int worker_port, sched_port, status;
    pid_t worker, sched;
    bool ok;

    cr_assert_eq(bt_test_free_ports(&worker_port, &sched_port), 0);
    snprintf(wport, sizeof(wport), "%d", worker_port);
    snprintf(timing, sizeof(timing), "%s/timing.so", BT_PLUGIN_DIR);
    worker = bt_stack_worker(
        &stack, "flows",
        /* the Kafka path: the activity role's own round trips are counted */
        (const char *const[]){"--plugin", timing, "--metrics-port", wport, "--eager=0",
                              NULL});
    cr_assert_gt(worker, 0);
    /* the scheduler takes its port from the environment, as an operator may */
    snprintf(sched_env, sizeof(sched_env), "BATON_METRICS_PORT=%d", sched_port);
    bt_stack_setenv(&stack, 0, "%s", sched_env);
    sched = bt_stack_scheduler(&stack);
    bt_stack_setenv(&stack, 0, NULL);
    cr_assert_gt(sched, 0);

    BT_TEST_WAIT_UNTIL(
        ok, (text = bt_test_http_get(worker_port, "/metrics", &status)) != NULL, 10000);
    cr_assert(ok, "the worker's /metrics never answered");
    free(text);
    for (int i = 0; i < 50; i++) {
        char id[32];
        snprintf(id, sizeof(id), "m-%d", i);
        cr_assert_eq(bt_stack_start_wf(&stack, "chain3", id, json_pack("{s:i}", "v", i)),
                     0);
    }
    for (int i = 0; i < 3; i++) {
        char id[32];
        snprintf(id, sizeof(id), "f-%d", i);
        cr_assert_eq(
            bt_stack_start_wf(&stack, "always_fails", id, json_pack("{s:i}", "v", i)), 0);
    }
    for (int i = 0; i < 5; i++) {
        char id[32];
        snprintf(id, sizeof(id), "s-%d", i);
        cr_assert_eq(
            bt_stack_start_wf(&stack, "sleeper", id, json_pack("{s:i}", "ms", 200)), 0);
    }
    cr_assert_eq(bt_stack_start_wf(&stack, "no_such_type", "x-1", json_object()), 0);
    bt_stack_results(&stack, &r, 58, 60000);
    cr_assert_eq(r.distinct, 58, "results: %d of 58", r.distinct);
    json_decref(r.by_id);

    /* instance counters move at each commit, the batch counters (events, dead
     * letters) before the next poll: wait for both */
    BT_TEST_WAIT_UNTIL(ok, settled(worker_port, &e), 10000);
    cr_assert(ok, "the worker's counters never reached the run's totals");
    for (int t = 0; t < 3; t++) {
        const char *type = (const char *[]){"chain3", "always_fails", "sleeper"}[t];
        char wf[64], st[96];
        double ended = 0;
        snprintf(wf, sizeof(wf), "workflow=\"%s\"", type);
        for (int k = 0; k < 4; k++) {
            snprintf(
                st, sizeof(st), "%s,status=\"%s\"", wf,
                (const char *[]){"completed", "failed", "cancelled", "terminated"}[k]);
            ended += bt_test_expo_count(&e, "baton_instances_finished_total", st);
        }
        cr_assert_eq(bt_test_expo_value(&e, "baton_instances_started_total", wf),
                     t == 0   ? 50
                     : t == 1 ? 3
                              : 5,
                     "%s started", type);
        /* started = completed + failed + ... + blocked + in flight */
        cr_assert_eq(bt_test_expo_value(&e, "baton_instances_started_total", wf),
                     ended + bt_test_expo_count(&e, "baton_instances_blocked", wf) +
                         bt_test_expo_value(&e, "baton_instances_in_flight", wf),
                     "%s: started must equal finished + blocked + in flight", type);
        cr_assert_eq(bt_test_expo_value(&e, "baton_instances_in_flight", wf), 0);
    }
    /* 3 steps of each chain3 and 1 of each always_fails, each run once */
    cr_assert_eq(bt_test_expo_value(&e, "baton_activity_attempts_total",
                                    "activity=\"inc\",outcome=\"completed\""),
                 153);
    cr_assert_eq(bt_test_expo_count(&e, "baton_activity_attempts_total",
                                    "activity=\"inc\",outcome=\"failed\""),
                 0);
    cr_assert_eq(bt_test_expo_value(&e, "baton_activity_duration_seconds_count",
                                    "activity=\"inc\""),
                 153);
    cr_assert_eq(bt_test_expo_value(&e, "baton_activity_schedule_to_start_seconds_count",
                                    "activity=\"inc\""),
                 153);
    cr_assert_eq(bt_test_expo_value(&e, "baton_events_applied_total", ""), 58 + 153 + 5);
    cr_assert_geq(bt_test_expo_value(&e, "baton_dead_letters_total", "role=\"workflow\""),
                  1);
    cr_assert_gt(
        bt_test_expo_value(&e, "baton_redis_round_trips_total", "role=\"workflow\""), 0);
    cr_assert_gt(
        bt_test_expo_value(&e, "baton_redis_round_trips_total", "role=\"activity\""), 0);
    cr_assert(
        !isnan(bt_test_expo_value(&e, "baton_kafka_consumer_lag", "role=\"workflow\"")));
    /* each sleeper's timer, measured where its instance saw it */
    cr_assert_eq(bt_test_expo_value(&e, "baton_timer_applied_lateness_seconds_count",
                                    "kind=\"sleep\""),
                 5);
    cr_assert(!isnan(bt_test_expo_value(&e, "process_start_time_seconds", "")));
    cr_assert_eq(bt_test_expo_value(&e, "baton_build_info", "version=\"" BT_VERSION "\""),
                 1);
    scrape(worker_port, &e, &text);
    promtool_accepts(text);
    free(text);

    /* the scheduler fired the 5 sleeps */
    BT_TEST_WAIT_UNTIL(ok,
                       (scrape(sched_port, &e, &text), free(text),
                        bt_test_expo_value(&e, "baton_timers_fired_total", "") >= 5),
                       10000);
    cr_assert(ok, "the scheduler's fired count never reached 5");
    cr_assert_geq(bt_test_expo_value(&e, "baton_timer_lateness_seconds_count", ""), 5);
    cr_assert(!isnan(bt_test_expo_value(&e, "baton_timers_pending", "")));
    cr_assert(!isnan(bt_test_expo_value(&e, "baton_outbox_resent_total", "")));
    cr_assert_gt(
        bt_test_expo_value(&e, "baton_redis_round_trips_total", "role=\"scheduler\""), 0);
    scrape(sched_port, &e, &text);
    promtool_accepts(text);
    free(text);

    text = bt_test_http_get(worker_port, "/elsewhere", &status);
    free(text);
    cr_assert_eq(status, 404);
    cr_assert_eq(bt_test_stop(worker, BT_TEST_STOP_MS), 0,
                 "the worker must exit cleanly on SIGTERM");
    cr_assert_eq(bt_test_stop(sched, BT_TEST_STOP_MS), 0,
                 "the scheduler must exit cleanly on SIGTERM");
}

/* ---- the registry on its own, in this process ---- */

static struct bt_metric *hammered, *hammered_h;

static void *hammer(void *arg)
{
    const char *names[] = {"a", "b", "c"};

    (void)arg;
    for (int i = 0; i < 100000; i++) {
        bt_metrics_add(bt_metrics_series(hammered, names[i % 3], "ok"), 1);
        bt_metrics_observe(bt_metrics_series(hammered_h, names[i % 3]), (i % 10) / 10.0);
    }
    return NULL;
}

Test(metrics, counts_exactly_from_many_threads)
{
    static struct bt_test_expo e;
    struct bt_metrics *m = bt_metrics_new();
    pthread_t threads[4];
    char why[256], *text;
    size_t len;

    hammered = bt_metrics_counter(m, "t_ops_total", "Operations.", "name,result");
    hammered_h = bt_metrics_histogram(m, "t_size", "Sizes.", "name",
                                      (const double[]){0.25, 0.5, 0.75}, 3);
    for (int i = 0; i < 4; i++)
        cr_assert_eq(pthread_create(&threads[i], NULL, hammer, NULL), 0);
    for (int i = 0; i < 4; i++)
        pthread_join(threads[i], NULL);
    cr_assert_not_null(text = bt_metrics_render(m, &len));
    cr_assert_eq(strlen(text), len);
    cr_assert(bt_test_expo_parse(text, &e, why, sizeof(why)), "%s", why);
    cr_assert_eq(bt_test_expo_value(&e, "t_ops_total", "name=\"a\",result=\"ok\""),
                 4 * 33334);
    cr_assert_eq(bt_test_expo_value(&e, "t_ops_total", "name=\"b\",result=\"ok\""),
                 4 * 33333);
    cr_assert_eq(bt_test_expo_value(&e, "t_size_count", "name=\"c\""), 4 * 33333);
    /* (i % 10) / 10 <= 0.25 for 0, 0.1, 0.2: 3 of every 10 */
    cr_assert_eq(bt_test_expo_value(&e, "t_size_count", "name=\"a\"") +
                     bt_test_expo_value(&e, "t_size_count", "name=\"b\"") +
                     bt_test_expo_value(&e, "t_size_count", "name=\"c\""),
                 400000);
    free(text);
    bt_metrics_destroy(m);
}

Test(metrics, escapes_label_values_and_shares_families_by_name)
{
    static struct bt_test_expo e;
    struct bt_metrics *m = bt_metrics_new();
    struct bt_metric *f = bt_metrics_gauge(m, "t_odd", "Help with \\ and more.", "v");
    char why[256], *text;
    size_t len;

    cr_assert_eq(bt_metrics_gauge(m, "t_odd", "Other help.", "v"), f,
                 "a second registration of the same family returns it");
    bt_metrics_set(bt_metrics_series(f, "quote\" back\\slash\nnewline"), -7);
    cr_assert_eq(bt_metrics_value(bt_metrics_series(f, "quote\" back\\slash\nnewline")),
                 -7);
    cr_assert_null(bt_metrics_series(f, NULL));
    /* NULL anywhere is a no-op */
    bt_metrics_add(bt_metrics_series(bt_metrics_counter(NULL, "x_total", "X.", NULL)), 1);
    bt_metrics_observe(NULL, 1.0);
    bt_metrics_destroy(NULL);
    text = bt_metrics_render(m, &len);
    cr_assert(strstr(text, "t_odd{v=\"quote\\\" back\\\\slash\\nnewline\"} -7\n"), "%s",
              text);
    cr_assert(strstr(text, "# HELP t_odd Help with \\\\ and more.\n"), "%s", text);
    cr_assert(bt_test_expo_parse(text, &e, why, sizeof(why)), "%s", why);
    free(text);
    bt_metrics_destroy(m);
}

Test(metrics, serves_only_slash_metrics_on_the_configured_address)
{
    struct bt_config cfg = {.metrics_addr = (char *)(uintptr_t) "127.0.0.1"};
    struct bt_metrics *m = bt_metrics_new();
    char errstr[256], *text;
    int port, other, status;

    cr_assert_eq(bt_test_free_ports(&port, &other), 0);
    cfg.metrics_port = 0;
    cr_assert_eq(bt_metrics_start(m, &cfg, errstr, sizeof(errstr)), 0,
                 "port 0: no endpoint");
    cfg.metrics_port = port;
    bt_metrics_add(
        bt_metrics_series(bt_metrics_counter(m, "t_hits_total", "Hits.", NULL)), 2);
    cr_assert_eq(bt_metrics_start(m, &cfg, errstr, sizeof(errstr)), 0, "%s", errstr);
    text = bt_test_http_get(port, "/metrics", &status);
    cr_assert_eq(status, 200);
    cr_assert(text && strstr(text, "\nt_hits_total 2\n"));
    free(text);
    text = bt_test_http_get(port, "/", &status);
    free(text);
    cr_assert_eq(status, 404);
    bt_metrics_stop(m);
    cr_assert_null(bt_test_http_get(port, "/metrics", &status),
                   "stopped: nothing listens");

    /* a documentation address (TEST-NET-1) is no address of this host */
    cfg.metrics_addr = (char *)(uintptr_t) "192.0.2.1";
    cr_assert_eq(bt_metrics_start(m, &cfg, errstr, sizeof(errstr)), BT_EIO);
    cr_assert(strstr(errstr, "192.0.2.1"), "%s", errstr);
    bt_metrics_destroy(m);
}

/* ---- per-key figures of rate and concurrency limits ---- */

struct key_peaks {
    double cc_in_use, cc_waiting, rl_waiting;
    bool cc_over; /* a scrape showed more leases than the limit */
};

static void watch_keys(int port, struct key_peaks *p)
{
    static struct bt_test_expo e;
    char *text;
    double v;

    scrape(port, &e, &text);
    free(text);
    v = bt_test_expo_count(&e, "baton_concurrency_in_use", "key=\"cc\"");
    p->cc_over |= v > 2;
    p->cc_in_use = v > p->cc_in_use ? v : p->cc_in_use;
    v = bt_test_expo_count(&e, "baton_concurrency_waiting", "key=\"cc\"");
    p->cc_waiting = v > p->cc_waiting ? v : p->cc_waiting;
    v = bt_test_expo_count(&e, "baton_ratelimit_waiting", "key=\"carrier\"");
    p->rl_waiting = v > p->rl_waiting ? v : p->rl_waiting;
}

static bool keys_idle(int port, struct bt_test_expo *e)
{
    char *text;

    scrape(port, e, &text);
    free(text);
    return bt_test_expo_count(e, "baton_concurrency_in_use", "key=\"cc\"") == 0 &&
           bt_test_expo_count(e, "baton_concurrency_waiting", "key=\"cc\"") == 0 &&
           bt_test_expo_count(e, "baton_ratelimit_waiting", "key=\"carrier\"") == 0;
}

/* Instances of the per-key test that completed, from Redis. */
static int completed_count(void)
{
    char id[32], buf[32];
    int n = 0;

    for (int i = 0; i < 17; i++) {
        if (i < 10)
            snprintf(id, sizeof(id), "rl-%d", i);
        else if (i < 16)
            snprintf(id, sizeof(id), "cc-%d", i - 10);
        else
            snprintf(id, sizeof(id), "th-1");
        n += !strcmp(bt_stack_status(&stack, id, buf, sizeof(buf)), "completed");
    }
    return n;
}

Test(metrics, per_key_limit_figures_follow_the_run, .init = setup, .fini = teardown,
     .timeout = 120)
{
    static struct bt_test_expo e;
    struct bt_stack_results r = {0};
    struct key_peaks peaks = {0};
    char wport[16], capped[512], marker[256], *text;
    int port, unused, status;
    bool ok;

    cr_assert_eq(bt_test_free_ports(&port, &unused), 0);
    snprintf(wport, sizeof(wport), "%d", port);
    snprintf(capped, sizeof(capped), "%s/capped.so", BT_PLUGIN_DIR);
    snprintf(marker, sizeof(marker), "/tmp/%s-marker", stack.prefix);
    unlink(marker);
    cr_assert_gt(bt_stack_worker(&stack, "limited",
                                 (const char *const[]){"--plugin", capped,
                                                       "--metrics-port", wport, NULL}),
                 0);
    cr_assert_gt(bt_stack_scheduler(&stack), 0);
    BT_TEST_WAIT_UNTIL(ok, (text = bt_test_http_get(port, "/metrics", &status)) != NULL,
                       10000);
    cr_assert(ok, "the worker's /metrics never answered");
    free(text);
    /* limited_call: key "carrier", 5/s burst 5: 10 steps, 5 of them wait */
    for (int i = 0; i < 10; i++) {
        char id[32];
        snprintf(id, sizeof(id), "rl-%d", i);
        cr_assert_eq(bt_stack_start_wf(&stack, "one_step", id, json_object()), 0);
    }
    /* one throttle of 300 ms on key "api" */
    cr_assert_eq(
        bt_stack_start_wf(&stack, "one_step", "th-1",
                          json_pack("{s:s, s:s, s:i, s:s}", "activity", "throttle_once",
                                    "key", "api", "throttle_ms", 300, "marker", marker)),
        0);
    /* capped_call: key "cc", at most 2 at once: 6 steps of 300 ms */
    for (int i = 0; i < 6; i++) {
        char id[32];
        snprintf(id, sizeof(id), "cc-%d", i);
        cr_assert_eq(bt_stack_start_wf(&stack, "capped", id,
                                       json_pack("{s:s, s:i}", "id", id, "ms", 300)),
                     0);
    }
    /* scrape while they run: the gauges move with the waits */
    for (int64_t end = bt_test_now_ms() + 60000;
         completed_count() < 17 && bt_test_now_ms() < end;)
        watch_keys(port, &peaks);
    bt_stack_results(&stack, &r, 17, 30000);
    cr_assert_eq(r.distinct, 17, "results: %d of 17", r.distinct);
    json_decref(r.by_id);
    cr_log_info("peaks: cc in use %g, cc waiting %g, carrier waiting %g", peaks.cc_in_use,
                peaks.cc_waiting, peaks.rl_waiting);
    cr_assert(!peaks.cc_over, "a scrape showed more than 2 leases on cc");
    cr_assert_eq(peaks.cc_in_use, 2, "the 2 slots of cc were never seen in use");
    cr_assert_geq(peaks.cc_waiting, 1, "no step was seen waiting for a cc slot");
    cr_assert_geq(peaks.rl_waiting, 1, "no step was seen waiting for a carrier token");

    BT_TEST_WAIT_UNTIL(ok, keys_idle(port, &e), 5000);
    cr_assert(ok, "leases or waits left on the gauges after the run");
    /* every token taken is one wait observed; 5 of the 10 waited 200 ms and
     * more (5/s), so the waits add up to well over a second */
    cr_assert_eq(
        bt_test_expo_value(&e, "baton_ratelimit_wait_seconds_count", "key=\"carrier\""),
        10);
    cr_assert_gt(
        bt_test_expo_value(&e, "baton_ratelimit_wait_seconds_sum", "key=\"carrier\""),
        1.0);
    cr_assert_geq(bt_test_expo_value(&e, "baton_ratelimit_tokens", "key=\"carrier\""), 0);
    cr_assert_leq(bt_test_expo_value(&e, "baton_ratelimit_tokens", "key=\"carrier\""), 5);
    cr_assert_eq(bt_test_expo_value(&e, "baton_ratelimit_throttles_total", "key=\"api\""),
                 1);
    cr_assert_geq(
        bt_test_expo_value(&e, "baton_ratelimit_wait_seconds_count", "key=\"api\""), 2,
        "the throttled attempt and its retry each took a token");
    scrape(port, &e, &text);
    promtool_accepts(text);
    free(text);
    unlink(marker);
}
