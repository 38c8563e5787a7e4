/*
 * sharebus - the gateway's per-subject state (DESIGN.md §6, §7).
 *
 * For each subject of a dataset the gateway remembers what it needs to
 * honour rights later: which record keys each reuser received (an erasure
 * or objection tombstones exactly those), the purposes the person objected
 * to or withdrew consent for, and whether processing is restricted. The
 * state of one subject is a small JSON object:
 *
 *   {"p": 3,                                 input partition
 *    "d": {"reuser-a": {"r-1": 1, "r-7": 1}}, record ids delivered
 *    "o": ["research"],                      objections ("*" = all)
 *    "w": ["*"],                             consents withdrawn
 *    "r": 1}                                 restricted
 *
 * It is kept in memory and written, key = subject id, to the compacted
 * changelog _sb.state.<dataset> in the same Kafka transaction as the
 * outputs and the input offsets; an instance rebuilds it from there for
 * the partitions it is assigned. Subjects with nothing left to remember
 * are written as tombstones and forgotten.
 *
 * Changes made inside a transaction are journaled: sb_state_rollback()
 * puts back every subject touched since the last sb_state_commit(), so an
 * aborted transaction leaves no trace in memory either.
 */
#ifndef SB_STATE_H
#define SB_STATE_H

#include <jansson.h>
#include <stdint.h>

#include "err.h"

typedef struct sb_state_s sb_state_t;

sb_state_t *sb_state_new(void);
void sb_state_destroy(sb_state_t *st);

/* The subject's state (borrowed), or NULL when nothing is known. */
json_t *sb_state_get(sb_state_t *st, const char *subject);

/*
 * The subject's state for modification: journaled for rollback on first
 * touch in the transaction, created if absent (in `partition`).
 */
json_t *sb_state_touch(sb_state_t *st, const char *subject, int32_t partition);

/* 1 if a grant with `purposes` must not receive the subject now. */
int sb_state_blocks(const json_t *s, const json_t *grant_purposes);
/* 1 if the subject objected to, or withdrew consent for, one of them. */
int sb_state_objected(const json_t *s, const json_t *grant_purposes);
/* 1 if list "o" (objections) or "w" (consents withdrawn) names one of
 * them: which of the two blocks, for the audit's exclusion reasons. */
int sb_state_in_list(const json_t *s, const char *list,
                     const json_t *grant_purposes);
/* 1 if the subject is restricted (GDPR art. 18). */
int sb_state_restricted(const json_t *s);
/* The record ids `reuser` received (borrowed object), or NULL. */
json_t *sb_state_received(const json_t *s, const char *reuser);

/* Records a delivery (call on a touched state). */
int sb_state_add_delivery(json_t *s, const char *reuser, const char *record_id);
/* Forgets what `reuser` received. */
void sb_state_forget_reuser(json_t *s, const char *reuser);

/*
 * Adds the purposes of an objection (list "o") or consent withdrawal
 * ("w"); an empty array means every purpose ("*").
 */
int sb_state_add_purposes(json_t *s, const char *list, const json_t *purposes);
/* Consent given again: removes the purposes from "w" (empty: all). */
void sb_state_remove_purposes(json_t *s, const char *list,
                              const json_t *purposes);
void sb_state_set_restricted(json_t *s, int on);

/*
 * Calls `fn` for each subject changed since the last commit, with its
 * serialised state (NULL for a tombstone: nothing left to remember) and
 * its partition. Stops at the first non-zero return.
 */
typedef int(sb_state_change_cb)(const char *subject, int32_t partition,
                                const char *value, size_t len, void *opaque);
int sb_state_changes(sb_state_t *st, sb_state_change_cb *fn, void *opaque);

/* The transaction committed: drop the journal and empty subjects. */
void sb_state_commit(sb_state_t *st);
/* The transaction aborted: restore every journaled subject. */
void sb_state_rollback(sb_state_t *st);

/*
 * Restores one changelog message (value NULL: tombstone). Errors name the
 * subject and say what is wrong with the value.
 */
sb_err_t sb_state_load(sb_state_t *st, const char *subject, int32_t partition,
                       const void *value, size_t len, char *errstr,
                       size_t errstr_size);

/* Forgets the subjects of `partition` (revoked), or of all when -1. */
void sb_state_drop_partition(sb_state_t *st, int32_t partition);

/* Number of subjects held. */
size_t sb_state_size(const sb_state_t *st);

#endif
