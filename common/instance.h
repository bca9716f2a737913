/* The state of one workflow instance as the engine sees it: its meta fields
 * and its journal (one entry per step seq), plus the delta of one decision
 * that has not been committed to Redis yet. Loaded from and committed to Redis
 * by store.c; changed by replay.c. Not thread safe: one instance is advanced
 * by one thread at a time (its Kafka partition's). */
#ifndef BT_INSTANCE_H
#define BT_INSTANCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

enum bt_entry_kind {
    BT_ENTRY_ACTIVITY = 'a',
    BT_ENTRY_CHILD = 'c',
    BT_ENTRY_TIMER = 't',
    BT_ENTRY_SIGNAL = 's',
    BT_ENTRY_SIDE_EFFECT = 'x',
    BT_ENTRY_PATCH = 'p',
    BT_ENTRY_ATTRIBUTES = 'u', /* search attributes set (value: the object) */
};

enum bt_entry_state {
    BT_ST_WAITING,        /* dispatched / timer set / waiting for the signal */
    BT_ST_ATTEMPT_FAILED, /* activity attempt failed; replay decides retry or fail */
    BT_ST_BACKOFF,        /* activity waits for its retry timer */
    BT_ST_REDISPATCH,     /* retry timer fired: replay dispatches the next attempt */
    BT_ST_DONE,           /* finished with value (signal: NULL value = timed out) */
    BT_ST_FAILED,         /* failed for good, error set */
};

struct bt_entry {
    char kind;     /* enum bt_entry_kind */
    uint8_t state; /* enum bt_entry_state */
    bool dirty;    /* changed since the last commit */
    int attempt;   /* activity: current attempt (the retry counter) */
    int throttles; /* activity: throttled attempts not counted */
    char *name;    /* activity / workflow type / signal name / side effect */
    json_t *value; /* result, signal payload, side-effect value; owned */
    json_t *error; /* {"type","message",...} when failed; owned */
    int64_t due;   /* ms: timer due time, retry time, or attempt deadline */
};

enum bt_status {
    BT_STATUS_NONE, /* not started */
    BT_STATUS_RUNNING,
    BT_STATUS_COMPLETED,
    BT_STATUS_FAILED,
    BT_STATUS_CANCELLED,
    BT_STATUS_TERMINATED,
    BT_STATUS_BLOCKED,
    BT_STATUS_PAUSED, /* by an operator: no step, timers stopped (control.c) */
};
const char *bt_status_name(enum bt_status s);
/* Returns the status named s, or -1. */
int bt_status_parse(const char *s);
static inline bool bt_status_final(enum bt_status s)
{
    return s == BT_STATUS_COMPLETED || s == BT_STATUS_FAILED ||
           s == BT_STATUS_CANCELLED || s == BT_STATUS_TERMINATED;
}

/* One message to produce once the decision is committed (the outbox). */
struct bt_command {
    char *field;   /* outbox field: unique per command of the instance */
    char *topic;   /* topic suffix: "events[.<queue>]", "results", "tasks.<queue>" */
    char *key;     /* message key: the target instance id */
    char *payload; /* encoded message */
    size_t len;
    bool eager_ok; /* a task that may run on the deciding worker (no rate or
                    * concurrency key: nothing to wait for there) */
    bool local;    /* handed to this worker's activity role, not to Kafka; in
                    * the outbox under a held field (bt_command_hold) */
    /* a task's timeout timer (its index in the delta's timers_add, + 1; 0:
     * none) and the due it takes if the task starts at once (eager): its
     * start-to-close alone, without the wait for a worker */
    size_t start_timer;
    int64_t start_due;
};

/* The outbox field of an attempt's task, "t|<seq>|<attempt>" (malloc'ed;
 * NULL when out of memory). */
char *bt_task_field(int64_t seq, int attempt);

/* An eager task's outbox field is its field followed by "|@<worker>": held
 * by that worker's activity role. A worker loading the instance leaves it
 * alone; the outbox sweep sends it to Kafka once the worker is gone, and the
 * worker forgets it once the task's outcome is committed. */
#define BT_HELD_MARK "|@"
/* Makes field (malloc'ed, replaced) the held field of worker. 0 or BT_ENOMEM. */
int bt_command_hold(char **field, const char *worker);
/* The worker holding field, or NULL when it is not held. */
const char *bt_command_holder(const char *field);

/* An empty command; bt_command_release frees what a command holds (not the
 * command itself) and leaves it empty, so releasing twice is harmless. */
void bt_command_init(struct bt_command *c);
void bt_command_release(struct bt_command *c);

struct bt_timer {
    char *member; /* "<kind>|<seq>|<attempt>|<id>" in the timers set */
    int64_t due;  /* ms since epoch; unused for removals */
};

/* What one decision changed, committed in one Lua call (store.c). */
struct bt_delta {
    struct bt_command *cmds;
    size_t n_cmds, cap_cmds;
    struct bt_timer *timers_add;
    size_t n_timers_add, cap_timers_add;
    struct bt_timer *timers_del;
    size_t n_timers_del, cap_timers_del;
    char **history; /* JSON records for the audit history (history.h) */
    size_t n_history, cap_history;
    bool meta_dirty; /* status, result, signals, flags changed */
    /* continue-as-new: the journal restarts; the history records before
     * reset_history (of the run that ended) go to the old run's list, which
     * is then archived, the later ones start the new run's */
    bool reset;
    size_t reset_history;
    enum bt_status old_status; /* status at the last commit (for the indexes) */
    bool pause_changed;        /* paused_at changed: written (or cleared) */
    bool attrs_changed;        /* attrs changed: written */
    /* the topic of a command whose message breaks its schema (a queue name
     * from the code that names no topic): not in cmds, and the decision
     * fails the instance (replay_run.c) */
    char *uncarried;
};

struct bt_instance {
    char *id;
    char *type;
    json_t *input;
    enum bt_status status;
    int64_t ver;     /* commits so far: the optimistic-concurrency guard */
    int64_t created; /* ms */
    char *queue;     /* workflow queue: NULL for "default" */
    char *parent_id; /* NULL: top level */
    int64_t parent_seq;
    char *parent_queue; /* NULL for "default" */
    int run;            /* 1, then +1 at each continue-as-new */
    int64_t base;       /* seq of entries[0]: seqs never repeat across runs */
    int64_t hlen;       /* history records of this run in Redis */
    bool cancel_requested;
    /* the worker's (not stored with the instance): times its workflow code
     * crashed a worker (fatal.h), the last one said, and whether a $unblock
     * was applied in this batch */
    int crashes;
    char *crash_last;
    bool unblock_asked;
    int64_t paused_at; /* ms: when it was paused (status paused), else 0 */
    json_t *attrs;     /* search attributes (bt_upsert_attributes), or NULL */
    json_t *result;    /* when completed */
    json_t *error;     /* when failed / blocked: {"type","message"} */
    json_t *signals;   /* buffered signals: [[name, payload], ...] */
    /* where the last applied event was read: "<cluster>/<topic>/<partition>"
     * and its offset; a redelivered event at or below it (and no newer) is a
     * duplicate */
    char *kpos;
    int64_t koff;
    int64_t kts; /* its Kafka timestamp (ms) */
    /* Redis holds kpos, koff and kts as they are: a commit writes only what
     * changed (kpos seldom does: an instance's events share a partition) */
    bool kpos_stored, koff_stored;
    struct bt_entry *entries;
    size_t n_entries, cap_entries;
    size_t n_committed; /* entries[0..n_committed) are in Redis */
    struct bt_delta delta;
    uint64_t mark; /* scratch for the worker: the batch that last touched it */
};

/* New empty instance for id (copied). Caller frees with bt_instance_destroy. */
struct bt_instance *bt_instance_new(const char *id);
void bt_instance_destroy(struct bt_instance *inst);

/* Appends a zeroed entry; returns it, or NULL when out of memory. name copied. */
struct bt_entry *bt_instance_append(struct bt_instance *inst, char kind,
                                    const char *name);

/* Entry <-> its JSON text in the journal hash. encode: new malloc'd string.
 * decode: 0 or BT_EINVALMSG (a corrupt entry: never trusted blindly). */
char *bt_entry_encode(const struct bt_entry *e);
int bt_entry_decode(struct bt_entry *e, const char *text, size_t len);
void bt_entry_release(struct bt_entry *e);

/* Delta bookkeeping. All strings are taken (stolen) even on error; return 0
 * or BT_ENOMEM. */
int bt_delta_command(struct bt_delta *d, char *field, char *topic, char *key,
                     char *payload, size_t len);
int bt_delta_timer(struct bt_delta *d, bool add, char *member, int64_t due);
int bt_delta_history(struct bt_delta *d, char *record);
/* An empty delta (embedded in an instance: bt_instance_new does it);
 * bt_delta_release frees everything it holds, its arrays too. */
void bt_delta_init(struct bt_delta *d);
void bt_delta_release(struct bt_delta *d);
/* Frees and forgets everything in d, keeping its arrays for the next
 * decision. */
void bt_delta_reset(struct bt_delta *d);
/* True when the instance has something to commit. */
bool bt_instance_dirty(const struct bt_instance *inst);
/* History records of the current run once the delta is committed. */
int64_t bt_instance_history_after(const struct bt_instance *inst);
/* The delta is committed as version ver: the entries are clean, the timers
 * and history records of the delta freed (its commands stay: the caller
 * sends them). */
void bt_instance_committed(struct bt_instance *inst, int64_t ver);

/* Topic suffix of the events of workflow queue q (NULL or "default":
 * "events", else "events.<q>"): new malloc'd string. */
char *bt_events_suffix(const char *queue);

/* "<kind>|<seq>|<attempt>|<id>": new malloc'd string. */
char *bt_timer_member(const char *kind, int64_t seq, int attempt, const char *id);
/* The timer event of a member (the inverse): fills msg's type, kind (copied
 * into kind[kind_n]), seq, attempt and id (pointing into member). Returns 0
 * or BT_EINVALMSG. */
struct bt_msg;
int bt_timer_parse(const char *member, struct bt_msg *msg, char *kind, size_t kind_n);

#endif
