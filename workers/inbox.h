/* The workflow role's inbox: outcomes of eager tasks, handed over by the
 * activity threads of the same worker, waiting for the workflow thread's
 * next poll. Thread safe: any thread pushes, the workflow thread pops. */
#ifndef BT_INBOX_H
#define BT_INBOX_H

#include <pthread.h>
#include <stddef.h>

/* One outcome, as it would have been produced to Kafka. */
struct bt_local_event {
    struct bt_local_event *next;
    char *suffix; /* its events topic, should the instance be another's now */
    char *id;
    size_t len;
    char payload[]; /* len bytes, then '\0' */
};

struct bt_inbox {
    pthread_mutex_t lock;
    struct bt_local_event *head, **tail;
};

void bt_inbox_init(struct bt_inbox *in);
/* Copies the event in; returns at once. */
void bt_inbox_push(struct bt_inbox *in, const char *suffix, const char *id,
                   const char *payload, size_t len);
/* The oldest event, or NULL; the caller frees it with bt_local_event_free. */
struct bt_local_event *bt_inbox_pop(struct bt_inbox *in);
void bt_local_event_free(struct bt_local_event *ev);
/* Frees what is left. */
void bt_inbox_release(struct bt_inbox *in);

#endif
