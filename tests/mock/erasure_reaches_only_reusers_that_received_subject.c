/*
 * GDPR art. 19, R3.6: after an erasure, no row of the subject remains at
 * any reuser that had it; other subjects are untouched; and a reuser that
 * never received the subject (its grant is not yet valid) receives no
 * erasure notice — it learns nothing about the person.
 */
#include "crypto.h"
#include "sample.h"
#include "testutil.h"

#define SUBJECTS 60

static const char *grant_a =
    "{\"id\": \"g-a\", \"reuser\": \"reuser-a\", \"dataset\": "
    "\"beneficiaries\", \"purposes\": [\"p\"], \"legal_basis\": "
    "\"gdpr-6-1-e\", \"status\": \"approved\", \"fields\": {\"postcode\": "
    "\"keep\"}}";
static const char *grant_b =
    "{\"id\": \"g-b\", \"reuser\": \"reuser-b\", \"dataset\": "
    "\"beneficiaries\", \"purposes\": [\"p\"], \"legal_basis\": "
    "\"gdpr-6-1-e\", \"status\": \"approved\", \"fields\": {\"benefit\": "
    "\"keep\", \"first_name\": \"keep\"}}";
/* Valid only from 2099: receives nothing. */
static const char *grant_c =
    "{\"id\": \"g-c\", \"reuser\": \"reuser-c\", \"dataset\": "
    "\"beneficiaries\", \"purposes\": [\"p\"], \"legal_basis\": "
    "\"gdpr-6-1-e\", \"status\": \"approved\", \"valid_from\": "
    "\"2099-01-01T00:00:00Z\", \"fields\": {\"postcode\": \"keep\"}}";

static sb_reuser_t *start_reuser(sb_testenv_t *te, const char *file,
                                 sb_reuser_cfg_t *cfg)
{
        char errstr[512];
        sb_reuser_t *ru;

        sb_testenv_reuser_cfg(te, file, cfg);
        ru = sb_reuser_new(cfg, errstr, sizeof(errstr));
        SB_CHECK(ru, "reuser: %s", errstr);
        return ru;
}

static void run_all(sb_gateway_t *gw, sb_reuser_t **ru, int n)
{
        char errstr[512];
        int i;

        SB_OK_OR_FAIL(
            sb_gateway_run(gw, NULL, SB_TEST_IDLE_MS, errstr, sizeof(errstr)),
            errstr);
        for (i = 0; i < n; i++)
                SB_OK_OR_FAIL(sb_reuser_run(ru[i], NULL, SB_TEST_IDLE_MS,
                                            errstr, sizeof(errstr)),
                              errstr);
}

static void pseudonym(sb_testenv_t *te, const char *reuser, const char *subject,
                      char *out)
{
        sb_pseudonymiser_t *ps =
            sb_pseudonymiser_new(te->key, reuser, "beneficiaries");

        sb_pseudonymise(ps, subject, strlen(subject), out);
        sb_pseudonymiser_destroy(ps);
}

int main(void)
{
        const char *names[3] = {"reuser-a", "reuser-b", "reuser-c"};
        char ps[3][SB_PSEUDONYM_HEXLEN + 1], errstr[1024], input[300];
        char subject[16], event_id[37];
        sb_reuser_cfg_t cfg[3];
        sb_reuser_t *ru[3];
        int64_t total_before[3];
        sb_holder_stats_t hs;
        sb_gateway_t *gw;
        sb_holder_t *h;
        sb_testenv_t te;
        FILE *fp;
        int i;

        sb_testenv_init(&te);
        sb_testenv_grant(&te, "a.json", grant_a);
        sb_testenv_grant(&te, "b.json", grant_b);
        sb_testenv_grant(&te, "c.json", grant_c);

        snprintf(input, sizeof(input), "%s/in.ndjson", te.dir);
        fp = fopen(input, "w+");
        SB_CHECK(fp, "input");
        sb_sample_write(fp, SUBJECTS, 11);
        rewind(fp);
        h = sb_holder_new(&te.holder_cfg, "beneficiaries", errstr,
                          sizeof(errstr));
        SB_CHECK(h, "holder: %s", errstr);
        SB_OK_OR_FAIL(
            sb_holder_publish(h, fp, input, NULL, &hs, errstr, sizeof(errstr)),
            errstr);
        fclose(fp);

        gw = sb_gateway_new(&te.gw_cfg, te.key, errstr, sizeof(errstr));
        SB_CHECK(gw, "gateway: %s", errstr);
        for (i = 0; i < 3; i++)
                ru[i] = start_reuser(&te,
                                     i == 0   ? "a.json"
                                     : i == 1 ? "b.json"
                                              : "c.json",
                                     &cfg[i]);
        run_all(gw, ru, 3);

        /* Subject 9 has two benefit files (every fifth subject does). */
        sb_sample_subject_id(9, subject);
        for (i = 0; i < 3; i++) {
                pseudonym(&te, names[i], subject, ps[i]);
                total_before[i] = sb_store_count(sb_reuser_store(ru[i]), NULL);
        }
        SB_CHECK_INT(2, sb_store_count(sb_reuser_store(ru[0]), ps[0]),
                     "reuser-a rows of the subject before");
        SB_CHECK_INT(2, sb_store_count(sb_reuser_store(ru[1]), ps[1]),
                     "reuser-b rows of the subject before");
        SB_CHECK_INT(0, total_before[2], "reuser-c rows (grant not valid)");
        SB_CHECK_INT(0,
                     sb_testenv_count_messages(&te, "sb.out.reuser-c."
                                                    "beneficiaries"),
                     "messages on reuser-c's stream before the erasure");

        SB_OK_OR_FAIL(sb_holder_rights(h, SB_EV_ERASURE, subject, NULL,
                                       event_id, errstr, sizeof(errstr)),
                      errstr);
        run_all(gw, ru, 3);

        SB_CHECK_INT(2, sb_gateway_stats(gw)->notices,
                     "erasure notices sent (one per reuser that had the "
                     "subject)");
        for (i = 0; i < 2; i++) {
                SB_CHECK_INT(0, sb_store_count(sb_reuser_store(ru[i]), ps[i]),
                             "rows of the erased subject left");
                SB_CHECK_INT(total_before[i] - 2,
                             sb_store_count(sb_reuser_store(ru[i]), NULL),
                             "rows of other subjects (must be untouched)");
                SB_CHECK_INT(1, sb_reuser_stats(ru[i])->erasures,
                             "erasures applied");
        }
        SB_CHECK_INT(0, sb_reuser_stats(ru[2])->erasures,
                     "erasures reaching reuser-c");
        SB_CHECK_INT(0,
                     sb_testenv_count_messages(&te, "sb.out.reuser-c."
                                                    "beneficiaries"),
                     "messages on reuser-c's stream after the erasure");
        printf("erasure %s: 2 reusers cleaned, the third told nothing\n",
               event_id);

        for (i = 0; i < 3; i++) {
                sb_reuser_destroy(ru[i]);
                sb_config_release(sb_reuser_cfg_table, &cfg[i]);
        }
        sb_gateway_destroy(gw);
        sb_holder_destroy(h);
        sb_testenv_release(&te);
        return 0;
}
