/*
 * DESIGN.md §8, §9; CNIL R3.7-09, R4.3-12: _sb.audit records every
 * certificate the platform CA issues, once, even when the CA is kept
 * offline, and no entry holds key material.
 *
 * Through the built binary, with a CA made by `admin ca init`:
 *   - `admin cert issue` without --config writes the files and the
 *     register only, and says on stderr how to publish the issue;
 *   - `admin cert issue --config admin.json` also writes a cert.issue
 *     entry in the chain sb-admin-ca;
 *   - `admin cert publish` adds the entry of the first certificate only,
 *     a second publish adds nothing;
 *   - _sb.audit then holds one cert.issue entry per serial of the
 *     register, with its principal, validity, kind and fingerprint, no
 *     private key; `sharebus audit verify` (no --allow-unchained) finds
 *     the log intact, the chain closed by a checkpoint signed by the admin
 *     config's audit_key_file.
 */
#include <limits.h>
#include <sys/wait.h>
#include <unistd.h>

#include "certaudit.h"
#include "cli.h"
#include "proc.h"
#include "testutil.h"

/* The cert.issue entries of _sb.audit, by serial (new reference); fails
 * on a serial recorded twice or an entry holding key material. */
static json_t *cert_entries(sb_testenv_t *te)
{
        json_t *values = sb_testenv_audit_values(te), *out = json_object(), *x;
        size_t k;

        json_array_foreach(values, k, x)
        {
                const char *text = json_string_value(x);
                json_t *e = json_loads(text, 0, NULL);
                const char *op = json_string_value(json_object_get(e, "op"));
                const char *serial =
                    json_string_value(json_object_get(e, "serial"));

                SB_CHECK(e && op, "entry %zu without op: %s", k, text);
                SB_CHECK(!strstr(text, "PRIVATE") && !strstr(text, "BEGIN"),
                         "an entry holds PEM material: %s", text);
                if (strcmp(op, SB_CERTAUDIT_OP)) {
                        json_decref(e);
                        continue;
                }
                SB_CHECK_STR(SB_CERTAUDIT_CHAIN,
                             json_string_value(json_object_get(e, "chain")),
                             "cert.issue chain");
                SB_CHECK(serial && !json_object_get(out, serial),
                         "cert.issue without a serial, or twice: %s", text);
                json_object_set_new(out, serial, e);
        }
        json_decref(values);
        return out;
}

/* The register as an object serial -> line (new reference). */
static json_t *register_lines(sb_testenv_t *te)
{
        char path[600], line[4096];
        json_t *out = json_object(), *l;
        FILE *fp;

        snprintf(path, sizeof(path), "%s/ca/issued.ndjson", te->dir);
        fp = fopen(path, "r");
        SB_CHECK(fp, "cannot read %s", path);
        while (fgets(line, sizeof(line), fp)) {
                l = json_loads(line, 0, NULL);
                SB_CHECK(l && json_string_value(json_object_get(l, "serial")),
                         "register line: %s", line);
                json_object_set_new(
                    out, json_string_value(json_object_get(l, "serial")), l);
        }
        fclose(fp);
        return out;
}

int main(void)
{
        char out[32768], path[600], pub_path[600], pub[128];
        json_t *j, *entries, *reg, *l, *e;
        const char *serial;
        sb_testenv_t te;
        char *text;
        FILE *fp;
        int rc;

        sb_testenv_init(&te);
        snprintf(path, sizeof(path), "%s/admin-audit.key", te.dir);
        snprintf(pub_path, sizeof(pub_path), "%s/admin-audit.pub", te.dir);
        sb_test_keypair(path, pub_path);
        fp = fopen(pub_path, "r");
        SB_CHECK(fp && fgets(pub, sizeof(pub), fp), "cannot read %s", pub_path);
        fclose(fp);
        pub[strcspn(pub, "\n")] = '\0';
        snprintf(out, sizeof(out),
                 "{\"gateway\": [\"sb-gateway.g1\"], \"datasets\": "
                 "{\"beneficiaries\": {\"holders\": [\"holder.g1\"]}}, "
                 "\"reusers\": {\"lab\": {\"principals\": [\"lab.g1\"]}}, "
                 "\"grants_dir\": \"%s\", \"schemas_dir\": \"%s\", "
                 "\"replication_factor\": 1, \"audit_keys\": [\"%s\"]}",
                 te.grants_dir, SB_SCHEMAS_DIR, pub);
        j = json_pack("{s:o, s:s, s:s}", "kafka",
                      sb_mockenv_kafka_json(te.mock), "platform",
                      sb_testenv_file(&te, "platform.json", out),
                      "audit_key_file", path);
        text = json_dumps(j, JSON_COMPACT);
        sb_testenv_file(&te, "admin.json", text);
        free(text);
        json_decref(j);

        rc = sb_testenv_cli(&te, "admin ca init --dir ca", out, sizeof(out));
        sb_test_expect(rc, out, 0, "created CA", "ca init");

        /* 1. Offline: the register only, and how to publish. */
        rc = sb_testenv_cli(&te, "admin cert issue --dir ca --principal lab.g1",
                            out, sizeof(out));
        sb_test_expect(rc, out, 0, "not in _sb.audit", "offline issue");
        sb_test_expect(rc, out, 0, "admin cert publish --dir ca",
                       "offline issue");
        entries = cert_entries(&te);
        SB_CHECK_INT(0, json_object_size(entries),
                     "cert.issue entries after an offline issue");
        json_decref(entries);

        /* 2. With --config: recorded at once. */
        rc = sb_testenv_cli(
            &te,
            "admin cert issue --dir ca --principal city.g1 --config "
            "admin.json",
            out, sizeof(out));
        sb_test_expect(rc, out, 0, "recorded in _sb.audit", "issue --config");
        entries = cert_entries(&te);
        SB_CHECK_INT(1, json_object_size(entries),
                     "cert.issue entries after issue --config");
        json_decref(entries);

        /* 3. publish adds the offline one; again adds nothing. */
        rc = sb_testenv_cli(&te,
                            "admin cert publish --dir ca --config admin.json",
                            out, sizeof(out));
        sb_test_expect(rc, out, 0, "recorded 1 certificate(s)",
                       "first publish");
        sb_test_expect(rc, out, 0, "1 already there", "first publish");
        rc = sb_testenv_cli(&te,
                            "admin cert publish --dir ca --config admin.json",
                            out, sizeof(out));
        sb_test_expect(rc, out, 0, "recorded 0 certificate(s)",
                       "second publish");
        sb_test_expect(rc, out, 0, "2 already there", "second publish");
        rc = sb_testenv_cli(&te, "admin cert publish --dir ca", out,
                            sizeof(out));
        sb_test_expect(rc, out, SB_EXIT_USAGE, "--config",
                       "publish without config");

        /* 4. One entry per certificate of the register, as registered. */
        entries = cert_entries(&te);
        reg = register_lines(&te);
        SB_CHECK_INT(2, json_object_size(reg), "certificates in the register");
        SB_CHECK_INT(2, json_object_size(entries), "cert.issue entries");
        json_object_foreach(reg, serial, l)
        {
                static const char *const same[] = {"principal", "not_before",
                                                   "not_after"};
                size_t i;

                e = json_object_get(entries, serial);
                SB_CHECK(e, "no cert.issue entry for serial %s", serial);
                for (i = 0; i < sizeof(same) / sizeof(same[0]); i++)
                        SB_CHECK_STR(
                            json_string_value(json_object_get(l, same[i])),
                            json_string_value(json_object_get(e, same[i])),
                            same[i]);
                SB_CHECK_STR(
                    json_string_value(json_object_get(l, "sha256")),
                    json_string_value(json_object_get(e, "fingerprint_sha256")),
                    "fingerprint_sha256");
                SB_CHECK(json_is_false(json_object_get(e, "server")),
                         "server: expected false for %s", serial);
                SB_CHECK_STR("sharebus://admin/sharebus-admin",
                             json_string_value(json_object_get(e, "author")),
                             "author");
        }
        json_decref(reg);
        json_decref(entries);

        /* 5. The whole log verifies, unchained entries not allowed. */
        rc = sb_testenv_cli(&te, "audit verify --config admin.json", out,
                            sizeof(out));
        sb_test_expect(rc, out, 0, "\nintact\n", "audit verify");
        SB_CHECK(strstr(out, SB_CERTAUDIT_CHAIN) && !strstr(out, "unchained") &&
                     !strstr(out, "warning: chain " SB_CERTAUDIT_CHAIN),
                 "audit verify: expected the chain %s, closed by a "
                 "checkpoint:\n%s",
                 SB_CERTAUDIT_CHAIN, out);
        printf("2 certificates, one issued offline then published, one "
               "with --config: one cert.issue entry each; the log is "
               "intact\n");
        sb_testenv_release(&te);
        return 0;
}
