/* sharebus holder publish | rights */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "holder.h"
#include "log.h"

/* Library messages already start with "holder: "; say it once. */
static void sb_holder_error(const char *errstr)
{
        if (!strncmp(errstr, "holder: ", 8))
                fprintf(stderr, "sharebus %s\n", errstr);
        else
                fprintf(stderr, "sharebus holder: %s\n", errstr);
}

static int sb_holder_usage(const char *why)
{
        FILE *fp = why ? stderr : stdout;

        if (why)
                fprintf(fp, "sharebus holder: %s\n\n", why);
        fprintf(fp,
                "usage: sharebus holder publish --config F --dataset D "
                "--input FILE|-\n"
                "                               [--skip-invalid --rejects "
                "FILE]\n"
                "       sharebus holder rights --config F --dataset D --type "
                "erasure --subject ID\n"
                "\n"
                "publish  validates each NDJSON line against the dataset "
                "schema and publishes\n"
                "         the file in one transaction: one invalid line "
                "publishes nothing.\n"
                "         --skip-invalid publishes the valid lines and writes "
                "each rejected\n"
                "         line with its reason to --rejects (required).\n"
                "rights   publishes a data-subject rights event for one "
                "subject.\n"
                "\n"
                "options: -v (info logs), -d FACILITIES (debug), --log-json\n"
                "exit codes: 0 published, 1 error, 2 usage, 3 invalid input "
                "(nothing\n"
                "published), 4 published with rejected lines\n");
        return why ? SB_EXIT_USAGE : SB_EXIT_OK;
}

int sb_cmd_holder(int argc, char **argv)
{
        static const struct option opts[] = {
            {"config", required_argument, NULL, 'c'},
            {"dataset", required_argument, NULL, 'D'},
            {"input", required_argument, NULL, 'i'},
            {"skip-invalid", no_argument, NULL, 's'},
            {"rejects", required_argument, NULL, 'r'},
            {"type", required_argument, NULL, 't'},
            {"subject", required_argument, NULL, 'S'},
            {"help", no_argument, NULL, 'h'},
            {"log-json", no_argument, NULL, 'J'},
            {NULL, 0, NULL, 0},
        };
        const char *config = NULL, *dataset = NULL, *input = NULL;
        const char *rejects_path = NULL, *type = NULL, *subject = NULL;
        const char *action;
        int skip_invalid = 0, opt, rc = SB_EXIT_ERROR;
        sb_holder_cfg_t cfg;
        sb_holder_t *h = NULL;
        char errstr[1024];
        sb_err_t err;

        if (argc < 2)
                return sb_holder_usage("missing action (publish or rights)");
        action = argv[1];
        if (!strcmp(action, "--help") || !strcmp(action, "-h"))
                return sb_holder_usage(NULL);
        if (strcmp(action, "publish") && strcmp(action, "rights"))
                return sb_holder_usage("action must be publish or rights");
        optind = 2;
        while ((opt = getopt_long(argc, argv, "c:D:i:sr:t:S:hvd:", opts,
                                  NULL)) != -1) {
                switch (opt) {
                case 'c':
                        config = optarg;
                        break;
                case 'D':
                        dataset = optarg;
                        break;
                case 'i':
                        input = optarg;
                        break;
                case 's':
                        skip_invalid = 1;
                        break;
                case 'r':
                        rejects_path = optarg;
                        break;
                case 't':
                        type = optarg;
                        break;
                case 'S':
                        subject = optarg;
                        break;
                case 'h':
                        return sb_holder_usage(NULL);
                default:
                        if (!sb_cli_log_option(opt, optarg))
                                return sb_holder_usage("unknown option");
                }
        }
        if (optind < argc)
                return sb_holder_usage("unexpected argument");
        if (!config || !dataset)
                return sb_holder_usage("--config and --dataset are required");
        if (!strcmp(action, "publish")) {
                if (!input)
                        return sb_holder_usage("publish needs --input FILE "
                                               "(or - for stdin)");
                if (skip_invalid != !!rejects_path)
                        return sb_holder_usage(
                            "--skip-invalid and --rejects go together: "
                            "rejected lines must be kept");
        } else {
                if (!type || !subject)
                        return sb_holder_usage("rights needs --type and "
                                               "--subject");
                if (sb_event_type_parse(type) != SB_EV_ERASURE)
                        return sb_holder_usage(
                            "--type: this version publishes 'erasure' only");
        }

        memset(&cfg, 0, sizeof(cfg));
        if (sb_config_load(config, sb_holder_cfg_table, &cfg, errstr,
                           sizeof(errstr))) {
                sb_holder_error(errstr);
                goto done;
        }
        h = sb_holder_new(&cfg, dataset, errstr, sizeof(errstr));
        if (!h) {
                sb_holder_error(errstr);
                goto done;
        }

        if (!strcmp(action, "publish")) {
                FILE *in = strcmp(input, "-") ? fopen(input, "r") : stdin;
                FILE *rej = NULL;
                sb_holder_stats_t st;

                if (!in) {
                        fprintf(stderr, "sharebus holder: '%s': %m\n", input);
                        goto done;
                }
                if (rejects_path && !(rej = fopen(rejects_path, "w"))) {
                        fprintf(stderr,
                                "sharebus holder: rejects file '%s': "
                                "%m\n",
                                rejects_path);
                        if (in != stdin)
                                fclose(in);
                        goto done;
                }
                err = sb_holder_publish(h, in, in == stdin ? "<stdin>" : input,
                                        rej, &st, errstr, sizeof(errstr));
                if (in != stdin)
                        fclose(in);
                if (rej && fclose(rej) && !err) {
                        fprintf(stderr,
                                "sharebus holder: rejects file '%s': "
                                "%m\n",
                                rejects_path);
                }
                if (err) {
                        sb_holder_error(errstr);
                        rc = err == SB_ERR_VALIDATION ? SB_EXIT_INVALID
                                                      : SB_EXIT_ERROR;
                        goto done;
                }
                printf("published %zu record(s) to sb.in.%s", st.published,
                       dataset);
                if (st.rejected)
                        printf(", rejected %zu line(s): see '%s'", st.rejected,
                               rejects_path);
                printf("\n");
                rc = st.rejected ? SB_EXIT_PARTIAL : SB_EXIT_OK;
        } else {
                char event_id[37];

                if (sb_holder_rights(h, sb_event_type_parse(type), subject,
                                     NULL, event_id, errstr, sizeof(errstr))) {
                        sb_holder_error(errstr);
                        goto done;
                }
                printf("published %s event %s to sb.in.%s\n", type, event_id,
                       dataset);
                rc = SB_EXIT_OK;
        }
done:
        sb_holder_destroy(h);
        sb_config_release(sb_holder_cfg_table, &cfg);
        return rc;
}
