/* Logging: one line per event on stderr, logfmt or JSON. A call's printf text
 * is a message, then key=value fields ("partitions assigned: count=8"); once
 * formatted it is split here. The message is what comes before the first
 * word of the form name= (a trailing colon dropped); a field's value runs to
 * the next such word, so it may hold spaces, or is a "quoted" string with \"
 * and \\ escapes. Both formats then carry each field under its own key:
 *   ts=... level=info prog=worker pid=7 msg="partitions assigned" count=8
 *   {"ts":"...","level":"info","prog":"worker","pid":7,
 *    "msg":"partitions assigned","count":"8"} */
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/uio.h>
#include <jansson.h>

#include "log.h"

#define TEXT_MAX   2048 /* of the formatted text; longer is cut */
#define MAX_FIELDS 32   /* the last one takes the rest of the text */
#define KEY_MAX    40   /* a longer name= is text, not a field */

enum bt_log_level bt__log_level = BT_LOG_INFO;
static const char *prog = "baton";
static int as_json;

static const char *const level_names[] = {"debug", "info", "warn", "error"};
/* the keys every line has: a field named so is renamed (pid -> pid_) */
static const char *const own_keys[] = {"ts", "level", "prog", "pid", "msg"};

struct field {
    char key[KEY_MAX + 8]; /* room for the renaming underscores */
    char *value;           /* in the formatted text */
};

struct event {
    const char *msg;
    struct field fields[MAX_FIELDS];
    size_t n;
};

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

/* ---- splitting the text ---- */

static bool name_char(char c, bool first)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
           (!first && ((c >= '0' && c <= '9') || c == '.'));
}

/* Length of the field name at p when p opens a field ("name="), else 0. */
static size_t name_at(const char *p)
{
    size_t n = 0;

    while (name_char(p[n], n == 0))
        n++;
    return n && n <= KEY_MAX && p[n] == '=' ? n : 0;
}

/* The next field after p: the first name= that follows a space, or NULL. */
static char *next_field(char *p)
{
    while ((p = strchr(p, ' ')))
        if (name_at(++p))
            return p;
    return NULL;
}

static void trim_right(char *s)
{
    size_t n = strlen(s);

    while (n && s[n - 1] == ' ')
        s[--n] = '\0';
}

/* A value in double quotes at p that closes right before the next field or
 * the end: unescaped in place (\x gives x, \n a newline) and true, with *end
 * after the closing quote. False, p untouched, for anything else. */
static bool unquote(char *p, char **end)
{
    char *r = p + 1, *w = p;

    while (*r && *r != '"')
        r += r[0] == '\\' && r[1] ? 2 : 1;
    if (*r != '"' || (r[1] && next_field(r + 1) != r + 2))
        return false;
    *end = r + 1;
    for (char *q = p + 1; q < r; q++) {
        bool escaped = *q == '\\';
        q += escaped;
        *w++ = escaped && *q == 'n' ? '\n' : *q;
    }
    *w = '\0';
    return true;
}

/* A key no other key of the line has: own keys and repeated names get
 * underscores appended. */
static void set_key(struct event *ev, struct field *f, const char *name, size_t len)
{
    bool taken;

    memcpy(f->key, name, len);
    f->key[len] = '\0';
    do {
        taken = false;
        for (size_t i = 0; i < sizeof(own_keys) / sizeof(own_keys[0]); i++)
            taken |= !strcmp(f->key, own_keys[i]);
        for (struct field *g = ev->fields; g < f; g++)
            taken |= !strcmp(f->key, g->key);
        if (taken && len + 1 < sizeof(f->key))
            f->key[len++] = '_', f->key[len] = '\0';
    } while (taken && len + 1 < sizeof(f->key));
}

/* Splits text (modified in place) into the message and its fields. */
static void split(char *text, struct event *ev)
{
    char *p = name_at(text) ? text : next_field(text), *end = NULL;
    size_t n;

    ev->msg = p == text ? "" : text;
    ev->n = 0;
    if (p != text) {
        if (p)
            p[-1] = '\0';
        trim_right(text);
        if ((n = strlen(text)) && text[n - 1] == ':')
            text[n - 1] = '\0';
        trim_right(text);
    }
    while (p && ev->n < MAX_FIELDS) {
        struct field *f = &ev->fields[ev->n++];
        bool quoted;
        n = name_at(p);
        set_key(ev, f, p, n);
        f->value = p += n + 1;
        quoted = *p == '"' && unquote(p, &end);
        p = ev->n < MAX_FIELDS ? next_field(quoted ? end : p) : NULL;
        if (p)
            p[-1] = '\0';
        if (!quoted)
            trim_right(f->value);
    }
}

/* ---- writing ---- */

struct out {
    char buf[2 * TEXT_MAX + 1024]; /* an escaped text fits twice over */
    size_t len;
};

static void put(struct out *o, const char *s, size_t n)
{
    if (n > sizeof(o->buf) - 1 - o->len)
        n = sizeof(o->buf) - 1 - o->len;
    memcpy(o->buf + o->len, s, n);
    o->len += n;
}

static void puts_(struct out *o, const char *s)
{
    put(o, s, strlen(s));
}

/* A logfmt value: bare when it can be, else quoted with Go's escapes. */
static void put_value(struct out *o, const char *v)
{
    bool bare = *v != '\0';

    for (const char *c = v; *c && bare; c++)
        bare =
            (unsigned char)*c > ' ' && *c != '"' && *c != '=' && *c != '\\' && *c != 0x7f;
    if (bare) {
        puts_(o, v);
        return;
    }
    puts_(o, "\"");
    for (const unsigned char *c = (const unsigned char *)v; *c; c++) {
        char esc[8];
        if (*c == '"' || *c == '\\')
            snprintf(esc, sizeof(esc), "\\%c", *c);
        else if (*c == '\n' || *c == '\t' || *c == '\r')
            snprintf(esc, sizeof(esc), "\\%c", *c == '\n' ? 'n' : *c == '\t' ? 't' : 'r');
        else if (*c < ' ' || *c == 0x7f)
            snprintf(esc, sizeof(esc), "\\u%04x", *c);
        else
            esc[0] = (char)*c, esc[1] = '\0';
        puts_(o, esc);
    }
    puts_(o, "\"");
}

static void write_logfmt(const char *head, const struct event *ev)
{
    struct out o = {.len = 0};

    puts_(&o, head);
    puts_(&o, " msg=");
    put_value(&o, ev->msg);
    for (size_t i = 0; i < ev->n; i++) {
        puts_(&o, " ");
        puts_(&o, ev->fields[i].key);
        puts_(&o, "=");
        put_value(&o, ev->fields[i].value);
    }
    o.buf[o.len++] = '\n'; /* put() left room for it */
    if (write(STDERR_FILENO, o.buf, o.len) < 0)
        return;
}

/* Length of the UTF-8 sequence at s by its bytes' shapes, 0 when broken. */
static size_t utf8_len(const unsigned char *s)
{
    size_t n = s[0] < 0x80             ? 1
               : (s[0] & 0xe0) == 0xc0 ? 2
               : (s[0] & 0xf0) == 0xe0 ? 3
               : (s[0] & 0xf8) == 0xf0 ? 4
                                       : 0;

    for (size_t i = 1; i < n; i++)
        if ((s[i] & 0xc0) != 0x80)
            return 0;
    return n;
}

/* A JSON string of s, which must be UTF-8: a broken sequence becomes '?', and
 * if jansson still refuses (an overlong form, a surrogate) every byte over
 * 0x7f does. NULL: no memory. */
static json_t *jstr(const char *s)
{
    json_t *str = json_string(s);
    unsigned char *copy, *c;
    size_t n;

    if (str || !(copy = (unsigned char *)strdup(s)))
        return str;
    for (c = copy; *c; c += n ? n : 1)
        if (!(n = utf8_len(c)))
            *c = '?';
    if (!(str = json_string((char *)copy))) {
        for (c = copy; *c; c++)
            *c = *c >= 0x80 ? '?' : *c;
        str = json_string((char *)copy);
    }
    free(copy);
    return str;
}

static void write_json(const char *ts, enum bt_log_level level, const struct event *ev)
{
    json_t *root = json_object();
    char newline[] = "\n";
    struct iovec iov[2] = {{.iov_base = NULL}, {.iov_base = newline, .iov_len = 1}};
    char *line;

    json_object_set_new(root, "ts", json_string(ts));
    json_object_set_new(root, "level", json_string(level_names[level]));
    json_object_set_new(root, "prog", jstr(prog));
    json_object_set_new(root, "pid", json_integer(getpid()));
    json_object_set_new(root, "msg", jstr(ev->msg));
    for (size_t i = 0; i < ev->n; i++)
        json_object_set_new(root, ev->fields[i].key, jstr(ev->fields[i].value));
    line = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    if (!line) /* out of memory: the line is lost rather than half written */
        return;
    iov[0].iov_base = line;
    iov[0].iov_len = strlen(line);
    if (writev(STDERR_FILENO, iov, 2) < 0) {
        free(line);
        return;
    }
    free(line);
}

void bt__log(enum bt_log_level level, const char *fmt, ...)
{
    char text[TEXT_MAX], ts[40], day[24], head[160];
    struct event ev;
    struct timespec now;
    struct tm tm;
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    strftime(day, sizeof(day), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(ts, sizeof(ts), "%s.%03ldZ", day, now.tv_nsec / 1000000);
    split(text, &ev);
    if (as_json) {
        write_json(ts, level, &ev);
        return;
    }
    /* the pid tells apart the processes of one program sharing a log */
    snprintf(head, sizeof(head), "ts=%s level=%s prog=%s pid=%d", ts, level_names[level],
             prog, (int)getpid());
    write_logfmt(head, &ev);
}
