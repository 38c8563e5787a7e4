#include "holder.h"

#include <inttypes.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "crypto.h"
#include "log.h"
#include "schema.h"
#include "seal.h"
#include "sign.h"

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
    F(signing_key_file, SB_CFG_STRING, 0, NULL, 0, 0,
      "Ed25519 secret key file (sharebus keys generate; mode 0600) that "
      "signs every message, by batches of up to 1024; the gateway "
      "quarantines what its holder keys do not verify. Required unless "
      "kafka.insecure_dev"),
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
        sb_signkey_t *signkey; /* NULL: messages go unsigned */
        sb_sealer_t *sealer;
        sb_buf_t buf;
        avro_value_t value;  /* a dataset record */
        avro_value_t rvalue; /* a rights event */
        int value_ok, rvalue_ok;
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
        if (cfg->signing_key_file) {
                if (sb_signkey_load(cfg->signing_key_file, &h->signkey, errstr,
                                    errstr_size))
                        goto fail;
                if (!(h->sealer = sb_sealer_new(h->signkey))) {
                        sb_seterr(errstr, errstr_size, SB_ERR_NOMEM,
                                  "out of memory");
                        goto fail;
                }
        } else if (!cfg->kafka.insecure_dev) {
                sb_seterr(errstr, errstr_size, SB_ERR_CONFIG,
                          "holder: no signing_key_file: outside "
                          "kafka.insecure_dev every message must be signed "
                          "(make a key pair with: sharebus keys generate "
                          "--out NAME, and give NAME.pub to the platform "
                          "team)");
                goto fail;
        } else {
                sb_log(SB_LOG_WARN, "HOLDER",
                       "no signing_key_file: messages to '%s' are not "
                       "signed, and a gateway that verifies will "
                       "quarantine them (allowed with insecure_dev only)",
                       h->topic);
        }
        if (sb_schema_value_new(h->schema, &h->value, errstr, errstr_size))
                goto fail;
        h->value_ok = 1;
        if (sb_schema_value_new(h->rights, &h->rvalue, errstr, errstr_size))
                goto fail;
        h->rvalue_ok = 1;

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
        if (h->rvalue_ok)
                avro_value_decref(&h->rvalue);
        sb_catalog_destroy(h->cat);
        sb_sealer_destroy(h->sealer);
        sb_signkey_destroy(h->signkey);
        sb_buf_release(&h->buf);
        free(h->dataset);
        free(h->topic);
        free(h);
}

/* Sends one message now; takes `hdrs`. */
static sb_err_t sb_holder_send(void *opaque, const char *topic,
                               int32_t partition, const void *key,
                               size_t keylen, const void *value, size_t len,
                               rd_kafka_headers_t *hdrs, void *msg_opaque)
{
        sb_holder_t *h = opaque;
        rd_kafka_resp_err_t err;

        (void)msg_opaque;
        for (;;) {
                err =
                    rd_kafka_producev(h->rk, RD_KAFKA_V_TOPIC(topic),
                                      RD_KAFKA_V_PARTITION(partition),
                                      RD_KAFKA_V_KEY((void *)key, keylen),
                                      RD_KAFKA_V_VALUE((void *)value, len),
                                      RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                      RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_END);
                if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL)
                        break;
                rd_kafka_poll(h->rk, 100); /* back-pressure */
        }
        if (err) {
                rd_kafka_headers_destroy(hdrs);
                snprintf(h->dr_err, sizeof(h->dr_err),
                         "produce to '%s' failed: %s", topic,
                         rd_kafka_err2str(err));
                return SB_ERR_KAFKA;
        }
        rd_kafka_poll(h->rk, 0);
        return SB_OK;
}

/* Signs and sends the messages waiting for their batch signature. */
static sb_err_t sb_holder_seal(sb_holder_t *h, char *errstr, size_t errstr_size)
{
        sb_err_t err;

        if (!h->sealer || !sb_sealer_pending(h->sealer))
                return SB_OK;
        if ((err = sb_sealer_flush(h->sealer, sb_holder_send, h)))
                return sb_seterr(errstr, errstr_size, err, "holder: %s",
                                 err == SB_ERR_KAFKA ? h->dr_err
                                                     : "cannot sign the batch");
        return SB_OK;
}

/*
 * Produces the encoded h->buf with `env` headers; the caller polls. With a
 * signing key the message waits for its batch's signature (sent when the
 * batch is full, and before the commit).
 */
static sb_err_t sb_holder_produce(sb_holder_t *h, const char *key,
                                  const sb_envelope_t *env, char *errstr,
                                  size_t errstr_size)
{
        rd_kafka_headers_t *hdrs = sb_envelope_headers(env);
        sb_err_t err;

        if (!h->sealer) {
                if (sb_holder_send(h, h->topic, RD_KAFKA_PARTITION_UA, key,
                                   strlen(key), h->buf.data, h->buf.len, hdrs,
                                   NULL))
                        return sb_seterr(errstr, errstr_size, SB_ERR_KAFKA,
                                         "holder: %s", h->dr_err);
                return SB_OK;
        }
        if (sb_sealer_full(h->sealer) &&
            (err = sb_holder_seal(h, errstr, errstr_size))) {
                rd_kafka_headers_destroy(hdrs);
                return err;
        }
        if (sb_sealer_add(h->sealer, h->topic, RD_KAFKA_PARTITION_UA, key,
                          strlen(key), h->buf.data, h->buf.len, hdrs, NULL))
                return sb_seterr(errstr, errstr_size, SB_ERR_NOMEM,
                                 "out of memory");
        return SB_OK;
}

/* The longest subject or record id a header carries (sb_envelope_t). */
#define SB_HOLDER_ID_MAX (sizeof(((sb_envelope_t *)0)->subject) - 1)

/*
 * Validates one dataset record and encodes it into h->buf: the one path of
 * every record, published or rectified. *subjectp and *record_idp point
 * into h->value until the next record.
 */
static sb_err_t sb_holder_encode_record(sb_holder_t *h, const json_t *json,
                                        const char **subjectp,
                                        const char **record_idp, char *reason,
                                        size_t reason_size)
{
        avro_value_t f;
        sb_err_t err;
        size_t slen;

        err = sb_avrojson_from_json(h->schema->aj, json, &h->value, reason,
                                    reason_size);
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
        /* It travels in ce_subject, which the gateway reads into a fixed
         * buffer: cut, it would name another record. */
        if (slen - 1 > SB_HOLDER_ID_MAX)
                return sb_seterr(reason, reason_size, SB_ERR_VALIDATION,
                                 "field '%s': the record id is longer than "
                                 "%zu bytes",
                                 h->schema->record_id_field, SB_HOLDER_ID_MAX);
        return sb_schema_encode(h->schema, &h->value, &h->buf, reason,
                                reason_size);
}

/* Validates and encodes one NDJSON line into h->buf. */
static sb_err_t sb_holder_encode_line(sb_holder_t *h, const char *line,
                                      size_t len, const char **subjectp,
                                      const char **record_idp, char *reason,
                                      size_t reason_size)
{
        json_error_t jerr;
        json_t *json;
        sb_err_t err;

        json = json_loadb(line, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL,
                          &jerr);
        if (!json)
                return sb_seterr(reason, reason_size, SB_ERR_VALIDATION,
                                 "invalid JSON at column %d: %s", jerr.column,
                                 jerr.text);
        err = sb_holder_encode_record(h, json, subjectp, record_idp, reason,
                                      reason_size);
        json_decref(json);
        return err;
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

        if (commit && sb_holder_seal(h, errstr, errstr_size))
                commit = -1; /* not committed: abort, and say so */
        if (h->sealer)
                sb_sealer_discard(h->sealer);
        if (commit == 1) {
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

/* One non-blank line of an input file. */
typedef struct sb_holder_line_s {
        const char *name; /* the file, for messages */
        size_t no;
        const char *text; /* without its line end */
        size_t len;
} sb_holder_line_t;

/*
 * Validates and produces one line. A line the input gets wrong returns
 * SB_ERR_VALIDATION with the reason in `reason` (it is rejected, or ends
 * the file); any other error is the holder's own and fills errstr.
 */
typedef sb_err_t(sb_holder_line_fn_t)(sb_holder_t *h, const sb_holder_line_t *l,
                                      void *opaque, char *reason,
                                      size_t reason_size, char *errstr,
                                      size_t errstr_size);

/*
 * Publishes the lines of `in` through `fn` in one transaction, with the
 * rejects and all-or-nothing rules of sb_holder_publish().
 */
static sb_err_t sb_holder_file(sb_holder_t *h, FILE *in, const char *name,
                               FILE *rejects, sb_holder_line_fn_t *fn,
                               void *opaque, sb_holder_stats_t *stats,
                               char *errstr, size_t errstr_size)
{
        char *line = NULL, reason[1024];
        size_t cap = 0, lineno = 0, produced = 0;
        sb_holder_line_t l;
        ssize_t n;
        sb_err_t err;

        memset(stats, 0, sizeof(*stats));
        if ((err = sb_holder_begin(h, errstr, errstr_size)))
                return err;

        while ((n = getline(&line, &cap, in)) != -1) {
                size_t len = (size_t)n;

                lineno++;
                while (len > 0 &&
                       (line[len - 1] == '\n' || line[len - 1] == '\r' ||
                        line[len - 1] == ' '))
                        len--;
                if (len == 0)
                        continue;
                stats->lines++;
                l.name = name;
                l.no = lineno;
                l.text = line;
                l.len = len;
                reason[0] = '\0';
                err = fn(h, &l, opaque, reason, sizeof(reason), errstr,
                         errstr_size);
                if (err == SB_ERR_VALIDATION && rejects) {
                        sb_holder_write_reject(rejects, lineno, reason, line,
                                               len);
                        stats->rejected++;
                        continue;
                }
                if (err == SB_ERR_VALIDATION)
                        sb_seterr(errstr, errstr_size, err,
                                  "holder: '%s' line %zu: %s", name, lineno,
                                  reason);
                if (err)
                        goto abort;
                produced++;
        }
        if (ferror(in)) {
                err = sb_seterr(errstr, errstr_size, SB_ERR_IO,
                                "holder: '%s': read error after line %zu", name,
                                lineno);
                goto abort;
        }
        if (rejects && fflush(rejects)) {
                err = sb_seterr(errstr, errstr_size, SB_ERR_IO,
                                "holder: cannot write the rejects file; "
                                "nothing was published");
                goto abort;
        }
        free(line);
        if ((err = sb_holder_end_txn(h, 1, errstr, errstr_size)))
                return err;
        if (h->dr_ok != produced)
                return sb_seterr(errstr, errstr_size, SB_ERR_KAFKA,
                                 "holder: %zu records produced but %zu "
                                 "delivery reports received",
                                 produced, h->dr_ok);
        stats->published = produced;
        return SB_OK;

abort:
        sb_holder_end_txn(h, 0, NULL, 0);
        free(line);
        return err;
}

static sb_err_t sb_holder_publish_line(sb_holder_t *h,
                                       const sb_holder_line_t *l, void *opaque,
                                       char *reason, size_t reason_size,
                                       char *errstr, size_t errstr_size)
{
        const char *subject = NULL, *record_id = NULL;
        sb_envelope_t *env = opaque;
        sb_err_t err;

        err = sb_holder_encode_line(h, l->text, l->len, &subject, &record_id,
                                    reason, reason_size);
        if (err == SB_ERR_VALIDATION)
                return err;
        if (err)
                return sb_seterr(errstr, errstr_size, err,
                                 "holder: '%s' line %zu: %s", l->name, l->no,
                                 reason);
        sb_envelope_stamp(env);
        snprintf(env->subject, sizeof(env->subject), "%s", record_id);
        return sb_holder_produce(h, subject, env, errstr, errstr_size);
}

sb_err_t sb_holder_publish(sb_holder_t *h, FILE *in, const char *name,
                           FILE *rejects, sb_holder_stats_t *stats,
                           char *errstr, size_t errstr_size)
{
        sb_envelope_t env;

        memset(&env, 0, sizeof(env));
        env.type = SB_EV_RECORD_UPSERT;
        env.schema_fp = h->schema->fingerprint;
        snprintf(env.source, sizeof(env.source), "%s", h->source);
        return sb_holder_file(h, in, name, rejects, sb_holder_publish_line,
                              &env, stats, errstr, errstr_size);
}

/*
 * The rights events the holder publishes (DESIGN.md §6), in the order
 * sb_holder_rights_type_names() lists them. A rectification is the
 * corrected record itself; its subject field gives the subject.
 */
#define R_SUBJ SB_RIGHTS_SUBJECT
#define R_PURP SB_RIGHTS_PURPOSES
#define R_AT   SB_RIGHTS_REQUESTED_AT
static const struct {
        sb_event_type_t type;
        unsigned carries, needs;
} sb_holder_rights_types[] = {
    {SB_EV_ERASURE, R_SUBJ | R_AT, R_SUBJ},
    {SB_EV_RECTIFICATION, SB_RIGHTS_RECORD | R_SUBJ, SB_RIGHTS_RECORD},
    {SB_EV_OBJECTION, R_SUBJ | R_PURP | R_AT, R_SUBJ},
    {SB_EV_CONSENT_WITHDRAWN, R_SUBJ | R_PURP | R_AT, R_SUBJ},
    {SB_EV_CONSENT_GIVEN, R_SUBJ | R_PURP | R_AT, R_SUBJ},
    {SB_EV_RESTRICTION, R_SUBJ | R_AT, R_SUBJ},
    {SB_EV_RESTRICTION_LIFTED, R_SUBJ | R_AT, R_SUBJ},
    {SB_EV_RECORD_DELETE, R_SUBJ | SB_RIGHTS_RECORD_ID | R_AT,
     R_SUBJ | SB_RIGHTS_RECORD_ID},
};
#undef R_SUBJ
#undef R_PURP
#undef R_AT

/* The keys of a rights file line besides "type", in the order missing
 * ones are reported. */
static const struct {
        const char *key;
        unsigned bit;
} sb_holder_rights_keys[] = {
    {"subject", SB_RIGHTS_SUBJECT},           {"record", SB_RIGHTS_RECORD},
    {"record_id", SB_RIGHTS_RECORD_ID},       {"purposes", SB_RIGHTS_PURPOSES},
    {"requested_at", SB_RIGHTS_REQUESTED_AT},
};

#define SB_N(a) (sizeof(a) / sizeof((a)[0]))

unsigned sb_holder_rights_carries(sb_event_type_t type)
{
        size_t i;

        for (i = 0; i < SB_N(sb_holder_rights_types); i++)
                if (sb_holder_rights_types[i].type == type)
                        return sb_holder_rights_types[i].carries;
        return 0;
}

unsigned sb_holder_rights_requires(sb_event_type_t type)
{
        size_t i;

        for (i = 0; i < SB_N(sb_holder_rights_types); i++)
                if (sb_holder_rights_types[i].type == type)
                        return sb_holder_rights_types[i].needs;
        return 0;
}

sb_event_type_t sb_holder_rights_type_parse(const char *s)
{
        sb_event_type_t t = sb_event_type_parse(s);

        return sb_holder_rights_carries(t) ? t : SB_EV_UNKNOWN;
}

const char *sb_holder_rights_type_name(sb_event_type_t type)
{
        const char *s;

        if (!sb_holder_rights_carries(type))
                return NULL;
        s = sb_event_type2str(type);
        return strrchr(s, '.') + 1;
}

const char *sb_holder_rights_type_names(void)
{
        return "erasure, rectification, objection, consent-withdrawn, "
               "consent-given, restriction, restriction-lifted, delete";
}

/* Names a field in messages: "key 'subject'" in a rights file. */
static const char *sb_holder_fname(char *buf, size_t size, int keys,
                                   const char *field)
{
        if (!keys)
                return field;
        snprintf(buf, size, "key '%s'", field);
        return buf;
}

/* `v` as compact JSON for messages, cut after 40 bytes. */
static void sb_holder_got(const json_t *v, char *out, size_t size)
{
        char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
        size_t n;

        if (!s) {
                snprintf(out, size, "(unprintable value)");
                return;
        }
        n = strlen(s);
        if (n > 40) {
                /* Do not split a UTF-8 sequence. */
                n = 40;
                while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
                        n--;
                snprintf(out, size, "%.*s...", (int)n, s);
        } else {
                snprintf(out, size, "%s", s);
        }
        free(s);
}

/* Refuses the fields in `given` that events of `type` do not carry. */
static sb_err_t sb_holder_rights_allowed(sb_event_type_t type, unsigned given,
                                         int keys, char *reason,
                                         size_t reason_size)
{
        unsigned carries = sb_holder_rights_carries(type);
        char nbuf[64];
        size_t i;

        for (i = 0; i < SB_N(sb_holder_rights_keys); i++)
                if ((given & sb_holder_rights_keys[i].bit) &&
                    !(carries & sb_holder_rights_keys[i].bit))
                        return sb_seterr(
                            reason, reason_size, SB_ERR_INVALID_ARG,
                            "%s: not allowed for type '%s'",
                            sb_holder_fname(nbuf, sizeof(nbuf), keys,
                                            sb_holder_rights_keys[i].key),
                            sb_holder_rights_type_name(type));
        return SB_OK;
}

/* Refuses `given` when it lacks a field events of `type` need. */
static sb_err_t sb_holder_rights_complete(sb_event_type_t type, unsigned given,
                                          int keys, char *reason,
                                          size_t reason_size)
{
        unsigned needs = sb_holder_rights_requires(type);
        char nbuf[64];
        size_t i;

        for (i = 0; i < SB_N(sb_holder_rights_keys); i++)
                if ((needs & sb_holder_rights_keys[i].bit) &&
                    !(given & sb_holder_rights_keys[i].bit))
                        return sb_seterr(
                            reason, reason_size, SB_ERR_INVALID_ARG,
                            "%s: missing (type '%s' needs it)",
                            sb_holder_fname(nbuf, sizeof(nbuf), keys,
                                            sb_holder_rights_keys[i].key),
                            sb_holder_rights_type_name(type));
        return SB_OK;
}

/* Checks an id that goes into a Kafka key and a header. */
static sb_err_t sb_holder_check_id(const char *id, const char *name,
                                   char *reason, size_t reason_size)
{
        json_t *utf8;

        if (!*id)
                return sb_seterr(reason, reason_size, SB_ERR_VALIDATION,
                                 "%s: must not be empty", name);
        if (strlen(id) > SB_HOLDER_ID_MAX)
                return sb_seterr(reason, reason_size, SB_ERR_VALIDATION,
                                 "%s: longer than %zu bytes", name,
                                 SB_HOLDER_ID_MAX);
        utf8 = json_string(id); /* NULL unless valid UTF-8 */
        json_decref(utf8);
        if (!utf8)
                return sb_seterr(reason, reason_size, SB_ERR_VALIDATION,
                                 "%s: not valid UTF-8", name);
        return SB_OK;
}

static int sb_holder_is_uuid(const char *s)
{
        size_t i;

        if (strlen(s) != 36)
                return 0;
        for (i = 0; i < 36; i++) {
                if (i == 8 || i == 13 || i == 18 || i == 23) {
                        if (s[i] != '-')
                                return 0;
                } else if (!strchr("0123456789abcdefABCDEF", s[i])) {
                        return 0;
                }
        }
        return 1;
}

/* A record id must be able to name a record: when the dataset's record id
 * field is a uuid, so is the id of a record withdrawn. */
static sb_err_t sb_holder_check_record_id(sb_holder_t *h, const char *id,
                                          const char *name, char *reason,
                                          size_t reason_size)
{
        const json_t *f =
            sb_schema_field(h->schema, h->schema->record_id_field);
        const json_t *type = f ? json_object_get(f, "type") : NULL;
        const char *lt =
            json_string_value(json_object_get(type, "logicalType"));
        json_t *js;
        char got[64];
        sb_err_t err;

        if ((err = sb_holder_check_id(id, name, reason, reason_size)))
                return err;
        if (!lt || strcmp(lt, "uuid") || sb_holder_is_uuid(id))
                return SB_OK;
        js = json_string(id);
        sb_holder_got(js, got, sizeof(got));
        json_decref(js);
        return sb_seterr(reason, reason_size, SB_ERR_VALIDATION,
                         "%s: expected a uuid (the dataset's record id field "
                         "'%s'), got %s",
                         name, h->schema->record_id_field, got);
}

/* Purposes: an array of distinct non-empty strings. */
static sb_err_t sb_holder_check_purposes(const json_t *purposes, int keys,
                                         char *reason, size_t reason_size)
{
        char nbuf[64], ibuf[48], got[64];
        const json_t *p;
        size_t i, j;

        if (!json_is_array(purposes)) {
                sb_holder_got(purposes, got, sizeof(got));
                return sb_seterr(
                    reason, reason_size, SB_ERR_VALIDATION,
                    "%s: expected an array of strings, got %s",
                    sb_holder_fname(nbuf, sizeof(nbuf), keys, "purposes"), got);
        }
        json_array_foreach(purposes, i, p)
        {
                snprintf(ibuf, sizeof(ibuf), "purposes[%zu]", i);
                if (!json_is_string(p) || !json_string_length(p)) {
                        sb_holder_got(p, got, sizeof(got));
                        return sb_seterr(
                            reason, reason_size, SB_ERR_VALIDATION,
                            "%s: expected a non-empty string, got %s",
                            sb_holder_fname(nbuf, sizeof(nbuf), keys, ibuf),
                            got);
                }
                for (j = 0; j < i; j++)
                        if (json_equal(p, json_array_get(purposes, j)))
                                break;
                if (j < i) {
                        sb_holder_got(p, got, sizeof(got));
                        return sb_seterr(
                            reason, reason_size, SB_ERR_VALIDATION,
                            "%s: %s is listed twice",
                            sb_holder_fname(nbuf, sizeof(nbuf), keys, ibuf),
                            got);
                }
        }
        return SB_OK;
}

/* Fills h->rvalue, the RightsEvent of `env` for `req`. */
static sb_err_t sb_holder_rights_value(sb_holder_t *h,
                                       const sb_holder_rights_req_t *req,
                                       const sb_envelope_t *env, char *reason,
                                       size_t reason_size)
{
        avro_value_t f, item;
        const json_t *p;
        size_t i;

        avro_value_reset(&h->rvalue);
        if (avro_value_get_by_name(&h->rvalue, "event_id", &f, NULL) ||
            avro_value_set_string(&f, env->id) ||
            avro_value_get_by_name(&h->rvalue, "subject", &f, NULL) ||
            avro_value_set_string(&f, req->subject) ||
            avro_value_get_by_name(&h->rvalue, "requested_at", &f, NULL) ||
            avro_value_set_long(&f, req->requested_at ? req->requested_at
                                                      : sb_now_ms()) ||
            avro_value_get_by_name(&h->rvalue, "purposes", &f, NULL))
                goto fail;
        json_array_foreach(req->purposes, i, p)
        {
                if (avro_value_append(&f, &item, NULL) ||
                    avro_value_set_string(&item, json_string_value(p)))
                        goto fail;
        }
        return SB_OK;

fail:
        return sb_seterr(reason, reason_size, SB_ERR_SCHEMA,
                         "the rights event schema '%s' does not fit: %s",
                         SB_RIGHTS_SCHEMA, avro_strerror());
}

/*
 * Validates `req` and encodes it: its value into h->buf, its envelope into
 * `env`, its Kafka key into *keyp (borrowed from `req` or h->value).
 * `keys` names the fields as the keys of a rights file. SB_ERR_INVALID_ARG:
 * the request does not fit its type; SB_ERR_VALIDATION: its content is
 * invalid.
 */
static sb_err_t sb_holder_rights_encode(sb_holder_t *h,
                                        const sb_holder_rights_req_t *req,
                                        int keys, sb_envelope_t *env,
                                        const char **keyp, char *reason,
                                        size_t reason_size)
{
        unsigned given = 0;
        char nbuf[64];
        sb_err_t err;

        if (!sb_holder_rights_carries(req->type))
                return sb_seterr(reason, reason_size, SB_ERR_INVALID_ARG,
                                 "'%s' is not a rights event type",
                                 sb_event_type2str(req->type)
                                     ? sb_event_type2str(req->type)
                                     : "(unknown)");
        if (req->subject)
                given |= SB_RIGHTS_SUBJECT;
        if (req->purposes && !(json_is_array(req->purposes) &&
                               json_array_size(req->purposes) == 0))
                given |= SB_RIGHTS_PURPOSES;
        if (req->requested_at)
                given |= SB_RIGHTS_REQUESTED_AT;
        if (req->record_id)
                given |= SB_RIGHTS_RECORD_ID;
        if (req->record)
                given |= SB_RIGHTS_RECORD;
        if ((err = sb_holder_rights_allowed(req->type, given, keys, reason,
                                            reason_size)) ||
            (err = sb_holder_rights_complete(req->type, given, keys, reason,
                                             reason_size)))
                return err;

        memset(env, 0, sizeof(*env));
        env->type = req->type;
        snprintf(env->source, sizeof(env->source), "%s", h->source);
        sb_envelope_stamp(env);

        if (req->type == SB_EV_RECTIFICATION) {
                const char *subject, *record_id;
                char why[900];

                err = sb_holder_encode_record(h, req->record, &subject,
                                              &record_id, why, sizeof(why));
                if (err)
                        return sb_seterr(
                            reason, reason_size, err, "%s: %s",
                            sb_holder_fname(nbuf, sizeof(nbuf), keys, "record"),
                            why);
                if (req->subject && strcmp(req->subject, subject))
                        return sb_seterr(reason, reason_size, SB_ERR_VALIDATION,
                                         "%s: differs from the record's "
                                         "field '%s'",
                                         sb_holder_fname(nbuf, sizeof(nbuf),
                                                         keys, "subject"),
                                         h->schema->subject_field);
                env->schema_fp = h->schema->fingerprint;
                snprintf(env->subject, sizeof(env->subject), "%s", record_id);
                *keyp = subject;
                return SB_OK;
        }

        if ((err = sb_holder_check_id(
                 req->subject,
                 sb_holder_fname(nbuf, sizeof(nbuf), keys, "subject"), reason,
                 reason_size)))
                return err;
        if (req->record_id &&
            (err = sb_holder_check_record_id(
                 h, req->record_id,
                 sb_holder_fname(nbuf, sizeof(nbuf), keys, "record_id"), reason,
                 reason_size)))
                return err;
        if (req->purposes && (err = sb_holder_check_purposes(
                                  req->purposes, keys, reason, reason_size)))
                return err;
        if ((err = sb_holder_rights_value(h, req, env, reason, reason_size)) ||
            (err = sb_schema_encode(h->rights, &h->rvalue, &h->buf, reason,
                                    reason_size)))
                return err;
        env->schema_fp = h->rights->fingerprint;
        /* The gateway reads which record a delete withdraws from here. */
        snprintf(env->subject, sizeof(env->subject), "%s",
                 req->type == SB_EV_RECORD_DELETE ? req->record_id
                                                  : req->subject);
        *keyp = req->subject;
        return SB_OK;
}

sb_err_t sb_holder_rights_ex(sb_holder_t *h, const sb_holder_rights_req_t *req,
                             char *event_id, char *errstr, size_t errstr_size)
{
        const char *key, *tname;
        sb_envelope_t env;
        char reason[1024];
        sb_err_t err;

        err = sb_holder_rights_encode(h, req, 0, &env, &key, reason,
                                      sizeof(reason));
        if (err) {
                tname = sb_holder_rights_type_name(req->type);
                if (req->origin)
                        return sb_seterr(errstr, errstr_size, err,
                                         "holder: '%s': %s", req->origin,
                                         reason);
                return sb_seterr(errstr, errstr_size, err,
                                 "holder: %s event: %s",
                                 tname ? tname : "rights", reason);
        }
        if ((err = sb_holder_begin(h, errstr, errstr_size)))
                return err;
        if ((err = sb_holder_produce(h, key, &env, errstr, errstr_size))) {
                sb_holder_end_txn(h, 0, NULL, 0);
                return err;
        }
        if ((err = sb_holder_end_txn(h, 1, errstr, errstr_size)))
                return err;
        if (h->dr_ok != 1)
                return sb_seterr(errstr, errstr_size, SB_ERR_KAFKA,
                                 "holder: rights event produced but %zu "
                                 "delivery reports received",
                                 h->dr_ok);
        if (event_id) {
                memcpy(event_id, env.id, 36);
                event_id[36] = '\0';
        }
        return SB_OK;
}

sb_err_t sb_holder_rights(sb_holder_t *h, sb_event_type_t type,
                          const char *subject, const json_t *purposes,
                          char *event_id, char *errstr, size_t errstr_size)
{
        sb_holder_rights_req_t req;

        memset(&req, 0, sizeof(req));
        req.type = type;
        req.subject = subject;
        req.purposes = purposes;
        return sb_holder_rights_ex(h, &req, event_id, errstr, errstr_size);
}

/*
 * Reads one line of a rights file into `req` (which borrows from `o`):
 * every key known, allowed for the type and of the right JSON type, the
 * required ones present. Content is checked when the event is encoded.
 */
static sb_err_t sb_holder_rights_from_json(const json_t *o,
                                           sb_holder_rights_req_t *req,
                                           char *reason, size_t reason_size)
{
        const json_t *t, *v;
        const char *key;
        unsigned given = 0, bit;
        char got[64];
        sb_err_t err;
        size_t i;

        memset(req, 0, sizeof(*req));
        if (!json_is_object(o)) {
                sb_holder_got(o, got, sizeof(got));
                return sb_seterr(reason, reason_size, SB_ERR_VALIDATION,
                                 "expected a JSON object, got %s", got);
        }
        t = json_object_get(o, "type");
        if (!t)
                return sb_seterr(reason, reason_size, SB_ERR_VALIDATION,
                                 "key 'type': missing (one of %s)",
                                 sb_holder_rights_type_names());
        sb_holder_got(t, got, sizeof(got));
        if (!json_is_string(t))
                return sb_seterr(reason, reason_size, SB_ERR_VALIDATION,
                                 "key 'type': expected a string, got %s", got);
        req->type = sb_holder_rights_type_parse(json_string_value(t));
        if (!req->type)
                return sb_seterr(reason, reason_size, SB_ERR_VALIDATION,
                                 "key 'type': unknown rights event type %s "
                                 "(one of %s)",
                                 got, sb_holder_rights_type_names());

        json_object_foreach((json_t *)o, key, v)
        {
                if (!strcmp(key, "type"))
                        continue;
                bit = 0;
                for (i = 0; i < SB_N(sb_holder_rights_keys); i++)
                        if (!strcmp(key, sb_holder_rights_keys[i].key))
                                bit = sb_holder_rights_keys[i].bit;
                if (!bit)
                        return sb_seterr(reason, reason_size, SB_ERR_VALIDATION,
                                         "key '%s': unknown key", key);
                if (sb_holder_rights_allowed(req->type, bit, 1, reason,
                                             reason_size))
                        return SB_ERR_VALIDATION;
                given |= bit;
                sb_holder_got(v, got, sizeof(got));
                switch (bit) {
                case SB_RIGHTS_SUBJECT:
                case SB_RIGHTS_RECORD_ID:
                case SB_RIGHTS_REQUESTED_AT:
                        if (!json_is_string(v))
                                return sb_seterr(reason, reason_size,
                                                 SB_ERR_VALIDATION,
                                                 "key '%s': expected a "
                                                 "string, got %s",
                                                 key, got);
                        break;
                case SB_RIGHTS_PURPOSES:
                        if (!json_is_array(v))
                                return sb_seterr(reason, reason_size,
                                                 SB_ERR_VALIDATION,
                                                 "key '%s': expected an "
                                                 "array of strings, got %s",
                                                 key, got);
                        break;
                case SB_RIGHTS_RECORD:
                        if (!json_is_object(v))
                                return sb_seterr(reason, reason_size,
                                                 SB_ERR_VALIDATION,
                                                 "key '%s': expected a JSON "
                                                 "object, got %s",
                                                 key, got);
                        break;
                }
                if (bit == SB_RIGHTS_SUBJECT)
                        req->subject = json_string_value(v);
                else if (bit == SB_RIGHTS_RECORD_ID)
                        req->record_id = json_string_value(v);
                else if (bit == SB_RIGHTS_PURPOSES)
                        req->purposes = v;
                else if (bit == SB_RIGHTS_RECORD)
                        req->record = v;
                else if (sb_time_parse(json_string_value(v),
                                       &req->requested_at))
                        return sb_seterr(reason, reason_size, SB_ERR_VALIDATION,
                                         "key '%s': expected an RFC 3339 "
                                         "timestamp (2026-11-25T10:00:00Z), "
                                         "got %s",
                                         key, got);
        }
        if ((err = sb_holder_rights_complete(req->type, given, 1, reason,
                                             reason_size)))
                return SB_ERR_VALIDATION;
        return SB_OK;
}

/* The events of a rights file, reported once it is committed. */
typedef struct sb_holder_events_s {
        sb_holder_event_t *v;
        size_t cnt, cap;
} sb_holder_events_t;

static sb_err_t sb_holder_rights_line(sb_holder_t *h, const sb_holder_line_t *l,
                                      void *opaque, char *reason,
                                      size_t reason_size, char *errstr,
                                      size_t errstr_size)
{
        sb_holder_events_t *evs = opaque;
        sb_holder_rights_req_t req;
        sb_holder_event_t *ev;
        const char *key = NULL;
        sb_envelope_t env;
        json_error_t jerr;
        json_t *json;
        sb_err_t err;

        json = json_loadb(l->text, l->len,
                          JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &jerr);
        if (!json)
                return sb_seterr(reason, reason_size, SB_ERR_VALIDATION,
                                 "invalid JSON at column %d: %s", jerr.column,
                                 jerr.text);
        err = sb_holder_rights_from_json(json, &req, reason, reason_size);
        if (!err)
                err = sb_holder_rights_encode(h, &req, 1, &env, &key, reason,
                                              reason_size);
        if (err == SB_ERR_VALIDATION || err == SB_ERR_INVALID_ARG) {
                json_decref(json);
                return SB_ERR_VALIDATION;
        }
        if (err) {
                json_decref(json);
                return sb_seterr(errstr, errstr_size, err,
                                 "holder: '%s' line %zu: %s", l->name, l->no,
                                 reason);
        }
        if (evs->cnt == evs->cap) {
                size_t cap = evs->cap ? evs->cap * 2 : 64;
                sb_holder_event_t *v = realloc(evs->v, cap * sizeof(*v));

                if (!v) {
                        json_decref(json);
                        return sb_seterr(errstr, errstr_size, SB_ERR_NOMEM,
                                         "out of memory");
                }
                evs->v = v;
                evs->cap = cap;
        }
        err = sb_holder_produce(h, key, &env, errstr, errstr_size);
        json_decref(json); /* `key` may live in it */
        if (err)
                return err;
        ev = &evs->v[evs->cnt++];
        ev->line = l->no;
        ev->type = env.type;
        memcpy(ev->event_id, env.id, 36);
        ev->event_id[36] = '\0';
        return SB_OK;
}

sb_err_t sb_holder_rights_file(sb_holder_t *h, FILE *in, const char *name,
                               FILE *rejects, sb_holder_event_cb_t *cb,
                               void *opaque, sb_holder_stats_t *stats,
                               char *errstr, size_t errstr_size)
{
        sb_holder_events_t evs = {NULL, 0, 0};
        sb_err_t err;
        size_t i;

        err = sb_holder_file(h, in, name, rejects, sb_holder_rights_line, &evs,
                             stats, errstr, errstr_size);
        if (!err && cb)
                for (i = 0; i < evs.cnt; i++)
                        cb(&evs.v[i], opaque);
        free(evs.v);
        return err;
}
