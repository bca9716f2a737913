/* The wall and monotonic clocks in milliseconds, in one place. */
#include <time.h>

#include "clock.h"

static int64_t ms(clockid_t id)
{
    struct timespec ts;

    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t bt_clock_now_ms(void)
{
    return ms(CLOCK_REALTIME);
}

int64_t bt_clock_mono_ms(void)
{
    return ms(CLOCK_MONOTONIC);
}

void bt_clock_sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000};

    nanosleep(&ts, NULL);
}
