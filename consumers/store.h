/*
 * sharebus - the reuser agent's local store.
 *
 * One table `records` whose columns are the grant's output fields (the
 * pseudonym and the record id make the primary key), plus bookkeeping:
 * `sb_offsets` (consumed positions, written in the same SQL transaction as
 * the rows they produced, so a crash never applies a message twice or
 * loses one), `sb_rights` (rights events applied: event_id, type, pseudonym,
 * rows_affected, applied_at), `sb_restricted` (subjects whose processing is
 * restricted: pseudonym, event_id, since), `sb_receipts` (the signed-to-be
 * receipt of each rights event: event_id, value, sent), `sb_rejected`
 * (messages refused, with the reason), `sb_purges` (retention and validity
 * purges: at, reason, rows, cutoff, oldest_kept), `sb_meta` (the output
 * schema fingerprint, the store version). The view `records_usable` is
 * `records` without the rows of restricted subjects: what the reuser may
 * use. Prepared statements only.
 *
 * Each row of `records` has `received_at`, when the agent last wrote it from
 * the stream (RFC 3339 UTC with milliseconds, so text order is time order):
 * an upsert or a rectification of the record sets it again, a restriction
 * mark does not. Retention counts from it.
 *
 * Versions: a store made by an earlier sharebus is upgraded when opened, in
 * one transaction (version 1, no `store_version` in sb_meta: before
 * sb_purges; version 2: sb_purges). A store of
 * a later version is refused.
 */
#ifndef SB_STORE_H
#define SB_STORE_H

#include <avro.h>
#include <stdint.h>

#include "envelope.h"
#include "err.h"
#include "schema.h"

typedef struct sb_store_s sb_store_t;

/*
 * Opens (creating if needed) the SQLite database at `path` for records of
 * `schema` (a grant's output schema; borrowed). A database created for
 * another schema is refused.
 */
sb_store_t *sb_store_open(const char *path, const sb_schema_t *schema,
                          char *errstr, size_t errstr_size);
void sb_store_close(sb_store_t *st);

/*
 * For tests: the clock the store stamps rows with (records.received_at,
 * sb_rejected.at), in ms since the epoch; NULL restores sb_now_ms().
 */
void sb_store_set_clock(sb_store_t *st, int64_t (*now_ms)(void *opaque),
                        void *opaque);

sb_err_t sb_store_begin(sb_store_t *st, char *errstr, size_t errstr_size);
sb_err_t sb_store_commit(sb_store_t *st, char *errstr, size_t errstr_size);
void sb_store_rollback(sb_store_t *st);

/* Inserts or replaces the row of (pseudonym, record_id) from `v`. */
sb_err_t sb_store_upsert(sb_store_t *st, const char *record_id, avro_value_t *v,
                         char *errstr, size_t errstr_size);
/* Deletes one record (a tombstone). */
sb_err_t sb_store_delete_record(sb_store_t *st, const char *pseudonym,
                                const char *record_id, char *errstr,
                                size_t errstr_size);

/*
 * Applies rights event `event_id` of `type` to the subject `pseudonym` in
 * the open transaction and records it in sb_rights with `applied_at` (ms
 * since the epoch) and the rows it concerned (*rowsp):
 *   erasure            deletes every row of the pseudonym and its
 *                      restriction mark; rows = rows deleted
 *   objection,         deletes every row of the pseudonym (no legal basis
 *   consent-withdrawn  is left to process them); rows = rows deleted
 *   restriction        marks the subject restricted (sb_restricted, and the
 *                      rows' `restricted` column); rows are kept; rows = rows
 *                      of the pseudonym
 *   restriction-lifted removes the mark; rows = rows of the pseudonym
 *   rectification      only records it: the caller has upserted the
 *                      corrected record in this transaction; rows = 1
 * Idempotent: when `event_id` is already in sb_rights nothing changes,
 * *appliedp is 0 and *rowsp the rows recorded the first time; otherwise
 * *appliedp is 1. Any other type is SB_ERR_INVALID_ARG.
 */
sb_err_t sb_store_apply_right(sb_store_t *st, const char *event_id,
                              sb_event_type_t type, const char *pseudonym,
                              int64_t applied_at, int64_t *rowsp, int *appliedp,
                              char *errstr, size_t errstr_size);

/* A rights event recorded in sb_rights. */
typedef struct sb_store_right_s {
        char type[64];       /* the ce_type, e.g. sharebus.rights.erasure */
        char pseudonym[128]; /* truncated if longer */
        int64_t rows;
        char applied_at[40]; /* RFC 3339 */
} sb_store_right_t;

/*
 * Looks `event_id` up in sb_rights: *foundp is 1 and *right filled when it
 * was applied (right may be NULL), else 0.
 */
sb_err_t sb_store_right_find(sb_store_t *st, const char *event_id, int *foundp,
                             sb_store_right_t *right, char *errstr,
                             size_t errstr_size);

/* 1 when `pseudonym` is marked restricted, else 0. */
int sb_store_is_restricted(sb_store_t *st, const char *pseudonym);
sb_err_t sb_store_reject(sb_store_t *st, const char *topic, int32_t partition,
                         int64_t offset, const char *reason, char *errstr,
                         size_t errstr_size);

/* The next offset to consume, or -1 if none was stored. */
int64_t sb_store_offset(sb_store_t *st, const char *topic, int32_t partition);
sb_err_t sb_store_set_offset(sb_store_t *st, const char *topic,
                             int32_t partition, int64_t next_offset,
                             char *errstr, size_t errstr_size);

/*
 * Purges (CNIL R6.2-03: a reuser keeps a copy no longer than its maximum
 * retention period).
 */
typedef enum {
        SB_PURGE_RETENTION, /* rows received before the cutoff */
        SB_PURGE_VALIDITY,  /* every row: the grant's valid_until passed */
} sb_purge_reason_t;

/* "retention" or "validity", as in sb_purges.reason. */
const char *sb_purge_reason2str(sb_purge_reason_t reason);

typedef struct sb_store_purge_s {
        int64_t rows;           /* rows deleted */
        int64_t restricted;     /* of which rows of restricted subjects */
        int64_t kept;           /* rows left */
        int64_t oldest_kept_ms; /* received_at of the oldest row left; -1 */
} sb_store_purge_t;

/*
 * Deletes in the open transaction the rows that `reason` ends: for
 * SB_PURGE_RETENTION the rows received before `cutoff_ms`, for
 * SB_PURGE_VALIDITY every row (`cutoff_ms` is then the grant's
 * valid_until, for the record). Rows of restricted subjects go too: a
 * restriction keeps rows from use, it does not extend how long they may be
 * kept; the marks in sb_restricted stay, so a record arriving later for the
 * subject is still restricted. When rows were deleted, adds a row to
 * sb_purges (at_ms, reason, rows, cutoff, oldest kept). Records no rights
 * event: a purge makes no receipt.
 */
sb_err_t sb_store_purge(sb_store_t *st, sb_purge_reason_t reason,
                        int64_t cutoff_ms, int64_t at_ms, sb_store_purge_t *res,
                        char *errstr, size_t errstr_size);

/* Rows held and the received_at of the oldest (-1 when none). */
sb_err_t sb_store_oldest(sb_store_t *st, int64_t *rowsp, int64_t *oldest_msp,
                         char *errstr, size_t errstr_size);

/* The column names of the records table, as a new JSON array. */
json_t *sb_store_columns(sb_store_t *st);

/* Rows held, for one pseudonym or all (NULL). */
int64_t sb_store_count(sb_store_t *st, const char *pseudonym);
/* Rows the reuser may use (records_usable), for one pseudonym or all. */
int64_t sb_store_count_usable(sb_store_t *st, const char *pseudonym);

/*
 * Receipts. The agent adds a rights event's receipt (the encoded value it
 * will publish) in the same transaction as the change, publishes it after
 * the commit, and marks it sent once the broker acknowledged it: a crash in
 * between leaves it unsent, and it is published again on start.
 */
sb_err_t sb_store_receipt_add(sb_store_t *st, const char *event_id,
                              const void *value, size_t len, char *errstr,
                              size_t errstr_size);

typedef struct sb_store_receipt_s {
        char event_id[64];
        void *value; /* malloc'ed */
        size_t len;
} sb_store_receipt_t;

/*
 * The receipts not yet sent, oldest first, at most `max`. The caller frees
 * the list with sb_store_receipts_free().
 */
sb_err_t sb_store_receipt_pending(sb_store_t *st, size_t max,
                                  sb_store_receipt_t **listp, size_t *cntp,
                                  char *errstr, size_t errstr_size);
void sb_store_receipts_free(sb_store_receipt_t *list, size_t cnt);
/* Marks the receipt of `event_id` sent. */
sb_err_t sb_store_receipt_mark_sent(sb_store_t *st, const char *event_id,
                                    char *errstr, size_t errstr_size);
/* Number of receipts sent (sent = 1) or waiting to be sent (sent = 0). */
int64_t sb_store_receipt_count(sb_store_t *st, int sent);

#endif
