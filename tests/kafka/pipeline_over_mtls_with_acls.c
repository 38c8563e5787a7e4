/*
 * The skeleton's end-to-end flow on the real broker: TLS client
 * certificates issued by `sharebus admin`, topics and ACLs applied by
 * `sharebus admin`, then holder -> gateway -> two reusers, each with its
 * own least-privilege principal. Each reuser stores exactly the published
 * records, with only its granted fields; an erasure reaches both. The
 * holder signs, the gateway verifies and signs, the reusers verify, and an
 * independent Python peer checks the stream's signatures too (R3.4-*).
 */
#include "crypto.h"
#include "sample.h"
#include "sign.h"
#include "world.h"

#include <sys/stat.h>

#define SUBJECTS 40

static void cfg_apply(const sb_config_field_t *table, void *target, json_t *obj)
{
        char errstr[512];

        SB_OK_OR_FAIL(
            sb_config_apply(obj, "test", table, target, errstr, sizeof(errstr)),
            errstr);
        json_decref(obj);
}

/* A config's kafka section from an mTLS client config. */
static json_t *kafka_json(const sb_kafka_cfg_t *kc)
{
        return json_pack("{s:s, s:s, s:s, s:s, s:s}", "bootstrap_servers",
                         kc->bootstrap_servers, "security_protocol", "ssl",
                         "ssl_ca_location", kc->ssl_ca_location,
                         "ssl_certificate_location",
                         kc->ssl_certificate_location, "ssl_key_location",
                         kc->ssl_key_location);
}

int main(void)
{
        const char *reusers[2] = {"t7-stats", "t7-desk"};
        sb_kafka_cfg_t holder_kc, gw_kc, ru_kc[2];
        sb_holder_cfg_t hcfg;
        sb_gateway_cfg_t gcfg;
        sb_reuser_cfg_t rcfg[2];
        sb_reuser_t *ru[2];
        sb_holder_stats_t hs;
        sb_gateway_t *gw;
        sb_holder_t *h;
        sb_key_t *key;
        sb_world_t w;
        char errstr[1024], path[600], subject[16], event_id[37];
        char hkey[400], gkey[400], hkeys[400], gkeys[400], gpub[500];
        char akey[400];
        char ps[SB_PSEUDONYM_HEXLEN + 1], *text = NULL;
        size_t len = 0, records, i;
        FILE *mem, *in;

        sb_world_init(&w);
        sb_world_grant(&w, "stats.json",
                       "{\"id\": \"g-t7a\", \"reuser\": \"t7-stats\", "
                       "\"dataset\": \"beneficiaries\", \"purposes\": [\"p\"], "
                       "\"legal_basis\": \"x\", \"status\": \"approved\", "
                       "\"fields\": {\"postcode\": \"keep\", \"benefit\": "
                       "\"keep\"}}");
        sb_world_grant(&w, "desk.json",
                       "{\"id\": \"g-t7b\", \"reuser\": \"t7-desk\", "
                       "\"dataset\": \"beneficiaries\", \"purposes\": [\"p\"], "
                       "\"legal_basis\": \"x\", \"status\": \"approved\", "
                       "\"fields\": {\"first_name\": \"keep\", \"email\": "
                       "\"keep\"}}");
        sb_world_platform(&w, "\"gateway\": [\"t7-gateway.g1\"], "
                              "\"datasets\": {\"beneficiaries\": "
                              "{\"holders\": [\"t7-holder.g1\"]}}, "
                              "\"reusers\": {\"t7-stats\": {\"principals\": "
                              "[\"t7-stats.g1\"]}, \"t7-desk\": "
                              "{\"principals\": [\"t7-desk.g1\"]}}");
        sb_world_apply(&w);
        sb_world_cert(&w, "t7-holder.g1", NULL, &holder_kc);
        sb_world_cert(&w, "t7-gateway.g1", NULL, &gw_kc);
        sb_world_cert(&w, "t7-stats.g1", NULL, &ru_kc[0]);
        sb_world_cert(&w, "t7-desk.g1", NULL, &ru_kc[1]);

        /* The input topic is shared by the real-broker tests: this one
         * reads what it published (a fresh gateway group, from offsets
         * committed by nobody) and counts what reaches its reusers. */
        /* Signatures (R3.4-*): the holder signs, the gateway verifies
         * with the holder's public key and signs the streams, the reusers
         * and the Python peer verify with the gateway's. */
        snprintf(hkey, sizeof(hkey), "%s/holder.key", w.dir);
        snprintf(gkey, sizeof(gkey), "%s/gateway.key", w.dir);
        snprintf(hkeys, sizeof(hkeys), "%s/holder-keys", w.dir);
        snprintf(gkeys, sizeof(gkeys), "%s/gateway-keys", w.dir);
        snprintf(path, sizeof(path), "%s/beneficiaries", hkeys);
        SB_CHECK(mkdir(hkeys, 0700) == 0 && mkdir(path, 0700) == 0 &&
                     mkdir(gkeys, 0700) == 0,
                 "mkdir key directories");
        snprintf(path, sizeof(path), "%s/beneficiaries/holder.pub", hkeys);
        sb_test_keypair(hkey, path);
        snprintf(gpub, sizeof(gpub), "%s/gateway.pub", gkeys);
        sb_test_keypair(gkey, gpub);
        snprintf(akey, sizeof(akey), "%s/audit.key", w.dir);
        snprintf(path, sizeof(path), "%s/audit.pub", w.dir);
        sb_test_keypair(akey, path);

        memset(&hcfg, 0, sizeof(hcfg));
        cfg_apply(sb_holder_cfg_table, &hcfg,
                  json_pack("{s:o, s:s, s:s, s:s}", "kafka",
                            kafka_json(&holder_kc), "schemas_dir",
                            SB_SCHEMAS_DIR, "client_id", "t7-holder",
                            "signing_key_file", hkey));
        h = sb_holder_new(&hcfg, "beneficiaries", errstr, sizeof(errstr));
        SB_CHECK(h, "holder over mTLS: %s", errstr);
        mem = open_memstream(&text, &len);
        records = sb_sample_write(mem, SUBJECTS, 77);
        fclose(mem);
        in = fmemopen(text, len, "r");
        SB_OK_OR_FAIL(sb_holder_publish(h, in, "sample", NULL, &hs, errstr,
                                        sizeof(errstr)),
                      errstr);
        fclose(in);
        SB_CHECK_INT(records, hs.published, "records published");

        memset(&gcfg, 0, sizeof(gcfg));
        cfg_apply(sb_gateway_cfg_table, &gcfg,
                  json_pack("{s:o, s:[s], s:s, s:s, s:s, s:s, s:s, s:s, s:s}",
                            "kafka", kafka_json(&gw_kc), "datasets",
                            "beneficiaries", "schemas_dir", SB_SCHEMAS_DIR,
                            "grants_dir", w.grants_dir, "pseudonym_key_file",
                            "(memory)", "client_id", "t7-gateway",
                            "holder_keys_dir", hkeys, "signing_key_file", gkey,
                            "audit_key_file", akey));
        key = sb_key_random();
        gw = sb_gateway_new(&gcfg, key, errstr, sizeof(errstr));
        SB_CHECK(gw, "gateway over mTLS: %s", errstr);
        SB_OK_OR_FAIL(sb_gateway_run(gw, NULL, 3000, errstr, sizeof(errstr)),
                      errstr);
        SB_CHECK(sb_gateway_stats(gw)->delivered >= 2 * records,
                 "gateway delivered %zu, expected at least %zu",
                 sb_gateway_stats(gw)->delivered, 2 * records);

        for (i = 0; i < 2; i++) {
                char sk[600], pk[600];
                sb_signkey_t *sign = sb_signkey_generate();

                /* Receipts are signed with the reuser's own key. */
                snprintf(sk, sizeof(sk), "%s/%s.key", w.dir, reusers[i]);
                snprintf(pk, sizeof(pk), "%s/%s.pub", w.dir, reusers[i]);
                SB_CHECK(sign, "sb_signkey_generate");
                SB_OK_OR_FAIL(
                    sb_signkey_save(sign, sk, pk, errstr, sizeof(errstr)),
                    errstr);
                sb_signkey_destroy(sign);
                snprintf(path, sizeof(path), "%s/%s.json", w.grants_dir,
                         i == 0 ? "stats" : "desk");
                memset(&rcfg[i], 0, sizeof(rcfg[i]));
                cfg_apply(sb_reuser_cfg_table, &rcfg[i],
                          json_pack("{s:o, s:s, s:s, s:s, s:s, s:s, s:s, s:s}",
                                    "kafka", kafka_json(&ru_kc[i]), "reuser",
                                    reusers[i], "dataset", "beneficiaries",
                                    "grant_file", path, "schemas_dir",
                                    SB_SCHEMAS_DIR, "database",
                                    ":memory:", "signing_key_file", sk,
                                    "gateway_keys_dir", gkeys));
                ru[i] = sb_reuser_new(&rcfg[i], errstr, sizeof(errstr));
                SB_CHECK(ru[i], "reuser over mTLS: %s", errstr);
                SB_OK_OR_FAIL(
                    sb_reuser_run(ru[i], NULL, 3000, errstr, sizeof(errstr)),
                    errstr);
                SB_CHECK_INT(sb_gateway_stats(gw)->delivered / 2,
                             sb_store_count(sb_reuser_store(ru[i]), NULL),
                             "rows stored by the reuser");
                SB_CHECK_INT(0, sb_reuser_stats(ru[i])->rejected,
                             "messages the reuser refused");
        }

        /* An independent peer (confluent-kafka + fastavro) reads the
         * stream as the reuser would, and decodes every record. */
        {
                char schema_path[600], cmd[4096];

                snprintf(schema_path, sizeof(schema_path),
                         "%s/t7-stats.output.avsc", w.dir);
                SB_CHECK(json_dump_file(sb_reuser_grant(ru[0])->out->json,
                                        schema_path, 0) == 0,
                         "write %s", schema_path);
                snprintf(cmd, sizeof(cmd),
                         "python3 '%s/tests/kafka/peer_check_stream.py' '%s' "
                         "'%s' '%s' '%s' sb-reuser-t7-stats "
                         "sb.out.t7-stats.beneficiaries '%s' %zu '%s'",
                         SB_SOURCE_DIR, ru_kc[0].bootstrap_servers,
                         ru_kc[0].ssl_ca_location,
                         ru_kc[0].ssl_certificate_location,
                         ru_kc[0].ssl_key_location, schema_path, records, gpub);
                SB_CHECK(system(cmd) == 0,
                         "the Python peer could not read the stream");
        }

        /* An erasure reaches both. */
        sb_sample_subject_id(4, subject);
        SB_OK_OR_FAIL(sb_holder_rights(h, SB_EV_ERASURE, subject, NULL,
                                       event_id, errstr, sizeof(errstr)),
                      errstr);
        SB_OK_OR_FAIL(sb_gateway_run(gw, NULL, 3000, errstr, sizeof(errstr)),
                      errstr);
        for (i = 0; i < 2; i++) {
                sb_pseudonymiser_t *p =
                    sb_pseudonymiser_new(key, reusers[i], "beneficiaries");

                sb_pseudonymise(p, subject, strlen(subject), ps);
                sb_pseudonymiser_destroy(p);
                SB_CHECK(sb_store_count(sb_reuser_store(ru[i]), ps) > 0,
                         "%s had no row of the subject", reusers[i]);
                SB_OK_OR_FAIL(
                    sb_reuser_run(ru[i], NULL, 3000, errstr, sizeof(errstr)),
                    errstr);
                SB_CHECK_INT(0, sb_store_count(sb_reuser_store(ru[i]), ps),
                             "rows of the erased subject");
                /* Its receipt went out on sb.ack.<reuser>, which only
                 * this reuser may write. */
                SB_CHECK_INT(1, sb_reuser_stats(ru[i])->receipts_sent,
                             "receipts the broker acknowledged");
        }
        printf("over mTLS with ACLs: %zu records to 2 reusers, erasure %s "
               "applied by both\n",
               records, event_id);

        for (i = 0; i < 2; i++) {
                sb_reuser_destroy(ru[i]);
                sb_config_release(sb_reuser_cfg_table, &rcfg[i]);
        }
        sb_gateway_destroy(gw);
        sb_holder_destroy(h);
        sb_key_destroy(key);
        sb_config_release(sb_gateway_cfg_table, &gcfg);
        sb_config_release(sb_holder_cfg_table, &hcfg);
        free(text);
        sb_world_release(&w);
        return 0;
}
