/*
 * sharebus rights status EVENT_ID | rights watch
 *
 * The platform team's view of a rights event (DESIGN.md §6): which reusers
 * were told, which acknowledged it with a signed receipt, which are late;
 * and the watcher that raises an alert on _sb.alerts for each late or
 * invalid receipt (CNIL R4.3-17, R4.3-20).
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "envelope.h"
#include "log.h"
#include "platform.h"
#include "rights.h"

#define SB_RIGHTS_MIN_MS      1000LL
#define SB_RIGHTS_MAX_MS      (31 * 24 * 3600 * 1000LL)
#define SB_RIGHTS_INTERVAL_MS (60 * 1000LL)

static int sb_rights_usage(const char *why)
{
        FILE *fp = why ? stderr : stdout;

        if (why)
                fprintf(fp, "sharebus rights: %s\n\n", why);
        fprintf(fp,
                "usage: sharebus rights status EVENT_ID --config ADMIN.json "
                "[--deadline D] [--json]\n"
                "       sharebus rights watch --config ADMIN.json "
                "[--deadline D] [--interval D] [--once]\n"
                "\n"
                "status  for each reuser the gateway notified of the rights "
                "event (those that\n"
                "        had received the person): acknowledged (signed "
                "receipt, when, rows),\n"
                "        pending (within the deadline), overdue (past it) or "
                "invalid (a receipt\n"
                "        that does not verify or names another event or "
                "reuser). Exit 0 when\n"
                "        every notified reuser acknowledged, or none needed "
                "notifying; 7 when\n"
                "        some are pending, overdue or invalid\n"
                "watch   raises one alert on _sb.alerts for each receipt "
                "overdue or invalid,\n"
                "        never twice, and records each verified receipt in "
                "_sb.audit, once\n"
                "        (op \"receipt\", chain sb-admin-rights); scans "
                "every --interval\n"
                "        until SIGINT/SIGTERM. Run one watcher: a second "
                "one fences the\n"
                "        first's audit writes\n"
                "\n"
                "  --config F      the platform administrator's config "
                "(examples/admin.json);\n"
                "                  receipt keys come from its platform "
                "declaration\n"
                "  --deadline D    how long a receipt may take after the "
                "notice, 1s to 31d\n"
                "                  (default: receipt_deadline_ms, one day)\n"
                "  --json          status: one JSON object instead of the "
                "table\n"
                "  --interval D    watch: time between scans (default 60s)\n"
                "  --once          watch: scan once, print how many alerts "
                "were raised and\n"
                "                  receipts recorded, exit\n"
                "  -v, -d FAC, --log-json  logging, as for every command\n"
                "\n"
                "Durations: a whole number with ms, s, m, h or d (30s, 15m, "
                "24h, 7d), or\n"
                "plain milliseconds.\n");
        return why ? SB_EXIT_USAGE : SB_EXIT_OK;
}

typedef struct sb_rights_cli_s {
        const char *config;
        const char *event_id;
        int64_t deadline_ms; /* -1: from the config */
        int64_t interval_ms;
        int json;
        int once;
} sb_rights_cli_t;

/* A duration option within [SB_RIGHTS_MIN_MS, SB_RIGHTS_MAX_MS]. */
static int sb_rights_duration_opt(const char *name, const char *arg,
                                  int64_t *msp)
{
        char why[300];

        if (sb_rights_parse_duration(arg, msp) || *msp < SB_RIGHTS_MIN_MS ||
            *msp > SB_RIGHTS_MAX_MS) {
                snprintf(why, sizeof(why),
                         "%s: expected a duration from 1s to 31d, such as "
                         "30s, 15m, 24h or 7d; got \"%.64s\"",
                         name, arg);
                sb_rights_usage(why);
                return -1;
        }
        return 0;
}

/* Parses the options after the action; returns -1 on usage, 1 on --help. */
static int sb_rights_parse(int argc, char **argv, int watch, sb_rights_cli_t *o)
{
        static const struct option opts[] = {
            {"config", required_argument, NULL, 'c'},
            {"deadline", required_argument, NULL, 'D'},
            {"interval", required_argument, NULL, 'i'},
            {"json", no_argument, NULL, 'j'},
            {"once", no_argument, NULL, '1'},
            {"help", no_argument, NULL, 'h'},
            {"log-json", no_argument, NULL, 'J'},
            {NULL, 0, NULL, 0},
        };
        int opt;

        memset(o, 0, sizeof(*o));
        o->deadline_ms = -1;
        o->interval_ms = SB_RIGHTS_INTERVAL_MS;
        optind = 2;
        opterr = 0;
        while ((opt = getopt_long(argc, argv, ":c:hvd:", opts, NULL)) != -1) {
                switch (opt) {
                case 'c':
                        o->config = optarg;
                        break;
                case 'D':
                        if (sb_rights_duration_opt("--deadline", optarg,
                                                   &o->deadline_ms))
                                return -1;
                        break;
                case 'i':
                        if (!watch) {
                                sb_rights_usage("--interval is an option of "
                                                "watch");
                                return -1;
                        }
                        if (sb_rights_duration_opt("--interval", optarg,
                                                   &o->interval_ms))
                                return -1;
                        break;
                case 'j':
                        if (watch) {
                                sb_rights_usage("--json is an option of "
                                                "status");
                                return -1;
                        }
                        o->json = 1;
                        break;
                case '1':
                        if (!watch) {
                                sb_rights_usage("--once is an option of "
                                                "watch");
                                return -1;
                        }
                        o->once = 1;
                        break;
                case 'h':
                        sb_rights_usage(NULL);
                        return 1;
                case ':':
                        sb_rights_usage("an option needs a value");
                        return -1;
                default:
                        if (!sb_cli_log_option(opt, optarg)) {
                                sb_rights_usage("unknown option");
                                return -1;
                        }
                }
        }
        if (!watch) {
                if (optind >= argc) {
                        sb_rights_usage("status needs the EVENT_ID");
                        return -1;
                }
                o->event_id = argv[optind++];
        }
        if (optind < argc) {
                sb_rights_usage("unexpected argument");
                return -1;
        }
        if (!o->config) {
                sb_rights_usage("--config ADMIN.json is required");
                return -1;
        }
        return 0;
}

typedef struct sb_rights_ctx_s {
        sb_admin_cfg_t cfg;
        sb_platform_t *pf;
        sb_rights_t *r;
        char errstr[1024];
} sb_rights_ctx_t;

static sb_err_t sb_rights_open(sb_rights_ctx_t *ctx, const char *config)
{
        sb_err_t err;

        if ((err = sb_config_load(config, sb_admin_cfg_table, &ctx->cfg,
                                  ctx->errstr, sizeof(ctx->errstr))))
                return err;
        ctx->pf = sb_platform_load(ctx->cfg.platform, ctx->errstr,
                                   sizeof(ctx->errstr));
        if (!ctx->pf)
                return SB_ERR_CONFIG;
        ctx->r =
            sb_rights_new(&ctx->cfg, ctx->pf, ctx->errstr, sizeof(ctx->errstr));
        return ctx->r ? SB_OK : SB_ERR_KAFKA;
}

static void sb_rights_close(sb_rights_ctx_t *ctx)
{
        sb_rights_destroy(ctx->r);
        sb_platform_destroy(ctx->pf);
        sb_config_release(sb_admin_cfg_table, &ctx->cfg);
}

/*
 * status
 */

typedef struct sb_rights_count_s {
        size_t n[SB_RIGHTS_INVALID + 1];
} sb_rights_count_t;

static void sb_rights_count(const sb_rights_event_t *ev, sb_rights_count_t *c)
{
        size_t i;

        memset(c, 0, sizeof(*c));
        for (i = 0; i < ev->ack_cnt; i++)
                c->n[ev->acks[i].state]++;
}

static void sb_rights_print_table(const sb_rights_report_t *rep,
                                  const sb_rights_event_t *ev)
{
        char notified[32], due[32], when[48], rows[24], sig[64], d[32];
        const sb_rights_receipt_t *rc;
        sb_rights_count_t c;
        int w = 6;
        size_t i;

        sb_time_format(ev->notified_at, notified);
        sb_time_format(ev->notified_at + rep->deadline_ms, due);
        sb_rights_format_duration(rep->deadline_ms, d, sizeof(d));
        printf("event %s: %s on dataset %s\n", ev->event_id, ev->type,
               ev->dataset);
        printf("requested %s, notified %s, receipts due by %s (deadline "
               "%s)\n",
               *ev->requested_time ? ev->requested_time : "(unknown)", notified,
               due, d);
        if (!ev->ack_cnt) {
                printf("no reuser had received the person: nobody to "
                       "notify, no receipt to wait for\n");
                return;
        }
        for (i = 0; i < ev->ack_cnt; i++)
                if ((int)strlen(ev->acks[i].reuser) > w)
                        w = (int)strlen(ev->acks[i].reuser);
        printf("\n%-*s  %-12s  %-28s  %6s  %s\n", w, "reuser", "state", "when",
               "rows", "signature");
        for (i = 0; i < ev->ack_cnt; i++) {
                const sb_rights_ack_t *a = &ev->acks[i];

                rc = a->state == SB_RIGHTS_INVALID ? &a->bad : &a->receipt;
                snprintf(when, sizeof(when), "-");
                snprintf(rows, sizeof(rows), "-");
                snprintf(sig, sizeof(sig), "-");
                if (a->state == SB_RIGHTS_ACKNOWLEDGED) {
                        sb_time_format(rc->applied_at, when);
                        snprintf(rows, sizeof(rows), "%" PRId64, rc->rows);
                }
                if (a->state == SB_RIGHTS_PENDING ||
                    a->state == SB_RIGHTS_OVERDUE)
                        snprintf(when, sizeof(when), "due %s", due);
                if (rc->sig != SB_RIGHTS_SIG_NONE)
                        snprintf(sig, sizeof(sig), "%s%s%s%s",
                                 sb_rights_sig2str(rc->sig),
                                 *rc->key_id ? " (key " : "", rc->key_id,
                                 *rc->key_id ? ")" : "");
                printf("%-*s  %-12s  %-28s  %6s  %s\n", w, a->reuser,
                       sb_rights_state2str(a->state), when, rows, sig);
                if (*a->reason)
                        printf("%-*s  %s\n", w, "", a->reason);
        }
        sb_rights_count(ev, &c);
        printf("\n%zu reuser(s) notified: %zu acknowledged, %zu pending, %zu "
               "overdue, %zu invalid\n",
               ev->ack_cnt, c.n[SB_RIGHTS_ACKNOWLEDGED], c.n[SB_RIGHTS_PENDING],
               c.n[SB_RIGHTS_OVERDUE], c.n[SB_RIGHTS_INVALID]);
}

static json_t *sb_rights_time_json(int64_t ms)
{
        char t[32];

        sb_time_format(ms, t);
        return json_string(t);
}

static json_t *sb_rights_event_json(const sb_rights_report_t *rep,
                                    const sb_rights_event_t *ev)
{
        json_t *j, *reusers = json_array();
        sb_rights_count_t c;
        size_t i;

        for (i = 0; reusers && i < ev->ack_cnt; i++) {
                const sb_rights_ack_t *a = &ev->acks[i];
                const sb_rights_receipt_t *rc =
                    a->state == SB_RIGHTS_INVALID ? &a->bad : &a->receipt;
                int ack = a->state == SB_RIGHTS_ACKNOWLEDGED;

                json_array_append_new(
                    reusers,
                    json_pack(
                        "{s:s, s:s, s:o, s:o, s:s, s:o, s:I, s:I, s:o}",
                        "reuser", a->reuser, "state",
                        sb_rights_state2str(a->state), "applied_at",
                        ack ? sb_rights_time_json(rc->applied_at) : json_null(),
                        "rows", ack ? json_integer(rc->rows) : json_null(),
                        "signature", sb_rights_sig2str(rc->sig), "key_id",
                        *rc->key_id ? json_string(rc->key_id) : json_null(),
                        "receipts", (json_int_t)a->receipt_cnt, "audited",
                        (json_int_t)a->audited_cnt, "reason",
                        *a->reason ? json_string(a->reason) : json_null()));
        }
        sb_rights_count(ev, &c);
        j = json_pack("{s:s, s:s, s:s, s:s, s:o, s:I, s:o, s:o, s:o, "
                      "s:{s:I, s:I, s:I, s:I, s:I}}",
                      "event_id", ev->event_id, "type", ev->type, "dataset",
                      ev->dataset, "requested_time", ev->requested_time,
                      "notified_at", sb_rights_time_json(ev->notified_at),
                      "deadline_ms", (json_int_t)rep->deadline_ms, "due_at",
                      sb_rights_time_json(ev->notified_at + rep->deadline_ms),
                      "checked_at", sb_rights_time_json(rep->now), "reusers",
                      reusers, "summary", "notified", (json_int_t)ev->ack_cnt,
                      "acknowledged", (json_int_t)c.n[SB_RIGHTS_ACKNOWLEDGED],
                      "pending", (json_int_t)c.n[SB_RIGHTS_PENDING], "overdue",
                      (json_int_t)c.n[SB_RIGHTS_OVERDUE], "invalid",
                      (json_int_t)c.n[SB_RIGHTS_INVALID]);
        return j;
}

static int sb_rights_status(int argc, char **argv)
{
        sb_rights_report_t rep = {0};
        sb_rights_ctx_t ctx;
        sb_rights_cli_t o;
        int rc = SB_EXIT_ERROR, r;
        sb_rights_count_t c;
        size_t i;
        json_t *j;

        if ((r = sb_rights_parse(argc, argv, 0, &o)))
                return r > 0 ? SB_EXIT_OK : SB_EXIT_USAGE;
        memset(&ctx, 0, sizeof(ctx));
        if (sb_rights_open(&ctx, o.config) ||
            sb_rights_scan(ctx.r, o.event_id,
                           o.deadline_ms >= 0 ? o.deadline_ms
                                              : ctx.cfg.receipt_deadline_ms,
                           &rep, ctx.errstr, sizeof(ctx.errstr))) {
                fprintf(stderr, "sharebus rights: %s\n", ctx.errstr);
                goto done;
        }
        /* One event id, one event (entries are merged by id). */
        for (i = 0; i < rep.event_cnt; i++) {
                const sb_rights_event_t *ev = &rep.events[i];

                if (o.json) {
                        j = sb_rights_event_json(&rep, ev);
                        if (!j || json_dumpf(j, stdout, JSON_COMPACT) ||
                            putchar('\n') == EOF) {
                                json_decref(j);
                                fprintf(stderr,
                                        "sharebus rights: cannot write the "
                                        "status\n");
                                goto done;
                        }
                        json_decref(j);
                } else {
                        sb_rights_print_table(&rep, ev);
                }
                sb_rights_count(ev, &c);
                rc = c.n[SB_RIGHTS_ACKNOWLEDGED] == ev->ack_cnt
                         ? SB_EXIT_OK
                         : SB_EXIT_PENDING;
        }
        if (fflush(stdout))
                rc = SB_EXIT_ERROR;
done:
        sb_rights_report_release(&rep);
        sb_rights_close(&ctx);
        return rc;
}

/*
 * watch
 */

static int sb_rights_watch(int argc, char **argv)
{
        sb_rights_ctx_t ctx;
        sb_rights_cli_t o;
        int64_t deadline;
        size_t raised, audited, total = 0;
        char d[32];
        int r;

        if ((r = sb_rights_parse(argc, argv, 1, &o)))
                return r > 0 ? SB_EXIT_OK : SB_EXIT_USAGE;
        memset(&ctx, 0, sizeof(ctx));
        if (sb_rights_open(&ctx, o.config)) {
                fprintf(stderr, "sharebus rights: %s\n", ctx.errstr);
                sb_rights_close(&ctx);
                return SB_EXIT_ERROR;
        }
        deadline =
            o.deadline_ms >= 0 ? o.deadline_ms : ctx.cfg.receipt_deadline_ms;
        if (o.once) {
                r = sb_rights_watch_once(ctx.r, deadline, &raised, &audited,
                                         ctx.errstr, sizeof(ctx.errstr));
                if (r)
                        fprintf(stderr, "sharebus rights: %s\n", ctx.errstr);
                else
                        printf("raised %zu alert(s) on %s\n"
                               "recorded %zu receipt(s) on %s\n",
                               raised, SB_RIGHTS_ALERTS_TOPIC, audited,
                               SB_RIGHTS_AUDIT_TOPIC);
                sb_rights_close(&ctx);
                return r ? SB_EXIT_ERROR : SB_EXIT_OK;
        }
        sb_rights_format_duration(o.interval_ms, d, sizeof(d));
        sb_log(SB_LOG_NOTICE, "RIGHTS",
               "watching receipts every %s; alerts go to %s", d,
               SB_RIGHTS_ALERTS_TOPIC);
        sb_cli_install_signals();
        while (!sb_cli_stop) {
                /* A failed scan (broker away) is retried at the next
                 * interval: the watcher must outlive outages. */
                if (sb_rights_watch_once(ctx.r, deadline, &raised, &audited,
                                         ctx.errstr, sizeof(ctx.errstr)))
                        sb_log(SB_LOG_WARN, "RIGHTS",
                               "scan failed, next in %s: %s", d, ctx.errstr);
                else
                        sb_log(raised || audited ? SB_LOG_NOTICE : SB_LOG_INFO,
                               "RIGHTS",
                               "scan done: %zu alert(s) raised, %zu "
                               "receipt(s) recorded",
                               raised, audited);
                total += raised;
                sb_cli_wait(o.interval_ms);
        }
        sb_log(SB_LOG_NOTICE, "RIGHTS", "stopped; %zu alert(s) raised", total);
        sb_rights_close(&ctx);
        return SB_EXIT_OK;
}

int sb_cmd_rights(int argc, char **argv)
{
        if (argc < 2)
                return sb_rights_usage("missing action (status, watch)");
        if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))
                return sb_rights_usage(NULL);
        if (!strcmp(argv[1], "status"))
                return sb_rights_status(argc, argv);
        if (!strcmp(argv[1], "watch"))
                return sb_rights_watch(argc, argv);
        return sb_rights_usage("action must be status or watch");
}
