#include "holder.h"

#include <inttypes.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "crypto.h"
#include "log.h"
#include "schema.h"

#define F(name, type, req, def, lo, hi, desc)                                  \
        {                                                                      \
#name, type, offsetof(sb_holder_cfg_t, name), req, def, lo,    \
                    hi, NULL, desc                                             \
        }

const sb_config_field_t sb_holder_cfg_table[] = {
    {"kafka", SB_CFG_OBJECT, offsetof(sb_holder_cfg_t, kafka), 1, NULL, 0, 0,
     sb_kafka_cfg_table, "Connection to the Kafka cluster"},
    F(client_id, SB_CFG_STRING, 0, "sharebus-holder", 0, 0,
      "Kafka client.id, shown in broker logs and quotas"),
    F(schemas_dir, SB_CFG_STRING, 0, "schemas", 0, 0,
      "Directory of the dataset schemas (.avsc)"),
    F(transactional_id, SB_CFG_STRING, 0, NULL, 0, 0,
      "Kafka transactional.id (default: sb-holder-<dataset>); one per "
      "running holder"),
    F(transaction_timeout_ms, SB_CFG_INT, 0, "60000", 1000, 900000,
      "Longest time one file's transaction may stay open"),
    {NULL, 0, 0, 0, NULL, 0, 0, NULL, NULL},
};
#undef F

struct sb_holder_s {
        const sb_holder_cfg_t *cfg;
        char *dataset;
        char *topic;
        char source[256];
        sb_catalog_t *cat;
        const sb_schema_t *schema;
        const sb_schema_t *rights;
        rd_kafka_t *rk;
        sb_buf_t buf;
        avro_value_t value;
        int value_ok;
        /* delivery reports: every one is checked */
        size_t dr_ok, dr_failed;
        char dr_err[512];
};

static void sb_holder_dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m,
                            void *opaque)
{
        sb_holder_t *h = opaque;

        (void)rk;
        if (m->err) {
                if (!h->dr_failed++)
                        snprintf(h->dr_err, sizeof(h->dr_err),
                                 "delivery to '%s' failed: %s",
                                 rd_kafka_topic_name(m->rkt),
                                 rd_kafka_err2str(m->err));
        } else {
                h->dr_ok++;
        }
}

sb_holder_t *sb_holder_new(const sb_holder_cfg_t *cfg, const char *dataset,
                           char *errstr, size_t errstr_size)
{
        rd_kafka_conf_t *conf = NULL;
        rd_kafka_error_t *kerr;
        char txid[256], kerrstr[512], timeout[32];
        sb_holder_t *h;

        h = calloc(1, sizeof(*h));
        if (!h) {
                sb_seterr(errstr, errstr_size, SB_ERR_NOMEM, "out of memory");
                return NULL;
        }
        h->cfg = cfg;
        h->dataset = strdup(dataset);
        if (!h->dataset || asprintf(&h->topic, "sb.in.%s", dataset) == -1) {
                h->topic = NULL;
                sb_seterr(errstr, errstr_size, SB_ERR_NOMEM, "out of memory");
                goto fail;
        }
        snprintf(h->source, sizeof(h->source), "sharebus://holder/%s/%s",
                 cfg->client_id, dataset);
        if (sb_crypto_init(errstr, errstr_size))
                goto fail;
        h->cat = sb_catalog_load(cfg->schemas_dir, errstr, errstr_size);
        if (!h->cat)
                goto fail;
        h->schema = sb_catalog_dataset(h->cat, dataset);
        if (!h->schema) {
                sb_seterr(errstr, errstr_size, SB_ERR_SCHEMA,
                          "dataset '%s': no schema in '%s' declares it "
                          "(\"sb.dataset\")",
                          dataset, cfg->schemas_dir);
                goto fail;
        }
        h->rights = sb_catalog_by_name(h->cat, SB_RIGHTS_SCHEMA);
        if (!h->rights) {
                sb_seterr(errstr, errstr_size, SB_ERR_SCHEMA,
                          "schemas '%s': the rights event schema '%s' is "
                          "missing",
                          cfg->schemas_dir, SB_RIGHTS_SCHEMA);
                goto fail;
        }
        if (sb_schema_value_new(h->schema, &h->value, errstr, errstr_size))
                goto fail;
        h->value_ok = 1;

        conf = sb_kafka_producer_conf_new(&cfg->kafka, cfg->client_id, errstr,
                                          errstr_size);
        if (!conf)
                goto fail;
        snprintf(txid, sizeof(txid), "%s",
                 cfg->transactional_id ? cfg->transactional_id : "");
        if (!*txid)
                snprintf(txid, sizeof(txid), "sb-holder-%s", dataset);
        snprintf(timeout, sizeof(timeout), "%lld", cfg->transaction_timeout_ms);
        if (sb_kafka_conf_set(conf, "transactional.id", txid, errstr,
                              errstr_size) ||
            sb_kafka_conf_set(conf, "enable.idempotence", "true", errstr,
                              errstr_size) ||
            sb_kafka_conf_set(conf, "acks", "all", errstr, errstr_size) ||
            sb_kafka_conf_set(conf, "transaction.timeout.ms", timeout, errstr,
                              errstr_size) ||
            sb_kafka_conf_set(conf, "linger.ms", "5", errstr, errstr_size))
                goto fail;
        rd_kafka_conf_set_dr_msg_cb(conf, sb_holder_dr_cb);
        rd_kafka_conf_set_opaque(conf, h);

        h->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, kerrstr, sizeof(kerrstr));
        if (!h->rk) {
                sb_seterr(errstr, errstr_size, SB_ERR_KAFKA,
                          "holder: cannot create producer: %s", kerrstr);
                goto fail;
        }
        conf = NULL;
        kerr = rd_kafka_init_transactions(h->rk, 30000);
        if (kerr) {
                sb_seterr(errstr, errstr_size, SB_ERR_KAFKA,
                          "holder: cannot initialise transactions "
                          "(transactional.id '%s'): %s",
                          txid, rd_kafka_error_string(kerr));
                rd_kafka_error_destroy(kerr);
                goto fail;
        }
        return h;

fail:
        if (conf)
                rd_kafka_conf_destroy(conf);
        sb_holder_destroy(h);
        return NULL;
}

void sb_holder_destroy(sb_holder_t *h)
{
        if (!h)
                return;
        if (h->rk)
                rd_kafka_destroy(h->rk);
        if (h->value_ok)
                avro_value_decref(&h->value);
        sb_catalog_destroy(h->cat);
        sb_buf_release(&h->buf);
        free(h->dataset);
        free(h->topic);
        free(h);
}

/* Produces the encoded h->buf with `env` headers; the caller polls. */
static sb_err_t sb_holder_produce(sb_holder_t *h, const char *key,
                                  const sb_envelope_t *env, char *errstr,
                                  size_t errstr_size)
{
        rd_kafka_headers_t *hdrs = sb_envelope_headers(env);
        rd_kafka_resp_err_t err;

        for (;;) {
                err =
                    rd_kafka_producev(h->rk, RD_KAFKA_V_TOPIC(h->topic),
                                      RD_KAFKA_V_KEY(key, strlen(key)),
                                      RD_KAFKA_V_VALUE(h->buf.data, h->buf.len),
                                      RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                      RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_END);
                if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL)
                        break;
                rd_kafka_poll(h->rk, 100); /* back-pressure */
        }
        if (err) {
                rd_kafka_headers_destroy(hdrs);
                return sb_seterr(errstr, errstr_size, SB_ERR_KAFKA,
                                 "holder: produce to '%s' failed: %s", h->topic,
                                 rd_kafka_err2str(err));
        }
        rd_kafka_poll(h->rk, 0);
        return SB_OK;
}

/* Validates and encodes one NDJSON line into h->buf. */
static sb_err_t sb_holder_encode_line(sb_holder_t *h, const char *line,
                                      size_t len, const char **subjectp,
                                      const char **record_idp, char *reason,
                                      size_t reason_size)
{
        json_error_t jerr;
        avro_value_t f;
        json_t *json;
        sb_err_t err;
        size_t slen;

        json = json_loadb(line, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL,
                          &jerr);
        if (!json)
                return sb_seterr(reason, reason_size, SB_ERR_VALIDATION,
                                 "invalid JSON at column %d: %s", jerr.column,
                                 jerr.text);
        err = sb_avrojson_from_json(h->schema->aj, json, &h->value, reason,
                                    reason_size);
        json_decref(json);
        if (err)
                return err;
        if (avro_value_get_by_name(&h->value, h->schema->subject_field, &f,
                                   NULL) ||
            avro_value_get_string(&f, subjectp, &slen) || slen <= 1)
                return sb_seterr(reason, reason_size, SB_ERR_VALIDATION,
                                 "field '%s': the subject id must not be "
                                 "empty",
                                 h->schema->subject_field);
        if (avro_value_get_by_name(&h->value, h->schema->record_id_field, &f,
                                   NULL) ||
            avro_value_get_string(&f, record_idp, &slen) || slen <= 1)
                return sb_seterr(reason, reason_size, SB_ERR_VALIDATION,
                                 "field '%s': the record id must not be empty",
                                 h->schema->record_id_field);
        return sb_schema_encode(h->schema, &h->value, &h->buf, reason,
                                reason_size);
}

static void sb_holder_write_reject(FILE *rejects, size_t lineno,
                                   const char *reason, const char *line,
                                   size_t len)
{
        json_t *o = json_object(), *input;
        char *text;

        /* Keep the input byte-exact when it is valid UTF-8. */
        input = json_stringn(line, len);
        json_object_set_new(o, "line", json_integer((json_int_t)lineno));
        json_object_set_new(o, "reason", json_string(reason));
        json_object_set_new(o, "input", input ? input : json_null());
        text = json_dumps(o, JSON_COMPACT);
        if (text)
                fprintf(rejects, "%s\n", text);
        free(text);
        json_decref(o);
}

/* Ends the open transaction: commit, or abort after a failure. */
static sb_err_t sb_holder_end_txn(sb_holder_t *h, int commit, char *errstr,
                                  size_t errstr_size)
{
        rd_kafka_error_t *kerr;

        if (commit) {
                kerr = rd_kafka_commit_transaction(h->rk, -1);
                if (!kerr && h->dr_failed == 0)
                        return SB_OK;
                if (kerr) {
                        sb_seterr(errstr, errstr_size, SB_ERR_KAFKA,
                                  "holder: commit to '%s' failed, nothing "
                                  "was published: %s",
                                  h->topic, rd_kafka_error_string(kerr));
                        rd_kafka_error_destroy(kerr);
                } else {
                        /* Cannot happen with a committed transaction, but
                         * a report that says so must not be ignored. */
                        sb_seterr(errstr, errstr_size, SB_ERR_KAFKA,
                                  "holder: %s", h->dr_err);
                }
        }
        kerr = rd_kafka_abort_transaction(h->rk, -1);
        if (kerr) {
                sb_log(SB_LOG_ERR, "HOLDER", "abort failed: %s",
                       rd_kafka_error_string(kerr));
                rd_kafka_error_destroy(kerr);
        }
        return commit ? SB_ERR_KAFKA : SB_OK;
}

static sb_err_t sb_holder_begin(sb_holder_t *h, char *errstr,
                                size_t errstr_size)
{
        rd_kafka_error_t *kerr = rd_kafka_begin_transaction(h->rk);

        if (kerr) {
                sb_seterr(errstr, errstr_size, SB_ERR_KAFKA,
                          "holder: cannot begin transaction: %s",
                          rd_kafka_error_string(kerr));
                rd_kafka_error_destroy(kerr);
                return SB_ERR_KAFKA;
        }
        h->dr_ok = h->dr_failed = 0;
        return SB_OK;
}

sb_err_t sb_holder_publish(sb_holder_t *h, FILE *in, const char *name,
                           FILE *rejects, sb_holder_stats_t *stats,
                           char *errstr, size_t errstr_size)
{
        char *line = NULL, reason[1024];
        size_t cap = 0, lineno = 0, produced = 0;
        sb_envelope_t env;
        ssize_t n;
        sb_err_t err;

        memset(stats, 0, sizeof(*stats));
        memset(&env, 0, sizeof(env));
        env.type = SB_EV_RECORD_UPSERT;
        env.schema_fp = h->schema->fingerprint;
        snprintf(env.source, sizeof(env.source), "%s", h->source);

        if ((err = sb_holder_begin(h, errstr, errstr_size)))
                return err;

        while ((n = getline(&line, &cap, in)) != -1) {
                const char *subject = NULL, *record_id = NULL;
                size_t len = (size_t)n;

                lineno++;
                while (len > 0 &&
                       (line[len - 1] == '\n' || line[len - 1] == '\r' ||
                        line[len - 1] == ' '))
                        len--;
                if (len == 0)
                        continue;
                stats->lines++;
                reason[0] = '\0';
                err = sb_holder_encode_line(h, line, len, &subject, &record_id,
                                            reason, sizeof(reason));
                if (err) {
                        if (!rejects) {
                                sb_seterr(errstr, errstr_size, err,
                                          "holder: '%s' line %zu: %s", name,
                                          lineno, reason);
                                sb_holder_end_txn(h, 0, NULL, 0);
                                free(line);
                                return err;
                        }
                        sb_holder_write_reject(rejects, lineno, reason, line,
                                               len);
                        stats->rejected++;
                        continue;
                }
                sb_envelope_stamp(&env);
                snprintf(env.subject, sizeof(env.subject), "%s", record_id);
                if ((err = sb_holder_produce(h, subject, &env, errstr,
                                             errstr_size))) {
                        sb_holder_end_txn(h, 0, NULL, 0);
                        free(line);
                        return err;
                }
                produced++;
        }
        free(line);
        if (ferror(in)) {
                sb_holder_end_txn(h, 0, NULL, 0);
                return sb_seterr(errstr, errstr_size, SB_ERR_IO,
                                 "holder: '%s': read error after line %zu",
                                 name, lineno);
        }
        if (rejects && fflush(rejects)) {
                sb_holder_end_txn(h, 0, NULL, 0);
                return sb_seterr(errstr, errstr_size, SB_ERR_IO,
                                 "holder: cannot write the rejects file; "
                                 "nothing was published");
        }
        if ((err = sb_holder_end_txn(h, 1, errstr, errstr_size)))
                return err;
        if (h->dr_ok != produced)
                return sb_seterr(errstr, errstr_size, SB_ERR_KAFKA,
                                 "holder: %zu records produced but %zu "
                                 "delivery reports received",
                                 produced, h->dr_ok);
        stats->published = produced;
        return SB_OK;
}

sb_err_t sb_holder_rights(sb_holder_t *h, sb_event_type_t type,
                          const char *subject, const json_t *purposes,
                          char *event_id, char *errstr, size_t errstr_size)
{
        avro_value_t v;
        sb_envelope_t env;
        json_t *json;
        char reason[512], now[32];
        sb_err_t err;

        if (!sb_event_type_is_rights(type))
                return sb_seterr(errstr, errstr_size, SB_ERR_INVALID_ARG,
                                 "holder: '%s' is not a rights event type",
                                 sb_event_type2str(type));
        if (!subject || !*subject)
                return sb_seterr(errstr, errstr_size, SB_ERR_INVALID_ARG,
                                 "holder: a rights event needs a subject id");
        memset(&env, 0, sizeof(env));
        env.type = type;
        env.schema_fp = h->rights->fingerprint;
        snprintf(env.source, sizeof(env.source), "%s", h->source);
        sb_envelope_stamp(&env);
        sb_time_format(sb_now_ms(), now);

        json = json_pack("{s:s, s:s, s:o, s:s}", "event_id", env.id, "subject",
                         subject, "purposes",
                         purposes ? json_deep_copy(purposes) : json_array(),
                         "requested_at", now);
        if (!json)
                return sb_seterr(errstr, errstr_size, SB_ERR_NOMEM,
                                 "out of memory");
        if ((err = sb_schema_value_new(h->rights, &v, errstr, errstr_size))) {
                json_decref(json);
                return err;
        }
        err = sb_avrojson_from_json(h->rights->aj, json, &v, reason,
                                    sizeof(reason));
        json_decref(json);
        if (!err)
                err = sb_schema_encode(h->rights, &v, &h->buf, reason,
                                       sizeof(reason));
        avro_value_decref(&v);
        if (err)
                return sb_seterr(errstr, errstr_size, err,
                                 "holder: rights event: %s", reason);

        if ((err = sb_holder_begin(h, errstr, errstr_size)))
                return err;
        if ((err = sb_holder_produce(h, subject, &env, errstr, errstr_size))) {
                sb_holder_end_txn(h, 0, NULL, 0);
                return err;
        }
        if ((err = sb_holder_end_txn(h, 1, errstr, errstr_size)))
                return err;
        if (event_id) {
                memcpy(event_id, env.id, 36);
                event_id[36] = '\0';
        }
        return SB_OK;
}
