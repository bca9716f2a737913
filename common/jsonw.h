/* A JSON text writer: appends compact JSON to a growing buffer without
 * building a json_t first. Every message, journal entry and history record of
 * a step is written through it, so it is on the hot path: no printf, one
 * realloc per doubling. Out of memory sticks (failed) and is checked once at
 * the end by bt_jw_finish. */
#ifndef BT_JSONW_H
#define BT_JSONW_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <jansson.h>

struct bt_jw {
    char *buf;
    size_t len, cap;
    bool failed;
};

bool bt__jw_grow(struct bt_jw *w, size_t n);

/* Room for n more bytes; false (and failed) when out of memory. Inline: it is
 * called for every piece of every text. */
static inline bool bt_jw_reserve(struct bt_jw *w, size_t n)
{
    return (n < w->cap - w->len && !w->failed) || bt__jw_grow(w, n);
}

static inline void bt_jw_put(struct bt_jw *w, const char *s, size_t n)
{
    if (bt_jw_reserve(w, n)) {
        memcpy(w->buf + w->len, s, n);
        w->len += n;
    }
}
#define bt_jw_lit(w, s) bt_jw_put(w, s, sizeof(s) - 1)
/* A quoted string. Bytes that are not valid UTF-8 become U+FFFD, so the text
 * stays JSON whatever the caller hands over. */
void bt_jw_string(struct bt_jw *w, const char *s, size_t len);
void bt_jw_int(struct bt_jw *w, int64_t v);
/* Writes v in decimal and a NUL at buf, which holds BT_JW_INT_SIZE bytes;
 * returns the number of digits (and sign). Numbers on the per-step paths
 * (JSON, Redis arguments and RESP lengths) are written with it, not printf. */
#define BT_JW_INT_SIZE 21
size_t bt_jw_itoa(char *buf, int64_t v);
/* Length of the valid UTF-8 sequence of more than one byte at s (len > 0
 * bytes there), or 0: overlong forms, surrogates and code points past
 * U+10FFFF are not valid. */
size_t bt_jw_utf8_seq(const unsigned char *s, size_t len);
/* Any JSON value (NULL: null), compact, as json_dumps writes it. */
void bt_jw_value(struct bt_jw *w, const json_t *v);
/* "key":value pairs as json_pack's object format says, without the braces:
 * "{s:s, s:I, s:O?}" takes (key, value) argument pairs. Values: s (const char
 * *), I (long long, as json_int_t), i (int), b (int), O (const json_t *). After s or O,
 * "?" writes null for NULL and "*" leaves the pair out. first: no leading comma. Returns
 * false when nothing was written. */
bool bt_jw_pairs(struct bt_jw *w, bool first, const char *fmt, va_list ap);
/* NUL-terminates and hands over the text (free() it), its length in *len
 * (may be NULL); NULL when out of memory (the buffer is freed). */
char *bt_jw_finish(struct bt_jw *w, size_t *len);
/* Frees the buffer of an abandoned writer. */
void bt_jw_release(struct bt_jw *w);

#endif
