/* Error code names and texts, generated from the one list in err.h. */
#include <stdio.h>
#include <stdlib.h>

#include "err.h"

const char *bt_strerror(int err)
{
    switch (err) {
    case BT_OK:
        return "success";
#define X(name, msg)                                                                     \
    case BT_##name:                                                                      \
        return msg;
        BT_ERRNO_MAP(X)
#undef X
    }
    return "unknown error";
}

const char *bt_err_name(int err)
{
    switch (err) {
    case BT_OK:
        return "OK";
#define X(name, msg)                                                                     \
    case BT_##name:                                                                      \
        return #name;
        BT_ERRNO_MAP(X)
#undef X
    }
    return "EUNKNOWN";
}

void bt__assert_fail(const char *expr, const char *file, int line)
{
    fprintf(stderr, "baton: assertion failed: %s at %s:%d\n", expr, file, line);
    abort();
}
