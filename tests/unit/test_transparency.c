/*
 * What the audit log says to people (admin/transparency.c; DESIGN.md §9;
 * CNIL R3.4-04, R3.4-05, R3.4-06, R3.4-09, R4.3-21, R4.3-22, R5.4-14,
 * R5.4-18…24, R6.1-02), fed with synthetic audit entries in the format the
 * gateway writes:
 *   - a person's report lists exactly the reusers whose deliveries named
 *     their audit pseudonym, with the union of the fields delivered, the
 *     first and last delivery, purposes, legal bases and grants; the
 *     exclusions and rights requests that concerned them, and nothing of
 *     anybody else (no other person's data, no pseudonym at all);
 *   - the pages escape every value (a <script> in a purpose or a doc),
 *     are self-contained, and differ in French and English while both
 *     name every reuser;
 *   - the registry lists the reusers of active grants with their data
 *     categories and docs, and the records and distinct subjects
 *     delivered per month;
 *   - audit stats count distinct subjects per day and reuser, records,
 *     bytes, and exclusions per reason.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "audit.h"
#include "crypto.h"
#include "envelope.h"
#include "platform.h"
#include "rights.h"
#include "testutil.h"
#include "transparency.h"

#define DS "beneficiaries"

static char dir[64];
static sb_key_t *master;

static int setup(void **state)
{
        char errstr[256] = "", path[128];

        (void)state;
        if (sb_crypto_init(errstr, sizeof(errstr)))
                fail_msg("sb_crypto_init: %s", errstr);
        master = sb_key_random();
        assert_non_null(master);
        snprintf(dir, sizeof(dir), "/tmp/sb-test-transparency-XXXXXX");
        if (!mkdtemp(dir))
                fail_msg("mkdtemp failed");
        snprintf(path, sizeof(path), "%s/grants", dir);
        assert_int_equal(0, mkdir(path, 0700));
        return 0;
}

static int teardown(void **state)
{
        (void)state;
        sb_key_destroy(master);
        sb_test_rmtree(dir);
        return 0;
}

static int64_t ms(const char *t)
{
        int64_t v;

        if (sb_time_parse(t, &v))
                fail_msg("bad time %s", t);
        return v;
}

/* The audit pseudonym of `id` in `dataset` (static buffer). */
static const char *ps_of(const char *dataset, const char *id)
{
        static char out[SB_PSEUDONYM_HEXLEN + 1];
        sb_pseudonymiser_t *ps = sb_audit_pseudonymiser_new(master, dataset);

        assert_non_null(ps);
        sb_pseudonymise(ps, id, strlen(id), out);
        sb_pseudonymiser_destroy(ps);
        return out;
}

/* The pseudonyms of the NULL-terminated ids, as a JSON array. */
static json_t *subjects(const char *dataset, ...)
{
        json_t *a = json_array();
        const char *id;
        va_list ap;

        va_start(ap, dataset);
        while ((id = va_arg(ap, const char *)))
                json_array_append_new(a, json_string(ps_of(dataset, id)));
        va_end(ap);
        return a;
}

static json_t *delivery(const char *reuser, const char *dataset,
                        const char *grant, const char *purpose,
                        const char *fields, const char *at, int records,
                        int bytes, json_t *subj)
{
        json_t *e = json_pack(
            "{s:s, s:s, s:s, s:s, s:s, s:[s], s:s, s:o, s:i, s:i, s:o, "
            "s:I, s:I, s:I}",
            "op", "delivery", "author", "sharebus://gateway/gw-1", "dataset",
            dataset, "grant", grant, "reuser", reuser, "purposes", purpose,
            "legal_basis", "gdpr-6-1-e", "fields", json_loads(fields, 0, NULL),
            "records", records, "bytes", bytes, "subjects", subj, "first_at",
            (json_int_t)ms(at) - 1000, "last_at", (json_int_t)ms(at) - 10, "at",
            (json_int_t)ms(at));

        assert_non_null(e);
        return e;
}

static json_t *exclusion(const char *reuser, const char *reason, const char *at,
                         int records, json_t *subj)
{
        json_t *e = json_pack(
            "{s:s, s:s, s:s, s:s, s:s, s:s, s:i, s:o, s:I}", "op", "exclusion",
            "author", "sharebus://gateway/gw-1", "dataset", DS, "grant", "g-b",
            "reuser", reuser, "reason", reason, "records", records, "subjects",
            subj, "at", (json_int_t)ms(at));

        assert_non_null(e);
        return e;
}

static json_t *request(const char *event_id, const char *subject,
                       const char *at, const char *notified)
{
        json_t *e = json_pack(
            "{s:s, s:s, s:s, s:s, s:s, s:[], s:[s], s:s, s:s, s:I}", "op",
            "rights.propagate", "author", "sharebus://gateway/gw-1", "event_id",
            event_id, "type", "sharebus.rights.erasure", "dataset", DS,
            "purposes", "notified", notified, "requested_time",
            "2026-11-20T09:00:00.000Z", "subject_ps", ps_of(DS, subject), "at",
            (json_int_t)ms(at));

        assert_non_null(e);
        return e;
}

/* Feeds the entry (stolen) to `s`. */
static void feed(sb_tp_subject_t *s, json_t *e)
{
        char errstr[256];

        assert_int_equal(SB_OK,
                         sb_tp_subject_feed(e, s, errstr, sizeof(errstr)));
        json_decref(e);
}

static void feed_stats(sb_tp_stats_t *st, json_t *e)
{
        char errstr[256];

        assert_int_equal(SB_OK,
                         sb_tp_stats_feed(e, st, errstr, sizeof(errstr)));
        json_decref(e);
}

/* Alice received by reuser-a twice and reuser-c (another dataset); Bob by
 * reuser-a and reuser-b; an objection and a request for each. */
static void feed_log(sb_tp_subject_t *s)
{
        feed(s,
             delivery("reuser-a", DS, "g-a", "housing-statistics",
                      "[\"pseudonym\", \"postcode\"]", "2026-11-24T10:00:00Z",
                      3, 300, subjects(DS, "alice", "bob", NULL)));
        feed(s, delivery("reuser-b", DS, "g-b", "energy-vouchers",
                         "[\"pseudonym\", \"household_size\", \"email\"]",
                         "2026-11-24T11:00:00Z", 1, 90,
                         subjects(DS, "bob", NULL)));
        feed(s, delivery("reuser-a", DS, "g-a", "housing-statistics",
                         "[\"pseudonym\", \"benefit\"]", "2026-11-25T08:00:00Z",
                         2, 200, subjects(DS, "alice", NULL)));
        feed(s, delivery("reuser-c", "pupils", "g-c", "school-meals",
                         "[\"pseudonym\", \"school\"]", "2026-11-25T09:00:00Z",
                         1, 50, subjects("pupils", "alice", NULL)));
        /* Bob's id in another dataset is another pseudonym: not Alice. */
        feed(s, delivery("reuser-d", "pupils", "g-d", "transport",
                         "[\"pseudonym\"]", "2026-11-25T09:30:00Z", 1, 50,
                         subjects("pupils", "bob", NULL)));
        feed(s, exclusion("reuser-b", "objection", "2026-11-25T10:00:00Z", 1,
                          subjects(DS, "alice", NULL)));
        feed(s, exclusion("reuser-b", "history", "2026-11-25T10:00:00Z", 4,
                          subjects(DS, "bob", NULL)));
        feed(s,
             request("ev-0001", "alice", "2026-11-25T11:00:00Z", "reuser-a"));
        feed(s, request("ev-0002", "bob", "2026-11-25T11:00:01Z", "reuser-b"));
        /* Entries of other kinds, and a malformed delivery, are ignored. */
        feed(s, json_pack("{s:s, s:s, s:s, s:I}", "op", "grant.change",
                          "grant_id", "g-a", "change", "updated", "at",
                          (json_int_t)ms("2026-11-25T12:00:00Z")));
        feed(s, json_pack("{s:s, s:s, s:I}", "op", "delivery", "dataset", DS,
                          "at", (json_int_t)ms("2026-11-25T12:00:00Z")));
}

static const json_t *recipient(const json_t *report, size_t i,
                               const char *reuser, const char *dataset)
{
        const json_t *r =
            json_array_get(json_object_get(report, "recipients"), i);

        assert_non_null(r);
        assert_string_equal(reuser,
                            json_string_value(json_object_get(r, "reuser")));
        assert_string_equal(dataset,
                            json_string_value(json_object_get(r, "dataset")));
        return r;
}

static char *fields_of(const json_t *r)
{
        json_t *a = json_array(), *c;
        char *s;
        size_t i;

        json_array_foreach(json_object_get(r, "categories"), i, c)
            json_array_append(a, json_object_get(c, "field"));
        s = json_dumps(a, JSON_COMPACT);
        json_decref(a);
        return s;
}

static void
transparency_subject_lists_only_reusers_that_received_the_person(void **state)
{
        char errstr[256], *text, *f;
        sb_tp_subject_t *s;
        const json_t *r;
        json_t *report;

        (void)state;
        s = sb_tp_subject_new(master, "alice", NULL, -1, -1, errstr,
                              sizeof(errstr));
        assert_non_null(s);
        feed_log(s);
        report = sb_tp_subject_report(s, NULL, 0, ms("2026-11-26T00:00:00Z"));
        assert_non_null(report);

        assert_int_equal(
            2, json_array_size(json_object_get(report, "recipients")));
        r = recipient(report, 0, "reuser-a", DS);
        f = fields_of(r);
        assert_string_equal("[\"benefit\",\"postcode\",\"pseudonym\"]", f);
        free(f);
        assert_string_equal(
            "2026-11-24T09:59:59.000Z",
            json_string_value(json_object_get(r, "first_delivery")));
        assert_string_equal(
            "2026-11-25T07:59:59.990Z",
            json_string_value(json_object_get(r, "last_delivery")));
        assert_int_equal(2,
                         json_integer_value(json_object_get(r, "deliveries")));
        text = json_dumps(json_object_get(r, "purposes"), JSON_COMPACT);
        assert_string_equal("[\"housing-statistics\"]", text);
        free(text);
        text = json_dumps(json_object_get(r, "legal_bases"), JSON_COMPACT);
        assert_string_equal("[\"gdpr-6-1-e\"]", text);
        free(text);
        text = json_dumps(json_object_get(r, "grants"), JSON_COMPACT);
        assert_string_equal("[\"g-a\"]", text);
        free(text);
        recipient(report, 1, "reuser-c", "pupils");

        /* Nothing of Bob's: not his reusers, fields, exclusions, requests,
         * nor any pseudonym (his or Alice's). */
        text = json_dumps(report, JSON_COMPACT);
        assert_null(strstr(text, "reuser-d"));
        assert_null(strstr(text, "household_size"));
        assert_null(strstr(text, "email"));
        assert_null(strstr(text, "history"));
        assert_null(strstr(text, "ev-0002"));
        assert_null(strstr(text, ps_of(DS, "bob")));
        assert_null(strstr(text, ps_of(DS, "alice")));
        assert_null(strstr(text, ps_of("pupils", "alice")));
        if (strstr(text, "alice"))
                fail_msg("the report names the person: %s", text);
        free(text);
        assert_int_equal(
            1, json_integer_value(json_object_get(report, "skipped")));
        json_decref(report);
        sb_tp_subject_destroy(s);

        /* --dataset and --from narrow the report. */
        {
                json_t *only = json_pack("[s]", DS);

                s = sb_tp_subject_new(master, "alice", only,
                                      ms("2026-11-25T00:00:00Z"), -1, errstr,
                                      sizeof(errstr));
                json_decref(only);
        }
        assert_non_null(s);
        feed_log(s);
        report = sb_tp_subject_report(s, NULL, 0, ms("2026-11-26T00:00:00Z"));
        assert_int_equal(
            1, json_array_size(json_object_get(report, "recipients")));
        r = recipient(report, 0, "reuser-a", DS);
        f = fields_of(r);
        assert_string_equal("[\"benefit\",\"pseudonym\"]", f);
        free(f);
        json_decref(report);
        sb_tp_subject_destroy(s);
}

static void
transparency_subject_reports_exclusions_and_requests_of_the_person(void **state)
{
        char errstr[256];
        const json_t *x, *q, *a;
        sb_rights_report_t *rights;
        sb_tp_subject_t *s;
        json_t *report;

        (void)state;
        s = sb_tp_subject_new(master, "alice", NULL, -1, -1, errstr,
                              sizeof(errstr));
        assert_non_null(s);
        feed_log(s);

        /* From an export: notified, receipts not checked. */
        report = sb_tp_subject_report(s, NULL, 0, ms("2026-11-26T00:00:00Z"));
        assert_int_equal(
            1, json_array_size(json_object_get(report, "exclusions")));
        x = json_array_get(json_object_get(report, "exclusions"), 0);
        assert_string_equal("reuser-b",
                            json_string_value(json_object_get(x, "reuser")));
        assert_string_equal("objection",
                            json_string_value(json_object_get(x, "reason")));
        assert_int_equal(1,
                         json_array_size(json_object_get(report, "requests")));
        q = json_array_get(json_object_get(report, "requests"), 0);
        assert_string_equal("ev-0001",
                            json_string_value(json_object_get(q, "event_id")));
        assert_true(json_is_null(json_object_get(q, "due_at")));
        a = json_array_get(json_object_get(q, "reusers"), 0);
        assert_string_equal("reuser-a",
                            json_string_value(json_object_get(a, "reuser")));
        assert_string_equal("notified",
                            json_string_value(json_object_get(a, "state")));
        assert_false(json_is_true(json_object_get(report, "receipts_checked")));
        json_decref(report);

        /* The rights logic decides: no receipt a day after the notice is
         * overdue, within the day pending. */
        rights = sb_tp_subject_rights(s);
        assert_int_equal(1, rights->event_cnt);
        rights->deadline_ms = 24 * 3600 * 1000LL;
        sb_rights_report_decide(rights, ms("2026-11-27T00:00:00Z"));
        report = sb_tp_subject_report(s, NULL, 1, ms("2026-11-27T00:00:00Z"));
        q = json_array_get(json_object_get(report, "requests"), 0);
        a = json_array_get(json_object_get(q, "reusers"), 0);
        assert_string_equal("overdue",
                            json_string_value(json_object_get(a, "state")));
        assert_string_equal("2026-11-26T11:00:00.000Z",
                            json_string_value(json_object_get(q, "due_at")));
        json_decref(report);
        sb_rights_report_decide(rights, ms("2026-11-25T12:00:00Z"));
        report = sb_tp_subject_report(s, NULL, 1, ms("2026-11-25T12:00:00Z"));
        q = json_array_get(json_object_get(report, "requests"), 0);
        a = json_array_get(json_object_get(q, "reusers"), 0);
        assert_string_equal("pending",
                            json_string_value(json_object_get(a, "state")));
        json_decref(report);
        sb_tp_subject_destroy(s);
}

/* A platform with grants for reuser-a (active), reuser-b (active) and
 * reuser-c (suspended). */
static sb_platform_t *platform(void)
{
        static const char *const grants[][2] = {
            {"a.json",
             "{\"id\": \"g-a\", \"reuser\": \"reuser-a\", \"dataset\": "
             "\"beneficiaries\", \"purposes\": [\"housing-statistics\"], "
             "\"legal_basis\": \"gdpr-6-1-e\", \"status\": \"approved\", "
             "\"valid_from\": \"2026-01-01T00:00:00Z\", \"valid_until\": "
             "\"2099-01-01T00:00:00Z\", \"fields\": {\"postcode\": "
             "{\"truncate\": 2}, \"benefit\": \"keep\"}}"},
            {"b.json",
             "{\"id\": \"g-b\", \"reuser\": \"reuser-b\", \"dataset\": "
             "\"beneficiaries\", \"purposes\": [\"energy-vouchers\"], "
             "\"legal_basis\": \"gdpr-6-1-c\", \"status\": \"approved\", "
             "\"fields\": {\"household_size\": \"keep\"}}"},
            {"c.json",
             "{\"id\": \"g-c\", \"reuser\": \"reuser-c\", \"dataset\": "
             "\"beneficiaries\", \"purposes\": [\"school-meals\"], "
             "\"legal_basis\": \"gdpr-6-1-e\", \"status\": \"suspended\", "
             "\"fields\": {\"email\": \"keep\"}}"},
        };
        char path[256], text[1024], errstr[512];
        sb_platform_t *pf;
        size_t i;
        FILE *fp;

        for (i = 0; i < sizeof(grants) / sizeof(grants[0]); i++) {
                snprintf(path, sizeof(path), "%s/grants/%s", dir, grants[i][0]);
                fp = fopen(path, "w");
                assert_non_null(fp);
                fputs(grants[i][1], fp);
                fclose(fp);
        }
        snprintf(path, sizeof(path), "%s/platform.json", dir);
        snprintf(text, sizeof(text),
                 "{\"gateway\": [\"sb-gateway.g1\"], \"datasets\": "
                 "{\"beneficiaries\": {\"holders\": [\"holder.g1\"]}}, "
                 "\"reusers\": {\"reuser-a\": {\"principals\": "
                 "[\"reuser-a.g1\"]}, \"reuser-b\": {\"principals\": "
                 "[\"reuser-b.g1\"]}, \"reuser-c\": {\"principals\": "
                 "[\"reuser-c.g1\"]}}, "
                 "\"grants_dir\": \"%s/grants\", \"schemas_dir\": \"%s\", "
                 "\"replication_factor\": 1}",
                 dir, SB_SCHEMAS_DIR);
        fp = fopen(path, "w");
        assert_non_null(fp);
        fputs(text, fp);
        fclose(fp);
        pf = sb_platform_load(path, errstr, sizeof(errstr));
        if (!pf)
                fail_msg("platform: %s", errstr);
        return pf;
}

static void transparency_subject_categories_carry_the_schema_docs(void **state)
{
        char errstr[256];
        sb_tp_subject_t *s;
        sb_platform_t *pf;
        json_t *report;
        const json_t *c;
        size_t i;
        int seen = 0;

        (void)state;
        pf = platform();
        s = sb_tp_subject_new(master, "alice", NULL, -1, -1, errstr,
                              sizeof(errstr));
        assert_non_null(s);
        feed_log(s);
        report = sb_tp_subject_report(s, pf, 0, ms("2026-11-26T00:00:00Z"));
        json_array_foreach(
            json_object_get(recipient(report, 0, "reuser-a", DS), "categories"),
            i, c)
        {
                const char *field =
                    json_string_value(json_object_get(c, "field"));
                const char *doc = json_string_value(json_object_get(c, "doc"));

                assert_non_null(doc);
                if (!strcmp(field, "benefit")) {
                        assert_string_equal("Kind of benefit granted.", doc);
                        seen++;
                }
        }
        assert_int_equal(1, seen);
        json_decref(report);
        sb_tp_subject_destroy(s);
        sb_platform_destroy(pf);
}

static void transparency_html_escapes_script_in_docs_and_purposes(void **state)
{
        static const char *const langs[] = {"fr", "en"};
        char errstr[256], *html;
        sb_tp_subject_t *s;
        json_t *report, *c;
        size_t i;

        (void)state;
        s = sb_tp_subject_new(master, "<b>alice</b>", NULL, -1, -1, errstr,
                              sizeof(errstr));
        assert_non_null(s);
        feed(s, delivery("reuser-a", DS, "g-a",
                         "<script>alert('purpose')</script>", "[\"postcode\"]",
                         "2026-11-24T10:00:00Z", 1, 10,
                         subjects(DS, "<b>alice</b>", NULL)));
        report = sb_tp_subject_report(s, NULL, 0, ms("2026-11-26T00:00:00Z"));
        c = json_array_get(
            json_object_get(
                json_array_get(json_object_get(report, "recipients"), 0),
                "categories"),
            0);
        assert_non_null(c);
        json_object_set_new(
            c, "doc", json_string("<script>alert(\"doc\")</script> & co"));
        for (i = 0; i < 2; i++) {
                html = sb_tp_subject_html(report, "<b>alice</b>", langs[i]);
                assert_non_null(html);
                assert_null(strstr(html, "<script"));
                assert_null(strstr(html, "<b>"));
                assert_non_null(strstr(html,
                                       "&lt;script&gt;alert(&#39;purpose&#39;)"
                                       "&lt;/script&gt;"));
                assert_non_null(strstr(html, "&lt;script&gt;alert(&quot;doc"
                                             "&quot;)&lt;/script&gt; &amp; "
                                             "co"));
                /* The person's id, escaped, in the heading only. */
                assert_non_null(strstr(html, "&lt;b&gt;alice&lt;/b&gt;</h1>"));
                assert_ptr_equal(strstr(html, "alice"),
                                 strstr(html, "&lt;b&gt;alice") + 9);
                assert_null(strstr(strstr(html, "</h1>"), "alice"));
                /* Self-contained: no link, no external resource. */
                assert_null(strstr(html, "href"));
                assert_null(strstr(html, "src="));
                assert_null(strstr(html, "http"));
                free(html);
        }
        assert_null(sb_tp_subject_html(report, "alice", "de"));
        json_decref(report);
        sb_tp_subject_destroy(s);
}

static void
transparency_pages_in_french_and_english_differ_and_name_reusers(void **state)
{
        char errstr[256], *fr, *en;
        sb_tp_subject_t *s;
        sb_tp_stats_t *st;
        sb_platform_t *pf;
        json_t *report, *reg;

        (void)state;
        s = sb_tp_subject_new(master, "alice", NULL, -1, -1, errstr,
                              sizeof(errstr));
        assert_non_null(s);
        feed_log(s);
        report = sb_tp_subject_report(s, NULL, 0, ms("2026-11-26T00:00:00Z"));
        fr = sb_tp_subject_html(report, "alice", "fr");
        en = sb_tp_subject_html(report, "alice", "en");
        assert_non_null(fr);
        assert_non_null(en);
        assert_string_not_equal(fr, en);
        assert_non_null(strstr(fr, "<html lang=\"fr\">"));
        assert_non_null(strstr(en, "<html lang=\"en\">"));
        assert_non_null(strstr(fr, "Qui a reçu vos données"));
        assert_non_null(strstr(en, "Who received your data"));
        assert_non_null(strstr(fr, "vous vous êtes opposé(e)"));
        assert_non_null(strstr(en, "you objected"));
        assert_non_null(strstr(fr, "Effacement de vos données"));
        assert_non_null(strstr(en, "Erasure of your data"));
        assert_non_null(strstr(fr, "n'ont pas été vérifiées"));
        assert_non_null(strstr(en, "were not checked"));
        assert_non_null(strstr(fr, "reuser-a"));
        assert_non_null(strstr(fr, "reuser-b")); /* the objection */
        assert_non_null(strstr(fr, "reuser-c"));
        assert_non_null(strstr(en, "reuser-a"));
        assert_non_null(strstr(en, "reuser-b"));
        assert_non_null(strstr(en, "reuser-c"));
        assert_null(strstr(en, "reuser-d"));
        free(fr);
        free(en);
        json_decref(report);
        sb_tp_subject_destroy(s);

        pf = platform();
        st = sb_tp_stats_new(SB_TP_MONTH, SB_TP_BY_REUSER | SB_TP_BY_DATASET,
                             -1, -1);
        feed_stats(st, delivery("reuser-a", DS, "g-a", "housing-statistics",
                                "[\"postcode\"]", "2026-11-24T10:00:00Z", 3,
                                300, subjects(DS, "alice", "bob", NULL)));
        reg = sb_tp_registry(pf, st, ms("2026-11-26T00:00:00Z"));
        fr = sb_tp_registry_html(reg, "fr");
        en = sb_tp_registry_html(reg, "en");
        assert_string_not_equal(fr, en);
        assert_non_null(strstr(fr, "reuser-a"));
        assert_non_null(strstr(fr, "reuser-b"));
        assert_non_null(strstr(en, "reuser-a"));
        assert_non_null(strstr(en, "reuser-b"));
        assert_non_null(strstr(fr, "une mission d'intérêt public"));
        assert_non_null(strstr(en, "a task in the public interest"));
        assert_null(strstr(en, "reuser-c")); /* suspended, nothing sent */
        free(fr);
        free(en);
        json_decref(reg);
        sb_tp_stats_destroy(st);
        sb_platform_destroy(pf);
}

static const json_t *reuser_of(const json_t *reg, const char *name)
{
        const json_t *r;
        size_t i;

        json_array_foreach(json_object_get(reg, "reusers"), i, r)
        {
                if (!strcmp(name,
                            json_string_value(json_object_get(r, "reuser"))))
                        return r;
        }
        return NULL;
}

static void
transparency_registry_counts_records_and_subjects_per_month(void **state)
{
        const json_t *a, *g, *v, *c;
        sb_tp_stats_t *st;
        sb_platform_t *pf;
        json_t *reg;
        char *text;
        size_t i;
        int postcode = 0;

        (void)state;
        pf = platform();
        st = sb_tp_stats_new(SB_TP_MONTH, SB_TP_BY_REUSER | SB_TP_BY_DATASET,
                             -1, -1);
        assert_non_null(st);
        feed_stats(st, delivery("reuser-a", DS, "g-a", "p", "[\"postcode\"]",
                                "2026-10-31T23:00:00Z", 5, 100,
                                subjects(DS, "alice", "bob", NULL)));
        feed_stats(st, delivery("reuser-a", DS, "g-a", "p", "[\"postcode\"]",
                                "2026-11-01T01:00:00Z", 2, 100,
                                subjects(DS, "alice", NULL)));
        feed_stats(st, delivery("reuser-a", DS, "g-a", "p", "[\"postcode\"]",
                                "2026-11-30T22:00:00Z", 4, 100,
                                subjects(DS, "alice", "carol", NULL)));
        /* reuser-c's grant is suspended now, but it received data. */
        feed_stats(st, delivery("reuser-c", DS, "g-c", "p", "[\"email\"]",
                                "2026-10-02T10:00:00Z", 1, 100,
                                subjects(DS, "dave", NULL)));
        reg = sb_tp_registry(pf, st, ms("2026-11-26T00:00:00Z"));
        assert_non_null(reg);

        a = reuser_of(reg, "reuser-a");
        assert_non_null(a);
        assert_int_equal(1, json_array_size(json_object_get(a, "grants")));
        g = json_array_get(json_object_get(a, "grants"), 0);
        assert_string_equal("g-a",
                            json_string_value(json_object_get(g, "grant")));
        assert_string_equal(
            "gdpr-6-1-e", json_string_value(json_object_get(g, "legal_basis")));
        assert_string_equal(
            "2026-01-01T00:00:00.000Z",
            json_string_value(json_object_get(g, "valid_from")));
        json_array_foreach(json_object_get(g, "categories"), i, c)
        {
                if (strcmp(json_string_value(json_object_get(c, "field")),
                           "postcode"))
                        continue;
                postcode = 1;
                assert_true(json_is_true(json_object_get(c, "transformed")));
                assert_non_null(json_string_value(json_object_get(c, "doc")));
        }
        assert_true(postcode);
        assert_int_equal(2, json_array_size(json_object_get(a, "volumes")));
        v = json_array_get(json_object_get(a, "volumes"), 0);
        assert_string_equal("2026-10",
                            json_string_value(json_object_get(v, "month")));
        assert_int_equal(5, json_integer_value(json_object_get(v, "records")));
        assert_int_equal(2, json_integer_value(json_object_get(v, "subjects")));
        v = json_array_get(json_object_get(a, "volumes"), 1);
        assert_string_equal("2026-11",
                            json_string_value(json_object_get(v, "month")));
        assert_int_equal(6, json_integer_value(json_object_get(v, "records")));
        assert_int_equal(2, json_integer_value(json_object_get(v, "subjects")));

        assert_non_null(reuser_of(reg, "reuser-b")); /* active, no volume */
        assert_int_equal(0, json_array_size(json_object_get(
                                reuser_of(reg, "reuser-b"), "volumes")));
        a = reuser_of(reg, "reuser-c");
        assert_non_null(a);
        assert_int_equal(0, json_array_size(json_object_get(a, "grants")));
        assert_int_equal(1, json_array_size(json_object_get(a, "volumes")));

        text = json_dumps(reg, JSON_COMPACT);
        assert_null(strstr(text, ps_of(DS, "alice")));
        assert_null(strstr(text, ps_of(DS, "bob")));
        free(text);
        json_decref(reg);
        sb_tp_stats_destroy(st);
        sb_platform_destroy(pf);

        {
                int64_t from, to;

                assert_int_equal(0, sb_tp_parse_month("2026-12", &from, &to));
                assert_int_equal(ms("2026-12-01T00:00:00Z"), from);
                assert_int_equal(ms("2027-01-01T00:00:00Z"), to);
                assert_int_equal(-1, sb_tp_parse_month("2026-13", &from, &to));
                assert_int_equal(-1, sb_tp_parse_month("2026-1", &from, &to));
                assert_int_equal(-1, sb_tp_parse_month("2026-011", &from, &to));
        }
}

static const json_t *row(const json_t *stats, size_t i, const char *period,
                         const char *reuser, const char *dataset)
{
        const json_t *r = json_array_get(json_object_get(stats, "rows"), i);

        assert_non_null(r);
        assert_string_equal(period,
                            json_string_value(json_object_get(r, "period")));
        if (reuser)
                assert_string_equal(
                    reuser, json_string_value(json_object_get(r, "reuser")));
        else
                assert_null(json_object_get(r, "reuser"));
        if (dataset)
                assert_string_equal(
                    dataset, json_string_value(json_object_get(r, "dataset")));
        else
                assert_null(json_object_get(r, "dataset"));
        return r;
}

static void feed_day(sb_tp_stats_t *st)
{
        feed_stats(st, delivery("reuser-a", DS, "g-a", "p", "[\"postcode\"]",
                                "2026-11-24T08:00:00Z", 3, 300,
                                subjects(DS, "alice", "bob", NULL)));
        feed_stats(st, delivery("reuser-a", DS, "g-a", "p", "[\"postcode\"]",
                                "2026-11-24T20:00:00Z", 2, 200,
                                subjects(DS, "alice", "carol", NULL)));
        feed_stats(st, delivery("reuser-a", "pupils", "g-p", "p",
                                "[\"school\"]", "2026-11-24T21:00:00Z", 1, 70,
                                subjects("pupils", "alice", NULL)));
        feed_stats(st, delivery("reuser-a", DS, "g-a", "p", "[\"postcode\"]",
                                "2026-11-25T08:00:00Z", 1, 100,
                                subjects(DS, "alice", NULL)));
        feed_stats(st,
                   exclusion("reuser-a", "objection", "2026-11-24T09:00:00Z", 2,
                             subjects(DS, "dave", NULL)));
        feed_stats(st, exclusion("reuser-a", "history", "2026-11-24T09:00:00Z",
                                 5, subjects(DS, "erin", NULL)));
        feed_stats(st,
                   exclusion("reuser-a", "objection", "2026-11-24T10:00:00Z", 1,
                             subjects(DS, "dave", NULL)));
}

static void audit_stats_count_distinct_subjects_per_day(void **state)
{
        sb_tp_stats_t *st;
        const json_t *r, *x;
        json_t *stats;

        (void)state;
        st = sb_tp_stats_new(SB_TP_DAY, SB_TP_BY_REUSER | SB_TP_BY_DATASET, -1,
                             -1);
        assert_non_null(st);
        feed_day(st);
        stats = sb_tp_stats_json(st);
        assert_int_equal(3, json_array_size(json_object_get(stats, "rows")));
        r = row(stats, 0, "2026-11-24", "reuser-a", DS);
        assert_int_equal(2,
                         json_integer_value(json_object_get(r, "deliveries")));
        assert_int_equal(5, json_integer_value(json_object_get(r, "records")));
        assert_int_equal(3, json_integer_value(json_object_get(r, "subjects")));
        assert_int_equal(500, json_integer_value(json_object_get(r, "bytes")));
        x = json_object_get(r, "excluded");
        assert_int_equal(3,
                         json_integer_value(json_object_get(x, "objection")));
        assert_int_equal(5, json_integer_value(json_object_get(x, "history")));
        r = row(stats, 1, "2026-11-24", "reuser-a", "pupils");
        assert_int_equal(1, json_integer_value(json_object_get(r, "subjects")));
        r = row(stats, 2, "2026-11-25", "reuser-a", DS);
        assert_int_equal(1, json_integer_value(json_object_get(r, "subjects")));
        json_decref(stats);
        sb_tp_stats_destroy(st);

        /* By reuser: one row a day, a person counted once per dataset. */
        st = sb_tp_stats_new(SB_TP_DAY, SB_TP_BY_REUSER, -1, -1);
        feed_day(st);
        stats = sb_tp_stats_json(st);
        assert_int_equal(2, json_array_size(json_object_get(stats, "rows")));
        r = row(stats, 0, "2026-11-24", "reuser-a", NULL);
        assert_int_equal(4, json_integer_value(json_object_get(r, "subjects")));
        assert_int_equal(6, json_integer_value(json_object_get(r, "records")));
        json_decref(stats);
        sb_tp_stats_destroy(st);

        /* By dataset, per month, from a time on. */
        st = sb_tp_stats_new(SB_TP_MONTH, SB_TP_BY_DATASET,
                             ms("2026-11-24T12:00:00Z"), -1);
        feed_day(st);
        stats = sb_tp_stats_json(st);
        assert_int_equal(2, json_array_size(json_object_get(stats, "rows")));
        r = row(stats, 0, "2026-11", NULL, DS);
        assert_int_equal(2, json_integer_value(json_object_get(r, "subjects")));
        assert_int_equal(3, json_integer_value(json_object_get(r, "records")));
        assert_false(json_is_true(json_object_get(r, "subjects_at_least")));
        json_decref(stats);
        sb_tp_stats_destroy(st);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(
                transparency_subject_lists_only_reusers_that_received_the_person),
            cmocka_unit_test(
                transparency_subject_reports_exclusions_and_requests_of_the_person),
            cmocka_unit_test(
                transparency_subject_categories_carry_the_schema_docs),
            cmocka_unit_test(
                transparency_html_escapes_script_in_docs_and_purposes),
            cmocka_unit_test(
                transparency_pages_in_french_and_english_differ_and_name_reusers),
            cmocka_unit_test(
                transparency_registry_counts_records_and_subjects_per_month),
            cmocka_unit_test(audit_stats_count_distinct_subjects_per_day),
        };

        return cmocka_run_group_tests(tests, setup, teardown);
}
