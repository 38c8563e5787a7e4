/*
 * sharebus - the platform declaration (broker-config/platform.json): who the
 * holders, the gateway and the reusers are, which datasets exist, and the
 * topic settings. With the grants, it implies the topics and the ACLs that
 * `sharebus admin topics|acls plan|apply` reconcile (DESIGN.md §3, §8).
 *
 * Principals carry a credential generation ("energy-desk.g1"), as issued by
 * `sharebus admin cert issue`; several generations may be listed while a
 * credential is renewed.
 */
#ifndef SB_PLATFORM_H
#define SB_PLATFORM_H

#include <jansson.h>
#include <stdint.h>

#include "config.h"
#include "err.h"
#include "grant.h"
#include "kafka.h"
#include "schema.h"
#include "sign.h"

/* The admin tools' own config file: how to reach the cluster as the
 * platform administrator, and where the platform declaration is. */
typedef struct sb_admin_cfg_s {
        sb_kafka_cfg_t kafka;
        char *client_id;
        char *platform;
        long long timeout_ms;
        long long receipt_deadline_ms;
        char *audit_key_file;
        long long expiry_notice_ms; /* admin grants notify: notice lead */
        char *notice_contact;       /* ... whom reusers ask to renew */
} sb_admin_cfg_t;

extern const sb_config_field_t sb_admin_cfg_table[];

typedef struct sb_topic_spec_s {
        char *name;
        int partitions;
        int replication_factor;
        const char *cleanup_policy; /* "delete", "compact", "compact,delete" */
        int64_t retention_ms;       /* -1: keep forever */
        int min_insync_replicas;
        const char *role; /* input, output, ack, notice, state, ... */
} sb_topic_spec_t;

typedef struct sb_platform_s {
        char *origin;
        json_t *json;     /* the declaration as loaded */
        json_t *gateway;  /* array of principal names */
        json_t *datasets; /* name -> {"holders": [...], "partitions"} */
        json_t *reusers;  /* name -> {"principals": [...],
                             "receipt_keys": [...]} */
        sb_catalog_t *cat;
        sb_grant_t **grants;
        size_t grant_cnt;
        int partitions;
        int replication_factor;
        int min_insync_replicas;
        int64_t input_retention_ms;
        int64_t output_retention_ms;
        int64_t audit_retention_ms;
        int64_t ops_retention_ms; /* alerts, quarantine, acks, notices */
} sb_platform_t;

/* Loads and validates the declaration and the grants and schemas it names
 * (paths relative to the working directory). */
sb_platform_t *sb_platform_load(const char *path, char *errstr,
                                size_t errstr_size);
void sb_platform_destroy(sb_platform_t *pf);

/* The topics the platform implies, in a stable order. */
sb_err_t sb_platform_topics(const sb_platform_t *pf, sb_topic_spec_t **specsp,
                            size_t *cntp, char *errstr, size_t errstr_size);
void sb_topic_specs_destroy(sb_topic_spec_t *specs, size_t cnt);

/*
 * The Ed25519 public keys a reuser's receipts may be signed with (several
 * while a key is rotated), as declared in "receipt_keys" and validated at
 * load: the number of them (0 when the reuser declares none, or is not
 * declared), and the i-th.
 */
size_t sb_platform_receipt_key_cnt(const sb_platform_t *pf, const char *reuser);
void sb_platform_receipt_key(const sb_platform_t *pf, const char *reuser,
                             size_t i, unsigned char pub[SB_SIGN_PUBLIC_BYTES]);

/*
 * The Ed25519 public keys that may sign the checkpoints of _sb.audit
 * (common/audit.h): top-level "audit_keys", validated like "receipt_keys";
 * several while the platform's audit key is rotated.
 */
size_t sb_platform_audit_key_cnt(const sb_platform_t *pf);
void sb_platform_audit_key(const sb_platform_t *pf, size_t i,
                           unsigned char pub[SB_SIGN_PUBLIC_BYTES]);

/* Whether a principal name carries a credential generation (<name>.gN). */
int sb_principal_is_generational(const char *name);

#endif
