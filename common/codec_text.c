/* The codec's rules for text, shared by both directions: what a string may
 * hold, and what an id and a queue name may (codec.h, codec_int.h). */
#include <stdbool.h>
#include <stddef.h>

#include "codec.h"
#include "codec_int.h"
#include "jsonw.h"

/* Valid UTF-8 (no overlong forms, surrogates or code points past U+10FFFF)
 * without NUL bytes: what a JSON string can carry and a C string can hold. */
bool bt_codec_text_ok(const char *str, size_t len)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;

    while (i < len) {
        size_t n = 1;

        if (s[i] >= 0x80 && !(n = bt_jw_utf8_seq(s + i, len - i)))
            return false;
        if (!s[i])
            return false;
        i += n;
    }
    return true;
}

bool bt_codec_queue_ok(const char *s, size_t len, size_t max)
{
    if (!len || len > max)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
            return false;
    }
    return true;
}

/* Checks an id-like string that is already valid UTF-8. On ID_CTRL, *pos is
 * the byte offset and *cp the code point (C0, DEL or C1). */
int bt_codec_id_check(const char *str, size_t len, size_t *pos, unsigned *cp)
{
    const unsigned char *s = (const unsigned char *)str;

    if (!len)
        return ID_EMPTY;
    if (len > BT_ID_MAX)
        return ID_LONG;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < 0x20 || s[i] == 0x7f) {
            *pos = i;
            *cp = s[i];
            return ID_CTRL;
        }
        /* U+0080..U+009F are C1 controls: C2 80 .. C2 9F in UTF-8 */
        if (s[i] == 0xc2 && i + 1 < len && s[i + 1] <= 0x9f) {
            *pos = i;
            *cp = s[i + 1];
            return ID_CTRL;
        }
    }
    return ID_OK;
}
