/*
 * sharebus - ACLs implied by the platform and the grants, compared with the
 * broker's and reconciled (`sharebus admin acls plan|apply`, DESIGN.md §8,
 * R3.7-02, R5.4-03...05). Least privilege:
 *
 *   holder   WRITE its input topic and its transactional id
 *   gateway  READ the inputs and its group, WRITE the outputs, quarantine,
 *            state, audit, alerts and notices, its transactional ids
 *   reuser   READ its own stream and group (from the grant's allowed_ips
 *            only, when given), WRITE its ack topic, READ its notices
 *
 * sharebus manages the ACLs of the principals that carry a credential
 * generation (<name>.gN), the ones `sharebus admin cert issue` creates; an
 * ACL of another principal was not created by sharebus: it is reported,
 * never deleted.
 */
#ifndef SB_ACLS_H
#define SB_ACLS_H

#include <librdkafka/rdkafka.h>
#include <stdio.h>

#include "kadmin.h"
#include "platform.h"

/*
 * Kafka's TransactionalId resource type (5). librdkafka 2.0.2 has no enum
 * value for it and refuses it in CreateAcls, so these ACLs are computed and
 * printed (for kafka-acls.sh) but not reconciled.
 */
#define SB_ACL_RESOURCE_TRANSACTIONAL_ID ((rd_kafka_ResourceType_t)5)

typedef struct sb_acl_s {
        rd_kafka_ResourceType_t restype;
        char *name;
        rd_kafka_ResourcePatternType_t pattern;
        char *principal; /* "User:energy-desk.g1" */
        char *host;      /* "*" or an IP address */
        rd_kafka_AclOperation_t op;
        rd_kafka_AclPermissionType_t perm;
} sb_acl_t;

typedef struct sb_acl_set_s {
        sb_acl_t *v;
        size_t cnt, cap;
} sb_acl_set_t;

void sb_acl_set_release(sb_acl_set_t *set);
sb_err_t sb_acl_set_add(sb_acl_set_t *set, rd_kafka_ResourceType_t restype,
                        const char *name,
                        rd_kafka_ResourcePatternType_t pattern,
                        const char *principal, const char *host,
                        rd_kafka_AclOperation_t op,
                        rd_kafka_AclPermissionType_t perm);
/* "ALLOW User:x READ TOPIC sb.out.x.y (literal) from 203.0.113.7" */
void sb_acl_format(const sb_acl_t *acl, char *buf, size_t size);

/*
 * The _sb.audit entry of one ACL `change` ("created" or "deleted") made
 * by `author`, before it is chained (admin/auditlog.h); a new reference,
 * NULL when out of memory:
 * {"op": "acl.change", "author", "change", "principal", "resource_type",
 *  "resource_name", "pattern", "operation", "permission", "host"}.
 */
json_t *sb_acl_audit_entry(const char *author, const sb_acl_t *acl,
                           const char *change);

/* The ACLs the platform and its approved grants imply. */
sb_err_t sb_acls_desired(const sb_platform_t *pf, sb_acl_set_t *out,
                         char *errstr, size_t errstr_size);

/* Every ACL of the cluster (DescribeAcls). */
sb_err_t sb_acls_describe(sb_kadmin_t *ka, sb_acl_set_t *out, char *errstr,
                          size_t errstr_size);

typedef struct sb_acl_plan_s {
        sb_acl_set_t create;         /* desired, missing */
        sb_acl_set_t remove;         /* present, managed, not desired */
        sb_acl_set_t unmanaged;      /* present, not created by sharebus */
        sb_acl_set_t external;       /* missing, outside librdkafka's reach */
        sb_acl_set_t external_stale; /* present, managed, not desired, and
                                      * outside librdkafka's reach */
        size_t desired_cnt, present_cnt;
} sb_acl_plan_t;

sb_err_t sb_acls_plan(const sb_acl_set_t *desired, const sb_acl_set_t *actual,
                      sb_acl_plan_t *plan, char *errstr, size_t errstr_size);
void sb_acl_plan_release(sb_acl_plan_t *plan);
void sb_acl_plan_print(const sb_acl_plan_t *plan, FILE *fp);

/* Creates plan->create, then deletes plan->remove (exact matches). */
sb_err_t sb_acls_apply(sb_kadmin_t *ka, const sb_acl_plan_t *plan, char *errstr,
                       size_t errstr_size);

#endif
