#include "reuser.h"

#include <inttypes.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "crypto.h"
#include "envelope.h"
#include "grant.h"
#include "log.h"
#include "seal.h"
#include "schema.h"
#include "sign.h"
#include "store.h"

/* Receipt deliveries: bounded, so a broker outage stalls the agent at most
 * this long before it goes on consuming and retries later. */
#define SB_RU_RECEIPT_TIMEOUT_MS 30000
#define SB_RU_RECEIPT_RETRY_MS   10000
#define SB_RU_RECEIPT_BATCH      500
#define SB_RU_DAY_MS             86400000LL

#define F(name, type, req, def, lo, hi, desc)                                  \
        {                                                                      \
#name, type, offsetof(sb_reuser_cfg_t, name), req, def, lo,    \
                    hi, NULL, desc                                             \
        }

const sb_config_field_t sb_reuser_cfg_table[] = {
    {"kafka", SB_CFG_OBJECT, offsetof(sb_reuser_cfg_t, kafka), 1, NULL, 0, 0,
     sb_kafka_cfg_table, "Connection to the Kafka cluster"},
    F(client_id, SB_CFG_STRING, 0, "sharebus-reuser", 0, 0, "Kafka client.id"),
    F(reuser, SB_CFG_STRING, 1, NULL, 0, 0,
      "This reuser's name, as in its grant"),
    F(dataset, SB_CFG_STRING, 1, NULL, 0, 0, "The dataset received"),
    F(grant_file, SB_CFG_STRING, 1, NULL, 0, 0,
      "The grant file (the output schema is derived from it)"),
    F(schemas_dir, SB_CFG_STRING, 0, "schemas", 0, 0,
      "Directory of the dataset schemas (.avsc)"),
    F(database, SB_CFG_STRING, 1, NULL, 0, 0, "SQLite database file"),
    F(signing_key_file, SB_CFG_STRING, 1, NULL, 0, 0,
      "File holding this reuser's Ed25519 secret key (128 hex characters, "
      "mode 0600; make it with sharebus keys generate); receipts are signed "
      "with it"),
    F(receipts_topic, SB_CFG_STRING, 0, NULL, 0, 0,
      "Topic of the signed receipts (default: sb.ack.<reuser>)"),
    F(group_id, SB_CFG_STRING, 0, NULL, 0, 0,
      "Consumer group (default: sb-reuser-<reuser>)"),
    F(batch_records, SB_CFG_INT, 0, "500", 1, 100000,
      "Messages applied per SQL transaction at most"),
    F(purge_interval_ms, SB_CFG_INT, 0, "3600000", 1000, 86400000,
      "How often the running agent deletes the rows received more than the "
      "grant's retention_days ago, and every row once its valid_until has "
      "passed (it also purges when it starts, before consuming). Each purge "
      "is one SQL transaction, logged and recorded in the store's sb_purges "
      "table; sharebus reuser purge runs one on demand"),
    F(gateway_keys_dir, SB_CFG_STRING, 0, NULL, 0, 0,
      "Directory of the gateway's Ed25519 public keys (*.pub): every "
      "message of the stream must carry a batch signature by one of them, "
      "or it is refused (recorded in the store's rejects, logged as an "
      "alert) and nothing of it is applied. Required unless "
      "kafka.insecure_dev"),
    {NULL, 0, 0, 0, NULL, 0, 0, NULL, NULL},
};
#undef F

struct sb_reuser_s {
        const sb_reuser_cfg_t *cfg;
        sb_catalog_t *cat;
        sb_grant_t *grant;
        const sb_schema_t *rights, *receipt;
        avro_value_t value, rights_value, receipt_value;
        int value_ok, rights_value_ok, receipt_value_ok;
        sb_buf_t buf; /* the receipt being encoded */
        sb_store_t *store;
        sb_signkey_t *signkey;
        sb_keyring_t *gateway_keys; /* NULL: the stream is not verified */
        sb_seal_verifier_t *verifier;
        rd_kafka_t *consumer;
        rd_kafka_t *producer; /* receipts */
        char receipts_topic[256];
        char source[256];
        int assigned;
        int64_t assigned_ms; /* when the last assignment came */
        int in_txn;
        size_t txn_msgs;
        size_t txn_rights;    /* rights events in the open transaction */
        int receipts_waiting; /* the store may hold unsent receipts */
        int64_t receipts_tried_ms;
        int hold_receipts;
        size_t txn_stored;     /* records stored in the open transaction */
        int64_t next_purge_ms; /* system clock */
        int64_t (*now_ms)(void *opaque); /* NULL: sb_now_ms() */
        void *now_opaque;
        sb_reuser_stats_t stats;
};

/* The time rows are stamped and judged by (sb_reuser_set_clock()). */
static int64_t sb_ru_now(const sb_reuser_t *ru)
{
        return ru->now_ms ? ru->now_ms(ru->now_opaque) : sb_now_ms();
}

/* Positions come from the store, never from Kafka's committed offsets. */
static void sb_ru_rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                               rd_kafka_topic_partition_list_t *parts,
                               void *opaque)
{
        sb_reuser_t *ru = opaque;
        int i;

        if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
                for (i = 0; i < parts->cnt; i++) {
                        int64_t off =
                            sb_store_offset(ru->store, parts->elems[i].topic,
                                            parts->elems[i].partition);

                        parts->elems[i].offset =
                            off >= 0 ? off : RD_KAFKA_OFFSET_BEGINNING;
                }
                rd_kafka_assign(rk, parts);
                ru->assigned = parts->cnt > 0;
                ru->assigned_ms = sb_now_ms();
                sb_log(SB_LOG_INFO, "REUSER", "assigned %d partition(s)",
                       parts->cnt);
        } else {
                rd_kafka_assign(rk, NULL);
                ru->assigned = 0;
        }
}

static sb_err_t sb_ru_producer_new(sb_reuser_t *ru, char *errstr,
                                   size_t errstr_size)
{
        const sb_reuser_cfg_t *cfg = ru->cfg;
        rd_kafka_conf_t *conf;
        char kerrstr[512], timeout[32];

        conf = sb_kafka_producer_conf_new(&cfg->kafka, cfg->client_id, errstr,
                                          errstr_size);
        if (!conf)
                return SB_ERR_KAFKA;
        snprintf(timeout, sizeof(timeout), "%d", SB_RU_RECEIPT_TIMEOUT_MS);
        if (sb_kafka_conf_set(conf, "enable.idempotence", "true", errstr,
                              errstr_size) ||
            sb_kafka_conf_set(conf, "acks", "all", errstr, errstr_size) ||
            sb_kafka_conf_set(conf, "message.timeout.ms", timeout, errstr,
                              errstr_size)) {
                rd_kafka_conf_destroy(conf);
                return SB_ERR_KAFKA;
        }
        rd_kafka_conf_set_dr_msg_cb(conf, sb_kafka_dr_to_slot);
        ru->producer =
            rd_kafka_new(RD_KAFKA_PRODUCER, conf, kerrstr, sizeof(kerrstr));
        if (!ru->producer) {
                rd_kafka_conf_destroy(conf);
                return sb_seterr(errstr, errstr_size, SB_ERR_KAFKA,
                                 "reuser: cannot create the receipt "
                                 "producer: %s",
                                 kerrstr);
        }
        return SB_OK;
}

/*
 * Loads the catalog and the grant of `cfg` and checks the grant is this
 * reuser's, for this dataset. The caller destroys both, also on failure.
 */
static sb_err_t sb_ru_load_grant(const sb_reuser_cfg_t *cfg,
                                 sb_catalog_t **catp, sb_grant_t **grantp,
                                 char *errstr, size_t errstr_size)
{
        *grantp = NULL;
        *catp = sb_catalog_load(cfg->schemas_dir, errstr, errstr_size);
        if (!*catp)
                return SB_ERR_SCHEMA;
        *grantp = sb_grant_load(cfg->grant_file, *catp, errstr, errstr_size);
        if (!*grantp)
                return SB_ERR_CONFIG;
        if (strcmp((*grantp)->reuser, cfg->reuser) ||
            strcmp((*grantp)->dataset, cfg->dataset))
                return sb_seterr(errstr, errstr_size, SB_ERR_CONFIG,
                                 "grant '%s' is for reuser '%s' on dataset "
                                 "'%s', not '%s' on '%s'",
                                 cfg->grant_file, (*grantp)->reuser,
                                 (*grantp)->dataset, cfg->reuser, cfg->dataset);
        return SB_OK;
}

sb_reuser_t *sb_reuser_new(const sb_reuser_cfg_t *cfg, char *errstr,
                           size_t errstr_size)
{
        rd_kafka_topic_partition_list_t *topics;
        rd_kafka_conf_t *conf = NULL;
        rd_kafka_resp_err_t rerr;
        char kerrstr[512], group[256];
        sb_reuser_t *ru;

        ru = calloc(1, sizeof(*ru));
        if (!ru) {
                sb_seterr(errstr, errstr_size, SB_ERR_NOMEM, "out of memory");
                return NULL;
        }
        ru->cfg = cfg;
        if (sb_ru_load_grant(cfg, &ru->cat, &ru->grant, errstr, errstr_size))
                goto fail;
        ru->rights = sb_catalog_by_name(ru->cat, SB_RIGHTS_SCHEMA);
        if (!ru->rights) {
                sb_seterr(errstr, errstr_size, SB_ERR_SCHEMA,
                          "schemas '%s': the rights event schema '%s' is "
                          "missing",
                          cfg->schemas_dir, SB_RIGHTS_SCHEMA);
                goto fail;
        }
        if (sb_schema_value_new(ru->grant->out, &ru->value, errstr,
                                errstr_size))
                goto fail;
        ru->value_ok = 1;
        if (sb_schema_value_new(ru->rights, &ru->rights_value, errstr,
                                errstr_size))
                goto fail;
        ru->rights_value_ok = 1;
        ru->receipt = sb_catalog_by_name(ru->cat, SB_RECEIPT_SCHEMA);
        if (!ru->receipt) {
                sb_seterr(errstr, errstr_size, SB_ERR_SCHEMA,
                          "schemas '%s': the receipt schema '%s' is missing",
                          cfg->schemas_dir, SB_RECEIPT_SCHEMA);
                goto fail;
        }
        if (sb_schema_value_new(ru->receipt, &ru->receipt_value, errstr,
                                errstr_size))
                goto fail;
        ru->receipt_value_ok = 1;
        if (sb_crypto_init(errstr, errstr_size))
                goto fail;
        if (sb_signkey_load(cfg->signing_key_file, &ru->signkey, errstr,
                            errstr_size) == SB_ERR_IO) {
                size_t n = errstr ? strlen(errstr) : 0;

                if (errstr && n < errstr_size)
                        snprintf(errstr + n, errstr_size - n,
                                 " (signing_key_file; make a key with: "
                                 "sharebus keys generate --out NAME)");
                goto fail;
        }
        if (!ru->signkey)
                goto fail;
        if (cfg->gateway_keys_dir) {
                if (!(ru->gateway_keys = sb_keyring_new()) ||
                    !(ru->verifier = sb_seal_verifier_new(ru->gateway_keys))) {
                        sb_seterr(errstr, errstr_size, SB_ERR_NOMEM,
                                  "out of memory");
                        goto fail;
                }
                if (sb_keyring_load_dir(ru->gateway_keys, cfg->gateway_keys_dir,
                                        errstr, errstr_size))
                        goto fail;
        } else if (!cfg->kafka.insecure_dev) {
                sb_seterr(errstr, errstr_size, SB_ERR_CONFIG,
                          "reuser: no gateway_keys_dir: outside "
                          "kafka.insecure_dev the agent verifies the "
                          "gateway's signature on everything it applies "
                          "(ask the platform team for the gateway's public "
                          "key)");
                goto fail;
        } else {
                sb_log(SB_LOG_WARN, "REUSER",
                       "no gateway_keys_dir: the stream's signatures are not "
                       "verified (allowed with insecure_dev only)");
        }
        snprintf(ru->receipts_topic, sizeof(ru->receipts_topic), "%s",
                 cfg->receipts_topic ? cfg->receipts_topic : "");
        if (!*ru->receipts_topic)
                snprintf(ru->receipts_topic, sizeof(ru->receipts_topic),
                         "sb.ack.%s", cfg->reuser);
        snprintf(ru->source, sizeof(ru->source), "sharebus://reuser/%s",
                 cfg->reuser);
        ru->store =
            sb_store_open(cfg->database, ru->grant->out, errstr, errstr_size);
        if (!ru->store)
                goto fail;
        if (sb_ru_producer_new(ru, errstr, errstr_size))
                goto fail;
        ru->receipts_waiting = sb_store_receipt_count(ru->store, 0) != 0;
        sb_log(SB_LOG_INFO, "REUSER",
               "receipts go to '%s', signed with key %s%s", ru->receipts_topic,
               sb_signkey_id(ru->signkey),
               ru->receipts_waiting ? "; unsent receipts are sent first" : "");

        conf =
            sb_kafka_conf_new(&cfg->kafka, cfg->client_id, errstr, errstr_size);
        if (!conf)
                goto fail;
        snprintf(group, sizeof(group), "%s",
                 cfg->group_id ? cfg->group_id : "");
        if (!*group)
                snprintf(group, sizeof(group), "sb-reuser-%s", cfg->reuser);
        if (sb_kafka_conf_set(conf, "group.id", group, errstr, errstr_size) ||
            sb_kafka_conf_set(conf, "enable.auto.commit", "false", errstr,
                              errstr_size) ||
            sb_kafka_conf_set(conf, "isolation.level", "read_committed", errstr,
                              errstr_size))
                goto fail;
        rd_kafka_conf_set_rebalance_cb(conf, sb_ru_rebalance_cb);
        rd_kafka_conf_set_opaque(conf, ru);
        ru->consumer =
            rd_kafka_new(RD_KAFKA_CONSUMER, conf, kerrstr, sizeof(kerrstr));
        if (!ru->consumer) {
                sb_seterr(errstr, errstr_size, SB_ERR_KAFKA,
                          "reuser: cannot create consumer: %s", kerrstr);
                goto fail;
        }
        conf = NULL;
        rd_kafka_poll_set_consumer(ru->consumer);
        topics = rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(topics, ru->grant->topic,
                                          RD_KAFKA_PARTITION_UA);
        rerr = rd_kafka_subscribe(ru->consumer, topics);
        rd_kafka_topic_partition_list_destroy(topics);
        if (rerr) {
                sb_seterr(errstr, errstr_size, SB_ERR_KAFKA,
                          "reuser: cannot subscribe to '%s': %s",
                          ru->grant->topic, rd_kafka_err2str(rerr));
                goto fail;
        }
        return ru;

fail:
        if (conf)
                rd_kafka_conf_destroy(conf);
        sb_reuser_destroy(ru);
        return NULL;
}

static sb_err_t sb_ru_reject(sb_reuser_t *ru, const rd_kafka_message_t *m,
                             const char *reason, char *errstr,
                             size_t errstr_size)
{
        sb_log(SB_LOG_WARN, "REUSER",
               "refused '%s' partition %" PRId32 " offset %" PRId64 ": %s",
               rd_kafka_topic_name(m->rkt), m->partition, m->offset, reason);
        ru->stats.rejected++;
        return sb_store_reject(ru->store, rd_kafka_topic_name(m->rkt),
                               m->partition, m->offset, reason, errstr,
                               errstr_size);
}

/* Splits "pseudonym/record id" keys; returns 0 when well formed. */
static int sb_ru_split_key(const rd_kafka_message_t *m, char *ps, size_t pssz,
                           char *rid, size_t ridsz)
{
        const char *k = m->key, *slash;

        if (!k || m->key_len == 0)
                return -1;
        slash = memchr(k, '/', m->key_len);
        if (!slash || (size_t)(slash - k) >= pssz ||
            m->key_len - (size_t)(slash - k) - 1 >= ridsz ||
            slash == k + m->key_len - 1)
                return -1;
        memcpy(ps, k, (size_t)(slash - k));
        ps[slash - k] = '\0';
        memcpy(rid, slash + 1, m->key_len - (size_t)(slash - k) - 1);
        rid[m->key_len - (size_t)(slash - k) - 1] = '\0';
        return 0;
}

/*
 * Decodes a record message (upsert or rectification) into ru->value and
 * splits its key. Returns 0, or -1 with the reason for refusing it.
 */
static int sb_ru_decode_record(sb_reuser_t *ru, const rd_kafka_message_t *m,
                               char *ps, size_t pssz, char *rid, size_t ridsz,
                               char *reason, size_t reason_size)
{
        const char *vps;
        avro_value_t f;
        size_t len;

        if (sb_ru_split_key(m, ps, pssz, rid, ridsz)) {
                snprintf(reason, reason_size, "malformed record key");
                return -1;
        }
        if (sb_schema_decode(ru->grant->out, m->payload, m->len, &ru->value,
                             reason, reason_size))
                return -1;
        if (avro_value_get_by_index(&ru->value, 0, &f, NULL) ||
            avro_value_get_string(&f, &vps, &len) || strcmp(vps, ps)) {
                snprintf(reason, reason_size,
                         "the record's pseudonym does not match its key");
                return -1;
        }
        return 0;
}

/*
 * Decodes a rights notice (key: the pseudonym) and copies its subject into
 * `ps`. Returns 0, or -1 with the reason for refusing it.
 */
static int sb_ru_decode_notice(sb_reuser_t *ru, const rd_kafka_message_t *m,
                               const char *type, char *ps, size_t pssz,
                               char *reason, size_t reason_size)
{
        const char *vps;
        avro_value_t f;
        size_t len;

        if (sb_schema_decode(ru->rights, m->payload, m->len, &ru->rights_value,
                             reason, reason_size))
                return -1;
        if (avro_value_get_by_name(&ru->rights_value, "subject", &f, NULL) ||
            avro_value_get_string(&f, &vps, &len) || !m->key || len == 0 ||
            m->key_len != len - 1 || memcmp(m->key, vps, m->key_len)) {
                snprintf(reason, reason_size,
                         "%s notice whose subject does not match its key",
                         type);
                return -1;
        }
        if (len > pssz) {
                snprintf(reason, reason_size,
                         "%s notice whose subject is longer than %zu "
                         "characters",
                         type, pssz - 1);
                return -1;
        }
        memcpy(ps, vps, len);
        return 0;
}

/* Encodes the receipt of a rights event and adds it to the store. */
static sb_err_t sb_ru_receipt_add(sb_reuser_t *ru, const char *event_id,
                                  sb_event_type_t type, const char *ps,
                                  int64_t rows, int64_t applied_at,
                                  char *errstr, size_t errstr_size)
{
        const char *strings[][2] = {
            {"event_id", event_id},
            {"reuser", ru->cfg->reuser},
            {"dataset", ru->cfg->dataset},
            {"type", sb_event_type2str(type)},
            {"pseudonym", ps},
        };
        const char *longs[] = {"rows", "applied_at"};
        int64_t lv[] = {rows, applied_at};
        avro_value_t f;
        size_t i;
        sb_err_t err;

        for (i = 0; i < sizeof(strings) / sizeof(strings[0]); i++)
                if (avro_value_get_by_name(&ru->receipt_value, strings[i][0],
                                           &f, NULL) ||
                    avro_value_set_string(&f, strings[i][1]))
                        goto bad;
        for (i = 0; i < sizeof(longs) / sizeof(longs[0]); i++)
                if (avro_value_get_by_name(&ru->receipt_value, longs[i], &f,
                                           NULL) ||
                    avro_value_set_long(&f, lv[i]))
                        goto bad;
        if ((err = sb_schema_encode(ru->receipt, &ru->receipt_value, &ru->buf,
                                    errstr, errstr_size)))
                return err;
        return sb_store_receipt_add(ru->store, event_id, ru->buf.data,
                                    ru->buf.len, errstr, errstr_size);
bad:
        return sb_seterr(errstr, errstr_size, SB_ERR_SCHEMA,
                         "schema '%s': cannot set the receipt's fields: %s",
                         ru->receipt->origin, avro_strerror());
}

static void sb_ru_count_right(sb_reuser_t *ru, sb_event_type_t type,
                              int64_t rows)
{
        switch (type) {
        case SB_EV_ERASURE:
                ru->stats.erasures++;
                ru->stats.erased_rows += (size_t)rows;
                break;
        case SB_EV_OBJECTION:
                ru->stats.objections++;
                ru->stats.rights_rows += (size_t)rows;
                break;
        case SB_EV_CONSENT_WITHDRAWN:
                ru->stats.consent_withdrawn++;
                ru->stats.rights_rows += (size_t)rows;
                break;
        case SB_EV_RESTRICTION:
                ru->stats.restrictions++;
                break;
        case SB_EV_RESTRICTION_LIFTED:
                ru->stats.restrictions_lifted++;
                break;
        case SB_EV_RECTIFICATION:
                ru->stats.rectifications++;
                break;
        default:
                break;
        }
}

/*
 * A rights event: applied once per event id, in the open transaction, with
 * its receipt. The same event delivered again changes nothing; an event id
 * seen before with another type or subject is refused.
 */
static sb_err_t sb_ru_right(sb_reuser_t *ru, const rd_kafka_message_t *m,
                            const sb_envelope_t *env, char *errstr,
                            size_t errstr_size)
{
        const char *type = sb_event_type2str(env->type);
        char reason[512], ps[128] = "", rid[300];
        sb_store_right_t prev;
        int64_t rows, now;
        int found, applied;
        sb_err_t err;

        if (!*env->id)
                return sb_ru_reject(ru, m,
                                    "rights notice without an event id "
                                    "(ce_id)",
                                    errstr, errstr_size);
        if (env->type == SB_EV_RECTIFICATION
                ? sb_ru_decode_record(ru, m, ps, sizeof(ps), rid, sizeof(rid),
                                      reason, sizeof(reason))
                : sb_ru_decode_notice(ru, m, type, ps, sizeof(ps), reason,
                                      sizeof(reason)))
                return sb_ru_reject(ru, m, reason, errstr, errstr_size);

        if ((err = sb_store_right_find(ru->store, env->id, &found, &prev,
                                       errstr, errstr_size)))
                return err;
        if (found) {
                if (sb_event_type_parse(prev.type) != env->type ||
                    strcmp(prev.pseudonym, ps)) {
                        snprintf(reason, sizeof(reason),
                                 "rights event %s was applied before as %s "
                                 "of %s; refused as %s of %s",
                                 env->id, prev.type, prev.pseudonym, type, ps);
                        return sb_ru_reject(ru, m, reason, errstr, errstr_size);
                }
                ru->stats.rights_duplicates++;
                sb_log(SB_LOG_INFO, "REUSER",
                       "%s %s was applied on %s; delivered again, ignored",
                       type, env->id, prev.applied_at);
                return SB_OK;
        }

        now = sb_ru_now(ru);
        if (env->type == SB_EV_RECTIFICATION) {
                if ((err = sb_store_upsert(ru->store, rid, &ru->value, errstr,
                                           errstr_size)))
                        return err;
                ru->txn_stored++;
        }
        if ((err =
                 sb_store_apply_right(ru->store, env->id, env->type, ps, now,
                                      &rows, &applied, errstr, errstr_size)) ||
            (err = sb_ru_receipt_add(ru, env->id, env->type, ps, rows, now,
                                     errstr, errstr_size)))
                return err;
        ru->txn_rights++;
        sb_ru_count_right(ru, env->type, rows);
        sb_log(SB_LOG_NOTICE, "REUSER",
               "%s %s applied to %s: %" PRId64 " row(s)", type, env->id, ps,
               rows);
        return SB_OK;
}

static sb_err_t sb_ru_apply(sb_reuser_t *ru, const rd_kafka_message_t *m,
                            char *errstr, size_t errstr_size)
{
        char reason[512], ps[128], rid[300];
        sb_envelope_t env;
        sb_err_t err;

        /* Before anything else: what the gateway did not sign is not
         * applied, a tombstone or a rights notice no more than a record. */
        if (ru->verifier &&
            sb_seal_verify_message(ru->verifier, m, reason, sizeof(reason))) {
                ru->stats.unverified++;
                sb_log(SB_LOG_ERR, "REUSER",
                       "ALERT signature.invalid: '%s' partition %" PRId32
                       " offset %" PRId64 " is not applied: signature: %s",
                       rd_kafka_topic_name(m->rkt), m->partition, m->offset,
                       reason);
                return sb_ru_reject(ru, m, reason, errstr, errstr_size);
        }
        if (!m->payload) { /* tombstone: the record was withdrawn */
                if (sb_ru_split_key(m, ps, sizeof(ps), rid, sizeof(rid)))
                        return sb_ru_reject(ru, m,
                                            "tombstone with a "
                                            "malformed key",
                                            errstr, errstr_size);
                ru->stats.deleted++;
                return sb_store_delete_record(ru->store, ps, rid, errstr,
                                              errstr_size);
        }
        if (sb_envelope_parse(m, &env, reason, sizeof(reason)))
                return sb_ru_reject(ru, m, reason, errstr, errstr_size);

        switch (env.type) {
        case SB_EV_RECORD_UPSERT:
                if (sb_ru_decode_record(ru, m, ps, sizeof(ps), rid, sizeof(rid),
                                        reason, sizeof(reason)))
                        return sb_ru_reject(ru, m, reason, errstr, errstr_size);
                if ((err = sb_store_upsert(ru->store, rid, &ru->value, errstr,
                                           errstr_size)))
                        return err;
                ru->stats.records++;
                ru->txn_stored++;
                return SB_OK;
        case SB_EV_RECTIFICATION:
        case SB_EV_ERASURE:
        case SB_EV_OBJECTION:
        case SB_EV_CONSENT_WITHDRAWN:
        case SB_EV_RESTRICTION:
        case SB_EV_RESTRICTION_LIFTED:
                return sb_ru_right(ru, m, &env, errstr, errstr_size);
        default:
                snprintf(reason, sizeof(reason),
                         "event type '%s' is not handled by this agent "
                         "version",
                         sb_event_type2str(env.type));
                return sb_ru_reject(ru, m, reason, errstr, errstr_size);
        }
}

/* One receipt on the wire: the stored value, signed, with its headers. */
static rd_kafka_resp_err_t sb_ru_produce_receipt(sb_reuser_t *ru,
                                                 const sb_store_receipt_t *r,
                                                 rd_kafka_resp_err_t *status)
{
        char sig[SB_SIG_HEXLEN + 1];
        rd_kafka_headers_t *h;
        rd_kafka_resp_err_t err;
        sb_envelope_t env;

        if (sb_sign(ru->signkey, r->value, r->len, sig))
                return RD_KAFKA_RESP_ERR__FAIL;
        memset(&env, 0, sizeof(env));
        sb_envelope_stamp(&env); /* a fresh ce_id per publication */
        env.type = SB_EV_RECEIPT;
        env.schema_fp = ru->receipt->fingerprint;
        snprintf(env.source, sizeof(env.source), "%s", ru->source);
        snprintf(env.subject, sizeof(env.subject), "%s", r->event_id);
        h = sb_envelope_headers(&env);
        rd_kafka_header_add(h, "sb_sig", -1, sig, -1);
        rd_kafka_header_add(h, "sb_key_id", -1, sb_signkey_id(ru->signkey), -1);
        err = rd_kafka_producev(
            ru->producer, RD_KAFKA_V_TOPIC(ru->receipts_topic),
            RD_KAFKA_V_KEY(r->event_id, strlen(r->event_id)),
            RD_KAFKA_V_VALUE(r->value, r->len),
            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_HEADERS(h),
            RD_KAFKA_V_OPAQUE(status), RD_KAFKA_V_END);
        if (err)
                rd_kafka_headers_destroy(h); /* not taken on failure */
        return err;
}

/*
 * Publishes the receipts the store holds unsent (no transaction may be
 * open), waits for the broker's acknowledgement of each and marks those
 * sent. A receipt whose delivery failed stays unsent and is tried again
 * later; only store errors and a fatal producer error are returned.
 */
static sb_err_t sb_ru_send_receipts(sb_reuser_t *ru, char *errstr,
                                    size_t errstr_size)
{
        rd_kafka_resp_err_t *status = NULL;
        sb_store_receipt_t *list = NULL;
        size_t cnt = 0, i, failed = 0;
        char fatal[512];
        sb_err_t err;

        if (ru->hold_receipts || !ru->receipts_waiting)
                return SB_OK;
        ru->receipts_tried_ms = sb_now_ms();
        do {
                if ((err = sb_store_receipt_pending(ru->store,
                                                    SB_RU_RECEIPT_BATCH, &list,
                                                    &cnt, errstr, errstr_size)))
                        return err;
                if (cnt == 0)
                        break;
                status = calloc(cnt, sizeof(*status));
                if (!status) {
                        sb_store_receipts_free(list, cnt);
                        return sb_seterr(errstr, errstr_size, SB_ERR_NOMEM,
                                         "out of memory");
                }
                /* Reports are served by rd_kafka_flush() below only. */
                for (i = 0; i < cnt; i++) {
                        rd_kafka_resp_err_t perr;

                        status[i] = RD_KAFKA_RESP_ERR__IN_PROGRESS;
                        perr = sb_ru_produce_receipt(ru, &list[i], &status[i]);
                        if (perr)
                                status[i] = perr;
                }
                /* Every report must be in before `status` is freed; each
                 * comes within message.timeout.ms. */
                while (rd_kafka_outq_len(ru->producer) > 0)
                        rd_kafka_flush(ru->producer, 1000);

                err = sb_store_begin(ru->store, errstr, errstr_size);
                for (i = 0; !err && i < cnt; i++) {
                        if (status[i] != RD_KAFKA_RESP_ERR_NO_ERROR) {
                                sb_log(SB_LOG_WARN, "REUSER",
                                       "receipt %s not delivered to '%s': "
                                       "%s; it will be sent again",
                                       list[i].event_id, ru->receipts_topic,
                                       rd_kafka_err2str(status[i]));
                                failed++;
                                continue;
                        }
                        err = sb_store_receipt_mark_sent(
                            ru->store, list[i].event_id, errstr, errstr_size);
                }
                if (!err)
                        err = sb_store_commit(ru->store, errstr, errstr_size);
                if (err) {
                        sb_store_rollback(ru->store);
                } else {
                        ru->stats.receipts_sent += cnt - failed;
                        ru->stats.receipts_failed += failed;
                }
                free(status);
                status = NULL;
                sb_store_receipts_free(list, cnt);
                if (err)
                        return err;
        } while (!failed && cnt == SB_RU_RECEIPT_BATCH);

        if (rd_kafka_fatal_error(ru->producer, fatal, sizeof(fatal)))
                return sb_seterr(errstr, errstr_size, SB_ERR_KAFKA,
                                 "reuser: receipt producer: %s; unsent "
                                 "receipts are sent at the next start",
                                 fatal);
        ru->receipts_waiting = failed > 0;
        return SB_OK;
}

/*
 * Runs in the open transaction of `st` the purges `g` calls for at `now`:
 * retention first (rows due anyway are counted as such), then validity
 * (every row left). Fills *rep.
 */
static sb_err_t sb_ru_purge_txn(const sb_grant_t *g, sb_store_t *st,
                                int64_t now, sb_reuser_purge_t *rep,
                                char *errstr, size_t errstr_size)
{
        sb_store_purge_t res;
        sb_err_t err;

        memset(rep, 0, sizeof(*rep));
        snprintf(rep->grant, sizeof(rep->grant), "%s", g->id);
        rep->at_ms = now;
        rep->retention_days = g->retention_days;
        rep->retention_cutoff_ms = -1;
        rep->has_valid_until = g->has_valid_until;
        rep->valid_until_ms = g->has_valid_until ? g->valid_until_ms : -1;
        rep->validity_ended = g->has_valid_until && now >= g->valid_until_ms;
        if (g->retention_days > 0) {
                rep->retention_cutoff_ms =
                    now - (int64_t)g->retention_days * SB_RU_DAY_MS;
                if ((err = sb_store_purge(st, SB_PURGE_RETENTION,
                                          rep->retention_cutoff_ms, now, &res,
                                          errstr, errstr_size)))
                        return err;
                rep->retention_rows = res.rows;
                rep->retention_restricted = res.restricted;
                rep->kept = res.kept;
                rep->oldest_kept_ms = res.oldest_kept_ms;
        }
        if (rep->validity_ended) {
                if ((err = sb_store_purge(st, SB_PURGE_VALIDITY,
                                          g->valid_until_ms, now, &res, errstr,
                                          errstr_size)))
                        return err;
                rep->validity_rows = res.rows;
                rep->validity_restricted = res.restricted;
                rep->kept = res.kept;
                rep->oldest_kept_ms = res.oldest_kept_ms;
        }
        if (g->retention_days <= 0 && !rep->validity_ended)
                return sb_store_oldest(st, &rep->kept, &rep->oldest_kept_ms,
                                       errstr, errstr_size);
        return SB_OK;
}

/* The NOTICE lines of a purge that deleted rows, else one INFO line. */
static void sb_ru_purge_log(const sb_grant_t *g, const sb_reuser_purge_t *rep)
{
        char cutoff[32], until[32], oldest[32], kept[128];

        if (rep->oldest_kept_ms >= 0) {
                sb_time_format(rep->oldest_kept_ms, oldest);
                snprintf(kept, sizeof(kept),
                         "%" PRId64 " row(s) kept, the oldest received %s",
                         rep->kept, oldest);
        } else {
                snprintf(kept, sizeof(kept), "no row kept");
        }
        if (rep->retention_rows > 0) {
                sb_time_format(rep->retention_cutoff_ms, cutoff);
                sb_log(SB_LOG_NOTICE, "REUSER",
                       "purge (retention): %" PRId64 " row(s) received before "
                       "%s deleted, retention_days %d of grant '%s' (%" PRId64
                       " of restricted subjects); %s",
                       rep->retention_rows, cutoff, rep->retention_days, g->id,
                       rep->retention_restricted, kept);
        }
        if (rep->validity_rows > 0) {
                sb_time_format(rep->valid_until_ms, until);
                sb_log(SB_LOG_NOTICE, "REUSER",
                       "purge (validity): %" PRId64 " row(s) deleted, grant "
                       "'%s' ended at %s (valid_until) (%" PRId64
                       " of restricted subjects); %s",
                       rep->validity_rows, g->id, until,
                       rep->validity_restricted, kept);
        }
        if (rep->retention_rows == 0 && rep->validity_rows == 0)
                sb_log(SB_LOG_INFO, "REUSER", "purge: nothing to delete; %s",
                       kept);
}

/* Counts and logs a committed purge. */
static void sb_ru_purged(sb_reuser_t *ru, const sb_reuser_purge_t *rep)
{
        ru->stats.purged_retention += (size_t)rep->retention_rows;
        ru->stats.purged_validity += (size_t)rep->validity_rows;
        sb_ru_purge_log(ru->grant, rep);
}

/* One purge in its own SQL transaction (none may be open). */
static sb_err_t sb_ru_purge(sb_reuser_t *ru, char *errstr, size_t errstr_size)
{
        sb_reuser_purge_t rep;
        sb_err_t err;

        if ((err = sb_store_begin(ru->store, errstr, errstr_size)))
                return err;
        err = sb_ru_purge_txn(ru->grant, ru->store, sb_ru_now(ru), &rep, errstr,
                              errstr_size);
        if (!err)
                err = sb_store_commit(ru->store, errstr, errstr_size);
        if (err) {
                sb_store_rollback(ru->store);
                return err;
        }
        sb_ru_purged(ru, &rep);
        return SB_OK;
}

static sb_err_t sb_ru_commit(sb_reuser_t *ru, char *errstr, size_t errstr_size)
{
        size_t rights = ru->txn_rights;
        sb_reuser_purge_t rep;
        int purged = 0;
        sb_err_t err = SB_OK;

        if (!ru->in_txn)
                return SB_OK;
        /* Once the grant has ended, a record consumed late is never kept:
         * the batch that stored it purges it before it commits. */
        if (ru->txn_stored && ru->grant->has_valid_until &&
            sb_ru_now(ru) >= ru->grant->valid_until_ms) {
                err = sb_ru_purge_txn(ru->grant, ru->store, sb_ru_now(ru), &rep,
                                      errstr, errstr_size);
                purged = !err;
        }
        if (!err)
                err = sb_store_commit(ru->store, errstr, errstr_size);
        ru->in_txn = 0;
        ru->txn_rights = 0;
        ru->txn_stored = 0;
        if (err) {
                sb_store_rollback(ru->store);
                return err;
        }
        ru->stats.batches++;
        if (purged)
                sb_ru_purged(ru, &rep);
        if (rights) {
                ru->receipts_waiting = 1;
                return sb_ru_send_receipts(ru, errstr, errstr_size);
        }
        return SB_OK;
}

sb_err_t sb_reuser_run(sb_reuser_t *ru, volatile sig_atomic_t *stop,
                       int idle_exit_ms, char *errstr, size_t errstr_size)
{
        int64_t last_msg = sb_now_ms();
        sb_err_t err;

        /* Rows past retention or validity go before anything is consumed,
         * then every purge_interval_ms. */
        if ((err = sb_ru_purge(ru, errstr, errstr_size)))
                return err;
        ru->next_purge_ms = sb_now_ms() + ru->cfg->purge_interval_ms;
        /* Receipts a crash left unsent go out before anything else. */
        if ((err = sb_ru_send_receipts(ru, errstr, errstr_size)))
                return err;
        while (!stop || !*stop) {
                rd_kafka_message_t *m;
                int64_t now;

                if (sb_now_ms() >= ru->next_purge_ms) {
                        if ((err = sb_ru_commit(ru, errstr, errstr_size)) ||
                            (err = sb_ru_purge(ru, errstr, errstr_size)))
                                return err;
                        ru->next_purge_ms =
                            sb_now_ms() + ru->cfg->purge_interval_ms;
                }
                m = rd_kafka_consumer_poll(ru->consumer, 50);
                rd_kafka_poll(ru->producer, 0);
                now = sb_now_ms();
                if (m && m->err) {
                        if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                                sb_log(SB_LOG_WARN, "REUSER", "consumer: %s",
                                       rd_kafka_message_errstr(m));
                        rd_kafka_message_destroy(m);
                        m = NULL;
                }
                if (!m) {
                        if ((err = sb_ru_commit(ru, errstr, errstr_size)))
                                return err;
                        if (ru->receipts_waiting &&
                            now - ru->receipts_tried_ms >=
                                SB_RU_RECEIPT_RETRY_MS &&
                            (err =
                                 sb_ru_send_receipts(ru, errstr, errstr_size)))
                                return err;
                        if (idle_exit_ms > 0 && ru->assigned &&
                            now - last_msg >= idle_exit_ms &&
                            now - ru->assigned_ms >= idle_exit_ms)
                                break;
                        continue;
                }
                last_msg = now;
                if (!ru->in_txn) {
                        if ((err = sb_store_begin(ru->store, errstr,
                                                  errstr_size))) {
                                rd_kafka_message_destroy(m);
                                return err;
                        }
                        ru->in_txn = 1;
                        ru->txn_msgs = 0;
                }
                err = sb_ru_apply(ru, m, errstr, errstr_size);
                if (!err)
                        err = sb_store_set_offset(
                            ru->store, rd_kafka_topic_name(m->rkt),
                            m->partition, m->offset + 1, errstr, errstr_size);
                rd_kafka_message_destroy(m);
                if (err) {
                        /* Nothing of the batch is kept; on restart the
                         * agent resumes from the last committed batch. */
                        sb_store_rollback(ru->store);
                        ru->in_txn = 0;
                        ru->txn_rights = 0;
                        ru->txn_stored = 0;
                        return err;
                }
                /* A rights event ends the batch: its receipt goes out as
                 * soon as the change is durable. */
                if ((++ru->txn_msgs >= (size_t)ru->cfg->batch_records ||
                     ru->txn_rights) &&
                    (err = sb_ru_commit(ru, errstr, errstr_size)))
                        return err;
        }
        if ((err = sb_ru_commit(ru, errstr, errstr_size)))
                return err;
        if (ru->receipts_waiting && !ru->hold_receipts)
                sb_log(SB_LOG_WARN, "REUSER",
                       "%" PRId64 " receipt(s) not yet acknowledged by the "
                       "broker; they are sent again at the next start",
                       sb_store_receipt_count(ru->store, 0));
        return SB_OK;
}

const sb_reuser_stats_t *sb_reuser_stats(const sb_reuser_t *ru)
{
        return &ru->stats;
}

struct sb_store_s *sb_reuser_store(sb_reuser_t *ru)
{
        return ru->store;
}

const struct sb_grant_s *sb_reuser_grant(const sb_reuser_t *ru)
{
        return ru->grant;
}

void sb_reuser_hold_receipts(sb_reuser_t *ru, int hold)
{
        ru->hold_receipts = hold;
}

void sb_reuser_set_clock(sb_reuser_t *ru, int64_t (*now_ms)(void *opaque),
                         void *opaque)
{
        ru->now_ms = now_ms;
        ru->now_opaque = opaque;
        sb_store_set_clock(ru->store, now_ms, opaque);
}

sb_err_t sb_reuser_purge_store(const sb_reuser_cfg_t *cfg, int dry_run,
                               sb_reuser_purge_t *rep, char *errstr,
                               size_t errstr_size)
{
        sb_catalog_t *cat = NULL;
        sb_grant_t *grant = NULL;
        sb_store_t *store = NULL;
        sb_err_t err;

        if ((err = sb_ru_load_grant(cfg, &cat, &grant, errstr, errstr_size)))
                goto done;
        /* Opening would create an empty store: say there is none. */
        if (access(cfg->database, F_OK) != 0) {
                err = sb_seterr(errstr, errstr_size, SB_ERR_STORE,
                                "store '%s' does not exist (the agent makes it "
                                "on its first run); check 'database'",
                                cfg->database);
                goto done;
        }
        store = sb_store_open(cfg->database, grant->out, errstr, errstr_size);
        if (!store) {
                err = SB_ERR_STORE;
                goto done;
        }
        if ((err = sb_store_begin(store, errstr, errstr_size)))
                goto done;
        err = sb_ru_purge_txn(grant, store, sb_now_ms(), rep, errstr,
                              errstr_size);
        if (!err && !dry_run)
                err = sb_store_commit(store, errstr, errstr_size);
        if (err || dry_run)
                sb_store_rollback(store);
        else
                sb_ru_purge_log(grant, rep);
done:
        sb_store_close(store);
        sb_grant_destroy(grant);
        sb_catalog_destroy(cat);
        return err;
}

void sb_reuser_destroy(sb_reuser_t *ru)
{
        if (!ru)
                return;
        if (ru->consumer) {
                rd_kafka_consumer_close(ru->consumer);
                rd_kafka_destroy(ru->consumer);
        }
        if (ru->producer) {
                /* Nothing is in flight: every send waits for its reports. */
                rd_kafka_flush(ru->producer, 1000);
                rd_kafka_destroy(ru->producer);
        }
        if (ru->in_txn)
                sb_store_rollback(ru->store);
        sb_store_close(ru->store);
        sb_signkey_destroy(ru->signkey);
        sb_seal_verifier_destroy(ru->verifier);
        sb_keyring_destroy(ru->gateway_keys);
        sb_buf_release(&ru->buf);
        if (ru->value_ok)
                avro_value_decref(&ru->value);
        if (ru->rights_value_ok)
                avro_value_decref(&ru->rights_value);
        if (ru->receipt_value_ok)
                avro_value_decref(&ru->receipt_value);
        sb_grant_destroy(ru->grant);
        sb_catalog_destroy(ru->cat);
        free(ru);
}
