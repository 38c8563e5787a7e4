/*
 * Signatures are not optional in production (DESIGN.md §9; CNIL R3.4-*):
 * outside kafka.insecure_dev, a holder without a signing key, a gateway
 * without its audit key (R4.3-13), its holders' public keys or its own
 * signing key, and a reuser
 * agent without the gateway's public keys refuse to start, before they
 * connect, and say which setting is missing.
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

#include "testutil.h"

static char dir[64];

static int setup(void **state)
{
        char errstr[256];

        (void)state;
        if (sb_crypto_init(errstr, sizeof(errstr)))
                fail_msg("%s", errstr);
        snprintf(dir, sizeof(dir), "/tmp/sb-test-signreq-XXXXXX");
        assert_non_null(mkdtemp(dir));
        return 0;
}

static int teardown(void **state)
{
        (void)state;
        sb_test_rmtree(dir);
        return 0;
}

/* A TLS kafka section that is never dialled: the refusals come first. */
static json_t *tls_kafka(void)
{
        return json_pack("{s:s, s:s, s:s, s:s, s:s}", "bootstrap_servers",
                         "localhost:1", "security_protocol", "ssl",
                         "ssl_ca_location", "/nonexistent/ca.pem",
                         "ssl_certificate_location", "/nonexistent/c.pem",
                         "ssl_key_location", "/nonexistent/c.key");
}

static void apply(const sb_config_field_t *table, void *target, json_t *j)
{
        char errstr[512];

        if (sb_config_apply(j, "test", table, target, errstr, sizeof(errstr)))
                fail_msg("config: %s", errstr);
        json_decref(j);
}

static void holder_refuses_to_start_without_signing_key(void **state)
{
        sb_holder_cfg_t cfg;
        char errstr[512] = "";

        (void)state;
        memset(&cfg, 0, sizeof(cfg));
        apply(sb_holder_cfg_table, &cfg,
              json_pack("{s:o, s:s}", "kafka", tls_kafka(), "schemas_dir",
                        SB_SCHEMAS_DIR));
        assert_null(
            sb_holder_new(&cfg, "beneficiaries", errstr, sizeof(errstr)));
        assert_non_null(strstr(errstr, "signing_key_file"));
        sb_config_release(sb_holder_cfg_table, &cfg);
}

/* One refusal per missing setting, in the order they are checked. */
static void gateway_refuses(const char *grants, const char *audit_key,
                            const char *holder_keys, const char *missing)
{
        sb_key_t *key = sb_key_random();
        char errstr[512] = "";
        sb_gateway_cfg_t cfg;
        json_t *j;

        j = json_pack("{s:o, s:[s], s:s, s:s, s:s}", "kafka", tls_kafka(),
                      "datasets", "beneficiaries", "schemas_dir",
                      SB_SCHEMAS_DIR, "grants_dir", grants,
                      "pseudonym_key_file", "(memory)");
        if (audit_key)
                json_object_set_new(j, "audit_key_file",
                                    json_string(audit_key));
        if (holder_keys)
                json_object_set_new(j, "holder_keys_dir",
                                    json_string(holder_keys));
        memset(&cfg, 0, sizeof(cfg));
        apply(sb_gateway_cfg_table, &cfg, j);
        assert_null(sb_gateway_new(&cfg, key, errstr, sizeof(errstr)));
        if (!strstr(errstr, missing))
                fail_msg("expected a refusal naming %s, got: %s", missing,
                         errstr);
        sb_config_release(sb_gateway_cfg_table, &cfg);
        sb_key_destroy(key);
}

static void gateway_refuses_to_start_without_keys(void **state)
{
        char grants[128], hk[128], ak[128], apub[128];

        (void)state;
        snprintf(grants, sizeof(grants), "%s/grants", dir);
        mkdir(grants, 0700);
        snprintf(hk, sizeof(hk), "%s/holder-keys", dir);
        snprintf(ak, sizeof(ak), "%s/audit.key", dir);
        snprintf(apub, sizeof(apub), "%s/audit.pub", dir);
        sb_test_keypair(ak, apub);

        gateway_refuses(grants, NULL, NULL, "audit_key_file");
        gateway_refuses(grants, ak, NULL, "holder_keys_dir");
        gateway_refuses(grants, ak, hk, "signing_key_file");
}

static void reuser_refuses_to_start_without_gateway_keys(void **state)
{
        char grant[128], sk[128], pk[128], errstr[512] = "";
        sb_reuser_cfg_t cfg;
        FILE *fp;

        (void)state;
        snprintf(grant, sizeof(grant), "%s/g.json", dir);
        fp = fopen(grant, "w");
        assert_non_null(fp);
        fputs("{\"id\": \"g-r\", \"reuser\": \"reuser-r\", \"dataset\": "
              "\"beneficiaries\", \"purposes\": [\"p\"], \"legal_basis\": "
              "\"x\", \"status\": \"approved\", \"fields\": {\"postcode\": "
              "\"keep\"}}",
              fp);
        fclose(fp);
        snprintf(sk, sizeof(sk), "%s/r.key", dir);
        snprintf(pk, sizeof(pk), "%s/r.pub", dir);
        sb_test_keypair(sk, pk);

        memset(&cfg, 0, sizeof(cfg));
        apply(sb_reuser_cfg_table, &cfg,
              json_pack("{s:o, s:s, s:s, s:s, s:s, s:s, s:s}", "kafka",
                        tls_kafka(), "reuser", "reuser-r", "dataset",
                        "beneficiaries", "grant_file", grant, "schemas_dir",
                        SB_SCHEMAS_DIR, "database",
                        ":memory:", "signing_key_file", sk));
        assert_null(sb_reuser_new(&cfg, errstr, sizeof(errstr)));
        assert_non_null(strstr(errstr, "gateway_keys_dir"));
        sb_config_release(sb_reuser_cfg_table, &cfg);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(holder_refuses_to_start_without_signing_key),
            cmocka_unit_test(gateway_refuses_to_start_without_keys),
            cmocka_unit_test(reuser_refuses_to_start_without_gateway_keys),
        };

        return cmocka_run_group_tests(tests, setup, teardown);
}
