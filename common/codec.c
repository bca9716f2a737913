/* The message codec: one table per message type says which properties it
 * has, their kind and their limits, in the order the encoder writes them
 * (codec_encode.c walks it against the struct and writes JSON itself). The
 * decoder reads text the encoder wrote on a fast path, straight into the
 * struct (codec_quick.c); anything else is parsed by jansson and walked once
 * against the table here, which words every error. This file holds the
 * tables, the rules both directions share, the full decoding path and the
 * building and releasing of messages. schemas/<type>.schema.json say the
 * same thing for other languages; tests/schemas/ holds the cases both obey. */
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "base64.h"
#include "codec_int.h"
#include "err.h"
#include "jsonw.h"

_Static_assert(sizeof(int) == sizeof(int32_t), "attempt is stored as a 32-bit int");

/* One initializer per kind; the tables below read like the schemas. */
/* clang-format off */
#define MEMBER_SIZE(m) sizeof(((struct bt_msg *)0)->m)
#define OFF(m)         offsetof(struct bt_msg, m)
#define F_ID(n, m, fl)  {.name = n, .kind = K_ID, .flags = fl, .off = OFF(m)}
#define F_STR(n, m, fl) {.name = n, .kind = K_STR, .flags = fl, .off = OFF(m)}
#define F_BYTES(n, m, e, fl) \
    {.name = n, .kind = K_BYTES, .flags = fl, .off = OFF(m), .enc_off = OFF(e)}
#define F_ENC(n, m) {.name = n, .kind = K_ENC, .off = OFF(m), .expect = "utf8|base64"}
#define F_ENUM(n, m, fl, v, text) \
    {.name = n, .kind = K_ENUM, .flags = fl, .off = OFF(m), .values = v, .expect = text}
#define F_INT(n, m, fl, lo, hi, d) \
    {.name = n, .kind = K_INT, .flags = fl, .size = MEMBER_SIZE(m), .off = OFF(m), \
     .min = lo, .max = hi, .def = d}
#define F_BOOL(n, m, d) {.name = n, .kind = K_BOOL, .off = OFF(m), .def = d}
#define F_ANY(n, fl)    {.name = n, .kind = K_ANY, .flags = fl, .off = OFF(body)}
#define F_OBJ(n, fl, s) \
    {.name = n, .kind = K_OBJ, .flags = fl, .sub = s, .nsub = sizeof(s) / sizeof(s[0])}
#define F_TS     F_INT("ts", ts, 0, 0, INT64_MAX, 0)
#define F_BY     F_STR("by", by, 0) /* who sent an operator's event, from where */
#define F_SEQ    F_INT("seq", seq, F_REQ, 0, INT64_MAX, 0)
#define F_TRY    F_INT("attempt", attempt, F_REQ, 1, INT_MAX, 0)
#define SHAPE(a) a, sizeof(a) / sizeof(a[0])
/* clang-format on */

static const char *const timer_kinds[] = {
    "sleep", "retry", "timeout", "signal_timeout", "workflow_timeout", NULL};
static const char *const statuses[] = {"completed", "failed", "cancelled", "terminated",
                                       NULL};

static const char *const parent_close_policies[] = {"cancel", "terminate", "abandon",
                                                    NULL};

static const struct field parent_fields[] = {
    F_ID("id", parent_id, F_REQ),
    F_SEQ,
    F_ID("queue", parent_queue, F_QUEUE),
    F_ENUM("on_close", on_parent_close, 0, parent_close_policies,
           "cancel|terminate|abandon"),
};
static const struct field error_fields[] = {
    F_STR("type", error.type, F_REQ | F_NONEMPTY),
    F_STR("message", error.message, F_REQ),
};
static const struct field failure_fields[] = {
    F_STR("type", error.type, F_REQ | F_NONEMPTY),
    F_STR("message", error.message, F_REQ),
    F_BOOL("retryable", error.retryable, true),
    F_INT("retry_after_ms", error.retry_after_ms, 0, 0, INT64_MAX, 0),
};
static const struct field origin_fields[] = {
    F_STR("topic", origin_topic, F_REQ),
    F_INT("partition", origin_partition, F_REQ, -1, INT32_MAX, 0),
    F_INT("offset", origin_offset, F_REQ, -1, INT64_MAX, 0),
};

static const struct field start_fields[] = {
    F_ID("id", id, F_REQ),
    F_ID("workflow", workflow, F_REQ),
    F_ID("queue", queue, F_QUEUE),
    F_ANY("input", 0),
    F_OBJ("parent", 0, parent_fields),
    F_INT("execution_timeout_ms", timeout_ms, 0, 0, INT64_MAX, 0),
    F_INT("replaces_run", replaces_run, 0, 0, INT32_MAX, 0),
    F_TS,
};
static const struct field signal_fields[] = {
    F_ID("id", id, F_REQ), F_ID("name", name, F_REQ), F_ANY("payload", 0), F_BY, F_TS,
};
static const struct field cancel_fields[] = {
    F_ID("id", id, F_REQ),
    F_ANY("reason", 0),
    F_BOOL("terminate", terminate, false),
    F_BY,
    F_TS,
};
/* pause, resume: what an operator says and who they are */
static const struct field control_fields[] = {
    F_ID("id", id, F_REQ),
    F_ANY("reason", 0),
    F_BY,
    F_TS,
};
static const struct field reset_fields[] = {
    F_ID("id", id, F_REQ),
    F_INT("seq", seq, 0, 0, INT64_MAX, -1),
    F_BOOL("last_failure", last_failure, false),
    F_ANY("reason", 0),
    F_BY,
    F_TS,
};
static const struct field completed_fields[] = {
    F_ID("id", id, F_REQ), F_SEQ, F_TRY, F_ID("name", name, 0), F_ANY("result", 0), F_TS,
};
static const struct field failed_fields[] = {
    F_ID("id", id, F_REQ),
    F_SEQ,
    F_TRY,
    F_ID("name", name, 0),
    F_OBJ("error", F_REQ, failure_fields),
    F_TS,
};
static const struct field timer_fields[] = {
    F_ID("id", id, F_REQ),
    F_SEQ,
    F_INT("attempt", attempt, 0, 0, INT_MAX, 0),
    F_ENUM("kind", kind, F_REQ, timer_kinds,
           "sleep|retry|timeout|signal_timeout|workflow_timeout"),
    F_INT("due", due, 0, 0, INT64_MAX, 0),
    F_TS,
};
static const struct field child_completed_fields[] = {
    F_ID("id", id, F_REQ), F_SEQ, F_ID("child", child, F_REQ), F_ANY("result", 0), F_TS,
};
static const struct field child_failed_fields[] = {
    F_ID("id", id, F_REQ),
    F_SEQ,
    F_ID("child", child, F_REQ),
    F_OBJ("error", F_REQ, error_fields),
    F_TS,
};
static const struct field task_fields[] = {
    F_ID("id", id, F_REQ),
    F_SEQ,
    F_TRY,
    F_ID("name", name, F_REQ),
    F_ID("queue", queue, F_REQ | F_QUEUE),
    F_ANY("input", 0),
    F_INT("deadline", deadline, F_REQ, 0, INT64_MAX, 0),
    F_TS,
    F_ID("rate_key", rate_key, 0),
    F_ID("workflow_queue", wf_queue, F_QUEUE),
    F_ID("concurrency_key", concurrency_key, 0),
};
static const struct field result_fields[] = {
    F_ID("id", id, F_REQ),
    F_ID("workflow", workflow, F_REQ),
    F_ENUM("status", status, F_REQ, statuses, "completed|failed|cancelled|terminated"),
    F_ANY("result", F_IF_COMPLETED),
    F_OBJ("error", F_UNLESS_COMPLETED, error_fields),
    F_TS,
};
static const struct field dead_letter_fields[] = {
    F_STR("reason", reason, F_REQ),
    F_OBJ("origin", F_REQ, origin_fields),
    F_BYTES("key", key, key_base64, F_NULLABLE),
    F_ENC("key_encoding", key_base64),
    F_BYTES("payload", payload, payload_base64, F_REQ),
    F_ENC("payload_encoding", payload_base64),
    F_INT("payload_size", payload_size, 0, 0, INT64_MAX, 0),
    F_TS,
};

const struct bt_codec_type bt_codec_types[BT_MSG__COUNT] = {
    [BT_MSG_START] = {"start", SHAPE(start_fields)},
    [BT_MSG_SIGNAL] = {"signal", SHAPE(signal_fields)},
    [BT_MSG_CANCEL] = {"cancel", SHAPE(cancel_fields)},
    [BT_MSG_COMPLETED] = {"completed", SHAPE(completed_fields)},
    [BT_MSG_FAILED] = {"failed", SHAPE(failed_fields)},
    [BT_MSG_TIMER] = {"timer", SHAPE(timer_fields)},
    [BT_MSG_CHILD_COMPLETED] = {"child_completed", SHAPE(child_completed_fields)},
    [BT_MSG_CHILD_FAILED] = {"child_failed", SHAPE(child_failed_fields)},
    [BT_MSG_PAUSE] = {"pause", SHAPE(control_fields)},
    [BT_MSG_RESUME] = {"resume", SHAPE(control_fields)},
    [BT_MSG_RESET] = {"reset", SHAPE(reset_fields)},
    [BT_MSG_TASK] = {"task", SHAPE(task_fields)},
    [BT_MSG_RESULT] = {"result", SHAPE(result_fields)},
    [BT_MSG_DEAD_LETTER] = {"dead_letter", SHAPE(dead_letter_fields)},
};

const char *bt_msg_type_name(enum bt_msg_type type)
{
    if ((unsigned)type >= BT_MSG__COUNT)
        return NULL;
    return bt_codec_types[type].name;
}

/* ---- the struct, seen through the tables ---- */

const char *bt_codec_get_str(const struct bt_msg *msg, size_t off)
{
    const char *s;

    memcpy(&s, (const char *)msg + off, sizeof(s));
    return s;
}

void bt_codec_set_ptr(struct bt_msg *msg, size_t off, const void *p)
{
    memcpy((char *)msg + off, &p, sizeof(p));
}

int64_t bt_codec_get_int(const struct bt_msg *msg, const struct field *f)
{
    int64_t v64;
    int32_t v32;

    if (f->size == sizeof(v64)) {
        memcpy(&v64, (const char *)msg + f->off, sizeof(v64));
        return v64;
    }
    memcpy(&v32, (const char *)msg + f->off, sizeof(v32));
    return v32;
}

void bt_codec_set_int(struct bt_msg *msg, const struct field *f, int64_t v)
{
    int32_t v32 = (int32_t)v; /* range checked against f->max before */

    if (f->size == sizeof(v))
        memcpy((char *)msg + f->off, &v, sizeof(v));
    else
        memcpy((char *)msg + f->off, &v32, sizeof(v32));
}

bool bt_codec_get_bool(const struct bt_msg *msg, size_t off)
{
    bool b;

    memcpy(&b, (const char *)msg + off, sizeof(b));
    return b;
}

void bt_codec_set_bool(struct bt_msg *msg, size_t off, bool b)
{
    memcpy((char *)msg + off, &b, sizeof(b));
}

bool bt_codec_is_completed(const struct bt_msg *msg)
{
    return msg->status && strcmp(msg->status, "completed") == 0;
}

/* Strings come from jansson's allocator so that a message, body included,
 * has one owner (see codec.h). */
char *bt_codec_str_dup(const char *s, size_t len)
{
    json_malloc_t alloc;
    json_free_t dealloc;
    char *p;

    json_get_alloc_funcs(&alloc, &dealloc);
    p = alloc(len + 1);
    if (p) {
        memcpy(p, s, len);
        p[len] = '\0';
    }
    return p;
}

void bt_codec_str_free(char *s)
{
    json_malloc_t alloc;
    json_free_t dealloc;

    if (!s)
        return;
    json_get_alloc_funcs(&alloc, &dealloc);
    dealloc(s);
}

/* ---- decoding ---- */

/* Replaces control bytes (from jansson's text or a cut escape) and drops a
 * UTF-8 sequence cut by truncation, so errstr is one line of valid text. */
static void errstr_tidy(char *s, bool truncated)
{
    size_t len = strlen(s), lead = len;

    for (size_t i = 0; i < len; i++) {
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            s[i] = '?';
    }
    if (!truncated)
        return;
    while (lead > 0 && ((unsigned char)s[lead - 1] & 0xc0) == 0x80)
        lead--;
    if (lead > 0 && !bt_codec_text_ok(s + lead - 1, len - lead + 1))
        s[lead - 1] = '\0';
}

__attribute__((format(printf, 4, 5))) static int
fail(struct dec *d, const char *obj, const char *name, const char *fmt, ...)
{
    va_list ap;
    int k;

    if (!d->errstr || !d->errstr_size)
        return BT_EINVALMSG;
    if (obj && name)
        k = snprintf(d->errstr, d->errstr_size, "%s.%s: ", obj, name);
    else
        k = snprintf(d->errstr, d->errstr_size, "%s: ",
                     obj    ? obj
                     : name ? name
                            : "<root>");
    if (k >= 0 && (size_t)k < d->errstr_size) {
        va_start(ap, fmt);
        k += vsnprintf(d->errstr + k, d->errstr_size - (size_t)k, fmt, ap);
        va_end(ap);
    }
    errstr_tidy(d->errstr, k < 0 || (size_t)k >= d->errstr_size);
    return BT_EINVALMSG;
}

static int fail_nomem(struct dec *d)
{
    fail(d, NULL, NULL, "out of memory");
    return BT_ENOMEM;
}

/* Quotes a string from the message for an error text: escaped, and cut to
 * about 40 bytes at a character boundary so one bad key cannot flood logs. */
static const char *quote(char *buf, size_t size, const char *s, size_t len)
{
    size_t cut = len < 40 ? len : 40, o = 0;

    while (cut < len && cut > 0 && ((unsigned char)s[cut] & 0xc0) == 0x80)
        cut--;
    buf[o++] = '"';
    for (size_t i = 0; i < cut && o + 8 < size; i++) {
        unsigned char c = (unsigned char)s[i];

        if (c == '"' || c == '\\') {
            buf[o++] = '\\';
            buf[o++] = (char)c;
        } else if (c < 0x20 || c == 0x7f) {
            o += (size_t)snprintf(buf + o, size - o, "\\u%04x", c);
        } else {
            buf[o++] = (char)c;
        }
    }
    buf[o++] = '"';
    if (cut < len && o + 4 < size) {
        memcpy(buf + o, "...", 3);
        o += 3;
    }
    buf[o] = '\0';
    return buf;
}

static const char *json_kind(const json_t *value)
{
    switch (json_typeof(value)) {
    case JSON_OBJECT:
        return "object";
    case JSON_ARRAY:
        return "array";
    case JSON_STRING:
        return "string";
    case JSON_INTEGER:
        return "integer";
    case JSON_REAL:
        return "real";
    case JSON_TRUE:
    case JSON_FALSE:
        return "boolean";
    case JSON_NULL:
        return "null";
    }
    return "unknown";
}

static int decode_object(struct dec *d, const char *path, const json_t *obj,
                         const struct field *fields, size_t n);

static int decode_string(struct dec *d, const char *path, const struct field *f,
                         const json_t *value)
{
    const char *s = json_string_value(value);
    size_t len = json_string_length(value), pos = 0;
    unsigned cp = 0;
    char *copy, q[80];

    if (f->kind == K_ID) {
        switch (bt_codec_id_check(s, len, &pos, &cp)) {
        case ID_EMPTY:
            return fail(d, path, f->name, "must not be empty");
        case ID_LONG:
            return fail(d, path, f->name, "string of %zu bytes exceeds the limit of %d",
                        len, BT_ID_MAX);
        case ID_CTRL:
            return fail(d, path, f->name, "control character U+%04X at byte %zu", cp,
                        pos);
        }
        if ((f->flags & F_QUEUE) && !bt_codec_queue_ok(s, len, BT_QUEUE_MAX))
            return fail(d, path, f->name, "%s is no queue name: " BT_QUEUE_RULE,
                        quote(q, sizeof(q), s, len));
    } else if (!len && (f->flags & F_NONEMPTY)) {
        return fail(d, path, f->name, "must not be empty");
    }
    copy = bt_codec_str_dup(s, len);
    if (!copy)
        return fail_nomem(d);
    bt_codec_set_ptr(d->msg, f->off, copy);
    return 0;
}

static int decode_choice(struct dec *d, const char *path, const struct field *f,
                         const json_t *value)
{
    const char *s = json_string_value(value);
    char q[256];

    if (!s)
        return fail(d, path, f->name, "expected one of %s, got %s", f->expect,
                    json_kind(value));
    if (f->kind == K_ENC) {
        if (strcmp(s, "base64") == 0 || strcmp(s, "utf8") == 0) {
            bt_codec_set_bool(d->msg, f->off, s[0] == 'b');
            return 0;
        }
    } else {
        for (const char *const *v = f->values; *v; v++) {
            if (strcmp(s, *v) == 0)
                return decode_string(d, path, f, value);
        }
    }
    return fail(d, path, f->name, "expected one of %s, got %s", f->expect,
                quote(q, sizeof(q), s, json_string_length(value)));
}

static int decode_field(struct dec *d, const char *path, const struct field *f,
                        const json_t *value)
{
    json_int_t v;

    switch ((enum kind)f->kind) {
    case K_ID:
    case K_STR:
    case K_BYTES:
        if (json_is_null(value) && (f->flags & F_NULLABLE))
            return 0;
        if (!json_is_string(value))
            return fail(d, path, f->name, "expected a string%s, got %s",
                        f->flags & F_NULLABLE ? " or null" : "", json_kind(value));
        return decode_string(d, path, f, value);
    case K_ENC:
    case K_ENUM:
        return decode_choice(d, path, f, value);
    case K_INT:
        if (!json_is_integer(value))
            return fail(d, path, f->name, "expected an integer >= %" PRId64 ", got %s",
                        f->min, json_kind(value));
        v = json_integer_value(value);
        if (v < f->min)
            return fail(d, path, f->name, "expected an integer >= %" PRId64 ", got %lld",
                        f->min, (long long)v);
        if (v > f->max)
            return fail(d, path, f->name, "expected an integer <= %" PRId64 ", got %lld",
                        f->max, (long long)v);
        bt_codec_set_int(d->msg, f, v);
        return 0;
    case K_BOOL:
        if (!json_is_boolean(value))
            return fail(d, path, f->name, "expected a boolean, got %s", json_kind(value));
        bt_codec_set_bool(d->msg, f->off, json_is_true(value));
        return 0;
    case K_ANY:
        /* a reference, not a copy: the rest of the parsed tree goes with root */
        d->msg->body = json_incref((json_t *)(uintptr_t)value);
        return 0;
    case K_OBJ:
        if (!json_is_object(value))
            return fail(d, path, f->name, "expected an object, got %s", json_kind(value));
        return decode_object(d, f->name, value, f->sub, f->nsub);
    }
    return fail(d, path, f->name, "unsupported field kind");
}

static const struct field *find_field(const struct field *fields, size_t n,
                                      const char *key)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(fields[i].name, key) == 0)
            return &fields[i];
    }
    return NULL;
}

/* Rules that look at more than one property, checked once all are read. */
int bt_codec_decode_rules(struct dec *d, const char *path, const struct field *f,
                          bool seen)
{
    const struct bt_msg *msg = d->msg;
    const char *s;

    if ((f->flags & F_REQ) && !seen)
        return fail(d, path, f->name, "required field missing");
    if (!seen && f->kind == K_BOOL)
        bt_codec_set_bool(d->msg, f->off, f->def != 0);
    if (!seen && f->kind == K_INT)
        bt_codec_set_int(d->msg, f, f->def);
    if ((f->flags & F_IF_COMPLETED) && seen && !bt_codec_is_completed(msg))
        return fail(d, path, f->name, "only allowed when status is completed");
    if ((f->flags & F_UNLESS_COMPLETED) && seen && bt_codec_is_completed(msg))
        return fail(d, path, f->name, "not allowed when status is completed");
    if ((f->flags & F_UNLESS_COMPLETED) && !seen && !bt_codec_is_completed(msg))
        return fail(d, path, f->name, "required unless status is completed");
    if (f->kind == K_BYTES) {
        s = bt_codec_get_str(msg, f->off);
        if (!s)
            bt_codec_set_bool(d->msg, f->enc_off, false); /* key_encoding without a key */
        else if (bt_codec_get_bool(msg, f->enc_off) && !bt_b64_valid(s, strlen(s)))
            return fail(d, path, f->name, "not valid base64");
    }
    return 0;
}

static int decode_object(struct dec *d, const char *path, const json_t *obj,
                         const struct field *fields, size_t n)
{
    uint32_t seen = 0;
    const char *key;
    json_t *value;
    char q[256];
    int ret;

    BT_ASSERT(n <= 32); /* seen is a bit mask */
    json_object_foreach((json_t *)(uintptr_t)obj, key, value)
    {
        const struct field *f = find_field(fields, n, key);

        if (!f) {
            if (strncmp(key, "x-", 2) == 0)
                continue;
            if (!path && (strcmp(key, "v") == 0 || strcmp(key, "type") == 0))
                continue;
            return fail(d, path, NULL, "unknown property %s",
                        quote(q, sizeof(q), key, strlen(key)));
        }
        ret = decode_field(d, path, f, value);
        if (ret)
            return ret;
        seen |= UINT32_C(1) << (f - fields);
    }
    for (size_t i = 0; i < n; i++) {
        ret = bt_codec_decode_rules(d, path, &fields[i], seen & UINT32_C(1) << i);
        if (ret)
            return ret;
    }
    return 0;
}

static int decode_root(struct dec *d, const json_t *root)
{
    const json_t *v, *type;
    const char *name;
    char q[256];

    if (!json_is_object(root))
        return fail(d, NULL, NULL, "expected an object, got %s", json_kind(root));
    v = json_object_get(root, "v");
    if (!v)
        return fail(d, NULL, "v", "required field missing");
    if (!json_is_integer(v))
        return fail(d, NULL, "v", "expected an integer, got %s", json_kind(v));
    if (json_integer_value(v) != BT_SCHEMA_VERSION)
        return fail(d, NULL, "v", "unsupported schema version %lld",
                    (long long)json_integer_value(v));
    type = json_object_get(root, "type");
    if (!type)
        return fail(d, NULL, "type", "required field missing");
    name = json_string_value(type);
    if (!name)
        return fail(d, NULL, "type", "expected a string, got %s", json_kind(type));
    for (int t = 0; t < BT_MSG__COUNT; t++) {
        if (strcmp(name, bt_codec_types[t].name) == 0) {
            d->msg->type = (enum bt_msg_type)t;
            return decode_object(d, NULL, root, bt_codec_types[t].fields,
                                 bt_codec_types[t].n);
        }
    }
    return fail(d, NULL, "type", "unknown message type %s",
                quote(q, sizeof(q), name, json_string_length(type)));
}

int bt_codec_decode(const void *buf, size_t len, size_t max_payload, struct bt_msg *msg,
                    char *errstr, size_t errstr_size)
{
    struct dec d = {.msg = msg, .errstr = errstr, .errstr_size = errstr_size};
    json_error_t jerr;
    json_t *root = NULL;
    char text[JSON_ERROR_TEXT_LENGTH];
    int ret;

    BT_ASSERT(buf || !len);
    memset(msg, 0, sizeof(*msg));
    if (errstr && errstr_size)
        errstr[0] = '\0';
    if (len > max_payload) {
        fail(&d, NULL, NULL, "payload of %zu bytes exceeds the limit of %zu", len,
             max_payload);
        return BT_ETOOBIG;
    }
    if (bt_codec_quick_decode(&d, buf ? buf : "", len))
        return 0;
    /* jansson leaves the text empty, or says so in the code, when it ran out
     * of memory: that is not the message's fault */
    jerr.text[0] = '\0';
    jerr.text[JSON_ERROR_TEXT_LENGTH - 1] = (char)json_error_unknown;
    root = json_loadb(buf ? buf : "", len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        if (!jerr.text[0] || json_error_code(&jerr) == json_error_out_of_memory)
            return fail_nomem(&d);
        /* jansson's own text names its flag, which means nothing to a producer */
        if (json_error_code(&jerr) == json_error_null_character)
            snprintf(jerr.text, sizeof(jerr.text), "\\u0000 is not allowed in strings");
        for (size_t i = 0; i < sizeof(text); i++) {
            unsigned char c = (unsigned char)jerr.text[i];

            text[i] = c >= 0x80 || (c && c < 0x20) ? '?' : (char)c;
            if (!c)
                break;
        }
        text[sizeof(text) - 1] = '\0';
        return fail(&d, NULL, NULL, "malformed JSON at line %d column %d: %s", jerr.line,
                    jerr.column, text);
    }
    ret = decode_root(&d, root);
    json_decref(root);
    if (ret)
        bt_msg_release(msg);
    return ret;
}

/* ---- building and releasing ---- */

static int bytes_dup(const void *data, size_t len, char **out, bool *base64)
{
    if (bt_codec_text_ok(data, len)) {
        *out = bt_codec_str_dup(data, len);
        *base64 = false;
    } else {
        json_malloc_t alloc;
        json_free_t dealloc;

        json_get_alloc_funcs(&alloc, &dealloc);
        *out = alloc(bt_b64_len(len) + 1);
        if (*out)
            bt_b64_encode(*out, data, len);
        *base64 = true;
    }
    return *out ? 0 : BT_ENOMEM;
}

int bt_codec_dead_letter(struct bt_msg *msg, const char *reason, const char *topic,
                         int32_t partition, int64_t offset, const void *key,
                         size_t keylen, const void *payload, size_t len)
{
    int ret = BT_EINVAL;

    memset(msg, 0, sizeof(*msg));
    msg->type = BT_MSG_DEAD_LETTER;
    if (!reason || !topic || !bt_codec_text_ok(reason, strlen(reason)) ||
        !bt_codec_text_ok(topic, strlen(topic)) || partition < -1 || offset < -1 ||
        (!payload && len))
        goto out;
    ret = BT_ENOMEM;
    msg->reason = bt_codec_str_dup(reason, strlen(reason));
    msg->origin_topic = bt_codec_str_dup(topic, strlen(topic));
    if (!msg->reason || !msg->origin_topic)
        goto out;
    msg->origin_partition = partition;
    msg->origin_offset = offset;
    if (key && bytes_dup(key, keylen, &msg->key, &msg->key_base64))
        goto out;
    if (bytes_dup(payload ? payload : "", len, &msg->payload, &msg->payload_base64))
        goto out;
    ret = 0;
out:
    if (ret)
        bt_msg_release(msg);
    return ret;
}

char *bt_codec_encode_dead_letter(struct bt_msg *dl, size_t max, size_t *len)
{
    char *bytes = bt_codec_encode(dl, len);
    size_t keep = dl->payload ? strlen(dl->payload) : 0;
    size_t whole = keep;

    if (dl->payload_base64) /* the original's size: 3 bytes per 4 characters */
        whole = keep / 4 * 3 - (keep >= 1 && dl->payload[keep - 1] == '=') -
                (keep >= 2 && dl->payload[keep - 2] == '=');
    while (bytes && *len > max && keep > 0) {
        /* in proportion (escapes write more than a byte per character), with
         * room for the envelope; a payload whose escapes crowd at its start
         * takes another turn */
        keep = (size_t)((double)keep * ((double)max * 15 / 16) / (double)*len);
        if (dl->payload_base64)
            keep -= keep % 4;
        else
            while (keep > 0 && ((unsigned char)dl->payload[keep] & 0xC0) == 0x80)
                keep--;
        dl->payload[keep] = '\0';
        dl->payload_size = (int64_t)whole;
        free(bytes);
        bytes = bt_codec_encode(dl, len);
    }
    return bytes;
}

void bt_msg_release(struct bt_msg *msg)
{
    if (!msg)
        return;
    bt_codec_str_free(msg->id);
    bt_codec_str_free(msg->workflow);
    bt_codec_str_free(msg->name);
    bt_codec_str_free(msg->queue);
    bt_codec_str_free(msg->rate_key);
    bt_codec_str_free(msg->wf_queue);
    bt_codec_str_free(msg->parent_queue);
    bt_codec_str_free(msg->on_parent_close);
    bt_codec_str_free(msg->concurrency_key);
    bt_codec_str_free(msg->kind);
    bt_codec_str_free(msg->child);
    bt_codec_str_free(msg->status);
    bt_codec_str_free(msg->parent_id);
    bt_codec_str_free(msg->error.type);
    bt_codec_str_free(msg->error.message);
    bt_codec_str_free(msg->reason);
    bt_codec_str_free(msg->by);
    bt_codec_str_free(msg->origin_topic);
    bt_codec_str_free(msg->key);
    bt_codec_str_free(msg->payload);
    json_decref(msg->body);
    memset(msg, 0, sizeof(*msg));
}
