/*
 * How a reuser catches up (docs/grants.md, "Quotas"; CNIL R5.2-03): a
 * grant's backlog on its hold drains at its rate; the platform publishes a
 * new version with a higher rate on _sb.grants and the gateway, while
 * running, drains the rest at once. A grant with a rate added meanwhile
 * gets its hold read from then on. Each stream holds each record once.
 */
#include <pthread.h>
#include <unistd.h>

#include "envelope.h"
#include "sample.h"
#include "testutil.h"

#define SUBJECTS 40

static const char *grant_a =
    "{\"id\": \"g-a\", \"reuser\": \"desk-a\", \"dataset\": "
    "\"beneficiaries\", \"purposes\": [\"statistics\"], \"legal_basis\": "
    "\"gdpr-6-1-e\", \"status\": \"approved\", \"fields\": {\"postcode\": "
    "\"keep\"}, \"rate\": {\"records_per_second\": %d}}";
static const char *grant_b =
    "{\"id\": \"g-b\", \"reuser\": \"desk-b\", \"dataset\": "
    "\"beneficiaries\", \"purposes\": [\"statistics\"], \"legal_basis\": "
    "\"gdpr-6-1-e\", \"status\": \"approved\", \"fields\": {\"postcode\": "
    "\"keep\"}, \"rate\": {\"records_per_second\": 5}}";

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

static void publish_grant(sb_testenv_t *te, const char *id, const char *json)
{
        rd_kafka_conf_t *conf = rd_kafka_conf_new();
        char errstr[512];
        rd_kafka_t *rk;

        rd_kafka_conf_set(conf, "bootstrap.servers", te->mock->bootstraps, NULL,
                          0);
        rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
        SB_CHECK(rk, "producer: %s", errstr);
        SB_CHECK(!rd_kafka_producev(
                     rk, RD_KAFKA_V_TOPIC("_sb.grants"),
                     RD_KAFKA_V_KEY(id, strlen(id)),
                     RD_KAFKA_V_VALUE((void *)json, strlen(json)),
                     RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END),
                 "produce grant %s", id);
        SB_CHECK(rd_kafka_flush(rk, 10000) == 0, "flush grant %s", id);
        rd_kafka_destroy(rk);
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

static void wait_reloads(const sb_gateway_t *gw, size_t want)
{
        int i;

        for (i = 0; i < 120; i++) {
                if (((volatile const sb_gateway_stats_t *)sb_gateway_stats(gw))
                        ->grant_reloads >= want)
                        return;
                usleep(250 * 1000);
        }
        SB_TEST_FAIL("the gateway applied %zu grant change(s), expected %zu",
                     sb_gateway_stats(gw)->grant_reloads, want);
}

/* Waits until `topic` holds `want` messages; returns how long it took. */
static int64_t wait_count(sb_testenv_t *te, const char *topic, size_t want,
                          int seconds)
{
        int64_t start = sb_now_ms();
        long n = 0;

        while (sb_now_ms() - start < seconds * 1000LL) {
                n = sb_testenv_count_messages(te, topic);
                if ((size_t)n >= want)
                        return sb_now_ms() - start;
                usleep(200 * 1000);
        }
        SB_TEST_FAIL("%s: %ld message(s) after %d s, expected %zu", topic, n,
                     seconds, want);
        return -1;
}

static void on_message(const rd_kafka_message_t *m, void *opaque)
{
        json_t *keys = opaque;
        char key[400];
        json_t *n;

        snprintf(key, sizeof(key), "%.*s", (int)m->key_len,
                 (const char *)m->key);
        n = json_object_get(keys, key);
        json_object_set_new(keys, key,
                            json_integer(n ? json_integer_value(n) + 1 : 1));
}

static void check_once(sb_testenv_t *te, const char *topic, size_t want)
{
        json_t *keys = json_object(), *v;
        const char *k;

        sb_testenv_read_topic(te, topic, on_message, keys);
        SB_CHECK_INT(want, json_object_size(keys), topic);
        json_object_foreach(keys, k, v)
            SB_CHECK_INT(1, json_integer_value(v), "times a record was sent");
        printf("%s: %zu records, once each\n", topic, want);
        json_decref(keys);
}

int main(void)
{
        const char *ta = "sb.out.desk-a.beneficiaries";
        const char *tb = "sb.out.desk-b.beneficiaries";
        const char *topics[] = {"_sb.hold.g-a", "_sb.hold.g-b"};
        char errstr[1024], text[1024];
        size_t n1, n2;
        long early;
        int64_t took;
        sb_holder_t *h;
        sb_testenv_t te;
        pthread_t th;
        run_t r;
        int i;

        sb_testenv_init(&te);
        SB_OK_OR_FAIL(
            sb_mockenv_topic(te.mock, "_sb.grants", 1, errstr, sizeof(errstr)),
            errstr);
        SB_OK_OR_FAIL(sb_mockenv_topic(te.mock, ta, 3, errstr, sizeof(errstr)),
                      errstr);
        SB_OK_OR_FAIL(sb_mockenv_topic(te.mock, tb, 3, errstr, sizeof(errstr)),
                      errstr);
        for (i = 0; i < 2; i++)
                SB_OK_OR_FAIL(sb_mockenv_topic(te.mock, topics[i], 3, errstr,
                                               sizeof(errstr)),
                              errstr);
        SB_OK_OR_FAIL(sb_mockenv_topic(te.mock, "sb.notice.desk-a", 1, errstr,
                                       sizeof(errstr)),
                      errstr);
        SB_OK_OR_FAIL(sb_mockenv_topic(te.mock, "sb.notice.desk-b", 1, errstr,
                                       sizeof(errstr)),
                      errstr);
        free(te.gw_cfg.grants_dir);
        te.gw_cfg.grants_dir = NULL;
        te.gw_cfg.grants_topic = strdup("_sb.grants");

        snprintf(text, sizeof(text), grant_a, 2);
        publish_grant(&te, "g-a", text);
        memset(&r, 0, sizeof(r));
        r.gw = sb_gateway_new(&te.gw_cfg, te.key, errstr, sizeof(errstr));
        SB_CHECK(r.gw, "gateway: %s", errstr);
        SB_CHECK(pthread_create(&th, NULL, gateway_thread, &r) == 0, "thread");
        h = sb_holder_new(&te.holder_cfg, "beneficiaries", errstr,
                          sizeof(errstr));
        SB_CHECK(h, "holder: %s", errstr);

        /* 2 a second: after a few seconds most of the batch waits. */
        n1 = publish(&te, h, 3);
        wait_count(&te, ta, 4, 60);
        sleep(2);
        early = sb_testenv_count_messages(&te, ta);
        SB_CHECK((size_t)early < n1 / 2,
                 "%ld of %zu records already on the stream at 2 a second",
                 early, n1);

        /* A new grant with a rate: its hold is read from now on. */
        publish_grant(&te, "g-b", grant_b);
        wait_reloads(r.gw, 1);
        /* The rate raised: the rest of the backlog drains at once. */
        snprintf(text, sizeof(text), grant_a, 100000);
        publish_grant(&te, "g-a", text);
        wait_reloads(r.gw, 2);
        took = wait_count(&te, ta, n1, 60);
        printf("backlog of %zu drained %" PRId64 " ms after the rate was "
               "raised (%ld were on the stream before)\n",
               n1 - (size_t)early, took, early);
        SB_CHECK(took < 8000, "the backlog took %" PRId64 " ms to drain", took);

        n2 = publish(&te, h, 4);
        wait_count(&te, ta, n1 + n2, 60);
        wait_count(&te, tb, n2, 60);
        sleep(2); /* anything late or repeated would show now */
        r.stop = 1;
        pthread_join(th, NULL);
        SB_OK_OR_FAIL(r.err, r.errstr);
        check_once(&te, ta, n1 + n2);
        check_once(&te, tb, n2);
        SB_CHECK(sb_gateway_stats(r.gw)->held > 0, "nothing was held");
        SB_CHECK_INT(sb_gateway_stats(r.gw)->held,
                     sb_gateway_stats(r.gw)->released, "held records released");

        sb_holder_destroy(h);
        sb_gateway_destroy(r.gw);
        sb_testenv_release(&te);
        return 0;
}
