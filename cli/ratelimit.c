/* `baton ratelimit set KEY RATE/s [--burst N] | get KEY | list`: reads and
 * tunes the token buckets in Redis (<prefix>:rl:<key>) while everything runs;
 * workers see a change on their next take. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "err.h"
#include "ratelimit.h"

static bool json_arg;

static const char usage_text[] =
    "usage: baton ratelimit set KEY RATE[/s] [--burst N] | get KEY | list\n";

static int64_t burst_arg = -1;

static const struct bt_arg ratelimit_args[] = {
    {"burst", 0, BT_ARG_INT, &burst_arg, "N", "unchanged, or RATE at first", 1,
     1000000000, .help = "set: tokens the bucket holds at most"},
    {"json", 0, BT_ARG_BOOL, &json_arg,
     .help = "one JSON object per key and line (JSON lines)"},
    {NULL},
};

static const struct bt_cmd ratelimit_cmd = {
    .name = "baton ratelimit",
    .synopsis = "set KEY RATE[/s] [--burst N] | get KEY | list  [--json]",
    .about = "Rate limits (token buckets shared by every worker), read and tuned while "
             "everything runs.",
    .args = ratelimit_args,
    .settings = (const char *const[]){BT_CLI_REDIS_SETTINGS, NULL},
    .min_pos = 1,
    .max_pos = 3,
};

/* A stored number as JSON (an integer when it is one): null when absent or
 * not a number. */
static json_t *number(const char *text)
{
    char *end;
    double x = text ? strtod(text, &end) : 0;

    if (!text || end == text || *end || !isfinite(x))
        return json_null();
    return fabs(x) < 9e15 && x == (double)(json_int_t)x ? json_integer((json_int_t)x)
                                                        : json_real(x);
}

/* The tokens a take would find now: the stored count refilled at `rate`
 * for the time since the last take (`ts`), up to `burst`, as rate_take.lua
 * computes it; on Redis's clock. The stored count alone stays at a take's
 * leftover while nobody takes, which reads as an empty bucket. */
static json_t *tokens_now(const char *const f[5], long long now_ms)
{
    double rate, burst, tokens, ts;

    if (!f[2])
        return json_null();
    tokens = strtod(f[2], NULL);
    rate = f[0] ? strtod(f[0], NULL) : 0;
    burst = f[1] ? strtod(f[1], NULL) : tokens;
    ts = f[4] ? strtod(f[4], NULL) : (double)now_ms;
    if (now_ms > ts && rate > 0)
        tokens += ((double)now_ms - ts) * rate / 1000;
    if (tokens > burst)
        tokens = burst;
    tokens = floor(tokens * 1000) / 1000;
    return tokens == floor(tokens) ? json_integer((json_int_t)tokens) : json_real(tokens);
}

/* A time in ms as the CLI prints times, or null when absent or not after
 * after_ms. */
static json_t *time_after(const char *ms_text, long long after_ms)
{
    long long ms = ms_text ? strtoll(ms_text, NULL, 10) : 0;
    char text[40];

    return ms > after_ms ? json_string(bt_cli_time(ms, text, sizeof(text))) : json_null();
}

json_t *bt_cli_ratelimit_json(struct bt_store *store, const char *bucket, const char *key)
{
    struct bt_redis *r = bt_store_redis(store);
    redisReply *reply = bt_redis_command(
        r, "HMGET %s rate burst tokens until ts throttles throttled_at", bucket);
    long long now = (long long)bt_redis_now_ms(r);
    int64_t waiters = bt_ratelimit_waiters(r, bt_store_prefix(store), key);
    const char *f[7] = {NULL};
    json_t *root;

    for (size_t i = 0;
         reply && reply->type == REDIS_REPLY_ARRAY && i < 7 && i < reply->elements; i++)
        if (reply->element[i]->type == REDIS_REPLY_STRING)
            f[i] = reply->element[i]->str;
    root = json_pack("{s:s, s:o, s:o, s:o, s:o, s:o, s:I, s:o}", "key", key, "rate",
                     number(f[0]), "burst", number(f[1]), "tokens", tokens_now(f, now),
                     "until", time_after(f[3], now), "waiters",
                     waiters >= 0 ? json_integer(waiters) : json_null(), "throttles",
                     (json_int_t)(f[5] ? strtoll(f[5], NULL, 10) : 0), "throttled_at",
                     time_after(f[6], 0));
    freeReplyObject(reply);
    return root;
}

static void print_bucket(struct bt_store *store, const char *bucket, const char *key,
                         void *arg)
{
    static const char *const names[] = {"rate",    "burst",     "tokens",      "until",
                                        "waiters", "throttles", "throttled_at"};
    enum { N = sizeof(names) / sizeof(names[0]) };
    json_t *root = bt_cli_ratelimit_json(store, bucket, key);
    char *f[N] = {NULL};

    (void)arg;
    if (json_arg) {
        bt_cli_print_json(root);
        return;
    }
    for (int i = 0; i < N; i++) {
        const json_t *v = json_object_get(root, names[i]);
        if (v && !json_is_null(v))
            f[i] = json_is_string(v) ? strdup(json_string_value(v))
                                     : json_dumps(v, JSON_ENCODE_ANY);
    }
    printf("%s rate=%s/s burst=%s tokens=%s until=%s waiters=%s throttles=%s "
           "throttled_at=%s\n",
           key, f[0] ? f[0] : "-", f[1] ? f[1] : "-", f[2] ? f[2] : "-",
           f[3] ? f[3] : "-", f[4] ? f[4] : "-", f[5] ? f[5] : "-", f[6] ? f[6] : "-");
    for (int i = 0; i < N; i++)
        free(f[i]);
    json_decref(root);
}

int bt_cli_ratelimit_parse(const char *text, double *rate)
{
    char *end;

    *rate = strtod(text, &end);
    if (end == text || (*end && strcmp(end, "/s")) || !(*rate > 0) || *rate > 1e9)
        return BT_EINVAL;
    return 0;
}

redisReply *bt_cli_ratelimit_hset(struct bt_store *store, const char *key, double rate,
                                  long long burst, char *bucket, size_t n)
{
    bt_ratelimit_key(bt_store_prefix(store), key, bucket, n);
    if (burst > 0)
        return bt_redis_command(bt_store_redis(store), "HSET %s rate %.17g burst %lld",
                                bucket, rate, burst);
    return bt_redis_command(bt_store_redis(store), "HSET %s rate %.17g", bucket, rate);
}

static int set(struct bt_store *store, const char *key, double rate)
{
    char bucket[600];
    redisReply *reply =
        bt_cli_ratelimit_hset(store, key, rate, burst_arg, bucket, sizeof(bucket));

    return bt_cli_stored(store, reply, bucket, key, print_bucket);
}

static int get(struct bt_store *store, const char *key)
{
    char bucket[600];

    return bt_cli_show(
        store, bt_ratelimit_key(bt_store_prefix(store), key, bucket, sizeof(bucket)), key,
        "rate limit", print_bucket);
}

static int list(struct bt_store *store)
{
    char pattern[600];

    return bt_cli_scan(
        store, bt_ratelimit_key(bt_store_prefix(store), "*", pattern, sizeof(pattern)),
        print_bucket, NULL);
}

int bt_cli_ratelimit(struct bt_config *cfg, int argc, char **argv)
{
    struct bt_store *store;
    char *pos[3];
    double rate = 0;
    int n_pos, ret;

    if ((ret = bt_cli_args(&ratelimit_cmd, argc, argv, pos, &n_pos)) >= 0)
        return ret;
    if (!(!strcmp(pos[0], "set") && n_pos == 3) &&
        !(!strcmp(pos[0], "get") && n_pos == 2) &&
        !(!strcmp(pos[0], "list") && n_pos == 1)) {
        fputs(usage_text, stderr);
        return BT_EXIT_USAGE;
    }
    if (burst_arg > 0 && strcmp(pos[0], "set")) {
        fprintf(stderr, "baton ratelimit: --burst is for set\n");
        return BT_EXIT_USAGE;
    }
    if (!strcmp(pos[0], "set") && bt_cli_ratelimit_parse(pos[2], &rate)) {
        fprintf(stderr,
                "baton ratelimit: rate \"%s\" is not a positive number per second "
                "(10, 10/s, 0.5/s)\n",
                pos[2]);
        return BT_EXIT_USAGE;
    }
    if (!(store = bt_cli_store(cfg)))
        return BT_EXIT_UNAVAILABLE;
    if (!strcmp(pos[0], "set"))
        ret = set(store, pos[1], rate);
    else if (!strcmp(pos[0], "get"))
        ret = get(store, pos[1]);
    else
        ret = list(store);
    bt_store_destroy(store);
    return ret;
}
