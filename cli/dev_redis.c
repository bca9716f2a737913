/* The credentials of `baton dev`'s own redis-server, given to it in a config
 * file (mode 0600 in $BATON_HOME) rather than as flags: a command line is
 * anybody's to read in ps. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "err.h"
#include "log.h"

/* One config-file argument in double quotes, as redis-server reads them
 * (sdssplitargs): a password may hold spaces, quotes or backslashes. */
static void put_quoted(FILE *f, const char *lead, const char *v)
{
    fprintf(f, "\"%s", lead);
    for (; *v; v++)
        fprintf(f, *v == '"' || *v == '\\' ? "\\%c" : "%c", *v);
    fputc('"', f);
}

int bt_cli_dev_redis_conf(const struct bt_config *cfg, char *path, size_t n)
{
    FILE *f;
    int fd, bad;

    path[0] = '\0';
    if (!cfg->redis_password)
        return 0;
    snprintf(path, n, "%s/redis-auth.conf", cfg->home);
    unlink(path); /* a file left by another umask or user: start afresh */
    if ((fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600)) < 0 ||
        !(f = fdopen(fd, "w"))) {
        if (fd >= 0)
            close(fd);
        bt_log(BT_LOG_ERROR, "cannot write: %s file=%s", strerror(errno), path);
        return BT_EIO;
    }
    /* the default user gets the password too: clients without a user
     * (redis-cli -a) still work, and nobody gets in without it */
    fputs("requirepass ", f);
    put_quoted(f, "", cfg->redis_password);
    if (cfg->redis_user) {
        fputs("\nuser ", f);
        put_quoted(f, "", cfg->redis_user);
        fputs(" on ", f);
        put_quoted(f, ">", cfg->redis_password);
        fputs(" ~* &* +@all", f);
    }
    fputc('\n', f);
    bad = fflush(f) != 0;
    if (fclose(f) || bad) {
        bt_log(BT_LOG_ERROR, "cannot write: %s file=%s", strerror(errno), path);
        return BT_EIO;
    }
    return 0;
}
