/* Workflows and activities by name, filled by plugins' baton_register() and
 * read by the engine. Filled once at start-up, read-only afterwards, so reads
 * need no lock. */
#ifndef BT_REGISTRY_H
#define BT_REGISTRY_H

#include "baton.h"

struct bt_activity_def {
    char *name;
    bt_activity_fn fn;
    struct bt_step_opts defaults; /* strings owned */
    char **non_retryable;         /* owned copy behind defaults.retry */
};

struct bt_workflow_def {
    char *type;
    bt_workflow_fn fn;
};

struct bt_registry {
    struct bt_workflow_def *workflows;
    size_t n_workflows;
    struct bt_activity_def *activities;
    size_t n_activities;
};

/* Returns a new empty registry (bt_registry_destroy), or NULL. */
bt_registry *bt_registry_new(void);
void bt_registry_destroy(bt_registry *r);

/* Loads a plugin: dlopen(path), checks that its baton_abi_version is this
 * baton's BATON_ABI_VERSION, and calls its baton_register(r). Returns 0, or
 * BT_EINVAL with errstr saying what failed (dlerror text, another ABI, a
 * missing symbol, refused registration). A plugin whose baton_register ran
 * stays loaded for the process lifetime. */
int bt_registry_load(bt_registry *r, const char *path, char *errstr, size_t errstr_size);

/* Borrowed definitions, or NULL when unknown. */
const struct bt_workflow_def *bt_registry_workflow(const bt_registry *r,
                                                   const char *type);
const struct bt_activity_def *bt_registry_activity(const bt_registry *r,
                                                   const char *name);

#endif
