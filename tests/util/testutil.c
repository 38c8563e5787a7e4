#include "testutil.h"

#include <ftw.h>
#include <limits.h>
#include <sys/wait.h>
#include <sys/stat.h>
#include <unistd.h>

#include "audit.h"
#include "envelope.h"
#include "proc.h"
#include "sign.h"

static void sb_testenv_cfg(const sb_config_field_t *table, void *target,
                           json_t *obj)
{
        char errstr[512];

        if (sb_config_apply(obj, "test config", table, target, errstr,
                            sizeof(errstr)))
                SB_TEST_FAIL("config: %s", errstr);
        json_decref(obj);
}

void sb_testenv_init(sb_testenv_t *te)
{
        char errstr[512];

        memset(te, 0, sizeof(*te));
        snprintf(te->dir, sizeof(te->dir), "/tmp/sbtest-XXXXXX");
        SB_CHECK(mkdtemp(te->dir), "mkdtemp failed");
        snprintf(te->grants_dir, sizeof(te->grants_dir), "%s/grants", te->dir);
        SB_CHECK(mkdir(te->grants_dir, 0700) == 0, "mkdir grants");
        SB_OK_OR_FAIL(sb_crypto_init(errstr, sizeof(errstr)), errstr);
        te->cat = sb_catalog_load(SB_SCHEMAS_DIR, errstr, sizeof(errstr));
        SB_CHECK(te->cat, "catalog: %s", errstr);
        te->key = sb_key_random();
        te->mock = sb_mockenv_new(3, errstr, sizeof(errstr));
        SB_CHECK(te->mock, "mock cluster: %s", errstr);
        SB_OK_OR_FAIL(sb_mockenv_dataset(te->mock, "beneficiaries", 3, errstr,
                                         sizeof(errstr)),
                      errstr);
        sb_testenv_cfg(sb_holder_cfg_table, &te->holder_cfg,
                       json_pack("{s:o, s:s}", "kafka",
                                 sb_mockenv_kafka_json(te->mock), "schemas_dir",
                                 SB_SCHEMAS_DIR));
        sb_testenv_cfg(sb_gateway_cfg_table, &te->gw_cfg,
                       json_pack("{s:o, s:[s], s:s, s:s, s:s, s:i}", "kafka",
                                 sb_mockenv_kafka_json(te->mock), "datasets",
                                 "beneficiaries", "schemas_dir", SB_SCHEMAS_DIR,
                                 "grants_dir", te->grants_dir,
                                 "pseudonym_key_file", "(in memory)",
                                 "commit_records", 200));
}

const char *sb_testenv_file(sb_testenv_t *te, const char *name,
                            const char *text)
{
        static char path[600];
        FILE *fp;

        snprintf(path, sizeof(path), "%s/%s", te->dir, name);
        fp = fopen(path, "w");
        SB_CHECK(fp, "cannot write %s", path);
        fputs(text, fp);
        fclose(fp);
        return path;
}

void sb_testenv_grant(sb_testenv_t *te, const char *file, const char *json)
{
        char path[600], errstr[512];
        sb_grant_t *g;
        FILE *fp;

        snprintf(path, sizeof(path), "%s/%s", te->grants_dir, file);
        fp = fopen(path, "w");
        SB_CHECK(fp, "cannot write %s", path);
        fputs(json, fp);
        fclose(fp);
        g = sb_grant_load(path, te->cat, errstr, sizeof(errstr));
        SB_CHECK(g, "grant: %s", errstr);
        SB_OK_OR_FAIL(
            sb_mockenv_topic(te->mock, g->topic, 3, errstr, sizeof(errstr)),
            errstr);
        sb_grant_destroy(g);
}

void sb_testenv_reuser_cfg(sb_testenv_t *te, const char *grant_file,
                           sb_reuser_cfg_t *cfg)
{
        char path[600], db[600], sk[600], pk[600], errstr[512];
        sb_signkey_t *key;
        sb_grant_t *g;

        snprintf(path, sizeof(path), "%s/%s", te->grants_dir, grant_file);
        g = sb_grant_load(path, te->cat, errstr, sizeof(errstr));
        SB_CHECK(g, "grant: %s", errstr);
        snprintf(db, sizeof(db), "%s/%s.db", te->dir, g->reuser);
        /* The reuser's receipt signing key, made once: a restarted agent
         * signs with the same key. */
        snprintf(sk, sizeof(sk), "%s/%s.key", te->dir, g->reuser);
        snprintf(pk, sizeof(pk), "%s/%s.pub", te->dir, g->reuser);
        if (access(sk, F_OK) != 0) {
                key = sb_signkey_generate();
                SB_CHECK(key, "sb_signkey_generate");
                SB_OK_OR_FAIL(
                    sb_signkey_save(key, sk, pk, errstr, sizeof(errstr)),
                    errstr);
                sb_signkey_destroy(key);
        }
        SB_OK_OR_FAIL(
            sb_mockenv_ack_topic(te->mock, g->reuser, errstr, sizeof(errstr)),
            errstr);
        memset(cfg, 0, sizeof(*cfg));
        sb_testenv_cfg(sb_reuser_cfg_table, cfg,
                       json_pack("{s:o, s:s, s:s, s:s, s:s, s:s, s:s}", "kafka",
                                 sb_mockenv_kafka_json(te->mock), "reuser",
                                 g->reuser, "dataset", g->dataset, "grant_file",
                                 path, "schemas_dir", SB_SCHEMAS_DIR,
                                 "database", db, "signing_key_file", sk));
        sb_grant_destroy(g);
}

long sb_testenv_read_topic(sb_testenv_t *te, const char *topic,
                           sb_test_msg_cb_t *cb, void *opaque)
{
        rd_kafka_conf_t *conf = rd_kafka_conf_new();
        rd_kafka_topic_partition_list_t *parts;
        const rd_kafka_metadata_t *md;
        rd_kafka_topic_t *rkt;
        rd_kafka_t *rk;
        char errstr[512];
        long n = 0;
        int i, eofs = 0, idle = 0;

        rd_kafka_conf_set(conf, "bootstrap.servers", te->mock->bootstraps, NULL,
                          0);
        rd_kafka_conf_set(conf, "group.id", "sb-test-counter", NULL, 0);
        rd_kafka_conf_set(conf, "isolation.level", "read_committed", NULL, 0);
        rd_kafka_conf_set(conf, "enable.partition.eof", "true", NULL, 0);
        rd_kafka_conf_set(conf, "enable.auto.commit", "false", NULL, 0);
        rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
        SB_CHECK(rk, "consumer: %s", errstr);
        rkt = rd_kafka_topic_new(rk, topic, NULL);
        SB_CHECK(rd_kafka_metadata(rk, 0, rkt, &md, 10000) == 0 &&
                     md->topic_cnt == 1,
                 "metadata of %s", topic);
        parts = rd_kafka_topic_partition_list_new(md->topics[0].partition_cnt);
        for (i = 0; i < md->topics[0].partition_cnt; i++)
                rd_kafka_topic_partition_list_add(parts, topic, i)->offset =
                    RD_KAFKA_OFFSET_BEGINNING;
        rd_kafka_metadata_destroy(md);
        rd_kafka_topic_destroy(rkt);
        rd_kafka_assign(rk, parts);
        while (eofs < parts->cnt && idle < 100) {
                rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);

                if (!m) {
                        idle++;
                        continue;
                }
                if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                        eofs++;
                } else if (!m->err) {
                        n++;
                        if (cb)
                                cb(m, opaque);
                }
                rd_kafka_message_destroy(m);
        }
        SB_CHECK(eofs == parts->cnt,
                 "%s: did not reach the end of every "
                 "partition",
                 topic);
        rd_kafka_topic_partition_list_destroy(parts);
        rd_kafka_consumer_close(rk);
        rd_kafka_destroy(rk);
        return n;
}

long sb_testenv_count_messages(sb_testenv_t *te, const char *topic)
{
        return sb_testenv_read_topic(te, topic, NULL, NULL);
}

static void sb_test_audit_value(const rd_kafka_message_t *m, void *opaque)
{
        json_array_append_new(opaque, json_stringn(m->payload ? m->payload : "",
                                                   m->payload ? m->len : 0));
}

json_t *sb_testenv_audit_values(sb_testenv_t *te)
{
        json_t *values = json_array();

        SB_CHECK(values, "out of memory");
        sb_testenv_read_topic(te, SB_AUDIT_TOPIC, sb_test_audit_value, values);
        return values;
}

void sb_test_audit_intact(const json_t *values, const unsigned char pub[32],
                          sb_audit_report_t *rep)
{
        unsigned char keys[1][SB_SIGN_PUBLIC_BYTES];
        sb_audit_verify_t *v;
        char errstr[512], pos[64];
        const json_t *x;
        size_t i;

        memcpy(keys[0], pub, SB_SIGN_PUBLIC_BYTES);
        v = sb_audit_verify_new(keys, 1, 0);
        SB_CHECK(v, "out of memory");
        json_array_foreach(values, i, x)
        {
                snprintf(pos, sizeof(pos), "offset %zu", i);
                SB_OK_OR_FAIL(sb_audit_verify_feed(v, json_string_value(x),
                                                   json_string_length(x), pos,
                                                   errstr, sizeof(errstr)),
                              errstr);
        }
        SB_OK_OR_FAIL(sb_audit_verify_finish(v, rep, errstr, sizeof(errstr)),
                      errstr);
        sb_audit_verify_destroy(v);
        SB_CHECK(rep->problems == 0 && rep->unchained == 0 &&
                     rep->first.kind == SB_AUDIT_INTACT,
                 "_sb.audit (%zu entries) is not intact without "
                 "allow-unchained: %s at %s (chain %s seq %lld): %s; %zu "
                 "unchained",
                 rep->entries, sb_audit_break2str(rep->first.kind),
                 rep->first.position ? rep->first.position : "-",
                 rep->first.chain ? rep->first.chain : "-",
                 (long long)rep->first.seq,
                 rep->first.reason ? rep->first.reason : "-", rep->unchained);
}

const char *sb_test_header(const rd_kafka_message_t *m, const char *name,
                           char *out, size_t size)
{
        rd_kafka_headers_t *h;
        const void *v;
        size_t len;

        if (rd_kafka_message_headers(m, &h) ||
            rd_kafka_header_get_last(h, name, &v, &len))
                return NULL;
        snprintf(out, size, "%.*s", (int)len, (const char *)v);
        return out;
}

static int sb_test_rm_entry(const char *path, const struct stat *st, int flag,
                            struct FTW *ftw)
{
        (void)st;
        (void)flag;
        (void)ftw;
        return remove(path);
}

void sb_test_rmtree(const char *dir)
{
        if (nftw(dir, sb_test_rm_entry, 16, FTW_DEPTH | FTW_PHYS) != 0)
                fprintf(stderr, "could not remove %s\n", dir);
}

void sb_testenv_release(sb_testenv_t *te)
{
        sb_config_release(sb_holder_cfg_table, &te->holder_cfg);
        sb_config_release(sb_gateway_cfg_table, &te->gw_cfg);
        sb_catalog_destroy(te->cat);
        sb_key_destroy(te->key);
        sb_mockenv_destroy(te->mock);
        sb_test_rmtree(te->dir);
}

json_t *sb_test_project_round_trip(const sb_grant_t *g,
                                   const sb_pseudonymiser_t *ps,
                                   const json_t *rec, sb_buf_t *enc)
{
        char errstr[512] = "";
        avro_value_t in, out, back;
        sb_buf_t local = {0};
        json_t *got = NULL;

        if (!enc)
                enc = &local;
        if (sb_schema_value_new(g->in, &in, errstr, sizeof(errstr)) ||
            sb_schema_value_new(g->out, &out, errstr, sizeof(errstr)) ||
            sb_schema_value_new(g->out, &back, errstr, sizeof(errstr)))
                SB_TEST_FAIL("value: %s", errstr);
        if (sb_avrojson_from_json(g->in->aj, rec, &in, errstr, sizeof(errstr)))
                SB_TEST_FAIL("dataset record refused: %s", errstr);
        if (sb_grant_project(g, ps, &in, SB_TEST_PSEUDONYM, &out, errstr,
                             sizeof(errstr)))
                SB_TEST_FAIL("sb_grant_project: %s", errstr);
        if (sb_schema_encode(g->out, &out, enc, errstr, sizeof(errstr)))
                SB_TEST_FAIL("sb_schema_encode: %s", errstr);
        if (sb_schema_decode(g->out, enc->data, enc->len, &back, errstr,
                             sizeof(errstr)))
                SB_TEST_FAIL("sb_schema_decode: %s", errstr);
        if (sb_avrojson_to_json(g->out->aj, &back, &got, errstr,
                                sizeof(errstr)))
                SB_TEST_FAIL("sb_avrojson_to_json: %s", errstr);
        avro_value_decref(&in);
        avro_value_decref(&out);
        avro_value_decref(&back);
        sb_buf_release(&local);
        return got;
}

void sb_test_keypair(const char *secret, const char *public)
{
        sb_signkey_t *k = sb_signkey_generate();
        char errstr[512];

        SB_CHECK(k, "sb_signkey_generate");
        SB_OK_OR_FAIL(
            sb_signkey_save(k, secret, public, errstr, sizeof(errstr)), errstr);
        sb_signkey_destroy(k);
}

int sb_testenv_cli(sb_testenv_t *te, const char *args, char *out, size_t size)
{
        char cmd[16384], errpath[600], bin[PATH_MAX];
        size_t n = 0;
        FILE *fp;
        int c, st;

        SB_CHECK(realpath(sb_proc_bin(), bin) && access(bin, X_OK) == 0,
                 "no sharebus binary at %s", sb_proc_bin());
        snprintf(errpath, sizeof(errpath), "%s/cli.err", te->dir);
        snprintf(cmd, sizeof(cmd), "cd '%s' && '%s' %s 2>'%s'", te->dir, bin,
                 args, errpath);
        fp = popen(cmd, "r");
        SB_CHECK(fp, "popen %s", cmd);
        while (n + 1 < size && (c = fgetc(fp)) != EOF)
                out[n++] = (char)c;
        st = pclose(fp);
        SB_CHECK(st != -1 && WIFEXITED(st), "%s: did not exit", cmd);
        fp = fopen(errpath, "r");
        while (fp && n + 1 < size && (c = fgetc(fp)) != EOF)
                out[n++] = (char)c;
        out[n] = '\0';
        if (fp)
                fclose(fp);
        return WEXITSTATUS(st);
}

void sb_test_expect(int rc, const char *out, int want_rc, const char *want,
                    const char *what)
{
        SB_CHECK(rc == want_rc && strstr(out, want),
                 "%s: expected exit %d and \"%s\", got exit %d:\n%s", what,
                 want_rc, want, rc, out);
}
