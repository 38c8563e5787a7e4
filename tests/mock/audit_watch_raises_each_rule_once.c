/*
 * CNIL R4.3-16, R4.3-17, R4.3-18, R4.3-20, DESIGN.md §9: `sharebus audit
 * watch` applies its documented rules to _sb.audit and _sb.quarantine and
 * raises each problem once on _sb.alerts, in the same pass as the receipt
 * check of `rights watch`.
 *
 * On the mock cluster, chained audit entries as the gateway writes them:
 *   - reuser-a: 1000 records a day for 14 days, then 4000 today: a spike;
 *   - reuser-b: 1000 a day for 14 days, then 2000 today: no spike;
 *   - reuser-c: a delivery inside its grant's validity 5 days ago, and one
 *     today, after its grant's valid_until (two days ago);
 *   - a delivery under a grant the platform does not declare;
 *   - a rights event notified to reuser-a two days ago, no receipt;
 * and on _sb.quarantine 2 messages a day for 14 days, then 150 today.
 * Through the built binary:
 *   - `audit watch --once` raises exactly volume.spike (reuser-a, today),
 *     delivery.outside_validity (keyed by the entry's chain and seq),
 *     delivery.unknown_grant, quarantine.growth (today) and
 *     receipt.overdue, exits 9 and names them; no alert holds a subject
 *     pseudonym;
 *   - a second `audit watch --once` raises none and exits 0;
 *   - `audit watch --file EXPORT --dry-run` on an export of the log says
 *     it would raise the three audit alerts, publishes nothing, exits 9.
 */
#include <limits.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "audit.h"
#include "cli.h"
#include "envelope.h"
#include "proc.h"
#include "testutil.h"
#include "watch.h"

#define DS       "beneficiaries"
#define DAY_MS   SB_WATCH_DAY_MS
#define CHAIN    "gw-1"
#define EVENT_ID "cccccccc-0000-4000-8000-000000000003"
#define PS_A     "0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a"
#define PS_B     "0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b"

static const char *grant_fmt =
    "{\"id\": \"%s\", \"reuser\": \"%s\", \"dataset\": \"beneficiaries\", "
    "\"purposes\": [\"p\"], \"legal_basis\": \"gdpr-6-1-e\", \"status\": "
    "\"approved\", %s\"fields\": {\"postcode\": \"keep\"}}";

static void add_grant(sb_testenv_t *te, const char *id, const char *reuser,
                      const char *window)
{
        char file[64], text[1024];

        snprintf(file, sizeof(file), "%s.json", id);
        snprintf(text, sizeof(text), grant_fmt, id, reuser, window);
        sb_testenv_grant(te, file, text);
}

/* "YYYY-MM-DDTHH:MM:SSZ" and "YYYY-MM-DD" of `ms`. */
static void rfc3339(int64_t ms, char out[32])
{
        time_t t = (time_t)(ms / 1000);
        struct tm tm;

        gmtime_r(&t, &tm);
        strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void day_of(int64_t ms, char out[16])
{
        time_t t = (time_t)(ms / 1000);
        struct tm tm;

        gmtime_r(&t, &tm);
        strftime(out, 16, "%Y-%m-%d", &tm);
}

static rd_kafka_t *producer(sb_testenv_t *te)
{
        rd_kafka_conf_t *conf = rd_kafka_conf_new();
        char errstr[512];
        rd_kafka_t *rk;

        rd_kafka_conf_set(conf, "bootstrap.servers", te->mock->bootstraps, NULL,
                          0);
        rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
        SB_CHECK(rk, "producer: %s", errstr);
        return rk;
}

typedef struct log_s {
        rd_kafka_t *rk;
        sb_audit_chain_t *chain;
        int64_t outside_seq, unknown_seq;
} log_t;

/* Chains `e` (stolen) and produces it to _sb.audit; returns its seq. */
static int64_t append(log_t *lg, json_t *e)
{
        char errstr[512], *text, *cp;

        SB_CHECK(e, "entry: json_pack failed");
        SB_OK_OR_FAIL(sb_audit_chain_append(lg->chain, e, &text, &cp, errstr,
                                            sizeof(errstr)),
                      errstr);
        SB_CHECK(!cp, "no checkpoint without a key");
        SB_CHECK(!rd_kafka_producev(lg->rk, RD_KAFKA_V_TOPIC(SB_AUDIT_TOPIC),
                                    RD_KAFKA_V_KEY(CHAIN, strlen(CHAIN)),
                                    RD_KAFKA_V_VALUE(text, strlen(text)),
                                    RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                    RD_KAFKA_V_END),
                 "produce to %s", SB_AUDIT_TOPIC);
        free(text);
        json_decref(e);
        return sb_audit_chain_seq(lg->chain);
}

/* A delivery entry as the gateway writes it, at `at`. */
static int64_t delivery(log_t *lg, const char *reuser, const char *grant,
                        int64_t records, int64_t at)
{
        return append(
            lg,
            json_pack("{s:s, s:s, s:s, s:s, s:s, s:[s], s:s, s:[s, s], s:I, "
                      "s:I, s:[s, s], s:I, s:I, s:I}",
                      "op", "delivery", "author", "sharebus://gateway/" CHAIN,
                      "dataset", DS, "grant", grant, "reuser", reuser,
                      "purposes", "p", "legal_basis", "gdpr-6-1-e", "fields",
                      "pseudonym", "postcode", "records", (json_int_t)records,
                      "bytes", (json_int_t)records * 120, "subjects", PS_A,
                      PS_B, "first_at", (json_int_t)at - 2000, "last_at",
                      (json_int_t)at - 1000, "at", (json_int_t)at));
}

static void write_log(sb_testenv_t *te, int64_t now, log_t *lg)
{
        char errstr[512];
        int d;

        lg->rk = producer(te);
        lg->chain = sb_audit_chain_new(CHAIN, NULL, 0, errstr, sizeof(errstr));
        SB_CHECK(lg->chain, "chain: %s", errstr);
        for (d = 14; d >= 1; d--) {
                delivery(lg, "reuser-a", "g-a", 1000, now - d * DAY_MS);
                delivery(lg, "reuser-b", "g-b", 1000, now - d * DAY_MS);
        }
        delivery(lg, "reuser-c", "g-c", 10, now - 5 * DAY_MS);
        append(lg, json_pack("{s:s, s:s, s:s, s:s, s:s, s:[s], s:[s], s:s, "
                             "s:s, s:I}",
                             "op", "rights.propagate", "author",
                             "sharebus://gateway/" CHAIN, "event_id", EVENT_ID,
                             "type", "sharebus.rights.erasure", "dataset", DS,
                             "purposes", "p", "notified", "reuser-a",
                             "requested_time", "2026-11-20T09:00:00.000Z",
                             "subject_ps", PS_A, "at",
                             (json_int_t)now - 2 * DAY_MS));
        delivery(lg, "reuser-a", "g-a", 4000, now);
        delivery(lg, "reuser-b", "g-b", 2000, now);
        lg->outside_seq = delivery(lg, "reuser-c", "g-c", 3, now);
        lg->unknown_seq = delivery(lg, "reuser-c", "g-zombie", 2, now);
        SB_CHECK(rd_kafka_flush(lg->rk, 10000) == 0, "flush %s",
                 SB_AUDIT_TOPIC);
        sb_audit_chain_destroy(lg->chain);
        rd_kafka_destroy(lg->rk);
}

/* `count` quarantined messages, stamped `ts`. */
static void quarantine(rd_kafka_t *rk, int count, int64_t ts)
{
        int i;

        for (i = 0; i < count; i++)
                SB_CHECK(!rd_kafka_producev(
                             rk, RD_KAFKA_V_TOPIC(SB_WATCH_QUARANTINE_TOPIC),
                             RD_KAFKA_V_VALUE("not signed", 10),
                             RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                             RD_KAFKA_V_TIMESTAMP(ts + i),
                             RD_KAFKA_V_HEADER("sb_quarantine_reason",
                                               "no signature", -1),
                             RD_KAFKA_V_END),
                         "produce to %s", SB_WATCH_QUARANTINE_TOPIC);
}

/*
 * The binary: `sharebus ARGS` in the test's directory; its exit code, its
 * stdout then its stderr in `out`.
 */
typedef struct alerts_s {
        json_t *by_key; /* key -> value */
        long count;
        int pseudonym_seen;
} alerts_t;

static void on_alert(const rd_kafka_message_t *m, void *opaque)
{
        alerts_t *al = opaque;
        char key[512];
        json_t *v;

        SB_CHECK(m->key && m->key_len < sizeof(key) && m->payload,
                 "alert without a key or a value");
        memcpy(key, m->key, m->key_len);
        key[m->key_len] = '\0';
        if (memmem(m->payload, m->len, PS_A, strlen(PS_A)) ||
            memmem(m->payload, m->len, PS_B, strlen(PS_B)))
                al->pseudonym_seen = 1;
        v = json_loadb(m->payload, m->len, 0, NULL);
        SB_CHECK(json_is_object(v), "alert %s: value is not a JSON object",
                 key);
        json_object_set_new(al->by_key, key, v);
        al->count++;
}

static const json_t *alert(const alerts_t *al, const char *key,
                           const char *kind)
{
        const json_t *v = json_object_get(al->by_key, key);
        int64_t ms;

        if (!v) {
                char *s = json_dumps(al->by_key, JSON_INDENT(2));

                SB_TEST_FAIL("no alert keyed %s on _sb.alerts; there are:\n%s",
                             key, s);
        }
        SB_CHECK_STR(kind, json_string_value(json_object_get(v, "alert")), key);
        SB_CHECK(json_string_length(json_object_get(v, "reason")) > 20,
                 "alert %s without a reason", key);
        SB_CHECK(!sb_time_parse(
                     json_string_value(json_object_get(v, "detected_at")), &ms),
                 "alert %s: detected_at is not an RFC 3339 time", key);
        return v;
}

static int64_t num(const json_t *v, const char *name)
{
        return json_integer_value(json_object_get(v, name));
}

int main(void)
{
        static char out[1 << 16];
        char errstr[512], text[4096], until[32], today[16], key[256];
        rd_kafka_t *rk;
        alerts_t al;
        const json_t *v;
        sb_testenv_t te;
        int64_t now;
        log_t lg;
        json_t *j;
        char *s;
        int rc, d;

        sb_testenv_init(&te);
        now = sb_now_ms();
        rfc3339(now - 2 * DAY_MS, until);
        add_grant(&te, "g-a", "reuser-a", "");
        add_grant(&te, "g-b", "reuser-b", "");
        snprintf(text, sizeof(text),
                 "\"valid_from\": \"2020-01-01T00:00:00Z\", \"valid_until\": "
                 "\"%s\", ",
                 until);
        add_grant(&te, "g-c", "reuser-c", text);
        SB_OK_OR_FAIL(sb_mockenv_topic(te.mock, SB_ALERTS_TOPIC, 1, errstr,
                                       sizeof(errstr)),
                      errstr);
        SB_OK_OR_FAIL(
            sb_mockenv_ack_topic(te.mock, "reuser-a", errstr, sizeof(errstr)),
            errstr);
        snprintf(text, sizeof(text),
                 "{\"gateway\": [\"sb-gateway.g1\"], \"datasets\": "
                 "{\"beneficiaries\": {\"holders\": [\"holder.g1\"]}}, "
                 "\"reusers\": {"
                 "\"reuser-a\": {\"principals\": [\"reuser-a.g1\"]}, "
                 "\"reuser-b\": {\"principals\": [\"reuser-b.g1\"]}, "
                 "\"reuser-c\": {\"principals\": [\"reuser-c.g1\"]}}, "
                 "\"grants_dir\": \"%s\", \"schemas_dir\": \"%s\", "
                 "\"replication_factor\": 1}",
                 te.grants_dir, SB_SCHEMAS_DIR);
        j = json_pack("{s:o, s:s}", "kafka", sb_mockenv_kafka_json(te.mock),
                      "platform", sb_testenv_file(&te, "platform.json", text));
        s = json_dumps(j, JSON_COMPACT);
        SB_CHECK(s, "out of memory");
        sb_testenv_file(&te, "admin.json", s);
        free(s);
        json_decref(j);

        write_log(&te, now, &lg);
        rk = producer(&te);
        for (d = 14; d >= 1; d--)
                quarantine(rk, 2, now - d * DAY_MS);
        quarantine(rk, 150, now - 150);
        SB_CHECK(rd_kafka_flush(rk, 10000) == 0, "flush %s",
                 SB_WATCH_QUARANTINE_TOPIC);
        rd_kafka_destroy(rk);
        day_of(now, today);

        /* 1. The first pass: one alert per problem. */
        rc = sb_testenv_cli(&te, "audit watch --config admin.json --once", out,
                            sizeof(out));
        SB_CHECK(rc == SB_EXIT_ALERTS && strstr(out, "raised 5 alert(s)"),
                 "audit watch --once: expected exit 9 and 5 alerts, got "
                 "%d:\n%s",
                 rc, out);
        memset(&al, 0, sizeof(al));
        al.by_key = json_object();
        sb_testenv_read_topic(&te, SB_ALERTS_TOPIC, on_alert, &al);
        SB_CHECK_INT(5, al.count, "alerts on _sb.alerts after the first pass");
        SB_CHECK(!al.pseudonym_seen, "an alert holds a subject pseudonym");

        snprintf(key, sizeof(key), "volume.spike/reuser-a/%s/%s", DS, today);
        SB_CHECK(strstr(out, key), "--once does not print %s:\n%s", key, out);
        v = alert(&al, key, SB_WATCH_ALERT_SPIKE);
        SB_CHECK_STR("reuser-a",
                     json_string_value(json_object_get(v, "reuser")),
                     "spike reuser");
        SB_CHECK_STR(today, json_string_value(json_object_get(v, "day")),
                     "spike day");
        SB_CHECK_INT(4000, num(v, "records"), "spike records");
        SB_CHECK_INT(1000, num(v, "baseline"), "spike baseline");

        snprintf(key, sizeof(key), "delivery.outside_validity/g-c/%s/%lld",
                 CHAIN, (long long)lg.outside_seq);
        SB_CHECK(strstr(out, key), "--once does not print %s:\n%s", key, out);
        v = alert(&al, key, SB_WATCH_ALERT_OUTSIDE);
        SB_CHECK_STR("reuser-c",
                     json_string_value(json_object_get(v, "reuser")),
                     "outside_validity reuser");
        SB_CHECK_INT(lg.outside_seq, num(v, "seq"), "outside_validity seq");
        SB_CHECK(strstr(json_string_value(json_object_get(v, "reason")), "bug"),
                 "outside_validity: the reason must say it is a bug");

        snprintf(key, sizeof(key), "delivery.unknown_grant/g-zombie/%s/%lld",
                 CHAIN, (long long)lg.unknown_seq);
        alert(&al, key, SB_WATCH_ALERT_UNKNOWN_GRANT);

        snprintf(key, sizeof(key), "quarantine.growth/%s", today);
        v = alert(&al, key, SB_WATCH_ALERT_QUARANTINE);
        SB_CHECK_INT(150, num(v, "count"), "quarantined today");
        SB_CHECK_INT(2, num(v, "baseline"), "quarantine baseline");

        v = alert(&al, EVENT_ID "/reuser-a", "receipt.overdue");
        SB_CHECK_STR(EVENT_ID,
                     json_string_value(json_object_get(v, "event_id")),
                     "receipt alert event");

        /* 2. The second pass finds the same problems: raises nothing. */
        rc = sb_testenv_cli(&te, "audit watch --config admin.json --once", out,
                            sizeof(out));
        SB_CHECK(rc == 0 && strstr(out, "raised 0 alert(s)"),
                 "second audit watch --once: expected exit 0 and no alert, "
                 "got %d:\n%s",
                 rc, out);
        SB_CHECK_INT(5, sb_testenv_count_messages(&te, SB_ALERTS_TOPIC),
                     "alerts on _sb.alerts after the second pass");

        /* 3. On an export, without Kafka: the audit rules only. */
        rc = sb_testenv_cli(
            &te, "audit export --config admin.json --out audit.jsonl", out,
            sizeof(out));
        SB_CHECK_INT(0, rc, "audit export");
        rc =
            sb_testenv_cli(&te,
                           "audit watch --config admin.json --file audit.jsonl "
                           "--dry-run",
                           out, sizeof(out));
        SB_CHECK(rc == SB_EXIT_ALERTS &&
                     strstr(out, "would raise volume.spike") &&
                     strstr(out, "would raise delivery.outside_validity") &&
                     strstr(out, "would raise delivery.unknown_grant") &&
                     strstr(out, "3 alert(s) would be raised") &&
                     !strstr(out, "quarantine.growth/") && !strstr(out, PS_A),
                 "audit watch --dry-run: expected exit 9 and the three audit "
                 "alerts, got %d:\n%s",
                 rc, out);
        SB_CHECK_INT(5, sb_testenv_count_messages(&te, SB_ALERTS_TOPIC),
                     "alerts on _sb.alerts after the dry run");

        printf("audit watch raised volume.spike, delivery.outside_validity, "
               "delivery.unknown_grant, quarantine.growth and "
               "receipt.overdue once each, nothing on a second pass, and "
               "the dry run on an export named the three audit alerts\n");
        json_decref(al.by_key);
        sb_testenv_release(&te);
        return 0;
}
