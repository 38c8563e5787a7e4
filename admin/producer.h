/*
 * sharebus - the admin tools' idempotent producer: what `sharebus rights
 * watch` raises alerts on _sb.alerts with and `sharebus admin grants
 * notify` sends notices on sb.notice.<reuser> with.
 *
 * enable.idempotence, acks=all, message.timeout.ms = the admin timeout_ms:
 * a message is delivered once, or reported failed within timeout_ms. Each
 * message is produced with RD_KAFKA_V_OPAQUE pointing to its own
 * rd_kafka_resp_err_t slot, set to SB_ADMIN_DR_WAITING first; the
 * delivery report fills it (sb_kafka_dr_to_slot).
 */
#ifndef SB_ADMIN_PRODUCER_H
#define SB_ADMIN_PRODUCER_H

#include <librdkafka/rdkafka.h>

#include "err.h"
#include "platform.h"

/* A delivery report not in yet. */
#define SB_ADMIN_DR_WAITING RD_KAFKA_RESP_ERR__IN_PROGRESS

/*
 * The producer connecting with `cfg` (borrowed: it must outlive it); `what`
 * names it in errors ("alert", "notice"). The caller destroys it with
 * rd_kafka_destroy() after sb_kafka_flush(). NULL and errstr on error.
 */
rd_kafka_t *sb_admin_producer_new(const sb_admin_cfg_t *cfg, const char *what,
                                  char *errstr, size_t errstr_size);

/*
 * Waits up to `timeout_ms` for every message handed over, then counts the
 * `cnt` slots of `status` that were not delivered; *first_errp (when not
 * NULL) describes the first of them, NULL when all were.
 */
size_t sb_admin_producer_wait(rd_kafka_t *rk, int timeout_ms,
                              const rd_kafka_resp_err_t *status, size_t cnt,
                              const char **first_errp);

#endif
