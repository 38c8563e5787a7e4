/*
 * The pieces of `sharebus rights` that need no cluster (admin/rights.c,
 * admin/platform.c): durations on the command line, the receipt keys a
 * platform declares per reuser, and the verdict on one receipt.
 *
 * A receipt counts as an acknowledgement (GDPR art. 19; CNIL R3.6-03,
 * R4.3-20) only when it names the event, the reuser, the dataset and the
 * type it acknowledges and, when the reuser declared keys, carries a
 * signature one of them verifies; a declaration mistake stops the tool with
 * a message naming the reuser and the field (R3.8-08).
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

#include "testutil.h"
#include "crypto.h"
#include "platform.h"
#include "rights.h"
#include "sign.h"

static char dir[64];

static int setup(void **state)
{
        char errstr[256] = "", grants[128];

        (void)state;
        if (sb_crypto_init(errstr, sizeof(errstr)))
                fail_msg("sb_crypto_init: %s", errstr);
        snprintf(dir, sizeof(dir), "/tmp/sb-test-rights-XXXXXX");
        if (!mkdtemp(dir))
                fail_msg("mkdtemp failed");
        snprintf(grants, sizeof(grants), "%s/grants", dir);
        assert_int_equal(0, mkdir(grants, 0700));
        return 0;
}

static int teardown(void **state)
{
        (void)state;
        sb_test_rmtree(dir);
        return 0;
}

/*
 * Durations
 */

static void durations_parse_with_their_unit(void **state)
{
        static const struct {
                const char *input;
                int64_t expected;
        } ok[] = {
            {"30s", 30000},    {"15m", 900000},
            {"24h", 86400000}, {"7d", 604800000},
            {"1500", 1500},    {"250ms", 250},
            {"0", 0},          {"1d", 86400000},
            {"90s", 90000},    {"31d", 2678400000LL},
        };
        static const char *const bad[] = {
            "",
            "s",
            "-5s",
            "+5s",
            "5x",
            "5 s",
            " 5s",
            "1.5h",
            "5S",
            "5sec",
            "h24",
            "5s ",
            "0x10",
            "99999999999999999999", /* does not fit */
            "9223372036854775807d", /* does not fit once in ms */
        };
        int64_t ms;
        size_t i;

        (void)state;
        for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
                ms = -1;
                if (sb_rights_parse_duration(ok[i].input, &ms) ||
                    ms != ok[i].expected)
                        fail_msg("duration \"%s\": expected %lld ms, got "
                                 "%lld",
                                 ok[i].input, (long long)ok[i].expected,
                                 (long long)ms);
        }
        for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
                if (!sb_rights_parse_duration(bad[i], &ms))
                        fail_msg("duration \"%s\": expected a refusal, got "
                                 "%lld ms",
                                 bad[i], (long long)ms);
        assert_int_equal(-1, sb_rights_parse_duration(NULL, &ms));
}

static void durations_print_in_their_largest_unit(void **state)
{
        static const struct {
                int64_t ms;
                const char *expected;
        } cases[] = {
            {86400000, "1d"},       {3600000, "1h"}, {90000, "90s"},
            {1500, "1500ms"},       {1, "1ms"},      {0, "0ms"},
            {7 * 86400000LL, "7d"},
        };
        char out[32];
        size_t i;

        (void)state;
        for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                sb_rights_format_duration(cases[i].ms, out, sizeof(out));
                assert_string_equal(cases[i].expected, out);
        }
}

/*
 * receipt_keys in the platform declaration
 */

/* Loads a platform whose reuser-a entry is `reuser_a` (JSON text). */
static sb_platform_t *load(const char *reuser_a, char *errstr,
                           size_t errstr_size, char *path, size_t path_size)
{
        char text[2048];
        FILE *fp;

        snprintf(path, path_size, "%s/platform.json", dir);
        snprintf(text, sizeof(text),
                 "{\"gateway\": [\"sb-gateway.g1\"], \"datasets\": "
                 "{\"beneficiaries\": {\"holders\": [\"holder.g1\"]}}, "
                 "\"reusers\": {\"reuser-a\": %s}, \"grants_dir\": "
                 "\"%s/grants\", \"schemas_dir\": \"%s\", "
                 "\"replication_factor\": 1}",
                 reuser_a, dir, SB_SCHEMAS_DIR);
        fp = fopen(path, "w");
        assert_non_null(fp);
        fputs(text, fp);
        fclose(fp);
        return sb_platform_load(path, errstr, errstr_size);
}

#define KEY1 "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
#define KEY2 "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c"

static void receipt_keys_errors_name_the_reuser_and_the_field(void **state)
{
        static const struct {
                const char *why;
                const char *reuser_a;
                const char *expected; /* %s: the file */
        } cases[] = {
            {"not an array",
             "{\"principals\": [\"reuser-a.g1\"], \"receipt_keys\": \"" KEY1
             "\"}",
             "platform '%s': key 'reusers.reuser-a.receipt_keys': expected a "
             "non-empty array of Ed25519 public keys (the content of the "
             "NAME.pub files the reuser made with 'sharebus keys generate'); "
             "leave the key out when none is known"},
            {"empty",
             "{\"principals\": [\"reuser-a.g1\"], \"receipt_keys\": []}",
             "platform '%s': key 'reusers.reuser-a.receipt_keys': expected a "
             "non-empty array of Ed25519 public keys (the content of the "
             "NAME.pub files the reuser made with 'sharebus keys generate'); "
             "leave the key out when none is known"},
            {"one hex digit short",
             "{\"principals\": [\"reuser-a.g1\"], \"receipt_keys\": [\"" KEY1
             "\", \"3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f1"
             "2af4660\"]}",
             "platform '%s': key 'reusers.reuser-a.receipt_keys' item 1: "
             "expected an Ed25519 public key as 64 hex characters (the "
             "content of NAME.pub, as written by 'sharebus keys generate')"},
            {"not hex",
             "{\"principals\": [\"reuser-a.g1\"], \"receipt_keys\": "
             "[\"zz5a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707"
             "511a\"]}",
             "platform '%s': key 'reusers.reuser-a.receipt_keys' item 0: "
             "expected an Ed25519 public key as 64 hex characters (the "
             "content of NAME.pub, as written by 'sharebus keys generate')"},
            {"a number",
             "{\"principals\": [\"reuser-a.g1\"], \"receipt_keys\": [42]}",
             "platform '%s': key 'reusers.reuser-a.receipt_keys' item 0: "
             "expected an Ed25519 public key as 64 hex characters (the "
             "content of NAME.pub, as written by 'sharebus keys generate')"},
            {"the same key twice",
             "{\"principals\": [\"reuser-a.g1\"], \"receipt_keys\": [\"" KEY1
             "\", \"" KEY2 "\", \"" KEY1 "\"]}",
             "platform '%s': key 'reusers.reuser-a.receipt_keys' item 2: the "
             "same key as item 0"},
            {"a misspelt key",
             "{\"principals\": [\"reuser-a.g1\"], \"receipt_key\": [\"" KEY1
             "\"]}",
             "platform '%s': unknown key 'reusers.reuser-a.receipt_key'"},
        };
        char errstr[1024], path[256], expected[1024];
        sb_platform_t *pf;
        size_t i;

        (void)state;
        for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                errstr[0] = '\0';
                pf = load(cases[i].reuser_a, errstr, sizeof(errstr), path,
                          sizeof(path));
                if (pf) {
                        sb_platform_destroy(pf);
                        fail_msg("%s: loaded, expected an error", cases[i].why);
                }
                snprintf(expected, sizeof(expected), cases[i].expected, path);
                if (strcmp(expected, errstr))
                        fail_msg("%s:\n  expected: %s\n  got:      %s",
                                 cases[i].why, expected, errstr);
        }
}

static void receipt_keys_load_for_rotation(void **state)
{
        unsigned char pub[SB_SIGN_PUBLIC_BYTES], want[SB_SIGN_PUBLIC_BYTES];
        char errstr[1024] = "", path[256];
        sb_platform_t *pf;
        size_t len;

        (void)state;
        pf = load("{\"principals\": [\"reuser-a.g1\"], \"receipt_keys\": "
                  "[\"" KEY1 "\", \"" KEY2 "\"]}",
                  errstr, sizeof(errstr), path, sizeof(path));
        if (!pf)
                fail_msg("platform: %s", errstr);
        assert_int_equal(2, sb_platform_receipt_key_cnt(pf, "reuser-a"));
        assert_int_equal(0, sb_platform_receipt_key_cnt(pf, "reuser-b"));
        sb_platform_receipt_key(pf, "reuser-a", 1, pub);
        assert_int_equal(0, sodium_hex2bin(want, sizeof(want), KEY2,
                                           strlen(KEY2), NULL, &len, NULL));
        assert_memory_equal(want, pub, sizeof(pub));
        sb_platform_destroy(pf);

        /* Without receipt_keys: allowed, none known. */
        pf = load("{\"principals\": [\"reuser-a.g1\"]}", errstr, sizeof(errstr),
                  path, sizeof(path));
        if (!pf)
                fail_msg("platform: %s", errstr);
        assert_int_equal(0, sb_platform_receipt_key_cnt(pf, "reuser-a"));
        sb_platform_destroy(pf);
}

/*
 * One receipt's verdict
 */

#define EVENT "3b0c8f4e-6a51-4f0e-9d8a-1c2b3d4e5f60"

typedef struct receipt_s {
        sb_catalog_t *cat;
        const sb_schema_t *schema;
        sb_signkey_t *key, *other;
        unsigned char keys[2][SB_SIGN_PUBLIC_BYTES];
        sb_buf_t value;
        char sig[SB_SIG_HEXLEN + 1];
} receipt_t;

/* A receipt value with these fields, signed with `key`. */
static void receipt_make(receipt_t *r, const char *reuser, sb_signkey_t *key)
{
        char errstr[512];
        avro_value_t v;
        json_t *j;

        j = json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:s}", "event_id", EVENT,
                      "reuser", reuser, "dataset", "beneficiaries", "type",
                      "sharebus.rights.erasure", "pseudonym", SB_TEST_PSEUDONYM,
                      "rows", (json_int_t)3, "applied_at",
                      "2026-11-25T10:00:01.500Z");
        assert_int_equal(
            SB_OK, sb_schema_value_new(r->schema, &v, errstr, sizeof(errstr)));
        if (sb_avrojson_from_json(r->schema->aj, j, &v, errstr,
                                  sizeof(errstr)) ||
            sb_schema_encode(r->schema, &v, &r->value, errstr, sizeof(errstr)))
                fail_msg("receipt: %s", errstr);
        assert_int_equal(SB_OK,
                         sb_sign(key, r->value.data, r->value.len, r->sig));
        avro_value_decref(&v);
        json_decref(j);
}

static void receipt_init(receipt_t *r)
{
        char errstr[512];

        memset(r, 0, sizeof(*r));
        r->cat = sb_catalog_load(SB_SCHEMAS_DIR, errstr, sizeof(errstr));
        if (!r->cat)
                fail_msg("catalog: %s", errstr);
        r->schema = sb_catalog_by_name(r->cat, SB_RECEIPT_SCHEMA);
        assert_non_null(r->schema);
        r->key = sb_signkey_generate();
        r->other = sb_signkey_generate();
        assert_non_null(r->key);
        assert_non_null(r->other);
        /* Rotation: the old key first, the current one second. */
        memcpy(r->keys[0], sb_signkey_public(r->other), SB_SIGN_PUBLIC_BYTES);
        memcpy(r->keys[1], sb_signkey_public(r->key), SB_SIGN_PUBLIC_BYTES);
}

static void receipt_release(receipt_t *r)
{
        sb_buf_release(&r->value);
        sb_signkey_destroy(r->key);
        sb_signkey_destroy(r->other);
        sb_catalog_destroy(r->cat);
}

static void check(receipt_t *r, size_t key_cnt, const char *sig,
                  const char *key_id, sb_rights_receipt_t *out)
{
        const sb_rights_expect_t exp = {EVENT, "reuser-a", "beneficiaries",
                                        "sharebus.rights.erasure"};
        char errstr[512];

        if (sb_rights_receipt_check(
                r->schema, &exp,
                (const unsigned char(*)[SB_SIGN_PUBLIC_BYTES])r->keys, key_cnt,
                r->value.data, r->value.len, sig, key_id, out, errstr,
                sizeof(errstr)))
                fail_msg("sb_rights_receipt_check: %s", errstr);
}

static void receipt_signed_by_a_declared_key_acknowledges(void **state)
{
        sb_rights_receipt_t out;
        receipt_t r;

        (void)state;
        receipt_init(&r);
        receipt_make(&r, "reuser-a", r.key);
        check(&r, 2, r.sig, sb_signkey_id(r.key), &out);
        assert_true(out.valid);
        assert_string_equal("verified", sb_rights_sig2str(out.sig));
        assert_string_equal(sb_signkey_id(r.key), out.key_id);
        assert_int_equal(3, out.rows);
        assert_int_equal(1795600801500LL, out.applied_at);

        /* No sb_key_id header: every declared key is tried. */
        check(&r, 2, r.sig, NULL, &out);
        assert_true(out.valid);
        assert_string_equal(sb_signkey_id(r.key), out.key_id);

        /* No key declared: accepted, signature not checked. */
        check(&r, 0, r.sig, sb_signkey_id(r.key), &out);
        assert_true(out.valid);
        assert_string_equal("key-unknown", sb_rights_sig2str(out.sig));
        receipt_release(&r);
}

static void receipt_that_does_not_check_out_is_invalid(void **state)
{
        char bad_sig[SB_SIG_HEXLEN + 1];
        sb_rights_receipt_t out;
        receipt_t r;

        (void)state;
        receipt_init(&r);

        /* The value changed after signing. */
        receipt_make(&r, "reuser-a", r.key);
        r.value.data[r.value.len - 1] ^= 0x01;
        check(&r, 2, r.sig, sb_signkey_id(r.key), &out);
        assert_false(out.valid);
        assert_string_equal("bad", sb_rights_sig2str(out.sig));
        assert_string_equal("signature does not verify with the receipt key "
                            "declared for reuser 'reuser-a'",
                            out.reason);

        /* Signed with a key the platform does not know. */
        sb_buf_release(&r.value);
        memset(&r.value, 0, sizeof(r.value));
        memcpy(r.keys[0], r.keys[1], SB_SIGN_PUBLIC_BYTES);
        receipt_make(&r, "reuser-a", r.other);
        check(&r, 1, r.sig, sb_signkey_id(r.other), &out);
        assert_false(out.valid);
        snprintf(bad_sig, sizeof(bad_sig),
                 "signed with key %s, which is not among the receipt_keys "
                 "declared for reuser 'reuser-a'",
                 sb_signkey_id(r.other));
        assert_string_equal(bad_sig, out.reason);
        /* ... even when it claims a declared key's id. */
        check(&r, 1, r.sig, sb_signkey_id(r.key), &out);
        assert_false(out.valid);
        assert_string_equal("bad", sb_rights_sig2str(out.sig));

        /* No signature at all. */
        check(&r, 1, NULL, NULL, &out);
        assert_false(out.valid);
        assert_string_equal("no signature (header sb_sig)", out.reason);

        /* Correctly signed, but another reuser's receipt. */
        sb_buf_release(&r.value);
        memset(&r.value, 0, sizeof(r.value));
        receipt_make(&r, "reuser-b", r.key);
        check(&r, 1, r.sig, sb_signkey_id(r.key), &out);
        assert_false(out.valid);
        assert_string_equal("verified", sb_rights_sig2str(out.sig));
        assert_string_equal("field 'reuser' is \"reuser-b\", expected "
                            "\"reuser-a\"",
                            out.reason);

        /* Correctly signed, but not a receipt. */
        sb_buf_release(&r.value);
        memset(&r.value, 0, sizeof(r.value));
        assert_int_equal(SB_OK, sb_buf_reserve(&r.value, 16));
        memcpy(r.value.data, "not avro", 8);
        r.value.len = 8;
        assert_int_equal(SB_OK,
                         sb_sign(r.key, r.value.data, r.value.len, r.sig));
        check(&r, 1, r.sig, sb_signkey_id(r.key), &out);
        assert_false(out.valid);
        assert_non_null(strstr(out.reason, "not a receipt"));
        receipt_release(&r);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(durations_parse_with_their_unit),
            cmocka_unit_test(durations_print_in_their_largest_unit),
            cmocka_unit_test(receipt_keys_errors_name_the_reuser_and_the_field),
            cmocka_unit_test(receipt_keys_load_for_rotation),
            cmocka_unit_test(receipt_signed_by_a_declared_key_acknowledges),
            cmocka_unit_test(receipt_that_does_not_check_out_is_invalid),
        };

        return cmocka_run_group_tests(tests, setup, teardown);
}
