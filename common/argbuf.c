/* An argument vector built into one reused buffer (argbuf.h): the commit's
 * and the outbox removals' arguments, written without a malloc per
 * argument. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "argbuf.h"
#include "err.h"
#include "jsonw.h"

#define BORROWED SIZE_MAX

static void slot(struct bt_argbuf *a, const char *s, size_t off, size_t len)
{
    if (a->n == a->cap) {
        a->cap = a->cap ? a->cap * 2 : 64;
        a->argv = realloc(a->argv, a->cap * sizeof(*a->argv));
        a->lens = realloc(a->lens, a->cap * sizeof(*a->lens));
        a->offs = realloc(a->offs, a->cap * sizeof(*a->offs));
        BT_ASSERT(a->argv && a->lens && a->offs);
    }
    a->argv[a->n] = s;
    a->offs[a->n] = off;
    a->lens[a->n++] = len;
}

static void reserve(struct bt_argbuf *a, size_t len)
{
    if (a->used + len <= a->size)
        return;
    a->size = a->size ? a->size * 2 : 4096;
    if (a->size < a->used + len)
        a->size = a->used + len;
    a->buf = realloc(a->buf, a->size);
    BT_ASSERT(a->buf);
}

/* An argument in pieces: bt_argbuf_begin, bt_argbuf_put..., bt_argbuf_end. */
void bt_argbuf_begin(struct bt_argbuf *a)
{
    a->start = a->used;
}

void bt_argbuf_put(struct bt_argbuf *a, const char *s, size_t len)
{
    reserve(a, len);
    memcpy(a->buf + a->used, s, len);
    a->used += len;
}

void bt_argbuf_puts(struct bt_argbuf *a, const char *s)
{
    bt_argbuf_put(a, s, strlen(s));
}

void bt_argbuf_put_int(struct bt_argbuf *a, long long v)
{
    char num[BT_JW_INT_SIZE];

    bt_argbuf_put(a, num, bt_jw_itoa(num, v));
}

void bt_argbuf_end(struct bt_argbuf *a)
{
    slot(a, NULL, a->start, a->used - a->start);
}

void bt_argbuf_str(struct bt_argbuf *a, const char *s)
{
    slot(a, s, BORROWED, strlen(s));
}

void bt_argbuf_int(struct bt_argbuf *a, long long v)
{
    bt_argbuf_begin(a);
    bt_argbuf_put_int(a, v);
    bt_argbuf_end(a);
}

/* Copies s, then frees it. */
void bt_argbuf_own(struct bt_argbuf *a, char *s)
{
    BT_ASSERT(s);
    bt_argbuf_begin(a);
    bt_argbuf_puts(a, s);
    bt_argbuf_end(a);
    free(s);
}

/* Replaces argument i (a count not known when it was appended). */
void bt_argbuf_patch_int(struct bt_argbuf *a, size_t i, long long v)
{
    size_t n = a->n;

    bt_argbuf_int(a, v);
    a->n = n;
    a->argv[i] = NULL;
    a->offs[i] = a->offs[n];
    a->lens[i] = a->lens[n];
}

void bt_argbuf_json(struct bt_argbuf *a, const json_t *v)
{
    /* written straight into the arguments' buffer, lent to a writer */
    struct bt_jw w = {a->buf, a->used, a->size, false};

    bt_argbuf_begin(a);
    if (v) {
        bt_jw_value(&w, v);
        BT_ASSERT(!w.failed); /* as reserve() does */
        a->buf = w.buf;
        a->used = w.len;
        a->size = w.cap;
    }
    bt_argbuf_end(a);
}

/* "<kp>:{<id>}<suffix>" */
void bt_argbuf_key(struct bt_argbuf *a, const char *kp, const char *id,
                   const char *suffix)
{
    bt_argbuf_begin(a);
    bt_argbuf_puts(a, kp);
    bt_argbuf_put(a, ":{", 2);
    bt_argbuf_puts(a, id);
    bt_argbuf_put(a, "}", 1);
    bt_argbuf_puts(a, suffix);
    bt_argbuf_end(a);
}

/* "<kp>:<name>" */
void bt_argbuf_name(struct bt_argbuf *a, const char *kp, const char *name)
{
    bt_argbuf_begin(a);
    bt_argbuf_puts(a, kp);
    bt_argbuf_put(a, ":", 1);
    bt_argbuf_puts(a, name);
    bt_argbuf_end(a);
}

/* Points argv at the texts in the buffer, now that it no longer moves. */
void bt_argbuf_resolve(struct bt_argbuf *a)
{
    for (size_t i = 0; i < a->n; i++)
        if (a->offs[i] != BORROWED)
            a->argv[i] = a->buf + a->offs[i];
}

void bt_argbuf_reset(struct bt_argbuf *a)
{
    a->n = a->used = 0;
}

void bt_argbuf_release(struct bt_argbuf *a)
{
    free(a->argv);
    free(a->lens);
    free(a->offs);
    free(a->buf);
}

void bt_argbuf_init(struct bt_argbuf *a)
{
    memset(a, 0, sizeof(*a));
}

char *bt_argbuf_room(struct bt_argbuf *a, size_t len)
{
    reserve(a, len);
    return a->buf + a->used;
}

void bt_argbuf_wrote(struct bt_argbuf *a, size_t len)
{
    a->used += len;
}
