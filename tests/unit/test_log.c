/* The log lines of common/log.c, read back strictly: in logfmt and in JSON
 * the message is under msg and every field under its own key; and every
 * bt_log format in the tree splits into its message and the fields it names,
 * with values of several words. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "logline.h"

static char path[64];
static int saved_stderr = -1;

/* stderr goes to a fresh file until capture_end. */
static void capture_start(void)
{
    int fd;

    snprintf(path, sizeof(path), "/tmp/bt-log-XXXXXX");
    cr_assert_geq(fd = mkstemp(path), 0);
    cr_assert_geq(saved_stderr = dup(STDERR_FILENO), 0);
    cr_assert_geq(dup2(fd, STDERR_FILENO), 0);
    close(fd);
}

static json_t *capture_end(bool json)
{
    char why[512];
    json_t *lines;

    dup2(saved_stderr, STDERR_FILENO);
    close(saved_stderr);
    lines = bt_test_log_read(path, json, why, sizeof(why));
    unlink(path);
    cr_assert_not_null(lines, "%s", why);
    return lines;
}

/* The line's msg and its fields past the common keys, in order, as
 * "msg|k=v|k=v". */
static void shape(json_t *line, char *out, size_t n)
{
    const char *key;
    json_t *v;
    size_t o =
        (size_t)snprintf(out, n, "%s", json_string_value(json_object_get(line, "msg")));

    json_object_foreach(line, key, v)
    {
        if (strcmp(key, "ts") && strcmp(key, "level") && strcmp(key, "prog") &&
            strcmp(key, "pid") && strcmp(key, "msg") && o < n)
            o += (size_t)snprintf(out + o, n - o, "|%s=%s", key, json_string_value(v));
    }
}

static const char *const expected[] = {
    "partitions assigned|count=8",
    "cannot apply event: service unreachable, try again|workflow=order 7|seq=3",
    "stopping",
    "child started|name=baton-worker|pid_=4242",
    "schedule fired|schedule=nightly \"full\" run|late_ms=12",
    "kafka: Connect to \"x\" failed:\nrefused|facility=FAIL",
    "|url=http://127.0.0.1:9464/metrics",
    "lookback gave up|err=a=b c|topic=t",
    "twice|id=1|id_=2",
};

static void emit(void)
{
    bt_log(BT_LOG_INFO, "partitions assigned: count=%d", 8);
    bt_log(BT_LOG_WARN, "cannot apply event: %s workflow=%s seq=%d",
           "service unreachable, try again", "order 7", 3);
    bt_log(BT_LOG_INFO, "stopping");
    /* pid is every line's own: the field is renamed, not lost */
    bt_log(BT_LOG_INFO, "child started name=%s pid=%d", "baton-worker", 4242);
    bt_log(BT_LOG_INFO, "schedule fired: schedule=\"%s\" late_ms=%d",
           "nightly \\\"full\\\" run", 12);
    bt_log(BT_LOG_ERROR, "kafka: %s facility=%s", "Connect to \"x\" failed:\nrefused",
           "FAIL");
    bt_log(BT_LOG_INFO, "url=http://%s:%d/metrics", "127.0.0.1", 9464);
    bt_log(BT_LOG_INFO, "lookback gave up: err=%s topic=%s", "a=b c", "t");
    bt_log(BT_LOG_INFO, "twice id=%d id=%d", 1, 2);
    bt_log(BT_LOG_DEBUG, "below the level: not formatted, not written");
    bt_log(BT_LOG_INFO, "odd bytes id=%s", "caf\xc3\xa9 \xff");
}

Test(log, carries_the_message_and_each_field_under_its_own_key)
{
    for (int json = 0; json < 2; json++) {
        size_t n = sizeof(expected) / sizeof(expected[0]);
        json_t *lines, *last;
        char got[512];

        bt_log_setup("worker", BT_LOG_INFO, json);
        capture_start();
        emit();
        lines = capture_end(json);
        cr_assert_eq(json_array_size(lines), n + 1, "%s: %zu lines",
                     json ? "json" : "logfmt", json_array_size(lines));
        for (size_t i = 0; i < n; i++) {
            json_t *line = json_array_get(lines, i);
            shape(line, got, sizeof(got));
            cr_assert_str_eq(got, expected[i], "%s line %zu", json ? "json" : "logfmt",
                             i);
            cr_assert_str_eq(json_string_value(json_object_get(line, "prog")), "worker");
        }
        cr_assert_str_eq(
            json_string_value(json_object_get(json_array_get(lines, 1), "level")),
            "warn");
        /* JSON must be UTF-8: a byte that is not becomes '?' */
        last = json_array_get(lines, n);
        cr_assert_str_eq(json_string_value(json_object_get(last, "id")),
                         json ? "caf\xc3\xa9 ?" : "caf\xc3\xa9 \xff");
        json_decref(lines);
    }
}

/* The format with each conversion replaced by a sample value: several words
 * for %s, so a value with spaces is tried at every field. */
static void sample_text(const char *fmt, char *out, size_t n)
{
    size_t o = 0;

    for (const char *p = fmt; *p && o + 16 < n; p++) {
        const char *sample;
        if (*p != '%') {
            out[o++] = *p;
            continue;
        }
        p += strspn(p + 1, "-+ #0123456789.*hlzjtL") + 1;
        sample = *p == 's' ? "two words" : *p == '%' ? "%" : *p == 'c' ? "c" : "42";
        o += (size_t)snprintf(out + o, n - o, "%s", sample);
    }
    out[o] = '\0';
}

#define NAME_CHARS "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_0123456789."

/* The names of the fields the format writes: each name= at its start or
 * after a space, as "|a|b". */
static void named_fields(const char *fmt, char *out, size_t n)
{
    size_t o = 0;

    out[0] = '\0';
    for (const char *p = fmt; *p; p++) {
        size_t len = strspn(p, NAME_CHARS);
        if ((p == fmt || p[-1] == ' ') && len && p[len] == '=' && o < n)
            o += (size_t)snprintf(out + o, n - o, "|%.*s", (int)len, p);
    }
}

/* The string literals right after "bt_log(<level>, " at src, concatenated
 * and unescaped into out; false when there are none (the macro itself). */
static bool format_at(const char *src, char *out, size_t n)
{
    const char *p = src + strlen("bt_log(");
    size_t o = 0;

    p += strcspn(p, ",;)");
    if (*p != ',')
        return false;
    p += strspn(p + 1, " \t\n") + 1;
    if (*p != '"')
        return false;
    while (*p == '"') {
        for (p++; *p != '"' && o + 1 < n; p++) {
            bool escaped = *p == '\\';
            p += escaped;
            out[o++] = escaped && *p == 'n' ? '\n' : *p;
        }
        p++;
        p += strspn(p, " \t\n");
    }
    out[o] = '\0';
    return true;
}

/* Every bt_log format of the programs' sources into fmts, one per line. */
static size_t collect_formats(char fmts[][512], size_t max)
{
    static const char *const dirs[] = {"common", "common/sdk", "workers", "scheduler",
                                       "cli"};
    size_t count = 0;

    for (size_t d = 0; d < sizeof(dirs) / sizeof(dirs[0]); d++) {
        char dir[512];
        DIR *dh;
        struct dirent *e;
        snprintf(dir, sizeof(dir), "%s/%s", BT_SOURCE_DIR, dirs[d]);
        cr_assert_not_null(dh = opendir(dir), "%s", dir);
        while ((e = readdir(dh))) {
            char file[1024], *src;
            size_t len = strlen(e->d_name);
            FILE *f;
            long size;
            if (len < 3 || strcmp(e->d_name + len - 2, ".c"))
                continue;
            snprintf(file, sizeof(file), "%s/%s", dir, e->d_name);
            cr_assert_not_null(f = fopen(file, "r"));
            fseek(f, 0, SEEK_END);
            size = ftell(f);
            rewind(f);
            cr_assert_not_null(src = calloc(1, (size_t)size + 1));
            cr_assert_eq(fread(src, 1, (size_t)size, f), (size_t)size);
            fclose(f);
            for (char *p = strstr(src, "bt_log("); p && count < max;
                 p = strstr(p + 1, "bt_log("))
                count += format_at(p, fmts[count], sizeof(fmts[0]));
            free(src);
        }
        closedir(dh);
    }
    return count;
}

Test(log, splits_every_bt_log_format_in_the_tree)
{
    static char fmts[400][512];
    size_t n = collect_formats(fmts, 400);
    json_t *lines;

    cr_assert_gt(n, 80, "found only %zu bt_log formats: is the scan broken?", n);
    bt_log_setup("worker", BT_LOG_DEBUG, 0);
    capture_start();
    for (size_t i = 0; i < n; i++) {
        char text[1024];
        sample_text(fmts[i], text, sizeof(text));
        bt_log(BT_LOG_INFO, "%s", text);
    }
    lines = capture_end(false);
    cr_assert_eq(json_array_size(lines), n);
    for (size_t i = 0; i < n; i++) {
        json_t *line = json_array_get(lines, i), *v;
        char want[512], got[512];
        size_t o = 0, lead = strspn(fmts[i], NAME_CHARS);
        const char *key;
        named_fields(fmts[i], want, sizeof(want));
        got[0] = '\0';
        json_object_foreach(line, key, v)
        {
            if (strcmp(key, "ts") && strcmp(key, "level") && strcmp(key, "prog") &&
                strcmp(key, "pid") && strcmp(key, "msg"))
                o += (size_t)snprintf(got + o, sizeof(got) - o, "|%s", key);
        }
        cr_expect_str_eq(got, want, "format \"%s\" gave the fields %s", fmts[i], got);
        /* a message, unless the format opens with a field */
        cr_expect_eq(json_string_length(json_object_get(line, "msg")) > 0,
                     !(lead && fmts[i][lead] == '='), "format \"%s\": msg \"%s\"",
                     fmts[i], json_string_value(json_object_get(line, "msg")));
    }
    json_decref(lines);
}
