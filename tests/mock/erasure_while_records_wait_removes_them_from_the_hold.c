/*
 * Quotas and rights (DESIGN §5 "rate", §6; CNIL R5.2-03, R6.2-05): a
 * subject is erased while its records wait on the hold of a grant over its
 * rate. They never reach that grant's stream (the drain checks the
 * subject's state again and excludes them); every other record does, and
 * the unlimited grant's stream got the subject's records at once, then
 * their tombstones.
 */
#include <pthread.h>
#include <unistd.h>

#include "crypto.h"
#include "envelope.h"
#include "sample.h"
#include "testutil.h"

#define SUBJECTS 30

static const char *grant_fast =
    "{\"id\": \"g-fast\", \"reuser\": \"fast-desk\", \"dataset\": "
    "\"beneficiaries\", \"purposes\": [\"statistics\"], \"legal_basis\": "
    "\"gdpr-6-1-e\", \"status\": \"approved\", \"fields\": {\"postcode\": "
    "\"keep\"}}";
static const char *grant_slow =
    "{\"id\": \"g-slow\", \"reuser\": \"slow-lab\", \"dataset\": "
    "\"beneficiaries\", \"purposes\": [\"research\"], \"legal_basis\": "
    "\"gdpr-6-1-e\", \"status\": \"approved\", \"fields\": {\"postcode\": "
    "\"keep\"}, \"rate\": {\"records_per_second\": 3}}";

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

/* What a stream holds about the erased subject and the others. */
typedef struct tally_s {
        const char *ps; /* the erased subject's pseudonym */
        long subject_records, subject_tombstones, other_records;
} tally_t;

static void on_message(const rd_kafka_message_t *m, void *opaque)
{
        tally_t *t = opaque;
        size_t n = strlen(t->ps);
        int mine = m->key_len > n && !memcmp(m->key, t->ps, n) &&
                   ((const char *)m->key)[n] == '/';

        if (!memchr(m->key, '/', m->key_len))
                return; /* a rights notice, keyed by the pseudonym */
        if (mine && m->payload)
                t->subject_records++;
        else if (mine)
                t->subject_tombstones++;
        else if (m->payload)
                t->other_records++;
}

static tally_t tally(sb_testenv_t *te, const char *topic, const char *ps)
{
        tally_t t = {ps, 0, 0, 0};

        sb_testenv_read_topic(te, topic, on_message, &t);
        return t;
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
        const char *fast = "sb.out.fast-desk.beneficiaries";
        const char *slow = "sb.out.slow-lab.beneficiaries";
        char errstr[1024], input[300], subject[16], event_id[37];
        char ps_fast[SB_PSEUDONYM_HEXLEN + 1], ps_slow[SB_PSEUDONYM_HEXLEN + 1];
        char line[4096];
        size_t total, mine = 0;
        sb_holder_stats_t hs;
        sb_holder_t *h;
        sb_testenv_t te;
        pthread_t th;
        tally_t ts, tf;
        run_t r;
        FILE *fp;
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

        /* The last subject of the file: its records wait longest. */
        sb_sample_subject_id(SUBJECTS - 1, subject);
        pseudonym(&te, "fast-desk", subject, ps_fast);
        pseudonym(&te, "slow-lab", subject, ps_slow);
        snprintf(input, sizeof(input), "%s/in.ndjson", te.dir);
        fp = fopen(input, "w+");
        SB_CHECK(fp, "input");
        total = sb_sample_write(fp, SUBJECTS, 5);
        rewind(fp);
        while (fgets(line, sizeof(line), fp))
                mine += strstr(line, subject) != NULL;
        rewind(fp);
        SB_CHECK(mine > 0, "no record of %s", subject);
        SB_OK_OR_FAIL(
            sb_holder_publish(h, fp, input, NULL, &hs, errstr, sizeof(errstr)),
            errstr);
        fclose(fp);
        SB_OK_OR_FAIL(sb_holder_rights(h, SB_EV_ERASURE, subject, NULL,
                                       event_id, errstr, sizeof(errstr)),
                      errstr);

        /* The others reach the limited stream, at 3 a second. */
        for (i = 0; i < 600; i++) {
                ts = tally(&te, slow, ps_slow);
                if ((size_t)ts.other_records >= total - mine)
                        break;
                usleep(100 * 1000);
        }
        sleep(3); /* a held record of the subject would show now */
        r.stop = 1;
        pthread_join(th, NULL);
        SB_OK_OR_FAIL(r.err, r.errstr);

        ts = tally(&te, slow, ps_slow);
        tf = tally(&te, fast, ps_fast);
        printf("%zu records, %zu of %s, erased while waiting: limited stream "
               "%ld others, %ld of the subject; unlimited stream %ld "
               "others, %ld of the subject then %ld tombstones\n",
               total, mine, subject, ts.other_records, ts.subject_records,
               tf.other_records, tf.subject_records, tf.subject_tombstones);
        SB_CHECK_INT((long)(total - mine), ts.other_records,
                     "other records on the limited stream");
        SB_CHECK_INT(0, ts.subject_records,
                     "records of the erased subject on the limited stream");
        SB_CHECK_INT((long)(total - mine), tf.other_records,
                     "other records on the unlimited stream");
        SB_CHECK_INT((long)mine, tf.subject_records,
                     "records of the subject on the unlimited stream");
        SB_CHECK_INT((long)mine, tf.subject_tombstones,
                     "tombstones of the subject on the unlimited stream");
        SB_CHECK_INT((long)mine, sb_gateway_stats(r.gw)->held_excluded,
                     "held records excluded");
        SB_CHECK_INT(sb_gateway_stats(r.gw)->held,
                     sb_gateway_stats(r.gw)->released +
                         sb_gateway_stats(r.gw)->held_excluded,
                     "held records moved on");
        printf("the erased subject's %zu held record(s) never reached the "
               "limited stream\n",
               mine);

        sb_holder_destroy(h);
        sb_gateway_destroy(r.gw);
        sb_testenv_release(&te);
        return 0;
}
