#include "scenario.h"

#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <inttypes.h>

#include "audit.h"
#include "crypto.h"
#include "sample.h"

void sb_scn_init(sb_scn_t *s, const char *dataset, const char *prefix)
{
        int r;

        memset(s, 0, sizeof(*s));
        snprintf(s->dataset, sizeof(s->dataset), "%s", dataset);
        snprintf(s->prefix, sizeof(s->prefix), "%s", prefix);
        snprintf(s->reusers[0], sizeof(s->reusers[0]), "%s-lab", prefix);
        snprintf(s->reusers[1], sizeof(s->reusers[1]), "%s-city", prefix);
        s->purposes[0] = "research";
        s->purposes[1] = "housing";
        for (r = 0; r < SB_SCN_REUSERS; r++)
                s->rows[r] = json_object();
}

void sb_scn_release(sb_scn_t *s)
{
        int r;

        for (r = 0; r < SB_SCN_REUSERS; r++)
                json_decref(s->rows[r]);
}

const char *sb_scn_schemas(const sb_scn_t *s, const char *dir)
{
        static char out[400];
        char cmd[1800];

        snprintf(out, sizeof(out), "%s/schemas", dir);
        snprintf(cmd, sizeof(cmd),
                 "mkdir -p '%s' && cp '%s'/rights.avsc '%s'/receipt.avsc '%s' "
                 "&& sed -e 's/\"sb.dataset\": \"beneficiaries\"/\"sb.dataset\""
                 ": \"%s\"/' -e 's/\"name\": \"Beneficiary\"/\"name\""
                 ": \"ScenarioBeneficiary\"/' '%s'/beneficiaries.avsc > "
                 "'%s'/scenario.avsc",
                 out, SB_SCHEMAS_DIR, SB_SCHEMAS_DIR, out, s->dataset,
                 SB_SCHEMAS_DIR, out);
        SB_CHECK(system(cmd) == 0, "%s", cmd);
        return out;
}

void sb_scn_grant_json(const sb_scn_t *s, int r, char *buf, size_t size)
{
        snprintf(buf, size,
                 "{\"id\": \"g-%s\", \"reuser\": \"%s\", \"dataset\": \"%s\", "
                 "\"purposes\": [\"%s\"], \"legal_basis\": \"gdpr-6-1-e\", "
                 "\"status\": \"approved\", \"fields\": {\"postcode\": "
                 "\"keep\", \"benefit\": \"keep\"}}",
                 s->reusers[r], s->reusers[r], s->dataset, s->purposes[r]);
}

static int subject_index(const char *subject)
{
        return atoi(subject + 4); /* "BEN-0000012" */
}

static void model_drop(sb_scn_t *s, int r, const char *subject)
{
        const char *k;
        json_t *v;
        void *tmp;

        json_object_foreach_safe(s->rows[r], tmp, k, v)
        {
                if (!strcmp(json_string_value(v), subject))
                        json_object_del(s->rows[r], k);
        }
        s->received[r][subject_index(subject)] = 0;
}

static void model_record(sb_scn_t *s, const char *subject, const char *rid)
{
        int i = subject_index(subject), r;
        char key[300];

        snprintf(key, sizeof(key), "%s/%s", subject, rid);
        for (r = 0; r < SB_SCN_REUSERS; r++) {
                if (s->objected[r][i] || s->withdrawn[i] || s->restricted[i])
                        continue;
                json_object_set_new(s->rows[r], key, json_string(subject));
                s->received[r][i] = 1;
        }
}

static void model_rights(sb_scn_t *s, sb_event_type_t t, const char *subject,
                         const char *purpose)
{
        int i = subject_index(subject), r;

        for (r = 0; r < SB_SCN_REUSERS; r++) {
                switch (t) {
                case SB_EV_ERASURE:
                        model_drop(s, r, subject);
                        break;
                case SB_EV_OBJECTION:
                        if (!purpose || !strcmp(purpose, s->purposes[r])) {
                                s->objected[r][i] = 1;
                                model_drop(s, r, subject);
                        }
                        break;
                case SB_EV_CONSENT_WITHDRAWN:
                        s->withdrawn[i] = 1;
                        model_drop(s, r, subject);
                        break;
                default:
                        break;
                }
        }
        if (t == SB_EV_CONSENT_GIVEN)
                s->withdrawn[i] = 0;
        if (t == SB_EV_RESTRICTION)
                s->restricted[i] = 1;
        if (t == SB_EV_RESTRICTION_LIFTED)
                s->restricted[i] = 0;
}

/* Rights events planned before batch b: (type, first subject, count). */
static const struct {
        int batch;
        sb_event_type_t type;
        int first, cnt;
        const char *purpose;
} plan[] = {
    {4, SB_EV_OBJECTION, 0, 4, "research"},
    {7, SB_EV_ERASURE, 8, 4, NULL},
    {10, SB_EV_RESTRICTION, 16, 5, NULL},
    {13, SB_EV_CONSENT_WITHDRAWN, 24, 5, NULL},
    {17, SB_EV_OBJECTION, 4, 2, "housing"},
    {20, SB_EV_RESTRICTION_LIFTED, 16, 3, NULL},
    {23, SB_EV_CONSENT_GIVEN, 24, 2, NULL},
    {26, SB_EV_ERASURE, 30, 3, NULL},
    {29, SB_EV_OBJECTION, 33, 2, NULL},
};

/*
 * A publish that failed published nothing (one transaction): do what an
 * operator does, publish again. A few times at most.
 */
static void holder_retry(sb_scn_t *s, int *tries, const char *errstr)
{
        SB_CHECK(++*tries <= 3, "holder: failed %d times: %s", *tries, errstr);
        printf("holder: publishing again after: %s\n", errstr);
        fflush(stdout);
        s->holder_retries++;
}

void sb_scn_publish_batch(sb_scn_t *s, sb_holder_t *h, int b)
{
        char *text = NULL, errstr[1024], id[37], subject[16];
        size_t len = 0, i;
        sb_holder_stats_t hs;
        FILE *mem, *in;
        char *line, *save = NULL;
        int k;

        for (i = 0; i < sizeof(plan) / sizeof(plan[0]); i++) {
                json_t *p;

                if (plan[i].batch != b)
                        continue;
                p = plan[i].purpose ? json_pack("[s]", plan[i].purpose) : NULL;
                for (k = plan[i].first; k < plan[i].first + plan[i].cnt; k++) {
                        sb_sample_subject_id((size_t)k, subject);
                        int tries = 0;

                        while (sb_holder_rights(h, plan[i].type, subject, p, id,
                                                errstr, sizeof(errstr)))
                                holder_retry(s, &tries, errstr);
                        model_rights(s, plan[i].type, subject, plan[i].purpose);
                        s->rights++;
                }
                json_decref(p);
        }
        mem = open_memstream(&text, &len);
        sb_sample_write(mem, SB_SCN_SUBJECTS, 1000 + (uint64_t)b);
        fclose(mem);
        for (k = 0;;) {
                in = fmemopen(text, len, "r");
                if (!sb_holder_publish(h, in, "batch", NULL, &hs, errstr,
                                       sizeof(errstr)))
                        break;
                fclose(in);
                holder_retry(s, &k, errstr);
        }
        fclose(in);
        for (line = strtok_r(text, "\n", &save); line;
             line = strtok_r(NULL, "\n", &save)) {
                json_t *rec = json_loads(line, 0, NULL);

                SB_CHECK(rec, "sample line");
                model_record(
                    s,
                    json_string_value(json_object_get(rec, "beneficiary_id")),
                    json_string_value(json_object_get(rec, "file_id")));
                json_decref(rec);
                s->records++;
        }
        free(text);
}

/* The first column of `sql`'s rows in `db`, or NULL if not readable. */
static json_t *store_rows(const char *db, const char *sql)
{
        sqlite3 *q;
        sqlite3_stmt *st;
        json_t *out;

        if (sqlite3_open_v2(db, &q, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
                sqlite3_close(q);
                return NULL;
        }
        sqlite3_busy_timeout(q, 5000);
        if (sqlite3_prepare_v2(q, sql, -1, &st, NULL) != SQLITE_OK) {
                sqlite3_close(q);
                return NULL;
        }
        out = json_object();
        while (sqlite3_step(st) == SQLITE_ROW)
                json_object_set_new(
                    out, (const char *)sqlite3_column_text(st, 0), json_true());
        sqlite3_finalize(st);
        sqlite3_close(q);
        return out;
}

/* The model's rows of reuser r, keyed as the store keys them. */
static json_t *expected_rows(const sb_scn_t *s, const sb_key_t *key, int r)
{
        sb_pseudonymiser_t *ps =
            sb_pseudonymiser_new(key, s->reusers[r], s->dataset);
        char p[SB_PSEUDONYM_HEXLEN + 1], k[400];
        json_t *out = json_object(), *v;
        const char *sk;

        json_object_foreach(s->rows[r], sk, v)
        {
                const char *subject = json_string_value(v);

                sb_pseudonymise(ps, subject, strlen(subject), p);
                snprintf(k, sizeof(k), "%s/%s", p, strchr(sk, '/') + 1);
                json_object_set_new(out, k, json_true());
        }
        sb_pseudonymiser_destroy(ps);
        return out;
}

static json_t *expected_restricted(const sb_scn_t *s, const sb_key_t *key,
                                   int r)
{
        sb_pseudonymiser_t *ps =
            sb_pseudonymiser_new(key, s->reusers[r], s->dataset);
        char p[SB_PSEUDONYM_HEXLEN + 1], subject[16];
        json_t *out = json_object();
        int i;

        for (i = 0; i < SB_SCN_SUBJECTS; i++) {
                if (!s->restricted[i] || !s->received[r][i])
                        continue;
                sb_sample_subject_id((size_t)i, subject);
                sb_pseudonymise(ps, subject, strlen(subject), p);
                json_object_set_new(out, p, json_true());
        }
        sb_pseudonymiser_destroy(ps);
        return out;
}

static int same_keys(json_t *a, json_t *b)
{
        const char *k;
        json_t *v;

        if (!a || !b || json_object_size(a) != json_object_size(b))
                return 0;
        json_object_foreach(a, k, v)
        {
                if (!json_object_get(b, k))
                        return 0;
        }
        return 1;
}

int sb_scn_store_matches(const sb_scn_t *s, const sb_key_t *key, int r,
                         const char *db, int verbose)
{
        json_t *got =
            store_rows(db, "SELECT pseudonym || '/' || record_id FROM records");
        json_t *want = expected_rows(s, key, r);
        json_t *gotr = store_rows(db, "SELECT pseudonym FROM sb_restricted");
        json_t *wantr = expected_restricted(s, key, r);
        int ok = same_keys(got, want) && same_keys(gotr, wantr);

        if (verbose)
                printf("  %s: %zu rows (want %zu), %zu restricted (want "
                       "%zu)\n",
                       s->reusers[r], got ? json_object_size(got) : 0,
                       json_object_size(want),
                       gotr ? json_object_size(gotr) : 0,
                       json_object_size(wantr));
        json_decref(got);
        json_decref(want);
        json_decref(gotr);
        json_decref(wantr);
        return ok;
}

int sb_scn_wait_stores(const sb_scn_t *s, const sb_key_t *key,
                       char db[SB_SCN_REUSERS][600], int seconds,
                       void (*tick)(void *), void *opaque)
{
        int i, r, ok = 0;

        for (i = 0; i < seconds && !ok; i++) {
                int verbose = i % 20 == 19 || i == seconds - 1;

                ok = 1;
                for (r = 0; r < SB_SCN_REUSERS; r++)
                        ok &= sb_scn_store_matches(s, key, r, db[r], verbose);
                if (!ok)
                        sleep(1);
                if (tick)
                        tick(opaque);
        }
        return ok;
}

/*
 * Reads partitions 0..partitions-1 of `topic` from the beginning to their
 * end (read_committed, assigned, committing nothing) as `kc`, in group
 * `group` (a consumer needs one, even to assign), calling `cb` for each
 * message.
 */
static void sb_scn_read_topic(const sb_kafka_cfg_t *kc, const char *topic,
                              int partitions, const char *group,
                              sb_test_msg_cb_t *cb, void *opaque)
{
        rd_kafka_topic_partition_list_t *parts;
        rd_kafka_conf_t *conf;
        char errstr[512];
        rd_kafka_t *rk;
        int p, eof, idle;

        conf = sb_kafka_conf_new(kc, "scenario-check", errstr, sizeof(errstr));
        SB_CHECK(conf, "%s", errstr);
        rd_kafka_conf_set(conf, "enable.partition.eof", "true", NULL, 0);
        rd_kafka_conf_set(conf, "isolation.level", "read_committed", NULL, 0);
        rd_kafka_conf_set(conf, "group.id", group, NULL, 0);
        rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
        SB_CHECK(rk, "%s", errstr);
        for (p = 0; p < partitions; p++) {
                parts = rd_kafka_topic_partition_list_new(1);
                rd_kafka_topic_partition_list_add(parts, topic, p)->offset =
                    RD_KAFKA_OFFSET_BEGINNING;
                rd_kafka_assign(rk, parts);
                rd_kafka_topic_partition_list_destroy(parts);
                for (eof = 0, idle = 0; !eof && idle < 200;) {
                        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);

                        if (!m) {
                                idle++;
                                continue;
                        }
                        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF)
                                eof = 1;
                        else if (m->err)
                                SB_TEST_FAIL("%s: %s", topic,
                                             rd_kafka_message_errstr(m));
                        else
                                cb(m, opaque);
                        rd_kafka_message_destroy(m);
                }
                SB_CHECK(eof, "%s [%d]: end not reached", topic, p);
        }
        rd_kafka_destroy(rk);
}

typedef struct sb_scn_stream_s {
        json_t *seen, *objected;
        long dup, after, upserts, rectified;
} sb_scn_stream_t;

static void sb_scn_stream_message(const rd_kafka_message_t *m, void *opaque)
{
        sb_scn_stream_t *st = opaque;
        char type[64] = "", key[400], ps[64];
        rd_kafka_headers_t *h;
        const void *val;
        size_t len;

        if (!m->payload)
                return;
        snprintf(key, sizeof(key), "%.*s", (int)m->key_len,
                 (const char *)m->key);
        snprintf(ps, sizeof(ps), "%.*s", (int)strcspn(key, "/"), key);
        if (!rd_kafka_message_headers(m, &h) &&
            !rd_kafka_header_get_last(h, "ce_type", &val, &len))
                snprintf(type, sizeof(type), "%.*s", (int)len,
                         (const char *)val);
        if (!strcmp(type, "sharebus.rights.rectification"))
                st->rectified++;
        if (!strcmp(type, "sharebus.record.upsert")) {
                st->upserts++;
                st->dup += json_object_get(st->seen, key) != NULL;
                st->after += json_object_get(st->objected, ps) != NULL;
                json_object_set_new(st->seen, key, json_true());
        } else if (!strcmp(type, "sharebus.rights.objection")) {
                json_object_set_new(st->objected, ps, json_true());
        }
}

long sb_scn_check_stream(const sb_scn_t *s, const sb_kafka_cfg_t *kc, int r,
                         int partitions)
{
        sb_scn_stream_t st = {json_object(), json_object(), 0, 0, 0, 0};
        char topic[200], group[200];

        snprintf(topic, sizeof(topic), "sb.out.%s.%s", s->reusers[r],
                 s->dataset);
        snprintf(group, sizeof(group), "sb-reuser-%s", s->reusers[r]);
        sb_scn_read_topic(kc, topic, partitions, group, sb_scn_stream_message,
                          &st);
        SB_CHECK_INT(0, st.dup, "record keys delivered twice");
        SB_CHECK_INT(0, st.after,
                     "records shared after the person's objection");
        printf("%s stream: %ld records, each key once, %ld rectified, %zu "
               "objecting persons, none shared after objecting\n",
               s->reusers[r], st.upserts, st.rectified,
               json_object_size(st.objected));
        json_decref(st.seen);
        json_decref(st.objected);
        return st.upserts + st.rectified;
}

typedef struct sb_scn_audit_s {
        const sb_scn_t *s;
        sb_audit_verify_t *v;
        char chain_prefix[128];
        long delivered[SB_SCN_REUSERS];
        long fed;
} sb_scn_audit_t;

static void sb_scn_audit_value(const rd_kafka_message_t *m, void *opaque)
{
        sb_scn_audit_t *a = opaque;
        const char *chain, *op;
        char pos[64], errstr[256];
        json_t *e;
        int r;

        if (!m->payload)
                return;
        e = json_loadb(m->payload, m->len, 0, NULL);
        chain = json_string_value(json_object_get(e, "chain"));
        if (!chain ||
            strncmp(chain, a->chain_prefix, strlen(a->chain_prefix))) {
                json_decref(e); /* another test's writer */
                return;
        }
        snprintf(pos, sizeof(pos), "offset %" PRId64, m->offset);
        SB_OK_OR_FAIL(
            sb_audit_verify_feed_json(a->v, e, pos, errstr, sizeof(errstr)),
            errstr);
        a->fed++;
        op = json_string_value(json_object_get(e, "op"));
        for (r = 0; op && !strcmp(op, "delivery") && r < SB_SCN_REUSERS; r++)
                if (!strcmp(json_string_value(json_object_get(e, "reuser")),
                            a->s->reusers[r]))
                        a->delivered[r] += (long)json_integer_value(
                            json_object_get(e, "records"));
        json_decref(e);
}

void sb_scn_check_audit(const sb_scn_t *s, const sb_scn_rig_t *g,
                        const sb_kafka_cfg_t *kc,
                        const long records[SB_SCN_REUSERS])
{
        unsigned char pub[SB_SIGN_PUBLIC_BYTES];
        char path[700], errstr[512];
        sb_audit_report_t rep;
        sb_scn_audit_t a;
        size_t c;
        int r;

        memset(&a, 0, sizeof(a));
        a.s = s;
        snprintf(a.chain_prefix, sizeof(a.chain_prefix), "sb-gateway-%s-gw-",
                 s->dataset);
        snprintf(path, sizeof(path), "%s/audit.pub", g->dir);
        SB_OK_OR_FAIL(sb_pubkey_load(path, pub, errstr, sizeof(errstr)),
                      errstr);
        a.v = sb_audit_verify_new(&pub, 1, 0);
        SB_CHECK(a.v, "out of memory");
        sb_scn_read_topic(kc, SB_AUDIT_TOPIC, 1, "sb-admin-scenario-check",
                          sb_scn_audit_value, &a);
        memset(&rep, 0, sizeof(rep));
        SB_OK_OR_FAIL(sb_audit_verify_finish(a.v, &rep, errstr, sizeof(errstr)),
                      errstr);
        sb_audit_verify_destroy(a.v);
        SB_CHECK(a.fed > 0, "no audit entry of chains %s*", a.chain_prefix);
        SB_CHECK(rep.problems == 0, "audit log broken: %s at %s: %s",
                 sb_audit_break2str(rep.first.kind),
                 rep.first.position ? rep.first.position : "?",
                 rep.first.reason ? rep.first.reason : "");
        for (c = 0; c < rep.chain_cnt; c++)
                SB_CHECK(rep.chains[c].uncovered == 0,
                         "chain %s: %zu entries after its last checkpoint",
                         rep.chains[c].chain, rep.chains[c].uncovered);
        for (r = 0; r < SB_SCN_REUSERS; r++)
                SB_CHECK_INT(records[r], a.delivered[r],
                             "records in the delivery entries vs on the "
                             "stream");
        printf("audit: %ld entries in %zu gateway chain(s), intact and "
               "signed; delivery entries count exactly the streams\n",
               a.fed, rep.chain_cnt);
        sb_audit_report_release(&rep);
}

void sb_scn_rig_prepare(sb_scn_rig_t *g, const sb_scn_t *s, const char *dir,
                        const char *grants_dir)
{
        char path[700], grant[1024];
        FILE *fp;
        int r;

        memset(g, 0, sizeof(*g));
        snprintf(g->dir, sizeof(g->dir), "%s", dir);
        snprintf(g->grants_dir, sizeof(g->grants_dir), "%s", grants_dir);
        snprintf(g->schemas_dir, sizeof(g->schemas_dir), "%s",
                 sb_scn_schemas(s, dir));
        for (r = 0; r < SB_SCN_REUSERS; r++) {
                snprintf(path, sizeof(path), "%s/%s.json", grants_dir,
                         s->reusers[r]);
                sb_scn_grant_json(s, r, grant, sizeof(grant));
                fp = fopen(path, "w");
                SB_CHECK(fp, "cannot write %s", path);
                fputs(grant, fp);
                fclose(fp);
        }
}

static void write_json(const char *path, json_t *j)
{
        SB_CHECK(json_dump_file(j, path, JSON_INDENT(2)) == 0, "write %s",
                 path);
        json_decref(j);
}

void sb_scn_rig_configure(sb_scn_rig_t *g, const sb_scn_t *s,
                          json_t *holder_kafka, json_t *gw_kafka,
                          json_t *ru_kafka[SB_SCN_REUSERS], int gateways)
{
        char errstr[1024], path[700], name[128], cfg[700];
        char holder_keys[600], gw_keys[600], holder_key[600], gw_key[600];
        char audit_key[600];
        json_t *j;
        int i, r;

        SB_CHECK(gateways >= 1 && gateways <= SB_SCN_MAX_GATEWAYS,
                 "gateways: %d", gateways);
        g->gateways = gateways;
        g->key = sb_key_random();
        snprintf(g->keyfile, sizeof(g->keyfile), "%s/pseudonym.key", g->dir);
        SB_OK_OR_FAIL(sb_key_save(g->key, g->keyfile, errstr, sizeof(errstr)),
                      errstr);
        /* Signatures: the holder signs, the gateways verify with its
         * public key and sign the streams, the agents verify. */
        snprintf(holder_keys, sizeof(holder_keys), "%s/holder-keys", g->dir);
        snprintf(gw_keys, sizeof(gw_keys), "%s/gateway-keys", g->dir);
        snprintf(path, sizeof(path), "%s/%s", holder_keys, s->dataset);
        SB_CHECK(mkdir(holder_keys, 0700) == 0 && mkdir(path, 0700) == 0 &&
                     mkdir(gw_keys, 0700) == 0,
                 "mkdir key directories in %s", g->dir);
        snprintf(holder_key, sizeof(holder_key), "%s/holder.key", g->dir);
        snprintf(gw_key, sizeof(gw_key), "%s/gateway.key", g->dir);
        snprintf(path, sizeof(path), "%s/%s/holder.pub", holder_keys,
                 s->dataset);
        sb_test_keypair(holder_key, path);
        snprintf(path, sizeof(path), "%s/gateway.pub", gw_keys);
        sb_test_keypair(gw_key, path);
        /* and the key that signs the gateways' audit checkpoints */
        snprintf(audit_key, sizeof(audit_key), "%s/audit.key", g->dir);
        snprintf(path, sizeof(path), "%s/audit.pub", g->dir);
        sb_test_keypair(audit_key, path);
        for (i = 0; i < gateways; i++) {
                snprintf(name, sizeof(name), "%s-gw-%d", s->dataset, i);
                snprintf(cfg, sizeof(cfg), "%s/%s.json", g->dir, name);
                write_json(
                    cfg, json_pack(
                             "{s:O, s:[s], s:s, s:s, s:s, s:s, s:i, "
                             "s:i, s:s, s:s, s:s}",
                             "kafka", gw_kafka, "datasets", s->dataset,
                             "schemas_dir", g->schemas_dir, "grants_dir",
                             g->grants_dir, "pseudonym_key_file", g->keyfile,
                             "client_id", name, "commit_interval_ms", 50,
                             "transaction_timeout_ms", 10000, "holder_keys_dir",
                             holder_keys, "signing_key_file", gw_key,
                             "audit_key_file", audit_key));
                sb_proc_init(&g->gw[i], name, g->dir, "gateway", NULL, cfg);
        }
        json_decref(gw_kafka);
        for (r = 0; r < SB_SCN_REUSERS; r++) {
                char signkey[600], cmd[1400];

                snprintf(signkey, sizeof(signkey), "%s/%s", g->dir,
                         s->reusers[r]);
                snprintf(cmd, sizeof(cmd),
                         "'%s' keys generate --out '%s' >/dev/null",
                         sb_proc_bin(), signkey);
                SB_CHECK(system(cmd) == 0, "%s", cmd);
                strcat(signkey, ".key");
                snprintf(g->db[r], sizeof(g->db[r]), "%s/%s.db", g->dir,
                         s->reusers[r]);
                snprintf(path, sizeof(path), "%s/%s.json", g->grants_dir,
                         s->reusers[r]);
                snprintf(cfg, sizeof(cfg), "%s/%s-agent.json", g->dir,
                         s->reusers[r]);
                write_json(cfg,
                           json_pack("{s:o, s:s, s:s, s:s, s:s, s:s, s:s, s:s, "
                                     "s:i, s:s}",
                                     "kafka", ru_kafka[r], "reuser",
                                     s->reusers[r], "dataset", s->dataset,
                                     "grant_file", path, "schemas_dir",
                                     g->schemas_dir, "database", g->db[r],
                                     "signing_key_file", signkey, "client_id",
                                     s->reusers[r], "batch_records", 20,
                                     "gateway_keys_dir", gw_keys));
                sb_proc_init(&g->ru[r], s->reusers[r], g->dir, "reuser", "run",
                             cfg);
        }
        j = json_pack("{s:o, s:s, s:s, s:s}", "kafka", holder_kafka,
                      "schemas_dir", g->schemas_dir, "client_id",
                      "scenario-holder", "signing_key_file", holder_key);
        SB_OK_OR_FAIL(sb_config_apply(j, "holder", sb_holder_cfg_table,
                                      &g->hcfg, errstr, sizeof(errstr)),
                      errstr);
        json_decref(j);
        g->h = sb_holder_new(&g->hcfg, s->dataset, errstr, sizeof(errstr));
        SB_CHECK(g->h, "holder: %s", errstr);
}

void sb_scn_rig_check_alive(sb_scn_rig_t *g)
{
        int i;

        for (i = 0; i < g->gateways; i++)
                sb_proc_check_alive(&g->gw[i]);
        for (i = 0; i < SB_SCN_REUSERS; i++)
                sb_proc_check_alive(&g->ru[i]);
}

void sb_scn_rig_stop(sb_scn_rig_t *g)
{
        int i;

        for (i = 0; i < g->gateways; i++)
                sb_proc_stop(&g->gw[i]);
        for (i = 0; i < SB_SCN_REUSERS; i++)
                sb_proc_stop(&g->ru[i]);
}

void sb_scn_rig_tail(const sb_scn_rig_t *g)
{
        int i;

        for (i = 0; i < g->gateways; i++)
                sb_proc_tail(&g->gw[i]);
        for (i = 0; i < SB_SCN_REUSERS; i++)
                sb_proc_tail(&g->ru[i]);
}

void sb_scn_rig_release(sb_scn_rig_t *g)
{
        sb_scn_rig_stop(g);
        if (g->h)
                sb_holder_destroy(g->h);
        sb_config_release(sb_holder_cfg_table, &g->hcfg);
        sb_key_destroy(g->key);
}

static json_t *sb_scn_mock_kafka(const sb_mockenv_t *env)
{
        json_t *j = sb_mockenv_kafka_json(env);

        json_object_set_new(j, "properties",
                            json_pack("{s:s}", "session.timeout.ms", "6000"));
        return j;
}

void sb_scn_rig_mock(sb_scn_rig_t *g, const sb_scn_t *s, sb_mockenv_t *env,
                     int gateways)
{
        json_t *ru_kafka[SB_SCN_REUSERS];
        char errstr[512], dir[256], grants[300], topic[200];
        int r;

        SB_OK_OR_FAIL(sb_crypto_init(errstr, sizeof(errstr)), errstr);
        snprintf(dir, sizeof(dir), "/tmp/sbscn-XXXXXX");
        SB_CHECK(mkdtemp(dir), "mkdtemp");
        snprintf(grants, sizeof(grants), "%s/grants", dir);
        SB_CHECK(mkdir(grants, 0700) == 0, "mkdir %s", grants);
        SB_OK_OR_FAIL(
            sb_mockenv_dataset(env, s->dataset, 3, errstr, sizeof(errstr)),
            errstr);
        for (r = 0; r < SB_SCN_REUSERS; r++) {
                snprintf(topic, sizeof(topic), "sb.out.%.63s.%.63s",
                         s->reusers[r], s->dataset);
                SB_OK_OR_FAIL(
                    sb_mockenv_topic(env, topic, 3, errstr, sizeof(errstr)),
                    errstr);
                SB_OK_OR_FAIL(sb_mockenv_ack_topic(env, s->reusers[r], errstr,
                                                   sizeof(errstr)),
                              errstr);
                ru_kafka[r] = sb_scn_mock_kafka(env);
        }
        sb_scn_rig_prepare(g, s, dir, grants);
        sb_scn_rig_configure(g, s, sb_mockenv_kafka_json(env),
                             sb_scn_mock_kafka(env), ru_kafka, gateways);
}

void sb_scn_rig_mock_release(sb_scn_rig_t *g)
{
        char dir[256];

        snprintf(dir, sizeof(dir), "%s", g->dir);
        sb_scn_rig_release(g);
        sb_test_rmtree(dir);
}

void sb_scn_rig_start(sb_scn_rig_t *g)
{
        int r;

        sb_proc_start(&g->gw[0]);
        for (r = 0; r < SB_SCN_REUSERS; r++)
                sb_proc_start(&g->ru[r]);
}

void sb_scn_run_with_kills(sb_scn_t *s, sb_scn_rig_t *g, int min_kills)
{
        int b, kills = 0;

        for (b = 0; b < SB_SCN_BATCHES || kills < min_kills; b++) {
                if (b < SB_SCN_BATCHES)
                        sb_scn_publish_batch(s, g->h, b);
                usleep((useconds_t)(100 + rand() % 700) * 1000);
                if (rand() % 3 != 0) {
                        int k = rand() % (1 + SB_SCN_REUSERS);
                        sb_proc_t *p = k ? &g->ru[k - 1] : &g->gw[0];

                        sb_proc_kill9(p);
                        kills++;
                        usleep((useconds_t)(rand() % 400) * 1000);
                        sb_proc_start(p);
                }
                sb_scn_rig_check_alive(g);
        }
        printf("published %d batches of %d subjects and %ld rights events; "
               "%d SIGKILLs (gateway %d, %s %d, %s %d)\n",
               SB_SCN_BATCHES, SB_SCN_SUBJECTS, s->rights, kills,
               g->gw[0].kills, s->reusers[0], g->ru[0].kills, s->reusers[1],
               g->ru[1].kills);
}

void sb_scn_converge(const sb_scn_t *s, sb_scn_rig_t *g, int seconds)
{
        int r;

        if (!sb_scn_wait_stores(s, g->key, g->db, seconds,
                                (void (*)(void *))sb_scn_rig_check_alive, g)) {
                sb_scn_rig_stop(g);
                sb_scn_rig_tail(g);
                SB_TEST_FAIL("the reuser stores never matched the model");
        }
        sb_scn_rig_stop(g);
        for (r = 0; r < SB_SCN_REUSERS; r++)
                printf("%s store: %zu rows, exactly the model's; restricted "
                       "persons marked\n",
                       s->reusers[r], json_object_size(s->rows[r]));
}
