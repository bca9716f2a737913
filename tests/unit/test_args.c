/* The flag table parser (common/args.c) in-process: each flag form, the
 * checks of numbers and durations, positionals. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "args.h"
#include "err.h"

static const char *name_v, *mode_v;
static int64_t count_v, wait_v;
static bool quick_v;

static const struct bt_arg test_args[] = {
    {"name", 'n', BT_ARG_STR, &name_v, "NAME", .help = "a name"},
    {"count", 0, BT_ARG_INT, &count_v, "N", "1", 1, 100, .help = "how many"},
    {"wait", 0, BT_ARG_DURATION, &wait_v, "DURATION", NULL, 1, 3600000,
     .help = "how long"},
    {"mode", 0, BT_ARG_CHOICE, &mode_v, "M", "a", .choices = "a|bb|c", .help = "mode"},
    {"quick", 'q', BT_ARG_BOOL, &quick_v, .help = "fast"},
    {NULL},
};

static const struct bt_cmd test_cmd = {
    .name = "baton test",
    .synopsis = "ID [flags]",
    .about = "A command for the tests.",
    .args = test_args,
    .min_pos = 1,
    .max_pos = 2,
};

/* Parses the words of line (at most 15) as argv[1..]. */
static int parse(const char *line, char **pos, int *n_pos)
{
    static char buf[512], prog[] = "test";
    static char *argv[16];
    int argc = 0;

    name_v = mode_v = NULL;
    count_v = wait_v = 0;
    quick_v = false;
    snprintf(buf, sizeof(buf), "%s", line);
    argv[argc++] = prog;
    for (char *w = strtok(buf, " "); w && argc < 15; w = strtok(NULL, " "))
        argv[argc++] = w;
    argv[argc] = NULL;
    return bt_args_parse(&test_cmd, argc, argv, pos, n_pos);
}

Test(args, takes_name_equals_value_and_name_space_value_alike)
{
    char *pos[2];
    int n;

    cr_assert_eq(parse("x --name=a --count 7 --wait=1.5 --mode bb -q", pos, &n), 0);
    cr_assert_str_eq(name_v, "a");
    cr_assert_eq(count_v, 7);
    cr_assert_eq(wait_v, 1500);
    cr_assert_str_eq(mode_v, "bb");
    cr_assert(quick_v);
    cr_assert_eq(n, 1);
    cr_assert_str_eq(pos[0], "x");
    cr_assert_eq(parse("--name a --count=7 x y -n b", pos, &n), 0, "flags anywhere");
    cr_assert_str_eq(name_v, "b", "the last one wins");
    cr_assert_eq(count_v, 7);
    cr_assert_eq(n, 2);
    cr_assert_str_eq(pos[1], "y");
}

Test(args, refuses_bad_numbers_durations_and_choices)
{
    char *pos[2];
    int n;

    cr_assert_eq(parse("x --count abc", pos, &n), BT_EINVAL);
    cr_assert_eq(parse("x --count -5", pos, &n), BT_EINVAL, "a value may start with -");
    cr_assert_eq(parse("x --count 101", pos, &n), BT_EINVAL);
    cr_assert_eq(parse("x --count 5x", pos, &n), BT_EINVAL);
    cr_assert_eq(parse("x --count=", pos, &n), BT_EINVAL);
    cr_assert_eq(parse("x --wait abc", pos, &n), BT_EINVAL);
    cr_assert_eq(parse("x --wait -3", pos, &n), BT_EINVAL);
    cr_assert_eq(parse("x --wait 0", pos, &n), BT_EINVAL, "below its minimum");
    cr_assert_eq(parse("x --wait 2h", pos, &n), BT_EINVAL, "above its maximum");
    cr_assert_eq(parse("x --mode b", pos, &n), BT_EINVAL);
    cr_assert_eq(parse("x --nope", pos, &n), BT_EINVAL);
    cr_assert_eq(parse("x --count", pos, &n), BT_EINVAL, "a missing value");
    cr_assert_eq(parse("", pos, &n), BT_EINVAL, "too few positionals");
    cr_assert_eq(parse("x y z", pos, &n), BT_EINVAL, "too many positionals");
}

Test(args, help_and_version_say_so_and_stop)
{
    char *pos[2];
    int n;

    cr_assert_eq(parse("--help", pos, &n), 1, "no positional needed for help");
    cr_assert_eq(parse("x -h", pos, &n), 1);
    cr_assert_eq(parse("--version", pos, &n), 1);
    cr_assert_str_eq(bt_args_version(), BT_VERSION);
}

Test(args, help_lists_every_flag_with_its_default)
{
    char buf[4096] = "";
    FILE *f = fmemopen(buf, sizeof(buf) - 1, "w");

    bt_args_help(&test_cmd, f);
    fclose(f);
    cr_assert(strstr(buf, "usage: baton test ID [flags]"), "%s", buf);
    cr_assert(strstr(buf, "A command for the tests."), "%s", buf);
    cr_assert(strstr(buf, "-n, --name NAME"), "%s", buf);
    cr_assert(strstr(buf, "--count N") && strstr(buf, "[default: 1]"), "%s", buf);
    cr_assert(strstr(buf, "(a|bb|c)"), "%s", buf);
    cr_assert(strstr(buf, "--help") && strstr(buf, "--version"), "%s", buf);
}

Test(args, durations_are_seconds_or_carry_a_unit)
{
    int64_t ms;

    cr_assert_eq(bt_args_duration("30", &ms), 0);
    cr_assert_eq(ms, 30000);
    cr_assert_eq(bt_args_duration("0.25", &ms), 0);
    cr_assert_eq(ms, 250);
    cr_assert_eq(bt_args_duration("500ms", &ms), 0);
    cr_assert_eq(ms, 500);
    cr_assert_eq(bt_args_duration("5m", &ms), 0);
    cr_assert_eq(ms, 300000);
    cr_assert_eq(bt_args_duration("2h", &ms), 0);
    cr_assert_eq(ms, 7200000);
    cr_assert_eq(bt_args_duration("1d", &ms), 0);
    cr_assert_eq(ms, 86400000);
    cr_assert_eq(bt_args_duration("", &ms), BT_EINVAL);
    cr_assert_eq(bt_args_duration("-3", &ms), BT_EINVAL);
    cr_assert_eq(bt_args_duration("5 m", &ms), BT_EINVAL);
    cr_assert_eq(bt_args_duration("5w", &ms), BT_EINVAL);
    cr_assert_eq(bt_args_duration("inf", &ms), BT_EINVAL);
    cr_assert_eq(bt_args_duration("nan", &ms), BT_EINVAL);
    cr_assert_eq(bt_args_duration("1e30", &ms), BT_EINVAL);
}
