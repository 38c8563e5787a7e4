/*
 * Authorization on the real broker (DESIGN.md section 8): the principal is
 * the certificate's CN, so the administrator's certificate (CN=sb-admin.g1,
 * a super user) may create a topic; a SCRAM user without ACLs may neither
 * create a topic, nor see one, nor write to it; and asking for a topic that
 * does not exist never creates it (auto.create.topics.enable=false).
 */
#include <jansson.h>
#include <time.h>
#include <unistd.h>

#include "brokerenv.h"
#include "testutil.h"

#define TIMEOUT_MS 10000

/* Creates `topic` (1 partition) as the client `rk`; returns the broker's
 * answer for that topic. */
static rd_kafka_resp_err_t create_topic(rd_kafka_t *rk, const char *topic,
                                        char *errstr, size_t errstr_size)
{
        rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
        const rd_kafka_CreateTopics_result_t *res;
        const rd_kafka_topic_result_t **tres;
        rd_kafka_AdminOptions_t *opts;
        rd_kafka_NewTopic_t *nt;
        rd_kafka_resp_err_t err;
        rd_kafka_event_t *ev;
        size_t cnt;

        nt = rd_kafka_NewTopic_new(topic, 1, 1, errstr, errstr_size);
        SB_CHECK(nt, "NewTopic '%s': %s", topic, errstr);
        opts = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
        rd_kafka_AdminOptions_set_request_timeout(opts, TIMEOUT_MS, errstr,
                                                  errstr_size);
        rd_kafka_CreateTopics(rk, &nt, 1, opts, q);
        ev = rd_kafka_queue_poll(q, TIMEOUT_MS + 5000);
        SB_CHECK(ev, "CreateTopics '%s': no answer", topic);
        if ((err = rd_kafka_event_error(ev))) {
                snprintf(errstr, errstr_size, "%s",
                         rd_kafka_event_error_string(ev));
        } else {
                res = rd_kafka_event_CreateTopics_result(ev);
                tres = rd_kafka_CreateTopics_result_topics(res, &cnt);
                SB_CHECK_INT(1, cnt, "topics in the CreateTopics result");
                err = rd_kafka_topic_result_error(tres[0]);
                snprintf(errstr, errstr_size, "%s",
                         rd_kafka_topic_result_error_string(tres[0])
                             ? rd_kafka_topic_result_error_string(tres[0])
                             : "");
        }
        rd_kafka_event_destroy(ev);
        rd_kafka_NewTopic_destroy(nt);
        rd_kafka_AdminOptions_destroy(opts);
        rd_kafka_queue_destroy(q);
        return err;
}

/* The broker's answer about `topic` in a metadata request for it alone. */
static rd_kafka_resp_err_t topic_metadata(rd_kafka_t *rk, const char *topic)
{
        const struct rd_kafka_metadata *md;
        rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
        rd_kafka_resp_err_t err;

        err = rd_kafka_metadata(rk, 0, rkt, &md, TIMEOUT_MS);
        SB_CHECK(!err, "metadata for '%s': %s", topic, rd_kafka_err2str(err));
        SB_CHECK_INT(1, md->topic_cnt, "topics in the metadata");
        err = md->topics[0].err;
        rd_kafka_metadata_destroy(md);
        rd_kafka_topic_destroy(rkt);
        return err;
}

int main(void)
{
        rd_kafka_resp_err_t err, dr_err = RD_KAFKA_RESP_ERR__IN_PROGRESS;
        char errstr[512], topic[64], other[96], absent[96];
        sb_kafka_cfg_t kc;
        sb_brokerenv_t be;
        rd_kafka_t *admin, *alice;
        int i;

        setvbuf(stdout, NULL, _IOLBF, 0);
        SB_OK_OR_FAIL(sb_brokerenv_load(&be, errstr, sizeof(errstr)), errstr);
        /* Names of this run only: the broker may have served other tests. */
        snprintf(topic, sizeof(topic), "sb.test.authz.%ld.%d", (long)time(NULL),
                 (int)getpid());
        snprintf(other, sizeof(other), "%s.by-alice", topic);
        snprintf(absent, sizeof(absent), "%s.absent", topic);

        sb_brokerenv_mtls_cfg(&be, &kc);
        /* The producer side of librdkafka asks for auto-creation: only the
         * broker's setting can refuse it. */
        kc.properties = json_pack("{s:s}", "allow.auto.create.topics", "true");
        admin = sb_brokerenv_client(&kc, "sharebus-kafka-test-admin");
        json_decref(kc.properties);

        sb_brokerenv_scram_cfg(&be, &kc);
        alice = sb_brokerenv_client(&kc, "sharebus-kafka-test-alice");

        err = create_topic(admin, topic, errstr, sizeof(errstr));
        SB_CHECK(!err,
                 "the administrator (CN=%s, super user) creates '%s': got "
                 "%s: %s",
                 sb_brokerenv_need(&be, "SB_BROKER_ADMIN_PRINCIPAL"), topic,
                 rd_kafka_err2name(err), errstr);
        printf("administrator by certificate CN: created %s\n", topic);

        err = create_topic(alice, other, errstr, sizeof(errstr));
        SB_CHECK_STR(
            rd_kafka_err2name(RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED),
            rd_kafka_err2name(err), "SCRAM user without ACL creates a topic");
        printf("SCRAM user without ACL: create denied (%s)\n", errstr);

        SB_CHECK_STR(
            rd_kafka_err2name(RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED),
            rd_kafka_err2name(topic_metadata(alice, topic)),
            "SCRAM user without ACL describes the topic");
        printf("SCRAM user without ACL: describe denied\n");

        /* librdkafka refuses at once when it already knows the topic is
         * denied (from the metadata above), else in the delivery report. */
        err = rd_kafka_producev(alice, RD_KAFKA_V_TOPIC(topic),
                                RD_KAFKA_V_VALUE("x", 1),
                                RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                RD_KAFKA_V_OPAQUE(&dr_err), RD_KAFKA_V_END);
        if (!err) {
                for (i = 0; i < TIMEOUT_MS / 100 &&
                            dr_err == RD_KAFKA_RESP_ERR__IN_PROGRESS;
                     i++)
                        rd_kafka_poll(alice, 100);
                err = dr_err;
        }
        SB_CHECK_STR(
            rd_kafka_err2name(RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED),
            rd_kafka_err2name(err), "SCRAM user without ACL writes");
        printf("SCRAM user without ACL: write denied\n");

        /* Twice, a second apart: a broker that auto-creates would answer
         * LEADER_NOT_AVAILABLE, then show the topic. */
        for (i = 0; i < 2; i++) {
                SB_CHECK_STR(
                    rd_kafka_err2name(RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART),
                    rd_kafka_err2name(topic_metadata(admin, absent)),
                    "metadata for a topic nobody created");
                sleep(1);
        }
        printf("asking for an absent topic did not create it\n");

        rd_kafka_destroy(alice);
        rd_kafka_destroy(admin);
        sb_brokerenv_release(&be);
        return 0;
}
