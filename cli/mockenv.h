/*
 * sharebus - an in-process librdkafka mock cluster with sharebus's topics,
 * for the demo, the mock-cluster tests and the benchmarks. The 2.0.2 mock
 * answers no Admin API request, so topics are created through the mock API.
 */
#ifndef SB_MOCKENV_H
#define SB_MOCKENV_H

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "err.h"
#include "kafka.h"

typedef struct sb_mockenv_s {
        rd_kafka_t *rk; /* the handle that owns the cluster */
        rd_kafka_mock_cluster_t *mcluster;
        const char *bootstraps;
} sb_mockenv_t;

sb_mockenv_t *sb_mockenv_new(int brokers, char *errstr, size_t errstr_size);
sb_err_t sb_mockenv_topic(sb_mockenv_t *env, const char *topic, int partitions,
                          char *errstr, size_t errstr_size);
/*
 * The topics a gateway serving `dataset` needs: sb.in.<dataset> and its
 * state changelog _sb.state.<dataset> (same partition count), and the
 * shared _sb.audit, _sb.quarantine and _sb.alerts.
 */
sb_err_t sb_mockenv_dataset(sb_mockenv_t *env, const char *dataset,
                            int partitions, char *errstr, size_t errstr_size);
/*
 * Creates sb.ack.<reuser>, the reuser's receipt topic (one partition, as
 * `admin topics` plans it); one that exists already is kept.
 */
sb_err_t sb_mockenv_ack_topic(sb_mockenv_t *env, const char *reuser,
                              char *errstr, size_t errstr_size);
void sb_mockenv_destroy(sb_mockenv_t *env);

/* A kafka config section for the mock: plaintext, insecure_dev. */
json_t *sb_mockenv_kafka_json(const sb_mockenv_t *env);

#endif
