/*
 * DESIGN.md §6, §9; CNIL R4.3-12, R4.3-20: _sb.audit records every receipt
 * a reuser sends for a rights event, once, and never a forged one.
 *
 * reuser-a holds the person; after an erasure it applies it and sends its
 * signed receipt. A forged receipt for the same event, signed with a key
 * reuser-a never declared, follows it on sb.ack.reuser-a. Through the
 * built binary, two `rights watch --once` passes:
 *   - the first records one "receipt" entry, in the chain
 *     sb-admin-rights: the event, reuser, dataset, type, rows, applied_at,
 *     key id and offset of the valid receipt, the admin as author, no
 *     subject id nor pseudonym; the forged one is not recorded;
 *   - the second records nothing;
 *   - `rights status --json` counts the valid receipt as audited;
 *   - `sharebus audit verify` (no --allow-unchained) finds the log intact,
 *     with the chain sb-admin-rights closed by a checkpoint signed by the
 *     admin config's audit_key_file.
 */
#include <limits.h>
#include <sys/wait.h>
#include <unistd.h>

#include "envelope.h"
#include "proc.h"
#include "rights.h"
#include "sample.h"
#include "sign.h"
#include "testutil.h"

static const char *grant_a =
    "{\"id\": \"g-a\", \"reuser\": \"reuser-a\", \"dataset\": "
    "\"beneficiaries\", \"purposes\": [\"p\"], \"legal_basis\": "
    "\"gdpr-6-1-e\", \"status\": \"approved\", \"fields\": {\"postcode\": "
    "\"keep\"}}";

/* The text of dir/NAME.pub, without its newline. */
static void pub_hex(sb_testenv_t *te, const char *name, char *out, size_t size)
{
        char path[600];
        FILE *fp;

        snprintf(path, sizeof(path), "%s/%s.pub", te->dir, name);
        fp = fopen(path, "r");
        SB_CHECK(fp && fgets(out, (int)size, fp), "cannot read %s", path);
        fclose(fp);
        out[strcspn(out, "\n")] = '\0';
}

/*
 * A receipt for reuser-a whose fields all match the event, signed with a
 * key of its own that reuser-a never declared: a forgery.
 */
static void publish_forged_receipt(sb_testenv_t *te, const char *event_id)
{
        const sb_schema_t *schema =
            sb_catalog_by_name(te->cat, SB_RECEIPT_SCHEMA);
        char errstr[512], sig[SB_SIG_HEXLEN + 1], now[32];
        rd_kafka_conf_t *conf = rd_kafka_conf_new();
        sb_signkey_t *key = sb_signkey_generate();
        sb_buf_t buf = {0};
        avro_value_t v;
        rd_kafka_t *rk;
        json_t *j;

        SB_CHECK(schema && key, "receipt schema, key");
        sb_time_format(sb_now_ms(), now);
        j = json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:s}", "event_id",
                      event_id, "reuser", "reuser-a", "dataset",
                      "beneficiaries", "type", "sharebus.rights.erasure",
                      "pseudonym", SB_TEST_PSEUDONYM, "rows", (json_int_t)0,
                      "applied_at", now);
        SB_OK_OR_FAIL(sb_schema_value_new(schema, &v, errstr, sizeof(errstr)),
                      errstr);
        SB_OK_OR_FAIL(
            sb_avrojson_from_json(schema->aj, j, &v, errstr, sizeof(errstr)),
            errstr);
        SB_OK_OR_FAIL(
            sb_schema_encode(schema, &v, &buf, errstr, sizeof(errstr)), errstr);
        SB_OK_OR_FAIL(sb_sign(key, buf.data, buf.len, sig), "sb_sign");
        rd_kafka_conf_set(conf, "bootstrap.servers", te->mock->bootstraps, NULL,
                          0);
        rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
        SB_CHECK(rk, "producer: %s", errstr);
        SB_CHECK(!rd_kafka_producev(
                     rk, RD_KAFKA_V_TOPIC("sb.ack.reuser-a"),
                     RD_KAFKA_V_KEY(event_id, strlen(event_id)),
                     RD_KAFKA_V_VALUE(buf.data, buf.len),
                     RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                     RD_KAFKA_V_HEADER("sb_sig", sig, -1),
                     RD_KAFKA_V_HEADER("sb_key_id", sb_signkey_id(key), -1),
                     RD_KAFKA_V_END),
                 "produce the forged receipt");
        SB_CHECK(rd_kafka_flush(rk, 10000) == 0, "flush");
        rd_kafka_destroy(rk);
        json_decref(j);
        avro_value_decref(&v);
        sb_buf_release(&buf);
        sb_signkey_destroy(key);
}

/* The "receipt" entries of _sb.audit (new reference); checks that no
 * entry of the chain sb-admin-rights names the subject. */
static json_t *receipt_entries(sb_testenv_t *te, const char *subject)
{
        json_t *values = sb_testenv_audit_values(te), *out = json_array(), *x;
        size_t k;

        json_array_foreach(values, k, x)
        {
                const char *text = json_string_value(x);
                json_t *e = json_loads(text, 0, NULL);
                const char *op = json_string_value(json_object_get(e, "op"));
                const char *chain =
                    json_string_value(json_object_get(e, "chain"));

                SB_CHECK(e && op && chain, "entry %zu without op or chain: %s",
                         k, text);
                if (!strcmp(chain, SB_RIGHTS_AUDIT_CHAIN))
                        SB_CHECK(!strstr(text, subject) &&
                                     !strstr(text, SB_TEST_PSEUDONYM) &&
                                     !json_object_get(e, "subject_ps") &&
                                     !json_object_get(e, "pseudonym"),
                                 "a receipt entry names the subject: %s", text);
                if (!strcmp(op, SB_RIGHTS_AUDIT_OP)) {
                        SB_CHECK_STR(SB_RIGHTS_AUDIT_CHAIN, chain,
                                     "receipt entry chain");
                        json_array_append(out, e);
                }
                json_decref(e);
        }
        json_decref(values);
        return out;
}

int main(void)
{
        char errstr[1024], out[32768], admin_pub[128], gw_pub[128], a_pub[128];
        char pf_text[4096], path[600], input[600], subject[16], event_id[37];
        char key_a[SB_KEY_ID_HEXLEN + 1], args[256];
        sb_signkey_t *a_key = NULL;
        sb_holder_stats_t hs;
        sb_reuser_cfg_t cfg_a;
        sb_reuser_t *ru_a;
        sb_gateway_t *gw;
        sb_holder_t *h;
        sb_testenv_t te;
        json_t *j, *receipts, *e, *reusers;
        const char *pf_path;
        char *text;
        FILE *fp;
        int rc;

        sb_testenv_init(&te);
        sb_testenv_grant(&te, "a.json", grant_a);
        SB_OK_OR_FAIL(sb_mockenv_topic(te.mock, SB_RIGHTS_ALERTS_TOPIC, 1,
                                       errstr, sizeof(errstr)),
                      errstr);
        snprintf(path, sizeof(path), "%s/admin-audit.key", te.dir);
        snprintf(pf_text, sizeof(pf_text), "%s/admin-audit.pub", te.dir);
        sb_test_keypair(path, pf_text);
        snprintf(path, sizeof(path), "%s/gw-audit.key", te.dir);
        snprintf(pf_text, sizeof(pf_text), "%s/gw-audit.pub", te.dir);
        sb_test_keypair(path, pf_text);
        pub_hex(&te, "admin-audit", admin_pub, sizeof(admin_pub));
        pub_hex(&te, "gw-audit", gw_pub, sizeof(gw_pub));
        te.gw_cfg.audit_key_file = strdup(path);

        /* 1. reuser-a holds the person, erases it and sends its receipt. */
        snprintf(input, sizeof(input), "%s/in.ndjson", te.dir);
        fp = fopen(input, "w+");
        SB_CHECK(fp, "input");
        sb_sample_write(fp, 10, 5);
        rewind(fp);
        h = sb_holder_new(&te.holder_cfg, "beneficiaries", errstr,
                          sizeof(errstr));
        SB_CHECK(h, "holder: %s", errstr);
        SB_OK_OR_FAIL(
            sb_holder_publish(h, fp, input, NULL, &hs, errstr, sizeof(errstr)),
            errstr);
        fclose(fp);
        gw = sb_gateway_new(&te.gw_cfg, te.key, errstr, sizeof(errstr));
        SB_CHECK(gw, "gateway: %s", errstr);
        sb_testenv_reuser_cfg(&te, "a.json", &cfg_a);
        ru_a = sb_reuser_new(&cfg_a, errstr, sizeof(errstr));
        SB_CHECK(ru_a, "reuser-a: %s", errstr);
        SB_OK_OR_FAIL(
            sb_gateway_run(gw, NULL, SB_TEST_IDLE_MS, errstr, sizeof(errstr)),
            errstr);
        SB_OK_OR_FAIL(
            sb_reuser_run(ru_a, NULL, SB_TEST_IDLE_MS, errstr, sizeof(errstr)),
            errstr);
        sb_sample_subject_id(4, subject);
        SB_OK_OR_FAIL(sb_holder_rights(h, SB_EV_ERASURE, subject, NULL,
                                       event_id, errstr, sizeof(errstr)),
                      errstr);
        SB_OK_OR_FAIL(
            sb_gateway_run(gw, NULL, SB_TEST_IDLE_MS, errstr, sizeof(errstr)),
            errstr);
        SB_OK_OR_FAIL(
            sb_reuser_run(ru_a, NULL, SB_TEST_IDLE_MS, errstr, sizeof(errstr)),
            errstr);
        SB_CHECK_INT(1, sb_testenv_count_messages(&te, "sb.ack.reuser-a"),
                     "receipts reuser-a sent");
        publish_forged_receipt(&te, event_id);

        /* 2. The platform, declaring reuser-a's receipt key and both
         *    audit keys; the admin config signs its checkpoints. */
        pub_hex(&te, "reuser-a", a_pub, sizeof(a_pub));
        snprintf(path, sizeof(path), "%s/reuser-a.key", te.dir);
        SB_OK_OR_FAIL(sb_signkey_load(path, &a_key, errstr, sizeof(errstr)),
                      errstr);
        snprintf(key_a, sizeof(key_a), "%s", sb_signkey_id(a_key));
        sb_signkey_destroy(a_key);
        snprintf(pf_text, sizeof(pf_text),
                 "{\"gateway\": [\"sb-gateway.g1\"], \"datasets\": "
                 "{\"beneficiaries\": {\"holders\": [\"holder.g1\"]}}, "
                 "\"reusers\": {\"reuser-a\": {\"principals\": "
                 "[\"reuser-a.g1\"], \"receipt_keys\": [\"%s\"]}}, "
                 "\"grants_dir\": \"%s\", \"schemas_dir\": \"%s\", "
                 "\"replication_factor\": 1, \"audit_keys\": [\"%s\", "
                 "\"%s\"]}",
                 a_pub, te.grants_dir, SB_SCHEMAS_DIR, admin_pub, gw_pub);
        pf_path = sb_testenv_file(&te, "platform.json", pf_text);
        snprintf(path, sizeof(path), "%s/admin-audit.key", te.dir);
        j = json_pack("{s:o, s:s, s:s}", "kafka",
                      sb_mockenv_kafka_json(te.mock), "platform", pf_path,
                      "audit_key_file", path);
        text = json_dumps(j, JSON_COMPACT);
        sb_testenv_file(&te, "admin.json", text);
        free(text);
        json_decref(j);

        /* 3. Two passes: one entry, for the valid receipt only. */
        rc = sb_testenv_cli(&te, "rights watch --once --config admin.json", out,
                            sizeof(out));
        SB_CHECK(rc == 0 && strstr(out, "recorded 1 receipt(s)"),
                 "first watch: expected exit 0 and 1 receipt recorded, got "
                 "%d:\n%s",
                 rc, out);
        rc = sb_testenv_cli(&te, "rights watch --once --config admin.json", out,
                            sizeof(out));
        SB_CHECK(rc == 0 && strstr(out, "recorded 0 receipt(s)"),
                 "second watch: expected exit 0 and nothing recorded, got "
                 "%d:\n%s",
                 rc, out);
        receipts = receipt_entries(&te, subject);
        SB_CHECK_INT(1, json_array_size(receipts), "receipt entries");
        e = json_array_get(receipts, 0);
        SB_CHECK_STR(event_id,
                     json_string_value(json_object_get(e, "event_id")),
                     "event_id");
        SB_CHECK_STR("reuser-a",
                     json_string_value(json_object_get(e, "reuser")), "reuser");
        SB_CHECK_STR("beneficiaries",
                     json_string_value(json_object_get(e, "dataset")),
                     "dataset");
        SB_CHECK_STR("sharebus.rights.erasure",
                     json_string_value(json_object_get(e, "type")), "type");
        SB_CHECK_STR(key_a, json_string_value(json_object_get(e, "key_id")),
                     "key_id: reuser-a's declared key");
        SB_CHECK_STR("sharebus://admin/sharebus-admin",
                     json_string_value(json_object_get(e, "author")), "author");
        SB_CHECK_INT(0,
                     json_integer_value(json_object_get(e, "receipt_offset")),
                     "receipt_offset: the valid receipt came first");
        SB_CHECK(json_integer_value(json_object_get(e, "rows")) > 0,
                 "rows: expected the rows reuser-a erased");
        SB_CHECK(json_integer_value(json_object_get(e, "applied_at")) > 0,
                 "applied_at: expected a time in ms");
        json_decref(receipts);

        /* 4. status counts it as audited. */
        snprintf(args, sizeof(args),
                 "rights status %s --json --config admin.json", event_id);
        rc = sb_testenv_cli(&te, args, out, sizeof(out));
        SB_CHECK(rc == 0, "rights status: expected exit 0, got %d:\n%s", rc,
                 out);
        j = json_loads(out, JSON_DISABLE_EOF_CHECK, NULL);
        SB_CHECK(j, "rights status --json: not JSON:\n%s", out);
        reusers = json_object_get(j, "reusers");
        SB_CHECK_INT(1,
                     json_integer_value(json_object_get(
                         json_array_get(reusers, 0), "audited")),
                     "status: receipts of reuser-a audited");
        SB_CHECK_INT(2,
                     json_integer_value(json_object_get(
                         json_array_get(reusers, 0), "receipts")),
                     "status: receipts of reuser-a read");
        json_decref(j);

        /* 5. The whole log verifies, unchained entries not allowed. */
        rc = sb_testenv_cli(&te, "audit verify --config admin.json", out,
                            sizeof(out));
        SB_CHECK(rc == 0 && strstr(out, "\nintact\n") &&
                     !strstr(out, "unchained") &&
                     strstr(out, SB_RIGHTS_AUDIT_CHAIN),
                 "audit verify: expected exit 0, intact, the chain %s, got "
                 "%d:\n%s",
                 SB_RIGHTS_AUDIT_CHAIN, rc, out);
        SB_CHECK(!strstr(out, "warning: chain " SB_RIGHTS_AUDIT_CHAIN),
                 "the receipt chain is not closed by a checkpoint:\n%s", out);
        printf("event %s: one receipt entry for reuser-a (key %s) after two "
               "passes, the forged receipt not recorded; the log is "
               "intact\n",
               event_id, key_a);

        sb_reuser_destroy(ru_a);
        sb_config_release(sb_reuser_cfg_table, &cfg_a);
        sb_gateway_destroy(gw);
        sb_holder_destroy(h);
        sb_testenv_release(&te);
        return 0;
}
