/*
 * Parsing Canonical Form and CRC-64-AVRO against the Avro project's vectors
 * (tests/data/avro-schema-fingerprints.txt), plus the attributes sharebus
 * schemas carry (doc, pii, logicalType) and the errors a bad schema gets.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fingerprint.h"

#ifndef SB_SOURCE_DIR
#error "SB_SOURCE_DIR (the repository root, a string literal) must be defined"
#endif

#define VECTORS_PATH SB_SOURCE_DIR "/tests/data/avro-schema-fingerprints.txt"

/* One case of the vectors file, as read so far. */
typedef struct vcase_s {
        int num; /* -1 before the first "// NNN" header */
        int line;
        char *input;
        char *canonical;
        int has_fingerprint;
        int64_t fingerprint;
} vcase_t;

static void vcase_clear(vcase_t *vc)
{
        free(vc->input);
        free(vc->canonical);
        vc->input = NULL;
        vc->canonical = NULL;
        vc->has_fingerprint = 0;
        vc->num = -1;
}

/* Checks one case; returns 1 when it passes, printing why when it does not. */
static int vcase_check(const vcase_t *vc)
{
        char errstr[512] = "";
        char *canon = NULL;
        sb_err_t err;
        int ok = 1;

        if (!vc->input || !vc->canonical) {
                print_error("case %03d (line %d): no %s in the vectors file\n",
                            vc->num, vc->line,
                            vc->input ? "<<canonical" : "<<INPUT");
                return 0;
        }
        err =
            sb_schema_canonical_str(vc->input, &canon, errstr, sizeof(errstr));
        if (err != SB_OK) {
                print_error("case %03d: error %d (%s)\n  input:    %s\n"
                            "  expected: %s\n",
                            vc->num, err, errstr, vc->input, vc->canonical);
                return 0;
        }
        if (strcmp(canon, vc->canonical) != 0) {
                print_error("case %03d: canonical form differs\n"
                            "  expected: %s\n  got:      %s\n",
                            vc->num, vc->canonical, canon);
                ok = 0;
        } else if (vc->has_fingerprint) {
                int64_t fp = (int64_t)sb_crc64_avro(canon, strlen(canon));

                if (fp != vc->fingerprint) {
                        print_error("case %03d: fingerprint of %s differs\n"
                                    "  expected: %lld\n  got:      %lld\n",
                                    vc->num, canon, (long long)vc->fingerprint,
                                    (long long)fp);
                        ok = 0;
                }
        }
        free(canon);
        return ok;
}

static void chomp(char *s)
{
        size_t n = strlen(s);

        while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r'))
                s[--n] = '\0';
}

/* "// 029" starts a case; other "//" lines are comments. */
static int case_header(const char *line, int *nump)
{
        const char *p = line + 3;

        if (strncmp(line, "// ", 3) != 0 || *p == '\0')
                return 0;
        for (const char *q = p; *q; q++)
                if (*q < '0' || *q > '9')
                        return 0;
        *nump = atoi(p);
        return 1;
}

/*
 * Reads the value of "<<key": the rest of the line for "<<key value", or the
 * following lines up to a line holding just "key" for the heredoc form
 * "<<key" alone (joined with newlines).
 */
static char *read_value(FILE *fp, const char *rest, const char *key, int *linep)
{
        char *line = NULL, *val = NULL;
        size_t cap = 0, len = 0;
        ssize_t n;

        if (*rest == ' ')
                return strdup(rest + 1);
        while ((n = getline(&line, &cap, fp)) != -1) {
                size_t add;
                char *p;

                (*linep)++;
                chomp(line);
                if (strcmp(line, key) == 0)
                        break;
                add = strlen(line) + 1;
                p = realloc(val, len + add + 1);
                if (!p)
                        break;
                val = p;
                if (len > 0)
                        val[len++] = '\n';
                memcpy(val + len, line, add);
                len += add - 1;
        }
        free(line);
        return val;
}

static void vectors_from_file(void **state)
{
        FILE *fp = fopen(VECTORS_PATH, "r");
        vcase_t vc = {.num = -1};
        char *line = NULL;
        size_t cap = 0;
        int lineno = 0, checked = 0, failed = 0;

        (void)state;
        if (!fp)
                fail_msg("cannot open %s", VECTORS_PATH);

        while (getline(&line, &cap, fp) != -1) {
                char key[32];
                size_t klen;
                int num;

                lineno++;
                chomp(line);
                if (case_header(line, &num)) {
                        if (vc.num >= 0) {
                                checked++;
                                failed += !vcase_check(&vc);
                        }
                        vcase_clear(&vc);
                        vc.num = num;
                        vc.line = lineno;
                        continue;
                }
                if (strncmp(line, "<<", 2) != 0)
                        continue; /* comments, licence, blank lines */
                if (vc.num < 0)
                        fail_msg("%s line %d: '%s' before any case header",
                                 VECTORS_PATH, lineno, line);

                klen = strcspn(line + 2, " ");
                if (klen == 0 || klen >= sizeof(key))
                        fail_msg("%s line %d: bad key in '%s'", VECTORS_PATH,
                                 lineno, line);
                memcpy(key, line + 2, klen);
                key[klen] = '\0';

                if (strcmp(key, "INPUT") == 0) {
                        free(vc.input);
                        vc.input =
                            read_value(fp, line + 2 + klen, key, &lineno);
                        assert_non_null(vc.input);
                } else if (strcmp(key, "canonical") == 0) {
                        free(vc.canonical);
                        vc.canonical =
                            read_value(fp, line + 2 + klen, key, &lineno);
                        assert_non_null(vc.canonical);
                } else if (strcmp(key, "fingerprint") == 0) {
                        char *val =
                            read_value(fp, line + 2 + klen, key, &lineno);
                        char *end;

                        assert_non_null(val);
                        vc.fingerprint = strtoll(val, &end, 10);
                        if (end == val || *end != '\0')
                                fail_msg("%s line %d: bad fingerprint '%s'",
                                         VECTORS_PATH, lineno, val);
                        vc.has_fingerprint = 1;
                        free(val);
                } else {
                        fail_msg("%s line %d: unknown key '%s'", VECTORS_PATH,
                                 lineno, key);
                }
        }
        if (vc.num >= 0) {
                checked++;
                failed += !vcase_check(&vc);
        }
        vcase_clear(&vc);
        free(line);
        fclose(fp);

        if (failed)
                fail_msg("%d of %d vector cases failed", failed, checked);
        /* The file holds 34 cases; far fewer means the reader broke. */
        if (checked <= 20)
                fail_msg("only %d vector cases read from %s", checked,
                         VECTORS_PATH);
}

static void crc64_of_empty_input_is_empty(void **state)
{
        (void)state;
        assert_true(sb_crc64_avro("", 0) == 0xc15d213aa4d7a795ULL);
        assert_true(sb_crc64_avro(NULL, 0) == 0xc15d213aa4d7a795ULL);
}

static void crc64_known_value(void **state)
{
        (void)state;
        /* Case 000 of the vectors, independent of the canonicaliser. */
        assert_true((int64_t)sb_crc64_avro("\"null\"", 6) ==
                    7195948357588979594LL);
}

/* Expects `input` to canonicalise to `expected`, showing both when not. */
static void expect_canonical(const char *input, const char *expected)
{
        char errstr[512] = "";
        char *canon = NULL;
        sb_err_t err;

        err = sb_schema_canonical_str(input, &canon, errstr, sizeof(errstr));
        if (err != SB_OK)
                fail_msg("error %d (%s) for %s", err, errstr, input);
        if (strcmp(canon, expected) != 0) {
                print_error("input:    %s\nexpected: %s\ngot:      %s\n", input,
                            expected, canon);
                free(canon);
                fail();
        }
        free(canon);
}

/*
 * Returns the error message for `input`, which must fail with SB_ERR_SCHEMA
 * and a non-empty message; the caller frees it.
 */
static char *expect_schema_error(const char *input)
{
        char errstr[512] = "";
        char *canon = (char *)"untouched";
        sb_err_t err;

        err = sb_schema_canonical_str(input, &canon, errstr, sizeof(errstr));
        if (err != SB_ERR_SCHEMA)
                fail_msg("expected SB_ERR_SCHEMA for %s, got %d (%s)", input,
                         err, canon && err == SB_OK ? canon : errstr);
        assert_null(canon);
        if (errstr[0] == '\0')
                fail_msg("no error message for %s", input);
        return strdup(errstr);
}

static void expect_error_is(const char *input, const char *expected)
{
        char *msg = expect_schema_error(input);

        if (strcmp(msg, expected) != 0) {
                print_error("input:    %s\nexpected: %s\ngot:      %s\n", input,
                            expected, msg);
                free(msg);
                fail();
        }
        free(msg);
}

static void strips_doc_aliases_and_custom_attributes(void **state)
{
        (void)state;
        expect_canonical(
            "{\"type\":\"record\",\"name\":\"Person\","
            "\"namespace\":\"fr.example\",\"doc\":\"A person\","
            "\"aliases\":[\"P\"],\"sb.subject\":\"id\",\"fields\":["
            "{\"name\":\"id\",\"type\":\"string\",\"doc\":\"Id\","
            "\"pii\":\"identifier\",\"example\":\"X1\"},"
            "{\"pii\":\"identity\",\"default\":0,\"order\":\"ascending\","
            "\"type\":{\"type\":\"int\",\"logicalType\":\"date\"},"
            "\"name\":\"birth\"},"
            "{\"name\":\"amount\",\"type\":{\"type\":\"bytes\","
            "\"logicalType\":\"decimal\",\"precision\":9,\"scale\":2}},"
            "{\"name\":\"email\",\"type\":[\"null\",\"string\"],"
            "\"default\":null}]}",
            "{\"name\":\"fr.example.Person\",\"type\":\"record\",\"fields\":["
            "{\"name\":\"id\",\"type\":\"string\"},"
            "{\"name\":\"birth\",\"type\":\"int\"},"
            "{\"name\":\"amount\",\"type\":\"bytes\"},"
            "{\"name\":\"email\",\"type\":[\"null\",\"string\"]}]}");
}

static void nested_types_inherit_namespace(void **state)
{
        (void)state;
        /* Inner takes a.b from Outer; E sets its own; x.y.Mid is already
         * full and passes x.y on to Leaf; references resolve likewise. */
        expect_canonical(
            "{\"type\":\"record\",\"name\":\"Outer\",\"namespace\":\"a.b\","
            "\"fields\":["
            "{\"name\":\"i\",\"type\":{\"type\":\"record\",\"name\":\"Inner\","
            "\"fields\":[{\"name\":\"e\",\"type\":{\"type\":\"enum\","
            "\"name\":\"E\",\"namespace\":\"c\",\"symbols\":[\"A\"]}}]}},"
            "{\"name\":\"again\",\"type\":\"Inner\"},"
            "{\"name\":\"e2\",\"type\":\"c.E\"},"
            "{\"name\":\"m\",\"type\":{\"type\":\"array\",\"items\":{"
            "\"type\":\"record\",\"name\":\"x.y.Mid\",\"fields\":["
            "{\"name\":\"l\",\"type\":{\"type\":\"map\",\"values\":{"
            "\"type\":\"fixed\",\"name\":\"Leaf\",\"size\":4}}},"
            "{\"name\":\"l2\",\"type\":\"Leaf\"}]}}},"
            "{\"name\":\"self\",\"type\":[\"null\",\"Outer\"]}]}",
            "{\"name\":\"a.b.Outer\",\"type\":\"record\",\"fields\":["
            "{\"name\":\"i\",\"type\":{\"name\":\"a.b.Inner\","
            "\"type\":\"record\",\"fields\":[{\"name\":\"e\",\"type\":{"
            "\"name\":\"c.E\",\"type\":\"enum\",\"symbols\":[\"A\"]}}]}},"
            "{\"name\":\"again\",\"type\":\"a.b.Inner\"},"
            "{\"name\":\"e2\",\"type\":\"c.E\"},"
            "{\"name\":\"m\",\"type\":{\"type\":\"array\",\"items\":{"
            "\"name\":\"x.y.Mid\",\"type\":\"record\",\"fields\":["
            "{\"name\":\"l\",\"type\":{\"type\":\"map\",\"values\":{"
            "\"name\":\"x.y.Leaf\",\"type\":\"fixed\",\"size\":4}}},"
            "{\"name\":\"l2\",\"type\":\"x.y.Leaf\"}]}}},"
            "{\"name\":\"self\",\"type\":[\"null\",\"a.b.Outer\"]}]}");
}

static void null_namespace_fallback_and_empty_namespace(void **state)
{
        (void)state;
        /* "Top" is in the null namespace: referenced from within n.Sub it
         * is found there (as Java does), not made n.Top. "namespace":""
         * puts Z back in the null namespace. */
        expect_canonical(
            "{\"type\":\"record\",\"name\":\"Top\",\"fields\":["
            "{\"name\":\"s\",\"type\":{\"type\":\"record\",\"name\":\"Sub\","
            "\"namespace\":\"n\",\"fields\":["
            "{\"name\":\"t\",\"type\":[\"null\",\"Top\"]},"
            "{\"name\":\"z\",\"type\":{\"type\":\"fixed\",\"name\":\"Z\","
            "\"namespace\":\"\",\"size\":1}},"
            "{\"name\":\"fwd\",\"type\":\"Later\"}]}}]}",
            "{\"name\":\"Top\",\"type\":\"record\",\"fields\":["
            "{\"name\":\"s\",\"type\":{\"name\":\"n.Sub\",\"type\":\"record\","
            "\"fields\":[{\"name\":\"t\",\"type\":[\"null\",\"Top\"]},"
            "{\"name\":\"z\",\"type\":{\"name\":\"Z\",\"type\":\"fixed\","
            "\"size\":1}},"
            "{\"name\":\"fwd\",\"type\":\"n.Later\"}]}}]}");
}

static void json_value_form(void **state)
{
        char errstr[256] = "";
        char *canon = NULL;
        json_t *schema =
            json_pack("{s:s, s:s}", "type", "map", "values", "long");

        (void)state;
        assert_non_null(schema);
        assert_int_equal(
            sb_schema_canonical(schema, &canon, errstr, sizeof(errstr)), SB_OK);
        assert_string_equal(canon, "{\"type\":\"map\",\"values\":\"long\"}");
        free(canon);
        json_decref(schema);

        /* A NULL errstr is tolerated. */
        assert_int_equal(
            sb_schema_canonical_str("{\"type\":\"record\"}", &canon, NULL, 0),
            SB_ERR_SCHEMA);
        assert_null(canon);
}

static void errors(void **state)
{
        char *msg;

        (void)state;
        msg = expect_schema_error("{\"type\":\"record\",\"name\":\"R\"}");
        assert_non_null(strstr(msg, "record 'R'"));
        assert_non_null(strstr(msg, "\"fields\""));
        free(msg);

        expect_error_is("{\"type\":\"record\",\"name\":\"Y\",\"namespace\":"
                        "\"x\",\"fields\":[{\"name\":\"a\",\"type\":\"int\"},"
                        "{\"name\":\"b\",\"type\":\"int\"},{\"name\":\"c\"}]}",
                        "schema: record 'x.Y' field 2 ('c'): missing \"type\"");
        expect_error_is("{\"type\":\"record\",\"name\":\"Y\",\"fields\":["
                        "{\"name\":\"a\",\"type\":{\"type\":\"array\","
                        "\"items\":[\"int\",42]}}]}",
                        "schema: record 'Y' field 0 ('a') items union branch "
                        "1: expected a type name, an object or an array, got "
                        "an integer");
        expect_error_is("42", "schema: expected a type name, an object or an "
                              "array, got an integer");
        expect_error_is("[\"int\",\"long\",\"int\"]",
                        "schema: union branch 2: type 'int' already in the "
                        "union as branch 0");

        free(expect_schema_error("{\"type\":\"record\"")); /* bad JSON */
        free(expect_schema_error("{\"name\":\"x\"}"));     /* no type */
        free(expect_schema_error("{\"type\":\"enum\",\"name\":\"E\"}"));
        free(expect_schema_error("{\"type\":\"enum\",\"name\":\"E\","
                                 "\"symbols\":[\"A\",\"A\"]}"));
        free(expect_schema_error("{\"type\":\"fixed\",\"name\":\"F\","
                                 "\"size\":-1}"));
        free(expect_schema_error("{\"type\":\"fixed\",\"name\":\"F\","
                                 "\"size\":\"16\"}"));
        free(expect_schema_error("{\"type\":\"array\"}"));
        free(expect_schema_error("{\"type\":\"map\",\"items\":\"int\"}"));
        free(expect_schema_error("\"array\""));
        free(expect_schema_error("\"not a name\""));
        free(expect_schema_error("{\"type\":\"nosuchtype\"}"));
        free(expect_schema_error("{\"type\":\"record\",\"name\":\"int\","
                                 "\"fields\":[]}"));
        free(expect_schema_error("{\"type\":\"record\",\"name\":\"9x\","
                                 "\"fields\":[]}"));
        free(expect_schema_error("[\"null\",[\"int\"]]"));
        free(expect_schema_error("[{\"type\":\"fixed\",\"name\":\"F\","
                                 "\"size\":1},{\"type\":\"fixed\","
                                 "\"name\":\"F\",\"size\":2}]"));
        free(expect_schema_error("{\"type\":\"record\",\"name\":\"R\","
                                 "\"fields\":[{\"name\":\"a\",\"type\":"
                                 "\"int\"},{\"name\":\"a\",\"type\":"
                                 "\"int\"}]}"));
        free(expect_schema_error("{\"type\":\"record\",\"name\":\"R\","
                                 "\"fields\":[{\"name\":\"a\",\"type\":"
                                 "\"int\",\"type\":\"long\"}]}"));
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(crc64_of_empty_input_is_empty),
            cmocka_unit_test(crc64_known_value),
            cmocka_unit_test(vectors_from_file),
            cmocka_unit_test(strips_doc_aliases_and_custom_attributes),
            cmocka_unit_test(nested_types_inherit_namespace),
            cmocka_unit_test(null_namespace_fallback_and_empty_namespace),
            cmocka_unit_test(json_value_form),
            cmocka_unit_test(errors),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
