/*
 * R3.5-08, R3.7-02 on the real broker: reuser A reads its own stream, but
 * reading reuser B's stream or the holder's input topic fails with an
 * authorization error, and nothing is delivered.
 */
#include "world.h"

int main(void)
{
        sb_kafka_cfg_t a_kc;
        rd_kafka_resp_err_t err;
        sb_world_t w;
        long msgs;

        sb_world_init(&w);
        sb_world_grant(&w, "a.json",
                       "{\"id\": \"g-t2a\", \"reuser\": \"t2-a\", "
                       "\"dataset\": \"beneficiaries\", \"purposes\": [\"p\"], "
                       "\"legal_basis\": \"x\", \"status\": \"approved\", "
                       "\"fields\": {\"postcode\": \"keep\"}}");
        sb_world_grant(&w, "b.json",
                       "{\"id\": \"g-t2b\", \"reuser\": \"t2-b\", "
                       "\"dataset\": \"beneficiaries\", \"purposes\": [\"p\"], "
                       "\"legal_basis\": \"x\", \"status\": \"approved\", "
                       "\"fields\": {\"first_name\": \"keep\"}}");
        sb_world_platform(&w, "\"gateway\": [\"sb-gateway.g1\"], "
                              "\"datasets\": {\"beneficiaries\": "
                              "{\"holders\": [\"t2-holder.g1\"]}}, "
                              "\"reusers\": {\"t2-a\": {\"principals\": "
                              "[\"t2-a.g1\"]}, \"t2-b\": {\"principals\": "
                              "[\"t2-b.g1\"]}}");
        sb_world_apply(&w);
        sb_world_produce(&w, "sb.out.t2-a.beneficiaries", 4);
        sb_world_produce(&w, "sb.out.t2-b.beneficiaries", 4);
        sb_world_cert(&w, "t2-a.g1", NULL, &a_kc);

        /* Control: A reads its own stream (so a denial below is real). */
        err = sb_world_try_read(&a_kc, "sb.out.t2-a.beneficiaries", 8000, NULL,
                                &msgs);
        SB_CHECK(err == RD_KAFKA_RESP_ERR_NO_ERROR,
                 "reuser A reading its own stream: %s", rd_kafka_err2str(err));
        SB_CHECK(msgs >= 4, "reuser A read %ld of its 4+ messages", msgs);

        err = sb_world_try_read(&a_kc, "sb.out.t2-b.beneficiaries", 15000, NULL,
                                &msgs);
        SB_CHECK_STR(
            rd_kafka_err2name(RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED),
            rd_kafka_err2name(err), "reuser A reading B's stream");
        SB_CHECK_INT(0, msgs, "messages of B's stream delivered to A");

        err =
            sb_world_try_read(&a_kc, "sb.in.beneficiaries", 15000, NULL, &msgs);
        SB_CHECK_STR(
            rd_kafka_err2name(RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED),
            rd_kafka_err2name(err), "reuser A reading the input");
        SB_CHECK_INT(0, msgs, "input messages delivered to A");
        printf("reuser A: own stream readable; B's stream and the input "
               "denied (%s)\n",
               rd_kafka_err2name(err));
        sb_world_release(&w);
        return 0;
}
