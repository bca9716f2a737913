/* Packed history records and the reader of a run's history (history.h). A
 * three-step workflow writes eight records of ~150 bytes of JSON, most of it
 * the same names each time, a 13-digit time and the worker's name: packing
 * takes them to ~45 bytes without a dictionary per instance or any state
 * between records, so a record unpacks alone (follow reads from the middle). */
#define _GNU_SOURCE /* strndup */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "history.h"

#define MARK_NUMBER 0x1e
#define MARK_RAW    0x1f /* first byte: the rest is the record as it is */
#define MIN_DIGITS  6
#define MAX_DIGITS  18 /* < 2^63: a varint of at most 9 bytes */

/* Mark i + 1 stands for names[i]. Append only (history.h); the marks end
 * below MARK_NUMBER. Longer texts sharing a start come first: the packer
 * takes the first that matches. */
#define NAME(s)                                                                          \
    {                                                                                    \
        s, sizeof(s) - 1                                                                 \
    }
static const struct name {
    const char *text;
    size_t len;
} names[] = {
    NAME("{\"ev\":\"activity_scheduled\",\"seq\":"),
    NAME("{\"ev\":\"activity_completed\",\"seq\":"),
    NAME("{\"ev\":\"activity_failed\",\"seq\":"),
    NAME("{\"ev\":\"started\",\"workflow\":\""),
    NAME("{\"ev\":\"finished\",\"status\":\"completed\""),
    NAME("{\"ev\":\"finished\",\"status\":\""),
    NAME("{\"ev\":\"timer_fired\",\"kind\":\""),
    NAME("{\"ev\":\"retry_scheduled\",\"seq\":"),
    NAME("{\"ev\":\"signal_received\",\"name\":\""),
    NAME("{\"ev\":\"sleep_started\",\"seq\":"),
    NAME("{\"ev\":\"signal_wait\",\"seq\":"),
    NAME("{\"ev\":\"child_started\",\"seq\":"),
    NAME("{\"ev\":\""),
    NAME(",\"attempt\":1,\"name\":\""),
    NAME(",\"attempt\":"),
    NAME(",\"name\":\""),
    NAME(",\"queue\":\"default\",\"input\":"),
    NAME(",\"queue\":\""),
    NAME(",\"input\":"),
    NAME(",\"deadline\":"),
    NAME(",\"result\":"),
    NAME(",\"error\":null"),
    NAME(",\"error\":"),
    NAME(",\"ts\":"),
    NAME(",\"worker\":\""),
    NAME(",\"seq\":"),
    NAME(",\"type\":\""),
    NAME(",\"message\":\""),
    NAME(",\"child\":\""),
};
#define N_NAMES (sizeof(names) / sizeof(names[0]))
_Static_assert(N_NAMES < MARK_NUMBER, "history marks run into the number mark");

/* The length of the run of digits at s that packs as a number, or 0. */
static size_t number_at(const char *s, size_t left, bool after_digit)
{
    size_t n = 0;

    if (after_digit || s[0] < '1' || s[0] > '9')
        return 0;
    while (n < left && s[n] >= '0' && s[n] <= '9')
        n++;
    return n >= MIN_DIGITS && n <= MAX_DIGITS ? n : 0;
}

static size_t put_number(char *dst, const char *s, size_t n)
{
    unsigned long long v = 0;
    size_t len = 0;

    for (size_t i = 0; i < n; i++)
        v = v * 10 + (unsigned)(s[i] - '0');
    dst[len++] = MARK_NUMBER;
    do {
        dst[len++] = (char)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
        v >>= 7;
    } while (v);
    return len;
}

size_t bt_history_pack(char *dst, const char *src, size_t len)
{
    size_t out = 0, i = 0;

    for (size_t k = 0; k < len; k++) {
        if ((unsigned char)src[k] < 0x20) {
            dst[0] = MARK_RAW;
            memcpy(dst + 1, src, len);
            return len + 1;
        }
    }
    while (i < len) {
        size_t digits =
            number_at(src + i, len - i, i > 0 && src[i - 1] >= '0' && src[i - 1] <= '9');
        size_t k = N_NAMES;
        if (digits) {
            out += put_number(dst + out, src + i, digits);
            i += digits;
            continue;
        }
        if (src[i] == '{' || src[i] == ',')
            for (k = 0; k < N_NAMES; k++)
                if (names[k].len <= len - i &&
                    !memcmp(src + i, names[k].text, names[k].len))
                    break;
        if (k < N_NAMES) {
            dst[out++] = (char)(k + 1);
            i += names[k].len;
        } else {
            dst[out++] = src[i++];
        }
    }
    return out;
}

/* Unpacks src into dst (NULL: only measures); the length, or BT_EINVALMSG when corrupt.
 */
static long unpack_into(char *dst, const char *src, size_t len)
{
    size_t out = 0;
    char num[24];

    for (size_t i = 0; i < len;) {
        unsigned char c = (unsigned char)src[i++];
        const char *piece = (const char *)&src[i - 1];
        size_t n = 1;
        if (c >= 1 && c <= N_NAMES) {
            piece = names[c - 1].text;
            n = names[c - 1].len;
        } else if (c == MARK_NUMBER) {
            unsigned long long v = 0;
            unsigned char b;
            int shift = 0;
            do {
                if (i == len || shift > 63)
                    return BT_EINVALMSG;
                b = (unsigned char)src[i++];
                v |= (unsigned long long)(b & 0x7f) << shift;
                shift += 7;
            } while (b & 0x80);
            piece = num;
            n = (size_t)snprintf(num, sizeof(num), "%llu", v);
        } else if (c < 0x20) {
            return BT_EINVALMSG;
        }
        if (dst)
            memcpy(dst + out, piece, n);
        out += n;
    }
    return (long)out;
}

char *bt_history_unpack(const char *src, size_t len)
{
    long n;
    char *dst;

    if (len && (unsigned char)src[0] == MARK_RAW) {
        if ((dst = malloc(len)) != NULL) {
            memcpy(dst, src + 1, len - 1);
            dst[len - 1] = '\0';
        }
        return dst;
    }
    if ((n = unpack_into(NULL, src, len)) < 0 || !(dst = malloc((size_t)n + 1)))
        return NULL;
    unpack_into(dst, src, len);
    dst[n] = '\0';
    return dst;
}

void bt_history_init(struct bt_history *h)
{
    memset(h, 0, sizeof(*h));
}

void bt_history_release(struct bt_history *h)
{
    for (size_t i = 0; i < h->n; i++)
        free(h->records[i]);
    free(h->records);
    bt_history_init(h);
}

char *bt_history_key(const struct bt_store *store, const char *id, int run, char *buf,
                     size_t n)
{
    char suffix[32];

    if (run > 0)
        snprintf(suffix, sizeof(suffix), ":h:%d", run);
    else
        snprintf(suffix, sizeof(suffix), ":h");
    return bt_store_key(store, id, suffix, buf, n);
}

static int add(struct bt_history *h, size_t *cap, char *record)
{
    if (!record)
        return BT_EINVALMSG;
    if (h->n == *cap) {
        size_t ncap = *cap ? *cap * 2 : 16;
        char **r = realloc(h->records, ncap * sizeof(*r));
        if (!r) {
            free(record);
            return BT_ENOMEM;
        }
        h->records = r;
        *cap = ncap;
    }
    h->records[h->n++] = record;
    return 0;
}

/* The records of the old format's XRANGE reply: [[id, [e, rec, ...]], ...]. */
static int add_stream(struct bt_history *h, size_t *cap, const redisReply *reply,
                      size_t *skip)
{
    int ret = 0;

    h->entries += (int64_t)reply->elements;
    for (size_t i = 0; i < reply->elements && !ret; i++) {
        const redisReply *e = reply->element[i];
        if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
            e->element[1]->type != REDIS_REPLY_ARRAY)
            return BT_EINVALMSG;
        for (size_t f = 1; f < e->element[1]->elements && !ret; f += 2) {
            const redisReply *v = e->element[1]->element[f];
            if (*skip) {
                (*skip)--;
                continue;
            }
            ret = add(h, cap, strndup(v->str, v->len));
        }
    }
    return ret;
}

int bt_history_read(struct bt_store *store, const char *id, int run, size_t from,
                    struct bt_history *h)
{
    char list[600], stream[600], suffix[32], start[24];
    redisReply *xr = NULL, *lr = NULL;
    size_t cap = 0, skip = from, legacy = 0;
    int ret = BT_EAGAIN;

    bt_history_release(h);
    bt_history_key(store, id, run, list, sizeof(list));
    snprintf(suffix, sizeof(suffix), run > 0 ? ":history:%d" : ":history", run);
    bt_store_key(store, id, suffix, stream, sizeof(stream));
    xr = bt_redis_argv(bt_store_redis(store), 4,
                       (const char *[]){"XRANGE", stream, "-", "+"}, NULL);
    if (!xr || (xr->type != REDIS_REPLY_ARRAY && xr->type != REDIS_REPLY_ERROR))
        goto out;
    /* WRONGTYPE would mean a key of another kind: no old records there */
    if (xr->type == REDIS_REPLY_ARRAY && (ret = add_stream(h, &cap, xr, &skip)))
        goto out;
    legacy = h->n + (from - skip);
    legacy = from > legacy ? from - legacy : 0; /* the first list element wanted */
    snprintf(start, sizeof(start), "%zu", legacy);
    lr = bt_redis_argv(bt_store_redis(store), 4,
                       (const char *[]){"LRANGE", list, start, "-1"}, NULL);
    ret = BT_EAGAIN;
    if (!lr || lr->type != REDIS_REPLY_ARRAY)
        goto out;
    h->entries += (int64_t)(legacy + lr->elements);
    ret = 0;
    for (size_t i = 0; i < lr->elements && !ret; i++)
        ret = add(h, &cap, bt_history_unpack(lr->element[i]->str, lr->element[i]->len));
out:
    freeReplyObject(xr);
    freeReplyObject(lr);
    return ret;
}
