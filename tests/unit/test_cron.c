/* The cron parser and next-fire search: field syntax, exact error texts,
 * month ends, leap days, the day-of-month/day-of-week rule and
 * daylight-saving changes in Europe/Paris. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "cron.h"
#include "err.h"

/* "2026-03-29T01:00:00Z" -> ms since the epoch (UTC only). */
static int64_t ms(const char *rfc3339)
{
    int y, m, d, hh, mm, ss;

    cr_assert_eq(sscanf(rfc3339, "%d-%d-%dT%d:%d:%dZ", &y, &m, &d, &hh, &mm, &ss), 6);
    y -= m <= 2;
    int era = (y >= 0 ? y : y - 399) / 400, yoe = y - era * 400;
    int doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t days = (int64_t)era * 146097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719468;
    return ((days * 86400) + hh * 3600 + mm * 60 + ss) * 1000;
}

/* Fire times of expr in tz after `from`, as "YYYYMMDDTHHMMSSZ" separated by
 * spaces, for n fires. */
static const char *fires(const char *expr, const char *tz, const char *from, int n)
{
    static char out[1024];
    struct bt_cron cron;
    char errstr[256], id[64];
    int64_t t = ms(from);

    cr_assert_eq(bt_cron_parse(&cron, expr, errstr, sizeof(errstr)), 0, "%s: %s", expr,
                 errstr);
    out[0] = '\0';
    for (int i = 0; i < n; i++) {
        cr_assert_eq(bt_cron_next(&cron, tz, t, &t), 0, "%s", expr);
        cr_assert(bt_cron_fire_id("", t, id, sizeof(id)));
        strcat(out, i ? " " : "");
        strcat(out, id + 1);
    }
    return out;
}

static const char *parse_error(const char *expr)
{
    static char errstr[256];
    struct bt_cron cron;

    cr_assert_eq(bt_cron_parse(&cron, expr, errstr, sizeof(errstr)), BT_EINVAL,
                 "\"%s\" must be refused", expr);
    return errstr;
}

Test(cron, reads_lists_ranges_and_steps)
{
    cr_assert_str_eq(fires("5-20/5,45 * * * *", NULL, "2026-01-01T00:00:00Z", 6),
                     "20260101T000500Z 20260101T001000Z 20260101T001500Z "
                     "20260101T002000Z 20260101T004500Z 20260101T010500Z");
    cr_assert_str_eq(
        fires("*/20 9-10 * * *", "UTC", "2026-01-01T10:30:00Z", 4),
        "20260101T104000Z 20260102T090000Z 20260102T092000Z 20260102T094000Z");
    cr_assert_str_eq(fires("50/5 0 1 1 *", NULL, "2026-01-01T00:00:00Z", 3),
                     "20260101T005000Z 20260101T005500Z 20270101T005000Z");
    cr_assert_str_eq(fires("0 12 * JAN,jul Mon-wed", NULL, "2026-06-30T00:00:00Z", 2),
                     "20260701T120000Z 20260706T120000Z");
}

Test(cron, fires_every_second_with_a_leading_seconds_field)
{
    cr_assert_str_eq(fires("*/1 * * * * *", NULL, "2026-12-31T23:59:58Z", 3),
                     "20261231T235959Z 20270101T000000Z 20270101T000001Z");
    cr_assert_str_eq(fires("30 0 12 * * *", NULL, "2026-01-01T12:00:30Z", 1),
                     "20260102T120030Z");
}

Test(cron, next_fire_is_strictly_after_the_given_time)
{
    struct bt_cron cron;
    char errstr[256];
    int64_t next;

    cr_assert_eq(bt_cron_parse(&cron, "* * * * * *", errstr, sizeof(errstr)), 0);
    cr_assert_eq(bt_cron_next(&cron, NULL, 1000, &next), 0);
    cr_assert_eq(next, 2000);
    cr_assert_eq(bt_cron_next(&cron, NULL, 1999, &next), 0);
    cr_assert_eq(next, 2000);
}

Test(cron, crosses_month_and_year_ends_and_leap_days)
{
    cr_assert_str_eq(fires("0 0 31 * *", NULL, "2026-01-31T00:00:00Z", 3),
                     "20260331T000000Z 20260531T000000Z 20260731T000000Z");
    cr_assert_str_eq(fires("0 12 29 2 *", NULL, "2026-01-01T00:00:00Z", 2),
                     "20280229T120000Z 20320229T120000Z");
    cr_assert_str_eq(fires("0 0 1 * *", NULL, "2026-12-31T23:59:59Z", 2),
                     "20270101T000000Z 20270201T000000Z");
    cr_assert_str_eq(fires("0 0 30 * *", NULL, "2027-01-30T00:00:00Z", 2),
                     "20270330T000000Z 20270430T000000Z");
}

Test(cron, matches_day_of_month_or_day_of_week_when_both_are_given)
{
    /* February 2026: Fridays 6, 13, 20, 27; the 15th is a Sunday */
    cr_assert_str_eq(fires("0 0 15 * 5", NULL, "2026-02-01T00:00:00Z", 5),
                     "20260206T000000Z 20260213T000000Z 20260215T000000Z "
                     "20260220T000000Z 20260227T000000Z");
    /* a field starting with '*' does not count as given: both must match */
    cr_assert_str_eq(fires("0 0 */10 * 5", NULL, "2026-02-01T00:00:00Z", 2),
                     "20260501T000000Z 20260731T000000Z");
    cr_assert_str_eq(fires("0 0 * * 7", NULL, "2026-02-01T00:00:01Z", 1),
                     "20260208T000000Z");
    cr_assert_str_eq(fires("0 0 * * 5-7", NULL, "2026-02-06T00:00:00Z", 3),
                     "20260207T000000Z 20260208T000000Z 20260213T000000Z");
}

/* Europe/Paris: 2026-03-29 02:00 CET -> 03:00 CEST (01:00Z), 2026-10-25 03:00
 * CEST -> 02:00 CET (01:00Z). */
Test(cron, skips_or_shifts_the_hour_the_clocks_jump_over)
{
    /* a fixed time in the gap fires once, when the clocks jump */
    cr_assert_str_eq(fires("30 2 * * *", "Europe/Paris", "2026-03-28T00:00:00Z", 3),
                     "20260328T013000Z 20260329T010000Z 20260330T003000Z");
    /* a wildcard expression just has no 02:xx that day */
    cr_assert_str_eq(fires("0 * * * *", "Europe/Paris", "2026-03-28T23:30:00Z", 3),
                     "20260329T000000Z 20260329T010000Z 20260329T020000Z");
    cr_assert_str_eq(fires("*/30 2 * * *", "Europe/Paris", "2026-03-28T01:00:00Z", 3),
                     "20260328T013000Z 20260330T000000Z 20260330T003000Z");
}

Test(cron, fires_a_repeated_fixed_time_once_and_wildcards_twice)
{
    cr_assert_str_eq(fires("30 2 * * *", "Europe/Paris", "2026-10-24T12:00:00Z", 2),
                     "20261025T003000Z 20261026T013000Z");
    cr_assert_str_eq(fires("*/30 * * * *", "Europe/Paris", "2026-10-24T23:45:00Z", 6),
                     "20261025T000000Z 20261025T003000Z 20261025T010000Z "
                     "20261025T013000Z 20261025T020000Z 20261025T023000Z");
    /* from inside the repeated hour's second pass */
    cr_assert_str_eq(fires("*/30 * * * *", "Europe/Paris", "2026-10-25T01:10:00Z", 2),
                     "20261025T013000Z 20261025T020000Z");
    cr_assert_str_eq(fires("30 2 * * *", "Europe/Paris", "2026-10-25T01:10:00Z", 1),
                     "20261026T013000Z");
}

Test(cron, evaluates_in_the_zone_given)
{
    cr_assert_str_eq(fires("0 9 * * *", "Europe/Paris", "2026-01-15T00:00:00Z", 1),
                     "20260115T080000Z");
    cr_assert_str_eq(fires("0 9 * * *", "Europe/Paris", "2026-07-15T00:00:00Z", 1),
                     "20260715T070000Z");
    cr_assert_str_eq(fires("0 9 * * *", "America/New_York", "2026-01-15T00:00:00Z", 1),
                     "20260115T140000Z");
}

Test(cron, names_the_field_and_the_value_it_refuses)
{
    cr_assert_str_eq(parse_error("61 * * * *"),
                     "cron: minute field \"61\" out of range 0-59");
    cr_assert_str_eq(parse_error("0 24 * * *"),
                     "cron: hour field \"24\" out of range 0-23");
    cr_assert_str_eq(parse_error("0 0 0 * *"),
                     "cron: day-of-month field \"0\" out of range 1-31");
    cr_assert_str_eq(parse_error("0 0 * 1-13 *"),
                     "cron: month field \"13\" out of range 1-12");
    cr_assert_str_eq(parse_error("0 0 * * 8"),
                     "cron: day-of-week field \"8\" out of range 0-7");
    cr_assert_str_eq(parse_error("60 * * * * *"),
                     "cron: second field \"60\" out of range 0-59");
    cr_assert_str_eq(parse_error("5,x * * * *"),
                     "cron: minute field \"x\" is not a number");
    cr_assert_str_eq(parse_error("0 0 * FOO *"),
                     "cron: month field \"FOO\" is not a number or a name");
    cr_assert_str_eq(parse_error("*/0 * * * *"),
                     "cron: minute field \"*/0\": step must be 1-60");
    cr_assert_str_eq(parse_error("0 10-2 * * *"),
                     "cron: hour field \"10-2\": range start is after its end");
    cr_assert_str_eq(parse_error("1,,2 * * * *"),
                     "cron: minute field has an empty list item");
    cr_assert_str_eq(
        parse_error("* * * *"),
        "cron: expected 5 fields (minute hour day-of-month month day-of-week) "
        "or 6 with seconds first, got 4");
    cr_assert_str_eq(
        parse_error("* * * * * * *"),
        "cron: expected 5 fields (minute hour day-of-month month day-of-week) "
        "or 6 with seconds first, got more than 6");
    cr_assert_str_eq(
        parse_error("0 0 30 2 *"),
        "cron: \"0 0 30 2 *\" matches no date (day-of-month never falls in the "
        "months given)");
    cr_assert_str_eq(
        parse_error(""),
        "cron: expected 5 fields (minute hour day-of-month month day-of-week) "
        "or 6 with seconds first, got 0");
}

Test(cron, knows_time_zones_by_name)
{
    char errstr[256];

    cr_assert_eq(bt_cron_zone_check("UTC", errstr, sizeof(errstr)), 0);
    cr_assert_eq(bt_cron_zone_check("Europe/Paris", errstr, sizeof(errstr)), 0);
    cr_assert_eq(bt_cron_zone_check("Mars/Olympus", errstr, sizeof(errstr)), BT_EINVAL);
    cr_assert_str_eq(errstr, "tz: unknown time zone \"Mars/Olympus\" (a name under "
                             "/usr/share/zoneinfo, such as Europe/Paris, or UTC)");
    cr_assert_eq(bt_cron_zone_check("../../etc/passwd", errstr, sizeof(errstr)),
                 BT_EINVAL);
}

Test(cron, names_each_fire_by_schedule_and_utc_time)
{
    char id[64];

    cr_assert_str_eq(
        bt_cron_fire_id("nightly", ms("2026-11-27T10:00:05Z") + 999, id, sizeof(id)),
        "nightly@20261127T100005Z");
    cr_assert_null(bt_cron_fire_id("nightly", 0, id, 10));
}
