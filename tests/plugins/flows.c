/* Workflows the engine tests drive. Activities record what they did in the
 * process's stderr only; the tests read outcomes from Redis and Kafka. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "baton.h"

/* {"v": n} -> {"v": n + 1}, keeping every other field */
static int inc(bt_act *act, const json_t *input, json_t **result)
{
    (void)act;
    if (!json_is_object(input))
        return bt_act_fail(act, "InvalidInput", false, "inc needs an object");
    *result = json_deep_copy(input);
    json_object_set_new(
        *result, "v", json_integer(json_integer_value(json_object_get(input, "v")) + 1));
    return 0;
}

/* sleeps a random 0..ms milliseconds, then echoes its input */
static int nap(bt_act *act, const json_t *input, json_t **result)
{
    unsigned seed = (unsigned)time(NULL) ^ (unsigned)(uintptr_t)act;
    long ms = (long)json_integer_value(json_object_get(input, "max_ms"));
    struct timespec ts;

    ms = ms > 0 ? rand_r(&seed) % ms : 0;
    ts = (struct timespec){ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
    *result =
        json_pack("{s:O, s:i}", "i", json_object_get(input, "i"), "slept_ms", (int)ms);
    return 0;
}

/* three steps in sequence: the result carries v = input v + 3 */
static bt_poll chain3(bt_wf *wf, const json_t *input)
{
    const json_t *a, *b, *c;

    BT_RUN(wf, &a, "inc", json_deep_copy(input), NULL);
    BT_RUN(wf, &b, "inc", json_deep_copy(a), NULL);
    BT_RUN(wf, &c, "inc", json_deep_copy(b), NULL);
    return bt_complete(wf, json_deep_copy(c));
}

/* three activities with random durations in parallel, then fan-in */
static bt_poll fanout3(bt_wf *wf, const json_t *input)
{
    bt_future *fs[3];
    json_t *all = json_array();

    for (int i = 0; i < 3; i++)
        fs[i] = bt_start(
            wf, "nap",
            json_pack("{s:i, s:O}", "i", i, "max_ms", json_object_get(input, "max_ms")),
            NULL);
    if (bt_await_all(wf, fs, 3) != BT_READY) {
        json_decref(all);
        return BT_PENDING;
    }
    for (int i = 0; i < 3; i++) {
        const json_t *r;
        bt_await(wf, fs[i], &r, NULL);
        json_array_append(all, json_object_get(r, "i"));
    }
    return bt_complete(wf, json_pack("{s:o}", "order", all));
}

/* one step served by an external program on queue "legacy" */
static bt_poll legacy1(bt_wf *wf, const json_t *input)
{
    static const struct bt_step_opts legacy = {.queue = "legacy"};
    const json_t *r;

    BT_RUN(wf, &r, "legacy_lookup", json_incref((json_t *)(uintptr_t)input), &legacy);
    return bt_complete(wf, json_incref((json_t *)(uintptr_t)r));
}

/* recorded side effects: replay must return the same values */
static bt_poll side_effects(bt_wf *wf, const json_t *input)
{
    int64_t t = bt_now(wf);
    uint64_t r = bt_random(wf);
    const char *u = bt_uuid(wf);
    const json_t *x;

    BT_RUN(wf, &x, "inc", json_deep_copy(input), NULL);
    return bt_complete(wf, json_pack("{s:I, s:I, s:s, s:I, s:s}", "now", (json_int_t)t,
                                     "random_low", (json_int_t)(r & 0xffffff), "uuid", u,
                                     "now_again", (json_int_t)bt_now(wf), "uuid_again",
                                     bt_uuid(wf)));
}

/* fails for good after one step: for exit codes and failure results */
static bt_poll always_fails(bt_wf *wf, const json_t *input)
{
    BT_RUN(wf, NULL, "inc", json_deep_copy(input), NULL);
    return bt_fail(wf, "Rejected", "the carrier rejected campaign %s",
                   bt_workflow_id(wf));
}

/* waits for a "review" signal (no timeout) and returns its payload; a
 * cancellation ends it with a cleanup step instead */
static bt_poll await_review(bt_wf *wf, const json_t *input)
{
    const json_t *review;
    bt_poll p = bt_wait_signal(wf, "review", -1, &review);

    (void)input;
    if (p == BT_PENDING)
        return BT_PENDING;
    if (p == BT_FAILED && bt_cancel_requested(wf)) {
        BT_RUN(wf, NULL, "inc", json_pack("{s:i}", "v", 0), NULL); /* the cleanup step */
        return bt_complete(wf, json_pack("{s:b}", "cleaned_up", 1));
    }
    return bt_complete(wf, json_pack("{s:O}", "review", review));
}

/* sets its search attributes from its input (input.attrs), runs one step,
 * then sets one more (stage): replays pass over both */
static bt_poll tagged(bt_wf *wf, const json_t *input)
{
    bt_upsert_attributes(wf, json_deep_copy(json_object_get(input, "attrs")));
    BT_RUN(wf, NULL, "inc", json_pack("{s:i}", "v", 1), NULL);
    bt_upsert_attributes(wf, json_pack("{s:s}", "stage", "done"));
    return bt_complete(wf, NULL);
}

int baton_register(bt_registry *r);
int baton_register(bt_registry *r)
{
    if (bt_register_workflow(r, "chain3", chain3) ||
        bt_register_workflow(r, "fanout3", fanout3) ||
        bt_register_workflow(r, "legacy1", legacy1) ||
        bt_register_workflow(r, "side_effects", side_effects) ||
        bt_register_workflow(r, "always_fails", always_fails) ||
        bt_register_workflow(r, "await_review", await_review) ||
        bt_register_workflow(r, "tagged", tagged) ||
        bt_register_activity(r, "inc", inc, NULL) ||
        bt_register_activity(r, "nap", nap, NULL))
        return -1;
    return 0;
}
