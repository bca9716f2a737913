/* Activities for the rate-limit tests: each appends its start time (ms,
 * CLOCK_REALTIME) to the file named by input.file, so a test sees when steps
 * really started across all worker processes. The workflow runs one step
 * under the rate key input.key (built from the input, as for per-carrier
 * limits). */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "baton.h"

static int64_t wall_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* one line per start, written at once with O_APPEND: lines never interleave */
static int64_t record_start(const json_t *input)
{
    const char *path = json_string_value(json_object_get(input, "file"));
    int64_t ms = wall_ms();
    char line[32];
    int fd, len = snprintf(line, sizeof(line), "%lld\n", (long long)ms);

    if (path && (fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0644)) >= 0) {
        if (write(fd, line, (size_t)len) != len)
            ms = -1;
        close(fd);
    }
    return ms;
}

static int limited_call(bt_act *act, const json_t *input, json_t **result)
{
    int64_t ms = record_start(input);

    *result =
        json_pack("{s:I, s:i}", "start", (json_int_t)ms, "attempt", bt_act_attempt(act));
    return 0;
}

/* The first attempt anywhere (input.marker does not exist yet) reports
 * "throttled, retry after input.throttle_ms"; later ones succeed. */
static int throttle_once(bt_act *act, const json_t *input, json_t **result)
{
    const char *marker = json_string_value(json_object_get(input, "marker"));
    int fd = marker ? open(marker, O_WRONLY | O_CREAT | O_EXCL, 0644) : -1;

    if (fd >= 0) {
        close(fd);
        return bt_act_throttled(
            act, json_integer_value(json_object_get(input, "throttle_ms")));
    }
    return limited_call(act, input, result);
}

static bt_poll one_step(bt_wf *wf, const json_t *input)
{
    const char *name = json_string_value(json_object_get(input, "activity"));
    struct bt_step_opts opts = {.rate_key =
                                    json_string_value(json_object_get(input, "key"))};
    const json_t *out = NULL;

    BT_RUN(wf, &out, name ? name : "limited_call", json_deep_copy(input), &opts);
    return bt_complete(wf, json_deep_copy(out));
}

int baton_register(bt_registry *r);
int baton_register(bt_registry *r)
{
    struct bt_step_opts limited = {.rate_key = "carrier", .rate = 5, .burst = 5};
    struct bt_step_opts loose = {.rate = 100, .burst = 100};

    if (bt_register_workflow(r, "one_step", one_step) ||
        bt_register_activity(r, "limited_call", limited_call, &limited) ||
        bt_register_activity(r, "throttle_once", throttle_once, &loose))
        return -1;
    return 0;
}
