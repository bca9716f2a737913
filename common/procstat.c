/* /proc readers for bt_procstat_read: small files read whole, parsed with
 * sscanf; nothing is cached, so a scrape sees the figures of that moment. */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "err.h"
#include "procstat.h"

/* The file's first n - 1 bytes, NUL-terminated. Returns 0 or BT_EIO. */
static int read_file(const char *path, char *buf, size_t n)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    ssize_t got;

    if (fd < 0)
        return BT_EIO;
    got = read(fd, buf, n - 1);
    close(fd);
    if (got <= 0)
        return BT_EIO;
    buf[got] = '\0';
    return 0;
}

int bt_procstat_parse_stat(const char *text, uint64_t *cpu_ticks, uint64_t *start_ticks,
                           int64_t *rss_pages)
{
    /* fields 3 on, after the command's closing parenthesis (proc(5)) */
    const char *p = strrchr(text, ')');
    unsigned long long utime, stime, start;
    long long rss;

    if (!p || sscanf(p + 1,
                     " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %*d %*d "
                     "%*d %*d %*d %*d %llu %*u %lld",
                     &utime, &stime, &start, &rss) != 4)
        return BT_EIO;
    *cpu_ticks = utime + stime;
    *start_ticks = start;
    *rss_pages = rss;
    return 0;
}

/* Seconds since the epoch at which the machine booted ("btime" of /proc/stat,
 * after the per-CPU and interrupt lines, which may be long). */
static int boot_time(long long *btime)
{
    FILE *f = fopen("/proc/stat", "re");
    char *line = NULL;
    size_t cap = 0;
    int ret = BT_EIO;

    if (!f)
        return BT_EIO;
    while (ret && getline(&line, &cap, f) > 0)
        if (sscanf(line, "btime %lld", btime) == 1)
            ret = 0;
    free(line);
    fclose(f);
    return ret;
}

static int64_t count_fds(void)
{
    DIR *dir = opendir("/proc/self/fd");
    struct dirent *d;
    int64_t n = 0;

    if (!dir)
        return -1;
    while ((d = readdir(dir)))
        n += d->d_name[0] != '.';
    closedir(dir);
    return n - 1; /* the directory's own descriptor */
}

int bt_procstat_read(struct bt_procstat *ps)
{
    char buf[1024];
    long ticks = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);
    uint64_t cpu, start;
    int64_t rss;
    long long btime;

    if (ticks <= 0 || page <= 0 || read_file("/proc/self/stat", buf, sizeof(buf)) ||
        bt_procstat_parse_stat(buf, &cpu, &start, &rss) || boot_time(&btime) ||
        (ps->open_fds = count_fds()) < 0)
        return BT_EIO;
    ps->start_time = (double)btime + (double)start / (double)ticks;
    ps->cpu_seconds = (double)cpu / (double)ticks;
    ps->rss_bytes = rss * page;
    return 0;
}
