/*
 * Dataset schema evolution (common/schema.c): version 2 of beneficiaries
 * (tests/data/beneficiaries.v2.avsc) drops the optional phone and adds an
 * optional preferred_language. With both versions in the catalog, a record
 * written with either is read as a value of version 1, the reader schema
 * grants are defined on: the field version 2 lacks takes version 1's
 * default, the field version 1 lacks is skipped. So grants, their output
 * schemas and the reusers reading them do not change (R3.5-06 a durable,
 * documented format; R3.5-07 validation: an unknown version is refused, a
 * version that cannot be read is refused when the catalog loads).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "grant.h"
#include "schema.h"
#include "testutil.h"

#define V2_PATH SB_SOURCE_DIR "/tests/data/beneficiaries.v2.avsc"

/* A record of version 2: no phone, a preferred language. */
static const char v2_record[] =
    "{\"file_id\": \"3f1c2b8e-5d1a-4c2e-9b7f-2a6d8e4c1b09\","
    " \"beneficiary_id\": \"BEN-0000421\","
    " \"last_name\": \"Vandermeersch\", \"first_name\": \"Camille\","
    " \"birth_date\": \"1984-03-17\","
    " \"email\": \"camille.vdm@example.org\", \"preferred_language\": \"fr\","
    " \"postcode\": \"69003\", \"household_size\": 3,"
    " \"benefit\": \"ENERGY_VOUCHER\", \"monthly_amount\": \"245.50\","
    " \"income_bracket\": 4, \"opened_on\": \"2025-09-01\","
    " \"updated_at\": \"2026-11-20T08:15:00.000Z\"}";

/* The same record as version 1 reads it. */
static const char v2_as_v1[] =
    "{\"file_id\": \"3f1c2b8e-5d1a-4c2e-9b7f-2a6d8e4c1b09\","
    " \"beneficiary_id\": \"BEN-0000421\","
    " \"last_name\": \"Vandermeersch\", \"first_name\": \"Camille\","
    " \"birth_date\": \"1984-03-17\","
    " \"email\": \"camille.vdm@example.org\", \"phone\": null,"
    " \"postcode\": \"69003\", \"household_size\": 3,"
    " \"benefit\": \"ENERGY_VOUCHER\", \"monthly_amount\": \"245.50\","
    " \"income_bracket\": 4, \"opened_on\": \"2025-09-01\","
    " \"updated_at\": \"2026-11-20T08:15:00.000Z\"}";

/* A record of version 1. */
static const char v1_record[] =
    "{\"file_id\": \"9a1c2b8e-5d1a-4c2e-9b7f-2a6d8e4c1b10\","
    " \"beneficiary_id\": \"BEN-0000422\","
    " \"last_name\": \"Martin\", \"first_name\": \"\xc3\x89lodie\","
    " \"birth_date\": \"1990-12-31\","
    " \"email\": null, \"phone\": \"+33612345678\","
    " \"postcode\": \"75011\", \"household_size\": 1,"
    " \"benefit\": \"HOUSING_AID\", \"monthly_amount\": \"120.00\","
    " \"income_bracket\": 2, \"opened_on\": \"2024-01-15\","
    " \"updated_at\": \"2026-10-01T10:00:00.000Z\"}";

static const char grant_text[] =
    "{\"id\": \"g-evo\", \"reuser\": \"energy-desk\", \"dataset\": "
    "\"beneficiaries\", \"purposes\": [\"delivery\"], \"legal_basis\": "
    "\"gdpr-6-1-c\", \"status\": \"approved\", \"fields\": {"
    "\"phone\": \"keep\", \"email\": \"keep\", \"postcode\": {\"truncate\": "
    "2}, \"birth_date\": {\"generalise\": \"year\"}}}";

static char dir[64];

static json_t *load_json(const char *text)
{
        json_error_t jerr;
        json_t *j = json_loads(text, JSON_REJECT_DUPLICATES, &jerr);

        if (!j)
                fail_msg("bad JSON in test: %s: %s", jerr.text, text);
        return j;
}

static json_t *load_file(const char *path)
{
        json_error_t jerr;
        json_t *j = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);

        if (!j)
                fail_msg("%s: %s", path, jerr.text);
        return j;
}

static void write_json(const char *name, const json_t *j)
{
        char path[256];

        snprintf(path, sizeof(path), "%s/%s", dir, name);
        if (json_dump_file(j, path, JSON_INDENT(2)))
                fail_msg("cannot write %s", path);
}

/*
 * A schemas directory: schemas/ (version 1), and version 2 as
 * `v2` (NULL: none; it is written as beneficiaries.v2.avsc).
 */
static void make_dir(const json_t *v2, int with_v1)
{
        static const char *const copied[] = {"beneficiaries.avsc",
                                             "rights.avsc", "receipt.avsc"};
        char path[256];
        size_t i;

        snprintf(dir, sizeof(dir), "/tmp/sb-test-evo-XXXXXX");
        if (!mkdtemp(dir))
                fail_msg("mkdtemp failed");
        for (i = with_v1 ? 0 : 1; i < 3; i++) {
                json_t *j;

                snprintf(path, sizeof(path), "%s/%s", SB_SCHEMAS_DIR,
                         copied[i]);
                j = load_file(path);
                write_json(copied[i], j);
                json_decref(j);
        }
        if (v2)
                write_json("beneficiaries.v2.avsc", v2);
}

static sb_catalog_t *load_ok(void)
{
        char errstr[1024] = "";
        sb_catalog_t *cat = sb_catalog_load(dir, errstr, sizeof(errstr));

        if (!cat)
                fail_msg("catalog refused: %s", errstr);
        return cat;
}

static void load_refused(const char *const *expected)
{
        char errstr[1024] = "";
        sb_catalog_t *cat = sb_catalog_load(dir, errstr, sizeof(errstr));

        if (cat)
                fail_msg("catalog accepted, expected an error naming %s",
                         expected[0]);
        for (; *expected; expected++)
                if (!strstr(errstr, *expected))
                        fail_msg("error does not name \"%s\": %s", *expected,
                                 errstr);
        print_message("refused: %s\n", errstr);
}

static void cleanup(void)
{
        sb_test_rmtree(dir);
}

/* `json` encoded with schema `s`, in *enc. */
static void encode(const sb_schema_t *s, const char *json, sb_buf_t *enc)
{
        char errstr[512] = "";
        avro_value_t v;
        json_t *j = load_json(json);

        if (sb_schema_value_new(s, &v, errstr, sizeof(errstr)) ||
            sb_avrojson_from_json(s->aj, j, &v, errstr, sizeof(errstr)) ||
            sb_schema_encode(s, &v, enc, errstr, sizeof(errstr)))
                fail_msg("encode with '%s': %s", s->origin, errstr);
        avro_value_decref(&v);
        json_decref(j);
}

/* Decodes `enc` written with `writer` as `reader`, rendered as JSON. */
static json_t *decode(const sb_catalog_t *cat, const sb_schema_t *writer,
                      const sb_schema_t *reader, const sb_buf_t *enc)
{
        char errstr[512] = "";
        avro_value_t v;
        json_t *out = NULL;

        if (sb_schema_value_new(reader, &v, errstr, sizeof(errstr)) ||
            sb_catalog_decode(cat, writer, reader, enc->data, enc->len, &v,
                              errstr, sizeof(errstr)) ||
            sb_avrojson_to_json(reader->aj, &v, &out, errstr, sizeof(errstr)))
                fail_msg("decode '%s' as '%s': %s", writer->origin,
                         reader->origin, errstr);
        avro_value_decref(&v);
        return out;
}

static void assert_json_text(const char *expected, const json_t *got,
                             const char *what)
{
        json_t *e = load_json(expected);

        if (!json_equal(e, got)) {
                char *g = json_dumps(got, JSON_SORT_KEYS | JSON_COMPACT);

                fail_msg("%s:\n  expected: %s\n  got:      %s", what, expected,
                         g);
        }
        json_decref(e);
}

static void v1_and_v2_records_both_decode_into_the_reader_schema(void **state)
{
        json_t *v2 = load_file(V2_PATH), *got;
        const sb_schema_t *reader, *w2;
        sb_buf_t enc = {0};
        sb_catalog_t *cat;
        char errstr[512];
        avro_value_t v;
        int k;

        (void)state;
        make_dir(v2, 1);
        cat = load_ok();

        /* The oldest version is the reader: grants stay defined on it. */
        reader = sb_catalog_dataset(cat, "beneficiaries");
        assert_non_null(reader);
        assert_int_equal(1, reader->version);
        assert_non_null(strstr(reader->origin, "/beneficiaries.avsc"));
        w2 = sb_catalog_version(cat, reader, 0);
        assert_null(w2);
        w2 = NULL;
        {
                sb_schema_t *tmp =
                    sb_schema_load(V2_PATH, errstr, sizeof(errstr));

                assert_non_null(tmp);
                w2 = sb_catalog_version(cat, reader, tmp->fingerprint);
                sb_schema_destroy(tmp);
        }
        assert_non_null(w2);
        assert_int_equal(2, w2->version);
        assert_ptr_equal(reader,
                         sb_catalog_version(cat, reader, reader->fingerprint));

        /* Version 2: phone takes version 1's default (null); the
         * preferred language, unknown to version 1, is skipped. Twice:
         * the scratch values are reset between records. */
        for (k = 0; k < 2; k++) {
                encode(w2, v2_record, &enc);
                got = decode(cat, w2, reader, &enc);
                assert_json_text(v2_as_v1, got, "version 2 read as 1");
                json_decref(got);
                /* Version 1: as written. */
                encode(reader, v1_record, &enc);
                got = decode(cat, reader, reader, &enc);
                assert_json_text(v1_record, got, "version 1 read as 1");
                json_decref(got);
        }

        /* A buffer is read with the version it names, no other. */
        assert_int_equal(
            SB_OK, sb_schema_value_new(reader, &v, errstr, sizeof(errstr)));
        assert_int_not_equal(SB_OK, sb_catalog_decode(cat, w2, reader, enc.data,
                                                      enc.len, &v, errstr,
                                                      sizeof(errstr)));
        assert_non_null(strstr(errstr, "fingerprint"));
        /* Truncated version 2 payloads are refused, not read past. */
        encode(w2, v2_record, &enc);
        assert_int_not_equal(SB_OK, sb_catalog_decode(cat, w2, reader, enc.data,
                                                      enc.len - 3, &v, errstr,
                                                      sizeof(errstr)));
        assert_non_null(strstr(errstr, "truncated or malformed"));
        avro_value_decref(&v);

        /* Another schema is no version of the dataset. */
        assert_null(sb_catalog_version(
            cat, reader,
            sb_catalog_by_name(cat, SB_RIGHTS_SCHEMA)->fingerprint));

        sb_buf_release(&enc);
        sb_catalog_destroy(cat);
        json_decref(v2);
        cleanup();
}

/*
 * Grants keep working: the grant on version 1 builds the same output
 * schema whether version 2 is in the catalog or not, and projects a
 * version 2 record with phone at its default.
 */
static void grants_on_the_reader_project_v2_records_unchanged(void **state)
{
        json_t *v2 = load_file(V2_PATH), *got;
        const sb_schema_t *reader, *w2;
        sb_catalog_t *cat, *old_cat;
        sb_grant_t *g, *old_g;
        sb_buf_t enc = {0}, out = {0};
        char errstr[512] = "";
        avro_value_t in, proj;

        (void)state;
        make_dir(v2, 1);
        cat = load_ok();
        old_cat = sb_catalog_load(SB_SCHEMAS_DIR, errstr, sizeof(errstr));
        assert_non_null(old_cat);
        g = sb_grant_new(load_json(grant_text), "g.json", cat, errstr,
                         sizeof(errstr));
        if (!g)
                fail_msg("grant refused: %s", errstr);
        old_g = sb_grant_new(load_json(grant_text), "g.json", old_cat, errstr,
                             sizeof(errstr));
        assert_non_null(old_g);
        assert_true(g->out->fingerprint == old_g->out->fingerprint);
        assert_true(json_equal(g->out->json, old_g->out->json));

        reader = sb_catalog_dataset(cat, "beneficiaries");
        assert_ptr_equal(reader, g->in);
        w2 = NULL;
        {
                sb_schema_t *tmp =
                    sb_schema_load(V2_PATH, errstr, sizeof(errstr));

                w2 = sb_catalog_version(cat, reader, tmp->fingerprint);
                sb_schema_destroy(tmp);
        }
        assert_non_null(w2);
        encode(w2, v2_record, &enc);
        assert_int_equal(
            SB_OK, sb_schema_value_new(reader, &in, errstr, sizeof(errstr)));
        assert_int_equal(
            SB_OK, sb_schema_value_new(g->out, &proj, errstr, sizeof(errstr)));
        if (sb_catalog_decode(cat, w2, reader, enc.data, enc.len, &in, errstr,
                              sizeof(errstr)) ||
            sb_grant_project(g, NULL, &in, SB_TEST_PSEUDONYM, &proj, errstr,
                             sizeof(errstr)) ||
            sb_schema_encode(g->out, &proj, &out, errstr, sizeof(errstr)))
                fail_msg("%s", errstr);
        /* What a reuser started on the old output schema decodes. */
        avro_value_reset(&proj);
        if (sb_schema_decode(old_g->out, out.data, out.len, &proj, errstr,
                             sizeof(errstr)) ||
            sb_avrojson_to_json(old_g->out->aj, &proj, &got, errstr,
                                sizeof(errstr)))
                fail_msg("%s", errstr);
        assert_json_text("{\"pseudonym\": \"" SB_TEST_PSEUDONYM "\","
                         " \"birth_date\": 1984,"
                         " \"email\": \"camille.vdm@example.org\","
                         " \"phone\": null, \"postcode\": \"69\"}",
                         got, "version 2 record through the grant");
        json_decref(got);
        avro_value_decref(&in);
        avro_value_decref(&proj);
        sb_buf_release(&enc);
        sb_buf_release(&out);
        sb_grant_destroy(g);
        sb_grant_destroy(old_g);
        sb_catalog_destroy(cat);
        sb_catalog_destroy(old_cat);
        json_decref(v2);
        cleanup();
}

/* A holder whose catalog has version 2 only publishes version 2. */
static void a_catalog_with_one_version_reads_that_version(void **state)
{
        json_t *v2 = load_file(V2_PATH);
        const sb_schema_t *s;
        sb_catalog_t *cat;

        (void)state;
        make_dir(v2, 0);
        cat = load_ok();
        s = sb_catalog_dataset(cat, "beneficiaries");
        assert_non_null(s);
        assert_int_equal(2, s->version);
        assert_non_null(sb_schema_field(s, "preferred_language"));
        sb_catalog_destroy(cat);
        json_decref(v2);
        cleanup();
}

/* Version 2 with field `name` removed (and nothing else changed). */
static json_t *v2_without(const char *name)
{
        json_t *v2 = load_file(V2_PATH),
               *fields = json_object_get(v2, "fields");
        json_t *f;
        size_t i;

        json_array_foreach(fields, i, f)
        {
                if (!strcmp(json_string_value(json_object_get(f, "name")),
                            name)) {
                        json_array_remove(fields, i);
                        break;
                }
        }
        return v2;
}

static void v2_field(json_t *v2, const char *name, const char *key,
                     json_t *value)
{
        json_t *f;
        size_t i;

        json_array_foreach(json_object_get(v2, "fields"), i, f)
        {
                if (!strcmp(json_string_value(json_object_get(f, "name")),
                            name))
                        json_object_set_new(f, key, value);
        }
}

static void versions_that_cannot_be_read_are_refused_at_load(void **state)
{
        json_t *v2;

        (void)state;

        /* Removing a field version 1 gives no default. */
        v2 = v2_without("postcode");
        make_dir(v2, 1);
        load_refused(
            (const char *const[]){"'postcode'", "beneficiaries.v2.avsc",
                                  "/beneficiaries.avsc", "default", NULL});
        cleanup();
        json_decref(v2);

        /* Two files of the same version. */
        v2 = load_file(V2_PATH);
        json_object_set_new(v2, "sb.version", json_integer(1));
        make_dir(v2, 1);
        load_refused(
            (const char *const[]){"same dataset as", "beneficiaries", NULL});
        cleanup();
        json_decref(v2);

        /* A version is a whole number. */
        v2 = load_file(V2_PATH);
        json_object_set_new(v2, "sb.version", json_string("2"));
        make_dir(v2, 1);
        load_refused((const char *const[]){"\"sb.version\"",
                                           "beneficiaries.v2.avsc", NULL});
        cleanup();
        json_decref(v2);

        /* Avro resolves records of the same name only. */
        v2 = load_file(V2_PATH);
        json_object_set_new(v2, "name", json_string("Beneficiary2"));
        make_dir(v2, 1);
        load_refused((const char *const[]){"keep the record's name",
                                           "Beneficiary2", NULL});
        cleanup();
        json_decref(v2);

        /* A type version 1 cannot read. */
        v2 = load_file(V2_PATH);
        v2_field(v2, "household_size", "type", json_string("string"));
        make_dir(v2, 1);
        load_refused((const char *const[]){"cannot read version 2",
                                           "beneficiaries.v2.avsc", NULL});
        cleanup();
        json_decref(v2);
}

/*
 * Types version 1 can read: an int written where version 1 has a long, a
 * plain string where it has a nullable one, and an enum symbol list that
 * grew (a symbol version 1 knows).
 */
static void promotions_and_unions_resolve_as_avro_specifies(void **state)
{
        static const char v1[] =
            "{\"type\": \"record\", \"name\": \"Tiny\", \"namespace\": "
            "\"test.evo\", \"sb.dataset\": \"tiny\", \"sb.subject\": "
            "\"subj\", \"sb.record_id\": \"id\", \"fields\": ["
            "{\"name\": \"id\", \"type\": \"string\"},"
            "{\"name\": \"subj\", \"type\": \"string\"},"
            "{\"name\": \"n\", \"type\": \"long\"},"
            "{\"name\": \"x\", \"type\": \"double\"},"
            "{\"name\": \"tag\", \"type\": [\"null\", \"string\"], "
            "\"default\": null},"
            "{\"name\": \"kind\", \"type\": {\"type\": \"enum\", "
            "\"name\": \"K\", \"symbols\": [\"A\", \"B\"]}},"
            "{\"name\": \"score\", \"type\": \"int\", \"default\": 7}]}";
        static const char v2[] =
            "{\"type\": \"record\", \"name\": \"Tiny\", \"namespace\": "
            "\"test.evo\", \"sb.dataset\": \"tiny\", \"sb.subject\": "
            "\"subj\", \"sb.record_id\": \"id\", \"sb.version\": 2, "
            "\"fields\": ["
            "{\"name\": \"kind\", \"type\": {\"type\": \"enum\", "
            "\"name\": \"K\", \"symbols\": [\"C\", \"B\", \"A\"]}},"
            "{\"name\": \"subj\", \"type\": \"string\"},"
            "{\"name\": \"id\", \"type\": \"string\"},"
            "{\"name\": \"n\", \"type\": \"int\"},"
            "{\"name\": \"x\", \"type\": \"float\"},"
            "{\"name\": \"tag\", \"type\": \"string\"}]}";
        json_t *j1 = load_json(v1), *j2 = load_json(v2), *got;
        const sb_schema_t *reader, *writer;
        sb_buf_t enc = {0};
        sb_catalog_t *cat;

        (void)state;
        make_dir(NULL, 0);
        write_json("tiny.avsc", j1);
        write_json("tiny.v2.avsc", j2);
        cat = load_ok();
        reader = sb_catalog_dataset(cat, "tiny");
        assert_int_equal(1, reader->version);
        {
                char errstr[512] = "";
                sb_schema_t *tmp = sb_schema_new(json_incref(j2), "v2", errstr,
                                                 sizeof(errstr));

                assert_non_null(tmp);
                writer = sb_catalog_version(cat, reader, tmp->fingerprint);
                sb_schema_destroy(tmp);
        }
        assert_non_null(writer);
        encode(writer,
               "{\"kind\": \"B\", \"subj\": \"S-1\", \"id\": \"R-1\", "
               "\"n\": -2147483648, \"x\": 0.5, \"tag\": \"t\"}",
               &enc);
        got = decode(cat, writer, reader, &enc);
        /* Fields in version 1's order; score at its default. */
        assert_json_text("{\"id\": \"R-1\", \"subj\": \"S-1\", "
                         "\"n\": -2147483648, \"x\": 0.5, \"tag\": \"t\", "
                         "\"kind\": \"B\", \"score\": 7}",
                         got, "version 2 read as 1");
        json_decref(got);
        sb_buf_release(&enc);
        sb_catalog_destroy(cat);
        json_decref(j1);
        json_decref(j2);
        cleanup();
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(
                v1_and_v2_records_both_decode_into_the_reader_schema),
            cmocka_unit_test(grants_on_the_reader_project_v2_records_unchanged),
            cmocka_unit_test(a_catalog_with_one_version_reads_that_version),
            cmocka_unit_test(versions_that_cannot_be_read_are_refused_at_load),
            cmocka_unit_test(promotions_and_unions_resolve_as_avro_specifies),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
