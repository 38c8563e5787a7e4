/*
 * Grants and the projection they imply (common/grant.c).
 *
 * A reuser receives only the fields its grant keeps, under a schema that
 * names no other field, with the subject id replaced by a pseudonym
 * (R1.0-02 strict minimum, R3.5-08 no data irrelevant to a reuser). A grant
 * is validated strictly, transforms included (their values are tested in
 * test_transforms.c); what this version cannot enforce is refused rather
 * than silently widened. Grants are time-limited (R3.7-12) and may carry
 * a rate (R5.2-02).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "envelope.h"
#include "grant.h"
#include "schema.h"
#include "testutil.h"

/* A valid grant on the beneficiaries dataset; rows below patch it. */
static const char base_grant[] =
    "{\"id\": \"g-test-0001\", \"reuser\": \"energy-desk\","
    " \"dataset\": \"beneficiaries\", \"purposes\": [\"energy-vouchers\"],"
    " \"legal_basis\": \"gdpr-6-1-c\","
    " \"fields\": {\"monthly_amount\": \"keep\", \"first_name\": \"keep\","
    "   \"benefit\": \"keep\", \"postcode\": \"keep\","
    "   \"birth_date\": \"keep\", \"last_name\": \"drop\"},"
    " \"subject_key\": \"pseudonym\","
    " \"valid_from\": \"2026-01-01T00:00:00Z\","
    " \"valid_until\": \"2030-01-01T00:00:00Z\","
    " \"allowed_ips\": [\"203.0.113.7\", \"2001:db8::1\"],"
    " \"contact\": \"dpo@energy-desk.example\", \"status\": \"approved\"}";

/* One record with every field of schemas/beneficiaries.avsc. */
static const char full_record[] =
    "{\"file_id\": \"3f1c2b8e-5d1a-4c2e-9b7f-2a6d8e4c1b09\","
    " \"beneficiary_id\": \"BEN-0000421\","
    " \"last_name\": \"Vandermeersch\", \"first_name\": \"Camille\","
    " \"birth_date\": \"1984-03-17\","
    " \"email\": \"camille.vdm@example.org\", \"phone\": \"+33612345678\","
    " \"postcode\": \"69003\", \"household_size\": 3,"
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
        json_t *j = json_loads(text, JSON_REJECT_DUPLICATES, &jerr);

        if (!j)
                fail_msg("bad JSON in test: %s (line %d col %d): %s", jerr.text,
                         jerr.line, jerr.column, text);
        return j;
}

/* A dataset record, as text, through the grant (sb_test_project_round_trip):
 * the decoded output as JSON, and the encoded bytes in *enc. */
static json_t *round_trip(const sb_grant_t *g, const char *record_text,
                          sb_buf_t *enc)
{
        json_t *rec = load_json(record_text);
        json_t *got = sb_test_project_round_trip(g, NULL, rec, enc);

        json_decref(rec);
        return got;
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

/* The base grant with `patch` applied: each key set, or removed if null. */
static json_t *patched_grant(const char *patch)
{
        json_t *g = load_json(base_grant), *p, *v;
        const char *k;

        if (!patch)
                return g;
        p = load_json(patch);
        json_object_foreach(p, k, v)
        {
                if (json_is_null(v))
                        json_object_del(g, k);
                else
                        json_object_set(g, k, v);
        }
        json_decref(p);
        return g;
}

static sb_catalog_t *catalog(const char *dir)
{
        char errstr[512] = "";
        sb_catalog_t *cat = sb_catalog_load(dir, errstr, sizeof(errstr));

        if (!cat)
                fail_msg("sb_catalog_load(%s): %s", dir, errstr);
        return cat;
}

static sb_grant_t *grant_ok(const char *text, const sb_catalog_t *cat)
{
        char errstr[512] = "";
        sb_grant_t *g = sb_grant_new(load_json(text), "g.json", cat, errstr,
                                     sizeof(errstr));

        if (!g)
                fail_msg("sb_grant_new refused a valid grant: %s", errstr);
        return g;
}

/* Field names of a schema's top-level record, comma-separated. */
static char *field_names(const sb_schema_t *s)
{
        json_t *f;
        size_t i, len = 0;
        char *out = calloc(1, 1024);

        assert_non_null(out);
        json_array_foreach(json_object_get(s->json, "fields"), i, f)
        {
                len += (size_t)snprintf(
                    out + len, 1024 - len, "%s%s", i ? "," : "",
                    json_string_value(json_object_get(f, "name")));
                assert_true(len < 1024);
        }
        return out;
}

static int str_cmp(const void *a, const void *b)
{
        return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Keys of a JSON object, sorted, comma-separated. */
static char *sorted_keys(const json_t *obj)
{
        const char *keys[64], *k;
        char *out = calloc(1, 1024);
        size_t n = 0, i, len = 0;
        json_t *v;

        assert_non_null(out);
        json_object_foreach((json_t *)obj, k, v)
        {
                assert_true(n < 64);
                keys[n++] = k;
        }
        qsort(keys, n, sizeof(keys[0]), str_cmp);
        for (i = 0; i < n; i++) {
                len += (size_t)snprintf(out + len, 1024 - len, "%s%s",
                                        i ? "," : "", keys[i]);
                assert_true(len < 1024);
        }
        return out;
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

static const char *tmpdir_new(void)
{
        snprintf(tmp_root, sizeof(tmp_root), "/tmp/sb-test-grant-XXXXXX");
        if (!mkdtemp(tmp_root))
                fail_msg("mkdtemp failed");
        return tmp_root;
}

static void tmpdir_remove(void)
{
        nftw(tmp_root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void write_file(const char *dir, const char *name, const char *text)
{
        char path[512];
        FILE *fp;

        snprintf(path, sizeof(path), "%s/%s", dir, name);
        fp = fopen(path, "w");
        if (!fp || fputs(text, fp) == EOF || fclose(fp))
                fail_msg("cannot write %s", path);
}

/* The record restricted to `keys` (NULL-terminated), plus the pseudonym. */
static json_t *expected_projection(const char *record_text,
                                   const char *const *keys)
{
        json_t *rec = load_json(record_text);
        json_t *exp = json_pack("{s:s}", SB_PSEUDONYM_FIELD, PSEUDONYM);

        for (; *keys; keys++) {
                json_t *v = json_object_get(rec, *keys);

                assert_non_null(v);
                json_object_set(exp, *keys, v);
        }
        json_decref(rec);
        return exp;
}

static void assert_bytes_lack(const sb_buf_t *b, const char *what)
{
        if (memmem(b->data, b->len, what, strlen(what)))
                fail_msg("encoded projection contains non-granted value "
                         "\"%s\"",
                         what);
}

static void assert_bytes_hold(const sb_buf_t *b, const char *what)
{
        if (!memmem(b->data, b->len, what, strlen(what)))
                fail_msg("encoded projection lacks granted value \"%s\"", what);
}

/*
 * Projection
 */

/* R1.0-02, R3.5-08: only granted fields, in dataset order, leave. */
static void projection_removes_every_non_granted_field(void **state)
{
        static const char *const kept[] = {"first_name",     "birth_date",
                                           "postcode",       "benefit",
                                           "monthly_amount", NULL};
        static const char *const not_granted[] = {
            "beneficiary_id", "last_name",
            "email",          "phone",
            "file_id",        "household_size",
            "income_bracket", "opened_on",
            "updated_at",     NULL};
        sb_catalog_t *cat = catalog(SB_SCHEMAS_DIR);
        sb_grant_t *g = grant_ok(base_grant, cat);
        const char *const *n;
        sb_buf_t enc = {0};
        json_t *got, *exp;
        char *names, *keys, *schema_text;

        (void)state;
        /* The grant file lists fields in another order: the output
         * follows the dataset schema. */
        names = field_names(g->out);
        assert_string_equal(
            "pseudonym,first_name,birth_date,postcode,benefit,monthly_amount",
            names);
        free(names);
        assert_string_equal("sb.out.energy-desk.beneficiaries", g->topic);

        /* The output schema names no field that was not granted. */
        schema_text = json_dumps(g->out->json, JSON_COMPACT);
        for (n = not_granted; *n; n++) {
                char quoted[64];

                snprintf(quoted, sizeof(quoted), "\"%s\"", *n);
                if (strstr(schema_text, quoted))
                        fail_msg("output schema names non-granted field %s: "
                                 "%s",
                                 *n, schema_text);
        }
        free(schema_text);

        got = round_trip(g, full_record, &enc);
        keys = sorted_keys(got);
        assert_string_equal(
            "benefit,birth_date,first_name,monthly_amount,postcode,pseudonym",
            keys);
        free(keys);
        exp = expected_projection(full_record, kept);
        assert_json_equal(exp, got);

        /* Nothing that was not granted is in the bytes either... */
        assert_bytes_lack(&enc, "BEN-0000421");
        assert_bytes_lack(&enc, "Vandermeersch");
        assert_bytes_lack(&enc, "camille.vdm@example.org");
        assert_bytes_lack(&enc, "+33612345678");
        assert_bytes_lack(&enc, "3f1c2b8e-5d1a-4c2e-9b7f-2a6d8e4c1b09");
        /* ...while granted strings are (so the search can fail). */
        assert_bytes_hold(&enc, "Camille");
        assert_bytes_hold(&enc, "69003");
        assert_bytes_hold(&enc, PSEUDONYM);

        json_decref(exp);
        json_decref(got);
        sb_buf_release(&enc);
        sb_grant_destroy(g);
        sb_catalog_destroy(cat);
}

/* A dataset whose named types are defined in one field, used in others. */
static const char named_types_schema[] =
    "{\"type\": \"record\", \"name\": \"Visit\", \"namespace\": \"test.ns\","
    " \"sb.dataset\": \"visits\", \"sb.subject\": \"person\","
    " \"sb.record_id\": \"visit_id\","
    " \"fields\": ["
    "  {\"name\": \"visit_id\", \"type\": \"string\"},"
    "  {\"name\": \"person\", \"type\": \"string\"},"
    "  {\"name\": \"kind\", \"type\": {\"type\": \"enum\", \"name\": \"Kind\","
    "    \"symbols\": [\"HOME\", \"OFFICE\", \"PHONE\"]}},"
    "  {\"name\": \"previous_kind\", \"type\": [\"null\", \"Kind\"],"
    "   \"default\": null},"
    "  {\"name\": \"place\", \"type\": {\"type\": \"record\", \"name\": "
    "    \"Place\", \"namespace\": \"other.ns\", \"fields\": ["
    "    {\"name\": \"code\", \"type\": \"string\"},"
    "    {\"name\": \"tag\", \"type\": {\"type\": \"fixed\", \"name\": "
    "     \"Tag\", \"size\": 2}}]}},"
    "  {\"name\": \"other_place\", \"type\": \"other.ns.Place\"},"
    "  {\"name\": \"tags\", \"type\": {\"type\": \"array\", \"items\": "
    "    \"other.ns.Tag\"}},"
    "  {\"name\": \"by_kind\", \"type\": {\"type\": \"map\", \"values\": "
    "    \"Kind\"}}"
    " ]}";

static const char named_types_record[] =
    "{\"visit_id\": \"V-1\", \"person\": \"P-SECRET-77\", \"kind\": \"HOME\","
    " \"previous_kind\": \"OFFICE\","
    " \"place\": {\"code\": \"PLACE-ONE\", \"tag\": \"ab\"},"
    " \"other_place\": {\"code\": \"PLACE-TWO\", \"tag\": \"cd\"},"
    " \"tags\": [\"ef\", \"gh\"], \"by_kind\": {\"x\": \"PHONE\"}}";

static void check_named_types_grant(const sb_catalog_t *cat, const char *fields,
                                    const char *expected_names,
                                    const char *const *kept)
{
        char text[1024];
        sb_grant_t *g;
        sb_buf_t enc = {0};
        json_t *got, *exp;
        char *names;

        snprintf(text, sizeof(text),
                 "{\"id\": \"7-named\", \"reuser\": \"r1\", \"dataset\": "
                 "\"visits\", \"purposes\": [\"p\"], \"legal_basis\": \"x\","
                 " \"status\": \"approved\", \"fields\": %s}",
                 fields);
        g = grant_ok(text, cat);
        names = field_names(g->out);
        assert_string_equal(expected_names, names);
        free(names);
        got = round_trip(g, named_types_record, &enc);
        exp = expected_projection(named_types_record, kept);
        assert_json_equal(exp, got);
        assert_bytes_lack(&enc, "P-SECRET-77");
        json_decref(exp);
        json_decref(got);
        sb_buf_release(&enc);
        sb_grant_destroy(g);
}

static void
projection_keeps_named_types_valid_when_their_first_use_is_dropped(void **state)
{
        sb_catalog_t *cat;
        const char *dir;

        (void)state;
        /* The real dataset: the enum is defined where it is used. */
        cat = catalog(SB_SCHEMAS_DIR);
        {
                sb_grant_t *g = grant_ok(
                    "{\"id\": \"g1\", \"reuser\": \"r\", \"dataset\": "
                    "\"beneficiaries\", \"purposes\": [\"p\"], "
                    "\"legal_basis\": \"x\", \"status\": \"approved\", "
                    "\"fields\": {\"benefit\": \"keep\"}}",
                    cat);
                sb_buf_t enc = {0};
                json_t *got = round_trip(g, full_record, &enc);
                json_t *exp = expected_projection(
                    full_record, (const char *const[]){"benefit", NULL});

                assert_json_equal(exp, got);
                json_decref(exp);
                json_decref(got);
                sb_buf_release(&enc);
                sb_grant_destroy(g);
        }
        sb_catalog_destroy(cat);

        dir = tmpdir_new();
        write_file(dir, "visits.avsc", named_types_schema);
        cat = catalog(dir);
        /* Kind is defined in 'kind' and only referenced in 'previous_kind'. */
        check_named_types_grant(cat, "{\"previous_kind\": \"keep\"}",
                                "pseudonym,previous_kind",
                                (const char *const[]){"previous_kind", NULL});
        /* Place (with Tag inside, in another namespace) is defined in
         * 'place'; Tag is referenced again by full name from 'tags'. */
        check_named_types_grant(
            cat,
            "{\"other_place\": \"keep\", \"tags\": \"keep\", \"by_kind\": "
            "\"keep\", \"kind\": \"drop\", \"place\": \"drop\"}",
            "pseudonym,other_place,tags,by_kind",
            (const char *const[]){"other_place", "tags", "by_kind", NULL});
        /* Everything but the subject: definitions are not repeated. */
        check_named_types_grant(
            cat,
            "{\"visit_id\": \"keep\", \"kind\": \"keep\", \"previous_kind\": "
            "\"keep\", \"place\": \"keep\", \"other_place\": \"keep\", "
            "\"tags\": \"keep\", \"by_kind\": \"keep\"}",
            "pseudonym,visit_id,kind,previous_kind,place,other_place,tags,"
            "by_kind",
            (const char *const[]){"visit_id", "kind", "previous_kind", "place",
                                  "other_place", "tags", "by_kind", NULL});
        sb_catalog_destroy(cat);
        tmpdir_remove();
}

/*
 * Validation
 */

typedef struct bad_grant_s {
        const char *why;
        const char *patch; /* applied to base_grant; null removes a key */
        const char *expected;
} bad_grant_t;

static const bad_grant_t bad_grants[] = {
    {"unknown key", "{\"colour\": \"blue\"}",
     "grant 'g.json': unknown key 'colour'"},
    {"missing id", "{\"id\": null}",
     "grant 'g.json': missing required key 'id'"},
    {"id not a string", "{\"id\": 12}",
     "grant 'g.json': key 'id': expected a non-empty string"},
    {"reuser with upper case", "{\"reuser\": \"Energy-Desk\"}",
     "grant 'g.json': key 'reuser': 'Energy-Desk' must be lower-case "
     "letters, digits and '-', starting with a letter (it names Kafka "
     "topics)"},
    {"status maybe", "{\"status\": \"maybe\"}",
     "grant 'g.json': key 'status': expected approved, suspended or "
     "revoked, got 'maybe'"},
    {"purposes empty", "{\"purposes\": []}",
     "grant 'g.json': key 'purposes': expected a non-empty array of "
     "strings"},
    {"unknown dataset", "{\"dataset\": \"pensions\"}",
     "grant 'g.json': key 'dataset': no schema declares dataset "
     "'pensions'"},
    {"keeps a field the dataset lacks",
     "{\"fields\": {\"first_name\": \"keep\", \"shoe_size\": \"keep\"}}",
     "grant 'g.json': key 'fields.shoe_size': dataset 'beneficiaries' has "
     "no field 'shoe_size'"},
    /* R1.0-02: the subject id itself never leaves the gateway. */
    {"keeps the subject id",
     "{\"fields\": {\"first_name\": \"keep\", \"beneficiary_id\": "
     "\"keep\"}}",
     "grant 'g.json': key 'fields.beneficiary_id': the subject identifier "
     "is never shared; reusers get a pseudonym (subject_key)"},
    {"pseudonymises the subject id",
     "{\"fields\": {\"first_name\": \"keep\", \"beneficiary_id\": "
     "{\"pseudonymise\": true}}}",
     "grant 'g.json': key 'fields.beneficiary_id': the subject identifier "
     "is never shared; reusers get a pseudonym (subject_key)"},
    {"misspelt keep", "{\"fields\": {\"first_name\": \"keeep\"}}",
     "grant 'g.json': key 'fields.first_name': unknown transform "
     "\"keeep\"; expected \"keep\", \"drop\" or an object: generalise, "
     "truncate, round or pseudonymise"},
    /* Transforms (DESIGN §5): strict shape, parameters and types. */
    {"unknown transform object",
     "{\"fields\": {\"first_name\": "
     "{\"hash\": true}}}",
     "grant 'g.json': key 'fields.first_name': unknown transform 'hash'; "
     "expected generalise, truncate, round or pseudonymise"},
    {"transform object with two keys",
     "{\"fields\": {\"postcode\": {\"truncate\": 2, \"round\": 1}}}",
     "grant 'g.json': key 'fields.postcode': a transform object has exactly "
     "one key, got 2 (truncate, round)"},
    {"empty transform object", "{\"fields\": {\"postcode\": {}}}",
     "grant 'g.json': key 'fields.postcode': a transform object has exactly "
     "one key, got 0"},
    {"transform is a number", "{\"fields\": {\"postcode\": 2}}",
     "grant 'g.json': key 'fields.postcode': expected \"keep\", \"drop\" "
     "or a transform object, got 2"},
    {"transform is null", "{\"fields\": {\"postcode\": null}}",
     "grant 'g.json': key 'fields.postcode': expected \"keep\", \"drop\" "
     "or a transform object, got null"},
    {"truncate an int", "{\"fields\": {\"household_size\": {\"truncate\": 2}}}",
     "grant 'g.json': key 'fields.household_size': truncate needs a string "
     "field, 'household_size' is int"},
    {"truncate a timestamp",
     "{\"fields\": {\"updated_at\": {\"truncate\": 4}}}",
     "grant 'g.json': key 'fields.updated_at': truncate needs a string "
     "field, 'updated_at' is timestamp-millis"},
    {"truncate to 0", "{\"fields\": {\"postcode\": {\"truncate\": 0}}}",
     "grant 'g.json': key 'fields.postcode': truncate needs a whole number "
     "of characters >= 1, got 0"},
    {"truncate to 2.5", "{\"fields\": {\"postcode\": {\"truncate\": 2.5}}}",
     "grant 'g.json': key 'fields.postcode': truncate needs a whole number "
     "of characters >= 1, got 2.5"},
    {"truncate to a string",
     "{\"fields\": {\"postcode\": {\"truncate\": \"2\"}}}",
     "grant 'g.json': key 'fields.postcode': truncate needs a whole number "
     "of characters >= 1, got \"2\""},
    {"generalise to the day",
     "{\"fields\": {\"birth_date\": {\"generalise\": \"day\"}}}",
     "grant 'g.json': key 'fields.birth_date': generalise needs \"year\", "
     "\"month\" or {\"bucket\": W}, got \"day\""},
    {"generalise to a number",
     "{\"fields\": {\"birth_date\": {\"generalise\": 2}}}",
     "grant 'g.json': key 'fields.birth_date': generalise needs \"year\", "
     "\"month\" or {\"bucket\": W}, got 2"},
    {"bucket with another key",
     "{\"fields\": {\"household_size\": {\"generalise\": {\"bucket\": "
     "2, \"origin\": 1}}}}",
     "grant 'g.json': key 'fields.household_size': generalise needs "
     "\"year\", \"month\" or {\"bucket\": W}, got "
     "{\"bucket\":2,\"origin\":1}"},
    {"year of a string",
     "{\"fields\": {\"postcode\": {\"generalise\": \"year\"}}}",
     "grant 'g.json': key 'fields.postcode': generalise \"year\" needs a "
     "date or timestamp-millis field, 'postcode' is string"},
    {"month of a uuid",
     "{\"fields\": {\"file_id\": {\"generalise\": \"month\"}}}",
     "grant 'g.json': key 'fields.file_id': generalise \"month\" needs a "
     "date or timestamp-millis field, 'file_id' is uuid"},
    {"bucket of width 0",
     "{\"fields\": {\"household_size\": {\"generalise\": {\"bucket\": "
     "0}}}}",
     "grant 'g.json': key 'fields.household_size': bucket width must be a "
     "number > 0, got 0"},
    {"bucket of negative width",
     "{\"fields\": {\"household_size\": {\"generalise\": {\"bucket\": "
     "-2}}}}",
     "grant 'g.json': key 'fields.household_size': bucket width must be a "
     "number > 0, got -2"},
    {"bucket width not a number",
     "{\"fields\": {\"household_size\": {\"generalise\": {\"bucket\": "
     "\"2\"}}}}",
     "grant 'g.json': key 'fields.household_size': bucket width must be a "
     "number > 0, got \"2\""},
    {"bucket of a date",
     "{\"fields\": {\"birth_date\": {\"generalise\": {\"bucket\": "
     "7}}}}",
     "grant 'g.json': key 'fields.birth_date': generalise bucket needs an "
     "int, long, float, double or decimal field, 'birth_date' is date"},
    {"bucket of an enum",
     "{\"fields\": {\"benefit\": {\"generalise\": {\"bucket\": 2}}}}",
     "grant 'g.json': key 'fields.benefit': generalise bucket needs an int, "
     "long, float, double or decimal field, 'benefit' is enum "
     "'BenefitKind'"},
    {"fractional bucket of an int",
     "{\"fields\": {\"household_size\": {\"generalise\": {\"bucket\": "
     "2.5}}}}",
     "grant 'g.json': key 'fields.household_size': bucket width for int "
     "field 'household_size' must be a whole number from 1 to 2147483647, "
     "got 2.5"},
    {"decimal bucket finer than the scale",
     "{\"fields\": {\"monthly_amount\": {\"generalise\": {\"bucket\": "
     "0.001}}}}",
     "grant 'g.json': key 'fields.monthly_amount': bucket width 0.001 is "
     "finer than the scale of decimal field 'monthly_amount' (2 decimals)"},
    {"decimal bucket wider than the range",
     "{\"fields\": {\"monthly_amount\": {\"generalise\": {\"bucket\": "
     "100000000}}}}",
     "grant 'g.json': key 'fields.monthly_amount': bucket width 100000000 "
     "is wider than the range of decimal field 'monthly_amount' (precision "
     "9, scale 2)"},
    {"round an int", "{\"fields\": {\"household_size\": {\"round\": 1}}}",
     "grant 'g.json': key 'fields.household_size': round needs a float or "
     "double field, 'household_size' is int"},
    {"round a nullable string", "{\"fields\": {\"email\": {\"round\": 1}}}",
     "grant 'g.json': key 'fields.email': round needs a float or double "
     "field, 'email' is nullable string"},
    {"round to 11 decimals",
     "{\"fields\": {\"household_size\": {\"round\": 11}}}",
     "grant 'g.json': key 'fields.household_size': round needs a whole "
     "number of decimals from 0 to 10, got 11"},
    {"round to -1 decimals",
     "{\"fields\": {\"household_size\": {\"round\": -1}}}",
     "grant 'g.json': key 'fields.household_size': round needs a whole "
     "number of decimals from 0 to 10, got -1"},
    {"pseudonymise false",
     "{\"fields\": {\"email\": {\"pseudonymise\": false}}}",
     "grant 'g.json': key 'fields.email': pseudonymise needs true, got "
     "false"},
    {"pseudonymise an int",
     "{\"fields\": {\"income_bracket\": {\"pseudonymise\": true}}}",
     "grant 'g.json': key 'fields.income_bracket': pseudonymise needs a "
     "string field, 'income_bracket' is int"},
    {"pseudonymise a date",
     "{\"fields\": {\"birth_date\": {\"pseudonymise\": true}}}",
     "grant 'g.json': key 'fields.birth_date': pseudonymise needs a string "
     "field, 'birth_date' is date"},
    {"transform of a field the dataset lacks",
     "{\"fields\": {\"first_name\": \"keep\", \"shoe_size\": "
     "{\"generalise\": {\"bucket\": 2}}}}",
     "grant 'g.json': key 'fields.shoe_size': dataset 'beneficiaries' has "
     "no field 'shoe_size'"},

    {"no field kept",
     "{\"fields\": {\"first_name\": \"drop\", \"beneficiary_id\": "
     "\"drop\"}}",
     "grant 'g.json': key 'fields': keeps no field"},
    {"fields empty", "{\"fields\": {}}",
     "grant 'g.json': key 'fields': keeps no field"},
    {"valid_from not RFC 3339", "{\"valid_from\": \"01/01/2026\"}",
     "grant 'g.json': key 'valid_from': expected an RFC 3339 time such as "
     "2026-12-01T00:00:00Z, got \"01/01/2026\""},
    {"valid_from without time zone",
     "{\"valid_from\": \"2026-01-01T00:00:00\"}",
     "grant 'g.json': key 'valid_from': expected an RFC 3339 time such as "
     "2026-12-01T00:00:00Z, got \"2026-01-01T00:00:00\""},
    {"valid_until before valid_from",
     "{\"valid_until\": \"2025-12-31T23:59:59Z\"}",
     "grant 'g.json': key 'valid_until': must be after valid_from"},
    {"valid_until equal to valid_from",
     "{\"valid_until\": \"2026-01-01T01:00:00+01:00\"}",
     "grant 'g.json': key 'valid_until': must be after valid_from"},
    {"allowed_ips with a non-address",
     "{\"allowed_ips\": [\"10.0.0.1\", \"not-an-ip\"]}",
     "grant 'g.json': key 'allowed_ips' item 1: 'not-an-ip' is not an IP "
     "address"},
    {"subject_key clear", "{\"subject_key\": \"clear\"}",
     "grant 'g.json': key 'subject_key': only \"pseudonym\" is supported"},
    {"rate not an object", "{\"rate\": 500}",
     "grant 'g.json': key 'rate': expected an object with "
     "records_per_second and/or records_per_day"},
    {"rate empty", "{\"rate\": {}}",
     "grant 'g.json': key 'rate': expected an object with "
     "records_per_second and/or records_per_day"},
    {"rate with an unknown key", "{\"rate\": {\"records_per_minute\": 5}}",
     "grant 'g.json': key 'rate': unknown key 'records_per_minute' "
     "(expected records_per_second or records_per_day)"},
    {"rate per second zero", "{\"rate\": {\"records_per_second\": 0}}",
     "grant 'g.json': key 'rate.records_per_second': expected a whole "
     "number from 1 to 1000000000"},
    {"rate per day fractional", "{\"rate\": {\"records_per_day\": 2.5}}",
     "grant 'g.json': key 'rate.records_per_day': expected a whole number "
     "from 1 to 1000000000"},
    {"rate per day as a string", "{\"rate\": {\"records_per_day\": \"9\"}}",
     "grant 'g.json': key 'rate.records_per_day': expected a whole number "
     "from 1 to 1000000000"},
    {"history_days zero", "{\"history_days\": 0}",
     "grant 'g.json': key 'history_days': expected a whole number of days "
     "from 1 to 36500"},
    {"history_days fractional", "{\"history_days\": 1.5}",
     "grant 'g.json': key 'history_days': expected a whole number of days "
     "from 1 to 36500"},
    {"retention_days as a string", "{\"retention_days\": \"30\"}",
     "grant 'g.json': key 'retention_days': expected a whole number of days "
     "from 1 to 36500"},
    {"retention_days too long", "{\"retention_days\": 36501}",
     "grant 'g.json': key 'retention_days': expected a whole number of days "
     "from 1 to 36500"},
};

static void invalid_grants_are_refused_with_a_precise_message(void **state)
{
        sb_catalog_t *cat = catalog(SB_SCHEMAS_DIR);
        size_t i, failures = 0;

        (void)state;
        /* The base grant itself is valid, so each row tests one change. */
        sb_grant_destroy(grant_ok(base_grant, cat));
        for (i = 0; i < sizeof(bad_grants) / sizeof(bad_grants[0]); i++) {
                const bad_grant_t *row = &bad_grants[i];
                char errstr[512] = "";
                sb_grant_t *g =
                    sb_grant_new(patched_grant(row->patch), "g.json", cat,
                                 errstr, sizeof(errstr));

                if (g) {
                        print_error("%s: accepted %s\n", row->why, row->patch);
                        sb_grant_destroy(g);
                        failures++;
                } else if (strcmp(row->expected, errstr)) {
                        print_error("%s:\n  expected: %s\n  got:      %s\n",
                                    row->why, row->expected, errstr);
                        failures++;
                }
        }
        sb_catalog_destroy(cat);
        if (failures)
                fail_msg("%zu invalid grant(s) not refused as expected",
                         failures);
}

static sb_grant_t *grant_ok_json(json_t *json, const sb_catalog_t *cat)
{
        char errstr[512] = "";
        sb_grant_t *g =
            sb_grant_new(json, "g.json", cat, errstr, sizeof(errstr));

        if (!g)
                fail_msg("sb_grant_new refused a valid grant: %s", errstr);
        return g;
}

/* R5.2-02: a rate is read as given; each half is optional. */
static void rate_is_accepted_and_each_limit_is_optional(void **state)
{
        sb_catalog_t *cat = catalog(SB_SCHEMAS_DIR);
        sb_grant_t *g;

        (void)state;
        g = grant_ok(base_grant, cat);
        assert_int_equal(0, g->rate_per_second);
        assert_int_equal(0, g->rate_per_day);
        sb_grant_destroy(g);
        g = grant_ok_json(patched_grant("{\"rate\": {\"records_per_second\": "
                                        "500, \"records_per_day\": 100000}}"),
                          cat);
        assert_int_equal(500, g->rate_per_second);
        assert_int_equal(100000, g->rate_per_day);
        sb_grant_destroy(g);
        g = grant_ok_json(patched_grant("{\"rate\": {\"records_per_day\": 7}}"),
                          cat);
        assert_int_equal(0, g->rate_per_second);
        assert_int_equal(7, g->rate_per_day);
        sb_grant_destroy(g);
        sb_catalog_destroy(cat);
}

/* R3.7-12: access for a fixed period, and only while approved. */
static void
grant_active_only_within_validity_window_and_when_approved(void **state)
{
        sb_catalog_t *cat = catalog(SB_SCHEMAS_DIR);
        int64_t from, until;
        sb_grant_t *g;
        json_t *j;
        char errstr[512] = "";

        (void)state;
        assert_int_equal(0, sb_time_parse("2026-01-01T00:00:00Z", &from));
        assert_int_equal(0, sb_time_parse("2030-01-01T00:00:00Z", &until));

        g = grant_ok(base_grant, cat);
        assert_int_equal(from, g->valid_from_ms);
        assert_int_equal(until, g->valid_until_ms);
        assert_int_equal(0, sb_grant_active(g, from - 1));
        assert_int_equal(1, sb_grant_active(g, from));
        assert_int_equal(1, sb_grant_active(g, from + 86400000));
        assert_int_equal(1, sb_grant_active(g, until - 1));
        assert_int_equal(0, sb_grant_active(g, until));
        assert_int_equal(0, sb_grant_active(g, until + 86400000));
        sb_grant_destroy(g);

        /* Suspended or revoked: never active, even inside the window. */
        g = sb_grant_new(patched_grant("{\"status\": \"suspended\"}"), "g.json",
                         cat, errstr, sizeof(errstr));
        assert_non_null(g);
        assert_int_equal(0, sb_grant_active(g, from + 86400000));
        sb_grant_destroy(g);
        g = sb_grant_new(patched_grant("{\"status\": \"revoked\"}"), "g.json",
                         cat, errstr, sizeof(errstr));
        assert_non_null(g);
        assert_int_equal(0, sb_grant_active(g, from + 86400000));
        sb_grant_destroy(g);

        /* No bounds: active at any time while approved. */
        g = sb_grant_new(
            patched_grant("{\"valid_from\": null, \"valid_until\": null}"),
            "g.json", cat, errstr, sizeof(errstr));
        assert_non_null(g);
        assert_int_equal(1, sb_grant_active(g, 1));
        assert_int_equal(1, sb_grant_active(g, until + 86400000LL * 3650));
        sb_grant_destroy(g);

        /* Only an upper bound, with an offset: 12:00+02:00 is 10:00Z. */
        j = patched_grant("{\"valid_from\": null, \"valid_until\": "
                          "\"2027-06-01T12:00:00+02:00\"}");
        g = sb_grant_new(j, "g.json", cat, errstr, sizeof(errstr));
        assert_non_null(g);
        assert_int_equal(0, sb_time_parse("2027-06-01T10:00:00Z", &until));
        assert_int_equal(1, sb_grant_active(g, until - 1));
        assert_int_equal(0, sb_grant_active(g, until));
        sb_grant_destroy(g);

        /* A bound at the epoch is a bound, not "none". */
        j = patched_grant("{\"valid_from\": null, \"valid_until\": "
                          "\"1970-01-01T00:00:00Z\"}");
        g = sb_grant_new(j, "g.json", cat, errstr, sizeof(errstr));
        assert_non_null(g);
        assert_int_equal(0, sb_grant_active(g, from));
        sb_grant_destroy(g);
        sb_catalog_destroy(cat);
}

static sb_err_t load_dir(const char *dir, const sb_catalog_t *cat, char *errstr,
                         size_t errstr_size)
{
        sb_grant_t **grants = NULL;
        size_t cnt = 0;
        sb_err_t err =
            sb_grants_load_dir(dir, cat, &grants, &cnt, errstr, errstr_size);

        if (!err)
                sb_grants_destroy(grants, cnt);
        return err;
}

static void grant_file(const char *dir, const char *name, const char *patch)
{
        json_t *g = patched_grant(patch);
        char *text = json_dumps(g, JSON_INDENT(2));

        write_file(dir, name, text);
        free(text);
        json_decref(g);
}

static void
grants_dir_refuses_duplicate_ids_and_two_grants_for_one_reuser_and_dataset(
    void **state)
{
        sb_catalog_t *cat = catalog(SB_SCHEMAS_DIR);
        char errstr[1024] = "", expected[1024], sub[300];
        sb_grant_t **grants = NULL;
        size_t cnt = 0;
        const char *dir;

        (void)state;
        dir = tmpdir_new();
        /* Two grants, distinct ids, distinct reusers: loaded, sorted by
         * file name; non-.json files are ignored. */
        grant_file(dir, "b.json", "{\"id\": \"g-b\", \"reuser\": \"bravo\"}");
        grant_file(dir, "a.json", "{\"id\": \"g-a\", \"reuser\": \"alpha\"}");
        write_file(dir, "notes.txt", "not a grant");
        if (sb_grants_load_dir(dir, cat, &grants, &cnt, errstr, sizeof(errstr)))
                fail_msg("sb_grants_load_dir: %s", errstr);
        assert_int_equal(2, cnt);
        assert_string_equal("g-a", grants[0]->id);
        assert_string_equal("g-b", grants[1]->id);
        sb_grants_destroy(grants, cnt);

        /* Same id in another file. */
        grant_file(dir, "c.json", "{\"id\": \"g-a\", \"reuser\": \"charlie\"}");
        assert_int_equal(SB_ERR_GRANT,
                         load_dir(dir, cat, errstr, sizeof(errstr)));
        snprintf(expected, sizeof(expected),
                 "grant '%s/c.json': id 'g-a' already used by '%s/a.json'", dir,
                 dir);
        assert_string_equal(expected, errstr);

        /* Another id, but alpha already has a grant on beneficiaries. */
        grant_file(dir, "c.json", "{\"id\": \"g-c\", \"reuser\": \"alpha\"}");
        assert_int_equal(SB_ERR_GRANT,
                         load_dir(dir, cat, errstr, sizeof(errstr)));
        snprintf(expected, sizeof(expected),
                 "grant '%s/c.json': reuser 'alpha' already has a grant on "
                 "dataset 'beneficiaries' ('%s/a.json'); one grant per "
                 "reuser and dataset",
                 dir, dir);
        assert_string_equal(expected, errstr);

        /* An invalid grant file fails the whole directory, named. */
        grant_file(dir, "c.json",
                   "{\"id\": \"g-c\", \"reuser\": \"charlie\", "
                   "\"status\": \"maybe\"}");
        assert_int_equal(SB_ERR_GRANT,
                         load_dir(dir, cat, errstr, sizeof(errstr)));
        snprintf(expected, sizeof(expected),
                 "grant '%s/c.json': key 'status': expected approved, "
                 "suspended or revoked, got 'maybe'",
                 dir);
        assert_string_equal(expected, errstr);
        tmpdir_remove();

        /* A missing directory is named. */
        snprintf(sub, sizeof(sub), "%s/none", dir);
        assert_int_equal(SB_ERR_IO, load_dir(sub, cat, errstr, sizeof(errstr)));
        snprintf(expected, sizeof(expected),
                 "grants directory '%s': No such file or directory", sub);
        assert_string_equal(expected, errstr);
        sb_catalog_destroy(cat);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(projection_removes_every_non_granted_field),
            cmocka_unit_test(
                projection_keeps_named_types_valid_when_their_first_use_is_dropped),
            cmocka_unit_test(invalid_grants_are_refused_with_a_precise_message),
            cmocka_unit_test(rate_is_accepted_and_each_limit_is_optional),
            cmocka_unit_test(
                grant_active_only_within_validity_window_and_when_approved),
            cmocka_unit_test(
                grants_dir_refuses_duplicate_ids_and_two_grants_for_one_reuser_and_dataset),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
