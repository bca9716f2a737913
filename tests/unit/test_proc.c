/* Child processes (common/proc.h): a signal sent the moment a child is
 * spawned reaches the program it becomes. */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdbool.h>

#include "proc.h"

static volatile sig_atomic_t got_term;

static void on_term(int sig)
{
    (void)sig;
    got_term = 1;
}

/* The parent catches SIGTERM, as baton-chaos and the CLI do. A SIGTERM
 * sent between the fork and the exec once ran the child's copy of that
 * handler, which set a flag the exec threw away: the child (here a sleep)
 * never stopped. Now each one dies of the signal. */
Test(proc, a_sigterm_sent_at_once_stops_the_child)
{
    char sleep[] = "/bin/sleep", secs[] = "30";
    char *const argv[] = {sleep, secs, NULL};
    char *const envp[] = {NULL};
    const struct bt_spawn how = {.deathsig = SIGKILL};
    struct sigaction sa = {.sa_handler = on_term}, before;

    sigemptyset(&sa.sa_mask);
    cr_assert_eq(sigaction(SIGTERM, &sa, &before), 0);
    for (int i = 0; i < 200; i++) {
        pid_t pid = bt_proc_spawn(argv, envp, &how);
        int status;

        cr_assert_gt(pid, 0);
        kill(pid, SIGTERM);
        if ((status = bt_proc_wait(pid, 2000)) < 0) {
            kill(pid, SIGKILL);
            bt_proc_wait(pid, 2000);
        }
        cr_assert_eq(status, 128 + SIGTERM, "child %d: %s (status %d)", i,
                     status < 0 ? "its SIGTERM was lost" : "not ended by it", status);
    }
    sigaction(SIGTERM, &before, NULL);
    cr_assert_eq(got_term, 0, "the parent's handler ran: the signal was its own");
}
