/* A driver for the codec's fuzz target without libFuzzer (gcc builds it, CI
 * runs it): every file under the given directories is a seed, run as it is,
 * then `count` inputs made from the seeds by a few random edits (bytes
 * flipped, ranges cut or doubled, JSON punctuation inserted). The target
 * aborts on any broken property (fuzz_codec.c); exit 0 means none broke.
 *   baton-fuzz-codec COUNT SEED DIR...
 * The same SEED gives the same inputs: a failure can be run again. */
#define _XOPEN_SOURCE 700 /* nftw */
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_SEEDS 4096
#define MAX_INPUT 8192

static struct seed {
    uint8_t *data;
    size_t len;
} seeds[MAX_SEEDS];
static size_t n_seeds;
static uint64_t state;

static uint64_t next(void)
{
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return state;
}

static int add_seed(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    FILE *f;

    (void)ftw;
    if (type != FTW_F || n_seeds == MAX_SEEDS || st->st_size > MAX_INPUT / 2)
        return 0;
    if (!(f = fopen(path, "rb")))
        return 0;
    seeds[n_seeds].data = malloc((size_t)st->st_size + 1);
    BT_ASSERT(seeds[n_seeds].data);
    seeds[n_seeds].len = fread(seeds[n_seeds].data, 1, (size_t)st->st_size, f);
    fclose(f);
    LLVMFuzzerTestOneInput(seeds[n_seeds].data, seeds[n_seeds].len);
    n_seeds++;
    return 0;
}

/* One random edit of buf[0..*len) (capacity MAX_INPUT). */
static void edit(uint8_t *buf, size_t *len)
{
    static const char punct[] = "{}[]\":,\\u0019-+.eEtfnl \x80\xc3\xff";
    size_t at = *len ? next() % *len : 0, n = 1 + next() % 8;

    switch (next() % 4) {
    case 0: /* flip a byte */
        if (*len)
            buf[at] ^= (uint8_t)(1u << (next() % 8));
        break;
    case 1: /* cut a range */
        if (at + n > *len)
            n = *len - at;
        memmove(buf + at, buf + at + n, *len - at - n);
        *len -= n;
        break;
    case 2: /* double a range */
        if (at + n > *len)
            n = *len - at;
        if (*len + n <= MAX_INPUT) {
            memmove(buf + at + n, buf + at, *len - at);
            *len += n;
        }
        break;
    default: /* insert punctuation */
        if (*len < MAX_INPUT) {
            memmove(buf + at + 1, buf + at, *len - at);
            buf[at] = (uint8_t)punct[next() % (sizeof(punct) - 1)];
            (*len)++;
        }
    }
}

int main(int argc, char **argv)
{
    static uint8_t buf[MAX_INPUT];
    long count;

    if (argc < 4) {
        fprintf(stderr, "usage: baton-fuzz-codec COUNT SEED DIR...\n");
        return 2;
    }
    count = strtol(argv[1], NULL, 10);
    state = strtoull(argv[2], NULL, 10) | 1;
    for (int i = 3; i < argc; i++)
        if (nftw(argv[i], add_seed, 16, FTW_PHYS)) {
            fprintf(stderr, "baton-fuzz-codec: cannot read %s\n", argv[i]);
            return 2;
        }
    if (!n_seeds) {
        fprintf(stderr, "baton-fuzz-codec: no seeds\n");
        return 2;
    }
    for (long i = 0; i < count; i++) {
        const struct seed *s = &seeds[next() % n_seeds];
        size_t len = s->len, edits = 1 + next() % 4;
        memcpy(buf, s->data, len);
        while (edits--)
            edit(buf, &len);
        LLVMFuzzerTestOneInput(buf, len);
    }
    printf("baton-fuzz-codec: %zu seeds, %ld inputs, no property broken\n", n_seeds,
           count);
    for (size_t i = 0; i < n_seeds; i++)
        free(seeds[i].data);
    return 0;
}
