/*
 * GDPR art. 19, CNIL R3.6-03, R4.3-17, R4.3-20, DESIGN.md §6: the platform
 * team can tell, for one rights event, which reusers that had the person
 * acknowledged it with a receipt signed by their declared key, which are
 * still within the deadline and which are late; a late or forged receipt
 * raises one alert on _sb.alerts, never two.
 *
 * Three reusers; two receive the person, the third's grant is not valid
 * yet. After an erasure, reuser-a applies it and sends its receipt;
 * reuser-b applies it but holds its receipt back:
 *   - status: reuser-a acknowledged (signature verified with its declared
 *     key, applied_at, rows), reuser-b pending with a one-hour deadline,
 *     overdue with a 1 ms one; reuser-c is not listed (never notified);
 *   - watch: one receipt.overdue alert for reuser-b, keyed
 *     "<event id>/reuser-b", naming no subject; a second watch raises none;
 *   - a receipt for reuser-b whose value was altered after signing is
 *     invalid, never acknowledged, whatever the deadline, and raises one
 *     receipt.invalid alert;
 *   - once reuser-b sends its real receipt, both are acknowledged;
 *   - an erasure of a person nobody received notifies nobody, and owes no
 *     receipt;
 *   - the same through the built binary: `rights status` exits 7 while a
 *     receipt is missing or invalid and 0 once all are in, names an
 *     unknown event id, and `rights watch --once` raises nothing twice.
 */
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"
#include "crypto.h"
#include "platform.h"
#include "rights.h"
#include "sample.h"
#include "sign.h"
#include "testutil.h"

#define SUBJECTS 20
#define HOUR_MS  (3600 * 1000LL)

static const char *grant_a =
    "{\"id\": \"g-a\", \"reuser\": \"reuser-a\", \"dataset\": "
    "\"beneficiaries\", \"purposes\": [\"p\"], \"legal_basis\": "
    "\"gdpr-6-1-e\", \"status\": \"approved\", \"fields\": {\"postcode\": "
    "\"keep\"}}";
static const char *grant_b =
    "{\"id\": \"g-b\", \"reuser\": \"reuser-b\", \"dataset\": "
    "\"beneficiaries\", \"purposes\": [\"p\"], \"legal_basis\": "
    "\"gdpr-6-1-e\", \"status\": \"approved\", \"fields\": {\"benefit\": "
    "\"keep\"}}";
/* Valid only from 2099: receives nothing, is told nothing. */
static const char *grant_c =
    "{\"id\": \"g-c\", \"reuser\": \"reuser-c\", \"dataset\": "
    "\"beneficiaries\", \"purposes\": [\"p\"], \"legal_basis\": "
    "\"gdpr-6-1-e\", \"status\": \"approved\", \"valid_from\": "
    "\"2099-01-01T00:00:00Z\", \"fields\": {\"postcode\": \"keep\"}}";

static void run(sb_gateway_t *gw, sb_reuser_t *a, sb_reuser_t *b)
{
        char errstr[512];

        SB_OK_OR_FAIL(
            sb_gateway_run(gw, NULL, SB_TEST_IDLE_MS, errstr, sizeof(errstr)),
            errstr);
        SB_OK_OR_FAIL(
            sb_reuser_run(a, NULL, SB_TEST_IDLE_MS, errstr, sizeof(errstr)),
            errstr);
        SB_OK_OR_FAIL(
            sb_reuser_run(b, NULL, SB_TEST_IDLE_MS, errstr, sizeof(errstr)),
            errstr);
}

/* The text of a NAME.pub file, without its newline. */
static void pub_hex(sb_testenv_t *te, const char *reuser, char *out,
                    size_t size)
{
        char path[600];
        FILE *fp;

        snprintf(path, sizeof(path), "%s/%s.pub", te->dir, reuser);
        fp = fopen(path, "r");
        SB_CHECK(fp && fgets(out, (int)size, fp), "cannot read %s", path);
        fclose(fp);
        out[strcspn(out, "\n")] = '\0';
}

/* The platform declaration, with both receiving reusers' receipt keys. */
static const char *write_platform(sb_testenv_t *te)
{
        static char path[600];
        char a[128], b[128], text[4096];

        pub_hex(te, "reuser-a", a, sizeof(a));
        pub_hex(te, "reuser-b", b, sizeof(b));
        snprintf(text, sizeof(text),
                 "{\"gateway\": [\"sb-gateway.g1\"], \"datasets\": "
                 "{\"beneficiaries\": {\"holders\": [\"holder.g1\"]}}, "
                 "\"reusers\": {"
                 "\"reuser-a\": {\"principals\": [\"reuser-a.g1\"], "
                 "\"receipt_keys\": [\"%s\"]}, "
                 "\"reuser-b\": {\"principals\": [\"reuser-b.g1\"], "
                 "\"receipt_keys\": [\"%s\"]}, "
                 "\"reuser-c\": {\"principals\": [\"reuser-c.g1\"]}}, "
                 "\"grants_dir\": \"%s\", \"schemas_dir\": \"%s\", "
                 "\"replication_factor\": 1}",
                 a, b, te->grants_dir, SB_SCHEMAS_DIR);
        snprintf(path, sizeof(path), "%s",
                 sb_testenv_file(te, "platform.json", text));
        return path;
}

static const sb_rights_ack_t *ack_of(const sb_rights_report_t *rep,
                                     const char *reuser)
{
        size_t i;

        SB_CHECK_INT(1, rep->event_cnt, "events in the report");
        for (i = 0; i < rep->events[0].ack_cnt; i++)
                if (!strcmp(rep->events[0].acks[i].reuser, reuser))
                        return &rep->events[0].acks[i];
        SB_TEST_FAIL("reuser %s is not in the status", reuser);
        return NULL;
}

static void status(sb_rights_t *r, const char *event_id, int64_t deadline_ms,
                   sb_rights_report_t *rep)
{
        char errstr[1024];

        SB_OK_OR_FAIL(sb_rights_scan(r, event_id, deadline_ms, rep, errstr,
                                     sizeof(errstr)),
                      errstr);
}

static void check_state(const sb_rights_report_t *rep, const char *reuser,
                        sb_rights_state_t want, const char *when)
{
        const sb_rights_ack_t *a = ack_of(rep, reuser);
        char what[200];

        snprintf(what, sizeof(what), "%s: state of %s", when, reuser);
        SB_CHECK_STR(sb_rights_state2str(want), sb_rights_state2str(a->state),
                     what);
}

static size_t watch(sb_rights_t *r, int64_t deadline_ms)
{
        char errstr[1024];
        size_t raised;

        SB_OK_OR_FAIL(sb_rights_watch_once(r, deadline_ms, &raised, NULL,
                                           errstr, sizeof(errstr)),
                      errstr);
        return raised;
}

/* Every message on _sb.alerts: a JSON array of {"key", "value"}. */
static json_t *read_alerts(sb_testenv_t *te)
{
        rd_kafka_conf_t *conf = rd_kafka_conf_new();
        rd_kafka_topic_partition_list_t *parts;
        json_t *out = json_array();
        char errstr[512];
        rd_kafka_t *rk;
        int eof = 0, idle = 0;

        rd_kafka_conf_set(conf, "bootstrap.servers", te->mock->bootstraps, NULL,
                          0);
        rd_kafka_conf_set(conf, "group.id", "sb-test-alerts", NULL, 0);
        rd_kafka_conf_set(conf, "enable.partition.eof", "true", NULL, 0);
        rd_kafka_conf_set(conf, "enable.auto.commit", "false", NULL, 0);
        rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
        SB_CHECK(rk, "consumer: %s", errstr);
        parts = rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(parts, SB_RIGHTS_ALERTS_TOPIC, 0)
            ->offset = RD_KAFKA_OFFSET_BEGINNING;
        rd_kafka_assign(rk, parts);
        rd_kafka_topic_partition_list_destroy(parts);
        while (!eof && idle < 100) {
                rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
                json_error_t jerr;
                json_t *v;

                if (!m) {
                        idle++;
                        continue;
                }
                if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF)
                        eof = 1;
                SB_CHECK(!m->err || eof, "consumer: %s",
                         rd_kafka_message_errstr(m));
                if (!m->err) {
                        SB_CHECK(m->key && m->payload, "alert without a key "
                                                       "or a value");
                        v = json_loadb(m->payload, m->len, 0, &jerr);
                        SB_CHECK(v, "alert value is not JSON: %s", jerr.text);
                        json_array_append_new(
                            out, json_pack("{s:s%, s:o, s:s%}", "key", m->key,
                                           m->key_len, "value", v, "text",
                                           m->payload, m->len));
                }
                rd_kafka_message_destroy(m);
        }
        SB_CHECK(eof, "%s: did not reach the end", SB_RIGHTS_ALERTS_TOPIC);
        rd_kafka_consumer_close(rk);
        rd_kafka_destroy(rk);
        return out;
}

/* Checks alert `i` of `alerts`: kind, key, fields, no subject id. */
static void check_alert(const json_t *alerts, size_t i, const char *kind,
                        const char *event_id, const char *reuser,
                        int64_t deadline_ms, const char *subject)
{
        const json_t *al = json_array_get(alerts, i);
        const json_t *v = json_object_get(al, "value");
        char key[128];
        static const char *const times[] = {"notified_at", "detected_at"};
        int64_t ms;
        size_t t;

        snprintf(key, sizeof(key), "%s/%s", event_id, reuser);
        SB_CHECK_STR(key, json_string_value(json_object_get(al, "key")),
                     "alert key");
        SB_CHECK_STR(kind, json_string_value(json_object_get(v, "alert")),
                     "alert kind");
        SB_CHECK_STR(event_id,
                     json_string_value(json_object_get(v, "event_id")),
                     "alert event_id");
        SB_CHECK_STR(reuser, json_string_value(json_object_get(v, "reuser")),
                     "alert reuser");
        SB_CHECK_STR("beneficiaries",
                     json_string_value(json_object_get(v, "dataset")),
                     "alert dataset");
        SB_CHECK_STR("sharebus.rights.erasure",
                     json_string_value(json_object_get(v, "type")),
                     "alert type");
        SB_CHECK_INT(deadline_ms,
                     json_integer_value(json_object_get(v, "deadline_ms")),
                     "alert deadline_ms");
        for (t = 0; t < sizeof(times) / sizeof(times[0]); t++)
                SB_CHECK(json_is_string(json_object_get(v, times[t])) &&
                             !sb_time_parse(json_string_value(
                                                json_object_get(v, times[t])),
                                            &ms),
                         "alert %s: expected an RFC 3339 time", times[t]);
        SB_CHECK(json_string_length(json_object_get(v, "reason")) > 0,
                 "alert without a reason");
        SB_CHECK(
            !strstr(json_string_value(json_object_get(al, "text")), subject),
            "alert names the subject: %s",
            json_string_value(json_object_get(al, "text")));
}

/*
 * A receipt for reuser-b, signed with its own key, whose value is then
 * altered (one bit of applied_at): the signature no longer covers it.
 */
static void publish_tampered_receipt(sb_testenv_t *te, const char *event_id)
{
        const sb_schema_t *schema =
            sb_catalog_by_name(te->cat, SB_RECEIPT_SCHEMA);
        char errstr[512], path[600], sig[SB_SIG_HEXLEN + 1], now[32];
        rd_kafka_conf_t *conf = rd_kafka_conf_new();
        sb_signkey_t *key = NULL;
        sb_buf_t buf = {0};
        avro_value_t v;
        rd_kafka_t *rk;
        json_t *j;

        SB_CHECK(schema, "receipt schema");
        snprintf(path, sizeof(path), "%s/reuser-b.key", te->dir);
        SB_OK_OR_FAIL(sb_signkey_load(path, &key, errstr, sizeof(errstr)),
                      errstr);
        sb_time_format(sb_now_ms(), now);
        j = json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:s}", "event_id",
                      event_id, "reuser", "reuser-b", "dataset",
                      "beneficiaries", "type", "sharebus.rights.erasure",
                      "pseudonym", SB_TEST_PSEUDONYM, "rows", (json_int_t)2,
                      "applied_at", now);
        SB_OK_OR_FAIL(sb_schema_value_new(schema, &v, errstr, sizeof(errstr)),
                      errstr);
        SB_OK_OR_FAIL(
            sb_avrojson_from_json(schema->aj, j, &v, errstr, sizeof(errstr)),
            errstr);
        SB_OK_OR_FAIL(
            sb_schema_encode(schema, &v, &buf, errstr, sizeof(errstr)), errstr);
        SB_OK_OR_FAIL(sb_sign(key, buf.data, buf.len, sig), "sb_sign");
        buf.data[buf.len - 1] ^= 0x01; /* still a valid varint */

        rd_kafka_conf_set(conf, "bootstrap.servers", te->mock->bootstraps, NULL,
                          0);
        rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
        SB_CHECK(rk, "producer: %s", errstr);
        SB_CHECK(!rd_kafka_producev(
                     rk, RD_KAFKA_V_TOPIC("sb.ack.reuser-b"),
                     RD_KAFKA_V_KEY(event_id, strlen(event_id)),
                     RD_KAFKA_V_VALUE(buf.data, buf.len),
                     RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                     RD_KAFKA_V_HEADER("sb_sig", sig, -1),
                     RD_KAFKA_V_HEADER("sb_key_id", sb_signkey_id(key), -1),
                     RD_KAFKA_V_END),
                 "produce the tampered receipt");
        SB_CHECK(rd_kafka_flush(rk, 10000) == 0, "flush");
        rd_kafka_destroy(rk);
        json_decref(j);
        avro_value_decref(&v);
        sb_buf_release(&buf);
        sb_signkey_destroy(key);
}

/*
 * The binary: `sharebus rights ARGS --config admin.json`; returns its exit
 * code, its stdout in `out`.
 */
static int cli(sb_testenv_t *te, const char *admin, const char *args, char *out,
               size_t size)
{
        const char *bin = getenv("SB_BIN") ? getenv("SB_BIN") : "../sharebus";
        char cmd[2048], errpath[600];
        size_t n = 0;
        FILE *fp;
        int c, st;

        SB_CHECK(access(bin, X_OK) == 0, "no sharebus binary at %s", bin);
        snprintf(errpath, sizeof(errpath), "%s/cli.err", te->dir);
        snprintf(cmd, sizeof(cmd), "'%s' rights %s --config '%s' 2>'%s'", bin,
                 args, admin, errpath);
        fp = popen(cmd, "r");
        SB_CHECK(fp, "popen %s", cmd);
        while (n + 1 < size && (c = fgetc(fp)) != EOF)
                out[n++] = (char)c;
        st = pclose(fp);
        SB_CHECK(st != -1 && WIFEXITED(st), "%s: did not exit", cmd);
        /* stderr after stdout, for the messages the checks look at */
        fp = fopen(errpath, "r");
        while (fp && n + 1 < size && (c = fgetc(fp)) != EOF)
                out[n++] = (char)c;
        out[n] = '\0';
        if (fp)
                fclose(fp);
        return WEXITSTATUS(st);
}

int main(void)
{
        char errstr[1024], input[600], subject[16], nobody[16] = "BEN-9999999";
        char event_id[37], nobody_event[37], out[16384], args[256];
        char key_a[SB_KEY_ID_HEXLEN + 1];
        unsigned char pub[SB_SIGN_PUBLIC_BYTES];
        int64_t before, rows_a;
        sb_reuser_cfg_t cfg_a, cfg_b;
        sb_reuser_t *ru_a, *ru_b;
        const sb_rights_ack_t *a;
        sb_rights_report_t rep;
        sb_admin_cfg_t admin;
        char admin_path[600], *text;
        const char *pf_path;
        sb_store_right_t right;
        int found;
        sb_holder_stats_t hs;
        sb_platform_t *pf;
        sb_gateway_t *gw;
        sb_rights_t *r;
        sb_holder_t *h;
        sb_testenv_t te;
        json_t *alerts, *j;
        FILE *fp;
        int rc;

        sb_testenv_init(&te);
        sb_testenv_grant(&te, "a.json", grant_a);
        sb_testenv_grant(&te, "b.json", grant_b);
        sb_testenv_grant(&te, "c.json", grant_c);
        SB_OK_OR_FAIL(sb_mockenv_topic(te.mock, SB_RIGHTS_ALERTS_TOPIC, 1,
                                       errstr, sizeof(errstr)),
                      errstr);

        /* 1. Both receiving reusers hold the person; reuser-b will keep
         *    its receipts back. */
        snprintf(input, sizeof(input), "%s/in.ndjson", te.dir);
        fp = fopen(input, "w+");
        SB_CHECK(fp, "input");
        sb_sample_write(fp, SUBJECTS, 11);
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
        sb_testenv_reuser_cfg(&te, "b.json", &cfg_b);
        ru_a = sb_reuser_new(&cfg_a, errstr, sizeof(errstr));
        SB_CHECK(ru_a, "reuser-a: %s", errstr);
        ru_b = sb_reuser_new(&cfg_b, errstr, sizeof(errstr));
        SB_CHECK(ru_b, "reuser-b: %s", errstr);
        sb_reuser_hold_receipts(ru_b, 1);
        run(gw, ru_a, ru_b);

        /* Subject 9 has two benefit files (every fifth subject does). */
        sb_sample_subject_id(9, subject);
        rows_a = sb_store_count(sb_reuser_store(ru_a), NULL);
        SB_CHECK(rows_a > 0, "reuser-a stored nothing");

        /* 2. The erasure, and one of a person nobody received. */
        before = sb_now_ms();
        SB_OK_OR_FAIL(sb_holder_rights(h, SB_EV_ERASURE, subject, NULL,
                                       event_id, errstr, sizeof(errstr)),
                      errstr);
        SB_OK_OR_FAIL(sb_holder_rights(h, SB_EV_ERASURE, nobody, NULL,
                                       nobody_event, errstr, sizeof(errstr)),
                      errstr);
        run(gw, ru_a, ru_b);
        SB_CHECK_INT(2, rows_a - sb_store_count(sb_reuser_store(ru_a), NULL),
                     "rows reuser-a erased");
        SB_CHECK_INT(1, sb_store_receipt_count(sb_reuser_store(ru_b), 0),
                     "receipts reuser-b holds back");

        /* 3. The platform team's view. */
        pf_path = write_platform(&te);
        memset(&admin, 0, sizeof(admin));
        j = json_pack("{s:o, s:s}", "kafka", sb_mockenv_kafka_json(te.mock),
                      "platform", pf_path);
        SB_OK_OR_FAIL(sb_config_apply(j, "admin config", sb_admin_cfg_table,
                                      &admin, errstr, sizeof(errstr)),
                      errstr);
        SB_CHECK_INT(86400000, admin.receipt_deadline_ms,
                     "default receipt_deadline_ms (one day)");
        text = json_dumps(j, JSON_COMPACT);
        SB_CHECK(text, "out of memory");
        snprintf(admin_path, sizeof(admin_path), "%s",
                 sb_testenv_file(&te, "admin.json", text));
        free(text);
        json_decref(j);
        pf = sb_platform_load(pf_path, errstr, sizeof(errstr));
        SB_CHECK(pf, "platform: %s", errstr);
        r = sb_rights_new(&admin, pf, errstr, sizeof(errstr));
        SB_CHECK(r, "sb_rights_new: %s", errstr);
        SB_CHECK_INT(1, sb_platform_receipt_key_cnt(pf, "reuser-a"),
                     "receipt keys of reuser-a");
        sb_platform_receipt_key(pf, "reuser-a", 0, pub);
        sb_key_id(pub, key_a);

        status(r, event_id, HOUR_MS, &rep);
        SB_CHECK_STR(event_id, rep.events[0].event_id, "event id");
        SB_CHECK_STR("sharebus.rights.erasure", rep.events[0].type, "type");
        SB_CHECK_STR("beneficiaries", rep.events[0].dataset, "dataset");
        SB_CHECK(rep.events[0].notified_at >= before &&
                     rep.events[0].notified_at <= rep.now,
                 "notified_at: expected between the erasure and now");
        SB_CHECK_INT(2, rep.events[0].ack_cnt,
                     "reusers notified (reuser-c never had the person)");
        check_state(&rep, "reuser-a", SB_RIGHTS_ACKNOWLEDGED, "1 h deadline");
        a = ack_of(&rep, "reuser-a");
        SB_CHECK_STR("verified", sb_rights_sig2str(a->receipt.sig),
                     "reuser-a's signature");
        SB_CHECK_STR(key_a, a->receipt.key_id, "reuser-a's key id");
        SB_OK_OR_FAIL(sb_store_right_find(sb_reuser_store(ru_a), event_id,
                                          &found, &right, errstr,
                                          sizeof(errstr)),
                      errstr);
        SB_CHECK(found, "reuser-a has no record of the erasure");
        SB_CHECK_INT(right.rows, a->receipt.rows,
                     "rows in reuser-a's receipt (as in its sb_rights)");
        SB_CHECK_INT(2, a->receipt.rows,
                     "rows in reuser-a's erasure receipt (the person's two "
                     "records: the notice comes before the tombstones)");
        SB_CHECK(a->receipt.applied_at >= before &&
                     a->receipt.applied_at <= rep.now,
                 "reuser-a applied_at: expected between the erasure and now");
        check_state(&rep, "reuser-b", SB_RIGHTS_PENDING, "1 h deadline");
        sb_rights_report_release(&rep);

        status(r, event_id, 1, &rep);
        check_state(&rep, "reuser-a", SB_RIGHTS_ACKNOWLEDGED, "1 ms deadline");
        check_state(&rep, "reuser-b", SB_RIGHTS_OVERDUE, "1 ms deadline");
        sb_rights_report_release(&rep);

        status(r, nobody_event, 1, &rep);
        SB_CHECK_INT(0, rep.events[0].ack_cnt,
                     "reusers notified of a person nobody received");
        sb_rights_report_release(&rep);

        SB_CHECK(sb_rights_scan(r, "00000000-0000-4000-8000-000000000000",
                                HOUR_MS, &rep, errstr,
                                sizeof(errstr)) == SB_ERR_NOT_FOUND &&
                     strstr(errstr, "00000000-0000-4000-8000-000000000000"),
                 "an unknown event id: expected SB_ERR_NOT_FOUND naming it, "
                 "got: %s",
                 errstr);
        sb_rights_report_release(&rep);

        /* 4. One alert for the late receipt, and only one. */
        SB_CHECK_INT(1, watch(r, 1), "alerts raised by the first watch");
        SB_CHECK_INT(0, watch(r, 1), "alerts raised by the second watch");
        alerts = read_alerts(&te);
        SB_CHECK_INT(1, json_array_size(alerts), "alerts on _sb.alerts");
        check_alert(alerts, 0, SB_RIGHTS_ALERT_OVERDUE, event_id, "reuser-b", 1,
                    subject);
        json_decref(alerts);

        /* 5. A receipt altered after signing: invalid, not acknowledged,
         *    whatever the deadline; one receipt.invalid alert. */
        publish_tampered_receipt(&te, event_id);
        status(r, event_id, HOUR_MS, &rep);
        check_state(&rep, "reuser-b", SB_RIGHTS_INVALID, "tampered receipt");
        SB_CHECK(strstr(ack_of(&rep, "reuser-b")->reason, "does not verify"),
                 "reason of the invalid receipt: %s",
                 ack_of(&rep, "reuser-b")->reason);
        sb_rights_report_release(&rep);
        SB_CHECK_INT(1, watch(r, HOUR_MS),
                     "alerts raised for the tampered "
                     "receipt");
        SB_CHECK_INT(0, watch(r, HOUR_MS), "alerts raised again");
        alerts = read_alerts(&te);
        SB_CHECK_INT(2, json_array_size(alerts), "alerts on _sb.alerts");
        check_alert(alerts, 1, SB_RIGHTS_ALERT_INVALID, event_id, "reuser-b",
                    HOUR_MS, subject);
        json_decref(alerts);

        /* 6. The binary while reuser-b's receipt is invalid. */
        snprintf(args, sizeof(args), "status %s", event_id);
        rc = cli(&te, admin_path, args, out, sizeof(out));
        SB_CHECK(rc == SB_EXIT_PENDING && strstr(out, "invalid") &&
                     strstr(out, "acknowledged") &&
                     strstr(out, "2 reuser(s) notified"),
                 "rights status: expected exit 7 and a table, got %d:\n%s", rc,
                 out);
        SB_CHECK(!strstr(out, subject), "rights status names the subject");
        rc = cli(&te, admin_path, "status 00000000-0000-4000-8000-000000000000",
                 out, sizeof(out));
        SB_CHECK(rc == 1 && strstr(out, "no audit entry for event "
                                        "00000000-0000-4000-8000-000000000000"),
                 "rights status of an unknown event: expected exit 1 naming "
                 "it, got %d:\n%s",
                 rc, out);
        snprintf(args, sizeof(args), "status %s", nobody_event);
        rc = cli(&te, admin_path, args, out, sizeof(out));
        SB_CHECK(rc == 0 && strstr(out, "nobody to notify"),
                 "rights status of an event nobody needed: expected exit 0, "
                 "got %d:\n%s",
                 rc, out);

        /* 7. reuser-b sends its real receipt: everyone acknowledged. */
        sb_reuser_hold_receipts(ru_b, 0);
        SB_OK_OR_FAIL(
            sb_reuser_run(ru_b, NULL, SB_TEST_IDLE_MS, errstr, sizeof(errstr)),
            errstr);
        status(r, event_id, 1, &rep);
        check_state(&rep, "reuser-a", SB_RIGHTS_ACKNOWLEDGED, "after release");
        check_state(&rep, "reuser-b", SB_RIGHTS_ACKNOWLEDGED, "after release");
        SB_CHECK_INT(1, ack_of(&rep, "reuser-b")->invalid_cnt,
                     "invalid receipts still counted for reuser-b");
        sb_rights_report_release(&rep);

        snprintf(args, sizeof(args), "status %s --json --deadline 1s",
                 event_id);
        rc = cli(&te, admin_path, args, out, sizeof(out));
        SB_CHECK(rc == 0, "rights status --json: expected exit 0, got %d:\n%s",
                 rc, out);
        j = json_loads(out, JSON_DISABLE_EOF_CHECK, NULL);
        SB_CHECK(j, "rights status --json: not JSON:\n%s", out);
        SB_CHECK_INT(2,
                     json_integer_value(json_object_get(
                         json_object_get(j, "summary"), "acknowledged")),
                     "summary.acknowledged");
        SB_CHECK_INT(1000,
                     json_integer_value(json_object_get(j, "deadline_ms")),
                     "deadline_ms from --deadline 1s");
        json_decref(j);
        rc = cli(&te, admin_path, "watch --once --deadline 1s", out,
                 sizeof(out));
        SB_CHECK(rc == 0 && strstr(out, "raised 0 alert(s)"),
                 "rights watch --once: expected exit 0 and no alert, got "
                 "%d:\n%s",
                 rc, out);
        SB_CHECK_INT(2, sb_testenv_count_messages(&te, SB_RIGHTS_ALERTS_TOPIC),
                     "alerts on _sb.alerts at the end");
        /* 8. A rectification is followed too: the gateway audits it, and
         *    both reusers holding the person acknowledge it. */
        {
                sb_holder_rights_req_t req;
                char rect_id[37], line[4096], other[16];
                json_t *rec = NULL;

                sb_sample_subject_id(3, other);
                fp = fopen(input, "r");
                SB_CHECK(fp, "input");
                while (!rec && fgets(line, sizeof(line), fp)) {
                        rec = json_loads(line, 0, NULL);
                        if (rec && strcmp(json_string_value(json_object_get(
                                              rec, "beneficiary_id")),
                                          other)) {
                                json_decref(rec);
                                rec = NULL;
                        }
                }
                fclose(fp);
                SB_CHECK(rec, "no record of %s in the input", other);
                json_object_set_new(rec, "postcode", json_string("75011"));
                memset(&req, 0, sizeof(req));
                req.type = SB_EV_RECTIFICATION;
                req.record = rec;
                SB_OK_OR_FAIL(sb_holder_rights_ex(h, &req, rect_id, errstr,
                                                  sizeof(errstr)),
                              errstr);
                json_decref(rec);
                run(gw, ru_a, ru_b);
                status(r, rect_id, HOUR_MS, &rep);
                SB_CHECK_STR("sharebus.rights.rectification",
                             rep.events[0].type, "rectification type");
                SB_CHECK_INT(2, rep.events[0].ack_cnt,
                             "reusers sent the rectification");
                check_state(&rep, "reuser-a", SB_RIGHTS_ACKNOWLEDGED,
                            "rectification");
                check_state(&rep, "reuser-b", SB_RIGHTS_ACKNOWLEDGED,
                            "rectification");
                sb_rights_report_release(&rep);
        }

        printf("erasure %s: reuser-a acknowledged (key %s), reuser-b pending, "
               "overdue, invalid, then acknowledged; 2 alerts, none twice; a "
               "rectification acknowledged by both\n",
               event_id, key_a);

        sb_rights_destroy(r);
        sb_platform_destroy(pf);
        sb_config_release(sb_admin_cfg_table, &admin);
        sb_reuser_destroy(ru_a);
        sb_reuser_destroy(ru_b);
        sb_config_release(sb_reuser_cfg_table, &cfg_a);
        sb_config_release(sb_reuser_cfg_table, &cfg_b);
        sb_gateway_destroy(gw);
        sb_holder_destroy(h);
        sb_testenv_release(&te);
        return 0;
}
