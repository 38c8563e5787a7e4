/*
 * `sharebus admin grants` on a real broker, from the command line as the
 * platform team runs it: apply publishes each new or changed grant file
 * once to _sb.grants (key = id, compact JSON, the contract's headers) with
 * one grant.change entry on _sb.audit each, in committed transactions and
 * with no aborted attempt left behind; a second apply publishes nothing;
 * revoke publishes the grant with status revoked and keeps the earlier
 * versions; list and show read it back; an unknown id is refused naming
 * it; an invalid grant file stops apply, naming the file and key, before
 * anything is published. Every grant.change entry is in the hash chain
 * of the transactional id sb-admin-grants, continued by each run, and that
 * chain verifies without allow-unchained (CNIL R4.3-12, R4.3-13).
 *
 * _sb.grants and _sb.audit are the broker's, shared with other tests: this
 * one counts only the keys it made (ids carry the process id) and expects
 * in-sync exits to be what they were before it started (6 if another
 * test's grant is on the topic without a file here).
 */
#include <sys/wait.h>
#include <unistd.h>

#include "audit.h"
#include "envelope.h"
#include "grants.h"
#include "world.h"

static char tag[32];    /* "t<pid>": in ids, reusers, principals */
static char admin[600]; /* admin.json */
static char out[65536], err[65536];

#define GRANT_FMT                                                              \
        "{\"id\": \"g-%s-%s\", \"reuser\": \"%s-r%s\", \"dataset\": "          \
        "\"beneficiaries\", \"purposes\": [%s], \"legal_basis\": "             \
        "\"gdpr-6-1-e\", \"status\": \"%s\", \"fields\": {\"postcode\": "      \
        "{\"truncate\": 2}, \"benefit\": \"keep\"}}"

static void write_grant(sb_world_t *w, const char *which, const char *purposes,
                        const char *status)
{
        char file[64], json[1024];

        snprintf(file, sizeof(file), "%s.json", which);
        snprintf(json, sizeof(json), GRANT_FMT, tag, which, tag, which,
                 purposes, status);
        sb_world_grant(w, file, json);
}

static void slurp(const char *path, char *buf, size_t size)
{
        FILE *fp = fopen(path, "r");
        size_t n = 0;

        buf[0] = '\0';
        if (!fp)
                return;
        n = fread(buf, 1, size - 1, fp);
        buf[n] = '\0';
        fclose(fp);
}

/* Runs `sharebus admin grants ARGS --config admin.json`; stdout in `out`,
 * stderr in `err`; returns the exit code. */
static int run(sb_world_t *w, const char *args)
{
        const char *bin = getenv("SB_BIN");
        char cmd[2048], o[400], e[400];
        int rc;

        SB_CHECK(bin && *bin, "SB_BIN is not set (run through ctest)");
        snprintf(o, sizeof(o), "%s/out", w->dir);
        snprintf(e, sizeof(e), "%s/err", w->dir);
        snprintf(cmd, sizeof(cmd),
                 "'%s' admin grants %s --config '%s' >'%s' 2>'%s'", bin, args,
                 admin, o, e);
        rc = system(cmd);
        SB_CHECK(rc != -1 && WIFEXITED(rc), "could not run: %s", cmd);
        slurp(o, out, sizeof(out));
        slurp(e, err, sizeof(err));
        return WEXITSTATUS(rc);
}

static void check_rc(int want, int got, const char *what)
{
        if (want != got)
                SB_TEST_FAIL(
                    "%s: exit %d, expected %d\nstdout:\n%s\nstderr:\n%s", what,
                    got, want, out, err);
}

/* What this test's keys hold on one topic. */
typedef struct seen_s {
        int n;              /* messages with our keys */
        json_t *values[16]; /* their values, in order */
        char keys[16][64];
        char origin[16][64];  /* sb_grant_origin */
        char source[16][128]; /* ce_source */
        char time[16][40];    /* ce_time */
        char ctype[16][64];   /* content-type */
} seen_t;

static void seen_release(seen_t *s)
{
        int i;

        for (i = 0; i < s->n && i < 16; i++)
                json_decref(s->values[i]);
        memset(s, 0, sizeof(*s));
}

/* Reads `topic` from the beginning to its end, as the administrator, with
 * `isolation`; keeps the messages whose key holds our tag. */
static void read_topic(sb_world_t *w, const char *topic, const char *isolation,
                       seen_t *s)
{
        rd_kafka_topic_partition_list_t *parts;
        const rd_kafka_metadata_t *md;
        rd_kafka_topic_t *rkt;
        rd_kafka_conf_t *conf;
        char errstr[512], key[64], want[40];
        long deadline;
        rd_kafka_t *rk;
        int i, eofs = 0, cnt;

        memset(s, 0, sizeof(*s));
        snprintf(want, sizeof(want), "g-%s-", tag);
        conf = sb_kafka_conf_new(&w->admin_kc, "t-grants-reader", errstr,
                                 sizeof(errstr));
        SB_CHECK(conf, "conf: %s", errstr);
        rd_kafka_conf_set(conf, "group.id", "t-grants-reader", NULL, 0);
        rd_kafka_conf_set(conf, "isolation.level", isolation, NULL, 0);
        rd_kafka_conf_set(conf, "enable.partition.eof", "true", NULL, 0);
        rd_kafka_conf_set(conf, "enable.auto.commit", "false", NULL, 0);
        rd_kafka_conf_set(conf, "log_level", "3", NULL, 0);
        rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
        SB_CHECK(rk, "consumer: %s", errstr);
        rkt = rd_kafka_topic_new(rk, topic, NULL);
        SB_CHECK(rd_kafka_metadata(rk, 0, rkt, &md, 10000) == 0 &&
                     md->topic_cnt == 1 && !md->topics[0].err,
                 "metadata of %s", topic);
        cnt = md->topics[0].partition_cnt;
        parts = rd_kafka_topic_partition_list_new(cnt);
        for (i = 0; i < cnt; i++)
                rd_kafka_topic_partition_list_add(parts, topic, i)->offset =
                    RD_KAFKA_OFFSET_BEGINNING;
        rd_kafka_metadata_destroy(md);
        rd_kafka_topic_destroy(rkt);
        rd_kafka_assign(rk, parts);
        rd_kafka_topic_partition_list_destroy(parts);
        deadline = sb_world_now_ms() + 30000;
        while (eofs < cnt) {
                rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);

                SB_CHECK(sb_world_now_ms() < deadline,
                         "%s not read to its end within 30 s", topic);
                if (!m)
                        continue;
                if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                        eofs++;
                } else if (m->err) {
                        SB_TEST_FAIL("reading %s: %s", topic,
                                     rd_kafka_message_errstr(m));
                } else if (m->key && m->key_len < sizeof(key)) {
                        memcpy(key, m->key, m->key_len);
                        key[m->key_len] = '\0';
                        if (!strncmp(key, want, strlen(want))) {
                                SB_CHECK(s->n < 16, "too many messages");
                                snprintf(s->keys[s->n], 64, "%s", key);
                                s->values[s->n] =
                                    m->payload ? json_loadb(m->payload, m->len,
                                                            0, NULL)
                                               : NULL;
                                sb_test_header(m, SB_GRANTS_HDR_ORIGIN,
                                               s->origin[s->n], 64);
                                sb_test_header(m, "ce_source", s->source[s->n],
                                               128);
                                sb_test_header(m, "ce_time", s->time[s->n], 40);
                                sb_test_header(m, "content-type",
                                               s->ctype[s->n], 64);
                                s->n++;
                        }
                }
                rd_kafka_message_destroy(m);
        }
        rd_kafka_consumer_close(rk);
        rd_kafka_destroy(rk);
}

/* Committed, and nothing aborted beside it: read_uncommitted sees the
 * same number of our messages. */
static void counts(sb_world_t *w, int want_grants, int want_audit,
                   const char *when, seen_t *grants, seen_t *audit)
{
        seen_t all;

        read_topic(w, SB_GRANTS_TOPIC, "read_committed", grants);
        read_topic(w, SB_GRANTS_AUDIT_TOPIC, "read_committed", audit);
        if (grants->n != want_grants || audit->n != want_audit)
                SB_TEST_FAIL("%s: expected %d grant version(s) and %d audit "
                             "entr(ies), got %d and %d",
                             when, want_grants, want_audit, grants->n,
                             audit->n);
        read_topic(w, SB_GRANTS_TOPIC, "read_uncommitted", &all);
        SB_CHECK_INT(want_grants, all.n, "grant versions read uncommitted");
        seen_release(&all);
        read_topic(w, SB_GRANTS_AUDIT_TOPIC, "read_uncommitted", &all);
        SB_CHECK_INT(want_audit, all.n, "audit entries read uncommitted");
        seen_release(&all);
}

/* The file's JSON, as apply publishes it. */
static json_t *file_json(sb_world_t *w, const char *which)
{
        char path[600];
        json_t *j;

        snprintf(path, sizeof(path), "%s/%s.json", w->grants_dir, which);
        j = json_load_file(path, 0, NULL);
        SB_CHECK(j, "cannot read %s", path);
        return j;
}

static void check_version(const seen_t *s, int i, const char *which,
                          const json_t *want, const char *origin)
{
        char id[64];
        int64_t ms;

        snprintf(id, sizeof(id), "g-%s-%s", tag, which);
        SB_CHECK_STR(id, s->keys[i], "key (grant id)");
        SB_CHECK(s->values[i] && json_equal(s->values[i], want),
                 "version %d of %s is not its file's JSON", i, id);
        SB_CHECK_STR("application/json", s->ctype[i], "header content-type");
        SB_CHECK_STR(origin, s->origin[i], "header sb_grant_origin");
        SB_CHECK_STR("sharebus://admin/t-grants-admin", s->source[i],
                     "header ce_source");
        SB_CHECK(sb_time_parse(s->time[i], &ms) == 0,
                 "header ce_time '%s' is not RFC 3339", s->time[i]);
}

static void check_audit(const seen_t *s, int i, const char *which,
                        const char *change, const char *status)
{
        const json_t *e = s->values[i];
        char id[64], reuser[64];

        snprintf(id, sizeof(id), "g-%s-%s", tag, which);
        snprintf(reuser, sizeof(reuser), "%s-r%s", tag, which);
        SB_CHECK(e, "audit entry %d is not JSON", i);
        SB_CHECK_STR(id, s->keys[i], "audit key");
        SB_CHECK_STR("grant.change",
                     json_string_value(json_object_get(e, "op")), "audit op");
        SB_CHECK_STR("sharebus://admin/t-grants-admin",
                     json_string_value(json_object_get(e, "author")),
                     "audit author");
        SB_CHECK_STR(id, json_string_value(json_object_get(e, "grant_id")),
                     "audit grant_id");
        SB_CHECK_STR(reuser, json_string_value(json_object_get(e, "reuser")),
                     "audit reuser");
        SB_CHECK_STR("beneficiaries",
                     json_string_value(json_object_get(e, "dataset")),
                     "audit dataset");
        SB_CHECK_STR(change, json_string_value(json_object_get(e, "change")),
                     "audit change");
        SB_CHECK_STR(status, json_string_value(json_object_get(e, "status")),
                     "audit status");
        SB_CHECK(json_is_integer(json_object_get(e, "at")), "audit at");
        SB_CHECK_STR(SB_GRANTS_TXN_ID,
                     json_string_value(json_object_get(e, "chain")),
                     "audit chain (the writer's transactional id)");
        SB_CHECK(json_integer_value(json_object_get(e, "seq")) > 0 &&
                     json_is_string(json_object_get(e, "hash")),
                 "audit entry %d has no seq or hash", i);
}

/*
 * The chain of SB_GRANTS_TXN_ID on the broker's _sb.audit (read_committed,
 * to its end) verifies without allow-unchained. The log is shared with
 * other tests and other writers, so only this chain's entries are fed;
 * an unchained entry claiming it would not be seen here, but no writer
 * other than `admin grants` uses its transactional id.
 */
static void verify_admin_chain(sb_world_t *w)
{
        rd_kafka_topic_partition_list_t *parts;
        const rd_kafka_metadata_t *md;
        sb_audit_report_t rep;
        sb_audit_verify_t *v;
        rd_kafka_topic_t *rkt;
        rd_kafka_conf_t *conf;
        char errstr[512], pos[64];
        long deadline;
        rd_kafka_t *rk;
        int i, eofs = 0, cnt;
        size_t fed = 0;

        v = sb_audit_verify_new(NULL, 0, 0);
        SB_CHECK(v, "out of memory");
        conf = sb_kafka_conf_new(&w->admin_kc, "t-grants-audit", errstr,
                                 sizeof(errstr));
        SB_CHECK(conf, "conf: %s", errstr);
        rd_kafka_conf_set(conf, "group.id", "t-grants-audit", NULL, 0);
        rd_kafka_conf_set(conf, "isolation.level", "read_committed", NULL, 0);
        rd_kafka_conf_set(conf, "enable.partition.eof", "true", NULL, 0);
        rd_kafka_conf_set(conf, "enable.auto.commit", "false", NULL, 0);
        rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
        SB_CHECK(rk, "consumer: %s", errstr);
        rkt = rd_kafka_topic_new(rk, SB_GRANTS_AUDIT_TOPIC, NULL);
        SB_CHECK(rd_kafka_metadata(rk, 0, rkt, &md, 10000) == 0 &&
                     md->topic_cnt == 1 && !md->topics[0].err,
                 "metadata of %s", SB_GRANTS_AUDIT_TOPIC);
        cnt = md->topics[0].partition_cnt;
        parts = rd_kafka_topic_partition_list_new(cnt);
        for (i = 0; i < cnt; i++)
                rd_kafka_topic_partition_list_add(parts, SB_GRANTS_AUDIT_TOPIC,
                                                  i)
                    ->offset = RD_KAFKA_OFFSET_BEGINNING;
        rd_kafka_metadata_destroy(md);
        rd_kafka_topic_destroy(rkt);
        rd_kafka_assign(rk, parts);
        rd_kafka_topic_partition_list_destroy(parts);
        deadline = sb_world_now_ms() + 30000;
        while (eofs < cnt) {
                rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
                const char *chain;
                json_t *e;

                SB_CHECK(sb_world_now_ms() < deadline,
                         "%s not read to its end within 30 s",
                         SB_GRANTS_AUDIT_TOPIC);
                if (!m)
                        continue;
                if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                        eofs++;
                } else if (!m->err && m->payload) {
                        e = json_loadb(m->payload, m->len, 0, NULL);
                        chain = json_string_value(json_object_get(e, "chain"));
                        if (chain && !strcmp(chain, SB_GRANTS_TXN_ID)) {
                                snprintf(pos, sizeof(pos),
                                         "partition %d offset %lld",
                                         (int)m->partition,
                                         (long long)m->offset);
                                SB_OK_OR_FAIL(
                                    sb_audit_verify_feed_json(v, e, pos, errstr,
                                                              sizeof(errstr)),
                                    errstr);
                                fed++;
                        }
                        json_decref(e);
                }
                rd_kafka_message_destroy(m);
        }
        rd_kafka_consumer_close(rk);
        rd_kafka_destroy(rk);
        SB_OK_OR_FAIL(sb_audit_verify_finish(v, &rep, errstr, sizeof(errstr)),
                      errstr);
        sb_audit_verify_destroy(v);
        SB_CHECK(fed >= 4 && rep.problems == 0 && rep.unchained == 0,
                 "chain %s (%zu entries): %s at %s: %s", SB_GRANTS_TXN_ID, fed,
                 sb_audit_break2str(rep.first.kind),
                 rep.first.position ? rep.first.position : "-",
                 rep.first.reason ? rep.first.reason : "-");
        sb_audit_report_release(&rep);
}

/* The plan (--json) change of one of our grants. */
static const char *action_of(const json_t *plan, const char *which)
{
        const json_t *c;
        char id[64];
        size_t i;

        snprintf(id, sizeof(id), "g-%s-%s", tag, which);
        json_array_foreach(json_object_get(plan, "changes"), i, c)
        {
                if (!strcmp(json_string_value(json_object_get(c, "id")), id))
                        return json_string_value(json_object_get(c, "action"));
        }
        return "(absent)";
}

static json_t *plan_json(sb_world_t *w, int want_rc, const char *what)
{
        json_t *j;

        check_rc(want_rc, run(w, "plan --json"), what);
        j = json_loads(out, 0, NULL);
        SB_CHECK(j, "%s: plan --json is not JSON: %s", what, out);
        return j;
}

int main(void)
{
        seen_t grants, audit;
        char platform[1024], args[256], want[200], id[64];
        json_t *plan, *a1, *a2, *b1, *b_revoked;
        sb_world_t w;
        int in_sync = 0;
        size_t i;
        const json_t *c;
        FILE *fp;

        snprintf(tag, sizeof(tag), "t%ld", (long)getpid());
        sb_world_init(&w);
        write_grant(&w, "a", "\"research\", \"statistics\"", "approved");
        write_grant(&w, "b", "\"statistics\"", "approved");
        snprintf(platform, sizeof(platform),
                 "\"gateway\": [\"sb-gateway.g1\"], \"datasets\": "
                 "{\"beneficiaries\": {\"holders\": [\"%s-holder.g1\"]}}, "
                 "\"reusers\": {\"%s-ra\": {\"principals\": [\"%s-ra.g1\"]}, "
                 "\"%s-rb\": {\"principals\": [\"%s-rb.g1\"]}}",
                 tag, tag, tag, tag, tag);
        sb_world_platform(&w, platform);
        sb_world_apply(&w);
        snprintf(admin, sizeof(admin), "%s/admin.json", w.dir);
        fp = fopen(admin, "w");
        SB_CHECK(fp, "write %s", admin);
        fprintf(fp,
                "{\"kafka\": {\"bootstrap_servers\": \"%s\", "
                "\"security_protocol\": \"ssl\", \"ssl_ca_location\": \"%s\", "
                "\"ssl_certificate_location\": \"%s\", \"ssl_key_location\": "
                "\"%s\"}, \"client_id\": \"t-grants-admin\", \"platform\": "
                "\"%s\"}",
                w.admin_kc.bootstrap_servers, w.admin_kc.ssl_ca_location,
                w.admin_kc.ssl_certificate_location,
                w.admin_kc.ssl_key_location, w.platform_path);
        fclose(fp);

        /* Before: nothing of ours; others' grants without a file here
         * make every plan exit 6, before and after. */
        plan = plan_json(&w, 6, "plan before apply");
        SB_CHECK_STR("create", action_of(plan, "a"), "plan: grant a");
        SB_CHECK_STR("create", action_of(plan, "b"), "plan: grant b");
        json_array_foreach(json_object_get(plan, "changes"), i, c)
        {
                const char *act =
                    json_string_value(json_object_get(c, "action"));

                if (strstr(json_string_value(json_object_get(c, "id")), tag))
                        continue; /* ours */
                if (!strcmp(act, "no-file") || !strcmp(act, "conflict"))
                        in_sync = 6;
        }
        json_decref(plan);
        counts(&w, 0, 0, "before apply", &grants, &audit);

        /* apply: 2 grants, 2 audit entries. */
        check_rc(in_sync, run(&w, "apply"), "first apply");
        counts(&w, 2, 2, "after the first apply", &grants, &audit);
        a1 = file_json(&w, "a");
        b1 = file_json(&w, "b");
        check_version(&grants, 0, "a", a1, "a.json");
        check_version(&grants, 1, "b", b1, "b.json");
        SB_CHECK_STR(grants.time[0], grants.time[1],
                     "ce_time of the changes of one apply");
        check_audit(&audit, 0, "a", "created", "approved");
        check_audit(&audit, 1, "b", "created", "approved");
        seen_release(&grants);
        seen_release(&audit);

        /* apply again: nothing. */
        check_rc(in_sync, run(&w, "apply"), "second apply");
        SB_CHECK(strstr(out, "nothing to apply"),
                 "second apply does not say it has nothing to do:\n%s", out);
        check_rc(in_sync, run(&w, "plan"), "plan after apply");
        counts(&w, 2, 2, "after the second apply", &grants, &audit);
        seen_release(&grants);
        seen_release(&audit);

        /* One file changes: one update. */
        write_grant(&w, "a", "\"statistics\"", "approved");
        plan = plan_json(&w, 6, "plan after a change");
        SB_CHECK_STR("update", action_of(plan, "a"), "plan: grant a changed");
        SB_CHECK_STR("unchanged", action_of(plan, "b"), "plan: grant b");
        json_decref(plan);
        check_rc(in_sync, run(&w, "apply"), "apply of a change");
        counts(&w, 3, 3, "after the update", &grants, &audit);
        a2 = file_json(&w, "a");
        check_version(&grants, 2, "a", a2, "a.json");
        check_audit(&audit, 2, "a", "updated", "approved");
        seen_release(&grants);
        seen_release(&audit);

        /* revoke b: status revoked on the topic, history kept. */
        snprintf(args, sizeof(args), "revoke g-%s-b", tag);
        check_rc(0, run(&w, args), "revoke");
        counts(&w, 4, 4, "after the revocation", &grants, &audit);
        b_revoked = json_deep_copy(b1);
        json_object_set_new(b_revoked, "status", json_string("revoked"));
        check_version(&grants, 1, "b", b1, "b.json"); /* still there */
        check_version(&grants, 3, "b", b_revoked, "b.json");
        check_audit(&audit, 3, "b", "revoked", "revoked");
        seen_release(&grants);
        seen_release(&audit);

        /* list and show read it back. */
        check_rc(0, run(&w, "list --json"), "list --json");
        snprintf(want, sizeof(want),
                 "{\"id\":\"g-%s-b\",\"reuser\":\"%s-rb\",\"dataset\":"
                 "\"beneficiaries\",\"status\":\"revoked\"",
                 tag, tag);
        SB_CHECK(strstr(out, want), "list --json lacks %s:\n%s", want, out);
        check_rc(0, run(&w, "list"), "list");
        snprintf(id, sizeof(id), "g-%s-b ", tag);
        SB_CHECK(strstr(out, id) && strstr(strstr(out, id), "revoked"),
                 "list does not show g-%s-b revoked:\n%s", tag, out);
        snprintf(args, sizeof(args), "show g-%s-b", tag);
        check_rc(0, run(&w, args), "show");
        SB_CHECK(strstr(out, "\"status\": \"revoked\"") &&
                     strstr(out, "from file b.json"),
                 "show does not print the revoked grant:\n%s", out);

        /* An unknown id: refused, naming it; nothing published. */
        snprintf(args, sizeof(args), "revoke g-%s-zz", tag);
        check_rc(1, run(&w, args), "revoke of an unknown id");
        snprintf(want, sizeof(want), "grant 'g-%s-zz'", tag);
        SB_CHECK(strstr(err, want), "the error does not name the id:\n%s", err);
        snprintf(args, sizeof(args), "show g-%s-zz", tag);
        check_rc(1, run(&w, args), "show of an unknown id");
        SB_CHECK(strstr(err, want), "the error does not name the id:\n%s", err);
        /* Revoking again publishes nothing either. */
        snprintf(args, sizeof(args), "revoke g-%s-b", tag);
        check_rc(0, run(&w, args), "second revoke");
        SB_CHECK(strstr(out, "already revoked"),
                 "second revoke does not say so:\n%s", out);
        counts(&w, 4, 4, "after refused revocations", &grants, &audit);
        seen_release(&grants);
        seen_release(&audit);

        /* The file still says approved: a conflict, never reinstated. */
        plan = plan_json(&w, 6, "plan with b revoked on the topic only");
        SB_CHECK_STR("conflict", action_of(plan, "b"), "plan: grant b");
        json_decref(plan);
        check_rc(6, run(&w, "apply"), "apply with a conflict");
        counts(&w, 4, 4, "after apply with a conflict", &grants, &audit);
        seen_release(&grants);
        seen_release(&audit);
        /* Recorded in the file: in sync. */
        write_grant(&w, "b", "\"statistics\"", "revoked");
        check_rc(in_sync, run(&w, "plan"), "plan with b revoked in its file");

        /* An invalid file beside a valid change: apply refuses, naming the
         * file and key, and publishes nothing at all. */
        write_grant(&w, "a", "\"research\"", "approved");
        sb_world_grant(&w, "c.json",
                       "{\"id\": \"g-c\", \"reuser\": \"x\", \"dataset\": "
                       "\"beneficiaries\", \"purposes\": [\"p\"], "
                       "\"legal_basis\": \"x\", \"status\": \"approved\", "
                       "\"fields\": {\"postcode\": {\"truncate\": 0}}}");
        check_rc(1, run(&w, "apply"), "apply with an invalid grant file");
        SB_CHECK(strstr(err, "c.json") && strstr(err, "'fields.postcode'") &&
                     strstr(err, "nothing published"),
                 "the error does not name the file and key:\n%s", err);
        counts(&w, 4, 4, "after apply with an invalid file", &grants, &audit);
        seen_release(&grants);
        seen_release(&audit);

        printf("admin grants: 2 created, 1 updated, 1 revoked, each once "
               "with its audit entry; re-apply, unknown id, conflict and "
               "invalid file published nothing\n");
        json_decref(a1);
        json_decref(a2);
        json_decref(b1);
        json_decref(b_revoked);
        verify_admin_chain(&w);
        sb_world_release(&w);
        return 0;
}
