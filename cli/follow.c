/* Waiting for an instance without polling: the commit that ends a run
 * publishes on the run's history channel in the same script (commit.lua), so
 * a subscriber wakes the moment the outcome is in Redis (the truth), before
 * the result message reaches Kafka. Subscribing comes before reading: a run
 * that ends in between has published to a subscriber already. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "clock.h"
#include "err.h"
#include "redis.h"
#include "store.h"

#define POLL_MS  20  /* without a subscription */
#define RETRY_MS 500 /* between two reads while Redis does not answer */

void bt_cli_follow_init(struct bt_cli_follow *f, const struct bt_config *cfg)
{
    char errstr[256];

    memset(f, 0, sizeof(*f));
    f->redis = cfg->redis;
    f->sub = bt_store_redis_new(cfg, errstr, sizeof(errstr));
}

int bt_cli_follow_outage(struct bt_cli_follow *f, bool answered)
{
    int64_t now = bt_clock_now_ms();

    if (answered) {
        if (f->down_since)
            fprintf(stderr, "baton: Redis at %s answers again\n", f->redis);
        f->down_since = 0;
        return 0;
    }
    if (!f->down_since) {
        f->down_since = now;
        fprintf(stderr,
                "baton: Redis at %s does not answer; waiting for it (up to %d s)\n",
                f->redis, BT_CLI_FOLLOW_OUTAGE_MS / 1000);
    } else if (now - f->down_since >= BT_CLI_FOLLOW_OUTAGE_MS) {
        return BT_EAGAIN;
    }
    bt_clock_sleep_ms(RETRY_MS);
    return 0;
}

void bt_cli_follow_release(struct bt_cli_follow *f)
{
    bt_redis_destroy(f->sub);
    memset(f, 0, sizeof(*f));
}

/* The "finished" record among h's, or NULL. */
static json_t *finished_in(const struct bt_history *h)
{
    for (size_t i = 0; i < h->n; i++) {
        json_t *rec;
        const char *ev;
        if (!strstr(h->records[i], "\"finished\""))
            continue;
        rec = json_loads(h->records[i], 0, NULL);
        ev = json_string_value(json_object_get(rec, "ev"));
        if (ev && !strcmp(ev, "finished"))
            return rec;
        json_decref(rec);
    }
    return NULL;
}

/* Reads the records after f->from. A run that continued as new left the
 * list to the next run, which starts again at 0. */
static int read_new(struct bt_cli_follow *f, struct bt_store *store, const char *id,
                    struct bt_history *h)
{
    int ret = bt_history_read(store, id, 0, f->from, h);

    if (ret == 0 && h->entries < (int64_t)f->from) {
        f->from = 0;
        ret = bt_history_read(store, id, 0, 0, h);
    }
    if (ret == 0)
        f->from += h->n;
    return ret == BT_EINVALMSG ? 0 : ret;
}

/* Subscribes to the followed run's channel unless it is: a refusal (an ACL
 * without the channel) makes the follower poll for good, an outage until the
 * next call. */
static void subscribe(struct bt_cli_follow *f)
{
    int rc;

    if (!f->sub || f->subscribed)
        return;
    if ((rc = bt_redis_subscribe(f->sub, f->channel)) == 0) {
        f->subscribed = true;
    } else if (rc != BT_EAGAIN) {
        bt_redis_destroy(f->sub);
        f->sub = NULL;
    }
}

static void wait_end(struct bt_cli_follow *f, int block_ms)
{
    struct timespec ts = {0, POLL_MS * 1000000L};

    if (!f->subscribed || bt_redis_wait_message(f->sub, block_ms) < 0) {
        f->subscribed = false; /* broken: subscribe again on the next call */
        nanosleep(&ts, NULL);
    }
}

int bt_cli_follow(struct bt_cli_follow *f, struct bt_store *store, const char *id,
                  int block_ms, struct bt_history *h, json_t **finished)
{
    char channel[600];
    int ret;

    *finished = NULL;
    bt_history_channel(store, id, 0, channel, sizeof(channel));
    if (strcmp(channel, f->channel)) { /* another id: from its first record */
        snprintf(f->channel, sizeof(f->channel), "%s", channel);
        f->from = 0;
        f->subscribed = false;
    }
    subscribe(f);
    if ((ret = read_new(f, store, id, h)) == 0 && h->n == 0) {
        wait_end(f, block_ms > 0 ? block_ms : 1);
        ret = read_new(f, store, id, h);
    }
    if (ret)
        return ret == BT_EAGAIN ? bt_cli_follow_outage(f, false) : ret;
    bt_cli_follow_outage(f, true);
    *finished = finished_in(h);
    return *finished ? 1 : 0;
}
