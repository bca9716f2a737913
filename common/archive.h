/* Archiving finished runs, then deleting them from Redis. A run ends when its
 * instance finishes or continues as new; commit.lua then puts "<run>|<id>" in
 * the retention set, scored by when its retention ends. Once due, a run is
 * claimed under a lease (retention_claim.lua), its history and outcome are
 * produced to <prefix>.archive (schemas/archive.schema.json), and only after
 * Kafka confirmed every part of it is it deleted (retention_delete.lua),
 * still under the lease, with the instance's keys and index entries when it
 * was the last run. A run whose archive was not confirmed stays in Redis and
 * is tried again: a transient failure loses nothing. Used by the scheduler
 * (in the background, by retention's schedule) and `baton delete` (now). */
#ifndef BT_ARCHIVE_H
#define BT_ARCHIVE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <librdkafka/rdkafka.h>

#include "config.h"
#include "kafka.h"
#include "store.h"

/* How long a claim lasts: 15 min, or twice the producer's message.timeout.ms
 * (kafka.message.timeout.ms, default 5 min) when that is longer, so that a
 * holder still waiting for its deliveries keeps its claim; a dead holder's
 * runs wait that long. */
#define BT_ARCHIVE_LEASE_MS (15 * 60 * 1000)
int64_t bt_archive_lease_ms(const struct bt_config *cfg);

/* The tombstone of a deleted instance ("<kp>:{id}:deleted", ~200 bytes) lasts
 * as long as the instance stayed after it finished, within these bounds: so
 * there are about as many tombstones as finished instances kept, whatever
 * the retention, and `baton describe` can say what became of an instance
 * for at least a minute. */
#define BT_ARCHIVE_TOMBSTONE_MIN_MS (60 * 1000)
#define BT_ARCHIVE_TOMBSTONE_MAX_MS (24 * 3600 * 1000)

enum bt_archive_action {
    BT_ARCHIVE_DELETE, /* once its archive is delivered */
    BT_ARCHIVE_RETRY,  /* put back, due at retry_at */
    BT_ARCHIVE_DROP,   /* not a finished run (an instance still running): forgotten */
};

/* One claimed run. */
struct bt_archive_run {
    char *member;   /* "<run>|<id>", owned */
    const char *id; /* into member */
    int run;
    int64_t token; /* the lease's expiry: the claim's identity */
    /* the expiry of the claim this one took over (0: none): its holder may
     * have archived the run before it died, so Kafka is looked at first */
    int64_t previous;
    int found;       /* parts found on Kafka already (not produced again) */
    bool last;       /* the instance's last run: the instance goes with it */
    int64_t entries; /* history entries archived (list elements and old stream
                      * entries: the delete checks them) */
    int parts;       /* archive messages produced */
    char *tombstone; /* "<ttl>|<json>", last run only; owned */
    enum bt_archive_action action;
    int64_t retry_at;
    struct bt_kafka_batch batch; /* the parts' deliveries */
    int result;                  /* of bt_archive_settle: retention_delete.lua's answer */
};

/* Claims, in shard's retention set (store.h), up to limit runs for lease_ms
 * (bt_archive_lease_ms): the ones given (members[0..n_members), "<run>|<id>", claimed
 * whatever their due time unless another holds them), or with n_members 0 those whose
 * retention ended by now_ms and those whose lease expired. *runs: a new array of *n runs
 * (bt_archive_runs_free), each with member, id, run, token and previous set. Returns 0 or
 * BT_EAGAIN (Redis). */
int bt_archive_claim(struct bt_store *store, int shard, int64_t now_ms, int64_t lease_ms,
                     size_t limit, const char *const *members, size_t n_members,
                     struct bt_archive_run **runs, size_t *n);

/* Reads claimed runs[0..n) from Redis (two pipelined round trips for the
 * whole batch) and produces each one's archive message(s) to
 * <prefix>.archive with rk, keyed by the instance id, counted in its batch
 * (serve the reports with rd_kafka_poll or bt_kafka_wait; runs must not move
 * until every batch.pending is 0). Sets each run's action: DELETE when
 * produced, RETRY (its result is not on Kafka yet, Kafka's queue is full,
 * Redis did not answer) or DROP (the instance has not finished: it is never
 * deleted). A run taken over from an expired claim is first looked for on
 * the topic (lookback.h, with *reader, made here when first needed: the
 * caller closes and destroys it): parts found there byte for byte are not
 * produced again. Returns 0, BT_EAGAIN (Redis or Kafka), BT_ENOMEM or
 * BT_ETOOBIG (a part over Kafka's limit: that run is tried again in an
 * hour, logged). */
int bt_archive_prepare(struct bt_store *store, const struct bt_config *cfg,
                       rd_kafka_t *rk, rd_kafka_t **reader, struct bt_archive_run *runs,
                       size_t n, int64_t now_ms);

/* Ends the claims of runs[0..n) (of one bt_archive_claim), all delivered or failed
 * (batch.pending 0): deletes those whose action is DELETE and whose archive was
 * delivered, puts the others back (a failed delivery is tried again 10 s later), in one
 * retention_delete.lua call; each run's result is set. Returns 0 or
 * BT_EAGAIN (Redis did not answer: call again, the claims hold). */
int bt_archive_settle(struct bt_store *store, struct bt_archive_run *runs, size_t n,
                      int64_t now_ms);

/* Frees runs[0..n) and the array. NULL is a no-op. */
void bt_archive_runs_free(struct bt_archive_run *runs, size_t n);

/* The names of shard's retention set and of its leased runs (n bytes each). */
void bt_archive_set_names(const struct bt_store *store, int shard, char *set,
                          char *leased, size_t n);

/* Runs due or claimed and not deleted yet, over every shard (ZCOUNT of the due ones plus
 * the leased ones), or BT_EAGAIN. */
int64_t bt_archive_backlog(struct bt_store *store, int64_t now_ms);

#endif
