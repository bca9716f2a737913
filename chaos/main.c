/* baton-chaos: flags, the temporary directory that keeps the logs, an
 * optional fault-free baseline run, the chaos run, and the exit status:
 * 0 when every invariant held, 1 when one failed, 2 when the run could not be
 * carried out. What each module does is in chaos.h. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "chaos.h"
#include "failpoint.h"
#include "log.h"

static void on_signal(int sig)
{
    (void)sig;
    chaos_interrupted = 1;
}

/* An assertion in this process is most likely the embedded Kafka cluster's
 * (librdkafka 2.0.2's mock coordinator, docs/chaos.md): the run cannot go
 * on. Whether to run again is attempts.c's to say, from the assertion's
 * text. The children die with us (their death signal). */
static void on_abort(int sig)
{
    (void)sig;
    _exit(CHAOS_EXIT_ABORT);
}

/* Failpoints of attempts.c's tests, as the run begins: an abort that says
 * what the embedded cluster's assertion says (in the first attempt only),
 * or another abort. */
static void failpoint_abort(void)
{
    const char *attempt = getenv("BATON_CHAOS_ATTEMPT");

    if (bt_failpoint("chaos-abort-as-the-embedded-cluster") && attempt &&
        !strcmp(attempt, "1")) {
        fprintf(stderr, "baton-chaos: rdkafka_mock_cgrp.c:236: "
                        "rd_kafka_mock_cgrp_member_sync_set: Assertion `!member->resp' "
                        "failed (failpoint)\n");
        abort();
    }
    if (bt_failpoint("chaos-abort")) {
        fprintf(stderr, "baton-chaos: an abort of the driver (failpoint)\n");
        abort();
    }
}

static int chaos_main(int argc, char **argv)
{
    struct chaos_opts opts;
    struct chaos_run base = {.opts = &opts, .name = "baseline", .faults = false};
    struct chaos_run run = {.opts = &opts, .name = "chaos", .faults = true};
    char dir[] = "/tmp/baton-chaos-XXXXXX";
    bool pass = true;
    int ret = chaos_opts_parse(&opts, argc, argv);

    if (ret)
        return ret < 0 ? 2 : 0;
    /* the driver's own Kafka clients complain during broker faults: expected */
    bt_log_setup("chaos", BT_LOG_ERROR, 0);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    signal(SIGPIPE, SIG_IGN);
    signal(SIGABRT, on_abort);
    if (!mkdtemp(dir)) {
        perror("baton-chaos: mkdtemp");
        return 2;
    }
    fprintf(stderr, "chaos: logs in %s (seed %u)\n", dir, opts.seed);
    failpoint_abort();
    ret = 2;
    if (opts.baseline) {
        if (chaos_run(&base, dir))
            goto out;
        pass = chaos_report(&base, NULL);
    }
    if (chaos_run(&run, dir))
        goto out;
    pass = chaos_report(&run, opts.baseline ? &base : NULL) && pass;
    ret = pass ? 0 : 1;
out:
    chaos_run_release(&base);
    chaos_run_release(&run);
    return ret;
}

int main(int argc, char **argv)
{
    return chaos_attempts(chaos_main, argc, argv);
}
