/* Logging: one line per event on stderr, in logfmt ("ts=... level=... msg=...")
 * or JSON. The message is the caller's printf text; key=value ids follow it. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

enum bt_log_level bt__log_level = BT_LOG_INFO;
static const char *prog = "baton";
static int as_json;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void bt_log_setup(const char *name, enum bt_log_level level, int json)
{
    prog = name;
    bt__log_level = level;
    as_json = json;
}

int bt_log_parse_level(const char *s)
{
    for (int i = 0; i < 4; i++)
        if (strcmp(s, level_names[i]) == 0)
            return i;
    return -1;
}

void bt__log(enum bt_log_level level, const char *fmt, ...)
{
    char msg[1024], line[1400], ts[32];
    struct timespec now;
    struct tm tm;
    va_list ap;
    int n;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
    if (as_json) {
        /* the message is ours, but may quote ids: escape the two JSON specials */
        char esc[2048];
        size_t j = 0;
        for (const char *p = msg; *p && j < sizeof(esc) - 2; p++) {
            if (*p == '"' || *p == '\\')
                esc[j++] = '\\';
            esc[j++] = (*p == '\n') ? ' ' : *p;
        }
        esc[j] = '\0';
        n = snprintf(line, sizeof(line),
                     "{\"ts\":\"%s.%03ldZ\",\"level\":\"%s\",\"prog\":\"%s\",\"pid\":%d,"
                     "\"msg\":\"%s\"}\n",
                     ts, now.tv_nsec / 1000000, level_names[level], prog, (int)getpid(),
                     esc);
    } else {
        /* the pid tells apart the processes of one program sharing a log */
        n = snprintf(line, sizeof(line), "ts=%s.%03ldZ level=%s prog=%s pid=%d %s\n", ts,
                     now.tv_nsec / 1000000, level_names[level], prog, (int)getpid(), msg);
    }
    if (n > (int)sizeof(line) - 1) {
        n = sizeof(line) - 1;
        line[n - 1] = '\n';
    }
    if (write(STDERR_FILENO, line, (size_t)n) < 0)
        return;
}
