/* Every command of baton, baton-worker and baton-scheduler as a shell user
 * types it: --help on stdout with exit 0, --version, both flag forms, and
 * numbers and durations refused with exit 2 and a message naming the flag.
 * No service runs: what is checked happens before any is reached, and a
 * Redis address where nothing listens (exit 3) shows that parsing passed. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

static char home[64], env_home[128];

static void setup(void)
{
    snprintf(home, sizeof(home), "/tmp/bt-args-XXXXXX");
    cr_assert(mkdtemp(home));
    snprintf(env_home, sizeof(env_home), "BATON_HOME=%s", home);
}

static void teardown(void)
{
    char cmd[128];

    snprintf(cmd, sizeof(cmd), "rm -rf %s", home);
    cr_assert_eq(system(cmd), 0);
}

/* Runs BT_BIN_DIR/<prog> args... (NULL-terminated; the first word of line
 * is the program); its stdout alone into out when stdout_only, else stdout
 * and stderr. Returns its exit status. */
static int run(char *out, size_t n, bool stdout_only, const char *const *args)
{
    static int calls;
    char log[128], prog[256];
    const char *argv[24] = {
        "/bin/sh", "-c",
        stdout_only ? "exec \"$0\" \"$@\" 2>/dev/null" : "exec \"$0\" \"$@\" 2>&1", prog};
    const char *env[] = {env_home, NULL};
    int argc = 4, status;
    FILE *f;

    snprintf(prog, sizeof(prog), "%s/%s", BT_BIN_DIR, args[0]);
    for (args++; *args && argc < 23; args++)
        argv[argc++] = *args;
    argv[argc] = NULL;
    snprintf(log, sizeof(log), "%s/out-%d", home, calls++);
    status = bt_test_wait(bt_test_spawn(argv, env, log), 30000);
    out[0] = '\0';
    if ((f = fopen(log, "r"))) {
        out[fread(out, 1, n - 1, f)] = '\0';
        fclose(f);
    }
    return status;
}
#define RUN(out, ...)                                                                    \
    run((out), sizeof(out), false, (const char *const[]){__VA_ARGS__, NULL})
#define STDOUT(out, ...)                                                                 \
    run((out), sizeof(out), true, (const char *const[]){__VA_ARGS__, NULL})

/* Each command as typed, its help's first line. */
static const char *const commands[][3] = {
    {"baton", "start", "usage: baton start TYPE"},
    {"baton", "describe", "usage: baton describe ID"},
    {"baton", "history", "usage: baton history ID"},
    {"baton", "list", "usage: baton list"},
    {"baton", "signal", "usage: baton signal ID NAME"},
    {"baton", "cancel", "usage: baton cancel ID"},
    {"baton", "terminate", "usage: baton terminate ID"},
    {"baton", "pause", "usage: baton pause ID"},
    {"baton", "resume", "usage: baton resume ID"},
    {"baton", "reset", "usage: baton reset ID"},
    {"baton", "signal-with-start", "usage: baton signal-with-start TYPE"},
    {"baton", "delete", "usage: baton delete ID"},
    {"baton", "unblock", "usage: baton unblock ID"},
    {"baton", "stats", "usage: baton stats"},
    {"baton", "ratelimit", "usage: baton ratelimit set KEY"},
    {"baton", "concurrency", "usage: baton concurrency set KEY"},
    {"baton", "schedule", "usage: baton schedule add NAME"},
    {"baton", "dlq", "usage: baton dlq list"},
    {"baton", "replay-check", "usage: baton replay-check --plugin"},
    {"baton", "dev", "usage: baton dev"},
    {"baton", "bench", "usage: baton bench"},
    {"baton-worker", NULL, "usage: baton-worker"},
    {"baton-scheduler", NULL, "usage: baton-scheduler"},
};

Test(cli_args, every_command_prints_its_help_on_stdout_and_exits_zero, .init = setup,
     .fini = teardown, .timeout = 120)
{
    char out[16384];

    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
        const char *prog = commands[i][0], *cmd = commands[i][1];
        for (int form = 0; form < 2; form++) {
            const char *flag = form ? "-h" : "--help";
            int rc = cmd ? STDOUT(out, prog, cmd, flag) : STDOUT(out, prog, flag);
            cr_assert_eq(rc, 0, "%s %s %s: exit %d", prog, cmd ? cmd : "", flag, rc);
            cr_assert(!strncmp(out, commands[i][2], strlen(commands[i][2])),
                      "%s %s %s: %s", prog, cmd ? cmd : "", flag, out);
            cr_assert(strstr(out, "--version"), "%s", out);
        }
    }
    for (const char *const *sub = (const char *const[]){"add", "list", "pause", "resume",
                                                        "trigger", "delete", NULL};
         *sub; sub++) {
        cr_assert_eq(STDOUT(out, "baton", "schedule", *sub, "--help"), 0, "%s", *sub);
        cr_assert(strstr(out, "usage: baton schedule ") && strstr(out, *sub), "%s", out);
    }
    cr_assert_eq(STDOUT(out, "baton", "start", "--help"), 0);
    cr_assert(strstr(out, "--execution-timeout DURATION") && strstr(out, "[default:") &&
                  strstr(out, "--redis"),
              "flags with defaults, and the settings it reads: %s", out);
}

Test(cli_args, every_program_and_command_prints_the_version, .init = setup,
     .fini = teardown, .timeout = 120)
{
    char out[4096], want[128];

    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
        const char *prog = commands[i][0], *cmd = commands[i][1];
        int rc =
            cmd ? STDOUT(out, prog, cmd, "--version") : STDOUT(out, prog, "--version");
        cr_assert_eq(rc, 0, "%s %s", prog, cmd ? cmd : "");
        snprintf(want, sizeof(want), " %s\n", BT_VERSION);
        cr_assert(strstr(out, want), "%s %s: %s", prog, cmd ? cmd : "", out);
    }
    cr_assert_eq(STDOUT(out, "baton", "--version"), 0);
    snprintf(want, sizeof(want), "baton %s\n", BT_VERSION);
    cr_assert_str_eq(out, want);
}

/* A flag's value in both forms reaches the command: it goes on to Redis,
 * where nothing listens (exit 3), where a bad value stops it first (2). */
Test(cli_args, name_equals_value_and_name_space_value_are_alike, .init = setup,
     .fini = teardown, .timeout = 120)
{
    char out[4096];
    const char *nowhere = "--redis=127.0.0.1:1";

    cr_assert_eq(RUN(out, "baton", "list", "--limit=5", nowhere), 3, "%s", out);
    cr_assert_eq(RUN(out, "baton", "list", "--limit", "5", nowhere), 3, "%s", out);
    cr_assert_eq(RUN(out, "baton", "list", "--status=failed", "--type=x", nowhere), 3);
    cr_assert_eq(RUN(out, "baton", "history", "x", "--run=2", "--json", nowhere), 3);
    cr_assert_eq(RUN(out, "baton", "history", "--follow", "x", nowhere), 3, "%s", out);
    cr_assert_eq(RUN(out, "baton", "ratelimit", "set", "k", "5/s", "--burst=3", nowhere),
                 3, "%s", out);
    cr_assert_eq(RUN(out, "baton", "start", "t", "--id=x", "--at=+1m", nowhere), 3, "%s",
                 out);
    cr_assert_eq(RUN(out, "baton", "start", "t", "--id", "x", "--at", "+1m", nowhere), 3,
                 "%s", out);
}

Test(cli_args, bad_numbers_and_durations_exit_two_naming_the_flag, .init = setup,
     .fini = teardown, .timeout = 120)
{
    static const char *const cases[][6] = {
        {"--limit", "baton", "list", "--limit", "abc"},
        {"--limit", "baton", "list", "--limit", "-5"},
        {"--limit", "baton", "list", "--limit=0"},
        {"--execution-timeout", "baton", "start", "t", "--execution-timeout", "abc"},
        {"--execution-timeout", "baton", "start", "t", "--execution-timeout", "-3"},
        {"--execution-timeout", "baton", "start", "t", "--execution-timeout=0"},
        {"--timeout", "baton", "start", "t", "--timeout", "5 minutes"},
        {"--run", "baton", "history", "x", "--run", "first"},
        {"--sample", "baton", "replay-check", "--sample", "-1"},
        {"--burst", "baton", "ratelimit", "set", "k", "--burst=many"},
        {"--steps", "baton", "bench", "--steps", "0"},
        {"--limit", "baton", "dlq", "list", "--limit=-1"},
        {"--status", "baton", "list", "--status", "sleeping"},
        {"--overlap", "baton", "schedule", "add", "n", "--overlap=never"},
        {"--id", "baton", "start", "t", "--id"},
        {"--frobnicate", "baton", "describe", "x", "--frobnicate"},
        {"--bogus", "baton-scheduler", "--bogus"},
        {"--bogus", "baton-worker", "--bogus"},
        {"concurrency", "baton-worker", "--concurrency", "abc"},
    };
    char out[4096];

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int rc = run(out, sizeof(out), false, cases[i] + 1);
        cr_assert_eq(rc, 2, "case %zu (%s): exit %d: %s", i, cases[i][0], rc, out);
        cr_assert(strstr(out, cases[i][0]), "case %zu names %s: %s", i, cases[i][0], out);
    }
}

/* The lines of the README's CLI reference ("## Commands", its first sh
 * block), a line that starts with spaces joined to the one before, comments
 * dropped. Returns how many (at most max), each a malloc'd string. */
static size_t readme_commands(char **lines, size_t max)
{
    FILE *f = fopen(BT_SOURCE_DIR "/README.md", "r");
    char buf[1024];
    size_t n = 0;
    int state = 0; /* 0 before the section, 1 in it, 2 in its block */

    cr_assert(f, "cannot read README.md");
    while (fgets(buf, sizeof(buf), f) && state < 3) {
        buf[strcspn(buf, "\n")] = '\0';
        if (state == 0 && !strcmp(buf, "## Commands"))
            state = 1;
        else if (state == 1 && !strncmp(buf, "```", 3))
            state = 2;
        else if (state == 2 && !strncmp(buf, "```", 3))
            state = 3;
        else if (state == 2) {
            char *hash = strstr(buf, " #");
            if (hash)
                *hash = '\0';
            if (buf[0] == ' ' && n > 0) {
                size_t len = strlen(lines[n - 1]) + strlen(buf) + 1;
                lines[n - 1] = realloc(lines[n - 1], len);
                strcat(lines[n - 1], buf);
            } else if (!strncmp(buf, "baton ", 6) && n < max) {
                lines[n++] = strdup(buf);
            }
        }
    }
    fclose(f);
    return n;
}

/* Whether text holds flag as a whole word ("--id" is not "--id-conflict"). */
static bool has_flag(const char *text, const char *flag, size_t len)
{
    for (const char *p = strstr(text, flag); p; p = strstr(p + 1, flag)) {
        char next = p[len];
        if ((next == '\0' || strchr(" =]\n|", next)) && (p == text || p[-1] != '-'))
            return true;
    }
    return false;
}

/* Each command of the README's reference has its flags in its --help, and
 * each flag its --help lists (bar --help and --version) is in the README. */
Test(cli_args, the_readme_reference_agrees_with_help, .init = setup, .fini = teardown,
     .timeout = 120)
{
    char *lines[64], help[16384], word1[64], word2[64];
    size_t n = readme_commands(lines, 64);

    cr_assert_gt(n, 10, "the reference has the commands");
    for (size_t i = 0; i < n; i++) {
        const char *line = lines[i];
        word2[0] = '\0';
        cr_assert_geq(sscanf(line, "baton %63[a-z-] %63[a-z-]", word1, word2), 1);
        /* a subcommand's own help when it has one (schedule add), else the group's */
        if (!*word2 || STDOUT(help, "baton", word1, word2, "--help") != 0 ||
            strncmp(help, "usage:", 6))
            cr_assert_eq(STDOUT(help, "baton", word1, "--help"), 0, "%s", line);
        for (const char *p = strstr(line, "--"); p; p = strstr(p + 2, "--")) {
            size_t len = 2 + strspn(p + 2, "abcdefghijklmnopqrstuvwxyz0123456789-");
            char flag[64];
            snprintf(flag, sizeof(flag), "%.*s", (int)len, p);
            cr_assert(has_flag(help, flag, len),
                      "README: %s\nhas %s, its --help not:\n%s", line, flag, help);
        }
        const char *flags = strstr(help, "\nFlags:\n");
        cr_assert(flags, "%s", help);
        for (const char *l = flags + 8; *l && *l != '\n'; l = strchr(l, '\n') + 1) {
            const char *p = strstr(l, "--");
            size_t len =
                p ? 2 + strspn(p + 2, "abcdefghijklmnopqrstuvwxyz0123456789-") : 0;
            char flag[64];
            if (!p || p > strchr(l, '\n'))
                continue;
            snprintf(flag, sizeof(flag), "%.*s", (int)len, p);
            if (strcmp(flag, "--help") && strcmp(flag, "--version"))
                cr_assert(has_flag(line, flag, len),
                          "`%s --help` has %s, the README's line not: %s", word1, flag,
                          line);
        }
        free(lines[i]);
    }
}
