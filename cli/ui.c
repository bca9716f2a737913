/* `baton ui [--listen ADDR:PORT] [--token T | --token-file F] [--read-only]`:
 * serves the web view (the embedded page and the JSON API of ui_api.c) with
 * libmicrohttpd until SIGINT or SIGTERM.
 *
 * Who may do what is decided here, before any handler runs. Reads are open
 * to whoever reaches the address. Actions (POST) are refused in read-only
 * mode; need "Authorization: Bearer <token>" when a token is set, and a
 * token is required to allow them at all on an address that is not
 * loopback; and must come from the page itself: a browser sends neither
 * the X-Baton-UI header nor a JSON content type cross-site without a CORS
 * preflight, which this server never grants, and an Origin, when sent, must
 * be this server's. On loopback the Host header must name loopback too, so
 * a web site cannot reach the API by rebinding its DNS name to 127.0.0.1. */
#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "err.h"
#include "log.h"
#include "ui.h"

static const char *listen_arg = "127.0.0.1:8233", *token_arg, *token_file_arg;
static bool read_only_arg;

static const struct bt_arg ui_args[] = {
    {"listen", 0, BT_ARG_STR, &listen_arg, "ADDR:PORT", "127.0.0.1:8233",
     .help = "where to serve (port 0: any free one, printed)"},
    {"token", 0, BT_ARG_STR, &token_arg, "T",
     .help = "actions need \"Authorization: Bearer T\" (required for actions when "
             "--listen is not loopback)"},
    {"token-file", 0, BT_ARG_STR, &token_file_arg, "F",
     .help = "the token, read from file F (its first line)"},
    {"read-only", 0, BT_ARG_BOOL, &read_only_arg,
     .help = "refuse every action: signal, cancel, terminate, redrive, rate, schedules"},
    {NULL},
};

static const struct bt_cmd ui_cmd = {
    .name = "baton ui",
    .synopsis = "[--listen ADDR:PORT] [--token T | --token-file F] [--read-only]",
    .about = "Serve the web view: instances, histories as timelines, dead letters, "
             "limits and schedules, and a JSON API (docs/ui.md).",
    .args = ui_args,
    .settings = (const char *const[]){BT_CLI_REDIS_SETTINGS, BT_CLI_KAFKA_SETTINGS, NULL},
};

#define BODY_MAX (1024 * 1024)

struct server {
    struct bt_ui ui; /* under lock: its Redis connection serves one request at a time */
    pthread_mutex_t lock;
    char token[512]; /* "": none */
    bool loopback;
    char hosts[3][300]; /* Host headers accepted on loopback */
};

/* What one request has gathered: its body, for a POST. */
struct request {
    char *body;
    size_t len;
    bool too_big;
};

unsigned bt_ui_error(json_t **out, unsigned status, const char *fmt, ...)
{
    char msg[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    *out = json_pack("{s:s, s:i}", "error", msg, "status", (int)status);
    return status;
}

struct bt_store *bt_ui_store(struct bt_ui *ui)
{
    if (!ui->store)
        ui->store = bt_cli_store(ui->cfg);
    return ui->store;
}

/* %XX decoded in place, except %2F: a "/" inside an id must not split the
 * path (ids of child workflows hold one). Installed as MHD's unescaper for
 * the path and the query; decode_slash() finishes a segment or a value. */
static size_t unescape(void *cls, struct MHD_Connection *conn, char *s)
{
    char *w = s;

    (void)cls;
    (void)conn;
    for (const char *r = s; *r; r++) {
        unsigned v;
        if (r[0] == '%' && r[1] && r[2] && sscanf(r + 1, "%2x", &v) == 1 && v != '/' &&
            v != 0 && strchr("0123456789abcdefABCDEF", r[2])) {
            *w++ = (char)v;
            r += 2;
        } else {
            *w++ = *r;
        }
    }
    *w = '\0';
    return (size_t)(w - s);
}

static void decode_slash(char *s)
{
    char *w = s;

    for (const char *r = s; *r; r++) {
        if (r[0] == '%' && r[1] == '2' && (r[2] == 'F' || r[2] == 'f')) {
            *w++ = '/';
            r += 2;
        } else {
            *w++ = *r;
        }
    }
    *w = '\0';
}

static enum MHD_Result send_bytes(struct MHD_Connection *conn, unsigned status,
                                  const char *type, const void *data, size_t len,
                                  enum MHD_ResponseMemoryMode mode)
{
    struct MHD_Response *resp =
        bt_ui_mhd.create_response_from_buffer(len, (void *)(uintptr_t)data, mode);
    enum MHD_Result ret;

    if (!resp)
        return MHD_NO;
    bt_ui_mhd.add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    bt_ui_mhd.add_response_header(resp, "Cache-Control", "no-store");
    bt_ui_mhd.add_response_header(resp, "X-Content-Type-Options", "nosniff");
    bt_ui_mhd.add_response_header(resp, "X-Frame-Options", "DENY");
    bt_ui_mhd.add_response_header(resp, "Content-Security-Policy",
                                  "default-src 'self'; frame-ancestors 'none'");
    ret = bt_ui_mhd.queue_response(conn, status, resp);
    bt_ui_mhd.destroy_response(resp);
    return ret;
}

/* Sends body (takes the reference) as JSON with status. */
static enum MHD_Result send_json(struct MHD_Connection *conn, unsigned status,
                                 json_t *body)
{
    char *text = body ? json_dumps(body, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;

    json_decref(body);
    if (!text)
        return send_bytes(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "application/json",
                          "{\"error\":\"out of memory\",\"status\":500}", 37,
                          MHD_RESPMEM_PERSISTENT);
    return send_bytes(conn, status, "application/json", text, strlen(text),
                      MHD_RESPMEM_MUST_FREE);
}

static enum MHD_Result send_error(struct MHD_Connection *conn, unsigned status,
                                  const char *msg)
{
    json_t *out;

    bt_ui_error(&out, status, "%s", msg);
    return send_json(conn, status, out);
}

static enum MHD_Result send_asset(struct MHD_Connection *conn, const char *url)
{
    if (!strcmp(url, "/"))
        url = "/index.html";
    for (size_t i = 0; i < bt_ui_n_assets; i++)
        if (!strcmp(bt_ui_assets[i].path, url))
            return send_bytes(conn, MHD_HTTP_OK, bt_ui_assets[i].type,
                              bt_ui_assets[i].data, bt_ui_assets[i].len,
                              MHD_RESPMEM_PERSISTENT);
    return send_bytes(conn, MHD_HTTP_NOT_FOUND, "text/plain; charset=utf-8",
                      "not found\n", 10, MHD_RESPMEM_PERSISTENT);
}

static const char *header(struct MHD_Connection *conn, const char *name)
{
    return bt_ui_mhd.lookup_connection_value(conn, MHD_HEADER_KIND, name);
}

/* Compares without stopping at the first difference: the time a wrong token
 * takes says nothing about how much of it was right. */
static bool same_secret(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    unsigned char diff = (unsigned char)(la != lb);

    for (size_t i = 0; i < la; i++)
        diff |= (unsigned char)(a[i] ^ b[lb ? i % lb : 0]);
    return diff == 0;
}

/* Whether the Host header names this server on loopback (see the top). */
static bool host_ok(const struct server *srv, struct MHD_Connection *conn)
{
    const char *host = header(conn, MHD_HTTP_HEADER_HOST);

    if (!srv->loopback)
        return true;
    for (int i = 0; host && i < 3; i++)
        if (!strcmp(host, srv->hosts[i]))
            return true;
    return false;
}

/* Why an action may not run, or NULL when it may (see the top). */
static const char *refused(const struct server *srv, struct MHD_Connection *conn,
                           unsigned *status)
{
    const char *type = header(conn, MHD_HTTP_HEADER_CONTENT_TYPE),
               *origin = header(conn, "Origin"),
               *host = header(conn, MHD_HTTP_HEADER_HOST),
               *auth = header(conn, MHD_HTTP_HEADER_AUTHORIZATION);

    *status = MHD_HTTP_FORBIDDEN;
    if (srv->ui.read_only)
        return "read-only: baton ui was started with --read-only";
    if (!header(conn, "X-Baton-UI") || !type || strncmp(type, "application/json", 16) ||
        (type[16] && type[16] != ';'))
        return "cross-site request refused: an action needs the header X-Baton-UI and "
               "Content-Type: application/json";
    if (origin && strcmp(origin, "null")) {
        char mine[400];
        snprintf(mine, sizeof(mine), "http://%s", host ? host : "");
        if (strcmp(origin, mine))
            return "cross-site request refused: Origin is not this server";
    } else if (origin) {
        return "cross-site request refused: Origin is not this server";
    }
    if (!srv->token[0] && !srv->loopback)
        return "actions need --token or --token-file when --listen is not loopback";
    if (srv->token[0] &&
        (!auth || strncmp(auth, "Bearer ", 7) || !same_secret(auth + 7, srv->token))) {
        *status = MHD_HTTP_UNAUTHORIZED;
        return "this action needs \"Authorization: Bearer <token>\" (the --token of "
               "baton ui)";
    }
    return NULL;
}

struct query {
    struct MHD_Connection *conn;
    char buf[1024];
};

/* A query argument with %2F decoded too, in q->buf: valid until the next
 * call. */
static const char *query_arg(void *args, const char *name)
{
    struct query *q = args;
    const char *v =
        bt_ui_mhd.lookup_connection_value(q->conn, MHD_GET_ARGUMENT_KIND, name);

    if (!v)
        return NULL;
    snprintf(q->buf, sizeof(q->buf), "%s", v);
    decode_slash(q->buf);
    return q->buf;
}

/* Splits the path after "/api/" into decoded segments (at most max): their
 * count, BT_EINVAL when there are more. path is changed. */
static int split(char *path, char **seg, int max)
{
    int n = 0;

    for (char *p = path; p && *p;) {
        char *slash = strchr(p, '/');
        if (slash)
            *slash = '\0';
        if (n == max)
            return BT_EINVAL;
        decode_slash(p);
        seg[n++] = p;
        p = slash ? slash + 1 : NULL;
    }
    return n;
}

static void client(struct MHD_Connection *conn, char *buf, size_t n)
{
    const union MHD_ConnectionInfo *info =
        bt_ui_mhd.get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    char addr[INET6_ADDRSTRLEN] = "?";

    if (info && info->client_addr && info->client_addr->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)info->client_addr)->sin_addr,
                  addr, sizeof(addr));
    else if (info && info->client_addr && info->client_addr->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)info->client_addr)->sin6_addr,
                  addr, sizeof(addr));
    snprintf(buf, n, "%s", addr);
}

/* Each connection has its thread. The dead letters' routes read and write
 * Kafka with clients of their own, for a second or more, and need nothing of
 * the shared state: they run beside the others. Every other route takes
 * turns on the one Redis connection, which answers in milliseconds. */
static unsigned route(struct server *srv, char **seg, int n, struct query *q,
                      const json_t *body, const char *who, json_t **out)
{
    struct bt_ui own = {.cfg = srv->ui.cfg, .read_only = srv->ui.read_only, .who = who};
    unsigned status;

    if (!strcmp(seg[0], "dlq")) {
        status = body ? bt_ui_post(&own, seg, n, body, out)
                      : bt_ui_get(&own, seg, n, query_arg, q, out);
        bt_store_destroy(own.store); /* none: those routes do not use it */
        return status;
    }
    pthread_mutex_lock(&srv->lock);
    srv->ui.who = who;
    status = body ? bt_ui_post(&srv->ui, seg, n, body, out)
                  : bt_ui_get(&srv->ui, seg, n, query_arg, q, out);
    pthread_mutex_unlock(&srv->lock);
    return status;
}

static enum MHD_Result api(struct server *srv, struct MHD_Connection *conn,
                           const char *url, bool post, const struct request *req)
{
    char *path = strdup(url + 5), *seg[8], who[INET6_ADDRSTRLEN + 1];
    struct query q = {.conn = conn};
    json_t *out = NULL, *body = NULL;
    json_error_t jerr;
    unsigned status;
    int n;

    if (!path)
        return send_error(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
    if ((n = split(path, seg, 8)) <= 0) {
        status = bt_ui_error(&out, MHD_HTTP_NOT_FOUND, "no such API path: %s", url);
    } else if (!post) {
        status = route(srv, seg, n, &q, NULL, NULL, &out);
    } else if (req->too_big) {
        status = bt_ui_error(&out, MHD_HTTP_CONTENT_TOO_LARGE,
                             "the body is over %d bytes", BODY_MAX);
    } else if (!(body = json_loadb(req->body ? req->body : "", req->len, 0, &jerr)) ||
               !json_is_object(body)) {
        status =
            bt_ui_error(&out, MHD_HTTP_BAD_REQUEST, "the body is not a JSON object: %s",
                        body ? "another JSON value" : jerr.text);
    } else {
        client(conn, who, sizeof(who));
        status = route(srv, seg, n, &q, body, who, &out);
        bt_log(BT_LOG_INFO, "ui action: path=%s status=%u from=%s", url, status, who);
    }
    json_decref(body);
    free(path);
    return send_json(conn, status, out);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version,
                                  const char *upload, size_t *upload_size, void **req_cls)
{
    struct server *srv = cls;
    struct request *req = *req_cls;
    bool post = !strcmp(method, "POST"), is_api = !strncmp(url, "/api/", 5);
    const char *why;
    unsigned status;

    (void)version;
    if (!req) { /* the headers: refuse now, or gather the body */
        if (!(req = calloc(1, sizeof(*req))))
            return MHD_NO;
        *req_cls = req;
        if (post || *upload_size)
            return MHD_YES;
    }
    if (*upload_size) {
        if (req->len + *upload_size > BODY_MAX) {
            req->too_big = true;
        } else if (!req->too_big) {
            char *grown = realloc(req->body, req->len + *upload_size + 1);
            if (!grown)
                return MHD_NO;
            memcpy(grown + req->len, upload, *upload_size);
            req->body = grown;
            req->len += *upload_size;
        }
        *upload_size = 0;
        return MHD_YES;
    }
    if (!host_ok(srv, conn))
        return send_error(conn, MHD_HTTP_FORBIDDEN,
                          "the Host header does not name this server");
    if (strcmp(method, "GET") && strcmp(method, "HEAD") && !post)
        return send_error(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "only GET and POST");
    if (post && !is_api)
        return send_error(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "POST is for /api/ only");
    if (post && (why = refused(srv, conn, &status)))
        return send_error(conn, status, why);
    if (!is_api)
        return send_asset(conn, url);
    return api(srv, conn, url, post, req);
}

static void on_done(void *cls, struct MHD_Connection *conn, void **req_cls,
                    enum MHD_RequestTerminationCode why)
{
    struct request *req = *req_cls;

    (void)cls;
    (void)conn;
    (void)why;
    if (req)
        free(req->body);
    free(req);
    *req_cls = NULL;
}

/* The token from --token or the first line of --token-file. 0, or an exit
 * status having said why. */
static int load_token(struct server *srv)
{
    FILE *f;

    if (token_arg && token_file_arg) {
        fprintf(stderr, "baton ui: give --token or --token-file, not both\n");
        return BT_EXIT_USAGE;
    }
    if (token_arg)
        snprintf(srv->token, sizeof(srv->token), "%s", token_arg);
    if (token_file_arg) {
        if (!(f = fopen(token_file_arg, "r")) ||
            !fgets(srv->token, sizeof(srv->token), f)) {
            fprintf(stderr, "baton ui: --token-file: cannot read %s: %s\n",
                    token_file_arg, f ? "empty" : strerror(errno));
            if (f)
                fclose(f);
            return BT_EXIT_USAGE;
        }
        fclose(f);
        srv->token[strcspn(srv->token, "\r\n")] = '\0';
    }
    if ((token_arg || token_file_arg) && strlen(srv->token) < 8) {
        fprintf(stderr, "baton ui: the token is under 8 characters\n");
        return BT_EXIT_USAGE;
    }
    return 0;
}

static bool is_loopback(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET)
        return (ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr) >> 24) == 127;
    return sa->sa_family == AF_INET6 &&
           IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)sa)->sin6_addr);
}

/* --listen as "host:port" or "[v6]:port" resolved into *res (freeaddrinfo).
 * 0, or an exit status having said why. */
static int resolve(const char *listen, struct addrinfo **res)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    char host[256];
    const char *colon = strrchr(listen, ':');
    size_t hl = colon ? (size_t)(colon - listen) : 0;
    int rc;

    if (!colon || hl == 0 || hl >= sizeof(host) || !colon[1] ||
        strspn(colon + 1, "0123456789") != strlen(colon + 1) || atol(colon + 1) > 65535) {
        fprintf(stderr, "baton ui: --listen: \"%s\" is not ADDR:PORT\n", listen);
        return BT_EXIT_USAGE;
    }
    if (listen[0] == '[' && colon[-1] == ']')
        snprintf(host, sizeof(host), "%.*s", (int)hl - 2, listen + 1);
    else
        snprintf(host, sizeof(host), "%.*s", (int)hl, listen);
    if ((rc = getaddrinfo(host, colon + 1, &hints, res))) {
        fprintf(stderr, "baton ui: --listen: cannot resolve \"%s\": %s\n", host,
                gai_strerror(rc));
        return BT_EXIT_USAGE;
    }
    return 0;
}

static struct MHD_Daemon *start(struct server *srv, const struct addrinfo *ai)
{
    unsigned int flags =
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_AUTO;

    if (ai->ai_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    return bt_ui_mhd.start_daemon(
        flags, 0, NULL, NULL, on_request, srv, MHD_OPTION_SOCK_ADDR, ai->ai_addr,
        MHD_OPTION_CONNECTION_LIMIT, 64u, MHD_OPTION_CONNECTION_TIMEOUT, 30u,
        MHD_OPTION_UNESCAPE_CALLBACK, unescape, NULL, MHD_OPTION_NOTIFY_COMPLETED,
        on_done, NULL, MHD_OPTION_END);
}

/* Serves until SIGINT or SIGTERM. */
static int serve(struct server *srv, const struct addrinfo *ai)
{
    struct MHD_Daemon *daemon;
    const union MHD_DaemonInfo *info;
    char addr[INET6_ADDRSTRLEN] = "?", url[400];
    sigset_t set;
    int sig, port;

    /* blocked before the server's thread starts, which inherits the mask:
     * only sigwait below sees them */
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    if (!(daemon = start(srv, ai))) {
        fprintf(stderr, "baton ui: cannot listen on %s: %s\n", listen_arg,
                strerror(errno));
        return BT_EXIT_FAIL;
    }
    info = bt_ui_mhd.get_daemon_info(daemon, MHD_DAEMON_INFO_BIND_PORT);
    port = info ? (int)info->port : 0;
    if (ai->ai_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)ai->ai_addr)->sin6_addr, addr,
                  sizeof(addr));
    else
        inet_ntop(AF_INET, &((const struct sockaddr_in *)ai->ai_addr)->sin_addr, addr,
                  sizeof(addr));
    snprintf(url, sizeof(url),
             ai->ai_family == AF_INET6 ? "http://[%s]:%d/" : "http://%s:%d/", addr, port);
    snprintf(srv->hosts[0], sizeof(srv->hosts[0]), "%.*s", (int)strlen(url) - 8, url + 7);
    snprintf(srv->hosts[1], sizeof(srv->hosts[1]), "localhost:%d", port);
    snprintf(srv->hosts[2], sizeof(srv->hosts[2]), "127.0.0.1:%d", port);
    fprintf(stderr, "baton ui: serving %s%s%s\n", url,
            srv->ui.read_only ? " (read-only)" : "",
            !srv->token[0] && !srv->loopback ? " (actions off: no --token)" : "");
    sigwait(&set, &sig);
    bt_ui_mhd.stop_daemon(daemon);
    return BT_EXIT_OK;
}

int bt_cli_ui(struct bt_config *cfg, int argc, char **argv)
{
    struct server srv = {.ui = {.cfg = cfg}, .lock = PTHREAD_MUTEX_INITIALIZER};
    struct addrinfo *res = NULL;
    int n_pos, ret;

    if ((ret = bt_cli_args(&ui_cmd, argc, argv, NULL, &n_pos)) >= 0)
        return ret;
    char errstr[300];

    if ((ret = load_token(&srv)) || (ret = resolve(listen_arg, &res)))
        return ret;
    if (bt_ui_mhd_load(errstr, sizeof(errstr))) {
        fprintf(stderr, "baton ui: %s\n", errstr);
        freeaddrinfo(res);
        return BT_EXIT_FAIL;
    }
    srv.loopback = is_loopback(res->ai_addr);
    srv.ui.read_only = read_only_arg;
    ret = serve(&srv, res);
    freeaddrinfo(res);
    bt_store_destroy(srv.ui.store);
    return ret;
}
