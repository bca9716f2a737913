/* Shell commands and `cmake --install` for the tests that build plugins
 * against an installed baton. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "harness.h"
#include "install.h"

int bt_test_sh(const char *log_path, int timeout_ms, const char *fmt, ...)
{
    char cmd[4096];
    va_list ap;
    pid_t pid;
    int status;

    va_start(ap, fmt);
    int len = vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    if (len < 0 || (size_t)len >= sizeof(cmd))
        return -1;
    pid =
        bt_test_spawn((const char *const[]){"/bin/sh", "-c", cmd, NULL}, NULL, log_path);
    status = bt_test_wait(pid, timeout_ms);
    if (status < 0)
        bt_test_kill9(pid);
    return status;
}

int bt_test_install(const char *prefix, const char *log_path)
{
    return bt_test_sh(log_path, 60000, "'%s' --install '%s' --prefix '%s'",
                      BT_CMAKE_COMMAND, BT_BUILD_DIR, prefix) == 0
               ? 0
               : -1;
}

const char *bt_test_tail(const char *path, char *buf, size_t n)
{
    FILE *f = fopen(path, "r");
    size_t len = 0;

    buf[0] = '\0';
    if (!f)
        return buf;
    if (fseek(f, 0, SEEK_END) == 0) {
        long size = ftell(f);
        if (size > (long)(n - 1))
            fseek(f, size - (long)(n - 1), SEEK_SET);
        else
            rewind(f);
    }
    len = fread(buf, 1, n - 1, f);
    buf[len] = '\0';
    fclose(f);
    return buf;
}
