/*
 * The cert.issue audit entry (DESIGN.md §9, CNIL R4.3-12): what the CA
 * issued, as in its register, with no key material, and an entry the
 * audit chain accepts (no floating-point number, no reserved key).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <string.h>

#include "audit.h"
#include "certaudit.h"

static void fill(sb_cert_info_t *ci)
{
        memset(ci, 0, sizeof(*ci));
        snprintf(ci->principal, sizeof(ci->principal), "city.g2");
        snprintf(ci->serial, sizeof(ci->serial), "5c1e0f");
        snprintf(ci->sha256, sizeof(ci->sha256), "%064d", 9);
        ci->not_before = 1795600000;
        ci->not_after = 1795600000 + 7 * 86400;
        ci->issued_at = 1795599000;
        ci->server = 1;
        ci->generation = 2;
        snprintf(ci->crt_path, sizeof(ci->crt_path), "/secret/ca/city.g2.crt");
}

static void entry_names_the_certificate_and_nothing_else(void **state)
{
        static const char *const keys[] = {
            "op",        "author",     "principal",
            "serial",    "not_before", "not_after",
            "issued_at", "server",     "fingerprint_sha256"};
        sb_cert_info_t ci;
        json_t *e;
        size_t i;

        (void)state;
        fill(&ci);
        e = sb_certaudit_entry("sharebus://admin/sharebus-admin", &ci);
        assert_non_null(e);
        assert_int_equal(sizeof(keys) / sizeof(keys[0]), json_object_size(e));
        for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
                assert_non_null(json_object_get(e, keys[i]));
        assert_string_equal("cert.issue",
                            json_string_value(json_object_get(e, "op")));
        assert_string_equal("city.g2",
                            json_string_value(json_object_get(e, "principal")));
        assert_string_equal("5c1e0f",
                            json_string_value(json_object_get(e, "serial")));
        assert_string_equal(
            "2026-11-25T09:46:40Z",
            json_string_value(json_object_get(e, "not_before")));
        assert_string_equal("2026-12-02T09:46:40Z",
                            json_string_value(json_object_get(e, "not_after")));
        assert_true(json_is_true(json_object_get(e, "server")));
        assert_string_equal(ci.sha256, json_string_value(json_object_get(
                                           e, "fingerprint_sha256")));
        json_decref(e);
}

static void entry_chains(void **state)
{
        char errstr[256], *text = NULL, *cp = NULL;
        sb_audit_chain_t *chain;
        sb_cert_info_t ci;
        json_t *e;

        (void)state;
        fill(&ci);
        e = sb_certaudit_entry("sharebus://admin/sharebus-admin", &ci);
        chain = sb_audit_chain_new(SB_CERTAUDIT_CHAIN, NULL, 0, errstr,
                                   sizeof(errstr));
        assert_non_null(chain);
        assert_int_equal(SB_OK, sb_audit_chain_append(chain, e, &text, &cp,
                                                      errstr, sizeof(errstr)));
        assert_non_null(text);
        assert_null(strstr(text, "/secret/"));
        assert_null(strstr(text, "PRIVATE"));
        free(text);
        free(cp);
        sb_audit_chain_destroy(chain);
        json_decref(e);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(entry_names_the_certificate_and_nothing_else),
            cmocka_unit_test(entry_chains),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
