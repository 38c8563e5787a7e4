/*
 * GDPR art. 7(3), 18, 19 and 21; CNIL R6.2-05 (DESIGN.md §6): once a person
 * objects to a purpose, withdraws consent or has processing restricted,
 * the gateway stops sharing them with the grants concerned, including the
 * records that arrive afterwards; the reusers that received the person are
 * told, and their stream loses every record key of the person (tombstones)
 * where the data must go. A grant of another purpose keeps receiving.
 * Lifting the restriction and giving consent again resume sharing.
 *
 * The test reads the reuser streams themselves, in order, so it checks
 * what went over the wire, not what an agent made of it.
 */
#include "crypto.h"
#include "sample.h"
#include "testutil.h"

#define SUBJECTS 30

static const char *grant_research =
    "{\"id\": \"g-r\", \"reuser\": \"lab\", \"dataset\": \"beneficiaries\", "
    "\"purposes\": [\"research\"], \"legal_basis\": \"gdpr-6-1-e\", "
    "\"status\": \"approved\", \"fields\": {\"postcode\": \"keep\"}}";
static const char *grant_housing =
    "{\"id\": \"g-h\", \"reuser\": \"city\", \"dataset\": \"beneficiaries\", "
    "\"purposes\": [\"housing\"], \"legal_basis\": \"gdpr-6-1-e\", "
    "\"status\": \"approved\", \"fields\": {\"postcode\": \"keep\"}}";

/* One message of a stream, in partition order. */
typedef struct seen_s {
        char key[300];
        char type[64]; /* ce_type, "" for a tombstone */
} seen_t;

/* Every message of `topic`, partition by partition, in offset order. */
static size_t read_stream(sb_testenv_t *te, const char *topic, seen_t **out)
{
        rd_kafka_conf_t *conf = rd_kafka_conf_new();
        rd_kafka_topic_partition_list_t *parts;
        size_t n = 0, cap = 0;
        seen_t *v = NULL;
        rd_kafka_t *rk;
        char errstr[512];
        int p, eofs = 0, idle = 0;

        rd_kafka_conf_set(conf, "bootstrap.servers", te->mock->bootstraps, NULL,
                          0);
        rd_kafka_conf_set(conf, "group.id", "sb-test-reader", NULL, 0);
        rd_kafka_conf_set(conf, "enable.partition.eof", "true", NULL, 0);
        rd_kafka_conf_set(conf, "isolation.level", "read_committed", NULL, 0);
        rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
        SB_CHECK(rk, "consumer: %s", errstr);
        /* One partition at a time keeps each partition's order. */
        for (p = 0; p < 3; p++) {
                parts = rd_kafka_topic_partition_list_new(1);
                rd_kafka_topic_partition_list_add(parts, topic, p)->offset =
                    RD_KAFKA_OFFSET_BEGINNING;
                rd_kafka_assign(rk, parts);
                rd_kafka_topic_partition_list_destroy(parts);
                for (eofs = 0, idle = 0; !eofs && idle < 100;) {
                        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
                        rd_kafka_headers_t *h;
                        const void *val;
                        size_t len;

                        if (!m) {
                                idle++;
                                continue;
                        }
                        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                                eofs = 1;
                        } else if (m->err) {
                                SB_TEST_FAIL("%s [%d]: %s", topic, p,
                                             rd_kafka_message_errstr(m));
                        } else {
                                if (n == cap) {
                                        cap = cap ? cap * 2 : 64;
                                        v = realloc(v, cap * sizeof(*v));
                                        SB_CHECK(v, "out of memory");
                                }
                                memset(&v[n], 0, sizeof(v[n]));
                                snprintf(v[n].key, sizeof(v[n].key), "%.*s",
                                         (int)m->key_len, (const char *)m->key);
                                if (m->payload &&
                                    !rd_kafka_message_headers(m, &h) &&
                                    !rd_kafka_header_get_last(h, "ce_type",
                                                              &val, &len))
                                        snprintf(v[n].type, sizeof(v[n].type),
                                                 "%.*s", (int)len,
                                                 (const char *)val);
                                n++;
                        }
                        rd_kafka_message_destroy(m);
                }
                SB_CHECK(eofs, "%s [%d]: end not reached", topic, p);
        }
        rd_kafka_destroy(rk);
        *out = v;
        return n;
}

/* Counts the messages of pseudonym `ps` of `type` ("" = tombstones) after
 * the first message of type `after` (NULL: from the start). */
static int count(const seen_t *v, size_t n, const char *ps, const char *type,
                 const char *after)
{
        size_t i, pl = strlen(ps);
        int on = after == NULL, c = 0;

        for (i = 0; i < n; i++) {
                if (strncmp(v[i].key, ps, pl) ||
                    (v[i].key[pl] != '/' && v[i].key[pl] != '\0'))
                        continue;
                if (!on) {
                        on = !strcmp(v[i].type, after);
                        continue;
                }
                c += !strcmp(v[i].type, type);
        }
        return c;
}

static void pseudonym(sb_testenv_t *te, const char *reuser, const char *subject,
                      char *out)
{
        sb_pseudonymiser_t *ps =
            sb_pseudonymiser_new(te->key, reuser, "beneficiaries");

        sb_pseudonymise(ps, subject, strlen(subject), out);
        sb_pseudonymiser_destroy(ps);
}

static void publish(sb_holder_t *h, const char *path)
{
        char errstr[1024];
        sb_holder_stats_t hs;
        FILE *fp = fopen(path, "r");

        SB_CHECK(fp, "%s", path);
        SB_OK_OR_FAIL(
            sb_holder_publish(h, fp, path, NULL, &hs, errstr, sizeof(errstr)),
            errstr);
        fclose(fp);
}

static void rights(sb_holder_t *h, sb_event_type_t type, const char *subject,
                   const char *purpose)
{
        json_t *p = purpose ? json_pack("[s]", purpose) : NULL;
        char errstr[1024], id[37];

        SB_OK_OR_FAIL(
            sb_holder_rights(h, type, subject, p, id, errstr, sizeof(errstr)),
            errstr);
        json_decref(p);
}

static void run(sb_gateway_t *gw)
{
        char errstr[512];

        SB_OK_OR_FAIL(
            sb_gateway_run(gw, NULL, SB_TEST_IDLE_MS, errstr, sizeof(errstr)),
            errstr);
}

#define LAB  "sb.out.lab.beneficiaries"
#define CITY "sb.out.city.beneficiaries"
#define UPS  "sharebus.record.upsert"

int main(void)
{
        char s_obj[16], s_res[16], s_wd[16], errstr[1024], input[300];
        char lab_obj[40], city_obj[40], lab_res[40], city_res[40], lab_wd[40],
            city_wd[40];
        seen_t *lab, *city;
        size_t nl, nc;
        sb_gateway_t *gw;
        sb_holder_t *h;
        sb_testenv_t te;
        int per_obj, per_res, per_wd;
        FILE *fp;

        sb_testenv_init(&te);
        sb_testenv_grant(&te, "lab.json", grant_research);
        sb_testenv_grant(&te, "city.json", grant_housing);
        snprintf(input, sizeof(input), "%s/in.ndjson", te.dir);
        fp = fopen(input, "w");
        SB_CHECK(fp, "input");
        sb_sample_write(fp, SUBJECTS, 7);
        fclose(fp);
        sb_sample_subject_id(5, s_obj);
        sb_sample_subject_id(6, s_res);
        sb_sample_subject_id(7, s_wd);
        pseudonym(&te, "lab", s_obj, lab_obj);
        pseudonym(&te, "city", s_obj, city_obj);
        pseudonym(&te, "lab", s_res, lab_res);
        pseudonym(&te, "city", s_res, city_res);
        pseudonym(&te, "lab", s_wd, lab_wd);
        pseudonym(&te, "city", s_wd, city_wd);

        h = sb_holder_new(&te.holder_cfg, "beneficiaries", errstr,
                          sizeof(errstr));
        SB_CHECK(h, "holder: %s", errstr);
        gw = sb_gateway_new(&te.gw_cfg, te.key, errstr, sizeof(errstr));
        SB_CHECK(gw, "gateway: %s", errstr);

        /* Round 1: everybody shared; then three people use their rights. */
        publish(h, input);
        rights(h, SB_EV_OBJECTION, s_obj, "research");
        rights(h, SB_EV_RESTRICTION, s_res, NULL);
        rights(h, SB_EV_CONSENT_WITHDRAWN, s_wd, NULL);
        /* Round 2: the same records again, after the rights. */
        publish(h, input);
        run(gw);

        nl = read_stream(&te, LAB, &lab);
        nc = read_stream(&te, CITY, &city);
        per_obj = count(lab, nl, lab_obj, UPS, NULL);
        per_res = count(city, nc, city_res, UPS, NULL);
        per_wd = count(lab, nl, lab_wd, UPS, NULL);
        SB_CHECK(per_obj >= 1 && per_res >= 1 && per_wd >= 1,
                 "each subject was shared in round 1 (%d %d %d)", per_obj,
                 per_res, per_wd);

        /* Objection to research: the lab loses the person, the city not. */
        SB_CHECK_INT(1,
                     count(lab, nl, lab_obj, "sharebus.rights.objection", NULL),
                     "objection notices to the research grant");
        SB_CHECK_INT(per_obj, count(lab, nl, lab_obj, "", NULL),
                     "tombstones on the research stream (one per record key)");
        SB_CHECK_INT(0,
                     count(lab, nl, lab_obj, UPS, "sharebus.rights.objection"),
                     "records shared with the research grant after the "
                     "objection");
        SB_CHECK_INT(
            0, count(city, nc, city_obj, "sharebus.rights.objection", NULL),
            "objection notices to the housing grant");
        SB_CHECK_INT(2 * per_obj, count(city, nc, city_obj, UPS, NULL),
                     "records of the objecting person for the housing grant "
                     "(both rounds)");

        /* Restriction: both told, rows kept (no tombstone), nothing new. */
        SB_CHECK_INT(
            1, count(city, nc, city_res, "sharebus.rights.restriction", NULL),
            "restriction notices to the housing grant");
        SB_CHECK_INT(
            1, count(lab, nl, lab_res, "sharebus.rights.restriction", NULL),
            "restriction notices to the research grant");
        SB_CHECK_INT(0, count(city, nc, city_res, "", NULL),
                     "tombstones for a restricted person");
        SB_CHECK_INT(
            0, count(city, nc, city_res, UPS, "sharebus.rights.restriction"),
            "records shared while restricted");

        /* Consent withdrawn for every purpose: both lose the person. */
        SB_CHECK_INT(per_wd, count(lab, nl, lab_wd, "", NULL),
                     "tombstones after consent withdrawn (research)");
        SB_CHECK_INT(per_wd, count(city, nc, city_wd, "", NULL),
                     "tombstones after consent withdrawn (housing)");
        SB_CHECK_INT(
            0,
            count(city, nc, city_wd, UPS, "sharebus.rights.consent-withdrawn"),
            "records shared after consent withdrawn");
        free(lab);
        free(city);

        /* Round 3: restriction lifted and consent given again. */
        rights(h, SB_EV_RESTRICTION_LIFTED, s_res, NULL);
        rights(h, SB_EV_CONSENT_GIVEN, s_wd, NULL);
        publish(h, input);
        run(gw);
        nl = read_stream(&te, LAB, &lab);
        nc = read_stream(&te, CITY, &city);
        SB_CHECK_INT(1,
                     count(city, nc, city_res,
                           "sharebus.rights.restriction-lifted", NULL),
                     "restriction-lifted notices");
        SB_CHECK_INT(per_res,
                     count(city, nc, city_res, UPS,
                           "sharebus.rights.restriction-lifted"),
                     "records shared again once the restriction is lifted");
        SB_CHECK_INT(
            per_wd,
            count(lab, nl, lab_wd, UPS, "sharebus.rights.consent-withdrawn"),
            "records shared again once consent is given");
        SB_CHECK_INT(0,
                     count(lab, nl, lab_obj, UPS, "sharebus.rights.objection"),
                     "records shared with the research grant after the "
                     "objection, round 3");
        printf("lab: %zu messages, city: %zu messages; objection, "
               "restriction and withdrawal honoured\n",
               nl, nc);
        printf("gateway: %zu delivered, %zu excluded, %zu tombstones, %zu "
               "notices, %zu subjects in state\n",
               sb_gateway_stats(gw)->delivered, sb_gateway_stats(gw)->excluded,
               sb_gateway_stats(gw)->tombstones, sb_gateway_stats(gw)->notices,
               sb_gateway_subjects(gw));
        free(lab);
        free(city);
        sb_gateway_destroy(gw);
        sb_holder_destroy(h);
        sb_testenv_release(&te);
        return 0;
}
