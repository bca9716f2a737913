/* Processes and their CPU, from /proc: the roles of the stack and what
 * each costs. */
#define _GNU_SOURCE /* nftw, asprintf */
#include "driver.h"

/* comm, ppid and utime + stime (clock ticks) of /proc/<path>/stat. */
int bench_read_stat(const char *path, char *comm, size_t n, pid_t *ppid,
                    unsigned long long *ticks)
{
    char buf[1024], *open_paren, *close_paren;
    unsigned long long utime, stime;
    int fd = open(path, O_RDONLY | O_CLOEXEC), pp;
    ssize_t len;

    if (fd < 0)
        return BT_EIO;
    len = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (len <= 0)
        return BT_EIO;
    buf[len] = '\0';
    if (!(open_paren = strchr(buf, '(')) || !(close_paren = strrchr(buf, ')')))
        return BT_EIO;
    if (comm)
        snprintf(comm, n, "%.*s", (int)(close_paren - open_paren - 1), open_paren + 1);
    /* after the comm: state ppid pgrp session tty tpgid flags minflt cminflt
     * majflt cmajflt utime stime */
    if (sscanf(close_paren + 2, "%*c %d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
               &pp, &utime, &stime) != 3)
        return BT_EIO;
    if (ppid)
        *ppid = pp;
    if (ticks)
        *ticks = utime + stime;
    return 0;
}

const char *const bench_role_names[N_ROLES] = {"worker", "scheduler", "redis", "broker",
                                               "driver"};

/* Whether /proc/<pid>/<file> (NUL-separated strings) contains needle. */
static bool proc_mentions(const char *pid, const char *file, const char *needle)
{
    char path[300], buf[65536];
    int fd;
    ssize_t len;

    snprintf(path, sizeof(path), "/proc/%s/%s", pid, file);
    if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
        return false;
    len = read(fd, buf, sizeof(buf));
    close(fd);
    return len > 0 && memmem(buf, (size_t)len, needle, strlen(needle));
}

/* Processes named comm that are children of parent, or (parent 0) that name
 * brokers in their command line or environment: the ones serving our stack,
 * not whatever else runs here. */
int bench_find_procs(const char *comm, pid_t parent, const char *brokers, pid_t *pids,
                     int max)
{
    DIR *dir = opendir("/proc");
    struct dirent *de;
    int n = 0;

    if (!dir)
        return 0;
    while ((de = readdir(dir)) && n < max) {
        char path[300], name[64];
        pid_t ppid;
        if (de->d_name[0] < '0' || de->d_name[0] > '9')
            continue;
        snprintf(path, sizeof(path), "/proc/%s/stat", de->d_name);
        if (bench_read_stat(path, name, sizeof(name), &ppid, NULL) || strcmp(name, comm))
            continue;
        if (parent ? ppid == parent
                   : proc_mentions(de->d_name, "cmdline", brokers) ||
                         proc_mentions(de->d_name, "environ", brokers))
            pids[n++] = (pid_t)atoi(de->d_name);
    }
    closedir(dir);
    return n;
}

/* Nanoseconds the main thread of pid ran and waited, runnable, for a CPU
 * (/proc/<pid>/schedstat): a process that waits as long as it runs did not
 * get the CPU it could have used. */
void bench_read_schedstat(pid_t pid, unsigned long long *run_ns,
                          unsigned long long *wait_ns)
{
    char path[64];
    FILE *f;

    *run_ns = *wait_ns = 0;
    snprintf(path, sizeof(path), "/proc/%d/schedstat", (int)pid);
    if (!(f = fopen(path, "r")))
        return;
    if (fscanf(f, "%llu %llu", run_ns, wait_ns) != 2)
        *run_ns = *wait_ns = 0;
    fclose(f);
}

/* The threads of pid with their CPU; returns how many (at most max). */
int bench_read_threads(pid_t pid, struct thread_cpu *t, int max)
{
    char path[300];
    DIR *dir;
    struct dirent *de;
    int n = 0;

    snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
    if (!(dir = opendir(path)))
        return 0;
    while ((de = readdir(dir)) && n < max) {
        if (de->d_name[0] < '0' || de->d_name[0] > '9')
            continue;
        snprintf(path, sizeof(path), "/proc/%d/task/%s/stat", (int)pid, de->d_name);
        if (bench_read_stat(path, t[n].comm, sizeof(t[n].comm), NULL, &t[n].ticks) == 0)
            t[n++].tid = (pid_t)atoi(de->d_name);
    }
    closedir(dir);
    return n;
}

/* busy and total jiffies of the whole machine */
void bench_machine_cpu(unsigned long long *busy, unsigned long long *total)
{
    unsigned long long v[10] = {0};
    FILE *f = fopen("/proc/stat", "r");

    *busy = *total = 0;
    if (!f)
        return;
    if (fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1],
               &v[2], &v[3], &v[4], &v[5], &v[6], &v[7], &v[8], &v[9]) >= 8) {
        for (int i = 0; i < 8; i++) /* guest time is already in user */
            *total += v[i];
        *busy = *total - v[3] - v[4]; /* minus idle and iowait */
    }
    fclose(f);
}
