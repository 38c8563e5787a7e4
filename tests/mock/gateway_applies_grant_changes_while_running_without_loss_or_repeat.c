/*
 * Grants published on _sb.grants (DESIGN §3, §5) take effect while the
 * gateway runs, at a transaction boundary: records before a change are
 * shared under the grants before it, records after under the new ones,
 * and none is lost or shared twice.
 *
 *   grant A published, gateway started      batch 1 -> A
 *   grant B published (new reuser)          batch 2 -> A and B
 *   grant A revoked                         batch 3 -> B only
 *   an invalid version of B                 batch 4 -> nobody (B shares
 *                                           nothing until a valid version)
 *   B valid again                           batch 5 -> B
 *   a second grant B2 for B's reuser        left out while B is active
 *   B revoked                               batch 6 -> B's reuser, via B2
 *
 * Each stream then holds exactly the record ids of its batches, once each.
 */
#include <pthread.h>
#include <unistd.h>

#include "envelope.h"
#include "sample.h"
#include "testutil.h"

#define SUBJECTS 15

static const char *grant_a =
    "{\"id\": \"g-a\", \"reuser\": \"early-desk\", \"dataset\": "
    "\"beneficiaries\", \"purposes\": [\"statistics\"], \"legal_basis\": "
    "\"gdpr-6-1-e\", \"status\": \"%s\", \"fields\": {\"postcode\": "
    "\"keep\"}}";
static const char *grant_b2 =
    "{\"id\": \"g-b2\", \"reuser\": \"late-lab\", \"dataset\": "
    "\"beneficiaries\", \"purposes\": [\"research\"], \"legal_basis\": "
    "\"gdpr-6-1-e\", \"status\": \"approved\", \"fields\": "
    "{\"postcode\": \"keep\", \"benefit\": \"keep\"}}";
static const char *grant_b_revoked =
    "{\"id\": \"g-b\", \"reuser\": \"late-lab\", \"dataset\": "
    "\"beneficiaries\", \"purposes\": [\"research\"], \"legal_basis\": "
    "\"gdpr-6-1-e\", \"status\": \"revoked\", \"fields\": {\"%s\": "
    "\"keep\"}}";
static const char *grant_b =
    "{\"id\": \"g-b\", \"reuser\": \"late-lab\", \"dataset\": "
    "\"beneficiaries\", \"purposes\": [\"research\"], \"legal_basis\": "
    "\"gdpr-6-1-e\", \"status\": \"approved\", \"fields\": {\"%s\": "
    "\"keep\"}}";

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

/* Publishes batch `seed` and adds its record ids to `ids`. */
static void publish_batch(sb_holder_t *h, uint64_t seed, json_t *ids)
{
        char *text = NULL, errstr[1024], *line, *save = NULL;
        size_t len = 0;
        sb_holder_stats_t hs;
        FILE *mem, *in;

        mem = open_memstream(&text, &len);
        sb_sample_write(mem, SUBJECTS, seed);
        fclose(mem);
        in = fmemopen(text, len, "r");
        SB_OK_OR_FAIL(sb_holder_publish(h, in, "batch", NULL, &hs, errstr,
                                        sizeof(errstr)),
                      errstr);
        fclose(in);
        for (line = strtok_r(text, "\n", &save); line;
             line = strtok_r(NULL, "\n", &save)) {
                json_t *rec = json_loads(line, 0, NULL);

                json_object_set_new(
                    ids, json_string_value(json_object_get(rec, "file_id")),
                    json_true());
                json_decref(rec);
        }
        free(text);
}

typedef struct stream_s {
        json_t *ids; /* record id -> times seen */
} stream_t;

static void on_message(const rd_kafka_message_t *m, void *opaque)
{
        stream_t *s = opaque;
        const char *slash = memchr(m->key, '/', m->key_len);
        char rid[256];
        json_t *n;

        SB_CHECK(slash, "output key without '/'");
        snprintf(rid, sizeof(rid), "%.*s",
                 (int)(m->key_len - (size_t)(slash + 1 - (char *)m->key)),
                 slash + 1);
        n = json_object_get(s->ids, rid);
        json_object_set_new(s->ids, rid,
                            json_integer(n ? json_integer_value(n) + 1 : 1));
}

static json_t *stream_ids(sb_testenv_t *te, const char *topic)
{
        stream_t s = {json_object()};

        sb_testenv_read_topic(te, topic, on_message, &s);
        return s.ids;
}

/* Waits until `topic` holds `want` messages (60 s at most). */
static void wait_count(sb_testenv_t *te, const char *topic, size_t want)
{
        long n = 0;
        int i;

        for (i = 0; i < 120; i++) {
                n = sb_testenv_count_messages(te, topic);
                if ((size_t)n >= want)
                        return;
                usleep(500 * 1000);
        }
        SB_TEST_FAIL("%s: %ld message(s), expected %zu", topic, n, want);
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

/* Waits until the gateway has taken in `want` records (60 s at most): a
 * grant change published after that cannot apply to them. */
static void wait_records_in(const sb_gateway_t *gw, size_t want)
{
        int i;

        for (i = 0; i < 240; i++) {
                if (((volatile const sb_gateway_stats_t *)sb_gateway_stats(gw))
                        ->records_in >= want)
                        return;
                usleep(250 * 1000);
        }
        SB_TEST_FAIL("the gateway took in %zu record(s), expected %zu",
                     sb_gateway_stats(gw)->records_in, want);
}

static void check_stream(sb_testenv_t *te, const char *topic, json_t *want)
{
        json_t *got = stream_ids(te, topic), *v;
        const char *k;

        json_object_foreach(got, k, v)
        {
                SB_CHECK(json_object_get(want, k),
                         "%s: record %s shared, it should not be", topic, k);
                SB_CHECK_INT(1, json_integer_value(v), "times shared");
        }
        SB_CHECK_INT(json_object_size(want), json_object_size(got), topic);
        printf("%s: exactly its %zu records, once each\n", topic,
               json_object_size(want));
        json_decref(got);
}

static void merge(json_t *into, json_t *from)
{
        json_object_update(into, from);
}

int main(void)
{
        char errstr[1024], text[1024];
        json_t *b[7], *want_a = json_object(), *want_b = json_object();
        const char *ta = "sb.out.early-desk.beneficiaries";
        const char *tb = "sb.out.late-lab.beneficiaries";
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
        free(te.gw_cfg.grants_dir);
        te.gw_cfg.grants_dir = NULL;
        te.gw_cfg.grants_topic = strdup("_sb.grants");
        for (i = 0; i < 7; i++)
                b[i] = json_object();

        snprintf(text, sizeof(text), grant_a, "approved");
        publish_grant(&te, "g-a", text);
        memset(&r, 0, sizeof(r));
        r.gw = sb_gateway_new(&te.gw_cfg, te.key, errstr, sizeof(errstr));
        SB_CHECK(r.gw, "gateway: %s", errstr);
        SB_CHECK(pthread_create(&th, NULL, gateway_thread, &r) == 0, "thread");
        h = sb_holder_new(&te.holder_cfg, "beneficiaries", errstr,
                          sizeof(errstr));
        SB_CHECK(h, "holder: %s", errstr);

        publish_batch(h, 1, b[1]);
        merge(want_a, b[1]);
        wait_count(&te, ta, json_object_size(want_a));

        snprintf(text, sizeof(text), grant_b, "postcode");
        publish_grant(&te, "g-b", text);
        wait_reloads(r.gw, 1);
        publish_batch(h, 2, b[2]);
        merge(want_a, b[2]);
        merge(want_b, b[2]);
        wait_count(&te, tb, json_object_size(want_b));

        snprintf(text, sizeof(text), grant_a, "revoked");
        publish_grant(&te, "g-a", text);
        wait_reloads(r.gw, 2);
        publish_batch(h, 3, b[3]);
        merge(want_b, b[3]);
        wait_count(&te, tb, json_object_size(want_b));

        /* A field the dataset does not have: refused, B shares nothing. */
        snprintf(text, sizeof(text), grant_b, "shoe_size");
        publish_grant(&te, "g-b", text);
        wait_reloads(r.gw, 3);
        SB_CHECK_INT(1, sb_gateway_stats(r.gw)->grants_invalid,
                     "invalid grant versions");
        publish_batch(h, 4, b[4]);
        wait_records_in(r.gw, json_object_size(b[1]) + json_object_size(b[2]) +
                                  json_object_size(b[3]) +
                                  json_object_size(b[4]));

        snprintf(text, sizeof(text), grant_b, "postcode");
        publish_grant(&te, "g-b", text);
        wait_reloads(r.gw, 4);
        publish_batch(h, 5, b[5]);
        merge(want_b, b[5]);
        wait_count(&te, tb, json_object_size(want_b));

        /* A second grant for the same reuser and dataset shares nothing
         * while the first is active, and takes over once it is revoked. */
        publish_grant(&te, "g-b2", grant_b2);
        wait_reloads(r.gw, 5);
        SB_CHECK_INT(1, sb_gateway_stats(r.gw)->grants_invalid,
                     "grants left out (two for one reuser and dataset)");
        snprintf(text, sizeof(text), grant_b_revoked, "postcode");
        publish_grant(&te, "g-b", text);
        wait_reloads(r.gw, 6);
        SB_CHECK_INT(0, sb_gateway_stats(r.gw)->grants_invalid,
                     "grants left out once the first is revoked");
        publish_batch(h, 6, b[6]);
        merge(want_b, b[6]);
        wait_count(&te, tb, json_object_size(want_b));
        sleep(2); /* anything late would show now */

        r.stop = 1;
        pthread_join(th, NULL);
        SB_OK_OR_FAIL(r.err, r.errstr);
        SB_CHECK_INT(6, sb_gateway_stats(r.gw)->grant_reloads,
                     "grant changes applied");
        check_stream(&te, ta, want_a);
        check_stream(&te, tb, want_b);
        printf("6 grant changes applied while running; batch 4 (%zu "
               "records, invalid grant) shared with nobody\n",
               json_object_size(b[4]));

        for (i = 0; i < 7; i++)
                json_decref(b[i]);
        json_decref(want_a);
        json_decref(want_b);
        sb_holder_destroy(h);
        sb_gateway_destroy(r.gw);
        sb_testenv_release(&te);
        return 0;
}
