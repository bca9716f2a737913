/* Search attributes and `baton list --query` against a real stack: 1,000
 * instances that set attributes from their input (bt_upsert_attributes), a
 * query that must return exactly the matching ones, page by page with
 * --after, and the refusals of a query that cannot be read or attributes a
 * workflow may not set. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stack.h"

static struct bt_stack stack;

static void setup(void)
{
    cr_assert_eq(bt_stack_start(&stack, NULL), 0, "cannot start the stack");
    cr_assert_gt(bt_stack_worker(&stack, "flows", NULL), 0);
}

static void teardown(void)
{
    bt_stack_stop(&stack);
}

static const char *const brands[] = {"acme", "globex", "initech"};

/* Adds each id `baton list ... --json` printed in out to seen (id -> count);
 * returns how many lines it read, and the cursor of the next page into
 * cursor ("" when it printed none). With last (40 bytes), checks that the
 * rows come newest first ("created") after *last, and moves it on. */
static int collect(char *out, json_t *seen, char *cursor, char *last)
{
    const char *more = strstr(out, "--after ");
    int lines = 0;

    cursor[0] = '\0';
    if (more)
        sscanf(more + 8, "%63s", cursor);
    for (char *line = strtok(out, "\n"); line; line = strtok(NULL, "\n")) {
        json_t *row = json_loads(line, 0, NULL);
        const char *id = json_string_value(json_object_get(row, "id"));
        const char *created = json_string_value(json_object_get(row, "created"));
        if (id && last) {
            cr_assert(created && strcmp(created, last) <= 0,
                      "%s created %s comes after %s", id, created ? created : "?", last);
            snprintf(last, 40, "%s", created);
        }
        if (id) {
            json_object_set_new(
                seen, id,
                json_integer(json_integer_value(json_object_get(seen, id)) + 1));
            lines++;
        }
        json_decref(row);
    }
    return lines;
}

Test(query, a_query_over_a_thousand_instances_returns_exactly_the_matching_ones,
     .init = setup, .fini = teardown, .timeout = 180)
{
    static char out[1 << 21];
    enum { N = 1000 };
    int want = 0;
    char id[32], cursor[64];

    for (int i = 0; i < N; i++) {
        snprintf(id, sizeof(id), "brand-%d", i);
        json_t *attrs = json_pack("{s:s, s:i, s:b}", "brand", brands[i % 3], "tier",
                                  i % 5, "vip", i % 7 == 0);
        cr_assert_eq(
            bt_stack_start_wf(&stack, "tagged", id, json_pack("{s:o}", "attrs", attrs)),
            0);
        want += i % 3 == 0 && i % 5 >= 3;
    }
    struct bt_stack_results r;
    bt_stack_results(&stack, &r, N, 120000);
    cr_assert_eq(r.distinct, N);
    json_decref(r.by_id);

    /* one page holding all */
    json_t *seen = json_object();
    cr_assert_eq(BT_STACK_BATON(&stack, out, "list", "--query",
                                "type=tagged AND status=completed AND brand=\"acme\" AND "
                                "tier>=3 AND stage=done",
                                "--limit", "100000", "--json"),
                 0, "%s", out);
    cr_assert_eq(collect(out, seen, cursor, NULL), want);
    const char *k;
    json_t *v;
    json_object_foreach(seen, k, v)
    {
        int i = atoi(k + strlen("brand-"));
        cr_assert(i % 3 == 0 && i % 5 >= 3, "%s does not match", k);
    }
    json_decref(seen);

    /* the same set a page of 50 at a time, each instance once */
    seen = json_object();
    int pages = 0, total = 0;
    cursor[0] = '\0';
    do {
        int rc =
            cursor[0]
                ? BT_STACK_BATON(&stack, out, "list", "--query", "brand=acme AND tier>=3",
                                 "--limit", "50", "--json", "--after", cursor)
                : BT_STACK_BATON(&stack, out, "list", "--query", "brand=acme AND tier>=3",
                                 "--limit", "50", "--json");
        cr_assert_eq(rc, 0, "%s", out);
        int got = collect(out, seen, cursor, NULL);
        cr_log_info("page %d: %d rows, next %s", pages, got, cursor);
        total += got;
        pages++;
    } while (cursor[0] && pages < 100);
    cr_assert_eq(total, want, "pages gave %d rows", total);
    cr_assert_eq((int)json_object_size(seen), want, "a row came twice");
    cr_assert_geq(pages, want / 50);
    json_decref(seen);

    /* booleans, !=, and a name no instance has */
    seen = json_object();
    cr_assert_eq(BT_STACK_BATON(&stack, out, "list", "--query",
                                "vip=true AND brand!=globex", "--limit", "100000",
                                "--json"),
                 0, "%s", out);
    int vip = 0;
    for (int i = 0; i < N; i++)
        vip += i % 7 == 0 && i % 3 != 1;
    cr_assert_eq(collect(out, seen, cursor, NULL), vip);
    json_decref(seen);
    cr_assert_eq(
        BT_STACK_BATON(&stack, out, "list", "--query", "region=\"eu west\"", "--json"), 0,
        "%s", out);
    cr_assert_null(strstr(out, "brand-"), "%s", out);

    /* what cannot be read is refused with the place it stopped */
    cr_assert_eq(BT_STACK_BATON(&stack, out, "list", "--query", "brand~acme"), 2, "%s",
                 out);
    cr_assert(strstr(out, "at \"brand~acme\""), "%s", out);
    cr_assert_eq(BT_STACK_BATON(&stack, out, "list", "--query", "started=2026-01-01"), 2,
                 "%s", out);
    cr_assert_eq(BT_STACK_BATON(&stack, out, "list", "--query", "brand=\"acme"), 2, "%s",
                 out);
}

Test(query, pages_come_newest_first_over_every_shard, .fini = teardown, .timeout = 120)
{
    static char out[1 << 18];
    enum { N = 240, SHARDS = 8 };
    char id[32], cursor[64] = "", last[40] = "~"; /* after every date */
    json_t *seen = json_object();
    struct bt_stack_results r;
    int pages = 0, total = 0;

    cr_assert_eq(bt_stack_start_sharded(&stack, NULL, SHARDS), 0);
    cr_assert_gt(bt_stack_worker(&stack, "flows", NULL), 0);
    for (int i = 0; i < N; i++) {
        snprintf(id, sizeof(id), "order-%d", i);
        json_t *attrs = json_pack("{s:s}", "brand", brands[i % 3]);
        cr_assert_eq(
            bt_stack_start_wf(&stack, "tagged", id, json_pack("{s:o}", "attrs", attrs)),
            0);
    }
    bt_stack_results(&stack, &r, N, 60000);
    cr_assert_eq(r.distinct, N);
    json_decref(r.by_id);
    /* pages of 7: the shards' indexes merged, not one shard after another */
    do {
        int rc = cursor[0]
                     ? BT_STACK_BATON(&stack, out, "list", "--limit", "7", "--json",
                                      "--after", cursor)
                     : BT_STACK_BATON(&stack, out, "list", "--limit", "7", "--json");
        cr_assert_eq(rc, 0, "%s", out);
        total += collect(out, seen, cursor, last);
        pages++;
    } while (cursor[0] && pages < 100);
    cr_assert_eq(total, N, "the pages gave %d rows of %d", total, N);
    cr_assert_eq((int)json_object_size(seen), N, "a row came twice");
    json_decref(seen);
}

Test(query, attributes_a_workflow_may_not_set_fail_it_with_the_reason, .init = setup,
     .fini = teardown, .timeout = 60)
{
    cr_assert_eq(bt_stack_start_wf(&stack, "tagged", "bad",
                                   json_pack("{s:{s:i}}", "attrs", "status", 1)),
                 0);
    struct bt_stack_results r;
    bt_stack_results(&stack, &r, 1, 30000);
    json_t *res = json_object_get(r.by_id, "bad");
    cr_assert_str_eq(json_string_value(json_object_get(res, "status")), "failed");
    json_t *err = json_object_get(res, "error");
    cr_assert_str_eq(json_string_value(json_object_get(err, "type")),
                     "InvalidSearchAttributes");
    cr_assert(strstr(json_string_value(json_object_get(err, "message")), "status"));
    json_decref(r.by_id);
}
