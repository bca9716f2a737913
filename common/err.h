/* Error codes of every baton function: 0 is success, a negative BT_E* code is
 * failure. "Try again" (BT_EAGAIN: Redis or Kafka unreachable) is kept apart
 * from "never" (BT_EINVALMSG: bad input) because the worker's retry-or-DLQ
 * decision depends on it. */
#ifndef BT_ERR_H
#define BT_ERR_H

#define BT_ERRNO_MAP(X)                                                                  \
    X(EAGAIN, "service unreachable, try again")                                          \
    X(EINVALMSG, "invalid message")                                                      \
    X(ETOOBIG, "payload too large")                                                      \
    X(ENOMEM, "out of memory")                                                           \
    X(EINVAL, "invalid argument")                                                        \
    X(ENOENT, "not found")                                                               \
    X(EEXIST, "already exists")                                                          \
    X(ECONFLICT, "state changed concurrently")                                           \
    X(ENONDET, "workflow code does not match its journal")                               \
    X(ESTATE, "not allowed in this state")                                               \
    X(EIO, "i/o error")                                                                  \
    X(ETIMEDOUT, "timed out")

enum bt_err {
    BT_OK = 0,
#define X(name, msg) BT_##name,
    BT__EFIRST = -100,
    BT_ERRNO_MAP(X)
#undef X
};

/* Human-readable text of an error code; static, never NULL. */
const char *bt_strerror(int err);
/* Symbolic name of an error code ("EAGAIN"); static, never NULL. */
const char *bt_err_name(int err);

/* Aborts with file:line on a broken invariant (a bug), never on bad input. */
#define BT_ASSERT(e) ((e) ? (void)0 : bt__assert_fail(#e, __FILE__, __LINE__))
_Noreturn void bt__assert_fail(const char *expr, const char *file, int line);

#endif
