/* Installing this build tree and building against the installed baton, the
 * way a user does: shell commands with a deadline, `cmake --install`, and the
 * end of a log for assertion messages. baton-tests only: the paths are those
 * of the build it was compiled in (BT_BUILD_DIR, BT_CMAKE_COMMAND). */
#ifndef BT_INSTALL_H
#define BT_INSTALL_H

#include <stddef.h>

/* Runs `/bin/sh -c <cmd>`, cmd formatted from fmt, with stdout and stderr
 * appended to log_path. Returns its exit status, or -1 when it did not end
 * within timeout_ms (it is killed then). */
int bt_test_sh(const char *log_path, int timeout_ms, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* `cmake --install <this build> --prefix prefix`, output appended to
 * log_path. Returns 0 or -1. */
int bt_test_install(const char *prefix, const char *log_path);

/* The last n - 1 bytes (at most) of the file at path, NUL-terminated, in buf
 * ("" when it cannot be read). Returns buf. */
const char *bt_test_tail(const char *path, char *buf, size_t n);

#endif
