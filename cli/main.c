/* The `baton` command: loads the settings, finds the command in the table
 * below and runs it. Each command group lives in cli/<group>.c (contract in
 * cli.h); adding one is adding a row. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "config.h"
#include "log.h"

struct command {
    const char *name;
    int (*run)(struct bt_config *cfg, int argc, char **argv);
    const char *help;
};

/* one row per command, however long its help */
/* clang-format off */
static const struct command commands[] = {
    {"dev", bt_cli_dev, "run Kafka (embedded), Redis, the scheduler and a worker here"},
    {"bench", bt_cli_bench, "measure throughput, latency and cost per step"},
    {"start", bt_cli_start, "start a workflow: start TYPE [flags]"},
    {"describe", bt_cli_describe, "show where an instance stands: describe ID [--json]"},
    {"history", bt_cli_history, "print an instance's audit log: history ID [--json] [--follow] [--run N]"},
    {"list", bt_cli_list, "list instances: list [--status S] [--type T] [--limit N] [--json]"},
    {"unblock", bt_cli_unblock, "replay a blocked instance after a compatible deploy: unblock ID | --query Q"},
    {"delete", bt_cli_delete, "archive a finished instance to <prefix>.archive and delete it now: delete ID | --query Q"},
    {"schedule", bt_cli_schedule, "cron schedules: schedule add|list|pause|resume|trigger|delete"},
    {"replay-check", bt_cli_replay_check,
     "replay in-flight instances against new code: replay-check --plugin new.so [--type T]"},
    {"stats", bt_cli_stats, "summary from Redis: stats [--watch] [--json]"},
    {"signal-with-start", bt_cli_signal_with_start, "signal an instance, starting it first when it is not running: signal-with-start TYPE --id ID --signal NAME"},
    {"signal", bt_cli_signal, "send a signal: signal ID NAME [--payload JSON]"},
    {"cancel", bt_cli_cancel, "ask an instance to cancel (its code may clean up): cancel ID [--reason TEXT]"},
    {"terminate", bt_cli_terminate, "stop an instance at once: terminate ID [--reason TEXT]"},
    {"pause", bt_cli_pause, "stop an instance's steps and timers until resumed: pause ID"},
    {"resume", bt_cli_resume, "resume a paused instance: resume ID"},
    {"reset", bt_cli_reset, "a new run from a step of the journal: reset ID --to SEQ | --to-last-failure"},
    {"ratelimit", bt_cli_ratelimit, "rate limits, tuned live: ratelimit set|get|list"},
    {"concurrency", bt_cli_concurrency, "concurrency limits, tuned live: concurrency set|get|list"},
    {"dlq", bt_cli_dlq, "dead letters as a working queue: dlq list|show|redrive"},
    {"ui", bt_cli_ui, "serve the web view and its JSON API: ui [--listen ADDR:PORT] [--token T] [--read-only]"},
};
/* clang-format on */

static void usage(FILE *f)
{
    fprintf(f, "usage: baton [settings] <command> [arguments]\n\nCommands:\n");
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].help);
    fprintf(f, "  %-10s %s\n", "help", "show this text");
    fprintf(f, "  %-10s %s\n\n", "--version", "print the version");
    fprintf(f, "`baton <command> --help` shows a command's own flags and defaults. "
               "Settings go\nanywhere on the line.\n\n");
    bt_config_usage(f);
}

static int is_help(const char *arg)
{
    return !strcmp(arg, "help") || !strcmp(arg, "--help") || !strcmp(arg, "-h");
}

int main(int argc, char **argv)
{
    struct bt_config cfg;
    char errstr[512];
    int level, ret = BT_EXIT_USAGE;

    if (bt_config_load(&cfg, &argc, argv, errstr, sizeof(errstr))) {
        fprintf(stderr, "baton: %s\n", errstr);
        goto out;
    }
    /* bt_config_load refused a level it does not know */
    level = bt_log_parse_level(cfg.log_level);
    bt_log_setup("baton", (enum bt_log_level)level, cfg.log_json);

    if (argc < 2) {
        usage(stderr);
        goto out;
    }
    if (is_help(argv[1])) {
        usage(stdout);
        ret = BT_EXIT_OK;
        goto out;
    }
    if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "version")) {
        printf("baton %s\n", bt_args_version());
        ret = BT_EXIT_OK;
        goto out;
    }
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
        if (!strcmp(argv[1], commands[i].name)) {
            ret = commands[i].run(&cfg, argc - 1, argv + 1);
            goto out;
        }
    }
    fprintf(stderr, "baton: unknown command \"%s\" (see `baton help`)\n", argv[1]);
out:
    bt_config_release(&cfg);
    return ret;
}
