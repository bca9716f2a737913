/* Base64 (RFC 4648 alphabet, with padding), for the codec's bytes fields. */
#ifndef BT_BASE64_H
#define BT_BASE64_H

#include <stdbool.h>
#include <stddef.h>

/* True when s[0..len) is padded base64 text. */
bool bt_b64_valid(const char *s, size_t len);
/* The length of len bytes in base64 (without a NUL). */
size_t bt_b64_len(size_t len);
/* Writes len bytes of src as base64 to dst (bt_b64_len(len) bytes, no NUL). */
void bt_b64_encode(char *dst, const void *src, size_t len);

#endif
