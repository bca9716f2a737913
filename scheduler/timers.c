/* Timer members are "<kind>|<seq>|<attempt>|<id>" (instance.h); the id comes
 * last because it may itself contain '|'. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "codec.h"
#include "err.h"
#include "instance.h"
#include "kafka.h"
#include "log.h"
#include "lua_scripts.h"
#include "timers.h"

#define BATCH    1000
#define LEASE_MS 10000

/* The events of one claim, on their way to Kafka: their leases go once all
 * are delivered. */
struct flight {
    struct flight *next;
    struct bt_kafka_batch batch; /* librdkafka points at it until the reports */
    int shard;                   /* whose leased set holds them (store.h) */
    size_t n;
    char *members[]; /* of the leased set, to remove */
};

struct bt_timers {
    const struct bt_config *cfg;
    struct bt_store *store;
    rd_kafka_t *rk;
    struct bt_timer_stats *stats;
    const struct bt_shard_lease *lease; /* which shards to claim in */
    struct flight *flights;             /* oldest first */
    int64_t next; /* earliest due or lease expiry at the last claims */
    int *claims;  /* the shards of the claims of a round trip */
};

/* Shard's timer set and its leased timers (store.h); kp: the shard's prefix. */
struct names {
    char timers[300], leased[300], kp[BT_STORE_KP_SIZE];
};

static void names(const struct bt_store *store, int shard, struct names *n)
{
    const char *kp = bt_store_shard_kp(store, shard, n->kp, sizeof(n->kp));

    if (kp != n->kp)
        snprintf(n->kp, sizeof(n->kp), "%s", kp);
    snprintf(n->timers, sizeof(n->timers), "%s:timers", kp);
    snprintf(n->leased, sizeof(n->leased), "%s:timers:leased", kp);
}

struct bt_timers *bt_timers_new(const struct bt_config *cfg, struct bt_store *store,
                                const struct bt_shard_lease *lease, rd_kafka_t *rk,
                                struct bt_timer_stats *stats)
{
    struct bt_timers *t = calloc(1, sizeof(*t));
    int *claims = calloc((size_t)bt_store_shards(store), sizeof(int));

    if (!t || !claims) {
        free(t);
        free(claims);
        return NULL;
    }
    *t = (struct bt_timers){.cfg = cfg,
                            .store = store,
                            .lease = lease,
                            .rk = rk,
                            .stats = stats,
                            .claims = claims};
    return t;
}

static void flight_free(struct flight *f)
{
    for (size_t i = 0; i < f->n; i++)
        free(f->members[i]);
    free(f);
}

/* Appends a ZREM of the leases of every delivered flight at the head of the
 * list (they complete in order) and frees them; a flight that failed is
 * dropped with its leases, which expire and fire the timers again. Returns
 * how many ZREMs were appended (their replies are the caller's to read). */
static int land(struct bt_timers *t)
{
    int appended = 0;

    while (t->flights &&
           __atomic_load_n(&t->flights->batch.pending, __ATOMIC_ACQUIRE) == 0) {
        struct flight *f = t->flights;
        const char **argv;

        t->flights = f->next;
        if (f->batch.failed) {
            bt_log(BT_LOG_WARN,
                   "timer events not delivered: %s (their leases will expire)",
                   rd_kafka_err2str(f->batch.err));
        } else if ((argv = malloc((f->n + 2) * sizeof(*argv)))) {
            struct names nm;

            names(t->store, f->shard, &nm);
            argv[0] = "ZREM";
            argv[1] = nm.leased;
            memcpy(argv + 2, f->members, f->n * sizeof(*argv));
            appended += bt_redis_append_argv(bt_store_redis(t->store), (int)f->n + 2,
                                             argv, NULL) == 0;
            free(argv);
        }
        flight_free(f);
    }
    return appended;
}

static void count_fired(struct bt_timer_stats *stats, int64_t late)
{
    stats->fired++;
    stats->late_ms_sum += (uint64_t)(late > 0 ? late : 0);
    if (late > stats->late_ms_max)
        stats->late_ms_max = late;
    bt_metrics_observe(stats->lateness, (double)(late > 0 ? late : 0) / 1000.0);
}

/* Produces the timers claimed in shard (reply: member, due, queue triples)
 * as one flight. Returns how many went out, or BT_EAGAIN. */
static int produce(struct bt_timers *t, int shard, const redisReply *reply, int64_t now)
{
    size_t n = reply->elements / 3;
    struct flight *f = calloc(1, sizeof(*f) + n * sizeof(char *)), **tail;
    int fired = 0, ret = BT_EAGAIN;

    if (!f)
        return BT_EAGAIN;
    f->shard = shard;
    for (size_t i = 0; i < n; i++) {
        const char *member = reply->element[3 * i]->str,
                   *queue = reply->element[3 * i + 2]->str;
        struct bt_msg msg = {0};
        char kind[32], topic[512], *suffix, *bytes;
        size_t len;

        /* its lease goes once the flight lands: malformed ones are dropped */
        if (!(f->members[f->n] = strdup(member)))
            goto out;
        if (bt_timer_parse(member, &msg, kind, sizeof(kind))) {
            bt_log(BT_LOG_ERROR, "dropping a malformed timer: %s", member);
            f->n++;
            continue;
        }
        msg.ts = now;
        /* the workflow role measures lateness where the workflow sees it */
        msg.due = strtoll(reply->element[3 * i + 1]->str, NULL, 10);
        suffix = bt_events_suffix(*queue ? queue : NULL);
        bytes = suffix ? bt_codec_encode(&msg, &len) : NULL;
        if (bytes)
            bt_kafka_topic(t->cfg, suffix, topic, sizeof(topic));
        free(suffix);
        if (bytes && bt_kafka_produce(t->rk, topic, msg.id, strlen(msg.id), bytes, len,
                                      &f->batch)) {
            /* not sent: its lease (and the rest's) expires, then it fires */
            free(f->members[f->n]);
            free(bytes);
            goto out;
        }
        f->n++;
        if (!bytes)
            continue;
        free(bytes);
        count_fired(t->stats, now - msg.due);
        fired++;
    }
    ret = fired;
out:
    /* the flight waits for its reports even when a produce failed: librdkafka
     * points at its batch until then */
    for (tail = &t->flights; *tail; tail = &(*tail)->next)
        ;
    *tail = f;
    return ret;
}

/* Appends the claim of shard's due timers. 0 or BT_ENOMEM. */
static int append_claim(struct bt_timers *t, int shard, int64_t now)
{
    char now_s[32], lease_s[32], limit_s[32];
    struct names nm;
    const char *argv[] = {nm.timers, nm.leased, now_s, lease_s, limit_s, nm.kp};

    names(t->store, shard, &nm);
    snprintf(now_s, sizeof(now_s), "%lld", (long long)now);
    snprintf(lease_s, sizeof(lease_s), "%d", LEASE_MS);
    snprintf(limit_s, sizeof(limit_s), "%d", BATCH);
    return bt_redis_append_eval(bt_store_redis(t->store), bt_lua_claim_timers, 2, 6, argv,
                                NULL);
}

/* Reads one shard's claim and produces its timers: how many fired, or
 * BT_EAGAIN; *next lowered to the shard's earliest due. */
static int take_claim(struct bt_timers *t, int shard, int64_t now, int64_t *next)
{
    redisReply *reply = NULL;
    int ret = BT_EAGAIN;

    if (bt_redis_reply(bt_store_redis(t->store), &reply) ||
        reply->type != REDIS_REPLY_ARRAY || reply->elements % 3 != 1 ||
        reply->element[reply->elements - 1]->type != REDIS_REPLY_INTEGER)
        goto out;
    /* 0: the shard holds no timer */
    if (reply->element[reply->elements - 1]->integer > 0 &&
        reply->element[reply->elements - 1]->integer < *next)
        *next = reply->element[reply->elements - 1]->integer;
    ret = reply->elements > 1 ? produce(t, shard, reply, now) : 0;
out:
    freeReplyObject(reply);
    return ret;
}

int bt_timers_fire(struct bt_timers *t)
{
    struct bt_redis *r = bt_store_redis(t->store);
    redisReply *reply = NULL;
    int64_t now = bt_clock_now_ms(), next = INT64_MAX;
    int zrems = land(t), shards = bt_store_shards(t->store), claimed = 0, ret = 0;
    bool all = true;

    /* the lease releases go out in the claims' round trip, ahead of them;
     * the claims in the shards this scheduler holds (shard_lease.h) */
    for (int shard = 0; shard < shards && all; shard++) {
        if (!bt_shard_lease_holds(t->lease, shard))
            continue;
        if ((all = append_claim(t, shard, now) == 0))
            t->claims[claimed++] = shard;
    }
    for (int i = 0; i < zrems; i++) {
        if (bt_redis_reply(r, &reply)) {
            /* a lost ZREM only fires those timers again, later; the batch
             * is lost with it */
            return BT_EAGAIN;
        }
        freeReplyObject(reply);
        reply = NULL;
    }
    for (int i = 0; i < claimed; i++) {
        int fired = take_claim(t, t->claims[i], now, &next);

        if (fired < 0 && ret >= 0) {
            ret = fired;
            /* the rest of a broken batch answers BT_EAGAIN: read it all */
        } else if (fired > 0 && ret >= 0) {
            ret += fired;
        }
    }
    if (!all)
        ret = BT_EAGAIN;
    if (ret >= 0)
        t->next = next == INT64_MAX ? 0 : next;
    return ret;
}

int64_t bt_timers_next(const struct bt_timers *t)
{
    return t->next;
}

bool bt_timers_in_flight(const struct bt_timers *t)
{
    return t->flights != NULL;
}

void bt_timers_destroy(struct bt_timers *t, int timeout_ms)
{
    redisReply *reply = NULL;
    int64_t until = bt_clock_mono_ms() + timeout_ms;
    int zrems;

    if (!t)
        return;
    for (struct flight *f = t->flights; f; f = f->next) {
        int64_t left = until - bt_clock_mono_ms();
        bt_kafka_wait(t->rk, &f->batch, left > 0 ? (int)left : 0);
    }
    zrems = land(t);
    for (int i = 0; i < zrems && bt_redis_reply(bt_store_redis(t->store), &reply) == 0;
         i++) {
        freeReplyObject(reply);
        reply = NULL;
    }
    /* what is still in flight points into its flight: purged, it is reported
     * at once (its leases expire and another scheduler fires it) */
    if (t->flights) {
        rd_kafka_purge(t->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
        for (struct flight *f = t->flights; f; f = f->next)
            bt_kafka_wait(t->rk, &f->batch, -1);
    }
    while (t->flights) {
        struct flight *f = t->flights;
        t->flights = f->next;
        flight_free(f);
    }
    free(t->claims);
    free(t);
}

int64_t bt_timers_pending(struct bt_store *store)
{
    int64_t ret = 0;

    for (int shard = 0; shard < bt_store_shards(store) && ret >= 0; shard++) {
        struct names nm;
        const char *argv[] = {"ZCARD", nm.timers};
        redisReply *reply;

        names(store, shard, &nm);
        reply = bt_redis_argv(bt_store_redis(store), 2, argv, NULL);
        ret = reply && reply->type == REDIS_REPLY_INTEGER ? ret + reply->integer
                                                          : BT_EAGAIN;
        freeReplyObject(reply);
    }
    return ret;
}
