/*
 * DESIGN.md §9; CNIL R4.3-13, R4.3-16: the gateway's audit chain survives
 * its restarts. A `sharebus gateway` process (with an audit key, a
 * checkpoint every 7 entries) shares a first batch, is killed with SIGKILL
 * while it shares a second one (its open transaction, audit entries
 * included, is aborted when the next instance fences it), is started again
 * and shares a third batch, then stops on SIGTERM. _sb.audit then holds
 * one chain, the gateway's transactional.id, from seq 1 with no gap and no
 * seq twice, every entry covered by a signed checkpoint, and it verifies
 * without allow-unchained; its delivery entries count every record
 * committed to the reuser's stream.
 *
 * librdkafka 2.0.2's mock keeps no transactional offset commits and shows
 * aborted transactions to read_committed consumers (see
 * kill9_gateway_and_reusers_on_mock_cluster_store_exactly_the_model.c), so
 * the restarted gateway shares its input again: the stream holds at least
 * every record, and the audit counts every committed one and never more
 * than the stream holds.
 */
#include <unistd.h>

#include "audit.h"
#include "envelope.h"
#include "proc.h"
#include "sample.h"
#include "sign.h"
#include "testutil.h"

#define SUBJECTS 40
#define CITY     "sb.out.city.beneficiaries"

static const char *grant_housing =
    "{\"id\": \"g-h\", \"reuser\": \"city\", \"dataset\": \"beneficiaries\", "
    "\"purposes\": [\"housing\"], \"legal_basis\": \"gdpr-6-1-c\", "
    "\"status\": \"approved\", \"fields\": {\"postcode\": \"keep\"}}";

static void on_output(const rd_kafka_message_t *m, void *opaque)
{
        char type[64];

        if (m->payload && sb_test_header(m, "ce_type", type, sizeof(type)) &&
            !strcmp(type, "sharebus.record.upsert"))
                (*(long *)opaque)++;
}

static long shared(sb_testenv_t *te)
{
        long n = 0;

        sb_testenv_read_topic(te, CITY, on_output, &n);
        return n;
}

/* Waits until the stream holds `want` records. */
static void wait_shared(sb_testenv_t *te, sb_proc_t *p, long want)
{
        long got = 0;
        int i;

        for (i = 0; i < 240; i++) {
                sb_proc_check_alive(p);
                if ((got = shared(te)) >= want)
                        return;
                usleep(500 * 1000);
        }
        sb_proc_tail(p);
        SB_TEST_FAIL("records on %s: expected %ld, got %ld", CITY, want, got);
}

static size_t publish(sb_testenv_t *te, sb_holder_t *h, uint64_t seed)
{
        char errstr[1024], path[300];
        sb_holder_stats_t hs;
        size_t n;
        FILE *fp;

        snprintf(path, sizeof(path), "%s/batch-%llu.ndjson", te->dir,
                 (unsigned long long)seed);
        fp = fopen(path, "w");
        SB_CHECK(fp, "cannot write %s", path);
        n = sb_sample_write(fp, SUBJECTS, seed);
        fclose(fp);
        fp = fopen(path, "r");
        SB_CHECK(fp, "%s", path);
        SB_OK_OR_FAIL(
            sb_holder_publish(h, fp, path, NULL, &hs, errstr, sizeof(errstr)),
            errstr);
        fclose(fp);
        return n;
}

int main(void)
{
        char errstr[1024], keyfile[300], pubfile[300], pskey[300];
        size_t n1, n2, n3, k;
        long delivered = 0, on_stream;
        sb_audit_report_t rep;
        sb_signkey_t *key;
        sb_holder_t *h;
        sb_testenv_t te;
        sb_proc_t p;
        json_t *j, *values, *x;
        const char *cfg;
        char *text;
        int rc;

        sb_testenv_init(&te);
        sb_testenv_grant(&te, "city.json", grant_housing);
        snprintf(pskey, sizeof(pskey), "%s/pseudonym.key", te.dir);
        SB_OK_OR_FAIL(sb_key_save(te.key, pskey, errstr, sizeof(errstr)),
                      errstr);
        key = sb_signkey_generate();
        SB_CHECK(key, "out of memory");
        snprintf(keyfile, sizeof(keyfile), "%s/audit.key", te.dir);
        snprintf(pubfile, sizeof(pubfile), "%s/audit.pub", te.dir);
        SB_OK_OR_FAIL(
            sb_signkey_save(key, keyfile, pubfile, errstr, sizeof(errstr)),
            errstr);
        j = sb_mockenv_kafka_json(te.mock);
        /* A killed member leaves the group quickly. */
        json_object_set_new(j, "properties",
                            json_pack("{s:s}", "session.timeout.ms", "6000"));
        j = json_pack("{s:o, s:[s], s:s, s:s, s:s, s:s, s:i, s:i, s:s, s:i}",
                      "kafka", j, "datasets", "beneficiaries", "schemas_dir",
                      SB_SCHEMAS_DIR, "grants_dir", te.grants_dir,
                      "pseudonym_key_file", pskey, "client_id", "gw-r",
                      "commit_interval_ms", 50, "transaction_timeout_ms", 10000,
                      "audit_key_file", keyfile, "audit_checkpoint_every", 7);
        SB_CHECK(j, "gateway config");
        text = json_dumps(j, JSON_INDENT(2));
        cfg = sb_testenv_file(&te, "gw.json", text);
        free(text);
        json_decref(j);
        sb_proc_init(&p, "gw-r", te.dir, "gateway", NULL, cfg);

        h = sb_holder_new(&te.holder_cfg, "beneficiaries", errstr,
                          sizeof(errstr));
        SB_CHECK(h, "holder: %s", errstr);

        /* 1. A first batch shared and committed. */
        sb_proc_start(&p);
        n1 = publish(&te, h, 1);
        wait_shared(&te, &p, (long)n1);
        /* 2. Killed while it shares the second. */
        n2 = publish(&te, h, 2);
        usleep(150 * 1000);
        sb_proc_kill9(&p);
        /* 3. Started again: it finishes the second batch and shares a
         *    third, then stops cleanly. */
        sb_proc_start(&p);
        n3 = publish(&te, h, 3);
        wait_shared(&te, &p, (long)(n1 + n2 + n3));
        usleep(500 * 1000);
        rc = sb_proc_stop(&p);
        if (rc != 0)
                sb_proc_tail(&p);
        SB_CHECK_INT(0, rc, "gateway exit status on SIGTERM");
        on_stream = shared(&te);
        SB_CHECK(on_stream >= (long)(n1 + n2 + n3),
                 "records on the stream: %ld for %zu published", on_stream,
                 n1 + n2 + n3);

        values = sb_testenv_audit_values(&te);
        sb_test_audit_intact(values, sb_signkey_public(key), &rep);
        SB_CHECK_INT(1, rep.chain_cnt, "chains on _sb.audit");
        SB_CHECK_STR("sb-gateway-gw-r", rep.chains[0].chain,
                     "chain id (the gateway's transactional.id)");
        SB_CHECK_INT(1, rep.chains[0].first_seq, "first seq");
        SB_CHECK_INT(rep.entries, rep.chains[0].last_seq,
                     "last seq: one committed entry per seq, across the "
                     "restart");
        SB_CHECK_INT(0, rep.chains[0].uncovered,
                     "entries not covered by a checkpoint after SIGTERM");
        SB_CHECK(rep.chains[0].checkpoints >= 2, "checkpoints: %zu",
                 rep.chains[0].checkpoints);
        json_array_foreach(values, k, x)
        {
                json_t *e = json_loads(json_string_value(x), 0, NULL);

                if (!strcmp(json_string_value(json_object_get(e, "op")),
                            "delivery"))
                        delivered +=
                            json_integer_value(json_object_get(e, "records"));
                json_decref(e);
        }
        /* Every committed record is audited, and nothing the stream does
         * not hold. On the mock the two may differ: the killed instance's
         * aborted transaction stays visible with the records it had
         * produced, while its delivery entries, written just before a
         * commit, never were (a real broker hides the records too). */
        SB_CHECK(delivered >= (long)(n1 + n2 + n3) && delivered <= on_stream,
                 "records in the delivery entries: %ld, published %zu, on "
                 "the stream %ld",
                 delivered, n1 + n2 + n3, on_stream);
        printf("killed once, restarted: %zu entries in one chain (seq 1..%lld),"
               " %zu checkpoints, intact; %ld records delivered and "
               "audited\n",
               rep.entries, (long long)rep.chains[0].last_seq,
               rep.chains[0].checkpoints, delivered);

        sb_audit_report_release(&rep);
        json_decref(values);
        sb_signkey_destroy(key);
        sb_holder_destroy(h);
        sb_testenv_release(&te);
        return 0;
}
