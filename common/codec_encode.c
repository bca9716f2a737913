/* The codec's encoder (codec.h, bt_codec_encode): walks a message type's
 * table against the struct and writes compact JSON in the schema's order
 * (jsonw), refusing what breaks the schema. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base64.h"
#include "codec.h"
#include "codec_int.h"
#include "err.h"
#include "jsonw.h"

/* Property names are the tables' ASCII literals: nothing to escape. */
static void out_key(struct bt_jw *o, const char *name, bool first)
{
    if (!first)
        bt_jw_lit(o, ",");
    bt_jw_lit(o, "\"");
    bt_jw_put(o, name, strlen(name));
    bt_jw_lit(o, "\":");
}

/* Writes the value of a K_BYTES field and, when it is base64, its encoding
 * property; text that is not valid UTF-8 becomes base64 here. */
static int encode_bytes(struct bt_jw *o, const struct field *f, const char *s,
                        bool base64)
{
    size_t len = strlen(s);
    char *b64;

    if (base64 && !bt_b64_valid(s, len))
        return BT_EINVALMSG;
    if (base64 || bt_codec_text_ok(s, len)) {
        bt_jw_string(o, s, len);
    } else {
        b64 = malloc(bt_b64_len(len) + 1);
        if (!b64)
            return BT_ENOMEM;
        bt_b64_encode(b64, s, len);
        bt_jw_string(o, b64, bt_b64_len(len));
        free(b64);
        base64 = true;
    }
    if (base64) {
        bt_jw_lit(o, ",\"");
        bt_jw_put(o, f->name, strlen(f->name));
        bt_jw_lit(o, "_encoding\":\"base64\"");
    }
    return 0;
}

static int encode_fields(struct bt_jw *o, const struct bt_msg *msg,
                         const struct field *fields, size_t n, bool first);

/* A field whose value is the string s (an id, a text, bytes, an enum),
 * checked against its kind before it is written. */
static int encode_string(struct bt_jw *o, const struct bt_msg *msg, const struct field *f,
                         const char *s, bool first)
{
    size_t pos, len = strlen(s);
    unsigned cp;

    if (f->kind == K_ID &&
        (!bt_codec_text_ok(s, len) || bt_codec_id_check(s, len, &pos, &cp) != ID_OK))
        return BT_EINVALMSG;
    if ((f->flags & F_QUEUE) && !bt_codec_queue_ok(s, len, BT_QUEUE_MAX))
        return BT_EINVALMSG;
    if (f->kind == K_STR &&
        (!bt_codec_text_ok(s, len) || (!len && (f->flags & F_NONEMPTY))))
        return BT_EINVALMSG;
    if (f->kind == K_ENUM) {
        const char *const *val = f->values;

        while (*val && !bt_codec_same_name(*val, s, len))
            val++;
        if (!*val)
            return BT_EINVALMSG;
    }
    out_key(o, f->name, first);
    if (f->kind == K_BYTES)
        return encode_bytes(o, f, s, bt_codec_get_bool(msg, f->enc_off));
    bt_jw_string(o, s, len);
    return 0;
}

/* One field, written when present (*first: no comma before it). Returns 0,
 * BT_EINVALMSG when it breaks its schema, or BT_ENOMEM. */
static int encode_field(struct bt_jw *o, const struct bt_msg *msg, const struct field *f,
                        bool *first)
{
    const char *s;
    int64_t v;
    int ret;
    bool present = true;

    if (f->flags & F_IF_COMPLETED)
        present = bt_codec_is_completed(msg);
    if (f->flags & F_UNLESS_COMPLETED)
        present = !bt_codec_is_completed(msg);
    if (!present || f->kind == K_ENC)
        return 0;
    switch ((enum kind)f->kind) {
    case K_ID:
    case K_STR:
    case K_BYTES:
    case K_ENUM:
        if (!(s = bt_codec_get_str(msg, f->off)))
            return (f->flags & (F_REQ | F_UNLESS_COMPLETED)) ? BT_EINVALMSG : 0;
        if ((ret = encode_string(o, msg, f, s, *first)))
            return ret;
        break;
    case K_INT:
        v = bt_codec_get_int(msg, f);
        /* absent: a default may lie outside the range */
        if (!(f->flags & F_REQ) && v == f->def)
            return 0;
        if (v < f->min || v > f->max)
            return BT_EINVALMSG;
        out_key(o, f->name, *first);
        bt_jw_int(o, v);
        break;
    case K_BOOL:
        if (bt_codec_get_bool(msg, f->off) == (f->def != 0))
            return 0;
        out_key(o, f->name, *first);
        if (bt_codec_get_bool(msg, f->off))
            bt_jw_lit(o, "true");
        else
            bt_jw_lit(o, "false");
        break;
    case K_ANY:
        if (!msg->body)
            return 0;
        out_key(o, f->name, *first);
        bt_jw_value(o, msg->body);
        break;
    case K_OBJ:
        if (!bt_codec_get_str(msg, f->sub[0].off))
            return (f->flags & (F_REQ | F_UNLESS_COMPLETED)) ? BT_EINVALMSG : 0;
        out_key(o, f->name, *first);
        bt_jw_lit(o, "{");
        if ((ret = encode_fields(o, msg, f->sub, f->nsub, true)))
            return ret;
        bt_jw_lit(o, "}");
        break;
    case K_ENC:
        break;
    }
    *first = false;
    return 0;
}

static int encode_fields(struct bt_jw *o, const struct bt_msg *msg,
                         const struct field *fields, size_t n, bool first)
{
    int ret;

    for (size_t i = 0; i < n; i++) {
        if ((ret = encode_field(o, msg, &fields[i], &first)))
            return ret;
    }
    return 0;
}

char *bt_codec_encode(const struct bt_msg *msg, size_t *len)
{
    struct bt_jw o = {0};
    const char *name;

    if (!msg || !(name = bt_msg_type_name(msg->type)))
        return NULL;
    bt_jw_lit(&o, "{\"v\":1,\"type\":");
    bt_jw_string(&o, name, strlen(name));
    if (encode_fields(&o, msg, bt_codec_types[msg->type].fields,
                      bt_codec_types[msg->type].n, false)) {
        bt_jw_release(&o);
        return NULL;
    }
    bt_jw_lit(&o, "}");
    return bt_jw_finish(&o, len);
}
