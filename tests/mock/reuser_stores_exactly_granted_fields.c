/*
 * A reuser's table holds exactly the granted fields of exactly the
 * published records (R1.0-02, R3.5-08): every published record arrives
 * once at each reuser, each stored value equals the holder's, and no
 * column or value of a non-granted field exists.
 */
#include <sqlite3.h>

#include "crypto.h"
#include "sample.h"
#include "testutil.h"

#define SUBJECTS 120

static const char *grant_a =
    "{\"id\": \"g-a\", \"reuser\": \"stats-office\", \"dataset\": "
    "\"beneficiaries\", \"purposes\": [\"statistics\"], \"legal_basis\": "
    "\"gdpr-6-1-e\", \"status\": \"approved\", \"fields\": {\"birth_date\": "
    "\"keep\", \"postcode\": \"keep\", \"monthly_amount\": \"keep\", "
    "\"benefit\": \"keep\", \"last_name\": \"drop\"}}";
static const char *grant_b =
    "{\"id\": \"g-b\", \"reuser\": \"energy-desk\", \"dataset\": "
    "\"beneficiaries\", \"purposes\": [\"delivery\"], \"legal_basis\": "
    "\"gdpr-6-1-c\", \"status\": \"approved\", \"fields\": {\"first_name\": "
    "\"keep\", \"email\": \"keep\", \"household_size\": \"keep\"}}";

/* The expected text of a stored value, from the holder's JSON. */
static void expected_text(const json_t *v, char *out, size_t size)
{
        if (json_is_string(v))
                snprintf(out, size, "%s", json_string_value(v));
        else if (json_is_integer(v))
                snprintf(out, size, "%lld", (long long)json_integer_value(v));
        else
                snprintf(out, size, "(null)");
}

static void check_reuser(sb_testenv_t *te, const char *grant_file,
                         const char *input_path, size_t published)
{
        sb_reuser_cfg_t cfg;
        sb_reuser_t *ru;
        const sb_grant_t *g;
        sb_pseudonymiser_t *ps;
        sqlite3 *db;
        char errstr[512], line[4096], sql[2048];
        FILE *in;
        size_t checked = 0, i;
        json_t *cols, *c;

        sb_testenv_reuser_cfg(te, grant_file, &cfg);
        ru = sb_reuser_new(&cfg, errstr, sizeof(errstr));
        SB_CHECK(ru, "reuser: %s", errstr);
        SB_OK_OR_FAIL(
            sb_reuser_run(ru, NULL, SB_TEST_IDLE_MS, errstr, sizeof(errstr)),
            errstr);
        g = sb_reuser_grant(ru);
        SB_CHECK_INT(published, sb_store_count(sb_reuser_store(ru), NULL),
                     "rows stored");
        SB_CHECK_INT(0, sb_reuser_stats(ru)->rejected, "messages refused");

        /* Columns: bookkeeping and the granted fields, nothing else. */
        cols = sb_store_columns(sb_reuser_store(ru));
        json_array_foreach(cols, i, c)
        {
                const char *name = json_string_value(c);

                SB_CHECK(!strcmp(name, "pseudonym") ||
                             !strcmp(name, "record_id") ||
                             !strcmp(name, "restricted") ||
                             !strcmp(name, "received_at") ||
                             sb_schema_field(g->out, name),
                         "%s stores column '%s', which its grant does not "
                         "name",
                         g->reuser, name);
        }
        SB_CHECK_INT(
            4 + json_array_size(json_object_get(g->out->json, "fields")) - 1,
            json_array_size(cols), "column count");
        json_decref(cols);

        /* Every published record, with the holder's values. */
        ps = sb_pseudonymiser_new(te->key, g->reuser, g->dataset);
        SB_CHECK(sqlite3_open(cfg.database, &db) == SQLITE_OK, "open db");
        in = fopen(input_path, "r");
        SB_CHECK(in, "open input");
        while (fgets(line, sizeof(line), in)) {
                json_t *rec = json_loads(line, 0, NULL);
                const char *subject =
                    json_string_value(json_object_get(rec, "beneficiary_id"));
                const char *rid =
                    json_string_value(json_object_get(rec, "file_id"));
                char p[SB_PSEUDONYM_HEXLEN + 1];
                const json_t *fields = json_object_get(g->out->json, "fields");
                const json_t *f;
                sqlite3_stmt *q;
                size_t k;

                sb_pseudonymise(ps, subject, strlen(subject), p);
                json_array_foreach(fields, k, f)
                {
                        const char *name =
                            json_string_value(json_object_get(f, "name"));
                        char want[256];
                        const unsigned char *got;

                        if (k == 0)
                                continue;
                        snprintf(sql, sizeof(sql),
                                 "SELECT \"%s\" FROM records WHERE pseudonym "
                                 "= ?1 AND record_id = ?2",
                                 name);
                        SB_CHECK(sqlite3_prepare_v2(db, sql, -1, &q, NULL) ==
                                     SQLITE_OK,
                                 "prepare %s", sql);
                        sqlite3_bind_text(q, 1, p, -1, SQLITE_STATIC);
                        sqlite3_bind_text(q, 2, rid, -1, SQLITE_STATIC);
                        SB_CHECK(sqlite3_step(q) == SQLITE_ROW,
                                 "%s: record %s of %s missing", g->reuser, rid,
                                 subject);
                        got = sqlite3_column_text(q, 0);
                        expected_text(json_object_get(rec, name), want,
                                      sizeof(want));
                        SB_CHECK_STR(want, got ? (const char *)got : "(null)",
                                     name);
                        sqlite3_finalize(q);
                }
                /* The subject id itself never reaches a reuser. */
                snprintf(sql, sizeof(sql),
                         "SELECT COUNT(*) FROM records WHERE pseudonym = '%s'",
                         subject);
                SB_CHECK(sqlite3_prepare_v2(db, sql, -1, &q, NULL) == SQLITE_OK,
                         "prepare");
                SB_CHECK(sqlite3_step(q) == SQLITE_ROW &&
                             sqlite3_column_int(q, 0) == 0,
                         "subject id stored in clear");
                sqlite3_finalize(q);
                json_decref(rec);
                checked++;
        }
        fclose(in);
        sqlite3_close(db);
        SB_CHECK_INT(published, checked, "records checked");
        printf("%s: %zu records, %zu granted fields each, all as published\n",
               g->reuser, checked,
               json_array_size(json_object_get(g->out->json, "fields")) - 1);
        sb_pseudonymiser_destroy(ps);
        sb_reuser_destroy(ru);
        sb_config_release(sb_reuser_cfg_table, &cfg);
}

int main(void)
{
        sb_testenv_t te;
        sb_holder_t *h;
        sb_holder_stats_t hs;
        sb_gateway_t *gw;
        char errstr[1024], input[300];
        size_t records;
        FILE *fp;

        sb_testenv_init(&te);
        sb_testenv_grant(&te, "a.json", grant_a);
        sb_testenv_grant(&te, "b.json", grant_b);

        snprintf(input, sizeof(input), "%s/in.ndjson", te.dir);
        fp = fopen(input, "w+");
        SB_CHECK(fp, "input file");
        records = sb_sample_write(fp, SUBJECTS, 7);
        rewind(fp);
        h = sb_holder_new(&te.holder_cfg, "beneficiaries", errstr,
                          sizeof(errstr));
        SB_CHECK(h, "holder: %s", errstr);
        SB_OK_OR_FAIL(
            sb_holder_publish(h, fp, input, NULL, &hs, errstr, sizeof(errstr)),
            errstr);
        fclose(fp);
        SB_CHECK_INT(records, hs.published, "records published");

        gw = sb_gateway_new(&te.gw_cfg, te.key, errstr, sizeof(errstr));
        SB_CHECK(gw, "gateway: %s", errstr);
        SB_OK_OR_FAIL(
            sb_gateway_run(gw, NULL, SB_TEST_IDLE_MS, errstr, sizeof(errstr)),
            errstr);
        SB_CHECK_INT(2 * records, sb_gateway_stats(gw)->delivered,
                     "records delivered by the gateway");
        SB_CHECK_INT(0, sb_gateway_stats(gw)->quarantined, "quarantined");

        check_reuser(&te, "a.json", input, records);
        check_reuser(&te, "b.json", input, records);

        sb_gateway_destroy(gw);
        sb_holder_destroy(h);
        sb_testenv_release(&te);
        return 0;
}
