/* Failpoints; see failpoint.h. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "failpoint.h"

static const char *names; /* BATON_FAILPOINTS, or NULL */
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void load(void)
{
    names = getenv("BATON_FAILPOINTS");
}

bool bt_failpoint(const char *name)
{
    size_t len = strlen(name);

    pthread_once(&once, load);
    for (const char *p = names; p && *p; p += strcspn(p, ","), p += *p == ',') {
        if (strncmp(p, name, len) == 0 && (p[len] == ',' || p[len] == '\0'))
            return true;
    }
    return false;
}
