/* The process figures behind the process_* metrics, read from /proc in this
 * test's own process and moved on purpose: CPU burnt, descriptors opened,
 * memory touched. */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "err.h"
#include "procstat.h"

Test(procstat, parses_a_stat_line_whose_command_holds_spaces_and_parentheses)
{
    /* pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt
     * cmajflt utime stime cutime cstime priority nice threads itreal
     * starttime vsize rss ... */
    const char *line = "4242 (a) b (c)) S 1 4242 4242 0 -1 4194560 100 0 0 0 "
                       "250 50 7 3 20 0 4 0 123456 104857600 2560 18446744073709551615 "
                       "1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n";
    uint64_t cpu = 0, start = 0;
    int64_t rss = 0;

    cr_assert_eq(bt_procstat_parse_stat(line, &cpu, &start, &rss), 0);
    cr_assert_eq(cpu, 300, "utime + stime, children's times left out");
    cr_assert_eq(start, 123456);
    cr_assert_eq(rss, 2560);
    cr_assert_eq(bt_procstat_parse_stat("4242 (cut short) S 1 2", &cpu, &start, &rss),
                 BT_EIO);
    cr_assert_eq(bt_procstat_parse_stat("no parenthesis", &cpu, &start, &rss), BT_EIO);
}

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static double cpu_now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

Test(procstat, follows_this_process)
{
    struct bt_procstat before, after;
    volatile unsigned long spin = 0;
    double until;
    size_t size = 64u << 20;
    char *mem;
    int fds[3];

    cr_assert_eq(bt_procstat_read(&before), 0);
    /* criterion forks each test: this process started moments ago (btime
     * has whole seconds, hence the slack) */
    cr_assert(before.start_time <= now_s() + 1 && before.start_time > now_s() - 60,
              "start %.2f, now %.2f", before.start_time, now_s());
    cr_assert_gt(before.rss_bytes, 0);
    cr_assert_gt(before.open_fds, 2, "stdin, stdout and stderr at least");

    until = cpu_now_s() + 0.3;
    while (cpu_now_s() < until)
        spin++;
    for (int i = 0; i < 3; i++)
        cr_assert_geq(fds[i] = open("/dev/null", O_RDONLY), 0);
    cr_assert_not_null(mem = malloc(size));
    memset(mem, 1, size);
    cr_assert_eq(bt_procstat_read(&after), 0);

    cr_assert_geq(after.cpu_seconds - before.cpu_seconds, 0.2, "%.2f s then %.2f s",
                  before.cpu_seconds, after.cpu_seconds);
    cr_assert_eq(after.open_fds, before.open_fds + 3);
    cr_assert_geq(after.rss_bytes - before.rss_bytes, (int64_t)size / 2,
                  "%lld then %lld bytes", (long long)before.rss_bytes,
                  (long long)after.rss_bytes);
    cr_assert_eq(after.start_time, before.start_time);
    for (int i = 0; i < 3; i++)
        close(fds[i]);
    free(mem);
}
