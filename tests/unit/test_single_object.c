/*
 * Avro single-object encoding (common/schema.c): every value on the bus
 * carries C3 01 and the CRC-64-AVRO fingerprint of its schema's Parsing
 * Canonical Form, so a consumer can tell which schema wrote it and refuses
 * anything else (R3.5-06 explicit, documented format; R3.5-07 validation;
 * R4.2-01 integrity). The catalog maps datasets to schemas one to one.
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

#include "fingerprint.h"
#include "schema.h"
#include "testutil.h"

static const char rights_event[] =
    "{\"event_id\": \"6f9619ff-8b86-4d01-b42d-00cf4fc964ff\","
    " \"subject\": \"BEN-0000421\","
    " \"purposes\": [\"housing-policy-statistics\", \"energy-vouchers\"],"
    " \"requested_at\": \"2026-11-25T09:42:36.123Z\"}";

static const char beneficiary[] =
    "{\"file_id\": \"3f1c2b8e-5d1a-4c2e-9b7f-2a6d8e4c1b09\","
    " \"beneficiary_id\": \"BEN-0000421\","
    " \"last_name\": \"Martin\", \"first_name\": \"Camille\","
    " \"birth_date\": \"1984-03-17\","
    " \"email\": \"camille.martin@example.org\", \"phone\": null,"
    " \"postcode\": \"69003\", \"household_size\": 3,"
    " \"benefit\": \"HOUSING_AID\", \"monthly_amount\": \"245.50\","
    " \"income_bracket\": 4, \"opened_on\": \"2025-09-01\","
    " \"updated_at\": \"2026-11-20T08:15:00.000Z\"}";

/*
 * Helpers
 */

typedef struct fixture_s {
        sb_catalog_t *cat;
        const sb_schema_t *rights, *dataset;
} fixture_t;

static int setup(void **state)
{
        static fixture_t f;
        char errstr[512] = "";

        f.cat = sb_catalog_load(SB_SCHEMAS_DIR, errstr, sizeof(errstr));
        if (!f.cat)
                fail_msg("sb_catalog_load: %s", errstr);
        f.rights = sb_catalog_by_name(f.cat, SB_RIGHTS_SCHEMA);
        f.dataset = sb_catalog_dataset(f.cat, "beneficiaries");
        if (!f.rights || !f.dataset)
                fail_msg("schemas/ lacks the rights or beneficiaries schema");
        *state = &f;
        return 0;
}

static int teardown(void **state)
{
        fixture_t *f = *state;

        sb_catalog_destroy(f->cat);
        return 0;
}

static json_t *load_json(const char *text)
{
        json_error_t jerr;
        json_t *j = json_loads(text, JSON_REJECT_DUPLICATES, &jerr);

        if (!j)
                fail_msg("bad JSON in test: %s", jerr.text);
        return j;
}

static char *read_text(const char *path)
{
        FILE *fp = fopen(path, "rb");
        char *buf;
        long n = 0;

        if (!fp || fseek(fp, 0, SEEK_END) || (n = ftell(fp)) < 0 ||
            fseek(fp, 0, SEEK_SET))
                fail_msg("cannot read %s", path);
        buf = calloc(1, (size_t)n + 1);
        assert_non_null(buf);
        if (fread(buf, 1, (size_t)n, fp) != (size_t)n)
                fail_msg("cannot read %s", path);
        fclose(fp);
        return buf;
}

/* Encodes the JSON `text` as a single-object value of `s` into `out`. */
static void encode_json(const sb_schema_t *s, const char *text, sb_buf_t *out)
{
        char errstr[512] = "";
        json_t *j = load_json(text);
        avro_value_t v;

        if (sb_schema_value_new(s, &v, errstr, sizeof(errstr)) ||
            sb_avrojson_from_json(s->aj, j, &v, errstr, sizeof(errstr)) ||
            sb_schema_encode(s, &v, out, errstr, sizeof(errstr)))
                fail_msg("encode %s: %s", s->fullname, errstr);
        avro_value_decref(&v);
        json_decref(j);
}

/* Decodes; returns the error and fills errstr. */
static sb_err_t decode(const sb_schema_t *s, const void *buf, size_t len,
                       char *errstr, size_t errstr_size)
{
        avro_value_t v;
        sb_err_t err;

        if (sb_schema_value_new(s, &v, errstr, errstr_size))
                fail_msg("value: %s", errstr);
        errstr[0] = '\0';
        err = sb_schema_decode(s, buf, len, &v, errstr, errstr_size);
        avro_value_decref(&v);
        return err;
}

static void assert_json_text_equal(const char *expected_text, const json_t *got)
{
        json_t *exp = load_json(expected_text);

        if (!json_equal(exp, got)) {
                char *e = json_dumps(exp, JSON_COMPACT | JSON_SORT_KEYS);
                char *g = json_dumps(got, JSON_COMPACT | JSON_SORT_KEYS);

                print_error("expected: %s\n     got: %s\n", e, g);
                free(e);
                free(g);
                json_decref(exp);
                fail_msg("JSON differs");
        }
        json_decref(exp);
}

/*
 * Tests
 */

static void check_header(const sb_schema_t *s, const char *file,
                         const char *value)
{
        char path[512], errstr[512] = "", *text, *canon = NULL;
        unsigned char expected[SB_SOE_HEADER_LEN];
        sb_buf_t enc = {0};
        uint64_t fp, read_fp = 0;
        int i;

        snprintf(path, sizeof(path), "%s/%s", SB_SCHEMAS_DIR, file);
        text = read_text(path);
        if (sb_schema_canonical_str(text, &canon, errstr, sizeof(errstr)))
                fail_msg("canonical form of %s: %s", path, errstr);
        fp = sb_crc64_avro(canon, strlen(canon));
        expected[0] = 0xC3;
        expected[1] = 0x01;
        for (i = 0; i < 8; i++)
                expected[2 + i] = (unsigned char)(fp >> (8 * i));

        encode_json(s, value, &enc);
        assert_true(enc.len > SB_SOE_HEADER_LEN);
        assert_memory_equal(expected, enc.data, SB_SOE_HEADER_LEN);
        assert_int_equal(SB_OK, sb_soe_fingerprint(enc.data, enc.len, &read_fp,
                                                   errstr, sizeof(errstr)));
        assert_int_equal(fp, read_fp);
        assert_int_equal(fp, s->fingerprint);
        assert_string_equal(canon, s->canonical);
        sb_buf_release(&enc);
        free(canon);
        free(text);
}

static void header_is_c3_01_then_schema_fingerprint_little_endian(void **state)
{
        fixture_t *f = *state;

        check_header(f->rights, "rights.avsc", rights_event);
        check_header(f->dataset, "beneficiaries.avsc", beneficiary);
        /* Two schemas, two fingerprints: the header tells them apart. */
        assert_true(f->rights->fingerprint != f->dataset->fingerprint);
        assert_ptr_equal(f->rights, sb_catalog_by_fingerprint(
                                        f->cat, f->rights->fingerprint));
        assert_ptr_equal(f->dataset, sb_catalog_by_fingerprint(
                                         f->cat, f->dataset->fingerprint));
}

static void decode_refuses_a_value_of_another_schema(void **state)
{
        fixture_t *f = *state;
        char errstr[512], expected[512];
        sb_buf_t enc = {0};

        encode_json(f->rights, rights_event, &enc);
        assert_int_equal(SB_ERR_SCHEMA, decode(f->dataset, enc.data, enc.len,
                                               errstr, sizeof(errstr)));
        snprintf(expected, sizeof(expected),
                 "value was written with schema fingerprint %016llx, "
                 "expected %016llx ('fr.example.social.Beneficiary')",
                 (unsigned long long)f->rights->fingerprint,
                 (unsigned long long)f->dataset->fingerprint);
        assert_string_equal(expected, errstr);

        /* One flipped fingerprint bit is enough. */
        enc.data[9] ^= 0x01;
        assert_int_equal(SB_ERR_SCHEMA, decode(f->rights, enc.data, enc.len,
                                               errstr, sizeof(errstr)));
        sb_buf_release(&enc);
}

static void decode_refuses_a_truncated_value(void **state)
{
        fixture_t *f = *state;
        char errstr[512], prefix[128];
        sb_buf_t enc = {0};
        size_t len;

        encode_json(f->dataset, beneficiary, &enc);
        snprintf(prefix, sizeof(prefix),
                 "'%s' value is truncated or malformed (",
                 f->dataset->fullname);
        /* An empty payload. */
        assert_int_equal(SB_ERR_VALIDATION,
                         decode(f->dataset, enc.data, SB_SOE_HEADER_LEN, errstr,
                                sizeof(errstr)));
        assert_string_equal("'fr.example.social.Beneficiary' value is "
                            "truncated or malformed (0 payload bytes)",
                            errstr);
        /*
         * Every cut inside the payload. Avro C would allocate, then leak,
         * a cut string's declared length: the payload is walked first, so
         * under ASan this loop also proves nothing leaks.
         */
        for (len = enc.len - 1; len > SB_SOE_HEADER_LEN; len--) {
                sb_err_t err =
                    decode(f->dataset, enc.data, len, errstr, sizeof(errstr));

                if (err != SB_ERR_VALIDATION ||
                    strncmp(errstr, prefix, strlen(prefix)))
                        fail_msg("payload cut to %zu of %zu bytes:\n"
                                 "  expected: error %d, %s...\n"
                                 "  got:      error %d, %s",
                                 len - SB_SOE_HEADER_LEN,
                                 enc.len - SB_SOE_HEADER_LEN, SB_ERR_VALIDATION,
                                 prefix, err, errstr);
        }
        /* A cut inside the header. */
        for (len = 0; len < SB_SOE_HEADER_LEN; len++) {
                char want[128];

                if (len < 2)
                        snprintf(want, sizeof(want),
                                 "value is not in Avro single-object "
                                 "encoding (no C3 01 marker)");
                else
                        snprintf(want, sizeof(want),
                                 "value has a truncated single-object "
                                 "header (%zu bytes)",
                                 len);
                assert_int_equal(
                    SB_ERR_VALIDATION,
                    decode(f->dataset, enc.data, len, errstr, sizeof(errstr)));
                assert_string_equal(want, errstr);
        }
        sb_buf_release(&enc);
}

/*
 * A few bytes claiming a 500 MB string must be refused before anything is
 * allocated: Avro C would allocate the declared length (and leak it).
 */
static void decode_refuses_a_length_larger_than_the_payload(void **state)
{
        fixture_t *f = *state;
        unsigned char buf[SB_SOE_HEADER_LEN + 8];
        char errstr[512], want[256];
        size_t n = SB_SOE_HEADER_LEN;
        uint64_t zz = 2ULL * 500000000ULL; /* zig-zag of +500e6 */
        int i;

        buf[0] = 0xC3;
        buf[1] = 0x01;
        for (i = 0; i < 8; i++)
                buf[2 + i] = (unsigned char)(f->rights->fingerprint >> (8 * i));
        /* event_id: a string whose length is 500 MB */
        while (zz >= 0x80) {
                buf[n++] = (unsigned char)(zz | 0x80);
                zz >>= 7;
        }
        buf[n++] = (unsigned char)zz;
        buf[n++] = 'x';
        snprintf(want, sizeof(want),
                 "'%s' value is truncated or malformed (%zu payload bytes)",
                 SB_RIGHTS_SCHEMA, n - SB_SOE_HEADER_LEN);
        assert_int_equal(SB_ERR_VALIDATION,
                         decode(f->rights, buf, n, errstr, sizeof(errstr)));
        assert_string_equal(want, errstr);
}

static void decode_refuses_trailing_bytes(void **state)
{
        fixture_t *f = *state;
        char errstr[512], expected[256];
        sb_buf_t enc = {0};
        size_t extra;

        encode_json(f->rights, rights_event, &enc);
        assert_int_equal(SB_OK, decode(f->rights, enc.data, enc.len, errstr,
                                       sizeof(errstr)));
        assert_int_equal(SB_OK, sb_buf_reserve(&enc, enc.len + 8));
        for (extra = 1; extra <= 8; extra++) {
                enc.data[enc.len + extra - 1] = (char)(extra == 1 ? 0 : 0x41);
                snprintf(expected, sizeof(expected),
                         "'%s' value has %zu trailing byte(s)",
                         SB_RIGHTS_SCHEMA, extra);
                assert_int_equal(SB_ERR_VALIDATION,
                                 decode(f->rights, enc.data, enc.len + extra,
                                        errstr, sizeof(errstr)));
                assert_string_equal(expected, errstr);
        }
        sb_buf_release(&enc);
}

static void decode_refuses_a_value_without_the_c3_01_marker(void **state)
{
        static const char no_marker[] =
            "value is not in Avro single-object encoding (no C3 01 marker)";
        fixture_t *f = *state;
        char errstr[512];
        sb_buf_t enc = {0};
        uint64_t fp;

        encode_json(f->rights, rights_event, &enc);
        /* The bare Avro binary payload, as a plain Avro producer sends it. */
        assert_int_equal(SB_ERR_VALIDATION,
                         decode(f->rights, enc.data + SB_SOE_HEADER_LEN,
                                enc.len - SB_SOE_HEADER_LEN, errstr,
                                sizeof(errstr)));
        assert_string_equal(no_marker, errstr);
        enc.data[0] = (char)0xC4;
        assert_int_equal(SB_ERR_VALIDATION, decode(f->rights, enc.data, enc.len,
                                                   errstr, sizeof(errstr)));
        assert_string_equal(no_marker, errstr);
        enc.data[0] = (char)0xC3;
        enc.data[1] = 0x02; /* a future format version */
        assert_int_equal(SB_ERR_VALIDATION, decode(f->rights, enc.data, enc.len,
                                                   errstr, sizeof(errstr)));
        assert_string_equal(no_marker, errstr);
        assert_int_equal(
            SB_ERR_VALIDATION,
            sb_soe_fingerprint(NULL, 0, &fp, errstr, sizeof(errstr)));
        assert_string_equal(no_marker, errstr);
        sb_buf_release(&enc);
}

static void round_trip(const sb_schema_t *s, const char *first,
                       const char *second)
{
        char errstr[512] = "";
        sb_buf_t enc1 = {0}, enc2 = {0};
        avro_value_t v;
        json_t *got;

        encode_json(s, first, &enc1);
        encode_json(s, second, &enc2);
        if (sb_schema_value_new(s, &v, errstr, sizeof(errstr)))
                fail_msg("value: %s", errstr);
        if (sb_schema_decode(s, enc1.data, enc1.len, &v, errstr,
                             sizeof(errstr)) ||
            sb_avrojson_to_json(s->aj, &v, &got, errstr, sizeof(errstr)))
                fail_msg("%s: %s", s->fullname, errstr);
        assert_json_text_equal(first, got);
        json_decref(got);
        /* Decoding into a used value replaces what it held. */
        if (sb_schema_decode(s, enc2.data, enc2.len, &v, errstr,
                             sizeof(errstr)) ||
            sb_avrojson_to_json(s->aj, &v, &got, errstr, sizeof(errstr)))
                fail_msg("%s: %s", s->fullname, errstr);
        assert_json_text_equal(second, got);
        json_decref(got);
        avro_value_decref(&v);
        sb_buf_release(&enc1);
        sb_buf_release(&enc2);
}

static void encode_then_decode_gives_back_the_value(void **state)
{
        fixture_t *f = *state;

        round_trip(f->rights, rights_event,
                   "{\"event_id\": \"00000000-0000-4000-8000-000000000000\","
                   " \"subject\": \"B\", \"purposes\": [],"
                   " \"requested_at\": \"1970-01-01T00:00:00.000Z\"}");
        round_trip(f->dataset, beneficiary,
                   "{\"file_id\": \"00000000-0000-4000-8000-000000000001\","
                   " \"beneficiary_id\": \"BEN-2\", \"last_name\": \"Ng\","
                   " \"first_name\": \"Li\", \"birth_date\": \"2001-02-03\","
                   " \"email\": null, \"phone\": \"+33100000000\","
                   " \"postcode\": \"75001\", \"household_size\": 1,"
                   " \"benefit\": \"RENT_GUARANTEE\","
                   " \"monthly_amount\": \"-0.05\", \"income_bracket\": 10,"
                   " \"opened_on\": \"2026-01-31\","
                   " \"updated_at\": \"2026-12-31T23:59:59.999Z\"}");
}

/*
 * Catalog
 */

static char tmp_root[64];

static void write_file(const char *name, const char *text)
{
        char path[512];
        FILE *fp;

        snprintf(path, sizeof(path), "%s/%s", tmp_root, name);
        fp = fopen(path, "w");
        if (!fp || fputs(text, fp) == EOF || fclose(fp))
                fail_msg("cannot write %s", path);
}

static void expect_catalog_refused(const char *expected_fmt)
{
        char errstr[512] = "", expected[512];
        sb_catalog_t *cat = sb_catalog_load(tmp_root, errstr, sizeof(errstr));

        if (cat) {
                sb_catalog_destroy(cat);
                fail_msg("catalog of %s accepted", tmp_root);
        }
        snprintf(expected, sizeof(expected), expected_fmt, tmp_root, tmp_root);
        assert_string_equal(expected, errstr);
}

static void catalog_refuses_two_schemas_for_one_dataset(void **state)
{
        char *ben = read_text(SB_SCHEMAS_DIR "/beneficiaries.avsc");
        char errstr[512] = "";
        sb_catalog_t *cat;

        (void)state;
        snprintf(tmp_root, sizeof(tmp_root), "/tmp/sb-test-soe-XXXXXX");
        if (!mkdtemp(tmp_root))
                fail_msg("mkdtemp failed");
        write_file("a.avsc", ben);
        cat = sb_catalog_load(tmp_root, errstr, sizeof(errstr));
        if (!cat)
                fail_msg("one schema refused: %s", errstr);
        sb_catalog_destroy(cat);

        /* Another record, same dataset. */
        write_file("b.avsc",
                   "{\"type\": \"record\", \"name\": \"Beneficiary2\", "
                   "\"namespace\": \"fr.example.other\", \"sb.dataset\": "
                   "\"beneficiaries\", \"sb.subject\": \"id\", "
                   "\"sb.record_id\": \"id\", \"fields\": [{\"name\": "
                   "\"id\", \"type\": \"string\"}]}");
        expect_catalog_refused(
            "schema '%s/b.avsc': same dataset as '%s/a.avsc' (beneficiaries)");

        /* Same full name, another dataset. */
        write_file("b.avsc",
                   "{\"type\": \"record\", \"name\": \"Beneficiary\", "
                   "\"namespace\": \"fr.example.social\", \"sb.dataset\": "
                   "\"pensions\", \"sb.subject\": \"id\", "
                   "\"sb.record_id\": \"id\", \"fields\": [{\"name\": "
                   "\"id\", \"type\": \"string\"}]}");
        expect_catalog_refused("schema '%s/b.avsc': same name as '%s/a.avsc' "
                               "(fr.example.social.Beneficiary)");

        /* Distinct name and dataset: both load. */
        write_file("b.avsc",
                   "{\"type\": \"record\", \"name\": \"Pension\", "
                   "\"namespace\": \"fr.example.social\", \"sb.dataset\": "
                   "\"pensions\", \"sb.subject\": \"id\", "
                   "\"sb.record_id\": \"id\", \"fields\": [{\"name\": "
                   "\"id\", \"type\": \"string\"}]}");
        cat = sb_catalog_load(tmp_root, errstr, sizeof(errstr));
        if (!cat)
                fail_msg("two distinct schemas refused: %s", errstr);
        assert_non_null(sb_catalog_dataset(cat, "pensions"));
        assert_non_null(sb_catalog_dataset(cat, "beneficiaries"));
        assert_null(sb_catalog_dataset(cat, "Pension"));
        sb_catalog_destroy(cat);

        sb_test_rmtree(tmp_root);
        free(ben);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(
                header_is_c3_01_then_schema_fingerprint_little_endian),
            cmocka_unit_test(decode_refuses_a_value_of_another_schema),
            cmocka_unit_test(decode_refuses_a_truncated_value),
            cmocka_unit_test(decode_refuses_trailing_bytes),
            cmocka_unit_test(decode_refuses_a_length_larger_than_the_payload),
            cmocka_unit_test(decode_refuses_a_value_without_the_c3_01_marker),
            cmocka_unit_test(encode_then_decode_gives_back_the_value),
            cmocka_unit_test(catalog_refuses_two_schemas_for_one_dataset),
        };

        return cmocka_run_group_tests(tests, setup, teardown);
}
