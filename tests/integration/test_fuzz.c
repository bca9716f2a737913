/* The codec's fuzz target in every test run (tests/fuzz/): the golden
 * messages of tests/schemas as seeds, then 100,000 inputs edited from them;
 * a broken property (a crash, a leak under the sanitizers, a decode that does
 * not encode back to a fix point, the fast and the full decoding paths
 * disagreeing) fails the run. The seed changes with every run and is printed:
 * `build/bin/baton-fuzz-codec 100000 SEED tests/schemas` runs it again. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "install.h"

Test(fuzz, the_codec_keeps_its_properties_on_edited_messages, .timeout = 300)
{
    char log[] = "/tmp/baton-fuzz-XXXXXX", tail[4096];
    unsigned long long seed = (unsigned long long)time(NULL);
    int fd = mkstemp(log);

    cr_assert_geq(fd, 0);
    close(fd);
    cr_assert_eq(bt_test_sh(log, 240000,
                            "'%s/baton-fuzz-codec' 100000 %llu '%s/tests/schemas'",
                            BT_BIN_DIR, seed, BT_SOURCE_DIR),
                 0, "seed %llu broke a property:\n%s", seed,
                 bt_test_tail(log, tail, sizeof(tail)));
    unlink(log);
}
