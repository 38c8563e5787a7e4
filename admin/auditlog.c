#include "auditlog.h"

#include <stdlib.h>
#include <string.h>

#include "audit.h"
#include "audit_kafka.h"
#include "log.h"

struct sb_auditlog_s {
        const sb_admin_cfg_t *cfg;
        char *chain_id;
        rd_kafka_t *producer;
        sb_audit_chain_t *chain;
        sb_signkey_t *key; /* NULL: linked, not signed */
};

void sb_auditlog_destroy(sb_auditlog_t *al)
{
        if (!al)
                return;
        if (al->producer)
                rd_kafka_destroy(al->producer);
        sb_audit_chain_destroy(al->chain);
        sb_signkey_destroy(al->key);
        free(al->chain_id);
        free(al);
}

sb_auditlog_t *sb_auditlog_new(const sb_admin_cfg_t *cfg, const char *chain_id,
                               char *errstr, size_t errstr_size)
{
        char kerrstr[512], timeout[32], client_id[300];
        rd_kafka_conf_t *conf = NULL;
        rd_kafka_error_t *kerr;
        sb_auditlog_t *al;
        int due;

        al = calloc(1, sizeof(*al));
        if (!al || !(al->chain_id = strdup(chain_id))) {
                free(al);
                sb_seterr(errstr, errstr_size, SB_ERR_NOMEM, "out of memory");
                return NULL;
        }
        al->cfg = cfg;
        if (sb_crypto_init(errstr, errstr_size) ||
            (cfg->audit_key_file &&
             sb_signkey_load(cfg->audit_key_file, &al->key, errstr,
                             errstr_size)))
                goto fail;
        if (!al->key)
                sb_log(SB_LOG_WARN, "ADMIN",
                       "no audit_key_file in the admin config: the audit "
                       "chain '%s' is linked but no checkpoint is signed",
                       chain_id);
        al->chain =
            sb_audit_chain_new(chain_id, al->key, 0, errstr, errstr_size);
        if (!al->chain)
                goto fail;
        conf = sb_kafka_producer_conf_new(&cfg->kafka, cfg->client_id, errstr,
                                          errstr_size);
        if (!conf)
                goto fail;
        /* Longer than a message's timeout, as librdkafka requires. */
        snprintf(timeout, sizeof(timeout), "%lld", cfg->timeout_ms + 30000);
        if (sb_kafka_conf_set(conf, "transactional.id", chain_id, errstr,
                              errstr_size) ||
            sb_kafka_conf_set(conf, "enable.idempotence", "true", errstr,
                              errstr_size) ||
            sb_kafka_conf_set(conf, "transaction.timeout.ms", timeout, errstr,
                              errstr_size))
                goto fail;
        al->producer =
            rd_kafka_new(RD_KAFKA_PRODUCER, conf, kerrstr, sizeof(kerrstr));
        if (!al->producer) {
                sb_seterr(errstr, errstr_size, SB_ERR_KAFKA,
                          "audit: cannot create the %s writer: %s",
                          SB_AUDIT_TOPIC, kerrstr);
                goto fail;
        }
        conf = NULL;
        kerr = rd_kafka_init_transactions(al->producer, (int)cfg->timeout_ms);
        if (kerr) {
                sb_seterr(errstr, errstr_size, SB_ERR_KAFKA,
                          "audit: cannot initialise transactions "
                          "(transactional.id '%s'): %s",
                          chain_id, rd_kafka_error_string(kerr));
                rd_kafka_error_destroy(kerr);
                goto fail;
        }
        snprintf(client_id, sizeof(client_id), "%s-audit", cfg->client_id);
        if (sb_audit_kafka_resume(al->chain, chain_id, &cfg->kafka, client_id,
                                  client_id, (int)cfg->timeout_ms, &due, errstr,
                                  errstr_size))
                goto fail;
        return al;
fail:
        if (conf)
                rd_kafka_conf_destroy(conf);
        sb_auditlog_destroy(al);
        return NULL;
}

static sb_err_t sb_auditlog_produce(sb_auditlog_t *al, const char *text,
                                    char *errstr, size_t errstr_size)
{
        rd_kafka_resp_err_t kerr;

        for (;;) {
                kerr = rd_kafka_producev(
                    al->producer, RD_KAFKA_V_TOPIC(SB_AUDIT_TOPIC),
                    RD_KAFKA_V_KEY(al->chain_id, strlen(al->chain_id)),
                    RD_KAFKA_V_VALUE((void *)text, strlen(text)),
                    RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
                if (kerr != RD_KAFKA_RESP_ERR__QUEUE_FULL)
                        break;
                rd_kafka_poll(al->producer, 100);
        }
        if (kerr)
                return sb_seterr(errstr, errstr_size, SB_ERR_KAFKA,
                                 "audit: produce to '%s': %s", SB_AUDIT_TOPIC,
                                 rd_kafka_err2str(kerr));
        return SB_OK;
}

/* Chains and produces the entries, then the closing checkpoint, in the
 * open transaction. */
static sb_err_t sb_auditlog_fill(sb_auditlog_t *al, const json_t *entries,
                                 char *errstr, size_t errstr_size)
{
        char *text = NULL, *cp = NULL;
        const json_t *e;
        sb_err_t err = SB_OK;
        size_t i;

        json_array_foreach(entries, i, e)
        {
                err = sb_audit_chain_append(al->chain, e, &text, &cp, errstr,
                                            errstr_size);
                if (!err)
                        err =
                            sb_auditlog_produce(al, text, errstr, errstr_size);
                if (!err && cp)
                        err = sb_auditlog_produce(al, cp, errstr, errstr_size);
                free(text);
                free(cp);
                text = cp = NULL;
                if (err)
                        return err;
        }
        if (!al->key)
                return SB_OK;
        err = sb_audit_chain_checkpoint(al->chain, &cp, errstr, errstr_size);
        if (!err && cp)
                err = sb_auditlog_produce(al, cp, errstr, errstr_size);
        free(cp);
        return err;
}

sb_err_t sb_auditlog_write(sb_auditlog_t *al, const json_t *entries,
                           char *errstr, size_t errstr_size)
{
        rd_kafka_error_t *kerr;
        sb_err_t err;

        if (json_array_size(entries) == 0)
                return SB_OK;
        kerr = rd_kafka_begin_transaction(al->producer);
        if (kerr) {
                sb_seterr(errstr, errstr_size, SB_ERR_KAFKA,
                          "audit: cannot begin a transaction: %s",
                          rd_kafka_error_string(kerr));
                rd_kafka_error_destroy(kerr);
                return SB_ERR_KAFKA;
        }
        sb_audit_chain_mark(al->chain);
        err = sb_auditlog_fill(al, entries, errstr, errstr_size);
        if (!err) {
                kerr = rd_kafka_commit_transaction(al->producer,
                                                   (int)al->cfg->timeout_ms);
                if (!kerr)
                        return SB_OK;
                err = sb_seterr(
                    errstr, errstr_size, SB_ERR_KAFKA,
                    "audit: commit to %s: %s%s", SB_AUDIT_TOPIC,
                    rd_kafka_error_string(kerr),
                    rd_kafka_error_txn_requires_abort(kerr)
                        ? ""
                        : "; whether the entries were written is unknown");
                if (!rd_kafka_error_txn_requires_abort(kerr)) {
                        rd_kafka_error_destroy(kerr);
                        return err;
                }
                rd_kafka_error_destroy(kerr);
        }
        kerr =
            rd_kafka_abort_transaction(al->producer, (int)al->cfg->timeout_ms);
        if (kerr) {
                sb_log(SB_LOG_ERR, "ADMIN", "audit: abort: %s",
                       rd_kafka_error_string(kerr));
                rd_kafka_error_destroy(kerr);
        }
        sb_audit_chain_rollback(al->chain);
        return err;
}
