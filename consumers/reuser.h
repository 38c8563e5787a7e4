/*
 * sharebus - the reuser's consumer agent (DESIGN.md §2, §6, §7).
 *
 * Consumes its own stream sb.out.<reuser>.<dataset> (read_committed),
 * stores each record in the local database, and applies every rights
 * notice at once: erasure, objection and consent withdrawal delete the
 * subject's rows, restriction marks them (kept, left out of the view
 * records_usable) until it is lifted, rectification rewrites a record.
 * Consumed offsets are written in the same SQL transaction as the changes
 * and the agent seeks to them on start: a crash never loses or repeats a
 * message. Messages it cannot verify or decode are recorded in the store's
 * sb_rejected table with the reason, never silently skipped.
 *
 * Each rights event applied gets a receipt on sb.ack.<reuser>, keyed by the
 * event id and signed with the reuser's Ed25519 key (header sb_sig over the
 * value's bytes, sb_key_id naming the key; docs/messages.md). The receipt is
 * written to the store in the transaction that applies the event, published
 * after the commit by an idempotent producer (acks=all) and marked sent
 * once the broker acknowledged it; unsent receipts are published first on
 * start. Delivery is at least once: after a crash between the broker's
 * acknowledgement and the mark, a receipt is published again, with the
 * same key and the same signed value.
 *
 * Retention and validity (DESIGN.md §1, CNIL R6.2-03, R3.7-12): the agent
 * purges the rows received more than the grant's retention_days ago, and,
 * once the grant's valid_until has passed, every row (the store is bound to
 * the grant's output schema, which names the grant, so every row in it was
 * received under that grant). It purges when it starts, before consuming,
 * then every purge_interval_ms, each purge in one SQL transaction; after
 * valid_until, a batch that stored records is purged before it commits, so
 * a record consumed late is never kept. Rows of restricted
 * subjects are purged too (retention wins over restriction). A purge makes
 * no rights event and no receipt; it is logged (NOTICE), counted in the
 * stats and recorded in the store's sb_purges table.
 */
#ifndef SB_REUSER_H
#define SB_REUSER_H

#include <signal.h>

#include "config.h"
#include "kafka.h"

typedef struct sb_reuser_cfg_s {
        sb_kafka_cfg_t kafka;
        char *client_id;
        char *reuser;
        char *dataset;
        char *grant_file;
        char *schemas_dir;
        char *database;
        char *signing_key_file;
        char *receipts_topic;
        char *group_id;
        long long batch_records;
        long long purge_interval_ms;
        char *gateway_keys_dir;
} sb_reuser_cfg_t;

extern const sb_config_field_t sb_reuser_cfg_table[];

/* Full name of the receipt schema (schemas/receipt.avsc). */
#define SB_RECEIPT_SCHEMA "eu.sharebus.Receipt"

typedef struct sb_reuser_stats_s {
        size_t records;     /* records stored by upserts (inserted/replaced) */
        size_t deleted;     /* records deleted by tombstones */
        size_t erasures;    /* erasure notices applied */
        size_t erased_rows; /* rows deleted by erasures */
        size_t objections;  /* objection notices applied (rows deleted) */
        size_t consent_withdrawn;   /* consent withdrawals (rows deleted) */
        size_t restrictions;        /* restriction notices applied */
        size_t restrictions_lifted; /* restriction-lifted notices applied */
        size_t rectifications;      /* rectified records rewritten */
        size_t rights_rows;         /* rows deleted by objections/withdrawals */
        size_t rights_duplicates;   /* rights events seen again, ignored */
        size_t receipts_sent;       /* receipts the broker acknowledged */
        size_t receipts_failed;     /* deliveries failed (retried later) */
        size_t rejected;            /* messages refused */
        size_t unverified;          /* of which: gateway signature failed */
        size_t batches;             /* SQL transactions committed */
        size_t purged_retention;    /* rows purged: past retention_days */
        size_t purged_validity;     /* rows purged: valid_until passed */
} sb_reuser_stats_t;

/* What one purge deleted (or, in a dry run, would delete). */
typedef struct sb_reuser_purge_s {
        char grant[128];              /* the grant's id (truncated) */
        int64_t at_ms;                /* the time it ran at */
        int retention_days;           /* the grant's; 0: no retention purge */
        int64_t retention_cutoff_ms;  /* rows received before were due */
        int64_t retention_rows;       /* rows past retention */
        int64_t retention_restricted; /* of which of restricted subjects */
        int has_valid_until;          /* the grant sets valid_until */
        int validity_ended;           /* ... and it has passed */
        int64_t valid_until_ms;
        int64_t validity_rows;       /* rows purged because it passed */
        int64_t validity_restricted; /* of which of restricted subjects */
        int64_t kept;                /* rows left */
        int64_t oldest_kept_ms;      /* received_at of the oldest left; -1 */
} sb_reuser_purge_t;

typedef struct sb_reuser_s sb_reuser_t;

/*
 * Loads the grant and the signing key, opens the store, joins the group.
 * Borrows `cfg`.
 */
sb_reuser_t *sb_reuser_new(const sb_reuser_cfg_t *cfg, char *errstr,
                           size_t errstr_size);

/*
 * Publishes the receipts left unsent by an earlier run, then runs until
 * *stop is set or, when idle_exit_ms > 0, until partitions are assigned and
 * nothing arrived for idle_exit_ms.
 */
sb_err_t sb_reuser_run(sb_reuser_t *ru, volatile sig_atomic_t *stop,
                       int idle_exit_ms, char *errstr, size_t errstr_size);

const sb_reuser_stats_t *sb_reuser_stats(const sb_reuser_t *ru);

/*
 * `sharebus reuser purge`: loads the grant of `cfg` and opens its store (no
 * Kafka client, no signing key), purges as the agent does and fills *rep.
 * With `dry_run` the purge is rolled back: *rep says what it would delete
 * and neither rows nor sb_purges change (a store of an earlier version is
 * still upgraded on opening). The store must exist. Borrows `cfg`.
 */
sb_err_t sb_reuser_purge_store(const sb_reuser_cfg_t *cfg, int dry_run,
                               sb_reuser_purge_t *rep, char *errstr,
                               size_t errstr_size);

/* The agent's store (for reporting; owned by the agent). */
struct sb_store_s *sb_reuser_store(sb_reuser_t *ru);
/* The agent's grant (owned by the agent). */
const struct sb_grant_s *sb_reuser_grant(const sb_reuser_t *ru);

/*
 * For tests: while `hold` is set, receipts are committed with the changes
 * but not published, as if the agent stopped between its commit and the
 * send.
 */
void sb_reuser_hold_receipts(sb_reuser_t *ru, int hold);

/*
 * For tests: the clock (ms since the epoch) the agent and its store read
 * for reception times, rights events' times and purges; NULL restores the
 * system clock. When purges run (at start, then every purge_interval_ms)
 * follows the system clock.
 */
void sb_reuser_set_clock(sb_reuser_t *ru, int64_t (*now_ms)(void *opaque),
                         void *opaque);

void sb_reuser_destroy(sb_reuser_t *ru);

#endif
