/*
 * sharebus - the data holder's producer agent (DESIGN.md §2, §7).
 *
 * Validates NDJSON records against the dataset's Avro schema and publishes
 * them to sb.in.<dataset>, keyed by subject id, with an idempotent
 * transactional producer: a file is published all-or-nothing (one Kafka
 * transaction) unless the caller asks to skip invalid lines, which then go
 * to a rejects file with their reasons (R3.5-06, R3.5-07).
 */
#ifndef SB_HOLDER_H
#define SB_HOLDER_H

#include <jansson.h>
#include <stdio.h>

#include "config.h"
#include "envelope.h"
#include "kafka.h"

typedef struct sb_holder_cfg_s {
        sb_kafka_cfg_t kafka;
        char *client_id;
        char *schemas_dir;
        char *transactional_id;
        long long transaction_timeout_ms;
} sb_holder_cfg_t;

extern const sb_config_field_t sb_holder_cfg_table[];

typedef struct sb_holder_s sb_holder_t;

/* Connects and initialises transactions. Borrows `cfg` for its lifetime. */
sb_holder_t *sb_holder_new(const sb_holder_cfg_t *cfg, const char *dataset,
                           char *errstr, size_t errstr_size);
/* Closes the producer (waits for nothing: every publish commits). */
void sb_holder_destroy(sb_holder_t *h);

typedef struct sb_holder_stats_s {
        size_t lines;     /* non-blank input lines read */
        size_t published; /* records committed to Kafka */
        size_t rejected;  /* lines written to the rejects file */
} sb_holder_stats_t;

/*
 * Publishes every line of `in` (`name` is used in messages). Without
 * `rejects`, the first invalid line aborts the transaction, nothing is
 * published, and the error names the line and field (SB_ERR_VALIDATION).
 * With `rejects`, invalid lines are written there as JSON lines
 * {"line": N, "reason": "...", "input": "..."} and the rest is published.
 */
sb_err_t sb_holder_publish(sb_holder_t *h, FILE *in, const char *name,
                           FILE *rejects, sb_holder_stats_t *stats,
                           char *errstr, size_t errstr_size);

/*
 * Publishes one rights event for `subject` (purposes may be NULL: all).
 * Writes the event id into `event_id` (37 bytes).
 */
sb_err_t sb_holder_rights(sb_holder_t *h, sb_event_type_t type,
                          const char *subject, const json_t *purposes,
                          char *event_id, char *errstr, size_t errstr_size);

#endif
