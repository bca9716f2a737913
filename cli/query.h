/* The query language of `baton list --query` and the batch operations:
 * terms joined by AND, each a name, an operator and a value:
 *
 *   status=running AND type=campaign_registration AND brand="acme"
 *   AND started<2026-12-01 AND tier>=2
 *
 * status and type take = and !=; started takes <, <=, >, >= and a time
 * (RFC 3339, or a date: its midnight UTC); any other name is a search
 * attribute (bt_upsert_attributes), compared with = != < <= > >= against a
 * value that is "quoted text", a number, true, false or a bare word. An
 * instance without the attribute matches only !=.
 *
 * Instances come newest first from the status index (idx:<status> with a
 * status= term, else idx:all; with shards, every shard's merged into one
 * order), their fields from their meta hashes, 256 per pipelined round
 * trip: a scan narrowed by status, not an index per attribute. */
#ifndef BT_CLI_QUERY_H
#define BT_CLI_QUERY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#include "store.h"

#define BT_QUERY_MAX_TERMS 16

struct bt_query_term {
    char name[65];
    char op[3];    /* "=", "!=", "<", "<=", ">", ">=" */
    json_t *value; /* string, number or boolean */
};

struct bt_query {
    const char *status; /* the status= term, or NULL */
    struct bt_query_term terms[BT_QUERY_MAX_TERMS];
    size_t n_terms;
    char status_buf[32];
};

/* One instance as the query sees it (borrowed for the callback's time). */
struct bt_query_row {
    const char *id, *type, *status, *queue;
    int64_t created;
    int64_t updated;     /* its last commit, ms; 0 when unknown */
    const json_t *attrs; /* its search attributes, or NULL */
};

/* Parses text into q (zeroed first by the caller; terms already there
 * stay). Returns 0, or BT_EXIT_USAGE having said on stderr what it could not
 * read. Release with bt_query_release, also after a failure. */
int bt_query_parse(struct bt_query *q, const char *text);
/* Adds the term name op value (a string) to q, as a flag gives it
 * (`--status S`). Returns 0 or BT_EXIT_USAGE having said why. */
int bt_query_add(struct bt_query *q, const char *name, const char *op, const char *value);
void bt_query_release(struct bt_query *q);

/* Whether row matches every term of q. */
bool bt_query_matches(const struct bt_query *q, const struct bt_query_row *row);

/* Calls fn for each instance that matches q, newest first, until fn returns
 * false or none is left; with a cursor (a previous call's *next, "" for the
 * start) where that call stopped. *next (size n) gets where this one stopped
 * ("" when nothing is left). Returns 0, or BT_EXIT_UNAVAILABLE when Redis
 * did not answer. */
int bt_query_run(struct bt_store *store, const struct bt_query *q, const char *cursor,
                 bool (*fn)(const struct bt_query_row *row, void *arg), void *arg,
                 char *next, size_t n);
/* Whether c reads as a cursor bt_query_run wrote: "<score>:<count>", and
 * ":<shard>" after it with shards. */
bool bt_query_cursor_valid(const char *c);

#endif
