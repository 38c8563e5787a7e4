/*
 * DESIGN.md §9, CNIL R3.4-04, R3.4-05, R4.3-21, R4.3-22, R5.4-14,
 * R5.4-18…24: a person can be told which reusers received which of their
 * data, when, why, and where their requests stand; the public, which
 * reusers receive data and how much; all from _sb.audit as the gateway
 * writes it (chained entries, a signed checkpoint).
 *
 * A writer with the platform's audit key chains, in one transaction,
 * deliveries to reuser-a (Alice and Bob) and reuser-b (Bob only), an
 * exclusion of Alice from reuser-b (she objected), and one erasure request
 * each for Alice (notified: reuser-a) and Bob (notified: reuser-b).
 * reuser-a acknowledges Alice's erasure with a receipt signed by its
 * declared key. Through the built binary:
 *   - `transparency subject` Alice --json: reuser-a only, with the fields
 *     delivered and their docs from the dataset schema, purposes, legal
 *     basis, grant; the objection; her request acknowledged by reuser-a
 *     (receipt verified on sb.ack.reuser-a); nothing of Bob's, no
 *     pseudonym, not her own id;
 *   - --html: her id in the heading only;
 *   - on an export (--file), the same recipients, and the request
 *     "notified", receipts not checked;
 *   - `transparency registry --json`: both reusers, their granted fields,
 *     and this month's records and distinct subjects;
 *   - `audit stats --json`: the same day's volumes and the exclusion.
 */
#include <limits.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "audit.h"
#include "cli.h"
#include "envelope.h"
#include "proc.h"
#include "sign.h"
#include "testutil.h"

#define ALICE    "BEN-0000001"
#define BOB      "BEN-0000002"
#define DS       "beneficiaries"
#define EV_ALICE "aaaaaaaa-0000-4000-8000-000000000001"
#define EV_BOB   "bbbbbbbb-0000-4000-8000-000000000002"

static const char *grant_a =
    "{\"id\": \"g-a\", \"reuser\": \"reuser-a\", \"dataset\": "
    "\"beneficiaries\", \"purposes\": [\"housing-statistics\"], "
    "\"legal_basis\": \"gdpr-6-1-e\", \"status\": \"approved\", \"fields\": "
    "{\"postcode\": \"keep\", \"benefit\": \"keep\"}}";
static const char *grant_b =
    "{\"id\": \"g-b\", \"reuser\": \"reuser-b\", \"dataset\": "
    "\"beneficiaries\", \"purposes\": [\"energy-vouchers\"], "
    "\"legal_basis\": \"gdpr-6-1-c\", \"status\": \"approved\", \"fields\": "
    "{\"household_size\": \"keep\", \"email\": \"keep\"}}";

static void check_kafka_error(rd_kafka_error_t *error, const char *what)
{
        if (error) {
                char msg[512];

                snprintf(msg, sizeof(msg), "%s", rd_kafka_error_string(error));
                rd_kafka_error_destroy(error);
                SB_TEST_FAIL("%s: %s", what, msg);
        }
}

static void produce(rd_kafka_t *rk, const char *topic, const char *key,
                    const void *value, size_t len, rd_kafka_headers_t *h)
{
        SB_CHECK(!rd_kafka_producev(
                     rk, RD_KAFKA_V_TOPIC(topic),
                     RD_KAFKA_V_KEY(key, strlen(key)),
                     RD_KAFKA_V_VALUE((void *)value, len),
                     RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                     RD_KAFKA_V_HEADERS(h ? h : rd_kafka_headers_new(0)),
                     RD_KAFKA_V_END),
                 "produce to %s", topic);
}

static rd_kafka_t *producer(sb_testenv_t *te, const char *txid)
{
        rd_kafka_conf_t *conf = rd_kafka_conf_new();
        char errstr[512];
        rd_kafka_t *rk;

        rd_kafka_conf_set(conf, "bootstrap.servers", te->mock->bootstraps, NULL,
                          0);
        if (txid)
                SB_CHECK(rd_kafka_conf_set(conf, "transactional.id", txid,
                                           errstr,
                                           sizeof(errstr)) == RD_KAFKA_CONF_OK,
                         "transactional.id: %s", errstr);
        rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
        SB_CHECK(rk, "producer: %s", errstr);
        if (txid)
                check_kafka_error(rd_kafka_init_transactions(rk, 30000),
                                  "init_transactions");
        return rk;
}

/* The audit pseudonym of `id` (static buffer). */
static const char *ps_of(sb_testenv_t *te, const char *id)
{
        static char out[SB_PSEUDONYM_HEXLEN + 1];
        sb_pseudonymiser_t *ps = sb_audit_pseudonymiser_new(te->key, DS);

        SB_CHECK(ps, "out of memory");
        sb_pseudonymise(ps, id, strlen(id), out);
        sb_pseudonymiser_destroy(ps);
        return out;
}

/* Pseudonyms of the ids, sorted, as the gateway lists them. */
static json_t *subjects(sb_testenv_t *te, const char *id1, const char *id2)
{
        char a[SB_PSEUDONYM_HEXLEN + 1], b[SB_PSEUDONYM_HEXLEN + 1];

        snprintf(a, sizeof(a), "%s", ps_of(te, id1));
        if (!id2)
                return json_pack("[s]", a);
        snprintf(b, sizeof(b), "%s", ps_of(te, id2));
        return strcmp(a, b) < 0 ? json_pack("[s, s]", a, b)
                                : json_pack("[s, s]", b, a);
}

/* The log: one transaction of chained entries, then a checkpoint. */
static void write_log(sb_testenv_t *te, const sb_signkey_t *key, int64_t now)
{
        char errstr[512], *text, *cp;
        sb_audit_chain_t *chain;
        rd_kafka_t *rk = producer(te, "gw-1");
        json_t *entries[6];
        size_t i;
        const char *author = "sharebus://gateway/gw-1";

        entries[0] = json_pack(
            "{s:s, s:s, s:s, s:s, s:s, s:[s], s:s, s:[s, s, s], s:i, s:i, "
            "s:o, s:I, s:I}",
            "op", "delivery", "author", author, "dataset", DS, "grant", "g-a",
            "reuser", "reuser-a", "purposes", "housing-statistics",
            "legal_basis", "gdpr-6-1-e", "fields", "pseudonym", "postcode",
            "benefit", "records", 3, "bytes", 420, "subjects",
            subjects(te, ALICE, BOB), "first_at", (json_int_t)now - 2000,
            "last_at", (json_int_t)now - 1000);
        entries[1] = json_pack(
            "{s:s, s:s, s:s, s:s, s:s, s:[s], s:s, s:[s, s, s], s:i, s:i, "
            "s:o, s:I, s:I}",
            "op", "delivery", "author", author, "dataset", DS, "grant", "g-b",
            "reuser", "reuser-b", "purposes", "energy-vouchers", "legal_basis",
            "gdpr-6-1-c", "fields", "pseudonym", "household_size", "email",
            "records", 1, "bytes", 150, "subjects", subjects(te, BOB, NULL),
            "first_at", (json_int_t)now - 2000, "last_at",
            (json_int_t)now - 1000);
        entries[2] =
            json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:i, s:o}", "op",
                      "exclusion", "author", author, "dataset", DS, "grant",
                      "g-b", "reuser", "reuser-b", "reason", "objection",
                      "records", 2, "subjects", subjects(te, ALICE, NULL));
        entries[3] = json_pack(
            "{s:s, s:s, s:s, s:s, s:s, s:[], s:[s], s:s, s:s}", "op",
            "rights.propagate", "author", author, "event_id", EV_ALICE, "type",
            "sharebus.rights.erasure", "dataset", DS, "purposes", "notified",
            "reuser-a", "requested_time", "2026-11-20T09:00:00.000Z",
            "subject_ps", ps_of(te, ALICE));
        entries[4] =
            json_pack("{s:s, s:s, s:s, s:s, s:s, s:[], s:[s], s:s, s:s}", "op",
                      "rights.propagate", "author", author, "event_id", EV_BOB,
                      "type", "sharebus.rights.erasure", "dataset", DS,
                      "purposes", "notified", "reuser-b", "requested_time",
                      "2026-11-21T09:00:00.000Z", "subject_ps", ps_of(te, BOB));
        entries[5] =
            json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "op",
                      "grant.change", "author", "sharebus://admin", "grant_id",
                      "g-a", "reuser", "reuser-a", "dataset", DS, "change",
                      "created", "status", "approved");

        chain = sb_audit_chain_new("gw-1", key, 100, errstr, sizeof(errstr));
        SB_CHECK(chain, "chain: %s", errstr);
        check_kafka_error(rd_kafka_begin_transaction(rk), "begin");
        sb_audit_chain_mark(chain);
        for (i = 0; i < sizeof(entries) / sizeof(entries[0]); i++) {
                SB_CHECK(entries[i], "entry %zu", i);
                SB_OK_OR_FAIL(sb_audit_chain_append(chain, entries[i], &text,
                                                    &cp, errstr,
                                                    sizeof(errstr)),
                              errstr);
                produce(rk, SB_AUDIT_TOPIC, "gw-1", text, strlen(text), NULL);
                SB_CHECK(!cp, "no checkpoint expected before the end");
                free(text);
                json_decref(entries[i]);
        }
        SB_OK_OR_FAIL(
            sb_audit_chain_checkpoint(chain, &cp, errstr, sizeof(errstr)),
            errstr);
        SB_CHECK(cp, "a checkpoint on close");
        produce(rk, SB_AUDIT_TOPIC, "gw-1", cp, strlen(cp), NULL);
        free(cp);
        check_kafka_error(rd_kafka_commit_transaction(rk, 30000), "commit");
        sb_audit_chain_destroy(chain);
        rd_kafka_destroy(rk);
}

/* reuser-a's receipt for Alice's erasure, signed with its key. */
static void write_receipt(sb_testenv_t *te, const sb_signkey_t *key)
{
        const sb_schema_t *schema =
            sb_catalog_by_name(te->cat, SB_RECEIPT_SCHEMA);
        char errstr[512], sig[SB_SIG_HEXLEN + 1], now[32];
        rd_kafka_headers_t *h = rd_kafka_headers_new(2);
        rd_kafka_t *rk = producer(te, NULL);
        sb_buf_t buf = {0};
        avro_value_t v;
        json_t *j;

        SB_CHECK(schema, "receipt schema");
        sb_time_format(sb_now_ms(), now);
        j = json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:s}", "event_id",
                      EV_ALICE, "reuser", "reuser-a", "dataset", DS, "type",
                      "sharebus.rights.erasure", "pseudonym", SB_TEST_PSEUDONYM,
                      "rows", (json_int_t)1, "applied_at", now);
        SB_OK_OR_FAIL(sb_schema_value_new(schema, &v, errstr, sizeof(errstr)),
                      errstr);
        SB_OK_OR_FAIL(
            sb_avrojson_from_json(schema->aj, j, &v, errstr, sizeof(errstr)),
            errstr);
        SB_OK_OR_FAIL(
            sb_schema_encode(schema, &v, &buf, errstr, sizeof(errstr)), errstr);
        SB_OK_OR_FAIL(sb_sign(key, buf.data, buf.len, sig), "sb_sign");
        rd_kafka_header_add(h, "sb_sig", -1, sig, -1);
        rd_kafka_header_add(h, "sb_key_id", -1, sb_signkey_id(key), -1);
        produce(rk, "sb.ack.reuser-a", EV_ALICE, buf.data, buf.len, h);
        SB_CHECK(rd_kafka_flush(rk, 10000) == 0, "flush");
        rd_kafka_destroy(rk);
        json_decref(j);
        avro_value_decref(&v);
        sb_buf_release(&buf);
}

/* The hex public key of a key pair saved as dir/name.{key,pub}. */
static sb_signkey_t *keypair(sb_testenv_t *te, const char *name, char *pub,
                             size_t size)
{
        char errstr[512], sec[600], pubpath[600];
        sb_signkey_t *key = sb_signkey_generate();
        FILE *fp;

        SB_CHECK(key, "out of memory");
        snprintf(sec, sizeof(sec), "%s/%s.key", te->dir, name);
        snprintf(pubpath, sizeof(pubpath), "%s/%s.pub", te->dir, name);
        SB_OK_OR_FAIL(
            sb_signkey_save(key, sec, pubpath, errstr, sizeof(errstr)), errstr);
        fp = fopen(pubpath, "r");
        SB_CHECK(fp && fgets(pub, (int)size, fp), "cannot read %s", pubpath);
        fclose(fp);
        pub[strcspn(pub, "\n")] = '\0';
        return key;
}

/*
 * The binary: `sharebus ARGS` in the test's directory; its exit code, its
 * stdout in `out` (stderr goes to cli.err, shown when it fails).
 */
static int cli(sb_testenv_t *te, const char *args, char *out, size_t size)
{
        char cmd[16384], errpath[600], bin[PATH_MAX];
        size_t n = 0;
        FILE *fp;
        int c, st;

        SB_CHECK(realpath(sb_proc_bin(), bin) && access(bin, X_OK) == 0,
                 "no sharebus binary at %s", sb_proc_bin());
        snprintf(errpath, sizeof(errpath), "%s/cli.err", te->dir);
        snprintf(cmd, sizeof(cmd), "cd '%s' && '%s' %s 2>'%s'", te->dir, bin,
                 args, errpath);
        fp = popen(cmd, "r");
        SB_CHECK(fp, "popen %s", cmd);
        while (n + 1 < size && (c = fgetc(fp)) != EOF)
                out[n++] = (char)c;
        out[n] = '\0';
        st = pclose(fp);
        SB_CHECK(st != -1 && WIFEXITED(st), "%s: did not exit", cmd);
        if (WEXITSTATUS(st)) {
                fp = fopen(errpath, "r");
                while (fp && (c = fgetc(fp)) != EOF)
                        fputc(c, stderr);
                if (fp)
                        fclose(fp);
        }
        return WEXITSTATUS(st);
}

/* `sharebus ARGS` that must exit 0 and print one JSON object. */
static json_t *cli_json(sb_testenv_t *te, const char *args, char *out,
                        size_t size)
{
        json_error_t jerr;
        json_t *j;
        int rc = cli(te, args, out, size);

        SB_CHECK(rc == 0, "sharebus %s: expected exit 0, got %d:\n%s", args, rc,
                 out);
        j = json_loads(out, 0, &jerr);
        SB_CHECK(json_is_object(j), "sharebus %s: not a JSON object (%s):\n%s",
                 args, jerr.text, out);
        return j;
}

static const char *str(const json_t *o, const char *key)
{
        const char *s = json_string_value(json_object_get(o, key));

        return s ? s : "(none)";
}

/* What no output may contain: Bob's id and pseudonym, Alice's. */
static void check_nobody_else(sb_testenv_t *te, const char *out,
                              const char *what)
{
        char bob_ps[SB_PSEUDONYM_HEXLEN + 1];

        snprintf(bob_ps, sizeof(bob_ps), "%s", ps_of(te, BOB));
        SB_CHECK(!strstr(out, BOB) && !strstr(out, bob_ps),
                 "%s names Bob or his pseudonym:\n%s", what, out);
        SB_CHECK(!strstr(out, ps_of(te, ALICE)),
                 "%s holds Alice's pseudonym:\n%s", what, out);
}

static void check_subject(sb_testenv_t *te, const json_t *r, const char *out,
                          int checked)
{
        const json_t *rec, *x, *q, *a, *c;
        char *cats;
        size_t i;

        SB_CHECK_INT(1, json_array_size(json_object_get(r, "recipients")),
                     "reusers that received Alice (reuser-a only)");
        rec = json_array_get(json_object_get(r, "recipients"), 0);
        SB_CHECK_STR("reuser-a", str(rec, "reuser"), "recipient");
        SB_CHECK_STR("gdpr-6-1-e",
                     json_string_value(json_array_get(
                         json_object_get(rec, "legal_bases"), 0)),
                     "legal basis");
        SB_CHECK_STR("housing-statistics",
                     json_string_value(
                         json_array_get(json_object_get(rec, "purposes"), 0)),
                     "purpose");
        SB_CHECK_STR("g-a",
                     json_string_value(
                         json_array_get(json_object_get(rec, "grants"), 0)),
                     "grant");
        cats = json_dumps(json_object_get(rec, "categories"), JSON_COMPACT);
        SB_CHECK(cats &&
                     strstr(cats, "{\"field\":\"postcode\",\"doc\":"
                                  "\"Postcode of the main residence.\"}") &&
                     strstr(cats, "\"benefit\"") &&
                     !strstr(cats, "household_size") && !strstr(cats, "email"),
                 "categories: expected pseudonym, postcode and benefit with "
                 "their docs, got %s",
                 cats);
        free(cats);
        json_array_foreach(json_object_get(rec, "categories"), i, c)
            SB_CHECK(json_is_string(json_object_get(c, "doc")),
                     "category %s without a doc", str(c, "field"));

        SB_CHECK_INT(1, json_array_size(json_object_get(r, "exclusions")),
                     "exclusions of Alice");
        x = json_array_get(json_object_get(r, "exclusions"), 0);
        SB_CHECK_STR("reuser-b", str(x, "reuser"), "exclusion reuser");
        SB_CHECK_STR("objection", str(x, "reason"), "exclusion reason");

        SB_CHECK_INT(1, json_array_size(json_object_get(r, "requests")),
                     "Alice's requests");
        q = json_array_get(json_object_get(r, "requests"), 0);
        SB_CHECK_STR(EV_ALICE, str(q, "event_id"), "request");
        SB_CHECK_INT(1, json_array_size(json_object_get(q, "reusers")),
                     "reusers notified of Alice's erasure");
        a = json_array_get(json_object_get(q, "reusers"), 0);
        SB_CHECK_STR("reuser-a", str(a, "reuser"), "notified reuser");
        SB_CHECK_STR(checked ? "acknowledged" : "notified", str(a, "state"),
                     "reuser-a's state");
        SB_CHECK(checked ==
                     json_is_string(json_object_get(a, "acknowledged_at")),
                 "acknowledged_at: expected %s", checked ? "a time" : "null");
        SB_CHECK(checked ==
                     json_is_true(json_object_get(r, "receipts_checked")),
                 "receipts_checked: expected %d", checked);
        check_nobody_else(te, out, "transparency subject");
        SB_CHECK(!strstr(out, ALICE), "the JSON report names Alice:\n%s", out);
}

int main(void)
{
        static char out[1 << 17];
        char errstr[512], audit_pub[128], a_pub[128], text[4096], path[600];
        sb_signkey_t *audit_key, *a_key;
        const json_t *r, *v;
        sb_testenv_t te;
        json_t *j;
        int64_t now;
        char month[16], day[16], *html = NULL;
        size_t len = 0;
        FILE *fp;
        int rc;

        sb_testenv_init(&te);
        sb_testenv_grant(&te, "a.json", grant_a);
        sb_testenv_grant(&te, "b.json", grant_b);
        SB_OK_OR_FAIL(
            sb_mockenv_ack_topic(te.mock, "reuser-a", errstr, sizeof(errstr)),
            errstr);
        SB_OK_OR_FAIL(
            sb_mockenv_ack_topic(te.mock, "reuser-b", errstr, sizeof(errstr)),
            errstr);
        audit_key = keypair(&te, "audit", audit_pub, sizeof(audit_pub));
        a_key = keypair(&te, "reuser-a", a_pub, sizeof(a_pub));
        snprintf(path, sizeof(path), "%s/master.key", te.dir);
        SB_OK_OR_FAIL(sb_key_save(te.key, path, errstr, sizeof(errstr)),
                      errstr);

        snprintf(text, sizeof(text),
                 "{\"gateway\": [\"sb-gateway.g1\"], \"datasets\": "
                 "{\"beneficiaries\": {\"holders\": [\"holder.g1\"]}}, "
                 "\"reusers\": {"
                 "\"reuser-a\": {\"principals\": [\"reuser-a.g1\"], "
                 "\"receipt_keys\": [\"%s\"]}, "
                 "\"reuser-b\": {\"principals\": [\"reuser-b.g1\"]}}, "
                 "\"grants_dir\": \"%s\", \"schemas_dir\": \"%s\", "
                 "\"replication_factor\": 1, \"audit_keys\": [\"%s\"]}",
                 a_pub, te.grants_dir, SB_SCHEMAS_DIR, audit_pub);
        j = json_pack("{s:o, s:s}", "kafka", sb_mockenv_kafka_json(te.mock),
                      "platform", sb_testenv_file(&te, "platform.json", text));
        html = json_dumps(j, JSON_COMPACT);
        sb_testenv_file(&te, "admin.json", html);
        free(html);
        html = NULL;
        json_decref(j);

        now = sb_now_ms();
        write_log(&te, audit_key, now);
        write_receipt(&te, a_key);

        /* The log the test wrote is intact: what follows reads real
         * entries. */
        rc = cli(&te, "audit verify --config admin.json", out, sizeof(out));
        SB_CHECK(rc == 0 && strstr(out, "\nintact\n"),
                 "audit verify: expected exit 0, intact; got %d:\n%s", rc, out);

        /* 1. Alice, on the topic, receipts checked. */
        j = cli_json(&te,
                     "transparency subject " ALICE
                     " --pseudonym-key master.key --config admin.json --json",
                     out, sizeof(out));
        check_subject(&te, j, out, 1);
        json_decref(j);

        /* 2. Her page: her id in the heading, once. */
        rc = cli(&te,
                 "transparency subject " ALICE
                 " --pseudonym-key master.key --config admin.json --html "
                 "alice.html --lang en",
                 out, sizeof(out));
        SB_CHECK_INT(0, rc, "transparency subject --html");
        snprintf(path, sizeof(path), "%s/alice.html", te.dir);
        fp = fopen(path, "r");
        SB_CHECK(fp, "no page at %s", path);
        SB_CHECK(getdelim(&html, &len, '\0', fp) > 0, "empty page");
        fclose(fp);
        SB_CHECK(
            strstr(html, ALICE) &&
                !strncmp(strstr(html, ALICE) + strlen(ALICE), "</h1>", 5) &&
                !strstr(strstr(html, "</h1>"), ALICE),
            "the page must name Alice in its heading only:\n%s", html);
        SB_CHECK(strstr(html, "reuser-a") && strstr(html, "Done: confirmed"),
                 "the page must show reuser-a and its receipt:\n%s", html);
        check_nobody_else(&te, html, "the page");
        free(html);

        /* 3. On an export: the same, receipts not checked. */
        rc = cli(&te, "audit export --config admin.json --out audit.jsonl", out,
                 sizeof(out));
        SB_CHECK_INT(0, rc, "audit export");
        j = cli_json(&te,
                     "transparency subject " ALICE
                     " --pseudonym-key master.key --file audit.jsonl "
                     "--config admin.json --json",
                     out, sizeof(out));
        check_subject(&te, j, out, 0);
        json_decref(j);

        /* 4. The registry: both reusers, this month's volumes. */
        {
                time_t t = (time_t)(now / 1000);
                struct tm tm;

                gmtime_r(&t, &tm);
                strftime(month, sizeof(month), "%Y-%m", &tm);
                strftime(day, sizeof(day), "%Y-%m-%d", &tm);
        }
        j = cli_json(&te, "transparency registry --config admin.json --json",
                     out, sizeof(out));
        SB_CHECK_INT(2, json_array_size(json_object_get(j, "reusers")),
                     "reusers in the registry");
        r = json_array_get(json_object_get(j, "reusers"), 0);
        SB_CHECK_STR("reuser-a", str(r, "reuser"), "first reuser");
        SB_CHECK_INT(1, json_array_size(json_object_get(r, "grants")),
                     "reuser-a's grants");
        SB_CHECK(strstr(out, "Postcode of the main residence."),
                 "the registry must give the categories' docs:\n%s", out);
        v = json_array_get(json_object_get(r, "volumes"), 0);
        SB_CHECK_STR(month, str(v, "month"), "reuser-a's volume month");
        SB_CHECK_INT(3, json_integer_value(json_object_get(v, "records")),
                     "reuser-a's records this month");
        SB_CHECK_INT(2, json_integer_value(json_object_get(v, "subjects")),
                     "reuser-a's distinct subjects this month");
        r = json_array_get(json_object_get(j, "reusers"), 1);
        SB_CHECK_STR("reuser-b", str(r, "reuser"), "second reuser");
        v = json_array_get(json_object_get(r, "volumes"), 0);
        SB_CHECK_INT(1, json_integer_value(json_object_get(v, "subjects")),
                     "reuser-b's distinct subjects this month");
        check_nobody_else(&te, out, "the registry");
        json_decref(j);

        /* 5. The platform team's statistics. */
        j = cli_json(&te, "audit stats --config admin.json --json", out,
                     sizeof(out));
        SB_CHECK_INT(2, json_array_size(json_object_get(j, "rows")),
                     "stats rows (one day, two reusers)");
        r = json_array_get(json_object_get(j, "rows"), 1);
        SB_CHECK_STR(day, str(r, "period"), "stats day");
        SB_CHECK_STR("reuser-b", str(r, "reuser"), "stats reuser");
        SB_CHECK_INT(2,
                     json_integer_value(json_object_get(
                         json_object_get(r, "excluded"), "objection")),
                     "records excluded from reuser-b on objection");
        SB_CHECK_INT(150, json_integer_value(json_object_get(r, "bytes")),
                     "bytes delivered to reuser-b");
        check_nobody_else(&te, out, "audit stats");
        json_decref(j);

        printf("a person's report names only the reuser that received them, "
               "its categories with docs, their objection and their "
               "acknowledged request; the registry and the stats count "
               "records and distinct subjects; nothing of anybody else\n");
        sb_signkey_destroy(audit_key);
        sb_signkey_destroy(a_key);
        sb_testenv_release(&te);
        return 0;
}
