/* sharebus gateway --config F */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "gateway.h"
#include "log.h"

static int sb_gateway_usage(const char *why)
{
        FILE *fp = why ? stderr : stdout;

        if (why)
                fprintf(fp, "sharebus gateway: %s\n\n", why);
        fprintf(fp, "usage: sharebus gateway --config F [--exit-when-idle MS] "
                    "[-v] [-d FAC] [--log-json]\n"
                    "\n"
                    "Consumes sb.in.<dataset> for the configured datasets and "
                    "publishes, in\n"
                    "Kafka transactions, one minimised stream per grant to "
                    "sb.out.<reuser>.<dataset>.\n"
                    "Stops gracefully on SIGINT/SIGTERM (commits, leaves the "
                    "group).\n"
                    "--exit-when-idle MS  stop once nothing arrived for MS "
                    "milliseconds (batch runs)\n");
        return why ? SB_EXIT_USAGE : SB_EXIT_OK;
}

int sb_cmd_gateway(int argc, char **argv)
{
        static const struct option opts[] = {
            {"config", required_argument, NULL, 'c'},
            {"exit-when-idle", required_argument, NULL, 'I'},
            {"help", no_argument, NULL, 'h'},
            {"log-json", no_argument, NULL, 'J'},
            {NULL, 0, NULL, 0},
        };
        const char *config = NULL;
        int opt, idle_ms = 0, rc = SB_EXIT_ERROR;
        sb_gateway_cfg_t cfg;
        sb_gateway_t *gw = NULL;
        const sb_gateway_stats_t *st;
        char errstr[1024];

        optind = 1;
        while ((opt = getopt_long(argc, argv, "c:I:hvd:", opts, NULL)) != -1) {
                switch (opt) {
                case 'c':
                        config = optarg;
                        break;
                case 'I':
                        idle_ms = atoi(optarg);
                        if (idle_ms <= 0)
                                return sb_gateway_usage(
                                    "--exit-when-idle needs a positive "
                                    "number of milliseconds");
                        break;
                case 'h':
                        return sb_gateway_usage(NULL);
                default:
                        if (!sb_cli_log_option(opt, optarg))
                                return sb_gateway_usage("unknown option");
                }
        }
        if (optind < argc)
                return sb_gateway_usage("unexpected argument");
        if (!config)
                return sb_gateway_usage("--config is required");

        memset(&cfg, 0, sizeof(cfg));
        if (sb_config_load(config, sb_gateway_cfg_table, &cfg, errstr,
                           sizeof(errstr))) {
                fprintf(stderr, "sharebus gateway: %s\n", errstr);
                goto done;
        }
        sb_cli_install_signals();
        gw = sb_gateway_new(&cfg, NULL, errstr, sizeof(errstr));
        if (!gw) {
                fprintf(stderr, "sharebus gateway: %s\n", errstr);
                goto done;
        }
        sb_log(SB_LOG_NOTICE, "GATEWAY", "running; SIGTERM stops it");
        if (sb_gateway_run(gw, &sb_cli_stop, idle_ms, errstr, sizeof(errstr))) {
                fprintf(stderr, "sharebus gateway: %s\n", errstr);
                goto done;
        }
        rc = SB_EXIT_OK;
done:
        if (gw) {
                st = sb_gateway_stats(gw);
                fprintf(stderr,
                        "gateway: %zu record(s) in, %zu delivered, %zu rights "
                        "event(s), %zu notice(s), %zu not shared (grant "
                        "inactive), %zu excluded (objection, consent, "
                        "restriction), %zu too old for the grant, %zu "
                        "held over a rate (%zu released since), %zu "
                        "quarantined (%zu unverified), %zu signed batch(es), "
                        "%zu audit entr%s, %zu transaction(s)\n",
                        st->records_in, st->delivered, st->rights_in,
                        st->notices, st->not_shared, st->excluded, st->too_old,
                        st->held, st->released, st->quarantined, st->unverified,
                        st->signed_batches, st->audit_entries,
                        st->audit_entries == 1 ? "y" : "ies", st->transactions);
        }
        sb_gateway_destroy(gw);
        sb_config_release(sb_gateway_cfg_table, &cfg);
        return rc;
}
