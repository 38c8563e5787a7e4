/*
 * `acls plan` on a tampered broker: an ACL added by hand for a principal
 * sharebus never issued is reported (and never deleted), one added for a
 * sharebus principal that no grant implies is planned for deletion, and
 * `apply` removes exactly that one.
 */
#include "world.h"

static void add_acl(sb_world_t *w, const char *principal, const char *topic)
{
        sb_acl_plan_t plan;
        char errstr[512];

        memset(&plan, 0, sizeof(plan));
        SB_CHECK(!sb_acl_set_add(&plan.create, RD_KAFKA_RESOURCE_TOPIC, topic,
                                 RD_KAFKA_RESOURCE_PATTERN_LITERAL, principal,
                                 "*", RD_KAFKA_ACL_OPERATION_READ,
                                 RD_KAFKA_ACL_PERMISSION_TYPE_ALLOW),
                 "oom");
        SB_OK_OR_FAIL(sb_acls_apply(w->ka, &plan, errstr, sizeof(errstr)),
                      errstr);
        sb_acl_plan_release(&plan);
}

int main(void)
{
        const char *topic = "sb.out.t6-reuser.beneficiaries";
        sb_acl_plan_t plan;
        sb_world_t w;
        char buf[512], errstr[512];

        sb_world_init(&w);
        sb_world_grant(&w, "g.json",
                       "{\"id\": \"g-t6\", \"reuser\": \"t6-reuser\", "
                       "\"dataset\": \"beneficiaries\", \"purposes\": [\"p\"], "
                       "\"legal_basis\": \"x\", \"status\": \"approved\", "
                       "\"fields\": {\"postcode\": \"keep\"}}");
        sb_world_platform(&w, "\"gateway\": [\"sb-gateway.g1\"], "
                              "\"datasets\": {\"beneficiaries\": "
                              "{\"holders\": [\"t6-holder.g1\"]}}, "
                              "\"reusers\": {\"t6-reuser\": {\"principals\": "
                              "[\"t6-reuser.g1\"]}}");
        sb_world_apply(&w);

        add_acl(&w, "User:mallory", topic);
        add_acl(&w, "User:t6-holder.g1", topic);

        sb_world_acl_plan(&w, &plan);
        sb_acl_plan_print(&plan, stdout);
        SB_CHECK_INT(0, plan.create.cnt, "ACLs to create");
        SB_CHECK_INT(1, plan.remove.cnt, "ACLs to delete");
        sb_acl_format(&plan.remove.v[0], buf, sizeof(buf));
        SB_CHECK_STR("ALLOW User:t6-holder.g1 READ TOPIC "
                     "sb.out.t6-reuser.beneficiaries (LITERAL) from *",
                     buf, "the stale sharebus ACL");
        SB_CHECK(plan.unmanaged.cnt >= 1, "hand-added ACL not reported");
        {
                size_t i;
                int found = 0;

                for (i = 0; i < plan.unmanaged.cnt; i++) {
                        sb_acl_format(&plan.unmanaged.v[i], buf, sizeof(buf));
                        found |= !strcmp(buf, "ALLOW User:mallory READ TOPIC "
                                              "sb.out.t6-reuser.beneficiaries "
                                              "(LITERAL) from *");
                }
                SB_CHECK(found, "mallory's ACL is not among the unmanaged");
        }

        /* apply deletes the stale one and leaves mallory's in place */
        SB_OK_OR_FAIL(sb_acls_apply(w.ka, &plan, errstr, sizeof(errstr)),
                      errstr);
        sb_acl_plan_release(&plan);
        sb_world_acl_plan(&w, &plan);
        SB_CHECK_INT(0, plan.remove.cnt, "ACLs to delete after apply");
        SB_CHECK(plan.unmanaged.cnt >= 1, "mallory's ACL was deleted");

        /* clean up by hand what sharebus refuses to touch */
        {
                sb_acl_plan_t del;
                size_t i;

                memset(&del, 0, sizeof(del));
                for (i = 0; i < plan.unmanaged.cnt; i++)
                        if (!strcmp(plan.unmanaged.v[i].principal,
                                    "User:mallory"))
                                SB_CHECK(!sb_acl_set_add(
                                             &del.remove,
                                             plan.unmanaged.v[i].restype,
                                             plan.unmanaged.v[i].name,
                                             plan.unmanaged.v[i].pattern,
                                             plan.unmanaged.v[i].principal,
                                             plan.unmanaged.v[i].host,
                                             plan.unmanaged.v[i].op,
                                             plan.unmanaged.v[i].perm),
                                         "oom");
                SB_OK_OR_FAIL(sb_acls_apply(w.ka, &del, errstr, sizeof(errstr)),
                              errstr);
                sb_acl_plan_release(&del);
        }
        sb_acl_plan_release(&plan);
        sb_world_release(&w);
        return 0;
}
