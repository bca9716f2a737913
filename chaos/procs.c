/* The baton processes of a run: workers and schedulers in slots, each UP,
 * PAUSED, DOWN or STOPPING with one due time that says when its state ends.
 * Faults move a slot out of UP; the tick moves it back. An exit nobody asked
 * for is a crash: counted, logged and restarted like a kill. */
#include <signal.h>
#include <stdlib.h>

#include "chaos.h"

#define CHAOS_STOP_MS 30000 /* SIGTERM to exit, else SIGKILL */

static const char *role_name(enum chaos_role role)
{
    return role == CHAOS_WORKER ? "worker" : "scheduler";
}

static int spawn(struct chaos_run *r, int i)
{
    struct chaos_proc *p = &r->procs[i];
    char plugin[400];
    const char *worker[] = {BT_BIN_DIR "/baton-worker", "--plugin", plugin,
                            r->opts->eager ? "--eager=1" : "--eager=0", NULL};
    const char *scheduler[] = {BT_BIN_DIR "/baton-scheduler", NULL};

    snprintf(plugin, sizeof(plugin), "%s/%s.so", BT_PLUGIN_DIR, r->opts->plugin);
    p->pid = bt_test_spawn(p->role == CHAOS_WORKER ? worker : scheduler, r->envp, r->log);
    if (p->pid < 0) {
        chaos_note(r, "cannot start a %s", role_name(p->role));
        return -1;
    }
    p->state = CHAOS_UP;
    chaos_note(r, "started %s pid=%d slot=%d", role_name(p->role), (int)p->pid, i);
    return 0;
}

int chaos_procs_start(struct chaos_run *r)
{
    const struct chaos_opts *o = r->opts;

    r->n_procs = 0;
    for (int i = 0; i < o->workers + o->schedulers; i++) {
        r->procs[i].role = i < o->workers ? CHAOS_WORKER : CHAOS_SCHEDULER;
        r->n_procs++;
        if (spawn(r, i))
            return -1;
    }
    return 0;
}

int chaos_procs_pick(struct chaos_run *r, enum chaos_role role)
{
    int up[CHAOS_MAX_PROCS], n = 0;

    for (int i = 0; i < r->n_procs; i++)
        if (r->procs[i].role == role && r->procs[i].state == CHAOS_UP)
            up[n++] = i;
    return n ? up[rand_r(&r->seed) % n] : -1;
}

int chaos_procs_up(const struct chaos_run *r, enum chaos_role role)
{
    int n = 0;

    for (int i = 0; i < r->n_procs; i++)
        n += r->procs[i].role == role && r->procs[i].state == CHAOS_UP;
    return n;
}

void chaos_procs_kill(struct chaos_run *r, int i, int64_t now)
{
    struct chaos_proc *p = &r->procs[i];

    chaos_note(r, "fault: SIGKILL %s pid=%d", role_name(p->role), (int)p->pid);
    bt_test_kill9(p->pid);
    p->state = CHAOS_DOWN;
    p->due = now + r->opts->restart_after_ms;
}

void chaos_procs_pause(struct chaos_run *r, int i, int64_t now)
{
    struct chaos_proc *p = &r->procs[i];

    chaos_note(r, "fault: SIGSTOP %s pid=%d for_ms=%lld", role_name(p->role), (int)p->pid,
               (long long)r->opts->pause_ms);
    kill(p->pid, SIGSTOP);
    p->state = CHAOS_PAUSED;
    p->due = now + r->opts->pause_ms;
}

void chaos_procs_term(struct chaos_run *r, int i, int64_t now)
{
    struct chaos_proc *p = &r->procs[i];

    chaos_note(r, "fault: SIGTERM %s pid=%d (rolling restart)", role_name(p->role),
               (int)p->pid);
    kill(p->pid, SIGTERM);
    p->state = CHAOS_STOPPING;
    p->due = now + CHAOS_STOP_MS;
}

/* A STOPPING slot that exited (status >= 0) or outlived its due. Death by
 * the SIGTERM itself is a stop too: it came as the program started, before
 * it had its handler (bt_proc_spawn keeps one sent before the exec from
 * being lost in a copy of the parent's). */
static void stopped(struct chaos_run *r, struct chaos_proc *p, int status, int64_t now)
{
    if (status < 0) {
        chaos_note(r, "%s pid=%d still running %d s after SIGTERM: SIGKILL",
                   role_name(p->role), (int)p->pid, CHAOS_STOP_MS / 1000);
        bt_test_kill9(p->pid);
        r->unclean_stop++;
    } else if (status != 0 && status != 128 + SIGTERM) {
        chaos_note(r, "%s pid=%d exited with status %d after SIGTERM", role_name(p->role),
                   (int)p->pid, status);
        r->unclean_stop++;
    }
    p->state = CHAOS_DOWN;
    p->due = now;
}

void chaos_procs_tick(struct chaos_run *r, int64_t now)
{
    for (int i = 0; i < r->n_procs; i++) {
        struct chaos_proc *p = &r->procs[i];
        int status = p->state == CHAOS_DOWN ? -1 : bt_test_wait(p->pid, 0);

        if (p->state == CHAOS_STOPPING) {
            if (status >= 0 || now >= p->due)
                stopped(r, p, status, now);
        } else if (status >= 0) {
            chaos_note(r, "crash: %s pid=%d exited with status %d unasked",
                       role_name(p->role), (int)p->pid, status);
            r->crashes++;
            p->state = CHAOS_DOWN;
            p->due = now + r->opts->restart_after_ms;
        } else if (p->state == CHAOS_PAUSED && now >= p->due) {
            chaos_note(r, "SIGCONT %s pid=%d", role_name(p->role), (int)p->pid);
            kill(p->pid, SIGCONT);
            p->state = CHAOS_UP;
        }
        if (p->state == CHAOS_DOWN && now >= p->due && spawn(r, i))
            p->due = now + 1000;
    }
}

void chaos_procs_restore(struct chaos_run *r, int64_t now)
{
    for (int i = 0; i < r->n_procs; i++)
        if (r->procs[i].state == CHAOS_PAUSED || r->procs[i].state == CHAOS_DOWN)
            r->procs[i].due = now;
    chaos_procs_tick(r, now);
}

void chaos_procs_stop(struct chaos_run *r)
{
    int64_t deadline = bt_test_now_ms() + CHAOS_STOP_MS;

    /* all at once: each stops within its own shutdown timeout */
    for (int i = 0; i < r->n_procs; i++) {
        struct chaos_proc *p = &r->procs[i];

        if (p->state == CHAOS_DOWN)
            continue;
        if (p->state == CHAOS_PAUSED)
            kill(p->pid, SIGCONT);
        kill(p->pid, SIGTERM);
        p->state = CHAOS_STOPPING;
    }
    for (int i = 0; i < r->n_procs; i++) {
        struct chaos_proc *p = &r->procs[i];
        int64_t left = deadline - bt_test_now_ms();

        if (p->state == CHAOS_STOPPING)
            stopped(r, p, bt_test_wait(p->pid, left > 0 ? (int)left : 0), 0);
        p->state = CHAOS_DOWN;
        p->due = INT64_MAX; /* stays down */
    }
}
