/*
 * sharebus audit verify | audit export | audit stats | audit watch
 *
 * The auditor's view of _sb.audit (DESIGN.md §9; CNIL R4.3-12, R4.3-13,
 * R4.3-16, R5.4-21): verify recomputes every writer's hash chain and
 * checks its signed checkpoints, on the topic or on an export, and names
 * the first broken link; export writes the log, or a window of it, as JSON
 * lines; stats sums the deliveries and exclusions per reuser and dataset
 * per day or month (R3.4-02, R5.4-14, R5.4-23, R5.4-24); watch applies
 * simple rules to the log and the quarantine and raises alerts on
 * _sb.alerts for the person on duty (R4.3-16, R4.3-17, R4.3-18,
 * admin/watch.h). The format is in docs/messages.md, the commands in
 * docs/cli.md.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "alerts.h"
#include "audit.h"
#include "cli.h"
#include "crypto.h"
#include "envelope.h"
#include "log.h"
#include "platform.h"
#include "reader.h"
#include "rights.h"
#include "transparency.h"
#include "watch.h"

#define SB_AUDIT_MAX_KEYS 16

static int sb_audit_usage(const char *why)
{
        FILE *fp = why ? stderr : stdout;

        if (why)
                fprintf(fp, "sharebus audit: %s\n\n", why);
        fprintf(fp,
                "usage: sharebus audit verify --config ADMIN.json "
                "[--file F.jsonl] [--allow-unchained]\n"
                "       sharebus audit verify --file F.jsonl --key "
                "AUDIT.pub [--key ...] [--allow-unchained]\n"
                "       sharebus audit export --config ADMIN.json [--from "
                "TIME] [--to TIME] [--out F]\n"
                "       sharebus audit stats --config ADMIN.json | --file "
                "F.jsonl [--by reuser|dataset]\n"
                "                [--day | --month] [--from TIME] [--to "
                "TIME] [--json]\n"
                "       sharebus audit watch --config ADMIN.json [--once] "
                "[...] (see audit watch --help)\n"
                "\n"
                "verify  recomputes each writer's hash chain on %s (read to "
                "its end) or\n"
                "        on an export, checks the signed checkpoints against "
                "the platform's\n"
                "        audit_keys, and names the first broken link. Exit 0 "
                "when intact,\n"
                "        8 when the log is broken\n"
                "export  writes the log in log order as JSON lines, each "
                "entry as stored\n"
                "        plus \"_offset\"; verify --file checks it\n"
                "stats   per day (or --month) and per reuser and dataset "
                "(or --by one of\n"
                "        them): deliveries, records, distinct subjects, "
                "bytes, and records\n"
                "        excluded per reason; a table, or --json\n"
                "watch   raises alerts on _sb.alerts: volume spikes, "
                "deliveries outside a\n"
                "        grant's validity, quarantine growth, late or invalid "
                "receipts\n"
                "\n"
                "  --config F         the platform administrator's config "
                "(examples/admin.json)\n"
                "  --file F           verify: an export instead of the "
                "topic\n"
                "  --key F.pub        verify --file: trust checkpoints signed "
                "by this key\n"
                "                     (repeat for several) instead of the "
                "platform's\n"
                "  --allow-unchained  verify: entries without a chain (the "
                "format before\n"
                "                     chained entries) are counted, not "
                "failed\n"
                "  --from TIME        export: from the first entry at or "
                "after TIME (RFC 3339)\n"
                "  --to TIME          export: up to the first entry at or "
                "after TIME, excluded\n"
                "  --out F            export: write to F, a new file "
                "(default: stdout)\n"
                "  --by K             stats: group by reuser or by dataset "
                "only\n"
                "  --day, --month     stats: the period of a row (default "
                "--day)\n"
                "  --json             stats: one JSON object instead of "
                "the table\n"
                "  (stats takes --file, --from and --to too: entries whose "
                "\"at\" is in the window)\n"
                "  -v, -d FAC, --log-json  logging, as for every command\n",
                SB_AUDIT_TOPIC);
        return why ? SB_EXIT_USAGE : SB_EXIT_OK;
}

typedef struct sb_audit_cli_s {
        const char *config;
        const char *file;
        const char *out;
        const char *keys[SB_AUDIT_MAX_KEYS];
        size_t key_cnt;
        int allow_unchained;
        int64_t from_ms, to_ms; /* -1: open */
} sb_audit_cli_t;

static int sb_audit_time_opt(const char *name, const char *arg, int64_t *msp)
{
        char why[300];

        if (sb_time_parse(arg, msp)) {
                snprintf(why, sizeof(why),
                         "%s: expected an RFC 3339 time such as "
                         "2026-11-25T10:00:00Z, got \"%.64s\"",
                         name, arg);
                sb_audit_usage(why);
                return -1;
        }
        return 0;
}

/* Parses the options after the action; -1 on usage, 1 on --help. */
static int sb_audit_parse(int argc, char **argv, int export, sb_audit_cli_t *o)
{
        static const struct option opts[] = {
            {"config", required_argument, NULL, 'c'},
            {"file", required_argument, NULL, 'f'},
            {"key", required_argument, NULL, 'k'},
            {"allow-unchained", no_argument, NULL, 'u'},
            {"from", required_argument, NULL, 'F'},
            {"to", required_argument, NULL, 'T'},
            {"out", required_argument, NULL, 'o'},
            {"help", no_argument, NULL, 'h'},
            {"log-json", no_argument, NULL, 'J'},
            {NULL, 0, NULL, 0},
        };
        const char *only = NULL;
        int opt;

        memset(o, 0, sizeof(*o));
        o->from_ms = o->to_ms = -1;
        optind = 2;
        opterr = 0;
        while ((opt = getopt_long(argc, argv, ":c:hvd:", opts, NULL)) != -1) {
                switch (opt) {
                case 'c':
                        o->config = optarg;
                        break;
                case 'f':
                        o->file = optarg;
                        only = export ? "--file is an option of verify" : NULL;
                        break;
                case 'k':
                        if (o->key_cnt == SB_AUDIT_MAX_KEYS) {
                                sb_audit_usage("--key: at most 16 keys");
                                return -1;
                        }
                        o->keys[o->key_cnt++] = optarg;
                        only = export ? "--key is an option of verify" : only;
                        break;
                case 'u':
                        o->allow_unchained = 1;
                        only = export ? "--allow-unchained is an option of "
                                        "verify"
                                      : only;
                        break;
                case 'F':
                        if (sb_audit_time_opt("--from", optarg, &o->from_ms))
                                return -1;
                        only = export ? only : "--from is an option of export";
                        break;
                case 'T':
                        if (sb_audit_time_opt("--to", optarg, &o->to_ms))
                                return -1;
                        only = export ? only : "--to is an option of export";
                        break;
                case 'o':
                        o->out = optarg;
                        only = export ? only : "--out is an option of export";
                        break;
                case 'h':
                        sb_audit_usage(NULL);
                        return 1;
                case ':':
                        sb_audit_usage("an option needs a value");
                        return -1;
                default:
                        if (!sb_cli_log_option(opt, optarg)) {
                                sb_audit_usage("unknown option");
                                return -1;
                        }
                }
        }
        if (only) {
                sb_audit_usage(only);
                return -1;
        }
        if (optind < argc) {
                sb_audit_usage("unexpected argument");
                return -1;
        }
        if (o->key_cnt && !o->file) {
                sb_audit_usage("--key goes with --file: on the topic, the "
                               "keys are the platform's audit_keys");
                return -1;
        }
        if (o->key_cnt && o->config) {
                sb_audit_usage("give --config or --key, not both");
                return -1;
        }
        if (!o->config && !o->key_cnt) {
                sb_audit_usage("--config ADMIN.json is required");
                return -1;
        }
        if (o->from_ms >= 0 && o->to_ms >= 0 && o->to_ms <= o->from_ms) {
                sb_audit_usage("--to must come after --from");
                return -1;
        }
        return 0;
}

typedef struct sb_audit_ctx_s {
        sb_admin_cfg_t cfg;
        int cfg_loaded;
        sb_platform_t *pf;
        sb_reader_t *reader;
        char errstr[1024];
} sb_audit_ctx_t;

/* The admin config and the platform declaration it names. */
static sb_err_t sb_audit_open(sb_audit_ctx_t *ctx, const char *config)
{
        sb_err_t err;

        if ((err = sb_crypto_init(ctx->errstr, sizeof(ctx->errstr))))
                return err;
        ctx->cfg_loaded = 1;
        if ((err = sb_config_load(config, sb_admin_cfg_table, &ctx->cfg,
                                  ctx->errstr, sizeof(ctx->errstr))))
                return err;
        ctx->pf = sb_platform_load(ctx->cfg.platform, ctx->errstr,
                                   sizeof(ctx->errstr));
        return ctx->pf ? SB_OK : SB_ERR_CONFIG;
}

static sb_err_t sb_audit_read(sb_audit_ctx_t *ctx, sb_reader_cb_t cb,
                              void *opaque)
{
        if (!ctx->reader &&
            !(ctx->reader = sb_reader_new(&ctx->cfg, "audit", ctx->errstr,
                                          sizeof(ctx->errstr))))
                return SB_ERR_KAFKA;
        return sb_reader_read(ctx->reader, SB_AUDIT_TOPIC, cb, opaque,
                              ctx->errstr, sizeof(ctx->errstr));
}

static void sb_audit_close(sb_audit_ctx_t *ctx)
{
        sb_reader_destroy(ctx->reader);
        sb_platform_destroy(ctx->pf);
        if (ctx->cfg_loaded)
                sb_config_release(sb_admin_cfg_table, &ctx->cfg);
}

/* "offset N", or "partition P offset N" beyond partition 0. */
static void sb_audit_position(const rd_kafka_message_t *m, char *out,
                              size_t size)
{
        if (m->partition)
                snprintf(out, size, "partition %" PRId32 " offset %" PRId64,
                         m->partition, m->offset);
        else
                snprintf(out, size, "offset %" PRId64, m->offset);
}

/*
 * verify
 */

/* The verifier trusting --key files, or the platform's audit_keys. */
static sb_audit_verify_t *sb_audit_verifier(sb_audit_ctx_t *ctx,
                                            const sb_audit_cli_t *o)
{
        unsigned char keys[SB_AUDIT_MAX_KEYS][SB_SIGN_PUBLIC_BYTES];
        unsigned char(*all)[SB_SIGN_PUBLIC_BYTES] = keys;
        size_t i, cnt = o->key_cnt;
        sb_audit_verify_t *v;

        for (i = 0; i < o->key_cnt; i++)
                if (sb_pubkey_load(o->keys[i], keys[i], ctx->errstr,
                                   sizeof(ctx->errstr)))
                        return NULL;
        if (ctx->pf) {
                cnt = sb_platform_audit_key_cnt(ctx->pf);
                if (cnt && !(all = calloc(cnt, sizeof(*all)))) {
                        snprintf(ctx->errstr, sizeof(ctx->errstr),
                                 "out of memory");
                        return NULL;
                }
                for (i = 0; i < cnt; i++)
                        sb_platform_audit_key(ctx->pf, i, all[i]);
        }
        v = sb_audit_verify_new(
            (const unsigned char(*)[SB_SIGN_PUBLIC_BYTES])all, cnt,
            o->allow_unchained ? SB_AUDIT_ALLOW_UNCHAINED : 0);
        if (!v)
                snprintf(ctx->errstr, sizeof(ctx->errstr), "out of memory");
        if (all != keys)
                free(all);
        return v;
}

static sb_err_t sb_audit_on_verify(const rd_kafka_message_t *m, void *opaque,
                                   char *errstr, size_t errstr_size)
{
        char pos[64];

        sb_audit_position(m, pos, sizeof(pos));
        return sb_audit_verify_feed(opaque, m->payload, m->len, pos, errstr,
                                    errstr_size);
}

/*
 * One line of an export: the entry without what export added, at "line N
 * (offset M)".
 */
static sb_err_t sb_audit_feed_line(sb_audit_verify_t *v, char *line, size_t n,
                                   char *errstr, size_t errstr_size)
{
        const json_t *offset, *partition, *bad;
        char pos[96];
        json_t *e;
        sb_err_t err;

        e = json_loads(line, JSON_REJECT_DUPLICATES, NULL);
        snprintf(pos, sizeof(pos), "line %zu", n);
        if (!json_is_object(e)) {
                json_decref(e);
                return sb_audit_verify_feed(v, line, strlen(line), pos, errstr,
                                            errstr_size);
        }
        offset = json_object_get(e, "_offset");
        partition = json_object_get(e, "_partition");
        if (json_is_integer(offset) && json_integer_value(partition))
                snprintf(pos, sizeof(pos),
                         "line %zu (partition %" JSON_INTEGER_FORMAT
                         " offset %" JSON_INTEGER_FORMAT ")",
                         n, json_integer_value(partition),
                         json_integer_value(offset));
        else if (json_is_integer(offset))
                snprintf(pos, sizeof(pos),
                         "line %zu (offset %" JSON_INTEGER_FORMAT ")", n,
                         json_integer_value(offset));
        json_object_del(e, "_offset");
        json_object_del(e, "_partition");
        bad = json_object_get(e, "_malformed");
        if (bad)
                err = sb_audit_verify_feed(v, json_string_value(bad),
                                           json_string_length(bad), pos, errstr,
                                           errstr_size);
        else
                err = sb_audit_verify_feed_json(v, e, pos, errstr, errstr_size);
        json_decref(e);
        return err;
}

static sb_err_t sb_audit_verify_file(sb_audit_verify_t *v, const char *path,
                                     char *errstr, size_t errstr_size)
{
        char *line = NULL;
        size_t cap = 0, n = 0;
        sb_err_t err = SB_OK;
        ssize_t len;
        FILE *fp;

        fp = fopen(path, "re");
        if (!fp)
                return sb_seterr(errstr, errstr_size, SB_ERR_IO,
                                 "export '%s': %s", path, strerror(errno));
        while (!err && (len = getline(&line, &cap, fp)) != -1) {
                n++;
                while (len > 0 &&
                       (line[len - 1] == '\n' || line[len - 1] == '\r' ||
                        line[len - 1] == ' '))
                        line[--len] = '\0';
                if (len == 0)
                        continue;
                err = sb_audit_feed_line(v, line, n, errstr, errstr_size);
        }
        if (!err && ferror(fp))
                err = sb_seterr(errstr, errstr_size, SB_ERR_IO,
                                "export '%s': read error", path);
        free(line);
        fclose(fp);
        return err;
}

static void sb_audit_print(const sb_audit_report_t *rep, const char *what)
{
        size_t i, checkpoints = 0;

        for (i = 0; i < rep->chain_cnt; i++)
                checkpoints += rep->chains[i].checkpoints;
        printf("%s: %zu entries, %zu chain(s), %zu checkpoint(s) verified\n",
               what, rep->entries, rep->chain_cnt, checkpoints);
        for (i = 0; i < rep->chain_cnt; i++) {
                const sb_audit_chain_info_t *c = &rep->chains[i];

                printf("  chain %s: seq %" PRId64 " to %" PRId64
                       ", %zu checkpoint(s), ",
                       c->chain, c->first_seq, c->last_seq, c->checkpoints);
                if (c->covered_seq)
                        printf("covered up to seq %" PRId64 "\n",
                               c->covered_seq);
                else
                        printf("no valid checkpoint\n");
        }
        for (i = 0; i < rep->chain_cnt; i++) {
                const sb_audit_chain_info_t *c = &rep->chains[i];

                if (c->first_seq > 1)
                        printf("note: chain %s starts at seq %" PRId64
                               ": its earlier entries are past the "
                               "retention, or outside the export; the chain "
                               "is checked from there on\n",
                               c->chain, c->first_seq);
                if (c->uncovered)
                        printf("warning: chain %s: %zu entr%s from %s on "
                               "not yet covered by a checkpoint: linked, but "
                               "not signed, and removable from the end "
                               "without trace\n",
                               c->chain, c->uncovered,
                               c->uncovered > 1 ? "ies" : "y",
                               c->first_uncovered);
        }
        if (rep->unchained && rep->first.kind != SB_AUDIT_UNCHAINED)
                printf("note: %zu unchained entr%s (the format before chained "
                       "entries), the first at %s; not verifiable\n",
                       rep->unchained, rep->unchained > 1 ? "ies" : "y",
                       rep->first_unchained);
        if (rep->first.kind == SB_AUDIT_INTACT) {
                printf("intact\n");
                return;
        }
        printf("BROKEN at %s: ", rep->first.position);
        if (rep->first.chain)
                printf("chain %s seq %" PRId64 ": ", rep->first.chain,
                       rep->first.seq);
        printf("%s: %s", sb_audit_break2str(rep->first.kind),
               rep->first.reason ? rep->first.reason : "");
        if (rep->first.kind == SB_AUDIT_UNCHAINED)
                printf(" (%zu unchained entr%s; --allow-unchained accepts "
                       "them)",
                       rep->unchained, rep->unchained > 1 ? "ies" : "y");
        printf("\n");
        if (rep->problems > 1)
                printf("%zu checks failed in all; the first broken link is "
                       "the one above\n",
                       rep->problems);
}

static int sb_audit_verify(int argc, char **argv)
{
        sb_audit_report_t rep = {0};
        sb_audit_verify_t *v = NULL;
        int rc = SB_EXIT_ERROR, r;
        char what[600];
        sb_audit_ctx_t ctx;
        sb_audit_cli_t o;
        sb_err_t err;

        if ((r = sb_audit_parse(argc, argv, 0, &o)))
                return r > 0 ? SB_EXIT_OK : SB_EXIT_USAGE;
        memset(&ctx, 0, sizeof(ctx));
        if (o.config ? sb_audit_open(&ctx, o.config)
                     : sb_crypto_init(ctx.errstr, sizeof(ctx.errstr)))
                goto fail;
        if (!(v = sb_audit_verifier(&ctx, &o)))
                goto fail;
        if (o.file) {
                snprintf(what, sizeof(what), "'%s'", o.file);
                err = sb_audit_verify_file(v, o.file, ctx.errstr,
                                           sizeof(ctx.errstr));
        } else {
                snprintf(what, sizeof(what), "%s", SB_AUDIT_TOPIC);
                err = sb_audit_read(&ctx, sb_audit_on_verify, v);
        }
        if (err ||
            sb_audit_verify_finish(v, &rep, ctx.errstr, sizeof(ctx.errstr)))
                goto fail;
        sb_audit_print(&rep, what);
        if (ctx.pf && !sb_platform_audit_key_cnt(ctx.pf) && rep.chain_cnt)
                printf("hint: platform '%s' declares no audit_keys: add the "
                       "content of the platform's audit key NAME.pub "
                       "('sharebus keys generate')\n",
                       ctx.pf->origin);
        rc = rep.first.kind == SB_AUDIT_INTACT ? SB_EXIT_OK : SB_EXIT_BROKEN;
        if (fflush(stdout))
                rc = SB_EXIT_ERROR;
        goto done;
fail:
        fprintf(stderr, "sharebus audit: %s\n", ctx.errstr);
done:
        sb_audit_report_release(&rep);
        sb_audit_verify_destroy(v);
        sb_audit_close(&ctx);
        return rc;
}

/*
 * export
 */

typedef struct sb_audit_export_s {
        const sb_audit_cli_t *o;
        FILE *out;
        int started, stopped;
        size_t written;
        int64_t first_offset, last_offset;
} sb_audit_export_t;

/* The line to write for message `m`, parsed as `e` (NULL if not JSON). */
static char *sb_audit_export_line(const rd_kafka_message_t *m, json_t *e)
{
        json_t *line = json_is_object(e) ? json_incref(e) : json_object();
        char *s = NULL;

        if (!line)
                return NULL;
        if (!json_is_object(e)) {
                json_t *raw =
                    m->payload ? json_stringn(m->payload, m->len) : json_null();

                if (!raw)
                        raw = json_sprintf("(%zu bytes, not UTF-8)", m->len);
                if (json_object_set_new(line, "_malformed", raw))
                        goto done;
        }
        if (json_object_set_new(line, "_offset", json_integer(m->offset)) ||
            (m->partition && json_object_set_new(line, "_partition",
                                                 json_integer(m->partition))))
                goto done;
        s = json_dumps(line, JSON_COMPACT);
done:
        json_decref(line);
        return s;
}

static sb_err_t sb_audit_on_export(const rd_kafka_message_t *m, void *opaque,
                                   char *errstr, size_t errstr_size)
{
        sb_audit_export_t *x = opaque;
        const json_t *at;
        int64_t t;
        json_t *e;
        char *s;
        int bad;

        if (x->stopped)
                return SB_OK;
        e = m->payload ? json_loadb(m->payload, m->len, 0, NULL) : NULL;
        at = json_object_get(e, "at");
        t = json_is_integer(at) ? json_integer_value(at)
                                : rd_kafka_message_timestamp(m, NULL);
        /* A slice of the log, not a filter: the writers' clocks differ a
         * little, and a chain must not lose an entry in the middle. */
        if (!x->started && x->o->from_ms >= 0 && t < x->o->from_ms) {
                json_decref(e);
                return SB_OK;
        }
        x->started = 1;
        if (x->o->to_ms >= 0 && t >= x->o->to_ms) {
                x->stopped = 1;
                json_decref(e);
                return SB_OK;
        }
        s = sb_audit_export_line(m, e);
        json_decref(e);
        if (!s)
                return sb_seterr(errstr, errstr_size, SB_ERR_NOMEM,
                                 "out of memory");
        bad = fputs(s, x->out) == EOF || fputc('\n', x->out) == EOF;
        free(s);
        if (bad)
                return sb_seterr(errstr, errstr_size, SB_ERR_IO,
                                 "cannot write the export: %s",
                                 strerror(errno));
        if (!x->written++)
                x->first_offset = m->offset;
        x->last_offset = m->offset;
        return SB_OK;
}

static int sb_audit_export(int argc, char **argv)
{
        sb_audit_export_t x;
        sb_audit_ctx_t ctx;
        sb_audit_cli_t o;
        int r, rc = SB_EXIT_ERROR;

        if ((r = sb_audit_parse(argc, argv, 1, &o)))
                return r > 0 ? SB_EXIT_OK : SB_EXIT_USAGE;
        memset(&ctx, 0, sizeof(ctx));
        memset(&x, 0, sizeof(x));
        x.o = &o;
        x.out = stdout;
        if (sb_audit_open(&ctx, o.config))
                goto fail;
        /* A new file: an earlier export is evidence, never overwritten. */
        if (o.out && !(x.out = fopen(o.out, "wxe"))) {
                snprintf(ctx.errstr, sizeof(ctx.errstr), "export '%s': %s",
                         o.out, strerror(errno));
                goto fail;
        }
        if (sb_audit_read(&ctx, sb_audit_on_export, &x))
                goto fail;
        if (fflush(x.out) || (o.out && fsync(fileno(x.out)))) {
                snprintf(ctx.errstr, sizeof(ctx.errstr),
                         "cannot write the export: %s", strerror(errno));
                goto fail;
        }
        if (x.written)
                fprintf(stderr,
                        "sharebus audit: exported %zu entries of %s (offsets "
                        "%" PRId64 " to %" PRId64 ") to %s\n",
                        x.written, SB_AUDIT_TOPIC, x.first_offset,
                        x.last_offset, o.out ? o.out : "stdout");
        else
                fprintf(stderr,
                        "sharebus audit: no entry of %s in the window; "
                        "nothing exported\n",
                        SB_AUDIT_TOPIC);
        rc = SB_EXIT_OK;
        goto done;
fail:
        fprintf(stderr, "sharebus audit: %s\n", ctx.errstr);
        if (o.out && x.out && x.out != stdout)
                unlink(o.out); /* nothing half-written is left */
done:
        if (x.out && x.out != stdout)
                fclose(x.out);
        sb_audit_close(&ctx);
        return rc;
}

/*
 * stats
 */

typedef struct sb_audit_stats_cli_s {
        const char *config;
        const char *file;
        int by;
        sb_tp_period_t period;
        int json;
        int64_t from_ms, to_ms;
} sb_audit_stats_cli_t;

static int sb_audit_stats_parse(int argc, char **argv, sb_audit_stats_cli_t *o)
{
        static const struct option opts[] = {
            {"config", required_argument, NULL, 'c'},
            {"file", required_argument, NULL, 'f'},
            {"by", required_argument, NULL, 'b'},
            {"day", no_argument, NULL, 'D'},
            {"month", no_argument, NULL, 'M'},
            {"json", no_argument, NULL, 'j'},
            {"from", required_argument, NULL, 'F'},
            {"to", required_argument, NULL, 'T'},
            {"help", no_argument, NULL, 'h'},
            {"log-json", no_argument, NULL, 'J'},
            {NULL, 0, NULL, 0},
        };
        int opt, day = 0;

        memset(o, 0, sizeof(*o));
        o->from_ms = o->to_ms = -1;
        o->by = SB_TP_BY_REUSER | SB_TP_BY_DATASET;
        o->period = SB_TP_DAY;
        optind = 2;
        opterr = 0;
        while ((opt = getopt_long(argc, argv, ":c:hvd:", opts, NULL)) != -1) {
                switch (opt) {
                case 'c':
                        o->config = optarg;
                        break;
                case 'f':
                        o->file = optarg;
                        break;
                case 'b':
                        if (!strcmp(optarg, "reuser"))
                                o->by = SB_TP_BY_REUSER;
                        else if (!strcmp(optarg, "dataset"))
                                o->by = SB_TP_BY_DATASET;
                        else {
                                sb_audit_usage("--by: expected reuser or "
                                               "dataset");
                                return -1;
                        }
                        break;
                case 'D':
                        day = 1;
                        o->period = SB_TP_DAY;
                        break;
                case 'M':
                        o->period = SB_TP_MONTH;
                        break;
                case 'j':
                        o->json = 1;
                        break;
                case 'F':
                        if (sb_audit_time_opt("--from", optarg, &o->from_ms))
                                return -1;
                        break;
                case 'T':
                        if (sb_audit_time_opt("--to", optarg, &o->to_ms))
                                return -1;
                        break;
                case 'h':
                        sb_audit_usage(NULL);
                        return 1;
                case ':':
                        sb_audit_usage("an option needs a value");
                        return -1;
                default:
                        if (!sb_cli_log_option(opt, optarg)) {
                                sb_audit_usage("unknown option");
                                return -1;
                        }
                }
        }
        if (day && o->period == SB_TP_MONTH) {
                sb_audit_usage("give --day or --month, not both");
                return -1;
        }
        if (optind < argc) {
                sb_audit_usage("unexpected argument");
                return -1;
        }
        if (!o->config && !o->file) {
                sb_audit_usage("--config ADMIN.json or --file F.jsonl is "
                               "required");
                return -1;
        }
        if (o->from_ms >= 0 && o->to_ms >= 0 && o->to_ms <= o->from_ms) {
                sb_audit_usage("--to must come after --from");
                return -1;
        }
        return 0;
}

/* "objection=3 history=12", or "-". */
static void sb_audit_print_excluded(const json_t *x)
{
        const char *reason;
        json_t *v;
        int first = 1;

        json_object_foreach((json_t *)x, reason, v)
        {
                printf("%s%s=%" JSON_INTEGER_FORMAT, first ? "" : " ", reason,
                       json_integer_value(v));
                first = 0;
        }
        if (first)
                printf("-");
}

static void sb_audit_print_stats(const json_t *j, int by)
{
        const json_t *rows = json_object_get(j, "rows"), *r;
        int wr = 6, wd = 7;
        const char *s;
        size_t i;

        json_array_foreach(rows, i, r)
        {
                if ((s = json_string_value(json_object_get(r, "reuser"))) &&
                    (int)strlen(s) > wr)
                        wr = (int)strlen(s);
                if ((s = json_string_value(json_object_get(r, "dataset"))) &&
                    (int)strlen(s) > wd)
                        wd = (int)strlen(s);
        }
        printf("%-10s", "period");
        if (by & SB_TP_BY_REUSER)
                printf("  %-*s", wr, "reuser");
        if (by & SB_TP_BY_DATASET)
                printf("  %-*s", wd, "dataset");
        printf("  %10s  %10s  %10s  %12s  %s\n", "deliveries", "records",
               "subjects", "bytes", "excluded (records)");
        json_array_foreach(rows, i, r)
        {
                printf("%-10s",
                       json_string_value(json_object_get(r, "period")));
                if (by & SB_TP_BY_REUSER)
                        printf("  %-*s", wr,
                               json_string_value(json_object_get(r, "reuser")));
                if (by & SB_TP_BY_DATASET)
                        printf(
                            "  %-*s", wd,
                            json_string_value(json_object_get(r, "dataset")));
                printf(
                    "  %10" JSON_INTEGER_FORMAT "  %10" JSON_INTEGER_FORMAT
                    "  %s%*" JSON_INTEGER_FORMAT "  %12" JSON_INTEGER_FORMAT
                    "  ",
                    json_integer_value(json_object_get(r, "deliveries")),
                    json_integer_value(json_object_get(r, "records")),
                    json_is_true(json_object_get(r, "subjects_at_least")) ? ">="
                                                                          : "",
                    json_is_true(json_object_get(r, "subjects_at_least")) ? 8
                                                                          : 10,
                    json_integer_value(json_object_get(r, "subjects")),
                    json_integer_value(json_object_get(r, "bytes")));
                sb_audit_print_excluded(json_object_get(r, "excluded"));
                printf("\n");
        }
        if (!json_array_size(rows))
                printf("no delivery or exclusion entry in the window\n");
        if (json_integer_value(json_object_get(j, "skipped")))
                printf("note: %" JSON_INTEGER_FORMAT
                       " delivery or exclusion entries without reuser, "
                       "dataset, reason or at were skipped\n",
                       json_integer_value(json_object_get(j, "skipped")));
}

static int sb_audit_stats(int argc, char **argv)
{
        sb_audit_stats_cli_t o;
        sb_tp_stats_t *st = NULL;
        int rc = SB_EXIT_ERROR, r;
        sb_audit_ctx_t ctx;
        json_t *j = NULL;
        sb_err_t err;

        if ((r = sb_audit_stats_parse(argc, argv, &o)))
                return r > 0 ? SB_EXIT_OK : SB_EXIT_USAGE;
        memset(&ctx, 0, sizeof(ctx));
        st = sb_tp_stats_new(o.period, o.by, o.from_ms, o.to_ms);
        if (!st) {
                snprintf(ctx.errstr, sizeof(ctx.errstr), "out of memory");
                goto fail;
        }
        if (o.file)
                err = sb_tp_read_file(o.file, sb_tp_stats_feed, st, ctx.errstr,
                                      sizeof(ctx.errstr));
        else if (!(err = sb_audit_open(&ctx, o.config)) &&
                 !(ctx.reader = sb_reader_new(&ctx.cfg, "audit", ctx.errstr,
                                              sizeof(ctx.errstr))))
                err = SB_ERR_KAFKA;
        if (!err && !o.file)
                err = sb_tp_read_topic(ctx.reader, sb_tp_stats_feed, st,
                                       ctx.errstr, sizeof(ctx.errstr));
        if (err)
                goto fail;
        if (!(j = sb_tp_stats_json(st))) {
                snprintf(ctx.errstr, sizeof(ctx.errstr), "out of memory");
                goto fail;
        }
        if (o.json) {
                if (json_dumpf(j, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER))
                        goto write_fail;
                putchar('\n');
        } else {
                sb_audit_print_stats(j, o.by);
        }
        if (fflush(stdout))
                goto write_fail;
        rc = SB_EXIT_OK;
        goto done;
write_fail:
        snprintf(ctx.errstr, sizeof(ctx.errstr), "cannot write the stats");
fail:
        fprintf(stderr, "sharebus audit: %s\n", ctx.errstr);
done:
        json_decref(j);
        sb_tp_stats_destroy(st);
        sb_audit_close(&ctx);
        return rc;
}

/*
 * watch
 */

#define SB_WATCH_INTERVAL_MS (5 * 60 * 1000LL)
#define SB_WATCH_MIN_MS      1000LL
#define SB_WATCH_MAX_MS      (31 * 24 * 3600 * 1000LL)

typedef struct sb_audit_watch_cli_s {
        const char *config;
        const char *file;
        int dry_run;
        int once;
        int64_t interval_ms;
        int64_t deadline_ms; /* -1: receipt_deadline_ms */
        int64_t now_ms;      /* -1: now */
        sb_watch_params_t p;
} sb_audit_watch_cli_t;

static int sb_audit_watch_usage(const char *why)
{
        FILE *fp = why ? stderr : stdout;

        if (why)
                fprintf(fp, "sharebus audit watch: %s\n\n", why);
        fprintf(
            fp,
            "usage: sharebus audit watch --config ADMIN.json [--once] "
            "[--interval D] [--deadline D]\n"
            "                [--baseline-days N] [--min-baseline-days N] "
            "[--factor F]\n"
            "                [--min-records N] [--min-quarantined N]\n"
            "       sharebus audit watch --config ADMIN.json --file F.jsonl "
            "--dry-run [--now TIME]\n"
            "                [rule options]\n"
            "\n"
            "Reads %s, %s and the receipt topics, and raises one alert\n"
            "on %s per problem, never twice (docs/messages.md, \"Alerts\"):\n"
            "  volume.spike               a reuser's records of a dataset "
            "on a UTC day (today\n"
            "                             or yesterday) > F x the median of "
            "its days with\n"
            "                             deliveries among the N days "
            "before, and > min-records\n"
            "  delivery.outside_validity  a delivery outside its grant's "
            "valid_from/valid_until\n"
            "  delivery.unknown_grant     a delivery under a grant the "
            "platform does not declare\n"
            "  quarantine.growth          messages quarantined on a UTC day "
            "> F x the median\n"
            "                             of the N days before, and > "
            "min-quarantined\n"
            "  receipt.overdue, receipt.invalid  as 'sharebus rights watch'\n"
            "Scans every --interval until SIGINT/SIGTERM; a failed scan is "
            "tried again.\n"
            "\n"
            "  --config F             the platform administrator's config "
            "(grants come from\n"
            "                         its platform declaration)\n"
            "  --once                 scan once, print each alert raised; "
            "exit 9 if any, else 0\n"
            "  --interval D           time between scans (default 5m)\n"
            "  --deadline D           receipts: deadline after the notice "
            "(default:\n"
            "                         receipt_deadline_ms)\n"
            "  --baseline-days N      days before the one judged, 1 to 366 "
            "(default 14)\n"
            "  --min-baseline-days N  volume: days with deliveries needed "
            "(default 7)\n"
            "  --factor F             how many times the median (default "
            "3)\n"
            "  --min-records N        volume: never at or below N records a "
            "day (default 1000)\n"
            "  --min-quarantined N    quarantine: never at or below N a day "
            "(default 100)\n"
            "  --file F --dry-run     judge an export (`audit export`) and "
            "print the alerts the\n"
            "                         audit rules would raise, without Kafka; "
            "exit 9 if any\n"
            "  --now TIME             --dry-run: judge as if it were TIME "
            "(RFC 3339)\n"
            "  -v, -d FAC, --log-json  logging, as for every command\n"
            "\n"
            "Durations: a whole number with ms, s, m, h or d (30s, 15m, 24h, "
            "7d).\n",
            SB_AUDIT_TOPIC, SB_WATCH_QUARANTINE_TOPIC, SB_ALERTS_TOPIC);
        return why ? SB_EXIT_USAGE : SB_EXIT_OK;
}

/* A whole number option within [lo, hi]. */
static int sb_audit_watch_int(const char *name, const char *arg, long long lo,
                              long long hi, long long *out)
{
        char why[300], *end;

        errno = 0;
        *out = strtoll(arg, &end, 10);
        if (errno || end == arg || *end || *out < lo || *out > hi) {
                snprintf(why, sizeof(why),
                         "%s: expected a whole number from %lld to %lld, got "
                         "\"%.64s\"",
                         name, lo, hi, arg);
                sb_audit_watch_usage(why);
                return -1;
        }
        return 0;
}

static int sb_audit_watch_duration(const char *name, const char *arg,
                                   int64_t *msp)
{
        char why[300];

        if (sb_rights_parse_duration(arg, msp) || *msp < SB_WATCH_MIN_MS ||
            *msp > SB_WATCH_MAX_MS) {
                snprintf(why, sizeof(why),
                         "%s: expected a duration from 1s to 31d, such as "
                         "30s, 15m, 24h or 7d; got \"%.64s\"",
                         name, arg);
                sb_audit_watch_usage(why);
                return -1;
        }
        return 0;
}

static int sb_audit_watch_parse(int argc, char **argv, sb_audit_watch_cli_t *o)
{
        static const struct option opts[] = {
            {"config", required_argument, NULL, 'c'},
            {"file", required_argument, NULL, 'f'},
            {"dry-run", no_argument, NULL, 'n'},
            {"once", no_argument, NULL, '1'},
            {"interval", required_argument, NULL, 'i'},
            {"deadline", required_argument, NULL, 'D'},
            {"now", required_argument, NULL, 'N'},
            {"baseline-days", required_argument, NULL, 'b'},
            {"min-baseline-days", required_argument, NULL, 'B'},
            {"factor", required_argument, NULL, 'F'},
            {"min-records", required_argument, NULL, 'r'},
            {"min-quarantined", required_argument, NULL, 'q'},
            {"help", no_argument, NULL, 'h'},
            {"log-json", no_argument, NULL, 'J'},
            {NULL, 0, NULL, 0},
        };
        long long n, min_days = -1;
        char *end;
        int opt;

        memset(o, 0, sizeof(*o));
        sb_watch_params_init(&o->p);
        o->interval_ms = SB_WATCH_INTERVAL_MS;
        o->deadline_ms = o->now_ms = -1;
        optind = 2;
        opterr = 0;
        while ((opt = getopt_long(argc, argv, ":c:hvd:", opts, NULL)) != -1) {
                switch (opt) {
                case 'c':
                        o->config = optarg;
                        break;
                case 'f':
                        o->file = optarg;
                        break;
                case 'n':
                        o->dry_run = 1;
                        break;
                case '1':
                        o->once = 1;
                        break;
                case 'i':
                        if (sb_audit_watch_duration("--interval", optarg,
                                                    &o->interval_ms))
                                return -1;
                        break;
                case 'D':
                        if (sb_audit_watch_duration("--deadline", optarg,
                                                    &o->deadline_ms))
                                return -1;
                        break;
                case 'N':
                        if (sb_time_parse(optarg, &o->now_ms)) {
                                sb_audit_watch_usage(
                                    "--now: expected an RFC 3339 time such "
                                    "as 2026-11-25T10:00:00Z");
                                return -1;
                        }
                        break;
                case 'b':
                        if (sb_audit_watch_int("--baseline-days", optarg, 1,
                                               SB_WATCH_BASELINE_DAYS_MAX, &n))
                                return -1;
                        o->p.baseline_days = (int)n;
                        break;
                case 'B':
                        if (sb_audit_watch_int("--min-baseline-days", optarg, 1,
                                               SB_WATCH_BASELINE_DAYS_MAX,
                                               &min_days))
                                return -1;
                        break;
                case 'F':
                        errno = 0;
                        o->p.factor = strtod(optarg, &end);
                        if (errno || end == optarg || *end ||
                            !(o->p.factor >= 1.0 && o->p.factor <= 1000.0)) {
                                sb_audit_watch_usage(
                                    "--factor: expected a number from 1 to "
                                    "1000, such as 3 or 2.5");
                                return -1;
                        }
                        break;
                case 'r':
                        if (sb_audit_watch_int("--min-records", optarg, 0,
                                               INT64_MAX / 2, &n))
                                return -1;
                        o->p.min_records = n;
                        break;
                case 'q':
                        if (sb_audit_watch_int("--min-quarantined", optarg, 0,
                                               INT64_MAX / 2, &n))
                                return -1;
                        o->p.min_quarantined = n;
                        break;
                case 'h':
                        sb_audit_watch_usage(NULL);
                        return 1;
                case ':':
                        sb_audit_watch_usage("an option needs a value");
                        return -1;
                default:
                        if (!sb_cli_log_option(opt, optarg)) {
                                sb_audit_watch_usage("unknown option");
                                return -1;
                        }
                }
        }
        if (optind < argc) {
                sb_audit_watch_usage("unexpected argument");
                return -1;
        }
        if (!o->config) {
                sb_audit_watch_usage("--config ADMIN.json is required (the "
                                     "grants come from its platform "
                                     "declaration)");
                return -1;
        }
        if (!o->file != !o->dry_run) {
                sb_audit_watch_usage("--file and --dry-run go together: an "
                                     "export is judged, nothing is raised");
                return -1;
        }
        if (o->now_ms >= 0 && !o->dry_run) {
                sb_audit_watch_usage("--now is an option of --dry-run");
                return -1;
        }
        /* With a shorter baseline, all of it is needed by default. */
        if (min_days < 0 && o->p.min_baseline_days > o->p.baseline_days)
                min_days = o->p.baseline_days;
        if (min_days > o->p.baseline_days) {
                sb_audit_watch_usage("--min-baseline-days cannot exceed "
                                     "--baseline-days");
                return -1;
        }
        if (min_days > 0)
                o->p.min_baseline_days = (int)min_days;
        return 0;
}

/* Prints each alert of `alerts` ({"key", "value"}): kind, key, reason. */
static int sb_audit_watch_print(const json_t *alerts, const char *verb)
{
        const json_t *a, *v;
        size_t i;

        json_array_foreach(alerts, i, a)
        {
                v = json_object_get(a, "value");
                printf("%s %s %s: %s\n", verb,
                       json_string_value(json_object_get(v, "alert")),
                       json_string_value(json_object_get(a, "key")),
                       json_string_value(json_object_get(v, "reason")));
        }
        return fflush(stdout) ? -1 : 0;
}

/* The audit rules on an export, printed; nothing published. */
static int sb_audit_watch_dry_run(sb_audit_ctx_t *ctx,
                                  const sb_audit_watch_cli_t *o)
{
        json_t *alerts = json_array();
        int rc = SB_EXIT_ERROR;
        sb_watch_t *w;

        w = sb_watch_new(&o->p, ctx->pf->grants, ctx->pf->grant_cnt,
                         o->now_ms >= 0 ? o->now_ms : sb_now_ms());
        if (!w || !alerts) {
                snprintf(ctx->errstr, sizeof(ctx->errstr), "out of memory");
                goto fail;
        }
        if (sb_tp_read_file(o->file, sb_watch_feed, w, ctx->errstr,
                            sizeof(ctx->errstr)) ||
            sb_watch_alerts(w, alerts, ctx->errstr, sizeof(ctx->errstr)))
                goto fail;
        if (sb_audit_watch_print(alerts, "would raise")) {
                snprintf(ctx->errstr, sizeof(ctx->errstr),
                         "cannot write the alerts");
                goto fail;
        }
        fprintf(stderr,
                "sharebus audit watch: dry run on '%s': %zu alert(s) would "
                "be raised; quarantine.growth and receipt alerts need the "
                "cluster and were not judged%s\n",
                o->file, json_array_size(alerts),
                sb_watch_skipped(w) ? "; some delivery entries lacked "
                                      "reuser, dataset, grant or at"
                                    : "");
        rc = json_array_size(alerts) ? SB_EXIT_ALERTS : SB_EXIT_OK;
        goto done;
fail:
        fprintf(stderr, "sharebus audit watch: %s\n", ctx->errstr);
done:
        sb_watch_destroy(w);
        json_decref(alerts);
        return rc;
}

static int sb_audit_watch(int argc, char **argv)
{
        sb_audit_watch_cli_t o;
        sb_watcher_t *wr = NULL;
        sb_audit_ctx_t ctx;
        int64_t deadline;
        size_t raised, total = 0;
        json_t *list = NULL;
        int r, rc = SB_EXIT_ERROR;
        char d[32];

        if ((r = sb_audit_watch_parse(argc, argv, &o)))
                return r > 0 ? SB_EXIT_OK : SB_EXIT_USAGE;
        memset(&ctx, 0, sizeof(ctx));
        if (sb_audit_open(&ctx, o.config))
                goto fail;
        if (o.dry_run) {
                rc = sb_audit_watch_dry_run(&ctx, &o);
                goto done;
        }
        deadline =
            o.deadline_ms >= 0 ? o.deadline_ms : ctx.cfg.receipt_deadline_ms;
        if (!(wr = sb_watcher_new(&ctx.cfg, ctx.pf, ctx.errstr,
                                  sizeof(ctx.errstr))))
                goto fail;
        if (o.once) {
                if (!(list = json_array())) {
                        snprintf(ctx.errstr, sizeof(ctx.errstr),
                                 "out of memory");
                        goto fail;
                }
                r = sb_watcher_once(wr, &o.p, deadline, list, &raised,
                                    ctx.errstr, sizeof(ctx.errstr));
                /* What went out is said, even when the pass failed. */
                sb_audit_watch_print(list, "raised");
                if (r)
                        goto fail;
                printf("raised %zu alert(s) on %s\n", raised, SB_ALERTS_TOPIC);
                rc = raised ? SB_EXIT_ALERTS : SB_EXIT_OK;
                if (fflush(stdout))
                        rc = SB_EXIT_ERROR;
                goto done;
        }
        sb_rights_format_duration(o.interval_ms, d, sizeof(d));
        sb_log(SB_LOG_NOTICE, "WATCH",
               "watching %s, %s and receipts every %s; alerts go to %s",
               SB_AUDIT_TOPIC, SB_WATCH_QUARANTINE_TOPIC, d, SB_ALERTS_TOPIC);
        sb_cli_install_signals();
        while (!sb_cli_stop) {
                /* A failed scan (broker away) is retried at the next
                 * interval: the watcher must outlive outages. */
                if (sb_watcher_once(wr, &o.p, deadline, NULL, &raised,
                                    ctx.errstr, sizeof(ctx.errstr)))
                        sb_log(SB_LOG_WARN, "WATCH",
                               "scan failed, next in %s: %s", d, ctx.errstr);
                else
                        sb_log(raised ? SB_LOG_NOTICE : SB_LOG_INFO, "WATCH",
                               "scan done: %zu alert(s) raised", raised);
                total += raised;
                sb_cli_wait(o.interval_ms);
        }
        sb_log(SB_LOG_NOTICE, "WATCH", "stopped; %zu alert(s) raised", total);
        rc = SB_EXIT_OK;
        goto done;
fail:
        fprintf(stderr, "sharebus audit watch: %s\n", ctx.errstr);
done:
        json_decref(list);
        sb_watcher_destroy(wr);
        sb_audit_close(&ctx);
        return rc;
}

int sb_cmd_audit(int argc, char **argv)
{
        if (argc < 2)
                return sb_audit_usage("missing action (verify, export, "
                                      "stats, watch)");
        if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))
                return sb_audit_usage(NULL);
        if (!strcmp(argv[1], "verify"))
                return sb_audit_verify(argc, argv);
        if (!strcmp(argv[1], "export"))
                return sb_audit_export(argc, argv);
        if (!strcmp(argv[1], "stats"))
                return sb_audit_stats(argc, argv);
        if (!strcmp(argv[1], "watch"))
                return sb_audit_watch(argc, argv);
        return sb_audit_usage("action must be verify, export, stats or "
                              "watch");
}
