/* sharebus sample: synthetic records of the sample dataset, for trying */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli.h"
#include "sample.h"

static int sb_sample_usage(const char *why)
{
        FILE *fp = why ? stderr : stdout;

        if (why)
                fprintf(fp, "sharebus sample: %s\n\n", why);
        fprintf(fp, "usage: sharebus sample [--subjects N] [--seed S]\n\n"
                    "Writes NDJSON records of the sample 'beneficiaries' "
                    "dataset to stdout:\nsynthetic people, reproducible from "
                    "the seed (default 42).\n");
        return why ? SB_EXIT_USAGE : SB_EXIT_OK;
}

int sb_cmd_sample(int argc, char **argv)
{
        static const struct option opts[] = {
            {"subjects", required_argument, NULL, 'n'},
            {"seed", required_argument, NULL, 's'},
            {"help", no_argument, NULL, 'h'},
            {NULL, 0, NULL, 0},
        };
        unsigned long long seed = 42;
        size_t subjects = 100;
        char *end;
        int opt;

        optind = 1;
        while ((opt = getopt_long(argc, argv, "n:s:h", opts, NULL)) != -1) {
                switch (opt) {
                case 'n':
                        subjects = strtoul(optarg, &end, 10);
                        if (*end || subjects == 0 || subjects > 10000000)
                                return sb_sample_usage(
                                    "--subjects must be 1 to 10000000");
                        break;
                case 's':
                        seed = strtoull(optarg, &end, 10);
                        if (*end)
                                return sb_sample_usage("--seed must be a "
                                                       "number");
                        break;
                case 'h':
                        return sb_sample_usage(NULL);
                default:
                        return sb_sample_usage("unknown option");
                }
        }
        if (optind < argc)
                return sb_sample_usage("unexpected argument");
        sb_sample_write(stdout, subjects, seed);
        return fflush(stdout) ? SB_EXIT_ERROR : SB_EXIT_OK;
}
