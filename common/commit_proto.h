/* The arguments of commit.lua, declared once for both sides: the C side
 * (store_commit.c) puts each one at the position its name gives, and the
 * script gets a preamble of the same names as Lua constants
 * (bt_commit_script), so neither side counts positions by hand.
 *
 * KEYS: the fixed ones below; then, when the status changes, the index of
 * the new status and of the old one (none when the instance is new); last,
 * on continue-as-new only, the list the ending run's history goes to.
 * ARGV: the fixed ones below, then the sections in this order, each a count
 * n and n items of the given width, in the shape the Redis commands take
 * (the script passes them on with unpack(ARGV, from, to)). */
#ifndef BT_COMMIT_PROTO_H
#define BT_COMMIT_PROTO_H

#define BT_COMMIT_KEYS(X)                                                                \
    X(META)         /* <kp>:{ID}, the meta hash */                                       \
    X(JOURNAL)      /* <kp>:{ID}:journal */                                              \
    X(HISTORY)      /* <kp>:{ID}:h, the current run's history (history.h) */             \
    X(OUTBOX)       /* <kp>:{ID}:outbox */                                               \
    X(OUTBOX_INDEX) /* <kp>:outbox */                                                    \
    X(TIMERS)       /* <kp>:timers; the script derives the other global names */

#define BT_COMMIT_ARGS(X)                                                                \
    X(VER)   /* the version the worker loaded: the guard */                              \
    X(ID)    /* the instance id */                                                       \
    X(NOW)   /* ms */                                                                    \
    X(RESET) /* -1, or on continue-as-new the records of the run that ends */            \
    X(JLEN)  /* journal entries */                                                       \
    X(HLEN)  /* history records of the run */                                            \
    X(KPOS)  /* the event's Kafka position, "" when Redis holds it already */            \
    X(KOFF)  /* its offset, "" when stored or no event caused it */                      \
    X(KTS)   /* its timestamp, "" likewise */

#define BT_COMMIT_SECTIONS(X)                                                            \
    X(META, 2)       /* other meta pairs */                                              \
    X(JOURNAL, 2)    /* seq, entry */                                                    \
    X(HISTORY, 1)    /* packed records */                                                \
    X(OUTBOX, 2)     /* field, command */                                                \
    X(TIMERS_ADD, 2) /* due, member */                                                   \
    X(TIMERS_DEL, 1) /* member */                                                        \
    X(RUNS_ENDED, 2) /* retention due, "<run>|<id>" */

/* 0-based positions in C; the Lua names are 1-based (K_META = 1). */
enum bt_commit_key {
#define X(name) BT_CK_##name,
    BT_COMMIT_KEYS(X)
#undef X
        BT_CK__FIXED
};

enum bt_commit_arg {
#define X(name) BT_CA_##name,
    BT_COMMIT_ARGS(X)
#undef X
        BT_CA__FIXED
};

enum bt_commit_section {
#define X(name, width) BT_CS_##name,
    BT_COMMIT_SECTIONS(X)
#undef X
        BT_CS__COUNT
};

/* The items of each section take this many arguments. */
extern const int bt_commit_section_width[BT_CS__COUNT];

/* commit.lua with its preamble: "local K_META = 1 ...", "local A_VER = 1
 * ...", "local S_META = 1 ...", "local WIDTH = {2, ...}" and "local
 * A__SECTIONS" (where the first section's count is). Built once, static:
 * the same pointer every time (bt_redis names scripts by address). NULL
 * only when out of memory. Thread safe. */
const char *bt_commit_script(void);

#endif
