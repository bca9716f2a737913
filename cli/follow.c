/* Waiting for an instance without polling: the commit that finishes an
 * instance appends a "finished" record to its history stream in the same
 * script, so a blocking XREAD of that stream wakes the moment the outcome is
 * in Redis (the truth), before the result message reaches Kafka. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "err.h"

/* The "finished" record among the "e" fields of one stream entry, or NULL. */
static json_t *finished_in(const redisReply *fields)
{
    for (size_t f = 1; f < fields->elements; f += 2) {
        const redisReply *v = fields->element[f];
        json_t *rec;
        const char *ev;
        if (v->type != REDIS_REPLY_STRING || !strstr(v->str, "\"finished\""))
            continue;
        rec = json_loadb(v->str, v->len, 0, NULL);
        ev = json_string_value(json_object_get(rec, "ev"));
        if (ev && !strcmp(ev, "finished"))
            return rec;
        json_decref(rec);
    }
    return NULL;
}

int bt_cli_follow(struct bt_store *store, const char *id, char *after, size_t n,
                  int block_ms, json_t **finished)
{
    char key[600];
    redisReply *reply;
    int ret = 0;

    *finished = NULL;
    bt_store_key(store, id, ":history", key, sizeof(key));
    reply =
        bt_redis_command(bt_store_redis(store), "XREAD COUNT 100 BLOCK %d STREAMS %s %s",
                         block_ms > 0 ? block_ms : 1, key, after);
    if (!reply || reply->type == REDIS_REPLY_ERROR) {
        freeReplyObject(reply);
        return BT_EAGAIN;
    }
    /* [[key, [[id, [field, value, ...]], ...]]], or nil when nothing came */
    if (reply->type == REDIS_REPLY_ARRAY && reply->elements == 1 &&
        reply->element[0]->type == REDIS_REPLY_ARRAY &&
        reply->element[0]->elements == 2) {
        const redisReply *entries = reply->element[0]->element[1];
        for (size_t i = 0; i < entries->elements; i++) {
            const redisReply *entry = entries->element[i];
            if (entry->type != REDIS_REPLY_ARRAY || entry->elements != 2)
                continue;
            snprintf(after, n, "%s", entry->element[0]->str);
            if (!*finished && entry->element[1]->type == REDIS_REPLY_ARRAY)
                *finished = finished_in(entry->element[1]);
        }
        ret = *finished ? 1 : 0;
    }
    freeReplyObject(reply);
    return ret;
}
