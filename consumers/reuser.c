#include "reuser.h"

#include <inttypes.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "envelope.h"
#include "grant.h"
#include "log.h"
#include "schema.h"
#include "store.h"

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
    F(group_id, SB_CFG_STRING, 0, NULL, 0, 0,
      "Consumer group (default: sb-reuser-<reuser>)"),
    F(batch_records, SB_CFG_INT, 0, "500", 1, 100000,
      "Messages applied per SQL transaction at most"),
    {NULL, 0, 0, 0, NULL, 0, 0, NULL, NULL},
};
#undef F

struct sb_reuser_s {
        const sb_reuser_cfg_t *cfg;
        sb_catalog_t *cat;
        sb_grant_t *grant;
        const sb_schema_t *rights;
        avro_value_t value, rights_value;
        int value_ok, rights_value_ok;
        sb_store_t *store;
        rd_kafka_t *consumer;
        int assigned;
        int64_t assigned_ms; /* when the last assignment came */
        int in_txn;
        size_t txn_msgs;
        sb_reuser_stats_t stats;
};

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
        ru->cat = sb_catalog_load(cfg->schemas_dir, errstr, errstr_size);
        if (!ru->cat)
                goto fail;
        ru->rights = sb_catalog_by_name(ru->cat, SB_RIGHTS_SCHEMA);
        if (!ru->rights) {
                sb_seterr(errstr, errstr_size, SB_ERR_SCHEMA,
                          "schemas '%s': the rights event schema '%s' is "
                          "missing",
                          cfg->schemas_dir, SB_RIGHTS_SCHEMA);
                goto fail;
        }
        ru->grant =
            sb_grant_load(cfg->grant_file, ru->cat, errstr, errstr_size);
        if (!ru->grant)
                goto fail;
        if (strcmp(ru->grant->reuser, cfg->reuser) ||
            strcmp(ru->grant->dataset, cfg->dataset)) {
                sb_seterr(errstr, errstr_size, SB_ERR_CONFIG,
                          "grant '%s' is for reuser '%s' on dataset '%s', not "
                          "'%s' on '%s'",
                          cfg->grant_file, ru->grant->reuser,
                          ru->grant->dataset, cfg->reuser, cfg->dataset);
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
        ru->store =
            sb_store_open(cfg->database, ru->grant->out, errstr, errstr_size);
        if (!ru->store)
                goto fail;

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

static sb_err_t sb_ru_apply(sb_reuser_t *ru, const rd_kafka_message_t *m,
                            char *errstr, size_t errstr_size)
{
        char reason[512], ps[128], rid[300];
        const char *vps;
        sb_envelope_t env;
        avro_value_t f;
        size_t len;
        int64_t rows;
        sb_err_t err;

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

        if (env.type == SB_EV_RECORD_UPSERT) {
                if (sb_ru_split_key(m, ps, sizeof(ps), rid, sizeof(rid)))
                        return sb_ru_reject(ru, m, "malformed record key",
                                            errstr, errstr_size);
                if (sb_schema_decode(ru->grant->out, m->payload, m->len,
                                     &ru->value, reason, sizeof(reason)))
                        return sb_ru_reject(ru, m, reason, errstr, errstr_size);
                if (avro_value_get_by_index(&ru->value, 0, &f, NULL) ||
                    avro_value_get_string(&f, &vps, &len) || strcmp(vps, ps))
                        return sb_ru_reject(ru, m,
                                            "the record's pseudonym does not "
                                            "match its key",
                                            errstr, errstr_size);
                if ((err = sb_store_upsert(ru->store, rid, &ru->value, errstr,
                                           errstr_size)))
                        return err;
                ru->stats.records++;
                return SB_OK;
        }
        if (env.type == SB_EV_ERASURE) {
                if (sb_schema_decode(ru->rights, m->payload, m->len,
                                     &ru->rights_value, reason, sizeof(reason)))
                        return sb_ru_reject(ru, m, reason, errstr, errstr_size);
                if (avro_value_get_by_name(&ru->rights_value, "subject", &f,
                                           NULL) ||
                    avro_value_get_string(&f, &vps, &len) || !m->key ||
                    m->key_len != len - 1 || memcmp(m->key, vps, m->key_len))
                        return sb_ru_reject(ru, m,
                                            "erasure notice whose subject "
                                            "does not match its key",
                                            errstr, errstr_size);
                if ((err = sb_store_erase_subject(ru->store, env.id, vps, &rows,
                                                  errstr, errstr_size)))
                        return err;
                ru->stats.erasures++;
                ru->stats.erased_rows += (size_t)rows;
                sb_log(SB_LOG_NOTICE, "REUSER",
                       "erasure %s applied: %" PRId64 " row(s) of %s deleted",
                       env.id, rows, vps);
                return SB_OK;
        }
        snprintf(reason, sizeof(reason),
                 "event type '%s' is not handled by this agent version",
                 sb_event_type2str(env.type));
        return sb_ru_reject(ru, m, reason, errstr, errstr_size);
}

static sb_err_t sb_ru_commit(sb_reuser_t *ru, char *errstr, size_t errstr_size)
{
        sb_err_t err;

        if (!ru->in_txn)
                return SB_OK;
        err = sb_store_commit(ru->store, errstr, errstr_size);
        ru->in_txn = 0;
        if (err) {
                sb_store_rollback(ru->store);
                return err;
        }
        ru->stats.batches++;
        return SB_OK;
}

sb_err_t sb_reuser_run(sb_reuser_t *ru, volatile sig_atomic_t *stop,
                       int idle_exit_ms, char *errstr, size_t errstr_size)
{
        int64_t last_msg = sb_now_ms();
        sb_err_t err;

        while (!stop || !*stop) {
                rd_kafka_message_t *m;
                int64_t now;

                m = rd_kafka_consumer_poll(ru->consumer, 50);
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
                        return err;
                }
                if (++ru->txn_msgs >= (size_t)ru->cfg->batch_records &&
                    (err = sb_ru_commit(ru, errstr, errstr_size)))
                        return err;
        }
        return sb_ru_commit(ru, errstr, errstr_size);
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

void sb_reuser_destroy(sb_reuser_t *ru)
{
        if (!ru)
                return;
        if (ru->consumer) {
                rd_kafka_consumer_close(ru->consumer);
                rd_kafka_destroy(ru->consumer);
        }
        if (ru->in_txn)
                sb_store_rollback(ru->store);
        sb_store_close(ru->store);
        if (ru->value_ok)
                avro_value_decref(&ru->value);
        if (ru->rights_value_ok)
                avro_value_decref(&ru->rights_value);
        sb_grant_destroy(ru->grant);
        sb_catalog_destroy(ru->cat);
        free(ru);
}
