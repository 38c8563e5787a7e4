/*
 * GDPR art. 19, CNIL R6.2-05, DESIGN.md §3, §6, §7: every rights event a
 * reuser applies is acknowledged on sb.ack.<reuser> by exactly one
 * receipt, keyed by the event id, whose value says what was done and whose
 * signature (sb_sig, Ed25519 over the value's bytes) verifies with the
 * reuser's public key and fails once the value is altered. A notice
 * delivered twice gets no second receipt. A receipt committed with its
 * change but not yet sent when the agent stopped is sent by the next agent
 * on start, before it consumes anything.
 *
 * The stream is produced here as the gateway produces it
 * (docs/messages.md): records keyed "<pseudonym>/<record id>", notices
 * keyed "<pseudonym>" with a RightsEvent value, partitioned by pseudonym.
 */
#include "sign.h"
#include "fakegw.h"
#include "testutil.h"

static const char *grant =
    "{\"id\": \"g-k\", \"reuser\": \"ack-desk\", \"dataset\": "
    "\"beneficiaries\", \"purposes\": [\"p\"], \"legal_basis\": "
    "\"gdpr-6-1-e\", \"status\": \"approved\", \"fields\": {\"postcode\": "
    "\"keep\", \"household_size\": \"keep\"}}";

#define ACK_TOPIC "sb.ack.ack-desk"
#define PS_A      "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define PS_B      "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
#define PS_C      "cccccccccccccccccccccccccccccccc"

/*
 * The receipts, as the gateway or an auditor reads them
 */

typedef struct receipt_s {
        char key[64];
        sb_envelope_t env;
        char sig[SB_SIG_HEXLEN + 2];
        char key_id[SB_KEY_ID_HEXLEN + 2];
        unsigned char *value;
        size_t len;
} receipt_t;

static void header(const rd_kafka_message_t *m, const char *name, char *out,
                   size_t size)
{
        rd_kafka_headers_t *h = NULL;
        const void *v;
        size_t len;

        *out = '\0';
        if (rd_kafka_message_headers(m, &h) ||
            rd_kafka_header_get_last(h, name, &v, &len) || len >= size)
                return;
        memcpy(out, v, len);
        out[len] = '\0';
}

/* Every message of the (one-partition) receipt topic, from the start. */
static size_t read_receipts(sb_testenv_t *te, receipt_t *out, size_t max)
{
        rd_kafka_conf_t *conf = rd_kafka_conf_new();
        rd_kafka_topic_partition_list_t *parts;
        char errstr[512];
        rd_kafka_t *rk;
        size_t n = 0;
        int eof = 0, idle = 0;

        rd_kafka_conf_set(conf, "bootstrap.servers", te->mock->bootstraps, NULL,
                          0);
        rd_kafka_conf_set(conf, "group.id", "sb-test-auditor", NULL, 0);
        rd_kafka_conf_set(conf, "enable.partition.eof", "true", NULL, 0);
        rd_kafka_conf_set(conf, "enable.auto.commit", "false", NULL, 0);
        rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
        SB_CHECK(rk, "consumer: %s", errstr);
        parts = rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(parts, ACK_TOPIC, 0)->offset =
            RD_KAFKA_OFFSET_BEGINNING;
        rd_kafka_assign(rk, parts);
        rd_kafka_topic_partition_list_destroy(parts);
        while (!eof && idle < 100) {
                rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
                receipt_t *r;

                if (!m) {
                        idle++;
                        continue;
                }
                if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF)
                        eof = 1;
                SB_CHECK(!m->err || eof, "consumer: %s",
                         rd_kafka_message_errstr(m));
                if (!m->err) {
                        SB_CHECK(n < max, "more than %zu receipts", max);
                        r = &out[n++];
                        memset(r, 0, sizeof(*r));
                        SB_CHECK(m->key && m->key_len < sizeof(r->key),
                                 "receipt without a key");
                        memcpy(r->key, m->key, m->key_len);
                        SB_OK_OR_FAIL(sb_envelope_parse(m, &r->env, errstr,
                                                        sizeof(errstr)),
                                      errstr);
                        header(m, "sb_sig", r->sig, sizeof(r->sig));
                        header(m, "sb_key_id", r->key_id, sizeof(r->key_id));
                        r->len = m->len;
                        r->value = malloc(m->len ? m->len : 1);
                        SB_CHECK(r->value, "out of memory");
                        memcpy(r->value, m->payload, m->len);
                }
                rd_kafka_message_destroy(m);
        }
        SB_CHECK(eof, "%s: did not reach the end", ACK_TOPIC);
        rd_kafka_consumer_close(rk);
        rd_kafka_destroy(rk);
        return n;
}

static void receipts_free(receipt_t *r, size_t n)
{
        size_t i;

        for (i = 0; i < n; i++)
                free(r[i].value);
}

static const receipt_t *receipt_for(const receipt_t *r, size_t n,
                                    const char *event_id)
{
        const receipt_t *found = NULL;
        size_t i;

        for (i = 0; i < n; i++)
                if (!strcmp(r[i].key, event_id)) {
                        SB_CHECK(!found, "two receipts for event %s", event_id);
                        found = &r[i];
                }
        SB_CHECK(found, "no receipt for event %s", event_id);
        return found;
}

/*
 * Checks one receipt: headers, signature (and that a tampered value fails
 * it), and the decoded value.
 */
static void check_receipt(const receipt_t *r, const unsigned char *pub,
                          const char *key_id, const sb_schema_t *schema,
                          const char *type, const char *ps, long long rows,
                          int64_t after)
{
        char errstr[512];
        unsigned char *tampered;
        avro_value_t v;
        json_t *j = NULL;
        int64_t applied_at;
        size_t i;

        SB_CHECK(r->env.type == SB_EV_RECEIPT, "receipt %s: ce_type is not %s",
                 r->key, "sharebus.receipt");
        SB_CHECK_STR(r->key, r->env.subject, "ce_subject (the event id)");
        SB_CHECK_STR("sharebus://reuser/ack-desk", r->env.source, "ce_source");
        SB_CHECK(strcmp(r->env.id, r->key) && strlen(r->env.id) == 36,
                 "ce_id '%s': expected a fresh UUID", r->env.id);
        SB_CHECK_INT(schema->fingerprint, r->env.schema_fp, "sb_schema");
        SB_CHECK_STR(key_id, r->key_id, "sb_key_id");
        SB_CHECK_INT(SB_SIG_HEXLEN, strlen(r->sig), "sb_sig length");

        /* The signature covers the value's bytes exactly. */
        SB_CHECK(sb_verify(pub, r->value, r->len, r->sig) == SB_OK,
                 "receipt %s: signature does not verify with the reuser's "
                 "public key",
                 r->key);
        tampered = malloc(r->len);
        SB_CHECK(tampered, "out of memory");
        for (i = 0; i < r->len; i++) {
                memcpy(tampered, r->value, r->len);
                tampered[i] ^= 0x01;
                SB_CHECK(sb_verify(pub, tampered, r->len, r->sig) ==
                             SB_ERR_CRYPTO,
                         "receipt %s: value with byte %zu changed still "
                         "verifies",
                         r->key, i);
        }
        free(tampered);

        SB_OK_OR_FAIL(sb_schema_value_new(schema, &v, errstr, sizeof(errstr)),
                      errstr);
        SB_OK_OR_FAIL(sb_schema_decode(schema, r->value, r->len, &v, errstr,
                                       sizeof(errstr)),
                      errstr);
        SB_OK_OR_FAIL(
            sb_avrojson_to_json(schema->aj, &v, &j, errstr, sizeof(errstr)),
            errstr);
        SB_CHECK_STR(r->key, json_string_value(json_object_get(j, "event_id")),
                     "receipt event_id");
        SB_CHECK_STR("ack-desk",
                     json_string_value(json_object_get(j, "reuser")),
                     "receipt reuser");
        SB_CHECK_STR("beneficiaries",
                     json_string_value(json_object_get(j, "dataset")),
                     "receipt dataset");
        SB_CHECK_STR(type, json_string_value(json_object_get(j, "type")),
                     "receipt type");
        SB_CHECK_STR(ps, json_string_value(json_object_get(j, "pseudonym")),
                     "receipt pseudonym");
        SB_CHECK_INT(rows, json_integer_value(json_object_get(j, "rows")),
                     "receipt rows");
        SB_CHECK(
            !sb_time_parse(json_string_value(json_object_get(j, "applied_at")),
                           &applied_at) &&
                applied_at >= after && applied_at <= sb_now_ms(),
            "receipt applied_at %s: expected between the notice and now",
            json_string_value(json_object_get(j, "applied_at")));
        json_decref(j);
        avro_value_decref(&v);
}

static void run(sb_reuser_t *ru)
{
        char errstr[512];

        SB_OK_OR_FAIL(
            sb_reuser_run(ru, NULL, SB_TEST_IDLE_MS, errstr, sizeof(errstr)),
            errstr);
}

int main(void)
{
        char errstr[1024], path[600], pubpath[600];
        char e_erase[37], e_restrict[37], e_rectify[37], e_object[37],
            e_lift[37], e_after[37], key_id[SB_KEY_ID_HEXLEN + 1];
        unsigned char pub[SB_SIGN_PUBLIC_BYTES];
        const sb_schema_t *schema;
        receipt_t r[16];
        sb_reuser_cfg_t cfg;
        sb_reuser_t *ru;
        sb_grant_t *g;
        sb_testenv_t te;
        int64_t t0;
        size_t n;
        sb_fakegw_t gw;

        sb_testenv_init(&te);
        sb_testenv_grant(&te, "k.json", grant);
        snprintf(path, sizeof(path), "%s/k.json", te.grants_dir);
        g = sb_grant_load(path, te.cat, errstr, sizeof(errstr));
        SB_CHECK(g, "grant: %s", errstr);
        schema = sb_catalog_by_name(te.cat, SB_RECEIPT_SCHEMA);
        SB_CHECK(schema, "receipt schema %s", SB_RECEIPT_SCHEMA);
        sb_fakegw_init(&gw, &te, g);
        sb_uuid4(e_erase);
        sb_uuid4(e_restrict);
        sb_uuid4(e_rectify);
        sb_uuid4(e_object);
        sb_uuid4(e_lift);
        sb_uuid4(e_after);

        sb_testenv_reuser_cfg(&te, "k.json", &cfg);
        snprintf(pubpath, sizeof(pubpath), "%s/ack-desk.pub", te.dir);
        SB_OK_OR_FAIL(sb_pubkey_load(pubpath, pub, errstr, sizeof(errstr)),
                      errstr);
        sb_key_id(pub, key_id);
        ru = sb_reuser_new(&cfg, errstr, sizeof(errstr));
        SB_CHECK(ru, "reuser: %s", errstr);

        /* 1. Records of three subjects, then four rights events, one of
         *    them delivered twice. */
        t0 = sb_now_ms();
        sb_fakegw_record(&gw, SB_EV_RECORD_UPSERT, NULL, PS_A, "a1", "75001",
                         2);
        sb_fakegw_record(&gw, SB_EV_RECORD_UPSERT, NULL, PS_A, "a2", "75002",
                         2);
        sb_fakegw_record(&gw, SB_EV_RECORD_UPSERT, NULL, PS_B, "b1", "69001",
                         2);
        sb_fakegw_record(&gw, SB_EV_RECORD_UPSERT, NULL, PS_C, "c1", "13001",
                         2);
        sb_fakegw_notice(&gw, SB_EV_ERASURE, e_erase, PS_A, PS_A);
        sb_fakegw_notice(&gw, SB_EV_RESTRICTION, e_restrict, PS_B, PS_B);
        sb_fakegw_notice(&gw, SB_EV_RESTRICTION, e_restrict, PS_B, PS_B);
        sb_fakegw_record(&gw, SB_EV_RECTIFICATION, e_rectify, PS_C, "c1",
                         "13002", 2);
        sb_fakegw_notice(&gw, SB_EV_OBJECTION, e_object, PS_C, PS_C);
        sb_fakegw_flush(&gw);
        run(ru);
        SB_CHECK_INT(4, sb_reuser_stats(ru)->receipts_sent, "receipts sent");
        SB_CHECK_INT(1, sb_reuser_stats(ru)->rights_duplicates,
                     "notices seen again");

        n = read_receipts(&te, r, 16);
        SB_CHECK_INT(4, n, "receipts on " ACK_TOPIC);
        check_receipt(receipt_for(r, n, e_erase), pub, key_id, schema,
                      "sharebus.rights.erasure", PS_A, 2, t0);
        check_receipt(receipt_for(r, n, e_restrict), pub, key_id, schema,
                      "sharebus.rights.restriction", PS_B, 1, t0);
        check_receipt(receipt_for(r, n, e_rectify), pub, key_id, schema,
                      "sharebus.rights.rectification", PS_C, 1, t0);
        check_receipt(receipt_for(r, n, e_object), pub, key_id, schema,
                      "sharebus.rights.objection", PS_C, 1, t0);
        /* Another key does not verify them. */
        {
                sb_signkey_t *other = sb_signkey_generate();

                SB_CHECK(other, "sb_signkey_generate");
                SB_CHECK(sb_verify(sb_signkey_public(other), r[0].value,
                                   r[0].len, r[0].sig) == SB_ERR_CRYPTO,
                         "a receipt verifies with another key");
                sb_signkey_destroy(other);
        }
        receipts_free(r, n);

        /* 2. The agent stops after committing the next event but before
         *    sending its receipt. */
        sb_reuser_hold_receipts(ru, 1);
        t0 = sb_now_ms();
        sb_fakegw_notice(&gw, SB_EV_RESTRICTION_LIFTED, e_lift, PS_B, PS_B);
        sb_fakegw_flush(&gw);
        run(ru);
        SB_CHECK_INT(1, sb_reuser_stats(ru)->restrictions_lifted,
                     "lifts applied");
        SB_CHECK_INT(1, sb_store_receipt_count(sb_reuser_store(ru), 0),
                     "receipts committed but unsent");
        SB_CHECK_INT(4, sb_testenv_count_messages(&te, ACK_TOPIC),
                     "receipts on " ACK_TOPIC " before the restart");
        sb_reuser_destroy(ru);

        /* 3. A new agent on the same database sends it first, before
         *    it applies what arrived meanwhile. Its positions come from
         *    the database, not from the group, so it joins a new group:
         *    the 2.0.2 mock makes a group its last member left wait out a
         *    session timeout (45 s) before the next join. */
        sb_fakegw_notice(&gw, SB_EV_ERASURE, e_after, PS_B, PS_B);
        sb_fakegw_flush(&gw);
        free(cfg.group_id);
        cfg.group_id = strdup("sb-reuser-ack-desk-restarted");
        SB_CHECK(cfg.group_id, "out of memory");
        ru = sb_reuser_new(&cfg, errstr, sizeof(errstr));
        SB_CHECK(ru, "reuser after restart: %s", errstr);
        run(ru);
        SB_CHECK_INT(2, sb_reuser_stats(ru)->receipts_sent,
                     "receipts sent by the new agent");
        SB_CHECK_INT(0, sb_reuser_stats(ru)->restrictions_lifted,
                     "events applied again by the new agent");
        SB_CHECK_INT(1, sb_reuser_stats(ru)->erasures,
                     "erasures applied by the new agent");
        SB_CHECK_INT(0, sb_store_receipt_count(sb_reuser_store(ru), 0),
                     "receipts unsent after the restart");
        SB_CHECK_INT(6, sb_store_receipt_count(sb_reuser_store(ru), 1),
                     "receipts sent in all");
        n = read_receipts(&te, r, 16);
        SB_CHECK_INT(6, n, "receipts on " ACK_TOPIC " after the restart");
        check_receipt(receipt_for(r, n, e_lift), pub, key_id, schema,
                      "sharebus.rights.restriction-lifted", PS_B, 1, t0);
        check_receipt(receipt_for(r, n, e_after), pub, key_id, schema,
                      "sharebus.rights.erasure", PS_B, 1, t0);
        SB_CHECK(receipt_for(r, n, e_lift) < receipt_for(r, n, e_after),
                 "the receipt left unsent was not sent first");
        receipts_free(r, n);
        printf("6 rights events, 6 signed receipts keyed by event id; the "
               "one unsent at the stop was sent first by the next agent (key "
               "%s)\n",
               key_id);

        sb_reuser_destroy(ru);
        sb_config_release(sb_reuser_cfg_table, &cfg);
        sb_fakegw_release(&gw);
        sb_grant_destroy(g);
        sb_testenv_release(&te);
        return 0;
}
