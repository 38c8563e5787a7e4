/* sharebus demo [--subjects N] [--schemas DIR] [--grants DIR] */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "demo.h"
#include "log.h"

static int sb_demo_usage(const char *why)
{
        FILE *fp = why ? stderr : stdout;

        if (why)
                fprintf(fp, "sharebus demo: %s\n\n", why);
        fprintf(fp,
                "usage: sharebus demo [--subjects N] [--schemas DIR] "
                "[--grants DIR] [--workdir DIR]\n"
                "\n"
                "Runs holder -> gateway -> reusers on an in-process mock "
                "cluster with\n"
                "synthetic data, then an erasure. Exits 5 if the erasure did "
                "not reach every\n"
                "reuser that had the subject, or a reuser stored a field its "
                "grant does\nnot name. Defaults: 300 subjects, schemas/, "
                "broker-config/grants/.\n");
        return why ? SB_EXIT_USAGE : SB_EXIT_OK;
}

int sb_cmd_demo(int argc, char **argv)
{
        static const struct option opts[] = {
            {"subjects", required_argument, NULL, 'n'},
            {"schemas", required_argument, NULL, 's'},
            {"grants", required_argument, NULL, 'g'},
            {"workdir", required_argument, NULL, 'w'},
            {"help", no_argument, NULL, 'h'},
            {"log-json", no_argument, NULL, 'J'},
            {NULL, 0, NULL, 0},
        };
        sb_demo_opts_t o = {300, "schemas", "broker-config/grants", NULL,
                            stdout};
        int opt, rc;

        optind = 1;
        while ((opt = getopt_long(argc, argv, "n:s:g:w:hvd:", opts, NULL)) !=
               -1) {
                switch (opt) {
                case 'n':
                        o.subjects = strtoul(optarg, NULL, 10);
                        if (o.subjects < 10 || o.subjects > 1000000)
                                return sb_demo_usage(
                                    "--subjects must be 10 to 1000000");
                        break;
                case 's':
                        o.schemas_dir = optarg;
                        break;
                case 'g':
                        o.grants_dir = optarg;
                        break;
                case 'w':
                        o.workdir = optarg;
                        break;
                case 'h':
                        return sb_demo_usage(NULL);
                default:
                        if (!sb_cli_log_option(opt, optarg))
                                return sb_demo_usage("unknown option");
                }
        }
        if (optind < argc)
                return sb_demo_usage("unexpected argument");
        rc = sb_demo_run(&o);
        return rc == 0 ? SB_EXIT_OK : rc == 1 ? SB_EXIT_CHECK : SB_EXIT_ERROR;
}
