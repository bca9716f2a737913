/* The JSON text writer (jsonw.h). Its output is byte for byte what jansson's
 * json_dumps(JSON_COMPACT) writes for the same value (\u escapes in upper
 * case, "/" and DEL as they are, reals in jansson's own format), so text
 * written here and text written by jansson compare equal. */
#include <stdlib.h>
#include <string.h>

#include "jsonw.h"

/* Grows the buffer so that n more bytes and a NUL fit. */
bool bt__jw_grow(struct bt_jw *w, size_t n)
{
    size_t cap = w->cap ? w->cap : 256;
    char *grown;

    if (w->failed)
        return false;
    while (cap - w->len <= n) {
        if (cap > SIZE_MAX / 2)
            goto fail;
        cap *= 2;
    }
    if (cap == w->cap)
        return true;
    grown = realloc(w->buf, cap);
    if (!grown)
        goto fail;
    w->buf = grown;
    w->cap = cap;
    return true;
fail:
    w->failed = true;
    return false;
}

size_t bt_jw_utf8_seq(const unsigned char *s, size_t len)
{
    unsigned c = s[0], cp, n;

    if (c >= 0xc2 && c <= 0xdf) {
        n = 1;
        cp = c & 0x1f;
    } else if ((c & 0xf0) == 0xe0) {
        n = 2;
        cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 3;
        cp = c & 0x07;
    } else {
        return 0;
    }
    if (len - 1 < n)
        return 0;
    for (unsigned k = 1; k <= n; k++) {
        if ((s[k] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (s[k] & 0x3f);
    }
    if (n == 2 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff)))
        return 0;
    if (n == 3 && (cp < 0x10000 || cp > 0x10ffff))
        return 0;
    return n + 1;
}

/* The escaping loop, from byte i on (what is before i needs none). */
static void jw_string_rest(struct bt_jw *w, const char *str, size_t len, size_t i)
{
    static const char hex[] = "0123456789ABCDEF";
    const unsigned char *s = (const unsigned char *)str;
    size_t run = i;

    while (i < len) {
        unsigned char c = s[i];
        char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
        size_t n = 1;

        if (c >= 0x20 && c != '"' && c != '\\' && c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0x80 && (n = bt_jw_utf8_seq(s + i, len - i)) > 0) {
            i += n;
            continue;
        }
        bt_jw_put(w, str + run, i - run);
        switch (c) {
        case '"':
        case '\\':
            esc[1] = (char)c;
            bt_jw_put(w, esc, 2);
            break;
        case '\n':
            bt_jw_lit(w, "\\n");
            break;
        case '\r':
            bt_jw_lit(w, "\\r");
            break;
        case '\t':
            bt_jw_lit(w, "\\t");
            break;
        case '\b':
            bt_jw_lit(w, "\\b");
            break;
        case '\f':
            bt_jw_lit(w, "\\f");
            break;
        default:
            if (c < 0x20)
                bt_jw_put(w, esc, sizeof(esc));
            else
                bt_jw_lit(w, "\\uFFFD"); /* not UTF-8: one replacement per byte */
        }
        run = ++i;
    }
    bt_jw_put(w, str + run, len - run);
}

void bt_jw_string(struct bt_jw *w, const char *str, size_t len)
{
    char *o;
    size_t i;

    if (!bt_jw_reserve(w, len + 2))
        return;
    /* ids, names and keys are plain ASCII: copied as they are scanned */
    o = w->buf + w->len;
    *o++ = '"';
    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)str[i];

        if (c < 0x20 || c == '"' || c == '\\' || c >= 0x80)
            break;
        o[i] = (char)c;
    }
    w->len += 1 + i;
    if (i < len)
        jw_string_rest(w, str, len, i);
    bt_jw_lit(w, "\"");
}

size_t bt_jw_itoa(char *buf, int64_t v)
{
    char tmp[BT_JW_INT_SIZE], *p = tmp + sizeof(tmp);
    uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
    size_t n;

    do {
        *--p = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        *--p = '-';
    n = (size_t)(tmp + sizeof(tmp) - p);
    memcpy(buf, p, n);
    buf[n] = '\0';
    return n;
}

void bt_jw_int(struct bt_jw *w, int64_t v)
{
    char num[BT_JW_INT_SIZE];

    bt_jw_put(w, num, bt_jw_itoa(num, v));
}

/* Reals in jansson's format ("%.17g", made to look like a real). */
static void jw_real(struct bt_jw *w, const json_t *v)
{
    char tmp[64];
    size_t n = json_dumpb(v, tmp, sizeof(tmp), JSON_ENCODE_ANY | JSON_COMPACT);

    if (n == 0 || n > sizeof(tmp))
        w->failed = true;
    else
        bt_jw_put(w, tmp, n);
}

/* Nesting is bounded by the parser that built v (jansson: 2048 levels). */
void bt_jw_value(struct bt_jw *w, const json_t *v)
{
    const char *key;
    json_t *item;
    size_t i;
    bool first = true;

    switch (v ? json_typeof(v) : JSON_NULL) {
    case JSON_OBJECT:
        bt_jw_lit(w, "{");
        json_object_foreach((json_t *)(uintptr_t)v, key, item)
        {
            if (!first)
                bt_jw_lit(w, ",");
            first = false;
            bt_jw_string(w, key, strlen(key));
            bt_jw_lit(w, ":");
            bt_jw_value(w, item);
        }
        bt_jw_lit(w, "}");
        break;
    case JSON_ARRAY:
        bt_jw_lit(w, "[");
        json_array_foreach(v, i, item)
        {
            if (i)
                bt_jw_lit(w, ",");
            bt_jw_value(w, item);
        }
        bt_jw_lit(w, "]");
        break;
    case JSON_STRING:
        bt_jw_string(w, json_string_value(v), json_string_length(v));
        break;
    case JSON_INTEGER:
        bt_jw_int(w, json_integer_value(v));
        break;
    case JSON_REAL:
        jw_real(w, v);
        break;
    case JSON_TRUE:
        bt_jw_lit(w, "true");
        break;
    case JSON_FALSE:
        bt_jw_lit(w, "false");
        break;
    case JSON_NULL:
        bt_jw_lit(w, "null");
        break;
    }
}

/* "key": where key is a name from the code, not data. */
static void jw_key(struct bt_jw *w, const char *key)
{
    bt_jw_string(w, key, strlen(key));
    bt_jw_lit(w, ":");
}

bool bt_jw_pairs(struct bt_jw *w, bool first, const char *fmt, va_list ap)
{
    bool wrote = false;

    for (const char *f = fmt; *f; f++) {
        const char *key, *s;
        const json_t *o;
        char kind, mod;
        int64_t n;

        if (*f != 's')
            continue; /* braces, commas, spaces, colons */
        key = va_arg(ap, const char *);
        while (f[1] == ':' || f[1] == ' ')
            f++;
        kind = *++f;
        mod = f[1] == '?' || f[1] == '*' ? *++f : 0;
        if (!first)
            bt_jw_lit(w, ",");
        switch (kind) {
        case 's':
            s = va_arg(ap, const char *);
            if (!s && mod == '*')
                goto skip;
            jw_key(w, key);
            if (s)
                bt_jw_string(w, s, strlen(s));
            else
                bt_jw_lit(w, "null");
            break;
        case 'O':
            o = va_arg(ap, const json_t *);
            if (!o && mod == '*')
                goto skip;
            jw_key(w, key);
            bt_jw_value(w, o);
            break;
        case 'I':
        case 'i':
        case 'b':
            n = kind == 'I' ? va_arg(ap, long long) : va_arg(ap, int);
            jw_key(w, key);
            if (kind == 'b')
                bt_jw_put(w, n ? "true" : "false", n ? 4 : 5);
            else
                bt_jw_int(w, n);
            break;
        default:
            w->failed = true; /* a format this writer does not know: a bug */
            return false;
        }
        first = false;
        wrote = true;
        continue;
    skip:
        if (!first)
            w->len--; /* the comma written before the left-out pair */
    }
    return wrote;
}

char *bt_jw_finish(struct bt_jw *w, size_t *len)
{
    char *text;

    if (!bt_jw_reserve(w, 0) || w->failed) {
        bt_jw_release(w);
        return NULL;
    }
    w->buf[w->len] = '\0';
    if (len)
        *len = w->len;
    text = w->buf;
    *w = (struct bt_jw){0};
    return text;
}

void bt_jw_release(struct bt_jw *w)
{
    free(w->buf);
    *w = (struct bt_jw){0};
}
