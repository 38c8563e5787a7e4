/*
 * sharebus - the reuser agent's local store.
 *
 * One table `records` whose columns are the grant's output fields (the
 * pseudonym and the record id make the primary key), plus bookkeeping:
 * `sb_offsets` (consumed positions, written in the same SQL transaction as
 * the rows they produced, so a crash never applies a message twice or
 * loses one), `sb_rights` (rights events applied), `sb_rejected` (messages
 * refused, with the reason), `sb_meta` (the output schema fingerprint).
 * Prepared statements only.
 */
#ifndef SB_STORE_H
#define SB_STORE_H

#include <avro.h>
#include <stdint.h>

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
/* Erasure: deletes every row of `pseudonym`, records the event. */
sb_err_t sb_store_erase_subject(sb_store_t *st, const char *event_id,
                                const char *pseudonym, int64_t *rowsp,
                                char *errstr, size_t errstr_size);
sb_err_t sb_store_reject(sb_store_t *st, const char *topic, int32_t partition,
                         int64_t offset, const char *reason, char *errstr,
                         size_t errstr_size);

/* The next offset to consume, or -1 if none was stored. */
int64_t sb_store_offset(sb_store_t *st, const char *topic, int32_t partition);
sb_err_t sb_store_set_offset(sb_store_t *st, const char *topic,
                             int32_t partition, int64_t next_offset,
                             char *errstr, size_t errstr_size);

/* The column names of the records table, as a new JSON array. */
json_t *sb_store_columns(sb_store_t *st);

/* Rows held, for one pseudonym or all (NULL). */
int64_t sb_store_count(sb_store_t *st, const char *pseudonym);

#endif
