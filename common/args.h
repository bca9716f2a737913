/* The command-line flags of one command, declared as a table and parsed with
 * getopt_long, so that every command of baton, baton-worker and
 * baton-scheduler takes --name=value and --name value alike, checks numbers
 * and durations with a message naming the flag, and answers --help (from the
 * same table) and --version. The settings of common/config.c (--redis,
 * --brokers, ...) are not declared here: bt_config_load() has taken them off
 * the command line before, and a command's help lists those it uses from
 * config.c's own table. */
#ifndef BT_ARGS_H
#define BT_ARGS_H

#include <stdbool.h>
#include <stdint.h>

enum bt_arg_type {
    BT_ARG_BOOL,     /* a switch: value is a bool *, set to true */
    BT_ARG_STR,      /* value is a const char **, borrowed from argv */
    BT_ARG_CHOICE,   /* like STR, one of choices ("a|b|c") */
    BT_ARG_INT,      /* value is an int64_t *, in [min, max] */
    BT_ARG_DURATION, /* value is an int64_t * in ms, in [min, max]: "30" or "1.5"
                      * (seconds), or a number and a unit: 500ms, 30s, 5m, 2h, 1d */
};

struct bt_arg {
    const char *name; /* the flag without its dashes */
    char short_name;  /* 0: none */
    enum bt_arg_type type;
    void *value;
    const char *meta; /* what the value is, in the help: "N", "ID" */
    const char *def;  /* the default, as the help shows it; NULL: none */
    int64_t min, max;
    const char *choices;
    const char *help;
};

struct bt_cmd {
    const char *name;            /* as typed: "baton start", "baton-worker" */
    const char *synopsis;        /* after the name: "TYPE [flags]"; lines joined by \n */
    const char *about;           /* one line: what it does */
    const struct bt_arg *args;   /* ends with a row whose name is NULL; may be NULL */
    const char *const *settings; /* config.c settings it reads, shown in its help;
                                  * NULL-terminated, may be NULL */
    int min_pos, max_pos;        /* positional arguments */
    /* more help after the flags, printed from a table of the command's own
     * (bench's workloads); NULL: none. file is a FILE *. */
    void (*more)(void *file);
};

/* Parses argv[1..argc) (argv[0] is the command) with getopt_long into the
 * values of cmd->args; the positional arguments, in order, into pos (room for
 * cmd->max_pos; borrowed from argv) and their count into *n_pos. getopt_long
 * permutes argv. Returns 0 when the command should run; 1 when argv asked
 * for --help or --version, which was printed on stdout; BT_EINVAL when argv
 * is wrong, having said why on stderr, naming the flag. Not thread safe
 * (getopt's globals). */
int bt_args_parse(const struct bt_cmd *cmd, int argc, char **argv, char **pos,
                  int *n_pos);

/* Prints cmd's help: usage, what it does, each flag with its default, the
 * settings it reads. file is a FILE *. */
void bt_args_help(const struct bt_cmd *cmd, void *file);

/* Parses a duration as BT_ARG_DURATION does (no range check) into *ms.
 * Returns 0 or BT_EINVAL. */
int bt_args_duration(const char *text, int64_t *ms);

/* The version every program prints for --version (PROJECT_VERSION). */
const char *bt_args_version(void);

#endif
