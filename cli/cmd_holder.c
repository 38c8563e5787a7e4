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
        fprintf(
            fp,
            "usage: sharebus holder publish --config F --dataset D "
            "--input FILE|-\n"
            "                               [--skip-invalid --rejects "
            "FILE]\n"
            "       sharebus holder rights --config F --dataset D "
            "--type TYPE --subject ID\n"
            "                              [--purpose P]... "
            "[--requested-at TIME]\n"
            "       sharebus holder rights --config F --dataset D "
            "--type rectification\n"
            "                              --record FILE.json|- "
            "[--subject ID]\n"
            "       sharebus holder rights --config F --dataset D "
            "--type delete\n"
            "                              --subject ID --record-id ID "
            "[--requested-at TIME]\n"
            "       sharebus holder rights --config F --dataset D "
            "--input FILE|-\n"
            "                              [--skip-invalid --rejects "
            "FILE]\n"
            "\n"
            "publish  validates each NDJSON line against the dataset "
            "schema and publishes\n"
            "         the file in one transaction: one invalid line "
            "publishes nothing.\n"
            "         --skip-invalid publishes the valid lines and writes "
            "each rejected\n"
            "         line with its reason to --rejects (required).\n"
            "rights   publishes a data-subject rights event and prints "
            "its type and event\n"
            "         id: receipts and status refer to it.\n"
            "         --type TYPE       erasure, rectification, objection,\n"
            "                           consent-withdrawn, consent-given, "
            "restriction,\n"
            "                           restriction-lifted, delete\n"
            "         --subject ID      the person's id at the holder\n"
            "         --purpose P       a purpose concerned (objection, "
            "consent-*); repeat\n"
            "                           for more; none: all purposes\n"
            "         --requested-at T  when the person asked (RFC 3339; "
            "default: now)\n"
            "         --record FILE     rectification: the corrected "
            "record, one JSON object\n"
            "                           validated like a `publish` line\n"
            "         --record-id ID    delete: the record withdrawn\n"
            "         --input FILE      one event a line, published like "
            "`publish` does:\n"
            "           {\"type\":\"objection\",\"subject\":\"BEN-0000017\","
            "\"purposes\":[\"research\"],\n"
            "            \"requested_at\":\"2026-11-25T10:00:00Z\"}\n"
            "           {\"type\":\"rectification\",\"record\":{...}}\n"
            "           {\"type\":\"delete\",\"subject\":\"BEN-0000017\","
            "\"record_id\":\"...\"}\n"
            "         prints `line N: TYPE EVENT-ID` for each line "
            "published.\n"
            "\n"
            "options: -v (info logs), -d FACILITIES (debug), --log-json\n"
            "exit codes: 0 published, 1 error, 2 usage, 3 invalid input "
            "(nothing\n"
            "published), 4 published with rejected lines\n");
        return why ? SB_EXIT_USAGE : SB_EXIT_OK;
}

/* The command line, once read. */
typedef struct sb_holder_opts_s {
        const char *config, *dataset, *input, *rejects;
        const char *type, *subject, *requested_at, *record, *record_id;
        json_t *purposes; /* --purpose, in order */
        int skip_invalid;
} sb_holder_opts_t;

/* The options of a single rights event, by what they carry. */
static const struct {
        unsigned bit;
        const char *option;
} sb_holder_rights_opts[] = {
    {SB_RIGHTS_SUBJECT, "--subject"},
    {SB_RIGHTS_RECORD, "--record"},
    {SB_RIGHTS_RECORD_ID, "--record-id"},
    {SB_RIGHTS_PURPOSES, "--purpose"},
    {SB_RIGHTS_REQUESTED_AT, "--requested-at"},
};

#define SB_HOLDER_NOPTS                                                        \
        (sizeof(sb_holder_rights_opts) / sizeof(sb_holder_rights_opts[0]))

/* What the options of one event give, as SB_RIGHTS_* bits. */
static unsigned sb_holder_opts_given(const sb_holder_opts_t *o)
{
        return (o->subject ? SB_RIGHTS_SUBJECT : 0) |
               (o->record ? SB_RIGHTS_RECORD : 0) |
               (o->record_id ? SB_RIGHTS_RECORD_ID : 0) |
               (json_array_size(o->purposes) ? SB_RIGHTS_PURPOSES : 0) |
               (o->requested_at ? SB_RIGHTS_REQUESTED_AT : 0);
}

/*
 * Checks the command line of `rights` and, for a single event, fills
 * `req`. Returns the usage message, or NULL.
 */
static const char *sb_holder_check_rights(const sb_holder_opts_t *o,
                                          sb_holder_rights_req_t *req,
                                          char *why, size_t why_size)
{
        unsigned given = sb_holder_opts_given(o), carries, needs;
        const char *tname;
        size_t i;

        memset(req, 0, sizeof(*req));
        if (o->input) {
                if (o->type || given)
                        return "--input reads the events from FILE: --type, "
                               "--subject, --purpose, --requested-at, "
                               "--record and --record-id go in its lines";
                if (o->skip_invalid != !!o->rejects)
                        return "--skip-invalid and --rejects go together: "
                               "rejected lines must be kept";
                return NULL;
        }
        if (o->skip_invalid || o->rejects)
                return "--skip-invalid and --rejects need --input FILE";
        if (!o->type)
                return "rights needs --type TYPE (or --input FILE)";
        req->type = sb_holder_rights_type_parse(o->type);
        if (!req->type) {
                snprintf(why, why_size,
                         "--type: unknown rights event type '%s' (one of %s)",
                         o->type, sb_holder_rights_type_names());
                return why;
        }
        tname = sb_holder_rights_type_name(req->type);
        carries = sb_holder_rights_carries(req->type);
        needs = sb_holder_rights_requires(req->type);
        for (i = 0; i < SB_HOLDER_NOPTS; i++) {
                if ((given & sb_holder_rights_opts[i].bit) &&
                    !(carries & sb_holder_rights_opts[i].bit)) {
                        snprintf(why, why_size, "%s: not allowed for type '%s'",
                                 sb_holder_rights_opts[i].option, tname);
                        return why;
                }
        }
        for (i = 0; i < SB_HOLDER_NOPTS; i++) {
                if ((needs & sb_holder_rights_opts[i].bit) &&
                    !(given & sb_holder_rights_opts[i].bit)) {
                        snprintf(why, why_size, "--type %s needs %s", tname,
                                 sb_holder_rights_opts[i].option);
                        return why;
                }
        }
        if (o->requested_at &&
            sb_time_parse(o->requested_at, &req->requested_at)) {
                snprintf(why, why_size,
                         "--requested-at: expected an RFC 3339 timestamp "
                         "(2026-11-25T10:00:00Z), got '%s'",
                         o->requested_at);
                return why;
        }
        req->subject = o->subject;
        req->record_id = o->record_id;
        req->purposes = json_array_size(o->purposes) ? o->purposes : NULL;
        return NULL;
}

/*
 * Reads the one JSON object of --record. Returns the exit code when it
 * cannot, 0 otherwise.
 */
static int sb_holder_load_record(const char *path, json_t **recordp)
{
        const char *name = strcmp(path, "-") ? path : "<stdin>";
        FILE *fp = strcmp(path, "-") ? fopen(path, "r") : stdin;
        json_error_t jerr;

        if (!fp) {
                fprintf(stderr, "sharebus holder: '%s': %m\n", path);
                return SB_EXIT_ERROR;
        }
        *recordp = json_loadf(fp, JSON_REJECT_DUPLICATES, &jerr);
        if (fp != stdin)
                fclose(fp);
        if (!*recordp) {
                fprintf(stderr,
                        "sharebus holder: '%s' line %d column %d: invalid "
                        "JSON: %s\n",
                        name, jerr.line, jerr.column, jerr.text);
                return SB_EXIT_INVALID;
        }
        return 0;
}

static void sb_holder_print_event(const sb_holder_event_t *ev, void *opaque)
{
        (void)opaque;
        printf("line %zu: %s %s\n", ev->line,
               sb_holder_rights_type_name(ev->type), ev->event_id);
}

/* publish, or rights --input: a file in one transaction. */
static int sb_holder_cmd_file(sb_holder_t *h, const sb_holder_opts_t *o,
                              int rights)
{
        const char *name = strcmp(o->input, "-") ? o->input : "<stdin>";
        FILE *in = strcmp(o->input, "-") ? fopen(o->input, "r") : stdin;
        FILE *rej = NULL;
        sb_holder_stats_t st;
        char errstr[1024];
        sb_err_t err;

        if (!in) {
                fprintf(stderr, "sharebus holder: '%s': %m\n", o->input);
                return SB_EXIT_ERROR;
        }
        if (o->rejects && !(rej = fopen(o->rejects, "w"))) {
                fprintf(stderr, "sharebus holder: rejects file '%s': %m\n",
                        o->rejects);
                if (in != stdin)
                        fclose(in);
                return SB_EXIT_ERROR;
        }
        if (rights)
                err = sb_holder_rights_file(h, in, name, rej,
                                            sb_holder_print_event, NULL, &st,
                                            errstr, sizeof(errstr));
        else
                err = sb_holder_publish(h, in, name, rej, &st, errstr,
                                        sizeof(errstr));
        if (in != stdin)
                fclose(in);
        if (rej && fclose(rej) && !err)
                fprintf(stderr, "sharebus holder: rejects file '%s': %m\n",
                        o->rejects);
        if (err) {
                sb_holder_error(errstr);
                return err == SB_ERR_VALIDATION ? SB_EXIT_INVALID
                                                : SB_EXIT_ERROR;
        }
        printf("published %zu %s to sb.in.%s", st.published,
               rights ? "rights event(s)" : "record(s)", o->dataset);
        if (st.rejected)
                printf(", rejected %zu line(s): see '%s'", st.rejected,
                       o->rejects);
        printf("\n");
        return st.rejected ? SB_EXIT_PARTIAL : SB_EXIT_OK;
}

/* rights --type: one event. */
static int sb_holder_cmd_event(sb_holder_t *h, const sb_holder_opts_t *o,
                               const sb_holder_rights_req_t *req)
{
        char errstr[1024], event_id[37];
        sb_err_t err;

        err = sb_holder_rights_ex(h, req, event_id, errstr, sizeof(errstr));
        if (err) {
                sb_holder_error(errstr);
                return err == SB_ERR_VALIDATION    ? SB_EXIT_INVALID
                       : err == SB_ERR_INVALID_ARG ? SB_EXIT_USAGE
                                                   : SB_EXIT_ERROR;
        }
        printf("%s %s\n", sb_holder_rights_type_name(req->type), event_id);
        printf("published 1 rights event(s) to sb.in.%s\n", o->dataset);
        return SB_EXIT_OK;
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
            {"purpose", required_argument, NULL, 'P'},
            {"requested-at", required_argument, NULL, 'A'},
            {"record", required_argument, NULL, 'R'},
            {"record-id", required_argument, NULL, 'I'},
            {"help", no_argument, NULL, 'h'},
            {"log-json", no_argument, NULL, 'J'},
            {NULL, 0, NULL, 0},
        };
        sb_holder_opts_t o;
        sb_holder_rights_req_t req = {0};
        const char *action, *why;
        int opt, rights, rc = SB_EXIT_ERROR;
        json_t *record = NULL;
        sb_holder_cfg_t cfg;
        sb_holder_t *h = NULL;
        char errstr[1024], whybuf[512];

        if (argc < 2)
                return sb_holder_usage("missing action (publish or rights)");
        action = argv[1];
        if (!strcmp(action, "--help") || !strcmp(action, "-h"))
                return sb_holder_usage(NULL);
        if (strcmp(action, "publish") && strcmp(action, "rights"))
                return sb_holder_usage("action must be publish or rights");
        rights = !strcmp(action, "rights");
        memset(&o, 0, sizeof(o));
        o.purposes = json_array();
        if (!o.purposes) {
                fprintf(stderr, "sharebus holder: out of memory\n");
                return SB_EXIT_ERROR;
        }
        memset(&cfg, 0, sizeof(cfg));
        optind = 2;
        while ((opt = getopt_long(argc, argv, "c:D:i:sr:t:S:hvd:", opts,
                                  NULL)) != -1) {
                switch (opt) {
                case 'c':
                        o.config = optarg;
                        break;
                case 'D':
                        o.dataset = optarg;
                        break;
                case 'i':
                        o.input = optarg;
                        break;
                case 's':
                        o.skip_invalid = 1;
                        break;
                case 'r':
                        o.rejects = optarg;
                        break;
                case 't':
                        o.type = optarg;
                        break;
                case 'S':
                        o.subject = optarg;
                        break;
                case 'P':
                        if (json_array_append_new(o.purposes,
                                                  json_string(optarg))) {
                                rc = sb_holder_usage(
                                    "--purpose: not valid UTF-8");
                                goto done;
                        }
                        break;
                case 'A':
                        o.requested_at = optarg;
                        break;
                case 'R':
                        o.record = optarg;
                        break;
                case 'I':
                        o.record_id = optarg;
                        break;
                case 'h':
                        rc = sb_holder_usage(NULL);
                        goto done;
                default:
                        if (!sb_cli_log_option(opt, optarg)) {
                                rc = sb_holder_usage("unknown option");
                                goto done;
                        }
                }
        }
        why = NULL;
        if (optind < argc)
                why = "unexpected argument";
        else if (!o.config || !o.dataset)
                why = "--config and --dataset are required";
        else if (rights)
                why = sb_holder_check_rights(&o, &req, whybuf, sizeof(whybuf));
        else if (!o.input)
                why = "publish needs --input FILE (or - for stdin)";
        else if (o.type || sb_holder_opts_given(&o))
                why = "publish takes no --type, --subject, --purpose, "
                      "--requested-at, --record or --record-id: see "
                      "`holder rights`";
        else if (o.skip_invalid != !!o.rejects)
                why = "--skip-invalid and --rejects go together: rejected "
                      "lines must be kept";
        if (why) {
                rc = sb_holder_usage(why);
                goto done;
        }
        if (rights && o.record) {
                if ((rc = sb_holder_load_record(o.record, &record)))
                        goto done;
                rc = SB_EXIT_ERROR;
                req.record = record;
                req.origin = strcmp(o.record, "-") ? o.record : "<stdin>";
        }

        if (sb_config_load(o.config, sb_holder_cfg_table, &cfg, errstr,
                           sizeof(errstr))) {
                sb_holder_error(errstr);
                goto done;
        }
        h = sb_holder_new(&cfg, o.dataset, errstr, sizeof(errstr));
        if (!h) {
                sb_holder_error(errstr);
                goto done;
        }
        if (!rights || o.input)
                rc = sb_holder_cmd_file(h, &o, rights);
        else
                rc = sb_holder_cmd_event(h, &o, &req);
done:
        sb_holder_destroy(h);
        sb_config_release(sb_holder_cfg_table, &cfg);
        json_decref(record);
        json_decref(o.purposes);
        return rc;
}
