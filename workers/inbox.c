/* The workflow role's inbox (inbox.h): a locked FIFO list. */
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "inbox.h"

void bt_inbox_init(struct bt_inbox *in)
{
    in->head = NULL;
    in->tail = &in->head;
    pthread_mutex_init(&in->lock, NULL);
}

void bt_inbox_push(struct bt_inbox *in, const char *suffix, const char *id,
                   const char *payload, size_t len)
{
    struct bt_local_event *ev = malloc(sizeof(*ev) + len + 1);

    BT_ASSERT(ev);
    ev->next = NULL;
    ev->suffix = strdup(suffix);
    ev->id = strdup(id);
    BT_ASSERT(ev->suffix && ev->id);
    ev->len = len;
    memcpy(ev->payload, payload, len);
    ev->payload[len] = '\0';
    pthread_mutex_lock(&in->lock);
    *in->tail = ev;
    in->tail = &ev->next;
    pthread_mutex_unlock(&in->lock);
}

struct bt_local_event *bt_inbox_pop(struct bt_inbox *in)
{
    struct bt_local_event *ev;

    pthread_mutex_lock(&in->lock);
    if ((ev = in->head) && !(in->head = ev->next))
        in->tail = &in->head;
    pthread_mutex_unlock(&in->lock);
    return ev;
}

void bt_local_event_free(struct bt_local_event *ev)
{
    if (!ev)
        return;
    free(ev->suffix);
    free(ev->id);
    free(ev);
}

void bt_inbox_release(struct bt_inbox *in)
{
    struct bt_local_event *ev;

    while ((ev = bt_inbox_pop(in)))
        bt_local_event_free(ev);
    pthread_mutex_destroy(&in->lock);
}
