/*
 * `sharebus admin grants plan`: from the grant files and what _sb.grants
 * holds (its latest value per key), which grants apply would create or
 * update, which are unchanged, which it must leave to a person (revoked on
 * the topic but not in their file; on the topic without a file), and what
 * revoke would publish. Pure functions: no broker.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "grants.h"
#include "testutil.h"

#define GRANT_FMT                                                              \
        "{\"id\": \"%s\", \"reuser\": \"%s\", \"dataset\": "                   \
        "\"beneficiaries\", \"purposes\": [\"p\"], \"legal_basis\": \"x\", "   \
        "\"status\": \"%s\", \"fields\": {\"postcode\": \"keep\"}}"

static json_t *grant(const char *id, const char *reuser, const char *status)
{
        char text[512];
        json_error_t jerr;
        json_t *j;

        snprintf(text, sizeof(text), GRANT_FMT, id, reuser, status);
        j = json_loads(text, 0, &jerr);
        if (!j)
                fail_msg("test grant: %s", jerr.text);
        return j;
}

/* A file of the desired state; `json` is stolen. */
static void file(sb_grant_file_t *f, const char *origin, json_t *json)
{
        f->id = strdup(json_string_value(json_object_get(json, "id")));
        f->origin = strdup(origin);
        f->json = json;
}

static void files_release(sb_grant_file_t *files, size_t cnt)
{
        size_t i;

        for (i = 0; i < cnt; i++) {
                free(files[i].id);
                free(files[i].origin);
                json_decref(files[i].json);
        }
}

/* One message of _sb.grants; `json` is stolen (NULL: a tombstone). */
static void put(sb_grant_state_t *st, const char *id, json_t *json,
                int64_t offset)
{
        assert_int_equal(SB_OK,
                         sb_grant_state_put(st, id, json, 0, "f.json",
                                            "2026-11-25T10:00:00.000Z",
                                            "sharebus://admin/t", 0, offset));
}

static const sb_grant_change_t *change(const sb_grant_plan_t *plan,
                                       const char *id)
{
        size_t i;

        for (i = 0; i < plan->cnt; i++)
                if (!strcmp(plan->changes[i].id, id))
                        return &plan->changes[i];
        fail_msg("no change for grant '%s' in the plan", id);
        return NULL;
}

static void expect_action(const sb_grant_plan_t *plan, const char *id,
                          sb_grant_action_t want)
{
        const sb_grant_change_t *c = change(plan, id);

        if (c->action != want)
                fail_msg("grant '%s': expected %s, got %s", id,
                         sb_grant_action2str(want),
                         sb_grant_action2str(c->action));
}

/* The latest value of a key wins; a tombstone reads as revoked. */
static void latest_version_of_each_key_wins(void **state)
{
        sb_grant_state_t st = {0};
        const sb_grant_version_t *v;

        (void)state;
        put(&st, "g-1", grant("g-1", "r1", "approved"), 0);
        put(&st, "g-2", grant("g-2", "r2", "approved"), 1);
        put(&st, "g-1", grant("g-1", "r1", "suspended"), 2);
        put(&st, "g-2", NULL, 3);
        assert_int_equal(2, st.cnt);
        v = sb_grant_state_get(&st, "g-1");
        assert_non_null(v);
        assert_string_equal("suspended", sb_grant_version_status(v));
        assert_int_equal(2, v->offset);
        v = sb_grant_state_get(&st, "g-2");
        assert_int_equal(SB_GRANT_V_TOMBSTONE, v->kind);
        assert_string_equal("revoked", sb_grant_version_status(v));
        assert_true(sb_grant_version_revoked(v));
        assert_null(sb_grant_state_get(&st, "g-3"));
        /* A value that is not a JSON object is kept as unreadable. */
        assert_int_equal(SB_OK, sb_grant_state_put(&st, "g-3", json_string("x"),
                                                   0, NULL, "", NULL, 0, 4));
        assert_int_equal(SB_GRANT_V_UNREADABLE,
                         sb_grant_state_get(&st, "g-3")->kind);
        sb_grant_state_release(&st);
}

/* Files vs topic: create, update, unchanged, no file, retired. */
static void plan_sorts_files_against_topic(void **state)
{
        sb_grant_file_t files[3];
        sb_grant_state_t st = {0};
        sb_grant_plan_t plan;
        const sb_grant_change_t *c;
        char errstr[256];
        json_t *same;

        (void)state;
        file(&files[0], "c.json", grant("g-c", "rc", "approved"));
        file(&files[1], "a.json", grant("g-a", "ra", "approved"));
        file(&files[2], "b.json", grant("g-b", "rb", "approved"));
        /* g-a on the topic with the same JSON, keys in another order. */
        same = json_loads("{\"status\": \"approved\", \"fields\": "
                          "{\"postcode\": \"keep\"}, \"legal_basis\": \"x\", "
                          "\"purposes\": [\"p\"], \"dataset\": "
                          "\"beneficiaries\", \"reuser\": \"ra\", \"id\": "
                          "\"g-a\"}",
                          0, NULL);
        put(&st, "g-a", same, 0);
        /* g-b published with other purposes. */
        put(&st, "g-b", grant("g-b", "rb", "approved"), 1);
        json_object_set_new(st.v[1].json, "purposes", json_pack("[s]", "q"));
        json_object_set_new(st.v[1].json, "contact", json_string("dpo@x"));
        /* On the topic only. */
        put(&st, "g-old", grant("g-old", "ro", "revoked"), 2);
        put(&st, "g-lost", grant("g-lost", "rl", "approved"), 3);

        assert_int_equal(SB_OK, sb_grants_plan(files, 3, &st, &plan, errstr,
                                               sizeof(errstr)));
        assert_int_equal(5, plan.cnt);
        assert_int_equal(3, plan.file_cnt);
        assert_int_equal(4, plan.topic_cnt);
        /* Sorted by id. */
        assert_string_equal("g-a", plan.changes[0].id);
        assert_string_equal("g-b", plan.changes[1].id);
        assert_string_equal("g-c", plan.changes[2].id);
        assert_string_equal("g-lost", plan.changes[3].id);
        assert_string_equal("g-old", plan.changes[4].id);

        expect_action(&plan, "g-a", SB_GRANT_UNCHANGED);
        expect_action(&plan, "g-b", SB_GRANT_UPDATE);
        c = change(&plan, "g-b");
        assert_string_equal("updated", c->change);
        assert_int_equal(2, json_array_size(c->keys));
        assert_string_equal("contact",
                            json_string_value(json_array_get(c->keys, 0)));
        assert_string_equal("purposes",
                            json_string_value(json_array_get(c->keys, 1)));
        expect_action(&plan, "g-c", SB_GRANT_CREATE);
        assert_string_equal("created", change(&plan, "g-c")->change);
        assert_string_equal("c.json", change(&plan, "g-c")->file->origin);
        /* Never revoked implicitly: drift for a person to look at. */
        expect_action(&plan, "g-lost", SB_GRANT_NO_FILE);
        assert_null(change(&plan, "g-lost")->file);
        expect_action(&plan, "g-old", SB_GRANT_RETIRED);

        assert_int_equal(2, sb_grant_plan_pending(&plan));
        assert_int_equal(1, sb_grant_plan_drift(&plan));
        sb_grant_plan_release(&plan);
        sb_grant_state_release(&st);
        files_release(files, 3);
}

/* Once applied, the same files against the topic they made: nothing. */
static void plan_after_apply_is_empty(void **state)
{
        sb_grant_file_t files[2];
        sb_grant_state_t st = {0};
        sb_grant_plan_t plan;
        char errstr[256];
        size_t i;

        (void)state;
        file(&files[0], "a.json", grant("g-a", "ra", "approved"));
        file(&files[1], "b.json", grant("g-b", "rb", "suspended"));
        /* What apply publishes, read back. */
        for (i = 0; i < 2; i++) {
                char *value = sb_grant_value(files[i].json);

                put(&st, files[i].id, json_loads(value, 0, NULL), (int64_t)i);
                free(value);
        }
        assert_int_equal(SB_OK, sb_grants_plan(files, 2, &st, &plan, errstr,
                                               sizeof(errstr)));
        assert_int_equal(0, sb_grant_plan_pending(&plan));
        assert_int_equal(0, sb_grant_plan_drift(&plan));
        expect_action(&plan, "g-a", SB_GRANT_UNCHANGED);
        expect_action(&plan, "g-b", SB_GRANT_UNCHANGED);
        sb_grant_plan_release(&plan);
        sb_grant_state_release(&st);
        files_release(files, 2);
}

/*
 * A grant revoked on the topic is never reinstated by its file; a file
 * that records the revocation is in sync; a file that revokes a grant is
 * an update whose audit change is "revoked".
 */
static void revoked_on_topic_is_not_reinstated(void **state)
{
        sb_grant_file_t files[4];
        sb_grant_state_t st = {0};
        sb_grant_plan_t plan;
        const sb_grant_change_t *c;
        char errstr[256];

        (void)state;
        file(&files[0], "a.json", grant("g-a", "ra", "approved"));
        file(&files[1], "b.json", grant("g-b", "rb", "revoked"));
        file(&files[2], "c.json", grant("g-c", "rc", "revoked"));
        file(&files[3], "d.json", grant("g-d", "rd", "suspended"));
        put(&st, "g-a", grant("g-a", "ra", "revoked"), 0);
        put(&st, "g-b", grant("g-b", "rb", "revoked"), 1);
        put(&st, "g-c", grant("g-c", "rc", "approved"), 2);
        put(&st, "g-d", NULL, 3); /* a tombstone: revoked */
        assert_int_equal(SB_OK, sb_grants_plan(files, 4, &st, &plan, errstr,
                                               sizeof(errstr)));
        c = change(&plan, "g-a");
        assert_int_equal(SB_GRANT_CONFLICT, c->action);
        assert_non_null(strstr(c->reason, "revoked on _sb.grants"));
        assert_non_null(strstr(c->reason, "'a.json' says \"approved\""));
        expect_action(&plan, "g-b", SB_GRANT_UNCHANGED);
        c = change(&plan, "g-c");
        assert_int_equal(SB_GRANT_UPDATE, c->action);
        assert_string_equal("revoked", c->change);
        expect_action(&plan, "g-d", SB_GRANT_CONFLICT);
        assert_int_equal(1, sb_grant_plan_pending(&plan));
        assert_int_equal(2, sb_grant_plan_drift(&plan));
        sb_grant_plan_release(&plan);
        sb_grant_state_release(&st);
        files_release(files, 4);
}

/*
 * A new grant for a reuser and dataset that an active grant without a file
 * still holds on the topic would give the gateway two: it waits for a
 * revoke. Once the old one is revoked, it is created.
 */
static void new_grant_waits_for_rival_to_be_revoked(void **state)
{
        sb_grant_file_t files[1];
        sb_grant_state_t st = {0};
        sb_grant_plan_t plan;
        const sb_grant_change_t *c;
        char errstr[256];

        (void)state;
        file(&files[0], "new.json", grant("g-new", "ra", "approved"));
        put(&st, "g-old", grant("g-old", "ra", "approved"), 0);
        assert_int_equal(SB_OK, sb_grants_plan(files, 1, &st, &plan, errstr,
                                               sizeof(errstr)));
        c = change(&plan, "g-new");
        assert_int_equal(SB_GRANT_CONFLICT, c->action);
        assert_non_null(strstr(c->reason, "already has grant 'g-old'"));
        expect_action(&plan, "g-old", SB_GRANT_NO_FILE);
        assert_int_equal(0, sb_grant_plan_pending(&plan));
        sb_grant_plan_release(&plan);

        put(&st, "g-old", grant("g-old", "ra", "revoked"), 1);
        assert_int_equal(SB_OK, sb_grants_plan(files, 1, &st, &plan, errstr,
                                               sizeof(errstr)));
        expect_action(&plan, "g-new", SB_GRANT_CREATE);
        expect_action(&plan, "g-old", SB_GRANT_RETIRED);
        assert_int_equal(1, sb_grant_plan_pending(&plan));
        assert_int_equal(0, sb_grant_plan_drift(&plan));
        sb_grant_plan_release(&plan);
        sb_grant_state_release(&st);
        files_release(files, 1);
}

/* A version that is not a grant is replaced by its file. */
static void unreadable_version_is_updated(void **state)
{
        sb_grant_file_t files[1];
        sb_grant_state_t st = {0};
        sb_grant_plan_t plan;
        char errstr[256];

        (void)state;
        file(&files[0], "a.json", grant("g-a", "ra", "approved"));
        assert_int_equal(SB_OK, sb_grant_state_put(&st, "g-a", NULL, 1, NULL,
                                                   "", NULL, 0, 0));
        assert_int_equal(SB_OK, sb_grants_plan(files, 1, &st, &plan, errstr,
                                               sizeof(errstr)));
        expect_action(&plan, "g-a", SB_GRANT_UPDATE);
        assert_null(change(&plan, "g-a")->keys);
        sb_grant_plan_release(&plan);
        sb_grant_state_release(&st);
        files_release(files, 1);
}

/* revoke: the topic's version (else the file's) with status revoked. */
static void revocation_of_topic_file_unknown_and_revoked(void **state)
{
        sb_grant_file_t files[2];
        sb_grant_state_t st = {0};
        const char *origin;
        json_t *out;
        char errstr[256];
        int already;

        (void)state;
        file(&files[0], "a.json", grant("g-a", "ra", "approved"));
        file(&files[1], "b.json", grant("g-b", "rb", "approved"));
        /* The topic's g-a differs from its file: the topic's is revoked. */
        put(&st, "g-a", grant("g-a", "ra", "suspended"), 0);
        json_object_set_new(st.v[0].json, "contact", json_string("dpo@ra"));
        put(&st, "g-c", grant("g-c", "rc", "revoked"), 1);
        put(&st, "g-d", NULL, 2);

        assert_int_equal(SB_OK, sb_grant_revocation("g-a", &st, files, 2, &out,
                                                    &origin, &already, errstr,
                                                    sizeof(errstr)));
        assert_int_equal(0, already);
        assert_string_equal("f.json", origin); /* its header on the topic */
        assert_string_equal("revoked",
                            json_string_value(json_object_get(out, "status")));
        assert_string_equal("dpo@ra",
                            json_string_value(json_object_get(out, "contact")));
        /* The topic's own version is untouched. */
        assert_string_equal("suspended", sb_grant_version_status(&st.v[0]));
        json_decref(out);

        /* Never published: its file. */
        assert_int_equal(SB_OK, sb_grant_revocation("g-b", &st, files, 2, &out,
                                                    &origin, &already, errstr,
                                                    sizeof(errstr)));
        assert_string_equal("b.json", origin);
        assert_string_equal("revoked",
                            json_string_value(json_object_get(out, "status")));
        json_decref(out);

        /* Revoked already, or a tombstone: nothing to publish. */
        assert_int_equal(SB_OK, sb_grant_revocation("g-c", &st, files, 2, &out,
                                                    &origin, &already, errstr,
                                                    sizeof(errstr)));
        assert_int_equal(1, already);
        assert_null(out);
        assert_int_equal(SB_OK,
                         sb_grant_revocation("g-d", &st, NULL, 0, &out, &origin,
                                             &already, errstr, sizeof(errstr)));
        assert_int_equal(1, already);

        /* Unknown: an error naming it. */
        assert_int_equal(SB_ERR_NOT_FOUND,
                         sb_grant_revocation("g-zz", &st, files, 2, &out,
                                             &origin, &already, errstr,
                                             sizeof(errstr)));
        assert_null(out);
        assert_non_null(strstr(errstr, "grant 'g-zz'"));
        sb_grant_state_release(&st);
        files_release(files, 2);
}

/* What goes on the wire: the grant compact with sorted keys, and the audit
 * entry with the fields of the contract, before the writer chains it
 * (CNIL R4.3-12: who changed which grant, when). */
static void value_and_audit_entry_format(void **state)
{
        json_t *g = grant("g-a", "ra", "approved"), *e;
        char *value, *entry;

        (void)state;
        value = sb_grant_value(g);
        assert_string_equal(
            "{\"dataset\":\"beneficiaries\",\"fields\":{\"postcode\":\"keep\"},"
            "\"id\":\"g-a\",\"legal_basis\":\"x\",\"purposes\":[\"p\"],"
            "\"reuser\":\"ra\",\"status\":\"approved\"}",
            value);
        e = sb_grant_audit_entry("sharebus://admin/adm", "g-a", g, "created",
                                 1795600000000LL);
        assert_non_null(e);
        entry = json_dumps(e, JSON_COMPACT | JSON_SORT_KEYS);
        assert_string_equal(
            "{\"at\":1795600000000,\"author\":\"sharebus://admin/adm\","
            "\"change\":\"created\",\"dataset\":\"beneficiaries\","
            "\"grant_id\":\"g-a\",\"op\":\"grant.change\",\"reuser\":\"ra\","
            "\"status\":\"approved\"}",
            entry);
        free(value);
        free(entry);
        json_decref(e);
        json_decref(g);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(latest_version_of_each_key_wins),
            cmocka_unit_test(plan_sorts_files_against_topic),
            cmocka_unit_test(plan_after_apply_is_empty),
            cmocka_unit_test(revoked_on_topic_is_not_reinstated),
            cmocka_unit_test(new_grant_waits_for_rival_to_be_revoked),
            cmocka_unit_test(unreadable_version_is_updated),
            cmocka_unit_test(revocation_of_topic_file_unknown_and_revoked),
            cmocka_unit_test(value_and_audit_entry_format),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
