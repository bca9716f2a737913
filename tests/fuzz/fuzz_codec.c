/* libFuzzer target for the message codec: whatever the bytes, decode must not
 * crash, leak or misbehave; what it accepts must encode, and the encoding must
 * be a fix point (decode + encode gives the same bytes again). The same bytes
 * also go through bt_codec_dead_letter(), which must keep any payload.
 *
 * CMake builds it with its own driver (driver.c) as baton-fuzz-codec, which
 * the test suite runs on edited golden messages (tests/integration/
 * test_fuzz.c). With clang's libFuzzer, from the repository root:
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
 *     -D_POSIX_C_SOURCE=200809L -std=c11 -Icommon \
 *     tests/fuzz/fuzz_codec.c common/codec.c common/jsonw.c common/err.c -ljansson \
 *     -o build/fuzz_codec
 *   mkdir -p build/fuzz-corpus
 *   build/fuzz_codec -max_total_time=60 -max_len=4096 build/fuzz-corpus \
 *     tests/schemas
 * (the first directory collects new inputs; libFuzzer reads the golden cases
 * under the second one recursively as seeds) */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "err.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_fix_point(const struct bt_msg *msg)
{
    struct bt_msg again;
    char errstr[256];
    size_t len, len2;
    char *bytes, *bytes2;

    bytes = bt_codec_encode(msg, &len);
    BT_ASSERT(bytes);
    BT_ASSERT(strlen(bytes) == len);
    /* the canonical form may be longer than the input ("1e5" -> "100000.0") */
    BT_ASSERT(bt_codec_decode(bytes, len, SIZE_MAX, &again, errstr, sizeof(errstr)) == 0);
    bytes2 = bt_codec_encode(&again, &len2);
    BT_ASSERT(bytes2 && len2 == len && memcmp(bytes, bytes2, len) == 0);
    free(bytes2);
    free(bytes);
    bt_msg_release(&again);
}

/* The decoder reads its own canonical text on a fast path and anything else
 * with jansson: an "x-" property in front forces the full path, which must
 * accept the message too and build the same one (same canonical bytes). */
static void check_full_path_agrees(const uint8_t *data, size_t size,
                                   const struct bt_msg *msg)
{
    static const char ext[] = "\"x-fuzz\":0,";
    struct bt_msg full;
    char errstr[256], *forced, *a, *b;
    size_t brace = 0, la, lb;

    while (brace < size && data[brace] != '{')
        brace++;
    BT_ASSERT(brace < size);
    forced = malloc(size + sizeof(ext));
    BT_ASSERT(forced);
    memcpy(forced, data, brace + 1);
    memcpy(forced + brace + 1, ext, sizeof(ext) - 1);
    memcpy(forced + brace + sizeof(ext), data + brace + 1, size - brace - 1);
    BT_ASSERT(bt_codec_decode(forced, size + sizeof(ext) - 1, 1 << 21, &full, errstr,
                              sizeof(errstr)) == 0);
    a = bt_codec_encode(msg, &la);
    b = bt_codec_encode(&full, &lb);
    BT_ASSERT(a && b && la == lb && memcmp(a, b, la) == 0);
    free(a);
    free(b);
    free(forced);
    bt_msg_release(&full);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct bt_msg msg;
    char errstr[256];
    size_t keylen = size ? data[0] % 8 : 0;
    int rc;

    rc = bt_codec_decode(data, size, 1 << 20, &msg, errstr, sizeof(errstr));
    if (rc == 0) {
        check_fix_point(&msg);
        check_full_path_agrees(data, size, &msg);
        bt_msg_release(&msg);
    } else {
        BT_ASSERT(rc == BT_EINVALMSG || rc == BT_ETOOBIG || rc == BT_ENOMEM);
        BT_ASSERT(errstr[0] && !strchr(errstr, '\n'));
    }

    if (keylen > size)
        keylen = size;
    rc = bt_codec_dead_letter(&msg, errstr, "baton.events", 0, 42, data, keylen,
                              data + keylen, size - keylen);
    BT_ASSERT(rc == 0);
    BT_ASSERT(msg.payload_base64 || strlen(msg.payload) == size - keylen);
    check_fix_point(&msg);
    bt_msg_release(&msg);
    return 0;
}
