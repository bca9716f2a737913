/* What the tests read from a baton process's HTTP endpoint (scrape.c). */
#ifndef BT_TEST_SCRAPE_H
#define BT_TEST_SCRAPE_H

#include <stdbool.h>
#include <stddef.h>

/* Two distinct free loopback ports (both held until both are known). Returns
 * 0 or -1. */
int bt_test_free_ports(int *a, int *b);

/* GET path on 127.0.0.1:port over HTTP/1.0: the body (malloc'd, caller frees)
 * and *status, or NULL when nothing answers. */
char *bt_test_http_get(int port, const char *path, int *status);
/* method path on 127.0.0.1:port over HTTP/1.0, with the header lines headers
 * ("Name: value\r\n" each; NULL: none) and body (NULL: none): the answer's
 * body and *status as bt_test_http_get. Host is 127.0.0.1:<port> unless
 * headers has one. */
char *bt_test_http(int port, const char *method, const char *path, const char *headers,
                   const char *body, int *status);

#define BT_TEST_EXPO_MAX 4096 /* samples */

struct bt_test_sample {
    char name[128];
    char labels[512]; /* `a="x",b="y"` as written, le left out */
    double le;        /* buckets only */
    double value;
    int family;
};

struct bt_test_expo {
    char families[128][128];
    char types[128][32];
    int n_families;
    struct bt_test_sample samples[BT_TEST_EXPO_MAX];
    int n;
};

/* Parses text strictly into e (large: make it static); false with why on the
 * first problem: a sample outside its TYPE-declared family, a bad name, label
 * or value, a negative counter, histogram buckets not cumulative. */
bool bt_test_expo_parse(const char *text, struct bt_test_expo *e, char *why, size_t n);
/* The value of the sample, or NAN when it is absent. labels as written,
 * `a="x",b="y"`, "" for none. */
double bt_test_expo_value(const struct bt_test_expo *e, const char *name,
                          const char *labels);
/* The same, with absent counting as 0, for series that appear only once
 * something happened. */
double bt_test_expo_count(const struct bt_test_expo *e, const char *name,
                          const char *labels);

/* promtool check metrics on text: $PROMTOOL, promtool on the PATH, or the one
 * scripts/bootstrap unpacks into .tools/ (Debian: prometheus). Returns 0 when
 * it accepts the text, its non-zero status when it rejects it, -1 when there
 * is no promtool. */
int bt_test_promtool(const char *text);

#endif
