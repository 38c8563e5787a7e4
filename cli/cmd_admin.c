/*
 * sharebus admin ca init | cert issue | cert list | cert publish
 *
 * The API manager's tools (DESIGN.md §8): the platform CA, and short-lived
 * client certificates whose principal carries a credential generation.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "ca.h"
#include "certaudit.h"
#include "cli.h"
#include "platform.h"

static int sb_admin_ca(int argc, char **argv);
static int sb_admin_cert(int argc, char **argv);

/* Admin subcommands; `topics`, `acls` and `grants` join this table. */
static const sb_cmd_t sb_admin_cmds[] = {
    {"ca", sb_admin_ca, "the platform CA: init"},
    {"cert", sb_admin_cert,
     "client and broker certificates: issue, list, publish"},
    {"topics", sb_admin_cmd_topics, "topics the platform implies: plan, apply"},
    {"acls", sb_admin_cmd_acls, "ACLs the grants and roles imply: plan, apply"},
    {"grants", sb_admin_cmd_grants,
     "grant files published to _sb.grants: plan, apply, list, show, revoke"},
    {NULL, NULL, NULL},
};

static int sb_admin_usage(const char *why)
{
        FILE *fp = why ? stderr : stdout;
        const sb_cmd_t *c;

        if (why)
                fprintf(fp, "sharebus admin: %s\n\n", why);
        fprintf(fp, "usage: sharebus admin <subcommand> <action> [options]\n"
                    "\nsubcommands:\n");
        for (c = sb_admin_cmds; c->name; c++)
                fprintf(fp, "  %-8s %s\n", c->name, c->help);
        fprintf(fp, "\nRun 'sharebus admin <subcommand> --help' for its "
                    "actions and options.\n");
        return why ? SB_EXIT_USAGE : SB_EXIT_OK;
}

static int sb_admin_ca_usage(const char *why)
{
        FILE *fp = why ? stderr : stdout;

        if (why)
                fprintf(fp, "sharebus admin ca: %s\n\n", why);
        fprintf(fp,
                "usage: sharebus admin ca init --dir DIR [--name NAME] "
                "[--days N]\n"
                "\n"
                "Creates the platform CA in DIR (created with mode 0700): "
                "ca.key (EC P-256,\n"
                "mode 0600), ca.crt (self-signed) and issued.ndjson (the "
                "register of issued\n"
                "certificates). An existing CA is never overwritten.\n"
                "\n"
                "  --dir DIR    the CA directory\n"
                "  --name NAME  the CA's common name (default \"%s\")\n"
                "  --days N     lifetime in days, 1 to %d (default %d)\n",
                SB_CA_DEFAULT_NAME, SB_CA_MAX_DAYS, SB_CA_DEFAULT_DAYS);
        return why ? SB_EXIT_USAGE : SB_EXIT_OK;
}

static int sb_admin_cert_usage(const char *why)
{
        FILE *fp = why ? stderr : stdout;

        if (why)
                fprintf(fp, "sharebus admin cert: %s\n\n", why);
        fprintf(
            fp,
            "usage: sharebus admin cert issue --dir DIR --principal NAME "
            "[--days N]\n"
            "                [--not-before T] [--not-after T] [--dns HOST]... "
            "[--ip ADDR]...\n"
            "                [--server] [--out DIR2] [--config ADMIN.json]\n"
            "       sharebus admin cert list --dir DIR [--json]\n"
            "       sharebus admin cert publish --dir DIR --config "
            "ADMIN.json\n"
            "\n"
            "issue: signs a certificate with the CA in DIR and writes "
            "NAME.key (mode 0600),\n"
            "NAME.crt and NAME.pem (key, certificate and CA certificate: a "
            "Kafka PEM\n"
            "keystore) into DIR2 (default DIR); records it in "
            "DIR/issued.ndjson.\n"
            "  --principal NAME  the certificate's CN, i.e. the Kafka "
            "principal: a lowercase\n"
            "                    name and a credential generation, e.g. "
            "acme-research.g1\n"
            "                    (^[a-z][a-z0-9-]*(\\.g[0-9]+)?$); with "
            "--server, a host\n"
            "                    name such as kafka-1.example.org is "
            "allowed too\n"
            "  --days N          lifetime, 1 to %d days (default %d: "
            "short-lived credentials)\n"
            "  --not-before T    start of validity, RFC 3339 (e.g. "
            "2025-06-01T00:00:00Z),\n"
            "                    to pre-issue the next generation\n"
            "  --not-after T     end of validity, RFC 3339; a past time "
            "gives an expired\n"
            "                    certificate (tests), valid for --days "
            "before it\n"
            "  --dns HOST        add a DNS subjectAltName (repeatable)\n"
            "  --ip ADDR         add an IP subjectAltName (repeatable)\n"
            "  --server          a broker certificate: serverAuth as well "
            "as clientAuth\n"
            "  --out DIR2        where to write the three files (created "
            "0700 if missing)\n"
            "  --config F        the platform administrator's config: "
            "also record the\n"
            "                    certificate in _sb.audit (op cert.issue, "
            "chain sb-admin-ca);\n"
            "                    without it the issue is only in the "
            "register\n"
            "\n"
            "list: every issued certificate, checked against its file: "
            "principal, serial,\n"
            "not after, status (valid, expired, not yet valid, missing) and "
            "generation.\n"
            "  --json            one JSON object per line\n"
            "\n"
            "publish: records in _sb.audit every certificate of "
            "DIR/issued.ndjson that it\n"
            "does not hold yet (by serial), for a CA kept offline; running "
            "it again adds\n"
            "nothing.\n"
            "  --config F        the platform administrator's config\n"
            "\n"
            "Renewal: issue NAME.g<N+1> before NAME.g<N> expires; revoke a "
            "compromised\n"
            "credential by deleting the ACLs of its principal.\n",
            SB_CERT_MAX_DAYS, SB_CERT_DEFAULT_DAYS);
        return why ? SB_EXIT_USAGE : SB_EXIT_OK;
}

/* A whole decimal number in [lo, hi]. */
static int sb_admin_parse_int(const char *s, int lo, int hi, int *vp)
{
        char *end;
        long v;

        errno = 0;
        v = strtol(s, &end, 10);
        if (errno || end == s || *end || v < lo || v > hi)
                return 0;
        *vp = (int)v;
        return 1;
}

/* Why getopt_long() stopped on `opt` ('?' or ':'), for usage(). */
static const char *sb_admin_opt_error(int opt, char **argv, char *buf,
                                      size_t size)
{
        const char *arg = argv[optind - 1];

        if (opt == ':')
                snprintf(buf, size, "option '%s' needs a value", arg);
        else
                snprintf(buf, size, "unknown option '%s'", arg);
        return buf;
}

/*
 * A value the library refused (a principal, a validity window, a name) is
 * a bad command line; anything else is an error.
 */
static int sb_admin_exit(sb_err_t err)
{
        return err == SB_ERR_INVALID_ARG ? SB_EXIT_USAGE : SB_EXIT_ERROR;
}

/*
 * ca
 */

static int sb_admin_ca_init(int argc, char **argv)
{
        static const struct option opts[] = {
            {"dir", required_argument, NULL, 'D'},
            {"name", required_argument, NULL, 'n'},
            {"days", required_argument, NULL, 'N'},
            {"help", no_argument, NULL, 'h'},
            {"log-json", no_argument, NULL, 'J'},
            {NULL, 0, NULL, 0},
        };
        char errstr[1024], why[256], until[SB_RFC3339_SIZE];
        const char *dir = NULL, *name = SB_CA_DEFAULT_NAME;
        char path[SB_CA_PATH_MAX];
        int opt, days = SB_CA_DEFAULT_DAYS;
        sb_cert_info_t info;
        sb_err_t err;

        optind = 2;
        opterr = 0;
        while ((opt = getopt_long(argc, argv, ":hvd:", opts, NULL)) != -1) {
                switch (opt) {
                case 'D':
                        dir = optarg;
                        break;
                case 'n':
                        name = optarg;
                        break;
                case 'N':
                        if (!sb_admin_parse_int(optarg, 1, SB_CA_MAX_DAYS,
                                                &days)) {
                                snprintf(why, sizeof(why),
                                         "--days: expected 1 to %d, got "
                                         "'%s'",
                                         SB_CA_MAX_DAYS, optarg);
                                return sb_admin_ca_usage(why);
                        }
                        break;
                case 'h':
                        return sb_admin_ca_usage(NULL);
                case '?':
                case ':':
                        return sb_admin_ca_usage(
                            sb_admin_opt_error(opt, argv, why, sizeof(why)));
                default:
                        if (!sb_cli_log_option(opt, optarg))
                                return sb_admin_ca_usage("unknown option");
                }
        }
        if (optind < argc) {
                snprintf(why, sizeof(why), "unexpected argument '%s'",
                         argv[optind]);
                return sb_admin_ca_usage(why);
        }
        if (!dir)
                return sb_admin_ca_usage("--dir is required");

        if ((err = sb_ca_init(dir, name, days, errstr, sizeof(errstr)))) {
                fprintf(stderr, "sharebus admin: %s\n", errstr);
                return sb_admin_exit(err);
        }
        snprintf(path, sizeof(path), "%s/%s", dir, SB_CA_CRT_FILE);
        if (sb_cert_file_info(path, 0, &info, errstr, sizeof(errstr))) {
                fprintf(stderr, "sharebus admin: %s\n", errstr);
                return SB_EXIT_ERROR;
        }
        sb_rfc3339_format(info.not_after, until);
        printf("created CA '%s' in %s\n"
               "  key:      %s/%s (mode 0600; keep it away from the "
               "brokers)\n"
               "  cert:     %s/%s (valid until %s)\n"
               "  sha256:   %s\n"
               "  register: %s/%s\n",
               name, dir, dir, SB_CA_KEY_FILE, dir, SB_CA_CRT_FILE, until,
               info.sha256, dir, SB_CA_REGISTER_FILE);
        return SB_EXIT_OK;
}

static int sb_admin_ca(int argc, char **argv)
{
        char why[256];

        if (argc < 2)
                return sb_admin_ca_usage("missing action (init)");
        if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))
                return sb_admin_ca_usage(NULL);
        if (!strcmp(argv[1], "init"))
                return sb_admin_ca_init(argc, argv);
        snprintf(why, sizeof(why), "unknown action '%s'; the action is init",
                 argv[1]);
        return sb_admin_ca_usage(why);
}

/*
 * cert
 */

static int sb_admin_parse_time(const char *opt, const char *arg, time_t *tp)
{
        char errstr[256], why[400];

        if (sb_rfc3339_parse(arg, tp, errstr, sizeof(errstr)) == SB_OK)
                return 0;
        snprintf(why, sizeof(why), "%s: %s", opt, errstr);
        return sb_admin_cert_usage(why);
}

/*
 * The cert.issue entry of a certificate just issued, with a config; without
 * one, how to record it later. The certificate is issued either way: a
 * failure here exits 1 but leaves the files and the register.
 */
static int sb_admin_cert_audit(const sb_admin_cfg_t *cfg, const char *ca_dir,
                               const char *config, const sb_cert_info_t *info)
{
        char errstr[1024];

        if (!cfg) {
                fprintf(stderr,
                        "sharebus admin: note: certificate '%s' is recorded "
                        "in %s/%s only, not in _sb.audit; record it with "
                        "'sharebus admin cert publish --dir %s --config "
                        "ADMIN.json'\n",
                        info->principal, ca_dir, SB_CA_REGISTER_FILE, ca_dir);
                return SB_EXIT_OK;
        }
        if (sb_certaudit_issued(cfg, info, errstr, sizeof(errstr))) {
                fprintf(stderr,
                        "sharebus admin: certificate '%s' is issued but not "
                        "recorded in _sb.audit: %s; record it with "
                        "'sharebus admin cert publish --dir %s --config "
                        "%s'\n",
                        info->principal, errstr, ca_dir, config);
                return SB_EXIT_ERROR;
        }
        printf("  audit:    recorded in _sb.audit (chain %s)\n",
               SB_CERTAUDIT_CHAIN);
        return SB_EXIT_OK;
}

static int sb_admin_cert_issue(int argc, char **argv)
{
        static const struct option opts[] = {
            {"dir", required_argument, NULL, 'D'},
            {"principal", required_argument, NULL, 'p'},
            {"days", required_argument, NULL, 'N'},
            {"not-before", required_argument, NULL, 'B'},
            {"not-after", required_argument, NULL, 'A'},
            {"dns", required_argument, NULL, 'H'},
            {"ip", required_argument, NULL, 'I'},
            {"server", no_argument, NULL, 'S'},
            {"out", required_argument, NULL, 'o'},
            {"config", required_argument, NULL, 'c'},
            {"help", no_argument, NULL, 'h'},
            {"log-json", no_argument, NULL, 'J'},
            {NULL, 0, NULL, 0},
        };
        char errstr[1024], why[256], nb[SB_RFC3339_SIZE], na[SB_RFC3339_SIZE];
        const char **dns = NULL, **ips = NULL, *out_dir, *config = NULL;
        sb_admin_cfg_t cfg;
        int cfg_loaded = 0;
        int opt, rc = SB_EXIT_USAGE;
        sb_cert_info_t info;
        sb_cert_req_t req;
        sb_err_t err;
        time_t now;

        memset(&req, 0, sizeof(req));
        dns = calloc((size_t)argc, sizeof(*dns));
        ips = calloc((size_t)argc, sizeof(*ips));
        if (!dns || !ips) {
                fprintf(stderr, "sharebus admin: out of memory\n");
                rc = SB_EXIT_ERROR;
                goto done;
        }
        optind = 2;
        opterr = 0;
        while ((opt = getopt_long(argc, argv, ":hvd:", opts, NULL)) != -1) {
                switch (opt) {
                case 'D':
                        req.ca_dir = optarg;
                        break;
                case 'p':
                        req.principal = optarg;
                        break;
                case 'N':
                        if (!sb_admin_parse_int(optarg, 1, SB_CERT_MAX_DAYS,
                                                &req.days)) {
                                snprintf(why, sizeof(why),
                                         "--days: expected 1 to %d, got "
                                         "'%s'",
                                         SB_CERT_MAX_DAYS, optarg);
                                rc = sb_admin_cert_usage(why);
                                goto done;
                        }
                        break;
                case 'B':
                        if ((rc = sb_admin_parse_time("--not-before", optarg,
                                                      &req.not_before)))
                                goto done;
                        break;
                case 'A':
                        if ((rc = sb_admin_parse_time("--not-after", optarg,
                                                      &req.not_after)))
                                goto done;
                        break;
                case 'H':
                        dns[req.dns_cnt++] = optarg;
                        break;
                case 'I':
                        ips[req.ip_cnt++] = optarg;
                        break;
                case 'S':
                        req.server = 1;
                        break;
                case 'o':
                        req.out_dir = optarg;
                        break;
                case 'c':
                        config = optarg;
                        break;
                case 'h':
                        rc = sb_admin_cert_usage(NULL);
                        goto done;
                case '?':
                case ':':
                        rc = sb_admin_cert_usage(
                            sb_admin_opt_error(opt, argv, why, sizeof(why)));
                        goto done;
                default:
                        if (!sb_cli_log_option(opt, optarg)) {
                                rc = sb_admin_cert_usage("unknown option");
                                goto done;
                        }
                }
        }
        rc = SB_EXIT_USAGE;
        if (optind < argc) {
                snprintf(why, sizeof(why), "unexpected argument '%s'",
                         argv[optind]);
                rc = sb_admin_cert_usage(why);
                goto done;
        }
        if (!req.ca_dir) {
                rc = sb_admin_cert_usage("--dir is required");
                goto done;
        }
        if (!req.principal) {
                rc = sb_admin_cert_usage("--principal is required");
                goto done;
        }
        if (req.days && req.not_before && req.not_after) {
                rc = sb_admin_cert_usage("--days cannot be combined with both "
                                         "--not-before and --not-after");
                goto done;
        }
        req.dns = dns;
        req.ips = ips;
        /* A config that does not load stops the issue before any file. */
        if (config) {
                memset(&cfg, 0, sizeof(cfg));
                cfg_loaded = 1; /* released in every case */
                if (sb_config_load(config, sb_admin_cfg_table, &cfg, errstr,
                                   sizeof(errstr))) {
                        fprintf(stderr, "sharebus admin: %s\n", errstr);
                        rc = SB_EXIT_ERROR;
                        goto done;
                }
        }

        if ((err = sb_cert_issue(&req, &info, errstr, sizeof(errstr)))) {
                fprintf(stderr, "sharebus admin: %s\n", errstr);
                rc = sb_admin_exit(err);
                goto done;
        }
        now = time(NULL);
        out_dir = req.out_dir ? req.out_dir : req.ca_dir;
        sb_rfc3339_format(info.not_before, nb);
        sb_rfc3339_format(info.not_after, na);
        printf("issued %s certificate '%s'", info.server ? "server" : "client",
               info.principal);
        if (info.generation >= 0)
                printf(" (generation %ld)", info.generation);
        printf("\n  serial:   %s\n  valid:    %s to %s\n  sha256:   %s\n"
               "  key:      %s/%s.key (mode 0600)\n  cert:     %s/%s.crt\n"
               "  keystore: %s/%s.pem (key + cert + CA cert, mode 0600)\n",
               info.serial, nb, na, info.sha256, out_dir, info.principal,
               out_dir, info.principal, out_dir, info.principal);
        if (info.not_after < now)
                fprintf(stderr,
                        "sharebus admin: warning: certificate '%s' is "
                        "already expired (not after %s): no broker will "
                        "accept it\n",
                        info.principal, na);
        else if (info.not_before > now)
                fprintf(stderr,
                        "sharebus admin: note: certificate '%s' is not valid "
                        "before %s\n",
                        info.principal, nb);
        if (req.server && !req.dns_cnt && !req.ip_cnt)
                fprintf(stderr,
                        "sharebus admin: warning: server certificate '%s' "
                        "has no --dns or --ip: clients that verify the "
                        "broker's host name will refuse it\n",
                        info.principal);
        rc = sb_admin_cert_audit(cfg_loaded ? &cfg : NULL, req.ca_dir, config,
                                 &info);
done:
        if (cfg_loaded)
                sb_config_release(sb_admin_cfg_table, &cfg);
        free(dns);
        free(ips);
        return rc;
}

static void sb_admin_cert_print_json(const sb_cert_info_t *ci)
{
        char nb[SB_RFC3339_SIZE], na[SB_RFC3339_SIZE], at[SB_RFC3339_SIZE];
        json_t *obj;
        char *text;

        sb_rfc3339_format(ci->not_before, nb);
        sb_rfc3339_format(ci->not_after, na);
        sb_rfc3339_format(ci->issued_at, at);
        obj = json_pack(
            "{s:s, s:s, s:s, s:s, s:s, s:o, s:b, s:s, s:s, s:s}", "principal",
            ci->principal, "serial", ci->serial, "not_before", nb, "not_after",
            na, "status", sb_cert_status2str(ci->status), "generation",
            ci->generation >= 0 ? json_integer(ci->generation) : json_null(),
            "server", ci->server, "sha256", ci->sha256, "issued_at", at, "crt",
            ci->crt_path);
        text = obj ? json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
        if (text)
                printf("%s\n", text);
        free(text);
        json_decref(obj);
}

static int sb_admin_cert_list(int argc, char **argv)
{
        static const struct option opts[] = {
            {"dir", required_argument, NULL, 'D'},
            {"json", no_argument, NULL, 'j'},
            {"help", no_argument, NULL, 'h'},
            {"log-json", no_argument, NULL, 'J'},
            {NULL, 0, NULL, 0},
        };
        char errstr[1024], why[256], na[SB_RFC3339_SIZE], gen[24];
        const char *dir = NULL;
        sb_cert_info_t *infos;
        int opt, json = 0, width = (int)strlen("PRINCIPAL");
        size_t i, cnt;

        optind = 2;
        opterr = 0;
        while ((opt = getopt_long(argc, argv, ":hvd:", opts, NULL)) != -1) {
                switch (opt) {
                case 'D':
                        dir = optarg;
                        break;
                case 'j':
                        json = 1;
                        break;
                case 'h':
                        return sb_admin_cert_usage(NULL);
                case '?':
                case ':':
                        return sb_admin_cert_usage(
                            sb_admin_opt_error(opt, argv, why, sizeof(why)));
                default:
                        if (!sb_cli_log_option(opt, optarg))
                                return sb_admin_cert_usage("unknown option");
                }
        }
        if (optind < argc) {
                snprintf(why, sizeof(why), "unexpected argument '%s'",
                         argv[optind]);
                return sb_admin_cert_usage(why);
        }
        if (!dir)
                return sb_admin_cert_usage("--dir is required");

        if (sb_cert_list(dir, 0, &infos, &cnt, errstr, sizeof(errstr))) {
                fprintf(stderr, "sharebus admin: %s\n", errstr);
                return SB_EXIT_ERROR;
        }
        if (json) {
                for (i = 0; i < cnt; i++)
                        sb_admin_cert_print_json(&infos[i]);
                free(infos);
                return SB_EXIT_OK;
        }
        for (i = 0; i < cnt; i++)
                if ((int)strlen(infos[i].principal) > width)
                        width = (int)strlen(infos[i].principal);
        printf("%-*s  %-32s  %-20s  %-13s  %s\n", width, "PRINCIPAL", "SERIAL",
               "NOT AFTER", "STATUS", "GENERATION");
        for (i = 0; i < cnt; i++) {
                sb_rfc3339_format(infos[i].not_after, na);
                if (infos[i].generation >= 0)
                        snprintf(gen, sizeof(gen), "%ld", infos[i].generation);
                else
                        snprintf(gen, sizeof(gen), "-");
                printf("%-*s  %-32s  %-20s  %-13s  %s\n", width,
                       infos[i].principal, infos[i].serial, na,
                       sb_cert_status2str(infos[i].status), gen);
        }
        free(infos);
        return SB_EXIT_OK;
}

static int sb_admin_cert_publish(int argc, char **argv)
{
        static const struct option opts[] = {
            {"dir", required_argument, NULL, 'D'},
            {"config", required_argument, NULL, 'c'},
            {"help", no_argument, NULL, 'h'},
            {"log-json", no_argument, NULL, 'J'},
            {NULL, 0, NULL, 0},
        };
        const char *dir = NULL, *config = NULL;
        char errstr[1024], why[256];
        size_t added, held;
        sb_admin_cfg_t cfg;
        sb_err_t err;
        int opt;

        optind = 2;
        opterr = 0;
        while ((opt = getopt_long(argc, argv, ":hvd:", opts, NULL)) != -1) {
                switch (opt) {
                case 'D':
                        dir = optarg;
                        break;
                case 'c':
                        config = optarg;
                        break;
                case 'h':
                        return sb_admin_cert_usage(NULL);
                case '?':
                case ':':
                        return sb_admin_cert_usage(
                            sb_admin_opt_error(opt, argv, why, sizeof(why)));
                default:
                        if (!sb_cli_log_option(opt, optarg))
                                return sb_admin_cert_usage("unknown option");
                }
        }
        if (optind < argc) {
                snprintf(why, sizeof(why), "unexpected argument '%s'",
                         argv[optind]);
                return sb_admin_cert_usage(why);
        }
        if (!dir)
                return sb_admin_cert_usage("--dir is required");
        if (!config)
                return sb_admin_cert_usage("publish: --config ADMIN.json is "
                                           "required");

        memset(&cfg, 0, sizeof(cfg));
        if (sb_config_load(config, sb_admin_cfg_table, &cfg, errstr,
                           sizeof(errstr))) {
                fprintf(stderr, "sharebus admin: %s\n", errstr);
                sb_config_release(sb_admin_cfg_table, &cfg);
                return SB_EXIT_ERROR;
        }
        err = sb_certaudit_publish(&cfg, dir, &added, &held, errstr,
                                   sizeof(errstr));
        sb_config_release(sb_admin_cfg_table, &cfg);
        if (err) {
                fprintf(stderr, "sharebus admin: %s\n", errstr);
                return SB_EXIT_ERROR;
        }
        printf("recorded %zu certificate(s) in _sb.audit (chain %s); %zu "
               "already there\n",
               added, SB_CERTAUDIT_CHAIN, held);
        return SB_EXIT_OK;
}

static int sb_admin_cert(int argc, char **argv)
{
        char why[256];

        if (argc < 2)
                return sb_admin_cert_usage(
                    "missing action (issue, list or publish)");
        if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))
                return sb_admin_cert_usage(NULL);
        if (!strcmp(argv[1], "issue"))
                return sb_admin_cert_issue(argc, argv);
        if (!strcmp(argv[1], "list"))
                return sb_admin_cert_list(argc, argv);
        if (!strcmp(argv[1], "publish"))
                return sb_admin_cert_publish(argc, argv);
        snprintf(why, sizeof(why),
                 "unknown action '%s'; the actions are issue, list and "
                 "publish",
                 argv[1]);
        return sb_admin_cert_usage(why);
}

int sb_cmd_admin(int argc, char **argv)
{
        const sb_cmd_t *c;
        char why[256];

        if (argc < 2)
                return sb_admin_usage("missing subcommand");
        if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") ||
            !strcmp(argv[1], "help"))
                return sb_admin_usage(NULL);
        for (c = sb_admin_cmds; c->name; c++)
                if (!strcmp(c->name, argv[1]))
                        return c->fn(argc - 1, argv + 1);
        snprintf(why, sizeof(why), "'%s' is not an admin subcommand", argv[1]);
        return sb_admin_usage(why);
}
