#include "acls.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "envelope.h"

#define ALLOW RD_KAFKA_ACL_PERMISSION_TYPE_ALLOW
#define LIT   RD_KAFKA_RESOURCE_PATTERN_LITERAL
#define PREF  RD_KAFKA_RESOURCE_PATTERN_PREFIXED
#define TOPIC RD_KAFKA_RESOURCE_TOPIC
#define GROUP RD_KAFKA_RESOURCE_GROUP
#define TXNID SB_ACL_RESOURCE_TRANSACTIONAL_ID

void sb_acl_set_release(sb_acl_set_t *set)
{
        size_t i;

        for (i = 0; i < set->cnt; i++) {
                free(set->v[i].name);
                free(set->v[i].principal);
                free(set->v[i].host);
        }
        free(set->v);
        memset(set, 0, sizeof(*set));
}

static int sb_acl_eq(const sb_acl_t *a, const sb_acl_t *b)
{
        return a->restype == b->restype && a->pattern == b->pattern &&
               a->op == b->op && a->perm == b->perm &&
               !strcmp(a->name, b->name) &&
               !strcmp(a->principal, b->principal) && !strcmp(a->host, b->host);
}

static int sb_acl_set_has(const sb_acl_set_t *set, const sb_acl_t *acl)
{
        size_t i;

        for (i = 0; i < set->cnt; i++)
                if (sb_acl_eq(&set->v[i], acl))
                        return 1;
        return 0;
}

static sb_err_t sb_acl_set_push(sb_acl_set_t *set, const sb_acl_t *acl)
{
        return sb_acl_set_add(set, acl->restype, acl->name, acl->pattern,
                              acl->principal, acl->host, acl->op, acl->perm);
}

sb_err_t sb_acl_set_add(sb_acl_set_t *set, rd_kafka_ResourceType_t restype,
                        const char *name,
                        rd_kafka_ResourcePatternType_t pattern,
                        const char *principal, const char *host,
                        rd_kafka_AclOperation_t op,
                        rd_kafka_AclPermissionType_t perm)
{
        sb_acl_t acl = {restype,      (char *)name, pattern, (char *)principal,
                        (char *)host, op,           perm};
        sb_acl_t *a;

        if (sb_acl_set_has(set, &acl))
                return SB_OK;
        if (set->cnt == set->cap) {
                size_t cap = set->cap ? set->cap * 2 : 32;
                sb_acl_t *v = realloc(set->v, cap * sizeof(*v));

                if (!v)
                        return SB_ERR_NOMEM;
                set->v = v;
                set->cap = cap;
        }
        a = &set->v[set->cnt];
        a->restype = restype;
        a->pattern = pattern;
        a->op = op;
        a->perm = perm;
        a->name = strdup(name);
        a->principal = strdup(principal);
        a->host = strdup(host);
        if (!a->name || !a->principal || !a->host) {
                free(a->name);
                free(a->principal);
                free(a->host);
                return SB_ERR_NOMEM;
        }
        set->cnt++;
        return SB_OK;
}

void sb_acl_format(const sb_acl_t *acl, char *buf, size_t size)
{
        snprintf(buf, size, "%s %s %s %s %s (%s) from %s",
                 rd_kafka_AclPermissionType_name(acl->perm), acl->principal,
                 rd_kafka_AclOperation_name(acl->op),
                 acl->restype == SB_ACL_RESOURCE_TRANSACTIONAL_ID
                     ? "TransactionalId"
                     : rd_kafka_ResourceType_name(acl->restype),
                 acl->name, rd_kafka_ResourcePatternType_name(acl->pattern),
                 acl->host);
}

/* Adds `ops` (terminated by UNKNOWN) on one resource for each principal,
 * from each of `hosts` (all hosts when NULL or empty). */
static sb_err_t sb_acls_for(sb_acl_set_t *out, const json_t *principals,
                            rd_kafka_ResourceType_t restype, const char *name,
                            rd_kafka_ResourcePatternType_t pattern,
                            const json_t *hosts,
                            const rd_kafka_AclOperation_t *ops)
{
        const json_t *p, *h;
        size_t i, j, k;
        char user[300];

        json_array_foreach(principals, i, p)
        {
                snprintf(user, sizeof(user), "User:%s", json_string_value(p));
                for (k = 0; ops[k] != RD_KAFKA_ACL_OPERATION_UNKNOWN; k++) {
                        if (!hosts || json_array_size(hosts) == 0) {
                                if (sb_acl_set_add(out, restype, name, pattern,
                                                   user, "*", ops[k], ALLOW))
                                        return SB_ERR_NOMEM;
                                continue;
                        }
                        json_array_foreach(hosts, j, h)
                        {
                                if (sb_acl_set_add(out, restype, name, pattern,
                                                   user, json_string_value(h),
                                                   ops[k], ALLOW))
                                        return SB_ERR_NOMEM;
                        }
                }
        }
        return SB_OK;
}

json_t *sb_acl_audit_entry(const char *author, const sb_acl_t *acl,
                           const char *change)
{
        return json_pack(
            "{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "op",
            "acl.change", "author", author, "change", change, "principal",
            acl->principal, "resource_type",
            rd_kafka_ResourceType_name(acl->restype), "resource_name",
            acl->name, "pattern",
            rd_kafka_ResourcePatternType_name(acl->pattern), "operation",
            rd_kafka_AclOperation_name(acl->op), "permission",
            rd_kafka_AclPermissionType_name(acl->perm), "host", acl->host);
}

static const rd_kafka_AclOperation_t sb_ops_read[] = {
    RD_KAFKA_ACL_OPERATION_READ, RD_KAFKA_ACL_OPERATION_DESCRIBE,
    RD_KAFKA_ACL_OPERATION_UNKNOWN};
static const rd_kafka_AclOperation_t sb_ops_write[] = {
    RD_KAFKA_ACL_OPERATION_WRITE, RD_KAFKA_ACL_OPERATION_DESCRIBE,
    RD_KAFKA_ACL_OPERATION_UNKNOWN};
static const rd_kafka_AclOperation_t sb_ops_rw[] = {
    RD_KAFKA_ACL_OPERATION_READ, RD_KAFKA_ACL_OPERATION_WRITE,
    RD_KAFKA_ACL_OPERATION_DESCRIBE, RD_KAFKA_ACL_OPERATION_UNKNOWN};
/* WRITE on a transactional id implies DESCRIBE. */
static const rd_kafka_AclOperation_t sb_ops_txn[] = {
    RD_KAFKA_ACL_OPERATION_WRITE, RD_KAFKA_ACL_OPERATION_UNKNOWN};
static const rd_kafka_AclOperation_t sb_ops_group[] = {
    RD_KAFKA_ACL_OPERATION_READ, RD_KAFKA_ACL_OPERATION_UNKNOWN};

sb_err_t sb_acls_desired(const sb_platform_t *pf, sb_acl_set_t *out,
                         char *errstr, size_t errstr_size)
{
        const json_t *gw = pf->gateway;
        char name[512];
        const char *k;
        json_t *v;
        size_t i;
        int fail = 0;

        json_object_foreach(pf->datasets, k, v)
        {
                const json_t *holders = json_object_get(v, "holders");

                snprintf(name, sizeof(name), "sb.in.%s", k);
                fail |= sb_acls_for(out, holders, TOPIC, name, LIT, NULL,
                                    sb_ops_write);
                fail |=
                    sb_acls_for(out, gw, TOPIC, name, LIT, NULL, sb_ops_read);
                snprintf(name, sizeof(name), "sb-holder-%s", k);
                fail |= sb_acls_for(out, holders, TXNID, name, LIT, NULL,
                                    sb_ops_txn);
                snprintf(name, sizeof(name), "_sb.state.%s", k);
                fail |= sb_acls_for(out, gw, TOPIC, name, LIT, NULL, sb_ops_rw);
        }
        fail |=
            sb_acls_for(out, gw, GROUP, "sb-gateway", LIT, NULL, sb_ops_group);
        fail |=
            sb_acls_for(out, gw, TXNID, "sb-gateway-", PREF, NULL, sb_ops_txn);
        fail |= sb_acls_for(out, gw, TOPIC, "_sb.quarantine", LIT, NULL,
                            sb_ops_write);
        /* READ too: the gateway reads _sb.audit only to resume its own
         * hash chain after a restart (common/audit_kafka.h). */
        fail |= sb_acls_for(out, gw, TOPIC, "_sb.audit", LIT, NULL, sb_ops_rw);
        fail |=
            sb_acls_for(out, gw, TOPIC, "_sb.alerts", LIT, NULL, sb_ops_write);
        fail |=
            sb_acls_for(out, gw, TOPIC, "_sb.grants", LIT, NULL, sb_ops_read);
        /* The grants' hold topics: records over a rate wait there. */
        fail |= sb_acls_for(out, gw, TOPIC, "_sb.hold.", PREF, NULL, sb_ops_rw);

        if (pf->reusers) {
                json_object_foreach(pf->reusers, k, v)
                {
                        const json_t *ps = json_object_get(v, "principals");

                        snprintf(name, sizeof(name), "sb.ack.%s", k);
                        fail |= sb_acls_for(out, ps, TOPIC, name, LIT, NULL,
                                            sb_ops_write);
                        fail |= sb_acls_for(out, gw, TOPIC, name, LIT, NULL,
                                            sb_ops_read);
                        snprintf(name, sizeof(name), "sb.notice.%s", k);
                        fail |= sb_acls_for(out, ps, TOPIC, name, LIT, NULL,
                                            sb_ops_read);
                        fail |= sb_acls_for(out, gw, TOPIC, name, LIT, NULL,
                                            sb_ops_write);
                }
        }
        for (i = 0; i < pf->grant_cnt; i++) {
                const sb_grant_t *g = pf->grants[i];
                const json_t *ps = json_object_get(
                    json_object_get(pf->reusers, g->reuser), "principals");

                /* The gateway may write every output: a suspended grant's
                 * stream still receives erasures for what it holds. */
                fail |= sb_acls_for(out, gw, TOPIC, g->topic, LIT, NULL,
                                    sb_ops_write);
                if (strcmp(g->status, "approved"))
                        continue;
                fail |= sb_acls_for(out, ps, TOPIC, g->topic, LIT,
                                    g->allowed_ips, sb_ops_read);
                snprintf(name, sizeof(name), "sb-reuser-%s", g->reuser);
                fail |= sb_acls_for(out, ps, GROUP, name, LIT, g->allowed_ips,
                                    sb_ops_group);
        }
        if (fail)
                return sb_seterr(errstr, errstr_size, SB_ERR_NOMEM,
                                 "out of memory");
        return SB_OK;
}

sb_err_t sb_acls_describe(sb_kadmin_t *ka, sb_acl_set_t *out, char *errstr,
                          size_t errstr_size)
{
        rd_kafka_AclBindingFilter_t *filter;
        rd_kafka_AdminOptions_t *opts;
        const rd_kafka_AclBinding_t **acls;
        rd_kafka_event_t *ev;
        char kerr[256];
        size_t n, i;
        sb_err_t err = SB_OK;

        filter = rd_kafka_AclBindingFilter_new(
            RD_KAFKA_RESOURCE_ANY, NULL, RD_KAFKA_RESOURCE_PATTERN_ANY, NULL,
            NULL, RD_KAFKA_ACL_OPERATION_ANY, RD_KAFKA_ACL_PERMISSION_TYPE_ANY,
            kerr, sizeof(kerr));
        if (!filter)
                return sb_seterr(errstr, errstr_size, SB_ERR_KAFKA,
                                 "admin: describe ACLs: %s", kerr);
        opts = sb_kadmin_options(ka, RD_KAFKA_ADMIN_OP_DESCRIBEACLS);
        rd_kafka_DescribeAcls(ka->rk, filter, opts, ka->q);
        rd_kafka_AdminOptions_destroy(opts);
        rd_kafka_AclBinding_destroy(filter);
        ev = sb_kadmin_wait(ka, RD_KAFKA_EVENT_DESCRIBEACLS_RESULT,
                            "describe ACLs", errstr, errstr_size);
        if (!ev)
                return SB_ERR_KAFKA;
        acls = rd_kafka_DescribeAcls_result_acls(
            rd_kafka_event_DescribeAcls_result(ev), &n);
        /* librdkafka 2.0.2 reports the resource types it does not know
         * (TransactionalId 5, DelegationToken 6, User 7) as UNKNOWN. Of
         * those sharebus only ever creates TransactionalId ACLs, so an
         * UNKNOWN one is taken for that; the plan only prints commands for
         * them, it never acts on them. */
        for (i = 0; i < n && !err; i++)
                err = sb_acl_set_add(
                    out,
                    rd_kafka_AclBinding_restype(acls[i]) ==
                            RD_KAFKA_RESOURCE_UNKNOWN
                        ? SB_ACL_RESOURCE_TRANSACTIONAL_ID
                        : rd_kafka_AclBinding_restype(acls[i]),
                    rd_kafka_AclBinding_name(acls[i]),
                    rd_kafka_AclBinding_resource_pattern_type(acls[i]),
                    rd_kafka_AclBinding_principal(acls[i]),
                    rd_kafka_AclBinding_host(acls[i]),
                    rd_kafka_AclBinding_operation(acls[i]),
                    rd_kafka_AclBinding_permission_type(acls[i]));
        rd_kafka_event_destroy(ev);
        if (err)
                return sb_seterr(errstr, errstr_size, err, "out of memory");
        return SB_OK;
}

/* Principals sharebus issues carry a credential generation. */
static int sb_acl_managed(const sb_acl_t *acl)
{
        return !strncmp(acl->principal, "User:", 5) &&
               sb_principal_is_generational(acl->principal + 5);
}

sb_err_t sb_acls_plan(const sb_acl_set_t *desired, const sb_acl_set_t *actual,
                      sb_acl_plan_t *plan, char *errstr, size_t errstr_size)
{
        size_t i;
        sb_err_t err = SB_OK;

        memset(plan, 0, sizeof(*plan));
        plan->desired_cnt = desired->cnt;
        plan->present_cnt = actual->cnt;
        for (i = 0; i < desired->cnt && !err; i++) {
                if (sb_acl_set_has(actual, &desired->v[i]))
                        continue;
                err = sb_acl_set_push(desired->v[i].restype ==
                                              SB_ACL_RESOURCE_TRANSACTIONAL_ID
                                          ? &plan->external
                                          : &plan->create,
                                      &desired->v[i]);
        }
        for (i = 0; i < actual->cnt && !err; i++) {
                const sb_acl_t *a = &actual->v[i];

                if (sb_acl_set_has(desired, a))
                        continue;
                if (!sb_acl_managed(a))
                        err = sb_acl_set_push(&plan->unmanaged, a);
                else if (a->restype == SB_ACL_RESOURCE_TRANSACTIONAL_ID)
                        err = sb_acl_set_push(&plan->external_stale, a);
                else
                        err = sb_acl_set_push(&plan->remove, a);
        }
        if (err)
                return sb_seterr(errstr, errstr_size, err, "out of memory");
        return SB_OK;
}

void sb_acl_plan_release(sb_acl_plan_t *plan)
{
        sb_acl_set_release(&plan->create);
        sb_acl_set_release(&plan->remove);
        sb_acl_set_release(&plan->unmanaged);
        sb_acl_set_release(&plan->external);
        sb_acl_set_release(&plan->external_stale);
}

static void sb_acl_print_kafka_acls(FILE *fp, const sb_acl_set_t *set,
                                    const char *action)
{
        size_t i;

        for (i = 0; i < set->cnt; i++) {
                const sb_acl_t *a = &set->v[i];

                fprintf(fp,
                        "  kafka-acls.sh --bootstrap-server ... %s "
                        "--allow-principal %s --operation %s "
                        "--transactional-id %s%s\n",
                        action, a->principal, rd_kafka_AclOperation_name(a->op),
                        a->name,
                        a->pattern == PREF ? " --resource-pattern-type "
                                             "prefixed"
                                           : "");
        }
}

void sb_acl_plan_print(const sb_acl_plan_t *plan, FILE *fp)
{
        char buf[1024];
        size_t i;

        fprintf(fp,
                "ACLs: %zu desired, %zu present; %zu to create, %zu to "
                "delete, %zu not created by sharebus\n",
                plan->desired_cnt, plan->present_cnt, plan->create.cnt,
                plan->remove.cnt, plan->unmanaged.cnt);
        for (i = 0; i < plan->create.cnt; i++) {
                sb_acl_format(&plan->create.v[i], buf, sizeof(buf));
                fprintf(fp, "  + %s\n", buf);
        }
        for (i = 0; i < plan->remove.cnt; i++) {
                sb_acl_format(&plan->remove.v[i], buf, sizeof(buf));
                fprintf(fp, "  - %s   (no grant or role implies it)\n", buf);
        }
        for (i = 0; i < plan->unmanaged.cnt; i++) {
                sb_acl_format(&plan->unmanaged.v[i], buf, sizeof(buf));
                fprintf(fp,
                        "  ! %s   (not created by sharebus: left in place, "
                        "review it)\n",
                        buf);
        }
        if (plan->external.cnt || plan->external_stale.cnt)
                fprintf(fp, "Transactional-id ACLs: librdkafka 2.0.2 cannot "
                            "manage this resource type; run Kafka's "
                            "kafka-acls.sh:\n");
        sb_acl_print_kafka_acls(fp, &plan->external, "--add");
        sb_acl_print_kafka_acls(fp, &plan->external_stale, "--remove");
}

static rd_kafka_AclBinding_t *sb_acl_binding(const sb_acl_t *a, char *kerr,
                                             size_t size)
{
        return rd_kafka_AclBinding_new(a->restype, a->name, a->pattern,
                                       a->principal, a->host, a->op, a->perm,
                                       kerr, size);
}

/*
 * CreateAcls and DeleteAcls answer once the controller has the change; the
 * broker that answers DescribeAcls (and authorises fetches) may show it a
 * moment later. apply returns only when the change is visible, so that a
 * plan right after it, or a revocation, means what it says.
 */
static sb_err_t sb_acls_wait_visible(sb_kadmin_t *ka, const sb_acl_plan_t *plan,
                                     char *errstr, size_t errstr_size)
{
        int64_t deadline = sb_now_ms() + ka->timeout_ms;
        sb_err_t err;
        size_t i;

        for (;;) {
                sb_acl_set_t actual = {0};
                int done = 1;

                if ((err = sb_acls_describe(ka, &actual, errstr, errstr_size)))
                        return err;
                for (i = 0; done && i < plan->create.cnt; i++)
                        done = sb_acl_set_has(&actual, &plan->create.v[i]);
                for (i = 0; done && i < plan->remove.cnt; i++)
                        done = !sb_acl_set_has(&actual, &plan->remove.v[i]);
                sb_acl_set_release(&actual);
                if (done)
                        return SB_OK;
                if (sb_now_ms() >= deadline)
                        return sb_seterr(errstr, errstr_size, SB_ERR_KAFKA,
                                         "admin: the ACL changes were made "
                                         "but the broker did not show them "
                                         "within %d ms",
                                         ka->timeout_ms);
                usleep(100000);
        }
}

sb_err_t sb_acls_apply(sb_kadmin_t *ka, const sb_acl_plan_t *plan, char *errstr,
                       size_t errstr_size)
{
        rd_kafka_AdminOptions_t *opts;
        rd_kafka_event_t *ev;
        char kerr[256], buf[1024];
        size_t i, n;

        if (plan->create.cnt) {
                rd_kafka_AclBinding_t **b =
                    calloc(plan->create.cnt, sizeof(*b));
                const rd_kafka_acl_result_t **res;

                if (!b)
                        return sb_seterr(errstr, errstr_size, SB_ERR_NOMEM,
                                         "out of memory");
                for (i = 0; i < plan->create.cnt; i++) {
                        b[i] = sb_acl_binding(&plan->create.v[i], kerr,
                                              sizeof(kerr));
                        if (!b[i]) {
                                sb_acl_format(&plan->create.v[i], buf,
                                              sizeof(buf));
                                rd_kafka_AclBinding_destroy_array(b, i);
                                free(b);
                                return sb_seterr(
                                    errstr, errstr_size, SB_ERR_KAFKA,
                                    "admin: ACL '%s': %s", buf, kerr);
                        }
                }
                opts = sb_kadmin_options(ka, RD_KAFKA_ADMIN_OP_CREATEACLS);
                rd_kafka_CreateAcls(ka->rk, b, plan->create.cnt, opts, ka->q);
                rd_kafka_AdminOptions_destroy(opts);
                rd_kafka_AclBinding_destroy_array(b, plan->create.cnt);
                free(b);
                ev = sb_kadmin_wait(ka, RD_KAFKA_EVENT_CREATEACLS_RESULT,
                                    "create ACLs", errstr, errstr_size);
                if (!ev)
                        return SB_ERR_KAFKA;
                res = rd_kafka_CreateAcls_result_acls(
                    rd_kafka_event_CreateAcls_result(ev), &n);
                for (i = 0; i < n; i++) {
                        const rd_kafka_error_t *e =
                            rd_kafka_acl_result_error(res[i]);

                        if (e) {
                                sb_acl_format(&plan->create.v[i], buf,
                                              sizeof(buf));
                                sb_seterr(errstr, errstr_size, SB_ERR_KAFKA,
                                          "admin: create ACL '%s': %s", buf,
                                          rd_kafka_error_string(e));
                                rd_kafka_event_destroy(ev);
                                return SB_ERR_KAFKA;
                        }
                }
                rd_kafka_event_destroy(ev);
        }

        if (plan->remove.cnt) {
                rd_kafka_AclBindingFilter_t **f =
                    calloc(plan->remove.cnt, sizeof(*f));
                const rd_kafka_DeleteAcls_result_response_t **res;

                if (!f)
                        return sb_seterr(errstr, errstr_size, SB_ERR_NOMEM,
                                         "out of memory");
                /* Exact filters: each deletes the one binding planned. */
                for (i = 0; i < plan->remove.cnt; i++) {
                        const sb_acl_t *a = &plan->remove.v[i];

                        f[i] = rd_kafka_AclBindingFilter_new(
                            a->restype, a->name, a->pattern, a->principal,
                            a->host, a->op, a->perm, kerr, sizeof(kerr));
                        if (!f[i]) {
                                rd_kafka_AclBinding_destroy_array(f, i);
                                free(f);
                                return sb_seterr(errstr, errstr_size,
                                                 SB_ERR_KAFKA,
                                                 "admin: ACL filter: %s", kerr);
                        }
                }
                opts = sb_kadmin_options(ka, RD_KAFKA_ADMIN_OP_DELETEACLS);
                rd_kafka_DeleteAcls(ka->rk, f, plan->remove.cnt, opts, ka->q);
                rd_kafka_AdminOptions_destroy(opts);
                rd_kafka_AclBinding_destroy_array(f, plan->remove.cnt);
                free(f);
                ev = sb_kadmin_wait(ka, RD_KAFKA_EVENT_DELETEACLS_RESULT,
                                    "delete ACLs", errstr, errstr_size);
                if (!ev)
                        return SB_ERR_KAFKA;
                res = rd_kafka_DeleteAcls_result_responses(
                    rd_kafka_event_DeleteAcls_result(ev), &n);
                for (i = 0; i < n; i++) {
                        const rd_kafka_error_t *e =
                            rd_kafka_DeleteAcls_result_response_error(res[i]);

                        if (e) {
                                sb_acl_format(&plan->remove.v[i], buf,
                                              sizeof(buf));
                                sb_seterr(errstr, errstr_size, SB_ERR_KAFKA,
                                          "admin: delete ACL '%s': %s", buf,
                                          rd_kafka_error_string(e));
                                rd_kafka_event_destroy(ev);
                                return SB_ERR_KAFKA;
                        }
                }
                rd_kafka_event_destroy(ev);
        }
        if (!plan->create.cnt && !plan->remove.cnt)
                return SB_OK;
        return sb_acls_wait_visible(ka, plan, errstr, errstr_size);
}
