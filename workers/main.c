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
#include "kafka.h"
#include "log.h"
#include "metrics.h"
#include "registry.h"
#include "stop.h"
#include "wftask.h"

static volatile sig_atomic_t stopping;

/* A stop hands work on and closes the Kafka clients, each step bounded by
 * its own timeout; STOP_GRACE_S bounds the whole, whatever blocks (stop.h). */
#define STOP_GRACE_S 20

static void on_signal(int sig)
{
    (void)sig;
    stopping = 1;
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
static int eager_slots(void *at, const char *queue)
{
    return bt_acttask_eager_slots(at, queue);
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
    while (!stopping)
        bt_wftask_poll(wt, 100);
    return NULL;
}

int main(int argc, char **argv)
{
    struct bt_config cfg;
    char errstr[512], name[300], host[256] = "localhost";
    bt_registry *reg = NULL;
    struct bt_metrics *metrics = NULL;
    struct bt_wftask *wts[64] = {NULL};
    pthread_t threads[64];
    int n_wts = 0, n_threads = 0;
    struct bt_acttask *at = NULL;
    struct bt_alive *alive = NULL;
    const char **types = NULL;
    struct bt_wftask_stats ws = {0};
    int ret = 1;

    /* no fastbins: a batch frees thousands of small blocks at once, and each
     * large free then walked and merged them all (malloc_consolidate: 2 % of
     * the worker's instructions; 48-50 against 52 µs of CPU per chain step in
     * turns); small blocks still go through the tcache */
    mallopt(M_MXFAST, 0);

    if (bt_config_load(&cfg, &argc, argv, errstr, sizeof(errstr))) {
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
    ret = 1;
    /* bt_config_load refused a level it does not know */
    bt_log_setup("worker", (enum bt_log_level)bt_log_parse_level(cfg.log_level),
                 cfg.log_json);
    gethostname(host, sizeof(host) - 1);
    snprintf(name, sizeof(name), "%s:%d", host, (int)getpid());

    reg = bt_registry_new();
    for (size_t i = 0; i < cfg.n_plugins; i++) {
        if (bt_registry_load(reg, cfg.plugins[i], errstr, sizeof(errstr))) {
            bt_log(BT_LOG_ERROR, "%s", errstr);
            goto out;
        }
    }
    /* a worker with nothing registered would join the groups, take its
     * share of the partitions and fail what arrives there (unknown workflow
     * type, ActivityNotRegistered): a deploy that lost its plugin setting
     * must stop here, loudly, not look healthy */
    if (reg->n_workflows == 0 && reg->n_activities == 0) {
        bt_log(BT_LOG_ERROR,
               "nothing to run: no workflow or activity registered (plugins=%zu); "
               "give --plugin lib.so or BATON_PLUGINS=a.so:b.so",
               cfg.n_plugins);
        ret = 2;
        goto out;
    }
    bt_log(BT_LOG_INFO,
           "starting: workflows=%zu activities=%zu queues=%s concurrency=%d "
           "brokers=%s redis=%s prefix=%s",
           reg->n_workflows, reg->n_activities, cfg.queues, cfg.concurrency, cfg.brokers,
           cfg.redis, cfg.prefix);

    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    signal(SIGPIPE, SIG_IGN);
    metrics = bt_metrics_new();
    for (n_wts = 0; n_wts < cfg.workflow_threads; n_wts++)
        if (!(wts[n_wts] =
                  bt_wftask_new(&cfg, reg, metrics, name, errstr, sizeof(errstr))))
            break;
    if (n_wts < cfg.workflow_threads ||
        !(at = bt_acttask_new(&cfg, reg, metrics, name, errstr, sizeof(errstr))) ||
        bt_metrics_start(metrics, &cfg, errstr, sizeof(errstr)) ||
        !(types = workflow_types(reg)) ||
        /* eager tasks are recovered from the outbox once its key is gone */
        !(alive = bt_alive_start(&cfg, name, types, reg->n_workflows,
                                 bt_admission_rate_waiting(metrics), errstr,
                                 sizeof(errstr)))) {
        bt_log(BT_LOG_ERROR, "cannot start: %s", errstr);
        goto out;
    }
    if (cfg.eager)
        bt_acttask_on_local_outcome(at, bt_wftask_deliver);
    for (int i = 0; i < n_wts; i++) {
        bt_wftask_set_stop(wts[i], &stopping);
        if (cfg.eager)
            bt_wftask_set_eager(wts[i], &(struct bt_wftask_eager){.slots = eager_slots,
                                                                  .submit = eager_submit,
                                                                  .ctx = at});
        if (i > 0 && pthread_create(&threads[n_threads++], NULL, run_workflows, wts[i])) {
            n_threads--;
            bt_log(BT_LOG_ERROR, "cannot start a workflow thread");
            stopping = 1;
        }
    }
    run_workflows(wts[0]);
    for (int i = 0; i < n_threads; i++)
        pthread_join(threads[i], NULL);
    for (int i = 0; i < n_wts; i++) {
        const struct bt_wftask_stats *s = bt_wftask_stats(wts[i]);
        ws.events += s->events;
        ws.duplicates += s->duplicates;
        ws.dead += s->dead;
        ws.conflicts += s->conflicts;
    }
    {
        struct bt_acttask_stats as = bt_acttask_stats(at);
        bt_log(BT_LOG_INFO,
               "stopping: events=%llu duplicates_ignored=%llu dead_letters=%llu "
               "conflicts=%llu attempts=%llu stale_tasks=%llu",
               (unsigned long long)ws.events, (unsigned long long)ws.duplicates,
               (unsigned long long)(ws.dead + as.dead), (unsigned long long)ws.conflicts,
               (unsigned long long)as.started, (unsigned long long)as.stale);
    }
    ret = 0;
    bt_stop_begin(STOP_GRACE_S);
out:
    bt_stop_step("metrics");
    bt_metrics_stop(metrics);
    bt_stop_step("activity role");
    bt_acttask_destroy(at);
    for (int i = 0; i < n_wts + 1 && i < 64; i++) {
        bt_stop_step("workflow role");
        bt_wftask_destroy(wts[i]);
    }
    bt_stop_step("heartbeat");
    bt_alive_stop(alive); /* after the eager tasks' outcomes are forgotten */
    bt_stop_step("stopped");
    bt_metrics_destroy(metrics);
    free(types);
    bt_registry_destroy(reg);
    bt_config_release(&cfg);
    return ret;
}
