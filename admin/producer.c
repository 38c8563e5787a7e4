#include "producer.h"

#include <stdio.h>

#include "kafka.h"

rd_kafka_t *sb_admin_producer_new(const sb_admin_cfg_t *cfg, const char *what,
                                  char *errstr, size_t errstr_size)
{
        rd_kafka_conf_t *conf;
        rd_kafka_t *rk;
        char kerr[512], timeout[32];

        conf = sb_kafka_producer_conf_new(&cfg->kafka, cfg->client_id, errstr,
                                          errstr_size);
        if (!conf)
                return NULL;
        snprintf(timeout, sizeof(timeout), "%lld", cfg->timeout_ms);
        if (sb_kafka_conf_set(conf, "enable.idempotence", "true", errstr,
                              errstr_size) ||
            sb_kafka_conf_set(conf, "acks", "all", errstr, errstr_size) ||
            sb_kafka_conf_set(conf, "message.timeout.ms", timeout, errstr,
                              errstr_size)) {
                rd_kafka_conf_destroy(conf);
                return NULL;
        }
        rd_kafka_conf_set_dr_msg_cb(conf, sb_kafka_dr_to_slot);
        rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, kerr, sizeof(kerr));
        if (!rk) {
                rd_kafka_conf_destroy(conf);
                sb_seterr(errstr, errstr_size, SB_ERR_KAFKA,
                          "cannot create the %s producer: %s", what, kerr);
                return NULL;
        }
        return rk;
}

size_t sb_admin_producer_wait(rd_kafka_t *rk, int timeout_ms,
                              const rd_kafka_resp_err_t *status, size_t cnt,
                              const char **first_errp)
{
        size_t i, failed = 0;

        if (first_errp)
                *first_errp = NULL;
        sb_kafka_flush(rk, timeout_ms);
        for (i = 0; i < cnt; i++) {
                if (status[i] == RD_KAFKA_RESP_ERR_NO_ERROR)
                        continue;
                if (!failed++ && first_errp)
                        *first_errp = status[i] == SB_ADMIN_DR_WAITING
                                          ? "no delivery report within "
                                            "timeout_ms"
                                          : rd_kafka_err2str(status[i]);
        }
        return failed;
}
