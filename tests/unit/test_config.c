/*
 * The strict configuration loader (common/config.c) with the real tables
 * of the reuser agent and the gateway, and the Kafka transport policy
 * (common/kafka.c).
 *
 * A configuration mistake must stop the program with a message naming the
 * file and the key, never be ignored or guessed around (R3.8-08); the
 * transport is TLS with the ANSSI suites unless a developer explicitly
 * asks for plaintext (R5.4-03, R5.4-04, R5.4-05).
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

#include "testutil.h"
#include "config.h"
#include "gateway.h"
#include "kafka.h"
#include "reuser.h"

/*
 * Helpers
 */

static char tmp_root[64];

static int setup(void **state)
{
        (void)state;
        snprintf(tmp_root, sizeof(tmp_root), "/tmp/sb-test-config-XXXXXX");
        if (!mkdtemp(tmp_root))
                fail_msg("mkdtemp failed");
        return 0;
}

static int teardown(void **state)
{
        (void)state;
        sb_test_rmtree(tmp_root);
        return 0;
}

/* Writes `text` to a file of the temporary directory; returns its path. */
static const char *config_file(const char *text)
{
        static char path[256];
        static int n;
        FILE *fp;

        snprintf(path, sizeof(path), "%s/config-%d.json", tmp_root, n++);
        fp = fopen(path, "w");
        if (!fp || fputs(text, fp) == EOF || fclose(fp))
                fail_msg("cannot write %s", path);
        return path;
}

typedef struct bad_config_s {
        const char *why;
        const sb_config_field_t *table;
        const char *text;
        const char *expected; /* %s is the file's path */
} bad_config_t;

#define KAFKA "\"kafka\": {\"bootstrap_servers\": \"broker:9093\"}"
#define REUSER_KEYS                                                            \
        "\"reuser\": \"energy-desk\", \"dataset\": \"beneficiaries\", "        \
        "\"grant_file\": \"g.json\", \"database\": \"r.db\", "                 \
        "\"signing_key_file\": \"r.key\""
#define GATEWAY_KEYS                                                           \
        "\"datasets\": [\"beneficiaries\"], \"grants_dir\": \"grants\", "      \
        "\"pseudonym_key_file\": \"key.hex\""
#define UNKNOWN_KEY_HINT "(see docs/configuration.md for the keys of this file)"

static const bad_config_t bad_configs[] = {
    {"unknown top-level key", sb_reuser_cfg_table,
     "{" KAFKA ", " REUSER_KEYS ", \"batch_size\": 10}",
     "config '%s': unknown key 'batch_size' " UNKNOWN_KEY_HINT},
    {"unknown nested key", sb_reuser_cfg_table,
     "{\"kafka\": {\"bootstrap_servers\": \"b:9093\", \"bootstrap\": "
     "\"b:9093\"}, " REUSER_KEYS "}",
     "config '%s': unknown key 'kafka.bootstrap' " UNKNOWN_KEY_HINT},
    {"wrong type: string for an integer", sb_reuser_cfg_table,
     "{" KAFKA ", " REUSER_KEYS ", \"batch_records\": \"500\"}",
     "config '%s': key 'batch_records': expected an integer, got a string"},
    {"wrong type: number for an integer", sb_reuser_cfg_table,
     "{" KAFKA ", " REUSER_KEYS ", \"batch_records\": 1.5}",
     "config '%s': key 'batch_records': expected an integer, got a number"},
    {"wrong type: string for a boolean", sb_reuser_cfg_table,
     "{\"kafka\": {\"bootstrap_servers\": \"b:9093\", \"insecure_dev\": "
     "\"yes\"}, " REUSER_KEYS "}",
     "config '%s': key 'kafka.insecure_dev': expected a boolean, got a "
     "string"},
    {"wrong type: string for an object", sb_reuser_cfg_table,
     "{\"kafka\": \"b:9093\", " REUSER_KEYS "}",
     "config '%s': key 'kafka': expected an object, got a string"},
    {"wrong type: null for a string", sb_reuser_cfg_table,
     "{" KAFKA ", " REUSER_KEYS ", \"group_id\": null}",
     "config '%s': key 'group_id': expected a string, got null"},
    {"wrong type: string for an array", sb_gateway_cfg_table,
     "{" KAFKA ", \"datasets\": \"beneficiaries\", \"grants_dir\": \"g\", "
     "\"pseudonym_key_file\": \"k\"}",
     "config '%s': key 'datasets': expected an array of strings, got a "
     "string"},
    {"wrong type: array item", sb_gateway_cfg_table,
     "{" KAFKA ", \"datasets\": [\"beneficiaries\", 7], \"grants_dir\": "
     "\"g\", \"pseudonym_key_file\": \"k\"}",
     "config '%s': key 'datasets' item 1: expected a string, got an "
     "integer"},
    {"wrong type: property value", sb_gateway_cfg_table,
     "{\"kafka\": {\"bootstrap_servers\": \"b:9093\", \"properties\": "
     "{\"linger.ms\": 5}}, " GATEWAY_KEYS "}",
     "config '%s': key 'kafka.properties.linger.ms': expected a string, got "
     "an integer"},
    {"integer below range", sb_reuser_cfg_table,
     "{" KAFKA ", " REUSER_KEYS ", \"batch_records\": 0}",
     "config '%s': key 'batch_records': 0 is out of range [1, 100000]"},
    {"integer above range", sb_reuser_cfg_table,
     "{" KAFKA ", " REUSER_KEYS ", \"batch_records\": 100001}",
     "config '%s': key 'batch_records': 100001 is out of range [1, 100000]"},
    {"gateway integer above range", sb_gateway_cfg_table,
     "{" KAFKA ", " GATEWAY_KEYS ", \"commit_interval_ms\": 60001}",
     "config '%s': key 'commit_interval_ms': 60001 is out of range [1, "
     "60000]"},
    {"missing required key", sb_reuser_cfg_table,
     "{" KAFKA ", \"reuser\": \"energy-desk\", \"dataset\": "
     "\"beneficiaries\", \"grant_file\": \"g.json\"}",
     "config '%s': missing required key 'database'"},
    {"missing required nested key", sb_reuser_cfg_table,
     "{\"kafka\": {\"security_protocol\": \"ssl\"}, " REUSER_KEYS "}",
     "config '%s': missing required key 'kafka.bootstrap_servers'"},
    {"missing required section", sb_gateway_cfg_table, "{" GATEWAY_KEYS "}",
     "config '%s': missing required key 'kafka'"},
    {"missing required gateway key", sb_gateway_cfg_table,
     "{" KAFKA ", \"datasets\": [\"beneficiaries\"], \"grants_dir\": "
     "\"grants\"}",
     "config '%s': missing required key 'pseudonym_key_file'"},
    {"not an object", sb_reuser_cfg_table, "[1, 2]",
     "config '%s': expected an object, got an array"},
    {"JSON syntax error", sb_reuser_cfg_table,
     "{\n  " KAFKA ",\n  \"reuser\": \"energy-desk\"\n  \"dataset\": "
     "\"beneficiaries\"\n}\n",
     "config '%s' line 4 column 11: '}' expected near '\"dataset\"'"},
    {"duplicate key", sb_reuser_cfg_table,
     "{" KAFKA ", " REUSER_KEYS ",\n \"database\": \"other.db\"}",
     "config '%s' line 2 column 11: duplicate object key near "
     "'\"database\"'"},
};

static void invalid_configs_are_refused_naming_file_and_key(void **state)
{
        size_t i, failures = 0;

        (void)state;
        for (i = 0; i < sizeof(bad_configs) / sizeof(bad_configs[0]); i++) {
                const bad_config_t *row = &bad_configs[i];
                const char *path = config_file(row->text);
                char errstr[512] = "", expected[512];
                union {
                        sb_reuser_cfg_t reuser;
                        sb_gateway_cfg_t gateway;
                } cfg;
                sb_err_t err;

                memset(&cfg, 0, sizeof(cfg));
                snprintf(expected, sizeof(expected), row->expected, path);
                err = sb_config_load(path, row->table, &cfg, errstr,
                                     sizeof(errstr));
                if (err != SB_ERR_CONFIG || strcmp(expected, errstr)) {
                        print_error("%s:\n  expected: error %d, %s\n"
                                    "  got:      error %d, %s\n",
                                    row->why, SB_ERR_CONFIG, expected, err,
                                    err ? errstr : "(accepted)");
                        failures++;
                }
                sb_config_release(row->table, &cfg);
        }
        if (failures)
                fail_msg("%zu invalid config(s) not refused as expected",
                         failures);
}

static void missing_config_file_is_named(void **state)
{
        char errstr[512] = "", path[256], expected[600];
        sb_reuser_cfg_t cfg;

        (void)state;
        snprintf(path, sizeof(path), "%s/absent.json", tmp_root);
        memset(&cfg, 0, sizeof(cfg));
        assert_int_equal(SB_ERR_CONFIG,
                         sb_config_load(path, sb_reuser_cfg_table, &cfg, errstr,
                                        sizeof(errstr)));
        snprintf(expected, sizeof(expected),
                 "config '%s': unable to open %s: No such file or directory",
                 path, path);
        assert_string_equal(expected, errstr);
        sb_config_release(sb_reuser_cfg_table, &cfg);
}

static void defaults_apply_when_keys_are_absent(void **state)
{
        char errstr[512] = "";
        sb_reuser_cfg_t ru;
        sb_gateway_cfg_t gw;
        const char *path;

        (void)state;
        memset(&ru, 0xA5, sizeof(ru)); /* defaults must overwrite garbage */
        path = config_file("{" KAFKA ", " REUSER_KEYS "}");
        if (sb_config_load(path, sb_reuser_cfg_table, &ru, errstr,
                           sizeof(errstr)))
                fail_msg("minimal reuser config refused: %s", errstr);
        assert_string_equal("broker:9093", ru.kafka.bootstrap_servers);
        assert_string_equal("ssl", ru.kafka.security_protocol);
        assert_null(ru.kafka.ssl_ca_location);
        assert_null(ru.kafka.sasl_username);
        assert_int_equal(0, ru.kafka.insecure_dev);
        assert_null(ru.kafka.properties);
        assert_string_equal("sharebus-reuser", ru.client_id);
        assert_string_equal("energy-desk", ru.reuser);
        assert_string_equal("beneficiaries", ru.dataset);
        assert_string_equal("g.json", ru.grant_file);
        assert_string_equal("schemas", ru.schemas_dir);
        assert_string_equal("r.db", ru.database);
        assert_string_equal("r.key", ru.signing_key_file);
        assert_null(ru.receipts_topic);
        assert_null(ru.group_id);
        assert_int_equal(500, ru.batch_records);
        sb_config_release(sb_reuser_cfg_table, &ru);
        assert_null(ru.client_id);

        memset(&gw, 0xA5, sizeof(gw));
        path = config_file("{" KAFKA ", " GATEWAY_KEYS "}");
        if (sb_config_load(path, sb_gateway_cfg_table, &gw, errstr,
                           sizeof(errstr)))
                fail_msg("minimal gateway config refused: %s", errstr);
        assert_string_equal("sharebus-gateway", gw.client_id);
        assert_int_equal(1, json_array_size(gw.datasets));
        assert_string_equal("beneficiaries",
                            json_string_value(json_array_get(gw.datasets, 0)));
        assert_string_equal("schemas", gw.schemas_dir);
        assert_string_equal("grants", gw.grants_dir);
        assert_string_equal("key.hex", gw.pseudonym_key_file);
        assert_string_equal("sb-gateway", gw.group_id);
        assert_null(gw.transactional_id);
        assert_int_equal(100, gw.commit_interval_ms);
        assert_int_equal(5000, gw.commit_records);
        assert_string_equal("ssl", gw.kafka.security_protocol);
        sb_config_release(sb_gateway_cfg_table, &gw);

        /* Values given replace the defaults, bounds included. */
        memset(&ru, 0, sizeof(ru));
        path = config_file(
            "{\"kafka\": {\"bootstrap_servers\": \"b:9093\", "
            "\"security_protocol\": \"sasl_ssl\", \"insecure_dev\": true, "
            "\"properties\": {\"linger.ms\": \"20\"}}, " REUSER_KEYS ", "
            "\"client_id\": \"ed-1\", \"schemas_dir\": \"/etc/sb/schemas\", "
            "\"group_id\": \"grp\", \"batch_records\": 100000}");
        if (sb_config_load(path, sb_reuser_cfg_table, &ru, errstr,
                           sizeof(errstr)))
                fail_msg("full reuser config refused: %s", errstr);
        assert_string_equal("sasl_ssl", ru.kafka.security_protocol);
        assert_int_equal(1, ru.kafka.insecure_dev);
        assert_string_equal("20", json_string_value(json_object_get(
                                      ru.kafka.properties, "linger.ms")));
        assert_string_equal("ed-1", ru.client_id);
        assert_string_equal("/etc/sb/schemas", ru.schemas_dir);
        assert_string_equal("grp", ru.group_id);
        assert_int_equal(100000, ru.batch_records);
        sb_config_release(sb_reuser_cfg_table, &ru);
}

/*
 * Kafka transport policy
 */

/* Builds the librdkafka conf of a gateway config's kafka section. */
static rd_kafka_conf_t *kafka_conf(const char *kafka_json, char *errstr,
                                   size_t errstr_size)
{
        char text[1024], lerr[512] = "";
        sb_gateway_cfg_t gw;
        rd_kafka_conf_t *conf;
        const char *path;

        snprintf(text, sizeof(text), "{\"kafka\": %s, " GATEWAY_KEYS "}",
                 kafka_json);
        path = config_file(text);
        memset(&gw, 0, sizeof(gw));
        if (sb_config_load(path, sb_gateway_cfg_table, &gw, lerr, sizeof(lerr)))
                fail_msg("config refused: %s", lerr);
        errstr[0] = '\0';
        conf = sb_kafka_conf_new(&gw.kafka, gw.client_id, errstr, errstr_size);
        sb_config_release(sb_gateway_cfg_table, &gw);
        return conf;
}

static void assert_conf_value(rd_kafka_conf_t *conf, const char *name,
                              const char *expected)
{
        char value[512];
        size_t size = sizeof(value);

        if (rd_kafka_conf_get(conf, name, value, &size) != RD_KAFKA_CONF_OK)
                fail_msg("property %s is not set", name);
        if (strcmp(expected, value))
                fail_msg("property %s:\n  expected: %s\n  got:      %s", name,
                         expected, value);
}

/* Fails unless `conf` is NULL and `errstr` is `expected`. */
static void assert_refused(rd_kafka_conf_t *conf, const char *expected,
                           const char *errstr)
{
        if (conf) {
                rd_kafka_conf_destroy(conf);
                fail_msg("accepted; expected refusal: %s", expected);
        }
        assert_string_equal(expected, errstr);
}

/* R5.4-04: plaintext only when a developer says so. */
static void kafka_conf_refuses_plaintext_without_insecure_dev(void **state)
{
        static const char refused[] =
            "kafka.security_protocol 'plaintext' is refused: use 'ssl' or "
            "'sasl_ssl', or set kafka.insecure_dev (local development only)";
        char errstr[512];
        rd_kafka_conf_t *conf;

        (void)state;
        conf = kafka_conf("{\"bootstrap_servers\": \"b:9092\", "
                          "\"security_protocol\": \"plaintext\"}",
                          errstr, sizeof(errstr));
        assert_refused(conf, refused, errstr);

        conf = kafka_conf("{\"bootstrap_servers\": \"b:9092\", "
                          "\"security_protocol\": \"PLAINTEXT\", "
                          "\"insecure_dev\": false}",
                          errstr, sizeof(errstr));
        assert_refused(conf, refused, errstr);

        /* A protocol outside the policy is refused too. */
        conf = kafka_conf("{\"bootstrap_servers\": \"b:9092\", "
                          "\"security_protocol\": \"sasl_plaintext\"}",
                          errstr, sizeof(errstr));
        assert_refused(conf,
                       "kafka.security_protocol 'sasl_plaintext' is not "
                       "supported: use 'ssl' or 'sasl_ssl'",
                       errstr);

        conf = kafka_conf("{\"bootstrap_servers\": \"b:9092\", "
                          "\"security_protocol\": \"plaintext\", "
                          "\"insecure_dev\": true}",
                          errstr, sizeof(errstr));
        if (!conf)
                fail_msg("plaintext with insecure_dev refused: %s", errstr);
        assert_conf_value(conf, "security.protocol", "plaintext");
        rd_kafka_conf_destroy(conf);
}

/* R5.4-03, R5.4-05: TLS with verified certificates and the ANSSI suites. */
static void kafka_conf_default_is_verified_tls_with_anssi_suites(void **state)
{
        char errstr[512];
        rd_kafka_conf_t *conf;

        (void)state;
        conf = kafka_conf("{\"bootstrap_servers\": \"b:9093\"}", errstr,
                          sizeof(errstr));
        if (!conf)
                fail_msg("default ssl refused: %s", errstr);
        assert_conf_value(conf, "security.protocol", "ssl");
        assert_conf_value(conf, "ssl.cipher.suites", sb_kafka_tls12_suites);
        assert_conf_value(conf, "enable.ssl.certificate.verification", "true");
        assert_conf_value(conf, "ssl.endpoint.identification.algorithm",
                          "https");
        assert_conf_value(conf, "client.id", "sharebus-gateway");
        rd_kafka_conf_destroy(conf);
        /* Every TLS 1.2 suite offered is ECDHE with an AEAD cipher. */
        {
                char *s = strdup(sb_kafka_tls12_suites), *save = NULL, *t;

                assert_non_null(s);
                for (t = strtok_r(s, ":", &save); t;
                     t = strtok_r(NULL, ":", &save)) {
                        if (strncmp(t, "ECDHE-", 6) ||
                            (!strstr(t, "-GCM-") && !strstr(t, "CHACHA20")))
                                fail_msg("suite %s is not ECDHE + AEAD", t);
                }
                free(s);
        }
}

/* The policy cannot be undone through kafka.properties. */
static void kafka_conf_refuses_security_settings_in_properties(void **state)
{
        static const char *const keys[] = {
            "security.protocol",
            "ssl.cipher.suites",
            "ssl.endpoint.identification.algorithm",
            "ssl.ca.location",
            "sasl.mechanism",
            "sasl.mechanisms",
            "enable.ssl.certificate.verification",
        };
        static const char *const protocols[] = {
            "\"security_protocol\": \"ssl\"",
            "\"security_protocol\": \"plaintext\", \"insecure_dev\": true",
        };
        char kafka[512], errstr[512], expected[512];
        rd_kafka_conf_t *conf;
        size_t i, p, failures = 0;

        (void)state;
        for (p = 0; p < 2; p++) {
                for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
                        snprintf(kafka, sizeof(kafka),
                                 "{\"bootstrap_servers\": \"b:9093\", %s, "
                                 "\"properties\": {\"linger.ms\": \"5\", "
                                 "\"%s\": \"plaintext\"}}",
                                 protocols[p], keys[i]);
                        snprintf(expected, sizeof(expected),
                                 "kafka.properties.%s: security settings are "
                                 "set by sharebus's policy, not by "
                                 "properties",
                                 keys[i]);
                        conf = kafka_conf(kafka, errstr, sizeof(errstr));
                        if (conf || strcmp(expected, errstr)) {
                                print_error("%s with %s:\n  expected: %s\n"
                                            "  got:      %s\n",
                                            keys[i], protocols[p], expected,
                                            conf ? "(accepted)" : errstr);
                                failures++;
                        }
                        if (conf)
                                rd_kafka_conf_destroy(conf);
                }
        }
        if (failures)
                fail_msg("%zu security properties not refused", failures);

        /* Other properties pass through. */
        conf = kafka_conf("{\"bootstrap_servers\": \"b:9093\", \"properties\": "
                          "{\"linger.ms\": \"7\", \"socket.timeout.ms\": "
                          "\"12345\"}}",
                          errstr, sizeof(errstr));
        if (!conf)
                fail_msg("ordinary properties refused: %s", errstr);
        assert_conf_value(conf, "linger.ms", "7");
        assert_conf_value(conf, "socket.timeout.ms", "12345");
        assert_conf_value(conf, "security.protocol", "ssl");
        rd_kafka_conf_destroy(conf);

        /* An unknown property is named. */
        conf = kafka_conf("{\"bootstrap_servers\": \"b:9093\", \"properties\": "
                          "{\"linger.mss\": \"7\"}}",
                          errstr, sizeof(errstr));
        assert_refused(conf,
                       "Kafka property 'linger.mss': No such configuration "
                       "property: \"linger.mss\"",
                       errstr);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(invalid_configs_are_refused_naming_file_and_key),
            cmocka_unit_test(missing_config_file_is_named),
            cmocka_unit_test(defaults_apply_when_keys_are_absent),
            cmocka_unit_test(kafka_conf_refuses_plaintext_without_insecure_dev),
            cmocka_unit_test(
                kafka_conf_default_is_verified_tls_with_anssi_suites),
            cmocka_unit_test(
                kafka_conf_refuses_security_settings_in_properties),
        };

        return cmocka_run_group_tests(tests, setup, teardown);
}
