/*
 * Nothing is silently dropped, nothing unverified is shared: a message on
 * an input topic without the sharebus envelope, one whose value does not
 * decode, and one whose key is not its record's subject go to
 * _sb.quarantine with the reason; no reuser stream receives them, and the
 * valid record next to them is still delivered.
 */
#include "sample.h"
#include "testutil.h"

static const char *grant =
    "{\"id\": \"g-q\", \"reuser\": \"reuser-q\", \"dataset\": "
    "\"beneficiaries\", \"purposes\": [\"p\"], \"legal_basis\": "
    "\"gdpr-6-1-e\", \"status\": \"approved\", \"fields\": {\"postcode\": "
    "\"keep\"}}";

static void produce_raw(sb_testenv_t *te, const char *key,
                        rd_kafka_headers_t *hdrs, const void *value, size_t len)
{
        rd_kafka_conf_t *conf = rd_kafka_conf_new();
        char errstr[512];
        rd_kafka_t *rk;

        rd_kafka_conf_set(conf, "bootstrap.servers", te->mock->bootstraps, NULL,
                          0);
        rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
        SB_CHECK(rk, "producer: %s", errstr);
        SB_CHECK(!rd_kafka_producev(rk, RD_KAFKA_V_TOPIC("sb.in.beneficiaries"),
                                    RD_KAFKA_V_KEY(key, strlen(key)),
                                    RD_KAFKA_V_VALUE((void *)value, len),
                                    RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                    RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_END),
                 "produce");
        SB_CHECK(rd_kafka_flush(rk, 10000) == 0, "flush");
        rd_kafka_destroy(rk);
}

int main(void)
{
        char errstr[1024], *text = NULL, *first, *nl;
        sb_holder_stats_t hs;
        sb_envelope_t env;
        sb_gateway_t *gw;
        sb_holder_t *h;
        sb_testenv_t te;
        size_t len = 0;
        FILE *mem;

        sb_testenv_init(&te);
        sb_testenv_grant(&te, "q.json", grant);

        /* 1. no envelope at all */
        produce_raw(&te, "BEN-0000001", NULL, "{\"hello\": 1}", 12);

        /* 2. a proper envelope, but the value is garbage */
        memset(&env, 0, sizeof(env));
        env.type = SB_EV_RECORD_UPSERT;
        env.schema_fp =
            sb_catalog_dataset(te.cat, "beneficiaries")->fingerprint;
        snprintf(env.source, sizeof(env.source), "test");
        sb_envelope_stamp(&env);
        {
                unsigned char garbage[20] = {0xC3, 0x01};
                int i;

                for (i = 0; i < 8; i++)
                        garbage[2 + i] =
                            (unsigned char)(env.schema_fp >> (8 * i));
                memset(garbage + 10, 0xff, 10);
                produce_raw(&te, "BEN-0000002", sb_envelope_headers(&env),
                            garbage, sizeof(garbage));
        }

        /* 3. a valid record under another subject's key, then 4. one
         * valid record published by the holder. */
        mem = open_memstream(&text, &len);
        sb_sample_write(mem, 1, 5);
        fclose(mem);
        first = text;
        nl = strchr(first, '\n');
        *nl = '\0';
        h = sb_holder_new(&te.holder_cfg, "beneficiaries", errstr,
                          sizeof(errstr));
        SB_CHECK(h, "holder: %s", errstr);
        {
                FILE *in = fmemopen(first, strlen(first), "r");

                SB_OK_OR_FAIL(sb_holder_publish(h, in, "one", NULL, &hs, errstr,
                                                sizeof(errstr)),
                              errstr);
                fclose(in);
        }
        {
                /* Re-send the encoded record under a wrong key. */
                rd_kafka_conf_t *conf = rd_kafka_conf_new();
                rd_kafka_t *c;
                rd_kafka_message_t *m = NULL;
                rd_kafka_topic_partition_list_t *parts;
                rd_kafka_headers_t *hd = NULL;
                int p, tries;

                rd_kafka_conf_set(conf, "bootstrap.servers",
                                  te.mock->bootstraps, NULL, 0);
                rd_kafka_conf_set(conf, "group.id", "copier", NULL, 0);
                c = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr,
                                 sizeof(errstr));
                parts = rd_kafka_topic_partition_list_new(3);
                for (p = 0; p < 3; p++)
                        rd_kafka_topic_partition_list_add(
                            parts, "sb.in.beneficiaries", p)
                            ->offset = RD_KAFKA_OFFSET_BEGINNING;
                rd_kafka_assign(c, parts);
                for (tries = 0; tries < 100; tries++) {
                        m = rd_kafka_consumer_poll(c, 100);
                        if (m && !m->err && m->key_len == 11 &&
                            !memcmp(m->key, "BEN-0000000", 11))
                                break;
                        if (m)
                                rd_kafka_message_destroy(m);
                        m = NULL;
                }
                SB_CHECK(m, "holder's record not found");
                SB_CHECK(!rd_kafka_message_headers(m, &hd), "headers");
                produce_raw(&te, "BEN-9999999", rd_kafka_headers_copy(hd),
                            m->payload, m->len);
                rd_kafka_message_destroy(m);
                rd_kafka_topic_partition_list_destroy(parts);
                rd_kafka_consumer_close(c);
                rd_kafka_destroy(c);
        }

        gw = sb_gateway_new(&te.gw_cfg, te.key, errstr, sizeof(errstr));
        SB_CHECK(gw, "gateway: %s", errstr);
        SB_OK_OR_FAIL(
            sb_gateway_run(gw, NULL, SB_TEST_IDLE_MS, errstr, sizeof(errstr)),
            errstr);
        SB_CHECK_INT(3, sb_gateway_stats(gw)->quarantined,
                     "messages quarantined");
        SB_CHECK_INT(1, sb_gateway_stats(gw)->delivered, "records delivered");
        SB_CHECK_INT(3, sb_testenv_count_messages(&te, SB_QUARANTINE_TOPIC),
                     "messages on the quarantine topic");
        SB_CHECK_INT(1,
                     sb_testenv_count_messages(&te, "sb.out.reuser-q."
                                                    "beneficiaries"),
                     "messages on the reuser's stream");

        sb_gateway_destroy(gw);
        sb_holder_destroy(h);
        free(text);
        sb_testenv_release(&te);
        return 0;
}
