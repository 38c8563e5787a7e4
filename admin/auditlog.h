/*
 * sharebus - an admin command's own hash chain on _sb.audit (common/audit.h;
 * DESIGN.md §9; CNIL R4.3-12, R4.3-13): a transactional producer whose
 * transactional.id is the chain id, the chain read back from the log after
 * init_transactions() fenced any earlier run, and a checkpoint signed by
 * the admin config's audit_key_file at the end of each write.
 *
 * For commands whose change is not itself a Kafka message (ACLs, made
 * through the Admin API): they write the entries once the change is made.
 * `admin grants` writes its entries in the transaction that publishes the
 * grants instead (admin/grants.h).
 */
#ifndef SB_AUDITLOG_H
#define SB_AUDITLOG_H

#include <jansson.h>

#include "err.h"
#include "platform.h"

typedef struct sb_auditlog_s sb_auditlog_t;

/* Connects as the administrator of `cfg` (borrowed; it must outlive the
 * writer) with transactional.id `chain_id`. NULL and errstr on error. */
sb_auditlog_t *sb_auditlog_new(const sb_admin_cfg_t *cfg, const char *chain_id,
                               char *errstr, size_t errstr_size);
void sb_auditlog_destroy(sb_auditlog_t *al);

/*
 * Chains every entry of `entries` (a JSON array of objects, borrowed) and
 * writes them, then a checkpoint when there is an audit key, in one
 * transaction. Nothing is written on error, except when the commit's
 * outcome is unknown, which the error says.
 */
sb_err_t sb_auditlog_write(sb_auditlog_t *al, const json_t *entries,
                           char *errstr, size_t errstr_size);

#endif
