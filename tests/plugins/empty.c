/* A plugin that loads and registers nothing (a build that left its code out,
 * say): a worker given only this must refuse to start. */
#include "baton.h"

int baton_register(bt_registry *r)
{
    (void)r;
    return 0;
}
