/* sharebus reuser run --config F */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "log.h"
#include "reuser.h"

static int sb_reuser_usage(const char *why)
{
        FILE *fp = why ? stderr : stdout;

        if (why)
                fprintf(fp, "sharebus reuser: %s\n\n", why);
        fprintf(fp,
                "usage: sharebus reuser run --config F [--exit-when-idle MS] "
                "[-v] [-d FAC] [--log-json]\n"
                "\n"
                "Consumes this reuser's stream, stores each record in the "
                "SQLite database,\n"
                "applies rights notices (erasure, objection, consent "
                "withdrawal, restriction,\n"
                "rectification) and keeps consumed offsets in the same SQL "
                "transactions.\n"
                "Each rights event applied gets a receipt signed with the "
                "key in\n"
                "signing_key_file, published to sb.ack.<reuser> "
                "(receipts_topic).\n"
                "--exit-when-idle MS  stop once nothing arrived for MS "
                "milliseconds\n");
        return why ? SB_EXIT_USAGE : SB_EXIT_OK;
}

int sb_cmd_reuser(int argc, char **argv)
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
        const sb_reuser_stats_t *st;
        sb_reuser_cfg_t cfg;
        sb_reuser_t *ru = NULL;
        char errstr[1024];

        if (argc < 2)
                return sb_reuser_usage("missing action (run)");
        if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))
                return sb_reuser_usage(NULL);
        if (strcmp(argv[1], "run"))
                return sb_reuser_usage("action must be run");
        optind = 2;
        while ((opt = getopt_long(argc, argv, "c:I:hvd:", opts, NULL)) != -1) {
                switch (opt) {
                case 'c':
                        config = optarg;
                        break;
                case 'I':
                        idle_ms = atoi(optarg);
                        if (idle_ms <= 0)
                                return sb_reuser_usage(
                                    "--exit-when-idle needs a positive "
                                    "number of milliseconds");
                        break;
                case 'h':
                        return sb_reuser_usage(NULL);
                default:
                        if (!sb_cli_log_option(opt, optarg))
                                return sb_reuser_usage("unknown option");
                }
        }
        if (optind < argc)
                return sb_reuser_usage("unexpected argument");
        if (!config)
                return sb_reuser_usage("--config is required");

        memset(&cfg, 0, sizeof(cfg));
        if (sb_config_load(config, sb_reuser_cfg_table, &cfg, errstr,
                           sizeof(errstr))) {
                fprintf(stderr, "sharebus reuser: %s\n", errstr);
                goto done;
        }
        sb_cli_install_signals();
        ru = sb_reuser_new(&cfg, errstr, sizeof(errstr));
        if (!ru) {
                fprintf(stderr, "sharebus reuser: %s\n", errstr);
                goto done;
        }
        if (sb_reuser_run(ru, &sb_cli_stop, idle_ms, errstr, sizeof(errstr))) {
                fprintf(stderr, "sharebus reuser: %s\n", errstr);
                goto done;
        }
        rc = SB_EXIT_OK;
done:
        if (ru) {
                st = sb_reuser_stats(ru);
                fprintf(stderr,
                        "reuser: %zu record(s) stored, %zu tombstone(s), "
                        "%zu refused; rights applied: %zu erasure(s) (%zu "
                        "row(s)), %zu objection(s), %zu consent "
                        "withdrawal(s) (%zu row(s)), %zu restriction(s), "
                        "%zu lifted, %zu rectification(s), %zu seen "
                        "again; %zu receipt(s) sent\n",
                        st->records, st->deleted, st->rejected, st->erasures,
                        st->erased_rows, st->objections, st->consent_withdrawn,
                        st->rights_rows, st->restrictions,
                        st->restrictions_lifted, st->rectifications,
                        st->rights_duplicates, st->receipts_sent);
        }
        sb_reuser_destroy(ru);
        sb_config_release(sb_reuser_cfg_table, &cfg);
        return rc;
}
