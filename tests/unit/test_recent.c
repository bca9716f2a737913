/* The worker's memory of the attempts whose outcome it sent (recent.h):
 * what was added is found, and past BT_RECENT_MAX the oldest are forgotten
 * first, so it stays bounded however long the worker runs. */
#include <criterion/criterion.h>
#include <stdio.h>

#include "recent.h"

static void key_of(int i, char *buf, size_t n)
{
    snprintf(buf, n, "wf-%d|3|1", i);
}

Test(recent, finds_what_was_added_and_forgets_the_oldest_past_its_bound)
{
    struct bt_recent *r = bt_recent_new();
    char key[64];

    cr_assert_not_null(r);
    cr_expect_not(bt_recent_has(r, "wf-0|3|1"));
    for (int i = 0; i < BT_RECENT_MAX; i++) {
        key_of(i, key, sizeof(key));
        bt_recent_add(r, key);
    }
    bt_recent_add(r, "wf-0|3|1"); /* again: no second place in the ring */
    for (int i = 0; i < BT_RECENT_MAX; i++) {
        key_of(i, key, sizeof(key));
        cr_assert(bt_recent_has(r, key), "%s forgotten within the bound", key);
    }
    cr_expect_not(bt_recent_has(r, "wf-0|3|2"), "another attempt of a known step");
    /* ten more: the ten oldest go, in the order they came */
    for (int i = BT_RECENT_MAX; i < BT_RECENT_MAX + 10; i++) {
        key_of(i, key, sizeof(key));
        bt_recent_add(r, key);
    }
    for (int i = 0; i < BT_RECENT_MAX + 10; i++) {
        key_of(i, key, sizeof(key));
        cr_assert_eq(bt_recent_has(r, key), i >= 10, "%s", key);
    }
    bt_recent_destroy(r);
}
