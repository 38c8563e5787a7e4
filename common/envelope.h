/*
 * sharebus - message envelope: CloudEvents Kafka binding (binary mode)
 * headers plus sharebus's own (DESIGN.md §4).
 *
 *   ce_specversion "1.0", ce_id, ce_source, ce_type, ce_time, ce_subject,
 *   content-type "application/avro", sb_schema (fingerprint, 16 hex digits)
 */
#ifndef SB_ENVELOPE_H
#define SB_ENVELOPE_H

#include <librdkafka/rdkafka.h>
#include <stdint.h>

#include "err.h"

typedef enum {
        SB_EV_UNKNOWN = 0,
        SB_EV_RECORD_UPSERT,
        SB_EV_RECORD_DELETE,
        SB_EV_ERASURE,
        SB_EV_RECTIFICATION,
        SB_EV_OBJECTION,
        SB_EV_CONSENT_WITHDRAWN,
        SB_EV_CONSENT_GIVEN,
        SB_EV_RESTRICTION,
        SB_EV_RESTRICTION_LIFTED,
        SB_EV_RECEIPT, /* a reuser's receipt on sb.ack.<reuser>; not a right */
        SB_EV__CNT
} sb_event_type_t;

/* "sharebus.record.upsert" ... ; NULL for SB_EV_UNKNOWN. */
const char *sb_event_type2str(sb_event_type_t t);
/* From the ce_type string or from a short name ("erasure", "upsert"). */
sb_event_type_t sb_event_type_parse(const char *s);
/* Erasure .. restriction-lifted: the types a holder may publish. */
int sb_event_type_is_rights(sb_event_type_t t);

typedef struct sb_envelope_s {
        char id[64];
        char source[256];
        char time[40];
        char subject[256];
        sb_event_type_t type;
        uint64_t schema_fp;
} sb_envelope_t;

/* Fills id (UUID v4) and time (now) of `env`. */
void sb_envelope_stamp(sb_envelope_t *env);

/* New headers for `env` (the caller owns them until produced). */
rd_kafka_headers_t *sb_envelope_headers(const sb_envelope_t *env);

/*
 * Parses the envelope of a consumed message. Errors name the topic,
 * partition and offset, and the missing or bad header.
 */
sb_err_t sb_envelope_parse(const rd_kafka_message_t *msg, sb_envelope_t *env,
                           char *errstr, size_t errstr_size);

/* A random RFC 4122 version 4 UUID. */
void sb_uuid4(char out[37]);
/* RFC 3339 UTC with milliseconds from ms since the epoch. */
void sb_time_format(int64_t ms, char out[32]);
/* Milliseconds since the epoch, now. */
int64_t sb_now_ms(void);

/*
 * Parses an RFC 3339 timestamp ("2026-12-01T00:00:00Z", fractions and
 * +hh:mm offsets allowed) into ms since the epoch. Returns 0 on success.
 */
int sb_time_parse(const char *s, int64_t *msp);
#endif
