/* The process's readiness: one reason per dependency (an atomic pointer to a
 * literal, NULL when reached) and a small table of group consumers with
 * their assignment state, under a mutex (rebalances are rare). */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>

#include "health.h"

static _Atomic(const char *) why_not[] = {
    [BT_HEALTH_REDIS] = "redis not reached yet",
    [BT_HEALTH_KAFKA] = "kafka not reached yet",
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
    const void *consumer;
    bool assigned;
} consumers[BT_HEALTH_MAX_CONSUMERS];
static size_t n_consumers; /* under lock */

void bt_health_set(enum bt_health_dep dep, const char *why)
{
    /* a store only on a change: connections report on every (re)connect */
    if (atomic_load_explicit(&why_not[dep], memory_order_relaxed) != why)
        atomic_store_explicit(&why_not[dep], why, memory_order_relaxed);
}

void bt_health_consumer(const void *consumer, bool assigned)
{
    size_t i;

    pthread_mutex_lock(&lock);
    for (i = 0; i < n_consumers && consumers[i].consumer != consumer; i++)
        ;
    if (i == n_consumers && n_consumers < BT_HEALTH_MAX_CONSUMERS)
        consumers[n_consumers++].consumer = consumer;
    if (i < n_consumers)
        consumers[i].assigned = assigned;
    pthread_mutex_unlock(&lock);
}

static _Atomic(const char *) stuck;

void bt_health_stuck(const char *why)
{
    if (atomic_load_explicit(&stuck, memory_order_relaxed) != why)
        atomic_store_explicit(&stuck, why, memory_order_relaxed);
}

bool bt_health_alive(char *why, size_t n)
{
    const char *s = atomic_load_explicit(&stuck, memory_order_relaxed);

    if (!s)
        return true;
    snprintf(why, n, "%s", s);
    return false;
}

bool bt_health_ready(char *why, size_t n)
{
    size_t waiting = 0, total;

    for (size_t dep = 0; dep < sizeof(why_not) / sizeof(why_not[0]); dep++) {
        const char *w = atomic_load_explicit(&why_not[dep], memory_order_relaxed);
        if (w) {
            snprintf(why, n, "%s", w);
            return false;
        }
    }
    pthread_mutex_lock(&lock);
    total = n_consumers;
    for (size_t i = 0; i < n_consumers; i++)
        waiting += !consumers[i].assigned;
    pthread_mutex_unlock(&lock);
    if (waiting) {
        snprintf(why, n, "waiting for partitions: %zu of %zu consumers", waiting, total);
        return false;
    }
    snprintf(why, n, "ready");
    return true;
}
