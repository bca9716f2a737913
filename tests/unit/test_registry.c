#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "err.h"
#include "registry.h"

static int load(bt_registry *r, const char *plugin, char *errstr, size_t n)
{
    char path[512];

    snprintf(path, sizeof(path), "%s/%s.so", BT_PLUGIN_DIR, plugin);
    errstr[0] = '\0';
    return bt_registry_load(r, path, errstr, n);
}

Test(registry, loads_plugins_whose_activities_call_the_sdk)
{
    bt_registry *r = bt_registry_new();
    char errstr[512];

    cr_assert_eq(load(r, "campaigns", errstr, sizeof(errstr)), 0, "%s", errstr);
    cr_assert_eq(load(r, "registration", errstr, sizeof(errstr)), 0, "%s", errstr);
    cr_assert_not_null(bt_registry_workflow(r, "campaign_registration"));
    cr_assert_not_null(bt_registry_workflow(r, "brand_registration"));
    cr_assert_not_null(bt_registry_activity(r, "create_campaign"));
    bt_registry_destroy(r);
}

Test(registry, refuses_a_plugin_built_for_another_abi_before_running_it)
{
    bt_registry *r = bt_registry_new();
    char errstr[512], want[64];

    cr_assert_eq(load(r, "abi_other", errstr, sizeof(errstr)), BT_EINVAL);
    snprintf(want, sizeof(want), "built for baton ABI %d", BATON_ABI_VERSION + 1);
    cr_assert(strstr(errstr, want) && strstr(errstr, BATON_VERSION) &&
                  strstr(errstr, "rebuild it"),
              "%s", errstr);
    cr_assert_eq(r->n_workflows, 0, "its baton_register ran");
    bt_registry_destroy(r);
}

Test(registry, says_why_a_plugin_does_not_load)
{
    bt_registry *r = bt_registry_new();
    char errstr[512];

    cr_assert_eq(load(r, "no_such_plugin", errstr, sizeof(errstr)), BT_EINVAL);
    cr_assert(strstr(errstr, "cannot load plugin") && strstr(errstr, "no_such_plugin.so"),
              "%s", errstr);
    bt_registry_destroy(r);
}

static int noop(bt_act *act, const json_t *input, json_t **result)
{
    (void)act;
    (void)input;
    *result = NULL;
    return 0;
}

/* An activity's default queue names its tasks' topic: one no topic can be
 * named after is refused at registration, not met at each dispatch. */
Test(registry, refuses_an_activity_whose_default_queue_names_no_topic)
{
    bt_registry *r = bt_registry_new();
    const struct bt_step_opts bad = {.queue = "carriers east"},
                              good = {.queue = "carriers.east-1"};

    cr_expect_eq(bt_register_activity(r, "a", noop, &bad), -1);
    cr_expect_null(bt_registry_activity(r, "a"));
    cr_expect_eq(bt_register_activity(r, "a", noop, &good), 0);
    cr_expect_not_null(bt_registry_activity(r, "a"));
    bt_registry_destroy(r);
}
