/*
 * sharebus - the data holder's producer agent (DESIGN.md §2, §7).
 *
 * Validates NDJSON records against the dataset's Avro schema and publishes
 * them to sb.in.<dataset>, keyed by subject id, with an idempotent
 * transactional producer: a file is published all-or-nothing (one Kafka
 * transaction) unless the caller asks to skip invalid lines, which then go
 * to a rejects file with their reasons (R3.5-06, R3.5-07). Publishes the
 * data subjects' rights events on the same topic, one at a time or a file
 * of them, with the same guarantees (DESIGN.md §6). With a signing key,
 * every message carries a batch signature (common/seal.h) the gateway
 * verifies before anything else (DESIGN.md §9, R3.4-*).
 */
#ifndef SB_HOLDER_H
#define SB_HOLDER_H

#include <jansson.h>
#include <stdint.h>
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
        char *signing_key_file;
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
        size_t published; /* records (events) committed to Kafka */
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
 * Rights events (DESIGN.md §6, docs/messages.md). What each type carries,
 * as bits of sb_holder_rights_carries() / sb_holder_rights_requires():
 *
 *   erasure, restriction, restriction-lifted    subject [requested_at]
 *   objection, consent-withdrawn, consent-given subject [purposes]
 *                                               [requested_at]
 *   rectification                               record [subject]
 *   delete (sharebus.record.delete)             subject record_id
 *                                               [requested_at]
 */
#define SB_RIGHTS_SUBJECT      0x01u /* the subject id: Kafka key */
#define SB_RIGHTS_PURPOSES     0x02u /* purposes concerned; none: all */
#define SB_RIGHTS_REQUESTED_AT 0x04u /* when the person asked; default now */
#define SB_RIGHTS_RECORD_ID    0x08u /* the record withdrawn: ce_subject */
#define SB_RIGHTS_RECORD       0x10u /* the corrected record */

/* What an event of `type` may carry; 0 when the holder does not publish
 * `type` (record upserts go through sb_holder_publish()). */
unsigned sb_holder_rights_carries(sb_event_type_t type);
/* What an event of `type` must carry. */
unsigned sb_holder_rights_requires(sb_event_type_t type);

/*
 * The rights event type named `s`: a short name ("objection", "delete") or
 * a ce_type ("sharebus.rights.objection"). SB_EV_UNKNOWN for anything the
 * holder does not publish as a rights event, "upsert" included.
 */
sb_event_type_t sb_holder_rights_type_parse(const char *s);
/* The short name of a rights event type ("consent-withdrawn", "delete"). */
const char *sb_holder_rights_type_name(sb_event_type_t type);
/* The short names, comma-separated, for messages. */
const char *sb_holder_rights_type_names(void);

/* One rights event to publish. Every pointer is borrowed. */
typedef struct sb_holder_rights_req_s {
        sb_event_type_t type;
        /* The subject id; for a rectification optional, and then equal to
         * the record's subject field. */
        const char *subject;
        /* Array of strings, NULL or empty for all purposes. */
        const json_t *purposes;
        /* Milliseconds since the epoch; 0 for now. */
        int64_t requested_at;
        /* delete: the id of the record withdrawn. */
        const char *record_id;
        /* rectification: the corrected record, as `holder publish` reads
         * it (one JSON object of the dataset schema). */
        const json_t *record;
        /* Where the request comes from, named in messages (a file), or
         * NULL. */
        const char *origin;
} sb_holder_rights_req_t;

/*
 * Validates and publishes one rights event in its own transaction and
 * writes its id (the ce_id, 36 characters and a NUL) into `event_id` when
 * it is not NULL. A request that does not fit its type (a field the type
 * does not carry, a required one missing) is SB_ERR_INVALID_ARG; content
 * that does not validate (an empty subject, a record the dataset schema
 * refuses) is SB_ERR_VALIDATION; either way nothing is published and the
 * error names the field.
 */
sb_err_t sb_holder_rights_ex(sb_holder_t *h, const sb_holder_rights_req_t *req,
                             char *event_id, char *errstr, size_t errstr_size);

/*
 * Publishes one rights event of `type` for `subject` (purposes may be NULL:
 * all): sb_holder_rights_ex() for the types that carry nothing else.
 * Writes the event id into `event_id` (37 bytes).
 */
sb_err_t sb_holder_rights(sb_holder_t *h, sb_event_type_t type,
                          const char *subject, const json_t *purposes,
                          char *event_id, char *errstr, size_t errstr_size);

/* One event published from a rights file. */
typedef struct sb_holder_event_s {
        size_t line; /* its input line */
        sb_event_type_t type;
        char event_id[37];
} sb_holder_event_t;

typedef void(sb_holder_event_cb_t)(const sb_holder_event_t *ev, void *opaque);

/*
 * Publishes the rights events of `in`, one JSON object a line (`name` is
 * used in messages; the format is in docs/cli.md):
 *
 *   {"type": "objection", "subject": "BEN-0000017",
 *    "purposes": ["research"], "requested_at": "2026-11-25T10:00:00Z"}
 *   {"type": "rectification", "record": {...}}
 *   {"type": "delete", "subject": "BEN-0000017", "record_id": "..."}
 *
 * All or nothing, and `rejects`, as sb_holder_publish(); errors name the
 * line and the key. Once the transaction is committed, `cb` (may be NULL)
 * is called for each event published, in input order.
 */
sb_err_t sb_holder_rights_file(sb_holder_t *h, FILE *in, const char *name,
                               FILE *rejects, sb_holder_event_cb_t *cb,
                               void *opaque, sb_holder_stats_t *stats,
                               char *errstr, size_t errstr_size);

#endif
