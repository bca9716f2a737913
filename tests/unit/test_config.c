/* The settings table (config.c): defaults, the environment and flags in
 * their order, durations with units, per-type retention rules, and the
 * errors a user sees for a bad value. */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "err.h"

Test(config, durations_take_a_unit)
{
    static const struct {
        const char *text;
        int64_t ms;
    } ok[] = {{"0s", 0},
              {"1500ms", 1500},
              {"1s", 1000},
              {"5m", 300000},
              {"2h", 7200000},
              {"7d", 604800000},
              {"36500d", INT64_C(3153600000000)}};
    static const char *const bad[] = {
        "",    "7",    "d",   "1x",     "-1s",
        "+1s", "1.5h", "1 s", "36526d", "99999999999999999999d"};
    int64_t ms;

    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        cr_expect_eq(bt_config_duration(ok[i].text, &ms), 0, "%s", ok[i].text);
        cr_expect_eq(ms, ok[i].ms, "%s: %lld", ok[i].text, (long long)ms);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        cr_expect_eq(bt_config_duration(bad[i], &ms), BT_EINVAL, "\"%s\" accepted",
                     bad[i]);
}

Test(config, a_type_rule_overrides_the_retention_and_the_last_rule_wins)
{
    char a[] = "signup=1h", b[] = "report=2d", c[] = "signup=30s";
    char *rules[] = {a, b, c};

    cr_expect_eq(bt_config_retention(1000, rules, 3, "signup"), 30000);
    cr_expect_eq(bt_config_retention(1000, rules, 3, "report"), 172800000);
    cr_expect_eq(bt_config_retention(1000, rules, 3, "sign"), 1000, "no prefix match");
    cr_expect_eq(bt_config_retention(1000, rules, 3, "other"), 1000);
    cr_expect_eq(bt_config_retention(1000, rules, 3, NULL), 1000);
    cr_expect_eq(bt_config_retention(1000, NULL, 0, "signup"), 1000);
}

/* The arguments the last load left to the program. */
static int left;

/* Loads argv (NULL-terminated) with no environment of ours. */
static int load(struct bt_config *cfg, char **argv, char *errstr, size_t n)
{
    left = 0;
    while (argv[left])
        left++;
    unsetenv("BATON_RETENTION");
    unsetenv("BATON_RETENTION_TYPES");
    setenv("BATON_HOME", "/nonexistent-baton-home", 1);
    return bt_config_load(cfg, &left, argv, errstr, n);
}

Test(config, retention_defaults_to_a_week_and_takes_flags)
{
    char p[] = "prog", f1[] = "--retention", v1[] = "1h", f2[] = "--retention-type",
         v2[] = "a=1s", f3[] = "--retention-type=b=2d";
    char *none[] = {p, NULL}, *argv[] = {p, f1, v1, f2, v2, f3, NULL};
    char errstr[256];
    struct bt_config cfg;

    cr_assert_eq(load(&cfg, none, errstr, sizeof(errstr)), 0, "%s", errstr);
    cr_expect_eq(cfg.retention_ms, INT64_C(7) * 86400000);
    cr_expect_eq(cfg.n_retention_types, 0);
    bt_config_release(&cfg);

    cr_assert_eq(load(&cfg, argv, errstr, sizeof(errstr)), 0, "%s", errstr);
    cr_expect_eq(cfg.retention_ms, 3600000);
    cr_assert_eq(cfg.n_retention_types, 2);
    cr_expect_eq(bt_config_retention(cfg.retention_ms, cfg.retention_types,
                                     cfg.n_retention_types, "b"),
                 172800000);
    bt_config_release(&cfg);
}

Test(config, a_bad_retention_names_the_setting)
{
    char p[] = "prog", f[] = "--retention", v[] = "7", t[] = "--retention-type=x";
    char *argv[] = {p, f, v, NULL}, *argv2[] = {p, t, NULL};
    char errstr[256];
    struct bt_config cfg;

    cr_expect_eq(load(&cfg, argv, errstr, sizeof(errstr)), BT_EINVAL);
    cr_expect_str_eq(errstr, "--retention: \"7\" is not a duration (an integer and a "
                             "unit: ms, s, m, h or d)");
    bt_config_release(&cfg);
    cr_expect_eq(load(&cfg, argv2, errstr, sizeof(errstr)), BT_EINVAL);
    cr_expect(strstr(errstr, "retention-type: \"x\" is not TYPE=DURATION"), "%s", errstr);
    bt_config_release(&cfg);
}

/* A bad value is named as the user gave it: the flag, or the variable. */
Test(config, a_bad_value_names_its_flag_or_its_variable)
{
    char p[] = "prog", f[] = "--concurrency=abc";
    char *argv[] = {p, f, NULL}, *plain[] = {p, NULL};
    char errstr[256];
    struct bt_config cfg;

    cr_expect_eq(load(&cfg, argv, errstr, sizeof(errstr)), BT_EINVAL);
    cr_expect_str_eq(errstr, "--concurrency: \"abc\" is not an integer");
    bt_config_release(&cfg);
    setenv("BATON_CONCURRENCY", "5000", 1);
    cr_expect_eq(load(&cfg, plain, errstr, sizeof(errstr)), BT_EINVAL);
    unsetenv("BATON_CONCURRENCY");
    cr_expect_str_eq(errstr, "BATON_CONCURRENCY: 5000 is out of range [1, 1024]");
    bt_config_release(&cfg);
}

/* Every program refuses a log level it does not know, instead of logging at
 * info without a word (the worker and the scheduler once did). */
Test(config, an_unknown_log_level_is_refused)
{
    char p[] = "prog", f[] = "--log-level=loud", ok[] = "--log-level=warn";
    char *argv[] = {p, f, NULL}, *good[] = {p, ok, NULL};
    char errstr[256];
    struct bt_config cfg;

    cr_expect_eq(load(&cfg, argv, errstr, sizeof(errstr)), BT_EINVAL);
    cr_expect_str_eq(errstr, "--log-level: \"loud\" is not debug, info, warn or error");
    bt_config_release(&cfg);
    cr_expect_eq(load(&cfg, good, errstr, sizeof(errstr)), 0, "%s", errstr);
    cr_expect_str_eq(cfg.log_level, "warn");
    bt_config_release(&cfg);
}

/* A worker started beside `baton dev` takes the embedded cluster's Kafka
 * properties from dev.env; its environment and flags come after, and win. */
Test(config, dev_env_gives_kafka_properties_that_the_environment_overrides)
{
    char home[] = "/tmp/bt-config-XXXXXX", path[300], p[] = "prog",
         flag[] = "--kafka.fetch.wait.max.ms=7";
    char *none[] = {p, NULL}, *argv[] = {p, flag, NULL};
    char errstr[256];
    struct bt_config cfg;
    FILE *f;
    int argc = 1;

    cr_assert(mkdtemp(home));
    snprintf(path, sizeof(path), "%s/dev.env", home);
    cr_assert((f = fopen(path, "w")));
    fprintf(f, "BATON_BROKERS=127.0.0.1:9\nBATON_KAFKA_FETCH_WAIT_MAX_MS=20\n");
    fclose(f);
    setenv("BATON_HOME", home, 1);
    unsetenv("BATON_KAFKA_FETCH_WAIT_MAX_MS");
    cr_assert_eq(bt_config_load(&cfg, &argc, none, errstr, sizeof(errstr)), 0, "%s",
                 errstr);
    cr_expect_str_eq(bt_config_kafka(&cfg, "fetch.wait.max.ms"), "20");
    cr_expect_str_eq(cfg.brokers, "127.0.0.1:9");
    cr_expect_null(bt_config_kafka(&cfg, "fetch.wait"));
    bt_config_release(&cfg);

    setenv("BATON_KAFKA_FETCH_WAIT_MAX_MS", "5", 1);
    argc = 1;
    cr_assert_eq(bt_config_load(&cfg, &argc, none, errstr, sizeof(errstr)), 0, "%s",
                 errstr);
    cr_expect_str_eq(bt_config_kafka(&cfg, "fetch.wait.max.ms"), "5");
    bt_config_release(&cfg);
    argc = 2;
    cr_assert_eq(bt_config_load(&cfg, &argc, argv, errstr, sizeof(errstr)), 0, "%s",
                 errstr);
    cr_expect_str_eq(bt_config_kafka(&cfg, "fetch.wait.max.ms"), "7");
    bt_config_release(&cfg);
    unsetenv("BATON_KAFKA_FETCH_WAIT_MAX_MS");
    unlink(path);
    rmdir(home);
}

/* The order of the table's sources for one setting: its default, then its
 * BATON_* variable, then its flag; the flags it knows are taken out of argv
 * and the rest left to the program, in order. */
Test(config, the_environment_overrides_a_default_and_a_flag_overrides_both)
{
    char p[] = "prog", f[] = "--concurrency", v[] = "16", pos[] = "start",
         own[] = "--wait", q[] = "--prefix=acme";
    char *none[] = {p, NULL}, *argv[] = {p, f, v, pos, own, q, NULL};
    char errstr[256];
    struct bt_config cfg;

    unsetenv("BATON_CONCURRENCY");
    unsetenv("BATON_PREFIX");
    unsetenv("BATON_KEY_PREFIX");
    unsetenv("BATON_LOG_LEVEL");
    cr_assert_eq(load(&cfg, none, errstr, sizeof(errstr)), 0, "%s", errstr);
    cr_expect_eq(cfg.concurrency, 4);
    cr_expect_str_eq(cfg.prefix, "baton");
    cr_expect_str_eq(cfg.key_prefix, "bt", "the default topic prefix keeps bt");
    cr_expect_str_eq(cfg.log_level, "info");
    cr_expect_eq(cfg.eager, 1);
    bt_config_release(&cfg);

    setenv("BATON_CONCURRENCY", "8", 1);
    cr_assert_eq(load(&cfg, none, errstr, sizeof(errstr)), 0, "%s", errstr);
    cr_expect_eq(cfg.concurrency, 8);
    bt_config_release(&cfg);

    cr_assert_eq(load(&cfg, argv, errstr, sizeof(errstr)), 0, "%s", errstr);
    unsetenv("BATON_CONCURRENCY");
    cr_expect_eq(cfg.concurrency, 16);
    cr_expect_str_eq(cfg.prefix, "acme");
    cr_expect_str_eq(cfg.key_prefix, "acme", "the key prefix follows the topic prefix");
    cr_assert_eq(left, 3);
    cr_expect_str_eq(argv[0], "prog");
    cr_expect_str_eq(argv[1], "start");
    cr_expect_str_eq(argv[2], "--wait");
    bt_config_release(&cfg);
}

/* On a Redis Cluster each batch of writes waits for a replica (WAIT) up to
 * redis-wait-ms: a wait as long as a call may take (redis-timeout-ms) would
 * make every batch count as Redis unreachable, so it is refused at start. */
Test(config, a_replica_wait_not_below_the_redis_timeout_is_refused)
{
    char p[] = "prog", c[] = "--redis-cluster=1", w[] = "--redis-wait-ms=10000",
         t[] = "--redis-timeout-ms=20000";
    char *argv[] = {p, c, w, NULL}, *good[] = {p, c, w, t, NULL};
    char errstr[256];
    struct bt_config cfg;

    cr_expect_eq(load(&cfg, argv, errstr, sizeof(errstr)), BT_EINVAL);
    cr_expect(
        strstr(errstr, "redis-wait-ms: 10000 is not below redis-timeout-ms (10000)"),
        "%s", errstr);
    bt_config_release(&cfg);
    cr_expect_eq(load(&cfg, good, errstr, sizeof(errstr)), 0, "%s", errstr);
    bt_config_release(&cfg);
}

/* Queues and the prefix name Kafka topics: what no topic name can hold is
 * refused at start, not met as a produce that never succeeds. */
Test(config, queues_and_a_prefix_no_topic_can_name_are_refused)
{
    char p[] = "prog", sp[] = "--queues=default,a/b", ok[] = "--queues=default, q-1.x_y",
         long_prefix[] = "--prefix=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
         bad_prefix[] = "--prefix=team:a";
    char *bad[][3] = {{p, sp, NULL}, {p, long_prefix, NULL}, {p, bad_prefix, NULL}};
    const char *says[] = {"queues: \"a/b\" names Kafka topics", "prefix: \"aaaa",
                          "prefix: \"team:a\" begins every topic name"};
    char *good[] = {p, ok, NULL};
    char errstr[256];
    struct bt_config cfg;

    for (size_t i = 0; i < 3; i++) {
        cr_expect_eq(load(&cfg, bad[i], errstr, sizeof(errstr)), BT_EINVAL, "%s",
                     says[i]);
        cr_expect(strstr(errstr, says[i]), "%s", errstr);
        bt_config_release(&cfg);
    }
    cr_expect_eq(load(&cfg, good, errstr, sizeof(errstr)), 0, "%s", errstr);
    bt_config_release(&cfg);
}
