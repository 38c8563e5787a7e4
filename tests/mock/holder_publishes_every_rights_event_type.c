/*
 * DESIGN.md §6, docs/messages.md: the holder publishes every kind of rights
 * event on sb.in.<dataset> exactly as the gateway reads it. A plain
 * consumer reads the topic back and checks, for each event: the key is the
 * subject id, ce_type names the right, ce_id is the event id the holder
 * returned, sb_schema is the fingerprint of the schema the value is
 * written with; a RightsEvent carries the same event id, the subject and
 * the purposes; a rectification is the corrected record under the dataset
 * schema (ce_subject its record id); a record delete names the record in
 * ce_subject.
 */
#include <inttypes.h>

#include "envelope.h"
#include "testutil.h"

#define RECORD_ID "45f30782-64aa-46af-9835-e8e579f63f01"
#define DELETED   "85158b84-49be-4514-abd8-fb89932ea443"

static const char *rectified =
    "{\"file_id\":\"" RECORD_ID "\",\"beneficiary_id\":\"BEN-0000001\","
    "\"last_name\":\"Bernard\",\"first_name\":\"Jules\","
    "\"birth_date\":\"1977-05-23\",\"email\":\"user1@example.org\","
    "\"phone\":\"+33610515716\",\"postcode\":\"69003\","
    "\"household_size\":5,\"benefit\":\"HOUSING_AID\","
    "\"monthly_amount\":\"623.52\",\"income_bracket\":6,"
    "\"opened_on\":\"2025-07-01\",\"updated_at\":\"2026-11-25T09:00:00Z\"}";

typedef struct expect_s {
        const char *ce_type; /* as the gateway reads it */
        const char *key;
        const char *ce_subject;
        const char *purposes;     /* JSON; NULL for a rectification */
        const char *requested_at; /* NULL: any */
        char event_id[37];
        int seen;
} expect_t;

static expect_t expects[] = {
    {"sharebus.rights.erasure", "BEN-0000000", "BEN-0000000", "[]", NULL, "",
     0},
    {"sharebus.rights.objection", "BEN-0000002", "BEN-0000002",
     "[\"research\",\"energy-voucher-delivery\"]", "2026-11-25T10:00:00.000Z",
     "", 0},
    {"sharebus.rights.consent-withdrawn", "BEN-0000003", "BEN-0000003",
     "[\"housing-policy-statistics\"]", NULL, "", 0},
    {"sharebus.rights.consent-given", "BEN-0000003", "BEN-0000003", "[]", NULL,
     "", 0},
    {"sharebus.rights.restriction", "BEN-0000005", "BEN-0000005", "[]", NULL,
     "", 0},
    {"sharebus.rights.restriction-lifted", "BEN-0000005", "BEN-0000005", "[]",
     NULL, "", 0},
    {"sharebus.rights.rectification", "BEN-0000001", RECORD_ID, NULL, NULL, "",
     0},
    {"sharebus.record.delete", "BEN-0000004", DELETED, "[]",
     "2026-11-24T16:30:00.000Z", "", 0},
};

#define NEXPECTS (sizeof(expects) / sizeof(expects[0]))

/* Header `name` of `m` as a string (static buffer), or NULL. */
static const char *header(const rd_kafka_message_t *m, const char *name)
{
        static char buf[300];
        rd_kafka_headers_t *hdrs;
        const void *v;
        size_t len;

        if (rd_kafka_message_headers(m, &hdrs) ||
            rd_kafka_header_get_last(hdrs, name, &v, &len) ||
            len >= sizeof(buf))
                return NULL;
        memcpy(buf, v, len);
        buf[len] = '\0';
        return buf;
}

/* Publishes one event of each type, the way `holder rights` does. */
static void publish_all(sb_holder_t *h)
{
        sb_holder_rights_req_t req;
        json_t *purposes, *record;
        char errstr[1024];
        int64_t at;

        /* The demo's and the tests' call keeps working. */
        SB_OK_OR_FAIL(sb_holder_rights(h, SB_EV_ERASURE, "BEN-0000000", NULL,
                                       expects[0].event_id, errstr,
                                       sizeof(errstr)),
                      errstr);

        memset(&req, 0, sizeof(req));
        req.type = SB_EV_OBJECTION;
        req.subject = "BEN-0000002";
        purposes = json_pack("[s,s]", "research", "energy-voucher-delivery");
        req.purposes = purposes;
        SB_CHECK(sb_time_parse("2026-11-25T10:00:00Z", &at) == 0, "time");
        req.requested_at = at;
        SB_OK_OR_FAIL(sb_holder_rights_ex(h, &req, expects[1].event_id, errstr,
                                          sizeof(errstr)),
                      errstr);
        json_decref(purposes);

        purposes = json_pack("[s]", "housing-policy-statistics");
        SB_OK_OR_FAIL(sb_holder_rights(
                          h, SB_EV_CONSENT_WITHDRAWN, "BEN-0000003", purposes,
                          expects[2].event_id, errstr, sizeof(errstr)),
                      errstr);
        json_decref(purposes);
        SB_OK_OR_FAIL(sb_holder_rights(h, SB_EV_CONSENT_GIVEN, "BEN-0000003",
                                       NULL, expects[3].event_id, errstr,
                                       sizeof(errstr)),
                      errstr);
        SB_OK_OR_FAIL(sb_holder_rights(h, SB_EV_RESTRICTION, "BEN-0000005",
                                       NULL, expects[4].event_id, errstr,
                                       sizeof(errstr)),
                      errstr);
        SB_OK_OR_FAIL(sb_holder_rights(h, SB_EV_RESTRICTION_LIFTED,
                                       "BEN-0000005", NULL, expects[5].event_id,
                                       errstr, sizeof(errstr)),
                      errstr);

        record = json_loads(rectified, 0, NULL);
        SB_CHECK(record, "rectified record");
        memset(&req, 0, sizeof(req));
        req.type = SB_EV_RECTIFICATION;
        req.record = record;
        req.subject = "BEN-0000001"; /* optional, must match */
        SB_OK_OR_FAIL(sb_holder_rights_ex(h, &req, expects[6].event_id, errstr,
                                          sizeof(errstr)),
                      errstr);
        json_decref(record);

        memset(&req, 0, sizeof(req));
        req.type = SB_EV_RECORD_DELETE;
        req.subject = "BEN-0000004";
        req.record_id = DELETED;
        SB_CHECK(sb_time_parse("2026-11-24T17:30:00+01:00", &at) == 0, "time");
        req.requested_at = at;
        SB_OK_OR_FAIL(sb_holder_rights_ex(h, &req, expects[7].event_id, errstr,
                                          sizeof(errstr)),
                      errstr);
}

/* Checks one message read back against what was published. */
static void check_message(sb_testenv_t *te, const rd_kafka_message_t *m)
{
        const sb_schema_t *rights =
            sb_catalog_by_name(te->cat, SB_RIGHTS_SCHEMA);
        const sb_schema_t *dataset =
            sb_catalog_dataset(te->cat, "beneficiaries");
        const sb_schema_t *s;
        const char *v = header(m, "ce_id");
        char errstr[1024], key[300], ce_id[64], *end;
        avro_value_t value;
        json_t *json;
        expect_t *e = NULL;
        uint64_t fp;
        size_t i;

        SB_CHECK(v && strlen(v) < sizeof(ce_id), "a message without ce_id");
        strcpy(ce_id, v);
        for (i = 0; i < NEXPECTS; i++)
                if (!strcmp(expects[i].event_id, ce_id))
                        e = &expects[i];
        SB_CHECK(e, "ce_id %s is no event id the holder returned", ce_id);
        SB_CHECK(!e->seen, "event %s read twice", ce_id);
        e->seen = 1;

        SB_CHECK(m->key_len < sizeof(key), "key too long");
        memcpy(key, m->key, m->key_len);
        key[m->key_len] = '\0';
        SB_CHECK_STR(e->key, key, "key (the subject id)");
        SB_CHECK_STR(e->ce_type, header(m, "ce_type"), "ce_type");
        SB_CHECK_STR(e->ce_subject, header(m, "ce_subject"), "ce_subject");
        SB_CHECK_STR("1.0", header(m, "ce_specversion"), "ce_specversion");
        SB_CHECK_STR("application/avro", header(m, "content-type"),
                     "content-type");
        SB_CHECK_STR("sharebus://holder/sharebus-holder/beneficiaries",
                     header(m, "ce_source"), "ce_source");

        s = e->purposes ? rights : dataset;
        v = header(m, "sb_schema");
        SB_CHECK(v && strlen(v) == 16, "sb_schema of %s", e->ce_type);
        fp = strtoull(v, &end, 16);
        SB_CHECK(!*end && fp == s->fingerprint,
                 "%s: sb_schema %s is not the fingerprint of %s", e->ce_type, v,
                 s->fullname);

        /* The value decodes with that schema alone. */
        SB_OK_OR_FAIL(sb_schema_value_new(s, &value, errstr, sizeof(errstr)),
                      errstr);
        SB_OK_OR_FAIL(sb_schema_decode(s, m->payload, m->len, &value, errstr,
                                       sizeof(errstr)),
                      errstr);
        SB_OK_OR_FAIL(
            sb_avrojson_to_json(s->aj, &value, &json, errstr, sizeof(errstr)),
            errstr);
        avro_value_decref(&value);

        if (e->purposes) {
                json_t *want = json_loads(e->purposes, 0, NULL);
                char *got =
                    json_dumps(json_object_get(json, "purposes"), JSON_COMPACT);

                SB_CHECK_STR(
                    ce_id, json_string_value(json_object_get(json, "event_id")),
                    "event_id in the value");
                SB_CHECK_STR(
                    e->key, json_string_value(json_object_get(json, "subject")),
                    "subject in the value");
                SB_CHECK(json_equal(want, json_object_get(json, "purposes")),
                         "%s: purposes: expected %s, got %s", e->ce_type,
                         e->purposes, got);
                if (e->requested_at)
                        SB_CHECK_STR(e->requested_at,
                                     json_string_value(
                                         json_object_get(json, "requested_at")),
                                     "requested_at");
                free(got);
                json_decref(want);
        } else {
                json_t *want = json_loads(rectified, 0, NULL);
                const char *f[] = {"file_id", "beneficiary_id", "postcode",
                                   "monthly_amount", "birth_date"};

                for (i = 0; i < sizeof(f) / sizeof(f[0]); i++)
                        SB_CHECK_STR(
                            json_string_value(json_object_get(want, f[i])),
                            json_string_value(json_object_get(json, f[i])),
                            f[i]);
                json_decref(want);
        }
        json_decref(json);
}

int main(void)
{
        rd_kafka_topic_partition_list_t *parts;
        rd_kafka_conf_t *conf;
        sb_testenv_t te;
        sb_holder_t *h;
        rd_kafka_t *rk;
        char errstr[1024];
        int eofs = 0, idle = 0, read = 0, i;

        sb_testenv_init(&te);
        h = sb_holder_new(&te.holder_cfg, "beneficiaries", errstr,
                          sizeof(errstr));
        SB_CHECK(h, "holder: %s", errstr);
        publish_all(h);
        sb_holder_destroy(h);

        conf = rd_kafka_conf_new();
        rd_kafka_conf_set(conf, "bootstrap.servers", te.mock->bootstraps, NULL,
                          0);
        rd_kafka_conf_set(conf, "group.id", "sb-test-rights-reader", NULL, 0);
        rd_kafka_conf_set(conf, "isolation.level", "read_committed", NULL, 0);
        rd_kafka_conf_set(conf, "enable.partition.eof", "true", NULL, 0);
        rd_kafka_conf_set(conf, "enable.auto.commit", "false", NULL, 0);
        rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
        SB_CHECK(rk, "consumer: %s", errstr);
        parts = rd_kafka_topic_partition_list_new(3);
        for (i = 0; i < 3; i++)
                rd_kafka_topic_partition_list_add(parts, "sb.in.beneficiaries",
                                                  i)
                    ->offset = RD_KAFKA_OFFSET_BEGINNING;
        rd_kafka_assign(rk, parts);
        while (eofs < parts->cnt && idle < 100) {
                rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);

                if (!m) {
                        idle++;
                        continue;
                }
                if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                        eofs++;
                } else {
                        SB_CHECK(!m->err, "consume: %s",
                                 rd_kafka_message_errstr(m));
                        check_message(&te, m);
                        read++;
                }
                rd_kafka_message_destroy(m);
        }
        SB_CHECK(eofs == parts->cnt,
                 "did not reach the end of every partition");
        rd_kafka_topic_partition_list_destroy(parts);
        rd_kafka_consumer_close(rk);
        rd_kafka_destroy(rk);

        SB_CHECK_INT(NEXPECTS, read, "events on sb.in.beneficiaries");
        for (i = 0; i < (int)NEXPECTS; i++)
                SB_CHECK(expects[i].seen, "%s event %s never arrived",
                         expects[i].ce_type, expects[i].event_id);
        sb_testenv_release(&te);
        return 0;
}
