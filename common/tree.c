#define _XOPEN_SOURCE 700 /* nftw */
#include <ftw.h>
#include <stdio.h>

#include "tree.h"

static int remove_entry(const char *path, const struct stat *st, int type,
                        struct FTW *ftw)
{
    (void)st;
    (void)type;
    (void)ftw;
    return remove(path);
}

int bt_remove_tree(const char *dir)
{
    /* depth first: a directory goes once it is empty */
    return nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS) ? -1 : 0;
}
