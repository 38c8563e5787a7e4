/*
 * The gateway's per-subject state (gateway/state.c): the rules that decide
 * whether a grant may receive a subject (objection, withdrawn consent,
 * restriction: GDPR art. 18, 21, 7(3); R6.2-05), and the journal that makes
 * an aborted transaction leave no trace in memory while a committed one
 * produces exactly the changelog messages needed to rebuild it.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "state.h"

static json_t *purposes(const char *csv)
{
        json_t *a = json_array();
        char *dup = strdup(csv), *tok, *save = NULL;

        for (tok = strtok_r(dup, ",", &save); tok;
             tok = strtok_r(NULL, ",", &save))
                json_array_append_new(a, json_string(tok));
        free(dup);
        return a;
}

/* Collects what sb_state_changes() would write to the changelog. */
static int collect(const char *subject, int32_t partition, const char *value,
                   size_t len, void *opaque)
{
        json_t *out = opaque;

        (void)len;
        json_object_set_new(
            out, subject,
            json_pack("{s:i, s:s?}", "p", (int)partition, "v", value));
        return 0;
}

static json_t *changes(sb_state_t *st)
{
        json_t *out = json_object();

        assert_int_equal(sb_state_changes(st, collect, out), 0);
        return out;
}

static void objection_blocks_only_grants_of_its_purposes(void **unused)
{
        sb_state_t *st = sb_state_new();
        json_t *research = purposes("research"),
               *housing = purposes("housing,statistics"),
               *both = purposes("statistics,research"), *none = purposes("");
        json_t *s;

        (void)unused;
        s = sb_state_touch(st, "b-1", 0);
        assert_false(sb_state_blocks(s, research));
        assert_int_equal(sb_state_add_purposes(s, "o", research), 0);
        assert_true(sb_state_blocks(s, research));
        assert_true(sb_state_blocks(s, both));
        assert_false(sb_state_blocks(s, housing));

        /* Objection to everything: an empty purpose list. */
        s = sb_state_touch(st, "b-2", 0);
        sb_state_add_purposes(s, "o", none);
        assert_true(sb_state_blocks(s, housing));
        assert_true(sb_state_objected(s, research));

        /* A subject nobody heard of is shared. */
        assert_false(sb_state_blocks(sb_state_get(st, "b-3"), research));

        json_decref(research);
        json_decref(housing);
        json_decref(both);
        json_decref(none);
        sb_state_destroy(st);
}

static void consent_given_again_lifts_its_withdrawal(void **unused)
{
        sb_state_t *st = sb_state_new();
        json_t *research = purposes("research"),
               *stats = purposes("statistics"), *all = purposes(""), *s;

        (void)unused;
        s = sb_state_touch(st, "b-1", 1);
        sb_state_add_purposes(s, "w", research);
        sb_state_add_purposes(s, "w", stats);
        assert_true(sb_state_blocks(s, research));
        sb_state_remove_purposes(s, "w", research);
        assert_false(sb_state_blocks(s, research));
        assert_true(sb_state_blocks(s, stats));
        sb_state_remove_purposes(s, "w", all);
        assert_false(sb_state_blocks(s, stats));
        assert_null(json_object_get(s, "w"));

        json_decref(research);
        json_decref(stats);
        json_decref(all);
        sb_state_destroy(st);
}

static void restriction_blocks_every_grant_until_lifted(void **unused)
{
        sb_state_t *st = sb_state_new();
        json_t *research = purposes("research"), *s;

        (void)unused;
        s = sb_state_touch(st, "b-1", 0);
        sb_state_set_restricted(s, 1);
        assert_true(sb_state_restricted(s));
        assert_true(sb_state_blocks(s, research));
        assert_false(sb_state_objected(s, research));
        sb_state_set_restricted(s, 0);
        assert_false(sb_state_blocks(s, research));
        json_decref(research);
        sb_state_destroy(st);
}

static void aborted_transaction_leaves_no_trace(void **unused)
{
        sb_state_t *st = sb_state_new();
        json_t *all = purposes(""), *s, *before, *ch;

        (void)unused;
        s = sb_state_touch(st, "b-1", 2);
        sb_state_add_delivery(s, "acme", "r-1");
        ch = changes(st);
        assert_int_equal(json_object_size(ch), 1);
        json_decref(ch);
        sb_state_commit(st);
        before = json_deep_copy(sb_state_get(st, "b-1"));

        /* A transaction objects for b-1 and creates b-2, then aborts. */
        s = sb_state_touch(st, "b-1", 2);
        sb_state_add_purposes(s, "o", all);
        sb_state_forget_reuser(s, "acme");
        s = sb_state_touch(st, "b-2", 0);
        sb_state_add_delivery(s, "acme", "r-9");
        sb_state_rollback(st);

        assert_true(json_equal(before, sb_state_get(st, "b-1")));
        assert_null(sb_state_get(st, "b-2"));
        ch = changes(st);
        assert_int_equal(json_object_size(ch), 0);
        json_decref(ch);
        json_decref(before);
        json_decref(all);
        sb_state_destroy(st);
}

static void forgotten_subject_becomes_a_tombstone(void **unused)
{
        sb_state_t *st = sb_state_new();
        json_t *s, *ch;

        (void)unused;
        s = sb_state_touch(st, "b-1", 1);
        sb_state_add_delivery(s, "acme", "r-1");
        sb_state_add_delivery(s, "acme", "r-2");
        sb_state_add_delivery(s, "bcorp", "r-1");
        json_decref(changes(st));
        sb_state_commit(st);
        assert_int_equal(json_object_size(sb_state_received(s, "acme")), 2);

        /* Erasure: every reuser forgotten, nothing left to remember. */
        s = sb_state_touch(st, "b-1", 1);
        sb_state_forget_reuser(s, "acme");
        sb_state_forget_reuser(s, "bcorp");
        ch = changes(st);
        assert_non_null(json_object_get(ch, "b-1"));
        assert_int_equal(json_integer_value(
                             json_object_get(json_object_get(ch, "b-1"), "p")),
                         1);
        assert_true(
            json_is_null(json_object_get(json_object_get(ch, "b-1"), "v")));
        json_decref(ch);
        sb_state_commit(st);
        assert_null(sb_state_get(st, "b-1"));
        assert_int_equal(sb_state_size(st), 0);

        /* Created and emptied in one transaction: nothing to write. */
        s = sb_state_touch(st, "b-5", 0);
        ch = changes(st);
        assert_int_equal(json_object_size(ch), 0);
        json_decref(ch);
        sb_state_commit(st);
        assert_int_equal(sb_state_size(st), 0);
        sb_state_destroy(st);
}

static void changelog_rebuilds_the_same_state(void **unused)
{
        sb_state_t *st = sb_state_new(), *copy = sb_state_new();
        json_t *research = purposes("research"), *s, *ch, *e;
        const char *subject;
        char errstr[256];

        (void)unused;
        s = sb_state_touch(st, "b-1", 0);
        sb_state_add_delivery(s, "acme", "r-1");
        sb_state_add_purposes(s, "w", research);
        s = sb_state_touch(st, "b-2", 2);
        sb_state_set_restricted(s, 1);
        sb_state_add_delivery(s, "bcorp", "r-4");
        ch = changes(st);
        sb_state_commit(st);
        json_object_foreach(ch, subject, e)
        {
                const char *v = json_string_value(json_object_get(e, "v"));

                assert_int_equal(
                    sb_state_load(
                        copy, subject,
                        (int32_t)json_integer_value(json_object_get(e, "p")), v,
                        strlen(v), errstr, sizeof(errstr)),
                    SB_OK);
        }
        assert_true(
            json_equal(sb_state_get(st, "b-1"), sb_state_get(copy, "b-1")));
        assert_true(
            json_equal(sb_state_get(st, "b-2"), sb_state_get(copy, "b-2")));

        /* Revoking partition 2 forgets b-2 only. */
        sb_state_drop_partition(copy, 2);
        assert_non_null(sb_state_get(copy, "b-1"));
        assert_null(sb_state_get(copy, "b-2"));

        /* A tombstone forgets. */
        assert_int_equal(
            sb_state_load(copy, "b-1", 0, NULL, 0, errstr, sizeof(errstr)),
            SB_OK);
        assert_null(sb_state_get(copy, "b-1"));
        json_decref(ch);
        json_decref(research);
        sb_state_destroy(st);
        sb_state_destroy(copy);
}

static void corrupt_changelog_value_is_refused_with_subject(void **unused)
{
        sb_state_t *st = sb_state_new();
        char errstr[256];
        static const char *bad[] = {
            "not json",     "[1]",        "{\"d\": {\"acme\": [\"r-1\"]}}",
            "{\"o\": [1]}", "{\"x\": 1}", "{\"r\": \"yes\"}",
        };
        size_t i;

        (void)unused;
        for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                errstr[0] = '\0';
                assert_int_equal(sb_state_load(st, "b-7", 4, bad[i],
                                               strlen(bad[i]), errstr,
                                               sizeof(errstr)),
                                 SB_ERR_STATE);
                assert_non_null(strstr(errstr, "subject 'b-7'"));
                assert_non_null(strstr(errstr, "partition 4"));
        }
        assert_int_equal(sb_state_size(st), 0);
        sb_state_destroy(st);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(objection_blocks_only_grants_of_its_purposes),
            cmocka_unit_test(consent_given_again_lifts_its_withdrawal),
            cmocka_unit_test(restriction_blocks_every_grant_until_lifted),
            cmocka_unit_test(aborted_transaction_leaves_no_trace),
            cmocka_unit_test(forgotten_subject_becomes_a_tombstone),
            cmocka_unit_test(changelog_rebuilds_the_same_state),
            cmocka_unit_test(corrupt_changelog_value_is_refused_with_subject),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
