/*
 * JSON <-> Avro conversion: round trips of every type (JSON -> Avro -> JSON
 * and through the binary encoding), then a table of bad inputs with the
 * exact message each must produce.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "avrojson.h"

/* Exercises every type, named-type references by short and full name,
 * namespaces (attribute, dotted name, inheritance) and defaults. */
static const char *schema_text =
    "{\"type\": \"record\", \"name\": \"Beneficiary\","
    " \"namespace\": \"fr.example\", \"fields\": ["
    " {\"name\": \"id\", \"type\": {\"type\": \"string\","
    "   \"logicalType\": \"uuid\"}},"
    " {\"name\": \"name\", \"type\": \"string\"},"
    " {\"name\": \"birth_date\", \"type\": {\"type\": \"int\","
    "   \"logicalType\": \"date\"}},"
    " {\"name\": \"created_at\", \"type\": {\"type\": \"long\","
    "   \"logicalType\": \"timestamp-millis\"}},"
    " {\"name\": \"age\", \"type\": \"int\"},"
    " {\"name\": \"visits\", \"type\": \"long\"},"
    " {\"name\": \"score\", \"type\": \"float\"},"
    " {\"name\": \"ratio\", \"type\": \"double\"},"
    " {\"name\": \"active\", \"type\": \"boolean\"},"
    " {\"name\": \"status\", \"type\": {\"type\": \"enum\","
    "   \"name\": \"Status\", \"symbols\": [\"ACTIVE\", \"SUSPENDED\","
    "   \"CLOSED\"]}},"
    " {\"name\": \"address\", \"type\": {\"type\": \"record\","
    "   \"name\": \"Address\", \"fields\": ["
    "   {\"name\": \"street\", \"type\": \"string\"},"
    "   {\"name\": \"postcode\", \"type\": \"string\"},"
    "   {\"name\": \"country\", \"type\": \"string\", \"default\": \"FR\"}"
    "   ]}},"
    " {\"name\": \"mailing\", \"type\": [\"null\", \"Address\"],"
    "   \"default\": null},"
    " {\"name\": \"phones\", \"type\": {\"type\": \"array\", \"items\":"
    "   {\"type\": \"record\", \"name\": \"Phone\", \"fields\": ["
    "   {\"name\": \"kind\", \"type\": {\"type\": \"enum\","
    "     \"name\": \"PhoneKind\", \"symbols\": [\"MOBILE\", \"HOME\","
    "     \"WORK\"]}},"
    "   {\"name\": \"number\", \"type\": \"string\"}]}}},"
    " {\"name\": \"tags\", \"type\": {\"type\": \"map\","
    "   \"values\": \"string\"}},"
    " {\"name\": \"nickname\", \"type\": [\"null\", \"string\"],"
    "   \"default\": null},"
    " {\"name\": \"deceased_on\", \"type\": [\"null\", {\"type\": \"int\","
    "   \"logicalType\": \"date\"}], \"default\": null},"
    " {\"name\": \"balance\", \"type\": {\"type\": \"bytes\","
    "   \"logicalType\": \"decimal\", \"precision\": 10, \"scale\": 2}},"
    " {\"name\": \"credit_limit\", \"type\": {\"type\": \"fixed\","
    "   \"name\": \"Money\", \"size\": 8, \"logicalType\": \"decimal\","
    "   \"precision\": 18, \"scale\": 2}},"
    " {\"name\": \"photo_hash\", \"type\": {\"type\": \"fixed\","
    "   \"name\": \"Hash16\", \"size\": 16}},"
    " {\"name\": \"avatar\", \"type\": \"bytes\"},"
    " {\"name\": \"region\", \"type\": {\"type\": \"record\","
    "   \"name\": \"fr.geo.Region\", \"fields\": ["
    "   {\"name\": \"code\", \"type\": \"string\"},"
    "   {\"name\": \"kind\", \"type\": {\"type\": \"enum\","
    "     \"name\": \"RegionKind\", \"symbols\": [\"METRO\", \"DOM\"]}}"
    "   ]}},"
    " {\"name\": \"region_kind\", \"type\": \"fr.geo.RegionKind\","
    "   \"default\": \"METRO\"},"
    " {\"name\": \"wake_time\", \"type\": {\"type\": \"int\","
    "   \"logicalType\": \"time-millis\"}, \"default\": 0},"
    " {\"name\": \"last_seen\", \"type\": {\"type\": \"long\","
    "   \"logicalType\": \"timestamp-micros\"}},"
    " {\"name\": \"lucky\", \"type\": [\"null\", \"int\", \"string\"],"
    "   \"default\": null},"
    " {\"name\": \"level\", \"type\": \"Status\", \"default\": \"ACTIVE\"},"
    " {\"name\": \"origin\", \"type\": {\"type\": \"record\","
    "   \"name\": \"Origin\", \"namespace\": \"fr.other\", \"fields\": ["
    "   {\"name\": \"code\", \"type\": {\"type\": \"fixed\","
    "     \"name\": \"Code2\", \"size\": 2}}]},"
    "   \"default\": {\"code\": \"FR\"}},"
    " {\"name\": \"origin_code\", \"type\": [\"null\", \"fr.other.Code2\"],"
    "   \"default\": null},"
    " {\"name\": \"history\", \"type\": {\"type\": \"array\","
    "   \"items\": \"long\"}, \"default\": []}"
    "]}";

/* Every field given, in the forms to_json() renders. */
static const char *full_text =
    "{\"id\": \"3f2504e0-4f89-41d3-9a0c-0305e82c3301\","
    " \"name\": \"Marie Curie\","
    " \"birth_date\": \"1990-12-31\","
    " \"created_at\": \"2026-11-25T09:42:36.123Z\","
    " \"age\": 35,"
    " \"visits\": 9007199254740993,"
    " \"score\": 1.5,"
    " \"ratio\": 0.125,"
    " \"active\": true,"
    " \"status\": \"SUSPENDED\","
    " \"address\": {\"street\": \"1 rue de la Paix\", \"postcode\": \"75002\","
    "   \"country\": \"FR\"},"
    " \"mailing\": {\"street\": \"2 quai\", \"postcode\": \"69001\","
    "   \"country\": \"BE\"},"
    " \"phones\": [{\"kind\": \"MOBILE\", \"number\": \"+33600000000\"},"
    "   {\"kind\": \"HOME\", \"number\": \"+33100000000\"},"
    "   {\"kind\": \"WORK\", \"number\": \"+33200000000\"}],"
    " \"tags\": {\"x\": \"1\", \"y\": \"2\"},"
    " \"nickname\": \"Marie\","
    " \"deceased_on\": \"2034-07-04\","
    " \"balance\": \"-123.45\","
    " \"credit_limit\": \"1000000.00\","
    " \"photo_hash\": \"\\u0000\\u0001\\u00ff\\u0080abcdefghijkl\","
    " \"avatar\": \"\\u00e9t\\u00e9\\u0000\","
    " \"region\": {\"code\": \"IDF\", \"kind\": \"METRO\"},"
    " \"region_kind\": \"DOM\","
    " \"wake_time\": \"07:30:00.250\","
    " \"last_seen\": \"2026-11-25T09:42:36.123456Z\","
    " \"lucky\": 7,"
    " \"level\": \"CLOSED\","
    " \"origin\": {\"code\": \"BE\"},"
    " \"origin_code\": \"LU\","
    " \"history\": [1, -2, 3]"
    "}";

/* Only the fields without a default. */
static const char *minimal_text =
    "{\"id\": \"3F2504E0-4F89-41D3-9A0C-0305E82C3301\","
    " \"name\": \"\","
    " \"birth_date\": \"1970-01-01\","
    " \"created_at\": \"1969-12-31T23:59:59.999Z\","
    " \"age\": -2147483648,"
    " \"visits\": -9223372036854775807,"
    " \"score\": -0.5,"
    " \"ratio\": 1e300,"
    " \"active\": false,"
    " \"status\": \"ACTIVE\","
    " \"address\": {\"street\": \"s\", \"postcode\": \"p\"},"
    " \"phones\": [],"
    " \"tags\": {},"
    " \"balance\": \"0.00\","
    " \"credit_limit\": \"-9999999999999999.99\","
    " \"photo_hash\": \"0123456789abcdef\","
    " \"avatar\": \"\","
    " \"region\": {\"code\": \"971\", \"kind\": \"DOM\"},"
    " \"last_seen\": \"0001-01-01T00:00:00.000000Z\""
    "}";

/* minimal_text as to_json() renders it: defaults filled in. */
static const char *minimal_out_text =
    "{\"id\": \"3F2504E0-4F89-41D3-9A0C-0305E82C3301\","
    " \"name\": \"\","
    " \"birth_date\": \"1970-01-01\","
    " \"created_at\": \"1969-12-31T23:59:59.999Z\","
    " \"age\": -2147483648,"
    " \"visits\": -9223372036854775807,"
    " \"score\": -0.5,"
    " \"ratio\": 1e300,"
    " \"active\": false,"
    " \"status\": \"ACTIVE\","
    " \"address\": {\"street\": \"s\", \"postcode\": \"p\","
    "   \"country\": \"FR\"},"
    " \"mailing\": null,"
    " \"phones\": [],"
    " \"tags\": {},"
    " \"nickname\": null,"
    " \"deceased_on\": null,"
    " \"balance\": \"0.00\","
    " \"credit_limit\": \"-9999999999999999.99\","
    " \"photo_hash\": \"0123456789abcdef\","
    " \"avatar\": \"\","
    " \"region\": {\"code\": \"971\", \"kind\": \"DOM\"},"
    " \"region_kind\": \"METRO\","
    " \"wake_time\": \"00:00:00.000\","
    " \"last_seen\": \"0001-01-01T00:00:00.000000Z\","
    " \"lucky\": null,"
    " \"level\": \"ACTIVE\","
    " \"origin\": {\"code\": \"FR\"},"
    " \"origin_code\": null,"
    " \"history\": []"
    "}";

struct fixture {
        json_t *schema_json;
        avro_schema_t schema;
        avro_value_iface_t *iface;
        avro_value_t value;
        sb_avrojson_t *aj;
};

static json_t *load(const char *text)
{
        json_error_t jerr;
        json_t *j = json_loads(text, JSON_ALLOW_NUL | JSON_DECODE_ANY, &jerr);

        if (!j)
                fail_msg("bad JSON in test: %s (line %d col %d)", jerr.text,
                         jerr.line, jerr.column);
        return j;
}

static char *dump(const json_t *j)
{
        return json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
}

static void assert_json_equal(const json_t *expected, const json_t *got)
{
        char *e, *g;

        if (json_equal(expected, got))
                return;
        e = dump(expected);
        g = got ? dump(got) : strdup("(null)");
        print_error("expected: %s\n     got: %s\n", e, g);
        free(e);
        free(g);
        fail_msg("JSON differs");
}

static int fixture_open(struct fixture *f, const char *text)
{
        char errstr[512] = "";

        memset(f, 0, sizeof(*f));
        f->schema_json = load(text);
        if (avro_schema_from_json_length(text, strlen(text), &f->schema))
                fail_msg("Avro C rejects the test schema: %s", avro_strerror());
        f->aj =
            sb_avrojson_new(f->schema_json, f->schema, errstr, sizeof(errstr));
        if (!f->aj)
                fail_msg("sb_avrojson_new: %s", errstr);
        f->iface = avro_generic_class_from_schema(f->schema);
        assert_non_null(f->iface);
        assert_int_equal(avro_generic_value_new(f->iface, &f->value), 0);
        return 0;
}

static void fixture_close(struct fixture *f)
{
        avro_value_decref(&f->value);
        avro_value_iface_decref(f->iface);
        sb_avrojson_destroy(f->aj);
        avro_schema_decref(f->schema);
        json_decref(f->schema_json);
}

static int setup(void **state)
{
        struct fixture *f = malloc(sizeof(*f));

        assert_non_null(f);
        fixture_open(f, schema_text);
        *state = f;
        return 0;
}

static int teardown(void **state)
{
        fixture_close(*state);
        free(*state);
        return 0;
}

/* JSON -> Avro -> JSON must give `expected_text`. */
static void check_round_trip(struct fixture *f, const char *in_text,
                             const char *expected_text)
{
        char errstr[512] = "";
        json_t *in = load(in_text), *expected = load(expected_text), *out;
        sb_err_t err;

        err =
            sb_avrojson_from_json(f->aj, in, &f->value, errstr, sizeof(errstr));
        if (err)
                fail_msg("from_json: %s", errstr);
        err =
            sb_avrojson_to_json(f->aj, &f->value, &out, errstr, sizeof(errstr));
        if (err)
                fail_msg("to_json: %s", errstr);
        assert_json_equal(expected, out);
        json_decref(out);
        json_decref(expected);
        json_decref(in);
}

static void test_round_trip_every_type(void **state)
{
        check_round_trip(*state, full_text, full_text);
}

static void test_defaults_fill_missing_fields(void **state)
{
        check_round_trip(*state, minimal_text, minimal_out_text);
}

/* Avro's own JSON encoding of unions, and non-canonical inputs. */
static void test_accepted_input_forms(void **state)
{
        struct fixture *f = *state;
        struct {
                const char *set;
                const char *field;
                const char *expected;
        } rows[] = {
            {"{\"nickname\": {\"string\": \"Bob\"}}", "nickname", "\"Bob\""},
            {"{\"nickname\": null}", "nickname", "null"},
            {"{\"mailing\": {\"fr.example.Address\": {\"street\": \"a\","
             " \"postcode\": \"b\"}}}",
             "mailing",
             "{\"street\": \"a\", \"postcode\": \"b\","
             " \"country\": \"FR\"}"},
            {"{\"deceased_on\": {\"int\": 1}}", "deceased_on",
             "\"1970-01-02\""},
            {"{\"lucky\": \"7\"}", "lucky", "\"7\""},
            {"{\"lucky\": {\"string\": \"x\"}}", "lucky", "\"x\""},
            {"{\"lucky\": {\"int\": 8}}", "lucky", "8"},
            {"{\"created_at\": \"2026-11-25T10:42:36+01:00\"}", "created_at",
             "\"2026-11-25T09:42:36.000Z\""},
            {"{\"created_at\": \"2026-11-25t09:42:36.1234567z\"}", "created_at",
             "\"2026-11-25T09:42:36.123Z\""},
            {"{\"created_at\": \"2000-03-01T00:30:00-01:30\"}", "created_at",
             "\"2000-03-01T02:00:00.000Z\""},
            {"{\"birth_date\": \"2024-02-29\"}", "birth_date",
             "\"2024-02-29\""},
            {"{\"birth_date\": \"1600-02-29\"}", "birth_date",
             "\"1600-02-29\""},
            {"{\"balance\": \"12\"}", "balance", "\"12.00\""},
            {"{\"balance\": \"+0.5\"}", "balance", "\"0.50\""},
            {"{\"balance\": \"-0.01\"}", "balance", "\"-0.01\""},
            {"{\"balance\": \"00099999999.99\"}", "balance", "\"99999999.99\""},
            {"{\"balance\": \"-99999999.99\"}", "balance", "\"-99999999.99\""},
            {"{\"balance\": -128}", "balance", "\"-128.00\""},
            {"{\"credit_limit\": \"9999999999999999.99\"}", "credit_limit",
             "\"9999999999999999.99\""},
            {"{\"credit_limit\": \"-0.01\"}", "credit_limit", "\"-0.01\""},
            {"{\"score\": 3}", "score", "3.0"},
            {"{\"score\": 1.1}", "score", "1.1"},
            {"{\"ratio\": -7}", "ratio", "-7.0"},
            {"{\"wake_time\": \"23:59:59\"}", "wake_time", "\"23:59:59.000\""},
            {"{\"tags\": {\"a\\\"b\": \"\\u00e9\\u20ac\"}}", "tags",
             "{\"a\\\"b\": \"\\u00e9\\u20ac\"}"},
        };
        char errstr[512];
        json_t *base, *patch, *out, *expected;
        size_t i;
        sb_err_t err;

        for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
                base = load(full_text);
                patch = load(rows[i].set);
                expected = load(rows[i].expected);
                assert_int_equal(json_object_update(base, patch), 0);
                errstr[0] = '\0';
                err = sb_avrojson_from_json(f->aj, base, &f->value, errstr,
                                            sizeof(errstr));
                if (err)
                        fail_msg("row %zu (%s): from_json: %s", i, rows[i].set,
                                 errstr);
                err = sb_avrojson_to_json(f->aj, &f->value, &out, errstr,
                                          sizeof(errstr));
                if (err)
                        fail_msg("row %zu: to_json: %s", i, errstr);
                print_message("row %zu: %s\n", i, rows[i].set);
                assert_json_equal(expected,
                                  json_object_get(out, rows[i].field));
                json_decref(out);
                json_decref(expected);
                json_decref(patch);
                json_decref(base);
        }
}

static void test_binary_round_trip(void **state)
{
        struct fixture *f = *state;
        const char *inputs[] = {full_text, minimal_out_text};
        char errstr[512] = "", buf[4096];
        avro_writer_t writer;
        avro_reader_t reader;
        avro_value_t copy;
        json_t *in, *out;
        int64_t len;
        size_t i;

        for (i = 0; i < sizeof(inputs) / sizeof(inputs[0]); i++) {
                in = load(inputs[i]);
                if (sb_avrojson_from_json(f->aj, in, &f->value, errstr,
                                          sizeof(errstr)))
                        fail_msg("from_json: %s", errstr);
                writer = avro_writer_memory(buf, sizeof(buf));
                assert_non_null(writer);
                if (avro_value_write(writer, &f->value))
                        fail_msg("avro_value_write: %s", avro_strerror());
                len = avro_writer_tell(writer);
                avro_writer_free(writer);

                reader = avro_reader_memory(buf, len);
                assert_non_null(reader);
                assert_int_equal(avro_generic_value_new(f->iface, &copy), 0);
                if (avro_value_read(reader, &copy))
                        fail_msg("avro_value_read: %s", avro_strerror());
                avro_reader_free(reader);
                assert_true(avro_value_equal(&f->value, &copy));

                if (sb_avrojson_to_json(f->aj, &copy, &out, errstr,
                                        sizeof(errstr)))
                        fail_msg("to_json: %s", errstr);
                assert_json_equal(in, out);
                json_decref(out);
                avro_value_decref(&copy);
                json_decref(in);
        }
}

/* Decimal bytes are the spec's two's-complement big-endian unscaled value;
 * readers in other languages depend on it. */
static void test_decimal_encoding(void **state)
{
        struct fixture *f = *state;
        struct {
                const char *value;
                const char *field;
                size_t len;
                const unsigned char bytes[8];
        } rows[] = {
            {"\"0.00\"", "balance", 1, {0x00}},
            {"\"1.27\"", "balance", 1, {0x7f}},
            {"\"1.28\"", "balance", 2, {0x00, 0x80}},
            {"\"-1.28\"", "balance", 1, {0x80}},
            {"\"-1.29\"", "balance", 2, {0xff, 0x7f}},
            {"\"-0.01\"", "balance", 1, {0xff}},
            {"\"-123.45\"", "balance", 2, {0xcf, 0xc7}},
            {"\"-0.01\"",
             "credit_limit",
             8,
             {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}},
            {"\"2.56\"", "credit_limit", 8, {0, 0, 0, 0, 0, 0, 0x01, 0x00}},
        };
        char errstr[512] = "";
        avro_value_t child;
        const void *bytes;
        size_t i, size;
        json_t *in;

        for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
                in = load(full_text);
                assert_int_equal(
                    json_object_set_new(in, rows[i].field, load(rows[i].value)),
                    0);
                if (sb_avrojson_from_json(f->aj, in, &f->value, errstr,
                                          sizeof(errstr)))
                        fail_msg("row %zu: %s", i, errstr);
                assert_int_equal(avro_value_get_by_name(
                                     &f->value, rows[i].field, &child, NULL),
                                 0);
                if (!strcmp(rows[i].field, "balance"))
                        assert_int_equal(
                            avro_value_get_bytes(&child, &bytes, &size), 0);
                else
                        assert_int_equal(
                            avro_value_get_fixed(&child, &bytes, &size), 0);
                print_message("row %zu: %s\n", i, rows[i].value);
                assert_int_equal(size, rows[i].len);
                assert_memory_equal(bytes, rows[i].bytes, size);
                json_decref(in);
        }
}

/* A value reused for many records, and union branches tried in turn, must
 * not keep elements of an earlier attempt. */
static void test_union_branches_leave_no_garbage(void **state)
{
        const char *schema =
            "{\"type\": \"record\", \"name\": \"U\", \"fields\": ["
            " {\"name\": \"u\", \"type\": [\"null\","
            "   {\"type\": \"array\", \"items\": \"int\"},"
            "   {\"type\": \"array\", \"items\": \"string\"},"
            "   {\"type\": \"record\", \"name\": \"A\", \"fields\": ["
            "     {\"name\": \"x\", \"type\": \"int\"},"
            "     {\"name\": \"y\", \"type\": \"int\"}]},"
            "   {\"type\": \"record\", \"name\": \"B\", \"fields\": ["
            "     {\"name\": \"x\", \"type\": \"int\"},"
            "     {\"name\": \"z\", \"type\": \"string\"}]}]}]}";
        const char *seq[] = {
            "{\"u\": [1, 2, 3]}",
            "{\"u\": [\"a\", \"b\"]}",
            "{\"u\": [4]}",
            "{\"u\": [5, \"c\"]}",
            "{\"u\": {\"x\": 1, \"z\": \"s\"}}",
            "{\"u\": {\"x\": 2, \"y\": 3}}",
            "{\"u\": null}",
            "{\"u\": [6]}",
        };
        const char *expected_error =
            "field 'u': expected null, a JSON array, a JSON array, a JSON "
            "object for record 'A' or a JSON object for record 'B', got [5,"
            "\"c\"]";
        struct fixture f;
        char errstr[512];
        json_t *in, *out;
        size_t i;
        sb_err_t err;

        (void)state;
        fixture_open(&f, schema);
        for (i = 0; i < sizeof(seq) / sizeof(seq[0]); i++) {
                in = load(seq[i]);
                errstr[0] = '\0';
                err = sb_avrojson_from_json(f.aj, in, &f.value, errstr,
                                            sizeof(errstr));
                if (i == 3) {
                        assert_int_equal(err, SB_ERR_VALIDATION);
                        assert_string_equal(errstr, expected_error);
                        json_decref(in);
                        continue;
                }
                if (err)
                        fail_msg("%s: %s", seq[i], errstr);
                assert_int_equal(sb_avrojson_to_json(f.aj, &f.value, &out,
                                                     errstr, sizeof(errstr)),
                                 SB_OK);
                assert_json_equal(in, out);
                json_decref(out);
                json_decref(in);
        }
        fixture_close(&f);
}

/*
 * {"map": {"a": {"b": 1}}} is first read as Avro's wrapped form (branch
 * "map" holding {"a": {"b": 1}}), which fails after adding key "a"; read
 * bare, the same branch takes it. Key "a" must not survive the first try.
 */
static void test_retried_branch_starts_empty(void **state)
{
        const char *schema =
            "{\"type\": \"record\", \"name\": \"M\", \"fields\": ["
            " {\"name\": \"u\", \"type\": [\"null\", {\"type\": \"map\","
            "  \"values\": {\"type\": \"map\", \"values\": {\"type\":"
            "  \"map\", \"values\": \"int\"}}}]}]}";
        const char *in_text = "{\"u\": {\"map\": {\"a\": {\"b\": 1}}}}";
        struct fixture f;

        (void)state;
        fixture_open(&f, schema);
        check_round_trip(&f, in_text, in_text);
        fixture_close(&f);
}

/* Stores write one column per field from the field's type JSON. */
static void test_field_to_json(void **state)
{
        struct fixture *f = *state;
        char errstr[512] = "";
        const json_t *fields, *field;
        json_t *in, *out, *type;
        avro_value_t child;
        size_t i;

        in = load(full_text);
        if (sb_avrojson_from_json(f->aj, in, &f->value, errstr, sizeof(errstr)))
                fail_msg("from_json: %s", errstr);
        fields = json_object_get(f->schema_json, "fields");
        json_array_foreach(fields, i, field)
        {
                const char *name =
                    json_string_value(json_object_get(field, "name"));

                assert_int_equal(
                    avro_value_get_by_index(&f->value, i, &child, NULL), 0);
                if (sb_avrojson_field_to_json(
                        f->aj, json_object_get(field, "type"), &child, &out,
                        errstr, sizeof(errstr)))
                        fail_msg("field %s: %s", name, errstr);
                print_message("field %s\n", name);
                assert_json_equal(json_object_get(in, name), out);
                json_decref(out);
        }

        /* Type JSON that is not part of the schema: compiled on the side,
         * names resolved against the schema's. */
        assert_int_equal(
            avro_value_get_by_name(&f->value, "level", &child, NULL), 0);
        type = json_string("fr.example.Status");
        assert_int_equal(sb_avrojson_field_to_json(f->aj, type, &child, &out,
                                                   errstr, sizeof(errstr)),
                         SB_OK);
        assert_string_equal(json_string_value(out), "CLOSED");
        json_decref(out);
        json_decref(type);

        assert_int_equal(
            avro_value_get_by_name(&f->value, "birth_date", &child, NULL), 0);
        type = load("{\"type\": \"int\", \"logicalType\": \"date\"}");
        assert_int_equal(sb_avrojson_field_to_json(f->aj, type, &child, &out,
                                                   errstr, sizeof(errstr)),
                         SB_OK);
        assert_string_equal(json_string_value(out), "1990-12-31");
        json_decref(out);
        json_decref(type);
        json_decref(in);
}

static void test_recursive_type(void **state)
{
        const char *schema =
            "{\"type\": \"record\", \"name\": \"Node\", \"namespace\": \"l\","
            " \"fields\": [{\"name\": \"value\", \"type\": \"int\"},"
            " {\"name\": \"next\", \"type\": [\"null\", \"Node\"],"
            "  \"default\": null}]}";
        const char *in_text =
            "{\"value\": 1, \"next\": {\"value\": 2, \"next\": {\"value\": 3,"
            " \"next\": null}}}";
        const char *bad = "{\"value\": 1, \"next\": {\"value\": 2,"
                          " \"next\": {\"value\": \"x\"}}}";
        struct fixture f;
        char errstr[512] = "";
        json_t *in;

        (void)state;
        fixture_open(&f, schema);
        check_round_trip(&f, in_text, in_text);
        in = load(bad);
        assert_int_equal(
            sb_avrojson_from_json(f.aj, in, &f.value, errstr, sizeof(errstr)),
            SB_ERR_VALIDATION);
        assert_string_equal(errstr,
                            "field 'next.next.value': expected an int, got "
                            "\"x\"");
        json_decref(in);
        fixture_close(&f);
}

/* Schemas whose root is not a record, and a map of arrays of records. */
static void test_other_roots(void **state)
{
        const char *schema = "{\"type\": \"map\", \"values\": {\"type\":"
                             " \"array\", \"items\": {\"type\": \"record\","
                             " \"name\": \"P\", \"fields\": [{\"name\": \"t\","
                             " \"type\": {\"type\": \"long\", \"logicalType\":"
                             " \"timestamp-millis\"}}]}}}";
        const char *good = "{\"a\": [{\"t\": \"2026-01-01T00:00:00.000Z\"}],"
                           " \"b\": []}";
        const char *bad = "{\"a\": [], \"k\\\"1\": [{\"t\": \"x\"}]}";
        struct fixture f;
        char errstr[512] = "";
        json_t *in;

        (void)state;
        fixture_open(&f, schema);
        check_round_trip(&f, good, good);
        in = load(bad);
        assert_int_equal(
            sb_avrojson_from_json(f.aj, in, &f.value, errstr, sizeof(errstr)),
            SB_ERR_VALIDATION);
        assert_string_equal(errstr,
                            "field '[\"k\\\"1\"][0].t': expected a timestamp "
                            "(RFC 3339, e.g. 2026-11-25T09:42:36Z), got "
                            "\"x\"");
        json_decref(in);
        in = json_integer(3);
        assert_int_equal(
            sb_avrojson_from_json(f.aj, in, &f.value, errstr, sizeof(errstr)),
            SB_ERR_VALIDATION);
        assert_string_equal(errstr, "expected a JSON object, got 3");
        json_decref(in);
        fixture_close(&f);
}

/* Schema problems are reported by sb_avrojson_new(). */
static void test_bad_schemas(void **state)
{
        struct {
                const char *json; /* given to sb_avrojson_new */
                const char *avro; /* parsed by Avro C; NULL: same */
                const char *expected;
        } rows[] = {
            {"{\"type\": \"fixed\", \"name\": \"M\", \"size\": 4,"
             " \"logicalType\": \"decimal\", \"precision\": 10}",
             NULL,
             "invalid schema: decimal precision 10 does not fit fixed 'M' of "
             "4 bytes"},
            {"{\"type\": \"bytes\", \"logicalType\": \"decimal\"}", NULL,
             "invalid schema: decimal in 'bytes' needs a \"precision\" from "
             "1 to 300"},
            {"{\"type\": \"bytes\", \"logicalType\": \"decimal\","
             " \"precision\": 4, \"scale\": 5}",
             NULL,
             "invalid schema: decimal in 'bytes' needs a \"scale\" from 0 to "
             "its precision"},
            {"{\"type\": \"record\", \"name\": \"R\", \"fields\": ["
             " {\"name\": \"a\", \"type\": [\"null\", \"string\"],"
             "  \"default\": \"x\"}]}",
             NULL,
             "invalid default in schema: field 'a': expected null, got "
             "\"x\""},
            {"{\"type\": \"record\", \"name\": \"R\", \"fields\": ["
             " {\"name\": \"a\", \"type\": \"Nope\"}]}",
             "{\"type\": \"record\", \"name\": \"R\", \"fields\": ["
             " {\"name\": \"a\", \"type\": \"int\"}]}",
             "invalid schema: unknown type 'Nope'"},
            {"{\"type\": \"record\", \"name\": \"R\", \"fields\": ["
             " {\"name\": \"a\", \"type\": \"int\"}]}",
             "{\"type\": \"record\", \"name\": \"R\", \"fields\": ["
             " {\"name\": \"a\", \"type\": \"long\"}]}",
             "field 'a': schema JSON and Avro C schema disagree: types "
             "differ"},
        };
        char errstr[512];
        avro_schema_t schema;
        sb_avrojson_t *aj;
        json_t *js;
        size_t i;

        (void)state;
        for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
                const char *avro = rows[i].avro ? rows[i].avro : rows[i].json;

                js = load(rows[i].json);
                if (avro_schema_from_json_length(avro, strlen(avro), &schema))
                        fail_msg("row %zu: Avro C: %s", i, avro_strerror());
                errstr[0] = '\0';
                aj = sb_avrojson_new(js, schema, errstr, sizeof(errstr));
                if (aj || strcmp(errstr, rows[i].expected))
                        fail_msg("row %zu:\n  expected: %s\n       got: %s", i,
                                 rows[i].expected, aj ? "(accepted)" : errstr);
                avro_schema_decref(schema);
                json_decref(js);
        }
}

/*
 * Bad inputs: full_text with `set` merged in (and `del` removed), or
 * `whole` instead, must fail with exactly `expected`.
 */
static const struct bad_row {
        const char *set;
        const char *del;
        const char *whole;
        const char *expected;
} bad_rows[] = {
    {NULL, NULL, "[1]",
     "expected a JSON object for record 'fr.example.Beneficiary', got [1]"},
    {NULL, NULL, "\"x\"",
     "expected a JSON object for record 'fr.example.Beneficiary', got \"x\""},
    /* date */
    {"{\"birth_date\": \"12/31/1990\"}", NULL, NULL,
     "field 'birth_date': expected a date (YYYY-MM-DD), got \"12/31/1990\""},
    {"{\"birth_date\": \"2023-02-30\"}", NULL, NULL,
     "field 'birth_date': expected a date (YYYY-MM-DD), got \"2023-02-30\""},
    {"{\"birth_date\": \"2023-02-29\"}", NULL, NULL,
     "field 'birth_date': expected a date (YYYY-MM-DD), got \"2023-02-29\""},
    {"{\"birth_date\": \"1900-02-29\"}", NULL, NULL,
     "field 'birth_date': expected a date (YYYY-MM-DD), got \"1900-02-29\""},
    {"{\"birth_date\": \"2023-13-01\"}", NULL, NULL,
     "field 'birth_date': expected a date (YYYY-MM-DD), got \"2023-13-01\""},
    {"{\"birth_date\": \"2023-01-01T00:00:00Z\"}", NULL, NULL,
     "field 'birth_date': expected a date (YYYY-MM-DD), got "
     "\"2023-01-01T00:00:00Z\""},
    {"{\"birth_date\": 19000}", NULL, NULL,
     "field 'birth_date': expected a date (YYYY-MM-DD), got 19000"},
    /* timestamp */
    {"{\"created_at\": \"yesterday\"}", NULL, NULL,
     "field 'created_at': expected a timestamp (RFC 3339, e.g. "
     "2026-11-25T09:42:36Z), got \"yesterday\""},
    {"{\"created_at\": \"2026-11-25T09:42:36\"}", NULL, NULL,
     "field 'created_at': expected a timestamp (RFC 3339, e.g. "
     "2026-11-25T09:42:36Z), got \"2026-11-25T09:42:36\""},
    {"{\"created_at\": \"2026-11-25T24:00:00Z\"}", NULL, NULL,
     "field 'created_at': expected a timestamp (RFC 3339, e.g. "
     "2026-11-25T09:42:36Z), got \"2026-11-25T24:00:00Z\""},
    {"{\"created_at\": \"2026-02-30T10:00:00Z\"}", NULL, NULL,
     "field 'created_at': expected a timestamp (RFC 3339, e.g. "
     "2026-11-25T09:42:36Z), got \"2026-02-30T10:00:00Z\""},
    {"{\"created_at\": \"2026-11-25T09:42:36.Z\"}", NULL, NULL,
     "field 'created_at': expected a timestamp (RFC 3339, e.g. "
     "2026-11-25T09:42:36Z), got \"2026-11-25T09:42:36.Z\""},
    {"{\"created_at\": 1764063756123}", NULL, NULL,
     "field 'created_at': expected a timestamp (RFC 3339, e.g. "
     "2026-11-25T09:42:36Z), got 1764063756123"},
    {"{\"last_seen\": \"2026-11-25T09:42:36+0100\"}", NULL, NULL,
     "field 'last_seen': expected a timestamp (RFC 3339, e.g. "
     "2026-11-25T09:42:36Z), got \"2026-11-25T09:42:36+0100\""},
    {"{\"wake_time\": \"7:30\"}", NULL, NULL,
     "field 'wake_time': expected a time (HH:MM:SS.sss), got \"7:30\""},
    /* int, long, float, double, boolean, string */
    {"{\"age\": 1.5}", NULL, NULL, "field 'age': expected an int, got 1.5"},
    {"{\"age\": 1.0}", NULL, NULL, "field 'age': expected an int, got 1.0"},
    {"{\"age\": \"35\"}", NULL, NULL,
     "field 'age': expected an int, got \"35\""},
    {"{\"age\": 3000000000}", NULL, NULL,
     "field 'age': int out of range, got 3000000000"},
    {"{\"age\": -2147483649}", NULL, NULL,
     "field 'age': int out of range, got -2147483649"},
    {"{\"visits\": 1.5}", NULL, NULL,
     "field 'visits': expected a long, got 1.5"},
    {"{\"visits\": null}", NULL, NULL,
     "field 'visits': expected a long, got null"},
    {"{\"score\": \"x\"}", NULL, NULL,
     "field 'score': expected a float, got \"x\""},
    {"{\"score\": 1e39}", NULL, NULL,
     "field 'score': float out of range, got 1e39"},
    {"{\"ratio\": true}", NULL, NULL,
     "field 'ratio': expected a double, got true"},
    {"{\"active\": \"yes\"}", NULL, NULL,
     "field 'active': expected a boolean, got \"yes\""},
    {"{\"active\": 1}", NULL, NULL,
     "field 'active': expected a boolean, got 1"},
    {"{\"name\": null}", NULL, NULL,
     "field 'name': expected a string, got null"},
    {"{\"name\": 75001}", NULL, NULL,
     "field 'name': expected a string, got 75001"},
    {"{\"name\": [\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"]}", NULL,
     NULL,
     "field 'name': expected a string, got "
     "[\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa..."},
    /* 41st byte is inside a UTF-8 sequence: cut before it */
    {"{\"name\": {\"kk\": \"\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9"
     "\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9"
     "\\u00e9\"}}",
     NULL, NULL,
     "field 'name': expected a string, got "
     "{\"kk\":\"\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3"
     "\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
     "..."},
    /* decimal */
    {"{\"balance\": \"1.234\"}", NULL, NULL,
     "field 'balance': expected a decimal with at most 2 fraction digits, "
     "got \"1.234\""},
    {"{\"balance\": \"123456789.5\"}", NULL, NULL,
     "field 'balance': expected a decimal with at most 10 digits (2 after "
     "the point), got \"123456789.5\""},
    {"{\"balance\": 123456789}", NULL, NULL,
     "field 'balance': expected a decimal with at most 10 digits (2 after "
     "the point), got 123456789"},
    {"{\"balance\": \"12,50\"}", NULL, NULL,
     "field 'balance': expected a decimal string (e.g. \"-123.45\"), got "
     "\"12,50\""},
    {"{\"balance\": \"1e5\"}", NULL, NULL,
     "field 'balance': expected a decimal string (e.g. \"-123.45\"), got "
     "\"1e5\""},
    {"{\"balance\": \".5\"}", NULL, NULL,
     "field 'balance': expected a decimal string (e.g. \"-123.45\"), got "
     "\".5\""},
    {"{\"balance\": 12.5}", NULL, NULL,
     "field 'balance': expected a decimal string (e.g. \"-123.45\"), got "
     "12.5"},
    {"{\"credit_limit\": \"1.001\"}", NULL, NULL,
     "field 'credit_limit': expected a decimal with at most 2 fraction "
     "digits, got \"1.001\""},
    {"{\"credit_limit\": \"10000000000000000\"}", NULL, NULL,
     "field 'credit_limit': expected a decimal with at most 18 digits (2 "
     "after the point), got \"10000000000000000\""},
    /* uuid, enum, fixed, bytes */
    {"{\"id\": \"xyz\"}", NULL, NULL,
     "field 'id': expected a uuid, got \"xyz\""},
    {"{\"id\": \"3f2504e0-4f89-41d3-9a0c-0305e82c330g\"}", NULL, NULL,
     "field 'id': expected a uuid, got "
     "\"3f2504e0-4f89-41d3-9a0c-0305e82c330g\""},
    {"{\"status\": \"foo\"}", NULL, NULL,
     "field 'status': expected one of the symbols of enum "
     "'fr.example.Status', got \"foo\""},
    {"{\"status\": 1}", NULL, NULL,
     "field 'status': expected one of the symbols of enum "
     "'fr.example.Status', got 1"},
    {"{\"photo_hash\": \"abc\"}", NULL, NULL,
     "field 'photo_hash': expected 16 bytes, got 3"},
    {"{\"photo_hash\": 12}", NULL, NULL,
     "field 'photo_hash': expected a string of 16 bytes, got 12"},
    {"{\"origin_code\": \"FRA\"}", NULL, NULL,
     "field 'origin_code': expected null or a string of 2 bytes, got "
     "\"FRA\""},
    {"{\"avatar\": \"\\u20ac\"}", NULL, NULL,
     "field 'avatar': expected characters U+0000 to U+00FF (one per "
     "byte), got \"\xe2\x82\xac\""},
    {"{\"avatar\": 1}", NULL, NULL,
     "field 'avatar': expected a bytes string, got 1"},
    /* records: missing, unknown, nested */
    {NULL, "name", NULL, "field 'name': missing required field"},
    {NULL, "address", NULL, "field 'address': missing required field"},
    {"{\"nickname2\": \"x\"}", NULL, NULL,
     "field 'nickname2': unknown field (not in schema "
     "'fr.example.Beneficiary')"},
    {"{\"nmae\": \"x\"}", "name", NULL,
     "field 'nmae': unknown field (not in schema "
     "'fr.example.Beneficiary')"},
    {"{\"address\": {\"street\": \"x\", \"postcode\": 75001}}", NULL, NULL,
     "field 'address.postcode': expected a string, got 75001"},
    {"{\"address\": {\"street\": \"x\"}}", NULL, NULL,
     "field 'address.postcode': missing required field"},
    {"{\"address\": {\"street\": \"x\", \"postcode\": \"y\", \"zip\": 1}}",
     NULL, NULL,
     "field 'address.zip': unknown field (not in schema "
     "'fr.example.Address')"},
    {"{\"address\": \"x\"}", NULL, NULL,
     "field 'address': expected a JSON object for record "
     "'fr.example.Address', got \"x\""},
    {"{\"region\": {\"code\": \"IDF\", \"kind\": \"X\"}}", NULL, NULL,
     "field 'region.kind': expected one of the symbols of enum "
     "'fr.geo.RegionKind', got \"X\""},
    {"{\"origin\": {\"code\": \"F\"}}", NULL, NULL,
     "field 'origin.code': expected 2 bytes, got 1"},
    /* arrays and maps */
    {"{\"phones\": [{\"kind\": \"MOBILE\", \"number\": \"1\"}, {\"kind\":"
     " \"HOME\", \"number\": \"2\"}, {\"kind\": \"WORK\", \"number\": 3}]}",
     NULL, NULL, "field 'phones[2].number': expected a string, got 3"},
    {"{\"phones\": [{\"kind\": \"MOBILE\", \"number\": \"1\"}, {\"kind\":"
     " \"FAX\", \"number\": \"2\"}]}",
     NULL, NULL,
     "field 'phones[1].kind': expected one of the symbols of enum "
     "'fr.example.PhoneKind', got \"FAX\""},
    {"{\"phones\": [7]}", NULL, NULL,
     "field 'phones[0]': expected a JSON object for record "
     "'fr.example.Phone', got 7"},
    {"{\"phones\": {}}", NULL, NULL,
     "field 'phones': expected a JSON array, got {}"},
    {"{\"history\": [1, 2.5]}", NULL, NULL,
     "field 'history[1]': expected a long, got 2.5"},
    {"{\"tags\": {\"x\": 1}}", NULL, NULL,
     "field 'tags[\"x\"]': expected a string, got 1"},
    {"{\"tags\": []}", NULL, NULL,
     "field 'tags': expected a JSON object, got []"},
    /* unions */
    {"{\"deceased_on\": \"abc\"}", NULL, NULL,
     "field 'deceased_on': expected null or a date (YYYY-MM-DD), got "
     "\"abc\""},
    {"{\"deceased_on\": \"2023-02-30\"}", NULL, NULL,
     "field 'deceased_on': expected null or a date (YYYY-MM-DD), got "
     "\"2023-02-30\""},
    {"{\"nickname\": 5}", NULL, NULL,
     "field 'nickname': expected null or a string, got 5"},
    {"{\"nickname\": {\"string\": 5}}", NULL, NULL,
     "field 'nickname': expected a string, got 5"},
    {"{\"mailing\": {\"fr.example.Address\": {\"street\": \"x\"}}}", NULL, NULL,
     "field 'mailing.postcode': missing required field"},
    {"{\"lucky\": {\"int\": \"7\"}}", NULL, NULL,
     "field 'lucky': expected an int, got \"7\""},
    {"{\"lucky\": 1.5}", NULL, NULL,
     "field 'lucky': expected null, an int or a string, got 1.5"},
    {"{\"lucky\": 3000000000}", NULL, NULL,
     "field 'lucky': expected null, an int or a string, got 3000000000"},
    {"{\"mailing\": 5}", NULL, NULL,
     "field 'mailing': expected null or a JSON object for record "
     "'fr.example.Address', got 5"},
    {"{\"mailing\": {\"street\": \"x\"}}", NULL, NULL,
     "field 'mailing.postcode': missing required field"},
    {"{\"mailing\": {\"street\": \"x\", \"postcode\": \"y\", \"c\": 1}}", NULL,
     NULL,
     "field 'mailing.c': unknown field (not in schema "
     "'fr.example.Address')"},
};

static void test_bad_inputs(void **state)
{
        struct fixture *f = *state;
        const struct bad_row *r;
        char errstr[512];
        size_t i, failures = 0;
        json_t *in, *patch;
        sb_err_t err;

        for (i = 0; i < sizeof(bad_rows) / sizeof(bad_rows[0]); i++) {
                r = &bad_rows[i];
                if (r->whole) {
                        in = load(r->whole);
                } else {
                        in = load(full_text);
                        if (r->set) {
                                patch = load(r->set);
                                assert_int_equal(json_object_update(in, patch),
                                                 0);
                                json_decref(patch);
                        }
                        if (r->del)
                                assert_int_equal(json_object_del(in, r->del),
                                                 0);
                }
                errstr[0] = '\0';
                err = sb_avrojson_from_json(f->aj, in, &f->value, errstr,
                                            sizeof(errstr));
                if (err != SB_ERR_VALIDATION ||
                    strcmp(errstr, r->expected) != 0) {
                        print_error("row %zu (%s):\n  expected: %s\n"
                                    "       got: [%s] %s\n",
                                    i,
                                    r->whole ? r->whole
                                    : r->set ? r->set
                                             : r->del,
                                    r->expected, sb_err2str(err), errstr);
                        failures++;
                }
                json_decref(in);
        }
        print_message("%zu bad-input rows\n", i);
        if (failures)
                fail_msg("%zu of %zu bad-input rows failed", failures, i);
}

/* A short errstr is filled, cut, and NUL-terminated; NULL is tolerated. */
static void test_small_errstr(void **state)
{
        struct fixture *f = *state;
        char errstr[16];
        json_t *in = json_integer(1);

        memset(errstr, 'x', sizeof(errstr));
        assert_int_equal(
            sb_avrojson_from_json(f->aj, in, &f->value, errstr, sizeof(errstr)),
            SB_ERR_VALIDATION);
        assert_string_equal(errstr, "expected a JSON");
        assert_int_equal(sb_avrojson_from_json(f->aj, in, &f->value, NULL, 0),
                         SB_ERR_VALIDATION);
        json_decref(in);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_round_trip_every_type),
            cmocka_unit_test(test_defaults_fill_missing_fields),
            cmocka_unit_test(test_accepted_input_forms),
            cmocka_unit_test(test_binary_round_trip),
            cmocka_unit_test(test_decimal_encoding),
            cmocka_unit_test(test_union_branches_leave_no_garbage),
            cmocka_unit_test(test_retried_branch_starts_empty),
            cmocka_unit_test(test_field_to_json),
            cmocka_unit_test(test_recursive_type),
            cmocka_unit_test(test_other_roots),
            cmocka_unit_test(test_bad_schemas),
            cmocka_unit_test(test_bad_inputs),
            cmocka_unit_test(test_small_errstr),
        };

        return cmocka_run_group_tests(tests, setup, teardown);
}
