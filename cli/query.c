/* The query language (query.h); its scan over the index is query_scan.c. */
#define _XOPEN_SOURCE   700 /* strptime */
#define _DEFAULT_SOURCE     /* timegm */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "cli.h"
#include "err.h"
#include "instance.h"
#include "query.h"
#include "redis.h"

/* RFC 3339 ("2026-12-01T10:00:00Z") or a date ("2026-12-01", its midnight
 * UTC), as ms since the epoch; BT_EINVAL when it is neither. */
static int64_t parse_time(const char *s)
{
    struct tm tm = {0};
    const char *end = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);

    if (!end) {
        memset(&tm, 0, sizeof(tm));
        end = strptime(s, "%Y-%m-%d", &tm);
    }
    if (!end || (*end && strcmp(end, "Z")))
        return BT_EINVAL;
    return (int64_t)timegm(&tm) * 1000;
}

/* A bare word as a JSON value: true, false, a number, else text. */
static json_t *bare_value(const char *s)
{
    char *end;
    long long i;
    double d;

    if (!strcmp(s, "true") || !strcmp(s, "false"))
        return json_boolean(s[0] == 't');
    i = strtoll(s, &end, 10);
    if (*s && !*end)
        return json_integer(i);
    d = strtod(s, &end);
    if (*s && !*end)
        return json_real(d);
    return json_string(s);
}

/* Reads one term at *p into t, advancing *p. Returns NULL or what is wrong. */
static const char *read_term(const char **p, struct bt_query_term *t)
{
    const char *s = *p;
    size_t n = 0;
    char buf[1024];

    while (isalnum((unsigned char)*s) || *s == '_')
        if (n < sizeof(t->name) - 1)
            t->name[n++] = *s++;
        else
            return "a name longer than 64 characters";
    t->name[n] = '\0';
    if (!n || isdigit((unsigned char)t->name[0]))
        return "expected a name";
    n = strspn(s, "=!<>");
    if (n < 1 || n > 2 || (n == 2 && s[1] != '=') || (n == 1 && *s == '!'))
        return "expected = != < <= > or >= after the name";
    memcpy(t->op, s, n);
    t->op[n] = '\0';
    s += n;
    n = 0;
    if (*s == '"') {
        for (s++; *s && *s != '"'; s++) {
            if (*s == '\\' && s[1])
                s++;
            if (n < sizeof(buf) - 1)
                buf[n++] = *s;
        }
        if (*s != '"')
            return "a quoted value without its closing quote";
        s++;
        buf[n] = '\0';
        t->value = json_string(buf);
    } else {
        while (*s && !isspace((unsigned char)*s) && n < sizeof(buf) - 1)
            buf[n++] = *s++;
        buf[n] = '\0';
        if (!n)
            return "expected a value after the operator";
        t->value = bare_value(buf);
    }
    *p = s;
    return t->value ? NULL : "a value that is not UTF-8 text";
}

/* The rules of the names a query gives its own meaning. */
static const char *check_term(struct bt_query *q, struct bt_query_term *t)
{
    bool eq = !strcmp(t->op, "=") || !strcmp(t->op, "!=");
    const char *v = json_string_value(t->value);

    if (!strcmp(t->name, "status") || !strcmp(t->name, "type")) {
        if (!eq || !v)
            return "status and type take = or != and a name";
        if (!strcmp(t->name, "status") && bt_status_parse(v) < 0)
            return "not a status (running, completed, failed, cancelled, terminated, "
                   "blocked, paused)";
        if (!strcmp(t->name, "status") && !strcmp(t->op, "=") && !q->status) {
            snprintf(q->status_buf, sizeof(q->status_buf), "%s", v);
            q->status = q->status_buf;
        }
    } else if (!strcmp(t->name, "started")) {
        int64_t ms = v ? parse_time(v) : -1;
        if (eq || ms < 0)
            return "started takes < <= > or >= and a time (RFC 3339 or a date)";
        json_decref(t->value);
        t->value = json_integer(ms);
    } else if (!strcmp(t->name, "id")) {
        return "id is not a query term: `baton describe ID`";
    }
    return NULL;
}

int bt_query_add(struct bt_query *q, const char *name, const char *op, const char *value)
{
    struct bt_query_term *t = &q->terms[q->n_terms];
    const char *why;

    if (q->n_terms == BT_QUERY_MAX_TERMS)
        return BT_EXIT_USAGE;
    snprintf(t->name, sizeof(t->name), "%s", name);
    snprintf(t->op, sizeof(t->op), "%s", op);
    t->value = json_string(value);
    q->n_terms++;
    if (t->value && !(why = check_term(q, t)))
        return 0;
    fprintf(stderr, "baton: %s %s: %s\n", name, value, t->value ? why : "not UTF-8 text");
    return BT_EXIT_USAGE;
}

int bt_query_parse(struct bt_query *q, const char *text)
{
    const char *p = text, *why = NULL, *at;

    for (;;) {
        p += strspn(p, " \t\n");
        if (!*p)
            break;
        if (q->n_terms && !strncasecmp(p, "AND", 3) && isspace((unsigned char)p[3])) {
            p += 4;
            continue;
        }
        at = p;
        if (q->n_terms == BT_QUERY_MAX_TERMS)
            why = "more than 16 terms";
        else if (!(why = read_term(&p, &q->terms[q->n_terms])))
            why = check_term(q, &q->terms[q->n_terms]);
        q->n_terms++;
        if (why) {
            fprintf(stderr, "baton: --query: %s at \"%.40s\"\n", why, at);
            bt_query_release(q);
            return BT_EXIT_USAGE;
        }
    }
    if (!q->n_terms) {
        fprintf(stderr,
                "baton: --query: empty (terms like status=running joined by AND)\n");
        return BT_EXIT_USAGE;
    }
    return 0;
}

void bt_query_release(struct bt_query *q)
{
    for (size_t i = 0; i < q->n_terms && i < BT_QUERY_MAX_TERMS; i++)
        json_decref(q->terms[i].value);
    q->n_terms = 0;
}

/* -1, 0, 1 as a compares to b; 2 when they cannot be ordered. */
static int compare(const json_t *a, const json_t *b)
{
    if (json_is_number(a) && json_is_number(b)) {
        double x = json_number_value(a), y = json_number_value(b);
        return (x > y) - (x < y);
    }
    if (json_is_string(a) && json_is_string(b)) {
        int c = strcmp(json_string_value(a), json_string_value(b));
        return (c > 0) - (c < 0);
    }
    if (json_is_boolean(a) && json_is_boolean(b))
        return json_equal((json_t *)(uintptr_t)a, (json_t *)(uintptr_t)b) ? 0 : 2;
    return 2;
}

static bool holds(const char *op, int c)
{
    if (!strcmp(op, "!="))
        return c != 0;
    if (c == 2)
        return false;
    if (!strcmp(op, "="))
        return c == 0;
    if (!strcmp(op, "<"))
        return c < 0;
    if (!strcmp(op, "<="))
        return c <= 0;
    if (!strcmp(op, ">"))
        return c > 0;
    return c >= 0;
}

bool bt_query_matches(const struct bt_query *q, const struct bt_query_row *row)
{
    for (size_t i = 0; i < q->n_terms; i++) {
        const struct bt_query_term *t = &q->terms[i];
        json_t *have = NULL;
        bool ok;

        if (!strcmp(t->name, "status") || !strcmp(t->name, "type")) {
            const char *v = !strcmp(t->name, "status") ? row->status : row->type;
            have = json_string(v ? v : "");
        } else if (!strcmp(t->name, "started")) {
            have = json_integer(row->created);
        } else {
            have = json_incref(json_object_get(row->attrs, t->name));
        }
        ok = have ? holds(t->op, compare(have, t->value)) : !strcmp(t->op, "!=");
        json_decref(have);
        if (!ok)
            return false;
    }
    return true;
}
