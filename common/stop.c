/* A process's stop (stop.h). The deadline exits with status 0: what was not
 * committed by then is redelivered, a held eager task swept, a claimed timer
 * fired again when its lease ends (reliability.md). */
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "err.h"
#include "log.h"
#include "stop.h"

#define SLOW_STEP_MS 1000

static _Atomic(const char *) current; /* NULL until the stop begins */
static _Atomic int64_t step_began_ms;
static atomic_bool asked_for, armed;
static sem_t asked; /* posted when the stop is asked for and armed */
static int grace_ms;

static void *deadline(void *arg)
{
    struct timespec ts = {grace_ms / 1000, (long)(grace_ms % 1000) * 1000000};

    (void)arg;
    while (sem_wait(&asked) && errno == EINTR)
        ;
    while (nanosleep(&ts, &ts) && errno == EINTR)
        ;
    bt_log(BT_LOG_WARN, "the stop took over %d ms, exiting: step=\"%s\"", grace_ms,
           atomic_load(&current));
    _exit(0);
    return NULL;
}

int bt_stop_arm(int grace)
{
    pthread_t t;

    if (grace <= 0)
        return 0;
    grace_ms = grace;
    if (sem_init(&asked, 0, 0) || pthread_create(&t, NULL, deadline, NULL))
        return BT_ENOMEM;
    pthread_detach(t);
    atomic_store(&armed, true);
    /* a stop asked for before: a second post does no harm */
    if (atomic_load(&asked_for))
        sem_post(&asked);
    return 0;
}

void bt_stop_signal(void)
{
    if (atomic_exchange(&asked_for, true))
        return;
    /* all async-signal-safe: lock-free atomics, clock_gettime, sem_post */
    atomic_store(&step_began_ms, bt_clock_mono_ms());
    atomic_store(&current, "stopping");
    if (atomic_load(&armed))
        sem_post(&asked);
}

void bt_stop_step(const char *step)
{
    const char *prev = atomic_load(&current);
    int64_t now = bt_clock_mono_ms(), began;

    if (!prev)
        return;
    began = atomic_exchange(&step_began_ms, now);
    if (now - began > SLOW_STEP_MS)
        bt_log(BT_LOG_INFO, "slow stop step: step=\"%s\" ms=%lld", prev,
               (long long)(now - began));
    atomic_store(&current, step);
}
