/*
 * Historicity and metadata tags (DESIGN §4-§5; CNIL R5.2-03, annex I
 * "balisage"): a grant with history_days receives no record whose event
 * time (the dataset's "sb.event_time" field, updated_at) is older than
 * that, while a grant without it receives every record; and each record on
 * a reuser stream carries its tags in the sb_tags header: collected_at
 * (the event time), valid_until, reliability, purposes, retention_days.
 */
#include "envelope.h"
#include "sample.h"
#include "testutil.h"

#define SUBJECTS 30
#define DAY_MS   86400000LL

static const char *grant_recent =
    "{\"id\": \"g-recent\", \"reuser\": \"recent-desk\", \"dataset\": "
    "\"beneficiaries\", \"purposes\": [\"follow-up\", \"statistics\"], "
    "\"legal_basis\": \"gdpr-6-1-e\", \"status\": \"approved\", "
    "\"history_days\": 30, \"retention_days\": 90, "
    "\"valid_until\": \"2099-01-01T00:00:00Z\", "
    "\"fields\": {\"postcode\": \"keep\", \"updated_at\": \"keep\"}}";
static const char *grant_all =
    "{\"id\": \"g-all\", \"reuser\": \"archive-lab\", \"dataset\": "
    "\"beneficiaries\", \"purposes\": [\"research\"], \"legal_basis\": "
    "\"gdpr-6-1-e\", \"status\": \"approved\", "
    "\"fields\": {\"postcode\": \"keep\"}}";

typedef struct seen_s {
        json_t *times; /* record id -> updated_at (ms) published */
        long records, tagged, old;
        int64_t now;
        int with_limits; /* the history_days grant's stream */
} seen_t;

static void on_message(const rd_kafka_message_t *m, void *opaque)
{
        seen_t *s = opaque;
        char type[64], v[1024], rid[256], want[32];
        const char *slash;
        json_t *t, *tags;

        if (!sb_test_header(m, "ce_type", type, sizeof(type)) ||
            strcmp(type, "sharebus.record.upsert"))
                return;
        s->records++;
        slash = memchr(m->key, '/', m->key_len);
        SB_CHECK(slash, "output key without '/'");
        snprintf(rid, sizeof(rid), "%.*s",
                 (int)(m->key_len - (size_t)(slash + 1 - (char *)m->key)),
                 slash + 1);
        t = json_object_get(s->times, rid);
        SB_CHECK(t, "record %s was never published", rid);
        if (json_integer_value(t) < s->now - 30 * DAY_MS)
                s->old++;
        sb_time_format(json_integer_value(t), want);
        SB_CHECK(sb_test_header(m, "sb_tags", v, sizeof(v)), "no sb_tags");
        tags = json_loads(v, 0, NULL);
        SB_CHECK(tags, "sb_tags is not JSON: %s", v);
        SB_CHECK_STR(want,
                     json_string_value(json_object_get(tags, "collected_at")),
                     "sb_tags collected_at (the record's updated_at)");
        SB_CHECK_STR("verified",
                     json_string_value(json_object_get(tags, "reliability")),
                     "sb_tags reliability (the dataset's)");
        if (s->with_limits) {
                json_t *want_tags =
                    json_pack("{s:s, s:[s,s], s:s, s:i, s:s}", "collected_at",
                              want, "purposes", "follow-up", "statistics",
                              "reliability", "verified", "retention_days", 90,
                              "valid_until", "2099-01-01T00:00:00.000Z");

                SB_CHECK(json_equal(want_tags, tags),
                         "sb_tags of the limited grant: %s", v);
                json_decref(want_tags);
        } else {
                json_t *research = json_pack("[s]", "research");

                SB_CHECK(
                    json_equal(json_object_get(tags, "purposes"), research) &&
                        !json_object_get(tags, "valid_until") &&
                        !json_object_get(tags, "retention_days"),
                    "a grant without limits carries no limit tags: %s", v);
                json_decref(research);
        }
        /* Sorted keys, compact: the text is canonical. */
        {
                char *canon = json_dumps(tags, JSON_COMPACT | JSON_SORT_KEYS);

                SB_CHECK_STR(canon, v, "sb_tags text (compact, sorted keys)");
                free(canon);
        }
        json_decref(tags);
        s->tagged++;
}

int main(void)
{
        char errstr[1024], *text = NULL, *line, *save = NULL, when[32];
        size_t len = 0, published = 0, old = 0;
        json_t *times = json_object();
        sb_holder_stats_t hs;
        sb_gateway_t *gw;
        sb_holder_t *h;
        sb_testenv_t te;
        seen_t seen;
        FILE *mem, *in;
        int64_t now = sb_now_ms();
        int i = 0;

        sb_testenv_init(&te);
        sb_testenv_grant(&te, "recent.json", grant_recent);
        sb_testenv_grant(&te, "all.json", grant_all);

        /* Every third record was last changed 60 days ago, the others 10
         * days ago, or, for one, 29 days and 23 hours ago (just inside). */
        mem = open_memstream(&text, &len);
        sb_sample_write(mem, SUBJECTS, 5);
        fclose(mem);
        mem = open_memstream(&line, &len);
        {
                char *all = text, *l;

                for (l = strtok_r(all, "\n", &save); l;
                     l = strtok_r(NULL, "\n", &save), i++) {
                        json_t *rec = json_loads(l, 0, NULL);
                        int64_t t = i % 3 == 0 ? now - 60 * DAY_MS
                                    : i == 1   ? now - 30 * DAY_MS + 3600000
                                               : now - 10 * DAY_MS;
                        char *out;

                        SB_CHECK(rec, "sample line");
                        t -= t % 1000;
                        sb_time_format(t, when);
                        json_object_set_new(rec, "updated_at",
                                            json_string(when));
                        json_object_set_new(
                            times,
                            json_string_value(json_object_get(rec, "file_id")),
                            json_integer(t));
                        old += t < now - 30 * DAY_MS;
                        out = json_dumps(rec, JSON_COMPACT);
                        fprintf(mem, "%s\n", out);
                        free(out);
                        json_decref(rec);
                        published++;
                }
        }
        fclose(mem);
        free(text);

        h = sb_holder_new(&te.holder_cfg, "beneficiaries", errstr,
                          sizeof(errstr));
        SB_CHECK(h, "holder: %s", errstr);
        in = fmemopen(line, len, "r");
        SB_OK_OR_FAIL(
            sb_holder_publish(h, in, "aged", NULL, &hs, errstr, sizeof(errstr)),
            errstr);
        fclose(in);
        free(line);
        gw = sb_gateway_new(&te.gw_cfg, te.key, errstr, sizeof(errstr));
        SB_CHECK(gw, "gateway: %s", errstr);
        SB_OK_OR_FAIL(
            sb_gateway_run(gw, NULL, SB_TEST_IDLE_MS, errstr, sizeof(errstr)),
            errstr);
        SB_CHECK_INT(old, sb_gateway_stats(gw)->too_old,
                     "records refused to the history_days grant");

        memset(&seen, 0, sizeof(seen));
        seen.times = times;
        seen.now = now;
        seen.with_limits = 1;
        sb_testenv_read_topic(&te, "sb.out.recent-desk.beneficiaries",
                              on_message, &seen);
        SB_CHECK_INT(published - old, seen.records,
                     "records on the history_days grant's stream");
        SB_CHECK_INT(0, seen.old, "records older than 30 days shared");
        SB_CHECK_INT(seen.records, seen.tagged, "records tagged");
        printf("history_days 30: %ld of %zu records shared, the %zu older "
               "ones not; every record tagged\n",
               seen.records, published, old);

        memset(&seen, 0, sizeof(seen));
        seen.times = times;
        seen.now = now;
        sb_testenv_read_topic(&te, "sb.out.archive-lab.beneficiaries",
                              on_message, &seen);
        SB_CHECK_INT(published, seen.records,
                     "records on the stream of the grant without history");
        SB_CHECK_INT((long)old, seen.old, "old records on that stream");
        printf("no history_days: all %ld records shared, tagged\n",
               seen.records);

        json_decref(times);
        sb_gateway_destroy(gw);
        sb_holder_destroy(h);
        sb_testenv_release(&te);
        return 0;
}
