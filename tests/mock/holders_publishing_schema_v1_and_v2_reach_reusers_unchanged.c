/*
 * Schema evolution end to end: version 2 of beneficiaries drops the
 * optional phone and adds an optional preferred_language
 * (tests/data/beneficiaries.v2.avsc). One holder still publishes version
 * 1, another version 2; the gateway knows both and reads every record as
 * version 1, the schema the grant is defined on. The reuser agent, started
 * before anything was published and built on schemas/ alone (version 1),
 * stores every record of both holders under its unchanged output schema:
 * version 2 records with phone at version 1's default, null. A third
 * holder publishing a version the gateway does not know is quarantined,
 * not shared (R3.5-06 durable documented format, R3.5-07 validation,
 * R3.5-08 nothing beyond the grant, R6.2-05 up-to-date data for reusers).
 */
#include <sqlite3.h>
#include <sys/stat.h>

#include "crypto.h"
#include "sample.h"
#include "testutil.h"

#define SUBJECTS 40

static const char *grant =
    "{\"id\": \"g-evo\", \"reuser\": \"energy-desk\", \"dataset\": "
    "\"beneficiaries\", \"purposes\": [\"delivery\"], \"legal_basis\": "
    "\"gdpr-6-1-c\", \"status\": \"approved\", \"fields\": {\"first_name\": "
    "\"keep\", \"phone\": \"keep\", \"postcode\": \"keep\", "
    "\"household_size\": \"keep\"}}";

static const char *const granted[] = {"first_name", "phone", "postcode",
                                      "household_size", NULL};

static void copy_json(const char *from, const char *dir, const char *name)
{
        char path[700];
        json_error_t jerr;
        json_t *j = json_load_file(from, 0, &jerr);

        SB_CHECK(j, "%s: %s", from, jerr.text);
        snprintf(path, sizeof(path), "%s/%s", dir, name);
        SB_CHECK(!json_dump_file(j, path, JSON_INDENT(2)), "write %s", path);
        json_decref(j);
}

/* dir/<sub> with the rights and receipt schemas; returns the path. */
static char *schemas_dir(sb_testenv_t *te, const char *sub)
{
        char *dir;

        SB_CHECK(asprintf(&dir, "%s/%s", te->dir, sub) > 0, "asprintf");
        SB_CHECK(mkdir(dir, 0700) == 0, "mkdir %s", dir);
        copy_json(SB_SCHEMAS_DIR "/rights.avsc", dir, "rights.avsc");
        copy_json(SB_SCHEMAS_DIR "/receipt.avsc", dir, "receipt.avsc");
        return dir;
}

static sb_holder_t *holder(sb_testenv_t *te, sb_holder_cfg_t *cfg,
                           const char *client_id, const char *dir)
{
        char errstr[512];
        json_t *j =
            json_pack("{s:o, s:s, s:s, s:s}", "kafka",
                      sb_mockenv_kafka_json(te->mock), "schemas_dir", dir,
                      "client_id", client_id, "transactional_id", client_id);
        sb_holder_t *h;

        memset(cfg, 0, sizeof(*cfg));
        SB_OK_OR_FAIL(sb_config_apply(j, "test holder", sb_holder_cfg_table,
                                      cfg, errstr, sizeof(errstr)),
                      errstr);
        json_decref(j);
        h = sb_holder_new(cfg, "beneficiaries", errstr, sizeof(errstr));
        SB_CHECK(h, "holder %s: %s", client_id, errstr);
        return h;
}

static size_t publish(sb_holder_t *h, const char *path)
{
        sb_holder_stats_t hs;
        char errstr[1024];
        FILE *fp = fopen(path, "r");

        SB_CHECK(fp, "open %s", path);
        SB_OK_OR_FAIL(
            sb_holder_publish(h, fp, path, NULL, &hs, errstr, sizeof(errstr)),
            errstr);
        fclose(fp);
        return hs.published;
}

/*
 * Sample records of subjects [0, SUBJECTS) to v1.ndjson as they are, of
 * [SUBJECTS, 2 * SUBJECTS) to v2.ndjson without phone and with a
 * preferred language; one more version 2 record, for a version 3 with
 * an extra field, to v3.ndjson.
 */
static void write_inputs(sb_testenv_t *te, size_t *n1, size_t *n2)
{
        char *text = NULL, *line, *save = NULL, path[3][600];
        size_t len = 0;
        FILE *mem = open_memstream(&text, &len), *out[3];
        int k;

        sb_sample_write(mem, 2 * SUBJECTS + 1, 11);
        fclose(mem);
        for (k = 0; k < 3; k++) {
                snprintf(path[k], sizeof(path[k]), "%s/v%d.ndjson", te->dir,
                         k + 1);
                out[k] = fopen(path[k], "w");
                SB_CHECK(out[k], "write %s", path[k]);
        }
        *n1 = *n2 = 0;
        for (line = strtok_r(text, "\n", &save); line;
             line = strtok_r(NULL, "\n", &save)) {
                json_t *r = json_loads(line, 0, NULL);
                const char *id =
                    json_string_value(json_object_get(r, "beneficiary_id"));
                long i = strtol(id + 4, NULL, 10);
                char *s;

                k = i < SUBJECTS ? 0 : i < 2 * SUBJECTS ? 1 : 2;
                if (k > 0) {
                        json_object_del(r, "phone");
                        json_object_set_new(r, "preferred_language",
                                            json_string(i % 2 ? "fr" : "br"));
                }
                if (k == 2)
                        json_object_set_new(r, "channel", json_string("sms"));
                s = json_dumps(r, JSON_COMPACT);
                fprintf(out[k], "%s\n", s);
                free(s);
                json_decref(r);
                *n1 += k == 0;
                *n2 += k == 1;
        }
        for (k = 0; k < 3; k++)
                fclose(out[k]);
        free(text);
}

static void expected_text(const json_t *v, char *out, size_t size)
{
        if (json_is_string(v))
                snprintf(out, size, "%s", json_string_value(v));
        else if (json_is_integer(v))
                snprintf(out, size, "%lld", (long long)json_integer_value(v));
        else
                snprintf(out, size, "(null)");
}

/* Every record of `input` is stored with its granted values. */
static size_t check_stored(sb_testenv_t *te, sqlite3 *db,
                           const sb_pseudonymiser_t *ps, const char *input,
                           int version)
{
        char line[4096], sql[512], path[600], want[256];
        size_t checked = 0;
        FILE *in;
        int k;

        snprintf(path, sizeof(path), "%s/%s", te->dir, input);
        in = fopen(path, "r");
        SB_CHECK(in, "open %s", path);
        while (fgets(line, sizeof(line), in)) {
                json_t *rec = json_loads(line, 0, NULL);
                const char *subject =
                    json_string_value(json_object_get(rec, "beneficiary_id"));
                const char *rid =
                    json_string_value(json_object_get(rec, "file_id"));
                char p[SB_PSEUDONYM_HEXLEN + 1], what[128];

                sb_pseudonymise(ps, subject, strlen(subject), p);
                for (k = 0; granted[k]; k++) {
                        const unsigned char *got;
                        sqlite3_stmt *q;

                        snprintf(sql, sizeof(sql),
                                 "SELECT \"%s\" FROM records WHERE pseudonym "
                                 "= ?1 AND record_id = ?2",
                                 granted[k]);
                        SB_CHECK(sqlite3_prepare_v2(db, sql, -1, &q, NULL) ==
                                     SQLITE_OK,
                                 "prepare %s", sql);
                        sqlite3_bind_text(q, 1, p, -1, SQLITE_STATIC);
                        sqlite3_bind_text(q, 2, rid, -1, SQLITE_STATIC);
                        SB_CHECK(sqlite3_step(q) == SQLITE_ROW,
                                 "version %d record %s of %s not stored",
                                 version, rid, subject);
                        got = sqlite3_column_text(q, 0);
                        /* Version 2 has no phone: version 1's default. */
                        expected_text(json_object_get(rec, granted[k]), want,
                                      sizeof(want));
                        snprintf(what, sizeof(what), "version %d record %s: %s",
                                 version, rid, granted[k]);
                        SB_CHECK_STR(want, got ? (const char *)got : "(null)",
                                     what);
                        sqlite3_finalize(q);
                }
                json_decref(rec);
                checked++;
        }
        fclose(in);
        return checked;
}

int main(void)
{
        char errstr[1024], path[700], *gw_dir, *v2_dir, *v3_dir;
        sb_holder_cfg_t cfg1, cfg2, cfg3;
        sb_holder_t *h1, *h2, *h3;
        sb_reuser_cfg_t rcfg;
        sb_pseudonymiser_t *ps;
        sb_testenv_t te;
        sb_reuser_t *ru;
        sb_gateway_t *gw;
        size_t n1, n2, checked;
        uint64_t out_fp;
        json_t *v3;
        sqlite3 *db;

        sb_testenv_init(&te);
        sb_testenv_grant(&te, "evo.json", grant);

        /* The gateway knows versions 1 and 2; the second holder has
         * version 2 only, the third a version 3 nobody else knows. */
        gw_dir = schemas_dir(&te, "gw-schemas");
        copy_json(SB_SCHEMAS_DIR "/beneficiaries.avsc", gw_dir,
                  "beneficiaries.avsc");
        copy_json(SB_SOURCE_DIR "/tests/data/beneficiaries.v2.avsc", gw_dir,
                  "beneficiaries.v2.avsc");
        free(te.gw_cfg.schemas_dir);
        te.gw_cfg.schemas_dir = strdup(gw_dir);
        v2_dir = schemas_dir(&te, "v2-schemas");
        copy_json(SB_SOURCE_DIR "/tests/data/beneficiaries.v2.avsc", v2_dir,
                  "beneficiaries.v2.avsc");
        v3_dir = schemas_dir(&te, "v3-schemas");
        v3 = json_load_file(SB_SOURCE_DIR "/tests/data/beneficiaries.v2.avsc",
                            0, NULL);
        SB_CHECK(v3, "load version 2");
        json_object_set_new(v3, "sb.version", json_integer(3));
        json_array_append_new(json_object_get(v3, "fields"),
                              json_pack("{s:s, s:[s, s], s:n}", "name",
                                        "channel", "type", "null", "string",
                                        "default"));
        snprintf(path, sizeof(path), "%s/beneficiaries.v3.avsc", v3_dir);
        SB_CHECK(!json_dump_file(v3, path, JSON_INDENT(2)), "write %s", path);
        json_decref(v3);

        /* The reuser agent starts first, on schemas/ (version 1 only),
         * and reads for a while: nothing is there yet. */
        sb_testenv_reuser_cfg(&te, "evo.json", &rcfg);
        ru = sb_reuser_new(&rcfg, errstr, sizeof(errstr));
        SB_CHECK(ru, "reuser: %s", errstr);
        SB_OK_OR_FAIL(
            sb_reuser_run(ru, NULL, SB_TEST_IDLE_MS, errstr, sizeof(errstr)),
            errstr);
        SB_CHECK_INT(0, sb_store_count(sb_reuser_store(ru), NULL),
                     "rows before publishing");
        out_fp = sb_reuser_grant(ru)->out->fingerprint;

        write_inputs(&te, &n1, &n2);
        h1 = holder(&te, &cfg1, "holder-v1", SB_SCHEMAS_DIR);
        h2 = holder(&te, &cfg2, "holder-v2", v2_dir);
        h3 = holder(&te, &cfg3, "holder-v3", v3_dir);
        snprintf(path, sizeof(path), "%s/v1.ndjson", te.dir);
        SB_CHECK_INT(n1, publish(h1, path), "version 1 records published");
        /* Version 2 lines have no phone and a preferred language: only
         * a version 2 holder accepts them. */
        snprintf(path, sizeof(path), "%s/v2.ndjson", te.dir);
        SB_CHECK_INT(n2, publish(h2, path), "version 2 records published");
        snprintf(path, sizeof(path), "%s/v3.ndjson", te.dir);
        SB_CHECK_INT(1, publish(h3, path), "version 3 records published");

        gw = sb_gateway_new(&te.gw_cfg, te.key, errstr, sizeof(errstr));
        SB_CHECK(gw, "gateway: %s", errstr);
        SB_OK_OR_FAIL(
            sb_gateway_run(gw, NULL, SB_TEST_IDLE_MS, errstr, sizeof(errstr)),
            errstr);
        SB_CHECK_INT(n1 + n2, sb_gateway_stats(gw)->delivered,
                     "records delivered (versions 1 and 2)");
        SB_CHECK_INT(1, sb_gateway_stats(gw)->quarantined,
                     "records quarantined (version 3, unknown)");

        /* The same reuser agent reads on. */
        SB_OK_OR_FAIL(
            sb_reuser_run(ru, NULL, SB_TEST_IDLE_MS, errstr, sizeof(errstr)),
            errstr);
        SB_CHECK_INT(0, sb_reuser_stats(ru)->rejected, "messages refused");
        SB_CHECK_INT(n1 + n2, sb_store_count(sb_reuser_store(ru), NULL),
                     "rows stored");
        SB_CHECK(sb_reuser_grant(ru)->out->fingerprint == out_fp,
                 "output schema changed");

        ps = sb_pseudonymiser_new(te.key, "energy-desk", "beneficiaries");
        SB_CHECK(sqlite3_open(rcfg.database, &db) == SQLITE_OK, "open db");
        checked = check_stored(&te, db, ps, "v1.ndjson", 1);
        SB_CHECK_INT(n1, checked, "version 1 records checked");
        checked = check_stored(&te, db, ps, "v2.ndjson", 2);
        SB_CHECK_INT(n2, checked, "version 2 records checked");
        sqlite3_close(db);
        printf("energy-desk: %zu version 1 and %zu version 2 records stored "
               "under the unchanged output schema %016llx; version 3 "
               "quarantined\n",
               n1, n2, (unsigned long long)out_fp);

        sb_pseudonymiser_destroy(ps);
        sb_gateway_destroy(gw);
        sb_reuser_destroy(ru);
        sb_config_release(sb_reuser_cfg_table, &rcfg);
        sb_holder_destroy(h1);
        sb_holder_destroy(h2);
        sb_holder_destroy(h3);
        sb_config_release(sb_holder_cfg_table, &cfg1);
        sb_config_release(sb_holder_cfg_table, &cfg2);
        sb_config_release(sb_holder_cfg_table, &cfg3);
        free(gw_dir);
        free(v2_dir);
        free(v3_dir);
        sb_testenv_release(&te);
        return 0;
}
