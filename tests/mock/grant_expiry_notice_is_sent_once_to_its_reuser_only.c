/*
 * DESIGN.md §5 ("Validity"), CNIL R5.2-03, R6.2-03: a reuser is told on
 * its own notice topic, a configurable time before, that a grant of its
 * expires, once; a reuser whose grant is far from expiry hears nothing.
 *
 * Two reusers: reuser-a's grant expires in 3 days, reuser-b's in a year.
 * Through the built binary (`sharebus admin grants notify`):
 *   - _sb.grants absent: the grants are the platform's grant files, and
 *     the output says so; --dry-run prints the one notice due and sends
 *     nothing; a lead longer than the notice topics keep notices is
 *     refused;
 *   - --once sends exactly one grant.expiring notice to sb.notice.reuser-a
 *     (key, CloudEvents headers, JSON value without personal data) and
 *     nothing to sb.notice.reuser-b; a second --once sends nothing;
 *   - once `admin grants apply` has published the grants, they come from
 *     _sb.grants, and still nothing is sent twice;
 *   - `admin grants revoke g-b`: reuser-b gets one grant.revoked, once.
 */
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"
#include "envelope.h"
#include "platform.h"
#include "testutil.h"

#define DAY_MS (24 * 3600 * 1000LL)

static const char *grant_fmt =
    "{\"id\": \"%s\", \"reuser\": \"%s\", \"dataset\": \"beneficiaries\", "
    "\"purposes\": [\"epidemiology\"], \"legal_basis\": \"gdpr-6-1-e\", "
    "\"status\": \"approved\", \"valid_until\": \"%s\", "
    "\"contact\": \"dpo@%s.example\", \"fields\": {\"postcode\": \"keep\"}}";

static void write_grant(sb_testenv_t *te, const char *id, const char *reuser,
                        int64_t valid_until)
{
        char until[32], text[1024], file[64];

        sb_time_format(valid_until, until);
        snprintf(text, sizeof(text), grant_fmt, id, reuser, until, reuser);
        snprintf(file, sizeof(file), "%s.json", id);
        sb_testenv_grant(te, file, text);
}

/*
 * The binary: `sharebus admin grants ARGS --config admin.json`; returns
 * its exit code, its stdout then its stderr in `out`.
 */
static int cli(sb_testenv_t *te, const char *admin, const char *args, char *out,
               size_t size)
{
        const char *bin = getenv("SB_BIN") ? getenv("SB_BIN") : "../sharebus";
        char cmd[2048], errpath[600];
        size_t n = 0;
        FILE *fp;
        int c, st;

        SB_CHECK(access(bin, X_OK) == 0, "no sharebus binary at %s", bin);
        snprintf(errpath, sizeof(errpath), "%s/cli.err", te->dir);
        snprintf(cmd, sizeof(cmd), "'%s' admin grants %s --config '%s' 2>'%s'",
                 bin, args, admin, errpath);
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

static void notify(sb_testenv_t *te, const char *admin, const char *args,
                   const char *want, const char *what)
{
        char out[16384];
        int rc = cli(te, admin, args, out, sizeof(out));

        SB_CHECK(
            rc == 0 && strstr(out, want),
            "%s: 'admin grants %s': expected exit 0 and \"%s\", got %d:\n%s",
            what, args, want, rc, out);
}

typedef struct notices_s {
        json_t *list; /* [{"key", "value", "headers": {...}}] */
} notices_t;

static void on_notice(const rd_kafka_message_t *m, void *opaque)
{
        static const char *const names[] = {"ce_specversion", "ce_id",
                                            "ce_source",      "ce_type",
                                            "ce_time",        "content-type"};
        notices_t *ns = opaque;
        json_t *h = json_object(), *v;
        json_error_t jerr;
        char buf[256];
        size_t i;

        SB_CHECK(m->key && m->payload, "a notice without a key or a value");
        v = json_loadb(m->payload, m->len, JSON_REJECT_DUPLICATES, &jerr);
        SB_CHECK(v, "notice value is not JSON: %s", jerr.text);
        SB_CHECK(!memchr(m->payload, '\n', m->len), "notice value not compact");
        for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
                if (sb_test_header(m, names[i], buf, sizeof(buf)))
                        json_object_set_new(h, names[i], json_string(buf));
        json_array_append_new(ns->list,
                              json_pack("{s:s%, s:o, s:o}", "key", m->key,
                                        m->key_len, "value", v, "headers", h));
}

static json_t *read_notices(sb_testenv_t *te, const char *topic)
{
        notices_t ns = {json_array()};

        sb_testenv_read_topic(te, topic, on_notice, &ns);
        return ns.list;
}

static const char *str(const json_t *o, const char *key)
{
        const char *s = json_string_value(json_object_get(o, key));

        SB_CHECK(s, "notice: no string '%s'", key);
        return s;
}

/* Notice `i` of `list`: its kind, grant, reuser, key prefix, headers. */
static void check_notice(const json_t *list, size_t i, const char *kind,
                         const char *grant, const char *reuser, const char *key)
{
        const json_t *n = json_array_get(list, i);
        const json_t *v = json_object_get(n, "value");
        const json_t *h = json_object_get(n, "headers");
        char type[64], text[4096];
        char *dump;
        int64_t ms;

        SB_CHECK(n, "notice %zu missing", i);
        SB_CHECK_STR(key, str(n, "key"), "notice key");
        SB_CHECK_STR(kind, str(v, "notice"), "notice kind");
        SB_CHECK_STR(grant, str(v, "grant"), "notice grant");
        SB_CHECK_STR(reuser, str(v, "reuser"), "notice reuser");
        SB_CHECK_STR("beneficiaries", str(v, "dataset"), "notice dataset");
        SB_CHECK(json_array_size(json_object_get(v, "purposes")) == 1 &&
                     !strcmp(json_string_value(json_array_get(
                                 json_object_get(v, "purposes"), 0)),
                             "epidemiology"),
                 "notice purposes");
        SB_CHECK(!sb_time_parse(str(v, "sent_at"), &ms), "sent_at: a time");
        SB_CHECK(strlen(str(v, "reason")) > 40, "notice without a reason");
        snprintf(type, sizeof(type), "sharebus.%s", kind);
        SB_CHECK_STR("1.0", str(h, "ce_specversion"), "ce_specversion");
        SB_CHECK_INT(36, strlen(str(h, "ce_id")), "ce_id: a UUID");
        SB_CHECK_STR("sharebus://admin/sharebus-admin", str(h, "ce_source"),
                     "ce_source");
        SB_CHECK_STR(type, str(h, "ce_type"), "ce_type");
        SB_CHECK(!sb_time_parse(str(h, "ce_time"), &ms), "ce_time: a time");
        SB_CHECK_STR("application/json", str(h, "content-type"),
                     "content-type");
        /* No personal data: the grant's contact is the reuser's DPO, not
         * for the notice; no subject id or pseudonym either. */
        dump = json_dumps(v, JSON_COMPACT);
        snprintf(text, sizeof(text), "%s", dump);
        free(dump);
        SB_CHECK(!strstr(text, "dpo@") && !strstr(text, "BEN-") &&
                     !strstr(text, "pseudonym"),
                 "notice carries personal data: %s", text);
}

int main(void)
{
        char errstr[1024], pf_text[2048], admin_path[600], pf_path[600];
        char until[32], key[128], out[16384];
        int64_t now = sb_now_ms(), a_until = now + 3 * DAY_MS;
        sb_testenv_t te;
        json_t *a, *b, *j;
        char *text;
        int rc;

        sb_testenv_init(&te);
        write_grant(&te, "g-a", "reuser-a", a_until);
        write_grant(&te, "g-b", "reuser-b", now + 365 * DAY_MS);
        SB_OK_OR_FAIL(sb_mockenv_topic(te.mock, "sb.notice.reuser-a", 1, errstr,
                                       sizeof(errstr)),
                      errstr);
        SB_OK_OR_FAIL(sb_mockenv_topic(te.mock, "sb.notice.reuser-b", 1, errstr,
                                       sizeof(errstr)),
                      errstr);
        snprintf(pf_text, sizeof(pf_text),
                 "{\"gateway\": [\"sb-gateway.g1\"], \"datasets\": "
                 "{\"beneficiaries\": {\"holders\": [\"holder.g1\"]}}, "
                 "\"reusers\": {"
                 "\"reuser-a\": {\"principals\": [\"reuser-a.g1\"]}, "
                 "\"reuser-b\": {\"principals\": [\"reuser-b.g1\"]}}, "
                 "\"grants_dir\": \"%s\", \"schemas_dir\": \"%s\", "
                 "\"replication_factor\": 1}",
                 te.grants_dir, SB_SCHEMAS_DIR);
        snprintf(pf_path, sizeof(pf_path), "%s",
                 sb_testenv_file(&te, "platform.json", pf_text));
        j = json_pack("{s:o, s:s, s:s}", "kafka",
                      sb_mockenv_kafka_json(te.mock), "platform", pf_path,
                      "notice_contact", "grants@platform.example");
        text = json_dumps(j, JSON_COMPACT);
        SB_CHECK(text, "out of memory");
        snprintf(admin_path, sizeof(admin_path), "%s",
                 sb_testenv_file(&te, "admin.json", text));
        free(text);
        json_decref(j);
        sb_time_format(a_until, until);
        snprintf(key, sizeof(key), "g-a/grant.expiring/%s", until);

        /* 1. No _sb.grants: the grant files; a dry run sends nothing. */
        rc = cli(&te, admin_path, "notify --dry-run", out, sizeof(out));
        SB_CHECK(rc == 0 && strstr(out, "grant files") &&
                     strstr(out, "would send 1 notice(s)") &&
                     strstr(out, key) && !strstr(out, "g-b/"),
                 "notify --dry-run: expected exit 0, the grant files and one "
                 "notice for g-a, got %d:\n%s",
                 rc, out);
        SB_CHECK_INT(0, sb_testenv_count_messages(&te, "sb.notice.reuser-a"),
                     "notices after --dry-run");

        /* A lead longer than the notice topics keep notices (30 days)
         * could repeat one: refused, nothing sent. */
        rc = cli(&te, admin_path, "notify --once --before 60d", out,
                 sizeof(out));
        SB_CHECK(rc == 1 && strstr(out, "ops_retention_days") &&
                     strstr(out, "--before"),
                 "notify --before 60d: expected exit 1 naming "
                 "ops_retention_days, got %d:\n%s",
                 rc, out);
        SB_CHECK_INT(0, sb_testenv_count_messages(&te, "sb.notice.reuser-a"),
                     "notices after a refused --before");

        /* 2. One notice, to reuser-a only; never twice. */
        notify(&te, admin_path, "notify --once",
               "sent 1 notice(s); 0 already sent", "first pass");
        a = read_notices(&te, "sb.notice.reuser-a");
        b = read_notices(&te, "sb.notice.reuser-b");
        SB_CHECK_INT(1, json_array_size(a), "notices to reuser-a");
        SB_CHECK_INT(0, json_array_size(b), "notices to reuser-b");
        check_notice(a, 0, "grant.expiring", "g-a", "reuser-a", key);
        SB_CHECK_STR(
            until,
            str(json_object_get(json_array_get(a, 0), "value"), "valid_until"),
            "valid_until");
        SB_CHECK_INT(
            3,
            json_integer_value(json_object_get(
                json_object_get(json_array_get(a, 0), "value"), "days_left")),
            "days_left");
        SB_CHECK(strstr(str(json_object_get(json_array_get(a, 0), "value"),
                            "reason"),
                        "grants@platform.example"),
                 "the reason names whom to ask (notice_contact)");
        json_decref(a);
        json_decref(b);
        notify(&te, admin_path, "notify --once",
               "sent 0 notice(s); 1 already sent", "second pass");

        /* 3. The grants published: read from _sb.grants, still once. */
        SB_OK_OR_FAIL(
            sb_mockenv_topic(te.mock, "_sb.grants", 1, errstr, sizeof(errstr)),
            errstr);
        rc = cli(&te, admin_path, "apply", out, sizeof(out));
        SB_CHECK(rc == 0 && strstr(out, "applied: 2 grant version(s)"),
                 "grants apply: expected exit 0 and 2 grants, got %d:\n%s", rc,
                 out);
        notify(&te, admin_path, "notify --once", "grants: 2 from _sb.grants",
               "from the topic");
        notify(&te, admin_path, "notify --once",
               "sent 0 notice(s); 1 already sent", "from the topic, again");

        /* 4. A revocation: one grant.revoked to reuser-b, once. */
        rc = cli(&te, admin_path, "revoke g-b", out, sizeof(out));
        SB_CHECK(rc == 0 && strstr(out, "revoked grant g-b"),
                 "grants revoke: expected exit 0, got %d:\n%s", rc, out);
        notify(&te, admin_path, "notify --once",
               "sent 1 notice(s); 1 already sent", "after the revocation");
        notify(&te, admin_path, "notify --once",
               "sent 0 notice(s); 2 already sent",
               "after the revocation, "
               "again");
        a = read_notices(&te, "sb.notice.reuser-a");
        b = read_notices(&te, "sb.notice.reuser-b");
        SB_CHECK_INT(1, json_array_size(a), "notices to reuser-a at the end");
        SB_CHECK_INT(1, json_array_size(b), "notices to reuser-b at the end");
        SB_CHECK(!strncmp(str(json_array_get(b, 0), "key"),
                          "g-b/grant.revoked/", 18),
                 "revocation key: %s", str(json_array_get(b, 0), "key"));
        check_notice(b, 0, "grant.revoked", "g-b", "reuser-b",
                     str(json_array_get(b, 0), "key"));
        json_decref(a);
        json_decref(b);

        printf("g-a: one grant.expiring to sb.notice.reuser-a (%s), none "
               "twice; g-b: nothing until revoked, then one grant.revoked\n",
               key);
        sb_testenv_release(&te);
        return 0;
}
