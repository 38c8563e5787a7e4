/*
 * sharebus real-broker tests - a platform "world" on the test broker: a
 * temporary directory with certificates issued by `sharebus admin`, grants,
 * a platform declaration, and the topics and ACLs that `sharebus admin`
 * derives from them, applied to the broker.
 */
#ifndef SB_WORLD_H
#define SB_WORLD_H

#include "acls.h"
#include "brokerenv.h"
#include "platform.h"
#include "scenario.h"
#include "testutil.h"
#include "topics.h"

typedef struct sb_world_s {
        sb_brokerenv_t be;
        char dir[256];
        char grants_dir[300];
        char platform_path[300];
        char schemas_dir[300];   /* the repository's schemas/ unless changed */
        sb_kafka_cfg_t admin_kc; /* the platform administrator (mTLS) */
        sb_platform_t *pf;
        sb_kadmin_t *ka;
        char *owned[64]; /* strings handed out in sb_kafka_cfg_t */
        int owned_cnt;
} sb_world_t;

/* Loads the broker env and makes a fresh directory. */
void sb_world_init(sb_world_t *w);

/*
 * Issues a client certificate for `principal` with `sharebus admin cert
 * issue` (extra arguments such as "--not-after ..." in `extra`, may be
 * NULL) and fills `kc` for an mTLS connection as that principal. The
 * strings in `kc` are owned by the world.
 */
void sb_world_cert(sb_world_t *w, const char *principal, const char *extra,
                   sb_kafka_cfg_t *kc);

/* Writes grants/<file>. */
void sb_world_grant(sb_world_t *w, const char *file, const char *json);

/*
 * Writes and loads the platform declaration: `body` is the JSON object's
 * inside without grants_dir, schemas_dir and replication settings, which
 * the world adds (single test broker: replication 1).
 */
void sb_world_platform(sb_world_t *w, const char *body);

/* `sharebus admin topics apply` and `acls apply`, through the library;
 * then the transactional-id ACLs with Kafka's AclCommand. Returns the
 * milliseconds the ACL apply took. */
long sb_world_apply(sb_world_t *w);

/* The ACL plan against the broker now. */
void sb_world_acl_plan(sb_world_t *w, sb_acl_plan_t *plan);

void sb_world_release(sb_world_t *w);

/*
 * Reads `topic` from the beginning as `kc` (assign, no group) for up to
 * `timeout_ms` or until an error. Returns the first error the client saw
 * (NO_ERROR if none) and the number of messages in *msgs. `bind_ip`, when
 * not NULL, is the source address of the client's connections.
 */
rd_kafka_resp_err_t sb_world_try_read(const sb_kafka_cfg_t *kc,
                                      const char *topic, int timeout_ms,
                                      const char *bind_ip, long *msgs);

/* Produces `n` messages to `topic` as the platform administrator. */
void sb_world_produce(sb_world_t *w, const char *topic, int n);

/*
 * The kafka section of an agent's config file for `kc` (mTLS), with the
 * group session timeout at the broker's minimum (6 s), so a killed member
 * is replaced quickly. New reference.
 */
json_t *sb_world_agent_kafka(const sb_kafka_cfg_t *kc);

/*
 * The rights scenario's rig (tests/util/scenario.h) on this world: its
 * schemas and grants, a platform declaration with the principals
 * <prefix>-holder.g1, <prefix>-gw.g1 and <reuser>.g1, its topics and
 * ACLs applied, certificates issued, and the configs of `gateways`
 * gateway instances and both reuser agents written. Each reuser's
 * connection is left in ru_kc[r] (to read its stream as it). Starts
 * nothing.
 */
void sb_world_scenario(sb_world_t *w, const sb_scn_t *s, sb_scn_rig_t *g,
                       int gateways, sb_kafka_cfg_t ru_kc[SB_SCN_REUSERS]);

/* Milliseconds since an arbitrary origin (monotonic). */
long sb_world_now_ms(void);

#endif
