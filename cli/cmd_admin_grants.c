/*
 * sharebus admin grants plan|apply|list|show ID|revoke ID
 *
 * Grants are files in git; these publish them to _sb.grants, which the
 * gateway follows while running (DESIGN.md §5; admin/grants.h). plan and
 * apply read the platform's grants_dir; list and show read only the topic;
 * revoke reads the topic, and the files only for a grant never published,
 * so that an unrelated broken file never delays a revocation.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "envelope.h"
#include "grants.h"
#include "platform.h"

static int sb_grants_usage(const char *why)
{
        FILE *fp = why ? stderr : stdout;

        if (why)
                fprintf(fp, "sharebus admin grants: %s\n\n", why);
        fprintf(
            fp,
            "usage: sharebus admin grants plan|apply --config ADMIN.json "
            "[--json]\n"
            "       sharebus admin grants list --config ADMIN.json [--json]\n"
            "       sharebus admin grants show ID --config ADMIN.json "
            "[--json]\n"
            "       sharebus admin grants revoke ID --config ADMIN.json\n"
            "       sharebus admin grants notify --config ADMIN.json "
            "[--before D] [--once] ...\n"
            "\n"
            "plan    compares the grant files of the platform's grants_dir "
            "with %s:\n"
            "        to create, to update, unchanged, in conflict (revoked "
            "on the topic\n"
            "        but not in its file), on the topic without a file; "
            "changes nothing;\n"
            "        exit 0 when in sync, 6 when there is something to "
            "apply or review\n"
            "apply   publishes the creates and updates in one transaction, "
            "with an audit\n"
            "        entry each on %s; a second apply publishes nothing. "
            "Never\n"
            "        revokes: a grant without a file is reported, not "
            "touched\n"
            "list    the grants on %s: id, reuser, dataset, status, "
            "validity,\n"
            "        purposes, file, when changed\n"
            "show    one grant as on %s, and when it changed\n"
            "revoke  publishes grant ID with \"status\": \"revoked\": the "
            "gateway stops\n"
            "        sharing it while running; its history stays on the "
            "topic\n"
            "notify  tells reusers on sb.notice.<reuser> that a grant "
            "expires soon, has\n"
            "        expired or was revoked, once ('notify --help')\n"
            "\n"
            "  --config F   the platform administrator's config "
            "(examples/admin.json)\n"
            "  --json       plan, apply: the plan as one JSON object; list: "
            "one object per\n"
            "               line; show: one object\n"
            "  -v, -d FAC, --log-json  logging, as for every command\n",
            SB_GRANTS_TOPIC, SB_GRANTS_AUDIT_TOPIC, SB_GRANTS_TOPIC,
            SB_GRANTS_TOPIC);
        return why ? SB_EXIT_USAGE : SB_EXIT_OK;
}

typedef struct sb_grants_cli_s {
        const char *action;
        const char *config;
        const char *id; /* show, revoke */
        int json;
} sb_grants_cli_t;

/* Parses the options after the action; returns -1 on usage, 1 on --help. */
static int sb_grants_parse(int argc, char **argv, sb_grants_cli_t *o)
{
        static const struct option opts[] = {
            {"config", required_argument, NULL, 'c'},
            {"json", no_argument, NULL, 'j'},
            {"help", no_argument, NULL, 'h'},
            {"log-json", no_argument, NULL, 'J'},
            {NULL, 0, NULL, 0},
        };
        int opt, needs_id;
        char why[300];

        needs_id = !strcmp(o->action, "show") || !strcmp(o->action, "revoke");
        optind = 2;
        opterr = 0;
        while ((opt = getopt_long(argc, argv, ":c:hvd:", opts, NULL)) != -1) {
                switch (opt) {
                case 'c':
                        o->config = optarg;
                        break;
                case 'j':
                        if (!strcmp(o->action, "revoke")) {
                                sb_grants_usage("--json is not an option of "
                                                "revoke");
                                return -1;
                        }
                        o->json = 1;
                        break;
                case 'h':
                        sb_grants_usage(NULL);
                        return 1;
                case ':':
                        snprintf(why, sizeof(why), "option '%s' needs a value",
                                 argv[optind - 1]);
                        sb_grants_usage(why);
                        return -1;
                case '?':
                        snprintf(why, sizeof(why), "unknown option '%s'",
                                 argv[optind - 1]);
                        sb_grants_usage(why);
                        return -1;
                default:
                        if (!sb_cli_log_option(opt, optarg)) {
                                sb_grants_usage("unknown option");
                                return -1;
                        }
                }
        }
        if (needs_id) {
                if (optind >= argc) {
                        snprintf(why, sizeof(why), "%s needs the grant ID",
                                 o->action);
                        sb_grants_usage(why);
                        return -1;
                }
                o->id = argv[optind++];
        }
        if (optind < argc) {
                snprintf(why, sizeof(why), "unexpected argument '%s'",
                         argv[optind]);
                sb_grants_usage(why);
                return -1;
        }
        if (!o->config) {
                sb_grants_usage("--config ADMIN.json is required");
                return -1;
        }
        return 0;
}

typedef struct sb_grants_ctx_s {
        sb_admin_cfg_t cfg;
        int cfg_loaded;
        sb_platform_t *pf;
        sb_grant_file_t *files;
        size_t file_cnt;
        sb_grantadm_t *gs;
        sb_grant_state_t st;
        char errstr[1024];
} sb_grants_ctx_t;

static void sb_grants_close(sb_grants_ctx_t *ctx)
{
        sb_grant_state_release(&ctx->st);
        sb_grantadm_destroy(ctx->gs);
        sb_grant_files_destroy(ctx->files, ctx->file_cnt);
        sb_platform_destroy(ctx->pf);
        if (ctx->cfg_loaded)
                sb_config_release(sb_admin_cfg_table, &ctx->cfg);
}

static int sb_grants_fail(sb_grants_ctx_t *ctx)
{
        fprintf(stderr, "sharebus admin grants: %s\n", ctx->errstr);
        sb_grants_close(ctx);
        return SB_EXIT_ERROR;
}

/* The platform and its grant files (validated, naming file and key). */
static sb_err_t sb_grants_load_files(sb_grants_ctx_t *ctx)
{
        ctx->pf = sb_platform_load(ctx->cfg.platform, ctx->errstr,
                                   sizeof(ctx->errstr));
        if (!ctx->pf)
                return SB_ERR_GRANT;
        return sb_grant_files_load(ctx->pf, &ctx->files, &ctx->file_cnt,
                                   ctx->errstr, sizeof(ctx->errstr));
}

static int sb_grants_print_json(json_t *j, int flags)
{
        int rc = 0;

        if (!j || json_dumpf(j, stdout, flags) || putchar('\n') == EOF)
                rc = -1;
        json_decref(j);
        return rc;
}

/*
 * plan, apply
 */

static int sb_grants_plan_apply(sb_grants_ctx_t *ctx, const sb_grants_cli_t *o)
{
        int apply = !strcmp(o->action, "apply");
        size_t pending, drift;
        sb_grant_plan_t plan;
        int64_t now;
        int rc;

        if (sb_grants_load_files(ctx)) {
                if (apply)
                        strncat(ctx->errstr, "; nothing published",
                                sizeof(ctx->errstr) - strlen(ctx->errstr) - 1);
                return sb_grants_fail(ctx);
        }
        ctx->gs = sb_grantadm_new(&ctx->cfg, ctx->errstr, sizeof(ctx->errstr));
        if (!ctx->gs)
                return sb_grants_fail(ctx);
        /* The writer first: it ends any transaction an earlier apply left
         * open, so the read below sees its outcome. */
        if ((apply &&
             sb_grantadm_writer(ctx->gs, ctx->errstr, sizeof(ctx->errstr))) ||
            sb_grantadm_read(ctx->gs, &ctx->st, ctx->errstr,
                             sizeof(ctx->errstr)) ||
            sb_grants_plan(ctx->files, ctx->file_cnt, &ctx->st, &plan,
                           ctx->errstr, sizeof(ctx->errstr)))
                return sb_grants_fail(ctx);
        pending = sb_grant_plan_pending(&plan);
        drift = sb_grant_plan_drift(&plan);
        if (o->json) {
                if (sb_grants_print_json(sb_grant_plan_json(&plan),
                                         JSON_COMPACT | JSON_PRESERVE_ORDER))
                        fprintf(stderr, "sharebus admin grants: cannot "
                                        "write the plan\n");
        } else {
                sb_grant_plan_print(&plan, stdout);
        }
        rc = pending || drift ? SB_EXIT_DRIFT : SB_EXIT_OK;
        if (!apply)
                goto done;
        rc = drift ? SB_EXIT_DRIFT : SB_EXIT_OK;
        if (!pending) {
                if (!o->json && drift)
                        printf("nothing to apply; the %zu difference(s) "
                               "marked ! or ? above need a person\n",
                               drift);
                else if (!o->json)
                        printf("nothing to apply: %s matches the grant "
                               "files\n",
                               SB_GRANTS_TOPIC);
                goto done;
        }
        now = sb_now_ms();
        if (sb_grantadm_apply(ctx->gs, &plan, now, ctx->errstr,
                              sizeof(ctx->errstr))) {
                fprintf(stderr, "sharebus admin grants: %s\n", ctx->errstr);
                rc = SB_EXIT_ERROR;
                goto done;
        }
        if (!o->json)
                printf("applied: %zu grant version(s) published to %s and "
                       "%zu audit entr%s to %s, in one transaction\n",
                       pending, SB_GRANTS_TOPIC, pending,
                       pending == 1 ? "y" : "ies", SB_GRANTS_AUDIT_TOPIC);
done:
        sb_grant_plan_release(&plan);
        if (fflush(stdout))
                rc = SB_EXIT_ERROR;
        sb_grants_close(ctx);
        return rc;
}

/*
 * list, show
 */

static int sb_grants_version_cmp(const void *a, const void *b)
{
        return strcmp((*(const sb_grant_version_t *const *)a)->id,
                      (*(const sb_grant_version_t *const *)b)->id);
}

static const char *sb_grants_str(const sb_grant_version_t *v, const char *key)
{
        const char *s = v->kind == SB_GRANT_V_OBJECT
                            ? json_string_value(json_object_get(v->json, key))
                            : NULL;

        return s ? s : "-";
}

/* "a,b" from the grant's purposes; "-" when none. */
static void sb_grants_purposes(const sb_grant_version_t *v, char *out,
                               size_t size)
{
        const json_t *p = v->kind == SB_GRANT_V_OBJECT
                              ? json_object_get(v->json, "purposes")
                              : NULL;
        size_t i, len = 0;
        json_t *s;

        snprintf(out, size, "-");
        json_array_foreach((json_t *)p, i, s)
        {
                int n =
                    snprintf(out + len, size - len, "%s%s", i ? "," : "",
                             json_string_value(s) ? json_string_value(s) : "?");

                if (n < 0 || (size_t)n >= size - len)
                        break;
                len += (size_t)n;
        }
}

static json_t *sb_grants_version_json(const sb_grant_version_t *v, int full)
{
        const json_t *g = v->kind == SB_GRANT_V_OBJECT ? v->json : NULL;
        json_t *j;

        j = json_pack(
            "{s:s, s:s?, s:s?, s:s, s:s?, s:s?, s:O?, s:s?, s:s?, "
            "s:s?, s:i, s:I}",
            "id", v->id, "reuser",
            json_string_value(json_object_get(g, "reuser")), "dataset",
            json_string_value(json_object_get(g, "dataset")), "status",
            sb_grant_version_status(v), "valid_from",
            json_string_value(json_object_get(g, "valid_from")), "valid_until",
            json_string_value(json_object_get(g, "valid_until")), "purposes",
            json_object_get(g, "purposes"), "origin", v->origin, "changed_at",
            *v->changed_at ? v->changed_at : NULL, "source", v->source,
            "partition", (int)v->partition, "offset", (json_int_t)v->offset);
        if (j && full)
                json_object_set(j, "grant", g ? (json_t *)g : json_null());
        return j;
}

static int sb_grants_list(sb_grants_ctx_t *ctx, const sb_grants_cli_t *o)
{
        const sb_grant_version_t **vs = NULL;
        int w[7] = {2, 6, 7, 6, 5, 8, 4};
        char valid[128], purposes[256];
        int rc = SB_EXIT_OK;
        size_t i;

        if (!(ctx->gs = sb_grantadm_new(&ctx->cfg, ctx->errstr,
                                        sizeof(ctx->errstr))) ||
            sb_grantadm_read(ctx->gs, &ctx->st, ctx->errstr,
                             sizeof(ctx->errstr)))
                return sb_grants_fail(ctx);
        vs = calloc(ctx->st.cnt + 1, sizeof(*vs));
        if (!vs) {
                snprintf(ctx->errstr, sizeof(ctx->errstr), "out of memory");
                return sb_grants_fail(ctx);
        }
        for (i = 0; i < ctx->st.cnt; i++)
                vs[i] = &ctx->st.v[i];
        if (ctx->st.cnt)
                qsort(vs, ctx->st.cnt, sizeof(*vs), sb_grants_version_cmp);
        if (o->json) {
                for (i = 0; i < ctx->st.cnt && rc == SB_EXIT_OK; i++)
                        if (sb_grants_print_json(
                                sb_grants_version_json(vs[i], 0),
                                JSON_COMPACT | JSON_PRESERVE_ORDER))
                                rc = SB_EXIT_ERROR;
                goto done;
        }
        if (!ctx->st.cnt) {
                printf("no grant on %s ('sharebus admin grants apply' "
                       "publishes the grant files)\n",
                       SB_GRANTS_TOPIC);
                goto done;
        }
        for (i = 0; i < ctx->st.cnt; i++) {
                const sb_grant_version_t *v = vs[i];
                int l[7];
                int k;

                snprintf(valid, sizeof(valid), "%s..%s",
                         sb_grants_str(v, "valid_from"),
                         sb_grants_str(v, "valid_until"));
                sb_grants_purposes(v, purposes, sizeof(purposes));
                l[0] = (int)strlen(v->id);
                l[1] = (int)strlen(sb_grants_str(v, "reuser"));
                l[2] = (int)strlen(sb_grants_str(v, "dataset"));
                l[3] = (int)strlen(sb_grant_version_status(v));
                l[4] = (int)strlen(valid);
                l[5] = (int)strlen(purposes);
                l[6] = (int)strlen(v->origin ? v->origin : "-");
                for (k = 0; k < 7; k++)
                        if (l[k] > w[k])
                                w[k] = l[k];
        }
        printf("%-*s  %-*s  %-*s  %-*s  %-*s  %-*s  %-*s  %s\n", w[0], "ID",
               w[1], "REUSER", w[2], "DATASET", w[3], "STATUS", w[4], "VALID",
               w[5], "PURPOSES", w[6], "FILE", "CHANGED");
        for (i = 0; i < ctx->st.cnt; i++) {
                const sb_grant_version_t *v = vs[i];

                snprintf(valid, sizeof(valid), "%s..%s",
                         sb_grants_str(v, "valid_from"),
                         sb_grants_str(v, "valid_until"));
                sb_grants_purposes(v, purposes, sizeof(purposes));
                printf("%-*s  %-*s  %-*s  %-*s  %-*s  %-*s  %-*s  %s\n", w[0],
                       v->id, w[1], sb_grants_str(v, "reuser"), w[2],
                       sb_grants_str(v, "dataset"), w[3],
                       sb_grant_version_status(v), w[4], valid, w[5], purposes,
                       w[6], v->origin ? v->origin : "-",
                       *v->changed_at ? v->changed_at : "-");
        }
done:
        free(vs);
        if (fflush(stdout))
                rc = SB_EXIT_ERROR;
        sb_grants_close(ctx);
        return rc;
}

static int sb_grants_show(sb_grants_ctx_t *ctx, const sb_grants_cli_t *o)
{
        const sb_grant_version_t *v;
        int rc = SB_EXIT_OK;

        if (!(ctx->gs = sb_grantadm_new(&ctx->cfg, ctx->errstr,
                                        sizeof(ctx->errstr))) ||
            sb_grantadm_read(ctx->gs, &ctx->st, ctx->errstr,
                             sizeof(ctx->errstr)))
                return sb_grants_fail(ctx);
        v = sb_grant_state_get(&ctx->st, o->id);
        if (!v) {
                snprintf(ctx->errstr, sizeof(ctx->errstr),
                         "grant '%s' is not on %s ('sharebus admin grants "
                         "list' shows what is; 'apply' publishes the grant "
                         "files)",
                         o->id, SB_GRANTS_TOPIC);
                return sb_grants_fail(ctx);
        }
        if (o->json) {
                if (sb_grants_print_json(sb_grants_version_json(v, 1),
                                         JSON_COMPACT | JSON_PRESERVE_ORDER))
                        rc = SB_EXIT_ERROR;
        } else {
                printf("grant %s on %s (partition %" PRId32 ", offset %" PRId64
                       "): %s, changed %s by %s, from "
                       "file %s\n",
                       v->id, SB_GRANTS_TOPIC, v->partition, v->offset,
                       sb_grant_version_status(v),
                       *v->changed_at ? v->changed_at : "(time unknown)",
                       v->source ? v->source : "(unknown)",
                       v->origin ? v->origin : "(unknown)");
                if (v->kind == SB_GRANT_V_OBJECT) {
                        if (sb_grants_print_json(json_incref(v->json),
                                                 JSON_INDENT(2) |
                                                     JSON_SORT_KEYS))
                                rc = SB_EXIT_ERROR;
                } else if (v->kind == SB_GRANT_V_TOMBSTONE) {
                        printf("(a tombstone: no value; the gateway takes "
                               "the grant for revoked)\n");
                } else {
                        printf("(a value that is not a JSON object: the "
                               "gateway shares nothing with it)\n");
                }
        }
        if (fflush(stdout))
                rc = SB_EXIT_ERROR;
        sb_grants_close(ctx);
        return rc;
}

/*
 * revoke
 */

static int sb_grants_revoke(sb_grants_ctx_t *ctx, const sb_grants_cli_t *o)
{
        const sb_grant_version_t *v;
        const char *origin;
        sb_grant_pub_t pub;
        json_t *revoked = NULL;
        char at[32];
        int already = 0;
        int64_t now;

        if (!(ctx->gs = sb_grantadm_new(&ctx->cfg, ctx->errstr,
                                        sizeof(ctx->errstr))) ||
            sb_grantadm_writer(ctx->gs, ctx->errstr, sizeof(ctx->errstr)) ||
            sb_grantadm_read(ctx->gs, &ctx->st, ctx->errstr,
                             sizeof(ctx->errstr)))
                return sb_grants_fail(ctx);
        v = sb_grant_state_get(&ctx->st, o->id);
        if (!v || v->kind == SB_GRANT_V_UNREADABLE) {
                /* Never published (or unreadable): its file, if any. */
                if (sb_grants_load_files(ctx)) {
                        char why[sizeof(ctx->errstr)];

                        snprintf(why, sizeof(why), "%s", ctx->errstr);
                        snprintf(ctx->errstr, sizeof(ctx->errstr),
                                 "grant '%s' is not on %s and the grant "
                                 "files cannot be read: %.700s; nothing "
                                 "revoked",
                                 o->id, SB_GRANTS_TOPIC, why);
                        return sb_grants_fail(ctx);
                }
        }
        if (sb_grant_revocation(o->id, &ctx->st, ctx->files, ctx->file_cnt,
                                &revoked, &origin, &already, ctx->errstr,
                                sizeof(ctx->errstr)))
                return sb_grants_fail(ctx);
        if (already) {
                printf("grant %s is already revoked on %s (changed %s); "
                       "nothing published\n",
                       o->id, SB_GRANTS_TOPIC,
                       *v->changed_at ? v->changed_at : "at an unknown time");
                sb_grants_close(ctx);
                return SB_EXIT_OK;
        }
        now = sb_now_ms();
        pub.id = o->id;
        pub.json = revoked;
        pub.origin = origin;
        pub.change = "revoked";
        if (sb_grantadm_publish(ctx->gs, &pub, 1, now, ctx->errstr,
                                sizeof(ctx->errstr))) {
                json_decref(revoked);
                return sb_grants_fail(ctx);
        }
        sb_time_format(now, at);
        printf("revoked grant %s (reuser %s, dataset %s) on %s at %s, with "
               "an audit entry on %s; the gateway stops sharing it when it "
               "reads the change\n",
               o->id,
               json_string_value(json_object_get(revoked, "reuser"))
                   ? json_string_value(json_object_get(revoked, "reuser"))
                   : "?",
               json_string_value(json_object_get(revoked, "dataset"))
                   ? json_string_value(json_object_get(revoked, "dataset"))
                   : "?",
               SB_GRANTS_TOPIC, at, SB_GRANTS_AUDIT_TOPIC);
        printf("next: set \"status\": \"revoked\" in %s%s%s (or remove the "
               "file), then run 'sharebus admin acls apply' to remove the "
               "reuser's read access\n",
               origin ? "'" : "the grant's file", origin ? origin : "",
               origin ? "'" : "");
        json_decref(revoked);
        sb_grants_close(ctx);
        return SB_EXIT_OK;
}

int sb_admin_cmd_grants(int argc, char **argv)
{
        static const char *const actions[] = {"plan", "apply",  "list",
                                              "show", "revoke", NULL};
        sb_grants_cli_t o;
        sb_grants_ctx_t ctx;
        char why[300];
        int i, r;

        if (argc < 2)
                return sb_grants_usage("missing action (plan, apply, list, "
                                       "show or revoke)");
        if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))
                return sb_grants_usage(NULL);
        if (!strcmp(argv[1], "notify"))
                return sb_admin_grants_notify(argc, argv);
        for (i = 0; actions[i]; i++)
                if (!strcmp(actions[i], argv[1]))
                        break;
        if (!actions[i]) {
                snprintf(why, sizeof(why),
                         "unknown action '%.64s'; the actions are plan, "
                         "apply, list, show, revoke and notify",
                         argv[1]);
                return sb_grants_usage(why);
        }
        memset(&o, 0, sizeof(o));
        o.action = argv[1];
        if ((r = sb_grants_parse(argc, argv, &o)))
                return r > 0 ? SB_EXIT_OK : SB_EXIT_USAGE;
        memset(&ctx, 0, sizeof(ctx));
        ctx.cfg_loaded = 1; /* released in every case, loaded or not */
        if (sb_config_load(o.config, sb_admin_cfg_table, &ctx.cfg, ctx.errstr,
                           sizeof(ctx.errstr)))
                return sb_grants_fail(&ctx);
        if (!strcmp(o.action, "plan") || !strcmp(o.action, "apply"))
                return sb_grants_plan_apply(&ctx, &o);
        if (!strcmp(o.action, "list"))
                return sb_grants_list(&ctx, &o);
        if (!strcmp(o.action, "show"))
                return sb_grants_show(&ctx, &o);
        return sb_grants_revoke(&ctx, &o);
}
