/* Crashes in plugin code (fatal.h). The handler itself only does what is
 * safe in a signal handler: it copies the crashed thread's site, wakes the
 * recorder thread, waits for it a bounded time and lets the signal's
 * default action end the process. The recorder, a thread that never runs
 * plugin code, logs the crash and calls the recorder function. When the
 * crash left the heap or a lock unusable, the recorder may not get through:
 * the process still dies at the deadline, after a plain line on stderr. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdbool.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fatal.h"
#include "log.h"

static const int fatal_signals[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT};

static _Thread_local const struct bt_fatal_site *running;
static _Thread_local void *altstack;

static _Atomic(bt_fatal_record_fn) recorder;
static void *recorder_ctx;
static sem_t wake;
static struct bt_fatal_site crashed; /* the site, copied by the handler */
static int crashed_sig;
static atomic_int crashing; /* a handler has begun: later ones just wait */
static atomic_int recorded;

const char *bt_fatal_signal_name(int sig)
{
    switch (sig) {
    case SIGSEGV:
        return "SIGSEGV";
    case SIGBUS:
        return "SIGBUS";
    case SIGILL:
        return "SIGILL";
    case SIGFPE:
        return "SIGFPE";
    case SIGABRT:
        return "SIGABRT";
    default:
        return "signal";
    }
}

void bt_fatal_enter(const struct bt_fatal_site *site)
{
    running = site;
}

void bt_fatal_leave(void)
{
    running = NULL;
}

/* write(2) of a few strings: all a handler may do to say something. */
static void say(const char *const *parts)
{
    for (; *parts; parts++)
        if (write(STDERR_FILENO, *parts, strlen(*parts)) < 0)
            return;
}

static void on_fatal(int sig)
{
    const struct bt_fatal_site *site = running;
    const char *name = bt_fatal_signal_name(sig);

    if (atomic_exchange(&crashing, 1) == 0) {
        if (site)
            crashed = *site;
        crashed_sig = sig;
        if (atomic_load(&recorder)) {
            sem_post(&wake);
            for (int ms = 0; ms < BT_FATAL_RECORD_MS && !atomic_load(&recorded); ms += 10)
                nanosleep(&(struct timespec){0, 10 * 1000000L}, NULL);
        }
        if (!atomic_load(&recorded))
            say((const char *[]){
                "baton: crashed (", name, ") in ", site ? site->kind : "baton's own",
                " code", site ? ": workflow=" : "", site ? site->id : "", "\n", NULL});
    } else {
        /* another thread is recording: the process ends with it */
        for (int ms = 0; ms < BT_FATAL_RECORD_MS + 1000; ms += 10)
            nanosleep(&(struct timespec){0, 10 * 1000000L}, NULL);
    }
    /* the default action, as if nothing had caught it: a core, the status */
    signal(sig, SIG_DFL);
    raise(sig);
}

static void *record_thread(void *arg)
{
    sigset_t all;

    (void)arg;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL);
    while (sem_wait(&wake) != 0)
        ;
    if (crashed.kind && !strcmp(crashed.kind, "activity"))
        bt_log(BT_LOG_ERROR,
               "crashed in activity code: signal=%s workflow=%s activity=%s seq=%lld "
               "attempt=%d",
               bt_fatal_signal_name(crashed_sig), crashed.id, crashed.name, crashed.seq,
               crashed.attempt);
    else if (crashed.kind)
        bt_log(BT_LOG_ERROR, "crashed in workflow code: signal=%s workflow=%s type=%s",
               bt_fatal_signal_name(crashed_sig), crashed.id, crashed.name);
    else
        bt_log(BT_LOG_ERROR, "crashed outside plugin code: signal=%s",
               bt_fatal_signal_name(crashed_sig));
    bt_fatal_record_fn record = atomic_load(&recorder);
    if (crashed.kind && record)
        record(recorder_ctx, &crashed, crashed_sig);
    atomic_store(&recorded, 1);
    return NULL;
}

int bt_fatal_install(bt_fatal_record_fn record, void *ctx)
{
    static bool installed;
    struct sigaction sa;
    pthread_t thread;

    if (installed)
        return -1;
    installed = true;
    if (record) {
        recorder_ctx = ctx;
        atomic_store(&recorder, record);
        sem_init(&wake, 0, 0);
        if (pthread_create(&thread, NULL, record_thread, NULL)) {
            atomic_store(&recorder, NULL);
            return -1;
        }
        pthread_detach(thread);
    }
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_fatal;
    sa.sa_flags = SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < sizeof(fatal_signals) / sizeof(fatal_signals[0]); i++)
        sigaction(fatal_signals[i], &sa, NULL);
    return bt_fatal_thread_init();
}

void bt_fatal_forget(void)
{
    atomic_store(&recorder, NULL);
}

int bt_fatal_thread_init(void)
{
    stack_t ss = {.ss_size = 64 * 1024};

    if (altstack)
        return 0;
    if (!(ss.ss_sp = malloc(ss.ss_size)))
        return -1;
    if (sigaltstack(&ss, NULL)) {
        free(ss.ss_sp);
        return -1;
    }
    altstack = ss.ss_sp;
    return 0;
}

void bt_fatal_thread_done(void)
{
    if (!altstack)
        return;
    sigaltstack(&(stack_t){.ss_flags = SS_DISABLE}, NULL);
    free(altstack);
    altstack = NULL;
}
