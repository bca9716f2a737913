/* `baton ui`'s JSON API against a real stack (redis-server, the embedded
 * Kafka, a worker with the flows plugin): every endpoint answers the JSON
 * of the CLI's --json, errors are JSON with their HTTP status, actions go
 * through and are refused without the page's header, the token, or in
 * read-only mode, and a page of 10,000 stored instances comes fast. The
 * browser test (tests/browser/ui.py) is run by ui/the_page_works_in_chromium. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "scrape.h"
#include "stack.h"

static struct bt_stack stack;
static pid_t worker = -1, ui = -1;
static int port;

#define ACTION "X-Baton-UI: 1\r\nContent-Type: application/json\r\n"

/* The port `baton ui` said it serves on in its log (0: not yet). */
static int served_port(const char *log)
{
    char text[4096] = "";
    const char *at;
    FILE *f = fopen(log, "r");
    int p = 0;

    if (f) {
        text[fread(text, 1, sizeof(text) - 1, f)] = '\0';
        fclose(f);
    }
    if ((at = strstr(text, "serving http://127.0.0.1:")))
        p = atoi(at + strlen("serving http://127.0.0.1:"));
    return p;
}

/* Spawns `baton ui` with extra args (NULL-terminated) on a port of its own
 * choosing (no race for a free one) and waits until it says which. */
static pid_t spawn_ui(int *p, const char *const *args)
{
    static int n;
    char log[400];
    const char *argv[16] = {BT_BIN_DIR "/baton", "ui", "--listen", "127.0.0.1:0"};
    int argc = 4;
    pid_t pid;
    bool up;

    for (; args && *args && argc < 15; args++)
        argv[argc++] = *args;
    argv[argc] = NULL;
    snprintf(log, sizeof(log), "%s/ui-%d.log", stack.redis.dir, n++);
    pid = bt_test_spawn(argv, stack.envp, log);
    cr_assert_gt(pid, 0);
    BT_TEST_WAIT_UNTIL(up, (*p = served_port(log)) > 0, 15000);
    cr_assert(up, "baton ui did not say where it serves (%s)", log);
    return pid;
}

static void setup(void)
{
    cr_assert_eq(bt_stack_start(&stack, NULL), 0, "cannot start the stack");
    worker = bt_stack_worker(&stack, "flows", NULL);
    cr_assert_gt(worker, 0);
    ui = spawn_ui(&port, NULL);
}

static void setup_redis_only(void)
{
    cr_assert_eq(bt_stack_start(&stack, NULL), 0, "cannot start the stack");
    ui = spawn_ui(&port, NULL);
}

static void teardown(void)
{
    if (ui > 0)
        cr_assert_eq(bt_test_stop(ui, BT_TEST_STOP_MS), 0, "baton ui stops on SIGTERM");
    if (worker > 0)
        bt_test_kill9(worker);
    bt_stack_stop(&stack);
}

/* The answer of method path as JSON (a new reference); its status must be
 * want. */
static json_t *call_on(int p, const char *method, const char *path, const char *headers,
                       const char *body, int want)
{
    int status;
    char *text = bt_test_http(p, method, path, headers, body, &status);
    json_error_t jerr;
    json_t *root;

    cr_assert(text, "%s %s: no answer", method, path);
    root = json_loads(text, JSON_DECODE_ANY, &jerr);
    cr_assert(root, "%s %s: not JSON (%s): %s", method, path, jerr.text, text);
    cr_assert_eq(status, want, "%s %s: %d, not %d: %s", method, path, status, want, text);
    if (status >= 400) {
        cr_assert(json_is_string(json_object_get(root, "error")), "%s", text);
        cr_assert_eq(json_integer_value(json_object_get(root, "status")), status);
    }
    free(text);
    return root;
}
#define GET(path, want)               call_on(port, "GET", (path), NULL, NULL, (want))
#define POST(path, body, want)        call_on(port, "POST", (path), ACTION, (body), (want))
#define EXPECT(method, path, h, b, w) json_decref(call_on(port, method, path, h, b, w))

/* `baton args... --json` as JSON: one object, or an array of its lines. */
static json_t *cli_json(const char *const *args, bool lines)
{
    static char out[1 << 16];
    json_t *all = json_array();
    int rc = bt_stack_baton(&stack, out, sizeof(out), args);

    cr_assert_eq(rc, 0, "exit %d: %s", rc, out);
    for (char *p = out, *nl; *p; p = nl + 1) {
        json_t *v;
        nl = strchr(p, '\n');
        cr_assert(nl, "%s", out);
        *nl = '\0';
        cr_assert((v = json_loads(p, 0, NULL)), "not JSON: %s", p);
        json_array_append_new(all, v);
    }
    if (lines)
        return all;
    json_t *one = json_incref(json_array_get(all, 0));
    json_decref(all);
    return one;
}
#define CLI(lines, ...) cli_json((const char *const[]){__VA_ARGS__, NULL}, (lines))

static bool status_is(const char *id, const char *want)
{
    char buf[32];

    return !strcmp(bt_stack_status(&stack, id, buf, sizeof(buf)), want);
}

/* The API's answer is the CLI's; both are released. */
static void same(json_t *api, json_t *cli)
{
    cr_assert(json_equal(api, cli), "API %s\nCLI %s", json_dumps(api, 0),
              json_dumps(cli, 0));
    json_decref(api);
    json_decref(cli);
}

/* The rows of `list --json`, two and then one: the cursor goes on. */
static void instances_page_by_page(void)
{
    json_t *root = GET("/api/instances?status=completed&type=chain3&limit=2", 200),
           *cli = CLI(true, "list", "--json", "--status=completed", "--type=chain3");
    char path[128];

    cr_assert_eq(json_array_size(cli), 3);
    same(json_incref(json_object_get(root, "instances")),
         json_pack("[O, O]", json_array_get(cli, 0), json_array_get(cli, 1)));
    snprintf(path, sizeof(path), "/api/instances?status=completed&type=chain3&cursor=%s",
             json_string_value(json_object_get(root, "next")));
    json_decref(root);
    root = GET(path, 200);
    cr_assert(json_is_null(json_object_get(root, "next")), "the last page has no next");
    same(json_incref(json_object_get(root, "instances")),
         json_pack("[O]", json_array_get(cli, 2)));
    json_decref(root);
    json_decref(cli);
}

/* A signal for an instance that does not exist is dead-lettered: listed as
 * `dlq list --json` lists it, and shown whole. */
static void dead_letter_listed(void)
{
    static const char orphan[] =
        "{\"v\":1,\"type\":\"signal\",\"id\":\"nobody\",\"name\":\"x\"}";
    char path[128];
    json_t *root;
    bool ok;

    cr_assert_eq(bt_stack_produce(&stack, "events", "nobody", orphan, strlen(orphan)), 0);
    BT_TEST_WAIT_UNTIL(ok,
                       (root = GET("/api/dlq", 200),
                        json_array_size(root) == 1 || (json_decref(root), 0)),
                       30000);
    cr_assert(ok, "the dead letter is listed");
    snprintf(path, sizeof(path), "/api/dlq/%s",
             json_string_value(json_object_get(json_array_get(root, 0), "name")));
    same(root, CLI(true, "dlq", "list", "--json"));
    root = GET(path, 200);
    cr_assert(strstr(json_string_value(json_object_get(root, "payload")), "nobody"));
    json_decref(root);
}

/* The page and its parts, from the binary. */
static void page_served(void)
{
    int status;
    char *html = bt_test_http_get(port, "/", &status);

    cr_assert_eq(status, 200);
    cr_assert(strstr(html, "<script src=\"/app.js\""), "%s", html);
    free(html);
    free(bt_test_http_get(port, "/app.js", &status));
    cr_assert_eq(status, 200);
    free(bt_test_http_get(port, "/app.css", &status));
    cr_assert_eq(status, 200);
    free(bt_test_http_get(port, "/nothing.js", &status));
    cr_assert_eq(status, 404);
}

Test(ui, every_read_endpoint_answers_the_json_of_the_cli, .init = setup, .fini = teardown,
     .timeout = 120)
{
    char out[8192];
    json_t *root;

    for (int i = 0; i < 3; i++) {
        char id[32];
        snprintf(id, sizeof(id), "ui/chain-%d", i); /* a "/" as child ids have */
        cr_assert_eq(BT_STACK_BATON(&stack, out, "start", "chain3", "--id", id, "--input",
                                    "{\"v\":1}", "--wait"),
                     0, "%s", out);
    }
    cr_assert_eq(BT_STACK_BATON(&stack, out, "ratelimit", "set", "carriers", "5/s",
                                "--burst", "2"),
                 0, "%s", out);
    cr_assert_eq(BT_STACK_BATON(&stack, out, "concurrency", "set", "carrier:att", "3"), 0,
                 "%s", out);
    cr_assert_eq(BT_STACK_BATON(&stack, out, "schedule", "add", "nightly", "--cron",
                                "0 3 * * *", "--workflow=chain3"),
                 0, "%s", out);

    instances_page_by_page();
    /* an id with a "/" is sent as %2F */
    same(GET("/api/instances/ui%2Fchain-1", 200),
         CLI(false, "describe", "ui/chain-1", "--json"));
    root = GET("/api/instances/ui%2Fchain-1/history", 200);
    cr_assert_gt(json_array_size(root), 6);
    same(root, CLI(true, "history", "ui/chain-1", "--json"));
    root = GET("/api/limits", 200);
    same(json_incref(json_object_get(root, "rate")),
         CLI(true, "ratelimit", "list", "--json"));
    same(json_incref(json_object_get(root, "concurrency")),
         CLI(true, "concurrency", "list", "--json"));
    json_decref(root);
    same(GET("/api/schedules", 200), CLI(true, "schedule", "list", "--json"));
    dead_letter_listed();
    page_served();
}

Test(ui, errors_are_json_with_their_status_and_bad_input_is_refused, .init = setup,
     .fini = teardown, .timeout = 120)
{
    char out[4096];

    cr_assert_eq(BT_STACK_BATON(&stack, out, "start", "chain3", "--id", "done-1",
                                "--input", "{\"v\":1}", "--wait"),
                 0, "%s", out);
    EXPECT("GET", "/api/instances/nobody", NULL, NULL, 404);
    EXPECT("GET", "/api/instances/nobody/history", NULL, NULL, 404);
    EXPECT("GET", "/api/instances/bad%01id", NULL, NULL, 400);
    EXPECT("GET", "/api/instances?status=sleeping", NULL, NULL, 400);
    EXPECT("GET", "/api/instances?limit=0", NULL, NULL, 400);
    EXPECT("GET", "/api/instances?limit=abc", NULL, NULL, 400);
    EXPECT("GET", "/api/instances?cursor=-3", NULL, NULL, 400);
    EXPECT("GET", "/api/instances?query=tier%3E%3E2", NULL, NULL, 400);
    EXPECT("GET", "/api/instances/done-1/history?run=x", NULL, NULL, 400);
    EXPECT("GET", "/api/dlq/not-a-name", NULL, NULL, 400);
    EXPECT("GET", "/api/nothing", NULL, NULL, 404);
    EXPECT("PUT", "/api/instances", NULL, NULL, 405);

    EXPECT("POST", "/api/instances/done-1/signal", ACTION, "{\"name\":", 400);
    EXPECT("POST", "/api/instances/done-1/signal", ACTION, "[1,2]", 400);
    EXPECT("POST", "/api/instances/done-1/signal", ACTION, "", 400);
    EXPECT("POST", "/api/instances/done-1/signal", ACTION, "{\"name\":\"$internal\"}",
           400);
    EXPECT("POST", "/api/instances/done-1/signal", ACTION, "{\"payload\":1}", 400);
    EXPECT("POST", "/api/instances/done-1/signal", ACTION, "{\"name\":\"review\"}", 409);
    EXPECT("POST", "/api/instances/nobody/cancel", ACTION, "{}", 404);
    EXPECT("POST", "/api/instances/done-1/cancel", ACTION, "{\"reason\":5}", 400);
    EXPECT("POST", "/api/instances/done-1/pause", ACTION, "{}", 409);
    EXPECT("POST", "/api/instances/done-1/reset", ACTION, "{}", 400);
    EXPECT("POST", "/api/instances/done-1/reset", ACTION, "{\"to\":-1}", 400);
    EXPECT("POST", "/api/instances/done-1/explode", ACTION, "{}", 404);
    EXPECT("POST", "/api/limits/rate", ACTION, "{\"key\":\"k\",\"rate\":\"fast\"}", 400);
    EXPECT("POST", "/api/limits/rate", ACTION, "{\"key\":\"k\",\"rate\":-1}", 400);
    EXPECT("POST", "/api/limits/rate", ACTION, "{\"key\":\"k\",\"rate\":5,\"burst\":0}",
           400);
    EXPECT("POST", "/api/limits/rate", ACTION, "{\"rate\":5}", 400);
    EXPECT("POST", "/api/dlq/redrive", ACTION, "{\"names\":[\"x\"]}", 400);
    EXPECT("POST", "/api/dlq/redrive", ACTION, "{\"names\":[]}", 400);
    EXPECT("POST", "/api/schedules/none/pause", ACTION, "{}", 404);
    EXPECT("POST", "/api/schedules/none/explode", ACTION, "{}", 404);
    /* a body over the server's cap (1 MiB) */
    static char big[1536 * 1024];
    memset(big, 'a', sizeof(big) - 1);
    EXPECT("POST", "/api/instances/done-1/signal", ACTION, big, 413);
}

/* The history of id has a cancel_requested record whose reason holds text. */
static bool cancel_recorded(const char *id, const char *text)
{
    json_t *recs = bt_stack_history(&stack, id, ":history", "cancel_requested");
    const char *reason =
        json_string_value(json_object_get(json_array_get(recs, 0), "reason"));
    bool found = reason && strstr(reason, text);

    json_decref(recs);
    return found;
}

/* The record ev of instance id names who sent it: "baton ui from <addr>". */
static bool recorded_by_ui(const char *id, const char *ev)
{
    json_t *recs = bt_stack_history(&stack, id, ":history", ev);
    const char *by = json_string_value(json_object_get(json_array_get(recs, 0), "by"));
    bool found = by && !strcmp(by, "baton ui from 127.0.0.1");

    json_decref(recs);
    return found;
}

/* An instance paused and resumed from the API, each recorded with who. */
static void pause_and_resume(void)
{
    char out[4096];
    bool ok;

    cr_assert_eq(BT_STACK_BATON(&stack, out, "start", "await_review", "--id", "pz-1"), 0,
                 "%s", out);
    BT_TEST_WAIT_UNTIL(ok, status_is("pz-1", "running"), 30000);
    cr_assert(ok);
    json_decref(POST("/api/instances/pz-1/pause", "{\"reason\":\"audit\"}", 202));
    BT_TEST_WAIT_UNTIL(ok, status_is("pz-1", "paused"), 30000);
    cr_assert(ok, "paused from the API");
    EXPECT("POST", "/api/instances/pz-1/pause", ACTION, "{}", 409);
    json_decref(POST("/api/instances/pz-1/resume", "{}", 202));
    BT_TEST_WAIT_UNTIL(ok, status_is("pz-1", "running"), 30000);
    cr_assert(ok, "resumed from the API");
    cr_assert(recorded_by_ui("pz-1", "paused") && recorded_by_ui("pz-1", "resumed"),
              "who paused and resumed it is in its history");
}

Test(ui, actions_go_the_ways_of_the_cli_and_are_recorded, .init = setup, .fini = teardown,
     .timeout = 120)
{
    char out[4096];
    json_t *root;
    redisReply *reply;
    bool ok;

    for (int i = 0; i < 3; i++) {
        char id[16];
        snprintf(id, sizeof(id), "rv-%d", i);
        cr_assert_eq(BT_STACK_BATON(&stack, out, "start", "await_review", "--id", id), 0,
                     "%s", out);
    }
    BT_TEST_WAIT_UNTIL(ok, status_is("rv-2", "running"), 30000);
    cr_assert(ok);

    json_decref(POST("/api/instances/rv-0/signal",
                     "{\"name\":\"review\",\"payload\":{\"decision\":\"approved\"}}",
                     202));
    BT_TEST_WAIT_UNTIL(ok, status_is("rv-0", "completed"), 30000);
    cr_assert(ok, "the signal sent from the API completes it");
    cr_assert(recorded_by_ui("rv-0", "signal_received"), "who signalled is recorded");
    root = GET("/api/instances/rv-0", 200);
    cr_assert_str_eq(
        json_string_value(json_object_get(
            json_object_get(json_object_get(root, "result"), "review"), "decision")),
        "approved");
    json_decref(root);

    json_decref(POST("/api/instances/rv-1/cancel", "{\"reason\":\"duplicate\"}", 202));
    BT_TEST_WAIT_UNTIL(ok, status_is("rv-1", "completed"), 30000);
    cr_assert(ok, "await_review cleans up and completes on a cancel");
    cr_assert(cancel_recorded("rv-1", "duplicate") &&
                  recorded_by_ui("rv-1", "cancel_requested"),
              "who asked, from where, is in the history");
    json_decref(POST("/api/instances/rv-2/terminate", "{}", 202));
    BT_TEST_WAIT_UNTIL(ok, status_is("rv-2", "terminated"), 30000);
    cr_assert(ok);
    cr_assert(recorded_by_ui("rv-2", "cancel_requested"));

    pause_and_resume();
    root = POST("/api/limits/rate",
                "{\"key\":\"carriers\",\"rate\":\"12/s\",\"burst\":3}", 200);
    cr_assert_eq(json_integer_value(json_object_get(root, "rate")), 12);
    json_decref(root);
    reply = bt_stack_redis(&stack, "HGET %s:rl:carriers burst", stack.prefix);
    cr_assert(reply && reply->str && !strcmp(reply->str, "3"),
              "the HSET of ratelimit set");
    freeReplyObject(reply);

    cr_assert_eq(BT_STACK_BATON(&stack, out, "schedule", "add", "hourly", "--cron",
                                "0 * * * *", "--workflow=chain3", "--input", "{\"v\":1}"),
                 0, "%s", out);
    json_decref(POST("/api/schedules/hourly/pause", "{}", 200));
    root = GET("/api/schedules", 200);
    cr_assert_str_eq(json_string_value(json_object_get(json_array_get(root, 0), "state")),
                     "paused");
    json_decref(root);
    json_decref(POST("/api/schedules/hourly/resume", "{}", 200));
    root = POST("/api/schedules/hourly/trigger", "{}", 200);
    const char *id = json_string_value(json_object_get(root, "id"));
    cr_assert(id && !strncmp(id, "hourly@", 7), "%s", json_dumps(root, 0));
    BT_TEST_WAIT_UNTIL(ok, status_is(id, "completed"), 30000);
    cr_assert(ok, "the triggered instance runs");
    json_decref(root);
}

Test(ui, actions_need_the_page_the_token_and_no_read_only, .init = setup,
     .fini = teardown, .timeout = 120)
{
    char out[4096];
    int ro;
    pid_t read_only;

    bool ok;

    cr_assert_eq(BT_STACK_BATON(&stack, out, "start", "await_review", "--id", "t-1"), 0,
                 "%s", out);
    BT_TEST_WAIT_UNTIL(ok, status_is("t-1", "running"), 30000);
    cr_assert(ok);
    cr_assert_eq(bt_test_stop(ui, BT_TEST_STOP_MS), 0);
    ui = spawn_ui(&port, (const char *const[]){"--token", "s3cret-token", NULL});
    read_only = spawn_ui(&ro, (const char *const[]){"--read-only", NULL});

#define SIGNAL "/api/instances/t-1/signal"
#define REVIEW "{\"name\":\"review\"}"
    /* what a page of another site can send: no custom header, a form type */
    EXPECT("POST", SIGNAL, "Content-Type: text/plain\r\n", REVIEW, 403);
    EXPECT("POST", SIGNAL, "X-Baton-UI: 1\r\nContent-Type: text/plain\r\n", REVIEW, 403);
    EXPECT("POST", SIGNAL, "Content-Type: application/json\r\n", REVIEW, 403);
    EXPECT("POST", SIGNAL, ACTION "Origin: http://evil.example\r\n", REVIEW, 403);
    EXPECT("GET", "/api/instances", "Host: evil.example:80\r\n", NULL, 403);
    /* the token */
    EXPECT("POST", SIGNAL, ACTION, REVIEW, 401);
    EXPECT("POST", SIGNAL, ACTION "Authorization: Bearer wrong-token!\r\n", REVIEW, 401);
    EXPECT("POST", SIGNAL, ACTION "Authorization: Bearer s3cret-tokeN\r\n", REVIEW, 401);
    EXPECT("GET", "/api/instances/t-1", NULL, NULL, 200);
    /* read-only refuses even the page's own action; reads go on */
    json_decref(call_on(ro, "POST", SIGNAL, ACTION, REVIEW, 403));
    json_decref(call_on(ro, "GET", "/api/instances/t-1", NULL, NULL, 200));
    cr_assert(status_is("t-1", "running"), "nothing refused reached it");
    snprintf(out, sizeof(out),
             ACTION
             "Authorization: Bearer s3cret-token\r\nOrigin: http://127.0.0.1:%d\r\n",
             port);
    EXPECT("POST", SIGNAL, out, REVIEW, 202);
    BT_TEST_WAIT_UNTIL(ok, status_is("t-1", "completed"), 30000);
    cr_assert(ok);
    cr_assert_eq(bt_test_stop(read_only, BT_TEST_STOP_MS), 0);
}

/* Stores n instances the way commits index them (meta hash, <kp>:idx:all
 * and :idx:<status>) in one Lua call, every 100th of type "rare". */
static void store_instances(int n)
{
    redisReply *reply = bt_stack_redis(
        &stack, "EVAL %s 0 %s %d",
        "for i = 1, tonumber(ARGV[2]) do "
        "  local id = 'bulk-' .. i "
        "  local t = (i % 100 == 0) and 'rare' or 'chain3' "
        "  redis.call('HSET', ARGV[1] .. ':{' .. id .. '}', 'type', t, 'status', "
        "             'completed', 'created', 1700000000000 + i, 'updated', "
        "             1700000000500 + i) "
        "  redis.call('ZADD', ARGV[1] .. ':idx:all', 1700000000000 + i, id) "
        "  redis.call('ZADD', ARGV[1] .. ':idx:completed', 1700000000000 + i, id) "
        "end return 1",
        stack.prefix, n);

    cr_assert(reply && reply->type == REDIS_REPLY_INTEGER, "%s",
              reply && reply->str ? reply->str : "no answer");
    freeReplyObject(reply);
}

Test(ui, a_page_of_ten_thousand_instances_comes_in_milliseconds, .init = setup_redis_only,
     .fini = teardown, .timeout = 120)
{
    json_t *root, *seen = json_object(), *row;
    char path[160], cursor[64] = "";
    size_t i;

    store_instances(10000);
    for (int page = 0; page < 4; page++) {
        int64_t t0 = bt_test_now_ms();
        snprintf(path, sizeof(path), "/api/instances?limit=50&cursor=%s", cursor);
        root = GET(path, 200);
        int64_t took = bt_test_now_ms() - t0;
        cr_assert_lt(took, 500, "a page took %lld ms", (long long)took);
        cr_assert_eq(json_array_size(json_object_get(root, "instances")), 50);
        json_array_foreach(json_object_get(root, "instances"), i, row)
        {
            const char *id = json_string_value(json_object_get(row, "id"));
            cr_assert(!json_object_get(seen, id), "%s on two pages", id);
            json_object_set_new(seen, id, json_true());
        }
        if (page == 0)
            cr_assert_str_eq(
                json_string_value(json_object_get(
                    json_array_get(json_object_get(root, "instances"), 0), "id")),
                "bulk-10000", "newest first");
        snprintf(cursor, sizeof(cursor), "%s",
                 json_string_value(json_object_get(root, "next")));
        json_decref(root);
    }
    /* a rare type: found a bounded slice at a time, and every one of them */
    int64_t t0 = bt_test_now_ms();
    size_t found = 0;
    cursor[0] = '\0';
    do {
        snprintf(path, sizeof(path), "/api/instances?type=rare&limit=50&cursor=%s",
                 cursor);
        root = GET(path, 200);
        found += json_array_size(json_object_get(root, "instances"));
        snprintf(cursor, sizeof(cursor), "%s",
                 json_is_string(json_object_get(root, "next"))
                     ? json_string_value(json_object_get(root, "next"))
                     : "");
        json_decref(root);
    } while (*cursor);
    cr_assert_eq(found, 100);
    cr_assert_lt(bt_test_now_ms() - t0, 3000, "every page of a rare type");
    json_decref(seen);
}

struct slow_read {
    int status;
    int64_t done_ms;
};

static void *read_dlq(void *arg)
{
    struct slow_read *r = arg;

    free(bt_test_http(port, "GET", "/api/dlq", NULL, NULL, &r->status));
    r->done_ms = bt_clock_now_ms();
    return NULL;
}

/* The dead letters are read from Kafka by clients made for the request,
 * which takes a while on a slow broker: the other views, which need only
 * Redis, keep answering meanwhile. */
Test(ui, a_slow_dead_letter_read_does_not_hold_the_other_views, .init = setup,
     .fini = teardown, .timeout = 120)
{
    struct slow_read r = {0};
    pthread_t thread;
    int64_t t0;
    int answered = 0;

    /* every request to the embedded brokers takes 700 ms more */
    cr_assert_eq(rd_kafka_mock_broker_set_rtt(stack.kafka.mcluster, -1, 700), 0);
    t0 = bt_clock_now_ms();
    cr_assert_eq(pthread_create(&thread, NULL, read_dlq, &r), 0);
    /* the views asked from 300 ms on, while the read is surely in flight */
    while (!r.done_ms || bt_clock_now_ms() < t0 + 300) {
        json_t *root = GET("/api/limits", 200);
        json_decref(root);
        if (bt_clock_now_ms() >= t0 + 300 && !r.done_ms)
            answered++;
        bt_clock_sleep_ms(20); /* a pace, as a page polls, not a wait */
    }
    pthread_join(thread, NULL);
    cr_assert_eq(rd_kafka_mock_broker_set_rtt(stack.kafka.mcluster, -1, 0), 0);
    cr_assert_eq(r.status, 200);
    cr_assert_gt(r.done_ms - t0, 1400, "the slow read took %lld ms",
                 (long long)(r.done_ms - t0));
    cr_log_info("dead letters read in %lld ms, %d views answered meanwhile",
                (long long)(r.done_ms - t0), answered);
    cr_assert_geq(answered, 3, "only %d views answered during the %lld ms read", answered,
                  (long long)(r.done_ms - t0));
}

/* The page in chromium (tests/browser/ui.py, which starts its own `baton dev`
 * and the registration example's workers): a campaign found by filter, its
 * timeline's bars, the review signal sent from the page and the completion
 * seen without a reload, the rate limit's tokens moving; a screenshot of
 * each view in <build>/ui-screenshots. Not under the sanitizers (make
 * test-asan): the API tests above cover the C there, and the browser adds
 * ~15 s to a run that is slow already. */
Test(ui, the_page_works_in_chromium, .timeout = 240)
{
    BT_TEST_RELEASE_ONLY();
    const char *argv[] = {
        "/usr/bin/python3", BT_SOURCE_DIR "/tests/browser/ui.py", BT_BIN_DIR,
        BT_PLUGIN_DIR,      BT_BUILD_DIR "/ui-screenshots",       NULL};
    const char *log = BT_BUILD_DIR "/ui-browser.log";
    char text[8192];
    int rc;

    remove(log);
    rc = bt_test_wait(bt_test_spawn(argv, NULL, log), 200000);
    bt_test_file_tail(log, text, sizeof(text));
    cr_assert_eq(rc, 0,
                 "tests/browser/ui.py: exit %d (scripts/bootstrap installs "
                 "chromium, chromium-driver, python3-selenium):\n%s",
                 rc, text);
}
