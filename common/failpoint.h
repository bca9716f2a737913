/* Failpoints: faults a test switches on by name, to reach a state that
 * otherwise comes only from unlucky timing (a consumer whose fetch stopped,
 * say) and check that baton gets out of it. Named in the environment:
 * BATON_FAILPOINTS="name1,name2". Unset in production: one getenv, at the
 * first call. */
#ifndef BT_FAILPOINT_H
#define BT_FAILPOINT_H

#include <stdbool.h>

/* Whether failpoint name is on. Thread safe. */
bool bt_failpoint(const char *name);

#endif
