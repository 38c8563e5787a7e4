#include "platform.h"

#include <ctype.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#define DAY_MS (24LL * 3600 * 1000)

const sb_config_field_t sb_admin_cfg_table[] = {
    {"kafka", SB_CFG_OBJECT, offsetof(sb_admin_cfg_t, kafka), 1, NULL, 0, 0,
     sb_kafka_cfg_table,
     "Connection to the Kafka cluster, as a platform administrator"},
    {"client_id", SB_CFG_STRING, offsetof(sb_admin_cfg_t, client_id), 0,
     "sharebus-admin", 0, 0, NULL, "Kafka client.id"},
    {"platform", SB_CFG_STRING, offsetof(sb_admin_cfg_t, platform), 0,
     "broker-config/platform.json", 0, 0, NULL,
     "The platform declaration: holders, gateway, reusers, datasets, "
     "topic settings"},
    {"timeout_ms", SB_CFG_INT, offsetof(sb_admin_cfg_t, timeout_ms), 0, "30000",
     1000, 600000, NULL,
     "Longest wait for one Admin API request, or for reading a topic to its "
     "end (`sharebus rights`)"},
    {"receipt_deadline_ms", SB_CFG_INT,
     offsetof(sb_admin_cfg_t, receipt_deadline_ms), 0, "86400000", 1000,
     31 * DAY_MS, NULL,
     "How long a reuser's signed receipt for a rights event may take after "
     "the gateway notified it before `sharebus rights` reports it overdue "
     "and `rights watch` raises an alert (default one day; "
     "`--deadline` overrides it). GDPR art. 12(3) gives the controller one "
     "month to answer the person, everything included, so a machine "
     "receipt's deadline is much shorter"},
    {"audit_key_file", SB_CFG_STRING, offsetof(sb_admin_cfg_t, audit_key_file),
     0, NULL, 0, 0, NULL,
     "Ed25519 secret key file (sharebus keys generate, mode 0600) that "
     "signs the checkpoints of the admin commands' chains on _sb.audit "
     "(`admin grants apply` and `revoke`, `admin acls apply`); its public "
     "key goes in the platform's "
     "audit_keys. Without it their chain is linked but unsigned"},
    {"expiry_notice_ms", SB_CFG_INT, offsetof(sb_admin_cfg_t, expiry_notice_ms),
     0, "604800000", 3600 * 1000, 365 * DAY_MS, NULL,
     "How long before a grant's valid_until `sharebus admin grants notify` "
     "sends its reuser a grant.expiring notice on sb.notice.<reuser> "
     "(default 7 days; `--before` overrides it). At most the platform's "
     "ops_retention_days, so that the notice is still on the topic when "
     "the next run checks it"},
    {"notice_contact", SB_CFG_STRING, offsetof(sb_admin_cfg_t, notice_contact),
     0, NULL, 0, 0, NULL,
     "Whom a reuser asks to renew a grant, as the notices of `sharebus admin "
     "grants notify` name it (e.g. \"the data platform team, "
     "grants@platform.example\"); unset: \"the platform team that issued "
     "the grant\""},
    {NULL, 0, 0, 0, NULL, 0, 0, NULL, NULL},
};

int sb_principal_is_generational(const char *name)
{
        const char *dot = strrchr(name, '.');
        const char *p;

        if (!dot || dot == name || dot[1] != 'g' || !dot[2])
                return 0;
        for (p = dot + 2; *p; p++)
                if (!isdigit((unsigned char)*p))
                        return 0;
        for (p = name; p < dot; p++)
                if (!islower((unsigned char)*p) &&
                    !isdigit((unsigned char)*p) && *p != '-')
                        return 0;
        return islower((unsigned char)name[0]);
}

#define PF_ERR(...)                                                            \
        do {                                                                   \
                sb_seterr(errstr, errstr_size, SB_ERR_CONFIG, __VA_ARGS__);    \
                goto fail;                                                     \
        } while (0)

/* Unknown keys are errors: `allowed` is NULL-terminated. */
static int sb_pf_keys(const json_t *obj, const char *const *allowed,
                      const char *origin, const char *where, char *errstr,
                      size_t errstr_size)
{
        const char *k;
        json_t *v;
        int i;

        json_object_foreach((json_t *)obj, k, v)
        {
                for (i = 0; allowed[i]; i++)
                        if (!strcmp(allowed[i], k))
                                break;
                if (!allowed[i]) {
                        sb_seterr(errstr, errstr_size, SB_ERR_CONFIG,
                                  "platform '%s': unknown key '%s%s'", origin,
                                  where, k);
                        return -1;
                }
        }
        return 0;
}

/* A non-empty array of generational principal names. */
static int sb_pf_principals(const json_t *a, const char *origin,
                            const char *where, char *errstr, size_t errstr_size)
{
        const json_t *v;
        size_t i;

        if (!json_is_array(a) || json_array_size(a) == 0) {
                sb_seterr(errstr, errstr_size, SB_ERR_CONFIG,
                          "platform '%s': key '%s': expected a non-empty "
                          "array of principal names",
                          origin, where);
                return -1;
        }
        json_array_foreach(a, i, v)
        {
                const char *s = json_string_value(v);

                if (!s || !sb_principal_is_generational(s)) {
                        sb_seterr(errstr, errstr_size, SB_ERR_CONFIG,
                                  "platform '%s': key '%s' item %zu: expected "
                                  "a principal with its credential "
                                  "generation, such as \"energy-desk.g1\"",
                                  origin, where, i);
                        return -1;
                }
        }
        return 0;
}

/* A 64-hex-character Ed25519 public key into `pub`; -1 if it is not one. */
static int sb_pf_pubkey(const char *hex,
                        unsigned char pub[SB_SIGN_PUBLIC_BYTES])
{
        const char *end;
        size_t len;

        if (!hex || strlen(hex) != 2 * SB_SIGN_PUBLIC_BYTES ||
            sodium_hex2bin(pub, SB_SIGN_PUBLIC_BYTES, hex, strlen(hex), NULL,
                           &len, &end) != 0 ||
            len != SB_SIGN_PUBLIC_BYTES || *end)
                return -1;
        return 0;
}

/*
 * Optional: a non-empty array of distinct Ed25519 public keys, each the
 * 64 hex characters of a NAME.pub that `whose` made with `sharebus keys
 * generate` (receipt_keys of a reuser, audit_keys of the platform).
 */
static int sb_pf_pubkeys(const json_t *a, const char *origin, const char *where,
                         const char *whose, char *errstr, size_t errstr_size)
{
        unsigned char pub[SB_SIGN_PUBLIC_BYTES], other[SB_SIGN_PUBLIC_BYTES];
        const json_t *v;
        size_t i, j;

        if (!a)
                return 0;
        if (!json_is_array(a) || json_array_size(a) == 0) {
                sb_seterr(errstr, errstr_size, SB_ERR_CONFIG,
                          "platform '%s': key '%s': expected a non-empty "
                          "array of Ed25519 public keys (the content of the "
                          "NAME.pub files %s made with 'sharebus keys "
                          "generate'); leave the key out when none is known",
                          origin, where, whose);
                return -1;
        }
        json_array_foreach(a, i, v)
        {
                if (sb_pf_pubkey(json_string_value(v), pub)) {
                        sb_seterr(errstr, errstr_size, SB_ERR_CONFIG,
                                  "platform '%s': key '%s' item %zu: expected "
                                  "an Ed25519 public key as %d hex "
                                  "characters (the content of NAME.pub, as "
                                  "written by 'sharebus keys generate')",
                                  origin, where, i, 2 * SB_SIGN_PUBLIC_BYTES);
                        return -1;
                }
                for (j = 0; j < i; j++) {
                        sb_pf_pubkey(json_string_value(json_array_get(a, j)),
                                     other);
                        if (!memcmp(pub, other, sizeof(pub))) {
                                sb_seterr(errstr, errstr_size, SB_ERR_CONFIG,
                                          "platform '%s': key '%s' item "
                                          "%zu: the same key as item %zu",
                                          origin, where, i, j);
                                return -1;
                        }
                }
        }
        return 0;
}

static int sb_pf_int(const json_t *obj, const char *key, long long def,
                     long long lo, long long hi, long long *out,
                     const char *origin, char *errstr, size_t errstr_size)
{
        const json_t *v = json_object_get(obj, key);

        if (!v) {
                *out = def;
                return 0;
        }
        if (!json_is_integer(v) || json_integer_value(v) < lo ||
            json_integer_value(v) > hi) {
                sb_seterr(errstr, errstr_size, SB_ERR_CONFIG,
                          "platform '%s': key '%s': expected an integer from "
                          "%lld to %lld",
                          origin, key, lo, hi);
                return -1;
        }
        *out = json_integer_value(v);
        return 0;
}

sb_platform_t *sb_platform_load(const char *path, char *errstr,
                                size_t errstr_size)
{
        static const char *const top[] = {"gateway",
                                          "datasets",
                                          "reusers",
                                          "grants_dir",
                                          "schemas_dir",
                                          "partitions",
                                          "replication_factor",
                                          "min_insync_replicas",
                                          "input_retention_days",
                                          "output_retention_days",
                                          "audit_retention_days",
                                          "ops_retention_days",
                                          "audit_keys",
                                          NULL};
        static const char *const ds_keys[] = {"holders", "partitions", NULL};
        static const char *const ru_keys[] = {"principals", "receipt_keys",
                                              NULL};
        sb_platform_t *pf = calloc(1, sizeof(*pf));
        const char *grants_dir, *schemas_dir, *k;
        json_error_t jerr;
        long long n;
        json_t *v;
        char where[300];
        size_t i;

        if (!pf) {
                sb_seterr(errstr, errstr_size, SB_ERR_NOMEM, "out of memory");
                return NULL;
        }
        pf->origin = strdup(path);
        pf->json = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
        if (!pf->json)
                PF_ERR("platform '%s' line %d: %s", path, jerr.line, jerr.text);
        if (!json_is_object(pf->json))
                PF_ERR("platform '%s': expected a JSON object", path);
        if (sb_pf_keys(pf->json, top, path, "", errstr, errstr_size))
                goto fail;

        pf->gateway = json_object_get(pf->json, "gateway");
        if (sb_pf_principals(pf->gateway, path, "gateway", errstr, errstr_size))
                goto fail;

        pf->datasets = json_object_get(pf->json, "datasets");
        if (!json_is_object(pf->datasets) || !json_object_size(pf->datasets))
                PF_ERR("platform '%s': key 'datasets': expected an object of "
                       "dataset name to {\"holders\": [...]}",
                       path);
        pf->reusers = json_object_get(pf->json, "reusers");
        if (pf->reusers && !json_is_object(pf->reusers))
                PF_ERR("platform '%s': key 'reusers': expected an object of "
                       "reuser name to {\"principals\": [...]}",
                       path);

        if (sb_pf_int(pf->json, "partitions", 6, 1, 10000, &n, path, errstr,
                      errstr_size))
                goto fail;
        pf->partitions = (int)n;
        if (sb_pf_int(pf->json, "replication_factor", 3, 1, 10, &n, path,
                      errstr, errstr_size))
                goto fail;
        pf->replication_factor = (int)n;
        if (sb_pf_int(pf->json, "min_insync_replicas",
                      pf->replication_factor > 1 ? 2 : 1, 1,
                      pf->replication_factor, &n, path, errstr, errstr_size))
                goto fail;
        pf->min_insync_replicas = (int)n;
        if (sb_pf_int(pf->json, "input_retention_days", 7, 1, 3650, &n, path,
                      errstr, errstr_size))
                goto fail;
        pf->input_retention_ms = n * DAY_MS;
        if (sb_pf_int(pf->json, "output_retention_days", 30, 1, 3650, &n, path,
                      errstr, errstr_size))
                goto fail;
        pf->output_retention_ms = n * DAY_MS;
        /* CNIL logging recommendation: keep access logs 6 to 12 months. */
        if (sb_pf_int(pf->json, "audit_retention_days", 365, 180, 365, &n, path,
                      errstr, errstr_size))
                goto fail;
        pf->audit_retention_ms = n * DAY_MS;
        if (sb_pf_int(pf->json, "ops_retention_days", 30, 1, 3650, &n, path,
                      errstr, errstr_size))
                goto fail;
        pf->ops_retention_ms = n * DAY_MS;
        if (sb_pf_pubkeys(json_object_get(pf->json, "audit_keys"), path,
                          "audit_keys", "the platform team", errstr,
                          errstr_size))
                goto fail;

        json_object_foreach(pf->datasets, k, v)
        {
                snprintf(where, sizeof(where), "datasets.%s.", k);
                if (!json_is_object(v))
                        PF_ERR("platform '%s': key 'datasets.%s': expected an "
                               "object",
                               path, k);
                if (sb_pf_keys(v, ds_keys, path, where, errstr, errstr_size))
                        goto fail;
                snprintf(where, sizeof(where), "datasets.%s.holders", k);
                if (sb_pf_principals(json_object_get(v, "holders"), path, where,
                                     errstr, errstr_size))
                        goto fail;
                if (json_object_get(v, "partitions") &&
                    (!json_is_integer(json_object_get(v, "partitions")) ||
                     json_integer_value(json_object_get(v, "partitions")) < 1))
                        PF_ERR("platform '%s': key 'datasets.%s.partitions': "
                               "expected a positive integer",
                               path, k);
        }
        if (pf->reusers) {
                json_object_foreach(pf->reusers, k, v)
                {
                        snprintf(where, sizeof(where), "reusers.%s.", k);
                        if (!json_is_object(v))
                                PF_ERR("platform '%s': key 'reusers.%s': "
                                       "expected an object",
                                       path, k);
                        if (sb_pf_keys(v, ru_keys, path, where, errstr,
                                       errstr_size))
                                goto fail;
                        snprintf(where, sizeof(where), "reusers.%s.principals",
                                 k);
                        if (sb_pf_principals(json_object_get(v, "principals"),
                                             path, where, errstr, errstr_size))
                                goto fail;
                        snprintf(where, sizeof(where),
                                 "reusers.%s.receipt_keys", k);
                        if (sb_pf_pubkeys(json_object_get(v, "receipt_keys"),
                                          path, where, "the reuser", errstr,
                                          errstr_size))
                                goto fail;
                }
        }

        schemas_dir =
            json_string_value(json_object_get(pf->json, "schemas_dir"));
        grants_dir = json_string_value(json_object_get(pf->json, "grants_dir"));
        pf->cat = sb_catalog_load(schemas_dir ? schemas_dir : "schemas", errstr,
                                  errstr_size);
        if (!pf->cat)
                goto fail;
        if (sb_grants_load_dir(grants_dir ? grants_dir : "broker-config/grants",
                               pf->cat, &pf->grants, &pf->grant_cnt, errstr,
                               errstr_size))
                goto fail;
        json_object_foreach(pf->datasets, k, v)
        {
                if (!sb_catalog_dataset(pf->cat, k))
                        PF_ERR("platform '%s': dataset '%s': no schema "
                               "declares it",
                               path, k);
        }
        for (i = 0; i < pf->grant_cnt; i++) {
                const sb_grant_t *g = pf->grants[i];

                if (!json_object_get(pf->datasets, g->dataset))
                        PF_ERR("grant '%s': dataset '%s' is not declared in "
                               "platform '%s'",
                               g->origin, g->dataset, path);
                if (!pf->reusers || !json_object_get(pf->reusers, g->reuser))
                        PF_ERR("grant '%s': reuser '%s' is not declared in "
                               "platform '%s' (its principals are needed for "
                               "the ACLs)",
                               g->origin, g->reuser, path);
        }
        return pf;

fail:
        sb_platform_destroy(pf);
        return NULL;
}

void sb_platform_destroy(sb_platform_t *pf)
{
        if (!pf)
                return;
        sb_grants_destroy(pf->grants, pf->grant_cnt);
        sb_catalog_destroy(pf->cat);
        json_decref(pf->json);
        free(pf->origin);
        free(pf);
}

size_t sb_platform_receipt_key_cnt(const sb_platform_t *pf, const char *reuser)
{
        return json_array_size(json_object_get(
            json_object_get(pf->reusers, reuser), "receipt_keys"));
}

/* The i-th key of an array validated by sb_pf_pubkeys(). */
static void sb_pf_key_at(const json_t *keys, size_t i,
                         unsigned char pub[SB_SIGN_PUBLIC_BYTES])
{
        /* Validated at load: it decodes. */
        if (sb_pf_pubkey(json_string_value(json_array_get(keys, i)), pub))
                memset(pub, 0, SB_SIGN_PUBLIC_BYTES);
}

void sb_platform_receipt_key(const sb_platform_t *pf, const char *reuser,
                             size_t i, unsigned char pub[SB_SIGN_PUBLIC_BYTES])
{
        sb_pf_key_at(json_object_get(json_object_get(pf->reusers, reuser),
                                     "receipt_keys"),
                     i, pub);
}

size_t sb_platform_audit_key_cnt(const sb_platform_t *pf)
{
        return json_array_size(json_object_get(pf->json, "audit_keys"));
}

void sb_platform_audit_key(const sb_platform_t *pf, size_t i,
                           unsigned char pub[SB_SIGN_PUBLIC_BYTES])
{
        sb_pf_key_at(json_object_get(pf->json, "audit_keys"), i, pub);
}

static int sb_pf_add(sb_topic_spec_t **specs, size_t *cnt, size_t *cap,
                     const sb_topic_spec_t *t)
{
        size_t i;

        for (i = 0; i < *cnt; i++)
                if (!strcmp((*specs)[i].name, t->name)) {
                        free(t->name);
                        return 0; /* implied twice: once is enough */
                }
        if (*cnt == *cap) {
                sb_topic_spec_t *n =
                    realloc(*specs, (*cap ? *cap * 2 : 16) * sizeof(**specs));

                if (!n) {
                        free(t->name);
                        return -1;
                }
                *specs = n;
                *cap = *cap ? *cap * 2 : 16;
        }
        (*specs)[(*cnt)++] = *t;
        return 0;
}

sb_err_t sb_platform_topics(const sb_platform_t *pf, sb_topic_spec_t **specsp,
                            size_t *cntp, char *errstr, size_t errstr_size)
{
        sb_topic_spec_t *specs = NULL, t;
        size_t cnt = 0, cap = 0, i;
        const char *k;
        json_t *v;
        int fail = 0;

#define TOPIC(role_, parts_, policy_, retention_, ...)                         \
        do {                                                                   \
                memset(&t, 0, sizeof(t));                                      \
                if (asprintf(&t.name, __VA_ARGS__) == -1) {                    \
                        fail = 1;                                              \
                        break;                                                 \
                }                                                              \
                t.role = role_;                                                \
                t.partitions = parts_;                                         \
                t.replication_factor = pf->replication_factor;                 \
                t.min_insync_replicas = pf->min_insync_replicas;               \
                t.cleanup_policy = policy_;                                    \
                t.retention_ms = retention_;                                   \
                fail |= sb_pf_add(&specs, &cnt, &cap, &t);                     \
        } while (0)

        json_object_foreach(pf->datasets, k, v)
        {
                int parts = json_object_get(v, "partitions")
                                ? (int)json_integer_value(
                                      json_object_get(v, "partitions"))
                                : pf->partitions;

                TOPIC("input", parts, "delete", pf->input_retention_ms,
                      "sb.in.%s", k);
                TOPIC("state", parts, "compact", -1, "_sb.state.%s", k);
        }
        for (i = 0; i < pf->grant_cnt; i++) {
                const sb_grant_t *g = pf->grants[i];
                json_t *ds = json_object_get(pf->datasets, g->dataset);
                int parts = json_object_get(ds, "partitions")
                                ? (int)json_integer_value(
                                      json_object_get(ds, "partitions"))
                                : pf->partitions;

                TOPIC("output", parts, "compact,delete",
                      pf->output_retention_ms, "%s", g->topic);
                /* Records over the grant's rate wait here (gateway/gateway.h),
                 * partition = input partition; kept as long as the stream
                 * would keep them. */
                if (g->rate_per_second || g->rate_per_day)
                        TOPIC("hold", parts, "delete", pf->output_retention_ms,
                              "_sb.hold.%s", g->id);
        }
        if (pf->reusers) {
                json_object_foreach(pf->reusers, k, v)
                {
                        TOPIC("ack", 1, "delete", pf->ops_retention_ms,
                              "sb.ack.%s", k);
                        TOPIC("notice", 1, "delete", pf->ops_retention_ms,
                              "sb.notice.%s", k);
                }
        }
        TOPIC("grants", 1, "compact", -1, "_sb.grants");
        TOPIC("audit", 1, "delete", pf->audit_retention_ms, "_sb.audit");
        TOPIC("alerts", 1, "delete", pf->ops_retention_ms, "_sb.alerts");
        TOPIC("quarantine", 1, "delete", pf->ops_retention_ms,
              "_sb.quarantine");
#undef TOPIC
        if (fail) {
                sb_topic_specs_destroy(specs, cnt);
                return sb_seterr(errstr, errstr_size, SB_ERR_NOMEM,
                                 "out of memory");
        }
        *specsp = specs;
        *cntp = cnt;
        return SB_OK;
}

void sb_topic_specs_destroy(sb_topic_spec_t *specs, size_t cnt)
{
        size_t i;

        for (i = 0; i < cnt; i++)
                free(specs[i].name);
        free(specs);
}
