/*
 * Per-field transforms of a grant (common/transform.c): the minimisation
 * engine (R1.0-02 strict minimum; R3.5-02 precision and pseudonymisation
 * chosen for the reuse; R3.5-08 no data irrelevant to a reuser).
 *
 * Every check goes the way a reuser sees data: a dataset record built from
 * JSON, projected by the grant, single-object encoded, decoded with the
 * grant's output schema and rendered back to JSON.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <ftw.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "crypto.h"
#include "grant.h"
#include "sample.h"
#include "schema.h"
#include "testutil.h"
#include "transform.h"

/* A dataset with the types the beneficiaries dataset lacks. */
static const char probe_schema[] =
    "{\"type\": \"record\", \"name\": \"Probe\", \"namespace\": \"test.probe\","
    " \"sb.dataset\": \"probes\", \"sb.subject\": \"person\","
    " \"sb.record_id\": \"probe_id\","
    " \"fields\": ["
    "  {\"name\": \"probe_id\", \"type\": \"string\"},"
    "  {\"name\": \"person\", \"type\": \"string\", \"pii\": \"identifier\"},"
    "  {\"name\": \"latitude\", \"type\": \"double\","
    "   \"doc\": \"Latitude (WGS 84).\", \"pii\": \"location\","
    "   \"example\": 45.764043},"
    "  {\"name\": \"longitude\", \"type\": [\"null\", \"double\"],"
    "   \"default\": null, \"pii\": \"location\"},"
    "  {\"name\": \"weight\", \"type\": \"float\", \"pii\": \"health\"},"
    "  {\"name\": \"count\", \"type\": \"int\"},"
    "  {\"name\": \"total\", \"type\": \"long\"},"
    "  {\"name\": \"seen_on\", \"type\": [\"null\", {\"type\": \"int\","
    "   \"logicalType\": \"date\"}], \"default\": null},"
    "  {\"name\": \"last_seen\", \"type\": [{\"type\": \"long\","
    "   \"logicalType\": \"timestamp-millis\"}, \"null\"]},"
    "  {\"name\": \"note\", \"type\": \"string\"},"
    "  {\"name\": \"nick\", \"type\": [\"string\", \"null\"],"
    "   \"default\": \"none\"},"
    "  {\"name\": \"amount\", \"type\": {\"type\": \"bytes\","
    "   \"logicalType\": \"decimal\", \"precision\": 9, \"scale\": 2}},"
    "  {\"name\": \"big_amount\", \"type\": {\"type\": \"bytes\","
    "   \"logicalType\": \"decimal\", \"precision\": 30, \"scale\": 2}},"
    "  {\"name\": \"micros\", \"type\": {\"type\": \"long\","
    "   \"logicalType\": \"timestamp-micros\"}},"
    "  {\"name\": \"choice\", \"type\": [\"null\", \"int\", \"string\"],"
    "   \"default\": null},"
    "  {\"name\": \"flag\", \"type\": \"boolean\"},"
    "  {\"name\": \"kind\", \"type\": {\"type\": \"enum\", \"name\": \"Kind\","
    "   \"symbols\": [\"A\", \"B\"]}},"
    "  {\"name\": \"kind2\", \"type\": [\"null\", \"Kind\"], \"default\": null}"
    " ]}";

/* A probe record; tests patch the fields they look at. */
static const char probe_record[] =
    "{\"probe_id\": \"P-1\", \"person\": \"PERSON-SECRET-1\","
    " \"latitude\": 45.764043, \"longitude\": -4.8357, \"weight\": 70.25,"
    " \"count\": -3, \"total\": 1234567890123, \"seen_on\": \"1969-12-31\","
    " \"last_seen\": \"1969-12-31T23:59:59.999Z\", \"note\": "
    "\"a\xf0\x9f\x98\x80"
    "b\", \"nick\": \"Zo\xc3\xa9\", \"amount\": \"-245.50\","
    " \"big_amount\": \"12.00\", \"micros\": \"2026-01-01T00:00:00.000001Z\","
    " \"choice\": 5, \"flag\": true, \"kind\": \"A\", \"kind2\": null}";

/* A beneficiaries record (schemas/beneficiaries.avsc). */
static const char ben_record[] =
    "{\"file_id\": \"3f1c2b8e-5d1a-4c2e-9b7f-2a6d8e4c1b09\","
    " \"beneficiary_id\": \"BEN-0000421\","
    " \"last_name\": \"Vandermeersch\", \"first_name\": \"\xc3\x89lodie\","
    " \"birth_date\": \"1984-03-17\","
    " \"email\": \"elodie.vdm@example.org\", \"phone\": null,"
    " \"postcode\": \"69003\", \"household_size\": 5,"
    " \"benefit\": \"ENERGY_VOUCHER\", \"monthly_amount\": \"245.50\","
    " \"income_bracket\": 4, \"opened_on\": \"2025-09-01\","
    " \"updated_at\": \"2026-11-20T08:15:00.000Z\"}";

#define PSEUDONYM SB_TEST_PSEUDONYM

/*
 * Helpers
 */

static json_t *load_json(const char *text)
{
        json_error_t jerr;
        json_t *j =
            json_loads(text, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);

        if (!j)
                fail_msg("bad JSON in test: %s (line %d col %d): %s", jerr.text,
                         jerr.line, jerr.column, text);
        return j;
}

static char *dump(const json_t *j)
{
        return json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
}

static void assert_json_equal(const json_t *expected, const json_t *got,
                              const char *what)
{
        char *e, *g;

        if (json_equal(expected, got))
                return;
        e = dump(expected);
        g = got ? dump(got) : strdup("(null)");
        print_error("%s:\n  expected: %s\n       got: %s\n", what, e, g);
        free(e);
        free(g);
        fail_msg("JSON differs");
}

static char tmp_root[64];

static int rm_entry(const char *path, const struct stat *st, int flag,
                    struct FTW *ftw)
{
        (void)st;
        (void)flag;
        (void)ftw;
        return remove(path);
}

/* A catalog of schemas/ plus the probe dataset, in a temporary dir. */
static sb_catalog_t *catalog_with_probes(void)
{
        static const char *const copied[] = {"beneficiaries.avsc",
                                             "rights.avsc", NULL};
        char path[512], errstr[512] = "";
        const char *const *n;
        sb_catalog_t *cat;
        FILE *fp;

        snprintf(tmp_root, sizeof(tmp_root), "/tmp/sb-test-tr-XXXXXX");
        if (!mkdtemp(tmp_root))
                fail_msg("mkdtemp failed");
        for (n = copied; *n; n++) {
                json_error_t jerr;
                json_t *j;

                snprintf(path, sizeof(path), "%s/%s", SB_SCHEMAS_DIR, *n);
                j = json_load_file(path, 0, &jerr);
                if (!j)
                        fail_msg("%s: %s", path, jerr.text);
                snprintf(path, sizeof(path), "%s/%s", tmp_root, *n);
                if (json_dump_file(j, path, JSON_INDENT(2)))
                        fail_msg("cannot write %s", path);
                json_decref(j);
        }
        snprintf(path, sizeof(path), "%s/probes.avsc", tmp_root);
        fp = fopen(path, "w");
        if (!fp || fputs(probe_schema, fp) == EOF || fclose(fp))
                fail_msg("cannot write %s", path);
        cat = sb_catalog_load(tmp_root, errstr, sizeof(errstr));
        if (!cat)
                fail_msg("sb_catalog_load: %s", errstr);
        return cat;
}

static void catalog_release(sb_catalog_t *cat)
{
        sb_catalog_destroy(cat);
        nftw(tmp_root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* A grant of `fields` (JSON object text) on `dataset` for `reuser`. */
static json_t *grant_json(const char *dataset, const char *reuser,
                          const char *fields)
{
        json_t *g = json_pack("{s:s, s:s, s:s, s:[s], s:s, s:s}", "id",
                              "g-tr-1", "reuser", reuser, "dataset", dataset,
                              "purposes", "statistics", "legal_basis",
                              "gdpr-6-1-e", "status", "approved");

        json_object_set_new(g, "fields", load_json(fields));
        return g;
}

static sb_grant_t *grant_ok(const sb_catalog_t *cat, const char *dataset,
                            const char *fields)
{
        char errstr[512] = "";
        sb_grant_t *g = sb_grant_new(grant_json(dataset, "energy-desk", fields),
                                     "g.json", cat, errstr, sizeof(errstr));

        if (!g)
                fail_msg("sb_grant_new refused %s: %s", fields, errstr);
        return g;
}

/* `base` (a record's JSON text) with the keys of `patch` replaced. */
static json_t *patched(const char *base, const char *patch)
{
        json_t *r = load_json(base);

        if (patch) {
                json_t *p = load_json(patch);

                json_object_update(r, p);
                json_decref(p);
        }
        return r;
}

/*
 * Projects base+patch with a grant of `fields` and checks the output field
 * `name` against `expected` (JSON text).
 */
static void check_one(const sb_catalog_t *cat, const char *dataset,
                      const char *fields, const char *base, const char *patch,
                      const char *name, const char *expected)
{
        sb_grant_t *g = grant_ok(cat, dataset, fields);
        json_t *rec = patched(base, patch), *got, *exp;
        char what[512];

        got = sb_test_project_round_trip(g, NULL, rec, NULL);
        exp = load_json(expected);
        snprintf(what, sizeof(what), "%s with %s%s%s", name, fields,
                 patch ? " on " : "", patch ? patch : "");
        assert_json_equal(exp, json_object_get(got, name), what);
        json_decref(exp);
        json_decref(got);
        json_decref(rec);
        sb_grant_destroy(g);
}

/* The output schema's definition of field `name`. */
static const json_t *out_field(const sb_grant_t *g, const char *name)
{
        const json_t *f = sb_schema_field(g->out, name);

        if (!f)
                fail_msg("output schema has no field '%s'", name);
        return f;
}

static void check_out_field(const sb_grant_t *g, const char *name,
                            const char *expected)
{
        json_t *exp = load_json(expected);

        assert_json_equal(exp, out_field(g, name), name);
        json_decref(exp);
}

/*
 * Generalise
 */

static void generalise_keeps_only_the_year_or_month_of_dates(void **state)
{
        sb_catalog_t *cat = catalog_with_probes();
        sb_grant_t *g;

        (void)state;
        check_one(cat, "beneficiaries",
                  "{\"birth_date\": {\"generalise\": "
                  "\"year\"}}",
                  ben_record, NULL, "birth_date", "1984");
        check_one(cat, "beneficiaries",
                  "{\"birth_date\": {\"generalise\": "
                  "\"month\"}}",
                  ben_record, NULL, "birth_date", "\"1984-03\"");
        /* Timestamps: in UTC, whatever the offset they were given with. */
        check_one(cat, "beneficiaries",
                  "{\"updated_at\": {\"generalise\": "
                  "\"year\"}}",
                  ben_record, NULL, "updated_at", "2026");
        check_one(cat, "beneficiaries",
                  "{\"updated_at\": {\"generalise\": \"month\"}}", ben_record,
                  "{\"updated_at\": \"2027-01-01T00:30:00+01:00\"}",
                  "updated_at", "\"2026-12\"");
        /* Before the epoch: floor, not truncation towards zero. */
        check_one(cat, "probes",
                  "{\"last_seen\": {\"generalise\": "
                  "\"month\"}}",
                  probe_record, NULL, "last_seen", "\"1969-12\"");
        check_one(cat, "probes",
                  "{\"last_seen\": {\"generalise\": "
                  "\"year\"}}",
                  probe_record, NULL, "last_seen", "1969");
        check_one(cat, "probes", "{\"seen_on\": {\"generalise\": \"year\"}}",
                  probe_record, "{\"seen_on\": \"0001-01-01\"}", "seen_on",
                  "1");
        check_one(cat, "probes", "{\"seen_on\": {\"generalise\": \"month\"}}",
                  probe_record, "{\"seen_on\": \"2024-02-29\"}", "seen_on",
                  "\"2024-02\"");
        /* Nullable fields stay nullable: null stays null. */
        check_one(cat, "probes", "{\"seen_on\": {\"generalise\": \"year\"}}",
                  probe_record, "{\"seen_on\": null}", "seen_on", "null");
        check_one(cat, "probes",
                  "{\"last_seen\": {\"generalise\": "
                  "\"month\"}}",
                  probe_record, "{\"last_seen\": null}", "last_seen", "null");

        /* The output type says what the reuser gets: an int year, no
         * month or day left to decode. */
        g = grant_ok(cat, "beneficiaries",
                     "{\"birth_date\": {\"generalise\": \"year\"}, "
                     "\"updated_at\": {\"generalise\": \"month\"}}");
        check_out_field(g, "birth_date",
                        "{\"name\": \"birth_date\", \"type\": \"int\","
                        " \"doc\": \"Year of birth_date (generalised from a "
                        "date). Date of birth.\", \"pii\": \"identity\","
                        " \"sb.transform\": {\"generalise\": \"year\"}}");
        check_out_field(g, "updated_at",
                        "{\"name\": \"updated_at\", \"type\": \"string\","
                        " \"doc\": \"Month of updated_at as YYYY-MM, in UTC "
                        "(generalised from a timestamp). Time the holder last "
                        "changed this record (event time).\", \"pii\": "
                        "\"none\", \"sb.transform\": {\"generalise\": "
                        "\"month\"}}");
        sb_grant_destroy(g);
        g = grant_ok(cat, "probes",
                     "{\"seen_on\": {\"generalise\": \"year\"}, "
                     "\"last_seen\": {\"generalise\": \"year\"}}");
        /* Branch order kept; a null default kept only where it still
         * fits (first branch null). */
        check_out_field(g, "seen_on",
                        "{\"name\": \"seen_on\", \"type\": [\"null\", "
                        "\"int\"], \"default\": null, \"doc\": \"Year of "
                        "seen_on (generalised from a date)\", "
                        "\"sb.transform\": {\"generalise\": \"year\"}}");
        check_out_field(g, "last_seen",
                        "{\"name\": \"last_seen\", \"type\": [\"int\", "
                        "\"null\"], \"doc\": \"Year of last_seen, in UTC "
                        "(generalised from a timestamp)\", \"sb.transform\": "
                        "{\"generalise\": \"year\"}}");
        sb_grant_destroy(g);
        catalog_release(cat);
}

static void bucket_gives_the_lower_bound_of_the_bucket(void **state)
{
        sb_catalog_t *cat = catalog_with_probes();
        sb_grant_t *g;

        (void)state;
        check_one(cat, "beneficiaries",
                  "{\"household_size\": {\"generalise\": {\"bucket\": 2}}}",
                  ben_record, NULL, "household_size", "4");
        check_one(cat, "beneficiaries",
                  "{\"household_size\": {\"generalise\": {\"bucket\": 2}}}",
                  ben_record, "{\"household_size\": 4}", "household_size", "4");
        /* Decimals stay exact decimals. */
        check_one(cat, "beneficiaries",
                  "{\"monthly_amount\": {\"generalise\": {\"bucket\": 50}}}",
                  ben_record, NULL, "monthly_amount", "\"200.00\"");
        check_one(cat, "beneficiaries",
                  "{\"monthly_amount\": {\"generalise\": {\"bucket\": "
                  "0.25}}}",
                  ben_record, "{\"monthly_amount\": \"245.74\"}",
                  "monthly_amount", "\"245.50\"");
        check_one(cat, "probes",
                  "{\"amount\": {\"generalise\": {\"bucket\": 50}}}",
                  probe_record, NULL, "amount", "\"-250.00\"");
        /* The lowest bucket needs the extra digit of the output type. */
        check_one(cat, "probes",
                  "{\"amount\": {\"generalise\": {\"bucket\": 10000000}}}",
                  probe_record, "{\"amount\": \"-9999999.99\"}", "amount",
                  "\"-10000000.00\"");
        /* Negative numbers: the bucket below, not towards zero. */
        check_one(cat, "probes",
                  "{\"count\": {\"generalise\": {\"bucket\": "
                  "2}}}",
                  probe_record, NULL, "count", "-4");
        /* The bucket of INT32_MIN starts below it: clamped to the type. */
        check_one(cat, "probes",
                  "{\"count\": {\"generalise\": {\"bucket\": "
                  "3}}}",
                  probe_record, "{\"count\": -2147483648}", "count",
                  "-2147483648");
        check_one(cat, "probes",
                  "{\"count\": {\"generalise\": {\"bucket\": "
                  "3}}}",
                  probe_record, "{\"count\": 2147483647}", "count",
                  "2147483646");
        check_one(cat, "probes",
                  "{\"total\": {\"generalise\": {\"bucket\": "
                  "1000}}}",
                  probe_record, NULL, "total", "1234567890000");
        check_one(cat, "probes",
                  "{\"total\": {\"generalise\": {\"bucket\": "
                  "10}}}",
                  probe_record, "{\"total\": -9223372036854775807}", "total",
                  "-9223372036854775808");
        check_one(cat, "probes",
                  "{\"latitude\": {\"generalise\": {\"bucket\": "
                  "0.5}}}",
                  probe_record, NULL, "latitude", "45.5");
        check_one(cat, "probes",
                  "{\"latitude\": {\"generalise\": {\"bucket\": "
                  "0.5}}}",
                  probe_record, "{\"latitude\": -0.2}", "latitude", "-0.5");
        /* Decimal widths give the doubles nearest to decimal bounds
         * (601751 * 0.1 is 60175.100000000006 in binary)... */
        check_one(cat, "probes",
                  "{\"latitude\": {\"generalise\": {\"bucket\": "
                  "0.1}}}",
                  probe_record, "{\"latitude\": 60175.1}", "latitude",
                  "60175.1");
        check_one(cat, "probes",
                  "{\"latitude\": {\"generalise\": {\"bucket\": "
                  "0.1}}}",
                  probe_record, "{\"latitude\": 60175.19}", "latitude",
                  "60175.1");
        /* ...and a value a hair below a bound is in the bucket below,
         * although d / w rounds to the bound's multiple. */
        check_one(cat, "probes",
                  "{\"latitude\": {\"generalise\": {\"bucket\": "
                  "0.1}}}",
                  probe_record, "{\"latitude\": -201523.30000000002}",
                  "latitude", "-201523.4");
        check_one(cat, "probes",
                  "{\"weight\": {\"generalise\": {\"bucket\": "
                  "5}}}",
                  probe_record, NULL, "weight", "70.0");
        check_one(cat, "probes",
                  "{\"longitude\": {\"generalise\": "
                  "{\"bucket\": 10}}}",
                  probe_record, "{\"longitude\": null}", "longitude", "null");

        g = grant_ok(cat, "beneficiaries",
                     "{\"household_size\": {\"generalise\": {\"bucket\": 2}},"
                     " \"monthly_amount\": {\"generalise\": {\"bucket\": "
                     "50}}}");
        check_out_field(g, "household_size",
                        "{\"name\": \"household_size\", \"type\": \"int\","
                        " \"doc\": \"Lower bound of the bucket of width 2 "
                        "that holds household_size (generalised from an "
                        "int). Number of people in the household.\","
                        " \"pii\": \"social\", \"sb.transform\": "
                        "{\"generalise\": {\"bucket\": 2}}}");
        check_out_field(g, "monthly_amount",
                        "{\"name\": \"monthly_amount\", \"type\": {\"type\": "
                        "\"bytes\", \"logicalType\": \"decimal\", "
                        "\"precision\": 10, \"scale\": 2}, \"doc\": \"Lower "
                        "bound of the bucket of width 50 that holds "
                        "monthly_amount (generalised from a decimal). Monthly "
                        "amount paid, in euros.\", \"pii\": \"financial\", "
                        "\"sb.transform\": {\"generalise\": {\"bucket\": "
                        "50}}}");
        sb_grant_destroy(g);
        g = grant_ok(cat, "probes",
                     "{\"weight\": {\"generalise\": {\"bucket\": 0.5}}}");
        check_out_field(g, "weight",
                        "{\"name\": \"weight\", \"type\": \"double\", \"doc\": "
                        "\"Lower bound of the bucket of width 0.5 that holds "
                        "weight (generalised from a float)\", \"pii\": "
                        "\"health\", \"sb.transform\": {\"generalise\": "
                        "{\"bucket\": 0.5}}}");
        sb_grant_destroy(g);
        catalog_release(cat);
}

/*
 * A decimal whose bytes the dataset schema's precision does not allow (a
 * holder other than sharebus's may write it: Avro binary does not check
 * precision) is clamped to the precision, never refused, never wrapped.
 */
static void bucket_clamps_decimals_beyond_their_precision(void **state)
{
        static const struct {
                unsigned char bytes[16];
                size_t len;
                const char *expected;
        } rows[] = {
            /* 10^12 cents: past precision 9 */
            {{0x00, 0xe8, 0xd4, 0xa5, 0x10, 0x00}, 6, "\"9999950.00\""},
            /* 2^64: past int64 */
            {{0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0},
             16,
             "\"9999950.00\""},
            /* -2^65 */
            {{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe, 0, 0, 0, 0, 0, 0,
              0, 0},
             16,
             "\"-10000000.00\""},
            /* 2^63: nine bytes, the ninth's sign is not the first's */
            {{0x00, 0x80, 0, 0, 0, 0, 0, 0, 0}, 9, "\"9999950.00\""},
            /* 24550 with redundant sign bytes: read as 245.50 */
            {{0, 0, 0, 0, 0, 0, 0, 0x5f, 0xe6}, 9, "\"200.00\""},
            /* -1 cent, one byte: the bucket below 0; no byte at all is 0 */
            {{0xff}, 1, "\"-50.00\""},
            {{0}, 0, "\"0.00\""},
        };
        sb_catalog_t *cat = catalog_with_probes();
        sb_grant_t *g = grant_ok(cat, "probes",
                                 "{\"amount\": {\"generalise\": {\"bucket\": "
                                 "50}}}");
        json_t *rec = load_json(probe_record), *got = NULL, *exp;
        char errstr[512] = "";
        avro_value_t in, out, f;
        size_t i;

        (void)state;
        assert_int_equal(
            SB_OK, sb_schema_value_new(g->in, &in, errstr, sizeof(errstr)));
        assert_int_equal(
            SB_OK, sb_schema_value_new(g->out, &out, errstr, sizeof(errstr)));
        for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
                assert_int_equal(SB_OK,
                                 sb_avrojson_from_json(g->in->aj, rec, &in,
                                                       errstr, sizeof(errstr)));
                assert_int_equal(
                    0, avro_value_get_by_name(&in, "amount", &f, NULL));
                assert_int_equal(0,
                                 avro_value_set_bytes(&f, (void *)rows[i].bytes,
                                                      rows[i].len));
                if (sb_grant_project(g, NULL, &in, PSEUDONYM, &out, errstr,
                                     sizeof(errstr)) ||
                    sb_avrojson_to_json(g->out->aj, &out, &got, errstr,
                                        sizeof(errstr)))
                        fail_msg("row %zu: %s", i, errstr);
                exp = load_json(rows[i].expected);
                assert_json_equal(exp, json_object_get(got, "amount"),
                                  "clamped decimal");
                /* Written in the shortest two's complement form. */
                {
                        const void *b;
                        size_t size;

                        assert_int_equal(0, avro_value_get_by_name(
                                                &out, "amount", &f, NULL));
                        assert_int_equal(0,
                                         avro_value_get_bytes(&f, &b, &size));
                        assert_true(size >= 1 && size <= 4);
                }
                json_decref(exp);
                json_decref(got);
        }
        avro_value_decref(&in);
        avro_value_decref(&out);
        json_decref(rec);
        sb_grant_destroy(g);
        catalog_release(cat);
}

static void truncate_keeps_the_first_n_characters(void **state)
{
        sb_catalog_t *cat = catalog_with_probes();
        char *longtext, *expected, *patch;
        sb_grant_t *g;
        int i;

        (void)state;
        check_one(cat, "beneficiaries", "{\"postcode\": {\"truncate\": 2}}",
                  ben_record, NULL, "postcode", "\"69\"");
        /* Characters, not bytes: "É" is two bytes in UTF-8. */
        check_one(cat, "beneficiaries", "{\"first_name\": {\"truncate\": 2}}",
                  ben_record, NULL, "first_name", "\"\xc3\x89l\"");
        check_one(cat, "beneficiaries", "{\"first_name\": {\"truncate\": 1}}",
                  ben_record, NULL, "first_name", "\"\xc3\x89\"");
        /* A four-byte character is never cut. */
        check_one(cat, "probes", "{\"note\": {\"truncate\": 2}}", probe_record,
                  NULL, "note", "\"a\xf0\x9f\x98\x80\"");
        check_one(cat, "probes", "{\"note\": {\"truncate\": 1}}", probe_record,
                  NULL, "note", "\"a\"");
        /* Shorter than N: unchanged; empty stays empty. */
        check_one(cat, "probes", "{\"note\": {\"truncate\": 3}}", probe_record,
                  NULL, "note",
                  "\"a\xf0\x9f\x98\x80"
                  "b\"");
        check_one(cat, "probes", "{\"note\": {\"truncate\": 3}}", probe_record,
                  "{\"note\": \"\"}", "note", "\"\"");
        /* uuid strings and nullable strings; null stays null. */
        check_one(cat, "beneficiaries", "{\"file_id\": {\"truncate\": 8}}",
                  ben_record, NULL, "file_id", "\"3f1c2b8e\"");
        check_one(cat, "probes", "{\"nick\": {\"truncate\": 2}}", probe_record,
                  NULL, "nick", "\"Zo\"");
        check_one(cat, "probes", "{\"nick\": {\"truncate\": 2}}", probe_record,
                  "{\"nick\": null}", "nick", "null");
        check_one(cat, "beneficiaries", "{\"email\": {\"truncate\": 3}}",
                  ben_record, "{\"email\": null}", "email", "null");

        /* A prefix longer than the stack buffer of the hot path. */
        longtext = calloc(1, 2 * 400 + 1);
        expected = calloc(1, 2 * 300 + 3);
        assert_non_null(longtext);
        assert_non_null(expected);
        for (i = 0; i < 400; i++)
                memcpy(longtext + 2 * i, "\xc3\xa9", 2);
        expected[0] = '"';
        memcpy(expected + 1, longtext, 2 * 300);
        expected[2 * 300 + 1] = '"';
        assert_true(asprintf(&patch, "{\"note\": \"%s\"}", longtext) > 0);
        check_one(cat, "probes", "{\"note\": {\"truncate\": 300}}",
                  probe_record, patch, "note", expected);
        free(patch);
        free(expected);
        free(longtext);

        g = grant_ok(cat, "beneficiaries",
                     "{\"postcode\": {\"truncate\": 2}, \"first_name\": "
                     "{\"truncate\": 1}, \"file_id\": {\"truncate\": 8}}");
        check_out_field(g, "postcode",
                        "{\"name\": \"postcode\", \"type\": \"string\", "
                        "\"doc\": \"First 2 characters of postcode "
                        "(truncated). Postcode of the main residence.\", "
                        "\"pii\": \"location\", \"sb.transform\": "
                        "{\"truncate\": 2}}");
        check_out_field(g, "first_name",
                        "{\"name\": \"first_name\", \"type\": \"string\", "
                        "\"doc\": \"First character of first_name "
                        "(truncated). Given name as registered.\", "
                        "\"pii\": \"identity\", \"sb.transform\": "
                        "{\"truncate\": 1}}");
        /* A prefix of a uuid is not a uuid. */
        assert_string_equal("string", json_string_value(json_object_get(
                                          out_field(g, "file_id"), "type")));
        sb_grant_destroy(g);
        catalog_release(cat);
}

static void round_keeps_n_decimals(void **state)
{
        sb_catalog_t *cat = catalog_with_probes();
        sb_grant_t *g;

        (void)state;
        check_one(cat, "probes", "{\"latitude\": {\"round\": 2}}", probe_record,
                  NULL, "latitude", "45.76");
        check_one(cat, "probes", "{\"latitude\": {\"round\": 0}}", probe_record,
                  NULL, "latitude", "46.0");
        check_one(cat, "probes", "{\"latitude\": {\"round\": 4}}", probe_record,
                  NULL, "latitude", "45.764");
        check_one(cat, "probes", "{\"longitude\": {\"round\": 1}}",
                  probe_record, NULL, "longitude", "-4.8");
        check_one(cat, "probes", "{\"longitude\": {\"round\": 1}}",
                  probe_record, "{\"longitude\": null}", "longitude", "null");
        /* A float is read as the float it is (70.25f is exact). */
        check_one(cat, "probes", "{\"weight\": {\"round\": 1}}", probe_record,
                  NULL, "weight", "70.3");
        /* Too large to have decimals: unchanged, not overflowed. */
        check_one(cat, "probes", "{\"latitude\": {\"round\": 10}}",
                  probe_record, "{\"latitude\": 1e300}", "latitude", "1e300");

        g = grant_ok(cat, "probes",
                     "{\"latitude\": {\"round\": 2}, \"weight\": "
                     "{\"round\": 1}, \"longitude\": {\"round\": 0}}");
        check_out_field(g, "latitude",
                        "{\"name\": \"latitude\", \"type\": \"double\", "
                        "\"doc\": \"latitude rounded to 2 decimals. Latitude "
                        "(WGS 84).\", \"pii\": \"location\", "
                        "\"sb.transform\": {\"round\": 2}}");
        check_out_field(g, "weight",
                        "{\"name\": \"weight\", \"type\": \"double\", "
                        "\"doc\": \"weight rounded to 1 decimal\", \"pii\": "
                        "\"health\", \"sb.transform\": {\"round\": 1}}");
        check_out_field(g, "longitude",
                        "{\"name\": \"longitude\", \"type\": [\"null\", "
                        "\"double\"], \"default\": null, \"doc\": "
                        "\"longitude rounded to a whole number\", \"pii\": "
                        "\"location\", \"sb.transform\": {\"round\": 0}}");
        sb_grant_destroy(g);
        catalog_release(cat);
}

static void pseudonymise_uses_the_key_of_the_reuser_and_dataset(void **state)
{
        sb_catalog_t *cat = catalog_with_probes();
        char errstr[512] = "", expected[SB_PSEUDONYM_HEXLEN + 1];
        char other[SB_PSEUDONYM_HEXLEN + 1];
        sb_pseudonymiser_t *ps, *ps_other;
        avro_value_t in, out;
        sb_key_t *key;
        sb_grant_t *g;
        json_t *rec, *got;
        sb_buf_t enc = {0};
        const char *v;

        (void)state;
        assert_int_equal(SB_OK, sb_crypto_init(errstr, sizeof(errstr)));
        key = sb_key_random();
        assert_non_null(key);
        ps = sb_pseudonymiser_new(key, "energy-desk", "beneficiaries");
        ps_other = sb_pseudonymiser_new(key, "stats-office", "beneficiaries");
        assert_non_null(ps);
        assert_non_null(ps_other);
        g = grant_ok(cat, "beneficiaries",
                     "{\"email\": {\"pseudonymise\": true}, \"file_id\": "
                     "{\"pseudonymise\": true}, \"postcode\": \"keep\"}");
        assert_int_equal(1, g->pseudonymises);

        rec = load_json(ben_record);
        got = sb_test_project_round_trip(g, ps, rec, &enc);
        sb_pseudonymise(ps, "elodie.vdm@example.org",
                        strlen("elodie.vdm@example.org"), expected);
        v = json_string_value(json_object_get(got, "email"));
        assert_non_null(v);
        assert_string_equal(expected, v);
        assert_int_equal(SB_PSEUDONYM_HEXLEN, strlen(v));
        /* Another reuser's key gives another value: no join. */
        sb_pseudonymise(ps_other, "elodie.vdm@example.org",
                        strlen("elodie.vdm@example.org"), other);
        assert_string_not_equal(other, v);
        sb_pseudonymise(ps, "3f1c2b8e-5d1a-4c2e-9b7f-2a6d8e4c1b09", 36,
                        expected);
        assert_string_equal(expected,
                            json_string_value(json_object_get(got, "file_id")));
        /* The clear values are nowhere in the bytes. */
        assert_null(memmem(enc.data, enc.len, "elodie", 6));
        assert_null(memmem(enc.data, enc.len, "3f1c2b8e", 8));
        json_decref(got);
        sb_buf_release(&enc);

        /* The same key as the subject pseudonym: a field holding a
         * subject id pseudonymises to that subject's pseudonym. */
        json_object_set_new(rec, "email", json_string("BEN-0000421"));
        got = sb_test_project_round_trip(g, ps, rec, NULL);
        sb_pseudonymise(ps, "BEN-0000421", strlen("BEN-0000421"), expected);
        assert_string_equal(expected,
                            json_string_value(json_object_get(got, "email")));
        json_decref(got);

        /* Null stays null. */
        json_object_set_new(rec, "email", json_null());
        got = sb_test_project_round_trip(g, ps, rec, NULL);
        assert_true(json_is_null(json_object_get(got, "email")));
        json_decref(got);

        /* Without the pseudonymiser, projection refuses, naming the
         * field. */
        assert_int_equal(
            SB_OK, sb_schema_value_new(g->in, &in, errstr, sizeof(errstr)));
        assert_int_equal(
            SB_OK, sb_schema_value_new(g->out, &out, errstr, sizeof(errstr)));
        assert_int_equal(SB_OK, sb_avrojson_from_json(g->in->aj, rec, &in,
                                                      errstr, sizeof(errstr)));
        assert_int_equal(SB_ERR_INVALID_ARG,
                         sb_grant_project(g, NULL, &in, PSEUDONYM, &out, errstr,
                                          sizeof(errstr)));
        assert_string_equal("grant 'g-tr-1': field 'file_id': pseudonymise "
                            "needs the pseudonymiser of the grant's reuser "
                            "and dataset",
                            errstr);
        avro_value_decref(&in);
        avro_value_decref(&out);

        check_out_field(g, "email",
                        "{\"name\": \"email\", \"type\": [\"null\", "
                        "\"string\"], \"default\": null, \"doc\": \"Pseudonym "
                        "of email: keyed BLAKE2b, 32 hex characters, under "
                        "the key of this reuser and dataset that also makes "
                        "the subject pseudonym (pseudonymised). Contact "
                        "e-mail address, when the person gave one.\", "
                        "\"pii\": \"contact\", \"sb.transform\": "
                        "{\"pseudonymise\": true}}");
        json_decref(rec);
        sb_grant_destroy(g);
        /* Keep and drop only: no pseudonymiser needed. */
        g = grant_ok(cat, "beneficiaries", "{\"postcode\": \"keep\"}");
        assert_int_equal(0, g->pseudonymises);
        sb_grant_destroy(g);
        sb_pseudonymiser_destroy(ps);
        sb_pseudonymiser_destroy(ps_other);
        sb_key_destroy(key);
        catalog_release(cat);
}

/* Same grant twice: same output schema, same fingerprint (gateway and
 * reuser agent derive it independently). */
static void output_schema_is_a_function_of_the_grant(void **state)
{
        static const char fields[] =
            "{\"household_size\": {\"generalise\": {\"bucket\": 2}},"
            " \"birth_date\": {\"generalise\": \"year\"},"
            " \"postcode\": {\"truncate\": 2}, \"benefit\": \"keep\"}";
        sb_catalog_t *cat = catalog_with_probes();
        sb_grant_t *a, *b;
        char *names;

        (void)state;
        a = grant_ok(cat, "beneficiaries", fields);
        b = grant_ok(cat, "beneficiaries", fields);
        names =
            json_dumps(json_object_get(a->out->json, "fields"), JSON_COMPACT);
        assert_non_null(strstr(names, "\"name\":\"birth_date\",\"type\":"
                                      "\"int\""));
        free(names);
        sb_grant_destroy(a);
        sb_grant_destroy(b);
        catalog_release(cat);
}

/*
 * Validation on types the beneficiaries dataset lacks (test_grant.c has
 * the rest of the table).
 */
static void transforms_that_do_not_fit_the_type_are_refused(void **state)
{
        static const struct {
                const char *fields, *expected;
        } rows[] = {
            {"{\"big_amount\": {\"generalise\": {\"bucket\": 10}}}",
             "grant 'g.json': key 'fields.big_amount': bucket takes decimals "
             "of precision up to 18, 'big_amount' has precision 30"},
            {"{\"amount\": {\"generalise\": {\"bucket\": 0.001}}}",
             "grant 'g.json': key 'fields.amount': bucket width 0.001 is "
             "finer than the scale of decimal field 'amount' (2 decimals)"},
            {"{\"amount\": {\"generalise\": {\"bucket\": 0.015}}}",
             "grant 'g.json': key 'fields.amount': bucket width 0.015 is "
             "finer than the scale of decimal field 'amount' (2 decimals)"},
            {"{\"amount\": {\"generalise\": {\"bucket\": 10000001}}}",
             "grant 'g.json': key 'fields.amount': bucket width 10000001 is "
             "wider than the range of decimal field 'amount' (precision 9, "
             "scale 2)"},
            {"{\"choice\": {\"truncate\": 2}}",
             "grant 'g.json': key 'fields.choice': truncate needs a string "
             "field, 'choice' is a union"},
            {"{\"micros\": {\"generalise\": \"year\"}}",
             "grant 'g.json': key 'fields.micros': generalise \"year\" needs "
             "a date or timestamp-millis field, 'micros' is "
             "timestamp-micros"},
            {"{\"kind2\": {\"pseudonymise\": true}}",
             "grant 'g.json': key 'fields.kind2': pseudonymise needs a string "
             "field, 'kind2' is nullable Kind"},
            {"{\"kind\": {\"truncate\": 1}}",
             "grant 'g.json': key 'fields.kind': truncate needs a string "
             "field, 'kind' is enum 'Kind'"},
            {"{\"flag\": {\"generalise\": {\"bucket\": 1}}}",
             "grant 'g.json': key 'fields.flag': generalise bucket needs an "
             "int, long, float, double or decimal field, 'flag' is boolean"},
            {"{\"seen_on\": {\"round\": 1}}",
             "grant 'g.json': key 'fields.seen_on': round needs a float or "
             "double field, 'seen_on' is nullable date"},
            {"{\"total\": {\"generalise\": {\"bucket\": 1e19}}}",
             "grant 'g.json': key 'fields.total': bucket width for long field "
             "'total' must be a whole number from 1 to 9223372036854775807, "
             "got 1e+19"},
            {"{\"count\": {\"generalise\": {\"bucket\": 4294967296}}}",
             "grant 'g.json': key 'fields.count': bucket width for int field "
             "'count' must be a whole number from 1 to 2147483647, got "
             "4294967296"},
            {"{\"person\": {\"pseudonymise\": true}}",
             "grant 'g.json': key 'fields.person': the subject identifier is "
             "never shared; reusers get a pseudonym (subject_key)"},
        };
        sb_catalog_t *cat = catalog_with_probes();
        size_t i, failures = 0;

        (void)state;
        for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
                char errstr[512] = "";
                sb_grant_t *g =
                    sb_grant_new(grant_json("probes", "r", rows[i].fields),
                                 "g.json", cat, errstr, sizeof(errstr));

                if (g) {
                        print_error("accepted %s\n", rows[i].fields);
                        sb_grant_destroy(g);
                        failures++;
                } else if (strcmp(rows[i].expected, errstr)) {
                        print_error("%s:\n  expected: %s\n  got:      %s\n",
                                    rows[i].fields, rows[i].expected, errstr);
                        failures++;
                }
        }
        catalog_release(cat);
        if (failures)
                fail_msg("%zu grant(s) not refused as expected", failures);
}

/*
 * Property: over random grants and random records, nothing leaves that was
 * not granted, at no more precision than granted, and deterministically.
 */

static uint64_t rng_state;

static uint64_t rnd(void)
{
        /* xorshift64*: the same sequence on every platform */
        rng_state ^= rng_state >> 12;
        rng_state ^= rng_state << 25;
        rng_state ^= rng_state >> 27;
        return rng_state * 2685821657736338717ULL;
}

static uint64_t rnd_below(uint64_t n)
{
        return rnd() % n;
}

static double rnd_unit(void)
{
        return (double)(rnd() >> 11) / 9007199254740992.0;
}

enum prop_op {
        OP_KEEP,
        OP_YEAR,
        OP_MONTH,
        OP_BUCKET,
        OP_TRUNCATE,
        OP_ROUND,
        OP_PSEUDO,
        OP__CNT
};

/* The test's own reading of a field type: what fits it, independently of
 * transform.c. */
enum prop_kind {
        K_OTHER,
        K_INT,
        K_LONG,
        K_FLOAT,
        K_DOUBLE,
        K_STRING,
        K_DATE,
        K_TS,
        K_DECIMAL
};

static enum prop_kind prop_kind_of(const json_t *t)
{
        const char *name, *lt;

        if (json_is_array(t)) {
                const json_t *a = json_array_get(t, 0),
                             *b = json_array_get(t, 1);

                if (json_array_size(t) != 2)
                        return K_OTHER;
                if (json_is_string(a) && !strcmp(json_string_value(a), "null"))
                        return prop_kind_of(b);
                if (json_is_string(b) && !strcmp(json_string_value(b), "null"))
                        return prop_kind_of(a);
                return K_OTHER;
        }
        if (json_is_string(t)) {
                name = json_string_value(t);
                return !strcmp(name, "int")      ? K_INT
                       : !strcmp(name, "long")   ? K_LONG
                       : !strcmp(name, "float")  ? K_FLOAT
                       : !strcmp(name, "double") ? K_DOUBLE
                       : !strcmp(name, "string") ? K_STRING
                                                 : K_OTHER;
        }
        name = json_string_value(json_object_get(t, "type"));
        lt = json_string_value(json_object_get(t, "logicalType"));
        if (!name)
                return K_OTHER;
        if (!lt)
                return prop_kind_of(json_object_get(t, "type"));
        if (!strcmp(lt, "date"))
                return K_DATE;
        if (!strcmp(lt, "timestamp-millis"))
                return K_TS;
        if (!strcmp(lt, "uuid"))
                return K_STRING;
        if (!strcmp(lt, "decimal") && !strcmp(name, "bytes") &&
            json_integer_value(json_object_get(t, "precision")) <= 18)
                return K_DECIMAL;
        return K_OTHER;
}

static int prop_fits(enum prop_op op, enum prop_kind k)
{
        switch (op) {
        case OP_KEEP:
                return 1;
        case OP_YEAR:
        case OP_MONTH:
                return k == K_DATE || k == K_TS;
        case OP_BUCKET:
                return k == K_INT || k == K_LONG || k == K_FLOAT ||
                       k == K_DOUBLE || k == K_DECIMAL;
        case OP_TRUNCATE:
        case OP_PSEUDO:
                return k == K_STRING;
        case OP_ROUND:
                return k == K_FLOAT || k == K_DOUBLE;
        default:
                return 0;
        }
}

/* A transform of kind `op` with random parameters fitting kind `k`. */
static json_t *prop_spec(enum prop_op op, enum prop_kind k)
{
        static const int iw[] = {1, 2, 3, 5, 7, 10, 100, 1000, 1000000};
        static const double dw[] = {0.5, 2, 0.25, 10, 0.1, 3, 1e6, 0.001};
        static const double decw[] = {1, 50, 0.5, 0.05, 1000, 0.01};
        json_t *w;

        switch (op) {
        case OP_KEEP:
                return json_string("keep");
        case OP_YEAR:
                return json_pack("{s:s}", "generalise", "year");
        case OP_MONTH:
                return json_pack("{s:s}", "generalise", "month");
        case OP_BUCKET:
                if (k == K_DECIMAL)
                        w = json_real(decw[rnd_below(6)]);
                else if (k == K_FLOAT || k == K_DOUBLE)
                        w = json_real(dw[rnd_below(8)]);
                else
                        w = json_integer(iw[rnd_below(9)]);
                return json_pack("{s:{s:o}}", "generalise", "bucket", w);
        case OP_TRUNCATE:
                return json_pack("{s:i}", "truncate", 1 + (int)rnd_below(6));
        case OP_ROUND:
                return json_pack("{s:i}", "round", (int)rnd_below(11));
        default:
                return json_pack("{s:b}", "pseudonymise", 1);
        }
}

static size_t utf8_len(const char *s)
{
        size_t n = 0;

        for (; *s; s++)
                if (((unsigned char)*s & 0xC0) != 0x80)
                        n++;
        return n;
}

/* "-245.50" at scale 2 -> -24550 */
static int64_t dec_unscaled(const char *s, int scale)
{
        int64_t v = 0;
        int neg = *s == '-', frac = -1;

        if (*s == '-' || *s == '+')
                s++;
        for (; *s; s++) {
                if (*s == '.') {
                        frac = 0;
                        continue;
                }
                v = v * 10 + (*s - '0');
                if (frac >= 0)
                        frac++;
        }
        for (frac = frac < 0 ? 0 : frac; frac < scale; frac++)
                v *= 10;
        return neg ? -v : v;
}

static void prop_fail(uint64_t seed, const char *ctx, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void prop_fail(uint64_t seed, const char *ctx, const char *fmt, ...)
{
        char msg[1024];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        fail_msg("seed 0x%016" PRIx64 " (SB_TEST_SEED to reproduce): %s: %s",
                 seed, ctx, msg);
}

/* Checks one output value `y` of input `x` under `spec`. */
static void prop_check_value(uint64_t seed, const char *ctx, const json_t *spec,
                             const json_t *ftype, const json_t *x,
                             const json_t *y, const sb_pseudonymiser_t *ps)
{
        enum prop_kind k = prop_kind_of(ftype);
        const json_t *arg;
        char *xs = dump(x), *ys = dump(y);

        if (json_is_string(spec)) { /* keep */
                if (!json_equal(x, y))
                        prop_fail(seed, ctx, "kept %s became %s", xs, ys);
                goto done;
        }
        if (json_is_null(x)) {
                if (!json_is_null(y))
                        prop_fail(seed, ctx, "null became %s", ys);
                goto done;
        }
        if ((arg = json_object_get(spec, "generalise"))) {
                const char *g = json_string_value(arg);

                if (g && !strcmp(g, "year")) {
                        /* An int: it cannot carry a month or a day. */
                        if (!json_is_integer(y) ||
                            json_integer_value(y) !=
                                strtoll(json_string_value(x), NULL, 10))
                                prop_fail(seed, ctx, "year of %s is %s", xs,
                                          ys);
                } else if (g) {
                        const char *d = json_string_value(x);
                        size_t dl = strchr(d, 'T')
                                        ? (size_t)(strchr(d, 'T') - d)
                                        : strlen(d);

                        if (!json_is_string(y) ||
                            strlen(json_string_value(y)) != dl - 3 ||
                            strncmp(json_string_value(y), d, dl - 3))
                                prop_fail(seed, ctx, "month of %s is %s", xs,
                                          ys);
                } else {
                        const json_t *w = json_object_get(arg, "bucket");

                        if (k == K_INT || k == K_LONG) {
                                json_int_t xv = json_integer_value(x),
                                           yv = json_integer_value(y),
                                           wv = json_integer_value(w);
                                /* The bucket of the type's minimum may
                                 * start below it: clamped there. */
                                int clamped = (k == K_INT && yv == INT32_MIN) ||
                                              (k == K_LONG && yv == INT64_MIN);

                                if (!json_is_integer(y) ||
                                    (!clamped && (yv % wv != 0 || yv > xv ||
                                                  xv - yv >= wv)))
                                        prop_fail(seed, ctx,
                                                  "bucket %" JSON_INTEGER_FORMAT
                                                  " of %s is %s",
                                                  wv, xs, ys);
                        } else if (k == K_DECIMAL) {
                                int scale = (int)json_integer_value(
                                    json_object_get(ftype, "scale"));
                                int64_t xv = dec_unscaled(json_string_value(x),
                                                          scale),
                                        yv = dec_unscaled(json_string_value(y),
                                                          scale),
                                        wv = llround(json_number_value(w) *
                                                     pow(10, scale));

                                if (yv % wv != 0 || yv > xv || xv - yv >= wv)
                                        prop_fail(seed, ctx,
                                                  "bucket %g of %s is %s",
                                                  json_number_value(w), xs, ys);
                        } else {
                                double xv = json_number_value(x),
                                       yv = json_real_value(y),
                                       wv = json_number_value(w), q = yv / wv;

                                if (k == K_FLOAT)
                                        xv = (float)xv;
                                if (!json_is_real(y) || yv > xv ||
                                    xv - yv >= wv * (1 + 1e-9) ||
                                    fabs(q - nearbyint(q)) >
                                        1e-9 * (1 + fabs(q)))
                                        prop_fail(seed, ctx,
                                                  "bucket %g of %s is %s", wv,
                                                  xs, ys);
                        }
                }
        } else if ((arg = json_object_get(spec, "truncate"))) {
                const char *xv = json_string_value(x),
                           *yv = json_string_value(y);
                size_t n = (size_t)json_integer_value(arg), xl = utf8_len(xv);

                if (!yv || utf8_len(yv) != (xl < n ? xl : n) ||
                    strncmp(xv, yv, strlen(yv)))
                        prop_fail(seed, ctx, "truncate %zu of %s is %s", n, xs,
                                  ys);
        } else if ((arg = json_object_get(spec, "round"))) {
                int n = (int)json_integer_value(arg);
                double xv = json_number_value(x), yv = json_real_value(y),
                       p = pow(10, n), want;
                char text[512];

                if (k == K_FLOAT)
                        xv = (float)xv;
                want =
                    fabs(xv * p) < 4503599627370496.0 ? round(xv * p) / p : xv;
                /* ...and, independently: y is the double nearest to a
                 * decimal of n places, within half a unit of x. */
                snprintf(text, sizeof(text), "%.*f", n, yv);
                if (!json_is_real(y) || yv != want ||
                    strtod(text, NULL) != yv ||
                    fabs(yv - xv) > 0.5 / p * (1 + 1e-9) + fabs(xv) * 1e-15)
                        prop_fail(seed, ctx, "round %d of %s is %s", n, xs, ys);
        } else if (json_object_get(spec, "pseudonymise")) {
                char want[SB_PSEUDONYM_HEXLEN + 1];
                const char *xv = json_string_value(x);

                sb_pseudonymise(ps, xv, strlen(xv), want);
                if (!json_is_string(y) || strcmp(want, json_string_value(y)))
                        prop_fail(seed, ctx, "pseudonym of %s is %s", xs, ys);
        } else {
                prop_fail(seed, ctx, "unexpected spec");
        }
done:
        free(xs);
        free(ys);
}

/* Random records of the probe dataset, as JSON. */
static json_t *prop_probe_record(size_t i)
{
        static const char *const cps[] = {"a",
                                          "Z",
                                          "0",
                                          " ",
                                          "\xc3\xa9",
                                          "\xc3\x9f",
                                          "\xe2\x82\xac",
                                          "\xe4\xb8\xad",
                                          "\xf0\x9f\x98\x80"};
        char note[64] = "", nick[64] = "", date[48], ts[96], amount[48];
        char id[32];
        json_t *r, *lon, *seen_on, *last_seen, *nick_v, *choice, *kind2;
        const char *kind;
        size_t n, j;
        double lat;
        float weight;
        int32_t count;
        int64_t cents, total;
        int flag;

        for (n = rnd_below(10), j = 0; j < n; j++)
                strcat(note, cps[rnd_below(9)]);
        for (n = rnd_below(6), j = 0; j < n; j++)
                strcat(nick, cps[rnd_below(9)]);
        snprintf(date, sizeof(date), "%04d-%02d-%02d", 1 + (int)rnd_below(9999),
                 1 + (int)rnd_below(12), 1 + (int)rnd_below(28));
        snprintf(ts, sizeof(ts), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
                 1 + (int)rnd_below(9999), 1 + (int)rnd_below(12),
                 1 + (int)rnd_below(28), (int)rnd_below(24), (int)rnd_below(60),
                 (int)rnd_below(60), (int)rnd_below(1000));
        cents = (int64_t)rnd_below(1999999999) - 999999999;
        snprintf(amount, sizeof(amount), "%s%" PRId64 ".%02d",
                 cents < 0 ? "-" : "", (cents < 0 ? -cents : cents) / 100,
                 (int)((cents < 0 ? -cents : cents) % 100));
        snprintf(id, sizeof(id), "P-%zu", i);
        switch (rnd_below(6)) {
        case 0:
                lat = (rnd_unit() - 0.5) * 2e300;
                break;
        case 1:
                lat = (rnd_unit() - 0.5) * 1e-6;
                break;
        case 2:
                lat = (double)(int64_t)(rnd_unit() * 1000) / 4;
                break;
        default:
                lat = (rnd_unit() - 0.5) * 180;
                break;
        }
        /* One draw per statement: argument evaluation order is
         * unspecified, and the sequence must not depend on the compiler. */
        lon = rnd_below(4) ? json_real((rnd_unit() - 0.5) * 360) : json_null();
        weight = (float)((rnd_unit() - 0.3) * 300);
        if (rnd_below(8))
                count = (int32_t)(uint32_t)rnd();
        else
                count = rnd_below(2) ? INT32_MIN : INT32_MAX;
        if (rnd_below(8))
                total = (int64_t)(rnd() >> 2) - (INT64_C(1) << 61);
        else
                total = rnd_below(2) ? -INT64_MAX : INT64_MAX;
        seen_on = rnd_below(3) ? json_string(date) : json_null();
        last_seen = rnd_below(3) ? json_string(ts) : json_null();
        nick_v = rnd_below(3) ? json_string(nick) : json_null();
        choice = rnd_below(2) ? json_integer(7) : json_null();
        flag = (int)rnd_below(2);
        kind = rnd_below(2) ? "A" : "B";
        kind2 = rnd_below(2) ? json_string("B") : json_null();
        r = json_pack("{s:s, s:s, s:f, s:o, s:f, s:i, s:I, s:o, s:o, s:s, "
                      "s:o, s:s, s:s, s:s, s:o, s:b, s:s, s:o}",
                      "probe_id", id, "person", "PERSON-SECRET", "latitude",
                      lat, "longitude", lon, "weight", (double)weight, "count",
                      (int)count, "total", (json_int_t)total, "seen_on",
                      seen_on, "last_seen", last_seen, "note", note, "nick",
                      nick_v, "amount", amount, "big_amount", "1.50", "micros",
                      "2026-01-01T00:00:00.000001Z", "choice", choice, "flag",
                      flag, "kind", kind, "kind2", kind2);
        if (!r)
                fail_msg("cannot build a probe record");
        return r;
}

/* Sample beneficiaries records (cli/sample.c), as JSON. */
static json_t *prop_sample_records(uint64_t seed, size_t subjects)
{
        json_t *recs = json_array();
        char *buf = NULL, *line, *save = NULL;
        size_t size = 0;
        FILE *fp = open_memstream(&buf, &size);

        assert_non_null(fp);
        sb_sample_write(fp, subjects, seed);
        fclose(fp);
        for (line = strtok_r(buf, "\n", &save); line;
             line = strtok_r(NULL, "\n", &save))
                json_array_append_new(recs, load_json(line));
        free(buf);
        return recs;
}

/*
 * One random grant on `dataset`, checked on `per_grant` random records of
 * `recs`. Returns 1 if the grant was valid (and so exercised).
 */
static int prop_one_grant(uint64_t seed, size_t iter, const sb_catalog_t *cat,
                          const char *dataset, const json_t *recs,
                          size_t per_grant, const sb_key_t *key)
{
        const sb_schema_t *in = sb_catalog_dataset(cat, dataset);
        const json_t *dfields = json_object_get(in->json, "fields"), *f;
        json_t *fields = json_object(), *gj, *granted = json_object();
        int allow_unfit = rnd_below(4) == 0, valid = 1;
        char errstr[512] = "", ctx[256], reuser[32], first_bad[128] = "";
        sb_pseudonymiser_t *ps;
        sb_buf_t first = {0}, enc = {0};
        avro_value_t iv, ov, bv;
        sb_grant_t *g;
        size_t i, r;
        char *schema_text;

        snprintf(reuser, sizeof(reuser), "reuser-%zu", iter % 5);
        json_array_foreach(dfields, i, f)
        {
                const char *name =
                    json_string_value(json_object_get(f, "name"));
                enum prop_kind k = prop_kind_of(json_object_get(f, "type"));
                uint64_t c = rnd_below(10);
                enum prop_op op;

                if (!strcmp(name, in->subject_field) || c < 3)
                        continue;
                if (c == 3) {
                        json_object_set_new(fields, name, json_string("drop"));
                        continue;
                }
                /* A fitting transform, or any when unfit ones are allowed. */
                do
                        op = (enum prop_op)rnd_below(OP__CNT);
                while (!allow_unfit && !prop_fits(op, k));
                json_object_set_new(fields, name, prop_spec(op, k));
                if (!prop_fits(op, k)) {
                        if (valid)
                                snprintf(first_bad, sizeof(first_bad),
                                         "key 'fields.%s': ", name);
                        valid = 0;
                } else {
                        json_object_set(granted, name,
                                        json_object_get(fields, name));
                }
        }
        if (valid && json_object_size(granted) == 0) {
                valid = 0;
                snprintf(first_bad, sizeof(first_bad),
                         "key 'fields': keeps no field");
        }
        gj = grant_json(dataset, reuser, "{}");
        json_object_set(gj, "fields", fields);
        schema_text = dump(fields);
        snprintf(ctx, sizeof(ctx), "grant %zu on %s %.160s", iter, dataset,
                 schema_text);
        free(schema_text);
        g = sb_grant_new(gj, "g.json", cat, errstr, sizeof(errstr));
        if (!valid) {
                /* Exactly the transforms that fit are accepted; the
                 * refusal names the first field at fault. */
                if (g)
                        prop_fail(seed, ctx,
                                  "accepted a transform that does "
                                  "not fit its field");
                if (!strstr(errstr, first_bad))
                        prop_fail(seed, ctx, "refusal does not name %s: %s",
                                  first_bad, errstr);
                json_decref(fields);
                json_decref(granted);
                return 0;
        }
        if (!g)
                prop_fail(seed, ctx, "refused: %s", errstr);

        /* The output schema names the granted fields + pseudonym, in
         * dataset order, and no other field. */
        schema_text = json_dumps(g->out->json, JSON_COMPACT);
        {
                const json_t *of = json_object_get(g->out->json, "fields");
                size_t o = 1;

                if (strcmp(json_string_value(
                               json_object_get(json_array_get(of, 0), "name")),
                           SB_PSEUDONYM_FIELD))
                        prop_fail(seed, ctx,
                                  "first output field is not the "
                                  "pseudonym");
                json_array_foreach(dfields, i, f)
                {
                        const char *name =
                            json_string_value(json_object_get(f, "name"));
                        char quoted[64];

                        if (json_object_get(granted, name)) {
                                if (strcmp(
                                        name,
                                        json_string_value(json_object_get(
                                            json_array_get(of, o++), "name"))))
                                        prop_fail(seed, ctx,
                                                  "output field %zu is not "
                                                  "'%s'",
                                                  o - 1, name);
                                continue;
                        }
                        snprintf(quoted, sizeof(quoted), "\"%s\"", name);
                        if (strstr(schema_text, quoted))
                                prop_fail(seed, ctx,
                                          "output schema names non-granted "
                                          "field %s",
                                          quoted);
                }
                if (o != json_array_size(of))
                        prop_fail(seed, ctx,
                                  "output schema has %zu fields, "
                                  "granted %zu + pseudonym",
                                  json_array_size(of), o - 1);
        }
        free(schema_text);

        ps = sb_pseudonymiser_new(key, reuser, dataset);
        assert_non_null(ps);
        if (sb_schema_value_new(g->in, &iv, errstr, sizeof(errstr)) ||
            sb_schema_value_new(g->out, &ov, errstr, sizeof(errstr)) ||
            sb_schema_value_new(g->out, &bv, errstr, sizeof(errstr)))
                fail_msg("value: %s", errstr);
        for (r = 0; r <= per_grant; r++) {
                /* The last round re-projects the first record: the same
                 * bytes, whatever was projected in between. */
                size_t ri = r == per_grant ? 0 : r;
                const json_t *rec = json_array_get(
                    recs, (iter * 7919 + ri * 104729) % json_array_size(recs));
                json_t *canon = NULL, *got = NULL, *v;
                const char *key_name;

                if (sb_avrojson_from_json(g->in->aj, rec, &iv, errstr,
                                          sizeof(errstr)) ||
                    sb_avrojson_to_json(g->in->aj, &iv, &canon, errstr,
                                        sizeof(errstr)))
                        prop_fail(seed, ctx, "record: %s", errstr);
                if (sb_grant_project(g, ps, &iv, PSEUDONYM, &ov, errstr,
                                     sizeof(errstr)) ||
                    sb_schema_encode(g->out, &ov, &enc, errstr, sizeof(errstr)))
                        prop_fail(seed, ctx, "projection: %s", errstr);
                if (r == 0) {
                        sb_buf_reserve(&first, enc.len);
                        memcpy(first.data, enc.data, enc.len);
                        first.len = enc.len;
                } else if (r == per_grant &&
                           (enc.len != first.len ||
                            memcmp(enc.data, first.data, enc.len))) {
                        prop_fail(seed, ctx,
                                  "the same record projected to "
                                  "other bytes the second time");
                }
                if (sb_schema_decode(g->out, enc.data, enc.len, &bv, errstr,
                                     sizeof(errstr)) ||
                    sb_avrojson_to_json(g->out->aj, &bv, &got, errstr,
                                        sizeof(errstr)))
                        prop_fail(seed, ctx, "decode: %s", errstr);
                if (json_object_size(got) != json_object_size(granted) + 1 ||
                    strcmp(json_string_value(
                               json_object_get(got, SB_PSEUDONYM_FIELD)),
                           PSEUDONYM))
                        prop_fail(seed, ctx,
                                  "decoded %zu fields for %zu "
                                  "granted",
                                  json_object_size(got),
                                  json_object_size(granted));
                json_object_foreach(got, key_name, v)
                {
                        json_t *spec = json_object_get(granted, key_name);

                        if (!strcmp(key_name, SB_PSEUDONYM_FIELD))
                                continue;
                        if (!spec)
                                prop_fail(seed, ctx,
                                          "decoded non-granted "
                                          "field '%s'",
                                          key_name);
                        prop_check_value(
                            seed, ctx, spec,
                            json_object_get(sb_schema_field(in, key_name),
                                            "type"),
                            json_object_get(canon, key_name), v, ps);
                }
                json_decref(canon);
                json_decref(got);
        }
        avro_value_decref(&iv);
        avro_value_decref(&ov);
        avro_value_decref(&bv);
        sb_buf_release(&first);
        sb_buf_release(&enc);
        sb_pseudonymiser_destroy(ps);
        sb_grant_destroy(g);
        json_decref(fields);
        json_decref(granted);
        return 1;
}

static void random_grants_never_share_more_than_granted(void **state)
{
        const char *env = getenv("SB_TEST_SEED");
        uint64_t seed = env ? strtoull(env, NULL, 0) : 0x5b7a11c0ffee2026ULL;
        sb_catalog_t *cat = catalog_with_probes();
        json_t *ben, *probes = json_array();
        char errstr[512] = "";
        size_t i, valid[2] = {0, 0}, checked = 0;
        sb_key_t *key;

        (void)state;
        fprintf(stderr,
                "property seed: 0x%016" PRIx64 " (set SB_TEST_SEED to "
                "reproduce)\n",
                seed);
        rng_state = seed ? seed : 1;
        assert_int_equal(SB_OK, sb_crypto_init(errstr, sizeof(errstr)));
        key = sb_key_random();
        assert_non_null(key);
        ben = prop_sample_records(seed, 120);
        for (i = 0; i < 150; i++)
                json_array_append_new(probes, prop_probe_record(i));
        for (i = 0; i < 60; i++) {
                valid[0] += (size_t)prop_one_grant(
                    seed, i, cat, "beneficiaries", ben, 8, key);
                valid[1] += (size_t)prop_one_grant(seed, i, cat, "probes",
                                                   probes, 8, key);
        }
        checked = (valid[0] + valid[1]) * 8;
        fprintf(stderr,
                "property: %zu + %zu valid random grants, %zu records "
                "projected and checked\n",
                valid[0], valid[1], checked);
        /* Enough grants were valid for the property to mean something. */
        assert_true(valid[0] >= 30);
        assert_true(valid[1] >= 30);
        json_decref(ben);
        json_decref(probes);
        sb_key_destroy(key);
        catalog_release(cat);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(generalise_keeps_only_the_year_or_month_of_dates),
            cmocka_unit_test(bucket_gives_the_lower_bound_of_the_bucket),
            cmocka_unit_test(bucket_clamps_decimals_beyond_their_precision),
            cmocka_unit_test(truncate_keeps_the_first_n_characters),
            cmocka_unit_test(round_keeps_n_decimals),
            cmocka_unit_test(
                pseudonymise_uses_the_key_of_the_reuser_and_dataset),
            cmocka_unit_test(output_schema_is_a_function_of_the_grant),
            cmocka_unit_test(transforms_that_do_not_fit_the_type_are_refused),
            cmocka_unit_test(random_grants_never_share_more_than_granted),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
