/* The codec's fast path (codec_int.h). */
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <jansson.h>

#include "codec.h"
#include "codec_int.h"
#include "err.h"

/* ---- the fast path ----
 * Events and tasks are nearly always text that bt_codec_encode wrote: "v" and
 * "type" first, no escapes, no duplicates, no extensions. quick_decode reads
 * such text straight into the struct, with jansson only for the body, and
 * gives up (false, msg released) at the first thing it does not expect: the
 * full path below then decodes the message and words its error. Whatever the
 * fast path accepts, the full path accepts too and builds the same message. */

struct scan {
    const char *p, *end;
};

static void skip_ws(struct scan *sc)
{
    while (sc->p < sc->end &&
           (*sc->p == ' ' || *sc->p == '\t' || *sc->p == '\n' || *sc->p == '\r'))
        sc->p++;
}

static bool scan_char(struct scan *sc, char c)
{
    skip_ws(sc);
    if (sc->p < sc->end && *sc->p == c) {
        sc->p++;
        return true;
    }
    return false;
}

/* A string without escapes or control bytes, in valid UTF-8. */
static bool scan_string(struct scan *sc, const char **s, size_t *len)
{
    const char *start;
    bool ascii = true;

    if (!scan_char(sc, '"'))
        return false;
    for (start = sc->p; sc->p < sc->end && *sc->p != '"'; sc->p++) {
        unsigned char c = (unsigned char)*sc->p;

        if (c == '\\' || c < 0x20)
            return false;
        ascii &= c < 0x80;
    }
    if (sc->p == sc->end)
        return false;
    *s = start;
    *len = (size_t)(sc->p++ - start);
    return ascii || bt_codec_text_ok(start, *len);
}

/* An integer of at most 18 digits (longer ones: jansson judges the range). */
static bool scan_int(struct scan *sc, int64_t *v)
{
    const char *digits;
    bool neg;
    int64_t u = 0;

    skip_ws(sc);
    neg = sc->p < sc->end && *sc->p == '-';
    sc->p += neg;
    for (digits = sc->p; sc->p < sc->end && *sc->p >= '0' && *sc->p <= '9'; sc->p++) {
        if (sc->p - digits == 18)
            return false;
        u = u * 10 + (*sc->p - '0');
    }
    if (sc->p == digits || (*digits == '0' && sc->p - digits > 1))
        return false;
    if (sc->p < sc->end && (*sc->p == '.' || *sc->p == 'e' || *sc->p == 'E'))
        return false;
    *v = neg ? -u : u;
    return true;
}

static bool scan_word(struct scan *sc, const char *word, size_t n)
{
    skip_ws(sc);
    if ((size_t)(sc->end - sc->p) < n || memcmp(sc->p, word, n) != 0)
        return false;
    sc->p += n;
    return true;
}

/* Where one JSON value ends, roughly: jansson then parses exactly that. */
static bool scan_value_end(struct scan *sc)
{
    int depth = 0;

    skip_ws(sc);
    while (sc->p < sc->end) {
        char c = *sc->p;

        if (c == '"') {
            for (sc->p++; sc->p < sc->end && *sc->p != '"'; sc->p++)
                sc->p += *sc->p == '\\';
            if (sc->p >= sc->end)
                return false;
            sc->p++;
            if (!depth)
                return true;
            continue;
        }
        if (!depth && (c == ',' || c == '}' || c == ']' || c == ' ' || c == '\t' ||
                       c == '\n' || c == '\r'))
            return true;
        if (c == '{' || c == '[') {
            if (++depth > 1000)
                return false; /* near jansson's limit, which counts the envelope */
        } else if ((c == '}' || c == ']') && --depth == 0) {
            sc->p++;
            return true;
        }
        sc->p++;
    }
    return !depth;
}

/* name (a C string from the tables) equals the len bytes at s. */
static json_t *quick_value(struct scan *sc, int depth);

/* The 4 hex digits after the 'u' at *at, which is left on the last one;
 * UINT_MAX when they are not 4 hex digits before end. */
static unsigned hex4(const char **at, const char *end)
{
    unsigned cp = 0;

    for (int k = 0; k < 4; k++) {
        char h;
        if (end - *at <= 1)
            return UINT_MAX;
        h = *++*at;
        if (h >= '0' && h <= '9')
            cp = cp << 4 | (unsigned)(h - '0');
        else if (h >= 'a' && h <= 'f')
            cp = cp << 4 | (unsigned)(h - 'a' + 10);
        else if (h >= 'A' && h <= 'F')
            cp = cp << 4 | (unsigned)(h - 'A' + 10);
        else
            return UINT_MAX;
    }
    return cp;
}

/* Writes code point cp (<= U+10FFFF, no surrogate) as UTF-8 at o. */
static char *put_utf8(char *o, unsigned cp)
{
    if (cp < 0x80) {
        *o++ = (char)cp;
    } else if (cp < 0x800) {
        *o++ = (char)(0xc0 | cp >> 6);
        *o++ = (char)(0x80 | (cp & 0x3f));
    } else if (cp < 0x10000) {
        *o++ = (char)(0xe0 | cp >> 12);
        *o++ = (char)(0x80 | (cp >> 6 & 0x3f));
        *o++ = (char)(0x80 | (cp & 0x3f));
    } else {
        *o++ = (char)(0xf0 | cp >> 18);
        *o++ = (char)(0x80 | (cp >> 12 & 0x3f));
        *o++ = (char)(0x80 | (cp >> 6 & 0x3f));
        *o++ = (char)(0x80 | (cp & 0x3f));
    }
    return o;
}

/* A string with escapes resolved; NULL where jansson should judge (\u0000,
 * lone surrogates, controls, text that is not UTF-8). */
static json_t *quick_string(struct scan *sc)
{
    const char *start, *p;
    char *buf, *o;
    json_t *str = NULL;
    bool ascii = true, plain = true;

    if (!scan_char(sc, '"'))
        return NULL;
    for (start = p = sc->p; p < sc->end && *p != '"'; p++) {
        unsigned char c = (unsigned char)*p;

        if (c < 0x20)
            return NULL;
        ascii &= c < 0x80;
        if (c == '\\') {
            plain = false;
            if (++p == sc->end)
                return NULL;
        }
    }
    if (p == sc->end)
        return NULL;
    sc->p = p + 1;
    if (!ascii && !bt_codec_text_ok(start, (size_t)(p - start)))
        return NULL;
    if (plain)
        return json_stringn_nocheck(start, (size_t)(p - start));
    /* escapes only shorten the text */
    if (!(buf = malloc((size_t)(p - start) + 1)))
        return NULL;
    for (o = buf; start < p; start++) {
        static const char simple[] = "\"\\/bfnrt", meant[] = "\"\\/\b\f\n\r\t";
        const char *e;
        unsigned cp, lo;

        if (*start != '\\') {
            *o++ = *start;
            continue;
        }
        if (*++start != 'u') {
            if (!*start || !(e = strchr(simple, *start)))
                goto out;
            *o++ = meant[e - simple];
            continue;
        }
        cp = hex4(&start, p);
        if (cp == 0 || cp > 0xffff || (cp >= 0xdc00 && cp <= 0xdfff))
            goto out;
        if (cp >= 0xd800 && cp <= 0xdbff) { /* a surrogate pair */
            if (p - start < 7 || start[1] != '\\' || start[2] != 'u')
                goto out;
            start += 2;
            lo = hex4(&start, p);
            if (lo < 0xdc00 || lo > 0xdfff)
                goto out;
            cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
        }
        o = put_utf8(o, cp);
    }
    str = json_stringn_nocheck(buf, (size_t)(o - buf));
out:
    free(buf);
    return str;
}

/* An object key of printable ASCII without escapes (what keys almost always
 * are), copied into buf: no string value to allocate and free per member.
 * NULL, with nothing consumed, for any other key: quick_string reads it. */
static const char *quick_plain_key(struct scan *sc, char *buf, size_t size)
{
    const char *start, *p;

    skip_ws(sc);
    if (sc->p == sc->end || *sc->p != '"')
        return NULL;
    for (start = p = sc->p + 1; p < sc->end && *p != '"'; p++) {
        if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x80 || *p == '\\' ||
            (size_t)(p - start) + 1 >= size)
            return NULL;
    }
    if (p == sc->end)
        return NULL;
    memcpy(buf, start, (size_t)(p - start));
    buf[p - start] = '\0';
    sc->p = p + 1;
    return buf;
}

/* A body value built straight from the text: objects, arrays, strings,
 * integers, true, false, null. NULL for anything else (reals, duplicate
 * keys, deep nesting, bad text) or out of memory: jansson then parses it. */
static json_t *quick_value(struct scan *sc, int depth)
{
    json_t *v = NULL, *item;
    int64_t n;

    skip_ws(sc);
    if (sc->p == sc->end || depth > 64)
        return NULL;
    switch (*sc->p) {
    case '{':
        sc->p++;
        if (!(v = json_object()) || scan_char(sc, '}'))
            return v;
        do {
            char plain[128];
            json_t *key = NULL;
            const char *k = quick_plain_key(sc, plain, sizeof(plain));

            if (!k && (key = quick_string(sc)))
                k = strlen(json_string_value(key)) == json_string_length(key)
                        ? json_string_value(key)
                        : NULL;
            if (!k || json_object_get(v, k) || !scan_char(sc, ':') ||
                !(item = quick_value(sc, depth + 1))) {
                json_decref(key);
                goto fail;
            }
            if (json_object_set_new_nocheck(v, k, item)) {
                json_decref(key);
                goto fail;
            }
            json_decref(key);
        } while (scan_char(sc, ','));
        if (!scan_char(sc, '}'))
            goto fail;
        return v;
    case '[':
        sc->p++;
        if (!(v = json_array()) || scan_char(sc, ']'))
            return v;
        do {
            if (!(item = quick_value(sc, depth + 1)) || json_array_append_new(v, item))
                goto fail;
        } while (scan_char(sc, ','));
        if (!scan_char(sc, ']'))
            goto fail;
        return v;
    case '"':
        return quick_string(sc);
    case 't':
        return scan_word(sc, "true", 4) ? json_true() : NULL;
    case 'f':
        return scan_word(sc, "false", 5) ? json_false() : NULL;
    case 'n':
        return scan_word(sc, "null", 4) ? json_null() : NULL;
    default:
        return scan_int(sc, &n) ? json_integer(n) : NULL;
    }
fail:
    json_decref(v);
    return NULL;
}

static bool quick_field(struct dec *d, struct scan *sc, const struct field *f)
{
    const char *s, *start;
    size_t len, pos;
    unsigned cp;
    int64_t v;
    char *copy;

    switch ((enum kind)f->kind) {
    case K_ID:
    case K_STR:
    case K_ENUM:
        if (!scan_string(sc, &s, &len))
            return false;
        if (f->kind == K_ID && bt_codec_id_check(s, len, &pos, &cp) != ID_OK)
            return false;
        if ((f->flags & F_QUEUE) && !bt_codec_queue_ok(s, len, BT_QUEUE_MAX))
            return false;
        if (!len && (f->flags & F_NONEMPTY))
            return false;
        if (f->kind == K_ENUM) {
            const char *const *val = f->values;

            while (*val && !bt_codec_same_name(*val, s, len))
                val++;
            if (!*val)
                return false;
        }
        if (!(copy = bt_codec_str_dup(s, len)))
            return false;
        bt_codec_set_ptr(d->msg, f->off, copy);
        return true;
    case K_INT:
        if (!scan_int(sc, &v) || v < f->min || v > f->max)
            return false;
        bt_codec_set_int(d->msg, f, v);
        return true;
    case K_BOOL:
        if (scan_word(sc, "true", 4))
            bt_codec_set_bool(d->msg, f->off, true);
        else if (scan_word(sc, "false", 5))
            bt_codec_set_bool(d->msg, f->off, false);
        else
            return false;
        return true;
    case K_ANY:
        skip_ws(sc);
        start = sc->p;
        if ((d->msg->body = quick_value(sc, 0)))
            return true;
        sc->p = start;
        if (!scan_value_end(sc))
            return false;
        d->msg->body = json_loadb(start, (size_t)(sc->p - start),
                                  JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, NULL);
        return d->msg->body != NULL;
    case K_OBJ:
    case K_BYTES:
    case K_ENC:
        return false; /* K_OBJ is read by quick_object */
    }
    return false;
}

static bool quick_object(struct dec *d, struct scan *sc, const char *path,
                         const struct field *fields, size_t n, bool root)
{
    uint32_t seen = 0;
    const char *key;
    size_t len, next = 0;
    int i = 0;

    if (!scan_char(sc, '{'))
        return false;
    if (scan_char(sc, '}'))
        goto rules;
    do {
        const struct field *f = NULL;

        if (!scan_string(sc, &key, &len) || !scan_char(sc, ':'))
            return false;
        if (root && i++ < 2) { /* "v" and "type", read by quick_decode */
            if (!scan_value_end(sc))
                return false;
            continue;
        }
        /* we write fields in the table's order: look from the last one on */
        for (size_t j = 0; j < n && !f; j++) {
            size_t k = (next + j) % n;
            if (bt_codec_same_name(fields[k].name, key, len))
                f = &fields[k];
        }
        if (f)
            next = (size_t)(f - fields) + 1;
        if (!f || (seen & UINT32_C(1) << (f - fields)))
            return false; /* unknown, extension or duplicate: the full path says */
        seen |= UINT32_C(1) << (f - fields);
        if (f->kind == K_OBJ ? !quick_object(d, sc, f->name, f->sub, f->nsub, false)
                             : !quick_field(d, sc, f))
            return false;
    } while (scan_char(sc, ','));
    if (!scan_char(sc, '}'))
        return false;
rules:
    for (size_t k = 0; k < n; k++) {
        if (bt_codec_decode_rules(d, path, &fields[k], seen & UINT32_C(1) << k))
            return false;
    }
    return true;
}

bool bt_codec_quick_decode(struct dec *d, const char *buf, size_t len)
{
    struct scan sc = {buf, buf + len};
    const char *key, *name;
    size_t klen, nlen;
    int64_t v;
    int t;

    /* {"v":1,"type":"<name>", ... */
    if (!scan_char(&sc, '{') || !scan_string(&sc, &key, &klen) || klen != 1 ||
        *key != 'v' || !scan_char(&sc, ':') || !scan_int(&sc, &v) ||
        v != BT_SCHEMA_VERSION || !scan_char(&sc, ',') ||
        !scan_string(&sc, &key, &klen) || klen != 4 || memcmp(key, "type", 4) ||
        !scan_char(&sc, ':') || !scan_string(&sc, &name, &nlen))
        return false;
    for (t = 0; t < BT_MSG__COUNT; t++) {
        if (bt_codec_same_name(bt_codec_types[t].name, name, nlen))
            break;
    }
    if (t == BT_MSG__COUNT || t == BT_MSG_DEAD_LETTER)
        return false;
    d->msg->type = (enum bt_msg_type)t;
    sc.p = buf;
    if (!quick_object(d, &sc, NULL, bt_codec_types[t].fields, bt_codec_types[t].n, true))
        goto fail;
    skip_ws(&sc);
    if (sc.p != sc.end)
        goto fail;
    return true;
fail:
    bt_msg_release(d->msg);
    return false;
}
