/* `baton describe ID [--json]`: where an instance stands, read straight from
 * its Redis hash and journal. Both outputs print one model, built once, so
 * the text and the JSON (fields documented in the README's CLI reference)
 * cannot disagree. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "instance.h"

static bool json_arg;

static const struct bt_arg describe_args[] = {
    {"json", 0, BT_ARG_BOOL, &json_arg, .help = "one JSON object instead of text"},
    {NULL},
};

static const struct bt_cmd describe_cmd = {
    .name = "baton describe",
    .synopsis = "ID [--json]",
    .about = "Show where an instance stands: status, input, result, every step with its "
             "state, attempt and due time.",
    .args = describe_args,
    .settings = (const char *const[]){BT_CLI_REDIS_SETTINGS, NULL},
    .min_pos = 1,
    .max_pos = 1,
};

static const char *const state_names[] = {"waiting",  "attempt failed", "backing off",
                                          "retrying", "done",           "failed"};

static const char *field(const redisReply *hash, const char *name)
{
    for (size_t i = 0; i + 1 < hash->elements; i += 2)
        if (!strcmp(hash->element[i]->str, name))
            return hash->element[i + 1]->str;
    return NULL;
}

/* A stored JSON text as a value: null when absent or empty, the text itself
 * as a string when it is not JSON. */
static json_t *stored_json(const char *text)
{
    json_t *v;

    if (!text || !*text)
        return json_null();
    v = json_loads(text, JSON_DECODE_ANY, NULL);
    return v ? v : json_string(text);
}

static json_t *time_json(const char *ms)
{
    char buf[40];

    return ms ? json_string(bt_cli_time(strtoll(ms, NULL, 10), buf, sizeof(buf)))
              : json_null();
}

static const char *kind_name(char kind)
{
    switch (kind) {
    case 'a':
        return "activity";
    case 'c':
        return "child";
    case 't':
        return "sleep";
    case 's':
        return "signal";
    case 'x':
        return "recorded";
    case 'p':
        return "patch";
    }
    return "?";
}

static json_t *step_json(long long seq, const struct bt_entry *e)
{
    char due[40];
    bool open = e->state != BT_ST_DONE && e->state != BT_ST_FAILED;

    return json_pack(
        "{s:I, s:s, s:s, s:s, s:i, s:o, s:O?, s:O?}", "seq", (json_int_t)seq, "kind",
        kind_name(e->kind), "name", e->name, "state",
        e->state < 6 ? state_names[e->state] : "?", "attempt", e->attempt, "due",
        open && e->due ? json_string(bt_cli_time(e->due, due, sizeof(due))) : json_null(),
        "value", e->value, "error", e->error);
}

/* The steps of the journal (HGETALL reply: seq, entry, ...) as an array. */
static json_t *steps_json(const redisReply *journal, long long base)
{
    size_t n = journal->elements / 2;
    struct bt_entry *entries = calloc(n + 1, sizeof(*entries));
    json_t *steps = json_array();

    for (size_t i = 0; entries && i < journal->elements; i += 2) {
        long long seq = strtoll(journal->element[i]->str, NULL, 10) - base;
        if (seq >= 0 && (size_t)seq < n)
            bt_entry_decode(&entries[seq], journal->element[i + 1]->str,
                            journal->element[i + 1]->len);
    }
    for (size_t i = 0; entries && i < n; i++) {
        if (entries[i].name)
            json_array_append_new(steps, step_json(base + (long long)i, &entries[i]));
        bt_entry_release(&entries[i]);
    }
    free(entries);
    return steps;
}

/* The model both outputs print. Returns a new reference. */
static json_t *model(const char *id, const redisReply *meta, const redisReply *journal)
{
    const char *run = field(meta, "run"), *pseq = field(meta, "pseq"),
               *cancel = field(meta, "cancel"), *base = field(meta, "base"),
               *paused = field(meta, "paused");
    json_t *m = json_pack(
        "{s:s, s:s?, s:s?, s:o, s:o, s:o, s:s?, s:I, s:s?, s:o, s:o, s:o, s:o, s:b, s:o}",
        "id", id, "type", field(meta, "type"), "status", field(meta, "status"), "created",
        time_json(field(meta, "created")), "updated", time_json(field(meta, "updated")),
        "input", stored_json(field(meta, "input")), "queue", field(meta, "queue"), "run",
        (json_int_t)(run ? strtoll(run, NULL, 10) : 1), "parent", field(meta, "parent"),
        "parent_seq", pseq ? json_integer(strtoll(pseq, NULL, 10)) : json_null(),
        "result", stored_json(field(meta, "result")), "error",
        stored_json(field(meta, "error")), "signals", stored_json(field(meta, "signals")),
        "cancel_requested", cancel && cancel[0] == '1', "steps",
        steps_json(journal, base ? strtoll(base, NULL, 10) : 0));

    /* since when it is paused (its timers stopped then), while it is */
    if (m && paused && strtoll(paused, NULL, 10) > 0)
        json_object_set_new(m, "paused_since", time_json(paused));
    return m;
}

static const char *str(const json_t *root, const char *name)
{
    return json_string_value(json_object_get(root, name));
}

/* root's member name as compact JSON text, or NULL when it is null. */
static char *text(const json_t *root, const char *name)
{
    const json_t *v = json_object_get(root, name);

    return v && !json_is_null(v) ? json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
}

static void print_step(const json_t *step)
{
    const json_t *due = json_object_get(step, "due");
    char *v;

    printf("  %-4lld %-8s %-24s %-15s %-7d ",
           (long long)json_integer_value(json_object_get(step, "seq")), str(step, "kind"),
           str(step, "name"), str(step, "state"),
           (int)json_integer_value(json_object_get(step, "attempt")));
    if (json_is_string(due)) {
        printf("due %s", json_string_value(due));
    } else if (strcmp(str(step, "state"), "done") && (v = text(step, "error"))) {
        printf("%s", v);
        free(v);
    } else if ((v = text(step, "value"))) {
        printf("%.60s%s", v, strlen(v) > 60 ? "..." : "");
        free(v);
    }
    printf("\n");
}

static void print_text(const json_t *root)
{
    json_int_t run = json_integer_value(json_object_get(root, "run"));
    const json_t *steps = json_object_get(root, "steps"), *step;
    char *input = text(root, "input"), *result = text(root, "result"),
         *error = text(root, "error"), *signals = text(root, "signals");
    size_t i;

    printf("id:       %s\ntype:     %s\nstatus:   %s\n", str(root, "id"),
           str(root, "type"), str(root, "status"));
    printf("created:  %s\nupdated:  %s\n", str(root, "created"), str(root, "updated"));
    printf("input:    %s\n", input ? input : "null");
    if (str(root, "queue"))
        printf("queue:    %s\n", str(root, "queue"));
    if (run != 1)
        printf("run:      %lld (continued as new; `baton history --run N` shows earlier "
               "ones until their retention ends)\n",
               (long long)run);
    if (str(root, "parent"))
        printf("parent:   %s (seq %lld)\n", str(root, "parent"),
               (long long)json_integer_value(json_object_get(root, "parent_seq")));
    if (result)
        printf("result:   %s\n", result);
    if (error)
        printf("error:    %s\n", error);
    if (signals)
        printf("buffered signals: %s\n", signals);
    if (json_is_true(json_object_get(root, "cancel_requested")))
        printf("cancellation requested\n");
    if (json_is_string(json_object_get(root, "paused_since")))
        printf("paused since %s: no step runs and its timers are stopped until `baton "
               "resume`\n",
               str(root, "paused_since"));
    printf("steps:    %zu\n", json_array_size(steps));
    printf("  %-4s %-8s %-24s %-15s %-7s %s\n", "SEQ", "KIND", "NAME", "STATE", "ATTEMPT",
           "DUE / VALUE");
    json_array_foreach(steps, i, step) print_step(step);
    free(input);
    free(result);
    free(error);
    free(signals);
}

int bt_cli_describe_read(struct bt_store *store, const char *id, json_t **root)
{
    redisReply *meta = NULL, *journal = NULL;
    char key[600];
    int ret = BT_EXIT_UNAVAILABLE;

    *root = NULL;
    meta = bt_redis_command(bt_store_redis(store), "HGETALL %s",
                            bt_store_key(store, id, "", key, sizeof(key)));
    journal = bt_redis_command(bt_store_redis(store), "HGETALL %s",
                               bt_store_key(store, id, ":journal", key, sizeof(key)));
    if (!meta || !journal || meta->type != REDIS_REPLY_ARRAY ||
        journal->type != REDIS_REPLY_ARRAY)
        goto out;
    ret = BT_EXIT_FAIL;
    if (meta->elements > 0 && (*root = model(id, meta, journal)))
        ret = BT_EXIT_OK;
out:
    freeReplyObject(meta);
    freeReplyObject(journal);
    return ret;
}

int bt_cli_describe(struct bt_config *cfg, int argc, char **argv)
{
    struct bt_store *store;
    char *pos[1];
    json_t *root = NULL;
    int n_pos, ret;

    if ((ret = bt_cli_args(&describe_cmd, argc, argv, pos, &n_pos)) >= 0)
        return ret;
    if (!(store = bt_cli_store(cfg)))
        return BT_EXIT_UNAVAILABLE;
    ret = bt_cli_describe_read(store, pos[0], &root);
    if (ret == BT_EXIT_FAIL)
        bt_cli_gone(store, pos[0]); /* deleted after its retention, or never there */
    else if (ret == BT_EXIT_UNAVAILABLE)
        fprintf(stderr, "baton: cannot read from Redis at %s\n", cfg->redis);
    else if (json_arg)
        bt_cli_print_json(json_incref(root));
    else
        print_text(root);
    json_decref(root);
    bt_store_destroy(store);
    return ret;
}
