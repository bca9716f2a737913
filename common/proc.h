/* Child processes, as baton dev, baton bench and the tests start them: the
 * child gets only its stdio (no copy of a parent's socket keeps a connection
 * open after the parent closed it), dies with its parent (PDEATHSIG), and
 * may have its own process group, so that a Ctrl-C at the terminal reaches
 * the parent alone, which stops its children in order. */
#ifndef BT_PROC_H
#define BT_PROC_H

#include <stdbool.h>
#include <sys/types.h>

struct bt_spawn {
    const char *log; /* stdout and stderr go to this file; NULL: inherited */
    bool append;     /* add to the log rather than truncate it */
    bool stdin_null; /* stdin from /dev/null */
    bool own_group;  /* in a process group of its own */
    int deathsig;    /* sent to it when the parent thread dies (SIGTERM, SIGKILL) */
};

/* Starts argv[0] (a path) with envp. Everything the child needs is made
 * before the fork: between fork and exec only async-signal-safe calls, as
 * the parent may run threads. Returns the pid, or -1 (errno says why). */
pid_t bt_proc_spawn(char *const argv[], char *const envp[], const struct bt_spawn *how);

/* Waits up to timeout_ms for pid to end and reaps it. Its exit status (128 +
 * the signal for one killed), or -1 while it still runs. */
int bt_proc_wait(pid_t pid, int timeout_ms);

/* SIGTERM, up to timeout_ms to end, then SIGKILL (to its group too when
 * group); reaped either way. Its exit status, or -1. pid <= 0: nothing. */
int bt_proc_stop(pid_t pid, int timeout_ms, bool group);

/* Frees a NULL-terminated array of strings and the strings. */
void bt_strv_free(char **v);

#endif
