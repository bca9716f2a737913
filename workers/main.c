/* baton-worker: loads the plugins, then runs the workflow role on
 * --workflow-threads threads (each a consumer of its share of the events
 * partitions) and the activity role on its own threads until SIGTERM or
 * SIGINT. */
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "acttask.h"
#include "admission.h"
#include "alive.h"
#include "args.h"
#include "config.h"
#include "crashes.h"
#include "err.h"
#include "fatal.h"
#include "kafka.h"
#include "log.h"
#include "metrics.h"
#include "registry.h"
#include "stop.h"
#include "wftask.h"

static volatile sig_atomic_t stopping;

/* A stop hands work on and closes the Kafka clients, each step bounded by
 * its own timeout; stop-timeout-ms bounds the whole from the signal on,
 * whatever blocks (stop.h). */
static void on_signal(int sig)
{
    (void)sig;
    stopping = 1;
    bt_stop_signal();
}

static const struct bt_cmd worker_cmd = {
    .name = "baton-worker",
    .synopsis = "[--plugin lib.so]... [--queues q1,q2] [--concurrency N] [settings]",
    .about = "Run the workflows and activities the plugins register, for the queues it "
             "serves, until SIGTERM or SIGINT.",
    .settings = (const char *const[]){"plugin",
                                      "queues",
                                      "concurrency",
                                      "workflow-threads",
                                      "eager",
                                      "member",
                                      "brokers",
                                      "redis",
                                      "redis-password",
                                      "prefix",
                                      "key-prefix",
                                      "max-payload",
                                      "activity-timeout-ms",
                                      "history-max",
                                      "concurrency-lease-ms",
                                      "watchdog-ms",
                                      "embedded",
                                      "metrics-addr",
                                      "metrics-port",
                                      "log-level",
                                      "log-json",
                                      "kafka.<property>=<value>",
                                      NULL},
};

/* The activity role as the workflow role's eager executor. */
static bool eager_fits(void *at, const char *queue, int64_t timeout_ms, int more)
{
    return bt_acttask_eager_fits(at, queue, timeout_ms, more);
}

static void eager_submit(void *at, const char *payload, size_t len,
                         struct bt_wftask *owner)
{
    bt_acttask_submit(at, payload, len, owner);
}

/* The registry's workflow types, for the heartbeat to register: a new array
 * of borrowed names (caller frees the array), or NULL out of memory. */
static const char **workflow_types(const bt_registry *reg)
{
    const char **types = calloc(reg->n_workflows + 1, sizeof(*types));

    for (size_t i = 0; types && i < reg->n_workflows; i++)
        types[i] = reg->workflows[i].type;
    return types;
}

static void *run_workflows(void *wt)
{
    bt_fatal_thread_init(); /* no-op on the main thread: it has one */
    while (!stopping)
        bt_wftask_poll(wt, 100);
    bt_fatal_thread_done();
    return NULL;
}

#define MAX_WORKFLOW_THREADS 64

/* What main starts, stopped in reverse by stop_all. */
struct worker {
    struct bt_config cfg;
    char name[300]; /* host:pid, as in the outbox fields and the heartbeat */
    bt_registry *reg;
    struct bt_metrics *metrics;
    struct bt_wftask *wts[MAX_WORKFLOW_THREADS];
    int n_wts;
    struct bt_acttask *at;
    struct bt_alive *alive;
    struct bt_crashes *crashes;
    const char **types;
};

/* Loads the plugins. Returns 0, or the exit code: 1 when one does not
 * load, 2 when they register nothing. */
static int load_plugins(struct worker *w, char *errstr, size_t errstr_size)
{
    w->reg = bt_registry_new();
    for (size_t i = 0; i < w->cfg.n_plugins; i++) {
        if (bt_registry_load(w->reg, w->cfg.plugins[i], errstr, errstr_size)) {
            bt_log(BT_LOG_ERROR, "%s", errstr);
            return 1;
        }
    }
    /* a worker with nothing registered would join the groups, take its
     * share of the partitions and fail what arrives there (unknown workflow
     * type, ActivityNotRegistered): a deploy that lost its plugin setting
     * must stop here, loudly, not look healthy */
    if (w->reg->n_workflows == 0 && w->reg->n_activities == 0) {
        bt_log(BT_LOG_ERROR,
               "nothing to run: no workflow or activity registered (plugins=%zu); "
               "give --plugin lib.so or BATON_PLUGINS=a.so:b.so",
               w->cfg.n_plugins);
        return 2;
    }
    return 0;
}

/* The roles, the metrics and the heartbeat. Returns 0, or BT_EIO (BT_ENOMEM)
 * with errstr. */
static int start_roles(struct worker *w, char *errstr, size_t errstr_size)
{
    const struct bt_config *cfg = &w->cfg;

    /* first: plugin code runs from the moment the roles start */
    if (!(w->crashes = bt_crashes_install(cfg, w->name, errstr, errstr_size)))
        return BT_EIO;
    w->metrics = bt_metrics_new();
    for (w->n_wts = 0; w->n_wts < cfg->workflow_threads; w->n_wts++)
        if (!(w->wts[w->n_wts] =
                  bt_wftask_new(cfg, w->reg, w->metrics, w->name, errstr, errstr_size)))
            return BT_EIO;
    if (!(w->at =
              bt_acttask_new(cfg, w->reg, w->metrics, w->name, errstr, errstr_size)) ||
        bt_metrics_start(w->metrics, cfg, errstr, errstr_size))
        return BT_EIO;
    if (!(w->types = workflow_types(w->reg))) {
        snprintf(errstr, errstr_size, "out of memory");
        return BT_ENOMEM;
    }
    /* eager tasks are recovered from the outbox once its key is gone */
    if (!(w->alive =
              bt_alive_start(cfg, w->name, w->types, w->reg->n_workflows,
                             bt_admission_rate_waiting(w->metrics), errstr, errstr_size)))
        return BT_EIO;
    if (cfg->eager)
        bt_acttask_on_local_outcome(w->at, bt_wftask_deliver);
    for (int i = 0; i < w->n_wts; i++) {
        bt_wftask_set_stop(w->wts[i], &stopping);
        if (cfg->eager)
            bt_wftask_set_eager(
                w->wts[i], &(struct bt_wftask_eager){
                               .fits = eager_fits, .submit = eager_submit, .ctx = w->at});
    }
    return 0;
}

/* The workflow threads until a signal: the first on this thread. */
static void run(struct worker *w)
{
    pthread_t threads[MAX_WORKFLOW_THREADS];
    int n_threads = 0;

    for (int i = 1; i < w->n_wts; i++) {
        if (pthread_create(&threads[n_threads], NULL, run_workflows, w->wts[i])) {
            bt_log(BT_LOG_ERROR, "cannot start a workflow thread");
            stopping = 1;
            break;
        }
        n_threads++;
    }
    run_workflows(w->wts[0]);
    for (int i = 0; i < n_threads; i++)
        pthread_join(threads[i], NULL);
}

static void log_totals(const struct worker *w)
{
    struct bt_wftask_stats ws = {0};
    struct bt_acttask_stats as = bt_acttask_stats(w->at);

    for (int i = 0; i < w->n_wts; i++) {
        const struct bt_wftask_stats *s = bt_wftask_stats(w->wts[i]);
        ws.events += s->events;
        ws.duplicates += s->duplicates;
        ws.dead += s->dead;
        ws.conflicts += s->conflicts;
    }
    bt_log(BT_LOG_INFO,
           "stopping: events=%llu duplicates_ignored=%llu dead_letters=%llu "
           "conflicts=%llu attempts=%llu stale_tasks=%llu",
           (unsigned long long)ws.events, (unsigned long long)ws.duplicates,
           (unsigned long long)(ws.dead + as.dead), (unsigned long long)ws.conflicts,
           (unsigned long long)as.started, (unsigned long long)as.stale);
}

/* Stops what started, in this order: the metrics, the activity role (its
 * running attempts finish), the workflow role, then the heartbeat, after
 * the eager tasks' outcomes are forgotten. NULL handles are skipped. */
static void stop_all(struct worker *w)
{
    bt_stop_step("metrics");
    bt_metrics_stop(w->metrics);
    bt_stop_step("activity role");
    bt_acttask_destroy(w->at);
    for (int i = 0; i < w->n_wts + 1 && i < MAX_WORKFLOW_THREADS; i++) {
        bt_stop_step("workflow role");
        bt_wftask_destroy(w->wts[i]);
    }
    bt_stop_step("heartbeat");
    bt_alive_stop(w->alive);
    bt_crashes_destroy(w->crashes);
    bt_stop_step("stopped");
    bt_metrics_destroy(w->metrics);
    free(w->types);
    bt_registry_destroy(w->reg);
    bt_config_release(&w->cfg);
}

int main(int argc, char **argv)
{
    static struct worker w;
    char errstr[512], host[256] = "localhost";
    int ret;

    /* no fastbins: a batch frees thousands of small blocks at once, and each
     * large free then walked and merged them all (malloc_consolidate: 2 % of
     * the worker's instructions; 48-50 against 52 µs of CPU per chain step in
     * turns); small blocks still go through the tcache */
    mallopt(M_MXFAST, 0);
    /* first: a SIGTERM while the worker starts is a clean stop too, not
     * the default action's death by signal */
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    signal(SIGPIPE, SIG_IGN);

    if (bt_config_load(&w.cfg, &argc, argv, errstr, sizeof(errstr))) {
        fprintf(stderr,
                "baton-worker: %s\n  (`baton-worker --help` lists the settings)\n",
                errstr);
        ret = 2;
        goto out;
    }
    if ((ret = bt_args_parse(&worker_cmd, argc, argv, NULL, &(int){0}))) {
        ret = ret == 1 ? 0 : 2; /* --help or --version; or a usage error */
        goto out;
    }
    /* bt_config_load refused a level it does not know */
    bt_log_setup("worker", (enum bt_log_level)bt_log_parse_level(w.cfg.log_level),
                 w.cfg.log_json);
    if (bt_stop_arm(w.cfg.stop_timeout_ms)) {
        bt_log(BT_LOG_ERROR, "cannot start: out of memory");
        ret = 1;
        goto out;
    }
    gethostname(host, sizeof(host) - 1);
    snprintf(w.name, sizeof(w.name), "%s:%d", host, (int)getpid());
    if ((ret = load_plugins(&w, errstr, sizeof(errstr))))
        goto out;
    bt_log(BT_LOG_INFO,
           "starting: workflows=%zu activities=%zu queues=%s concurrency=%d "
           "brokers=%s redis=%s prefix=%s",
           w.reg->n_workflows, w.reg->n_activities, w.cfg.queues, w.cfg.concurrency,
           w.cfg.brokers, w.cfg.redis, w.cfg.prefix);
    if (stopping) {
        bt_log(BT_LOG_INFO, "stopping: told to stop while it loaded its plugins");
        goto out;
    }
    if (start_roles(&w, errstr, sizeof(errstr))) {
        bt_log(BT_LOG_ERROR, "cannot start: %s", errstr);
        ret = 1;
        goto out;
    }
    run(&w);
    bt_stop_signal(); /* when a role failed: no signal came */
    log_totals(&w);
out:
    stop_all(&w);
    return ret;
}
