/* The driver's flags, as a table (name, kind, field, help) from which parsing
 * and --help both come, and the presets: named flag strings applied where
 * --preset appears, so later flags override them. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chaos.h"

enum kind {
    INT,     /* an integer */
    SECONDS, /* decimal seconds, stored as ms */
    EVERY,   /* "S" or "S@FIRST" seconds, 0: off */
    RATIO,   /* a decimal */
    TEXT,    /* a short string */
    SWITCH,  /* no value: sets an int to 1 */
    NOFAULT, /* no value: turns every fault off */
    PRESET,  /* a preset's name */
};

struct flag {
    const char *name;
    enum kind kind;
    size_t off;
    const char *help;
};

#define O(field) offsetof(struct chaos_opts, field)
static const struct flag flags[] = {
    {"instances", INT, O(instances), "workflow instances to start [5000]"},
    {"rate", INT, O(rate), "starts per second, 0: as fast as possible [100]"},
    {"sleep", SECONDS, O(sleep_ms),
     "a durable sleep between the first and second step: a timer per instance "
     "[0: none]"},
    {"duration", SECONDS, O(duration_ms), "how long faults are injected, s [60]"},
    {"workers", INT, O(workers), "worker processes [3]"},
    {"schedulers", INT, O(schedulers), "scheduler processes [2]"},
    {"partitions", INT, O(partitions), "partitions per topic [6]"},
    {"plugin", TEXT, O(plugin), "workload plugin, build/plugins/<name>.so [chaos]"},
    {"eager", INT, O(eager),
     "workers run the steps they decide themselves (1) or send every step through "
     "Kafka (0) [1]"},
#define X(e, name, help) {name, EVERY, O(fault[CHAOS_##e]), help},
    CHAOS_FAULTS(X)
#undef X
        {"no-faults", NOFAULT, 0, "turn every fault off (then turn some on again)"},
    {"restart-after", SECONDS, O(restart_after_ms), "a killed process's downtime [0.5]"},
    {"pause-for", SECONDS, O(pause_ms),
     "how long a paused worker or scheduler stays stopped [3]"},
    {"redis-down-for", SECONDS, O(redis_down_ms), "redis downtime per restart [1]"},
    {"redis-pause-for", SECONDS, O(redis_pause_ms),
     "how long a paused redis hangs [12: past the workers' 10 s redis-timeout-ms]"},
    {"broker-down-for", SECONDS, O(broker_down_ms), "broker downtime [2]"},
    {"latency-for", SECONDS, O(latency_for_ms), "how long the latency lasts [3]"},
    {"latency-ms", INT, O(latency_ms), "added round-trip time, ms [100]"},
    {"drain", SECONDS, O(drain_ms), "how long results may take after the chaos [120]"},
    {"stall", SECONDS, O(stall_ms),
     "no progress this long while some results are due: a stall [20; 10 in the "
     "presets but smoke]"},
    {"expect", INT, O(expect), "distinct results required [--instances]"},
    {"max-exec", INT, O(max_exec),
     "executions allowed per step [1 without process faults, else 3]"},
    {"max-duplicates", INT, O(max_duplicates),
     "duplicate results allowed [0] (a crash may repeat one: docs/reliability.md)"},
    {"baseline", SWITCH, O(baseline), "run without faults first; report the ratio"},
    {"min-ratio", RATIO, O(min_ratio),
     "results/s over the whole run, under faults / the baseline's [0: none]"},
    {"seed", INT, O(seed), "seed of the fault targets [time]"},
    {"preset", PRESET, 0, "apply a preset (below) here; later flags override it"},
};
#undef O

/* The acceptance runs. Each starts from no fault at all. */
static const struct preset {
    const char *name, *args, *help;
} presets[] = {
    {"a", "--no-faults --stall 10 --kill-worker 8 --kill-scheduler 5",
     "5,000 instances; a worker killed every 8 s, a scheduler every 5 s, 60 s"},
    {"b", "--no-faults --stall 10 --kill-worker 2", "a worker killed every 2 s"},
    {"c", "--no-faults --stall 10 --rate 0 --kill-worker 10 --baseline",
     "starts as fast as possible, a worker killed every 10 s, and a fault-free "
     "baseline run first for the throughput ratio"},
    {"d", "--no-faults --stall 10 --redis-kill 60@20 --redis-shutdown 60@40",
     "redis killed at 20 s and shut down at 40 s, each restarted on its AOF"},
    {"e",
     "--no-faults --stall 10 --sleep 0.5 --kill-worker 10 --pause-scheduler 20@4 "
     "--pause-for 12",
     "every instance sleeps 0.5 s between two steps (a timer each); a scheduler is "
     "paused for 12 s every 20 s, longer than the leases of what it claimed (timers "
     "10 s), so the other one does its work meanwhile; a worker killed every 10 s"},
    {"smoke",
     "--no-faults --instances 600 --duration 20 --kill-worker 60@6 --redis-kill 60@10 "
     "--poison 60@3 --drain 60 --stall 10",
     "the test's short run: 600 instances, one worker kill, one redis restart, the "
     "poison. The kill ends the load, so the killed worker's partitions are all "
     "that is left; they move once its 4 s lease expired, later by the redis "
     "restart 4 s after the kill, in which no lease runs out (7 s in all, "
     "docs/chaos.md)"},
};

static void defaults(struct chaos_opts *o)
{
    static const struct chaos_every every[CHAOS_FAULT__COUNT] = {
        [CHAOS_KILL_WORKER] = {8000, 8000},     [CHAOS_KILL_SCHEDULER] = {5000, 5000},
        [CHAOS_PAUSE_WORKER] = {20000, 10000},  [CHAOS_PAUSE_SCHEDULER] = {20000, 16000},
        [CHAOS_REDIS_KILL] = {60000, 20000},    [CHAOS_REDIS_SHUTDOWN] = {60000, 40000},
        [CHAOS_REDIS_PAUSE] = {60000, 46000},   [CHAOS_BROKER_DOWN] = {60000, 25000},
        [CHAOS_REQUEST_ERRORS] = {10000, 3000}, [CHAOS_LATENCY] = {30000, 14000},
        [CHAOS_POISON] = {60000, 6000},         [CHAOS_ROLLING] = {60000, 32000},
        [CHAOS_CRASH_CODE] = {60000, 12000},
    };

    *o = (struct chaos_opts){.instances = 5000,
                             .rate = 100,
                             .duration_ms = 60000,
                             .workers = 3,
                             .schedulers = 2,
                             .partitions = 6,
                             .restart_after_ms = 500,
                             .eager = 1,
                             .pause_ms = 3000,
                             .redis_down_ms = 1000,
                             .redis_pause_ms = 12000,
                             .broker_down_ms = 2000,
                             .latency_for_ms = 3000,
                             .latency_ms = 100,
                             .drain_ms = 120000,
                             /* every fault kind at once: membership changes
                              * back to back on the embedded cluster
                              * (docs/chaos.md) */
                             .stall_ms = 20000};
    snprintf(o->plugin, sizeof(o->plugin), "chaos");
    memcpy(o->fault, every, sizeof(every));
}

const char *chaos_fault_name(enum chaos_fault f)
{
    static const char *const names[] = {
#define X(e, name, help) name,
        CHAOS_FAULTS(X)
#undef X
    };
    return f < CHAOS_FAULT__COUNT ? names[f] : "?";
}

bool chaos_opts_kills(const struct chaos_opts *o)
{
    return o->fault[CHAOS_KILL_WORKER].every_ms ||
           o->fault[CHAOS_KILL_SCHEDULER].every_ms ||
           o->fault[CHAOS_PAUSE_WORKER].every_ms ||
           o->fault[CHAOS_PAUSE_SCHEDULER].every_ms || o->fault[CHAOS_ROLLING].every_ms ||
           /* the crashing code kills the workers that run it */
           o->fault[CHAOS_CRASH_CODE].every_ms;
}

/* Prints text from column indent on, in lines of at most 80 columns. */
static void print_wrapped(const char *text, int indent)
{
    int col = indent;

    while (*text) {
        size_t word = strcspn(text, " ");

        if (col > indent && col + 1 + (int)word > 80) {
            printf("\n%*s", indent, "");
            col = indent;
        } else if (col > indent) {
            putchar(' ');
            col++;
        }
        printf("%.*s", (int)word, text);
        col += (int)word;
        text += word;
        text += strspn(text, " ");
    }
    putchar('\n');
}

static void usage(void)
{
    struct chaos_opts d;

    defaults(&d);
    printf("usage: baton-chaos [flags]\n\nRuns workers and schedulers under a fault "
           "schedule and prints one summary line;\nexit 1 when an invariant fails. "
           "Times are seconds; a fault takes EVERY or EVERY@FIRST\n(first injection "
           "after the load starts), 0 turns it off. Without flags every fault\nkind "
           "is on, at the times in brackets.\n\n");
    for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++) {
        const struct chaos_every *e = (const void *)((const char *)&d + flags[i].off);
        char text[300];

        if (flags[i].kind == EVERY)
            snprintf(text, sizeof(text), "%s [%g@%g]", flags[i].help,
                     (double)e->every_ms / 1000, (double)e->first_ms / 1000);
        else
            snprintf(text, sizeof(text), "%s", flags[i].help);
        printf("  --%-16s ", flags[i].name);
        print_wrapped(text, 21);
    }
    printf("\npresets (5,000 instances at 100/s for 60 s unless they say otherwise):\n");
    for (size_t i = 0; i < sizeof(presets) / sizeof(presets[0]); i++) {
        printf("  %-6s ", presets[i].name);
        print_wrapped(presets[i].help, 9);
        printf("         = ");
        print_wrapped(presets[i].args, 11);
    }
}

static int parse_every(struct chaos_every *e, const char *v)
{
    char *end;
    double every = strtod(v, &end), first = every;

    if (*end == '@')
        first = strtod(end + 1, &end);
    if (*end || end == v || every < 0 || first < 0)
        return -1;
    e->every_ms = (int64_t)(every * 1000);
    e->first_ms = (int64_t)(first * 1000);
    return 0;
}

/* Stores value v of flag f into o. Returns 0 or -1. */
static int set_value(struct chaos_opts *o, const struct flag *f, const char *v)
{
    char *p = (char *)o + f->off, *end;
    long n;
    double d;

    switch (f->kind) {
    case INT:
        n = strtol(v, &end, 10);
        if (*end || end == v || n < 0 || n > 1000000000)
            return -1;
        if (f->off == offsetof(struct chaos_opts, seed))
            *(unsigned *)(void *)p = (unsigned)n;
        else
            *(int *)(void *)p = (int)n;
        return 0;
    case SECONDS:
    case RATIO:
        d = strtod(v, &end);
        if (*end || end == v || d < 0)
            return -1;
        if (f->kind == RATIO)
            *(double *)(void *)p = d;
        else
            *(int64_t *)(void *)p = (int64_t)(d * 1000);
        return 0;
    case EVERY:
        return parse_every((struct chaos_every *)(void *)p, v);
    case TEXT:
        if (strlen(v) >= sizeof(o->plugin) || strchr(v, '/'))
            return -1;
        snprintf(p, sizeof(o->plugin), "%s", v);
        return 0;
    default:
        return -1;
    }
}

static int apply(struct chaos_opts *o, int argc, char **argv, int depth);

static int apply_preset(struct chaos_opts *o, const char *name, int depth)
{
    char buf[512], *args[32];
    int n = 0;

    for (size_t i = 0; i < sizeof(presets) / sizeof(presets[0]); i++) {
        if (strcmp(presets[i].name, name))
            continue;
        snprintf(buf, sizeof(buf), "%s", presets[i].args);
        for (char *save, *tok = strtok_r(buf, " ", &save); tok && n < 32;
             tok = strtok_r(NULL, " ", &save))
            args[n++] = tok;
        return apply(o, n, args, depth + 1);
    }
    return -1;
}

static const struct flag *find_flag(const char *arg)
{
    if (strncmp(arg, "--", 2))
        return NULL;
    for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++)
        if (!strcmp(arg + 2, flags[i].name))
            return &flags[i];
    return NULL;
}

static int apply(struct chaos_opts *o, int argc, char **argv, int depth)
{
    for (int i = 0; i < argc; i++) {
        const struct flag *f = find_flag(argv[i]);

        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))
            return 1;
        if (!f) {
            fprintf(stderr, "baton-chaos: unknown argument \"%s\" (see --help)\n",
                    argv[i]);
            return -1;
        }
        if (f->kind == NOFAULT) {
            memset(o->fault, 0, sizeof(o->fault));
            continue;
        }
        if (f->kind == SWITCH) {
            *(int *)(void *)((char *)o + f->off) = 1;
            continue;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "baton-chaos: --%s needs a value\n", f->name);
            return -1;
        }
        i++;
        if (f->kind == PRESET ? (depth > 0 ? -1 : apply_preset(o, argv[i], depth))
                              : set_value(o, f, argv[i])) {
            fprintf(stderr, "baton-chaos: bad value for --%s: \"%s\"\n", f->name,
                    argv[i]);
            return -1;
        }
    }
    return 0;
}

int chaos_opts_parse(struct chaos_opts *o, int argc, char **argv)
{
    int ret;

    defaults(o);
    ret = apply(o, argc - 1, argv + 1, 0);
    if (ret == 1)
        usage();
    if (ret)
        return ret;
    if (!o->expect)
        o->expect = o->instances;
    if (!o->seed)
        o->seed = (unsigned)bt_test_now_ms() | 1;
    if (o->workers < 1 || o->schedulers < 0 || o->partitions < 1 ||
        o->workers + o->schedulers > CHAOS_MAX_PROCS || o->instances < 1) {
        fprintf(stderr,
                "baton-chaos: need 1 worker or more, %d processes at most, "
                "1 instance or more\n",
                CHAOS_MAX_PROCS);
        return -1;
    }
    return 0;
}
