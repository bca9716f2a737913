/* libmicrohttpd for `baton ui`, loaded with dlopen when the command starts
 * rather than linked: linked, it and GnuTLS would be loaded by every `baton`
 * command, which costs each one ~5 ms (measured in docs/ui.md), for the one
 * command that serves HTTP. The header still gives the types and constants. */
#include <dlfcn.h>
#include <stdio.h>

#include "err.h"
#include "ui.h"

struct bt_ui_mhd bt_ui_mhd;

/* The sonames to try: Debian 12's, then any. */
static const char *const sonames[] = {"libmicrohttpd.so.12", "libmicrohttpd.so"};

int bt_ui_mhd_load(char *errstr, size_t errstr_size)
{
    struct {
        const char *name;
        void **fn;
    } syms[] = {
        {"MHD_start_daemon", (void **)&bt_ui_mhd.start_daemon},
        {"MHD_stop_daemon", (void **)&bt_ui_mhd.stop_daemon},
        {"MHD_get_daemon_info", (void **)&bt_ui_mhd.get_daemon_info},
        {"MHD_get_connection_info", (void **)&bt_ui_mhd.get_connection_info},
        {"MHD_lookup_connection_value", (void **)&bt_ui_mhd.lookup_connection_value},
        {"MHD_create_response_from_buffer",
         (void **)&bt_ui_mhd.create_response_from_buffer},
        {"MHD_add_response_header", (void **)&bt_ui_mhd.add_response_header},
        {"MHD_queue_response", (void **)&bt_ui_mhd.queue_response},
        {"MHD_destroy_response", (void **)&bt_ui_mhd.destroy_response},
    };
    void *handle = NULL;

    for (size_t i = 0; !handle && i < sizeof(sonames) / sizeof(sonames[0]); i++)
        handle = dlopen(sonames[i], RTLD_NOW | RTLD_LOCAL);
    if (!handle) {
        snprintf(errstr, errstr_size,
                 "cannot load libmicrohttpd (Debian: libmicrohttpd12): %s", dlerror());
        return BT_ENOENT;
    }
    /* kept loaded until the process ends: the server runs until then */
    for (size_t i = 0; i < sizeof(syms) / sizeof(syms[0]); i++) {
        /* POSIX: the object pointer returned by dlsym converts to a function
         * pointer (as common/sdk/registry.c loads baton_register) */
        if (!(*syms[i].fn = dlsym(handle, syms[i].name))) {
            snprintf(errstr, errstr_size, "libmicrohttpd has no %s", syms[i].name);
            return BT_ENOENT;
        }
    }
    return 0;
}
