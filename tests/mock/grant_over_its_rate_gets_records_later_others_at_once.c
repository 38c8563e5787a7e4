/*
 * Quotas (DESIGN §5 "rate"; CNIL R5.2-02, R5.2-03): two grants on one
 * dataset, one without a rate, one with records_per_second 25. The same
 * batch is published twice (every record twice, the second version later).
 * The unlimited reuser's stream gets everything at once; the limited one's
 * gets everything too, each message once, over time (never faster than
 * the rate allows), with the versions of each record in order; nothing is
 * lost, and a quota.exceeded notice is on the limited reuser's notice
 * topic.
 */
#include <pthread.h>
#include <unistd.h>

#include "envelope.h"
#include "sample.h"
#include "testutil.h"

#define SUBJECTS 80
#define RATE     25

static const char *grant_fast =
    "{\"id\": \"g-fast\", \"reuser\": \"fast-desk\", \"dataset\": "
    "\"beneficiaries\", \"purposes\": [\"statistics\"], \"legal_basis\": "
    "\"gdpr-6-1-e\", \"status\": \"approved\", \"fields\": {\"postcode\": "
    "\"keep\"}}";
static const char *grant_slow =
    "{\"id\": \"g-slow\", \"reuser\": \"slow-lab\", \"dataset\": "
    "\"beneficiaries\", \"purposes\": [\"research\"], \"legal_basis\": "
    "\"gdpr-6-1-e\", \"status\": \"approved\", \"fields\": {\"postcode\": "
    "\"keep\"}, \"rate\": {\"records_per_second\": 25, "
    "\"records_per_day\": 100000}}";

typedef struct run_s {
        sb_gateway_t *gw;
        volatile sig_atomic_t stop;
        sb_err_t err;
        char errstr[1024];
} run_t;

static void *gateway_thread(void *arg)
{
        run_t *r = arg;

        r->err =
            sb_gateway_run(r->gw, &r->stop, 0, r->errstr, sizeof(r->errstr));
        return NULL;
}

static size_t publish(sb_testenv_t *te, sb_holder_t *h, uint64_t seed)
{
        char errstr[1024], input[300];
        sb_holder_stats_t hs;
        size_t n;
        FILE *fp;

        snprintf(input, sizeof(input), "%s/in.ndjson", te->dir);
        fp = fopen(input, "w+");
        SB_CHECK(fp, "input");
        n = sb_sample_write(fp, SUBJECTS, seed);
        rewind(fp);
        SB_OK_OR_FAIL(
            sb_holder_publish(h, fp, input, NULL, &hs, errstr, sizeof(errstr)),
            errstr);
        fclose(fp);
        return n;
}

/* Per key: the ce_time of each version, in stream order. */
typedef struct stream_s {
        json_t *keys;
        int out_of_order;
} stream_t;

static void on_message(const rd_kafka_message_t *m, void *opaque)
{
        stream_t *s = opaque;
        char key[400], t[64];
        json_t *a;

        SB_CHECK(m->payload, "a tombstone on a stream without rights");
        SB_CHECK(sb_test_header(m, "ce_time", t, sizeof(t)), "no ce_time");
        SB_CHECK(!sb_test_header(m, "sb_hold_subject", key, sizeof(key)),
                 "a released record kept the hold's subject header");
        snprintf(key, sizeof(key), "%.*s", (int)m->key_len,
                 (const char *)m->key);
        if (!(a = json_object_get(s->keys, key)))
                json_object_set_new(s->keys, key, a = json_array());
        if (json_array_size(a) &&
            strcmp(json_string_value(json_array_get(a, json_array_size(a) - 1)),
                   t) > 0)
                s->out_of_order++;
        json_array_append_new(a, json_string(t));
}

static void check_stream(sb_testenv_t *te, const char *topic, size_t keys)
{
        stream_t s = {json_object(), 0};
        const char *k;
        json_t *v;

        sb_testenv_read_topic(te, topic, on_message, &s);
        SB_CHECK_INT(keys, json_object_size(s.keys), "record keys");
        json_object_foreach(s.keys, k, v)
            SB_CHECK_INT(2, json_array_size(v), "versions of a record");
        SB_CHECK_INT(0, s.out_of_order, "versions out of order");
        printf("%s: %zu records, each version once, in order\n", topic, keys);
        json_decref(s.keys);
}

static void on_notice(const rd_kafka_message_t *m, void *opaque)
{
        json_t **out = opaque;
        char type[64];

        SB_CHECK(sb_test_header(m, "ce_type", type, sizeof(type)), "ce_type");
        SB_CHECK(!strcmp(type, "sharebus.quota.exceeded"), "ce_type %s", type);
        json_decref(*out);
        *out = json_loadb(m->payload, m->len, 0, NULL);
}

int main(void)
{
        const char *fast = "sb.out.fast-desk.beneficiaries";
        const char *slow = "sb.out.slow-lab.beneficiaries";
        char errstr[1024];
        int64_t start, fast_at = 0, slow_at = 0;
        long nslow_at_fast = 0, n;
        json_t *notice = NULL;
        sb_holder_t *h;
        sb_testenv_t te;
        pthread_t th;
        size_t keys, total;
        run_t r;
        int i;

        sb_testenv_init(&te);
        sb_testenv_grant(&te, "fast.json", grant_fast);
        sb_testenv_grant(&te, "slow.json", grant_slow);
        SB_OK_OR_FAIL(sb_mockenv_topic(te.mock, "_sb.hold.g-slow", 3, errstr,
                                       sizeof(errstr)),
                      errstr);
        SB_OK_OR_FAIL(sb_mockenv_topic(te.mock, "sb.notice.slow-lab", 1, errstr,
                                       sizeof(errstr)),
                      errstr);
        h = sb_holder_new(&te.holder_cfg, "beneficiaries", errstr,
                          sizeof(errstr));
        SB_CHECK(h, "holder: %s", errstr);
        memset(&r, 0, sizeof(r));
        r.gw = sb_gateway_new(&te.gw_cfg, te.key, errstr, sizeof(errstr));
        SB_CHECK(r.gw, "gateway: %s", errstr);
        SB_CHECK(pthread_create(&th, NULL, gateway_thread, &r) == 0, "thread");

        keys = publish(&te, h, 7);
        usleep(50 * 1000); /* the second versions are later */
        SB_CHECK_INT(keys, publish(&te, h, 7), "records of the second batch");
        total = 2 * keys;
        start = sb_now_ms();
        for (i = 0; i < 1200 && (!fast_at || !slow_at); i++) {
                if (!fast_at &&
                    (size_t)sb_testenv_count_messages(&te, fast) >= total) {
                        fast_at = sb_now_ms();
                        nslow_at_fast = sb_testenv_count_messages(&te, slow);
                }
                if (!slow_at &&
                    (size_t)sb_testenv_count_messages(&te, slow) >= total)
                        slow_at = sb_now_ms();
                usleep(100 * 1000);
        }
        SB_CHECK(fast_at && slow_at, "streams incomplete after 120 s");
        printf("%zu messages: unlimited stream complete after %" PRId64
               " ms (limited: %ld then), limited after %" PRId64 " ms\n",
               total, fast_at - start, nslow_at_fast, slow_at - start);
        SB_CHECK((size_t)nslow_at_fast < total,
                 "the limited stream was complete as soon as the unlimited "
                 "one");
        /* A burst of one second's worth, then RATE a second. */
        SB_CHECK(slow_at - start >=
                     (int64_t)((total - RATE) * 1000 / RATE) * 8 / 10,
                 "the limited stream took %" PRId64 " ms, faster than its "
                 "rate allows",
                 slow_at - start);
        sleep(2); /* anything late or repeated would show now */
        r.stop = 1;
        pthread_join(th, NULL);
        SB_OK_OR_FAIL(r.err, r.errstr);

        check_stream(&te, fast, keys);
        check_stream(&te, slow, keys);
        n = sb_testenv_count_messages(&te, slow);
        SB_CHECK_INT((long)total, n, "messages on the limited stream");
        SB_CHECK(sb_gateway_stats(r.gw)->held > 0, "nothing was held");
        SB_CHECK_INT(sb_gateway_stats(r.gw)->held,
                     sb_gateway_stats(r.gw)->released, "held records released");
        SB_CHECK_INT(0, sb_gateway_stats(r.gw)->held_excluded,
                     "held records excluded");
        SB_CHECK_INT(1,
                     sb_testenv_read_topic(&te, "sb.notice.slow-lab", on_notice,
                                           &notice),
                     "quota notices");
        SB_CHECK(notice, "the notice is not JSON");
        SB_CHECK(!strcmp(json_string_value(json_object_get(notice, "notice")),
                         "quota.exceeded"),
                 "notice kind");
        SB_CHECK(!strcmp(json_string_value(json_object_get(notice, "grant")),
                         "g-slow"),
                 "notice grant");
        SB_CHECK(!strcmp(json_string_value(json_object_get(notice, "limit")),
                         "records_per_second"),
                 "notice limit");
        printf("%zu record(s) held then released; one quota.exceeded "
               "notice\n",
               sb_gateway_stats(r.gw)->held);

        json_decref(notice);
        sb_holder_destroy(h);
        sb_gateway_destroy(r.gw);
        sb_testenv_release(&te);
        return 0;
}
