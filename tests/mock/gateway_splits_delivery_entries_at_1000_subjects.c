/*
 * DESIGN.md §9; CNIL R4.3-12, R5.4-18: a delivery entry names every person
 * whose records a transaction shared with a grant, by audit pseudonym, but
 * at most 1000 of them, so that no entry grows without bound: a
 * transaction that shares 1500 people with one grant writes several
 * entries (1000, then the rest), each counting the records and bytes of
 * its own subjects; together they add up to the reuser's stream, and no
 * person is named twice for one transaction.
 */
#include "audit.h"
#include "sample.h"
#include "testutil.h"

#define SUBJECTS 1500
#define CITY     "sb.out.city.beneficiaries"

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

        if (m->payload) {
                s->records++;
                s->bytes += (long long)m->len;
        }
}

int main(void)
{
        char errstr[1024], input[300];
        long records = 0, full = 0, entries = 0;
        long long bytes = 0;
        stream_t city = {0};
        sb_holder_stats_t hs;
        json_t *values, *x, *seen;
        sb_gateway_t *gw;
        sb_holder_t *h;
        sb_testenv_t te;
        size_t k;
        FILE *fp;

        sb_testenv_init(&te);
        sb_testenv_grant(&te, "city.json", grant_housing);
        /* One long transaction: everything arrives within it. */
        te.gw_cfg.commit_records = 100000;
        te.gw_cfg.commit_interval_ms = 5000;
        snprintf(input, sizeof(input), "%s/in.ndjson", te.dir);
        fp = fopen(input, "w");
        SB_CHECK(fp, "input");
        sb_sample_write(fp, SUBJECTS, 11);
        fclose(fp);
        h = sb_holder_new(&te.holder_cfg, "beneficiaries", errstr,
                          sizeof(errstr));
        SB_CHECK(h, "holder: %s", errstr);
        fp = fopen(input, "r");
        SB_OK_OR_FAIL(
            sb_holder_publish(h, fp, input, NULL, &hs, errstr, sizeof(errstr)),
            errstr);
        fclose(fp);
        gw = sb_gateway_new(&te.gw_cfg, te.key, errstr, sizeof(errstr));
        SB_CHECK(gw, "gateway: %s", errstr);
        SB_OK_OR_FAIL(
            sb_gateway_run(gw, NULL, SB_TEST_IDLE_MS, errstr, sizeof(errstr)),
            errstr);
        sb_testenv_read_topic(&te, CITY, on_output, &city);

        values = sb_testenv_audit_values(&te);
        seen = json_object(); /* "<first_at>/<pseudonym>" */
        json_array_foreach(values, k, x)
        {
                json_t *e = json_loads(json_string_value(x), 0, NULL);
                json_t *subj = json_object_get(e, "subjects"), *s;
                char key[128];
                size_t i;

                if (strcmp(json_string_value(json_object_get(e, "op")),
                           "delivery")) {
                        json_decref(e);
                        continue;
                }
                entries++;
                SB_CHECK(json_array_size(subj) >= 1 &&
                             json_array_size(subj) <= 1000,
                         "a delivery entry names %zu subjects",
                         json_array_size(subj));
                full += json_array_size(subj) == 1000;
                records += json_integer_value(json_object_get(e, "records"));
                bytes += json_integer_value(json_object_get(e, "bytes"));
                SB_CHECK(json_integer_value(json_object_get(e, "records")) >=
                             (json_int_t)json_array_size(subj),
                         "records %lld for %zu subjects",
                         (long long)json_integer_value(
                             json_object_get(e, "records")),
                         json_array_size(subj));
                /* Entries of one transaction share first_at. */
                json_array_foreach(subj, i, s)
                {
                        snprintf(key, sizeof(key), "%lld/%s",
                                 (long long)json_integer_value(
                                     json_object_get(e, "first_at")),
                                 json_string_value(s));
                        SB_CHECK(!json_object_get(seen, key),
                                 "subject %s named twice for one "
                                 "transaction",
                                 json_string_value(s));
                        json_object_set_new(seen, key, json_true());
                }
                json_decref(e);
        }
        SB_CHECK(full >= 1,
                 "no delivery entry with 1000 subjects (%ld entries): the "
                 "1500 people did not share a transaction",
                 entries);
        SB_CHECK_INT(city.records, records, "records: entries vs stream");
        SB_CHECK_INT(city.bytes, bytes, "bytes: entries vs stream");
        printf("%ld records of %d people: %ld delivery entries, %ld of "
               "them with 1000 subjects\n",
               records, SUBJECTS, entries, full);
        json_decref(seen);
        json_decref(values);
        sb_gateway_destroy(gw);
        sb_holder_destroy(h);
        sb_testenv_release(&te);
        return 0;
}
