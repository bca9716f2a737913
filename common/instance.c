/* Instances, journal entries and decision deltas: memory management and the
 * JSON form of an entry in the journal hash ({"k":"a","s":5,"n":"charge",...}). */
#define _GNU_SOURCE /* asprintf */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "err.h"
#include "instance.h"
#include "jsonw.h"

static const char *const status_names[] = {
    [BT_STATUS_NONE] = "none",           [BT_STATUS_RUNNING] = "running",
    [BT_STATUS_COMPLETED] = "completed", [BT_STATUS_FAILED] = "failed",
    [BT_STATUS_CANCELLED] = "cancelled", [BT_STATUS_TERMINATED] = "terminated",
    [BT_STATUS_BLOCKED] = "blocked",     [BT_STATUS_PAUSED] = "paused",
};

const char *bt_status_name(enum bt_status s)
{
    return (unsigned)s < sizeof(status_names) / sizeof(status_names[0]) ? status_names[s]
                                                                        : "unknown";
}

int bt_status_parse(const char *s)
{
    for (size_t i = 0; i < sizeof(status_names) / sizeof(status_names[0]); i++)
        if (!strcmp(s, status_names[i]))
            return (int)i;
    return -1;
}

struct bt_instance *bt_instance_new(const char *id)
{
    struct bt_instance *inst = calloc(1, sizeof(*inst));

    if (!inst)
        return NULL;
    inst->run = 1;
    bt_delta_init(&inst->delta);
    if (!(inst->id = strdup(id))) {
        free(inst);
        return NULL;
    }
    return inst;
}

void bt_entry_release(struct bt_entry *e)
{
    free(e->name);
    json_decref(e->value);
    json_decref(e->error);
    memset(e, 0, sizeof(*e));
}

void bt_instance_destroy(struct bt_instance *inst)
{
    if (!inst)
        return;
    for (size_t i = 0; i < inst->n_entries; i++)
        bt_entry_release(&inst->entries[i]);
    free(inst->entries);
    bt_delta_release(&inst->delta);
    free(inst->id);
    free(inst->type);
    free(inst->queue);
    free(inst->parent_id);
    free(inst->parent_queue);
    free(inst->kpos);
    free(inst->crash_last);
    json_decref(inst->input);
    json_decref(inst->result);
    json_decref(inst->error);
    json_decref(inst->signals);
    json_decref(inst->attrs);
    free(inst);
}

struct bt_entry *bt_instance_append(struct bt_instance *inst, char kind, const char *name)
{
    struct bt_entry *e;

    if (inst->n_entries == inst->cap_entries) {
        size_t cap = inst->cap_entries ? inst->cap_entries * 2 : 8;
        struct bt_entry *grown = realloc(inst->entries, cap * sizeof(*grown));
        if (!grown)
            return NULL;
        inst->entries = grown;
        inst->cap_entries = cap;
    }
    e = &inst->entries[inst->n_entries];
    memset(e, 0, sizeof(*e));
    if (!(e->name = strdup(name)))
        return NULL;
    e->kind = kind;
    e->dirty = true;
    inst->n_entries++;
    return e;
}

/* Written by hand, not through a json_t: it is on every step's path. Same
 * text as json_dumps of the object {k, s, n, at, th?, v?, e?, d?}. */
char *bt_entry_encode(const struct bt_entry *e)
{
    struct bt_jw w = {0};

    bt_jw_lit(&w, "{\"k\":\"");
    bt_jw_put(&w, &e->kind, 1);
    bt_jw_lit(&w, "\",\"s\":");
    bt_jw_int(&w, e->state);
    bt_jw_lit(&w, ",\"n\":");
    bt_jw_string(&w, e->name, strlen(e->name));
    bt_jw_lit(&w, ",\"at\":");
    bt_jw_int(&w, e->attempt);
    if (e->throttles) {
        bt_jw_lit(&w, ",\"th\":");
        bt_jw_int(&w, e->throttles);
    }
    if (e->value) {
        bt_jw_lit(&w, ",\"v\":");
        bt_jw_value(&w, e->value);
    }
    if (e->error) {
        bt_jw_lit(&w, ",\"e\":");
        bt_jw_value(&w, e->error);
    }
    /* a finished step's time is past use: without it most entries stay
     * under Redis's 64 bytes of a small hash (listpack, a third the size) */
    if (e->due && e->state != BT_ST_DONE && e->state != BT_ST_FAILED) {
        bt_jw_lit(&w, ",\"d\":");
        bt_jw_int(&w, e->due);
    }
    bt_jw_lit(&w, "}");
    return bt_jw_finish(&w, NULL);
}

int bt_entry_decode(struct bt_entry *e, const char *text, size_t len)
{
    json_t *root = json_loadb(text, len, 0, NULL);
    const char *kind = NULL, *name = NULL;
    json_int_t state = 0, attempt = 0, throttles = 0, due = 0;
    int ret = BT_EINVALMSG;

    memset(e, 0, sizeof(*e));
    if (!root ||
        json_unpack(root, "{s:s, s:I, s:s, s:I, s?I, s?I}", "k", &kind, "s", &state, "n",
                    &name, "at", &attempt, "th", &throttles, "d", &due))
        goto out;
    if (strlen(kind) != 1 || !strchr("actsxpu", kind[0]) || state < 0 ||
        state > BT_ST_FAILED)
        goto out;
    e->kind = kind[0];
    e->state = (uint8_t)state;
    e->attempt = (int)attempt;
    e->throttles = (int)throttles;
    e->due = due;
    if (!(e->name = strdup(name)))
        goto out;
    e->value = json_incref(json_object_get(root, "v"));
    e->error = json_incref(json_object_get(root, "e"));
    ret = 0;
out:
    json_decref(root);
    return ret;
}

#define GROW(arr, n, cap)                                                                \
    do {                                                                                 \
        if ((n) == (cap)) {                                                              \
            size_t c = (cap) ? (cap)*2 : 4;                                              \
            void *g = realloc((arr), c * sizeof(*(arr)));                                \
            if (!g)                                                                      \
                goto nomem;                                                              \
            (arr) = g;                                                                   \
            (cap) = c;                                                                   \
        }                                                                                \
    } while (0)

int bt_delta_command(struct bt_delta *d, char *field, char *topic, char *key,
                     char *payload, size_t len)
{
    if (!field || !topic || !key || !payload)
        goto nomem;
    GROW(d->cmds, d->n_cmds, d->cap_cmds);
    d->cmds[d->n_cmds++] =
        (struct bt_command){field, topic, key, payload, len, false, false};
    return 0;
nomem:
    free(field);
    free(topic);
    free(key);
    free(payload);
    return BT_ENOMEM;
}

int bt_delta_timer(struct bt_delta *d, bool add, char *member, int64_t due)
{
    if (!member)
        goto nomem;
    if (add) {
        GROW(d->timers_add, d->n_timers_add, d->cap_timers_add);
        d->timers_add[d->n_timers_add++] = (struct bt_timer){member, due};
    } else {
        GROW(d->timers_del, d->n_timers_del, d->cap_timers_del);
        d->timers_del[d->n_timers_del++] = (struct bt_timer){member, 0};
    }
    return 0;
nomem:
    free(member);
    return BT_ENOMEM;
}

int bt_delta_history(struct bt_delta *d, char *record)
{
    if (!record)
        goto nomem;
    GROW(d->history, d->n_history, d->cap_history);
    d->history[d->n_history++] = record;
    return 0;
nomem:
    free(record);
    return BT_ENOMEM;
}

char *bt_task_field(int64_t seq, int attempt)
{
    struct bt_jw w = {0};

    bt_jw_lit(&w, "t|");
    bt_jw_int(&w, seq);
    bt_jw_lit(&w, "|");
    bt_jw_int(&w, attempt);
    return bt_jw_finish(&w, NULL);
}

int bt_command_hold(char **field, const char *worker)
{
    size_t fl = strlen(*field), wl = strlen(worker);
    char *held = malloc(fl + sizeof(BT_HELD_MARK) - 1 + wl + 1);

    if (!held)
        return BT_ENOMEM;
    memcpy(held, *field, fl);
    memcpy(held + fl, BT_HELD_MARK, sizeof(BT_HELD_MARK) - 1);
    memcpy(held + fl + sizeof(BT_HELD_MARK) - 1, worker, wl + 1);
    free(*field);
    *field = held;
    return 0;
}

const char *bt_command_holder(const char *field)
{
    const char *mark = strstr(field, BT_HELD_MARK);
    return mark ? mark + sizeof(BT_HELD_MARK) - 1 : NULL;
}

void bt_command_init(struct bt_command *c)
{
    memset(c, 0, sizeof(*c));
}

void bt_command_release(struct bt_command *c)
{
    free(c->field);
    free(c->topic);
    free(c->key);
    free(c->payload);
    bt_command_init(c);
}

void bt_delta_init(struct bt_delta *d)
{
    memset(d, 0, sizeof(*d));
}

void bt_delta_release(struct bt_delta *d)
{
    bt_delta_reset(d);
    free(d->cmds);
    free(d->timers_add);
    free(d->timers_del);
    free(d->history);
    bt_delta_init(d);
}

void bt_delta_reset(struct bt_delta *d)
{
    for (size_t i = 0; i < d->n_cmds; i++)
        bt_command_release(&d->cmds[i]);
    for (size_t i = 0; i < d->n_timers_add; i++)
        free(d->timers_add[i].member);
    for (size_t i = 0; i < d->n_timers_del; i++)
        free(d->timers_del[i].member);
    for (size_t i = 0; i < d->n_history; i++)
        free(d->history[i]);
    d->n_cmds = d->n_timers_add = d->n_timers_del = d->n_history = 0;
    free(d->uncarried);
    d->uncarried = NULL;
    d->meta_dirty = false;
    d->pause_changed = false;
    d->attrs_changed = false;
    d->reset = false;
    d->reset_history = 0;
}

int64_t bt_instance_history_after(const struct bt_instance *inst)
{
    const struct bt_delta *d = &inst->delta;

    if (d->reset)
        return (int64_t)(d->n_history - d->reset_history);
    return inst->hlen + (int64_t)d->n_history;
}

void bt_instance_committed(struct bt_instance *inst, int64_t ver)
{
    struct bt_delta *d = &inst->delta;

    inst->ver = ver;
    inst->hlen = bt_instance_history_after(inst);
    inst->kpos_stored = inst->koff_stored = inst->kpos != NULL;
    d->reset = false;
    d->reset_history = 0;
    inst->n_committed = inst->n_entries;
    for (size_t i = 0; i < inst->n_entries; i++)
        inst->entries[i].dirty = false;
    for (size_t i = 0; i < d->n_timers_add; i++)
        free(d->timers_add[i].member);
    for (size_t i = 0; i < d->n_timers_del; i++)
        free(d->timers_del[i].member);
    for (size_t i = 0; i < d->n_history; i++)
        free(d->history[i]);
    /* the commands wait for Kafka; the timers they pointed at are written */
    for (size_t i = 0; i < d->n_cmds; i++)
        d->cmds[i].start_timer = 0;
    d->n_timers_add = d->n_timers_del = d->n_history = 0;
    d->meta_dirty = false;
    d->pause_changed = false;
    d->attrs_changed = false;
    d->old_status = inst->status;
}

bool bt_instance_dirty(const struct bt_instance *inst)
{
    const struct bt_delta *d = &inst->delta;

    if (d->meta_dirty || d->pause_changed || d->attrs_changed || d->reset ||
        d->n_timers_add || d->n_timers_del || d->n_history ||
        inst->n_committed < inst->n_entries)
        return true;
    for (size_t i = 0; i < inst->n_committed; i++)
        if (inst->entries[i].dirty)
            return true;
    return false;
}

char *bt_events_suffix(const char *queue)
{
    char *s;

    if (!queue || !strcmp(queue, "default"))
        return strdup("events");
    if (asprintf(&s, "events.%s", queue) < 0)
        return NULL;
    return s;
}

char *bt_timer_member(const char *kind, int64_t seq, int attempt, const char *id)
{
    struct bt_jw w = {0};

    bt_jw_put(&w, kind, strlen(kind));
    bt_jw_lit(&w, "|");
    bt_jw_int(&w, seq);
    bt_jw_lit(&w, "|");
    bt_jw_int(&w, attempt);
    bt_jw_lit(&w, "|");
    bt_jw_put(&w, id, strlen(id));
    return bt_jw_finish(&w, NULL);
}

int bt_timer_parse(const char *member, struct bt_msg *msg, char *kind, size_t kind_n)
{
    const char *p1 = strchr(member, '|'), *p2, *p3;
    char *end;

    if (!p1 || !(p2 = strchr(p1 + 1, '|')) || !(p3 = strchr(p2 + 1, '|')) ||
        (size_t)(p1 - member) >= kind_n || !p3[1])
        return BT_EINVALMSG;
    memcpy(kind, member, (size_t)(p1 - member));
    kind[p1 - member] = '\0';
    msg->type = BT_MSG_TIMER;
    msg->kind = kind;
    msg->seq = strtoll(p1 + 1, &end, 10);
    if (end != p2)
        return BT_EINVALMSG;
    msg->attempt = (int)strtol(p2 + 1, &end, 10);
    if (end != p3)
        return BT_EINVALMSG;
    msg->id = (char *)(uintptr_t)(p3 + 1);
    return 0;
}
