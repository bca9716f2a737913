/* The codec's insides, shared by codec.c (the tables, the full decoding path
 * through jansson, releasing), codec_quick.c (the fast path that reads the
 * encoder's own text) and codec_encode.c. Not a public header. */
#ifndef BT_CODEC_INT_H
#define BT_CODEC_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "codec.h"

enum kind {
    K_ID,    /* non-empty, <= BT_ID_MAX bytes, no control characters -> char * */
    K_STR,   /* any string -> char * */
    K_BYTES, /* string, maybe base64 (see enc_off) -> char * */
    K_ENC,   /* "utf8" | "base64" -> bool (true: base64) */
    K_ENUM,  /* one of values -> char * */
    K_INT,   /* integer in [min, max] -> int64_t or int32_t (size) */
    K_BOOL,  /* true | false -> bool */
    K_ANY,   /* any JSON value -> json_t *, a reference to the parsed one */
    K_OBJ,   /* nested object of sub fields */
};

enum {
    F_REQ = 1,               /* required */
    F_NONEMPTY = 2,          /* K_STR: "" is refused */
    F_NULLABLE = 4,          /* K_BYTES: null means absent */
    F_IF_COMPLETED = 8,      /* allowed only when status is "completed" */
    F_UNLESS_COMPLETED = 16, /* required unless status is "completed", else refused */
    F_QUEUE = 32,            /* K_ID: a queue name (bt_codec_queue_ok) */
};

struct field {
    const char *name;
    unsigned char kind;
    unsigned char flags;
    unsigned char size; /* K_INT: bytes of the member */
    size_t off;         /* of the member in struct bt_msg */
    size_t enc_off;     /* K_BYTES: of its bool "is base64" */
    int64_t min, max, def;
    const char *const *values; /* K_ENUM, NULL-terminated */
    const char *expect;        /* K_ENUM, K_ENC: "a|b|c" for error texts */
    const struct field *sub;   /* K_OBJ; its first field is a required string,
                                * non-NULL iff the object is present */
    size_t nsub;
};

/* Each message type: its wire name and its table, in encoding order. */
struct bt_codec_type {
    const char *name;
    const struct field *fields;
    size_t n;
};
extern const struct bt_codec_type bt_codec_types[BT_MSG__COUNT];

/* A decoding in progress: where it writes, where its error goes. */
struct dec {
    struct bt_msg *msg;
    char *errstr;
    size_t errstr_size;
};

/* The struct's members through a table's offsets. */
const char *bt_codec_get_str(const struct bt_msg *msg, size_t off);
int64_t bt_codec_get_int(const struct bt_msg *msg, const struct field *f);
bool bt_codec_get_bool(const struct bt_msg *msg, size_t off);
/* A result's status is "completed" (fields that depend on it). */
bool bt_codec_is_completed(const struct bt_msg *msg);
void bt_codec_str_free(char *s);
void bt_codec_set_ptr(struct bt_msg *msg, size_t off, const void *p);
void bt_codec_set_int(struct bt_msg *msg, const struct field *f, int64_t v);
void bt_codec_set_bool(struct bt_msg *msg, size_t off, bool b);
/* A copy of s[0..len) from jansson's allocator (a message has one owner). */
char *bt_codec_str_dup(const char *s, size_t len);

/* True when s[0..len) is name. */
static inline bool bt_codec_same_name(const char *name, const char *s, size_t len)
{
    return strncmp(name, s, len) == 0 && name[len] == '\0';
}

/* Valid UTF-8 without NUL bytes. */
bool bt_codec_text_ok(const char *str, size_t len);
enum { ID_OK, ID_EMPTY, ID_LONG, ID_CTRL };
/* Checks an id-like string that is already valid UTF-8: ID_OK, or what is
 * wrong; on ID_CTRL, *pos is the byte offset and *cp the code point. */
int bt_codec_id_check(const char *str, size_t len, size_t *pos, unsigned *cp);
/* The rules a field's value obeys beyond its kind (required, conditional,
 * defaults, base64); seen: the message had it. 0 or BT_EINVALMSG. */
int bt_codec_decode_rules(struct dec *d, const char *path, const struct field *f,
                          bool seen);

/* codec_quick.c: decodes text bt_codec_encode wrote into d->msg; false (msg
 * released) at the first thing it does not expect. */
bool bt_codec_quick_decode(struct dec *d, const char *buf, size_t len);

#endif
