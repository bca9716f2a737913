/* SHA-1 (FIPS 180-4), only to name Lua scripts the way Redis does for
 * EVALSHA: not for anything that needs a secure hash. */
#ifndef BT_SHA1_H
#define BT_SHA1_H

#include <stddef.h>

/* Writes the digest of data[0..len) to hex as 40 lowercase hex digits and a
 * NUL, the form SCRIPT LOAD returns. Pure function, thread safe. */
void bt_sha1_hex(const void *data, size_t len, char hex[41]);

#endif
