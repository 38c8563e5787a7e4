#include "fakegw.h"

#include "avrojson.h"
#include "envelope.h"
#include "schema.h"

static void sb_fakegw_dr(rd_kafka_t *rk, const rd_kafka_message_t *m,
                         void *opaque)
{
        sb_fakegw_t *gw = opaque;

        (void)rk;
        if (m->err)
                gw->failed++;
}

void sb_fakegw_init(sb_fakegw_t *gw, sb_testenv_t *te, const sb_grant_t *g)
{
        rd_kafka_conf_t *conf = rd_kafka_conf_new();
        char errstr[512];

        memset(gw, 0, sizeof(*gw));
        gw->g = g;
        gw->rights = sb_catalog_by_name(te->cat, SB_RIGHTS_SCHEMA);
        SB_CHECK(gw->rights, "rights schema");
        SB_OK_OR_FAIL(
            sb_schema_value_new(g->out, &gw->rec, errstr, sizeof(errstr)),
            errstr);
        SB_OK_OR_FAIL(
            sb_schema_value_new(gw->rights, &gw->ev, errstr, sizeof(errstr)),
            errstr);
        rd_kafka_conf_set(conf, "bootstrap.servers", te->mock->bootstraps, NULL,
                          0);
        rd_kafka_conf_set_dr_msg_cb(conf, sb_fakegw_dr);
        rd_kafka_conf_set_opaque(conf, gw);
        gw->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
        SB_CHECK(gw->rk, "producer: %s", errstr);
}

void sb_fakegw_release(sb_fakegw_t *gw)
{
        rd_kafka_destroy(gw->rk);
        avro_value_decref(&gw->rec);
        avro_value_decref(&gw->ev);
        sb_buf_release(&gw->buf);
}

/* One message, in the partition of the key's pseudonym. */
static void sb_fakegw_send(sb_fakegw_t *gw, const char *key,
                           sb_event_type_t type, const char *event_id,
                           const char *ps, const sb_schema_t *schema,
                           avro_value_t *v)
{
        rd_kafka_headers_t *h;
        char errstr[512];
        sb_envelope_t env;

        memset(&env, 0, sizeof(env));
        sb_envelope_stamp(&env);
        if (event_id)
                snprintf(env.id, sizeof(env.id), "%s", event_id);
        env.type = type;
        env.schema_fp = schema->fingerprint;
        snprintf(env.source, sizeof(env.source), "sharebus://gateway/test");
        snprintf(env.subject, sizeof(env.subject), "%s", ps);
        h = sb_envelope_headers(&env);
        SB_OK_OR_FAIL(
            sb_schema_encode(schema, v, &gw->buf, errstr, sizeof(errstr)),
            errstr);
        SB_CHECK(!rd_kafka_producev(gw->rk, RD_KAFKA_V_TOPIC(gw->g->topic),
                                    RD_KAFKA_V_PARTITION(sb_kafka_partition_for(
                                        key, strlen(key), 3)),
                                    RD_KAFKA_V_KEY(key, strlen(key)),
                                    RD_KAFKA_V_VALUE(gw->buf.data, gw->buf.len),
                                    RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                    RD_KAFKA_V_HEADERS(h), RD_KAFKA_V_END),
                 "produce to %s", gw->g->topic);
}

void sb_fakegw_record(sb_fakegw_t *gw, sb_event_type_t type,
                      const char *event_id, const char *ps, const char *rid,
                      const char *postcode, int household)
{
        char key[128], errstr[512];
        json_t *j;

        j = json_pack("{s:s, s:s, s:i}", "pseudonym", ps, "postcode", postcode,
                      "household_size", household);
        SB_OK_OR_FAIL(sb_avrojson_from_json(gw->g->out->aj, j, &gw->rec, errstr,
                                            sizeof(errstr)),
                      errstr);
        json_decref(j);
        snprintf(key, sizeof(key), "%s/%s", ps, rid);
        sb_fakegw_send(gw, key, type, event_id, ps, gw->g->out, &gw->rec);
}

void sb_fakegw_notice(sb_fakegw_t *gw, sb_event_type_t type,
                      const char *event_id, const char *ps, const char *subject)
{
        char errstr[512], fresh[37];
        json_t *j;

        if (!event_id) {
                sb_uuid4(fresh);
                event_id = fresh;
        }
        j = json_pack("{s:s, s:s, s:[], s:s}", "event_id", event_id, "subject",
                      subject, "purposes", "requested_at",
                      "2026-12-01T10:00:00.000Z");
        SB_OK_OR_FAIL(sb_avrojson_from_json(gw->rights->aj, j, &gw->ev, errstr,
                                            sizeof(errstr)),
                      errstr);
        json_decref(j);
        sb_fakegw_send(gw, ps, type, event_id, ps, gw->rights, &gw->ev);
}

void sb_fakegw_flush(sb_fakegw_t *gw)
{
        SB_CHECK(rd_kafka_flush(gw->rk, 10000) == 0, "flush");
        SB_CHECK_INT(0, gw->failed, "messages the mock cluster refused");
}
