/* Readers of log lines (logline.h): logfmt parsed here character by
 * character, JSON by jansson, then the keys every line has checked alike. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "logline.h"

static bool key_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '_' || c == '.';
}

/* The escape after a backslash at *p (moved past it) into out; false if bad. */
static bool unescape(const char **p, char *out, size_t *o)
{
    unsigned int u;

    switch (**p) {
    case '"':
    case '\\':
        out[(*o)++] = **p;
        break;
    case 'n':
        out[(*o)++] = '\n';
        break;
    case 't':
        out[(*o)++] = '\t';
        break;
    case 'r':
        out[(*o)++] = '\r';
        break;
    case 'u':
        if (sscanf(*p + 1, "%4x", &u) != 1 || u >= 0x80)
            return false;
        out[(*o)++] = (char)u;
        *p += 4;
        break;
    default:
        return false;
    }
    (*p)++;
    return true;
}

/* One value at *p (moved past it) into out (size 8192); false with why. */
static bool value(const char **p, char *out, char *why, size_t n)
{
    size_t o = 0;

    if (**p != '"') {
        for (; **p && **p != ' '; (*p)++) {
            if (**p == '"' || **p == '=' || (unsigned char)**p <= ' ' || o > 8000) {
                snprintf(why, n, "bare value with '%c' at \"%.40s\"", **p, *p);
                return false;
            }
            out[o++] = **p;
        }
        out[o] = '\0';
        if (!o)
            snprintf(why, n, "empty bare value");
        return o > 0;
    }
    for ((*p)++; **p != '"';) {
        if (!**p || (unsigned char)**p < ' ' || o > 8000) {
            snprintf(why, n, "unterminated value or control character");
            return false;
        }
        if (**p != '\\') {
            out[o++] = *(*p)++;
            continue;
        }
        (*p)++;
        if (!unescape(p, out, &o)) {
            snprintf(why, n, "bad escape at \"%.40s\"", *p);
            return false;
        }
    }
    (*p)++;
    out[o] = '\0';
    return true;
}

json_t *bt_test_logfmt(const char *line, char *why, size_t n)
{
    json_t *root = json_object();
    const char *p = line;
    char key[128], val[8192];

    while (*p) {
        size_t k = 0;
        while (key_char(*p) && k + 1 < sizeof(key))
            key[k++] = *p++;
        key[k] = '\0';
        if (!k || *p != '=') {
            snprintf(why, n, "expected key= at \"%.40s\"", p);
            goto fail;
        }
        p++;
        if (!value(&p, val, why, n))
            goto fail;
        if (json_object_get(root, key)) {
            snprintf(why, n, "key %s twice", key);
            goto fail;
        }
        json_object_set_new(root, key, json_stringn_nocheck(val, strlen(val)));
        if (*p && (*p++ != ' ' || !*p)) {
            snprintf(why, n, "expected one space between fields at \"%.40s\"", p - 1);
            goto fail;
        }
    }
    return root;
fail:
    json_decref(root);
    return NULL;
}

/* The keys every line has, with their types in either format. */
static bool common_keys(json_t *obj, bool json, char *why, size_t n)
{
    const char *ts = json_string_value(json_object_get(obj, "ts"));
    const char *level = json_string_value(json_object_get(obj, "level"));
    json_t *pid = json_object_get(obj, "pid"), *v;
    unsigned y, mo, d, h, mi, s, ms;
    const char *key;
    char z = 0;

    if (!ts ||
        sscanf(ts, "%4u-%2u-%2uT%2u:%2u:%2u.%3u%c", &y, &mo, &d, &h, &mi, &s, &ms, &z) !=
            8 ||
        z != 'Z' || strlen(ts) != 24) {
        snprintf(why, n, "ts missing or not ISO 8601 with ms");
        return false;
    }
    if (!level || (strcmp(level, "debug") && strcmp(level, "info") &&
                   strcmp(level, "warn") && strcmp(level, "error"))) {
        snprintf(why, n, "level missing or unknown");
        return false;
    }
    if (json ? !json_is_integer(pid)
             : (!json_string_value(pid) || strspn(json_string_value(pid), "0123456789") !=
                                               strlen(json_string_value(pid)))) {
        snprintf(why, n, "pid missing or not a number");
        return false;
    }
    if (!json_string_length(json_object_get(obj, "prog")) ||
        !json_is_string(json_object_get(obj, "msg"))) {
        snprintf(why, n, "prog or msg missing");
        return false;
    }
    json_object_foreach(obj, key, v)
    {
        if (strcmp(key, "pid") && !json_is_string(v)) {
            snprintf(why, n, "%s is not a string", key);
            return false;
        }
    }
    return true;
}

json_t *bt_test_log_read(const char *path, bool json, char *why, size_t n)
{
    FILE *f = fopen(path, "r");
    json_t *lines = json_array(), *obj = NULL;
    char *line = NULL, problem[256] = "";
    size_t cap = 0;
    ssize_t len;
    int no = 0;

    if (!f) {
        snprintf(why, n, "cannot open %s", path);
        goto fail;
    }
    while ((len = getline(&line, &cap, f)) > 0) {
        json_error_t err;
        no++;
        if (line[len - 1] != '\n') {
            snprintf(problem, sizeof(problem), "no newline");
            goto bad;
        }
        line[len - 1] = '\0';
        obj = json ? json_loads(line, JSON_REJECT_DUPLICATES, &err)
                   : bt_test_logfmt(line, problem, sizeof(problem));
        if (json && !json_is_object(obj))
            snprintf(problem, sizeof(problem), "not a JSON object: %s", err.text);
        if (!json_is_object(obj) || !common_keys(obj, json, problem, sizeof(problem)))
            goto bad;
        json_array_append_new(lines, obj);
        obj = NULL;
    }
    if (!no) {
        snprintf(why, n, "%s: no line", path);
        goto fail;
    }
    fclose(f);
    free(line);
    return lines;
bad:
    snprintf(why, n, "%s:%d: %s: %.300s", path, no, problem, line);
fail:
    json_decref(obj);
    json_decref(lines);
    free(line);
    if (f)
        fclose(f);
    return NULL;
}
