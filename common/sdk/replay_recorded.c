/* What the workflow SDK records in the journal without commanding anything
 * (baton.h): side effects (bt_now, bt_random, bt_uuid: computed on the first
 * execution, read back by every replay, so the code sees the same value)
 * and patch markers (bt_patched, bt_retire_patch: how changed code tells
 * the instances it started from those started before the change). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "baton.h"
#include "replay_int.h"

/* A recorded value: the first execution computes it, replays read it back. */
static const json_t *side_effect(bt_wf *wf, const char *name, json_t *(*make)(void))
{
    bool fresh;
    struct bt_entry *e = bt_replay_take(wf, BT_ENTRY_SIDE_EFFECT, name, &fresh);

    if (!e)
        return NULL;
    if (fresh) {
        e->value = make();
        e->state = BT_ST_DONE;
        /* in the audit log too: once the instance completes its journal goes */
        bt_replay_record(wf->inst, wf->env, "{s:s, s:I, s:s, s:O}", "ev", "side_effect",
                         "seq", (json_int_t)bt_replay_seq(wf, e), "name", name, "value",
                         e->value);
    }
    return e->value;
}

static json_t *make_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return json_integer((json_int_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
}

static uint64_t random64(void)
{
    uint64_t x = 0;
    FILE *f = fopen("/dev/urandom", "rb");

    if (!f || fread(&x, sizeof(x), 1, f) != 1) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        x = (uint64_t)ts.tv_nsec * 6364136223846793005ULL ^ (uint64_t)rand();
    }
    if (f)
        fclose(f);
    return x;
}

static json_t *make_random(void)
{
    char hex[17];

    /* as hex text: JSON integers are signed 64-bit in jansson */
    snprintf(hex, sizeof(hex), "%016llx", (unsigned long long)random64());
    return json_string(hex);
}

static json_t *make_uuid(void)
{
    uint64_t hi = random64(), lo = random64();
    char s[37];

    hi = (hi & ~0xf000ULL) | 0x4000ULL;                 /* version 4 */
    lo = (lo & ~(0xc000ULL << 48)) | (0x8000ULL << 48); /* variant 10 */
    snprintf(s, sizeof(s), "%08llx-%04llx-%04llx-%04llx-%012llx",
             (unsigned long long)(hi >> 32), (unsigned long long)((hi >> 16) & 0xffff),
             (unsigned long long)(hi & 0xffff), (unsigned long long)(lo >> 48),
             (unsigned long long)(lo & 0xffffffffffffULL));
    return json_string(s);
}

int64_t bt_now(bt_wf *wf)
{
    return json_integer_value(side_effect(wf, "now", make_now));
}

uint64_t bt_random(bt_wf *wf)
{
    const char *hex = json_string_value(side_effect(wf, "random", make_random));

    return hex ? strtoull(hex, NULL, 16) : 0;
}

const char *bt_uuid(bt_wf *wf)
{
    const char *s = json_string_value(side_effect(wf, "uuid", make_uuid));

    return s ? s : "00000000-0000-0000-0000-000000000000";
}

bool bt_patched(bt_wf *wf, const char *patch_id)
{
    struct bt_instance *inst = wf->inst;
    bool fresh;

    if (wf->nondet || wf->finished)
        return false;
    if (wf->cursor < inst->n_entries) {
        /* history made before the patch has no marker here: take the old path */
        const struct bt_entry *e = &inst->entries[wf->cursor];
        if (e->kind != BT_ENTRY_PATCH || strcmp(e->name, patch_id))
            return false;
    }
    if (bt_replay_take(wf, BT_ENTRY_PATCH, patch_id, &fresh) && fresh)
        inst->entries[wf->cursor - 1].state = BT_ST_DONE;
    return true;
}

void bt_retire_patch(bt_wf *wf, const char *patch_id)
{
    struct bt_instance *inst = wf->inst;
    const struct bt_entry *e;

    if (wf->nondet || wf->finished || wf->cursor >= inst->n_entries)
        return;
    e = &inst->entries[wf->cursor];
    if (e->kind == BT_ENTRY_PATCH && !strcmp(e->name, patch_id))
        wf->cursor++; /* history made while the patch was live: step over its marker */
}
