/* `baton ui`: the web view's parts. ui.c serves HTTP (libmicrohttpd, one
 * thread: every request runs in turn, so the CLI code it calls needs no
 * locks) and enforces who may do what; ui_api.c answers the JSON API with
 * the functions behind the CLI's --json; the page itself (the HTML, CSS and
 * JavaScript files of ui/) is compiled in by cmake/embed_ui.cmake. */
#ifndef BT_UI_H
#define BT_UI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <jansson.h>
#include <microhttpd.h>

#include "config.h"
#include "store.h"

/* One file of the page, embedded at build time (generated ui_assets.c). */
struct bt_ui_asset {
    const char *path; /* "/app.js" */
    const char *type; /* its Content-Type */
    const unsigned char *data;
    size_t len;
};
extern const struct bt_ui_asset bt_ui_assets[];
extern const size_t bt_ui_n_assets;

/* The functions of libmicrohttpd that ui.c calls, with their prototypes,
 * filled by bt_ui_mhd_load() (ui_mhd.c: why dlopen). */
struct bt_ui_mhd {
    struct MHD_Daemon *(*start_daemon)(unsigned int flags, uint16_t port,
                                       MHD_AcceptPolicyCallback apc, void *apc_cls,
                                       MHD_AccessHandlerCallback dh, void *dh_cls, ...);
    void (*stop_daemon)(struct MHD_Daemon *daemon);
    const union MHD_DaemonInfo *(*get_daemon_info)(struct MHD_Daemon *daemon,
                                                   enum MHD_DaemonInfoType info_type,
                                                   ...);
    const union MHD_ConnectionInfo *(*get_connection_info)(
        struct MHD_Connection *connection, enum MHD_ConnectionInfoType info_type, ...);
    const char *(*lookup_connection_value)(struct MHD_Connection *connection,
                                           enum MHD_ValueKind kind, const char *key);
    struct MHD_Response *(*create_response_from_buffer)(size_t size, void *buffer,
                                                        enum MHD_ResponseMemoryMode mode);
    enum MHD_Result (*add_response_header)(struct MHD_Response *response,
                                           const char *header, const char *content);
    enum MHD_Result (*queue_response)(struct MHD_Connection *connection,
                                      unsigned int status_code,
                                      struct MHD_Response *response);
    void (*destroy_response)(struct MHD_Response *response);
};
extern struct bt_ui_mhd bt_ui_mhd;
/* Loads libmicrohttpd and fills bt_ui_mhd: 0, or -1 with errstr filled.
 * Called once, before any thread starts. */
int bt_ui_mhd_load(char *errstr, size_t errstr_size);

/* What a request's handler sees of the server: borrowed for the request. */
struct bt_ui {
    const struct bt_config *cfg;
    struct bt_store *store; /* connected on first use, dropped when Redis fails */
    bool read_only;
    const char *who; /* the client's address, recorded with an action */
};

/* The store, connected when it is not: NULL when Redis does not answer. */
struct bt_store *bt_ui_store(struct bt_ui *ui);

/* Answers GET /api/<path> (the segments after "api", n of them, decoded).
 * Returns the HTTP status; *out gets the body (a new reference): the
 * value, or {"error": ...} when the status is not 2xx. get_arg(name) is a
 * query argument (NULL when absent), args passed back. */
unsigned bt_ui_get(struct bt_ui *ui, char **seg, int n,
                   const char *(*get_arg)(void *args, const char *name), void *args,
                   json_t **out);
/* Answers POST /api/<path>: an action, body its parsed JSON object
 * (borrowed). Same return as bt_ui_get. */
unsigned bt_ui_post(struct bt_ui *ui, char **seg, int n, const json_t *body,
                    json_t **out);

/* {"error": message, "status": status}: a new reference; returns status. */
unsigned bt_ui_error(json_t **out, unsigned status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
