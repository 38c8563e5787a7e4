#include "gateway.h"

#include <inttypes.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "envelope.h"
#include "grant.h"
#include "log.h"
#include "schema.h"

#define F(name, type, req, def, lo, hi, desc)                                  \
        {                                                                      \
#name, type, offsetof(sb_gateway_cfg_t, name), req, def, lo,   \
                    hi, NULL, desc                                             \
        }

const sb_config_field_t sb_gateway_cfg_table[] = {
    {"kafka", SB_CFG_OBJECT, offsetof(sb_gateway_cfg_t, kafka), 1, NULL, 0, 0,
     sb_kafka_cfg_table, "Connection to the Kafka cluster"},
    F(client_id, SB_CFG_STRING, 0, "sharebus-gateway", 0, 0, "Kafka client.id"),
    F(datasets, SB_CFG_STRINGS, 1, NULL, 0, 0,
      "Datasets whose input topics (sb.in.<dataset>) this gateway serves"),
    F(schemas_dir, SB_CFG_STRING, 0, "schemas", 0, 0,
      "Directory of the dataset schemas (.avsc)"),
    F(grants_dir, SB_CFG_STRING, 1, NULL, 0, 0,
      "Directory of the grant files (.json)"),
    F(pseudonym_key_file, SB_CFG_STRING, 1, NULL, 0, 0,
      "File holding the 32-byte pseudonymisation master key as 64 hex "
      "characters (mode 0600)"),
    F(group_id, SB_CFG_STRING, 0, "sb-gateway", 0, 0,
      "Consumer group shared by all gateway instances"),
    F(transactional_id, SB_CFG_STRING, 0, NULL, 0, 0,
      "Kafka transactional.id, unique per gateway instance (default: "
      "sb-gateway-<client_id>)"),
    F(commit_interval_ms, SB_CFG_INT, 0, "100", 1, 60000,
      "Commit the open transaction at least this often"),
    F(commit_records, SB_CFG_INT, 0, "5000", 1, 1000000,
      "Commit the open transaction after this many input messages"),
    {NULL, 0, 0, 0, NULL, 0, 0, NULL, NULL},
};
#undef F

/* One grant as the gateway serves it. */
typedef struct sb_gw_grant_s {
        sb_grant_t *grant;
        sb_pseudonymiser_t *ps;
        avro_value_t out;
        json_t *delivered; /* subject id -> true; in memory only */
} sb_gw_grant_t;

typedef struct sb_gw_dataset_s {
        char *name;
        char *topic;
        const sb_schema_t *schema;
        avro_value_t in;
        sb_gw_grant_t **grants;
        size_t grant_cnt;
} sb_gw_dataset_t;

struct sb_gateway_s {
        const sb_gateway_cfg_t *cfg;
        sb_catalog_t *cat;
        const sb_schema_t *rights;
        avro_value_t rights_value;
        int rights_value_ok;
        sb_grant_t **grants;
        size_t grant_cnt;
        sb_gw_grant_t *gw_grants;
        sb_gw_dataset_t *datasets;
        size_t dataset_cnt;
        sb_key_t *key;
        rd_kafka_t *consumer;
        rd_kafka_t *producer;
        int assigned;
        int64_t assigned_ms; /* when the last assignment came */
        int in_txn;
        size_t txn_msgs;
        int64_t txn_start_ms;
        int txn_failed; /* a produce or delivery failed: abort */
        char txn_err[512];
        sb_buf_t buf;
        sb_gateway_stats_t stats;
        char source[256];
};

static void sb_gw_dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m,
                        void *opaque)
{
        sb_gateway_t *gw = opaque;

        (void)rk;
        if (m->err && !gw->txn_failed++)
                snprintf(gw->txn_err, sizeof(gw->txn_err),
                         "delivery to '%s' failed: %s",
                         rd_kafka_topic_name(m->rkt), rd_kafka_err2str(m->err));
}

static sb_err_t sb_gw_commit(sb_gateway_t *gw, char *errstr,
                             size_t errstr_size);
static void sb_gw_abort(sb_gateway_t *gw, int rewind);

static void sb_gw_rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                               rd_kafka_topic_partition_list_t *parts,
                               void *opaque)
{
        sb_gateway_t *gw = opaque;
        char errstr[512];

        if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
                sb_log(SB_LOG_INFO, "GATEWAY", "assigned %d partition(s)",
                       parts->cnt);
                rd_kafka_assign(rk, parts);
                gw->assigned = parts->cnt > 0;
                gw->assigned_ms = sb_now_ms();
                return;
        }
        /* Revoked: finish the open transaction while the group generation
         * is still ours, so the work done so far is kept. */
        if (gw->in_txn && sb_gw_commit(gw, errstr, sizeof(errstr)))
                sb_log(SB_LOG_WARN, "GATEWAY",
                       "commit before revocation failed: %s", errstr);
        sb_log(SB_LOG_INFO, "GATEWAY", "revoked %d partition(s)", parts->cnt);
        rd_kafka_assign(rk, NULL);
        gw->assigned = 0;
}

static sb_err_t sb_gw_load(sb_gateway_t *gw, char *errstr, size_t errstr_size)
{
        const sb_gateway_cfg_t *cfg = gw->cfg;
        json_t *ds;
        size_t i, j;

        gw->cat = sb_catalog_load(cfg->schemas_dir, errstr, errstr_size);
        if (!gw->cat)
                return SB_ERR_SCHEMA;
        gw->rights = sb_catalog_by_name(gw->cat, SB_RIGHTS_SCHEMA);
        if (!gw->rights)
                return sb_seterr(errstr, errstr_size, SB_ERR_SCHEMA,
                                 "schemas '%s': the rights event schema '%s' "
                                 "is missing",
                                 cfg->schemas_dir, SB_RIGHTS_SCHEMA);
        if (sb_schema_value_new(gw->rights, &gw->rights_value, errstr,
                                errstr_size))
                return SB_ERR_NOMEM;
        gw->rights_value_ok = 1;
        if (sb_grants_load_dir(cfg->grants_dir, gw->cat, &gw->grants,
                               &gw->grant_cnt, errstr, errstr_size))
                return SB_ERR_GRANT;

        gw->gw_grants =
            calloc(gw->grant_cnt ? gw->grant_cnt : 1, sizeof(*gw->gw_grants));
        gw->dataset_cnt = json_array_size(cfg->datasets);
        gw->datasets = calloc(gw->dataset_cnt ? gw->dataset_cnt : 1,
                              sizeof(*gw->datasets));
        if (!gw->gw_grants || !gw->datasets)
                return sb_seterr(errstr, errstr_size, SB_ERR_NOMEM,
                                 "out of memory");
        if (gw->dataset_cnt == 0)
                return sb_seterr(errstr, errstr_size, SB_ERR_CONFIG,
                                 "gateway: key 'datasets' is empty");
        for (i = 0; i < gw->grant_cnt; i++) {
                sb_gw_grant_t *gg = &gw->gw_grants[i];

                gg->grant = gw->grants[i];
                gg->ps = sb_pseudonymiser_new(gw->key, gg->grant->reuser,
                                              gg->grant->dataset);
                gg->delivered = json_object();
                if (!gg->ps || !gg->delivered ||
                    sb_schema_value_new(gg->grant->out, &gg->out, errstr,
                                        errstr_size))
                        return SB_ERR_NOMEM;
        }
        json_array_foreach(cfg->datasets, i, ds)
        {
                sb_gw_dataset_t *d = &gw->datasets[i];

                d->name = strdup(json_string_value(ds));
                if (!d->name ||
                    asprintf(&d->topic, "sb.in.%s", d->name) == -1) {
                        d->topic = NULL;
                        return sb_seterr(errstr, errstr_size, SB_ERR_NOMEM,
                                         "out of memory");
                }
                d->schema = sb_catalog_dataset(gw->cat, d->name);
                if (!d->schema)
                        return sb_seterr(errstr, errstr_size, SB_ERR_SCHEMA,
                                         "gateway: dataset '%s': no schema in "
                                         "'%s' declares it",
                                         d->name, cfg->schemas_dir);
                if (sb_schema_value_new(d->schema, &d->in, errstr, errstr_size))
                        return SB_ERR_NOMEM;
                d->grants = calloc(gw->grant_cnt ? gw->grant_cnt : 1,
                                   sizeof(*d->grants));
                if (!d->grants)
                        return sb_seterr(errstr, errstr_size, SB_ERR_NOMEM,
                                         "out of memory");
                for (j = 0; j < gw->grant_cnt; j++)
                        if (!strcmp(gw->grants[j]->dataset, d->name))
                                d->grants[d->grant_cnt++] = &gw->gw_grants[j];
                sb_log(SB_LOG_NOTICE, "GATEWAY",
                       "dataset '%s': %zu grant(s), schema %016" PRIx64,
                       d->name, d->grant_cnt, d->schema->fingerprint);
        }
        return SB_OK;
}

sb_gateway_t *sb_gateway_new(const sb_gateway_cfg_t *cfg, const sb_key_t *key,
                             char *errstr, size_t errstr_size)
{
        rd_kafka_conf_t *conf = NULL;
        rd_kafka_topic_partition_list_t *topics = NULL;
        rd_kafka_error_t *kerr;
        rd_kafka_resp_err_t rerr;
        char kerrstr[512], txid[256], client_id[256];
        sb_gateway_t *gw;
        size_t i;

        gw = calloc(1, sizeof(*gw));
        if (!gw) {
                sb_seterr(errstr, errstr_size, SB_ERR_NOMEM, "out of memory");
                return NULL;
        }
        gw->cfg = cfg;
        snprintf(gw->source, sizeof(gw->source), "sharebus://gateway/%s",
                 cfg->client_id);
        if (sb_crypto_init(errstr, errstr_size))
                goto fail;
        if (key) {
                gw->key = sb_key_random();
                if (!gw->key) {
                        sb_seterr(errstr, errstr_size, SB_ERR_NOMEM,
                                  "out of memory");
                        goto fail;
                }
                memcpy(gw->key->bytes, key->bytes, SB_KEY_BYTES);
        } else if (sb_key_load(cfg->pseudonym_key_file, &gw->key, errstr,
                               errstr_size)) {
                goto fail;
        }
        if (sb_gw_load(gw, errstr, errstr_size))
                goto fail;

        /* Producer: transactional, idempotent. */
        conf = sb_kafka_producer_conf_new(&cfg->kafka, cfg->client_id, errstr,
                                          errstr_size);
        if (!conf)
                goto fail;
        snprintf(txid, sizeof(txid), "%s",
                 cfg->transactional_id ? cfg->transactional_id : "");
        if (!*txid)
                snprintf(txid, sizeof(txid), "sb-gateway-%s", cfg->client_id);
        if (sb_kafka_conf_set(conf, "transactional.id", txid, errstr,
                              errstr_size) ||
            sb_kafka_conf_set(conf, "enable.idempotence", "true", errstr,
                              errstr_size) ||
            sb_kafka_conf_set(conf, "linger.ms", "5", errstr, errstr_size))
                goto fail;
        rd_kafka_conf_set_dr_msg_cb(conf, sb_gw_dr_cb);
        rd_kafka_conf_set_opaque(conf, gw);
        gw->producer =
            rd_kafka_new(RD_KAFKA_PRODUCER, conf, kerrstr, sizeof(kerrstr));
        if (!gw->producer) {
                sb_seterr(errstr, errstr_size, SB_ERR_KAFKA,
                          "gateway: cannot create producer: %s", kerrstr);
                goto fail;
        }
        conf = NULL;
        kerr = rd_kafka_init_transactions(gw->producer, 30000);
        if (kerr) {
                sb_seterr(errstr, errstr_size, SB_ERR_KAFKA,
                          "gateway: cannot initialise transactions "
                          "(transactional.id '%s'): %s",
                          txid, rd_kafka_error_string(kerr));
                rd_kafka_error_destroy(kerr);
                goto fail;
        }

        /* Consumer: offsets go through the producer's transactions. */
        snprintf(client_id, sizeof(client_id), "%s-in", cfg->client_id);
        conf = sb_kafka_conf_new(&cfg->kafka, client_id, errstr, errstr_size);
        if (!conf)
                goto fail;
        if (sb_kafka_conf_set(conf, "group.id", cfg->group_id, errstr,
                              errstr_size) ||
            sb_kafka_conf_set(conf, "enable.auto.commit", "false", errstr,
                              errstr_size) ||
            sb_kafka_conf_set(conf, "isolation.level", "read_committed", errstr,
                              errstr_size) ||
            sb_kafka_conf_set(conf, "auto.offset.reset", "earliest", errstr,
                              errstr_size))
                goto fail;
        rd_kafka_conf_set_rebalance_cb(conf, sb_gw_rebalance_cb);
        rd_kafka_conf_set_opaque(conf, gw);
        gw->consumer =
            rd_kafka_new(RD_KAFKA_CONSUMER, conf, kerrstr, sizeof(kerrstr));
        if (!gw->consumer) {
                sb_seterr(errstr, errstr_size, SB_ERR_KAFKA,
                          "gateway: cannot create consumer: %s", kerrstr);
                goto fail;
        }
        conf = NULL;
        rd_kafka_poll_set_consumer(gw->consumer);
        topics = rd_kafka_topic_partition_list_new((int)gw->dataset_cnt);
        for (i = 0; i < gw->dataset_cnt; i++)
                rd_kafka_topic_partition_list_add(topics, gw->datasets[i].topic,
                                                  RD_KAFKA_PARTITION_UA);
        rerr = rd_kafka_subscribe(gw->consumer, topics);
        rd_kafka_topic_partition_list_destroy(topics);
        if (rerr) {
                sb_seterr(errstr, errstr_size, SB_ERR_KAFKA,
                          "gateway: cannot subscribe: %s",
                          rd_kafka_err2str(rerr));
                goto fail;
        }
        return gw;

fail:
        if (conf)
                rd_kafka_conf_destroy(conf);
        sb_gateway_destroy(gw);
        return NULL;
}

static sb_err_t sb_gw_begin(sb_gateway_t *gw, char *errstr, size_t errstr_size)
{
        rd_kafka_error_t *kerr;

        if (gw->in_txn)
                return SB_OK;
        kerr = rd_kafka_begin_transaction(gw->producer);
        if (kerr) {
                sb_seterr(errstr, errstr_size, SB_ERR_KAFKA,
                          "gateway: cannot begin transaction: %s",
                          rd_kafka_error_string(kerr));
                rd_kafka_error_destroy(kerr);
                return SB_ERR_KAFKA;
        }
        gw->in_txn = 1;
        gw->txn_msgs = 0;
        gw->txn_failed = 0;
        gw->txn_start_ms = sb_now_ms();
        return SB_OK;
}

/* Rewinds the consumer to the last committed offsets of its assignment. */
static void sb_gw_rewind(sb_gateway_t *gw)
{
        rd_kafka_topic_partition_list_t *parts;
        rd_kafka_error_t *kerr;
        int i;

        if (rd_kafka_assignment(gw->consumer, &parts))
                return;
        if (parts->cnt > 0 && !rd_kafka_committed(gw->consumer, parts, 10000)) {
                for (i = 0; i < parts->cnt; i++)
                        if (parts->elems[i].offset < 0)
                                parts->elems[i].offset =
                                    RD_KAFKA_OFFSET_BEGINNING;
                kerr = rd_kafka_seek_partitions(gw->consumer, parts, 10000);
                if (kerr) {
                        sb_log(SB_LOG_ERR, "GATEWAY", "rewind failed: %s",
                               rd_kafka_error_string(kerr));
                        rd_kafka_error_destroy(kerr);
                }
        }
        rd_kafka_topic_partition_list_destroy(parts);
}

static void sb_gw_abort(sb_gateway_t *gw, int rewind)
{
        rd_kafka_error_t *kerr;

        if (!gw->in_txn)
                return;
        kerr = rd_kafka_abort_transaction(gw->producer, -1);
        if (kerr) {
                sb_log(SB_LOG_ERR, "GATEWAY", "abort failed: %s",
                       rd_kafka_error_string(kerr));
                rd_kafka_error_destroy(kerr);
        }
        gw->in_txn = 0;
        gw->stats.aborts++;
        if (rewind)
                sb_gw_rewind(gw);
}

/*
 * Commits the open transaction with the consumer's positions. Branches on
 * the error's kind: retriable -> retry, abortable -> abort and rewind (the
 * messages are processed again), fatal -> stop.
 */
static sb_err_t sb_gw_commit(sb_gateway_t *gw, char *errstr, size_t errstr_size)
{
        rd_kafka_topic_partition_list_t *offsets = NULL;
        rd_kafka_consumer_group_metadata_t *cgmd;
        rd_kafka_error_t *kerr = NULL;
        int tries;

        if (!gw->in_txn)
                return SB_OK;
        if (gw->txn_failed) {
                sb_log(SB_LOG_WARN, "GATEWAY", "aborting transaction: %s",
                       gw->txn_err);
                sb_gw_abort(gw, 1);
                return SB_OK;
        }
        if (rd_kafka_assignment(gw->consumer, &offsets) == 0) {
                rd_kafka_position(gw->consumer, offsets);
                cgmd = rd_kafka_consumer_group_metadata(gw->consumer);
                for (tries = 0; tries < 5; tries++) {
                        kerr = rd_kafka_send_offsets_to_transaction(
                            gw->producer, offsets, cgmd, -1);
                        if (!kerr || !rd_kafka_error_is_retriable(kerr))
                                break;
                        rd_kafka_error_destroy(kerr);
                        kerr = NULL;
                }
                rd_kafka_consumer_group_metadata_destroy(cgmd);
                rd_kafka_topic_partition_list_destroy(offsets);
        }
        for (tries = 0; !kerr && tries < 5; tries++) {
                kerr = rd_kafka_commit_transaction(gw->producer, -1);
                if (!kerr) {
                        gw->in_txn = 0;
                        gw->stats.transactions++;
                        return SB_OK;
                }
                if (!rd_kafka_error_is_retriable(kerr))
                        break;
                rd_kafka_error_destroy(kerr);
                kerr = NULL;
        }
        if (kerr && rd_kafka_error_txn_requires_abort(kerr)) {
                sb_log(SB_LOG_WARN, "GATEWAY",
                       "transaction aborted, input rewound: %s",
                       rd_kafka_error_string(kerr));
                rd_kafka_error_destroy(kerr);
                sb_gw_abort(gw, 1);
                return SB_OK;
        }
        sb_seterr(errstr, errstr_size, SB_ERR_KAFKA,
                  "gateway: transaction commit failed: %s",
                  kerr ? rd_kafka_error_string(kerr) : "retries exhausted");
        if (kerr)
                rd_kafka_error_destroy(kerr);
        return SB_ERR_KAFKA;
}

static void sb_gw_produce(sb_gateway_t *gw, const char *topic, const void *key,
                          size_t keylen, const void *value, size_t len,
                          rd_kafka_headers_t *hdrs)
{
        rd_kafka_resp_err_t err;

        for (;;) {
                err =
                    rd_kafka_producev(gw->producer, RD_KAFKA_V_TOPIC(topic),
                                      RD_KAFKA_V_KEY(key, keylen),
                                      RD_KAFKA_V_VALUE((void *)value, len),
                                      RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                      RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_END);
                if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL)
                        break;
                rd_kafka_poll(gw->producer, 50);
        }
        if (err) {
                rd_kafka_headers_destroy(hdrs);
                if (!gw->txn_failed++)
                        snprintf(gw->txn_err, sizeof(gw->txn_err),
                                 "produce to '%s' failed: %s", topic,
                                 rd_kafka_err2str(err));
        }
}

/* Sends the message as it came to the quarantine topic, with the reason. */
static void sb_gw_quarantine(sb_gateway_t *gw, const rd_kafka_message_t *m,
                             const char *reason)
{
        rd_kafka_headers_t *in = NULL, *hdrs;
        char num[32];

        sb_log(SB_LOG_WARN, "GATEWAY",
               "quarantined '%s' partition %" PRId32 " offset %" PRId64 ": %s",
               rd_kafka_topic_name(m->rkt), m->partition, m->offset, reason);
        if (rd_kafka_message_headers(m, &in) == RD_KAFKA_RESP_ERR_NO_ERROR)
                hdrs = rd_kafka_headers_copy(in);
        else
                hdrs = rd_kafka_headers_new(4);
        rd_kafka_header_add(hdrs, "sb_quarantine_reason", -1, reason, -1);
        rd_kafka_header_add(hdrs, "sb_origin_topic", -1,
                            rd_kafka_topic_name(m->rkt), -1);
        snprintf(num, sizeof(num), "%" PRId32, m->partition);
        rd_kafka_header_add(hdrs, "sb_origin_partition", -1, num, -1);
        snprintf(num, sizeof(num), "%" PRId64, m->offset);
        rd_kafka_header_add(hdrs, "sb_origin_offset", -1, num, -1);
        sb_gw_produce(gw, SB_QUARANTINE_TOPIC, m->key, m->key_len, m->payload,
                      m->len, hdrs);
        gw->stats.quarantined++;
}

static sb_gw_dataset_t *sb_gw_dataset_of(sb_gateway_t *gw, const char *topic)
{
        size_t i;

        for (i = 0; i < gw->dataset_cnt; i++)
                if (!strcmp(gw->datasets[i].topic, topic))
                        return &gw->datasets[i];
        return NULL;
}

/* The string field `name` of record `v`, or NULL. */
static const char *sb_gw_string_field(avro_value_t *v, const char *name)
{
        avro_value_t f;
        const char *s;
        size_t len;

        if (avro_value_get_by_name(v, name, &f, NULL) ||
            avro_value_get_string(&f, &s, &len))
                return NULL;
        return s;
}

static int sb_gw_key_is(const rd_kafka_message_t *m, const char *s)
{
        return m->key && m->key_len == strlen(s) &&
               !memcmp(m->key, s, m->key_len);
}

static void sb_gw_record(sb_gateway_t *gw, sb_gw_dataset_t *d,
                         const rd_kafka_message_t *m, sb_envelope_t *env)
{
        char reason[512], key[SB_PSEUDONYM_HEXLEN + 1 + 256];
        char ps[SB_PSEUDONYM_HEXLEN + 1];
        const char *subject, *record_id;
        int64_t now = sb_now_ms();
        size_t rid_len;
        sb_envelope_t out_env;
        size_t i;

        if (env->schema_fp != d->schema->fingerprint) {
                snprintf(reason, sizeof(reason),
                         "schema %016" PRIx64 " is not the schema of dataset "
                         "'%s' (%016" PRIx64 ")",
                         env->schema_fp, d->name, d->schema->fingerprint);
                sb_gw_quarantine(gw, m, reason);
                return;
        }
        if (sb_schema_decode(d->schema, m->payload, m->len, &d->in, reason,
                             sizeof(reason))) {
                sb_gw_quarantine(gw, m, reason);
                return;
        }
        subject = sb_gw_string_field(&d->in, d->schema->subject_field);
        record_id = sb_gw_string_field(&d->in, d->schema->record_id_field);
        rid_len = record_id ? strlen(record_id) : 0;
        if (!subject || !record_id || !sb_gw_key_is(m, subject) ||
            rid_len > 255) {
                sb_gw_quarantine(gw, m,
                                 "the message key is not the record's "
                                 "subject id, or the record id is invalid");
                return;
        }
        gw->stats.records_in++;

        memset(&out_env, 0, sizeof(out_env));
        out_env.type = SB_EV_RECORD_UPSERT;
        snprintf(out_env.source, sizeof(out_env.source), "%s", gw->source);
        snprintf(out_env.time, sizeof(out_env.time), "%s", env->time);

        for (i = 0; i < d->grant_cnt; i++) {
                sb_gw_grant_t *gg = d->grants[i];
                int klen;

                if (!sb_grant_active(gg->grant, now)) {
                        gw->stats.not_shared++;
                        continue;
                }
                sb_pseudonymise(gg->ps, subject, strlen(subject), ps);
                if (sb_grant_project(gg->grant, gg->ps, &d->in, ps, &gg->out,
                                     reason, sizeof(reason)) ||
                    sb_schema_encode(gg->grant->out, &gg->out, &gw->buf, reason,
                                     sizeof(reason))) {
                        /* A projection failure is our bug, not the
                         * holder's: fail the transaction, do not skip. */
                        if (!gw->txn_failed++)
                                snprintf(gw->txn_err, sizeof(gw->txn_err), "%s",
                                         reason);
                        return;
                }
                sb_uuid4(out_env.id);
                memcpy(out_env.subject, ps, sizeof(ps));
                out_env.schema_fp = gg->grant->out->fingerprint;
                /* "<pseudonym>/<record id>"; both lengths are bounded */
                memcpy(key, ps, SB_PSEUDONYM_HEXLEN);
                key[SB_PSEUDONYM_HEXLEN] = '/';
                memcpy(key + SB_PSEUDONYM_HEXLEN + 1, record_id, rid_len);
                klen = (int)(SB_PSEUDONYM_HEXLEN + 1 + rid_len);
                sb_gw_produce(gw, gg->grant->topic, key, (size_t)klen,
                              gw->buf.data, gw->buf.len,
                              sb_envelope_headers(&out_env));
                json_object_set_new(gg->delivered, subject, json_true());
                gw->stats.delivered++;
        }
}

static void sb_gw_rights(sb_gateway_t *gw, sb_gw_dataset_t *d,
                         const rd_kafka_message_t *m, sb_envelope_t *env)
{
        char reason[512], ps[SB_PSEUDONYM_HEXLEN + 1], subject[256];
        const char *vs;
        avro_value_t f;
        sb_envelope_t out_env;
        size_t i;

        if (env->schema_fp != gw->rights->fingerprint) {
                snprintf(reason, sizeof(reason),
                         "schema %016" PRIx64 " is not the rights event schema "
                         "(%016" PRIx64 ")",
                         env->schema_fp, gw->rights->fingerprint);
                sb_gw_quarantine(gw, m, reason);
                return;
        }
        if (sb_schema_decode(gw->rights, m->payload, m->len, &gw->rights_value,
                             reason, sizeof(reason))) {
                sb_gw_quarantine(gw, m, reason);
                return;
        }
        /* Copied: the value's string is overwritten with pseudonyms. */
        if (!(vs = sb_gw_string_field(&gw->rights_value, "subject")) ||
            strlen(vs) >= sizeof(subject))
                vs = "";
        snprintf(subject, sizeof(subject), "%s", vs);
        if (!*subject || !sb_gw_key_is(m, subject)) {
                sb_gw_quarantine(gw, m,
                                 "the message key is not the rights event's "
                                 "subject");
                return;
        }
        if (env->type != SB_EV_ERASURE) {
                snprintf(reason, sizeof(reason),
                         "rights event type '%s' is not handled by this "
                         "gateway version; kept here for the platform team",
                         sb_event_type2str(env->type));
                sb_gw_quarantine(gw, m, reason);
                return;
        }
        gw->stats.rights_in++;

        memset(&out_env, 0, sizeof(out_env));
        out_env.type = env->type;
        /* Receipts and status refer to the holder's event id. */
        snprintf(out_env.id, sizeof(out_env.id), "%s", env->id);
        snprintf(out_env.source, sizeof(out_env.source), "%s", gw->source);
        snprintf(out_env.time, sizeof(out_env.time), "%s", env->time);
        out_env.schema_fp = gw->rights->fingerprint;

        /* GDPR art. 19: only the reusers that received the subject. */
        for (i = 0; i < d->grant_cnt; i++) {
                sb_gw_grant_t *gg = d->grants[i];

                if (!json_object_get(gg->delivered, subject))
                        continue;
                sb_pseudonymise(gg->ps, subject, strlen(subject), ps);
                if (avro_value_get_by_name(&gw->rights_value, "subject", &f,
                                           NULL) ||
                    avro_value_set_string(&f, ps) ||
                    sb_schema_encode(gw->rights, &gw->rights_value, &gw->buf,
                                     reason, sizeof(reason))) {
                        if (!gw->txn_failed++)
                                snprintf(gw->txn_err, sizeof(gw->txn_err),
                                         "rights notice: %.480s", reason);
                        return;
                }
                /* Later grants must see the holder's subject again. */
                if (avro_value_set_string(&f, subject)) {
                        gw->txn_failed++;
                        return;
                }
                snprintf(out_env.subject, sizeof(out_env.subject), "%s", ps);
                sb_gw_produce(gw, gg->grant->topic, ps, strlen(ps),
                              gw->buf.data, gw->buf.len,
                              sb_envelope_headers(&out_env));
                json_object_del(gg->delivered, subject);
                gw->stats.notices++;
        }
}

static void sb_gw_process(sb_gateway_t *gw, const rd_kafka_message_t *m)
{
        char reason[512];
        sb_envelope_t env;
        sb_gw_dataset_t *d;

        d = sb_gw_dataset_of(gw, rd_kafka_topic_name(m->rkt));
        if (!d) {
                sb_gw_quarantine(gw, m, "not a topic of this gateway");
                return;
        }
        if (sb_envelope_parse(m, &env, reason, sizeof(reason))) {
                sb_gw_quarantine(gw, m, reason);
                return;
        }
        if (env.type == SB_EV_RECORD_UPSERT)
                sb_gw_record(gw, d, m, &env);
        else if (sb_event_type_is_rights(env.type))
                sb_gw_rights(gw, d, m, &env);
        else {
                snprintf(reason, sizeof(reason),
                         "event type '%s' is not handled by this gateway "
                         "version",
                         sb_event_type2str(env.type));
                sb_gw_quarantine(gw, m, reason);
        }
}

sb_err_t sb_gateway_run(sb_gateway_t *gw, volatile sig_atomic_t *stop,
                        int idle_exit_ms, char *errstr, size_t errstr_size)
{
        int64_t last_msg = sb_now_ms();
        sb_err_t err;

        while (!stop || !*stop) {
                rd_kafka_message_t *m;
                int64_t now;

                m = rd_kafka_consumer_poll(gw->consumer, 50);
                rd_kafka_poll(gw->producer, 0);
                now = sb_now_ms();
                if (m && m->err) {
                        if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                                sb_log(SB_LOG_WARN, "GATEWAY", "consumer: %s",
                                       rd_kafka_message_errstr(m));
                        rd_kafka_message_destroy(m);
                        m = NULL;
                }
                if (m) {
                        if ((err = sb_gw_begin(gw, errstr, errstr_size))) {
                                rd_kafka_message_destroy(m);
                                return err;
                        }
                        sb_gw_process(gw, m);
                        rd_kafka_message_destroy(m);
                        gw->txn_msgs++;
                        last_msg = now;
                }
                if (gw->in_txn &&
                    (gw->txn_failed ||
                     gw->txn_msgs >= (size_t)gw->cfg->commit_records ||
                     now - gw->txn_start_ms >= gw->cfg->commit_interval_ms) &&
                    (err = sb_gw_commit(gw, errstr, errstr_size)))
                        return err;
                if (idle_exit_ms > 0 && gw->assigned && !gw->in_txn &&
                    now - last_msg >= idle_exit_ms &&
                    now - gw->assigned_ms >= idle_exit_ms)
                        break;
        }
        return sb_gw_commit(gw, errstr, errstr_size);
}

const sb_gateway_stats_t *sb_gateway_stats(const sb_gateway_t *gw)
{
        return &gw->stats;
}

void sb_gateway_destroy(sb_gateway_t *gw)
{
        size_t i;

        if (!gw)
                return;
        if (gw->consumer) {
                rd_kafka_consumer_close(gw->consumer);
                rd_kafka_destroy(gw->consumer);
        }
        if (gw->producer) {
                if (gw->in_txn)
                        sb_gw_abort(gw, 0);
                rd_kafka_destroy(gw->producer);
        }
        for (i = 0; gw->datasets && i < gw->dataset_cnt; i++) {
                sb_gw_dataset_t *d = &gw->datasets[i];

                if (d->in.iface)
                        avro_value_decref(&d->in);
                free(d->grants);
                free(d->name);
                free(d->topic);
        }
        free(gw->datasets);
        for (i = 0; gw->gw_grants && i < gw->grant_cnt; i++) {
                sb_gw_grant_t *gg = &gw->gw_grants[i];

                if (gg->out.iface)
                        avro_value_decref(&gg->out);
                sb_pseudonymiser_destroy(gg->ps);
                json_decref(gg->delivered);
        }
        free(gw->gw_grants);
        sb_grants_destroy(gw->grants, gw->grant_cnt);
        if (gw->rights_value_ok)
                avro_value_decref(&gw->rights_value);
        sb_catalog_destroy(gw->cat);
        sb_key_destroy(gw->key);
        sb_buf_release(&gw->buf);
        free(gw);
}
