/* sharebus admin topics|acls plan|apply: reconcile the cluster with the
 * platform declaration and the grants. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "acls.h"
#include "auditlog.h"
#include "cli.h"
#include "kadmin.h"
#include "log.h"
#include "platform.h"
#include "topics.h"

static int sb_platform_usage(const char *what, const char *why)
{
        FILE *fp = why ? stderr : stdout;

        if (why)
                fprintf(fp, "sharebus admin %s: %s\n\n", what, why);
        fprintf(fp,
                "usage: sharebus admin %s plan|apply --config ADMIN.json\n"
                "\n"
                "plan   compares what the platform declaration and the grants "
                "imply with\n"
                "       the cluster, prints the difference, changes nothing; "
                "exit 0 when in\n"
                "       sync, 6 when there is a difference to review\n"
                "apply  makes the changes, then plans again; a second apply "
                "changes nothing\n",
                what);
        return why ? SB_EXIT_USAGE : SB_EXIT_OK;
}

typedef struct sb_admin_ctx_s {
        sb_admin_cfg_t cfg;
        sb_platform_t *pf;
        sb_kadmin_t *ka;
        char errstr[1024];
} sb_admin_ctx_t;

/* Parses "plan|apply --config F", loads everything; returns -1 on usage. */
static int sb_admin_open(sb_admin_ctx_t *ctx, const char *what, int argc,
                         char **argv, int *apply)
{
        static const struct option opts[] = {
            {"config", required_argument, NULL, 'c'},
            {"help", no_argument, NULL, 'h'},
            {NULL, 0, NULL, 0},
        };
        const char *config = NULL;
        int opt;

        memset(ctx, 0, sizeof(*ctx));
        if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))
                return sb_platform_usage(what, argc < 2 ? "missing action"
                                                        : NULL) == SB_EXIT_OK
                           ? 1
                           : -1;
        if (strcmp(argv[1], "plan") && strcmp(argv[1], "apply")) {
                sb_platform_usage(what, "action must be plan or apply");
                return -1;
        }
        *apply = !strcmp(argv[1], "apply");
        optind = 2;
        while ((opt = getopt_long(argc, argv, "c:hvd:", opts, NULL)) != -1) {
                switch (opt) {
                case 'c':
                        config = optarg;
                        break;
                case 'h':
                        sb_platform_usage(what, NULL);
                        return 1;
                default:
                        if (!sb_cli_log_option(opt, optarg)) {
                                sb_platform_usage(what, "unknown option");
                                return -1;
                        }
                }
        }
        if (!config || optind < argc) {
                sb_platform_usage(what, "--config ADMIN.json is required");
                return -1;
        }
        if (sb_config_load(config, sb_admin_cfg_table, &ctx->cfg, ctx->errstr,
                           sizeof(ctx->errstr)))
                return 0;
        ctx->pf = sb_platform_load(ctx->cfg.platform, ctx->errstr,
                                   sizeof(ctx->errstr));
        if (!ctx->pf)
                return 0;
        ctx->ka = sb_kadmin_new(&ctx->cfg.kafka, ctx->cfg.client_id,
                                (int)ctx->cfg.timeout_ms, ctx->errstr,
                                sizeof(ctx->errstr));
        return 0;
}

static void sb_admin_close(sb_admin_ctx_t *ctx)
{
        sb_kadmin_destroy(ctx->ka);
        sb_platform_destroy(ctx->pf);
        sb_config_release(sb_admin_cfg_table, &ctx->cfg);
}

int sb_admin_cmd_topics(int argc, char **argv)
{
        sb_topic_plan_t plan;
        sb_admin_ctx_t ctx;
        int apply = 0, rc, r;
        size_t i, conflicts = 0;

        r = sb_admin_open(&ctx, "topics", argc, argv, &apply);
        if (r) {
                sb_admin_close(&ctx);
                return r > 0 ? SB_EXIT_OK : SB_EXIT_USAGE;
        }
        if (!ctx.ka || sb_topics_plan(ctx.ka, ctx.pf, &plan, ctx.errstr,
                                      sizeof(ctx.errstr))) {
                fprintf(stderr, "sharebus admin topics: %s\n", ctx.errstr);
                sb_admin_close(&ctx);
                return SB_EXIT_ERROR;
        }
        sb_topic_plan_print(&plan, stdout);
        rc = SB_EXIT_OK;
        if (apply && sb_topic_plan_pending(&plan)) {
                if (sb_topics_apply(ctx.ka, &plan, ctx.errstr,
                                    sizeof(ctx.errstr))) {
                        fprintf(stderr, "sharebus admin topics: %s\n",
                                ctx.errstr);
                        rc = SB_EXIT_ERROR;
                } else {
                        sb_topic_plan_release(&plan);
                        if (sb_topics_plan(ctx.ka, ctx.pf, &plan, ctx.errstr,
                                           sizeof(ctx.errstr))) {
                                fprintf(stderr, "sharebus admin topics: %s\n",
                                        ctx.errstr);
                                sb_admin_close(&ctx);
                                return SB_EXIT_ERROR;
                        }
                        printf("applied; now:\n");
                        sb_topic_plan_print(&plan, stdout);
                }
        }
        for (i = 0; i < plan.change_cnt; i++)
                conflicts += plan.changes[i].action == SB_TOPIC_CONFLICT ||
                             plan.changes[i].action == SB_TOPIC_UNDECLARED;
        if (rc == SB_EXIT_OK && (sb_topic_plan_pending(&plan) || conflicts))
                rc = SB_EXIT_DRIFT;
        sb_topic_plan_release(&plan);
        sb_admin_close(&ctx);
        return rc;
}

static sb_err_t sb_admin_acl_plan(sb_admin_ctx_t *ctx, sb_acl_plan_t *plan)
{
        sb_acl_set_t desired = {0}, actual = {0};
        sb_err_t err;

        err = sb_acls_desired(ctx->pf, &desired, ctx->errstr,
                              sizeof(ctx->errstr));
        if (!err)
                err = sb_acls_describe(ctx->ka, &actual, ctx->errstr,
                                       sizeof(ctx->errstr));
        if (!err)
                err = sb_acls_plan(&desired, &actual, plan, ctx->errstr,
                                   sizeof(ctx->errstr));
        sb_acl_set_release(&desired);
        sb_acl_set_release(&actual);
        return err;
}

/* The transactional id, and audit chain id, of `admin acls apply`. */
#define SB_ACLS_TXN_ID "sb-admin-acls"

/*
 * One chained acl.change entry on _sb.audit per ACL `plan` created or
 * deleted (CNIL R4.3-12: who changed which access, when), written once
 * the Admin API made the changes: they are not Kafka messages, so they
 * cannot share a transaction with their entries.
 */
static sb_err_t sb_admin_acl_audit(sb_admin_ctx_t *ctx,
                                   const sb_acl_plan_t *plan)
{
        json_t *entries = json_array();
        sb_auditlog_t *al = NULL;
        char author[300];
        sb_err_t err = SB_OK;
        size_t i;

        snprintf(author, sizeof(author), "sharebus://admin/%s",
                 ctx->cfg.client_id);
        for (i = 0; entries && i < plan->create.cnt; i++)
                if (json_array_append_new(
                        entries, sb_acl_audit_entry(author, &plan->create.v[i],
                                                    "created")))
                        break;
        for (i = 0; entries && i < plan->remove.cnt; i++)
                if (json_array_append_new(
                        entries, sb_acl_audit_entry(author, &plan->remove.v[i],
                                                    "deleted")))
                        break;
        if (json_array_size(entries) != plan->create.cnt + plan->remove.cnt)
                err = sb_seterr(ctx->errstr, sizeof(ctx->errstr), SB_ERR_NOMEM,
                                "out of memory");
        if (!err && !(al = sb_auditlog_new(&ctx->cfg, SB_ACLS_TXN_ID,
                                           ctx->errstr, sizeof(ctx->errstr))))
                err = SB_ERR_KAFKA;
        if (!err)
                err = sb_auditlog_write(al, entries, ctx->errstr,
                                        sizeof(ctx->errstr));
        sb_auditlog_destroy(al);
        json_decref(entries);
        return err;
}

int sb_admin_cmd_acls(int argc, char **argv)
{
        sb_acl_plan_t plan;
        sb_admin_ctx_t ctx;
        int apply = 0, rc = SB_EXIT_OK, r;

        r = sb_admin_open(&ctx, "acls", argc, argv, &apply);
        if (r) {
                sb_admin_close(&ctx);
                return r > 0 ? SB_EXIT_OK : SB_EXIT_USAGE;
        }
        if (!ctx.ka || sb_admin_acl_plan(&ctx, &plan)) {
                fprintf(stderr, "sharebus admin acls: %s\n", ctx.errstr);
                sb_admin_close(&ctx);
                return SB_EXIT_ERROR;
        }
        sb_acl_plan_print(&plan, stdout);
        if (apply && (plan.create.cnt || plan.remove.cnt)) {
                if (sb_acls_apply(ctx.ka, &plan, ctx.errstr,
                                  sizeof(ctx.errstr))) {
                        fprintf(stderr, "sharebus admin acls: %s\n",
                                ctx.errstr);
                        sb_acl_plan_release(&plan);
                        sb_admin_close(&ctx);
                        return SB_EXIT_ERROR;
                }
                sb_log(SB_LOG_NOTICE, "ADMIN",
                       "ACLs applied: %zu created, %zu deleted",
                       plan.create.cnt, plan.remove.cnt);
                if (sb_admin_acl_audit(&ctx, &plan)) {
                        fprintf(stderr,
                                "sharebus admin acls: the ACLs were applied, "
                                "but their acl.change entries are not on "
                                "_sb.audit: %s\n",
                                ctx.errstr);
                        sb_acl_plan_release(&plan);
                        sb_admin_close(&ctx);
                        return SB_EXIT_ERROR;
                }
                sb_acl_plan_release(&plan);
                if (sb_admin_acl_plan(&ctx, &plan)) {
                        fprintf(stderr, "sharebus admin acls: %s\n",
                                ctx.errstr);
                        sb_admin_close(&ctx);
                        return SB_EXIT_ERROR;
                }
                printf("applied; now:\n");
                sb_acl_plan_print(&plan, stdout);
        }
        if (plan.create.cnt || plan.remove.cnt || plan.unmanaged.cnt ||
            plan.external.cnt || plan.external_stale.cnt)
                rc = SB_EXIT_DRIFT;
        sb_acl_plan_release(&plan);
        sb_admin_close(&ctx);
        return rc;
}
