#include "kafka.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "crypto.h"

const char *sb_kafka_tls12_suites =
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";

#define F(name, type, req, def, desc)                                          \
        {                                                                      \
#name, type, offsetof(sb_kafka_cfg_t, name), req, def, 0, 0,   \
                    NULL, desc                                                 \
        }

const sb_config_field_t sb_kafka_cfg_table[] = {
    F(bootstrap_servers, SB_CFG_STRING, 1, NULL,
      "Comma-separated host:port list of brokers"),
    F(security_protocol, SB_CFG_STRING, 0, "ssl",
      "ssl (mTLS) or sasl_ssl (SCRAM-SHA-512); plaintext only with "
      "insecure_dev"),
    F(ssl_ca_location, SB_CFG_STRING, 0, NULL,
      "PEM file of the platform CA that signed the brokers' certificates"),
    F(ssl_certificate_location, SB_CFG_STRING, 0, NULL,
      "PEM client certificate (mTLS)"),
    F(ssl_key_location, SB_CFG_STRING, 0, NULL,
      "PEM client private key (mode 0600, owned by the running user)"),
    F(sasl_username, SB_CFG_STRING, 0, NULL, "SCRAM-SHA-512 user name"),
    F(sasl_password_file, SB_CFG_STRING, 0, NULL,
      "File holding the SCRAM password (mode 0600); never the password "
      "itself"),
    F(insecure_dev, SB_CFG_BOOL, 0, "false",
      "Allow plaintext for local development only"),
    F(properties, SB_CFG_PROPERTIES, 0, NULL,
      "Extra librdkafka properties (security.* and ssl.* are refused)"),
    {NULL, 0, 0, 0, NULL, 0, 0, NULL, NULL},
};
#undef F

sb_err_t sb_kafka_conf_set(rd_kafka_conf_t *conf, const char *name,
                           const char *value, char *errstr, size_t errstr_size)
{
        char kerr[256];

        if (rd_kafka_conf_set(conf, name, value, kerr, sizeof(kerr)) !=
            RD_KAFKA_CONF_OK)
                return sb_seterr(errstr, errstr_size, SB_ERR_CONFIG,
                                 "Kafka property '%s': %s", name, kerr);
        return SB_OK;
}

static int sb_kafka_is_security_key(const char *k)
{
        return !strncmp(k, "security.", 9) || !strncmp(k, "ssl", 3) ||
               !strncmp(k, "sasl.", 5) ||
               !strcmp(k, "enable.ssl.certificate."
                          "verification");
}

static rd_kafka_conf_t *sb_kafka_conf_fill(rd_kafka_conf_t *conf,
                                           const sb_kafka_cfg_t *kc,
                                           const char *client_id, char *errstr,
                                           size_t errstr_size)
{
        const char *proto =
            kc->security_protocol ? kc->security_protocol : "ssl";
        const char *k;
        json_t *v;

        if (sb_kafka_conf_set(conf, "bootstrap.servers", kc->bootstrap_servers,
                              errstr, errstr_size) ||
            sb_kafka_conf_set(conf, "client.id", client_id, errstr,
                              errstr_size) ||
            /* Like Kafka's Java client (TCP_NODELAY): with Nagle on, a
             * request sent while another awaits its answer waits for the
             * broker's delayed ACK, ~40 ms, which a rights event pays at
             * every hop (bench/erasure_latency). kafka.properties may
             * still turn it back on. */
            sb_kafka_conf_set(conf, "socket.nagle.disable", "true", errstr,
                              errstr_size))
                goto fail;

        if (!strcasecmp(proto, "plaintext")) {
                if (!kc->insecure_dev) {
                        sb_seterr(errstr, errstr_size, SB_ERR_TLS_POLICY,
                                  "kafka.security_protocol 'plaintext' is "
                                  "refused: use 'ssl' or 'sasl_ssl', or set "
                                  "kafka.insecure_dev (local development "
                                  "only)");
                        goto fail;
                }
                if (sb_kafka_conf_set(conf, "security.protocol", "plaintext",
                                      errstr, errstr_size))
                        goto fail;
        } else if (!strcasecmp(proto, "ssl") ||
                   !strcasecmp(proto, "sasl_ssl")) {
                if (sb_kafka_conf_set(conf, "security.protocol", proto, errstr,
                                      errstr_size) ||
                    sb_kafka_conf_set(conf, "ssl.cipher.suites",
                                      sb_kafka_tls12_suites, errstr,
                                      errstr_size) ||
                    sb_kafka_conf_set(conf,
                                      "enable.ssl.certificate.verification",
                                      "true", errstr, errstr_size) ||
                    sb_kafka_conf_set(conf,
                                      "ssl.endpoint.identification.algorithm",
                                      "https", errstr, errstr_size))
                        goto fail;
                if (kc->ssl_ca_location &&
                    sb_kafka_conf_set(conf, "ssl.ca.location",
                                      kc->ssl_ca_location, errstr, errstr_size))
                        goto fail;
                if (kc->ssl_certificate_location &&
                    sb_kafka_conf_set(conf, "ssl.certificate.location",
                                      kc->ssl_certificate_location, errstr,
                                      errstr_size))
                        goto fail;
                if (kc->ssl_key_location) {
                        if (sb_key_file_check(kc->ssl_key_location, errstr,
                                              errstr_size) ||
                            sb_kafka_conf_set(conf, "ssl.key.location",
                                              kc->ssl_key_location, errstr,
                                              errstr_size))
                                goto fail;
                }
                if (!strcasecmp(proto, "sasl_ssl")) {
                        char *pw = NULL;

                        if (!kc->sasl_username || !kc->sasl_password_file) {
                                sb_seterr(errstr, errstr_size, SB_ERR_CONFIG,
                                          "kafka.security_protocol "
                                          "'sasl_ssl' needs "
                                          "kafka.sasl_username and "
                                          "kafka.sasl_password_file");
                                goto fail;
                        }
                        if (sb_secret_file_read(kc->sasl_password_file, &pw,
                                                errstr, errstr_size))
                                goto fail;
                        if (sb_kafka_conf_set(conf, "sasl.mechanism",
                                              "SCRAM-SHA-512", errstr,
                                              errstr_size) ||
                            sb_kafka_conf_set(conf, "sasl.username",
                                              kc->sasl_username, errstr,
                                              errstr_size) ||
                            sb_kafka_conf_set(conf, "sasl.password", pw, errstr,
                                              errstr_size)) {
                                sb_secret_free(pw);
                                goto fail;
                        }
                        sb_secret_free(pw);
                }
        } else {
                sb_seterr(errstr, errstr_size, SB_ERR_TLS_POLICY,
                          "kafka.security_protocol '%s' is not supported: "
                          "use 'ssl' or 'sasl_ssl'",
                          proto);
                goto fail;
        }

        if (kc->properties) {
                json_object_foreach(kc->properties, k, v)
                {
                        if (sb_kafka_is_security_key(k)) {
                                sb_seterr(errstr, errstr_size,
                                          SB_ERR_TLS_POLICY,
                                          "kafka.properties.%s: security "
                                          "settings are set by sharebus's "
                                          "policy, not by properties",
                                          k);
                                goto fail;
                        }
                        if (sb_kafka_conf_set(conf, k, json_string_value(v),
                                              errstr, errstr_size))
                                goto fail;
                }
        }
        return conf;

fail:
        rd_kafka_conf_destroy(conf);
        return NULL;
}

rd_kafka_conf_t *sb_kafka_conf_new(const sb_kafka_cfg_t *kc,
                                   const char *client_id, char *errstr,
                                   size_t errstr_size)
{
        return sb_kafka_conf_fill(rd_kafka_conf_new(), kc, client_id, errstr,
                                  errstr_size);
}

rd_kafka_conf_t *sb_kafka_producer_conf_new(const sb_kafka_cfg_t *kc,
                                            const char *client_id, char *errstr,
                                            size_t errstr_size)
{
        rd_kafka_conf_t *conf = rd_kafka_conf_new();

        /* First: a default topic conf replaces the topic properties set
         * before it (acks, message.timeout.ms...). */
        sb_kafka_conf_set_subject_partitioner(conf);
        return sb_kafka_conf_fill(conf, kc, client_id, errstr, errstr_size);
}

/* Kafka's murmur2 (as the Java client's default partitioner). */
static uint32_t sb_murmur2(const void *key, size_t len)
{
        const uint32_t seed = 0x9747b28c, m = 0x5bd1e995;
        const int r = 24;
        uint32_t h = seed ^ (uint32_t)len;
        const unsigned char *data = key;

        while (len >= 4) {
                uint32_t k = (uint32_t)data[0] | (uint32_t)data[1] << 8 |
                             (uint32_t)data[2] << 16 | (uint32_t)data[3] << 24;

                k *= m;
                k ^= k >> r;
                k *= m;
                h *= m;
                h ^= k;
                data += 4;
                len -= 4;
        }
        switch (len) {
        case 3:
                h ^= (uint32_t)data[2] << 16;
                /* fall through */
        case 2:
                h ^= (uint32_t)data[1] << 8;
                /* fall through */
        case 1:
                h ^= data[0];
                h *= m;
        }
        h ^= h >> 13;
        h *= m;
        h ^= h >> 15;
        return h;
}

int32_t sb_kafka_partition_for(const void *key, size_t keylen,
                               int32_t partition_cnt)
{
        const char *slash = key ? memchr(key, '/', keylen) : NULL;

        if (slash)
                keylen = (size_t)(slash - (const char *)key);
        if (partition_cnt <= 0)
                return 0;
        return (int32_t)((sb_murmur2(key, keylen) & 0x7fffffff) %
                         (uint32_t)partition_cnt);
}

static int32_t sb_kafka_partitioner(const rd_kafka_topic_t *rkt,
                                    const void *key, size_t keylen,
                                    int32_t partition_cnt, void *rkt_opaque,
                                    void *msg_opaque)
{
        (void)rkt;
        (void)rkt_opaque;
        (void)msg_opaque;
        return sb_kafka_partition_for(key, keylen, partition_cnt);
}

void sb_kafka_conf_set_subject_partitioner(rd_kafka_conf_t *conf)
{
        rd_kafka_topic_conf_t *tconf = rd_kafka_topic_conf_new();

        rd_kafka_topic_conf_set_partitioner_cb(tconf, sb_kafka_partitioner);
        rd_kafka_conf_set_default_topic_conf(conf, tconf);
}

int sb_kafka_flush(rd_kafka_t *rk, int timeout_ms)
{
        rd_kafka_flush(rk, timeout_ms);
        return rd_kafka_outq_len(rk);
}

void sb_kafka_dr_to_slot(rd_kafka_t *rk, const rd_kafka_message_t *m,
                         void *opaque)
{
        (void)rk;
        (void)opaque;
        if (m->_private)
                *(rd_kafka_resp_err_t *)m->_private = m->err;
}
