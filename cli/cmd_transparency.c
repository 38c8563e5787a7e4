/*
 * sharebus transparency subject ID | transparency registry
 *
 * What the audit log says to the people whose data is shared (DESIGN.md
 * §9; CNIL R3.4-04, R3.4-05, R3.4-06, R3.4-09, R4.3-21, R4.3-22, R6.1-02):
 * for one person, who received what, when, why, and where their requests
 * stand; for the public, the reusers, their purposes and their volumes.
 * The aggregation is in admin/transparency.c; this file reads the options,
 * the log and writes the result.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "audit.h"
#include "cli.h"
#include "crypto.h"
#include "envelope.h"
#include "platform.h"
#include "reader.h"
#include "rights.h"
#include "transparency.h"

static int sb_tp_usage(const char *why)
{
        FILE *fp = why ? stderr : stdout;

        if (why)
                fprintf(fp, "sharebus transparency: %s\n\n", why);
        fprintf(
            fp,
            "usage: sharebus transparency subject ID --pseudonym-key KEY "
            "--config ADMIN.json\n"
            "                [--file F.jsonl] [--dataset D ...] [--from "
            "TIME] [--to TIME]\n"
            "                [--deadline D] [--json | --html F [--lang "
            "fr|en]]\n"
            "       sharebus transparency subject ID --pseudonym-key KEY "
            "--file F.jsonl [...]\n"
            "       sharebus transparency registry --config ADMIN.json "
            "[--file F.jsonl]\n"
            "                [--month YYYY-MM] [--json | --html F [--lang "
            "fr|en]]\n"
            "\n"
            "subject   for one person: the reusers that received their data "
            "(categories,\n"
            "          purposes, legal basis, first and last delivery), "
            "when it was not\n"
            "          shared and why, and each of their rights requests "
            "with every\n"
            "          notified reuser's receipt (checked on sb.ack.<reuser>, "
            "not with\n"
            "          --file, which holds none). The person is found by "
            "their audit\n"
            "          pseudonym under the gateway's master key; the id "
            "appears only in\n"
            "          the HTML heading\n"
            "registry  the public list of reusers: purposes, legal basis, "
            "datasets and\n"
            "          data categories of their active grants, volumes "
            "delivered per month\n"
            "\n"
            "  --config F         the platform administrator's config "
            "(examples/admin.json):\n"
            "                     the cluster, and the platform declaration "
            "(grants, schemas)\n"
            "  --file F           an export (`sharebus audit export`) instead "
            "of %s\n"
            "  --pseudonym-key K  subject: the gateway's master key file "
            "(mode 0600)\n"
            "  --dataset D        subject: only this dataset (repeat for "
            "several; default all)\n"
            "  --from, --to TIME  subject: entries at or after, before TIME "
            "(RFC 3339)\n"
            "  --deadline D       subject: receipt deadline (default: "
            "receipt_deadline_ms)\n"
            "  --month YYYY-MM    registry: volumes of that month only "
            "(default all)\n"
            "  --json             one JSON object (docs/cli.md has the "
            "schema)\n"
            "  --html F           a self-contained page to F (mode 0600), "
            "\"-\" for stdout\n"
            "  --lang fr|en       the page's language (default fr)\n"
            "  -v, -d FAC, --log-json  logging, as for every command\n",
            SB_AUDIT_TOPIC);
        return why ? SB_EXIT_USAGE : SB_EXIT_OK;
}

typedef struct sb_tp_cli_s {
        const char *config;
        const char *file;
        const char *key;
        const char *subject;
        const char *html;
        const char *lang;
        const char *month;
        json_t *datasets;
        int json;
        int64_t from_ms, to_ms; /* -1: open */
        int64_t deadline_ms;    /* -1: from the config */
} sb_tp_cli_t;

static int sb_tp_time_opt(const char *name, const char *arg, int64_t *msp)
{
        char why[300];

        if (sb_time_parse(arg, msp)) {
                snprintf(why, sizeof(why),
                         "%s: expected an RFC 3339 time such as "
                         "2026-11-25T10:00:00Z, got \"%.64s\"",
                         name, arg);
                sb_tp_usage(why);
                return -1;
        }
        return 0;
}

/* Parses the options after the action; -1 on usage, 1 on --help. */
static int sb_tp_parse(int argc, char **argv, int subject, sb_tp_cli_t *o)
{
        static const struct option opts[] = {
            {"config", required_argument, NULL, 'c'},
            {"file", required_argument, NULL, 'f'},
            {"pseudonym-key", required_argument, NULL, 'k'},
            {"dataset", required_argument, NULL, 'D'},
            {"from", required_argument, NULL, 'F'},
            {"to", required_argument, NULL, 'T'},
            {"deadline", required_argument, NULL, 'l'},
            {"month", required_argument, NULL, 'm'},
            {"json", no_argument, NULL, 'j'},
            {"html", required_argument, NULL, 'H'},
            {"lang", required_argument, NULL, 'L'},
            {"help", no_argument, NULL, 'h'},
            {"log-json", no_argument, NULL, 'J'},
            {NULL, 0, NULL, 0},
        };
        const char *only = NULL;
        char why[300];
        int opt;

        o->from_ms = o->to_ms = o->deadline_ms = -1;
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
                case 'k':
                        o->key = optarg;
                        only = subject ? only
                                       : "--pseudonym-key is an option of "
                                         "subject";
                        break;
                case 'D':
                        if (!o->datasets && !(o->datasets = json_array()))
                                return -1;
                        json_array_append_new(o->datasets, json_string(optarg));
                        only = subject ? only
                                       : "--dataset is an option of subject";
                        break;
                case 'F':
                        if (sb_tp_time_opt("--from", optarg, &o->from_ms))
                                return -1;
                        only = subject ? only
                                       : "--from is an option of subject "
                                         "(registry: --month)";
                        break;
                case 'T':
                        if (sb_tp_time_opt("--to", optarg, &o->to_ms))
                                return -1;
                        only = subject ? only
                                       : "--to is an option of subject "
                                         "(registry: --month)";
                        break;
                case 'l':
                        if (sb_rights_parse_duration(optarg, &o->deadline_ms) ||
                            o->deadline_ms < 1000 ||
                            o->deadline_ms > 31 * 24 * 3600 * 1000LL) {
                                snprintf(why, sizeof(why),
                                         "--deadline: expected a duration "
                                         "from 1s to 31d, such as 24h or "
                                         "7d; got \"%.64s\"",
                                         optarg);
                                sb_tp_usage(why);
                                return -1;
                        }
                        only = subject ? only
                                       : "--deadline is an option of "
                                         "subject";
                        break;
                case 'm':
                        o->month = optarg;
                        only = subject ? "--month is an option of registry "
                                         "(subject: --from, --to)"
                                       : only;
                        break;
                case 'j':
                        o->json = 1;
                        break;
                case 'H':
                        o->html = optarg;
                        break;
                case 'L':
                        o->lang = optarg;
                        break;
                case 'h':
                        sb_tp_usage(NULL);
                        return 1;
                case ':':
                        sb_tp_usage("an option needs a value");
                        return -1;
                default:
                        if (!sb_cli_log_option(opt, optarg)) {
                                sb_tp_usage("unknown option");
                                return -1;
                        }
                }
        }
        if (only) {
                sb_tp_usage(only);
                return -1;
        }
        if (subject) {
                if (optind >= argc) {
                        sb_tp_usage("subject needs the person's ID");
                        return -1;
                }
                o->subject = argv[optind++];
        }
        if (optind < argc) {
                sb_tp_usage("unexpected argument");
                return -1;
        }
        if (subject && !o->key) {
                sb_tp_usage("--pseudonym-key KEY is required: the gateway's "
                            "master key finds the person in the log");
                return -1;
        }
        if (!o->config && (!subject || !o->file)) {
                sb_tp_usage(subject ? "--config ADMIN.json is required "
                                      "(or --file F.jsonl)"
                                    : "--config ADMIN.json is required");
                return -1;
        }
        if (o->json && o->html) {
                sb_tp_usage("give --json or --html, not both");
                return -1;
        }
        if (o->lang && !o->html) {
                sb_tp_usage("--lang goes with --html");
                return -1;
        }
        if (o->lang && strcmp(o->lang, "fr") && strcmp(o->lang, "en")) {
                sb_tp_usage("--lang: expected fr or en");
                return -1;
        }
        if (o->from_ms >= 0 && o->to_ms >= 0 && o->to_ms <= o->from_ms) {
                sb_tp_usage("--to must come after --from");
                return -1;
        }
        if (o->month && sb_tp_parse_month(o->month, &o->from_ms, &o->to_ms)) {
                snprintf(why, sizeof(why),
                         "--month: expected YYYY-MM, got \"%.64s\"", o->month);
                sb_tp_usage(why);
                return -1;
        }
        return 0;
}

typedef struct sb_tp_ctx_s {
        sb_admin_cfg_t cfg;
        int cfg_loaded;
        sb_platform_t *pf;
        sb_reader_t *reader;
        char errstr[1024];
} sb_tp_ctx_t;

static sb_err_t sb_tp_open_cfg(sb_tp_ctx_t *ctx, const char *config)
{
        sb_err_t err;

        if ((err = sb_crypto_init(ctx->errstr, sizeof(ctx->errstr))))
                return err;
        if (!config)
                return SB_OK;
        ctx->cfg_loaded = 1;
        if ((err = sb_config_load(config, sb_admin_cfg_table, &ctx->cfg,
                                  ctx->errstr, sizeof(ctx->errstr))))
                return err;
        ctx->pf = sb_platform_load(ctx->cfg.platform, ctx->errstr,
                                   sizeof(ctx->errstr));
        return ctx->pf ? SB_OK : SB_ERR_CONFIG;
}

/* Every entry of the export, or of the topic, to `cb`. */
static sb_err_t sb_tp_read(sb_tp_ctx_t *ctx, const char *file,
                           sb_tp_entry_cb_t cb, void *opaque)
{
        if (file)
                return sb_tp_read_file(file, cb, opaque, ctx->errstr,
                                       sizeof(ctx->errstr));
        if (!ctx->reader &&
            !(ctx->reader = sb_reader_new(&ctx->cfg, "transparency",
                                          ctx->errstr, sizeof(ctx->errstr))))
                return SB_ERR_KAFKA;
        return sb_tp_read_topic(ctx->reader, cb, opaque, ctx->errstr,
                                sizeof(ctx->errstr));
}

static void sb_tp_close(sb_tp_ctx_t *ctx)
{
        sb_reader_destroy(ctx->reader);
        sb_platform_destroy(ctx->pf);
        if (ctx->cfg_loaded)
                sb_config_release(sb_admin_cfg_table, &ctx->cfg);
}

/* `text` to `path` (mode 0600: the page names a person), or stdout. */
static sb_err_t sb_tp_write(const char *path, const char *text, char *errstr,
                            size_t errstr_size)
{
        size_t len = strlen(text);
        ssize_t n;
        int fd;

        if (!strcmp(path, "-")) {
                if (fputs(text, stdout) == EOF || fflush(stdout))
                        return sb_seterr(errstr, errstr_size, SB_ERR_IO,
                                         "cannot write to stdout");
                return SB_OK;
        }
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0)
                return sb_seterr(errstr, errstr_size, SB_ERR_IO, "'%s': %s",
                                 path, strerror(errno));
        while (len > 0) {
                n = write(fd, text, len);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0) {
                        close(fd);
                        return sb_seterr(errstr, errstr_size, SB_ERR_IO,
                                         "'%s': %s", path, strerror(errno));
                }
                text += n;
                len -= (size_t)n;
        }
        if (fsync(fd) || close(fd))
                return sb_seterr(errstr, errstr_size, SB_ERR_IO, "'%s': %s",
                                 path, strerror(errno));
        return SB_OK;
}

static int sb_tp_print_json(const json_t *j)
{
        if (json_dumpf(j, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER) ||
            putchar('\n') == EOF || fflush(stdout))
                return -1;
        return 0;
}

/* The strings of array `a`, ", "-separated, or "-". */
static void sb_tp_print_list(const json_t *a)
{
        const json_t *v;
        size_t i;

        if (!json_array_size(a))
                fputs("-", stdout);
        json_array_foreach(a, i, v)
            printf("%s%s", i ? ", " : "", json_string_value(v));
}

static const char *sb_tp_s(const json_t *o, const char *key)
{
        const char *s = json_string_value(json_object_get(o, key));

        return s ? s : "-";
}

/*
 * subject
 */

static void sb_tp_print_subject(const json_t *r)
{
        const json_t *v, *a, *c;
        size_t i, j;

        printf("reusers that received the person: %zu\n",
               json_array_size(json_object_get(r, "recipients")));
        json_array_foreach(json_object_get(r, "recipients"), i, v)
        {
                printf("  %s (%s): first %s, last %s, %" JSON_INTEGER_FORMAT
                       " deliveries\n    categories: ",
                       sb_tp_s(v, "reuser"), sb_tp_s(v, "dataset"),
                       sb_tp_s(v, "first_delivery"),
                       sb_tp_s(v, "last_delivery"),
                       json_integer_value(json_object_get(v, "deliveries")));
                json_array_foreach(json_object_get(v, "categories"), j, c)
                    printf("%s%s", j ? ", " : "", sb_tp_s(c, "field"));
                printf("\n    purposes: ");
                sb_tp_print_list(json_object_get(v, "purposes"));
                printf("; legal basis: ");
                sb_tp_print_list(json_object_get(v, "legal_bases"));
                printf("; grants: ");
                sb_tp_print_list(json_object_get(v, "grants"));
                printf("\n");
        }
        json_array_foreach(json_object_get(r, "unlisted"), i, v) printf(
            "  note: %" JSON_INTEGER_FORMAT
            " deliveries to %s (%s) listed %d subjects, the most an "
            "entry holds: the person may be among those not listed\n",
            json_integer_value(json_object_get(v, "deliveries")),
            sb_tp_s(v, "reuser"), sb_tp_s(v, "dataset"), SB_TP_SUBJECTS_MAX);
        printf("exclusions that concerned the person: %zu\n",
               json_array_size(json_object_get(r, "exclusions")));
        json_array_foreach(json_object_get(r, "exclusions"), i, v) printf(
            "  not shared with %s (%s): %s, %" JSON_INTEGER_FORMAT
            " time(s) from %s to %s\n",
            sb_tp_s(v, "reuser"), sb_tp_s(v, "dataset"), sb_tp_s(v, "reason"),
            json_integer_value(json_object_get(v, "times")),
            sb_tp_s(v, "first_at"), sb_tp_s(v, "last_at"));
        printf("rights requests: %zu\n",
               json_array_size(json_object_get(r, "requests")));
        json_array_foreach(json_object_get(r, "requests"), i, v)
        {
                printf("  %s %s on %s: requested %s, notified %s\n",
                       sb_tp_s(v, "event_id"), sb_tp_s(v, "type"),
                       sb_tp_s(v, "dataset"), sb_tp_s(v, "requested_time"),
                       sb_tp_s(v, "notified_at"));
                if (!json_array_size(json_object_get(v, "reusers")))
                        printf("    no reuser had received the person\n");
                json_array_foreach(json_object_get(v, "reusers"), j, a) printf(
                    "    %s: %s%s%s\n", sb_tp_s(a, "reuser"),
                    sb_tp_s(a, "state"),
                    json_is_string(json_object_get(a, "acknowledged_at")) ? " "
                                                                          : "",
                    json_is_string(json_object_get(a, "acknowledged_at"))
                        ? sb_tp_s(a, "acknowledged_at")
                        : "");
        }
        if (!json_is_true(json_object_get(r, "receipts_checked")) &&
            json_array_size(json_object_get(r, "requests")))
                printf("receipts not checked: the export holds the notices, "
                       "not the receipts (give --config without --file to "
                       "check them)\n");
}

static int sb_tp_subject(int argc, char **argv)
{
        sb_tp_subject_t *s = NULL;
        sb_rights_t *rights = NULL;
        sb_key_t *master = NULL;
        json_t *report = NULL;
        sb_tp_cli_t o;
        sb_tp_ctx_t ctx;
        int rc = SB_EXIT_ERROR, r, checked = 0;
        char *html = NULL;

        memset(&o, 0, sizeof(o));
        memset(&ctx, 0, sizeof(ctx));
        if ((r = sb_tp_parse(argc, argv, 1, &o))) {
                json_decref(o.datasets);
                return r > 0 ? SB_EXIT_OK : SB_EXIT_USAGE;
        }
        if (sb_tp_open_cfg(&ctx, o.config) ||
            sb_key_load(o.key, &master, ctx.errstr, sizeof(ctx.errstr)))
                goto fail;
        s = sb_tp_subject_new(master, o.subject, o.datasets, o.from_ms, o.to_ms,
                              ctx.errstr, sizeof(ctx.errstr));
        if (!s || sb_tp_read(&ctx, o.file, sb_tp_subject_feed, s))
                goto fail;
        /* Receipts live on the cluster: checked unless reading an export
         * alone. */
        if (!o.file && sb_tp_subject_rights(s)->event_cnt) {
                if (!(rights = sb_rights_new(&ctx.cfg, ctx.pf, ctx.errstr,
                                             sizeof(ctx.errstr))) ||
                    sb_rights_check_receipts(rights, sb_tp_subject_rights(s),
                                             o.deadline_ms >= 0
                                                 ? o.deadline_ms
                                                 : ctx.cfg.receipt_deadline_ms,
                                             ctx.errstr, sizeof(ctx.errstr)))
                        goto fail;
        }
        checked = !o.file;
        report = sb_tp_subject_report(s, ctx.pf, checked, sb_now_ms());
        if (!report) {
                snprintf(ctx.errstr, sizeof(ctx.errstr), "out of memory");
                goto fail;
        }
        if (o.html) {
                html = sb_tp_subject_html(report, o.subject,
                                          o.lang ? o.lang : "fr");
                if (!html) {
                        snprintf(ctx.errstr, sizeof(ctx.errstr),
                                 "out of memory");
                        goto fail;
                }
                if (sb_tp_write(o.html, html, ctx.errstr, sizeof(ctx.errstr)))
                        goto fail;
        } else if (o.json) {
                if (sb_tp_print_json(report)) {
                        snprintf(ctx.errstr, sizeof(ctx.errstr),
                                 "cannot write the report");
                        goto fail;
                }
        } else {
                sb_tp_print_subject(report);
                if (fflush(stdout)) {
                        snprintf(ctx.errstr, sizeof(ctx.errstr),
                                 "cannot write the report");
                        goto fail;
                }
        }
        rc = SB_EXIT_OK;
        goto done;
fail:
        fprintf(stderr, "sharebus transparency: %s\n", ctx.errstr);
done:
        free(html);
        json_decref(report);
        sb_rights_destroy(rights);
        sb_tp_subject_destroy(s);
        sb_key_destroy(master);
        json_decref(o.datasets);
        sb_tp_close(&ctx);
        return rc;
}

/*
 * registry
 */

static void sb_tp_print_registry(const json_t *reg)
{
        const json_t *r, *g, *v, *c;
        size_t i, j, k;

        json_array_foreach(json_object_get(reg, "reusers"), i, r)
        {
                printf("%s\n", sb_tp_s(r, "reuser"));
                json_array_foreach(json_object_get(r, "grants"), j, g)
                {
                        printf("  grant %s on %s, valid %s to %s\n    "
                               "purposes: ",
                               sb_tp_s(g, "grant"), sb_tp_s(g, "dataset"),
                               sb_tp_s(g, "valid_from"),
                               sb_tp_s(g, "valid_until"));
                        sb_tp_print_list(json_object_get(g, "purposes"));
                        printf("; legal basis: %s\n    categories: ",
                               sb_tp_s(g, "legal_basis"));
                        json_array_foreach(json_object_get(g, "categories"), k,
                                           c)
                            printf("%s%s", k ? ", " : "", sb_tp_s(c, "field"));
                        printf("\n");
                }
                json_array_foreach(json_object_get(r, "volumes"), j, v)
                    printf("  %s %s: %" JSON_INTEGER_FORMAT
                           " records, %s%" JSON_INTEGER_FORMAT " subjects\n",
                           sb_tp_s(v, "month"), sb_tp_s(v, "dataset"),
                           json_integer_value(json_object_get(v, "records")),
                           json_is_true(json_object_get(v, "subjects_at_least"))
                               ? "at least "
                               : "",
                           json_integer_value(json_object_get(v, "subjects")));
        }
}

static int sb_tp_registry_cmd(int argc, char **argv)
{
        sb_tp_stats_t *st = NULL;
        json_t *reg = NULL;
        sb_tp_cli_t o;
        sb_tp_ctx_t ctx;
        int rc = SB_EXIT_ERROR, r;
        char *html = NULL;

        memset(&o, 0, sizeof(o));
        memset(&ctx, 0, sizeof(ctx));
        if ((r = sb_tp_parse(argc, argv, 0, &o))) {
                json_decref(o.datasets);
                return r > 0 ? SB_EXIT_OK : SB_EXIT_USAGE;
        }
        if (sb_tp_open_cfg(&ctx, o.config))
                goto fail;
        st = sb_tp_stats_new(SB_TP_MONTH, SB_TP_BY_REUSER | SB_TP_BY_DATASET,
                             o.from_ms, o.to_ms);
        if (!st) {
                snprintf(ctx.errstr, sizeof(ctx.errstr), "out of memory");
                goto fail;
        }
        if (sb_tp_read(&ctx, o.file, sb_tp_stats_feed, st))
                goto fail;
        reg = sb_tp_registry(ctx.pf, st, sb_now_ms());
        if (!reg || (o.month &&
                     json_object_set_new(reg, "month", json_string(o.month)))) {
                snprintf(ctx.errstr, sizeof(ctx.errstr), "out of memory");
                goto fail;
        }
        if (o.html) {
                html = sb_tp_registry_html(reg, o.lang ? o.lang : "fr");
                if (!html) {
                        snprintf(ctx.errstr, sizeof(ctx.errstr),
                                 "out of memory");
                        goto fail;
                }
                if (sb_tp_write(o.html, html, ctx.errstr, sizeof(ctx.errstr)))
                        goto fail;
        } else if (o.json) {
                if (sb_tp_print_json(reg)) {
                        snprintf(ctx.errstr, sizeof(ctx.errstr),
                                 "cannot write the registry");
                        goto fail;
                }
        } else {
                sb_tp_print_registry(reg);
                if (fflush(stdout)) {
                        snprintf(ctx.errstr, sizeof(ctx.errstr),
                                 "cannot write the registry");
                        goto fail;
                }
        }
        rc = SB_EXIT_OK;
        goto done;
fail:
        fprintf(stderr, "sharebus transparency: %s\n", ctx.errstr);
done:
        free(html);
        json_decref(reg);
        sb_tp_stats_destroy(st);
        json_decref(o.datasets);
        sb_tp_close(&ctx);
        return rc;
}

int sb_cmd_transparency(int argc, char **argv)
{
        if (argc < 2)
                return sb_tp_usage("missing action (subject, registry)");
        if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))
                return sb_tp_usage(NULL);
        if (!strcmp(argv[1], "subject"))
                return sb_tp_subject(argc, argv);
        if (!strcmp(argv[1], "registry"))
                return sb_tp_registry_cmd(argc, argv);
        return sb_tp_usage("action must be subject or registry");
}
