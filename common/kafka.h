/*
 * sharebus - Kafka client configuration shared by every program, with the
 * transport security policy (DESIGN.md §8).
 *
 * Policy: security.protocol must be "ssl" or "sasl_ssl", with the
 * ANSSI-recommended TLS 1.2 suites (ECDHE + AES-GCM / ChaCha20-Poly1305,
 * TLS 1.3 suites are always allowed). "plaintext" is refused unless the
 * configuration says `insecure_dev: true` (the mock cluster counts as dev).
 */
#ifndef SB_KAFKA_H
#define SB_KAFKA_H

#include <librdkafka/rdkafka.h>
#include <stdint.h>

#include "config.h"
#include "err.h"

typedef struct sb_kafka_cfg_s {
        char *bootstrap_servers;
        char *security_protocol;
        char *ssl_ca_location;
        char *ssl_certificate_location;
        char *ssl_key_location;
        char *sasl_username;
        char *sasl_password_file;
        int insecure_dev;
        json_t *properties; /* extra librdkafka properties */
} sb_kafka_cfg_t;

/* The "kafka" section every program's config file embeds. */
extern const sb_config_field_t sb_kafka_cfg_table[];

/* ANSSI-recommended TLS 1.2 cipher suites, OpenSSL names. */
extern const char *sb_kafka_tls12_suites;

/*
 * Builds a librdkafka configuration from `kc` plus client.id, applying the
 * security policy. Returns NULL and fills errstr on error. The caller owns
 * the result (rd_kafka_new() takes it on success).
 */
rd_kafka_conf_t *sb_kafka_conf_new(const sb_kafka_cfg_t *kc,
                                   const char *client_id, char *errstr,
                                   size_t errstr_size);
/* Same for producers, with the subject partitioner below installed. */
rd_kafka_conf_t *sb_kafka_producer_conf_new(const sb_kafka_cfg_t *kc,
                                            const char *client_id, char *errstr,
                                            size_t errstr_size);

/*
 * Delivery report callback: when a message was produced with an opaque
 * (RD_KAFKA_V_OPAQUE) pointing to an rd_kafka_resp_err_t, stores the
 * message's delivery result there; messages without one are ignored.
 */
void sb_kafka_dr_to_slot(rd_kafka_t *rk, const rd_kafka_message_t *m,
                         void *opaque);

/* rd_kafka_conf_set() that turns failures into sb errors naming the key. */
sb_err_t sb_kafka_conf_set(rd_kafka_conf_t *conf, const char *name,
                           const char *value, char *errstr, size_t errstr_size);

/*
 * Partitioner: hashes the part of the key before the first '/' (the
 * subject id or the reuser pseudonym), so that everything about one subject
 * lands in one partition, whatever record id follows. murmur2 like the Java
 * client's default, so other clients can compute the same partition.
 */
int32_t sb_kafka_partition_for(const void *key, size_t keylen,
                               int32_t partition_cnt);
void sb_kafka_conf_set_subject_partitioner(rd_kafka_conf_t *conf);

/* Waits for `rk`'s outstanding messages; returns remaining count. */
int sb_kafka_flush(rd_kafka_t *rk, int timeout_ms);

#endif
