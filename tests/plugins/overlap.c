/* An activity that tells when this process runs two copies of one attempt at
 * once: each run logs "EXEC <pid> <id> <seq> <attempt>" to stderr, and
 * "OVERLAP ..." when another copy of the same attempt is running here. The workflow
 * runs one such step of input "ms" milliseconds; one_paced runs it under the
 * rate key "paced" (2 per second, in all). */
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "baton.h"

#define MAX_RUNNING 256

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static char running[MAX_RUNNING][300];

/* Marks key running; false when it already was. */
static bool enter(const char *key)
{
    bool alone = true;
    int slot = -1;

    pthread_mutex_lock(&lock);
    for (int i = 0; i < MAX_RUNNING; i++) {
        if (!strcmp(running[i], key))
            alone = false;
        else if (slot < 0 && !running[i][0])
            slot = i;
    }
    if (alone && slot >= 0)
        snprintf(running[slot], sizeof(running[slot]), "%s", key);
    pthread_mutex_unlock(&lock);
    return alone;
}

static void leave(const char *key)
{
    pthread_mutex_lock(&lock);
    for (int i = 0; i < MAX_RUNNING; i++)
        if (!strcmp(running[i], key))
            running[i][0] = '\0';
    pthread_mutex_unlock(&lock);
}

static int hold(bt_act *act, const json_t *input, json_t **result)
{
    long ms = (long)json_integer_value(json_object_get(input, "ms"));
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    char key[300];
    bool alone;

    snprintf(key, sizeof(key), "%s %lld %d", bt_act_workflow_id(act),
             (long long)bt_act_seq(act), bt_act_attempt(act));
    fprintf(stderr, "EXEC %d %s\n", (int)getpid(), key);
    if (!(alone = enter(key)))
        fprintf(stderr, "OVERLAP %s\n", key);
    nanosleep(&ts, NULL);
    if (alone)
        leave(key);
    *result = json_object();
    return 0;
}

static bt_poll one_hold(bt_wf *wf, const json_t *input)
{
    BT_RUN(wf, NULL, "hold", json_deep_copy(input), NULL);
    return bt_complete(wf, NULL);
}

static bt_poll two_holds(bt_wf *wf, const json_t *input)
{
    BT_RUN(wf, NULL, "hold", json_deep_copy(input), NULL);
    BT_RUN(wf, NULL, "hold", json_pack("{s:i}", "ms", 0), NULL);
    return bt_complete(wf, json_pack("{s:b}", "both", 1));
}

static bt_poll one_paced(bt_wf *wf, const json_t *input)
{
    BT_RUN(wf, NULL, "paced_hold", json_deep_copy(input), NULL);
    return bt_complete(wf, NULL);
}

int baton_register(bt_registry *r);
int baton_register(bt_registry *r)
{
    const struct bt_step_opts paced = {.rate_key = "paced", .rate = 2, .burst = 1};

    return bt_register_workflow(r, "one_hold", one_hold) ||
           bt_register_workflow(r, "two_holds", two_holds) ||
           bt_register_workflow(r, "one_paced", one_paced) ||
           bt_register_activity(r, "hold", hold, NULL) ||
           bt_register_activity(r, "paced_hold", hold, &paced);
}
