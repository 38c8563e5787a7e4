/*
 * R3.7-02, DESIGN §8 least privilege, on the real broker: with the ACLs
 * `sharebus admin acls apply` derives, a holder publishes to its input
 * topic (one transaction, over mTLS) but cannot read any reuser's stream,
 * nor its own input topic back.
 */
#include "sample.h"
#include "world.h"

int main(void)
{
        sb_kafka_cfg_t holder_kc;
        sb_holder_cfg_t cfg;
        json_t *cfg_json;
        sb_holder_stats_t hs;
        sb_world_t w;
        sb_holder_t *h;
        char errstr[1024], *text = NULL, sk[600], pk[600];
        rd_kafka_resp_err_t err;
        size_t len = 0;
        long msgs;
        FILE *mem, *in;

        sb_world_init(&w);
        sb_world_grant(&w, "a.json",
                       "{\"id\": \"g-t1\", \"reuser\": \"t1-reuser\", "
                       "\"dataset\": \"beneficiaries\", \"purposes\": [\"p\"], "
                       "\"legal_basis\": \"x\", \"status\": \"approved\", "
                       "\"fields\": {\"postcode\": \"keep\"}}");
        sb_world_platform(&w, "\"gateway\": [\"sb-gateway.g1\"], "
                              "\"datasets\": {\"beneficiaries\": "
                              "{\"holders\": [\"t1-holder.g1\"]}}, "
                              "\"reusers\": {\"t1-reuser\": {\"principals\": "
                              "[\"t1-reuser.g1\"]}}");
        sb_world_apply(&w);
        sb_world_produce(&w, "sb.out.t1-reuser.beneficiaries", 3);
        sb_world_cert(&w, "t1-holder.g1", NULL, &holder_kc);

        /* It can publish. */
        memset(&cfg, 0, sizeof(cfg));
        snprintf(sk, sizeof(sk), "%s/holder.key", w.dir);
        snprintf(pk, sizeof(pk), "%s/holder.pub", w.dir);
        sb_test_keypair(sk, pk);
        cfg_json =
            json_pack("{s:{s:s, s:s, s:s, s:s, s:s}, s:s, s:s}", "kafka",
                      "bootstrap_servers", holder_kc.bootstrap_servers,
                      "security_protocol", "ssl", "ssl_ca_location",
                      holder_kc.ssl_ca_location, "ssl_certificate_location",
                      holder_kc.ssl_certificate_location, "ssl_key_location",
                      holder_kc.ssl_key_location, "schemas_dir", SB_SCHEMAS_DIR,
                      "signing_key_file", sk);
        SB_OK_OR_FAIL(sb_config_apply(cfg_json, "test", sb_holder_cfg_table,
                                      &cfg, errstr, sizeof(errstr)),
                      errstr);
        json_decref(cfg_json);
        h = sb_holder_new(&cfg, "beneficiaries", errstr, sizeof(errstr));
        SB_CHECK(h, "holder over mTLS: %s", errstr);
        mem = open_memstream(&text, &len);
        sb_sample_write(mem, 5, 1);
        fclose(mem);
        in = fmemopen(text, len, "r");
        SB_OK_OR_FAIL(sb_holder_publish(h, in, "sample", NULL, &hs, errstr,
                                        sizeof(errstr)),
                      errstr);
        fclose(in);
        SB_CHECK(hs.published >= 5, "published %zu", hs.published);
        sb_holder_destroy(h);
        free(text);

        /* It cannot read a reuser's stream ... */
        err = sb_world_try_read(&holder_kc, "sb.out.t1-reuser.beneficiaries",
                                15000, NULL, &msgs);
        SB_CHECK_STR(
            rd_kafka_err2name(RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED),
            rd_kafka_err2name(err), "holder reading a reuser stream");
        SB_CHECK_INT(0, msgs, "messages the holder read from the stream");
        /* ... nor its own input back. */
        err = sb_world_try_read(&holder_kc, "sb.in.beneficiaries", 15000, NULL,
                                &msgs);
        SB_CHECK_STR(
            rd_kafka_err2name(RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED),
            rd_kafka_err2name(err), "holder reading its input topic");
        SB_CHECK_INT(0, msgs, "messages the holder read from the input");
        printf("holder published %zu records; reads denied: %s\n", hs.published,
               rd_kafka_err2name(err));

        sb_config_release(sb_holder_cfg_table, &cfg);
        sb_world_release(&w);
        return 0;
}
