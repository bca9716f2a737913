/* The fault schedule: each kind is injected every opts.fault[k].every_ms from
 * its first time on, while the chaos lasts. Faults with a duration (a pause,
 * redis or the broker down, latency) remember when they end; the tick ends
 * them, and chaos_faults_end ends them all when the chaos is over, so that
 * the drain that follows runs on a healthy system. */
#include <stdlib.h>

#include "chaos.h" /* harness.h: rdkafka.h, then rdkafka_mock.h */

/* Kafka protocol request types (ApiKey) the mock cluster can fail. */
enum { API_PRODUCE = 0, API_FETCH = 1, API_OFFSET_COMMIT = 8, API_HEARTBEAT = 12 };

#define CHAOS_REQUEST_ERRORS_EACH 8    /* failed requests per type and injection */
#define CHAOS_ROLLING_GAP_MS      1000 /* between one worker's restart and the next */

typedef bool (*inject_fn)(struct chaos_run *r, int64_t now);

static bool kill_one(struct chaos_run *r, enum chaos_role role, int64_t now)
{
    int i = chaos_procs_pick(r, role);

    if (i < 0)
        return false;
    chaos_procs_kill(r, i, now);
    return true;
}

static bool kill_worker(struct chaos_run *r, int64_t now)
{
    return kill_one(r, CHAOS_WORKER, now);
}

static bool kill_scheduler(struct chaos_run *r, int64_t now)
{
    return kill_one(r, CHAOS_SCHEDULER, now);
}

static bool pause_one(struct chaos_run *r, enum chaos_role role, int64_t now)
{
    int i = chaos_procs_pick(r, role);

    if (i < 0)
        return false;
    chaos_procs_pause(r, i, now);
    return true;
}

static bool pause_worker(struct chaos_run *r, int64_t now)
{
    return pause_one(r, CHAOS_WORKER, now);
}

static bool pause_scheduler(struct chaos_run *r, int64_t now)
{
    return pause_one(r, CHAOS_SCHEDULER, now);
}

/* Opens an outage at now; returns its index, or -1 when there is no room. */
static int outage_begin(struct chaos_run *r, int64_t now)
{
    if (r->n_outages >= CHAOS_MAX_OUTAGES)
        return -1;
    r->outages[r->n_outages] = (struct chaos_outage){now - r->t0, INT64_MAX};
    return r->n_outages++;
}

static void outage_end(struct chaos_run *r, int *i, int64_t now)
{
    if (*i >= 0)
        r->outages[*i].to = now - r->t0;
    *i = -1;
}

static bool redis_down(struct chaos_run *r, int64_t now, bool shutdown)
{
    if (!r->redis_up)
        return false;
    chaos_note(r, "fault: redis %s for_ms=%lld", shutdown ? "SHUTDOWN" : "SIGKILL",
               (long long)r->opts->redis_down_ms);
    chaos_stack_redis_down(r, shutdown);
    r->redis_up_at = now + r->opts->redis_down_ms;
    r->redis_outage = outage_begin(r, now);
    return true;
}

static bool redis_kill(struct chaos_run *r, int64_t now)
{
    return redis_down(r, now, false);
}

static bool redis_shutdown(struct chaos_run *r, int64_t now)
{
    return redis_down(r, now, true);
}

static bool redis_pause(struct chaos_run *r, int64_t now)
{
    if (!r->redis_up)
        return false;
    chaos_note(r, "fault: redis SIGSTOP for_ms=%lld", (long long)r->opts->redis_pause_ms);
    chaos_stack_redis_pause(r);
    r->redis_up_at = now + r->opts->redis_pause_ms;
    r->redis_outage = outage_begin(r, now);
    return true;
}

static bool broker_down(struct chaos_run *r, int64_t now)
{
    if (r->broker_up_at)
        return false;
    chaos_note(r, "fault: broker down for_ms=%lld", (long long)r->opts->broker_down_ms);
    rd_kafka_mock_broker_set_down(r->kafka.mcluster, -1);
    r->broker_up_at = now + r->opts->broker_down_ms;
    r->broker_outage = outage_begin(r, now);
    return true;
}

/* Retriable errors, as a broker under a leader change or overload answers:
 * clients must retry them, and nothing may be lost or decided on them. */
static bool request_errors(struct chaos_run *r, int64_t now)
{
    rd_kafka_mock_cluster_t *mc = r->kafka.mcluster;
    const size_t n = CHAOS_REQUEST_ERRORS_EACH;
    rd_kafka_resp_err_t produce[CHAOS_REQUEST_ERRORS_EACH],
        fetch[CHAOS_REQUEST_ERRORS_EACH], commit[CHAOS_REQUEST_ERRORS_EACH];

    (void)now;
    for (size_t i = 0; i < n; i++) {
        produce[i] = i % 2 ? RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS
                           : RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT;
        fetch[i] = RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION;
        commit[i] = RD_KAFKA_RESP_ERR_COORDINATOR_LOAD_IN_PROGRESS;
    }
    chaos_note(
        r, "fault: %zu failed produce, fetch, offset-commit and heartbeat requests", n);
    rd_kafka_mock_push_request_errors_array(mc, API_PRODUCE, n, produce);
    rd_kafka_mock_push_request_errors_array(mc, API_FETCH, n, fetch);
    rd_kafka_mock_push_request_errors_array(mc, API_OFFSET_COMMIT, n, commit);
    rd_kafka_mock_push_request_errors_array(mc, API_HEARTBEAT, n, commit);
    return true;
}

static bool latency(struct chaos_run *r, int64_t now)
{
    if (r->rtt_off_at)
        return false;
    chaos_note(r, "fault: broker latency rtt_ms=%d for_ms=%lld", r->opts->latency_ms,
               (long long)r->opts->latency_for_ms);
    rd_kafka_mock_broker_set_rtt(r->kafka.mcluster, -1, r->opts->latency_ms);
    r->rtt_off_at = now + r->opts->latency_for_ms;
    return true;
}

static bool poison(struct chaos_run *r, int64_t now)
{
    (void)now;
    if (r->poison_sent)
        return false;
    return chaos_load_poison(r) == 0;
}

static bool crash_code(struct chaos_run *r, int64_t now)
{
    (void)now;
    if (r->crash_sent)
        return false;
    return chaos_load_crash_code(r) == 0;
}

static bool rolling(struct chaos_run *r, int64_t now)
{
    if (r->rolling_next >= 0)
        return false;
    chaos_note(r, "fault: rolling restart of %d workers", r->opts->workers);
    r->rolling_next = 0;
    r->rolling_pid = 0;
    r->rolling_at = now;
    return true;
}

static const inject_fn injectors[CHAOS_FAULT__COUNT] = {
    [CHAOS_KILL_WORKER] = kill_worker,
    [CHAOS_KILL_SCHEDULER] = kill_scheduler,
    [CHAOS_PAUSE_WORKER] = pause_worker,
    [CHAOS_PAUSE_SCHEDULER] = pause_scheduler,
    [CHAOS_REDIS_KILL] = redis_kill,
    [CHAOS_REDIS_SHUTDOWN] = redis_shutdown,
    [CHAOS_REDIS_PAUSE] = redis_pause,
    [CHAOS_BROKER_DOWN] = broker_down,
    [CHAOS_REQUEST_ERRORS] = request_errors,
    [CHAOS_LATENCY] = latency,
    [CHAOS_POISON] = poison,
    [CHAOS_CRASH_CODE] = crash_code,
    [CHAOS_ROLLING] = rolling,
};

/* One worker at a time (workers are the first slots): SIGTERM it when it is
 * UP, wait until procs.c has started it again, then the next after a gap.
 * A worker that is down or paused for another fault is waited for. */
static void rolling_step(struct chaos_run *r, int64_t now)
{
    struct chaos_proc *p;

    if (r->rolling_next < 0 || now < r->rolling_at)
        return;
    if (r->rolling_next >= r->opts->workers) {
        chaos_note(r, "rolling restart done");
        r->rolling_next = -1;
        return;
    }
    p = &r->procs[r->rolling_next];
    if (p->state != CHAOS_UP)
        return;
    if (!r->rolling_pid) {
        r->rolling_pid = p->pid;
        chaos_procs_term(r, r->rolling_next, now);
    } else if (p->pid != r->rolling_pid) {
        r->rolling_next++;
        r->rolling_pid = 0;
        r->rolling_at = now + CHAOS_ROLLING_GAP_MS;
    }
}

/* Ends the faults with a duration whose time has come (all of them when
 * now is INT64_MAX). */
static void end_due(struct chaos_run *r, int64_t now, int64_t real_now)
{
    if (r->broker_up_at && now >= r->broker_up_at) {
        chaos_note(r, "broker up");
        rd_kafka_mock_broker_set_up(r->kafka.mcluster, -1);
        r->broker_up_at = 0;
        outage_end(r, &r->broker_outage, real_now);
    }
    if (r->rtt_off_at && now >= r->rtt_off_at) {
        chaos_note(r, "broker latency off");
        rd_kafka_mock_broker_set_rtt(r->kafka.mcluster, -1, 0);
        r->rtt_off_at = 0;
    }
    if (r->redis_up_at && now >= r->redis_up_at) {
        if (chaos_stack_redis_up(r) == 0) {
            chaos_note(r, "redis up");
            r->redis_up_at = 0;
            outage_end(r, &r->redis_outage, real_now);
        } else {
            chaos_note(r, "redis does not start again; retrying in 1 s");
            r->redis_up_at = real_now + 1000;
        }
    }
}

void chaos_faults_tick(struct chaos_run *r, int64_t now)
{
    if (r->faults && r->t0 && now < r->chaos_end) { /* not during the warm-up */
        for (int k = 0; k < CHAOS_FAULT__COUNT; k++) {
            const struct chaos_every *e = &r->opts->fault[k];

            if (!e->every_ms)
                continue;
            if (!r->next_fault[k])
                r->next_fault[k] = r->t0 + e->first_ms;
            if (now < r->next_fault[k])
                continue;
            r->next_fault[k] += e->every_ms;
            if (injectors[k](r, now))
                r->injected[k]++;
            else
                r->skipped[k]++;
        }
        rolling_step(r, now);
    }
    end_due(r, now, now);
}

void chaos_faults_end(struct chaos_run *r, int64_t now)
{
    static const int16_t apis[] = {API_PRODUCE, API_FETCH, API_OFFSET_COMMIT,
                                   API_HEARTBEAT};

    if (!r->faults)
        return;
    for (size_t i = 0; i < sizeof(apis) / sizeof(apis[0]); i++)
        rd_kafka_mock_clear_request_errors(r->kafka.mcluster, apis[i]);
    end_due(r, INT64_MAX, now);
    if (r->rolling_next >= 0)
        chaos_note(r, "rolling restart cut short by the end of the chaos");
    r->rolling_next = -1;
    chaos_procs_restore(r, now);
    chaos_note(r, "faults over: the drain begins");
}
