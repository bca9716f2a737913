/* Workflow instances as the tests of the commit build them (instances.h). */
#define _GNU_SOURCE /* strdup */
#include <criterion/criterion.h>
#include <string.h>

#include "instances.h"

struct bt_instance *bt_test_instance_new(const char *id)
{
    struct bt_instance *inst = bt_instance_new(id);

    cr_assert_not_null(inst);
    inst->type = strdup("flow");
    inst->input = json_pack("{s:i}", "n", 1);
    inst->status = BT_STATUS_RUNNING;
    inst->created = 1000;
    inst->run = 1;
    inst->kpos = strdup("cluster/events/0");
    inst->koff = 7;
    inst->kts = 990;
    cr_assert(inst->type && inst->input && inst->kpos);
    return inst;
}
