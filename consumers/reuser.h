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
        size_t batches;             /* SQL transactions committed */
} sb_reuser_stats_t;

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

void sb_reuser_destroy(sb_reuser_t *ru);

#endif
