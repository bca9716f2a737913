/* The process's readiness (common/health.c) on its own: the reasons in
 * their order, and the group consumers it waits for. Each test runs in its
 * own process, so each starts from nothing reached. */
#include <criterion/criterion.h>
#include <string.h>

#include "health.h"

static void expect_not_ready(const char *why_expected)
{
    char why[160];

    cr_assert_not(bt_health_ready(why, sizeof(why)), "ready, expected \"%s\"",
                  why_expected);
    cr_assert_str_eq(why, why_expected);
}

Test(readiness, needs_redis_then_kafka)
{
    char why[160];

    expect_not_ready("redis not reached yet");
    bt_health_set(BT_HEALTH_KAFKA, NULL);
    expect_not_ready("redis not reached yet");
    bt_health_set(BT_HEALTH_REDIS, NULL);
    cr_assert(bt_health_ready(why, sizeof(why)), "%s", why);
    cr_assert_str_eq(why, "ready");
    bt_health_set(BT_HEALTH_KAFKA, "kafka brokers down");
    expect_not_ready("kafka brokers down");
    bt_health_set(BT_HEALTH_REDIS, "redis unreachable");
    expect_not_ready("redis unreachable");
    bt_health_set(BT_HEALTH_REDIS, NULL);
    bt_health_set(BT_HEALTH_KAFKA, NULL);
    cr_assert(bt_health_ready(why, sizeof(why)), "%s", why);
}

Test(readiness, waits_for_every_consumer_and_takes_an_empty_share)
{
    int a, b, c;
    char why[160];

    bt_health_set(BT_HEALTH_REDIS, NULL);
    bt_health_set(BT_HEALTH_KAFKA, NULL);
    bt_health_consumer(&a, false);
    bt_health_consumer(&b, false);
    expect_not_ready("waiting for partitions: 2 of 2 consumers");
    bt_health_consumer(&a, true);
    bt_health_consumer(&a, true); /* reported twice: still one consumer */
    expect_not_ready("waiting for partitions: 1 of 2 consumers");
    bt_health_consumer(&b, true); /* its group gave it nothing: a standby */
    cr_assert(bt_health_ready(why, sizeof(why)), "%s", why);
    bt_health_consumer(&a, false); /* an eager rebalance took them back */
    expect_not_ready("waiting for partitions: 1 of 2 consumers");
    bt_health_consumer(&a, true);
    bt_health_consumer(&c, true); /* first seen assigned */
    cr_assert(bt_health_ready(why, sizeof(why)), "%s", why);
    /* a short buffer is cut, not overrun */
    bt_health_consumer(&c, false);
    cr_assert_not(bt_health_ready(why, 8));
    cr_assert_str_eq(why, "waiting");
}
