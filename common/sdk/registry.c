/* The registry of workflow and activity functions, and plugin loading. */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "err.h"
#include "registry.h"

bt_registry *bt_registry_new(void)
{
    return calloc(1, sizeof(bt_registry));
}

void bt_registry_destroy(bt_registry *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n_workflows; i++)
        free(r->workflows[i].type);
    for (size_t i = 0; i < r->n_activities; i++) {
        struct bt_activity_def *a = &r->activities[i];
        free(a->name);
        free((char *)(uintptr_t)a->defaults.queue);
        free((char *)(uintptr_t)a->defaults.rate_key);
        free((char *)(uintptr_t)a->defaults.concurrency_key);
        for (char **p = a->non_retryable; p && *p; p++)
            free(*p);
        free(a->non_retryable);
    }
    free(r->workflows);
    free(r->activities);
    free(r);
}

static bool valid_name(const char *s)
{
    size_t n = s ? strlen(s) : 0;

    if (n == 0 || n > 256)
        return false;
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == '|')
            return false;
    return true;
}

int bt_register_workflow(bt_registry *r, const char *type, bt_workflow_fn fn)
{
    struct bt_workflow_def *grown;

    if (!valid_name(type) || !fn || bt_registry_workflow(r, type))
        return -1;
    grown = realloc(r->workflows, (r->n_workflows + 1) * sizeof(*grown));
    if (!grown)
        return -1;
    r->workflows = grown;
    grown[r->n_workflows] = (struct bt_workflow_def){strdup(type), fn};
    if (!grown[r->n_workflows].type)
        return -1;
    r->n_workflows++;
    return 0;
}

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

int bt_register_activity(bt_registry *r, const char *name, bt_activity_fn fn,
                         const struct bt_step_opts *defaults)
{
    struct bt_activity_def *grown, *a;
    size_t n = 0;

    if (!valid_name(name) || !fn || bt_registry_activity(r, name))
        return -1;
    /* a queue names Kafka topics (codec.h) */
    if (defaults && defaults->queue &&
        !bt_codec_queue_ok(defaults->queue, strlen(defaults->queue), BT_QUEUE_MAX))
        return -1;
    grown = realloc(r->activities, (r->n_activities + 1) * sizeof(*grown));
    if (!grown)
        return -1;
    r->activities = grown;
    a = &grown[r->n_activities];
    memset(a, 0, sizeof(*a));
    if (defaults)
        a->defaults = *defaults;
    a->name = strdup(name);
    a->fn = fn;
    a->defaults.queue = dup_or_null(defaults ? defaults->queue : NULL);
    a->defaults.rate_key = dup_or_null(defaults ? defaults->rate_key : NULL);
    a->defaults.concurrency_key =
        dup_or_null(defaults ? defaults->concurrency_key : NULL);
    a->defaults.id = NULL;
    if (defaults && defaults->retry.non_retryable) {
        while (defaults->retry.non_retryable[n])
            n++;
        a->non_retryable = calloc(n + 1, sizeof(char *));
        for (size_t i = 0; a->non_retryable && i < n; i++)
            a->non_retryable[i] = strdup(defaults->retry.non_retryable[i]);
    }
    a->defaults.retry.non_retryable = (const char *const *)a->non_retryable;
    r->n_activities++;
    return 0;
}

const struct bt_workflow_def *bt_registry_workflow(const bt_registry *r, const char *type)
{
    for (size_t i = 0; i < r->n_workflows; i++)
        if (!strcmp(r->workflows[i].type, type))
            return &r->workflows[i];
    return NULL;
}

const struct bt_activity_def *bt_registry_activity(const bt_registry *r, const char *name)
{
    for (size_t i = 0; i < r->n_activities; i++)
        if (!strcmp(r->activities[i].name, name))
            return &r->activities[i];
    return NULL;
}

/* A plugin compiled against another baton.h may lay out bt_step_opts
 * differently or call functions that changed meaning: refuse it before
 * running any of its code. */
static int check_abi(void *handle, const char *path, char *errstr, size_t errstr_size)
{
    const int *abi = dlsym(handle, "baton_abi_version");

    if (!abi) {
        snprintf(errstr, errstr_size,
                 "plugin %s does not export baton_abi_version: rebuild it against "
                 "baton.h of baton %s (ABI %d)",
                 path, BATON_VERSION, BATON_ABI_VERSION);
        return BT_EINVAL;
    }
    if (*abi != BATON_ABI_VERSION) {
        snprintf(errstr, errstr_size,
                 "plugin %s was built for baton ABI %d, this is baton %s (ABI %d): "
                 "rebuild it against this baton.h",
                 path, *abi, BATON_VERSION, BATON_ABI_VERSION);
        return BT_EINVAL;
    }
    return 0;
}

int bt_registry_load(bt_registry *r, const char *path, char *errstr, size_t errstr_size)
{
    int (*reg)(bt_registry *) = NULL;
    void *handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    int ret = BT_EINVAL;

    if (!handle) {
        snprintf(errstr, errstr_size, "cannot load plugin %s: %s", path, dlerror());
        return BT_EINVAL;
    }
    if (check_abi(handle, path, errstr, errstr_size))
        goto out;
    /* POSIX: the object pointer returned by dlsym converts to a function pointer */
    *(void **)(&reg) = dlsym(handle, "baton_register");
    if (!reg) {
        snprintf(errstr, errstr_size, "plugin %s does not export baton_register", path);
        goto out;
    }
    if (reg(r) != 0) {
        snprintf(errstr, errstr_size,
                 "plugin %s: baton_register failed (a name registered twice or invalid?)",
                 path);
        goto out;
    }
    ret = 0;
out:
    /* once baton_register ran, the registry may point into the plugin */
    if (ret && !reg)
        dlclose(handle);
    return ret;
}
