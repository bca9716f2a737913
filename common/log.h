/* One line per significant event, logfmt or JSON, level checked before the
 * message is formatted. Thread safe: each line is written with one write(2). */
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
