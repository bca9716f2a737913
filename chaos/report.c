/* The verdict of a run: each invariant computed from the tallies, a digest on
 * stderr that names the instances behind a failure (the first few of each
 * kind) and counts the notable lines of the log, and one summary line on
 * stdout with PASS or FAIL per invariant. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chaos.h"

#define CHAOS_NAMED    8  /* instances named per kind in the digest */
#define CHAOS_MIN_LATE 10 /* results after the chaos needed for a rate */

struct verdict {
    int missing, extra, dup_instances, failed;
    int exec_max, unexecuted, rerun_steps, exec_bound;
    int most_inst, most_step; /* the first step that ran exec_max times */
    double exec_mean;
    int stalls, max_gap_s, max_own_gap_s; /* own: store outages left out */
    int max_gap_at;                       /* second (since the load began) it began */
    double tput, tput_after, tput_all;
    bool pass;
};

/* Log lines worth counting after a run: what each pattern means is in
 * docs/reliability.md or beside the log call that writes it. */
static const char *const notable[] = {
    "level=error",
    "dead letter:",
    "retrying batch",
    "cannot seek after",
    "commands not delivered",
    "cannot commit",
    "cannot clear the outbox",
    "re-sent unsent",
    "instance failed",
    "consumer error",
    "crash:",
    "still running",
};
#define N_NOTABLE (sizeof(notable) / sizeof(notable[0]))

/* Whether second s (since t0) overlaps an outage of redis or the broker. */
static bool in_outage(const struct chaos_run *r, int s)
{
    for (int i = 0; i < r->n_outages; i++)
        if (r->outages[i].from < (int64_t)(s + 1) * 1000 &&
            r->outages[i].to > (int64_t)s * 1000)
            return true;
    return false;
}

/* Progress is a step that begins or a result. A stall is stall_ms or more,
 * in whole seconds, without progress while some started instance has no
 * result yet: "no result" alone would call the start of a burst a stall, as
 * its first results come only once every first and second step has run.
 * The seconds in which redis or the broker was down do not count towards a
 * stall (nothing can progress then: the injected outage is not baton's dead
 * time); the gap printed (max_gap) counts them. The stretch at the end
 * counts when some instance never got a result. */
static void stalls(const struct chaos_run *r, const int *starts, const int *done,
                   struct verdict *v)
{
    int outstanding = 0, stretch = 0, own = 0;
    int limit = (int)((r->opts->stall_ms + 999) / 1000);

    for (int s = 0; s <= r->n_seconds; s++) {
        bool idle = false;

        if (s < r->n_seconds) {
            outstanding += starts[s];
            idle = outstanding > 0 && done[s] == 0 && r->exec_per_s[s] == 0;
            outstanding -= done[s];
        }
        if (idle) {
            stretch++;
            own += !in_outage(r, s);
            continue;
        }
        v->stalls += own >= limit;
        if (stretch > v->max_gap_s) {
            v->max_gap_s = stretch;
            v->max_gap_at = s - stretch;
        }
        if (own > v->max_own_gap_s)
            v->max_own_gap_s = own;
        stretch = own = 0;
    }
}

/* Results per second while the chaos lasted (or until the last result, when
 * that came first), afterwards, and over the whole run (the baseline ratio:
 * both runs start the same instances), from the first results' timestamps. */
static void throughput(const struct chaos_run *r, struct verdict *v)
{
    int64_t dur = r->opts->duration_ms, last = 0, active;
    int during = 0, all = 0;

    for (int i = 0; i < r->opts->instances; i++) {
        int64_t t = r->inst[i].first_ms;

        if (t < 0)
            continue;
        all++;
        during += t <= dur;
        if (t > last)
            last = t;
    }
    active = last < dur ? last : dur;
    v->tput = active > 0 ? during * 1000.0 / (double)active : 0;
    v->tput_after = all - during >= CHAOS_MIN_LATE && last > dur
                        ? (all - during) * 1000.0 / (double)(last - dur)
                        : -1;
    v->tput_all = last > 0 ? all * 1000.0 / (double)last : 0;
}

/* Starts and first results per second after t0, beside count.c's executions. */
static void timeline(const struct chaos_run *r, struct verdict *v)
{
    int n = r->n_seconds;
    int *starts = calloc((size_t)n + 1, sizeof(int)),
        *done = calloc((size_t)n + 1, sizeof(int));

    throughput(r, v);
    if (starts && done && r->exec_per_s) {
        for (int i = 0; i < r->opts->instances; i++) {
            const struct chaos_inst *in = &r->inst[i];

            if (in->started_ms >= 0)
                starts[in->started_ms / 1000 < n ? in->started_ms / 1000 : n - 1]++;
            if (in->first_ms >= 0)
                done[in->first_ms / 1000 < n ? in->first_ms / 1000 : n - 1]++;
        }
        stalls(r, starts, done, v);
    }
    free(starts);
    free(done);
}

static void executions(const struct chaos_run *r, struct verdict *v)
{
    long steps = 0, total = 0;

    for (int i = 0; i < r->opts->instances; i++) {
        const struct chaos_inst *in = &r->inst[i];
        bool completed = in->results && !in->failed;

        for (int s = 0; s < CHAOS_STEPS; s++) {
            if (in->exec[s] > v->exec_max) {
                v->exec_max = in->exec[s];
                v->most_inst = i;
                v->most_step = s + 1;
            }
            v->rerun_steps += in->exec[s] > 1;
            if (!completed)
                continue;
            v->unexecuted += in->exec[s] == 0;
            steps++;
            total += in->exec[s];
        }
    }
    v->exec_mean = steps ? (double)total / (double)steps : 0;
    /* more than once only after a crash or a timeout (docs/reliability.md):
     * without process faults, once; with them, a little slack */
    v->exec_bound = r->opts->max_exec                        ? r->opts->max_exec
                    : r->faults && chaos_opts_kills(r->opts) ? 3
                                                             : 1;
}

static void tally(const struct chaos_run *r, struct verdict *v)
{
    for (int i = 0; i < r->opts->instances; i++) {
        const struct chaos_inst *in = &r->inst[i];

        v->missing += in->results == 0;
        v->extra += in->results > 1 ? in->results - 1 : 0;
        v->dup_instances += in->results > 1;
        v->failed += in->failed;
    }
    executions(r, v);
    timeline(r, v);
}

/* Names the first CHAOS_NAMED instances for which pick() holds. */
static void name_some(const struct chaos_run *r, const char *what, int count,
                      bool (*pick)(const struct chaos_inst *in), bool show_exec)
{
    int named = 0;

    if (!count)
        return;
    fprintf(stderr, "%s: %s: %d:", r->name, what, count);
    for (int i = 0; i < r->opts->instances && named < CHAOS_NAMED; i++) {
        const struct chaos_inst *in = &r->inst[i];

        if (!pick(in))
            continue;
        named++;
        fprintf(stderr, " " CHAOS_ID_PREFIX "%d", i);
        if (show_exec)
            fprintf(stderr, "(exec %d/%d/%d)", in->exec[0], in->exec[1], in->exec[2]);
        else if (in->results > 1)
            fprintf(stderr, "(x%d)", in->results);
    }
    fprintf(stderr, "%s\n", count > named ? " ..." : "");
}

static bool is_dup(const struct chaos_inst *in)
{
    return in->results > 1;
}

static bool is_missing(const struct chaos_inst *in)
{
    return in->results == 0;
}

static bool is_failed(const struct chaos_inst *in)
{
    return in->failed;
}

static bool is_rerun(const struct chaos_inst *in)
{
    return in->exec[0] > 1 || in->exec[1] > 1 || in->exec[2] > 1;
}

static void log_counts(const struct chaos_run *r)
{
    size_t counts[N_NOTABLE] = {0};
    char line[2048];
    FILE *f = fopen(r->log, "r");

    while (f && fgets(line, sizeof(line), f))
        for (size_t k = 0; k < N_NOTABLE; k++)
            counts[k] += strstr(line, notable[k]) != NULL;
    if (f)
        fclose(f);
    fprintf(stderr, "%s: log lines:", r->name);
    for (size_t k = 0; k < N_NOTABLE; k++)
        fprintf(stderr, " \"%s\"=%zu", notable[k], counts[k]);
    fprintf(stderr, "\n");
}

static void digest(const struct chaos_run *r, const struct verdict *v)
{
    int injected = 0;

    fprintf(stderr, "%s: faults injected:", r->name);
    for (int k = 0; k < CHAOS_FAULT__COUNT; k++) {
        if (r->injected[k] || r->skipped[k])
            fprintf(stderr, " %s=%d", chaos_fault_name((enum chaos_fault)k),
                    r->injected[k]);
        if (r->skipped[k]) /* no target: every worker was down, say */
            fprintf(stderr, "(+%d skipped)", r->skipped[k]);
        injected += r->injected[k];
    }
    fprintf(stderr, "%s\n", injected ? "" : " none");
    fprintf(stderr,
            "%s: %d results read (%d of other ids), %ld executions (%ld of attempt > 1), "
            "%d steps run more than once, lost starts %d, longest time without progress "
            "%d s from %d s into the load (%d s with redis and the broker up)\n",
            r->name, r->raw_results, r->other_results, r->executions, r->exec_retries,
            v->rerun_steps, r->lost_starts, v->max_gap_s, v->max_gap_at,
            v->max_own_gap_s);
    fprintf(stderr,
            "%s: limits: results %d, duplicates %d, executions per step %d, stall %.0f "
            "s\n",
            r->name, r->opts->expect, r->opts->max_duplicates, v->exec_bound,
            (double)r->opts->stall_ms / 1000);
    name_some(r, "duplicated results", v->dup_instances, is_dup, false);
    name_some(r, "missing results", v->missing, is_missing, true);
    name_some(r, "failed", v->failed, is_failed, false);
    name_some(r, "steps run more than once", v->rerun_steps, is_rerun, true);
    if (v->exec_max > 1)
        fprintf(stderr, "%s: most executed: " CHAOS_ID_PREFIX "%d step %d, %d times\n",
                r->name, v->most_inst, v->most_step, v->exec_max);
    if (r->fail_reason[0])
        fprintf(stderr, "%s: first failure: %s\n", r->name, r->fail_reason);
    if (r->dead_letters)
        fprintf(stderr, "%s: first unexpected dead letter: %s\n", r->name,
                r->dead_reason);
    log_counts(r);
}

/* Appends " name=value[PASS|FAIL]" to out and folds ok into v->pass. */
static void check(char *out, size_t n, struct verdict *v, bool ok, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static void check(char *out, size_t n, struct verdict *v, bool ok, const char *fmt, ...)
{
    size_t len = strlen(out);
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(out + len, n - len, fmt, ap);
    va_end(ap);
    len = strlen(out);
    snprintf(out + len, n - len, "[%s]", ok ? "PASS" : "FAIL");
    v->pass = v->pass && ok;
}

double chaos_report_tput(const struct chaos_run *r)
{
    struct verdict v = {0};

    throughput(r, &v);
    return v.tput_all;
}

bool chaos_report(struct chaos_run *r, const struct chaos_run *baseline)
{
    struct verdict v = {.pass = true};
    char line[1024] = "";
    size_t n = sizeof(line), len;
    const char *poison = r->poison_dead ? "dlq" : "missing";

    tally(r, &v);
    digest(r, &v);
    check(line, n, &v, r->distinct == r->opts->expect, " results=%d/%d", r->distinct,
          r->opts->expect);
    check(line, n, &v, v.extra <= r->opts->max_duplicates, " duplicates=%d", v.extra);
    check(line, n, &v, v.failed == 0, " failed=%d", v.failed);
    check(line, n, &v, r->dead_letters == 0, " dead_letters=%d", r->dead_letters);
    if (r->poison_sent)
        check(line, n, &v, r->poison_dead > 0, " poison=%s", poison);
    check(line, n, &v, v.unexecuted == 0 && v.exec_max <= v.exec_bound,
          " max_exec_per_step=%d%s", v.exec_max, v.unexecuted ? "(some never ran)" : "");
    check(line, n, &v, v.stalls == 0, " stalls=%d", v.stalls);
    /* the crashing code's crashes are expected: it is blocked after two */
    if (r->crash_sent) {
        bool blocked = !strcmp(r->crash_code_end, "blocked/WorkflowCrashed");
        check(line, n, &v, blocked, " crash_code=%s(%d)",
              blocked ? "blocked" : r->crash_code_end, r->crash_code_crashes);
    }
    check(line, n, &v, r->crashes == r->crash_code_crashes, " crashes=%d",
          r->crashes - r->crash_code_crashes);
    check(line, n, &v, r->unclean_stop == 0, " unclean_stops=%d", r->unclean_stop);
    len = strlen(line);
    snprintf(line + len, n - len, " mean_exec=%.3f max_gap=%ds tput_chaos=%.0f/s",
             v.exec_mean, v.max_gap_s, v.tput);
    len = strlen(line);
    if (v.tput_after >= 0)
        snprintf(line + len, n - len, " tput_after=%.0f/s", v.tput_after);
    else
        snprintf(line + len, n - len, " tput_after=-");
    len = strlen(line);
    snprintf(line + len, n - len, " tput_all=%.0f/s", v.tput_all);
    if (baseline) {
        double base = chaos_report_tput(baseline),
               ratio = base > 0 ? v.tput_all / base : 0;

        if (r->opts->min_ratio > 0)
            check(line, n, &v, ratio >= r->opts->min_ratio, " ratio=%.2f", ratio);
        else
            snprintf(line + strlen(line), n - strlen(line), " ratio=%.2f", ratio);
    }
    printf("%s:%s log=%s %s\n", r->name, line, r->log, v.pass ? "PASS" : "FAIL");
    fflush(stdout);
    return v.pass;
}
