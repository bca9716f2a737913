/* A process's stop: bounded as a whole from the moment it is asked for, and
 * each of its steps named and timed, so a stop that takes long says where its
 * time went.
 *   bt_stop_arm(20000);             at start: the deadline waits for the stop
 *   bt_stop_signal();               in the SIGTERM handler: the process exits
 *                                   20 s later, whatever blocks meanwhile
 *   bt_stop_step("activity role");  the step now running; the last one is timed
 * The deadline counts from the signal, not from when the main loop notices
 * it: a thread blocked on a store that does not answer cannot delay it. A
 * step that took over a second is logged with its duration. */
#ifndef BT_STOP_H
#define BT_STOP_H

/* Starts the deadline's thread, waiting; grace_ms <= 0: no deadline. Call
 * once, before the signal handlers are set. Returns 0 or BT_ENOMEM. */
int bt_stop_arm(int grace_ms);
/* The stop begins now (the deadline runs). Async-signal-safe; later calls
 * do nothing. */
void bt_stop_signal(void);
/* Names the step now running; logs the previous one if it was slow. Steps may
 * be named from any thread, one at a time. Before the stop began: no-op. */
void bt_stop_step(const char *step);

#endif
