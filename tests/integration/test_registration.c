/* The registration example end to end (examples/registration.c and
 * examples/campaigns.c, two teams' plugins), played by the demo's own carrier
 * script (scripts/carriers) through the baton CLI: real redis-server, the
 * Kafka mock cluster, baton-worker, baton-scheduler. Short review timeouts
 * stand in for the production 24 h. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "install.h"
#include "stack.h"

#define REVIEW_TIMEOUT_MS 4000
#define N_CARRIERS        3

static struct bt_stack stack;
static pid_t team_a, team_b, scheduler;

/* Each team's worker loads its own plugin only and serves its own queue: the
 * campaigns run where team B's code is. */
static void setup(void)
{
    static const char *const queues[] = {"campaigns", NULL};

    cr_assert_eq(bt_stack_start(&stack, queues), 0, "cannot start the stack");
    team_a = bt_stack_worker(&stack, "registration",
                             (const char *const[]){"--queues", "default", NULL});
    team_b = bt_stack_worker(&stack, "campaigns",
                             (const char *const[]){"--queues", "campaigns", NULL});
    scheduler = bt_stack_scheduler(&stack);
    cr_assert(team_a > 0 && team_b > 0 && scheduler > 0);
}

static void teardown(void)
{
    pid_t *pids[] = {&team_a, &team_b, &scheduler};

    for (size_t i = 0; i < 3; i++)
        if (*pids[i] > 0)
            bt_test_stop(*pids[i], BT_TEST_STOP_MS);
    bt_stack_stop(&stack);
}

/* Stops the workers and the scheduler; under the sanitizers a leak or an
 * error shows as a non-zero exit. A worker ends its stop within 20 s
 * whatever blocks (workers/stop.h); a sanitizer build on a loaded machine
 * has taken over 10 s, so each gets 25 s, and a failure shows the log (its
 * "slow stop step" lines say where the time went). */
static void stop_programs(void)
{
    int a = bt_test_stop(team_a, 25000), b = bt_test_stop(team_b, 25000),
        sch = bt_test_stop(scheduler, 25000);
    char tail[4096];

    team_a = team_b = scheduler = 0;
    cr_assert(a == 0 && b == 0 && sch == 0,
              "exit status: team A's worker %d, team B's %d, the scheduler %d; log:\n%s",
              a, b, sch, bt_test_tail(stack.log, tail, sizeof(tail)));
}

static json_t *history(const char *id)
{
    return bt_stack_history(&stack, id, NULL, NULL);
}

/* Index of the n-th record (from 0) with this ev (and step name, when not
 * NULL), or -1; *count (may be NULL) gets how many there are. */
static int find(const json_t *records, const char *ev, const char *name, int n,
                int *count)
{
    int found = -1, seen = 0;

    for (size_t i = 0; i < json_array_size(records); i++) {
        const json_t *rec = json_array_get(records, i);
        const char *rec_name = json_string_value(json_object_get(rec, "name"));
        if (strcmp(json_string_value(json_object_get(rec, "ev")), ev) ||
            (name && (!rec_name || strcmp(rec_name, name))))
            continue;
        if (seen++ == n)
            found = (int)i;
    }
    if (count)
        *count = seen;
    return found;
}

/* Every record was written by the worker with this pid ("worker":
 * "<host>:<pid>"). */
static bool written_by(const json_t *records, pid_t pid)
{
    char suffix[32];
    size_t len = (size_t)snprintf(suffix, sizeof(suffix), ":%d", (int)pid);

    for (size_t i = 0; i < json_array_size(records); i++) {
        const char *w =
            json_string_value(json_object_get(json_array_get(records, i), "worker"));
        if (!w || strlen(w) < len || strcmp(w + strlen(w) - len, suffix))
            return false;
    }
    return json_array_size(records) > 0;
}

static int count_of(const json_t *records, const char *ev, const char *name)
{
    int n;

    find(records, ev, name, 0, &n);
    return n;
}

static const char *text(const json_t *obj, const char *key)
{
    const char *s = json_string_value(json_object_get(obj, key));

    return s ? s : "";
}

static void start_registration(const char *id, const char *brand)
{
    char input[256], out[4096];

    snprintf(input, sizeof(input),
             "{\"brand\":\"%s\",\"use_case\":\"2fa\",\"numbers\":2,"
             "\"review_timeout_ms\":%d}",
             brand, REVIEW_TIMEOUT_MS);
    cr_assert_eq(BT_STACK_BATON(&stack, out, "start", "brand_registration", "--id", id,
                                "--input", input),
                 0, "baton start %s: %s", id, out);
}

/* Runs scripts/carriers against the stack, with the plays given; asserts
 * that it delivered every verdict. */
static void play_carriers(const char *const *plays)
{
    char log[400], out[8192] = "";
    const char *argv[16] = {"/bin/bash", BT_SOURCE_DIR "/scripts/carriers", "--timeout",
                            "60"};
    const char *env[12];
    int argc = 4, n = 0, status;
    FILE *f;

    for (; *plays && argc < 15; plays++)
        argv[argc++] = *plays;
    argv[argc] = NULL;
    for (; stack.envp[n]; n++)
        env[n] = stack.envp[n];
    env[n++] = "BATON=" BT_BIN_DIR "/baton";
    env[n] = NULL;
    snprintf(log, sizeof(log), "%s/carriers.log", stack.redis.dir);
    status = bt_test_wait(bt_test_spawn(argv, env, log), 90000);
    if ((f = fopen(log, "r"))) {
        out[fread(out, 1, sizeof(out) - 1, f)] = '\0';
        fclose(f);
    }
    cr_log_info("scripts/carriers said:\n%s", out);
    cr_assert_eq(status, 0, "scripts/carriers exited %d:\n%s", status, out);
}

/* What one registration should end as. */
struct expect {
    const char *id;
    const char *play; /* for scripts/carriers */
    bool approved;
    bool lost; /* the first webhook was lost: one timeout, one resend */
    const char *reason;
};

static void check_brand(const json_t *results, const struct expect *x)
{
    char child[128], buf[32];
    json_t *msg = json_object_get(results, x->id);
    json_t *res = json_object_get(msg, "result");
    json_t *recs = history(x->id);
    int i;

    snprintf(child, sizeof(child), "%s/campaign", x->id);
    cr_assert(msg, "%s: no result", x->id);
    cr_assert_str_eq(text(msg, "status"), "completed", "%s", x->id);
    cr_assert_str_eq(bt_stack_status(&stack, x->id, buf, sizeof(buf)), "completed");
    cr_assert_str_eq(text(res, "status"), x->approved ? "approved" : "rejected", "%s",
                     x->id);
    cr_assert_str_eq(text(res, "campaign"), child);
    cr_assert_eq(json_integer_value(json_object_get(res, "resends")), x->lost ? 1 : 0,
                 "%s: resends", x->id);
    if (x->approved) {
        cr_assert_eq(json_array_size(json_object_get(res, "numbers")), 2, "%s", x->id);
    } else {
        cr_assert_str_eq(text(res, "reason"), x->reason, "%s", x->id);
        cr_assert_null(json_object_get(res, "numbers"));
    }

    /* the parent's story: brand, child started and completed, numbers or not */
    cr_assert_eq(count_of(recs, "activity_completed", "register_brand"), 1, "%s", x->id);
    cr_assert_eq(count_of(recs, "child_started", NULL), 1, "%s", x->id);
    i = find(recs, "child_started", NULL, 0, NULL);
    cr_assert_str_eq(text(json_array_get(recs, i), "child"), child);
    cr_assert_str_eq(text(json_array_get(recs, i), "workflow"), "campaign_registration");
    cr_assert_eq(count_of(recs, "child_completed", NULL), 1, "%s", x->id);
    i = find(recs, "child_completed", NULL, 0, NULL);
    cr_assert_str_eq(text(json_object_get(json_array_get(recs, i), "result"), "status"),
                     x->approved ? "approved" : "rejected");
    cr_assert_eq(count_of(recs, "activity_completed", "register_numbers"),
                 x->approved ? 1 : 0, "%s", x->id);
    cr_assert_eq(count_of(recs, "finished", NULL), 1);
    cr_assert(written_by(recs, team_a), "%s ran on team A's worker only", x->id);
    json_decref(recs);
}

/* Returns the number of carrier submissions seen; *first / *last get the
 * earliest and latest time one completed. */
static int check_campaign(const json_t *results, const struct expect *x, int64_t *first,
                          int64_t *last)
{
    char child[128], buf[32];
    json_t *msg, *recs, *got = json_object();
    int signal, n;

    snprintf(child, sizeof(child), "%s/campaign", x->id);
    msg = json_object_get(results, child);
    recs = history(child);
    cr_assert(msg, "%s: no result", child);
    cr_assert_str_eq(text(msg, "status"), "completed", "%s", child);
    cr_assert_str_eq(bt_stack_status(&stack, child, buf, sizeof(buf)), "completed");
    cr_assert_str_eq(text(json_object_get(msg, "result"), "status"),
                     x->approved ? "approved" : "rejected", "%s", child);
    cr_assert_str_eq(text(json_array_get(recs, 0), "parent"), x->id);

    /* three carriers, each once */
    find(recs, "activity_completed", "submit_to_carrier", 0, &n);
    cr_assert_eq(n, N_CARRIERS, "%s: %d submissions", child, n);
    for (int k = 0; k < n; k++) {
        const json_t *rec = json_array_get(
            recs, find(recs, "activity_completed", "submit_to_carrier", k, NULL));
        int64_t ts = json_integer_value(json_object_get(rec, "ts"));
        json_object_set_new(got, text(json_object_get(rec, "result"), "carrier"),
                            json_true());
        *first = *first && *first < ts ? *first : ts;
        *last = *last > ts ? *last : ts;
    }
    cr_assert(json_object_get(got, "att") && json_object_get(got, "t-mobile") &&
                  json_object_get(got, "verizon"),
              "%s: every carrier got the campaign", child);

    /* the review: one signal, its payload recorded; a lost webhook first
     * shows a timeout and a resend */
    cr_assert_eq(count_of(recs, "signal_received", NULL), 1, "%s", child);
    signal = find(recs, "signal_received", NULL, 0, NULL);
    const json_t *payload = json_object_get(json_array_get(recs, signal), "payload");
    cr_assert_str_eq(text(json_array_get(recs, signal), "name"), "review");
    cr_assert_str_eq(text(payload, "decision"), x->approved ? "approved" : "rejected");
    if (!x->approved)
        cr_assert_str_eq(text(payload, "reason"), x->reason);
    cr_assert_eq(count_of(recs, "signal_wait", NULL), x->lost ? 2 : 1, "%s", child);
    cr_assert_eq(count_of(recs, "timer_fired", NULL), x->lost ? 1 : 0, "%s", child);
    cr_assert_eq(count_of(recs, "activity_completed", "resend_to_carriers"),
                 x->lost ? 1 : 0, "%s", child);
    if (x->lost) {
        const json_t *wait =
            json_array_get(recs, find(recs, "signal_wait", NULL, 0, NULL));
        const json_t *fired =
            json_array_get(recs, find(recs, "timer_fired", NULL, 0, NULL));
        int resent = find(recs, "activity_completed", "resend_to_carriers", 0, NULL);
        cr_assert_str_eq(text(fired, "kind"), "signal_timeout");
        cr_assert_eq(json_integer_value(json_object_get(fired, "seq")),
                     json_integer_value(json_object_get(wait, "seq")),
                     "the first review wait timed out");
        cr_assert_eq(json_integer_value(json_object_get(wait, "timeout_ms")),
                     REVIEW_TIMEOUT_MS);
        cr_assert_lt(resent, signal, "%s: the approval came after the resend", child);
    }
    cr_assert(written_by(recs, team_b), "%s ran on team B's worker only", child);
    json_decref(got);
    json_decref(recs);
    return n;
}

Test(registration, a_batch_ends_approved_rejected_and_resent_as_the_carriers_answer,
     .init = setup, .fini = teardown, .timeout = 150)
{
    static const struct expect brands[] = {
        {"brand-acme", "brand-acme:approve", true, false, NULL},
        {"brand-globex", "brand-globex:approve", true, false, NULL},
        {"brand-initech", "brand-initech:reject:the use case is not permitted", false,
         false, "the use case is not permitted"},
        {"brand-hooli", "brand-hooli:lose", true, true, NULL},
        {"brand-umbrella", "brand-umbrella:reject", false, false,
         "the use case is not permitted by t-mobile"},
        {"brand-stark", "brand-stark:approve", true, false, NULL},
    };
    const size_t n = sizeof(brands) / sizeof(brands[0]);
    const char *plays[sizeof(brands) / sizeof(brands[0]) + 1] = {NULL};
    struct bt_stack_results r;
    int64_t first = 0, last = 0;
    int submissions = 0;
    char out[32768];

    for (size_t i = 0; i < n; i++) {
        start_registration(brands[i].id, brands[i].id + strlen("brand-"));
        plays[i] = brands[i].play;
    }
    play_carriers(plays);

    bt_stack_results(&stack, &r, 2 * (int)n, 60000); /* brands and their campaigns */
    cr_assert_eq(r.distinct, 2 * (int)n, "results: %d of %zu", r.distinct, 2 * n);
    for (size_t i = 0; i < n; i++) {
        check_brand(r.by_id, &brands[i]);
        submissions += check_campaign(r.by_id, &brands[i], &first, &last);
    }

    /* one bucket paced every submission of every campaign: 5/s, burst 2 */
    redisReply *reply = bt_stack_redis(&stack, "HGET %s:rl:carriers rate", stack.prefix);
    cr_assert(reply && reply->type == REDIS_REPLY_STRING, "no \"carriers\" bucket");
    cr_assert_eq(strtod(reply->str, NULL), 5.0);
    freeReplyObject(reply);
    cr_log_info("%d carrier submissions completed over %lld ms", submissions,
                (long long)(last - first));
    cr_assert_geq(last - first, (submissions - 2) * 1000 / 5 * 6 / 10,
                  "%d submissions in %lld ms: faster than the shared limit allows",
                  submissions, (long long)(last - first));

    /* `baton history` of the lost-webhook campaign tells the story */
    cr_assert_eq(BT_STACK_BATON(&stack, out, "history", "brand-hooli/campaign"), 0);
    cr_assert(strstr(out, "kind=\"signal_timeout\""), "%s", out);
    cr_assert(strstr(out, "name=\"resend_to_carriers\""), "%s", out);
    cr_assert(strstr(out, "payload={\"decision\":\"approved\"}"), "%s", out);
    json_decref(r.by_id);
    stop_programs();
}

/* `baton describe id` lists a review step still waiting. */
static bool waits_for_review(const char *id)
{
    char out[8192], *save = NULL;

    if (BT_STACK_BATON(&stack, out, "describe", id) != 0)
        return false;
    for (char *line = strtok_r(out, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save))
        if (strstr(line, " signal ") && strstr(line, " review ") &&
            strstr(line, " waiting "))
            return true;
    return false;
}

Test(registration, a_review_without_a_decision_fails_the_campaign_and_the_brand,
     .init = setup, .fini = teardown, .timeout = 60)
{
    struct bt_stack_results r;
    char out[4096];
    bool waiting;

    start_registration("brand-bad", "bad");
    BT_TEST_WAIT_UNTIL(waiting, waits_for_review("brand-bad/campaign"), 30000);
    cr_assert(waiting, "the campaign never waited for its review");
    cr_assert_eq(BT_STACK_BATON(&stack, out, "signal", "brand-bad/campaign", "review",
                                "--payload", "{\"decision\":\"maybe\"}"),
                 0, "%s", out);
    bt_stack_results(&stack, &r, 2, 30000);
    cr_assert_eq(r.distinct, 2);
    json_t *child = json_object_get(r.by_id, "brand-bad/campaign");
    json_t *parent = json_object_get(r.by_id, "brand-bad");
    cr_assert_str_eq(text(child, "status"), "failed");
    cr_assert_str_eq(text(json_object_get(child, "error"), "type"), "InvalidReview");
    cr_assert_str_eq(text(parent, "status"), "failed");
    cr_assert_str_eq(text(json_object_get(parent, "error"), "type"), "CampaignFailed");
    cr_assert(strstr(text(json_object_get(parent, "error"), "message"), "InvalidReview"),
              "the brand's error names the campaign's");
    json_t *recs = history("brand-bad");
    cr_assert_eq(count_of(recs, "child_failed", NULL), 1);
    cr_assert_eq(count_of(recs, "activity_scheduled", "register_numbers"), 0);
    json_decref(recs);
    json_decref(r.by_id);
    stop_programs();
}

/* Before a deploy, `baton replay-check` loads what each team's worker loads:
 * plugins whose activities call the SDK (bt_act_*) resolve it in libbaton. */
Test(registration, replay_check_loads_both_teams_plugins_and_replays_their_instances,
     .init = setup, .fini = teardown, .timeout = 60)
{
    char out[4096];
    bool waiting;

    start_registration("brand-rc", "rc");
    BT_TEST_WAIT_UNTIL(waiting, waits_for_review("brand-rc/campaign"), 30000);
    cr_assert(waiting, "the campaign never waited for its review");
    cr_assert_eq(BT_STACK_BATON(&stack, out, "replay-check", "--plugin",
                                BT_PLUGIN_DIR "/registration.so", "--plugin",
                                BT_PLUGIN_DIR "/campaigns.so"),
                 0, "%s", out);
    cr_assert(strstr(out, "2 instances replayed, 0 would block"), "%s", out);
    stop_programs();
}
