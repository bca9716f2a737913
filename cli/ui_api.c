/* The JSON API of `baton ui` (docs/ui.md): each route calls the function
 * behind the matching CLI command (cli.h), so a value here is the value
 * that command's --json prints, and an action goes the way the command
 * sends it. Inputs are checked as the CLI checks them; a failure is
 * {"error", "status"} with the HTTP status that says whose fault it is. */
#include <errno.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "codec.h"
#include "concurrency.h"
#include "instance.h"
#include "ratelimit.h"
#include "query.h"
#include "ui.h"

#define LIST_DEFAULT 50
#define LIST_MAX     1000
#define DLQ_DEFAULT  200
#define DLQ_MAX      10000

/* as `baton list --status` takes them */
static const char *const statuses[] = {"all",     "running",   "completed",
                                       "failed",  "cancelled", "terminated",
                                       "blocked", "paused",    NULL};

/* An id, a name or a key as the codec takes one: 1..BT_ID_MAX bytes, no
 * control characters. */
static bool valid_name(const char *s)
{
    size_t len = s ? strlen(s) : 0;

    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return false;
    return len > 0 && len <= BT_ID_MAX;
}

/* A decimal integer in [min, max] into *v; absent: def. false when it is
 * not one. */
static bool int_arg(const char *text, long long def, long long min, long long max,
                    long long *v)
{
    char *end;

    if (!text) {
        *v = def;
        return true;
    }
    errno = 0;
    *v = strtoll(text, &end, 10);
    return end != text && !*end && !errno && *v >= min && *v <= max;
}

/* The BT_EXIT_* status of a CLI function as HTTP, for a failure. */
static unsigned failed(json_t **out, int ret, const char *what)
{
    if (ret == BT_EXIT_UNAVAILABLE)
        return bt_ui_error(out, MHD_HTTP_SERVICE_UNAVAILABLE,
                           "%s: Redis or Kafka did not answer (see the log of baton ui)",
                           what);
    if (ret == BT_EXIT_USAGE)
        return bt_ui_error(out, MHD_HTTP_BAD_REQUEST, "%s: refused as invalid", what);
    return bt_ui_error(out, MHD_HTTP_CONFLICT, "%s: failed (see the log of baton ui)",
                       what);
}

/* The store, or why not as a 503. */
static struct bt_store *store_or(struct bt_ui *ui, json_t **out)
{
    struct bt_store *store = bt_ui_store(ui);

    if (!store)
        bt_ui_error(out, MHD_HTTP_SERVICE_UNAVAILABLE, "Redis at %s does not answer",
                    ui->cfg->redis);
    return store;
}

/* A read that failed on Redis: the connection is dropped, the next request
 * connects again. */
static unsigned lost(struct bt_ui *ui, json_t **out, int ret, const char *what)
{
    if (ret == BT_EXIT_UNAVAILABLE) {
        bt_store_destroy(ui->store);
        ui->store = NULL;
    }
    return failed(out, ret, what);
}

struct page {
    json_t *rows;
    long limit;
};

static bool append_row(const struct bt_query_row *row, void *arg)
{
    struct page *page = arg;

    json_array_append_new(page->rows, bt_cli_list_row(row));
    return (long)json_array_size(page->rows) < page->limit;
}

/* The query of status=, type= and query= (the language of `baton list
 * --query`), into q: 0, or the HTTP status of why not. */
static unsigned query_of(const char *(*arg)(void *, const char *), void *args,
                         struct bt_query *q, json_t **out)
{
    const char *v;
    bool known = false;

    if ((v = arg(args, "status")) && *v && strcmp(v, "all")) {
        for (int i = 0; statuses[i]; i++)
            known |= !strcmp(v, statuses[i]);
        if (!known || bt_query_add(q, "status", "=", v))
            return bt_ui_error(out, MHD_HTTP_BAD_REQUEST,
                               "status: \"%.40s\" is not running, completed, failed, "
                               "cancelled, terminated, blocked, paused or all",
                               v);
    }
    if ((v = arg(args, "type")) && *v &&
        (!valid_name(v) || bt_query_add(q, "type", "=", v)))
        return bt_ui_error(out, MHD_HTTP_BAD_REQUEST, "type: not a workflow type");
    if ((v = arg(args, "query")) && *v && bt_query_parse(q, v))
        return bt_ui_error(out, MHD_HTTP_BAD_REQUEST,
                           "query: not a query (terms joined by AND, as baton list "
                           "--query takes them)");
    return 0;
}

static unsigned get_instances(struct bt_ui *ui, const char *(*arg)(void *, const char *),
                              void *args, json_t **out)
{
    struct bt_query q = {0};
    struct page page = {.rows = NULL};
    char cursor[64] = "", next[64];
    struct bt_store *store;
    const char *v;
    long long limit;
    unsigned status;
    int ret;

    if ((status = query_of(arg, args, &q, out)))
        goto out;
    status = MHD_HTTP_BAD_REQUEST;
    if ((v = arg(args, "cursor")) && *v) {
        if (strlen(v) >= sizeof(cursor) || !bt_query_cursor_valid(v)) {
            bt_ui_error(out, status, "cursor: not a cursor (the next of a page)");
            goto out;
        }
        snprintf(cursor, sizeof(cursor), "%s", v);
    }
    if (!int_arg(arg(args, "limit"), LIST_DEFAULT, 1, LIST_MAX, &limit)) {
        bt_ui_error(out, status, "limit: not an integer from 1 to %d", LIST_MAX);
        goto out;
    }
    status = MHD_HTTP_SERVICE_UNAVAILABLE;
    if (!(store = store_or(ui, out)))
        goto out;
    page.rows = json_array();
    page.limit = (long)limit;
    if ((ret = bt_query_run(store, &q, cursor, append_row, &page, next, sizeof(next)))) {
        status = lost(ui, out, ret, "list");
        goto out;
    }
    *out = json_pack("{s:O, s:s?}", "instances", page.rows, "next", *next ? next : NULL);
    status = MHD_HTTP_OK;
out:
    json_decref(page.rows);
    bt_query_release(&q);
    return status;
}

static unsigned get_instance(struct bt_ui *ui, const char *id, json_t **out)
{
    struct bt_store *store;
    int ret;

    if (!(store = store_or(ui, out)))
        return MHD_HTTP_SERVICE_UNAVAILABLE;
    if ((ret = bt_cli_describe_read(store, id, out)) == BT_EXIT_FAIL)
        return bt_ui_error(out, MHD_HTTP_NOT_FOUND, "no workflow instance \"%s\"", id);
    return ret ? lost(ui, out, ret, "describe") : MHD_HTTP_OK;
}

static unsigned get_history(struct bt_ui *ui, const char *id, const char *run_arg,
                            json_t **out)
{
    struct bt_store *store;
    redisReply *reply;
    char key[600];
    long long run;
    int ret;

    if (!int_arg(run_arg, 0, 1, INT32_MAX, &run))
        return bt_ui_error(out, MHD_HTTP_BAD_REQUEST, "run: not a run number");
    if (!(store = store_or(ui, out)))
        return MHD_HTTP_SERVICE_UNAVAILABLE;
    reply = bt_redis_command(bt_store_redis(store), "HGET %s run",
                             bt_store_key(store, id, "", key, sizeof(key)));
    ret = !reply || reply->type == REDIS_REPLY_ERROR ? BT_EXIT_UNAVAILABLE
          : reply->type != REDIS_REPLY_STRING        ? BT_EXIT_FAIL
                                                     : BT_EXIT_OK;
    if (!ret && run == atoll(reply->str))
        run = 0; /* the current run */
    freeReplyObject(reply);
    if (ret == BT_EXIT_FAIL)
        return bt_ui_error(out, MHD_HTTP_NOT_FOUND, "no workflow instance \"%s\"", id);
    *out = json_array();
    if (!ret)
        ret = bt_cli_history_json(store, id, (int)run, *out);
    if (ret) {
        json_decref(*out);
        return lost(ui, out, ret, "history");
    }
    return MHD_HTTP_OK;
}

/* A dead letter's name: "<partition>:<offset>", both decimal. */
static bool valid_letter(const char *name)
{
    size_t p = strspn(name, "0123456789");

    return p > 0 && p < 10 && name[p] == ':' && name[p + 1] &&
           strspn(name + p + 1, "0123456789") == strlen(name + p + 1) &&
           strlen(name + p + 1) < 19;
}

static unsigned get_dlq(struct bt_ui *ui, const char *name, const char *limit_arg,
                        json_t **out)
{
    long long limit;
    char *names[1] = {(char *)(uintptr_t)name};
    json_t *rows;
    int ret;

    if (!int_arg(limit_arg, DLQ_DEFAULT, 1, DLQ_MAX, &limit))
        return bt_ui_error(out, MHD_HTTP_BAD_REQUEST,
                           "limit: not an integer from 1 to %d", DLQ_MAX);
    if (name && !valid_letter(name))
        return bt_ui_error(out, MHD_HTTP_BAD_REQUEST,
                           "\"%.40s\" is not a dead letter's name (partition:offset)",
                           name);
    rows = json_array();
    if ((ret = bt_cli_dlq_read(ui->cfg, names, name ? 1 : 0, name != NULL,
                               name ? 1 : (long)limit, rows))) {
        json_decref(rows);
        return failed(out, ret, "dlq");
    }
    if (!name) {
        *out = rows;
        return MHD_HTTP_OK;
    }
    if (!json_array_size(rows)) {
        json_decref(rows);
        return bt_ui_error(out, MHD_HTTP_NOT_FOUND, "no dead letter %s", name);
    }
    *out = json_incref(json_array_get(rows, 0));
    json_decref(rows);
    return MHD_HTTP_OK;
}

static void append_rate(struct bt_store *store, const char *key, const char *name,
                        void *arg)
{
    json_array_append_new(arg, bt_cli_ratelimit_json(store, key, name));
}

static void append_concurrency(struct bt_store *store, const char *key, const char *name,
                               void *arg)
{
    json_array_append_new(arg, bt_cli_concurrency_json(store, key, name));
}

static unsigned get_limits(struct bt_ui *ui, json_t **out)
{
    struct bt_store *store;
    char pattern[600];
    json_t *rate = json_array(), *cc = json_array();
    int ret;

    if (!(store = store_or(ui, out)))
        ret = BT_EXIT_UNAVAILABLE;
    else if (!(ret = bt_cli_scan(store,
                                 bt_ratelimit_key(bt_store_prefix(store), "*", pattern,
                                                  sizeof(pattern)),
                                 append_rate, rate)))
        ret = bt_cli_scan(
            store,
            bt_concurrency_key(bt_store_prefix(store), "*", pattern, sizeof(pattern)),
            append_concurrency, cc);
    if (ret) {
        json_decref(rate);
        json_decref(cc);
        json_decref(*out);
        return lost(ui, out, ret, "limits");
    }
    *out = json_pack("{s:o, s:o}", "rate", rate, "concurrency", cc);
    return MHD_HTTP_OK;
}

static unsigned get_schedules(struct bt_ui *ui, json_t **out)
{
    struct bt_store *store;
    int ret;

    if (!(store = store_or(ui, out)))
        return MHD_HTTP_SERVICE_UNAVAILABLE;
    *out = json_array();
    if ((ret = bt_cli_schedule_list(store, *out))) {
        json_decref(*out);
        return lost(ui, out, ret, "schedules");
    }
    return MHD_HTTP_OK;
}

unsigned bt_ui_get(struct bt_ui *ui, char **seg, int n,
                   const char *(*get_arg)(void *args, const char *name), void *args,
                   json_t **out)
{
    bool instances = !strcmp(seg[0], "instances");

    if (instances && n > 1 && !valid_name(seg[1]))
        return bt_ui_error(out, MHD_HTTP_BAD_REQUEST,
                           "not a workflow id (1..%d bytes, no control characters)",
                           BT_ID_MAX);
    if (instances && n == 1)
        return get_instances(ui, get_arg, args, out);
    if (instances && n == 2)
        return get_instance(ui, seg[1], out);
    if (instances && n == 3 && !strcmp(seg[2], "history"))
        return get_history(ui, seg[1], get_arg(args, "run"), out);
    if (!strcmp(seg[0], "dlq") && n <= 2)
        return get_dlq(ui, n == 2 ? seg[1] : NULL, get_arg(args, "limit"), out);
    if (!strcmp(seg[0], "limits") && n == 1)
        return get_limits(ui, out);
    if (!strcmp(seg[0], "schedules") && n == 1)
        return get_schedules(ui, out);
    if (!strcmp(seg[0], "ui") && n == 1) {
        *out = json_pack("{s:s, s:b}", "version", bt_args_version(), "read_only",
                         ui->read_only);
        return MHD_HTTP_OK;
    }
    return bt_ui_error(out, MHD_HTTP_NOT_FOUND, "no such API path (docs/ui.md)");
}

/* ---- actions ---- */

/* Whether instance id is there and not finished, as `baton signal` checks
 * before sending: 0, or the HTTP status of why not (its error in *out). */
static unsigned running(struct bt_ui *ui, const char *id, json_t **out)
{
    struct bt_store *store;
    redisReply *reply;
    char key[600];
    unsigned ret = 0;

    if (!(store = store_or(ui, out)))
        return MHD_HTTP_SERVICE_UNAVAILABLE;
    reply = bt_redis_command(bt_store_redis(store), "HGET %s status",
                             bt_store_key(store, id, "", key, sizeof(key)));
    if (!reply || reply->type == REDIS_REPLY_ERROR)
        ret = lost(ui, out, BT_EXIT_UNAVAILABLE, "lookup");
    else if (reply->type != REDIS_REPLY_STRING)
        ret = bt_ui_error(out, MHD_HTTP_NOT_FOUND, "no workflow instance \"%s\"", id);
    else if (bt_status_final(bt_status_parse(reply->str)))
        ret = bt_ui_error(out, MHD_HTTP_CONFLICT, "workflow %s is already %s", id,
                          reply->str);
    freeReplyObject(reply);
    return ret;
}

/* Sends msg to its running instance as `baton signal` / `cancel` does. */
static unsigned send_event(struct bt_ui *ui, const struct bt_msg *msg, const char *verb,
                           json_t **out)
{
    size_t len;
    char *bytes = bt_codec_encode(msg, &len);
    unsigned status;
    int ret;

    free(bytes);
    if (!bytes)
        return bt_ui_error(out, MHD_HTTP_BAD_REQUEST, "%s: not a valid event", verb);
    if ((int64_t)len > ui->cfg->max_payload)
        return bt_ui_error(out, MHD_HTTP_CONTENT_TOO_LARGE,
                           "%s: the message is %zu bytes, over max-payload (%lld)", verb,
                           len, (long long)ui->cfg->max_payload);
    if ((status = running(ui, msg->id, out)))
        return status;
    if ((ret = bt_cli_send_event(ui->cfg, msg)))
        return failed(out, ret, verb);
    *out = json_pack("{s:b, s:s, s:s}", "ok", 1, "id", msg->id, "sent", verb);
    return MHD_HTTP_ACCEPTED;
}

static unsigned post_signal(struct bt_ui *ui, char *id, const json_t *body, json_t **out)
{
    const char *name = json_string_value(json_object_get(body, "name"));
    struct bt_msg msg = {.type = BT_MSG_SIGNAL, .id = id};

    if (!valid_name(name) || name[0] == '$')
        return bt_ui_error(out, MHD_HTTP_BAD_REQUEST,
                           "name: a signal name (1..%d bytes, no control characters, "
                           "not starting with $, which are baton's)",
                           BT_ID_MAX);
    char by[128];

    snprintf(by, sizeof(by), "baton ui from %s", ui->who);
    msg.by = by;
    msg.name = (char *)(uintptr_t)name;
    msg.body = json_object_get(body, "payload");
    return send_event(ui, &msg, "signal", out);
}

/* cancel or terminate, with who asked from where in its "by": the history's
 * cancel_requested record keeps it. */
static unsigned post_stop(struct bt_ui *ui, char *id, const json_t *body, bool terminate,
                          json_t **out)
{
    const json_t *reason = json_object_get(body, "reason");
    struct bt_msg msg = {.type = BT_MSG_CANCEL, .id = id, .terminate = terminate};
    unsigned status;

    if (reason && !json_is_null(reason) && !json_is_string(reason))
        return bt_ui_error(out, MHD_HTTP_BAD_REQUEST, "reason: not a string");
    if (json_string_length(reason) > 4096)
        return bt_ui_error(out, MHD_HTTP_BAD_REQUEST, "reason: over 4096 bytes");
    char by[128];

    snprintf(by, sizeof(by), "baton ui from %s", ui->who);
    msg.by = by;
    msg.body =
        json_string_length(reason) ? json_incref((json_t *)(uintptr_t)reason) : NULL;
    status = send_event(ui, &msg, terminate ? "terminate" : "cancel", out);
    json_decref(msg.body);
    return status;
}

/* pause, resume or reset (to a seq, or to the last failure), sent as
 * `baton pause ID` sends it, with who asked from where in its "by": the
 * instance's history records it. */
static unsigned post_control(struct bt_ui *ui, char *id, const json_t *body,
                             enum bt_msg_type type, json_t **out)
{
    const json_t *reason = json_object_get(body, "reason"),
                 *to = json_object_get(body, "to");
    bool last = json_is_true(json_object_get(body, "to_last_failure"));
    struct bt_msg msg = {.type = type, .id = id, .seq = -1};
    char by[128];
    int ret;

    if (reason && !json_is_null(reason) &&
        (!json_is_string(reason) || json_string_length(reason) > 4096))
        return bt_ui_error(out, MHD_HTTP_BAD_REQUEST,
                           "reason: a string of 4096 bytes at most");
    if (type == BT_MSG_RESET &&
        ((to && (!json_is_integer(to) || json_integer_value(to) < 0)) || !to == !last))
        return bt_ui_error(
            out, MHD_HTTP_BAD_REQUEST,
            "reset: give \"to\" (a step's seq) or \"to_last_failure\": true");
    snprintf(by, sizeof(by), "baton ui from %s", ui->who);
    msg.by = by;
    msg.seq = to ? (int64_t)json_integer_value(to) : -1;
    msg.last_failure = last;
    msg.body =
        json_string_length(reason) ? json_incref((json_t *)(uintptr_t)reason) : NULL;
    ret = bt_cli_control_send(ui->cfg, &msg);
    json_decref(msg.body);
    if (ret == BT_EXIT_FAIL)
        return bt_ui_error(out, MHD_HTTP_CONFLICT,
                           "%s refused: no such instance, or not in a state for it (see "
                           "the log of baton ui)",
                           type == BT_MSG_PAUSE    ? "pause"
                           : type == BT_MSG_RESUME ? "resume"
                                                   : "reset");
    if (ret)
        return failed(out, ret, "control");
    *out = json_pack("{s:b, s:s}", "ok", 1, "id", id);
    return MHD_HTTP_ACCEPTED;
}

static unsigned post_redrive(struct bt_ui *ui, const json_t *body, json_t **out)
{
    const json_t *names = json_object_get(body, "names"), *name;
    char *list[64];
    json_t *sent = NULL;
    size_t i;
    int ret;

    if (!json_is_array(names) || !json_array_size(names) || json_array_size(names) > 64)
        return bt_ui_error(out, MHD_HTTP_BAD_REQUEST,
                           "names: an array of 1 to 64 dead letter names");
    json_array_foreach(names, i, name)
    {
        if (!json_is_string(name) || !valid_letter(json_string_value(name)))
            return bt_ui_error(out, MHD_HTTP_BAD_REQUEST,
                               "names: \"%.40s\" is not a dead letter's name "
                               "(partition:offset)",
                               json_is_string(name) ? json_string_value(name) : "?");
        list[i] = (char *)(uintptr_t)json_string_value(name);
    }
    if ((ret = bt_cli_dlq_redrive(ui->cfg, list, (int)i, &sent))) {
        json_decref(sent);
        return failed(out, ret, "redrive");
    }
    *out = json_pack("{s:b, s:o}", "ok", 1, "redriven", sent ? sent : json_array());
    return MHD_HTTP_OK;
}

static unsigned post_rate(struct bt_ui *ui, const json_t *body, json_t **out)
{
    const char *key = json_string_value(json_object_get(body, "key"));
    const json_t *rate_v = json_object_get(body, "rate"), *burst_v;
    char text[64], bucket[600];
    struct bt_store *store;
    redisReply *reply;
    json_int_t burst = 0;
    double rate;

    if (!valid_name(key))
        return bt_ui_error(out, MHD_HTTP_BAD_REQUEST, "key: a rate-limit key");
    if (json_is_number(rate_v))
        snprintf(text, sizeof(text), "%.17g", json_number_value(rate_v));
    else
        snprintf(text, sizeof(text), "%s",
                 json_is_string(rate_v) ? json_string_value(rate_v) : "");
    if (bt_cli_ratelimit_parse(text, &rate))
        return bt_ui_error(out, MHD_HTTP_BAD_REQUEST,
                           "rate: not a positive number per second (10, \"10/s\")");
    if ((burst_v = json_object_get(body, "burst")) && !json_is_null(burst_v) &&
        (!json_is_integer(burst_v) || (burst = json_integer_value(burst_v)) < 1 ||
         burst > 1000000000))
        return bt_ui_error(out, MHD_HTTP_BAD_REQUEST,
                           "burst: an integer from 1 to 1000000000");
    if (!(store = store_or(ui, out)))
        return MHD_HTTP_SERVICE_UNAVAILABLE;
    reply = bt_cli_ratelimit_hset(store, key, rate, burst, bucket, sizeof(bucket));
    if (!reply || reply->type == REDIS_REPLY_ERROR) {
        freeReplyObject(reply);
        return lost(ui, out, BT_EXIT_UNAVAILABLE, "rate");
    }
    freeReplyObject(reply);
    *out = bt_cli_ratelimit_json(store, bucket, key);
    return MHD_HTTP_OK;
}

static unsigned post_schedule(struct bt_ui *ui, const char *name, const char *verb,
                              json_t **out)
{
    struct bt_store *store;
    char id[BT_ID_MAX + 1] = "";
    int ret;

    if (!valid_name(name))
        return bt_ui_error(out, MHD_HTTP_BAD_REQUEST, "not a schedule name");
    if (!(store = store_or(ui, out)))
        return MHD_HTTP_SERVICE_UNAVAILABLE;
    ret = !strcmp(verb, "trigger")
              ? bt_cli_schedule_trigger(ui->cfg, store, name, id, sizeof(id))
              : bt_cli_schedule_pause_resume(store, verb, name);
    if (ret == BT_EXIT_FAIL)
        return bt_ui_error(out, MHD_HTTP_NOT_FOUND,
                           "no schedule \"%s\", or it cannot be %sd", name, verb);
    if (ret)
        return lost(ui, out, ret, verb);
    *out = json_pack("{s:b, s:s, s:s, s:s?}", "ok", 1, "name", name, "done", verb, "id",
                     *id ? id : NULL);
    return MHD_HTTP_OK;
}

unsigned bt_ui_post(struct bt_ui *ui, char **seg, int n, const json_t *body, json_t **out)
{
    if (!strcmp(seg[0], "instances") && n == 3) {
        if (!valid_name(seg[1]))
            return bt_ui_error(out, MHD_HTTP_BAD_REQUEST, "not a workflow id");
        if (!strcmp(seg[2], "signal"))
            return post_signal(ui, seg[1], body, out);
        if (!strcmp(seg[2], "cancel") || !strcmp(seg[2], "terminate"))
            return post_stop(ui, seg[1], body, !strcmp(seg[2], "terminate"), out);
        if (!strcmp(seg[2], "pause"))
            return post_control(ui, seg[1], body, BT_MSG_PAUSE, out);
        if (!strcmp(seg[2], "resume"))
            return post_control(ui, seg[1], body, BT_MSG_RESUME, out);
        if (!strcmp(seg[2], "reset"))
            return post_control(ui, seg[1], body, BT_MSG_RESET, out);
    }
    if (!strcmp(seg[0], "dlq") && n == 2 && !strcmp(seg[1], "redrive"))
        return post_redrive(ui, body, out);
    if (!strcmp(seg[0], "limits") && n == 2 && !strcmp(seg[1], "rate"))
        return post_rate(ui, body, out);
    if (!strcmp(seg[0], "schedules") && n == 3 &&
        (!strcmp(seg[2], "pause") || !strcmp(seg[2], "resume") ||
         !strcmp(seg[2], "trigger")))
        return post_schedule(ui, seg[1], seg[2], out);
    return bt_ui_error(out, MHD_HTTP_NOT_FOUND, "no such action (docs/ui.md)");
}
