/*
 * sharebus - where a writer's audit chain stands in _sb.audit, read back
 * from Kafka so that a writer resumes its chain after a restart
 * (common/audit.h; DESIGN.md §9; CNIL R4.3-12, R4.3-16).
 *
 * Call it after rd_kafka_init_transactions() has fenced the writer's
 * previous incarnation: then no transaction of the chain is still open,
 * and reading the log read_committed to the high watermark taken before
 * reading sees the chain's last committed entry.
 */
#ifndef SB_AUDIT_KAFKA_H
#define SB_AUDIT_KAFKA_H

#include "audit.h"
#include "kafka.h"

/* Offsets read back per partition at first; ×16 and then the whole
 * partition while the chain is not found. */
#define SB_AUDIT_TAIL_WINDOW 4096

/*
 * Fills `tail` (zeroed first) with the last entry of chain `chain_id` in
 * _sb.audit: reads every partition from SB_AUDIT_TAIL_WINDOW offsets before
 * its high watermark to it, further back while the chain is not found. A
 * consumer named `client_id`, assigned partitions by hand in group
 * `group_id` (never joined, nothing committed), needs READ and DESCRIBE on
 * the topic. A chain never written leaves tail->seq at 0. SB_ERR_KAFKA when
 * the log cannot be read to its end within timeout_ms (a transaction of
 * another writer still open for that long, or the cluster unreachable).
 */
sb_err_t sb_audit_kafka_tail(const sb_kafka_cfg_t *kc, const char *client_id,
                             const char *group_id, const char *chain_id,
                             int timeout_ms, sb_audit_tail_t *tail,
                             char *errstr, size_t errstr_size);

/*
 * sb_audit_kafka_tail() then sb_audit_chain_resume() (or back to seq 0 when
 * the chain has no entry yet). *checkpoint_duep is set to 1 when entries
 * follow the chain's last checkpoint in the window read: the writer then
 * writes a checkpoint in its first transaction (sb_audit_chain_checkpoint).
 */
sb_err_t sb_audit_kafka_resume(sb_audit_chain_t *chain, const char *chain_id,
                               const sb_kafka_cfg_t *kc, const char *client_id,
                               const char *group_id, int timeout_ms,
                               int *checkpoint_duep, char *errstr,
                               size_t errstr_size);

#endif
