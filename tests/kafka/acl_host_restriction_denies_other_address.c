/*
 * R3.7-xx / DESIGN §8: a grant's allowed_ips become host-restricted ACLs.
 * The same reuser certificate reads its stream from 127.0.0.1 (allowed)
 * and is denied from 127.0.0.2 (the client's socket is bound there).
 */
#include "world.h"

int main(void)
{
        const char *topic = "sb.out.t4-reuser.beneficiaries";
        rd_kafka_resp_err_t err;
        sb_kafka_cfg_t kc;
        sb_world_t w;
        long msgs;

        sb_world_init(&w);
        sb_world_grant(&w, "g.json",
                       "{\"id\": \"g-t4\", \"reuser\": \"t4-reuser\", "
                       "\"dataset\": \"beneficiaries\", \"purposes\": [\"p\"], "
                       "\"legal_basis\": \"x\", \"status\": \"approved\", "
                       "\"allowed_ips\": [\"127.0.0.1\"], "
                       "\"fields\": {\"postcode\": \"keep\"}}");
        sb_world_platform(&w, "\"gateway\": [\"sb-gateway.g1\"], "
                              "\"datasets\": {\"beneficiaries\": "
                              "{\"holders\": [\"t4-holder.g1\"]}}, "
                              "\"reusers\": {\"t4-reuser\": {\"principals\": "
                              "[\"t4-reuser.g1\"]}}");
        sb_world_apply(&w);
        sb_world_produce(&w, topic, 2);
        sb_world_cert(&w, "t4-reuser.g1", NULL, &kc);

        err = sb_world_try_read(&kc, topic, 8000, "127.0.0.1", &msgs);
        SB_CHECK(err == RD_KAFKA_RESP_ERR_NO_ERROR,
                 "reading from the allowed address 127.0.0.1: %s",
                 rd_kafka_err2str(err));
        SB_CHECK(msgs >= 2, "read %ld messages from 127.0.0.1", msgs);

        err = sb_world_try_read(&kc, topic, 15000, "127.0.0.2", &msgs);
        SB_CHECK_STR(
            rd_kafka_err2name(RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED),
            rd_kafka_err2name(err), "reading from 127.0.0.2");
        SB_CHECK_INT(0, msgs, "messages delivered to 127.0.0.2");
        printf("allowed_ips [127.0.0.1]: read from 127.0.0.1, denied from "
               "127.0.0.2 (%s)\n",
               rd_kafka_err2name(err));
        sb_world_release(&w);
        return 0;
}
