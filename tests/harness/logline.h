/* Strict readers of the programs' log lines (common/log.c), in both formats,
 * for tests that check them field by field. */
#ifndef BT_TEST_LOGLINE_H
#define BT_TEST_LOGLINE_H

#include <stdbool.h>
#include <stddef.h>
#include <jansson.h>

/* One logfmt line (no newline) as an object of its keys, every value a
 * string: key=value pairs separated by one space, a key of letters, digits,
 * '_' and '.', a value bare (no space, quote, '=' or control character) or
 * "quoted" with the escapes \" \\ \n \t \r \uXXXX; no key twice. Returns a new
 * reference, or NULL with why (size n) on the first problem. */
json_t *bt_test_logfmt(const char *line, char *why, size_t n);

/* Every line of the file at path, read as logfmt or as JSON (one object per
 * line), as a new array of objects (caller frees with json_decref); each must
 * have the keys of every line: ts (an ISO 8601 UTC time with milliseconds),
 * level, prog, pid (an integer in JSON, digits in logfmt) and msg, the others
 * strings. NULL with why naming the line on the first problem, also when the
 * file holds no line. */
json_t *bt_test_log_read(const char *path, bool json, char *why, size_t n);

#endif
