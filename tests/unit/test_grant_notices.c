/*
 * The pieces of `sharebus admin grants notify` that need no cluster
 * (admin/notices.c): which grant gets which notice at a given time, and
 * what a notice says (DESIGN.md §5, "Validity"; CNIL R5.2-03, R6.2-03).
 *
 * With the default 7-day lead: a grant 8 days from its valid_until gets
 * nothing, 6 days from it a grant.expiring, past it a grant.expired; a
 * revoked, suspended or unapproved grant, or one without valid_until, gets
 * no expiry notice; a grant revoked on _sb.grants gets a grant.revoked.
 * Nothing is due once the notice topics' retention would have dropped the
 * first notice, so a repeat never follows from retention.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "envelope.h"
#include "grants.h"
#include "notices.h"

#define DAY  (24 * 3600 * 1000LL)
#define HOUR (3600 * 1000LL)
#define KEEP (30 * DAY) /* ops_retention_days default */

/* 2026-11-25T12:00:00Z */
static const int64_t now = 1795608000000LL;

static sb_notice_grant_t grant(const char *status, int64_t until_from_now)
{
        sb_notice_grant_t g;

        memset(&g, 0, sizeof(g));
        g.id = "g-1";
        g.reuser = "acme-research";
        g.dataset = "beneficiaries";
        g.status = status;
        g.has_valid_until = 1;
        g.valid_until_ms = now + until_from_now;
        g.revoked_at_ms = -1;
        return g;
}

static void expect(sb_notice_kind_t want, const sb_notice_grant_t *g,
                   int64_t before, int64_t keep, const char *what)
{
        sb_notice_kind_t got = sb_notice_decide(g, now, before, keep);

        if (got != want)
                fail_msg("%s: expected %s, got %s", what,
                         sb_notice_kind2str(want), sb_notice_kind2str(got));
}

static void expiry_notice_is_due_within_the_lead_and_after(void **state)
{
        static const struct {
                int64_t until; /* valid_until - now */
                sb_notice_kind_t want;
                const char *what;
        } cases[] = {
            {8 * DAY, SB_NOTICE_NONE, "8 days before"},
            {7 * DAY + 1, SB_NOTICE_NONE, "7 days and 1 ms before"},
            {7 * DAY, SB_NOTICE_EXPIRING, "exactly 7 days before"},
            {6 * DAY, SB_NOTICE_EXPIRING, "6 days before"},
            {1, SB_NOTICE_EXPIRING, "1 ms before"},
            {0, SB_NOTICE_EXPIRED, "at valid_until"},
            {-DAY, SB_NOTICE_EXPIRED, "a day after"},
            {-(KEEP - 1), SB_NOTICE_EXPIRED, "just within retention"},
            {-KEEP, SB_NOTICE_NONE,
             "retention after: the first notice "
             "may be gone, do not repeat it"},
            {-400 * DAY, SB_NOTICE_NONE, "long expired"},
        };
        size_t i;

        (void)state;
        for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                sb_notice_grant_t g = grant("approved", cases[i].until);

                expect(cases[i].want, &g, SB_NOTICE_BEFORE_MS, KEEP,
                       cases[i].what);
        }
}

static void lead_and_retention_are_parameters(void **state)
{
        sb_notice_grant_t g = grant("approved", 8 * DAY);

        (void)state;
        expect(SB_NOTICE_EXPIRING, &g, 10 * DAY, KEEP, "8 days, 10-day lead");
        expect(SB_NOTICE_NONE, &g, 7 * DAY, KEEP, "8 days, 7-day lead");
        g = grant("approved", -400 * DAY);
        expect(SB_NOTICE_EXPIRED, &g, 7 * DAY, 0,
               "long expired, topics kept forever");
}

static void
only_approved_grants_with_valid_until_get_expiry_notices(void **state)
{
        static const char *const statuses[] = {"suspended", "pending",
                                               "revoked", NULL};
        static const int64_t untils[] = {6 * DAY, -DAY};
        sb_notice_grant_t g;
        char what[128];
        size_t i, j;

        (void)state;
        for (i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++)
                for (j = 0; j < sizeof(untils) / sizeof(untils[0]); j++) {
                        g = grant(statuses[i], untils[j]);
                        snprintf(what, sizeof(what),
                                 "status %s, valid_until %+lld days",
                                 statuses[i] ? statuses[i] : "(none)",
                                 (long long)(untils[j] / DAY));
                        expect(SB_NOTICE_NONE, &g, SB_NOTICE_BEFORE_MS, KEEP,
                               what);
                }
        g = grant("approved", 0);
        g.has_valid_until = 0;
        g.valid_until_ms = 0;
        expect(SB_NOTICE_NONE, &g, SB_NOTICE_BEFORE_MS, KEEP,
               "approved, no valid_until");
}

static void revoked_grant_gets_a_revocation_notice_when_known(void **state)
{
        sb_notice_grant_t g = grant("revoked", 100 * DAY);

        (void)state;
        expect(SB_NOTICE_NONE, &g, SB_NOTICE_BEFORE_MS, KEEP,
               "revoked, time unknown (a grant file)");
        g.revoked_at_ms = now - HOUR;
        expect(SB_NOTICE_REVOKED, &g, SB_NOTICE_BEFORE_MS, KEEP,
               "revoked an hour ago");
        g.has_valid_until = 0;
        expect(SB_NOTICE_REVOKED, &g, SB_NOTICE_BEFORE_MS, KEEP,
               "revoked, no valid_until");
        g.revoked_at_ms = now - KEEP;
        expect(SB_NOTICE_NONE, &g, SB_NOTICE_BEFORE_MS, KEEP,
               "revoked longer ago than the topics keep notices");
}

static json_t *value_of(const sb_notice_t *n)
{
        json_error_t jerr;
        json_t *v = json_loads(n->value, JSON_REJECT_DUPLICATES, &jerr);

        if (!v)
                fail_msg("notice value is not JSON: %s: %s", jerr.text,
                         n->value);
        return v;
}

static const char *str(const json_t *v, const char *key)
{
        const char *s = json_string_value(json_object_get(v, key));

        if (!s)
                fail_msg("notice value: no string '%s'", key);
        return s;
}

static void expiring_notice_says_when_what_and_whom_to_ask(void **state)
{
        sb_notice_grant_t g = grant("approved", 6 * DAY - 1);
        json_t *purposes = json_pack("[s]", "epidemiology"), *v;
        char errstr[256], until[32], sent[32], key[128];
        sb_notice_t n;
        int64_t ms;

        (void)state;
        g.purposes = purposes;
        assert_int_equal(SB_OK, sb_notice_make(&g, SB_NOTICE_EXPIRING, now,
                                               "grants@platform.example", &n,
                                               errstr, sizeof(errstr)));
        sb_time_format(g.valid_until_ms, until);
        sb_time_format(now, sent);
        snprintf(key, sizeof(key), "g-1/grant.expiring/%s", until);
        assert_string_equal(key, n.key);
        assert_string_equal("sb.notice.acme-research", n.topic);
        assert_int_equal(6, n.days_left); /* rounded up */
        v = value_of(&n);
        assert_string_equal("grant.expiring", str(v, "notice"));
        assert_string_equal("g-1", str(v, "grant"));
        assert_string_equal("acme-research", str(v, "reuser"));
        assert_string_equal("beneficiaries", str(v, "dataset"));
        assert_true(json_equal(purposes, json_object_get(v, "purposes")));
        assert_string_equal(until, str(v, "valid_until"));
        assert_int_equal(0, sb_time_parse(str(v, "valid_until"), &ms));
        assert_int_equal(g.valid_until_ms, ms);
        assert_int_equal(6,
                         json_integer_value(json_object_get(v, "days_left")));
        assert_string_equal(sent, str(v, "sent_at"));
        assert_non_null(strstr(str(v, "reason"), "grants@platform.example"));
        assert_non_null(strstr(str(v, "reason"), "renew"));
        assert_non_null(strstr(str(v, "reason"), "purges"));
        assert_non_null(strstr(str(v, "reason"), "sb.out.acme-research."
                                                 "beneficiaries"));
        assert_null(strchr(n.value, '\n'));
        json_decref(v);
        sb_notice_release(&n);

        /* No contact configured: the platform team. */
        g.valid_until_ms = now - DAY;
        assert_int_equal(SB_OK, sb_notice_make(&g, SB_NOTICE_EXPIRED, now, NULL,
                                               &n, errstr, sizeof(errstr)));
        sb_time_format(g.valid_until_ms, until);
        snprintf(key, sizeof(key), "g-1/grant.expired/%s", until);
        assert_string_equal(key, n.key);
        v = value_of(&n);
        assert_int_equal(0,
                         json_integer_value(json_object_get(v, "days_left")));
        assert_non_null(strstr(str(v, "reason"), "the platform team"));
        json_decref(v);
        sb_notice_release(&n);
        json_decref(purposes);
}

static void revocation_notice_is_keyed_by_when_revoked(void **state)
{
        sb_notice_grant_t g = grant("revoked", 100 * DAY);
        char errstr[256], at[32], key[128];
        sb_notice_t n;
        json_t *v;

        (void)state;
        g.revoked_at_ms = now - HOUR;
        assert_int_equal(SB_OK, sb_notice_make(&g, SB_NOTICE_REVOKED, now, NULL,
                                               &n, errstr, sizeof(errstr)));
        sb_time_format(g.revoked_at_ms, at);
        snprintf(key, sizeof(key), "g-1/grant.revoked/%s", at);
        assert_string_equal(key, n.key);
        v = value_of(&n);
        assert_string_equal("grant.revoked", str(v, "notice"));
        assert_string_equal(at, str(v, "revoked_at"));
        assert_true(json_is_array(json_object_get(v, "purposes")));
        json_decref(v);
        sb_notice_release(&n);

        g.revoked_at_ms = -1; /* nothing to key it with */
        assert_int_equal(SB_ERR_INVALID_ARG,
                         sb_notice_make(&g, SB_NOTICE_REVOKED, now, NULL, &n,
                                        errstr, sizeof(errstr)));
}

static void grants_on_the_topic_are_read_from_their_latest_version(void **state)
{
        sb_grant_state_t st;
        sb_notice_grant_t *gs = NULL;
        char errstr[256];
        size_t cnt, i;
        int64_t ms;

        (void)state;
        memset(&st, 0, sizeof(st));
        assert_int_equal(
            SB_OK,
            sb_grant_state_put(
                &st, "g-a",
                json_pack("{s:s, s:s, s:s, s:s, s:[s], s:s}", "id", "g-a",
                          "reuser", "reuser-a", "dataset", "beneficiaries",
                          "status", "approved", "purposes", "p", "valid_until",
                          "2026-12-01T00:00:00Z"),
                0, "g-a.json", "2026-11-01T00:00:00.000Z", NULL, 0, 0));
        assert_int_equal(SB_OK,
                         sb_grant_state_put(
                             &st, "g-r",
                             json_pack("{s:s, s:s, s:s, s:s}", "id", "g-r",
                                       "reuser", "reuser-b", "dataset",
                                       "beneficiaries", "status", "revoked"),
                             0, NULL, "2026-11-20T10:00:00.000Z", NULL, 0, 1));
        /* A tombstone, a value that is not a grant and a valid_until that
         * is not a time: nobody to tell, or nothing sure to tell. */
        assert_int_equal(SB_OK, sb_grant_state_put(&st, "g-t", NULL, 0, NULL,
                                                   "", NULL, 0, 2));
        assert_int_equal(SB_OK, sb_grant_state_put(&st, "g-u", NULL, 1, NULL,
                                                   "", NULL, 0, 3));
        assert_int_equal(
            SB_OK,
            sb_grant_state_put(&st, "g-x",
                               json_pack("{s:s, s:s, s:s, s:s, s:s}", "id",
                                         "g-x", "reuser", "reuser-b", "dataset",
                                         "beneficiaries", "status", "approved",
                                         "valid_until", "next year"),
                               0, NULL, "", NULL, 0, 4));
        assert_int_equal(SB_OK, sb_notice_grants_from_state(
                                    &st, &gs, &cnt, errstr, sizeof(errstr)));
        assert_int_equal(2, cnt);
        for (i = 0; i < cnt; i++) {
                if (!strcmp(gs[i].id, "g-a")) {
                        assert_string_equal("reuser-a", gs[i].reuser);
                        assert_string_equal("approved", gs[i].status);
                        assert_true(gs[i].has_valid_until);
                        assert_int_equal(
                            0, sb_time_parse("2026-12-01T00:00:00Z", &ms));
                        assert_int_equal(ms, gs[i].valid_until_ms);
                        assert_int_equal(-1, gs[i].revoked_at_ms);
                } else {
                        assert_string_equal("g-r", gs[i].id);
                        assert_string_equal("revoked", gs[i].status);
                        assert_false(gs[i].has_valid_until);
                        assert_int_equal(
                            0, sb_time_parse("2026-11-20T10:00:00.000Z", &ms));
                        assert_int_equal(ms, gs[i].revoked_at_ms);
                }
        }
        free(gs);
        sb_grant_state_release(&st);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(expiry_notice_is_due_within_the_lead_and_after),
            cmocka_unit_test(lead_and_retention_are_parameters),
            cmocka_unit_test(
                only_approved_grants_with_valid_until_get_expiry_notices),
            cmocka_unit_test(revoked_grant_gets_a_revocation_notice_when_known),
            cmocka_unit_test(expiring_notice_says_when_what_and_whom_to_ask),
            cmocka_unit_test(revocation_notice_is_keyed_by_when_revoked),
            cmocka_unit_test(
                grants_on_the_topic_are_read_from_their_latest_version),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
