/* Search attributes: what a workflow says about itself for finding it
 * (`bt_upsert_attributes`, baton.h). Each call is a journal entry holding the
 * object, so a replay passes over it; once a replay stands, the entries it
 * added are merged into the instance's attributes, which the commit writes
 * to its meta hash ("attrs") for `baton list --query` (cli/query.c). */
#include <stdio.h>
#include <string.h>

#include "baton.h"
#include "instance.h"
#include "replay_int.h"

#define NAME_MAX_LEN 64

/* The names a query gives its own meaning. */
static bool reserved(const char *name)
{
    static const char *const names[] = {"status", "type", "started", "id"};

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (!strcmp(name, names[i]))
            return true;
    return false;
}

static bool valid_name(const char *name)
{
    size_t n = strlen(name);

    if (n == 0 || n > NAME_MAX_LEN || (name[0] >= '0' && name[0] <= '9'))
        return false;
    for (size_t i = 0; i < n; i++)
        if (!(name[i] == '_' || (name[i] >= 'a' && name[i] <= 'z') ||
              (name[i] >= 'A' && name[i] <= 'Z') || (name[i] >= '0' && name[i] <= '9')))
            return false;
    return !reserved(name);
}

/* Whether attrs is an object of valid names and scalar values; why (size
 * n) says what is wrong when not. */
static bool valid(const json_t *attrs, char *why, size_t n)
{
    const char *k;
    const json_t *v;

    if (!json_is_object(attrs)) {
        snprintf(why, n, "search attributes must be a JSON object");
        return false;
    }
    json_object_foreach((json_t *)(uintptr_t)attrs, k, v)
    {
        if (!valid_name(k)) {
            snprintf(
                why, n,
                "search attribute \"%.64s\": a name is letters, digits and _ (up to "
                "%d, not starting with a digit), and not status, type, started or id",
                k, NAME_MAX_LEN);
            return false;
        }
        if (json_is_object(v) || json_is_array(v)) {
            snprintf(why, n,
                     "search attribute \"%s\": a value is a string, a number, a boolean "
                     "or null",
                     k);
            return false;
        }
    }
    return true;
}

void bt_upsert_attributes(bt_wf *wf, json_t *attrs)
{
    char why[300];
    bool fresh;
    struct bt_entry *e;

    if (!valid(attrs, why, sizeof(why))) {
        json_decref(attrs);
        bt_fail(wf, "InvalidSearchAttributes", "%s", why);
        return;
    }
    e = bt_replay_take(wf, BT_ENTRY_ATTRIBUTES, "attributes", &fresh);
    if (e && fresh) {
        e->value = json_incref(attrs);
        e->state = BT_ST_DONE;
        e->dirty = true;
        bt_replay_record(bt_replay_instance(wf), bt_replay_environment(wf),
                         "{s:s, s:I, s:O}", "ev", "attributes_upserted", "seq",
                         (json_int_t)bt_replay_seq(wf, e), "attributes", attrs);
    }
    json_decref(attrs);
}

void bt_attributes_merge(struct bt_instance *inst, size_t from)
{
    for (size_t i = from; i < inst->n_entries; i++) {
        const struct bt_entry *e = &inst->entries[i];
        const char *k;
        json_t *v;

        if (e->kind != BT_ENTRY_ATTRIBUTES || !json_is_object(e->value))
            continue;
        if (!inst->attrs)
            inst->attrs = json_object();
        json_object_foreach(e->value, k, v)
        {
            if (json_is_null(v))
                json_object_del(inst->attrs, k);
            else
                json_object_set(inst->attrs, k, v);
        }
        inst->delta.attrs_changed = true;
    }
}
