/* The worker's stop (stop.h). The deadline exits with status 0: what was not
 * committed by then is redelivered, a held eager task swept (reliability.md). */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"
#include "stop.h"

#define SLOW_STEP_MS 1000

static _Atomic(const char *) current; /* NULL until the stop begins */
static _Atomic int64_t step_began_ms;
static int grace;

static void *deadline(void *arg)
{
    struct timespec ts = {grace, 0};

    (void)arg;
    while (nanosleep(&ts, &ts) && errno == EINTR)
        ;
    bt_log(BT_LOG_WARN, "the stop took over %d s, exiting: step=\"%s\"", grace,
           atomic_load(&current));
    _exit(0);
    return NULL;
}

void bt_stop_begin(int grace_s)
{
    pthread_t t;

    grace = grace_s;
    atomic_store(&step_began_ms, bt_clock_mono_ms());
    atomic_store(&current, "stopping");
    if (pthread_create(&t, NULL, deadline, NULL) == 0)
        pthread_detach(t);
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
