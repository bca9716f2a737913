/* `baton ui`: the web view's parts. ui.c serves HTTP (libmicrohttpd, one
 * thread: every request runs in turn, so the CLI code it calls needs no
 * locks) and enforces who may do what; ui_api.c answers the JSON API with
 * the functions behind the CLI's --json; the page itself (the HTML, CSS and
 * JavaScript files of ui/) is compiled in by cmake/embed_ui.cmake. */
#ifndef BT_UI_H
#define BT_UI_H

#include <stdbool.h>
#include <stddef.h>
#include <jansson.h>

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
