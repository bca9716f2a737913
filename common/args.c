/* Command flags from a table, through getopt_long (args.h). */
#define _GNU_SOURCE /* getopt_long's permutation is GNU's */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "config.h"
#include "err.h"

#ifndef BT_VERSION
#error "BT_VERSION (PROJECT_VERSION) must be defined by the build"
#endif

#define MAX_ARGS 48

/* getopt_long's answers for the flags every command has */
enum { OPT_HELP = 'h', OPT_VERSION = 1000, OPT_FIRST = 1001 };

const char *bt_args_version(void)
{
    return BT_VERSION;
}

int bt_args_duration(const char *text, int64_t *ms)
{
    static const struct {
        const char *unit;
        double ms;
    } units[] = {{"", 1000},   {"ms", 1},      {"s", 1000},
                 {"m", 60000}, {"h", 3600000}, {"d", 86400000}};
    char *end;
    double x;

    /* strtod would take "inf", "nan", hex and leading spaces */
    if (!strchr("0123456789.", text[0]))
        return BT_EINVAL;
    errno = 0;
    x = strtod(text, &end);
    if (errno || end == text || !isfinite(x))
        return BT_EINVAL;
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        /* 100 years at most: no overflow once added to a time in ms */
        if (!strcmp(end, units[i].unit) && x * units[i].ms <= 3155760000000.0) {
            *ms = (int64_t)llround(x * units[i].ms);
            return 0;
        }
    }
    return BT_EINVAL;
}

static int set_int(const struct bt_cmd *cmd, const struct bt_arg *a, const char *v)
{
    char *end;
    long long x;

    errno = 0;
    x = strtoll(v, &end, 10);
    if (errno || end == v || *end || v[0] == ' ') {
        fprintf(stderr, "%s: --%s: \"%s\" is not an integer\n", cmd->name, a->name, v);
        return BT_EINVAL;
    }
    if (x < a->min || x > a->max) {
        fprintf(stderr, "%s: --%s: %lld is out of range: from %lld to %lld\n", cmd->name,
                a->name, x, (long long)a->min, (long long)a->max);
        return BT_EINVAL;
    }
    *(int64_t *)a->value = x;
    return 0;
}

static int set_duration(const struct bt_cmd *cmd, const struct bt_arg *a, const char *v)
{
    int64_t ms;

    if (v[0] == '-') {
        fprintf(stderr, "%s: --%s: %s is negative: a duration is a time from now\n",
                cmd->name, a->name, v);
        return BT_EINVAL;
    }
    if (bt_args_duration(v, &ms)) {
        fprintf(stderr,
                "%s: --%s: \"%s\" is not a duration: seconds (30, 1.5) or a number "
                "and a unit (500ms, 30s, 5m, 2h, 1d)\n",
                cmd->name, a->name, v);
        return BT_EINVAL;
    }
    if (ms < a->min || ms > a->max) {
        fprintf(stderr, "%s: --%s: %s is out of range: from %lld ms to %lld ms\n",
                cmd->name, a->name, v, (long long)a->min, (long long)a->max);
        return BT_EINVAL;
    }
    *(int64_t *)a->value = ms;
    return 0;
}

static bool is_choice(const char *choices, const char *v)
{
    size_t len = strlen(v);

    for (const char *p = choices; p && *p;) {
        const char *bar = strchr(p, '|');
        size_t n = bar ? (size_t)(bar - p) : strlen(p);
        if (n == len && !strncmp(p, v, n))
            return true;
        p = bar ? bar + 1 : NULL;
    }
    return false;
}

static int set_value(const struct bt_cmd *cmd, const struct bt_arg *a, const char *v)
{
    switch (a->type) {
    case BT_ARG_BOOL:
        *(bool *)a->value = true;
        return 0;
    case BT_ARG_CHOICE:
        if (!is_choice(a->choices, v)) {
            fprintf(stderr, "%s: --%s: \"%s\" is not one of %s\n", cmd->name, a->name, v,
                    a->choices);
            return BT_EINVAL;
        }
        *(const char **)a->value = v;
        return 0;
    case BT_ARG_STR:
        *(const char **)a->value = v;
        return 0;
    case BT_ARG_INT:
        return set_int(cmd, a, v);
    case BT_ARG_DURATION:
        return set_duration(cmd, a, v);
    }
    return BT_EINVAL;
}

/* The long options and short option string of cmd, with --help and --version. */
static size_t build_options(const struct bt_cmd *cmd, struct option *opts, char *shorts)
{
    size_t n = 0, ns = 0;

    shorts[ns++] = ':'; /* a missing value answers ':', not '?' */
    shorts[ns++] = 'h';
    for (const struct bt_arg *a = cmd->args; a && a->name; a++, n++) {
        BT_ASSERT(n < MAX_ARGS); /* the tables are ours: a longer one is a bug */
        int has_arg = a->type == BT_ARG_BOOL ? no_argument : required_argument;
        opts[n] = (struct option){a->name, has_arg, NULL, OPT_FIRST + (int)n};
        if (a->short_name) {
            shorts[ns++] = a->short_name;
            if (has_arg == required_argument)
                shorts[ns++] = ':';
        }
    }
    opts[n++] = (struct option){"help", no_argument, NULL, OPT_HELP};
    opts[n++] = (struct option){"version", no_argument, NULL, OPT_VERSION};
    opts[n] = (struct option){0};
    shorts[ns] = '\0';
    return n;
}

static const struct bt_arg *by_short(const struct bt_cmd *cmd, int c)
{
    for (const struct bt_arg *a = cmd->args; a && a->name; a++)
        if (a->short_name && a->short_name == c)
            return a;
    return NULL;
}

/* What getopt_long could not take: an unknown flag or a missing value. */
static int refuse(const struct bt_cmd *cmd, int c, char **argv)
{
    const char *arg = argv[optind - 1];

    if (c == ':')
        fprintf(stderr, "%s: %s needs a value\n", cmd->name, arg);
    else if (optopt)
        fprintf(stderr, "%s: unknown flag -%c\n", cmd->name, optopt);
    else
        fprintf(stderr, "%s: unknown flag %s\n", cmd->name, arg);
    fprintf(stderr, "  (`%s --help` lists its flags)\n", cmd->name);
    return BT_EINVAL;
}

static int positionals(const struct bt_cmd *cmd, int argc, char **argv, char **pos,
                       int *n_pos)
{
    int n = argc - optind;

    if (n < cmd->min_pos || n > cmd->max_pos) {
        if (n > cmd->max_pos)
            fprintf(stderr, "%s: unexpected argument \"%s\"\n", cmd->name,
                    argv[optind + cmd->max_pos]);
        else
            fprintf(stderr, "%s: missing arguments\n", cmd->name);
        fprintf(stderr, "usage: %s %s\n  (`%s --help` says more)\n", cmd->name,
                cmd->synopsis, cmd->name);
        return BT_EINVAL;
    }
    for (int i = 0; i < n; i++)
        pos[i] = argv[optind + i];
    *n_pos = n;
    return 0;
}

int bt_args_parse(const struct bt_cmd *cmd, int argc, char **argv, char **pos, int *n_pos)
{
    struct option opts[MAX_ARGS + 3];
    char shorts[2 * MAX_ARGS + 4];
    const struct bt_arg *a;
    int c, ret;

    build_options(cmd, opts, shorts);
    *n_pos = 0;
    optind = 0; /* glibc: start afresh, whatever parsed before */
    opterr = 0;
    while ((c = getopt_long(argc, argv, shorts, opts, NULL)) != -1) {
        if (c == OPT_HELP) {
            bt_args_help(cmd, stdout);
            return 1;
        }
        if (c == OPT_VERSION) {
            printf("%s %s\n", cmd->name, BT_VERSION);
            return 1;
        }
        if (c >= OPT_FIRST)
            a = &cmd->args[c - OPT_FIRST];
        else if (!(a = by_short(cmd, c)))
            return refuse(cmd, c, argv);
        if ((ret = set_value(cmd, a, optarg)))
            return ret;
    }
    return positionals(cmd, argc, argv, pos, n_pos);
}

void bt_args_help(const struct bt_cmd *cmd, void *file)
{
    FILE *f = file;
    char left[64];

    fprintf(f, "usage: %s %s\n\n%s\n\nFlags:\n", cmd->name, cmd->synopsis, cmd->about);
    for (const struct bt_arg *a = cmd->args; a && a->name; a++) {
        if (a->short_name)
            snprintf(left, sizeof(left), "-%c, --%s %s", a->short_name, a->name,
                     a->meta ? a->meta : "");
        else
            snprintf(left, sizeof(left), "    --%s %s", a->name, a->meta ? a->meta : "");
        fprintf(f, "  %-30s %s", left, a->help);
        if (a->choices)
            fprintf(f, " (%s)", a->choices);
        if (a->def)
            fprintf(f, " [default: %s]", a->def);
        fprintf(f, "\n");
    }
    fprintf(f, "  %-30s %s\n  %-30s %s\n", "-h, --help", "show this help and exit",
            "    --version", "print the version and exit");
    if (cmd->more)
        cmd->more(f);
    if (cmd->settings && cmd->settings[0]) {
        fprintf(f, "\nSettings it reads (flag, environment variable, default; "
                   "`baton help` lists all):\n");
        bt_config_usage_of(f, cmd->settings);
    }
}
