/* Cron expressions for schedules: parsing "*\/5 * * * *" with a clear error
 * per field, and computing the next fire time in a time zone. Five fields
 * (minute hour day-of-month month day-of-week) or six with a leading seconds
 * field; each a list of values, ranges and steps ("1,5-10,20-40/5", "*\/15");
 * months and days of the week also by name (JAN, MON); 7 is Sunday too. When
 * both day-of-month and day-of-week are restricted (neither starts with '*'),
 * a day matches when either does, as in Vixie cron.
 *
 * Daylight-saving changes follow Vixie/Debian cron: a wildcard expression
 * (its seconds, minute or hour field starts with '*') fires at every instant
 * whose wall-clock time matches, so it skips the hour the clocks jump over
 * and runs through a repeated hour twice; a fixed-time expression (such as
 * 30 2 * * *) fires once per matching wall-clock time: at the end of the jump
 * when that time is skipped, at its first occurrence when it is repeated. */
#ifndef BT_CRON_H
#define BT_CRON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum {
    BT_CRON_SEC,
    BT_CRON_MIN,
    BT_CRON_HOUR,
    BT_CRON_DOM,
    BT_CRON_MONTH,
    BT_CRON_DOW,
    BT_CRON__FIELDS
};

/* A parsed expression: a value type, no resources. Read by cron.c only. */
struct bt_cron {
    uint64_t bits[BT_CRON__FIELDS]; /* bit v set: value v matches */
    bool dom_star, dow_star;        /* field starts with '*' (the OR rule above) */
    bool fixed;                     /* a fixed-time expression (DST rule above) */
};

/* Parses expr into cron. Returns 0, or BT_EINVAL with errstr naming the field
 * and the value, e.g. `cron: minute field "61" out of range 0-59`; an
 * expression that matches no date at all ("0 0 30 2 *") is refused too.
 * Thread safe. */
int bt_cron_parse(struct bt_cron *cron, const char *expr, char *errstr,
                  size_t errstr_size);

/* Checks that tz is "UTC" or a zone of the system's tz database
 * ("Europe/Paris"). Returns 0, or BT_EINVAL with errstr
 * `tz: unknown time zone "Mars/Olympus"`. Thread safe. */
int bt_cron_zone_check(const char *tz, char *errstr, size_t errstr_size);

/* The first fire time of cron strictly after after_ms (ms since the epoch),
 * evaluated in zone tz (NULL, "" or "UTC": UTC), in *next_ms (a whole
 * second). Returns 0, BT_EINVAL when tz is not a known zone, or BT_ENOENT when
 * nothing matches in the next eight years. Not thread safe for a zone other
 * than UTC: it sets the process's TZ for the duration of the call (and puts
 * it back), so only one thread of a process may use local time. */
int bt_cron_next(const struct bt_cron *cron, const char *tz, int64_t after_ms,
                 int64_t *next_ms);

/* The instance id of schedule name's firing at fire_ms:
 * "<name>@<YYYYMMDDTHHMMSSZ>" in UTC, so every scheduler that fires the same
 * slot starts the same instance and workers drop the duplicates. Writes into
 * buf (size n) and returns buf, or NULL when it does not fit. */
char *bt_cron_fire_id(const char *name, int64_t fire_ms, char *buf, size_t n);

#endif
