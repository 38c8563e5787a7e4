/*
 * sharebus - the access-control gateway (DESIGN.md §2, §5-§7).
 *
 * Consumes sb.in.<dataset> in a consumer group (read_committed) and, in
 * Kafka transactions that also carry the input offsets, re-publishes each
 * record to sb.out.<reuser>.<dataset> for every active grant: projected
 * onto the granted fields, the subject id replaced by the reuser's
 * pseudonym (R1.0-02, R3.5-08). An erasure goes only to the reusers that
 * received the subject. What cannot be verified or decoded goes to
 * _sb.quarantine with the reason: nothing is silently dropped.
 *
 * Rights events (DESIGN §6) change the subject's state (gateway/state.h):
 * deliveries per reuser, objections, withdrawn consents, restriction. The
 * state is written to the compacted changelog _sb.state.<dataset> in the
 * same transaction as the outputs and the input offsets, and read back
 * for each partition an instance is assigned, so several instances share
 * the work and a crash loses nothing.
 *
 * A grant with a rate (DESIGN §5) that is over it gets its records later,
 * never fewer: they wait, ready to send, on _sb.hold.<grant id> (same
 * partition as their input), in the same transaction, and are moved to the
 * stream as the quota allows, oldest first; the other grants are not
 * slowed. A right exercised while a record waits is applied to it.
 */
#ifndef SB_GATEWAY_H
#define SB_GATEWAY_H

#include <signal.h>

#include "config.h"
#include "crypto.h"
#include "kafka.h"

typedef struct sb_gateway_cfg_s {
        sb_kafka_cfg_t kafka;
        char *client_id;
        json_t *datasets;
        char *schemas_dir;
        char *grants_dir;
        char *grants_topic;
        char *pseudonym_key_file;
        char *group_id;
        char *transactional_id;
        long long commit_interval_ms;
        long long commit_records;
        long long transaction_timeout_ms;
        long long restore_timeout_ms;
        char *holder_keys_dir;
        char *signing_key_file;
        char *audit_key_file;
        long long audit_checkpoint_every;
} sb_gateway_cfg_t;

extern const sb_config_field_t sb_gateway_cfg_table[];

#define SB_QUARANTINE_TOPIC "_sb.quarantine"
#define SB_AUDIT_TOPIC      "_sb.audit"
#define SB_ALERTS_TOPIC     "_sb.alerts"
/* _sb.hold.<grant id>: a grant's records over its rate, waiting. */
#define SB_HOLD_TOPIC_PREFIX "_sb.hold."

typedef struct sb_gateway_stats_s {
        size_t records_in;     /* records consumed */
        size_t rights_in;      /* rights events consumed */
        size_t delivered;      /* records produced to reuser streams */
        size_t notices;        /* rights notices produced to reusers */
        size_t not_shared;     /* record x grant pairs refused (inactive) */
        size_t excluded;       /* record x grant pairs refused (objection,
                                  withdrawn consent, restriction) */
        size_t too_old;        /* record x grant pairs refused (older than
                                  the grant's history_days) */
        size_t tombstones;     /* record keys withdrawn from reuser streams */
        size_t resyncs;        /* commits of unknown outcome, read back */
        size_t quarantined;    /* messages sent to the quarantine topic */
        size_t unverified;     /* of which: signature missing or invalid */
        size_t signed_batches; /* batch signatures put on outputs */
        size_t audit_entries;  /* _sb.audit messages committed
                                  (checkpoints included) */
        size_t transactions;   /* committed */
        size_t aborts;         /* aborted and rewound */
        size_t grant_reloads;  /* grant changes applied while running */
        size_t grants_invalid; /* grant versions left out (invalid) */
        size_t held;           /* records over a grant's rate, put on its
                                  hold topic (delivered later) */
        size_t released;       /* held records moved to their stream */
        size_t held_excluded;  /* held records not sent: a right exercised
                                  while they waited (also in excluded) */
        size_t quota_notices;  /* quota.exceeded notices sent */
} sb_gateway_stats_t;

typedef struct sb_gateway_s sb_gateway_t;

/*
 * Loads schemas and grants, connects, initialises transactions and joins
 * the group. `key` overrides pseudonym_key_file when not NULL (the demo and
 * tests); the gateway copies it. Borrows `cfg` for its lifetime.
 */
sb_gateway_t *sb_gateway_new(const sb_gateway_cfg_t *cfg, const sb_key_t *key,
                             char *errstr, size_t errstr_size);

/*
 * Runs until *stop becomes non-zero, or, when idle_exit_ms > 0, until
 * partitions are assigned and no message arrived for idle_exit_ms. Commits
 * the open transaction before returning.
 */
sb_err_t sb_gateway_run(sb_gateway_t *gw, volatile sig_atomic_t *stop,
                        int idle_exit_ms, char *errstr, size_t errstr_size);

const sb_gateway_stats_t *sb_gateway_stats(const sb_gateway_t *gw);
/* Subjects whose state this instance holds (its assigned partitions). */
size_t sb_gateway_subjects(const sb_gateway_t *gw);

/* Leaves the group and closes the clients. */
void sb_gateway_destroy(sb_gateway_t *gw);

#endif
