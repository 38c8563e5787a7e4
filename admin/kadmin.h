/*
 * sharebus - a Kafka Admin API client for the platform tools: one handle,
 * one result queue, every request bounded by a timeout.
 */
#ifndef SB_KADMIN_H
#define SB_KADMIN_H

#include <librdkafka/rdkafka.h>

#include "err.h"
#include "kafka.h"

typedef struct sb_kadmin_s {
        rd_kafka_t *rk;
        rd_kafka_queue_t *q;
        int timeout_ms;
} sb_kadmin_t;

sb_kadmin_t *sb_kadmin_new(const sb_kafka_cfg_t *kc, const char *client_id,
                           int timeout_ms, char *errstr, size_t errstr_size);
void sb_kadmin_destroy(sb_kadmin_t *ka);

/* Options for `op` with the handle's timeout (caller destroys them). */
rd_kafka_AdminOptions_t *sb_kadmin_options(sb_kadmin_t *ka,
                                           rd_kafka_admin_op_t op);

/*
 * Waits for the result event of type `type`. Returns NULL and fills errstr
 * (naming `what`) on timeout or on a request-level error; the caller
 * destroys the event.
 */
rd_kafka_event_t *sb_kadmin_wait(sb_kadmin_t *ka, rd_kafka_event_type_t type,
                                 const char *what, char *errstr,
                                 size_t errstr_size);

#endif
