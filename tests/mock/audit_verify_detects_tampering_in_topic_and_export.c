/*
 * DESIGN.md §9, CNIL R4.3-12, R4.3-13, R4.3-16, R5.4-21: _sb.audit is
 * tamper-evident, and an auditor can check it on the cluster or on an
 * export.
 *
 * Two writers, gw-1 and gw-2, each a transactional producer whose
 * transactional.id is its chain id, write chained entries to _sb.audit in
 * interleaved transactions, with a checkpoint signed by the platform's
 * audit key every 10 entries and on close; one legacy entry (no chain)
 * comes first. Through the built binary:
 *   - `audit verify` fails on the legacy entry (exit 8, "unchained"), and
 *     passes with --allow-unchained (exit 0, both chains, every entry
 *     covered by a checkpoint);
 *   - `audit export` writes every entry with its offset; `verify --file`
 *     passes on it, with the platform's keys or with --key AUDIT.pub;
 *   - a copy of the export with one field changed, or one line deleted,
 *     fails with exit 8 naming that line, its offset, chain and seq;
 *   - an export of a time window verifies from its first entry on;
 *   - a forged entry produced to the topic fails `verify` with exit 8,
 *     naming its offset.
 */
#include <limits.h>
#include <sys/wait.h>
#include <unistd.h>

#include "audit.h"
#include "cli.h"
#include "envelope.h"
#include "proc.h"
#include "sign.h"
#include "testutil.h"

#define EVERY 10

typedef struct writer_s {
        const char *id;
        rd_kafka_t *rk;
        sb_audit_chain_t *chain;
        int n;
} writer_t;

static void check_kafka_error(rd_kafka_error_t *error, const char *what)
{
        if (error) {
                char msg[512];

                snprintf(msg, sizeof(msg), "%s", rd_kafka_error_string(error));
                rd_kafka_error_destroy(error);
                SB_TEST_FAIL("%s: %s", what, msg);
        }
}

static void produce(rd_kafka_t *rk, const char *key, const char *value)
{
        SB_CHECK(!rd_kafka_producev(
                     rk, RD_KAFKA_V_TOPIC(SB_AUDIT_TOPIC),
                     RD_KAFKA_V_KEY(key, strlen(key)),
                     RD_KAFKA_V_VALUE((void *)value, strlen(value)),
                     RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END),
                 "produce to %s", SB_AUDIT_TOPIC);
}

static rd_kafka_t *producer(sb_testenv_t *te, const char *txid)
{
        rd_kafka_conf_t *conf = rd_kafka_conf_new();
        char errstr[512];
        rd_kafka_t *rk;

        rd_kafka_conf_set(conf, "bootstrap.servers", te->mock->bootstraps, NULL,
                          0);
        if (txid)
                SB_CHECK(rd_kafka_conf_set(conf, "transactional.id", txid,
                                           errstr,
                                           sizeof(errstr)) == RD_KAFKA_CONF_OK,
                         "transactional.id: %s", errstr);
        rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
        SB_CHECK(rk, "producer: %s", errstr);
        if (txid)
                check_kafka_error(rd_kafka_init_transactions(rk, 30000),
                                  "init_transactions");
        return rk;
}

static void writer_init(writer_t *w, sb_testenv_t *te, const char *id,
                        const sb_signkey_t *key)
{
        char errstr[512];

        memset(w, 0, sizeof(*w));
        w->id = id;
        w->rk = producer(te, id);
        w->chain = sb_audit_chain_new(id, key, EVERY, errstr, sizeof(errstr));
        SB_CHECK(w->chain, "chain: %s", errstr);
}

/* One transaction of `n` entries, with the checkpoints they complete. */
static void writer_txn(writer_t *w, int n, size_t *total)
{
        char errstr[512], event_id[64], author[96], *text, *cp;
        json_t *e;
        int i;

        check_kafka_error(rd_kafka_begin_transaction(w->rk), "begin");
        sb_audit_chain_mark(w->chain);
        snprintf(author, sizeof(author), "sharebus://gateway/%s", w->id);
        for (i = 0; i < n; i++) {
                snprintf(event_id, sizeof(event_id), "%s-event-%d", w->id,
                         ++w->n);
                e = json_pack("{s:s, s:s, s:s, s:s, s:s, s:n, s:[s]}", "op",
                              "rights.propagate", "author", author, "event_id",
                              event_id, "type", "sharebus.rights.erasure",
                              "dataset", "beneficiaries", "purposes",
                              "notified", "reuser-a");
                SB_OK_OR_FAIL(sb_audit_chain_append(w->chain, e, &text, &cp,
                                                    errstr, sizeof(errstr)),
                              errstr);
                json_decref(e);
                produce(w->rk, event_id, text);
                (*total)++;
                if (cp) {
                        produce(w->rk, w->id, cp);
                        (*total)++;
                }
                free(text);
                free(cp);
        }
        check_kafka_error(rd_kafka_commit_transaction(w->rk, 30000), "commit");
}

/* The writer's last transaction: the checkpoint that covers its end. */
static void writer_close(writer_t *w, size_t *total)
{
        char errstr[512], *cp;

        check_kafka_error(rd_kafka_begin_transaction(w->rk), "begin");
        SB_OK_OR_FAIL(
            sb_audit_chain_checkpoint(w->chain, &cp, errstr, sizeof(errstr)),
            errstr);
        SB_CHECK(cp, "%s: nothing to checkpoint on close", w->id);
        produce(w->rk, w->id, cp);
        (*total)++;
        free(cp);
        check_kafka_error(rd_kafka_commit_transaction(w->rk, 30000), "commit");
        sb_audit_chain_destroy(w->chain);
        rd_kafka_destroy(w->rk);
}

/* Both writers, turn about, `rounds` times. */
static void interleave(writer_t *w1, writer_t *w2, int rounds, size_t *total)
{
        int i;

        for (i = 0; i < rounds; i++) {
                writer_txn(w1, 3 + i % 4, total);
                writer_txn(w2, 2 + i % 3, total);
        }
}

/* The binary: `sharebus audit ARGS`; its exit code, stdout + stderr. */
static int cli(sb_testenv_t *te, const char *args, char *out, size_t size)
{
        const char *env = sb_proc_bin();
        char cmd[16384], errpath[600], bin[PATH_MAX];
        size_t n = 0;
        FILE *fp;
        int c, st;

        /* The command runs in the test's directory. */
        SB_CHECK(realpath(env, bin) && access(bin, X_OK) == 0,
                 "no sharebus binary at %s", env);
        snprintf(errpath, sizeof(errpath), "%s/cli.err", te->dir);
        snprintf(cmd, sizeof(cmd), "cd '%s' && '%s' audit %s 2>'%s'", te->dir,
                 bin, args, errpath);
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

static void expect(int rc, const char *out, int want_rc, const char *want,
                   const char *what)
{
        SB_CHECK(rc == want_rc && strstr(out, want),
                 "%s: expected exit %d and \"%s\", got exit %d:\n%s", what,
                 want_rc, want, rc, out);
}

/* The lines of a file (a JSON array of strings). */
static json_t *read_lines(sb_testenv_t *te, const char *name)
{
        char path[600], *line = NULL;
        json_t *lines = json_array();
        size_t cap = 0;
        ssize_t len;
        FILE *fp;

        snprintf(path, sizeof(path), "%s/%s", te->dir, name);
        fp = fopen(path, "r");
        SB_CHECK(fp, "cannot read %s", path);
        while ((len = getline(&line, &cap, fp)) != -1) {
                if (len && line[len - 1] == '\n')
                        line[len - 1] = '\0';
                json_array_append_new(lines, json_string(line));
        }
        free(line);
        fclose(fp);
        return lines;
}

static void write_lines(sb_testenv_t *te, const char *name, json_t *lines)
{
        char path[600];
        json_t *v;
        size_t i;
        FILE *fp;

        snprintf(path, sizeof(path), "%s/%s", te->dir, name);
        fp = fopen(path, "w");
        SB_CHECK(fp, "cannot write %s", path);
        json_array_foreach(lines, i, v)
        {
                fputs(json_string_value(v), fp);
                fputc('\n', fp);
        }
        fclose(fp);
}

/* "line N (offset M): chain C seq S" of line i (0-based) of `lines`. */
static void where(const json_t *lines, size_t i, char *out, size_t size)
{
        json_t *e =
            json_loads(json_string_value(json_array_get(lines, i)), 0, NULL);

        SB_CHECK(e, "export line %zu is not JSON", i + 1);
        snprintf(out, size,
                 "BROKEN at line %zu (offset %" JSON_INTEGER_FORMAT
                 "): chain %s seq %" JSON_INTEGER_FORMAT,
                 i + 1, json_integer_value(json_object_get(e, "_offset")),
                 json_string_value(json_object_get(e, "chain")),
                 json_integer_value(json_object_get(e, "seq")));
        json_decref(e);
}

/* A time later than every entry written so far, and earlier than every
 * entry written after. */
static int64_t next_ms(void)
{
        int64_t past = sb_now_ms();

        while (sb_now_ms() <= past)
                usleep(5 * 1000);
        return sb_now_ms();
}

int main(void)
{
        char errstr[512], out[32768], args[2048], pub[128], want[512];
        char pf_text[4096], t2[32], t3[32];
        const char *pf_path;
        json_t *lines, *copy, *j, *e;
        size_t total = 0, window, i;
        sb_signkey_t *key;
        writer_t w1, w2;
        rd_kafka_t *rk;
        sb_testenv_t te;
        int64_t lo, hi, start2, start3;
        char *text, *forged;
        FILE *fp;
        int rc;

        sb_testenv_init(&te);

        /* The platform's audit key, declared in its platform.json. */
        key = sb_signkey_generate();
        SB_CHECK(key, "out of memory");
        snprintf(args, sizeof(args), "%s/audit.key", te.dir);
        snprintf(want, sizeof(want), "%s/audit.pub", te.dir);
        SB_OK_OR_FAIL(sb_signkey_save(key, args, want, errstr, sizeof(errstr)),
                      errstr);
        fp = fopen(want, "r");
        SB_CHECK(fp && fgets(pub, sizeof(pub), fp), "cannot read %s", want);
        fclose(fp);
        pub[strcspn(pub, "\n")] = '\0';
        snprintf(pf_text, sizeof(pf_text),
                 "{\"gateway\": [\"sb-gateway.g1\"], \"datasets\": "
                 "{\"beneficiaries\": {\"holders\": [\"holder.g1\"]}}, "
                 "\"grants_dir\": \"%s\", \"schemas_dir\": \"%s\", "
                 "\"replication_factor\": 1, \"audit_keys\": [\"%s\"]}",
                 te.grants_dir, SB_SCHEMAS_DIR, pub);
        pf_path = sb_testenv_file(&te, "platform.json", pf_text);
        j = json_pack("{s:o, s:s}", "kafka", sb_mockenv_kafka_json(te.mock),
                      "platform", pf_path);
        text = json_dumps(j, JSON_COMPACT);
        sb_testenv_file(&te, "admin.json", text);
        free(text);
        json_decref(j);

        /* 1. The log: a legacy entry, then three phases of interleaved
         *    transactions; the second phase is the export window. */
        rk = producer(&te, NULL);
        produce(rk, "legacy-event",
                "{\"op\":\"rights.propagate\",\"author\":\"sharebus://gateway/"
                "gw-0\",\"event_id\":\"legacy-event\",\"at\":1700000000000}");
        SB_CHECK(rd_kafka_flush(rk, 10000) == 0, "flush");
        total++;
        writer_init(&w1, &te, "gw-1", key);
        writer_init(&w2, &te, "gw-2", key);
        interleave(&w1, &w2, 4, &total);
        start2 = next_ms();
        window = total;
        interleave(&w1, &w2, 4, &total);
        window = total - window;
        start3 = next_ms();
        interleave(&w1, &w2, 3, &total);
        writer_close(&w1, &total);
        writer_close(&w2, &total);
        SB_CHECK_INT(total, sb_testenv_count_messages(&te, SB_AUDIT_TOPIC),
                     "entries on _sb.audit");

        /* 2. verify on the topic */
        rc = cli(&te, "verify --config admin.json", out, sizeof(out));
        expect(rc, out, SB_EXIT_BROKEN, "BROKEN at offset 0: unchained",
               "verify with a legacy entry");
        rc = cli(&te, "verify --config admin.json --allow-unchained", out,
                 sizeof(out));
        snprintf(want, sizeof(want), "_sb.audit: %zu entries, 2 chain(s)",
                 total);
        expect(rc, out, 0, want, "verify --allow-unchained");
        expect(rc, out, 0, "\nintact\n", "verify --allow-unchained");
        SB_CHECK(!strstr(out, "warning"),
                 "every entry is covered by a checkpoint, got:\n%s", out);

        /* 3. export, verify --file */
        rc = cli(&te, "export --config admin.json --out all.jsonl", out,
                 sizeof(out));
        snprintf(want, sizeof(want), "exported %zu entries", total);
        expect(rc, out, 0, want, "export");
        rc = cli(&te, "export --config admin.json --out all.jsonl", out,
                 sizeof(out));
        expect(rc, out, SB_EXIT_ERROR, "all.jsonl", "export over a file");
        lines = read_lines(&te, "all.jsonl");
        SB_CHECK_INT(total, json_array_size(lines), "lines in the export");
        rc = cli(&te,
                 "verify --config admin.json --file all.jsonl "
                 "--allow-unchained",
                 out, sizeof(out));
        expect(rc, out, 0, "\nintact\n", "verify --file");
        rc = cli(&te,
                 "verify --file all.jsonl --key audit.pub "
                 "--allow-unchained",
                 out, sizeof(out));
        expect(rc, out, 0, "\nintact\n", "verify --file --key");

        /* 4. A copy with one field changed, then one with a line deleted. */
        copy = json_deep_copy(lines);
        i = 20;
        e = json_loads(json_string_value(json_array_get(copy, i)), 0, NULL);
        SB_CHECK(e && json_object_get(e, "chain"), "line 21 is not chained");
        json_object_set_new(e, "dataset", json_string("another-dataset"));
        text = json_dumps(e, JSON_COMPACT);
        json_array_set_new(copy, i, json_string(text));
        free(text);
        json_decref(e);
        write_lines(&te, "modified.jsonl", copy);
        rc = cli(&te,
                 "verify --config admin.json --file modified.jsonl "
                 "--allow-unchained",
                 out, sizeof(out));
        where(copy, i, want, sizeof(want));
        expect(rc, out, SB_EXIT_BROKEN, want, "a modified export");
        expect(rc, out, SB_EXIT_BROKEN, "modified", "a modified export");
        json_decref(copy);

        copy = json_deep_copy(lines);
        json_array_remove(copy, 30);
        write_lines(&te, "deleted.jsonl", copy);
        rc = cli(&te,
                 "verify --config admin.json --file deleted.jsonl "
                 "--allow-unchained",
                 out, sizeof(out));
        SB_CHECK(rc == SB_EXIT_BROKEN && strstr(out, "missing"),
                 "an export with a line deleted: expected exit 8, missing; "
                 "got %d:\n%s",
                 rc, out);
        json_decref(copy);

        /* 5. A window: the second phase, checked from its first entry. */
        sb_time_format(start2, t2);
        sb_time_format(start3, t3);
        snprintf(args, sizeof(args),
                 "export --config admin.json --from %s --to %s --out "
                 "window.jsonl",
                 t2, t3);
        rc = cli(&te, args, out, sizeof(out));
        snprintf(want, sizeof(want), "exported %zu entries", window);
        expect(rc, out, 0, want, "export of a window");
        rc = cli(&te, "verify --config admin.json --file window.jsonl", out,
                 sizeof(out));
        expect(rc, out, 0, "\nintact\n", "verify --file of a window");
        expect(rc, out, 0, "note: chain gw-1 starts at seq",
               "verify --file of a window");

        /* 6. A forged entry on the topic: a copy of one of gw-1's, changed
         *    and its hash recomputed. */
        e = json_loads(json_string_value(json_array_get(lines, 5)), 0, NULL);
        SB_CHECK(e && json_object_get(e, "chain"), "line 6 is not chained");
        json_object_del(e, "_offset");
        json_object_set_new(e, "event_id", json_string("forged"));
        json_object_del(e, "hash");
        {
                char h[SB_AUDIT_HASH_HEXLEN + 1];

                SB_CHECK(sb_audit_entry_hash(e, h) == SB_OK, "hash");
                json_object_set_new(e, "hash", json_string(h));
        }
        forged = json_dumps(e, JSON_COMPACT | JSON_SORT_KEYS);
        SB_CHECK(!rd_kafka_query_watermark_offsets(rk, SB_AUDIT_TOPIC, 0, &lo,
                                                   &hi, 10000),
                 "watermarks");
        produce(rk, "forged", forged);
        SB_CHECK(rd_kafka_flush(rk, 10000) == 0, "flush");
        rc = cli(&te, "verify --config admin.json --allow-unchained", out,
                 sizeof(out));
        snprintf(want, sizeof(want),
                 "BROKEN at offset %" PRId64 ": chain %s seq %" PRId64
                 ": inserted",
                 hi, json_string_value(json_object_get(e, "chain")),
                 (int64_t)json_integer_value(json_object_get(e, "seq")));
        expect(rc, out, SB_EXIT_BROKEN, want, "a forged entry on the topic");

        printf("%zu entries from 2 writers verified on the topic and in the "
               "export; a changed field, a deleted line and a forged entry "
               "detected; a window of %zu entries verified\n",
               total, window);
        free(forged);
        json_decref(e);
        json_decref(lines);
        rd_kafka_destroy(rk);
        sb_signkey_destroy(key);
        sb_testenv_release(&te);
        return 0;
}
