/* Base64 (RFC 4648, with padding) for the bytes a dead letter keeps that
 * are not text (base64.h). */
#include <stdbool.h>
#include <stddef.h>

#include "base64.h"

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static bool b64_char(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           c == '+' || c == '/';
}

/* Padded standard base64 (RFC 4648 section 4), as the schemas' pattern says. */
bool bt_b64_valid(const char *s, size_t len)
{
    size_t body = len;

    if (len % 4)
        return false;
    if (len && s[len - 1] == '=')
        body -= s[len - 2] == '=' ? 2 : 1;
    for (size_t i = 0; i < body; i++) {
        if (!b64_char((unsigned char)s[i]))
            return false;
    }
    return true;
}

size_t bt_b64_len(size_t len)
{
    return (len + 2) / 3 * 4;
}

/* Writes bt_b64_len(len) characters and a NUL to dst. */
void bt_b64_encode(char *dst, const void *src, size_t len)
{
    const unsigned char *s = src;
    size_t i;

    for (i = 0; i + 2 < len; i += 3) {
        *dst++ = b64_alphabet[s[i] >> 2];
        *dst++ = b64_alphabet[(s[i] & 0x03) << 4 | s[i + 1] >> 4];
        *dst++ = b64_alphabet[(s[i + 1] & 0x0f) << 2 | s[i + 2] >> 6];
        *dst++ = b64_alphabet[s[i + 2] & 0x3f];
    }
    if (i < len) {
        unsigned last = i + 1 < len ? s[i + 1] : 0;

        *dst++ = b64_alphabet[s[i] >> 2];
        *dst++ = b64_alphabet[(s[i] & 0x03) << 4 | last >> 4];
        *dst++ = i + 1 < len ? b64_alphabet[(last & 0x0f) << 2] : '=';
        *dst++ = '=';
    }
    *dst = '\0';
}
