/* Crashes in plugin code. A worker runs its users' workflow and activity
 * code in its own process: a bug there (a NULL dereference on input the
 * code did not expect, an abort) kills the worker, and the message that
 * triggered it is read again by the next one, which dies the same way.
 * This module catches the fatal signals (SIGSEGV, SIGBUS, SIGILL, SIGFPE,
 * SIGABRT), exit() called by plugin code, and aborts workflow code that
 * loops; a recorder thread (the
 * crashed one may hold any lock) logs which code was running on what and
 * hands the crash to the recorder function before the process dies by the
 * signal, as it would have. What the recorder writes lets the next worker
 * stop running that code (docs/reliability.md, crashes in plugin code). */
#ifndef BT_FATAL_H
#define BT_FATAL_H

/* What a thread is running, set around each call into plugin code. The
 * strings are borrowed: they must live until bt_fatal_leave. */
struct bt_fatal_site {
    const char *kind; /* "workflow" or "activity" */
    const char *id;   /* the instance */
    const char *name; /* its workflow type, or the activity */
    long long seq;    /* activity: the step */
    int attempt;      /* activity: the attempt */
};

/* Called once per crash, on the recorder's thread, while the crashed thread
 * waits (at most BT_FATAL_RECORD_MS): site is the crashed thread's, what
 * the signal's name ("SIGSEGV"), "a hang", or "exit()" (then on the
 * exiting thread). */
typedef void (*bt_fatal_record_fn)(void *ctx, const struct bt_fatal_site *site,
                                   const char *what);

#define BT_FATAL_RECORD_MS 3000

/* Installs the handlers and starts the recorder thread when record is set:
 * once per process, from the main thread (which gets its handler stack).
 * The recorder also watches the threads (bt_fatal_thread_init) once a
 * second: one that stays in a call of workflow code for over hang_limit_ms
 * of its own CPU time (0: never) gets SIGABRT, and the hang is recorded as
 * that code's crash. Returns 0, or -1 when the thread cannot start (or on
 * a second call). */
int bt_fatal_install(bt_fatal_record_fn record, void *ctx, int hang_limit_ms);
/* No recorder from now on (before what its ctx points to goes): crashes are
 * still logged. */
void bt_fatal_forget(void);
/* Gives the calling thread a stack of its own for the handler, so that a
 * stack overflow in plugin code is caught too, and a place in the hang
 * watch: every thread that runs plugin code, before it does; 0 or -1.
 * bt_fatal_thread_done frees them, as the thread ends. */
int bt_fatal_thread_init(void);
void bt_fatal_thread_done(void);

/* The calling thread runs site's code from now until bt_fatal_leave. */
void bt_fatal_enter(const struct bt_fatal_site *site);
void bt_fatal_leave(void);

/* The signal's name ("SIGSEGV"), or "signal". */
const char *bt_fatal_signal_name(int sig);

#endif
