/* The log lines of the real programs, read back strictly: baton-worker and
 * baton-scheduler through a run with a failing step and a dead letter,
 * in logfmt and with BATON_LOG_JSON=1, every line of them with its message
 * under msg and each field under its own key; and `baton dev --log-json`,
 * which prints nothing but JSON lines. */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "logline.h"
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

/* The first line of prog whose msg starts with msg, or NULL (borrowed). */
static json_t *find(json_t *lines, const char *prog, const char *msg)
{
    size_t i;
    json_t *line;

    json_array_foreach(lines, i, line)
    {
        const char *m = json_string_value(json_object_get(line, "msg"));
        if (!strcmp(json_string_value(json_object_get(line, "prog")), prog) &&
            !strncmp(m, msg, strlen(msg)))
            return line;
    }
    return NULL;
}

/* The field of line as a string ("" when absent or not a string). */
static const char *field(json_t *line, const char *key)
{
    const char *v = json_string_value(json_object_get(line, key));

    return v ? v : "";
}

/* A worker and a scheduler with env added (NULL: none) until an instance
 * whose step fails ended (id) and an event of an unknown type was
 * dead-lettered; then both
 * stop. Their lines are in stack.log, read back in the format asked for. */
static json_t *run_programs(const char *env, const char *id, int results, bool json)
{
    struct bt_stack_results r;
    char why[512], unknown[32];
    pid_t worker, sched;
    json_t *lines;
    bool ok;

    bt_stack_setenv(&stack, 0, "%s", env);
    worker = bt_stack_worker(&stack, "flows", NULL);
    sched = bt_stack_scheduler(&stack);
    bt_stack_setenv(&stack, 0, NULL);
    cr_assert(worker > 0 && sched > 0);
    /* its step's input is no object: the step fails, and the instance */
    cr_assert_eq(bt_stack_start_wf(&stack, "always_fails", id, json_integer(7)), 0);
    snprintf(unknown, sizeof(unknown), "%s-unknown", id);
    cr_assert_eq(bt_stack_start_wf(&stack, "no_such_type", unknown, json_object()), 0);
    bt_stack_results(&stack, &r, results, 60000);
    cr_assert_eq(r.distinct, results, "results: %d of %d", r.distinct, results);
    json_decref(r.by_id);
    BT_TEST_WAIT_UNTIL(ok, bt_test_count_lines_with(stack.log, "dead letter") >= 1,
                       30000);
    cr_assert(ok, "no dead letter logged: see %s", stack.log);
    cr_assert_eq(bt_test_stop(worker, BT_TEST_STOP_MS), 0);
    cr_assert_eq(bt_test_stop(sched, BT_TEST_STOP_MS), 0);
    lines = bt_test_log_read(stack.log, json, why, sizeof(why));
    cr_assert_not_null(lines, "%s", why);
    return lines;
}

/* The lines every such run writes, with their fields. */
static void check_run(json_t *lines, const char *id, bool json)
{
    const char *format = json ? "json" : "logfmt";
    json_t *line;

    cr_assert(line = find(lines, "worker", "partitions assigned"), "%s", format);
    cr_assert_gt(atoi(field(line, "count")), 0, "%s: count=\"%s\"", format,
                 field(line, "count"));
    cr_assert(line = find(lines, "worker", "task partitions assigned"), "%s", format);
    cr_assert(line = find(lines, "scheduler", "starting"), "%s", format);
    cr_assert_str_eq(field(line, "prefix"), stack.prefix, "%s", format);
    cr_assert_str_eq(field(line, "redis"), stack.redis.addr, "%s", format);
    cr_assert(line = find(lines, "worker",
                          "activity attempt failed: InvalidInput: inc needs an object"),
              "%s", format);
    cr_assert_str_eq(field(line, "workflow"), id, "%s", format);
    cr_assert_str_eq(field(line, "attempt"), "1", "%s", format);
    cr_assert(*field(line, "seq"), "%s", format);
    cr_assert(line = find(lines, "worker", "dead letter"), "%s", format);
    cr_assert(*field(line, "topic") && *field(line, "partition") &&
                  *field(line, "offset"),
              "%s: a dead letter says where it came from", format);
    cr_assert(find(lines, "worker", "stopping"), "%s", format);
    cr_assert(line = find(lines, "scheduler", "stopping"), "%s", format);
    cr_assert(*field(line, "fired") && *field(line, "scheduled"), "%s", format);
}

Test(logs, programs_write_every_field_under_its_key_in_logfmt_and_json, .init = setup,
     .fini = teardown, .timeout = 180)
{
    json_t *lines;

    lines = run_programs(NULL, "log-1", 1, false);
    check_run(lines, "log-1", false);
    json_decref(lines);

    /* a fresh file for the second run, which the same variable sets apart */
    snprintf(stack.log, sizeof(stack.log), "%s/json.log", stack.redis.dir);
    lines = run_programs("BATON_LOG_JSON=1", "log-2", 2, true);
    check_run(lines, "log-2", true);
    json_decref(lines);
}

Test(logs, baton_dev_with_log_json_prints_only_json_lines, .timeout = 90)
{
    char home[] = "/tmp/baton-test-logs-XXXXXX", home_env[64], prefix_env[64];
    char log_path[128], why[512], cmd[160];
    json_t *lines, *banner;
    pid_t pid;
    bool ok;

    cr_assert(mkdtemp(home));
    snprintf(home_env, sizeof(home_env), "BATON_HOME=%s", home);
    snprintf(prefix_env, sizeof(prefix_env), "BATON_PREFIX=%s", bt_test_prefix());
    snprintf(log_path, sizeof(log_path), "%s/dev.log", home);
    const char *const argv[] = {
        BT_BIN_DIR "/baton",       "dev", "--log-json", "--plugin",
        BT_PLUGIN_DIR "/flows.so", NULL};
    const char *const env[] = {home_env, prefix_env, NULL};

    /* stdout and stderr both go to the file */
    pid = bt_test_spawn(argv, env, log_path);
    cr_assert(pid > 0);
    BT_TEST_WAIT_UNTIL(
        ok,
        bt_test_count_lines_with(log_path, "\"msg\":\"task partitions assigned\"") >= 1,
        30000);
    cr_assert(ok, "its worker got no task partitions in 30 s: see %s", log_path);
    cr_assert_eq(kill(pid, SIGINT), 0);
    cr_assert_eq(bt_test_wait(pid, 15000), 0, "baton dev did not exit 0 on SIGINT");

    lines = bt_test_log_read(log_path, true, why, sizeof(why));
    cr_assert_not_null(lines, "%s", why);
    cr_assert(banner = find(lines, "baton", "running until Ctrl-C"));
    cr_assert(strchr(field(banner, "kafka"), ':') && strchr(field(banner, "redis"), ':'),
              "the banner's addresses: kafka=%s redis=%s", field(banner, "kafka"),
              field(banner, "redis"));
    cr_assert(strstr(field(banner, "topics"), ".events"), "topics=%s",
              field(banner, "topics"));
    cr_assert(find(lines, "scheduler", "starting") && find(lines, "worker", "starting"),
              "the children log JSON too");
    cr_assert(find(lines, "baton", "stopping"));
    json_decref(lines);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", home);
    cr_expect_eq(system(cmd), 0);
}
