/* baton's workflow SDK: the one header a plugin includes.
 *
 * A workflow is a C function that baton re-runs from its first line every
 * time something happens to one of its instances (deterministic replay). Each
 * call below consumes the next entry (seq) of the instance's journal: where the
 * journal already holds the result, the call returns it at once; where it does
 * not, baton records a command and the call reports BT_PENDING, and the
 * workflow returns BT_PENDING to wait. Workflow code must do no I/O and read no
 * clock or random source except through bt_now() / bt_random() / bt_uuid().
 *
 * An activity is a plain C function that does the real work (HTTP calls,
 * database writes); it runs at least once per step, on any worker serving its
 * task queue, and may run again after a crash or timeout: use
 * bt_act_idempotency_key() toward the downstream.
 *
 * Ownership (jansson's reference counts): a json_t * passed to a function
 * marked "stolen" belongs to baton afterwards, even on error; results handed
 * to workflow code are borrowed and valid until the workflow function
 * returns; an activity's *result is a new reference that baton takes. */
#ifndef BATON_H
#define BATON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The version of this header and of the libbaton it comes with. */
#define BATON_VERSION_MAJOR 0
#define BATON_VERSION_MINOR 1
#define BATON_VERSION_PATCH 0
#define BATON_VERSION       "0.1.0"
/* Grows with every change that breaks plugins built against an older baton.h
 * (a struct's layout, a function's signature or meaning); libbaton's soname
 * carries it (libbaton.so.<abi>). */
#define BATON_ABI_VERSION 1

typedef struct bt_wf bt_wf;             /* one replay of one instance */
typedef struct bt_act bt_act;           /* one attempt of one activity */
typedef struct bt_future bt_future;     /* a step started, not yet awaited */
typedef struct bt_registry bt_registry; /* what a plugin registers into */

typedef enum {
    BT_READY,   /* the step's result is there (or the workflow is finished) */
    BT_PENDING, /* waiting for an event: return BT_PENDING from the workflow */
    BT_FAILED   /* the step failed for good (or the workflow failed) */
} bt_poll;

#define BT_SECONDS(n) ((int64_t)(n)*1000)
#define BT_MINUTES(n) ((int64_t)(n)*60000)
#define BT_HOURS(n)   ((int64_t)(n)*3600000)
#define BT_DAYS(n)    ((int64_t)(n)*86400000)

/* Retry policy of an activity. Zero fields take the defaults in brackets. */
struct bt_retry {
    int max_attempts;                 /* [3]; 1 = no retry */
    int64_t initial_ms;               /* first backoff [1000] */
    double coefficient;               /* growth per attempt [2.0] */
    int64_t max_ms;                   /* cap on one backoff [100 x initial] */
    double jitter;                    /* +- fraction of each backoff, 0..1 [0] */
    const char *const *non_retryable; /* NULL-terminated error types, or NULL */
};

/* What happens to a running child workflow when its parent finishes (or is
 * cancelled) first. */
enum bt_parent_close {
    BT_PARENT_CLOSE_CANCEL,    /* the child is cancelled: its code may clean up */
    BT_PARENT_CLOSE_TERMINATE, /* the child is stopped at once */
    BT_PARENT_CLOSE_ABANDON,   /* the child runs on; its outcome is ignored */
};

/* Options of one activity call; NULL or zero fields take the activity's
 * registered defaults, then the worker's. Strings are copied. */
struct bt_step_opts {
    const char *queue; /* task queue ["default"]; for a child workflow, the
                        * queue whose workers run it (they may load another
                        * team's plugin) */
    struct bt_retry retry;
    int64_t start_to_close_ms; /* one attempt's timeout [worker setting] */
    const char *rate_key;      /* shared rate-limit key, or NULL: steps with the same
                                * key share one token bucket across all workers;
                                * may be built from the input ("carrier:att") */
    double rate;               /* registration only: the key's default tokens per
                                * second when its bucket does not exist yet
                                * [0: no limit]; Redis holds the live value */
    int burst;                 /* registration only: the bucket's default size [1] */
    const char *id;            /* child workflows: explicit child id */
    enum bt_parent_close on_parent_close; /* child workflows [cancel] */
    /* shared concurrency-limit key, or NULL: at most the key's limit of steps
     * with the same key run at once across all workers; may be built from the
     * input ("carrier:att") */
    const char *concurrency_key;
    /* registration only: the key's default limit when Redis holds none yet
     * [0: no limit]; Redis holds the live value (`baton concurrency set`) */
    int concurrency;
};

typedef bt_poll (*bt_workflow_fn)(bt_wf *wf, const json_t *input);
/* Returns 0 with *result set (a new reference, or NULL for null), or the
 * value of bt_act_fail() / bt_act_throttled(). */
typedef int (*bt_activity_fn)(bt_act *act, const json_t *input, json_t **result);

/* ---- the plugin: a shared object (linked with libbaton: `pkg-config --libs
 * baton` or CMake's baton::baton) that defines baton_register(), called once
 * when a program loads it, to register its workflows and activities; return
 * 0, or -1 to refuse to load. */
#define BATON_EXPORT __attribute__((visibility("default")))
BATON_EXPORT int baton_register(bt_registry *r);

/* The ABI the plugin was compiled against, defined here for it (weak, so every
 * file of a plugin may include this header): a program refuses to load a
 * plugin whose baton_abi_version differs from its own BATON_ABI_VERSION.
 * BATON_NO_ABI_SYMBOL is for libbaton and the programs themselves. */
#ifndef BATON_NO_ABI_SYMBOL
BATON_EXPORT extern const int baton_abi_version;
#ifdef __cplusplus
extern
#endif
    BATON_EXPORT __attribute__((weak)) const int baton_abi_version = BATON_ABI_VERSION;
#endif

/* ---- registration, from baton_register(). Names are copied. Return 0, or -1
 * when the name is taken or invalid, or an activity's default queue is no
 * queue name (1 to 200 letters, digits, '.', '_' or '-': it names topics). */
int bt_register_workflow(bt_registry *r, const char *type, bt_workflow_fn fn);
int bt_register_activity(bt_registry *r, const char *name, bt_activity_fn fn,
                         const struct bt_step_opts *defaults);

/* ---- workflow side ---- */

/* Starts activity `name` with input (stolen; NULL means null). Returns a
 * future owned by wf (valid until the workflow function returns); never NULL. */
bt_future *bt_start(bt_wf *wf, const char *name, json_t *input,
                    const struct bt_step_opts *opts);
/* Starts a child workflow of `type` (another plugin, another task queue).
 * Its id is opts->id, or "<parent id>/<seq>" (deterministic). */
bt_future *bt_start_child(bt_wf *wf, const char *type, json_t *input,
                          const struct bt_step_opts *opts);
/* BT_READY with *result (borrowed; may be NULL), BT_FAILED with *error
 * (borrowed {"type","message"}), or BT_PENDING. result/error may be NULL. */
bt_poll bt_await(bt_wf *wf, bt_future *f, const json_t **result, const json_t **error);
/* BT_READY when all are ready, BT_FAILED as soon as one failed for good. */
bt_poll bt_await_all(bt_wf *wf, bt_future *const *fs, size_t n);
/* BT_READY (or BT_FAILED) as soon as one is done; *which says which. */
bt_poll bt_await_any(bt_wf *wf, bt_future *const *fs, size_t n, size_t *which);

/* Durable sleep: survives restarts of every process. BT_FAILED when the
 * instance was cancelled meanwhile. */
bt_poll bt_sleep(bt_wf *wf, int64_t ms);
/* Waits for the next signal `name` (signals that came earlier are buffered,
 * in order). timeout_ms < 0: no timeout. BT_READY with *payload borrowed, or
 * with *payload == NULL when the timeout came first; BT_FAILED when the
 * instance was cancelled meanwhile. */
bt_poll bt_wait_signal(bt_wf *wf, const char *name, int64_t timeout_ms,
                       const json_t **payload);

/* Side effects recorded in the journal: replay sees the same values. */
int64_t bt_now(bt_wf *wf); /* ms since the epoch */
uint64_t bt_random(bt_wf *wf);
/* A random UUID (v4) text; borrowed, valid until the function returns. */
const char *bt_uuid(bt_wf *wf);

/* Versioning: true for executions that reach this point with code that has
 * the patch, false when replaying history made before it. */
bool bt_patched(bt_wf *wf, const char *patch_id);
/* Retiring a patch, once no instance from before it is in flight: replace
 * `if (bt_patched(wf, id)) X;` by `bt_retire_patch(wf, id); X;` (instances
 * that recorded the marker replay over it, new ones record none); delete the
 * call once no instance with the marker is in flight. */
void bt_retire_patch(bt_wf *wf, const char *patch_id);
/* Cancellation (`baton cancel`) fails every step the instance waits on with
 * error type "Cancelled"; steps started afterwards (cleanup) run normally.
 * True once that happened: ask it after an await failed, to tell
 * cancellation from other failures. */
bool bt_cancel_requested(bt_wf *wf);

/* Search attributes: attrs (stolen) is an object whose members are strings,
 * numbers, booleans or null (null removes one); they are merged into the
 * instance's, so that `baton list --query 'brand="acme" AND tier>2'` finds
 * it. Names: letters, digits and _ (up to 64), not status, type, started or
 * id. Recorded in the journal like a step: a replay does not set them again.
 * Anything else fails the instance (InvalidSearchAttributes). */
void bt_upsert_attributes(bt_wf *wf, json_t *attrs);

const char *bt_workflow_id(const bt_wf *wf);

/* Ends this run and starts the instance again, same id, with input (stolen;
 * NULL means null) and an empty journal and history: how a workflow that
 * loops for months keeps its history bounded. Buffered signals, the parent,
 * the execution timeout and the audit log of earlier runs (`baton history
 * --run N`) are kept; steps still running in this run are abandoned (their
 * outcomes are ignored) and its children get their on_parent_close policy.
 * Return its value from the workflow. */
bt_poll bt_continue_as_new(bt_wf *wf, json_t *input);
/* This instance's run: 1, then one more after each continue-as-new. */
int bt_workflow_run(const bt_wf *wf);

/* Finish the instance. bt_complete: result stolen (NULL means null). */
bt_poll bt_complete(bt_wf *wf, json_t *result);
bt_poll bt_fail(bt_wf *wf, const char *error_type, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Sugar: return from the workflow while pending; a step that failed for good
 * fails the workflow with the step's error (like an uncaught exception). Call
 * bt_await() directly to branch on the failure instead. out: const json_t **
 * or NULL. */
#define BT_AWAIT(wf, f, out)                                                             \
    do {                                                                                 \
        const json_t *bt__err = NULL;                                                    \
        bt_poll bt__p = bt_await((wf), (f), (out), &bt__err);                            \
        if (bt__p == BT_PENDING)                                                         \
            return BT_PENDING;                                                           \
        if (bt__p == BT_FAILED)                                                          \
            return bt__fail_with((wf), bt__err);                                         \
    } while (0)
#define BT_RUN(wf, out, name, input, opts)                                               \
    BT_AWAIT((wf), bt_start((wf), (name), (input), (opts)), (out))
#define BT_AWAIT_ALL(wf, fs, n)                                                          \
    do {                                                                                 \
        bt_poll bt__p = bt_await_all((wf), (fs), (n));                                   \
        if (bt__p != BT_READY)                                                           \
            return bt__p == BT_PENDING ? BT_PENDING : bt__fail_with((wf), NULL);         \
    } while (0)
#define BT_SLEEP(wf, ms)                                                                 \
    do {                                                                                 \
        bt_poll bt__p = bt_sleep((wf), (ms));                                            \
        if (bt__p != BT_READY)                                                           \
            return bt__p == BT_PENDING ? BT_PENDING : bt__fail_with((wf), NULL);         \
    } while (0)
#define BT_WAIT_SIGNAL(wf, payload, name, timeout_ms)                                    \
    do {                                                                                 \
        bt_poll bt__p = bt_wait_signal((wf), (name), (timeout_ms), (payload));           \
        if (bt__p != BT_READY)                                                           \
            return bt__p == BT_PENDING ? BT_PENDING : bt__fail_with((wf), NULL);         \
    } while (0)
bt_poll bt__fail_with(bt_wf *wf, const json_t *error);

/* ---- activity side ---- */

/* Fails this attempt. retryable: whether the retry policy may run it again.
 * Returns the value the activity must return. */
int bt_act_fail(bt_act *act, const char *error_type, bool retryable, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* The downstream said "too many requests": retry after retry_after_ms
 * without counting an attempt (bt_act_attempt() still grows by one: it counts
 * dispatches). When the step has a rate key, no worker takes a token for that
 * key meanwhile. Returns the value the activity must return. */
int bt_act_throttled(bt_act *act, int64_t retry_after_ms);
/* Reports progress (details borrowed, may be NULL). Returns 0. */
int bt_act_heartbeat(bt_act *act, const json_t *details);
/* "<workflow id>/<seq>": the same for every attempt of one step. Borrowed. */
const char *bt_act_idempotency_key(const bt_act *act);
const char *bt_act_workflow_id(const bt_act *act);
int64_t bt_act_seq(const bt_act *act);
int bt_act_attempt(const bt_act *act); /* 1, 2, ... */

#ifdef __cplusplus
}
#endif
#endif
