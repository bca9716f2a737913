/* Redis Cluster's key slots (redis_cluster.h): the hash, the hash tag, and
 * which argument of a command is its key. */
#include <criterion/criterion.h>
#include <string.h>

#include "redis.h"
#include "redis_cluster.h"

static unsigned slot(const char *key)
{
    return bt_redis_slot(key, strlen(key));
}

Test(redis_slot, hashes_as_redis_cluster_does)
{
    /* CRC16/XMODEM's check value: crc("123456789") = 0x31c3 */
    cr_expect_eq(slot("123456789"), 0x31c3 % 16384);
    /* CLUSTER KEYSLOT on redis 7 */
    cr_expect_eq(slot("foo"), 12182);
    cr_expect_eq(slot("bar"), 5061);
    cr_expect_eq(slot("hello"), 866);
    cr_expect_eq(slot(""), 0);
}

Test(redis_slot, hashes_only_the_tag_when_there_is_one)
{
    cr_expect_eq(slot("{user1000}.following"), slot("user1000"));
    cr_expect_eq(slot("bt:{abc}:journal"), slot("abc"));
    cr_expect_eq(slot("foo{bar}{zap}"), slot("bar"), "the first tag only");
    cr_expect_eq(slot("foo{{bar}}zap"), slot("{bar"), "from the first { to the next }");
    cr_expect_eq(slot("foo{}{bar}"), bt_redis_slot("foo{}{bar}", 10), "an empty tag");
    cr_expect_neq(slot("foo{}{bar}"), slot("bar"), "an empty tag hashes the whole key");
    cr_expect_eq(slot("foo{bar"), bt_redis_slot("foo{bar", 7), "no closing brace");
    /* the length given, not the NUL, ends the key */
    cr_expect_eq(bt_redis_slot("{ab}cd", 3), slot("{ab"));
}

static const char *key_of(int argc, const char **argv)
{
    static char buf[64];
    const char *key;
    size_t len;

    if (!bt_redis_command_key(argc, argv, NULL, &key, &len))
        return "(none)";
    snprintf(buf, sizeof(buf), "%.*s", (int)len, key);
    return buf;
}

#define KEY_OF(...)                                                                      \
    key_of(sizeof((const char *[]){__VA_ARGS__}) / sizeof(char *),                       \
           (const char *[]){__VA_ARGS__})

Test(redis_slot, finds_the_key_of_each_kind_of_command)
{
    cr_expect_str_eq(KEY_OF("GET", "k"), "k");
    cr_expect_str_eq(KEY_OF("hmget", "h", "a", "b"), "h");
    cr_expect_str_eq(KEY_OF("EVALSHA", "0123", "2", "k1", "k2", "arg"), "k1");
    cr_expect_str_eq(KEY_OF("EVAL", "return 1", "0", "arg"), "(none)");
    cr_expect_str_eq(KEY_OF("XREAD", "COUNT", "5", "STREAMS", "s", "0"), "s");
    cr_expect_str_eq(KEY_OF("XREAD", "COUNT", "5"), "(none)");
    cr_expect_str_eq(KEY_OF("MEMORY", "USAGE", "k"), "k");
    cr_expect_str_eq(KEY_OF("PUBLISH", "chan", "msg"), "chan");
    cr_expect_str_eq(KEY_OF("TIME"), "(none)");
    cr_expect_str_eq(KEY_OF("INFO", "memory"), "(none)");
    cr_expect_str_eq(KEY_OF("SCRIPT", "LOAD", "return 1"), "(none)");
}
