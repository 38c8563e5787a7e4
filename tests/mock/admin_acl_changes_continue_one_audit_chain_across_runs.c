/*
 * DESIGN.md §8, §9; CNIL R4.3-12, R4.3-13, R4.3-16: what `admin acls
 * apply` changes is in _sb.audit, chained. The ACL changes themselves go
 * through the Admin API, which librdkafka 2.0.2's mock cluster does not
 * serve, so this test drives the writer `acls apply` uses
 * (admin/auditlog.h) with the acl.change entries of the ACLs a platform
 * implies: two runs (two writers with the transactional id sb-admin-acls,
 * one after the other, as two `acls apply` would be) continue one chain,
 * each ending with a checkpoint signed by the admin's audit_key_file, and
 * the log verifies without allow-unchained.
 */
#include "acls.h"
#include "audit.h"
#include "auditlog.h"
#include "sign.h"
#include "testutil.h"

int main(void)
{
        char errstr[1024], pf_text[2048], keyfile[600], pubfile[600];
        sb_admin_cfg_t cfg;
        sb_acl_set_t set = {0};
        sb_audit_report_t rep;
        sb_platform_t *pf;
        sb_auditlog_t *al;
        sb_signkey_t *key;
        sb_testenv_t te;
        json_t *entries[2], *values, *j;
        size_t i, n0;
        int run;

        sb_testenv_init(&te);
        key = sb_signkey_generate();
        SB_CHECK(key, "out of memory");
        snprintf(keyfile, sizeof(keyfile), "%s/admin-audit.key", te.dir);
        snprintf(pubfile, sizeof(pubfile), "%s/admin-audit.pub", te.dir);
        SB_OK_OR_FAIL(
            sb_signkey_save(key, keyfile, pubfile, errstr, sizeof(errstr)),
            errstr);
        snprintf(pf_text, sizeof(pf_text),
                 "{\"gateway\": [\"sb-gateway.g1\"], \"datasets\": "
                 "{\"beneficiaries\": {\"holders\": [\"holder.g1\"]}}, "
                 "\"grants_dir\": \"%s\", \"schemas_dir\": \"%s\", "
                 "\"replication_factor\": 1}",
                 te.grants_dir, SB_SCHEMAS_DIR);
        pf = sb_platform_load(sb_testenv_file(&te, "platform.json", pf_text),
                              errstr, sizeof(errstr));
        SB_CHECK(pf, "platform: %s", errstr);
        SB_OK_OR_FAIL(sb_acls_desired(pf, &set, errstr, sizeof(errstr)),
                      errstr);
        SB_CHECK(set.cnt >= 4, "ACLs implied: %zu", set.cnt);

        memset(&cfg, 0, sizeof(cfg));
        j = json_pack("{s:o, s:s}", "kafka", sb_mockenv_kafka_json(te.mock),
                      "audit_key_file", keyfile);
        SB_OK_OR_FAIL(sb_config_apply(j, "admin.json", sb_admin_cfg_table, &cfg,
                                      errstr, sizeof(errstr)),
                      errstr);
        json_decref(j);

        /* Run 1 creates the first half of the ACLs, run 2 deletes two of
         * them and creates the rest. */
        entries[0] = json_array();
        entries[1] = json_array();
        n0 = set.cnt / 2;
        for (i = 0; i < set.cnt; i++)
                json_array_append_new(
                    entries[i < n0 ? 0 : 1],
                    sb_acl_audit_entry("sharebus://admin/sharebus-admin",
                                       &set.v[i], "created"));
        for (i = 0; i < 2; i++)
                json_array_append_new(
                    entries[1],
                    sb_acl_audit_entry("sharebus://admin/sharebus-admin",
                                       &set.v[i], "deleted"));
        for (run = 0; run < 2; run++) {
                al = sb_auditlog_new(&cfg, "sb-admin-acls", errstr,
                                     sizeof(errstr));
                SB_CHECK(al, "run %d: %s", run + 1, errstr);
                SB_OK_OR_FAIL(
                    sb_auditlog_write(al, entries[run], errstr, sizeof(errstr)),
                    errstr);
                sb_auditlog_destroy(al);
        }

        values = sb_testenv_audit_values(&te);
        sb_test_audit_intact(values, sb_signkey_public(key), &rep);
        SB_CHECK_INT(1, rep.chain_cnt, "chains");
        SB_CHECK_STR("sb-admin-acls", rep.chains[0].chain, "chain id");
        SB_CHECK_INT(set.cnt + 2 + 2, rep.entries,
                     "entries: one per ACL change, a checkpoint per run");
        SB_CHECK_INT(rep.entries, rep.chains[0].last_seq,
                     "last seq: the second run continued the first's chain");
        SB_CHECK_INT(2, rep.chains[0].checkpoints, "checkpoints (one per run)");
        SB_CHECK_INT(0, rep.chains[0].uncovered, "entries not covered");
        j = json_loads(json_string_value(json_array_get(values, 0)), 0, NULL);
        SB_CHECK_STR("acl.change", json_string_value(json_object_get(j, "op")),
                     "first entry op");
        SB_CHECK(json_is_string(json_object_get(j, "principal")) &&
                     json_is_string(json_object_get(j, "resource_name")) &&
                     json_is_string(json_object_get(j, "operation")),
                 "acl.change fields: %s",
                 json_string_value(json_array_get(values, 0)));
        json_decref(j);
        printf("%zu acl.change entries in 2 runs: one chain, 2 signed "
               "checkpoints, intact\n",
               set.cnt + 2);

        sb_audit_report_release(&rep);
        json_decref(values);
        json_decref(entries[0]);
        json_decref(entries[1]);
        sb_config_release(sb_admin_cfg_table, &cfg);
        sb_acl_set_release(&set);
        sb_platform_destroy(pf);
        sb_signkey_destroy(key);
        sb_testenv_release(&te);
        return 0;
}
