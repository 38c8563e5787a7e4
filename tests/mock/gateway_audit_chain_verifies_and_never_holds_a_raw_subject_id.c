/*
 * DESIGN.md §9; CNIL R4.3-12 (who accessed which data, when: every
 * delivery is logged), R4.3-13 (the log itself protected: a hash chain
 * with signed checkpoints), R4.3-15 (traces hold no more personal data
 * than needed: audit pseudonyms, never a subject id), R5.4-18 (what was
 * shared, with whom, for which purpose and legal basis), R5.4-21 (the
 * exclusions that honour people's rights are traceable too).
 *
 * A gateway with an audit key serves two grants (research with
 * history_days 30, housing without); a third of the records are 60 days
 * old; one person objects to research, one has processing restricted, one
 * withdraws consent, and every record is published again. Then every value
 * of _sb.audit:
 *   - verifies WITHOUT allow-unchained: one chain, the gateway's
 *     transactional.id, every entry covered by a signed checkpoint;
 *   - per grant, the delivery entries' records and bytes add up to the
 *     records and bytes on the reuser's stream, and deliveries plus
 *     exclusions to every record the gateway considered for the grant;
 *   - exclusion entries name the right reasons and the right people
 *     (objection, consent-withdrawn, restriction, history), and a third
 *     grant, approved but past its valid_until, gets only "validity"
 *     exclusions for every record;
 *   - the rights.propagate entries carry the audit pseudonym of their
 *     subject (sb_audit_pseudonymiser_new(master key, dataset));
 *   - no value holds any subject id.
 */
#include "audit.h"
#include "crypto.h"
#include "envelope.h"
#include "sample.h"
#include "sign.h"
#include "testutil.h"

#define SUBJECTS 30
#define DAY_MS   86400000LL
#define LAB      "sb.out.lab.beneficiaries"
#define CITY     "sb.out.city.beneficiaries"

static const char *grant_research =
    "{\"id\": \"g-r\", \"reuser\": \"lab\", \"dataset\": \"beneficiaries\", "
    "\"purposes\": [\"research\"], \"legal_basis\": \"gdpr-6-1-e\", "
    "\"status\": \"approved\", \"history_days\": 30, "
    "\"fields\": {\"postcode\": \"keep\"}}";
/* Approved, but its validity ended: everything is kept from it. */
static const char *grant_expired =
    "{\"id\": \"g-v\", \"reuser\": \"archive\", \"dataset\": "
    "\"beneficiaries\", \"purposes\": [\"archiving\"], \"legal_basis\": "
    "\"gdpr-6-1-e\", \"status\": \"approved\", \"valid_until\": "
    "\"2020-01-01T00:00:00Z\", \"fields\": {\"postcode\": \"keep\"}}";
static const char *grant_housing =
    "{\"id\": \"g-h\", \"reuser\": \"city\", \"dataset\": \"beneficiaries\", "
    "\"purposes\": [\"housing\"], \"legal_basis\": \"gdpr-6-1-c\", "
    "\"status\": \"approved\", \"fields\": {\"postcode\": \"keep\"}}";

typedef struct stream_s {
        long records;
        long long bytes;
} stream_t;

static void on_output(const rd_kafka_message_t *m, void *opaque)
{
        stream_t *s = opaque;
        char type[64];

        if (!m->payload || !sb_test_header(m, "ce_type", type, sizeof(type)) ||
            strcmp(type, "sharebus.record.upsert"))
                return;
        s->records++;
        s->bytes += (long long)m->len;
}

/* The sample records, a third of them last changed 60 days ago; returns
 * how many were written, and how many are old in *oldp. */
static size_t write_input(const char *path, size_t *oldp)
{
        char *text = NULL, *l, *save = NULL, when[32];
        int64_t now = sb_now_ms();
        size_t len = 0, n = 0;
        FILE *mem, *out;

        mem = open_memstream(&text, &len);
        SB_CHECK(mem, "memstream");
        sb_sample_write(mem, SUBJECTS, 7);
        fclose(mem);
        out = fopen(path, "w");
        SB_CHECK(out, "cannot write %s", path);
        *oldp = 0;
        for (l = strtok_r(text, "\n", &save); l;
             l = strtok_r(NULL, "\n", &save), n++) {
                json_t *rec = json_loads(l, 0, NULL);
                int64_t t = n % 3 == 0 ? now - 60 * DAY_MS : now - 10 * DAY_MS;
                char *line;

                SB_CHECK(rec, "sample line");
                sb_time_format(t - t % 1000, when);
                json_object_set_new(rec, "updated_at", json_string(when));
                *oldp += n % 3 == 0;
                line = json_dumps(rec, JSON_COMPACT);
                fprintf(out, "%s\n", line);
                free(line);
                json_decref(rec);
        }
        fclose(out);
        free(text);
        return n;
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
                   const char *purpose, char id[37])
{
        json_t *p = purpose ? json_pack("[s]", purpose) : NULL;
        char errstr[1024];

        SB_OK_OR_FAIL(
            sb_holder_rights(h, type, subject, p, id, errstr, sizeof(errstr)),
            errstr);
        json_decref(p);
}

/* 1 if the array of strings `a` holds `s`. */
static int holds(const json_t *a, const char *s)
{
        const json_t *x;
        size_t i;

        json_array_foreach(a, i,
                           x) if (!strcmp(json_string_value(x), s)) return 1;
        return 0;
}

int main(void)
{
        char errstr[1024], input[300], keyfile[300], pubfile[300];
        char subjects[SUBJECTS][16], aps[SUBJECTS][SB_PSEUDONYM_HEXLEN + 1];
        char ev_obj[37], ev_res[37], ev_wd[37];
        long delivered[3] = {0, 0, 0}, excluded[3] = {0, 0, 0};
        long long bytes[3] = {0, 0, 0};
        int reasons[3][5] = {{0}};
        static const char *reason_names[5] = {"objection", "consent-withdrawn",
                                              "restriction", "history",
                                              "validity"};
        size_t published, old, i, k, propagated = 0, deliveries = 0;
        sb_pseudonymiser_t *audit_ps;
        sb_audit_report_t rep;
        stream_t lab = {0}, city = {0};
        json_t *values, *x;
        sb_signkey_t *key;
        sb_gateway_t *gw;
        sb_holder_t *h;
        sb_testenv_t te;

        sb_testenv_init(&te);
        sb_testenv_grant(&te, "lab.json", grant_research);
        sb_testenv_grant(&te, "city.json", grant_housing);
        sb_testenv_grant(&te, "archive.json", grant_expired);
        snprintf(input, sizeof(input), "%s/in.ndjson", te.dir);
        published = write_input(input, &old);

        /* The gateway's audit key, as `sharebus keys generate` writes it. */
        key = sb_signkey_generate();
        SB_CHECK(key, "out of memory");
        snprintf(keyfile, sizeof(keyfile), "%s/audit.key", te.dir);
        snprintf(pubfile, sizeof(pubfile), "%s/audit.pub", te.dir);
        SB_OK_OR_FAIL(
            sb_signkey_save(key, keyfile, pubfile, errstr, sizeof(errstr)),
            errstr);
        te.gw_cfg.audit_key_file = strdup(keyfile);
        te.gw_cfg.audit_checkpoint_every = 10;

        audit_ps = sb_audit_pseudonymiser_new(te.key, "beneficiaries");
        SB_CHECK(audit_ps, "out of memory");
        for (i = 0; i < SUBJECTS; i++) {
                sb_sample_subject_id(i, subjects[i]);
                sb_pseudonymise(audit_ps, subjects[i], strlen(subjects[i]),
                                aps[i]);
        }

        h = sb_holder_new(&te.holder_cfg, "beneficiaries", errstr,
                          sizeof(errstr));
        SB_CHECK(h, "holder: %s", errstr);
        gw = sb_gateway_new(&te.gw_cfg, te.key, errstr, sizeof(errstr));
        SB_CHECK(gw, "gateway: %s", errstr);
        publish(h, input);
        rights(h, SB_EV_OBJECTION, subjects[5], "research", ev_obj);
        rights(h, SB_EV_RESTRICTION, subjects[6], NULL, ev_res);
        rights(h, SB_EV_CONSENT_WITHDRAWN, subjects[7], NULL, ev_wd);
        publish(h, input);
        SB_OK_OR_FAIL(
            sb_gateway_run(gw, NULL, SB_TEST_IDLE_MS, errstr, sizeof(errstr)),
            errstr);
        sb_testenv_read_topic(&te, LAB, on_output, &lab);
        sb_testenv_read_topic(&te, CITY, on_output, &city);

        /* 1. The whole log verifies, unchained entries not allowed. */
        values = sb_testenv_audit_values(&te);
        sb_test_audit_intact(values, sb_signkey_public(key), &rep);
        SB_CHECK_INT(1, rep.chain_cnt, "chains on _sb.audit");
        SB_CHECK_STR("sb-gateway-sharebus-gateway", rep.chains[0].chain,
                     "chain id (the gateway's transactional.id)");
        SB_CHECK_INT(1, rep.chains[0].first_seq, "first seq");
        SB_CHECK_INT(rep.entries, rep.chains[0].last_seq,
                     "last seq (one entry per seq)");
        SB_CHECK(rep.chains[0].checkpoints >= rep.entries / 11,
                 "a checkpoint every 10 entries: %zu for %zu entries",
                 rep.chains[0].checkpoints, rep.entries);
        SB_CHECK_INT(0, rep.chains[0].uncovered,
                     "entries not covered by a checkpoint after close");

        /* 2. What each entry says. */
        json_array_foreach(values, k, x)
        {
                const char *text = json_string_value(x);
                json_t *e = json_loads(text, 0, NULL);
                const char *op = json_string_value(json_object_get(e, "op"));
                const char *grant =
                    json_string_value(json_object_get(e, "grant"));
                int g = !grant                  ? 1
                        : !strcmp(grant, "g-r") ? 0
                        : !strcmp(grant, "g-v") ? 2
                                                : 1;
                json_t *subj = json_object_get(e, "subjects");

                SB_CHECK(e && op, "entry %zu: %s", k, text);
                /* R4.3-15: never a subject id, anywhere in an entry. */
                for (i = 0; i < SUBJECTS; i++)
                        SB_CHECK(!strstr(text, subjects[i]),
                                 "entry %zu holds subject id %s: %s", k,
                                 subjects[i], text);
                if (strcmp(op, SB_AUDIT_OP_CHECKPOINT))
                        SB_CHECK_STR(
                            "sharebus://gateway/sharebus-gateway",
                            json_string_value(json_object_get(e, "author")),
                            "author");
                if (!strcmp(op, "delivery")) {
                        json_t *want_fields =
                            json_pack("[s,s]", "postcode", "pseudonym");

                        deliveries++;
                        delivered[g] +=
                            json_integer_value(json_object_get(e, "records"));
                        bytes[g] +=
                            json_integer_value(json_object_get(e, "bytes"));
                        SB_CHECK_STR(
                            g ? "city" : "lab",
                            json_string_value(json_object_get(e, "reuser")),
                            "delivery reuser");
                        SB_CHECK_STR(g ? "gdpr-6-1-c" : "gdpr-6-1-e",
                                     json_string_value(
                                         json_object_get(e, "legal_basis")),
                                     "delivery legal_basis");
                        SB_CHECK(json_is_array(json_object_get(e, "purposes")),
                                 "delivery purposes: %s", text);
                        SB_CHECK(json_equal(want_fields,
                                            json_object_get(e, "fields")),
                                 "delivery fields (the output fields, "
                                 "sorted): %s",
                                 text);
                        json_decref(want_fields);
                        SB_CHECK(json_integer_value(
                                     json_object_get(e, "first_at")) > 0 &&
                                     json_integer_value(
                                         json_object_get(e, "last_at")) >=
                                         json_integer_value(
                                             json_object_get(e, "first_at")),
                                 "delivery first_at, last_at: %s", text);
                        for (i = 1; i < json_array_size(subj); i++)
                                SB_CHECK(
                                    strcmp(json_string_value(
                                               json_array_get(subj, i - 1)),
                                           json_string_value(
                                               json_array_get(subj, i))) < 0,
                                    "delivery subjects sorted, unique: "
                                    "%s",
                                    text);
                        if (g == 0)
                                SB_CHECK(!holds(subj, aps[5]) ||
                                             json_integer_value(json_object_get(
                                                 e, "records")) > 0,
                                         "lab delivery: %s", text);
                } else if (!strcmp(op, "exclusion")) {
                        const char *why =
                            json_string_value(json_object_get(e, "reason"));
                        int r;

                        for (r = 0; r < 5 && strcmp(why, reason_names[r]); r++)
                                ;
                        SB_CHECK(r < 5, "exclusion reason '%s'", why);
                        reasons[g][r]++;
                        excluded[g] +=
                            json_integer_value(json_object_get(e, "records"));
                        /* The right people for the right reason. */
                        if (r == 0)
                                SB_CHECK(g == 0 && holds(subj, aps[5]) &&
                                             json_array_size(subj) == 1,
                                         "objection exclusion names only the "
                                         "person who objected to research: "
                                         "%s",
                                         text);
                        if (r == 1)
                                SB_CHECK(holds(subj, aps[7]) &&
                                             json_array_size(subj) == 1,
                                         "consent-withdrawn exclusion: %s",
                                         text);
                        if (r == 2)
                                SB_CHECK(holds(subj, aps[6]) &&
                                             json_array_size(subj) == 1,
                                         "restriction exclusion: %s", text);
                        if (r == 3)
                                SB_CHECK(g == 0,
                                         "history exclusion for the "
                                         "grant without history_days: "
                                         "%s",
                                         text);
                } else if (!strcmp(op, "rights.propagate")) {
                        const char *ev =
                            json_string_value(json_object_get(e, "event_id"));
                        const char *want = !strcmp(ev, ev_obj)   ? aps[5]
                                           : !strcmp(ev, ev_res) ? aps[6]
                                                                 : aps[7];

                        propagated++;
                        SB_CHECK_STR(
                            want,
                            json_string_value(json_object_get(e, "subject_ps")),
                            "rights.propagate subject_ps (the "
                            "subject's audit pseudonym)");
                } else {
                        SB_CHECK_STR(SB_AUDIT_OP_CHECKPOINT, op,
                                     "entry op (delivery, exclusion, "
                                     "rights.propagate or checkpoint)");
                }
                json_decref(e);
        }
        SB_CHECK_INT(3, propagated, "rights.propagate entries");
        SB_CHECK_INT(lab.records, delivered[0],
                     "records in lab's delivery entries vs its stream");
        SB_CHECK_INT(city.records, delivered[1],
                     "records in city's delivery entries vs its stream");
        SB_CHECK_INT(lab.bytes, bytes[0],
                     "bytes in lab's delivery entries vs its stream");
        SB_CHECK_INT(city.bytes, bytes[1],
                     "bytes in city's delivery entries vs its stream");
        SB_CHECK_INT(2 * published, delivered[0] + excluded[0],
                     "lab: records delivered + excluded (each record, twice)");
        SB_CHECK_INT(2 * published, delivered[1] + excluded[1],
                     "city: records delivered + excluded");
        SB_CHECK(reasons[0][0] && reasons[0][1] && reasons[0][2] &&
                     reasons[0][3],
                 "lab exclusions for objection %d, consent-withdrawn %d, "
                 "restriction %d, history %d",
                 reasons[0][0], reasons[0][1], reasons[0][2], reasons[0][3]);
        SB_CHECK_INT(0, delivered[2], "records delivered to the expired grant");
        SB_CHECK_INT(2 * published, excluded[2],
                     "records kept from the expired grant");
        SB_CHECK(reasons[2][4] && !reasons[2][0] && !reasons[2][1] &&
                     !reasons[2][2] && !reasons[2][3],
                 "the expired grant's exclusions all say validity");
        SB_CHECK(!reasons[1][0] && reasons[1][1] && reasons[1][2] &&
                     !reasons[1][3],
                 "city exclusions: no objection %d, consent-withdrawn %d, "
                 "restriction %d, no history %d",
                 reasons[1][0], reasons[1][1], reasons[1][2], reasons[1][3]);
        printf("_sb.audit: %zu entries, one chain, %zu checkpoints, intact; "
               "%zu delivery entries (lab %ld records, city %ld), %ld + %ld "
               "records excluded; %zu old records; no subject id\n",
               rep.entries, rep.chains[0].checkpoints, deliveries, delivered[0],
               delivered[1], excluded[0], excluded[1], old);

        sb_audit_report_release(&rep);
        json_decref(values);
        sb_pseudonymiser_destroy(audit_ps);
        sb_signkey_destroy(key);
        sb_gateway_destroy(gw);
        sb_holder_destroy(h);
        sb_testenv_release(&te);
        return 0;
}
