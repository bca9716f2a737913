/* One line per significant event on stderr, logfmt or JSON, level checked
 * before the message is formatted. A call's text is a lowercase message, then
 * its fields as name=value separated by spaces (a value may hold spaces, or be
 * "quoted" with \" and \\ escapes):
 *   bt_log(BT_LOG_INFO, "partitions assigned: count=%d", n);
 * is written with the message under its own key, every field under its name:
 *   ts=2025-01-02T03:04:05.678Z level=info prog=worker pid=7 msg="partitions
 *   assigned" count=8 (one line), or with --log-json one object, values as
 *   strings: {"ts":"...","level":"info","prog":"worker","pid":7,"msg":
 *   "partitions assigned","count":"8"}
 * ts, level, prog, pid and msg are every line's own: a field named so gets an
 * underscore appended (pid_), as does a name repeated in one line.
 * Thread safe: each line is written with one write(2). */
#ifndef BT_LOG_H
#define BT_LOG_H

enum bt_log_level { BT_LOG_DEBUG, BT_LOG_INFO, BT_LOG_WARN, BT_LOG_ERROR };

/* Set once at start-up, before threads start. name: the program ("worker");
 * the string must outlive the program. */
void bt_log_setup(const char *name, enum bt_log_level level, int json);
/* Parses "debug", "info", "warn", "error"; returns -1 when it is none. */
int bt_log_parse_level(const char *s);

extern enum bt_log_level bt__log_level;
#define bt_log(level, ...)                                                               \
    do {                                                                                 \
        if ((level) >= bt__log_level)                                                    \
            bt__log((level), __VA_ARGS__);                                               \
    } while (0)
void bt__log(enum bt_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif
