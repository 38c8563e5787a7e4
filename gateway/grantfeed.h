/*
 * sharebus - the gateway's view of the grants published on _sb.grants
 * (docs/messages.md, "Grants"): key = grant id, value = the grant's JSON;
 * the latest value of each key is the grant. `sharebus admin grants`
 * writes them; the gateway reads the topic to its end before it serves,
 * then picks up changes while running.
 */
#ifndef SB_GRANTFEED_H
#define SB_GRANTFEED_H

#include "grant.h"
#include "kafka.h"

typedef struct sb_grantfeed_s sb_grantfeed_t;

/* A read_committed reader of `topic` (every partition assigned, the
 * group `group_id` never joined). */
sb_grantfeed_t *sb_grantfeed_new(const sb_kafka_cfg_t *kc,
                                 const char *client_id, const char *group_id,
                                 const char *topic, char *errstr,
                                 size_t errstr_size);

/* Reads the topic up to the end it had when called, within timeout_ms. */
sb_err_t sb_grantfeed_catch_up(sb_grantfeed_t *f, int timeout_ms, char *errstr,
                               size_t errstr_size);

/* Takes in what arrived since, without waiting; returns how many grant
 * versions it read. */
int sb_grantfeed_poll(sb_grantfeed_t *f);

/*
 * The grants as they stand, validated against `cat`, sorted by id. A
 * version that does not validate, or that gives a reuser a second grant on
 * a dataset, is left out, logged and counted in *bad: that grant shares
 * nothing until a valid version comes (least privilege); a revoked grant
 * gives way to another grant of its reuser and dataset. A tombstone
 * revokes the grant's last version.
 */
sb_err_t sb_grantfeed_grants(sb_grantfeed_t *f, const sb_catalog_t *cat,
                             sb_grant_t ***grantsp, size_t *cntp, size_t *bad,
                             char *errstr, size_t errstr_size);

/*
 * The grant versions taken in since the last call (the first call: since
 * the feed was made), for the gateway's grant.apply audit entries: a new
 * object, id -> the grant's latest JSON (a string when it was not JSON,
 * null for a tombstone with nothing before it). The caller must decref it;
 * NULL when out of memory.
 */
json_t *sb_grantfeed_changes(sb_grantfeed_t *f);

void sb_grantfeed_destroy(sb_grantfeed_t *f);

#endif
