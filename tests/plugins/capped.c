/* Activities for the concurrency-limit tests: each appends "S <ms> <pid>
 * <id> <attempt>" when it starts and "E ..." when it ends (ms of
 * CLOCK_REALTIME) to the file named by input.file, so a test sees which steps
 * ran at the same time across all worker processes. The workflow runs one
 * step under the concurrency key input.key (default: the registered "cc",
 * limit 2) that sleeps input.first_ms on its first attempt and input.ms on
 * later ones, with start-to-close timeout input.timeout_ms. */
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

/* one line, written at once with O_APPEND: lines never interleave */
static void record(const json_t *input, char what, const char *id, int attempt)
{
    const char *path = json_string_value(json_object_get(input, "file"));
    char line[400];
    int fd, len = snprintf(line, sizeof(line), "%c %lld %d %s %d\n", what,
                           (long long)wall_ms(), (int)getpid(), id, attempt);

    if (path && (fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0644)) >= 0) {
        if (write(fd, line, (size_t)len) != len)
            perror("capped: write");
        close(fd);
    }
}

static int capped_call(bt_act *act, const json_t *input, json_t **result)
{
    const char *id = json_string_value(json_object_get(input, "id"));
    int attempt = bt_act_attempt(act);
    json_int_t ms = json_integer_value(json_object_get(
        input, attempt == 1 && json_object_get(input, "first_ms") ? "first_ms" : "ms"));
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};

    id = id ? id : "?";
    record(input, 'S', id, attempt);
    nanosleep(&ts, NULL);
    record(input, 'E', id, attempt);
    *result = json_pack("{s:i}", "attempt", attempt);
    return 0;
}

static bt_poll capped(bt_wf *wf, const json_t *input)
{
    struct bt_step_opts opts = {
        .concurrency_key = json_string_value(json_object_get(input, "key")),
        .start_to_close_ms = json_integer_value(json_object_get(input, "timeout_ms")),
        .retry = {.max_attempts = 5, .initial_ms = 100}};
    const json_t *out = NULL;

    BT_RUN(wf, &out, "capped_call", json_deep_copy(input), &opts);
    return bt_complete(wf, json_deep_copy(out));
}

int baton_register(bt_registry *r);
int baton_register(bt_registry *r)
{
    struct bt_step_opts limited = {.concurrency_key = "cc", .concurrency = 2};

    if (bt_register_workflow(r, "capped", capped) ||
        bt_register_activity(r, "capped_call", capped_call, &limited))
        return -1;
    return 0;
}
