/* What `baton start` checks in Redis before it produces, as Temporal does:
 * what already lives under the id (so that a running instance is not started
 * twice by mistake, and a finished one is run again only when the user
 * allows it), and whether a live worker runs the workflow type (so that a
 * typo is refused at once instead of dead-lettered later). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "instance.h"

int bt_cli_existing(struct bt_store *store, const char *id, struct bt_cli_existing *ex)
{
    redisReply *reply;
    char key[600];
    int ret = BT_EXIT_UNAVAILABLE;

    memset(ex, 0, sizeof(*ex));
    reply = bt_redis_command(bt_store_redis(store), "HMGET %s status run queue parent",
                             bt_store_key(store, id, "", key, sizeof(key)));
    if (!reply || reply->type != REDIS_REPLY_ARRAY || reply->elements != 4)
        goto out;
    ret = BT_EXIT_OK;
    if (reply->element[0]->type != REDIS_REPLY_STRING)
        goto out;
    ex->exists = true;
    snprintf(ex->status, sizeof(ex->status), "%s", reply->element[0]->str);
    ex->finished = bt_status_final(bt_status_parse(ex->status));
    ex->run = reply->element[1]->str ? atoi(reply->element[1]->str) : 1;
    snprintf(ex->queue, sizeof(ex->queue), "%s",
             reply->element[2]->str && *reply->element[2]->str ? reply->element[2]->str
                                                               : "default");
    ex->child = reply->element[3]->type == REDIS_REPLY_STRING;
out:
    freeReplyObject(reply);
    return ret;
}

/* Prints the types of the reply to ZRANGE, for the refusal. */
static void print_types(const redisReply *types)
{
    for (size_t i = 0; i < types->elements; i++)
        fprintf(stderr, "%s%s", i ? ", " : "", types->element[i]->str);
}

int bt_cli_check_type(struct bt_store *store, const char *queue, const char *type,
                      bool refuse)
{
    char key[600];
    redisReply *types;
    int ret = BT_EXIT_UNAVAILABLE;

    queue = queue ? queue : "default";
    bt_types_key(bt_store_prefix(store), queue, key, sizeof(key));
    /* one read of the whole set: a first heartbeat between two reads would
     * make the type look missing from a set that holds it */
    types = bt_redis_command(bt_store_redis(store), "ZRANGE %s 0 -1", key);
    if (!types || types->type != REDIS_REPLY_ARRAY)
        goto out;
    ret = BT_EXIT_OK;
    /* empty: no live worker of the queue says what it runs; the serving
     * warning (start.c) tells the user when none lives at all */
    for (size_t i = 0; i < types->elements; i++)
        if (!strcmp(types->element[i]->str, type))
            goto out;
    if (types->elements == 0)
        goto out;
    fprintf(stderr,
            "baton start: %s: no live worker of queue \"%s\" runs workflow type "
            "\"%s\" (they run: ",
            refuse ? "error" : "warning", queue, type);
    print_types(types);
    fprintf(stderr, ")%s\n",
            refuse ? "; deploy a plugin that registers it, or check the type and --queue"
                   : "; it must be deployed by the time the start fires");
    ret = refuse ? BT_EXIT_FAIL : BT_EXIT_OK;
out:
    freeReplyObject(types);
    return ret;
}
