/*
 * sharebus tests - the gateway's side of a reuser stream, faked: records,
 * rectifications and rights notices written to a grant's output topic on
 * the mock cluster exactly as the gateway writes them (envelope headers,
 * single-object Avro, key <pseudonym>/<record id> or <pseudonym>, the
 * partition of the pseudonym), so a reuser agent test controls what
 * arrives and in which order.
 */
#ifndef SB_FAKEGW_H
#define SB_FAKEGW_H

#include "testutil.h"

typedef struct sb_fakegw_s {
        rd_kafka_t *rk;
        const sb_grant_t *g;
        const sb_schema_t *rights;
        avro_value_t rec, ev;
        sb_buf_t buf;
        int failed; /* delivery reports with an error */
} sb_fakegw_t;

void sb_fakegw_init(sb_fakegw_t *gw, sb_testenv_t *te, const sb_grant_t *g);
void sb_fakegw_release(sb_fakegw_t *gw);

/*
 * An upsert or a rectification (type) of record `rid` of `ps`, with the
 * output fields postcode and household_size. `event_id` names a
 * rectification's event; NULL makes a fresh id.
 */
void sb_fakegw_record(sb_fakegw_t *gw, sb_event_type_t type,
                      const char *event_id, const char *ps, const char *rid,
                      const char *postcode, int household);

/* A rights notice keyed `ps` whose value names `subject`; `event_id` NULL
 * makes a fresh id. */
void sb_fakegw_notice(sb_fakegw_t *gw, sb_event_type_t type,
                      const char *event_id, const char *ps,
                      const char *subject);

/* Waits for every message to be acknowledged; fails on a refusal. */
void sb_fakegw_flush(sb_fakegw_t *gw);

#endif
