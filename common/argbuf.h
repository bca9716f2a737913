/* An argument vector for one Redis call, built into one buffer that is
 * reused from call to call: the texts made (numbers, keys, encoded values)
 * are written one after the other; an argument records its offset there, as
 * the buffer may move while it grows, and argv is resolved at the end
 * (bt_argbuf_resolve). Borrowed texts (bt_argbuf_str) are pointed at and
 * must outlive the call. Out of memory is a broken invariant here
 * (BT_ASSERT): a worker cannot commit without it. bt_argbuf_init (or zero
 * it), then bt_argbuf_release. */
#ifndef BT_ARGBUF_H
#define BT_ARGBUF_H

#include <stddef.h>
#include <jansson.h>

struct bt_argbuf {
    const char **argv;
    size_t *lens, *offs; /* offs[i]: in buf, or BORROWED */
    size_t n, cap;
    char *buf;
    size_t used, size;
    size_t start; /* of the argument being built */
};

void bt_argbuf_init(struct bt_argbuf *a);
void bt_argbuf_release(struct bt_argbuf *a);
/* Forgets the arguments, keeps the memory: the next call's vector. */
void bt_argbuf_reset(struct bt_argbuf *a);
/* Points argv at the texts, once the last argument is in. */
void bt_argbuf_resolve(struct bt_argbuf *a);

/* One argument: a borrowed text, a number, a copy of s (then freed), the
 * compact JSON of v (NULL: empty), "<kp>:{<id>}<suffix>", "<kp>:<name>". */
void bt_argbuf_str(struct bt_argbuf *a, const char *s);
void bt_argbuf_int(struct bt_argbuf *a, long long v);
void bt_argbuf_own(struct bt_argbuf *a, char *s);
void bt_argbuf_json(struct bt_argbuf *a, const json_t *v);
void bt_argbuf_key(struct bt_argbuf *a, const char *kp, const char *id,
                   const char *suffix);
void bt_argbuf_name(struct bt_argbuf *a, const char *kp, const char *name);
/* Replaces argument i with the number v (a count not known when appended). */
void bt_argbuf_patch_int(struct bt_argbuf *a, size_t i, long long v);

/* One argument in pieces: _begin, then _put, _puts, _put_int, or _room (a
 * place for up to len bytes, valid until the next call) and _wrote (how
 * many were written there), then _end. */
void bt_argbuf_begin(struct bt_argbuf *a);
void bt_argbuf_put(struct bt_argbuf *a, const char *s, size_t len);
void bt_argbuf_puts(struct bt_argbuf *a, const char *s);
void bt_argbuf_put_int(struct bt_argbuf *a, long long v);
char *bt_argbuf_room(struct bt_argbuf *a, size_t len);
void bt_argbuf_wrote(struct bt_argbuf *a, size_t len);
void bt_argbuf_end(struct bt_argbuf *a);

#endif
