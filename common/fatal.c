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
#include <stdint.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "fatal.h"
#include "log.h"

static const int fatal_signals[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT};
#define N_FATAL (sizeof(fatal_signals) / sizeof(fatal_signals[0]))
/* what handled them before: the default action, or a sanitizer's report */
static struct sigaction previous[N_FATAL];

static _Thread_local const struct bt_fatal_site *running;
static _Thread_local void *altstack;

/* What each thread that runs plugin code is in, for the hang watch: the
 * site itself lives on that thread's stack, so only its kind is shared. */
#define MAX_THREADS 256
enum { IN_NOTHING, IN_WORKFLOW, IN_ACTIVITY };
struct slot {
    pthread_t thread;
    atomic_int used;
    atomic_int in;
    atomic_uint_fast64_t entries; /* calls into plugin code so far */
};
static struct slot slots[MAX_THREADS];
static atomic_int n_slots;
static _Thread_local struct slot *my_slot;

static _Atomic(bt_fatal_record_fn) recorder;
static void *recorder_ctx;
static int hang_ms;
static sem_t wake;
static struct bt_fatal_site crashed; /* the site, copied by the handler */
static int crashed_sig;
static atomic_int hung;     /* the abort is the hang watch's */
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
    if (my_slot) {
        atomic_fetch_add_explicit(&my_slot->entries, 1, memory_order_relaxed);
        atomic_store_explicit(&my_slot->in,
                              site->kind[0] == 'w' ? IN_WORKFLOW : IN_ACTIVITY,
                              memory_order_relaxed);
    }
}

void bt_fatal_leave(void)
{
    running = NULL;
    if (my_slot)
        atomic_store_explicit(&my_slot->in, IN_NOTHING, memory_order_relaxed);
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
        for (int ms = 0; ms < BT_FATAL_RECORD_MS + 1000 && !atomic_load(&recorded);
             ms += 10)
            nanosleep(&(struct timespec){0, 10 * 1000000L}, NULL);
    }
    /* what would have happened without us (the default action: a core, the
     * status; or a sanitizer's report), once this handler returns */
    for (size_t i = 0; i < N_FATAL; i++)
        if (fatal_signals[i] == sig)
            sigaction(sig, &previous[i], NULL);
    raise(sig);
}

/* CPU time thread has used, in ms; -1 when it cannot be read. */
static int64_t cpu_ms(pthread_t thread)
{
    clockid_t clock;
    struct timespec ts;

    if (pthread_getcpuclockid(thread, &clock) || clock_gettime(clock, &ts))
        return -1;
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Once a second: a thread that has been in the same call of workflow code
 * for over hang_ms of its own CPU time (workflow code does no I/O: a hang
 * is a loop) is aborted, which the handler then records as the crash of
 * that instance's code. CPU time, not the clock: a process stopped
 * (SIGSTOP) or starved does not look hung. */
static void watch_hangs(void)
{
    static uint_fast64_t seen[MAX_THREADS];
    static int64_t since[MAX_THREADS]; /* its CPU time when first seen in it */
    int n = atomic_load(&n_slots);

    for (int i = 0; i < n && i < MAX_THREADS; i++) {
        struct slot *sl = &slots[i];
        uint_fast64_t entries = atomic_load(&sl->entries);
        int64_t cpu;
        if (!atomic_load(&sl->used) || atomic_load(&sl->in) != IN_WORKFLOW ||
            (cpu = cpu_ms(sl->thread)) < 0) {
            seen[i] = 0;
            continue;
        }
        if (seen[i] != entries) {
            seen[i] = entries;
            since[i] = cpu;
        } else if (cpu - since[i] > hang_ms && !atomic_exchange(&hung, 1)) {
            bt_log(BT_LOG_ERROR,
                   "workflow code ran over %d ms of CPU without returning: the worker "
                   "aborts it",
                   hang_ms);
            pthread_kill(sl->thread, SIGABRT);
            return;
        }
    }
}

/* Waits for a crash, watching for hangs meanwhile, and records it. */
static void *record_thread(void *arg)
{
    sigset_t all;

    (void)arg;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL);
    for (;;) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec++;
        if (sem_timedwait(&wake, &until) == 0)
            break;
        if (hang_ms > 0)
            watch_hangs();
    }
    const char *what = atomic_load(&hung) && crashed_sig == SIGABRT
                           ? "a hang"
                           : bt_fatal_signal_name(crashed_sig);
    if (crashed.kind && !strcmp(crashed.kind, "activity"))
        bt_log(BT_LOG_ERROR,
               "crashed in activity code: signal=%s workflow=%s activity=%s seq=%lld "
               "attempt=%d",
               what, crashed.id, crashed.name, crashed.seq, crashed.attempt);
    else if (crashed.kind)
        bt_log(BT_LOG_ERROR, "crashed in workflow code: signal=%s workflow=%s type=%s",
               what, crashed.id, crashed.name);
    else
        bt_log(BT_LOG_ERROR, "crashed outside plugin code: signal=%s", what);
    bt_fatal_record_fn record = atomic_load(&recorder);
    if (crashed.kind && record)
        record(recorder_ctx, &crashed, what);
    atomic_store(&recorded, 1);
    return NULL;
}

/* exit() called by plugin code (atexit): no signal, the same end for the
 * worker, the same loop for the next one. A clean stop returns from main
 * with no plugin code running: nothing to say then. */
static void on_exit_in_code(void)
{
    const struct bt_fatal_site *site = running;
    bt_fatal_record_fn record = atomic_load(&recorder);

    if (!site)
        return;
    bt_log(BT_LOG_ERROR, "%s code called exit(): workflow=%s name=%s", site->kind,
           site->id, site->name);
    if (record && !atomic_exchange(&crashing, 1))
        record(recorder_ctx, site, "exit()");
}

int bt_fatal_install(bt_fatal_record_fn record, void *ctx, int hang_limit_ms)
{
    static bool installed;
    struct sigaction sa;
    pthread_t thread;

    if (installed)
        return -1;
    installed = true;
    if (record) {
        recorder_ctx = ctx;
        hang_ms = hang_limit_ms;
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
    for (size_t i = 0; i < N_FATAL; i++)
        sigaction(fatal_signals[i], &sa, &previous[i]);
    atexit(on_exit_in_code);
    return bt_fatal_thread_init();
}

void bt_fatal_forget(void)
{
    atomic_store(&recorder, NULL);
}

#define ALTSTACK_SIZE (64 * 1024)

int bt_fatal_thread_init(void)
{
    /* mapped, not malloc'd: kept out of the heap the thread's work churns */
    stack_t ss = {.ss_size = ALTSTACK_SIZE};

    if (altstack)
        return 0;
    ss.ss_sp = mmap(NULL, ALTSTACK_SIZE, PROT_READ | PROT_WRITE,
                    MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    if (ss.ss_sp == MAP_FAILED)
        return -1;
    if (sigaltstack(&ss, NULL)) {
        munmap(ss.ss_sp, ALTSTACK_SIZE);
        return -1;
    }
    altstack = ss.ss_sp;
    int i = atomic_fetch_add(&n_slots, 1);
    if (i < MAX_THREADS) {
        my_slot = &slots[i];
        my_slot->thread = pthread_self();
        atomic_store(&my_slot->used, 1);
    }
    return 0;
}

void bt_fatal_thread_done(void)
{
    if (!altstack)
        return;
    if (my_slot)
        atomic_store(&my_slot->used, 0);
    my_slot = NULL;
    sigaltstack(&(stack_t){.ss_flags = SS_DISABLE}, NULL);
    munmap(altstack, ALTSTACK_SIZE);
    altstack = NULL;
}
