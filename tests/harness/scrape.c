/* What the tests read from a baton process's HTTP endpoint: the answers of
 * /metrics, /healthz and /readyz, and a strict reader of the text exposition
 * format 0.0.4 (checked by promtool too when it is installed). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>

#include "scrape.h"

int bt_test_free_ports(int *a, int *b)
{
    int fds[2] = {-1, -1}, *ports[2] = {a, b}, ret = 0;

    for (int i = 0; i < 2; i++) {
        struct sockaddr_in sa = {.sin_family = AF_INET,
                                 .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t len = sizeof(sa);
        fds[i] = socket(AF_INET, SOCK_STREAM, 0);
        if (fds[i] < 0 || bind(fds[i], (struct sockaddr *)&sa, sizeof(sa)) ||
            getsockname(fds[i], (struct sockaddr *)&sa, &len))
            ret = -1;
        *ports[i] = ntohs(sa.sin_port);
    }
    for (int i = 0; i < 2; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    return ret;
}

/* Everything fd sends until it closes, NUL-terminated (caller frees), or NULL. */
static char *read_all(int fd)
{
    char *buf = NULL;
    size_t len = 0, cap = 0;
    ssize_t n;

    do {
        if (cap - len < 4096) {
            char *grown = realloc(buf, cap = cap ? cap * 2 : 65536);
            if (!grown) {
                free(buf);
                return NULL;
            }
            buf = grown;
        }
        n = recv(fd, buf + len, cap - len - 1, 0);
        if (n > 0)
            len += (size_t)n;
    } while (n > 0);
    buf[len] = '\0';
    return buf;
}

char *bt_test_http(int port, const char *method, const char *path, const char *headers,
                   const char *body, int *status)
{
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    struct timeval tv = {30, 0};
    size_t blen = body ? strlen(body) : 0,
           n = blen + strlen(path) + 1024 + (headers ? strlen(headers) : 0);
    char *req = malloc(n), *buf = NULL, *start;
    int fd = socket(AF_INET, SOCK_STREAM, 0), len;

    *status = 0;
    if (fd < 0 || !req)
        goto out;
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    len = snprintf(
        req, n, "%s %s HTTP/1.0\r\n%s%d\r\n%sContent-Length: %zu\r\n\r\n%s", method, path,
        headers && strstr(headers, "Host:") ? "X-Port: " : "Host: 127.0.0.1:", port,
        headers ? headers : "", blen, body ? body : "");
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) ||
        send(fd, req, (size_t)len, MSG_NOSIGNAL) != (ssize_t)len || !(buf = read_all(fd)))
        goto out;
    if (sscanf(buf, "HTTP/1.%*d %d", status) != 1 || !(start = strstr(buf, "\r\n\r\n"))) {
        free(buf);
        buf = NULL;
        goto out;
    }
    memmove(buf, start + 4, strlen(start + 4) + 1);
out:
    if (fd >= 0)
        close(fd);
    free(req);
    return buf;
}

char *bt_test_http_get(int port, const char *path, int *status)
{
    return bt_test_http(port, "GET", path, NULL, NULL, status);
}

/* ---- a strict reader of the text exposition format 0.0.4 ---- */

static int family_of(const struct bt_test_expo *e, const char *name)
{
    for (int i = 0; i < e->n_families; i++)
        if (!strcmp(e->families[i], name))
            return i;
    return -1;
}

static bool sample_name_fits(const char *family, const char *type, const char *name)
{
    size_t n = strlen(family);

    if (!strcmp(type, "histogram"))
        return !strncmp(name, family, n) &&
               (!strcmp(name + n, "_bucket") || !strcmp(name + n, "_sum") ||
                !strcmp(name + n, "_count"));
    return !strcmp(name, family);
}

static const char *parse_name(const char *p, char *out, size_t n, bool colon)
{
    size_t i = 0;

    if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || *p == '_' ||
          (colon && *p == ':')))
        return NULL;
    while ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
           (*p >= '0' && *p <= '9') || *p == '_' || (colon && *p == ':')) {
        if (i + 1 >= n)
            return NULL;
        out[i++] = *p++;
    }
    out[i] = '\0';
    return p;
}

/* {name="value",...}: fills s->labels (le apart). NULL on a syntax error. */
static const char *parse_labels(const char *p, struct bt_test_sample *s)
{
    size_t o = 0;

    s->le = NAN;
    if (*p != '{')
        return p;
    p++;
    while (*p != '}') {
        char name[128], value[512];
        size_t v = 0;
        if (!(p = parse_name(p, name, sizeof(name), false)) || *p++ != '=' || *p++ != '"')
            return NULL;
        while (*p != '"') {
            if (!*p || *p == '\n' || v + 2 >= sizeof(value))
                return NULL;
            if (*p == '\\') {
                p++;
                if (*p != '\\' && *p != '"' && *p != 'n')
                    return NULL;
                value[v++] = *p == 'n' ? '\n' : *p;
                p++;
                continue;
            }
            value[v++] = *p++;
        }
        value[v] = '\0';
        p++;
        if (!strcmp(name, "le")) {
            char *end;
            s->le = strtod(value, &end);
            if (end == value || *end)
                return NULL;
        } else {
            int w = snprintf(s->labels + o, sizeof(s->labels) - o, "%s%s=\"%s\"",
                             o ? "," : "", name, value);
            if (w < 0 || (size_t)w >= sizeof(s->labels) - o)
                return NULL;
            o += (size_t)w;
        }
        if (*p == ',')
            p++;
        else if (*p != '}')
            return NULL;
    }
    return p + 1;
}

/* Checks each histogram series: le ascending, counts cumulative, +Inf last
 * and equal to _count. */
static bool check_histograms(const struct bt_test_expo *e, char *why, size_t n)
{
    for (int i = 0; i < e->n; i++) {
        const struct bt_test_sample *c = &e->samples[i];
        const char *family = e->families[c->family];
        double last_le = -INFINITY, last = 0;
        int buckets = 0;
        char bucket[140];
        if (strcmp(e->types[c->family], "histogram") ||
            strcmp(c->name + strlen(family), "_count"))
            continue;
        snprintf(bucket, sizeof(bucket), "%.127s_bucket", family);
        for (int j = 0; j < e->n; j++) {
            const struct bt_test_sample *b = &e->samples[j];
            if (strcmp(b->name, bucket) || strcmp(b->labels, c->labels))
                continue;
            if (!(b->le > last_le) || b->value < last) {
                snprintf(why, n, "%s{%s}: buckets not ascending or not cumulative",
                         family, c->labels);
                return false;
            }
            last_le = b->le;
            last = b->value;
            buckets++;
        }
        if (!buckets || !isinf(last_le) || last != c->value) {
            snprintf(why, n, "%s{%s}: no +Inf bucket equal to _count (%g vs %g)", family,
                     c->labels, last, c->value);
            return false;
        }
    }
    return true;
}

bool bt_test_expo_parse(const char *text, struct bt_test_expo *e, char *why, size_t n)
{
    int current = -1, line_no = 0;

    memset(e, 0, sizeof(*e));
    if (!*text || text[strlen(text) - 1] != '\n') {
        snprintf(why, n, "empty or not newline-terminated");
        return false;
    }
    for (const char *p = text; *p; line_no++) {
        const char *eol = strchr(p, '\n');
        char line[1024], name[128];
        struct bt_test_sample *s;
        const char *q;
        char *end;
        if ((size_t)(eol - p) >= sizeof(line)) {
            snprintf(why, n, "line %d: too long", line_no);
            return false;
        }
        memcpy(line, p, (size_t)(eol - p));
        line[eol - p] = '\0';
        p = eol + 1;
        if (!strncmp(line, "# HELP ", 7) || !strncmp(line, "# TYPE ", 7)) {
            char type[32] = "";
            q = parse_name(line + 7, name, sizeof(name), true);
            if (!q || *q != ' ') {
                snprintf(why, n, "line %d: bad metadata: %.200s", line_no, line);
                return false;
            }
            if (line[2] == 'H')
                continue;
            snprintf(type, sizeof(type), "%s", q + 1);
            if (family_of(e, name) >= 0 || e->n_families == 128 ||
                (strcmp(type, "counter") && strcmp(type, "gauge") &&
                 strcmp(type, "histogram") && strcmp(type, "summary") &&
                 strcmp(type, "untyped"))) {
                snprintf(why, n, "line %d: bad or repeated TYPE: %.200s", line_no, line);
                return false;
            }
            current = e->n_families++;
            snprintf(e->families[current], sizeof(e->families[0]), "%s", name);
            snprintf(e->types[current], sizeof(e->types[0]), "%s", type);
            continue;
        }
        if (line[0] == '#' || !line[0])
            continue;
        if (e->n == BT_TEST_EXPO_MAX) {
            snprintf(why, n, "line %d: more than %d samples", line_no, BT_TEST_EXPO_MAX);
            return false;
        }
        s = &e->samples[e->n++];
        if (!(q = parse_name(line, s->name, sizeof(s->name), true)) ||
            !(q = parse_labels(q, s)) || *q++ != ' ') {
            snprintf(why, n, "line %d: bad sample: %.200s", line_no, line);
            return false;
        }
        s->value = strtod(q, &end);
        if (end == q || (*end && *end != ' ')) {
            snprintf(why, n, "line %d: bad value: %.200s", line_no, line);
            return false;
        }
        if (current < 0 ||
            !sample_name_fits(e->families[current], e->types[current], s->name)) {
            snprintf(why, n, "line %d: sample outside its TYPE-declared family: %.200s",
                     line_no, line);
            return false;
        }
        s->family = current;
        if (!strcmp(e->types[current], "counter") && !(s->value >= 0)) {
            snprintf(why, n, "line %d: negative counter: %.200s", line_no, line);
            return false;
        }
        if (!strcmp(s->name + strlen(e->families[current]), "_bucket") != !isnan(s->le)) {
            snprintf(why, n, "line %d: le on a non-bucket or bucket without le", line_no);
            return false;
        }
    }
    return check_histograms(e, why, n);
}

double bt_test_expo_value(const struct bt_test_expo *e, const char *name,
                          const char *labels)
{
    for (int i = 0; i < e->n; i++)
        if (!strcmp(e->samples[i].name, name) && !strcmp(e->samples[i].labels, labels))
            return e->samples[i].value;
    return NAN;
}

double bt_test_expo_count(const struct bt_test_expo *e, const char *name,
                          const char *labels)
{
    double v = bt_test_expo_value(e, name, labels);
    return isnan(v) ? 0 : v;
}

int bt_test_promtool(const char *text)
{
    static const char local[] = BT_SOURCE_DIR "/.tools/promtool";
    const char *tool = getenv("PROMTOOL");
    char path[] = "/tmp/bt-metrics-XXXXXX", cmd[600];
    FILE *f;
    int fd, rc;

    if (!tool || !*tool)
        tool = system("command -v promtool >/dev/null 2>&1") == 0 ? "promtool"
               : access(local, X_OK) == 0                         ? local
                                                                  : NULL;
    if (!tool)
        return -1;
    fd = mkstemp(path);
    if (!(f = fd >= 0 ? fdopen(fd, "w") : NULL)) {
        if (fd >= 0)
            close(fd);
        unlink(path);
        return 1;
    }
    fputs(text, f);
    fclose(f);
    snprintf(cmd, sizeof(cmd), "%s check metrics < %s 1>&2", tool, path);
    rc = system(cmd);
    unlink(path);
    return rc == 0 ? 0 : rc < 0 ? 1 : rc;
}
