/* A plugin that takes 2 s to register: a worker loading it is still
 * starting, for a test that stops it then. It says so on stderr first. */
#include <stdio.h>
#include <time.h>

#include "baton.h"

static int echo(bt_act *act, const json_t *input, json_t **result)
{
    (void)act;
    *result = json_deep_copy(input);
    return 0;
}

int baton_register(bt_registry *r)
{
    struct timespec two = {2, 0};

    fprintf(stderr, "slow_start: registering\n");
    fflush(stderr);
    nanosleep(&two, NULL);
    return bt_register_activity(r, "echo", echo, NULL);
}
