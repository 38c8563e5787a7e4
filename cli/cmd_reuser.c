/*
 * sharebus reuser run --config F
 * sharebus reuser purge --config F [--dry-run]
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "envelope.h"
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
                "       sharebus reuser purge --config F [--dry-run] [-v] "
                "[-d FAC] [--log-json]\n"
                "\n"
                "run: consumes this reuser's stream, stores each record in "
                "the SQLite database,\n"
                "applies rights notices (erasure, objection, consent "
                "withdrawal, restriction,\n"
                "rectification) and keeps consumed offsets in the same SQL "
                "transactions.\n"
                "Each rights event applied gets a receipt signed with the "
                "key in\n"
                "signing_key_file, published to sb.ack.<reuser> "
                "(receipts_topic).\n"
                "It purges rows past the grant's retention_days or "
                "valid_until when it starts\n"
                "and every purge_interval_ms.\n"
                "--exit-when-idle MS  stop once nothing arrived for MS "
                "milliseconds\n"
                "\n"
                "purge: deletes now, in one SQL transaction, the rows "
                "received more than the\n"
                "grant's retention_days ago, and every row once its "
                "valid_until has passed;\n"
                "records the purge in sb_purges and prints what it purged. "
                "Needs no broker.\n"
                "--dry-run            print what it would purge; change "
                "nothing\n");
        return why ? SB_EXIT_USAGE : SB_EXIT_OK;
}

/* What `reuser purge` did (or would do), on stdout. */
static void sb_reuser_print_purge(const sb_reuser_cfg_t *cfg,
                                  const sb_reuser_purge_t *rep, int dry_run)
{
        const char *done = dry_run ? "would be purged" : "purged";
        char t[32];

        sb_time_format(rep->at_ms, t);
        printf("store '%s', grant '%s', at %s%s\n", cfg->database, rep->grant,
               t, dry_run ? " (dry run)" : "");
        if (rep->retention_days > 0) {
                sb_time_format(rep->retention_cutoff_ms, t);
                printf("retention: %" PRId64 " row(s) received before %s %s "
                       "(retention_days %d; %" PRId64
                       " of restricted subjects)\n",
                       rep->retention_rows, t, done, rep->retention_days,
                       rep->retention_restricted);
        } else {
                printf("retention: the grant sets no retention_days\n");
        }
        if (!rep->has_valid_until) {
                printf("validity: the grant sets no valid_until\n");
        } else {
                sb_time_format(rep->valid_until_ms, t);
                if (rep->validity_ended)
                        printf("validity: %" PRId64 " row(s) %s, the grant "
                               "ended at %s (%" PRId64
                               " of restricted subjects)\n",
                               rep->validity_rows, done, t,
                               rep->validity_restricted);
                else
                        printf("validity: the grant is valid until %s\n", t);
        }
        if (rep->oldest_kept_ms >= 0) {
                sb_time_format(rep->oldest_kept_ms, t);
                printf("kept: %" PRId64 " row(s), the oldest received %s\n",
                       rep->kept, t);
        } else {
                printf("kept: no row\n");
        }
        if (dry_run)
                printf("dry run: nothing was deleted or recorded\n");
}

int sb_cmd_reuser(int argc, char **argv)
{
        static const struct option opts[] = {
            {"config", required_argument, NULL, 'c'},
            {"exit-when-idle", required_argument, NULL, 'I'},
            {"dry-run", no_argument, NULL, 'n'},
            {"help", no_argument, NULL, 'h'},
            {"log-json", no_argument, NULL, 'J'},
            {NULL, 0, NULL, 0},
        };
        const char *config = NULL;
        int opt, idle_ms = 0, dry_run = 0, purge, rc = SB_EXIT_ERROR;
        const sb_reuser_stats_t *st;
        sb_reuser_purge_t rep;
        sb_reuser_cfg_t cfg;
        sb_reuser_t *ru = NULL;
        char errstr[1024];

        if (argc < 2)
                return sb_reuser_usage("missing action (run or purge)");
        if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))
                return sb_reuser_usage(NULL);
        if (strcmp(argv[1], "run") && strcmp(argv[1], "purge"))
                return sb_reuser_usage("action must be run or purge");
        purge = !strcmp(argv[1], "purge");
        optind = 2;
        while ((opt = getopt_long(argc, argv, "c:I:hvd:", opts, NULL)) != -1) {
                switch (opt) {
                case 'c':
                        config = optarg;
                        break;
                case 'I':
                        if (purge)
                                return sb_reuser_usage(
                                    "--exit-when-idle is an option of run");
                        idle_ms = atoi(optarg);
                        if (idle_ms <= 0)
                                return sb_reuser_usage(
                                    "--exit-when-idle needs a positive "
                                    "number of milliseconds");
                        break;
                case 'n':
                        if (!purge)
                                return sb_reuser_usage(
                                    "--dry-run is an option of purge");
                        dry_run = 1;
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
        if (purge) {
                if (sb_reuser_purge_store(&cfg, dry_run, &rep, errstr,
                                          sizeof(errstr))) {
                        fprintf(stderr, "sharebus reuser purge: %s\n", errstr);
                        goto done;
                }
                sb_reuser_print_purge(&cfg, &rep, dry_run);
                rc = SB_EXIT_OK;
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
                        "again; %zu receipt(s) sent; purged: %zu row(s) "
                        "past retention, %zu past validity\n",
                        st->records, st->deleted, st->rejected, st->erasures,
                        st->erased_rows, st->objections, st->consent_withdrawn,
                        st->rights_rows, st->restrictions,
                        st->restrictions_lifted, st->rectifications,
                        st->rights_duplicates, st->receipts_sent,
                        st->purged_retention, st->purged_validity);
        }
        sb_reuser_destroy(ru);
        sb_config_release(sb_reuser_cfg_table, &cfg);
        return rc;
}
