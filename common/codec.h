/* The message codec: bytes on a baton topic <-> struct bt_msg. Every message is
 * a JSON object {"v":1,"type":"...",...} described by a schema in schemas/;
 * decoding checks it field by field and rejects anything else with an error
 * that names the field and the reason ("seq: expected a non-negative integer").
 * Thread safe (no shared state). */
#ifndef BT_CODEC_H
#define BT_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#define BT_SCHEMA_VERSION 1
#define BT_ID_MAX         256 /* longest workflow id, signal or step name */
/* A queue names Kafka topics, <prefix>.events.<queue> and
 * <prefix>.tasks.<queue>: 1 to BT_QUEUE_MAX of the characters a topic name
 * allows, so that with a prefix of up to BT_PREFIX_MAX (the same rule) the
 * names stay within Kafka's 249. */
#define BT_QUEUE_MAX  200
#define BT_PREFIX_MAX 40
#define BT_QUEUE_RULE "1 to 200 letters, digits, '.', '_' or '-'"
/* why, for an error message: "queue \"x\": a queue " BT_QUEUE_WHY */
#define BT_QUEUE_WHY                                                                     \
    "names Kafka topics (<prefix>.events.<queue>, <prefix>.tasks.<queue>), so it "       \
    "is " BT_QUEUE_RULE

/* Whether the len bytes at s are 1 to max letters, digits, '.', '_' or '-':
 * a queue name (max BT_QUEUE_MAX) or a topic prefix (BT_PREFIX_MAX). */
bool bt_codec_queue_ok(const char *s, size_t len, size_t max);

enum bt_msg_type {
    BT_MSG_START,           /* baton.events: start an instance */
    BT_MSG_SIGNAL,          /* baton.events: named signal with payload */
    BT_MSG_CANCEL,          /* baton.events: cancel (or terminate) an instance */
    BT_MSG_COMPLETED,       /* baton.events: activity attempt succeeded */
    BT_MSG_FAILED,          /* baton.events: activity attempt failed */
    BT_MSG_TIMER,           /* baton.events: a timer fired */
    BT_MSG_CHILD_COMPLETED, /* baton.events: a child workflow completed */
    BT_MSG_CHILD_FAILED,    /* baton.events: a child workflow failed */
    BT_MSG_PAUSE,           /* baton.events: an operator pauses an instance */
    BT_MSG_RESUME,          /* baton.events: an operator resumes a paused one */
    BT_MSG_RESET,           /* baton.events: a new run from a point of the journal */
    BT_MSG_TASK,            /* baton.tasks.<queue>: run an activity attempt */
    BT_MSG_RESULT,          /* baton.results: final outcome of an instance */
    BT_MSG_DEAD_LETTER,     /* baton.dlq: a message that could not be processed */
    BT_MSG__COUNT
};

/* Wire name of a type ("start", "child_completed", "dead_letter"); static, or
 * NULL for a value outside the enum. */
const char *bt_msg_type_name(enum bt_msg_type type);

struct bt_msg_error {
    char *type;             /* error type, e.g. "CarrierDown"; required */
    char *message;          /* human text; required (may be empty) */
    bool retryable;         /* failed only; default true */
    int64_t retry_after_ms; /* failed only: downstream said "throttled"; 0 = no */
};

/* Which fields a type uses is in the comment on each; unused ones are NULL/0
 * (the encoder ignores them). All strings and JSON values are owned by the
 * message; its strings come from jansson's allocator (json_set_alloc_funcs,
 * malloc by default), like body, so one allocator owns the whole message. */
struct bt_msg {
    enum bt_msg_type type;
    char *id;           /* instance id: every type but dead_letter */
    int64_t ts;         /* producer's wall clock, ms; optional everywhere (0) */
    char *workflow;     /* start, result: workflow type */
    char *name;         /* signal: signal name; task: activity name */
    char *queue;        /* task: task queue; start: the workflow's queue (NULL:
                         * "default"), whose events topic serves it */
    char *wf_queue;     /* task: the instance's workflow queue, where its
                         * completion goes (NULL: "default") */
    char *rate_key;     /* task: rate-limit key of the step, or NULL */
    char *kind;         /* timer: sleep|retry|timeout|signal_timeout|workflow_timeout */
    char *child;        /* child_completed, child_failed: the child's id */
    char *status;       /* result: completed|failed|cancelled|terminated */
    char *parent_id;    /* start: the parent instance (child workflows), or NULL */
    char *parent_queue; /* start: the parent's workflow queue (NULL: "default") */
    char *on_parent_close; /* start: cancel|terminate|abandon, when parent_id set */
    int64_t seq;           /* task, completed, failed, timer, child_*: step seq;
                            * start: parent's seq when parent_id is set;
                            * reset: the first step the new run does again
                            * (-1: not given) */
    int attempt;           /* task, completed, failed: >= 1; timer: >= 0 */
    int64_t deadline;      /* task: start-to-close deadline, ms since epoch (0: none) */
    int64_t due;           /* timer: when it was due, ms since epoch (0: not said) */
    int64_t timeout_ms;    /* start: whole-workflow execution timeout (0: none) */
    int64_t replaces_run;  /* start: the finished run of an existing instance that
                            * this start follows with a new run (0: a new instance) */
    bool terminate;        /* cancel: stop at once, no cleanup steps */
    bool last_failure;     /* reset: to the last failed step (seq is then -1) */
    char *by;              /* signal, cancel, pause, resume, reset: who sent it */
    json_t *body;          /* start: input; signal: payload; task: input; completed,
                            * child_completed, result(completed): result; cancel, pause,
                            * resume, reset: reason.
                            * May be NULL (absent) */
    struct bt_msg_error error; /* failed, child_failed, result(not completed) */
    /* dead_letter only */
    char *reason;       /* why it could not be processed */
    char *origin_topic; /* where it was read */
    int32_t origin_partition;
    int64_t origin_offset;
    char *key; /* original key when valid UTF-8, else base64; or NULL */
    bool key_base64;
    char *payload; /* original bytes when valid UTF-8 (else base64, see below) */
    bool payload_base64;
    int64_t payload_size; /* set when payload holds only a prefix: the size of
                           * the original (0: payload is whole) */
    /* task: concurrency-limit key of the step, or NULL */
    char *concurrency_key;
};

/* Decodes len bytes of buf into msg (which is zeroed first). Bytes beyond
 * max_payload are refused before parsing. Returns 0; BT_ETOOBIG or BT_EINVALMSG
 * with errstr naming the field and the reason (msg is then released), or
 * BT_ENOMEM (not the message's fault: retry, do not dead-letter it). On
 * success release msg with bt_msg_release(). */
int bt_codec_decode(const void *buf, size_t len, size_t max_payload, struct bt_msg *msg,
                    char *errstr, size_t errstr_size);

/* Encodes msg as compact JSON, fields in the order of its schema. Returns a new
 * malloc'd buffer (caller frees with free()), NUL-terminated, and its length
 * (without the NUL) in *len; or NULL when msg is incomplete or breaks its
 * schema (a required field is NULL, attempt 0, an unknown timer kind...: a bug
 * in the caller) or out of memory. A dead_letter payload or key that is not
 * valid UTF-8 is written as base64. */
char *bt_codec_encode(const struct bt_msg *msg, size_t *len);

/* Fills msg (zeroed first) as a BT_MSG_DEAD_LETTER for a message read at
 * topic/partition/offset (-1: unknown) that could not be processed because of
 * reason. key (keylen bytes, NULL: no key) and payload (len bytes) are copied,
 * as text when they are valid UTF-8 without NUL bytes, else as base64. The
 * caller may set msg->ts. Returns 0, BT_EINVAL when reason or topic is NULL or
 * not UTF-8 text, or BT_ENOMEM (msg is then released). */
int bt_codec_dead_letter(struct bt_msg *msg, const char *reason, const char *topic,
                         int32_t partition, int64_t offset, const void *key,
                         size_t keylen, const void *payload, size_t len);

/* Encodes dead letter dl (from bt_codec_dead_letter) in at most max bytes, as
 * bt_codec_encode does: when the whole original payload does not fit, only
 * its beginning is kept, and dl->payload_size says how large it was (the
 * original is still at its origin). Returns a new buffer or NULL. */
char *bt_codec_encode_dead_letter(struct bt_msg *dl, size_t max, size_t *len);

/* Frees what msg owns; msg may be zeroed or NULL. */
void bt_msg_release(struct bt_msg *msg);

#endif
