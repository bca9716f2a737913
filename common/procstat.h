/* Figures of this process from /proc (Linux), for the process_* metrics that
 * Prometheus's client libraries export under the same names. */
#ifndef BT_PROCSTAT_H
#define BT_PROCSTAT_H

#include <stdint.h>

struct bt_procstat {
    double start_time;  /* seconds since the epoch */
    double cpu_seconds; /* user + system, all threads */
    int64_t rss_bytes;  /* resident set */
    int64_t open_fds;
};

/* Reads them now from /proc/self/stat, /proc/stat (boot time) and
 * /proc/self/fd. Returns 0, or BT_EIO when /proc cannot be read or parsed
 * (*ps is then unspecified). Thread safe. */
int bt_procstat_read(struct bt_procstat *ps);

/* Parses the text of /proc/<pid>/stat: CPU ticks (utime + stime), start
 * time in ticks after boot, resident pages. Returns 0 or BT_EIO. Exposed for
 * tests: the command name between parentheses may hold spaces and ')'. */
int bt_procstat_parse_stat(const char *text, uint64_t *cpu_ticks, uint64_t *start_ticks,
                           int64_t *rss_pages);

#endif
