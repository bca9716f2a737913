/* `baton schedule add|list|pause|resume|trigger|delete` and the one-shot
 * schedules of `baton start --at`: they write the schedule hashes and the
 * schedules set that baton-scheduler fires from (layout in
 * scheduler/schedules.h), each change one schedule_update.lua call. */
#define _DEFAULT_SOURCE /* timegm */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "cli.h"
#include "codec.h"
#include "cron.h"
#include "err.h"
#include "instance.h"
#include "lua_scripts.h"

#define NAME_MAX_LEN 200 /* leaves room for "@YYYYMMDDTHHMMSSZ" in an id */

static const char usage_text[] =
    "usage: baton schedule add NAME --cron EXPR --workflow TYPE [--input JSON|@file]\n"
    "                          [--queue QUEUE] [--overlap skip|allow] [--tz ZONE]\n"
    "       baton schedule list\n"
    "       baton schedule pause|resume|trigger|delete NAME\n";

static char *format_time(int64_t ms, char *buf, size_t n)
{
    time_t s = (time_t)(ms / 1000);
    struct tm tm;

    gmtime_r(&s, &tm);
    strftime(buf, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

static const char *field(const redisReply *hash, const char *name)
{
    for (size_t i = 0; hash && i + 1 < hash->elements; i += 2)
        if (hash->element[i]->str && !strcmp(hash->element[i]->str, name))
            return hash->element[i + 1]->str;
    return NULL;
}

static const char *show(const char *s)
{
    return s && *s ? s : "-";
}

static bool valid_name(const char *name)
{
    size_t len = strlen(name);

    for (const char *p = name; *p; p++)
        if (!isalnum((unsigned char)*p) && !strchr("._:-", *p))
            return false;
    return len > 0 && len <= NAME_MAX_LEN;
}

/* Runs schedule_update.lua: mode add|update|delete, score ("" = unchanged),
 * then n field/value pairs. Returns 1 done, 0 the mode's condition failed,
 * BT_EAGAIN Redis unreachable (said to the user). */
static int update(struct bt_store *store, const char *name, const char *mode,
                  const char *score, const char *const *pairs, int n)
{
    char key[600], set[600];
    const char *argv[32] = {key, set, name, mode, score};
    redisReply *reply;
    int argc = 5, ret = BT_EAGAIN;

    BT_ASSERT(n * 2 + argc <= 32);
    snprintf(key, sizeof(key), "%s:schedule:%s", bt_store_schedule_prefix(store), name);
    snprintf(set, sizeof(set), "%s:schedules", bt_store_schedule_prefix(store));
    for (int i = 0; i < n * 2; i++)
        argv[argc++] = pairs[i];
    reply =
        bt_redis_eval(bt_store_redis(store), bt_lua_schedule_update, 2, argc, argv, NULL);
    if (reply && reply->type == REDIS_REPLY_INTEGER)
        ret = (int)reply->integer;
    else
        fprintf(stderr, "baton: cannot update schedule %s in Redis: %s\n", name,
                reply && reply->str ? reply->str : "connection lost");
    freeReplyObject(reply);
    return ret;
}

static redisReply *load(struct bt_store *store, const char *name)
{
    char key[600];
    redisReply *hash;

    snprintf(key, sizeof(key), "%s:schedule:%s", bt_store_schedule_prefix(store), name);
    hash = bt_redis_command(bt_store_redis(store), "HGETALL %s", key);
    if (!hash || hash->type != REDIS_REPLY_ARRAY)
        fprintf(stderr, "baton: cannot read from Redis: %s\n",
                hash && hash->str ? hash->str : "connection lost");
    return hash;
}

static int not_found(const char *cmd, const char *name)
{
    fprintf(stderr, "baton schedule %s: no schedule named \"%s\"\n", cmd, name);
    return BT_EXIT_FAIL;
}

/* The input as compact JSON text into *text (caller frees), from JSON or @file. */
static int read_input(const char *arg, char **text)
{
    json_error_t jerr;
    json_t *root = arg[0] == '@' ? json_load_file(arg + 1, JSON_DECODE_ANY, &jerr)
                                 : json_loads(arg, JSON_DECODE_ANY, &jerr);

    if (!root) {
        fprintf(stderr, "baton: --input: %s (line %d, column %d)\n", jerr.text, jerr.line,
                jerr.column);
        return BT_EXIT_USAGE;
    }
    *text = json_dumps(root, JSON_COMPACT | JSON_ENCODE_ANY);
    json_decref(root);
    return *text ? BT_EXIT_OK : BT_EXIT_FAIL;
}

/* Whether a start event for id/type/input would be valid: the codec's rules. */
static bool valid_start(const char *id, const char *type, const char *input)
{
    struct bt_msg msg = {.type = BT_MSG_START,
                         .id = (char *)(uintptr_t)id,
                         .workflow = (char *)(uintptr_t)type};
    size_t len;
    char *bytes;

    msg.body = input ? json_loads(input, JSON_DECODE_ANY, NULL) : NULL;
    bytes = bt_codec_encode(&msg, &len);
    json_decref(msg.body);
    free(bytes);
    return bytes != NULL;
}

static const char *cron_arg, *workflow_arg, *input_arg,
    *queue_arg = "", *overlap_arg = "skip", *tz_arg = "UTC";

static const struct bt_arg add_args[] = {
    {"cron", 0, BT_ARG_STR, &cron_arg, "EXPR",
     .help = "when it fires: five cron fields (\"*/5 * * * *\"); required"},
    {"workflow", 0, BT_ARG_STR, &workflow_arg, "TYPE",
     .help = "the workflow type it starts; required"},
    {"input", 0, BT_ARG_STR, &input_arg, "JSON|@FILE", "null",
     .help = "the input of every instance it starts"},
    {"queue", 0, BT_ARG_STR, &queue_arg, "QUEUE", "default",
     .help = "the workflow queue of the instances"},
    {"overlap", 0, BT_ARG_CHOICE, &overlap_arg, "POLICY", "skip", .choices = "skip|allow",
     .help = "when the previous instance still runs: skip this fire, or start anyway"},
    {"tz", 0, BT_ARG_STR, &tz_arg, "ZONE", "UTC",
     .help = "the time zone of the cron fields (Europe/Paris)"},
    {NULL},
};

static const struct bt_cmd add_cmd = {
    .name = "baton schedule add",
    .synopsis = "NAME --cron EXPR --workflow TYPE [--input JSON|@file] [--queue QUEUE] "
                "[--overlap skip|allow] [--tz ZONE]",
    .about = "Add a cron schedule: baton-scheduler starts an instance of TYPE at each "
             "fire, with the id NAME@<fire time>.",
    .args = add_args,
    .settings = (const char *const[]){BT_CLI_REDIS_SETTINGS, NULL},
    .min_pos = 1,
    .max_pos = 1,
};

/* The flags of `schedule add` that are checked as they are: false having
 * said what is wrong. */
static bool add_flags_ok(const char *name)
{
    if (!cron_arg || !workflow_arg) {
        fprintf(stderr, "baton schedule add: --cron and --workflow are required\n%s",
                usage_text);
        return false;
    }
    if (!bt_cli_queue_ok("schedule add", *queue_arg ? queue_arg : NULL))
        return false;
    if (!valid_name(name)) {
        fprintf(stderr,
                "baton schedule add: name \"%s\": use 1-%d letters, digits, '.', "
                "'_', ':' or '-'\n",
                name, NAME_MAX_LEN);
        return false;
    }
    if (strcmp(overlap_arg, "skip") && strcmp(overlap_arg, "allow")) {
        fprintf(stderr, "baton schedule add: overlap: \"%s\" is not skip or allow\n",
                overlap_arg);
        return false;
    }
    return true;
}

static int add(struct bt_config *cfg, int argc, char **argv)
{
    const char *name, *cron_s, *type, *overlap, *tz, *queue;
    char *input = NULL, errstr[300], next_s[32], created_s[32], id[BT_ID_MAX + 1],
         when[32], *pos[1];
    struct bt_store *store = NULL;
    struct bt_cron cron;
    int64_t next;
    int ret, rc, n_pos;

    if ((ret = bt_cli_args(&add_cmd, argc, argv, pos, &n_pos)) >= 0)
        return ret;
    name = pos[0];
    cron_s = cron_arg;
    type = workflow_arg;
    overlap = overlap_arg;
    tz = tz_arg;
    queue = queue_arg;
    if (input_arg && (ret = read_input(input_arg, &input)))
        goto out;
    ret = BT_EXIT_USAGE;
    if (!add_flags_ok(name))
        goto out;
    if (bt_cron_parse(&cron, cron_s, errstr, sizeof(errstr)) ||
        bt_cron_zone_check(tz, errstr, sizeof(errstr))) {
        fprintf(stderr, "baton schedule add: %s\n", errstr);
        goto out;
    }
    if ((rc = bt_cron_next(&cron, tz, bt_clock_now_ms(), &next))) {
        fprintf(stderr, "baton schedule add: cron: %s\n", bt_strerror(rc));
        goto out;
    }
    if (!valid_start(bt_cron_fire_id(name, next, id, sizeof(id)), type, input)) {
        fprintf(stderr, "baton schedule add: workflow: \"%s\" is not a valid type name\n",
                type);
        goto out;
    }
    ret = BT_EXIT_UNAVAILABLE;
    if (!(store = bt_cli_store(cfg)))
        goto out;
    snprintf(next_s, sizeof(next_s), "%lld", (long long)next);
    snprintf(created_s, sizeof(created_s), "%lld", (long long)bt_clock_now_ms());
    const char *pairs[] = {"cron",     cron_s,  "tz",      tz,
                           "workflow", type,    "input",   input ? input : "",
                           "overlap",  overlap, "paused",  "0",
                           "next",     next_s,  "created", created_s,
                           "fired",    "0",     "skipped", "0",
                           "queue",    queue};
    rc = update(store, name, "add", next_s, pairs, 11);
    if (rc < 0)
        goto out;
    if (rc == 0) {
        fprintf(stderr,
                "baton schedule add: a schedule named \"%s\" already exists (delete "
                "it first)\n",
                name);
        ret = BT_EXIT_FAIL;
        goto out;
    }
    fprintf(stderr, "added schedule %s: %s, next fire %s\n", name, type,
            format_time(next, when, sizeof(when)));
    ret = BT_EXIT_OK;
out:
    free(input);
    bt_store_destroy(store);
    return ret;
}

static bool list_json;

/* One schedule (its HGETALL reply h) as JSON: a new reference. */
static json_t *schedule_json(const char *name, const redisReply *h)
{
    const char *paused = field(h, "paused"), *once = field(h, "once"),
               *next = field(h, "next"), *queue = field(h, "queue");
    char when[40];

    return json_pack(
        "{s:s, s:s, s:s, s:b, s:s?, s:s?, s:s?, s:s, s:s?, s:s?, s:s?}", "name", name,
        "state", paused && !strcmp(paused, "1") ? "paused" : "active", "next",
        bt_cli_time(next ? strtoll(next, NULL, 10) : 0, when, sizeof(when)), "once",
        once != NULL, "cron", once ? NULL : field(h, "cron"), "tz",
        once ? NULL : field(h, "tz"), "workflow", field(h, "workflow"), "queue",
        queue && *queue ? queue : "default", "overlap", once ? NULL : field(h, "overlap"),
        "last_id", field(h, once ? "id" : "last_id"), "error", field(h, "error"));
}

/* One schedule (its HGETALL reply h) as a line of text or of JSON. */
static void print_schedule(const char *name, const redisReply *h)
{
    const char *paused = field(h, "paused"), *once = field(h, "once"),
               *next = field(h, "next"), *err = field(h, "error"),
               *queue = field(h, "queue");
    int64_t next_ms = next ? strtoll(next, NULL, 10) : 0;
    char when[40];

    queue = queue && *queue ? queue : "default";
    if (list_json) {
        bt_cli_print_json(schedule_json(name, h));
        return;
    }
    printf("%-24s %-7s %-20s %-16s %-14s %-16s %-12s %-7s %s\n", name,
           paused && !strcmp(paused, "1") ? "paused" : "active",
           format_time(next_ms, when, sizeof(when)),
           once ? "once" : show(field(h, "cron")), once ? "-" : show(field(h, "tz")),
           show(field(h, "workflow")), queue, once ? "-" : show(field(h, "overlap")),
           show(field(h, once ? "id" : "last_id")));
    if (err)
        printf("  error: %s\n", err);
}

/* Calls fn(name, hash, arg) for each schedule, in order of next fire. */
static int each_schedule(struct bt_store *store,
                         void (*fn)(const char *name, const redisReply *h, void *arg),
                         void *arg)
{
    struct bt_redis *r = bt_store_redis(store);
    redisReply *names;
    char set[600];
    int ret = BT_EXIT_UNAVAILABLE;

    snprintf(set, sizeof(set), "%s:schedules", bt_store_schedule_prefix(store));
    names = bt_redis_command(r, "ZRANGE %s 0 -1", set);
    if (!names || names->type != REDIS_REPLY_ARRAY) {
        fprintf(stderr, "baton: cannot read from Redis\n");
        goto out;
    }
    for (size_t i = 0; i < names->elements; i++) {
        char key[600];
        const char *argv[] = {"HGETALL", key};
        snprintf(key, sizeof(key), "%s:schedule:%s", bt_store_schedule_prefix(store),
                 names->element[i]->str);
        if (bt_redis_append_argv(r, 2, argv, NULL)) {
            fprintf(stderr, "baton: out of memory\n");
            ret = BT_EXIT_FAIL;
            goto out; /* the connection dies with the process */
        }
    }
    for (size_t i = 0; i < names->elements; i++) {
        redisReply *h = NULL;
        if (bt_redis_reply(r, &h)) {
            fprintf(stderr, "baton: lost Redis while listing\n");
            goto out;
        }
        if (h->type == REDIS_REPLY_ARRAY && h->elements > 0)
            fn(names->element[i]->str, h, arg);
        freeReplyObject(h);
    }
    ret = BT_EXIT_OK;
out:
    freeReplyObject(names);
    return ret;
}

static void print_one(const char *name, const redisReply *h, void *arg)
{
    (void)arg;
    print_schedule(name, h);
}

static void append_one(const char *name, const redisReply *h, void *arg)
{
    json_array_append_new(arg, schedule_json(name, h));
}

int bt_cli_schedule_list(struct bt_store *store, json_t *rows)
{
    return each_schedule(store, append_one, rows);
}

static int list(struct bt_store *store)
{
    if (!list_json)
        printf("%-24s %-7s %-20s %-16s %-14s %-16s %-12s %-7s %s\n", "NAME", "STATE",
               "NEXT", "SCHEDULE", "TZ", "WORKFLOW", "QUEUE", "OVERLAP", "LAST");
    return each_schedule(store, print_one, NULL);
}

int bt_cli_schedule_pause_resume(struct bt_store *store, const char *cmd,
                                 const char *name)
{
    redisReply *hash = NULL;
    const char *pairs[] = {"paused", "1", "next", NULL, "error", ""};
    char next_s[32], errstr[300];
    int64_t next;
    int rc, ret = BT_EXIT_UNAVAILABLE;

    if (!strcmp(cmd, "pause")) {
        rc = update(store, name, "update", "+inf", pairs, 1);
        return rc < 0 ? BT_EXIT_UNAVAILABLE : rc == 0 ? not_found(cmd, name) : BT_EXIT_OK;
    }
    if (!(hash = load(store, name)) || hash->type != REDIS_REPLY_ARRAY)
        goto out;
    if (hash->elements == 0) {
        ret = not_found(cmd, name);
        goto out;
    }
    if (field(hash, "once")) {
        next = strtoll(field(hash, "next") ? field(hash, "next") : "0", NULL, 10);
    } else {
        struct bt_cron cron;
        if (bt_cron_parse(&cron, field(hash, "cron") ? field(hash, "cron") : "", errstr,
                          sizeof(errstr)) ||
            bt_cron_next(&cron, field(hash, "tz"), bt_clock_now_ms(), &next)) {
            fprintf(stderr,
                    "baton schedule resume: %s: cannot compute its next fire time\n",
                    name);
            ret = BT_EXIT_FAIL;
            goto out;
        }
    }
    snprintf(next_s, sizeof(next_s), "%lld", (long long)next);
    pairs[1] = "0";
    pairs[3] = next_s;
    rc = update(store, name, "update", next_s, pairs, 3);
    ret = rc < 0 ? BT_EXIT_UNAVAILABLE : rc == 0 ? not_found(cmd, name) : BT_EXIT_OK;
out:
    freeReplyObject(hash);
    return ret;
}

/* A one-shot's stored start event stamped now; NULL when it is not one. */
static char *once_event(const struct bt_config *cfg, const char *event, int64_t now,
                        size_t *len)
{
    struct bt_msg msg;
    char errstr[256], *bytes = NULL;

    if (event && !bt_codec_decode(event, strlen(event), (size_t)cfg->max_payload, &msg,
                                  errstr, sizeof(errstr))) {
        msg.ts = now;
        bytes = msg.type == BT_MSG_START ? bt_codec_encode(&msg, len) : NULL;
        bt_msg_release(&msg);
    }
    return bytes;
}

/* Fires once now, whatever the overlap policy: the user asked for it. */
/* The events topic suffix of a start event's workflow queue. */
static char *queue_of(const struct bt_config *cfg, const char *bytes, size_t len)
{
    struct bt_msg msg;
    char errstr[256], *suffix;

    if (bt_codec_decode(bytes, len, (size_t)cfg->max_payload, &msg, errstr,
                        sizeof(errstr)))
        return bt_events_suffix(NULL);
    suffix = bt_events_suffix(msg.queue);
    bt_msg_release(&msg);
    return suffix;
}

int bt_cli_schedule_trigger(const struct bt_config *cfg, struct bt_store *store,
                            const char *name, char *id_out, size_t n)
{
    struct bt_msg msg = {.type = BT_MSG_START};
    redisReply *hash = NULL;
    char id[BT_ID_MAX + 1], *bytes = NULL, now_s[32], *suffix;
    const char *input, *once;
    int64_t now = bt_clock_now_ms();
    size_t len;
    int ret = BT_EXIT_UNAVAILABLE;

    if (!(hash = load(store, name)) || hash->type != REDIS_REPLY_ARRAY)
        goto out;
    if (hash->elements == 0) {
        ret = not_found("trigger", name);
        goto out;
    }
    once = field(hash, "once");
    input = field(hash, "input");
    if (once) {
        snprintf(id, sizeof(id), "%s", field(hash, "id") ? field(hash, "id") : "");
        bytes = once_event(cfg, field(hash, "event"), now, &len);
    } else {
        bt_cron_fire_id(name, now, id, sizeof(id));
        msg.id = id;
        msg.workflow = (char *)(uintptr_t)field(hash, "workflow");
        msg.queue = (char *)(uintptr_t)field(hash, "queue");
        msg.body = input && *input ? json_loads(input, JSON_DECODE_ANY, NULL) : NULL;
        msg.ts = now;
        bytes = bt_codec_encode(&msg, &len);
    }
    if (!bytes) {
        fprintf(stderr,
                "baton schedule trigger: %s: its stored start event, workflow or "
                "input is invalid\n",
                name);
        ret = BT_EXIT_FAIL;
        goto out;
    }
    suffix = queue_of(cfg, bytes, len);
    ret = bt_cli_produce(cfg, suffix, id, bytes, len);
    free(suffix);
    if (ret)
        goto out;
    snprintf(now_s, sizeof(now_s), "%lld", (long long)now);
    const char *pairs[] = {"last_id", id, "last_fire", now_s};
    /* a one-shot has done its job; a lost update only leaves LAST stale */
    if (update(store, name, once ? "delete" : "update", "", pairs, 2) < 0)
        fprintf(stderr, "baton schedule trigger: started, but not recorded in %s\n",
                name);
    snprintf(id_out, n, "%s", id);
out:
    json_decref(msg.body);
    free(bytes);
    freeReplyObject(hash);
    return ret;
}

static const struct bt_arg list_args[] = {
    {"json", 0, BT_ARG_BOOL, &list_json,
     .help = "one JSON object per schedule and line (JSON lines), no header"},
    {NULL},
};

static const struct bt_cmd list_cmd = {
    .name = "baton schedule list",
    .synopsis = "[--json]",
    .args = list_args,
    .about = "List the schedules: state, next fire, cron, zone, workflow, queue, overlap "
             "policy, last instance started.",
    .settings = (const char *const[]){BT_CLI_REDIS_SETTINGS, NULL},
};

/* pause, resume, trigger and delete: NAME and nothing else */
static const struct bt_cmd name_cmds[] = {
    {"baton schedule pause", "NAME", "Pause a schedule: it fires no more until resumed.",
     .settings = (const char *const[]){BT_CLI_REDIS_SETTINGS, NULL}, 1, 1},
    {"baton schedule resume", "NAME",
     "Resume a paused schedule from its next fire time after now.",
     .settings = (const char *const[]){BT_CLI_REDIS_SETTINGS, NULL}, 1, 1},
    {"baton schedule trigger", "NAME",
     "Start the schedule's workflow once now, whatever its overlap policy.",
     .settings =
         (const char *const[]){BT_CLI_REDIS_SETTINGS, BT_CLI_KAFKA_SETTINGS, NULL},
     1, 1},
    {"baton schedule delete", "NAME", "Delete a schedule (and a pending `start --at`).",
     .settings = (const char *const[]){BT_CLI_REDIS_SETTINGS, NULL}, 1, 1},
};

static const struct bt_cmd schedule_cmd = {
    .name = "baton schedule",
    .synopsis = "add NAME --cron EXPR --workflow TYPE [flags] | list | "
                "pause|resume|trigger|delete NAME",
    .about = "Cron schedules, fired by baton-scheduler (docs/schedules.md). `baton "
             "schedule SUBCOMMAND --help` shows each one's flags.",
    .min_pos = 1,
    .max_pos = 2,
};

/* The schedule command whose verb is cmd, or NULL. */
static const struct bt_cmd *sub_cmd(const char *cmd)
{
    size_t len = strlen(cmd);

    if (!strcmp(cmd, "list"))
        return &list_cmd;
    for (size_t i = 0; i < sizeof(name_cmds) / sizeof(name_cmds[0]); i++) {
        const char *verb = strrchr(name_cmds[i].name, ' ') + 1;
        if (strlen(verb) == len && !strcmp(verb, cmd))
            return &name_cmds[i];
    }
    return NULL;
}

int bt_cli_schedule(struct bt_config *cfg, int argc, char **argv)
{
    const char *cmd = argc > 1 ? argv[1] : "";
    const struct bt_cmd *sub = sub_cmd(cmd);
    struct bt_store *store;
    char *pos[2];
    int ret, rc, n_pos;

    if (!strcmp(cmd, "add"))
        return add(cfg, argc - 1, argv + 1);
    if (!sub) {
        if ((ret = bt_cli_args(&schedule_cmd, argc, argv, pos, &n_pos)) >= 0)
            return ret;
        fprintf(stderr, "baton schedule: unknown subcommand \"%s\"\n%s", pos[0],
                usage_text);
        return BT_EXIT_USAGE;
    }
    if ((ret = bt_cli_args(sub, argc - 1, argv + 1, pos, &n_pos)) >= 0)
        return ret;
    if (!(store = bt_cli_store(cfg)))
        return BT_EXIT_UNAVAILABLE;
    if (!strcmp(cmd, "list")) {
        ret = list(store);
    } else if (!strcmp(cmd, "trigger")) {
        char id[BT_ID_MAX + 1];
        if ((ret = bt_cli_schedule_trigger(cfg, store, pos[0], id, sizeof(id))) ==
            BT_EXIT_OK)
            printf("%s\n", id);
    } else if (!strcmp(cmd, "delete")) {
        rc = update(store, pos[0], "delete", "", NULL, 0);
        ret = rc < 0    ? BT_EXIT_UNAVAILABLE
              : rc == 0 ? not_found(cmd, pos[0])
                        : BT_EXIT_OK;
    } else {
        ret = bt_cli_schedule_pause_resume(store, cmd, pos[0]);
    }
    bt_store_destroy(store);
    return ret;
}

int bt_cli_parse_time(const char *at, int64_t now, int64_t *ms)
{
    struct tm tm = {0};
    char *end;
    int y, mo, d, h, mi, s, n = 0, oh = 0, om = 0, frac_ms = 0;
    const char *p;

    if (at[0] == '+') {
        long long v = strtoll(at + 1, &end, 10);
        const char *units = "smhd";
        static const int64_t unit_ms[] = {1000, 60000, 3600000, 86400000};
        if (end == at + 1 || !isdigit((unsigned char)at[1]) || v > 100LL * 365 * 86400 ||
            !*end || end[1] || !strchr(units, *end))
            return BT_EINVAL;
        *ms = now + v * unit_ms[strchr(units, *end) - units];
        return 0;
    }
    /* digits where digits belong; sscanf checks the separators */
    for (int i = 0; i < 19; i++)
        if (!at[i] ||
            ("dddd-dd-ddTdd:dd:dd"[i] == 'd') != !!isdigit((unsigned char)at[i]))
            return BT_EINVAL;
    if (sscanf(at, "%4d-%2d-%2d%*1[Tt ]%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &s, &n) !=
            6 ||
        n != 19)
        return BT_EINVAL;
    p = at + n;
    if (*p == '.') {
        int digits = 0;
        for (p++; isdigit((unsigned char)*p); p++, digits++)
            if (digits < 3)
                frac_ms = frac_ms * 10 + (*p - '0');
        if (digits == 0)
            return BT_EINVAL;
        for (; digits < 3; digits++)
            frac_ms *= 10;
    }
    if ((*p == '+' || *p == '-') && sscanf(p + 1, "%2d:%2d%n", &oh, &om, &n) == 2 &&
        n == 5 && !p[6] && oh < 24 && om < 60) {
        if (*p == '-') {
            oh = -oh;
            om = -om;
        }
    } else if (!((*p == 'Z' || *p == 'z') && !p[1])) {
        return BT_EINVAL;
    }
    tm = (struct tm){.tm_year = y - 1900,
                     .tm_mon = mo - 1,
                     .tm_mday = d,
                     .tm_hour = h,
                     .tm_min = mi,
                     .tm_sec = s};
    time_t t = timegm(&tm);
    /* timegm normalises 2026-02-30 into March: refuse what moved */
    if (mo < 1 || mo > 12 || tm.tm_mon != mo - 1 || tm.tm_mday != d || h > 23 ||
        mi > 59 || s > 59)
        return BT_EINVAL;
    *ms = ((int64_t)t - oh * 3600 - om * 60) * 1000 + frac_ms;
    return 0;
}

int bt_cli_schedule_at(struct bt_config *cfg, const char *type, const char *id,
                       const char *event, const char *at)
{
    struct bt_store *store = NULL;
    char at_s[32], created_s[32], when[32];
    int64_t now = bt_clock_now_ms(), fire;
    int ret = BT_EXIT_USAGE, rc;

    if (bt_cli_parse_time(at, now, &fire)) {
        fprintf(stderr,
                "baton start: --at: \"%s\" is not RFC 3339 "
                "(2026-11-27T10:00:00Z) or +N followed by s, m, h or d\n",
                at);
        goto out;
    }
    ret = BT_EXIT_UNAVAILABLE;
    if (!(store = bt_cli_store(cfg)))
        goto out;
    snprintf(at_s, sizeof(at_s), "%lld", (long long)fire);
    snprintf(created_s, sizeof(created_s), "%lld", (long long)now);
    const char *pairs[] = {"once", "1",     "id",      id,       "workflow",
                           type,   "event", event,     "paused", "0",
                           "next", at_s,    "created", created_s};
    if ((rc = update(store, id, "add", at_s, pairs, 7)) < 0)
        goto out;
    if (rc == 0) {
        fprintf(stderr, "baton start: a schedule named \"%s\" already exists\n", id);
        ret = BT_EXIT_FAIL;
        goto out;
    }
    fprintf(stderr, "scheduled %s %s at %s\n", type, id,
            format_time(fire, when, sizeof(when)));
    ret = BT_EXIT_OK;
out:
    bt_store_destroy(store);
    return ret;
}
