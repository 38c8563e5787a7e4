/*
 * sharebus real-broker tests - what tests/kafka/broker.sh started: reads
 * its env file ($SB_BROKER_DIR/env, default /tmp/sharebus-broker/env) and
 * connects to the broker the way sharebus's programs do, through
 * sb_kafka_conf_new() and its TLS policy.
 */
#ifndef SB_BROKERENV_H
#define SB_BROKERENV_H

#include <librdkafka/rdkafka.h>

#include "err.h"
#include "kafka.h"

typedef struct sb_brokerenv_var_s {
        char *key;
        char *value;
} sb_brokerenv_var_t;

typedef struct sb_brokerenv_s {
        char path[512]; /* the env file read */
        sb_brokerenv_var_t *vars;
        size_t cnt;
} sb_brokerenv_t;

/*
 * Reads the env file: `KEY='value'` lines, '#' comments. Fails naming the
 * file and line, or telling to start the broker when there is no file.
 * Release with sb_brokerenv_release().
 */
sb_err_t sb_brokerenv_load(sb_brokerenv_t *be, char *errstr,
                           size_t errstr_size);
void sb_brokerenv_release(sb_brokerenv_t *be);

/* The value of `key`, or NULL. Owned by `be`. */
const char *sb_brokerenv_get(const sb_brokerenv_t *be, const char *key);

/* The value of `key`; a missing key fails the test (exit 1). */
const char *sb_brokerenv_need(const sb_brokerenv_t *be, const char *key);

/*
 * Client settings for the SSL listener with the platform administrator's
 * certificate (a super user), and for the SASL_SSL listener with the SCRAM
 * user. The strings stay owned by `be`.
 */
void sb_brokerenv_mtls_cfg(const sb_brokerenv_t *be, sb_kafka_cfg_t *kc);
void sb_brokerenv_scram_cfg(const sb_brokerenv_t *be, sb_kafka_cfg_t *kc);

/* What one connection attempt showed. */
typedef struct sb_probe_s {
        rd_kafka_resp_err_t md_err; /* of the metadata request */
        int broker_cnt;             /* brokers in the metadata, on success */
        rd_kafka_resp_err_t cb_err; /* first error callback, if any */
        char cb_reason[512];
} sb_probe_t;

/*
 * Builds a client with sb_kafka_conf_new(kc) and asks for the cluster's
 * metadata for up to `timeout_ms`, stopping early at the first error the
 * client reports (kept in `p`, it says why). Fails the test if the
 * configuration itself is refused.
 */
void sb_probe(const sb_kafka_cfg_t *kc, int timeout_ms, sb_probe_t *p);

/*
 * A client (producer) for `kc`, logging nothing: tests print what matters.
 * A message produced with RD_KAFKA_V_OPAQUE(&err), err an
 * rd_kafka_resp_err_t, gets its delivery result in err (served by
 * rd_kafka_poll()). Fails the test on error.
 */
rd_kafka_t *sb_brokerenv_client(const sb_kafka_cfg_t *kc,
                                const char *client_id);

#endif
