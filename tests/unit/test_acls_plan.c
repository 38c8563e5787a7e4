/*
 * The ACLs the platform and the grants imply, and the plan against a
 * cluster's actual ACLs (R3.7-02 least privilege, R5.4-03...05): holders
 * only write their input, reusers only read their own stream (from their
 * declared IPs), a revoked grant loses its read access, and ACLs that
 * sharebus did not create are reported, never planned for deletion.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <sys/stat.h>
#include <unistd.h>

#include "acls.h"
#include "testutil.h"

static char dir[128];

static void write_file(const char *name, const char *text)
{
        char path[300];
        FILE *fp;

        snprintf(path, sizeof(path), "%s/%s", dir, name);
        fp = fopen(path, "w");
        assert_non_null(fp);
        fputs(text, fp);
        fclose(fp);
}

static const char *grant_a =
    "{\"id\": \"g-a\", \"reuser\": \"reuser-a\", \"dataset\": "
    "\"beneficiaries\", \"purposes\": [\"p\"], \"legal_basis\": \"x\", "
    "\"status\": \"approved\", \"allowed_ips\": [\"203.0.113.7\", "
    "\"203.0.113.8\"], \"fields\": {\"postcode\": \"keep\"}}";
static const char *grant_b_fmt =
    "{\"id\": \"g-b\", \"reuser\": \"reuser-b\", \"dataset\": "
    "\"beneficiaries\", \"purposes\": [\"p\"], \"legal_basis\": \"x\", "
    "\"status\": \"%s\", \"fields\": {\"benefit\": \"keep\"}}";

static sb_platform_t *load(const char *b_status)
{
        char text[1024], path[300], errstr[512] = "";
        sb_platform_t *pf;

        snprintf(text, sizeof(text),
                 "{\"gateway\": [\"sb-gateway.g1\"], \"datasets\": "
                 "{\"beneficiaries\": {\"holders\": [\"holder.g1\"]}}, "
                 "\"reusers\": {\"reuser-a\": {\"principals\": "
                 "[\"reuser-a.g1\", \"reuser-a.g2\"]}, \"reuser-b\": "
                 "{\"principals\": [\"reuser-b.g4\"]}}, \"grants_dir\": "
                 "\"%s/grants\", \"schemas_dir\": \"%s\", "
                 "\"replication_factor\": 1}",
                 dir, SB_SCHEMAS_DIR);
        write_file("platform.json", text);
        write_file("grants/a.json", grant_a);
        snprintf(text, sizeof(text), grant_b_fmt, b_status);
        write_file("grants/b.json", text);
        snprintf(path, sizeof(path), "%s/platform.json", dir);
        pf = sb_platform_load(path, errstr, sizeof(errstr));
        if (!pf)
                fail_msg("platform: %s", errstr);
        return pf;
}

static int setup(void **state)
{
        char grants[200];

        (void)state;
        snprintf(dir, sizeof(dir), "/tmp/sb-test-acls-XXXXXX");
        assert_non_null(mkdtemp(dir));
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

/* Every ACL a principal has, formatted, newline-separated. */
static void acls_of(const sb_acl_set_t *set, const char *principal, char *out,
                    size_t size)
{
        char buf[512];
        size_t i, len = 0;

        out[0] = '\0';
        for (i = 0; i < set->cnt; i++) {
                if (strcmp(set->v[i].principal, principal))
                        continue;
                sb_acl_format(&set->v[i], buf, sizeof(buf));
                len += (size_t)snprintf(out + len, size - len, "%s\n", buf);
        }
}

static void holder_may_only_write_its_input_topic(void **state)
{
        sb_platform_t *pf = load("approved");
        sb_acl_set_t set = {0};
        char errstr[512], got[4096];

        (void)state;
        assert_int_equal(SB_OK,
                         sb_acls_desired(pf, &set, errstr, sizeof(errstr)));
        acls_of(&set, "User:holder.g1", got, sizeof(got));
        assert_string_equal(
            "ALLOW User:holder.g1 WRITE TOPIC sb.in.beneficiaries (LITERAL) "
            "from *\n"
            "ALLOW User:holder.g1 DESCRIBE TOPIC sb.in.beneficiaries "
            "(LITERAL) from *\n"
            "ALLOW User:holder.g1 WRITE TransactionalId "
            "sb-holder-beneficiaries (LITERAL) from *\n",
            got);
        sb_acl_set_release(&set);
        sb_platform_destroy(pf);
}

static void reuser_reads_only_its_stream_from_its_declared_ips(void **state)
{
        sb_platform_t *pf = load("approved");
        sb_acl_set_t set = {0};
        char errstr[512], got[8192];
        size_t i;

        (void)state;
        assert_int_equal(SB_OK,
                         sb_acls_desired(pf, &set, errstr, sizeof(errstr)));
        acls_of(&set, "User:reuser-a.g2", got, sizeof(got));
        assert_string_equal(
            "ALLOW User:reuser-a.g2 WRITE TOPIC sb.ack.reuser-a (LITERAL) "
            "from *\n"
            "ALLOW User:reuser-a.g2 DESCRIBE TOPIC sb.ack.reuser-a (LITERAL) "
            "from *\n"
            "ALLOW User:reuser-a.g2 READ TOPIC sb.notice.reuser-a (LITERAL) "
            "from *\n"
            "ALLOW User:reuser-a.g2 DESCRIBE TOPIC sb.notice.reuser-a "
            "(LITERAL) from *\n"
            "ALLOW User:reuser-a.g2 READ TOPIC sb.out.reuser-a.beneficiaries "
            "(LITERAL) from 203.0.113.7\n"
            "ALLOW User:reuser-a.g2 READ TOPIC sb.out.reuser-a.beneficiaries "
            "(LITERAL) from 203.0.113.8\n"
            "ALLOW User:reuser-a.g2 DESCRIBE TOPIC "
            "sb.out.reuser-a.beneficiaries (LITERAL) from 203.0.113.7\n"
            "ALLOW User:reuser-a.g2 DESCRIBE TOPIC "
            "sb.out.reuser-a.beneficiaries (LITERAL) from 203.0.113.8\n"
            "ALLOW User:reuser-a.g2 READ GROUP sb-reuser-reuser-a (LITERAL) "
            "from 203.0.113.7\n"
            "ALLOW User:reuser-a.g2 READ GROUP sb-reuser-reuser-a (LITERAL) "
            "from 203.0.113.8\n",
            got);
        /* No principal but the gateway reaches another reuser's stream. */
        for (i = 0; i < set.cnt; i++) {
                const sb_acl_t *a = &set.v[i];

                if (!strcmp(a->name, "sb.out.reuser-b.beneficiaries"))
                        assert_true(
                            !strcmp(a->principal, "User:reuser-b.g4") ||
                            !strcmp(a->principal, "User:sb-gateway.g1"));
                if (!strncmp(a->principal, "User:reuser-", 12))
                        assert_int_not_equal(RD_KAFKA_ACL_OPERATION_ALL, a->op);
        }
        sb_acl_set_release(&set);
        sb_platform_destroy(pf);
}

static void
revoked_grant_loses_read_access_but_gateway_keeps_write(void **state)
{
        sb_platform_t *pf = load("revoked");
        sb_acl_set_t set = {0};
        char errstr[512];
        size_t i, gateway_writes = 0;

        (void)state;
        assert_int_equal(SB_OK,
                         sb_acls_desired(pf, &set, errstr, sizeof(errstr)));
        for (i = 0; i < set.cnt; i++) {
                const sb_acl_t *a = &set.v[i];

                if (strcmp(a->name, "sb.out.reuser-b.beneficiaries") &&
                    strcmp(a->name, "sb-reuser-reuser-b"))
                        continue;
                if (!strcmp(a->principal, "User:reuser-b.g4"))
                        fail_msg("revoked grant still implies %s on %s",
                                 rd_kafka_AclOperation_name(a->op), a->name);
                gateway_writes += a->op == RD_KAFKA_ACL_OPERATION_WRITE;
        }
        assert_int_equal(1, gateway_writes);
        sb_acl_set_release(&set);
        sb_platform_destroy(pf);
}

/*
 * CNIL R4.3-12, R4.3-16: the gateway resumes its audit hash chain after a
 * restart by reading the end of _sb.audit, so it may read that topic (and
 * still write it); it never gets to alter or delete it.
 */
static void gateway_may_read_and_write_the_audit_log(void **state)
{
        sb_platform_t *pf = load("approved");
        sb_acl_set_t set = {0};
        char errstr[512], buf[512], got[1024];
        size_t i, len = 0;

        (void)state;
        assert_int_equal(SB_OK,
                         sb_acls_desired(pf, &set, errstr, sizeof(errstr)));
        got[0] = '\0';
        for (i = 0; i < set.cnt; i++) {
                if (strcmp(set.v[i].name, "_sb.audit"))
                        continue;
                sb_acl_format(&set.v[i], buf, sizeof(buf));
                len +=
                    (size_t)snprintf(got + len, sizeof(got) - len, "%s\n", buf);
        }
        assert_string_equal(
            "ALLOW User:sb-gateway.g1 READ TOPIC _sb.audit (LITERAL) from *\n"
            "ALLOW User:sb-gateway.g1 WRITE TOPIC _sb.audit (LITERAL) from *\n"
            "ALLOW User:sb-gateway.g1 DESCRIBE TOPIC _sb.audit (LITERAL) from "
            "*\n",
            got);
        sb_acl_set_release(&set);
        sb_platform_destroy(pf);
}

/* Quotas: records over a grant's rate wait on _sb.hold.<grant id>, which
 * the gateway writes and reads back, and no one else may touch. */
static void gateway_may_read_and_write_the_hold_topics_only(void **state)
{
        sb_platform_t *pf = load("approved");
        sb_acl_set_t set = {0};
        char errstr[512], buf[512], got[1024];
        size_t i, len = 0;

        (void)state;
        assert_int_equal(SB_OK,
                         sb_acls_desired(pf, &set, errstr, sizeof(errstr)));
        got[0] = '\0';
        for (i = 0; i < set.cnt; i++) {
                if (strncmp(set.v[i].name, "_sb.hold.", 9))
                        continue;
                sb_acl_format(&set.v[i], buf, sizeof(buf));
                len +=
                    (size_t)snprintf(got + len, sizeof(got) - len, "%s\n", buf);
        }
        assert_string_equal(
            "ALLOW User:sb-gateway.g1 READ TOPIC _sb.hold. (PREFIXED) from *\n"
            "ALLOW User:sb-gateway.g1 WRITE TOPIC _sb.hold. (PREFIXED) from *\n"
            "ALLOW User:sb-gateway.g1 DESCRIBE TOPIC _sb.hold. (PREFIXED) from "
            "*\n",
            got);
        sb_acl_set_release(&set);
        sb_platform_destroy(pf);
}

/* A grant with a rate gets a hold topic, partitioned like its input (a
 * record waits in the partition of its input); a grant without gets none. */
static void platform_plans_a_hold_topic_for_each_grant_with_a_rate(void **st)
{
        sb_platform_t *pf = load("approved");
        sb_topic_spec_t *specs = NULL;
        char errstr[512] = "", path[300];
        size_t i, cnt = 0, holds = 0;

        (void)st;
        sb_platform_destroy(pf);
        write_file("grants/b.json",
                   "{\"id\": \"g-b\", \"reuser\": \"reuser-b\", "
                   "\"dataset\": \"beneficiaries\", \"purposes\": [\"p\"], "
                   "\"legal_basis\": \"x\", \"status\": \"approved\", "
                   "\"rate\": {\"records_per_day\": 10}, \"fields\": "
                   "{\"benefit\": \"keep\"}}");
        snprintf(path, sizeof(path), "%s/platform.json", dir);
        pf = sb_platform_load(path, errstr, sizeof(errstr));
        if (!pf)
                fail_msg("platform: %s", errstr);
        assert_int_equal(SB_OK, sb_platform_topics(pf, &specs, &cnt, errstr,
                                                   sizeof(errstr)));
        for (i = 0; i < cnt; i++) {
                if (strncmp(specs[i].name, "_sb.hold.", 9))
                        continue;
                holds++;
                assert_string_equal("_sb.hold.g-b", specs[i].name);
                assert_string_equal("hold", specs[i].role);
                assert_string_equal("delete", specs[i].cleanup_policy);
                assert_int_equal(pf->partitions, specs[i].partitions);
                assert_int_equal(pf->output_retention_ms,
                                 specs[i].retention_ms);
        }
        assert_int_equal(1, holds);
        sb_topic_specs_destroy(specs, cnt);
        sb_platform_destroy(pf);
}

/* CNIL R4.3-12: `admin acls apply` records each ACL it creates or
 * deletes, with who did it, as an acl.change entry. */
static void
acl_change_audit_entry_names_principal_resource_and_operation(void **state)
{
        sb_acl_t a = {RD_KAFKA_RESOURCE_TOPIC,
                      "sb.out.reuser-a.beneficiaries",
                      RD_KAFKA_RESOURCE_PATTERN_LITERAL,
                      "User:reuser-a.g2",
                      "203.0.113.7",
                      RD_KAFKA_ACL_OPERATION_READ,
                      RD_KAFKA_ACL_PERMISSION_TYPE_ALLOW};
        json_t *e = sb_acl_audit_entry("sharebus://admin/adm", &a, "deleted");
        char *text;

        (void)state;
        assert_non_null(e);
        text = json_dumps(e, JSON_COMPACT | JSON_SORT_KEYS);
        assert_string_equal(
            "{\"author\":\"sharebus://admin/adm\",\"change\":\"deleted\","
            "\"host\":\"203.0.113.7\",\"op\":\"acl.change\",\"operation\":"
            "\"READ\",\"pattern\":\"LITERAL\",\"permission\":\"ALLOW\","
            "\"principal\":\"User:reuser-a.g2\",\"resource_name\":"
            "\"sb.out.reuser-a.beneficiaries\",\"resource_type\":\"TOPIC\"}",
            text);
        free(text);
        json_decref(e);
}

static void plan_creates_missing_deletes_stale_and_reports_foreign(void **state)
{
        sb_platform_t *pf = load("approved");
        sb_acl_set_t desired = {0}, actual = {0};
        sb_acl_plan_t plan;
        char errstr[512], buf[512];
        size_t i;

        (void)state;
        assert_int_equal(SB_OK,
                         sb_acls_desired(pf, &desired, errstr, sizeof(errstr)));
        /* The cluster has all but the first desired ACL (and none of the
         * transactional-id ones, which librdkafka cannot see) ... */
        for (i = 1; i < desired.cnt; i++)
                if (desired.v[i].restype != SB_ACL_RESOURCE_TRANSACTIONAL_ID)
                        assert_int_equal(
                            SB_OK,
                            sb_acl_set_add(
                                &actual, desired.v[i].restype,
                                desired.v[i].name, desired.v[i].pattern,
                                desired.v[i].principal, desired.v[i].host,
                                desired.v[i].op, desired.v[i].perm));
        /* ... plus a stale one of a sharebus principal, and a hand-made one
         * of a principal sharebus never issued. */
        assert_int_equal(SB_OK,
                         sb_acl_set_add(&actual, RD_KAFKA_RESOURCE_TOPIC,
                                        "sb.out.reuser-b.beneficiaries",
                                        RD_KAFKA_RESOURCE_PATTERN_LITERAL,
                                        "User:reuser-a.g1", "*",
                                        RD_KAFKA_ACL_OPERATION_READ,
                                        RD_KAFKA_ACL_PERMISSION_TYPE_ALLOW));
        assert_int_equal(SB_OK,
                         sb_acl_set_add(&actual, RD_KAFKA_RESOURCE_TOPIC,
                                        "sb.out.reuser-a.beneficiaries",
                                        RD_KAFKA_RESOURCE_PATTERN_LITERAL,
                                        "User:mallory", "*",
                                        RD_KAFKA_ACL_OPERATION_READ,
                                        RD_KAFKA_ACL_PERMISSION_TYPE_ALLOW));
        assert_int_equal(SB_OK, sb_acls_plan(&desired, &actual, &plan, errstr,
                                             sizeof(errstr)));
        assert_int_equal(1, plan.create.cnt);
        sb_acl_format(&plan.create.v[0], buf, sizeof(buf));
        sb_acl_format(&desired.v[0], errstr, sizeof(errstr));
        assert_string_equal(errstr, buf);
        assert_int_equal(1, plan.remove.cnt);
        sb_acl_format(&plan.remove.v[0], buf, sizeof(buf));
        assert_string_equal("ALLOW User:reuser-a.g1 READ TOPIC "
                            "sb.out.reuser-b.beneficiaries (LITERAL) from *",
                            buf);
        assert_int_equal(1, plan.unmanaged.cnt);
        sb_acl_format(&plan.unmanaged.v[0], buf, sizeof(buf));
        assert_string_equal("ALLOW User:mallory READ TOPIC "
                            "sb.out.reuser-a.beneficiaries (LITERAL) from *",
                            buf);
        assert_true(plan.external.cnt > 0);
        sb_acl_plan_release(&plan);
        sb_acl_set_release(&desired);
        sb_acl_set_release(&actual);
        sb_platform_destroy(pf);
}

static void platform_refuses_a_grant_for_an_undeclared_reuser(void **state)
{
        char text[1024], path[300], errstr[512] = "";

        (void)state;
        snprintf(text, sizeof(text),
                 "{\"gateway\": [\"sb-gateway.g1\"], \"datasets\": "
                 "{\"beneficiaries\": {\"holders\": [\"holder.g1\"]}}, "
                 "\"reusers\": {\"reuser-a\": {\"principals\": "
                 "[\"reuser-a.g1\"]}}, \"grants_dir\": \"%s/grants\", "
                 "\"schemas_dir\": \"%s\"}",
                 dir, SB_SCHEMAS_DIR);
        write_file("p2.json", text);
        write_file("grants/b.json", "{\"id\": \"g-b\", \"reuser\": "
                                    "\"reuser-b\", \"dataset\": "
                                    "\"beneficiaries\", \"purposes\": [\"p\"], "
                                    "\"legal_basis\": \"x\", \"status\": "
                                    "\"approved\", \"fields\": {\"benefit\": "
                                    "\"keep\"}}");
        snprintf(path, sizeof(path), "%s/p2.json", dir);
        assert_null(sb_platform_load(path, errstr, sizeof(errstr)));
        snprintf(text, sizeof(text),
                 "grant '%s/grants/b.json': reuser 'reuser-b' is not declared "
                 "in platform '%s' (its principals are needed for the ACLs)",
                 dir, path);
        assert_string_equal(text, errstr);
}

static void principals_must_carry_a_credential_generation(void **state)
{
        (void)state;
        assert_true(sb_principal_is_generational("energy-desk.g1"));
        assert_true(sb_principal_is_generational("a.g12"));
        assert_false(sb_principal_is_generational("energy-desk"));
        assert_false(sb_principal_is_generational("mallory"));
        assert_false(sb_principal_is_generational("energy-desk.g"));
        assert_false(sb_principal_is_generational("Energy.g1"));
        assert_false(sb_principal_is_generational("CN=x.g1"));
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(holder_may_only_write_its_input_topic),
            cmocka_unit_test(
                reuser_reads_only_its_stream_from_its_declared_ips),
            cmocka_unit_test(
                revoked_grant_loses_read_access_but_gateway_keeps_write),
            cmocka_unit_test(gateway_may_read_and_write_the_audit_log),
            cmocka_unit_test(gateway_may_read_and_write_the_hold_topics_only),
            cmocka_unit_test(
                platform_plans_a_hold_topic_for_each_grant_with_a_rate),
            cmocka_unit_test(
                acl_change_audit_entry_names_principal_resource_and_operation),
            cmocka_unit_test(
                plan_creates_missing_deletes_stale_and_reports_foreign),
            cmocka_unit_test(platform_refuses_a_grant_for_an_undeclared_reuser),
            cmocka_unit_test(principals_must_carry_a_credential_generation),
        };

        return cmocka_run_group_tests(tests, setup, teardown);
}
