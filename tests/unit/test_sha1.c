#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "sha1.h"

static void expect_sha1(const char *data, size_t len, const char *want)
{
    char hex[41];

    bt_sha1_hex(data, len, hex);
    cr_assert_str_eq(hex, want, "sha1 of %zu bytes", len);
}

Test(sha1, matches_the_fips_vectors)
{
    expect_sha1("", 0, "da39a3ee5e6b4b0d3255bfef95601890afd80709");
    expect_sha1("abc", 3, "a9993e364706816aba3e25717850c26c9cd0d89d");
    expect_sha1("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", 56,
                "84983e441c3bd26ebaae4aa1f95129e5e54670f1");
}

Test(sha1, pads_lengths_at_the_block_edges)
{
    /* 55 bytes leave room for the length in the block, 56 and 64 do not. */
    static const struct {
        size_t len;
        const char *sha;
    } cases[] = {{55, "c1c8bbdc22796e28c0e15163d20899b65621d65a"},
                 {56, "c2db330f6083854c99d4b5bfb6e8f29f201be699"},
                 {64, "0098ba824b5c16427bd7a1122a5a442a25ec644d"},
                 {1000000, "34aa973cd4c4daa4f61eeb2bdbad27316534016f"}};
    char *a = malloc(1000000);

    cr_assert_not_null(a);
    memset(a, 'a', 1000000);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        expect_sha1(a, cases[i].len, cases[i].sha);
    free(a);
}
