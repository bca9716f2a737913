/* Workflow instances as the tests of the commit build them (instances.c). */
#ifndef BT_TEST_INSTANCES_H
#define BT_TEST_INSTANCES_H

#include "instance.h"

/* A new running instance of type "flow" (input {"n":1}, created at 1000,
 * run 1, seqs from 0) whose start was read at offset 7 of partition 0 of
 * "events" on "cluster", at Kafka time 990; nothing in it yet, not
 * committed. Caller frees with bt_instance_destroy; asserts on failure. */
struct bt_instance *bt_test_instance_new(const char *id);

#endif
