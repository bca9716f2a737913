#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "jsonw.h"

/* The writer must produce jansson's own compact text, byte for byte. */
static void expect_same_as_jansson(const char *text)
{
    json_error_t jerr;
    json_t *v = json_loads(text, JSON_DECODE_ANY, &jerr);
    struct bt_jw w = {0};
    char *want, *got;

    cr_assert_not_null(v, "bad test input %s: %s", text, jerr.text);
    want = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    bt_jw_value(&w, v);
    got = bt_jw_finish(&w, NULL);
    cr_assert_not_null(got);
    cr_expect_str_eq(got, want, "for %s", text);
    free(got);
    free(want);
    json_decref(v);
}

Test(jsonw, values_are_written_as_jansson_writes_them)
{
    static const char *const cases[] = {
        "null",
        "true",
        "false",
        "0",
        "-1",
        "9223372036854775807",
        "-9223372036854775808",
        "1.5",
        "3.0",
        "1e300",
        "-0.0",
        "\"\"",
        "\"plain\"",
        "\"\\\"q\\\" \\\\ / \\b\\f\\n\\r\\t \\u0001 \\u001f \\u007f\"",
        "\"\\u00e9 \\u20ac \\ud83d\\ude00 \\u2028\"",
        "{}",
        "[]",
        "{\"b\":1,\"a\":[1,2,{\"c\":null}],\"\\u0007\":\"k\"}",
        "[[[[[]]]],{\"x\":{\"y\":{\"z\":[true,false,0.25]}}}]",
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        expect_same_as_jansson(cases[i]);
}

Test(jsonw, bytes_that_are_not_utf8_become_replacement_characters)
{
    struct bt_jw w = {0};
    char *got;
    json_t *check;

    bt_jw_string(&w,
                 "a\xff"
                 "b\xc3",
                 4);
    got = bt_jw_finish(&w, NULL);
    cr_assert_not_null(got);
    cr_expect_str_eq(got, "\"a\\uFFFDb\\uFFFD\"");
    check = json_loads(got, JSON_DECODE_ANY, NULL);
    cr_expect_not_null(check, "the text is JSON");
    json_decref(check);
    free(got);
}

static char *pairs(const char *fmt, ...)
{
    struct bt_jw w = {0};
    va_list ap;

    bt_jw_lit(&w, "{");
    va_start(ap, fmt);
    bt_jw_pairs(&w, true, fmt, ap);
    va_end(ap);
    bt_jw_lit(&w, "}");
    return bt_jw_finish(&w, NULL);
}

/* Same text as json_dumps(json_pack(fmt, ...)) for the formats history uses. */
Test(jsonw, pairs_follow_json_pack_formats)
{
    json_t *input = json_pack("{s:i, s:[s]}", "v", 7, "l", "x");
    json_t *packed = json_pack("{s:s, s:I, s:i, s:b, s:O, s:s*, s:O?}", "ev", "done",
                               "seq", (json_int_t)1 << 40, "attempt", -3, "ok", 1,
                               "input", input, "parent", NULL, "error", NULL);
    char *want = json_dumps(packed, JSON_COMPACT);
    char *got = pairs("{s:s, s:I, s:i, s:b, s:O, s:s*, s:O?}", "ev", "done", "seq",
                      (json_int_t)1 << 40, "attempt", -3, "ok", 1, "input", input,
                      "parent", NULL, "error", NULL);

    cr_assert_not_null(got);
    cr_expect_str_eq(got, want);
    free(got);
    /* a left-out first pair leaves no comma behind */
    got = pairs("{s:s*, s:b}", "a", NULL, "b", 0);
    cr_expect_str_eq(got, "{\"b\":false}");
    free(got);
    got = pairs("{s:O*, s:s?}", "a", NULL, "b", NULL);
    cr_expect_str_eq(got, "{\"b\":null}");
    free(got);
    free(want);
    json_decref(packed);
    json_decref(input);
}

Test(jsonw, an_unknown_format_fails_the_text)
{
    cr_expect_null(pairs("{s:f}", "x", 1.0));
}
