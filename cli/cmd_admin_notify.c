/*
 * sharebus admin grants notify [--before D] [--once] [--interval D]
 *                              [--dry-run]
 *
 * Tells each reuser on sb.notice.<reuser> that a grant of its expires
 * soon, has expired or was revoked, once per grant and validity
 * (admin/notices.h; DESIGN.md §5, "Validity"; CNIL R5.2-03, R6.2-03,
 * R6.2-04). Run periodically like `sharebus rights watch`: it loops every
 * --interval and outlives broker outages, or runs one pass with --once.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "envelope.h"
#include "grants.h"
#include "log.h"
#include "notices.h"
#include "platform.h"
#include "rights.h"

#define SB_NOTIFY_BEFORE_MIN_MS (3600 * 1000LL)
#define SB_NOTIFY_BEFORE_MAX_MS (365 * 24 * 3600 * 1000LL)
#define SB_NOTIFY_IVL_MIN_MS    1000LL
#define SB_NOTIFY_IVL_MAX_MS    (31 * 24 * 3600 * 1000LL)
#define SB_NOTIFY_INTERVAL_MS   (3600 * 1000LL)

static int sb_notify_usage(const char *why)
{
        FILE *fp = why ? stderr : stdout;

        if (why)
                fprintf(fp, "sharebus admin grants notify: %s\n\n", why);
        fprintf(fp,
                "usage: sharebus admin grants notify --config ADMIN.json "
                "[--before D] [--once]\n"
                "                                    [--interval D] "
                "[--dry-run]\n"
                "\n"
                "Sends each reuser, on sb.notice.<reuser>, a notice for every "
                "approved grant\n"
                "of its that expires within --before (grant.expiring) or has "
                "expired\n"
                "(grant.expired), and for every grant revoked on %s "
                "(grant.revoked).\n"
                "The grants are the current versions on %s, or the grant "
                "files of the\n"
                "platform declaration when the topic holds none. Never twice: "
                "the notice topic\n"
                "is read first, and a notice whose key is there is not sent "
                "again.\n"
                "Without --once, runs every --interval until SIGINT/SIGTERM, "
                "retrying after\n"
                "a failed pass (broker away) at the next interval.\n"
                "\n"
                "  --config F      the platform administrator's config "
                "(examples/admin.json)\n"
                "  --before D      how long before valid_until to notify, 1h "
                "to 365d, at most\n"
                "                  the platform's ops_retention_days (default: "
                "expiry_notice_ms,\n"
                "                  7 days)\n"
                "  --once          one pass: print each notice and how many "
                "were sent, exit 0\n"
                "                  (1 when one could not be sent)\n"
                "  --interval D    time between passes (default 1h)\n"
                "  --dry-run       one pass that prints what would be sent, "
                "and sends nothing\n"
                "  -v, -d FAC, --log-json  logging, as for every command\n"
                "\n"
                "Durations: a whole number with ms, s, m, h or d (30s, 15m, "
                "24h, 7d), or\n"
                "plain milliseconds.\n",
                SB_GRANTS_TOPIC, SB_GRANTS_TOPIC);
        return why ? SB_EXIT_USAGE : SB_EXIT_OK;
}

typedef struct sb_notify_cli_s {
        const char *config;
        int64_t before_ms; /* -1: from the config */
        int64_t interval_ms;
        int once;
        int dry_run;
} sb_notify_cli_t;

static int sb_notify_duration_opt(const char *name, const char *arg,
                                  int64_t min, int64_t max, const char *range,
                                  int64_t *msp)
{
        char why[300];

        if (sb_rights_parse_duration(arg, msp) || *msp < min || *msp > max) {
                snprintf(why, sizeof(why),
                         "%s: expected a duration from %s, such as 24h or "
                         "7d; got \"%.64s\"",
                         name, range, arg);
                sb_notify_usage(why);
                return -1;
        }
        return 0;
}

/* Returns -1 on usage, 1 on --help. */
static int sb_notify_parse(int argc, char **argv, sb_notify_cli_t *o)
{
        static const struct option opts[] = {
            {"config", required_argument, NULL, 'c'},
            {"before", required_argument, NULL, 'b'},
            {"interval", required_argument, NULL, 'i'},
            {"once", no_argument, NULL, '1'},
            {"dry-run", no_argument, NULL, 'n'},
            {"help", no_argument, NULL, 'h'},
            {"log-json", no_argument, NULL, 'J'},
            {NULL, 0, NULL, 0},
        };
        char why[300];
        int opt;

        memset(o, 0, sizeof(*o));
        o->before_ms = -1;
        o->interval_ms = SB_NOTIFY_INTERVAL_MS;
        optind = 2;
        opterr = 0;
        while ((opt = getopt_long(argc, argv, ":c:hvd:", opts, NULL)) != -1) {
                switch (opt) {
                case 'c':
                        o->config = optarg;
                        break;
                case 'b':
                        if (sb_notify_duration_opt("--before", optarg,
                                                   SB_NOTIFY_BEFORE_MIN_MS,
                                                   SB_NOTIFY_BEFORE_MAX_MS,
                                                   "1h to 365d", &o->before_ms))
                                return -1;
                        break;
                case 'i':
                        if (sb_notify_duration_opt(
                                "--interval", optarg, SB_NOTIFY_IVL_MIN_MS,
                                SB_NOTIFY_IVL_MAX_MS, "1s to 31d",
                                &o->interval_ms))
                                return -1;
                        break;
                case '1':
                        o->once = 1;
                        break;
                case 'n':
                        o->dry_run = 1;
                        break;
                case 'h':
                        sb_notify_usage(NULL);
                        return 1;
                case ':':
                        snprintf(why, sizeof(why), "option '%s' needs a value",
                                 argv[optind - 1]);
                        sb_notify_usage(why);
                        return -1;
                case '?':
                        snprintf(why, sizeof(why), "unknown option '%s'",
                                 argv[optind - 1]);
                        sb_notify_usage(why);
                        return -1;
                default:
                        if (!sb_cli_log_option(opt, optarg)) {
                                sb_notify_usage("unknown option");
                                return -1;
                        }
                }
        }
        if (optind < argc) {
                snprintf(why, sizeof(why), "unexpected argument '%s'",
                         argv[optind]);
                sb_notify_usage(why);
                return -1;
        }
        if (!o->config) {
                sb_notify_usage("--config ADMIN.json is required");
                return -1;
        }
        return 0;
}

/* One pass: loads the platform (its grant files may have changed). */
static sb_err_t sb_notify_pass(sb_notifier_t *nt, const sb_admin_cfg_t *cfg,
                               int64_t before_ms, int dry_run,
                               sb_notice_pass_t *pass, char *errstr,
                               size_t errstr_size)
{
        sb_platform_t *pf;
        sb_err_t err;

        memset(pass, 0, sizeof(*pass));
        pf = sb_platform_load(cfg->platform, errstr, errstr_size);
        if (!pf)
                return SB_ERR_CONFIG;
        err = sb_notifier_run(nt, pf, sb_now_ms(), before_ms, dry_run, pass,
                              errstr, errstr_size);
        sb_platform_destroy(pf);
        return err;
}

static void sb_notify_print(const sb_notice_pass_t *pass,
                            const sb_admin_cfg_t *cfg, int dry_run)
{
        size_t i;

        if (pass->from_files)
                printf("grants: %zu from the grant files of '%s' (%s is empty "
                       "or absent)\n",
                       pass->grant_cnt, cfg->platform, SB_GRANTS_TOPIC);
        else
                printf("grants: %zu from %s\n", pass->grant_cnt,
                       SB_GRANTS_TOPIC);
        for (i = 0; i < pass->cnt; i++) {
                const sb_notice_t *n = &pass->notices[i];
                const char *state = n->state == SB_NOTICE_DUE && dry_run
                                        ? "would-send"
                                        : sb_notice_state2str(n->state);

                printf("%-12s  %-14s  grant %s  to %s  key %s", state,
                       sb_notice_kind2str(n->kind), n->grant_id, n->topic,
                       n->key);
                if (n->kind == SB_NOTICE_EXPIRING)
                        printf("  (%" PRId64 " day(s) left)", n->days_left);
                putchar('\n');
                if (dry_run && n->state == SB_NOTICE_DUE)
                        printf("              %s\n", n->value);
        }
        if (pass->undeclared)
                printf("%zu notice(s) not sent: the reuser is not declared in "
                       "'%s', so it has no notice topic\n",
                       pass->undeclared, cfg->platform);
}

/* Sleeps `ms`, waking up early on SIGINT/SIGTERM. */
static void sb_notify_wait(int64_t ms)
{
        struct timespec step = {0, 100 * 1000 * 1000};
        int64_t until = sb_now_ms() + ms;

        while (!sb_cli_stop && sb_now_ms() < until)
                nanosleep(&step, NULL);
}

int sb_admin_grants_notify(int argc, char **argv)
{
        sb_notifier_t *nt = NULL;
        sb_notice_pass_t pass;
        sb_notify_cli_t o;
        sb_admin_cfg_t cfg;
        char errstr[1024], d[32], b[32];
        int64_t before;
        size_t total = 0;
        int r, rc = SB_EXIT_OK;

        if ((r = sb_notify_parse(argc, argv, &o)))
                return r > 0 ? SB_EXIT_OK : SB_EXIT_USAGE;
        memset(&cfg, 0, sizeof(cfg));
        if (sb_config_load(o.config, sb_admin_cfg_table, &cfg, errstr,
                           sizeof(errstr)) ||
            !(nt = sb_notifier_new(&cfg, errstr, sizeof(errstr)))) {
                fprintf(stderr, "sharebus admin grants notify: %s\n", errstr);
                sb_config_release(sb_admin_cfg_table, &cfg);
                return SB_EXIT_ERROR;
        }
        before = o.before_ms >= 0 ? o.before_ms : cfg.expiry_notice_ms;
        if (o.once || o.dry_run) {
                r = sb_notify_pass(nt, &cfg, before, o.dry_run, &pass, errstr,
                                   sizeof(errstr));
                sb_notify_print(&pass, &cfg, o.dry_run);
                if (o.dry_run)
                        printf("would send %zu notice(s); %zu already sent; "
                               "nothing sent (--dry-run)\n",
                               pass.due, pass.already);
                else
                        printf("sent %zu notice(s); %zu already sent, %zu "
                               "failed\n",
                               pass.sent, pass.already, pass.failed);
                if (r) {
                        fprintf(stderr, "sharebus admin grants notify: %s\n",
                                errstr);
                        rc = SB_EXIT_ERROR;
                }
                sb_notice_pass_release(&pass);
                goto done;
        }
        sb_rights_format_duration(o.interval_ms, d, sizeof(d));
        sb_rights_format_duration(before, b, sizeof(b));
        sb_log(SB_LOG_NOTICE, "NOTICE",
               "checking grant validity every %s; notices %s before expiry "
               "go to sb.notice.<reuser>",
               d, b);
        sb_cli_install_signals();
        while (!sb_cli_stop) {
                /* A failed pass (broker away, a platform file being edited)
                 * is retried at the next interval: the notifier must outlive
                 * outages. What was sent is on the topics, so nothing goes
                 * twice. */
                if (sb_notify_pass(nt, &cfg, before, 0, &pass, errstr,
                                   sizeof(errstr)))
                        sb_log(SB_LOG_WARN, "NOTICE",
                               "pass failed (%zu sent), next in %s: %s",
                               pass.sent, d, errstr);
                else
                        sb_log(pass.sent ? SB_LOG_NOTICE : SB_LOG_INFO,
                               "NOTICE",
                               "pass done: %zu grant(s) from %s, %zu "
                               "notice(s) sent, %zu already sent",
                               pass.grant_cnt,
                               pass.from_files ? "the grant files"
                                               : SB_GRANTS_TOPIC,
                               pass.sent, pass.already);
                total += pass.sent;
                sb_notice_pass_release(&pass);
                sb_notify_wait(o.interval_ms);
        }
        sb_log(SB_LOG_NOTICE, "NOTICE", "stopped; %zu notice(s) sent", total);
done:
        if (fflush(stdout))
                rc = SB_EXIT_ERROR;
        sb_notifier_destroy(nt);
        sb_config_release(sb_admin_cfg_table, &cfg);
        return rc;
}
