/* baton's test kit: runs a plugin's workflows in-process, with virtual time,
 * mocked activities and injected faults, from any C test framework. No
 * Kafka, no Redis: each event is applied and the workflow replayed exactly as
 * the worker does (the same replay engine, the same journal entries, the
 * same history records), and what a decision sends (tasks, timers, child
 * starts, results) goes through an in-memory queue.
 *
 *   bt_test_env *env = bt_test_env_new();
 *   bt_test_load_plugin(env, "build/plugins/registration.so");
 *   bt_test_fail_activity(env, "register_brand", 2, "CarrierDown");
 *   bt_test_start(env, "brand_registration", "acme", json_pack("{s:s}", "brand",
 * "acme")); bt_test_run(env);                      everything, skipping time while all
 * wait assert(!strcmp(bt_test_status(env, "acme"), "completed"));
 *   assert(bt_test_calls(env, "register_brand") == 3);
 *   bt_test_env_free(env);
 *
 * Time: the clock starts at 2026-01-01T00:00:00Z and moves only when the
 * test says (bt_test_advance) or when nothing else can happen (bt_test_run
 * jumps to the next timer). bt_now() in workflow code is this clock.
 * Durations are "1500ms", "90s", "15m", "24h", "7d" (or a number of ms).
 * Functions returning int return 0, or -1 with bt_test_error_text() saying
 * why; running out of memory aborts the test. The engine logs warnings and
 * errors only, on stderr, unless BATON_LOG_LEVEL says otherwise (debug shows
 * every step). Not thread safe: one env per thread. */
#ifndef BATON_TEST_H
#define BATON_TEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "baton.h"

typedef struct bt_test_env bt_test_env;

bt_test_env *bt_test_env_new(void);
void bt_test_env_free(bt_test_env *env);
/* Why the last call that returned -1 failed. */
const char *bt_test_error_text(const bt_test_env *env);

/* ---- what runs ---- */
int bt_test_load_plugin(bt_test_env *env, const char *path);
/* Registers from a function shaped like a plugin's baton_register. */
int bt_test_register(bt_test_env *env, int (*register_fn)(bt_registry *r));

/* Replaces activity name's function by fn (real activities run otherwise). */
int bt_test_mock_activity(bt_test_env *env, const char *name, bt_activity_fn fn);
/* Scripts activity name's outcome per attempt: a JSON array, one element per
 * attempt (the last one repeats): {"result": v} completes it,
 * {"error": "Type", "message": "...", "retryable": false, "retry_after_ms": n}
 * fails it, {"timeout": true} never answers (its start-to-close timeout
 * fires). */
int bt_test_script_activity(bt_test_env *env, const char *name, const char *script);
/* The first `times` attempts of every step of activity name fail with
 * error_type (retryable), then it runs as registered or mocked. */
int bt_test_fail_activity(bt_test_env *env, const char *name, int times,
                          const char *error_type);

/* ---- driving ---- */
/* Starts an instance now; input is taken (may be NULL). */
int bt_test_start(bt_test_env *env, const char *type, const char *id, json_t *input);
/* Delivers a signal `after` from now ("0" or NULL: now); payload taken. */
int bt_test_signal(bt_test_env *env, const char *id, const char *name, json_t *payload,
                   const char *after);
/* Cancels (terminate: ends at once) an instance `after` from now. */
int bt_test_cancel(bt_test_env *env, const char *id, bool terminate, const char *after);
/* As `baton pause`, `resume` and `reset` would, `after` from now; a reset
 * starts again from step seq, or from the last failed step when seq < 0. */
int bt_test_pause(bt_test_env *env, const char *id, const char *after);
int bt_test_resume(bt_test_env *env, const char *id, const char *after);
int bt_test_reset(bt_test_env *env, const char *id, int64_t seq, const char *after);

/* Processes every event, jumping the clock to the next timer whenever all
 * instances wait, until nothing is left to happen (or, as a guard against a
 * workflow that never ends, 100,000 events or 10 years of virtual time). */
int bt_test_run(bt_test_env *env);
/* Moves the clock by `duration`, processing what comes due on the way, and
 * no further. */
int bt_test_advance(bt_test_env *env, const char *duration);
int64_t bt_test_now(const bt_test_env *env); /* ms since the epoch */

/* A worker crash: every instance's in-memory state is dropped and loaded
 * again from its committed journal, as a new worker would. */
void bt_test_crash(bt_test_env *env);
/* The same after every event from now on (the strictest replay test). */
void bt_test_crash_after_every_event(bt_test_env *env, bool on);

/* ---- versioning ---- */
/* Replays a recorded run (its history: JSON lines as `baton history ID
 * --json` prints them, or bt_test_history's records) against the loaded code,
 * as `baton replay-check` does for a live instance: the recorded events are
 * applied in order at their recorded times, and nothing runs. Returns 0 when
 * the code makes the same decisions (it never blocks, takes every recorded
 * outcome, and ends as the record ends), 1 when it does not (why says where),
 * -1 when the history cannot be read (why says why). A continue-as-new ends
 * the check (its first run only). */
int bt_test_replay_history(bt_test_env *env, const char *history, char *why,
                           size_t why_size);

/* ---- what happened ---- */
/* "running", "completed", "failed", "cancelled", "terminated", "blocked", "paused",
 * or NULL for an unknown instance. */
const char *bt_test_status(const bt_test_env *env, const char *id);
/* The result (completed) or error ({"type","message"}); borrowed, or NULL. */
const json_t *bt_test_result(const bt_test_env *env, const char *id);
const json_t *bt_test_failure(const bt_test_env *env, const char *id);
/* Its search attributes (bt_upsert_attributes), or NULL. */
const json_t *bt_test_attributes(const bt_test_env *env, const char *id);
/* The instance's history records, as the worker writes them (JSON text). */
size_t bt_test_history_len(const bt_test_env *env, const char *id);
const char *bt_test_history(const bt_test_env *env, const char *id, size_t i);

/* Executions of activity name (every instance, every attempt; a scripted
 * timeout counts), in order, and one of them. */
struct bt_test_call {
    const char *id;              /* instance */
    int64_t seq;                 /* step */
    int attempt;                 /* 1, 2, ... */
    const char *idempotency_key; /* as bt_act_idempotency_key() said */
    const json_t *input;
    int64_t at_ms; /* virtual time */
};
size_t bt_test_calls(const bt_test_env *env, const char *name);
const struct bt_test_call *bt_test_call(const bt_test_env *env, const char *name,
                                        size_t i);
/* Messages the engine refused (what the worker would dead-letter). */
size_t bt_test_dead_letters(const bt_test_env *env);

#endif
