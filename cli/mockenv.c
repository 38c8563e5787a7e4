#include "mockenv.h"

#include <stdio.h>
#include <stdio.h>
#include <stdlib.h>

sb_mockenv_t *sb_mockenv_new(int brokers, char *errstr, size_t errstr_size)
{
        rd_kafka_conf_t *conf = rd_kafka_conf_new();
        sb_mockenv_t *env = calloc(1, sizeof(*env));
        char kerr[512];

        if (!env) {
                rd_kafka_conf_destroy(conf);
                sb_seterr(errstr, errstr_size, SB_ERR_NOMEM, "out of memory");
                return NULL;
        }
        rd_kafka_conf_set(conf, "log_level", "3", NULL, 0);
        env->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, kerr, sizeof(kerr));
        if (!env->rk) {
                rd_kafka_conf_destroy(conf);
                free(env);
                sb_seterr(errstr, errstr_size, SB_ERR_KAFKA, "mock cluster: %s",
                          kerr);
                return NULL;
        }
        env->mcluster = rd_kafka_mock_cluster_new(env->rk, brokers);
        if (!env->mcluster) {
                sb_mockenv_destroy(env);
                sb_seterr(errstr, errstr_size, SB_ERR_KAFKA,
                          "mock cluster: cannot start %d broker(s)", brokers);
                return NULL;
        }
        env->bootstraps = rd_kafka_mock_cluster_bootstraps(env->mcluster);
        return env;
}

sb_err_t sb_mockenv_topic(sb_mockenv_t *env, const char *topic, int partitions,
                          char *errstr, size_t errstr_size)
{
        rd_kafka_resp_err_t err;

        err = rd_kafka_mock_topic_create(env->mcluster, topic, partitions, 1);
        if (err == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS)
                return SB_OK; /* one topic shared by several datasets */
        if (err)
                return sb_seterr(errstr, errstr_size, SB_ERR_KAFKA,
                                 "mock cluster: topic '%s': %s", topic,
                                 rd_kafka_err2str(err));
        return SB_OK;
}

sb_err_t sb_mockenv_dataset(sb_mockenv_t *env, const char *dataset,
                            int partitions, char *errstr, size_t errstr_size)
{
        char in[300], state[300];

        snprintf(in, sizeof(in), "sb.in.%s", dataset);
        snprintf(state, sizeof(state), "_sb.state.%s", dataset);
        if (sb_mockenv_topic(env, in, partitions, errstr, errstr_size) ||
            sb_mockenv_topic(env, state, partitions, errstr, errstr_size) ||
            sb_mockenv_topic(env, "_sb.audit", 1, errstr, errstr_size) ||
            sb_mockenv_topic(env, "_sb.quarantine", 1, errstr, errstr_size) ||
            sb_mockenv_topic(env, "_sb.alerts", 1, errstr, errstr_size))
                return SB_ERR_KAFKA;
        return SB_OK;
}

sb_err_t sb_mockenv_ack_topic(sb_mockenv_t *env, const char *reuser,
                              char *errstr, size_t errstr_size)
{
        rd_kafka_resp_err_t err;
        char topic[256];

        snprintf(topic, sizeof(topic), "sb.ack.%s", reuser);
        err = rd_kafka_mock_topic_create(env->mcluster, topic, 1, 1);
        if (err && err != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS)
                return sb_seterr(errstr, errstr_size, SB_ERR_KAFKA,
                                 "mock cluster: topic '%s': %s", topic,
                                 rd_kafka_err2str(err));
        return SB_OK;
}

void sb_mockenv_destroy(sb_mockenv_t *env)
{
        if (!env)
                return;
        if (env->mcluster)
                rd_kafka_mock_cluster_destroy(env->mcluster);
        rd_kafka_destroy(env->rk);
        free(env);
}

json_t *sb_mockenv_kafka_json(const sb_mockenv_t *env)
{
        return json_pack("{s:s, s:s, s:b}", "bootstrap_servers",
                         env->bootstraps, "security_protocol", "plaintext",
                         "insecure_dev", 1);
}
