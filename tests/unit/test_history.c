/* Packed history records (history.h): what unpacks is the record as it was,
 * a packed record is never longer, and the marks stay what they were (records
 * in Redis depend on them). */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "history.h"

static char *round_trip(const char *rec, size_t *packed)
{
    size_t len = strlen(rec);
    char *buf = malloc(len + 1), *out;

    *packed = bt_history_pack(buf, rec, len);
    cr_assert_leq(*packed, len, "packing made %s longer", rec);
    out = bt_history_unpack(buf, *packed);
    free(buf);
    cr_assert_not_null(out, "%s does not unpack", rec);
    return out;
}

Test(history, a_record_unpacks_to_what_it_was)
{
    static const char *const recs[] = {
        "{\"ev\":\"activity_scheduled\",\"seq\":0,\"attempt\":1,\"name\":\"inc\","
        "\"queue\":\"default\",\"input\":{\"v\":0,\"k\":3},\"deadline\":1796424321521,"
        "\"ts\":1796424261521,\"worker\":\"vm:19820\"}",
        "{\"ev\":\"finished\",\"status\":\"completed\",\"result\":{\"v\":3},\"error\":"
        "null,"
        "\"ts\":1796424261528}",
        "{\"ev\":\"odd\",\"n\":-123456789,\"f\":1.000001,\"z\":0123456,\"big\":"
        "12345678901234567890123,\"max\":999999999999999999,\"s\":\"\\u0001 é\"}",
        "{}",
        "",
        "not json at all 1234567",
    };

    for (size_t i = 0; i < sizeof(recs) / sizeof(recs[0]); i++) {
        size_t packed;
        char *out = round_trip(recs[i], &packed);
        cr_expect_str_eq(out, recs[i]);
        free(out);
    }
}

Test(history, a_step_record_packs_to_a_third)
{
    const char *rec = "{\"ev\":\"activity_completed\",\"seq\":2,\"attempt\":1,\"name\":"
                      "\"inc\",\"result\":{\"v\":3,\"k\":3},\"ts\":1796424261528,"
                      "\"worker\":\"vm:19820\"}";
    size_t packed;
    char *out = round_trip(rec, &packed);

    cr_expect_leq(packed, strlen(rec) / 3 + 4, "%zu of %zu bytes", packed, strlen(rec));
    free(out);
}

Test(history, the_marks_are_pinned)
{
    /* mark 1 is the first name of the table, 0x1e a number: written by
     * every earlier version, read by every later one */
    const char packed[] = "\x01"
                          "7\x1e\x80\x01}";
    char *out = bt_history_unpack(packed, sizeof(packed) - 1);

    cr_assert_not_null(out);
    cr_expect_str_eq(out, "{\"ev\":\"activity_scheduled\",\"seq\":7128}");
    free(out);
}

Test(history, a_raw_control_byte_is_kept_as_it_is_and_bad_marks_refused)
{
    const char rec[] = "a\x01z 1234567";
    char buf[16], *out;

    cr_expect_eq(bt_history_pack(buf, rec, strlen(rec)), strlen(rec) + 1);
    cr_assert_not_null(out = bt_history_unpack(buf, strlen(rec) + 1));
    cr_expect_str_eq(out, rec);
    free(out);
    cr_expect_null(bt_history_unpack("\x1e\x80", 2), "a cut number");
    cr_expect_null(bt_history_unpack("{\x00}", 3), "no mark 0");
}
