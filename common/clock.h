/* Time in milliseconds, the two clocks baton uses. Thread safe. */
#ifndef BT_CLOCK_H
#define BT_CLOCK_H

#include <stdint.h>

/* Wall clock, ms since the epoch: due times, deadlines, history records. */
int64_t bt_clock_now_ms(void);
/* Monotonic clock, ms: intervals and timeouts within one process. */
int64_t bt_clock_mono_ms(void);
/* Sleeps ms; a signal handled meanwhile cuts it short, so that a caller
 * that loops on a flag its handler sets answers at once. */
void bt_clock_sleep_ms(int ms);

#endif
