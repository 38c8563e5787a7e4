/*
 * DESIGN.md §5, §9; CNIL R4.3-12, R4.3-13, R4.3-16, R5.4-18: who changed
 * which grant, and when the gateway applied the change, is in _sb.audit,
 * in hash chains that verify without allow-unchained.
 *
 * Through the built binary, `sharebus admin grants apply` publishes grant
 * g-a, a second apply (another process) adds g-b, and `admin grants revoke
 * g-a` revokes it; each run continues the chain of the transactional id
 * sb-admin-grants, read back from _sb.audit, and ends with a checkpoint
 * signed by the admin config's audit_key_file. Between them a gateway
 * following _sb.grants (with its own audit key) shares records and writes
 * grant.apply entries for the changes it applies while running: g-b
 * "new", g-a "revoked". Then `sharebus audit verify` (no
 * --allow-unchained), trusting the platform's audit_keys, reports the log
 * intact with both chains, and the admin chain holds the three
 * grant.change entries at seq 1..n without gap.
 */
#include <limits.h>
#include <sys/wait.h>
#include <unistd.h>

#include "audit.h"
#include "envelope.h"
#include "proc.h"
#include "sample.h"
#include "sign.h"
#include "testutil.h"

static const char *grant_a =
    "{\"id\": \"g-a\", \"reuser\": \"lab\", \"dataset\": \"beneficiaries\", "
    "\"purposes\": [\"research\"], \"legal_basis\": \"gdpr-6-1-e\", "
    "\"status\": \"approved\", \"fields\": {\"postcode\": \"keep\"}}";
static const char *grant_b =
    "{\"id\": \"g-b\", \"reuser\": \"city\", \"dataset\": \"beneficiaries\", "
    "\"purposes\": [\"housing\"], \"legal_basis\": \"gdpr-6-1-c\", "
    "\"status\": \"approved\", \"fields\": {\"postcode\": \"keep\"}}";

/* Writes an Ed25519 key pair dir/<name>.key, .pub; returns the public key
 * line in `pub`. */
static void keypair(sb_testenv_t *te, const char *name, char *pub, size_t size)
{
        char sec[600], pubf[600], errstr[512];
        sb_signkey_t *k = sb_signkey_generate();
        FILE *fp;

        SB_CHECK(k, "out of memory");
        snprintf(sec, sizeof(sec), "%s/%s.key", te->dir, name);
        snprintf(pubf, sizeof(pubf), "%s/%s.pub", te->dir, name);
        SB_OK_OR_FAIL(sb_signkey_save(k, sec, pubf, errstr, sizeof(errstr)),
                      errstr);
        sb_signkey_destroy(k);
        fp = fopen(pubf, "r");
        SB_CHECK(fp && fgets(pub, (int)size, fp), "cannot read %s", pubf);
        fclose(fp);
        pub[strcspn(pub, "\n")] = '\0';
}

static void run_gateway(sb_gateway_t *gw)
{
        char errstr[1024];

        SB_OK_OR_FAIL(
            sb_gateway_run(gw, NULL, SB_TEST_IDLE_MS, errstr, sizeof(errstr)),
            errstr);
}

int main(void)
{
        char errstr[1024], out[32768], admin_pub[128], gw_pub[128];
        char pf_text[4096], path[600], input[600];
        const char *pf_path,
            *want_apply[2][2] = {{"g-b", "new"}, {"g-a", "revoked"}};
        int64_t admin_seq = 0;
        size_t k, changes = 0, applies = 0, admin_entries = 0;
        sb_holder_stats_t hs;
        json_t *j, *values, *x;
        sb_gateway_t *gw;
        sb_holder_t *h;
        sb_testenv_t te;
        char *text;
        FILE *fp;
        int rc;

        sb_testenv_init(&te);
        SB_OK_OR_FAIL(
            sb_mockenv_topic(te.mock, "_sb.grants", 1, errstr, sizeof(errstr)),
            errstr);
        keypair(&te, "admin-audit", admin_pub, sizeof(admin_pub));
        keypair(&te, "gw-audit", gw_pub, sizeof(gw_pub));
        snprintf(pf_text, sizeof(pf_text),
                 "{\"gateway\": [\"sb-gateway.g1\"], \"datasets\": "
                 "{\"beneficiaries\": {\"holders\": [\"holder.g1\"]}}, "
                 "\"reusers\": {\"lab\": {\"principals\": [\"lab.g1\"]}, "
                 "\"city\": {\"principals\": [\"city.g1\"]}}, "
                 "\"grants_dir\": \"%s\", \"schemas_dir\": \"%s\", "
                 "\"replication_factor\": 1, \"audit_keys\": [\"%s\", "
                 "\"%s\"]}",
                 te.grants_dir, SB_SCHEMAS_DIR, admin_pub, gw_pub);
        pf_path = sb_testenv_file(&te, "platform.json", pf_text);
        snprintf(path, sizeof(path), "%s/admin-audit.key", te.dir);
        j = json_pack("{s:o, s:s, s:s}", "kafka",
                      sb_mockenv_kafka_json(te.mock), "platform", pf_path,
                      "audit_key_file", path);
        text = json_dumps(j, JSON_COMPACT);
        sb_testenv_file(&te, "admin.json", text);
        free(text);
        json_decref(j);

        /* 1. g-a published by a first apply. */
        sb_testenv_grant(&te, "a.json", grant_a);
        rc = sb_testenv_cli(&te, "admin grants apply --config admin.json", out,
                            sizeof(out));
        sb_test_expect(rc, out, 0, "applied", "first apply");

        /* 2. A gateway following _sb.grants, with its own audit key. */
        free(te.gw_cfg.grants_dir);
        te.gw_cfg.grants_dir = NULL;
        te.gw_cfg.grants_topic = strdup("_sb.grants");
        snprintf(path, sizeof(path), "%s/gw-audit.key", te.dir);
        te.gw_cfg.audit_key_file = strdup(path);
        gw = sb_gateway_new(&te.gw_cfg, te.key, errstr, sizeof(errstr));
        SB_CHECK(gw, "gateway: %s", errstr);
        h = sb_holder_new(&te.holder_cfg, "beneficiaries", errstr,
                          sizeof(errstr));
        SB_CHECK(h, "holder: %s", errstr);
        snprintf(input, sizeof(input), "%s/in.ndjson", te.dir);
        fp = fopen(input, "w");
        SB_CHECK(fp, "input");
        sb_sample_write(fp, 10, 3);
        fclose(fp);
        fp = fopen(input, "r");
        SB_OK_OR_FAIL(
            sb_holder_publish(h, fp, input, NULL, &hs, errstr, sizeof(errstr)),
            errstr);
        fclose(fp);
        run_gateway(gw);

        /* 3. A second apply adds g-b; the running gateway applies it. */
        sb_testenv_grant(&te, "b.json", grant_b);
        rc = sb_testenv_cli(&te, "admin grants apply --config admin.json", out,
                            sizeof(out));
        sb_test_expect(rc, out, 0, "applied", "second apply");
        run_gateway(gw);

        /* 4. g-a revoked; the gateway applies that too. */
        rc = sb_testenv_cli(&te, "admin grants revoke g-a --config admin.json",
                            out, sizeof(out));
        sb_test_expect(rc, out, 0, "revoked grant g-a", "revoke");
        run_gateway(gw);
        SB_CHECK_INT(2, sb_gateway_stats(gw)->grant_reloads,
                     "grant changes the gateway applied while running");
        sb_gateway_destroy(gw);
        sb_holder_destroy(h);

        /* 5. The whole log verifies, unchained entries not allowed. */
        rc = sb_testenv_cli(&te, "audit verify --config admin.json", out,
                            sizeof(out));
        sb_test_expect(rc, out, 0, "\nintact\n",
                       "audit verify (no --allow-unchained)");
        SB_CHECK(!strstr(out, "unchained"),
                 "verify reports unchained "
                 "entries:\n%s",
                 out);
        SB_CHECK(strstr(out, "sb-admin-grants") &&
                     strstr(out, "sb-gateway-sharebus-gateway"),
                 "verify names both chains:\n%s", out);

        /* 6. What the chains hold. */
        values = sb_testenv_audit_values(&te);
        json_array_foreach(values, k, x)
        {
                json_t *e = json_loads(json_string_value(x), 0, NULL);
                const char *op = json_string_value(json_object_get(e, "op"));
                const char *chain =
                    json_string_value(json_object_get(e, "chain"));

                SB_CHECK(e && op && chain, "entry %zu without op or chain: %s",
                         k, json_string_value(x));
                if (!strcmp(chain, "sb-admin-grants")) {
                        admin_entries++;
                        SB_CHECK_INT(
                            ++admin_seq,
                            json_integer_value(json_object_get(e, "seq")),
                            "admin chain seq (continued across runs)");
                }
                if (!strcmp(op, "grant.change")) {
                        SB_CHECK_STR("sb-admin-grants", chain,
                                     "grant.change chain");
                        changes++;
                } else if (!strcmp(op, "grant.apply")) {
                        SB_CHECK(applies < 2, "more than 2 grant.apply: %s",
                                 json_string_value(x));
                        SB_CHECK_STR(
                            want_apply[applies][0],
                            json_string_value(json_object_get(e, "grant")),
                            "grant.apply grant");
                        SB_CHECK_STR(
                            want_apply[applies][1],
                            json_string_value(json_object_get(e, "change")),
                            "grant.apply change");
                        SB_CHECK_STR("sb-gateway-sharebus-gateway", chain,
                                     "grant.apply chain");
                        applies++;
                }
                json_decref(e);
        }
        SB_CHECK_INT(3, changes, "grant.change entries (2 applies, 1 revoke)");
        SB_CHECK_INT(2, applies, "grant.apply entries");
        /* Each of the 3 runs ends with a checkpoint. */
        SB_CHECK_INT(6, admin_entries, "entries of the admin chain");
        printf("%zu entries: the admin chain (3 grant.change, 3 "
               "checkpoints) and the gateway's (2 grant.apply) verify "
               "without allow-unchained\n",
               json_array_size(values));
        json_decref(values);
        sb_testenv_release(&te);
        return 0;
}
