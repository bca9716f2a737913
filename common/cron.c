/* Cron expressions: a parser to one bitset per field, and a next-fire search
 * that walks wall-clock ("civil") time field by field, then maps the civil
 * time found back to an instant of the zone, minding the gaps and repeats of
 * daylight-saving changes. Civil times are counted in seconds since
 * 1970-01-01T00:00:00 of the wall clock, which makes them plain integers. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "cron.h"
#include "err.h"

#define DAY          86400
#define SEARCH_DAYS  (366 * 8) /* covers leap days whatever the weekday rule */
#define ZONEINFO_DIR "/usr/share/zoneinfo"

static const char *const month_names[] = {"jan", "feb", "mar", "apr", "may", "jun", "jul",
                                          "aug", "sep", "oct", "nov", "dec", NULL};
static const char *const day_names[] = {"sun", "mon", "tue", "wed",
                                        "thu", "fri", "sat", NULL};

static const struct {
    const char *name;
    int min, max;
    const char *const *names; /* names of min, min + 1, ... or NULL */
} fields[BT_CRON__FIELDS] = {
    [BT_CRON_SEC] = {"second", 0, 59, NULL},
    [BT_CRON_MIN] = {"minute", 0, 59, NULL},
    [BT_CRON_HOUR] = {"hour", 0, 23, NULL},
    [BT_CRON_DOM] = {"day-of-month", 1, 31, NULL},
    [BT_CRON_MONTH] = {"month", 1, 12, month_names},
    [BT_CRON_DOW] = {"day-of-week", 0, 7, day_names}, /* 7 is Sunday as well as 0 */
};

/* Reads a value of field f from [s, end): a number or a name. Returns 0 or
 * BT_EINVAL with errstr filled. */
static int parse_value(int f, const char *s, const char *end, int *v, char *errstr,
                       size_t errstr_size)
{
    int len = (int)(end - s);
    long n = 0;

    if (len > 0 && isdigit((unsigned char)*s)) {
        for (const char *p = s; p < end; p++) {
            if (!isdigit((unsigned char)*p))
                goto bad;
            if (n < 1000) /* beyond every maximum already: stop before overflowing */
                n = n * 10 + (*p - '0');
        }
        if (n < fields[f].min || n > fields[f].max) {
            snprintf(errstr, errstr_size, "cron: %s field \"%.*s\" out of range %d-%d",
                     fields[f].name, len, s, fields[f].min, fields[f].max);
            return BT_EINVAL;
        }
        *v = (int)n;
        return 0;
    }
    for (int i = 0; fields[f].names && fields[f].names[i]; i++) {
        if (len == 3 && !strncasecmp(s, fields[f].names[i], 3)) {
            *v = fields[f].min + i;
            return 0;
        }
    }
bad:
    snprintf(errstr, errstr_size, "cron: %s field \"%.*s\" is not a %s", fields[f].name,
             len, s, fields[f].names ? "number or a name" : "number");
    return BT_EINVAL;
}

/* One list item: "*", "v", "a-b", each optionally "/step". */
static int parse_item(int f, const char *s, const char *end, uint64_t *bits, char *errstr,
                      size_t errstr_size)
{
    const char *slash = memchr(s, '/', (size_t)(end - s)), *stop = slash ? slash : end;
    const char *dash = memchr(s, '-', (size_t)(stop - s));
    int lo = fields[f].min, hi = fields[f].max, step = 1, ret;
    int len = (int)(end - s);

    if (s == end) {
        snprintf(errstr, errstr_size, "cron: %s field has an empty list item",
                 fields[f].name);
        return BT_EINVAL;
    }
    if (!(stop - s == 1 && *s == '*')) {
        if ((ret = parse_value(f, s, dash ? dash : stop, &lo, errstr, errstr_size)))
            return ret;
        hi = lo;
        if (dash && (ret = parse_value(f, dash + 1, stop, &hi, errstr, errstr_size)))
            return ret;
        if (slash && !dash)
            hi = fields[f].max; /* "5/15": from 5 to the end, as most crons read it */
        if (lo > hi) {
            snprintf(errstr, errstr_size,
                     "cron: %s field \"%.*s\": range start is after its end",
                     fields[f].name, len, s);
            return BT_EINVAL;
        }
    }
    if (slash) {
        char *e;
        long n = strtol(slash + 1, &e, 10);
        if (e != end || slash + 1 == end || !isdigit((unsigned char)slash[1]) || n < 1 ||
            n > fields[f].max - fields[f].min + 1) {
            snprintf(errstr, errstr_size, "cron: %s field \"%.*s\": step must be 1-%d",
                     fields[f].name, len, s, fields[f].max - fields[f].min + 1);
            return BT_EINVAL;
        }
        step = (int)n;
    }
    for (int v = lo; v <= hi; v += step)
        *bits |= 1ULL << (f == BT_CRON_DOW && v == 7 ? 0 : v);
    return 0;
}

static int parse_field(int f, const char *s, const char *end, uint64_t *bits,
                       char *errstr, size_t errstr_size)
{
    int ret;

    for (;;) {
        const char *comma = memchr(s, ',', (size_t)(end - s));
        if ((ret = parse_item(f, s, comma ? comma : end, bits, errstr, errstr_size)))
            return ret;
        if (!comma)
            return 0;
        s = comma + 1;
    }
}

static int64_t floor_div(int64_t a, int64_t b)
{
    return a / b - (a % b != 0 && (a < 0) != (b < 0));
}

/* Days since 1970-01-01 of a proleptic Gregorian date, and back (H. Hinnant's
 * algorithms: exact for any year, no time zone involved). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = floor_div(y, 400);
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
    z += 719468;
    int64_t era = floor_div(z, 146097);
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;

    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

static bool has(const struct bt_cron *cron, int f, int v)
{
    return cron->bits[f] >> v & 1;
}

static bool day_matches(const struct bt_cron *cron, int64_t days, int mday)
{
    int wday = (int)((days % 7 + 11) % 7); /* 1970-01-01 was a Thursday */
    bool dom = has(cron, BT_CRON_DOM, mday), dow = has(cron, BT_CRON_DOW, wday);

    return cron->dom_star || cron->dow_star ? dom && dow : dom || dow;
}

/* The first matching time of day at or after h:mi:s, into them; false when
 * none is left in the day. */
static bool time_of_day(const struct bt_cron *cron, int *h, int *mi, int *s)
{
    for (; *h < 24; (*h)++, *mi = 0, *s = 0) {
        if (!has(cron, BT_CRON_HOUR, *h))
            continue;
        for (; *mi < 60; (*mi)++, *s = 0) {
            if (!has(cron, BT_CRON_MIN, *mi))
                continue;
            for (; *s < 60; (*s)++)
                if (has(cron, BT_CRON_SEC, *s))
                    return true;
        }
    }
    return false;
}

/* The first matching civil time strictly after c, or -1 within SEARCH_DAYS. */
static int64_t next_civil(const struct bt_cron *cron, int64_t c)
{
    int64_t days = floor_div(c + 1, DAY), limit = days + SEARCH_DAYS, y;
    int sod = (int)(c + 1 - days * DAY), h = sod / 3600, mi = sod / 60 % 60, s = sod % 60;
    int m, d;

    while (days < limit) {
        civil_from_days(days, &y, &m, &d);
        if (!has(cron, BT_CRON_MONTH, m)) {
            int64_t next_y = m == 12 ? y + 1 : y;
            days = days_from_civil(next_y, m == 12 ? 1 : m + 1, 1);
        } else if (day_matches(cron, days, d) && time_of_day(cron, &h, &mi, &s)) {
            return days * DAY + h * 3600 + mi * 60 + s;
        } else {
            days++;
        }
        h = mi = s = 0;
    }
    return -1;
}

int bt_cron_parse(struct bt_cron *cron, const char *expr, char *errstr,
                  size_t errstr_size)
{
    const char *start[BT_CRON__FIELDS + 1], *end[BT_CRON__FIELDS + 1];
    int n = 0, ret;
    const char *p = expr;

    memset(cron, 0, sizeof(*cron));
    while (*p) {
        while (isspace((unsigned char)*p))
            p++;
        if (!*p)
            break;
        if (n == BT_CRON__FIELDS) {
            n++;
            break;
        }
        start[n] = p;
        while (*p && !isspace((unsigned char)*p))
            p++;
        end[n++] = p;
    }
    if (n != 5 && n != 6) {
        snprintf(errstr, errstr_size,
                 "cron: expected 5 fields (minute hour day-of-month month day-of-week) "
                 "or 6 with seconds first, got %s%d",
                 n > BT_CRON__FIELDS ? "more than " : "", n > BT_CRON__FIELDS ? 6 : n);
        return BT_EINVAL;
    }
    if (n == 5)
        cron->bits[BT_CRON_SEC] = 1; /* second 0 */
    cron->fixed = true;
    for (int i = 0; i < n; i++) {
        int f = i + (n == 5);
        if ((ret = parse_field(f, start[i], end[i], &cron->bits[f], errstr, errstr_size)))
            return ret;
        if (f <= BT_CRON_HOUR && *start[i] == '*')
            cron->fixed = false;
        if (f == BT_CRON_DOM)
            cron->dom_star = *start[i] == '*';
        if (f == BT_CRON_DOW)
            cron->dow_star = *start[i] == '*';
    }
    /* from 1970 every month/day combination recurs within the search window */
    if (next_civil(cron, -1) < 0) {
        snprintf(errstr, errstr_size,
                 "cron: \"%s\" matches no date (day-of-month never "
                 "falls in the months given)",
                 expr);
        return BT_EINVAL;
    }
    return 0;
}

int bt_cron_zone_check(const char *tz, char *errstr, size_t errstr_size)
{
    char path[512];
    bool ok = tz && *tz && strlen(tz) < 256 && tz[0] != '/' && !strstr(tz, "..");

    for (const char *p = tz; ok && *p; p++)
        ok = isalnum((unsigned char)*p) || strchr("/_+-", *p);
    if (ok && !strcmp(tz, "UTC"))
        return 0;
    snprintf(path, sizeof(path), "%s/%s", ZONEINFO_DIR, ok ? tz : "");
    if (ok && access(path, R_OK) == 0)
        return 0;
    snprintf(errstr, errstr_size,
             "tz: unknown time zone \"%s\" (a name under %s, such as "
             "Europe/Paris, or UTC)",
             tz ? tz : "", ZONEINFO_DIR);
    return BT_EINVAL;
}

/* Wall-clock time of instant t in the zone of TZ (or UTC). */
static int64_t civil_of(int64_t t, bool utc)
{
    time_t tt = (time_t)t;
    struct tm tm;

    if (utc || !localtime_r(&tt, &tm))
        return t;
    return days_from_civil(tm.tm_year + 1900LL, tm.tm_mon + 1, tm.tm_mday) * DAY +
           tm.tm_hour * 3600 + tm.tm_min * 60 + tm.tm_sec;
}

static int64_t offset_at(int64_t t, bool utc)
{
    return civil_of(t, utc) - t;
}

/* The first instant in (lo, hi] whose civil time is after c; civil time must
 * grow with the instant there (one forward change at most). */
static int64_t first_after(int64_t lo, int64_t hi, int64_t c, bool utc)
{
    while (hi - lo > 1) {
        int64_t mid = lo + (hi - lo) / 2;
        if (civil_of(mid, utc) > c)
            hi = mid;
        else
            lo = mid;
    }
    return hi;
}

/* The instants whose civil time is c, ascending: 0 (a gap: *gap_end gets the
 * instant the clocks jumped at), 1 or 2 (a repeat). Offsets one day around
 * tell the candidates apart: zones change them at most once a day. */
static int instants_of(int64_t c, bool utc, int64_t out[2], int64_t *gap_end)
{
    int64_t before = offset_at(c - DAY, utc), after = offset_at(c + DAY, utc);
    int64_t a = c - before, b = c - after;
    int n = 0;

    if (civil_of(a, utc) == c)
        out[n++] = a;
    if (b != a && civil_of(b, utc) == c)
        out[n++] = b;
    if (n == 2 && out[1] < out[0]) {
        out[0] = b;
        out[1] = a;
    }
    if (n == 0)
        *gap_end = b < a && civil_of(b, utc) < c && civil_of(a, utc) > c
                       ? first_after(b, a, c, utc)
                       : a;
    return n;
}

static int64_t next_instant(const struct bt_cron *cron, int64_t after, bool utc)
{
    int64_t c = civil_of(after, utc), best = -1, occ[2], gap_end,
            o = offset_at(after, utc);

    while ((c = next_civil(cron, c)) >= 0) {
        int n = instants_of(c, utc, occ, &gap_end);
        if (n == 0) {
            if (cron->fixed && gap_end > after) {
                best = gap_end;
                break;
            }
            c = civil_of(gap_end, utc) - 1;
        } else if (occ[0] > after) {
            best = occ[0];
            break;
        } else if (n == 2 && !cron->fixed && occ[1] > after) {
            best = occ[1];
            break;
        }
    }
    /* Clocks going back within a day: civil time restarts lower, so matches in
     * the repeated stretch come before best though their civil time is not
     * after after's. Fixed-time expressions fire on first occurrences only. */
    if (!cron->fixed && !utc && offset_at(after + DAY, utc) < o) {
        int64_t lo = after, hi = after + DAY, o2 = offset_at(hi, utc), c2;
        while (hi - lo > 1) {
            int64_t mid = lo + (hi - lo) / 2;
            if (offset_at(mid, utc) == o)
                lo = mid;
            else
                hi = mid;
        }
        c2 = next_civil(cron, civil_of(hi, utc) - 1);
        if (c2 >= 0 && c2 < civil_of(hi, utc) + (o - o2) && (best < 0 || c2 - o2 < best))
            best = c2 - o2;
    }
    return best;
}

/* Switches TZ to tz for one computation; *saved gets the previous value (or
 * NULL: unset) for zone_leave. Only local time needs this: TZ is the one way
 * the C library offers to read another zone's rules. */
static int zone_enter(const char *tz, char **saved)
{
    const char *old = getenv("TZ");

    if (!(*saved = old ? strdup(old) : NULL) && old)
        return BT_ENOMEM;
    if (setenv("TZ", tz, 1)) {
        free(*saved);
        return BT_ENOMEM;
    }
    tzset();
    return 0;
}

static void zone_leave(char *saved)
{
    if (saved)
        setenv("TZ", saved, 1);
    else
        unsetenv("TZ");
    tzset();
    free(saved);
}

int bt_cron_next(const struct bt_cron *cron, const char *tz, int64_t after_ms,
                 int64_t *next_ms)
{
    bool utc = !tz || !*tz || !strcmp(tz, "UTC");
    char errstr[8], *saved = NULL;
    int64_t t;
    int ret;

    if (!utc) {
        if (bt_cron_zone_check(tz, errstr, sizeof(errstr)))
            return BT_EINVAL;
        if ((ret = zone_enter(tz, &saved)))
            return ret;
    }
    /* fire times are whole seconds: after t = floor(after), any later second */
    t = next_instant(cron, floor_div(after_ms, 1000), utc);
    if (!utc)
        zone_leave(saved);
    if (t < 0)
        return BT_ENOENT;
    *next_ms = t * 1000;
    return 0;
}

char *bt_cron_fire_id(const char *name, int64_t fire_ms, char *buf, size_t n)
{
    int64_t s = floor_div(fire_ms, 1000), days = floor_div(s, DAY), y;
    int sod = (int)(s - days * DAY), m, d;
    int len;

    civil_from_days(days, &y, &m, &d);
    len = snprintf(buf, n, "%s@%04lld%02d%02dT%02d%02d%02dZ", name, (long long)y, m, d,
                   sod / 3600, sod / 60 % 60, sod % 60);
    return len < 0 || (size_t)len >= n ? NULL : buf;
}
