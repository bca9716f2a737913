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
        return -1;
    if (base64 || bt_codec_text_ok(s, len)) {
        bt_jw_string(o, s, len);
    } else {
        b64 = malloc(bt_b64_len(len) + 1);
        if (!b64)
            return -1;
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

static int encode_field(struct bt_jw *o, const struct bt_msg *msg, const struct field *f,
                        bool *first)
{
    const char *s = NULL;
    size_t pos, len;
    unsigned cp;
    int64_t v;
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
        s = bt_codec_get_str(msg, f->off);
        if (!s)
            return (f->flags & (F_REQ | F_UNLESS_COMPLETED)) ? -1 : 0;
        len = strlen(s);
        if (f->kind == K_ID &&
            (!bt_codec_text_ok(s, len) || bt_codec_id_check(s, len, &pos, &cp) != ID_OK))
            return -1;
        if (f->kind == K_STR &&
            (!bt_codec_text_ok(s, len) || (!len && (f->flags & F_NONEMPTY))))
            return -1;
        if (f->kind == K_ENUM) {
            const char *const *val = f->values;

            while (*val && !bt_codec_same_name(*val, s, len))
                val++;
            if (!*val)
                return -1;
        }
        out_key(o, f->name, *first);
        if (f->kind == K_BYTES) {
            if (encode_bytes(o, f, s, bt_codec_get_bool(msg, f->enc_off)))
                return -1;
        } else {
            bt_jw_string(o, s, len);
        }
        break;
    case K_INT:
        v = bt_codec_get_int(msg, f);
        /* absent: a default may lie outside the range */
        if (!(f->flags & F_REQ) && v == f->def)
            return 0;
        if (v < f->min || v > f->max)
            return -1;
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
            return (f->flags & (F_REQ | F_UNLESS_COMPLETED)) ? -1 : 0;
        out_key(o, f->name, *first);
        bt_jw_lit(o, "{");
        if (encode_fields(o, msg, f->sub, f->nsub, true))
            return -1;
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
    for (size_t i = 0; i < n; i++) {
        if (encode_field(o, msg, &fields[i], &first))
            return -1;
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
