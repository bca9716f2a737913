/* The worker's stop: bounded as a whole, and each of its steps named and
 * timed, so a stop that takes long says where its time went.
 *   bt_stop_begin(20);              the process exits 20 s later, whatever blocks
 *   bt_stop_step("activity role");  the step now running; the last one is timed
 * A step that took over a second is logged with its duration. */
#ifndef BT_WORKER_STOP_H
#define BT_WORKER_STOP_H

/* Starts the deadline (a detached thread; the process normally ends first). */
void bt_stop_begin(int grace_s);
/* Names the step now running; logs the previous one if it was slow. Steps may
 * be named from any thread, one at a time. Before bt_stop_begin: no-op. */
void bt_stop_step(const char *step);

#endif
