/*
 * R3.7-12, R5.4-05: after a grant is revoked and `acls apply` runs, the
 * reuser's next fetch is denied. Prints how long it took from the start of
 * the apply to the first denied fetch.
 */
#include "world.h"

static const char *grant_fmt =
    "{\"id\": \"g-t3\", \"reuser\": \"t3-reuser\", \"dataset\": "
    "\"beneficiaries\", \"purposes\": [\"p\"], \"legal_basis\": \"x\", "
    "\"status\": \"%s\", \"fields\": {\"postcode\": \"keep\"}}";
static const char *platform =
    "\"gateway\": [\"sb-gateway.g1\"], \"datasets\": {\"beneficiaries\": "
    "{\"holders\": [\"t3-holder.g1\"]}}, \"reusers\": {\"t3-reuser\": "
    "{\"principals\": [\"t3-reuser.g1\"]}}";

int main(void)
{
        rd_kafka_topic_partition_list_t *parts;
        rd_kafka_resp_err_t denied = RD_KAFKA_RESP_ERR_NO_ERROR;
        const char *topic = "sb.out.t3-reuser.beneficiaries";
        sb_kafka_cfg_t kc;
        rd_kafka_conf_t *conf;
        rd_kafka_t *rk;
        sb_world_t w;
        char grant[512], errstr[512];
        long t0, apply_ms, deadline, msgs = 0, denied_at = 0;
        int p;

        sb_world_init(&w);
        snprintf(grant, sizeof(grant), grant_fmt, "approved");
        sb_world_grant(&w, "g.json", grant);
        sb_world_platform(&w, platform);
        sb_world_apply(&w);
        sb_world_produce(&w, topic, 3);
        sb_world_cert(&w, "t3-reuser.g1", NULL, &kc);

        /* A consumer reading its stream, as the reuser agent does. */
        conf = sb_kafka_conf_new(&kc, "t3-reuser", errstr, sizeof(errstr));
        SB_CHECK(conf, "conf: %s", errstr);
        rd_kafka_conf_set(conf, "group.id", "sb-reuser-t3-reuser", NULL, 0);
        /* It commits nothing: a commit on close, after the group's ACL is
         * gone, would only wait on a coordinator it may no longer use. */
        rd_kafka_conf_set(conf, "enable.auto.commit", "false", NULL, 0);
        rd_kafka_conf_set(conf, "log_level", "0", NULL, 0);
        /* Short fetch waits: a fetch authorised before the apply ends
         * quickly, so the wait below covers it. */
        rd_kafka_conf_set(conf, "fetch.wait.max.ms", "10", NULL, 0);
        rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
        SB_CHECK(rk, "consumer: %s", errstr);
        parts = rd_kafka_topic_partition_list_new(3);
        for (p = 0; p < 3; p++)
                rd_kafka_topic_partition_list_add(parts, topic, p)->offset =
                    RD_KAFKA_OFFSET_BEGINNING;
        rd_kafka_assign(rk, parts);
        rd_kafka_topic_partition_list_destroy(parts);
        deadline = sb_world_now_ms() + 20000;
        while (msgs < 3 && sb_world_now_ms() < deadline) {
                rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);

                if (m && !m->err)
                        msgs++;
                else if (m && m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                        SB_TEST_FAIL("fetch before revocation: %s",
                                     rd_kafka_message_errstr(m));
                if (m)
                        rd_kafka_message_destroy(m);
        }
        SB_CHECK_INT(3, msgs, "messages read while the grant is approved");
        fprintf(stderr, "t3: read 3 messages under the approved grant\n");

        /* Revoke, apply, and keep fetching. */
        snprintf(grant, sizeof(grant), grant_fmt, "revoked");
        sb_world_grant(&w, "g.json", grant);
        sb_world_platform(&w, platform);
        t0 = sb_world_now_ms();
        apply_ms = sb_world_apply(&w);
        fprintf(stderr, "t3: revocation applied in %ld ms\n", apply_ms);
        /* Fetches issued before the ACLs went were authorised then; give
         * them time to end (10 ms each) while the consumer keeps polling. */
        deadline = sb_world_now_ms() + 1000;
        while (sb_world_now_ms() < deadline) {
                rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 50);

                if (m && !denied && m->err &&
                    m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                        denied = m->err;
                        denied_at = sb_world_now_ms();
                }
                if (m)
                        rd_kafka_message_destroy(m);
        }
        sb_world_produce(&w, topic, 1);
        deadline = sb_world_now_ms() + 30000;
        while (!denied && sb_world_now_ms() < deadline) {
                rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 50);

                if (!m)
                        continue;
                if (!m->err)
                        SB_TEST_FAIL("a message was delivered after the "
                                     "grant was revoked and applied");
                if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                        denied = m->err;
                        denied_at = sb_world_now_ms();
                }
                rd_kafka_message_destroy(m);
        }
        SB_CHECK_STR(
            rd_kafka_err2name(RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED),
            rd_kafka_err2name(denied), "next fetch after revocation");
        printf("revocation: ACLs applied in %ld ms; the consumer's fetches "
               "denied by %ld ms after the apply started\n",
               apply_ms, denied_at - t0);
        fprintf(stderr, "t3: closing the consumer\n");
        rd_kafka_consumer_close(rk);
        rd_kafka_destroy(rk);
        sb_world_release(&w);
        return 0;
}
