/* The scheduler's idle sleep (wake.h): one subscriber connection, waited on
 * with poll(2). */
#include <stdio.h>
#include <stdlib.h>

#include "clock.h"
#include "err.h"
#include "redis.h"
#include "store.h"
#include "wake.h"

#define POLL_MS        2    /* without a subscription: the old poll interval */
#define RESUBSCRIBE_MS 5000 /* after a refusal or an outage */
#define IN_FLIGHT_MS   5    /* delivery reports come within a few ms */

struct bt_wake {
    struct bt_redis *r;
    char channel[300];
    bool subscribed;
    int64_t retry_at; /* monotonic: the next subscribe attempt */
};

struct bt_wake *bt_wake_new(const struct bt_config *cfg, const char *key_prefix,
                            char *errstr, size_t errstr_size)
{
    struct bt_wake *w = calloc(1, sizeof(*w));

    if (!w) {
        snprintf(errstr, errstr_size, "out of memory");
        return NULL;
    }
    snprintf(w->channel, sizeof(w->channel), "%s:wake", key_prefix);
    if (!(w->r = bt_store_redis_new(cfg, errstr, errstr_size))) {
        free(w);
        return NULL;
    }
    return w;
}

void bt_wake_destroy(struct bt_wake *w)
{
    if (!w)
        return;
    bt_redis_destroy(w->r);
    free(w);
}

int bt_wake_timeout(int64_t due_ms, int64_t mono_ms, bool in_flight)
{
    int64_t ms = mono_ms - bt_clock_mono_ms();

    if (due_ms > 0 && due_ms - bt_clock_now_ms() < ms)
        ms = due_ms - bt_clock_now_ms();
    if (ms > BT_WAKE_MAX_MS)
        ms = BT_WAKE_MAX_MS;
    if (in_flight && ms > IN_FLIGHT_MS)
        ms = IN_FLIGHT_MS;
    return ms > 0 ? (int)ms : 0;
}

void bt_wake_sleep(struct bt_wake *w, int timeout_ms)
{
    if (!w->subscribed && bt_clock_mono_ms() >= w->retry_at) {
        w->subscribed = bt_redis_subscribe(w->r, w->channel) == 0;
        if (w->subscribed)
            return;
        w->retry_at = bt_clock_mono_ms() + RESUBSCRIBE_MS;
    }
    if (!w->subscribed) {
        bt_clock_sleep_ms(timeout_ms < POLL_MS ? timeout_ms : POLL_MS);
        return;
    }
    if (bt_redis_wait_message(w->r, timeout_ms) == BT_EAGAIN) {
        w->subscribed = false;
        w->retry_at = 0; /* an outage: the next sleep tries again */
    }
}
