/*
 * Integrity end to end (DESIGN.md §9; CNIL R3.4-*, R4.2-*): holders sign
 * what they publish, the gateway verifies before anything else and signs
 * what it shares, reuser agents verify.
 *
 * On the input: records signed by the dataset's holder key are shared;
 * records signed by a key the gateway was not given, unsigned records, and
 * a signed record altered on the way go to _sb.quarantine with the reason
 * and raise one signature.invalid alert each; nothing of them reaches a
 * reuser. Every message of the reuser stream verifies with the gateway's
 * key. On the output: a reuser agent applies the signed stream, and
 * refuses, without crashing, a forged record and an unsigned tombstone
 * slipped into its stream: the rows stay as they were and the refusals are
 * in its rejects table. An agent given another key applies nothing.
 */
#include <sqlite3.h>
#include <sys/stat.h>

#include "sample.h"
#include "seal.h"
#include "testutil.h"

static const char *grant =
    "{\"id\": \"g-s\", \"reuser\": \"reuser-s\", \"dataset\": "
    "\"beneficiaries\", \"purposes\": [\"p\"], \"legal_basis\": "
    "\"gdpr-6-1-e\", \"status\": \"approved\", \"fields\": {\"postcode\": "
    "\"keep\"}}";

#define STREAM "sb.out.reuser-s.beneficiaries"

static void make_key(sb_testenv_t *te, const char *secret, const char *pubdir,
                     const char *pubname)
{
        char sk[600], pk[700], dir[600];

        snprintf(sk, sizeof(sk), "%s/%s", te->dir, secret);
        snprintf(dir, sizeof(dir), "%s/%s", te->dir, pubdir);
        mkdir(dir, 0700);
        snprintf(pk, sizeof(pk), "%s/%s", dir, pubname);
        sb_test_keypair(sk, pk);
}

static char *path_of(sb_testenv_t *te, const char *name)
{
        char *p = NULL;

        SB_CHECK(asprintf(&p, "%s/%s", te->dir, name) != -1, "asprintf");
        return p;
}

/* Publishes sample records of `subjects` subjects, signed with the
 * secret key file `signing_key` of the test directory (NULL: unsigned);
 * returns how many. */
static long publish(sb_testenv_t *te, const char *signing_key, size_t subjects,
                    uint64_t seed)
{
        char errstr[1024], *text = NULL;
        sb_holder_stats_t hs;
        size_t len = 0, n;
        sb_holder_t *h;
        FILE *mem;

        free(te->holder_cfg.signing_key_file);
        te->holder_cfg.signing_key_file =
            signing_key ? path_of(te, signing_key) : NULL;
        mem = open_memstream(&text, &len);
        n = sb_sample_write(mem, subjects, seed);
        fclose(mem);
        mem = fmemopen(text, len, "r");
        h = sb_holder_new(&te->holder_cfg, "beneficiaries", errstr,
                          sizeof(errstr));
        SB_CHECK(h, "holder: %s", errstr);
        SB_OK_OR_FAIL(sb_holder_publish(h, mem, "records", NULL, &hs, errstr,
                                        sizeof(errstr)),
                      errstr);
        SB_CHECK_INT(n, hs.published, "records published");
        sb_holder_destroy(h);
        fclose(mem);
        free(text);
        return (long)n;
}

static void produce_raw(sb_testenv_t *te, const char *topic, const void *key,
                        size_t keylen, rd_kafka_headers_t *hdrs,
                        const void *value, size_t len)
{
        rd_kafka_conf_t *conf = rd_kafka_conf_new();
        char errstr[512];
        rd_kafka_t *rk;

        rd_kafka_conf_set(conf, "bootstrap.servers", te->mock->bootstraps, NULL,
                          0);
        rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
        SB_CHECK(rk, "producer: %s", errstr);
        SB_CHECK(!rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic),
                                    RD_KAFKA_V_KEY((void *)key, keylen),
                                    RD_KAFKA_V_VALUE((void *)value, len),
                                    RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                    RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_END),
                 "produce");
        SB_CHECK(rd_kafka_flush(rk, 10000) == 0, "flush");
        rd_kafka_destroy(rk);
}

/* The first message of `topic` (a copy the caller frees), forged: its
 * value's last byte flipped, its headers (signature included) kept. Also
 * sends an unsigned tombstone for its key when `tombstone` is set. */
typedef struct forge_s {
        sb_testenv_t *te;
        const char *topic;
        int done, tombstone;
} forge_t;

static void forge_cb(const rd_kafka_message_t *m, void *opaque)
{
        forge_t *f = opaque;
        rd_kafka_headers_t *hdrs = NULL;
        unsigned char *v;

        if (f->done || !m->payload)
                return;
        f->done = 1;
        SB_CHECK(!rd_kafka_message_headers(m, &hdrs), "headers");
        v = malloc(m->len);
        memcpy(v, m->payload, m->len);
        v[m->len - 1] ^= 0x01;
        produce_raw(f->te, f->topic, m->key, m->key_len,
                    rd_kafka_headers_copy(hdrs), v, m->len);
        free(v);
        if (f->tombstone)
                produce_raw(f->te, f->topic, m->key, m->key_len, NULL, NULL, 0);
}

typedef struct tally_s {
        sb_seal_verifier_t *v;
        long ok, bad, signature_reasons;
        char first_bad[512];
} tally_t;

static void verify_cb(const rd_kafka_message_t *m, void *opaque)
{
        tally_t *t = opaque;
        char reason[512];

        if (sb_seal_verify_message(t->v, m, reason, sizeof(reason))) {
                if (!t->bad++)
                        snprintf(t->first_bad, sizeof(t->first_bad), "%s",
                                 reason);
        } else {
                t->ok++;
        }
}

static void quarantine_cb(const rd_kafka_message_t *m, void *opaque)
{
        tally_t *t = opaque;
        char reason[512];

        if (sb_test_header(m, "sb_quarantine_reason", reason, sizeof(reason)) &&
            !strncmp(reason, "signature: ", 11))
                t->signature_reasons++;
}

static void alert_cb(const rd_kafka_message_t *m, void *opaque)
{
        tally_t *t = opaque;
        json_t *a = json_loadb(m->payload, m->len, 0, NULL);

        SB_CHECK(a, "alert is not JSON");
        if (!strcmp(json_string_value(json_object_get(a, "alert")),
                    "signature.invalid"))
                t->ok++;
        /* an alert says where, never what: no record content */
        SB_CHECK(!strstr((const char *)m->payload, "BEN-"),
                 "alert names a subject: %.*s", (int)m->len,
                 (const char *)m->payload);
        json_decref(a);
}

static long sql_count(const char *db, const char *sql)
{
        sqlite3_stmt *q;
        sqlite3 *h;
        long n;

        SB_CHECK(sqlite3_open(db, &h) == SQLITE_OK, "open %s", db);
        SB_CHECK(sqlite3_prepare_v2(h, sql, -1, &q, NULL) == SQLITE_OK, "%s",
                 sqlite3_errmsg(h));
        SB_CHECK(sqlite3_step(q) == SQLITE_ROW, "%s", sql);
        n = sqlite3_column_int64(q, 0);
        sqlite3_finalize(q);
        sqlite3_close(h);
        return n;
}

static sb_reuser_t *run_reuser(sb_testenv_t *te, sb_reuser_cfg_t *cfg,
                               const char *keys_dir)
{
        char errstr[1024];
        sb_reuser_t *ru;

        free(cfg->gateway_keys_dir);
        cfg->gateway_keys_dir = keys_dir ? path_of(te, keys_dir) : NULL;
        ru = sb_reuser_new(cfg, errstr, sizeof(errstr));
        SB_CHECK(ru, "reuser: %s", errstr);
        SB_OK_OR_FAIL(
            sb_reuser_run(ru, NULL, SB_TEST_IDLE_MS, errstr, sizeof(errstr)),
            errstr);
        return ru;
}

int main(void)
{
        char errstr[1024], pub[700];
        unsigned char gwpub[SB_SIGN_PUBLIC_BYTES];
        const sb_gateway_stats_t *gs;
        sb_keyring_t *kr = sb_keyring_new();
        sb_reuser_cfg_t rcfg, ocfg;
        tally_t t = {0}, q = {0}, a = {0};
        forge_t f = {0};
        sb_gateway_t *gw;
        sb_reuser_t *ru;
        sb_testenv_t te;
        long good, bad;
        char dir[600];

        sb_testenv_init(&te);
        sb_testenv_grant(&te, "s.json", grant);
        snprintf(dir, sizeof(dir), "%s/holder-keys", te.dir);
        SB_CHECK(mkdir(dir, 0700) == 0, "mkdir %s", dir);
        make_key(&te, "holder.key", "holder-keys/beneficiaries", "h.pub");
        make_key(&te, "rogue.key", "rogue-keys", "r.pub");
        make_key(&te, "gw.key", "gw-keys", "gw.pub");
        make_key(&te, "other.key", "other-keys", "o.pub");

        /* The input: signed by the dataset's holder key; by a key the
         * gateway does not know; unsigned; signed, then altered. */
        good = publish(&te, "holder.key", 5, 1);
        bad = publish(&te, "rogue.key", 3, 2);
        bad += publish(&te, NULL, 2, 3);
        bad += 1; /* the altered one */
        f.te = &te;
        f.topic = "sb.in.beneficiaries";
        sb_testenv_read_topic(&te, f.topic, forge_cb, &f);
        SB_CHECK(f.done, "no input message to forge");

        te.gw_cfg.holder_keys_dir = path_of(&te, "holder-keys");
        te.gw_cfg.signing_key_file = path_of(&te, "gw.key");
        gw = sb_gateway_new(&te.gw_cfg, te.key, errstr, sizeof(errstr));
        SB_CHECK(gw, "gateway: %s", errstr);
        SB_OK_OR_FAIL(
            sb_gateway_run(gw, NULL, SB_TEST_IDLE_MS, errstr, sizeof(errstr)),
            errstr);
        gs = sb_gateway_stats(gw);
        SB_CHECK_INT(good, gs->delivered, "records delivered (holder-signed)");
        SB_CHECK_INT(bad, gs->unverified,
                     "unknown key, unsigned and altered: not verified");
        SB_CHECK_INT(gs->unverified, gs->quarantined, "quarantined");
        SB_CHECK(gs->signed_batches >= 1, "no batch signed");
        sb_gateway_destroy(gw);

        sb_testenv_read_topic(&te, SB_QUARANTINE_TOPIC, quarantine_cb, &q);
        SB_CHECK_INT(bad, q.signature_reasons,
                     "quarantined with a signature reason");
        sb_testenv_read_topic(&te, SB_ALERTS_TOPIC, alert_cb, &a);
        SB_CHECK_INT(bad, a.ok, "signature.invalid alerts");

        /* Every message of the stream verifies with the gateway's key. */
        snprintf(pub, sizeof(pub), "%s/gw-keys/gw.pub", te.dir);
        SB_OK_OR_FAIL(sb_pubkey_load(pub, gwpub, errstr, sizeof(errstr)),
                      errstr);
        SB_OK_OR_FAIL(sb_keyring_add(kr, gwpub), "keyring");
        t.v = sb_seal_verifier_new(kr);
        SB_CHECK_INT(good, sb_testenv_read_topic(&te, STREAM, verify_cb, &t),
                     "messages on the stream");
        SB_CHECK(t.bad == 0, "stream message does not verify: %s", t.first_bad);
        SB_CHECK_INT(good, t.ok, "stream messages verified");

        /* The reuser agent applies the signed stream. */
        sb_testenv_reuser_cfg(&te, "s.json", &rcfg);
        ru = run_reuser(&te, &rcfg, "gw-keys");
        SB_CHECK_INT(good, sb_store_count(sb_reuser_store(ru), NULL),
                     "rows stored");
        SB_CHECK_INT(0, sb_reuser_stats(ru)->unverified, "refused");
        sb_reuser_destroy(ru);

        /* A forged record and an unsigned tombstone slipped into the
         * stream are refused; the rows stay. */
        memset(&f, 0, sizeof(f));
        f.te = &te;
        f.topic = STREAM;
        f.tombstone = 1;
        sb_testenv_read_topic(&te, STREAM, forge_cb, &f);
        SB_CHECK(f.done, "no stream message to forge");
        ru = run_reuser(&te, &rcfg, "gw-keys");
        SB_CHECK_INT(2, sb_reuser_stats(ru)->unverified,
                     "forged record and unsigned tombstone refused");
        SB_CHECK_INT(good, sb_store_count(sb_reuser_store(ru), NULL),
                     "rows after the forgeries");
        sb_reuser_destroy(ru);
        SB_CHECK_INT(
            2, sql_count(rcfg.database, "SELECT count(*) FROM sb_rejected"),
            "refusals in the store's rejects");

        /* An agent that trusts another key applies nothing. */
        sb_testenv_reuser_cfg(&te, "s.json", &ocfg);
        free(ocfg.database);
        ocfg.database = path_of(&te, "other.db");
        free(ocfg.group_id);
        ocfg.group_id = strdup("sb-reuser-other");
        ru = run_reuser(&te, &ocfg, "other-keys");
        SB_CHECK_INT(0, sb_store_count(sb_reuser_store(ru), NULL),
                     "rows stored under another key");
        SB_CHECK_INT(good + 2, sb_reuser_stats(ru)->unverified,
                     "every message refused under another key");
        sb_reuser_destroy(ru);

        sb_seal_verifier_destroy(t.v);
        sb_keyring_destroy(kr);
        sb_config_release(sb_reuser_cfg_table, &rcfg);
        sb_config_release(sb_reuser_cfg_table, &ocfg);
        sb_testenv_release(&te);
        return 0;
}
