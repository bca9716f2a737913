/* Which slot of a Redis Cluster a key is in, and which argument of a
 * command is its key (redis.h, redis_cluster.h). */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "redis.h"
#include "redis_cluster.h"

/* CRC16-CCITT (XMODEM), as Redis Cluster hashes keys: polynomial 0x1021,
 * initial value 0, bit by bit (a key is short; no table needed). */
static uint16_t crc16(const char *buf, size_t len)
{
    uint16_t crc = 0;

    for (size_t i = 0; i < len; i++) {
        crc ^= (uint16_t)((uint8_t)buf[i] << 8);
        for (int bit = 0; bit < 8; bit++)
            crc = (uint16_t)(crc & 0x8000 ? (crc << 1) ^ 0x1021 : crc << 1);
    }
    return crc;
}

unsigned bt_redis_slot(const char *key, size_t len)
{
    const char *open = memchr(key, '{', len), *close;

    if (open) {
        size_t from = (size_t)(open - key) + 1;

        close = memchr(open + 1, '}', len - from);
        if (close && close > open + 1)
            return crc16(open + 1, (size_t)(close - open - 1)) % BT_REDIS_SLOTS;
    }
    return crc16(key, len) % BT_REDIS_SLOTS;
}

static size_t len_of(const char **argv, const size_t *argvlen, int i)
{
    return argvlen ? argvlen[i] : strlen(argv[i]);
}

static bool is(const char **argv, const size_t *argvlen, int i, const char *name)
{
    return len_of(argv, argvlen, i) == strlen(name) &&
           strncasecmp(argv[i], name, strlen(name)) == 0;
}

int bt_redis_command_key(int argc, const char **argv, const size_t *argvlen,
                         const char **key, size_t *len)
{
    static const char *const keyless[] = {
        "TIME",    "INFO",     "PING",      "SCRIPT", "CLUSTER", "CONFIG", "CLIENT",
        "DBSIZE",  "FLUSHALL", "FLUSHDB",   "KEYS",   "SCAN",    "ECHO",   "ASKING",
        "COMMAND", "WAIT",     "SUBSCRIBE", "MULTI",  "EXEC"};
    int at = 1;

    if (argc < 2)
        return 0;
    for (size_t i = 0; i < sizeof(keyless) / sizeof(keyless[0]); i++)
        if (is(argv, argvlen, 0, keyless[i]))
            return 0;
    if (is(argv, argvlen, 0, "EVAL") || is(argv, argvlen, 0, "EVALSHA")) {
        if (argc < 4 || atoi(argv[2]) < 1)
            return 0;
        at = 3;
    } else if (is(argv, argvlen, 0, "MEMORY") || is(argv, argvlen, 0, "OBJECT")) {
        at = 2;
    } else if (is(argv, argvlen, 0, "XREAD") || is(argv, argvlen, 0, "XREADGROUP")) {
        for (at = 1; at < argc && !is(argv, argvlen, at, "STREAMS"); at++)
            ;
        at++;
    }
    if (at >= argc)
        return 0;
    *key = argv[at];
    *len = len_of(argv, argvlen, at);
    return 1;
}
