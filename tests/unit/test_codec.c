/* The codec against the golden cases in tests/schemas/ (the same ones
 * tests/schemas/check_schemas.py holds the JSON Schemas to), plus what a file
 * cannot express: oversize input, allocation failures, encoder contracts. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "err.h"

#define CASES_DIR BT_SOURCE_DIR "/tests/schemas"
#define LIMIT     (1024 * 1024)

/* a literal for a char * field of struct bt_msg, which encode only reads */
#define S(lit) ((char *)(uintptr_t)(lit))

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    long n;

    if (!f)
        return NULL;
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0) {
        buf = malloc((size_t)n + 1);
        if (buf) {
            *len = fread(buf, 1, (size_t)n, f);
            buf[*len] = '\0';
        }
    }
    fclose(f);
    return buf;
}

static char *slurp_line(const char *dir, const char *name, const char *file)
{
    char path[1024];
    size_t len = 0;
    char *text;

    snprintf(path, sizeof(path), "%s/%s/%s", dir, name, file);
    text = slurp(path, &len);
    while (text && len && (text[len - 1] == '\n' || text[len - 1] == '\r'))
        text[--len] = '\0';
    return text;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorted case names under dir; NULL-terminated, free with free_names(). */
static char **case_names(const char *dir, size_t *count)
{
    DIR *dp = opendir(dir);
    struct dirent *de;
    char **names = NULL;
    size_t n = 0;

    cr_assert(dp, "cannot open %s", dir);
    while ((de = readdir(dp))) {
        if (de->d_name[0] == '.')
            continue;
        names = realloc(names, (n + 2) * sizeof(*names));
        cr_assert(names);
        names[n++] = strdup(de->d_name);
    }
    closedir(dp);
    if (names) {
        names[n] = NULL;
        qsort(names, n, sizeof(*names), by_name);
    }
    *count = n;
    return names;
}

static void free_names(char **names)
{
    for (size_t i = 0; names && names[i]; i++)
        free(names[i]);
    free(names);
}

static char *case_input(const char *dir, const char *name, size_t *len)
{
    char path[1024];

    snprintf(path, sizeof(path), "%s/%s/input.json", dir, name);
    return slurp(path, len);
}

static bool str_same(const char *a, const char *b)
{
    return a == b || (a && b && strcmp(a, b) == 0);
}

static bool json_same(json_t *a, json_t *b)
{
    return a == b || (a && b && json_equal(a, b));
}

/* Compares two messages field by field; names the first difference. */
static const char *msg_diff(const struct bt_msg *a, const struct bt_msg *b)
{
#define STR(f)                                                                           \
    do {                                                                                 \
        if (!str_same(a->f, b->f))                                                       \
            return #f;                                                                   \
    } while (0)
#define NUM(f)                                                                           \
    do {                                                                                 \
        if (a->f != b->f)                                                                \
            return #f;                                                                   \
    } while (0)
    NUM(type);
    NUM(ts);
    NUM(seq);
    NUM(attempt);
    NUM(deadline);
    NUM(timeout_ms);
    NUM(terminate);
    NUM(error.retryable);
    NUM(error.retry_after_ms);
    NUM(origin_partition);
    NUM(origin_offset);
    NUM(key_base64);
    NUM(payload_base64);
    STR(id);
    STR(workflow);
    STR(name);
    STR(queue);
    STR(kind);
    STR(child);
    STR(status);
    STR(parent_id);
    STR(error.type);
    STR(error.message);
    STR(reason);
    STR(origin_topic);
    STR(key);
    STR(payload);
    STR(rate_key);
    STR(wf_queue);
    STR(parent_queue);
    STR(on_parent_close);
    STR(concurrency_key);
#undef STR
#undef NUM
    if (!json_same(a->body, b->body))
        return "body";
    return NULL;
}

static bool is_zeroed(const struct bt_msg *msg)
{
    struct bt_msg zero;

    memset(&zero, 0, sizeof(zero));
    return memcmp(msg, &zero, sizeof(zero)) == 0;
}

/* Decodes and encodes one valid input; checks the canonical fix point.
 * Returns the canonical bytes (caller frees). */
static char *round_trip(const char *name, const char *input, size_t len, size_t *out_len)
{
    struct bt_msg first, second, third;
    char errstr[256];
    char *bytes, *again;
    size_t n, m;
    const char *diff;
    int rc;

    rc = bt_codec_decode(input, len, LIMIT, &first, errstr, sizeof(errstr));
    cr_assert_eq(rc, 0, "%s: decode failed: %s", name, errstr);
    bytes = bt_codec_encode(&first, &n);
    cr_assert(bytes, "%s: encode returned NULL", name);
    cr_expect_eq(strlen(bytes), n, "%s: encode length or NUL wrong", name);
    rc = bt_codec_decode(bytes, n, LIMIT, &second, errstr, sizeof(errstr));
    cr_assert_eq(rc, 0, "%s: canonical form does not decode: %s: %s", name, errstr,
                 bytes);
    diff = msg_diff(&first, &second);
    cr_expect(!diff, "%s: round trip changed field %s", name, diff ? diff : "");
    again = bt_codec_encode(&second, &m);
    cr_assert(again, "%s: second encode returned NULL", name);
    cr_expect(m == n && memcmp(bytes, again, n) == 0, "%s: encode not stable:\n%s\n%s",
              name, bytes, again);
    free(again);
    again = bt_codec_encode(&first, &m);
    cr_expect(again && m == n && memcmp(bytes, again, n) == 0,
              "%s: encoding twice differs", name);
    free(again);
    rc = bt_codec_decode(bytes, n, LIMIT, &third, errstr, sizeof(errstr));
    cr_assert_eq(rc, 0);
    cr_expect(!msg_diff(&third, &first));
    bt_msg_release(&first);
    bt_msg_release(&second);
    bt_msg_release(&third);
    *out_len = n;
    return bytes;
}

Test(codec, golden_valid_cases_decode_and_round_trip_exactly)
{
    const char *dir = CASES_DIR "/valid";
    size_t count, len, n;
    char **names = case_names(dir, &count);
    bool seen[BT_MSG__COUNT] = {false};

    cr_assert_geq(count, BT_MSG__COUNT, "fewer valid cases than message types");
    for (size_t i = 0; i < count; i++) {
        char *input = case_input(dir, names[i], &len);
        char *output = slurp_line(dir, names[i], "output.json");
        char *bytes;
        struct bt_msg msg;
        char errstr[256];

        cr_assert(input, "%s: no input.json", names[i]);
        if (bt_codec_decode(input, len, LIMIT, &msg, errstr, sizeof(errstr)) == 0) {
            seen[msg.type] = true;
            bt_msg_release(&msg);
        }
        bytes = round_trip(names[i], input, len, &n);
        if (output)
            cr_expect_str_eq(bytes, output, "%s: canonical bytes differ from output.json",
                             names[i]);
        free(bytes);
        free(output);
        free(input);
    }
    for (int t = 0; t < BT_MSG__COUNT; t++)
        cr_expect(seen[t], "no valid case for type %s",
                  bt_msg_type_name((enum bt_msg_type)t));
    free_names(names);
}

/* Canonical text takes the decoder's fast path; the same text with an "x-"
 * extension after "type" takes the full one (jansson). Both must build the
 * same message from every valid case. */
Test(codec, the_fast_and_the_full_decoder_agree)
{
    const char *dir = CASES_DIR "/valid";
    size_t count, len, n;
    char **names = case_names(dir, &count);

    for (size_t i = 0; i < count; i++) {
        char *input = case_input(dir, names[i], &len);
        struct bt_msg fast, full;
        char errstr[256], *canonical, *extended, *after_type;
        const char *diff;

        cr_assert_eq(bt_codec_decode(input, len, LIMIT, &full, errstr, sizeof(errstr)), 0,
                     "%s: %s", names[i], errstr);
        canonical = bt_codec_encode(&full, &n);
        bt_msg_release(&full);
        cr_assert(canonical);
        after_type = strchr(canonical + strlen("{\"v\":1,\"type\":\""), ',');
        cr_assert(after_type, "%s: %s", names[i], canonical);
        extended = malloc(n + 16);
        cr_assert(extended);
        len = (size_t)(after_type - canonical);
        memcpy(extended, canonical, len);
        strcpy(extended + len, ",\"x-n\":0");
        strcat(extended, after_type);
        cr_assert_eq(bt_codec_decode(canonical, n, LIMIT, &fast, errstr, sizeof(errstr)),
                     0, "%s: %s", names[i], errstr);
        cr_assert_eq(bt_codec_decode(extended, strlen(extended), LIMIT, &full, errstr,
                                     sizeof(errstr)),
                     0, "%s: %s", names[i], errstr);
        diff = msg_diff(&fast, &full);
        cr_expect(!diff, "%s: fast and full decoding differ in %s", names[i],
                  diff ? diff : "");
        bt_msg_release(&fast);
        bt_msg_release(&full);
        free(extended);
        free(canonical);
        free(input);
    }
    free_names(names);
}

/* The fast path builds bodies itself: the same tree as jansson's, or it hands
 * the text to jansson (reals, deep nesting, escapes it does not take). */
Test(codec, bodies_come_out_as_jansson_parses_them)
{
    static const char *const bodies[] = {
        "null",
        "true",
        "false",
        "0",
        "-0",
        "-12",
        "123456789012345678",
        "1234567890123456789",
        "1.5",
        "-2e3",
        "\"\"",
        "\"plain\"",
        "\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"",
        "\"\\u00e9\\u20AC\\ud83d\\ude00 \xc3\xa9\"",
        "{}",
        "[]",
        "{\"a\":{\"b\":[1,[2,[3,{}]],\"x\"]},\"c\":null}",
        " [ 1 , 2 ] ",
        "DEEP", /* 70 levels: deeper than the fast path goes */
        "{\"\\u00e9\":1,\"k\\n\":[true,false]}",
        /* keys read without a string value (plain ASCII), and the others */
        "{ \"a b\" : 1 , \"\xc3\xa9\":2,\"a\\\"b\":3}",
        "{\"LONGKEY\":1,\"x\":{\"LONGKEY\":2}}",
    };

    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        char text[1024], errstr[256];
        struct bt_msg msg;
        const char *body = bodies[i];
        char deep[160], longbody[512];
        json_t *want;

        if (strstr(body, "LONGKEY")) {
            /* keys of 200 bytes: longer than the fast path copies */
            char key[201];
            memset(key, 'k', 200);
            key[200] = '\0';
            snprintf(longbody, sizeof(longbody), "{\"%s\":1,\"x\":{\"%s\":2}}", key, key);
            body = longbody;
        }
        if (!strcmp(body, "DEEP")) {
            memset(deep, '[', 70);
            deep[70] = '1';
            memset(deep + 71, ']', 70);
            deep[141] = '\0';
            body = deep;
        }
        want = json_loads(body, JSON_DECODE_ANY, NULL);
        cr_assert(want, "bad test body %s", body);
        snprintf(
            text, sizeof(text),
            "{\"v\":1,\"type\":\"signal\",\"id\":\"x\",\"name\":\"n\",\"payload\":%s}",
            body);
        cr_assert_eq(
            bt_codec_decode(text, strlen(text), LIMIT, &msg, errstr, sizeof(errstr)), 0,
            "%s: %s", body, errstr);
        cr_expect(msg.body && json_equal(msg.body, want), "%s differs", body);
        bt_msg_release(&msg);
        json_decref(want);
    }
}

Test(codec, bodies_jansson_refuses_are_refused)
{
    static const char *const bodies[] = {
        "\"\\u0000\"",       "\"\\ud800\"", "\"\\udc00x\"",
        "\"\\uZZZZ\"",       "\"\\x\"",     "\"\xff\"",
        "{\"a\":1,\"a\":2}", "01",          "[1,]",
        "{\"a\"}",           "tru",         "nul",
    };

    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        char text[256], errstr[256];
        struct bt_msg msg;

        snprintf(
            text, sizeof(text),
            "{\"v\":1,\"type\":\"signal\",\"id\":\"x\",\"name\":\"n\",\"payload\":%s}",
            bodies[i]);
        cr_expect_eq(
            bt_codec_decode(text, strlen(text), LIMIT, &msg, errstr, sizeof(errstr)),
            BT_EINVALMSG, "%s was accepted", bodies[i]);
        cr_expect(strstr(errstr, "malformed JSON"), "%s: %s", bodies[i], errstr);
        cr_expect(is_zeroed(&msg));
    }
}

Test(codec, golden_invalid_cases_fail_with_their_exact_error)
{
    const char *dir = CASES_DIR "/invalid";
    size_t count, len;
    char **names = case_names(dir, &count);

    cr_assert_geq(count, 40);
    for (size_t i = 0; i < count; i++) {
        char *input = case_input(dir, names[i], &len);
        char *want = slurp_line(dir, names[i], "error");
        struct bt_msg msg;
        char errstr[512];
        int rc;

        cr_assert(input && want, "%s: needs input.json and error", names[i]);
        rc = bt_codec_decode(input, len, LIMIT, &msg, errstr, sizeof(errstr));
        cr_expect_eq(rc, BT_EINVALMSG, "%s: decode returned %s, want EINVALMSG", names[i],
                     bt_err_name(rc));
        cr_expect_str_eq(errstr, want, "%s: error text differs", names[i]);
        cr_expect(is_zeroed(&msg), "%s: msg not released after failure", names[i]);
        if (rc == 0)
            bt_msg_release(&msg);
        free(want);
        free(input);
    }
    free_names(names);
}

Test(codec, every_type_has_a_schema_named_after_it)
{
    for (int t = 0; t < BT_MSG__COUNT; t++) {
        char path[512];
        size_t len;
        char *text;

        snprintf(path, sizeof(path), "%s/schemas/%s.schema.json", BT_SOURCE_DIR,
                 bt_msg_type_name((enum bt_msg_type)t));
        text = slurp(path, &len);
        cr_expect(text, "missing %s", path);
        free(text);
    }
    cr_expect_null(bt_msg_type_name(BT_MSG__COUNT));
    cr_expect_null(bt_msg_type_name((enum bt_msg_type) - 1));
    cr_expect_str_eq(bt_msg_type_name(BT_MSG_CHILD_COMPLETED), "child_completed");
    cr_expect_str_eq(bt_msg_type_name(BT_MSG_DEAD_LETTER), "dead_letter");
}

Test(codec, oversize_is_refused_before_parsing)
{
    size_t len = 2000000;
    char *buf = malloc(len);
    struct bt_msg msg;
    char errstr[256];
    static const char head[] = "{\"v\":1,\"type\":\"cancel\",\"id\":\"wf\"}";

    cr_assert(buf);
    memset(buf, '[', len); /* would also be too deep, were it parsed */
    cr_assert_eq(bt_codec_decode(buf, len, LIMIT, &msg, errstr, sizeof(errstr)),
                 BT_ETOOBIG);
    cr_expect_str_eq(errstr,
                     "<root>: payload of 2000000 bytes exceeds the limit of 1048576");
    cr_expect(is_zeroed(&msg));

    /* exactly at the limit is fine */
    memset(buf, ' ', LIMIT);
    memcpy(buf, head, sizeof(head) - 1);
    cr_expect_eq(bt_codec_decode(buf, LIMIT, LIMIT, &msg, errstr, sizeof(errstr)), 0,
                 "%s", errstr);
    bt_msg_release(&msg);
    cr_expect_eq(bt_codec_decode(buf, LIMIT + 1, LIMIT, &msg, errstr, sizeof(errstr)),
                 BT_ETOOBIG);
    free(buf);
}

Test(codec, deep_nesting_is_malformed_not_a_crash)
{
    size_t depth = 5000, len;
    char *buf = malloc(depth * 2 + 128);
    struct bt_msg msg;
    char errstr[256];

    cr_assert(buf);
    len = (size_t)sprintf(
        buf, "{\"v\":1,\"type\":\"signal\",\"id\":\"a\",\"name\":\"b\",\"payload\":");
    memset(buf + len, '[', depth);
    memset(buf + len + depth, ']', depth);
    len += 2 * depth;
    buf[len++] = '}';
    cr_expect_eq(bt_codec_decode(buf, len, LIMIT, &msg, errstr, sizeof(errstr)),
                 BT_EINVALMSG);
    cr_expect(strstr(errstr, "maximum parsing depth reached"), "%s", errstr);
    free(buf);
}

Test(codec, decoded_fields_carry_the_wire_values)
{
    static const char start[] = "{\"v\":1,\"type\":\"start\",\"id\":\"c-1\",\"workflow\":"
                                "\"w\",\"input\":{\"a\":[1]},"
                                "\"parent\":{\"id\":\"p-1\",\"seq\":4},\"ts\":17}";
    static const char failed[] =
        "{\"v\":1,\"type\":\"failed\",\"id\":\"x\",\"seq\":2,"
        "\"attempt\":3,\"error\":{\"type\":\"E\",\"message\":\"m\"}}";
    static const char timer[] = "{\"v\":1,\"type\":\"timer\",\"id\":\"x\",\"seq\":2,"
                                "\"kind\":\"sleep\"}";
    static const char dlq[] =
        "{\"v\":1,\"type\":\"dead_letter\",\"reason\":\"r\",\"origin\":{\"topic\":\"t\","
        "\"partition\":-1,\"offset\":9},\"key\":null,\"payload\":\"/w==\","
        "\"payload_encoding\":\"base64\"}";
    struct bt_msg msg;
    char errstr[256];

    cr_assert_eq(
        bt_codec_decode(start, strlen(start), LIMIT, &msg, errstr, sizeof(errstr)), 0,
        "%s", errstr);
    cr_expect_eq(msg.type, BT_MSG_START);
    cr_expect_str_eq(msg.id, "c-1");
    cr_expect_str_eq(msg.workflow, "w");
    cr_expect_str_eq(msg.parent_id, "p-1");
    cr_expect_eq(msg.seq, 4);
    cr_expect_eq(msg.ts, 17);
    cr_expect(json_is_object(msg.body));
    cr_expect_eq(json_integer_value(json_array_get(json_object_get(msg.body, "a"), 0)),
                 1);
    cr_expect_eq(msg.body->refcount, 1, "body must be the parsed value, owned once");
    bt_msg_release(&msg);

    cr_assert_eq(
        bt_codec_decode(failed, strlen(failed), LIMIT, &msg, errstr, sizeof(errstr)), 0);
    cr_expect(msg.error.retryable, "retryable defaults to true");
    cr_expect_eq(msg.error.retry_after_ms, 0);
    cr_expect_eq(msg.attempt, 3);
    cr_expect_null(msg.body);
    bt_msg_release(&msg);

    cr_assert_eq(
        bt_codec_decode(timer, strlen(timer), LIMIT, &msg, errstr, sizeof(errstr)), 0);
    cr_expect_eq(msg.attempt, 0);
    cr_expect_str_eq(msg.kind, "sleep");
    bt_msg_release(&msg);

    cr_assert_eq(bt_codec_decode(dlq, strlen(dlq), LIMIT, &msg, errstr, sizeof(errstr)),
                 0);
    cr_expect_null(msg.id);
    cr_expect_null(msg.key);
    cr_expect(msg.payload_base64);
    cr_expect_eq(msg.origin_partition, -1);
    cr_expect_eq(msg.origin_offset, 9);
    bt_msg_release(&msg);
}

Test(codec, encode_writes_compact_json_in_schema_order)
{
    json_t *input = json_pack("{s:s}", "carrier", "att");
    struct bt_msg msg = {.type = BT_MSG_TASK,
                         .id = S("wf-1"),
                         .seq = 2,
                         .attempt = 1,
                         .name = S("submit"),
                         .queue = S("carriers"),
                         .body = input,
                         .deadline = 1000,
                         .ts = 5,
                         /* fields a task does not use are ignored */
                         .workflow = S("ignored"),
                         .kind = S("ignored"),
                         .terminate = true};
    size_t len = 0;
    char *bytes = bt_codec_encode(&msg, &len);

    cr_assert(bytes);
    cr_expect_str_eq(bytes,
                     "{\"v\":1,\"type\":\"task\",\"id\":\"wf-1\",\"seq\":2,"
                     "\"attempt\":1,\"name\":\"submit\",\"queue\":\"carriers\","
                     "\"input\":{\"carrier\":\"att\"},\"deadline\":1000,\"ts\":5}");
    cr_expect_eq(len, strlen(bytes));
    free(bytes);
    json_decref(input);
}

Test(codec, encode_leaves_out_what_the_status_forbids)
{
    json_t *body = json_integer(1);
    struct bt_msg done = {.type = BT_MSG_RESULT,
                          .id = S("a"),
                          .workflow = S("w"),
                          .status = S("completed"),
                          .body = body,
                          .error = {.type = S("E"), .message = S("m")}};
    struct bt_msg failed = {.type = BT_MSG_RESULT,
                            .id = S("a"),
                            .workflow = S("w"),
                            .status = S("failed"),
                            .body = body,
                            .error = {.type = S("E"), .message = S("m")}};
    char *bytes;

    bytes = bt_codec_encode(&done, NULL);
    cr_expect_str_eq(bytes,
                     "{\"v\":1,\"type\":\"result\",\"id\":\"a\",\"workflow\":\"w\","
                     "\"status\":\"completed\",\"result\":1}");
    free(bytes);
    bytes = bt_codec_encode(&failed, NULL);
    cr_expect_str_eq(
        bytes, "{\"v\":1,\"type\":\"result\",\"id\":\"a\",\"workflow\":\"w\","
               "\"status\":\"failed\",\"error\":{\"type\":\"E\",\"message\":\"m\"}}");
    free(bytes);
    json_decref(body);
}

Test(codec, encode_refuses_messages_that_break_their_schema)
{
    char long_id[BT_ID_MAX + 2];
    struct bt_msg ok = {.type = BT_MSG_COMPLETED, .id = S("wf"), .seq = 1, .attempt = 1};
    struct bt_msg m;
    char *bytes;

    memset(long_id, 'i', sizeof(long_id) - 1);
    long_id[sizeof(long_id) - 1] = '\0';
    bytes = bt_codec_encode(&ok, NULL);
    cr_assert(bytes);
    free(bytes);

#define REFUSED(...)                                                                     \
    do {                                                                                 \
        m = ok;                                                                          \
        __VA_ARGS__;                                                                     \
        bytes = bt_codec_encode(&m, NULL);                                               \
        cr_expect_null(bytes, "encoded although %s", #__VA_ARGS__);                      \
        free(bytes);                                                                     \
    } while (0)
    REFUSED(m.id = NULL);
    REFUSED(m.id = S(""));
    REFUSED(m.id = long_id);
    REFUSED(m.id = S("a\nb"));
    REFUSED(m.id = S("a\xc2\x85"));    /* U+0085, a C1 control */
    REFUSED(m.id = S("\xc3\x28"));     /* not UTF-8 */
    REFUSED(m.id = S("\xed\xa0\x80")); /* a surrogate */
    REFUSED(m.attempt = 0);
    REFUSED(m.seq = -1);
    REFUSED(m.ts = -1);
    REFUSED(m.type = BT_MSG__COUNT);
    REFUSED(m.type = BT_MSG_TIMER, m.kind = S("nap"));
    REFUSED(m.type = BT_MSG_TIMER, m.kind = NULL);
    REFUSED(m.type = BT_MSG_TIMER, m.kind = S("sleep"), m.attempt = -1);
    REFUSED(m.type = BT_MSG_FAILED);
    REFUSED(m.type = BT_MSG_FAILED, m.error.type = S("E"));
    REFUSED(m.type = BT_MSG_FAILED, m.error.type = S(""), m.error.message = S(""));
    REFUSED(m.type = BT_MSG_FAILED, m.error.type = S("E"), m.error.message = S(""),
            m.error.retry_after_ms = -1);
    REFUSED(m.type = BT_MSG_RESULT, m.workflow = S("w"), m.status = S("done"));
    REFUSED(m.type = BT_MSG_RESULT, m.workflow = S("w"), m.status = S("failed"));
    REFUSED(m.type = BT_MSG_RESULT, m.workflow = S("w"), m.status = NULL);
    REFUSED(m.type = BT_MSG_START);
    REFUSED(m.type = BT_MSG_DEAD_LETTER, m.reason = S("r"), m.origin_topic = S("t"),
            m.payload = S("!!"), m.payload_base64 = true);
    REFUSED(m.type = BT_MSG_DEAD_LETTER, m.reason = S("r"), m.origin_topic = S("t"),
            m.origin_partition = -2, m.payload = S(""));
    REFUSED(m.type = BT_MSG_DEAD_LETTER, m.reason = S("r"), m.payload = S(""));
#undef REFUSED
}

static const char bin_payload[] = {'\xff', '\0', 'a', 'b', 'c'};
static const char bin_key[] = {'\0', '\xff'};

Test(codec, dead_letter_keeps_bytes_that_are_not_text_as_base64)
{
    struct bt_msg msg, back;
    char errstr[256];
    size_t len;
    char *bytes;

    cr_assert_eq(bt_codec_dead_letter(&msg, "bad", "baton.events", 2, 77, bin_key,
                                      sizeof(bin_key), bin_payload, sizeof(bin_payload)),
                 0);
    cr_expect_eq(msg.type, BT_MSG_DEAD_LETTER);
    cr_expect_str_eq(msg.payload, "/wBhYmM=");
    cr_expect(msg.payload_base64);
    cr_expect_str_eq(msg.key, "AP8=");
    cr_expect(msg.key_base64);
    bytes = bt_codec_encode(&msg, &len);
    cr_assert(bytes);
    cr_expect_str_eq(bytes, "{\"v\":1,\"type\":\"dead_letter\",\"reason\":\"bad\","
                            "\"origin\":{\"topic\":\"baton.events\",\"partition\":2,"
                            "\"offset\":77},\"key\":\"AP8=\",\"key_encoding\":\"base64\","
                            "\"payload\":\"/wBhYmM=\",\"payload_encoding\":\"base64\"}");
    cr_assert_eq(bt_codec_decode(bytes, len, LIMIT, &back, errstr, sizeof(errstr)), 0,
                 "%s", errstr);
    cr_expect(!msg_diff(&msg, &back));
    free(bytes);
    bt_msg_release(&back);
    bt_msg_release(&msg);
}

Test(codec, dead_letter_keeps_text_as_text)
{
    static const char payload[] = "{\"v\":1,\"type\":\"strat\"}\n\t\xe2\x82\xac";
    struct bt_msg msg;
    char *bytes;

    cr_assert_eq(bt_codec_dead_letter(&msg, "type: unknown message type \"strat\"",
                                      "baton.events", -1, -1, NULL, 0, payload,
                                      strlen(payload)),
                 0);
    cr_expect_str_eq(msg.payload, payload);
    cr_expect(!msg.payload_base64);
    cr_expect_null(msg.key);
    bytes = bt_codec_encode(&msg, NULL);
    cr_expect_str_eq(bytes,
                     "{\"v\":1,\"type\":\"dead_letter\",\"reason\":\"type: unknown "
                     "message type \\\"strat\\\"\",\"origin\":{\"topic\":\"baton."
                     "events\",\"partition\":-1,\"offset\":-1},\"payload\":\"{\\\"v\\\""
                     ":1,\\\"type\\\":\\\"strat\\\"}\\n\\t\xe2\x82\xac\"}");
    free(bytes);
    bt_msg_release(&msg);

    cr_expect_eq(bt_codec_dead_letter(&msg, "", "t", 0, 0, "", 0, NULL, 0), 0);
    cr_expect_str_eq(msg.key, "");
    cr_expect_str_eq(msg.payload, "");
    bt_msg_release(&msg);
    cr_expect_eq(bt_codec_dead_letter(&msg, NULL, "t", 0, 0, NULL, 0, "", 0), BT_EINVAL);
    cr_expect_eq(bt_codec_dead_letter(&msg, "r", NULL, 0, 0, NULL, 0, "", 0), BT_EINVAL);
    cr_expect_eq(bt_codec_dead_letter(&msg, "r", "t", -2, 0, NULL, 0, "", 0), BT_EINVAL);
    cr_expect(is_zeroed(&msg));
}

Test(codec, encoder_turns_a_payload_that_is_not_utf8_into_base64)
{
    struct bt_msg msg = {.type = BT_MSG_DEAD_LETTER,
                         .reason = S("r"),
                         .origin_topic = S("t"),
                         .key = S("\xc3\x28"),
                         .payload = S("\xc3\x28 bad")};
    char *bytes = bt_codec_encode(&msg, NULL);

    cr_expect_str_eq(bytes,
                     "{\"v\":1,\"type\":\"dead_letter\",\"reason\":\"r\",\"origin\":"
                     "{\"topic\":\"t\",\"partition\":0,\"offset\":0},\"key\":\"wyg=\","
                     "\"key_encoding\":\"base64\",\"payload\":\"wyggYmFk\","
                     "\"payload_encoding\":\"base64\"}");
    free(bytes);
}

/* A dead letter fits in max bytes whatever its payload: UTF-8 text (cut on a
 * character boundary, escapes included), binary (base64, cut on a group of
 * four) or one that fits whole (not cut, no payload_size). */
Test(codec, a_dead_letter_keeps_what_fits_of_its_payload_and_says_how_large_it_was)
{
    static const char *const kinds[] = {"\xc3\xa9\"", "\xff\x01", "ab"};
    const size_t max = 4096, size = 100000;

    for (size_t k = 0; k < 3; k++) {
        char *payload = malloc(size), *bytes;
        struct bt_msg dl, back;
        size_t unit = strlen(kinds[k]), len;
        for (size_t i = 0; i < size; i++)
            payload[i] = kinds[k][i % unit];
        size_t n = k == 2 ? 1000 : size - size % unit;
        cr_assert_eq(
            bt_codec_dead_letter(&dl, "too large", "t.events", 0, 7, "id", 2, payload, n),
            0);
        bytes = bt_codec_encode_dead_letter(&dl, max, &len);
        cr_assert(bytes);
        cr_expect_leq(len, max, "kind %zu: %zu bytes", k, len);
        cr_assert_eq(bt_codec_decode(bytes, len, LIMIT, &back, NULL, 0), 0, "%s", bytes);
        cr_expect_eq(back.payload_size, k == 2 ? 0 : (int64_t)n, "kind %zu", k);
        cr_expect_eq(back.payload_base64, k == 1);
        if (k == 2)
            cr_expect_eq(strlen(back.payload), n);
        else
            cr_expect_gt(strlen(back.payload), max / 3, "kind %zu keeps too little", k);
        bt_msg_release(&back);
        bt_msg_release(&dl);
        free(bytes);
        free(payload);
    }
}

Test(codec, errstr_is_one_line_of_valid_text_at_any_size)
{
    static const char input[] =
        "{\"v\":1,\"type\":\"\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\\n\xe2\x82\xac\"}";
    struct bt_msg msg;
    char errstr[80];

    for (size_t size = 1; size <= sizeof(errstr); size++) {
        json_t *check;

        memset(errstr, 'Z', sizeof(errstr));
        cr_assert_eq(bt_codec_decode(input, strlen(input), LIMIT, &msg, errstr, size),
                     BT_EINVALMSG);
        cr_assert_lt(strlen(errstr), size);
        cr_expect_null(strchr(errstr, '\n'));
        check = json_string(errstr); /* NULL unless valid UTF-8 */
        cr_expect(check, "errstr of size %zu is not valid UTF-8", size);
        json_decref(check);
    }
    cr_expect_str_eq(errstr,
                     "type: unknown message type \"\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
                     "\xc3\xa9\\u000a\xe2\x82\xac\"");
    cr_expect_eq(bt_codec_decode(input, strlen(input), LIMIT, &msg, NULL, 0),
                 BT_EINVALMSG);
    cr_expect_eq(bt_codec_decode(NULL, 0, LIMIT, &msg, errstr, sizeof(errstr)),
                 BT_EINVALMSG);
}

Test(codec, release_accepts_null_and_zeroed_messages)
{
    struct bt_msg msg;

    memset(&msg, 0, sizeof(msg));
    bt_msg_release(NULL);
    bt_msg_release(&msg);
    bt_msg_release(&msg);
    cr_expect(is_zeroed(&msg));
}

/* ---- allocation failures, the way jansson's test_chaos.c does them ----
 * From the Nth allocation on, every one fails, as when memory runs out. Failing
 * only the Nth and letting later ones succeed is not survivable with jansson
 * 2.14: lex_save() ignores a failed growth of the lexer's token buffer, so a
 * string loses a byte, a number a digit, and a string whose closing quote was
 * dropped is decoded past its buffer (heap corruption). That is jansson issue
 * #362, unfixed upstream; nothing the codec can see or undo. Even when every
 * later allocation fails too, a number token that outgrows that buffer trips
 * jansson's assert(c == d) in lex_unget_unsave() and aborts (Debian builds keep
 * asserts): the case below starts with a 19-digit seq, the first token longer
 * than the buffer's initial 16 bytes, so it is left out of the loop. */
static const char *const jansson_aborts[] = {"largest_integers", NULL};

static bool aborts_in_jansson(const char *name)
{
    for (const char *const *n = jansson_aborts; *n; n++) {
        if (strcmp(*n, name) == 0)
            return true;
    }
    return false;
}

static unsigned long chaos_count, chaos_fail_at;
static long chaos_live;

static void *chaos_malloc(size_t size)
{
    void *p;

    if (++chaos_count >= chaos_fail_at && chaos_fail_at)
        return NULL;
    p = malloc(size);
    if (p)
        chaos_live++;
    return p;
}

static void chaos_free(void *p)
{
    if (p)
        chaos_live--;
    free(p);
}

static void chaos_arm(unsigned long fail_at)
{
    chaos_count = 0;
    chaos_fail_at = fail_at;
    chaos_live = 0;
}

Test(codec, decode_survives_every_failed_allocation_without_leaks)
{
    const char *dir = CASES_DIR "/valid";
    size_t count, len, n, failures = 0;
    char **names = case_names(dir, &count);

    json_set_alloc_funcs(chaos_malloc, chaos_free);
    for (size_t i = 0; i < count; i++) {
        char *input = case_input(dir, names[i], &len);
        char errstr[256];
        struct bt_msg msg;
        unsigned long total;
        char *want, *got;

        if (aborts_in_jansson(names[i])) {
            free(input);
            continue;
        }
        chaos_arm(0);
        cr_assert_eq(bt_codec_decode(input, len, LIMIT, &msg, errstr, sizeof(errstr)), 0,
                     "%s: %s", names[i], errstr);
        total = chaos_count;
        want = bt_codec_encode(&msg, &n);
        bt_msg_release(&msg);
        cr_assert_eq(chaos_live, 0, "%s: leaks without failures", names[i]);
        for (unsigned long k = 1; k <= total; k++) {
            int rc;

            chaos_arm(k);
            rc = bt_codec_decode(input, len, LIMIT, &msg, errstr, sizeof(errstr));
            cr_expect_neq(rc, 0, "%s: allocations from %lu on failed, decode succeeded",
                          names[i], k);
            if (rc == 0) {
                got = bt_codec_encode(&msg, NULL);
                cr_expect(got && strcmp(got, want) == 0, "%s: and the result differs",
                          names[i]);
                free(got);
                bt_msg_release(&msg);
            } else {
                /* jansson reports some failures as syntax errors ("invalid
                 * token" when it cannot allocate a string): misfiled, but an
                 * error */
                failures += rc == BT_ENOMEM;
                cr_expect(rc == BT_ENOMEM || rc == BT_EINVALMSG,
                          "%s: allocation %lu failed, decode returned %s", names[i], k,
                          bt_err_name(rc));
                cr_expect(is_zeroed(&msg), "%s: allocation %lu: msg not released",
                          names[i], k);
            }
            cr_expect_eq(chaos_live, 0, "%s: allocation %lu failed: %ld blocks leaked",
                         names[i], k, chaos_live);
        }
        free(want);
        free(input);
    }
    json_set_alloc_funcs(malloc, free);
    cr_expect_gt(failures, count * 4, "allocation failures rarely surfaced as BT_ENOMEM");
    free_names(names);
}

Test(codec, the_oom_error_is_enomem_and_says_so)
{
    static const char input[] = "{\"v\":1,\"type\":\"cancel\",\"id\":\"wf\"}";
    struct bt_msg msg;
    char errstr[64];

    json_set_alloc_funcs(chaos_malloc, chaos_free);
    chaos_arm(1);
    cr_expect_eq(
        bt_codec_decode(input, strlen(input), LIMIT, &msg, errstr, sizeof(errstr)),
        BT_ENOMEM);
    cr_expect_str_eq(errstr, "<root>: out of memory");
    json_set_alloc_funcs(malloc, free);
}

Test(codec, building_a_dead_letter_survives_failed_allocations)
{
    struct bt_msg msg;
    unsigned long total;

    json_set_alloc_funcs(chaos_malloc, chaos_free);
    chaos_arm(0);
    cr_assert_eq(bt_codec_dead_letter(&msg, "r", "t", 0, 0, bin_key, sizeof(bin_key),
                                      bin_payload, sizeof(bin_payload)),
                 0);
    total = chaos_count;
    bt_msg_release(&msg);
    cr_assert_eq(total, 4);
    for (unsigned long k = 1; k <= total; k++) {
        chaos_arm(k);
        cr_expect_eq(bt_codec_dead_letter(&msg, "r", "t", 0, 0, bin_key, sizeof(bin_key),
                                          bin_payload, sizeof(bin_payload)),
                     BT_ENOMEM);
        cr_expect(is_zeroed(&msg));
        cr_expect_eq(chaos_live, 0, "allocation %lu failed: leak", k);
    }
    json_set_alloc_funcs(malloc, free);
}
